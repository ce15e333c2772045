//! JSON Web Keys: parsing, vetting, and the key set the validator verifies against.
//!
//! Keys are vetted once, when a key set is loaded, and kept as aws-lc-rs parsed public keys,
//! so verifying a token does no key parsing. A key that fails vetting is skipped with a
//! [`KeyWarning`] rather than failing the whole set: one odd key published by the issuer must
//! not stop validation with the good ones.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::signature::{ParsedPublicKey, RsaPublicKeyComponents};
use serde_json::{Map, Value};

use crate::algorithm::Algorithm;
use crate::encoding::{decode_base64url, parse_json_object};
use crate::error::printable;

/// The smallest RSA modulus accepted (NIST SP 800-131A; RFC 7518 section 3.3).
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted; larger keys only make verification a DoS lever.
pub const MAX_RSA_BITS: usize = 8192;

/// A vetted public key, ready to verify signatures.
pub struct VerifyingKey {
    kid: Arc<str>,
    declared_alg: Option<Algorithm>,
    bits: usize,
    modulus: Box<[u8]>,
    exponent: Box<[u8]>,
    parsed: Vec<(Algorithm, ParsedPublicKey)>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.declared_alg)
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

/// Why a signature did not verify with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyFailure {
    /// The key declares another algorithm.
    #[error("the key is for {0}")]
    AlgorithmMismatch(Algorithm),
    /// The key may not be used with this algorithm (not in the allow-list when loaded).
    #[error("the key was not loaded for this algorithm")]
    AlgorithmNotLoaded,
    /// The signature is wrong.
    #[error("the signature does not verify")]
    BadSignature,
}

impl VerifyingKey {
    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm the key declares, if it declares one.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.declared_alg
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Verifies `signature` over `message` with this key and `alg`: the one signature check
    /// every token goes through.
    pub fn verify(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyFailure> {
        if let Some(declared) = self.declared_alg
            && declared != alg
        {
            return Err(VerifyFailure::AlgorithmMismatch(declared));
        }
        let (_, key) = self
            .parsed
            .iter()
            .find(|(a, _)| *a == alg)
            .ok_or(VerifyFailure::AlgorithmNotLoaded)?;
        key.verify_sig(message, signature)
            .map_err(|_| VerifyFailure::BadSignature)
    }

    /// Same key material, id and algorithm: used to keep a key's identity across refreshes,
    /// so cached tokens signed by an unchanged key stay valid.
    fn same_key(&self, other: &VerifyingKey) -> bool {
        self.kid == other.kid
            && self.declared_alg == other.declared_alg
            && self.modulus == other.modulus
            && self.exponent == other.exponent
            && self
                .parsed
                .iter()
                .map(|(a, _)| *a)
                .eq(other.parsed.iter().map(|(a, _)| *a))
    }
}

/// A key the set skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyWarning {
    /// The key's `kid`, when it had one (escaped and truncated).
    pub kid: Option<String>,
    /// Why it was skipped.
    pub reason: String,
}

impl fmt::Display for KeyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kid {
            Some(kid) => write!(f, "key `{kid}` skipped: {}", self.reason),
            None => write!(f, "key without kid skipped: {}", self.reason),
        }
    }
}

/// A JWKS document that could not be used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// Not a JSON object.
    #[error("JWKS document {0}")]
    NotJson(String),
    /// No `keys` array.
    #[error("JWKS document has no `keys` array")]
    NoKeysArray,
    /// A `keys` array in which no key passed vetting.
    #[error("JWKS has no usable signing key ({})", summarize(.0))]
    NoUsableKeys(Vec<KeyWarning>),
}

fn summarize(warnings: &[KeyWarning]) -> String {
    if warnings.is_empty() {
        return "the `keys` array is empty".to_owned();
    }
    warnings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The issuer's signing keys, by `kid`.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: HashMap<Arc<str>, Arc<VerifyingKey>>,
}

impl KeySet {
    /// Parses and vets a JWKS document (`{"keys": [...]}`), keeping keys usable with one of
    /// `algorithms`. Fails only when the document is unusable as a whole or has no usable key.
    pub fn from_jwks(
        document: &[u8],
        algorithms: &[Algorithm],
    ) -> Result<(KeySet, Vec<KeyWarning>), JwksError> {
        let object = parse_json_object(document).map_err(|e| JwksError::NotJson(e.to_string()))?;
        let keys = match object.get("keys") {
            Some(Value::Array(keys)) => keys,
            _ => return Err(JwksError::NoKeysArray),
        };
        let (set, warnings) = KeySet::from_jwks_values(keys, algorithms);
        if set.is_empty() {
            return Err(JwksError::NoUsableKeys(warnings));
        }
        Ok((set, warnings))
    }

