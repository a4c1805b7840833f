//! RateLimitPolicy at request time: local (per-replica) and global (Redis) limits.
//!
//! The settings are `snapshot::rate_limit`; the state, the counters, lives here in one
//! [`RateLimiter`] per process that outlives snapshots: counters are keyed by
//! [`RateLimitRule::id`], so a reload that keeps a rule keeps its counters, and
//! [`RateLimiter::retain`] forgets the rules a new snapshot no longer has.
//!
//! # One decision
//!
//! [`RateLimiter::check`] decides one request against the policy resolved for its route:
//!
//! 1. **Selection** (`key.rs`). A rule applies when all its selectors match; the values of its
//!    `Distinct` selectors (client address, API key header, JWT `sub`, ...) choose its bucket.
//!    A rule without a distinct selector counts every request it selects in one bucket.
//! 2. **Local rules** (`local.rs`): GCRA (`gcra.rs`) per replica, in sharded maps (no global
//!    lock) holding at most [`MAX_KEYS_PER_RULE`] buckets per rule. Each applicable rule counts
//!    the request if it fits. When one refuses, Redis is not asked.
//! 3. **Global rules** (`global.rs`), only when the request hits at least one: one Redis round
//!    trip decides all of them at once, and counts the request only if every one admits it.
//!    When Redis does not answer within `global.timeout` (or is not configured, or is known to
//!    be down: `breaker.rs` then answers at once instead of waiting), `fail_open` admits the
//!    request and `FailClosed` refuses it with 503 `rate-limit-unavailable`. The connection is
//!    remade in the background; decisions use Redis again as soon as it answers.
//! 4. The request is admitted when every rule not in shadow mode admitted it. When one refuses,
//!    the local rules that had counted it give it back (a refused request costs no quota);
//!    global rules never count a request they refuse. A refusal is 429 `rate-limited` with
//!    `Retry-After`, `RateLimit-Policy` and `RateLimit` for the rule that asks the client to
//!    wait longest (`headers.rs`); an admitted request gets a [`Quota`] for the rule with the
//!    fewest requests left, which the proxy adds to the response.
//!
//! Shadow-mode rules are decided and counted in metrics (`shadow_limited`) but never refuse a
//! request, never fail one closed, and are never shown to clients.
//!
//! # Limits and rates
//!
//! A limit of `requests` per `period` with a burst of `burst` admits `burst` requests at once
//! from a full bucket, then one every `period / requests`: over any span `s` a bucket admits
//! at most `burst + s · requests / period` requests. `requests: 0` refuses everything.
//!
//! # Use from the proxy
//!
//! ```text
//! // At startup (the CLI reports a bad --redis URL):
//! let limiter = Arc::new(RateLimiter::new(args.redis.as_deref(), Arc::clone(&metrics))?);
//! // Per request, after authentication and authorization, when the route has a policy:
//! match limiter.check(&policy, &parts, client_ip, &identity).await {
//!     Ok(quota) => { /* forward; then */ if let Some(quota) = quota { quota.headers(response.headers_mut()) } }
//!     Err(denial) => { /* respond with denial.status, denial.headers, denial.body */ }
//! }
//! // When a snapshot is published, with the id of every rule (local and global) in it:
//! limiter.retain(&live_rule_ids);
//! ```
//!
//! # Metrics
//!
//! `rate_limit_decision(rule, "local" | "global", result)` for every applicable rule
//! (`allowed`, `limited`, `shadow_limited`, `failed_open`, `failed_closed`);
//! `redis_answered(duration)` for each answered round trip and `redis_failed(reason)`
//! (`timeout`, `connection`, `script`, `not_configured`) for each decision Redis did not make.

mod breaker;
mod gcra;
mod global;
mod headers;
mod key;
mod local;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use snapshot::rate_limit::{GlobalLimits, RateLimitPolicy, RateLimitRule};
use telemetry::Metrics;
use tokio::time::Instant;

use crate::{Denial, Identity};
use gcra::{Rate, Verdict};
use global::{GlobalCall, GlobalStore};
use key::{DigestSink, HasherSink, RequestView, select};
use local::{BucketId, LocalBuckets};

pub use headers::{Quota, RATELIMIT, RATELIMIT_POLICY};
pub use local::MAX_KEYS_PER_RULE;

/// Nanoseconds per second: the local buckets' unit.
const NANOS: u64 = 1_000_000_000;
/// Microseconds per second: the Redis buckets' unit.
const MICROS: u64 = 1_000_000;

