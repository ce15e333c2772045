//! The verified payload, read in one pass into the typed claims.
//!
//! Building a `serde_json::Map` of every claim costs more than all other non-RSA work of a
//! validation together (a tree node and an allocation per name and per value, and as many
//! frees). Most callers need only the typed claims, so this pass reads those straight from the
//! bytes, borrowing string claims as byte ranges of the payload, and the map is built later,
//! once, when someone asks for the claims verbatim ([`Claims::raw`]).
//!
//! The strictness is that of [`parse_json_object`]: one JSON object, no duplicate member names
//! at any depth (also inside claims that are skipped), and the same typed-claim rules and
//! messages as [`Claims::from_map`]. When several claims are malformed, the error is the one
//! `from_map` would report first, so the two constructors agree.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::claims::{ClaimRank, Claims, Organization, StringClaim, Text, TypedClaims, float_date};
use crate::encoding::{JsonError, MemberName, SeenNames};
use crate::error::{Segment, ValidationError};
use crate::scope::ScopeSet;

// The public constructors: both read through `parse_claims`, one implementation of the rules.
impl Claims {
    /// Types the claims of a JSON object. Fails when a claim Maskinporten defines has a type
    /// that could make a decision ambiguous: the same rules, and the same errors, as for a
    /// token's payload.
    pub fn from_map(raw: Map<String, Value>) -> Result<Claims, ValidationError> {
        // One implementation of the rules: the map is read the way a payload is.
        let payload = serde_json::to_vec(&raw).map_err(|e| ValidationError::BadJson {
            segment: Segment::Payload,
            reason: e.to_string(),
        })?;
        let claims = parse_claims(payload)?;
        let _ = claims.raw.set(raw);
        Ok(claims)
    }

    /// Types the claims of a payload (the JSON text of a token's middle segment, decoded),
    /// keeping the text as it is ([`payload`](Self::payload)). Only for payloads whose
    /// signature was verified, or for display: this checks no signature.
    pub fn from_payload(payload: impl Into<Vec<u8>>) -> Result<Claims, ValidationError> {
        parse_claims(payload.into())
    }
}

/// Reads a verified payload into [`Claims`]. Syntax errors and duplicate names are
/// [`ValidationError::BadJson`]; wrongly typed claims are [`ValidationError::InvalidClaim`].
pub(crate) fn parse_claims(payload: Vec<u8>) -> Result<Claims, ValidationError> {
    let bad_json = |e: JsonError| ValidationError::BadJson {
        segment: Segment::Payload,
        reason: e.to_string(),
    };
    // serde_json checks UTF-8 inside strings only; everything outside them is ASCII syntax,
    // so a document it accepts is UTF-8 throughout. Checking first lets the claims borrow.
    let payload = String::from_utf8(payload)
        .map_err(|_| bad_json(JsonError::Syntax("the payload is not UTF-8".to_owned())))?;
    let mut typed = TypedClaims::default();
    let mut errors = FirstError::default();
    let mut deserializer = serde_json::Deserializer::from_str(&payload);
    let seed = TopLevel {
        payload: &payload,
        typed: &mut typed,
        errors: &mut errors,
    };
    seed.deserialize(&mut deserializer)
        .and_then(|()| deserializer.end())
        .map_err(|e| bad_json(crate::encoding::classify_error(e, payload.as_bytes())))?;
    if let Some((_, error)) = errors.0 {
        return Err(error);
    }
    Ok(Claims::from_parts(payload.into_boxed_str(), typed))
}

/// The malformed claim `from_map` would report first.
#[derive(Default)]
struct FirstError(Option<(ClaimRank, ValidationError)>);

impl FirstError {
    fn record(&mut self, rank: ClaimRank, claim: &'static str, reason: &str) {
        if self.0.as_ref().is_none_or(|(first, _)| rank < *first) {
            let error = ValidationError::InvalidClaim {
                claim,
                reason: reason.to_owned(),
            };
            self.0 = Some((rank, error));
        }
    }
}

