use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use router::{HostMap, HostPattern, RouteOrder, RouteTableBuilder, RuleMatch};
use snapshot::{
    BackendChoice, BackendTarget, Backoff, Filters, ListenerRoutes, Mirror, MirrorShare,
    RetryBudgetSettings, RetryPolicy, RetryTriggers, RouteRule, RuleAction, Scheme, Snapshot,
    SocketRoutes, Timeouts, WeightedBackend,
};

use super::{LinkedRuleStates, RuleStates};

/// A snapshot with one rule named `name`, with a retry budget and a 1-in-3 mirror when given.
fn snapshot(
    name: &str,
    budget: Option<RetryBudgetSettings>,
    mirror: Option<MirrorShare>,
) -> Snapshot {
    let rule = RouteRule {
        name: name.into(),
        filters: Filters {
            mirrors: mirror
                .map(|share| Mirror::new(0, share))
                .into_iter()
                .collect(),
            ..Filters::default()
        },
        timeouts: Timeouts::default(),
        retry: Some(Box::new(RetryPolicy {
            triggers: RetryTriggers::default(),
            attempts: 2,
            backoff: Backoff::fixed(Duration::ZERO),
            per_try_timeout: None,
            budget,
        })),
        action: RuleAction::Forward(BackendChoice {
            candidates: vec![WeightedBackend {
                weight: 1,
                target: BackendTarget::Backend(0),
                filters: None,
            }],
            total_weight: 1,
        }),
        session: None,
        security: None,
        rate_limit: None,
    };
    let mut table = RouteTableBuilder::new();
    let order = RouteOrder {
        created: None,
        route: "default/route".into(),
        rule: 0,
        matching: 0,
    };
    table.add(&[], RuleMatch::default(), order, Arc::new(rule));
    let mut listeners = HostMap::new();
    listeners.entry_or_insert_with(&HostPattern::parse(""), || {
        Arc::new(ListenerRoutes {
            name: "Gateway default/gateway listener http".into(),
            table: table.build(),
            backend_client_certificate: None,
            security: None,
            rate_limit: None,
            path: snapshot::client::PathPolicy::default(),
            tracing: None,
        })
    });
    let socket = SocketRoutes {
        scheme: Scheme::Http,
        tls: None,
        listeners,
        tls_listeners: HostMap::new(),
        tcp: None,
        client: Arc::default(),
    };
    let mut result = Snapshot::default();
    let addr: SocketAddr = "127.0.0.1:8080".parse().expect("address");
    result.sockets.insert(addr, Arc::new(socket));
    result
}

fn the_rule(snapshot: &Snapshot) -> &RouteRule {
    let socket = snapshot.sockets.values().next().expect("one socket");
    let (_, listener) = socket.listeners.iter().next().expect("one listener");
    listener.table.targets().next().expect("one rule")
}

fn budget_ptr(
    linked: &LinkedRuleStates,
    snapshot: &Snapshot,
) -> *const upstream::RetryBudgetWindow {
    std::ptr::from_ref(
        linked
            .budget(the_rule(snapshot))
            .expect("the rule has a budget"),
    )
}

#[test]
fn an_unchanged_rule_keeps_its_budget_window_across_reloads() {
    let states = RuleStates::default();
    let settings = Some(RetryBudgetSettings::new(20, 1));
    let first = snapshot("HTTPRoute default/route rules[0]", settings, None);
    let linked_first = states.link(&first);
    let second = snapshot("HTTPRoute default/route rules[0]", settings, None);
    let linked_second = states.link(&second);
    assert_eq!(
        budget_ptr(&linked_first, &first),
        budget_ptr(&linked_second, &second)
    );
}

#[test]
fn changed_settings_or_another_rule_start_a_fresh_window() {
    let states = RuleStates::default();
    let rule = "HTTPRoute default/route rules[0]";
    let first = snapshot(rule, Some(RetryBudgetSettings::new(20, 1)), None);
    let linked_first = states.link(&first);
    let changed = snapshot(rule, Some(RetryBudgetSettings::new(30, 1)), None);
    let linked_changed = states.link(&changed);
    assert_ne!(
        budget_ptr(&linked_first, &first),
        budget_ptr(&linked_changed, &changed)
    );
    let other = snapshot(
        "HTTPRoute default/other rules[0]",
        Some(RetryBudgetSettings::new(30, 1)),
        None,
    );
    let linked_other = states.link(&other);
    assert_ne!(
        budget_ptr(&linked_changed, &changed),
        budget_ptr(&linked_other, &other)
    );
}

#[test]
fn state_of_a_removed_rule_is_dropped() {
    let states = RuleStates::default();
    let rule = "HTTPRoute default/route rules[0]";
    // 1% of requests and a floor of 1/s: the reserve is 10 retries over the 10 s window.
    let settings = Some(RetryBudgetSettings::new(1, 1));
    let now = std::time::Instant::now();
    let first = snapshot(rule, settings, None);
    let linked = states.link(&first);
    let budget = linked.budget(the_rule(&first)).expect("budget");
    assert_eq!((0..20).filter(|_| budget.try_withdraw(now)).count(), 10);
    // Kept across a reload that keeps the rule: still spent.
    let kept = snapshot(rule, settings, None);
    let linked = states.link(&kept);
    let budget = linked.budget(the_rule(&kept)).expect("budget");
    assert!(!budget.try_withdraw(now));
    // Gone for one generation, then back: a fresh window with its whole reserve.
    drop(linked);
    let _without = states.link(&snapshot(rule, None, None));
    let back = snapshot(rule, settings, None);
    let linked = states.link(&back);
    let budget = linked.budget(the_rule(&back)).expect("budget");
    assert_eq!((0..20).filter(|_| budget.try_withdraw(now)).count(), 10);
}

#[test]
fn a_mirror_window_continues_across_reloads() {
    let states = RuleStates::default();
    let rule = "HTTPRoute default/route rules[0]";
    let share = MirrorShare::new(1, 3).expect("valid");
    // A draw of 0 fires while the window has copies left (0 % slots < copies), so the first
    // request of a window of three is copied, and the next two of that window are not.
    let first = snapshot(rule, None, Some(share));
    let linked = states.link(&first);
    let mirror = &the_rule(&first).filters.mirrors[0];
    assert!(linked.mirror_fires(mirror, 0));
    // Reloaded with the same mirror: the window goes on, its one copy is spent.
    let second = snapshot(rule, None, Some(share));
    let linked = states.link(&second);
    let mirror = &the_rule(&second).filters.mirrors[0];
    assert!(!linked.mirror_fires(mirror, 0));
    assert!(!linked.mirror_fires(mirror, 0));
    // A new window.
    assert!(linked.mirror_fires(mirror, 0));
}
