use super::*;

#[test]
fn expires_in_is_a_number_or_a_numeric_string() -> Result<(), serde_json::Error> {
    let parse = |json: &str| serde_json::from_str::<TokenAnswer>(json).map(|a| a.expires_in);
    assert_eq!(
        parse(r#"{"access_token":"a","expires_in":300}"#)?,
        Some(300)
    );
    assert_eq!(
        parse(r#"{"access_token":"a","expires_in":"300"}"#)?,
        Some(300)
    );
    assert_eq!(parse(r#"{"access_token":"a","expires_in":-5}"#)?, None);
    assert_eq!(parse(r#"{"access_token":"a","expires_in":null}"#)?, None);
    assert_eq!(parse(r#"{"access_token":"a"}"#)?, None);
    assert!(parse(r#"{"expires_in":300}"#).is_err(), "no access token");
    Ok(())
}

#[test]
fn basic_credentials_are_form_encoded_first() {
    // RFC 6749 §2.3.1: "a b:c" becomes "a+b%3Ac" before base64.
    assert_eq!(
        basic_authorization("id", "a b:c"),
        format!("Basic {}", STANDARD.encode("id:a+b%3Ac"))
    );
}
