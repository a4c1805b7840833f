use super::*;

fn route() -> FieldPath {
    FieldPath::object("HTTPRoute", "shop", "cart")
}

#[test]
fn first_field_follows_the_object_after_a_space() {
    assert_eq!(route().to_string(), "HTTPRoute shop/cart");
    assert_eq!(
        route().field("rules").to_string(),
        "HTTPRoute shop/cart rules"
    );
    assert_eq!(
        route().field("spec.targetRefs").index(2).to_string(),
        "HTTPRoute shop/cart spec.targetRefs[2]"
    );
}

#[test]
fn fields_and_indexes_chain_like_the_api_spells_them() {
    let path = route()
        .field("rules")
        .index(1)
        .field("backendRefs")
        .index(0);
    assert_eq!(
        path.to_string(),
        "HTTPRoute shop/cart rules[1].backendRefs[0]"
    );
    assert_eq!(
        path.field("filters")
            .index(3)
            .field("requestRedirect.port")
            .to_string(),
        "HTTPRoute shop/cart rules[1].backendRefs[0].filters[3].requestRedirect.port"
    );
}

#[test]
fn a_path_does_not_change_when_extended() {
    let rule = route().field("rules").index(0);
    let _ = rule.field("matches");
    assert_eq!(rule.to_string(), "HTTPRoute shop/cart rules[0]");
}

#[test]
fn rendered_roots_continue_with_a_dot() {
    assert_eq!(
        FieldPath::from("r").field("sessionPersistence").to_string(),
        "r.sessionPersistence"
    );
}

#[test]
fn problems_render_with_a_colon_or_as_one_sentence() {
    let at = route().field("rules").index(0);
    assert_eq!(
        at.field("timeouts.request")
            .problem("\"soon\" is not a duration")
            .to_string(),
        "HTTPRoute shop/cart rules[0].timeouts.request: \"soon\" is not a duration"
    );
    assert_eq!(
        at.field("retry.attempts")
            .sentence("must be at least 1")
            .to_string(),
        "HTTPRoute shop/cart rules[0].retry.attempts must be at least 1"
    );
}

#[test]
fn a_reason_shows_in_the_line_not_in_the_message() {
    let problem = route()
        .field("rules")
        .index(1)
        .field("backendRefs")
        .index(0)
        .problem("Service shop/missing not found")
        .because("BackendNotFound");
    assert_eq!(problem.reason_or("Invalid"), "BackendNotFound");
    assert_eq!(
        problem.to_string(),
        "HTTPRoute shop/cart rules[1].backendRefs[0]: Service shop/missing not found"
    );
    assert_eq!(
        problem.line(),
        "HTTPRoute shop/cart rules[1].backendRefs[0]: Service shop/missing not found (BackendNotFound)"
    );
}

#[test]
fn problems_keep_every_problem_in_order() {
    let mut problems = Problems::default();
    assert_eq!(problems.ok(Ok::<_, Problem>(1)), Some(1));
    assert!(problems.is_empty());
    assert_eq!(problems.ok::<u8>(Err(route().problem("a"))), None);
    problems.report(route().field("b").problem("b").because("B"));
    assert_eq!(
        problems.first().map(|p| p.reason_or("Invalid")),
        Some("Invalid")
    );
    assert_eq!(
        problems.join(),
        "HTTPRoute shop/cart: a; HTTPRoute shop/cart b: b"
    );
    assert_eq!(
        problems.join_lines(),
        "HTTPRoute shop/cart: a; HTTPRoute shop/cart b: b (B)"
    );
    assert_eq!(
        problems.lines(),
        vec![
            "HTTPRoute shop/cart: a".to_owned(),
            "HTTPRoute shop/cart b: b (B)".to_owned()
        ]
    );
    assert!(problems.clone().or_value(()).is_err());
    assert_eq!(Problems::default().or_value(7), Ok(7));
}
