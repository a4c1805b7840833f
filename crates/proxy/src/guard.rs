//! The connection guard: what a client connection may do between and around its requests
//! (reliability A4, A7). It sits between the socket (or TLS stream) and hyper, so it sees every
//! byte both ways without hyper's help:
//!
//! - **header timeout**: a request head must arrive within `requestHeaderTimeout`, counted from
//!   the connection's start for the first request and from the first byte of the head for the
//!   next ones. A head that started and stalled gets `408` and the connection closes; a
//!   connection that never sent a byte is closed silently (as NGINX and Envoy do).
//! - **idle timeout**: a connection with no request in flight is closed after `idleTimeout`;
//!   HTTP/2 gets GOAWAY(NO_ERROR) first. A plain HTTP/1.1 connection on our server is told to
//!   hibernate after a second without a request (`Expiry::Hibernate`: the read fails with
//!   [`Hibernation`] and the connection leaves its task for the idle set, `idle.rs`, which keeps
//!   its idle deadline).
//! - **HTTP/2 floods**: the guard reads the frame headers of the client's HTTP/2 stream (9 bytes
//!   a frame; payloads are skipped) and counts RST_STREAM frames of streams in any state (h2,
//!   which serves the connections hyper serves, only counts resets of streams not yet
//!   accepted, which rapid reset evades by resetting after accept) and SETTINGS / PING frames. Beyond the thresholds the connection
//!   gets GOAWAY(ENHANCE_YOUR_CALM) and is closed; its streams are cancelled, so a request not
//!   yet sent upstream never is.
//!
//! The GOAWAY frame is written by the guard itself, between two of the HTTP/2 server's frames (ours
//! or hyper's): the guard also follows the frame boundaries of what the server writes, and lets
//! it finish the frame it is in before writing its own. A client that does not read is cut off after [`CLOSE_GRACE`].
//!
//! The request body timeout is not here: it is a property of the request (`body.rs`
//! `TimedBody`). Requests in flight are counted by [`InFlight`] guards that the response body
//! carries until it ends.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use snapshot::client::{ClientSettings, Http2Settings};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a closing connection may take to accept the gateway's last bytes (408 or GOAWAY).
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The HTTP/2 connection preface (RFC 9113 §3.4).
pub(crate) const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The 408 a stalled HTTP/1.1 head gets.
const HEADER_TIMEOUT_RESPONSE: &[u8] = b"HTTP/1.1 408 Request Timeout\r\n\
content-type: text/plain; charset=utf-8\r\n\
x-portcullis-error: request-header-timeout\r\n\
connection: close\r\n\
content-length: 56\r\n\r\n\
request timeout: the request head did not arrive in time\n";

/// Why the gateway closed a connection (the `reason` label of
/// `portcullis_downstream_connections_closed_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// A request head did not arrive within `requestHeaderTimeout`.
    HeaderTimeout,
    /// No request in flight for `idleTimeout`.
    IdleTimeout,
    /// More HTTP/2 client resets than `maxResetsPerConnection` (or a tenth of it in a second).
    RapidReset,
    /// More SETTINGS/PING frames per second than `maxControlFramesPerSecond`.
    ControlFlood,
    /// The client read nothing for `idleTimeout` while the gateway had bytes to send (slow
    /// read).
    WriteStall,
}

impl CloseReason {
    /// The metric label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CloseReason::HeaderTimeout => "header_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::RapidReset => "rapid_reset",
            CloseReason::ControlFlood => "control_flood",
            CloseReason::WriteStall => "write_stall",
        }
    }
}

/// What a connection's requests and its guard share.
#[derive(Debug)]
pub(crate) struct ConnectionState {
    start: Instant,
    /// Requests whose response has not ended.
    in_flight: AtomicU32,
    /// Requests seen so far.
    requests: AtomicU64,
    /// Milliseconds after `start` when `in_flight` last dropped to 0.
    idle_since_ms: AtomicU64,
    /// The connection was upgraded (101): it is a tunnel now, with its own timeouts.
    upgraded: AtomicBool,
    /// The guard's read waker: the end of the last request in flight must arm the idle timer
    /// even when the client sends nothing (HTTP/2 reads are not re-polled without data).
    reader: AtomicWaker,
}

impl ConnectionState {
    pub(crate) fn new() -> Arc<ConnectionState> {
        Arc::new(ConnectionState {
            start: Instant::now(),
            in_flight: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(0),
            upgraded: AtomicBool::new(false),
            reader: AtomicWaker::new(),
        })
    }

