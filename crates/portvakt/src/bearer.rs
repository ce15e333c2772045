//! Bearer tokens in HTTP: reading the `Authorization` header (RFC 6750 section 2.1, RFC 7235)
//! and answering with RFC 6750 challenges (`WWW-Authenticate`), status codes and a JSON body.
//!
//! This module depends on [`http`] only, so the tower layer, the axum extractors and a reverse
//! proxy can share one implementation of the protocol:
//!
//! ```
//! use http::{HeaderMap, HeaderValue, StatusCode, header::AUTHORIZATION};
//! use portvakt::bearer::{BearerError, Rejection, bearer_token};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic dXNlcjpwYXNz"));
//! let refused = bearer_token(&headers).unwrap_err();
//! assert_eq!(refused, BearerError::NotBearer);
//!
//! // Another scheme is answered like no credentials at all: a bare challenge.
//! let response = Rejection::from(refused).with_realm("my-api").to_response();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="my-api""#);
//! ```
//!
//! # How failures are answered
//!
//! | Failure | Status | Challenge |
//! |---|---|---|
//! | no `Authorization`, or another scheme (`Basic`) | 401 | `Bearer realm="…"` (no error: RFC 6750 section 3.1) |
//! | malformed `Authorization` (empty, `Bearer` without token, `Bearer Bearer …`, two credentials, bad characters, two headers) | 400 | `error="invalid_request"` |
//! | the token is invalid (signature, expiry, issuer, …) | 401 | `error="invalid_token"` |
//! | valid token, missing scope or consumer not allowed | 403 | `error="insufficient_scope"`, with `scope="…"` when scopes are missing |
//! | no signing keys yet (our side) | 503 + `Retry-After` | none: the client did nothing wrong |
//!
//! Descriptions never contain the token or any part of it; values copied from a token are
//! escaped and truncated by the validator, and everything put in a header is reduced to the
//! characters RFC 6750 allows there.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// The realm used when the application names none. Naming the token issuer tells a caller
/// which kind of token to fetch.
///
/// ```
/// use portvakt::bearer::{BearerError, DEFAULT_REALM, Rejection};
///
/// assert_eq!(DEFAULT_REALM, "maskinporten");
/// let response = Rejection::new(BearerError::Missing).to_response();
/// assert_eq!(response.headers()["www-authenticate"], format!("Bearer realm=\"{DEFAULT_REALM}\""));
/// ```
pub const DEFAULT_REALM: &str = "maskinporten";

/// Seconds a client is asked to wait (`Retry-After`) when we hold no signing keys yet. Keys
/// normally arrive within a second or two of start-up.
///
/// ```
/// use portvakt::ValidationError;
/// use portvakt::bearer::{RETRY_AFTER_SECONDS, Rejection};
///
/// let response = Rejection::new(ValidationError::KeysUnavailable).to_response();
/// assert_eq!(response.status(), 503);
/// assert_eq!(response.headers()["retry-after"], RETRY_AFTER_SECONDS.to_string());
/// ```
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// The longest `error_description` put in a header; the JSON body carries the full text.
const MAX_HEADER_DESCRIPTION: usize = 200;
/// The longest realm put in a header.
const MAX_REALM: usize = 100;

/// Why the `Authorization` header does not carry exactly one Bearer token.
///
/// [`Missing`](Self::Missing) and [`NotBearer`](Self::NotBearer) mean "no Bearer credentials"
/// and are answered with a bare challenge; every other variant is a malformed request
/// (`invalid_request`, 400). No variant carries any part of the header: it may hold a secret
/// (a token, or a password in `Basic`).
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
/// use portvakt::bearer::{BearerError, bearer_token};
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(bearer_token(&headers), Err(BearerError::Missing));
/// headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer Bearer eyJ.eyJ.sig"));
/// let error = bearer_token(&headers).unwrap_err();
/// assert_eq!(error, BearerError::RepeatedScheme);
/// assert_eq!(error.code(), "repeated_scheme");
/// assert!(error.is_malformed());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// No `Authorization` header.
    #[error(
        "no Authorization header; send `Authorization: Bearer <token>` with a Maskinporten access token"
    )]
    Missing,
    /// More than one `Authorization` header: which one counts would be a guess.
    #[error("more than one Authorization header; send exactly one")]
    Multiple,
    /// An `Authorization` header with nothing in it.
    #[error("the Authorization header is empty; send `Authorization: Bearer <token>`")]
    Empty,
    /// Another authentication scheme, e.g. `Basic`.
    #[error(
        "the Authorization header uses another scheme than Bearer; send `Authorization: Bearer <token>` with a Maskinporten access token"
    )]
    NotBearer,
    /// `Bearer` with no token after it.
    #[error("the Authorization header says Bearer but carries no token")]
    NoToken,
    /// `Bearer Bearer <token>`: the token variable already held the scheme.
    #[error(
        "the Authorization header repeats the scheme; send `Bearer <token>`, not `Bearer Bearer <token>`"
    )]
    RepeatedScheme,
    /// More than one credential after `Bearer` (`Bearer a b`, `Bearer a, Bearer b`).
    #[error("the Authorization header carries more than one credential; send exactly one token")]
    ExtraParts,
    /// A character outside RFC 6750's `b64token` alphabet (letters, digits, `-._~+/`, then
    /// `=` padding), such as a quote, a comma, a control character or non-ASCII text.
    #[error(
        "the bearer token contains a character outside RFC 6750's token alphabet (letters, digits, - . _ ~ + / and trailing =)"
    )]
    InvalidCharacter,
}

