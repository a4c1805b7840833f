//! What happens to one request, in order. Read top to bottom:
//!
//! 1. load the live config (once; the request keeps it to the end)
//! 2. host → listener of this socket (listener isolation: most specific hostname wins)
//! 3. route match (Gateway API precedence, `router`)
//! 4. rule filters: CORS answers preflights (`cors.rs`); RequestRedirect answers;
//!    RequestHeaderModifier and URLRewrite change the request; a rule without usable backends
//!    answers directly (500)
//! 5. weighted backendRef choice (invalid refs answer 500), then that backendRef's filters;
//!    RequestMirror copies of the final request leave in spawned tasks (`mirror.rs`)
//! 6. within `timeouts.request` (504), per attempt: circuit-breaker admission (503
//!    `circuit-open` / `overloaded-*`, `upstream::breaker`), balancer pick of an endpoint
//!    (`upstream`), forward within the retry's per-try timeout or `timeouts.backendRequest`
//!    (504): hop-by-hop headers, `X-Forwarded-*`, upstream pool (HTTP/1.1 or h2c); the outcome
//!    goes back to the breaker; retries per the rule's `RetryPolicy` (triggers and idempotency
//!    in `retry.rs`, then attempts, then the budget, then a jittered backoff)
//! 7. response: ResponseHeaderModifier (rule, then backendRef), hop-by-hop headers, CORS
//!    headers (any response of a CORS rule), metrics, access log when the body ends
//!
//! Errors at any step become responses in `error.rs`, nowhere else (a gRPC client, known
//! by its `content-type`, gets a gRPC status: `grpc.rs`). Filters, timeouts,
//! retries, authentication and rate limits slot in between steps 3 and 6 as they arrive.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::{Request, Response, Version, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use rand::Rng;
use router::RequestView;
use snapshot::{BackendTarget, Filters, RETRY_BODY_LIMIT, RouteRule, RuleAction};
use telemetry::LabelValue;
use upstream::{BackendRuntime, ClientCertificate, RequestBody, UpstreamBody, UpstreamError};

use crate::body::{PendingLog, ResponseBody};
use crate::cors;
use crate::error::ProxyError;
use crate::filter;
use crate::forward::{self, RequestHead};
use crate::grpc::ClientProtocol;
use crate::mirror;
use crate::plane::{DataPlane, Live};
use crate::replay::{self, Prepared};
use crate::retry;
use crate::series_cache::SeriesKey;
use crate::session;
use crate::upgrade;

/// Per-connection facts the handler needs.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) local: SocketAddr,
    pub(crate) peer: SocketAddr,
    /// The TLS server name the client asked for, on HTTPS connections.
    pub(crate) sni: Option<Arc<str>>,
}

/// What the request turned into, for metrics and the access log, and the CORS headers every
/// response of its rule carries.
///
/// `rule` and `backend_index` are set together with `route` and `backend`, and key the
/// request's metric series in the generation's cache (`Live::series`).
#[derive(Default)]
struct Outcome {
    route: Option<Arc<str>>,
    /// Address of the matched rule in the live snapshot.
    rule: Option<usize>,
    backend: Option<Arc<str>>,
    /// Index of `backend` in the live config.
    backend_index: Option<usize>,
    endpoint: Option<SocketAddr>,
    cors: Option<cors::CorsGrant>,
}

/// Serves one request. Never fails: every error is a response.
pub(crate) async fn handle(
    plane: Arc<DataPlane>,
    connection: Connection,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let start = Instant::now();
    let live = plane.live();
    let log_head = plane.access_log.is_enabled().then(|| LogHead::of(&request));
    let mut outcome = Outcome::default();
    // Decided before the request moves: errors answer gRPC clients in gRPC.
    let protocol = ClientProtocol::of(request.headers());
    let result = route_and_forward(&plane, &live, &connection, request, &mut outcome).await;
    let (mut response, error) = match result {
        Ok(response) => (response, None),
        Err(error) => {
            let detail = plane
                .access_log
                .is_enabled()
                .then(|| error.detail().to_owned());
            (error.into_response_for(protocol), detail)
        }
    };
    // CORS (GEP-1767): every response of a CORS rule, forwarded or the gateway's own.
    if let Some(grant) = &outcome.cors {
        cors::decorate(response.headers_mut(), grant);
    }
    let status = response.status().as_u16();
    record_request(&plane, &live, &outcome, status, start.elapsed());
    let Some(head) = log_head else {
        return Ok(response);
    };
    let log = Box::new(PendingLog {
        plane: Arc::clone(&plane),
        time: head.time,
        start,
        client: connection.peer,
        method: head.method,
        host: head.host,
        path: head.path,
        protocol: head.protocol,
        status,
        route: outcome.route,
        backend: outcome.backend,
        endpoint: outcome.endpoint,
        bytes_received: head.bytes_received,
        bytes_sent: 0,
        error,
    });
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(parts, body.with_log(Some(log))))
}

