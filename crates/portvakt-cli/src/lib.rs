//! The `portvakt` command's subcommands, as a library so integration tests can drive them
//! in-process. The binary (`main.rs`) only parses arguments and dispatches.

// No unsafe code, but where allowed by name: serve/child.rs (waitpid, kill and prctl for
// `serve -- CMD`; std has no wait-for-any-child) and proxy/scheduling.rs (sched_setscheduler
// and sched_getscheduler for the proxy's threads; std has no scheduling policy).
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
pub mod values;
