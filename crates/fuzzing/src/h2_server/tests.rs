//! The conversation checks on hand-made server output: a well-formed exchange passes, and each
//! kind of broken one fails, so that a silent fuzz run means something.

use super::*;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).expect("small");
    let mut bytes = length.to_be_bytes()[1..].to_vec();
    bytes.extend_from_slice(&[kind, flags]);
    bytes.extend_from_slice(&stream.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// GET on stream `stream`: :method GET, :scheme https, :path /.
fn get(stream: u32) -> Vec<u8> {
    let flags = flag::END_STREAM | flag::END_HEADERS;
    frame(kind::HEADERS, flags, stream, &[0x82, 0x87, 0x84])
}

/// The server's SETTINGS, then `frames`.
fn output(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = frame(kind::SETTINGS, 0, 0, &[]);
    frames
        .iter()
        .for_each(|frame| bytes.extend_from_slice(frame));
    bytes
}

/// A 404 head (static index 13) with `content-length: 1` (static 28, without indexing).
fn not_found(stream: u32, flags: u8) -> Vec<u8> {
    let block = [0x8d, 0x0f, 0x0d, 0x01, b'1'];
    frame(kind::HEADERS, flags | flag::END_HEADERS, stream, &block)
}

fn answered(stream: u32) -> Vec<Vec<u8>> {
    vec![
        not_found(stream, 0),
        frame(kind::DATA, flag::END_STREAM, stream, b"x"),
    ]
}

#[test]
fn a_plain_exchange_passes() {
    let mut input = get(1);
    input.extend(frame(kind::PING, 0, 0, b"01234567"));
    let mut frames = answered(1);
    frames.push(frame(kind::PING, flag::ACK, 0, b"01234567"));
    frames.push(frame(kind::GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0]));
    check_output(&input, &output(&frames));
}

#[test]
#[should_panic(expected = "after the last whole frame")]
fn a_cut_frame_fails() {
    let mut bytes = output(&answered(1));
    bytes.pop();
    check_output(&get(1), &bytes);
}

#[test]
#[should_panic(expected = "GOAWAY, then more frames")]
fn a_frame_after_goaway_fails() {
    let mut frames = vec![frame(kind::GOAWAY, 0, 0, &[0; 8])];
    frames.extend(answered(1));
    check_output(&get(1), &output(&frames));
}

#[test]
#[should_panic(expected = "inside the header block")]
fn a_frame_inside_a_header_block_fails() {
    let mut input = get(1);
    input.extend(get(3));
    let frames = [
        frame(kind::HEADERS, 0, 1, &[0x8d]),
        frame(kind::DATA, 0, 3, b"x"),
        frame(kind::CONTINUATION, flag::END_HEADERS, 1, &[]),
    ];
    check_output(&input, &output(&frames));
}

#[test]
#[should_panic(expected = "which the client did not open")]
fn a_response_on_a_stream_nobody_opened_fails() {
    check_output(&get(1), &output(&answered(3)));
}

#[test]
#[should_panic(expected = "its windows allow 0")]
fn data_beyond_the_stream_window_fails() {
    // SETTINGS_INITIAL_WINDOW_SIZE 0.
    let mut input = frame(kind::SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 0]);
    input.extend(get(1));
    let frames = [
        frame(kind::SETTINGS, flag::ACK, 0, &[]),
        not_found(1, 0),
        frame(kind::DATA, flag::END_STREAM, 1, b"x"),
    ];
    check_output(&input, &output(&frames));
}

#[test]
#[should_panic(expected = "with content-length 1")]
fn data_beyond_the_content_length_fails() {
    let frames = [
        not_found(1, 0),
        frame(kind::DATA, flag::END_STREAM, 1, b"xy"),
    ];
    check_output(&get(1), &output(&frames));
}

#[test]
#[should_panic(expected = "after the server ended or reset stream 1")]
fn data_after_end_stream_fails() {
    let mut frames = answered(1);
    frames.push(frame(kind::DATA, 0, 1, b""));
    check_output(&get(1), &output(&frames));
}

#[test]
#[should_panic(expected = "the client sent 0 of DATA")]
fn a_window_update_for_data_never_sent_fails() {
    let mut frames = answered(1);
    frames.push(frame(kind::WINDOW_UPDATE, 0, 1, &[0, 0, 0, 1]));
    check_output(&get(1), &output(&frames));
}

#[test]
#[should_panic(expected = "the client did not ask for")]
fn an_unasked_ping_acknowledgement_fails() {
    let frames = [frame(kind::PING, flag::ACK, 0, b"01234567")];
    check_output(&get(1), &output(&frames));
}

#[test]
fn the_input_is_cut_into_writes_after_paused_frames() {
    let paused = frame(kind::PING, frames::PAUSE, 0, b"01234567");
    let mut input = get(1);
    input.extend(&paused);
    input.extend(get(3));
    input.extend([0, 0]);
    let writes = frames::writes(&input);
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[0].len(), get(1).len() + paused.len());
    assert_eq!(writes[1].len(), get(3).len() + 2);
    assert_eq!(frames::writes(&get(1)), [&get(1)[..]]);
}
