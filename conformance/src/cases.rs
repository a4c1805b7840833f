//! The `cases.json` schema (conformance README section 7), deserialised as written, and test selection.
//!
//! Owns reading the file and picking tests by name. It does not interpret the cases: defaults such as
//! "`expected_request: null` means the request itself" are applied where the cases are compared.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

/// The whole `cases.json`.
#[derive(Debug, Deserialize)]
pub(crate) struct Suite {
    /// Every test, in file order.
    pub(crate) tests: Vec<TestSpec>,
}

impl Suite {
    /// Reads `<suite_dir>/cases.json`.
    pub(crate) fn load(suite_dir: &Path) -> anyhow::Result<Self> {
        let path = suite_dir.join("cases.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let suite: Self =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        suite
            .validate()
            .with_context(|| format!("checking {}", path.display()))?;
        Ok(suite)
    }

    /// What serde cannot check: every case is an HTTP/gRPC request (a path), an L4 exchange, or status
    /// assertions; runtime changes do exactly one thing, before a case that exists.
    fn validate(&self) -> anyhow::Result<()> {
        for test in &self.tests {
            for (index, case) in test.cases.iter().enumerate() {
                let is_request = !case.request.path.is_empty();
                if !is_request && case.exchange.is_none() && case.status.is_empty() {
                    bail!(
                        "{} case {index}: no request path, no exchange and no status assertion",
                        test.name
                    );
                }
                if is_request && case.exchange.is_some() {
                    bail!("{} case {index}: both a request and an exchange", test.name);
                }
            }
            for change in &test.runtime_changes {
                if change.delete.is_some() == change.create.is_some() {
                    bail!(
                        "{}: a runtime change must either delete or create one object",
                        test.name
                    );
                }
                if change.before_case >= test.cases.len() {
                    bail!(
                        "{}: a runtime change before case {}, which does not exist",
                        test.name,
                        change.before_case
                    );
                }
            }
        }
        Ok(())
    }

    /// The tests named in `only` (all of them when it is empty), in file order, each with its index in the
    /// file. A name that matches no test is an error.
    pub(crate) fn select(self, only: &[String]) -> anyhow::Result<Vec<(usize, TestSpec)>> {
        let unknown: Vec<&String> = only
            .iter()
            .filter(|name| !self.tests.iter().any(|test| &test.name == *name))
            .collect();
        if !unknown.is_empty() {
            bail!("--only names tests that cases.json does not have: {unknown:?}");
        }
        Ok(self
            .tests
            .into_iter()
            .enumerate()
            .filter(|(_, test)| only.is_empty() || only.contains(&test.name))
            .collect())
    }
}

/// One conformance test.
#[derive(Debug, Deserialize)]
pub(crate) struct TestSpec {
    /// The Go `ShortName`.
    pub(crate) name: String,
    /// Manifest paths relative to `manifests/`, e.g. `conformance/tests/x.yaml`.
    pub(crate) manifests: Vec<String>,
    /// The Gateway the cases go to, `namespace/name`, unless a case names its own.
    pub(crate) gateway: String,
    /// `grpc-h2c`, `h2c-prior-knowledge`, `https`, or absent for plain HTTP/1.1.
    #[serde(default)]
    pub(crate) transport: Option<String>,
    /// Free-text instructions for a standalone harness.
    #[serde(default)]
    pub(crate) notes: Option<String>,
    /// Weighted-distribution check run after the first case.
    #[serde(default)]
    pub(crate) distribution: Option<Distribution>,
    /// Changes the Go test makes to the cluster between cases (TCPRoute/UDPRoute tests; the HTTP tests'
    /// changes are known to `runtime_change` by test name).
    #[serde(default)]
    pub(crate) runtime_changes: Vec<RuntimeChangeSpec>,
    /// The cases, in order.
    pub(crate) cases: Vec<CaseSpec>,
}

/// One change to the test's objects, made right before case `before_case` runs: exactly one of `delete` and
/// `create` is set.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RuntimeChangeSpec {
    /// The index of the first case that must see the change.
    pub(crate) before_case: usize,
    /// The object to delete.
    #[serde(default)]
    pub(crate) delete: Option<ObjectRefSpec>,
    /// The object to create (a manifest the Go test builds in code, transcribed).
    #[serde(default)]
    pub(crate) create: Option<serde_json::Value>,
    /// Seconds to wait before the change (the Go test sleeps so that a created route is strictly newer).
    #[serde(default)]
    pub(crate) pause_seconds: u64,
}

