//! The token endpoint: exchanging a code (OIDC Core §3.1.3) or a refresh token (§12).
//!
//! The client authenticates with `client_secret_basic` (RFC 6749 §2.3.1: id and secret are
//! form-urlencoded before base64), or with `client_secret_post` when discovery lists only that.
//! Every call is bounded by the client's timeout and body limit (`client.rs`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::Uri;
use serde::Deserialize;
use snapshot::security::Oidc;

use super::client::{ProviderClient, ProviderError};
use super::discovery::Provider;

/// A successful token answer (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Deserialize)]
pub(crate) struct TokenAnswer {
    /// The access token.
    pub(crate) access_token: String,
    /// Seconds until the access token expires (a number, or a numeric string as some
    /// providers send; anything else counts as absent).
    #[serde(default, deserialize_with = "seconds")]
    pub(crate) expires_in: Option<u64>,
    /// A (new) refresh token.
    #[serde(default)]
    pub(crate) refresh_token: Option<String>,
    /// The ID token (always with a code; optional on refresh).
    #[serde(default)]
    pub(crate) id_token: Option<String>,
}

/// `expires_in` as a number or a numeric string; negative, fractional or other values are
/// treated as absent (the session then gets the policy's default lifetime).
fn seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(match value {
        serde_json::Value::Number(number) => number.as_u64(),
        serde_json::Value::String(text) => text.trim().parse().ok(),
        _ => None,
    })
}

/// Why the token endpoint gave no tokens.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    /// Neither the policy nor discovery names a token endpoint, or it is not a URL.
    #[error("no usable token endpoint")]
    NoEndpoint,
    /// The exchange itself failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// The token endpoint of `settings` (the override wins) or of the discovered provider.
fn endpoint(settings: &Oidc, provider: &Provider) -> Result<Uri, TokenError> {
    if let Some(uri) = &settings.token_endpoint {
        return Ok(uri.clone());
    }
    provider
        .metadata
        .token_endpoint
        .as_deref()
        .and_then(|uri| uri.parse().ok())
        .ok_or(TokenError::NoEndpoint)
}

/// Exchanges an authorization code (with its PKCE verifier) for tokens.
pub(crate) async fn exchange_code(
    client: &ProviderClient,
    settings: &Oidc,
    provider: &Provider,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<TokenAnswer, TokenError> {
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    post(client, settings, provider, &params).await
}

/// Exchanges a refresh token for fresh tokens.
pub(crate) async fn refresh(
    client: &ProviderClient,
    settings: &Oidc,
    provider: &Provider,
    refresh_token: &str,
) -> Result<TokenAnswer, TokenError> {
    let params = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    post(client, settings, provider, &params).await
}

async fn post(
    client: &ProviderClient,
    settings: &Oidc,
    provider: &Provider,
    params: &[(&str, &str)],
) -> Result<TokenAnswer, TokenError> {
    let uri = endpoint(settings, provider)?;
    // The serializer holds a non-`Sync` encoder: it must be gone before the await, or the
    // future is not `Send`.
    let (body, authorization) = {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.extend_pairs(params);
        let authorization = if provider.wants_client_secret_post() {
            form.append_pair("client_id", &settings.client_id);
            form.append_pair("client_secret", &settings.client_secret);
            None
        } else {
            Some(basic_authorization(
                &settings.client_id,
                &settings.client_secret,
            ))
        };
        (form.finish(), authorization)
    };
    Ok(client
        .post_form(&uri, body, authorization.as_deref())
        .await?)
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
pub(crate) fn basic_authorization(client_id: &str, client_secret: &str) -> String {
    let id: String = form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    let secret: String = form_urlencoded::byte_serialize(client_secret.as_bytes()).collect();
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

#[cfg(test)]
mod tests;
