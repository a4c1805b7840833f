//! What happens to one request, in order. [`serve`] reads top to bottom, one line per phase:
//!
//! 1. **select listener**: host → the most specific listener of this socket (listener
//!    isolation); the TLS connection's SNI must lead to the same listener (421 otherwise)
//! 2. **match route**: Gateway API precedence (`router`)
//! 3. **request phases**, each returning a [`Verdict`] (continue, or answer now): CORS
//!    preflight (`cors.rs`), then authentication, authorization and rate limiting (the slot is
//!    marked in [`serve`]), then the rule's RequestRedirect (answers) and its
//!    RequestHeaderModifier / URLRewrite (change the request)
//! 4. **choose backend**: weighted backendRef choice; a rule without usable backends and an
//!    invalid backendRef answer directly (500). A rule with a Composition answers here with
//!    the document its parts compose (`compose.rs`; its rule-level response headers and the
//!    access phases' fields still apply)
//! 5. **backend phases**: that backendRef's own redirect and modifiers (as 3), then
//!    RequestMirror copies of the final request leave in spawned tasks (`mirror.rs`)
//! 6. **attempts** (`exchange.rs`), within `timeouts.request` (504): circuit breaker, endpoint
//!    pick, forward, retries with budget and backoff
//! 7. **response phases**: ResponseHeaderModifier (rule, then backendRef), session cookies;
//!    then in [`handle`], for every response (the gateway's own too): CORS headers, metrics,
//!    access log when the body ends (`record.rs`)
//!
//! Errors at any step become responses in `error.rs`, nowhere else (a gRPC client, known by
//! its `content-type`, gets a gRPC status: `grpc.rs`).

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version, header};
use rand::Rng;
use router::{PathMatch, RequestView};
use snapshot::client::{ClientSettings, HeaderLimits};
use snapshot::{BackendTarget, Filters, ListenerRoutes, RouteRule, RuleAction, SocketRoutes};

use crate::access;
use crate::body::{ClientBody, PendingLog, RequestStream, ResponseBody};
use crate::client_ip;
use crate::compose;
use crate::cors;
use crate::error::ProxyError;
use crate::exchange::{ClientOrigin, Exchange, TunnelHold};
use crate::filter;
use crate::grpc::ClientProtocol;
use crate::guard::ConnectionState;
use crate::mirror;
use crate::plane::{DataPlane, Live};
use crate::record::{self, Disposition, LogHead};
use crate::session;
use crate::trace::{Origin, RequestTrace};

/// Per-connection facts the handler needs.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) local: SocketAddr,
    pub(crate) peer: SocketAddr,
    /// The TLS server name the client asked for, on HTTPS connections.
    pub(crate) sni: Option<Arc<str>>,
    /// What the socket allowed its clients when the connection was accepted.
    pub(crate) settings: Arc<ClientSettings>,
    /// Requests in flight and upgrades, shared with the connection guard (`guard.rs`).
    pub(crate) state: Arc<ConnectionState>,
}

/// Who sent the request and when it arrived.
#[derive(Clone, Copy)]
struct Arrival {
    /// Who the client is (`client_ip.rs`).
    client_ip: IpAddr,
    /// The request's start (its duration, and the first attempt's start).
    start: Instant,
}

/// What a request phase decided.
pub(crate) enum Verdict {
    /// Go on with the next phase.
    Continue,
    /// Answer the client with this response now; no later phase runs (the response still
    /// gets the CORS headers, metrics and access log of [`handle`]).
    Respond(Response<ResponseBody>),
}

/// A request's place in the config once its route matched.
struct Routed<'a> {
    /// The listener that took the request.
    listener: &'a ListenerRoutes,
    /// The matched rule.
    rule: &'a RouteRule,
    /// The match's path condition (prefix rewrites and redirects replace what it matched).
    matched: &'a PathMatch,
    /// The listener's scheme (`X-Forwarded-Proto`, redirects).
    scheme: &'static str,
}

