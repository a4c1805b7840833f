//! ListenerSet compile tests: admission by the parent Gateway, conflicts with its listeners,
//! routes attached through a ListenerSet parentRef, and status.

use crate::tests::{compile_yaml, lookup, object, parent_condition};
use crate::{Compiled, ConditionStatus, ObjectStatus};

/// A Gateway on 127.0.0.20 with one catch-all HTTP listener on port 80 admitting ListenerSets
/// as `from` says (no `allowedListeners` at all when `None`).
fn shared_gateway(from: Option<&str>) -> String {
    let allowed = match from {
        Some("Selector") => {
            "  allowedListeners: {namespaces: {from: Selector, selector: {matchLabels: {team: web}}}}\n"
                .to_owned()
        }
        Some(from) => format!("  allowedListeners: {{namespaces: {{from: {from}}}}}\n"),
        None => String::new(),
    };
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: shared, namespace: infra}}\nspec:\n  gatewayClassName: portcullis\n  addresses: [{{value: 127.0.0.20}}]\n  listeners:\n  - {{name: http, port: 80, protocol: HTTP, allowedRoutes: {{namespaces: {{from: All}}}}}}\n{allowed}---\n"
    )
}

/// ListenerSet `name` in `namespace` for Gateway infra/shared with the given listener lines.
fn listener_set(name: &str, namespace: &str, listeners: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: ListenerSet\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  parentRef: {{name: shared, namespace: infra, kind: Gateway, group: gateway.networking.k8s.io}}\n  listeners:\n{listeners}---\n"
    )
}

/// HTTPRoute `name` in `namespace` with one parentRef and one rule for `path` to infra/web.
fn route_to(name: &str, namespace: &str, parent_ref: &str, path: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  parentRefs: [{parent_ref}]\n  rules: [{{matches: [{{path: {{type: PathPrefix, value: {path}}}}}], backendRefs: [{{name: web, namespace: infra, port: 8080}}]}}]\n---\n"
    )
}

const LS_LISTENER: &str = "  - {name: extra, port: 80, protocol: HTTP, hostname: ls.example.com, allowedRoutes: {namespaces: {from: Same}}}\n";

const LS_PARENT: &str =
    "{kind: ListenerSet, group: gateway.networking.k8s.io, name: ls, namespace: infra}";

const GATEWAY_PARENT: &str = "{name: shared, namespace: infra}";

fn condition<'a>(status: &'a ObjectStatus, kind: &str) -> &'a crate::Condition {
    status
        .conditions
        .iter()
        .find(|c| c.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} condition in {status:?}"))
}

fn serve(compiled: &Compiled, host: &str, path: &str) -> Option<String> {
    lookup(compiled, "127.0.0.20:80", host, path)
}

#[test]
fn listener_sets_are_not_allowed_by_default() {
    let compiled = compile_yaml(&format!(
        "{}{}{}",
        shared_gateway(None),
        listener_set("ls", "infra", LS_LISTENER),
        route_to("r", "infra", LS_PARENT, "/ls"),
    ));
    let set = object(&compiled, "ListenerSet", "infra", "ls");
    let accepted = condition(set, "Accepted");
    assert_eq!(
        (accepted.status, accepted.reason),
        (ConditionStatus::False, "NotAllowed")
    );
    assert_eq!(condition(set, "Programmed").status, ConditionStatus::False);
    let route = object(&compiled, "HTTPRoute", "infra", "r");
    assert_eq!(
        parent_condition(route, "Accepted").reason,
        "NoMatchingParent"
    );
    // Its hostname is not served: the Gateway's catch-all listener has no route for it.
    assert_eq!(serve(&compiled, "ls.example.com", "/ls"), None);
    let gateway = object(&compiled, "Gateway", "infra", "shared");
    assert_eq!(
        gateway.attached_listener_sets,
        Some(0),
        "a rejected set is not attached"
    );
}

