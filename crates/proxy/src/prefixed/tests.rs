//! Prefixed streams: the prefix comes first, whatever the read sizes, then the inner stream.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

#[tokio::test]
async fn prefix_is_read_before_the_inner_stream() {
    let inner: &[u8] = b" world";
    let mut stream = Prefixed::new(b"hello".to_vec(), inner);
    let mut all = String::new();
    stream.read_to_string(&mut all).await.expect("read");
    assert_eq!(all, "hello world");
}

#[tokio::test]
async fn small_reads_split_the_prefix() {
    let inner: &[u8] = b"!";
    let mut stream = Prefixed::new(b"abc".to_vec(), inner);
    let mut byte = [0u8; 2];
    let mut seen = Vec::new();
    loop {
        let read = stream.read(&mut byte).await.expect("read");
        if read == 0 {
            break;
        }
        seen.extend_from_slice(&byte[..read]);
    }
    assert_eq!(seen, b"abc!");
}

#[tokio::test]
async fn writes_go_to_the_inner_stream() {
    let (near, mut far) = tokio::io::duplex(64);
    let mut stream = Prefixed::new(b"unused".to_vec(), near);
    stream.write_all(b"out").await.expect("write");
    stream.flush().await.expect("flush");
    let mut got = [0u8; 3];
    far.read_exact(&mut got).await.expect("read");
    assert_eq!(&got, b"out");
}
