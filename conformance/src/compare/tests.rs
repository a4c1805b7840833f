//! The suite's comparison rules, one test per rule.

use std::collections::BTreeMap;

use http::HeaderMap;
use http::header::{CONTENT_TYPE, HeaderValue, LOCATION};
use testkit::EchoReply;

use super::{Expectation, ParsedLocation, compare};
use crate::cases::{RedirectSpec, ResponseSpec, StatusSpec};
use crate::exchange::Captured;

fn response(statuses: &[u16]) -> ResponseSpec {
    ResponseSpec {
        status: Some(StatusSpec::Many(statuses.to_vec())),
        headers: BTreeMap::new(),
        absent_headers: Vec::new(),
        valid_header_values: BTreeMap::new(),
        ignore_whitespace: false,
        grpc_code: None,
    }
}

fn expectation<'a>(
    response: &'a ResponseSpec,
    redirect: Option<&'a RedirectSpec>,
) -> Expectation<'a> {
    Expectation {
        statuses: response.statuses(),
        scheme: "http",
        request_authority: "127.1.0.1",
        request_path: "/a/b",
        host: "",
        path: "/a/b",
        method: "GET",
        request_headers: None,
        absent_request_headers: &[],
        http_port: None,
        namespace: "infra",
        backend: "infra-backend-v1",
        response,
        redirect,
    }
}

fn echo(status: u16, path: &str, namespace: &str, pod: &str) -> Captured {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Captured {
        status,
        headers,
        request: EchoReply {
            path: path.to_owned(),
            method: "GET".to_owned(),
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
            ..EchoReply::default()
        },
    }
}

fn redirect(status: u16, location: &str) -> Captured {
    let mut headers = HeaderMap::new();
    headers.insert(
        LOCATION,
        HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/")),
    );
    Captured {
        status,
        headers,
        request: EchoReply::default(),
    }
}

#[test]
fn status_outside_the_set_fails() {
    let response = response(&[200]);
    let error = compare(
        &expectation(&response, None),
        &echo(404, "/a/b", "infra", "x"),
    )
    .err();
    assert_eq!(
        error.as_deref(),
        Some("expected status code to be one of [200], got 404")
    );
}

#[test]
fn timeout_statuses_are_interchangeable() {
    let response = response(&[504]);
    assert_eq!(
        compare(&expectation(&response, None), &redirect(408, "/")),
        Ok(())
    );
}

#[test]
fn echo_path_is_compared_exactly_with_the_query() {
    let response = response(&[200]);
    let captured = echo(200, "/a/b?x=1", "infra", "infra-backend-v1-abc-def");
    assert!(compare(&expectation(&response, None), &captured).is_err());
}

#[test]
fn namespace_must_be_equal() {
    let response = response(&[200]);
    let captured = echo(200, "/a/b", "other", "infra-backend-v1-abc-def");
    assert!(compare(&expectation(&response, None), &captured).is_err());
}

#[test]
fn pod_name_is_matched_by_prefix() {
    let response = response(&[200]);
    let good = echo(200, "/a/b", "infra", "infra-backend-v1-abc-def");
    let bad = echo(200, "/a/b", "infra", "infra-backend-v2-abc-def");
    assert_eq!(compare(&expectation(&response, None), &good), Ok(()));
    assert!(compare(&expectation(&response, None), &bad).is_err());
}

#[test]
fn non_echo_statuses_check_only_the_status() {
    let response = response(&[500]);
    assert_eq!(
        compare(&expectation(&response, None), &echo(500, "/x", "y", "z")),
        Ok(())
    );
}

#[test]
fn redirect_defaults_take_the_request_scheme_and_path() {
    let response = response(&[302]);
    let spec = RedirectSpec {
        scheme: String::new(),
        host: String::new(),
        port: String::new(),
        path: String::new(),
    };
    let expected = expectation(&response, Some(&spec));
    assert_eq!(
        compare(&expected, &redirect(302, "http://example.org/a/b")),
        Ok(())
    );
    assert_eq!(
        compare(&expected, &redirect(302, "http://example.org:80/a/b")),
        Ok(())
    );
    assert!(compare(&expected, &redirect(302, "http://example.org:8080/a/b")).is_err());
    assert!(compare(&expected, &redirect(302, "https://example.org/a/b")).is_err());
}

#[test]
fn redirect_port_must_match_when_given() {
    let response = response(&[302]);
    let spec = RedirectSpec {
        scheme: "https".to_owned(),
        host: "example.org".to_owned(),
        port: "8443".to_owned(),
        path: "/new".to_owned(),
    };
    let expected = expectation(&response, Some(&spec));
    assert_eq!(
        compare(
            &expected,
            &redirect(302, "https://example.org:8443/new?q=1")
        ),
        Ok(())
    );
    assert!(compare(&expected, &redirect(302, "https://example.org/new")).is_err());
}

#[test]
fn relative_locations_resolve_against_the_request() {
    let parsed = ParsedLocation::resolve("/x%20y?q", "http", "127.1.0.1:8080", "/a/b");
    assert_eq!(
        parsed,
        ParsedLocation {
            scheme: "http".to_owned(),
            host: "127.1.0.1".to_owned(),
            port: "8080".to_owned(),
            path: "/x y".to_owned()
        }
    );
    assert_eq!(
        ParsedLocation::resolve("c", "http", "h", "/a/b").path,
        "/a/c"
    );
    assert_eq!(
        ParsedLocation::resolve("//[::1]:9/p", "https", "h", "/").host,
        "::1"
    );
}

#[test]
fn valid_header_values_ignore_whitespace_when_asked() {
    let mut response = response(&[200]);
    response.ignore_whitespace = true;
    response.valid_header_values.insert(
        "access-control-allow-methods".to_owned(),
        vec!["GET, OPTIONS".to_owned()],
    );
    let mut captured = echo(200, "/a/b", "infra", "infra-backend-v1-a-b");
    captured.headers.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET,OPTIONS"),
    );
    assert_eq!(compare(&expectation(&response, None), &captured), Ok(()));
}
