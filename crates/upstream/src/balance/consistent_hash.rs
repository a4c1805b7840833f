//! Consistent hashing on a ring: each endpoint owns points on a 64-bit ring (more points for
//! more weight), a request goes to the owner of the first point at or after its key's hash.
//!
//! Removing one of N endpoints moves only the keys it owned (about 1/N); adding one takes
//! about 1/(N+1) from the others. Points are hashed from the endpoint's address, so an
//! endpoint keeps its points across endpoint-set changes, and every gateway replica builds the
//! same ring (FNV-1a plus a 64-bit finaliser, stable across builds, unlike std's hasher).
//!
//! Unavailable endpoints are passed over (clockwise to the next owner). An endpoint in slow
//! start takes a key only when the key's own hash falls within its ramp, so during the ramp
//! a growing, stable subset of its keys moves to it.
//!
//! Keys: a header's value, the client IP, or a cookie's value. When the header or cookie is
//! missing the client IP is hashed instead. For a cookie key the proxy makes the cookie up
//! first when the request has none (and sets it on the response), so the fallback is rare.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::PickContext;
use super::weighting::{FULL_RAMP, Weigher};
use crate::endpoint::EndpointRuntime;
use snapshot::backend::policy::HashKey;

/// Ring points of the heaviest endpoint; lighter ones get proportionally fewer (at least 1).
const POINTS_PER_ENDPOINT: u64 = 160;

/// The ring of one endpoint set: points sorted by hash, each naming an endpoint index.
#[derive(Debug, Default)]
pub(crate) struct HashRing {
    points: Box<[(u64, u32)]>,
}

impl HashRing {
    /// The ring of `endpoints` by their current weights.
    pub(crate) fn new(endpoints: &[Arc<EndpointRuntime>]) -> HashRing {
        let heaviest = endpoints.iter().map(|e| e.weight()).max().unwrap_or(0);
        let mut points = Vec::new();
        for (index, endpoint) in endpoints.iter().enumerate() {
            let weight = endpoint.weight();
            if weight == 0 {
                continue;
            }
            let count = (u128::from(POINTS_PER_ENDPOINT) * u128::from(weight)
                / u128::from(heaviest))
            .max(1) as u64;
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            for point in 0..count {
                points.push((point_hash(endpoint.addr(), point), index));
            }
        }
        points.sort_unstable();
        HashRing {
            points: points.into_boxed_slice(),
        }
    }

    /// Endpoint indices clockwise from `hash`, each point once.
    fn clockwise(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let start = self.points.partition_point(|(point, _)| *point < hash);
        let (before, after) = self.points.split_at(start);
        after.iter().chain(before).map(|(_, index)| *index as usize)
    }
}

/// Index of the endpoint owning the request's key; `None` when none is eligible.
pub(super) fn pick(
    endpoints: &[Arc<EndpointRuntime>],
    ring: &HashRing,
    weigher: &Weigher,
    key: &HashKey,
    context: &PickContext<'_>,
) -> Option<usize> {
    let hash = key_hash(key, context);
    ring.clockwise(hash).find(|&index| {
        let Some(endpoint) = endpoints.get(index) else {
            return false;
        };
        if !weigher.is_eligible(endpoint) {
            return false;
        }
        let ramp = weigher.ramp(endpoint);
        // Keyed by address, not index: a key's verdict holds across endpoint-set changes.
        ramp >= FULL_RAMP || mix(hash ^ point_hash(endpoint.addr(), u64::MAX)) % FULL_RAMP < ramp
    })
}

/// The hash of the request's key (see the module doc for fallbacks).
pub(super) fn key_hash(key: &HashKey, context: &PickContext<'_>) -> u64 {
    let value = match key {
        HashKey::Header(name) => context.headers.get(name).map(|v| v.as_bytes()),
        HashKey::SourceIp => None,
        HashKey::Cookie { name, .. } => cookie(context.headers, name),
    };
    match value {
        Some(bytes) => mix(fnv1a(bytes)),
        None => ip_hash(context.client),
    }
}

fn ip_hash(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => mix(fnv1a(&v4.octets())),
        IpAddr::V6(v6) => mix(fnv1a(&v6.octets())),
    }
}

/// The value of cookie `name` in the request's `Cookie` headers (RFC 6265 §5.4: `a=1; b=2`).
fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let equals = pair.iter().position(|b| *b == b'=')?;
            let (key, value) = pair.split_at(equals);
            (key.trim_ascii() == name.as_bytes()).then(|| value[1..].trim_ascii())
        })
}

fn point_hash(addr: SocketAddr, point: u64) -> u64 {
    let mut bytes = [0u8; 16 + 2 + 8];
    match addr.ip() {
        IpAddr::V4(v4) => bytes[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => bytes[..16].copy_from_slice(&v6.octets()),
    }
    bytes[16..18].copy_from_slice(&addr.port().to_be_bytes());
    bytes[18..].copy_from_slice(&point.to_le_bytes());
    mix(fnv1a(&bytes))
}

/// FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The splitmix64 finaliser: spreads FNV's output over the whole ring.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
