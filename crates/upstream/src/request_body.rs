//! [`RequestBody`]: what the pools send upstream after a request head.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

use crate::pool::BoxError;

/// A request body: none, or any body, boxed. Most requests a gateway forwards have no body
/// (GET, HEAD, DELETE), and for them this is a plain value: no allocation, no virtual call.
#[derive(Default)]
pub struct RequestBody(Kind);

#[derive(Default)]
enum Kind {
    #[default]
    Empty,
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
}

impl RequestBody {
    /// No body.
    pub fn empty() -> RequestBody {
        RequestBody(Kind::Empty)
    }

    /// `body`, boxed; its errors become [`BoxError`]s.
    pub fn new<B>(body: B) -> RequestBody
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        RequestBody(Kind::Boxed(body.map_err(Into::into).boxed_unsync()))
    }
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Kind::Empty => f.write_str("RequestBody::Empty"),
            Kind::Boxed(_) => f.write_str("RequestBody::Boxed"),
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().0 {
            Kind::Empty => Poll::Ready(None),
            Kind::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Empty => true,
            Kind::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Boxed(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};

    #[tokio::test]
    async fn an_empty_body_has_ended_and_a_boxed_one_yields_its_bytes() {
        let empty = RequestBody::empty();
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
        let collected = empty.collect().await.expect("no error").to_bytes();
        assert!(collected.is_empty());

        let full = RequestBody::new(Full::new(Bytes::from_static(b"abc")));
        assert!(!full.is_end_stream());
        assert_eq!(full.size_hint().exact(), Some(3));
        let collected = full.collect().await.expect("no error").to_bytes();
        assert_eq!(collected, "abc");
    }
}
