//! HTTP basic authentication (RFC 7617) against htpasswd entries.
//!
//! Supported hashes: bcrypt (`$2y$`, `$2b$`, `$2a$`, `$2x$`) and `{SHA}` (base64 SHA-1, kept
//! for old htpasswd files; compared in constant time). Anything else (`$apr1$`, crypt, plain)
//! never verifies.
//!
//! bcrypt is slow on purpose (tens of milliseconds at the usual cost), so:
//! - it runs on `tokio::task::spawn_blocking`, never on a runtime worker;
//! - at most [`MAX_CONCURRENT_BCRYPT`] run at once (a semaphore), so a flood of wrong passwords
//!   cannot occupy every blocking thread;
//! - a successful verification is remembered for [`VERIFIED_TTL`], keyed by an HMAC-SHA256 of
//!   (user, password, stored hash) under a random per-process key. The plain password is never
//!   stored, and without the process key the cache keys cannot be brute-forced offline. The
//!   stored hash is part of the key, so a changed htpasswd entry never matches an old
//!   verification. Failures are not remembered. The cache holds at most
//!   [`MAX_VERIFIED`] entries (expired ones are purged when it is full, then it is cleared).
//!
//! A user name that is not in the file fails at once (no dummy bcrypt): that reveals which
//! names exist through timing, which we accept rather than spend bcrypt on every unknown name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::AUTHORIZATION;
use http::request::Parts;
use snapshot::security::{BasicAuth, HtpasswdUser};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How long a successful bcrypt verification is remembered.
pub(crate) const VERIFIED_TTL: Duration = Duration::from_secs(300);
/// The most verifications remembered.
pub(crate) const MAX_VERIFIED: usize = 10_000;
/// The most bcrypt verifications running at once.
pub(crate) const MAX_CONCURRENT_BCRYPT: usize = 4;
/// `Authorization` values longer than this are not decoded.
const MAX_CREDENTIALS_BYTES: usize = 4096;

/// Why basic authentication failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BasicFailure {
    /// No `Authorization: Basic` header.
    Missing,
    /// Malformed credentials, an unknown user or a wrong password.
    Invalid,
}

/// Verifies basic credentials; holds the verification cache. One per authenticator.
pub(crate) struct BasicVerifier {
    /// The cache's key, drawn at the first verification: the first draw from the system RNG
    /// seeds aws-lc's generator from CPU jitter, ~15 ms of CPU that start-up (which creates
    /// this verifier) need not wait for when no route uses basic auth.
    cache_key: OnceLock<hmac::Key>,
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    bcrypt_permits: Arc<Semaphore>,
}

impl BasicVerifier {
    /// An empty cache; its random key is drawn when first needed.
    pub(crate) fn new() -> BasicVerifier {
        BasicVerifier {
            cache_key: OnceLock::new(),
            verified: Mutex::new(HashMap::new()),
            bcrypt_permits: Arc::new(Semaphore::new(MAX_CONCURRENT_BCRYPT)),
        }
    }

    /// The cache's key: a fresh random one, drawn once.
    fn cache_key(&self) -> &hmac::Key {
        self.cache_key.get_or_init(|| {
            let mut secret = [0u8; 32];
            // The system RNG failing is not recoverable in any useful way; a zero key would
            // still keep passwords out of memory, only without the offline-brute-force
            // protection.
            if SystemRandom::new().fill(&mut secret).is_err() {
                tracing::error!("system RNG failed; the basic-auth cache key is not secret");
            }
            hmac::Key::new(hmac::HMAC_SHA256, &secret)
        })
    }

    /// Checks the request's basic credentials. On success returns the user name and has
    /// removed the `Basic` `Authorization` value (credentials never go upstream).
    pub(crate) async fn authenticate(
        &self,
        settings: &BasicAuth,
        parts: &mut Parts,
    ) -> Result<String, BasicFailure> {
        let (user, password) = credentials(parts)?;
        let entry = settings
            .users
            .iter()
            .find(|entry| entry.name == user)
            .ok_or(BasicFailure::Invalid)?;
        if !self.verify(entry, &password).await {
            return Err(BasicFailure::Invalid);
        }
        remove_basic(parts);
        Ok(user)
    }

