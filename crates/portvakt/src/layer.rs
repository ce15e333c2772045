//! A tower [`Layer`] that admits only requests with a valid Maskinporten token.
//!
//! [`MaskinportenLayer`] wraps any service of `http::Request<B>`: an axum `Router` (with
//! `layer` or `route_layer`), a plain hyper service, or a tonic server (gRPC carries the token in
//! the `authorization` metadata, which is the HTTP/2 header). For every request it reads the
//! Bearer token ([`bearer_token`](crate::bearer::bearer_token)), validates it with the shared [`Validator`], applies the
//! route's [`Policy`], stores the [`VerifiedToken`] in the request extensions and calls the inner
//! service. A refused request is answered at once, without calling the inner service, with the
//! RFC 6750 answer of [`Rejection`]; gRPC requests get a gRPC status instead.
//!
//! ```
//! use axum::{Extension, Router, routing::get};
//! use portvakt::layer::MaskinportenLayer;
//! use portvakt::{Config, KeySet, Validator, VerifiedToken};
//!
//! # fn validator() -> Validator {
//! #     let config = Config::builder().issuer("https://test.maskinporten.no/")
//! #         .jwks_uri("https://test.maskinporten.no/jwk").build().unwrap();
//! #     Validator::with_keys(&config, "https://test.maskinporten.no/", KeySet::default())
//! # }
//! let validator: Validator = validator(); // Validator::new(Config::from_env()?)? in production
//! let app: Router = Router::new()
//!     .route("/read", get(|Extension(token): Extension<VerifiedToken>| async move {
//!         format!("hello {}", token.consumer_orgno().unwrap_or("?"))
//!     }))
//!     .route_layer(MaskinportenLayer::new(validator).require_scope("nav:arbeid:some.scope.read"));
//! ```
//!
//! # The response body
//!
//! The service answers `http::Response<ResponseBody<B>>`, where `B` is the inner service's body
//! and [`ResponseBody`] is either that body, untouched, or portvakt's refusal. This puts no
//! bound on `B` beyond being an `http_body::Body` with `Bytes` chunks, so the same layer fits
//! axum (whose `IntoResponse` takes any such body), hyper's `serve_connection`, tonic's
//! `Server::layer`, `Incoming` bodies of a proxy and boxed bodies alike. The alternative, giving
//! back the inner body type, would require building a refusal in every body type (`Default`
//! loses the JSON; `From<Bytes>` is not implemented by hyper's `Incoming`, `BoxBody`, `Empty` or
//! tonic's body). The cost is that axum boxes the wrapper once per response, a few nanoseconds.
//!
//! # Stacking
//!
//! Layers compose: an outer layer admitting any valid token and an inner `route_layer`
//! requiring a scope. The inner layer reuses the [`VerifiedToken`] the outer one stored only
//! when that token was verified by the inner layer's own [`Validator`] or a clone of it
//! ([`VerifiedToken::verified_by`]), and then applies just its own policy (scopes, consumers,
//! audience): the cost of a reused token is the policy check. A token verified by any other
//! validator, even one configured the same way for the same issuer, is not trusted: the inner
//! layer validates the `Authorization` header again with its own validator. Build the layers
//! from clones of one validator to get the reuse.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::bearer::{
    Authorization, BearerError, DEFAULT_REALM, Pending, Reason, Rejection, authorize_now, is_grpc,
};
use crate::policy::Policy;
use crate::scope::ScopeRequirement;
use crate::token::VerifiedToken;
use crate::validator::Validator;

/// Builds the application's refusal response; see [`MaskinportenLayer::on_rejection`].
type RejectionHook = Arc<dyn Fn(&Rejection) -> Response<Bytes> + Send + Sync>;

