//! The suite's weight rules.

use std::collections::BTreeMap;

use super::{Sampling, backend_name, evaluate};

fn sampling(weights: &[(&str, f64)]) -> Sampling {
    Sampling {
        requests: 100,
        concurrency: 1,
        tolerance: 0.05,
        max_samples: 1,
        weights: weights
            .iter()
            .map(|(name, weight)| ((*name).to_owned(), *weight))
            .collect(),
    }
}

fn counts(counts: &[(&str, usize)]) -> BTreeMap<String, usize> {
    counts
        .iter()
        .map(|(name, count)| ((*name).to_owned(), *count))
        .collect()
}

#[test]
fn backend_name_drops_the_two_hash_parts() {
    assert_eq!(
        backend_name("infra-backend-v1-7d4f9c8b6d-x2b4q"),
        "infra-backend-v1"
    );
    assert_eq!(backend_name("short-name"), "short-name");
}

#[test]
fn shares_within_tolerance_pass() {
    let sampling = sampling(&[("a", 0.7), ("b", 0.3), ("c", 0.0)]);
    assert_eq!(
        evaluate(&sampling, &counts(&[("a", 73), ("b", 27)])),
        Ok(())
    );
}

#[test]
fn a_share_outside_tolerance_fails() {
    let sampling = sampling(&[("a", 0.7), ("b", 0.3), ("c", 0.0)]);
    assert!(evaluate(&sampling, &counts(&[("a", 80), ("b", 20)])).is_err());
}

#[test]
fn traffic_to_a_zero_weight_backend_fails() {
    let sampling = sampling(&[("a", 0.7), ("b", 0.3), ("c", 0.0)]);
    assert!(evaluate(&sampling, &counts(&[("a", 69), ("b", 30), ("c", 1)])).is_err());
}
