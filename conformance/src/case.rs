//! Runs one case: builds the request the suite would send, repeats it until it converges, then runs the case's
//! extra checks (mirrors, weighted distribution).
//!
//! Owns the case-level defaults of the suite (`MakeRequest`): the Gateway and listener port to use, the `Host`,
//! `X-Echo-Set-Header` (always sent, even empty), `expected_request: null` meaning the request itself, `{uuid}`
//! templates (a fresh UUID per attempt) and the mirror request id. gRPC cases go through the gRPC client, L4
//! exchanges through `l4_case`; a case's status assertions (`status_check`) are checked after its exchange, or
//! alone in a status-only case.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use http::Method;

use crate::cases::{CaseSpec, MirrorSpec, TestSpec};
use crate::compare::{Expectation, compare};
use crate::convergence::{CASE_DEADLINE, CONSECUTIVE_PASSES, await_convergence};
use crate::distribution::{Sampling, check};
use crate::exchange::{Clients, Outgoing, REQUEST_TIMEOUT, Transport, default_host, round_trip};
use crate::grpc;
use crate::l4_case::run_l4_case;
use crate::manifests::GatewayEndpoints;
use crate::mirror::{expect_mirrored, expect_mirrored_share};
use crate::status_check::{StatusSource, expect_all};
use crate::tls::TlsMaterial;
use crate::uuid;
use crate::workload::Workloads;

/// The query parameter the suite appends to mirrored requests so that their log line is unique.
const REQUEST_ID_PARAMETER: &str = "gateway-api-conformance-request-id";

/// Everything a case needs from its test.
pub(crate) struct TestContext<'a> {
    /// The test.
    pub(crate) test: &'a TestSpec,
    /// Where each Gateway listens.
    pub(crate) gateways: &'a GatewayEndpoints,
    /// The echo backends (for mirror logs).
    pub(crate) workloads: &'a Workloads,
    /// The HTTP clients.
    pub(crate) clients: &'a Clients,
    /// The run's certificates.
    pub(crate) tls: &'a TlsMaterial,
    /// Where status assertions read status.
    pub(crate) status: StatusSource<'a>,
}

/// Runs case `index` of the test; the error says why it failed.
pub(crate) async fn run_case(
    context: &TestContext<'_>,
    index: usize,
    case: &CaseSpec,
) -> Result<(), String> {
    let gateway_key = case.gateway.as_deref().unwrap_or(&context.test.gateway);
    let gateway = context
        .gateways
        .get(gateway_key)
        .ok_or_else(|| format!("no Gateway {gateway_key} in the test's manifests"))?;
    let port = match &case.listener {
        Some(listener) => *gateway.listener_ports.get(listener).ok_or_else(|| {
            format!("Gateway {gateway_key} has no listener {listener:?} in the manifests")
        })?,
        None => case.listener_port.unwrap_or(gateway.first_port),
    };
    let ip = IpAddr::V4(gateway.ip);
    let is_grpc =
        context.test.transport.as_deref() == Some("grpc-h2c") || case.request.grpc_method.is_some();
    if case.is_status_only() {
        // Nothing to send: only the status assertions below.
    } else if let Some(kind) = case.exchange {
        run_l4_case(context, index, case, kind, SocketAddr::new(ip, port)).await?;
    } else if is_grpc {
        run_grpc_case(context, index, case, SocketAddr::new(ip, port)).await?;
    } else {
        run_http_case(context, index, case, ip, port).await?;
    }
    if case.status.is_empty() {
        Ok(())
    } else {
        expect_all(&context.status, &case.status).await
    }
}