/// Counts the request in `portcullis_requests_total` and `portcullis_request_duration_seconds`:
/// through the generation's series cache when it matched a rule (the common case), by labels
/// otherwise (no listener, no route: the labels are empty).
fn record_request(
    plane: &DataPlane,
    live: &Live,
    outcome: &Outcome,
    status: u16,
    duration: Duration,
) {
    let label = |value: &Option<Arc<str>>| {
        value
            .clone()
            .map_or_else(LabelValue::empty, LabelValue::from)
    };
    let series = || {
        plane
            .metrics
            .request_series(&label(&outcome.route), &label(&outcome.backend), status)
    };
    match outcome.rule {
        Some(rule) => {
            let key = SeriesKey {
                rule,
                backend: outcome.backend_index,
                code: status,
            };
            live.series.record_request(key, duration, series);
        }
        None => series().record(duration),
    }
}

/// The request facts the access log keeps (copied before the request moves upstream).
struct LogHead {
    /// When the request arrived (wall clock, for the log line's timestamp).
    time: SystemTime,
    method: http::Method,
    host: String,
    path: String,
    protocol: &'static str,
    bytes_received: u64,
}

impl LogHead {
    fn of(request: &Request<Incoming>) -> LogHead {
        LogHead {
            time: SystemTime::now(),
            method: request.method().clone(),
            host: request_host(request).unwrap_or("").to_owned(),
            path: request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            protocol: version_text(request.version()),
            // Declared length; streamed bodies without one count as 0.
            bytes_received: request
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        }
    }
}

fn version_text(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// The virtual host: `:authority` (HTTP/2, or an absolute-form HTTP/1.1 target) or `Host`.
fn request_host(request: &Request<Incoming>) -> Option<&str> {
    match request.uri().authority() {
        Some(authority) => Some(authority.as_str()),
        None => request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok()),
    }
}

