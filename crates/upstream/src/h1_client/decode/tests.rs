use super::*;

const GET: RequestKind = RequestKind {
    head: false,
    raw: false,
};
const HEAD: RequestKind = RequestKind {
    head: true,
    raw: false,
};
const RAW_GET: RequestKind = RequestKind {
    head: false,
    raw: true,
};
const RAW_HEAD: RequestKind = RequestKind {
    head: true,
    raw: true,
};

fn head(text: &str, request: RequestKind) -> Result<(ResponseHead, usize), ProtocolError> {
    parse_head(
        &mut BytesMut::from(text),
        request,
        &mut NameCache::default(),
    )
    .map(|parsed| parsed.expect("complete head"))
}

#[test]
fn a_sized_response_keeps_the_connection() {
    let text = "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 2\r\n\r\nok";
    let (parsed, length) = head(text, GET).expect("parses");
    assert_eq!(length, text.len() - 2);
    assert_eq!(parsed.status, StatusCode::OK);
    assert_eq!(parsed.framing, ResponseFraming::Length(2));
    assert!(parsed.keep_alive);
    assert_eq!(parsed.headers["server"], "nginx");
    assert_eq!(parsed.headers.len(), 2);
}

#[test]
fn an_incomplete_head_asks_for_more() {
    assert!(
        parse_head(
            &mut BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Le"[..]),
            GET,
            &mut NameCache::default()
        )
        .expect("parses")
        .is_none()
    );
}

#[test]
fn framing_follows_rfc_9112_section_6_3() {
    let cases = [
        (
            "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
            GET,
            ResponseFraming::Empty,
            true,
        ),
        (
            "HTTP/1.1 304 Not Modified\r\n\r\n",
            GET,
            ResponseFraming::Empty,
            true,
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            HEAD,
            ResponseFraming::Empty,
            true,
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            GET,
            ResponseFraming::Chunked,
            true,
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            GET,
            ResponseFraming::Chunked,
            true,
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            GET,
            ResponseFraming::UntilClose,
            false,
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            GET,
            ResponseFraming::Chunked,
            false,
        ),
        (
            "HTTP/1.1 200 OK\r\n\r\n",
            GET,
            ResponseFraming::UntilClose,
            false,
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n",
            GET,
            ResponseFraming::Length(3),
            true,
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n",
            GET,
            ResponseFraming::Length(3),
            false,
        ),
        (
            "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n",
            GET,
            ResponseFraming::Length(3),
            false,
        ),
        (
            "HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: Keep-Alive\r\n\r\n",
            GET,
            ResponseFraming::Length(3),
            true,
        ),
    ];
    for (text, request, framing, keep_alive) in cases {
        let (parsed, _) = head(text, request).expect("parses");
        assert_eq!(parsed.framing, framing, "{text:?}");
        assert_eq!(parsed.keep_alive, keep_alive, "{text:?}");
    }
}

#[test]
fn malformed_heads_are_protocol_errors() {
    for text in [
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nFolded: a\r\n b\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/2.0 200 OK\r\n\r\n",
        "SMTP ready\r\n\r\n",
    ] {
        assert!(
            parse_head(&mut BytesMut::from(text), GET, &mut NameCache::default()).is_err(),
            "{text:?}"
        );
    }
}

#[test]
fn more_than_100_fields_are_refused() {
    let mut text = String::from("HTTP/1.1 200 OK\r\n");
    for i in 0..=MAX_HEADERS {
        text.push_str(&format!("x-{i}: v\r\n"));
    }
    text.push_str("\r\n");
    assert!(
        parse_head(
            &mut BytesMut::from(text.as_str()),
            GET,
            &mut NameCache::default()
        )
        .is_err()
    );
}

#[test]
fn chunk_size_lines() {
    assert_eq!(
        parse_chunk_size(b"1a\r\nxyz").expect("parses"),
        Some((26, 4))
    );
    assert_eq!(parse_chunk_size(b"0\r\n").expect("parses"), Some((0, 3)));
    assert_eq!(
        parse_chunk_size(b"A;name=value\r\n").expect("parses"),
        Some((10, 14))
    );
    assert_eq!(parse_chunk_size(b"5 ;x\r\n").expect("parses"), Some((5, 6)));
    assert_eq!(parse_chunk_size(b"1a").expect("parses"), None);
    assert_eq!(parse_chunk_size(b"1a\r").expect("parses"), None);
    for bad in [
        &b"\r\n"[..],
        b"x\r\n",
        b"1a\n",
        b"1a\rx",
        b"1;\x00\r\n",
        b"10000000000000000\r\n",
    ] {
        assert!(parse_chunk_size(bad).is_err(), "{bad:?}");
    }
    let long = [b"1;".as_slice(), &[b'x'; MAX_CHUNK_LINE]].concat();
    assert!(parse_chunk_size(&long).is_err());
}

#[test]
fn trailers_are_parsed_to_the_empty_line() {
    let (trailers, length) = parse_trailers(b"grpc-status: 0\r\nx-a: b\r\n\r\nnext")
        .expect("parses")
        .expect("parses");
    assert_eq!(length, 26);
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["x-a"], "b");
    assert!(
        parse_trailers(b"grpc-status: 0\r\n")
            .expect("parses")
            .is_none()
    );
    assert!(parse_trailers(b"bad name: 0\r\n\r\n").is_err());
}

