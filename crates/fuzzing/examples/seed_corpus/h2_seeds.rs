//! Seeds of `h2_server`: what a client sends after the connection preface, frame by frame
//! (RFC 9113 §4, §6), with request heads in HPACK (RFC 7541). A frame flagged [`PAUSE`] ends
//! one of the client's writes: it waits for the server's answers before the next frames, so
//! that window updates, resets and bodies meet a response under way.

/// Frame types.
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

/// Flags.
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY_FLAG: u8 = 0x20;
/// The target's "the client waits for the answers here" (a flag no frame type defines).
const PAUSE: u8 = 0x80;

/// SETTINGS parameters, and one no version defines (to be ignored).
const HEADER_TABLE_SIZE: u16 = 0x1;
const ENABLE_PUSH: u16 = 0x2;
const MAX_CONCURRENT_STREAMS: u16 = 0x3;
const INITIAL_WINDOW_SIZE: u16 = 0x4;
const MAX_FRAME_SIZE: u16 = 0x5;
const MAX_HEADER_LIST_SIZE: u16 = 0x6;
const ENABLE_CONNECT_PROTOCOL: u16 = 0x8;
const UNKNOWN_SETTING: u16 = 0x99;

/// Error codes.
const NO_ERROR: u32 = 0x0;
const CANCEL: u32 = 0x8;

