//! Reading HTTP/1.1 responses (RFC 9112): the head with `httparse`, then how the body is
//! framed (§6.3), chunk-size lines (§7.1) and trailers. Pure functions over byte slices.

use std::mem::MaybeUninit;

use bytes::{Buf, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};

use crate::header_names::NameCache;

/// At most this many header fields in a response head (hyper's default too).
pub(crate) const MAX_HEADERS: usize = 100;
/// A response head larger than this is refused (Envoy's default limit is 60 KiB).
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;
/// A chunk-size line (with its extensions) longer than this is refused.
pub(crate) const MAX_CHUNK_LINE: usize = 4096;
/// Trailers larger than this are refused.
pub(crate) const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// The parsed head of a response.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    /// The end-to-end fields as bytes instead of `headers` (which is then empty), when the
    /// request asked for them ([`RequestKind::raw`]) and the response allows it.
    pub(crate) raw: Option<RawHead>,
    /// How the body that follows is delimited.
    pub(crate) framing: ResponseFraming,
    /// Whether the connection may carry another request afterwards.
    pub(crate) keep_alive: bool,
}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResponseFraming {
    /// No body (HEAD, 1xx, 204, 304).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the backend closes the connection.
    UntilClose,
}

/// What the request was, as far as response framing cares.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestKind {
    /// A HEAD request: the response has no body whatever its headers say.
    pub(crate) head: bool,
    /// The response head is wanted as bytes ([`RawHead`]) where it can be.
    pub(crate) raw: bool,
}

/// Why a response could not be read. The text says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ProtocolError(pub(crate) String);

fn invalid(what: impl Into<String>) -> ProtocolError {
    ProtocolError(what.into())
}

/// Parses a response head at the start of `read`: `None` while incomplete, else the head and
/// its length in bytes, which are split off `read` (the header values are slices of them: no
/// copy).
pub(crate) fn parse_head(
    read: &mut BytesMut,
    request: RequestKind,
    names: &mut NameCache,
) -> Result<Option<(ResponseHead, usize)>, ProtocolError> {
    // Left uninitialised: httparse writes the fields it finds, and zeroing 100 of them
    // (3.2 KB) would cost more than parsing a small head.
    let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let length = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        read,
        &mut fields,
    ) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(invalid(format!("invalid response head: {error}"))),
    };
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| invalid("invalid response status"))?;
    let version = match response.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    // Only a response with a body that our framing replaces: HEAD, 1xx, 204 and 304 keep
    // what their fields say about a body they do not carry, which the writer takes from a map.
    let with_body = !request.head
        && !status.is_informational()
        && status != StatusCode::NO_CONTENT
        && status != StatusCode::NOT_MODIFIED;
    if request.raw
        && with_body
        && let Some(raw) = raw_fields(response.headers, length)?
    {
        let (fields, facts) = raw;
        read.advance(length);
        let framing = facts.framing(status, request);
        let keep_alive = facts.keeps_alive(version, framing);
        return Ok(Some((
            ResponseHead {
                status,
                version,
                headers: HeaderMap::new(),
                raw: Some(fields),
                framing,
                keep_alive,
            },
            length,
        )));
    }
    if let Err(bad) = names.collect(read, response.headers) {
        let name = response
            .headers
            .get(bad.position)
            .map_or("", |field| field.name);
        return Err(invalid(format!("invalid response header name {name:?}")));
    }
    let mut headers = HeaderMap::with_capacity(response.headers.len());
    // The parser's borrow of `read` ends here: the head leaves the buffer without a copy.
    let head = read.split_to(length).freeze();
    let mut facts = FramingFacts::default();
    for field in names.take_fields() {
        let name = field.name;
        let value = HeaderValue::from_maybe_shared(head.slice(field.value))
            .map_err(|_| invalid(format!("invalid value of response header {name}")))?;
        let kind = FieldKind::of(name.as_str().as_bytes());
        if facts.note(kind, value.as_bytes())? == Keep::Field
            || status == StatusCode::SWITCHING_PROTOCOLS
        {
            headers.append(name, value);
        }
    }
    let framing = facts.framing(status, request);
    let keep_alive = facts.keeps_alive(version, framing);
    Ok(Some((
        ResponseHead {
            status,
            version,
            headers,
            raw: None,
            framing,
            keep_alive,
        },
        length,
    )))
}

/// A response head's end-to-end fields as bytes, each `name: value\r\n` with the name as the
/// backend wrote it, for an HTTP/1.1 writer that adds the status line, its own framing and
/// what else it has to say ([`crate::UpstreamBody::take_raw_head`]). Hop-by-hop fields
/// (RFC 9110 §7.6.1) and `Content-Length` are left out: the writer frames the body itself.
/// Building no header map saves, per response, the map (two allocations), a hash and an
/// insert per field, naming each field, and the drop.
#[derive(Debug)]
pub struct RawHead {
    fields: Vec<u8>,
    has_date: bool,
}

impl Drop for RawHead {
    fn drop(&mut self) {
        crate::spare_buffers::give_back(std::mem::take(&mut self.fields));
    }
}

