//! Typed Maskinporten claims, with every claim also kept verbatim.
//!
//! Typing is strict where a wrong type could change a decision (`exp` as a string is refused,
//! not coerced: the class of bug behind jsonwebtoken's `nbf`/`exp` bypass) and tolerant where
//! Maskinporten may grow (`consumer.ID` may gain more `:`-separated parts).

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::encoding::parse_json_object;

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
}

impl Organization {
    pub(crate) fn new(authority: String, id: String) -> Organization {
        Organization { authority, id }
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
        // A few byte comparisons: cheaper to redo than to store a copy.
        norwegian_orgno(&self.authority, &self.id)
    }
}

fn norwegian_orgno<'a>(authority: &str, id: &'a str) -> Option<&'a str> {
    if authority != ISO6523_AUTHORITY {
        return None;
    }
    // The second `:`-separated part, by byte comparisons: `split(':')` set up a searcher on
    // every call, and the proxy asks for the consumer's and the supplier's on every request.
    let rest = id.strip_prefix(NORWEGIAN_ORGNO_ICD)?.strip_prefix(':')?;
    let orgno = rest.get(..9)?;
    let whole_part = rest.len() == 9 || rest.as_bytes()[9] == b':';
    (whole_part && orgno.bytes().all(|b| b.is_ascii_digit())).then_some(orgno)
}

/// Verified claims of a Maskinporten access token.
///
/// Built in one pass over the payload (see `payload.rs`): the typed claims are read directly,
/// string claims kept as ranges of the payload, and the verbatim map ([`raw`](Self::raw)) is
/// built only when first asked for.
#[derive(Debug, Clone)]
pub struct Claims {
    payload: Box<str>,
    typed: TypedClaims,
    pub(super) raw: OnceLock<Map<String, Value>>,
}

impl PartialEq for Claims {
    fn eq(&self, other: &Claims) -> bool {
        self.raw() == other.raw()
    }
}

/// A string claim: where it stands in the payload, or, when it had JSON escapes, its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Text {
    Span { start: usize, len: usize },
    Owned(Box<str>),
}

impl Text {
    pub(crate) fn span(start: usize, len: usize) -> Text {
        Text::Span { start, len }
    }

    pub(crate) fn owned(text: &str) -> Text {
        Text::Owned(text.into())
    }

    pub(crate) fn get<'a>(&'a self, payload: &'a str) -> &'a str {
        match self {
            Text::Span { start, len } => payload.get(*start..*start + *len).unwrap_or_default(),
            Text::Owned(text) => text,
        }
    }
}

/// The string-valued claims, as indexes into [`TypedClaims::strings`], in the order their
/// errors are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum StringClaim {
    Iss,
    ClientId,
    ClientAmr,
    DelegationSource,
    Pid,
    Jti,
}

impl StringClaim {
    const ALL: [StringClaim; 6] = [
        StringClaim::Iss,
        StringClaim::ClientId,
        StringClaim::ClientAmr,
        StringClaim::DelegationSource,
        StringClaim::Pid,
        StringClaim::Jti,
    ];

    pub(crate) fn from_name(name: &str) -> Option<StringClaim> {
        StringClaim::ALL
            .into_iter()
            .find(|claim| claim.name() == name)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            StringClaim::Iss => "iss",
            StringClaim::ClientId => "client_id",
            StringClaim::ClientAmr => "client_amr",
            StringClaim::DelegationSource => "delegation_source",
            StringClaim::Pid => "pid",
            StringClaim::Jti => "jti",
        }
    }

    pub(crate) fn rank(self) -> ClaimRank {
        ClaimRank::String(self)
    }
}

/// Which malformed claim is reported when there are several: the first in this order,
/// whatever the order in the payload, so an error does not depend on member order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ClaimRank {
    Scope,
    Audience,
    Consumer,
    Supplier,
    AuthorizationDetails,
    String(StringClaim),
    Exp,
    Nbf,
    Iat,
}

