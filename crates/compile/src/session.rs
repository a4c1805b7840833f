//! `sessionPersistence` (GEP-1619, experimental) of an HTTPRoute or GRPCRoute rule.
//!
//! | field | compiled as |
//! |---|---|
//! | `sessionName` | cookie or header name; default `portcullis-session` |
//! | `type` | `Cookie` (default) or `Header` |
//! | `cookieConfig.lifetimeType` | `Session` (default): no Max-Age; `Permanent`: Max-Age = `absoluteTimeout` (required) |
//! | `absoluteTimeout` | the session ends this long after its first request (in the token); the Max-Age of a `Permanent` cookie |
//! | `idleTimeout` | the session ends when unused this long (the token carries its last use, renewed at most once a second); a Portcullis extension since v1.6, see below |
//!
//! Gateway API v1.6 removed `idleTimeout` from `sessionPersistence` (it was only ever in the
//! experimental channel). We keep reading it: the `gateway-api` types we build on still carry
//! it, standalone configs that use it keep their behaviour, and dropping it would silently turn
//! idle-limited sessions into sessions limited only by `absoluteTimeout` (or by nothing). In
//! Kubernetes mode a v1.6 CRD prunes the field before we see it, so there it has no effect.

use std::time::Duration;

use http::HeaderName;
use model::gateway_api::{
    HttpRouteRulesSessionPersistence, HttpRouteRulesSessionPersistenceCookieConfigLifetimeType,
    HttpRouteRulesSessionPersistenceType,
};
use snapshot::session::{SessionKind, SessionPersistence};

use crate::duration;
use crate::problems::{FieldPath, Problem};

/// The session name when `sessionName` is not set.
pub(crate) const DEFAULT_SESSION_NAME: &str = "portcullis-session";

/// Compiles a rule's `sessionPersistence`; `rule` is the rule's field path. The first invalid
/// field fails the block.
pub(crate) fn compile_session(
    rule: &FieldPath,
    spec: Option<&HttpRouteRulesSessionPersistence>,
) -> Result<Option<SessionPersistence>, Problem> {
    let Some(spec) = spec else {
        return Ok(None);
    };
    let at = rule.field("sessionPersistence");
    let timeout = |field: &str, value: Option<&String>| {
        value
            .map(|text| duration::parse(text).map_err(|e| at.field(field).problem(e)))
            .transpose()
    };
    let absolute_timeout = timeout("absoluteTimeout", spec.absolute_timeout.as_ref())?;
    let idle_timeout = timeout("idleTimeout", spec.idle_timeout.as_ref())?;
    let name = spec.session_name.as_deref().unwrap_or(DEFAULT_SESSION_NAME);
    if name.is_empty() || name.len() > 128 {
        return Err(at
            .field("sessionName")
            .problem("must be 1 to 128 characters long"));
    }
    Ok(Some(SessionPersistence {
        kind: session_kind(&at, spec, name, absolute_timeout)?,
        absolute_timeout,
        idle_timeout,
    }))
}

/// Where the session token travels: a cookie (whose `Max-Age` is `absoluteTimeout` when
/// `Permanent`) or a header.
fn session_kind(
    at: &FieldPath,
    spec: &HttpRouteRulesSessionPersistence,
    name: &str,
    absolute_timeout: Option<Duration>,
) -> Result<SessionKind, Problem> {
    let permanent = spec
        .cookie_config
        .as_ref()
        .and_then(|c| c.lifetime_type.as_ref())
        == Some(&HttpRouteRulesSessionPersistenceCookieConfigLifetimeType::Permanent);
    match spec
        .r#type
        .clone()
        .unwrap_or(HttpRouteRulesSessionPersistenceType::Cookie)
    {
        HttpRouteRulesSessionPersistenceType::Cookie => {
            if !name.bytes().all(is_cookie_name_byte) {
                return Err(at
                    .field("sessionName")
                    .problem(format!("{name:?} is not a valid cookie name")));
            }
            if permanent && absolute_timeout.is_none() {
                return Err(at
                    .field("cookieConfig.lifetimeType")
                    .problem("Permanent needs absoluteTimeout"));
            }
            Ok(SessionKind::Cookie {
                name: name.to_owned(),
                max_age: if permanent { absolute_timeout } else { None },
            })
        }
        HttpRouteRulesSessionPersistenceType::Header => {
            if spec.cookie_config.is_some() {
                return Err(at
                    .field("cookieConfig")
                    .problem("only allowed when type is Cookie"));
            }
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                at.field("sessionName")
                    .problem(format!("{name:?} is not a valid header name"))
            })?;
            Ok(SessionKind::Header { name })
        }
    }
}

