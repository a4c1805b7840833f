//! Copies a request body to mirrors while it streams to the backend.
//!
//! [`tee`] wraps the client's body in a [`TeeBody`], which the main request sends as usual, and
//! gives each mirror a [`MirrorBody`]. Every data chunk the main request reads is offered to each
//! mirror through a bounded channel with `try_send`: the main request never waits for a mirror.
//! A mirror whose channel is full (it cannot keep up), whose copy would exceed the size limit,
//! or whose request went away is cut off; its body then ends with an error, so its upstream
//! request is aborted rather than sent truncated. A mirror body ends cleanly only after the
//! client's body did. Trailers are not mirrored.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Chunks buffered per mirror before it counts as too slow.
pub(crate) const MIRROR_CHANNEL_CHUNKS: usize = 16;

/// Why a mirror's body ended early.
#[derive(Debug, thiserror::Error)]
#[error(
    "mirror body aborted: the mirror could not keep up, the body was too large, or the client's body failed"
)]
pub(crate) struct MirrorAborted;

/// What a mirror body and the tee share.
#[derive(Debug, Default)]
struct CopyState {
    /// Set (before the sender is dropped) when the client's body ended cleanly.
    is_complete: AtomicBool,
    /// Set when the mirror body reported [`MirrorAborted`].
    is_aborted: AtomicBool,
}

/// Splits `body` into the body to forward and `copies` mirror bodies, each cut off beyond
/// `limit` bytes.
pub(crate) fn tee<B>(body: B, copies: usize, limit: usize) -> (TeeBody<B>, Vec<MirrorBody>)
where
    B: Body<Data = Bytes>,
{
    let size_hint = body.size_hint();
    let mut feeds = Vec::with_capacity(copies);
    let mut mirrors = Vec::with_capacity(copies);
    for _ in 0..copies {
        let (sender, receiver) = mpsc::channel(MIRROR_CHANNEL_CHUNKS);
        let state = Arc::new(CopyState::default());
        feeds.push(Feed {
            sender,
            sent: 0,
            state: Arc::clone(&state),
        });
        mirrors.push(MirrorBody {
            receiver,
            state,
            size_hint,
        });
    }
    let tee = TeeBody {
        inner: body,
        feeds,
        limit,
    };
    (tee, mirrors)
}

/// One mirror's end of the tee.
struct Feed {
    sender: mpsc::Sender<Bytes>,
    sent: usize,
    state: Arc<CopyState>,
}

impl Feed {
    /// Offers a chunk; `false` cuts the mirror off (dropping the feed aborts its body).
    fn offer(&mut self, data: &Bytes, limit: usize) -> bool {
        if self.sent + data.len() > limit {
            return false;
        }
        match self.sender.try_send(data.clone()) {
            Ok(()) => {
                self.sent += data.len();
                true
            }
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => false,
        }
    }

    /// The client's body ended: the mirror body may end cleanly once it drained the channel.
    fn complete(self) {
        self.state.is_complete.store(true, Ordering::Release);
        // Dropping the sender closes the channel after the buffered chunks.
    }
}

pin_project_lite::pin_project! {
    /// The client's body, copied to mirrors as the main request reads it.
    pub(crate) struct TeeBody<B> {
        #[pin]
        inner: B,
        feeds: Vec<Feed>,
        limit: usize,
    }
}

impl<B> Body for TeeBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let polled = ready!(this.inner.as_mut().poll_frame(cx));
        match &polled {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let limit = *this.limit;
                    this.feeds.retain_mut(|feed| feed.offer(data, limit));
                }
                // The server may never poll again once the body says it has ended.
                if this.inner.is_end_stream() {
                    this.feeds.drain(..).for_each(Feed::complete);
                }
            }
            None => this.feeds.drain(..).for_each(Feed::complete),
            // The client's body failed: the mirrors' copies are incomplete.
            Some(Err(_)) => this.feeds.clear(),
        }
        Poll::Ready(polled.map(|result| result.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A mirror's copy of the client's body.
#[derive(Debug)]
pub(crate) struct MirrorBody {
    receiver: mpsc::Receiver<Bytes>,
    state: Arc<CopyState>,
    size_hint: SizeHint,
}

impl MirrorBody {
    /// A handle that tells, after the mirror request ended, whether its body was cut off.
    pub(crate) fn watch(&self) -> CopyWatch {
        CopyWatch(Arc::clone(&self.state))
    }
}

/// See [`MirrorBody::watch`].
#[derive(Debug)]
pub(crate) struct CopyWatch(Arc<CopyState>);

impl CopyWatch {
    /// Whether the mirror body ended with [`MirrorAborted`].
    pub(crate) fn is_aborted(&self) -> bool {
        self.0.is_aborted.load(Ordering::Acquire)
    }
}

impl Body for MirrorBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match ready!(this.receiver.poll_recv(cx)) {
            Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
            None if this.state.is_complete.load(Ordering::Acquire) => Poll::Ready(None),
            None => {
                this.state.is_aborted.store(true, Ordering::Release);
                Poll::Ready(Some(Err(Box::new(MirrorAborted))))
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.size_hint
    }
}

#[cfg(test)]
mod tests;
