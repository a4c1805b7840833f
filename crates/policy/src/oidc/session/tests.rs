use http::header::{COOKIE, HeaderMap, HeaderValue};

use super::*;

const KEY: [u8; 32] = [7; 32];

fn session(access_token: &str) -> Session {
    let claims = serde_json::from_str(r#"{"sub":"ana","email":"ana@example.test"}"#)
        .expect("literal claims are JSON");
    Session {
        access_token: access_token.to_owned(),
        refresh_token: Some("refresh".to_owned()),
        id_token: Some("a.b.c".to_owned()),
        claims,
        expires_at: 1_900_000_000,
    }
}

/// A request carrying the `name=value` parts of `set_cookies` (attributes dropped, cleared
/// cookies skipped), as a browser would send them back.
fn request_with(set_cookies: &[HeaderValue]) -> HeaderMap {
    let pairs: Vec<&str> = set_cookies
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter(|value| !value.contains("Max-Age=0"))
        .filter_map(|value| value.split(';').next())
        .collect();
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&pairs.join("; ")) {
        headers.insert(COOKIE, value);
    }
    headers
}

#[test]
fn a_sealed_session_opens_again() {
    let jar = CookieJar::new("gw", None, true, &KEY);
    let cookies = jar
        .seal_session(&session("at"), &HeaderMap::new())
        .expect("a small session fits");
    assert_eq!(cookies.len(), 1);
    let text = cookies[0].to_str().expect("ASCII");
    assert!(text.starts_with("gw-session="), "{text}");
    for attribute in ["Path=/", "HttpOnly", "SameSite=Lax", "Secure"] {
        assert!(text.contains(attribute), "{text} lacks {attribute}");
    }
    assert_eq!(
        jar.open_session(&request_with(&cookies)),
        Some(session("at"))
    );
}

#[test]
fn plain_http_has_no_secure_flag_and_domain_is_set() {
    let jar = CookieJar::new("gw", Some("example.test"), false, &KEY);
    let cookies = jar
        .seal_session(&session("at"), &HeaderMap::new())
        .expect("fits");
    let text = cookies[0].to_str().expect("ASCII");
    assert!(!text.contains("Secure"), "{text}");
    assert!(text.contains("; Domain=example.test"), "{text}");
}

#[test]
fn a_large_session_is_split_and_joined() {
    let jar = CookieJar::new("gw", None, false, &KEY);
    let big = session(&"x".repeat(9000));
    let cookies = jar
        .seal_session(&big, &HeaderMap::new())
        .expect("fits in 5");
    assert!(cookies.len() >= 3, "{} cookies", cookies.len());
    for (index, cookie) in cookies.iter().enumerate() {
        let text = cookie.to_str().expect("ASCII");
        assert!(text.starts_with(&format!("gw-session-{index}=")), "{text}");
        assert!(text.len() < 4096, "cookie {index} is {} bytes", text.len());
    }
    assert_eq!(jar.open_session(&request_with(&cookies)), Some(big));
}

#[test]
fn a_missing_piece_is_no_session() {
    let jar = CookieJar::new("gw", None, false, &KEY);
    let cookies = jar
        .seal_session(&session(&"x".repeat(9000)), &HeaderMap::new())
        .expect("fits");
    let without_last = &cookies[..cookies.len() - 1];
    assert_eq!(jar.open_session(&request_with(without_last)), None);
}

#[test]
fn a_session_too_large_for_five_cookies_is_refused() {
    let jar = CookieJar::new("gw", None, false, &KEY);
    assert!(
        jar.seal_session(&session(&"x".repeat(30_000)), &HeaderMap::new())
            .is_none()
    );
}

#[test]
fn a_smaller_session_clears_the_pieces_it_no_longer_uses() {
    let jar = CookieJar::new("gw", None, false, &KEY);
    let split = jar
        .seal_session(&session(&"x".repeat(9000)), &HeaderMap::new())
        .expect("fits");
    let request = request_with(&split);
    let cookies = jar.seal_session(&session("at"), &request).expect("fits");
    let texts: Vec<&str> = cookies.iter().filter_map(|c| c.to_str().ok()).collect();
    assert!(texts[0].starts_with("gw-session="));
    for index in 0..split.len() {
        let name = format!("gw-session-{index}=;");
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with(&name) && t.contains("Max-Age=0")),
            "{name} not cleared in {texts:?}"
        );
    }
}

