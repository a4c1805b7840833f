use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, Method, Request, StatusCode};
use serde_json::{Value, json};
use snapshot::composition::{
    Composition, DEFAULT_MAX_PART_BYTES, Merge, Part, PathPattern, Piece, Reference, Template,
};
use snapshot::{BackendTarget, DirectResponse};

use super::{
    Document, Inputs, PartError, bind, deep_merge, merge, parse_document, part_request,
    validated_text,
};

fn text(text: &str) -> Piece {
    Piece::Text(text.to_owned())
}

fn value(reference: Reference, in_query: bool) -> Piece {
    Piece::Value {
        reference,
        in_query,
    }
}

fn part(name: &str, target: Vec<Piece>) -> Part {
    Part {
        name: Arc::from(name),
        backend: BackendTarget::Backend(0),
        method: Method::GET,
        target: Template { pieces: target },
        forward_headers: Vec::new(),
        set_headers: Vec::new(),
        timeout: None,
        required: false,
        select: None,
        depends_on: Vec::new(),
        is_read: false,
    }
}

fn composition(pattern: Option<&str>, parts: Vec<Part>, merge: Merge) -> Composition {
    Composition {
        name: Arc::from("Composition shop/page"),
        path_pattern: pattern.map(|p| PathPattern::parse(p).expect("pattern")),
        parts,
        merge,
        timeout: Duration::from_secs(1),
        max_part_bytes: DEFAULT_MAX_PART_BYTES,
    }
}

fn head(target: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut request = Request::builder().uri(target);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(()).expect("request").into_parts().0
}

#[test]
fn values_are_encoded_for_where_they_land_and_cannot_add_segments_or_parameters() {
    let parts = vec![
        part("product", vec![]),
        part(
            "price",
            vec![
                text("/prices/"),
                value(Reference::PathParam(0), false),
                text("/"),
                value(
                    Reference::Response {
                        part: 0,
                        pointer: "/sku".into(),
                    },
                    false,
                ),
                text("?q="),
                value(Reference::Query("q".into()), true),
                text("&n="),
                value(
                    Reference::Response {
                        part: 0,
                        pointer: "/count".into(),
                    },
                    true,
                ),
            ],
        ),
    ];
    let composition = composition(Some("/products/{id}"), parts, Merge::Keyed);
    let head = head("/products/a%2Fb%20c?q=x%26y%3Dz&other=1", &[]);
    let path = bind(&composition, head.uri.path()).expect("binds");
    assert_eq!(path, vec!["a/b c"]);
    let inputs = Inputs { path, head: &head };
    let outcomes = vec![
        Some(Ok(Document::Value(
            json!({"sku": "../../admin?x", "count": 3}),
        ))),
        None,
    ];
    let request =
        part_request(&composition, &composition.parts[1], &inputs, &outcomes).expect("request");
    assert_eq!(
        request.uri(),
        "/prices/a%2Fb%20c/..%2F..%2Fadmin%3Fx?q=x%26y%3Dz&n=3"
    );
    assert_eq!(request.method(), Method::GET);
    assert_eq!(request.headers()["accept"], "application/json");

    // A whole segment of dots would climb the backend's path: encoded.
    let outcomes = vec![
        Some(Ok(Document::Value(json!({"sku": "..", "count": true})))),
        None,
    ];
    let request =
        part_request(&composition, &composition.parts[1], &inputs, &outcomes).expect("request");
    assert_eq!(request.uri(), "/prices/a%2Fb%20c/%2E%2E?q=x%26y%3Dz&n=true");
}

#[test]
fn missing_values_fail_the_part_and_name_the_reference() {
    let parts = vec![
        part("product", vec![]),
        part(
            "price",
            vec![
                text("/p/"),
                value(
                    Reference::Response {
                        part: 0,
                        pointer: "/sku".into(),
                    },
                    false,
                ),
            ],
        ),
        part(
            "stock",
            vec![text("/s?q="), value(Reference::Query("q".into()), true)],
        ),
    ];
    let composition = composition(None, parts, Merge::Keyed);
    let head = head("/page", &[]);
    let inputs = Inputs {
        path: Vec::new(),
        head: &head,
    };
    let outcomes = vec![
        Some(Ok(Document::Value(json!({"sku": {"nested": 1}})))),
        None,
        None,
    ];
    let error = part_request(&composition, &composition.parts[1], &inputs, &outcomes)
        .expect_err("an object is no value");
    assert_eq!(error.code, "unresolved");
    assert_eq!(
        error.message,
        "{response.product.json/sku}: not a string, number or boolean"
    );
    let error = part_request(&composition, &composition.parts[2], &inputs, &outcomes)
        .expect_err("no query");
    assert_eq!(
        error.message,
        "{request.query.q}: the request has no such query parameter"
    );
}

