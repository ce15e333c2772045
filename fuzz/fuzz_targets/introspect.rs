//! `cargo fuzz run introspect`: see `crates/portvakt-fuzz/src/introspect.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portvakt_fuzz::introspect::run(data));
