//! HTTPRoute filters: validation and conversion to the snapshot's [`snapshot::Filters`].

use http::{HeaderName, HeaderValue, StatusCode};
use model::gateway_api::{
    HttpRouteRulesFilters, HttpRouteRulesFiltersRequestHeaderModifier,
    HttpRouteRulesFiltersRequestRedirectPathType, HttpRouteRulesFiltersRequestRedirectScheme,
    HttpRouteRulesFiltersType, HttpRouteRulesFiltersUrlRewritePathType,
};
use snapshot::{Filters, HeaderModifier, PathModifier, Redirect, UrlRewrite};

use crate::cors;
use crate::hostname;
use crate::mirror::MirrorTargets;

/// Compiles a list of filters. `at` is the field path of the list (`HTTPRoute a/b rules[0]`).
/// `RequestMirror` backendRefs are resolved through `mirrors`, which also collects the ones
/// that do not resolve (those mirrors are left out).
pub(crate) fn compile_filters(
    at: &str,
    specs: &[HttpRouteRulesFilters],
    mirrors: &mut MirrorTargets<'_>,
) -> Result<Filters, String> {
    let mut filters = Filters::default();
    for (index, spec) in specs.iter().enumerate() {
        let at = format!("{at}.filters[{index}]");
        let missing = |field: &str| format!("{at}: type {:?} needs the {field} field", spec.r#type);
        match spec.r#type {
            HttpRouteRulesFiltersType::RequestHeaderModifier => {
                let modifier = spec
                    .request_header_modifier
                    .as_ref()
                    .ok_or_else(|| missing("requestHeaderModifier"))?;
                set_once(
                    &at,
                    &mut filters.request_headers,
                    header_modifier(&at, modifier)?,
                )?;
            }
            HttpRouteRulesFiltersType::ResponseHeaderModifier => {
                let modifier = spec
                    .response_header_modifier
                    .as_ref()
                    .ok_or_else(|| missing("responseHeaderModifier"))?;
                // Same shape as the request modifier; the generated types differ only by name.
                let modifier: HttpRouteRulesFiltersRequestHeaderModifier = convert(modifier)?;
                set_once(
                    &at,
                    &mut filters.response_headers,
                    header_modifier(&at, &modifier)?,
                )?;
            }
            HttpRouteRulesFiltersType::RequestRedirect => {
                let redirect = spec
                    .request_redirect
                    .as_ref()
                    .ok_or_else(|| missing("requestRedirect"))?;
                let scheme = redirect.scheme.as_ref().map(|s| match s {
                    HttpRouteRulesFiltersRequestRedirectScheme::Http => "http".to_owned(),
                    HttpRouteRulesFiltersRequestRedirectScheme::Https => "https".to_owned(),
                });
                if let Some(host) = &redirect.hostname {
                    hostname::validate(host)
                        .map_err(|e| format!("{at}.requestRedirect.hostname: {e}"))?;
                }
                let port = match redirect.port {
                    None => None,
                    Some(port) => Some(u16::try_from(port).ok().filter(|p| *p != 0).ok_or_else(
                        || format!("{at}.requestRedirect.port: {port} is not a port"),
                    )?),
                };
                let status = match redirect.status_code.unwrap_or(302) {
                    code @ (301 | 302 | 303 | 307 | 308) => {
                        StatusCode::from_u16(u16::try_from(code).unwrap_or(302))
                            .unwrap_or(StatusCode::FOUND)
                    }
                    code => {
                        return Err(format!(
                            "{at}.requestRedirect.statusCode: {code} is not 301, 302, 303, 307 or 308"
                        ));
                    }
                };
                let path = match &redirect.path {
                    None => None,
                    Some(path) => Some(path_modifier(
                        &format!("{at}.requestRedirect.path"),
                        path.r#type
                            == HttpRouteRulesFiltersRequestRedirectPathType::ReplaceFullPath,
                        path.replace_full_path.as_deref(),
                        path.replace_prefix_match.as_deref(),
                    )?),
                };
                set_once(
                    &at,
                    &mut filters.redirect,
                    Redirect {
                        scheme,
                        hostname: redirect.hostname.clone(),
                        port,
                        path,
                        status,
                    },
                )?;
            }
            HttpRouteRulesFiltersType::UrlRewrite => {
                let rewrite = spec
                    .url_rewrite
                    .as_ref()
                    .ok_or_else(|| missing("urlRewrite"))?;
                let hostname = match &rewrite.hostname {
                    None => None,
                    Some(host) => {
                        hostname::validate(host)
                            .map_err(|e| format!("{at}.urlRewrite.hostname: {e}"))?;
                        Some(HeaderValue::from_str(host).map_err(|_| {
                            format!("{at}.urlRewrite.hostname: {host:?} is not a valid host")
                        })?)
                    }
                };
                let path = match &rewrite.path {
                    None => None,
                    Some(path) => Some(path_modifier(
                        &format!("{at}.urlRewrite.path"),
                        path.r#type == HttpRouteRulesFiltersUrlRewritePathType::ReplaceFullPath,
                        path.replace_full_path.as_deref(),
                        path.replace_prefix_match.as_deref(),
                    )?),
                };
                set_once(&at, &mut filters.rewrite, UrlRewrite { hostname, path })?;
            }
            HttpRouteRulesFiltersType::Cors => {
                let cors = spec.cors.as_ref().ok_or_else(|| missing("cors"))?;
                let policy = cors::compile_cors(&format!("{at}.cors"), cors)?;
                set_once(&at, &mut filters.cors, policy)?;
            }
            HttpRouteRulesFiltersType::RequestMirror => {
                let mirror = spec
                    .request_mirror
                    .as_ref()
                    .ok_or_else(|| missing("requestMirror"))?;
                filters
                    .mirrors
                    .extend(mirrors.compile(&format!("{at}.requestMirror"), mirror)?);
            }
            HttpRouteRulesFiltersType::ExternalAuth => {
                return Err(format!(
                    "{at}: filter type {:?} is not supported yet",
                    spec.r#type
                ));
            }
            HttpRouteRulesFiltersType::ExtensionRef => {
                let target = spec
                    .extension_ref
                    .as_ref()
                    .map(|e| format!("{}/{} {}", e.group, e.kind, e.name))
                    .unwrap_or_default();
                return Err(format!(
                    "{at}: ExtensionRef {target} is not supported: Portcullis has no extension filter kinds yet"
                ));
            }
        }
    }
    if filters.redirect.is_some() && filters.rewrite.is_some() {
        return Err(format!(
            "{at}.filters: RequestRedirect and URLRewrite cannot be used together"
        ));
    }
    Ok(filters)
}

