//! OIDC against a real OpenID provider: `oidc-provider` (npm) run by node on 127.0.0.1
//! (`testkit::OidcProvider`), driven by a scripted browser with a cookie jar.
//!
//! The browser asks the gateway (`OidcRuntime::authenticate`, called directly as the proxy
//! would) for a page, follows the redirect to the real provider, fills in its login and consent
//! forms, and hands the provider's redirect back to the gateway, never fetching the gateway's
//! URLs itself. Everything the provider does (discovery, PKCE, the code exchange, ID-token
//! signatures, refresh tokens, end-session) is the real thing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use http::header::{AUTHORIZATION, COOKIE, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use policy::oidc::{OidcOutcome, OidcRuntime};
use snapshot::security::Oidc;
use testkit::{OidcProvider, OidcProviderConfig};

use testkit::oidc::Browser;

const GATEWAY: &str = "gateway.test";
const CLIENT_ID: &str = "portcullis";
const CLIENT_SECRET: &str = "a-long-enough-client-secret-for-hs256-0123456789";

fn provider_config(access_token_ttl: Duration) -> OidcProviderConfig {
    OidcProviderConfig {
        client_id: CLIENT_ID.to_owned(),
        client_secret: CLIENT_SECRET.to_owned(),
        redirect_uris: vec![format!("http://{GATEWAY}/oauth2/callback")],
        post_logout_redirect_uris: vec![format!("http://{GATEWAY}/bye")],
        access_token_ttl,
        token_endpoint_auth_method: None,
    }
}

fn settings(issuer: String) -> Oidc {
    Oidc {
        issuer,
        authorization_endpoint: None,
        token_endpoint: None,
        end_session_endpoint: None,
        client_id: CLIENT_ID.to_owned(),
        client_secret: CLIENT_SECRET.to_owned(),
        scopes: vec!["email".to_owned()],
        redirect_uri: "/oauth2/callback".to_owned(),
        redirect_path: "/oauth2/callback".to_owned(),
        logout_path: "/logout".to_owned(),
        post_logout_redirect_uri: Some("/bye".to_owned()),
        refresh_token: true,
        cookie_prefix: "gw".to_owned(),
        cookie_domain: None,
        cookie_key: [9; 32],
        forward_access_token: true,
        default_session_lifetime: Duration::from_secs(3600),
    }
}

