//! Provider metadata (OpenID Connect Discovery 1.0) and the provider's signing keys.
//!
//! [`Discovery`] caches, per issuer, the discovery document
//! (`{issuer}/.well-known/openid-configuration`) together with the key set at its `jwks_uri`.
//! An entry is fetched on first use, kept for [`REFRESH_AFTER`], and marked stale when a use of
//! it failed (the token endpoint could not be reached, or an ID token named a key the set does
//! not have), so the next request fetches it again. When a refetch fails, a previous entry is
//! still served (the provider may be down only briefly; the token endpoint will say so itself),
//! and no new fetch is tried for [`RETRY_AFTER_FAILURE`]. Concurrent requests wait for one fetch
//! per issuer (an async lock per entry; the map's own lock is never held across an await). The
//! document's `issuer` must equal the configured one (Discovery §4.3), but for a trailing `/`:
//! compile trims it, some providers (Auth0) keep it, and the document's exact spelling is what
//! ID tokens are then checked against.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Uri;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;

use super::client::{ProviderClient, ProviderError};

/// How long a discovery document (and its keys) is used before it is fetched again.
pub(crate) const REFRESH_AFTER: Duration = Duration::from_secs(3600);
/// After a failed fetch, how long requests are answered from the failure (or a previous
/// document) without fetching again: a provider that is down costs one timeout per 5 s, not
/// one per request.
pub(crate) const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// The members of a discovery document we use.
#[derive(Debug, Deserialize)]
pub(crate) struct Metadata {
    /// Equals the configured issuer, but for a trailing `/` (which compile trims): the
    /// exact string the ID tokens' `iss` must carry.
    pub(crate) issuer: String,
    /// Where browsers are sent to log in.
    pub(crate) authorization_endpoint: String,
    /// Where codes and refresh tokens are exchanged.
    pub(crate) token_endpoint: Option<String>,
    /// The provider's key set.
    pub(crate) jwks_uri: String,
    /// RP-initiated logout.
    pub(crate) end_session_endpoint: Option<String>,
    /// How clients may authenticate at the token endpoint (default `client_secret_basic`).
    #[serde(default)]
    pub(crate) token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// One provider, as discovered.
#[derive(Debug)]
pub(crate) struct Provider {
    /// Its discovery document.
    pub(crate) metadata: Metadata,
    /// Its signing keys.
    pub(crate) keys: JwkSet,
    fetched_at: Instant,
}

impl Provider {
    /// A provider made in a test, without discovery.
    #[cfg(test)]
    pub(crate) fn for_tests(metadata: Metadata, keys: JwkSet) -> Provider {
        Provider {
            metadata,
            keys,
            fetched_at: Instant::now(),
        }
    }

