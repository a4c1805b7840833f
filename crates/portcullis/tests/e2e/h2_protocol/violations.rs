//! Requests and header blocks that break RFC 9113, sent as raw frames, each answered with the
//! exact frame and code the RFC asks for: malformed requests reset their stream and leave the
//! connection (and its HPACK table) serving; undecodable blocks, oversized frames and
//! CONTINUATION floods close it; header lists beyond the limit get 431; bodies that disagree
//! with their Content-Length are refused before the upstream sees them whole.

use anyhow::{Context as _, ensure};

use super::MAX_FRAME_SIZE;
use super::backend::BodyBackend;
use super::raw::{
    Block, Frame, RawConnection, code, code_name, data, frame, headers, kind, split_block,
};
use crate::fixture::manifest::{NS, http_route, path_match, rule, service_backend, service_ref};
use crate::fixture::running::{Echoes, TestGateway};

/// A gateway sending `/upload...` to a [`BodyBackend`] and everything else to echo server
/// `echo` (which reports the headers it got).
async fn echo_and_body_gateway() -> anyhow::Result<(Echoes, BodyBackend, TestGateway)> {
    let echoes = Echoes::start(&["echo"]).await?;
    let backend = BodyBackend::start().await?;
    let mut documents = service_backend(NS, "echo", &[echoes.addr("echo")]);
    documents.extend(service_backend(NS, "body", &[backend.addr()]));
    documents.push(http_route(
        "violations",
        &[],
        vec![
            rule(
                vec![path_match("PathPrefix", "/upload")],
                vec![service_ref("body")],
            ),
            rule(
                vec![path_match("PathPrefix", "/")],
                vec![service_ref("echo")],
            ),
        ],
    ));
    let gateway = TestGateway::start(&documents).await?;
    Ok((echoes, backend, gateway))
}

/// Reads until GOAWAY, checks its code and last stream id, then that the connection closes.
async fn ensure_goaway(
    connection: &mut RawConnection,
    expected: u32,
    last_stream: u32,
    what: &str,
) -> anyhow::Result<()> {
    let goaway = connection.goaway().await.with_context(|| what.to_owned())?;
    ensure!(
        goaway.error_code() == Some(expected) && goaway.first_word() == Some(last_stream),
        "{what}: expected GOAWAY({}) with last stream {last_stream}, got {goaway}",
        code_name(expected)
    );
    connection
        .closed()
        .await
        .with_context(|| format!("{what}: the connection stays open after GOAWAY"))
}

