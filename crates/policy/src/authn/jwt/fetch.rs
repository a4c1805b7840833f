//! Fetching a JWKS document over HTTP or HTTPS.
//!
//! The gateway fetches keys itself, with hyper-util's client over hyper-rustls (aws-lc-rs, the
//! workspace's one provider) and the platform's trust anchors. One fetch is bounded twice: by
//! the provider's `timeout` (connect, headers and body together) and by [`MAX_JWKS_BYTES`], so
//! a slow or huge answer cannot hold a request or memory. Only a `200` answer is a key set;
//! redirects are not followed. The client is built on the first remote fetch (reading the
//! trust store is I/O, and a gateway with only inline key sets never needs it).

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};

use super::keys::{KeySet, KeySetError};
use crate::https_client;

/// The largest JWKS document accepted (real ones are a few KiB).
pub(crate) const MAX_JWKS_BYTES: usize = 1024 * 1024;

type HttpsClient = https_client::HttpsClient<Empty<Bytes>>;

/// Why a fetch brought no key set.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// Connecting or talking to the endpoint failed.
    #[error("request failed: {0}")]
    Transport(String),
    /// The endpoint answered something other than 200.
    #[error("answered {0}")]
    Status(StatusCode),
    /// The whole fetch took longer than the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The body was larger than [`MAX_JWKS_BYTES`] or could not be read.
    #[error("body: {0}")]
    Body(String),
    /// The body was not a usable key set.
    #[error(transparent)]
    Invalid(#[from] KeySetError),
    /// No TLS client could be built.
    #[error("TLS client: {0}")]
    Client(String),
}

impl FetchError {
    /// The `result` label of `portcullis_jwks_fetches_total`.
    pub(crate) fn metric_result(&self) -> &'static str {
        match self {
            FetchError::Invalid(_) => "invalid",
            _ => "error",
        }
    }
}

/// Fetches JWKS documents; one per [`super::super::Authenticator`].
#[derive(Default)]
pub(crate) struct JwksFetcher {
    client: OnceLock<Result<HttpsClient, String>>,
}

impl JwksFetcher {
    /// A fetcher that trusts `roots` instead of the platform's anchors (tests).
    #[cfg(test)]
    pub(crate) fn with_roots(roots: rustls::RootCertStore) -> JwksFetcher {
        let client = OnceLock::new();
        let _ = client.set(https_client::client_with(roots));
        JwksFetcher { client }
    }

    /// GETs `uri` and parses the answer as a key set, all within `timeout`.
    pub(crate) async fn fetch(&self, uri: &Uri, timeout: Duration) -> Result<KeySet, FetchError> {
        let client = self
            .client
            .get_or_init(build_client)
            .as_ref()
            .map_err(|why| FetchError::Client(why.clone()))?;
        let body = tokio::time::timeout(timeout, get(client, uri))
            .await
            .map_err(|_| FetchError::Timeout(timeout))??;
        Ok(KeySet::parse(&body)?)
    }
}

async fn get(client: &HttpsClient, uri: &Uri) -> Result<Bytes, FetchError> {
    let request = Request::get(uri.clone())
        .header(header::ACCEPT, "application/jwk-set+json, application/json")
        .body(Empty::new())
        .map_err(|error| FetchError::Transport(error.to_string()))?;
    let response = client
        .request(request)
        .await
        .map_err(|error| FetchError::Transport(error.to_string()))?;
    if response.status() != StatusCode::OK {
        return Err(FetchError::Status(response.status()));
    }
    let collected = Limited::new(response.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
        .map_err(|error| FetchError::Body(error.to_string()))?;
    Ok(collected.to_bytes())
}

/// The client: HTTP and HTTPS, verified against the platform's trust anchors.
fn build_client() -> Result<HttpsClient, String> {
    https_client::client_with(https_client::system_roots("JWKS fetcher"))
}