/// Validates the Bearer token of every request; see the [module documentation](self).
///
/// Cheap to clone: the settings live behind one `Arc`. Build one per route (or per group of
/// routes) from one shared [`Validator`].
///
/// ```
/// use portvakt::layer::MaskinportenLayer;
/// use portvakt::{Config, KeySet, Policy, ScopeRequirement, Validator};
///
/// # let config = Config::builder().issuer("https://test.maskinporten.no/")
/// #     .jwks_uri("https://test.maskinporten.no/jwk").build().unwrap();
/// # let validator = Validator::with_keys(&config, "https://test.maskinporten.no/", KeySet::default());
/// let any_valid_token = MaskinportenLayer::new(validator.clone()).realm("my-api");
/// let write = MaskinportenLayer::new(validator.clone())
///     .require_scope("nav:arbeid:some.scope.write")
///     .allow_consumers(["889640782"]);
/// let read_or_write = MaskinportenLayer::new(validator).require(
///     Policy::new().scopes(ScopeRequirement::any_of([
///         "nav:arbeid:some.scope.read",
///         "nav:arbeid:some.scope.write",
///     ])),
/// );
/// # let _ = (any_valid_token, write, read_or_write);
/// ```
#[derive(Clone)]
pub struct MaskinportenLayer {
    shared: Arc<Shared>,
}

/// The settings every service of one layer shares.
#[derive(Clone)]
pub(crate) struct Shared {
    validator: Validator,
    policy: Policy,
    realm: Arc<str>,
    anonymous: bool,
    grpc: bool,
    on_rejection: Option<RejectionHook>,
}

impl fmt::Debug for MaskinportenLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskinportenLayer")
            .field("validator", &self.validator)
            .field("policy", &self.policy)
            .field("realm", &self.realm)
            .field("allow_anonymous", &self.anonymous)
            .field("grpc", &self.grpc)
            .field("on_rejection", &self.on_rejection.is_some())
            .finish()
    }
}

impl MaskinportenLayer {
    /// A layer that admits any valid token of `validator`'s issuer. Add requirements with
    /// [`require`](Self::require) or the shortcuts below.
    ///
    /// ```no_run
    /// use portvakt::{Config, Validator, layer::MaskinportenLayer};
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let validator = Validator::new(Config::from_env()?)?;
    /// let layer = MaskinportenLayer::new(validator);
    /// # Ok(()) }
    /// ```
    pub fn new(validator: Validator) -> Self {
        MaskinportenLayer {
            shared: Arc::new(Shared {
                validator,
                policy: Policy::new(),
                realm: Arc::from(DEFAULT_REALM),
                anonymous: false,
                grpc: true,
                on_rejection: None,
            }),
        }
    }

    fn edit(mut self, change: impl FnOnce(&mut Shared)) -> Self {
        change(Arc::make_mut(&mut self.shared));
        self
    }

    /// Applies `policy` (scopes, consumers, audience) to every request, replacing any policy
    /// set before.
    ///
    /// ```
    /// # use portvakt::{Config, KeySet, Validator};
    /// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
    /// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
    /// use portvakt::{Policy, layer::MaskinportenLayer};
    /// let layer = MaskinportenLayer::new(validator).require(
    ///     Policy::new().require_scope("nav:arbeid:some.scope.read").require_audience("https://api.nav.no/"),
    /// );
    /// assert_eq!(layer.policy().scope_requirement().scopes(), ["nav:arbeid:some.scope.read"]);
    /// ```
    pub fn require(self, policy: Policy) -> Self {
        self.edit(|s| s.policy = policy)
    }

    /// Requires one more scope (all scopes required this way must be granted).
    ///
    /// ```
    /// # use portvakt::{Config, KeySet, Validator};
    /// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
    /// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
    /// use portvakt::layer::MaskinportenLayer;
    /// let layer = MaskinportenLayer::new(validator).require_scope("nav:arbeid:some.scope.read");
    /// ```
    pub fn require_scope(self, scope: impl Into<String>) -> Self {
        self.edit(|s| s.policy = std::mem::take(&mut s.policy).require_scope(scope))
    }