fn ensure_reset(frame: &Frame, stream: u32, expected: u32, what: &str) -> anyhow::Result<()> {
    ensure!(
        frame.is_reset(stream, expected),
        "{what}: expected RST_STREAM({}) on stream {stream}, got {frame}",
        code_name(expected)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_reset_their_stream_and_the_connection_serves_on() -> anyhow::Result<()>
{
    let (echoes, _backend, gateway) = echo_and_body_gateway().await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;

    // Each malformed block adds a field to the gateway's HPACK table, after what makes it
    // malformed where it can: the stream is refused, but its block is decoded to its end all
    // the same, so the table stays in step with the client's (RFC 9113 §4.3).
    let cases = [
        (
            "an uppercase field name (RFC 9113 §8.2.1)",
            Block::request("GET", "/malformed")
                .literal(b"X-Upper", b"1")
                .indexed_new("x-step-1", "one"),
        ),
        (
            "a request without :path (RFC 9113 §8.3.1)",
            Block::request_without_path("GET").indexed_new("x-step-2", "two"),
        ),
        (
            "a connection-specific field (RFC 9113 §8.2.2)",
            Block::request("GET", "/malformed")
                .field("connection", "keep-alive")
                .indexed_new("x-step-3", "three"),
        ),
        (
            "TE other than trailers (RFC 9113 §8.2.2)",
            Block::request("GET", "/malformed")
                .field("te", "gzip")
                .indexed_new("x-step-4", "four"),
        ),
        (
            "a pseudo-header field after a regular one (RFC 9113 §8.3)",
            Block::request_without_path("GET")
                .indexed_new("x-step-5", "five")
                .path("/malformed"),
        ),
    ];
    for (index, (what, block)) in cases.iter().enumerate() {
        let stream = 2 * index as u32 + 1;
        connection.send(&headers(stream, block, true)).await?;
        let answer = connection.next_on_stream(stream).await.context(*what)?;
        ensure_reset(&answer, stream, code::PROTOCOL_ERROR, what)?;
    }

    // The newest dynamic entry is 62: x-step-5 back to x-step-1 at 66.
    let good = Block::request("GET", "/after-malformed")
        .indexed(62)
        .indexed(63)
        .indexed(64)
        .indexed(65)
        .indexed(66);
    let stream = 2 * cases.len() as u32 + 1;
    connection.send(&headers(stream, &good, true)).await?;
    let response = connection.response(stream).await?;
    ensure!(
        response.status == 200,
        "the request after them: {}",
        response.status
    );
    let reply = response.echo()?;
    for (name, value) in [
        ("x-step-1", "one"),
        ("x-step-2", "two"),
        ("x-step-3", "three"),
        ("x-step-4", "four"),
        ("x-step-5", "five"),
    ] {
        ensure!(
            reply.header(name).as_deref() == Some(value),
            "the HPACK table lost its step: {name} reached the backend as {:?}",
            reply.header(name)
        );
    }
    ensure!(
        echoes.server("echo").requests() == 1,
        "malformed requests reached the backend: it saw {} requests",
        echoes.server("echo").requests()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_malformed_requests_are_reset_and_one_more_gets_goaway() -> anyhow::Result<()> {
    let (_echoes, _backend, gateway) = echo_and_body_gateway().await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;
    // The limit is the h2 crate's `max_local_error_reset_streams` default: 1,024 streams reset
    // for the client's errors are tolerated, the next one closes the connection.
    let block = Block::request_without_path("GET");
    let mut flood = Vec::new();
    for index in 0..1024u32 {
        flood.extend(headers(2 * index + 1, &block, true));
    }
    connection.send(&flood).await?;
    let mut resets = 0;
    connection.send(&super::raw::ping(*b"1024 bad")).await?;
    loop {
        let frame = connection
            .next_frame()
            .await?
            .with_context(|| format!("the connection closed after {resets} resets"))?;
        match frame.kind {
            kind::RST_STREAM if frame.error_code() == Some(code::PROTOCOL_ERROR) => resets += 1,
            kind::PING => break,
            kind::SETTINGS | kind::WINDOW_UPDATE => {}
            _ => anyhow::bail!("{frame} after {resets} resets of malformed requests"),
        }
    }
    ensure!(
        resets == 1024,
        "1,024 malformed requests got {resets} RST_STREAM(PROTOCOL_ERROR)"
    );

    connection.send(&headers(2049, &block, true)).await?;
    ensure_goaway(
        &mut connection,
        code::ENHANCE_YOUR_CALM,
        2049,
        "the 1,025th malformed request",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_on_stream_zero_gets_goaway_protocol_error() -> anyhow::Result<()> {
    let (_echoes, _backend, gateway) = echo_and_body_gateway().await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;
    connection.send(&data(0, b"nowhere", false)).await?;
    ensure_goaway(
        &mut connection,
        code::PROTOCOL_ERROR,
        0,
        "DATA on stream 0 (RFC 9113 §6.1)",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_beyond_the_maximum_frame_size_gets_goaway_frame_size_error() -> anyhow::Result<()>
{
    let (_echoes, _backend, gateway) = echo_and_body_gateway().await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;
    // A frame of exactly SETTINGS_MAX_FRAME_SIZE is fine.
    connection
        .send(&headers(
            1,
            &Block::request("POST", "/upload/frame-size"),
            false,
        ))
        .await?;
    let full = connection.data_frames(1, &vec![7; MAX_FRAME_SIZE], false)?;
    connection.send(&full).await?;
    connection.ping_pong(*b"maxframe").await?;
    // One byte more, on a HEADERS (which changes the HPACK state, so a connection error:
    // RFC 9113 §4.2).
    let oversized = frame(kind::HEADERS, 0x4, 3, &vec![0; MAX_FRAME_SIZE + 1]);
    connection.send(&oversized).await?;
    ensure_goaway(
        &mut connection,
        code::FRAME_SIZE_ERROR,
        1,
        "a 16,385-byte HEADERS (RFC 9113 §4.2)",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_header_block_gets_goaway_compression_error() -> anyhow::Result<()> {
    let (_echoes, _backend, gateway) = echo_and_body_gateway().await?;
    for (what, block) in [
        (
            "an indexed field with index 0 (RFC 7541 §6.1)",
            Block::default().indexed(0),
        ),
        (
            "an index beyond both tables (RFC 7541 §2.3.3)",
            Block::request("GET", "/").indexed(62),
        ),
    ] {
        let mut connection = RawConnection::open(gateway.listener()).await?;
        connection.send(&headers(1, &block, true)).await?;
        ensure_goaway(&mut connection, code::COMPRESSION_ERROR, 1, what).await?;
    }
    Ok(())
}

/// A request block with many fields, so that it splits into many small pieces.
fn many_fields(path: &str) -> Block {
    (0..40).fold(Block::request("GET", path), |block, index| {
        block.field(&format!("x-split-{index}"), &format!("value-{index}"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_block_over_128_continuation_frames_is_one_request() -> anyhow::Result<()> {
    let (_echoes, _backend, gateway) = echo_and_body_gateway().await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;
    let block = many_fields("/split");
    // HEADERS and 128 CONTINUATION frames (the most one block may take), cut mid-field.
    let piece = block.bytes().len().div_ceil(129);
    let frames = split_block(1, block.bytes(), piece, true, true);
    connection.send(&frames).await?;
    let response = connection.response(1).await?;
    ensure!(
        response.status == 200,
        "the split request: {}",
        response.status
    );
    let reply = response.echo()?;
    for index in [0, 17, 39] {
        let name = format!("x-split-{index}");
        ensure!(
            reply.header(&name) == Some(format!("value-{index}")),
            "{name} reached the backend as {:?}",
            reply.header(&name)
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuation_flood_gets_goaway_enhance_your_calm() -> anyhow::Result<()> {
    let (echoes, _backend, gateway) = echo_and_body_gateway().await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;
    // HEADERS without END_HEADERS, then 129 small CONTINUATION frames, none ending the block.
    let block = Block::request("GET", "/flood").field("x-flood", &"f".repeat(130 * 8));
    let frames = split_block(1, &block.bytes()[..130 * 8], 8, true, false);
    let _ = connection.send(&frames).await;
    ensure_goaway(
        &mut connection,
        code::ENHANCE_YOUR_CALM,
        0,
        "HEADERS and 129 CONTINUATION frames",
    )
    .await?;
    ensure!(
        echoes.server("echo").requests() == 0,
        "the flood's request reached the backend"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_a_hundred_empty_data_frames_get_goaway_enhance_your_calm() -> anyhow::Result<()>
{
    let (_echoes, _backend, gateway) = echo_and_body_gateway().await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;
    connection
        .send(&headers(
            1,
            &Block::request("POST", "/upload/empty-data"),
            false,
        ))
        .await?;
    let empty: Vec<u8> = data(1, &[], false).repeat(100);
    // A hundred in a row are tolerated; a byte of data starts the count again.
    connection.send(&empty).await?;
    connection.ping_pong(*b"hundred1").await?;
    connection.send(&data(1, b"x", false)).await?;
    connection.send(&empty).await?;
    connection.ping_pong(*b"hundred2").await?;
    // The 101st in a row.
    connection.send(&data(1, &[], false)).await?;
    ensure_goaway(
        &mut connection,
        code::ENHANCE_YOUR_CALM,
        1,
        "101 empty DATA frames without END_STREAM",
    )
    .await
}

/// A header value beyond the gateway's SETTINGS_MAX_HEADER_LIST_SIZE (60 KiB by default).
fn too_large(path: &str, method: &str) -> Block {
    Block::request(method, path).field("x-big", &"b".repeat(70 * 1024))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_list_beyond_the_limit_gets_431_and_the_connection_serves_on() -> anyhow::Result<()>
{
    let (echoes, _backend, gateway) = echo_and_body_gateway().await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;

    // 70 KiB over HEADERS and CONTINUATION frames, then x-table added to the HPACK table:
    // past the limit the block is still decoded to its end (RFC 9113 §4.3).
    let block = Block::request("GET", "/too-large")
        .field("x-big", &"b".repeat(70 * 1024))
        .indexed_new("x-table", "kept");
    connection
        .send(&split_block(1, block.bytes(), MAX_FRAME_SIZE, true, true))
        .await?;
    let (head, ended) = connection.header_block(1).await?;
    ensure!(
        ended
            && head
                .iter()
                .any(|(name, value)| name == ":status" && value == "431"),
        "a 70 KiB header list: expected a 431 ending the stream, got {head:?} (ended: {ended})"
    );

    // The same with a body to come: 431, then RST_STREAM(NO_ERROR) for the unwanted body,
    // whose DATA still in flight is ignored.
    let block = too_large("/too-large", "POST");
    connection
        .send(&split_block(3, block.bytes(), MAX_FRAME_SIZE, false, true))
        .await?;
    let (head, ended) = connection.header_block(3).await?;
    ensure!(
        ended
            && head
                .iter()
                .any(|(name, value)| name == ":status" && value == "431"),
        "a 70 KiB header list with a body: {head:?} (ended: {ended})"
    );
    let after = connection.next_on_stream(3).await?;
    ensure_reset(
        &after,
        3,
        code::NO_ERROR,
        "the body of a refused head (RFC 9113 §8.1)",
    )?;
    connection.send(&data(3, b"late", true)).await?;
    connection.ping_pong(*b"late-dat").await?;

    let good = Block::request("GET", "/after-431").indexed(62);
    connection.send(&headers(5, &good, true)).await?;
    let response = connection.response(5).await?;
    ensure!(
        response.status == 200,
        "the request after the 431s: {}",
        response.status
    );
    let reply = response.echo()?;
    ensure!(
        reply.header("x-table").as_deref() == Some("kept"),
        "the HPACK table lost its step after a block beyond the limit: x-table is {:?}",
        reply.header("x-table")
    );
    ensure!(
        echoes.server("echo").requests() == 1,
        "requests beyond the header limit reached the backend"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_disagree_with_their_content_length_are_reset() -> anyhow::Result<()> {
    let (_echoes, backend, gateway) = echo_and_body_gateway().await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;
    let post =
        |path: &str, length: &str| Block::request("POST", path).field("content-length", length);

    // Shorter: the head reaches the backend, then the body ends 5 bytes early.
    connection
        .send(&headers(1, &post("/upload/short", "10"), false))
        .await?;
    backend.wait_for_head("/upload/short").await?;
    connection.send(&data(1, b"12345", true)).await?;
    let answer = connection.next_on_stream(1).await?;
    ensure_reset(
        &answer,
        1,
        code::PROTOCOL_ERROR,
        "content-length 10, 5 bytes (RFC 9113 §8.1.1)",
    )?;
    let cut = backend.wait_for_outcome("/upload/short").await?;
    ensure!(
        !cut.is_complete(),
        "the backend took a body shorter than its content-length for a whole one: {cut:?}"
    );

    // Longer, and a HEADERS that ends the stream while declaring a body.
    let mut longer = headers(3, &post("/upload/long", "5"), false);
    longer.extend(data(3, b"1234567890", true));
    connection.send(&longer).await?;
    let answer = connection.next_on_stream(3).await?;
    ensure_reset(
        &answer,
        3,
        code::PROTOCOL_ERROR,
        "content-length 5, 10 bytes",
    )?;
    connection
        .send(&headers(5, &post("/upload/none", "10"), true))
        .await?;
    let answer = connection.next_on_stream(5).await?;
    ensure_reset(
        &answer,
        5,
        code::PROTOCOL_ERROR,
        "content-length 10 and END_STREAM on HEADERS",
    )?;

    // A body of its length goes through on the same connection.
    let mut exact = headers(7, &post("/upload/exact", "5"), false);
    exact.extend(data(7, b"12345", true));
    connection.send(&exact).await?;
    let response = connection.response(7).await?;
    ensure!(
        response.status == 200,
        "a body of its length: {}",
        response.status
    );
    ensure!(
        response.json()?["received"] == 5,
        "a body of its length arrived as {:?}",
        response.json()?
    );
    for path in ["/upload/long", "/upload/none"] {
        ensure!(
            backend
                .outcome(path)
                .is_none_or(|outcome| !outcome.is_complete()),
            "{path} reached the backend whole"
        );
    }
    Ok(())
}
