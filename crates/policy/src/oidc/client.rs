//! HTTP(S) to the OpenID provider: discovery, JWKS and the token endpoint.
//!
//! One hyper-util client over hyper-rustls (aws-lc-rs, the workspace's one provider; the
//! platform's trust anchors), built on first use because reading the trust store is I/O. Every
//! exchange is bounded: [`PROVIDER_TIMEOUT`] for connect, headers and body together, and
//! [`MAX_BODY_BYTES`] for the answer. Redirects are not followed. This module knows nothing of
//! OIDC beyond "GET JSON" and "POST a form, read JSON".

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::{ClientConfig, RootCertStore};

/// How long one exchange with the provider may take (connect, headers and body).
pub(crate) const PROVIDER_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read from the provider.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Why an exchange with the provider brought nothing usable.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProviderError {
    /// Connecting or talking to the provider failed (it may be down: worth retrying later).
    #[error("request to {uri} failed: {why}")]
    Transport {
        /// Where.
        uri: String,
        /// What happened.
        why: String,
    },
    /// The provider answered with an unexpected status; `error` is its OAuth error code.
    #[error("{uri} answered {status}{}", error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default())]
    Status {
        /// Where.
        uri: String,
        /// The status.
        status: StatusCode,
        /// The `error` member of an OAuth error body (RFC 6749 §5.2), if any.
        error: Option<String>,
    },
    /// The exchange took longer than [`PROVIDER_TIMEOUT`].
    #[error("{uri} did not answer within {PROVIDER_TIMEOUT:?}")]
    Timeout {
        /// Where.
        uri: String,
    },
    /// The answer was too large, unreadable, or not the JSON expected.
    #[error("{uri}: bad answer: {why}")]
    Invalid {
        /// Where.
        uri: String,
        /// What was wrong.
        why: String,
    },
    /// No TLS client could be built.
    #[error("TLS client: {0}")]
    Client(String),
}

/// The client to providers; one per [`super::OidcRuntime`].
#[derive(Default)]
pub(crate) struct ProviderClient {
    client: OnceLock<Result<HttpsClient, String>>,
}

impl ProviderClient {
    /// GETs `uri` and parses a 200 answer as JSON of type `T`.
    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        uri: &Uri,
    ) -> Result<T, ProviderError> {
        let request = Request::get(uri.clone())
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()));
        self.exchange(uri, request).await
    }

    /// POSTs `form` (already `application/x-www-form-urlencoded`) to `uri`, with
    /// `authorization` (client_secret_basic) when given, and parses a 200 answer as JSON.
    pub(crate) async fn post_form<T: serde::de::DeserializeOwned>(
        &self,
        uri: &Uri,
        form: String,
        authorization: Option<&str>,
    ) -> Result<T, ProviderError> {
        let mut request = Request::post(uri.clone())
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        self.exchange(uri, request.body(Full::new(Bytes::from(form))))
            .await
    }

    async fn exchange<T: serde::de::DeserializeOwned>(
        &self,
        uri: &Uri,
        request: http::Result<Request<Full<Bytes>>>,
    ) -> Result<T, ProviderError> {
        let client = self
            .client
            .get_or_init(build_client)
            .as_ref()
            .map_err(|why| ProviderError::Client(why.clone()))?;
        let request = request.map_err(|error| ProviderError::Invalid {
            uri: uri.to_string(),
            why: error.to_string(),
        })?;
        let (status, body) = tokio::time::timeout(PROVIDER_TIMEOUT, send(client, uri, request))
            .await
            .map_err(|_| ProviderError::Timeout {
                uri: uri.to_string(),
            })??;
        if status != StatusCode::OK {
            return Err(ProviderError::Status {
                uri: uri.to_string(),
                status,
                error: oauth_error(&body),
            });
        }
        serde_json::from_slice(&body).map_err(|error| ProviderError::Invalid {
            uri: uri.to_string(),
            why: error.to_string(),
        })
    }
}

async fn send(
    client: &HttpsClient,
    uri: &Uri,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), ProviderError> {
    let response = client
        .request(request)
        .await
        .map_err(|error| ProviderError::Transport {
            uri: uri.to_string(),
            why: error.to_string(),
        })?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|error| ProviderError::Invalid {
            uri: uri.to_string(),
            why: format!("body: {error}"),
        })?;
    Ok((status, body.to_bytes()))
}

/// The `error` code of an OAuth error answer, if it is one and the code is a plain word.
fn oauth_error(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
    }
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    is_error_code(&parsed.error).then_some(parsed.error)
}

/// An OAuth error code we may echo: short, letters, digits and `_` only (RFC 6749 §5.2 allows
/// more; we echo less).
pub(crate) fn is_error_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The client: HTTP and HTTPS (HTTP/1.1), verified against the platform's trust anchors. A
/// store without anchors still builds a client: http providers work, https ones fail (502).
fn build_client() -> Result<HttpsClient, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!("OIDC: no usable system CA certificate; https providers will fail");
    }
    client_with(roots)
}

fn client_with(roots: RootCertStore) -> Result<HttpsClient, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}