impl BearerError {
    /// A stable, short, machine-readable code, e.g. `missing_token`. Safe as a metric label.
    ///
    /// ```
    /// assert_eq!(portvakt::bearer::BearerError::Multiple.code(), "multiple_authorization");
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            BearerError::Missing => "missing_token",
            BearerError::Multiple => "multiple_authorization",
            BearerError::Empty => "empty_authorization",
            BearerError::NotBearer => "not_bearer",
            BearerError::NoToken => "no_token",
            BearerError::RepeatedScheme => "repeated_scheme",
            BearerError::ExtraParts => "extra_parts",
            BearerError::InvalidCharacter => "invalid_character",
        }
    }

    /// True when the request is malformed (answered 400 `invalid_request`), false when it just
    /// carries no Bearer credentials (answered 401 with a bare challenge).
    ///
    /// ```
    /// use portvakt::bearer::BearerError;
    /// assert!(!BearerError::Missing.is_malformed());
    /// assert!(!BearerError::NotBearer.is_malformed());
    /// assert!(BearerError::NoToken.is_malformed());
    /// ```
    pub fn is_malformed(&self) -> bool {
        !matches!(self, BearerError::Missing | BearerError::NotBearer)
    }
}

/// The Bearer token of a request: exactly one `Authorization` header holding exactly
/// `Bearer <b64token>`.
///
/// The scheme is case-insensitive (RFC 7235 section 2.1: `bearer x` is accepted), one or more
/// spaces may separate it from the token, and whitespace around the whole value is ignored.
/// The token is returned as sent; it is not a secret to log.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
/// use portvakt::bearer::bearer_token;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer eyJhbGciOi.eyJpc3Mi.c2ln"));
/// assert_eq!(bearer_token(&headers), Ok("eyJhbGciOi.eyJpc3Mi.c2ln"));
/// ```
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, BearerError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(BearerError::Missing);
    };
    if values.next().is_some() {
        return Err(BearerError::Multiple);
    }
    parse_authorization(value)
}

/// Parses one `Authorization` header value as `Bearer <b64token>`; see [`bearer_token`], which
/// also refuses repeated headers.
///
/// ```
/// use http::HeaderValue;
/// use portvakt::bearer::{BearerError, parse_authorization};
///
/// let value = HeaderValue::from_static("Bearer  abc.def.ghi ");
/// assert_eq!(parse_authorization(&value), Ok("abc.def.ghi"));
/// let value = HeaderValue::from_static("Bearer a.b.c, Bearer d.e.f");
/// assert_eq!(parse_authorization(&value), Err(BearerError::ExtraParts));
/// ```
pub fn parse_authorization(value: &HeaderValue) -> Result<&str, BearerError> {
    let bytes = trim_ows(value.as_bytes());
    if bytes.is_empty() {
        return Err(BearerError::Empty);
    }
    // The scheme is a prefix: no need to search for the space.
    const SCHEME: &[u8] = b"bearer";
    if bytes.len() < SCHEME.len() || !bytes[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return Err(BearerError::NotBearer);
    }
    match bytes.get(SCHEME.len()) {
        None => return Err(BearerError::NoToken),
        Some(b' ') => {}
        Some(_) => return Err(BearerError::NotBearer), // `Bearerx`, or a tab
    }
    // RFC 7235: auth-scheme 1*SP token68.
    let token = trim_leading_spaces(&bytes[SCHEME.len()..]);
    if token.is_empty() {
        return Err(BearerError::NoToken);
    }
    if !is_b64token(token) {
        return Err(classify_malformed(token));
    }
    if token.eq_ignore_ascii_case(SCHEME) {
        return Err(BearerError::RepeatedScheme);
    }
    // Only ASCII is left, so this cannot fail; no unwrap on the input path all the same.
    std::str::from_utf8(token).map_err(|_| BearerError::InvalidCharacter)
}

