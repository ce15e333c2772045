//! Compact JWS: shape, header, and signature, in that order.
//!
//! This is the signature layer every token goes through (and the one the Wycheproof vectors
//! exercise). It decides which key verifies a token from the `kid` alone, against keys we
//! fetched from the trusted issuer: `jku`, `x5u`, `jwk` and `x5c` are never used to find or
//! build a key (RFC 8725 section 3.10), and any `crit` extension is refused because we
//! understand none (RFC 7515 section 4.1.11). The payload is decoded only after the signature
//! verifies.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::algorithm::Algorithm;
use crate::encoding::{decode_base64url, for_each_member, parse_json_object};
use crate::error::{Segment, ValidationError, printable};
use crate::keys::{KeySet, VerifyFailure, VerifyingKey};

/// The three segments of a compact JWS, still encoded.
#[derive(Debug, Clone, Copy)]
pub struct CompactParts<'a> {
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`: what the signature covers.
    pub signing_input: &'a str,
    /// The encoded header.
    pub header: &'a str,
    /// The encoded payload.
    pub payload: &'a str,
    /// The encoded signature.
    pub signature: &'a str,
}

/// Splits a compact JWS into its three segments. Exactly two dots; anything else (a JWE has
/// four, JSON serialization has none) is refused.
pub fn split_compact(token: &str) -> Result<CompactParts<'_>, ValidationError> {
    let mut dots = token.match_indices('.').map(|(i, _)| i);
    let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(ValidationError::NotCompactJws {
            segments: token.split('.').count(),
        });
    };
    Ok(CompactParts {
        signing_input: &token[..second],
        header: &token[..first],
        payload: &token[first + 1..second],
        signature: &token[second + 1..],
    })
}

/// A protected header that passed our rules: an allowed `alg`, a `kid`, no extensions.
#[derive(Debug, Clone)]
pub struct Header {
    /// The algorithm.
    pub alg: Algorithm,
    /// The key id, an opaque lookup key.
    pub kid: String,
}

/// Decodes and checks the header segment.
///
/// Only `alg`, `kid`, `crit` and `b64` matter; every other member is parsed (so the header is
/// strict JSON with no duplicate names at any depth) and dropped. In particular `jku`, `x5u`,
/// `jwk` and `x5c` are never looked at.
pub fn decode_header(encoded: &str, algorithms: &[Algorithm]) -> Result<Header, ValidationError> {
    let segment = Segment::Header;
    let bytes = decode_base64url(encoded).map_err(|_| ValidationError::BadBase64 { segment })?;
    let (mut alg, mut kid, mut crit, mut b64) = (None, None, false, false);
    for_each_member(&bytes, |name, value| match name {
        "alg" => alg = Some(value),
        "kid" => kid = Some(value),
        "crit" => crit = true,
        "b64" => b64 = true,
        _ => {}
    })
    .map_err(|e| ValidationError::BadJson {
        segment,
        reason: e.to_string(),
    })?;
    let alg = match alg {
        Some(Value::String(name)) => Algorithm::from_name(&name)
            .filter(|alg| algorithms.contains(alg))
            .ok_or_else(|| ValidationError::AlgorithmNotAllowed {
                alg: Some(printable(&name)),
                allowed: algorithms.to_vec(),
            })?,
        Some(other) => {
            return Err(ValidationError::AlgorithmNotAllowed {
                alg: Some(printable(&other.to_string())),
                allowed: algorithms.to_vec(),
            });
        }
        None => {
            return Err(ValidationError::AlgorithmNotAllowed {
                alg: None,
                allowed: algorithms.to_vec(),
            });
        }
    };
    if crit {
        return Err(ValidationError::UnsupportedHeader { parameter: "crit" });
    }
    // RFC 7797 unencoded payloads; only meaningful with `crit`, refused on its own too so
    // no reader can take the payload as unencoded.
    if b64 {
        return Err(ValidationError::UnsupportedHeader { parameter: "b64" });
    }
    let kid = match kid {
        Some(Value::String(kid)) if !kid.is_empty() => kid,
        _ => return Err(ValidationError::MissingKid),
    };
    Ok(Header { alg, kid })
}

fn decode_json_segment(
    encoded: &str,
    segment: Segment,
) -> Result<Map<String, Value>, ValidationError> {
    let bytes = decode_base64url(encoded).map_err(|_| ValidationError::BadBase64 { segment })?;
    parse_json_object(&bytes).map_err(|e| ValidationError::BadJson {
        segment,
        reason: e.to_string(),
    })
}

/// A JWS whose signature verified.
#[derive(Debug, Clone)]
pub struct VerifiedJws {
    /// The checked header.
    pub header: Header,
    /// The key that verified it.
    pub key: Arc<VerifyingKey>,
    /// The decoded payload bytes.
    pub payload: Vec<u8>,
}

/// What [`verify_compact`] needs besides the token.
pub(crate) enum KeyLookup<'a> {
    /// A key set is held.
    Keys(&'a KeySet),
    /// No key set has been fetched yet.
    NoKeys,
}

/// Verifies a compact JWS against a key set: shape, header rules, key lookup by `kid`,
/// signature. Returns the decoded payload, unparsed.
pub fn verify_compact(
    token: &str,
    keys: &KeySet,
    algorithms: &[Algorithm],
) -> Result<VerifiedJws, ValidationError> {
    verify_parts(split_compact(token)?, KeyLookup::Keys(keys), algorithms)
}

pub(crate) fn verify_parts(
    parts: CompactParts<'_>,
    keys: KeyLookup<'_>,
    algorithms: &[Algorithm],
) -> Result<VerifiedJws, ValidationError> {
    let header = decode_header(parts.header, algorithms)?;
    // Both decodings are cheap next to the RSA operation, so a token that cannot be valid
    // whatever its signature is refused before it costs one (or a key refresh for its kid).
    let payload = decode_base64url(parts.payload).map_err(|_| ValidationError::BadBase64 {
        segment: Segment::Payload,
    })?;
    let signature = decode_base64url(parts.signature).map_err(|_| ValidationError::BadBase64 {
        segment: Segment::Signature,
    })?;
    let KeyLookup::Keys(keys) = keys else {
        return Err(ValidationError::KeysUnavailable);
    };
    let key = keys
        .get(&header.kid)
        .ok_or_else(|| ValidationError::UnknownKid {
            kid: printable(&header.kid),
        })?;
    key.verify(header.alg, parts.signing_input.as_bytes(), &signature)
        .map_err(|failure| match failure {
            VerifyFailure::AlgorithmMismatch(key_alg) => ValidationError::KeyAlgorithmMismatch {
                kid: printable(&header.kid),
                key_alg,
                token_alg: header.alg,
            },
            VerifyFailure::AlgorithmNotLoaded | VerifyFailure::BadSignature => {
                ValidationError::BadSignature {
                    kid: printable(&header.kid),
                }
            }
        })?;
    Ok(VerifiedJws {
        header,
        key: Arc::clone(key),
        payload,
    })
}

/// Decodes a token's payload as a JSON object WITHOUT verifying anything. Only for showing a
/// token to a person (`portvakt inspect`); never for a decision.
pub fn decode_unverified_payload(token: &str) -> Result<Map<String, Value>, ValidationError> {
    let parts = split_compact(token)?;
    decode_json_segment(parts.payload, Segment::Payload)
}

/// Decodes a token's header as a JSON object WITHOUT checking it. Only for display.
pub fn decode_unverified_header(token: &str) -> Result<Map<String, Value>, ValidationError> {
    let parts = split_compact(token)?;
    decode_json_segment(parts.header, Segment::Header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::encode_base64url;

    fn header(json: &str) -> String {
        encode_base64url(json)
    }

    #[test]
    fn split_requires_exactly_three_segments() {
        assert!(split_compact("a.b.c").is_ok());
        assert!(split_compact("a.b.").is_ok());
        for bad in ["", "a", "a.b", "a.b.c.d", "a.b.c.d.e"] {
            assert_eq!(
                split_compact(bad).unwrap_err().code(),
                "malformed_token",
                "{bad}"
            );
        }
        let parts = split_compact("h.p.s").unwrap();
        assert_eq!(parts.signing_input, "h.p");
        assert_eq!(parts.signature, "s");
    }

    #[test]
    fn header_rules() {
        let rs = [Algorithm::RS256];
        let ok = decode_header(&header(r#"{"alg":"RS256","kid":"k"}"#), &rs).unwrap();
        assert_eq!(ok.kid, "k");
        let code = |json: &str| decode_header(&header(json), &rs).unwrap_err().code();
        assert_eq!(code(r#"{"alg":"none","kid":"k"}"#), "alg_not_allowed");
        assert_eq!(code(r#"{"alg":"HS256","kid":"k"}"#), "alg_not_allowed");
        assert_eq!(code(r#"{"alg":"RS384","kid":"k"}"#), "alg_not_allowed");
        assert_eq!(code(r#"{"alg":"rs256","kid":"k"}"#), "alg_not_allowed");
        assert_eq!(code(r#"{"kid":"k"}"#), "alg_not_allowed");
        assert_eq!(code(r#"{"alg":["RS256"],"kid":"k"}"#), "alg_not_allowed");
        assert_eq!(code(r#"{"alg":"RS256"}"#), "missing_kid");
        assert_eq!(code(r#"{"alg":"RS256","kid":""}"#), "missing_kid");
        assert_eq!(code(r#"{"alg":"RS256","kid":7}"#), "missing_kid");
        assert_eq!(
            code(r#"{"alg":"RS256","kid":"k","crit":["exp"]}"#),
            "unsupported_header"
        );
        assert_eq!(
            code(r#"{"alg":"RS256","kid":"k","b64":false}"#),
            "unsupported_header"
        );
        assert_eq!(
            code(r#"{"alg":"RS256","alg":"RS256","kid":"k"}"#),
            "malformed_token"
        );
        assert_eq!(code(r#"["RS256"]"#), "malformed_token");
        assert_eq!(
            decode_header("eyJhbGciOiJSUzI1NiJ9=", &rs)
                .unwrap_err()
                .code(),
            "malformed_token"
        );
        // jku / x5u / jwk / x5c are ignored for key selection: the header still parses.
        let with_jku = decode_header(
            &header(r#"{"alg":"RS256","kid":"k","jku":"https://evil/","jwk":{"kty":"RSA"}}"#),
            &rs,
        )
        .unwrap();
        assert_eq!(with_jku.kid, "k");
    }

    #[test]
    fn no_keys_yet_is_reported_after_header_checks() {
        let token = format!("{}.e30.AA", header(r#"{"alg":"RS256","kid":"k"}"#));
        let err = verify_parts(
            split_compact(&token).unwrap(),
            KeyLookup::NoKeys,
            &[Algorithm::RS256],
        )
        .unwrap_err();
        assert_eq!(err, ValidationError::KeysUnavailable);
        let err = verify_compact(&token, &KeySet::default(), &[Algorithm::RS256]).unwrap_err();
        assert_eq!(err.code(), "unknown_kid");
    }
}