    /// Whether `password` matches `entry`'s hash.
    async fn verify(&self, entry: &HtpasswdUser, password: &str) -> bool {
        if let Some(encoded) = entry.hash.strip_prefix("{SHA}") {
            let digest = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
            let computed = STANDARD.encode(digest.as_ref());
            return verify_slices_are_equal(computed.as_bytes(), encoded.as_bytes()).is_ok();
        }
        if !is_bcrypt(&entry.hash) {
            tracing::debug!(user = %entry.name, "htpasswd hash format not supported");
            return false;
        }
        let key = self.cache_key_of(entry, password);
        if self.is_remembered(&key) {
            return true;
        }
        let Ok(_permit) = self.bcrypt_permits.acquire().await else {
            return false;
        };
        let (password, hash) = (password.to_owned(), entry.hash.clone());
        let verified = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .map(|result| result.unwrap_or(false))
            .unwrap_or(false);
        if verified {
            self.remember(key);
        }
        verified
    }

    fn cache_key_of(&self, entry: &HtpasswdUser, password: &str) -> [u8; 32] {
        let mut context = hmac::Context::with_key(self.cache_key());
        // Lengths first, so that no two (user, password, hash) triples feed the same bytes.
        for part in [
            entry.name.as_bytes(),
            password.as_bytes(),
            entry.hash.as_bytes(),
        ] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let tag = context.sign();
        let mut key = [0u8; 32];
        key.copy_from_slice(tag.as_ref());
        key
    }

    fn is_remembered(&self, key: &[u8; 32]) -> bool {
        let verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        verified
            .get(key)
            .is_some_and(|expires| Instant::now() < *expires)
    }

    fn remember(&self, key: [u8; 32]) {
        let now = Instant::now();
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= MAX_VERIFIED {
            verified.retain(|_, expires| now < *expires);
            if verified.len() >= MAX_VERIFIED {
                verified.clear();
            }
        }
        verified.insert(key, now + VERIFIED_TTL);
    }

    /// Whether `password` of the single user of `settings` is remembered as verified now
    /// (tests).
    #[cfg(test)]
    pub(crate) fn is_fresh_for_tests(&self, settings: &BasicAuth, password: &str) -> bool {
        settings
            .users
            .first()
            .is_some_and(|entry| self.is_remembered(&self.cache_key_of(entry, password)))
    }

    /// How many verifications are remembered (tests).
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        self.verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

fn is_bcrypt(hash: &str) -> bool {
    ["$2y$", "$2b$", "$2a$", "$2x$"]
        .iter()
        .any(|prefix| hash.starts_with(prefix))
}

/// The `Basic` value of an `Authorization` header, if any.
fn basic_value(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    value.get(6..)
}

/// The user and password of the request's `Authorization: Basic` header (RFC 7617 §2: the
/// user id ends at the first colon; both are UTF-8).
fn credentials(parts: &Parts) -> Result<(String, String), BasicFailure> {
    let encoded = parts
        .headers
        .get_all(AUTHORIZATION)
        .iter()
        .find_map(|value| basic_value(value.as_bytes()))
        .ok_or(BasicFailure::Missing)?;
    if encoded.len() > MAX_CREDENTIALS_BYTES {
        return Err(BasicFailure::Invalid);
    }
    let decoded = STANDARD
        .decode(encoded.trim_ascii())
        .map_err(|_| BasicFailure::Invalid)?;
    let decoded = String::from_utf8(decoded).map_err(|_| BasicFailure::Invalid)?;
    let (user, password) = decoded.split_once(':').ok_or(BasicFailure::Invalid)?;
    Ok((user.to_owned(), password.to_owned()))
}

/// Removes the `Basic` values of `Authorization`, keeping any other (a bearer token another
/// method may forward).
fn remove_basic(parts: &mut Parts) {
    let kept: Vec<_> = parts
        .headers
        .get_all(AUTHORIZATION)
        .iter()
        .filter(|value| basic_value(value.as_bytes()).is_none())
        .cloned()
        .collect();
    parts.headers.remove(AUTHORIZATION);
    for value in kept {
        parts.headers.append(AUTHORIZATION, value);
    }
}
