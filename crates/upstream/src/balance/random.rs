//! Weighted random: each eligible endpoint with probability proportional to its effective
//! weight.

use std::sync::Arc;

use rand::Rng;

use super::weighting::Weigher;
use crate::endpoint::EndpointRuntime;

/// Index of a random endpoint by effective weight; `None` when none is eligible.
pub(super) fn pick<R: Rng>(
    endpoints: &[Arc<EndpointRuntime>],
    weigher: &Weigher,
    rng: &mut R,
) -> Option<usize> {
    let total: u64 = endpoints.iter().map(|e| weigher.weight(e)).sum();
    if total == 0 {
        return None;
    }
    weighted_index(endpoints, weigher, rng.random_range(0..total), None)
}

/// The endpoint `ticket` falls on when effective weights are laid end to end, leaving out
/// `skip`. `None` when weights shrank since the ticket was drawn (a concurrent weight change).
pub(super) fn weighted_index(
    endpoints: &[Arc<EndpointRuntime>],
    weigher: &Weigher,
    mut ticket: u64,
    skip: Option<usize>,
) -> Option<usize> {
    for (index, endpoint) in endpoints.iter().enumerate() {
        if Some(index) == skip {
            continue;
        }
        let weight = weigher.weight(endpoint);
        if ticket < weight {
            return Some(index);
        }
        ticket -= weight;
    }
    None
}
