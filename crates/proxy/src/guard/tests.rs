use super::*;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut bytes = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    bytes.extend_from_slice(&stream.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

#[test]
fn scanner_finds_frame_heads_across_arbitrary_splits() {
    let mut stream = Vec::new();
    stream.extend(frame(0x4, 0, 0, &[0; 6]));
    stream.extend(frame(0x1, 0x4, 1, b"hpack-bytes"));
    stream.extend(frame(0x3, 0, 1, &[0, 0, 0, 8]));
    stream.extend(frame(0x0, 0x1, 3, &[7; 300]));
    for chunk in [1, 2, 5, 9, 10, 64, stream.len()] {
        let mut scanner = FrameScanner::default();
        let mut seen = Vec::new();
        for piece in stream.chunks(chunk) {
            scanner.scan(piece, |head| {
                seen.push((head.kind, head.flags, head.stream))
            });
        }
        assert_eq!(
            seen,
            vec![(0x4, 0, 0), (0x1, 0x4, 1), (0x3, 0, 1), (0x0, 0x1, 3)],
            "chunk size {chunk}"
        );
        assert_eq!(scanner.to_boundary(), 0);
    }
}

#[test]
fn scanner_reports_the_distance_to_the_next_boundary() {
    let bytes = frame(0x0, 0, 1, &[1; 20]);
    let mut scanner = FrameScanner::default();
    scanner.scan(&bytes[..4], |_| {});
    assert_eq!(scanner.to_boundary(), 5, "rest of the header");
    scanner.scan(&bytes[4..12], |_| {});
    assert_eq!(scanner.to_boundary(), 17, "rest of the payload");
    scanner.scan(&bytes[12..], |_| {});
    assert_eq!(scanner.to_boundary(), 0);
}

fn limits(max_resets: u32, max_control: u32) -> GuardLimits {
    let mut settings = ClientSettings::default();
    settings.http2.max_resets_per_connection = max_resets;
    settings.http2.max_control_frames_per_second = max_control;
    GuardLimits::of(&settings)
}

fn head(kind: u8, flags: u8, stream: u32) -> FrameHead {
    FrameHead {
        kind,
        flags,
        stream,
    }
}

#[test]
fn resets_beyond_a_tenth_of_the_limit_in_one_second_are_rapid_reset() {
    let limits = limits(1000, 1000);
    let mut counters = FloodCounters::new();
    for i in 0..100 {
        assert_eq!(
            counters.count(head(0x3, 0, 2 * i + 1), &limits),
            None,
            "reset {i}"
        );
    }
    assert_eq!(
        counters.count(head(0x3, 0, 201), &limits),
        Some(CloseReason::RapidReset)
    );
}

#[test]
fn settings_and_pings_beyond_the_rate_are_a_flood_but_acks_are_not() {
    let limits = limits(1000, 50);
    let mut counters = FloodCounters::new();
    for _ in 0..1000 {
        assert_eq!(counters.count(head(0x6, 0x1, 0), &limits), None, "PING ACK");
        assert_eq!(
            counters.count(head(0x4, 0x1, 0), &limits),
            None,
            "SETTINGS ACK"
        );
    }
    for i in 0..50 {
        let kind = if i % 2 == 0 { 0x6 } else { 0x4 };
        assert_eq!(counters.count(head(kind, 0, 0), &limits), None, "frame {i}");
    }
    assert_eq!(
        counters.count(head(0x6, 0, 0), &limits),
        Some(CloseReason::ControlFlood)
    );
}

#[test]
fn headers_frames_track_the_last_stream_for_goaway() {
    let limits = limits(1000, 1000);
    let mut counters = FloodCounters::new();
    for id in [1, 7, 3] {
        counters.count(head(0x1, 0x4, id), &limits);
    }
    assert_eq!(counters.last_stream, 7);
    assert_eq!(
        goaway(7, ENHANCE_YOUR_CALM),
        vec![0, 0, 8, 0x7, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0xb]
    );
}
