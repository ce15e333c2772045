//! Why a token was refused, as one precise enum.
//!
//! Every variant has a stable short [`code`](ValidationError::code) for machines (metrics,
//! logs, the `error` field of an introspection answer) and a message for the caller that says
//! what to fix. Messages never include the token, its signature, or the trusted issuer's
//! internal URLs; values taken from the token are truncated and escaped by [`printable`].

use std::fmt;

use http::StatusCode;

use crate::algorithm::Algorithm;
use crate::scope::ScopeRequirement;

/// The longest piece of attacker-controlled text we repeat in a message.
const MAX_ECHO: usize = 64;

/// Makes a value from a token (or any request) safe to echo in a message or a log line: at
/// most 64 characters, with control characters escaped, so a crafted `kid` cannot forge log
/// lines or flood them. The local issuer uses it for what it echoes from assertions.
///
/// ```
/// assert_eq!(portvakt::printable("a\nb"), "a\\nb");
/// assert_eq!(portvakt::printable(&"x".repeat(100)), format!("{}…", "x".repeat(64)));
/// ```
pub fn printable(value: &str) -> String {
    printable_at_most(value, MAX_ECHO)
}

/// [`printable`] with another length limit: at most `max_chars` characters (then `…`), with
/// control characters escaped. For longer text from a server that is shown whole, such as an
/// issuer's `error_description` (`portvakt token` prints it to a terminal, where an escape
/// sequence, `\r` or BEL from a hostile issuer must not act).
///
/// ```
/// assert_eq!(portvakt::printable_at_most("\u{1b}[2Jok\r\x07", 100), "\\u{1b}[2Jok\\r\\u{7}");
/// assert_eq!(portvakt::printable_at_most("abcdef", 3), "abc…");
/// ```
pub fn printable_at_most(value: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (i, ch) in value.chars().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        if ch.is_control() {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Which part of a compact JWS was malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// The protected header (first segment).
    Header,
    /// The payload, that is the claims (second segment).
    Payload,
    /// The signature (third segment).
    Signature,
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Segment::Header => "header",
            Segment::Payload => "payload",
            Segment::Signature => "signature",
        })
    }
}

/// A token was refused. Match on the variant for logic, use [`code`](Self::code) for
/// metrics and machine answers, and `Display` for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The token is longer than the configured maximum; nothing else was looked at.
    #[error(
        "token is {size} bytes, over the {limit}-byte limit; send a Maskinporten access token, not another document"
    )]
    TokenTooLarge {
        /// The token's length in bytes.
        size: usize,
        /// The configured maximum.
        limit: usize,
    },
    /// Not a compact JWS: the token must be three base64url segments separated by dots.
    #[error("token is not a compact JWS: expected 3 dot-separated segments, found {segments}")]
    NotCompactJws {
        /// How many segments the token had.
        segments: usize,
    },
    /// A segment is not strict base64url (no padding, URL-safe alphabet, canonical).
    #[error("token {segment} is not base64url without padding")]
    BadBase64 {
        /// The segment that failed to decode.
        segment: Segment,
    },
    /// The header or payload is not a JSON object, or repeats a member name.
    #[error("token {segment} {reason}")]
    BadJson {
        /// The segment that failed to parse.
        segment: Segment,
        /// What was wrong.
        reason: String,
    },
    /// The header's `alg` is missing, `none`, HMAC, or not in the allow-list.
    #[error("{}", alg_message(.alg.as_deref(), .allowed))]
    AlgorithmNotAllowed {
        /// The `alg` the token names, if any (escaped and truncated).
        alg: Option<String>,
        /// The algorithms this validator accepts.
        allowed: Vec<Algorithm>,
    },
    /// The header has no `kid`: portvakt never guesses among keys.
    #[error(
        "token header has no `kid` (key id); Maskinporten tokens always name their signing key"
    )]
    MissingKid,
    /// A header parameter portvakt refuses to honour (`crit`, or `b64` from RFC 7797).
    #[error("token header uses `{parameter}`, an extension portvakt does not support")]
    UnsupportedHeader {
        /// The offending header parameter.
        parameter: &'static str,
    },
    /// No key with this `kid` in the issuer's key set, even after a refresh was allowed.
    #[error("no signing key with kid `{kid}` is published by the trusted issuer")]
    UnknownKid {
        /// The `kid` from the token (escaped and truncated).
        kid: String,
    },
    /// The validator does not hold any keys yet (issuer not reached since start-up).
    #[error("signing keys are not available yet: the issuer's key set has not been fetched")]
    KeysUnavailable,
    /// The key declares an `alg` that differs from the token's.
    #[error("key `{kid}` is for {key_alg}, but the token says {token_alg}")]
    KeyAlgorithmMismatch {
        /// The key's id.
        kid: String,
        /// The algorithm the key declares.
        key_alg: Algorithm,
        /// The algorithm the token names.
        token_alg: Algorithm,
    },
    /// The signature does not verify with the named key.
    #[error("signature does not verify with the issuer's key `{kid}`")]
    BadSignature {
        /// The key's id.
        kid: String,
    },
    /// A claim has the wrong JSON type or an impossible value.
    #[error("claim `{claim}` {reason}")]
    InvalidClaim {
        /// The claim's name.
        claim: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `iss` is missing or not exactly the trusted issuer.
    #[error("{}", issuer_message(.found.as_deref()))]
    WrongIssuer {
        /// The token's issuer, if any (escaped and truncated).
        found: Option<String>,
    },
    /// The token has no `exp` claim: a token that never expires is never accepted.
    #[error("token has no `exp` (expiry) claim")]
    MissingExpiry,
    /// `exp` is in the past, beyond the leeway.
    #[error("token expired at {exp} ({ago} s ago, leeway {leeway} s); fetch a new token")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// Seconds since it expired.
        ago: i64,
        /// The configured leeway in seconds.
        leeway: u64,
    },
    /// `nbf` is in the future, beyond the leeway.
    #[error("token is not valid before {nbf} ({ahead} s from now, leeway {leeway} s)")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: i64,
        /// Seconds until it becomes valid.
        ahead: i64,
        /// The configured leeway in seconds.
        leeway: u64,
    },
    /// `iat` is in the future, beyond the leeway: the issuer's clock or the token is wrong.
    #[error(
        "token is issued in the future (iat {iat}, {ahead} s from now, leeway {leeway} s); check the clocks"
    )]
    IssuedInFuture {
        /// The token's `iat`.
        iat: i64,
        /// Seconds ahead of our clock.
        ahead: i64,
        /// The configured leeway in seconds.
        leeway: u64,
    },
    /// The provider requires an audience-restricted token and this one is not for it.
    #[error("{}", audience_message(.required, .found))]
    WrongAudience {
        /// The audience this API requires.
        required: String,
        /// What the token carries (empty when it has no `aud`).
        found: Vec<String>,
    },
    /// The token lacks the scopes this request needs.
    #[error("token lacks the required scope: needs {required}")]
    InsufficientScope {
        /// What was required.
        required: ScopeRequirement,
    },
    /// The consumer organization is not among those allowed here.
    #[error("{}", consumer_message(.orgno.as_deref()))]
    ConsumerNotAllowed {
        /// The token's consumer organization number, if it has one.
        orgno: Option<String>,
    },
}