/// Whose filters a phase applies: the rule's, or the chosen backendRef's (which come after
/// the rule's).
#[derive(Clone, Copy)]
enum FilterLevel<'a> {
    Rule,
    BackendRef(&'a Filters),
}

impl<'a> Routed<'a> {
    fn filters(&self, level: FilterLevel<'a>) -> &'a Filters {
        match level {
            FilterLevel::Rule => &self.rule.filters,
            FilterLevel::BackendRef(filters) => filters,
        }
    }
}

/// Serves one request. Never fails: every error is a response.
pub(crate) async fn handle(
    plane: Arc<DataPlane>,
    connection: Arc<Connection>,
    request: Request<RequestStream>,
) -> Result<Response<ResponseBody>, Infallible> {
    let start = Instant::now();
    let in_flight = connection.state.start_request();
    let live = plane.live();
    let log_head = plane.access_log.is_enabled().then(|| LogHead::of(&request));
    let mut disposition = Disposition::default();
    // Decided before the request moves: errors answer gRPC clients in gRPC.
    let protocol = ClientProtocol::of(request.version(), request.headers());
    let method = telemetry::HttpMethod::of(request.method().as_str());
    let client_ip = client_ip::client_address(
        connection.settings.client_ip,
        connection.peer.ip(),
        request.headers(),
    );
    let result = serve(
        &plane,
        &live,
        &connection,
        Arrival { client_ip, start },
        request,
        &mut disposition,
    )
    .await;
    // A forwarded response ends the request's duration when its head arrived (the attempt
    // read the clock then); any other answer reads it now.
    let end = match (&result, disposition.head_at) {
        (Ok(_), Some(head_at)) => head_at,
        _ => Instant::now(),
    };
    let (mut response, error, error_code) = match result {
        Ok(response) => (response, None, None),
        Err(error) => {
            let detail = plane
                .access_log
                .is_enabled()
                .then(|| error.detail().to_owned());
            let code = error.code();
            (error.into_response_for(protocol), detail, Some(code))
        }
    };
    // CORS (GEP-1767): every response of a CORS rule, forwarded or the gateway's own.
    if let Some(grant) = &disposition.cors {
        cors::decorate(response.headers_mut(), grant);
    }
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        connection.state.mark_upgraded();
    }
    let status = response.status().as_u16();
    let duration = end.saturating_duration_since(start);
    let exemplar = disposition.trace.as_ref().and_then(|t| t.exemplar());
    record::record_request(
        &plane,
        &live,
        &disposition,
        (method, status),
        duration,
        exemplar,
    );
    // Set in place: a response is a few hundred bytes, moving it costs more than this does.
    response.body_mut().set_in_flight(in_flight);
    // The server span of a sampled request ends with its response body, as the log line does.
    let mut trace = disposition.trace.take();
    let trace_ids = trace.as_ref().map(|t| t.ids());
    let log_line = log_head.is_some();
    let Some(head) = log_head.or_else(|| trace.as_mut().and_then(|t| t.take_head())) else {
        return Ok(response);
    };
    let span = trace.and_then(|t| {
        t.into_span(
            disposition.route.clone(),
            disposition.backend.clone(),
            &head,
        )
    });
    let log = Box::new(PendingLog {
        plane: Arc::clone(&plane),
        log_line,
        error_code,
        trace: trace_ids,
        span,
        time: head.time,
        start,
        client: SocketAddr::new(client_ip, connection.peer.port()),
        method: head.method,
        host: head.host,
        path: head.path,
        protocol: head.protocol,
        status,
        route: disposition.route,
        backend: disposition.backend,
        endpoint: disposition.endpoint,
        bytes_received: head.bytes_received,
        bytes_sent: 0,
        error,
    });
    response.body_mut().set_log(log);
    Ok(response)
}

