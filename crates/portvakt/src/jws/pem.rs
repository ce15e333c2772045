//! PEM input for client keys that name themselves by certificate (`x5c`) rather than `kid`:
//! an organization's business certificate chain and its RSA private key, as Digdir's admin
//! API and digdirator use them.
//!
//! Hand-written because it is small: a PEM block is base64 between two marker lines (RFC
//! 7468); the DER inside goes to aws-lc-rs unparsed (the key) or into the header as is (the
//! certificates, which the issuer checks, not we).

use aws_lc_rs::rsa::KeyPair;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::encoding::encode_base64url;
use crate::jws::signing::{SigningError, SigningKey};

/// The DER of every `label` block in `pem`, in order.
fn blocks(pem: &str, label: &str) -> Result<Vec<Vec<u8>>, SigningError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(&begin) {
        let body = &rest[start + begin.len()..];
        let stop = body
            .find(&end)
            .ok_or_else(|| SigningError::BadJwk(format!("a {begin} block has no {end}")))?;
        let text: String = body[..stop].split_whitespace().collect();
        let der = STANDARD
            .decode(text.as_bytes())
            .map_err(|e| SigningError::BadJwk(format!("a {label} block is not base64: {e}")))?;
        out.push(der);
        rest = &body[stop + end.len()..];
    }
    Ok(out)
}

impl SigningKey {
    /// Loads an RSA private key in PEM (`PRIVATE KEY`, PKCS#8, or `RSA PRIVATE KEY`, PKCS#1)
    /// with the certificate chain (`CERTIFICATE` blocks, the key's own first) that names it:
    /// assertions signed with it carry `x5c` instead of `kid`. The `kid` is derived from the
    /// first certificate, for logs only.
    pub fn from_pem_with_chain(key_pem: &str, chain_pem: &str) -> Result<SigningKey, SigningError> {
        let pair = if let Some(der) = blocks(key_pem, "PRIVATE KEY")?.into_iter().next() {
            KeyPair::from_pkcs8(&der)
        } else if let Some(der) = blocks(key_pem, "RSA PRIVATE KEY")?.into_iter().next() {
            KeyPair::from_der(&der)
        } else {
            return Err(SigningError::BadJwk(
                "no -----BEGIN PRIVATE KEY----- (or RSA PRIVATE KEY) block in the key".to_owned(),
            ));
        }
        .map_err(|e| {
            SigningError::BadJwk(format!("the private key is not a usable RSA key: {e}"))
        })?;
        let chain = blocks(chain_pem, "CERTIFICATE")?;
        if chain.is_empty() {
            return Err(SigningError::BadJwk(
                "no -----BEGIN CERTIFICATE----- block in the certificate chain".to_owned(),
            ));
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &chain[0]);
        let kid = format!("x5t#S256:{}", encode_base64url(digest.as_ref()));
        Ok(SigningKey::from_parts(
            kid,
            pair,
            chain.iter().map(|der| STANDARD.encode(der)).collect(),
        ))
    }
}

#[cfg(test)]
#[path = "pem_tests.rs"]
mod tests;
