//! Weighted round robin over a precomputed, interleaved schedule.
//!
//! The schedule is built once per endpoint set by stride scheduling: endpoint `i` is due at
//! `(k + 1/2) / weight_i` for its `k`-th slot, and slots are laid out in order of due time, so
//! weights 5:1:1 give `a a a b c a a`, never a burst of five. A pick takes the next slot
//! (one atomic increment). Slots of unavailable endpoints are skipped by drawing the next
//! slot; an endpoint in slow start keeps a slot with probability equal to its ramp.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;

use super::random;
use super::weighting::{FULL_RAMP, Weigher};
use crate::endpoint::{EndpointRuntime, EndpointSet};

/// Longest schedule; larger weight sums are scaled down to about this many slots.
const MAX_SLOTS: u64 = 4096;

/// The interleaved schedule of `endpoints` by their weights (indices into `endpoints`).
pub(super) fn schedule(endpoints: &[Arc<EndpointRuntime>]) -> Box<[u32]> {
    let weights = scaled_weights(endpoints);
    let slots: u64 = weights.iter().sum();
    let mut due: BinaryHeap<Reverse<Slot>> = weights
        .iter()
        .enumerate()
        .filter(|(_, weight)| **weight > 0)
        .map(|(index, weight)| {
            Reverse(Slot {
                taken: 0,
                weight: *weight,
                index: u32::try_from(index).unwrap_or(u32::MAX),
            })
        })
        .collect();
    let mut schedule = Vec::with_capacity(usize::try_from(slots).unwrap_or(0));
    for _ in 0..slots {
        let Some(Reverse(mut slot)) = due.pop() else {
            break;
        };
        schedule.push(slot.index);
        slot.taken += 1;
        if slot.taken < slot.weight {
            due.push(Reverse(slot));
        }
    }
    schedule.into_boxed_slice()
}

/// Weights divided by their greatest common divisor, and scaled to about [`MAX_SLOTS`] (never
/// below 1 for a non-zero weight) when their sum is larger.
fn scaled_weights(endpoints: &[Arc<EndpointRuntime>]) -> Vec<u64> {
    let weights: Vec<u64> = endpoints.iter().map(|e| e.weight()).collect();
    let divisor = weights.iter().fold(0, |acc, w| gcd(acc, *w)).max(1);
    let sum: u64 = weights.iter().map(|w| w / divisor).sum();
    weights
        .iter()
        .map(|w| w / divisor)
        .map(|w| {
            if w == 0 || sum <= MAX_SLOTS {
                w
            } else {
                (u128::from(w) * u128::from(MAX_SLOTS) / u128::from(sum)).max(1) as u64
            }
        })
        .collect()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// One endpoint's next slot, due at `(taken + 1/2) / weight`.
#[derive(Debug, PartialEq, Eq)]
struct Slot {
    taken: u64,
    weight: u64,
    index: u32,
}

impl Ord for Slot {
    fn cmp(&self, other: &Slot) -> CmpOrdering {
        // (2 taken + 1) / (2 weight), compared without division.
        let mine = u128::from(2 * self.taken + 1) * u128::from(other.weight);
        let theirs = u128::from(2 * other.taken + 1) * u128::from(self.weight);
        mine.cmp(&theirs).then(self.index.cmp(&other.index))
    }
}

impl PartialOrd for Slot {
    fn partial_cmp(&self, other: &Slot) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

/// Index of the next scheduled endpoint that may take the request; weighted random when every
/// slot drawn was declined (all in slow start, or availability changed meanwhile).
pub(super) fn pick<R: Rng>(
    set: &EndpointSet,
    weigher: &Weigher,
    cursor: &AtomicUsize,
    rng: &mut R,
) -> Option<usize> {
    let endpoints = set.endpoints();
    let schedule = &set.tables.schedule;
    for _ in 0..schedule.len() {
        let slot = cursor.fetch_add(1, Ordering::Relaxed) % schedule.len();
        let index = schedule[slot] as usize;
        let Some(endpoint) = endpoints.get(index) else {
            continue;
        };
        if !weigher.is_eligible(endpoint) {
            continue;
        }
        let ramp = weigher.ramp(endpoint);
        if ramp < FULL_RAMP && rng.random_range(0..FULL_RAMP) >= ramp {
            continue;
        }
        return Some(index);
    }
    random::pick(endpoints, weigher, rng)
}
