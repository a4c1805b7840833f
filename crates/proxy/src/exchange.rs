//! The upstream half of a request: attempts against the chosen backend.
//!
//! An [`Exchange`] is what every attempt of one request shares (the backend, the client
//! certificate to present, the attempt timeout, the session's pinned endpoint). Per attempt, in
//! order: circuit-breaker admission (503 `circuit-open` / `overloaded-*`, `upstream::breaker`),
//! endpoint pick (the session's pinned endpoint, else the balancer), the exchange with the
//! endpoint within the attempt timeout (504), then the verdict on the backend: latency for
//! PeakEWMA, error or success for the breaker and for outlier detection. Only errors whose
//! [`ErrorSource`] is the backend count against it.
//!
//! Retries ([`Exchange::forward`] with a rule `RetryPolicy`): the body is kept for replay, then
//! per failed attempt the triggers and idempotency (`retry.rs`), the attempt count, the rule's
//! budget window (`rule_state.rs`) and a jittered backoff decide. Upgrades (WebSocket) are one
//! attempt, never retried. It does not route, filter or log: `stack.rs` does.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::future::Either;
use http::{Method, Request, Response};
use http_body_util::Full;
use snapshot::backend::AppProtocol;
use snapshot::backend::tls::ClientCertificate;
use snapshot::{RETRY_BODY_LIMIT, RetryPolicy, RouteRule};
use telemetry::LabelValue;
use upstream::breaker::Admission;
use upstream::{BackendRuntime, EndpointRuntime, RequestBody, UpstreamBody};

use crate::body::ResponseBody;
use crate::error::{ErrorSource, ProxyError};
use crate::forward::{self, RequestHead};
use crate::plane::{DataPlane, Live};
use crate::record::Disposition;
use crate::replay::{self, Prepared};
use crate::retry;
use crate::session;
use crate::upgrade;

/// What every attempt of one request shares.
#[derive(Clone, Copy)]
pub(crate) struct Exchange<'a> {
    pub(crate) plane: &'a Arc<DataPlane>,
    /// The live config the request loaded (its rule states and metric series).
    pub(crate) live: &'a Live,
    /// Index of the backend in the live config (keys its breaker gauge in `Live::series`).
    pub(crate) index: usize,
    /// The backend's runtime.
    pub(crate) backend: &'a BackendRuntime,
    /// The matched rule (timeouts, retry policy, budget window).
    pub(crate) rule: &'a RouteRule,
    /// The client certificate the listener's Gateway presents if the backend speaks TLS.
    pub(crate) client: Option<&'a ClientCertificate>,
    /// The endpoint named by a valid session token (`sessionPersistence`).
    pub(crate) pinned: Option<SocketAddr>,
    /// Timeout of one attempt.
    pub(crate) limit: Option<Duration>,
    /// The response head may come back as bytes (`upstream::RawHead`): the client is on our
    /// HTTP/1.1 server, which writes them, and no response phase changes or removes a
    /// backend's field (phases may add fields: see `stack::keeps_backend_fields`).
    pub(crate) raw_response_head: bool,
    /// The request head came from our HTTP/1.1 server's parser, which hands every head that
    /// asks for an upgrade (or carries a body, `Expect`, ...) to hyper instead: it asks for
    /// none, and its fields need not be looked at for one.
    pub(crate) own_head: bool,
    /// When the request arrived: the first attempt of a request that reaches it without
    /// waiting (no body to keep for retries) starts then, without another clock reading.
    pub(crate) start: Instant,
}

/// Who sent the request, for its `X-Forwarded-*` fields. Apart from [`Exchange`]: it goes
/// into the request's head before the forwarding's future is made, which then carries the
/// exchange without it (that future is boxed, and mimalloc's fast path ends at 1 KiB).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientOrigin {
    /// The peer's address.
    pub(crate) peer: IpAddr,
    /// Who the client is (`client_ip.rs`): the peer, or an address from `X-Forwarded-For`
    /// behind trusted proxies.
    pub(crate) client_ip: IpAddr,
    /// The listener's scheme.
    pub(crate) scheme: &'static str,
}

