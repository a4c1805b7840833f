//! JWT authentication: which provider accepts the request's token.
//!
//! For each provider in order, the token is looked for where the provider's `extract_from`
//! says (default `Authorization: Bearer`); the first provider that accepts the token it found
//! authenticates the request. A token is accepted when, in this order:
//!
//! 1. it has exactly three dot-separated parts and a JSON header (`keys::KeySet` never sees
//!    anything else);
//! 2. its `alg` is one we verify with public keys: RS256/384/512, PS256/384/512, ES256/384,
//!    EdDSA. `none` and HS256/384/512 are refused outright: we never hold a shared secret, and
//!    refusing HS* is what makes a token "signed" HS256 with the provider's RSA public key as
//!    the HMAC secret (the classic alg-confusion attack) fail;
//! 3. a key of the provider's set verifies the signature: the `kid`, when the token names one,
//!    selects the keys (keys without a `kid` are tried too); the key type (and curve) must fit `alg`; a key's own `alg`, if set,
//!    must equal the token's. Header fields that carry keys (`jwk`, `jku`, `x5u`, `x5c`) are
//!    ignored: the provider's set is the only trust;
//! 4. its registered claims pass (`claims.rs`: `exp` required, `nbf`, `iat`, `iss`, `aud`).
//!
//! Key sets: inline ones are parsed once and kept by their text (dropped on
//! [`JwtVerifier::retain`], i.e. when a snapshot is published, and parsed again on next use);
//! remote ones live in one [`jwks::RemoteKeys`] per URI (fetching, TTL, refetch on unknown
//! `kid`, single flight, stale on error). Both maps are read lock-free (`ArcSwap`).

mod claims;
mod fetch;
mod jwks;
mod keys;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::header::AUTHORIZATION;
use http::request::Parts;
use http::{HeaderValue, Uri};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use snapshot::security::{JwksSource, Jwt, JwtProvider, TokenSource};
use telemetry::Metrics;

pub(crate) use self::fetch::JwksFetcher;
use self::jwks::{FetchSettings, RemoteKeys};
use self::keys::KeySet;
use super::credentials;
use crate::{JwtIdentity, claim, claim_text};

/// Tokens longer than this are refused without parsing (real ones are a few KiB).
const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// The algorithms we verify (see the module docs): everything else is refused.
const ALLOWED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Where a provider looks when `extract_from` is empty: `Authorization: Bearer <token>`.
static DEFAULT_SOURCES: LazyLock<[TokenSource; 1]> = LazyLock::new(|| {
    [TokenSource::Header {
        name: AUTHORIZATION,
        value_prefix: "Bearer ".to_owned(),
    }]
});

/// Why a provider did not accept a token.
#[derive(Debug)]
pub(crate) enum Rejection {
    /// The token is not valid for this provider; the text says why (debug logs only).
    Invalid(&'static str),
    /// The provider's remote key set was never fetched and fetching it failed.
    KeysUnavailable,
}

/// The JWT phase's decision for a request that did not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JwtFailure {
    /// No provider found a token.
    Missing,
    /// A token was found and no provider accepted it.
    Invalid,
    /// Every provider that found a token could not get its keys.
    KeysUnavailable,
}

/// Verifies tokens; holds the key-set caches. One per [`super::Authenticator`].
pub(crate) struct JwtVerifier {
    fetcher: Arc<JwksFetcher>,
    metrics: Arc<Metrics>,
    remote: ArcSwap<HashMap<Uri, Arc<RemoteKeys>>>,
    inline: ArcSwap<HashMap<Arc<str>, Arc<KeySet>>>,
    /// One signature-only validation per allowed algorithm (claims are checked by `claims`).
    validations: Vec<(Algorithm, Validation)>,
    /// The refetch window of remote sets ([`jwks::MIN_REFETCH`]; shorter in tests).
    min_refetch: Duration,
}

