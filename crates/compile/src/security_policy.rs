//! `SecurityPolicy.spec` → [`snapshot::security::SecurityPolicy`]: every field validated,
//! every problem reported with its path, Secrets read (API keys, htpasswd, the OIDC client
//! secret) and the external authorization service resolved to a backend of the snapshot.
//!
//! Decisions:
//! - Secrets and Services in another namespace need a ReferenceGrant there from
//!   `portcullis.dev/SecurityPolicy` (GEP-709, as for routes).
//! - htpasswd lines must be bcrypt (`$2a$`, `$2b$`, `$2y$`) or `{SHA}`: MD5-crypt (`$apr1$`)
//!   and plain text are refused (weak; Envoy Gateway accepts only `{SHA}`).
//! - The OIDC session cookie key is derived from the policy's identity and the client secret
//!   (SHA-256), so every replica with the same config decrypts every replica's cookies, and a
//!   new client secret ends every session.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Method, Uri};
use ipnet::IpNet;
use model::Store;
use model::security_policy::{
    ApiKeyAuth, Authorization, BasicAuth, ExtAuth, ExtractFrom, Jwt, Oidc, SecretRef,
    SecurityPolicySpec,
};
use snapshot::security::{
    self as compiled, Action, ApiKey, AuthorizationRule, BodyForwarding, ClaimToHeader,
    ClaimValues, ExtAuthProtocol, HeaderValues, HtpasswdUser, JwksSource, JwtPrincipal,
    JwtProvider, Principal, TokenSource,
};

use crate::backend_ref::{BackendRefSpec, BackendTable, Referrer, reference_granted};
use crate::duration;
use crate::problems::{FieldPath, Problems};
use crate::tls::secret_data;

/// The kind, as ReferenceGrants name it.
const KIND: &str = "SecurityPolicy";

/// A policy that answers 500 to everything: what an invalid policy's targets get.
pub(crate) fn refusing(path: &FieldPath) -> compiled::SecurityPolicy {
    compiled::SecurityPolicy {
        label: path.to_string().into(),
        oidc: None,
        jwt: None,
        api_key: None,
        basic: None,
        ext_auth: None,
        authorization: None,
        invalid: true,
    }
}

/// What validation reads besides the spec.
struct Context<'a> {
    store: &'a Store,
    namespace: &'a str,
    problems: Problems,
}

/// Validates one policy. `path` is the policy's (`SecurityPolicy ns/name`).
pub(crate) fn compile(
    store: &Store,
    backends: &mut BackendTable,
    namespace: &str,
    path: &FieldPath,
    spec: &SecurityPolicySpec,
) -> Result<compiled::SecurityPolicy, Problems> {
    let mut cx = Context {
        store,
        namespace,
        problems: Problems::default(),
    };
    let spec_path = path.field("spec");
    let jwt = spec
        .jwt
        .as_ref()
        .and_then(|jwt| cx.jwt(&spec_path.field("jwt"), jwt));
    let oidc = spec
        .oidc
        .as_ref()
        .and_then(|oidc| cx.oidc(path, &spec_path.field("oidc"), oidc));
    let api_key = spec
        .api_key_auth
        .as_ref()
        .and_then(|auth| cx.api_key(&spec_path.field("apiKeyAuth"), auth));
    let basic = spec
        .basic_auth
        .as_ref()
        .and_then(|auth| cx.basic(path, &spec_path.field("basicAuth"), auth));
    let ext_auth = spec
        .ext_auth
        .as_ref()
        .and_then(|ext| cx.ext_auth(backends, &spec_path.field("extAuth"), ext));
    let authorization = spec
        .authorization
        .as_ref()
        .and_then(|authz| cx.authorization(&spec_path.field("authorization"), authz, jwt.as_ref()));
    let nothing = jwt.is_none()
        && oidc.is_none()
        && api_key.is_none()
        && basic.is_none()
        && ext_auth.is_none()
        && authorization.is_none();
    if nothing && cx.problems.is_empty() {
        cx.problems.report(spec_path.problem(
            "sets nothing: give at least one of jwt, oidc, apiKeyAuth, basicAuth, extAuth, authorization",
        ));
    }
    if !cx.problems.is_empty() {
        return Err(cx.problems);
    }
    Ok(compiled::SecurityPolicy {
        label: path.to_string().into(),
        oidc: oidc.map(Box::new),
        jwt,
        api_key,
        basic,
        ext_auth,
        authorization,
        invalid: false,
    })
}