    /// The state of a connection served again after hibernating (`idle.rs`): past its first
    /// request, idle since now.
    pub(crate) fn resumed() -> Arc<ConnectionState> {
        let state = ConnectionState::new();
        state.requests.store(1, Ordering::Relaxed);
        state
    }

    /// A request started; it is in flight until the returned guard drops (with the response
    /// body, or with the request's future when the client cancels it).
    pub(crate) fn start_request(self: &Arc<Self>) -> InFlight {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }

    /// Keeps the connection counted as busy while a tunnel on one of its streams is open (an
    /// HTTP/2 extended CONNECT whose response has ended long before the tunnel does).
    pub(crate) fn hold(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }

    /// The connection switched protocols: the guard lets the tunnel's bytes through untimed.
    pub(crate) fn mark_upgraded(&self) {
        self.upgraded.store(true, Ordering::Release);
    }

    /// When the connection's last request ended (its start before the first).
    pub(crate) fn idle_since(&self) -> Instant {
        self.start + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire))
    }
}

/// One request in flight (see [`ConnectionState::start_request`]).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<ConnectionState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let state = &self.0;
        let elapsed = u64::try_from(state.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        state.idle_since_ms.store(elapsed, Ordering::Release);
        if state.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            state.reader.wake();
        }
    }
}

/// The limits the guard enforces, from the socket's [`ClientSettings`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct GuardLimits {
    header_timeout: Duration,
    idle_timeout: Option<Duration>,
    max_resets: u32,
    max_resets_per_second: u32,
    max_control_per_second: u32,
}

impl GuardLimits {
    pub(crate) fn of(settings: &ClientSettings) -> GuardLimits {
        let Http2Settings {
            max_resets_per_connection,
            max_control_frames_per_second,
            ..
        } = settings.http2;
        GuardLimits {
            header_timeout: settings.timeouts.request_header,
            idle_timeout: settings.timeouts.idle,
            max_resets: max_resets_per_connection,
            max_resets_per_second: (max_resets_per_connection / 10).max(10),
            max_control_per_second: max_control_frames_per_second,
        }
    }
}

/// The protocol the connection speaks, as far as the guard knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// Nothing read yet: `matched` bytes of the HTTP/2 preface seen so far.
    Unknown {
        matched: usize,
    },
    Http1,
    Http2,
}

/// What ends a timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    /// Close without a word (nothing of a request arrived, or a keep-alive went idle).
    Silent(CloseReason),
    /// 408, then close.
    HeaderTimeout,
    /// GOAWAY(NO_ERROR), then close.
    Http2Idle,
    /// Not an end: the HTTP/1.1 keep-alive connection has been idle for the hibernation delay
    /// and leaves its task (`idle.rs`); reads fail with [`Hibernation`].
    Hibernate,
}

/// The error a guarded read fails with when the connection should hibernate (see
/// [`GuardedIo::hibernate_after`]); no connection is closed.
#[derive(Debug)]
pub(crate) struct Hibernation;

impl std::fmt::Display for Hibernation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("idle connection hibernates")
    }
}

impl std::error::Error for Hibernation {}

/// Whether a read failed because the connection should hibernate.
pub(crate) fn is_hibernation(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<Hibernation>())
}

/// How the guard is ending the connection.
#[derive(Debug)]
enum Closing {
    /// Not closing.
    Open,
    /// Writing `bytes[written..]`, then flush and shut down, then fail every call with `reason`.
    Writing {
        bytes: Vec<u8>,
        written: usize,
        reason: CloseReason,
        /// The HTTP/2 frame in progress must be finished first.
        after_frame: bool,
        since: Instant,
    },
    /// Closed; every call fails (or reads end) from now on.
    Closed { reason: CloseReason, eof: bool },
}

/// Reads the 9-byte headers of a stream of HTTP/2 frames, skipping payloads.
#[derive(Debug, Default)]
struct FrameScanner {
    header: [u8; 9],
    have: usize,
    skip: usize,
}

/// A frame header.
#[derive(Clone, Copy, Debug)]
struct FrameHead {
    kind: u8,
    flags: u8,
    stream: u32,
}

