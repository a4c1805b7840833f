use std::path::Path;

use super::*;

fn deploy_crds() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds")
}

#[test]
fn checked_in_crds_are_the_generators_output() {
    let dir = deploy_crds();
    let files = files().expect("the CRDs serialise");
    for (name, text) in &files {
        let path = dir.join(name);
        let current = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run `cargo run -p crdgen -- deploy/crds`",
                path.display()
            )
        });
        assert!(
            current == *text,
            "{} differs from the generator's output: run `cargo run -p crdgen -- deploy/crds`",
            path.display()
        );
    }
    // No stale file of a kind that was renamed or removed.
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .expect("deploy/crds")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    present.sort();
    let mut expected: Vec<String> = files.into_iter().map(|(name, _)| name).collect();
    expected.sort();
    assert_eq!(
        present, expected,
        "deploy/crds holds exactly the generated files"
    );
}

/// Every field of the documented example that holds a duration: its path in the spec.
fn duration_paths(value: &serde_json::Value, path: &str, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                duration_paths(child, &format!("{path}.{key}"), found);
            }
        }
        serde_json::Value::String(text) => {
            let is_duration = text
                .trim_end_matches(['h', 'm', 's'])
                .chars()
                .all(|c| c.is_ascii_digit())
                && text.chars().next().is_some_and(|c| c.is_ascii_digit())
                && text.ends_with(['h', 'm', 's']);
            if is_duration {
                found.push(path.to_owned());
            }
        }
        _ => {}
    }
}

/// The schema of `path` (`.a.b`) below `schema`.
fn schema_at<'a>(schema: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    path.split('.')
        .filter(|part| !part.is_empty())
        .fold(schema, |schema, part| &schema["properties"][part])
}

#[test]
fn every_duration_of_the_documented_examples_has_the_gep_2257_pattern() {
    // Every duration field of both policy kinds is set in these examples (README, model tests).
    let examples = [
        (
            "backendtrafficpolicies.portcullis.dev",
            r#"{"loadBalancer": {"consistentHash": {"type": "Cookie", "cookie": {"name": "c", "ttl": "1h"}}, "slowStart": {"window": "30s"}},
                "healthCheck": {"active": {"type": "TCP", "interval": "2s", "timeout": "1s"},
                                "passive": {"interval": "5s", "baseEjectionTime": "30s"}},
                "circuitBreaker": {"errorRate": {"threshold": 0.5, "window": "10s", "openFor": "5s"}},
                "retry": {"perRetry": {"timeout": "1s", "backOff": {"baseInterval": "25ms", "maxInterval": "250ms"}}},
                "timeout": {"tcp": {"connectTimeout": "1s"}, "http": {"connectionIdleTimeout": "60s", "maxConnectionDuration": "0s"}}}"#,
            14,
        ),
        (
            "clienttrafficpolicies.portcullis.dev",
            r#"{"timeout": {"http": {"requestHeaderTimeout": "10s", "requestBodyTimeout": "60s", "idleTimeout": "60s"}}}"#,
            3,
        ),
    ];
    let crds = crds();
    for (name, example, count) in examples {
        let crd = crds
            .iter()
            .find(|crd| crd.metadata.name.as_deref() == Some(name))
            .expect("the CRD");
        let schema = serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .expect("a schema"),
        )
        .expect("JSON");
        let spec = &schema["properties"]["spec"];
        let example: serde_json::Value = serde_json::from_str(example).expect("example JSON");
        let mut paths = Vec::new();
        duration_paths(&example, "", &mut paths);
        assert_eq!(paths.len(), count, "{name}: {paths:?}");
        for path in paths {
            assert_eq!(
                schema_at(spec, &path)["pattern"],
                model::schema::DURATION_PATTERN,
                "{name} spec{path}"
            );
        }
    }
}
