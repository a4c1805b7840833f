//! OpenID Connect for browsers at request time: the authorization-code flow with PKCE.
//!
//! Owns the per-request decision of a policy's `oidc` settings ([`snapshot::security::Oidc`])
//! and the state that outlives snapshots: the discovery cache (per issuer) and the HTTP client
//! to providers, both in [`OidcRuntime`] (one per process). It does not own the other
//! authentication methods (`authn`) nor turn a [`Denial`] into a response (the proxy does).
//!
//! A request is, in this order (OIDC Core 1.0 §3.1, RFC 7636, RP-Initiated Logout 1.0):
//! 1. to `redirect_path`: the provider's callback. `state` must match the login's flow cookie
//!    (constant time), the code is exchanged at the token endpoint with the PKCE verifier, the
//!    ID token is validated (`id_token.rs`), and the browser is sent back to the page it first
//!    asked for with a session cookie (`oidc-callback`). A bad callback is 400
//!    (`oidc-invalid-callback`); a provider's `error` is 403 for `access_denied`, else 401;
//! 2. to `logout_path`: the session cookies are cleared and the browser goes to the provider's
//!    `end_session_endpoint` (with `id_token_hint`, `post_logout_redirect_uri`, `client_id`), or
//!    without one to `post_logout_redirect_uri` or `/` (`oidc-logout`). A plain GET is enough
//!    (as with most gateways): a forced logout costs a user a login, nothing more;
//! 3. anything else: a valid session cookie lets it through ([`OidcOutcome::Authenticated`]),
//!    with the cookies removed and the access token as `Authorization: Bearer` when
//!    `forward_access_token`. An expired session is renewed with its refresh token when
//!    allowed (the new cookies ride on the upstream's response); otherwise a navigation is
//!    sent to the provider (`oidc-login`) and anything else gets 401 (`missing-credentials`).
//!
//! The provider unreachable or answering nonsense is 502 (`oidc-provider-error`): never a
//! request let through. Sessions live entirely in the encrypted cookie (`session.rs`): no
//! server-side store, so replicas need only share the cookie key. Each decision is counted by
//! `auth_decision(policy, "oidc", "allowed" | reason)`.
//!
//! Wiring (the proxy, `proxy/src/stack.rs`): one `Arc<OidcRuntime>` per process; for a request
//! whose policy has `oidc`, call [`OidcRuntime::authenticate`] first among the authentication
//! methods, with the listener's scheme. `Respond(denial)` is the answer (its 302s are not
//! errors). `Authenticated` puts `identity` in `Identity::jwt`, sends the changed request on, and
//! appends every `set_cookies` value to the response as `Set-Cookie`. After a snapshot swap,
//! call [`OidcRuntime::retain`] with the issuers of the live policies ([`collect_issuers`]).

mod client;
mod discovery;
mod flow;
mod id_token;
mod renewals;
mod request;
mod session;
mod token;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use http::header::AUTHORIZATION;
use http::request::Parts;
use snapshot::security::{Oidc, SecurityPolicy};

use crate::{Denial, JwtIdentity};
use client::ProviderClient;
use discovery::Discovery;
use renewals::Renewals;
use session::CookieJar;

/// The provider name of identities OIDC establishes ([`JwtIdentity::provider`]).
pub const PROVIDER_NAME: &str = "oidc";

/// OIDC state shared by every policy and snapshot: one per process, behind an `Arc`.
pub struct OidcRuntime {
    metrics: Arc<telemetry::Metrics>,
    client: ProviderClient,
    discovery: Discovery,
    renewals: Renewals,
}

impl std::fmt::Debug for OidcRuntime {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The caches hold tokens' keys and provider documents: nothing worth printing.
        formatter
            .debug_struct("OidcRuntime")
            .finish_non_exhaustive()
    }
}

