//! The compiled HTTPRoute `RequestMirror` filter: which backend gets copies of requests, and
//! which share of requests is copied.
//!
//! The one piece of mutable state in a rule lives here: [`Mirror::fires`] draws requests
//! *without replacement* from windows of `denominator` requests, so that exactly `numerator`
//! of every window are mirrored, at random positions. Each request still has exactly the
//! configured chance of being mirrored, but the share converges within a window instead of
//! wandering like independent coin flips (with independent draws, 500 requests at 20 % land
//! outside ±5 % of the target more than half of the time). The state is per snapshot: a
//! reload starts a fresh window, which changes nothing a client can observe.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::BackendIndex;

/// One `RequestMirror` filter.
#[derive(Debug)]
pub struct Mirror {
    /// The backend that receives the copies (index into `Snapshot::backends`).
    pub backend: BackendIndex,
    /// Which share of requests is mirrored.
    pub share: MirrorShare,
    /// Window state: requests left (high 32 bits) and copies left (low 32 bits).
    window: AtomicU64,
}

/// The share of requests a mirror copies, as a reduced fraction in `0..=1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorShare {
    numerator: u32,
    denominator: u32,
}

impl MirrorShare {
    /// Every request (the default when neither `percent` nor `fraction` is set).
    pub const ALL: MirrorShare = MirrorShare {
        numerator: 1,
        denominator: 1,
    };

    /// `numerator / denominator`, reduced; `None` unless `numerator <= denominator` and
    /// `denominator > 0`.
    pub fn new(numerator: u32, denominator: u32) -> Option<MirrorShare> {
        if denominator == 0 || numerator > denominator {
            return None;
        }
        let divisor = gcd(numerator, denominator);
        Some(MirrorShare {
            numerator: numerator / divisor,
            denominator: denominator / divisor,
        })
    }

    /// The reduced numerator.
    pub fn numerator(self) -> u32 {
        self.numerator
    }

    /// The reduced denominator (the window size of [`Mirror::fires`]).
    pub fn denominator(self) -> u32 {
        self.denominator
    }

    /// Whether no request is mirrored.
    pub fn is_never(self) -> bool {
        self.numerator == 0
    }

    /// Whether every request is mirrored.
    pub fn is_always(self) -> bool {
        self.numerator == self.denominator
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

impl Mirror {
    /// A mirror to `backend` copying `share` of the requests.
    pub fn new(backend: BackendIndex, share: MirrorShare) -> Mirror {
        Mirror {
            backend,
            share,
            window: AtomicU64::new(0),
        }
    }

    /// Whether this request is mirrored. `random` is a uniformly random number the caller
    /// draws (this crate has no source of randomness). Lock-free; safe from any thread.
    pub fn fires(&self, random: u64) -> bool {
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
                slots = self.share.denominator;
                copies = self.share.numerator;
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