/// Why a credential that is not one b64token was refused (the slow path, off the hot one).
fn classify_malformed(credentials: &[u8]) -> BearerError {
    let end = credentials
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(credentials.len());
    let first = &credentials[..end];
    if first.eq_ignore_ascii_case(b"bearer") {
        BearerError::RepeatedScheme
    } else if end < credentials.len() || first.ends_with(b",") {
        BearerError::ExtraParts
    } else {
        BearerError::InvalidCharacter
    }
}

fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

fn trim_leading_spaces(mut bytes: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

/// RFC 6750 section 2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
///
/// This runs on every request over the whole token (about 700 bytes for Maskinporten), so the
/// check is branch-free within 32-byte blocks, which the compiler turns into vector compares.
fn is_b64token(token: &[u8]) -> bool {
    let padding = token.iter().rev().take_while(|&&b| b == b'=').count();
    let body = &token[..token.len() - padding];
    if body.is_empty() {
        return false;
    }
    let mut blocks = body.chunks_exact(32);
    for block in &mut blocks {
        if !block.iter().fold(true, |ok, &b| ok & is_b64token_byte(b)) {
            return false;
        }
    }
    blocks.remainder().iter().all(|&b| is_b64token_byte(b))
}

#[inline(always)]
fn is_b64token_byte(b: u8) -> bool {
    // Clearing bit 5 maps `a-z` onto `A-Z` and nothing else onto `A-Z`.
    let letter = (b & !0x20).wrapping_sub(b'A') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    letter
        | digit
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

/// The error codes of RFC 6750 section 3.1.
///
/// ```
/// use http::StatusCode;
/// use portvakt::bearer::ErrorCode;
/// assert_eq!(ErrorCode::InsufficientScope.as_str(), "insufficient_scope");
/// assert_eq!(ErrorCode::InsufficientScope.status(), StatusCode::FORBIDDEN);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed (400).
    InvalidRequest,
    /// The token is expired, revoked, malformed or invalid for other reasons (401).
    InvalidToken,
    /// The token is valid but does not grant enough (403).
    InsufficientScope,
}

impl ErrorCode {
    /// The code as it appears in the challenge and the JSON body.
    ///
    /// ```
    /// use portvakt::bearer::ErrorCode;
    /// assert_eq!(ErrorCode::InvalidRequest.as_str(), "invalid_request");
    /// assert_eq!(ErrorCode::InvalidToken.as_str(), "invalid_token");
    /// assert_eq!(ErrorCode::InvalidToken.to_string(), "invalid_token");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
        }
    }

    /// The status RFC 6750 pairs with the code.
    ///
    /// ```
    /// use http::StatusCode;
    /// use portvakt::bearer::ErrorCode;
    /// assert_eq!(ErrorCode::InvalidRequest.status(), StatusCode::BAD_REQUEST);
    /// assert_eq!(ErrorCode::InvalidToken.status(), StatusCode::UNAUTHORIZED);
    /// ```
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An RFC 6750 `WWW-Authenticate` challenge. Rendering ([`Display`](fmt::Display),
/// [`to_header_value`](Self::to_header_value)) escapes the realm as a quoted-string and
/// reduces the description and scopes to the characters RFC 6750 allows in them (no `"` or
/// `\`, visible ASCII only), so nothing from a token can break out of the header.
///
/// ```
/// use portvakt::bearer::{Challenge, ErrorCode};
///
/// assert_eq!(Challenge::bare("api").to_string(), r#"Bearer realm="api""#);
/// let expired = Challenge::error("api", ErrorCode::InvalidToken, "token expired \"now\"");
/// assert_eq!(
///     expired.to_string(),
///     r#"Bearer realm="api", error="invalid_token", error_description="token expired 'now'""#
/// );
/// let scopes = vec!["nav:arbeid:a".to_owned(), "nav:arbeid:b".to_owned()];
/// let forbidden = Challenge::error("api", ErrorCode::InsufficientScope, "needs a and b")
///     .with_scope(&scopes);
/// assert_eq!(
///     forbidden.to_header_value(),
///     r#"Bearer realm="api", error="insufficient_scope", error_description="needs a and b", scope="nav:arbeid:a nav:arbeid:b""#
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge<'a> {
    realm: &'a str,
    error: Option<(ErrorCode, &'a str)>,
    scope: &'a [String],
}

impl<'a> Challenge<'a> {
    /// `Bearer realm="…"`: the answer to a request without Bearer credentials.
    ///
    /// ```
    /// use portvakt::bearer::Challenge;
    /// assert_eq!(Challenge::bare("my \"api\"").to_string(), r#"Bearer realm="my \"api\"""#);
    /// ```
    pub fn bare(realm: &'a str) -> Self {
        Challenge {
            realm,
            error: None,
            scope: &[],
        }
    }

    /// `Bearer realm="…", error="…", error_description="…"`.
    ///
    /// ```
    /// use portvakt::bearer::{Challenge, ErrorCode};
    /// let challenge = Challenge::error("api", ErrorCode::InvalidRequest, "two headers");
    /// assert_eq!(
    ///     challenge.to_string(),
    ///     r#"Bearer realm="api", error="invalid_request", error_description="two headers""#
    /// );
    /// ```
    pub fn error(realm: &'a str, code: ErrorCode, description: &'a str) -> Self {
        Challenge {
            realm,
            error: Some((code, description)),
            scope: &[],
        }
    }

    /// Adds `scope="a b"`: the scopes the request needs (RFC 6750 section 3). Ignored when
    /// empty.
    ///
    /// ```
    /// use portvakt::bearer::{Challenge, ErrorCode};
    /// let scopes = vec!["nav:arbeid:a".to_owned()];
    /// let challenge = Challenge::error("api", ErrorCode::InsufficientScope, "needs a");
    /// assert!(challenge.with_scope(&scopes).to_string().ends_with(r#", scope="nav:arbeid:a""#));
    /// assert!(!challenge.with_scope(&[]).to_string().contains("scope="));
    /// ```
    pub fn with_scope(mut self, scope: &'a [String]) -> Self {
        self.scope = scope;
        self
    }

    /// The challenge as a header value.
    ///
    /// ```
    /// use http::header::WWW_AUTHENTICATE;
    /// use portvakt::bearer::Challenge;
    /// let mut response = http::Response::new(());
    /// response.headers_mut().insert(WWW_AUTHENTICATE, Challenge::bare("api").to_header_value());
    /// assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="api""#);
    /// ```
    pub fn to_header_value(&self) -> HeaderValue {
        // Rendering produces visible ASCII and spaces only, which a header value accepts.
        HeaderValue::try_from(self.to_string()).unwrap_or(HeaderValue::from_static("Bearer"))
    }
}

impl fmt::Display for Challenge<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bearer realm=\"")?;
        for ch in self.realm.chars().take(MAX_REALM) {
            match ch {
                '"' | '\\' => write!(f, "\\{ch}")?,
                ' '..='~' => write!(f, "{ch}")?,
                _ => f.write_str("?")?,
            }
        }
        f.write_str("\"")?;
        if let Some((code, description)) = self.error {
            write!(f, ", error=\"{code}\", error_description=\"")?;
            write_description(f, description)?;
            f.write_str("\"")?;
        }
        let mut scopes = self.scope.iter().filter(|s| !s.is_empty()).peekable();
        if scopes.peek().is_some() {
            f.write_str(", scope=\"")?;
            for (i, scope) in scopes.enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                // scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
                for ch in scope.chars() {
                    match ch {
                        '!' | '#'..='[' | ']'..='~' => write!(f, "{ch}")?,
                        _ => f.write_str("?")?,
                    }
                }
            }
            f.write_str("\"")?;
        }
        Ok(())
    }
}

