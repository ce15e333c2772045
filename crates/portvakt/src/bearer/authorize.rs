//! The one authorization seam: a request's headers and a route's [`Policy`] in, a
//! [`VerifiedToken`] or the [`Reason`] to refuse out. The tower layer, the axum extractors and
//! the CLI's enforcing proxy all call it, so "read the Bearer token, validate it, apply the
//! policy" is written once.

use std::borrow::Cow;

use http::HeaderMap;

use super::{Reason, bearer_token, header};
use crate::{Policy, ValidationError, Validator, VerifiedToken};

/// What [`authorize_now`] decided without waiting.
///
/// ```
/// # use portvakt::{Config, KeySet, Validator};
/// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
/// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
/// use http::HeaderMap;
/// use portvakt::Policy;
/// use portvakt::bearer::{Authorization, BearerError, Reason, authorize_now};
///
/// let headers = HeaderMap::new();
/// match authorize_now(&validator, &headers, &Policy::new()) {
///     Authorization::Refused(Reason::Header(BearerError::Missing)) => {} // no Authorization
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug)]
#[must_use = "an Authorization is a decision: admit, refuse or finish it"]
pub enum Authorization<'h> {
    /// The token is valid and meets the policy: admit the request.
    Granted(VerifiedToken),
    /// Refuse the request; [`Rejection::new(reason)`](super::Rejection::new) gives the answer.
    Refused(Reason),
    /// The token names a key the validator does not hold, or it holds no keys yet: finish
    /// with [`Pending::finish`], which may wait for one rate-limited, single-flight key
    /// refresh.
    Pending(Pending<'h>),
}

/// A token that needs keys the validator does not hold yet; see [`Authorization::Pending`].
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
/// use portvakt::bearer::{Authorization, authorize_now};
/// use portvakt::Policy;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # use portvakt::{Config, KeySet, Validator};
/// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
/// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
/// // A well-formed token whose `kid` (`k1`) this validator does not hold.
/// let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.e30.c2ln";
/// let mut headers = HeaderMap::new();
/// headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
/// let Authorization::Pending(pending) = authorize_now(&validator, &headers, &Policy::new()) else {
///     panic!("expected to wait for keys");
/// };
/// let pending = pending.into_owned(); // e.g. to move into a `'static` future
/// let refused = pending.finish(&validator, &Policy::new()).await.unwrap_err();
/// assert_eq!(refused.code(), "unknown_kid"); // fixed keys: no refresh to wait for
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Pending<'h> {
    token: Cow<'h, str>,
}

impl Pending<'_> {
    /// The same, owning its token, for a future that outlives the request's headers.
    pub fn into_owned(self) -> Pending<'static> {
        Pending {
            token: Cow::Owned(self.token.into_owned()),
        }
    }

    /// Validates the token, waiting for a key refresh when its key is unknown, and applies
    /// `policy`. Pass the validator and policy given to [`authorize_now`].
    pub async fn finish(
        self,
        validator: &Validator,
        policy: &Policy,
    ) -> Result<VerifiedToken, Reason> {
        validator
            .validate_with(&self.token, policy)
            .await
            .map_err(Reason::Token)
    }
}

/// Authorizes a request as far as is possible without waiting: reads the Bearer token from
/// `headers` ([`bearer_token`]), validates it against the keys held now (a cached token costs
/// a lookup and a clock check) and applies `policy`.
///
/// Only a token whose key is not held (or any token before the first keys arrive) is
/// [`Pending`]; everything else is decided here, synchronously. [`authorize`] is this plus the
/// wait. A missing header is `Refused(Reason::Header(BearerError::Missing))`; a caller that
/// admits anonymous requests matches on it.
///
/// ```
/// # use portvakt::{Config, KeySet, Validator};
/// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
/// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
/// use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
/// use portvakt::bearer::{Authorization, BearerError, Reason, authorize_now};
/// use portvakt::Policy;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer Bearer x"));
/// let decision = authorize_now(&validator, &headers, &Policy::new());
/// assert!(matches!(decision, Authorization::Refused(Reason::Header(BearerError::RepeatedScheme))));
/// ```
pub fn authorize_now<'h>(
    validator: &Validator,
    headers: &'h HeaderMap,
    policy: &Policy,
) -> Authorization<'h> {
    // A token the cache holds passed every rule of `bearer_token` when it was first seen: its
    // bytes are base64url and dots, so a b64token and never `bearer`. Its verdict needs no
    // second look at them (the b64token and UTF-8 checks: about 3,000 instructions for a
    // 750-byte token, callgrind, some 6 % of the proxy's whole path), and is the one
    // `validate_now` below would give.
    if let Some(credentials) = header::bearer_credentials(headers)
        && let Some(decided) = validator.cached_now(credentials)
    {
        return match decided.and_then(|verified| policy.check(&verified).map(|()| verified)) {
            Ok(verified) => Authorization::Granted(verified),
            Err(e) => Authorization::Refused(Reason::Token(e)),
        };
    }
    let token = match bearer_token(headers) {
        Ok(token) => token,
        Err(e) => return Authorization::Refused(Reason::Header(e)),
    };
    let verified = match validator.validate_now(token) {
        Ok(verified) => verified,
        Err(ValidationError::UnknownKid { .. } | ValidationError::KeysUnavailable) => {
            return Authorization::Pending(Pending {
                token: Cow::Borrowed(token),
            });
        }
        Err(e) => return Authorization::Refused(Reason::Token(e)),
    };
    match policy.check(&verified) {
        Ok(()) => Authorization::Granted(verified),
        Err(e) => Authorization::Refused(Reason::Token(e)),
    }
}

/// Authorizes a request: [`authorize_now`], then, for a token whose key is not held,
/// [`Pending::finish`]. `Err` carries why; [`Rejection::new(reason)`](super::Rejection::new)
/// `.with_realm(..)` turns it into the RFC 6750 answer (status, `WWW-Authenticate`, body), and
/// [`Reason::code`] and [`Reason::class`] label metrics.
///
/// ```
/// use http::HeaderMap;
/// use portvakt::bearer::{Rejection, authorize};
/// use portvakt::{ErrorClass, Policy};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # use portvakt::{Config, KeySet, Validator};
/// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
/// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
/// let policy = Policy::new().require_scope("nav:arbeid:some.scope.read");
/// let reason = authorize(&validator, &HeaderMap::new(), &policy).await.unwrap_err();
/// assert_eq!(reason.class(), ErrorClass::MissingToken);
/// let response = Rejection::new(reason).with_realm("my-api").to_response();
/// assert_eq!(response.status(), 401);
/// assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="my-api""#);
/// # }
/// ```
pub async fn authorize(
    validator: &Validator,
    headers: &HeaderMap,
    policy: &Policy,
) -> Result<VerifiedToken, Reason> {
    match authorize_now(validator, headers, policy) {
        Authorization::Granted(verified) => Ok(verified),
        Authorization::Refused(reason) => Err(reason),
        Authorization::Pending(pending) => pending.finish(validator, policy).await,
    }
}
