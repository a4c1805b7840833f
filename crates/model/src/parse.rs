//! Multi-document YAML → typed objects.
//!
//! Each document is read as a generic value first, its `apiVersion`/`kind` picks the type, and the
//! typed deserialisation reports the failing field path. A file is all-or-nothing: one bad document
//! fails the whole file, so the source can keep that file's last good objects.
//!
//! The YAML parser runs under a serde-saphyr `Budget` (see `yaml_options`): large files of many small
//! objects are fine, while alias bombs, deep nesting and oversized text are refused with the name
//! of the limit they hit.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_saphyr::budget::BudgetBreach;

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
    /// The text breaches one of the parser's limits (documents, nodes, nesting depth, aliases,
    /// text size); the message names the limit, e.g. `file has more than 100000 YAML documents
    /// (limit)`.
    #[error("{0}")]
    Limit(String),
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
        serde_saphyr::from_multiple_with_options(text, yaml_options()).map_err(yaml_error)?;
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

/// The most documents one file may hold. serde-saphyr's default (1,024) is too small for a
/// generated file of EndpointSlices or routes.
const MAX_DOCUMENTS: usize = 100_000;

/// The most nodes (mappings, sequences, scalars) in one file: 50 per document on average at the
/// document limit. The default (250,000) would refuse a file long before it reached that limit.
const MAX_NODES: usize = 5_000_000;

/// The most parser events in one file: twice [`MAX_NODES`], since every collection also ends and
/// every document starts and ends (the default, 1,000,000, is sized like the default node limit).
const MAX_EVENTS: usize = 10_000_000;

/// The parser options: serde-saphyr's default budget with the document, node and event counts
/// raised for large files. The limits that stop YAML bombs keep their defaults: aliases and
/// anchors (and their ratio, which catches "billion laughs"), the retained anchor copies, nesting
/// depth (64), merge keys and total scalar text (64 MiB).
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: MAX_DOCUMENTS,
            max_nodes: MAX_NODES,
            max_events: MAX_EVENTS,
        },
    }
}

/// A parser error as a [`ParseError`]: a breached budget becomes [`ParseError::Limit`] naming the
/// limit, anything else [`ParseError::Yaml`].
fn yaml_error(error: serde_saphyr::Error) -> ParseError {
    match budget_breach(&error) {
        Some(breach) => ParseError::Limit(describe_breach(breach)),
        None => ParseError::Yaml(error.to_string()),
    }
}

/// The budget breach behind `error`, looking through the wrappers that add a snippet or an alias
/// location.
fn budget_breach(error: &serde_saphyr::Error) -> Option<&BudgetBreach> {
    match error {
        serde_saphyr::Error::Budget { breach, .. } => Some(breach),
        serde_saphyr::Error::WithSnippet { error, .. }
        | serde_saphyr::Error::AliasError { error, .. } => budget_breach(error),
        _ => None,
    }
}

/// The breached limit in plain words, with its value (the budget of [`yaml_options`]).
fn describe_breach(breach: &BudgetBreach) -> String {
    let budget = yaml_options().budget.unwrap_or_default();
    match breach {
        BudgetBreach::Documents { .. } => {
            format!(
                "file has more than {} YAML documents (limit)",
                budget.max_documents
            )
        }
        BudgetBreach::Nodes { .. } => format!(
            "file has more than {} YAML nodes (mappings, sequences and scalars) (limit)",
            budget.max_nodes
        ),
        BudgetBreach::Events { .. } => {
            format!(
                "file has more than {} YAML parser events (limit)",
                budget.max_events
            )
        }
        BudgetBreach::Depth { .. } => format!(
            "file nests YAML mappings and sequences more than {} levels deep (limit)",
            budget.max_depth
        ),
        BudgetBreach::Aliases { .. } => {
            format!(
                "file uses more than {} YAML aliases (limit)",
                budget.max_aliases
            )
        }
        BudgetBreach::Anchors { .. } => {
            format!(
                "file defines more than {} YAML anchors (limit)",
                budget.max_anchors
            )
        }
        BudgetBreach::AliasAnchorRatio { aliases, anchors } => format!(
            "file uses {aliases} YAML aliases for {anchors} anchors, more than {} per anchor \
             (alias ratio limit, which stops alias bombs)",
            budget.alias_anchor_ratio_multiplier
        ),
        BudgetBreach::RecordedAnchorEvents { .. } => format!(
            "file expands YAML aliases to more than {} copied events (alias expansion limit, \
             which stops alias bombs)",
            budget.max_recorded_anchor_events
        ),
        BudgetBreach::RecordedAnchorBytes { .. } => format!(
            "file expands YAML aliases to more than {} copied bytes (alias expansion limit, \
             which stops alias bombs)",
            budget.max_recorded_anchor_bytes
        ),
        BudgetBreach::ScalarBytes { .. } => format!(
            "file has more than {} bytes of YAML scalar text (limit)",
            budget.max_total_scalar_bytes
        ),
        BudgetBreach::MergeKeys { .. } => format!(
            "file has more than {} YAML merge keys `<<` (limit)",
            budget.max_merge_keys
        ),
        BudgetBreach::SequenceUnbalanced => {
            "file has a YAML collection that ends without starting".to_owned()
        }
        // The enum is non-exhaustive; limits we do not configure (includes, reader input,
        // property interpolation) cannot fire for a string without includes or properties.
        other => format!("file breaches a YAML parser limit ({other:?})"),
    }
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
        Kind::ClientTrafficPolicy => Object::ClientTrafficPolicy(decode(document)?),
    })
}

/// Typed decode that names the failing field (`spec.rules[0].matches[1].path.type: unknown variant ...`).
///
/// A document that decodes is decoded by serde alone; only one that fails is decoded again
/// through `serde_path_to_error` to name the field. Its wrappers make a second, much larger
/// copy of every deserializer: the common start no longer runs (and keeps resident) that
/// code, about 1 MiB of the binary.
fn decode<T: DeserializeOwned + Clone>(document: Value) -> Result<Arc<T>, String> {
    if let Ok(decoded) = T::deserialize(&document) {
        return Ok(Arc::new(decoded));
    }
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
