//! `cargo fuzz run jwks`: see `crates/portvakt-fuzz/src/jwks.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portvakt_fuzz::jwks::run(data));
