//! Fuzz entry points for portvakt.
//!
//! Each module is one fuzz target: a `run(&[u8])` that feeds arbitrary bytes to one parser or
//! check of portvakt and **panics when an invariant is broken**. Where a second implementation
//! exists (serde_json, the `base64` crate, aws-lc-rs called directly, a reference path
//! normalizer written here), the target is differential: portvakt's verdict must agree with it.
//!
//! The same functions run in two places:
//! - `fuzz/fuzz_targets/<name>.rs`, driven by libFuzzer (`cargo fuzz run <name>`, see
//!   `docs/FUZZING.md` and `scripts/fuzz.sh`);
//! - `tests/corpus.rs`, which replays every file of `fuzz/corpus/<name>/` and
//!   `fuzz/regressions/<name>/` through `run` in `cargo test`, so an input that once crashed
//!   is a failing test forever, without a fuzzer or a nightly compiler.
//!
//! Keys: the targets use two fixed RSA keys (`keys/*.jwk.json`) made for fuzzing only, so that
//! the signed tokens and assertions in the seed corpus stay valid across runs and machines.
//! They protect nothing.

#![forbid(unsafe_code)]

pub mod assertion;
pub mod introspect;
pub mod jwks;
pub mod manifest;
mod oracle;
pub mod path;
pub mod payload;
pub mod policy;
pub mod token;

/// A target's entry point.
pub type Target = fn(&[u8]);

/// Every target by name (the names of `fuzz/fuzz_targets/*.rs` and of the corpus folders).
pub const TARGETS: &[(&str, Target)] = &[
    ("token", token::run),
    ("jwks", jwks::run),
    ("payload", payload::run),
    ("introspect", introspect::run),
    ("path", path::run),
    ("manifest", manifest::run),
    ("policy", policy::run),
    ("assertion", assertion::run),
];

/// The fuzzing key that signs tokens (`keys/issuer.jwk.json`, private).
pub const ISSUER_JWK: &str = include_str!("../keys/issuer.jwk.json");
/// The fuzzing key of the registered client that signs assertions (`keys/client.jwk.json`).
pub const CLIENT_JWK: &str = include_str!("../keys/client.jwk.json");
