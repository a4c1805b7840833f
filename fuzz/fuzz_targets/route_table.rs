//! libFuzzer entry for `fuzzing::route_table`; the invariants are documented there.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::route_table(data));