/// `error_description` allows `%x20-21 / %x23-5B / %x5D-7E`: quotes become `'`, backslashes
/// `/`, an ellipsis `...`, anything else `?`; long texts are cut.
fn write_description(f: &mut fmt::Formatter<'_>, description: &str) -> fmt::Result {
    for (written, ch) in description.chars().enumerate() {
        if written >= MAX_HEADER_DESCRIPTION {
            return f.write_str("...");
        }
        match ch {
            '"' => f.write_str("'")?,
            '\\' => f.write_str("/")?,
            '…' => f.write_str("...")?,
            ' '..='~' => write!(f, "{ch}")?,
            _ => f.write_str("?")?,
        }
    }
    Ok(())
}

/// The JSON body of a refusal: `{"error": "...", "error_description": "..."}`, the shape OAuth
/// error responses use (RFC 6749 section 5.2).
///
/// `error` is the RFC 6750 code (`invalid_request`, `invalid_token`, `insufficient_scope`),
/// or `missing_token` when no Bearer credentials were sent (the challenge then carries no
/// error, as RFC 6750 section 3.1 asks), or `temporarily_unavailable` for a 503.
///
/// ```
/// use portvakt::bearer::{BearerError, ErrorBody, Rejection};
///
/// let body = Rejection::from(BearerError::NoToken).body();
/// assert_eq!(body.error, "invalid_request");
/// assert_eq!(
///     body.to_json(),
///     r#"{"error":"invalid_request","error_description":"the Authorization header says Bearer but carries no token"}"#
/// );
/// let parsed: ErrorBody = serde_json::from_str(&body.to_json()).unwrap();
/// assert_eq!(parsed, body);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A short, stable code.
    pub error: Cow<'static, str>,
    /// What went wrong and what to do, for people. Never contains the token.
    pub error_description: String,
}

