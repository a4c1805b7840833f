//! `SecurityPolicy` (`portcullis.dev/v1alpha1`): who may send requests through a Gateway, a
//! listener, a route or a route rule (GEP-713 `targetRefs`; the most specific wins, whole).
//!
//! Field names follow Envoy Gateway's SecurityPolicy where the concept is the same (`jwt`,
//! `oidc`, `apiKeyAuth`, `basicAuth`, `extAuth`, `authorization`). Where they differ:
//! - `extAuth.http.headersToBackend` lists the request headers sent to the authorization
//!   service and `headersToUpstream` the headers of its answer copied into the request sent
//!   upstream (Envoy Gateway calls the first `headersToExtAuth`, at `extAuth` level; both
//!   spellings are read);
//! - authorization rules can also match `methods` and `paths`, and `principal.clients` (the
//!   API-key or basic-auth client).
//!
//! Secrets named here (`apiKeyAuth.credentialRefs`, `basicAuth.users`, `oidc.clientSecret`) are
//! in the policy's namespace unless `namespace` says otherwise (then a ReferenceGrant must
//! allow it).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::ObjectMeta;
use crate::policy::PolicyTargetRef;
use crate::schema::{DURATION_PATTERN, MAX_NAME_LENGTH, MAX_TARGET_REFS};

/// The CEL rule of route-policy `targetRefs`: a Gateway (or listener), an HTTPRoute or a
/// GRPCRoute (or one of its rules).
pub(crate) const ROUTE_POLICY_TARGETS_RULE: &str = "self.all(t, has(t.group) && t.group == 'gateway.networking.k8s.io' && t.kind in ['Gateway', 'HTTPRoute', 'GRPCRoute'])";

/// A `SecurityPolicy` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SecurityPolicy {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The policy.
    #[serde(default)]
    pub spec: SecurityPolicySpec,
}

/// `SecurityPolicy.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("required" = ["targetRefs"]))]
pub struct SecurityPolicySpec {
    /// What the policy applies to: a Gateway (a listener by `sectionName`), an HTTPRoute or a
    /// GRPCRoute (a rule by `sectionName`). The most specific attachment wins.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_TARGET_REFS))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": ROUTE_POLICY_TARGETS_RULE,
        "message": "each target must be a gateway.networking.k8s.io Gateway, HTTPRoute or GRPCRoute"
    }]))]
    pub target_refs: Vec<PolicyTargetRef>,
    /// JWT authentication.
    #[serde(default)]
    pub jwt: Option<Jwt>,
    /// OpenID Connect login for browsers.
    #[serde(default)]
    pub oidc: Option<Oidc>,
    /// API keys.
    #[serde(default)]
    pub api_key_auth: Option<ApiKeyAuth>,
    /// HTTP basic authentication.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// External authorization.
    #[serde(default)]
    pub ext_auth: Option<ExtAuth>,
    /// Allow/deny rules.
    #[serde(default)]
    pub authorization: Option<Authorization>,
}

/// `jwt`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Jwt {
    /// Token issuers; a token must be accepted by one of them.
    #[schemars(length(min = 1, max = 4))]
    pub providers: Vec<JwtProvider>,
    /// A request without any token goes on unauthenticated.
    #[serde(default)]
    pub optional: Option<bool>,
}

/// `jwt.providers[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.remoteJWKS) != has(self.localJWKS)",
    "message": "exactly one of remoteJWKS and localJWKS is required"
}]))]
pub struct JwtProvider {
    /// Unique in the policy.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Required `iss`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Accepted `aud` values.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Keys fetched from a URL.
    #[serde(default, rename = "remoteJWKS")]
    pub remote_jwks: Option<RemoteJwks>,
    /// Keys in the policy.
    #[serde(default, rename = "localJWKS")]
    pub local_jwks: Option<LocalJwks>,
    /// Claims copied into request headers.
    #[serde(default)]
    pub claim_to_headers: Vec<ClaimToHeader>,
    /// Where the token is (default: `Authorization: Bearer`).
    #[serde(default)]
    pub extract_from: Option<ExtractFrom>,
    /// Keep the token in the request sent upstream (default: removed).
    #[serde(default)]
    pub forward: Option<bool>,
    /// Tolerance for `exp`/`nbf` (default `30s`).
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub clock_skew: Option<String>,
}

/// `remoteJWKS`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteJwks {
    /// `http://` or `https://` URL of the key set.
    #[schemars(length(min = 1, max = 2048))]
    pub uri: String,
    /// How long a fetched set is used before it is fetched again (default `300s`).
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub cache_duration: Option<String>,
    /// Timeout of one fetch (default `5s`).
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: Option<String>,
}

/// `localJWKS`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalJwks {
    /// The key set, JSON.
    pub inline: String,
}

/// `claimToHeaders[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimToHeader {
    /// Claim name (a dot walks into nested objects).
    pub claim: String,
    /// Request header.
    pub header: String,
}

