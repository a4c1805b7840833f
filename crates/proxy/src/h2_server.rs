//! Our HTTP/2 server (RFC 9113): framing, HPACK (the `hpack` crate), flow control and stream
//! states of the gateway's side of a client connection, and every stream of the connection
//! served in the connection's own task.
//!
//! It replaced h2 for the connections whose version is known before the first byte (h2c with
//! prior knowledge, TLS with ALPN `h2`): h2 is a general library, with both peers' roles,
//! priorities, a stream store shared behind a lock between the connection and every stream
//! handle, frames moved by value through several queues, and an HPACK encoder that indexes
//! every field; the common request cost about 18,000 instructions there, more than our whole
//! HTTP/1.1 path (docs/architecture/performance.md). Here one task owns the connection and its
//! streams: a frame is parsed in the read buffer, a request head becomes an `http::Request`
//! once, a response head is encoded straight into the output buffer (static table only, no
//! Huffman: nothing to index, nothing to keep in step), and the output of every stream that
//! progressed goes out in one write. What crosses tasks is only what must: wake-ups and the
//! bytes of request bodies and tunnels (`shared`).
//!
//! What it checks is RFC 9113's list (frame sizes, stream states, flow-control windows,
//! SETTINGS values, header block sequencing, malformed requests; h2spec's cases), and what it
//! refuses to be abused with: CONTINUATION floods (a header block has a size and frame
//! bound), empty DATA floods, HPACK bombs (`max_header_list_size` is checked as fields are
//! decoded, without keeping them), streams beyond `max_concurrent_streams` (refused), and
//! floods of malformed requests (after [`MAX_LOCAL_ERROR_RESETS`] resets, GOAWAY). Resets and
//! SETTINGS/PING floods are counted by the connection guard below it (`guard.rs`), which sees
//! every frame whatever serves the connection.
//!
//! What hyper's server did on top of h2 is done here too: `Date` on responses without one,
//! `Content-Length` from a body of known size, connection-specific header fields removed from
//! responses (RFC 9113 §8.2.2), request bodies whose flow-control window is released as they
//! are read, a stream's request future dropped when the client resets the stream, trailers
//! both ways, a response body error resetting the stream, and the extended CONNECT of
//! WebSocket over HTTP/2 (RFC 8441, [`tunnel`]). Connections whose version is only known once
//! hyper-util's auto server read them (TLS without ALPN, the PROXY protocol) are still served
//! by hyper.

mod frame;
mod inbound;
mod request;
mod request_body;
mod response;
mod shared;
mod stream;
pub(crate) mod tunnel;

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use slab::Slab;
use snapshot::client::ClientSettings;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::plane::DataPlane;
use crate::stack::Connection;
use frame::ErrorCode;
use shared::{ReadyQueue, StreamWaker};
use stream::Stream;

pub(crate) use request_body::RequestBody;

/// The largest frame the gateway accepts (SETTINGS_MAX_FRAME_SIZE): the protocol's default.
const MAX_FRAME_SIZE: usize = 16 * 1024;

/// Streams a client may make the gateway reset for its errors (malformed requests) before the
/// connection is closed with GOAWAY(ENHANCE_YOUR_CALM).
const MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// Output waiting for the client beyond which the connection stops reading frames and
/// response bodies until the client reads.
const OUTPUT_HIGH_WATER: usize = 64 * 1024;

/// What a read asks for at least, and the room made when there is less (also the output
/// buffer's first size).
const READ_MIN: usize = 512;
const READ_CHUNK: usize = 4096;

/// HPACK's dynamic table size (SETTINGS_HEADER_TABLE_SIZE, the protocol's default).
const HEADER_TABLE_SIZE: usize = 4096;

/// Streams the gateway reset lately whose late frames are ignored (RFC 9113 §5.1, "closed").
const RECENT_RESETS: usize = 64;

/// Empty DATA frames without END_STREAM in a row before the connection is closed (they cost
/// work and carry nothing: RUSTSEC-2026-0258's flood).
const MAX_EMPTY_DATA_FRAMES: u32 = 100;

/// CONTINUATION frames one header block may take (a block of the largest allowed size takes
/// a handful).
const MAX_CONTINUATION_FRAMES: usize = 128;