impl ErrorBody {
    /// The body as JSON.
    ///
    /// ```
    /// use portvakt::bearer::ErrorBody;
    /// let body = ErrorBody {
    ///     error: "invalid_token".into(),
    ///     error_description: "token has no `exp` (expiry) claim".to_owned(),
    /// };
    /// assert_eq!(
    ///     body.to_json(),
    ///     r#"{"error":"invalid_token","error_description":"token has no `exp` (expiry) claim"}"#
    /// );
    /// ```
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from(r#"{"error":"server_error"}"#))
    }
}

/// What was wrong with a request's credentials.
///
/// ```
/// use portvakt::ValidationError;
/// use portvakt::bearer::{BearerError, Reason};
///
/// let reason = Reason::from(ValidationError::MissingKid);
/// assert_eq!(reason.code(), "missing_kid");
/// assert_eq!(Reason::from(BearerError::Missing).code(), "missing_token");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The `Authorization` header did not carry exactly one Bearer token.
    Header(BearerError),
    /// The token was refused by the validator or the route's policy.
    Token(ValidationError),
}

impl Reason {
    /// A stable machine-readable code ([`BearerError::code`] or [`ValidationError::code`]).
    ///
    /// ```
    /// use portvakt::ValidationError;
    /// use portvakt::bearer::{BearerError, Reason};
    /// assert_eq!(Reason::Header(BearerError::NoToken).code(), "no_token");
    /// assert_eq!(Reason::Token(ValidationError::MissingExpiry).code(), "missing_exp");
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Header(e) => e.code(),
            Reason::Token(e) => e.code(),
        }
    }
}

impl From<BearerError> for Reason {
    fn from(e: BearerError) -> Self {
        Reason::Header(e)
    }
}

impl From<ValidationError> for Reason {
    fn from(e: ValidationError) -> Self {
        Reason::Token(e)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Header(e) => e.fmt(f),
            Reason::Token(e) => e.fmt(f),
        }
    }
}

/// A refused request and everything needed to answer it: status, `WWW-Authenticate`,
/// `Retry-After`, and a JSON body (or a gRPC status).
///
/// ```
/// use http::StatusCode;
/// use portvakt::ValidationError;
/// use portvakt::ScopeRequirement;
/// use portvakt::bearer::{ErrorCode, Rejection};
///
/// let rejection = Rejection::from(ValidationError::InsufficientScope {
///     required: ScopeRequirement::one("nav:arbeid:some.scope.write"),
/// })
/// .with_realm("my-api");
/// assert_eq!(rejection.status(), StatusCode::FORBIDDEN);
/// assert_eq!(rejection.error_code(), Some(ErrorCode::InsufficientScope));
/// let response = rejection.to_response();
/// assert_eq!(
///     response.headers()["www-authenticate"],
///     "Bearer realm=\"my-api\", error=\"insufficient_scope\", \
///      error_description=\"token lacks the required scope: needs `nav:arbeid:some.scope.write`\", \
///      scope=\"nav:arbeid:some.scope.write\""
/// );
/// assert_eq!(response.headers()["content-type"], "application/json");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    reason: Reason,
    realm: Arc<str>,
}

impl Rejection {
    /// A rejection in the [`DEFAULT_REALM`].
    ///
    /// ```
    /// use portvakt::bearer::{BearerError, Rejection};
    /// let rejection = Rejection::new(BearerError::Missing);
    /// assert_eq!(rejection.realm(), "maskinporten");
    /// ```
    pub fn new(reason: impl Into<Reason>) -> Self {
        Rejection {
            reason: reason.into(),
            realm: Arc::from(DEFAULT_REALM),
        }
    }

    /// Sets the realm of the challenge (an `Arc<str>` is shared, not copied).
    ///
    /// ```
    /// use portvakt::bearer::{BearerError, Rejection};
    /// let rejection = Rejection::new(BearerError::Missing).with_realm("my-api");
    /// assert_eq!(rejection.realm(), "my-api");
    /// ```
    pub fn with_realm(mut self, realm: impl Into<Arc<str>>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Why the request was refused.
    ///
    /// ```
    /// use portvakt::bearer::{BearerError, Reason, Rejection};
    /// let rejection = Rejection::new(BearerError::Multiple);
    /// assert_eq!(rejection.reason(), &Reason::Header(BearerError::Multiple));
    /// ```
    pub fn reason(&self) -> &Reason {
        &self.reason
    }

    /// The realm of the challenge.
    ///
    /// ```
    /// # use portvakt::bearer::{BearerError, Rejection};
    /// assert_eq!(Rejection::new(BearerError::Missing).realm(), "maskinporten");
    /// ```
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// A stable machine-readable code for metrics and logs (see [`Reason::code`]).
    ///
    /// ```
    /// # use portvakt::bearer::{BearerError, Rejection};
    /// assert_eq!(Rejection::new(BearerError::NotBearer).code(), "not_bearer");
    /// ```
    pub fn code(&self) -> &'static str {
        self.reason.code()
    }

