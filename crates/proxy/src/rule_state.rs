//! [`RuleStates`]: the runtime state of route rules that must outlive reloads, keyed by the
//! rule's stable identity.
//!
//! A rule's settings are in the snapshot; the state they govern is here: the retry budget
//! window (`upstream::RetryBudgetWindow`) and the sampling window of each `RequestMirror`
//! (`mirror::window::MirrorWindow`). When a snapshot is published, [`RuleStates::link`] finds
//! each rule's state by its identity (`RouteRule::name`, which names the route and the rule,
//! plus the settings): a rule the reload did not change keeps its window (and so what its
//! retries have spent), a changed or new one starts fresh, and state of rules that are gone is
//! dropped. Rate-limit counters follow the same pattern.
//!
//! Requests find the state of their rule through [`LinkedRuleStates`], built once per
//! snapshot and keyed by the address of the rule (or mirror) in that snapshot: one hash of an
//! integer, and only for rules that have such state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use snapshot::fast_hash::FastHashBuilder;
use snapshot::{
    Filters, Mirror, MirrorShare, RetryBudgetSettings, RouteRule, RuleAction, Snapshot,
};
use upstream::RetryBudgetWindow;

use crate::mirror::window::MirrorWindow;

/// Where a mirror sits in its rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum MirrorPosition {
    /// The rule's own filters, `index`-th mirror.
    Rule { index: usize },
    /// The filters of the rule's `backend`-th backendRef, `index`-th mirror.
    BackendRef { backend: usize, index: usize },
}

/// Identity of a retry budget window: the rule and its budget settings.
type BudgetKey = (Arc<str>, RetryBudgetSettings);

/// Identity of a mirror window: the rule, the mirror's place in it and its share.
type MirrorKey = (Arc<str>, MirrorPosition, MirrorShare);

#[derive(Debug, Default)]
struct Entries {
    budgets: HashMap<BudgetKey, Arc<RetryBudgetWindow>>,
    mirrors: HashMap<MirrorKey, Arc<MirrorWindow>>,
}

/// Rule state of the live snapshot, kept across reloads. Locked by the control plane only
/// (when a snapshot is published), never on the request path.
#[derive(Debug, Default)]
pub(crate) struct RuleStates {
    entries: Mutex<Entries>,
}

/// The rule state of one snapshot, by the address of its rules and mirrors.
#[derive(Debug, Default)]
pub(crate) struct LinkedRuleStates {
    budgets: HashMap<usize, Arc<RetryBudgetWindow>, FastHashBuilder>,
    mirrors: HashMap<usize, Arc<MirrorWindow>, FastHashBuilder>,
}

impl RuleStates {
    /// Links every rule of `snapshot` to its state, reusing the state of rules with the same
    /// identity and settings in the previous snapshot, and forgets the state of the others.
    pub(crate) fn link(&self, snapshot: &Snapshot) -> LinkedRuleStates {
        // The mutex guards plain maps that are replaced whole: a poisoned one is still whole.
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let previous = std::mem::take(&mut *entries);
        let mut linked = LinkedRuleStates::default();
        for rule in rules(snapshot) {
            if let Some(settings) = rule.retry.as_ref().and_then(|retry| retry.budget) {
                let key = (Arc::clone(&rule.name), settings);
                let window = entries.budgets.entry(key).or_insert_with_key(|key| {
                    previous
                        .budgets
                        .get(key)
                        .cloned()
                        .unwrap_or_else(|| Arc::new(RetryBudgetWindow::with_settings(settings)))
                });
                linked.budgets.insert(address(rule), Arc::clone(window));
            }
            for (position, mirror) in mirrors(rule) {
                if mirror.share.is_always() || mirror.share.is_never() {
                    continue; // decided without a window
                }
                let key = (Arc::clone(&rule.name), position, mirror.share);
                let window = entries.mirrors.entry(key).or_insert_with_key(|key| {
                    previous
                        .mirrors
                        .get(key)
                        .cloned()
                        .unwrap_or_else(|| Arc::new(MirrorWindow::new(mirror.share)))
                });
                linked.mirrors.insert(address(mirror), Arc::clone(window));
            }
        }
        linked
    }
}

impl LinkedRuleStates {
    /// The retry budget window of `rule` (a rule of the snapshot this was linked to), if its
    /// retry policy has a budget.
    pub(crate) fn budget(&self, rule: &RouteRule) -> Option<&RetryBudgetWindow> {
        self.budgets.get(&address(rule)).map(|window| &**window)
    }

    /// Whether `mirror` (of the snapshot this was linked to) copies this request. `random` is
    /// a uniformly random number.
    pub(crate) fn mirror_fires(&self, mirror: &Mirror, random: u64) -> bool {
        if mirror.share.is_always() {
            return true;
        }
        if mirror.share.is_never() {
            return false;
        }
        match self.mirrors.get(&address(mirror)) {
            Some(window) => window.fires(random),
            // Not linked (a snapshot published without linking): an independent draw with the
            // same chance.
            None => {
                random % u64::from(mirror.share.denominator()) < u64::from(mirror.share.numerator())
            }
        }
    }
}

fn address<T>(value: &T) -> usize {
    std::ptr::from_ref(value).addr()
}

/// Every rule of the snapshot's HTTP listeners (a rule matched by several matches or attached
/// to several listeners is yielded more than once).
fn rules(snapshot: &Snapshot) -> impl Iterator<Item = &RouteRule> {
    snapshot
        .sockets
        .values()
        .flat_map(|socket| socket.listeners.iter().map(|(_, listener)| listener))
        .flat_map(|listener| listener.table.targets())
        .map(|rule| &**rule)
}

/// The mirrors of a rule with their place in it.
fn mirrors(rule: &RouteRule) -> impl Iterator<Item = (MirrorPosition, &Mirror)> {
    let own = positioned(&rule.filters, |index| MirrorPosition::Rule { index });
    let candidates: &[snapshot::WeightedBackend] = match &rule.action {
        RuleAction::Forward(choice) => &choice.candidates,
        RuleAction::Respond(_) => &[],
    };
    let backend_refs = candidates
        .iter()
        .enumerate()
        .flat_map(|(backend, candidate)| {
            positioned(candidate.filters(), move |index| {
                MirrorPosition::BackendRef { backend, index }
            })
        });
    own.chain(backend_refs)
}

fn positioned(
    filters: &Filters,
    position: impl Fn(usize) -> MirrorPosition,
) -> impl Iterator<Item = (MirrorPosition, &Mirror)> {
    filters
        .mirrors
        .iter()
        .enumerate()
        .map(move |(index, mirror)| (position(index), mirror))
}

#[cfg(test)]
mod tests;
