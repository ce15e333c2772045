//! RSA signing keys: for the local issuer's tokens and for consumers' client assertions.
//!
//! A key can be generated (development), or loaded from a private JWK, the form NAIS injects
//! as `MASKINPORTEN_CLIENT_JWK`. The private JWK can be written back out, so a generated
//! development key can be handed to a consumer the way NAIS would.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeyPairComponents, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, KeyPair as _, RsaEncoding};
use serde_json::{Map, Value, json};

use crate::algorithm::Algorithm;
use crate::encoding::{decode_base64url, encode_base64url, parse_json_object};

/// A signing key could not be made or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// The JWK is not a private RSA JWK.
    #[error("not a usable private RSA JWK: {0}")]
    BadJwk(String),
    /// The cryptographic library refused (key generation or signing failed).
    #[error("RSA operation failed: {0}")]
    Crypto(String),
}

/// An RSA private key with its `kid`.
pub struct SigningKey {
    kid: String,
    pair: KeyPair,
    /// Base64 DER certificates: when set, JWTs name the key by `x5c` instead of `kid`.
    x5c: Vec<String>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the private key.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a 2048-bit RSA key.
    pub fn generate(kid: impl Into<String>) -> Result<SigningKey, SigningError> {
        let pair =
            KeyPair::generate(KeySize::Rsa2048).map_err(|e| SigningError::Crypto(e.to_string()))?;
        Ok(SigningKey::from_parts(kid.into(), pair, Vec::new()))
    }

    /// Loads a private RSA JWK (`kty`, `kid`, `n`, `e`, `d`, `p`, `q`, `dp`, `dq`, `qi`).
    pub fn from_jwk(jwk: &str) -> Result<SigningKey, SigningError> {
        let object = parse_json_object(jwk.as_bytes())
            .map_err(|e| SigningError::BadJwk(format!("the JWK {e}")))?;
        SigningKey::from_jwk_object(&object)
    }

    /// Loads a private RSA JWK from a parsed object.
    pub fn from_jwk_object(object: &Map<String, Value>) -> Result<SigningKey, SigningError> {
        if object.get("kty").and_then(Value::as_str) != Some("RSA") {
            return Err(SigningError::BadJwk("`kty` must be `RSA`".to_owned()));
        }
        let kid = object
            .get("kid")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                SigningError::BadJwk(
                    "it has no `kid`; Maskinporten needs it to find the registered key".to_owned(),
                )
            })?;
        let member = |name: &str| -> Result<Vec<u8>, SigningError> {
            let text = object.get(name).and_then(Value::as_str).ok_or_else(|| {
                SigningError::BadJwk(format!("it has no `{name}` (is this a public key?)"))
            })?;
            let mut bytes = decode_base64url(text)
                .map_err(|_| SigningError::BadJwk(format!("`{name}` is not base64url")))?;
            if matches!(name, "n" | "e") {
                let leading = bytes.iter().take_while(|b| **b == 0).count();
                bytes.drain(..leading);
            }
            Ok(bytes)
        };
        let (n, e, d) = (member("n")?, member("e")?, member("d")?);
        let (p, q, dp, dq, qi) = (
            member("p")?,
            member("q")?,
            member("dp")?,
            member("dq")?,
            member("qi")?,
        );
        let components = KeyPairComponents {
            public_key: PublicKeyComponents {
                n: &n[..],
                e: &e[..],
            },
            d: &d[..],
            p: &p[..],
            q: &q[..],
            dP: &dp[..],
            dQ: &dq[..],
            qInv: &qi[..],
        };
        let pair = KeyPair::from_components(&components).map_err(|e| {
            SigningError::BadJwk(format!("the key components are inconsistent: {e}"))
        })?;
        Ok(SigningKey::from_parts(kid.to_owned(), pair, Vec::new()))
    }

    pub(crate) fn from_parts(kid: String, pair: KeyPair, x5c: Vec<String>) -> SigningKey {
        SigningKey { kid, pair, x5c }
    }

    #[cfg(test)]
    pub(crate) fn key_pair(&self) -> &KeyPair {
        &self.pair
    }

    /// The certificate chain (base64 DER) JWTs carry as `x5c`; empty for a `kid`-named key.
    pub fn x5c(&self) -> &[String] {
        &self.x5c
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK, for a JWKS: `{"kty":"RSA","kid":...,"use":"sig","alg":"RS256","n":...,"e":...}`.
    pub fn public_jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
            "n": encode_base64url(public.modulus().big_endian_without_leading_zero()),
            "e": encode_base64url(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// The private JWK, the form NAIS injects as `MASKINPORTEN_CLIENT_JWK`. A secret.
    pub fn private_jwk(&self) -> Result<Value, SigningError> {
        let pkcs8 = self
            .pair
            .as_der()
            .map_err(|e| SigningError::Crypto(e.to_string()))?;
        let numbers = der::rsa_private_key_integers(pkcs8.as_ref())
            .ok_or_else(|| SigningError::Crypto("could not read the PKCS#8 encoding".to_owned()))?;
        let [_, n, e, d, p, q, dp, dq, qi] = numbers;
        Ok(json!({
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
            "n": encode_base64url(n),
            "e": encode_base64url(e),
            "d": encode_base64url(d),
            "p": encode_base64url(p),
            "q": encode_base64url(q),
            "dp": encode_base64url(dp),
            "dq": encode_base64url(dq),
            "qi": encode_base64url(qi),
        }))
    }

    /// Signs a JWT with header `{"kid": ..., "alg": ...}`, as Maskinporten's tokens have, or
    /// `{"alg": ..., "x5c": [...]}` for a key loaded with its certificate chain.
    pub fn sign_jwt(&self, alg: Algorithm, claims: &Value) -> Result<String, SigningError> {
        let header = if self.x5c.is_empty() {
            json!({"kid": self.kid, "alg": alg.name()})
        } else {
            json!({"alg": alg.name(), "x5c": self.x5c})
        };
        self.sign_compact(
            alg,
            header.to_string().as_bytes(),
            claims.to_string().as_bytes(),
        )
    }

    /// Signs any header and payload bytes as a compact JWS (tests use this for odd headers).
    pub fn sign_compact(
        &self,
        alg: Algorithm,
        header: &[u8],
        payload: &[u8],
    ) -> Result<String, SigningError> {
        let mut token = encode_base64url(header);
        token.push('.');
        token.push_str(&encode_base64url(payload));
        let signature = self.sign_raw(alg, token.as_bytes())?;
        token.push('.');
        token.push_str(&encode_base64url(signature));
        Ok(token)
    }

    /// A raw signature over `message`.
    pub fn sign_raw(&self, alg: Algorithm, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let encoding: &'static dyn RsaEncoding = match alg {
            Algorithm::RS256 => &signature::RSA_PKCS1_SHA256,
            Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
            Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
            Algorithm::PS256 => &signature::RSA_PSS_SHA256,
        };
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                encoding,
                &aws_lc_rs::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|e| SigningError::Crypto(e.to_string()))?;
        Ok(signature)
    }
}

