//! Phase 3's access checks: the request's SecurityPolicy, then its RateLimitPolicy (the rule's,
//! else the listener's: `snapshot::ListenerRoutes::security_of`). In order, each step only
//! when the policy has it:
//!
//! 1. a SecurityPolicy that did not validate answers 500 (`invalid-security-policy`): a broken
//!    policy fails closed;
//! 2. authentication (`policy::oidc`, then `policy::authn`: JWT, API key, basic), which may
//!    add headers (claims, client id) and finds the [`Identity`];
//! 3. external authorization (`policy::ext_auth`): the check request goes to the service's
//!    backend through the same pools, balancer and health state as any request, within the
//!    policy's timeout; an error or timeout applies `failOpen`;
//! 4. authorization rules (`policy::authorization`), then the rule's HTTPRoute `ExternalAuth`
//!    filter (experimental channel), a check like step 3;
//! 5. rate limits (`policy::rate_limit`): local, then one Redis round trip for the global ones.
//!
//! A refusal is a [`Denial`], answered as is (a gRPC client gets the gRPC status of its HTTP
//! status, `RESOURCE_EXHAUSTED` for 429). What an admitted request carries back (the
//! `RateLimit` headers, a refreshed OIDC session's cookies) is its [`Admission`].
//!
//! The runtime state of these phases (JWKS caches, counters, the Redis connection, OIDC
//! discovery) lives in [`PolicyRuntime`], one per process, outside snapshots; a published
//! snapshot drops the state no policy of it names ([`PolicyRuntime::retain`]).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::uri::{PathAndQuery, Scheme as UriScheme};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, Version, header};
use http_body_util::BodyExt;
use policy::authn::{self, Authenticator};
use policy::authorization;
use policy::ext_auth::{self, Verdict};
use policy::oidc::{self, OidcOutcome, OidcRuntime};
use policy::rate_limit::{Quota, RateLimitError, RateLimiter};
use policy::{Denial, Identity};
use snapshot::backend::AppProtocol;
use snapshot::security::{ExtAuth, SecurityPolicy};
use snapshot::{ListenerRoutes, RouteRule, Snapshot};
use telemetry::Metrics;
use upstream::{PickContext, RequestBody};

use crate::body::{RequestStream, ResponseBody};
use crate::grpc::{self, ClientProtocol, GrpcCode};
use crate::plane::{DataPlane, Live};

/// The runtimes of the request-time policies, one per process.
#[derive(Debug)]
pub struct PolicyRuntime {
    oidc: OidcRuntime,
    authenticator: Authenticator,
    rate_limiter: RateLimiter,
}

impl PolicyRuntime {
    /// The runtimes, with global rate limits counted in the Redis at `redis` (`--redis`). A
    /// URL that is not a Redis URL is an error; a Redis that is down is not (each policy's
    /// `failureMode` applies until it answers).
    pub fn new(
        redis: Option<&str>,
        metrics: Arc<Metrics>,
    ) -> Result<PolicyRuntime, RateLimitError> {
        Ok(PolicyRuntime {
            oidc: OidcRuntime::new(Arc::clone(&metrics)),
            authenticator: Authenticator::new(Arc::clone(&metrics)),
            rate_limiter: RateLimiter::new(redis, metrics)?,
        })
    }

    /// The runtimes without Redis: global limits apply their failure mode (compile refuses
    /// them without `--redis`).
    pub(crate) fn without_redis(metrics: Arc<Metrics>) -> PolicyRuntime {
        match PolicyRuntime::new(None, metrics) {
            Ok(runtime) => runtime,
            // Without a URL there is nothing to parse: `new` cannot fail.
            Err(error) => unreachable!("policy runtimes without Redis failed: {error}"),
        }
    }

    /// Forgets the state of policies `snapshot` no longer has (counters of rules that are
    /// gone). Called when a snapshot is published.
    pub(crate) fn retain(&self, snapshot: &Snapshot) {
        let mut rule_ids: HashSet<Arc<str>> = HashSet::new();
        let mut jwks_uris = HashSet::new();
        let mut issuers = HashSet::new();
        let listeners = snapshot
            .sockets
            .values()
            .flat_map(|socket| socket.listeners.iter().map(|(_, listener)| listener));
        for listener in listeners {
            let limits = listener
                .table
                .targets()
                .map(|rule| rule.rate_limit.as_deref());
            for policy in limits.chain([listener.rate_limit.as_deref()]).flatten() {
                let global = policy.global.iter().flat_map(|g| &g.rules);
                rule_ids.extend(policy.local.iter().chain(global).map(|r| Arc::clone(&r.id)));
            }
            let security = listener
                .table
                .targets()
                .map(|rule| rule.security.as_deref());
            for policy in security.chain([listener.security.as_deref()]).flatten() {
                authn::collect_jwks_uris(policy, &mut jwks_uris);
                oidc::collect_issuers(policy, &mut issuers);
            }
        }
        self.rate_limiter.retain(&rule_ids);
        self.authenticator.retain(&jwks_uris);
        self.oidc.retain(&issuers);
    }
}