fn alg_message(alg: Option<&str>, allowed: &[Algorithm]) -> String {
    let allowed = allowed
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(", ");
    match alg {
        None => format!("token header has no `alg`; allowed: {allowed}"),
        Some(alg) => format!("algorithm `{alg}` is not allowed; allowed: {allowed}"),
    }
}

fn issuer_message(found: Option<&str>) -> String {
    match found {
        None => "token has no `iss` (issuer) claim".to_owned(),
        Some(iss) => format!("token issuer `{iss}` is not the trusted issuer"),
    }
}

fn audience_message(required: &str, found: &[String]) -> String {
    if found.is_empty() {
        format!(
            "token is not audience-restricted; this API requires `aud` = `{required}` (request the token with resource={required})"
        )
    } else {
        format!(
            "token audience {found:?} does not include `{required}`; request the token with resource={required}"
        )
    }
}

fn consumer_message(orgno: Option<&str>) -> String {
    match orgno {
        None => "token has no consumer organization number; this API admits only listed consumers"
            .to_owned(),
        Some(orgno) => format!("consumer organization {orgno} is not allowed to call this API"),
    }
}

error_codes! {
    ValidationError;
    TokenTooLarge => "token_too_large", InvalidToken;
    NotCompactJws | BadBase64 | BadJson => "malformed_token", InvalidToken;
    AlgorithmNotAllowed => "alg_not_allowed", InvalidToken;
    MissingKid => "missing_kid", InvalidToken;
    UnsupportedHeader => "unsupported_header", InvalidToken;
    UnknownKid => "unknown_kid", InvalidToken;
    KeysUnavailable => "keys_unavailable", Unavailable;
    KeyAlgorithmMismatch => "key_alg_mismatch", InvalidToken;
    BadSignature => "bad_signature", InvalidToken;
    InvalidClaim => "invalid_claim", InvalidToken;
    WrongIssuer => "invalid_issuer", InvalidToken;
    MissingExpiry => "missing_exp", InvalidToken;
    Expired => "expired", InvalidToken;
    NotYetValid => "not_yet_valid", InvalidToken;
    IssuedInFuture => "issued_in_future", InvalidToken;
    WrongAudience => "invalid_audience", InvalidToken;
    InsufficientScope => "insufficient_scope", Forbidden;
    ConsumerNotAllowed => "consumer_not_allowed", Forbidden;
}

