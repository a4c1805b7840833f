//! Composed responses: a rule with a `Composition` (`snapshot::composition`) answers with one
//! JSON document merged from several backend requests, its parts.
//!
//! Per request, in order:
//! 1. **bind** the path to the composition's `pathPattern` (a path that does not fit: 404);
//! 2. **run the parts** as a small DAG: every part whose dependencies have answered starts at
//!    once, so independent parts run concurrently and a dependent one starts as soon as the
//!    parts it reads have answered. Each part's request is built from its templates (values
//!    percent-encoded for where they land in the target), then goes through the same upstream
//!    stack as any request (`exchange.rs`: breaker, balancer, retries and budget of the rule,
//!    per-attempt timeout), within the part's `timeout` and the composition's deadline. Its
//!    body is read up to `maxPartBytes` (it must be buffered: the merge needs the whole
//!    document) and parsed as JSON;
//! 3. **fail fast**: a required part that fails ends the composition at once with a 502 whose
//!    JSON body names the part (the other parts are cancelled); an optional one becomes
//!    `null` (Keyed) plus an entry in `errors`. A part that reads a failed part fails without
//!    a request (`dependency-failed`);
//! 4. **merge** (Keyed or Deep) and answer 200 `application/json`.
//!
//! The client's request body is not sent to any part (parts are the gateway's own requests;
//! their method and headers come from the composition). Parts are counted in
//! `portcullis_composition_parts_total` and `_part_duration_seconds`, and each attempt of a
//! sampled request is a client span, child of the request's server span, marked with its part
//! (`trace.rs`: each part runs with a fork of the request's trace).

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, Response, Uri, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Map, Value, json};
use snapshot::backend::tls::ClientCertificate;
use snapshot::composition::{Composition, Merge, Part, Piece, Reference, Template};
use snapshot::{BackendTarget, RouteRule};
use telemetry::LabelValue;
use telemetry::trace::PartTag;
use upstream::RequestBody;

use crate::body::ResponseBody;
use crate::error::{PartFailure, ProxyError};
use crate::exchange::{ClientOrigin, Exchange};
use crate::plane::{DataPlane, Live};
use crate::record::Disposition;

/// What a template value keeps as it is in a target: RFC 3986's unreserved characters.
/// Everything else (`/`, `?`, `&`, `#`, `%`, spaces, non-ASCII) is percent-encoded.
const KEPT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What composing needs of the request besides its head (the request's place in the config).
pub(crate) struct Composer<'a> {
    pub(crate) plane: &'a Arc<DataPlane>,
    pub(crate) live: &'a Live,
    /// The matched rule: its retry policy, budget and `timeouts.backendRequest` apply to the
    /// parts' attempts.
    pub(crate) rule: &'a RouteRule,
    /// The client certificate the listener's Gateway presents to TLS backends.
    pub(crate) client: Option<&'a ClientCertificate>,
    pub(crate) peer: IpAddr,
    pub(crate) client_ip: IpAddr,
    pub(crate) scheme: &'static str,
    /// The request's arrival: the composition's deadline counts from it.
    pub(crate) start: Instant,
}

/// Why a part has no document.
#[derive(Clone, Debug)]
struct PartError {
    /// A fixed word: a metric label and the `error` of its `errors` entry.
    code: &'static str,
    message: String,
    /// The backend's status, when it answered with a non-2xx one.
    status: Option<u16>,
}

impl PartError {
    fn new(code: &'static str, message: impl Into<String>) -> PartError {
        PartError {
            code,
            message: message.into(),
            status: None,
        }
    }

    /// The entry of the document's `errors` list.
    fn entry(&self, part: &Part) -> Value {
        let mut entry = json!({"part": &*part.name, "error": self.code, "message": self.message});
        if let Some(status) = self.status {
            entry["status"] = json!(status);
        }
        entry
    }
}

/// A part's JSON response.
#[derive(Clone, Debug)]
enum Document {
    /// As received (validated, the whitespace around it trimmed): a part no template reads,
    /// without `select`, under a Keyed merge goes into the document as it came, neither parsed
    /// into a tree nor written out again.
    Text(Bytes),
    /// Parsed: dependents read it, `select` picks from it, a Deep merge merges it.
    Value(Value),
}