    /// Adds a scope requirement, [`ScopeRequirement::all_of`] or [`ScopeRequirement::any_of`]:
    /// the token must meet it and every requirement added before (`require_scope` included).
    ///
    /// ```
    /// # use portvakt::{Config, KeySet, Validator};
    /// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
    /// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
    /// use portvakt::{ScopeRequirement, layer::MaskinportenLayer};
    /// let layer = MaskinportenLayer::new(validator)
    ///     .scopes(ScopeRequirement::any_of(["nav:arbeid:a.read", "nav:arbeid:a.write"]));
    /// ```
    pub fn scopes(self, requirement: ScopeRequirement) -> Self {
        self.edit(|s| s.policy = std::mem::take(&mut s.policy).scopes(requirement))
    }

    /// Admits only consumers with one of these organization numbers (403 otherwise).
    ///
    /// ```
    /// # use portvakt::{Config, KeySet, Validator};
    /// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
    /// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
    /// use portvakt::layer::MaskinportenLayer;
    /// let layer = MaskinportenLayer::new(validator).allow_consumers(["889640782", "974761076"]);
    /// ```
    pub fn allow_consumers<I: IntoIterator<Item = S>, S: Into<String>>(self, orgnos: I) -> Self {
        self.edit(|s| s.policy = std::mem::take(&mut s.policy).allow_consumers(orgnos))
    }

    /// Requires an audience-restricted token for `audience` (401 `invalid_token` otherwise).
    ///
    /// ```
    /// # use portvakt::{Config, KeySet, Validator};
    /// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
    /// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
    /// use portvakt::layer::MaskinportenLayer;
    /// let layer = MaskinportenLayer::new(validator).require_audience("https://my-api.nav.no/");
    /// ```
    pub fn require_audience(self, audience: impl Into<String>) -> Self {
        self.edit(|s| s.policy = std::mem::take(&mut s.policy).require_audience(audience))
    }

    /// The realm named in `WWW-Authenticate` (default [`DEFAULT_REALM`], `maskinporten`).
    ///
    /// ```
    /// # use portvakt::{Config, KeySet, Validator};
    /// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
    /// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
    /// use portvakt::layer::MaskinportenLayer;
    /// let layer = MaskinportenLayer::new(validator).realm("my-api");
    /// ```
    pub fn realm(self, realm: impl AsRef<str>) -> Self {
        self.edit(|s| s.realm = Arc::from(realm.as_ref()))
    }

    /// Lets requests without an `Authorization` header through, without a token in the
    /// extensions, for routes that also serve anonymous callers. A header that is present is
    /// still validated: a bad token is refused, never treated as anonymous. With the `axum`
    /// feature, handlers take `Option<Maskinporten>`.
    ///
    /// ```
    /// # use portvakt::{Config, KeySet, Validator};
    /// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
    /// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
    /// use portvakt::layer::MaskinportenLayer;
    /// let layer = MaskinportenLayer::new(validator).allow_anonymous();
    /// ```
    pub fn allow_anonymous(self) -> Self {
        self.edit(|s| s.anonymous = true)
    }

    /// Whether gRPC requests (`content-type: application/grpc…`) are refused with a gRPC status
    /// (`grpc-status` 16 `UNAUTHENTICATED`, 7 `PERMISSION_DENIED`, 14 `UNAVAILABLE`) rather than
    /// an HTTP error. On by default.
    ///
    /// ```
    /// # use portvakt::{Config, KeySet, Validator};
    /// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
    /// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
    /// use portvakt::layer::MaskinportenLayer;
    /// let http_only = MaskinportenLayer::new(validator).grpc(false);
    /// ```
    pub fn grpc(self, enabled: bool) -> Self {
        self.edit(|s| s.grpc = enabled)
    }