/// The value of query parameter `name` in `uri`, decoded.
fn query_param(uri: &str, name: &str) -> Option<String> {
    let query = uri.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

fn denial(outcome: OidcOutcome) -> anyhow::Result<policy::Denial> {
    match outcome {
        OidcOutcome::Respond(denial) => Ok(denial),
        OidcOutcome::Authenticated { identity, .. } => {
            bail!(
                "expected a response, got a session for {:?}",
                identity.claims
            )
        }
    }
}

fn location(denial: &policy::Denial) -> anyhow::Result<String> {
    Ok(denial
        .headers
        .get(LOCATION)
        .context("no Location")?
        .to_str()?
        .to_owned())
}

struct Fixture {
    runtime: OidcRuntime,
    metrics: Arc<telemetry::Metrics>,
    settings: Oidc,
    browser: Browser,
}

impl Fixture {
    fn new(issuer: String) -> Fixture {
        let metrics = Arc::new(telemetry::Metrics::new());
        Fixture {
            runtime: OidcRuntime::new(Arc::clone(&metrics)),
            metrics,
            settings: settings(issuer),
            browser: Browser::new(GATEWAY),
        }
    }

    /// The gateway decides `parts`; cookies it sets land in the browser's jar.
    async fn gateway(&mut self, mut parts: Parts) -> (OidcOutcome, Parts) {
        let outcome = self
            .runtime
            .authenticate(
                &self.settings,
                "SecurityPolicy app/oidc",
                "http",
                &mut parts,
            )
            .await;
        let mut set = HeaderMap::new();
        match &outcome {
            OidcOutcome::Respond(denial) => set = denial.headers.clone(),
            OidcOutcome::Authenticated { set_cookies, .. } => {
                for cookie in set_cookies {
                    set.append(SET_COOKIE, cookie.clone());
                }
            }
        }
        self.browser.store(GATEWAY, &set);
        (outcome, parts)
    }

    async fn page(&mut self, target: &str) -> (OidcOutcome, Parts) {
        let parts = self.browser.gateway_request(
            Method::GET,
            target,
            Some("text/html,application/xhtml+xml"),
        );
        self.gateway(parts).await
    }

    /// A whole login for `/app?x=1`: returns the gateway's answer to the callback.
    async fn log_in(&mut self, login: &str) -> anyhow::Result<policy::Denial> {
        let redirect = denial(self.page("/app?x=1").await.0)?;
        assert_eq!(redirect.status, StatusCode::FOUND);
        assert_eq!(redirect.reason, "oidc-login");
        let to_provider = location(&redirect)?;
        let back = self.browser.log_in_at_provider(&to_provider, login).await?;
        let target = back
            .path_and_query()
            .context("a callback URL")?
            .as_str()
            .to_owned();
        denial(self.page(&target).await.0)
    }
}

async fn start_provider(ttl: Duration) -> anyhow::Result<OidcProvider> {
    OidcProvider::start(&provider_config(ttl)).await
}

#[tokio::test]
async fn a_login_redirect_carries_pkce_and_state_and_sets_a_flow_cookie() -> anyhow::Result<()> {
    let provider = start_provider(Duration::from_secs(3600)).await?;
    let mut fixture = Fixture::new(provider.issuer());

    let redirect = denial(fixture.page("/app?x=1").await.0)?;
    let to_provider = location(&redirect)?;
    assert!(
        to_provider.starts_with(&format!("{}/auth?", provider.issuer())),
        "{to_provider}"
    );
    assert_eq!(
        query_param(&to_provider, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        query_param(&to_provider, "scope").as_deref(),
        Some("openid email")
    );
    assert_eq!(
        query_param(&to_provider, "redirect_uri").as_deref(),
        Some("http://gateway.test/oauth2/callback")
    );
    let state = query_param(&to_provider, "state").context("state")?;
    let flow_cookie = redirect
        .headers
        .get(SET_COOKIE)
        .context("flow cookie")?
        .to_str()?;
    assert!(
        flow_cookie.starts_with(&format!("gw-flow-{}=", &state[..8])),
        "{flow_cookie}"
    );
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"] {
        assert!(flow_cookie.contains(attribute), "{flow_cookie}");
    }
    Ok(())
}

#[tokio::test]
async fn a_browser_logs_in_and_its_session_reaches_upstream_as_a_bearer_token() -> anyhow::Result<()>
{
    let provider = start_provider(Duration::from_secs(3600)).await?;
    let mut fixture = Fixture::new(provider.issuer());
    let redirect = denial(fixture.page("/app?x=1").await.0)?;
    let to_provider = location(&redirect)?;
    let back = fixture
        .browser
        .log_in_at_provider(&to_provider, "ana")
        .await?;
    assert_eq!(back.path(), "/oauth2/callback");
    let target = back
        .path_and_query()
        .context("callback")?
        .as_str()
        .to_owned();
    let callback = denial(fixture.page(&target).await.0)?;
    assert_eq!(callback.status, StatusCode::FOUND, "{:?}", callback.reason);
    assert_eq!(callback.reason, "oidc-callback");
    assert_eq!(location(&callback)?, "/app?x=1");
    assert!(fixture.browser.cookie(GATEWAY, "gw-session").is_some());
    assert!(
        fixture.browser.jar[GATEWAY]
            .iter()
            .all(|(name, _)| !name.starts_with("gw-flow-")),
        "the flow cookie is cleared"
    );

    fixture.browser.set_cookie(GATEWAY, "theme", "dark");
    let (outcome, upstream) = fixture.page("/app?x=1").await;
    let OidcOutcome::Authenticated {
        identity,
        set_cookies,
    } = outcome
    else {
        bail!("expected a session, got {outcome:?}");
    };
    assert!(set_cookies.is_empty());
    assert_eq!(identity.provider.as_ref(), "oidc");
    assert_eq!(identity.claim("sub").and_then(|v| v.as_str()), Some("ana"));
    assert_eq!(
        identity.claim("iss").and_then(|v| v.as_str()),
        Some(provider.issuer().as_str())
    );
    let bearer = upstream
        .headers
        .get(AUTHORIZATION)
        .context("Authorization")?
        .to_str()?;
    assert!(
        bearer.starts_with("Bearer ") && bearer.len() > 20,
        "{bearer}"
    );
    assert_eq!(
        upstream
            .headers
            .get(COOKIE)
            .map(HeaderValue::to_str)
            .transpose()?,
        Some("theme=dark")
    );

    // Replaying the callback (browser reload) finds no flow any more.
    let replay = denial(fixture.page(&target).await.0)?;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);

    let metrics = fixture.metrics.encode();
    for result in [
        "allowed",
        "oidc-login",
        "oidc-callback",
        "oidc-invalid-callback",
    ] {
        assert!(
            metrics
                .lines()
                .any(|line| line.starts_with("portcullis_auth_decisions_total")
                    && line.contains("method=\"oidc\"")
                    && line.contains(&format!("result=\"{result}\""))),
            "no {result} in {metrics}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn an_expired_session_is_refreshed_with_its_refresh_token() -> anyhow::Result<()> {
    let provider = start_provider(Duration::from_secs(2)).await?;
    let mut fixture = Fixture::new(provider.issuer());
    let callback = fixture.log_in("bo").await?;
    assert_eq!(callback.reason, "oidc-callback");
    let (first, upstream) = fixture.page("/app").await;
    assert!(
        matches!(first, OidcOutcome::Authenticated { .. }),
        "{first:?}"
    );
    let first_token = upstream.headers.get(AUTHORIZATION).cloned();

    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (renewed, upstream) = fixture.page("/app").await;
    let OidcOutcome::Authenticated {
        identity,
        set_cookies,
    } = renewed
    else {
        bail!("expected a refreshed session, got {renewed:?}");
    };
    assert!(
        !set_cookies.is_empty(),
        "a refreshed session sets new cookies"
    );
    assert_eq!(identity.claim("sub").and_then(|v| v.as_str()), Some("bo"));
    let second_token = upstream.headers.get(AUTHORIZATION).cloned();
    assert!(second_token.is_some());
    assert_ne!(
        first_token, second_token,
        "a new access token goes upstream"
    );

    // The new cookie is a session on its own, without another refresh.
    let (again, _) = fixture.page("/app").await;
    let OidcOutcome::Authenticated { set_cookies, .. } = again else {
        bail!("expected a session, got {again:?}");
    };
    assert!(set_cookies.is_empty());
    Ok(())
}

#[tokio::test]
async fn an_expired_session_without_refresh_starts_a_new_login() -> anyhow::Result<()> {
    let provider = start_provider(Duration::from_secs(1)).await?;
    let mut fixture = Fixture::new(provider.issuer());
    fixture.settings.refresh_token = false;
    fixture.log_in("cy").await?;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let login = denial(fixture.page("/app").await.0)?;
    assert_eq!(login.reason, "oidc-login");
    Ok(())
}

#[tokio::test]
async fn logout_clears_the_session_and_goes_to_the_providers_end_session() -> anyhow::Result<()> {
    let provider = start_provider(Duration::from_secs(3600)).await?;
    let mut fixture = Fixture::new(provider.issuer());
    fixture.log_in("di").await?;

    let logout = denial(fixture.page("/logout").await.0)?;
    assert_eq!(logout.status, StatusCode::FOUND);
    assert_eq!(logout.reason, "oidc-logout");
    let to_provider = location(&logout)?;
    assert!(
        to_provider.starts_with(&format!("{}/session/end?", provider.issuer())),
        "{to_provider}"
    );
    assert!(query_param(&to_provider, "id_token_hint").is_some_and(|t| t.split('.').count() == 3));
    assert_eq!(
        query_param(&to_provider, "post_logout_redirect_uri").as_deref(),
        Some("http://gateway.test/bye")
    );
    assert_eq!(
        query_param(&to_provider, "client_id").as_deref(),
        Some(CLIENT_ID)
    );
    assert!(
        fixture.browser.cookie(GATEWAY, "gw-session").is_none(),
        "cleared"
    );

    // The provider accepts the request: it shows its logout confirmation, not an error.
    let (status, _, body) = fixture
        .browser
        .send(Method::GET, &to_provider.parse()?, None)
        .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("logout"), "{body}");

    let after = denial(fixture.page("/app").await.0)?;
    assert_eq!(after.reason, "oidc-login");
    Ok(())
}

#[tokio::test]
async fn a_tampered_session_cookie_is_no_session() -> anyhow::Result<()> {
    let provider = start_provider(Duration::from_secs(3600)).await?;
    let mut fixture = Fixture::new(provider.issuer());
    fixture.log_in("ed").await?;
    let sealed = fixture
        .browser
        .cookie(GATEWAY, "gw-session")
        .context("session")?
        .to_owned();
    let mut bytes = sealed.into_bytes();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes)?;
    fixture.browser.set_cookie(GATEWAY, "gw-session", &tampered);
    let login = denial(fixture.page("/app").await.0)?;
    assert_eq!(login.status, StatusCode::FOUND);
    assert_eq!(login.reason, "oidc-login");
    Ok(())
}