impl ClientOrigin {
    /// The head to forward of a request from this client.
    fn head(self, parts: http::request::Parts) -> RequestHead {
        RequestHead::from_client(parts, self.peer, self.client_ip, self.scheme)
    }
}

/// A request's forwarding ([`Exchange::forward`]).
pub(crate) type Forwarding<'a> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, ProxyError>> + Send + 'a>>;

impl<'a> Exchange<'a> {
    /// Forwards the request, retrying per the rule's retry policy: the forwarding, boxed (it is
    /// large, and the request's future would otherwise carry and move it). The set-up runs
    /// here, before the future is made, so that the future holds each value once (an async
    /// function keeps its arguments twice), and each path boxes only its own future.
    pub(crate) fn forward(
        self,
        request: Request<RequestBody>,
        origin: ClientOrigin,
        disposition: &'a mut Disposition,
    ) -> Forwarding<'a> {
        disposition.backend = Some(Arc::clone(self.backend.id().as_shared()));
        disposition.backend_index = Some(self.index);
        if !self.own_head {
            if let Some(protocol) = upgrade::requested(request.version(), request.headers()) {
                return Box::pin(async move {
                    self.forward_upgrade(protocol, request, origin, disposition)
                        .await
                });
            }
            if let Some(protocol) = upgrade::extended_connect(&request) {
                if !protocol.eq_ignore_ascii_case("websocket") {
                    return Box::pin(std::future::ready(Err(ProxyError::UnsupportedProtocol)));
                }
                return Box::pin(async move {
                    self.forward_extended_connect(request, origin, disposition)
                        .await
                });
            }
        }
        let (parts, body) = request.into_parts();
        let Some(policy) = self.rule.retry.as_ref() else {
            let head = origin.head(parts);
            return Box::pin(async move {
                let attempt = self.attempt(Attempt::FIRST, &head, body, disposition);
                Ok(client_response(attempt.await?))
            });
        };
        let method = parts.method.clone();
        let head = origin.head(parts);
        let exchange = Exchange {
            limit: policy.per_try_timeout.or(self.limit),
            ..self
        };
        Box::pin(async move {
            exchange
                .forward_with_retries(policy, method, head, body, disposition)
                .await
        })
    }

    /// An upgrade (WebSocket) is one exchange, never retried: the connection is the body.
    async fn forward_upgrade(
        &self,
        protocol: http::HeaderValue,
        mut request: Request<RequestBody>,
        origin: ClientOrigin,
        disposition: &mut Disposition,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        let client_upgrade = upgrade::ClientUpgrade::of(&mut request);
        let (parts, body) = request.into_parts();
        let mut head = origin.head(parts);
        upgrade::restore_request_headers(head.headers_mut(), protocol);
        let response = self
            .attempt(Attempt::FIRST, &head, body, disposition)
            .await?;
        let switched = response.status() == http::StatusCode::SWITCHING_PROTOCOLS;
        let response = upgrade::bridge(client_upgrade, response);
        Ok(if switched {
            upgraded_response(response)
        } else {
            client_response(response)
        })
    }

    /// A WebSocket over HTTP/2 (RFC 8441) becomes an HTTP/1.1 upgrade to the backend; never
    /// retried. Backends that speak only HTTP/2 (h2c) cannot take it.
    async fn forward_extended_connect(
        &self,
        mut request: Request<RequestBody>,
        origin: ClientOrigin,
        disposition: &mut Disposition,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        if self.backend.protocol() == snapshot::backend::AppProtocol::H2c {
            return Err(ProxyError::UnsupportedProtocol);
        }
        let client_upgrade = upgrade::ClientUpgrade::of(&mut request);
        let hold = request.extensions_mut().remove::<TunnelHold>();
        let (mut parts, _stream) = request.into_parts();
        parts.method = Method::GET;
        parts.version = http::Version::HTTP_11;
        let mut head = origin.head(parts);
        upgrade::websocket_request_headers(head.headers_mut());
        let body = RequestBody::empty();
        let response = self
            .attempt(Attempt::FIRST, &head, body, disposition)
            .await?;
        let response = upgrade::bridge_extended_connect(client_upgrade, response, hold);
        Ok(client_response(response))
    }

    /// Forwards with the rule's retry policy: the body is kept (up to `RETRY_BODY_LIMIT`) for
    /// another attempt; the triggers (and idempotency, `retry.rs`) decide, then `attempts`,
    /// then the budget; each retry pauses a jittered exponential backoff first.
    async fn forward_with_retries(
        &self,
        policy: &RetryPolicy,
        method: Method,
        mut head: RequestHead,
        body: RequestBody,
        disposition: &mut Disposition,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        let budget = self.live.rule_states.budget(self.rule);
        if let Some(budget) = budget {
            budget.deposit(tokio::time::Instant::now().into_std());
        }
        let body = match replay::prepare(body, RETRY_BODY_LIMIT).await {
            Ok(Prepared::Replayable(bytes)) => bytes,
            Ok(Prepared::Streaming(body)) => {
                // Too large to keep for another attempt: sent once.
                let body = RequestBody::new(body);
                let attempt = Attempt {
                    pinned: true,
                    from_arrival: false,
                };
                let response = self.attempt(attempt, &head, body, disposition);
                let response = response.await?;
                return Ok(client_response(response));
            }
            Err(error) => return Err(ProxyError::ClientBody(error.to_string())),
        };
        let mut retry = 0;
        loop {
            let body = if body.is_empty() {
                RequestBody::empty()
            } else {
                RequestBody::new(Full::new(body.clone()))
            };
            // A retry goes where the balancer says: the pinned endpoint just failed.
            let attempt = Attempt {
                pinned: retry == 0,
                from_arrival: false,
            };
            // Each retry is a span of its own, and its backend sees it as the parent.
            if retry > 0
                && let Some(trace) = disposition.trace.as_deref_mut()
            {
                trace.propagate(head.headers_mut());
            }
            let result = self.attempt(attempt, &head, body, disposition).await;
            let status = result.as_ref().map(Response::status);
            if retry >= policy.attempts || !retry::allows_retry(&policy.triggers, &method, status) {
                return result.map(client_response);
            }
            let route = disposition.route.as_deref().unwrap_or("");
            if let Some(budget) = budget
                && !budget.try_withdraw(tokio::time::Instant::now().into_std())
            {
                self.plane.metrics.retry_budget_exhausted(route);
                return result.map(client_response);
            }
            self.plane.metrics.retry_attempted(route);
            drop(result); // frees the failed response and its connection before the pause
            let pause = retry::pause(&policy.backoff, retry, &mut rand::rng());
            retry += 1;
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    }

    /// One attempt: admission, endpoint pick (a valid session token's endpoint, `pinned`,
    /// goes before the balancer), the exchange within the attempt timeout, and the verdict on
    /// the backend.
    async fn attempt(
        &self,
        // Two flags rather than the endpoint and the instant they select (48 bytes): this
        // future is most of the boxed forwarding's, which mimalloc serves from its fast path
        // only up to 1 KiB.
        attempt: Attempt,
        // By reference: an async function keeps its arguments twice in its state, and a
        // retry sends the same head again.
        head: &RequestHead,
        body: RequestBody,
        disposition: &mut Disposition,
    ) -> Result<Response<UpstreamBody>, ProxyError> {
        let backend = self.backend;
        // Circuit breaking comes before the pick: a rejected request touches no endpoint.
        let admission = self.admit()?;
        // One clock reading serves the pick (slow start, PeakEWMA decay) and the latency.
        let started = if attempt.from_arrival {
            self.start
        } else {
            Instant::now()
        };
        let endpoint = self
            .pinned
            .filter(|_| attempt.pinned)
            .and_then(|addr| session::pinned(backend, addr))
            .or_else(|| backend.pick_under(admission.policy(), &head.pick_context(started)));
        let Some(endpoint) = endpoint else {
            return Err(ProxyError::NoEndpoints);
        };
        disposition.endpoint = Some(endpoint.addr());
        // An HTTP/1.1 backend gets the request written out here, so that only a buffer
        // travels down to its connection; h2c needs a request (boxed: rarer, and larger).
        let outgoing = match backend.protocol() {
            AppProtocol::H2c => Outgoing::Request(
                head.clone()
                    .into_request(body, endpoint.authority(), AppProtocol::H2c)
                    .map_err(|_| ProxyError::InvalidHost)?,
            ),
            AppProtocol::Http1 | AppProtocol::WebSocket => {
                let mut request = head.to_http1(body, endpoint.authority()).sent_at(started);
                if self.raw_response_head {
                    request = request.with_raw_response_head();
                }
                Outgoing::Http1(request)
            }
        };
        let in_flight = endpoint.start_request();
        let addr = endpoint.addr();
        let pools = &self.plane.pools;
        let policy = admission.policy();
        // Built inside each arm, not bound first: a bound future would take a second slot in
        // this future's state.
        let send = move |outgoing| match outgoing {
            Outgoing::Http1(request) => {
                Either::Left(pools.send_http1(backend, policy, self.client, addr, request))
            }
            Outgoing::Request(request) => Either::Right(Box::pin(pools.send(
                backend,
                policy,
                self.client,
                addr,
                request,
            ))),
        };
        // The attempt's time limit, when there is one, in a timer of its own allocation:
        // `tokio::time::timeout` would keep it (112 bytes) in every attempt's future. `None`:
        // the limit ran out first.
        let mut timer = self.limit.map(|limit| Box::pin(tokio::time::sleep(limit)));
        let mut sending = std::pin::pin!(send(outgoing));
        let sent = std::future::poll_fn(|cx| {
            if let Poll::Ready(sent) = sending.as_mut().poll(cx) {
                return Poll::Ready(Some(sent));
            }
            match &mut timer {
                Some(timer) => timer.as_mut().poll(cx).map(|()| None),
                None => Poll::Pending,
            }
        })
        .await;
        drop(in_flight);
        let sent = match sent.map(|result| result.map_err(ProxyError::from)) {
            // An error that is not the backend's (a request body the client broke, our own
            // `maxConnections`) says nothing about it: no latency, no breaker or outlier
            // verdict (the admission is dropped, which counts as neither).
            Some(Err(error)) if error.source() != ErrorSource::Upstream => return Err(error),
            other => other,
        };
        let head_at = self.judge(&endpoint, admission, &sent, started);
        disposition.head_at = Some(head_at);
        if let Some(trace) = disposition.trace.as_deref_mut() {
            trace.attempted((started, head_at), addr, sent.as_ref());
        }
        let Some(sent) = sent else {
            return Err(ProxyError::Timeout);
        };
        sent.inspect_err(|_| endpoint.record_failure())
    }

    /// Admits one attempt under the backend's breaker and concurrency limits; a rejection is
    /// counted and shown on the breaker gauge.
    fn admit(&self) -> Result<Admission, ProxyError> {
        self.backend.admit().map_err(|rejection| {
            self.plane
                .metrics
                .circuit_breaker_rejected(&self.backend_label(), rejection.reason());
            self.show_breaker_state(self.backend.breaker().state().gauge_value());
            ProxyError::from(rejection)
        })
    }

    /// What one exchange (`None`: timed out) tells about the backend. Returning before this
    /// point (no endpoint, bad host, the request timeout cancelling the attempt) drops the
    /// admission, which counts as neither success nor error. Returns its clock reading (when the
    /// response head arrived).
    fn judge(
        &self,
        endpoint: &EndpointRuntime,
        mut admission: Admission,
        sent: &Option<Result<Response<UpstreamBody>, ProxyError>>,
        started: Instant,
    ) -> Instant {
        // PeakEWMA learns from the response head's arrival; a timeout counts as slow. Errors
        // are not latencies (a refused connect is fast) and go to outlier detection instead.
        // One clock reading serves both uses: our HTTP/1.1 client's, taken as the head arrived,
        // else one now.
        let now = match sent {
            Some(Ok(response)) => response.body().received_at(),
            _ => None,
        }
        .unwrap_or_else(Instant::now);
        let latency = now.saturating_duration_since(started);
        if matches!(sent, Some(Ok(_)) | None) {
            endpoint.observe_latency_at(latency, now);
        }
        admission.head_received();
        // One outcome per exchange feeds outlier detection (upstream::health): a response of
        // any status counts with its latency; connect failure, reset, timeout or garbage is a
        // gateway error. Judged under the settings the attempt was admitted with.
        let outcome = match sent {
            Some(Ok(response)) => upstream::health::Outcome::Success {
                status: response.status().as_u16(),
                latency,
            },
            _ => upstream::health::Outcome::GatewayError,
        };
        if let Some(reason) =
            self.backend
                .record_outcome_under(admission.policy(), endpoint, outcome)
        {
            self.plane
                .metrics
                .outlier_ejected(&self.backend_label(), reason.as_str());
        }
        // The breaker judges the backend: a 5xx or a gateway error (connect failure, reset,
        // timeout, garbage) is an error.
        let is_error = !matches!(sent, Some(Ok(response)) if !response.status().is_server_error());
        let state = admission.record(is_error);
        self.show_breaker_state(state.gauge_value());
        now
    }

    /// The backend's metric label, built only when a metric is looked up by label
    /// (rejections, ejections, first use).
    fn backend_label(&self) -> LabelValue {
        LabelValue::from(Arc::clone(self.backend.id().as_shared()))
    }

    /// Sets `portcullis_circuit_breaker_state` for the backend to `state`. Called after every
    /// exchange and rejection with the breaker's current state, so the gauge follows every
    /// transition (including one made by another request, or by an admission); the cached
    /// handle writes only when the value changes.
    fn show_breaker_state(&self, state: i64) {
        self.live.series.set_breaker_state(self.index, state, || {
            self.plane
                .metrics
                .circuit_breaker_gauge(&self.backend_label())
        });
    }
}

