//! Multi-document YAML → typed objects.
//!
//! Each document is read as a generic value first, its `apiVersion`/`kind` picks the type, and the
//! typed deserialisation reports the failing field path. A file is all-or-nothing: one bad document
//! fails the whole file, so the source can keep that file's last good objects.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::kind::{Kind, Object};

/// What one file yielded.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The objects of kinds we read, in document order.
    pub objects: Vec<Object>,
    /// `apiVersion kind name` of each document we skipped because we do not read its kind.
    pub skipped: Vec<String>,
}

/// Why a file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The text is not YAML.
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// A document is YAML but not an object of its kind.
    #[error("document {document} ({object}): {message}")]
    Document {
        /// 1-based index of the document in the file.
        document: usize,
        /// `Kind namespace/name` as far as it could be read.
        object: String,
        /// What is wrong, with the field path.
        message: String,
    },
}

/// Parses a multi-document YAML text. Empty documents are ignored; kinds we do not read are
/// listed in [`Parsed::skipped`].
pub fn parse_documents(text: &str) -> Result<Parsed, ParseError> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| ParseError::Yaml(e.to_string()))?;
    let mut parsed = Parsed::default();
    for (index, document) in documents.into_iter().enumerate() {
        if document.is_null() {
            continue;
        }
        let document_number = index + 1;
        let fail = |object: String, message: String| ParseError::Document {
            document: document_number,
            object,
            message,
        };
        let Value::Object(map) = &document else {
            return Err(fail("?".into(), "a document must be a mapping".into()));
        };
        let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind_name = map.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = map
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let namespace = map
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if api_version.is_empty() || kind_name.is_empty() {
            return Err(fail(name, "apiVersion and kind are required".into()));
        }
        let Some(kind) = Kind::from_api(api_version, kind_name) else {
            parsed
                .skipped
                .push(format!("{api_version} {kind_name} {name}"));
            continue;
        };
        let label = match (&namespace, kind.is_cluster_scoped()) {
            (Some(ns), false) => format!("{kind} {ns}/{name}"),
            (None, false) => format!("{kind} default/{name}"),
            (_, true) => format!("{kind} {name}"),
        };
        if name.is_empty() {
            return Err(fail(label, "metadata.name is required".into()));
        }
        let object = typed(kind, document).map_err(|message| fail(label, message))?;
        parsed.objects.push(with_default_namespace(object));
    }
    Ok(parsed)
}

fn typed(kind: Kind, document: Value) -> Result<Object, String> {
    Ok(match kind {
        Kind::GatewayClass => Object::GatewayClass(decode(document)?),
        Kind::Gateway => Object::Gateway(decode(document)?),
        Kind::ListenerSet => Object::ListenerSet(decode(document)?),
        Kind::HttpRoute => Object::HttpRoute(decode(document)?),
        Kind::GrpcRoute => Object::GrpcRoute(decode(document)?),
        Kind::TlsRoute => Object::TlsRoute(decode(document)?),
        Kind::ReferenceGrant => Object::ReferenceGrant(decode(document)?),
        Kind::BackendTlsPolicy => Object::BackendTlsPolicy(decode(document)?),
        Kind::Namespace => Object::Namespace(decode(document)?),
        Kind::Service => Object::Service(decode(document)?),
        Kind::EndpointSlice => Object::EndpointSlice(decode(document)?),
        Kind::Secret => Object::Secret(decode(document)?),
        Kind::ConfigMap => Object::ConfigMap(decode(document)?),
        Kind::Backend => Object::Backend(decode(document)?),
        Kind::BackendTrafficPolicy => Object::BackendTrafficPolicy(decode(document)?),
    })
}

/// Typed decode that names the failing field (`spec.rules[0].matches[1].path.type: unknown variant ...`).
fn decode<T: DeserializeOwned + Clone>(document: Value) -> Result<Arc<T>, String> {
    serde_path_to_error::deserialize(document)
        .map(Arc::new)
        .map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if path == "." {
                inner.to_string()
            } else {
                format!("{path}: {inner}")
            }
        })
}

/// Objects without `metadata.namespace` are in `default`, as with kubectl.
fn with_default_namespace(mut object: Object) -> Object {
    if object.kind().is_cluster_scoped() {
        return object;
    }
    let meta = object.metadata_mut();
    if meta.namespace.as_deref().is_none_or(str::is_empty) {
        meta.namespace = Some("default".to_owned());
    }
    object
}

#[cfg(test)]
mod tests;