/// One frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).expect("a small payload");
    let mut bytes = length.to_be_bytes()[1..].to_vec();
    bytes.extend_from_slice(&[kind, flags]);
    bytes.extend_from_slice(&stream.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

fn settings(parameters: &[(u16, u32)]) -> Vec<u8> {
    let mut payload = Vec::new();
    for (id, value) in parameters {
        payload.extend_from_slice(&id.to_be_bytes());
        payload.extend_from_slice(&value.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &payload)
}

fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

fn rst_stream(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

/// A PRIORITY payload: exclusive bit and dependency, then weight.
fn priority(dependency: u32, weight: u8) -> Vec<u8> {
    let mut payload = dependency.to_be_bytes().to_vec();
    payload.push(weight);
    payload
}

/// A padded payload: the padding length, the data, that many zeros.
fn padded(data: &[u8], padding: u8) -> Vec<u8> {
    let mut payload = vec![padding];
    payload.extend_from_slice(data);
    payload.extend(std::iter::repeat_n(0, usize::from(padding)));
    payload
}

/// A raw HPACK string literal (length under 127).
fn string(text: &[u8]) -> Vec<u8> {
    let mut bytes = vec![u8::try_from(text.len()).expect("a short string")];
    bytes.extend_from_slice(text);
    bytes
}

/// `:authority: example.com`, literal with incremental indexing (then dynamic index 62).
fn authority() -> Vec<u8> {
    let mut bytes = vec![0x41];
    bytes.extend(string(b"example.com"));
    bytes
}

/// GET https://example.com/ (:method GET, :scheme https, :path /, :authority).
fn get() -> Vec<u8> {
    let mut block = vec![0x82, 0x87, 0x84];
    block.extend(authority());
    block
}

/// POST https://example.com/, with `content-length` when given.
fn post(content_length: Option<&[u8]>) -> Vec<u8> {
    let mut block = vec![0x83, 0x87, 0x84];
    block.extend(authority());
    if let Some(length) = content_length {
        // content-length (static 28), literal with incremental indexing.
        block.push(0x5c);
        block.extend(string(length));
    }
    block
}

/// A regular field, literal without indexing, new name.
fn field(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x00];
    bytes.extend(string(name));
    bytes.extend(string(value));
    bytes
}

/// The client's SETTINGS (none changed) and its acknowledgement of the server's.
fn start() -> Vec<u8> {
    let mut bytes = settings(&[]);
    bytes.extend(frame(SETTINGS, ACK, 0, &[]));
    bytes
}

fn seed(name: &str, frames: &[Vec<u8>]) -> (String, Vec<u8>) {
    let mut bytes = start();
    for frame in frames {
        bytes.extend_from_slice(frame);
    }
    (format!("h2-{name}"), bytes)
}

/// Every seed of the target, by name.
pub(crate) fn all() -> Vec<(String, Vec<u8>)> {
    let mut seeds = requests();
    seeds.extend(control_frames());
    seeds.extend(errors());
    seeds
}

/// Requests, with and without bodies, as one frame and as several.
fn requests() -> Vec<(String, Vec<u8>)> {
    let both = END_STREAM | END_HEADERS;
    let mut repeated = vec![0x82, 0x87, 0x84, 0xbe];
    repeated.extend(field(b"accept", b"*/*"));
    let block = get();
    let (first, rest) = block.split_at(3);
    let (middle, last) = rest.split_at(4);
    let mut websocket = vec![0x02];
    websocket.extend(string(b"CONNECT"));
    websocket.extend(field(b":protocol", b"websocket"));
    websocket.extend([0x87, 0x04]);
    websocket.extend(string(b"/chat"));
    websocket.extend(authority());
    vec![
        seed("get", &[frame(HEADERS, both, 1, &get())]),
        seed(
            "three-streams",
            &[
                frame(HEADERS, both, 1, &get()),
                frame(HEADERS, both, 3, &repeated),
                frame(HEADERS, both, 5, &repeated),
            ],
        ),
        seed(
            "post-data",
            &[
                frame(HEADERS, END_HEADERS, 1, &post(Some(b"5"))),
                frame(DATA, END_STREAM, 1, b"hello"),
            ],
        ),
        seed(
            "post-after-response",
            &[
                frame(HEADERS, END_HEADERS | PAUSE, 1, &post(Some(b"5"))),
                frame(DATA, 0, 1, b"hel"),
                frame(DATA, END_STREAM, 1, b"lo"),
            ],
        ),
        seed(
            "post-chunks",
            &[
                frame(HEADERS, END_HEADERS, 1, &post(None)),
                frame(DATA, 0, 1, b"ab"),
                frame(DATA, 0, 1, b"cd"),
                frame(DATA, END_STREAM, 1, b""),
            ],
        ),
        seed(
            "continuation",
            &[
                frame(HEADERS, END_STREAM, 1, first),
                frame(CONTINUATION, 0, 1, middle),
                frame(CONTINUATION, END_HEADERS, 1, last),
            ],
        ),
        seed(
            "padding",
            &[
                frame(
                    HEADERS,
                    END_HEADERS | PADDED,
                    1,
                    &padded(&post(Some(b"5")), 4),
                ),
                frame(DATA, END_STREAM | PADDED, 1, &padded(b"hello", 10)),
            ],
        ),
        seed(
            "trailers",
            &[
                frame(HEADERS, END_HEADERS, 1, &post(None)),
                frame(DATA, PAUSE, 1, b"abc"),
                frame(HEADERS, both, 1, &field(b"x-checksum", b"abc")),
            ],
        ),
        seed(
            "extended-connect",
            &[
                frame(HEADERS, END_HEADERS | PAUSE, 1, &websocket),
                frame(DATA, 0, 1, b"hi"),
                frame(DATA, END_STREAM, 1, b""),
            ],
        ),
        seed("header-list-too-large", &[frame(HEADERS, both, 1, &bomb())]),
        // Past the stream's window of 64 KiB before anyone reads (FLOW_CONTROL_ERROR): the
        // only seed of more than a few kilobytes.
        seed("post-beyond-window", &large_body(5)),
    ]
}

/// A POST on stream 1 whose body is `frames` DATA frames of 16,384 bytes, the last one
/// ending the stream.
fn large_body(frames: usize) -> Vec<Vec<u8>> {
    let length = (frames * 16_384).to_string();
    let mut sent = vec![frame(
        HEADERS,
        END_HEADERS,
        1,
        &post(Some(length.as_bytes())),
    )];
    for index in 0..frames {
        let flags = if index + 1 == frames { END_STREAM } else { 0 };
        sent.push(frame(DATA, flags, 1, &[b'x'; 16_384]));
    }
    sent
}

/// SETTINGS, PING, WINDOW_UPDATE, RST_STREAM, PRIORITY and GOAWAY around requests.
fn control_frames() -> Vec<(String, Vec<u8>)> {
    let both = END_STREAM | END_HEADERS;
    let get = frame(HEADERS, both, 1, &get());
    let get_then_wait = frame(HEADERS, both | PAUSE, 1, &self::get());
    let mut prioritized = priority(0x8000_0000, 15);
    prioritized.extend(self::get());
    vec![
        seed(
            "ping",
            &[
                frame(PING, 0, 0, b"01234567"),
                frame(PING, ACK, 0, b"76543210"),
            ],
        ),
        seed(
            "settings-each",
            &[
                settings(&[
                    (HEADER_TABLE_SIZE, 4096),
                    (ENABLE_PUSH, 0),
                    (MAX_CONCURRENT_STREAMS, 100),
                    (INITIAL_WINDOW_SIZE, 65_535),
                    (MAX_FRAME_SIZE, 16_384),
                    (MAX_HEADER_LIST_SIZE, 8192),
                    (ENABLE_CONNECT_PROTOCOL, 1),
                    (UNKNOWN_SETTING, 1),
                ]),
                get.clone(),
            ],
        ),
        seed(
            "window-zero",
            &[
                settings(&[(INITIAL_WINDOW_SIZE, 0)]),
                get_then_wait.clone(),
                frame(WINDOW_UPDATE, PAUSE, 1, &10u32.to_be_bytes()),
                window_update(1, 1000),
            ],
        ),
        seed(
            "window-one-then-default",
            &[
                settings(&[(INITIAL_WINDOW_SIZE, 1)]),
                get_then_wait.clone(),
                settings(&[(INITIAL_WINDOW_SIZE, 65_535)]),
            ],
        ),
        seed(
            "max-frame-size",
            &[settings(&[(MAX_FRAME_SIZE, 16_777_215)]), get.clone()],
        ),
        seed(
            "window-update",
            &[window_update(0, 1000), get.clone(), window_update(1, 1000)],
        ),
        seed(
            "connection-window-spent",
            &[
                settings(&[(INITIAL_WINDOW_SIZE, 1_000_000)]),
                frame(HEADERS, END_HEADERS | PAUSE, 1, &post(None)),
                window_update(0, 1),
            ],
        ),
        seed(
            "rst-stream",
            &[
                frame(HEADERS, END_HEADERS, 1, &post(None)),
                rst_stream(1, CANCEL),
                frame(DATA, 0, 1, b"late"),
                frame(HEADERS, END_HEADERS | PAUSE, 3, &post(None)),
                rst_stream(3, CANCEL),
            ],
        ),
        seed(
            "priority",
            &[
                frame(PRIORITY, 0, 3, &priority(0, 16)),
                frame(HEADERS, both | PRIORITY_FLAG, 1, &prioritized),
                frame(PRIORITY, 0, 1, &priority(3, 200)),
                frame(PRIORITY, 0, 5, &[0; 4]),
            ],
        ),
        seed(
            "goaway",
            &[
                get_then_wait,
                frame(GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0]),
                get,
            ],
        ),
    ]
}

/// Connection and stream errors.
fn errors() -> Vec<(String, Vec<u8>)> {
    let both = END_STREAM | END_HEADERS;
    let mut upper_case = get();
    upper_case.extend(field(b"X-Upper", b"1"));
    vec![
        seed("data-on-stream-0", &[frame(DATA, 0, 0, b"x")]),
        seed("even-stream", &[frame(HEADERS, both, 2, &get())]),
        seed(
            "unknown-frame-type",
            &[
                frame(0xfa, 0xff, 1, b"ignored"),
                frame(HEADERS, both, 1, &get()),
            ],
        ),
        seed(
            "push-promise",
            &[frame(PUSH_PROMISE, END_HEADERS, 1, &[0, 0, 0, 2])],
        ),
        seed("malformed-request", &[frame(HEADERS, both, 1, &upper_case)]),
        seed(
            "window-overflow",
            &[window_update(0, 0x7fff_ffff), rst_stream(1, NO_ERROR)],
        ),
        // The header of a DATA frame of 16,385 bytes: refused before its payload comes.
        seed(
            "frame-too-large",
            &[vec![0, 0x40, 0x01, DATA, 0, 0, 0, 0, 1]],
        ),
        ("h2-headers-first".into(), frame(HEADERS, both, 1, &get())),
    ]
}

/// One entry of almost the whole table, then references to it: a head beyond any list size.
fn bomb() -> Vec<u8> {
    let mut block = get();
    block.extend([0x40, 0x06]);
    block.extend_from_slice(b"x-bomb");
    block.extend([0x7f, 0x81, 0x1e]); // a raw string of 127 + 3,841 = 3,968 octets
    block.extend(std::iter::repeat_n(b'a', 3968));
    block.extend([0xbe; 20]);
    block
}
