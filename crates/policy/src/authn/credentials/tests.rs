use std::borrow::Cow;

use http::HeaderName;
use snapshot::security::TokenSource;

use super::{find, percent_decode, remove};
use crate::authn::fixtures::parts;

fn bearer() -> TokenSource {
    TokenSource::Header {
        name: http::header::AUTHORIZATION,
        value_prefix: "Bearer ".into(),
    }
}

#[test]
fn header_prefix_is_case_insensitive_and_extra_spaces_are_skipped() {
    let sources = [bearer()];
    for value in ["Bearer abc", "bearer abc", "BEARER   abc"] {
        let request = parts("/", &[("authorization", value)]);
        let found = find(&sources, &request).map(|(token, _)| token.into_owned());
        assert_eq!(found.as_deref(), Some("abc"), "{value}");
    }
    for value in ["Basic abc", "Bearer", "Bearer   ", "Bearerabc"] {
        let request = parts("/", &[("authorization", value)]);
        assert!(find(&sources, &request).is_none(), "{value}");
    }
}

#[test]
fn sources_are_tried_in_order() {
    let sources = [
        TokenSource::Cookie("session".into()),
        TokenSource::Query("token".into()),
        bearer(),
    ];
    let request = parts(
        "/p?token=from-query",
        &[("authorization", "Bearer from-header")],
    );
    let (token, source) = find(&sources, &request).expect("a token");
    assert_eq!(token, "from-query");
    assert_eq!(source, &sources[1]);
    let request = parts(
        "/p?token=from-query",
        &[
            ("cookie", "a=1; session=\"from-cookie\""),
            ("cookie", "b=2"),
        ],
    );
    assert_eq!(
        find(&sources, &request).map(|(token, _)| token),
        Some(Cow::Borrowed("from-cookie"))
    );
}

#[test]
fn query_values_are_percent_decoded_but_plus_stays() {
    let sources = [TokenSource::Query("api key".into())];
    let request = parts("/p?x=1&api%20key=a%2Bb+c%zz&y", &[]);
    let (token, _) = find(&sources, &request).expect("a key");
    assert_eq!(token, "a+b+c%zz");
    assert_eq!(percent_decode("%E2%82%AC%"), "€%");
    assert_eq!(percent_decode("%ff"), "\u{fffd}");
}

#[test]
fn removing_a_query_parameter_keeps_the_rest_byte_for_byte() {
    let source = TokenSource::Query("key".into());
    let mut request = parts("http://h/a/b?x=%41&key=secret&y=2&key=again", &[]);
    assert!(remove(&source, &mut request));
    assert_eq!(request.uri.to_string(), "http://h/a/b?x=%41&y=2");
    let mut request = parts("/a?key=secret", &[]);
    assert!(remove(&source, &mut request));
    assert_eq!(request.uri.to_string(), "/a");
}

#[test]
fn removing_a_cookie_keeps_the_others() {
    let source = TokenSource::Cookie("session".into());
    let mut request = parts("/", &[("cookie", "a=1; session=x"), ("cookie", "b=2")]);
    assert!(remove(&source, &mut request));
    let cookies: Vec<_> = request.headers.get_all("cookie").iter().collect();
    assert_eq!(cookies, ["a=1; b=2"]);
    let mut request = parts("/", &[("cookie", "session=x")]);
    assert!(remove(&source, &mut request));
    assert!(request.headers.get("cookie").is_none());
}

#[test]
fn removing_a_prefixed_header_keeps_other_values() {
    let mut request = parts(
        "/",
        &[
            ("authorization", "Bearer t"),
            ("authorization", "Basic dTpw"),
        ],
    );
    assert!(remove(&bearer(), &mut request));
    let values: Vec<_> = request.headers.get_all("authorization").iter().collect();
    assert_eq!(values, ["Basic dTpw"]);
    let plain = TokenSource::Header {
        name: HeaderName::from_static("x-api-key"),
        value_prefix: String::new(),
    };
    let mut request = parts("/", &[("x-api-key", "k")]);
    assert!(remove(&plain, &mut request));
    assert!(request.headers.get("x-api-key").is_none());
}

#[test]
fn a_non_utf8_header_is_a_credential_that_will_not_verify() -> Result<(), http::Error> {
    let mut request = parts("/", &[]);
    request.headers.insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_bytes(b"Bearer \xff\xfe")?,
    );
    let (token, _) = find(&[bearer()], &request).expect("found");
    assert_eq!(token, "\u{fffd}\u{fffd}");
    Ok(())
}
