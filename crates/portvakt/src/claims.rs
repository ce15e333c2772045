//! Typed Maskinporten claims, with every claim also kept verbatim.
//!
//! Typing is strict where a wrong type could change a decision (`exp` as a string is refused,
//! not coerced: the class of bug behind jsonwebtoken's `nbf`/`exp` bypass) and tolerant where
//! Maskinporten may grow (`consumer.ID` may gain more `:`-separated parts).

use serde_json::{Map, Value};

use crate::error::{ValidationError, printable};
use crate::scope::ScopeSet;

/// The ISO 6523 authority Maskinporten uses for Norwegian organizations.
pub const ISO6523_AUTHORITY: &str = "iso6523-actorid-upis";
/// The ISO 6523 ICD for Norwegian organization numbers (Enhetsregisteret).
pub const NORWEGIAN_ORGNO_ICD: &str = "0192";

/// A legal party from the `consumer` or `supplier` claim, e.g.
/// `{"authority": "iso6523-actorid-upis", "ID": "0192:889640782"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    authority: String,
    id: String,
    orgno: Option<String>,
}

impl Organization {
    fn from_claim(claim: &'static str, value: &Value) -> Result<Self, ValidationError> {
        let invalid = |reason: &str| ValidationError::InvalidClaim {
            claim,
            reason: reason.to_owned(),
        };
        let object = value
            .as_object()
            .ok_or_else(|| invalid("must be an object with `authority` and `ID`"))?;
        let authority = object
            .get("authority")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("must have a string `authority`"))?;
        let id = object
            .get("ID")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("must have a string `ID`"))?;
        Ok(Organization {
            authority: authority.to_owned(),
            id: id.to_owned(),
            orgno: norwegian_orgno(authority, id).map(str::to_owned),
        })
    }

    /// The identifier scheme, normally `iso6523-actorid-upis`.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The full identifier, e.g. `0192:889640782`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The 9-digit Norwegian organization number, when the identifier is one
    /// (`0192:<orgno>`, possibly followed by more `:`-separated parts).
    pub fn orgno(&self) -> Option<&str> {
        self.orgno.as_deref()
    }
}

fn norwegian_orgno<'a>(authority: &str, id: &'a str) -> Option<&'a str> {
    if authority != ISO6523_AUTHORITY {
        return None;
    }
    let mut parts = id.split(':');
    if parts.next() != Some(NORWEGIAN_ORGNO_ICD) {
        return None;
    }
    parts
        .next()
        .filter(|orgno| orgno.len() == 9 && orgno.bytes().all(|b| b.is_ascii_digit()))
}

/// Verified claims of a Maskinporten access token.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    raw: Map<String, Value>,
    issuer: Option<String>,
    scopes: ScopeSet,
    client_id: Option<String>,
    client_amr: Option<String>,
    consumer: Option<Organization>,
    supplier: Option<Organization>,
    delegation_source: Option<String>,
    pid: Option<String>,
    audience: Vec<String>,
    jti: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
    nbf: Option<i64>,
}

fn optional_string(
    raw: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<String>, ValidationError> {
    match raw.get(claim) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ValidationError::InvalidClaim {
            claim,
            reason: "must be a string".to_owned(),
        }),
    }
}

/// A NumericDate (RFC 7519 section 2): a JSON number of seconds. Strings are refused.
/// Fractions are rounded toward the safe side: `exp` down, `nbf` and `iat` up.
fn numeric_date(
    raw: &Map<String, Value>,
    claim: &'static str,
    round_up: bool,
) -> Result<Option<i64>, ValidationError> {
    let invalid = |reason: &str| ValidationError::InvalidClaim {
        claim,
        reason: reason.to_owned(),
    };
    match raw.get(claim) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                return Ok(Some(i));
            }
            let f = n
                .as_f64()
                .filter(|f| f.is_finite())
                .ok_or_else(|| invalid("must be a number of seconds since 1970"))?;
            let rounded = if round_up { f.ceil() } else { f.floor() };
            // Beyond ±2^53 a float is not a meaningful time; refuse rather than saturate.
            if rounded.abs() > 9_007_199_254_740_992.0 {
                return Err(invalid("is out of range"));
            }
            Ok(Some(rounded as i64))
        }
        Some(_) => Err(invalid(
            "must be a number of seconds since 1970, not a string or other type",
        )),
    }
}

