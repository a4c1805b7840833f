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
use std::sync::Arc;

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

/// One added match with its target. Shared (`Arc`) by the hostnames it was added for, and
/// by the tables that keep it from one config to the next.
#[derive(Debug)]
pub struct RouteEntry<T> {
    matching: RuleMatch,
    order: RouteOrder,
    target: T,
}

impl<T> RouteEntry<T> {
    /// A match, its precedence tie-breaker and what it leads to.
    pub fn new(matching: RuleMatch, order: RouteOrder, target: T) -> RouteEntry<T> {
        RouteEntry {
            matching,
            order,
            target,
        }
    }

    /// What the match leads to.
    pub fn target(&self) -> &T {
        &self.target
    }

    /// The conditions of the match (for explaining a lookup, not for request handling).
    pub fn matching(&self) -> &RuleMatch {
        &self.matching
    }

    /// The precedence tie-breaker of the match.
    pub fn order(&self) -> &RouteOrder {
        &self.order
    }

    /// Whether `hit` (from [`RouteTable::find`]) is this entry: the hit points into the
    /// entry's own path condition, so this is an identity test, not an equality test.
    pub fn is_hit(&self, hit: &RouteHit<'_, T>) -> bool {
        std::ptr::eq(hit.path_match, &self.matching.path)
    }
}

/// The matches of one effective hostname, indexed for lookup. A table is a map of these, so a
/// change rebuilds only the hostnames it touches ([`RouteTable::with_hosts`]).
#[derive(Debug)]
pub struct HostRoutes<T> {
    routes: Vec<Arc<RouteEntry<T>>>,
    bucket: Bucket,
}

impl<T> HostRoutes<T> {
    /// Sorts and indexes the matches of one hostname, given in insertion order (which breaks
    /// ties of equal precedence).
    pub fn new(mut routes: Vec<Arc<RouteEntry<T>>>) -> HostRoutes<T> {
        routes.shrink_to_fit();
        let bucket = Bucket::new(&routes);
        HostRoutes { routes, bucket }
    }

    /// Its matches, in insertion order.
    pub fn entries(&self) -> &[Arc<RouteEntry<T>>] {
        &self.routes
    }
}

/// Collects matches, then sorts and indexes them in [`RouteTableBuilder::build`].
#[derive(Debug)]
pub struct RouteTableBuilder<T> {
    /// The matches of each effective hostname, in insertion order.
    hosts: HostMap<Vec<Arc<RouteEntry<T>>>>,
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
            hosts: HostMap::new(),
        }
    }

    /// Adds one match of one rule.
    ///
    /// `hosts` are the route's effective hostnames, already intersected with the listener's by
    /// `compile`; an empty slice means [`HostPattern::Any`]. Duplicate hostnames are ignored.
    /// The target is stored once and shared by every hostname, so `T` needs no `Clone`.
    pub fn add(
        &mut self,
        hosts: &[HostPattern],
        matching: RuleMatch,
        order: RouteOrder,
        target: T,
    ) {
        self.add_entry(hosts, &Arc::new(RouteEntry::new(matching, order, target)));
    }

    /// Adds a match already made (see [`RouteEntry::new`]) for these hostnames.
    pub fn add_entry(&mut self, hosts: &[HostPattern], entry: &Arc<RouteEntry<T>>) {
        let any = [HostPattern::Any];
        let hosts = if hosts.is_empty() { &any[..] } else { hosts };
        for (position, host) in hosts.iter().enumerate() {
            if hosts[..position].contains(host) {
                continue;
            }
            self.hosts
                .entry_or_insert_with(host, Vec::new)
                .push(Arc::clone(entry));
        }
    }

    /// Sorts every hostname's matches by precedence and builds the lookup structures.
    pub fn build(self) -> RouteTable<T> {
        let mut hosts = HostMap::new();
        for (host, routes) in self.hosts.into_entries() {
            hosts.entry_or_insert_with(&host, || Arc::new(HostRoutes::new(routes)));
        }
        RouteTable { hosts }
    }
}

/// An immutable, indexed set of route matches; see [`RouteTable::find`].
///
/// `Send` and `Sync` whenever `T` is, so one table is shared by all workers behind an `Arc`.
#[derive(Clone)]
pub struct RouteTable<T> {
    hosts: HostMap<Arc<HostRoutes<T>>>,
}

