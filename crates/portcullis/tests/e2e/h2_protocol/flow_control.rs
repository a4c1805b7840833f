//! Flow control both ways (RFC 9113 §5.2, §6.9): response bodies sent only within the client's
//! windows and resumed by its WINDOW_UPDATEs, request bodies whose receive windows the gateway
//! gives back as they are read (and when they never will be), so uploads larger than the
//! windows complete.

use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use http::{Method, StatusCode};

use super::backend::{BodyBackend, fnv};
use super::raw::{
    Block, RawConnection, code, flag, headers, kind, padded_data, rst_stream, setting,
    window_update,
};
use super::{
    BODY_SERVICE, MAX_FRAME_SIZE, MIB, Upstream, first_difference, gateway_to, h2_client, pattern,
    request,
};
use crate::fixture::manifest::{
    NS, endpoint_slice, http_route, path_match, rule, service, service_ref,
};
use crate::fixture::running::TestGateway;

/// How long a whole body may take.
const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// The gateway's stream receive window (`initialStreamWindowSize`'s default, 64 KiB).
const GATEWAY_STREAM_WINDOW: u32 = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mebibyte_response_reaches_a_slow_reader_whole_through_the_default_windows()
-> anyhow::Result<()> {
    let backend = BodyBackend::start().await?;
    let gateway = gateway_to(backend.addr(), Upstream::Http1).await?;
    let mut client = h2_client(&gateway).await?;

    let path = format!("/bytes?size={MIB}");
    let (response, _) = client.send_request(request(Method::GET, &path)?, true)?;
    let response = tokio::time::timeout(BODY_TIMEOUT, response)
        .await
        .context("no response head")??;
    ensure!(
        response.status() == StatusCode::OK,
        "GET {path}: {}",
        response.status()
    );
    ensure!(
        response
            .headers()
            .get("content-length")
            .map(|v| v.as_bytes())
            == Some(MIB.to_string().as_bytes()),
        "the length of the body is kept: {:?}",
        response.headers().get("content-length")
    );
    let mut body = response.into_body();
    let mut received = Vec::with_capacity(MIB);
    let mut unreleased = 0;
    let reading = async {
        while let Some(chunk) = body.data().await {
            let chunk = chunk.context("the response body failed")?;
            received.extend_from_slice(&chunk);
            unreleased += chunk.len();
            // The client's window (65,535 bytes, stream and connection) only reopens as the
            // client reads: a slow reader, giving its window back a little at a time, keeps
            // the gateway waiting for WINDOW_UPDATE throughout. The pause is the reader's
            // pace, not a synchronisation.
            if unreleased >= 16 * 1024 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                body.flow_control().release_capacity(unreleased)?;
                unreleased = 0;
            }
        }
        let trailers = body.trailers().await?;
        ensure!(trailers.is_none(), "trailers nobody sent: {trailers:?}");
        anyhow::Ok(())
    };
    tokio::time::timeout(BODY_TIMEOUT, reading)
        .await
        .with_context(|| format!("the body stalled after {} bytes", received.len()))??;
    let expected = pattern(0, MIB);
    ensure!(
        received == expected,
        "the body changed on the way: {}",
        first_difference(&received, &expected)
    );
    Ok(())
}