#[tokio::test]
async fn a_callback_with_another_state_is_refused() -> anyhow::Result<()> {
    let provider = start_provider(Duration::from_secs(3600)).await?;
    let mut fixture = Fixture::new(provider.issuer());
    let redirect = denial(fixture.page("/app").await.0)?;
    let state = query_param(&location(&redirect)?, "state").context("state")?;

    // Same cookie name (the first 8 characters), another state: the full comparison fails.
    let forged = format!("{}{}", &state[..8], "x".repeat(state.len() - 8));
    let answer = denial(
        fixture
            .page(&format!("/oauth2/callback?code=abc&state={forged}"))
            .await
            .0,
    )?;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.reason, "oidc-invalid-callback");

    for target in [
        "/oauth2/callback?code=abc&state=unknown-state".to_owned(),
        "/oauth2/callback?code=abc".to_owned(),
        format!("/oauth2/callback?state={state}"),
        format!("/oauth2/callback?code=abc&state={state}&iss=http%3A%2F%2Fevil.test"),
    ] {
        let answer = denial(fixture.page(&target).await.0)?;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{target}");
        assert_eq!(answer.reason, "oidc-invalid-callback");
    }

    let refused = denial(
        fixture
            .page(&format!(
                "/oauth2/callback?error=access_denied&state={state}"
            ))
            .await
            .0,
    )?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&refused.body).contains("access_denied"));
    Ok(())
}

