//! `HTTPRoute` with a compact layout: our own containers around the `gateway-api` crate's
//! generated leaf types.
//!
//! HTTPRoutes are the most numerous objects after Services and EndpointSlices, and the
//! generated types keep every optional part inline: a filter holds all eight of its variants'
//! fields (~950 bytes for one `ResponseHeaderModifier`), a rule its retry, session persistence
//! and timeouts (~360 bytes). Here the rarely used parts are boxed, so a route of one rule with
//! one filter takes ~1 KB less. The types keep the generated names, field names and serde names
//! (`model::gateway_api` re-exports these in place of the generated ones), so a document reads
//! the same way, a bad field is named by the same path, and `compile` reads them unchanged.
//!
//! What differs from the generated types:
//! - a backendRef's `filters` are the rule's filter type (the schemas are the same), so compile
//!   converts nothing;
//! - `status` and `useDefaultGateways` are not kept: nothing reads them (status is written from
//!   what compile computes, never read back), and an unknown field is ignored, as by the
//!   generated types.

use crate::Name;
use crate::object_meta::ObjectMeta;
use serde::{Deserialize, Serialize};

use ::gateway_api::experimental::httproutes::{
    HttpRouteParentRefs, HttpRouteRulesFiltersCors, HttpRouteRulesFiltersExtensionRef,
    HttpRouteRulesFiltersExternalAuth, HttpRouteRulesFiltersRequestHeaderModifier,
    HttpRouteRulesFiltersRequestMirror, HttpRouteRulesFiltersRequestRedirect,
    HttpRouteRulesFiltersResponseHeaderModifier, HttpRouteRulesFiltersType,
    HttpRouteRulesFiltersUrlRewrite, HttpRouteRulesMatches, HttpRouteRulesRetry,
    HttpRouteRulesSessionPersistence, HttpRouteRulesTimeouts,
};

/// gateway.networking.k8s.io `HTTPRoute`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpRoute {
    /// Name, namespace, generation.
    pub metadata: ObjectMeta,
    /// What the route matches and where it sends requests.
    pub spec: HttpRouteSpec,
}

/// `HTTPRoute.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    /// The hostnames the route matches (all of its listeners' when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostnames: Option<Vec<String>>,
    /// The Gateways and listeners the route attaches to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_refs: Option<Vec<HttpRouteParentRefs>>,
    /// Its rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<HttpRouteRules>>,
}

/// One rule of an HTTPRoute.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRules {
    /// Where matching requests go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_refs: Option<Vec<HttpRouteRulesBackendRefs>>,
    /// What is done to matching requests and their responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<HttpRouteRulesFilters>>,
    /// Which requests the rule takes (any request when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<HttpRouteRulesMatches>>,
    /// The rule's name (its `sectionName` for policies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Retries (GEP-1731); boxed: rarely set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Box<HttpRouteRulesRetry>>,
    /// Session persistence (GEP-1619); boxed: rarely set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_persistence: Option<Box<HttpRouteRulesSessionPersistence>>,
    /// Request and backend request timeouts (GEP-1742); boxed: rarely set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Box<HttpRouteRulesTimeouts>>,
}

/// One backendRef of a rule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpRouteRulesBackendRefs {
    /// Filters applied when this backend is chosen: the rule's filter type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<HttpRouteRulesFilters>>,
    /// The referent's group (`""`, core, by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The referent's kind (`Service` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The referent's name.
    pub name: Name,
    /// The referent's namespace (the route's by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Name>,
    /// The Service port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Its share of the rule's requests (1 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

/// One filter of a rule or backendRef: its `type` and the field of that type. Each variant's
/// field is boxed, so a filter is nine words rather than the sum of every variant's fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpRouteRulesFilters {
    /// `CORS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Box<HttpRouteRulesFiltersCors>>,
    /// `ExtensionRef` (our Composition).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "extensionRef"
    )]
    pub extension_ref: Option<Box<HttpRouteRulesFiltersExtensionRef>>,
    /// `ExternalAuth`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "externalAuth"
    )]
    pub external_auth: Option<Box<HttpRouteRulesFiltersExternalAuth>>,
    /// `RequestHeaderModifier`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "requestHeaderModifier"
    )]
    pub request_header_modifier: Option<Box<HttpRouteRulesFiltersRequestHeaderModifier>>,
    /// `RequestMirror`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "requestMirror"
    )]
    pub request_mirror: Option<Box<HttpRouteRulesFiltersRequestMirror>>,
    /// `RequestRedirect`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "requestRedirect"
    )]
    pub request_redirect: Option<Box<HttpRouteRulesFiltersRequestRedirect>>,
    /// `ResponseHeaderModifier`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "responseHeaderModifier"
    )]
    pub response_header_modifier: Option<Box<HttpRouteRulesFiltersResponseHeaderModifier>>,
    /// Which of the fields applies.
    #[serde(rename = "type")]
    pub r#type: HttpRouteRulesFiltersType,
    /// `URLRewrite`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "urlRewrite"
    )]
    pub url_rewrite: Option<Box<HttpRouteRulesFiltersUrlRewrite>>,
}

#[cfg(test)]
mod tests;
