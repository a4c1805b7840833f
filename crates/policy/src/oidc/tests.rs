//! Unit tests of the request-side rules, ID-token validation and the login redirect; the whole
//! flow against a real provider is in `crates/policy/tests/oidc_provider.rs`.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{ACCEPT, HOST, LOCATION, SET_COOKIE};
use http::{Method, Request, StatusCode};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use snapshot::security::Oidc;

use super::discovery::{Metadata, Provider};
use super::id_token::{self, Expected, IdTokenError};
use super::request::{self, Callback};
use super::{OidcOutcome, OidcRuntime, unix_now};

fn parts(method: Method, target: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut builder = Request::builder().method(method).uri(target);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(())
        .expect("test requests build")
        .into_parts()
        .0
}

#[test]
fn navigations_are_gets_that_accept_html() {
    let html = [("accept", "text/html,application/xhtml+xml;q=0.9")];
    assert!(request::is_navigation(&parts(Method::GET, "/", &html)));
    assert!(request::is_navigation(&parts(Method::HEAD, "/", &html)));
    assert!(request::is_navigation(&parts(Method::GET, "/", &[])));
    assert!(request::is_navigation(&parts(
        Method::GET,
        "/",
        &[("accept", "TEXT/HTML"), ("sec-fetch-mode", "navigate")]
    )));
    assert!(!request::is_navigation(&parts(Method::POST, "/", &html)));
    assert!(!request::is_navigation(&parts(
        Method::GET,
        "/",
        &[("accept", "application/json")]
    )));
    assert!(!request::is_navigation(&parts(
        Method::GET,
        "/",
        &[("accept", "*/*")]
    )));
    assert!(!request::is_navigation(&parts(
        Method::GET,
        "/",
        &[("accept", "text/html"), ("sec-fetch-mode", "cors")]
    )));
    assert!(!request::is_navigation(&parts(
        Method::GET,
        "/",
        &[
            ("accept", "text/html"),
            ("x-requested-with", "XMLHttpRequest")
        ]
    )));
}

#[test]
fn the_page_to_return_to_is_a_local_path_only() {
    let original = |target: &str| request::original(&parts(Method::GET, target, &[]));
    assert_eq!(original("/app?x=1&y=2"), "/app?x=1&y=2");
    assert_eq!(original("//evil.test/path"), "/");
    assert_eq!(original("/\\evil.test"), "/");
    // An absolute-form request target keeps only its path.
    assert_eq!(original("http://evil.test/next?a=b"), "/next?a=b");
    assert_eq!(original(&format!("/{}", "a".repeat(3000))), "/");
}

#[test]
fn the_host_comes_from_the_authority_or_host_header() {
    let host = |target: &str, headers: &[(&str, &str)]| {
        request::host(&parts(Method::GET, target, headers))
    };
    assert_eq!(
        host("/", &[("host", "app.test:8443")]).as_deref(),
        Some("app.test:8443")
    );
    assert_eq!(
        host("https://h2.test/x", &[("host", "other.test")]).as_deref(),
        Some("h2.test")
    );
    assert_eq!(host("/", &[]), None);
    assert_eq!(host("/", &[("host", "user@evil.test")]), None);
    assert_eq!(host("/", &[("host", "bad host")]), None);
}

#[test]
fn callback_parameters_are_decoded_first_occurrence_wins() {
    let callback = Callback::parse(&parts(
        Method::GET,
        "/cb?code=a%2Bb&state=s1&state=s2&iss=http%3A%2F%2Fidp&other=x",
        &[],
    ));
    assert_eq!(callback.code.as_deref(), Some("a+b"));
    assert_eq!(callback.state.as_deref(), Some("s1"));
    assert_eq!(callback.iss.as_deref(), Some("http://idp"));
    assert_eq!(callback.error, None);
    let long = format!("/cb?code={}", "a".repeat(9000));
    assert_eq!(
        Callback::parse(&parts(Method::GET, &long, &[])),
        Callback::default()
    );
}

/// A signing key and the provider that publishes its public half as `kid`.
struct Signer {
    pkcs8: Vec<u8>,
    provider: Provider,
}

fn signer(kid: &str) -> Signer {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .expect("the platform generates Ed25519 keys")
        .as_ref()
        .to_vec();
    let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).expect("a key we just generated parses");
    let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    let keys: JwkSet = serde_json::from_value(json!({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}
    ]}))
    .expect("a valid JWKS");
    let metadata: Metadata = serde_json::from_value(json!({
        "issuer": "https://idp.test",
        "authorization_endpoint": "https://idp.test/auth",
        "jwks_uri": "https://idp.test/jwks",
    }))
    .expect("a valid discovery document");
    Signer {
        pkcs8,
        provider: Provider::for_tests(metadata, keys),
    }
}

impl Signer {
    fn sign(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&self.pkcs8))
            .expect("signing with a valid key works")
    }
}

