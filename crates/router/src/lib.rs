//! Compiled route tables and Gateway API matching precedence.
//!
//! This crate is the pure core of routing: [`RouteTableBuilder`] turns matches that `compile`
//! has already resolved into a [`RouteTable`], and the proxy asks [`RouteTable::find`] which
//! rule serves each request. [`HostMap`] is the hostname index behind it, also used to pick a
//! listener by host.
//!
//! Precedence follows the Gateway API `HTTPRoute` spec: hostname specificity first (exact, then
//! longest wildcard, then none), then within a hostname Exact path, RegularExpression path
//! (implementation-specific; after Exact and before PathPrefix, longer source first, as Envoy
//! Gateway does), longest PathPrefix, method, number of header matches, number of query
//! matches, and finally [`RouteOrder`] (creation time, `namespace/name`, rule, match).
//!
//! It deliberately knows nothing about YAML, Kubernetes objects, listeners or filters, and it
//! performs no I/O. Lookups do not allocate and their cost does not depend on the number of
//! routes.

mod host;
mod matching;
pub mod path;
mod precedence;
mod query;
mod table;

pub use http::Method;

pub use host::{Candidates, HostMap, HostPattern, MAX_INLINE_HOST, strip_port};
pub use matching::{
    HeaderMatch, MatchFailure, PathMatch, QueryMatch, RequestView, RuleMatch, ValueMatch,
};
pub use precedence::{PrecedenceCriterion, RouteOrder, decide_precedence};
pub use table::{HostRoutes, RouteEntry, RouteHit, RouteTable, RouteTableBuilder};