/// The phases of one request, in order (see the module doc).
async fn serve(
    plane: &Arc<DataPlane>,
    live: &Live,
    connection: &Connection,
    arrival: Arrival,
    request: Request<RequestStream>,
    disposition: &mut Disposition,
) -> Result<Response<ResponseBody>, ProxyError> {
    let (mut parts, mut body) = request.into_parts();
    // Our HTTP/1.1 server is the only source of `RequestStream::Empty`. It counted the head's
    // size as it parsed it, and it writes a response head given as bytes.
    let own_server = matches!(body, RequestStream::Empty);
    check_limits(&connection.settings.headers, &parts, own_server)?;
    if parts.method == http::Method::CONNECT
        && parts.extensions.get::<hyper::ext::Protocol>().is_some()
    {
        parts
            .extensions
            .insert(TunnelHold::new(connection.state.hold()));
    }
    let (socket, listener, host) = select_listener(live, connection, &parts)?;
    disposition.scheme = socket.scheme.as_str();
    if let Some(tracer) = &plane.tracer {
        disposition.trace = Some(Box::new(begin_trace(
            tracer,
            listener,
            &parts,
            connection,
            arrival,
            disposition.scheme,
        )));
    }
    let routed = match normalize_path(listener, &parts)? {
        Normalized::Unchanged => match_route(socket, listener, host, &parts, disposition)?,
        Normalized::Redirect(redirect) => return Ok(redirect),
        Normalized::Rewritten(uri) => {
            parts.uri = uri;
            let host = record::request_host(&parts.uri, &parts.headers).unwrap_or("");
            match_route(
                socket,
                listener,
                router::strip_port(host),
                &parts,
                disposition,
            )?
        }
    };
    let rule = FilterLevel::Rule;
    // CORS preflight runs first: browsers send preflights without credentials, so
    // authentication must not see them.
    if let Verdict::Respond(preflight) = cors_preflight(&routed, &parts, disposition) {
        return Ok(preflight);
    }
    // Authentication, external authorization, authorization / IP rules, then rate limits
    // (SecurityPolicy, RateLimitPolicy: `access.rs`). Boxed, and only when a policy applies:
    // a request without one pays for neither the future nor the check.
    let admission = if routed.listener.security_of(routed.rule).is_some()
        || routed.listener.rate_limit_of(routed.rule).is_some()
        || routed.rule.filters.external_auth.is_some()
    {
        let requester = access::Requester {
            plane,
            live,
            peer: connection.peer,
            client_ip: arrival.client_ip,
            scheme: routed.scheme,
            protocol: ClientProtocol::of(parts.version, &parts.headers),
        };
        let admitting = access::admit(
            requester,
            routed.listener,
            routed.rule,
            &mut parts,
            &mut body,
        );
        // Boxed too: it is held across the forwarding, whose future every request carries.
        match Box::pin(admitting).await {
            Ok(admission) => Some(Box::new(admission)),
            Err(refusal) => return Ok(refusal),
        }
    } else {
        None
    };
    if let Verdict::Respond(redirect) = redirect(&routed, rule, connection, &parts) {
        return Ok(redirect);
    }
    modify_request(&routed, rule, &mut parts);
    if let Some(composition) = &routed.rule.filters.composition {
        let mut response = compose(
            plane,
            live,
            &routed,
            connection,
            arrival,
            composition,
            &parts,
            disposition,
        )
        .await?;
        respond_headers(&mut response, routed.rule, rule);
        if let Some(admission) = admission {
            admission.decorate(response.headers_mut());
        }
        return Ok(response);
    }
    let (index, backend_filters) = choose_backend(routed.rule)?;
    let backend_ref = FilterLevel::BackendRef(backend_filters);
    if let Verdict::Respond(redirect) = redirect(&routed, backend_ref, connection, &parts) {
        return Ok(redirect);
    }
    modify_request(&routed, backend_ref, &mut parts);
    // Mirrors get the request as the backend will see it; the client never waits for them.
    let mirrors = mirror_source(
        plane,
        live,
        &routed,
        backend_filters,
        connection,
        arrival.client_ip,
    );
    let (body, body_timed_out) = ClientBody::new(body, connection.settings.timeouts.request_body);
    let body = mirror::dispatch(&mirrors, &parts, body);
    let session = session::requested(routed.rule.session.as_deref(), &parts.headers);
    let hash_cookie = live
        .backends
        .get(index)
        .and_then(|backend| session::hash_cookie(backend, &mut parts.headers));
    let mut exchange = exchange(plane, live, &routed, index, arrival, session)?;
    // The access phases replace the backend's `RateLimit` fields: they need the header map.
    exchange.raw_response_head =
        own_server && admission.is_none() && keeps_backend_fields(&routed, backend_filters);
    exchange.own_head = own_server;
    if let Some(trace) = disposition.trace.as_deref_mut() {
        trace.propagate(&mut parts.headers);
    }
    let request = Request::from_parts(parts, body);
    // Phase 6, within the rule's `timeouts.request` (504). The forwarding comes boxed (see
    // `Exchange::forward`). Awaited here rather than in a function of its own: each async
    // layer moves its arguments and its result once more.
    let origin = ClientOrigin {
        peer: connection.peer.ip(),
        client_ip: arrival.client_ip,
        scheme: routed.scheme,
    };
    let forwarding = exchange.forward(request, origin, disposition);
    let forwarded = match routed.rule.timeouts.request {
        Some(limit) => tokio::time::timeout(limit, forwarding)
            .await
            .unwrap_or(Err(ProxyError::Timeout)),
        None => forwarding.await,
    };
    let response = forwarded.map_err(|error| match (error, body_timed_out) {
        (ProxyError::ClientBody(_), Some(flag)) if flag.load(Ordering::Acquire) => {
            ProxyError::ClientBodyTimeout
        }
        (error, _) => error,
    })?;
    let mut response = response_phases(
        &routed,
        backend_filters,
        session,
        hash_cookie,
        response,
        disposition,
    );
    if let Some(admission) = admission {
        admission.decorate(response.headers_mut());
    }
    Ok(response)
}

