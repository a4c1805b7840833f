//! Compositions through the whole `compile`: the compiled snapshot, every problem by field, the
//! rule's answer when its Composition cannot be used, the Composition's status, `/config` and
//! `explain`.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Method};
use snapshot::composition::{
    DEFAULT_MAX_PART_BYTES, DEFAULT_TIMEOUT, Merge, Piece, Reference, Template,
};
use snapshot::{BackendTarget, RouteRule, RuleAction};

use crate::status::Condition;
use crate::tests::{compile_yaml, object, parent_condition};
use crate::{Compiled, ConditionStatus, ObjectStatus};

/// Service `pricing` and Backend `stock` next to the fixture's Service `web` (namespace infra).
const BACKENDS: &str = "---\napiVersion: v1\nkind: Service\nmetadata: {name: pricing, namespace: infra}\nspec: {ports: [{name: http, port: 80}]}\n---\napiVersion: portcullis.dev/v1alpha1\nkind: Backend\nmetadata: {name: stock, namespace: infra}\nspec: {endpoints: [{ip: 10.0.0.7, port: 9000}]}\n";

/// Three parts in three waves: `product`, `price` (reads product), `stock` (reads both).
const PAGE: &str = "  pathPattern: /products/{id}
  parts:
  - name: product
    backendRef: {name: web, port: 8080}
    path: /products/{request.path.id}?lang={request.query.lang}
    headers:
      forward: [authorization, Accept-Language]
      set: [{name: x-tenant, value: \"t-{request.header.x-tenant}\"}]
    timeout: 300ms
    required: true
    select: /data
  - name: price
    backendRef: {name: pricing, port: 80}
    method: POST
    path: /prices/{response.product.json/sku}
  - name: stock
    backendRef: {group: portcullis.dev, kind: Backend, name: stock}
    path: /stock?sku={response.product.json/sku}&price={response.price.json}
";

fn composition(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: portcullis.dev/v1alpha1\nkind: Composition\nmetadata: {{name: {name}, namespace: infra}}\nspec:\n{spec}"
    )
}

/// HTTPRoute `infra/r` on the fixture's `http` listener: rule 0 (`/products`) has `filters`
/// and a backendRef to a Service that does not exist; rule 1 forwards to `web`.
fn route_with_filters(filters: &str) -> String {
    format!(
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: infra}}\nspec:\n  parentRefs: [{{name: gw, sectionName: http}}]\n  rules:\n  - matches: [{{path: {{type: PathPrefix, value: /products}}}}]\n    filters:\n{filters}    backendRefs: [{{name: nowhere, port: 1}}]\n  - backendRefs: [{{name: web, port: 8080}}]\n"
    )
}

/// The filter naming Composition `name`, as a filter list entry.
fn names(name: &str) -> String {
    format!(
        "    - {{type: ExtensionRef, extensionRef: {{group: portcullis.dev, kind: Composition, name: {name}}}}}\n"
    )
}

fn route(composition: &str) -> String {
    route_with_filters(&names(composition))
}

/// The rule `GET h{path}` reaches on the fixture's `http` listener.
fn reached(compiled: &Compiled, path: &str) -> Arc<RouteRule> {
    let (_, rule) = crate::tests::reach(compiled, "127.0.0.9:80", "h", path).expect("a rule");
    Arc::clone(rule)
}

fn condition<'a>(status: &'a ObjectStatus, kind: &str) -> &'a Condition {
    status
        .conditions
        .iter()
        .find(|c| c.kind == kind)
        .unwrap_or_else(|| panic!("{} has no {kind}", status.label()))
}

fn backend_id(compiled: &Compiled, target: &BackendTarget) -> String {
    match target {
        BackendTarget::Backend(index) => compiled.snapshot.backends[*index].id.to_string(),
        BackendTarget::Invalid(response) => {
            panic!("unresolved: {}", String::from_utf8_lossy(&response.body))
        }
    }
}

fn text(text: &str) -> Piece {
    Piece::Text(text.to_owned())
}

fn value(reference: Reference, in_query: bool) -> Piece {
    Piece::Value {
        reference,
        in_query,
    }
}

mod explain;

