use super::*;

#[test]
fn hop_by_hop_headers_are_removed() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONNECTION,
        HeaderValue::from_static("keep-alive, x-secret"),
    );
    headers.insert("x-secret", HeaderValue::from_static("1"));
    headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    headers.insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    headers.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
    headers.insert("x-kept", HeaderValue::from_static("yes"));
    strip_hop_by_hop(&mut headers, true);
    assert_eq!(headers.len(), 1);
    assert_eq!(headers["x-kept"], "yes");
}

#[test]
fn te_trailers_survives_for_grpc() {
    let mut headers = HeaderMap::new();
    headers.insert(header::TE, HeaderValue::from_static("gzip, trailers"));
    strip_hop_by_hop(&mut headers, true);
    assert_eq!(headers[header::TE], "trailers");
    let mut headers = HeaderMap::new();
    headers.insert(header::TE, HeaderValue::from_static("gzip"));
    strip_hop_by_hop(&mut headers, true);
    assert!(!headers.contains_key(header::TE));
}

#[test]
fn forwarded_for_appends_client() {
    let mut headers = HeaderMap::new();
    add_forwarded(&mut headers, IpAddr::from([10, 0, 0, 1]), "http");
    assert_eq!(headers["x-forwarded-for"], "10.0.0.1");
    add_forwarded(&mut headers, "::1".parse().expect("ip"), "http");
    assert_eq!(headers["x-forwarded-for"], "10.0.0.1, ::1");
    assert_eq!(headers["x-forwarded-proto"], "http");
}

#[test]
fn the_kept_address_value_follows_the_address() {
    // The value kept per thread is the last address's: a new address replaces it.
    for (ip, text) in [
        (IpAddr::from([192, 0, 2, 7]), "192.0.2.7"),
        (IpAddr::from([192, 0, 2, 7]), "192.0.2.7"),
        (IpAddr::from([198, 51, 100, 1]), "198.51.100.1"),
        ("2001:db8::2".parse().expect("ip"), "2001:db8::2"),
        (IpAddr::from([192, 0, 2, 7]), "192.0.2.7"),
    ] {
        let mut headers = HeaderMap::new();
        add_forwarded(&mut headers, ip, "https");
        assert_eq!(headers["x-forwarded-for"], text);
    }
}

#[test]
fn headers_without_hop_by_hop_ones_pass_unchanged() {
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static("example.com"));
    headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    headers.append("x-multi", HeaderValue::from_static("1"));
    headers.append("x-multi", HeaderValue::from_static("2"));
    // Names that only look like hop-by-hop ones stay.
    headers.insert("x-connection", HeaderValue::from_static("close"));
    headers.insert("tes", HeaderValue::from_static("x"));
    headers.insert("trailers", HeaderValue::from_static("x"));
    let before = headers.clone();
    for is_request in [true, false] {
        strip_hop_by_hop(&mut headers, is_request);
        assert_eq!(headers, before);
    }
}

#[test]
fn every_hop_by_hop_header_is_stripped_together() {
    let mut request = HeaderMap::new();
    request.insert(header::HOST, HeaderValue::from_static("example.com"));
    request.insert(header::CONNECTION, HeaderValue::from_static("x-hop, te"));
    request.insert("x-hop", HeaderValue::from_static("1"));
    request.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    request.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
    request.insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    request.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    request.insert(header::TRAILER, HeaderValue::from_static("x-checksum"));
    request.insert(header::TE, HeaderValue::from_static("trailers, deflate"));
    let mut response = request.clone();

    strip_hop_by_hop(&mut request, true);
    let kept: Vec<_> = request
        .iter()
        .map(|(n, v)| (n.as_str(), v.to_str().ok()))
        .collect();
    assert_eq!(
        kept,
        [("host", Some("example.com")), ("te", Some("trailers"))]
    );

    // Responses keep TE as they always did (it is a request header; only requests rewrite it).
    strip_hop_by_hop(&mut response, false);
    let kept: Vec<_> = response.keys().map(HeaderName::as_str).collect();
    assert_eq!(kept, ["host", "te"]);
}

#[test]
fn a_lone_te_header_takes_the_slow_path() {
    // TE alone (no Connection) is still rewritten on requests: it must not slip past the fast
    // path.
    let mut headers = HeaderMap::new();
    headers.insert(header::TE, HeaderValue::from_static("gzip"));
    strip_hop_by_hop(&mut headers, true);
    assert!(headers.is_empty());
}

