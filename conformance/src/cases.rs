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
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
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
    /// The cases, in order.
    pub(crate) cases: Vec<CaseSpec>,
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

/// One case: a request and what must come back.
#[derive(Debug, Deserialize)]
pub(crate) struct CaseSpec {
    /// The request to send.
    pub(crate) request: RequestSpec,
    /// What the backend must see; `None` means "the request itself".
    #[serde(default)]
    pub(crate) expected_request: Option<ExpectedRequestSpec>,
    /// What the client must get.
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
}

/// The request of a case. HTTP cases use host/method/path/headers; gRPC cases use path/authority/metadata.
#[derive(Debug, Deserialize)]
pub(crate) struct RequestSpec {
    /// `Host` header; empty means the Gateway address, as Go's client does.
    #[serde(default)]
    pub(crate) host: String,
    /// Method; empty means GET.
    #[serde(default)]
    pub(crate) method: String,
    /// Path, query included; for gRPC the full method path.
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
#[derive(Debug, Deserialize)]
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