/// An object by kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct ObjectRefSpec {
    /// Kind, e.g. `ReferenceGrant`.
    pub(crate) kind: String,
    /// Namespace.
    pub(crate) namespace: String,
    /// Name.
    pub(crate) name: String,
}

/// Expected shares of traffic per backend (Service name) plus the sampling parameters.
#[derive(Debug, Deserialize)]
pub(crate) struct Distribution {
    /// Requests per sample (default 500).
    #[serde(default)]
    pub(crate) requests: Option<usize>,
    /// Allowed absolute deviation of each share (default 0.05).
    #[serde(default)]
    pub(crate) tolerance: Option<f64>,
    /// Requests in flight at once (default 10).
    #[serde(default)]
    pub(crate) concurrency: Option<usize>,
    /// How many samples may be taken before the check fails (default 10).
    #[serde(default)]
    pub(crate) max_retries: Option<usize>,
    /// Backend name to expected share.
    #[serde(flatten)]
    pub(crate) weights: BTreeMap<String, f64>,
}

/// One case: a request and what must come back (HTTP and gRPC cases), an L4 exchange (`exchange`), or status
/// assertions only (`status`).
#[derive(Debug, Deserialize)]
pub(crate) struct CaseSpec {
    /// The request to send (HTTP and gRPC cases; absent in L4 and status cases).
    #[serde(default)]
    pub(crate) request: RequestSpec,
    /// What the backend must see; `None` means "the request itself".
    #[serde(default)]
    pub(crate) expected_request: Option<ExpectedRequestSpec>,
    /// What the client must get (HTTP and gRPC cases).
    #[serde(default)]
    pub(crate) response: ResponseSpec,
    /// The parsed `Location` a 3xx must carry.
    #[serde(default)]
    pub(crate) redirect: Option<RedirectSpec>,
    /// Sent to the echo server in `X-Echo-Set-Header`.
    #[serde(default)]
    pub(crate) backend_set_response_headers: BTreeMap<String, String>,
    /// Backends that must receive a copy of the request.
    #[serde(default)]
    pub(crate) mirrored_to: Vec<MirrorSpec>,
    /// Pod-name prefix of the backend that must answer; `None` matches any.
    #[serde(default)]
    pub(crate) backend: Option<String>,
    /// The namespace the echo reply must report (exact).
    #[serde(default)]
    pub(crate) namespace: String,
    /// Overrides the test's Gateway.
    #[serde(default)]
    pub(crate) gateway: Option<String>,
    /// The listener port to connect to; default the Gateway's first listener.
    #[serde(default)]
    pub(crate) listener_port: Option<u16>,
    /// HTTPS parameters.
    #[serde(default)]
    pub(crate) tls: Option<TlsSpec>,
    /// The Go `TestCaseName`, when the test gave one.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// Whether `{uuid}` in the path is replaced by a fresh UUID on every attempt.
    #[serde(default)]
    pub(crate) request_template: bool,
    /// An L4 exchange with the Gateway listener instead of an HTTP request.
    #[serde(default)]
    pub(crate) exchange: Option<ExchangeKind>,
    /// The listener (by name) an L4 exchange goes to; default the Gateway's first listener.
    #[serde(default)]
    pub(crate) listener: Option<String>,
    /// UDP: the `service` the echo must report, when set.
    #[serde(default)]
    pub(crate) service: Option<String>,
    /// UDP: the datagram to send; DNS: the name to query.
    #[serde(default)]
    pub(crate) payload: Option<String>,
    /// What an L4 exchange must end with (default: the echo answers).
    #[serde(default)]
    pub(crate) expect: L4Outcome,
    /// L4: after the case converged, this many more exchanges must each pass ("only the oldest route gets
    /// traffic").
    #[serde(default)]
    pub(crate) samples: Option<usize>,
    /// Status assertions (the Go test's `...MustHaveCondition`, `...MustHaveParents`, ...), each polled until
    /// it holds.
    #[serde(default)]
    pub(crate) status: Vec<StatusAssertion>,
    /// Set on cases that are not in the upstream test: why Portcullis checks this too.
    #[serde(default)]
    pub(crate) added: Option<String>,
}

impl CaseSpec {
    /// Whether this case only asserts status: no request, no exchange.
    pub(crate) fn is_status_only(&self) -> bool {
        self.exchange.is_none() && self.request.path.is_empty() && !self.status.is_empty()
    }
}

