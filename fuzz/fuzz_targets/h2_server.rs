//! libFuzzer entry for `fuzzing::h2_server`; the invariants are documented there.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::h2_server(data));
