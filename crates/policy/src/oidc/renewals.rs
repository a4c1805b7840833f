//! Coalescing concurrent refreshes of one session.
//!
//! When a session expires, a browser typically sends several requests at once (a page and its
//! assets), each with the same expired cookie. Refreshing once per request would spend the
//! refresh token several times; a provider that rotates refresh tokens treats the reuse as
//! theft and revokes the whole grant (OAuth 2.0 Security BCP §4.14). So the requests of one
//! session wait for a single refresh and share its result for [`REUSE_FOR`]. Sessions are keyed
//! by the SHA-256 of their refresh token (which only the cookie's holder has). This is per
//! process: replicas behind a load balancer can still race, which sticky sessions or a
//! provider's reuse grace period absorb. A failed refresh is not shared: the next request tries
//! again (and gets a login when it fails too).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::session::Session;

/// How long a refresh's result serves the other requests of the same session.
pub(crate) const REUSE_FOR: Duration = Duration::from_secs(30);
/// Most sessions tracked at once; beyond, refreshes run uncoalesced rather than grow memory.
const MAX_SLOTS: usize = 10_000;

type Slot = Arc<tokio::sync::Mutex<Option<(Instant, Session)>>>;

/// Refreshes in flight or just done, per refresh token.
#[derive(Default)]
pub(crate) struct Renewals {
    slots: Mutex<HashMap<[u8; 32], Slot>>,
}

impl Renewals {
    /// The session renewed from `refresh_token`: by `refresh`, or the result another request
    /// got within [`REUSE_FOR`] (waiting for it while it runs). `None` when `refresh` fails.
    pub(crate) async fn renew<F>(&self, refresh_token: &str, refresh: F) -> Option<Session>
    where
        F: Future<Output = Option<Session>>,
    {
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, refresh_token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        let Some(slot) = self.slot(key) else {
            return refresh.await;
        };
        let mut done = slot.lock().await;
        if let Some((at, session)) = done.as_ref()
            && at.elapsed() < REUSE_FOR
        {
            return Some(session.clone());
        }
        let session = refresh.await?;
        *done = Some((Instant::now(), session.clone()));
        Some(session)
    }

    /// The slot of `key`, after dropping slots nobody waits on whose result is old. `None`
    /// when [`MAX_SLOTS`] are busy.
    fn slot(&self, key: [u8; 32]) -> Option<Slot> {
        // Plain inserts and removes: a poisoned lock still holds a consistent map.
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.retain(|_, slot| {
            Arc::strong_count(slot) > 1
                || slot.try_lock().map_or(true, |done| {
                    done.as_ref()
                        .is_some_and(|(at, _)| at.elapsed() < REUSE_FOR)
                })
        });
        if slots.len() >= MAX_SLOTS && !slots.contains_key(&key) {
            return None;
        }
        Some(Arc::clone(slots.entry(key).or_default()))
    }
}

#[cfg(test)]
mod tests;