/// The hostnames in text order with their matches: two equal tables print alike, whatever
/// order their hostnames were added in (the indexes are derived and not printed).
impl<T: std::fmt::Debug> std::fmt::Debug for RouteTable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut hosts: Vec<(String, &[Arc<RouteEntry<T>>])> = self
            .hosts
            .iter()
            .map(|(pattern, routes)| (pattern.to_string(), routes.entries()))
            .collect();
        hosts.sort_by(|a, b| a.0.cmp(&b.0));
        f.debug_map().entries(hosts).finish()
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
        let route = self.hosts.candidates(host).find_map(|routes| {
            let index = routes.bucket.find(path, request, &routes.routes)?;
            Some(&routes.routes[index])
        })?;
        Some(RouteHit {
            target: &route.target,
            path_match: &route.matching.path,
        })
    }

    /// The target of every match, by hostname (a target added for several matches or
    /// hostnames is yielded once for each). For the control plane (linking state to a new
    /// table), not for request handling.
    pub fn targets(&self) -> impl Iterator<Item = &T> {
        self.hosts
            .iter()
            .flat_map(|(_, routes)| routes.routes.iter().map(|route| &route.target))
    }

    /// Number of matches added (each counted once, however many hostnames it has).
    pub fn len(&self) -> usize {
        let mut seen = std::collections::HashSet::new();
        self.hosts
            .iter()
            .flat_map(|(_, routes)| routes.routes.iter())
            .filter(|route| seen.insert(Arc::as_ptr(route)))
            .count()
    }

    /// Whether no match was added.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Every hostname with its matches, in insertion order. For explaining a lookup (see
    /// `compile`'s `explain`), not for request handling.
    pub fn hosts(&self) -> impl Iterator<Item = (&HostPattern, &Arc<HostRoutes<T>>)> {
        self.hosts.iter()
    }

    /// The matches of one hostname.
    pub fn host(&self, pattern: &HostPattern) -> Option<&Arc<HostRoutes<T>>> {
        self.hosts.get(pattern)
    }

    /// This table with the matches of some hostnames replaced (`None`: the hostname has no
    /// match any more); every other hostname keeps its matches, the same `Arc`s. Costs a
    /// pointer copy per hostname, not a rebuild.
    pub fn with_hosts(
        &self,
        changes: impl IntoIterator<Item = (HostPattern, Option<Arc<HostRoutes<T>>>)>,
    ) -> RouteTable<T> {
        let mut changes: HashMap<HostPattern, Option<Arc<HostRoutes<T>>>> =
            changes.into_iter().collect();
        let mut hosts = HostMap::new();
        let (exact, wildcard) = self
            .hosts
            .iter()
            .map(|(pattern, _)| pattern)
            .chain(changes.keys())
            .fold((0, 0), |(exact, wildcard), pattern| match pattern {
                HostPattern::Exact(_) => (exact + 1, wildcard),
                HostPattern::Wildcard(_) => (exact, wildcard + 1),
                HostPattern::Any => (exact, wildcard),
            });
        hosts.reserve(exact, wildcard);
        for (pattern, routes) in self.hosts.iter() {
            match changes.remove(pattern) {
                Some(Some(replaced)) => {
                    hosts.entry_or_insert_with(pattern, || replaced);
                }
                Some(None) => {}
                None => {
                    hosts.entry_or_insert_with(pattern, || Arc::clone(routes));
                }
            }
        }
        for (pattern, routes) in changes {
            if let Some(routes) = routes {
                hosts.entry_or_insert_with(&pattern, || routes);
            }
        }
        RouteTable { hosts }
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
    /// Builds the bucket of `routes` (in insertion order).
    fn new<T>(routes: &[Arc<RouteEntry<T>>]) -> Self {
        let mut sorted: Vec<usize> = (0..routes.len()).collect();
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
    fn find<T>(
        &self,
        path: &str,
        request: &RequestView<'_>,
        routes: &[Arc<RouteEntry<T>>],
    ) -> Option<usize> {
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

fn rank<T>(routes: &[Arc<RouteEntry<T>>], index: usize) -> MatchRank<'_> {
    let route = &routes[index];
    MatchRank::new(&route.matching, &route.order)
}
