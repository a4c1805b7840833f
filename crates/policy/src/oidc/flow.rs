//! The four steps of a browser's OIDC life: login, callback, refresh and logout.
//!
//! Each step is a method of [`OidcRuntime`] that returns the response to send (or, for refresh,
//! the renewed session). The order in which they are tried, and what a valid session does, is
//! in `mod.rs`; cookie sealing is in `session.rs`; the token endpoint in `token.rs`.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::StatusCode;
use http::header::{CACHE_CONTROL, HeaderMap, HeaderValue, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use http::request::Parts;
use snapshot::security::Oidc;

use super::client::is_error_code;
use super::discovery::Provider;
use super::id_token::{self, Expected, IdTokenError, constant_time_eq};
use super::request::{self, Callback};
use super::session::{CookieJar, FLOW_MAX_AGE, Flow, Session};
use super::token::{self, TokenAnswer, TokenError};
use super::{OidcRuntime, unix_now};
use crate::Denial;

/// What every step needs to know about the request's policy.
pub(super) struct Context<'a> {
    /// The policy's OIDC settings.
    pub(super) settings: &'a Oidc,
    /// The policy's label (logs).
    pub(super) label: &'a str,
    /// `http` or `https`.
    pub(super) scheme: &'a str,
    /// Its cookies.
    pub(super) jar: CookieJar<'a>,
}

impl OidcRuntime {
    /// No session: send a navigation to the provider's authorization endpoint with a new flow
    /// cookie; refuse anything else with 401.
    pub(super) async fn login(&self, context: &Context<'_>, parts: &Parts) -> Denial {
        if !request::is_navigation(parts) {
            let mut denial = Denial::new(StatusCode::UNAUTHORIZED, "missing-credentials");
            denial
                .headers
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return denial;
        }
        let settings = context.settings;
        let authorization_endpoint = match &settings.authorization_endpoint {
            Some(uri) => uri.to_string(),
            None => match self.provider(context).await {
                Ok(provider) => provider.metadata.authorization_endpoint.clone(),
                Err(denial) => return denial,
            },
        };
        let Some(redirect_uri) = request::absolute(&settings.redirect_uri, context.scheme, parts)
        else {
            return Denial::new(StatusCode::BAD_REQUEST, "oidc-invalid-request");
        };
        let (Some(state), Some(nonce), Some(verifier)) = (random(), random(), random()) else {
            return provider_error(context, "the random source failed");
        };
        let query = authorization_query(settings, &redirect_uri, &state, &nonce, &verifier);
        let flow = Flow {
            state,
            nonce,
            verifier,
            original: request::original(parts),
            redirect_uri,
            started_at: unix_now(),
        };
        let Some(cookie) = context.jar.seal_flow(&flow) else {
            return provider_error(context, "the flow cookie could not be sealed");
        };
        let location = with_query(&authorization_endpoint, &query);
        redirect(&location, vec![cookie], "oidc-login")
    }

    /// The provider sent the browser back: check the state, exchange the code, validate the
    /// ID token, set the session and go back to the page first asked for.
    pub(super) async fn callback(&self, context: &Context<'_>, parts: &Parts) -> Denial {
        let callback = Callback::parse(parts);
        let invalid = || Denial::new(StatusCode::BAD_REQUEST, "oidc-invalid-callback");
        let Some(state) = callback.state.as_deref() else {
            return invalid();
        };
        let Some(flow) = context.jar.open_flow(&parts.headers, state) else {
            return invalid();
        };
        let fresh = flow.started_at.saturating_add(FLOW_MAX_AGE) >= unix_now();
        if !constant_time_eq(flow.state.as_bytes(), state.as_bytes()) || !fresh {
            return invalid();
        }
        // RFC 9207: a provider that names itself must be ours (mix-up attacks).
        if callback
            .iss
            .as_deref()
            .is_some_and(|iss| !same_issuer(iss, &context.settings.issuer))
        {
            return invalid();
        }
        let clear_flow: Vec<HeaderValue> = context.jar.clear_flow(state).into_iter().collect();
        if let Some(error) = callback.error.as_deref() {
            return provider_refusal(error, clear_flow);
        }
        let Some(code) = callback.code.as_deref() else {
            return invalid();
        };
        let (answer, claims) = match self.redeem(context, &flow, code).await {
            Ok(redeemed) => redeemed,
            Err(denial) => return denial,
        };
        let session = Session {
            access_token: answer.access_token,
            refresh_token: answer.refresh_token,
            id_token: answer.id_token,
            claims,
            expires_at: expiry(context.settings, answer.expires_in),
        };
        let Some(mut cookies) = seal(context, session, &parts.headers) else {
            return provider_error(context, "the session does not fit in cookies");
        };
        cookies.extend(clear_flow);
        redirect(&flow.original, cookies, "oidc-callback")
    }