    /// The HTTP status: 401, 400, 403 or 503 (see the [module documentation](self)).
    ///
    /// ```
    /// use http::StatusCode;
    /// use portvakt::ValidationError;
    /// use portvakt::bearer::Rejection;
    /// assert_eq!(
    ///     Rejection::new(ValidationError::KeysUnavailable).status(),
    ///     StatusCode::SERVICE_UNAVAILABLE
    /// );
    /// assert_eq!(Rejection::new(ValidationError::MissingKid).status(), StatusCode::UNAUTHORIZED);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self.error_code() {
            Some(code) => code.status(),
            None if self.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            None => StatusCode::UNAUTHORIZED,
        }
    }

    /// The RFC 6750 error code of the challenge; `None` for a bare challenge (no Bearer
    /// credentials sent) and for a 503.
    ///
    /// ```
    /// use portvakt::ValidationError;
    /// use portvakt::bearer::{BearerError, ErrorCode, Rejection};
    /// assert_eq!(Rejection::new(BearerError::Missing).error_code(), None);
    /// assert_eq!(
    ///     Rejection::new(ValidationError::MissingExpiry).error_code(),
    ///     Some(ErrorCode::InvalidToken)
    /// );
    /// ```
    pub fn error_code(&self) -> Option<ErrorCode> {
        match &self.reason {
            Reason::Header(e) if e.is_malformed() => Some(ErrorCode::InvalidRequest),
            Reason::Header(_) => None,
            Reason::Token(e) if e.is_unavailable() => None,
            Reason::Token(e) if e.is_forbidden() => Some(ErrorCode::InsufficientScope),
            Reason::Token(_) => Some(ErrorCode::InvalidToken),
        }
    }

    fn is_unavailable(&self) -> bool {
        matches!(&self.reason, Reason::Token(e) if e.is_unavailable())
    }

    /// What went wrong and what to do, for the caller. Never contains the token.
    ///
    /// ```
    /// # use portvakt::bearer::{BearerError, Rejection};
    /// assert_eq!(
    ///     Rejection::new(BearerError::Multiple).description(),
    ///     "more than one Authorization header; send exactly one"
    /// );
    /// ```
    pub fn description(&self) -> String {
        self.reason.to_string()
    }

    /// The `WWW-Authenticate` value; `None` for a 503, where the client did nothing wrong.
    ///
    /// ```
    /// # use portvakt::bearer::{BearerError, Rejection};
    /// let challenge = Rejection::new(BearerError::Missing).www_authenticate();
    /// assert_eq!(challenge.unwrap(), r#"Bearer realm="maskinporten""#);
    /// ```
    pub fn www_authenticate(&self) -> Option<HeaderValue> {
        if self.is_unavailable() {
            return None;
        }
        let Some(code) = self.error_code() else {
            return Some(Challenge::bare(&self.realm).to_header_value());
        };
        let description = self.description();
        let mut challenge = Challenge::error(&self.realm, code, &description);
        if let Reason::Token(ValidationError::InsufficientScope { required }) = &self.reason {
            challenge = challenge.with_scope(required.scopes());
        }
        Some(challenge.to_header_value())
    }

    /// The JSON body.
    ///
    /// ```
    /// # use portvakt::ValidationError;
    /// # use portvakt::bearer::Rejection;
    /// let body = Rejection::new(ValidationError::KeysUnavailable).body();
    /// assert_eq!(body.error, "temporarily_unavailable");
    /// ```
    pub fn body(&self) -> ErrorBody {
        let error = match self.error_code() {
            Some(code) => code.as_str(),
            None if self.is_unavailable() => "temporarily_unavailable",
            None => "missing_token",
        };
        ErrorBody {
            error: Cow::Borrowed(error),
            error_description: self.description(),
        }
    }

    /// The headers portvakt owns in a refusal: `WWW-Authenticate`, and `Retry-After` on a 503.
    ///
    /// ```
    /// # use portvakt::ValidationError;
    /// # use portvakt::bearer::Rejection;
    /// let headers = Rejection::new(ValidationError::KeysUnavailable).headers();
    /// assert_eq!(headers["retry-after"], "5");
    /// assert!(!headers.contains_key("www-authenticate"));
    /// ```
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(challenge) = self.www_authenticate() {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        if self.is_unavailable() {
            headers.insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        headers
    }

    /// The complete HTTP answer: status, [`headers`](Self::headers),
    /// `Content-Type: application/json` and the JSON [`body`](Self::body).
    ///
    /// ```
    /// # use portvakt::bearer::{BearerError, Rejection};
    /// let response = Rejection::new(BearerError::Missing).to_response();
    /// assert_eq!(response.status(), 401);
    /// assert!(response.body().starts_with(r#"{"error":"missing_token""#));
    /// ```
    pub fn to_response(&self) -> Response<String> {
        let mut response = Response::new(self.body().to_json());
        *response.status_mut() = self.status();
        *response.headers_mut() = self.headers();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }

    /// Makes an application's own refusal response protocol-correct: sets the status and adds
    /// `WWW-Authenticate` and `Retry-After` unless the response already has them. Everything
    /// else (body, content type, other headers) stays as the application made it.
    ///
    /// ```
    /// use http::{Response, header::CONTENT_TYPE};
    /// use portvakt::bearer::{BearerError, Rejection};
    ///
    /// let rejection = Rejection::new(BearerError::Missing);
    /// let mut response = Response::builder()
    ///     .header(CONTENT_TYPE, "text/plain")
    ///     .body("log in with Maskinporten")
    ///     .unwrap();
    /// rejection.apply_to(&mut response);
    /// assert_eq!(response.status(), 401);
    /// assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="maskinporten""#);
    /// assert_eq!(response.headers()["content-type"], "text/plain");
    /// ```
    pub fn apply_to<B>(&self, response: &mut Response<B>) {
        *response.status_mut() = self.status();
        for (name, value) in self.headers() {
            if let Some(name) = name
                && !response.headers().contains_key(&name)
            {
                response.headers_mut().insert(name, value);
            }
        }
    }

    /// The gRPC status code: 16 `UNAUTHENTICATED` for a missing, malformed or invalid
    /// token, 7 `PERMISSION_DENIED` for a 403, 14 `UNAVAILABLE` for a 503.
    ///
    /// ```
    /// # use portvakt::bearer::{BearerError, Rejection};
    /// assert_eq!(Rejection::new(BearerError::Missing).grpc_status(), 16);
    /// ```
    pub fn grpc_status(&self) -> i32 {
        match self.status() {
            StatusCode::FORBIDDEN => 7,
            StatusCode::SERVICE_UNAVAILABLE => 14,
            _ => 16,
        }
    }

    /// The answer for a gRPC request: a "trailers-only" response (HTTP 200, empty body, with
    /// `grpc-status` and a percent-encoded `grpc-message` among the headers), plus the same
    /// `WWW-Authenticate` and `Retry-After` as over plain HTTP. gRPC clients report the status
    /// (tonic: `Code::Unauthenticated`) and message instead of a bare HTTP error.
    ///
    /// ```
    /// use portvakt::ValidationError;
    /// use portvakt::bearer::Rejection;
    ///
    /// let response = Rejection::new(ValidationError::MissingKid).to_grpc_response();
    /// assert_eq!(response.status(), 200);
    /// assert_eq!(response.headers()["content-type"], "application/grpc");
    /// assert_eq!(response.headers()["grpc-status"], "16");
    /// assert!(response.body().is_empty());
    /// ```
    pub fn to_grpc_response(&self) -> Response<String> {
        let mut response = Response::new(String::new());
        *response.headers_mut() = self.headers();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(
            HeaderName::from_static("grpc-status"),
            HeaderValue::from(self.grpc_status()),
        );
        if let Ok(message) = HeaderValue::try_from(grpc_percent_encode(&self.description())) {
            headers.insert(HeaderName::from_static("grpc-message"), message);
        }
        response
    }
}

