//! Each behaviour over a real socket, as a gateway would see it.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{FaultyUpstream, UpstreamBehaviour, content_length, whole_request_length};

const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: upstream\r\n\r\n";

/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(5);

/// Reads one response of `upstream`'s name-sized body off `stream`.
async fn read_answer(stream: &mut TcpStream, upstream: &FaultyUpstream) -> String {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    while !answer.ends_with(upstream.name().as_bytes()) {
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
            .await
            .expect("answered in time")
            .expect("read");
        assert!(
            read > 0,
            "closed after {:?}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&chunk[..read]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn answers_its_status_and_name_on_a_kept_alive_connection() {
    let upstream = FaultyUpstream::start(
        "bad",
        UpstreamBehaviour::answer(StatusCode::INTERNAL_SERVER_ERROR),
    )
    .await
    .expect("starts");
    let mut stream = TcpStream::connect(upstream.addr()).await.expect("connects");
    stream.write_all(GET).await.expect("writes");
    let answer = read_answer(&mut stream, &upstream).await;
    assert!(
        answer.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("\r\n\r\nbad"), "{answer}");

    upstream.set_behaviour(UpstreamBehaviour::answer(StatusCode::OK));
    stream
        .write_all(b"POST / HTTP/1.1\r\nhost: upstream\r\ncontent-length: 5\r\n\r\nhello")
        .await
        .expect("writes");
    let answer = read_answer(&mut stream, &upstream).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert_eq!(upstream.requests(), 2);
}

#[tokio::test]
async fn slow_answers_are_held_and_counted_in_flight() {
    let delay = Duration::from_millis(100);
    let upstream = FaultyUpstream::start("slow", UpstreamBehaviour::slow(delay))
        .await
        .expect("starts");
    let started = Instant::now();
    let exchange = async || {
        let mut stream = TcpStream::connect(upstream.addr()).await.expect("connects");
        stream.write_all(GET).await.expect("writes");
        read_answer(&mut stream, &upstream).await
    };
    let (first, second) = tokio::join!(exchange(), exchange());
    assert!(started.elapsed() >= delay);
    assert!(first.starts_with("HTTP/1.1 200 OK") && second.starts_with("HTTP/1.1 200 OK"));
    assert_eq!(upstream.max_in_flight(), 2);
}

#[tokio::test]
async fn reset_aborts_the_connection_with_rst() {
    let upstream = FaultyUpstream::start("resetting", UpstreamBehaviour::Reset)
        .await
        .expect("starts");
    let mut stream = TcpStream::connect(upstream.addr()).await.expect("connects");
    stream.write_all(GET).await.expect("writes");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("closed in time");
    assert_eq!(
        read.map_err(|error| error.kind()).err(),
        Some(ErrorKind::ConnectionReset)
    );
    assert!(answer.is_empty());
    assert_eq!(upstream.requests(), 1);
}

#[tokio::test]
async fn hang_never_answers() {
    let upstream = FaultyUpstream::start("hanging", UpstreamBehaviour::Hang)
        .await
        .expect("starts");
    let mut stream = TcpStream::connect(upstream.addr()).await.expect("connects");
    stream.write_all(GET).await.expect("writes");
    let mut chunk = [0u8; 64];
    let waited = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut chunk)).await;
    assert!(waited.is_err(), "answered: {waited:?}");
    assert_eq!(upstream.requests(), 1);
}

#[tokio::test]
async fn close_mid_body_sends_less_than_it_announces() {
    let upstream = FaultyUpstream::start("truncated", UpstreamBehaviour::CloseMidBody)
        .await
        .expect("starts");
    let mut stream = TcpStream::connect(upstream.addr()).await.expect("connects");
    stream.write_all(GET).await.expect("writes");
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("closed in time")
        .expect("closed with FIN");
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole head");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert_eq!(content_length(head.as_bytes()), 2 * body.len(), "{answer}");
}

#[tokio::test]
async fn killed_upstreams_refuse_connections_and_drop_open_ones() {
    let upstream = FaultyUpstream::start("victim", UpstreamBehaviour::answer(StatusCode::OK))
        .await
        .expect("starts");
    let mut open = TcpStream::connect(upstream.addr()).await.expect("connects");
    open.write_all(GET).await.expect("writes");
    read_answer(&mut open, &upstream).await;

    upstream.kill().await;
    let refused = TcpStream::connect(upstream.addr()).await;
    assert_eq!(
        refused.map_err(|error| error.kind()).err(),
        Some(ErrorKind::ConnectionRefused)
    );
    let mut chunk = [0u8; 64];
    let read = tokio::time::timeout(PATIENCE, open.read(&mut chunk))
        .await
        .expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "still open: {read:?}");
}

#[test]
fn requests_are_whole_once_their_body_arrived() {
    assert_eq!(whole_request_length(b"GET / HTTP/1.1\r\n"), None);
    assert_eq!(whole_request_length(GET), Some(GET.len()));
    let post = b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nab";
    assert_eq!(whole_request_length(post), None);
    assert_eq!(
        whole_request_length(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET"),
        Some(post.len() + 1)
    );
}