    /// Exchanges the code and validates the ID token (refetching the provider's keys once
    /// when the token names a key the cached set lacks).
    async fn redeem(
        &self,
        context: &Context<'_>,
        flow: &Flow,
        code: &str,
    ) -> Result<(TokenAnswer, serde_json::Map<String, serde_json::Value>), Denial> {
        let settings = context.settings;
        let provider = self.provider(context).await?;
        let answer = token::exchange_code(
            &self.client,
            settings,
            &provider,
            code,
            &flow.redirect_uri,
            &flow.verifier,
        )
        .await
        .map_err(|error| self.token_failed(context, &error))?;
        let Some(id_token) = answer.id_token.as_deref() else {
            return Err(provider_error(context, "the token answer has no id_token"));
        };
        let issuer = provider.metadata.issuer.clone();
        let expected = Expected {
            issuer: &issuer,
            client_id: &settings.client_id,
            nonce: Some(&flow.nonce),
            subject: None,
        };
        let claims = self
            .validate(context, provider, id_token, &expected)
            .await?;
        Ok((answer, claims))
    }

    /// Validates `id_token`; on an unknown key, refetches the provider once and tries again.
    async fn validate(
        &self,
        context: &Context<'_>,
        provider: Arc<Provider>,
        id_token: &str,
        expected: &Expected<'_>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, Denial> {
        let first = id_token::validate(id_token, &provider, expected);
        let result = match first {
            Err(IdTokenError::UnknownKey(_)) => {
                self.discovery.invalidate(&context.settings.issuer);
                let provider = self.provider(context).await?;
                id_token::validate(id_token, &provider, expected)
            }
            other => other,
        };
        result.map_err(|error| provider_error(context, &format!("ID token refused: {error}")))
    }

    /// Renews an expired session with its refresh token (once for all the session's
    /// concurrent requests, `renewals.rs`). `None` (logged) when the provider refuses or cannot
    /// be reached: the caller starts a new login.
    pub(super) async fn refresh(
        &self,
        context: &Context<'_>,
        expired: Session,
        request: &HeaderMap,
    ) -> Option<(Session, Vec<HeaderValue>)> {
        let refresh_token = expired.refresh_token.clone()?;
        let renewal = self.renew(context, expired);
        let session = self.renewals.renew(&refresh_token, renewal).await?;
        let cookies = seal(context, session.clone(), request)?;
        Some((session, cookies))
    }

    /// The refresh grant itself, and validation of a new ID token if the answer has one.
    async fn renew(&self, context: &Context<'_>, expired: Session) -> Option<Session> {
        let refresh_token = expired.refresh_token.as_deref()?;
        let provider = self.provider(context).await.ok()?;
        let answer =
            match token::refresh(&self.client, context.settings, &provider, refresh_token).await {
                Ok(answer) => answer,
                Err(error) => {
                    let _ = self.token_failed(context, &error);
                    return None;
                }
            };
        let mut session = expired.clone();
        if let Some(id_token) = answer.id_token.as_deref() {
            let issuer = provider.metadata.issuer.clone();
            let expected = Expected {
                issuer: &issuer,
                client_id: &context.settings.client_id,
                nonce: None,
                subject: expired
                    .claims
                    .get("sub")
                    .and_then(serde_json::Value::as_str),
            };
            session.claims = self
                .validate(context, provider, id_token, &expected)
                .await
                .ok()?;
            session.id_token = answer.id_token;
        }
        session.access_token = answer.access_token;
        // A provider that rotates refresh tokens sends a new one; otherwise the old one stays.
        if answer.refresh_token.is_some() {
            session.refresh_token = answer.refresh_token;
        }
        session.expires_at = expiry(context.settings, answer.expires_in);
        Some(session)
    }

    /// Ends the session: clears its cookies and sends the browser to the provider's
    /// end-session endpoint, or to `post_logout_redirect_uri`, or to `/`.
    pub(super) async fn logout(&self, context: &Context<'_>, parts: &Parts) -> Denial {
        let settings = context.settings;
        let session = context.jar.open_session(&parts.headers);
        let cookies = context.jar.clear_all(&parts.headers);
        let post_logout = settings
            .post_logout_redirect_uri
            .as_deref()
            .and_then(|target| request::absolute(target, context.scheme, parts));
        let end_session = match &settings.end_session_endpoint {
            Some(uri) => Some(uri.to_string()),
            // Logout must work with the provider down: without its document, no end-session.
            None => match self.provider(context).await {
                Ok(provider) => provider.metadata.end_session_endpoint.clone(),
                Err(_) => None,
            },
        };
        let location = match end_session {
            Some(endpoint) => {
                let mut query = form_urlencoded::Serializer::new(String::new());
                if let Some(id_token) = session.as_ref().and_then(|s| s.id_token.as_deref()) {
                    query.append_pair("id_token_hint", id_token);
                }
                if let Some(post_logout) = &post_logout {
                    query.append_pair("post_logout_redirect_uri", post_logout);
                }
                query.append_pair("client_id", &settings.client_id);
                with_query(&endpoint, &query.finish())
            }
            None => post_logout.unwrap_or_else(|| "/".to_owned()),
        };
        redirect(&location, cookies, "oidc-logout")
    }

