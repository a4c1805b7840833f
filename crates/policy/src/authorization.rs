//! Authorization rules at request time: allow or deny by who sent the request and what it asks.
//!
//! The rules of a policy's [`Authorization`] are checked in order; the first rule whose every
//! condition holds decides (its action), and a request no rule matches gets the default
//! action. A denied request gets 403 `forbidden`. Pure and allocation-free: the rules are
//! plain data in the snapshot, the identity comes from authentication.
//!
//! Conditions (each one a rule lists must hold; within one, any listed value is enough):
//! - `client_cidrs`: the client address (IPv4-mapped IPv6 addresses compared as IPv4);
//! - `jwt`: the request was authenticated by a JWT (of `provider`, when named) whose claims
//!   each have one of the listed values (a claim that is an array matches when one element
//!   does; numbers and booleans compare as their JSON text; a dot walks into nested objects)
//!   and whose scopes (`scope`, space-separated, and/or `scp`, an array or a string) hold every
//!   listed scope;
//! - `headers`: for each listed header, one of the request's values of it equals a listed
//!   value;
//! - `clients`: the API-key client id or basic-auth user is listed;
//! - `methods`, `paths` (prefixes matched segment by segment: `/api` matches `/api` and
//!   `/api/x`, not `/apix`).

use std::net::IpAddr;

use http::StatusCode;
use http::request::Parts;
use serde_json::Value;
use snapshot::security::{
    Action, Authorization, AuthorizationRule, ClaimValues, HeaderValues, JwtPrincipal, Principal,
    SecurityPolicy,
};
use telemetry::Metrics;

use crate::{Denial, Identity, JwtIdentity, claim};

/// `forbidden`: an authorization rule (or the default action) denied the request.
pub const FORBIDDEN: &str = "forbidden";

/// Applies the policy's authorization rules. `Ok` when the policy has none or the deciding
/// action is allow; otherwise a 403 [`Denial`] with reason `forbidden` (a policy that did not
/// validate: 500 `invalid-policy`, failing closed). `client_ip` is the
/// client address after trusted proxy hops. Counts
/// `portcullis_auth_decisions_total{method="authorization", result="allowed"|"denied"}` when
/// the policy has rules.
#[allow(
    clippy::result_large_err,
    reason = "the Denial is the response itself, built once on the cold path; the shape is shared by every phase"
)]
pub fn authorize(
    policy: &SecurityPolicy,
    identity: &Identity,
    parts: &Parts,
    client_ip: IpAddr,
    metrics: &Metrics,
) -> Result<(), Denial> {
    if policy.invalid {
        return Err(crate::authn::invalid_policy());
    }
    let Some(authorization) = &policy.authorization else {
        return Ok(());
    };
    let (action, rule) = decide(authorization, identity, parts, client_ip);
    match action {
        Action::Allow => {
            metrics.auth_decision(&policy.label, "authorization", "allowed");
            Ok(())
        }
        Action::Deny => {
            tracing::debug!(policy = %policy.label, rule = rule.unwrap_or("default"), "authorization denied");
            metrics.auth_decision(&policy.label, "authorization", "denied");
            Err(Denial::new(StatusCode::FORBIDDEN, FORBIDDEN))
        }
    }
}

/// The deciding action and the name of the rule that decided (`None`: the default action).
pub fn decide<'a>(
    authorization: &'a Authorization,
    identity: &Identity,
    parts: &Parts,
    client_ip: IpAddr,
) -> (Action, Option<&'a str>) {
    let client_ip = client_ip.to_canonical();
    authorization
        .rules
        .iter()
        .find(|rule| rule_matches(rule, identity, parts, client_ip))
        .map_or((authorization.default_action, None), |rule| {
            (rule.action, Some(&*rule.name))
        })
}