/// The request's trace: the listener's sampler (a ClientTrafficPolicy's `tracing`) or the
/// gateway's default decides a request whose caller did not.
fn begin_trace(
    tracer: &telemetry::trace::Tracer,
    listener: &ListenerRoutes,
    parts: &Parts,
    connection: &Connection,
    arrival: Arrival,
    scheme: &'static str,
) -> RequestTrace {
    let sampler = listener
        .tracing
        .map_or_else(|| tracer.sampler(), sampling_rule);
    // The wall clock of the request's start, from the monotonic reading it was timed with.
    let wall = std::time::SystemTime::now() - arrival.start.elapsed();
    RequestTrace::begin(
        sampler,
        parts,
        (wall, arrival.start),
        Origin {
            peer: connection.peer,
            client: arrival.client_ip,
            port: connection.local.port(),
            scheme,
        },
    )
}

/// A listener's sampling: the caller's decision when it made one, else this fraction.
fn sampling_rule(sampling: snapshot::client::TraceSampling) -> telemetry::trace::Sampler {
    telemetry::trace::Sampler::ParentBased(telemetry::trace::Root::Ratio(sampling.ratio))
}

/// Phase 0: the request head's limits that the HTTP codecs do not fully enforce themselves:
/// the request target's length (414), the header count on HTTP/2 and the head's size on
/// HTTP/1.x (431).
fn check_limits(
    limits: &HeaderLimits,
    parts: &Parts,
    head_counted: bool,
) -> Result<(), ProxyError> {
    let target = parts.uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > limits.max_uri_bytes {
        return Err(ProxyError::UriTooLong);
    }
    if parts.headers.len() > limits.max_headers_count {
        return Err(ProxyError::HeadersTooLarge);
    }
    // HTTP/1.x: hyper bounds its read buffer by the limit, but accepts a larger head that
    // arrived in one read; count it as it was on the wire. (h2 enforces the limit itself,
    // through SETTINGS_MAX_HEADER_LIST_SIZE.)
    if parts.version <= Version::HTTP_11 && !head_counted {
        let request_line = parts.method.as_str().len() + target + " HTTP/1.1\r\n ".len();
        let head = parts
            .headers
            .iter()
            .fold(request_line, |size, (name, value)| {
                size + name.as_str().len() + value.len() + ": \r\n".len()
            });
        if head > limits.max_request_headers_bytes {
            return Err(ProxyError::HeadersTooLarge);
        }
    }
    Ok(())
}

