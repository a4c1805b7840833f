//! Seeds of `hpack_decode`: a budget selector, then header blocks between
//! `fuzzing::HPACK_SEPARATOR`s.

/// RFC 7541 C.3 (raw) and C.4 (Huffman): three requests on one table.
const RFC_REQUESTS: [[&str; 3]; 2] = [
    [
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ],
    [
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ],
];

/// RFC 7541 C.5 (raw) and C.6 (Huffman): three responses on a table of 256 octets.
const RFC_RESPONSES: [[&str; 3]; 2] = [
    [
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
         2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
         6c65 2e63 6f6d",
        "4803 3330 37c1 c0bf",
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
         54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
         5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
         3d31",
    ],
    [
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ],
];

/// Blocks (in hex) that reach each representation, field class and error, with their
/// budget selector.
const EDGE_CASES: &[(&str, u8, &[&str])] = &[
    // C.2.1 to C.2.4: with indexing, without, never indexed, then indexed (the C.2.1 entry).
    (
        "literals",
        16,
        &[
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            "040c 2f73 616d 706c 652f 7061 7468",
            "1008 7061 7373 776f 7264 0673 6563 7265 74",
            "82be",
        ],
    ),
    // authorization (static 23) never indexed, then accept-encoding: gzip, deflate.
    ("sensitive", 4, &["1f08 0862 6561 7265 7220 78 90"]),
    // An upper-case name, an unknown pseudo-header, a leading space, a NUL, an empty name and
    // :status 200 (a response's pseudo-header, fine for HPACK).
    (
        "malformed-fields",
        16,
        &[
            "4003 4162 6301 76",
            "0004 3a66 6f6f 0176",
            "0f0d 0220 31",
            "0001 7801 00 0000 00 88",
        ],
    ),
    // :method, then :protocol websocket, :scheme https and an empty :path.
    (
        "pseudo-headers",
        16,
        &["8200 093a 7072 6f74 6f63 6f6c 0977 6562 736f 636b 6574 8704 00"],
    ),
    // A size update to 0 evicts the entry the next block refers to.
    ("size-update-evicts", 16, &["4003 6162 6301 76", "20be"]),
    ("size-update-after-field", 16, &["8220"]),
    ("size-update-too-large", 16, &["3fe2 1f"]),
    ("size-update-twice", 16, &["203f e11f 82"]),
    ("integer-overflow", 16, &["ffff ffff ffff ff7f"]),
    ("index-zero", 16, &["80"]),
    ("index-past-tables", 16, &["bf"]),
    ("truncated-string", 16, &["400a 6375 7374"]),
    // Huffman: 8 bits of padding, padding that is not EOS, the EOS symbol itself.
    ("huffman-padding-long", 16, &["0081 ff01 61"]),
    ("huffman-padding-not-eos", 16, &["0081 0001 61"]),
    ("huffman-eos", 16, &["0084 ffff ffff 0161"]),
    ("empty-blocks", 16, &["", "", "", ""]),
];

/// Every seed of the target, by name.
pub(crate) fn all() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (name, blocks) in [("raw", RFC_REQUESTS[0]), ("huffman", RFC_REQUESTS[1])] {
        let blocks: Vec<Vec<u8>> = blocks.iter().map(|block| hex(block)).collect();
        // 4 KiB, then 64 bytes (every block over budget), then 256 (some within).
        for selector in [16, 0, 1] {
            seeds.push((
                format!("requests-{name}-budget{selector}"),
                input(selector, &blocks),
            ));
        }
    }
    for (name, blocks) in [("raw", RFC_RESPONSES[0]), ("huffman", RFC_RESPONSES[1])] {
        // A size update to the examples' 256 octets first, so that entries are evicted.
        let mut blocks: Vec<Vec<u8>> = blocks.iter().map(|block| hex(block)).collect();
        blocks[0].splice(0..0, hex("3fe1 01"));
        seeds.push((format!("responses-{name}"), input(16, &blocks)));
    }
    for (name, selector, blocks) in EDGE_CASES {
        let blocks: Vec<Vec<u8>> = blocks.iter().map(|block| hex(block)).collect();
        seeds.push(((*name).to_owned(), input(*selector, &blocks)));
    }
    seeds.push(("bomb".into(), bomb()));
    seeds
}

/// The target's input: the budget selector, then the blocks between separators.
fn input(selector: u8, blocks: &[Vec<u8>]) -> Vec<u8> {
    let mut input = vec![selector];
    for (index, block) in blocks.iter().enumerate() {
        if index > 0 {
            input.extend_from_slice(fuzzing::HPACK_SEPARATOR);
        }
        input.extend_from_slice(block);
    }
    input
}

/// One entry of almost the whole table, then many references to it: a few kilobytes that
/// decode to far more than any budget.
fn bomb() -> Vec<u8> {
    let mut entry = vec![0x40, 0x06];
    entry.extend_from_slice(b"x-bomb");
    // A raw string of 127 + 3,841 = 3,968 octets (5.1 integer: 0x7f, then 3,841 in 7-bit
    // groups, least significant first).
    entry.extend_from_slice(&[0x7f, 0x81, 0x1e]);
    entry.extend(std::iter::repeat_n(b'a', 3968));
    let references = vec![0xbe; 200];
    input(255, &[entry, references])
}

/// Octets from hex digits, whitespace ignored.
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).expect("ASCII hex");
            u8::from_str_radix(pair, 16).expect("hex digits")
        })
        .collect()
}
