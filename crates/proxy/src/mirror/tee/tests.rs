use futures_util::stream;
use http_body_util::{BodyExt, Full, StreamBody};

use super::*;

type ChunkResult = Result<Frame<Bytes>, BoxError>;

/// A streamed body of `chunks`, each a separate frame.
fn streamed(chunks: &[&'static str]) -> StreamBody<stream::Iter<std::vec::IntoIter<ChunkResult>>> {
    let frames: Vec<ChunkResult> = chunks
        .iter()
        .map(|chunk| Ok(Frame::data(Bytes::from_static(chunk.as_bytes()))))
        .collect();
    StreamBody::new(stream::iter(frames))
}

fn chunks(count: usize) -> Vec<&'static str> {
    (0..count).map(|_| "chunk-").collect()
}

async fn read_all<B>(body: B) -> Result<Bytes, BoxError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    Ok(body.collect().await.map_err(Into::into)?.to_bytes())
}

#[tokio::test]
async fn main_and_mirror_bodies_are_identical_when_the_mirror_keeps_up() {
    let (main, mut mirrors) = tee(streamed(&["a", "bb", "ccc"]), 1, 1024);
    assert_eq!(read_all(main).await.expect("main body"), "abbccc");
    let mirror = mirrors.pop().expect("one mirror");
    let watch = mirror.watch();
    assert_eq!(read_all(mirror).await.expect("mirror body"), "abbccc");
    assert!(!watch.is_aborted());
}

#[tokio::test]
async fn interleaved_mirror_gets_every_chunk_of_a_long_body() {
    let body = chunks(MIRROR_CHANNEL_CHUNKS * 4);
    let (mut main, mut mirrors) = tee(streamed(&body), 1, 1 << 20);
    let mut mirror = mirrors.pop().expect("one mirror");
    let (mut main_bytes, mut mirror_bytes) = (Vec::new(), Vec::new());
    while let Some(frame) = main.frame().await {
        main_bytes.extend_from_slice(&frame.expect("main frame").into_data().expect("data"));
        let copied = mirror.frame().await.expect("a copy per chunk");
        mirror_bytes.extend_from_slice(&copied.expect("mirror frame").into_data().expect("data"));
    }
    assert!(mirror.frame().await.is_none(), "the copy ends cleanly");
    assert_eq!(main_bytes, body.concat().as_bytes());
    assert_eq!(mirror_bytes, main_bytes);
}

#[tokio::test]
async fn slow_mirror_is_aborted_and_main_is_unaffected() {
    let body = chunks(MIRROR_CHANNEL_CHUNKS + 4);
    let (main, mut mirrors) = tee(streamed(&body), 1, 1 << 20);
    // The mirror reads nothing until the main body is done: its channel fills up.
    assert_eq!(read_all(main).await.expect("main body"), body.concat());
    let mirror = mirrors.pop().expect("one mirror");
    let watch = mirror.watch();
    let error = read_all(mirror).await.expect_err("the copy is cut off");
    assert!(error.to_string().contains("mirror body aborted"), "{error}");
    assert!(watch.is_aborted());
}

#[tokio::test]
async fn dropped_mirror_does_not_affect_main() {
    let body = chunks(MIRROR_CHANNEL_CHUNKS * 2);
    let (main, mirrors) = tee(streamed(&body), 2, 1 << 20);
    drop(mirrors);
    assert_eq!(read_all(main).await.expect("main body"), body.concat());
}

#[tokio::test]
async fn copy_over_the_limit_is_aborted() {
    let (main, mut mirrors) = tee(streamed(&["12345", "67890"]), 1, 8);
    assert_eq!(read_all(main).await.expect("main body"), "1234567890");
    let mirror = mirrors.pop().expect("one mirror");
    assert!(
        read_all(mirror).await.is_err(),
        "10 bytes exceed the limit of 8"
    );
}

#[tokio::test]
async fn one_slow_mirror_does_not_cut_off_another() {
    let body = chunks(MIRROR_CHANNEL_CHUNKS * 2);
    let (mut main, mut mirrors) = tee(streamed(&body), 2, 1 << 20);
    let slow = mirrors.pop().expect("two mirrors");
    let mut fast = mirrors.pop().expect("two mirrors");
    let mut fast_bytes = Vec::new();
    while let Some(frame) = main.frame().await {
        frame.expect("main frame");
        let copied = fast.frame().await.expect("a copy per chunk").expect("copy");
        fast_bytes.extend_from_slice(&copied.into_data().expect("data"));
    }
    assert!(fast.frame().await.is_none());
    assert_eq!(fast_bytes, body.concat().as_bytes());
    assert!(read_all(slow).await.is_err());
}

#[tokio::test]
async fn client_body_error_aborts_the_copy() {
    let frames: Vec<ChunkResult> = vec![
        Ok(Frame::data(Bytes::from_static(b"partial"))),
        Err("client went away".into()),
    ];
    let (main, mut mirrors) = tee(StreamBody::new(stream::iter(frames)), 1, 1024);
    assert!(read_all(main).await.is_err());
    assert!(read_all(mirrors.pop().expect("one mirror")).await.is_err());
}

#[tokio::test]
async fn copy_ends_when_the_body_says_it_has_ended() {
    // `Full` reports its end after its one frame; the server may never poll again.
    let (mut main, mut mirrors) = tee(Full::new(Bytes::from_static(b"whole")), 1, 1024);
    let frame = main.frame().await.expect("one frame").expect("data");
    assert_eq!(frame.into_data().expect("data"), "whole");
    assert!(main.is_end_stream());
    let mirror = mirrors.pop().expect("one mirror");
    assert_eq!(read_all(mirror).await.expect("clean end"), "whole");
}