/// Where a credential is looked for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtractFrom {
    /// Headers, each with an optional value prefix.
    #[serde(default)]
    pub headers: Vec<ExtractHeader>,
    /// Cookies, by name.
    #[serde(default)]
    pub cookies: Vec<String>,
    /// Query parameters, by name.
    #[serde(default)]
    pub params: Vec<String>,
}

/// `extractFrom.headers[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtractHeader {
    /// Header name.
    pub name: String,
    /// Prefix the value starts with (`Bearer `), stripped.
    #[serde(default)]
    pub value_prefix: Option<String>,
}

/// `apiKeyAuth`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyAuth {
    /// Secrets whose `data` entries are `client id: key`.
    #[schemars(length(min = 1, max = 16))]
    pub credential_refs: Vec<SecretRef>,
    /// Where the key is (default: header `x-api-key`). Each entry's headers, params and
    /// cookies are tried in that order.
    #[serde(default)]
    pub extract_from: Vec<KeyExtractFrom>,
    /// Header the client id is forwarded in.
    #[serde(default, rename = "forwardClientIDHeader")]
    pub forward_client_id_header: Option<String>,
    /// Remove the key from the request sent upstream (default true).
    #[serde(default)]
    pub sanitize: Option<bool>,
}

/// `apiKeyAuth.extractFrom[]` (names only: a key has no prefix).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyExtractFrom {
    /// Headers, by name.
    #[serde(default)]
    pub headers: Vec<String>,
    /// Query parameters, by name.
    #[serde(default)]
    pub params: Vec<String>,
    /// Cookies, by name.
    #[serde(default)]
    pub cookies: Vec<String>,
}

/// A reference to a Secret.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRef {
    /// `""` (core).
    #[serde(default)]
    #[schemars(extend("enum" = [""]))]
    pub group: Option<String>,
    /// `Secret`.
    #[serde(default)]
    #[schemars(extend("enum" = ["Secret"]))]
    pub kind: Option<String>,
    /// Name.
    #[schemars(length(min = 1, max = MAX_NAME_LENGTH))]
    pub name: String,
    /// Namespace (default: the policy's; another needs a ReferenceGrant).
    #[serde(default)]
    pub namespace: Option<String>,
}

/// `basicAuth`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuth {
    /// A Secret with an htpasswd file under `.htpasswd` (bcrypt or `{SHA}` lines).
    pub users: SecretRef,
    /// Header the user name is forwarded in.
    #[serde(default)]
    pub forward_username_header: Option<String>,
    /// Realm of `WWW-Authenticate` (default: the policy's name).
    #[serde(default)]
    pub realm: Option<String>,
}

/// `extAuth`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.http) != has(self.grpc)",
    "message": "exactly one of http and grpc is required"
}]))]
pub struct ExtAuth {
    /// An HTTP authorization service.
    #[serde(default)]
    pub http: Option<HttpExtAuth>,
    /// An Envoy `ext_authz` gRPC service.
    #[serde(default)]
    pub grpc: Option<GrpcExtAuth>,
    /// Request headers sent to the service (default: all).
    #[serde(default)]
    pub headers_to_ext_auth: Vec<String>,
    /// Send the request body too.
    #[serde(default)]
    pub with_body: Option<WithBody>,
    /// Let requests through when the service cannot answer (default false: 403).
    #[serde(default)]
    pub fail_open: Option<bool>,
    /// Timeout of one check (default `1s`).
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: Option<String>,
}

/// `extAuth.http`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpExtAuth {
    /// The service (one backendRef).
    #[schemars(length(min = 1, max = 1))]
    pub backend_refs: Vec<ExtAuthBackendRef>,
    /// Prefix of the check request's path.
    #[serde(default)]
    pub path: Option<String>,
    /// Request headers sent to the service (default: all).
    #[serde(default)]
    pub headers_to_backend: Vec<String>,
    /// Headers of an allowing answer copied into the upstream request.
    #[serde(default)]
    pub headers_to_upstream: Vec<String>,
}

/// `extAuth.grpc`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcExtAuth {
    /// The service (one backendRef), spoken to over HTTP/2 (set `appProtocol:
    /// kubernetes.io/h2c` on the Service port, or a BackendTLSPolicy).
    #[schemars(length(min = 1, max = 1))]
    pub backend_refs: Vec<ExtAuthBackendRef>,
}

/// A backendRef of `extAuth`: a Service (or `portcullis.dev` Backend) and port.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtAuthBackendRef {
    /// `""` (Service) or `portcullis.dev` (Backend).
    #[serde(default)]
    pub group: Option<String>,
    /// `Service` (default) or `Backend`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Name.
    #[schemars(length(min = 1, max = MAX_NAME_LENGTH))]
    pub name: String,
    /// Namespace (default: the policy's; another needs a ReferenceGrant).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Port (required for a Service).
    #[serde(default)]
    pub port: Option<i32>,
}

