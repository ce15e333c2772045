//! Second implementations the targets compare portvakt against. Deliberately plain: each is
//! the obvious reading of the specification, written without looking at portvakt's code.

use aws_lc_rs::signature::{self, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// Strict base64url without padding, canonical (the `base64` crate refuses non-zero trailing
/// bits by default), so that one byte string has exactly one encoding.
pub fn base64url(segment: &str) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    (URL_SAFE_NO_PAD.encode(&bytes) == segment).then_some(bytes)
}

/// The RSA public key of a JWK (`n`, `e`).
pub fn rsa_public(jwk: &Value) -> (Vec<u8>, Vec<u8>) {
    let member = |name: &str| {
        base64url(jwk[name].as_str().expect("the fuzzing JWK has n and e")).expect("base64url")
    };
    (member("n"), member("e"))
}

/// Whether `token` is a compact JWS whose RS256 signature `n`/`e` verify, read independently.
pub fn rs256_verifies(token: &str, n: &[u8], e: &[u8]) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if base64url(header).is_none() || base64url(payload).is_none() {
        return false;
    }
    let Some(sig) = base64url(sig) else {
        return false;
    };
    let message = &token[..header.len() + 1 + payload.len()];
    RsaPublicKeyComponents { n, e }
        .verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            message.as_bytes(),
            &sig,
        )
        .is_ok()
}

/// A JSON object read with serde_json, refusing duplicate member names at any depth (serde_json
/// keeps the last one silently), written as its own small visitor.
pub fn json_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde::Deserializer::deserialize_any(&mut deserializer, NoDuplicates).ok()?;
    deserializer.end().ok()?;
    match value {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

struct NoDuplicates;

impl<'de> serde::de::DeserializeSeed<'de> for NoDuplicates {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicates {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(NoDuplicates)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(NoDuplicates)?;
            if object.insert(key, value).is_some() {
                return Err(serde::de::Error::custom("duplicate member name"));
            }
        }
        Ok(Value::Object(object))
    }
}
