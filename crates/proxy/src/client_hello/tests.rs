//! ClientHello scanning: real ClientHellos from rustls (with and without SNI, whole and
//! fragmented, every prefix), refusals, and garbage that must never panic.

use std::sync::Arc;

use rustls::pki_types::ServerName;

use super::*;

/// The first flight of a rustls client connecting to `name`: its ClientHello record(s).
fn client_hello(name: ServerName<'static>) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("default versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let mut client =
        rustls::ClientConnection::new(Arc::new(config), name).expect("client connection");
    let mut bytes = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut bytes).expect("write to a Vec");
    }
    bytes
}

fn hello_for(name: &str) -> Vec<u8> {
    client_hello(ServerName::try_from(name.to_owned()).expect("DNS name"))
}

/// The handshake bytes of a single-record ClientHello, re-framed into records of `size`.
fn fragment(hello: &[u8], size: usize) -> Vec<u8> {
    let payload = &hello[RECORD_HEADER..];
    let mut out = Vec::new();
    for chunk in payload.chunks(size) {
        out.extend_from_slice(&[CONTENT_TYPE_HANDSHAKE, 3, 1]);
        out.extend_from_slice(&u16::try_from(chunk.len()).expect("small").to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// A ClientHello record with these extensions (raw bytes of the extensions block).
fn hello_with_extensions(extensions: &[u8]) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(
        &u16::try_from(extensions.len())
            .expect("small")
            .to_be_bytes(),
    );
    body.extend_from_slice(extensions);
    let mut handshake = vec![HANDSHAKE_CLIENT_HELLO];
    handshake.extend_from_slice(&u32::try_from(body.len()).expect("small").to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![CONTENT_TYPE_HANDSHAKE, 3, 1];
    record.extend_from_slice(&u16::try_from(handshake.len()).expect("small").to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

fn sni_extension(name: &[u8]) -> Vec<u8> {
    let mut entry = vec![NAME_TYPE_HOST_NAME];
    entry.extend_from_slice(&u16::try_from(name.len()).expect("small").to_be_bytes());
    entry.extend_from_slice(name);
    let mut data = u16::try_from(entry.len())
        .expect("small")
        .to_be_bytes()
        .to_vec();
    data.extend_from_slice(&entry);
    let mut extension = EXTENSION_SERVER_NAME.to_be_bytes().to_vec();
    extension.extend_from_slice(&u16::try_from(data.len()).expect("small").to_be_bytes());
    extension.extend_from_slice(&data);
    extension
}

#[test]
fn real_client_hello_yields_its_lowercased_sni() {
    let hello = hello_for("Foo.Example.com");
    assert_eq!(
        scan(&hello),
        Scan::Complete(Some("foo.example.com".to_owned()))
    );
}

#[test]
fn client_hello_without_sni_is_complete_with_no_name() {
    let ip = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    assert_eq!(scan(&client_hello(ip)), Scan::Complete(None));
}

#[test]
fn every_proper_prefix_asks_for_more() {
    let hello = hello_for("a.example.com");
    for end in 0..hello.len() {
        assert_eq!(
            scan(&hello[..end]),
            Scan::Incomplete,
            "prefix of {end} bytes"
        );
    }
}

#[test]
fn client_hello_split_over_records_is_reassembled() {
    let hello = hello_for("split.example.com");
    for size in [1, 7, 100, 1000] {
        let fragmented = fragment(&hello, size);
        assert_eq!(
            scan(&fragmented),
            Scan::Complete(Some("split.example.com".to_owned())),
            "records of {size} bytes"
        );
        let cut = fragmented.len() - 1;
        assert_eq!(scan(&fragmented[..cut]), Scan::Incomplete);
    }
}

#[test]
fn bytes_after_the_client_hello_are_ignored() {
    let mut hello = hello_for("a.example.com");
    hello.extend_from_slice(b"\x17\x03\x03\x00\x05early");
    assert_eq!(
        scan(&hello),
        Scan::Complete(Some("a.example.com".to_owned()))
    );
}

#[test]
fn plain_http_is_refused_at_the_first_byte() {
    assert!(matches!(scan(b"G"), Scan::Invalid(_)));
    assert!(matches!(scan(b"GET / HTTP/1.1\r\n\r\n"), Scan::Invalid(_)));
    // SSLv2-style ClientHello.
    assert!(matches!(scan(&[0x80, 0x2e, 0x01]), Scan::Invalid(_)));
    // A handshake record of another TLS major version.
    assert!(matches!(scan(&[22, 2]), Scan::Invalid(_)));
}

#[test]
fn oversized_records_and_client_hellos_are_refused() {
    // Record length above 2^14.
    assert!(matches!(scan(&[22, 3, 1, 0x40, 0x01]), Scan::Invalid(_)));
    // Zero-length record.
    assert!(matches!(scan(&[22, 3, 1, 0, 0]), Scan::Invalid(_)));
    // A ClientHello announcing 1 MiB.
    assert!(matches!(
        scan(&[22, 3, 1, 0, 4, HANDSHAKE_CLIENT_HELLO, 0x10, 0, 0]),
        Scan::Invalid(_)
    ));
    // Another handshake message first (ServerHello).
    assert!(matches!(scan(&[22, 3, 1, 0, 1, 2]), Scan::Invalid(_)));
}

#[test]
fn server_names_that_are_not_host_names_are_refused() {
    let good = hello_with_extensions(&sni_extension(b"db.example.com"));
    assert_eq!(
        scan(&good),
        Scan::Complete(Some("db.example.com".to_owned()))
    );
    for bad in [&b""[..], b"a b", b"a\0b", b"caf\xc3\xa9", &[b'a'; 256]] {
        let hello = hello_with_extensions(&sni_extension(bad));
        assert!(matches!(scan(&hello), Scan::Invalid(_)), "{bad:?}");
    }
}

#[test]
fn client_hello_without_extensions_has_no_name() {
    let mut hello = hello_with_extensions(&[]);
    // Drop the (empty) extensions block entirely, as TLS 1.2 allows, fixing both lengths.
    hello.truncate(hello.len() - 2);
    let handshake_length = hello.len() - RECORD_HEADER - HANDSHAKE_HEADER;
    let record_length = u16::try_from(hello.len() - RECORD_HEADER).expect("small");
    hello[3..5].copy_from_slice(&record_length.to_be_bytes());
    hello[6..9].copy_from_slice(
        &u32::try_from(handshake_length)
            .expect("small")
            .to_be_bytes()[1..],
    );
    assert_eq!(scan(&hello), Scan::Complete(None));
}

#[test]
fn truncated_inner_lengths_are_invalid_not_panics() {
    let hello = hello_for("a.example.com");
    let body = RECORD_HEADER + HANDSHAKE_HEADER;
    // Claim a ClientHello shorter than its fields: every inner read must be checked.
    for claimed in 0..(hello.len() - body) {
        let mut cut = hello[..body + claimed].to_vec();
        cut[3..5].copy_from_slice(
            &u16::try_from(HANDSHAKE_HEADER + claimed)
                .expect("small")
                .to_be_bytes(),
        );
        cut[6..9].copy_from_slice(&u32::try_from(claimed).expect("small").to_be_bytes()[1..]);
        let _ = scan(&cut);
    }
}

/// xorshift64: deterministic noise without a dependency.
fn noise(state: &mut u64) -> u8 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    state.to_le_bytes()[0]
}

#[test]
fn garbage_and_mutated_client_hellos_never_panic() {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    // Pure noise, some of it dressed as a handshake record.
    for length in 0..600 {
        let mut bytes: Vec<u8> = (0..length).map(|_| noise(&mut state)).collect();
        if length > 5 && length % 2 == 0 {
            bytes[0] = CONTENT_TYPE_HANDSHAKE;
            bytes[1] = 3;
            bytes[5] = HANDSHAKE_CLIENT_HELLO;
        }
        let _ = scan(&bytes);
    }
    // A real ClientHello with bytes flipped one at a time, and then many at a time.
    let hello = hello_for("mutate.example.com");
    for index in 0..hello.len() {
        let mut mutated = hello.clone();
        mutated[index] ^= noise(&mut state) | 1;
        let _ = scan(&mutated);
    }
    for _ in 0..2000 {
        let mut mutated = hello.clone();
        for _ in 0..8 {
            let index = usize::from(noise(&mut state)) * usize::from(noise(&mut state));
            let index = index % mutated.len();
            mutated[index] = noise(&mut state);
        }
        let _ = scan(&mutated);
    }
}
