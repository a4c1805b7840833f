//! The gRPC echo and client against each other, without a gateway in between.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::{
    GrpcEchoServer, SERVICE_PREFIX, UNAVAILABLE, UNIMPLEMENTED, call, code_from_name, describe_code,
};

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn echo_reports_method_namespace_pod_and_metadata() {
    let server = GrpcEchoServer::start(
        "grpc-infra-backend-v1-abc-def",
        "infra",
        Ipv4Addr::LOCALHOST,
    )
    .await
    .expect("binds");
    let metadata = BTreeMap::from([("X-Test".to_owned(), "yes".to_owned())]);
    let path = format!("{SERVICE_PREFIX}EchoTwo");
    let outcome = call(server.addr(), "grpc.example", &path, &metadata, TIMEOUT).await;
    assert_eq!(outcome.code, 0, "{}", outcome.message);
    let assertions = outcome.assertions.expect("an OK outcome has a reply");
    assert_eq!(assertions.fully_qualified_method, path);
    assert_eq!(assertions.namespace, "infra");
    assert_eq!(assertions.pod, "grpc-infra-backend-v1-abc-def");
    assert_eq!(assertions.authority, "grpc.example");
    assert!(
        assertions
            .headers
            .contains(&("x-test".to_owned(), "yes".to_owned()))
    );
}

#[tokio::test]
async fn echo_three_is_unimplemented() {
    let server = GrpcEchoServer::start("pod-a-b", "ns", Ipv4Addr::LOCALHOST)
        .await
        .expect("binds");
    let path = format!("{SERVICE_PREFIX}EchoThree");
    let outcome = call(server.addr(), "a", &path, &BTreeMap::new(), TIMEOUT).await;
    assert_eq!(outcome.code, UNIMPLEMENTED);
}

#[tokio::test]
async fn a_closed_port_is_unavailable() {
    let closed = testkit::reserve_closed_port();
    let outcome = call(closed.addr(), "a", "/x/y", &BTreeMap::new(), TIMEOUT).await;
    assert_eq!(outcome.code, UNAVAILABLE);
}

#[tokio::test]
async fn a_plain_http_404_maps_to_unimplemented() {
    // The HTTP echo answers h2c with a JSON 200 for most paths; /status/404 gives a bare 404, as a gateway
    // without a matching route does.
    let echo = testkit::EchoServer::start(testkit::EchoConfig::new("p", "n"))
        .await
        .expect("binds");
    let outcome = call(echo.addr(), "a", "/status/404", &BTreeMap::new(), TIMEOUT).await;
    assert_eq!(outcome.code, UNIMPLEMENTED, "{}", outcome.message);
}

#[test]
fn code_names_parse_with_or_without_the_package() {
    assert_eq!(code_from_name("codes.OK"), Some(0));
    assert_eq!(code_from_name("Unimplemented"), Some(12));
    assert_eq!(code_from_name("nonsense"), None);
    assert_eq!(describe_code(14), "Unavailable (14)");
}