async fn route_and_forward(
    plane: &Arc<DataPlane>,
    live: &Live,
    connection: &Connection,
    request: Request<Incoming>,
    outcome: &mut Outcome,
) -> Result<Response<ResponseBody>, ProxyError> {
    // 2. listener
    let Some(socket) = live.snapshot.sockets.get(&connection.local) else {
        return Err(ProxyError::NoListener);
    };
    // More than one Host is a 400 (RFC 9112 §3.2): which one a backend would believe is
    // anyone's guess.
    if request
        .headers()
        .get_all(header::HOST)
        .iter()
        .nth(1)
        .is_some()
    {
        return Err(ProxyError::InvalidHost);
    }
    let host = match request_host(&request) {
        Some(host) => host,
        None if request.version() == Version::HTTP_10 => "",
        None => return Err(ProxyError::InvalidHost),
    };
    let Some(listener) = socket.listeners.most_specific(router::strip_port(host)) else {
        return Err(ProxyError::NoListener);
    };
    // GEP-3567: a request whose host belongs to another listener than the connection's SNI
    // (HTTP/2 connection coalescing across certificates) is misdirected. Where listeners of the
    // socket validate client certificates differently (GEP-91), a connection without SNI was
    // validated as the listener without hostname, and must stay on it too.
    let handshake_host = match &connection.sni {
        Some(sni) => Some(&**sni),
        None if socket.tls.as_ref().is_some_and(|t| t.selects_by_sni()) => Some(""),
        None => None,
    };
    if let Some(sni) = handshake_host
        && socket
            .listeners
            .most_specific(sni)
            .is_none_or(|by_sni| !Arc::ptr_eq(by_sni, listener))
    {
        return Err(ProxyError::Misdirected);
    }

    // 3. route
    let view = RequestView {
        method: request.method(),
        host,
        path: request.uri().path(),
        query: request.uri().query(),
        headers: request.headers(),
    };
    let Some(hit) = listener.table.find(&view) else {
        return Err(ProxyError::NoRoute);
    };
    let rule: &RouteRule = hit.target;
    let matched = hit.path_match;
    outcome.route = Some(Arc::clone(&rule.name));
    outcome.rule = Some(std::ptr::from_ref(rule).addr());
    let scheme = socket.scheme.as_str();

    // 4. rule filters: CORS answers preflights (and marks the response of any other request);
    //    a redirect answers here; header modifiers and rewrites change the request
    match cors::check(
        rule.filters.cors.as_ref(),
        request.method(),
        request.headers(),
    ) {
        cors::CorsVerdict::Respond(preflight) => return Ok(preflight),
        cors::CorsVerdict::Continue(grant) => outcome.cors = grant,
    }
    if let Some(redirect) = &rule.filters.redirect {
        let mut response = filter::redirect_response(
            redirect,
            scheme,
            host,
            connection.local.port(),
            request.uri().path_and_query(),
            matched,
        );
        if let Some(modifier) = &rule.filters.response_headers {
            filter::modify_headers(response.headers_mut(), modifier);
        }
        return Ok(response);
    }
    let choice = match &rule.action {
        RuleAction::Respond(direct) => return Err(ProxyError::Direct(direct.clone())),
        RuleAction::Forward(choice) => choice,
    };
    let (mut parts, body) = request.into_parts();
    if let Some(modifier) = &rule.filters.request_headers {
        filter::modify_headers(&mut parts.headers, modifier);
    }
    if let Some(rewrite) = &rule.filters.rewrite {
        filter::rewrite_request(&mut parts, rewrite, matched);
    }

    // 5. weighted backendRef choice, then that backendRef's own filters
    let ticket = rand::rng().random_range(0..choice.total_weight);
    let Some(candidate) = choice.pick(ticket) else {
        return Err(ProxyError::NoRoute);
    };
    let index = match &candidate.target {
        BackendTarget::Backend(index) => *index,
        BackendTarget::Invalid(direct) => return Err(ProxyError::Direct(direct.clone())),
    };
    let backend_filters = &candidate.filters;
    if let Some(redirect) = &backend_filters.redirect {
        let host = request_host_of(&parts.uri, &parts.headers).unwrap_or("");
        let port = connection.local.port();
        let mut response = filter::redirect_response(
            redirect,
            scheme,
            host,
            port,
            parts.uri.path_and_query(),
            matched,
        );
        respond_headers(&mut response, rule, backend_filters);
        return Ok(response);
    }
    if let Some(modifier) = &backend_filters.request_headers {
        filter::modify_headers(&mut parts.headers, modifier);
    }
    if let Some(rewrite) = &backend_filters.rewrite {
        filter::rewrite_request(&mut parts, rewrite, matched);
    }
    // Mirrors get the request as the backend will see it; the client never waits for them.
    let mirror_source = mirror::MirrorSource {
        plane,
        live,
        rule,
        backend_filters,
        client: connection.peer.ip(),
        scheme,
        client_certificate: listener.backend_client_certificate.as_ref(),
    };
    let body = mirror::dispatch(&mirror_source, &parts, body);
    let session_in = session::requested(rule.session.as_ref(), &parts.headers);
    let pinned = session_in.map(|s| s.endpoint);
    let hash_cookie = live
        .backends
        .get(index)
        .and_then(|backend| session::hash_cookie(backend, &mut parts.headers));
    let request = Request::from_parts(parts, body);

    // 6.–7. balancer pick and forward, within the rule's timeouts
    let upstream = Upstream {
        index,
        client_certificate: listener.backend_client_certificate.as_deref(),
        pinned,
    };
    // Boxed: the forwarding future (retries, replay, upgrades) is large, and keeping it out of
    // the per-request future saves copying it around on every request.
    let forwarding = Box::pin(forward_to_backend(
        plane, live, upstream, request, connection, scheme, rule, outcome,
    ));
    let mut response = match rule.timeouts.request {
        Some(limit) => tokio::time::timeout(limit, forwarding)
            .await
            .map_err(|_| ProxyError::Timeout)??,
        None => forwarding.await?,
    };
    respond_headers(&mut response, rule, backend_filters);
    if let Some(persistence) = &rule.session
        && let Some(endpoint) = outcome.endpoint
    {
        session::respond(persistence, session_in, endpoint, response.headers_mut());
    }
    if let Some(cookie) = hash_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// Response header modifiers: the rule's, then the backendRef's.
fn respond_headers(response: &mut Response<ResponseBody>, rule: &RouteRule, backend: &Filters) {
    for modifier in [&rule.filters.response_headers, &backend.response_headers]
        .into_iter()
        .flatten()
    {
        filter::modify_headers(response.headers_mut(), modifier);
    }
}

fn request_host_of<'a>(uri: &'a http::Uri, headers: &'a http::HeaderMap) -> Option<&'a str> {
    match uri.authority() {
        Some(authority) => Some(authority.as_str()),
        None => headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    }
}

/// Where a request goes: the backend, and the client certificate the listener's Gateway
/// presents if that backend is reached over TLS.
#[derive(Clone, Copy)]
struct Upstream<'a> {
    index: usize,
    client_certificate: Option<&'a ClientCertificate>,
    /// The endpoint named by a valid session token (`sessionPersistence`).
    pinned: Option<SocketAddr>,
}

