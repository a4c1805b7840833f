//! The compiled HTTPRoute `RequestMirror` filter: which backend gets copies of requests, and
//! which share of requests is copied.
//!
//! Plain data. Which requests of each window of `denominator` requests are copied is runtime
//! state, kept by the proxy (`proxy::mirror::window`) under the rule's stable identity.

use crate::BackendIndex;

/// One `RequestMirror` filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// The backend that receives the copies (index into `Snapshot::backends`).
    pub backend: BackendIndex,
    /// Which share of requests is mirrored.
    pub share: MirrorShare,
}

/// The share of requests a mirror copies, as a reduced fraction in `0..=1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

    /// The reduced denominator (the size of the sampling window).
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
        Mirror { backend, share }
    }
}

#[cfg(test)]
mod tests;
