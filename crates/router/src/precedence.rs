//! Gateway API matching precedence: which of several matching rules wins.
//!
//! Owns the ordering from `HTTPRouteSpec.rules` ("Proxy or Load Balancer routing configuration
//! generated from HTTPRoutes MUST prioritize matches based on the following criteria, continuing
//! on ties"), with one implementation-specific choice for `RegularExpression` paths. Hostname
//! precedence is not here: it comes first and is handled by the host buckets in `table`.

use std::cmp::{Ordering, Reverse};

use crate::matching::{PathMatch, RuleMatch};

#[cfg(test)]
mod tests;

/// Tie-breaker after the spec's match criteria, supplied by `compile`.
///
/// Lower sorts first and wins: older route creation time (a route without a timestamp sorts
/// after every route with one), then `"{namespace}/{name}"` alphabetically, then rule index,
/// then match index within the rule.
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub struct RouteOrder {
    /// Route creation time, unix seconds; `None` sorts after any `Some`.
    pub created: Option<i64>,
    /// `"{namespace}/{name}"` of the route.
    pub route: Box<str>,
    /// Index of the rule within the route.
    pub rule: u32,
    /// Index of the match within the rule.
    pub matching: u32,
}

impl Ord for RouteOrder {
    fn cmp(&self, other: &Self) -> Ordering {
        // "If ties still exist across multiple Routes ... The oldest Route based on creation
        // timestamp. The Route appearing first in alphabetical order by {namespace}/{name}."
        // Then "the FIRST matching rule (in list order)" within a route.
        let created = match (self.created, other.created) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        created
            .then_with(|| self.route.cmp(&other.route))
            .then_with(|| self.rule.cmp(&other.rule))
            .then_with(|| self.matching.cmp(&other.matching))
    }
}

impl PartialOrd for RouteOrder {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The rank of one match among all matches that apply to a request in the same host bucket;
/// lower wins. Fields are compared in declaration order.
#[derive(PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) struct MatchRank<'a> {
    /// Exact, then RegularExpression, then PathPrefix.
    ///
    /// The spec puts `Exact` first and `PathPrefix` next and leaves `RegularExpression`
    /// implementation-specific; like Envoy Gateway we rank it between the two.
    path_kind: u8,
    /// Longer first: prefix characters as written, regex source length (the spec's "Prefix path
    /// match with largest number of characters"; for regexes our choice, as Envoy Gateway).
    path_len: Reverse<usize>,
    /// A method match beats none.
    has_no_method: bool,
    /// "Largest number of header matches."
    headers: Reverse<usize>,
    /// "Largest number of query param matches."
    query: Reverse<usize>,
    order: &'a RouteOrder,
}

impl<'a> MatchRank<'a> {
    pub(crate) fn new(matching: &RuleMatch, order: &'a RouteOrder) -> Self {
        let (path_kind, path_len) = match &matching.path {
            PathMatch::Exact(path) => (0, path.len()),
            // Every regex built by `PathMatch::regex` carries the same `^(?:` `)$` wrapper, so
            // the compiled source length orders like the source as written.
            PathMatch::Regex(regex) => (1, regex.as_str().len()),
            PathMatch::Prefix(prefix) => (2, prefix.len()),
        };
        MatchRank {
            path_kind,
            path_len: Reverse(path_len),
            has_no_method: matching.method.is_none(),
            headers: Reverse(matching.headers.len()),
            query: Reverse(matching.query.len()),
            order,
        }
    }
}

/// The criterion of Gateway API precedence that decides between two matches, in the order
/// the criteria are applied (hostname specificity comes before all of them and is not here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrecedenceCriterion {
    /// Exact path before RegularExpression before PathPrefix.
    PathKind,
    /// The longer path (prefix characters, regex source length).
    PathLength,
    /// A method match before none.
    Method,
    /// More header matches.
    HeaderCount,
    /// More query parameter matches.
    QueryCount,
    /// The older route (creation timestamp).
    CreationTime,
    /// `namespace/name` alphabetically.
    RouteName,
    /// The earlier rule of one route.
    RuleIndex,
    /// The earlier match of one rule.
    MatchIndex,
    /// Nothing tells them apart (the same match).
    Equal,
}

/// How match `a` ranks against match `b` in one host bucket (`Less`: `a` wins) and the
/// criterion that decides it. The same ordering the route table sorts its candidates by, so an
/// explanation of a lookup cannot disagree with [`crate::RouteTable::find`].
pub fn decide_precedence(
    a: (&RuleMatch, &RouteOrder),
    b: (&RuleMatch, &RouteOrder),
) -> (Ordering, PrecedenceCriterion) {
    let a = MatchRank::new(a.0, a.1);
    let b = MatchRank::new(b.0, b.1);
    let steps = [
        (a.path_kind.cmp(&b.path_kind), PrecedenceCriterion::PathKind),
        (a.path_len.cmp(&b.path_len), PrecedenceCriterion::PathLength),
        (
            a.has_no_method.cmp(&b.has_no_method),
            PrecedenceCriterion::Method,
        ),
        (a.headers.cmp(&b.headers), PrecedenceCriterion::HeaderCount),
        (a.query.cmp(&b.query), PrecedenceCriterion::QueryCount),
    ];
    if let Some(&decided) = steps.iter().find(|(ordering, _)| ordering.is_ne()) {
        return decided;
    }
    let (x, y) = (a.order, b.order);
    let created = match (x.created, y.created) {
        (Some(p), Some(q)) => p.cmp(&q),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    let steps = [
        (created, PrecedenceCriterion::CreationTime),
        (x.route.cmp(&y.route), PrecedenceCriterion::RouteName),
        (x.rule.cmp(&y.rule), PrecedenceCriterion::RuleIndex),
        (x.matching.cmp(&y.matching), PrecedenceCriterion::MatchIndex),
    ];
    steps
        .iter()
        .find(|(ordering, _)| ordering.is_ne())
        .copied()
        .unwrap_or((Ordering::Equal, PrecedenceCriterion::Equal))
}
