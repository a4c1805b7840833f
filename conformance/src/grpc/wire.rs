//! The few protobuf messages of `grpcecho.proto` the suite looks at, encoded and decoded by hand.
//!
//! Owns the wire format for `EchoResponse { assertions: Assertions { fully_qualified_method = 1, headers = 2,
//! authority = 3, context = 4 { namespace = 1, ingress = 2, service_name = 3, pod = 4 } } }`. `EchoRequest` is
//! empty. Unknown fields are skipped when decoding, as protobuf requires; TLS assertions are never written.

/// Wire type of varints.
const VARINT: u8 = 0;
/// Wire type of fixed 64-bit values.
const FIXED64: u8 = 1;
/// Wire type of strings, bytes and embedded messages.
const LENGTH_DELIMITED: u8 = 2;
/// Wire type of fixed 32-bit values.
const FIXED32: u8 = 5;

/// What the echo reports about one RPC: the fields the suite compares, plus the ones the server fills in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EchoAssertions {
    /// `/package.Service/Method` as the server saw it.
    pub(crate) fully_qualified_method: String,
    /// Request metadata, in arrival order.
    pub(crate) headers: Vec<(String, String)>,
    /// The request's `:authority`.
    pub(crate) authority: String,
    /// The server's namespace.
    pub(crate) namespace: String,
    /// The server's pod name.
    pub(crate) pod: String,
}

impl EchoAssertions {
    /// Encodes `EchoResponse { assertions: self }`.
    pub(crate) fn encode_response(&self) -> Vec<u8> {
        let mut context = Vec::new();
        put_string(&mut context, 1, &self.namespace);
        put_string(&mut context, 4, &self.pod);
        let mut assertions = Vec::new();
        put_string(&mut assertions, 1, &self.fully_qualified_method);
        for (key, value) in &self.headers {
            let mut header = Vec::new();
            put_string(&mut header, 1, key);
            put_string(&mut header, 2, value);
            put_bytes(&mut assertions, 2, &header);
        }
        put_string(&mut assertions, 3, &self.authority);
        put_bytes(&mut assertions, 4, &context);
        let mut response = Vec::new();
        put_bytes(&mut response, 1, &assertions);
        response
    }

    /// Decodes an `EchoResponse`, keeping its assertions.
    pub(crate) fn decode_response(mut message: &[u8]) -> Result<Self, String> {
        let mut decoded = Self::default();
        while let Some((field, value)) = next_field(&mut message)? {
            if let (1, Value::Bytes(mut assertions)) = (field, value) {
                while let Some((field, value)) = next_field(&mut assertions)? {
                    decoded.merge_assertion(field, value)?;
                }
            }
        }
        Ok(decoded)
    }

    /// Applies one field of an `Assertions` message.
    fn merge_assertion(&mut self, field: u32, value: Value<'_>) -> Result<(), String> {
        let Value::Bytes(mut bytes) = value else {
            return Ok(());
        };
        match field {
            1 => self.fully_qualified_method = text(bytes)?,
            3 => self.authority = text(bytes)?,
            2 => {
                let (mut key, mut header_value) = (String::new(), String::new());
                while let Some((field, value)) = next_field(&mut bytes)? {
                    match (field, value) {
                        (1, Value::Bytes(raw)) => key = text(raw)?,
                        (2, Value::Bytes(raw)) => header_value = text(raw)?,
                        _ => {}
                    }
                }
                self.headers.push((key, header_value));
            }
            4 => {
                while let Some((field, value)) = next_field(&mut bytes)? {
                    match (field, value) {
                        (1, Value::Bytes(raw)) => self.namespace = text(raw)?,
                        (4, Value::Bytes(raw)) => self.pod = text(raw)?,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A decoded field value; only length-delimited contents are kept.
enum Value<'a> {
    /// Varint, fixed32 or fixed64: never needed by the messages above.
    Scalar,
    /// A string, bytes or an embedded message.
    Bytes(&'a [u8]),
}

/// Reads the next field of `message`, advancing it; `None` at the end.
fn next_field<'a>(message: &mut &'a [u8]) -> Result<Option<(u32, Value<'a>)>, String> {
    if message.is_empty() {
        return Ok(None);
    }
    let key = read_varint(message)?;
    let field =
        u32::try_from(key >> 3).map_err(|_| format!("field number {} out of range", key >> 3))?;
    let value = match (key & 7) as u8 {
        VARINT => {
            read_varint(message)?;
            Value::Scalar
        }
        FIXED64 => {
            take(message, 8)?;
            Value::Scalar
        }
        LENGTH_DELIMITED => {
            let length = usize::try_from(read_varint(message)?)
                .map_err(|_| "length out of range".to_owned())?;
            Value::Bytes(take(message, length)?)
        }
        FIXED32 => {
            take(message, 4)?;
            Value::Scalar
        }
        other => {
            return Err(format!(
                "unsupported protobuf wire type {other} (field {field})"
            ));
        }
    };
    Ok(Some((field, value)))
}

/// Splits `length` bytes off the front of `message`.
fn take<'a>(message: &mut &'a [u8], length: usize) -> Result<&'a [u8], String> {
    if message.len() < length {
        return Err(format!(
            "truncated protobuf: wanted {length} bytes, {} left",
            message.len()
        ));
    }
    let (head, rest) = message.split_at(length);
    *message = rest;
    Ok(head)
}

/// Reads a base-128 varint.
fn read_varint(message: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = message.split_first().ok_or("truncated protobuf varint")?;
        *message = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("protobuf varint longer than 10 bytes".to_owned())
}

/// UTF-8 text of a string field.
fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "protobuf string field is not UTF-8".to_owned())
}

/// Appends a base-128 varint.
fn put_varint(buffer: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buffer.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buffer.push(value as u8);
}

/// Appends a length-delimited field.
fn put_bytes(buffer: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(
        buffer,
        (u64::from(field) << 3) | u64::from(LENGTH_DELIMITED),
    );
    put_varint(buffer, bytes.len() as u64);
    buffer.extend_from_slice(bytes);
}

/// Appends a string field; proto3 leaves empty strings out.
fn put_string(buffer: &mut Vec<u8>, field: u32, text: &str) {
    if !text.is_empty() {
        put_bytes(buffer, field, text.as_bytes());
    }
}

#[cfg(test)]
mod tests;
