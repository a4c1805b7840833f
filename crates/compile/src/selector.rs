//! Kubernetes label selectors (`matchLabels` and `matchExpressions`).

use std::collections::BTreeMap;

use model::core::Labels;

/// One `matchExpressions` entry, borrowed from whichever generated type carries it.
pub(crate) struct Expression<'a> {
    pub(crate) key: &'a str,
    pub(crate) operator: &'a str,
    pub(crate) values: &'a [String],
}

/// Whether `labels` satisfy the selector. An empty selector selects everything. An unknown
/// operator selects nothing (fail closed).
pub(crate) fn matches(
    labels: Option<&Labels>,
    match_labels: Option<&BTreeMap<String, String>>,
    expressions: &[Expression<'_>],
) -> bool {
    let get = |key: &str| labels.and_then(|l| l.get(key));
    let labels_ok = match_labels
        .into_iter()
        .flatten()
        .all(|(key, value)| get(key) == Some(value.as_str()));
    let listed = |values: &[String], value: &str| values.iter().any(|v| v == value);
    labels_ok
        && expressions.iter().all(|e| match e.operator {
            "In" => get(e.key).is_some_and(|v| listed(e.values, v)),
            "NotIn" => get(e.key).is_none_or(|v| !listed(e.values, v)),
            "Exists" => get(e.key).is_some(),
            "DoesNotExist" => get(e.key).is_none(),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn have(pairs: &[(&str, &str)]) -> Labels {
        labels(pairs).into()
    }

    #[test]
    fn match_labels_must_all_hold() {
        let have = have(&[("a", "1"), ("b", "2")]);
        assert!(matches(Some(&have), Some(&labels(&[("a", "1")])), &[]));
        assert!(!matches(Some(&have), Some(&labels(&[("a", "2")])), &[]));
        assert!(!matches(None, Some(&labels(&[("a", "1")])), &[]));
    }

    #[test]
    fn expressions_follow_kubernetes_operators() {
        let have = have(&[("tier", "web")]);
        let values = vec!["web".to_owned(), "api".to_owned()];
        let expr = |operator| Expression {
            key: "tier",
            operator,
            values: &values,
        };
        assert!(matches(Some(&have), None, &[expr("In")]));
        assert!(!matches(Some(&have), None, &[expr("NotIn")]));
        assert!(matches(Some(&have), None, &[expr("Exists")]));
        assert!(!matches(Some(&have), None, &[expr("DoesNotExist")]));
        assert!(!matches(Some(&have), None, &[expr("Bogus")]));
    }
}
