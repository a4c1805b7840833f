//! Reads the server name (SNI, RFC 6066 section 3) out of a TLS ClientHello without taking
//! part in the handshake, so a passthrough connection can be routed and its bytes replayed to
//! the backend untouched.
//!
//! [`scan`] looks at the bytes a connection has sent so far and says whether they hold a
//! complete ClientHello (and its SNI), need more bytes, or are not a ClientHello at all. It
//! reassembles a ClientHello split over several TLS records (RFC 8446 section 5.1 allows it)
//! and bounds everything: records to 2^14 bytes, the ClientHello to [`MAX_CLIENT_HELLO`].
//! Every read is checked: garbage gives [`Scan::Invalid`], never a panic.
//!
//! It does not validate the rest of the handshake (cipher suites, key shares): in passthrough
//! the backend does that, and in termination rustls does.

#[cfg(test)]
mod tests;

/// Largest ClientHello accepted, in bytes (without its 4-byte handshake header). Real ones
/// are under 2 KiB even with post-quantum key shares; 16 KiB leaves room for many session
/// tickets and extensions while bounding what one connection can make the gateway buffer.
pub(crate) const MAX_CLIENT_HELLO: usize = 16 * 1024;

/// Longest TLS record payload (RFC 8446 section 5.1: 2^14 for plaintext records).
const MAX_RECORD: usize = 16 * 1024;

/// Longest server name accepted: a DNS name (253 bytes) with room for a trailing dot.
const MAX_SERVER_NAME: usize = 255;

const RECORD_HEADER: usize = 5;
const HANDSHAKE_HEADER: usize = 4;
const CONTENT_TYPE_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXTENSION_SERVER_NAME: u16 = 0;
const NAME_TYPE_HOST_NAME: u8 = 0;

/// Most bytes a connection may send before its ClientHello is complete: twice the largest
/// ClientHello, room for its record headers even when finely fragmented and for data sent
/// right behind it. A connection that needs more is refused.
pub(crate) const MAX_BUFFERED: usize = 2 * MAX_CLIENT_HELLO;

/// What the bytes read so far say.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    /// A prefix of a plausible ClientHello: read more.
    Incomplete,
    /// A complete ClientHello, with the host name it asks for (`None`: no SNI, a client
    /// connecting by IP address).
    Complete(Option<String>),
    /// Not a TLS ClientHello (or one we refuse: too large, malformed, a bad server name).
    Invalid(&'static str),
}

/// Scans the first bytes of a connection. Cheap enough to call again after every read: it
/// allocates only to reassemble a ClientHello split over several records.
pub(crate) fn scan(buffer: &[u8]) -> Scan {
    match reassemble(buffer) {
        Ok(Some(hello)) => match server_name(&hello) {
            Ok(name) => Scan::Complete(name),
            Err(why) => Scan::Invalid(why),
        },
        Ok(None) => Scan::Incomplete,
        Err(why) => Scan::Invalid(why),
    }
}

/// The ClientHello body (after its handshake header) once every record carrying it has
/// arrived; `None` while more bytes are needed.
fn reassemble(buffer: &[u8]) -> Result<Option<Vec<u8>>, &'static str> {
    let mut message: Vec<u8> = Vec::new();
    let mut rest = buffer;
    loop {
        // Judge what is there as early as possible: one byte is enough to refuse HTTP.
        if let Some(&content_type) = rest.first()
            && content_type != CONTENT_TYPE_HANDSHAKE
        {
            return Err("not a TLS handshake record");
        }
        if let Some(&major) = rest.get(1)
            && major != 3
        {
            return Err("not a TLS record version");
        }
        let Some(header) = rest.get(..RECORD_HEADER) else {
            return Ok(None);
        };
        let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if length == 0 || length > MAX_RECORD {
            return Err("TLS record length out of range");
        }
        let Some(payload) = rest.get(RECORD_HEADER..RECORD_HEADER + length) else {
            return Ok(None);
        };
        message.extend_from_slice(payload);
        rest = &rest[RECORD_HEADER + length..];

        if let Some(&kind) = message.first()
            && kind != HANDSHAKE_CLIENT_HELLO
        {
            return Err("first handshake message is not a ClientHello");
        }
        let Some(header) = message.get(..HANDSHAKE_HEADER) else {
            continue;
        };
        let hello_length = u32::from_be_bytes([0, header[1], header[2], header[3]]);
        let hello_length = usize::try_from(hello_length).unwrap_or(usize::MAX);
        if hello_length > MAX_CLIENT_HELLO {
            return Err("ClientHello too large");
        }
        let end = HANDSHAKE_HEADER + hello_length;
        if message.len() >= end {
            message.truncate(end);
            message.drain(..HANDSHAKE_HEADER);
            return Ok(Some(message));
        }
    }
}

/// A bounds-checked reader over a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], &'static str> {
        if count > self.bytes.len() {
            return Err("ClientHello truncated");
        }
        let (head, tail) = self.bytes.split_at(count);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, &'static str> {
        let bytes = self.take(2)?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    /// A vector with a one-byte length prefix.
    fn vec8(&mut self) -> Result<&'a [u8], &'static str> {
        let length = usize::from(self.u8()?);
        self.take(length)
    }

    /// A vector with a two-byte length prefix.
    fn vec16(&mut self) -> Result<&'a [u8], &'static str> {
        let length = usize::from(self.u16()?);
        self.take(length)
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// The `host_name` of the `server_name` extension of a ClientHello body (RFC 8446 section
/// 4.1.2; the TLS 1.2 layout is the same up to the extensions).
fn server_name(hello: &[u8]) -> Result<Option<String>, &'static str> {
    let mut reader = Reader { bytes: hello };
    reader.take(2)?; // legacy_version
    reader.take(32)?; // random
    if reader.vec8()?.len() > 32 {
        return Err("ClientHello session id too long");
    }
    let suites = reader.vec16()?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err("ClientHello cipher suites malformed");
    }
    if reader.vec8()?.is_empty() {
        return Err("ClientHello without compression methods");
    }
    if reader.is_empty() {
        return Ok(None); // TLS 1.2 allows a ClientHello without extensions
    }
    let mut extensions = Reader {
        bytes: reader.vec16()?,
    };
    while !extensions.is_empty() {
        let kind = extensions.u16()?;
        let data = extensions.vec16()?;
        if kind == EXTENSION_SERVER_NAME {
            return host_name(data).map(Some);
        }
    }
    Ok(None)
}

/// The first `host_name` entry of a `ServerNameList`, checked to be a plausible DNS name so
/// that it can be logged and looked up safely.
fn host_name(extension: &[u8]) -> Result<String, &'static str> {
    let mut outer = Reader { bytes: extension };
    let mut list = Reader {
        bytes: outer.vec16()?,
    };
    while !list.is_empty() {
        let name_type = list.u8()?;
        let name = list.vec16()?;
        if name_type != NAME_TYPE_HOST_NAME {
            continue;
        }
        let valid = !name.is_empty()
            && name.len() <= MAX_SERVER_NAME
            && name
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid {
            return Err("SNI is not a DNS host name");
        }
        // Checked above: ASCII only.
        return String::from_utf8(name.to_ascii_lowercase()).map_err(|_| "SNI is not ASCII");
    }
    Err("server_name extension without a host_name")
}