/// The L4 exchange of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ExchangeKind {
    /// echo-basic's TCP line protocol (`conformance/utils/tcp`).
    Tcp,
    /// One datagram to echo-basic's UDP echo (`conformance/utils/udp`).
    Udp,
    /// One DNS query (`udproute-simple.go`, `dns.Exchange` against coredns).
    Dns,
}

/// How an L4 exchange must end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum L4Outcome {
    /// The backend answers (and, where the case says so, is the expected one).
    #[default]
    Answer,
    /// TCP: the connection is refused, or closed (FIN or RST) before any byte arrives.
    Closed,
    /// UDP/DNS: no datagram comes back.
    NoAnswer,
}

/// One status assertion, named after the Go helper it transcribes.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "assert", rename_all = "snake_case")]
pub(crate) enum StatusAssertion {
    /// `<Kind>RouteMustHaveCondition`: some parent entry naming `gateway` has the condition.
    RouteCondition {
        /// Route kind (`TCPRoute`, `UDPRoute`).
        kind: String,
        /// `namespace/name` of the route.
        route: String,
        /// `namespace/name` of the Gateway.
        gateway: String,
        /// The condition (empty status or reason match any).
        condition: ConditionSpec,
    },
    /// `<Kind>RouteMustHaveParents`: for each expected parent, an entry of our controller with that Gateway
    /// (group, kind, name; namespace equal or, unless required, absent) and the conditions.
    RouteParents {
        /// Route kind.
        kind: String,
        /// `namespace/name` of the route.
        route: String,
        /// The parents expected.
        parents: Vec<ParentSpec>,
        /// Whether the entry must name the Gateway's namespace.
        #[serde(default)]
        namespace_required: bool,
    },
    /// `GatewayStatusMustHaveListeners`: exactly these listeners (by name), each with at least these supported
    /// kinds, this many attached routes and these conditions.
    Listeners {
        /// `namespace/name` of the Gateway.
        gateway: String,
        /// The listeners expected.
        listeners: Vec<ListenerSpec>,
    },
    /// `GatewayListenersMustHaveConditions`: every listener has these conditions.
    ListenerConditions {
        /// `namespace/name` of the Gateway.
        gateway: String,
        /// The conditions.
        conditions: Vec<ConditionSpec>,
    },
    /// `GatewayMustHaveZeroRoutes`: no listener in status, or exactly one with no attached route.
    ZeroRoutes {
        /// `namespace/name` of the Gateway.
        gateway: String,
    },
    /// `WaitForGatewayAddress`: the Gateway's status has an address.
    GatewayAddress {
        /// `namespace/name` of the Gateway.
        gateway: String,
    },
}

/// An expected condition; an empty `status` or `reason` matches any.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ConditionSpec {
    /// Condition type.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// `True`, `False`, or empty.
    #[serde(default)]
    pub(crate) status: String,
    /// The reason, or empty.
    #[serde(default)]
    pub(crate) reason: String,
}

/// An expected route parent entry.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ParentSpec {
    /// `namespace/name` of the Gateway.
    pub(crate) gateway: String,
    /// Conditions the entry must have.
    pub(crate) conditions: Vec<ConditionSpec>,
}

/// An expected listener status.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ListenerSpec {
    /// Listener name.
    pub(crate) name: String,
    /// Route kinds (group `gateway.networking.k8s.io`) that must be among `supportedKinds`.
    #[serde(default)]
    pub(crate) supported_kinds: Vec<String>,
    /// `attachedRoutes`.
    pub(crate) attached_routes: u64,
    /// Conditions the listener must have.
    #[serde(default)]
    pub(crate) conditions: Vec<ConditionSpec>,
}

/// The request of a case. HTTP cases use host/method/path/headers; gRPC cases use path/authority/metadata.
/// L4 and status cases have none (the default, with an empty path).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RequestSpec {
    /// `Host` header; empty means the Gateway address, as Go's client does.
    #[serde(default)]
    pub(crate) host: String,
    /// Method; empty means GET.
    #[serde(default)]
    pub(crate) method: String,
    /// Path, query included; for gRPC the full method path. Required of HTTP and gRPC cases (checked by
    /// [`Suite::load`]).
    #[serde(default)]
    pub(crate) path: String,
    /// Request headers (Go's map: one value each).
    #[serde(default)]
    pub(crate) headers: Option<BTreeMap<String, String>>,
    /// `H2C_PRIOR_KNOWLEDGE`, `H2`, `HTTPS`, or absent for HTTP/1.1.
    #[serde(default)]
    pub(crate) protocol: Option<String>,
    /// gRPC: the `:authority`; empty means the Gateway address.
    #[serde(default)]
    pub(crate) authority: String,
    /// gRPC: request metadata.
    #[serde(default)]
    pub(crate) metadata: BTreeMap<String, String>,
    /// gRPC: the method name (`Echo`, `EchoTwo`, `EchoThree`).
    #[serde(default)]
    pub(crate) grpc_method: Option<String>,
}