/// The claims a decision may depend on, typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TypedClaims {
    pub(crate) strings: [Option<Text>; 6],
    pub(crate) scopes: ScopeSet,
    pub(crate) consumer: Option<Organization>,
    pub(crate) supplier: Option<Organization>,
    pub(crate) audience: Vec<String>,
    pub(crate) iat: Option<i64>,
    pub(crate) exp: Option<i64>,
    pub(crate) nbf: Option<i64>,
}

impl TypedClaims {
    pub(crate) fn date_mut(&mut self, claim: &str) -> &mut Option<i64> {
        match claim {
            "exp" => &mut self.exp,
            "nbf" => &mut self.nbf,
            _ => &mut self.iat,
        }
    }
}

/// A NumericDate (RFC 7519 section 2) that came as a float: fractions are rounded toward the
/// safe side (`exp` down, `nbf` and `iat` up), and beyond ±2^53 a float is not a meaningful
/// time, so it is refused rather than saturated.
pub(crate) fn float_date(seconds: f64, round_up: bool) -> Result<i64, &'static str> {
    if !seconds.is_finite() {
        return Err("must be a number of seconds since 1970");
    }
    let rounded = if round_up {
        seconds.ceil()
    } else {
        seconds.floor()
    };
    if rounded.abs() > 9_007_199_254_740_992.0 {
        return Err("is out of range");
    }
    Ok(rounded as i64)
}

impl Claims {
    pub(crate) fn from_parts(payload: Box<str>, typed: TypedClaims) -> Claims {
        Claims {
            payload,
            typed,
            raw: OnceLock::new(),
        }
    }

    /// About how many bytes these claims hold on the heap, for the token cache's budget.
    ///
    /// The verbatim map counts only once it has been built: it is built on first use of
    /// [`raw`](Self::raw) or [`get`](Self::get), which the sidecar does only for a token that
    /// carries its own `active` claim or a JSON escape.
    pub(crate) fn approximate_heap_bytes(&self) -> usize {
        // Every allocation also costs the allocator's header and rounding.
        const ALLOCATION: usize = 16;
        const STRING: usize = std::mem::size_of::<String>();
        let string = |s: &str| ALLOCATION + s.len();
        let typed = &self.typed;
        let owned_texts: usize = typed
            .strings
            .iter()
            .map(|text| match text {
                Some(Text::Owned(text)) => string(text),
                _ => 0,
            })
            .sum();
        // A B-tree leaf holds up to 11 keys in one allocation of 11 keys plus its header.
        let scopes = typed.scopes.len().div_ceil(11) * (ALLOCATION + 16 + 11 * STRING)
            + typed.scopes.iter().map(string).sum::<usize>();
        let organizations: usize = [&typed.consumer, &typed.supplier]
            .into_iter()
            .flatten()
            .map(|o| string(&o.authority) + string(&o.id))
            .sum();
        let audience = match typed.audience.capacity() {
            0 => 0,
            capacity => ALLOCATION + capacity * STRING,
        } + typed.audience.iter().map(|a| string(a)).sum::<usize>();
        // A built map: about three times its text (keys, values, nodes).
        let raw = self.raw.get().map_or(0, |_| 3 * self.payload.len());
        string(&self.payload) + owned_texts + scopes + organizations + audience + raw
    }

    /// Every claim exactly as the token carried it (what the introspection API returns).
    /// Built from the payload on first use.
    pub fn raw(&self) -> &Map<String, Value> {
        self.raw.get_or_init(|| {
            // The payload passed the same strict parse already; this cannot fail.
            parse_json_object(self.payload.as_bytes()).unwrap_or_default()
        })
    }

    /// The payload as the token carried it (JSON text).
    pub fn payload(&self) -> &str {
        &self.payload
    }

    /// One claim as the token carried it.
    pub fn get(&self, claim: &str) -> Option<&Value> {
        self.raw().get(claim)
    }