/// The spec allows each core filter type at most once per list.
fn set_once<T>(at: &str, slot: &mut Option<T>, value: T) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!(
            "{at}: this filter type is already set in this list (each may appear once)"
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// Converts between generated types that share a JSON shape (rule vs backendRef filters).
pub(crate) fn convert<From: serde::Serialize, To: serde::de::DeserializeOwned>(
    value: &From,
) -> Result<To, String> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|e| format!("internal conversion error: {e}"))
}

fn header_modifier(
    at: &str,
    spec: &HttpRouteRulesFiltersRequestHeaderModifier,
) -> Result<HeaderModifier, String> {
    let name = |field: &str, i: usize, name: &str| {
        HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("{at}.{field}[{i}].name: {name:?} is not a valid header name"))
    };
    let value = |field: &str, i: usize, value: &str| {
        HeaderValue::from_str(value)
            .map_err(|_| format!("{at}.{field}[{i}].value: {value:?} is not a valid header value"))
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
    Ok(modifier)
}

fn path_modifier(
    at: &str,
    full: bool,
    full_path: Option<&str>,
    prefix: Option<&str>,
) -> Result<PathModifier, String> {
    let check = |field: &str, value: Option<&str>| -> Result<String, String> {
        let value = value.ok_or_else(|| format!("{at}.{field} is required for this type"))?;
        if !value.is_empty() && !value.starts_with('/') {
            return Err(format!("{at}.{field}: {value:?} must start with \"/\""));
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
