//! `cargo fuzz run token`: see `crates/portvakt-fuzz/src/token.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portvakt_fuzz::token::run(data));