/// What an admitted request carries back to its client.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    /// The most constraining rate limit that applied (`RateLimit`, `RateLimit-Policy`).
    quota: Option<Quota>,
    /// `Set-Cookie` values of a renewed OIDC session.
    set_cookies: Vec<HeaderValue>,
}

impl Admission {
    /// Adds what the access phases tell the client to a response.
    pub(crate) fn decorate(&self, headers: &mut HeaderMap) {
        if let Some(quota) = &self.quota {
            quota.headers(headers);
        }
        for cookie in &self.set_cookies {
            headers.append(header::SET_COOKIE, cookie.clone());
        }
    }
}

/// Where the request stands: what the access phases read besides the request.
pub(crate) struct Requester<'a> {
    pub(crate) plane: &'a DataPlane,
    pub(crate) live: &'a Live,
    /// The connection's peer (external authorization's `X-Forwarded-For`).
    pub(crate) peer: SocketAddr,
    /// The client (after trusted proxy hops).
    pub(crate) client_ip: IpAddr,
    /// The listener's scheme.
    pub(crate) scheme: &'static str,
    /// How refusals are answered.
    pub(crate) protocol: ClientProtocol,
}

/// Runs the access phases of the rule's (else the listener's) SecurityPolicy and
/// RateLimitPolicy. `Err` is the answer.
pub(crate) async fn admit(
    requester: Requester<'_>,
    listener: &ListenerRoutes,
    rule: &RouteRule,
    parts: &mut Parts,
    body: &mut RequestStream,
) -> Result<Admission, Response<ResponseBody>> {
    let protocol = requester.protocol;
    let (identity, set_cookies) = match listener.security_of(rule) {
        Some(policy) => secure(&requester, policy, parts, body)
            .await
            .map_err(|denial| respond(denial, protocol))?,
        None => (Identity::default(), Vec::new()),
    };
    // The rule's `ExternalAuth` filter (experimental channel), after its SecurityPolicy.
    if let Some(ext) = &rule.filters.external_auth {
        external(&requester, &rule.name, ext, parts, body)
            .await
            .map_err(|denial| respond(denial, protocol))?;
    }
    let mut admission = Admission {
        quota: None,
        set_cookies,
    };
    if let Some(limits) = listener.rate_limit_of(rule) {
        let runtime = &requester.plane.policies;
        admission.quota = runtime
            .rate_limiter
            .check(limits, parts, requester.client_ip, &identity)
            .await
            .map_err(|denial| respond(denial, protocol))?;
    }
    Ok(admission)
}

/// Steps 1–4 (see the module doc).
async fn secure(
    requester: &Requester<'_>,
    policy: &SecurityPolicy,
    parts: &mut Parts,
    body: &mut RequestStream,
) -> Result<(Identity, Vec<HeaderValue>), Denial> {
    let metrics = &requester.plane.metrics;
    if policy.invalid {
        metrics.auth_decision(&policy.label, "policy", "invalid_policy");
        return Err(Denial::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid-security-policy",
        ));
    }
    let runtime = &requester.plane.policies;
    let mut session = None;
    let mut set_cookies = Vec::new();
    if let Some(oidc) = &policy.oidc {
        match runtime
            .oidc
            .authenticate(oidc, &policy.label, requester.scheme, parts)
            .await
        {
            OidcOutcome::Authenticated {
                identity,
                set_cookies: cookies,
            } => {
                session = Some(identity);
                set_cookies = cookies;
            }
            // The login redirect, the callback's and logout's redirects, or a refusal.
            OidcOutcome::Respond(denial) => return Err(denial),
        }
    }
    let mut identity = if policy.jwt.is_some() || policy.api_key.is_some() || policy.basic.is_some()
    {
        runtime.authenticator.authenticate(policy, parts).await?
    } else {
        Identity::default()
    };
    // A bearer token JWT authentication accepted is the identity; else the OIDC session's.
    if identity.jwt.is_none() {
        identity.jwt = session;
    }
    if let Some(ext) = &policy.ext_auth {
        external(requester, &policy.label, ext, parts, body).await?;
    }
    authorization::authorize(policy, &identity, parts, requester.client_ip, metrics)?;
    Ok((identity, set_cookies))
}

