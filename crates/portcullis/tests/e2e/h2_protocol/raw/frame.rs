//! HTTP/2 frames as the raw client writes them (RFC 9113 §4, §6), the frames it reads back
//! ([`Frame`]), and the names of types and error codes for messages.

use std::fmt;

use bytes::Bytes;

use super::Block;

/// The client connection preface (RFC 9113 §3.4).
pub(in crate::h2_protocol) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types (RFC 9113 §6).
pub(in crate::h2_protocol) mod kind {
    pub(in crate::h2_protocol) const DATA: u8 = 0x0;
    pub(in crate::h2_protocol) const HEADERS: u8 = 0x1;
    pub(in crate::h2_protocol) const RST_STREAM: u8 = 0x3;
    pub(in crate::h2_protocol) const SETTINGS: u8 = 0x4;
    pub(in crate::h2_protocol) const PING: u8 = 0x6;
    pub(in crate::h2_protocol) const GOAWAY: u8 = 0x7;
    pub(in crate::h2_protocol) const WINDOW_UPDATE: u8 = 0x8;
    pub(in crate::h2_protocol) const CONTINUATION: u8 = 0x9;
}

/// Frame flags (RFC 9113 §6).
pub(in crate::h2_protocol) mod flag {
    pub(in crate::h2_protocol) const END_STREAM: u8 = 0x1;
    pub(in crate::h2_protocol) const ACK: u8 = 0x1;
    pub(in crate::h2_protocol) const END_HEADERS: u8 = 0x4;
    pub(in crate::h2_protocol) const PADDED: u8 = 0x8;
}

/// Error codes (RFC 9113 §7).
pub(in crate::h2_protocol) mod code {
    pub(in crate::h2_protocol) const NO_ERROR: u32 = 0x0;
    pub(in crate::h2_protocol) const PROTOCOL_ERROR: u32 = 0x1;
    pub(in crate::h2_protocol) const FRAME_SIZE_ERROR: u32 = 0x6;
    pub(in crate::h2_protocol) const REFUSED_STREAM: u32 = 0x7;
    pub(in crate::h2_protocol) const CANCEL: u32 = 0x8;
    pub(in crate::h2_protocol) const COMPRESSION_ERROR: u32 = 0x9;
    pub(in crate::h2_protocol) const ENHANCE_YOUR_CALM: u32 = 0xb;
}

/// SETTINGS parameters (RFC 9113 §6.5.2).
pub(in crate::h2_protocol) mod setting {
    pub(in crate::h2_protocol) const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub(in crate::h2_protocol) const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub(in crate::h2_protocol) const MAX_FRAME_SIZE: u16 = 0x5;
}

fn kind_name(kind: u8) -> String {
    let name = match kind {
        0x0 => "DATA",
        0x1 => "HEADERS",
        0x2 => "PRIORITY",
        0x3 => "RST_STREAM",
        0x4 => "SETTINGS",
        0x5 => "PUSH_PROMISE",
        0x6 => "PING",
        0x7 => "GOAWAY",
        0x8 => "WINDOW_UPDATE",
        0x9 => "CONTINUATION",
        other => return format!("frame type {other:#x}"),
    };
    name.to_owned()
}

/// An error code's name, for messages.
pub(in crate::h2_protocol) fn code_name(code: u32) -> String {
    let name = match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        other => return format!("error code {other:#x}"),
    };
    name.to_owned()
}