/// Which of the exchange's settings an attempt takes.
#[derive(Clone, Copy, Debug)]
struct Attempt {
    /// It goes to the session's endpoint (`Exchange::pinned`) when there is one; a retry
    /// after a failure does not.
    pinned: bool,
    /// It is timed from the request's arrival (`Exchange::start`, one clock reading less)
    /// rather than from now: the first attempt of a request sent at once.
    from_arrival: bool,
}

impl Attempt {
    /// A request's first attempt, sent as it arrived.
    const FIRST: Attempt = Attempt {
        pinned: true,
        from_arrival: true,
    };
}

/// What an attempt sends: a request written out for HTTP/1.1, or one for h2c.
enum Outgoing {
    Http1(upstream::Http1Request),
    Request(Request<RequestBody>),
}

/// A 101 keeps its `Upgrade` and `Connection` headers (they are the point of it).
/// Keeps the client connection busy while the tunnel of an extended CONNECT is open (put in
/// the request's extensions by `stack.rs`).
#[derive(Clone)]
pub(crate) struct TunnelHold {
    _in_flight: Arc<crate::guard::InFlight>,
}

impl TunnelHold {
    pub(crate) fn new(in_flight: crate::guard::InFlight) -> TunnelHold {
        TunnelHold {
            _in_flight: Arc::new(in_flight),
        }
    }
}

fn upgraded_response(response: Response<UpstreamBody>) -> Response<ResponseBody> {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, ResponseBody::upstream(body))
}

fn client_response(mut response: Response<UpstreamBody>) -> Response<ResponseBody> {
    forward::client_response(&mut response);
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, ResponseBody::upstream(body))
}
