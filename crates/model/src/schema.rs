//! What the JSON schemas of our kinds check ahead of `compile`: the patterns, CEL rules and
//! bounds the `JsonSchema` derives of [`backend`](crate::backend), [`policy`](crate::policy)
//! and [`client_policy`](crate::client_policy) name, shared so that each is written once.
//!
//! The schemas go into our CustomResourceDefinitions (`crates/crdgen`, `deploy/crds/`), where
//! the API server enforces them when an object is written: a mistake is refused at
//! `kubectl apply`, naming the field, instead of showing later as a policy that is not
//! Accepted. They are a first line only: `compile` still validates every field (a file in
//! standalone mode never meets a schema), and its messages stay the reference. Serde does not
//! read anything here.

/// A Gateway API duration (GEP-2257): one to four `<1-5 digits><h|m|s|ms>` parts, such as
/// `500ms`, `10s`, `1m30s`. Every such duration is also a Go duration, so CEL's `duration()`
/// reads it.
pub const DURATION_PATTERN: &str = "^([0-9]{1,5}(h|m|s|ms)){1,4}$";

/// A byte size written as text (see `ByteQuantity`): digits and an optional unit.
pub const BYTE_SIZE_PATTERN: &str = "^[0-9]+(B|Ki|KiB|Mi|MiB|Gi|GiB|k|M|G)?$";

/// The most `targetRefs` a policy may list (bounds the cost of the CEL rules over them).
pub const MAX_TARGET_REFS: usize = 16;

/// The most length Kubernetes allows an object name (DNS subdomain).
pub const MAX_NAME_LENGTH: usize = 253;