/// A frame's bytes.
pub(in crate::h2_protocol) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let [_, l1, l2, l3] = u32::try_from(payload.len())
        .expect("test frames are shorter than 2^24 bytes")
        .to_be_bytes();
    let mut bytes = vec![l1, l2, l3, kind, flags];
    bytes.extend_from_slice(&stream.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// HEADERS carrying a whole `block` (END_HEADERS).
pub(in crate::h2_protocol) fn headers(stream: u32, block: &Block, end_stream: bool) -> Vec<u8> {
    let mut flags = flag::END_HEADERS;
    if end_stream {
        flags |= flag::END_STREAM;
    }
    frame(kind::HEADERS, flags, stream, block.bytes())
}

/// A header block split into HEADERS and CONTINUATION frames of `piece` bytes (the last may be
/// shorter), END_HEADERS on the last one only when `complete`.
pub(in crate::h2_protocol) fn split_block(
    stream: u32,
    block: &[u8],
    piece: usize,
    end_stream: bool,
    complete: bool,
) -> Vec<u8> {
    let pieces: Vec<&[u8]> = block.chunks(piece).collect();
    let mut frames = Vec::new();
    for (index, bytes) in pieces.iter().enumerate() {
        let mut flags = 0;
        if index + 1 == pieces.len() && complete {
            flags |= flag::END_HEADERS;
        }
        let kind = if index == 0 {
            if end_stream {
                flags |= flag::END_STREAM;
            }
            kind::HEADERS
        } else {
            kind::CONTINUATION
        };
        frames.extend(frame(kind, flags, stream, bytes));
    }
    frames
}

pub(in crate::h2_protocol) fn data(stream: u32, payload: &[u8], end_stream: bool) -> Vec<u8> {
    let flags = if end_stream { flag::END_STREAM } else { 0 };
    frame(kind::DATA, flags, stream, payload)
}

/// DATA with PADDED: `padding` zero bytes after `payload` (RFC 9113 §6.1); the frame's whole
/// length (1 + payload + padding) counts against the windows.
pub(in crate::h2_protocol) fn padded_data(
    stream: u32,
    payload: &[u8],
    padding: u8,
    end_stream: bool,
) -> Vec<u8> {
    let mut flags = flag::PADDED;
    if end_stream {
        flags |= flag::END_STREAM;
    }
    let mut body = vec![padding];
    body.extend_from_slice(payload);
    body.resize(body.len() + usize::from(padding), 0);
    frame(kind::DATA, flags, stream, &body)
}

pub(in crate::h2_protocol) fn rst_stream(stream: u32, error: u32) -> Vec<u8> {
    frame(kind::RST_STREAM, 0, stream, &error.to_be_bytes())
}

pub(in crate::h2_protocol) fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(kind::WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

pub(in crate::h2_protocol) fn ping(payload: [u8; 8]) -> Vec<u8> {
    frame(kind::PING, 0, 0, &payload)
}

pub(in crate::h2_protocol) fn settings(parameters: &[(u16, u32)]) -> Vec<u8> {
    let mut payload = Vec::new();
    for (id, value) in parameters {
        payload.extend_from_slice(&id.to_be_bytes());
        payload.extend_from_slice(&value.to_be_bytes());
    }
    frame(kind::SETTINGS, 0, 0, &payload)
}

/// One frame from the gateway.
#[derive(Clone)]
pub(in crate::h2_protocol) struct Frame {
    /// The payload's length (kept by [`Frame::without_payload`]).
    pub(in crate::h2_protocol) length: usize,
    pub(in crate::h2_protocol) kind: u8,
    pub(in crate::h2_protocol) flags: u8,
    pub(in crate::h2_protocol) stream: u32,
    pub(in crate::h2_protocol) payload: Bytes,
}

impl Frame {
    pub(in crate::h2_protocol) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// The error code of a RST_STREAM or GOAWAY.
    pub(in crate::h2_protocol) fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            kind::RST_STREAM => 0,
            kind::GOAWAY => 4,
            _ => return None,
        };
        let bytes = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    }

    /// The increment of a WINDOW_UPDATE, the last stream id of a GOAWAY.
    pub(in crate::h2_protocol) fn first_word(&self) -> Option<u32> {
        let bytes = self.payload.get(..4)?;
        Some(u32::from_be_bytes(bytes.try_into().ok()?) & 0x7fff_ffff)
    }

    /// The frame with its length noted and its payload dropped.
    pub(in crate::h2_protocol) fn without_payload(&self) -> Frame {
        Frame {
            payload: Bytes::new(),
            ..self.clone()
        }
    }

    /// Whether this is a RST_STREAM of `stream` with `error`.
    pub(in crate::h2_protocol) fn is_reset(&self, stream: u32, error: u32) -> bool {
        self.kind == kind::RST_STREAM && self.stream == stream && self.error_code() == Some(error)
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on stream {} (flags {:#04x}, {} bytes",
            kind_name(self.kind),
            self.stream,
            self.flags,
            self.length
        )?;
        if let Some(error) = self.error_code() {
            write!(f, ", {}", code_name(error))?;
        }
        if self.kind == kind::GOAWAY
            && let Some(last) = self.first_word()
        {
            write!(f, ", last stream {last}")?;
        }
        f.write_str(")")
    }
}
