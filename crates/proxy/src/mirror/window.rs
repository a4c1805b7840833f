//! [`MirrorWindow`]: which requests of a `RequestMirror` filter are copied.
//!
//! Draws requests *without replacement* from windows of `denominator` requests, so that
//! exactly `numerator` of every window are mirrored, at random positions. Each request still
//! has exactly the configured chance of being mirrored, but the share converges within a
//! window instead of wandering like independent coin flips (with independent draws, 500
//! requests at 20 % land outside ±5 % of the target more than half of the time).
//!
//! Runtime state: the share is a setting of the snapshot (`snapshot::MirrorShare`); the window
//! is kept by [`RuleStates`](crate::rule_state::RuleStates) under the rule's stable identity,
//! so a reload that keeps the mirror keeps its window.

use std::sync::atomic::{AtomicU64, Ordering};

use snapshot::MirrorShare;

/// The sampling window of one mirror.
#[derive(Debug)]
pub(crate) struct MirrorWindow {
    share: MirrorShare,
    /// Requests left (high 32 bits) and copies left (low 32 bits).
    window: AtomicU64,
}

impl MirrorWindow {
    /// A fresh window for `share`.
    pub(crate) fn new(share: MirrorShare) -> MirrorWindow {
        MirrorWindow {
            share,
            window: AtomicU64::new(0),
        }
    }

    /// Whether this request is mirrored. `random` is a uniformly random number the caller
    /// draws (tests pass deterministic numbers). Lock-free; safe from any thread.
    pub(crate) fn fires(&self, random: u64) -> bool {
        if self.share.is_always() {
            return true;
        }
        if self.share.is_never() {
            return false;
        }
        let mut current = self.window.load(Ordering::Relaxed);
        loop {
            let (mut slots, mut copies) = unpack(current);
            if slots == 0 {
                slots = self.share.denominator();
                copies = self.share.numerator();
            }
            // Sampling without replacement: this slot takes a copy with probability
            // copies / slots, so each window ends with exactly `numerator` copies.
            let fire = random % u64::from(slots) < u64::from(copies);
            let next = pack(slots - 1, copies - u32::from(fire));
            match self.window.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return fire,
                Err(actual) => current = actual,
            }
        }
    }
}

fn pack(slots: u32, copies: u32) -> u64 {
    (u64::from(slots) << 32) | u64::from(copies)
}

fn unpack(window: u64) -> (u32, u32) {
    ((window >> 32) as u32, window as u32)
}

#[cfg(test)]
mod tests;