/// Phase 1b: the one path the request is matched, filtered and forwarded with (see
/// `router::path`): dot segments removed, unreserved escapes decoded, slashes merged, unsafe
/// paths refused (400). Under `UnescapeAndRedirect` a path with escaped slashes is answered with
/// a redirect to its normalized form. A path already normal costs one scan and no allocation.
fn normalize_path(listener: &ListenerRoutes, parts: &Parts) -> Result<Normalized, ProxyError> {
    let normalized = router::path::normalize(parts.uri.path(), &listener.path)
        .map_err(ProxyError::InvalidPath)?;
    let Cow::Owned(path) = normalized.path else {
        return Ok(Normalized::Unchanged);
    };
    let target = match parts.uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    if normalized.redirect {
        let mut response = Response::new(ResponseBody::full(Bytes::new()));
        *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
        if let Ok(location) = HeaderValue::try_from(target) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        return Ok(Normalized::Redirect(response));
    }
    let mut uri = parts.uri.clone().into_parts();
    // The normalized path only holds characters the original had, and upper-case escapes.
    uri.path_and_query = Some(
        PathAndQuery::try_from(target)
            .map_err(|_| ProxyError::InvalidPath(router::path::PathRejection::InvalidEscape))?,
    );
    let uri = Uri::from_parts(uri)
        .map_err(|_| ProxyError::InvalidPath(router::path::PathRejection::InvalidEscape))?;
    Ok(Normalized::Rewritten(uri))
}

/// What path normalization made of a request's target.
enum Normalized {
    /// The path was normal already.
    Unchanged,
    /// The target to match and forward instead.
    Rewritten(Uri),
    /// `UnescapeAndRedirect`: the client is sent to the normal form.
    Redirect(Response<ResponseBody>),
}

/// Phase 1: the listener of this socket that serves the request's host. More than one Host is
/// a 400 (RFC 9112 §3.2: which one a backend would believe is anyone's guess); HTTP/1.1
/// without Host too (HTTP/1.0 may omit it). Returns the host (without port) with the listener:
/// the route match needs it too.
fn select_listener<'a, 'p>(
    live: &'a Live,
    connection: &Connection,
    parts: &'p Parts,
) -> Result<(&'a SocketRoutes, &'a Arc<ListenerRoutes>, &'p str), ProxyError> {
    let Some(socket) = live.snapshot.sockets.get(&connection.local) else {
        return Err(ProxyError::NoListener);
    };
    // One lookup of Host serves both the duplicate check and the host.
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let host_header = hosts.next();
    if hosts.next().is_some() {
        return Err(ProxyError::InvalidHost);
    }
    let host = match record::host_of(&parts.uri, host_header) {
        Some(host) => host,
        None if parts.version == Version::HTTP_10 => "",
        None => return Err(ProxyError::InvalidHost),
    };
    let host = router::strip_port(host);
    let Some(listener) = socket.listeners.most_specific(host) else {
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
    Ok((socket, listener, host))
}

/// Phase 2: the winning rule of the listener's route table (Gateway API precedence).
fn match_route<'a>(
    socket: &SocketRoutes,
    listener: &'a ListenerRoutes,
    host: &str,
    parts: &Parts,
    disposition: &mut Disposition,
) -> Result<Routed<'a>, ProxyError> {
    let view = RequestView {
        method: &parts.method,
        host,
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
    };
    let Some(hit) = listener.table.find(&view) else {
        return Err(ProxyError::NoRoute);
    };
    let rule: &RouteRule = hit.target;
    disposition.route = Some(Arc::clone(&rule.name));
    disposition.rule = Some(std::ptr::from_ref(rule).addr());
    Ok(Routed {
        listener,
        rule,
        matched: hit.path_match,
        scheme: socket.scheme.as_str(),
    })
}

