//! libFuzzer entry for `fuzzing::config_yaml`; the invariants are documented there.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::config_yaml(data));
