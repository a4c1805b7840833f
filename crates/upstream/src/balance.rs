//! Endpoint selection. Round robin when weights are equal, weighted random otherwise.
//!
//! Issue-level scope: the resilience work (PeakEWMA, least-request, consistent hashing) plugs in
//! here; both strategies below are allocation-free and lock-free.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;

use crate::endpoint::{EndpointRuntime, EndpointSet};

/// Picks one endpoint, or `None` when the set has no endpoint with a non-zero weight.
pub(crate) fn pick(set: &EndpointSet, cursor: &AtomicUsize) -> Option<Arc<EndpointRuntime>> {
    if set.is_empty() {
        return None;
    }
    if set.uniform {
        let index = cursor.fetch_add(1, Ordering::Relaxed) % set.endpoints.len();
        return Some(Arc::clone(&set.endpoints[index]));
    }
    let mut ticket = rand::rng().random_range(0..set.total_weight);
    for endpoint in &set.endpoints {
        let weight = endpoint.weight();
        if ticket < weight {
            return Some(Arc::clone(endpoint));
        }
        ticket -= weight;
    }
    // Weights changed between building the set and now (only via set_weight, which rebuilds
    // the set); fall back to the last endpoint with a weight.
    set.endpoints.iter().rev().find(|e| e.weight() > 0).cloned()
}

#[cfg(test)]
mod tests;
