//! The token: its claims, typed in one pass over the verified payload, and the verified token
//! the validator hands out.
//!
//! [`Claims`], [`Organization`](crate::Organization) and
//! [`VerifiedToken`] are at the crate root; this module holds the
//! constants that go with them.

pub(crate) mod claims;
mod payload;
pub(crate) mod verified;

pub use claims::{ISO6523_AUTHORITY, NORWEGIAN_ORGNO_ICD, UNSPECIFIED_AUDIENCE};

pub(crate) use claims::{Claims, check_audience};
pub(crate) use payload::parse_claims;
pub(crate) use verified::{Verified, VerifiedToken, past_expiry};
