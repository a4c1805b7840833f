//! The authentication phase as the proxy calls it: methods ANDed, headers added and removed,
//! denials with their challenges, metrics.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderName;
use http::StatusCode;
use jsonwebtoken::Algorithm;
use serde_json::json;
use snapshot::security::{
    ApiKey, ApiKeyAuth, BasicAuth, ClaimToHeader, HtpasswdUser, JwksSource, SecurityPolicy,
    TokenSource,
};
use telemetry::Metrics;

use super::Authenticator;
use super::basic::BasicVerifier;
use super::fixtures::{
    Answer, JwksServer, TestKey, empty_policy, good_claims, jwks, jwt_policy, parts, provider,
};

fn authenticator() -> (Authenticator, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    (Authenticator::new(Arc::clone(&metrics)), metrics)
}

fn jwt_with_headers(key: &TestKey) -> SecurityPolicy {
    let mut main = provider(JwksSource::Inline(jwks(&[key])));
    main.claim_to_headers = vec![
        ClaimToHeader {
            claim: "sub".into(),
            header: HeaderName::from_static("x-user"),
        },
        ClaimToHeader {
            claim: "realm.roles".into(),
            header: HeaderName::from_static("x-roles"),
        },
        ClaimToHeader {
            claim: "missing".into(),
            header: HeaderName::from_static("x-missing"),
        },
    ];
    jwt_policy(vec![main], false)
}

