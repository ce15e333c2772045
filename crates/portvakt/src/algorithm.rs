//! The JWS signature algorithms portvakt can verify.
//!
//! Maskinporten signs access tokens with RS256 and nothing else, so that is the only algorithm
//! allowed by default. RS384, RS512 and PS256 are opt-in for issuers that need them. `none`,
//! the HMAC family and every other name are not representable here at all: a token that names
//! them is refused before any key is looked up (RFC 8725 section 3.1).

use std::fmt;

use aws_lc_rs::signature::{self, RsaParameters};

/// A signature algorithm from the JWS algorithm registry (RFC 7518) that portvakt verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256: what Maskinporten uses.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256, MGF1 with SHA-256 and a 32-byte salt.
    PS256,
}

impl Algorithm {
    /// Every algorithm portvakt knows, in a stable order.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
    ];

    /// The registered JWS name, as it appears in a token's `alg` header.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
        }
    }

    /// Looks up an algorithm by its exact, case-sensitive JWS name.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// The aws-lc-rs verification parameters. All of them refuse keys under 2048 bits.
    pub(crate) fn verification(self) -> &'static RsaParameters {
        match self {
            Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::from_name(s).ok_or_else(|| {
            format!("unsupported algorithm `{s}`: portvakt verifies RS256, RS384, RS512 and PS256")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        }
        assert_eq!(Algorithm::from_name("rs256"), None);
        assert_eq!(Algorithm::from_name("none"), None);
        assert_eq!(Algorithm::from_name("HS256"), None);
        assert!("ES256".parse::<Algorithm>().is_err());
    }
}