#[test]
fn a_composition_compiles_into_parts_with_resolved_references_and_backends() {
    let compiled = compile_yaml(&format!(
        "{BACKENDS}{}{}",
        composition("page", PAGE),
        route("page")
    ));
    let rule = reached(&compiled, "/products/42");
    let page = rule
        .filters
        .composition
        .as_ref()
        .expect("the rule composes");
    assert_eq!(&*page.name, "Composition infra/page");
    let pattern = page
        .path_pattern
        .as_ref()
        .expect("a template reads the path");
    assert_eq!(pattern.names(), ["id"]);
    assert_eq!(page.merge, Merge::Keyed);
    assert_eq!(page.timeout, DEFAULT_TIMEOUT);
    assert_eq!(page.max_part_bytes, DEFAULT_MAX_PART_BYTES);
    let [product, price, stock] = &page.parts[..] else {
        panic!("three parts: {:?}", page.parts);
    };

    assert_eq!(&*product.name, "product");
    assert_eq!(product.method, Method::GET);
    assert_eq!(
        backend_id(&compiled, &product.backend),
        "Service infra/web:8080"
    );
    assert_eq!(
        product.target.pieces,
        [
            text("/products/"),
            value(Reference::PathParam(0), false),
            text("?lang="),
            value(Reference::Query("lang".to_owned()), true),
        ]
    );
    assert_eq!(
        product.forward_headers,
        [
            HeaderName::from_static("authorization"),
            HeaderName::from_static("accept-language")
        ]
    );
    let tenant = HeaderName::from_static("x-tenant");
    assert_eq!(
        product.set_headers,
        [(
            tenant.clone(),
            Template {
                pieces: vec![text("t-"), value(Reference::Header(tenant), false)]
            }
        )]
    );
    assert_eq!(product.timeout, Some(Duration::from_millis(300)));
    assert!(product.required);
    assert_eq!(product.select.as_deref(), Some("/data"));
    assert!(product.depends_on.is_empty());

    assert_eq!(price.method, Method::POST);
    assert_eq!(
        backend_id(&compiled, &price.backend),
        "Service infra/pricing:80"
    );
    let sku = || Reference::Response {
        part: 0,
        pointer: "/sku".to_owned(),
    };
    assert_eq!(price.target.pieces, [text("/prices/"), value(sku(), false)]);
    assert_eq!(price.depends_on, [0]);
    assert!(!price.required);
    assert_eq!((price.timeout, &price.select), (None, &None));

    assert_eq!(backend_id(&compiled, &stock.backend), "Backend infra/stock");
    let whole_price = Reference::Response {
        part: 1,
        pointer: String::new(),
    };
    assert_eq!(
        stock.target.pieces,
        [
            text("/stock?sku="),
            value(sku(), true),
            text("&price="),
            value(whole_price, true),
        ]
    );
    assert_eq!(stock.depends_on, [0, 1]);
    // product and price are read by others (their documents are parsed), stock by none.
    assert_eq!(
        (product.is_read, price.is_read, stock.is_read),
        (true, true, false)
    );

    // The rule answers with the composition: its backendRefs are neither used nor resolved.
    let RuleAction::Respond(response) = &rule.action else {
        panic!("a composing rule does not forward");
    };
    assert!(
        String::from_utf8_lossy(&response.body).contains("answered by Composition infra/page"),
        "{response:?}"
    );
    let route = object(&compiled, "HTTPRoute", "infra", "r");
    assert!(route.is_healthy(), "{:?}", route.problems);
    let ids: Vec<String> = compiled
        .snapshot
        .backends
        .iter()
        .map(|b| b.id.to_string())
        .collect();
    assert!(!ids.iter().any(|id| id.contains("nowhere")), "{ids:?}");

    let status = object(&compiled, "Composition", "infra", "page");
    assert!(status.is_healthy(), "{:?}", status.problems);
    assert_eq!(condition(status, "Accepted").status, ConditionStatus::True);
    assert_eq!(
        condition(status, "ResolvedRefs").status,
        ConditionStatus::True
    );
    let ancestors: Vec<String> = status
        .ancestors
        .iter()
        .map(|a| {
            format!(
                "{} {}/{}",
                a.ancestor_ref.kind, a.ancestor_ref.namespace, a.ancestor_ref.name
            )
        })
        .collect();
    assert_eq!(ancestors, ["Gateway infra/gw"]);
    assert_eq!(
        &*status.ancestors[0].controller_name,
        "portcullis.dev/gateway-controller"
    );
}