/// An HTTP case.
async fn run_http_case(
    context: &TestContext<'_>,
    index: usize,
    case: &CaseSpec,
    ip: IpAddr,
    port: u16,
) -> Result<(), String> {
    let plan = HttpPlan::new(context, case, ip, port)?;
    await_convergence(CASE_DEADLINE, CONSECUTIVE_PASSES, || {
        plan.attempt(context.clients, &[])
    })
    .await?;
    let (exact_mirrors, share_mirrors): (Vec<&MirrorSpec>, Vec<&MirrorSpec>) = case
        .mirrored_to
        .iter()
        .partition(|mirror| mirror.percent.is_none());
    if !exact_mirrors.is_empty() {
        expect_mirrored(context.workloads, &exact_mirrors, &plan.request_path).await?;
    }
    if !share_mirrors.is_empty() {
        let send_one =
            || await_convergence(CASE_DEADLINE, 1, || plan.attempt(context.clients, &[]));
        expect_mirrored_share(
            context.workloads,
            &share_mirrors,
            &plan.request_path,
            send_one,
        )
        .await?;
    }
    if let Some(distribution) = context.test.distribution.as_ref().filter(|_| index == 0) {
        let send = || async {
            let jitter = rand::random_range(0..10_000).to_string();
            plan.attempt_for_pod(context.clients, &[("X-Jitter".to_owned(), jitter)])
                .await
        };
        check(&Sampling::new(distribution), send).await?;
    }
    Ok(())
}

/// The parts of an HTTP case that stay the same across attempts.
struct HttpPlan<'a> {
    /// The case.
    case: &'a CaseSpec,
    /// The gateway listener.
    addr: SocketAddr,
    /// How to send.
    transport: Transport,
    /// The `Host` header.
    host: String,
    /// The request URL's host, for relative redirects.
    request_authority: String,
    /// The request target, `{uuid}` still in it, request id appended for mirror cases.
    request_path: String,
    /// The expected backend RequestURI, same substitutions pending.
    expected_path: String,
    /// Headers sent on every attempt, `X-Echo-Set-Header` included.
    headers: Vec<(String, String)>,
    /// The request method.
    method: Method,
}

impl<'a> HttpPlan<'a> {
    /// Applies the suite's request defaults to `case`.
    fn new(
        context: &TestContext<'_>,
        case: &'a CaseSpec,
        ip: IpAddr,
        port: u16,
    ) -> Result<Self, String> {
        let transport = transport(context, case)?;
        let request_authority = default_host(ip, port, transport.scheme());
        let host = if case.request.host.is_empty() {
            request_authority.clone()
        } else {
            case.request.host.clone()
        };
        let method_name = if case.request.method.is_empty() {
            "GET"
        } else {
            &case.request.method
        };
        let method = Method::from_bytes(method_name.as_bytes())
            .map_err(|_| format!("invalid request method {method_name:?}"))?;
        let mut headers: Vec<(String, String)> = case
            .request
            .headers
            .iter()
            .flatten()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let echo_set: Vec<String> = case
            .backend_set_response_headers
            .iter()
            .map(|(name, value)| format!("{name}:{value}"))
            .collect();
        headers.push(("X-Echo-Set-Header".to_owned(), echo_set.join(",")));
        let mut request_path = case.request.path.clone();
        let mut expected_path = match &case.expected_request {
            Some(expected) => expected.path.clone(),
            None => case.request.path.clone(),
        };
        if case
            .mirrored_to
            .iter()
            .any(|mirror| mirror.percent.is_none())
        {
            let request_id = uuid::new_v4();
            request_path = with_query_parameter(&request_path, REQUEST_ID_PARAMETER, &request_id);
            if !expected_path.is_empty() {
                expected_path =
                    with_query_parameter(&expected_path, REQUEST_ID_PARAMETER, &request_id);
            }
        }
        Ok(Self {
            case,
            addr: SocketAddr::new(ip, port),
            transport,
            host,
            request_authority,
            request_path,
            expected_path,
            headers,
            method,
        })
    }

    /// One round trip compared with the case.
    async fn attempt(
        &self,
        clients: &Clients,
        extra_headers: &[(String, String)],
    ) -> Result<(), String> {
        self.attempt_for_pod(clients, extra_headers)
            .await
            .map(|_pod| ())
    }