    fn string(&self, claim: StringClaim) -> Option<&str> {
        self.typed.strings[claim as usize]
            .as_ref()
            .map(|text| text.get(&self.payload))
    }

    /// `iss`: the issuer.
    pub fn issuer(&self) -> Option<&str> {
        self.string(StringClaim::Iss)
    }

    /// `scope`, parsed.
    pub fn scopes(&self) -> &ScopeSet {
        &self.typed.scopes
    }

    /// `client_id`: the consumer's client registration. Not for access control: a consumer
    /// can have many clients; use [`consumer`](Self::consumer).
    pub fn client_id(&self) -> Option<&str> {
        self.string(StringClaim::ClientId)
    }

    /// `client_amr`: how the client authenticated (`private_key_jwt`, `virksomhetssertifikat`).
    pub fn client_amr(&self) -> Option<&str> {
        self.string(StringClaim::ClientAmr)
    }

    /// `consumer`: the legal party the token was issued to. Authorize on this.
    pub fn consumer(&self) -> Option<&Organization> {
        self.typed.consumer.as_ref()
    }

    /// `supplier`: in delegated access, the party acting for the consumer. Never authorize on
    /// this; it is for audit.
    pub fn supplier(&self) -> Option<&Organization> {
        self.typed.supplier.as_ref()
    }

    /// `delegation_source`: where the delegation was registered (e.g. Altinn).
    pub fn delegation_source(&self) -> Option<&str> {
        self.string(StringClaim::DelegationSource)
    }

    /// `pid`: the person the token is restricted to, when it is.
    pub fn pid(&self) -> Option<&str> {
        self.string(StringClaim::Pid)
    }

    /// `authorization_details` (system users, consent), verbatim; empty when absent.
    pub fn authorization_details(&self) -> &[Value] {
        match self.get("authorization_details") {
            Some(Value::Array(items)) => items,
            _ => &[],
        }
    }

    /// `aud`, as a list (empty when absent).
    pub fn audience(&self) -> &[String] {
        &self.typed.audience
    }

    /// `jti`: the token's unique id.
    pub fn jti(&self) -> Option<&str> {
        self.string(StringClaim::Jti)
    }

    /// `iat`: when the token was issued (seconds since 1970).
    pub fn issued_at(&self) -> Option<i64> {
        self.typed.iat
    }

    /// `exp`: when the token expires (seconds since 1970).
    pub fn expires_at(&self) -> Option<i64> {
        self.typed.exp
    }

    /// `nbf`: not valid before (seconds since 1970). Maskinporten does not set it.
    pub fn not_before(&self) -> Option<i64> {
        self.typed.nbf
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
        let org =
            |id: &str, authority: &str| Organization::new(authority.to_owned(), id.to_owned());
        assert_eq!(
            org("0192:889640782:extra", ISO6523_AUTHORITY).orgno(),
            Some("889640782")
        );
        assert_eq!(org("9908:889640782", ISO6523_AUTHORITY).orgno(), None);
        assert_eq!(org("0192:88964078", ISO6523_AUTHORITY).orgno(), None);
        assert_eq!(org("0192:889640782", "other").orgno(), None);
        assert_eq!(org("0192:889640782", "other").id(), "0192:889640782");
        // The second part, whole: nine digits, then the end or another part.
        for (id, orgno) in [
            ("0192:889640782", Some("889640782")),
            ("0192:889640782:", Some("889640782")),
            ("0192:8896407821", None),
            ("0192:88964078x", None),
            ("0192:88964078", None),
            ("0192:", None),
            ("0192", None),
            ("01920:889640782", None),
            ("0192:889640782x:1", None),
            ("0192:88964078\u{e9}", None),
            ("0192:\u{e9}889640782", None),
            ("", None),
        ] {
            assert_eq!(org(id, ISO6523_AUTHORITY).orgno(), orgno, "{id:?}");
        }
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
