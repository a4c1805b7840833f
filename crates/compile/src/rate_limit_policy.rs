//! `RateLimitPolicy.spec` → [`snapshot::rate_limit::RateLimitPolicy`]: every field
//! validated, every problem reported with its path.
//!
//! Decisions:
//! - A rule's counters are identified by the policy, the scope, the rule's position and its
//!   name (`RateLimitPolicy ns/name global[0]`, `... local[1] per-user`): Redis keys derive
//!   from it, so replicas with the same config share counters, and renaming a rule starts it
//!   afresh.
//! - `global` without `--redis` is refused (`Accepted: False`): a quota that is silently
//!   never counted is worse than an error.

use std::time::Duration;

use http::{HeaderName, Method};
use ipnet::IpNet;
use model::rate_limit_policy::{ClientSelector, RateLimitPolicySpec, RateLimitRule, ValueSelector};
use snapshot::rate_limit::{
    self as compiled, GlobalLimits, Limit, PathSelector, Pattern, Selector, ValueMatch,
};

use crate::CompileOptions;
use crate::duration;
use crate::problems::{FieldPath, Problems};

/// The most a limit may count per period (keeps the GCRA arithmetic in range).
const MAX_REQUESTS: u64 = 1_000_000_000;

/// Validates one policy. `path` is the policy's (`RateLimitPolicy ns/name`).
pub(crate) fn compile(
    options: &CompileOptions,
    _namespace: &str,
    path: &FieldPath,
    spec: &RateLimitPolicySpec,
) -> Result<compiled::RateLimitPolicy, Problems> {
    let mut problems = Problems::default();
    let at = path.field("spec");
    let label = path.to_string();
    let local = spec.local.as_ref().map_or_else(Vec::new, |local| {
        rules(
            &label,
            "local",
            &at.field("local"),
            &local.rules,
            &mut problems,
        )
    });
    let global = spec.global.as_ref().map(|global| {
        let at = at.field("global");
        if !options.redis {
            problems.report(at.problem(
                "global limits need Redis: start portcullis with --redis URL (or PORTCULLIS_REDIS_URL)",
            ));
        }
        let fail_open = match global.failure_mode.as_deref() {
            None | Some("FailOpen") => true,
            Some("FailClosed") => false,
            Some(other) => {
                problems.report(
                    at.field("failureMode")
                        .problem(format!("{other:?} is not FailOpen or FailClosed")),
                );
                true
            }
        };
        let timeout = match global.timeout.as_deref().map(duration::parse) {
            None => Duration::from_millis(50),
            Some(Ok(timeout)) if !timeout.is_zero() => timeout,
            Some(Ok(_)) => {
                problems.report(at.field("timeout").problem("must be more than 0"));
                Duration::from_millis(50)
            }
            Some(Err(message)) => {
                problems.report(at.field("timeout").problem(message));
                Duration::from_millis(50)
            }
        };
        GlobalLimits {
            rules: rules(&label, "global", &at, &global.rules, &mut problems),
            fail_open,
            timeout,
        }
    });
    if spec.local.is_none() && spec.global.is_none() {
        problems.report(at.problem("sets nothing: give local or global limits"));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(compiled::RateLimitPolicy {
        label: label.into(),
        local,
        global,
    })
}

/// The rules of `local` or `global` (`scope`).
fn rules(
    label: &str,
    scope: &str,
    at: &FieldPath,
    rules: &[RateLimitRule],
    problems: &mut Problems,
) -> Vec<compiled::RateLimitRule> {
    let list = at.field("rules");
    if rules.is_empty() {
        problems.report(list.problem("at least one rule is required"));
    }
    rules
        .iter()
        .enumerate()
        .filter_map(|(index, rule)| {
            let at = list.index(index);
            let id = match &rule.name {
                Some(name) => format!("{label} {scope}[{index}] {name}"),
                None => format!("{label} {scope}[{index}]"),
            };
            let limit = limit(&at.field("limit"), &rule.limit, problems)?;
            let mut selectors = Vec::new();
            for (i, selector) in rule.client_selectors.iter().enumerate() {
                client_selector(
                    &at.field("clientSelectors").index(i),
                    selector,
                    &mut selectors,
                    problems,
                );
            }
            Some(compiled::RateLimitRule {
                id: id.into(),
                selectors,
                limit,
                shadow: rule.shadow_mode.unwrap_or(false),
            })
        })
        .collect()
}

fn limit(
    at: &FieldPath,
    limit: &model::rate_limit_policy::Limit,
    problems: &mut Problems,
) -> Option<Limit> {
    let period = match limit.unit.as_str() {
        "Second" => Duration::from_secs(1),
        "Minute" => Duration::from_secs(60),
        "Hour" => Duration::from_secs(3600),
        "Day" => Duration::from_secs(86_400),
        other => {
            problems.report(
                at.field("unit")
                    .problem(format!("{other:?} is not Second, Minute, Hour or Day")),
            );
            return None;
        }
    };
    if limit.requests == 0 || limit.requests > MAX_REQUESTS {
        problems.report(
            at.field("requests")
                .problem(format!("must be between 1 and {MAX_REQUESTS}")),
        );
        return None;
    }
    let burst = limit.burst.unwrap_or(limit.requests);
    if burst == 0 || burst > MAX_REQUESTS {
        problems.report(
            at.field("burst")
                .problem(format!("must be between 1 and {MAX_REQUESTS}")),
        );
        return None;
    }
    Some(Limit {
        requests: limit.requests,
        period,
        burst,
    })
}

/// Adds the selectors of one `clientSelectors` entry.
fn client_selector(
    at: &FieldPath,
    selector: &ClientSelector,
    into: &mut Vec<Selector>,
    problems: &mut Problems,
) {
    let before = into.len();
    for (index, header) in selector.headers.iter().enumerate() {
        let at = at.field("headers").index(index);
        let Ok(name) = HeaderName::from_bytes(header.name.as_bytes()) else {
            problems.report(
                at.field("name")
                    .problem(format!("{:?} is not a header name", header.name)),
            );
            continue;
        };
        let value = ValueSelector {
            kind: header.kind.clone(),
            value: header.value.clone(),
        };
        let Some(mut matching) = value_match(&at, &value, problems) else {
            continue;
        };
        if header.invert.unwrap_or(false) {
            matching = match matching {
                ValueMatch::Distinct => {
                    problems.report(at.field("invert").problem("cannot invert Distinct"));
                    continue;
                }
                // `invert` with a value would need "any value but this one": refused rather
                // than half done.
                ValueMatch::Exact(_) | ValueMatch::RegularExpression(_)
                    if header.value.is_some() =>
                {
                    problems.report(at.field("invert").problem(
                        "invert selects requests without the header: leave value and type out",
                    ));
                    continue;
                }
                _ => ValueMatch::Absent,
            };
        }
        into.push(Selector::Header { name, matching });
    }
    if let Some(cidr) = &selector.source_cidr {
        let at = at.field("sourceCIDR");
        let distinct = match cidr.kind.as_deref() {
            None | Some("Exact") => false,
            Some("Distinct") => true,
            Some(other) => {
                problems.report(
                    at.field("type")
                        .problem(format!("{other:?} is not Exact or Distinct")),
                );
                false
            }
        };
        match cidr.value.parse::<IpNet>() {
            Ok(network) => into.push(Selector::SourceCidr {
                network: network.trunc(),
                distinct,
            }),
            Err(_) => problems.report(
                at.field("value")
                    .problem(format!("{:?} is not a CIDR (10.0.0.0/8, ::/0)", cidr.value)),
            ),
        }
    }
    for (index, claim) in selector.jwt_claims.iter().enumerate() {
        let at = at.field("jwtClaims").index(index);
        if claim.name.is_empty() {
            problems.report(at.field("name").problem("must not be empty"));
            continue;
        }
        let value = ValueSelector {
            kind: claim.kind.clone(),
            value: claim.value.clone(),
        };
        if let Some(matching) = value_match(&at, &value, problems) {
            into.push(Selector::JwtClaim {
                name: claim.name.clone(),
                matching,
            });
        }
    }
    if let Some(client) = &selector.client
        && let Some(matching) = value_match(&at.field("client"), client, problems)
    {
        into.push(Selector::Client { matching });
    }
    if let Some(path) = &selector.path {
        let at = at.field("path");
        let value = path.value.clone().unwrap_or_default();
        let matching = match path.kind.as_deref() {
            Some("Distinct") => Some(PathSelector::Distinct),
            kind @ (None | Some("PathPrefix" | "Exact")) => {
                if value.starts_with('/') {
                    Some(if kind == Some("Exact") {
                        PathSelector::Exact(value)
                    } else {
                        PathSelector::Prefix(value)
                    })
                } else {
                    problems.report(at.field("value").problem("must start with /"));
                    None
                }
            }
            Some(other) => {
                problems.report(
                    at.field("type")
                        .problem(format!("{other:?} is not PathPrefix, Exact or Distinct")),
                );
                None
            }
        };
        if let Some(matching) = matching {
            into.push(Selector::Path { matching });
        }
    }
    if !selector.methods.is_empty() {
        let mut methods = Vec::new();
        for (index, method) in selector.methods.iter().enumerate() {
            match Method::from_bytes(method.as_bytes()) {
                Ok(method) => methods.push(method),
                Err(_) => problems.report(
                    at.field("methods")
                        .index(index)
                        .problem(format!("{method:?} is not an HTTP method")),
                ),
            }
        }
        into.push(Selector::Methods(methods));
    }
    if into.len() == before && problems.is_empty() {
        problems.report(at.problem(
            "selects nothing: give headers, sourceCIDR, jwtClaims, client, path or methods",
        ));
    }
}

/// `type` + `value` of a header, claim or client selector.
fn value_match(
    at: &FieldPath,
    selector: &ValueSelector,
    problems: &mut Problems,
) -> Option<ValueMatch> {
    let value = |problems: &mut Problems| match &selector.value {
        Some(value) => Some(value.clone()),
        None => {
            problems.report(at.field("value").problem("is required for this type"));
            None
        }
    };
    match selector.kind.as_deref() {
        None | Some("Exact") => value(problems).map(ValueMatch::Exact),
        Some("Distinct") => Some(ValueMatch::Distinct),
        Some("RegularExpression") => {
            let pattern = value(problems)?;
            match regex::Regex::new(&format!("^(?:{pattern})$")) {
                Ok(regex) => Some(ValueMatch::RegularExpression(Pattern(regex))),
                Err(error) => {
                    problems.report(
                        at.field("value")
                            .problem(format!("is not a regular expression: {error}")),
                    );
                    None
                }
            }
        }
        Some(other) => {
            problems.report(at.field("type").problem(format!(
                "{other:?} is not Exact, RegularExpression or Distinct"
            )));
            None
        }
    }
}
