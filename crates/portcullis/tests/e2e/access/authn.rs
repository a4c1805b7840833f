//! Authentication and authorization through the binary: JWT against a real JWKS endpoint
//! (claims forwarded, bad tokens refused, a rotated key picked up), API keys with a rate
//! limit per key, basic auth (bcrypt), and allow/deny by the client's real address.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use testkit::{EchoConfig, EchoServer};
use tokio::net::TcpListener;

use super::policy;
use crate::fixture::eventually;
use crate::fixture::manifest::{NS, http_route, rule, service_backend, service_ref};
use crate::fixture::running::{HOST, TestGateway};

/// An Ed25519 signing key and its public JWK.
struct SigningKey {
    kid: String,
    der: Vec<u8>,
    jwk: Value,
}

impl SigningKey {
    fn generate(kid: &str) -> anyhow::Result<SigningKey> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("key generation failed"))?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| anyhow::anyhow!("key parse failed"))?;
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        Ok(SigningKey {
            kid: kid.to_owned(),
            der: pkcs8.as_ref().to_vec(),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": x}),
        })
    }

    /// A token with these claims (`iss`, `aud`, `exp` added unless given).
    fn token(&self, claims: Value) -> anyhow::Result<String> {
        let mut claims = claims;
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        for (name, value) in [
            ("iss", json!("https://issuer.test")),
            ("aud", json!("shop")),
            ("exp", json!(now + 600)),
        ] {
            if claims.get(name).is_none() {
                claims[name] = value;
            }
        }
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_ed_der(&self.der),
        )?)
    }
}

