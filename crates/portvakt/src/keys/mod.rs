//! The issuer's keys: the JWKS and the keys in it ([`KeySet`]), where they
//! come from (the discovery document, the JWKS URI), the store that holds them for lock-free
//! reads, and the schedule by which it refreshes them.
//!
//! - `jwk.rs`: parsing and vetting a JWKS into a [`KeySet`] (RFC 7517/7518,
//!   RFC 8725: RSA only, 2048-8192 bits, ROCA refused);
//! - `discovery.rs`: the OpenID/OAuth discovery document ([`Discovery`]);
//! - `store.rs`: the key store: snapshots, single-flight refresh, maximum key age, readiness;
//! - `schedule.rs`: every delay and limit of the refresh, as one pure value.
//!
//! The headline types ([`KeySet`], [`VerifyingKey`],
//! [`Readiness`], [`RefreshError`], ...) are at the
//! crate root; this module holds the rest.

mod discovery;
pub(crate) mod jwk;
mod roca;
mod schedule;
pub(crate) mod store;

pub use discovery::{Discovery, DiscoveryError};
pub use jwk::{JwksError, MAX_RSA_BITS, MIN_RSA_BITS};

pub(crate) use jwk::{KeySet, VerifyFailure, VerifyingKey};
pub(crate) use store::{KeyStats, KeyStore, Readiness, RefreshError, Snapshot};