    /// Lets the application write refusals its own way. `hook` builds the response (body,
    /// content type, any other headers); portvakt then sets the status from
    /// [`Rejection::status`] and adds `WWW-Authenticate` and `Retry-After` unless the hook set
    /// them ([`Rejection::apply_to`]), so the RFC 6750 protocol survives any body. gRPC
    /// refusals are not passed to the hook.
    ///
    /// ```
    /// # use portvakt::{Config, KeySet, Validator};
    /// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
    /// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
    /// use bytes::Bytes;
    /// use http::{Response, header::CONTENT_TYPE};
    /// use portvakt::layer::MaskinportenLayer;
    ///
    /// let layer = MaskinportenLayer::new(validator).on_rejection(|rejection| {
    ///     let problem = serde_json::json!({
    ///         "type": "about:blank",
    ///         "title": "Unauthorized",
    ///         "status": rejection.status().as_u16(),
    ///         "detail": rejection.description(),
    ///     });
    ///     let mut response = Response::new(Bytes::from(problem.to_string()));
    ///     response.headers_mut().insert(CONTENT_TYPE, "application/problem+json".parse().unwrap());
    ///     response
    /// });
    /// ```
    pub fn on_rejection<F>(self, hook: F) -> Self
    where
        F: Fn(&Rejection) -> Response<Bytes> + Send + Sync + 'static,
    {
        self.edit(|s| s.on_rejection = Some(Arc::new(hook)))
    }

    /// The validator.
    ///
    /// ```
    /// # use portvakt::{Config, KeySet, Validator};
    /// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
    /// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
    /// use portvakt::layer::MaskinportenLayer;
    /// let layer = MaskinportenLayer::new(validator);
    /// assert_eq!(layer.validator().issuer().as_deref(), Some("https://i/"));
    /// ```
    pub fn validator(&self) -> &Validator {
        &self.shared.validator
    }

    /// The policy applied to every request.
    ///
    /// ```
    /// # use portvakt::{Config, KeySet, Validator};
    /// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
    /// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
    /// use portvakt::{Policy, layer::MaskinportenLayer};
    /// let layer = MaskinportenLayer::new(validator);
    /// assert_eq!(layer.policy(), &Policy::new());
    /// ```
    pub fn policy(&self) -> &Policy {
        &self.shared.policy
    }
}

impl<S> Layer<S> for MaskinportenLayer {
    type Service = MaskinportenService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MaskinportenService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`MaskinportenLayer`] wraps around an inner service.
///
/// ```
/// # use portvakt::{Config, KeySet, Validator};
/// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
/// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use http_body_util::Full;
/// use bytes::Bytes;
/// use portvakt::layer::{MaskinportenLayer, MaskinportenService};
/// use tower::Layer;
///
/// // Any tower service of `http` requests, here a plain function as hyper would serve it.
/// let hello = tower::service_fn(|_req: Request<Full<Bytes>>| async {
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
/// });
/// let protected: MaskinportenService<_> = MaskinportenLayer::new(validator).layer(hello);
/// ```
#[derive(Clone)]
pub struct MaskinportenService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> fmt::Debug for MaskinportenService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskinportenService")
            .field("layer", &self.shared)
            .finish_non_exhaustive()
    }
}

impl<S> MaskinportenService<S> {
    /// The wrapped service.
    ///
    /// ```
    /// # use portvakt::{Config, KeySet, Validator};
    /// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
    /// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
    /// use portvakt::layer::MaskinportenLayer;
    /// use tower::Layer;
    /// let service = MaskinportenLayer::new(validator).layer(42);
    /// assert_eq!(*service.get_ref(), 42);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// What to do with a request, decided synchronously.
enum Check {
    /// Call the inner service.
    Pass,
    /// Answer at once.
    Refuse(Reason),
    /// The token names a key we do not hold (or we hold none): validate asynchronously, which
    /// may wait for one rate-limited key refresh.
    Wait(Pending<'static>),
}

/// Marks a request the layer let through without a token ([`MaskinportenLayer::allow_anonymous`]),
/// so extractors can tell "anonymous, allowed" from "no layer ran".
#[derive(Clone)]
pub(crate) struct Anonymous(
    // Read by the axum extractors, to refuse with the layer's realm and hook.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))] pub(crate) Arc<Shared>,
);

impl Shared {
    fn check<B>(self: &Arc<Self>, req: &mut Request<B>) -> Check {
        if let Some(token) = req.extensions().get::<VerifiedToken>()
            && self.accepts_verified(token)
        {
            return match self.policy.check(token) {
                Ok(()) => Check::Pass,
                Err(e) => Check::Refuse(e.into()),
            };
        }
        let verified = match authorize_now(&self.validator, req.headers(), &self.policy) {
            Authorization::Granted(verified) => verified,
            Authorization::Refused(Reason::Header(BearerError::Missing)) if self.anonymous => {
                req.extensions_mut().insert(Anonymous(Arc::clone(self)));
                return Check::Pass;
            }
            Authorization::Refused(reason) => return Check::Refuse(reason),
            Authorization::Pending(pending) => return Check::Wait(pending.into_owned()),
        };
        req.extensions_mut().insert(verified);
        Check::Pass
    }

