//! Our HTTP/2 server: h2's connection, driven in the connection's own task together with the
//! request futures of its streams, each response handed to h2 as soon as it is made.
//!
//! hyper's HTTP/2 server spawns a task per stream, which holds the request's future (boxed)
//! and pipes the response body through a general-purpose loop; every stream then costs a task
//! (allocation, scheduling, a wake to go from the upstream's answer to the stream's task and
//! another to the connection's), and the body a capacity reservation per frame. Here the
//! streams of a connection are futures in a [`FuturesUnordered`] beside the connection (the
//! future boxed, and the set's entry), with no scheduling of their own, and the task that
//! reads the upstream's answer is the one that writes it to the client. That is what the other
//! proxies do (NGINX, HAProxy and Envoy serve every stream of a connection on the connection's
//! thread); like them, a connection's streams then share one core, and connections spread over
//! the cores. The protocol itself (framing, HPACK, flow control, stream states, the flood
//! limits h2 enforces) stays h2's.
//!
//! What hyper's server did on top of h2 is done here: the settings, `Date` on responses
//! without one, `Content-Length` from a body of known size, connection-specific header fields
//! removed from responses (RFC 9113 §8.2.2), request bodies whose flow-control window is
//! released as they are read, a stream's request future dropped when the client resets the
//! stream, trailers both ways, a response body error resetting the stream, and the extended
//! CONNECT of WebSocket over HTTP/2 (RFC 8441, [`tunnel`]). Connections whose version is only
//! known once hyper-util's auto server read them (TLS without ALPN, the PROXY protocol) are
//! still served by hyper.

mod request_body;
mod response;
pub(crate) mod tunnel;

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use h2::server::SendResponse;
use http::Request;
use snapshot::client::ClientSettings;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::body::{ClientStream, RequestStream};
use crate::plane::DataPlane;
use crate::stack::{self, Connection};

pub(crate) use request_body::RequestBody;

/// The largest frame the gateway accepts (SETTINGS_MAX_FRAME_SIZE): the protocol's default.
const MAX_FRAME_SIZE: u32 = 16 * 1024;

/// Streams a client may make the gateway reset for its errors (malformed requests) before the
/// connection is closed (h2's guard against floods of them; hyper's default).
const MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// Serves HTTP/2 on `io` (the preface not yet read) until the client closes, the connection
/// fails, or `stop` turns true and the streams in flight have finished (GOAWAY first).
pub(crate) async fn serve<I>(
    io: I,
    plane: &Arc<DataPlane>,
    connection: &Arc<Connection>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), h2::Error>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let handshake = builder(&connection.settings).handshake::<_, Bytes>(io);
    let mut h2 = tokio::select! {
        h2 = handshake => h2?,
        // Nothing was asked yet: close without serving.
        _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
    };
    let mut stopped = pin!(stop.wait_for(|stopped| *stopped));
    let mut draining = false;
    let mut streams = FuturesUnordered::new();
    let mut accepting = true;
    let mut failure = None;
    poll_fn(|cx| {
        if !draining && stopped.as_mut().poll(cx).is_ready() {
            draining = true;
            h2.graceful_shutdown();
        }
        // Accepting also writes what the streams queued: after streams progressed, once more.
        loop {
            let mut progressed = false;
            while accepting {
                match h2.poll_accept(cx) {
                    Poll::Ready(Some(Ok((request, respond)))) => {
                        // Boxed: the set's entries (and the stub it keeps for an idle
                        // connection) are then a pointer, not the stream's whole future, and
                        // the future is copied once, into its box, not twice.
                        streams.push(Box::pin(serve_stream(
                            Arc::clone(plane),
                            Arc::clone(connection),
                            request,
                            respond,
                        )));
                        progressed = true;
                    }
                    Poll::Ready(Some(Err(error))) => {
                        failure = Some(error);
                        accepting = false;
                    }
                    Poll::Ready(None) => accepting = false,
                    Poll::Pending => break,
                }
            }
            while let Poll::Ready(Some(())) = streams.poll_next_unpin(cx) {
                progressed = true;
            }
            if !accepting && streams.is_empty() {
                return Poll::Ready(());
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    })
    .await;
    failure.map_or(Ok(()), Err)
}

/// h2's server settings from the socket's.
fn builder(settings: &ClientSettings) -> h2::server::Builder {
    let h2 = &settings.http2;
    let mut builder = h2::server::Builder::new();
    builder
        .initial_window_size(h2.initial_stream_window_size)
        .initial_connection_window_size(h2.initial_connection_window_size)
        .max_frame_size(MAX_FRAME_SIZE)
        .max_header_list_size(max_header_list_size(settings))
        .max_concurrent_streams(h2.max_concurrent_streams)
        .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS))
        .max_send_buffer_size(max_send_buffer_size(settings))
        // WebSocket over HTTP/2 (RFC 8441).
        .enable_connect_protocol();
    builder
}

/// SETTINGS_MAX_HEADER_LIST_SIZE: the socket's head limit. Also hyper's, where it serves
/// HTTP/2 (`listener::http2_settings!`).
pub(crate) fn max_header_list_size(settings: &ClientSettings) -> u32 {
    u32::try_from(settings.headers.max_request_headers_bytes).unwrap_or(u32::MAX)
}

/// What a stream may hold of its response body beyond the client's window: the socket's
/// buffer limit, at least one frame. Also hyper's, where it serves HTTP/2.
pub(crate) fn max_send_buffer_size(settings: &ClientSettings) -> usize {
    settings.buffer_limit.max(MAX_FRAME_SIZE as usize)
}

/// One stream: the request through the stack, then its response to the client. Ends early
/// when the client resets the stream (the request's future is dropped, which cancels its
/// upstream exchange).
async fn serve_stream(
    plane: Arc<DataPlane>,
    connection: Arc<Connection>,
    request: Request<h2::RecvStream>,
    mut respond: SendResponse<Bytes>,
) {
    let (mut parts, recv) = request.into_parts();
    let (body, tunnel) = if parts.method == http::Method::CONNECT {
        match tunnel::accept(&mut parts, recv) {
            Ok(accepted) => accepted,
            Err(reason) => return respond.send_reset(reason),
        }
    } else {
        (RequestBody::new(recv, &parts.headers), None)
    };
    let request = Request::from_parts(parts, RequestStream::Streaming(ClientStream::H2(body)));
    // In a block of its own: the request's future is gone before the response's is made, so
    // the two share their place in this future (which is copied into its box: every byte of
    // it counts).
    let answered = {
        let mut handling = pin!(stack::handle(plane, connection, request));
        poll_fn(|cx| {
            if let Poll::Ready(Ok(response)) = handling.as_mut().poll(cx) {
                return Poll::Ready(Some(response));
            }
            // Reset by the client (or the connection is gone): nobody to answer.
            respond.poll_reset(cx).map(|_| None)
        })
        .await
    };
    if let Some(response) = answered {
        response::send(response, respond, tunnel).await;
    }
}