#[test]
fn ipv4_text_matches_display() {
    let mut buffer = [0u8; 64];
    for octets in [
        [0, 0, 0, 0],
        [255, 255, 255, 255],
        [10, 0, 100, 9],
        [127, 0, 0, 1],
        [1, 22, 199, 200],
    ] {
        let ip = IpAddr::from(octets);
        assert_eq!(format_ip(ip, &mut buffer), ip.to_string().as_bytes());
    }
    for octet in 0..=255u8 {
        let ip = IpAddr::from([octet, 9, octet, 10]);
        assert_eq!(format_ip(ip, &mut buffer), ip.to_string().as_bytes());
    }
    let ip: IpAddr = "2001:db8::1".parse().expect("ip");
    assert_eq!(format_ip(ip, &mut buffer), b"2001:db8::1");
}

#[test]
fn connection_named_headers_go_but_te_stays_on_requests() {
    let mut headers = HeaderMap::new();
    headers.append(
        header::CONNECTION,
        HeaderValue::from_static("Keep-Alive, X-One"),
    );
    headers.append(header::CONNECTION, HeaderValue::from_static("close, TE"));
    headers.insert("x-one", HeaderValue::from_static("1"));
    headers.insert("close", HeaderValue::from_static("odd but named"));
    headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    headers.insert("x-two", HeaderValue::from_static("2"));
    let mut response = headers.clone();
    strip_hop_by_hop(&mut headers, true);
    let kept: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
    assert_eq!(kept, ["x-two", "te"]);
    strip_hop_by_hop(&mut response, false);
    let kept: Vec<_> = response.keys().map(HeaderName::as_str).collect();
    assert_eq!(kept, ["te", "x-two"]);
}

/// `strip_hop_by_hop` as it was before it learned to skip absent headers (plus the h2c
/// upgrade's `HTTP2-Settings`, stripped since): the behaviour the fast version must keep.
fn strip_hop_by_hop_by_removing_all(headers: &mut HeaderMap, is_request: bool) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in named {
            if name != header::TE {
                headers.remove(&name);
            }
        }
        headers.remove(header::CONNECTION);
    }
    for name in [
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "trailer",
        "http2-settings",
    ] {
        headers.remove(name);
    }
    if is_request {
        let keeps_trailers = headers
            .get(header::TE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
            });
        headers.remove(header::TE);
        if keeps_trailers {
            headers.insert(header::TE, HeaderValue::from_static("trailers"));
        }
    }
}

#[test]
fn stripping_matches_removing_every_hop_by_hop_name() {
    let connection_values = [
        None,
        Some("keep-alive"),
        Some("close"),
        Some("Upgrade, HTTP2-Settings"),
        Some("x-a, TE, , bad name, Transfer-Encoding"),
    ];
    let others: [&[(&str, &str)]; 5] = [
        &[],
        &[("x-a", "1"), ("http2-settings", "AAA"), ("upgrade", "h2c")],
        &[
            ("te", "trailers"),
            ("trailer", "grpc-status"),
            ("close", "1"),
        ],
        &[
            ("te", "gzip"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "x"),
        ],
        &[
            ("transfer-encoding", "chunked"),
            ("host", "a"),
            ("x-b", "2"),
        ],
    ];
    for connection in connection_values {
        for headers in others {
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                map.append(*name, HeaderValue::from_static(value));
            }
            if let Some(value) = connection {
                map.append(header::CONNECTION, HeaderValue::from_static(value));
            }
            for is_request in [true, false] {
                let mut fast = map.clone();
                let mut reference = map.clone();
                strip_hop_by_hop(&mut fast, is_request);
                strip_hop_by_hop_by_removing_all(&mut reference, is_request);
                let order = |map: &HeaderMap| -> Vec<(String, Vec<u8>)> {
                    map.iter()
                        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                        .collect()
                };
                assert_eq!(
                    order(&fast),
                    order(&reference),
                    "{map:?} request={is_request}"
                );
            }
        }
    }
}

#[test]
fn forwarded_for_replaces_an_empty_or_unreadable_value_and_all_duplicates() {
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", HeaderValue::from_static(""));
    add_forwarded(&mut headers, IpAddr::from([10, 0, 0, 1]), "https");
    assert_eq!(headers["x-forwarded-for"], "10.0.0.1");

    let mut headers = HeaderMap::new();
    let unreadable = HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is a valid value");
    headers.insert("x-forwarded-for", unreadable);
    add_forwarded(&mut headers, IpAddr::from([10, 0, 0, 1]), "https");
    assert_eq!(headers["x-forwarded-for"], "10.0.0.1");

    let mut headers = HeaderMap::new();
    headers.append("x-forwarded-for", HeaderValue::from_static("1.1.1.1"));
    headers.append("x-forwarded-for", HeaderValue::from_static("2.2.2.2"));
    add_forwarded(&mut headers, IpAddr::from([10, 0, 0, 1]), "https");
    let values: Vec<_> = headers.get_all("x-forwarded-for").iter().collect();
    assert_eq!(values, ["1.1.1.1, 10.0.0.1"]);
    assert_eq!(headers["x-forwarded-proto"], "https");
}