impl FrameScanner {
    fn scan(&mut self, mut bytes: &[u8], mut on_frame: impl FnMut(FrameHead)) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (9 - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == 9 {
                let h = self.header;
                self.have = 0;
                self.skip = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                on_frame(FrameHead {
                    kind: h[3],
                    flags: h[4],
                    stream,
                });
            }
        }
    }

    /// Bytes left before the next frame boundary (0: at a boundary). While a header is partly
    /// through, only its rest is known.
    fn to_boundary(&self) -> usize {
        if self.have > 0 {
            9 - self.have
        } else {
            self.skip
        }
    }
}

/// Counters of the client's HTTP/2 frames.
#[derive(Debug)]
struct FloodCounters {
    last_stream: u32,
    resets: u32,
    window_start: Instant,
    window_resets: u32,
    window_control: u32,
}

impl FloodCounters {
    fn new() -> FloodCounters {
        FloodCounters {
            last_stream: 0,
            resets: 0,
            window_start: Instant::now(),
            window_resets: 0,
            window_control: 0,
        }
    }

    /// Counts one frame; returns why the connection must go, if it must.
    fn count(&mut self, head: FrameHead, limits: &GuardLimits) -> Option<CloseReason> {
        const HEADERS: u8 = 0x1;
        const RST_STREAM: u8 = 0x3;
        const SETTINGS: u8 = 0x4;
        const PING: u8 = 0x6;
        const ACK: u8 = 0x1;
        match head.kind {
            HEADERS => {
                self.last_stream = self.last_stream.max(head.stream);
                None
            }
            RST_STREAM => {
                self.roll_window();
                self.resets += 1;
                self.window_resets += 1;
                (self.resets > limits.max_resets
                    || self.window_resets > limits.max_resets_per_second)
                    .then_some(CloseReason::RapidReset)
            }
            SETTINGS | PING if head.flags & ACK == 0 => {
                self.roll_window();
                self.window_control += 1;
                (self.window_control > limits.max_control_per_second)
                    .then_some(CloseReason::ControlFlood)
            }
            _ => None,
        }
    }

    fn roll_window(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.window_resets = 0;
            self.window_control = 0;
        }
    }
}

/// A GOAWAY frame (RFC 9113 §6.8).
fn goaway(last_stream: u32, code: u32) -> Vec<u8> {
    let mut frame = vec![0, 0, 8, 0x7, 0, 0, 0, 0, 0];
    frame.extend_from_slice(&(last_stream & 0x7fff_ffff).to_be_bytes());
    frame.extend_from_slice(&code.to_be_bytes());
    frame
}

const NO_ERROR: u32 = 0x0;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// The guarded IO of one client connection (see the module doc).
pub(crate) struct GuardedIo<I> {
    inner: I,
    state: Arc<ConnectionState>,
    limits: GuardLimits,
    protocol: Protocol,
    /// What the gateway writes is HTTP/2 frames (ALPN `h2`, or the client sent the preface):
    /// their boundaries are tracked so that a GOAWAY can go between two of them.
    outbound_h2: bool,
    /// Bytes of the current HTTP/1.1 head arrived (with no request in flight).
    head_bytes: bool,
    /// When the current HTTP/1.1 head was first seen incomplete (none yet: `None`). Taken at the
    /// first wait for more bytes rather than at the first byte: a head that arrives whole, the
    /// common case, never reads the clock.
    head_started: Option<Instant>,
    /// `ConnectionState::requests` when the head bytes were last looked at: a request started
    /// since then means that head was complete, even if the server did not read meanwhile
    /// (our HTTP/1.1 server does not read during a request without a body).
    requests_seen: u64,
    timer: Pin<Box<Sleep>>,
    /// The instant `timer` is set to, if it is armed.
    armed: Option<Instant>,
    inbound: FrameScanner,
    outbound: FrameScanner,
    floods: FloodCounters,
    /// Since when writes make no progress (the client does not read); `None` while they do.
    write_stalled: Option<Instant>,
    closing: Closing,
    /// Called once with the reason when the guard closes the connection.
    on_close: Option<Box<dyn FnOnce(CloseReason) + Send>>,
    /// An HTTP/1.1 keep-alive connection idle for this long hibernates (plain TCP connections
    /// served by our HTTP/1.1 server; `None` for the others).
    hibernate_after: Option<Duration>,
    /// The server's read buffer is empty: nothing would be lost if the connection hibernated
    /// now. Set by the server before each read.
    pub(crate) may_hibernate: bool,
}

