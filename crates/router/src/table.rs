//! Compiled route tables: built once by `compile`, queried by the proxy for every request.
//!
//! Owns the index that makes Gateway API precedence cheap to evaluate: one bucket per effective
//! hostname, and in each bucket a hash map of `Exact` paths, a sorted list of
//! `RegularExpression` paths and a path-element trie of `PathPrefix` paths, every candidate list
//! pre-sorted by [`MatchRank`]. A lookup does not allocate (see `host` for the one exception)
//! and its cost does not grow with the number of routes, only with the number of candidates
//! that share the request's host and path (and with the number of regex paths in a bucket,
//! which are tried in order).
//!
//! It knows nothing of Kubernetes objects, listeners or filters; what a match leads to is the
//! opaque `T` that `compile` supplies.

use std::collections::HashMap;

use crate::host::{HostMap, HostPattern, strip_port};
use crate::matching::{PathMatch, RequestView, RuleMatch, prefix_elements};
use crate::precedence::{MatchRank, RouteOrder};

#[cfg(test)]
mod tests;
mod trie;

use trie::PrefixTrie;

/// The rule a request matched.
#[derive(Debug)]
pub struct RouteHit<'a, T> {
    /// What `compile` attached to the match, typically the compiled rule.
    pub target: &'a T,
    /// The path condition that matched, for filters such as `ReplacePrefixMatch`.
    pub path_match: &'a PathMatch,
}

impl<T> Clone for RouteHit<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for RouteHit<'_, T> {}

/// One added match with its target.
#[derive(Debug, Clone)]
struct Route<T> {
    matching: RuleMatch,
    order: RouteOrder,
    target: T,
}

/// Collects matches, then sorts and indexes them in [`RouteTableBuilder::build`].
#[derive(Debug, Clone)]
pub struct RouteTableBuilder<T> {
    routes: Vec<Route<T>>,
    /// Indexes into `routes`, per effective hostname, in insertion order.
    buckets: HostMap<Vec<usize>>,
}

impl<T> Default for RouteTableBuilder<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> RouteTableBuilder<T> {
    /// An empty builder.
    pub fn new() -> Self {
        RouteTableBuilder {
            routes: Vec::new(),
            buckets: HostMap::new(),
        }
    }

    /// Adds one match of one rule.
    ///
    /// `hosts` are the route's effective hostnames, already intersected with the listener's by
    /// `compile`; an empty slice means [`HostPattern::Any`]. Duplicate hostnames are ignored.
    /// The target is stored once and shared by every hostname bucket, so `T` needs no `Clone`.
    pub fn add(
        &mut self,
        hosts: &[HostPattern],
        matching: RuleMatch,
        order: RouteOrder,
        target: T,
    ) {
        let index = self.routes.len();
        self.routes.push(Route {
            matching,
            order,
            target,
        });
        let any = [HostPattern::Any];
        let hosts = if hosts.is_empty() { &any[..] } else { hosts };
        for (position, host) in hosts.iter().enumerate() {
            if hosts[..position].contains(host) {
                continue;
            }
            self.buckets
                .entry_or_insert_with(host, Vec::new)
                .push(index);
        }
    }

    /// Sorts every bucket by precedence and builds the lookup structures.
    pub fn build(self) -> RouteTable<T> {
        let RouteTableBuilder {
            routes,
            buckets: members,
        } = self;
        let mut buckets = HostMap::new();
        for (host, indexes) in members.iter() {
            buckets.entry_or_insert_with(host, || Bucket::new(&routes, indexes));
        }
        RouteTable { routes, buckets }
    }
}

/// An immutable, indexed set of route matches; see [`RouteTable::find`].
///
/// `Send` and `Sync` whenever `T` is, so one table is shared by all workers behind an `Arc`.
#[derive(Clone)]
pub struct RouteTable<T> {
    routes: Vec<Route<T>>,
    buckets: HostMap<Bucket>,
}

