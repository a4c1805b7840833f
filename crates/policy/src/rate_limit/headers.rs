//! What a client is told about its quota: `RateLimit-Policy`, `RateLimit` and `Retry-After`.
//!
//! The header fields follow draft-ietf-httpapi-ratelimit-headers (the structured-field form of
//! drafts 08 and later), one list member naming the most constraining rule:
//!
//! ```text
//! RateLimit-Policy: "local[0]";q=100;w=60
//! RateLimit: "local[0]";r=42;t=13
//! ```
//!
//! - the name is the rule id without its policy's label (`local[0]`, `global[1] per-key`): it
//!   tells rules of one policy apart without showing clients the policy's namespace and name;
//! - `q` is the rule's `requests` and `w` its period in seconds;
//! - `r` is how many requests the bucket would admit right now, `t` the seconds until the bucket
//!   is full again (GCRA refills continuously: `r` grows by one every `w/q` seconds, so `t` is
//!   when the whole burst is available, not a window boundary);
//! - on 429, `Retry-After` (RFC 9110 §10.2.3) is the whole seconds, rounded up and at least 1,
//!   until one request of the refusing rule would be admitted; `r` is 0.
//!
//! Seconds are always rounded up: a client that waits what it was told is never refused early.

use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::{HeaderMap, StatusCode};

use crate::Denial;

/// `RateLimit-Policy`.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The quota of the most constraining rule that admitted a request (or refused it): what the
/// `RateLimit-Policy` and `RateLimit` response headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    /// The policy's label (`RateLimitPolicy ns/name`).
    pub policy: Arc<str>,
    /// The rule's id ([`snapshot::rate_limit::RateLimitRule::id`]).
    pub rule: Arc<str>,
    /// `limit.requests`.
    pub requests: u64,
    /// `limit.period`.
    pub window: Duration,
    /// Requests the bucket would still admit right now.
    pub remaining: u64,
    /// Time until the bucket is full again.
    pub reset: Duration,
}

impl Quota {
    /// The name clients see: the rule id without the policy label (the whole id if it does
    /// not start with the label).
    pub fn name(&self) -> &str {
        self.rule
            .strip_prefix(&*self.policy)
            .map(str::trim_start)
            .filter(|rest| !rest.is_empty())
            .unwrap_or(&self.rule)
    }

    /// Sets `RateLimit-Policy` and `RateLimit` in `into`, replacing any already there (the
    /// gateway's quota is the one that binds the client).
    pub fn headers(&self, into: &mut HeaderMap) {
        let name = structured_string(self.name());
        let policy = format!(
            "{name};q={};w={}",
            self.requests,
            whole_seconds(self.window).max(1)
        );
        let state = format!(
            "{name};r={};t={}",
            self.remaining,
            whole_seconds(self.reset)
        );
        // Both are printable ASCII by construction (`structured_string`, integers).
        if let Ok(policy) = HeaderValue::try_from(policy) {
            into.insert(RATELIMIT_POLICY, policy);
        }
        if let Ok(state) = HeaderValue::try_from(state) {
            into.insert(RATELIMIT, state);
        }
    }
}

/// The 429 for a request `quota`'s rule refused, retryable after `retry_after`.
pub(crate) fn too_many_requests(quota: &Quota, retry_after: Duration) -> Denial {
    let mut denial = Denial::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited");
    quota.headers(&mut denial.headers);
    denial.headers.insert(
        RETRY_AFTER,
        HeaderValue::from(whole_seconds(retry_after).max(1)),
    );
    denial
}

/// The 503 for a request a global rule failing closed could not decide.
pub(crate) fn unavailable() -> Denial {
    Denial::new(StatusCode::SERVICE_UNAVAILABLE, "rate-limit-unavailable")
}

/// `duration` in whole seconds, rounded up.
pub(crate) fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// `text` as an RFC 8941 sf-string: quoted, `"` and `\` escaped, anything outside printable
/// ASCII replaced by `?`.
pub(crate) fn structured_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for character in text.chars() {
        match character {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(character);
            }
            ' '..='~' => quoted.push(character),
            _ => quoted.push('?'),
        }
    }
    quoted.push('"');
    quoted
}
