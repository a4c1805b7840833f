//! Hostname patterns and the host-indexed map that both listener selection and route bucketing use.
//!
//! Owns Gateway API hostname semantics: exact names, `*.` wildcards (at least one extra label,
//! never the apex) and "no hostname" (`Any`), and the ordering "exact, then longest wildcard
//! suffix, then any" from `HTTPRouteSpec.hostnames` ("precedence must be given to rules from the
//! HTTPRoute with the largest number of characters in a matching non-wildcard hostname, then
//! characters in a matching hostname"). It does not intersect listener and route hostnames; that
//! is `compile`'s job.
//!
//! Lookups never allocate for hosts of at most [`MAX_INLINE_HOST`] bytes: the host is lowercased
//! into a stack buffer and every probe is a hash lookup by byte slice.

use std::collections::HashMap;
use std::fmt;

#[cfg(test)]
mod tests;

/// Longest request host (after port stripping) that is lowercased on the stack.
///
/// 253 is the DNS limit (RFC 1035 section 2.3.4, as text without the trailing dot) and the
/// `maxLength` of a Gateway API `Hostname`. Longer hosts still work but take a heap-allocating
/// slow path.
pub const MAX_INLINE_HOST: usize = 253;

/// A hostname pattern from a listener or a route.
///
/// Patterns are always lowercase when built through [`HostPattern::parse`]; matching against
/// request hosts is ASCII case-insensitive (RFC 4343).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum HostPattern {
    /// Matches exactly this host, e.g. `foo.example.com`.
    Exact(Box<str>),
    /// `*.{suffix}`: matches any host with at least one more label before `.{suffix}`, so
    /// `*.example.com` matches `a.example.com` and `a.b.example.com` but not `example.com`.
    /// The payload is the suffix without `*.`.
    Wildcard(Box<str>),
    /// No hostname constraint.
    Any,
}

impl HostPattern {
    /// Parses a Gateway API hostname: `*.x` becomes `Wildcard("x")`, `""` and `*` become `Any`,
    /// anything else `Exact`. The result is ASCII-lowercased and one trailing dot is removed, the
    /// same normalisation request hosts get. No validation is done here; `compile` rejects
    /// hostnames the Gateway API forbids (IP addresses, ports, invalid labels).
    pub fn parse(s: &str) -> HostPattern {
        let lower = s.to_ascii_lowercase();
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        match name {
            "" | "*" => HostPattern::Any,
            _ => match name.strip_prefix("*.") {
                Some(suffix) => HostPattern::Wildcard(suffix.into()),
                None => HostPattern::Exact(name.into()),
            },
        }
    }

    /// Whether a request host (without port) matches this pattern, ASCII case-insensitively.
    ///
    /// This is the straightforward definition; [`HostMap::candidates`] is the indexed
    /// equivalent used on the hot path.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(name) => host.eq_ignore_ascii_case(name),
            HostPattern::Wildcard(suffix) => {
                // At least one byte of label, then the dot, then the suffix.
                let Some(split) = host.len().checked_sub(suffix.len() + 1) else {
                    return false;
                };
                split > 0
                    && host.as_bytes()[split] == b'.'
                    && host.as_bytes()[split + 1..].eq_ignore_ascii_case(suffix.as_bytes())
            }
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Wildcard(suffix) => write!(f, "*.{suffix}"),
            HostPattern::Any => f.write_str("*"),
        }
    }
}

