//! [`ContentHash`]: a 128-bit hash of a file's or a document's bytes, to tell "same bytes"
//! without keeping the bytes, or of an object's key, to tell "same key" without keeping it.
//!
//! Bytes (and a file's sequence of document hashes) are hashed with XXH3-128 under a random
//! 192-byte secret; keys (a few short strings) with two SipHash-1-3 hashers (the standard
//! library's), each with its own random keys. The secret and keys are chosen per
//! [`ContentHasher`], that is per file source, so a config cannot be written to collide without
//! knowing them. Not a cryptographic commitment: it stands in for comparing bytes we have read
//! with bytes we read before, and whoever could make two documents collide writes the config
//! anyway (a collision would leave an edit unread until the file changes again). XXH3 rather
//! than SipHash for the bytes: a rescan hashes every document of the edited file, and
//! SipHash's two passes over a 3.7 MB file took 2 ms, a fifth of the rescan.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

use model::ObjectKey;

/// A 128-bit hash of some bytes, from one [`ContentHasher`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ContentHash(u64, u64);

/// Hashes bytes into [`ContentHash`]es; hashes from different hashers do not compare.
#[derive(Debug)]
pub(crate) struct ContentHasher {
    first: RandomState,
    second: RandomState,
    /// XXH3's secret for [`ContentHasher::hash`].
    secret: Box<[u8; SECRET_SIZE]>,
}

/// The XXH3 secret's size: the default secret's (at least 136 bytes are required).
const SECRET_SIZE: usize = 192;

impl ContentHasher {
    /// A hasher with fresh random keys.
    pub(crate) fn new() -> ContentHasher {
        // Each `RandomState::new` on a thread has different keys.
        let first = RandomState::new();
        let second = RandomState::new();
        // Random bytes from a third set of the standard library's random keys.
        let words = RandomState::new();
        let mut secret = Box::new([0_u8; SECRET_SIZE]);
        for (index, chunk) in (0_u64..).zip(secret.chunks_exact_mut(8)) {
            chunk.copy_from_slice(&words.hash_one(index).to_le_bytes());
        }
        ContentHasher {
            first,
            second,
            secret,
        }
    }

    /// The hash of `bytes`.
    pub(crate) fn hash(&self, bytes: &[u8]) -> ContentHash {
        let hash = xxhash_rust::xxh3::xxh3_128_with_secret(bytes, &self.secret[..]);
        // The two halves; truncation is the point.
        #[allow(clippy::cast_possible_truncation)]
        ContentHash(hash as u64, (hash >> 64) as u64)
    }

    /// The hash of an object's key (kind, namespace, name).
    pub(crate) fn hash_key(&self, key: &ObjectKey) -> ContentHash {
        ContentHash(self.first.hash_one(key), self.second.hash_one(key))
    }

    /// One hash for a sequence of hashes: of a file from its documents' hashes. The hashes'
    /// bytes in one buffer, hashed as bytes are (SipHash over the 15,000 hashes of a big file
    /// took 3 % of its rescan).
    pub(crate) fn combine<'a>(
        &self,
        hashes: impl ExactSizeIterator<Item = &'a ContentHash>,
    ) -> ContentHash {
        let mut bytes = Vec::with_capacity(hashes.len() * 16);
        for ContentHash(first, second) in hashes {
            bytes.extend_from_slice(&first.to_le_bytes());
            bytes.extend_from_slice(&second.to_le_bytes());
        }
        self.hash(&bytes)
    }
}

impl Default for ContentHasher {
    /// A hasher with fresh random keys ([`ContentHasher::new`]).
    fn default() -> ContentHasher {
        ContentHasher::new()
    }
}

/// A map keyed by [`ContentHash`], which is already a hash: the map uses its bits as they are
/// rather than hashing them again.
pub(crate) type ContentHashMap<V> = HashMap<ContentHash, V, BuildHasherDefault<PassThrough>>;

/// A set of [`ContentHash`]es, using their bits as they are.
pub(crate) type ContentHashSet = HashSet<ContentHash, BuildHasherDefault<PassThrough>>;

/// A [`Hasher`] for keys that are hashes already: keeps the 64-bit words it is given.
#[derive(Debug, Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `ContentHash` (two `write_u64`); mixes anything else in anyway.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = self.0.rotate_left(32) ^ word;
    }
}

#[cfg(test)]
mod tests;