#[tokio::test]
async fn an_api_request_without_session_gets_401() -> anyhow::Result<()> {
    let provider = start_provider(Duration::from_secs(3600)).await?;
    let mut fixture = Fixture::new(provider.issuer());
    for (method, accept) in [
        (Method::GET, Some("application/json")),
        (Method::POST, Some("text/html")),
        (Method::GET, Some("*/*")),
    ] {
        let parts = fixture
            .browser
            .gateway_request(method.clone(), "/api/items", accept);
        let answer = denial(fixture.gateway(parts).await.0)?;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{method} {accept:?}"
        );
        assert_eq!(answer.reason, "missing-credentials");
        assert_eq!(
            answer
                .headers
                .get(WWW_AUTHENTICATE)
                .map(HeaderValue::as_bytes),
            Some(&b"Bearer"[..])
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_is_502() -> anyhow::Result<()> {
    // Nothing listens on the issuer's port: discovery fails.
    let closed = testkit::reserve_closed_port();
    let mut fixture = Fixture::new(format!("http://{}", closed.addr()));
    let answer = denial(fixture.page("/app").await.0)?;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert_eq!(answer.reason, "oidc-provider-error");

    // The provider goes away between the login and the callback: the code exchange fails.
    let mut provider = start_provider(Duration::from_secs(3600)).await?;
    let mut fixture = Fixture::new(provider.issuer());
    let redirect = denial(fixture.page("/app").await.0)?;
    let back = fixture
        .browser
        .log_in_at_provider(&location(&redirect)?, "fa")
        .await?;
    provider.kill()?;
    let target = back
        .path_and_query()
        .context("callback")?
        .as_str()
        .to_owned();
    let answer = denial(fixture.page(&target).await.0)?;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert_eq!(answer.reason, "oidc-provider-error");
    Ok(())
}

#[tokio::test]
async fn concurrent_requests_of_an_expired_session_share_one_refresh() -> anyhow::Result<()> {
    // The provider rotates refresh tokens and revokes the grant when a spent one is reused: a
    // refresh per request would fail all but one of them.
    let provider = start_provider(Duration::from_secs(1)).await?;
    let mut fixture = Fixture::new(provider.issuer());
    fixture.log_in("gu").await?;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let requests: Vec<Parts> = (0..4)
        .map(|_| {
            fixture
                .browser
                .gateway_request(Method::GET, "/asset", Some("text/html"))
        })
        .collect();
    let runtime = &fixture.runtime;
    let settings = &fixture.settings;
    let decide = |mut parts: Parts| async move {
        let outcome = runtime
            .authenticate(settings, "SecurityPolicy app/oidc", "http", &mut parts)
            .await;
        (outcome, parts.headers.get(AUTHORIZATION).cloned())
    };
    let mut requests = requests.into_iter();
    let (Some(a), Some(b), Some(c), Some(d)) = (
        requests.next(),
        requests.next(),
        requests.next(),
        requests.next(),
    ) else {
        bail!("four requests");
    };
    let answers = tokio::join!(decide(a), decide(b), decide(c), decide(d));
    let answers = [answers.0, answers.1, answers.2, answers.3];
    let mut bearers = Vec::new();
    for (outcome, bearer) in answers {
        let OidcOutcome::Authenticated { set_cookies, .. } = outcome else {
            bail!("expected a refreshed session, got {outcome:?}");
        };
        assert!(!set_cookies.is_empty());
        bearers.push(bearer.context("Authorization")?);
    }
    assert!(
        bearers.windows(2).all(|pair| pair[0] == pair[1]),
        "{bearers:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_provider_that_only_takes_client_secret_post_gets_it() -> anyhow::Result<()> {
    let mut config = provider_config(Duration::from_secs(3600));
    config.token_endpoint_auth_method = Some("client_secret_post".to_owned());
    let provider = OidcProvider::start(&config).await?;
    let mut fixture = Fixture::new(provider.issuer());
    let callback = fixture.log_in("ha").await?;
    assert_eq!(callback.status, StatusCode::FOUND, "{}", callback.reason);
    assert_eq!(callback.reason, "oidc-callback");
    let (outcome, _) = fixture.page("/app").await;
    assert!(
        matches!(outcome, OidcOutcome::Authenticated { .. }),
        "{outcome:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_discovery_document_of_another_issuer_is_refused() -> anyhow::Result<()> {
    let provider = start_provider(Duration::from_secs(3600)).await?;
    // The document is found (localhost is this loopback) but names http://127.0.0.1:<port>.
    let mut fixture = Fixture::new(format!("http://localhost:{}", provider.port()));
    let answer = denial(fixture.page("/app").await.0)?;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert_eq!(answer.reason, "oidc-provider-error");
    Ok(())
}

#[tokio::test]
async fn an_issuer_configured_with_a_trailing_slash_still_logs_in() -> anyhow::Result<()> {
    let provider = start_provider(Duration::from_secs(3600)).await?;
    let mut fixture = Fixture::new(format!("{}/", provider.issuer()));
    let callback = fixture.log_in("io").await?;
    assert_eq!(callback.reason, "oidc-callback");
    let (outcome, _) = fixture.page("/app").await;
    assert!(
        matches!(outcome, OidcOutcome::Authenticated { .. }),
        "{outcome:?}"
    );
    Ok(())
}

#[tokio::test]
async fn discovery_is_cached_until_retain_forgets_its_issuer() -> anyhow::Result<()> {
    let mut provider = start_provider(Duration::from_secs(3600)).await?;
    let mut fixture = Fixture::new(provider.issuer());
    assert_eq!(denial(fixture.page("/app").await.0)?.reason, "oidc-login");
    provider.kill()?;

    // The authorization endpoint comes from the cached document: no provider needed.
    let live = HashSet::from([fixture.settings.issuer.clone()]);
    fixture.runtime.retain(&live);
    assert_eq!(denial(fixture.page("/app").await.0)?.reason, "oidc-login");

    fixture.runtime.retain(&HashSet::new());
    let answer = denial(fixture.page("/app").await.0)?;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert_eq!(answer.reason, "oidc-provider-error");
    Ok(())
}

#[tokio::test]
async fn logins_started_in_two_tabs_both_complete() -> anyhow::Result<()> {
    let provider = start_provider(Duration::from_secs(3600)).await?;
    let mut fixture = Fixture::new(provider.issuer());
    let first = location(&denial(fixture.page("/one").await.0)?)?;
    let second = location(&denial(fixture.page("/two").await.0)?)?;
    let flows = fixture.browser.jar[GATEWAY]
        .iter()
        .filter(|(name, _)| name.starts_with("gw-flow-"))
        .count();
    assert_eq!(flows, 2, "one flow cookie per tab");

    // The second tab finishes first; the first tab's flow is untouched by it.
    for (start, page) in [(second, "/two"), (first, "/one")] {
        let back = fixture.browser.log_in_at_provider(&start, "jo").await?;
        let target = back
            .path_and_query()
            .context("callback")?
            .as_str()
            .to_owned();
        let callback = denial(fixture.page(&target).await.0)?;
        assert_eq!(callback.reason, "oidc-callback", "{page}");
        assert_eq!(location(&callback)?, page);
    }
    Ok(())
}
