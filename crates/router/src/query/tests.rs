use super::*;

#[test]
fn query_value_is_percent_decoded() {
    assert!(decoded_eq("a%20b", "a b"));
    assert!(decoded_eq("a+b", "a b"));
    assert!(decoded_eq("%2f%2F", "//"));
    assert!(!decoded_eq("a%20b", "a%20b"));
}

#[test]
fn invalid_percent_escape_stays_literal() {
    assert!(decoded_eq("100%", "100%"));
    assert!(decoded_eq("%zz", "%zz"));
    assert!(decoded_eq("%4", "%4"));
}

#[test]
fn first_occurrence_of_repeated_param_wins() {
    assert_eq!(first_value("a=1&a=2", "a"), Some("1"));
}

#[test]
fn param_names_are_case_sensitive_and_decoded() {
    assert_eq!(first_value("A=1&a=2", "a"), Some("2"));
    assert_eq!(first_value("my%20key=v", "my key"), Some("v"));
}

#[test]
fn param_without_equals_has_empty_value() {
    assert_eq!(first_value("flag&x=1", "flag"), Some(""));
    assert_eq!(first_value("&&x=1", "x"), Some("1"));
    assert_eq!(first_value("x=1", "y"), None);
}

#[test]
fn decode_borrows_when_nothing_to_decode() {
    assert!(matches!(decode("plain"), Some(Cow::Borrowed("plain"))));
    assert_eq!(decode("a%C3%A9").as_deref(), Some("aé"));
    assert_eq!(decode("%FF"), None);
}
