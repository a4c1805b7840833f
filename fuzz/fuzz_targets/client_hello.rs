//! libFuzzer entry for `fuzzing::client_hello`; the invariants are documented there.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::client_hello(data));
