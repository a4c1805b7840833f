//! Endpoint selection: one pick per request attempt, by the backend's [`Balancer`].
//!
//! Owns the algorithms (PeakEWMA and least-request as power of two choices, weighted round
//! robin, weighted random, consistent hashing) and the weighting every one of them shares
//! ([`weighting`]): endpoint weights, slow start, and skipping endpoints that health checks or
//! outlier detection took out of rotation. It does not decide availability (see `health/`)
//! and holds no locks: per-endpoint state lives in atomics of [`EndpointRuntime`], per-set
//! tables ([`BalanceTables`]) are built when the endpoint set changes.
//!
//! Panic threshold: when every endpoint with a weight is unavailable, the balancers pick among
//! all of them as if all were available. Trying an endpoint that may be down is better than
//! failing every request of the backend outright.

mod consistent_hash;
mod least_request;
mod peak_ewma;
mod random;
mod round_robin;
mod two_choices;
mod weighting;

use std::net::IpAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rand::Rng;

use crate::endpoint::{EndpointRuntime, EndpointSet};
use snapshot::backend::policy::{BackendPolicy, Balancer};

pub(crate) use consistent_hash::HashRing;
pub(crate) use peak_ewma::LatencyEstimate;
use weighting::Weigher;

/// What a balancer may look at in the request it places.
#[derive(Clone, Copy, Debug)]
pub struct PickContext<'a> {
    /// The request headers (consistent hashing on a header or cookie).
    pub headers: &'a http::HeaderMap,
    /// The client's address (consistent hashing on the source IP, and the fallback key).
    pub client: IpAddr,
    /// The time of the pick (slow start, PeakEWMA decay): the caller's clock reading, which
    /// it usually has already.
    pub now: Instant,
}

/// Tables built once per endpoint set (not per request): the round-robin schedule and, for
/// consistent hashing, the hash ring (built on first use, or eagerly by the registry when the
/// backend's policy asks for it).
#[derive(Debug, Default)]
pub(crate) struct BalanceTables {
    schedule: Box<[u32]>,
    ring: OnceLock<HashRing>,
}

impl BalanceTables {
    /// The tables of `endpoints` (weights as they are now).
    pub(crate) fn new(endpoints: &[Arc<EndpointRuntime>]) -> BalanceTables {
        BalanceTables {
            schedule: round_robin::schedule(endpoints),
            ring: OnceLock::new(),
        }
    }

    /// The hash ring of `endpoints` (the same endpoints the tables were built with).
    pub(crate) fn ring(&self, endpoints: &[Arc<EndpointRuntime>]) -> &HashRing {
        self.ring.get_or_init(|| HashRing::new(endpoints))
    }
}

/// Picks one endpoint for a request, or `None` when the set has no endpoint with a non-zero
/// weight. Lock-free and allocation-free (except building the hash ring once per set).
pub(crate) fn pick(
    set: &EndpointSet,
    policy: &BackendPolicy,
    cursor: &AtomicUsize,
    context: &PickContext<'_>,
) -> Option<Arc<EndpointRuntime>> {
    pick_with(set, policy, cursor, context, context.now, &mut rand::rng())
}

/// [`pick`] at a given time with a given random source (deterministic tests).
fn pick_with<R: Rng>(
    set: &EndpointSet,
    policy: &BackendPolicy,
    cursor: &AtomicUsize,
    context: &PickContext<'_>,
    now: Instant,
    rng: &mut R,
) -> Option<Arc<EndpointRuntime>> {
    if set.is_empty() {
        return None;
    }
    let endpoints = set.endpoints();
    let weigher = Weigher::new(endpoints, policy.slow_start, now);
    let index = match &policy.balancer {
        Balancer::PeakEwma => {
            two_choices::pick(endpoints, &weigher, rng, |e| peak_ewma::cost(e, now))
        }
        Balancer::LeastRequest => two_choices::pick(endpoints, &weigher, rng, least_request::cost),
        Balancer::RoundRobin => round_robin::pick(set, &weigher, cursor, rng),
        Balancer::Random => random::pick(endpoints, &weigher, rng),
        Balancer::ConsistentHash(key) => {
            let ring = set.tables.ring(endpoints);
            consistent_hash::pick(endpoints, ring, &weigher, key, context)
        }
    }?;
    endpoints.get(index).cloned()
}

#[cfg(test)]
mod tests;
