//! HTTPRoute filters: validation and conversion to the snapshot's [`snapshot::Filters`].
//!
//! A filter list is compiled entry by entry and every bad filter is reported; one bad filter
//! is enough to drop the rule (the caller's decision, see `http_route::compile_rule`).
//!
//! The one `ExtensionRef` kind is our `Composition` (`crate::composition`), on HTTPRoute rules
//! only ([`FilterScope`]); any other group or kind is refused.

use http::{HeaderName, HeaderValue, StatusCode};
use model::gateway_api::{
    HttpRouteRulesFilters, HttpRouteRulesFiltersExtensionRef,
    HttpRouteRulesFiltersRequestHeaderModifier, HttpRouteRulesFiltersRequestHeaderModifierAdd,
    HttpRouteRulesFiltersRequestHeaderModifierSet, HttpRouteRulesFiltersRequestRedirect,
    HttpRouteRulesFiltersRequestRedirectPathType, HttpRouteRulesFiltersRequestRedirectScheme,
    HttpRouteRulesFiltersResponseHeaderModifier, HttpRouteRulesFiltersType,
    HttpRouteRulesFiltersUrlRewrite, HttpRouteRulesFiltersUrlRewritePathType,
};
use snapshot::{DirectResponse, Filters, HeaderModifier, PathModifier, Redirect, UrlRewrite};

use crate::composition;
use crate::cors;
use crate::external_auth;
use crate::hostname;
use crate::mirror::{self, MirrorTargets};
use crate::problems::{FieldPath, Problem, Problems};

/// Where a filter list sits, which decides the `ExtensionRef` filters it may hold.
pub(crate) enum FilterScope<'s> {
    /// An HTTPRoute rule: it may name a Composition. When the one it names cannot be used (not
    /// found, invalid), the 500 the rule answers instead is put in `unusable`.
    HttpRouteRule {
        /// The rule's answer when its Composition cannot be used.
        unusable: &'s mut Option<DirectResponse>,
    },
    /// A GRPCRoute rule (its filters are compiled as an HTTPRoute rule's).
    GrpcRouteRule,
    /// A backendRef's filters.
    BackendRef,
}

impl FilterScope<'_> {
    /// Whether the list named a Composition that could not be used.
    fn has_unusable(&self) -> bool {
        matches!(self, FilterScope::HttpRouteRule { unusable } if unusable.is_some())
    }
}

/// Compiles the `filters` list of a rule or backendRef (`owner` is its path:
/// `HTTPRoute a/b rules[0]`, `scope` says which). `RequestMirror` backendRefs and the
/// Composition of an `ExtensionRef` are resolved through `mirrors`, which also collects the
/// ones that do not resolve (those mirrors are left out; see [`FilterScope`] for the
/// Composition). `Err` holds every bad filter, one problem each.
pub(crate) fn compile_filters(
    owner: &FieldPath,
    specs: &[HttpRouteRulesFilters],
    mut scope: FilterScope<'_>,
    mirrors: &mut MirrorTargets<'_>,
) -> Result<Filters, Problems> {
    let list = owner.field("filters");
    let mut filters = Filters::default();
    let mut problems = Problems::default();
    for (index, spec) in specs.iter().enumerate() {
        // Once the list is known to be bad its rule is dropped: later filters are still
        // checked, so every problem is reported, but their mirrors are not resolved. A dropped
        // rule then adds no backend (and no ResolvedRefs problem) after its first bad filter.
        let resolving = problems.is_empty().then_some(&mut *mirrors);
        problems.ok(compile_filter(
            &list.index(index),
            spec,
            &mut filters,
            resolving,
            &mut scope,
        ));
    }
    // Spec (HTTPRouteFilter): RequestRedirect and URLRewrite cannot be used together.
    if filters.redirect.is_some() && filters.rewrite.is_some() {
        problems.report(list.problem("RequestRedirect and URLRewrite cannot be used together"));
    }
    // Both answer the request: the redirect would leave the Composition unused.
    if filters.redirect.is_some() && (filters.composition.is_some() || scope.has_unusable()) {
        problems.report(list.problem(
            "RequestRedirect and an ExtensionRef to a Composition cannot be used together (each answers the request)",
        ));
    }
    problems.or_value(filters)
}

