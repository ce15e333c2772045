//! `cargo fuzz run payload`: see `crates/portvakt-fuzz/src/payload.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portvakt_fuzz::payload::run(data));