/// Request phase: CORS answers a preflight, and marks the response of any other request of a
/// CORS rule (GEP-1767).
fn cors_preflight(routed: &Routed<'_>, parts: &Parts, disposition: &mut Disposition) -> Verdict {
    let policy = routed.rule.filters.cors.as_deref();
    match cors::check(policy, &parts.method, &parts.headers) {
        cors::CorsVerdict::Respond(preflight) => Verdict::Respond(preflight),
        cors::CorsVerdict::Continue(grant) => {
            disposition.cors = grant;
            Verdict::Continue
        }
    }
}

/// Request phase: a RequestRedirect filter (of the rule, or of the chosen backendRef) answers
/// with the redirect, which gets the response header modifiers of the filters applied so far.
fn redirect(
    routed: &Routed<'_>,
    level: FilterLevel<'_>,
    connection: &Connection,
    parts: &Parts,
) -> Verdict {
    let Some(redirect) = &routed.filters(level).redirect else {
        return Verdict::Continue;
    };
    let host = record::request_host(&parts.uri, &parts.headers).unwrap_or("");
    let mut response = filter::redirect_response(
        redirect,
        routed.scheme,
        host,
        connection.local.port(),
        parts.uri.path_and_query(),
        routed.matched,
    );
    respond_headers(&mut response, routed.rule, level);
    Verdict::Respond(response)
}

/// Request phase: RequestHeaderModifier, then URLRewrite.
fn modify_request(routed: &Routed<'_>, level: FilterLevel<'_>, parts: &mut Parts) {
    let filters = routed.filters(level);
    if let Some(modifier) = &filters.request_headers {
        filter::modify_headers(&mut parts.headers, modifier);
    }
    if let Some(rewrite) = &filters.rewrite {
        filter::rewrite_request(parts, rewrite, routed.matched);
    }
}

/// Phase 4: a weighted draw among the rule's backendRefs. A rule that answers directly, and a
/// backendRef that cannot be used, answer here (500, as the Gateway API requires).
fn choose_backend(rule: &RouteRule) -> Result<(usize, &Filters), ProxyError> {
    let choice = match &rule.action {
        RuleAction::Respond(direct) => return Err(ProxyError::Direct(direct.clone())),
        RuleAction::Forward(choice) => choice,
    };
    let ticket = rand::rng().random_range(0..choice.total_weight);
    let Some(candidate) = choice.pick(ticket) else {
        return Err(ProxyError::NoRoute);
    };
    match &candidate.target {
        BackendTarget::Backend(index) => Ok((*index, candidate.filters())),
        BackendTarget::Invalid(direct) => Err(ProxyError::Direct(direct.clone())),
    }
}

/// Phase 4 for a rule with a Composition: it answers with the document its parts compose
/// (`compose.rs`), within `timeouts.request` as a forwarding is; the client's body is not
/// sent anywhere. Boxed: only these requests carry its future.
#[allow(clippy::too_many_arguments)]
async fn compose(
    plane: &Arc<DataPlane>,
    live: &Live,
    routed: &Routed<'_>,
    connection: &Connection,
    arrival: Arrival,
    composition: &snapshot::composition::Composition,
    parts: &Parts,
    disposition: &mut Disposition,
) -> Result<Response<ResponseBody>, ProxyError> {
    let composer = compose::Composer {
        plane,
        live,
        rule: routed.rule,
        client: routed.listener.backend_client_certificate.as_deref(),
        peer: connection.peer.ip(),
        client_ip: arrival.client_ip,
        scheme: routed.scheme,
        start: arrival.start,
    };
    let composing = Box::pin(composer.compose(composition, parts, disposition));
    match routed.rule.timeouts.request {
        Some(limit) => tokio::time::timeout(limit, composing)
            .await
            .unwrap_or(Err(ProxyError::Timeout)),
        None => composing.await,
    }
}