impl Document {
    /// The document as a tree (a `Text` one parsed now: not expected, as a part whose
    /// document is read is parsed when it arrives).
    fn value(&self) -> Cow<'_, Value> {
        match self {
            Document::Value(value) => Cow::Borrowed(value),
            Document::Text(text) => Cow::Owned(serde_json::from_slice(text).unwrap_or(Value::Null)),
        }
    }
}

/// A part's result.
type Outcome = Result<Document, PartError>;

/// What templates read of the client's request.
struct Inputs<'r> {
    /// The path pattern's parameters, percent-decoded.
    path: Vec<Cow<'r, str>>,
    head: &'r Parts,
}

/// A finished part: its index, result, the disposition its attempts filled (its trace) and how
/// long it took.
type Finished = (usize, Outcome, Disposition, Duration);

impl Composer<'_> {
    /// Answers the request with `composition`'s document (see the module doc). `head` is the
    /// request as the rule's filters left it.
    pub(crate) async fn compose(
        &self,
        composition: &Composition,
        head: &Parts,
        disposition: &mut Disposition,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        let metrics = &self.plane.metrics.composition;
        let label = LabelValue::from(Arc::clone(&composition.name));
        // Metrics and logs show the composition where a forwarded request shows its backend.
        disposition.backend = Some(Arc::clone(&composition.name));
        let Some(path) = bind(composition, head.uri.path()) else {
            metrics.composed(&label, "path_mismatch");
            return Err(ProxyError::PathMismatch);
        };
        let inputs = Inputs { path, head };
        let deadline = tokio::time::Instant::from_std(self.start) + composition.timeout;
        let count = composition.parts.len();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; count];
        let mut started = vec![false; count];
        let mut running = FuturesUnordered::new();
        // One timer for the whole composition (parts with a timeout of their own add theirs).
        let expiry = tokio::time::sleep_until(deadline);
        tokio::pin!(expiry);
        loop {
            // Start every part whose dependencies have answered; one that cannot run fails
            // at once, which may settle the dependencies of others: repeat until none starts.
            let mut progress = true;
            while progress {
                progress = false;
                for index in 0..count {
                    let part = &composition.parts[index];
                    if started[index] || part.depends_on.iter().any(|&d| outcomes[d].is_none()) {
                        continue;
                    }
                    started[index] = true;
                    progress = true;
                    let request = match self.prepare(composition, part, &inputs, &outcomes) {
                        Ok(request) => request,
                        Err(error) => {
                            let error = self.failed(composition, &label, part, error, None)?;
                            outcomes[index] = Some(Err(error));
                            continue;
                        }
                    };
                    let (backend, mut request) = request;
                    let mut own = Disposition {
                        route: disposition.route.clone(),
                        rule: disposition.rule,
                        scheme: disposition.scheme,
                        trace: disposition.trace.as_ref().map(|t| Box::new(t.fork())),
                        ..Disposition::default()
                    };
                    if let Some(trace) = own.trace.as_deref_mut() {
                        trace.propagate(request.headers_mut());
                    }
                    running.push(self.run_part(
                        composition,
                        index,
                        backend,
                        request,
                        own,
                        deadline,
                    ));
                }
            }
            let next = tokio::select! {
                biased;
                next = running.next() => Some(next),
                () = &mut expiry => None,
            };
            let finished = match next {
                Some(Some(finished)) => finished,
                // Nothing runs and nothing can start: every part has its outcome.
                Some(None) => break,
                None => {
                    // The deadline: whatever has not answered fails (and is cancelled).
                    for (index, part) in composition.parts.iter().enumerate() {
                        if outcomes[index].is_some() {
                            continue;
                        }
                        let error = PartError::new(
                            "timeout",
                            format!(
                                "no answer within the composition's deadline ({:?})",
                                composition.timeout
                            ),
                        );
                        let error = self.failed(composition, &label, part, error, None)?;
                        outcomes[index] = Some(Err(error));
                    }
                    break;
                }
            };
            let (index, outcome, own, took) = finished;
            let part = &composition.parts[index];
            if let (Some(trace), Some(theirs)) = (disposition.trace.as_deref_mut(), own.trace)
                && theirs.is_recording()
            {
                let tag = Arc::new(PartTag {
                    name: Arc::clone(&part.name),
                    composition: Arc::clone(&composition.name),
                    method: part.method.clone(),
                    backend: own.backend,
                });
                trace.join(*theirs, &tag);
            }
            let outcome = match outcome {
                // Through the generation's cache: no label is looked up per answer.
                Ok(document) => {
                    self.live
                        .series
                        .record_part(std::ptr::from_ref(part).addr(), took, || {
                            metrics
                                .part_ok_series(&label, &LabelValue::from(Arc::clone(&part.name)))
                        });
                    Ok(document)
                }
                Err(error) => Err(self.failed(composition, &label, part, error, Some(took))?),
            };
            outcomes[index] = Some(outcome);
        }
        let (body, is_partial) = merge(composition, outcomes);
        if is_partial {
            metrics.composed(&label, "partial");
        } else {
            self.live
                .series
                .count_complete(std::ptr::from_ref(composition).addr(), || {
                    metrics.composed_counter(&label, "complete")
                });
        }
        let mut response = Response::new(ResponseBody::full(body));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(response)
    }

    /// A part failed: counted, then the composition's end when the part is required (502
    /// naming it), else the error to keep in its place.
    fn failed(
        &self,
        composition: &Composition,
        label: &LabelValue,
        part: &Part,
        error: PartError,
        took: Option<Duration>,
    ) -> Result<PartError, ProxyError> {
        self.count_part(composition, label, part, &error, took);
        if part.required {
            self.plane.metrics.composition.composed(label, "failed");
            return Err(failure(composition, part, &error));
        }
        Ok(error)
    }

    /// Counts a failed part and logs it at debug level.
    fn count_part(
        &self,
        composition: &Composition,
        label: &LabelValue,
        part: &Part,
        error: &PartError,
        took: Option<Duration>,
    ) {
        tracing::debug!(
            composition = %composition.name,
            part = %part.name,
            error = error.code,
            message = %error.message,
            "composition part failed"
        );
        self.plane.metrics.composition.part(
            label,
            &LabelValue::from(Arc::clone(&part.name)),
            error.code,
            took,
        );
    }

    /// The part's backend and request, once its dependencies have answered; why it cannot
    /// run otherwise (a dependency failed, its backendRef does not resolve, a template value
    /// is missing).
    fn prepare(
        &self,
        composition: &Composition,
        part: &Part,
        inputs: &Inputs<'_>,
        outcomes: &[Option<Outcome>],
    ) -> Result<(usize, Request<RequestBody>), PartError> {
        if let Some(&failed) = part
            .depends_on
            .iter()
            .find(|&&d| matches!(outcomes[d], Some(Err(_))))
        {
            return Err(PartError::new(
                "dependency-failed",
                format!(
                    "not requested: it reads part {:?}, which failed",
                    &*composition.parts[failed].name
                ),
            ));
        }
        let backend = match &part.backend {
            BackendTarget::Backend(index) => *index,
            BackendTarget::Invalid(direct) => {
                return Err(PartError::new(
                    "backend-not-found",
                    String::from_utf8_lossy(&direct.body).trim_end().to_owned(),
                ));
            }
        };
        let request = part_request(composition, part, inputs, outcomes)?;
        Ok((backend, request))
    }

    /// Sends one part through the upstream stack within its timeout (and the deadline), and
    /// reads its JSON document.
    async fn run_part(
        &self,
        composition: &Composition,
        index: usize,
        backend: usize,
        request: Request<RequestBody>,
        mut disposition: Disposition,
        deadline: tokio::time::Instant,
    ) -> Finished {
        let part = &composition.parts[index];
        let started = Instant::now();
        let fetching = self.fetch(composition, part, backend, request, &mut disposition);
        // Without a timeout of its own, the composition's deadline (one timer for all parts,
        // in `compose`) bounds the part.
        let outcome = match part.timeout {
            Some(limit) if tokio::time::Instant::now() + limit < deadline => {
                tokio::time::timeout(limit, fetching)
                    .await
                    .unwrap_or_else(|_| {
                        Err(PartError::new(
                            "timeout",
                            format!("no answer within its timeout ({limit:?})"),
                        ))
                    })
            }
            _ => fetching.await,
        };
        (index, outcome, disposition, started.elapsed())
    }

    /// The exchange with the part's backend, then its body, read up to `maxPartBytes`.
    async fn fetch(
        &self,
        composition: &Composition,
        part: &Part,
        backend_index: usize,
        request: Request<RequestBody>,
        disposition: &mut Disposition,
    ) -> Outcome {
        let Some(backend) = self.live.backends.get(backend_index) else {
            return Err(PartError::new(
                "no-healthy-upstream",
                "the backend is not loaded",
            ));
        };
        let exchange = Exchange {
            plane: self.plane,
            live: self.live,
            index: backend_index,
            backend,
            rule: self.rule,
            client: self.client,
            pinned: None,
            limit: self.rule.timeouts.backend_request,
            raw_response_head: false,
            own_head: false,
            start: Instant::now(),
        };
        let origin = ClientOrigin {
            peer: self.peer,
            client_ip: self.client_ip,
            scheme: self.scheme,
        };
        let response = exchange
            .forward(request, origin, disposition)
            .await
            .map_err(|error| PartError::new(error.code(), error.detail().to_owned()))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), composition.max_part_bytes)
            .collect()
            .await
            .map_err(|error| {
                if error.downcast_ref::<LengthLimitError>().is_some() {
                    PartError::new(
                        "body-too-large",
                        format!(
                            "the response body is larger than maxPartBytes ({} bytes)",
                            composition.max_part_bytes
                        ),
                    )
                } else {
                    PartError::new("upstream-body-error", format!("response body: {error}"))
                }
            })?
            .to_bytes();
        if !status.is_success() {
            return Err(PartError {
                code: "upstream-status",
                message: format!("the backend answered {status}"),
                status: Some(status.as_u16()),
            });
        }
        // Parsed only when something reads into it.
        if !part.is_read && part.select.is_none() && composition.merge == Merge::Keyed {
            return validated_text(body);
        }
        let document = parse_document(&body)?;
        let selected = match &part.select {
            Some(pointer) => document.pointer(pointer).ok_or_else(|| {
                PartError::new(
                    "select-missing",
                    format!("the response has nothing at select {pointer:?}"),
                )
            })?,
            None => &document,
        };
        if composition.merge == Merge::Deep && !matches!(selected, Value::Object(_) | Value::Null) {
            return Err(PartError::new(
                "not-an-object",
                "a Deep merge needs a JSON object from every part",
            ));
        }
        Ok(Document::Value(document))
    }
}

