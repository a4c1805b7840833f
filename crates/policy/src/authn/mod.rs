//! Authentication at request time: JWT, API keys and basic auth.
//!
//! [`Authenticator`] is the one runtime of this phase (one per process, shared as `Arc`). It
//! owns what must outlive a snapshot: the JWKS caches keyed by URI, the parsed inline key
//! sets, the JWKS HTTP client and the basic-auth verification cache. The settings come from
//! the snapshot's [`SecurityPolicy`] on every call; nothing here holds a snapshot.
//!
//! [`Authenticator::authenticate`] runs the policy's configured methods in a fixed order, JWT
//! then API key then basic, and every configured one must pass (AND, as in Envoy Gateway).
//! Before a method runs, the request loses any client-sent copy of the headers that method
//! sets (claim headers, the client-id header, the user-name header), so a client can never
//! forge them, not even when JWT is optional and no token came. Each method takes its
//! credential out of the request once accepted (unless configured to forward it).
//!
//! Denials are 401 with a challenge: `Bearer` (RFC 6750 §3: no `error` when no token came,
//! `error="invalid_token"` otherwise, also when the keys could not be fetched), `APIKey` for API
//! keys (no standard scheme exists; the name says what is expected), and
//! `Basic realm="...", charset="UTF-8"` (RFC 7617). Reasons: `missing-credentials`,
//! `invalid-token`, `jwks-unavailable`, `invalid-api-key`, `invalid-credentials`. A policy
//! that did not validate (`SecurityPolicy::invalid`) answers 500 `invalid-policy`: it fails
//! closed.
//!
//! OIDC (browser sessions) is not in this module.

mod api_key;
mod basic;
mod credentials;
mod jwt;

use std::collections::HashSet;
use std::sync::Arc;

use http::header::WWW_AUTHENTICATE;
use http::request::Parts;
use http::{HeaderValue, StatusCode, Uri};
use snapshot::security::{ApiKeyAuth, BasicAuth, JwksSource, Jwt, SecurityPolicy};
use telemetry::Metrics;

use self::api_key::ApiKeyFailure;
use self::basic::{BasicFailure, BasicVerifier};
use self::jwt::{JwtFailure, JwtVerifier};
use crate::{Denial, Identity, JwtIdentity};

/// `missing-credentials`: the request carried no credential for a required method.
pub const MISSING_CREDENTIALS: &str = "missing-credentials";
/// `invalid-token`: a JWT was present and no provider accepted it.
pub const INVALID_TOKEN: &str = "invalid-token";
/// `jwks-unavailable`: the provider's remote key set was never fetched and fetching it failed.
pub const JWKS_UNAVAILABLE: &str = "jwks-unavailable";
/// `invalid-api-key`: an API key that is not configured.
pub const INVALID_API_KEY: &str = "invalid-api-key";
/// `invalid-credentials`: basic credentials that are malformed or do not verify.
pub const INVALID_CREDENTIALS: &str = "invalid-credentials";
/// `invalid-policy`: the SecurityPolicy did not validate; it fails closed with 500.
pub const INVALID_POLICY: &str = "invalid-policy";

/// The answer to every request a policy that did not validate guards (fail closed).
pub fn invalid_policy() -> Denial {
    Denial::new(StatusCode::INTERNAL_SERVER_ERROR, INVALID_POLICY)
}

/// The authentication runtime (see the module docs). Create one per process.
pub struct Authenticator {
    metrics: Arc<Metrics>,
    jwt: JwtVerifier,
    basic: BasicVerifier,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An authenticator with empty caches. Nothing is fetched until a token needs keys.
    pub fn new(metrics: Arc<Metrics>) -> Authenticator {
        Authenticator {
            jwt: JwtVerifier::new(Arc::clone(&metrics)),
            basic: BasicVerifier::new(),
            metrics,
        }
    }

    /// An authenticator whose JWKS refetch window is `min_refetch` (tests run in real time).
    #[cfg(test)]
    pub(crate) fn with_min_refetch(
        metrics: Arc<Metrics>,
        min_refetch: std::time::Duration,
    ) -> Authenticator {
        Authenticator {
            jwt: JwtVerifier::with_min_refetch(Arc::clone(&metrics), min_refetch),
            basic: BasicVerifier::new(),
            metrics,
        }
    }

    /// Runs the policy's JWT, API key and basic authentication, in that order; each one that
    /// is configured must pass. A policy that did not validate (`invalid`) refuses every
    /// request with 500 `invalid-policy` ([`invalid_policy`]). On success the request has lost the credentials that must not
    /// go upstream and client-sent copies of the headers authentication sets, has gained the
    /// claim/client headers, and the [`Identity`] is returned (`client` is the API-key client
    /// id, else the basic-auth user). On failure, a 401 [`Denial`] with `WWW-Authenticate`.
    ///
    /// Waits only when a remote key set must be fetched (first use, or a token naming an
    /// unknown `kid`; bounded by the provider's `timeout`) or a bcrypt hash must be checked.
    /// Counts `portcullis_auth_decisions_total{method="jwt"|"api_key"|"basic"}` once per
    /// configured method that ran.
    pub async fn authenticate(
        &self,
        policy: &SecurityPolicy,
        parts: &mut Parts,
    ) -> Result<Identity, Denial> {
        if policy.invalid {
            return Err(invalid_policy());
        }
        let mut identity = Identity::default();
        if let Some(settings) = &policy.jwt {
            identity.jwt = self.run_jwt(&policy.label, settings, parts).await?;
        }
        if let Some(settings) = &policy.api_key {
            identity.client = Some(self.run_api_key(&policy.label, settings, parts)?);
        }
        if let Some(settings) = &policy.basic {
            let user = self.run_basic(&policy.label, settings, parts).await?;
            // With both API key and basic configured, the API-key client stays the client (it
            // was checked first); the user name is still forwarded.
            identity.client.get_or_insert_with(|| Arc::from(user));
        }
        Ok(identity)
    }

