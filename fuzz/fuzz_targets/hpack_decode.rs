//! libFuzzer entry for `fuzzing::hpack_decode`; the invariants are documented there.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::hpack_decode(data));