#[test]
fn defaults_apply_and_an_unused_path_pattern_is_left_out() {
    let spec = "  pathPattern: /products/{id}\n  timeout: 2s\n  maxPartBytes: 64Ki\n  merge: {type: Deep}\n  parts: [{name: only, backendRef: {name: web, port: 8080}}]\n";
    let compiled = compile_yaml(&format!("{}{}", composition("page", spec), route("page")));
    let rule = reached(&compiled, "/products/1");
    let page = rule.filters.composition.as_ref().expect("composes");
    assert_eq!(page.path_pattern, None, "no template reads the path");
    assert_eq!(page.merge, Merge::Deep);
    assert_eq!(page.timeout, Duration::from_secs(2));
    assert_eq!(page.max_part_bytes, 64 * 1024);
    let only = &page.parts[0];
    assert_eq!(only.method, Method::GET);
    assert_eq!(only.target.pieces, [text("/")]);
    assert!(!only.required && only.timeout.is_none() && only.select.is_none());
    assert!(only.forward_headers.is_empty() && only.set_headers.is_empty());
}

/// Compiles Composition `page` with `spec`, named by route `r`. Checks that it is not Accepted,
/// that the rule answers 500 and that the route's `ResolvedRefs` names every problem; returns
/// the Composition's problems.
fn invalid(spec: &str) -> Vec<String> {
    let compiled = compile_yaml(&format!(
        "{BACKENDS}{}{}",
        composition("page", spec),
        route("page")
    ));
    let status = object(&compiled, "Composition", "infra", "page");
    let accepted = condition(status, "Accepted");
    assert_eq!(
        (accepted.status, accepted.reason),
        (ConditionStatus::False, "Invalid"),
        "{accepted:?}"
    );
    assert!(!status.is_healthy());

    let rule = reached(&compiled, "/products/1");
    assert!(rule.filters.composition.is_none());
    let RuleAction::Respond(response) = &rule.action else {
        panic!("the rule answers 500");
    };
    assert_eq!(response.status, 500);
    let body = String::from_utf8_lossy(&response.body);
    assert!(
        body.contains("Composition infra/page is not valid"),
        "{body}"
    );

    let route = object(&compiled, "HTTPRoute", "infra", "r");
    assert_eq!(
        parent_condition(route, "Accepted").status,
        ConditionStatus::True
    );
    let resolved = parent_condition(route, "ResolvedRefs");
    assert_eq!(
        (resolved.status, resolved.reason),
        (ConditionStatus::False, "InvalidComposition")
    );
    for problem in &status.problems {
        assert!(
            resolved.message.contains(problem.as_str()),
            "{resolved:?} lacks {problem}"
        );
        assert!(body.contains(problem.as_str()), "{body} lacks {problem}");
    }
    assert_eq!(
        route.problems,
        [format!(
            "HTTPRoute infra/r rules[0].filters[0]: Composition infra/page is not valid: {} (InvalidComposition)",
            status.problems.join("; ")
        )]
    );
    status.problems.clone()
}

fn part(name: &str, extra: &str) -> String {
    format!("  - name: {name}\n    backendRef: {{name: web, port: 8080}}\n{extra}")
}

#[test]
fn an_unknown_part_is_named_with_its_reference() {
    let spec = format!(
        "  parts:\n{}{}",
        part("product", ""),
        part("price", "    path: /prices/{response.prodcut.json/sku}\n")
    );
    assert_eq!(
        invalid(&spec),
        [
            "Composition infra/page spec.parts[1].path: unknown part \"prodcut\" in {response.prodcut.json/sku}"
        ]
    );
}

