//! Target `h2_server`: our HTTP/2 server on one connection (`proxy::fuzzing::h2_server_bytes`:
//! `h2_server::serve` on an in-memory pipe, an empty config, so every request gets 404).
//!
//! The input is what a client sends after the connection preface, in one write, or in several
//! when frames carry the flag [`frames::PAUSE`] (0x80, which no frame type defines): after such
//! a frame the client waits for the server's answers before it sends on, so that flow control,
//! resets and request bodies also meet streams whose response is under way. The server must
//! end (the client closes its side once the server goes quiet after the last write), and what
//! it wrote must be a conversation a client can follow, checked frame by frame with this
//! crate's own reading of RFC 9113:
//!
//! - the bytes split exactly into frames, none longer than the client's largest
//!   SETTINGS_MAX_FRAME_SIZE (16,384 unless it raised it), the first one the server's
//!   SETTINGS; only DATA, HEADERS, CONTINUATION, RST_STREAM, SETTINGS (acknowledgements after
//!   the first), PING (acknowledgements), GOAWAY and WINDOW_UPDATE, each of its fixed size;
//! - a header block is HEADERS then CONTINUATION frames of the same stream, nothing between;
//!   each decodes on its own (the encoder uses the static table only) without a malformed
//!   field; a response's first block starts with a three-digit `:status`, trailers have no
//!   pseudo-header and end the stream; no connection-specific field (RFC 9113 §8.2.2);
//! - HEADERS and DATA go only to streams the client opened with HEADERS, DATA only after the
//!   final response head, neither after the stream's END_STREAM, and nothing but RST_STREAM
//!   after the server reset the stream; RST_STREAM only on streams the client named;
//! - DATA stays within the client's windows (per stream: the largest initial window in force
//!   from the stream's HEADERS on, plus the stream's increments; for the connection: 65,535
//!   plus its increments), and within a stated `content-length`;
//! - WINDOW_UPDATE increments are 1 to 2^31-1 and give back at most the DATA the client sent
//!   (the connection also gets its initial raise to the configured window);
//! - a PING acknowledgement echoes a PING of the client, SETTINGS acknowledgements are no more
//!   than the client's SETTINGS, and a GOAWAY is the last frame, once, naming a stream the
//!   client opened (or 0) at or above every stream that got a response.

mod frames;

use std::collections::HashMap;

use bytes::Bytes;
use hpack::{Decoded, Decoder, Field, Pseudo};
use proxy::fuzzing::h2_server_bytes;
use snapshot::client::ClientSettings;

use frames::{ClientFrames, Frame, flag, kind};

/// Error codes of RFC 9113 §7 (NO_ERROR to HTTP_1_1_REQUIRED).
const MAX_ERROR_CODE: u32 = 0xd;

/// Fields a response must not carry (RFC 9113 §8.2.2).
const CONNECTION_SPECIFIC: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// Runs the server on `data` and checks what it wrote.
///
/// # Panics
/// When the server hangs or writes something a client could not follow (or panics itself).
pub fn h2_server(data: &[u8]) {
    let output = h2_server_bytes(&frames::writes(data))
        .unwrap_or_else(|| panic!("the server did not end after the client closed its side"));
    check_output(data, &output);
}

/// Checks the server's `output` against the client's `input`.
fn check_output(input: &[u8], output: &[u8]) {
    let (frames, rest) = frames::split(output);
    assert!(
        rest.is_empty(),
        "{} bytes after the last whole frame (of {} frames)",
        rest.len(),
        frames.len()
    );
    let client = ClientFrames::of(input);
    let mut conversation = Conversation::new(&client);
    for (index, frame) in frames.iter().enumerate() {
        let is_last = index + 1 == frames.len();
        conversation.frame(index, frame, is_last);
    }
    assert!(
        conversation.block.is_none(),
        "the output ends inside a header block"
    );
}