#[test]
fn headers_are_forwarded_and_set_from_templates_and_hop_by_hop_ones_dropped() {
    let mut page = part("page", vec![text("/")]);
    page.method = Method::POST;
    page.forward_headers = vec![
        HeaderName::from_static("authorization"),
        HeaderName::from_static("connection"),
    ];
    page.set_headers = vec![(
        HeaderName::from_static("x-user"),
        Template {
            pieces: vec![
                text("user-"),
                value(Reference::Header(HeaderName::from_static("x-id")), false),
            ],
        },
    )];
    let composition = composition(None, vec![page], Merge::Keyed);
    let head = head(
        "/",
        &[
            ("authorization", "Bearer t"),
            ("connection", "close"),
            ("x-id", "a b/c"),
            ("accept", "application/json, text/plain"),
        ],
    );
    let inputs = Inputs {
        path: Vec::new(),
        head: &head,
    };
    let request =
        part_request(&composition, &composition.parts[0], &inputs, &[None]).expect("request");
    assert_eq!(request.method(), Method::POST);
    assert_eq!(request.headers()["authorization"], "Bearer t");
    // Header values are not percent-encoded.
    assert_eq!(request.headers()["x-user"], "user-a b/c");
    assert!(request.headers().get("connection").is_none());
    // The client's Accept is not forwarded unless named: the part asks for JSON.
    assert_eq!(request.headers()["accept"], "application/json");
}

#[test]
fn a_path_that_does_not_fit_the_pattern_binds_nothing() {
    let no_pattern = composition(None, vec![], Merge::Keyed);
    let products = composition(Some("/products/{id}"), vec![], Merge::Keyed);
    assert!(bind(&products, "/products").is_none());
    assert!(bind(&products, "/products/1/more").is_none());
    // Not UTF-8 once decoded.
    assert!(bind(&products, "/products/%FF").is_none());
    assert_eq!(bind(&no_pattern, "/anything"), Some(vec![]));
}

fn error(code: &'static str) -> PartError {
    PartError {
        code,
        message: format!("{code} happened"),
        status: (code == "upstream-status").then_some(503),
    }
}

fn body(bytes: &Bytes) -> Value {
    serde_json::from_slice(bytes).expect("JSON")
}

