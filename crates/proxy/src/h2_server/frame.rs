//! HTTP/2 frames (RFC 9113 §4, §6): the 9-byte header the server reads, the error codes, and
//! the frames it writes, appended to the connection's output buffer.

/// The frame header's length.
pub(super) const HEADER_LEN: usize = 9;

/// The largest window a flow-control window may reach (RFC 9113 §6.9.1).
pub(super) const MAX_WINDOW: i64 = (1 << 31) - 1;

/// The largest stream identifier (the first GOAWAY of a graceful end names it).
pub(super) const MAX_STREAM_ID: u32 = (1 << 31) - 1;

/// The window both sides start with until SETTINGS say otherwise (RFC 9113 §6.9.2).
pub(super) const DEFAULT_WINDOW: i64 = 65_535;

/// An error code of RST_STREAM and GOAWAY (RFC 9113 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ErrorCode(pub(crate) u32);

impl ErrorCode {
    pub(crate) const NO_ERROR: ErrorCode = ErrorCode(0x0);
    pub(crate) const PROTOCOL_ERROR: ErrorCode = ErrorCode(0x1);
    pub(crate) const INTERNAL_ERROR: ErrorCode = ErrorCode(0x2);
    pub(crate) const FLOW_CONTROL_ERROR: ErrorCode = ErrorCode(0x3);
    pub(crate) const STREAM_CLOSED: ErrorCode = ErrorCode(0x5);
    pub(crate) const FRAME_SIZE_ERROR: ErrorCode = ErrorCode(0x6);
    pub(crate) const REFUSED_STREAM: ErrorCode = ErrorCode(0x7);
    pub(crate) const CANCEL: ErrorCode = ErrorCode(0x8);
    pub(crate) const COMPRESSION_ERROR: ErrorCode = ErrorCode(0x9);
    pub(crate) const ENHANCE_YOUR_CALM: ErrorCode = ErrorCode(0xb);

    /// The code's name, for logs.
    pub(crate) fn name(self) -> &'static str {
        match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => "unknown error code",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Frame types (RFC 9113 §6).
pub(super) mod kind {
    pub(in crate::h2_server) const DATA: u8 = 0x0;
    pub(in crate::h2_server) const HEADERS: u8 = 0x1;
    pub(in crate::h2_server) const PRIORITY: u8 = 0x2;
    pub(in crate::h2_server) const RST_STREAM: u8 = 0x3;
    pub(in crate::h2_server) const SETTINGS: u8 = 0x4;
    pub(in crate::h2_server) const PUSH_PROMISE: u8 = 0x5;
    pub(in crate::h2_server) const PING: u8 = 0x6;
    pub(in crate::h2_server) const GOAWAY: u8 = 0x7;
    pub(in crate::h2_server) const WINDOW_UPDATE: u8 = 0x8;
    pub(in crate::h2_server) const CONTINUATION: u8 = 0x9;
}

/// Frame flags.
pub(super) mod flag {
    pub(in crate::h2_server) const END_STREAM: u8 = 0x1;
    pub(in crate::h2_server) const ACK: u8 = 0x1;
    pub(in crate::h2_server) const END_HEADERS: u8 = 0x4;
    pub(in crate::h2_server) const PADDED: u8 = 0x8;
    pub(in crate::h2_server) const PRIORITY: u8 = 0x20;
}

/// SETTINGS parameters (RFC 9113 §6.5.2, RFC 8441 §3).
pub(super) mod setting {
    pub(in crate::h2_server) const HEADER_TABLE_SIZE: u16 = 0x1;
    pub(in crate::h2_server) const ENABLE_PUSH: u16 = 0x2;
    pub(in crate::h2_server) const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub(in crate::h2_server) const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub(in crate::h2_server) const MAX_FRAME_SIZE: u16 = 0x5;
    pub(in crate::h2_server) const MAX_HEADER_LIST_SIZE: u16 = 0x6;
    pub(in crate::h2_server) const ENABLE_CONNECT_PROTOCOL: u16 = 0x8;
}

/// A frame's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FrameHeader {
    /// The payload's length.
    pub(super) length: usize,
    pub(super) kind: u8,
    pub(super) flags: u8,
    /// The stream identifier (the reserved bit cleared).
    pub(super) stream: u32,
}

impl FrameHeader {
    /// The header at the start of `bytes`, which holds at least [`HEADER_LEN`] bytes.
    pub(super) fn parse(bytes: &[u8]) -> Option<FrameHeader> {
        let head: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
        Some(FrameHeader {
            length: usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]),
            kind: head[3],
            flags: head[4],
            stream: read_u32(&head[5..9]) & 0x7fff_ffff,
        })
    }

    pub(super) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// A big-endian u32 from the first four bytes of `bytes` (0 when shorter).