const NOT_A_STRING: &str = "must be a string";
const NOT_A_DATE: &str = "must be a number of seconds since 1970, not a string or other type";
const NOT_A_SCOPE: &str = "must be a space-separated string";
const NOT_AN_AUDIENCE: &str = "must be a string or an array of strings";
const NOT_AN_ARRAY: &str = "must be an array";
const NOT_AN_ORGANIZATION: &str = "must be an object with `authority` and `ID`";
const NO_AUTHORITY: &str = "must have a string `authority`";
const NO_ID: &str = "must have a string `ID`";

/// Any value, checked for duplicate names at every depth and dropped.
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
        let mut seen = SeenNames::default();
        while let Some(MemberName(name)) = access.next_key()? {
            seen.insert(name)?;
            access.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

/// What a scalar claim held: a string (as a [`Text`]), a number, or something else (skipped).
enum Scalar {
    Text(Text),
    Int(i64),
    Float(f64),
    Other,
}

/// Reads one value as a [`Scalar`]; objects and arrays are skipped strictly.
#[derive(Clone, Copy)]
struct ScalarSeed {
    base: usize,
}

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scalar, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar, E> {
        let start = v.as_ptr() as usize - self.base;
        Ok(Scalar::Text(Text::span(start, v.len())))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(Text::owned(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
        // Above i64::MAX a time is out of range; the float path says so.
        Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_unit<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
        SkipVisitor.visit_seq(seq).map(|()| Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Scalar, A::Error> {
        SkipVisitor.visit_map(access).map(|()| Scalar::Other)
    }
}

/// `aud`: a string or an array of strings; `None` for anything else.
struct AudienceSeed<'p> {
    scalar: ScalarSeed,
    payload: &'p str,
}

impl<'de> DeserializeSeed<'de> for AudienceSeed<'_> {
    type Value = Option<Vec<String>>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AudienceSeed<'_> {
    type Value = Option<Vec<String>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(vec![v.to_owned()]))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut audience = Some(Vec::new());
        while let Some(item) = seq.next_element_seed(self.scalar)? {
            match (item, &mut audience) {
                (Scalar::Text(text), Some(list)) => list.push(text.get(self.payload).to_owned()),
                _ => audience = None,
            }
        }
        Ok(audience)
    }
    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Self::Value, A::Error> {
        SkipVisitor.visit_map(access).map(|()| None)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// `consumer` / `supplier`: an object with string `authority` and `ID`.
struct OrganizationSeed<'p> {
    scalar: ScalarSeed,
    payload: &'p str,
}

impl<'de> DeserializeSeed<'de> for OrganizationSeed<'_> {
    type Value = Result<Organization, &'static str>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for OrganizationSeed<'_> {
    type Value = Result<Organization, &'static str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut seen = SeenNames::default();
        let (mut authority, mut id) = (None, None);
        while let Some(MemberName(name)) = access.next_key()? {
            let slot = match &*name {
                "authority" => Some(&mut authority),
                "ID" => Some(&mut id),
                _ => None,
            };
            seen.insert(name)?;
            match slot {
                Some(slot) => *slot = Some(access.next_value_seed(self.scalar)?),
                None => access.next_value_seed(Skip)?,
            }
        }
        let text = |value: &Option<Scalar>| match value {
            Some(Scalar::Text(text)) => Some(text.get(self.payload).to_owned()),
            _ => None,
        };
        let authority = text(&authority).ok_or(NO_AUTHORITY);
        let id = text(&id).ok_or(NO_ID);
        Ok(authority.and_then(|authority| Ok(Organization::new(authority, id?))))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        SkipVisitor
            .visit_seq(seq)
            .map(|()| Err(NOT_AN_ORGANIZATION))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(NOT_AN_ORGANIZATION))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(NOT_AN_ORGANIZATION))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(NOT_AN_ORGANIZATION))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(NOT_AN_ORGANIZATION))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(NOT_AN_ORGANIZATION))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err(NOT_AN_ORGANIZATION))
    }
}

