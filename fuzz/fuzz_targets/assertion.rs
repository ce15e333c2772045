//! `cargo fuzz run assertion`: see `crates/portvakt-fuzz/src/assertion.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portvakt_fuzz::assertion::run(data));