    /// The discovered provider, or the 502 that says it could not be discovered.
    async fn provider(&self, context: &Context<'_>) -> Result<Arc<Provider>, Denial> {
        self.discovery
            .provider(&self.client, &context.settings.issuer)
            .await
            .map_err(|error| provider_error(context, &error.to_string()))
    }

    /// A failed token call: the discovery entry is dropped when the endpoint could not be
    /// reached (it may have moved), and the 502 is returned.
    fn token_failed(&self, context: &Context<'_>, error: &TokenError) -> Denial {
        if matches!(
            error,
            TokenError::Provider(
                super::client::ProviderError::Transport { .. }
                    | super::client::ProviderError::Timeout { .. }
            )
        ) {
            self.discovery.invalidate(&context.settings.issuer);
        }
        provider_error(context, &format!("token endpoint: {error}"))
    }
}

/// Whether two spellings name the same issuer: the configured issuer has lost any trailing `/`
/// in compile, while providers such as Auth0 keep it in `iss`.
pub(super) fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Seals `session`; without its ID token when it does not fit otherwise (logout then goes
/// without `id_token_hint`).
fn seal(context: &Context<'_>, session: Session, request: &HeaderMap) -> Option<Vec<HeaderValue>> {
    if let Some(cookies) = context.jar.seal_session(&session, request) {
        return Some(cookies);
    }
    let slim = Session {
        id_token: None,
        ..session
    };
    context.jar.seal_session(&slim, request)
}

/// When a session made now ends: after the access token's `expires_in`, else the policy's
/// default lifetime.
fn expiry(settings: &Oidc, expires_in: Option<u64>) -> u64 {
    let lifetime = expires_in.unwrap_or(settings.default_session_lifetime.as_secs());
    unix_now().saturating_add(lifetime)
}

/// 32 random bytes, base64url (43 characters: state, nonce, PKCE verifier per RFC 7636 §4.1).
fn random() -> Option<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// The authorization request (OIDC Core §3.1.2.1) with its PKCE challenge (RFC 7636 §4.2,
/// S256). `openid` is always the first scope.
fn authorization_query(
    settings: &Oidc,
    redirect_uri: &str,
    state: &str,
    nonce: &str,
    verifier: &str,
) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ));
    let mut scopes = vec!["openid"];
    scopes.extend(
        settings
            .scopes
            .iter()
            .map(String::as_str)
            .filter(|scope| *scope != "openid"),
    );
    form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &settings.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &scopes.join(" "))
        .append_pair("state", state)
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish()
}

/// `endpoint` with `query` appended (after `&` when it already has a query).
fn with_query(endpoint: &str, query: &str) -> String {
    let separator = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{separator}{query}")
}

/// A 302 to `location` with `cookies`, never cached.
fn redirect(location: &str, cookies: Vec<HeaderValue>, reason: &'static str) -> Denial {
    let mut denial = Denial::new(StatusCode::FOUND, reason);
    match HeaderValue::from_str(location) {
        Ok(value) => {
            denial.headers.insert(LOCATION, value);
        }
        Err(_) => return Denial::new(StatusCode::BAD_GATEWAY, "oidc-provider-error"),
    }
    denial
        .headers
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in cookies {
        denial.headers.append(SET_COOKIE, cookie);
    }
    denial
}

/// The provider refused the login (`error=` on the callback): 403 for `access_denied`, else
/// 401, with the provider's code in the body when it is a plain word.
fn provider_refusal(error: &str, cookies: Vec<HeaderValue>) -> Denial {
    let status = if error == "access_denied" {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::UNAUTHORIZED
    };
    let mut denial = Denial::new(status, "oidc-invalid-callback");
    let code = if is_error_code(error) {
        error
    } else {
        "invalid"
    };
    denial.body = Bytes::from(format!("login refused by the OpenID provider: {code}\n"));
    for cookie in cookies {
        denial.headers.append(SET_COOKIE, cookie);
    }
    denial
}

/// 502 `oidc-provider-error`, logged with its cause (the client sees no detail).
fn provider_error(context: &Context<'_>, why: &str) -> Denial {
    tracing::warn!(policy = %context.label, issuer = %context.settings.issuer, "OIDC: {why}");
    Denial::new(StatusCode::BAD_GATEWAY, "oidc-provider-error")
}