impl JwtVerifier {
    /// Empty caches.
    pub(crate) fn new(metrics: Arc<Metrics>) -> JwtVerifier {
        JwtVerifier::with_min_refetch(metrics, jwks::MIN_REFETCH)
    }

    /// Empty caches, fetching with `fetcher` (tests: other trust anchors).
    #[cfg(test)]
    pub(crate) fn with_fetcher(metrics: Arc<Metrics>, fetcher: JwksFetcher) -> JwtVerifier {
        JwtVerifier {
            fetcher: Arc::new(fetcher),
            ..JwtVerifier::new(metrics)
        }
    }

    /// Empty caches, with a refetch window other than [`jwks::MIN_REFETCH`] (tests).
    pub(crate) fn with_min_refetch(metrics: Arc<Metrics>, min_refetch: Duration) -> JwtVerifier {
        let validations = ALLOWED
            .iter()
            .map(|&alg| {
                let mut validation = Validation::new(alg);
                validation.validate_exp = false;
                validation.validate_nbf = false;
                validation.validate_aud = false;
                validation.required_spec_claims = HashSet::new();
                (alg, validation)
            })
            .collect();
        JwtVerifier {
            fetcher: Arc::new(JwksFetcher::default()),
            metrics,
            remote: ArcSwap::default(),
            inline: ArcSwap::default(),
            validations,
            min_refetch,
        }
    }

    /// Runs the policy's JWT settings on the request. `Ok(None)`: no token and `optional`.
    /// On success the carrying header/cookie/query parameter is removed unless the provider
    /// forwards it, and the provider's `claim_to_headers` are set. The caller has already
    /// removed client-sent copies of every claim header.
    pub(crate) async fn authenticate(
        &self,
        settings: &Jwt,
        parts: &mut Parts,
    ) -> Result<Option<JwtIdentity>, JwtFailure> {
        let mut failure = JwtFailure::Missing;
        let mut accepted = None;
        for provider in &settings.providers {
            let Some((token, source)) = credentials::find(sources(provider), parts) else {
                continue;
            };
            match self.verify(provider, &token).await {
                Ok(claims) => {
                    accepted = Some((provider, source, claims));
                    break;
                }
                Err(Rejection::Invalid(why)) => {
                    tracing::debug!(provider = %provider.name, why, "JWT rejected");
                    failure = JwtFailure::Invalid;
                }
                Err(Rejection::KeysUnavailable) => {
                    if failure == JwtFailure::Missing {
                        failure = JwtFailure::KeysUnavailable;
                    }
                }
            }
        }
        let Some((provider, source, claims)) = accepted else {
            return match failure {
                JwtFailure::Missing if settings.optional => Ok(None),
                failure => Err(failure),
            };
        };
        if !provider.forward && !credentials::remove(source, parts) {
            tracing::warn!(provider = %provider.name, "could not remove the token from the request");
        }
        for mapping in &provider.claim_to_headers {
            let text = claim(&claims, &mapping.claim).and_then(claim_text);
            // A claim that cannot be a header value (control characters) is not forwarded.
            if let Some(value) = text.and_then(|text| HeaderValue::from_str(&text).ok()) {
                parts.headers.insert(mapping.header.clone(), value);
            }
        }
        Ok(Some(JwtIdentity {
            provider: Arc::clone(&provider.name),
            claims,
        }))
    }