/// A part's body checked as JSON without building a tree: the document's text (empty is
/// `null`).
fn validated_text(body: Bytes) -> Outcome {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Document::Value(Value::Null));
    }
    let raw: &serde_json::value::RawValue = serde_json::from_slice(&body).map_err(|error| {
        PartError::new("invalid-json", format!("the response is not JSON: {error}"))
    })?;
    // The raw value borrows from the body: its place there, without copying.
    let start = raw.get().as_ptr().addr() - body.as_ptr().addr();
    let end = start + raw.get().len();
    Ok(Document::Text(body.slice(start..end)))
}

/// A part's response body as JSON: empty is `null` (a 204, say).
fn parse_document(body: &Bytes) -> Result<Value, PartError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|error| {
        PartError::new("invalid-json", format!("the response is not JSON: {error}"))
    })
}

/// The path pattern's values for `path`, percent-decoded; `None` when the path does not fit
/// (or a value is not UTF-8). No pattern binds nothing.
fn bind<'p>(composition: &Composition, path: &'p str) -> Option<Vec<Cow<'p, str>>> {
    let Some(pattern) = &composition.path_pattern else {
        return Some(Vec::new());
    };
    pattern
        .bind(path)?
        .into_iter()
        .map(|value| percent_decode_str(value).decode_utf8().ok())
        .collect()
}