/// The routes only, in insertion order: the buckets are derived from them (and print in hash
/// order, which would make two equal tables print differently).
impl<T: std::fmt::Debug> std::fmt::Debug for RouteTable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTable")
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTableBuilder::new().build()
    }
}

impl<T> RouteTable<T> {
    /// The winning match for `request`, or `None` if nothing matches (the proxy answers 404).
    ///
    /// Hostname precedence comes first (`HTTPRouteSpec.hostnames`): the exact-host bucket, then
    /// wildcard buckets from the longest suffix, then routes without hostnames. Within a bucket
    /// the first candidate in precedence order (Exact path, RegularExpression path by source
    /// length, PathPrefix by length, method, header count, query count, [`RouteOrder`]) whose
    /// conditions all hold wins; if none does, the next bucket is tried, since a rule that does
    /// not match cannot take precedence.
    ///
    /// Does not allocate, except for hosts longer than 253 bytes and for query regexes on
    /// values that need percent-decoding.
    pub fn find<'a>(&'a self, request: &RequestView<'_>) -> Option<RouteHit<'a, T>> {
        let host = strip_port(request.host);
        let path = if request.path.is_empty() {
            "/"
        } else {
            request.path
        };
        let index = self
            .buckets
            .candidates(host)
            .find_map(|bucket| bucket.find(path, request, &self.routes))?;
        let route = &self.routes[index];
        Some(RouteHit {
            target: &route.target,
            path_match: &route.matching.path,
        })
    }

    /// The target of every match, in insertion order (a target added for several matches is
    /// yielded once per match). For the control plane (linking state to a new table), not
    /// for request handling.
    pub fn targets(&self) -> impl Iterator<Item = &T> {
        self.routes.iter().map(|route| &route.target)
    }

    /// Number of matches added (each counted once, however many hostnames it has).
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether no match was added.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// All matches that share one effective hostname, indexed by path kind.
#[derive(Debug, Clone, Default)]
struct Bucket {
    exact: HashMap<Box<str>, Vec<usize>>,
    regex: Vec<usize>,
    prefix: PrefixTrie,
}

impl Bucket {
    /// Builds the bucket from indexes into `routes`.
    fn new<T>(routes: &[Route<T>], indexes: &[usize]) -> Self {
        let mut sorted = indexes.to_vec();
        // Stable, so identical ranks keep insertion order (compile makes RouteOrder unique).
        sorted.sort_by(|&a, &b| rank(routes, a).cmp(&rank(routes, b)));
        // Filling the sub-indexes in global rank order leaves each candidate list sorted.
        let mut bucket = Bucket::default();
        for index in sorted {
            match &routes[index].matching.path {
                PathMatch::Exact(path) => bucket.exact.entry(path.clone()).or_default().push(index),
                PathMatch::Regex(_) => bucket.regex.push(index),
                PathMatch::Prefix(prefix) => {
                    // A prefix without a leading `/` matches nothing (see `PathMatch::Prefix`).
                    if let Some(elements) = prefix_elements(prefix) {
                        bucket.prefix.insert(elements, index);
                    }
                }
            }
        }
        bucket
    }

    /// Index of the best match in this bucket; `path` is never empty.
    fn find<T>(&self, path: &str, request: &RequestView<'_>, routes: &[Route<T>]) -> Option<usize> {
        let holds = |index: usize| routes[index].matching.matches_besides_path(request);
        if let Some(found) = self
            .exact
            .get(path)
            .and_then(|list| list.iter().copied().find(|&index| holds(index)))
        {
            return Some(found);
        }
        if let Some(found) = self
            .regex
            .iter()
            .copied()
            .find(|&index| holds(index) && routes[index].matching.path.matches(path))
        {
            return Some(found);
        }
        self.prefix.find(path, holds)
    }
}

fn rank<T>(routes: &[Route<T>], index: usize) -> MatchRank<'_> {
    let route = &routes[index];
    MatchRank::new(&route.matching, &route.order)
}