pub(super) fn read_u32(bytes: &[u8]) -> u32 {
    match bytes.get(..4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// A frame header's bytes (`length` below 2^24).
pub(super) fn head_bytes(length: usize, kind: u8, flags: u8, stream: u32) -> [u8; HEADER_LEN] {
    let [_, l1, l2, l3] = u32::try_from(length).unwrap_or(0).to_be_bytes();
    let [s1, s2, s3, s4] = (stream & 0x7fff_ffff).to_be_bytes();
    [l1, l2, l3, kind, flags, s1, s2, s3, s4]
}

/// Appends a frame header.
pub(super) fn write_head(out: &mut Vec<u8>, length: usize, kind: u8, flags: u8, stream: u32) {
    out.extend_from_slice(&head_bytes(length, kind, flags, stream));
}

/// Appends a SETTINGS frame with these parameters.
pub(super) fn write_settings(out: &mut Vec<u8>, parameters: &[(u16, u32)]) {
    write_head(out, parameters.len() * 6, kind::SETTINGS, 0, 0);
    for (id, value) in parameters {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

pub(super) fn write_settings_ack(out: &mut Vec<u8>) {
    write_head(out, 0, kind::SETTINGS, flag::ACK, 0);
}

pub(super) fn write_ping(out: &mut Vec<u8>, payload: &[u8; 8]) {
    write_head(out, payload.len(), kind::PING, 0, 0);
    out.extend_from_slice(payload);
}

pub(super) fn write_ping_ack(out: &mut Vec<u8>, payload: &[u8]) {
    write_head(out, payload.len(), kind::PING, flag::ACK, 0);
    out.extend_from_slice(payload);
}

pub(super) fn write_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    write_head(out, 4, kind::WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&(increment & 0x7fff_ffff).to_be_bytes());
}

pub(super) fn write_rst_stream(out: &mut Vec<u8>, stream: u32, code: ErrorCode) {
    write_head(out, 4, kind::RST_STREAM, 0, stream);
    out.extend_from_slice(&code.0.to_be_bytes());
}

pub(super) fn write_goaway(out: &mut Vec<u8>, last_stream: u32, code: ErrorCode) {
    write_head(out, 8, kind::GOAWAY, 0, 0);
    out.extend_from_slice(&(last_stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(&code.0.to_be_bytes());
}

/// Appends a DATA frame carrying `data`.
pub(super) fn write_data(out: &mut Vec<u8>, stream: u32, data: &[u8], end_stream: bool) {
    let flags = if end_stream { flag::END_STREAM } else { 0 };
    write_head(out, data.len(), kind::DATA, flags, stream);
    out.extend_from_slice(data);
}

/// Appends a header block as HEADERS (and CONTINUATION frames when it is longer than
/// `max_frame`).
pub(super) fn write_header_block(
    out: &mut Vec<u8>,
    stream: u32,
    block: &[u8],
    end_stream: bool,
    max_frame: usize,
) {
    let mut chunks = block.chunks(max_frame.max(1));
    let first = chunks.next().unwrap_or(&[]);
    let last = first.len() == block.len();
    let mut flags = if end_stream { flag::END_STREAM } else { 0 };
    if last {
        flags |= flag::END_HEADERS;
    }
    write_head(out, first.len(), kind::HEADERS, flags, stream);
    out.extend_from_slice(first);
    let mut sent = first.len();
    for chunk in chunks {
        sent += chunk.len();
        let flags = if sent == block.len() {
            flag::END_HEADERS
        } else {
            0
        };
        write_head(out, chunk.len(), kind::CONTINUATION, flags, stream);
        out.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_with_the_reserved_bit_cleared() {
        let mut out = Vec::new();
        write_head(&mut out, 0x01_02_03, kind::HEADERS, flag::END_HEADERS, 7);
        out[5] |= 0x80;
        let head = FrameHeader::parse(&out).expect("nine bytes");
        assert_eq!(
            head,
            FrameHeader {
                length: 0x01_02_03,
                kind: kind::HEADERS,
                flags: flag::END_HEADERS,
                stream: 7
            }
        );
        assert!(FrameHeader::parse(&out[..8]).is_none());
    }

    #[test]
    fn a_long_block_is_split_into_continuations_ending_the_headers_on_the_last() {
        let mut out = Vec::new();
        let block = [7u8; 25];
        write_header_block(&mut out, 3, &block, true, 10);
        let first = FrameHeader::parse(&out).expect("headers");
        assert_eq!((first.kind, first.length), (kind::HEADERS, 10));
        assert_eq!(first.flags, flag::END_STREAM);
        let second = FrameHeader::parse(&out[19..]).expect("continuation");
        assert_eq!(
            (second.kind, second.length, second.flags),
            (kind::CONTINUATION, 10, 0)
        );
        let third = FrameHeader::parse(&out[38..]).expect("last continuation");
        assert_eq!(
            (third.kind, third.length, third.flags),
            (kind::CONTINUATION, 5, flag::END_HEADERS)
        );
        assert_eq!(out.len(), 3 * HEADER_LEN + 25);
    }
}
