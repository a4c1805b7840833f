//! The core kinds we read (`Service`, `EndpointSlice`, `Namespace`, `Secret`, `ConfigMap`)
//! with only the fields Portcullis reads, under our compact [`ObjectMeta`].
//!
//! Services and EndpointSlices are the most numerous objects (one of each per backend
//! Service, more slices in large clusters), and the full Kubernetes types carry every field of
//! the API: a `Service` was 824 bytes before its first string, an `Endpoint` ~350. These keep
//! the same field names and serde names, so a document reads the same way (fields we do not
//! read are ignored, as the Kubernetes types ignore unknown ones), and the store holds a third
//! of the memory. Unlike the Kubernetes types, they do not check that `apiVersion` is `v1`:
//! `Kind::from_api` has already matched the group.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

use crate::Name;
use crate::object_meta::ObjectMeta;

/// core/v1 `Namespace`: its labels are what `allowedRoutes.namespaces.selector` matches.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    /// Name and labels.
    #[serde(default)]
    pub metadata: ObjectMeta,
}

/// core/v1 `Secret`: certificates, keys, credentials.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// Name and namespace.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The values, base64 in the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, ByteString>>,
    /// Values written as text (merged over `data` by the API server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_data: Option<BTreeMap<String, String>>,
    /// `kubernetes.io/tls`, `Opaque`, ...
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

/// core/v1 `ConfigMap`: CA bundles (`ca.crt`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMap {
    /// Name and namespace.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Binary values, base64 in the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_data: Option<BTreeMap<String, ByteString>>,
    /// Text values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
}

/// core/v1 `Service`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// Name, namespace, labels.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the Service routes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<ServiceSpec>,
}

/// `Service.spec`: its type, external name and ports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// `ClusterIP` (the default), `ExternalName`, ...
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The DNS name of an `ExternalName` Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_name: Option<String>,
    /// Its ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<ServicePort>>,
}

/// One port of a Service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// Its name (required when a Service has several ports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    /// The port number.
    pub port: i32,
    /// The endpoints' port: a number or a container port name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    /// The application protocol (`kubernetes.io/h2c`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// `TCP` (the default), `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// discovery.k8s.io/v1 `EndpointSlice`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSlice {
    /// Name, namespace, and the `kubernetes.io/service-name` label naming its Service.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// `IPv4`, `IPv6` or `FQDN`.
    pub address_type: Name,
    /// The endpoints. The API server serves a slice without any as `endpoints: null` (the
    /// field has no `omitempty`), as the EndpointSlice controller writes one for a Service
    /// scaled to zero: read as none.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub endpoints: Vec<Endpoint>,
    /// The ports every endpoint of the slice offers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<EndpointPort>>,
}

/// One endpoint of a slice.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// Its addresses (one in practice).
    #[serde(default)]
    pub addresses: Vec<Name>,
    /// Whether it is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<EndpointConditions>,
    /// Its hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<Name>,
}

/// An endpoint's conditions (unset means ready, as in the Kubernetes API).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointConditions {
    /// Ready for traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// Serving (possibly while terminating).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<bool>,
    /// Terminating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminating: Option<bool>,
}

/// A port of a slice.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPort {
    /// Its name, matched against the Service port's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    /// The port number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// `TCP` (the default), `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The application protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

/// A list that may be `null`, read as empty.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests;
