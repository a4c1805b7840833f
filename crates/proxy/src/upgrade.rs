//! HTTP/1.1 protocol upgrades (WebSocket): the `Upgrade` request is forwarded with its upgrade
//! headers, and when the backend answers `101 Switching Protocols` the two upgraded
//! connections are joined byte for byte until either side closes.
//!
//! Upgrades are hop-by-hop, so only an HTTP/1.1 client and an HTTP/1.1 upstream can upgrade;
//! HTTP/2 extended CONNECT is not handled here.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use upstream::UpstreamBody;

/// The protocol a client asks to upgrade to (`Upgrade` listed in `Connection`), if any.
///
/// Never `h2c`: an h2c upgrade would give the client a raw HTTP/2 connection to the backend,
/// past routing and filters (h2c smuggling; RFC 9113 §3.1 deprecated it). Such a request is
/// forwarded as an ordinary request, its `Upgrade` and `HTTP2-Settings` stripped.
pub(crate) fn requested(version: Version, headers: &HeaderMap) -> Option<HeaderValue> {
    if version != Version::HTTP_11 {
        return None;
    }
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    let protocol = connection_upgrade
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten()?;
    let h2c = protocol.to_str().map_or(true, |text| {
        text.split(',')
            .any(|token| token.trim().eq_ignore_ascii_case("h2c"))
    });
    (!h2c).then_some(protocol)
}

/// Puts the upgrade headers back on a request whose hop-by-hop headers were stripped.
pub(crate) fn restore_request_headers(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::UPGRADE, protocol);
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
}

/// When the backend switched protocols, joins the client's and the backend's upgraded
/// connections in a task and returns the 101 with its upgrade headers for the client.
pub(crate) fn bridge(
    client: OnUpgrade,
    mut response: Response<UpstreamBody>,
) -> Response<UpstreamBody> {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return response;
    }
    let upstream = hyper::upgrade::on(&mut response);
    tokio::spawn(async move {
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(both) => both,
            Err(error) => {
                tracing::debug!(%error, "upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            tracing::debug!(%error, "upgraded connection ended with an error");
        }
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(connection: &'static str, upgrade: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static(connection));
        headers.insert(header::UPGRADE, HeaderValue::from_static(upgrade));
        headers
    }

    #[test]
    fn websocket_upgrades_are_forwarded() {
        let asked = requested(
            Version::HTTP_11,
            &headers("keep-alive, Upgrade", "websocket"),
        );
        assert_eq!(asked, Some(HeaderValue::from_static("websocket")));
        assert_eq!(
            requested(Version::HTTP_11, &headers("keep-alive", "websocket")),
            None
        );
        assert_eq!(
            requested(Version::HTTP_10, &headers("upgrade", "websocket")),
            None
        );
    }

    #[test]
    fn h2c_upgrades_are_never_forwarded() {
        for upgrade in ["h2c", "H2C", "websocket, h2c"] {
            assert_eq!(
                requested(
                    Version::HTTP_11,
                    &headers("Upgrade, HTTP2-Settings", upgrade)
                ),
                None,
                "{upgrade}"
            );
        }
    }
}
