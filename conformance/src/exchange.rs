//! Sends one HTTP request the way the suite's round tripper does, and captures what came back.
//!
//! Owns the three transports (HTTP/1.1, h2c with prior knowledge, HTTP/1.1 over TLS), the Go client's default
//! `Host`, and turning a response into the suite's captured request and response: the body is read as echo JSON
//! only when `Content-Type` is exactly `application/json`; otherwise the captured request is empty apart from
//! the method. Connections are never reused and redirects are never followed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method};
use testkit::{EchoReply, HttpClient, TestResponse};

use crate::tls::{self, Pin};

/// The suite's `RequestTimeout`.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How a request travels.
#[derive(Clone)]
pub(crate) enum Transport {
    /// Plain HTTP/1.1.
    Http1,
    /// HTTP/2 with prior knowledge.
    H2c,
    /// HTTP/1.1 over TLS.
    Https {
        /// Server name sent in the ClientHello.
        sni: String,
        /// The only certificate accepted.
        pin: Pin,
    },
}

impl Transport {
    /// `http` or `https`, as the request URL's scheme.
    pub(crate) fn scheme(&self) -> &'static str {
        match self {
            Self::Http1 | Self::H2c => "http",
            Self::Https { .. } => "https",
        }
    }
}

/// The shared plain-text clients; both open a new connection per request, as the suite does.
pub(crate) struct Clients {
    /// HTTP/1.1.
    http1: HttpClient,
    /// h2c.
    h2c: HttpClient,
}

impl Clients {
    /// Clients with keep-alive off and the suite's request timeout.
    pub(crate) fn new() -> Self {
        Self {
            http1: HttpClient::without_keep_alive().with_timeout(REQUEST_TIMEOUT),
            h2c: HttpClient::h2c_without_keep_alive().with_timeout(REQUEST_TIMEOUT),
        }
    }
}

/// One request, fully decided.
#[derive(Clone)]
pub(crate) struct Outgoing {
    /// The gateway listener.
    pub(crate) addr: SocketAddr,
    /// How to send it.
    pub(crate) transport: Transport,
    /// Method.
    pub(crate) method: Method,
    /// The `Host` header (or `:authority`), defaults already applied.
    pub(crate) host: String,
    /// Request target, query included.
    pub(crate) path: String,
    /// Headers, in order; `X-Echo-Set-Header` included.
    pub(crate) headers: Vec<(String, String)>,
}

/// What the suite captures from one round trip.
pub(crate) struct Captured {
    /// Response status.
    pub(crate) status: u16,
    /// Response headers.
    pub(crate) headers: HeaderMap,
    /// The echo's view of the request (empty apart from the method when the body is not echo JSON).
    pub(crate) request: EchoReply,
}

/// The `Host` Go's client sends when the test gives none: the gateway address, without the port when it is the
/// scheme's default (`CalculateHost` in the suite).
pub(crate) fn default_host(ip: IpAddr, port: u16, scheme: &str) -> String {
    let is_default_port = (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
    if is_default_port {
        ip.to_string()
    } else {
        SocketAddr::new(ip, port).to_string()
    }
}

/// Sends `outgoing` and captures the result. `Err` is a failed request (connection, protocol, timeout, or a
/// JSON body that does not parse), which the suite treats as "not ready yet".
pub(crate) async fn round_trip(clients: &Clients, outgoing: &Outgoing) -> Result<Captured, String> {
    let headers: Vec<(&str, &str)> = outgoing
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let response: anyhow::Result<TestResponse> = match &outgoing.transport {
        Transport::Http1 | Transport::H2c => {
            let client = if matches!(outgoing.transport, Transport::H2c) {
                &clients.h2c
            } else {
                &clients.http1
            };
            client
                .request(
                    outgoing.method.clone(),
                    outgoing.addr,
                    &outgoing.host,
                    &outgoing.path,
                    &headers,
                    Bytes::new(),
                )
                .await
        }
        Transport::Https { sni, pin } => {
            let request = tls::HttpsRequest {
                addr: outgoing.addr,
                sni,
                pin: pin.clone(),
                method: outgoing.method.clone(),
                host: &outgoing.host,
                path: &outgoing.path,
                headers: &outgoing.headers,
            };
            tls::send(request, REQUEST_TIMEOUT).await
        }
    };
    let response = response.map_err(|error| format!("request failed: {error:#}"))?;
    let is_json = response
        .headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes() == b"application/json");
    let request = if is_json {
        serde_json::from_slice::<EchoReply>(&response.body).map_err(|error| {
            format!(
                "unexpected error reading response: {error} (status {}, body {:?})",
                response.status,
                response.text()
            )
        })?
    } else {
        EchoReply {
            method: outgoing.method.to_string(),
            ..EchoReply::default()
        }
    };
    Ok(Captured {
        status: response.status.as_u16(),
        headers: response.headers,
        request,
    })
}
