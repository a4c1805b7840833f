//! A fast, non-cryptographic hasher for maps keyed by small values we produce ourselves
//! (endpoint addresses, indexes), on the request path. Not for keys a client controls: it
//! offers no protection against chosen collisions.

use std::hash::{BuildHasherDefault, Hasher};

/// Multiply-rotate hashing (the FxHash scheme rustc uses), one word at a time.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        for &byte in chunks.remainder() {
            self.add(u64::from(byte));
        }
    }

    #[inline]
    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    #[inline]
    fn write_u16(&mut self, value: u16) {
        self.add(u64::from(value));
    }

    #[inline]
    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// `HashMap<K, V, FastHashBuilder>`: a map hashed with [`FastHasher`].
pub type FastHashBuilder = BuildHasherDefault<FastHasher>;

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::hash::BuildHasher;
    use std::net::SocketAddr;

    use super::*;

    #[test]
    fn different_endpoints_hash_differently_and_the_map_finds_them() {
        let build = FastHashBuilder::default();
        let a: SocketAddr = "10.0.0.1:8080".parse().expect("address");
        let b: SocketAddr = "10.0.0.2:8080".parse().expect("address");
        let c: SocketAddr = "10.0.0.1:8081".parse().expect("address");
        assert_ne!(build.hash_one(a), build.hash_one(b));
        assert_ne!(build.hash_one(a), build.hash_one(c));
        assert_eq!(build.hash_one(a), build.hash_one(a));
        let mut map: HashMap<SocketAddr, u32, FastHashBuilder> = HashMap::default();
        for port in 0..1000u16 {
            map.insert(SocketAddr::from(([127, 0, 0, 1], port)), u32::from(port));
        }
        for port in 0..1000u16 {
            assert_eq!(
                map.get(&SocketAddr::from(([127, 0, 0, 1], port))),
                Some(&u32::from(port))
            );
        }
    }
}
