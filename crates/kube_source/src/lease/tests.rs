//! When a Lease held by another replica may be taken over.

use std::time::Duration;

use super::{LeaseOptions, is_free};

fn options(seconds: u64) -> LeaseOptions {
    LeaseOptions {
        namespace: "portcullis-system".to_owned(),
        name: "portcullis".to_owned(),
        identity: "replica-b".to_owned(),
        duration: Duration::from_secs(seconds),
    }
}

#[test]
fn a_lease_without_holder_is_free_at_once() {
    assert!(is_free("", Duration::ZERO, Some(15), &options(15)));
}

#[test]
fn a_held_lease_is_free_once_unrenewed_for_its_duration() {
    let ours = options(15);
    assert!(!is_free(
        "replica-a",
        Duration::from_secs(14),
        Some(15),
        &ours
    ));
    assert!(is_free(
        "replica-a",
        Duration::from_secs(15),
        Some(15),
        &ours
    ));
}

#[test]
fn a_shorter_own_duration_waits_for_the_duration_the_holder_wrote() {
    let ours = options(2);
    assert!(!is_free(
        "replica-a",
        Duration::from_secs(10),
        Some(15),
        &ours
    ));
    assert!(is_free(
        "replica-a",
        Duration::from_secs(15),
        Some(15),
        &ours
    ));
}

#[test]
fn a_longer_own_duration_or_an_unwritten_one_uses_our_own() {
    let ours = options(20);
    assert!(!is_free(
        "replica-a",
        Duration::from_secs(15),
        Some(15),
        &ours
    ));
    assert!(!is_free("replica-a", Duration::from_secs(19), None, &ours));
    assert!(is_free(
        "replica-a",
        Duration::from_secs(20),
        Some(-1),
        &ours
    ));
}
