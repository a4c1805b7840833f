//! [`RouteUnit`]: one HTTPRoute or GRPCRoute compiled on its own, the unit the incremental
//! compiler keeps between changes and compiles again only when the route, or something it
//! looked up, changed.
//!
//! A unit holds what the route adds to each listener it attaches to (its matches, ready as
//! route table entries, and its effective hostnames there), its status and its share of the
//! listeners' `attachedRoutes`; the table of each hostname of a listener is built from the
//! units attached there ([`crate::incremental::Compiler`]).

use std::sync::Arc;

use model::Store;
use model::core::ObjectMeta;
use router::{HostPattern, RouteEntry, RouteOrder};
use snapshot::RouteRule;
use snapshot::backend::{BackendId, CompiledBackend};

use crate::CompileOptions;
use crate::attachment::{self, CompiledRule, RouteAttachment, RuleProblems};
use crate::backend_ref::ReadKey;
use crate::listener::Listeners;
use crate::problems::FieldPath;
use crate::status::{ObjectStatus, ParentReference};

/// A route table entry of a compiled rule.
pub(crate) type Entry = Arc<RouteEntry<Arc<RouteRule>>>;

/// One compiled route and where it attaches.
pub(crate) struct RouteUnit {
    /// Its rules' names, for `/config` (each shared with its rule).
    rule_names: Box<[Arc<str>]>,
    /// The rules that name a Composition, for `/config`: each one's rule (an `Arc` of the
    /// table's entries, holding the Composition).
    composing: Vec<Arc<RouteRule>>,
    /// The listener slots it is added to.
    attached: Vec<Attachment>,
    /// The slots counting it in `attachedRoutes`.
    pub(crate) counted: Vec<usize>,
    /// Its status.
    pub(crate) status: ObjectStatus,
    /// What its compilation looked up: its Namespace (when a listener selects namespaces by
    /// label), and the Services, Backends and ReferenceGrants its backendRefs name (added
    /// by the compiler).
    pub(crate) reads: Vec<ReadKey>,
    /// The backends its rules name, each once (set by the compiler).
    pub(crate) backends: Vec<BackendId>,
}

/// A unit on one listener slot.
struct Attachment {
    slot: usize,
    /// Its hostnames there (`[]` = any host), as `/config` shows them.
    hosts: Vec<String>,
    /// The same as the table keys them (`[Any]` for `[]`), each once.
    patterns: Vec<HostPattern>,
    /// Every match of every rule, with its precedence, as the table holds it (shared by the
    /// unit's attachments).
    entries: Arc<[Entry]>,
}

/// A route as its kind hands it over: what every route kind has in common.
pub(crate) struct RouteSpec<'a> {
    /// `HTTPRoute` or `GRPCRoute`.
    pub(crate) kind: &'static str,
    pub(crate) namespace: &'a str,
    pub(crate) name: &'a str,
    /// `spec.parentRefs`, defaults filled in.
    pub(crate) parents: Vec<ParentReference>,
    /// `spec.hostnames`.
    pub(crate) hostnames: Option<&'a [String]>,
    pub(crate) metadata: &'a ObjectMeta,
}

impl RouteUnit {
    /// Compiles a route: `None` when no parentRef of it is ours; otherwise its rules (by
    /// `compile_rules`, which reports into the problems it is given) and where it attaches.
    pub(crate) fn compile(
        store: &Store,
        options: &CompileOptions,
        listeners: &Listeners,
        route: RouteSpec<'_>,
        compile_rules: impl FnOnce(&mut RuleProblems) -> Vec<CompiledRule>,
    ) -> Option<RouteUnit> {
        let ours = attachment::our_parents(store, options, route.parents);
        if ours.is_empty() {
            return None; // not attached to any Gateway of ours: not our business
        }
        let mut problems = RuleProblems::default();
        let rules = compile_rules(&mut problems);
        let attaching = RouteAttachment {
            kind: route.kind,
            namespace: route.namespace,
            name: route.name,
            hostnames: route.hostnames.unwrap_or_default(),
            created: attachment::created_seconds(route.metadata),
            parents: ours,
        };
        Some(RouteUnit::new(
            store, options, listeners, &attaching, &rules, &problems,
        ))
    }