/// `extAuth.withBody`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WithBody {
    /// At most this many bytes of the body are sent.
    #[schemars(range(min = 1, max = 1048576))]
    pub max_request_bytes: u32,
}

/// `authorization`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Authorization {
    /// `Allow` or `Deny` (default `Deny`) for requests no rule matches.
    #[serde(default)]
    #[schemars(extend("enum" = ["Allow", "Deny"]))]
    pub default_action: Option<String>,
    /// Checked in order; the first that matches decides.
    #[serde(default)]
    pub rules: Vec<AuthorizationRule>,
}

/// `authorization.rules[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizationRule {
    /// Name, for metrics and logs.
    #[serde(default)]
    pub name: Option<String>,
    /// `Allow` or `Deny`.
    #[schemars(extend("enum" = ["Allow", "Deny"]))]
    pub action: String,
    /// Who sent the request.
    #[serde(default)]
    pub principal: Principal,
    /// Request methods (default: any).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Path prefixes (default: any).
    #[serde(default)]
    pub paths: Vec<String>,
}

/// `principal`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Principal {
    /// Client networks.
    #[serde(default, rename = "clientCIDRs")]
    pub client_cidrs: Vec<String>,
    /// JWT claims and scopes.
    #[serde(default)]
    pub jwt: Option<JwtPrincipal>,
    /// Request headers.
    #[serde(default)]
    pub headers: Vec<HeaderValues>,
    /// API-key or basic-auth clients.
    #[serde(default)]
    pub clients: Vec<String>,
}

/// `principal.jwt`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtPrincipal {
    /// The provider (default: any).
    #[serde(default)]
    pub provider: Option<String>,
    /// Claims and their accepted values.
    #[serde(default)]
    pub claims: Vec<ClaimValues>,
    /// Required scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// A claim and its accepted values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimValues {
    /// Claim name.
    pub name: String,
    /// Accepted values.
    #[schemars(length(min = 1))]
    pub values: Vec<String>,
}

/// A header and its accepted values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderValues {
    /// Header name.
    pub name: String,
    /// Accepted values.
    #[schemars(length(min = 1))]
    pub values: Vec<String>,
}

/// `oidc`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Oidc {
    /// The OpenID provider.
    pub provider: OidcProvider,
    /// The client registered with it.
    #[serde(rename = "clientID")]
    pub client_id: String,
    /// A Secret with the client secret under `client-secret`.
    pub client_secret: SecretRef,
    /// Scopes (`openid` is always asked for).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Where the provider sends the browser back (absolute URL, or a path on the request's
    /// host; default `/oauth2/callback`).
    #[serde(default, rename = "redirectURL")]
    pub redirect_url: Option<String>,
    /// Requests to this path log out (default `/logout`).
    #[serde(default)]
    pub logout_path: Option<String>,
    /// Where the provider sends the browser after logout.
    #[serde(default, rename = "postLogoutRedirectURL")]
    pub post_logout_redirect_url: Option<String>,
    /// Renew expired sessions with the refresh token (default true).
    #[serde(default)]
    pub refresh_token: Option<bool>,
    /// `Domain` of the session cookies.
    #[serde(default)]
    pub cookie_domain: Option<String>,
    /// Send the access token upstream as `Authorization: Bearer` (default true).
    #[serde(default)]
    pub forward_access_token: Option<bool>,
    /// Session lifetime when the tokens do not say (default `1h`).
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub default_session_lifetime: Option<String>,
}

/// `oidc.provider`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OidcProvider {
    /// Issuer URL (its discovery document is read at `/.well-known/openid-configuration`).
    pub issuer: String,
    /// Override of the discovered authorization endpoint.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// Override of the discovered token endpoint.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// Override of the discovered end-session endpoint.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field set (also applied to a real API server by the e2e tests).
    const EXAMPLE: &str = include_str!("../../../examples/policies/security-policy.yaml");

    #[test]
    fn the_documented_example_parses() {
        let policy: SecurityPolicy = serde_saphyr::from_str(EXAMPLE).expect("example parses");
        let jwt = policy.spec.jwt.expect("jwt");
        assert_eq!(jwt.providers.len(), 2);
        assert_eq!(
            jwt.providers[0]
                .remote_jwks
                .as_ref()
                .map(|r| r.uri.as_str()),
            Some("https://issuer.example/jwks.json")
        );
        let ext = policy.spec.ext_auth.expect("extAuth");
        assert_eq!(ext.http.expect("http").headers_to_upstream, ["x-tenant"]);
        let authz = policy.spec.authorization.expect("authorization");
        assert_eq!(authz.rules[0].principal.client_cidrs, ["10.0.0.0/8"]);
        assert_eq!(
            policy.spec.oidc.map(|o| o.client_id),
            Some("shop-web".to_owned())
        );
    }

    #[test]
    fn unknown_fields_are_errors() {
        let text = "metadata: {name: x}\nspec: {jwt: {providers: [], typo: 1}}\n";
        assert!(serde_saphyr::from_str::<SecurityPolicy>(text).is_err());
    }
}
