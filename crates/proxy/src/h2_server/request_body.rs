//! A stream's request body as an [`http_body::Body`]: its DATA frames, then its trailers.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

/// The request body of an HTTP/2 stream. Each frame read gives its bytes back to the flow
/// control windows (the client may send that much more), so the client's sending follows the
/// upstream's reading; h2 itself refuses DATA beyond a declared `Content-Length` or short of
/// it (RFC 9113 §8.1.1).
#[derive(Debug)]
pub(crate) struct RequestBody {
    /// `None`: no body (the stream of an extended CONNECT is the tunnel's, not a body).
    recv: Option<h2::RecvStream>,
    /// What is left of a declared `Content-Length`.
    remaining: Option<u64>,
    /// The DATA frames have ended; the trailers (if any) are next.
    data_done: bool,
}

impl RequestBody {
    /// The body of the stream whose request head has `headers`.
    pub(crate) fn new(recv: h2::RecvStream, headers: &HeaderMap) -> RequestBody {
        let remaining = if recv.is_end_stream() {
            Some(0)
        } else {
            headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse().ok())
        };
        RequestBody {
            recv: Some(recv),
            remaining,
            data_done: false,
        }
    }

    /// No body.
    pub(crate) fn empty() -> RequestBody {
        RequestBody {
            recv: None,
            remaining: Some(0),
            data_done: true,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = self.get_mut();
        let Some(recv) = this.recv.as_mut() else {
            return Poll::Ready(None);
        };
        if !this.data_done {
            match ready!(recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    // The window is the connection's too: released even if the stream is
                    // gone (then it returns an error, and there is nothing else to do).
                    let _ = recv.flow_control().release_capacity(data.len());
                    if let Some(remaining) = this.remaining.as_mut() {
                        *remaining = remaining.saturating_sub(data.len() as u64);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => this.data_done = true,
            }
        }
        match ready!(recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(error) => Poll::Ready(Some(Err(error))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.as_ref().is_none_or(h2::RecvStream::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(remaining) => SizeHint::with_exact(remaining),
            None => SizeHint::default(),
        }
    }
}