/// The backend an attempt goes to: its runtime, and its index in the live config (which keys
/// its breaker gauge in `Live::series`).
#[derive(Clone, Copy)]
struct Target<'a> {
    live: &'a Live,
    index: usize,
    runtime: &'a BackendRuntime,
}

impl Target<'_> {
    /// Sets `portcullis_circuit_breaker_state` for the backend to `state`. Called after every
    /// exchange and rejection with the breaker's current state, so the gauge follows every
    /// transition (including one made by another request, or by an admission); the cached
    /// handle writes only when the value changes.
    fn show_breaker_state(self, plane: &DataPlane, state: i64) {
        self.live.series.set_breaker_state(self.index, state, || {
            let label = LabelValue::from(Arc::clone(self.runtime.id().as_shared()));
            plane.metrics.circuit_breaker_gauge(&label)
        });
    }
}

/// Forwards to the backend, retrying per the rule's retry policy.
#[allow(clippy::too_many_arguments)]
async fn forward_to_backend(
    plane: &Arc<DataPlane>,
    live: &Live,
    upstream: Upstream<'_>,
    request: Request<RequestBody>,
    connection: &Connection,
    scheme: &'static str,
    rule: &RouteRule,
    outcome: &mut Outcome,
) -> Result<Response<ResponseBody>, ProxyError> {
    let Some(backend) = live.backends.get(upstream.index) else {
        return Err(ProxyError::NoEndpoints);
    };
    let client = upstream.client_certificate;
    let pinned = upstream.pinned;
    outcome.backend = Some(Arc::clone(backend.id().as_shared()));
    outcome.backend_index = Some(upstream.index);
    let target = Target {
        live,
        index: upstream.index,
        runtime: backend,
    };
    let limit = rule.timeouts.backend_request;
    // The upgrade and retry paths are boxed, so that their futures do not grow the common one
    // (a request without retries), which is moved on every request.
    if let Some(protocol) = upgrade::requested(request.version(), request.headers()) {
        let exchange = Exchange {
            plane,
            target,
            client,
            limit,
        };
        let upgrading = forward_upgrade(
            exchange, protocol, request, connection, scheme, pinned, outcome,
        );
        return Box::pin(upgrading).await;
    }
    let (parts, body) = request.into_parts();
    let Some(policy) = &rule.retry else {
        let head = RequestHead::from_client(parts, connection.peer.ip(), scheme);
        let response = attempt(plane, target, client, pinned, head, body, limit, outcome).await?;
        return Ok(client_response(response));
    };
    let method = parts.method.clone();
    let head = RequestHead::from_client(parts, connection.peer.ip(), scheme);
    let exchange = Exchange {
        plane,
        target,
        client,
        limit: policy.per_try_timeout.or(limit),
    };
    Box::pin(forward_with_retries(
        exchange, policy, method, head, body, pinned, outcome,
    ))
    .await
}