impl ValidationError {
    /// A stable, short, machine-readable code for this error, e.g. `expired`,
    /// `bad_signature`, `unknown_kid`, `insufficient_scope`. Safe as a metric label.
    pub fn code(&self) -> &'static str {
        self.entry().0
    }

    /// How the refusal is answered: [`ErrorClass::InvalidToken`] (401),
    /// [`ErrorClass::Forbidden`] (403) or [`ErrorClass::Unavailable`] (503).
    ///
    /// ```
    /// use portvakt::{ErrorClass, ValidationError};
    /// assert_eq!(ValidationError::MissingKid.class(), ErrorClass::InvalidToken);
    /// assert_eq!(ValidationError::KeysUnavailable.class().status(), 503);
    /// ```
    pub fn class(&self) -> ErrorClass {
        self.entry().1
    }

    /// True when the token itself is fine but the caller lacks permission: scope or consumer.
    /// RFC 6750 answers these with 403 `insufficient_scope`; everything else is 401
    /// `invalid_token`.
    pub fn is_forbidden(&self) -> bool {
        self.class() == ErrorClass::Forbidden
    }

    /// True when the failure is on our side (no keys yet), not the caller's: a proxy may
    /// answer 503 rather than 401 so clients retry.
    pub fn is_unavailable(&self) -> bool {
        self.class() == ErrorClass::Unavailable
    }
}

/// How a refused request is answered: the HTTP status and the RFC 6750 error it carries. Every
/// [`ValidationError`] and [`BearerError`](crate::bearer::BearerError) has one
/// ([`ValidationError::class`], [`BearerError::class`](crate::bearer::BearerError::class)),
/// declared beside its code.
///
/// ```
/// use portvakt::ErrorClass;
/// assert_eq!(ErrorClass::Forbidden.status(), http::StatusCode::FORBIDDEN);
/// assert_eq!(ErrorClass::MissingToken.as_str(), "missing_token");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// A malformed `Authorization` header: 400, `invalid_request`.
    BadRequest,
    /// No Bearer credentials (no header, or another scheme): 401 with a bare challenge.
    MissingToken,
    /// The token is invalid (signature, expiry, issuer, ...): 401, `invalid_token`.
    InvalidToken,
    /// A valid token without the scope or consumer the route needs: 403, `insufficient_scope`.
    Forbidden,
    /// Our side cannot judge the token yet (no signing keys): 503 with `Retry-After`.
    Unavailable,
}

impl ErrorClass {
    /// Every class, for pre-registering metric labels.
    pub const ALL: [ErrorClass; 5] = [
        ErrorClass::BadRequest,
        ErrorClass::MissingToken,
        ErrorClass::InvalidToken,
        ErrorClass::Forbidden,
        ErrorClass::Unavailable,
    ];

    /// The HTTP status of the answer.
    ///
    /// ```
    /// use portvakt::ErrorClass;
    /// assert_eq!(ErrorClass::BadRequest.status(), 400);
    /// assert_eq!(ErrorClass::MissingToken.status(), 401);
    /// assert_eq!(ErrorClass::Unavailable.status(), 503);
    /// ```
    pub fn status(self) -> StatusCode {
        match self {
            ErrorClass::BadRequest => StatusCode::BAD_REQUEST,
            ErrorClass::MissingToken | ErrorClass::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorClass::Forbidden => StatusCode::FORBIDDEN,
            ErrorClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A short stable name, safe as a metric label: `bad_request`, `missing_token`,
    /// `invalid_token`, `forbidden`, `unavailable`.
    ///
    /// ```
    /// use portvakt::ErrorClass;
    /// assert_eq!(ErrorClass::InvalidToken.as_str(), "invalid_token");
    /// assert_eq!(ErrorClass::InvalidToken.to_string(), "invalid_token");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::BadRequest => "bad_request",
            ErrorClass::MissingToken => "missing_token",
            ErrorClass::InvalidToken => "invalid_token",
            ErrorClass::Forbidden => "forbidden",
            ErrorClass::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_truncates_and_escapes() {
        assert_eq!(printable("abc"), "abc");
        assert_eq!(printable("a\nb"), "a\\nb");
        let long = "x".repeat(200);
        let shown = printable(&long);
        assert_eq!(shown.chars().count(), MAX_ECHO + 1);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn codes_are_listed_once() {
        let mut codes = ValidationError::CODES.to_vec();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ValidationError::CODES.len());
    }

    #[test]
    fn every_code_is_listed() {
        let samples = [
            ValidationError::MissingKid,
            ValidationError::KeysUnavailable,
            ValidationError::MissingExpiry,
            ValidationError::TokenTooLarge { size: 1, limit: 0 },
        ];
        for e in samples {
            assert!(ValidationError::CODES.contains(&e.code()), "{}", e.code());
        }
    }
}