/// What the backend must receive.
#[derive(Debug, Deserialize)]
pub(crate) struct ExpectedRequestSpec {
    /// Checked only when not empty.
    #[serde(default)]
    pub(crate) host: String,
    /// Empty means GET.
    #[serde(default)]
    pub(crate) method: String,
    /// Compared exactly with the echo's RequestURI.
    #[serde(default)]
    pub(crate) path: String,
    /// Headers that must be present with these values; `None` checks none.
    #[serde(default)]
    pub(crate) headers: Option<BTreeMap<String, String>>,
    /// Headers that must be absent.
    #[serde(default)]
    pub(crate) absent_headers: Vec<String>,
    /// The echo's `httpPort`, when set.
    #[serde(default)]
    pub(crate) http_port: Option<String>,
}

/// What the client must receive.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ResponseSpec {
    /// One status or a list of acceptable ones; absent means 200.
    #[serde(default)]
    pub(crate) status: Option<StatusSpec>,
    /// Response headers that must have these values.
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    /// Response headers that must be absent.
    #[serde(default)]
    pub(crate) absent_headers: Vec<String>,
    /// Response headers whose value must be one of the listed ones.
    #[serde(default)]
    pub(crate) valid_header_values: BTreeMap<String, Vec<String>>,
    /// Compare header values with all whitespace removed.
    #[serde(default)]
    pub(crate) ignore_whitespace: bool,
    /// gRPC: the expected status code name (`codes.OK`, `Unimplemented`, ...).
    #[serde(default)]
    pub(crate) grpc_code: Option<String>,
}

impl ResponseSpec {
    /// The acceptable statuses (default `[200]`).
    pub(crate) fn statuses(&self) -> Vec<u16> {
        match &self.status {
            None => vec![200],
            Some(StatusSpec::One(code)) => vec![*code],
            Some(StatusSpec::Many(codes)) if codes.is_empty() => vec![200],
            Some(StatusSpec::Many(codes)) => codes.clone(),
        }
    }
}

/// `status` is written either as a number or as a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum StatusSpec {
    /// A single status.
    One(u16),
    /// Any of these.
    Many(Vec<u16>),
}

/// The expected parsed `Location`; empty fields take the suite's defaults.
#[derive(Debug, Deserialize)]
pub(crate) struct RedirectSpec {
    /// Empty: the request's scheme.
    #[serde(default)]
    pub(crate) scheme: String,
    /// Empty: whatever host the Location has.
    #[serde(default)]
    pub(crate) host: String,
    /// Empty: 80 or absent for http, 443 or absent for https.
    #[serde(default, deserialize_with = "string_or_number")]
    pub(crate) port: String,
    /// Empty: the request path.
    #[serde(default)]
    pub(crate) path: String,
}

/// A backend that must receive a mirrored copy.
#[derive(Debug, Deserialize)]
pub(crate) struct MirrorSpec {
    /// Service name.
    pub(crate) name: String,
    /// Service namespace.
    pub(crate) namespace: String,
    /// The share of requests that must be mirrored, when only some are.
    #[serde(default)]
    pub(crate) percent: Option<u32>,
}

/// HTTPS parameters of a case.
#[derive(Debug, Deserialize)]
pub(crate) struct TlsSpec {
    /// Server name sent in the ClientHello.
    pub(crate) sni: String,
    /// `namespace/name` of the Secret whose certificate the gateway must present.
    pub(crate) server_cert_secret: String,
    /// `H2` for HTTP/2 over TLS; absent for HTTP/1.1.
    #[serde(default)]
    pub(crate) protocol: Option<String>,
}

/// Accepts `"8083"` or `8083`.
fn string_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(text) => Ok(text),
        serde_json::Value::Number(number) => Ok(number.to_string()),
        serde_json::Value::Null => Ok(String::new()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string or a number, got {other}"
        ))),
    }
}