#[test]
fn admitted_listener_set_serves_routes_attached_to_it() {
    let compiled = compile_yaml(&format!(
        "{}{}{}{}",
        shared_gateway(Some("Same")),
        listener_set("ls", "infra", LS_LISTENER),
        route_to("r", "infra", LS_PARENT, "/ls"),
        route_to("g", "infra", GATEWAY_PARENT, "/gw"),
    ));
    let set = object(&compiled, "ListenerSet", "infra", "ls");
    assert!(set.is_healthy(), "{:?}", compiled.status.problems());
    assert_eq!(condition(set, "Accepted").reason, "Accepted");
    assert_eq!(set.listeners[0].attached_routes, 1);
    let gateway = object(&compiled, "Gateway", "infra", "shared");
    assert_eq!(gateway.attached_listener_sets, Some(1));
    let route = object(&compiled, "HTTPRoute", "infra", "r");
    assert_eq!(parent_condition(route, "Accepted").reason, "Accepted");
    assert_eq!(route.parents[0].parent_ref.kind, "ListenerSet");

    assert_eq!(
        serve(&compiled, "ls.example.com", "/ls").as_deref(),
        Some("HTTPRoute infra/r rules[0]")
    );
    // Listener isolation: the ListenerSet's hostname belongs to its listener only, and a
    // parentRef to the Gateway selects the Gateway's own listeners only.
    assert_eq!(serve(&compiled, "ls.example.com", "/gw"), None);
    assert_eq!(serve(&compiled, "other.example.com", "/ls"), None);
    assert!(serve(&compiled, "other.example.com", "/gw").is_some());
}

#[test]
fn allowed_listeners_from_same_and_selector() {
    // Namespace `apps` is labelled team=web in the BASE fixture.
    let same = compile_yaml(&format!(
        "{}{}",
        shared_gateway(Some("Same")),
        listener_set("ls", "apps", LS_LISTENER),
    ));
    let accepted = condition(object(&same, "ListenerSet", "apps", "ls"), "Accepted");
    assert_eq!(accepted.reason, "NotAllowed");
    let selector = compile_yaml(&format!(
        "{}{}",
        shared_gateway(Some("Selector")),
        listener_set("ls", "apps", LS_LISTENER),
    ));
    let accepted = condition(object(&selector, "ListenerSet", "apps", "ls"), "Accepted");
    assert_eq!(accepted.reason, "Accepted");
}

#[test]
fn allowed_routes_same_means_the_listener_set_namespace() {
    let parent = "{kind: ListenerSet, group: gateway.networking.k8s.io, name: ls, namespace: apps}";
    let compiled = compile_yaml(&format!(
        "{}{}{}{}",
        shared_gateway(Some("All")),
        listener_set("ls", "apps", LS_LISTENER),
        route_to("mine", "apps", parent, "/mine"),
        route_to("theirs", "infra", parent, "/theirs"),
    ));
    let mine = object(&compiled, "HTTPRoute", "apps", "mine");
    assert_eq!(parent_condition(mine, "Accepted").reason, "Accepted");
    let theirs = object(&compiled, "HTTPRoute", "infra", "theirs");
    assert_eq!(
        parent_condition(theirs, "Accepted").reason,
        "NotAllowedByListeners"
    );
    assert!(serve(&compiled, "ls.example.com", "/mine").is_some());
}

#[test]
fn gateway_listener_wins_a_conflict_with_a_listener_set() {
    // Same port and no hostname: the Gateway's own `http` listener keeps (socket, any host).
    let clashing = "  - {name: catch-all, port: 80, protocol: HTTP}\n";
    let compiled = compile_yaml(&format!(
        "{}{}{}",
        shared_gateway(Some("Same")),
        listener_set("ls", "infra", &format!("{clashing}{LS_LISTENER}")),
        route_to("r", "infra", LS_PARENT, "/ls"),
    ));
    let set = object(&compiled, "ListenerSet", "infra", "ls");
    let accepted = condition(set, "Accepted");
    assert_eq!(
        (accepted.status, accepted.reason),
        (ConditionStatus::True, "ListenersNotValid")
    );
    assert!(
        set.listeners[0]
            .conditions
            .iter()
            .any(|c| c.kind == "Conflicted" && c.reason == "HostnameConflict"),
        "{:?}",
        set.listeners[0]
    );
    // The valid listener still serves the route; the conflicted one does not.
    assert!(serve(&compiled, "ls.example.com", "/ls").is_some());
    assert_eq!(serve(&compiled, "other.example.com", "/ls"), None);

    // A ListenerSet whose only listener conflicts is not accepted.
    let compiled = compile_yaml(&format!(
        "{}{}",
        shared_gateway(Some("Same")),
        listener_set("ls", "infra", clashing),
    ));
    let accepted = condition(object(&compiled, "ListenerSet", "infra", "ls"), "Accepted");
    assert_eq!(
        (accepted.status, accepted.reason),
        (ConditionStatus::False, "ListenersNotValid")
    );
}

#[test]
fn listener_set_of_a_missing_gateway_is_reported() {
    let compiled = compile_yaml(&listener_set("ls", "infra", LS_LISTENER));
    let accepted = condition(object(&compiled, "ListenerSet", "infra", "ls"), "Accepted");
    assert_eq!(accepted.reason, "ParentNotAccepted");
}
