use super::*;

fn value(reference: RawReference, in_query: bool) -> RawPiece {
    RawPiece::Value {
        reference,
        in_query,
    }
}

#[test]
fn a_template_is_cut_into_text_and_references_and_knows_where_the_query_starts() {
    let pieces = parse_template(
        "/prices/{response.product.json/sku}?currency={request.query.cur}&lang={request.header.accept-language}",
    )
    .expect("parses");
    assert_eq!(
        pieces,
        vec![
            RawPiece::Text("/prices/".into()),
            value(
                RawReference::Response {
                    part: "product".into(),
                    pointer: "/sku".into()
                },
                false
            ),
            RawPiece::Text("?currency=".into()),
            value(RawReference::Query("cur".into()), true),
            RawPiece::Text("&lang=".into()),
            value(
                RawReference::Header(HeaderName::from_static("accept-language")),
                true
            ),
        ]
    );
}

#[test]
fn doubled_braces_are_literal_and_a_whole_document_reference_has_an_empty_pointer() {
    let pieces = parse_template("{{x}}{response.a.json}{request.path.id}").expect("parses");
    assert_eq!(
        pieces,
        vec![
            RawPiece::Text("{x}".into()),
            value(
                RawReference::Response {
                    part: "a".into(),
                    pointer: String::new()
                },
                false
            ),
            value(RawReference::PathParam("id".into()), false),
        ]
    );
    assert_eq!(parse_template("").expect("empty parses"), vec![]);
}

#[test]
fn bad_templates_say_what_is_wrong() {
    assert_eq!(
        parse_template("/a/{request.path.id"),
        Err(TemplateError::Unclosed { at: 3 })
    );
    assert_eq!(
        parse_template("/a}"),
        Err(TemplateError::StrayBrace { at: 2 })
    );
    for unknown in [
        "{request.body}",
        "{request.path.}",
        "{request.path.a.b}",
        "{response.x}",
        "{response..json}",
        "{env.HOME}",
    ] {
        assert!(
            matches!(
                parse_template(unknown),
                Err(TemplateError::UnknownReference { .. })
            ),
            "{unknown}: {:?}",
            parse_template(unknown)
        );
    }
    assert_eq!(
        parse_template("{request.header.bad name}"),
        Err(TemplateError::InvalidHeaderName {
            name: "bad name".into()
        })
    );
    assert_eq!(
        parse_template("{response.a.jsonsku}"),
        Err(TemplateError::InvalidPointer {
            pointer: "sku".into()
        })
    );
    assert_eq!(
        parse_template("{response.a.json/a~2}"),
        Err(TemplateError::InvalidPointer {
            pointer: "/a~2".into()
        })
    );
    let message = TemplateError::UnknownReference {
        reference: "env.HOME".into(),
    }
    .to_string();
    assert!(message.contains("{env.HOME}"), "{message}");
}

#[test]
fn a_path_pattern_binds_whole_segments_only() {
    let pattern = PathPattern::parse("/products/{id}/reviews/{review}").expect("parses");
    assert_eq!(pattern.names(), ["id", "review"]);
    assert_eq!(pattern.index_of("review"), Some(1));
    assert_eq!(
        pattern.bind("/products/42/reviews/7"),
        Some(vec!["42", "7"])
    );
    assert_eq!(pattern.bind("/products/42/reviews"), None);
    assert_eq!(pattern.bind("/products/42/reviews/7/more"), None);
    assert_eq!(pattern.bind("/products//reviews/7"), None);
    assert_eq!(pattern.bind("/items/42/reviews/7"), None);
    assert_eq!(pattern.to_string(), "/products/{id}/reviews/{review}");
}

#[test]
fn bad_path_patterns_are_refused() {
    assert_eq!(
        PathPattern::parse("products/{id}"),
        Err(PatternError::NotAbsolute)
    );
    assert_eq!(
        PathPattern::parse("/p-{id}"),
        Err(PatternError::InvalidSegment("p-{id}".into()))
    );
    assert_eq!(
        PathPattern::parse("/{a b}"),
        Err(PatternError::InvalidSegment("{a b}".into()))
    );
    assert_eq!(
        PathPattern::parse("/{id}/{id}"),
        Err(PatternError::DuplicateName("id".into()))
    );
}

#[test]
fn dependencies_order_parts_and_cycles_are_named() {
    // price needs product; stock needs nothing; review needs price and product.
    let order = dependency_order(&[vec![], vec![0], vec![], vec![0, 1]]).expect("no cycle");
    assert_eq!(order, vec![0, 1, 2, 3]);
    let order = dependency_order(&[vec![1], vec![], vec![0]]).expect("no cycle");
    assert_eq!(order, vec![1, 0, 2]);
    // a ↔ b, and c after them: none of the three can run.
    assert_eq!(
        dependency_order(&[vec![1], vec![0], vec![0], vec![]]),
        Err(vec![0, 1, 2])
    );
    assert_eq!(dependency_order(&[vec![0]]), Err(vec![0]));
}
