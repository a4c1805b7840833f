//! Request bodies that can be sent more than once, for retries.
//!
//! A request to a rule with a retry policy has its body read into memory up to
//! [`snapshot::RETRY_BODY_LIMIT`] before the first attempt. If the whole body fits, every attempt
//! sends a copy of it. If it does not, the request is sent once: the part already read, then
//! the rest of the stream ([`PrefixedBody`]), and it is not retried. Request trailers are not
//! replayed (they are dropped from buffered bodies).

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use upstream::RequestBody;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body after preparation for retries.
pub(crate) enum Prepared {
    /// The whole body, in memory: can be sent any number of times.
    Replayable(Bytes),
    /// Too large: what was read, then the rest of the stream. Sent once.
    Streaming(PrefixedBody),
}

/// Reads `body` (the client's, possibly teed to mirrors) until it ends or exceeds `limit`
/// bytes.
pub(crate) async fn prepare(mut body: RequestBody, limit: usize) -> Result<Prepared, BoxError> {
    let mut read: VecDeque<Bytes> = VecDeque::new();
    let mut size = 0usize;
    while !body.is_end_stream() {
        let Some(frame) = body.frame().await else {
            break;
        };
        let Ok(data) = frame?.into_data() else {
            continue;
        }; // trailers: not replayed
        size += data.len();
        read.push_back(data);
        if size > limit {
            return Ok(Prepared::Streaming(PrefixedBody {
                prefix: read,
                rest: Some(body),
            }));
        }
    }
    let mut joined = BytesMut::with_capacity(size);
    for chunk in read {
        joined.extend_from_slice(&chunk);
    }
    Ok(Prepared::Replayable(joined.freeze()))
}

pin_project_lite::pin_project! {
    /// Chunks already read, followed by the rest of the original body.
    pub(crate) struct PrefixedBody {
        prefix: VecDeque<Bytes>,
        #[pin]
        rest: Option<RequestBody>,
    }
}

impl Body for PrefixedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Some(chunk) = this.prefix.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        match this.rest.as_pin_mut() {
            Some(rest) => rest.poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_empty() && self.rest.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let buffered: u64 = self.prefix.iter().map(|b| b.len() as u64).sum();
        let rest = self
            .rest
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint);
        let mut hint = SizeHint::new();
        hint.set_lower(buffered + rest.lower());
        if let Some(upper) = rest.upper() {
            hint.set_upper(buffered + upper);
        }
        hint
    }
}