/// What mirroring needs to know about the request besides its head and body.
fn mirror_source<'a>(
    plane: &'a Arc<DataPlane>,
    live: &'a Live,
    routed: &Routed<'a>,
    backend_filters: &'a Filters,
    connection: &Connection,
    client_ip: IpAddr,
) -> mirror::MirrorSource<'a> {
    mirror::MirrorSource {
        plane,
        live,
        rule: routed.rule,
        backend_filters,
        peer: connection.peer.ip(),
        client: client_ip,
        scheme: routed.scheme,
        client_certificate: routed.listener.backend_client_certificate.as_ref(),
    }
}

/// The exchange with backend `index` that the attempts share.
fn exchange<'a>(
    plane: &'a Arc<DataPlane>,
    live: &'a Live,
    routed: &Routed<'a>,
    index: usize,
    arrival: Arrival,
    session: Option<session::Session>,
) -> Result<Exchange<'a>, ProxyError> {
    let Some(backend) = live.backends.get(index) else {
        return Err(ProxyError::NoEndpoints);
    };
    Ok(Exchange {
        plane,
        live,
        index,
        backend,
        rule: routed.rule,
        client: routed.listener.backend_client_certificate.as_deref(),
        pinned: session.map(|s| s.endpoint),
        start: arrival.start,
        raw_response_head: false,
        own_head: false,
        limit: routed.rule.timeouts.backend_request,
    })
}

/// Whether every response phase leaves the backend's response fields as they are (it may add
/// fields): then the response head can come back as bytes and go out to a client of our
/// HTTP/1.1 server without a header map (`upstream::RawHead`). A phase that changes or
/// removes a backend's field must be named here: ResponseHeaderModifier (rule or backendRef)
/// and CORS (it replaces `Access-Control-*`). Session and consistent-hash cookies only append.
fn keeps_backend_fields(routed: &Routed<'_>, backend_filters: &Filters) -> bool {
    let rule = &routed.rule.filters;
    rule.response_headers.is_none()
        && rule.cors.is_none()
        && backend_filters.response_headers.is_none()
}

/// Phase 7: response header modifiers, then the session's token and a consistent-hash cookie.
fn response_phases(
    routed: &Routed<'_>,
    backend_filters: &Filters,
    session: Option<session::Session>,
    hash_cookie: Option<http::HeaderValue>,
    mut response: Response<ResponseBody>,
    disposition: &Disposition,
) -> Response<ResponseBody> {
    respond_headers(
        &mut response,
        routed.rule,
        FilterLevel::BackendRef(backend_filters),
    );
    if let Some(persistence) = &routed.rule.session
        && let Some(endpoint) = disposition.endpoint
    {
        session::respond(persistence, session, endpoint, response.headers_mut());
    }
    if let Some(cookie) = hash_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Response header modifiers: the rule's, then (at the backendRef level) the backendRef's.
fn respond_headers(
    response: &mut Response<ResponseBody>,
    rule: &RouteRule,
    level: FilterLevel<'_>,
) {
    let backend_ref = match level {
        FilterLevel::Rule => None,
        FilterLevel::BackendRef(filters) => Some(filters),
    };
    for modifier in [Some(&rule.filters), backend_ref]
        .into_iter()
        .flatten()
        .filter_map(|filters| filters.response_headers.as_ref())
    {
        filter::modify_headers(response.headers_mut(), modifier);
    }
}