/// Compiles one filter into `filters`, one arm per filter type. `mirrors`: where a
/// `RequestMirror` resolves its backendRef (and an `ExtensionRef` its Composition); `None` only
/// validates it.
fn compile_filter(
    at: &FieldPath,
    spec: &HttpRouteRulesFilters,
    filters: &mut Filters,
    mirrors: Option<&mut MirrorTargets<'_>>,
    scope: &mut FilterScope<'_>,
) -> Result<(), Problem> {
    let missing =
        |field: &str| at.problem(format!("type {:?} needs the {field} field", spec.r#type));
    match spec.r#type {
        HttpRouteRulesFiltersType::RequestHeaderModifier => {
            let modifier = spec
                .request_header_modifier
                .as_ref()
                .ok_or_else(|| missing("requestHeaderModifier"))?;
            set_once(
                at,
                &mut filters.request_headers,
                header_modifier(at, modifier)?,
            )
        }
        HttpRouteRulesFiltersType::ResponseHeaderModifier => {
            let modifier = spec
                .response_header_modifier
                .as_ref()
                .ok_or_else(|| missing("responseHeaderModifier"))?;
            set_once(
                at,
                &mut filters.response_headers,
                header_modifier(at, &request_shaped(modifier))?,
            )
        }
        HttpRouteRulesFiltersType::RequestRedirect => {
            let redirect = spec
                .request_redirect
                .as_ref()
                .ok_or_else(|| missing("requestRedirect"))?;
            set_once(
                at,
                &mut filters.redirect,
                Box::new(request_redirect(at, redirect)?),
            )
        }
        HttpRouteRulesFiltersType::UrlRewrite => {
            let rewrite = spec
                .url_rewrite
                .as_ref()
                .ok_or_else(|| missing("urlRewrite"))?;
            set_once(
                at,
                &mut filters.rewrite,
                Box::new(url_rewrite(at, rewrite)?),
            )
        }
        HttpRouteRulesFiltersType::Cors => {
            let cors = spec.cors.as_ref().ok_or_else(|| missing("cors"))?;
            let policy = cors::compile_cors(&at.field("cors"), cors)?;
            set_once(at, &mut filters.cors, Box::new(policy))
        }
        HttpRouteRulesFiltersType::RequestMirror => {
            let mirror = spec
                .request_mirror
                .as_ref()
                .ok_or_else(|| missing("requestMirror"))?;
            let at = at.field("requestMirror");
            match mirrors {
                Some(mirrors) => filters.mirrors.extend(mirrors.compile(&at, mirror)?),
                None => mirror::validate(&at, mirror)?,
            }
            Ok(())
        }
        HttpRouteRulesFiltersType::ExternalAuth => {
            let auth = spec
                .external_auth
                .as_ref()
                .ok_or_else(|| missing("externalAuth"))?;
            let at = at.field("externalAuth");
            let compiled = external_auth::compile(&at, auth, mirrors)?;
            match compiled {
                Some(compiled) => set_once(&at, &mut filters.external_auth, Box::new(compiled)),
                // Validated only, or its backendRef does not resolve (reported): the rule's
                // requests are refused (fail closed) rather than let through unchecked.
                None => set_once(
                    &at,
                    &mut filters.external_auth,
                    Box::new(external_auth::unresolved()),
                ),
            }
        }
        HttpRouteRulesFiltersType::ExtensionRef => {
            let reference = spec
                .extension_ref
                .as_ref()
                .ok_or_else(|| missing("extensionRef"))?;
            extension_ref(at, reference, filters, mirrors, scope)
        }
    }
}

/// An `ExtensionRef` filter (`at`): a Composition on an HTTPRoute rule, set in `filters` (or
/// its rule's 500 in `scope` when it cannot be used). `targets`: where it resolves (`None`:
/// only validate).
fn extension_ref(
    at: &FieldPath,
    reference: &HttpRouteRulesFiltersExtensionRef,
    filters: &mut Filters,
    targets: Option<&mut MirrorTargets<'_>>,
    scope: &mut FilterScope<'_>,
) -> Result<(), Problem> {
    let names = format!(
        "ExtensionRef {}/{} {}",
        reference.group, reference.kind, reference.name
    );
    if reference.group != model::kind::PORTCULLIS_GROUP || reference.kind != composition::KIND {
        return Err(at.problem(format!(
            "{names} is not supported: the only extension filter kind is portcullis.dev/Composition"
        )));
    }
    let unusable = match scope {
        FilterScope::HttpRouteRule { unusable } => unusable,
        FilterScope::GrpcRouteRule => {
            return Err(at.problem(format!(
                "{names}: a Composition answers HTTP requests with a JSON document; it is only supported on HTTPRoute rules, not on GRPCRoute rules"
            )));
        }
        FilterScope::BackendRef => {
            return Err(at.problem(format!(
                "{names}: a Composition is only supported on the rule, not on a backendRef (it answers instead of forwarding)"
            )));
        }
    };
    if filters.composition.is_some() || unusable.is_some() {
        return Err(at.problem(format!(
            "{names}: this rule already names a Composition (a rule answers with one)"
        )));
    }
    let Some(targets) = targets else {
        return Ok(());
    };
    match composition::for_rule(at, &reference.name, targets) {
        Ok(compiled) => filters.composition = Some(compiled),
        Err(response) => **unusable = Some(response),
    }
    Ok(())
}

/// The spec allows each core filter type at most once per list.
fn set_once<T>(at: &FieldPath, slot: &mut Option<T>, value: T) -> Result<(), Problem> {
    if slot.is_some() {
        return Err(
            at.problem("this filter type is already set in this list (each may appear once)")
        );
    }
    *slot = Some(value);
    Ok(())
}

/// Converts between generated types that share a JSON shape (GRPCRoute vs HTTPRoute fields);
/// `at` is the converted field, named if it ever fails.
pub(crate) fn convert<From: serde::Serialize, To: serde::de::DeserializeOwned>(
    at: &FieldPath,
    value: &From,
) -> Result<To, Problem> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|e| at.problem(format!("internal conversion error: {e}")))
}

