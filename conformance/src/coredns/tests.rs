//! The emulated CoreDNS: whoami answers, SERVFAIL elsewhere, and the client over a real socket.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::{CorednsServer, answer, build_query, parse_question, parse_reply, query};

#[test]
fn a_built_query_parses_back() {
    let message = build_query(7, "Foo.Bar.com.");
    let question = parse_question(&message).expect("parses");
    assert_eq!(question.name, "foo.bar.com.");
    assert_eq!((question.kind, question.class), (1, 1));
    assert_eq!(question.end, message.len());
}

#[test]
fn whoami_answers_with_the_clients_address_and_port() {
    let peer = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 9), 40_000));
    let reply = answer(&build_query(0x1234, "foo.bar.com."), peer).expect("answers");
    let summary = parse_reply(&reply, 0x1234).expect("a reply to the query");
    assert_eq!(summary.rcode, 0);
    assert_eq!(summary.records, 2);
    // The A record carries 127.0.0.9, the SRV record port 40000 (0x9c40).
    assert!(reply.windows(4).any(|window| window == [127, 0, 0, 9]));
    assert!(reply.windows(2).any(|window| window == [0x9c, 0x40]));
}

#[test]
fn other_names_get_servfail() {
    let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
    let reply = answer(&build_query(1, "example.org."), peer).expect("answers");
    let summary = parse_reply(&reply, 1).expect("a reply");
    assert_eq!(summary.rcode, 2);
    assert_eq!(summary.records, 0);
}

#[test]
fn replies_and_garbage_are_not_answered() {
    let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
    let reply = answer(&build_query(1, "foo.bar.com."), peer).expect("answers");
    assert_eq!(answer(&reply, peer), None, "a reply is not a query");
    assert_eq!(answer(b"hello", peer), None);
}

#[test]
fn a_reply_with_another_id_is_rejected() {
    let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
    let reply = answer(&build_query(1, "foo.bar.com."), peer).expect("answers");
    assert!(parse_reply(&reply, 2).is_err());
}

#[tokio::test]
async fn a_query_over_udp_is_answered() {
    let server = CorednsServer::start(Ipv4Addr::LOCALHOST)
        .await
        .expect("starts");
    let reply = query(server.addr(), "foo.bar.com.", Duration::from_secs(5))
        .await
        .expect("answered");
    assert_eq!(reply.rcode, 0);
}