/// Window increments `(stream, connection)` a raw client hands out each time the gateway has
/// used up a window: odd sizes, with the stream's and the connection's window in turn the
/// smaller one, so the gateway has to stop at each and split frames at the window's edge.
const GRANTS: [(u32, u32); 6] = [
    (8_000, 3_000),
    (0, 20_000),
    (50_000, 0),
    (1, 70_000),
    (120_000, 90_001),
    (16_385, 9_999),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_body_is_sent_only_as_far_as_both_windows_allow() -> anyhow::Result<()> {
    let backend = BodyBackend::start().await?;
    let gateway = gateway_to(backend.addr(), Upstream::Http1).await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;

    let path = format!("/bytes?size={MIB}");
    connection
        .send(&headers(1, &Block::request("GET", &path), true))
        .await?;
    let (head, ended) = connection.header_block(1).await?;
    ensure!(!ended, "a 1 MiB body cannot end with its head: {head:?}");
    ensure!(
        head.iter()
            .any(|(name, value)| name == ":status" && value == "200"),
        "GET {path}: {head:?}"
    );

    // The client's windows, as the protocol's defaults and its own WINDOW_UPDATEs make them.
    let mut stream_window = i64::from(super::DEFAULT_WINDOW);
    let mut connection_window = i64::from(super::DEFAULT_WINDOW);
    let mut grants = GRANTS.iter().cycle();
    let (mut stopped_by_stream, mut stopped_by_connection) = (0, 0);
    let mut body = Vec::with_capacity(MIB);
    loop {
        let frame = connection
            .next_frame()
            .await
            .with_context(|| format!("after {} body bytes", body.len()))?
            .context("the gateway closed the connection inside the body")?;
        match (frame.kind, frame.stream) {
            (kind::DATA, 1) => {
                let length = frame.payload.len();
                let (within_stream, within_connection) = (
                    length as i64 <= stream_window,
                    length as i64 <= connection_window,
                );
                ensure!(
                    within_stream && within_connection && length <= MAX_FRAME_SIZE,
                    "after {} bytes the gateway sent {frame} while the windows allowed {stream_window} \
                     (stream) and {connection_window} (connection) bytes in frames of at most \
                     {MAX_FRAME_SIZE} (RFC 9113 §6.9.1)",
                    body.len()
                );
                stream_window -= length as i64;
                connection_window -= length as i64;
                body.extend_from_slice(&frame.payload);
                if frame.has(flag::END_STREAM) {
                    break;
                }
            }
            (kind::SETTINGS | kind::PING | kind::WINDOW_UPDATE, 0) => {}
            _ => bail!(
                "{frame} in the middle of the body (after {} bytes)",
                body.len()
            ),
        }
        while stream_window.min(connection_window) == 0 {
            if stream_window == 0 {
                stopped_by_stream += 1;
            }
            if connection_window == 0 {
                stopped_by_connection += 1;
            }
            let &(to_stream, to_connection) = grants.next().context("GRANTS is not empty")?;
            let mut updates = Vec::new();
            if to_stream > 0 {
                updates.extend(window_update(1, to_stream));
                stream_window += i64::from(to_stream);
            }
            if to_connection > 0 {
                updates.extend(window_update(0, to_connection));
                connection_window += i64::from(to_connection);
            }
            connection.send(&updates).await?;
        }
    }
    let expected = pattern(0, MIB);
    ensure!(
        body == expected,
        "the body changed on the way: {}",
        first_difference(&body, &expected)
    );
    // The schedule of GRANTS makes each window in turn the one that runs out.
    ensure!(
        stopped_by_stream > 3 && stopped_by_connection > 3,
        "the test did not exercise both windows: the stream's ran out {stopped_by_stream} times, \
         the connection's {stopped_by_connection}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mebibyte_upload_completes_as_the_gateway_gives_its_windows_back() -> anyhow::Result<()> {
    let backend = BodyBackend::start().await?;
    let gateway = gateway_to(backend.addr(), Upstream::Http1).await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;
    ensure!(
        connection.setting(setting::INITIAL_WINDOW_SIZE) == Some(GATEWAY_STREAM_WINDOW),
        "the gateway's SETTINGS_INITIAL_WINDOW_SIZE: {:?}",
        connection.setting(setting::INITIAL_WINDOW_SIZE)
    );

    let block = Block::request("POST", "/upload/whole").field("content-length", &MIB.to_string());
    connection.send(&headers(1, &block, false)).await?;
    let payload = pattern(7, MIB);
    // 16 times the stream's window: the upload goes on only as the gateway reads the body
    // and gives the window back.
    tokio::time::timeout(BODY_TIMEOUT, connection.send_body(1, &payload, true))
        .await
        .context("the upload did not finish")??;
    let response = connection.response(1).await?;
    ensure!(
        response.status == 200,
        "the upload was answered {}",
        response.status
    );
    let summary = response.json()?;
    ensure!(
        summary["received"] == MIB
            && summary["hash"] == fnv(&payload)
            && summary["error"].is_null(),
        "the backend got another body: {summary}"
    );
    Ok(())
}

/// The padded upload: DATA frames of 100 body bytes and 255 bytes of padding, so that padding
/// is most of what the frames take from the windows: 64 KiB of body take 228 KiB of window,
/// three and a half times the stream's.
const PADDED_CHUNK: usize = 100;
const PADDING: u8 = 255;
const PADDED_BODY: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padding_counts_against_the_windows_and_is_given_back() -> anyhow::Result<()> {
    let backend = BodyBackend::start().await?;
    let gateway = gateway_to(backend.addr(), Upstream::Http1).await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;

    connection
        .send(&headers(
            1,
            &Block::request("POST", "/upload/padded"),
            false,
        ))
        .await?;
    let payload = pattern(11, PADDED_BODY);
    let chunks: Vec<&[u8]> = payload.chunks(PADDED_CHUNK).collect();
    for (index, chunk) in chunks.iter().enumerate() {
        // The whole frame counts, padding included (RFC 9113 §6.9.1); the gateway reads no
        // padding, so it must give it back on its own.
        let length = 1 + chunk.len() + usize::from(PADDING);
        connection
            .wait_for_window(1, length)
            .await
            .with_context(|| format!("after {index} padded frames"))?;
        connection.take_window(1, length)?;
        let last = index + 1 == chunks.len();
        connection
            .send(&padded_data(1, chunk, PADDING, last))
            .await?;
    }
    let response = connection.response(1).await?;
    ensure!(
        response.status == 200,
        "the padded upload was answered {}",
        response.status
    );
    let summary = response.json()?;
    ensure!(
        summary["received"] == PADDED_BODY && summary["hash"] == fnv(&payload),
        "the padded upload arrived as {summary} (padding must not reach the body)"
    );
    Ok(())
}

/// Streams of the window-leak tests, each carrying this much of a request body the gateway
/// never reads: 40 of them hold 2.3 MiB, more than twice the connection's 1 MiB window, so the
/// upload stalls unless the gateway gives the window of unread bodies back.
const UNREAD_BODY: usize = 60_000;
const UNREAD_STREAMS: u32 = 40;

/// What is uploaded on the same connection after them.
const LAST_UPLOAD: usize = 256 * 1024;

/// Uploads [`LAST_UPLOAD`] bytes on `stream` to `path` and checks the backend got them.
async fn upload_after(
    connection: &mut RawConnection,
    stream: u32,
    path: &str,
) -> anyhow::Result<()> {
    let payload = pattern(3, LAST_UPLOAD);
    connection
        .send(&headers(stream, &Block::request("POST", path), false))
        .await?;
    connection.send_body(stream, &payload, true).await?;
    let response = connection.response(stream).await?;
    ensure!(
        response.status == 200,
        "the last upload was answered {}",
        response.status
    );
    let summary = response.json()?;
    ensure!(
        summary["received"] == LAST_UPLOAD && summary["hash"] == fnv(&payload),
        "the last upload arrived as {summary}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_the_client_resets_unread_give_the_connection_window_back()
-> anyhow::Result<()> {
    let backend = BodyBackend::start().await?;
    let gateway = gateway_to(backend.addr(), Upstream::Http1).await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;

    // HEADERS, the body's DATA and RST_STREAM(CANCEL) in one write: the gateway takes all three
    // frames before it first polls the stream, so the body is still buffered, unread, when the
    // stream goes. Those bytes were taken from the connection's window (RFC 9113 §6.9: frames
    // on a stream that is then reset still count); once nobody will read them the gateway must
    // give them back, or each such stream shrinks the window of the whole connection for good.
    // The codec of a623a05 lost them (`remove_stream` dropped the body, whose bytes were marked
    // released for a stream no longer in the table): this upload stalled after 17 streams.
    for index in 0..UNREAD_STREAMS {
        let stream = 2 * index + 1;
        connection
            .wait_for_window(stream, UNREAD_BODY)
            .await
            .with_context(|| {
                format!("after {index} streams reset with {UNREAD_BODY} unread body bytes each")
            })?;
        let mut frames = headers(stream, &Block::request("POST", "/upload/reset"), false);
        frames.extend(connection.data_frames(stream, &pattern(1, UNREAD_BODY), false)?);
        frames.extend(rst_stream(stream, code::CANCEL));
        connection.send(&frames).await?;
    }
    upload_after(&mut connection, 2 * UNREAD_STREAMS + 1, "/upload/after").await?;
    ensure!(
        backend.heads("/upload/reset") == 0,
        "streams reset before they were polled reached the backend"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_answered_unread_give_the_connection_window_back() -> anyhow::Result<()> {
    let backend = BodyBackend::start().await?;
    // Only `/known` has a route: anything else is the gateway's own 404, which reads no body.
    let documents = vec![
        service(NS, BODY_SERVICE, None),
        endpoint_slice(NS, BODY_SERVICE, "body-1", backend.addr()),
        http_route(
            BODY_SERVICE,
            &[],
            vec![rule(
                vec![path_match("PathPrefix", "/known")],
                vec![service_ref(BODY_SERVICE)],
            )],
        ),
    ];
    let gateway = TestGateway::start(&documents).await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;

    // HEADERS and the body's DATA (no END_STREAM) in one write: the gateway answers 404 from
    // the head while the body is buffered, unread, and then resets the stream with NO_ERROR
    // (RFC 9113 §8.1: the answer is complete, the rest of the body is not wanted). The buffered
    // bytes are released when the request (and its body) is dropped; the stream is removed in
    // the same poll, and whatever it still owes the connection's window must be given back
    // then. The codec of a623a05 lost them: this loop stalled after 17 requests.
    for index in 0..UNREAD_STREAMS {
        let stream = 2 * index + 1;
        connection
            .wait_for_window(stream, UNREAD_BODY)
            .await
            .with_context(|| {
                format!("after {index} bodies answered unread, {UNREAD_BODY} bytes each")
            })?;
        let mut frames = headers(stream, &Block::request("POST", "/unrouted"), false);
        frames.extend(connection.data_frames(stream, &pattern(1, UNREAD_BODY), false)?);
        connection.send(&frames).await?;
        let response = connection.response(stream).await?;
        ensure!(
            response.status == 404,
            "POST /unrouted: {}",
            response.status
        );
        let after = connection.next_on_stream(stream).await?;
        ensure!(
            after.is_reset(stream, code::NO_ERROR),
            "after a complete answer to a request whose body is still coming, RST_STREAM(NO_ERROR) \
             (RFC 9113 §8.1), got {after}"
        );
    }
    upload_after(&mut connection, 2 * UNREAD_STREAMS + 1, "/known/after").await
}