/// Whether a request is gRPC: `Content-Type: application/grpc`, optionally followed by `+proto`,
/// `+json` or parameters.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::CONTENT_TYPE};
/// use portvakt::bearer::is_grpc;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc+proto"));
/// assert!(is_grpc(&headers));
/// headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpcfoo"));
/// assert!(!is_grpc(&headers));
/// ```
pub fn is_grpc(headers: &HeaderMap) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return false;
    };
    let value = value.as_bytes();
    value.len() >= GRPC.len()
        && value[..GRPC.len()].eq_ignore_ascii_case(GRPC)
        && matches!(value.get(GRPC.len()), None | Some(b'+' | b';'))
}

/// gRPC's `grpc-message` encoding: bytes outside `%x20-7E`, and `%` itself, as `%XX`.
fn grpc_percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.reason.fmt(f)
    }
}

impl std::error::Error for Rejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.reason {
            Reason::Header(e) => Some(e),
            Reason::Token(e) => Some(e),
        }
    }
}

impl From<BearerError> for Rejection {
    fn from(e: BearerError) -> Self {
        Rejection::new(e)
    }
}

impl From<ValidationError> for Rejection {
    fn from(e: ValidationError) -> Self {
        Rejection::new(e)
    }
}

impl From<Reason> for Rejection {
    fn from(reason: Reason) -> Self {
        Rejection::new(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &'static str) -> Result<&'static str, BearerError> {
        let value: &'static HeaderValue = Box::leak(Box::new(HeaderValue::from_static(value)));
        parse_authorization(value)
    }

    #[test]
    fn accepts_bearer_in_any_case_with_spaces() {
        assert_eq!(parse("Bearer a.b.c"), Ok("a.b.c"));
        assert_eq!(parse("bearer a.b.c"), Ok("a.b.c"));
        assert_eq!(parse("BEARER a.b.c"), Ok("a.b.c"));
        assert_eq!(parse("Bearer    a.b.c"), Ok("a.b.c"));
        assert_eq!(parse("  Bearer a.b.c\t"), Ok("a.b.c"));
        assert_eq!(parse("Bearer a-_~+/b=="), Ok("a-_~+/b=="));
    }

    #[test]
    fn refuses_everything_else_precisely() {
        assert_eq!(parse(""), Err(BearerError::Empty));
        assert_eq!(parse("   "), Err(BearerError::Empty));
        assert_eq!(parse("Basic dXNlcjpwYXNz"), Err(BearerError::NotBearer));
        assert_eq!(parse("Bearerx a.b.c"), Err(BearerError::NotBearer));
        assert_eq!(parse("Bearer\ta.b.c"), Err(BearerError::NotBearer));
        assert_eq!(parse("Bearer"), Err(BearerError::NoToken));
        assert_eq!(parse("Bearer    "), Err(BearerError::NoToken));
        assert_eq!(
            parse("Bearer Bearer a.b.c"),
            Err(BearerError::RepeatedScheme)
        );
        assert_eq!(parse("Bearer bearer"), Err(BearerError::RepeatedScheme));
        assert_eq!(parse("Bearer a.b.c d"), Err(BearerError::ExtraParts));
        assert_eq!(
            parse("Bearer a.b.c, Bearer d"),
            Err(BearerError::ExtraParts)
        );
        assert_eq!(parse("Bearer a.b.c,"), Err(BearerError::ExtraParts));
        assert_eq!(
            parse("Bearer \"a.b.c\""),
            Err(BearerError::InvalidCharacter)
        );
        assert_eq!(parse("Bearer a=b"), Err(BearerError::InvalidCharacter));
        assert_eq!(parse("Bearer ==="), Err(BearerError::InvalidCharacter));
        let obs_text = HeaderValue::from_bytes(b"Bearer a\xe5b").unwrap();
        assert_eq!(
            parse_authorization(&obs_text),
            Err(BearerError::InvalidCharacter)
        );
    }

    #[test]
    fn b64token_check_matches_the_grammar_for_every_byte() {
        let reference = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
        for b in 0..=255u8 {
            assert_eq!(is_b64token_byte(b), reference(b), "byte {b:#x}");
            // In every position of a long token, block or remainder.
            for at in [0, 31, 32, 70, 99] {
                let mut token = vec![b'a'; 100];
                token[at] = b;
                // `=` is padding, allowed at the end only.
                let expected = reference(b) || (b == b'=' && at == 99);
                assert_eq!(is_b64token(&token), expected, "byte {b:#x} at {at}");
            }
        }
        assert!(is_b64token(b"ab=="));
        assert!(!is_b64token(b"a=b"));
        assert!(!is_b64token(b"=="));
    }

    #[test]
    fn two_headers_are_refused() {
        let mut headers = HeaderMap::new();
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(bearer_token(&headers), Err(BearerError::Multiple));
    }

    #[test]
    fn challenge_escapes_realm_and_sanitizes_description_and_scope() {
        let scope = vec!["a\"b".to_owned(), String::new(), "c d".to_owned()];
        let challenge = Challenge::error(
            "my \"api\" \\ æ",
            ErrorCode::InsufficientScope,
            "x\"y\\z\nå…",
        )
        .with_scope(&scope);
        assert_eq!(
            challenge.to_string(),
            r#"Bearer realm="my \"api\" \\ ?", error="insufficient_scope", error_description="x'y/z??...", scope="a?b c?d""#
        );
        let long = "d".repeat(500);
        let rendered = Challenge::error("r", ErrorCode::InvalidToken, &long).to_string();
        assert!(rendered.ends_with(&format!("{}...\"", "d".repeat(200))));
        assert!(HeaderValue::from_str(&rendered).is_ok());
    }

    #[test]
    fn every_rejection_renders_a_valid_header() {
        let reasons: Vec<Reason> = vec![
            BearerError::Missing.into(),
            BearerError::InvalidCharacter.into(),
            ValidationError::WrongIssuer {
                found: Some("https://evil\"\\\u{7}…".to_owned()),
            }
            .into(),
            ValidationError::KeysUnavailable.into(),
            ValidationError::ConsumerNotAllowed { orgno: None }.into(),
        ];
        for reason in reasons {
            let rejection = Rejection::new(reason);
            let _ = rejection.www_authenticate();
            let grpc = rejection.to_grpc_response();
            assert!(grpc.headers().contains_key("grpc-message"));
        }
    }

    #[test]
    fn grpc_message_is_percent_encoded() {
        assert_eq!(grpc_percent_encode("a b%c…"), "a b%25c%E2%80%A6");
    }
}