fn claims() -> Value {
    json!({
        "iss": "https://idp.test",
        "aud": "gw",
        "sub": "ana",
        "exp": unix_now() + 300,
        "iat": unix_now(),
        "nonce": "n-1",
    })
}

const EXPECTED: Expected<'static> = Expected {
    issuer: "https://idp.test",
    client_id: "gw",
    nonce: Some("n-1"),
    subject: None,
};

#[test]
fn a_signed_id_token_for_us_is_accepted() {
    let signer = signer("k1");
    let token = signer.sign("k1", &claims());
    let accepted = id_token::validate(&token, &signer.provider, &EXPECTED).expect("valid");
    assert_eq!(accepted.get("sub"), Some(&json!("ana")));
}

#[test]
fn id_tokens_are_refused_for_each_broken_rule() {
    let signer = signer("k1");
    let with = |change: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut claims = claims();
        if let Value::Object(map) = &mut claims {
            change(map);
        }
        signer.sign("k1", &claims)
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "issuer",
            with(&|c| drop(c.insert("iss".into(), json!("https://evil.test")))),
        ),
        (
            "audience",
            with(&|c| drop(c.insert("aud".into(), json!("other")))),
        ),
        (
            "expired",
            with(&|c| drop(c.insert("exp".into(), json!(unix_now() - 600)))),
        ),
        (
            "nonce",
            with(&|c| drop(c.insert("nonce".into(), json!("n-2")))),
        ),
        ("no nonce", with(&|c| drop(c.remove("nonce")))),
        ("no sub", with(&|c| drop(c.remove("sub")))),
        (
            "azp",
            with(&|c| drop(c.insert("azp".into(), json!("other")))),
        ),
        (
            "several audiences without azp",
            with(&|c| drop(c.insert("aud".into(), json!(["gw", "other"])))),
        ),
    ];
    for (rule, token) in cases {
        assert!(
            matches!(
                id_token::validate(&token, &signer.provider, &EXPECTED),
                Err(IdTokenError::Invalid(_))
            ),
            "{rule}"
        );
    }
    let several_with_azp = with(&|c| {
        c.insert("aud".into(), json!(["gw", "other"]));
        c.insert("azp".into(), json!("gw"));
    });
    assert!(id_token::validate(&several_with_azp, &signer.provider, &EXPECTED).is_ok());
}

#[test]
fn id_tokens_from_other_keys_or_algorithms_are_refused() {
    let ours = signer("k1");
    let theirs = signer("k1");
    let forged = theirs.sign("k1", &claims());
    assert!(matches!(
        id_token::validate(&forged, &ours.provider, &EXPECTED),
        Err(IdTokenError::Invalid(_))
    ));
    let unknown = ours.sign("k2", &claims());
    assert!(matches!(
        id_token::validate(&unknown, &ours.provider, &EXPECTED),
        Err(IdTokenError::UnknownKey(Some(_)))
    ));
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(b"the client secret"),
    )
    .expect("HMAC signing works");
    assert!(matches!(
        id_token::validate(&hs256, &ours.provider, &EXPECTED),
        Err(IdTokenError::Invalid(_))
    ));
    for garbage in ["", "a.b.c", "not a token", &"x".repeat(70_000)] {
        assert!(id_token::validate(garbage, &ours.provider, &EXPECTED).is_err());
    }
}

#[test]
fn a_refreshed_id_token_must_keep_the_subject() {
    let signer = signer("k1");
    let refreshed = Expected {
        nonce: None,
        subject: Some("bo"),
        ..EXPECTED
    };
    let token = signer.sign("k1", &claims());
    assert!(id_token::validate(&token, &signer.provider, &refreshed).is_err());
    let same = Expected {
        subject: Some("ana"),
        ..refreshed
    };
    assert!(id_token::validate(&token, &signer.provider, &same).is_ok());
}

/// Settings whose authorization endpoint is given, so a login needs no discovery.
fn settings() -> Oidc {
    Oidc {
        issuer: "https://idp.test".to_owned(),
        authorization_endpoint: Some("https://idp.test/authorize?tenant=t1".parse().expect("URI")),
        token_endpoint: None,
        end_session_endpoint: None,
        client_id: "gw".to_owned(),
        client_secret: "secret".to_owned(),
        scopes: vec!["openid".to_owned(), "profile".to_owned()],
        redirect_uri: "/oauth2/callback".to_owned(),
        redirect_path: "/oauth2/callback".to_owned(),
        logout_path: "/logout".to_owned(),
        post_logout_redirect_uri: None,
        refresh_token: true,
        cookie_prefix: "gw".to_owned(),
        cookie_domain: None,
        cookie_key: [3; 32],
        forward_access_token: false,
        default_session_lifetime: Duration::from_secs(3600),
    }
}