    /// Checks `token` against `provider` (see the module docs for the order of checks).
    pub(crate) async fn verify(
        &self,
        provider: &JwtProvider,
        token: &str,
    ) -> Result<Map<String, Value>, Rejection> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::Invalid("token too long"));
        }
        if token.split('.').count() != 3 {
            return Err(Rejection::Invalid("not three dot-separated parts"));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Rejection::Invalid("header is not a JWS header with a known alg"))?;
        let Some((_, validation)) = self.validations.iter().find(|(alg, _)| *alg == header.alg)
        else {
            return Err(Rejection::Invalid("alg not allowed (HS* or none)"));
        };
        // RFC 7515 §4.1.11: a token that makes an extension critical must be refused by a
        // verifier that does not understand it, and we understand none.
        if header.crit.as_ref().is_some_and(|crit| !crit.is_empty()) {
            return Err(Rejection::Invalid(
                "crit names extensions we do not implement",
            ));
        }
        let kid = header.kid.as_deref();
        let keys = self.key_set(provider, kid).await?;
        let mut candidates = keys.candidates(kid, header.alg).peekable();
        if candidates.peek().is_none() {
            return Err(Rejection::Invalid(
                "no key of the set fits the token's kid and alg",
            ));
        }
        let mut verified = None;
        for candidate in candidates {
            if let Ok(data) =
                jsonwebtoken::decode::<Map<String, Value>>(token, &candidate.key, validation)
            {
                verified = Some(data.claims);
                break;
            }
        }
        let claims = verified.ok_or(Rejection::Invalid(
            "no key of the set verifies the signature",
        ))?;
        claims::check(provider, &claims, now_seconds()).map_err(Rejection::Invalid)?;
        Ok(claims)
    }

    /// The key set of `provider` for a token naming `kid`.
    async fn key_set(
        &self,
        provider: &JwtProvider,
        kid: Option<&str>,
    ) -> Result<Arc<KeySet>, Rejection> {
        match &provider.keys {
            JwksSource::Inline(document) => Ok(self.inline_set(document)),
            JwksSource::Remote {
                uri,
                cache_duration,
                timeout,
            } => {
                let settings = FetchSettings {
                    cache_duration: *cache_duration,
                    timeout: *timeout,
                };
                self.remote_keys(uri)
                    .keys_for(kid, settings)
                    .await
                    .ok_or(Rejection::KeysUnavailable)
            }
        }
    }

    /// The parsed inline set `document`, parsed now if it is new. A set that does not parse
    /// (compile checks it, so this is defence in depth) verifies nothing.
    fn inline_set(&self, document: &str) -> Arc<KeySet> {
        if let Some(keys) = self.inline.load().get(document) {
            return Arc::clone(keys);
        }
        let keys = Arc::new(KeySet::parse(document.as_bytes()).unwrap_or_else(|error| {
            tracing::warn!(%error, "inline JWKS unusable: its provider accepts no token");
            KeySet::empty()
        }));
        let key: Arc<str> = Arc::from(document);
        self.inline.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.insert(Arc::clone(&key), Arc::clone(&keys));
            map
        });
        keys
    }

    /// The cache of `uri`, created on first use.
    fn remote_keys(&self, uri: &Uri) -> Arc<RemoteKeys> {
        if let Some(keys) = self.remote.load().get(uri) {
            return Arc::clone(keys);
        }
        let created = Arc::new(RemoteKeys::new(
            uri.clone(),
            Arc::clone(&self.fetcher),
            Arc::clone(&self.metrics),
            self.min_refetch,
        ));
        let mut chosen = Arc::clone(&created);
        self.remote.rcu(|map| {
            // Another request may have created it in between: keep theirs (one cache per URI).
            if let Some(existing) = map.get(uri) {
                chosen = Arc::clone(existing);
                return Arc::clone(map);
            }
            chosen = Arc::clone(&created);
            let mut map = HashMap::clone(map);
            map.insert(uri.clone(), Arc::clone(&created));
            Arc::new(map)
        });
        chosen
    }

    /// Drops the remote caches of URIs not in `live`, and every parsed inline set.
    pub(crate) fn retain(&self, live: &HashSet<Uri>) {
        self.remote.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.retain(|uri, _| live.contains(uri));
            map
        });
        self.inline.store(Arc::default());
    }
}

/// Where `provider` looks for its token.
fn sources(provider: &JwtProvider) -> &[TokenSource] {
    if provider.extract_from.is_empty() {
        &*DEFAULT_SOURCES
    } else {
        &provider.extract_from
    }
}

/// The wall clock in seconds since the epoch (`NumericDate`).
fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

#[cfg(test)]
mod tests;