/// Why a [`RateLimiter`] could not be created.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    /// The `--redis` URL is not one the Redis client accepts.
    #[error("--redis {url}: {reason}")]
    RedisUrl {
        /// The URL, without its password.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The rate-limit counters of this process and its connection to Redis: one per process,
/// shared by every request (`Arc`), outliving snapshots.
pub struct RateLimiter {
    local: LocalBuckets,
    global: GlobalStore,
    metrics: Arc<Metrics>,
    /// Origin of the local buckets' clock (tokio's, so tests can pause it).
    epoch: Instant,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A rate limiter; `redis` is the `--redis` URL (`redis://[:password@]host:port[/db]`).
    /// Without one, global rules have no store: every decision applies their failure mode
    /// (counted as `redis_failed("not_configured")`).
    ///
    /// Does not connect: the connection is made at the first global decision and remade in the
    /// background whenever it breaks, so this never blocks and a Redis that is down now is used
    /// as soon as it is up. May be called outside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::RedisUrl`] when `redis` is not a valid Redis URL.
    pub fn new(redis: Option<&str>, metrics: Arc<Metrics>) -> Result<RateLimiter, RateLimitError> {
        Ok(RateLimiter {
            local: LocalBuckets::new(),
            global: GlobalStore::new(redis)?,
            metrics,
            epoch: Instant::now(),
        })
    }

    /// Decides one request (see the module doc): `Ok(Some(quota))` admits it and says what to
    /// tell the client, `Ok(None)` admits it with no rule applying (or only shadow rules),
    /// `Err` refuses it (429 `rate-limited`, or 503 `rate-limit-unavailable` for a global rule
    /// failing closed).
    ///
    /// `parts` carries the normalised path, method and headers; `client_ip` is the client
    /// address after trusted proxy hops; `identity` is what authentication found. Waits for
    /// Redis at most `policy.global.timeout`, and only when a global rule applies.
    pub async fn check(
        &self,
        policy: &RateLimitPolicy,
        parts: &Parts,
        client_ip: IpAddr,
        identity: &Identity,
    ) -> Result<Option<Quota>, Denial> {
        let request = RequestView {
            parts,
            client_ip,
            identity,
        };
        let mut outcome = Outcome::new(&policy.label);
        let mut counted = Counted::default();
        let now = self.now();
        self.check_local(&policy.local, request, now, &mut outcome, &mut counted);
        if outcome.refusal.is_none()
            && let Some(global) = &policy.global
            && let Err(denial) = self.check_global(global, request, &mut outcome).await
        {
            self.refund(&counted);
            return Err(denial);
        }
        match outcome.refusal {
            Some((quota, retry_after)) => {
                self.refund(&counted);
                Err(headers::too_many_requests(&quota, retry_after))
            }
            None => Ok(outcome.tightest),
        }
    }

    /// Forgets the local counters of every rule whose id is not in `live_rule_ids` (the ids of
    /// every rule, local and global, of a snapshot being published). Global counters expire in
    /// Redis by themselves.
    pub fn retain(&self, live_rule_ids: &HashSet<Arc<str>>) {
        self.local.retain(live_rule_ids);
    }

    /// Local buckets currently held for the rule `rule_id` (for tests and debugging).
    pub fn local_keys(&self, rule_id: &str) -> usize {
        self.local.keys_of(self.local.rule_hash(rule_id))
    }

    /// Nanoseconds since this limiter was created.
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn check_local(
        &self,
        rules: &[RateLimitRule],
        request: RequestView<'_>,
        now: u64,
        outcome: &mut Outcome<'_>,
        counted: &mut Counted,
    ) {
        for rule in rules {
            let mut values = HasherSink(self.local.hasher());
            if !select(rule, request, &mut values) {
                continue;
            }
            let rule_hash = self.local.rule_hash(&rule.id);
            let mut key = self.local.hasher();
            key.write_u64(rule_hash);
            key.write_u64(values.0.finish());
            let id = BucketId {
                rule: rule_hash,
                key: key.finish(),
            };
            let rate = Rate::new(&rule.limit, NANOS);
            let verdict = self.local.acquire(id, rate, now);
            if verdict.admitted {
                counted.push((id, rate));
            }
            self.record(rule, "local", verdict, Duration::from_nanos, outcome);
        }
    }

    async fn check_global(
        &self,
        global: &GlobalLimits,
        request: RequestView<'_>,
        outcome: &mut Outcome<'_>,
    ) -> Result<(), Denial> {
        let mut call = GlobalCall::default();
        let mut selected = Vec::new();
        for rule in &global.rules {
            let mut values = DigestSink(sha1_smol::Sha1::new());
            if !select(rule, request, &mut values) {
                continue;
            }
            let rate = Rate::new(&rule.limit, MICROS);
            call.keys.push(global::bucket_key(&rule.id, &values.0));
            call.args
                .extend([rate.interval, rate.capacity, u64::from(rule.shadow)]);
            selected.push(rule);
        }
        if selected.is_empty() {
            return Ok(());
        }
        match self.global.decide(&call, global.timeout).await {
            Ok((verdicts, took)) => {
                self.metrics.redis_answered(took);
                for (rule, verdict) in selected.iter().zip(verdicts) {
                    self.record(rule, "global", verdict, Duration::from_micros, outcome);
                }
                Ok(())
            }
            Err(failure) => {
                self.metrics.redis_failed(failure.reason());
                let refuse = !global.fail_open && selected.iter().any(|rule| !rule.shadow);
                for rule in &selected {
                    let result = if refuse && !rule.shadow {
                        "failed_closed"
                    } else {
                        "failed_open"
                    };
                    self.metrics.rate_limit_decision(&rule.id, "global", result);
                }
                if refuse {
                    Err(headers::unavailable())
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Counts one rule's verdict in metrics and, unless the rule is in shadow mode, in
    /// `outcome`; `duration` turns the verdict's times into durations.
    fn record(
        &self,
        rule: &RateLimitRule,
        scope: &'static str,
        verdict: Verdict,
        duration: fn(u64) -> Duration,
        outcome: &mut Outcome<'_>,
    ) {
        let result = match (verdict.admitted, rule.shadow) {
            (true, _) => "allowed",
            (false, true) => "shadow_limited",
            (false, false) => "limited",
        };
        self.metrics.rate_limit_decision(&rule.id, scope, result);
        if !rule.shadow {
            outcome.add(rule, verdict, duration);
        }
    }

    fn refund(&self, counted: &Counted) {
        let now = self.now();
        for (id, rate) in counted.iter() {
            self.local.refund(id, rate, now);
        }
    }
}

/// The local buckets that counted a request, to give it back if a later rule refuses it: the
/// first few inline (no allocation for the usual handful of rules), the rest in a `Vec`.
#[derive(Default)]
struct Counted {
    inline: [Option<(BucketId, Rate)>; 4],
    more: Vec<(BucketId, Rate)>,
}

impl Counted {
    fn push(&mut self, entry: (BucketId, Rate)) {
        match self.inline.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some(entry),
            None => self.more.push(entry),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (BucketId, Rate)> + '_ {
        self.inline.iter().flatten().chain(&self.more).copied()
    }
}

/// What the rules decided so far: the tightest quota of those that admitted the request and
/// the longest wait of those that refused it.
struct Outcome<'a> {
    label: &'a Arc<str>,
    tightest: Option<Quota>,
    refusal: Option<(Quota, Duration)>,
}

impl<'a> Outcome<'a> {
    fn new(label: &'a Arc<str>) -> Outcome<'a> {
        Outcome {
            label,
            tightest: None,
            refusal: None,
        }
    }

    fn add(&mut self, rule: &RateLimitRule, verdict: Verdict, duration: fn(u64) -> Duration) {
        let reset = duration(verdict.reset);
        if verdict.admitted {
            let tighter = self.tightest.as_ref().is_none_or(|quota| {
                (verdict.remaining, std::cmp::Reverse(reset))
                    < (quota.remaining, std::cmp::Reverse(quota.reset))
            });
            if tighter {
                self.tightest = Some(self.quota(rule, verdict.remaining, reset));
            }
        } else {
            let retry_after = duration(verdict.retry_after);
            if self
                .refusal
                .as_ref()
                .is_none_or(|(_, longest)| retry_after > *longest)
            {
                self.refusal = Some((self.quota(rule, 0, reset), retry_after));
            }
        }
    }

    fn quota(&self, rule: &RateLimitRule, remaining: u64, reset: Duration) -> Quota {
        Quota {
            policy: Arc::clone(self.label),
            rule: Arc::clone(&rule.id),
            requests: rule.limit.requests,
            window: rule.limit.period,
            remaining,
            reset,
        }
    }
}
