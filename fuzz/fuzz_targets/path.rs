//! `cargo fuzz run path`: see `crates/portvakt-fuzz/src/path.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portvakt_fuzz::path::run(data));
