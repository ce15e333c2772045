//! Errors: the OAuth error responses the token endpoint sends, and start-up errors.

use std::fmt;
use std::path::PathBuf;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The OAuth 2.0 error codes the issuer answers with (RFC 6749 section 5.2), the ones
/// Maskinporten uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request itself is malformed: a parameter is missing, repeated or of the wrong form.
    InvalidRequest,
    /// The client could not be authenticated: unknown `client_id`, unregistered `kid`, or a
    /// signature that does not verify.
    InvalidClient,
    /// The assertion is not acceptable: wrong `aud`, stale `iat`, too long a lifetime, a
    /// reused `jti`, a claim Maskinporten does not accept.
    InvalidGrant,
    /// A requested scope is unknown, disabled, or not granted to the organization.
    InvalidScope,
    /// A `grant_type` other than the JWT-bearer grant.
    UnsupportedGrantType,
    /// The issuer cannot answer now (e.g. its replay memory is full).
    TemporarilyUnavailable,
    /// The issuer failed (e.g. signing failed).
    ServerError,
}

impl ErrorCode {
    /// The code as it appears in `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::ServerError => "server_error",
        }
    }

    /// The HTTP status the issuer answers with. Every client-caused error is 400, as
    /// Maskinporten answers (RFC 6749 permits 401 for `invalid_client` only when the client
    /// authenticated with an `Authorization` header, which the JWT-bearer grant does not use).
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused token request: `{"error": code, "error_description": description}`.
///
/// The description says exactly what failed, e.g. `organization 999999999 is not a consumer of
/// scope "nav:arbeid:some.scope.write"`. It never contains a token or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// The OAuth error code.
    pub code: ErrorCode,
    /// What failed, for people.
    pub description: String,
}

impl OAuthError {
    /// An error with this code and description.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
        }
    }

    pub(crate) fn request(description: impl Into<String>) -> Self {
        OAuthError::new(ErrorCode::InvalidRequest, description)
    }

    pub(crate) fn client(description: impl Into<String>) -> Self {
        OAuthError::new(ErrorCode::InvalidClient, description)
    }

    pub(crate) fn grant(description: impl Into<String>) -> Self {
        OAuthError::new(ErrorCode::InvalidGrant, description)
    }

    pub(crate) fn scope(description: impl Into<String>) -> Self {
        OAuthError::new(ErrorCode::InvalidScope, description)
    }

    /// The JSON body Maskinporten sends.
    pub fn to_json(&self) -> serde_json::Value {
        json!({"error": self.code.as_str(), "error_description": self.description})
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (self.code.status(), Json(self.to_json())).into_response();
        no_store(&mut response);
        response
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, as RFC 6749 section 5.1 requires for
/// token responses.
pub(crate) fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The issuer could not be set up or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// The manifest has errors; an issuer must not serve a manifest NAIS would refuse.
    #[error(
        "{file} has {count} error(s); fix them (see `portvakt manifest check {file}`) before serving it"
    )]
    ManifestErrors {
        /// The manifest's file name.
        file: String,
        /// How many errors.
        count: usize,
    },
    /// A signing key could not be generated or used.
    #[error("issuer signing key: {0}")]
    Key(#[from] portvakt::SigningError),
    /// The listen address could not be bound or read.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The issuer URL is not an absolute http(s) URL ending in `/`.
    #[error("issuer URL {url:?} {reason}")]
    IssuerUrl {
        /// What was given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting is out of its sensible range.
    #[error("{0}")]
    Setting(String),
}

/// A client registration could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The `client_id` is empty, too long or has control characters.
    #[error(
        "client_id {0:?} is not usable: use 1 to 200 bytes (UTF-8) of printable characters, no whitespace"
    )]
    InvalidClientId(String),
    /// The organization number is not nine digits.
    #[error("client {client_id}: organization number {orgno:?} is not nine digits")]
    InvalidOrgno {
        /// The client.
        client_id: String,
        /// What was given.
        orgno: String,
    },
    /// The same `client_id` twice.
    #[error("client {0} is registered twice")]
    Duplicate(String),
    /// None of the client's keys is a usable RSA public key.
    #[error("client {client_id} has no usable key: {reason}")]
    NoUsableKey {
        /// The client.
        client_id: String,
        /// Why each key was refused.
        reason: String,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A file is not the expected JSON.
    #[error("{}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A `CLIENT_ID:ORGNO:PATH` registration is malformed.
    #[error("client registration {spec:?}: {reason}")]
    BadSpec {
        /// What was given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
}