impl Context<'_> {
    fn jwt(&mut self, at: &FieldPath, jwt: &Jwt) -> Option<compiled::Jwt> {
        let list = at.field("providers");
        if jwt.providers.is_empty() {
            self.problems
                .report(list.problem("at least one provider is required"));
            return None;
        }
        let mut providers = Vec::new();
        for (index, provider) in jwt.providers.iter().enumerate() {
            let at = list.index(index);
            if jwt.providers[..index]
                .iter()
                .any(|p| p.name == provider.name)
            {
                self.problems.report(
                    at.field("name")
                        .problem(format!("{:?} names another provider too", provider.name)),
                );
                continue;
            }
            if let Some(provider) = self.jwt_provider(&at, provider) {
                providers.push(provider);
            }
        }
        (providers.len() == jwt.providers.len()).then_some(compiled::Jwt {
            providers,
            optional: jwt.optional.unwrap_or(false),
        })
    }

    fn jwt_provider(
        &mut self,
        at: &FieldPath,
        provider: &model::security_policy::JwtProvider,
    ) -> Option<JwtProvider> {
        let before = self.problems.lines().len();
        if provider.name.is_empty() {
            self.problems
                .report(at.field("name").problem("must not be empty"));
        }
        let keys = match (&provider.remote_jwks, &provider.local_jwks) {
            (Some(remote), None) => {
                let at = at.field("remoteJWKS");
                let uri = self.http_url(&at.field("uri"), &remote.uri);
                let cache_duration = self.duration(
                    &at.field("cacheDuration"),
                    remote.cache_duration.as_deref(),
                    300,
                );
                let timeout = self.duration(&at.field("timeout"), remote.timeout.as_deref(), 5);
                uri.map(|uri| JwksSource::Remote {
                    uri,
                    cache_duration,
                    timeout,
                })
            }
            (None, Some(local)) => {
                let at = at.field("localJWKS").field("inline");
                match serde_json::from_str::<serde_json::Value>(&local.inline) {
                    Ok(set) if set.get("keys").is_some_and(serde_json::Value::is_array) => {
                        Some(JwksSource::Inline(local.inline.clone()))
                    }
                    Ok(_) => {
                        self.problems
                            .report(at.problem("is not a JSON Web Key Set (no \"keys\" array)"));
                        None
                    }
                    Err(error) => {
                        self.problems
                            .report(at.problem(format!("is not JSON: {error}")));
                        None
                    }
                }
            }
            _ => {
                self.problems
                    .report(at.problem("exactly one of remoteJWKS and localJWKS is required"));
                None
            }
        };
        let mut claim_to_headers = Vec::new();
        for (index, mapping) in provider.claim_to_headers.iter().enumerate() {
            let at = at.field("claimToHeaders").index(index);
            if mapping.claim.is_empty() {
                self.problems
                    .report(at.field("claim").problem("must not be empty"));
            }
            if let Some(header) = self.header_name(&at.field("header"), &mapping.header) {
                claim_to_headers.push(ClaimToHeader {
                    claim: mapping.claim.clone(),
                    header,
                });
            }
        }
        let extract_from = match &provider.extract_from {
            Some(from) => self.token_sources(&at.field("extractFrom"), from),
            None => vec![TokenSource::Header {
                name: http::header::AUTHORIZATION,
                value_prefix: "Bearer ".to_owned(),
            }],
        };
        let clock_skew = self.duration(&at.field("clockSkew"), provider.clock_skew.as_deref(), 30);
        if self.problems.lines().len() != before {
            return None;
        }
        Some(JwtProvider {
            name: provider.name.as_str().into(),
            issuer: provider.issuer.clone().filter(|issuer| !issuer.is_empty()),
            audiences: provider.audiences.clone(),
            keys: keys?,
            claim_to_headers,
            extract_from,
            forward: provider.forward.unwrap_or(false),
            clock_skew,
        })
    }

    fn token_sources(&mut self, at: &FieldPath, from: &ExtractFrom) -> Vec<TokenSource> {
        let mut sources = Vec::new();
        for (index, header) in from.headers.iter().enumerate() {
            let at = at.field("headers").index(index);
            if let Some(name) = self.header_name(&at.field("name"), &header.name) {
                sources.push(TokenSource::Header {
                    name,
                    value_prefix: header.value_prefix.clone().unwrap_or_default(),
                });
            }
        }
        for (index, cookie) in from.cookies.iter().enumerate() {
            if cookie.is_empty() || !cookie.bytes().all(is_token_byte) {
                self.problems.report(
                    at.field("cookies")
                        .index(index)
                        .problem(format!("{cookie:?} is not a cookie name")),
                );
            } else {
                sources.push(TokenSource::Cookie(cookie.clone()));
            }
        }
        for (index, param) in from.params.iter().enumerate() {
            if param.is_empty() {
                self.problems
                    .report(at.field("params").index(index).problem("must not be empty"));
            } else {
                sources.push(TokenSource::Query(param.clone()));
            }
        }
        if sources.is_empty() {
            self.problems
                .report(at.problem("names no header, cookie or query parameter"));
        }
        sources
    }

    fn api_key(&mut self, at: &FieldPath, auth: &ApiKeyAuth) -> Option<compiled::ApiKeyAuth> {
        let before = self.problems.lines().len();
        let mut keys: Vec<ApiKey> = Vec::new();
        for (index, reference) in auth.credential_refs.iter().enumerate() {
            let at = at.field("credentialRefs").index(index);
            let Some(secret) = self.secret(&at, reference) else {
                continue;
            };
            let entries = secret_entries(secret);
            if entries.is_empty() {
                self.problems.report(at.problem(format!(
                    "Secret {} has no keys",
                    self.secret_name(reference)
                )));
            }
            for (client, key) in entries {
                let Ok(key) = String::from_utf8(key) else {
                    self.problems.report(
                        at.problem(format!("the key of client {client:?} is not UTF-8 text")),
                    );
                    continue;
                };
                let key = key.trim().to_owned();
                if key.is_empty() {
                    self.problems
                        .report(at.problem(format!("the key of client {client:?} is empty")));
                } else if keys.iter().any(|k| k.key == key) {
                    self.problems.report(at.problem(format!(
                        "client {client:?} has the same key as client {:?}",
                        keys.iter().find(|k| k.key == key).map_or("", |k| &k.client_id)
                    )));
                } else {
                    keys.push(ApiKey {
                        client_id: client.as_str().into(),
                        key,
                    });
                }
            }
        }
        let extract_from = if auth.extract_from.is_empty() {
            vec![TokenSource::Header {
                name: HeaderName::from_static("x-api-key"),
                value_prefix: String::new(),
            }]
        } else {
            let mut sources = Vec::new();
            for (index, from) in auth.extract_from.iter().enumerate() {
                let from = ExtractFrom {
                    headers: from
                        .headers
                        .iter()
                        .map(|name| model::security_policy::ExtractHeader {
                            name: name.clone(),
                            value_prefix: None,
                        })
                        .collect(),
                    cookies: from.cookies.clone(),
                    params: from.params.clone(),
                };
                sources.extend(self.token_sources(&at.field("extractFrom").index(index), &from));
            }
            sources
        };
        let forward_client_id_header = auth
            .forward_client_id_header
            .as_deref()
            .and_then(|name| self.header_name(&at.field("forwardClientIDHeader"), name));
        (self.problems.lines().len() == before).then_some(compiled::ApiKeyAuth {
            keys,
            extract_from,
            forward_client_id_header,
            sanitize: auth.sanitize.unwrap_or(true),
        })
    }

    fn basic(
        &mut self,
        policy: &FieldPath,
        at: &FieldPath,
        auth: &BasicAuth,
    ) -> Option<compiled::BasicAuth> {
        let before = self.problems.lines().len();
        let users_at = at.field("users");
        let secret = self.secret(&users_at, &auth.users)?;
        let Some(file) = secret_data(secret, ".htpasswd") else {
            self.problems.report(users_at.problem(format!(
                "Secret {} has no .htpasswd entry",
                self.secret_name(&auth.users)
            )));
            return None;
        };
        let text = String::from_utf8_lossy(&file);
        let mut users: Vec<HtpasswdUser> = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let problem = |message: String| {
                users_at.problem(format!(".htpasswd line {}: {message}", number + 1))
            };
            let Some((name, hash)) = line.split_once(':') else {
                self.problems.report(problem("is not user:hash".to_owned()));
                continue;
            };
            let bcrypt = ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p));
            if !bcrypt && !hash.starts_with("{SHA}") {
                self.problems.report(problem(format!(
                    "user {name:?}: only bcrypt ($2y$) and {{SHA}} hashes are accepted"
                )));
            } else if users.iter().any(|u| u.name == name) {
                self.problems
                    .report(problem(format!("user {name:?} is listed twice")));
            } else {
                users.push(HtpasswdUser {
                    name: name.to_owned(),
                    hash: hash.to_owned(),
                });
            }
        }
        if users.is_empty() && self.problems.lines().len() == before {
            self.problems
                .report(users_at.problem(".htpasswd lists no user"));
        }
        let forward_username_header = auth
            .forward_username_header
            .as_deref()
            .and_then(|name| self.header_name(&at.field("forwardUsernameHeader"), name));
        let realm = auth.realm.clone().unwrap_or_else(|| policy.to_string());
        if realm.contains('"') || realm.chars().any(char::is_control) {
            self.problems.report(
                at.field("realm")
                    .problem("must not contain quotes or control characters"),
            );
        }
        (self.problems.lines().len() == before).then_some(compiled::BasicAuth {
            users,
            forward_username_header,
            realm,
        })
    }

    fn ext_auth(
        &mut self,
        backends: &mut BackendTable,
        at: &FieldPath,
        ext: &ExtAuth,
    ) -> Option<compiled::ExtAuth> {
        let before = self.problems.lines().len();
        let (protocol, refs, refs_at, to_backend, to_upstream) = match (&ext.http, &ext.grpc) {
            (Some(http), None) => {
                let at = at.field("http");
                let path_prefix = http.path.clone().unwrap_or_default();
                if !path_prefix.is_empty() && !path_prefix.starts_with('/') {
                    self.problems
                        .report(at.field("path").problem("must start with /"));
                }
                (
                    ExtAuthProtocol::Http { path_prefix },
                    &http.backend_refs,
                    at.field("backendRefs"),
                    self.header_names(&at.field("headersToBackend"), &http.headers_to_backend),
                    self.header_names(&at.field("headersToUpstream"), &http.headers_to_upstream),
                )
            }
            (None, Some(grpc)) => (
                ExtAuthProtocol::Grpc,
                &grpc.backend_refs,
                at.field("grpc").field("backendRefs"),
                Vec::new(),
                Vec::new(),
            ),
            _ => {
                self.problems
                    .report(at.problem("exactly one of http and grpc is required"));
                return None;
            }
        };
        let mut headers_to_backend = to_backend;
        headers_to_backend
            .extend(self.header_names(&at.field("headersToExtAuth"), &ext.headers_to_ext_auth));
        let [reference] = refs.as_slice() else {
            self.problems
                .report(refs_at.problem("exactly one backendRef is required"));
            return None;
        };
        let referrer = Referrer {
            group: model::kind::PORTCULLIS_GROUP,
            kind: KIND,
            namespace: self.namespace,
        };
        let spec = BackendRefSpec {
            group: reference.group.as_deref().unwrap_or(""),
            kind: reference.kind.as_deref().unwrap_or("Service"),
            name: &reference.name,
            namespace: reference.namespace.as_deref().unwrap_or(self.namespace),
            port: reference.port,
        };
        let backend = match backends.resolve(self.store, &referrer, &spec, &refs_at.index(0)) {
            Ok(index) if protocol == ExtAuthProtocol::Grpc => Some(backends.as_h2c(index)),
            Ok(index) => Some(index),
            Err(problem) => {
                self.problems.report(problem);
                None
            }
        };
        let timeout = self.duration(&at.field("timeout"), ext.timeout.as_deref(), 1);
        let body = ext.with_body.as_ref().map(|body| BodyForwarding {
            max_bytes: usize::try_from(body.max_request_bytes).unwrap_or(usize::MAX),
            refuse_larger: false,
        });
        if body.is_some_and(|b| b.max_bytes == 0 || b.max_bytes > 1 << 20) {
            self.problems.report(
                at.field("withBody")
                    .field("maxRequestBytes")
                    .problem("must be between 1 and 1048576"),
            );
        }
        if self.problems.lines().len() != before {
            return None;
        }
        Some(compiled::ExtAuth {
            backend: backend?,
            protocol,
            headers_to_backend,
            headers_to_upstream: to_upstream,
            all_headers_to_upstream: false,
            body,
            fail_open: ext.fail_open.unwrap_or(false),
            timeout,
        })
    }

    fn authorization(
        &mut self,
        at: &FieldPath,
        authz: &Authorization,
        jwt: Option<&compiled::Jwt>,
    ) -> Option<compiled::Authorization> {
        let before = self.problems.lines().len();
        let default_action = self.action(
            &at.field("defaultAction"),
            authz.default_action.as_deref().unwrap_or("Deny"),
        );
        let mut rules = Vec::new();
        for (index, rule) in authz.rules.iter().enumerate() {
            let at = at.field("rules").index(index);
            let action = self.action(&at.field("action"), &rule.action);
            let principal = self.principal(&at.field("principal"), &rule.principal, jwt);
            let mut methods = Vec::new();
            for (i, method) in rule.methods.iter().enumerate() {
                match Method::from_bytes(method.as_bytes()) {
                    Ok(method) => methods.push(method),
                    Err(_) => self.problems.report(
                        at.field("methods")
                            .index(i)
                            .problem(format!("{method:?} is not an HTTP method")),
                    ),
                }
            }
            for (i, path) in rule.paths.iter().enumerate() {
                if !path.starts_with('/') {
                    self.problems
                        .report(at.field("paths").index(i).problem("must start with /"));
                }
            }
            let name = rule
                .name
                .clone()
                .unwrap_or_else(|| format!("rules[{index}]"));
            rules.push(AuthorizationRule {
                name: name.into(),
                action: action.unwrap_or(Action::Deny),
                principal,
                methods,
                paths: rule.paths.clone(),
            });
        }
        (self.problems.lines().len() == before).then(|| compiled::Authorization {
            default_action: default_action.unwrap_or(Action::Deny),
            rules,
        })
    }

    fn principal(
        &mut self,
        at: &FieldPath,
        principal: &model::security_policy::Principal,
        jwt: Option<&compiled::Jwt>,
    ) -> Principal {
        let mut client_cidrs = Vec::new();
        for (index, cidr) in principal.client_cidrs.iter().enumerate() {
            match cidr.parse::<IpNet>() {
                Ok(network) => client_cidrs.push(network.trunc()),
                Err(_) => self
                    .problems
                    .report(at.field("clientCIDRs").index(index).problem(format!(
                        "{cidr:?} is not a CIDR (10.0.0.0/8, 2001:db8::/32)"
                    ))),
            }
        }
        let jwt_principal = principal.jwt.as_ref().map(|claims| {
            let at = at.field("jwt");
            if jwt.is_none() {
                self.problems
                    .report(at.problem("needs jwt authentication in the same policy"));
            }
            if let Some(provider) = &claims.provider
                && jwt.is_some_and(|jwt| !jwt.providers.iter().any(|p| &*p.name == provider))
            {
                self.problems.report(
                    at.field("provider")
                        .problem(format!("no provider is named {provider:?}")),
                );
            }
            JwtPrincipal {
                provider: claims.provider.as_deref().map(Arc::from),
                claims: claims
                    .claims
                    .iter()
                    .map(|c| ClaimValues {
                        name: c.name.clone(),
                        values: c.values.clone(),
                    })
                    .collect(),
                scopes: claims.scopes.clone(),
            }
        });
        let mut headers = Vec::new();
        for (index, header) in principal.headers.iter().enumerate() {
            let at = at.field("headers").index(index);
            if let Some(name) = self.header_name(&at.field("name"), &header.name) {
                headers.push(HeaderValues {
                    name,
                    values: header.values.clone(),
                });
            }
        }
        Principal {
            client_cidrs,
            jwt: jwt_principal,
            headers,
            clients: principal.clients.clone(),
        }
    }

    fn oidc(&mut self, policy: &FieldPath, at: &FieldPath, oidc: &Oidc) -> Option<compiled::Oidc> {
        let before = self.problems.lines().len();
        let provider_at = at.field("provider");
        let issuer = self.http_url(&provider_at.field("issuer"), &oidc.provider.issuer);
        let endpoint = |cx: &mut Self, name: &str, value: &Option<String>| {
            value
                .as_deref()
                .and_then(|v| cx.http_url(&provider_at.field(name), v))
        };
        let authorization_endpoint = endpoint(
            self,
            "authorizationEndpoint",
            &oidc.provider.authorization_endpoint,
        );
        let token_endpoint = endpoint(self, "tokenEndpoint", &oidc.provider.token_endpoint);
        let end_session_endpoint = endpoint(
            self,
            "endSessionEndpoint",
            &oidc.provider.end_session_endpoint,
        );
        if oidc.client_id.is_empty() {
            self.problems
                .report(at.field("clientID").problem("must not be empty"));
        }
        let secret_at = at.field("clientSecret");
        let value = self
            .secret(&secret_at, &oidc.client_secret)
            .map(|secret| secret_data(secret, "client-secret"));
        let client_secret = match value {
            Some(Some(value)) => Some(String::from_utf8_lossy(&value).trim().to_owned()),
            Some(None) => {
                self.problems.report(secret_at.problem(format!(
                    "Secret {} has no client-secret entry",
                    self.secret_name(&oidc.client_secret)
                )));
                None
            }
            None => None,
        };
        let redirect_uri = oidc
            .redirect_url
            .clone()
            .unwrap_or_else(|| "/oauth2/callback".to_owned());
        let redirect_path = if redirect_uri.starts_with('/') {
            Some(redirect_uri.clone())
        } else {
            self.http_url(&at.field("redirectURL"), &redirect_uri)
                .map(|uri| uri.path().to_owned())
        };
        let logout_path = oidc
            .logout_path
            .clone()
            .unwrap_or_else(|| "/logout".to_owned());
        if !logout_path.starts_with('/') {
            self.problems
                .report(at.field("logoutPath").problem("must start with /"));
        }
        let lifetime = self.duration(
            &at.field("defaultSessionLifetime"),
            oidc.default_session_lifetime.as_deref(),
            3600,
        );
        if self.problems.lines().len() != before {
            return None;
        }
        let client_secret = client_secret?;
        let cookie_key = derive_cookie_key(&policy.to_string(), &oidc.client_id, &client_secret);
        let issuer = issuer?.to_string();
        Some(compiled::Oidc {
            issuer: issuer.trim_end_matches('/').to_owned(),
            authorization_endpoint,
            token_endpoint,
            end_session_endpoint,
            client_id: oidc.client_id.clone(),
            client_secret,
            scopes: oidc.scopes.clone(),
            redirect_uri,
            redirect_path: redirect_path?,
            logout_path,
            post_logout_redirect_uri: oidc.post_logout_redirect_url.clone(),
            refresh_token: oidc.refresh_token.unwrap_or(true),
            cookie_prefix: format!("portcullis-oidc-{}", short_hash(&policy.to_string())),
            cookie_domain: oidc.cookie_domain.clone(),
            cookie_key,
            forward_access_token: oidc.forward_access_token.unwrap_or(true),
            default_session_lifetime: lifetime,
        })
    }

    /// A Secret the policy names, if it exists and the reference is allowed.
    fn secret(&mut self, at: &FieldPath, reference: &SecretRef) -> Option<&model::core::Secret> {
        let group = reference.group.as_deref().unwrap_or("");
        let kind = reference.kind.as_deref().unwrap_or("Secret");
        if !(group.is_empty() || group == "core") || kind != "Secret" {
            self.problems
                .report(at.problem(format!("{group}/{kind} is not a Secret")));
            return None;
        }
        let namespace = reference.namespace.as_deref().unwrap_or(self.namespace);
        if namespace != self.namespace {
            let referrer = Referrer {
                group: model::kind::PORTCULLIS_GROUP,
                kind: KIND,
                namespace: self.namespace,
            };
            let target = BackendRefSpec {
                group: "",
                kind: "Secret",
                name: &reference.name,
                namespace,
                port: None,
            };
            if !reference_granted(self.store, &referrer, &target) {
                self.problems.report(at.problem(format!(
                    "Secret {namespace}/{} is in another namespace and no ReferenceGrant there allows SecurityPolicy from {}",
                    reference.name, self.namespace
                )));
                return None;
            }
        }
        let key = model::key(namespace, &reference.name);
        let found = self.store.secrets.get(&key);
        if found.is_none() {
            self.problems
                .report(at.problem(format!("Secret {namespace}/{} not found", reference.name)));
        }
        found.map(|secret| &**secret)
    }

    fn secret_name(&self, reference: &SecretRef) -> String {
        let namespace = reference.namespace.as_deref().unwrap_or(self.namespace);
        format!("{namespace}/{}", reference.name)
    }

    fn header_name(&mut self, at: &FieldPath, name: &str) -> Option<HeaderName> {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(header) => Some(header),
            Err(_) => {
                self.problems
                    .report(at.problem(format!("{name:?} is not a header name")));
                None
            }
        }
    }

    fn header_names(&mut self, at: &FieldPath, names: &[String]) -> Vec<HeaderName> {
        names
            .iter()
            .enumerate()
            .filter_map(|(index, name)| self.header_name(&at.index(index), name))
            .collect()
    }

    fn http_url(&mut self, at: &FieldPath, text: &str) -> Option<Uri> {
        match text.parse::<Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.authority().is_some() =>
            {
                Some(uri)
            }
            _ => {
                self.problems
                    .report(at.problem(format!("{text:?} is not an http:// or https:// URL")));
                None
            }
        }
    }

    fn duration(&mut self, at: &FieldPath, text: Option<&str>, default_seconds: u64) -> Duration {
        match text.map(duration::parse) {
            None => Duration::from_secs(default_seconds),
            Some(Ok(value)) => value,
            Some(Err(message)) => {
                self.problems.report(at.problem(message));
                Duration::from_secs(default_seconds)
            }
        }
    }

    fn action(&mut self, at: &FieldPath, action: &str) -> Option<Action> {
        match action {
            "Allow" => Some(Action::Allow),
            "Deny" => Some(Action::Deny),
            other => {
                self.problems
                    .report(at.problem(format!("{other:?} is not Allow or Deny")));
                None
            }
        }
    }
}

/// The entries of a Secret (`data` and `stringData`), by key.
fn secret_entries(secret: &model::core::Secret) -> Vec<(String, Vec<u8>)> {
    let mut entries: Vec<(String, Vec<u8>)> = secret
        .data
        .iter()
        .flatten()
        .map(|(key, value)| (key.clone(), value.0.clone()))
        .collect();
    for (key, value) in secret.string_data.iter().flatten() {
        if !entries.iter().any(|(k, _)| k == key) {
            entries.push((key.clone(), value.clone().into_bytes()));
        }
    }
    entries
}

/// RFC 9110 `tchar`.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// 32 bytes from the policy's identity, client id and secret (SHA-256).
fn derive_cookie_key(policy: &str, client_id: &str, secret: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("portcullis oidc cookie key\0{policy}\0{client_id}\0{secret}").as_bytes(),
    );
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

/// 8 hex digits of a SHA-256: short cookie names unique per policy.
fn short_hash(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