/// Whether a value is an array (checked strictly either way).
struct IsArray;

impl<'de> DeserializeSeed<'de> for IsArray {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IsArray {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        SkipVisitor.visit_seq(seq).map(|()| true)
    }
    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<bool, A::Error> {
        SkipVisitor.visit_map(access).map(|()| false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// The payload object itself.
struct TopLevel<'a> {
    payload: &'a str,
    typed: &'a mut TypedClaims,
    errors: &'a mut FirstError,
}

impl<'de> DeserializeSeed<'de> for TopLevel<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
        let TopLevel {
            payload,
            typed,
            errors,
        } = self;
        // Strings without escapes come as slices of `payload`; their offset is kept.
        let scalar = ScalarSeed {
            base: payload.as_ptr() as usize,
        };
        let mut seen = SeenNames::default();
        while let Some(MemberName(name)) = access.next_key()? {
            match &*name {
                "scope" => match access.next_value_seed(scalar)? {
                    Scalar::Text(text) => typed.scopes = ScopeSet::parse(text.get(payload)),
                    _ => errors.record(ClaimRank::Scope, "scope", NOT_A_SCOPE),
                },
                "aud" => match access.next_value_seed(AudienceSeed { scalar, payload })? {
                    Some(audience) => typed.audience = audience,
                    None => errors.record(ClaimRank::Audience, "aud", NOT_AN_AUDIENCE),
                },
                "consumer" | "supplier" => {
                    let (claim, rank) = if name == "consumer" {
                        ("consumer", ClaimRank::Consumer)
                    } else {
                        ("supplier", ClaimRank::Supplier)
                    };
                    match access.next_value_seed(OrganizationSeed { scalar, payload })? {
                        Ok(organization) if claim == "consumer" => {
                            typed.consumer = Some(organization)
                        }
                        Ok(organization) => typed.supplier = Some(organization),
                        Err(reason) => errors.record(rank, claim, reason),
                    }
                }
                "authorization_details" => {
                    if !access.next_value_seed(IsArray)? {
                        errors.record(
                            ClaimRank::AuthorizationDetails,
                            "authorization_details",
                            NOT_AN_ARRAY,
                        );
                    }
                }
                "exp" | "nbf" | "iat" => {
                    let (claim, rank, round_up) = match &*name {
                        "exp" => ("exp", ClaimRank::Exp, false),
                        "nbf" => ("nbf", ClaimRank::Nbf, true),
                        _ => ("iat", ClaimRank::Iat, true),
                    };
                    let date = match access.next_value_seed(scalar)? {
                        Scalar::Int(seconds) => Ok(seconds),
                        Scalar::Float(seconds) => float_date(seconds, round_up),
                        _ => Err(NOT_A_DATE),
                    };
                    match date {
                        Ok(seconds) => *typed.date_mut(claim) = Some(seconds),
                        Err(reason) => errors.record(rank, claim, reason),
                    }
                }
                other => match StringClaim::from_name(other) {
                    Some(claim) => match access.next_value_seed(scalar)? {
                        Scalar::Text(text) => typed.strings[claim as usize] = Some(text),
                        _ => errors.record(claim.rank(), claim.name(), NOT_A_STRING),
                    },
                    None => access.next_value_seed(Skip)?,
                },
            }
            seen.insert(name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value, json};

    fn parse(text: &str) -> Result<Claims, ValidationError> {
        parse_claims(text.as_bytes().to_vec())
    }

    fn code(text: &str) -> String {
        match parse(text) {
            Ok(_) => "ok".to_owned(),
            Err(ValidationError::InvalidClaim { claim, .. }) => format!("invalid {claim}"),
            Err(e) => e.code().to_owned(),
        }
    }

    #[test]
    fn typed_claims_borrow_or_unescape_and_raw_is_verbatim() {
        let text = r#"{"iss":"https:\/\/test.maskinporten.no\/","client_id":"c1","scope":"a  b","aud":["x","y"],
            "consumer":{"ID":"0192:889640782","authority":"iso6523-actorid-upis","extra":[{}]},
            "exp":100.9,"nbf":10.1,"iat":7,"jti":"j\u00e6","unknown":{"deep":[1,{"k":null}]}}"#;
        let claims = parse(text).unwrap();
        assert_eq!(claims.issuer(), Some("https://test.maskinporten.no/"));
        assert_eq!(claims.client_id(), Some("c1"));
        assert_eq!(claims.jti(), Some("jæ"));
        assert_eq!(claims.scopes().iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(claims.audience(), ["x", "y"]);
        assert_eq!(claims.consumer().unwrap().orgno(), Some("889640782"));
        assert_eq!(claims.expires_at(), Some(100));
        assert_eq!(claims.not_before(), Some(11));
        assert_eq!(claims.issued_at(), Some(7));
        assert_eq!(claims.pid(), None);
        let expected: Value = serde_json::from_str(text).unwrap();
        assert_eq!(&Value::Object(claims.raw().clone()), &expected);
        assert_eq!(claims.payload(), text);
    }

    #[test]
    fn duplicates_are_refused_at_every_depth_even_in_skipped_claims() {
        for text in [
            r#"{"iss":"a","iss":"a"}"#,
            r#"{"exp":1,"\u0065xp":1}"#,
            r#"{"consumer":{"ID":"0192:889640782","ID":"0192:974761076","authority":"iso6523-actorid-upis"}}"#,
            r#"{"consumer":{"authority":"iso6523-actorid-upis","ID":"0192:889640782","x":{"a":1,"a":2}}}"#,
            r#"{"authorization_details":[{"type":"a","type":"b"}]}"#,
            r#"{"aud":[{"a":1,"a":1}]}"#,
            r#"{"other":{"a":{"b":1,"b":1}}}"#,
            r#"{"scope":{"a":1,"a":1}}"#,
        ] {
            assert_eq!(code(text), "malformed_token", "{text}");
        }
    }

    #[test]
    fn malformed_documents_are_bad_json() {
        for text in ["", "[1]", "7", "{", r#"{"a":1} x"#, r#"{"a":}"#] {
            assert_eq!(code(text), "malformed_token", "{text:?}");
        }
        assert_eq!(
            parse_claims(vec![b'{', b'"', 0xff, b'"', b':', b'1', b'}'])
                .unwrap_err()
                .code(),
            "malformed_token"
        );
        assert!(matches!(
            parse("[1]"),
            Err(ValidationError::BadJson { reason, .. }) if reason.contains("not a JSON object")
        ));
    }

    #[test]
    fn wrong_types_are_refused_with_the_first_claim_in_a_fixed_order() {
        assert_eq!(code(r#"{"iat":"1","scope":1}"#), "invalid scope");
        assert_eq!(code(r#"{"jti":1,"aud":1}"#), "invalid aud");
        assert_eq!(code(r#"{"exp":"1","iss":1}"#), "invalid iss");
        assert_eq!(code(r#"{"nbf":true,"exp":null}"#), "invalid exp");
        assert_eq!(
            code(r#"{"supplier":"x","consumer":[]}"#),
            "invalid consumer"
        );
        assert_eq!(
            code(r#"{"authorization_details":{}}"#),
            "invalid authorization_details"
        );
        assert_eq!(
            code(r#"{"consumer":{"ID":"0192:889640782"}}"#),
            "invalid consumer"
        );
        assert_eq!(
            code(r#"{"consumer":{"authority":"a","ID":1}}"#),
            "invalid consumer"
        );
        assert_eq!(code(r#"{"aud":["a",1]}"#), "invalid aud");
        assert_eq!(code(r#"{"exp":18446744073709551615}"#), "invalid exp");
        assert_eq!(code(r#"{"exp":-9223372036854775808}"#), "ok");
        assert_eq!(code(r#"{"exp":1e300}"#), "invalid exp");
        let reason = |text: &str| parse(text).unwrap_err().to_string();
        assert!(reason(r#"{"consumer":{"ID":"x"}}"#).contains("must have a string `authority`"));
        assert!(reason(r#"{"consumer":{"authority":"a"}}"#).contains("must have a string `ID`"));
        assert!(reason(r#"{"exp":18446744073709551615}"#).contains("is out of range"));
    }

    #[test]
    fn from_map_reads_a_map_the_way_a_payload_is_read() {
        let map = json!({"iss": "i", "exp": 5, "scope": "s", "x": [1, 2]});
        let Value::Object(map) = map else {
            unreachable!()
        };
        let claims = Claims::from_map(map.clone()).unwrap();
        assert_eq!(claims.raw(), &map);
        assert_eq!(claims.issuer(), Some("i"));
        assert_eq!(claims.expires_at(), Some(5));
        let Value::Object(bad) = json!({"exp": "5"}) else {
            unreachable!()
        };
        assert_eq!(
            Claims::from_map(bad).unwrap_err(),
            parse(r#"{"exp":"5"}"#).unwrap_err()
        );
    }

    /// Arbitrary JSON, with the claim names that get typed among the member names.
    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e18f64..1e18).prop_map(Value::from),
            "[a-z0-9 :/\\\\\"\u{e6}]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(member_name(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn member_name() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            proptest::sample::select(vec![
                "iss",
                "scope",
                "aud",
                "consumer",
                "supplier",
                "authority",
                "ID",
                "exp",
                "nbf",
                "iat",
                "jti",
                "pid",
                "client_id",
                "authorization_details",
            ])
            .prop_map(str::to_owned),
            "[a-z]{1,4}",
        ]
    }

    proptest::proptest! {
        /// The one-pass reader agrees with a plain parse: whatever it accepts, `raw()` is
        /// exactly the document, and the typed claims are the map's members of the right type.
        #[test]
        fn one_pass_reading_agrees_with_the_document(
            members in proptest::collection::btree_map(member_name(), json_value(), 0..8)
        ) {
            let text = serde_json::to_string(&members).unwrap();
            // What a plain parse reads (serde_json's float parsing need not round-trip).
            let map: Map<String, Value> = serde_json::from_str(&text).unwrap();
            match parse(&text) {
                Ok(claims) => {
                    proptest::prop_assert_eq!(claims.raw(), &map);
                    proptest::prop_assert_eq!(claims.issuer(), map.get("iss").and_then(Value::as_str));
                    proptest::prop_assert_eq!(claims.jti(), map.get("jti").and_then(Value::as_str));
                    if let Some(Value::String(scope)) = map.get("scope") {
                        proptest::prop_assert_eq!(claims.scopes(), &ScopeSet::parse(scope));
                    }
                    if let Some(exp) = map.get("exp").and_then(Value::as_i64) {
                        proptest::prop_assert_eq!(claims.expires_at(), Some(exp));
                    }
                }
                Err(ValidationError::InvalidClaim { claim, .. }) => {
                    // Refused only for a typed claim present with a wrong type.
                    let value = map.get(claim);
                    proptest::prop_assert!(value.is_some(), "{claim} absent");
                    let value = value.unwrap();
                    let plausible = match claim {
                        "iss" | "client_id" | "client_amr" | "delegation_source" | "pid" | "jti" | "scope" => !value.is_string(),
                        "aud" => !(value.is_string() || value.as_array().is_some_and(|a| a.iter().all(Value::is_string))),
                        "authorization_details" => !value.is_array(),
                        "exp" | "nbf" | "iat" => !value.is_number() || value.as_i64().is_none(),
                        "consumer" | "supplier" => true,
                        _ => false,
                    };
                    proptest::prop_assert!(plausible, "{claim} = {value} refused");
                }
                Err(other) => proptest::prop_assert!(false, "{text}: {other}"),
            }
        }
    }
}