impl RawHead {
    /// The fields, each ending in CRLF.
    pub fn fields(&self) -> &[u8] {
        &self.fields
    }

    /// Whether the fields hold a `Date`.
    pub fn has_date(&self) -> bool {
        self.has_date
    }
}

/// The fields of a head as a [`RawHead`], with what they say about framing; `None` when a
/// `Connection` names other fields, which must be found and removed by name (the map does it).
fn raw_fields(
    parsed: &[httparse::Header<'_>],
    head_length: usize,
) -> Result<Option<(RawHead, FramingFacts)>, ProtocolError> {
    let mut facts = FramingFacts::default();
    let mut fields = crate::spare_buffers::take(head_length);
    let mut has_date = false;
    for field in parsed {
        let name = field.name.as_bytes();
        let kind = FieldKind::of(name);
        match kind {
            FieldKind::Connection => {
                if facts.note(kind, field.value)? == Keep::Field {
                    crate::spare_buffers::give_back(fields);
                    return Ok(None);
                }
                continue;
            }
            FieldKind::ContentLength | FieldKind::TransferEncoding | FieldKind::KeepAlive => {
                facts.note(kind, field.value)?;
                continue;
            }
            FieldKind::OtherHopByHop => continue,
            FieldKind::Date => has_date = true,
            FieldKind::Other => {}
        }
        fields.extend_from_slice(name);
        fields.extend_from_slice(b": ");
        fields.extend_from_slice(field.value);
        fields.extend_from_slice(b"\r\n");
    }
    Ok(Some((RawHead { fields, has_date }, facts)))
}

/// Whether `bytes` is `known` in any letter case, where `known` holds only lowercase letters
/// and `-`. Setting the case bit (0x20) of a byte makes it one of those only if it is that byte
/// in either case, or CR for `-` (which neither a field name nor a value may hold): an exact
/// comparison at half the cost of `eq_ignore_ascii_case`.
fn is_lowercase_word(bytes: &[u8], known: &[u8]) -> bool {
    bytes.len() == known.len()
        && bytes
            .iter()
            .zip(known)
            .all(|(&byte, &lower)| byte | 0x20 == lower)
}

/// What a field name means to the response's framing and forwarding (ASCII case-insensitive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FieldKind {
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    /// The rest of the hop-by-hop set (RFC 9110 §7.6.1, and the legacy `Proxy-Connection`):
    /// never forwarded.
    OtherHopByHop,
    Date,
    Other,
}

impl FieldKind {
    fn of(name: &[u8]) -> FieldKind {
        // By length first: most names are none of these, and the comparison is then a branch.
        let is = |known: &[u8]| is_lowercase_word(name, known);
        match name.len() {
            2 if is(b"te") => FieldKind::OtherHopByHop,
            4 if is(b"date") => FieldKind::Date,
            7 if is(b"upgrade") || is(b"trailer") => FieldKind::OtherHopByHop,
            10 if is(b"connection") => FieldKind::Connection,
            10 if is(b"keep-alive") => FieldKind::KeepAlive,
            14 if is(b"content-length") => FieldKind::ContentLength,
            14 if is(b"http2-settings") => FieldKind::OtherHopByHop,
            16 if is(b"proxy-connection") => FieldKind::OtherHopByHop,
            17 if is(b"transfer-encoding") => FieldKind::TransferEncoding,
            _ => FieldKind::Other,
        }
    }
}

/// What the headers say about framing and persistence, gathered in the one pass over them.
#[derive(Default)]
struct FramingFacts {
    content_length: Option<u64>,
    /// A `Transfer-Encoding` was present; `chunked` says whether its last coding is chunked.
    transfer_encoding: bool,
    chunked: bool,
    close: bool,
    keep_alive: bool,
}

/// Whether a field goes into the response's headers. Hop-by-hop fields that say only how this
/// connection frames and persists (`Transfer-Encoding`, `Keep-Alive`, a `Connection` naming
/// no other field) end here: the proxy would strip them anyway (RFC 9110 §7.6.1), and a field
/// not inserted costs nothing later. A 101 keeps them all: they are the upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keep {
    Field,
    Consumed,
}

