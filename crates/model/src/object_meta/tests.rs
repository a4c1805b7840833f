//! Labels read as the Kubernetes map does; the metadata is a fraction of the Kubernetes type.

use std::collections::BTreeMap;

use super::{Labels, ObjectMeta};

#[test]
fn labels_read_and_write_as_a_map() {
    let labels: Labels =
        serde_json::from_str(r#"{"b": "2", "a": "1", "kubernetes.io/service-name": "web"}"#)
            .expect("a map of strings");
    assert_eq!(labels.get("a"), Some("1"));
    assert_eq!(labels.get("kubernetes.io/service-name"), Some("web"));
    assert_eq!(labels.get("c"), None);
    let keys: Vec<&str> = labels.iter().map(|(key, _)| key).collect();
    assert_eq!(keys, ["a", "b", "kubernetes.io/service-name"]);
    assert_eq!(
        serde_json::to_string(&labels).expect("serializable"),
        r#"{"a":"1","b":"2","kubernetes.io/service-name":"web"}"#
    );
}

#[test]
fn bad_labels_are_worded_as_for_the_kubernetes_type() {
    let ours = serde_json::from_str::<ObjectMeta>(r#"{"labels": {"a": 1}}"#)
        .expect_err("a number is not a label value")
        .to_string();
    let theirs =
        serde_json::from_str::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>(
            r#"{"labels": {"a": 1}}"#,
        )
        .expect_err("a number is not a label value")
        .to_string();
    assert_eq!(ours, theirs);
}

#[test]
fn a_later_duplicate_wins_as_in_a_map() {
    let labels: Labels = [("a", "1"), ("a", "2")]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels.get("a"), Some("2"));
    let from_map = Labels::from(BTreeMap::from([("a".to_owned(), "2".to_owned())]));
    assert_eq!(labels, from_map);
}

#[test]
fn metadata_is_a_third_of_the_kubernetes_type() {
    let ours = size_of::<ObjectMeta>();
    let theirs = size_of::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>();
    assert!(ours * 3 <= theirs, "{ours} vs {theirs} bytes");
}