/// What the server said on one stream so far.
#[derive(Debug, Default)]
struct StreamSent {
    /// The final (non-1xx) response head went out.
    has_final_head: bool,
    /// Its `content-length`, when it had one.
    content_length: Option<u64>,
    /// END_STREAM went out.
    is_ended: bool,
    /// RST_STREAM went out.
    is_reset: bool,
    data: u64,
    window_increments: u64,
}

/// A header block whose CONTINUATION frames are still to come.
struct OpenBlock {
    stream: u32,
    end_stream: bool,
    fragments: Vec<u8>,
}

/// The server's frames as a client follows them.
struct Conversation<'a> {
    client: &'a ClientFrames,
    streams: HashMap<u32, StreamSent>,
    block: Option<OpenBlock>,
    /// The connection's WINDOW_UPDATE beyond what the configured window adds to the default.
    connection_raise: u64,
    connection_increments: u64,
    data_total: u64,
    settings_acks: usize,
    ping_acks: usize,
}

impl<'a> Conversation<'a> {
    fn new(client: &'a ClientFrames) -> Conversation<'a> {
        let window = u64::from(
            ClientSettings::default()
                .http2
                .initial_connection_window_size,
        )
        .clamp(frames::DEFAULT_WINDOW, frames::MAX_WINDOW);
        Conversation {
            client,
            streams: HashMap::new(),
            block: None,
            connection_raise: window - frames::DEFAULT_WINDOW,
            connection_increments: 0,
            data_total: 0,
            settings_acks: 0,
            ping_acks: 0,
        }
    }

    fn frame(&mut self, index: usize, frame: &Frame<'_>, is_last: bool) {
        let length = frame.payload.len();
        assert!(
            length <= self.client.max_frame_size,
            "frame {index}: {length} bytes, the client allows {}",
            self.client.max_frame_size
        );
        if let Some(block) = &self.block {
            assert!(
                frame.kind == kind::CONTINUATION && frame.stream == block.stream,
                "frame {index}: {frame:?} inside the header block of stream {}",
                block.stream
            );
        }
        if index == 0 {
            assert!(
                frame.kind == kind::SETTINGS
                    && !frame.has(flag::ACK)
                    && frame.stream == 0
                    && length.is_multiple_of(6),
                "the first frame is not the server's SETTINGS: {frame:?}"
            );
            return;
        }
        match frame.kind {
            kind::DATA => self.data(index, frame),
            kind::HEADERS => self.headers(index, frame),
            kind::CONTINUATION => self.continuation(index, frame),
            kind::RST_STREAM => self.rst_stream(index, frame),
            kind::SETTINGS => {
                assert!(
                    frame.has(flag::ACK) && frame.stream == 0 && length == 0,
                    "frame {index}: a SETTINGS that is not an acknowledgement: {frame:?}"
                );
                self.settings_acks += 1;
                assert!(
                    self.settings_acks <= self.client.settings,
                    "frame {index}: more SETTINGS acknowledgements than the client's {}",
                    self.client.settings
                );
            }
            kind::PING => self.ping(index, frame),
            kind::GOAWAY => self.goaway(index, frame, is_last),
            kind::WINDOW_UPDATE => self.window_update(index, frame),
            other => panic!("frame {index}: the server sent a frame of type {other:#x}"),
        }
    }

    /// The stream of a HEADERS or DATA frame: one the client opened, still open on the
    /// server's side.
    fn response_stream(&mut self, index: usize, frame: &Frame<'_>) -> &mut StreamSent {
        let id = frame.stream;
        assert!(
            id % 2 == 1 && self.client.header_streams.contains(&id),
            "frame {index}: {frame:?} on stream {id}, which the client did not open"
        );
        let stream = self.streams.entry(id).or_default();
        assert!(
            !stream.is_ended && !stream.is_reset,
            "frame {index}: {frame:?} after the server ended or reset stream {id} ({stream:?})"
        );
        stream
    }

    fn data(&mut self, index: usize, frame: &Frame<'_>) {
        let length = frame.payload.len() as u64;
        let allowed = self.client.stream_window(frame.stream);
        let stream = self.response_stream(index, frame);
        assert!(
            stream.has_final_head,
            "frame {index}: DATA on stream {} before its response head",
            frame.stream
        );
        stream.data += length;
        stream.is_ended = frame.has(flag::END_STREAM);
        assert!(
            stream.data <= allowed,
            "frame {index}: {} bytes of DATA on stream {}, its windows allow {allowed}",
            stream.data,
            frame.stream
        );
        if let Some(declared) = stream.content_length {
            assert!(
                stream.data <= declared,
                "frame {index}: {} bytes of DATA on stream {} with content-length {declared}",
                stream.data,
                frame.stream
            );
        }
        self.data_total += length;
        let allowed = frames::DEFAULT_WINDOW + self.client.increments(0);
        assert!(
            self.data_total <= allowed,
            "frame {index}: {} bytes of DATA, the connection's window allows {allowed}",
            self.data_total
        );
    }

    fn headers(&mut self, index: usize, frame: &Frame<'_>) {
        self.response_stream(index, frame);
        assert!(
            !frame.has(flag::PADDED) && !frame.has(flag::PRIORITY),
            "frame {index}: HEADERS with padding or priority (the checks read neither)"
        );
        let block = OpenBlock {
            stream: frame.stream,
            end_stream: frame.has(flag::END_STREAM),
            fragments: frame.payload.to_vec(),
        };
        if frame.has(flag::END_HEADERS) {
            self.header_block(index, block);
        } else {
            self.block = Some(block);
        }
    }

    fn continuation(&mut self, index: usize, frame: &Frame<'_>) {
        let Some(mut block) = self.block.take() else {
            panic!("frame {index}: CONTINUATION outside a header block");
        };
        block.fragments.extend_from_slice(frame.payload);
        if frame.has(flag::END_HEADERS) {
            self.header_block(index, block);
        } else {
            self.block = Some(block);
        }
    }

    /// A whole header block: a response head, or trailers.
    fn header_block(&mut self, index: usize, block: OpenBlock) {
        let mut fields = Vec::new();
        let result = Decoder::new(4096).decode(&Bytes::from(block.fragments), usize::MAX, |f| {
            fields.push(f);
        });
        assert_eq!(
            result,
            Ok(Decoded::Complete),
            "frame {index}: the header block of stream {} does not decode on its own",
            block.stream
        );
        let stream = self.streams.entry(block.stream).or_default();
        let mut regular = fields.as_slice();
        if !stream.has_final_head {
            let status = match fields.first() {
                Some(Field::Pseudo(Pseudo::Status, value)) => parse_status(index, value),
                other => panic!("frame {index}: a response head starting with {other:?}"),
            };
            regular = &fields[1..];
            // A 1xx head is interim: the final one follows, on a stream still open.
            stream.has_final_head = status >= 200;
            assert!(
                stream.has_final_head || !block.end_stream,
                "frame {index}: END_STREAM on an interim {status} response"
            );
        } else {
            assert!(
                block.end_stream,
                "frame {index}: trailers without END_STREAM on stream {}",
                block.stream
            );
        }
        for field in regular {
            let Field::Regular(name, value) = field else {
                panic!("frame {index}: {field:?} where only regular fields may be");
            };
            assert!(
                !CONNECTION_SPECIFIC.contains(&name.as_str()),
                "frame {index}: connection-specific field {name} in a response"
            );
            if name == http::header::CONTENT_LENGTH {
                stream.content_length = value.to_str().ok().and_then(|v| v.parse().ok());
                assert!(
                    stream.content_length.is_some(),
                    "frame {index}: content-length {value:?}"
                );
            }
        }
        stream.is_ended = block.end_stream;
    }

    fn rst_stream(&mut self, index: usize, frame: &Frame<'_>) {
        assert!(
            frame.stream != 0 && frame.payload.len() == 4,
            "frame {index}: malformed RST_STREAM {frame:?}"
        );
        assert!(
            self.client.streams.contains(&frame.stream),
            "frame {index}: RST_STREAM on stream {}, which the client never named",
            frame.stream
        );
        let code = frames::read_u32(frame.payload);
        assert!(
            code <= MAX_ERROR_CODE,
            "frame {index}: error code {code:#x}"
        );
        self.streams.entry(frame.stream).or_default().is_reset = true;
    }

    fn ping(&mut self, index: usize, frame: &Frame<'_>) {
        assert!(
            frame.has(flag::ACK) && frame.stream == 0,
            "frame {index}: a PING that is not an acknowledgement: {frame:?}"
        );
        assert!(
            self.client
                .pings
                .iter()
                .any(|ping| ping[..] == *frame.payload),
            "frame {index}: a PING acknowledgement the client did not ask for: {frame:?}"
        );
        self.ping_acks += 1;
        assert!(
            self.ping_acks <= self.client.pings.len(),
            "frame {index}: more PING acknowledgements than PINGs"
        );
    }

    fn goaway(&mut self, index: usize, frame: &Frame<'_>, is_last: bool) {
        assert!(is_last, "frame {index}: GOAWAY, then more frames");
        assert!(
            frame.stream == 0 && frame.payload.len() == 8,
            "frame {index}: malformed GOAWAY {frame:?}"
        );
        let last_stream = frames::read_u32(frame.payload);
        assert!(
            last_stream == 0 || self.client.header_streams.contains(&last_stream),
            "frame {index}: GOAWAY names stream {last_stream}, which the client did not open"
        );
        let answered = self
            .streams
            .iter()
            .filter(|(_, stream)| stream.has_final_head)
            .map(|(&id, _)| id)
            .max();
        assert!(
            answered.is_none_or(|id| id <= last_stream),
            "frame {index}: GOAWAY names stream {last_stream}, stream {answered:?} got a response"
        );
        let code = frames::read_u32(&frame.payload[4..]);
        assert!(
            code <= MAX_ERROR_CODE,
            "frame {index}: error code {code:#x}"
        );
    }

    fn window_update(&mut self, index: usize, frame: &Frame<'_>) {
        assert!(
            frame.payload.len() == 4,
            "frame {index}: malformed WINDOW_UPDATE {frame:?}"
        );
        let word = frames::read_u32(frame.payload);
        assert!(
            word >> 31 == 0 && word != 0,
            "frame {index}: WINDOW_UPDATE of {word:#x}"
        );
        let increment = u64::from(word);
        if frame.stream == 0 {
            self.connection_increments += increment;
            let allowed = self.connection_raise + self.client.data_total;
            assert!(
                self.connection_increments <= allowed,
                "frame {index}: the connection's window grew by {}, the client sent {} of DATA",
                self.connection_increments,
                self.client.data_total
            );
            return;
        }
        let id = frame.stream;
        let received = self.client.data_by_stream.get(&id).copied().unwrap_or(0);
        let stream = self.streams.entry(id).or_default();
        assert!(
            !stream.is_reset,
            "frame {index}: WINDOW_UPDATE on stream {id} after the server reset it"
        );
        stream.window_increments += increment;
        assert!(
            stream.window_increments <= received,
            "frame {index}: stream {id}'s window grew by {}, the client sent {received} of DATA",
            stream.window_increments
        );
    }
}

/// A `:status` value: three digits.
fn parse_status(index: usize, value: &[u8]) -> u16 {
    let status = std::str::from_utf8(value)
        .ok()
        .filter(|text| text.len() == 3 && text.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|text| text.parse().ok());
    status.unwrap_or_else(|| panic!("frame {index}: :status {value:?}"))
}

#[cfg(test)]
mod tests;