/// The request of a part: method, target and headers from its templates, no body.
fn part_request(
    composition: &Composition,
    part: &Part,
    inputs: &Inputs<'_>,
    outcomes: &[Option<Outcome>],
) -> Result<Request<RequestBody>, PartError> {
    let mut target = render(composition, &part.target, inputs, outcomes, true)?;
    if target.is_empty() {
        target.push('/');
    }
    let uri = Uri::try_from(target.as_str())
        .map_err(|error| PartError::new("invalid-target", format!("target {target:?}: {error}")))?;
    let mut headers = HeaderMap::new();
    for name in &part.forward_headers {
        for value in inputs.head.headers.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    for (name, template) in &part.set_headers {
        let value = render(composition, template, inputs, outcomes, false)?;
        let value = HeaderValue::try_from(value).map_err(|_| {
            PartError::new(
                "invalid-header",
                format!("header {name}: the value is not a valid field value"),
            )
        })?;
        headers.insert(name.clone(), value);
    }
    headers
        .entry(header::ACCEPT)
        .or_insert(HeaderValue::from_static("application/json"));
    // Connection-level fields are not the part's to send (nor an upgrade: a part is one
    // exchange).
    crate::forward::strip_hop_by_hop(&mut headers, true);
    let mut request = Request::new(RequestBody::empty());
    *request.method_mut() = part.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

/// A template with its values: percent-encoded for a target (`in_target`), as they are for a
/// header (where `HeaderValue` refuses what a field cannot carry).
fn render(
    composition: &Composition,
    template: &Template,
    inputs: &Inputs<'_>,
    outcomes: &[Option<Outcome>],
    in_target: bool,
) -> Result<String, PartError> {
    let mut text = String::new();
    for piece in &template.pieces {
        match piece {
            Piece::Text(literal) => text.push_str(literal),
            Piece::Value {
                reference,
                in_query,
            } => {
                let value = value_of(composition, reference, inputs, outcomes)?;
                if !in_target {
                    text.push_str(&value);
                } else if !in_query && (value == "." || value == "..") {
                    // Unreserved, but a whole segment of dots would climb the backend's path.
                    text.push_str(&value.replace('.', "%2E"));
                } else {
                    text.extend(utf8_percent_encode(&value, KEPT));
                }
            }
        }
    }
    Ok(text)
}

/// What a reference reads for this request.
fn value_of<'r>(
    composition: &Composition,
    reference: &Reference,
    inputs: &'r Inputs<'_>,
    outcomes: &'r [Option<Outcome>],
) -> Result<Cow<'r, str>, PartError> {
    let missing = |why: &str| {
        PartError::new(
            "unresolved",
            format!("{}: {why}", describe(composition, reference)),
        )
    };
    match reference {
        Reference::PathParam(index) => inputs
            .path
            .get(*index)
            .map(|value| Cow::Borrowed(value.as_ref()))
            .ok_or_else(|| missing("not bound by pathPattern")),
        Reference::Query(name) => inputs
            .head
            .uri
            .query()
            .and_then(|query| {
                form_urlencoded::parse(query.as_bytes())
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| Cow::Owned(value.into_owned()))
            })
            .ok_or_else(|| missing("the request has no such query parameter")),
        Reference::Header(name) => inputs
            .head
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(Cow::Borrowed)
            .ok_or_else(|| missing("the request has no such header (or it is not text)")),
        Reference::Response { part, pointer } => {
            let Some(Some(Ok(document))) = outcomes.get(*part) else {
                return Err(missing("that part has no document"));
            };
            let document = document.value();
            match document.pointer(pointer) {
                Some(Value::String(text)) => Ok(Cow::Owned(text.clone())),
                Some(value @ (Value::Number(_) | Value::Bool(_))) => {
                    Ok(Cow::Owned(value.to_string()))
                }
                Some(_) => Err(missing("not a string, number or boolean")),
                None => Err(missing("nothing there")),
            }
        }
    }
}

