//! [`UpstreamBody`]: the body of an upstream response, which hands its HTTP/1.1 connection back
//! to the pool the moment the body has been read to its end.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::http1_pool::Release;

pin_project_lite::pin_project! {
    /// An upstream response body. Reading it to the end (or dropping it after its end) returns
    /// its HTTP/1.1 connection to the pool; dropping it earlier closes that connection, since
    /// the rest of the response would still be on the wire.
    pub struct UpstreamBody {
        #[pin]
        inner: Incoming,
        release: Option<Release>,
    }

    impl PinnedDrop for UpstreamBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // A body without content (HEAD, 204, 304, `content-length: 0`) may never be polled.
            if this.inner.is_end_stream()
                && let Some(release) = this.release.take()
            {
                release.release();
            }
        }
    }
}

impl UpstreamBody {
    pub(crate) fn new(inner: Incoming, release: Option<Release>) -> UpstreamBody {
        UpstreamBody { inner, release }
    }

    /// A body whose connection is not pooled by us (HTTP/2 streams, upgrades).
    pub(crate) fn unpooled(inner: Incoming) -> UpstreamBody {
        UpstreamBody {
            inner,
            release: None,
        }
    }
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody")
            .field("pooled", &self.release.is_some())
            .finish_non_exhaustive()
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        match &polled {
            // The last frame of a sized body, or the end of a chunked one: the connection is
            // free for the next request now, before the client has even got these bytes.
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => {
                if let Some(release) = this.release.take() {
                    release.release();
                }
            }
            Poll::Ready(None) => {
                if let Some(release) = this.release.take() {
                    release.release();
                }
            }
            // An error leaves the connection in an unknown state: never reused.
            Poll::Ready(Some(Err(_))) => drop(this.release.take()),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