/// What OIDC decided for one request.
#[derive(Debug)]
pub enum OidcOutcome {
    /// A valid session: the request goes on (its session cookies removed, `Authorization` set
    /// when `forward_access_token`). `identity` holds the ID token's claims (provider
    /// [`PROVIDER_NAME`]). The proxy adds `set_cookies` (a renewed session; empty when nothing
    /// changed) to the upstream's response as `Set-Cookie` headers.
    Authenticated {
        /// Who the session belongs to.
        identity: JwtIdentity,
        /// `Set-Cookie` values for the response.
        set_cookies: Vec<HeaderValue>,
    },
    /// Answer now with this response: the redirect to the provider (`oidc-login`), back to the
    /// page (`oidc-callback`) or out (`oidc-logout`), all 302 with their `Set-Cookie` headers;
    /// or a refusal: 401 `missing-credentials` (not a navigation), 400/401/403
    /// `oidc-invalid-callback`, 400 `oidc-invalid-request` (no usable host to build the
    /// redirect URI on), 502 `oidc-provider-error`.
    Respond(Denial),
}

impl OidcRuntime {
    /// A runtime with an empty discovery cache; the HTTP client is built on first use.
    pub fn new(metrics: Arc<telemetry::Metrics>) -> OidcRuntime {
        OidcRuntime {
            metrics,
            client: ProviderClient::default(),
            discovery: Discovery::default(),
            renewals: Renewals::default(),
        }
    }

    /// Decides `parts` under `settings`: see the module doc for the order. `label` is the
    /// policy's label (metrics, logs); `scheme` (`http`/`https`) is the listener's: it sets the
    /// cookies' `Secure` flag and makes a path `redirect_uri` absolute on the request's host.
    /// On [`OidcOutcome::Authenticated`], `parts` has been changed for the upstream. Never
    /// panics on request or provider data; each provider call is bounded by 5 s.
    pub async fn authenticate(
        &self,
        settings: &Oidc,
        label: &str,
        scheme: &str,
        parts: &mut Parts,
    ) -> OidcOutcome {
        let outcome = self.decide(settings, label, scheme, parts).await;
        let result = match &outcome {
            OidcOutcome::Authenticated { .. } => "allowed",
            OidcOutcome::Respond(denial) => denial.reason,
        };
        self.metrics.auth_decision(label, "oidc", result);
        outcome
    }

    /// Forgets the discovery documents of issuers no live policy names (call after a reload).
    pub fn retain(&self, live_issuers: &HashSet<String>) {
        self.discovery.retain(live_issuers);
    }

    async fn decide(
        &self,
        settings: &Oidc,
        label: &str,
        scheme: &str,
        parts: &mut Parts,
    ) -> OidcOutcome {
        let jar = CookieJar::new(
            &settings.cookie_prefix,
            settings.cookie_domain.as_deref(),
            scheme.eq_ignore_ascii_case("https"),
            &settings.cookie_key,
        );
        let context = flow::Context {
            settings,
            label,
            scheme,
            jar,
        };
        let path = parts.uri.path();
        if path == settings.redirect_path {
            return OidcOutcome::Respond(self.callback(&context, parts).await);
        }
        if path == settings.logout_path {
            return OidcOutcome::Respond(self.logout(&context, parts).await);
        }
        let (session, set_cookies) = match context.jar.open_session(&parts.headers) {
            Some(session) if session.expires_at > unix_now() => (session, Vec::new()),
            Some(expired) if settings.refresh_token && expired.refresh_token.is_some() => {
                match self.refresh(&context, expired, &parts.headers).await {
                    Some(renewed) => renewed,
                    None => return OidcOutcome::Respond(self.login(&context, parts).await),
                }
            }
            _ => return OidcOutcome::Respond(self.login(&context, parts).await),
        };
        context.jar.strip(&mut parts.headers);
        if settings.forward_access_token {
            match HeaderValue::from_str(&format!("Bearer {}", session.access_token)) {
                Ok(value) => {
                    parts.headers.insert(AUTHORIZATION, value);
                }
                Err(_) => {
                    tracing::warn!(policy = %label, "OIDC access token is not a header value")
                }
            }
        }
        OidcOutcome::Authenticated {
            identity: JwtIdentity {
                provider: PROVIDER_NAME.into(),
                claims: session.claims,
            },
            set_cookies,
        }
    }
}

/// Adds the issuer `policy` names (if it has `oidc`) to `issuers`: the proxy gathers them over
/// every policy of a new snapshot and hands the set to [`OidcRuntime::retain`].
pub fn collect_issuers(policy: &SecurityPolicy, issuers: &mut HashSet<String>) {
    if let Some(oidc) = &policy.oidc {
        issuers.insert(oidc.issuer.clone());
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests;
