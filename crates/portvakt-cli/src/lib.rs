//! The `portvakt` command's subcommands, as a library so integration tests can drive them
//! in-process. The binary (`main.rs`) only parses arguments and dispatches.

// No unsafe code, but for one module allowed by name: serve/child.rs (waitpid, kill and prctl
// for `serve -- CMD`; std has no wait-for-any-child).
#![deny(unsafe_code)]

pub mod devpage;
pub mod duration;
pub mod inspect_cmd;
pub mod issuer_cmd;
pub mod issuer_source;
pub mod manifest_cmd;
pub mod provision_cmd;
pub mod proxy;
pub mod serve;
pub mod token_cmd;