impl<I> GuardedIo<I> {
    /// Guards `inner`. `http2` when ALPN already chose HTTP/2.
    pub(crate) fn new(
        inner: I,
        state: Arc<ConnectionState>,
        limits: GuardLimits,
        http2: bool,
        on_close: Box<dyn FnOnce(CloseReason) + Send>,
    ) -> GuardedIo<I> {
        GuardedIo {
            inner,
            state,
            limits,
            // Even under ALPN `h2` the client starts with the preface; the frames follow it.
            protocol: Protocol::Unknown { matched: 0 },
            outbound_h2: http2,
            head_bytes: false,
            head_started: None,
            requests_seen: 0,
            timer: Box::pin(tokio::time::sleep_until(
                Instant::now() + Duration::from_secs(86_400),
            )),
            armed: None,
            inbound: FrameScanner::default(),
            outbound: FrameScanner::default(),
            floods: FloodCounters::new(),
            write_stalled: None,
            closing: Closing::Open,
            on_close: Some(on_close),
            hibernate_after: None,
            may_hibernate: false,
        }
    }

    /// Lets the connection hibernate after `after` without a request (our HTTP/1.1 server on
    /// plain TCP; see `idle.rs`): its reads then fail with [`Hibernation`] while the server's
    /// read buffer is empty ([`GuardedIo::may_hibernate`]).
    pub(crate) fn hibernate_after(mut self, after: Duration) -> GuardedIo<I> {
        self.hibernate_after = Some(after);
        self
    }

    /// The guarded connection.
    pub(crate) fn into_inner(self) -> I {
        self.inner
    }

    /// Looks at bytes the client sent; returns a reason to close the connection now.
    fn on_read(&mut self, mut bytes: &[u8]) -> Option<CloseReason> {
        if let Protocol::Unknown { matched } = self.protocol {
            let n = (H2_PREFACE.len() - matched).min(bytes.len());
            if bytes[..n] == H2_PREFACE[matched..matched + n] {
                let matched = matched + n;
                bytes = &bytes[n..];
                self.protocol = if matched == H2_PREFACE.len() {
                    self.outbound_h2 = true;
                    Protocol::Http2
                } else {
                    Protocol::Unknown { matched }
                };
            } else {
                self.protocol = Protocol::Http1;
            }
        }
        match self.protocol {
            Protocol::Http2 => {
                let (floods, limits) = (&mut self.floods, &self.limits);
                let mut verdict = None;
                self.inbound.scan(bytes, |head| {
                    if verdict.is_none() {
                        verdict = floods.count(head, limits);
                    }
                });
                verdict
            }
            Protocol::Http1 | Protocol::Unknown { .. } => {
                // The clock is read only if the head then stalls (`poll_deadline`).
                if self.state.in_flight.load(Ordering::Acquire) == 0 {
                    self.head_bytes = true;
                }
                None
            }
        }
    }

    /// When the connection expires if nothing changes, and how.
    fn deadline(&self) -> Option<(Instant, Expiry)> {
        let state = &self.state;
        if state.upgraded.load(Ordering::Acquire) || state.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let first = state.requests.load(Ordering::Relaxed) == 0;
        match self.protocol {
            Protocol::Http2 => self
                .limits
                .idle_timeout
                .map(|idle| (state.idle_since() + idle, Expiry::Http2Idle)),
            Protocol::Http1 | Protocol::Unknown { .. } => match self.head_started {
                Some(_) if first => Some((
                    state.start + self.limits.header_timeout,
                    Expiry::HeaderTimeout,
                )),
                Some(started) => {
                    Some((started + self.limits.header_timeout, Expiry::HeaderTimeout))
                }
                None if first => Some((
                    state.start + self.limits.header_timeout,
                    Expiry::Silent(CloseReason::HeaderTimeout),
                )),
                None => {
                    let idle_since = state.idle_since();
                    let idle = self
                        .limits
                        .idle_timeout
                        .map(|idle| (idle_since + idle, Expiry::Silent(CloseReason::IdleTimeout)));
                    match self.hibernate_after {
                        Some(after) if self.may_hibernate => {
                            let hibernate = idle_since + after;
                            match idle {
                                Some((end, _)) if end <= hibernate => idle,
                                _ => Some((hibernate, Expiry::Hibernate)),
                            }
                        }
                        _ => idle,
                    }
                }
            },
        }
    }