/// A JWKS endpoint serving whatever `keys` holds, counting its fetches.
async fn jwks_server(keys: Arc<Mutex<Vec<Value>>>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let keys = Arc::clone(&keys);
            tokio::spawn(async move {
                let service = service_fn(move |_: Request<Incoming>| {
                    let set = json!({"keys": *keys.lock().unwrap_or_else(|p| p.into_inner())});
                    async move {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(set.to_string()))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// A gateway with route `app` to an echo pod, guarded by `security`, and `extra` documents.
async fn start(security: Value, extra: Vec<Value>) -> anyhow::Result<(TestGateway, EchoServer)> {
    let pod = EchoServer::start(EchoConfig::new("app", NS)).await?;
    let mut documents = service_backend(NS, "app", &[pod.addr()]);
    documents.push(http_route(
        "app",
        &[],
        vec![rule(vec![], vec![service_ref("app")])],
    ));
    documents.push(policy("SecurityPolicy", "auth", Some("app"), security));
    documents.extend(extra);
    Ok((TestGateway::start(&documents).await?, pod))
}

#[tokio::test]
async fn jwt_claims_decide_and_reach_the_upstream() -> anyhow::Result<()> {
    let first = SigningKey::generate("k1")?;
    let keys = Arc::new(Mutex::new(vec![first.jwk.clone()]));
    let jwks = jwks_server(Arc::clone(&keys)).await?;
    let security = json!({
        "jwt": {"providers": [{
            "name": "main",
            "issuer": "https://issuer.test",
            "audiences": ["shop"],
            "remoteJWKS": {"uri": format!("http://{jwks}/jwks.json"), "cacheDuration": "300s"},
            "claimToHeaders": [{"claim": "sub", "header": "x-user"}],
        }]},
        "authorization": {"defaultAction": "Deny", "rules": [{
            "action": "Allow",
            "principal": {"jwt": {"provider": "main", "claims": [{"name": "role", "values": ["admin"]}]}},
        }]},
    });
    let (gateway, _pod) = start(security, vec![]).await?;
    let bearer = |token: &str| format!("Bearer {token}");

    let admin = first.token(json!({"sub": "ana", "role": "admin"}))?;
    let response = gateway
        .get(
            HOST,
            "/",
            &[("authorization", &bearer(&admin)), ("x-user", "forged")],
        )
        .await?;
    ensure!(
        response.status == 200,
        "{} {}",
        response.status,
        response.text()
    );
    let echo = response.echo()?;
    ensure!(
        echo.header("x-user").as_deref() == Some("ana"),
        "{:?}",
        echo.headers
    );
    ensure!(
        echo.header("authorization").is_none(),
        "the token is not forwarded"
    );

    let user = first.token(json!({"sub": "bo", "role": "user"}))?;
    let forbidden = gateway
        .get(HOST, "/", &[("authorization", &bearer(&user))])
        .await?;
    ensure!(
        forbidden.status == 403,
        "a valid token without the claim: {}",
        forbidden.status
    );

    let missing = gateway.get(HOST, "/", &[]).await?;
    ensure!(missing.status == 401, "no token: {}", missing.status);
    ensure!(
        missing
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer"))
    );

    let stranger = SigningKey::generate("k1")?;
    let expired = first.token(json!({"sub": "ana", "role": "admin", "exp": 1_000_000}))?;
    let wrong_audience = first.token(json!({"sub": "ana", "role": "admin", "aud": "other"}))?;
    let forged = stranger.token(json!({"sub": "ana", "role": "admin"}))?;
    let unsigned = {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = admin.split('.').nth(1).context("claims")?;
        format!("{header}.{claims}.")
    };
    for (what, token) in [
        ("expired", expired),
        ("wrong audience", wrong_audience),
        ("signed by another key", forged),
        ("alg none", unsigned),
    ] {
        let refused = gateway
            .get(HOST, "/", &[("authorization", &bearer(&token))])
            .await?;
        ensure!(refused.status == 401, "{what}: {}", refused.status);
        ensure!(
            refused
                .header("www-authenticate")
                .is_some_and(|v| v.contains("invalid_token")),
            "{what}: {:?}",
            refused.headers
        );
    }

    // The issuer rotates its key: a token signed with the new one is accepted once the JWKS
    // is fetched again (an unknown `kid` refetches, at most once per 10 s).
    let second = SigningKey::generate("k2")?;
    keys.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(second.jwk.clone());
    let rotated = second.token(json!({"sub": "cy", "role": "admin"}))?;
    eventually(Duration::from_secs(15), async || {
        let response = gateway
            .get(HOST, "/", &[("authorization", &bearer(&rotated))])
            .await?;
        ensure!(response.status == 200, "rotated key: {}", response.status);
        Ok(())
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn api_keys_identify_clients_and_each_has_its_own_rate_limit() -> anyhow::Result<()> {
    let keys = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "api-keys", "namespace": NS},
        "stringData": {"alice": "key-alice", "bob": "key-bob"},
    });
    let limits = policy(
        "RateLimitPolicy",
        "per-client",
        Some("app"),
        json!({"local": {"rules": [{
            "clientSelectors": [{"client": {"type": "Distinct"}}],
            "limit": {"requests": 2, "unit": "Minute"},
        }]}}),
    );
    let security = json!({"apiKeyAuth": {
        "credentialRefs": [{"name": "api-keys"}],
        "forwardClientIDHeader": "x-client-id",
    }});
    let (gateway, _pod) = start(security, vec![keys, limits]).await?;
    for _ in 0..2 {
        let response = gateway
            .get(HOST, "/", &[("x-api-key", "key-alice")])
            .await?;
        ensure!(response.status == 200, "{}", response.status);
        let echo = response.echo()?;
        ensure!(
            echo.header("x-client-id").as_deref() == Some("alice"),
            "{:?}",
            echo.headers
        );
        ensure!(echo.header("x-api-key").is_none(), "the key is removed");
    }
    let limited = gateway
        .get(HOST, "/", &[("x-api-key", "key-alice")])
        .await?;
    ensure!(limited.status == 429, "alice's third: {}", limited.status);
    let bob = gateway.get(HOST, "/", &[("x-api-key", "key-bob")]).await?;
    ensure!(bob.status == 200, "bob has his own bucket: {}", bob.status);
    let wrong = gateway.get(HOST, "/", &[("x-api-key", "key-eve")]).await?;
    ensure!(wrong.status == 401, "unknown key: {}", wrong.status);
    Ok(())
}

#[tokio::test]
async fn basic_auth_checks_bcrypt_entries() -> anyhow::Result<()> {
    let hash = bcrypt::hash("s3cret", 4)?;
    let users = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "htpasswd", "namespace": NS},
        "stringData": {".htpasswd": format!("ana:{hash}\n")},
    });
    let security = json!({"basicAuth": {"users": {"name": "htpasswd"}, "forwardUsernameHeader": "x-user", "realm": "shop"}});
    let (gateway, _pod) = start(security, vec![users]).await?;
    let credentials = |pair: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    };
    let good = gateway
        .get(HOST, "/", &[("authorization", &credentials("ana:s3cret"))])
        .await?;
    ensure!(good.status == 200, "{}", good.status);
    ensure!(good.echo()?.header("x-user").as_deref() == Some("ana"));
    let bad = gateway
        .get(HOST, "/", &[("authorization", &credentials("ana:wrong"))])
        .await?;
    ensure!(bad.status == 401, "{}", bad.status);
    ensure!(
        bad.header("www-authenticate")
            .is_some_and(|v| v.contains("realm=\"shop\"")),
        "{:?}",
        bad.headers
    );
    Ok(())
}

#[tokio::test]
async fn client_addresses_are_believed_only_through_trusted_hops() -> anyhow::Result<()> {
    let security = json!({"authorization": {"defaultAction": "Deny", "rules": [
        {"action": "Deny", "principal": {"clientCIDRs": ["10.9.0.0/16"]}},
        {"action": "Allow", "principal": {"clientCIDRs": ["10.0.0.0/8"]}},
    ]}});
    // One trusted proxy in front: the client is the last X-Forwarded-For entry.
    let trusting = policy(
        "ClientTrafficPolicy",
        "edge",
        None,
        json!({"clientIPDetection": {"xForwardedFor": {"numTrustedHops": 1}}}),
    );
    let (gateway, _pod) = start(security.clone(), vec![trusting]).await?;
    let from = async |address: &str| -> anyhow::Result<u16> {
        let response = gateway
            .get(HOST, "/", &[("x-forwarded-for", address)])
            .await?;
        Ok(response.status.as_u16())
    };
    ensure!(from("10.1.2.3").await? == 200, "allowed network");
    ensure!(from("10.9.1.1").await? == 403, "denied network");
    ensure!(from("192.0.2.1").await? == 403, "default deny");
    // A client cannot forge an earlier hop: only the last entry (the trusted proxy's view)
    // counts.
    ensure!(
        from("10.1.2.3, 192.0.2.1").await? == 403,
        "spoofed first hop"
    );

    // Without trusted hops the peer (127.0.0.1) is the client, whatever the header says.
    let (direct, _pod) = start(security, vec![]).await?;
    let response = direct
        .get(HOST, "/", &[("x-forwarded-for", "10.1.2.3")])
        .await?;
    ensure!(
        response.status == 403,
        "X-Forwarded-For is not believed: {}",
        response.status
    );
    Ok(())
}
