//! libFuzzer entry for `fuzzing::path_normalize`; the invariants are documented there.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::path_normalize(data));
