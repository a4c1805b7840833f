//! Round trips of the hand-written protobuf encoding.

use super::EchoAssertions;

#[test]
fn echo_response_round_trips() {
    let assertions = EchoAssertions {
        fully_qualified_method: "/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/Echo"
            .to_owned(),
        headers: vec![
            ("x-a".to_owned(), "1".to_owned()),
            ("x-b".to_owned(), String::new()),
        ],
        authority: "example.com".to_owned(),
        namespace: "gateway-conformance-infra".to_owned(),
        pod: "grpc-infra-backend-v1-abc-def".to_owned(),
    };
    let decoded = EchoAssertions::decode_response(&assertions.encode_response());
    assert_eq!(decoded, Ok(assertions));
}

#[test]
fn unknown_fields_are_skipped() {
    // field 7 varint 150, then field 1 (assertions) holding field 1 "m".
    let message = [0x38, 0x96, 0x01, 0x0a, 0x03, 0x0a, 0x01, b'm'];
    let decoded = EchoAssertions::decode_response(&message).map(|a| a.fully_qualified_method);
    assert_eq!(decoded, Ok("m".to_owned()));
}

#[test]
fn truncated_input_is_an_error() {
    assert!(EchoAssertions::decode_response(&[0x0a, 0x05, 0x0a]).is_err());
}