#[test]
fn tampered_wrong_key_or_wrong_kind_is_no_session() {
    let jar = CookieJar::new("gw", None, false, &KEY);
    let cookies = jar
        .seal_session(&session("at"), &HeaderMap::new())
        .expect("fits");
    let text = cookies[0].to_str().expect("ASCII");
    let value = text
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("gw-session="))
        .expect("named gw-session");
    // Flip one character in the middle of the sealed value.
    let mut bytes = value.as_bytes().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).expect("ASCII");
    let mut headers = HeaderMap::new();
    headers.insert(
        COOKIE,
        HeaderValue::from_str(&format!("gw-session={tampered}")).expect("ASCII"),
    );
    assert_eq!(jar.open_session(&headers), None);

    let other_key = CookieJar::new("gw", None, false, &[8; 32]);
    assert_eq!(other_key.open_session(&request_with(&cookies)), None);

    for garbage in ["", "!!!", "AAAA", "gw-session"] {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("gw-session={garbage}")).expect("ASCII"),
        );
        assert_eq!(jar.open_session(&headers), None, "{garbage:?}");
    }
}

#[test]
fn a_flow_cookie_is_not_a_session() {
    let jar = CookieJar::new("gw", None, false, &KEY);
    let flow = Flow {
        state: "statestatestate".to_owned(),
        nonce: "n".to_owned(),
        verifier: "v".to_owned(),
        original: "/app".to_owned(),
        redirect_uri: "https://gw.test/cb".to_owned(),
        started_at: 1,
    };
    let cookie = jar.seal_flow(&flow).expect("fits");
    let text = cookie.to_str().expect("ASCII");
    assert!(text.starts_with("gw-flow-statesta="), "{text}");
    assert!(text.contains("Max-Age=600"), "{text}");
    let value = text
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, value)| value)
        .expect("a pair");
    let mut headers = HeaderMap::new();
    headers.insert(
        COOKIE,
        HeaderValue::from_str(&format!("gw-session={value}")).expect("ASCII"),
    );
    assert_eq!(jar.open_session(&headers), None);
    assert_eq!(
        jar.open_flow(&request_with(&[cookie]), &flow.state),
        Some(flow)
    );
}

#[test]
fn strip_removes_only_this_policys_cookies() {
    let jar = CookieJar::new("gw", None, false, &KEY);
    let mut headers = HeaderMap::new();
    headers.append(
        COOKIE,
        HeaderValue::from_static("a=1; gw-session=x; gw-session-0=y"),
    );
    headers.append(
        COOKIE,
        HeaderValue::from_static("gw-flow-abc=z; b=2; gw-sessionx=keep; other-session=3"),
    );
    jar.strip(&mut headers);
    let left: Vec<&str> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    assert_eq!(left, ["a=1; b=2; gw-sessionx=keep; other-session=3"]);

    let mut only_ours = HeaderMap::new();
    only_ours.insert(COOKIE, HeaderValue::from_static("gw-session=x"));
    jar.strip(&mut only_ours);
    assert!(only_ours.get(COOKIE).is_none());
}

#[test]
fn clear_all_expires_session_pieces_and_flows() {
    let jar = CookieJar::new("gw", None, false, &KEY);
    let mut headers = HeaderMap::new();
    headers.insert(COOKIE, HeaderValue::from_static("gw-flow-abcdefgh=1; a=2"));
    let cleared: Vec<String> = jar
        .clear_all(&headers)
        .iter()
        .filter_map(|value| value.to_str().ok().map(str::to_owned))
        .collect();
    assert_eq!(cleared.len(), 1 + MAX_CHUNKS + 1, "{cleared:?}");
    assert!(cleared.iter().all(|c| c.contains("Max-Age=0")));
    assert!(cleared.iter().any(|c| c.starts_with("gw-flow-abcdefgh=;")));
    assert!(!cleared.iter().any(|c| c.starts_with("a=")));
}