/// Removes the port from an HTTP authority (`Host` header or `:authority`).
///
/// Handles `host:port`, `[v6]:port` (the brackets are kept: `[::1]`) and a bare IPv6 literal
/// without brackets (returned unchanged, since its colons are not a port separator). Never
/// panics, never allocates.
#[allow(
    clippy::manual_contains,
    reason = "`contains` calls memchr, which costs more than a loop over a host's few bytes"
)]
pub fn strip_port(authority: &str) -> &str {
    // Byte loops: `str` searching goes through the pattern machinery, about a hundred
    // instructions more on every request (this runs twice per request).
    let bytes = authority.as_bytes();
    if bytes.first() == Some(&b'[') {
        // RFC 3986 section 3.2.2: IP-literal = "[" ... "]", optionally followed by ":" port.
        return match bytes.iter().position(|&b| b == b']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    match bytes.iter().rposition(|&b| b == b':') {
        // More than one colon and no brackets: a bare IPv6 address, not host:port.
        Some(colon) if !bytes[..colon].iter().any(|&b| b == b':') => &authority[..colon],
        _ => authority,
    }
}

/// A map keyed by [`HostPattern`] that answers "which entries apply to this request host, most
/// specific first" without allocating.
///
/// Used by the proxy to pick a listener by SNI or `Host`, and by [`crate::RouteTable`] to keep
/// one route bucket per effective hostname.
#[derive(Clone)]
pub struct HostMap<V> {
    /// Every entry in insertion order; the indexes below point into it.
    entries: Vec<(HostPattern, V)>,
    exact: HashMap<Box<[u8]>, usize>,
    wildcard: HashMap<Box<[u8]>, usize>,
    /// Suffix lengths present in `wildcard`, so a lookup hashes only suffixes that can exist.
    wildcard_lengths: LengthSet,
    any: Option<usize>,
}

/// The entries only, in insertion order: the indexes are derived from them (and print in
/// hash order, which would make two equal maps print differently).
impl<V: std::fmt::Debug> std::fmt::Debug for HostMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(pattern, value)| (pattern, value)))
            .finish()
    }
}

impl<V> Default for HostMap<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> HostMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        HostMap {
            entries: Vec::new(),
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            wildcard_lengths: LengthSet::default(),
            any: None,
        }
    }

    /// Makes room for `exact` more exact names and `wildcard` more wildcard suffixes at once
    /// (a table grown by doubling leaves what it replaced as holes in the allocator's pages).
    pub fn reserve(&mut self, exact: usize, wildcard: usize) {
        self.entries.reserve(exact + wildcard);
        self.exact.reserve(exact);
        self.wildcard.reserve(wildcard);
    }

    /// Returns the value for `pattern`, inserting `f()` first if there is none.
    pub fn entry_or_insert_with(&mut self, pattern: &HostPattern, f: impl FnOnce() -> V) -> &mut V {
        let index = match self.index_of(pattern) {
            Some(index) => index,
            None => {
                let index = self.entries.len();
                // Keys are lowercase because request hosts are lowercased before lookup; a
                // pattern built without `parse` may still carry uppercase.
                match pattern {
                    HostPattern::Exact(name) => {
                        let key = name.as_bytes().to_ascii_lowercase();
                        self.exact.insert(key.into_boxed_slice(), index);
                    }
                    HostPattern::Wildcard(suffix) => {
                        let key = suffix.as_bytes().to_ascii_lowercase();
                        self.wildcard.insert(key.into_boxed_slice(), index);
                        self.wildcard_lengths.insert(suffix.len());
                    }
                    HostPattern::Any => self.any = Some(index),
                }
                self.entries.push((pattern.clone(), f()));
                index
            }
        };
        &mut self.entries[index].1
    }

    /// The value stored for exactly this pattern (no matching is done).
    pub fn get(&self, pattern: &HostPattern) -> Option<&V> {
        self.index_of(pattern).map(|index| &self.entries[index].1)
    }

    /// Values whose pattern matches `host` (already without port), most specific first: the
    /// `Exact` entry, then `Wildcard` entries from the longest suffix to the shortest, then
    /// `Any`. ASCII case-insensitive; one trailing dot on `host` is ignored. Does not allocate
    /// unless `host` is longer than [`MAX_INLINE_HOST`].
    pub fn candidates<'a, 'h>(&'a self, host: &'h str) -> Candidates<'a, 'h, V> {
        let host = host.strip_suffix('.').unwrap_or(host);
        Candidates {
            map: self,
            host: LowerHost::new(host),
            stage: Stage::Exact,
        }
    }

    /// The most specific value for `host`, i.e. the first of [`HostMap::candidates`].
    pub fn most_specific(&self, host: &str) -> Option<&V> {
        self.candidates(host).next()
    }

    /// The entries, in insertion order, by value.
    pub fn into_entries(self) -> Vec<(HostPattern, V)> {
        self.entries
    }

    /// All entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&HostPattern, &V)> {
        self.entries.iter().map(|(pattern, value)| (pattern, value))
    }

    /// Number of distinct patterns.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no patterns.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn index_of(&self, pattern: &HostPattern) -> Option<usize> {
        let (map, name) = match pattern {
            HostPattern::Exact(name) => (&self.exact, name),
            HostPattern::Wildcard(suffix) => (&self.wildcard, suffix),
            HostPattern::Any => return self.any,
        };
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            map.get(name.as_bytes().to_ascii_lowercase().as_slice())
                .copied()
        } else {
            map.get(name.as_bytes()).copied()
        }
    }
}