/// Step 3: asks the authorization service; its allowing answer's header changes are applied
/// to the request.
async fn external(
    requester: &Requester<'_>,
    label: &str,
    settings: &ExtAuth,
    parts: &mut Parts,
    body: &mut RequestStream,
) -> Result<(), Denial> {
    let metrics = &requester.plane.metrics;
    let read = match settings.body {
        Some(forwarding) => {
            let (bytes, longer) = body.read_ahead(forwarding.max_bytes).await;
            if longer && forwarding.refuse_larger {
                metrics.auth_decision(label, "ext_auth", "body_too_large");
                return Err(Denial::new(StatusCode::PAYLOAD_TOO_LARGE, "body-too-large"));
            }
            Some((bytes, longer))
        }
        None => None,
    };
    let client = SocketAddr::new(requester.client_ip, requester.peer.port());
    let check = ext_auth::check_request(
        settings,
        parts,
        client,
        requester.scheme,
        read.as_ref().map(|(bytes, longer)| (bytes, *longer)),
    );
    let answer = tokio::time::timeout(settings.timeout, ask(requester, settings, check)).await;
    let verdict = match answer {
        Ok(Ok((head, body, trailers))) => ext_auth::judge(settings, head, body, trailers.as_ref()),
        Ok(Err(why)) => Verdict::Error(why),
        Err(_) => Verdict::Error("timeout"),
    };
    let verdict = match verdict {
        Verdict::Error(why) => {
            tracing::debug!(policy = label, why, "external authorization failed");
            metrics.auth_decision(label, "ext_auth", "unavailable");
            ext_auth::failure_verdict(settings)
        }
        verdict => verdict,
    };
    match verdict {
        Verdict::Allow(changes) => {
            changes.apply(&mut parts.headers);
            metrics.auth_decision(label, "ext_auth", "allowed");
            Ok(())
        }
        Verdict::Deny(denial) => {
            metrics.auth_decision(label, "ext_auth", denial.reason);
            Err(denial)
        }
        // `failure_verdict` allows or denies.
        Verdict::Error(why) => Err(Denial::new(StatusCode::FORBIDDEN, why)),
    }
}

/// The service's answer to a check: its head, its body (at most
/// [`ext_auth::MAX_ANSWER_BYTES`]) and its trailers.
type Answer = (http::response::Parts, Bytes, Option<HeaderMap>);

/// Sends one check request to an endpoint of the service's backend.
async fn ask(
    requester: &Requester<'_>,
    settings: &ExtAuth,
    check: Request<Bytes>,
) -> Result<Answer, &'static str> {
    let Some(backend) = requester.live.backends.get(settings.backend) else {
        return Err("no-backend");
    };
    let policy = backend.policy();
    let context = PickContext {
        headers: check.headers(),
        client: requester.client_ip,
        now: Instant::now(),
    };
    let Some(endpoint) = backend.pick_under(&policy, &context) else {
        return Err("no-endpoint");
    };
    let (mut head, bytes) = check.into_parts();
    if backend.protocol() == AppProtocol::H2c {
        // HTTP/2 wants the target absolute: `:authority` is the check's Host (else the
        // endpoint), `:scheme` the connection's.
        let authority = head
            .headers
            .remove(header::HOST)
            .and_then(|host| http::uri::Authority::try_from(host.as_bytes()).ok())
            .unwrap_or_else(|| endpoint.authority().clone());
        let path = head
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        head.uri = Uri::builder()
            .scheme(UriScheme::HTTP)
            .authority(authority)
            .path_and_query(path)
            .build()
            .map_err(|_| "invalid-check")?;
        head.version = Version::HTTP_2;
    } else {
        head.version = Version::HTTP_11;
    }
    let request = Request::from_parts(head, RequestBody::new(http_body_util::Full::new(bytes)));
    let _in_flight = endpoint.start_request();
    let response = requester
        .plane
        .pools
        .send(backend, &policy, None, endpoint.addr(), request)
        .await
        .map_err(|error| {
            endpoint.record_failure();
            tracing::debug!(%error, "external authorization request failed");
            "unreachable"
        })?;
    let (head, mut body) = response.into_parts();
    let mut data = BytesMut::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| "answer-failed")?;
        match frame.into_data() {
            Ok(chunk) => {
                if data.len() + chunk.len() > ext_auth::MAX_ANSWER_BYTES {
                    return Err("answer-too-large");
                }
                data.extend_from_slice(&chunk);
            }
            Err(frame) => {
                if let Ok(map) = frame.into_trailers() {
                    trailers = Some(map);
                }
            }
        }
    }
    Ok((head, data.freeze(), trailers))
}

/// A denial as the client's response: its status, headers and body (a short text when it
/// has none) and `x-portcullis-error`; for a gRPC client, a Trailers-Only gRPC status.
pub(crate) fn respond(denial: Denial, protocol: ClientProtocol) -> Response<ResponseBody> {
    let Denial {
        status,
        headers,
        body,
        reason,
    } = denial;
    let mut response = match protocol {
        ClientProtocol::Grpc => {
            let code = match status.as_u16() {
                429 => GrpcCode::ResourceExhausted,
                _ => GrpcCode::from_http(status),
            };
            grpc::error_response(code, status.canonical_reason().unwrap_or("refused"), reason)
        }
        ClientProtocol::Http => {
            let body = if body.is_empty() && !status.is_redirection() {
                let text = status
                    .canonical_reason()
                    .unwrap_or("refused")
                    .to_lowercase();
                Bytes::from(format!("{text}\n"))
            } else {
                body
            };
            let mut response = Response::new(ResponseBody::full(body));
            *response.status_mut() = status;
            if !headers.contains_key(header::CONTENT_TYPE) {
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
            }
            response
        }
    };
    let target = response.headers_mut();
    let mut last = None;
    for (name, value) in headers {
        // `HeaderMap`'s iterator names only the first value of each header.
        if let Some(name) = name {
            last = Some(name);
        }
        if let Some(name) = &last {
            target.append(name.clone(), value);
        }
    }
    target.insert("x-portcullis-error", HeaderValue::from_static(reason));
    response
}
