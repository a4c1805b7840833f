//! The remote key cache over real sockets: first fetch, rotation, TTL, stale on error,
//! single flight and the refetch window.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use jsonwebtoken::Algorithm;
use snapshot::security::{JwksSource, JwtProvider};
use telemetry::Metrics;

use crate::authn::fixtures::{Answer, JwksServer, TestKey, good_claims, jwks, provider};
use crate::authn::jwt::{JwtVerifier, Rejection};

fn remote(server: &JwksServer, cache_duration: Duration, timeout: Duration) -> JwtProvider {
    provider(JwksSource::Remote {
        uri: server.uri(),
        cache_duration,
        timeout,
    })
}

const LONG: Duration = Duration::from_secs(300);
const TIMEOUT: Duration = Duration::from_secs(5);
/// A refetch window short enough to wait out in a test, long enough to hold during one.
const WINDOW: Duration = Duration::from_millis(1500);

/// Polls `condition` for up to two seconds.
async fn eventually(condition: impl Fn() -> bool) -> bool {
    for _ in 0..200 {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}

#[tokio::test]
async fn keys_are_fetched_on_first_use_then_cached() {
    let key = TestKey::es256("a");
    let server = JwksServer::start(Answer::Ok(jwks(&[&key])), Duration::ZERO).await;
    let metrics = Arc::new(Metrics::new());
    let verifier = JwtVerifier::new(Arc::clone(&metrics));
    let provider = remote(&server, LONG, TIMEOUT);
    assert_eq!(
        server.hits(),
        0,
        "nothing is fetched before a token needs keys"
    );
    for _ in 0..5 {
        assert!(
            verifier
                .verify(&provider, &key.sign(&good_claims()))
                .await
                .is_ok()
        );
    }
    assert_eq!(server.hits(), 1);
    let exported = metrics.encode();
    assert!(
        exported.contains("portcullis_jwks_fetches_total{")
            && exported.contains("result=\"success\"} 1"),
        "{exported}"
    );
}

#[tokio::test]
async fn a_rotated_in_key_is_accepted_after_one_refetch() {
    let old = TestKey::es256("old");
    let new = TestKey::ed25519("new");
    let server = JwksServer::start(Answer::Ok(jwks(&[&old])), Duration::ZERO).await;
    let verifier = JwtVerifier::with_min_refetch(Arc::new(Metrics::new()), WINDOW);
    let provider = remote(&server, LONG, TIMEOUT);
    assert!(
        verifier
            .verify(&provider, &old.sign(&good_claims()))
            .await
            .is_ok()
    );
    server.set(Answer::Ok(jwks(&[&old, &new])));
    // Within the refetch window of the first fetch the new kid is not looked for.
    assert!(
        verifier
            .verify(&provider, &new.sign(&good_claims()))
            .await
            .is_err()
    );
    assert_eq!(server.hits(), 1);
    tokio::time::sleep(WINDOW + Duration::from_millis(20)).await;
    assert!(
        verifier
            .verify(&provider, &new.sign(&good_claims()))
            .await
            .is_ok()
    );
    assert!(
        verifier
            .verify(&provider, &old.sign(&good_claims()))
            .await
            .is_ok()
    );
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn concurrent_unknown_kids_cause_one_fetch_and_the_window_holds_after() {
    let known = TestKey::es256("known");
    let stranger = TestKey::es256("stranger");
    // A slow endpoint: every request arrives while the first fetch is still running.
    let server = JwksServer::start(Answer::Ok(jwks(&[&known])), Duration::from_millis(200)).await;
    let verifier = Arc::new(JwtVerifier::with_min_refetch(
        Arc::new(Metrics::new()),
        WINDOW,
    ));
    let provider = Arc::new(remote(&server, LONG, TIMEOUT));
    assert!(
        verifier
            .verify(&provider, &known.sign(&good_claims()))
            .await
            .is_ok()
    );
    assert_eq!(server.hits(), 1);
    tokio::time::sleep(WINDOW + Duration::from_millis(20)).await;

    let token = stranger.sign(&good_claims());
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (verifier, provider, token) =
            (Arc::clone(&verifier), Arc::clone(&provider), token.clone());
        tasks.push(tokio::spawn(async move {
            verifier.verify(&provider, &token).await
        }));
    }
    for task in tasks {
        let result = task.await.expect("the verification task ran");
        assert!(matches!(result, Err(Rejection::Invalid(_))));
    }
    assert_eq!(
        server.hits(),
        2,
        "50 concurrent unknown-kid tokens, one refetch"
    );

    // Within the window, more unknown kids fetch nothing; known kids keep working.
    for _ in 0..10 {
        assert!(verifier.verify(&provider, &token).await.is_err());
    }
    assert!(
        verifier
            .verify(&provider, &known.sign(&good_claims()))
            .await
            .is_ok()
    );
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_token_naming_a_kid_the_refetch_still_lacks_is_refused() {
    let known = TestKey::rsa("known", Algorithm::RS256);
    let stranger = TestKey::other_rsa("stranger");
    let server = JwksServer::start(Answer::Ok(jwks(&[&known])), Duration::ZERO).await;
    let verifier = JwtVerifier::new(Arc::new(Metrics::new()));
    let provider = remote(&server, LONG, TIMEOUT);
    let result = verifier
        .verify(&provider, &stranger.sign(&good_claims()))
        .await;
    assert!(matches!(result, Err(Rejection::Invalid(_))));
    // The first fetch found no such kid; the window then forbids a second one.
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_stale_set_is_refreshed_in_the_background() {
    let first = TestKey::es256("first");
    let second = TestKey::es256("second");
    let server = JwksServer::start(Answer::Ok(jwks(&[&first])), Duration::ZERO).await;
    let verifier =
        JwtVerifier::with_min_refetch(Arc::new(Metrics::new()), Duration::from_millis(50));
    let ttl = Duration::from_secs(1);
    let provider = remote(&server, ttl, TIMEOUT);
    assert!(
        verifier
            .verify(&provider, &first.sign(&good_claims()))
            .await
            .is_ok()
    );
    server.set(Answer::Ok(jwks(&[&first, &second])));
    // Fresh: no fetch.
    assert!(
        verifier
            .verify(&provider, &first.sign(&good_claims()))
            .await
            .is_ok()
    );
    assert_eq!(server.hits(), 1);
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    // Stale: served at once, refreshed behind the request.
    assert!(
        verifier
            .verify(&provider, &first.sign(&good_claims()))
            .await
            .is_ok()
    );
    assert!(
        eventually(|| server.hits() == 2).await,
        "hits: {}",
        server.hits()
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(
        verifier
            .verify(&provider, &second.sign(&good_claims()))
            .await
            .is_ok()
    );
    assert_eq!(
        server.hits(),
        2,
        "the refreshed set already held the new kid"
    );
}

#[tokio::test]
async fn the_last_good_set_is_served_while_the_endpoint_is_down() {
    let key = TestKey::es256("k");
    let stranger = TestKey::es256("stranger");
    let server = JwksServer::start(Answer::Ok(jwks(&[&key])), Duration::ZERO).await;
    let metrics = Arc::new(Metrics::new());
    let verifier = JwtVerifier::with_min_refetch(Arc::clone(&metrics), Duration::from_millis(20));
    let provider = remote(&server, Duration::from_millis(50), TIMEOUT);
    assert!(
        verifier
            .verify(&provider, &key.sign(&good_claims()))
            .await
            .is_ok()
    );
    server.set(Answer::Status(StatusCode::SERVICE_UNAVAILABLE));
    tokio::time::sleep(Duration::from_millis(80)).await;
    // Stale and the refresh fails: still verifies.
    for _ in 0..3 {
        assert!(
            verifier
                .verify(&provider, &key.sign(&good_claims()))
                .await
                .is_ok()
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // An unknown kid waits for a refetch, which fails: refused, and the old key still works.
    assert!(
        verifier
            .verify(&provider, &stranger.sign(&good_claims()))
            .await
            .is_err()
    );
    assert!(
        verifier
            .verify(&provider, &key.sign(&good_claims()))
            .await
            .is_ok()
    );
    assert!(server.hits() >= 2);
    assert!(metrics.encode().contains("result=\"error\""));
}

#[tokio::test]
async fn no_set_ever_and_a_failing_endpoint_means_keys_unavailable() {
    let key = TestKey::es256("k");
    let server = JwksServer::start(Answer::Status(StatusCode::NOT_FOUND), Duration::ZERO).await;
    let verifier = JwtVerifier::new(Arc::new(Metrics::new()));
    let provider = remote(&server, LONG, TIMEOUT);
    let result = verifier.verify(&provider, &key.sign(&good_claims())).await;
    assert!(matches!(result, Err(Rejection::KeysUnavailable)));
    // The window also protects a down endpoint that never answered well.
    let result = verifier.verify(&provider, &key.sign(&good_claims())).await;
    assert!(matches!(result, Err(Rejection::KeysUnavailable)));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_hanging_endpoint_is_bounded_by_the_timeout() {
    let key = TestKey::es256("k");
    let server = JwksServer::start(Answer::Hang, Duration::ZERO).await;
    let verifier = JwtVerifier::new(Arc::new(Metrics::new()));
    let provider = remote(&server, LONG, Duration::from_millis(200));
    let started = std::time::Instant::now();
    let result = verifier.verify(&provider, &key.sign(&good_claims())).await;
    assert!(matches!(result, Err(Rejection::KeysUnavailable)));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}

#[tokio::test]
async fn an_oversized_or_invalid_document_is_not_a_key_set() {
    let key = TestKey::es256("k");
    let huge = format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    for answer in [
        huge,
        "[]".to_owned(),
        r#"{"keys":[]}"#.to_owned(),
        "<html>".to_owned(),
    ] {
        let server = JwksServer::start(Answer::Ok(answer), Duration::ZERO).await;
        let metrics = Arc::new(Metrics::new());
        let verifier = JwtVerifier::new(Arc::clone(&metrics));
        let provider = remote(&server, LONG, TIMEOUT);
        let result = verifier.verify(&provider, &key.sign(&good_claims())).await;
        assert!(matches!(result, Err(Rejection::KeysUnavailable)));
    }
}

#[tokio::test]
async fn providers_naming_one_uri_share_one_cache_and_retain_drops_it() {
    let key = TestKey::es256("k");
    let server = JwksServer::start(Answer::Ok(jwks(&[&key])), Duration::ZERO).await;
    let verifier = JwtVerifier::new(Arc::new(Metrics::new()));
    let one = remote(&server, LONG, TIMEOUT);
    let mut two = remote(&server, LONG, TIMEOUT);
    two.name = "second".into();
    assert!(
        verifier
            .verify(&one, &key.sign(&good_claims()))
            .await
            .is_ok()
    );
    assert!(
        verifier
            .verify(&two, &key.sign(&good_claims()))
            .await
            .is_ok()
    );
    assert_eq!(server.hits(), 1);
    verifier.retain(&[server.uri()].into_iter().collect());
    assert!(
        verifier
            .verify(&one, &key.sign(&good_claims()))
            .await
            .is_ok()
    );
    assert_eq!(server.hits(), 1, "a live URI keeps its cache");
    verifier.retain(&std::collections::HashSet::new());
    assert!(
        verifier
            .verify(&one, &key.sign(&good_claims()))
            .await
            .is_ok()
    );
    assert_eq!(server.hits(), 2, "a dropped cache starts over");
}

#[tokio::test]
async fn concurrent_first_requests_wait_for_one_fetch() {
    let key = TestKey::es256("k");
    let server = JwksServer::start(Answer::Ok(jwks(&[&key])), Duration::from_millis(200)).await;
    let verifier = Arc::new(JwtVerifier::new(Arc::new(Metrics::new())));
    let provider = Arc::new(remote(&server, LONG, TIMEOUT));
    let token = key.sign(&good_claims());
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (verifier, provider, token) =
            (Arc::clone(&verifier), Arc::clone(&provider), token.clone());
        tasks.push(tokio::spawn(async move {
            verifier.verify(&provider, &token).await.is_ok()
        }));
    }
    for task in tasks {
        assert!(task.await.expect("the verification task ran"));
    }
    assert_eq!(server.hits(), 1);
}

/// A TLS server configuration for a self-signed certificate naming `127.0.0.1`.
fn tls_server() -> (Arc<rustls::ServerConfig>, rustls::RootCertStore) {
    let certificate =
        testkit::pki::Certificate::self_signed(&["127.0.0.1"]).expect("a test certificate");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![certificate.certificate_der().clone()],
            certificate.key_der(),
        )
        .expect("a server certificate");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(certificate.certificate_der().clone())
        .expect("a trust anchor");
    (Arc::new(config), roots)
}

#[tokio::test]
async fn keys_are_fetched_over_https_from_a_trusted_server() {
    let key = TestKey::ed25519("k");
    let (tls, roots) = tls_server();
    let server = JwksServer::start_tls(Answer::Ok(jwks(&[&key])), tls).await;
    let verifier = JwtVerifier::with_fetcher(
        Arc::new(Metrics::new()),
        crate::authn::jwt::JwksFetcher::with_roots(roots),
    );
    let provider = provider(JwksSource::Remote {
        uri: server.https_uri("127.0.0.1"),
        cache_duration: LONG,
        timeout: TIMEOUT,
    });
    let result = verifier.verify(&provider, &key.sign(&good_claims())).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn an_untrusted_https_server_gives_no_keys() {
    let key = TestKey::ed25519("k");
    let (tls, _roots) = tls_server();
    let server = JwksServer::start_tls(Answer::Ok(jwks(&[&key])), tls).await;
    let metrics = Arc::new(Metrics::new());
    // The platform's anchors do not include the test's self-signed certificate.
    let verifier = JwtVerifier::new(Arc::clone(&metrics));
    let provider = provider(JwksSource::Remote {
        uri: server.https_uri("127.0.0.1"),
        cache_duration: LONG,
        timeout: TIMEOUT,
    });
    let result = verifier.verify(&provider, &key.sign(&good_claims())).await;
    assert!(matches!(result, Err(Rejection::KeysUnavailable)));
    assert_eq!(
        server.hits(),
        0,
        "no request crosses an unverified handshake"
    );
    assert!(metrics.encode().contains("result=\"error\"} 1"));
}