fn rule_matches(
    rule: &AuthorizationRule,
    identity: &Identity,
    parts: &Parts,
    client_ip: IpAddr,
) -> bool {
    (rule.methods.is_empty() || rule.methods.contains(&parts.method))
        && (rule.paths.is_empty()
            || rule
                .paths
                .iter()
                .any(|prefix| path_has_prefix(parts.uri.path(), prefix)))
        && principal_matches(&rule.principal, identity, parts, client_ip)
}

fn principal_matches(
    principal: &Principal,
    identity: &Identity,
    parts: &Parts,
    client_ip: IpAddr,
) -> bool {
    (principal.client_cidrs.is_empty()
        || principal
            .client_cidrs
            .iter()
            .any(|net| net.contains(&client_ip)))
        && principal.jwt.as_ref().is_none_or(|wanted| {
            identity
                .jwt
                .as_ref()
                .is_some_and(|jwt| jwt_matches(wanted, jwt))
        })
        && principal
            .headers
            .iter()
            .all(|wanted| header_matches(wanted, parts))
        && (principal.clients.is_empty()
            || identity
                .client
                .as_deref()
                .is_some_and(|client| principal.clients.iter().any(|listed| listed == client)))
}

fn jwt_matches(wanted: &JwtPrincipal, jwt: &JwtIdentity) -> bool {
    wanted
        .provider
        .as_ref()
        .is_none_or(|provider| *provider == jwt.provider)
        && wanted
            .claims
            .iter()
            .all(|wanted| claim_matches(wanted, jwt))
        && wanted.scopes.iter().all(|scope| has_scope(jwt, scope))
}

fn claim_matches(wanted: &ClaimValues, jwt: &JwtIdentity) -> bool {
    match jwt.claim(&wanted.name) {
        Some(Value::Array(items)) => items
            .iter()
            .any(|item| scalar_is_one_of(item, &wanted.values)),
        Some(value) => scalar_is_one_of(value, &wanted.values),
        None => false,
    }
}

/// Whether a string, number or boolean equals one of `values` (non-strings as JSON text).
fn scalar_is_one_of(value: &Value, values: &[String]) -> bool {
    match value {
        Value::String(text) => values.iter().any(|listed| listed == text),
        Value::Number(number) => values.iter().any(|listed| number_is(number, listed)),
        Value::Bool(flag) => values
            .iter()
            .any(|listed| listed == if *flag { "true" } else { "false" }),
        Value::Array(_) | Value::Object(_) | Value::Null => false,
    }
}

/// Whether `number`'s JSON text is `listed`, without formatting it: integers compare as
/// integers, anything else through `f64` (`"1.0"` matches `1.0`).
fn number_is(number: &serde_json::Number, listed: &str) -> bool {
    if let Some(integer) = number.as_i64() {
        return listed.parse::<i64>().is_ok_and(|parsed| parsed == integer);
    }
    if let Some(integer) = number.as_u64() {
        return listed.parse::<u64>().is_ok_and(|parsed| parsed == integer);
    }
    number
        .as_f64()
        .is_some_and(|float| listed.parse::<f64>().is_ok_and(|parsed| parsed == float))
}

/// Whether the token's `scope` or `scp` holds `scope`.
fn has_scope(jwt: &JwtIdentity, scope: &str) -> bool {
    let in_text = |value: Option<&Value>| {
        value
            .and_then(Value::as_str)
            .is_some_and(|text| text.split_ascii_whitespace().any(|found| found == scope))
    };
    let scp = claim(&jwt.claims, "scp");
    in_text(claim(&jwt.claims, "scope"))
        || in_text(scp)
        || matches!(scp, Some(Value::Array(items)) if items.iter().any(|item| item.as_str() == Some(scope)))
}

fn header_matches(wanted: &HeaderValues, parts: &Parts) -> bool {
    parts.headers.get_all(&wanted.name).iter().any(|value| {
        wanted
            .values
            .iter()
            .any(|listed| listed.as_bytes() == value.as_bytes())
    })
}

/// Whether `path` starts with `prefix` segment by segment (Gateway API `PathPrefix`
/// semantics: a trailing slash on the prefix is ignored; `/` matches everything).
pub fn path_has_prefix(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests;