/// What every attempt of one request shares.
#[derive(Clone, Copy)]
struct Exchange<'a> {
    plane: &'a Arc<DataPlane>,
    target: Target<'a>,
    client: Option<&'a ClientCertificate>,
    /// Timeout of one attempt.
    limit: Option<std::time::Duration>,
}

/// An upgrade (WebSocket) is one exchange, never retried: the connection is the body.
async fn forward_upgrade(
    exchange: Exchange<'_>,
    protocol: http::HeaderValue,
    mut request: Request<RequestBody>,
    connection: &Connection,
    scheme: &'static str,
    pinned: Option<SocketAddr>,
    outcome: &mut Outcome,
) -> Result<Response<ResponseBody>, ProxyError> {
    let client_upgrade = hyper::upgrade::on(&mut request);
    let (parts, body) = request.into_parts();
    let mut head = RequestHead::from_client(parts, connection.peer.ip(), scheme);
    upgrade::restore_request_headers(head.headers_mut(), protocol);
    let Exchange {
        plane,
        target,
        client,
        limit,
    } = exchange;
    let response = attempt(plane, target, client, pinned, head, body, limit, outcome).await?;
    let switched = response.status() == http::StatusCode::SWITCHING_PROTOCOLS;
    let response = upgrade::bridge(client_upgrade, response);
    Ok(if switched {
        upgraded_response(response)
    } else {
        client_response(response)
    })
}

