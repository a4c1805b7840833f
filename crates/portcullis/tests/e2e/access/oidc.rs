//! OIDC through the binary, against a real OpenID provider (`oidc-provider` from npm, started
//! by the test) and a scripted browser: the login redirect, the provider's login and consent
//! forms, the callback, a session cookie that lets the next requests through with the access
//! token as a bearer token (and no session cookie upstream), logout at the provider, and 401
//! for API clients without a session.

use std::time::Duration;

use anyhow::{Context, ensure};
use http::header::{COOKIE, LOCATION};
use serde_json::json;
use testkit::oidc::{Browser, OidcProvider, OidcProviderConfig};
use testkit::{EchoConfig, EchoServer, TestResponse};

use super::policy;
use crate::fixture::manifest::{NS, http_route, rule, service_backend, service_ref};
use crate::fixture::running::{HOST, TestGateway};

const CLIENT_ID: &str = "shop-web";
const CLIENT_SECRET: &str = "a-long-enough-client-secret-for-hs256-0123456789";

/// `GET target` from the browser (its cookies for [`HOST`], `Accept: text/html`); the
/// response's cookies go into its jar.
async fn browse(
    gateway: &TestGateway,
    browser: &mut Browser,
    target: &str,
) -> anyhow::Result<TestResponse> {
    let cookies = browser.cookie_header(HOST).unwrap_or_default();
    let mut headers = vec![("accept", "text/html,application/xhtml+xml")];
    if !cookies.is_empty() {
        headers.push((COOKIE.as_str(), cookies.as_str()));
    }
    let response = gateway.get(HOST, target, &headers).await?;
    browser.store(HOST, &response.headers);
    Ok(response)
}

fn location(response: &TestResponse) -> anyhow::Result<String> {
    Ok(response
        .header(LOCATION.as_str())
        .with_context(|| format!("a redirect: {} {:?}", response.status, response.headers))?
        .to_owned())
}

#[tokio::test]
async fn a_browser_logs_in_at_a_real_provider_and_out_again() -> anyhow::Result<()> {
    let provider = OidcProvider::start(&OidcProviderConfig {
        client_id: CLIENT_ID.to_owned(),
        client_secret: CLIENT_SECRET.to_owned(),
        redirect_uris: vec![format!("http://{HOST}/oauth2/callback")],
        post_logout_redirect_uris: vec![format!("http://{HOST}/bye")],
        access_token_ttl: Duration::from_secs(600),
        token_endpoint_auth_method: None,
    })
    .await?;
    let pod = EchoServer::start(EchoConfig::new("app", NS)).await?;
    let mut documents = service_backend(NS, "app", &[pod.addr()]);
    documents.push(http_route(
        "app",
        &[],
        vec![rule(vec![], vec![service_ref("app")])],
    ));
    documents.push(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "oidc-client", "namespace": NS},
        "stringData": {"client-secret": CLIENT_SECRET},
    }));
    documents.push(policy(
        "SecurityPolicy",
        "login",
        Some("app"),
        json!({"oidc": {
            "provider": {"issuer": provider.issuer()},
            "clientID": CLIENT_ID,
            "clientSecret": {"name": "oidc-client"},
            "scopes": ["email"],
            "logoutPath": "/logout",
            "postLogoutRedirectURL": format!("http://{HOST}/bye"),
        }}),
    ));
    let gateway = TestGateway::start(&documents).await?;
    let mut browser = Browser::new(HOST);

    // An API client without a session is refused, not redirected.
    let api = gateway
        .get(HOST, "/orders", &[("accept", "application/json")])
        .await?;
    ensure!(api.status == 401, "API client: {}", api.status);

    let login = browse(&gateway, &mut browser, "/orders?page=2").await?;
    ensure!(login.status == 302, "login redirect: {}", login.status);
    let to_provider = location(&login)?;
    ensure!(
        to_provider.starts_with(&provider.issuer()) && to_provider.contains("code_challenge="),
        "{to_provider}"
    );
    let callback = browser.log_in_at_provider(&to_provider, "ana").await?;
    let target = callback
        .path_and_query()
        .context("callback target")?
        .as_str();
    let back = browse(&gateway, &mut browser, target).await?;
    ensure!(
        back.status == 302,
        "callback: {} {}",
        back.status,
        back.text()
    );
    ensure!(
        location(&back)? == "/orders?page=2",
        "back to the page asked for"
    );

    let page = browse(&gateway, &mut browser, "/orders?page=2").await?;
    ensure!(
        page.status == 200,
        "with a session: {} {}",
        page.status,
        page.text()
    );
    let echo = page.echo()?;
    let bearer = echo
        .header("authorization")
        .context("the access token goes upstream")?;
    ensure!(bearer.starts_with("Bearer "), "{bearer}");
    ensure!(
        echo.header("cookie")
            .is_none_or(|c| !c.contains("portcullis-oidc")),
        "the session cookie stays at the gateway: {:?}",
        echo.headers
    );

    let logout = browse(&gateway, &mut browser, "/logout").await?;
    ensure!(logout.status == 302, "logout: {}", logout.status);
    let end_session = location(&logout)?;
    ensure!(
        end_session.starts_with(&provider.issuer()) && end_session.contains("id_token_hint="),
        "RP-initiated logout at the provider: {end_session}"
    );
    let again = browse(&gateway, &mut browser, "/orders").await?;
    ensure!(
        again.status == 302,
        "after logout the session is gone: {}",
        again.status
    );
    Ok(())
}
