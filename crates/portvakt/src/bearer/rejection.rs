//! A refused request and its answer: status, challenge, `Retry-After`, JSON body or gRPC status.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::{BearerError, Challenge, ErrorCode};
use crate::{ErrorClass, ValidationError};

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

    /// How the refusal is answered: [`BearerError::class`] or [`ValidationError::class`]. The
    /// status, the challenge's error code and the body's `error` all follow from it.
    ///
    /// ```
    /// use portvakt::{ErrorClass, ValidationError};
    /// use portvakt::bearer::{BearerError, Reason};
    /// assert_eq!(Reason::Header(BearerError::Missing).class(), ErrorClass::MissingToken);
    /// assert_eq!(Reason::Token(ValidationError::KeysUnavailable).class(), ErrorClass::Unavailable);
    /// ```
    pub fn class(&self) -> ErrorClass {
        match self {
            Reason::Header(e) => e.class(),
            Reason::Token(e) => e.class(),
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

    /// The HTTP status: 401, 400, 403 or 503 (see the [module documentation](crate::bearer)).
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
        self.class().status()
    }

    /// How the refusal is answered (see [`Reason::class`]).
    ///
    /// ```
    /// use portvakt::ErrorClass;
    /// use portvakt::bearer::{BearerError, Rejection};
    /// assert_eq!(Rejection::new(BearerError::Empty).class(), ErrorClass::BadRequest);
    /// ```
    pub fn class(&self) -> ErrorClass {
        self.reason.class()
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
        match self.class() {
            ErrorClass::BadRequest => Some(ErrorCode::InvalidRequest),
            ErrorClass::InvalidToken => Some(ErrorCode::InvalidToken),
            ErrorClass::Forbidden => Some(ErrorCode::InsufficientScope),
            ErrorClass::MissingToken | ErrorClass::Unavailable => None,
        }
    }

    fn is_unavailable(&self) -> bool {
        self.class() == ErrorClass::Unavailable
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

/// gRPC's `grpc-message` encoding: bytes outside `%x20-7E`, and `%` itself, as `%XX`.
pub(super) fn grpc_percent_encode(text: &str) -> String {
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