    /// Whether a token an outer layer verified was verified by this layer's validator (or a
    /// clone of it): then it needs no second validation, only this layer's policy.
    fn accepts_verified(&self, token: &VerifiedToken) -> bool {
        token.verified_by(&self.validator)
    }

    /// The refusal as HTTP: the application's hook made protocol-correct, or portvakt's JSON.
    pub(crate) fn http_response(&self, rejection: &Rejection) -> Response<Bytes> {
        match &self.on_rejection {
            Some(hook) => {
                let mut response = hook(rejection);
                rejection.apply_to(&mut response);
                response
            }
            None => rejection.to_response().map(Bytes::from),
        }
    }

    pub(crate) fn rejection(&self, reason: Reason) -> Rejection {
        Rejection::new(reason).with_realm(Arc::clone(&self.realm))
    }

    fn refuse<B>(&self, reason: Reason, headers: &HeaderMap) -> Response<ResponseBody<B>> {
        let rejection = self.rejection(reason);
        tracing::debug!(
            code = rejection.code(),
            status = rejection.status().as_u16(),
            "request refused"
        );
        let response = if self.grpc && is_grpc(headers) {
            rejection.to_grpc_response().map(Bytes::from)
        } else {
            self.http_response(&rejection)
        };
        response.map(ResponseBody::rejection)
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for MaskinportenService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        match self.shared.check(&mut req) {
            Check::Pass => ResponseFuture {
                state: State::Inner {
                    future: self.inner.call(req),
                },
            },
            Check::Refuse(reason) => ResponseFuture {
                state: State::Ready {
                    response: Some(self.shared.refuse(reason, req.headers())),
                },
            },
            Check::Wait(pending) => {
                // The inner service was made ready for this request; keep that one and leave a
                // clone for the next (tower's documented pattern for calling later).
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let shared = Arc::clone(&self.shared);
                let future = async move {
                    match pending.finish(&shared.validator, &shared.policy).await {
                        Ok(verified) => {
                            req.extensions_mut().insert(verified);
                            let response = inner.call(req).await?;
                            Ok(response.map(ResponseBody::inner))
                        }
                        Err(reason) => Ok(shared.refuse(reason, req.headers())),
                    }
                };
                ResponseFuture {
                    state: State::Waiting {
                        future: Box::pin(future),
                    },
                }
            }
        }
    }
}

type BoxedResponse<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send>>;

pin_project! {
    /// The future of [`MaskinportenService`]: the inner service's future, a refusal, or (only
    /// for a token whose key is not held yet) a validation that may wait for a key refresh.
    ///
    /// `F` is the inner service's future, `B` its response body and `E` its error; the output
    /// is the inner response with its body wrapped in [`ResponseBody`], or portvakt's refusal.
    /// A refusal is ready at once: the inner service is not called. Nothing to build by hand;
    /// it is what [`Service::call`] returns.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use portvakt::layer::{MaskinportenLayer, ResponseFuture};
    /// use tower::{Layer, Service, ServiceExt};
    /// # use portvakt::{Config, KeySet, Validator};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
    /// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
    /// let inner = tower::service_fn(|_req: Request<String>| async {
    ///     Ok::<_, Infallible>(Response::new("secret".to_owned()))
    /// });
    /// let mut service = MaskinportenLayer::new(validator).layer(inner);
    /// let future: ResponseFuture<_, String, Infallible> =
    ///     service.ready().await.unwrap().call(Request::new(String::new()));
    /// let response = future.await.unwrap();
    /// assert_eq!(response.status(), 401); // no token: refused without calling `inner`
    /// assert!(response.body().is_rejection());
    /// # }
    /// ```
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        state: State<F, B, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B, E> {
        Inner { #[pin] future: F },
        Ready { response: Option<Response<ResponseBody<B>>> },
        Waiting { future: BoxedResponse<B, E> },
    }
}

impl<F, B, E> fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future } => future
                .poll(cx)
                .map(|result| result.map(|response| response.map(ResponseBody::inner))),
            StateProj::Ready { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => panic!("portvakt ResponseFuture polled after completion"),
            },
            StateProj::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}

pin_project! {
    /// The body of [`MaskinportenService`]'s responses: the inner service's body, passed through
    /// untouched, or a refusal from portvakt (JSON, the application's
    /// [`on_rejection`](MaskinportenLayer::on_rejection) body, or empty for gRPC).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::{BodyExt, Full};
    /// use portvakt::layer::ResponseBody;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let body = ResponseBody::inner(Full::new(Bytes::from_static(b"hello")));
    /// assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
    /// let refusal = ResponseBody::<Full<Bytes>>::rejection(Bytes::from_static(b"{}"));
    /// assert!(refusal.is_rejection());
    /// # }
    /// ```
    pub struct ResponseBody<B> {
        #[pin]
        kind: BodyKind<B>,
    }
}

pin_project! {
    #[project = BodyKindProj]
    enum BodyKind<B> {
        Inner { #[pin] body: B },
        Rejection { data: Option<Bytes> },
    }
}

impl<B> ResponseBody<B> {
    /// Wraps the inner service's body.
    ///
    /// ```
    /// # use portvakt::layer::ResponseBody;
    /// let body = ResponseBody::inner(http_body_util::Empty::<bytes::Bytes>::new());
    /// assert!(!body.is_rejection());
    /// ```
    pub fn inner(body: B) -> Self {
        ResponseBody {
            kind: BodyKind::Inner { body },
        }
    }

    /// A refusal body.
    ///
    /// ```
    /// use http_body::Body;
    /// # use portvakt::layer::ResponseBody;
    /// let body = ResponseBody::<http_body_util::Empty<bytes::Bytes>>::rejection("{}".into());
    /// assert_eq!(body.size_hint().exact(), Some(2));
    /// let empty = ResponseBody::<http_body_util::Empty<bytes::Bytes>>::rejection(bytes::Bytes::new());
    /// assert!(empty.is_end_stream()); // gRPC refusals carry everything in headers
    /// ```
    pub fn rejection(data: Bytes) -> Self {
        ResponseBody {
            kind: BodyKind::Rejection {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    /// Whether this is portvakt's refusal rather than the inner service's body.
    ///
    /// ```
    /// # use portvakt::layer::ResponseBody;
    /// assert!(ResponseBody::<String>::rejection("{}".into()).is_rejection());
    /// assert!(!ResponseBody::inner(String::new()).is_rejection());
    /// ```
    pub fn is_rejection(&self) -> bool {
        matches!(self.kind, BodyKind::Rejection { .. })
    }
}

impl<B: fmt::Debug> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BodyKind::Inner { body } => f.debug_tuple("ResponseBody::Inner").field(body).finish(),
            BodyKind::Rejection { data } => f
                .debug_tuple("ResponseBody::Rejection")
                .field(&data.as_ref().map_or(0, Bytes::len))
                .finish(),
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            BodyKindProj::Inner { body } => body.poll_frame(cx),
            BodyKindProj::Rejection { data } => {
                Poll::Ready(data.take().map(|d| Ok(Frame::data(d))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            BodyKind::Inner { body } => body.is_end_stream(),
            BodyKind::Rejection { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Inner { body } => body.size_hint(),
            BodyKind::Rejection { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}