#[tokio::test]
async fn a_login_redirect_uses_the_override_and_the_listeners_scheme() {
    let runtime = OidcRuntime::new(Arc::new(telemetry::Metrics::new()));
    let mut request = parts(
        Method::GET,
        "//evil.test/x",
        &[(HOST.as_str(), "app.test"), (ACCEPT.as_str(), "text/html")],
    );
    let outcome = runtime
        .authenticate(&settings(), "SecurityPolicy a/b", "https", &mut request)
        .await;
    let OidcOutcome::Respond(denial) = outcome else {
        panic!("expected a redirect, got {outcome:?}");
    };
    assert_eq!(denial.status, StatusCode::FOUND);
    let location = denial
        .headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("a Location");
    assert!(
        location.starts_with("https://idp.test/authorize?tenant=t1&response_type=code&"),
        "{location}"
    );
    assert!(
        location.contains("redirect_uri=https%3A%2F%2Fapp.test%2Foauth2%2Fcallback"),
        "{location}"
    );
    assert!(location.contains("scope=openid+profile&"), "{location}");
    let cookie = denial
        .headers
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a flow cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");

    // The flow remembers `/`, not the other host the path named.
    let state = location
        .split('&')
        .find_map(|pair| pair.strip_prefix("state="))
        .expect("a state");
    let jar = super::session::CookieJar::new("gw", None, true, &[3; 32]);
    let mut headers = http::HeaderMap::new();
    let pair = cookie.split(';').next().expect("a pair");
    headers.insert(http::header::COOKIE, pair.parse().expect("ASCII"));
    let flow = jar.open_flow(&headers, state).expect("the flow opens");
    assert_eq!(flow.original, "/");
    assert_eq!(flow.redirect_uri, "https://app.test/oauth2/callback");
}

#[tokio::test]
async fn a_navigation_without_a_host_cannot_build_its_redirect_uri() {
    let runtime = OidcRuntime::new(Arc::new(telemetry::Metrics::new()));
    let mut request = parts(Method::GET, "/app", &[(ACCEPT.as_str(), "text/html")]);
    let outcome = runtime
        .authenticate(&settings(), "SecurityPolicy a/b", "http", &mut request)
        .await;
    assert!(
        matches!(&outcome, OidcOutcome::Respond(d) if d.status == StatusCode::BAD_REQUEST
            && d.reason == "oidc-invalid-request"),
        "{outcome:?}"
    );
}

/// A small deterministic generator (xorshift64*), so the garbage below is the same each run.
struct Garbage(u64);

impl Garbage {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Up to `max` visible-ASCII characters, biased towards the ones cookies and queries use.
    fn text(&mut self, max: u64) -> String {
        const ALPHABET: &[u8] = b"gw-session-flow0123456789=;&%?/ .ABCxyz_~+\\\"";
        let len = self.next() % (max + 1);
        (0..len)
            .map(|_| {
                let pick = usize::try_from(self.next() % ALPHABET.len() as u64).unwrap_or(0);
                char::from(ALPHABET.get(pick).copied().unwrap_or(b'x'))
            })
            .collect()
    }
}

#[tokio::test]
async fn garbage_requests_never_pass_and_never_panic() {
    let runtime = OidcRuntime::new(Arc::new(telemetry::Metrics::new()));
    let mut settings = settings();
    // Every endpoint is given, so no request needs the (absent) provider.
    settings.end_session_endpoint = Some("https://idp.test/logout".parse().expect("URI"));
    let mut garbage = Garbage(0x9E37_79B9_7F4A_7C15);
    let mut decided = 0;
    for round in 0..3000 {
        let path = match round % 4 {
            0 => "/oauth2/callback",
            1 => "/logout",
            _ => "/app",
        };
        let target = format!("{path}?{}", garbage.text(60)).replace(' ', "%20");
        let cookie = garbage.text(300);
        let host = garbage.text(20);
        let Ok(request) = Request::builder()
            .uri(target.as_str())
            .header(ACCEPT, "text/html")
            .header(HOST, host.as_str())
            .header(http::header::COOKIE, cookie.as_str())
            .body(())
        else {
            continue;
        };
        let mut parts = request.into_parts().0;
        let outcome = runtime
            .authenticate(&settings, "SecurityPolicy a/b", "https", &mut parts)
            .await;
        assert!(
            matches!(outcome, OidcOutcome::Respond(_)),
            "{target} with {cookie:?} got through"
        );
        decided += 1;
    }
    assert!(decided > 1000, "only {decided} requests were valid HTTP");
}

#[test]
fn issuers_are_collected_from_policies_with_oidc() {
    let policy = |oidc: Option<Box<Oidc>>| snapshot::security::SecurityPolicy {
        label: "SecurityPolicy a/b".into(),
        oidc,
        jwt: None,
        api_key: None,
        basic: None,
        ext_auth: None,
        authorization: None,
        invalid: false,
    };
    let mut issuers = std::collections::HashSet::new();
    super::collect_issuers(&policy(None), &mut issuers);
    assert!(issuers.is_empty());
    super::collect_issuers(&policy(Some(Box::new(settings()))), &mut issuers);
    assert_eq!(
        issuers.into_iter().collect::<Vec<_>>(),
        ["https://idp.test"]
    );
}