#[test]
fn connection_cannot_make_identity_or_framing_headers_hop_by_hop() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONNECTION,
        HeaderValue::from_static(
            "Authorization, X-Forwarded-For, Content-Length, Cookie, Host, X-Real-IP, X-Auth-User",
        ),
    );
    headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
    headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    headers.insert(header::COOKIE, HeaderValue::from_static("a=b"));
    headers.insert(header::HOST, HeaderValue::from_static("app.example.com"));
    headers.insert("x-real-ip", HeaderValue::from_static("203.0.113.9"));
    headers.insert("x-auth-user", HeaderValue::from_static("mallory"));
    strip_hop_by_hop(&mut headers, true);
    for kept in [
        "authorization",
        "x-forwarded-for",
        "content-length",
        "cookie",
        "host",
        "x-real-ip",
    ] {
        assert!(headers.contains_key(kept), "{kept} was stripped");
    }
    // A header that is not protected still goes, as RFC 9110 §7.6.1 says.
    assert!(!headers.contains_key("x-auth-user"));
    assert!(!headers.contains_key(header::CONNECTION));
}

/// The fields of a request as `name: value` lines, sorted (order is not what is compared).
fn sorted_lines<'a>(lines: impl Iterator<Item = String> + 'a) -> Vec<String> {
    let mut lines: Vec<String> = lines.collect();
    lines.sort();
    lines
}

#[test]
fn a_request_written_out_holds_the_fields_of_the_request_it_stands_for() {
    let endpoint = Authority::from_static("10.9.9.9:8080");
    let unreadable = HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is a valid value");
    let cases: Vec<(&str, Vec<(&str, HeaderValue)>)> = vec![
        ("/", vec![("host", HeaderValue::from_static("app.test"))]),
        (
            "http://abs.test/p?q",
            vec![
                ("host", HeaderValue::from_static("other.test")),
                ("x-forwarded-for", HeaderValue::from_static("1.1.1.1")),
                ("x-forwarded-for", HeaderValue::from_static("2.2.2.2")),
                ("x-forwarded-proto", HeaderValue::from_static("gopher")),
            ],
        ),
        (
            "/a",
            vec![
                ("accept", HeaderValue::from_static("*/*")),
                ("x-forwarded-for", HeaderValue::from_static("")),
            ],
        ),
        (
            "/b",
            vec![
                ("host", HeaderValue::from_static("app.test")),
                ("x-forwarded-for", unreadable),
                ("connection", HeaderValue::from_static("x-gone")),
                ("x-gone", HeaderValue::from_static("1")),
            ],
        ),
    ];
    for (target, fields) in cases {
        let mut request = Request::builder().uri(target);
        for (name, value) in &fields {
            request = request.header(*name, value.clone());
        }
        let (parts, ()) = request.body(()).expect("request").into_parts();
        let head = RequestHead::from_client(
            parts,
            IpAddr::from([10, 0, 0, 1]),
            IpAddr::from([10, 0, 0, 2]),
            "https",
        );
        let written = head.to_http1(RequestBody::empty(), &endpoint);
        let text = std::str::from_utf8(written.head()).expect("ascii");
        let mut lines = text.split("\r\n");
        let request_line = lines.next().expect("a request line");
        if !fields.iter().any(|(name, _)| *name == "host") {
            // The endpoint's name, moved in first where the request had none.
            assert_eq!(
                text.split("\r\n").nth(1),
                Some(format!("host: {endpoint}").as_str()),
                "{target}: {text}"
            );
        }
        let written_fields = sorted_lines(
            lines
                .filter(|line| !line.is_empty())
                .map(|line| line.to_ascii_lowercase()),
        );
        let request = head
            .into_request(RequestBody::empty(), &endpoint, AppProtocol::Http1)
            .expect("request");
        assert_eq!(
            request_line,
            format!("GET {} HTTP/1.1", request.uri()),
            "{target}"
        );
        let expected = sorted_lines(request.headers().iter().map(|(name, value)| {
            format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())).to_ascii_lowercase()
        }));
        assert_eq!(written_fields, expected, "{target}");
        assert!(text.contains("x-forwarded-proto: https\r\n"), "{text}");
    }
}
