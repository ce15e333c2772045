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
//!
//! # One seam for every caller
//!
//! [`authorize`] (and its synchronous half [`authorize_now`]) reads the token, validates it and
//! applies a route's [`Policy`](crate::Policy): the tower layer, the axum extractors and the
//! CLI's enforcing proxy all call it, and differ only in what they do with the answer.

mod authorize;
mod challenge;
mod header;
mod rejection;
#[cfg(test)]
mod tests;

pub use authorize::{Authorization, Pending, authorize, authorize_now};
pub use challenge::{Challenge, ErrorCode};
pub use header::{BearerError, bearer_token, is_grpc, parse_authorization};
pub use rejection::{DEFAULT_REALM, ErrorBody, RETRY_AFTER_SECONDS, Reason, Rejection};