#[test]
fn a_template_that_does_not_parse_says_where() {
    let spec = format!(
        "  pathPattern: /products/{{id}}\n  parts:\n{}",
        part("a", "    path: \"/products/{request.path.id\"\n")
    );
    assert_eq!(
        invalid(&spec),
        [
            "Composition infra/page spec.parts[0].path: the `{` at byte 10 is not closed in \"/products/{request.path.id\""
        ]
    );
    let spec = format!(
        "  parts:\n{}",
        part(
            "a",
            "    headers: {set: [{name: x-a, value: \"{request.cookie.a}\"}]}\n"
        )
    );
    assert_eq!(
        invalid(&spec),
        [
            "Composition infra/page spec.parts[0].headers.set[0].value: unknown reference {request.cookie.a}: expected request.path.NAME, request.query.NAME, request.header.NAME or response.PART.json[/POINTER] in \"{request.cookie.a}\""
        ]
    );
}

#[test]
fn a_path_reference_needs_the_pattern_to_name_it() {
    let spec = format!(
        "  parts:\n{}",
        part("a", "    path: /products/{request.path.id}\n")
    );
    assert_eq!(
        invalid(&spec),
        [
            "Composition infra/page spec.parts[0].path: {request.path.id} needs spec.pathPattern to name the path's segments"
        ]
    );
    let spec = format!(
        "  pathPattern: /products/{{id}}\n  parts:\n{}",
        part(
            "a",
            "    headers: {set: [{name: x-sku, value: \"{request.path.sku}\"}]}\n"
        )
    );
    assert_eq!(
        invalid(&spec),
        [
            "Composition infra/page spec.parts[0].headers.set[0].value: unknown path parameter \"sku\" in {request.path.sku}: spec.pathPattern /products/{id} names id"
        ]
    );
    let spec = format!(
        "  pathPattern: products/{{id}}\n  parts:\n{}",
        part("a", "")
    );
    assert_eq!(
        invalid(&spec),
        ["Composition infra/page spec.pathPattern: \"products/{id}\" must start with `/`"]
    );
}

#[test]
fn a_dependency_cycle_names_the_parts_on_it() {
    let spec = format!(
        "  parts:\n{}{}{}{}",
        part("first", ""),
        part("a", "    path: /a/{response.b.json/id}\n"),
        part("b", "    path: /b/{response.a.json/id}\n"),
        // Waits on the cycle without being on it: not named.
        part("c", "    path: /c/{response.a.json/id}\n"),
    );
    assert_eq!(
        invalid(&spec),
        [
            "Composition infra/page spec.parts: dependency cycle: a reads b, b reads a (a part runs after the parts whose responses it reads)"
        ]
    );
    let spec = format!(
        "  parts:\n{}",
        part("a", "    path: /a/{response.a.json}\n")
    );
    assert_eq!(
        invalid(&spec),
        [
            "Composition infra/page spec.parts[0].path: {response.a.json} reads this part's own response"
        ]
    );
    // A cycle is found next to other problems of the same templates, not only once they are
    // fixed.
    let spec = format!(
        "  parts:\n{}{}",
        part("a", "    path: /a/{response.b.json/id}\n"),
        part(
            "b",
            "    path: /b/{response.a.json/id}?q={request.path.id}\n"
        ),
    );
    assert_eq!(
        invalid(&spec),
        [
            "Composition infra/page spec.parts[1].path: {request.path.id} needs spec.pathPattern to name the path's segments",
            "Composition infra/page spec.parts: dependency cycle: a reads b, b reads a (a part runs after the parts whose responses it reads)",
        ]
    );
}

#[test]
fn part_names_are_names_and_unique() {
    let spec = format!(
        "  parts:\n{}{}{}",
        part("a", ""),
        part("a", ""),
        part("\"pro duct\"", "")
    );
    assert_eq!(
        invalid(&spec),
        [
            "Composition infra/page spec.parts[1].name: \"a\" is already the name of parts[0] (part names are unique)",
            "Composition infra/page spec.parts[2].name: \"pro duct\" is not a part name (letters, digits, \"_\" and \"-\", at most 63 characters)",
        ]
    );
}

