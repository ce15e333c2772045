//! axum extractors: [`Maskinporten`] gives a handler the verified token, and
//! `Option<Maskinporten>` serves routes that also admit anonymous callers.
//!
//! ```
//! use axum::{Json, Router, routing::get};
//! use portvakt::extract::Maskinporten;
//! use portvakt::layer::MaskinportenLayer;
//! # use portvakt::{Config, KeySet, Validator};
//! # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
//! # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
//!
//! async fn read(Maskinporten(token): Maskinporten) -> Json<serde_json::Value> {
//!     Json(serde_json::json!({
//!         "consumer": token.consumer_orgno(),
//!         "client_id": token.client_id(),
//!         "scopes": token.scopes().iter().collect::<Vec<_>>(),
//!     }))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/read", get(read))
//!     .route_layer(MaskinportenLayer::new(validator).require_scope("nav:arbeid:some.scope.read"));
//! ```
//!
//! # Where the token comes from
//!
//! In order: the [`VerifiedToken`] a [`MaskinportenLayer`](crate::layer::MaskinportenLayer)
//! stored in the request extensions (the usual setup: the layer also applies the route's
//! policy); otherwise a [`Validator`] in the request extensions (`.layer(Extension(validator))`),
//! with which the extractor validates the `Authorization` header itself, applying no policy
//! (check one in the handler with [`Maskinporten::require`]). State is not consulted, so the
//! extractors work with any router state.
//!
//! When neither is there, the route is misconfigured: the extractor answers 500 with a JSON
//! body that says so and what to add, and logs an error, rather than refusing the caller with
//! a 401 they cannot fix.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};

use crate::bearer::{BearerError, ErrorBody, Reason, Rejection, authorize};
use crate::layer::{Anonymous, Shared};
use crate::policy::Policy;
use crate::token::VerifiedToken;
use crate::validator::Validator;

/// What a misconfigured route answers.
const MISCONFIGURED: &str = "portvakt: this route reads a Maskinporten token, but no MaskinportenLayer ran for it and no Validator is in the request extensions; add `.route_layer(MaskinportenLayer::new(validator))` or `.layer(Extension(validator))` to the router";

/// The verified Maskinporten token of a request; dereferences to [`VerifiedToken`] and so to
/// its [`Claims`](crate::Claims): `consumer_orgno()`, `supplier()`, `client_id()`, `scopes()`,
/// `authorization_details()`.
///
/// As `Option<Maskinporten>` it admits anonymous callers: no `Authorization` header gives
/// `None`, while a header with a bad token is still refused (401). That needs a layer with
/// [`allow_anonymous`](crate::layer::MaskinportenLayer::allow_anonymous), or a [`Validator`] in
/// the extensions.
///
/// ```
/// use axum::{Extension, Router, routing::get};
/// use portvakt::extract::Maskinporten;
/// # use portvakt::{Config, KeySet, Validator};
/// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
/// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
///
/// async fn greet(token: Option<Maskinporten>) -> String {
///     match token {
///         Some(token) => format!("hello {}", token.consumer_orgno().unwrap_or("?")),
///         None => "hello, anonymous".to_owned(),
///     }
/// }
///
/// // Without a layer, the extractor validates with the Validator in the extensions.
/// let app: Router = Router::new().route("/", get(greet)).layer(Extension(validator));
/// ```
#[derive(Debug, Clone)]
pub struct Maskinporten(pub VerifiedToken);

impl Maskinporten {
    /// Checks a policy in the handler, for requirements that depend on the request (the
    /// layer's policy is fixed per route). Refuses with the layer's status and challenge (403
    /// `insufficient_scope`) and its JSON body, under the default realm (`maskinporten`): a
    /// layer's `.realm(..)` and `.on_rejection(..)` shape what the layer refuses, not this;
    /// to answer this refusal otherwise, map the [`MaskinportenRejection`].
    ///
    /// ```
    /// use axum::http::Method;
    /// use portvakt::Policy;
    /// use portvakt::extract::{Maskinporten, MaskinportenRejection};
    ///
    /// async fn handler(method: Method, token: Maskinporten) -> Result<String, MaskinportenRejection> {
    ///     if method == Method::POST {
    ///         token.require(&Policy::new().require_scope("nav:arbeid:some.scope.write"))?;
    ///     }
    ///     Ok(format!("ok {:?}", token.client_id()))
    /// }
    /// # let _: axum::routing::MethodRouter = axum::routing::any(handler);
    /// ```
    pub fn require(&self, policy: &Policy) -> Result<(), MaskinportenRejection> {
        policy
            .check(&self.0)
            .map_err(|e| MaskinportenRejection::refused(Rejection::new(e), None))
    }

    /// The verified token.
    ///
    /// ```
    /// # use portvakt::extract::Maskinporten;
    /// fn orgno(token: Maskinporten) -> Option<String> {
    ///     token.into_inner().consumer_orgno().map(str::to_owned)
    /// }
    /// ```
    pub fn into_inner(self) -> VerifiedToken {
        self.0
    }
}

impl Deref for Maskinporten {
    type Target = VerifiedToken;

    fn deref(&self) -> &VerifiedToken {
        &self.0
    }
}

/// What the extensions say about a request's token.
enum Found {
    Token(VerifiedToken),
    /// No token; the layer that admitted the request anonymously, if one did.
    Anonymous(Option<Arc<Shared>>),
}