    /// One round trip compared with the case; returns the answering pod.
    async fn attempt_for_pod(
        &self,
        clients: &Clients,
        extra_headers: &[(String, String)],
    ) -> Result<String, String> {
        let fresh_uuid = self.case.request_template.then(uuid::new_v4);
        let instantiate = |path: &str| match &fresh_uuid {
            Some(value) => path.replace("{uuid}", value),
            None => path.to_owned(),
        };
        let path = instantiate(&self.request_path);
        let expected_path = instantiate(&self.expected_path);
        let mut headers = self.headers.clone();
        headers.extend_from_slice(extra_headers);
        let outgoing = Outgoing {
            addr: self.addr,
            transport: self.transport.clone(),
            method: self.method.clone(),
            host: self.host.clone(),
            path: path.clone(),
            headers,
        };
        let captured = round_trip(clients, &outgoing).await?;
        let request = &self.case.request;
        let (host, method, request_headers, absent, http_port) = match &self.case.expected_request {
            None => (
                request.host.as_str(),
                self.method.as_str(),
                request.headers.as_ref(),
                &[][..],
                None,
            ),
            Some(expected) => (
                expected.host.as_str(),
                if expected.method.is_empty() {
                    "GET"
                } else {
                    expected.method.as_str()
                },
                expected.headers.as_ref(),
                expected.absent_headers.as_slice(),
                expected.http_port.as_deref(),
            ),
        };
        let expectation = Expectation {
            statuses: self.case.response.statuses(),
            scheme: self.transport.scheme(),
            request_authority: &self.request_authority,
            request_path: path.split('?').next().unwrap_or(""),
            host,
            path: &expected_path,
            method,
            request_headers,
            absent_request_headers: absent,
            http_port,
            namespace: &self.case.namespace,
            backend: self.case.backend.as_deref().unwrap_or(""),
            response: &self.case.response,
            redirect: self.case.redirect.as_ref(),
        };
        compare(&expectation, &captured).map(|()| captured.request.pod)
    }
}

/// The transport a case asks for: HTTPS when it has `tls`, h2c for `H2C_PRIOR_KNOWLEDGE`, else HTTP/1.1.
fn transport(context: &TestContext<'_>, case: &CaseSpec) -> Result<Transport, String> {
    if let Some(tls) = &case.tls {
        if let Some(protocol) = tls
            .protocol
            .as_deref()
            .filter(|protocol| !protocol.is_empty())
        {
            return Err(format!(
                "TLS protocol {protocol:?} is not implemented in the runner"
            ));
        }
        let pin = context.tls.pin(&tls.server_cert_secret).ok_or_else(|| {
            format!(
                "the runner generates no certificate for Secret {}",
                tls.server_cert_secret
            )
        })?;
        return Ok(Transport::Https {
            sni: tls.sni.clone(),
            pin,
        });
    }
    match case.request.protocol.as_deref().unwrap_or("") {
        "" | "HTTP" | "HTTP/1.1" => Ok(Transport::Http1),
        "H2C_PRIOR_KNOWLEDGE" => Ok(Transport::H2c),
        other => Err(format!(
            "request protocol {other:?} is not implemented in the runner"
        )),
    }
}

/// `path` with `name=value` added to its query.
fn with_query_parameter(path: &str, name: &str, value: &str) -> String {
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}{name}={value}")
}

