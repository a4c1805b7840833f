//! The human-readable form of an [`Explanation`] (`portcullis explain` without `--json`).

use std::fmt::{self, Display, Formatter};

use super::{
    Action, CompositionPlan, Explanation, MatchConditions, MatchedRule, PartPlan, Reason,
    RouteExplanation, RouteResult,
};

impl Display for Explanation {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let r = &self.request;
        write!(f, "request:  {} {} (host {})", r.method, r.url, r.host)?;
        for header in &r.headers {
            write!(f, "\n          {header}")?;
        }
        writeln!(f)?;
        if let Some(socket) = &self.socket {
            writeln!(
                f,
                "socket:   {} ({}): {}",
                socket.address, socket.scheme, socket.reason
            )?;
            if !socket.others.is_empty() {
                writeln!(f, "          not chosen: {}", socket.others.join(", "))?;
            }
        }
        if let Some(listener) = &self.listener {
            writeln!(
                f,
                "listener: {} (hostname {})",
                listener.label, listener.hostname
            )?;
            for isolated in &listener.isolated {
                writeln!(
                    f,
                    "          less specific, isolated from this host: {isolated}"
                )?;
            }
            if listener.path != r.path {
                writeln!(f, "          path normalized to {}", listener.path)?;
            }
            if listener.redirects {
                writeln!(
                    f,
                    "          answers with a redirect to the normalized path"
                )?;
            }
        }
        writeln!(f, "result:   {}", self.summary)?;
        if let Some(matched) = &self.matched {
            write_matched(f, matched)?;
        }
        if !self.routes.is_empty() {
            writeln!(f, "\nroutes:")?;
            for route in &self.routes {
                write_route(f, route)?;
            }
        }
        Ok(())
    }
}

fn write_matched(f: &mut Formatter<'_>, matched: &MatchedRule) -> fmt::Result {
    writeln!(
        f,
        "\nmatched:  {} match {} (route hostname {})",
        matched.rule_name, matched.match_index, matched.hostname
    )?;
    writeln!(f, "  match:    {}", ConditionsText(&matched.conditions))?;
    for beaten in &matched.beats {
        writeln!(
            f,
            "  beats:    {} [{}]: {}",
            beaten.rule, beaten.criterion, beaten.detail
        )?;
    }
    if !matched.filters.is_empty() {
        writeln!(f, "  filters:  {}", matched.filters.join(", "))?;
    }
    let p = &matched.policies;
    let policies: Vec<String> = [
        p.security.clone(),
        p.rate_limit.clone(),
        p.retry.then(|| "retries".to_owned()),
        p.session_persistence
            .then(|| "session persistence".to_owned()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !policies.is_empty() {
        writeln!(f, "  policies: {}", policies.join(", "))?;
    }
    write_action(f, &matched.action)
}

fn write_action(f: &mut Formatter<'_>, action: &Action) -> fmt::Result {
    match action {
        Action::Respond { status, body } => {
            writeln!(f, "  responds: {status} {}", body.trim_end())?;
        }
        Action::Compose { composition } => write_composition(f, composition)?,
        Action::Forward { backends } => {
            for backend in backends {
                let name = backend
                    .backend
                    .as_deref()
                    .or(backend.invalid.as_deref().map(|_| "unusable backendRef"))
                    .unwrap_or("?");
                write!(
                    f,
                    "  backend:  {name} weight {} ({}%)",
                    backend.weight, backend.percent
                )?;
                if let Some(policy) = &backend.traffic_policy {
                    write!(f, ", {policy}")?;
                }
                if backend.tls {
                    write!(f, ", TLS")?;
                }
                if let Some(invalid) = &backend.invalid {
                    write!(f, ": 500 {}", invalid.trim_end())?;
                }
                writeln!(f)?;
                if !backend.filters.is_empty() {
                    writeln!(f, "            filters: {}", backend.filters.join(", "))?;
                }
                for endpoint in &backend.endpoints {
                    writeln!(
                        f,
                        "            endpoint {}:{} weight {}",
                        endpoint.address, endpoint.port, endpoint.weight
                    )?;
                }
            }
        }
    }
    Ok(())
}

fn write_composition(f: &mut Formatter<'_>, plan: &CompositionPlan) -> fmt::Result {
    writeln!(
        f,
        "  composes: {} (merge {}, deadline {}, at most {} bytes per part)",
        plan.composition, plan.merge, plan.timeout, plan.max_part_bytes
    )?;
    if let Some(pattern) = &plan.path_pattern {
        write!(f, "            path pattern {pattern}")?;
        match plan.path_fits {
            Some(true) => {
                let bound: Vec<String> = plan
                    .bindings
                    .iter()
                    .map(|binding| format!("{}={}", binding.name, binding.value))
                    .collect();
                write!(f, ": {}", bound.join(", "))?;
            }
            Some(false) => write!(
                f,
                ": the request's path does not fit it ({{request.path.*}} have no value)"
            )?,
            None => {}
        }
        writeln!(f)?;
    }
    for wave in &plan.waves {
        for (index, part) in wave.parts.iter().enumerate() {
            let label = if index == 0 {
                format!("wave {}:", wave.wave)
            } else {
                String::new()
            };
            write!(f, "            {label:<8}")?;
            write_part(f, part)?;
        }
    }
    Ok(())
}

/// One part on one line (two with headers).
fn write_part(f: &mut Formatter<'_>, part: &PartPlan) -> fmt::Result {
    write!(f, "{} {} {} -> ", part.name, part.method, part.target)?;
    match (&part.backend, &part.invalid) {
        (Some(backend), _) => write!(f, "{backend}")?,
        (None, Some(invalid)) => write!(f, "unusable backendRef ({invalid})")?,
        (None, None) => write!(f, "?")?,
    }
    write!(
        f,
        ", {}",
        if part.required {
            "required"
        } else {
            "optional"
        }
    )?;
    if let Some(timeout) = &part.timeout {
        write!(f, ", timeout {timeout}")?;
    }
    if let Some(select) = &part.select {
        write!(f, ", select {select}")?;
    }
    if !part.depends_on.is_empty() {
        write!(f, ", after {}", part.depends_on.join(", "))?;
    }
    writeln!(f)?;
    if !part.forward_headers.is_empty() || !part.set_headers.is_empty() {
        let mut headers = Vec::new();
        if !part.forward_headers.is_empty() {
            headers.push(format!("forwards {}", part.forward_headers.join(", ")));
        }
        headers.extend(
            part.set_headers
                .iter()
                .map(|header| format!("sets {header}")),
        );
        writeln!(f, "                    {}", headers.join("; "))?;
    }
    Ok(())
}

fn write_route(f: &mut Formatter<'_>, route: &RouteExplanation) -> fmt::Result {
    write!(f, "  {} [{}]", route.route, result_text(route.result))?;
    if let Some(reason) = &route.reason {
        write!(f, ": {}", ReasonText(reason))?;
    }
    writeln!(f)?;
    for rule in &route.rules {
        for matching in &rule.matches {
            write!(
                f,
                "    rules[{}] match {} ({}) [{}]",
                rule.rule,
                matching.match_index,
                ConditionsText(&matching.conditions),
                result_text(matching.result)
            )?;
            if let Some(reason) = &matching.reason {
                write!(f, ": {}", ReasonText(reason))?;
            }
            writeln!(f)?;
        }
    }
    Ok(())
}

fn result_text(result: RouteResult) -> &'static str {
    match result {
        RouteResult::Won => "won",
        RouteResult::Lost => "lost",
        RouteResult::NoMatch => "no match",
        RouteResult::NotConsidered => "not considered",
    }
}

/// A match's conditions on one line.
struct ConditionsText<'a>(&'a MatchConditions);

