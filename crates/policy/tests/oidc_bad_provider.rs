//! OIDC against providers that misbehave: a raw HTTP/1.1 server on 127.0.0.1 answers the
//! discovery request with an oversized body, nonsense, or nothing at all. Every case must end
//! in 502 `oidc-provider-error`, within the 5 s bound, and never let the request through.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, Request, StatusCode};
use policy::oidc::{OidcOutcome, OidcRuntime};
use snapshot::security::Oidc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the fake provider does with each connection.
#[derive(Clone, Copy)]
enum Misbehaviour {
    /// Answers a valid discovery document padded past the 1 MiB the gateway reads (and a
    /// valid, empty key set): only the size limit refuses it.
    HugeBody,
    /// Answers 200 with something that is not a discovery document.
    NotJson,
    /// Answers a discovery document whose keys URL is not a URL.
    BadJwksUri,
    /// Reads the request and never answers.
    Silent,
}

/// Starts the fake provider; returns its issuer URL.
async fn start(misbehaviour: Misbehaviour) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let issuer = format!("http://{}", listener.local_addr()?);
    let document = format!(
        r#"{{"issuer":"{issuer}","authorization_endpoint":"{issuer}/auth","jwks_uri":"not a url"}}"#
    );
    let served = issuer.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let document = document.clone();
            let issuer = served.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let read = stream.read(&mut request).await.unwrap_or(0);
                let is_jwks = request[..read].starts_with(b"GET /jwks ");
                let body: Vec<u8> = match misbehaviour {
                    Misbehaviour::HugeBody if is_jwks => br#"{"keys":[]}"#.to_vec(),
                    Misbehaviour::HugeBody => huge_document(&issuer).into_bytes(),
                    Misbehaviour::NotJson => b"<html>hello</html>".to_vec(),
                    Misbehaviour::BadJwksUri => document.into_bytes(),
                    Misbehaviour::Silent => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            });
        }
    });
    Ok(issuer)
}

/// A valid discovery document of `issuer`, over 2 MiB.
fn huge_document(issuer: &str) -> String {
    let padding = "x".repeat(2 * 1024 * 1024);
    format!(
        r#"{{"issuer":"{issuer}","authorization_endpoint":"{issuer}/auth","jwks_uri":"{issuer}/jwks","padding":"{padding}"}}"#
    )
}

fn settings(issuer: String) -> Oidc {
    Oidc {
        issuer,
        authorization_endpoint: None,
        token_endpoint: None,
        end_session_endpoint: None,
        client_id: "gw".to_owned(),
        client_secret: "secret".to_owned(),
        scopes: Vec::new(),
        redirect_uri: "/oauth2/callback".to_owned(),
        redirect_path: "/oauth2/callback".to_owned(),
        logout_path: "/logout".to_owned(),
        post_logout_redirect_uri: None,
        refresh_token: true,
        cookie_prefix: "gw".to_owned(),
        cookie_domain: None,
        cookie_key: [1; 32],
        forward_access_token: true,
        default_session_lifetime: Duration::from_secs(3600),
    }
}

async fn navigate(runtime: &OidcRuntime, settings: &Oidc) -> anyhow::Result<OidcOutcome> {
    let mut parts = Request::builder()
        .method(Method::GET)
        .uri("/app")
        .header("host", "gateway.test")
        .header("accept", "text/html")
        .body(())?
        .into_parts()
        .0;
    Ok(runtime
        .authenticate(settings, "SecurityPolicy a/b", "http", &mut parts)
        .await)
}

#[tokio::test]
async fn every_misbehaving_provider_is_a_502() -> anyhow::Result<()> {
    for misbehaviour in [
        Misbehaviour::HugeBody,
        Misbehaviour::NotJson,
        Misbehaviour::BadJwksUri,
        Misbehaviour::Silent,
    ] {
        let runtime = OidcRuntime::new(Arc::new(telemetry::Metrics::new()));
        let settings = settings(start(misbehaviour).await?);
        let started = Instant::now();
        let outcome = navigate(&runtime, &settings).await?;
        let OidcOutcome::Respond(denial) = outcome else {
            anyhow::bail!("a misbehaving provider let the request through: {outcome:?}");
        };
        assert_eq!(denial.status, StatusCode::BAD_GATEWAY);
        assert_eq!(denial.reason, "oidc-provider-error");
        assert!(
            started.elapsed() < Duration::from_secs(7),
            "took {:?}",
            started.elapsed()
        );
        // Within the back-off after a failure, the next request fails at once.
        let again = Instant::now();
        let outcome = navigate(&runtime, &settings).await?;
        assert!(
            matches!(outcome, OidcOutcome::Respond(ref d) if d.status == StatusCode::BAD_GATEWAY)
        );
        assert!(again.elapsed() < Duration::from_secs(1), "no back-off");
    }
    Ok(())
}
