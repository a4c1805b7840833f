use super::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

#[test]
fn a_valid_traceparent_is_decoded() {
    let value = format!("00-{TRACE}-{SPAN}-01");
    let parent = parse_traceparent(value.as_bytes()).expect("valid");
    assert_eq!(parent.trace_id[0], 0x4b);
    assert_eq!(parent.span_id[7], 0xb7);
    assert_eq!(parent.sampled, Some(true));
    let unsampled = format!("00-{TRACE}-{SPAN}-00");
    assert_eq!(
        parse_traceparent(unsampled.as_bytes()).map(|p| p.sampled),
        Some(Some(false))
    );
}

#[test]
fn invalid_traceparents_are_refused() {
    for value in [
        format!("ff-{TRACE}-{SPAN}-01"),
        format!("00-{}-{SPAN}-01", TRACE.to_uppercase()),
        format!("00-{}-{SPAN}-01", "0".repeat(32)),
        format!("00-{TRACE}-{}-01", "0".repeat(16)),
        format!("00-{TRACE}-{SPAN}-01-extra"),
        format!("00-{TRACE}-{SPAN}"),
        format!("00_{TRACE}-{SPAN}-01"),
        format!("00-{TRACE}-{SPAN}-0g"),
    ] {
        assert_eq!(parse_traceparent(value.as_bytes()), None, "{value}");
    }
}

#[test]
fn a_later_version_is_read_by_its_known_fields() {
    let value = format!("01-{TRACE}-{SPAN}-01-more-fields");
    assert!(parse_traceparent(value.as_bytes()).is_some());
    let glued = format!("01-{TRACE}-{SPAN}-01x");
    assert_eq!(parse_traceparent(glued.as_bytes()), None);
}

#[test]
fn formatting_round_trips() {
    let value = format!("00-{TRACE}-{SPAN}-01");
    let parent = parse_traceparent(value.as_bytes()).expect("valid");
    let formatted = format_traceparent(&parent.trace_id, &parent.span_id, true);
    assert_eq!(&formatted[..], value.as_bytes());
    let b3 = format_b3_single(&parent.trace_id, &parent.span_id, false);
    assert_eq!(&b3[..], format!("{TRACE}-{SPAN}-0").as_bytes());
}

#[test]
fn b3_single_forms() {
    let full = format!("{TRACE}-{SPAN}-1-05e3ac9a4f6e3b90");
    let parent = parse_b3_single(full.as_bytes()).expect("valid");
    assert_eq!(parent.sampled, Some(true));
    assert_eq!(parent.format, Propagation::B3Single);
    let deferred = format!("{TRACE}-{SPAN}");
    assert_eq!(
        parse_b3_single(deferred.as_bytes()).map(|p| p.sampled),
        Some(None)
    );
    let debug = format!("{TRACE}-{SPAN}-d");
    assert_eq!(
        parse_b3_single(debug.as_bytes()).map(|p| p.sampled),
        Some(Some(true))
    );
    // A 64-bit trace id is left-padded.
    let short = format!("a3ce929d0e0e4736-{SPAN}-0");
    let parent = parse_b3_single(short.as_bytes()).expect("valid");
    assert_eq!(parent.trace_id[..8], [0; 8]);
    assert_eq!(parent.trace_id[15], 0x36);
    for bad in ["0", "1", "d", "xyz", &format!("{TRACE}-{SPAN}-2")] {
        assert_eq!(parse_b3_single(bad.as_bytes()), None, "{bad}");
    }
}

#[test]
fn b3_multi_headers() {
    let parent =
        parse_b3_multi(TRACE.as_bytes(), SPAN.as_bytes(), Some(b"1"), None).expect("valid");
    assert_eq!(parent.sampled, Some(true));
    assert_eq!(parent.format, Propagation::B3Multi);
    let debug = parse_b3_multi(TRACE.as_bytes(), SPAN.as_bytes(), Some(b"0"), Some(b"1"));
    assert_eq!(debug.map(|p| p.sampled), Some(Some(true)));
    let old = parse_b3_multi(TRACE.as_bytes(), SPAN.as_bytes(), Some(b"false"), None);
    assert_eq!(old.map(|p| p.sampled), Some(Some(false)));
    assert_eq!(parse_b3_multi(TRACE.as_bytes(), b"short", None, None), None);
}