    /// Whether the token endpoint must be called with `client_secret_post`: only when the
    /// provider lists methods and `client_secret_basic` is not among them but post is.
    pub(crate) fn wants_client_secret_post(&self) -> bool {
        match &self.metadata.token_endpoint_auth_methods_supported {
            Some(methods) => {
                !methods.iter().any(|m| m == "client_secret_basic")
                    && methods.iter().any(|m| m == "client_secret_post")
            }
            None => false,
        }
    }
}

/// Why a provider could not be discovered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DiscoveryError {
    /// The issuer does not make a valid discovery URI.
    #[error("issuer {0:?} is not a URL")]
    BadIssuer(String),
    /// Fetching the document or the keys failed.
    #[error(transparent)]
    Fetch(#[from] ProviderError),
    /// The last fetch failed moments ago and there is no previous document.
    #[error("discovery failed less than {RETRY_AFTER_FAILURE:?} ago")]
    RecentFailure,
    /// The document names another issuer, or an endpoint that is not a URL.
    #[error("discovery document of {issuer}: {why}")]
    Invalid {
        /// The configured issuer.
        issuer: String,
        /// What was wrong.
        why: String,
    },
}

/// The per-issuer cache.
#[derive(Default)]
pub(crate) struct Discovery {
    entries: Mutex<HashMap<String, Slot>>,
}

/// One issuer's entry.
#[derive(Default)]
struct Slot {
    /// The last document fetched, if any.
    provider: Option<Arc<Provider>>,
    /// A use of `provider` failed: fetch again before using it.
    is_stale: bool,
    /// When the last fetch failed (cleared by a success).
    failed_at: Option<Instant>,
    /// Held while fetching: concurrent requests wait for one fetch instead of each making one.
    fetching: Arc<tokio::sync::Mutex<()>>,
}

impl Slot {
    fn fresh(&self) -> Option<Arc<Provider>> {
        let provider = self.provider.as_ref()?;
        (!self.is_stale && provider.fetched_at.elapsed() < REFRESH_AFTER)
            .then(|| Arc::clone(provider))
    }
}

impl Discovery {
    /// The provider of `issuer`: cached while fresh, else fetched once for all waiting
    /// requests. When the fetch fails (or failed less than [`RETRY_AFTER_FAILURE`] ago) a
    /// previous document is still served; without one, the error is returned.
    pub(crate) async fn provider(
        &self,
        client: &ProviderClient,
        issuer: &str,
    ) -> Result<Arc<Provider>, DiscoveryError> {
        let fetching = {
            let mut entries = self.lock();
            let slot = entries.entry(issuer.to_owned()).or_default();
            if let Some(provider) = slot.fresh() {
                return Ok(provider);
            }
            Arc::clone(&slot.fetching)
        };
        let _fetching = fetching.lock().await;
        let stale = {
            let mut entries = self.lock();
            let slot = entries.entry(issuer.to_owned()).or_default();
            // Another request may have fetched it while this one waited.
            if let Some(provider) = slot.fresh() {
                return Ok(provider);
            }
            if let Some(failed_at) = slot.failed_at
                && failed_at.elapsed() < RETRY_AFTER_FAILURE
            {
                return slot.provider.clone().ok_or(DiscoveryError::RecentFailure);
            }
            slot.provider.clone()
        };
        let fetched = fetch(client, issuer).await;
        let mut entries = self.lock();
        let slot = entries.entry(issuer.to_owned()).or_default();
        match fetched {
            Ok(provider) => {
                let provider = Arc::new(provider);
                slot.provider = Some(Arc::clone(&provider));
                slot.is_stale = false;
                slot.failed_at = None;
                Ok(provider)
            }
            Err(error) => {
                slot.failed_at = Some(Instant::now());
                match stale {
                    Some(stale) => {
                        tracing::warn!(%issuer, %error, "OIDC discovery failed; using the previous document");
                        Ok(stale)
                    }
                    None => Err(error),
                }
            }
        }
    }

    /// Marks the entry of `issuer` stale (a use of it failed): the next use fetches it again,
    /// and still falls back to it if that fetch fails.
    pub(crate) fn invalidate(&self, issuer: &str) {
        if let Some(slot) = self.lock().get_mut(issuer) {
            slot.is_stale = true;
        }
    }

    /// Drops the entries of issuers not in `live`.
    pub(crate) fn retain(&self, live: &HashSet<String>) {
        self.lock().retain(|issuer, _| live.contains(issuer));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // Every update under this lock is a few plain assignments, so even after a panic
        // elsewhere the map is consistent: a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The discovery URI of `issuer` (Discovery §4: the issuer without a trailing `/`, then
/// `/.well-known/openid-configuration`).
pub(crate) fn discovery_uri(issuer: &str) -> Option<Uri> {
    let base = issuer.trim_end_matches('/');
    format!("{base}/.well-known/openid-configuration")
        .parse()
        .ok()
}

/// A JWKS document, each key still unparsed.
#[derive(Deserialize)]
struct KeySetDocument {
    keys: Vec<serde_json::Value>,
}

async fn fetch(client: &ProviderClient, issuer: &str) -> Result<Provider, DiscoveryError> {
    let uri = discovery_uri(issuer).ok_or_else(|| DiscoveryError::BadIssuer(issuer.to_owned()))?;
    let metadata: Metadata = client.get_json(&uri).await?;
    let invalid = |why: String| DiscoveryError::Invalid {
        issuer: issuer.to_owned(),
        why,
    };
    if !super::flow::same_issuer(&metadata.issuer, issuer) {
        return Err(invalid(format!("names issuer {:?}", metadata.issuer)));
    }
    let jwks_uri: Uri = metadata
        .jwks_uri
        .parse()
        .map_err(|_| invalid(format!("jwks_uri {:?} is not a URL", metadata.jwks_uri)))?;
    let document: KeySetDocument = client.get_json(&jwks_uri).await?;
    // Keys of kinds jsonwebtoken does not know are skipped, not fatal: a provider may publish
    // encryption or post-quantum keys beside its signing keys.
    let keys = JwkSet {
        keys: document
            .keys
            .into_iter()
            .filter_map(|key| serde_json::from_value(key).ok())
            .collect(),
    };
    Ok(Provider {
        metadata,
        keys,
        fetched_at: Instant::now(),
    })
}