    fn close_with(&mut self, reason: CloseReason, bytes: Vec<u8>, after_frame: bool) {
        if let Some(on_close) = self.on_close.take() {
            on_close(reason);
        }
        self.closing = if bytes.is_empty() {
            Closing::Closed { reason, eof: true }
        } else {
            Closing::Writing {
                bytes,
                written: 0,
                reason,
                after_frame,
                since: Instant::now(),
            }
        };
    }

    fn abuse(&mut self, reason: CloseReason) {
        let frame = goaway(self.floods.last_stream, ENHANCE_YOUR_CALM);
        tracing::info!(
            reason = reason.as_str(),
            "closing an HTTP/2 connection: GOAWAY(ENHANCE_YOUR_CALM)"
        );
        self.close_with(reason, frame, true);
    }

    fn expire(&mut self, expiry: Expiry) {
        match expiry {
            Expiry::Silent(reason) => self.close_with(reason, Vec::new(), false),
            Expiry::HeaderTimeout => self.close_with(
                CloseReason::HeaderTimeout,
                HEADER_TIMEOUT_RESPONSE.to_vec(),
                false,
            ),
            Expiry::Http2Idle => self.close_with(
                CloseReason::IdleTimeout,
                goaway(self.floods.last_stream, NO_ERROR),
                true,
            ),
            // Handled by `poll_deadline`: nothing closes.
            Expiry::Hibernate => {}
        }
    }
}

fn closed_error(reason: CloseReason) -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        format!("connection closed by the gateway ({})", reason.as_str()),
    )
}

impl<I: AsyncRead + AsyncWrite + Unpin> GuardedIo<I> {
    /// Drives a closing connection: waits for the server's frame in progress, writes the last bytes,
    /// flushes and shuts down. `Ready(Err)` when done (the connection is over).
    fn poll_closing(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match &mut self.closing {
                Closing::Open => return Poll::Ready(Ok(())),
                Closing::Closed { reason, eof } => {
                    return if *eof {
                        Poll::Ready(Ok(()))
                    } else {
                        Poll::Ready(Err(closed_error(*reason)))
                    };
                }
                Closing::Writing {
                    bytes,
                    written,
                    reason,
                    after_frame,
                    since,
                } => {
                    let reason = *reason;
                    if since.elapsed() > CLOSE_GRACE {
                        self.closing = Closing::Closed { reason, eof: false };
                        continue;
                    }
                    if *after_frame && self.outbound.to_boundary() > 0 {
                        // The server finishes its frame through poll_write; make sure we are polled
                        // again even if it does not.
                        if arm(&mut self.timer, &mut self.armed, *since + CLOSE_GRACE, cx) {
                            continue;
                        }
                        return Poll::Pending;
                    }
                    *after_frame = false;
                    while *written < bytes.len() {
                        let n = match Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]) {
                            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                                self.closing = Closing::Closed { reason, eof: false };
                                return Poll::Ready(Err(closed_error(reason)));
                            }
                            Poll::Ready(Ok(n)) => n,
                            Poll::Pending => {
                                if arm(&mut self.timer, &mut self.armed, *since + CLOSE_GRACE, cx) {
                                    continue;
                                }
                                return Poll::Pending;
                            }
                        };
                        *written += n;
                    }
                    let since = *since;
                    match Pin::new(&mut self.inner).poll_flush(cx) {
                        Poll::Pending => {
                            if arm(&mut self.timer, &mut self.armed, since + CLOSE_GRACE, cx) {
                                continue;
                            }
                            return Poll::Pending;
                        }
                        Poll::Ready(_) => {}
                    }
                    let _ = Pin::new(&mut self.inner).poll_shutdown(cx);
                    self.closing = Closing::Closed { reason, eof: false };
                }
            }
        }
    }

    /// The socket takes no more bytes: a client that reads nothing for the idle timeout while
    /// the gateway has a response to send (slow read) is cut off. The clock is read once when a
    /// write first blocks.
    fn poll_write_stall<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let Some(limit) = self.limits.idle_timeout else {
            return Poll::Pending;
        };
        let since = *self.write_stalled.get_or_insert_with(Instant::now);
        if !arm(&mut self.timer, &mut self.armed, since + limit, cx) {
            return Poll::Pending;
        }
        tracing::debug!("closing a connection whose client stopped reading");
        self.close_with(CloseReason::WriteStall, Vec::new(), false);
        self.closing = Closing::Closed {
            reason: CloseReason::WriteStall,
            eof: false,
        };
        Poll::Ready(Err(closed_error(CloseReason::WriteStall)))
    }

    /// Nothing to read: is it time to end the connection? Reads the clock only when a head
    /// stalls or the timer fired.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.protocol == Protocol::Http2 {
            // HTTP/2 reads are not polled again when the last stream ends without the client
            // sending anything: the end of the last request wakes this task instead. HTTP/1.1
            // reads the next head right after a response, so it needs no wake-up.
            self.state.reader.register(cx.waker());
        }
        if self.head_bytes && self.head_started.is_none() {
            self.head_started = Some(Instant::now());
        }
        let Some((deadline, expiry)) = self.deadline() else {
            return Poll::Pending;
        };
        if !arm(&mut self.timer, &mut self.armed, deadline, cx) {
            return Poll::Pending;
        }
        if expiry == Expiry::Hibernate {
            return Poll::Ready(Err(io::Error::other(Hibernation)));
        }
        self.expire(expiry);
        self.poll_closing(cx)
    }
}

