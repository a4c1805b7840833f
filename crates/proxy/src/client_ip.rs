//! Who the client is (ClientTrafficPolicy `clientIPDetection`): the connection's peer, or, behind
//! `numTrustedHops` proxies that append to `X-Forwarded-For`, the address the outermost trusted
//! proxy saw (as Envoy's `xff_num_trusted_hops`).
//!
//! With N trusted hops the last N entries of `X-Forwarded-For` were written by our own proxies:
//! the client is the N-th entry from the right. Anything left of it was written by the client and
//! is never believed. A header with fewer entries than that, or an entry that is not an IP
//! address, falls back to the peer: a request that did not pass through the trusted proxies must
//! not choose its own address.

use std::net::IpAddr;

use http::HeaderMap;
use snapshot::client::ClientIpDetection;

/// The client's address for the balancer (SourceIP hashing) and the access log.
pub(crate) fn client_address(
    detection: ClientIpDetection,
    peer: IpAddr,
    headers: &HeaderMap,
) -> IpAddr {
    let hops = detection.xff_trusted_hops as usize;
    if hops == 0 {
        return peer;
    }
    // Several X-Forwarded-For fields are one list, in order (RFC 9110 §5.3).
    let mut entries: Vec<&str> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        entries.extend(text.split(',').map(str::trim));
    }
    entries
        .len()
        .checked_sub(hops)
        .and_then(|index| entries[index].parse().ok())
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().expect("header value"));
        }
        headers
    }

    fn detect(hops: u32, values: &[&str]) -> IpAddr {
        let peer: IpAddr = "10.0.0.1".parse().expect("ip");
        client_address(
            ClientIpDetection {
                xff_trusted_hops: hops,
            },
            peer,
            &headers(values),
        )
    }

    #[test]
    fn without_trusted_hops_the_peer_is_the_client_whatever_the_header_says() {
        assert_eq!(
            detect(0, &["203.0.113.9"]),
            "10.0.0.1".parse::<IpAddr>().expect("ip")
        );
    }

    #[test]
    fn the_nth_entry_from_the_right_is_the_client() {
        let list = ["198.51.100.7, 203.0.113.9", "192.0.2.44"];
        assert_eq!(
            detect(1, &list),
            "192.0.2.44".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            detect(2, &list),
            "203.0.113.9".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            detect(3, &list),
            "198.51.100.7".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            detect(1, &["2001:db8::5"]),
            "2001:db8::5".parse::<IpAddr>().expect("ip")
        );
    }

    #[test]
    fn short_or_garbled_headers_fall_back_to_the_peer() {
        let peer: IpAddr = "10.0.0.1".parse().expect("ip");
        assert_eq!(detect(2, &["192.0.2.44"]), peer);
        assert_eq!(detect(1, &[]), peer);
        assert_eq!(detect(1, &["not-an-address"]), peer);
    }
}
