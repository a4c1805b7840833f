//! Trace context on the wire: W3C `traceparent` (and the `tracestate` that travels with it),
//! B3 single (`b3`) and multi (`X-B3-*`) headers. Parsing only validates and decodes; the
//! proxy decides what to trust and what to send on.

/// A 16-byte trace id (never all zeros).
pub type TraceId = [u8; 16];
/// An 8-byte span id (never all zeros).
pub type SpanId = [u8; 8];

/// The header formats a trace context can arrive in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    /// W3C Trace Context `traceparent`.
    W3c,
    /// B3 single header `b3: {trace}-{span}-{sampled}-{parent}`.
    B3Single,
    /// B3 multi headers `X-B3-TraceId`, `X-B3-SpanId`, `X-B3-Sampled`, `X-B3-Flags`.
    B3Multi,
}

/// The caller's span, as a request carried it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteParent {
    /// The trace the request belongs to.
    pub trace_id: TraceId,
    /// The caller's span: the parent of ours.
    pub span_id: SpanId,
    /// The caller's sampling decision, if it made one (B3 may defer it).
    pub sampled: Option<bool>,
    /// The format it came in.
    pub format: Propagation,
}

/// Decodes a `traceparent` value (W3C Trace Context level 1): `00-{32 hex}-{16 hex}-{2 hex}`.
/// A later version is read by its first four fields, as the spec requires; version `ff`, upper
/// case hex, all-zero ids and wrong lengths are invalid (`None`: the request starts a new
/// trace).
pub fn parse_traceparent(value: &[u8]) -> Option<RemoteParent> {
    if value.len() < 55 {
        return None;
    }
    let version = hex_byte(value[0], value[1])?;
    if version == 0xff || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    if version == 0 && value.len() != 55 {
        return None;
    }
    if value.len() > 55 && value[55] != b'-' {
        return None;
    }
    let trace_id: TraceId = hex_array(&value[3..35])?;
    let span_id: SpanId = hex_array(&value[36..52])?;
    let flags = hex_byte(value[53], value[54])?;
    valid_ids(trace_id, span_id).then_some(RemoteParent {
        trace_id,
        span_id,
        sampled: Some(flags & 1 == 1),
        format: Propagation::W3c,
    })
}

/// Decodes a `b3` single header: `{trace}-{span}[-{sampling}[-{parent}]]` (a 16- or
/// 32-hex-digit trace id; sampling `1`, `0` or `d` for debug). The lone sampling forms (`0`,
/// `1`, `d`) carry no ids and give `None`: nothing to continue.
pub fn parse_b3_single(value: &[u8]) -> Option<RemoteParent> {
    let mut fields = value.split(|&b| b == b'-');
    let trace_id = b3_trace_id(fields.next()?)?;
    let span_id: SpanId = hex_array(fields.next()?)?;
    let sampled = match fields.next() {
        None => None,
        Some(b"1" | b"d") => Some(true),
        Some(b"0") => Some(false),
        Some(_) => return None,
    };
    if let Some(parent) = fields.next() {
        hex_array::<8>(parent)?;
    }
    if fields.next().is_some() {
        return None;
    }
    valid_ids(trace_id, span_id).then_some(RemoteParent {
        trace_id,
        span_id,
        sampled,
        format: Propagation::B3Single,
    })
}

/// Decodes B3 multi headers: the trace and span ids, `X-B3-Sampled` (`1`/`0`, or `true`/`false`
/// from old clients) and `X-B3-Flags: 1` (debug, which means sampled).
pub fn parse_b3_multi(
    trace_id: &[u8],
    span_id: &[u8],
    sampled: Option<&[u8]>,
    flags: Option<&[u8]>,
) -> Option<RemoteParent> {
    let trace_id = b3_trace_id(trace_id)?;
    let span_id: SpanId = hex_array(span_id)?;
    let sampled = match (flags, sampled) {
        (Some(b"1"), _) => Some(true),
        (_, Some(b"1" | b"true")) => Some(true),
        (_, Some(b"0" | b"false")) => Some(false),
        (_, None) => None,
        (_, Some(_)) => return None,
    };
    valid_ids(trace_id, span_id).then_some(RemoteParent {
        trace_id,
        span_id,
        sampled,
        format: Propagation::B3Multi,
    })
}

/// `traceparent` for our span: `00-{trace}-{span}-{01|00}`.
pub fn format_traceparent(trace_id: &TraceId, span_id: &SpanId, sampled: bool) -> [u8; 55] {
    let mut out = [0u8; 55];
    out[..3].copy_from_slice(b"00-");
    write_hex(&mut out[3..35], trace_id);
    out[35] = b'-';
    write_hex(&mut out[36..52], span_id);
    out[52] = b'-';
    out[53] = b'0';
    out[54] = if sampled { b'1' } else { b'0' };
    out
}

/// `b3` single header for our span: `{trace}-{span}-{1|0}`.
pub fn format_b3_single(trace_id: &TraceId, span_id: &SpanId, sampled: bool) -> [u8; 51] {
    let mut out = [0u8; 51];
    write_hex(&mut out[..32], trace_id);
    out[32] = b'-';
    write_hex(&mut out[33..49], span_id);
    out[49] = b'-';
    out[50] = if sampled { b'1' } else { b'0' };
    out
}

/// Lowercase hex of `bytes` into `out` (twice as long).
pub fn write_hex(out: &mut [u8], bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
}

/// A B3 trace id: 32 hex digits, or 16 (a 64-bit id, left-padded with zeros).
fn b3_trace_id(text: &[u8]) -> Option<TraceId> {
    match text.len() {
        32 => hex_array(text),
        16 => {
            let low: [u8; 8] = hex_array(text)?;
            let mut id = [0u8; 16];
            id[8..].copy_from_slice(&low);
            Some(id)
        }
        _ => None,
    }
}

fn valid_ids(trace_id: TraceId, span_id: SpanId) -> bool {
    trace_id != [0; 16] && span_id != [0; 8]
}

/// `N` bytes from exactly `2N` lowercase hex digits.
fn hex_array<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = hex_byte(pair[0], pair[1])?;
    }
    Some(out)
}

fn hex_byte(high: u8, low: u8) -> Option<u8> {
    Some(hex_digit(high)? << 4 | hex_digit(low)?)
}

/// A lowercase hex digit's value (W3C forbids upper case; B3 ids are lower case too).
fn hex_digit(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
