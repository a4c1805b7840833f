//! PROXY protocol (HAProxy's v1 text and v2 binary headers) on listeners behind a TCP load
//! balancer (ClientTrafficPolicy `proxyProtocol.enabled`): the header that starts every
//! connection names the client's address, which then stands for the connection's peer
//! (`X-Forwarded-For`, access logs, source-IP hashing). Parsing is the `ppp` crate's.
//!
//! A listener that expects the header requires it: a connection without one, with a malformed
//! one, or that does not finish it within the header timeout is closed. A `LOCAL` header (a
//! health check of the balancer itself) or an `UNKNOWN` / `UNSPEC` address keeps the real peer.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use ppp::v1;
use ppp::v2;
use ppp::{HeaderResult, PartialResult};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest header accepted: v1 is at most 107 bytes; v2 carries TLVs, which we skip.
const MAX_HEADER: usize = 4096;

/// Reads a PROXY header from `stream`: returns the client address it names (`None`: keep the
/// peer) and the bytes read past the header, which belong to the connection.
pub(crate) async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    limit: Duration,
) -> io::Result<(Option<SocketAddr>, Vec<u8>)> {
    tokio::time::timeout(limit, read(stream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "PROXY protocol header timed out"))?
}

async fn read<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<(Option<SocketAddr>, Vec<u8>)> {
    let mut buffer = Vec::with_capacity(256);
    loop {
        let mut chunk = [0u8; 512];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(invalid(
                "connection closed before the PROXY protocol header",
            ));
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(parsed) = parse(&buffer)? {
            let (client, consumed) = parsed;
            return Ok((client, buffer.split_off(consumed)));
        }
        if buffer.len() > MAX_HEADER {
            return Err(invalid("PROXY protocol header too long"));
        }
    }
}

/// `Ok(None)`: incomplete so far.
fn parse(buffer: &[u8]) -> io::Result<Option<(Option<SocketAddr>, usize)>> {
    let result = HeaderResult::parse(buffer);
    if result.is_incomplete() {
        return Ok(None);
    }
    match result {
        HeaderResult::V1(Ok(header)) => {
            let client = match header.addresses {
                v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
                v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
                v1::Addresses::Unknown => None,
            };
            Ok(Some((client, header.header.len())))
        }
        HeaderResult::V2(Ok(header)) => {
            let client = match (header.command, header.addresses) {
                (v2::Command::Local, _) => None,
                (_, v2::Addresses::IPv4(a)) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                (_, v2::Addresses::IPv6(a)) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                (_, v2::Addresses::Unspecified | v2::Addresses::Unix(_)) => None,
            };
            Ok(Some((client, header.len())))
        }
        HeaderResult::V1(Err(error)) => Err(invalid(&format!(
            "invalid PROXY protocol v1 header: {error}"
        ))),
        HeaderResult::V2(Err(error)) => Err(invalid(&format!(
            "invalid PROXY protocol v2 header: {error}"
        ))),
    }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_v1_header_names_the_client_and_the_rest_is_kept() {
        let mut input: &[u8] = b"PROXY TCP4 203.0.113.7 192.0.2.1 51234 80\r\nGET / HTTP/1.1\r\n";
        let (client, rest) = read_header(&mut input, Duration::from_secs(1))
            .await
            .expect("header");
        assert_eq!(client, Some("203.0.113.7:51234".parse().expect("addr")));
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn a_v2_header_names_the_client_and_local_keeps_the_peer() {
        let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        v2.extend_from_slice(&[
            0x21, 0x11, 0, 12, 198, 51, 100, 9, 192, 0, 2, 1, 0x1f, 0x90, 0, 80,
        ]);
        v2.extend_from_slice(b"rest");
        let (client, rest) = read_header(&mut v2.as_slice(), Duration::from_secs(1))
            .await
            .expect("v2");
        assert_eq!(client, Some("198.51.100.9:8080".parse().expect("addr")));
        assert_eq!(rest, b"rest");
        let mut local = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        let (client, rest) = read_header(&mut local.as_slice(), Duration::from_secs(1))
            .await
            .expect("local");
        assert_eq!(client, None);
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn a_connection_without_a_header_is_refused() {
        let mut plain: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let error = read_header(&mut plain, Duration::from_secs(1))
            .await
            .expect_err("no header");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
