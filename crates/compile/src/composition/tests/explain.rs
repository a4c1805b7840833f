//! `explain` and `/config` of a rule that names a Composition: its plan, wave by wave.

use model::{Store, parse_documents};

use super::{BACKENDS, PAGE, composition, route};
use crate::explain::{Action, CompositionPlan, ExplainRequest};
use crate::tests::{BASE, compile_yaml};
use crate::{CompileOptions, Compiler};

fn explain_page(url: &str) -> (CompositionPlan, String) {
    let mut store = Store::new();
    let text = format!(
        "{BASE}{BACKENDS}{}{}",
        composition("page", PAGE),
        route("page")
    );
    for object in parse_documents(&text).expect("fixture parses").objects {
        store.insert(object);
    }
    let compiler = Compiler::build(&store, CompileOptions::default());
    let request = ExplainRequest::parse("GET", url, &[] as &[&str], None).expect("parses");
    let explanation = compiler.explain(&store, &request).expect("explains");
    let rendered = explanation.to_string();
    let matched = explanation.matched.expect("matched");
    assert!(
        matched
            .filters
            .contains(&"ExtensionRef (Composition infra/page)".to_owned()),
        "{:?}",
        matched.filters
    );
    let Action::Compose { composition } = matched.action else {
        panic!("the rule composes: {:?}", matched.action);
    };
    (composition, rendered)
}

#[test]
fn explain_shows_the_plan_in_waves_with_the_path_bindings() {
    let (plan, text) = explain_page("http://h/products/42");
    assert_eq!(plan.composition, "Composition infra/page");
    assert_eq!(plan.path_pattern.as_deref(), Some("/products/{id}"));
    assert_eq!(plan.path_fits, Some(true));
    let bound: Vec<(&str, &str)> = plan
        .bindings
        .iter()
        .map(|b| (b.name.as_str(), b.value.as_str()))
        .collect();
    assert_eq!(bound, [("id", "42")]);
    assert_eq!(
        (plan.merge, plan.timeout.as_str(), plan.max_part_bytes),
        ("Keyed", "10s", 1 << 20)
    );
    let waves: Vec<(usize, Vec<&str>)> = plan
        .waves
        .iter()
        .map(|w| (w.wave, w.parts.iter().map(|p| p.name.as_str()).collect()))
        .collect();
    assert_eq!(
        waves,
        [(1, vec!["product"]), (2, vec!["price"]), (3, vec!["stock"])]
    );
    let product = &plan.waves[0].parts[0];
    assert_eq!(product.method, "GET");
    assert_eq!(product.backend.as_deref(), Some("Service infra/web:8080"));
    assert_eq!(
        product.target,
        "/products/{request.path.id}?lang={request.query.lang}"
    );
    assert_eq!(
        product.forward_headers,
        ["authorization", "accept-language"]
    );
    assert_eq!(
        product.set_headers,
        ["x-tenant: t-{request.header.x-tenant}"]
    );
    assert!(product.required);
    assert_eq!(product.timeout.as_deref(), Some("300ms"));
    assert_eq!(product.select.as_deref(), Some("/data"));
    let stock = &plan.waves[2].parts[0];
    assert_eq!(stock.backend.as_deref(), Some("Backend infra/stock"));
    assert_eq!(
        stock.target,
        "/stock?sku={response.product.json/sku}&price={response.price.json}"
    );
    assert_eq!(stock.depends_on, ["product", "price"]);
    assert!(!stock.required);

    assert!(text.contains("  composes: Composition infra/page (merge Keyed, deadline 10s, at most 1048576 bytes per part)\n"), "{text}");
    assert!(
        text.contains("            path pattern /products/{id}: id=42\n"),
        "{text}"
    );
    assert!(text.contains("            wave 1: product GET /products/{request.path.id}?lang={request.query.lang} -> Service infra/web:8080, required, timeout 300ms, select /data\n"), "{text}");
    assert!(text.contains("            wave 2: price POST /prices/{response.product.json/sku} -> Service infra/pricing:80, optional, after product\n"), "{text}");
    assert!(text.contains("            wave 3: stock GET /stock?sku={response.product.json/sku}&price={response.price.json} -> Backend infra/stock, optional, after product, price\n"), "{text}");

    // A path the pattern does not fit: the references to it have no value.
    let (plan, text) = explain_page("http://h/products/42/reviews");
    assert_eq!(plan.path_fits, Some(false));
    assert!(plan.bindings.is_empty());
    assert!(
        text.contains("path pattern /products/{id}: the request's path does not fit it"),
        "{text}"
    );
}

#[test]
fn config_shows_each_rules_composition() {
    let compiled = compile_yaml(&format!(
        "{BACKENDS}{}{}",
        composition("page", PAGE),
        route("page")
    ));
    let listeners = compiled.config_view["listeners"]
        .as_array()
        .expect("listeners");
    let routes: Vec<&serde_json::Value> = listeners
        .iter()
        .flat_map(|l| l["routes"].as_array().into_iter().flatten())
        .filter(|r| r["route"] == "HTTPRoute infra/r")
        .collect();
    assert_eq!(routes.len(), 1);
    let plan = &routes[0]["compositions"]["HTTPRoute infra/r rules[0]"];
    assert_eq!(plan["composition"], "Composition infra/page");
    assert_eq!(plan["path_pattern"], "/products/{id}");
    assert!(
        plan.get("path_fits").is_none() && plan.get("bindings").is_none(),
        "{plan}"
    );
    assert_eq!(plan["waves"][1]["parts"][0]["name"], "price");
    assert_eq!(
        plan["waves"][1]["parts"][0]["backend"],
        "Service infra/pricing:80"
    );
    assert_eq!(
        plan["waves"][1]["parts"][0]["depends_on"],
        serde_json::json!(["product"])
    );
}
