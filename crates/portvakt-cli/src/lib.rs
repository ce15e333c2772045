//! The `portvakt` command's subcommands, as a library so integration tests can drive them
//! in-process. The binary (`main.rs`) only parses arguments and dispatches.

#![forbid(unsafe_code)]

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