#[test]
fn keyed_merge_keeps_part_order_nulls_failures_and_lists_errors() {
    let mut stock = part("stock", vec![]);
    stock.select = Some("/level".into());
    let parts = vec![part("product", vec![]), part("price", vec![]), stock];
    let composition = composition(None, parts, Merge::Keyed);
    let (bytes, partial) = merge(
        &composition,
        vec![
            Some(Ok(Document::Value(json!({"sku": "A1", "name": "lamp"})))),
            Some(Err(error("upstream-status"))),
            Some(Ok(Document::Value(json!({"level": 4, "warehouse": "x"})))),
        ],
    );
    assert!(partial);
    let text = std::str::from_utf8(&bytes).expect("UTF-8");
    assert!(
        text.starts_with(r#"{"product":{"#)
            && text.contains(r#"},"price":null,"stock":4,"errors":["#),
        "{text}"
    );
    assert_eq!(
        body(&bytes)["errors"],
        json!([{"part": "price", "error": "upstream-status", "message": "upstream-status happened", "status": 503}])
    );
    let (bytes, partial) = merge(
        &composition,
        vec![
            Some(Ok(Document::Value(json!(1)))),
            Some(Ok(Document::Value(json!("two")))),
            Some(Ok(Document::Value(json!({"level": null})))),
        ],
    );
    assert!(!partial);
    assert_eq!(
        std::str::from_utf8(&bytes).expect("UTF-8"),
        "{\"product\":1,\"price\":\"two\",\"stock\":null}\n"
    );
}

#[test]
fn deep_merge_merges_objects_in_part_order_and_adds_errors() {
    let mut price = part("price", vec![]);
    price.select = Some("/data".into());
    let parts = vec![part("product", vec![]), price, part("stock", vec![])];
    let composition = composition(None, parts, Merge::Deep);
    let (bytes, partial) = merge(
        &composition,
        vec![
            Some(Ok(Document::Value(
                json!({"id": 7, "offer": {"price": 1, "currency": "EUR"}, "tags": ["a"]}),
            ))),
            Some(Ok(Document::Value(
                json!({"data": {"offer": {"price": 2}, "tags": ["b"]}}),
            ))),
            Some(Err(error("timeout"))),
        ],
    );
    assert!(partial);
    assert_eq!(
        body(&bytes),
        json!({
            "id": 7,
            "offer": {"price": 2, "currency": "EUR"},
            "tags": ["b"],
            "errors": [{"part": "stock", "error": "timeout", "message": "timeout happened"}],
        })
    );
    let mut into = json!({"a": {"b": 1}});
    deep_merge(&mut into, Value::Null);
    assert_eq!(into, json!({"a": {"b": 1}}));
    deep_merge(&mut into, json!({"a": {"b": null, "c": 2}}));
    assert_eq!(into, json!({"a": {"b": null, "c": 2}}));
}

#[test]
fn documents_are_json_or_fail_and_an_empty_body_is_null() {
    assert_eq!(parse_document(&Bytes::new()).expect("empty"), Value::Null);
    assert_eq!(
        parse_document(&Bytes::from_static(b" \n")).expect("blank"),
        Value::Null
    );
    assert_eq!(
        parse_document(&Bytes::from_static(b"{\"a\":1}")).expect("JSON"),
        json!({"a": 1})
    );
    let error = parse_document(&Bytes::from_static(b"<html>")).expect_err("HTML");
    assert_eq!(error.code, "invalid-json");
}

#[test]
fn a_required_failure_is_a_502_naming_the_part() {
    let mut product = part("product", vec![]);
    product.required = true;
    product.backend = BackendTarget::Invalid(DirectResponse {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: Bytes::from_static(b"Service shop/catalogue not found\n"),
    });
    let composition = composition(None, vec![product], Merge::Keyed);
    let failure = super::failure(
        &composition,
        &composition.parts[0],
        &error("upstream-status"),
    );
    let response = failure.into_response();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        response.headers()["x-portcullis-error"],
        "composition-part-failed"
    );
}

#[test]
fn a_document_nothing_reads_is_kept_as_text_and_written_as_it_came() {
    let text =
        validated_text(Bytes::from_static(b" \n{\"a\": [1, 2],  \"b\": \"x\"}\r\n")).expect("JSON");
    let Document::Text(text) = &text else {
        panic!("not kept as text: {text:?}");
    };
    assert_eq!(&text[..], b"{\"a\": [1, 2],  \"b\": \"x\"}");
    assert!(matches!(
        validated_text(Bytes::from_static(b"  ")),
        Ok(Document::Value(Value::Null))
    ));
    let error = validated_text(Bytes::from_static(b"{\"a\": }")).expect_err("not JSON");
    assert_eq!(error.code, "invalid-json");
    let error = validated_text(Bytes::from_static(b"{} {}")).expect_err("two documents");
    assert_eq!(error.code, "invalid-json");

    // Keyed: the text goes in as it came, next to a parsed (selected) document.
    let mut stock = part("stock", vec![]);
    stock.select = Some("/level".into());
    let keyed = composition(None, vec![part("product", vec![]), stock], Merge::Keyed);
    let (bytes, partial) = merge(
        &keyed,
        vec![
            Some(Ok(Document::Text(text.clone()))),
            Some(Ok(Document::Value(json!({"level": 3})))),
        ],
    );
    assert!(!partial);
    assert_eq!(
        std::str::from_utf8(&bytes).expect("UTF-8"),
        "{\"product\":{\"a\": [1, 2],  \"b\": \"x\"},\"stock\":3}\n"
    );
    // A Deep merge parses a text document (not expected: its parts are parsed on arrival).
    let deep = composition(None, vec![part("a", vec![])], Merge::Deep);
    let (bytes, _) = merge(&deep, vec![Some(Ok(Document::Text(text.clone())))]);
    assert_eq!(body(&bytes), json!({"a": [1, 2], "b": "x"}));
}