    /// Vets each JWK, keeping the usable ones. Keys whose `kid` appears more than once in the
    /// set are all dropped, also when only one of them would pass vetting: which one a token
    /// meant is ambiguous, and guessing is how key confusion starts (found by the `jwks` fuzz
    /// target: a broken key beside a good one of the same `kid` left the good one in use).
    pub fn from_jwks_values<'a, I>(jwks: I, algorithms: &[Algorithm]) -> (KeySet, Vec<KeyWarning>)
    where
        I: IntoIterator<Item = &'a Value>,
    {
        let jwks: Vec<&Value> = jwks.into_iter().collect();
        let mut listed: HashMap<&str, usize> = HashMap::new();
        for jwk in &jwks {
            if let Some(kid) = jwk.get("kid").and_then(Value::as_str) {
                *listed.entry(kid).or_default() += 1;
            }
        }
        let mut warnings = Vec::new();
        let mut keys: HashMap<Arc<str>, Arc<VerifyingKey>> = HashMap::new();
        let mut ambiguous: Vec<&str> = Vec::new();
        for jwk in jwks {
            if let Some(kid) = jwk.get("kid").and_then(Value::as_str)
                && listed.get(kid).is_some_and(|&n| n > 1)
            {
                if !ambiguous.contains(&kid) {
                    ambiguous.push(kid);
                    warnings.push(KeyWarning {
                        kid: Some(printable(kid)),
                        reason: "the kid appears more than once in the set; all keys with it are ignored as ambiguous".to_owned(),
                    });
                }
                continue;
            }
            match vet_jwk(jwk, algorithms) {
                Ok(key) => {
                    keys.insert(Arc::clone(&key.kid), Arc::new(key));
                }
                Err(warning) => warnings.push(warning),
            }
        }
        (KeySet { keys }, warnings)
    }

    /// The key with this id.
    pub fn get(&self, kid: &str) -> Option<&Arc<VerifyingKey>> {
        self.keys.get(kid)
    }

    /// How many usable keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids, sorted.
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(|k| &**k).collect();
        kids.sort_unstable();
        kids
    }

    /// Replaces keys identical to ones in `previous` by the previous instances, so tokens
    /// cached against an unchanged key stay valid across a refresh.
    pub(crate) fn keep_identity_from(mut self, previous: &KeySet) -> KeySet {
        for (kid, key) in self.keys.iter_mut() {
            if let Some(old) = previous.keys.get(kid)
                && old.same_key(key)
            {
                *key = Arc::clone(old);
            }
        }
        self
    }
}

fn vet_jwk(jwk: &Value, algorithms: &[Algorithm]) -> Result<VerifyingKey, KeyWarning> {
    let Some(object) = jwk.as_object() else {
        return Err(KeyWarning {
            kid: None,
            reason: "not a JSON object".to_owned(),
        });
    };
    let kid = match object.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => Some(kid.as_str()),
        _ => None,
    };
    let skip = |reason: String| KeyWarning {
        kid: kid.map(printable),
        reason,
    };
    let kty = object.get("kty").and_then(Value::as_str).unwrap_or("");
    if kty != "RSA" {
        return Err(skip(format!(
            "key type `{}` is not supported (Maskinporten signs with RSA)",
            printable(kty)
        )));
    }
    let Some(kid) = kid else {
        return Err(skip("it has no `kid`, so no token can name it".to_owned()));
    };
    check_usage(object).map_err(skip)?;
    let declared_alg = declared_algorithm(object, algorithms).map_err(skip)?;
    let modulus = big_unsigned(object, "n").map_err(skip)?;
    let exponent = big_unsigned(object, "e").map_err(skip)?;
    let bits = check_rsa_numbers(&modulus, &exponent).map_err(skip)?;
    let parsed =
        parse_for_algorithms(&modulus, &exponent, declared_alg, algorithms).map_err(skip)?;
    Ok(VerifyingKey {
        kid: Arc::from(kid),
        declared_alg,
        bits,
        modulus: modulus.into_boxed_slice(),
        exponent: exponent.into_boxed_slice(),
        parsed,
    })
}

/// `use` (absent or `sig`), `key_ops` (absent or with `verify`), and no private members.
fn check_usage(object: &Map<String, Value>) -> Result<(), String> {
    match object.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(other) => {
            return Err(format!(
                "its `use` is {}, not `sig`",
                printable(&other.to_string())
            ));
        }
    }
    if let Some(ops) = object.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op == "verify"));
        if !verifies {
            return Err("its `key_ops` do not include `verify`".to_owned());
        }
    }
    if ["d", "p", "q", "dp", "dq", "qi"]
        .iter()
        .any(|m| object.contains_key(*m))
    {
        return Err(
            "it contains private key material; a JWKS must publish public keys only".to_owned(),
        );
    }
    Ok(())
}

/// The key's own `alg`, if it declares one: it must be an allowed RSA signature algorithm.
fn declared_algorithm(
    object: &Map<String, Value>,
    algorithms: &[Algorithm],
) -> Result<Option<Algorithm>, String> {
    match object.get("alg") {
        None => Ok(None),
        Some(Value::String(name)) => match Algorithm::from_name(name) {
            Some(alg) if algorithms.contains(&alg) => Ok(Some(alg)),
            Some(alg) => Err(format!(
                "it is for {alg}, which is not in the allowed algorithms"
            )),
            None => Err(format!(
                "its `alg` `{}` is not an RSA signature algorithm portvakt verifies",
                printable(name)
            )),
        },
        Some(_) => Err("its `alg` is not a string".to_owned()),
    }
}