/// Just enough DER to read the integers of a PKCS#8-wrapped RSAPrivateKey (RFC 5208, RFC 8017
/// appendix A.1.2). aws-lc-rs writes these; we only read what it wrote.
mod der {
    fn read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let (bytes, tail) = rest.split_at(count);
            rest = tail;
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
        };
        if rest.len() < len {
            return None;
        }
        let (content, tail) = rest.split_at(len);
        Some((tag, content, tail))
    }

    fn strip_sign_byte(integer: &[u8]) -> &[u8] {
        match integer {
            [0, rest @ ..] if !rest.is_empty() => rest,
            other => other,
        }
    }

    /// version, n, e, d, p, q, dp, dq, qi.
    pub(super) fn rsa_private_key_integers(pkcs8: &[u8]) -> Option<[&[u8]; 9]> {
        let (0x30, info, _) = read(pkcs8)? else {
            return None;
        };
        let (0x02, _, rest) = read(info)? else {
            return None;
        };
        let (0x30, _, rest) = read(rest)? else {
            return None;
        };
        let (0x04, private_key, _) = read(rest)? else {
            return None;
        };
        let (0x30, mut fields, _) = read(private_key)? else {
            return None;
        };
        let mut out: [&[u8]; 9] = [&[]; 9];
        for slot in out.iter_mut() {
            let (0x02, integer, rest) = read(fields)? else {
                return None;
            };
            *slot = strip_sign_byte(integer);
            fields = rest;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeySet;
    use crate::jws::verify_compact;

    #[test]
    fn generated_key_round_trips_through_private_jwk_and_verifies() {
        let key = SigningKey::generate("k1").unwrap();
        let private = key.private_jwk().unwrap();
        let reloaded = SigningKey::from_jwk(&private.to_string()).unwrap();
        assert_eq!(reloaded.public_jwk(), key.public_jwk());
        let token = reloaded
            .sign_jwt(Algorithm::RS256, &json!({"a": 1}))
            .unwrap();
        let (set, warnings) = KeySet::from_jwks_values(&[key.public_jwk()], &[Algorithm::RS256]);
        assert!(warnings.is_empty(), "{warnings:?}");
        let verified = verify_compact(&token, &set, &[Algorithm::RS256]).unwrap();
        assert_eq!(verified.payload, br#"{"a":1}"#);
        assert!(!format!("{key:?}").contains(private["d"].as_str().unwrap()));
    }

    #[test]
    fn bad_private_jwks_are_explained() {
        let key = SigningKey::generate("k").unwrap();
        let err = SigningKey::from_jwk(&key.public_jwk().to_string()).unwrap_err();
        assert!(err.to_string().contains("no `d`"), "{err}");
        let mut private = key.private_jwk().unwrap();
        private["kid"] = json!("");
        assert!(
            SigningKey::from_jwk(&private.to_string())
                .unwrap_err()
                .to_string()
                .contains("kid")
        );
        let mut private = key.private_jwk().unwrap();
        private["d"] = json!("AQAB");
        assert!(SigningKey::from_jwk(&private.to_string()).is_err());
        assert!(SigningKey::from_jwk("{").is_err());
    }
}