#[test]
fn every_bad_field_of_a_part_is_reported() {
    let spec = format!(
        "  timeout: 1s\n  parts:\n{}",
        part(
            "a",
            "    method: \"GE T\"\n    path: products\n    select: data\n    timeout: 2s\n    headers: {forward: [\"bad header\"]}\n"
        )
    );
    assert_eq!(
        invalid(&spec),
        [
            "Composition infra/page spec.parts[0].method: \"GE T\" is not an HTTP method (a token such as GET or POST)",
            "Composition infra/page spec.parts[0].path: \"products\" must start with \"/\"",
            "Composition infra/page spec.parts[0].headers.forward[0]: \"bad header\" is not a valid header name",
            "Composition infra/page spec.parts[0].timeout (2s) must not exceed spec.timeout (1s)",
            "Composition infra/page spec.parts[0].select: \"data\" is not a JSON pointer (RFC 6901: empty, or \"/\" then tokens, \"~0\" and \"~1\" the only escapes)",
        ]
    );
    let spec = format!(
        "  parts:\n{}",
        part(
            "a",
            "    method: CONNECT\n    headers: {forward: [Transfer-Encoding], set: [{name: connection, value: close}]}\n"
        )
    );
    assert_eq!(
        invalid(&spec),
        [
            "Composition infra/page spec.parts[0].method: CONNECT opens a tunnel; a part requests a document",
            "Composition infra/page spec.parts[0].headers.forward[0]: \"Transfer-Encoding\" belongs to the connection, not the request: the gateway frames a part's request itself",
            "Composition infra/page spec.parts[0].headers.set[0].name: \"connection\" belongs to the connection, not the request: the gateway frames a part's request itself",
        ]
    );
    // Without spec.timeout, the default deadline bounds a part's.
    let spec = format!("  parts:\n{}", part("a", "    timeout: 15s\n"));
    assert_eq!(
        invalid(&spec),
        [
            "Composition infra/page spec.parts[0].timeout (15s) must not exceed spec.timeout (10s, its default)"
        ]
    );
}

#[test]
fn bad_pointers_sizes_durations_and_merge_types_are_reported() {
    let spec = format!(
        "  timeout: 0s\n  maxPartBytes: 1.5Mi\n  merge: {{type: Shallow}}\n  parts:\n{}",
        part(
            "a",
            "    path: \"/a/{response.b.json~2}\"\n    select: /x~2\n"
        )
    );
    let problems = invalid(&format!("{spec}{}", part("b", "")));
    assert_eq!(
        problems,
        [
            "Composition infra/page spec.timeout: \"0s\" must be more than 0s",
            "Composition infra/page spec.maxPartBytes: \"1.5Mi\" is not a byte size (expected e.g. 65536, 32KiB, 1MiB, 64k)",
            "Composition infra/page spec.merge.type: \"Shallow\" is not a merge type (Keyed or Deep)",
            "Composition infra/page spec.parts[0].path: \"~2\" is not a JSON pointer (RFC 6901: empty, or `/` then tokens, `~0` and `~1` the only escapes) in \"/a/{response.b.json~2}\"",
            "Composition infra/page spec.parts[0].select: \"/x~2\" is not a JSON pointer (RFC 6901: empty, or \"/\" then tokens, \"~0\" and \"~1\" the only escapes)",
        ]
    );
}

#[test]
fn at_most_sixteen_parts() {
    let parts: String = (0..17).map(|i| part(&format!("p{i}"), "")).collect();
    assert_eq!(
        invalid(&format!("  parts:\n{parts}")),
        ["Composition infra/page spec.parts: 17 parts; at most 16 are allowed"]
    );
    assert_eq!(
        invalid("  parts: []\n"),
        ["Composition infra/page spec.parts: at least one part is required"]
    );
}