/// Iterator returned by [`HostMap::candidates`]; owns the lowercased host, so it borrows only
/// the map.
pub struct Candidates<'a, 'h, V> {
    map: &'a HostMap<V>,
    host: LowerHost<'h>,
    stage: Stage,
}

#[derive(Clone, Copy)]
enum Stage {
    Exact,
    /// Next byte offset to search for the dot that starts a wildcard suffix.
    Wildcard(usize),
    Any,
    Done,
}

impl<'a, V> Iterator for Candidates<'a, '_, V> {
    type Item = &'a V;

    fn next(&mut self) -> Option<&'a V> {
        let map = self.map;
        let host = self.host.as_bytes();
        loop {
            match self.stage {
                Stage::Exact => {
                    self.stage = Stage::Wildcard(0);
                    if let Some(&index) = map.exact.get(host) {
                        return Some(&map.entries[index].1);
                    }
                }
                Stage::Wildcard(from) => {
                    if map.wildcard.is_empty() {
                        self.stage = Stage::Any;
                        continue;
                    }
                    // Leftmost dot first = longest suffix first. A dot at offset 0 would leave an
                    // empty label before the suffix, which a wildcard does not match.
                    let Some(dot) = host[from..]
                        .iter()
                        .position(|&b| b == b'.')
                        .map(|i| i + from)
                    else {
                        self.stage = Stage::Any;
                        continue;
                    };
                    self.stage = Stage::Wildcard(dot + 1);
                    let suffix = &host[dot + 1..];
                    if dot > 0
                        && map.wildcard_lengths.contains(suffix.len())
                        && let Some(&index) = map.wildcard.get(suffix)
                    {
                        return Some(&map.entries[index].1);
                    }
                }
                Stage::Any => {
                    self.stage = Stage::Done;
                    if let Some(index) = map.any {
                        return Some(&map.entries[index].1);
                    }
                }
                Stage::Done => return None,
            }
        }
    }
}

/// A request host, ASCII-lowercased: the request's own bytes when they have no uppercase (the
/// common case: no copy, and the iterator stays small to move), else a lowercased copy, on the
/// stack when short enough.
enum LowerHost<'h> {
    Borrowed(&'h [u8]),
    Inline {
        buffer: [u8; MAX_INLINE_HOST],
        len: u8,
    },
    Heap(Box<[u8]>),
}

impl<'h> LowerHost<'h> {
    fn new(host: &'h str) -> Self {
        let bytes = host.as_bytes();
        if !bytes.iter().any(u8::is_ascii_uppercase) {
            LowerHost::Borrowed(bytes)
        } else if bytes.len() <= MAX_INLINE_HOST {
            let mut buffer = [0u8; MAX_INLINE_HOST];
            for (dst, src) in buffer.iter_mut().zip(bytes) {
                *dst = src.to_ascii_lowercase();
            }
            let len = u8::try_from(bytes.len()).expect("MAX_INLINE_HOST fits in u8");
            LowerHost::Inline { buffer, len }
        } else {
            LowerHost::Heap(bytes.to_ascii_lowercase().into_boxed_slice())
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            LowerHost::Borrowed(bytes) => bytes,
            LowerHost::Inline { buffer, len } => &buffer[..usize::from(*len)],
            LowerHost::Heap(bytes) => bytes,
        }
    }
}

/// Set of small lengths (bitset up to 255) plus "some longer length exists".
#[derive(Default, Debug, Clone)]
struct LengthSet {
    bits: [u64; 4],
    has_long: bool,
}

impl LengthSet {
    fn insert(&mut self, len: usize) {
        match self.bits.get_mut(len / 64) {
            Some(word) => *word |= 1 << (len % 64),
            None => self.has_long = true,
        }
    }

    fn contains(&self, len: usize) -> bool {
        match self.bits.get(len / 64) {
            Some(word) => word & (1 << (len % 64)) != 0,
            None => self.has_long,
        }
    }
}
