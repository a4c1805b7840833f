//! The HTTPRoute `RequestMirror` filter in the data plane: fire-and-forget copies of a request.
//!
//! For each mirror of the rule (and of the chosen backendRef) that fires for this request
//! (its sampling window, [`window`], decides), a copy with the same method, path, query and headers as the
//! backend request (after every request filter; Host unchanged) goes to one endpoint of the
//! mirror's backend, from a spawned task. The client's response never waits for a mirror and
//! is never affected by one: mirror failures are logged at debug level and counted in
//! `portcullis_mirror_requests_total{route,result}`, and mirror responses are discarded.
//!
//! A request without a body is mirrored with an empty body. A request with a body is teed
//! ([`tee`]): the mirrors get the chunks the main request reads, as it reads them, and a mirror
//! that falls behind or whose copy exceeds [`MIRROR_BODY_LIMIT`] is aborted. Upgrade and
//! CONNECT requests are not mirrored: their bytes after the head are a tunnel, not a body.

mod tee;
pub(crate) mod window;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, header};
use http_body_util::BodyExt;
use rand::Rng;
use snapshot::backend::tls::ClientCertificate;
use snapshot::{Filters, RouteRule};
use upstream::{BackendRuntime, RequestBody};

use crate::body::ClientBody;
use crate::forward::{self, RequestHead};
use crate::plane::{DataPlane, Live};

use tee::{CopyWatch, MirrorBody};

/// Largest request body copied to a mirror; a mirror of a larger body is aborted.
pub(crate) const MIRROR_BODY_LIMIT: usize = 1024 * 1024;

/// How long a mirror request may take when the rule sets no timeout.
const DEFAULT_MIRROR_TIMEOUT: Duration = Duration::from_secs(30);

/// What mirroring needs to know about the request besides its head and body.
pub(crate) struct MirrorSource<'a> {
    pub(crate) plane: &'a Arc<DataPlane>,
    pub(crate) live: &'a Live,
    pub(crate) rule: &'a RouteRule,
    /// Filters of the chosen backendRef (their mirrors fire too).
    pub(crate) backend_filters: &'a Filters,
    /// The connection's peer, appended to `X-Forwarded-For`.
    pub(crate) peer: IpAddr,
    /// Who the client is (`client_ip.rs`), the balancer's key.
    pub(crate) client: IpAddr,
    /// The listener's scheme, for `X-Forwarded-Proto`.
    pub(crate) scheme: &'static str,
    /// The client certificate the listener's Gateway presents to TLS backends.
    pub(crate) client_certificate: Option<&'a Arc<ClientCertificate>>,
}

/// Starts the mirrors that fire for this request and returns the body the main request sends.
/// Never blocks and never fails: a mirror that cannot be started is counted and skipped.
pub(crate) fn dispatch(
    source: &MirrorSource<'_>,
    parts: &http::request::Parts,
    body: ClientBody,
) -> RequestBody {
    let (rule_mirrors, backend_mirrors) = (
        &source.rule.filters.mirrors,
        &source.backend_filters.mirrors,
    );
    if rule_mirrors.is_empty() && backend_mirrors.is_empty() {
        return forward::stream_body(body);
    }
    if parts.method == Method::CONNECT || parts.headers.contains_key(header::UPGRADE) {
        return forward::stream_body(body);
    }
    let mut random = rand::rng();
    let targets: Vec<Arc<BackendRuntime>> = rule_mirrors
        .iter()
        .chain(backend_mirrors)
        .filter(|mirror| {
            source
                .live
                .rule_states
                .mirror_fires(mirror, random.random())
        })
        .filter_map(|mirror| source.live.backends.get(mirror.backend).cloned())
        .collect();
    if targets.is_empty() {
        return forward::stream_body(body);
    }
    let head =
        RequestHead::from_client(copy_head(parts), source.peer, source.client, source.scheme);
    let timeout = source
        .rule
        .timeouts
        .backend_request
        .or(source.rule.timeouts.request)
        .unwrap_or(DEFAULT_MIRROR_TIMEOUT);
    let route = Arc::clone(&source.rule.name);
    let (main, copies): (RequestBody, Vec<Option<MirrorBody>>) =
        if http_body::Body::is_end_stream(&body) {
            (
                forward::stream_body(body),
                targets.iter().map(|_| None).collect(),
            )
        } else {
            let (main, copies) = tee::tee(body, targets.len(), MIRROR_BODY_LIMIT);
            let main = RequestBody::new(main.map_err(upstream::ClientBodyError::boxed));
            (main, copies.into_iter().map(Some).collect())
        };
    for (backend, copy) in targets.into_iter().zip(copies) {
        let job = MirrorJob {
            plane: Arc::clone(source.plane),
            route: Arc::clone(&route),
            backend,
            client_certificate: source.client_certificate.cloned(),
            head: head.clone(),
            timeout,
        };
        tokio::spawn(job.run(copy));
    }
    main
}

