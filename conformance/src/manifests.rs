//! Reads a test's manifests (base plus the test's YAMLs) into plain JSON objects, and gives every Gateway its
//! own loopback address.
//!
//! Owns the `{GATEWAY_CLASS_NAME}` substitution and the `spec.addresses` rewrite (conformance README section
//! 6b, DESIGN section 3 "Binding"). It does not decide which objects the gateway gets: `config_dir` does.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The GatewayClass name substituted for `{GATEWAY_CLASS_NAME}`.
pub(crate) const GATEWAY_CLASS_NAME: &str = "portcullis";

/// The controller name Portcullis handles by default.
pub(crate) const CONTROLLER_NAME: &str = "portcullis.dev/gateway-controller";

/// The base manifests every test loads, relative to `manifests/`.
const BASE_MANIFESTS: &str = "conformance/base/manifests.yaml";

/// Reads the base manifests and then `test_manifests` (relative to `<suite_dir>/manifests/`), with the
/// GatewayClass placeholder replaced. Empty documents are dropped.
pub(crate) fn load(suite_dir: &Path, test_manifests: &[String]) -> anyhow::Result<Vec<Value>> {
    let mut objects = Vec::new();
    for relative in std::iter::once(BASE_MANIFESTS).chain(test_manifests.iter().map(String::as_str))
    {
        objects.extend(load_file(suite_dir, relative)?);
    }
    Ok(objects)
}

/// Reads one manifest file (relative to `<suite_dir>/manifests/`), placeholder replaced, empty documents
/// dropped.
pub(crate) fn load_file(suite_dir: &Path, relative: &str) -> anyhow::Result<Vec<Value>> {
    let path = suite_dir.join("manifests").join(relative);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .replace("{GATEWAY_CLASS_NAME}", GATEWAY_CLASS_NAME);
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text)
        .map_err(|error| anyhow::anyhow!("parsing {}: {error}", path.display()))?;
    Ok(documents
        .into_iter()
        .filter(|document| !document.is_null())
        .collect())
}

/// The GatewayClass that hands [`GATEWAY_CLASS_NAME`] to Portcullis.
pub(crate) fn gateway_class() -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": { "name": GATEWAY_CLASS_NAME },
        "spec": { "controllerName": CONTROLLER_NAME },
    })
}

/// Sets `metadata.creationTimestamp` to `at` on every object that has none, as the API server does when it
/// creates them (standalone mode plays the API server).
pub(crate) fn stamp_creation(objects: &mut [Value], at: &str) {
    for object in objects.iter_mut() {
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata
                .entry("creationTimestamp")
                .or_insert_with(|| Value::String(at.to_owned()));
        }
    }
}

/// `kind` of an object ("" when missing).
pub(crate) fn kind(object: &Value) -> &str {
    object.get("kind").and_then(Value::as_str).unwrap_or("")
}

/// `metadata.name` ("" when missing).
pub(crate) fn name(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.namespace`, `default` when missing (as kubectl does).
pub(crate) fn namespace(object: &Value) -> &str {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
}

/// Where one Gateway can be reached.
#[derive(Debug, Clone)]
pub(crate) struct GatewayEndpoint {
    /// The loopback address written into `spec.addresses`.
    pub(crate) ip: Ipv4Addr,
    /// The first listener's port: where the suite sends requests unless a case names a listener port.
    pub(crate) first_port: u16,
    /// Every listener's port by listener name (`WaitForGatewayAddress` with a listener name).
    pub(crate) listener_ports: BTreeMap<String, u16>,
}

/// Every Gateway of a test, by `namespace/name`.
pub(crate) type GatewayEndpoints = BTreeMap<String, GatewayEndpoint>;

/// Gives the `n`-th Gateway (in manifest order) the address `127.1.<block>.<n + 1>` and writes it into
/// `spec.addresses` (type `IPAddress`), replacing any addresses the manifest had. Listener ports stay as
/// written. `block` keeps tests that run at the same time apart.
pub(crate) fn assign_gateway_addresses(
    objects: &mut [Value],
    block: u8,
) -> anyhow::Result<GatewayEndpoints> {
    let mut endpoints = GatewayEndpoints::new();
    for object in objects
        .iter_mut()
        .filter(|object| kind(object) == "Gateway")
    {
        let key = format!("{}/{}", namespace(object), name(object));
        let host = u8::try_from(endpoints.len() + 1)
            .ok()
            .filter(|host| *host < 255)
            .context("more than 254 Gateways in one test")?;
        let ip = Ipv4Addr::new(127, 1, block, host);
        let first_port = object
            .pointer("/spec/listeners/0/port")
            .and_then(Value::as_u64)
            .and_then(|port| u16::try_from(port).ok())
            .with_context(|| format!("Gateway {key} has no listener with a port"))?;
        let listener_ports = object
            .pointer("/spec/listeners")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|listener| {
                let name = listener.get("name").and_then(Value::as_str)?;
                let port = listener.get("port").and_then(Value::as_u64)?;
                Some((name.to_owned(), u16::try_from(port).ok()?))
            })
            .collect();
        let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
            bail!("Gateway {key} has no spec");
        };
        spec.insert(
            "addresses".to_owned(),
            json!([{ "type": "IPAddress", "value": ip.to_string() }]),
        );
        endpoints.insert(
            key,
            GatewayEndpoint {
                ip,
                first_port,
                listener_ports,
            },
        );
    }
    Ok(endpoints)
}