#[test]
fn a_missing_composition_makes_the_rule_answer_500() {
    let compiled = compile_yaml(&route("missing"));
    let route = object(&compiled, "HTTPRoute", "infra", "r");
    let problem = "HTTPRoute infra/r rules[0].filters[0]: Composition infra/missing not found";
    assert_eq!(route.problems, [format!("{problem} (BackendNotFound)")]);
    let resolved = parent_condition(route, "ResolvedRefs");
    assert_eq!(
        (resolved.status, resolved.reason, resolved.message.as_ref()),
        (
            ConditionStatus::False,
            "BackendNotFound",
            format!("{problem} (BackendNotFound)").as_str()
        )
    );
    // The rule stays (the filter is not skipped) and answers 500 naming the problem.
    assert_eq!(
        parent_condition(route, "Accepted").status,
        ConditionStatus::True
    );
    let rule = reached(&compiled, "/products/1");
    let RuleAction::Respond(response) = &rule.action else {
        panic!("answers 500");
    };
    assert_eq!(response.status, 500);
    assert!(String::from_utf8_lossy(&response.body).contains(problem));
    // The other rule keeps forwarding.
    assert!(matches!(
        reached(&compiled, "/other").action,
        RuleAction::Forward(_)
    ));
}

#[test]
fn a_part_crossing_namespaces_needs_a_reference_grant_from_compositions() {
    let ledger = "---\napiVersion: v1\nkind: Service\nmetadata: {name: ledger, namespace: billing}\nspec: {ports: [{name: http, port: 80}]}\n";
    let spec = format!(
        "  parts:\n{}  - name: balance\n    backendRef: {{name: ledger, namespace: billing, port: 80}}\n",
        part("a", "")
    );
    let base = format!("{ledger}{}{}", composition("page", &spec), route("page"));
    let compiled = compile_yaml(&base);
    let status = object(&compiled, "Composition", "infra", "page");
    let problem = "Composition infra/page spec.parts[1].backendRef: Service billing/ledger is in another namespace and no ReferenceGrant in billing allows Composition from infra";
    assert_eq!(status.problems, [format!("{problem} (RefNotPermitted)")]);
    // Not fatal: the Composition is Accepted, its part fails at runtime.
    assert_eq!(condition(status, "Accepted").status, ConditionStatus::True);
    let resolved = condition(status, "ResolvedRefs");
    assert_eq!(
        (resolved.status, resolved.reason),
        (ConditionStatus::False, "RefNotPermitted")
    );
    let rule = reached(&compiled, "/products/1");
    let page = rule.filters.composition.as_ref().expect("still composes");
    let BackendTarget::Invalid(response) = &page.parts[1].backend else {
        panic!("the part's backend does not resolve");
    };
    assert_eq!(response.status, 500);
    assert!(String::from_utf8_lossy(&response.body).contains(problem));
    assert_eq!(
        backend_id(&compiled, &page.parts[0].backend),
        "Service infra/web:8080"
    );
    // The route is fine: the problem is the Composition's.
    assert!(object(&compiled, "HTTPRoute", "infra", "r").is_healthy());

    // A grant for routes does not cover Compositions; one from Compositions does.
    let grant = |kind: &str, group: &str| {
        format!(
            "---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {{name: g, namespace: billing}}\nspec:\n  from: [{{group: {group}, kind: {kind}, namespace: infra}}]\n  to: [{{group: \"\", kind: Service}}]\n"
        )
    };
    let compiled = compile_yaml(&format!(
        "{base}{}",
        grant("HTTPRoute", "gateway.networking.k8s.io")
    ));
    assert!(!object(&compiled, "Composition", "infra", "page").is_healthy());
    let compiled = compile_yaml(&format!("{base}{}", grant("Composition", "portcullis.dev")));
    assert!(object(&compiled, "Composition", "infra", "page").is_healthy());
    let rule = reached(&compiled, "/products/1");
    let page = rule.filters.composition.as_ref().expect("composes");
    assert_eq!(
        backend_id(&compiled, &page.parts[1].backend),
        "Service billing/ledger:80"
    );
}

#[test]
fn an_unreferenced_broken_composition_still_fails_check() {
    let compiled = compile_yaml(&composition(
        "lonely",
        "  parts: [{name: a, backendRef: {name: gone, port: 80}}]\n",
    ));
    let status = object(&compiled, "Composition", "infra", "lonely");
    assert!(status.ancestors.is_empty());
    assert_eq!(
        status.problems,
        [
            "Composition infra/lonely spec.parts[0].backendRef: Service infra/gone not found (BackendNotFound)"
        ]
    );
    assert!(!compiled.status.is_healthy());
}

