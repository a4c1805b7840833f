//! Hostname validation and the Gateway API listener/route hostname intersection.

/// Validates a hostname as Gateway API does: RFC 1123 labels, optionally a leading `*.`
/// wildcard label, no IP addresses, no port.
pub(crate) fn validate(hostname: &str) -> Result<(), String> {
    let body = hostname.strip_prefix("*.").unwrap_or(hostname);
    if body.is_empty() || hostname.len() > 253 {
        return Err(format!("{hostname:?} is not a valid hostname"));
    }
    if body.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "{hostname:?} is an IP address; hostnames must be DNS names"
        ));
    }
    for label in body.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !valid {
            return Err(format!(
                "{hostname:?} is not a valid hostname (label {label:?})"
            ));
        }
    }
    Ok(())
}

/// Whether `host` (exact) is covered by `pattern` (exact or `*.suffix`). A wildcard matches
/// one or more labels, never the bare suffix.
fn covers(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            let host_body = host.strip_prefix("*.").unwrap_or(host);
            host_body.len() > suffix.len()
                && host_body.ends_with(suffix)
                && host_body.as_bytes()[host_body.len() - suffix.len() - 1] == b'.'
        }
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// The hostnames a route serves on a listener: the intersection of the listener's hostname
/// and the route's hostnames, per the HTTPRouteSpec.hostnames rules. `None` for the listener
/// means "any host"; an empty route list means "any host the listener accepts". Returns the
/// effective hostnames (empty vector = any host) or `None` when they do not intersect.
pub(crate) fn intersect(listener: Option<&str>, route: &[String]) -> Option<Vec<String>> {
    let Some(listener) = listener else {
        return Some(route.iter().map(|h| h.to_ascii_lowercase()).collect());
    };
    let listener = listener.to_ascii_lowercase();
    if route.is_empty() {
        return Some(vec![listener]);
    }
    let mut effective = Vec::new();
    for host in route {
        let host = host.to_ascii_lowercase();
        let winner = if host == listener || covers(&listener, &host) {
            Some(host) // the route's hostname is the more specific (or equal) one
        } else if host.starts_with("*.") && covers(&host, &listener) {
            Some(listener.clone()) // a wildcard route hostname covering the listener's
        } else {
            None
        };
        if let Some(winner) = winner
            && !effective.contains(&winner)
        {
            effective.push(winner);
        }
    }
    if effective.is_empty() {
        None
    } else {
        Some(effective)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[&str]) -> Vec<String> {
        list.iter().map(|h| (*h).to_owned()).collect()
    }

    #[test]
    fn route_without_hostnames_takes_the_listener_hostname() {
        assert_eq!(intersect(Some("foo.com"), &[]), Some(hosts(&["foo.com"])));
        assert_eq!(intersect(None, &[]), Some(vec![]));
    }

    #[test]
    fn wildcard_listener_admits_more_specific_route_hostnames() {
        let route = hosts(&[
            "*.example.com",
            "test.example.com",
            "foo.test.example.com",
            "example.com",
            "test.example.net",
        ]);
        assert_eq!(
            intersect(Some("*.example.com"), &route),
            Some(hosts(&[
                "*.example.com",
                "test.example.com",
                "foo.test.example.com"
            ]))
        );
    }

    #[test]
    fn wildcard_route_hostname_narrows_to_the_listener_hostname() {
        assert_eq!(
            intersect(Some("test.example.com"), &hosts(&["*.example.com"])),
            Some(hosts(&["test.example.com"]))
        );
        assert_eq!(
            intersect(Some("*.foo.example.com"), &hosts(&["*.example.com"])),
            Some(hosts(&["*.foo.example.com"]))
        );
    }

    #[test]
    fn disjoint_hostnames_do_not_intersect() {
        assert_eq!(intersect(Some("foo.com"), &hosts(&["bar.com"])), None);
        assert_eq!(
            intersect(Some("*.example.com"), &hosts(&["example.com"])),
            None
        );
    }

    #[test]
    fn validation_rejects_ips_and_bad_labels() {
        assert!(validate("foo.example.com").is_ok());
        assert!(validate("*.example.com").is_ok());
        assert!(validate("10.0.0.1").is_err());
        assert!(validate("foo_bar.com").is_err());
        assert!(validate("*").is_err());
    }
}
