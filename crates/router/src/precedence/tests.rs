use super::*;
use crate::matching::{HeaderMatch, QueryMatch, ValueMatch};

fn order(created: Option<i64>, route: &str, rule: u32, matching: u32) -> RouteOrder {
    RouteOrder {
        created,
        route: route.into(),
        rule,
        matching,
    }
}

fn path_only(path: PathMatch) -> RuleMatch {
    RuleMatch {
        path,
        ..RuleMatch::default()
    }
}

#[test]
fn route_without_timestamp_sorts_after_any_timestamp() {
    assert!(order(Some(i64::MAX), "z/z", 9, 9) < order(None, "a/a", 0, 0));
    assert!(order(Some(-5), "b/b", 0, 0) < order(Some(3), "a/a", 0, 0));
}

#[test]
fn route_order_breaks_ties_by_name_then_rule_then_match() {
    assert!(order(Some(1), "a/x", 5, 5) < order(Some(1), "b/x", 0, 0));
    assert!(order(Some(1), "a/x", 0, 5) < order(Some(1), "a/x", 1, 0));
    assert!(order(Some(1), "a/x", 1, 0) < order(Some(1), "a/x", 1, 1));
}

#[test]
fn path_kind_ranks_exact_then_regex_then_prefix() {
    let tie = order(None, "a/a", 0, 0);
    let exact = path_only(PathMatch::exact("/a"));
    let regex = path_only(PathMatch::regex("/a.*").expect("valid regex"));
    let prefix = path_only(PathMatch::prefix("/a/very/long/prefix"));
    assert!(MatchRank::new(&exact, &tie) < MatchRank::new(&regex, &tie));
    assert!(MatchRank::new(&regex, &tie) < MatchRank::new(&prefix, &tie));
}

#[test]
fn longer_regex_source_ranks_first() {
    let tie = order(None, "a/a", 0, 0);
    let long = path_only(PathMatch::regex("/a/b.*").expect("valid regex"));
    let short = path_only(PathMatch::regex("/a.*").expect("valid regex"));
    assert!(MatchRank::new(&long, &tie) < MatchRank::new(&short, &tie));
}

#[test]
fn criteria_apply_in_spec_order() {
    let tie = order(None, "a/a", 0, 0);
    let header = HeaderMatch {
        name: http::HeaderName::from_static("x-a"),
        value: ValueMatch::exact("1"),
    };
    let query = QueryMatch {
        name: "q".into(),
        value: ValueMatch::exact("1"),
    };
    // A longer prefix outranks a method match; a method match outranks any number of headers;
    // headers outrank query parameters.
    let longer_prefix = path_only(PathMatch::prefix("/ab"));
    let method = RuleMatch {
        method: Some(http::Method::GET),
        ..path_only(PathMatch::prefix("/a"))
    };
    let headers = RuleMatch {
        headers: vec![header.clone(), header],
        ..path_only(PathMatch::prefix("/a"))
    };
    let queries = RuleMatch {
        query: vec![query.clone(), query.clone(), query],
        ..path_only(PathMatch::prefix("/a"))
    };
    let ranks = [&longer_prefix, &method, &headers, &queries].map(|m| MatchRank::new(m, &tie));
    assert!(ranks.is_sorted());
}

#[test]
fn decide_precedence_names_the_first_criterion_that_differs_and_agrees_with_the_rank() {
    let older = order(Some(1), "z/z", 3, 0);
    let newer = order(Some(2), "a/a", 0, 0);
    let header = HeaderMatch {
        name: http::HeaderName::from_static("qa"),
        value: ValueMatch::exact("1"),
    };
    let with_header = RuleMatch {
        headers: vec![header],
        ..path_only(PathMatch::prefix("/"))
    };
    let plain = path_only(PathMatch::prefix("/"));
    let exact = path_only(PathMatch::exact("/"));
    let longer = path_only(PathMatch::prefix("/a"));
    let cases = [
        (
            (&with_header, &newer),
            (&plain, &older),
            PrecedenceCriterion::HeaderCount,
        ),
        (
            (&exact, &newer),
            (&longer, &older),
            PrecedenceCriterion::PathKind,
        ),
        (
            (&longer, &newer),
            (&plain, &older),
            PrecedenceCriterion::PathLength,
        ),
        (
            (&plain, &older),
            (&plain, &newer),
            PrecedenceCriterion::CreationTime,
        ),
        (
            (&plain, &older),
            (&plain, &older),
            PrecedenceCriterion::Equal,
        ),
    ];
    for (a, b, criterion) in cases {
        let (ordering, decided) = decide_precedence(a, b);
        assert_eq!(decided, criterion);
        assert_eq!(
            ordering,
            MatchRank::new(a.0, a.1).cmp(&MatchRank::new(b.0, b.1))
        );
        if criterion != PrecedenceCriterion::Equal {
            assert_eq!(ordering, Ordering::Less, "{criterion:?}");
            assert_eq!(decide_precedence(b, a), (Ordering::Greater, criterion));
        }
    }
}