/// A reference as written in the config, for messages.
fn describe(composition: &Composition, reference: &Reference) -> String {
    match reference {
        Reference::PathParam(index) => {
            let name = composition
                .path_pattern
                .as_ref()
                .and_then(|pattern| pattern.names().get(*index))
                .map_or("?", String::as_str);
            format!("{{request.path.{name}}}")
        }
        Reference::Query(name) => format!("{{request.query.{name}}}"),
        Reference::Header(name) => format!("{{request.header.{name}}}"),
        Reference::Response { part, pointer } => {
            let name = composition.parts.get(*part).map_or("?", |p| &*p.name);
            format!("{{response.{name}.json{pointer}}}")
        }
    }
}

/// The 502 of a failed required part.
fn failure(composition: &Composition, part: &Part, error: &PartError) -> ProxyError {
    let mut body = json!({
        "error": "composition-part-failed",
        "composition": &*composition.name,
        "part": &*part.name,
        "reason": error.code,
        "message": error.message,
    });
    if let Some(status) = error.status {
        body["status"] = json!(status);
    }
    let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
    bytes.push(b'\n');
    ProxyError::PartFailed(Box::new(PartFailure {
        body: Bytes::from(bytes),
        detail: format!(
            "required part {:?} of {} failed: {}: {}",
            &*part.name, composition.name, error.code, error.message
        ),
    }))
}

