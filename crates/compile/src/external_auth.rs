//! The HTTPRoute `ExternalAuth` filter (Gateway API experimental channel, GEP-1494) →
//! [`snapshot::security::ExtAuth`], the same settings a SecurityPolicy's `extAuth` compiles
//! to, with the filter's semantics:
//! - HTTP: the check always carries `Host`, the method, the path and `Authorization`, plus the
//!   request headers in `http.allowedHeaders`; the answer's `http.allowedResponseHeaders` are
//!   copied upstream, or every header of the answer when that list is empty;
//! - gRPC: the request headers in `grpc.allowedHeaders`, or all of them when that is empty;
//! - `forwardBody.maxSize`: the first bytes of the body go to the service, and a larger body
//!   is refused with 413;
//! - no `failOpen`: a service that cannot answer refuses the request (403), and so does a
//!   filter whose backendRef does not resolve (the route's `ResolvedRefs` says why).
//!
//! The backendRef resolves like a `RequestMirror`'s (kinds, ReferenceGrant, Service ports).
//! The filter runs after the rule's SecurityPolicy, in the access phases
//! (`proxy/src/access.rs`); it is refused on a backendRef's filters.

use std::time::Duration;

use http::HeaderName;
use model::gateway_api::{
    HttpRouteRulesFiltersExternalAuth, HttpRouteRulesFiltersExternalAuthProtocol,
};
use snapshot::security::{BodyForwarding, ExtAuth, ExtAuthProtocol};

use crate::backend_ref::BackendRefSpec;
use crate::mirror::MirrorTargets;
use crate::problems::{FieldPath, Problem};

/// How long one check may take: the filter has no setting for it.
const TIMEOUT: Duration = Duration::from_secs(1);

/// Compiles one filter (`at` is its `externalAuth` path). `targets`: where the backendRef
/// resolves (`None`: the rule is dropped anyway, only validate). `Ok(None)`: valid, but the
/// backendRef was not resolved.
pub(crate) fn compile(
    at: &FieldPath,
    spec: &HttpRouteRulesFiltersExternalAuth,
    targets: Option<&mut MirrorTargets<'_>>,
) -> Result<Option<ExtAuth>, Problem> {
    let names = |field: &str, list: Option<&Vec<String>>| -> Result<Vec<HeaderName>, Problem> {
        list.into_iter()
            .flatten()
            .enumerate()
            .map(|(index, name)| {
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    at.field(field)
                        .index(index)
                        .problem(format!("{name:?} is not a header name"))
                })
            })
            .collect()
    };
    let (protocol, headers_to_backend, headers_to_upstream) = match spec.protocol {
        HttpRouteRulesFiltersExternalAuthProtocol::Http => {
            let http = spec.http.clone().unwrap_or_default();
            let path_prefix = http.path.clone().unwrap_or_default();
            if !path_prefix.is_empty() && !path_prefix.starts_with('/') {
                return Err(at.field("http.path").problem("must start with /"));
            }
            let mut to_backend = vec![http::header::AUTHORIZATION];
            to_backend.extend(names("http.allowedHeaders", http.allowed_headers.as_ref())?);
            let to_upstream = names(
                "http.allowedResponseHeaders",
                http.allowed_response_headers.as_ref(),
            )?;
            (
                ExtAuthProtocol::Http { path_prefix },
                to_backend,
                to_upstream,
            )
        }
        HttpRouteRulesFiltersExternalAuthProtocol::Grpc => {
            let grpc = spec.grpc.clone().unwrap_or_default();
            let to_backend = names("grpc.allowedHeaders", grpc.allowed_headers.as_ref())?;
            (ExtAuthProtocol::Grpc, to_backend, Vec::new())
        }
    };
    let body = match spec.forward_body.as_ref().and_then(|f| f.max_size) {
        None | Some(0) => None,
        Some(size) if (1..=1 << 20).contains(&size) => Some(BodyForwarding {
            max_bytes: usize::try_from(size).unwrap_or(1 << 20),
            refuse_larger: true,
        }),
        Some(_) => {
            return Err(at
                .field("forwardBody.maxSize")
                .problem("must be between 0 and 1048576"));
        }
    };
    let Some(targets) = targets else {
        return Ok(None);
    };
    let reference = &spec.backend_ref;
    let backend_ref = BackendRefSpec {
        group: reference.group.as_deref().unwrap_or(""),
        kind: reference.kind.as_deref().unwrap_or("Service"),
        name: &reference.name,
        namespace: reference
            .namespace
            .as_deref()
            .unwrap_or(targets.referrer.namespace),
        port: reference.port,
    };
    let resolved = targets.backends.resolve(
        targets.store,
        targets.referrer,
        &backend_ref,
        &at.field("backendRef"),
    );
    let backend = match resolved {
        Ok(index) if protocol == ExtAuthProtocol::Grpc => targets.backends.as_h2c(index),
        Ok(index) => index,
        Err(problem) => {
            targets.problems.report(problem);
            return Ok(None);
        }
    };
    Ok(Some(ExtAuth {
        backend,
        protocol,
        headers_to_backend,
        all_headers_to_upstream: headers_to_upstream.is_empty()
            && matches!(
                spec.protocol,
                HttpRouteRulesFiltersExternalAuthProtocol::Http
            ),
        headers_to_upstream,
        body,
        fail_open: false,
        timeout: TIMEOUT,
    }))
}

/// What a filter whose backendRef does not resolve compiles to: a service that is never
/// reachable, so every request of the rule is refused (403), as `failOpen: false` says.
pub(crate) fn unresolved() -> ExtAuth {
    ExtAuth {
        backend: usize::MAX,
        protocol: ExtAuthProtocol::Http {
            path_prefix: String::new(),
        },
        headers_to_backend: Vec::new(),
        headers_to_upstream: Vec::new(),
        all_headers_to_upstream: false,
        body: None,
        fail_open: false,
        timeout: TIMEOUT,
    }
}