/// RFC 6265 cookie-name: an RFC 7230 token.
fn is_cookie_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use model::gateway_api::HttpRouteRulesSessionPersistenceCookieConfig;

    use super::*;

    fn spec(json: &str) -> HttpRouteRulesSessionPersistence {
        serde_json::from_str(json).expect("json")
    }

    #[test]
    fn absent_is_none() {
        assert_eq!(compile_session(&"r".into(), None), Ok(None));
    }

    #[test]
    fn defaults_to_a_session_cookie() {
        let compiled = compile_session(
            &"r".into(),
            Some(&HttpRouteRulesSessionPersistence::default()),
        );
        assert_eq!(
            compiled,
            Ok(Some(SessionPersistence {
                kind: SessionKind::Cookie {
                    name: DEFAULT_SESSION_NAME.into(),
                    max_age: None,
                },
                absolute_timeout: None,
                idle_timeout: None,
            }))
        );
    }

    #[test]
    fn permanent_cookie_lives_absolute_timeout() {
        let compiled = compile_session(
            &"r".into(),
            Some(&spec(
                r#"{"sessionName": "sid", "type": "Cookie", "absoluteTimeout": "1h",
                   "idleTimeout": "10m", "cookieConfig": {"lifetimeType": "Permanent"}}"#,
            )),
        )
        .expect("valid")
        .expect("some");
        assert_eq!(
            compiled.kind,
            SessionKind::Cookie {
                name: "sid".into(),
                max_age: Some(Duration::from_secs(3600)),
            }
        );
        assert_eq!(compiled.absolute_timeout, Some(Duration::from_secs(3600)));
        assert_eq!(compiled.idle_timeout, Some(Duration::from_secs(600)));
    }

    /// v1.6 dropped `idleTimeout` from the API; standalone configs keep it (module doc).
    #[test]
    fn idle_timeout_outlives_its_removal_from_the_api() {
        let compiled = compile_session(&"r".into(), Some(&spec(r#"{"idleTimeout": "30s"}"#)))
            .expect("valid")
            .expect("some");
        assert_eq!(compiled.idle_timeout, Some(Duration::from_secs(30)));
        assert_eq!(compiled.absolute_timeout, None);
    }

    #[test]
    fn header_type() {
        let compiled = compile_session(
            &"r".into(),
            Some(&spec(r#"{"sessionName": "X-Session", "type": "Header"}"#)),
        )
        .expect("valid")
        .expect("some");
        assert_eq!(
            compiled.kind,
            SessionKind::Header {
                name: HeaderName::from_static("x-session"),
            }
        );
    }

    #[test]
    fn invalid_fields_name_their_path() {
        let cases = [
            (
                r#"{"absoluteTimeout": "soon"}"#,
                "r.sessionPersistence.absoluteTimeout",
            ),
            (
                r#"{"idleTimeout": "5x"}"#,
                "r.sessionPersistence.idleTimeout",
            ),
            (
                r#"{"sessionName": "a b"}"#,
                "r.sessionPersistence.sessionName",
            ),
            (r#"{"sessionName": ""}"#, "r.sessionPersistence.sessionName"),
            (
                r#"{"type": "Header", "sessionName": "a:b"}"#,
                "r.sessionPersistence.sessionName",
            ),
            (
                r#"{"cookieConfig": {"lifetimeType": "Permanent"}}"#,
                "r.sessionPersistence.cookieConfig.lifetimeType",
            ),
        ];
        for (json, path) in cases {
            let error = compile_session(&"r".into(), Some(&spec(json)))
                .expect_err(json)
                .to_string();
            assert!(error.starts_with(path), "{json}: {error}");
        }
        let header_with_cookie = HttpRouteRulesSessionPersistence {
            r#type: Some(HttpRouteRulesSessionPersistenceType::Header),
            cookie_config: Some(HttpRouteRulesSessionPersistenceCookieConfig::default()),
            ..Default::default()
        };
        let error = compile_session(&"r".into(), Some(&header_with_cookie))
            .expect_err("cookieConfig")
            .to_string();
        assert!(
            error.starts_with("r.sessionPersistence.cookieConfig"),
            "{error}"
        );
    }
}