/// Forwards with the rule's retry policy: the body is kept (up to `RETRY_BODY_LIMIT`) for
/// another attempt; the triggers (and idempotency, `retry.rs`) decide, then `attempts`, then
/// the budget; each retry pauses a jittered exponential backoff first.
async fn forward_with_retries(
    exchange: Exchange<'_>,
    policy: &snapshot::RetryPolicy,
    method: http::Method,
    head: RequestHead,
    body: RequestBody,
    pinned: Option<SocketAddr>,
    outcome: &mut Outcome,
) -> Result<Response<ResponseBody>, ProxyError> {
    let Exchange {
        plane,
        target,
        client,
        limit,
    } = exchange;
    if let Some(budget) = &policy.budget {
        budget.deposit(tokio::time::Instant::now().into_std());
    }
    let body = match replay::prepare(body, RETRY_BODY_LIMIT).await {
        Ok(Prepared::Replayable(bytes)) => bytes,
        Ok(Prepared::Streaming(body)) => {
            // Too large to keep for another attempt: sent once.
            let response = attempt(
                plane,
                target,
                client,
                pinned,
                head,
                body.boxed_unsync(),
                limit,
                outcome,
            )
            .await?;
            return Ok(client_response(response));
        }
        Err(error) => return Err(ProxyError::ClientBody(error.to_string())),
    };
    let mut retry = 0;
    loop {
        let body = Full::new(body.clone())
            .map_err(|never| match never {})
            .boxed_unsync();
        // A retry goes where the balancer says: the pinned endpoint just failed.
        let pinned = pinned.filter(|_| retry == 0);
        let result = attempt(
            plane,
            target,
            client,
            pinned,
            head.clone(),
            body,
            limit,
            outcome,
        )
        .await;
        let status = result.as_ref().map(Response::status);
        if retry >= policy.attempts || !retry::allows_retry(&policy.triggers, &method, status) {
            return result.map(client_response);
        }
        let route = outcome.route.as_deref().unwrap_or("");
        if let Some(budget) = &policy.budget
            && !budget.try_withdraw(tokio::time::Instant::now().into_std())
        {
            plane.metrics.retry_budget_exhausted(route);
            return result.map(client_response);
        }
        plane.metrics.retry_attempted(route);
        drop(result); // frees the failed response and its connection before the pause
        let pause = retry::pause(&policy.backoff, retry, &mut rand::rng());
        retry += 1;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}

/// One attempt: pick an endpoint and exchange the request with it, within the backend
/// request timeout; a valid session token's endpoint (`pinned`) goes before the balancer.
#[allow(clippy::too_many_arguments)]
async fn attempt(
    plane: &Arc<DataPlane>,
    target: Target<'_>,
    client: Option<&ClientCertificate>,
    pinned: Option<SocketAddr>,
    head: RequestHead,
    body: RequestBody,
    limit: Option<std::time::Duration>,
    outcome: &mut Outcome,
) -> Result<Response<UpstreamBody>, ProxyError> {
    let backend = target.runtime;
    // Built only when a metric is looked up by label (rejections, ejections, first use).
    let backend_label = || LabelValue::from(Arc::clone(backend.id().as_shared()));
    // Circuit breaking comes before the pick: a rejected request touches no endpoint.
    let mut admission = backend.admit().map_err(|rejection| {
        plane
            .metrics
            .circuit_breaker_rejected(&backend_label(), rejection.reason());
        target.show_breaker_state(plane, backend.breaker().state().gauge_value());
        ProxyError::from(rejection)
    })?;
    let endpoint = pinned
        .and_then(|addr| session::pinned(backend, addr))
        .or_else(|| backend.pick(&head.pick_context()));
    let Some(endpoint) = endpoint else {
        return Err(ProxyError::NoEndpoints);
    };
    outcome.endpoint = Some(endpoint.addr());
    let request = head
        .into_request(body, endpoint.authority(), backend.protocol())
        .map_err(|_| ProxyError::InvalidHost)?;
    let in_flight = endpoint.start_request();
    let started = Instant::now();
    // Built inside each arm, not bound first: a bound future would take a second slot in this
    // future's state.
    let addr = endpoint.addr();
    let sent = match limit {
        Some(limit) => {
            tokio::time::timeout(limit, plane.pools.send(backend, client, addr, request))
                .await
                .ok()
        }
        None => Some(plane.pools.send(backend, client, addr, request).await),
    };
    drop(in_flight);
    // A request body the client broke (malformed chunked encoding, gone mid-body) says
    // nothing about the backend: no latency, no breaker or outlier verdict (the admission is
    // dropped), a 400 for the client.
    // The same for a connection the backend's `maxConnections` kept us from opening: our
    // own overload, not the backend failing.
    match &sent {
        Some(Err(UpstreamError::ClientBody(detail))) => {
            return Err(ProxyError::ClientBody(detail.clone()));
        }
        Some(Err(UpstreamError::ConnectionLimit(limit))) => {
            return Err(ProxyError::OverloadedConnections(limit.to_string()));
        }
        _ => {}
    }
    // PeakEWMA learns from the response head's arrival; a timeout counts as slow. Errors are
    // not latencies (a refused connect is fast) and go to outlier detection below instead.
    if matches!(&sent, Some(Ok(_)) | None) {
        endpoint.observe_latency(started.elapsed());
    }
    // The breaker judges the backend: a 5xx or a gateway error (connect failure, reset,
    // timeout, garbage) is an error. Returning before this point (no endpoint, bad host, the
    // request timeout cancelling us) drops the admission, which counts as neither.
    admission.head_received();
    let is_error = !matches!(&sent, Some(Ok(response)) if !response.status().is_server_error());
    let state = admission.record(is_error);
    target.show_breaker_state(plane, state.gauge_value());
    // One outcome per exchange feeds outlier detection (upstream::health): a response of any
    // status counts with its latency; connect failure, reset, timeout or garbage is a gateway
    // error.
    let exchange = match &sent {
        Some(Ok(response)) => upstream::health::Outcome::Success {
            status: response.status().as_u16(),
            latency: started.elapsed(),
        },
        _ => upstream::health::Outcome::GatewayError,
    };
    if let Some(reason) = backend.record_outcome(&endpoint, exchange) {
        plane
            .metrics
            .outlier_ejected(&backend_label(), reason.as_str());
    }
    let Some(sent) = sent else {
        return Err(ProxyError::Timeout);
    };
    sent.map_err(|error| {
        endpoint.record_failure();
        ProxyError::from(error)
    })
}

/// A 101 keeps its `Upgrade` and `Connection` headers (they are the point of it).
fn upgraded_response(response: Response<UpstreamBody>) -> Response<ResponseBody> {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, ResponseBody::upstream(body))
}

fn client_response(mut response: Response<UpstreamBody>) -> Response<ResponseBody> {
    forward::client_response(&mut response);
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, ResponseBody::upstream(body))
}
