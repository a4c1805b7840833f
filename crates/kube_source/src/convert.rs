//! A watched object as the API serves it ([`DynamicObject`]) → a typed [`model::Object`].
//!
//! Decoding goes through `model::parse::decode_object`, the same typed decode the file source
//! uses, so a bad object is named with its failing field. Before decoding, what Portcullis
//! never reads and what changes without the object's meaning changing is dropped: `status`
//! (ours is computed, never read; dropping it means a status write does not look like an edit)
//! and `metadata.resourceVersion` (it changes on every write, including status writes).

use kube::api::DynamicObject;
use kube::discovery::ApiResource;
use model::{Kind, Object, ObjectKey};
use serde_json::Value;

/// One watched object: its key (known even when the object is invalid) and the typed object,
/// or why it is not valid for its kind.
#[derive(Clone, Debug)]
pub(crate) struct Converted {
    /// Kind, namespace ("" for cluster-scoped kinds) and name.
    pub(crate) key: ObjectKey,
    /// The typed object, or `Kind namespace/name: field: what is wrong`.
    pub(crate) object: Result<Object, String>,
}

/// Types `object` of `kind`, served as `resource`.
pub(crate) fn convert(kind: Kind, resource: &ApiResource, object: DynamicObject) -> Converted {
    let namespace = if kind.is_cluster_scoped() {
        String::new()
    } else {
        object
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned())
    };
    let name = object.metadata.name.clone().unwrap_or_default();
    Converted {
        key: ObjectKey {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        },
        object: to_object(resource, object),
    }
}

/// Types `object`, of the resource `resource` (list items do not always carry `apiVersion` and
/// `kind`, so they come from the watched resource).
///
/// # Errors
///
/// `Kind namespace/name: field: what is wrong` when the object is not valid for its kind.
pub(crate) fn to_object(resource: &ApiResource, object: DynamicObject) -> Result<Object, String> {
    let DynamicObject { metadata, data, .. } = object;
    let mut document = match data {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    document.remove("status");
    let mut metadata = serde_json::to_value(metadata).map_err(|error| error.to_string())?;
    if let Value::Object(metadata) = &mut metadata {
        metadata.remove("resourceVersion");
    }
    document.insert("metadata".to_owned(), metadata);
    document.insert(
        "apiVersion".to_owned(),
        Value::String(resource.api_version.clone()),
    );
    document.insert("kind".to_owned(), Value::String(resource.kind.clone()));
    model::parse::decode_object(Value::Object(document))
}

#[cfg(test)]
mod tests;