/// A gRPC case.
async fn run_grpc_case(
    context: &TestContext<'_>,
    index: usize,
    case: &CaseSpec,
    addr: SocketAddr,
) -> Result<(), String> {
    let code_name = case.response.grpc_code.as_deref().unwrap_or("OK");
    let expected_code = grpc::code_from_name(code_name)
        .ok_or_else(|| format!("unknown gRPC code {code_name:?} in the case"))?;
    let authority = if case.request.authority.is_empty() {
        // grpc-go's default authority is the dial target.
        addr.to_string()
    } else {
        case.request.authority.clone()
    };
    let attempt = |metadata: BTreeMap<String, String>| {
        let authority = authority.as_str();
        async move {
            let outcome = grpc::call(
                addr,
                authority,
                &case.request.path,
                &metadata,
                REQUEST_TIMEOUT,
            )
            .await;
            compare_grpc(case, expected_code, &outcome)
        }
    };
    await_convergence(CASE_DEADLINE, CONSECUTIVE_PASSES, || async {
        attempt(case.request.metadata.clone()).await.map(|_pod| ())
    })
    .await?;
    if let Some(distribution) = context.test.distribution.as_ref().filter(|_| index == 0) {
        let send = || {
            let mut metadata = case.request.metadata.clone();
            metadata.insert(
                "x-jitter".to_owned(),
                rand::random_range(0..10_000).to_string(),
            );
            attempt(metadata)
        };
        check(&Sampling::new(distribution), send).await?;
    }
    Ok(())
}

/// The suite's gRPC `compareResponse`; returns the answering pod.
fn compare_grpc(
    case: &CaseSpec,
    expected_code: u32,
    outcome: &grpc::GrpcOutcome,
) -> Result<String, String> {
    if outcome.code != expected_code {
        let detail = if outcome.message.is_empty() {
            String::new()
        } else {
            format!(" ({})", outcome.message)
        };
        return Err(format!(
            "expected status code to be {}, but got {}{detail}",
            grpc::describe_code(expected_code),
            grpc::describe_code(outcome.code)
        ));
    }
    if outcome.code != grpc::OK {
        return Ok(String::new());
    }
    let assertions = outcome.assertions.clone().unwrap_or_default();
    if assertions.fully_qualified_method != case.request.path {
        return Err(format!(
            "expected path to be {}, got {}",
            case.request.path, assertions.fully_qualified_method
        ));
    }
    if !case.namespace.is_empty() && case.namespace != assertions.namespace {
        return Err(format!(
            "expected namespace to be {}, got {}",
            case.namespace, assertions.namespace
        ));
    }
    let backend = case.backend.as_deref().unwrap_or("");
    if !assertions.pod.starts_with(backend) {
        return Err(format!(
            "expected pod name to start with {backend}, got {:?}",
            assertions.pod
        ));
    }
    Ok(assertions.pod)
}

/// The suite's generated case name (`GetTestCaseName`), or the case's own name; marked when the case is
/// Portcullis's addition to the upstream test.
pub(crate) fn label(index: usize, case: &CaseSpec) -> String {
    let name = suite_label(index, case);
    if case.added.is_some() {
        format!("{name} [added by Portcullis]")
    } else {
        name
    }
}

/// The suite's generated case name (`GetTestCaseName`), or the case's own name.
fn suite_label(index: usize, case: &CaseSpec) -> String {
    if let Some(name) = &case.name {
        return name.clone();
    }
    let request = &case.request;
    let target = if request.grpc_method.is_some() {
        format!("{}{}", request.authority, request.path)
    } else {
        format!("{}{}", request.host, request.path)
    };
    let headers = if request
        .headers
        .as_ref()
        .is_some_and(|headers| !headers.is_empty())
    {
        " with headers"
    } else {
        ""
    };
    match case
        .backend
        .as_deref()
        .filter(|backend| !backend.is_empty())
    {
        Some(backend) => format!("{index} request to '{target}'{headers} should go to {backend}"),
        None => match &case.response.grpc_code {
            Some(code) => format!("{index} request to '{target}'{headers} should receive {code}"),
            None => {
                let statuses = case.response.statuses();
                let statuses = match statuses.as_slice() {
                    [single] => single.to_string(),
                    several => format!("{several:?}"),
                };
                format!("{index} request to '{target}'{headers} should receive a {statuses}")
            }
        },
    }
}
