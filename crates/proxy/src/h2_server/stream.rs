//! A stream of the connection: its request future through the stack, then its response (head,
//! body within the flow-control windows, trailers), or its tunnel; and its end.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite};

use super::frame::{self, ErrorCode};
use super::request::RequestHead;
use super::request_body::RequestBody;
use super::response;
use super::shared::{StreamShared, StreamWaker};
use super::tunnel::PendingTunnel;
use super::{Fatal, OUTPUT_HIGH_WATER, Server};
use crate::body::{ClientStream, RequestStream, ResponseBody};
use crate::stack;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A stream's work, boxed once: the request future, then (in the same place) the response
/// body.
trait StreamTask: Send {
    /// The response head, once the request future has it; the body stays for
    /// [`StreamTask::poll_body`].
    fn poll_head(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response<()>>;
    fn poll_body(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>>;
    fn body_is_end_stream(&self) -> bool;
    fn body_size_hint(&self) -> SizeHint;
}

pin_project_lite::pin_project! {
    #[project = TaskProjection]
    #[project_ref = TaskReference]
    enum Task<F> {
        Handling { #[pin] future: F },
        Body { #[pin] body: ResponseBody },
    }
}

impl<F> StreamTask for Task<F>
where
    F: Future<Output = Result<Response<ResponseBody>, std::convert::Infallible>> + Send,
{
    fn poll_head(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response<()>> {
        let response = match self.as_mut().project() {
            TaskProjection::Handling { future } => match ready!(future.poll(cx)) {
                Ok(response) => response,
                Err(never) => match never {},
            },
            // Asked once only; a second ask has nothing new.
            TaskProjection::Body { .. } => return Poll::Pending,
        };
        let (head, body) = response.into_parts();
        // The request's future is dropped here, before the body moves in.
        self.set(Task::Body { body });
        Poll::Ready(Response::from_parts(head, ()))
    }

    fn poll_body(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            TaskProjection::Body { body } => body.poll_frame(cx),
            TaskProjection::Handling { .. } => Poll::Ready(None),
        }
    }

    fn body_is_end_stream(&self) -> bool {
        match self {
            Task::Body { body } => body.is_end_stream(),
            Task::Handling { .. } => false,
        }
    }

    fn body_size_hint(&self) -> SizeHint {
        match self {
            Task::Body { body } => body.size_hint(),
            Task::Handling { .. } => SizeHint::default(),
        }
    }
}

/// Where a stream's answer is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The request goes through the stack.
    Handling,
    /// The head went out; the body goes.
    Sending,
    /// A tunnel's bytes go both ways.
    Tunnel,
    /// The answer is complete; the client's side is not yet.
    Answered,
}

/// One open stream.
pub(super) struct Stream {
    id: u32,
    task: Option<Pin<Box<dyn StreamTask>>>,
    phase: Phase,
    /// The request body's or the tunnel's bytes, when there are any.
    pub(super) shared: Option<Arc<StreamShared>>,
    tunnel: Option<PendingTunnel>,
    /// The client may still send DATA (no END_STREAM yet).
    pub(super) recv_open: bool,
    pub(super) recv_window: i64,
    /// Read and not yet given back.
    recv_unacked: i64,
    /// What is left of the declared `Content-Length`.
    pub(super) remaining: Option<u64>,
    pub(super) send_window: i64,
    /// Data of the body waiting for window, and whether the body ends after it.
    pending: Bytes,
    pending_end: bool,
}

impl Stream {
    /// The stream ends without its answer: its readers and writers are told.
    pub(super) fn abandon(self, code: ErrorCode) {
        if let Some(shared) = &self.shared {
            shared.fail(code);
        }
    }
}

impl<I> Server<'_, I>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    /// A new stream for a well-formed request head: its future is polled this round.
    pub(super) fn open_stream(
        &mut self,
        id: u32,
        head: RequestHead,
        end_stream: bool,
    ) -> Result<(), Fatal> {
        let RequestHead {
            mut request,
            content_length,
            protocol,
        } = head;
        let declares_body = content_length.is_some_and(|length| length != 0);
        if end_stream && declares_body {
            // RFC 9113 §8.1.1: the body is shorter than its Content-Length.
            self.reset_id(id, ErrorCode::PROTOCOL_ERROR);
            return self.count_local_error();
        }
        let entry = self.streams.vacant_entry();
        let key = entry.key();
        if key == self.wakers.len() {
            self.wakers.push(StreamWaker::new(key, &self.queue));
        }
        let waker = &self.wakers[key].1;
        let mut tunnel = None;
        let (shared, body) = if let Some(protocol) = protocol {
            // Extended CONNECT (RFC 8441): the DATA frames are the tunnel's, not a body.
            let protocol = match std::str::from_utf8(&protocol) {
                Ok(protocol) if !declares_body => protocol,
                _ => {
                    self.reset_id(id, ErrorCode::PROTOCOL_ERROR);
                    return self.count_local_error();
                }
            };
            // Where hyper's server puts it: the stack and the upgrade code read hyper's type.
            request
                .extensions_mut()
                .insert(hyper::ext::Protocol::from(protocol));
            let (pending, client) = PendingTunnel::new();
            request.extensions_mut().insert(client);
            tunnel = Some(pending);
            let shared = StreamShared::new(waker.clone());
            shared.lock().received_end = end_stream;
            (Some(shared), RequestBody::empty())
        } else if end_stream {
            (None, RequestBody::empty())
        } else {
            let shared = StreamShared::new(waker.clone());
            let body = RequestBody::streaming(Arc::clone(&shared), content_length);
            (Some(shared), body)
        };
        let request = request.map(|()| RequestStream::Streaming(ClientStream::H2(body)));
        let future = stack::handle(Arc::clone(self.plane), Arc::clone(self.connection), request);
        let task: Pin<Box<dyn StreamTask>> = Box::pin(Task::Handling { future });
        let recv_window = if self.settings_acked {
            self.limits.stream_window
        } else {
            // The client may count on the protocol's default until it saw ours.
            self.limits.stream_window.max(frame::DEFAULT_WINDOW)
        };
        entry.insert(Stream {
            id,
            task: Some(task),
            phase: Phase::Handling,
            shared,
            tunnel,
            recv_open: !end_stream,
            recv_window,
            recv_unacked: 0,
            remaining: if end_stream { None } else { content_length },
            send_window: self.peer_stream_window,
            pending: Bytes::new(),
            pending_end: false,
        });
        self.ids.push((id, key));
        self.ready.push(key);
        Ok(())
    }

    /// Polls the streams that were woken or made ready; `true` when there were any. One
    /// pass: a stream woken meanwhile is polled in the connection's next round.
    pub(super) fn poll_streams(&mut self) -> bool {
        let mut keys = std::mem::take(&mut self.polling);
        self.queue.take(&mut keys);
        keys.append(&mut self.ready);
        let progressed = !keys.is_empty();
        for &key in &keys {
            self.poll_stream(key);
        }
        keys.clear();
        self.polling = keys;
        progressed
    }

    fn poll_stream(&mut self, key: usize) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        self.wakers[key].0.unqueue();
        let released = stream
            .shared
            .as_ref()
            .map_or(0, |shared| std::mem::take(&mut shared.lock().released));
        if released > 0 {
            self.give_back(key, released);
        }
        match self.streams[key].phase {
            Phase::Handling => self.poll_head(key),
            Phase::Sending => self.poll_body(key),
            Phase::Tunnel => self.poll_tunnel(key),
            Phase::Answered => self.maybe_finish(key),
        }
    }

    fn poll_head(&mut self, key: usize) {
        let stream = &mut self.streams[key];
        let Some(task) = stream.task.as_mut() else {
            return;
        };
        let mut cx = Context::from_waker(&self.wakers[key].1);
        let Poll::Ready(response) = task.as_mut().poll_head(&mut cx) else {
            return;
        };
        let (mut head, ()) = response.into_parts();
        let present = response::prepare(&mut head.headers);
        let id = stream.id;
        if let Some(tunnel) = stream.tunnel.take()
            && head.status.is_success()
        {
            // The tunnel's bytes are the stream's DATA frames: no length (RFC 8441 §4, RFC
            // 9113 §8.5).
            if present.content_length {
                head.headers.remove(header::CONTENT_LENGTH);
            }
            stream.task = None;
            stream.phase = Phase::Tunnel;
            let shared = stream.shared.clone();
            self.write_head(id, Some(head.status), &head.headers, false);
            let opened =
                shared.is_some_and(|shared| tunnel.open(shared, self.limits.max_send_buffer));
            if !opened {
                // The request future is gone: nobody uses the tunnel.
                let _ = self.reset_stream(key, ErrorCode::CANCEL);
            }
            return;
        }
        let end = task.body_is_end_stream();
        if !end
            && !present.content_length
            && let Some(length) = task.body_size_hint().exact()
        {
            head.headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        }
        self.write_head(id, Some(head.status), &head.headers, end);
        if end {
            self.answered(key);
        } else {
            self.streams[key].phase = Phase::Sending;
            self.poll_body(key);
        }
    }

    /// Writes a header block on stream `id`: a response head (with `status`) or trailers.
    pub(super) fn write_head(
        &mut self,
        id: u32,
        status: Option<StatusCode>,
        headers: &http::HeaderMap,
        end: bool,
    ) {
        response::write_block(
            &mut self.out,
            &self.encoder,
            id,
            status,
            headers,
            end,
            self.peer_max_frame,
        );
    }

    /// Sends the body as far as the windows, the output and the body allow.
    fn poll_body(&mut self, key: usize) {
        loop {
            match self.send_pending(key) {
                Sent::All => {}
                Sent::Blocked | Sent::Ended => return,
            }
            if self.pending_output() >= OUTPUT_HIGH_WATER {
                self.blocked_on_output.push(key);
                return;
            }
            let stream = &mut self.streams[key];
            let Some(task) = stream.task.as_mut() else {
                return;
            };
            let mut cx = Context::from_waker(&self.wakers[key].1);
            match task.as_mut().poll_body(&mut cx) {
                Poll::Pending => return,
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        stream.pending_end = task.body_is_end_stream();
                        stream.pending = data;
                        if stream.pending.is_empty() && !stream.pending_end {
                            continue;
                        }
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            let id = stream.id;
                            self.write_head(id, None, &trailers, true);
                            self.answered(key);
                            return;
                        }
                    }
                },
                Poll::Ready(Some(Err(error))) => {
                    // The upstream failed mid-body: the client must not take the truncated
                    // body for a whole one.
                    tracing::debug!(%error, "response body failed; resetting the stream");
                    let _ = self.reset_stream(key, ErrorCode::INTERNAL_ERROR);
                    return;
                }
                Poll::Ready(None) => stream.pending_end = true,
            }
        }
    }

    /// Sends what the body gave as far as the windows allow.
    fn send_pending(&mut self, key: usize) -> Sent {
        let max_frame = self.peer_max_frame;
        let stream = &mut self.streams[key];
        loop {
            if stream.pending.is_empty() {
                if !stream.pending_end {
                    return Sent::All;
                }
                frame::write_data(&mut self.out, stream.id, &[], true);
                self.answered(key);
                return Sent::Ended;
            }
            let sendable = take_sendable(
                &mut stream.pending,
                &mut stream.send_window,
                &mut self.send_window,
                max_frame,
            );
            let Some(chunk) = sendable else {
                if self.send_window <= 0 {
                    self.blocked_on_window.push(key);
                }
                return Sent::Blocked;
            };
            let end = stream.pending.is_empty() && stream.pending_end;
            frame::write_data(&mut self.out, stream.id, &chunk, end);
            if end {
                self.answered(key);
                return Sent::Ended;
            }
        }
    }

    /// A tunnel: the writer's bytes out as the windows allow, and its end.
    fn poll_tunnel(&mut self, key: usize) {
        let max_frame = self.peer_max_frame;
        let stream = &mut self.streams[key];
        let Some(shared) = stream.shared.clone() else {
            return;
        };
        let mut state = shared.lock();
        while let Some(data) = state.outgoing.front_mut() {
            let sendable = take_sendable(
                data,
                &mut stream.send_window,
                &mut self.send_window,
                max_frame,
            );
            let Some(chunk) = sendable else {
                if self.send_window <= 0 {
                    self.blocked_on_window.push(key);
                }
                break;
            };
            if data.is_empty() {
                state.outgoing.pop_front();
            }
            state.outgoing_len -= chunk.len();
            let end = state.outgoing.is_empty() && state.outgoing_end;
            frame::write_data(&mut self.out, stream.id, &chunk, end);
            if let Some(writer) = state.writer.take() {
                writer.wake();
            }
            if end {
                drop(state);
                self.answered(key);
                return;
            }
        }
        if state.outgoing.is_empty() && state.outgoing_end {
            drop(state);
            frame::write_data(&mut self.out, stream.id, &[], true);
            self.answered(key);
        }
    }

    /// The stream's answer is complete (END_STREAM went out).
    fn answered(&mut self, key: usize) {
        let stream = &mut self.streams[key];
        stream.phase = Phase::Answered;
        // The body's end: its access-log line, its in-flight count.
        stream.task = None;
        self.maybe_finish(key);
    }

    /// Removes a stream both sides have ended; one the client still sends on and whose
    /// request body nobody reads is reset with NO_ERROR (RFC 9113 §8.1).
    pub(super) fn maybe_finish(&mut self, key: usize) {
        let Some(stream) = self.streams.get(key) else {
            return;
        };
        if stream.phase != Phase::Answered {
            return;
        }
        if stream.recv_open {
            let reading = stream
                .shared
                .as_ref()
                .is_some_and(|shared| !shared.lock().reader_gone);
            if reading {
                return;
            }
            let id = stream.id;
            self.reset_id(id, ErrorCode::NO_ERROR);
        }
        self.remove_stream(key, None);
    }

    /// A stream error: RST_STREAM, and the stream ends.
    pub(super) fn reset_stream(&mut self, key: usize, code: ErrorCode) -> Result<(), Fatal> {
        let id = self.streams[key].id;
        self.reset_id(id, code);
        self.remove_stream(key, Some(code));
        Ok(())
    }

    /// Takes a stream out of the table (`failed`: it ended badly, its readers are told).
    /// Whatever of its request body the connection's window still counts is given back now:
    /// a reader that goes on reading the buffered bytes no longer reports them.
    pub(super) fn remove_stream(&mut self, key: usize, failed: Option<ErrorCode>) {
        let Some(stream) = self.streams.try_remove(key) else {
            return;
        };
        if let Ok(index) = self.ids.binary_search_by_key(&stream.id, |&(id, _)| id) {
            self.ids.remove(index);
        }
        let owed = stream.shared.as_ref().map_or(0, |shared| {
            let mut state = shared.lock();
            let buffered: usize = state.received.iter().map(Bytes::len).sum();
            std::mem::take(&mut state.released) + buffered
        });
        if owed > 0 {
            self.give_back_connection(owed);
        }
        if let Some(code) = failed {
            stream.abandon(code);
        }
    }

    /// `n` bytes of the stream's request body were read (or will never be): the windows get
    /// them back, in WINDOW_UPDATEs once half a window is owed.
    pub(super) fn give_back(&mut self, key: usize, n: usize) {
        self.give_back_connection(n);
        let half = self.limits.stream_window / 2;
        let stream = &mut self.streams[key];
        if !stream.recv_open {
            return;
        }
        stream.recv_unacked += n as i64;
        if stream.recv_unacked >= half {
            frame::write_window_update(&mut self.out, stream.id, stream.recv_unacked as u32);
            stream.recv_window += stream.recv_unacked;
            stream.recv_unacked = 0;
        }
    }
}

/// Takes off the front of `data` what the stream's and the connection's windows and the frame
/// size let out now, counted against both windows; `None` when a window is closed.
fn take_sendable(
    data: &mut Bytes,
    stream_window: &mut i64,
    connection_window: &mut i64,
    max_frame: usize,
) -> Option<Bytes> {
    let window = (*stream_window).min(*connection_window);
    let allowed = usize::try_from(window).unwrap_or(0).min(max_frame);
    if allowed == 0 {
        return None;
    }
    let chunk = data.split_to(allowed.min(data.len()));
    *stream_window -= chunk.len() as i64;
    *connection_window -= chunk.len() as i64;
    Some(chunk)
}

/// How far [`Server::send_pending`] got.
enum Sent {
    /// Nothing is left: the body may give more.
    All,
    /// The windows are closed.
    Blocked,
    /// The stream's answer ended.
    Ended,
}
