use std::time::Duration;

use super::*;

fn at(seconds: u64, millis: u64) -> String {
    Rfc3339Millis(UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis))
        .to_string()
}

#[test]
fn the_epoch() {
    assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
}

#[test]
fn an_ordinary_time_with_millis() {
    assert_eq!(at(1_700_000_000, 123), "2023-11-14T22:13:20.123Z");
}

#[test]
fn leap_days() {
    assert_eq!(at(1_709_164_800, 0), "2024-02-29T00:00:00.000Z");
    assert_eq!(at(951_782_400, 999), "2000-02-29T00:00:00.999Z");
    assert_eq!(at(1_709_164_800 + 86_399, 0), "2024-02-29T23:59:59.000Z");
    assert_eq!(at(1_709_164_800 + 86_400, 0), "2024-03-01T00:00:00.000Z");
}

#[test]
fn the_end_of_a_year() {
    assert_eq!(at(1_735_689_599, 5), "2024-12-31T23:59:59.005Z");
}

#[test]
fn times_before_the_epoch_show_the_epoch() {
    let before = UNIX_EPOCH - Duration::from_secs(10);
    assert_eq!(
        Rfc3339Millis(before).to_string(),
        "1970-01-01T00:00:00.000Z"
    );
}
