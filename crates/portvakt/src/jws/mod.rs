//! JSON Web Signatures: the compact serialization (RFC 7515) read strictly and verified, the
//! algorithms portvakt allows, and signing (for client assertions and the local issuer).
//!
//! [`Algorithm`](crate::Algorithm), [`SigningKey`] and
//! [`SigningError`] are at the crate root; this module holds the
//! compact-serialization functions.

mod compact;
mod pem;
pub(crate) mod signing;

pub use compact::{
    CompactParts, Header, VerifiedJws, decode_header, decode_unverified_header,
    decode_unverified_payload, split_compact, verify_compact,
};

pub(crate) use compact::{KeyLookup, verify_parts};
pub(crate) use signing::{SigningError, SigningKey};