/// Rounds of one poll before the task yields to the others (streams that keep waking
/// themselves would keep it otherwise).
const MAX_ROUNDS_PER_POLL: usize = 32;

/// The PING of a graceful end, and how long its acknowledgement may take before the final
/// GOAWAY goes anyway.
const DRAIN_PING: [u8; 8] = *b"draining";
const DRAIN_PING_WAIT: Duration = Duration::from_secs(1);

/// Why a connection ended other than by either side closing it in good order.
#[derive(Debug)]
pub(crate) enum Error {
    Io(io::Error),
    /// The client broke the protocol; it got GOAWAY with this code.
    Protocol {
        code: ErrorCode,
        reason: &'static str,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(error) => write!(f, "HTTP/2 connection: {error}"),
            Error::Protocol { code, reason } => {
                write!(f, "HTTP/2 connection closed with {code}: {reason}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// A connection error: GOAWAY with `code`, then close.
#[derive(Debug)]
pub(super) enum Fatal {
    Io(io::Error),
    Connection(ErrorCode, &'static str),
}

/// Serves HTTP/2 on `io` (the preface not yet read) until the client closes, the connection
/// fails, or `stop` turns true and the streams in flight have finished (GOAWAY first).
pub(crate) async fn serve<I>(
    io: I,
    plane: &Arc<DataPlane>,
    connection: &Arc<Connection>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), Error>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut server = Server::new(io, plane, connection);
    let mut stopped = pin!(stop.wait_for(|stopped| *stopped));
    poll_fn(|cx| {
        if server.goaway.is_none()
            && server.draining.is_none()
            && stopped.as_mut().poll(cx).is_ready()
        {
            server.drain();
        }
        server.poll(cx)
    })
    .await
}

/// SETTINGS_MAX_HEADER_LIST_SIZE: the socket's head limit. Also hyper's, where it serves
/// HTTP/2 (`listener::http2_settings!`).
pub(crate) fn max_header_list_size(settings: &ClientSettings) -> u32 {
    u32::try_from(settings.headers.max_request_headers_bytes).unwrap_or(u32::MAX)
}

/// What a stream may hold of its response body beyond the client's window: the socket's
/// buffer limit, at least one frame. Also hyper's, where it serves HTTP/2.
pub(crate) fn max_send_buffer_size(settings: &ClientSettings) -> usize {
    settings.buffer_limit.max(MAX_FRAME_SIZE)
}

/// The gateway's settings for a connection.
struct Limits {
    max_concurrent_streams: usize,
    /// SETTINGS_INITIAL_WINDOW_SIZE.
    stream_window: i64,
    /// The connection's receive window.
    connection_window: i64,
    max_header_list_size: usize,
    max_send_buffer: usize,
}

/// A header block whose CONTINUATION frames are still to come.
struct PartialBlock {
    stream: u32,
    end_stream: bool,
    self_dependent: bool,
    fragments: BytesMut,
    frames: usize,
}

/// One connection's server.
pub(super) struct Server<'a, I> {
    io: I,
    plane: &'a Arc<DataPlane>,
    connection: &'a Arc<Connection>,
    limits: Limits,
    /// Bytes read and not yet taken as frames.
    read: BytesMut,
    /// Frames to write; `written` of them are.
    out: Vec<u8>,
    written: usize,
    /// Written and not yet flushed.
    unflushed: bool,
    decoder: hpack::Decoder,
    encoder: hpack::Encoder,
    streams: Slab<Stream>,
    /// The open streams' ids and keys, by id (streams open in increasing id order).
    ids: Vec<(u32, usize)>,
    queue: Arc<ReadyQueue>,
    /// Each slot's waker (and its handle), made the first time the slot is used and kept:
    /// a stream costs no allocation for it. A late wake-up of a slot's former stream polls
    /// its new one once for nothing.
    wakers: Vec<(Arc<StreamWaker>, Waker)>,
    /// Streams to poll: woken, or made ready by a frame.
    ready: Vec<usize>,
    /// Scratch for taking the ready streams.
    polling: Vec<usize>,
    /// Streams with data to send waiting for the connection's window, or for the output to
    /// drain.
    blocked_on_window: Vec<usize>,
    blocked_on_output: Vec<usize>,
    block: Option<PartialBlock>,
    recently_reset: VecDeque<u32>,
    /// The preface was read; the client's first SETTINGS too.
    preface_read: bool,
    settings_seen: bool,
    /// The client acknowledged the gateway's SETTINGS.
    settings_acked: bool,
    /// The client's SETTINGS_INITIAL_WINDOW_SIZE and SETTINGS_MAX_FRAME_SIZE.
    peer_stream_window: i64,
    peer_max_frame: usize,
    /// The highest stream id the client opened.
    last_stream: u32,
    /// The last stream id of the GOAWAY the gateway sent (the second, when draining).
    goaway: Option<u32>,
    /// Draining: the first GOAWAY and the PING went out; the second GOAWAY waits for the
    /// PING's acknowledgement or this timer.
    draining: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The client said GOAWAY: no new streams.
    client_goaway: bool,
    /// A connection error to end with, once GOAWAY went out.
    closing: Option<(ErrorCode, &'static str)>,
    read_closed: bool,
    /// The connection's send window, and its receive window and what of it was read and not
    /// yet given back.
    send_window: i64,
    recv_window: i64,
    recv_unacked: i64,
    local_error_resets: usize,
    empty_data_frames: u32,
}

impl<'a, I> Server<'a, I>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    fn new(io: I, plane: &'a Arc<DataPlane>, connection: &'a Arc<Connection>) -> Self {
        let settings = &connection.settings;
        let h2 = &settings.http2;
        let limits = Limits {
            max_concurrent_streams: h2.max_concurrent_streams as usize,
            stream_window: i64::from(h2.initial_stream_window_size).min(frame::MAX_WINDOW),
            connection_window: i64::from(h2.initial_connection_window_size)
                .clamp(frame::DEFAULT_WINDOW, frame::MAX_WINDOW),
            max_header_list_size: max_header_list_size(settings) as usize,
            max_send_buffer: max_send_buffer_size(settings),
        };
        let mut out = Vec::with_capacity(64);
        frame::write_settings(
            &mut out,
            &[
                (
                    frame::setting::MAX_CONCURRENT_STREAMS,
                    h2.max_concurrent_streams,
                ),
                (
                    frame::setting::INITIAL_WINDOW_SIZE,
                    limits.stream_window as u32,
                ),
                (
                    frame::setting::MAX_HEADER_LIST_SIZE,
                    max_header_list_size(settings),
                ),
                // WebSocket over HTTP/2 (RFC 8441).
                (frame::setting::ENABLE_CONNECT_PROTOCOL, 1),
            ],
        );
        if limits.connection_window > frame::DEFAULT_WINDOW {
            let increment = limits.connection_window - frame::DEFAULT_WINDOW;
            frame::write_window_update(&mut out, 0, increment as u32);
        }
        Server {
            io,
            plane,
            connection,
            recv_window: limits.connection_window,
            limits,
            read: BytesMut::new(),
            out,
            written: 0,
            unflushed: false,
            decoder: hpack::Decoder::new(HEADER_TABLE_SIZE),
            encoder: hpack::Encoder::new(),
            streams: Slab::new(),
            ids: Vec::new(),
            queue: Arc::new(ReadyQueue::default()),
            wakers: Vec::new(),
            ready: Vec::new(),
            polling: Vec::new(),
            blocked_on_window: Vec::new(),
            blocked_on_output: Vec::new(),
            block: None,
            recently_reset: VecDeque::new(),
            preface_read: false,
            settings_seen: false,
            settings_acked: false,
            peer_stream_window: frame::DEFAULT_WINDOW,
            peer_max_frame: MAX_FRAME_SIZE,
            last_stream: 0,
            goaway: None,
            draining: None,
            client_goaway: false,
            closing: None,
            read_closed: false,
            send_window: frame::DEFAULT_WINDOW,
            recv_unacked: 0,
            local_error_resets: 0,
            empty_data_frames: 0,
        }
    }

    /// The graceful end (RFC 9113 §6.8): GOAWAY(NO_ERROR) with the largest stream id, so that
    /// the client stops opening streams, and a PING; once the client acknowledges it (every
    /// stream it opened before is then here) or after [`DRAIN_PING_WAIT`], GOAWAY with the
    /// last stream taken. The streams open go on; later ones are not processed.
    fn drain(&mut self) {
        if self.goaway.is_none() && self.draining.is_none() {
            frame::write_goaway(&mut self.out, frame::MAX_STREAM_ID, ErrorCode::NO_ERROR);
            frame::write_ping(&mut self.out, &DRAIN_PING);
            self.draining = Some(Box::pin(tokio::time::sleep(DRAIN_PING_WAIT)));
        }
    }

    /// The second GOAWAY of [`Server::drain`]: the client acknowledged the PING, or did not in
    /// time.
    fn drained(&mut self) {
        if self.draining.take().is_some() && self.goaway.is_none() {
            frame::write_goaway(&mut self.out, self.last_stream, ErrorCode::NO_ERROR);
            self.goaway = Some(self.last_stream);
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.queue.enter(cx.waker());
        if self.out.capacity() == 0 {
            // Released while idle: one allocation for a burst's frames, not a doubling series.
            self.out.reserve(READ_CHUNK);
        }
        if let Some(wait) = self.draining.as_mut()
            && wait.as_mut().poll(cx).is_ready()
        {
            self.drained();
        }
        for _ in 0..MAX_ROUNDS_PER_POLL {
            let mut progressed = false;
            if self.closing.is_none() && !self.read_closed {
                match self.poll_input(cx) {
                    Ok(input) => progressed |= input,
                    Err(fatal) => self.fail(fatal),
                }
            }
            progressed |= self.poll_streams();
            match self.poll_output(cx) {
                Ok(output) => progressed |= output,
                Err(error) => {
                    self.drop_streams(ErrorCode::CANCEL);
                    return Poll::Ready(Err(Error::Io(error)));
                }
            }
            if let Some(done) = self.finished(cx) {
                return done;
            }
            if !progressed && self.queue.leave() {
                self.release_buffers_when_idle();
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        let _ = self.queue.leave();
        Poll::Pending
    }

    /// Reads and handles frames until the socket has no more (or the output is backed up).
    fn poll_input(&mut self, cx: &mut Context<'_>) -> Result<bool, Fatal> {
        let mut progressed = false;
        loop {
            if self.pending_output() >= OUTPUT_HIGH_WATER || self.closing.is_some() {
                return Ok(progressed);
            }
            if let Some(head) = self.next_frame()? {
                self.on_frame(head)?;
                progressed = true;
                continue;
            }
            if self.read.capacity() - self.read.len() < READ_MIN {
                // Room for a batch of small frames; a large frame makes room for itself
                // (`next_frame`).
                self.read.reserve(READ_CHUNK);
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read) {
                Poll::Ready(Ok(0)) => {
                    self.read_closed = true;
                    return Ok(true);
                }
                Poll::Ready(Ok(_)) => progressed = true,
                Poll::Ready(Err(error)) => return Err(Fatal::Io(error)),
                Poll::Pending => return Ok(progressed),
            }
        }
    }

    /// Writes what is waiting; `true` when it made room for streams that waited for it.
    fn poll_output(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        let mut progressed = false;
        while self.written < self.out.len() {
            match Pin::new(&mut self.io).poll_write(cx, &self.out[self.written..]) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    self.written += n;
                    self.unflushed = true;
                    // Frames read before the output backed up and not yet handled: with the
                    // output written, the next round takes them (no readiness will come for
                    // bytes already read).
                    progressed |= !self.read.is_empty();
                }
                Poll::Ready(Err(error)) => return Err(error),
                Poll::Pending => break,
            }
        }
        if self.written > 0 && self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        }
        // A TLS stream holds the records it made until flushed (and may not finish at once:
        // then the socket's readiness polls the connection again, and the flush goes on).
        if self.unflushed {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(error)) => return Err(error),
                Poll::Pending => {}
            }
        }
        if self.pending_output() < OUTPUT_HIGH_WATER && !self.blocked_on_output.is_empty() {
            self.ready.append(&mut self.blocked_on_output);
            progressed = true;
        }
        Ok(progressed)
    }

    /// A connection with nothing in flight keeps no buffers: an idle client costs the
    /// connection's state alone (and the next burst one allocation of each).
    fn release_buffers_when_idle(&mut self) {
        if self.streams.is_empty() && self.read.is_empty() && self.pending_output() == 0 {
            if self.read.capacity() > 0 {
                self.read = BytesMut::new();
            }
            if self.out.capacity() > 0 {
                self.out = Vec::new();
            }
            self.decoder.release_scratch(READ_MIN);
        }
    }

    fn pending_output(&self) -> usize {
        self.out.len() - self.written
    }

    /// The connection's end, once there is nothing left to do.
    fn finished(&mut self, cx: &mut Context<'_>) -> Option<Poll<Result<(), Error>>> {
        let flushed = self.pending_output() == 0 && !self.unflushed;
        if let Some((code, reason)) = self.closing {
            if !flushed {
                return None;
            }
            let _ = Pin::new(&mut self.io).poll_shutdown(cx);
            return Some(Poll::Ready(Err(Error::Protocol { code, reason })));
        }
        if self.read_closed {
            // The client is gone: nobody to answer.
            self.drop_streams(ErrorCode::CANCEL);
            return Some(Poll::Ready(Ok(())));
        }
        let draining = self.goaway.is_some() || self.client_goaway;
        if draining && self.streams.is_empty() && flushed {
            return Some(match Pin::new(&mut self.io).poll_shutdown(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(_) => Poll::Ready(Ok(())),
            });
        }
        None
    }

    /// A connection error: GOAWAY, the streams dropped (their request futures cancelled).
    fn fail(&mut self, fatal: Fatal) {
        let (code, reason) = match fatal {
            Fatal::Connection(code, reason) => (code, reason),
            Fatal::Io(error) => {
                tracing::debug!(%error, "HTTP/2 connection read failed");
                self.read_closed = true;
                return;
            }
        };
        tracing::debug!(code = code.name(), reason, "HTTP/2 connection error");
        frame::write_goaway(&mut self.out, self.last_stream, code);
        self.goaway = Some(self.last_stream);
        self.closing = Some((code, reason));
        self.drop_streams(code);
    }

    /// Every stream ends (`code`: what their readers and writers are told).
    fn drop_streams(&mut self, code: ErrorCode) {
        for stream in self.streams.drain() {
            stream.abandon(code);
        }
        self.ids.clear();
        self.ready.clear();
        self.blocked_on_window.clear();
        self.blocked_on_output.clear();
    }

    /// Gives `n` bytes of the connection's receive window back (WINDOW_UPDATE once half the
    /// window is owed).
    fn give_back_connection(&mut self, n: usize) {
        self.recv_unacked += n as i64;
        if self.recv_unacked >= self.limits.connection_window / 2 {
            frame::write_window_update(&mut self.out, 0, self.recv_unacked as u32);
            self.recv_window += self.recv_unacked;
            self.recv_unacked = 0;
        }
    }

    /// The key of the open stream `id`.
    fn key_of(&self, id: u32) -> Option<usize> {
        self.ids
            .binary_search_by_key(&id, |&(id, _)| id)
            .ok()
            .map(|index| self.ids[index].1)
    }

    /// A RST_STREAM for a stream that is not (or no longer) in the table.
    fn reset_id(&mut self, id: u32, code: ErrorCode) {
        frame::write_rst_stream(&mut self.out, id, code);
        self.remember_reset(id);
    }

    fn remember_reset(&mut self, id: u32) {
        if self.recently_reset.len() == RECENT_RESETS {
            self.recently_reset.pop_front();
        }
        self.recently_reset.push_back(id);
    }

    /// A stream error the client caused: counted, and beyond [`MAX_LOCAL_ERROR_RESETS`] a
    /// connection error.
    fn count_local_error(&mut self) -> Result<(), Fatal> {
        self.local_error_resets += 1;
        if self.local_error_resets > MAX_LOCAL_ERROR_RESETS {
            return Err(Fatal::Connection(
                ErrorCode::ENHANCE_YOUR_CALM,
                "too many malformed streams",
            ));
        }
        Ok(())
    }
}
