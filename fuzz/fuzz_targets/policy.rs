//! `cargo fuzz run policy`: see `crates/portvakt-fuzz/src/policy.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portvakt_fuzz::policy::run(data));