#[test]
fn compositions_only_on_httproute_rules() {
    let page = composition(
        "page",
        "  parts: [{name: a, backendRef: {name: web, port: 8080}}]\n",
    );
    let on_backend_ref = format!(
        "{page}---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: infra}}\nspec:\n  parentRefs: [{{name: gw, sectionName: http}}]\n  rules:\n  - backendRefs:\n    - name: web\n      port: 8080\n      filters: [{{type: ExtensionRef, extensionRef: {{group: portcullis.dev, kind: Composition, name: page}}}}]\n"
    );
    let compiled = compile_yaml(&on_backend_ref);
    assert_eq!(
        object(&compiled, "HTTPRoute", "infra", "r").problems,
        [
            "HTTPRoute infra/r rules[0].backendRefs[0].filters[0]: ExtensionRef portcullis.dev/Composition page: a Composition is only supported on the rule, not on a backendRef (it answers instead of forwarding)"
        ]
    );
    let grpc = format!(
        "{page}---\napiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {{name: g, namespace: infra}}\nspec:\n  parentRefs: [{{name: gw, sectionName: http}}]\n  rules:\n  - filters: [{{type: ExtensionRef, extensionRef: {{group: portcullis.dev, kind: Composition, name: page}}}}]\n    backendRefs: [{{name: web, port: 8080}}]\n"
    );
    let compiled = compile_yaml(&grpc);
    let status = object(&compiled, "GRPCRoute", "infra", "g");
    assert_eq!(
        status.problems,
        [
            "GRPCRoute infra/g rules[0].filters[0]: ExtensionRef portcullis.dev/Composition page: a Composition answers HTTP requests with a JSON document; it is only supported on HTTPRoute rules, not on GRPCRoute rules"
        ]
    );
    assert_eq!(
        parent_condition(status, "Accepted").status,
        ConditionStatus::False
    );
    let other = route_with_filters(
        "    - {type: ExtensionRef, extensionRef: {group: portcullis.dev, kind: Recipe, name: page}}\n",
    );
    let compiled = compile_yaml(&format!("{page}{other}"));
    assert_eq!(
        object(&compiled, "HTTPRoute", "infra", "r").problems,
        [
            "HTTPRoute infra/r rules[0].filters[0]: ExtensionRef portcullis.dev/Recipe page is not supported: the only extension filter kind is portcullis.dev/Composition"
        ]
    );
}

#[test]
fn other_filters_work_around_a_composition_but_not_a_redirect() {
    let page = composition(
        "page",
        "  parts: [{name: a, backendRef: {name: web, port: 8080}}]\n",
    );
    let headers = "    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-a, value: b}]}}\n    - {type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: x-c, value: d}]}}\n    - {type: CORS, cors: {allowOrigins: [\"https://shop.example\"]}}\n";
    let compiled = compile_yaml(&format!(
        "{page}{}",
        route_with_filters(&format!("{headers}{}", names("page")))
    ));
    let rule = reached(&compiled, "/products/1");
    assert!(rule.filters.composition.is_some());
    assert!(rule.filters.request_headers.is_some());
    assert!(rule.filters.response_headers.is_some());
    assert!(rule.filters.cors.is_some());

    let redirect = "    - {type: RequestRedirect, requestRedirect: {scheme: https}}\n";
    let compiled = compile_yaml(&format!(
        "{page}{}",
        route_with_filters(&format!("{redirect}{}", names("page")))
    ));
    assert_eq!(
        object(&compiled, "HTTPRoute", "infra", "r").problems,
        [
            "HTTPRoute infra/r rules[0].filters: RequestRedirect and an ExtensionRef to a Composition cannot be used together (each answers the request)"
        ]
    );
    let twice = format!("{}{}", names("page"), names("page"));
    let compiled = compile_yaml(&format!("{page}{}", route_with_filters(&twice)));
    assert_eq!(
        object(&compiled, "HTTPRoute", "infra", "r").problems,
        [
            "HTTPRoute infra/r rules[0].filters[1]: ExtensionRef portcullis.dev/Composition page: this rule already names a Composition (a rule answers with one)"
        ]
    );
}
