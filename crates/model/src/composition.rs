//! `Composition` (`portcullis.dev/v1alpha1`): one client request answered by several backend
//! requests ("parts") whose JSON responses are merged into one document.
//!
//! An HTTPRoute rule names it with an `ExtensionRef` filter (`group: portcullis.dev, kind:
//! Composition`), in the route's namespace. The templates of `path` and `headers.set[].value`
//! are text with references in braces (`{request.path.NAME}`, `{request.query.NAME}`,
//! `{request.header.NAME}`, `{response.PART.json/POINTER}`): `snapshot::composition` documents
//! them, and `compile` parses them, resolves their names and reports every problem by field.
//! Nothing here is validated beyond what serde and the CRD schema check.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::client_policy::ByteQuantity;
use crate::core::ObjectMeta;
use crate::schema::{DURATION_PATTERN, MAX_NAME_LENGTH};

/// The most parts a Composition may have.
pub const MAX_PARTS: usize = 16;

/// The longest part name.
pub const MAX_PART_NAME_LENGTH: usize = 63;

/// A part name (and a `pathPattern` parameter name): letters, digits, `_` and `-`.
pub const PART_NAME_PATTERN: &str = "^[A-Za-z0-9_-]+$";

/// An HTTP method: an RFC 9110 token.
pub const METHOD_PATTERN: &str = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

/// The most headers a part may forward, and the most it may set.
pub const MAX_PART_HEADERS: usize = 32;

/// A `Composition` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Composition {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The parts and how they merge.
    #[serde(default)]
    pub spec: CompositionSpec,
}

/// `Composition.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("required" = ["parts"]))]
pub struct CompositionSpec {
    /// Names segments of the request path for `{request.path.NAME}` references:
    /// `/products/{id}` binds `id` to the second segment. Required when a template reads the
    /// path.
    #[serde(default)]
    #[schemars(length(min = 1, max = 1024), regex(pattern = "^/"))]
    pub path_pattern: Option<String>,
    /// The deadline of the whole composition, from the request's arrival (default `10s`).
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// The largest response body of one part kept for merging (default `1Mi`).
    #[serde(default)]
    #[schemars(extend("minimum" = 1))]
    pub max_part_bytes: Option<ByteQuantity>,
    /// How the parts' documents become one (default `Keyed`).
    #[serde(default)]
    pub merge: Option<CompositionMerge>,
    /// The backend requests, in the order of the merged document.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_PARTS))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub parts: Vec<CompositionPart>,
}

/// `merge`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompositionMerge {
    /// `Keyed` (default: each part's document under its name) or `Deep` (the parts' objects
    /// merged into one).
    #[serde(default, rename = "type")]
    #[schemars(extend("enum" = ["Keyed", "Deep"]))]
    pub kind: Option<String>,
}

/// `parts[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompositionPart {
    /// Unique among the parts: the key of its document under `Keyed`, the `PART` of
    /// `{response.PART.json}`.
    #[schemars(length(min = 1, max = MAX_PART_NAME_LENGTH), regex(pattern = PART_NAME_PATTERN))]
    pub name: String,
    /// The backend the part's request goes to.
    pub backend_ref: CompositionBackendRef,
    /// The request method (default `GET`).
    #[serde(default)]
    #[schemars(length(min = 1, max = 32), regex(pattern = METHOD_PATTERN))]
    pub method: Option<String>,
    /// The request target template: a path and an optional `?query` (default `/`).
    #[serde(default)]
    #[schemars(length(min = 1, max = 2048), regex(pattern = "^/"))]
    pub path: Option<String>,
    /// Request headers of the part.
    #[serde(default)]
    pub headers: Option<PartHeaders>,
    /// The time this part may take (default: the composition's deadline).
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// Whether the whole composition fails when this part does (default false).
    #[serde(default)]
    pub required: Option<bool>,
    /// The piece of the part's JSON response to keep: an RFC 6901 JSON pointer (`/data`).
    #[serde(default)]
    #[schemars(length(max = 1024), regex(pattern = "^(/.*)?$"))]
    pub select: Option<String>,
}

/// A part's `backendRef`: a Service port (default) or a `portcullis.dev` Backend, as a route's
/// backendRef names it. Another namespace needs a ReferenceGrant there allowing
/// `portcullis.dev` `Composition`s.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompositionBackendRef {
    /// `""` (Service, default) or `portcullis.dev` (Backend).
    #[serde(default)]
    #[schemars(extend("enum" = ["", "portcullis.dev"]))]
    pub group: Option<String>,
    /// `Service` (default) or `Backend`.
    #[serde(default)]
    #[schemars(extend("enum" = ["Service", "Backend"]))]
    pub kind: Option<String>,
    /// Name.
    #[schemars(length(min = 1, max = MAX_NAME_LENGTH))]
    pub name: String,
    /// Namespace (default: the Composition's).
    #[serde(default)]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
    /// Port (required for a Service).
    #[serde(default)]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}

/// `headers`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartHeaders {
    /// Header names copied from the client's request (when it has them).
    #[serde(default)]
    #[schemars(length(max = MAX_PART_HEADERS))]
    pub forward: Vec<String>,
    /// Headers set from templates, after the forwarded ones.
    #[serde(default)]
    #[schemars(length(max = MAX_PART_HEADERS))]
    pub set: Vec<HeaderTemplate>,
}

/// `headers.set[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderTemplate {
    /// The header name.
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    /// The value template.
    #[schemars(length(max = 4096))]
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field set (also applied to a real API server by the e2e tests).
    const EXAMPLE: &str = include_str!("../../../examples/policies/composition.yaml");

    #[test]
    fn the_documented_example_parses() {
        let composition: Composition = serde_saphyr::from_str(EXAMPLE).expect("example parses");
        let spec = &composition.spec;
        assert_eq!(spec.path_pattern.as_deref(), Some("/products/{id}"));
        assert_eq!(spec.timeout.as_deref(), Some("2s"));
        assert_eq!(spec.max_part_bytes, Some(ByteQuantity::Text("1Mi".into())));
        let merge = spec.merge.as_ref().expect("merge");
        assert_eq!(merge.kind.as_deref(), Some("Keyed"));
        assert_eq!(spec.parts.len(), 2);
        let product = &spec.parts[0];
        assert_eq!(product.name, "product");
        assert_eq!(product.backend_ref.name, "catalogue");
        assert_eq!(product.backend_ref.port, Some(8080));
        assert_eq!(product.method.as_deref(), Some("GET"));
        let headers = product.headers.as_ref().expect("headers");
        assert_eq!(headers.forward, ["authorization", "accept-language"]);
        assert_eq!(headers.set[0].name, "x-tenant");
        assert_eq!(headers.set[0].value, "{request.header.x-tenant}");
        assert_eq!(product.timeout.as_deref(), Some("300ms"));
        assert_eq!(product.required, Some(true));
        assert_eq!(product.select.as_deref(), Some("/data"));
        assert_eq!(
            spec.parts[1].path.as_deref(),
            Some("/prices/{response.product.json/sku}")
        );
    }

    #[test]
    fn unknown_fields_are_errors() {
        let text =
            "metadata: {name: x}\nspec: {parts: [{name: a, backendRef: {name: s}, typo: 1}]}\n";
        let error = serde_saphyr::from_str::<Composition>(text).expect_err("typo is refused");
        assert!(error.to_string().contains("typo"), "{error}");
    }
}