/// The request head without its extensions (which are not `Clone` and are not forwarded).
fn copy_head(parts: &http::request::Parts) -> http::request::Parts {
    let mut copy = Request::new(());
    *copy.method_mut() = parts.method.clone();
    *copy.uri_mut() = parts.uri.clone();
    *copy.version_mut() = parts.version;
    *copy.headers_mut() = parts.headers.clone();
    copy.into_parts().0
}

/// How a mirror request ended: the `result` label of `portcullis_mirror_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MirrorResult {
    /// The mirror answered (any status: mirror responses are ignored).
    Success,
    /// The mirror backend has no endpoint that can take traffic.
    NoEndpoint,
    /// The body copy was cut off (too slow, too large, or the client's body failed).
    Aborted,
    /// Connect error, reset, or an invalid response.
    Error,
    /// The mirror did not answer within the rule's backend timeout.
    Timeout,
}

impl MirrorResult {
    fn label(self) -> &'static str {
        match self {
            MirrorResult::Success => "success",
            MirrorResult::NoEndpoint => "no_endpoint",
            MirrorResult::Aborted => "aborted",
            MirrorResult::Error => "error",
            MirrorResult::Timeout => "timeout",
        }
    }
}

/// One mirror request, owned by its spawned task.
struct MirrorJob {
    plane: Arc<DataPlane>,
    route: Arc<str>,
    backend: Arc<BackendRuntime>,
    client_certificate: Option<Arc<ClientCertificate>>,
    head: RequestHead,
    timeout: Duration,
}

impl MirrorJob {
    /// Sends the copy (`None`: an empty body), discards the answer, and counts the result.
    async fn run(self, body: Option<MirrorBody>) {
        let watch: Option<CopyWatch> = body.as_ref().map(MirrorBody::watch);
        let body = match body {
            Some(body) => RequestBody::new(body),
            None => RequestBody::empty(),
        };
        let result = match tokio::time::timeout(self.timeout, self.exchange(body)).await {
            Ok(Ok(())) => MirrorResult::Success,
            Ok(Err(result)) => result,
            Err(_) => MirrorResult::Timeout,
        };
        // A cut-off body surfaces as an upstream error; name the real cause.
        let result = match result {
            MirrorResult::Error if watch.is_some_and(|w| w.is_aborted()) => MirrorResult::Aborted,
            other => other,
        };
        self.plane
            .metrics
            .mirror_request_finished(&self.route, result.label());
    }

    async fn exchange(&self, body: RequestBody) -> Result<(), MirrorResult> {
        let backend = self.backend.id();
        // One load of the backend's policy serves the pick and the choice of pools.
        let policy = self.backend.policy();
        let Some(endpoint) = self
            .backend
            .pick_under(&policy, &self.head.pick_context(std::time::Instant::now()))
        else {
            tracing::debug!(route = %self.route, %backend, "mirror skipped: no endpoint");
            return Err(MirrorResult::NoEndpoint);
        };
        let request = self
            .head
            .clone()
            .into_request(body, endpoint.authority(), self.backend.protocol())
            .map_err(|error| {
                tracing::debug!(route = %self.route, %backend, %error, "mirror request invalid");
                MirrorResult::Error
            })?;
        let _in_flight = endpoint.start_request();
        let response = self
            .plane
            .pools
            .send(
                &self.backend,
                &policy,
                self.client_certificate.as_deref(),
                endpoint.addr(),
                request,
            )
            .await
            .map_err(|error| {
                endpoint.record_failure();
                tracing::debug!(route = %self.route, %backend, %error, "mirror request failed");
                MirrorResult::Error
            })?;
        // Read the answer to the end so the connection can be reused; its content is ignored.
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            if let Err(error) = frame {
                tracing::debug!(route = %self.route, %backend, %error, "mirror response failed");
                return Err(MirrorResult::Error);
            }
        }
        Ok(())
    }
}