impl Claims {
    /// Types the claims of a verified payload. Fails when a claim Maskinporten defines has a
    /// type that could make a decision ambiguous.
    pub fn from_map(raw: Map<String, Value>) -> Result<Claims, ValidationError> {
        let scopes = match raw.get("scope") {
            None => ScopeSet::default(),
            Some(Value::String(s)) => ScopeSet::parse(s),
            Some(_) => {
                return Err(ValidationError::InvalidClaim {
                    claim: "scope",
                    reason: "must be a space-separated string".to_owned(),
                });
            }
        };
        let audience = match raw.get("aud") {
            None => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ValidationError::InvalidClaim {
                    claim: "aud",
                    reason: "must be a string or an array of strings".to_owned(),
                })?,
            Some(_) => {
                return Err(ValidationError::InvalidClaim {
                    claim: "aud",
                    reason: "must be a string or an array of strings".to_owned(),
                });
            }
        };
        let consumer = raw
            .get("consumer")
            .map(|v| Organization::from_claim("consumer", v))
            .transpose()?;
        let supplier = raw
            .get("supplier")
            .map(|v| Organization::from_claim("supplier", v))
            .transpose()?;
        if let Some(details) = raw.get("authorization_details")
            && !details.is_array()
        {
            return Err(ValidationError::InvalidClaim {
                claim: "authorization_details",
                reason: "must be an array".to_owned(),
            });
        }
        Ok(Claims {
            issuer: optional_string(&raw, "iss")?,
            client_id: optional_string(&raw, "client_id")?,
            client_amr: optional_string(&raw, "client_amr")?,
            delegation_source: optional_string(&raw, "delegation_source")?,
            pid: optional_string(&raw, "pid")?,
            jti: optional_string(&raw, "jti")?,
            exp: numeric_date(&raw, "exp", false)?,
            nbf: numeric_date(&raw, "nbf", true)?,
            iat: numeric_date(&raw, "iat", true)?,
            scopes,
            consumer,
            supplier,
            audience,
            raw,
        })
    }

    /// Every claim exactly as the token carried it (what the introspection API returns).
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }

    /// One claim as the token carried it.
    pub fn get(&self, claim: &str) -> Option<&Value> {
        self.raw.get(claim)
    }

    /// `iss`: the issuer.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// `scope`, parsed.
    pub fn scopes(&self) -> &ScopeSet {
        &self.scopes
    }

    /// `client_id`: the consumer's client registration. Not for access control: a consumer
    /// can have many clients; use [`consumer`](Self::consumer).
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// `client_amr`: how the client authenticated (`private_key_jwt`, `virksomhetssertifikat`).
    pub fn client_amr(&self) -> Option<&str> {
        self.client_amr.as_deref()
    }

    /// `consumer`: the legal party the token was issued to. Authorize on this.
    pub fn consumer(&self) -> Option<&Organization> {
        self.consumer.as_ref()
    }

    /// `supplier`: in delegated access, the party acting for the consumer. Never authorize on
    /// this; it is for audit.
    pub fn supplier(&self) -> Option<&Organization> {
        self.supplier.as_ref()
    }

    /// `delegation_source`: where the delegation was registered (e.g. Altinn).
    pub fn delegation_source(&self) -> Option<&str> {
        self.delegation_source.as_deref()
    }

    /// `pid`: the person the token is restricted to, when it is.
    pub fn pid(&self) -> Option<&str> {
        self.pid.as_deref()
    }

    /// `authorization_details` (system users, consent), verbatim; empty when absent.
    pub fn authorization_details(&self) -> &[Value] {
        match self.raw.get("authorization_details") {
            Some(Value::Array(items)) => items,
            _ => &[],
        }
    }

    /// `aud`, as a list (empty when absent).
    pub fn audience(&self) -> &[String] {
        &self.audience
    }

    /// `jti`: the token's unique id.
    pub fn jti(&self) -> Option<&str> {
        self.jti.as_deref()
    }

    /// `iat`: when the token was issued (seconds since 1970).
    pub fn issued_at(&self) -> Option<i64> {
        self.iat
    }

    /// `exp`: when the token expires (seconds since 1970).
    pub fn expires_at(&self) -> Option<i64> {
        self.exp
    }

    /// `nbf`: not valid before (seconds since 1970). Maskinporten does not set it.
    pub fn not_before(&self) -> Option<i64> {
        self.nbf
    }
}

/// The value older Maskinporten tokens carry in `aud` when they are not audience-restricted.
pub const UNSPECIFIED_AUDIENCE: &str = "unspecified";

