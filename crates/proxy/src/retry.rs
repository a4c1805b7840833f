//! Whether a failed attempt is retried, and how long to pause first.
//!
//! Owns the retry decision of one attempt (a rule's [`RetryTriggers`] plus the idempotency
//! guard) and the jittered backoff. It does not count attempts, spend the budget or sleep:
//! `exchange.rs` runs the loop, in that order, so the whole story stays in one place.

use std::time::Duration;

use http::{Method, StatusCode};
use rand::Rng;
use snapshot::{Backoff, RetryTriggers};

use crate::error::{ProxyError, RetryClass};

/// Whether an attempt that ended with `result` (the response status, or the error) may be
/// retried under `triggers`. The error's [`RetryClass`] says whether the request left the
/// gateway: a request with a non-idempotent method (RFC 9110 §9.2.2: anything but GET, HEAD,
/// OPTIONS, TRACE, PUT, DELETE) is retried only when it did not, while after a reset, a
/// timeout or a response the backend may have acted on it.
pub(crate) fn allows_retry(
    triggers: &RetryTriggers,
    method: &Method,
    result: Result<StatusCode, &ProxyError>,
) -> bool {
    let is_idempotent = matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    );
    match result.map_err(ProxyError::retry_class) {
        Err(RetryClass::NotSent) => triggers.connect_failure,
        _ if !is_idempotent => false,
        Err(RetryClass::AfterReset) => triggers.reset,
        Err(RetryClass::AfterTimeout) => triggers.timeout,
        Err(RetryClass::Never) => false,
        Ok(status) => triggers.retries_status(status.as_u16()),
    }
}

/// The pause before retry number `retry` (0 for the first): drawn uniformly between the
/// backoff's base and its exponential cap ([`Backoff::cap`]), so clients failing together
/// spread out. A fixed backoff (`base == max`) always pauses `base`.
pub(crate) fn pause(backoff: &Backoff, retry: u32, rng: &mut impl Rng) -> Duration {
    let cap = backoff.cap(retry);
    if cap <= backoff.base {
        return backoff.base;
    }
    rng.random_range(backoff.base..=cap)
}

#[cfg(test)]
mod tests;
