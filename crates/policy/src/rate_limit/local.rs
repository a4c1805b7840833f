//! Local (per-replica) buckets: GCRA over a sharded map.
//!
//! Hand-written rather than `governor`'s keyed limiter because we need, per decision, what
//! governor does not give together: the remaining quota of an admitted request (for the
//! `RateLimit` header), a refund when a later rule refuses the request, a hard cap on keys per
//! rule, and a clock the tests drive (tokio's paused time). The algorithm is a few lines
//! (`gcra.rs`); what matters is the store:
//!
//! - **No global lock.** Buckets live in [`SHARDS`] mutex-guarded maps (each on its own cache
//!   lines, so cores working on different shards do not contend); a request locks one shard
//!   per rule it hits, for a hash-map lookup and an integer update (no await, no allocation
//!   once a key exists). The shard is chosen by the bucket's key hash, so one hot rule spreads
//!   over every shard.
//! - **Bounded memory.** A bucket is one `u64` (its TAT) under a `u64` key; a bucket whose TAT
//!   has passed is identical to a fresh one, so forgetting it loses nothing. Each shard sweeps a
//!   rule's idle buckets every [`SWEEP_EVERY`] on access, and at once when the rule reaches its
//!   share of [`MAX_KEYS_PER_RULE`] (100,000 keys per rule, 2 to 4 MB). When a flood of distinct
//!   keys keeps every slot busy, a new key counts in the shard's **overflow bucket** for that rule
//!   (one per shard): the keys that found no room share [`SHARDS`] buckets, so the flood as a
//!   whole gets at most `SHARDS` times the limit while memory stays fixed. A rule nobody hits
//!   any more keeps its (capped) buckets until it is hit again or leaves the config.
//! - **Rules come and go.** Buckets are grouped by a hash of the rule id;
//!   [`LocalBuckets::retain`] drops the groups of rules that left the config.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};

use super::gcra::{self, Rate, Verdict};

/// Number of shards (a power of two).
pub(crate) const SHARDS: usize = 64;
/// Local buckets one rule may hold in one replica (split evenly across the shards; new keys
/// beyond a shard's share count in that shard's overflow bucket).
pub const MAX_KEYS_PER_RULE: usize = 100_000;
/// Keys one rule may hold in one shard.
const MAX_KEYS_PER_SHARD: usize = MAX_KEYS_PER_RULE / SHARDS;
/// How often a shard forgets a rule's idle buckets (nanoseconds): 10 s.
pub(crate) const SWEEP_EVERY: u64 = 10_000_000_000;
/// A full rule's shard sweeps at most this often (nanoseconds): 100 ms. Between sweeps, new
/// keys go to the overflow bucket rather than rescanning a full map on every request.
const FULL_SWEEP_EVERY: u64 = 100_000_000;

/// Which bucket: the rule's hash and the key's hash (both from [`LocalBuckets::hasher`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BucketId {
    /// Hash of the rule id.
    pub(crate) rule: u64,
    /// Hash of the rule id and the distinct values.
    pub(crate) key: u64,
}

/// Every local bucket of this replica.
pub(crate) struct LocalBuckets {
    /// Keyed with random keys per process: clients cannot aim at one bucket or one shard.
    hasher: RandomState,
    shards: Box<[Padded]>,
}

/// One shard, aligned so that no two shards share a cache line (128 bytes: adjacent-line
/// prefetching pairs lines on x86-64).
#[repr(align(128))]
struct Padded(Mutex<Shard>);

#[derive(Default)]
struct Shard {
    rules: HashMap<u64, RuleBuckets, BuildHasherDefault<PremixedHasher>>,
}

struct RuleBuckets {
    /// TAT by key hash.
    tats: HashMap<u64, u64, BuildHasherDefault<PremixedHasher>>,
    /// The bucket of new keys that found no room (`None`: none yet).
    overflow: Option<u64>,
    last_sweep: u64,
}

