//! The cache of one remote JWKS URI.
//!
//! One [`RemoteKeys`] per URI, shared by every provider that names it, kept across snapshots
//! (the [`crate::authn::Authenticator`] drops the ones no live provider names). The rules:
//!
//! - **first use**: the set is fetched when a token first needs it; a request arriving while
//!   no set was ever fetched waits for that fetch (bounded by the provider's `timeout`); if it
//!   fails, the request is refused (`jwks-unavailable`);
//! - **fresh**: for `cache_duration` after a fetch the set is used as is, lock-free (one
//!   `ArcSwap` load per token);
//! - **stale**: after that, the set is still used at once and one refresh runs in the
//!   background, so no request waits for a routine refresh;
//! - **unknown `kid`**: the token may be signed with a key the issuer just rotated in, so the
//!   request waits for a refetch, unless one started less than [`MIN_REFETCH`] ago (then the
//!   token is checked against the set we have, and fails);
//! - **single flight**: fetches are serialized by an async gate; a request that waited at the
//!   gate while another request's fetch ran uses that result instead of fetching again, so N
//!   concurrent requests cost one fetch;
//! - **stale on error**: a failed fetch never drops the last good set. Every fetch attempt,
//!   failed or not, starts the [`MIN_REFETCH`] window, so an endpoint that is down sees at
//!   most one attempt per window however busy the gateway is, and tokens with made-up `kid`s
//!   cannot make the gateway hammer the issuer. The price: a key rotated in less than the
//!   window after the last fetch is picked up by the first token naming it after the window
//!   (issuers publish new keys well before signing with them, so this rarely shows).
//!
//! Tokens without a `kid` never trigger a refetch (nothing says the set is out of date); they
//! see a rotation at the next TTL refresh.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::Uri;
use telemetry::Metrics;
use tokio::time::Instant;

use super::fetch::JwksFetcher;
use super::keys::KeySet;

/// The shortest time between two fetches of one URI that are not the first.
pub(crate) const MIN_REFETCH: Duration = Duration::from_secs(10);

/// A fetched set and when it was fetched.
struct Loaded {
    keys: Arc<KeySet>,
    fetched_at: Instant,
}

/// How one provider uses the cache: its freshness window and fetch timeout.
#[derive(Clone, Copy)]
pub(crate) struct FetchSettings {
    /// How long a fetched set is fresh.
    pub(crate) cache_duration: Duration,
    /// The bound of one fetch.
    pub(crate) timeout: Duration,
}

/// The key set of one URI (see the module docs).
pub(crate) struct RemoteKeys {
    uri: Uri,
    /// `uri` as text, the metric label.
    label: String,
    fetcher: Arc<JwksFetcher>,
    metrics: Arc<Metrics>,
    /// [`MIN_REFETCH`], shorter in tests.
    min_refetch: Duration,
    current: ArcSwapOption<Loaded>,
    /// When the last fetch attempt started (`None`: never).
    last_attempt: Mutex<Option<Instant>>,
    /// Fetch attempts finished so far: a request that waited at `gate` sees it moved.
    attempts: AtomicU64,
    /// Held for the whole of one fetch: the single-flight gate.
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl RemoteKeys {
    /// An empty cache for `uri`; nothing is fetched until a token needs it.
    pub(crate) fn new(
        uri: Uri,
        fetcher: Arc<JwksFetcher>,
        metrics: Arc<Metrics>,
        min_refetch: Duration,
    ) -> RemoteKeys {
        RemoteKeys {
            label: uri.to_string(),
            uri,
            fetcher,
            metrics,
            min_refetch,
            current: ArcSwapOption::empty(),
            last_attempt: Mutex::new(None),
            attempts: AtomicU64::new(0),
            gate: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The set to check a token naming `kid` with, or `None` when no set was ever fetched and
    /// fetching one failed (`jwks-unavailable`). See the module docs for when this waits.
    pub(crate) async fn keys_for(
        self: &Arc<Self>,
        kid: Option<&str>,
        settings: FetchSettings,
    ) -> Option<Arc<KeySet>> {
        let now = Instant::now();
        let Some(loaded) = self.current.load_full() else {
            return self.fetch_single_flight(settings.timeout).await;
        };
        if kid.is_none_or(|kid| loaded.keys.has_kid(kid)) {
            if now.saturating_duration_since(loaded.fetched_at) >= settings.cache_duration {
                self.refresh_in_background(settings.timeout);
            }
            return Some(Arc::clone(&loaded.keys));
        }
        if !self.may_fetch(now) {
            return Some(Arc::clone(&loaded.keys));
        }
        self.fetch_single_flight(settings.timeout).await
    }

    /// Whether the refetch window allows a fetch now.
    fn may_fetch(&self, now: Instant) -> bool {
        let last = *self
            .last_attempt
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        last.is_none_or(|last| now.saturating_duration_since(last) >= self.min_refetch)
    }

    /// Fetches unless another fetch finished while this one waited at the gate, or one started
    /// within the window (checked again behind the gate, which closes the race between two
    /// requests that both saw the window open); returns the set to use (the last good one if
    /// this fetch failed, `None` if there never was one).
    async fn fetch_single_flight(&self, timeout: Duration) -> Option<Arc<KeySet>> {
        let seen = self.attempts.load(Ordering::Acquire);
        let _gate = self.gate.lock().await;
        let someone_fetched = self.attempts.load(Ordering::Acquire) != seen;
        if someone_fetched || !self.may_fetch(Instant::now()) {
            return self
                .current
                .load_full()
                .map(|loaded| Arc::clone(&loaded.keys));
        }
        self.fetch_now(timeout).await;
        self.current
            .load_full()
            .map(|loaded| Arc::clone(&loaded.keys))
    }

    /// Starts one background refresh unless a fetch runs or the window forbids one.
    fn refresh_in_background(self: &Arc<Self>, timeout: Duration) {
        if !self.may_fetch(Instant::now()) {
            return;
        }
        let Ok(gate) = Arc::clone(&self.gate).try_lock_owned() else {
            return;
        };
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let _gate = gate;
            if this.may_fetch(Instant::now()) {
                this.fetch_now(timeout).await;
            }
        });
    }

    /// One fetch; the caller holds the gate. A good set replaces the current one; a failure
    /// keeps it.
    async fn fetch_now(&self, timeout: Duration) {
        *self
            .last_attempt
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        let result = self.fetcher.fetch(&self.uri, timeout).await;
        match result {
            Ok(keys) => {
                tracing::debug!(uri = %self.label, keys = keys.len(), "JWKS fetched");
                self.metrics.jwks_fetched(&self.label, "success");
                self.current.store(Some(Arc::new(Loaded {
                    keys: Arc::new(keys),
                    fetched_at: Instant::now(),
                })));
            }
            Err(error) => {
                let kept = self.current.load().is_some();
                tracing::warn!(uri = %self.label, %error, kept_last_good_set = kept, "JWKS fetch failed");
                self.metrics
                    .jwks_fetched(&self.label, error.metric_result());
            }
        }
        self.attempts.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests;
