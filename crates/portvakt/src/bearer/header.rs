//! Reading the `Authorization` header: exactly one `Bearer <b64token>` (RFC 6750 section 2.1,
//! RFC 7235), and telling gRPC requests apart.

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};

use crate::ErrorClass;

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

error_codes! {
    BearerError;
    Missing => "missing_token", MissingToken;
    Multiple => "multiple_authorization", BadRequest;
    Empty => "empty_authorization", BadRequest;
    NotBearer => "not_bearer", MissingToken;
    NoToken => "no_token", BadRequest;
    RepeatedScheme => "repeated_scheme", BadRequest;
    ExtraParts => "extra_parts", BadRequest;
    InvalidCharacter => "invalid_character", BadRequest;
}

impl BearerError {
    /// A stable, short, machine-readable code, e.g. `missing_token`. Safe as a metric label.
    ///
    /// ```
    /// assert_eq!(portvakt::bearer::BearerError::Multiple.code(), "multiple_authorization");
    /// ```
    pub fn code(&self) -> &'static str {
        self.entry().0
    }

    /// How the refusal is answered: [`ErrorClass::MissingToken`] (401, bare challenge) for no
    /// Bearer credentials, [`ErrorClass::BadRequest`] (400 `invalid_request`) otherwise.
    ///
    /// ```
    /// use portvakt::ErrorClass;
    /// use portvakt::bearer::BearerError;
    /// assert_eq!(BearerError::NotBearer.class(), ErrorClass::MissingToken);
    /// assert_eq!(BearerError::Empty.class(), ErrorClass::BadRequest);
    /// ```
    pub fn class(&self) -> ErrorClass {
        self.entry().1
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
        self.class() == ErrorClass::BadRequest
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
    let token = credentials(value)?;
    if !is_b64token(token) {
        return Err(classify_malformed(token));
    }
    if token.eq_ignore_ascii_case(b"bearer") {
        return Err(BearerError::RepeatedScheme);
    }
    // Only ASCII is left, so this cannot fail; no unwrap on the input path all the same.
    std::str::from_utf8(token).map_err(|_| BearerError::InvalidCharacter)
}

/// The credentials of the one `Authorization` header when it reads `Bearer <credentials>`,
/// before anything about the credentials themselves is checked: what [`bearer_token`] would
/// judge as a b64token. `None` where `bearer_token` refuses the header itself.
pub(super) fn bearer_credentials(headers: &HeaderMap) -> Option<&[u8]> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    credentials(value).ok()
}

/// A header value's credentials after `Bearer` and its spaces (see [`parse_authorization`]).
fn credentials(value: &HeaderValue) -> Result<&[u8], BearerError> {
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
    Ok(token)
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
pub(super) fn is_b64token(token: &[u8]) -> bool {
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
pub(super) fn is_b64token_byte(b: u8) -> bool {
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