impl LocalBuckets {
    /// An empty store.
    pub(crate) fn new() -> LocalBuckets {
        LocalBuckets {
            hasher: RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| Padded(Mutex::new(Shard::default())))
                .collect(),
        }
    }

    /// A hasher for rule ids and keys (this process's random keys).
    pub(crate) fn hasher(&self) -> impl Hasher + use<> {
        self.hasher.build_hasher()
    }

    /// The hash of a rule id alone (groups its buckets).
    pub(crate) fn rule_hash(&self, rule_id: &str) -> u64 {
        self.hasher.hash_one(rule_id)
    }

    /// Decides one request at `now` (nanoseconds) in bucket `id`; an admitted request is counted.
    pub(crate) fn acquire(&self, id: BucketId, rate: Rate, now: u64) -> Verdict {
        let mut shard = self.shard(id.key);
        let rule = shard.rules.entry(id.rule).or_insert_with(|| RuleBuckets {
            tats: HashMap::default(),
            overflow: None,
            last_sweep: now,
        });
        rule.sweep_if_due(now);
        let slot = if rule.tats.contains_key(&id.key) || rule.has_room(now) {
            rule.tats.entry(id.key).or_insert(now)
        } else {
            rule.overflow.get_or_insert(now)
        };
        let (verdict, new_tat) = gcra::decide(Some(*slot), now, rate);
        if let Some(new_tat) = new_tat {
            *slot = new_tat;
        }
        verdict
    }

    /// Gives back a request [`LocalBuckets::acquire`] admitted in bucket `id` (a later rule
    /// refused the request). If the bucket was forgotten meanwhile, there is nothing to give back.
    pub(crate) fn refund(&self, id: BucketId, rate: Rate, now: u64) {
        let mut shard = self.shard(id.key);
        let Some(rule) = shard.rules.get_mut(&id.rule) else {
            return;
        };
        let slot = match rule.tats.get_mut(&id.key) {
            Some(tat) => Some(tat),
            None => rule.overflow.as_mut(),
        };
        if let Some(tat) = slot {
            *tat = gcra::refund(*tat, now, rate);
        }
    }

    /// Forgets the buckets of every rule whose id is not in `live`.
    pub(crate) fn retain(&self, live: &HashSet<Arc<str>>) {
        let live: HashSet<u64> = live.iter().map(|id| self.rule_hash(id)).collect();
        for shard in &self.shards {
            let mut shard = shard.0.lock().unwrap_or_else(PoisonError::into_inner);
            shard.rules.retain(|rule, _| live.contains(rule));
        }
    }

    /// Buckets held for the rule with hash `rule` (tests and debugging).
    pub(crate) fn keys_of(&self, rule: u64) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let shard = shard.0.lock().unwrap_or_else(PoisonError::into_inner);
                shard.rules.get(&rule).map_or(0, |rule| rule.tats.len())
            })
            .sum()
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, Shard> {
        // The top bits choose the shard; the maps inside remix the whole hash.
        let index = (key >> (64 - SHARDS.trailing_zeros())) as usize;
        // `index < SHARDS` by construction (the top log2(SHARDS) bits).
        let shard = &self.shards[index];
        // A panic while holding a shard cannot leave a bucket half-written (each update is one
        // integer store), so a poisoned lock is still consistent.
        shard.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RuleBuckets {
    fn sweep_if_due(&mut self, now: u64) {
        if now.saturating_sub(self.last_sweep) >= SWEEP_EVERY {
            self.sweep(now);
        }
    }

    /// Whether a new key may have its own bucket, sweeping idle ones first if the rule is full.
    fn has_room(&mut self, now: u64) -> bool {
        if self.tats.len() < MAX_KEYS_PER_SHARD {
            return true;
        }
        if now.saturating_sub(self.last_sweep) >= FULL_SWEEP_EVERY {
            self.sweep(now);
        }
        self.tats.len() < MAX_KEYS_PER_SHARD
    }

    fn sweep(&mut self, now: u64) {
        self.tats.retain(|_, tat| *tat > now);
        if self.overflow.is_some_and(|tat| tat <= now) {
            self.overflow = None;
        }
        self.last_sweep = now;
    }
}

/// A hasher for keys that are already uniform 64-bit hashes: one multiply spreads them over
/// both the low bits (bucket index) and the high bits (control bytes) of the map.
#[derive(Default)]
struct PremixedHasher(u64);

impl Hasher for PremixedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by the maps above; fold anything else in anyway.
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(32);
    }
}
