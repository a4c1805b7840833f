//! A stream's request body as an [`http_body::Body`]: its DATA frames, then its trailers.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::frame::ErrorCode;
use super::shared::StreamShared;

/// The request body of an HTTP/2 stream. Each frame read gives its bytes back to the
/// flow-control windows (the connection sends WINDOW_UPDATE as they add up), so the client's
/// sending follows the upstream's reading. The connection refuses DATA beyond a declared
/// `Content-Length` or short of it (RFC 9113 §8.1.1) by resetting the stream, which this body
/// reports as an error.
pub(crate) struct RequestBody {
    /// `None`: no body (END_STREAM on the HEADERS; or the stream of an extended CONNECT, whose
    /// DATA frames are the tunnel's).
    shared: Option<Arc<StreamShared>>,
    /// What is left of a declared `Content-Length`.
    remaining: Option<u64>,
    /// The body ended (its last frame was returned).
    done: bool,
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("remaining", &self.remaining)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Why a request body could not be read to its end.
#[derive(Debug)]
pub(crate) struct BodyError(ErrorCode);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the client's HTTP/2 stream ended early ({})", self.0)
    }
}

impl std::error::Error for BodyError {}

impl RequestBody {
    /// The body arriving through `shared`, `content_length` long when the head said so.
    pub(super) fn streaming(shared: Arc<StreamShared>, content_length: Option<u64>) -> RequestBody {
        RequestBody {
            shared: Some(shared),
            remaining: content_length,
            done: false,
        }
    }

    /// No body.
    pub(crate) fn empty() -> RequestBody {
        RequestBody {
            shared: None,
            remaining: Some(0),
            done: true,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let Some(shared) = this.shared.as_ref() else {
            return Poll::Ready(None);
        };
        if this.done {
            return Poll::Ready(None);
        }
        let mut state = shared.lock();
        if let Some(data) = state.received.pop_front() {
            state.released += data.len();
            state.stream.wake_by_ref();
            drop(state);
            if let Some(remaining) = this.remaining.as_mut() {
                *remaining = remaining.saturating_sub(data.len() as u64);
            }
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if let Some(code) = state.failed {
            this.done = true;
            return Poll::Ready(Some(Err(BodyError(code))));
        }
        if state.received_end {
            this.done = true;
            return Poll::Ready(state.trailers.take().map(|t| Ok(Frame::trailers(t))));
        }
        state.reader = Some(cx.waker().clone());
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.shared.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(remaining) => SizeHint::with_exact(remaining),
            None => SizeHint::default(),
        }
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            // What is buffered and what still comes goes back to the windows: the client is
            // not held up by a body nobody reads.
            let mut state = shared.lock();
            state.reader_gone = true;
            let buffered: usize = state.received.drain(..).map(|data| data.len()).sum();
            state.released += buffered;
            state.reader = None;
            state.stream.wake_by_ref();
        }
    }
}