/// Checks that the token is audience-restricted to `required`. A missing `aud`, and the
/// legacy `"unspecified"`, mean "not restricted" and fail.
pub(crate) fn check_audience(claims: &Claims, required: &str) -> Result<(), ValidationError> {
    let audience = claims.audience();
    if audience.iter().any(|a| a == required) {
        return Ok(());
    }
    Err(ValidationError::WrongAudience {
        required: required.to_owned(),
        found: audience
            .iter()
            .filter(|a| *a != UNSPECIFIED_AUDIENCE)
            .map(|a| printable(a))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Result<Claims, ValidationError> {
        match value {
            Value::Object(map) => Claims::from_map(map),
            _ => unreachable!("tests pass objects"),
        }
    }

    #[test]
    fn maskinporten_example_payload() {
        let c = claims(json!({
            "authorization_details": [{"type": "urn:altinn:consent"}],
            "scope": "altinn:consentrequests.read",
            "iss": "https://test.maskinporten.no/",
            "client_amr": "private_key_jwt",
            "token_type": "Bearer",
            "exp": 1770113767, "iat": 1770113647,
            "client_id": "107c6f58-x", "jti": "Cip-x",
            "consumer": {"authority": "iso6523-actorid-upis", "ID": "0192:991825827"}
        }))
        .unwrap();
        assert_eq!(c.issuer(), Some("https://test.maskinporten.no/"));
        assert_eq!(c.consumer().unwrap().orgno(), Some("991825827"));
        assert_eq!(c.consumer().unwrap().id(), "0192:991825827");
        assert!(c.scopes().contains("altinn:consentrequests.read"));
        assert_eq!(c.authorization_details().len(), 1);
        assert_eq!(c.expires_at(), Some(1770113767));
        assert_eq!(c.get("token_type"), Some(&json!("Bearer")));
        assert!(c.supplier().is_none());
    }

    #[test]
    fn orgno_parsing_is_tolerant_of_future_parts_and_other_schemes() {
        let org = |id: &str, authority: &str| {
            Organization::from_claim("consumer", &json!({"authority": authority, "ID": id}))
                .unwrap()
        };
        assert_eq!(
            org("0192:889640782:extra", ISO6523_AUTHORITY).orgno(),
            Some("889640782")
        );
        assert_eq!(org("9908:889640782", ISO6523_AUTHORITY).orgno(), None);
        assert_eq!(org("0192:88964078", ISO6523_AUTHORITY).orgno(), None);
        assert_eq!(org("0192:889640782", "other").orgno(), None);
        assert_eq!(org("0192:889640782", "other").id(), "0192:889640782");
    }

    #[test]
    fn time_claims_must_be_numbers() {
        let err = claims(json!({"exp": "1770113767"})).unwrap_err();
        assert_eq!(err.code(), "invalid_claim");
        assert!(err.to_string().contains("`exp`"), "{err}");
        assert!(claims(json!({"nbf": "0"})).is_err());
        assert!(claims(json!({"iat": true})).is_err());
        assert!(claims(json!({"exp": 1e300})).is_err());
        let c = claims(json!({"exp": 100.9, "nbf": 10.1, "iat": 10.1})).unwrap();
        assert_eq!(c.expires_at(), Some(100));
        assert_eq!(c.not_before(), Some(11));
        assert_eq!(c.issued_at(), Some(11));
    }

    #[test]
    fn typed_claims_refuse_wrong_types() {
        for bad in [
            json!({"scope": ["a"]}),
            json!({"aud": 1}),
            json!({"aud": ["a", 1]}),
            json!({"consumer": "0192:889640782"}),
            json!({"consumer": {"authority": "iso6523-actorid-upis"}}),
            json!({"authorization_details": {}}),
            json!({"iss": 1}),
            json!({"client_id": null}),
        ] {
            assert!(claims(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn audience_rules() {
        let c = claims(json!({"aud": ["https://a/", "https://b/"]})).unwrap();
        assert!(check_audience(&c, "https://b/").is_ok());
        assert!(check_audience(&c, "https://c/").is_err());
        let none = claims(json!({})).unwrap();
        assert!(matches!(
            check_audience(&none, "https://a/"),
            Err(ValidationError::WrongAudience { found, .. }) if found.is_empty()
        ));
        let unspecified = claims(json!({"aud": "unspecified"})).unwrap();
        assert!(check_audience(&unspecified, "https://a/").is_err());
    }
}
