//! HTTP/2 frames as bytes (RFC 9113 §4.1), read independently of the server's own code, and
//! what the client's frames allowed the server to do.

use std::collections::{HashMap, HashSet};

/// The frame header's length.
pub(super) const HEADER_LEN: usize = 9;

/// The protocol's default SETTINGS_MAX_FRAME_SIZE and flow-control window (RFC 9113 §6.5.2).
pub(super) const DEFAULT_MAX_FRAME: usize = 16_384;
pub(super) const DEFAULT_WINDOW: u64 = 65_535;

/// The largest flow-control window (RFC 9113 §6.9.1).
pub(super) const MAX_WINDOW: u64 = (1 << 31) - 1;

/// Frame types (RFC 9113 §6).
pub(super) mod kind {
    pub(in crate::h2_server) const DATA: u8 = 0x0;
    pub(in crate::h2_server) const HEADERS: u8 = 0x1;
    pub(in crate::h2_server) const RST_STREAM: u8 = 0x3;
    pub(in crate::h2_server) const SETTINGS: u8 = 0x4;
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

/// A flag no frame type defines, which the target reads as "the client waits here": the input
/// up to the end of such a frame is one write, after which the client waits until the server
/// has answered. The server must ignore the flag (RFC 9113 §4.1).
pub(super) const PAUSE: u8 = 0x80;

/// SETTINGS parameters the checks need.
const INITIAL_WINDOW_SIZE: u16 = 0x4;
const MAX_FRAME_SIZE: u16 = 0x5;

/// One frame, borrowing its payload.
#[derive(Clone, Copy)]
pub(super) struct Frame<'a> {
    pub(super) kind: u8,
    pub(super) flags: u8,
    /// The stream identifier, reserved bit cleared.
    pub(super) stream: u32,
    pub(super) payload: &'a [u8],
}

impl Frame<'_> {
    pub(super) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Type, flags, stream and length, and the payload's first bytes: what a failure message needs.
impl std::fmt::Debug for Frame<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = [
            "DATA",
            "HEADERS",
            "PRIORITY",
            "RST_STREAM",
            "SETTINGS",
            "PUSH_PROMISE",
            "PING",
            "GOAWAY",
            "WINDOW_UPDATE",
            "CONTINUATION",
        ];
        match names.get(usize::from(self.kind)) {
            Some(name) => f.write_str(name)?,
            None => write!(f, "type {:#x}", self.kind)?,
        }
        let shown = &self.payload[..self.payload.len().min(16)];
        write!(
            f,
            " flags {:#x} stream {} ({} bytes: {shown:02x?}",
            self.flags,
            self.stream,
            self.payload.len()
        )?;
        f.write_str(if shown.len() < self.payload.len() {
            "...)"
        } else {
            ")"
        })
    }
}

/// A big-endian u32 of four bytes.
pub(super) fn read_u32(bytes: &[u8]) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_be_bytes(word)
}

/// The whole frames at the start of `bytes`, and what is left (a cut frame, or nothing).
pub(super) fn split(mut bytes: &[u8]) -> (Vec<Frame<'_>>, &[u8]) {
    let mut frames = Vec::new();
    while bytes.len() >= HEADER_LEN {
        let length =
            usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        let Some(payload) = bytes.get(HEADER_LEN..HEADER_LEN + length) else {
            break;
        };
        frames.push(Frame {
            kind: bytes[3],
            flags: bytes[4],
            stream: read_u32(&bytes[5..9]) & 0x7fff_ffff,
            payload,
        });
        bytes = &bytes[HEADER_LEN + length..];
    }
    (frames, bytes)
}

/// The input cut after every frame flagged [`PAUSE`]: the client's writes.
pub(super) fn writes(input: &[u8]) -> Vec<&[u8]> {
    let mut writes = Vec::new();
    let (mut start, mut end) = (0, 0);
    for frame in split(input).0 {
        end += HEADER_LEN + frame.payload.len();
        if frame.has(PAUSE) {
            writes.push(&input[start..end]);
            start = end;
        }
    }
    if start < input.len() {
        writes.push(&input[start..]);
    }
    writes
}

