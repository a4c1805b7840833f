//! [`RouteUnit`]: one HTTPRoute or GRPCRoute compiled on its own, the unit the incremental
//! compiler keeps between changes and compiles again only when the route, or something it
//! looked up, changed.
//!
//! A unit holds what the route adds to each listener it attaches to (its rules and effective
//! hostnames there), its status and its share of the listeners' `attachedRoutes`; the
//! listener tables are built from the units attached to them
//! ([`crate::incremental::Compiler`]).

use std::sync::Arc;

use model::Store;
use router::{HostPattern, RouteOrder, RouteTableBuilder};
use snapshot::RouteRule;
use snapshot::backend::BackendId;

use crate::CompileOptions;
use crate::attachment::{self, CompiledRule, RouteAttachment, RuleProblems};
use crate::backend_ref::ReadKey;
use crate::listener::Listeners;
use crate::status::ObjectStatus;

/// One compiled route and where it attaches.
pub(crate) struct RouteUnit {
    /// Its valid rules, with their matches.
    rules: Vec<CompiledRule>,
    /// Its precedence tie-breaker (rule and match at 0).
    order: RouteOrder,
    /// `HTTPRoute ns/name`.
    label: String,
    /// The listener slots it is added to, with its hostnames there (`[]` = any host).
    attached: Vec<(usize, Vec<String>)>,
    /// The slots counting it in `attachedRoutes`.
    pub(crate) counted: Vec<usize>,
    /// Its status.
    pub(crate) status: ObjectStatus,
    /// Services and Backends its compilation looked up (set by the compiler).
    pub(crate) reads: Vec<ReadKey>,
    /// The backends its rules name, each once (set by the compiler).
    pub(crate) backends: Vec<BackendId>,
}

impl RouteUnit {
    /// A unit of compiled `rules`, attached as the route's parentRefs say.
    pub(crate) fn new(
        store: &Store,
        options: &CompileOptions,
        listeners: &Listeners,
        route: &RouteAttachment<'_>,
        rules: Vec<CompiledRule>,
        problems: &RuleProblems,
    ) -> RouteUnit {
        let plan =
            attachment::plan_route(store, options, listeners, route, rules.is_empty(), problems);
        RouteUnit {
            rules,
            order: route.order(),
            label: route.path().to_string(),
            attached: plan.attached,
            counted: plan.counted,
            status: plan.status,
            reads: Vec::new(),
            backends: Vec::new(),
        }
    }

    /// The slots the unit adds rules to.
    pub(crate) fn slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.attached.iter().map(|(slot, _)| *slot)
    }

    /// Adds the unit's rules to the table of `slot` (nothing if it does not attach there).
    pub(crate) fn add_to(&self, slot: usize, builder: &mut RouteTableBuilder<Arc<RouteRule>>) {
        for (_, hosts) in self.attached.iter().filter(|(s, _)| *s == slot) {
            let patterns: Vec<HostPattern> = hosts.iter().map(|h| HostPattern::parse(h)).collect();
            for rule in &self.rules {
                for (match_index, matching) in rule.matches.iter().enumerate() {
                    let order = RouteOrder {
                        rule: rule.index,
                        matching: u32::try_from(match_index).unwrap_or(u32::MAX),
                        ..self.order.clone()
                    };
                    builder.add(&patterns, matching.clone(), order, Arc::clone(&rule.rule));
                }
            }
        }
    }

    /// The unit on one listener, for `/config` (`None` if it does not attach there).
    pub(crate) fn views(&self, slot: usize) -> impl Iterator<Item = serde_json::Value> + '_ {
        self.attached
            .iter()
            .filter(move |(s, _)| *s == slot)
            .map(|(_, hosts)| {
                let names = self.rules.iter().map(|r| r.rule.name.to_string()).collect();
                attachment::route_view(&self.label, hosts, names)
            })
    }
}