/// Arms `timer` for `deadline` unless it is already armed earlier (it then fires early and the
/// deadline is recomputed: one timer reset per expiry instead of one per request), and polls
/// it so that it wakes this task. Returns whether `deadline` has passed; the clock is read only
/// when the timer fired.
fn arm(
    timer: &mut Pin<Box<Sleep>>,
    armed: &mut Option<Instant>,
    deadline: Instant,
    cx: &mut Context<'_>,
) -> bool {
    match *armed {
        Some(at) if at <= deadline => {}
        _ => {
            timer.as_mut().reset(deadline);
            *armed = Some(deadline);
        }
    }
    if timer.as_mut().poll(cx).is_pending() {
        return false;
    }
    // Fired: for this deadline, or for an earlier one, in which case it is re-armed (and
    // polled, so that it wakes this task).
    *armed = None;
    if Instant::now() >= deadline {
        return true;
    }
    timer.as_mut().reset(deadline);
    *armed = Some(deadline);
    if timer.as_mut().poll(cx).is_pending() {
        return false;
    }
    *armed = None;
    true
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncRead for GuardedIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !matches!(this.closing, Closing::Open) {
            return this.poll_closing(cx);
        }
        let requests = this.state.requests.load(Ordering::Acquire);
        if this.state.in_flight.load(Ordering::Acquire) > 0 || requests != this.requests_seen {
            this.requests_seen = requests;
            this.head_bytes = false;
            this.head_started = None;
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.state.upgraded.load(Ordering::Relaxed) {
                    return Poll::Ready(Ok(()));
                }
                let read = buf.filled().len() - before;
                if read == 0 {
                    return Poll::Ready(Ok(()));
                }
                let fresh = &buf.filled()[before..];
                if let Some(reason) = this.on_read(fresh) {
                    // The flood's bytes never reach the server.
                    buf.set_filled(before);
                    this.abuse(reason);
                    return this.poll_closing(cx);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => this.poll_deadline(cx),
        }
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncWrite for GuardedIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut limit = buf.len();
        if !matches!(this.closing, Closing::Open) {
            let boundary = this.outbound.to_boundary();
            let finishing_frame = matches!(
                this.closing,
                Closing::Writing {
                    after_frame: true,
                    ..
                }
            ) && boundary > 0;
            if !finishing_frame {
                ready!(this.poll_closing(cx))?;
                return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
            }
            limit = boundary.min(buf.len());
        }
        let written = match Pin::new(&mut this.inner).poll_write(cx, &buf[..limit]) {
            Poll::Pending => return this.poll_write_stall(cx),
            Poll::Ready(result) => result?,
        };
        this.write_stalled = None;
        if this.outbound_h2 {
            this.outbound.scan(&buf[..written], |_| {});
        }
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !matches!(this.closing, Closing::Open) {
            // Closing: one slice at a time, up to the frame boundary.
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &**b);
            return Pin::new(this).poll_write(cx, first);
        }
        let written = match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => return this.poll_write_stall(cx),
            Poll::Ready(result) => result?,
        };
        this.write_stalled = None;
        if this.outbound_h2 {
            let mut left = written;
            for slice in bufs {
                let n = left.min(slice.len());
                this.outbound.scan(&slice[..n], |_| {});
                left -= n;
                if left == 0 {
                    break;
                }
            }
        }
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if matches!(this.closing, Closing::Writing { .. }) {
            ready!(this.poll_closing(cx))?;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if matches!(this.closing, Closing::Writing { .. }) {
            ready!(this.poll_closing(cx))?;
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
