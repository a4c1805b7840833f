//! RFC 3339 formatting against dates worked out by hand.

use super::rfc3339;

#[test]
fn the_epoch_is_1970_01_01() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
}

#[test]
fn leap_days_and_year_ends_are_placed_right() {
    // 2000-02-29 (a leap day of a year divisible by 400) 12:34:56.
    assert_eq!(rfc3339(951_827_696), "2000-02-29T12:34:56Z");
    // The last second of 1999, and of 2023.
    assert_eq!(rfc3339(946_684_799), "1999-12-31T23:59:59Z");
    assert_eq!(rfc3339(1_704_067_199), "2023-12-31T23:59:59Z");
    // 2100 is not a leap year: the day after 2100-02-28 is 2100-03-01.
    assert_eq!(rfc3339(4_107_542_400), "2100-03-01T00:00:00Z");
}
