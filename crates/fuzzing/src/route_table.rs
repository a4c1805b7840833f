//! Target `route_table`: the indexed [`RouteTable`] against a naive reference router.
//!
//! The input drives [`arbitrary::Unstructured`] to build a small route table and a few
//! requests from tiny alphabets of hostnames, paths, methods, headers and query parameters, so
//! that rules collide often and precedence decides. For every request the table's winner must
//! be the rule the reference picks (or both none). The reference (`reference`) shares no code
//! with the router's lookup: it tests every rule with its own matching and takes the minimum by
//! the documented Gateway API precedence.

mod generate;
mod reference;

use arbitrary::Unstructured;
use router::{PathMatch, RouteTableBuilder};

use generate::{Request, Rule};

#[cfg(doc)]
use router::RouteTable;

/// Most rules in one generated table.
const MAX_RULES: usize = 12;

/// Most requests tried against one table.
const MAX_REQUESTS: usize = 8;

/// Builds a table and requests from `data` and checks that the table and the reference agree.
///
/// # Panics
/// When they pick different rules (the message shows the table and the request), or when the
/// router itself panics.
pub fn route_table(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Ok(rules) = generate::rules(&mut input, MAX_RULES) else {
        return;
    };
    let mut builder = RouteTableBuilder::new();
    for (id, rule) in rules.iter().enumerate() {
        builder.add(&rule.hosts, rule.matching.clone(), rule.order.clone(), id);
    }
    let table = builder.build();
    assert_eq!(table.len(), rules.len());
    let Ok(count) = input.int_in_range(1..=MAX_REQUESTS) else {
        return;
    };
    for _ in 0..count {
        let Ok(request) = generate::request(&mut input) else {
            return;
        };
        check_request(&table, &rules, &request);
    }
}

fn check_request(table: &router::RouteTable<usize>, rules: &[Rule], request: &Request) {
    let view = request.view();
    let expected = reference::find(rules, &view);
    let hit = table.find(&view);
    let actual = hit.map(|hit| *hit.target);
    assert!(
        actual == expected,
        "table picks {actual:?}, reference picks {expected:?}\nrequest: {request:?}\nrules:\n{}",
        describe(rules)
    );
    if let Some(hit) = hit {
        let rule = &rules[*hit.target];
        assert!(
            same_path_match(hit.path_match, &rule.matching.path),
            "hit reports {:?} for rule {} with {:?}",
            hit.path_match,
            hit.target,
            rule.matching.path
        );
        assert!(
            rule.matching.matches(&view),
            "winner {} does not match",
            hit.target
        );
    }
}

fn same_path_match(a: &PathMatch, b: &PathMatch) -> bool {
    match (a, b) {
        (PathMatch::Exact(a), PathMatch::Exact(b))
        | (PathMatch::Prefix(a), PathMatch::Prefix(b)) => a == b,
        (PathMatch::Regex(a), PathMatch::Regex(b)) => a.as_str() == b.as_str(),
        _ => false,
    }
}

fn describe(rules: &[Rule]) -> String {
    rules
        .iter()
        .enumerate()
        .map(|(id, rule)| format!("  {id}: {rule:?}\n"))
        .collect()
}

#[cfg(test)]
mod tests;