async fn find(parts: &mut Parts) -> Result<Found, MaskinportenRejection> {
    if let Some(token) = parts.extensions.get::<VerifiedToken>() {
        return Ok(Found::Token(token.clone()));
    }
    if let Some(Anonymous(shared)) = parts.extensions.get::<Anonymous>() {
        return Ok(Found::Anonymous(Some(Arc::clone(shared))));
    }
    let Some(validator) = parts.extensions.get::<Validator>().cloned() else {
        tracing::error!("{MISCONFIGURED}");
        return Err(MaskinportenRejection(Kind::Misconfigured));
    };
    // No policy here: the handler checks one with `Maskinporten::require`.
    match authorize(&validator, &parts.headers, &Policy::new()).await {
        Ok(verified) => {
            // Later extractors of the same request reuse it.
            parts.extensions.insert(verified.clone());
            Ok(Found::Token(verified))
        }
        Err(Reason::Header(BearerError::Missing)) => Ok(Found::Anonymous(None)),
        Err(reason) => Err(MaskinportenRejection::refused(Rejection::new(reason), None)),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Maskinporten {
    type Rejection = MaskinportenRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match find(parts).await? {
            Found::Token(token) => Ok(Maskinporten(token)),
            Found::Anonymous(shared) => {
                let rejection = match &shared {
                    Some(shared) => shared.rejection(BearerError::Missing.into()),
                    None => Rejection::new(BearerError::Missing),
                };
                Err(MaskinportenRejection::refused(rejection, shared))
            }
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Maskinporten {
    type Rejection = MaskinportenRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match find(parts).await? {
            Found::Token(token) => Ok(Some(Maskinporten(token))),
            Found::Anonymous(_) => Ok(None),
        }
    }
}

/// Why [`Maskinporten`] could not be extracted. As a response: the RFC 6750 answer of the
/// [`Rejection`] (through the layer's [`on_rejection`](crate::layer::MaskinportenLayer::on_rejection)
/// hook when the layer admitted the request anonymously), or 500 with an explanation when the
/// route is misconfigured.
///
/// ```
/// use axum::response::IntoResponse;
/// use portvakt::ValidationError;
/// use portvakt::bearer::Rejection;
/// use portvakt::extract::MaskinportenRejection;
///
/// let refused = MaskinportenRejection::from(Rejection::new(ValidationError::MissingKid));
/// assert_eq!(refused.status(), 401);
/// assert!(!refused.is_misconfigured());
/// let response = refused.into_response();
/// assert!(response.headers().contains_key("www-authenticate"));
/// ```
pub struct MaskinportenRejection(Kind);

enum Kind {
    Refused {
        rejection: Rejection,
        layer: Option<Arc<Shared>>,
    },
    Misconfigured,
}

impl MaskinportenRejection {
    fn refused(rejection: Rejection, layer: Option<Arc<Shared>>) -> Self {
        MaskinportenRejection(Kind::Refused { rejection, layer })
    }

    /// The refusal, unless the route is misconfigured.
    ///
    /// ```
    /// # use portvakt::bearer::{BearerError, Rejection};
    /// # use portvakt::extract::MaskinportenRejection;
    /// let refused = MaskinportenRejection::from(Rejection::new(BearerError::Missing));
    /// assert_eq!(refused.rejection().unwrap().code(), "missing_token");
    /// ```
    pub fn rejection(&self) -> Option<&Rejection> {
        match &self.0 {
            Kind::Refused { rejection, .. } => Some(rejection),
            Kind::Misconfigured => None,
        }
    }

    /// True when no layer ran and no [`Validator`] is in the extensions: a bug in the
    /// application, answered 500.
    ///
    /// ```
    /// # use portvakt::bearer::{BearerError, Rejection};
    /// # use portvakt::extract::MaskinportenRejection;
    /// assert!(!MaskinportenRejection::from(Rejection::new(BearerError::Missing)).is_misconfigured());
    /// ```
    pub fn is_misconfigured(&self) -> bool {
        matches!(self.0, Kind::Misconfigured)
    }

    /// The status of the answer.
    ///
    /// ```
    /// # use portvakt::bearer::{BearerError, Rejection};
    /// # use portvakt::extract::MaskinportenRejection;
    /// assert_eq!(MaskinportenRejection::from(Rejection::new(BearerError::Multiple)).status(), 400);
    /// ```
    pub fn status(&self) -> StatusCode {
        match &self.0 {
            Kind::Refused { rejection, .. } => rejection.status(),
            Kind::Misconfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<Rejection> for MaskinportenRejection {
    fn from(rejection: Rejection) -> Self {
        MaskinportenRejection::refused(rejection, None)
    }
}

impl fmt::Debug for MaskinportenRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Refused { rejection, .. } => f
                .debug_tuple("MaskinportenRejection")
                .field(rejection)
                .finish(),
            Kind::Misconfigured => f.write_str("MaskinportenRejection(Misconfigured)"),
        }
    }
}

impl fmt::Display for MaskinportenRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Refused { rejection, .. } => rejection.fmt(f),
            Kind::Misconfigured => f.write_str(MISCONFIGURED),
        }
    }
}

impl std::error::Error for MaskinportenRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Kind::Refused { rejection, .. } => Some(rejection),
            Kind::Misconfigured => None,
        }
    }
}

impl IntoResponse for MaskinportenRejection {
    fn into_response(self) -> Response {
        match self.0 {
            Kind::Refused {
                rejection,
                layer: Some(layer),
            } => layer.http_response(&rejection).map(Body::from),
            Kind::Refused {
                rejection,
                layer: None,
            } => rejection.to_response().map(Body::from),
            Kind::Misconfigured => {
                let body = ErrorBody {
                    error: "server_error".into(),
                    error_description: MISCONFIGURED.to_owned(),
                };
                let mut response = Response::new(Body::from(body.to_json()));
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }
        }
    }
}
