//! HTTP(S) to the OpenID provider: discovery, JWKS and the token endpoint.
//!
//! One hyper-util client over hyper-rustls (aws-lc-rs, the workspace's one provider; the
//! platform's trust anchors), built on first use because reading the trust store is I/O. Every
//! exchange is bounded: [`PROVIDER_TIMEOUT`] for connect, headers and body together, and
//! [`MAX_BODY_BYTES`] for the answer. Redirects are not followed. This module knows nothing of
//! OIDC beyond "GET JSON" and "POST a form, read JSON".

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};

use crate::https_client;

/// How long one exchange with the provider may take (connect, headers and body).
pub(crate) const PROVIDER_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read from the provider.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

type HttpsClient = https_client::HttpsClient<Full<Bytes>>;

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

/// The client: HTTP and HTTPS, verified against the platform's trust anchors.
fn build_client() -> Result<HttpsClient, String> {
    https_client::client_with(https_client::system_roots("OIDC"))
}
