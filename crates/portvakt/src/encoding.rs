//! Strict decoding of the two encodings a JWS is made of: base64url and JSON.
//!
//! Strictness here closes parser-differential holes: a token has exactly one accepted
//! encoding, so no two parties can read the same bytes differently.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Decodes base64url without padding (RFC 7515 section 2).
///
/// Padding, the standard alphabet (`+`, `/`), whitespace and non-canonical trailing bits are
/// all refused, so every accepted input has exactly one encoding.
pub(crate) fn decode_base64url(input: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(input)
}

/// Encodes bytes as base64url without padding.
pub(crate) fn encode_base64url(input: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(input)
}

/// Why a JSON object was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not valid JSON; the parser's message (positions only, never the input).
    Syntax(String),
    /// Valid JSON, but not an object.
    NotAnObject,
    /// The same member name twice, at any depth. RFC 7515/7519 allow a parser to take the
    /// last value; two parsers taking different ones is how claims get smuggled, so we refuse.
    DuplicateKey(String),
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::Syntax(msg) => write!(f, "is not valid JSON ({msg})"),
            JsonError::NotAnObject => f.write_str("is not a JSON object"),
            JsonError::DuplicateKey(key) => {
                write!(
                    f,
                    "has the member {:?} more than once",
                    crate::error::printable(key)
                )
            }
        }
    }
}

/// Parses a JSON object, refusing duplicate member names at every depth.
pub(crate) fn parse_json_object(bytes: &[u8]) -> Result<Map<String, Value>, JsonError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = match deserializer.deserialize_any(StrictValueVisitor) {
        Ok(value) => value,
        Err(err) => return Err(classify(err)),
    };
    deserializer.end().map_err(classify)?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(JsonError::NotAnObject),
    }
}

const DUPLICATE_MARKER: &str = "portvakt-duplicate-key:";

fn classify(err: serde_json::Error) -> JsonError {
    let text = err.to_string();
    match text.strip_prefix(DUPLICATE_MARKER) {
        Some(rest) => {
            // serde_json appends " at line L column C"; keep only the key.
            let key = rest.rsplit_once(" at line ").map_or(rest, |(key, _)| key);
            JsonError::DuplicateKey(key.to_owned())
        }
        None => JsonError::Syntax(format!(
            "line {} column {}: {:?}",
            err.line(),
            err.column(),
            err.classify()
        )),
    }
}

/// Builds a `serde_json::Value` like serde_json's own visitor, but errors on duplicate keys.
struct StrictValueVisitor;

struct StrictValue(Value);

impl<'de> de::Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(StrictValueVisitor)
            .map(StrictValue)
    }
}

impl<'de> Visitor<'de> for StrictValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
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

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!("{DUPLICATE_MARKER}{key}")));
            }
            let StrictValue(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_is_strict() {
        assert_eq!(decode_base64url("Zm9v").unwrap(), b"foo");
        assert_eq!(decode_base64url("").unwrap(), b"");
        assert!(decode_base64url("Zm9v=").is_err(), "padding");
        assert!(decode_base64url("Zm8=").is_err(), "padding");
        assert!(decode_base64url("Zm+v").is_err(), "standard alphabet");
        assert!(decode_base64url("Zm9 v").is_err(), "whitespace");
        assert!(decode_base64url("Zm9w").is_ok());
        // "Zm9" decodes to "fo"; "Zm9" with non-zero trailing bits ("Zm9-" style) is refused.
        assert!(
            decode_base64url("Zm-").is_err(),
            "non-canonical trailing bits"
        );
        assert!(decode_base64url("A").is_err(), "impossible length");
    }

    #[test]
    fn json_objects_refuse_duplicates_at_any_depth() {
        assert!(parse_json_object(br#"{"a":1,"b":{"c":2}}"#).is_ok());
        assert_eq!(
            parse_json_object(br#"{"a":1,"a":2}"#),
            Err(JsonError::DuplicateKey("a".into()))
        );
        assert_eq!(
            parse_json_object(br#"{"x":{"ID":"1","ID":"2"}}"#),
            Err(JsonError::DuplicateKey("ID".into()))
        );
        assert_eq!(
            parse_json_object(br#"[{"a":1}]"#),
            Err(JsonError::NotAnObject)
        );
        assert!(matches!(
            parse_json_object(b"{} x"),
            Err(JsonError::Syntax(_))
        ));
        assert!(matches!(
            parse_json_object(b"{\"a\":"),
            Err(JsonError::Syntax(_))
        ));
        assert!(matches!(parse_json_object(b""), Err(JsonError::Syntax(_))));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        let doc = format!("{{\"a\":{deep}");
        assert!(matches!(
            parse_json_object(doc.as_bytes()),
            Err(JsonError::Syntax(_))
        ));
    }
}