/// A `responseHeaderModifier` as the request modifier's type: the generated types have the same
/// fields and differ only by name.
fn request_shaped(
    spec: &HttpRouteRulesFiltersResponseHeaderModifier,
) -> HttpRouteRulesFiltersRequestHeaderModifier {
    HttpRouteRulesFiltersRequestHeaderModifier {
        add: spec.add.as_ref().map(|list| {
            list.iter()
                .map(|header| HttpRouteRulesFiltersRequestHeaderModifierAdd {
                    name: header.name.clone(),
                    value: header.value.clone(),
                })
                .collect()
        }),
        remove: spec.remove.clone(),
        set: spec.set.as_ref().map(|list| {
            list.iter()
                .map(|header| HttpRouteRulesFiltersRequestHeaderModifierSet {
                    name: header.name.clone(),
                    value: header.value.clone(),
                })
                .collect()
        }),
    }
}

/// `requestHeaderModifier` (and `responseHeaderModifier`): header names and values must be
/// valid HTTP. `at` is the filter's path.
fn header_modifier(
    at: &FieldPath,
    spec: &HttpRouteRulesFiltersRequestHeaderModifier,
) -> Result<HeaderModifier, Problem> {
    let name = |field: &str, i: usize, name: &str| {
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            at.field(field)
                .index(i)
                .field("name")
                .problem(format!("{name:?} is not a valid header name"))
        })
    };
    let value = |field: &str, i: usize, value: &str| {
        HeaderValue::from_str(value).map_err(|_| {
            at.field(field)
                .index(i)
                .field("value")
                .problem(format!("{value:?} is not a valid header value"))
        })
    };
    let mut modifier = HeaderModifier::default();
    for (i, h) in spec.set.as_deref().unwrap_or_default().iter().enumerate() {
        modifier
            .set
            .push((name("set", i, &h.name)?, value("set", i, &h.value)?));
    }
    for (i, h) in spec.add.as_deref().unwrap_or_default().iter().enumerate() {
        modifier
            .add
            .push((name("add", i, &h.name)?, value("add", i, &h.value)?));
    }
    for (i, h) in spec
        .remove
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        modifier.remove.push(name("remove", i, h)?);
    }
    // Kept for the life of the config: no spare room.
    modifier.set.shrink_to_fit();
    modifier.add.shrink_to_fit();
    modifier.remove.shrink_to_fit();
    Ok(modifier)
}

