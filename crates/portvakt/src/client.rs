//! Consumer side: [`TokenClient`] performs Maskinporten's JWT-bearer grant and caches tokens.
//!
//! It builds the client assertion (header `{"kid", "alg": "RS256"}`; claims `aud` = the issuer,
//! `iss` = the client id, `iat`, `exp`, a random `jti`, `scope`, and optionally `resource` for an
//! audience-restricted token and `consumer_org` for a delegated one), posts it to the token
//! endpoint as a form, and keeps the token until shortly before it expires. Concurrent requests
//! for the same scopes share one call to the issuer.
//!
//! The same client works against `test.maskinporten.no`, `maskinporten.no` and portvakt's
//! local issuer.
//!
//! ```no_run
//! use portvakt::client::{TokenClient, TokenRequest};
//!
//! # async fn run() -> Result<(), portvakt::client::TokenError> {
//! // MASKINPORTEN_CLIENT_ID, MASKINPORTEN_CLIENT_JWK and MASKINPORTEN_WELL_KNOWN_URL
//! // (or MASKINPORTEN_ISSUER + MASKINPORTEN_TOKEN_ENDPOINT), as NAIS injects them.
//! let client = TokenClient::from_env().await?;
//! let request = TokenRequest::new(["nav:arbeid:some.scope.read"]);
//! let token = client.token(&request).await?;
//! // Send it as `Authorization: Bearer ...`; never log it.
//! let header = token.authorization_header();
//! # let _ = header;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tokio::sync::watch;
use url::Url;

use crate::algorithm::Algorithm;
use crate::config::{ENV_ISSUER, ENV_WELL_KNOWN_URL, checked_url, env_var};
use crate::encoding::{encode_base64url, parse_json_object};
use crate::fetch::{MAX_DOCUMENT_BYTES, describe, get_document, try_client};
use crate::jws::{SigningError, SigningKey};
use crate::keys::Discovery;