/// The RSA numbers themselves: modulus size and parity, exponent range and parity, and no
/// ROCA fingerprint. Returns the modulus size in bits.
fn check_rsa_numbers(modulus: &[u8], exponent: &[u8]) -> Result<usize, String> {
    let bits = bit_length(modulus);
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(format!(
            "its modulus is {bits} bits; portvakt accepts {MIN_RSA_BITS} to {MAX_RSA_BITS}"
        ));
    }
    if modulus.last().is_some_and(|b| b & 1 == 0) {
        return Err("its modulus is even, so it is not an RSA modulus".to_owned());
    }
    let exponent_bits = bit_length(exponent);
    if !(2..=33).contains(&exponent_bits) || exponent.last().is_some_and(|b| b & 1 == 0) {
        return Err("its public exponent must be odd, at least 3 and at most 33 bits".to_owned());
    }
    if super::roca::has_roca_fingerprint(modulus) {
        return Err(
            "it was generated by the flawed Infineon library (ROCA, CVE-2017-15361) and can be factored".to_owned(),
        );
    }
    Ok(bits)
}

/// The key parsed by aws-lc-rs once per algorithm it may verify: its declared `alg`, or
/// every allowed one.
fn parse_for_algorithms(
    modulus: &[u8],
    exponent: &[u8],
    declared_alg: Option<Algorithm>,
    algorithms: &[Algorithm],
) -> Result<Vec<(Algorithm, ParsedPublicKey)>, String> {
    let components = RsaPublicKeyComponents {
        n: modulus,
        e: exponent,
    };
    let usable: Vec<Algorithm> = match declared_alg {
        Some(alg) => vec![alg],
        None => algorithms.to_vec(),
    };
    let mut parsed = Vec::with_capacity(usable.len());
    for alg in usable {
        let key = components
            .to_parsed_public_key(alg.verification())
            .map_err(|e| format!("aws-lc-rs rejected it: {e}"))?;
        parsed.push((alg, key));
    }
    if parsed.is_empty() {
        return Err("no algorithm is allowed".to_owned());
    }
    Ok(parsed)
}

/// A JWK "Base64urlUInt": strict base64url, big-endian. Leading zero octets are tolerated
/// (some issuers emit them) and stripped, so equal numbers compare equal.
fn big_unsigned(object: &Map<String, Value>, member: &str) -> Result<Vec<u8>, String> {
    let text = object
        .get(member)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("it has no string `{member}`"))?;
    let mut bytes =
        decode_base64url(text).map_err(|_| format!("its `{member}` is not base64url"))?;
    let leading = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..leading);
    if bytes.is_empty() {
        return Err(format!("its `{member}` is zero"));
    }
    Ok(bytes)
}

fn bit_length(big_endian: &[u8]) -> usize {
    match big_endian.first() {
        None => 0,
        Some(first) => (big_endian.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[1]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(bit_length(&[1, 0, 1]), 17);
    }

    #[test]
    fn non_rsa_and_kidless_keys_are_skipped_with_reasons() {
        let (set, warnings) = KeySet::from_jwks_values(
            &[
                json!({"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"}),
                json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
                json!("not an object"),
                json!({"kty": "oct", "kid": "h", "k": "AAAA"}),
            ],
            &[Algorithm::RS256],
        );
        assert!(set.is_empty());
        assert_eq!(warnings.len(), 4);
        assert!(
            warnings[0].to_string().contains("key type `EC`"),
            "{}",
            warnings[0]
        );
        assert!(
            warnings[1].to_string().contains("no `kid`"),
            "{}",
            warnings[1]
        );
    }

    #[test]
    fn a_kid_listed_twice_is_dropped_even_when_one_entry_is_broken() {
        let good = crate::SigningKey::generate("twice").unwrap().public_jwk();
        let mut broken = good.clone();
        broken["n"] = json!("AQAB");
        let other = crate::SigningKey::generate("other").unwrap().public_jwk();
        for pair in [[&broken, &good], [&good, &broken], [&good, &good]] {
            let (set, warnings) =
                KeySet::from_jwks_values(pair.into_iter().chain([&other]), &[Algorithm::RS256]);
            assert_eq!(set.kids(), ["other"], "{warnings:?}");
            assert_eq!(warnings.len(), 1, "one warning for the kid: {warnings:?}");
            assert!(warnings[0].to_string().contains("more than once"));
        }
    }

    #[test]
    fn jwks_document_errors() {
        assert!(matches!(
            KeySet::from_jwks(b"[]", &[Algorithm::RS256]),
            Err(JwksError::NotJson(_))
        ));
        assert_eq!(
            KeySet::from_jwks(b"{}", &[Algorithm::RS256]).unwrap_err(),
            JwksError::NoKeysArray
        );
        let err = KeySet::from_jwks(br#"{"keys": []}"#, &[Algorithm::RS256]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "JWKS has no usable signing key (the `keys` array is empty)"
        );
    }
}
