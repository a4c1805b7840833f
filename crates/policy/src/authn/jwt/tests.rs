//! The JWT corpus: every token that must be refused is refused, good ones pass.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use snapshot::security::{JwksSource, JwtProvider};
use telemetry::Metrics;

use super::{JwtVerifier, Rejection};
use crate::authn::fixtures::{
    AUDIENCE, ISSUER, TestKey, b64, good_claims, jwks, now, pem_public, provider,
};

fn verifier() -> JwtVerifier {
    JwtVerifier::new(Arc::new(Metrics::new()))
}

fn inline(keys: &[&TestKey]) -> JwtProvider {
    provider(JwksSource::Inline(jwks(keys)))
}

fn with_claims(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut claims = good_claims();
    if let Value::Object(map) = &mut claims {
        change(map);
    }
    claims
}

/// Every token that must be refused, with a name for the failure message.
/// Each with the check that must refuse it.
fn bad_corpus(rsa: &TestKey, es: &TestKey) -> Vec<(&'static str, String, &'static str)> {
    let expired = with_claims(|c| {
        c.insert("exp".into(), json!(now() - 3600));
    });
    let not_yet = with_claims(|c| {
        c.insert("nbf".into(), json!(now() + 3600));
    });
    let future_iat = with_claims(|c| {
        c.insert("iat".into(), json!(now() + 3600));
    });
    let no_exp = with_claims(|c| {
        c.remove("exp");
    });
    let text_exp = with_claims(|c| {
        c.insert("exp".into(), json!("tomorrow"));
    });
    let wrong_aud = with_claims(|c| {
        c.insert("aud".into(), json!(["other", "another"]));
    });
    let no_aud = with_claims(|c| {
        c.remove("aud");
    });
    let wrong_iss = with_claims(|c| {
        c.insert("iss".into(), json!("https://evil.example"));
    });
    let good = rsa.sign(&good_claims());
    let mut parts: Vec<&str> = good.split('.').collect();
    let tampered_payload = b64(&with_claims(|c| {
        c.insert("sub".into(), json!("admin"));
    })
    .to_string());
    parts[1] = &tampered_payload;
    let tampered = parts.join(".");
    let header_none = b64(r#"{"alg":"none","typ":"JWT"}"#);
    let header_none_kid = b64(&format!(r#"{{"alg":"none","kid":"{}"}}"#, rsa.kid));
    let payload = b64(&good_claims().to_string());
    let signature = good.rsplit('.').next().unwrap_or_default().to_owned();

    let confusion = |secret: &[u8]| {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(rsa.kid.clone());
        jsonwebtoken::encode(&header, &good_claims(), &EncodingKey::from_secret(secret))
            .expect("HS256 signing")
    };
    let public_pem = pem_public(&rsa.public_der);

    let unknown = TestKey::other_rsa("not-in-set");
    let other_signed_same_kid = TestKey::other_rsa(&rsa.kid);
    // An ES256 header with the RSA key's kid: the RSA key does not fit ES256.
    let mut es_header = Header::new(Algorithm::ES256);
    es_header.kid = Some(rsa.kid.clone());
    let wrong_type = es.sign_with(&es_header, &good_claims());
    // PS256 with the RSA key, whose JWK says alg RS256: the JWK's alg must equal the header's.
    let mut ps_header = Header::new(Algorithm::PS256);
    ps_header.kid = Some(rsa.kid.clone());
    let alg_mismatch = rsa.sign_with(&ps_header, &good_claims());

    let mut crit_header = Header::new(Algorithm::RS256);
    crit_header.kid = Some(rsa.kid.clone());
    crit_header.crit = Some(vec!["exp".into()]);
    let crit = rsa.sign_with(&crit_header, &good_claims());
    // A genuine RS256 signature under a header that claims HS256.
    let hs_header_rsa_signature = {
        let header = b64(&format!(r#"{{"alg":"HS256","kid":"{}"}}"#, rsa.kid));
        format!("{header}.{payload}.{signature}")
    };
    const SIGNATURE: &str = "no key of the set verifies the signature";
    const HEADER: &str = "header is not a JWS header with a known alg";
    const PARTS: &str = "not three dot-separated parts";
    const NO_KEY: &str = "no key of the set fits the token's kid and alg";
    let hs = "alg not allowed (HS* or none)";
    vec![
        ("expired", rsa.sign(&expired), "expired"),
        ("not yet valid", rsa.sign(&not_yet), "not yet valid (nbf)"),
        (
            "issued in the future",
            rsa.sign(&future_iat),
            "issued in the future (iat)",
        ),
        ("no exp", rsa.sign(&no_exp), "exp missing or not a number"),
        (
            "exp not a number",
            rsa.sign(&text_exp),
            "exp missing or not a number",
        ),
        ("wrong audience", rsa.sign(&wrong_aud), "audience"),
        ("no audience", rsa.sign(&no_aud), "audience"),
        ("wrong issuer", rsa.sign(&wrong_iss), "issuer"),
        ("tampered payload", tampered, SIGNATURE),
        (
            "alg none, empty signature",
            format!("{header_none}.{payload}."),
            HEADER,
        ),
        (
            "alg none with a kid",
            format!("{header_none_kid}.{payload}."),
            HEADER,
        ),
        (
            "alg none, copied signature",
            format!("{header_none}.{payload}.{signature}"),
            HEADER,
        ),
        (
            "alg NONE",
            format!("{}.{payload}.", b64(r#"{"alg":"NONE"}"#)),
            HEADER,
        ),
        (
            "HS256, RSA public key PEM as secret",
            confusion(public_pem.as_bytes()),
            hs,
        ),
        (
            "HS256, RSA public key DER as secret",
            confusion(&rsa.public_der),
            hs,
        ),
        (
            "HS256, JWK n as secret",
            confusion(rsa.jwk["n"].as_str().unwrap_or("").as_bytes()),
            hs,
        ),
        ("unknown kid", unknown.sign(&good_claims()), NO_KEY),
        (
            "known kid, other key",
            other_signed_same_kid.sign(&good_claims()),
            SIGNATURE,
        ),
        ("key type does not fit alg", wrong_type, NO_KEY),
        ("JWK alg differs from header alg", alg_mismatch, NO_KEY),
        ("two parts", format!("{header_none}.{payload}"), PARTS),
        ("four parts", format!("{good}.{signature}"), PARTS),
        ("one part", "abc".to_owned(), PARTS),
        ("empty", String::new(), PARTS),
        (
            "bad base64 header",
            format!("!!!.{payload}.{signature}"),
            HEADER,
        ),
        (
            "bad base64 signature",
            {
                let header = b64(&format!(r#"{{"alg":"RS256","kid":"{}"}}"#, rsa.kid));
                format!("{header}.{payload}.%%%")
            },
            SIGNATURE,
        ),
        (
            "header not JSON",
            format!("{}.{payload}.{signature}", b64("not json")),
            HEADER,
        ),
        (
            "payload not JSON",
            {
                let header = b64(&format!(r#"{{"alg":"RS256","kid":"{}"}}"#, rsa.kid));
                format!("{header}.{}.{signature}", b64("not json"))
            },
            SIGNATURE,
        ),
        (
            "payload a JSON array",
            rsa.sign(&json!(["exp", 1])),
            SIGNATURE,
        ),
        (
            "unknown alg",
            format!("{}.{payload}.{signature}", b64(r#"{"alg":"XX999"}"#)),
            HEADER,
        ),
        (
            "crit extension",
            crit,
            "crit names extensions we do not implement",
        ),
        ("JWE-like five parts", format!("{good}.a.b"), PARTS),
        (
            "oversized",
            format!("{good}{}", "A".repeat(70 * 1024)),
            "token too long",
        ),
        (
            "hs with the rsa kid and a valid rsa signature",
            hs_header_rsa_signature,
            hs,
        ),
    ]
}

#[tokio::test]
async fn the_bad_corpus_is_entirely_refused() {
    let rsa = TestKey::rsa("rsa-1", Algorithm::RS256);
    let es = TestKey::es256("ec-1");
    let provider = inline(&[&rsa, &es]);
    let verifier = verifier();
    let corpus = bad_corpus(&rsa, &es);
    assert!(corpus.len() >= 34, "corpus has {} tokens", corpus.len());
    let mut accepted = Vec::new();
    for (name, token, expected) in &corpus {
        match verifier.verify(&provider, token).await {
            Err(Rejection::Invalid(why)) if why == *expected => {}
            Err(Rejection::Invalid(why)) => accepted.push(format!("{name}: refused by {why:?}")),
            Err(Rejection::KeysUnavailable) => accepted.push(format!("{name}: keys unavailable")),
            Ok(_) => accepted.push((*name).to_owned()),
        }
    }
    assert!(
        accepted.is_empty(),
        "accepted or misclassified: {accepted:?}"
    );
}

#[tokio::test]
async fn good_tokens_of_every_algorithm_pass() {
    let keys = [
        TestKey::rsa("rs256", Algorithm::RS256),
        TestKey::rsa("rs384", Algorithm::RS384),
        TestKey::rsa("rs512", Algorithm::RS512),
        TestKey::rsa("ps256", Algorithm::PS256),
        TestKey::rsa("ps384", Algorithm::PS384),
        TestKey::rsa("ps512", Algorithm::PS512),
        TestKey::es256("es256"),
        TestKey::es384("es384"),
        TestKey::ed25519("eddsa"),
    ];
    let refs: Vec<&TestKey> = keys.iter().collect();
    let provider = inline(&refs);
    let verifier = verifier();
    for key in &keys {
        let claims = verifier.verify(&provider, &key.sign(&good_claims())).await;
        let claims = claims.unwrap_or_else(|error| panic!("{:?} refused: {error:?}", key.alg));
        assert_eq!(claims.get("sub"), Some(&json!("ana")));
    }
}

#[tokio::test]
async fn a_token_without_kid_is_tried_on_keys_of_the_fitting_type() -> Result<(), String> {
    let es = TestKey::es256("ec");
    let ed = TestKey::ed25519("ed");
    let rsa = TestKey::rsa("rsa", Algorithm::RS256);
    let provider = inline(&[&rsa, &es, &ed]);
    let verifier = verifier();
    for key in [&es, &ed, &rsa] {
        let token = key.sign_with(&Header::new(key.alg), &good_claims());
        verifier
            .verify(&provider, &token)
            .await
            .map_err(|error| format!("{:?} without kid: {error:?}", key.alg))?;
    }
    Ok(())
}

#[tokio::test]
async fn clock_skew_tolerates_slightly_expired_tokens_only() {
    let rsa = TestKey::rsa("rsa", Algorithm::RS256);
    let mut provider = inline(&[&rsa]);
    provider.clock_skew = Duration::from_secs(60);
    let verifier = verifier();
    let just_expired = with_claims(|c| {
        c.insert("exp".into(), json!(now() - 20));
    });
    let long_expired = with_claims(|c| {
        c.insert("exp".into(), json!(now() - 120));
    });
    let nbf_soon = with_claims(|c| {
        c.insert("nbf".into(), json!(now() + 20));
    });
    assert!(
        verifier
            .verify(&provider, &rsa.sign(&just_expired))
            .await
            .is_ok()
    );
    assert!(
        verifier
            .verify(&provider, &rsa.sign(&nbf_soon))
            .await
            .is_ok()
    );
    assert!(
        verifier
            .verify(&provider, &rsa.sign(&long_expired))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn audience_may_be_an_array_and_unset_settings_accept_any() {
    let rsa = TestKey::rsa("rsa", Algorithm::RS256);
    let verifier = verifier();
    let mut provider = inline(&[&rsa]);
    let array_aud = with_claims(|c| {
        c.insert("aud".into(), json!(["x", AUDIENCE]));
    });
    assert!(
        verifier
            .verify(&provider, &rsa.sign(&array_aud))
            .await
            .is_ok()
    );
    provider.issuer = None;
    provider.audiences.clear();
    let anything = json!({ "iss": "whoever", "aud": "else", "exp": now() + 60 });
    assert!(
        verifier
            .verify(&provider, &rsa.sign(&anything))
            .await
            .is_ok()
    );
    assert_eq!(ISSUER, good_claims()["iss"]);
}

#[tokio::test]
async fn symmetric_and_encryption_keys_in_a_set_are_never_used() {
    // A set whose only "keys" are a shared secret and an encryption key: nothing verifies,
    // and an HS256 token signed with that very secret is refused.
    let secret = b"a-shared-secret-of-enough-length";
    let rsa = TestKey::rsa("enc", Algorithm::RS256);
    let mut enc = rsa.jwk.clone();
    enc["use"] = json!("enc");
    let set = json!({ "keys": [
        { "kty": "oct", "kid": "hs", "k": b64(std::str::from_utf8(secret).unwrap_or("")), "alg": "HS256" },
        enc,
        { "kty": "RSA", "kid": "odd", "alg": "RSA-OAEP", "n": rsa.jwk["n"], "e": rsa.jwk["e"] },
    ]});
    let provider = provider(JwksSource::Inline(set.to_string()));
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("hs".into());
    let hs = jsonwebtoken::encode(&header, &good_claims(), &EncodingKey::from_secret(secret))
        .expect("HS256 signing");
    let verifier = verifier();
    assert!(verifier.verify(&provider, &hs).await.is_err());
    assert!(
        verifier
            .verify(&provider, &rsa.sign(&good_claims()))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn one_unusable_key_does_not_spoil_the_set() {
    let rsa = TestKey::rsa("good", Algorithm::RS256);
    let set = json!({ "keys": [
        { "kty": "weird", "kid": "x" },
        { "kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA" },
        rsa.jwk,
    ]});
    let provider = provider(JwksSource::Inline(set.to_string()));
    assert!(
        verifier()
            .verify(&provider, &rsa.sign(&good_claims()))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_broken_inline_set_accepts_nothing() {
    let rsa = TestKey::rsa("good", Algorithm::RS256);
    let provider = provider(JwksSource::Inline("{not json".into()));
    let result = verifier()
        .verify(&provider, &rsa.sign(&good_claims()))
        .await;
    assert!(matches!(result, Err(Rejection::Invalid(_))));
}

#[tokio::test]
async fn a_key_without_kid_is_tried_for_a_token_that_names_one() {
    let key = TestKey::es384("given");
    let mut anonymous = key.jwk.clone();
    if let Value::Object(map) = &mut anonymous {
        map.remove("kid");
    }
    let provider = provider(JwksSource::Inline(
        json!({ "keys": [anonymous] }).to_string(),
    ));
    let result = verifier()
        .verify(&provider, &key.sign(&good_claims()))
        .await;
    assert!(result.is_ok(), "{result:?}");
}