impl Display for ConditionsText<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let c = self.0;
        write!(f, "path {}", c.path)?;
        if let Some(method) = &c.method {
            write!(f, ", method {method}")?;
        }
        for header in &c.headers {
            write!(f, ", header {header}")?;
        }
        for query in &c.query {
            write!(f, ", query {query}")?;
        }
        Ok(())
    }
}

/// A reason in words.
struct ReasonText<'a>(&'a Reason);

impl Display for ReasonText<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            Reason::Hostname { host, hostnames } => write!(
                f,
                "hostname: {host} matches none of {}",
                hostnames.join(", ")
            ),
            Reason::Path { path, expected } => {
                write!(f, "path: {path} does not match {expected}")
            }
            Reason::Method { method, expected } => {
                write!(f, "method: {method} is not {expected}")
            }
            Reason::Header {
                name,
                expected,
                actual,
            } if actual.is_empty() => {
                write!(f, "header: {name} is absent (wants {expected})")
            }
            Reason::Header {
                name,
                expected,
                actual,
            } => write!(
                f,
                "header: {name}: {} does not match {expected}",
                actual.join(", ")
            ),
            Reason::Query { name, expected } => {
                write!(f, "query: parameter {name} does not match {expected}")
            }
            Reason::Precedence {
                winner,
                criterion,
                detail,
            } => write!(
                f,
                "matched, but {winner} takes precedence [{criterion}]: {detail}"
            ),
            Reason::ListenerIsolation { listener, chosen } => write!(
                f,
                "listener isolation: attached to {listener}, but {chosen} is more specific for this host"
            ),
            Reason::ListenerHostname { listeners } => write!(
                f,
                "hostname: attached to listeners that do not accept this host: {}",
                listeners.join("; ")
            ),
            Reason::OtherSocket { listeners } => {
                write!(f, "attached elsewhere: {}", listeners.join("; "))
            }
            Reason::NotAttached { conditions } => {
                write!(f, "not attached: {}", conditions.join("; "))
            }
        }
    }
}