/// `requestRedirect`: hostname, port, status (the spec's redirect codes, 302 by default) and
/// path. `at` is the filter's path.
fn request_redirect(
    at: &FieldPath,
    spec: &HttpRouteRulesFiltersRequestRedirect,
) -> Result<Redirect, Problem> {
    let at = at.field("requestRedirect");
    let scheme = spec.scheme.as_ref().map(|s| match s {
        HttpRouteRulesFiltersRequestRedirectScheme::Http => "http".to_owned(),
        HttpRouteRulesFiltersRequestRedirectScheme::Https => "https".to_owned(),
    });
    if let Some(host) = &spec.hostname {
        hostname::validate(host).map_err(|e| at.field("hostname").problem(e))?;
    }
    let port = match spec.port {
        None => None,
        Some(port) => Some(
            u16::try_from(port)
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| at.field("port").problem(format!("{port} is not a port")))?,
        ),
    };
    let status = match spec.status_code.unwrap_or(302) {
        code @ (301 | 302 | 303 | 307 | 308) => {
            StatusCode::from_u16(u16::try_from(code).unwrap_or(302)).unwrap_or(StatusCode::FOUND)
        }
        code => {
            return Err(at
                .field("statusCode")
                .problem(format!("{code} is not 301, 302, 303, 307 or 308")));
        }
    };
    let path = match &spec.path {
        None => None,
        Some(path) => Some(path_modifier(
            &at.field("path"),
            path.r#type == HttpRouteRulesFiltersRequestRedirectPathType::ReplaceFullPath,
            path.replace_full_path.as_deref(),
            path.replace_prefix_match.as_deref(),
        )?),
    };
    Ok(Redirect {
        scheme,
        hostname: spec.hostname.clone(),
        port,
        path,
        status,
    })
}

/// `urlRewrite`: hostname (a valid Host header value) and path. `at` is the filter's path.
fn url_rewrite(
    at: &FieldPath,
    spec: &HttpRouteRulesFiltersUrlRewrite,
) -> Result<UrlRewrite, Problem> {
    let at = at.field("urlRewrite");
    let hostname = match &spec.hostname {
        None => None,
        Some(host) => {
            let field = at.field("hostname");
            hostname::validate(host).map_err(|e| field.problem(e))?;
            Some(
                HeaderValue::from_str(host)
                    .map_err(|_| field.problem(format!("{host:?} is not a valid host")))?,
            )
        }
    };
    let path = match &spec.path {
        None => None,
        Some(path) => Some(path_modifier(
            &at.field("path"),
            path.r#type == HttpRouteRulesFiltersUrlRewritePathType::ReplaceFullPath,
            path.replace_full_path.as_deref(),
            path.replace_prefix_match.as_deref(),
        )?),
    };
    Ok(UrlRewrite { hostname, path })
}

/// A redirect's or rewrite's `path`: the replacement its type names must be set and, unless
/// empty, absolute.
fn path_modifier(
    at: &FieldPath,
    full: bool,
    full_path: Option<&str>,
    prefix: Option<&str>,
) -> Result<PathModifier, Problem> {
    let check = |field: &str, value: Option<&str>| -> Result<String, Problem> {
        let at = at.field(field);
        let value = value.ok_or_else(|| at.sentence("is required for this type"))?;
        if !value.is_empty() && !value.starts_with('/') {
            return Err(at.problem(format!("{value:?} must start with \"/\"")));
        }
        Ok(value.to_owned())
    };
    if full {
        Ok(PathModifier::ReplaceFullPath(check(
            "replaceFullPath",
            full_path,
        )?))
    } else {
        Ok(PathModifier::ReplacePrefixMatch(check(
            "replacePrefixMatch",
            prefix,
        )?))
    }
}

#[cfg(test)]
mod tests;
