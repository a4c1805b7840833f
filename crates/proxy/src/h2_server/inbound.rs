//! The client's frames, one by one, as RFC 9113 §5 and §6 say to take them: a stream error
//! resets the stream (RST_STREAM), a connection error ends the connection ([`Fatal`]).

use bytes::{Buf, Bytes, BytesMut};
use hpack::{Decoded, Field};
use tokio::io::{AsyncRead, AsyncWrite};

use super::frame::{self, ErrorCode, FrameHeader, flag, kind, setting};
use super::request::{RequestFields, TrailerFields};
use super::{
    DRAIN_PING, Fatal, MAX_CONTINUATION_FRAMES, MAX_EMPTY_DATA_FRAMES, MAX_FRAME_SIZE,
    PartialBlock, Server,
};
use crate::guard::H2_PREFACE;

fn connection_error(code: ErrorCode, reason: &'static str) -> Fatal {
    Fatal::Connection(code, reason)
}

fn protocol_error(reason: &'static str) -> Fatal {
    Fatal::Connection(ErrorCode::PROTOCOL_ERROR, reason)
}

impl<I> Server<'_, I>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    /// The header of the next complete frame in the read buffer (after the preface).
    pub(super) fn next_frame(&mut self) -> Result<Option<FrameHeader>, Fatal> {
        if !self.preface_read {
            if self.read.len() < H2_PREFACE.len() {
                return Ok(None);
            }
            if self.read[..H2_PREFACE.len()] != H2_PREFACE[..] {
                return Err(protocol_error("not the HTTP/2 connection preface"));
            }
            self.read.advance(H2_PREFACE.len());
            self.preface_read = true;
        }
        let Some(head) = FrameHeader::parse(&self.read) else {
            return Ok(None);
        };
        if head.length > MAX_FRAME_SIZE {
            return Err(connection_error(
                ErrorCode::FRAME_SIZE_ERROR,
                "a frame beyond SETTINGS_MAX_FRAME_SIZE",
            ));
        }
        let size = frame::HEADER_LEN + head.length;
        if self.read.len() < size {
            self.read.reserve(size - self.read.len());
            return Ok(None);
        }
        Ok(Some(head))
    }

    /// Handles the frame at the start of the read buffer, and takes it out.
    pub(super) fn on_frame(&mut self, head: FrameHeader) -> Result<(), Fatal> {
        if !self.settings_seen && head.kind != kind::SETTINGS {
            return Err(protocol_error("the first frame is not SETTINGS"));
        }
        if let Some(block) = &self.block
            && (head.kind != kind::CONTINUATION || head.stream != block.stream)
        {
            return Err(protocol_error("a frame inside a header block"));
        }
        let names_a_stream = matches!(
            head.kind,
            kind::DATA | kind::HEADERS | kind::RST_STREAM | kind::WINDOW_UPDATE
        );
        if names_a_stream && head.stream != 0 && head.stream.is_multiple_of(2) {
            // Even streams are the server's, and it opens none: they stay idle (RFC 9113
            // §5.1.1).
            return Err(protocol_error("a frame on an even stream"));
        }
        match head.kind {
            kind::DATA => self.on_data(head),
            kind::HEADERS => self.on_headers(head),
            kind::CONTINUATION => self.on_continuation(head),
            kind::PRIORITY => self.on_priority(head),
            kind::RST_STREAM => self.on_reset(head),
            kind::SETTINGS => self.on_settings(head),
            kind::PING => self.on_ping(head),
            kind::GOAWAY => self.on_goaway(head),
            kind::WINDOW_UPDATE => self.on_window_update(head),
            kind::PUSH_PROMISE => Err(protocol_error("PUSH_PROMISE from a client")),
            // Unknown types are ignored (RFC 9113 §4.1).
            _ => {
                self.skip(head);
                Ok(())
            }
        }
    }

    /// The frame's payload, taken out of the read buffer.
    fn take_payload(&mut self, head: FrameHeader) -> Bytes {
        self.read.advance(frame::HEADER_LEN);
        self.read.split_to(head.length).freeze()
    }

    fn skip(&mut self, head: FrameHeader) {
        self.read.advance(frame::HEADER_LEN + head.length);
    }

    /// The payload of a control frame (read in place, then [`Self::skip`]ped).
    fn payload(&self, head: FrameHeader) -> &[u8] {
        &self.read[frame::HEADER_LEN..frame::HEADER_LEN + head.length]
    }

    fn on_data(&mut self, head: FrameHeader) -> Result<(), Fatal> {
        let id = head.stream;
        if id == 0 {
            return Err(protocol_error("DATA on stream 0"));
        }
        let payload = self.take_payload(head);
        let data = strip_padding(head, payload)?;
        let length = head.length;
        // The whole frame counts against the windows, padding too (RFC 9113 §6.9.1).
        if length as i64 > self.recv_window {
            return Err(connection_error(
                ErrorCode::FLOW_CONTROL_ERROR,
                "DATA beyond the connection's window",
            ));
        }
        self.recv_window -= length as i64;
        let end = head.has(flag::END_STREAM);
        if data.is_empty() && !end {
            self.empty_data_frames += 1;
            if self.empty_data_frames > MAX_EMPTY_DATA_FRAMES {
                return Err(connection_error(
                    ErrorCode::ENHANCE_YOUR_CALM,
                    "a flood of empty DATA frames",
                ));
            }
        } else {
            self.empty_data_frames = 0;
        }
        let Some(key) = self.key_of(id) else {
            self.give_back_connection(length);
            if id > self.last_stream {
                return Err(protocol_error("DATA on an idle stream"));
            }
            if !self.recently_reset.contains(&id) {
                self.reset_id(id, ErrorCode::STREAM_CLOSED);
            }
            return Ok(());
        };
        let stream = &mut self.streams[key];
        if !stream.recv_open {
            self.give_back_connection(length);
            return self.reset_stream(key, ErrorCode::STREAM_CLOSED);
        }
        if length as i64 > stream.recv_window {
            self.give_back_connection(length);
            return self.reset_stream(key, ErrorCode::FLOW_CONTROL_ERROR);
        }
        stream.recv_window -= length as i64;
        if let Some(remaining) = stream.remaining.as_mut() {
            let Some(left) = remaining.checked_sub(data.len() as u64) else {
                self.give_back_connection(length);
                return self.reset_stream(key, ErrorCode::PROTOCOL_ERROR);
            };
            *remaining = left;
            if end && left != 0 {
                self.give_back_connection(length);
                return self.reset_stream(key, ErrorCode::PROTOCOL_ERROR);
            }
        }
        // Padding is nobody's to read: given back at once.
        let mut unread = length - data.len();
        match stream.shared.as_ref() {
            Some(shared) => {
                let mut state = shared.lock();
                if state.reader_gone {
                    unread += data.len();
                } else if !data.is_empty() {
                    state.received.push_back(data);
                }
                if end {
                    state.received_end = true;
                }
                state.wake_reader();
            }
            None => unread += data.len(),
        }
        if end {
            stream.recv_open = false;
        }
        if unread > 0 {
            self.give_back(key, unread);
        }
        if end {
            self.maybe_finish(key);
        }
        Ok(())
    }

    fn on_headers(&mut self, head: FrameHeader) -> Result<(), Fatal> {
        let id = head.stream;
        if id == 0 {
            return Err(protocol_error("HEADERS on stream 0"));
        }
        let payload = self.take_payload(head);
        let mut fragment = strip_padding(head, payload)?;
        let mut self_dependent = false;
        if head.has(flag::PRIORITY) {
            if fragment.len() < 5 {
                return Err(connection_error(
                    ErrorCode::FRAME_SIZE_ERROR,
                    "HEADERS too short for its priority",
                ));
            }
            self_dependent = frame::read_u32(&fragment) & 0x7fff_ffff == id;
            fragment.advance(5);
        }
        let end_stream = head.has(flag::END_STREAM);
        if head.has(flag::END_HEADERS) {
            return self.on_header_block(id, end_stream, self_dependent, fragment);
        }
        self.block = Some(PartialBlock {
            stream: id,
            end_stream,
            self_dependent,
            fragments: BytesMut::from(&fragment[..]),
            frames: 0,
        });
        Ok(())
    }

    fn on_continuation(&mut self, head: FrameHeader) -> Result<(), Fatal> {
        let payload = self.take_payload(head);
        let limit = self.limits.max_header_list_size.saturating_mul(2) + 64 * 1024;
        let Some(block) = self.block.as_mut() else {
            return Err(protocol_error("CONTINUATION without HEADERS"));
        };
        block.frames += 1;
        block.fragments.extend_from_slice(&payload);
        if block.frames > MAX_CONTINUATION_FRAMES || block.fragments.len() > limit {
            return Err(connection_error(
                ErrorCode::ENHANCE_YOUR_CALM,
                "a header block beyond its bounds (CONTINUATION flood)",
            ));
        }
        if !head.has(flag::END_HEADERS) {
            return Ok(());
        }
        let Some(block) = self.block.take() else {
            return Ok(());
        };
        let fragments = block.fragments.freeze();
        self.on_header_block(
            block.stream,
            block.end_stream,
            block.self_dependent,
            fragments,
        )
    }

    /// Decodes a header block into `sink` (a decoding error is the connection's).
    fn decode(&mut self, block: &Bytes, sink: impl FnMut(Field)) -> Result<Decoded, Fatal> {
        self.decoder
            .decode(block, self.limits.max_header_list_size, sink)
            .map_err(|_| {
                connection_error(ErrorCode::COMPRESSION_ERROR, "an undecodable header block")
            })
    }

    /// A complete header block: a new stream's request, or an open stream's trailers.
    fn on_header_block(
        &mut self,
        id: u32,
        end_stream: bool,
        self_dependent: bool,
        block: Bytes,
    ) -> Result<(), Fatal> {
        if let Some(key) = self.key_of(id) {
            return self.on_trailers(key, end_stream, &block);
        }
        if id <= self.last_stream {
            // Decoded all the same: the table must stay in step.
            let _ = self.decode(&block, |_| {})?;
            if self.recently_reset.contains(&id) {
                return Ok(());
            }
            return Err(connection_error(
                ErrorCode::STREAM_CLOSED,
                "HEADERS on a closed stream",
            ));
        }
        self.last_stream = id;
        let mut fields = RequestFields::default();
        let decoded = self.decode(&block, |field| fields.field(field))?;
        if self.goaway.is_some() || self.client_goaway {
            // Beyond the last stream of the GOAWAY: not processed, the client may retry.
            return Ok(());
        }
        if self_dependent {
            self.reset_id(id, ErrorCode::PROTOCOL_ERROR);
            return self.count_local_error();
        }
        if matches!(decoded, Decoded::TooLarge) {
            self.refuse_too_large(id, end_stream);
            return self.count_local_error();
        }
        if self.streams.len() >= self.limits.max_concurrent_streams {
            self.reset_id(id, ErrorCode::REFUSED_STREAM);
            return Ok(());
        }
        match fields.into_head() {
            Ok(head) => self.open_stream(id, head, end_stream),
            Err(reason) => {
                tracing::debug!(stream = id, reason, "malformed HTTP/2 request");
                self.reset_id(id, ErrorCode::PROTOCOL_ERROR);
                self.count_local_error()
            }
        }
    }

    /// A request head beyond SETTINGS_MAX_HEADER_LIST_SIZE: 431, as HTTP/1.1 gets.
    fn refuse_too_large(&mut self, id: u32, end_stream: bool) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(0));
        self.write_head(
            id,
            Some(http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
            &headers,
            true,
        );
        if !end_stream {
            // Whatever body follows is not wanted.
            self.reset_id(id, ErrorCode::NO_ERROR);
        }
    }

    fn on_trailers(&mut self, key: usize, end_stream: bool, block: &Bytes) -> Result<(), Fatal> {
        let mut trailers = TrailerFields::default();
        let decoded = self.decode(block, |field| trailers.field(field))?;
        let stream = &mut self.streams[key];
        if !stream.recv_open {
            return self.reset_stream(key, ErrorCode::STREAM_CLOSED);
        }
        let short = stream.remaining.is_some_and(|remaining| remaining != 0);
        if !end_stream || trailers.malformed || short || matches!(decoded, Decoded::TooLarge) {
            self.reset_stream(key, ErrorCode::PROTOCOL_ERROR)?;
            return self.count_local_error();
        }
        stream.recv_open = false;
        if let Some(shared) = stream.shared.as_ref() {
            let mut state = shared.lock();
            state.trailers = Some(trailers.headers);
            state.received_end = true;
            state.wake_reader();
        }
        self.maybe_finish(key);
        Ok(())
    }

    fn on_priority(&mut self, head: FrameHeader) -> Result<(), Fatal> {
        let id = head.stream;
        if id == 0 {
            return Err(protocol_error("PRIORITY on stream 0"));
        }
        let self_dependent =
            head.length == 5 && frame::read_u32(self.payload(head)) & 0x7fff_ffff == id;
        let length = head.length;
        self.skip(head);
        // Priorities are advice the gateway does not take; only their form is checked.
        let code = if length != 5 {
            ErrorCode::FRAME_SIZE_ERROR
        } else if self_dependent {
            ErrorCode::PROTOCOL_ERROR
        } else {
            return Ok(());
        };
        match self.key_of(id) {
            Some(key) => self.reset_stream(key, code)?,
            // RST_STREAM may not name an idle stream (RFC 9113 §6.4), and a stream reset before
            // it opened would have to stay closed: the connection's error instead.
            None if id > self.last_stream => {
                return Err(connection_error(
                    code,
                    "a malformed PRIORITY for an idle stream",
                ));
            }
            None => self.reset_id(id, code),
        }
        self.count_local_error()
    }

    fn on_reset(&mut self, head: FrameHeader) -> Result<(), Fatal> {
        let id = head.stream;
        if id == 0 {
            return Err(protocol_error("RST_STREAM on stream 0"));
        }
        if head.length != 4 {
            return Err(connection_error(
                ErrorCode::FRAME_SIZE_ERROR,
                "RST_STREAM of the wrong size",
            ));
        }
        let code = ErrorCode(frame::read_u32(self.payload(head)));
        self.skip(head);
        match self.key_of(id) {
            // Reset by the client: its request future is dropped (which cancels the
            // upstream exchange); no answer.
            Some(key) => self.remove_stream(key, Some(code)),
            None if id > self.last_stream => {
                return Err(protocol_error("RST_STREAM on an idle stream"));
            }
            None => {}
        }
        Ok(())
    }

    fn on_settings(&mut self, head: FrameHeader) -> Result<(), Fatal> {
        if head.stream != 0 {
            return Err(protocol_error("SETTINGS on a stream"));
        }
        if head.has(flag::ACK) {
            if head.length != 0 {
                return Err(connection_error(
                    ErrorCode::FRAME_SIZE_ERROR,
                    "a SETTINGS acknowledgement with a payload",
                ));
            }
            self.skip(head);
            self.settings_acked = true;
            return Ok(());
        }
        if !head.length.is_multiple_of(6) {
            return Err(connection_error(
                ErrorCode::FRAME_SIZE_ERROR,
                "SETTINGS of the wrong size",
            ));
        }
        let mut window = None;
        let mut max_frame = None;
        for parameter in self.payload(head).chunks_exact(6) {
            let id = u16::from_be_bytes([parameter[0], parameter[1]]);
            let value = frame::read_u32(&parameter[2..]);
            match id {
                setting::ENABLE_PUSH if value > 1 => {
                    return Err(protocol_error("SETTINGS_ENABLE_PUSH beyond 1"));
                }
                setting::INITIAL_WINDOW_SIZE => {
                    if i64::from(value) > frame::MAX_WINDOW {
                        return Err(connection_error(
                            ErrorCode::FLOW_CONTROL_ERROR,
                            "SETTINGS_INITIAL_WINDOW_SIZE beyond 2^31-1",
                        ));
                    }
                    window = Some(i64::from(value));
                }
                setting::MAX_FRAME_SIZE => {
                    if !(16_384..=16_777_215).contains(&value) {
                        return Err(protocol_error("SETTINGS_MAX_FRAME_SIZE out of range"));
                    }
                    max_frame = Some(value as usize);
                }
                // The encoder never indexes (the table size does not matter), the gateway
                // never pushes nor opens streams, and it sends what the client asked for
                // whatever its list size.
                setting::HEADER_TABLE_SIZE
                | setting::ENABLE_PUSH
                | setting::MAX_CONCURRENT_STREAMS
                | setting::MAX_HEADER_LIST_SIZE => {}
                _ => {}
            }
        }
        self.skip(head);
        self.settings_seen = true;
        if let Some(max_frame) = max_frame {
            self.peer_max_frame = max_frame;
        }
        if let Some(window) = window {
            self.set_peer_stream_window(window)?;
        }
        frame::write_settings_ack(&mut self.out);
        Ok(())
    }

    /// A new SETTINGS_INITIAL_WINDOW_SIZE: every open stream's send window moves by the
    /// difference (RFC 9113 §6.9.2).
    fn set_peer_stream_window(&mut self, window: i64) -> Result<(), Fatal> {
        let delta = window - self.peer_stream_window;
        self.peer_stream_window = window;
        if delta == 0 {
            return Ok(());
        }
        for (key, stream) in &mut self.streams {
            stream.send_window += delta;
            if stream.send_window > frame::MAX_WINDOW {
                return Err(connection_error(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "a stream window beyond 2^31-1",
                ));
            }
            if delta > 0 {
                self.ready.push(key);
            }
        }
        Ok(())
    }

    fn on_ping(&mut self, head: FrameHeader) -> Result<(), Fatal> {
        if head.stream != 0 {
            return Err(protocol_error("PING on a stream"));
        }
        if head.length != 8 {
            return Err(connection_error(
                ErrorCode::FRAME_SIZE_ERROR,
                "PING of the wrong size",
            ));
        }
        let mut payload = [0u8; 8];
        payload.copy_from_slice(self.payload(head));
        self.skip(head);
        if !head.has(flag::ACK) {
            frame::write_ping_ack(&mut self.out, &payload);
        } else if payload == DRAIN_PING {
            self.drained();
        }
        Ok(())
    }

    fn on_goaway(&mut self, head: FrameHeader) -> Result<(), Fatal> {
        if head.stream != 0 {
            return Err(protocol_error("GOAWAY on a stream"));
        }
        if head.length < 8 {
            return Err(connection_error(
                ErrorCode::FRAME_SIZE_ERROR,
                "GOAWAY too short",
            ));
        }
        let code = ErrorCode(frame::read_u32(&self.payload(head)[4..]));
        self.skip(head);
        if code != ErrorCode::NO_ERROR {
            tracing::debug!(code = code.name(), "the client ended the HTTP/2 connection");
        }
        self.client_goaway = true;
        Ok(())
    }

    fn on_window_update(&mut self, head: FrameHeader) -> Result<(), Fatal> {
        if head.length != 4 {
            return Err(connection_error(
                ErrorCode::FRAME_SIZE_ERROR,
                "WINDOW_UPDATE of the wrong size",
            ));
        }
        let increment = i64::from(frame::read_u32(self.payload(head)) & 0x7fff_ffff);
        self.skip(head);
        let id = head.stream;
        if id == 0 {
            if increment == 0 {
                return Err(protocol_error("a WINDOW_UPDATE of 0 on the connection"));
            }
            self.send_window += increment;
            if self.send_window > frame::MAX_WINDOW {
                return Err(connection_error(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "the connection's window beyond 2^31-1",
                ));
            }
            self.ready.append(&mut self.blocked_on_window);
            return Ok(());
        }
        let Some(key) = self.key_of(id) else {
            if id > self.last_stream {
                return Err(protocol_error("WINDOW_UPDATE on an idle stream"));
            }
            return Ok(());
        };
        if increment == 0 {
            self.reset_stream(key, ErrorCode::PROTOCOL_ERROR)?;
            return self.count_local_error();
        }
        let stream = &mut self.streams[key];
        stream.send_window += increment;
        if stream.send_window > frame::MAX_WINDOW {
            return self.reset_stream(key, ErrorCode::FLOW_CONTROL_ERROR);
        }
        self.ready.push(key);
        Ok(())
    }
}

/// A DATA or HEADERS payload without its padding (RFC 9113 §6.1).
fn strip_padding(head: FrameHeader, mut payload: Bytes) -> Result<Bytes, Fatal> {
    if !head.has(flag::PADDED) {
        return Ok(payload);
    }
    let Some(&padding) = payload.first() else {
        return Err(connection_error(
            ErrorCode::FRAME_SIZE_ERROR,
            "a padded frame without its padding length",
        ));
    };
    let padding = usize::from(padding);
    if padding >= payload.len() {
        return Err(protocol_error("padding as long as the frame"));
    }
    payload.advance(1);
    payload.truncate(payload.len() - padding);
    Ok(payload)
}
