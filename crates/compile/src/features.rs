//! [`SUPPORTED_FEATURES`]: the Gateway API conformance features Portcullis implements, the one
//! list behind GatewayClass `status.supportedFeatures` (written back in Kubernetes mode, shown in
//! `/status` and by `portcullis check`). The conformance runner may read it too.
//!
//! It owns the list only; what each feature means is the Gateway API's (its conformance suite
//! names the features each test needs, and skips a test whose features a class does not list).

#[cfg(test)]
mod tests;

/// Gateway API feature names Portcullis supports, in ascending order as the GatewayClass schema
/// requires (`status.supportedFeatures` "MUST be sorted in ascending alphabetical order", at
/// most 64 entries).
///
/// A feature is listed only when the code implements it and a test exercises it: the
/// conformance cases the runner replays (`../shared/conformance/cases.json` names each test's
/// features), or the unit and end-to-end tests of the kinds (`TLSRoute`, `BackendTLSPolicy`).
/// Left out on purpose: `GatewayStaticAddresses` (an unusable address is not reported as
/// `AddressNotUsable`), `GatewayInfrastructurePropagation`, `HTTPRouteDestinationPortMatching`,
/// the mesh features, `TLSRouteModeMixed` and `HTTPRoute308RedirectStatusCode` (no test
/// exercises them yet). `TCPRoute` and `UDPRoute` are exercised by the runner's transcribed
/// TCPRoute/UDPRoute cases and the end-to-end tests (`l4_routes`); `TLSRouteModeTerminate` by
/// the TLSRoute end-to-end tests.
pub const SUPPORTED_FEATURES: &[&str] = &[
    "BackendTLSPolicy",
    "GRPCRoute",
    "GRPCRouteNamedRouteRule",
    "GRPCRouteRequestHeaderModifier",
    "Gateway",
    "GatewayHTTPListenerIsolation",
    "GatewayPort8080",
    "HTTPRoute",
    "HTTPRoute303RedirectStatusCode",
    "HTTPRoute307RedirectStatusCode",
    "HTTPRouteBackendProtocolH2C",
    "HTTPRouteBackendRequestHeaderModification",
    "HTTPRouteBackendRequestRedirect",
    "HTTPRouteBackendURLRewrite",
    "HTTPRouteCORS",
    "HTTPRouteHostRewrite",
    "HTTPRouteMethodMatching",
    "HTTPRouteNamedRouteRule",
    "HTTPRouteParentRefPort",
    "HTTPRoutePathRedirect",
    "HTTPRoutePathRewrite",
    "HTTPRoutePortRedirect",
    "HTTPRouteQueryParamMatching",
    "HTTPRouteRequestMirror",
    "HTTPRouteRequestPercentageMirror",
    "HTTPRouteRequestTimeout",
    "HTTPRouteResponseHeaderModification",
    "HTTPRouteRetry",
    "HTTPRouteRetryConnectionError",
    "HTTPRouteSchemeRedirect",
    "ListenerSet",
    "ReferenceGrant",
    "TCPRoute",
    "TLSRoute",
    "TLSRouteModeTerminate",
    "UDPRoute",
];