/// The merged document, and whether some part failed.
fn merge(composition: &Composition, outcomes: Vec<Option<Outcome>>) -> (Bytes, bool) {
    let mut errors = Vec::new();
    let mut documents = Vec::with_capacity(outcomes.len());
    for (part, outcome) in composition.parts.iter().zip(outcomes) {
        let outcome = outcome.unwrap_or_else(|| {
            Err(PartError::new(
                "dependency-failed",
                "never started: its dependencies did not settle",
            ))
        });
        match outcome {
            Ok(Document::Text(text))
                if composition.merge == Merge::Keyed && part.select.is_none() =>
            {
                documents.push(Document::Text(text));
            }
            Ok(document) => {
                let mut document = document.value().into_owned();
                let selected = match &part.select {
                    Some(pointer) => document.pointer_mut(pointer).map(Value::take),
                    None => Some(document),
                };
                documents.push(Document::Value(selected.unwrap_or(Value::Null)));
            }
            Err(error) => {
                errors.push(error.entry(part));
                documents.push(Document::Value(Value::Null));
            }
        }
    }
    let is_partial = !errors.is_empty();
    let mut body = match composition.merge {
        Merge::Keyed => {
            // Written key by key: in part order (a JSON map would sort them).
            let mut body = vec![b'{'];
            for (index, (part, document)) in composition.parts.iter().zip(&documents).enumerate() {
                if index > 0 {
                    body.push(b',');
                }
                // A part name needs no escaping ([A-Za-z0-9_-]+), but is written as JSON anyway.
                if let Err(error) = serde_json::to_writer(&mut body, &*part.name) {
                    tracing::error!(%error, "cannot serialize a part name");
                }
                body.push(b':');
                match document {
                    Document::Text(text) => body.extend_from_slice(text),
                    Document::Value(value) => write_json(&mut body, value),
                }
            }
            if is_partial {
                body.extend_from_slice(b",\"errors\":");
                write_json(&mut body, &Value::Array(errors));
            }
            body.push(b'}');
            body
        }
        Merge::Deep => {
            let mut merged = Value::Object(Map::new());
            for document in documents {
                let value = match document {
                    Document::Value(value) => value,
                    text @ Document::Text(_) => text.value().into_owned(),
                };
                deep_merge(&mut merged, value);
            }
            if is_partial && let Value::Object(map) = &mut merged {
                map.insert("errors".to_owned(), Value::Array(errors));
            }
            let mut body = Vec::new();
            write_json(&mut body, &merged);
            body
        }
    };
    body.push(b'\n');
    (Bytes::from(body), is_partial)
}

/// Appends `value` as JSON (serializing a `Value` into a vector cannot fail).
fn write_json(body: &mut Vec<u8>, value: &Value) {
    if let Err(error) = serde_json::to_writer(&mut *body, value) {
        tracing::error!(%error, "cannot serialize a JSON value");
    }
}

/// Merges `from` into `into`: objects key by key, recursively; any other value replaces
/// (`null` included, except a whole part's `null`, which adds nothing).
fn deep_merge(into: &mut Value, from: Value) {
    match (into, from) {
        (_, Value::Null) => {}
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                match into.get_mut(&key) {
                    Some(existing @ Value::Object(_)) if value.is_object() => {
                        deep_merge(existing, value);
                    }
                    _ => {
                        into.insert(key, value);
                    }
                }
            }
        }
        (into, from) => *into = from,
    }
}

#[cfg(test)]
mod tests;
