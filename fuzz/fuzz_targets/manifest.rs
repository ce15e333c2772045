//! `cargo fuzz run manifest`: see `crates/portvakt-fuzz/src/manifest.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portvakt_fuzz::manifest::run(data));
