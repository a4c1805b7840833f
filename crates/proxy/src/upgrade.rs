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
    connection_upgrade
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
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
