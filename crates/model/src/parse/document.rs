//! One piece of a file's text, parsed on its own: each YAML document in it becomes a typed
//! object, a skipped-kind entry, or the reason it is invalid.
//!
//! A document is read as a generic value first, its `apiVersion`/`kind` picks the type, and the
//! typed deserialisation reports the failing field path. Numbering documents and the
//! all-or-nothing rule belong to the file ([`join_documents`](super::join_documents)).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_saphyr::budget::BudgetBreach;

use super::ParseError;
use super::limits::{FileBudget, Usage, describe_breach, yaml_options};
use crate::kind::{Kind, Object};

/// A piece of a file's text (one of [`split_documents`](super::split_documents)) parsed on its
/// own. Kept by the file source per piece text, so that an unchanged document keeps its objects
/// (the same `Arc`s) when its file changes elsewhere. Cheap to clone: objects are `Arc`s.
///
/// The file source keeps one per document of every file, so it is kept small: the documents
/// in an exact-size slice, anything but an object (rare) boxed.
#[derive(Clone, Debug)]
pub struct ParsedDocument {
    /// What each YAML document of the piece yielded, in order; an error when the piece is not
    /// YAML or breaches a parser limit on its own.
    pub(super) outcome: Result<Box<[Decoded]>, Box<ParseError>>,
    /// What the parse used of the file's budget.
    pub(super) usage: Usage,
}

/// What one YAML document yielded.
#[derive(Clone, Debug)]
pub(super) enum Decoded {
    /// A null document: nothing.
    Empty,
    /// An object of a kind we read.
    Object(Object),
    /// `apiVersion kind name` of a document of a kind we do not read.
    Skipped(Box<str>),
    /// Why the document is not an object of its kind; the file numbers the document.
    Invalid(Box<Invalid>),
}

/// Why a document is not an object of its kind.
#[derive(Clone, Debug)]
pub(super) struct Invalid {
    /// `Kind namespace/name` as far as it could be read.
    pub(super) object: String,
    /// What is wrong, with the field path.
    pub(super) message: String,
}

impl Decoded {
    /// The document `object` (`Kind namespace/name`) is not valid: `message`.
    fn invalid(object: String, message: String) -> Decoded {
        Decoded::Invalid(Box::new(Invalid { object, message }))
    }
}

impl ParsedDocument {
    /// The objects of kinds we read, in document order; none when a document of the piece is
    /// invalid or the piece is not YAML.
    pub fn objects(&self) -> impl Iterator<Item = &Object> {
        self.outcome
            .iter()
            .flatten()
            .filter_map(|decoded| match decoded {
                Decoded::Object(object) => Some(object),
                _ => None,
            })
    }

    /// Whether every document of the piece is YAML within the limits and an object of its kind
    /// (or of a kind we skip).
    pub fn is_valid(&self) -> bool {
        self.outcome.as_ref().is_ok_and(|documents| {
            documents
                .iter()
                .all(|decoded| !matches!(decoded, Decoded::Invalid(_)))
        })
    }
}

/// Parses one piece of a file's text (usually one document), charging the file's `budget`.
/// Does not fail: errors are kept in the result and reported by
/// [`join_documents`](super::join_documents), which numbers them within the file. Once the
/// file's documents have spent its budget, the piece is not parsed.
pub fn parse_document(text: &str, budget: &FileBudget) -> ParsedDocument {
    if budget.is_spent() {
        return ParsedDocument {
            outcome: Err(Box::new(ParseError::Limit(describe_breach(
                &BudgetBreach::Events { events: 0 },
            )))),
            usage: Usage::unaccounted(),
        };
    }
    let (values, usage) = read_values(text);
    budget.charge(&usage);
    ParsedDocument {
        outcome: values
            .map(|values| values.into_iter().map(decode_value).collect())
            .map_err(Box::new),
        usage,
    }
}

/// The YAML documents of `text` as generic values, and what the parse used of the budget.
pub(super) fn read_values(text: &str) -> (Result<Vec<Value>, ParseError>, Usage) {
    let report = Rc::new(RefCell::new(None));
    let sink = Rc::clone(&report);
    let options = yaml_options().with_budget_report(move |report| {
        sink.replace(Some(report));
    });
    let values = serde_saphyr::from_multiple_with_options(text, options).map_err(yaml_error);
    // serde-saphyr reports on success and on failure; should it not, the parse counts as over
    // budget, which only sends the file to the whole-text parse.
    let usage = report
        .take()
        .map_or_else(Usage::unaccounted, |report| Usage::of(&report));
    (values, usage)
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

/// One YAML document, typed by its `apiVersion` and `kind`.
pub(super) fn decode_value(document: Value) -> Decoded {
    if document.is_null() {
        return Decoded::Empty;
    }
    let invalid = |object: String, message: &str| Decoded::invalid(object, message.to_owned());
    let Value::Object(map) = &document else {
        return invalid("?".to_owned(), "a document must be a mapping");
    };
    let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind_name = map.get("kind").and_then(Value::as_str).unwrap_or("");
    let metadata = map.get("metadata");
    let name = metadata
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if api_version.is_empty() || kind_name.is_empty() {
        return invalid(name, "apiVersion and kind are required");
    }
    let Some(kind) = Kind::from_api(api_version, kind_name) else {
        return Decoded::Skipped(format!("{api_version} {kind_name} {name}").into());
    };
    let label = match (&namespace, kind.is_cluster_scoped()) {
        (Some(ns), false) => format!("{kind} {ns}/{name}"),
        (None, false) => format!("{kind} default/{name}"),
        (_, true) => format!("{kind} {name}"),
    };
    if name.is_empty() {
        return invalid(label, "metadata.name is required");
    }
    match typed(kind, document) {
        Ok(object) => Decoded::Object(with_default_namespace(object)),
        Err(message) => Decoded::invalid(label, message),
    }
}

/// One object as the Kubernetes API serves it (JSON, with `apiVersion` and `kind`), typed the
/// same way as a YAML document: metadata nothing reads is not kept (see
/// [`ObjectMeta`](crate::object_meta::ObjectMeta)), the failing field named.
///
/// # Errors
///
/// `Kind namespace/name: field path: what is wrong` when the object is not an object of its
/// kind, or names a kind we do not read.
pub fn decode_object(document: Value) -> Result<Object, String> {
    match decode_value(document) {
        Decoded::Object(object) => Ok(object),
        Decoded::Invalid(invalid) => Err(format!("{}: {}", invalid.object, invalid.message)),
        Decoded::Skipped(skipped) => Err(format!("{skipped}: not a kind Portcullis reads")),
        Decoded::Empty => Err("an empty object".to_owned()),
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
        Kind::TcpRoute => Object::TcpRoute(decode(document)?),
        Kind::UdpRoute => Object::UdpRoute(decode(document)?),
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
        Kind::SecurityPolicy => Object::SecurityPolicy(decode(document)?),
        Kind::RateLimitPolicy => Object::RateLimitPolicy(decode(document)?),
        Kind::Composition => Object::Composition(decode(document)?),
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
        meta.namespace = Some(crate::Name::const_new("default"));
    }
    object
}
