//! HTTP/1.1 protocol upgrades (WebSocket): the `Upgrade` request is forwarded with its upgrade
//! headers, and when the backend answers `101 Switching Protocols` the two upgraded
//! connections are joined byte for byte until either side closes.
//!
//! Upgrades are hop-by-hop, so only an HTTP/1.1 client and an HTTP/1.1 upstream can upgrade.
//! An HTTP/2 client asks for a WebSocket with an extended CONNECT (RFC 8441: `CONNECT` with
//! `:protocol websocket`); the gateway turns it into the HTTP/1.1 upgrade a backend expects
//! ([`websocket_request_headers`], with a `Sec-WebSocket-Key` of its own since HTTP/2 clients
//! send none), answers the client 200 when the backend switched protocols, and joins the HTTP/2
//! stream with the backend's connection ([`bridge_extended_connect`]).

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use upstream::UpstreamBody;

use crate::h2_server::tunnel::ClientTunnel;

/// The client's side of an upgrade, as its server offers it: hyper's (HTTP/1.1, and HTTP/2
/// on connections hyper serves) or our HTTP/2 server's extended CONNECT stream.
pub(crate) enum ClientUpgrade {
    Hyper(OnUpgrade),
    H2(ClientTunnel),
}

impl ClientUpgrade {
    /// Takes the upgrade the request's server put in its extensions.
    pub(crate) fn of<B>(request: &mut http::Request<B>) -> ClientUpgrade {
        match request.extensions_mut().remove::<ClientTunnel>() {
            Some(tunnel) => ClientUpgrade::H2(tunnel),
            None => ClientUpgrade::Hyper(hyper::upgrade::on(request)),
        }
    }
}

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
    client: ClientUpgrade,
    mut response: Response<UpstreamBody>,
) -> Response<UpstreamBody> {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return response;
    }
    let Some(upstream) = response.body_mut().take_upgrade() else {
        return response;
    };
    tunnel(client, upstream, (), "upgraded connection");
    response
}

/// Joins the client's upgraded connection (once hyper hands it over) and the backend's in a
/// task, byte for byte until either side closes; `hold` lives as long as the tunnel. `what`
/// names the tunnel in debug logs.
fn tunnel<H: Send + 'static>(
    client: ClientUpgrade,
    mut upstream: upstream::UpstreamUpgraded,
    hold: H,
    what: &'static str,
) {
    tokio::spawn(async move {
        let _hold = hold;
        let joined = match client {
            ClientUpgrade::Hyper(client) => match client.await {
                Ok(client) => {
                    let mut client = TokioIo::new(client);
                    tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                }
                Err(error) => {
                    tracing::debug!(%error, what, "client upgrade failed");
                    return;
                }
            },
            ClientUpgrade::H2(client) => match client.opened().await {
                Ok(mut client) => tokio::io::copy_bidirectional(&mut client, &mut upstream).await,
                Err(error) => {
                    tracing::debug!(%error, what, "client upgrade failed");
                    return;
                }
            },
        };
        if let Err(error) = joined {
            tracing::debug!(%error, what, "tunnel ended with an error");
        }
    });
}

/// Whether a request is an HTTP/2 extended CONNECT (RFC 8441), and for which protocol.
pub(crate) fn extended_connect(request: &http::Request<upstream::RequestBody>) -> Option<&str> {
    if request.method() != http::Method::CONNECT {
        return None;
    }
    request
        .extensions()
        .get::<hyper::ext::Protocol>()
        .map(hyper::ext::Protocol::as_str)
}

/// Makes the headers of an extended CONNECT those of an HTTP/1.1 WebSocket upgrade (RFC 6455
/// §4.1): `Upgrade`, `Connection` and a fresh `Sec-WebSocket-Key` (HTTP/2 clients send no key,
/// RFC 8441 §5). `Sec-WebSocket-Version`, `-Protocol` and `-Extensions` pass as they are.
pub(crate) fn websocket_request_headers(headers: &mut HeaderMap) {
    use base64::Engine;
    let key: [u8; 16] = rand::random();
    let key = base64::engine::general_purpose::STANDARD.encode(key);
    restore_request_headers(headers, HeaderValue::from_static("websocket"));
    if let Ok(key) = HeaderValue::from_str(&key) {
        headers.insert("sec-websocket-key", key);
    }
    if !headers.contains_key("sec-websocket-version") {
        headers.insert("sec-websocket-version", HeaderValue::from_static("13"));
    }
}

/// When the backend switched protocols for an extended CONNECT, joins the client's stream and
/// the backend's connection in a task (which keeps `hold` until the tunnel closes, so the
/// connection is not idle meanwhile) and returns the client's `200` with the handshake's
/// headers, less the HTTP/1.1-only ones. Any other answer is returned as it is.
pub(crate) fn bridge_extended_connect<H: Send + 'static>(
    client: ClientUpgrade,
    mut response: Response<UpstreamBody>,
    hold: H,
) -> Response<UpstreamBody> {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return response;
    }
    let Some(upstream) = response.body_mut().take_upgrade() else {
        return response;
    };
    tunnel(client, upstream, hold, "WebSocket over HTTP/2");
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    for name in ["upgrade", "connection", "sec-websocket-accept"] {
        headers.remove(name);
    }
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