    async fn run_jwt(
        &self,
        label: &str,
        settings: &Jwt,
        parts: &mut Parts,
    ) -> Result<Option<JwtIdentity>, Denial> {
        for provider in &settings.providers {
            for mapping in &provider.claim_to_headers {
                parts.headers.remove(&mapping.header);
            }
        }
        match self.jwt.authenticate(settings, parts).await {
            Ok(found) => {
                let result = if found.is_some() {
                    "allowed"
                } else {
                    "anonymous"
                };
                self.metrics.auth_decision(label, "jwt", result);
                Ok(found)
            }
            Err(failure) => {
                let denial = jwt_denial(failure);
                self.metrics.auth_decision(label, "jwt", denial.reason);
                Err(denial)
            }
        }
    }

    #[allow(
        clippy::result_large_err,
        reason = "the Denial is the response itself, built once on the cold path"
    )]
    fn run_api_key(
        &self,
        label: &str,
        settings: &ApiKeyAuth,
        parts: &mut Parts,
    ) -> Result<Arc<str>, Denial> {
        if let Some(header) = &settings.forward_client_id_header {
            parts.headers.remove(header);
        }
        match api_key::authenticate(settings, parts) {
            Ok(client) => {
                self.metrics.auth_decision(label, "api_key", "allowed");
                if let Some(header) = &settings.forward_client_id_header {
                    insert_text(parts, header, &client);
                }
                Ok(client)
            }
            Err(failure) => {
                let denial = api_key_denial(failure);
                self.metrics.auth_decision(label, "api_key", denial.reason);
                Err(denial)
            }
        }
    }

    async fn run_basic(
        &self,
        label: &str,
        settings: &BasicAuth,
        parts: &mut Parts,
    ) -> Result<String, Denial> {
        if let Some(header) = &settings.forward_username_header {
            parts.headers.remove(header);
        }
        match self.basic.authenticate(settings, parts).await {
            Ok(user) => {
                self.metrics.auth_decision(label, "basic", "allowed");
                if let Some(header) = &settings.forward_username_header {
                    insert_text(parts, header, &user);
                }
                Ok(user)
            }
            Err(failure) => {
                let denial = basic_denial(failure, &settings.realm);
                self.metrics.auth_decision(label, "basic", denial.reason);
                Err(denial)
            }
        }
    }

    /// Drops the JWKS caches of URIs no provider of the live configuration names, and the
    /// parsed inline key sets (parsed again on next use). Call it when a snapshot is
    /// published, with every `JwksSource::Remote` URI of that snapshot.
    pub fn retain(&self, live_jwks_uris: &HashSet<Uri>) {
        self.jwt.retain(live_jwks_uris);
    }
}

/// Adds the remote JWKS URIs `policy` names to `uris`: the proxy gathers them over every
/// policy of a new snapshot and hands the set to [`Authenticator::retain`].
pub fn collect_jwks_uris(policy: &SecurityPolicy, uris: &mut HashSet<Uri>) {
    let providers = policy.jwt.iter().flat_map(|jwt| &jwt.providers);
    for provider in providers {
        if let JwksSource::Remote { uri, .. } = &provider.keys {
            uris.insert(uri.clone());
        }
    }
}

/// Sets `header` to `text` when `text` can be a header value.
fn insert_text(parts: &mut Parts, header: &http::HeaderName, text: &str) {
    match HeaderValue::from_str(text) {
        Ok(value) => {
            parts.headers.insert(header.clone(), value);
        }
        Err(_) => tracing::debug!(%header, "identity is not a valid header value; not forwarded"),
    }
}

fn unauthorized(reason: &'static str, challenge: HeaderValue) -> Denial {
    let mut denial = Denial::new(StatusCode::UNAUTHORIZED, reason);
    denial.headers.insert(WWW_AUTHENTICATE, challenge);
    denial
}

fn jwt_denial(failure: JwtFailure) -> Denial {
    match failure {
        JwtFailure::Missing => {
            unauthorized(MISSING_CREDENTIALS, HeaderValue::from_static("Bearer"))
        }
        JwtFailure::Invalid => unauthorized(
            INVALID_TOKEN,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        ),
        JwtFailure::KeysUnavailable => unauthorized(
            JWKS_UNAVAILABLE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        ),
    }
}

fn api_key_denial(failure: ApiKeyFailure) -> Denial {
    let reason = match failure {
        ApiKeyFailure::Missing => MISSING_CREDENTIALS,
        ApiKeyFailure::Invalid => INVALID_API_KEY,
    };
    unauthorized(reason, HeaderValue::from_static("APIKey"))
}

fn basic_denial(failure: BasicFailure, realm: &str) -> Denial {
    let reason = match failure {
        BasicFailure::Missing => MISSING_CREDENTIALS,
        BasicFailure::Invalid => INVALID_CREDENTIALS,
    };
    unauthorized(reason, basic_challenge(realm))
}

/// `Basic realm="<realm>", charset="UTF-8"`, the realm a quoted-string (RFC 9110 §5.6.4); a
/// realm that cannot be a header value gives a bare `Basic`.
fn basic_challenge(realm: &str) -> HeaderValue {
    let escaped = realm.replace('\\', "\\\\").replace('"', "\\\"");
    HeaderValue::from_str(&format!("Basic realm=\"{escaped}\", charset=\"UTF-8\""))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"))
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
