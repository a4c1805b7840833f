//! The scripted browser of the OIDC tests: an HTTP/1.1 client with a cookie jar that clicks
//! through oidc-provider's login and consent pages, for a gateway known by its host name.

use std::collections::HashMap;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::header::{ACCEPT, COOKIE, HOST, LOCATION, SET_COOKIE};
use http::request::Parts;
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A scripted browser: an HTTP/1.1 client and a cookie jar keyed by host (paths and expiry
/// dates are ignored; a cookie cleared with `Max-Age=0` or a 1970 `Expires` is dropped).
pub struct Browser {
    client: Client<HttpConnector, Full<Bytes>>,
    /// The gateway's host name: the provider's redirect there ends a login.
    gateway: String,
    /// Cookies by host: `(name, value)` in the order they were set.
    pub jar: HashMap<String, Vec<(String, String)>>,
}

impl Browser {
    /// A browser with an empty jar, for the gateway at host `gateway`.
    pub fn new(gateway: &str) -> Browser {
        Browser {
            client: Client::builder(TokioExecutor::new()).build_http(),
            gateway: gateway.to_owned(),
            jar: HashMap::new(),
        }
    }

    /// Keeps the `Set-Cookie`s of a response from `host`.
    pub fn store(&mut self, host: &str, headers: &HeaderMap) {
        let cookies = self.jar.entry(host.to_owned()).or_default();
        for value in headers.get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let Some((name, value)) = text.split(';').next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let lower = text.to_ascii_lowercase();
            let cleared = lower.contains("max-age=0") || lower.contains("expires=thu, 01 jan 1970");
            cookies.retain(|(known, _)| known != name.trim());
            if !cleared {
                cookies.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
    }

    /// The `Cookie` header a request to `host` carries.
    pub fn cookie_header(&self, host: &str) -> Option<String> {
        let cookies = self.jar.get(host)?;
        (!cookies.is_empty()).then(|| {
            cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// The value of cookie `name` of `host`.
    pub fn cookie(&self, host: &str, name: &str) -> Option<&str> {
        let cookies = self.jar.get(host)?;
        cookies
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value.as_str())
    }

    /// Sets cookie `name` of `host` (as a page script would).
    pub fn set_cookie(&mut self, host: &str, name: &str, value: &str) {
        let cookies = self.jar.entry(host.to_owned()).or_default();
        cookies.retain(|(known, _)| known != name);
        cookies.push((name.to_owned(), value.to_owned()));
    }

    /// The request head a browser would send the gateway for `target`.
    pub fn gateway_request(&self, method: Method, target: &str, accept: Option<&str>) -> Parts {
        let mut builder = Request::builder()
            .method(method)
            .uri(target)
            .header(HOST, self.gateway.as_str());
        if let Some(accept) = accept {
            builder = builder.header(ACCEPT, accept);
        }
        if let Some(cookies) = self.cookie_header(&self.gateway) {
            builder = builder.header(COOKIE, cookies);
        }
        builder
            .body(())
            .expect("a literal request builds")
            .into_parts()
            .0
    }

    /// Sends one request to the provider and returns status, headers and body.
    pub async fn send(
        &mut self,
        method: Method,
        uri: &Uri,
        form: Option<String>,
    ) -> anyhow::Result<(StatusCode, HeaderMap, String)> {
        let host = uri.authority().context("absolute URI")?.to_string();
        let mut request = Request::builder().method(method).uri(uri.clone());
        if let Some(cookies) = self.cookie_header(&host) {
            request = request.header(COOKIE, cookies);
        }
        let body = match form {
            Some(form) => {
                request = request.header("content-type", "application/x-www-form-urlencoded");
                Full::new(Bytes::from(form))
            }
            None => Full::new(Bytes::new()),
        };
        let response = self.client.request(request.body(body)?).await?;
        let (head, body) = response.into_parts();
        self.store(&host, &head.headers);
        let body = body.collect().await?.to_bytes();
        Ok((
            head.status,
            head.headers,
            String::from_utf8_lossy(&body).into_owned(),
        ))
    }

    /// Follows the provider from `start` (the gateway's login redirect) through its login and
    /// consent forms until it redirects to the gateway; returns that URL, unfetched.
    pub async fn log_in_at_provider(&mut self, start: &str, login: &str) -> anyhow::Result<Uri> {
        let mut uri: Uri = start.parse()?;
        let mut form: Option<String> = None;
        for _ in 0..12 {
            let method = if form.is_some() {
                Method::POST
            } else {
                Method::GET
            };
            let (status, headers, body) = self.send(method, &uri, form.take()).await?;
            if status.is_redirection() {
                let location = headers
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .context("redirect without Location")?;
                let next = resolve(&uri, location)?;
                if next.host() == Some(self.gateway.as_str()) {
                    return Ok(next);
                }
                uri = next;
                continue;
            }
            if status != StatusCode::OK {
                bail!("provider answered {status} at {uri}: {body}");
            }
            let (action, fields) = parse_form(&body, login)?;
            uri = resolve(&uri, &action)?;
            form = Some(fields);
        }
        bail!("the provider never redirected back to the gateway")
    }
}

/// `location` resolved against `base` (absolute, or a path on the same origin).
fn resolve(base: &Uri, location: &str) -> anyhow::Result<Uri> {
    if location.starts_with('/') {
        let authority = base.authority().context("absolute base")?;
        let scheme = base.scheme_str().unwrap_or("http");
        return Ok(format!("{scheme}://{authority}{location}").parse()?);
    }
    Ok(location.parse()?)
}

/// The first form of an oidc-provider interaction page: its action and the fields a person
/// would send (hidden fields, plus login and password on the login form).
fn parse_form(html: &str, login: &str) -> anyhow::Result<(String, String)> {
    let action = regex::Regex::new(r#"<form[^>]*action="([^"]+)""#)?
        .captures(html)
        .and_then(|c| c.get(1))
        .context("a page without a form")?
        .as_str()
        .replace("&amp;", "&");
    let mut fields: Vec<(String, String)> = Vec::new();
    for hidden in regex::Regex::new(r#"<input type="hidden" name="([^"]+)" value="([^"]*)""#)?
        .captures_iter(html)
    {
        if let (Some(name), Some(value)) = (hidden.get(1), hidden.get(2)) {
            fields.push((name.as_str().to_owned(), value.as_str().to_owned()));
        }
    }
    if html.contains(r#"name="login""#) {
        fields.push(("login".to_owned(), login.to_owned()));
        fields.push(("password".to_owned(), "any password".to_owned()));
    }
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&fields)
        .finish();
    Ok((action, body))
}