fn challenge(denial: &crate::Denial) -> &str {
    denial
        .headers
        .get(http::header::WWW_AUTHENTICATE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn an_accepted_jwt_sets_claim_headers_and_leaves_the_request() -> Result<(), String> {
    let key = TestKey::rsa("k", Algorithm::RS256);
    let policy = jwt_with_headers(&key);
    let (authenticator, metrics) = authenticator();
    let mut claims = good_claims();
    claims["realm"] = json!({ "roles": ["admin", "dev"] });
    let bearer = format!("Bearer {}", key.sign(&claims));
    let mut request = parts(
        "/",
        &[
            ("authorization", &bearer),
            ("x-user", "forged"),
            ("x-missing", "forged"),
        ],
    );
    let identity = authenticator
        .authenticate(&policy, &mut request)
        .await
        .map_err(|denial| format!("{denial:?}"))?;
    let jwt = identity.jwt.ok_or("no JWT identity")?;
    assert_eq!(&*jwt.provider, "main");
    assert_eq!(
        request.headers.get("x-user").map(|v| v.as_bytes()),
        Some(&b"ana"[..])
    );
    assert_eq!(
        request.headers.get("x-roles").map(|v| v.as_bytes()),
        Some(&b"admin,dev"[..])
    );
    assert!(
        request.headers.get("x-missing").is_none(),
        "client copies are removed"
    );
    assert!(
        request.headers.get("authorization").is_none(),
        "the token does not go upstream"
    );
    assert!(
        metrics
            .encode()
            .contains("method=\"jwt\",result=\"allowed\"} 1")
    );
    Ok(())
}

#[tokio::test]
async fn forward_keeps_the_token_and_a_second_provider_may_accept() -> Result<(), String> {
    let first_key = TestKey::es256("first");
    let second_key = TestKey::ed25519("second");
    let mut first = provider(JwksSource::Inline(jwks(&[&first_key])));
    first.name = "first".into();
    let mut second = provider(JwksSource::Inline(jwks(&[&second_key])));
    second.name = "second".into();
    second.forward = true;
    second.extract_from = vec![TokenSource::Cookie("jwt".into())];
    let policy = jwt_policy(vec![first, second], false);
    let (authenticator, _) = authenticator();
    let cookie = format!("a=1; jwt={}", second_key.sign(&good_claims()));
    let mut request = parts("/", &[("cookie", &cookie)]);
    let identity = authenticator
        .authenticate(&policy, &mut request)
        .await
        .map_err(|denial| format!("{denial:?}"))?;
    assert_eq!(identity.jwt.map(|jwt| jwt.provider), Some("second".into()));
    assert_eq!(
        request.headers.get("cookie").map(|v| v.as_bytes()),
        Some(cookie.as_bytes())
    );
    Ok(())
}

#[tokio::test]
async fn jwt_denials_carry_bearer_challenges() {
    let key = TestKey::es256("k");
    let policy = jwt_with_headers(&key);
    let (authenticator, metrics) = authenticator();

    let mut request = parts("/", &[]);
    let denial = authenticator
        .authenticate(&policy, &mut request)
        .await
        .err();
    let denial = denial.expect("no token is refused");
    assert_eq!(
        (denial.status, denial.reason),
        (StatusCode::UNAUTHORIZED, "missing-credentials")
    );
    assert_eq!(challenge(&denial), "Bearer");

    let mut request = parts("/", &[("authorization", "Bearer not.a.token")]);
    let denial = authenticator
        .authenticate(&policy, &mut request)
        .await
        .err();
    let denial = denial.expect("a bad token is refused");
    assert_eq!(
        (denial.status, denial.reason),
        (StatusCode::UNAUTHORIZED, "invalid-token")
    );
    assert_eq!(challenge(&denial), "Bearer error=\"invalid_token\"");
    let exported = metrics.encode();
    assert!(
        exported.contains("method=\"jwt\",result=\"missing-credentials\"} 1"),
        "{exported}"
    );
    assert!(
        exported.contains("method=\"jwt\",result=\"invalid-token\"} 1"),
        "{exported}"
    );
}

#[tokio::test]
async fn optional_jwt_lets_tokenless_requests_through_but_not_bad_tokens_or_forged_headers() {
    let key = TestKey::es256("k");
    let mut policy = jwt_with_headers(&key);
    if let Some(jwt) = &mut policy.jwt {
        jwt.optional = true;
    }
    let (authenticator, _) = authenticator();
    let mut request = parts("/", &[("x-user", "forged")]);
    let identity = authenticator.authenticate(&policy, &mut request).await;
    assert!(identity.is_ok_and(|identity| identity.jwt.is_none()));
    assert!(request.headers.get("x-user").is_none());
    let mut request = parts("/", &[("authorization", "Bearer a.b.c")]);
    assert!(
        authenticator
            .authenticate(&policy, &mut request)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn keys_that_cannot_be_fetched_refuse_with_jwks_unavailable() {
    let key = TestKey::es256("k");
    let server = JwksServer::start(Answer::Status(StatusCode::BAD_GATEWAY), Duration::ZERO).await;
    let remote = provider(JwksSource::Remote {
        uri: server.uri(),
        cache_duration: Duration::from_secs(300),
        timeout: Duration::from_secs(2),
    });
    let policy = jwt_policy(vec![remote], false);
    let metrics = Arc::new(Metrics::new());
    let authenticator =
        Authenticator::with_min_refetch(Arc::clone(&metrics), Duration::from_secs(10));
    let bearer = format!("Bearer {}", key.sign(&good_claims()));
    let mut request = parts("/", &[("authorization", &bearer)]);
    let denial = authenticator
        .authenticate(&policy, &mut request)
        .await
        .err();
    let denial = denial.expect("refused");
    assert_eq!(
        (denial.status, denial.reason),
        (StatusCode::UNAUTHORIZED, "jwks-unavailable")
    );
    // The endpoint recovers: after the window the next request fetches and passes.
    server.set(Answer::Ok(jwks(&[&key])));
    let quick = Authenticator::with_min_refetch(metrics, Duration::ZERO);
    assert!(quick.authenticate(&policy, &mut request).await.is_ok());
}

fn api_key_policy(extract_from: Vec<TokenSource>, sanitize: bool) -> SecurityPolicy {
    SecurityPolicy {
        api_key: Some(ApiKeyAuth {
            keys: vec![
                ApiKey {
                    client_id: "alpha".into(),
                    key: "key-alpha-0123456789".into(),
                },
                ApiKey {
                    client_id: "beta".into(),
                    key: "key-beta-0123456789".into(),
                },
            ],
            extract_from,
            forward_client_id_header: Some(HeaderName::from_static("x-client-id")),
            sanitize,
        }),
        ..empty_policy()
    }
}

#[tokio::test]
async fn api_keys_identify_the_client_and_are_sanitized() -> Result<(), String> {
    let (authenticator, metrics) = authenticator();
    let policy = api_key_policy(Vec::new(), true);
    let mut request = parts(
        "/",
        &[
            ("x-api-key", "key-beta-0123456789"),
            ("x-client-id", "alpha"),
        ],
    );
    let identity = authenticator
        .authenticate(&policy, &mut request)
        .await
        .map_err(|denial| format!("{denial:?}"))?;
    assert_eq!(identity.client.as_deref(), Some("beta"));
    assert_eq!(
        request.headers.get("x-client-id").map(|v| v.as_bytes()),
        Some(&b"beta"[..])
    );
    assert!(request.headers.get("x-api-key").is_none());

    let query = api_key_policy(vec![TokenSource::Query("api_key".into())], true);
    let mut request = parts("/p?a=1&api_key=key-alpha-0123456789", &[]);
    let identity = authenticator.authenticate(&query, &mut request).await;
    assert_eq!(
        identity.ok().and_then(|i| i.client).as_deref(),
        Some("alpha")
    );
    assert_eq!(request.uri.to_string(), "/p?a=1");

    let kept = api_key_policy(vec![TokenSource::Cookie("k".into())], false);
    let mut request = parts("/", &[("cookie", "k=key-alpha-0123456789")]);
    assert!(
        authenticator
            .authenticate(&kept, &mut request)
            .await
            .is_ok()
    );
    assert!(
        request.headers.get("cookie").is_some(),
        "sanitize: false keeps the key"
    );
    assert!(
        metrics
            .encode()
            .contains("method=\"api_key\",result=\"allowed\"} 3")
    );
    Ok(())
}

#[tokio::test]
async fn wrong_or_missing_api_keys_are_refused() {
    let (authenticator, _) = authenticator();
    let policy = api_key_policy(Vec::new(), true);
    let cases = [
        (vec![], "missing-credentials"),
        (
            vec![("x-api-key", "key-alpha-012345678")],
            "invalid-api-key",
        ),
        (
            vec![("x-api-key", "key-alpha-01234567890")],
            "invalid-api-key",
        ),
        (
            vec![("x-api-key", "KEY-ALPHA-0123456789")],
            "invalid-api-key",
        ),
        (vec![("x-client-id", "alpha")], "missing-credentials"),
    ];
    for (headers, reason) in cases {
        let mut request = parts("/", &headers);
        let denial = authenticator
            .authenticate(&policy, &mut request)
            .await
            .err();
        let denial = denial.expect("refused");
        assert_eq!(
            (denial.status, denial.reason),
            (StatusCode::UNAUTHORIZED, reason),
            "{headers:?}"
        );
        assert_eq!(challenge(&denial), "APIKey");
    }
}

fn basic_policy(users: Vec<HtpasswdUser>) -> SecurityPolicy {
    SecurityPolicy {
        basic: Some(BasicAuth {
            users,
            forward_username_header: Some(HeaderName::from_static("x-user")),
            realm: "shop \"eu\"".into(),
        }),
        ..empty_policy()
    }
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

fn user(name: &str, hash: &str) -> HtpasswdUser {
    HtpasswdUser {
        name: name.into(),
        hash: hash.into(),
    }
}

#[tokio::test]
async fn basic_auth_verifies_bcrypt_and_sha_entries() -> Result<(), String> {
    let bcrypt_hash = bcrypt::hash("s3cret:with:colons", 4).map_err(|e| e.to_string())?;
    let policy = basic_policy(vec![
        user("ana", &bcrypt_hash),
        user("ben", &bcrypt_hash.replacen("$2b$", "$2y$", 1)),
        user("old", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="),
        user("md5", "$apr1$abc$def"),
    ]);
    let (authenticator, _) = authenticator();
    for (name, password) in [
        ("ana", "s3cret:with:colons"),
        ("ben", "s3cret:with:colons"),
        ("old", "password"),
    ] {
        let credentials = basic(name, password);
        let mut request = parts(
            "/",
            &[("authorization", &credentials), ("x-user", "forged")],
        );
        let identity = authenticator
            .authenticate(&policy, &mut request)
            .await
            .map_err(|denial| format!("{name}: {denial:?}"))?;
        assert_eq!(identity.client.as_deref(), Some(name));
        assert_eq!(
            request.headers.get("x-user").map(|v| v.as_bytes()),
            Some(name.as_bytes())
        );
        assert!(request.headers.get("authorization").is_none());
    }
    let refused = [
        basic("ana", "wrong"),
        basic("ana", "s3cret"),
        basic("nobody", "s3cret:with:colons"),
        basic("old", "Password"),
        basic("md5", "anything"),
        "Basic !!!not-base64".to_owned(),
        format!("Basic {}", STANDARD.encode("no-colon")),
        format!("Basic {}", STANDARD.encode([0xff, b':', 0xfe])),
    ];
    for credentials in refused {
        let mut request = parts("/", &[("authorization", &credentials)]);
        let denial = authenticator
            .authenticate(&policy, &mut request)
            .await
            .err();
        let denial = denial.ok_or(format!("{credentials} accepted"))?;
        assert_eq!(denial.reason, "invalid-credentials", "{credentials}");
        assert_eq!(
            challenge(&denial),
            r#"Basic realm="shop \"eu\"", charset="UTF-8""#
        );
    }
    let mut request = parts("/", &[("authorization", "Bearer x")]);
    let denial = authenticator
        .authenticate(&policy, &mut request)
        .await
        .err();
    assert_eq!(denial.map(|d| d.reason), Some("missing-credentials"));
    Ok(())
}

#[tokio::test]
async fn successful_bcrypt_checks_are_remembered_and_failures_are_not() -> Result<(), String> {
    let hash = bcrypt::hash("pw", 4).map_err(|e| e.to_string())?;
    let settings = BasicAuth {
        users: vec![user("ana", &hash)],
        forward_username_header: None,
        realm: "r".into(),
    };
    let verifier = BasicVerifier::new();
    let mut request = parts("/", &[("authorization", &basic("ana", "bad"))]);
    assert!(
        verifier
            .authenticate(&settings, &mut request)
            .await
            .is_err()
    );
    assert_eq!(verifier.remembered(), 0);
    for _ in 0..3 {
        let mut request = parts("/", &[("authorization", &basic("ana", "pw"))]);
        assert!(verifier.authenticate(&settings, &mut request).await.is_ok());
    }
    assert_eq!(verifier.remembered(), 1);
    // A changed htpasswd entry never matches the remembered verification.
    let changed = BasicAuth {
        users: vec![user(
            "ana",
            &bcrypt::hash("other", 4).map_err(|e| e.to_string())?,
        )],
        ..settings
    };
    let mut request = parts("/", &[("authorization", &basic("ana", "pw"))]);
    assert!(verifier.authenticate(&changed, &mut request).await.is_err());
    Ok(())
}

#[tokio::test]
async fn remembered_verifications_expire() -> Result<(), String> {
    tokio::time::pause();
    let hash = bcrypt::hash("pw", 4).map_err(|e| e.to_string())?;
    let settings = BasicAuth {
        users: vec![user("ana", &hash)],
        forward_username_header: None,
        realm: "r".into(),
    };
    let verifier = BasicVerifier::new();
    let key_is_remembered = |verifier: &BasicVerifier| verifier.remembered();
    let mut request = parts("/", &[("authorization", &basic("ana", "pw"))]);
    assert!(verifier.authenticate(&settings, &mut request).await.is_ok());
    assert_eq!(key_is_remembered(&verifier), 1);
    tokio::time::advance(super::basic::VERIFIED_TTL + Duration::from_secs(1)).await;
    assert!(!verifier.is_fresh_for_tests(&settings, "pw"));
    let mut request = parts("/", &[("authorization", &basic("ana", "pw"))]);
    assert!(
        verifier.authenticate(&settings, &mut request).await.is_ok(),
        "bcrypt again"
    );
    assert!(verifier.is_fresh_for_tests(&settings, "pw"));
    Ok(())
}

#[tokio::test]
async fn every_configured_method_must_pass() {
    let key = TestKey::es256("k");
    let mut policy = api_key_policy(Vec::new(), true);
    policy.jwt = jwt_with_headers(&key).jwt;
    let (authenticator, _) = authenticator();
    let bearer = format!("Bearer {}", key.sign(&good_claims()));

    let mut request = parts(
        "/",
        &[
            ("authorization", &bearer),
            ("x-api-key", "key-alpha-0123456789"),
        ],
    );
    let identity = authenticator.authenticate(&policy, &mut request).await;
    let identity = identity.expect("both pass");
    assert!(identity.jwt.is_some());
    assert_eq!(identity.client.as_deref(), Some("alpha"));

    let mut request = parts("/", &[("authorization", &bearer)]);
    let denial = authenticator
        .authenticate(&policy, &mut request)
        .await
        .err();
    assert_eq!(
        denial.map(|d| (d.reason, challenge(&d).to_owned())),
        Some(("missing-credentials", "APIKey".to_owned()))
    );

    let mut request = parts("/", &[("x-api-key", "key-alpha-0123456789")]);
    let denial = authenticator
        .authenticate(&policy, &mut request)
        .await
        .err();
    assert_eq!(denial.map(|d| d.reason), Some("missing-credentials"));
}

#[tokio::test]
async fn a_policy_without_authentication_passes_anonymously() {
    let (authenticator, metrics) = authenticator();
    let mut request = parts("/", &[("authorization", "Bearer x")]);
    let identity = authenticator
        .authenticate(&empty_policy(), &mut request)
        .await;
    assert!(identity.is_ok_and(|identity| identity.jwt.is_none() && identity.client.is_none()));
    assert!(request.headers.get("authorization").is_some());
    assert!(!metrics.encode().contains("auth_decisions_total{"));
}

/// The proxy shares one authenticator across connections and awaits it in spawned tasks.
#[test]
fn the_authenticator_is_shareable_and_its_future_is_send() {
    fn shareable<T: Send + Sync + 'static>() {}
    fn send<T: Send>(_: &T) {}
    shareable::<Authenticator>();
    let (authenticator, _) = authenticator();
    let policy = empty_policy();
    let mut request = parts("/", &[]);
    let future = authenticator.authenticate(&policy, &mut request);
    send(&future);
}

/// A small deterministic generator (xorshift64*), so the hostile-input test needs no crate
/// and replays the same inputs on every run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(bound).unwrap_or(1)).unwrap_or(0)
    }

    /// Text from an alphabet rich in the separators the parsers split on.
    fn text(&mut self, max: usize) -> String {
        const ALPHABET: &[u8] = b"aZ09.=;:&%+-_/ \t\"\\,!~eyJ";
        let length = self.below(max + 1);
        (0..length)
            .map(|_| char::from(ALPHABET[self.below(ALPHABET.len())]))
            .collect()
    }

    /// `token` with a few bytes flipped within the visible ASCII range.
    fn mutate(&mut self, token: &str) -> String {
        let mut bytes = token.as_bytes().to_vec();
        for _ in 0..=self.below(3) {
            if bytes.is_empty() {
                break;
            }
            let at = self.below(bytes.len());
            bytes[at] = 0x21 + u8::try_from(self.below(94)).unwrap_or(0);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Nothing a client sends panics, and only the real credentials pass: thousands of random and
/// mutated headers, cookies, queries and tokens against a policy with every method.
#[tokio::test]
async fn hostile_input_never_panics_and_never_authenticates() {
    let key = TestKey::es256("k");
    let mut policy = api_key_policy(
        vec![
            TokenSource::Query("key".into()),
            TokenSource::Cookie("key".into()),
            TokenSource::Header {
                name: HeaderName::from_static("x-api-key"),
                value_prefix: "Key ".into(),
            },
        ],
        true,
    );
    let mut jwt = jwt_with_headers(&key).jwt;
    if let Some(jwt) = &mut jwt {
        jwt.optional = true;
    }
    policy.jwt = jwt;
    policy.basic = basic_policy(vec![user("old", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=")]).basic;
    let (authenticator, metrics) = authenticator();
    let good = key.sign(&good_claims());
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    for round in 0..3000 {
        // Valid credentials for the earlier phases in some rounds, so that every phase sees
        // hostile input; the basic credentials are always random, so nothing may pass.
        let mut headers: Vec<(&str, String)> = Vec::new();
        match round % 4 {
            0 => headers.push(("authorization", format!("Bearer {}", noise.mutate(&good)))),
            1 => headers.push(("authorization", format!("Bearer {}", noise.text(60)))),
            2 => headers.push(("authorization", format!("Bearer {good}"))),
            _ => {}
        }
        let api_key = if round % 3 == 0 {
            "key-alpha-0123456789".to_owned()
        } else {
            noise.text(24)
        };
        headers.push(("x-api-key", format!("Key {api_key}")));
        headers.push(("authorization", format!("Basic {}", noise.text(24))));
        headers.push((
            "cookie",
            format!(
                "{}={}; key={}",
                noise.text(8),
                noise.text(12),
                noise.text(20)
            ),
        ));
        let query = format!("/p?{}&key={}", noise.text(10), noise.text(20));
        let uri = query
            .parse::<http::Uri>()
            .map_or_else(|_| "/p".to_owned(), |uri| uri.to_string());
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let mut request = parts(&uri, &headers);
        if authenticator
            .authenticate(&policy, &mut request)
            .await
            .is_ok()
        {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 0, "random credentials were accepted");
    let exported = metrics.encode();
    for reached in [
        "method=\"jwt\",result=\"invalid-token\"",
        "method=\"api_key\",result=\"invalid-api-key\"",
        "method=\"basic\",result=\"invalid-credentials\"",
    ] {
        assert!(
            exported.contains(reached),
            "no round reached {reached}: {exported}"
        );
    }
}

#[test]
fn the_remote_uris_of_a_policy_are_collected() {
    let remote = |uri: &str| {
        provider(JwksSource::Remote {
            uri: uri.parse().expect("a test URI"),
            cache_duration: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        })
    };
    let policy = jwt_policy(
        vec![
            remote("https://a/jwks"),
            provider(JwksSource::Inline("{}".into())),
            remote("https://b/jwks"),
        ],
        false,
    );
    let mut uris = std::collections::HashSet::new();
    super::collect_jwks_uris(&policy, &mut uris);
    super::collect_jwks_uris(&empty_policy(), &mut uris);
    let mut found: Vec<String> = uris.iter().map(ToString::to_string).collect();
    found.sort();
    assert_eq!(found, ["https://a/jwks", "https://b/jwks"]);
}

#[tokio::test]
async fn a_policy_that_did_not_validate_fails_closed() {
    let (authenticator, _) = authenticator();
    let mut policy = empty_policy();
    policy.invalid = true;
    let mut request = parts("/", &[]);
    let denial = authenticator
        .authenticate(&policy, &mut request)
        .await
        .err();
    let denial = denial.expect("refused");
    assert_eq!(
        (denial.status, denial.reason),
        (StatusCode::INTERNAL_SERVER_ERROR, "invalid-policy")
    );
    let denial = crate::authorization::authorize(
        &policy,
        &crate::Identity::default(),
        &request,
        std::net::IpAddr::from([127, 0, 0, 1]),
        &Metrics::new(),
    );
    assert_eq!(
        denial.err().map(|denial| denial.status),
        Some(StatusCode::INTERNAL_SERVER_ERROR)
    );
}
