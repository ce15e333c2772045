//! RFC 6750 `WWW-Authenticate` challenges and their error codes.

use std::fmt;

use http::{HeaderValue, StatusCode};

/// The longest `error_description` put in a header; the JSON body carries the full text.
const MAX_HEADER_DESCRIPTION: usize = 200;
/// The longest realm put in a header.
const MAX_REALM: usize = 100;

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
