//! Power of two choices: draw two distinct endpoints by effective weight, send to the one with
//! the lower cost per unit of effective weight (ties broken at random). Used by PeakEWMA and least-request, which differ only in cost.
//!
//! Weights act twice: in the draw of candidates and as the divisor of cost. Under load,
//! in-flight requests settle in proportion to weight; with few requests in flight the heavier
//! endpoint takes more than its weight share (3:1 idle endpoints: the weight-3 one always wins
//! a tie of raw costs). Exact weight shares are RoundRobin's and Random's job.
//!
//! Two random candidates instead of the global minimum: no endpoint is ever a herd target for
//! every gateway at once, and a pick stays O(n) without sorting.

use std::sync::Arc;

use rand::Rng;

use super::random::weighted_index;
use super::weighting::Weigher;
use crate::endpoint::EndpointRuntime;

/// Index of the cheaper of two weighted random candidates; `None` when none is eligible.
pub(super) fn pick<R: Rng>(
    endpoints: &[Arc<EndpointRuntime>],
    weigher: &Weigher,
    rng: &mut R,
    cost: impl Fn(&EndpointRuntime) -> f64,
) -> Option<usize> {
    let total: u64 = endpoints.iter().map(|e| weigher.weight(e)).sum();
    if total == 0 {
        return None;
    }
    let first = weighted_index(endpoints, weigher, rng.random_range(0..total), None)?;
    let rest = total.saturating_sub(weigher.weight(&endpoints[first]));
    if rest == 0 {
        return Some(first); // the only eligible endpoint
    }
    let Some(second) = weighted_index(endpoints, weigher, rng.random_range(0..rest), Some(first))
    else {
        return Some(first);
    };
    // Cost per unit of effective weight: under load, in-flight requests spread in proportion
    // to weight (and slow start), not just the draw of candidates.
    let per_weight = |index: usize| {
        let endpoint = &endpoints[index];
        cost(endpoint) / weigher.weight(endpoint) as f64
    };
    let (first_cost, second_cost) = (per_weight(first), per_weight(second));
    Some(if first_cost < second_cost {
        first
    } else if second_cost < first_cost {
        second
    } else if rng.random_bool(0.5) {
        first
    } else {
        second
    })
}
