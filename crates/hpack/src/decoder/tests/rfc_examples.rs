//! RFC 7541 Appendix C.2 to C.6, transcribed octet for octet, with the dynamic table checked
//! after every block.

use super::{Decoder, Seen, decode, hex, table_of, valid};

#[test]
fn c_2_1_literal_with_indexing() {
    let mut decoder = Decoder::new(4096);
    let block = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
    assert_eq!(
        decode(&mut decoder, &block),
        Ok(vec![valid("custom-key", "custom-header")])
    );
    assert_eq!(
        table_of(&decoder),
        (vec![valid("custom-key", "custom-header")], 55)
    );
}

#[test]
fn c_2_2_literal_without_indexing() {
    let mut decoder = Decoder::new(4096);
    let block = hex("040c 2f73 616d 706c 652f 7061 7468");
    assert_eq!(
        decode(&mut decoder, &block),
        Ok(vec![valid(":path", "/sample/path")])
    );
    assert_eq!(table_of(&decoder), (Vec::new(), 0));
}

#[test]
fn c_2_3_literal_never_indexed() {
    let mut decoder = Decoder::new(4096);
    let block = hex("1008 7061 7373 776f 7264 0673 6563 7265 74");
    assert_eq!(
        decode(&mut decoder, &block),
        Ok(vec![valid("password", "secret")])
    );
    assert_eq!(table_of(&decoder), (Vec::new(), 0));
}

#[test]
fn c_2_4_indexed_field() {
    let mut decoder = Decoder::new(4096);
    assert_eq!(
        decode(&mut decoder, &hex("82")),
        Ok(vec![valid(":method", "GET")])
    );
    assert_eq!(table_of(&decoder), (Vec::new(), 0));
}

/// The three requests of C.3 (raw) and C.4 (Huffman) on one decoder: fields and tables.
fn check_requests(blocks: [&str; 3]) {
    let mut decoder = Decoder::new(4096);
    let authority = valid(":authority", "www.example.com");
    let cache_control = valid("cache-control", "no-cache");
    let custom = valid("custom-key", "custom-value");

    let first = decode(&mut decoder, &hex(blocks[0])).expect("first request");
    assert_eq!(
        first,
        [
            valid(":method", "GET"),
            valid(":scheme", "http"),
            valid(":path", "/"),
            authority.clone(),
        ]
    );
    assert_eq!(table_of(&decoder), (vec![authority.clone()], 57));

    let second = decode(&mut decoder, &hex(blocks[1])).expect("second request");
    assert_eq!(
        second,
        [
            valid(":method", "GET"),
            valid(":scheme", "http"),
            valid(":path", "/"),
            authority.clone(),
            cache_control.clone(),
        ]
    );
    assert_eq!(
        table_of(&decoder),
        (vec![cache_control.clone(), authority.clone()], 110)
    );

    let third = decode(&mut decoder, &hex(blocks[2])).expect("third request");
    assert_eq!(
        third,
        [
            valid(":method", "GET"),
            valid(":scheme", "https"),
            valid(":path", "/index.html"),
            authority.clone(),
            custom.clone(),
        ]
    );
    assert_eq!(
        table_of(&decoder),
        (vec![custom, cache_control, authority], 164)
    );
}

#[test]
fn c_3_requests_without_huffman() {
    check_requests([
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ]);
}

#[test]
fn c_4_requests_with_huffman() {
    check_requests([
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ]);
}

/// The three responses of C.5 (raw) and C.6 (Huffman) on one decoder whose table holds 256
/// octets, so entries are evicted.
fn check_responses(blocks: [&str; 3]) {
    // The examples' endpoint advertised SETTINGS_HEADER_TABLE_SIZE 256.
    let mut decoder = Decoder::new(256);
    let date_21 = valid("date", "Mon, 21 Oct 2013 20:13:21 GMT");
    let date_22 = valid("date", "Mon, 21 Oct 2013 20:13:22 GMT");
    let location = valid("location", "https://www.example.com");
    let private = valid("cache-control", "private");
    let status_302 = valid(":status", "302");
    let status_307 = valid(":status", "307");
    let gzip = valid("content-encoding", "gzip");
    let cookie = valid(
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    );

    let first = decode(&mut decoder, &hex(blocks[0])).expect("first response");
    let expected = [
        status_302.clone(),
        private.clone(),
        date_21.clone(),
        location.clone(),
    ];
    assert_eq!(first, expected);
    let table: Vec<Seen> = expected.iter().rev().cloned().collect();
    assert_eq!(table_of(&decoder), (table, 222));

    let second = decode(&mut decoder, &hex(blocks[1])).expect("second response");
    assert_eq!(
        second,
        [
            status_307.clone(),
            private.clone(),
            date_21.clone(),
            location.clone()
        ]
    );
    assert_eq!(
        table_of(&decoder),
        (
            vec![
                status_307.clone(),
                location.clone(),
                date_21.clone(),
                private.clone()
            ],
            222
        )
    );

    let third = decode(&mut decoder, &hex(blocks[2])).expect("third response");
    assert_eq!(
        third,
        [
            valid(":status", "200"),
            private,
            date_22.clone(),
            location,
            gzip.clone(),
            cookie.clone(),
        ]
    );
    assert_eq!(table_of(&decoder), (vec![cookie, gzip, date_22], 215));
}

#[test]
fn c_5_responses_without_huffman() {
    check_responses([
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
         2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
         6c65 2e63 6f6d",
        "4803 3330 37c1 c0bf",
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
         54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
         5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
         3d31",
    ]);
}

#[test]
fn c_6_responses_with_huffman() {
    check_responses([
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ]);
}
