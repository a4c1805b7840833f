use super::*;

fn names(expression: &str) -> Vec<String> {
    metric_names(expression)
        .unwrap_or_else(|error| panic!("{expression}: {error:#}"))
        .into_iter()
        .collect()
}

#[test]
fn a_bare_selector_is_a_name() {
    assert_eq!(names("up"), ["up"]);
    assert_eq!(
        names("  portcullis_config_generation  "),
        ["portcullis_config_generation"]
    );
}

#[test]
fn selectors_with_matchers_and_ranges_are_names_but_labels_are_not() {
    assert_eq!(
        names(r#"rate(portcullis_requests_total{route=~"$route", code!="200"}[5m])"#),
        ["portcullis_requests_total"]
    );
}

#[test]
fn functions_aggregations_and_grouping_labels_are_not_names() {
    let expression = r#"histogram_quantile(0.99, sum by (le, route) (rate(portcullis_request_duration_seconds_bucket{backend=~"${backend}"}[$__rate_interval])))"#;
    assert_eq!(
        names(expression),
        ["portcullis_request_duration_seconds_bucket"]
    );
    assert_eq!(
        names(
            "sum(rate(a_total[1m])) without (instance, job) / ignoring(code) group_left(route) sum(b)"
        ),
        ["a_total", "b"]
    );
    assert_eq!(
        names("topk without (code) (3, c) + count by(x)(d)"),
        ["c", "d"]
    );
}

#[test]
fn binary_and_set_operators_join_names() {
    assert_eq!(
        names("a and on(x) b or c unless d > bool 0.5 atan2 e"),
        ["a", "b", "c", "d", "e"]
    );
}

#[test]
fn numbers_durations_offsets_and_literals_are_not_names() {
    assert_eq!(
        names("max_over_time(a[1h30m:1m] offset -5m) * 1e-3 + 0x1f - Inf + NaN @ start()"),
        ["a"]
    );
}

#[test]
fn strings_and_comments_are_skipped() {
    assert_eq!(
        names("label_replace(a, \"dst\", \"$1 not_a_name\", 'src', `(.*)`) # b is a comment\n + c"),
        ["a", "c"]
    );
}

#[test]
fn grafana_variables_are_not_names() {
    assert_eq!(
        names("a[$__rate_interval] + b[[[interval]]] * $scale + ${other:csv}"),
        ["a", "b"]
    );
}

#[test]
fn a_name_matcher_names_its_metric() {
    assert_eq!(
        names(r#"{__name__="a", job="x"} + {__name__=~"b"}"#),
        ["a", "b"]
    );
    assert!(names(r#"{__name__=~"a|b"}"#).is_empty());
}

#[test]
fn unbalanced_text_is_an_error() {
    for broken in ["sum(a", "a{x=\"1\"", "a[5m", "a)", "a{x=\"1}"] {
        assert!(metric_names(broken).is_err(), "{broken}");
    }
}
