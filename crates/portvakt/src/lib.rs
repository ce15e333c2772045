//! # portvakt
//!
//! Validate [Maskinporten](https://docs.digdir.no/docs/Maskinporten/) access tokens the way the
//! NAIS guide "Secure your API with Maskinporten" requires, hardened beyond generic JWT crates.
//!
//! ```no_run
//! use portvakt::{Config, Policy, Validator};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // MASKINPORTEN_WELL_KNOWN_URL (or MASKINPORTEN_ISSUER + MASKINPORTEN_JWKS_URI), as NAIS injects.
//! let validator = Validator::new(Config::from_env()?)?;
//! let read = Policy::new().require_scope("nav:arbeid:some.scope.read");
//! # let bearer_token = "";
//! match validator.validate_with(bearer_token, &read).await {
//!     Ok(token) => println!("consumer {:?}", token.consumer_orgno()),
//!     Err(e) => println!("refused ({}): {e}", e.code()),
//! }
//! # Ok(()) }
//! ```
//!
//! What it checks, in order: size, compact JWS shape and strict base64url, header (`alg` in the
//! allow-list, RS256 by default; `kid` required; `crit` refused; `jku`/`x5u`/`jwk`/`x5c` never
//! used), the signature against the issuer's JWKS, `iss` exactly, `exp` (required), `nbf` and
//! `iat` with 60 s leeway, `aud` when an audience is required, then the route's scopes and
//! consumers. Keys are refreshed in the background, single-flight and rate-limited on unknown
//! `kid`s; the last good keys are kept when the issuer fails. Verified tokens are cached.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
mod macros;

mod algorithm;
pub mod bearer;
pub mod client;
mod config;
mod encoding;
mod error;
mod fetch;
pub mod inspect;
pub mod jws;
pub mod keys;
mod policy;
mod scope;
pub mod token;
mod validator;

#[cfg(feature = "axum")]
pub mod extract;
#[cfg(feature = "tower")]
pub mod layer;

pub use algorithm::Algorithm;
pub use config::{
    Config, ConfigBuilder, ConfigError, DEFAULT_CACHE_BYTES, DEFAULT_LEEWAY,
    DEFAULT_MAX_TOKEN_SIZE, ENV_ALGORITHMS, ENV_AUDIENCE, ENV_ISSUER, ENV_JWKS_URI,
    ENV_WELL_KNOWN_URL, MAX_HTTP_TIMEOUT, StartError, env_var, is_loopback_url,
};
pub use error::{ErrorClass, Segment, ValidationError, printable, printable_at_most};
pub use fetch::FetchError;
pub use jws::signing::{SigningError, SigningKey};
pub use keys::jwk::{KeySet, KeyWarning, VerifyFailure, VerifyingKey};
pub use keys::store::{KeyStats, Misconfiguration, Readiness, RefreshError, Unavailable};
pub use policy::Policy;
pub use scope::{Conjunction, ScopeRequirement, ScopeSet};
pub use token::claims::{Claims, Organization};
pub use token::verified::VerifiedToken;
pub use validator::{Stats, Validator};

/// The crate's README (its dependency line and example), compiled as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
