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

/// Walks the members of a JSON object, refusing duplicate names at every depth like
/// [`parse_json_object`], and hands each member to `member` instead of building a map: the
/// JWS header is read this way on every validation, so it costs a few allocations, not a tree.
pub(crate) fn for_each_member(
    bytes: &[u8],
    mut member: impl FnMut(&str, Value),
) -> Result<(), JsonError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let walked = deserializer
        .deserialize_map(MemberVisitor(&mut member))
        .and_then(|()| deserializer.end());
    walked.map_err(|err| classify_error(err, bytes))
}

/// What went wrong reading `bytes` as an object with `deserialize_map`: serde_json reports a
/// document that is valid JSON but no object as a type error, which is [`JsonError::NotAnObject`].
pub(crate) fn classify_error(err: serde_json::Error, bytes: &[u8]) -> JsonError {
    let first = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    match classify(err) {
        JsonError::Syntax(_) if first.is_some_and(|b| *b != b'{') => JsonError::NotAnObject,
        other => other,
    }
}

struct MemberVisitor<'f, F>(&'f mut F);

impl<'de, F: FnMut(&str, Value)> Visitor<'de> for MemberVisitor<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
        let mut seen = SeenNames::default();
        while let Some(MemberName(name)) = access.next_key()? {
            let StrictValue(value) = access.next_value()?;
            (self.0)(&name, value);
            seen.insert(name)?;
        }
        Ok(())
    }
}

/// A member name, borrowed from the input unless it has escapes.
pub(crate) struct MemberName<'de>(pub(crate) std::borrow::Cow<'de, str>);

/// The member names seen in one object, to refuse a second one. Names are borrowed from the
/// input (unless escaped). The first [`INLINE_NAMES`] live on the stack, enough for every
/// object in a Maskinporten token, so the check allocates nothing; beyond that they go into a
/// tree, not a list: headers are read before the signature is checked, so a crafted one with
/// thousands of members must not cost quadratic time.
#[derive(Default)]
pub(crate) struct SeenNames<'de> {
    inline: [Option<std::borrow::Cow<'de, str>>; INLINE_NAMES],
    inline_len: usize,
    overflow: std::collections::BTreeSet<std::borrow::Cow<'de, str>>,
}

/// How many member names of one object [`SeenNames`] keeps without allocating.
const INLINE_NAMES: usize = 16;

impl<'de> SeenNames<'de> {
    /// Records `name`; an error naming it when it was seen before.
    pub(crate) fn insert<E: de::Error>(
        &mut self,
        name: std::borrow::Cow<'de, str>,
    ) -> Result<(), E> {
        let seen = self.inline[..self.inline_len]
            .iter()
            .any(|known| known.as_deref() == Some(&*name))
            || self.overflow.contains(&name);
        if seen {
            return Err(duplicate(&name));
        }
        match self.inline.get_mut(self.inline_len) {
            Some(slot) => {
                *slot = Some(name);
                self.inline_len += 1;
            }
            None => {
                self.overflow.insert(name);
            }
        }
        Ok(())
    }
}

impl<'de> de::Deserialize<'de> for MemberName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = MemberName<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(MemberName(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MemberName(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(MemberName(std::borrow::Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

thread_local! {
    /// The member name a visitor found twice, handed to [`classify`] beside the error rather
    /// than inside its text: serde_json's error text (and the position it appends) is no
    /// interface. Deserialization is synchronous, so the error reaches `classify` on the thread
    /// that set this, before any other parse can run there.
    static DUPLICATE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The error for a repeated member `name`: recorded for [`classify`], which turns it into
/// [`JsonError::DuplicateKey`].
fn duplicate<E: de::Error>(name: &str) -> E {
    DUPLICATE.with(|slot| *slot.borrow_mut() = Some(name.to_owned()));
    E::custom("duplicate member name")
}

fn classify(err: serde_json::Error) -> JsonError {
    // Taken on every error, so a stale name can never be attached to a later error; only a
    // data error (what `E::custom` makes) can be the duplicate.
    let duplicate = DUPLICATE.with(|slot| slot.borrow_mut().take());
    match duplicate {
        Some(key) if err.classify() == serde_json::error::Category::Data => {
            JsonError::DuplicateKey(key)
        }
        _ => JsonError::Syntax(format!(
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
            let StrictValue(value) = access.next_value()?;
            // One tree walk: insert, and refuse when the name was there already.
            match map.entry(key) {
                serde_json::map::Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                serde_json::map::Entry::Occupied(slot) => {
                    return Err(duplicate(slot.key()));
                }
            }
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
    fn members_are_walked_with_the_same_strictness() {
        let walk = |json: &[u8]| {
            let mut names = Vec::new();
            for_each_member(json, |name, value| names.push(format!("{name}={value}")))
                .map(|()| names)
        };
        assert_eq!(
            walk(br#"{"alg":"RS256","k\u0069d":"k","x":{"y":[1]}}"#),
            Ok(vec![
                "alg=\"RS256\"".to_owned(),
                "kid=\"k\"".to_owned(),
                "x={\"y\":[1]}".to_owned()
            ])
        );
        assert_eq!(
            walk(br#"{"a":1,"a":2}"#),
            Err(JsonError::DuplicateKey("a".into()))
        );
        // An escaped spelling of a name already seen is the same name.
        assert_eq!(
            walk(br#"{"kid":1,"k\u0069d":2}"#),
            Err(JsonError::DuplicateKey("kid".into()))
        );
        assert_eq!(
            walk(br#"{"x":{"ID":"1","ID":"2"}}"#),
            Err(JsonError::DuplicateKey("ID".into()))
        );
        assert_eq!(walk(br#" ["a"]"#), Err(JsonError::NotAnObject));
        assert_eq!(walk(b"7"), Err(JsonError::NotAnObject));
        assert!(matches!(walk(b"{} x"), Err(JsonError::Syntax(_))));
        assert!(matches!(walk(b"{\"a\":"), Err(JsonError::Syntax(_))));
        assert!(matches!(walk(b""), Err(JsonError::Syntax(_))));
    }

    #[test]
    fn duplicates_are_found_beyond_the_names_kept_inline() {
        let members: Vec<String> = (0..40).map(|i| format!("\"m{i}\":{i}")).collect();
        let object = format!("{{{}}}", members.join(","));
        assert!(for_each_member(object.as_bytes(), |_, _| {}).is_ok());
        for duplicate in ["m3", "m20", "m39"] {
            let object = format!("{{{},\"{duplicate}\":0}}", members.join(","));
            assert_eq!(
                for_each_member(object.as_bytes(), |_, _| {}),
                Err(JsonError::DuplicateKey(duplicate.into()))
            );
        }
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
