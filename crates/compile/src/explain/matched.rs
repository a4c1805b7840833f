//! The winning rule in full: its match, the matches it beats, filters, policies, backends and
//! their endpoints, or the plan of its Composition.

use std::sync::Arc;

use snapshot::{BackendTarget, Filters, ListenerRoutes, RouteRule, RuleAction};

use super::evaluate::{Candidate, conditions, match_name, route_label};
use super::{
    Action, BackendExplanation, Beaten, EndpointExplanation, MatchedRule, Policies, Reason,
    RouteResult, Sources,
};

/// The winner in full: its filters, policies and backends (or Composition). `path`: the path
/// it matched (normalized).
pub(super) fn matched_rule(
    sources: &Sources<'_>,
    listener: &ListenerRoutes,
    rule: &Arc<RouteRule>,
    winner: &Candidate<'_>,
    judged: &[(&Candidate<'_>, RouteResult, Option<Reason>)],
    (host, path): (&str, &str),
) -> MatchedRule {
    let order = winner.entry.order();
    let beats = judged
        .iter()
        .filter_map(|(candidate, _, reason)| match reason {
            Some(Reason::Precedence {
                criterion, detail, ..
            }) => Some(Beaten {
                rule: match_name(candidate.entry),
                criterion,
                detail: detail.clone(),
            }),
            _ => None,
        })
        .collect();
    MatchedRule {
        route: route_label(rule),
        rule: order.rule,
        rule_name: rule.name.to_string(),
        match_index: order.matching,
        hostname: winner
            .best_hostname(host)
            .map_or_else(|| "*".to_owned(), ToString::to_string),
        conditions: conditions(winner.entry.matching()),
        beats,
        filters: filter_names(&rule.filters),
        policies: Policies {
            security: listener.security_of(rule).map(|p| p.label.to_string()),
            rate_limit: listener.rate_limit_of(rule).map(|p| p.label.to_string()),
            retry: rule.retry.is_some(),
            session_persistence: rule.session.is_some(),
        },
        action: action(sources, rule, path),
    }
}

/// The filters that are set, by their Gateway API names.
fn filter_names(filters: &Filters) -> Vec<String> {
    let mut names = Vec::new();
    if filters.cors.is_some() {
        names.push("CORS".to_owned());
    }
    if filters.external_auth.is_some() {
        names.push("ExternalAuth".to_owned());
    }
    if let Some(redirect) = &filters.redirect {
        names.push(format!("RequestRedirect ({})", redirect.status));
    }
    if filters.request_headers.is_some() {
        names.push("RequestHeaderModifier".to_owned());
    }
    if filters.rewrite.is_some() {
        names.push("URLRewrite".to_owned());
    }
    if !filters.mirrors.is_empty() {
        names.push(format!("RequestMirror (x{})", filters.mirrors.len()));
    }
    if let Some(composition) = &filters.composition {
        names.push(format!("ExtensionRef ({})", composition.name));
    }
    if filters.response_headers.is_some() {
        names.push("ResponseHeaderModifier".to_owned());
    }
    names
}

fn action(sources: &Sources<'_>, rule: &RouteRule, path: &str) -> Action {
    // A rule naming a Composition answers with it, whatever its action says.
    if let Some(composition) = &rule.filters.composition {
        return Action::Compose {
            composition: super::composition_plan(
                composition,
                &sources.snapshot.backends,
                Some(path),
            ),
        };
    }
    let choice = match &rule.action {
        RuleAction::Respond(response) => {
            return Action::Respond {
                status: response.status.as_u16(),
                body: String::from_utf8_lossy(&response.body).into_owned(),
            };
        }
        RuleAction::Forward(choice) => choice,
    };
    let total = choice.total_weight.max(1) as f64;
    let backends = choice
        .candidates
        .iter()
        .map(|candidate| {
            let mut explained = BackendExplanation {
                weight: candidate.weight,
                percent: (candidate.weight as f64 * 10_000.0 / total).round() / 100.0,
                backend: None,
                invalid: None,
                protocol: None,
                tls: false,
                traffic_policy: None,
                filters: filter_names(candidate.filters()),
                endpoints: Vec::new(),
            };
            match &candidate.target {
                BackendTarget::Invalid(response) => {
                    explained.invalid = Some(String::from_utf8_lossy(&response.body).into_owned());
                }
                BackendTarget::Backend(index) => {
                    if let Some(backend) = sources.snapshot.backends.get(*index) {
                        explained.backend = Some(backend.id.to_string());
                        explained.protocol = Some(format!("{:?}", backend.protocol));
                        explained.tls = backend.tls.is_some();
                        explained.traffic_policy =
                            (sources.traffic_policy)(*index).map(|label| label.to_string());
                        explained.endpoints = (sources.endpoints)(&backend.id)
                            .into_iter()
                            .map(|target| EndpointExplanation {
                                address: match target.address {
                                    snapshot::backend::TargetAddress::Ip(ip) => ip.to_string(),
                                    snapshot::backend::TargetAddress::Dns(name) => name.to_string(),
                                },
                                port: target.port,
                                weight: target.weight,
                            })
                            .collect();
                    }
                }
            }
            explained
        })
        .collect();
    Action::Forward { backends }
}