/// The client's id, set by NAIS for consumers.
pub const ENV_CLIENT_ID: &str = "MASKINPORTEN_CLIENT_ID";
/// The client's private RSA JWK, set by NAIS for consumers. A secret.
pub const ENV_CLIENT_JWK: &str = "MASKINPORTEN_CLIENT_JWK";
/// The token endpoint, set by NAIS for consumers.
pub const ENV_TOKEN_ENDPOINT: &str = "MASKINPORTEN_TOKEN_ENDPOINT";
/// The OAuth grant type of Maskinporten's token requests (RFC 7523).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime of the assertions the client builds (Maskinporten accepts at most 120 s).
pub const DEFAULT_ASSERTION_LIFETIME: Duration = Duration::from_secs(60);
/// A cached token is replaced this long before it expires (or at half its lifetime, if that
/// is sooner), so a token handed out still has time to reach the API.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(10);
/// Timeout of each request to the issuer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A token could not be obtained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The issuer refused with an OAuth error. `error` and `description` are verbatim, e.g.
    /// `invalid_scope` and `organization 999999999 is not a consumer of ...`.
    #[error("{error}: {}", description.as_deref().unwrap_or("(no description)"))]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The OAuth error code (`invalid_grant`, `invalid_scope`, `invalid_client`, ...).
        error: String,
        /// The issuer's `error_description`, if it sent one.
        description: Option<String>,
    },
    /// The issuer could not be reached (connection, TLS, timeout).
    #[error("could not reach {url}: {reason}")]
    Network {
        /// What was requested.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// The issuer answered something that is not a token response or an OAuth error.
    #[error("{url} answered HTTP {status} with an unusable response: {reason}")]
    BadResponse {
        /// What was requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What is wrong with it.
        reason: String,
    },
    /// The client is not configured (a missing or invalid variable, or discovery failed).
    #[error("{0}")]
    Config(String),
    /// The request is not one the client can send (e.g. no scope).
    #[error("invalid token request: {0}")]
    InvalidRequest(String),
    /// The assertion could not be signed.
    #[error("could not sign the client assertion: {0}")]
    Signing(#[from] SigningError),
}

impl TokenError {
    /// The OAuth error code, when the issuer refused.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            TokenError::Refused { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// What to ask for: scopes, and optionally an audience (`resource`) and an organization to act
/// on behalf of (`consumer_org`, delegation through Altinn).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TokenRequest {
    /// The scopes; entries may themselves be space-separated lists.
    pub scopes: Vec<String>,
    /// An absolute URI for an audience-restricted token (`aud`).
    pub audience: Option<String>,
    /// The organization number to act on behalf of.
    pub on_behalf_of: Option<String>,
}

impl TokenRequest {
    /// A request for these scopes.
    pub fn new<S: Into<String>>(scopes: impl IntoIterator<Item = S>) -> Self {
        TokenRequest {
            scopes: scopes.into_iter().map(Into::into).collect(),
            audience: None,
            on_behalf_of: None,
        }
    }

    /// Asks for an audience-restricted token.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Asks for a delegated token on behalf of organization `orgno`.
    pub fn on_behalf_of(mut self, orgno: impl Into<String>) -> Self {
        self.on_behalf_of = Some(orgno.into());
        self
    }

    /// The scopes as one space-separated string, without repeats, in order.
    pub fn scope_string(&self) -> String {
        let mut seen: Vec<&str> = Vec::new();
        for scope in self.scopes.iter().flat_map(|s| s.split_whitespace()) {
            if !seen.contains(&scope) {
                seen.push(scope);
            }
        }
        seen.join(" ")
    }

    /// Checks the request and returns its cache key (scopes sorted, so order does not matter).
    fn key(&self) -> Result<RequestKey, TokenError> {
        let mut scopes: Vec<String> = self
            .scopes
            .iter()
            .flat_map(|s| s.split_whitespace())
            .map(str::to_owned)
            .collect();
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(TokenError::InvalidRequest(
                "at least one scope is required".to_owned(),
            ));
        }
        if let Some(audience) = &self.audience
            && Url::parse(audience).is_err()
        {
            return Err(TokenError::InvalidRequest(format!(
                "audience {audience:?} is not an absolute URI (e.g. https://api.example.no/)"
            )));
        }
        if let Some(org) = &self.on_behalf_of
            && !(org.len() == 9 && org.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(TokenError::InvalidRequest(format!(
                "on-behalf-of organization {org:?} is not a nine-digit organization number"
            )));
        }
        Ok(RequestKey {
            scopes,
            audience: self.audience.clone(),
            on_behalf_of: self.on_behalf_of.clone(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RequestKey {
    scopes: Vec<String>,
    audience: Option<String>,
    on_behalf_of: Option<String>,
}

/// An access token and when it expires. `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessToken {
    token: String,
    /// The granted scopes, as the issuer reported them (space-separated).
    pub scope: String,
    /// The lifetime the issuer reported.
    pub expires_in: Duration,
    /// When it expires, by this machine's clock.
    pub expires_at: SystemTime,
    received: Instant,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("scope", &self.scope)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

impl AccessToken {
    /// The token. A secret: send it, never log it.
    pub fn as_str(&self) -> &str {
        &self.token
    }

    /// The token, consuming this value.
    pub fn into_string(self) -> String {
        self.token
    }

    /// `Bearer <token>`, for the `Authorization` header.
    pub fn authorization_header(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// Whether the token is still good to hand out: more than `margin` (capped at half its
    /// lifetime) before expiry.
    fn is_fresh(&self, margin: Duration) -> bool {
        let margin = margin.min(self.expires_in / 2);
        self.received.elapsed() + margin < self.expires_in
    }
}

/// Where and as whom a [`TokenClient`] asks for tokens.
pub struct ClientConfig {
    /// The client id (`iss` of the assertion).
    pub client_id: String,
    /// The client's registered key.
    pub signing_key: SigningKey,
    /// The issuer identifier, the assertion's `aud` (e.g. `https://test.maskinporten.no/`).
    pub issuer: String,
    /// The token endpoint.
    pub token_endpoint: Url,
    /// Lifetime of each assertion (default 60 s; at most 120 s).
    pub assertion_lifetime: Duration,
    /// How long before expiry a cached token is replaced (default 10 s).
    pub refresh_margin: Duration,
    /// Timeout of each request (default 10 s).
    pub timeout: Duration,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("client_id", &self.client_id)
            .field("kid", &self.signing_key.kid())
            .field("issuer", &self.issuer)
            .field("token_endpoint", &self.token_endpoint.as_str())
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// A configuration with default lifetimes and timeout.
    pub fn new(
        client_id: impl Into<String>,
        signing_key: SigningKey,
        issuer: impl Into<String>,
        token_endpoint: Url,
    ) -> Self {
        ClientConfig {
            client_id: client_id.into(),
            signing_key,
            issuer: issuer.into(),
            token_endpoint,
            assertion_lifetime: DEFAULT_ASSERTION_LIFETIME,
            refresh_margin: DEFAULT_REFRESH_MARGIN,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

type Shared = watch::Receiver<Option<Result<AccessToken, TokenError>>>;

enum Slot {
    Ready(AccessToken),
    Pending(Shared),
}

struct Inner {
    client_id: String,
    key: SigningKey,
    issuer: String,
    token_endpoint: Url,
    assertion_lifetime: Duration,
    refresh_margin: Duration,
    http: reqwest::Client,
    cache: Mutex<HashMap<RequestKey, Slot>>,
}

/// Gets Maskinporten tokens with the JWT-bearer grant and caches them per request (scopes,
/// audience, on-behalf-of) until shortly before they expire. One request per key is in flight
/// at a time; concurrent callers share its result. Clone freely: clones share the cache.
#[derive(Clone)]
pub struct TokenClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClient")
            .field("client_id", &self.inner.client_id)
            .field("issuer", &self.inner.issuer)
            .field("token_endpoint", &self.inner.token_endpoint.as_str())
            .finish_non_exhaustive()
    }
}

impl TokenClient {
    /// A client for this configuration. Checks the URLs (https, or http to loopback) and the
    /// assertion lifetime.
    pub fn new(config: ClientConfig) -> Result<TokenClient, TokenError> {
        checked_url("issuer", &config.issuer).map_err(|e| TokenError::Config(e.to_string()))?;
        let token_endpoint = checked_url("token endpoint", config.token_endpoint.as_str())
            .map_err(|e| TokenError::Config(e.to_string()))?;
        if config.client_id.is_empty() {
            return Err(TokenError::Config("the client id is empty".to_owned()));
        }
        if config.assertion_lifetime.is_zero() || config.assertion_lifetime.as_secs() > 120 {
            return Err(TokenError::Config(
                "the assertion lifetime must be 1 to 120 s (Maskinporten's limit)".to_owned(),
            ));
        }
        if config.timeout.is_zero() {
            return Err(TokenError::Config(
                "the timeout must be above zero".to_owned(),
            ));
        }
        let http = http_client(config.timeout)?;
        Ok(TokenClient {
            inner: Arc::new(Inner {
                client_id: config.client_id,
                key: config.signing_key,
                issuer: config.issuer,
                token_endpoint,
                assertion_lifetime: config.assertion_lifetime,
                refresh_margin: config.refresh_margin,
                http,
                cache: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Whether the consumer variables NAIS injects (`MASKINPORTEN_CLIENT_ID` and
    /// `MASKINPORTEN_CLIENT_JWK`) are set.
    pub fn env_is_set() -> bool {
        env_var(ENV_CLIENT_ID).is_some() && env_var(ENV_CLIENT_JWK).is_some()
    }

    /// A client from the environment NAIS injects: `MASKINPORTEN_CLIENT_ID`,
    /// `MASKINPORTEN_CLIENT_JWK`, and `MASKINPORTEN_ISSUER` + `MASKINPORTEN_TOKEN_ENDPOINT` or
    /// else `MASKINPORTEN_WELL_KNOWN_URL` (whose discovery document is fetched).
    pub async fn from_env() -> Result<TokenClient, TokenError> {
        TokenClient::from_vars(env_var).await
    }

    /// Like [`from_env`](Self::from_env), reading variables through `var` (for tests, or
    /// configuration kept elsewhere).
    pub async fn from_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<TokenClient, TokenError> {
        let client_id = var(ENV_CLIENT_ID).ok_or_else(|| {
            TokenError::Config(format!(
                "{ENV_CLIENT_ID} is not set (NAIS sets it when spec.maskinporten.enabled is true)"
            ))
        })?;
        let jwk = var(ENV_CLIENT_JWK).ok_or_else(|| {
            TokenError::Config(format!(
                "{ENV_CLIENT_JWK} is not set: the client's private RSA JWK"
            ))
        })?;
        let signing_key = SigningKey::from_jwk(&jwk)
            .map_err(|e| TokenError::Config(format!("{ENV_CLIENT_JWK}: {e}")))?;
        let (issuer, token_endpoint) = match (
            var(ENV_ISSUER),
            var(ENV_TOKEN_ENDPOINT),
            var(ENV_WELL_KNOWN_URL),
        ) {
            (Some(issuer), Some(endpoint), _) => {
                let endpoint = checked_url(ENV_TOKEN_ENDPOINT, &endpoint)
                    .map_err(|e| TokenError::Config(e.to_string()))?;
                (issuer, endpoint)
            }
            (issuer, _, Some(well_known)) => {
                let discovery = discover(&well_known, DEFAULT_TIMEOUT).await?;
                if let Some(expected) = issuer
                    && expected != discovery.issuer
                {
                    return Err(TokenError::Config(format!(
                        "{ENV_ISSUER} is {expected:?} but {ENV_WELL_KNOWN_URL} describes issuer {:?}",
                        discovery.issuer
                    )));
                }
                let endpoint = discovery.token_endpoint.ok_or_else(|| {
                    TokenError::Config(format!(
                        "the discovery document at {well_known} has no token_endpoint"
                    ))
                })?;
                (discovery.issuer, endpoint)
            }
            _ => {
                return Err(TokenError::Config(format!(
                    "set {ENV_WELL_KNOWN_URL}, or {ENV_ISSUER} and {ENV_TOKEN_ENDPOINT}, to say where the token endpoint is"
                )));
            }
        };
        TokenClient::new(ClientConfig::new(
            client_id,
            signing_key,
            issuer,
            token_endpoint,
        ))
    }

    /// A client for the issuer whose discovery document is at `well_known_url`.
    pub async fn discover(
        client_id: impl Into<String>,
        signing_key: SigningKey,
        well_known_url: &str,
    ) -> Result<TokenClient, TokenError> {
        let discovery = discover(well_known_url, DEFAULT_TIMEOUT).await?;
        let endpoint = discovery.token_endpoint.ok_or_else(|| {
            TokenError::Config(format!(
                "the discovery document at {well_known_url} has no token_endpoint"
            ))
        })?;
        TokenClient::new(ClientConfig::new(
            client_id,
            signing_key,
            discovery.issuer,
            endpoint,
        ))
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The issuer identifier (the assertions' `aud`).
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The token endpoint.
    pub fn token_endpoint(&self) -> &Url {
        &self.inner.token_endpoint
    }

    /// A token for `request`: from the cache while it is fresh, else from the issuer. Concurrent
    /// calls for the same request share one call to the issuer (which continues even if the
    /// caller is cancelled). Errors are not cached. Must run inside a Tokio runtime.
    pub async fn token(&self, request: &TokenRequest) -> Result<AccessToken, TokenError> {
        let key = request.key()?;
        for _ in 0..2 {
            let mut shared = self.join_or_start(&key, request)?;
            match shared.wait_for(Option::is_some).await {
                Ok(result) => {
                    if let Some(result) = result.as_ref() {
                        return result.clone();
                    }
                }
                Err(_) => {
                    // The request task ended without an answer (its runtime is shutting down,
                    // or it panicked): forget it and try once more.
                    let mut cache = self.lock_cache();
                    if let Some(Slot::Pending(rx)) = cache.get(&key)
                        && rx.has_changed().is_err()
                    {
                        cache.remove(&key);
                    }
                }
            }
        }
        Err(TokenError::Network {
            url: self.inner.token_endpoint.to_string(),
            reason: "the token request was cancelled".to_owned(),
        })
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<RequestKey, Slot>> {
        self.inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns a receiver that will hold the answer for `key`: a fresh cached token at once, the
    /// request in flight, or a new request.
    fn join_or_start(
        &self,
        key: &RequestKey,
        request: &TokenRequest,
    ) -> Result<Shared, TokenError> {
        let mut cache = self.lock_cache();
        match cache.get(key) {
            Some(Slot::Ready(token)) if token.is_fresh(self.inner.refresh_margin) => {
                let (_tx, rx) = watch::channel(Some(Ok(token.clone())));
                return Ok(rx);
            }
            Some(Slot::Pending(rx)) if rx.has_changed().is_ok() => return Ok(rx.clone()),
            _ => {}
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            TokenError::Config(
                "TokenClient::token must be called inside a Tokio runtime".to_owned(),
            )
        })?;
        let (tx, rx) = watch::channel(None);
        cache.insert(key.clone(), Slot::Pending(rx.clone()));
        // Drop expired entries so the cache does not grow with one-off requests.
        cache.retain(|_, slot| match slot {
            Slot::Ready(token) => token.received.elapsed() < token.expires_in,
            Slot::Pending(_) => true,
        });
        drop(cache);
        let this = self.clone();
        let key = key.clone();
        let request = request.clone();
        runtime.spawn(async move {
            let result = this.fetch(&request).await;
            {
                let mut cache = this.lock_cache();
                match &result {
                    Ok(token) => {
                        cache.insert(key, Slot::Ready(token.clone()));
                    }
                    Err(_) => {
                        cache.remove(&key);
                    }
                }
            }
            let _ = tx.send(Some(result));
        });
        Ok(rx)
    }

    /// Drops the cached token for `request`, e.g. after an API refused it.
    pub fn invalidate(&self, request: &TokenRequest) {
        if let Ok(key) = request.key() {
            let mut cache = self.lock_cache();
            if matches!(cache.get(&key), Some(Slot::Ready(_))) {
                cache.remove(&key);
            }
        }
    }

    /// Builds and signs a client assertion for `request` (a fresh `jti` every time).
    pub fn assertion(&self, request: &TokenRequest) -> Result<String, TokenError> {
        request.key()?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut claims = Map::new();
        claims.insert("aud".into(), json!(self.inner.issuer));
        claims.insert("iss".into(), json!(self.inner.client_id));
        claims.insert("iat".into(), json!(now));
        claims.insert(
            "exp".into(),
            json!(now + self.inner.assertion_lifetime.as_secs()),
        );
        claims.insert("jti".into(), json!(random_jti()?));
        claims.insert("scope".into(), json!(request.scope_string()));
        if let Some(audience) = &request.audience {
            // Digdir documents `resource` as an array.
            claims.insert("resource".into(), json!([audience]));
        }
        if let Some(org) = &request.on_behalf_of {
            claims.insert("consumer_org".into(), json!(org));
        }
        Ok(self
            .inner
            .key
            .sign_jwt(Algorithm::RS256, &Value::Object(claims))?)
    }

    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, TokenError> {
        let assertion = self.assertion(request)?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", JWT_BEARER_GRANT)
            .append_pair("assertion", &assertion)
            .finish();
        let scope = request.scope_string();
        let token = post_form(&self.inner.http, &self.inner.token_endpoint, body, &scope).await;
        match &token {
            Ok(token) => tracing::debug!(
                client_id = %self.inner.client_id,
                scope = %token.scope,
                expires_in = token.expires_in.as_secs(),
                "obtained a Maskinporten token"
            ),
            Err(e) => {
                tracing::debug!(client_id = %self.inner.client_id, "token request failed: {e}")
            }
        }
        token
    }
}

/// Asks portvakt's local issuer for a token through its development shortcut (`POST /dev/token`,
/// advertised as `portvakt_dev_token_endpoint` in its discovery document): no client key, the
/// organization given directly, the manifest's grants still enforced. Not cached.
pub async fn request_dev_token(
    dev_token_endpoint: &Url,
    orgno: Option<&str>,
    request: &TokenRequest,
) -> Result<AccessToken, TokenError> {
    request.key()?;
    let endpoint = checked_url("development token endpoint", dev_token_endpoint.as_str())
        .map_err(|e| TokenError::Config(e.to_string()))?;
    let scope = request.scope_string();
    // The serializer is not `Send`; finished before the await, the future is.
    let body = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        if let Some(orgno) = orgno {
            form.append_pair("orgno", orgno);
        }
        form.append_pair("scope", &scope);
        if let Some(audience) = &request.audience {
            form.append_pair("audience", audience);
        }
        if let Some(org) = &request.on_behalf_of {
            form.append_pair("on_behalf_of", org);
        }
        form.finish()
    };
    post_form(&http_client(DEFAULT_TIMEOUT)?, &endpoint, body, &scope).await
}

/// Fetches and parses a discovery document.
pub async fn discover(well_known_url: &str, timeout: Duration) -> Result<Discovery, TokenError> {
    let url = checked_url("well-known URL", well_known_url)
        .map_err(|e| TokenError::Config(e.to_string()))?;
    let document = get_document(&http_client(timeout)?, &url)
        .await
        .map_err(|e| TokenError::Config(format!("discovery: {e}")))?;
    Discovery::parse(&document).map_err(|e| TokenError::Config(format!("{url}: {e}")))
}

/// Fetches a discovery document as raw JSON (for members portvakt's [`Discovery`] does not
/// keep, such as the local issuer's `portvakt_dev_token_endpoint`).
pub async fn discover_raw(
    well_known_url: &str,
    timeout: Duration,
) -> Result<Map<String, Value>, TokenError> {
    let url = checked_url("well-known URL", well_known_url)
        .map_err(|e| TokenError::Config(e.to_string()))?;
    let document = get_document(&http_client(timeout)?, &url)
        .await
        .map_err(|e| TokenError::Config(format!("discovery: {e}")))?;
    parse_json_object(&document).map_err(|e| TokenError::Config(format!("{url}: document {e}")))
}

/// The HTTP client with its timeouts; never one without them.
fn http_client(timeout: Duration) -> Result<reqwest::Client, TokenError> {
    try_client(timeout)
        .map_err(|reason| TokenError::Config(format!("could not set up the HTTP client: {reason}")))
}

fn random_jti() -> Result<String, TokenError> {
    let mut bytes = [0u8; 18];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| TokenError::Signing(SigningError::Crypto("no randomness".to_owned())))?;
    Ok(encode_base64url(bytes))
}

/// POSTs a form to a token endpoint and reads a token response or an OAuth error.
async fn post_form(
    http: &reqwest::Client,
    url: &Url,
    body: String,
    requested_scope: &str,
) -> Result<AccessToken, TokenError> {
    let network = |e: reqwest::Error| TokenError::Network {
        url: url.to_string(),
        reason: describe(&e),
    };
    let mut response = http
        .post(url.clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body)
        .send()
        .await
        .map_err(network)?;
    let received = Instant::now();
    let status = response.status().as_u16();
    let bad = |reason: String| TokenError::BadResponse {
        url: url.to_string(),
        status,
        reason,
    };
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(network)? {
        if bytes.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(bad(format!("more than {MAX_DOCUMENT_BYTES} bytes")));
        }
        bytes.extend_from_slice(&chunk);
    }
    let object = parse_json_object(&bytes);
    if status != 200 {
        return match object {
            Ok(object) => match object.get("error").and_then(Value::as_str) {
                Some(error) => Err(TokenError::Refused {
                    status,
                    error: error.to_owned(),
                    description: object
                        .get("error_description")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                }),
                None => Err(bad("a JSON body without `error`".to_owned())),
            },
            Err(_) => Err(bad("not an OAuth error response (not JSON)".to_owned())),
        };
    }
    let object = object.map_err(|e| bad(format!("the token response {e}")))?;
    let token = object
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("no `access_token` in the token response".to_owned()))?;
    match object.get("token_type").and_then(Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case("bearer") => {}
        other => {
            return Err(bad(format!(
                "`token_type` is {other:?}; a Bearer token was expected"
            )));
        }
    }
    let expires_in = object
        .get("expires_in")
        .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f.max(0.0) as u64)))
        .filter(|s| *s > 0)
        .ok_or_else(|| bad("no positive `expires_in` in the token response".to_owned()))?;
    if expires_in > MAX_EXPIRES_IN_SECS {
        // No Maskinporten token lives a day; a larger value would be cached for as long, or
        // overflow the clock.
        return Err(bad(format!(
            "`expires_in` is {expires_in} s, over a day ({MAX_EXPIRES_IN_SECS} s); no Maskinporten token lives that long"
        )));
    }
    let expires_in = Duration::from_secs(expires_in);
    let scope = object
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or(requested_scope)
        .to_owned();
    Ok(AccessToken {
        token: token.to_owned(),
        scope,
        expires_in,
        expires_at: SystemTime::now() + expires_in,
        received,
    })
}

/// The longest `expires_in` a token answer may give: a day.
const MAX_EXPIRES_IN_SECS: u64 = 24 * 60 * 60;

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: the form serializer was held across the await, so a server could not
    /// `tokio::spawn` (or answer a request with) a development token request.
    #[test]
    fn the_token_futures_are_send() {
        fn send<T: Send>(_: &T) {}
        let url = Url::parse("http://127.0.0.1:1/dev/token").unwrap();
        let request = TokenRequest::new(["s"]);
        send(&request_dev_token(&url, Some("889640782"), &request));
    }

    #[test]
    fn request_keys_ignore_order_and_repeats() {
        let a = TokenRequest::new(["b a", "a"]);
        let b = TokenRequest::new(["a", "b"]);
        assert_eq!(a.key().unwrap(), b.key().unwrap());
        assert_eq!(a.scope_string(), "b a");
        assert!(TokenRequest::new(Vec::<String>::new()).key().is_err());
        assert!(TokenRequest::new(["s"]).audience("api").key().is_err());
        assert!(
            TokenRequest::new(["s"])
                .on_behalf_of("12345")
                .key()
                .is_err()
        );
        assert_ne!(
            TokenRequest::new(["s"]).key().unwrap(),
            TokenRequest::new(["s"])
                .audience("https://a/")
                .key()
                .unwrap()
        );
    }

    #[test]
    fn freshness_uses_the_margin_capped_at_half_the_lifetime() {
        let token = |age: u64, lifetime: u64| AccessToken {
            token: "t".to_owned(),
            scope: String::new(),
            expires_in: Duration::from_secs(lifetime),
            expires_at: SystemTime::now(),
            received: Instant::now() - Duration::from_secs(age),
        };
        let margin = Duration::from_secs(10);
        assert!(token(0, 120).is_fresh(margin));
        assert!(token(109, 120).is_fresh(margin));
        assert!(!token(111, 120).is_fresh(margin));
        assert!(token(5, 12).is_fresh(margin));
        assert!(!token(7, 12).is_fresh(margin));
        assert!(!format!("{:?}", token(0, 1)).contains("\"t\""));
    }

    #[tokio::test]
    async fn assertions_have_maskinporten_claims() {
        let key = SigningKey::generate("client-key").unwrap();
        let client = TokenClient::new(ClientConfig::new(
            "my-client",
            key,
            "http://127.0.0.1:7166/",
            Url::parse("http://127.0.0.1:7166/token").unwrap(),
        ))
        .unwrap();
        let request = TokenRequest::new(["nav:a:b.read"])
            .audience("https://api.example.no/")
            .on_behalf_of("889640782");
        let assertion = client.assertion(&request).unwrap();
        let header = crate::jws::decode_unverified_header(&assertion).unwrap();
        assert_eq!(header.len(), 2);
        assert_eq!(header["kid"], "client-key");
        assert_eq!(header["alg"], "RS256");
        let claims = crate::jws::decode_unverified_payload(&assertion).unwrap();
        assert_eq!(claims["aud"], "http://127.0.0.1:7166/");
        assert_eq!(claims["iss"], "my-client");
        assert_eq!(claims["scope"], "nav:a:b.read");
        assert_eq!(claims["resource"], json!(["https://api.example.no/"]));
        assert_eq!(claims["consumer_org"], "889640782");
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert_eq!(lifetime, 60);
        let again =
            crate::jws::decode_unverified_payload(&client.assertion(&request).unwrap()).unwrap();
        assert_ne!(claims["jti"], again["jti"]);
    }
}