    /// A unit of compiled `rules`, attached as the route's parentRefs say.
    fn new(
        store: &Store,
        options: &CompileOptions,
        listeners: &Listeners,
        route: &RouteAttachment<'_>,
        rules: &[CompiledRule],
        problems: &RuleProblems,
    ) -> RouteUnit {
        let plan =
            attachment::plan_route(store, options, listeners, route, rules.is_empty(), problems);
        let base = route.order();
        let mut entries: Vec<Entry> = Vec::new();
        for rule in rules {
            for (match_index, matching) in rule.matches.iter().enumerate() {
                let order = RouteOrder {
                    rule: rule.index,
                    matching: u32::try_from(match_index).unwrap_or(u32::MAX),
                    ..base.clone()
                };
                entries.push(Arc::new(RouteEntry::new(
                    matching.clone(),
                    order,
                    Arc::clone(&rule.rule),
                )));
            }
        }
        let entries: Arc<[Entry]> = entries.into();
        let attached = plan
            .attached
            .into_iter()
            .map(|(slot, hosts)| {
                let mut patterns: Vec<HostPattern> = Vec::with_capacity(hosts.len().max(1));
                for host in &hosts {
                    let pattern = HostPattern::parse(host);
                    if !patterns.contains(&pattern) {
                        patterns.push(pattern);
                    }
                }
                if patterns.is_empty() {
                    patterns.push(HostPattern::Any);
                }
                Attachment {
                    slot,
                    hosts,
                    patterns,
                    entries: Arc::clone(&entries),
                }
            })
            .collect();
        RouteUnit {
            rule_names: rules.iter().map(|r| Arc::clone(&r.rule.name)).collect(),
            composing: rules
                .iter()
                .filter(|r| r.rule.filters.composition.is_some())
                .map(|r| Arc::clone(&r.rule))
                .collect(),
            attached,
            counted: plan.counted,
            status: plan.status,
            reads: if plan.reads_namespace {
                vec![ReadKey::Namespace(route.namespace.into())]
            } else {
                Vec::new()
            },
            backends: Vec::new(),
        }
    }

    /// `HTTPRoute ns/name`, from its status (not kept: only `/config` shows it).
    fn label(&self) -> String {
        let status = &self.status;
        FieldPath::object(status.kind, &status.namespace, &status.name).to_string()
    }

    /// The slots the unit adds rules to.
    pub(crate) fn slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.attached.iter().map(|attachment| attachment.slot)
    }

    /// The hostnames it has on each slot it attaches to (a slot may come more than once).
    pub(crate) fn hosts(&self) -> impl Iterator<Item = (usize, &HostPattern)> + '_ {
        self.attached.iter().flat_map(|attachment| {
            attachment
                .patterns
                .iter()
                .map(move |pattern| (attachment.slot, pattern))
        })
    }

    /// Adds its matches for `host` on `slot` to `entries`, in rule and match order: once per
    /// attachment there (a route whose two parentRefs select one listener is added twice, as
    /// a full compile adds it).
    pub(crate) fn add_host(&self, slot: usize, host: &HostPattern, entries: &mut Vec<Entry>) {
        for attachment in &self.attached {
            if attachment.slot == slot && attachment.patterns.contains(host) {
                entries.extend(attachment.entries.iter().cloned());
            }
        }
    }

    /// The unit on one listener, for `/config` (nothing if it does not attach there), with the
    /// plan of each rule's Composition (`compositions`, by rule name, when a rule has one;
    /// `backends`: the snapshot's, which the plans name).
    pub(crate) fn views<'a>(
        &'a self,
        slot: usize,
        backends: &'a [CompiledBackend],
    ) -> impl Iterator<Item = serde_json::Value> + 'a {
        self.attached
            .iter()
            .filter(move |attachment| attachment.slot == slot)
            .map(move |attachment| {
                let mut view =
                    attachment::route_view(&self.label(), &attachment.hosts, &self.rule_names);
                if !self.composing.is_empty() {
                    view["compositions"] = self.composition_views(backends);
                }
                view
            })
    }

    /// `{rule name: plan}` of the rules that name a Composition.
    fn composition_views(&self, backends: &[CompiledBackend]) -> serde_json::Value {
        let plans = self.composing.iter().filter_map(|rule| {
            let composition = rule.filters.composition.as_ref()?;
            let plan = crate::explain::composition_plan(composition, backends, None);
            Some((rule.name.to_string(), serde_json::to_value(plan).ok()?))
        });
        serde_json::Value::Object(plans.collect())
    }
}