#[test]
fn fields_about_this_connection_only_end_here() {
    let text = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
                Transfer-Encoding: chunked\r\nX-Kept: 1\r\n\r\n";
    let (parsed, _) = head(text, GET).expect("parses");
    assert_eq!(parsed.framing, ResponseFraming::Chunked);
    assert_eq!(parsed.headers.len(), 1, "{:?}", parsed.headers);
    assert_eq!(parsed.headers["x-kept"], "1");

    // A Connection naming another field stays, for the proxy to strip both.
    let text = "HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nContent-Length: 0\r\n\r\n";
    let (parsed, _) = head(text, GET).expect("parses");
    assert!(!parsed.keep_alive);
    assert_eq!(parsed.headers["connection"], "close, X-Secret");

    // A 101 keeps its upgrade fields.
    let text =
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let (parsed, _) = head(text, GET).expect("parses");
    assert_eq!(parsed.headers["connection"], "Upgrade");
    let text = "HTTP/1.1 101 Switching Protocols\r\nConnection: keep-alive\r\n\r\n";
    let (parsed, _) = head(text, GET).expect("parses");
    assert_eq!(parsed.headers["connection"], "keep-alive");
}

#[test]
fn a_raw_head_keeps_end_to_end_fields_as_written_and_drops_the_rest() {
    let text = "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sat, 05 Dec 2026 13:00:00 GMT\r\n\
                Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\
                X-Multi:a\r\nx-multi: b\r\nUpgrade: h2c\r\nTrailer: x\r\nTE: trailers\r\n\
                Proxy-Connection: close\r\n\r\nok";
    let mut read = BytesMut::from(text);
    let (parsed, length) = parse_head(&mut read, RAW_GET, &mut NameCache::default())
        .expect("parses")
        .expect("complete");
    assert_eq!(read, "ok", "the head left the buffer");
    assert_eq!(length, text.len() - 2);
    assert_eq!(parsed.framing, ResponseFraming::Length(2));
    assert!(parsed.keep_alive);
    assert!(parsed.headers.is_empty());
    let raw = parsed.raw.expect("a raw head");
    assert!(raw.has_date());
    assert_eq!(
        std::str::from_utf8(raw.fields()).expect("ascii"),
        "Server: nginx\r\nDate: Sat, 05 Dec 2026 13:00:00 GMT\r\nX-Multi: a\r\nx-multi: b\r\n"
    );
}

#[test]
fn a_raw_head_still_judges_framing_and_persistence() {
    let (parsed, _) = head(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        RAW_GET,
    )
    .expect("parses");
    assert_eq!(parsed.framing, ResponseFraming::Chunked);
    assert!(!parsed.keep_alive);
    let raw = parsed.raw.expect("a raw head");
    assert!(raw.fields().is_empty());
    assert!(!raw.has_date());
    assert!(head("HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", RAW_GET).is_err());
}

#[test]
fn heads_a_raw_writer_cannot_take_come_as_a_map() {
    for (text, request) in [
        // A `Connection` naming another field: the map path strips it by name.
        (
            "HTTP/1.1 200 OK\r\nConnection: x-hop\r\nX-Hop: 1\r\nContent-Length: 0\r\n\r\n",
            RAW_GET,
        ),
        // No body of their own: their fields describe one the writer does not frame.
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", RAW_HEAD),
        ("HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n", RAW_GET),
        ("HTTP/1.1 204 No Content\r\n\r\n", RAW_GET),
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            RAW_GET,
        ),
    ] {
        let (parsed, _) = head(text, request).expect("parses");
        assert!(parsed.raw.is_none(), "{text:?}");
    }
    let (parsed, _) = head(
        "HTTP/1.1 200 OK\r\nConnection: x-hop\r\nX-Hop: 1\r\nContent-Length: 0\r\n\r\n",
        RAW_GET,
    )
    .expect("parses");
    assert_eq!(parsed.headers["x-hop"], "1");
    assert_eq!(parsed.headers["connection"], "x-hop");
}

#[test]
fn field_kinds_are_told_apart_in_any_case() {
    for (name, kind) in [
        ("Content-Length", FieldKind::ContentLength),
        ("TRANSFER-ENCODING", FieldKind::TransferEncoding),
        ("connection", FieldKind::Connection),
        ("Keep-Alive", FieldKind::KeepAlive),
        ("Date", FieldKind::Date),
        ("TE", FieldKind::OtherHopByHop),
        ("Upgrade", FieldKind::OtherHopByHop),
        ("trailer", FieldKind::OtherHopByHop),
        ("HTTP2-Settings", FieldKind::OtherHopByHop),
        ("Proxy-Connection", FieldKind::OtherHopByHop),
        // Same lengths, other names.
        ("Content-Lengtx", FieldKind::Other),
        ("Connectiom", FieldKind::Other),
        ("Dat_", FieldKind::Other),
        ("Dat^", FieldKind::Other),
        ("Server", FieldKind::Other),
        ("Content-Type", FieldKind::Other),
    ] {
        assert_eq!(FieldKind::of(name.as_bytes()), kind, "{name}");
    }
}