/// What the client's frames (the fuzz input, after the preface) allowed the server, taken
/// over every frame of the input: the server reads them in the same order and may stop
/// early, so each of these is an upper bound of what it saw.
#[derive(Debug, Default)]
pub(super) struct ClientFrames {
    /// The largest SETTINGS_MAX_FRAME_SIZE in range, at least the default.
    pub(super) max_frame_size: usize,
    /// SETTINGS_INITIAL_WINDOW_SIZE as the frames go: the value in force, and each new one
    /// with the index of its frame.
    initial_window: u64,
    initial_window_changes: Vec<(usize, u64)>,
    /// Where each stream's first HEADERS is, and the initial window in force there.
    opened: HashMap<u32, (usize, u64)>,
    /// WINDOW_UPDATE increments by stream (0: the connection).
    pub(super) window_increments: HashMap<u32, u64>,
    /// DATA payload lengths (padding included) by stream, and their sum.
    pub(super) data_by_stream: HashMap<u32, u64>,
    pub(super) data_total: u64,
    /// The payloads of PING frames that ask for an answer.
    pub(super) pings: Vec<[u8; 8]>,
    /// SETTINGS frames that ask for an acknowledgement.
    pub(super) settings: usize,
    /// Streams of HEADERS frames: the only streams a response may go to.
    pub(super) header_streams: HashSet<u32>,
    /// Streams of any frame: the only streams the server may reset.
    pub(super) streams: HashSet<u32>,
}

impl ClientFrames {
    pub(super) fn of(input: &[u8]) -> ClientFrames {
        let mut client = ClientFrames {
            max_frame_size: DEFAULT_MAX_FRAME,
            initial_window: DEFAULT_WINDOW,
            ..ClientFrames::default()
        };
        for (index, frame) in split(input).0.iter().enumerate() {
            client.streams.insert(frame.stream);
            client.frame(index, frame);
        }
        client
    }

    fn frame(&mut self, index: usize, frame: &Frame<'_>) {
        let length = frame.payload.len() as u64;
        match frame.kind {
            kind::DATA => {
                *self.data_by_stream.entry(frame.stream).or_default() += length;
                self.data_total += length;
            }
            kind::HEADERS => {
                self.header_streams.insert(frame.stream);
                let window = self.initial_window;
                self.opened.entry(frame.stream).or_insert((index, window));
            }
            kind::SETTINGS if !frame.has(flag::ACK) => {
                self.settings += 1;
                for parameter in frame.payload.chunks_exact(6) {
                    self.setting(
                        index,
                        u16::from_be_bytes([parameter[0], parameter[1]]),
                        read_u32(&parameter[2..]),
                    );
                }
            }
            kind::PING if !frame.has(flag::ACK) => {
                if let Ok(payload) = frame.payload.try_into() {
                    self.pings.push(payload);
                }
            }
            kind::WINDOW_UPDATE if frame.payload.len() == 4 => {
                let increment = u64::from(read_u32(frame.payload) & 0x7fff_ffff);
                *self.window_increments.entry(frame.stream).or_default() += increment;
            }
            _ => {}
        }
    }

    fn setting(&mut self, index: usize, id: u16, value: u32) {
        match id {
            INITIAL_WINDOW_SIZE if u64::from(value) <= MAX_WINDOW => {
                self.initial_window = u64::from(value);
                self.initial_window_changes.push((index, u64::from(value)));
            }
            MAX_FRAME_SIZE if (16_384..=16_777_215).contains(&value) => {
                self.max_frame_size = self.max_frame_size.max(value as usize);
            }
            _ => {}
        }
    }

    /// The most DATA the client's windows allowed on `stream`: its largest initial window
    /// (the one in force at its HEADERS, or any set later, RFC 9113 §6.9.2) plus its
    /// increments. The server takes frames in order, so a SETTINGS before the HEADERS was
    /// either in force when the stream opened or ended the connection before.
    pub(super) fn stream_window(&self, stream: u32) -> u64 {
        let Some(&(opened, window)) = self.opened.get(&stream) else {
            return 0;
        };
        let later = self.initial_window_changes.iter();
        let largest = later
            .filter(|&&(index, _)| index > opened)
            .map(|&(_, value)| value)
            .fold(window, u64::max);
        largest + self.increments(stream)
    }

    /// WINDOW_UPDATE increments the client sent for `stream`.
    pub(super) fn increments(&self, stream: u32) -> u64 {
        self.window_increments.get(&stream).copied().unwrap_or(0)
    }
}