impl FramingFacts {
    fn note(&mut self, kind: FieldKind, value: &[u8]) -> Result<Keep, ProtocolError> {
        if kind == FieldKind::ContentLength {
            let length = parse_content_length(value)
                .ok_or_else(|| invalid("invalid Content-Length in response"))?;
            if self.content_length.is_some_and(|seen| seen != length) {
                return Err(invalid("conflicting Content-Length values in response"));
            }
            self.content_length = Some(length);
        } else if kind == FieldKind::TransferEncoding {
            self.transfer_encoding = true;
            // The last coding of the last field decides (RFC 9112 §6.3 rule 4).
            self.chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            return Ok(Keep::Consumed);
        } else if kind == FieldKind::KeepAlive {
            return Ok(Keep::Consumed);
        } else if kind == FieldKind::Connection {
            // The common values whole, before the list is split.
            let is = |known: &[u8]| is_lowercase_word(value, known);
            if is(b"keep-alive") {
                self.keep_alive = true;
                return Ok(Keep::Consumed);
            }
            if is(b"close") {
                self.close = true;
                return Ok(Keep::Consumed);
            }
            let mut names_others = false;
            for token in value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                let close = token.eq_ignore_ascii_case(b"close");
                let keep_alive = token.eq_ignore_ascii_case(b"keep-alive");
                self.close |= close;
                self.keep_alive |= keep_alive;
                names_others |= !close && !keep_alive && !token.is_empty();
            }
            if !names_others {
                return Ok(Keep::Consumed);
            }
        }
        Ok(Keep::Field)
    }

    fn framing(&self, status: StatusCode, request: RequestKind) -> ResponseFraming {
        if request.head
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return ResponseFraming::Empty;
        }
        match (self.transfer_encoding, self.chunked, self.content_length) {
            (true, true, _) => ResponseFraming::Chunked,
            (true, false, _) => ResponseFraming::UntilClose,
            (false, _, Some(length)) => ResponseFraming::Length(length),
            (false, _, None) => ResponseFraming::UntilClose,
        }
    }

    /// HTTP/1.1 persists unless `close`; HTTP/1.0 only with `keep-alive` (RFC 9112 §9.3). A
    /// body that ends with the connection ends it, and a response with both `Transfer-Encoding`
    /// and `Content-Length` is answered by closing (§6.3 rule 3).
    fn keeps_alive(&self, version: Version, framing: ResponseFraming) -> bool {
        let persistent = match version {
            Version::HTTP_10 => self.keep_alive && !self.close,
            _ => !self.close,
        };
        persistent
            && framing != ResponseFraming::UntilClose
            && !(self.transfer_encoding && self.content_length.is_some())
    }
}

/// `Content-Length`: digits, or a list of identical values (RFC 9110 §8.6).
fn parse_content_length(value: &[u8]) -> Option<u64> {
    // The common value, plain digits, in one pass.
    if !value.is_empty() && value.len() <= 19 && value.iter().all(u8::is_ascii_digit) {
        return Some(
            value
                .iter()
                .fold(0u64, |n, &digit| n * 10 + u64::from(digit - b'0')),
        );
    }
    let mut length = None;
    for part in value.split(|&b| b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let parsed = part
            .iter()
            .fold(0u64, |n, &digit| n * 10 + u64::from(digit - b'0'));
        if length.is_some_and(|seen| seen != parsed) {
            return None;
        }
        length = Some(parsed);
    }
    length
}

/// Parses a chunk-size line (`1a;ext=v\r\n`) at the start of `buf`: `None` while incomplete,
/// else the chunk size and the line's length. Extensions are skipped; bare LF, control
/// characters and sizes over 64 bits are refused.
pub(crate) fn parse_chunk_size(buf: &[u8]) -> Result<Option<(u64, usize)>, ProtocolError> {
    let mut size: u64 = 0;
    let mut index = 0;
    while let Some(&byte) = buf.get(index) {
        let Some(digit) = (byte as char).to_digit(16) else {
            break;
        };
        size = size
            .checked_mul(16)
            .and_then(|n| n.checked_add(u64::from(digit)))
            .ok_or_else(|| invalid("chunk size too large"))?;
        index += 1;
    }
    if index == buf.len() {
        return incomplete(buf);
    }
    if index == 0 {
        return Err(invalid("invalid chunk size"));
    }
    while let Some(&byte) = buf.get(index) {
        match byte {
            b'\r' => break,
            b'\t' | b' '..=b'~' | 0x80.. => index += 1,
            _ => return Err(invalid("invalid chunk extension")),
        }
    }
    match buf.get(index..index + 2) {
        None => incomplete(buf),
        Some(b"\r\n") => Ok(Some((size, index + 2))),
        Some(_) => Err(invalid("invalid chunk-size line ending")),
    }
}

fn incomplete(buf: &[u8]) -> Result<Option<(u64, usize)>, ProtocolError> {
    if buf.len() > MAX_CHUNK_LINE {
        return Err(invalid("chunk-size line too long"));
    }
    Ok(None)
}

/// Parses the trailer section after the last chunk (its fields and the empty line that ends
/// it): `None` while incomplete, else the fields and the section's length.
pub(crate) fn parse_trailers(buf: &[u8]) -> Result<Option<(HeaderMap, usize)>, ProtocolError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (length, parsed) = match httparse::parse_headers(buf, &mut fields) {
        Ok(httparse::Status::Complete(complete)) => complete,
        Ok(httparse::Status::Partial) if buf.len() > MAX_TRAILER_BYTES => {
            return Err(invalid("trailers too large"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(invalid(format!("invalid trailers: {error}"))),
    };
    let mut trailers = HeaderMap::with_capacity(parsed.len());
    for field in parsed {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| invalid("invalid trailer name"))?;
        let value =
            HeaderValue::from_bytes(field.value).map_err(|_| invalid("invalid trailer value"))?;
        trailers.append(name, value);
    }
    Ok(Some((trailers, length)))
}

#[cfg(test)]
mod tests;
