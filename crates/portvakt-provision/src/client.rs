//! A client for Digdir's admin API: the admin token, the requests, and the retry rules.
//!
//! Retries: a 5xx answer or a network error is retried up to [`RetryPolicy::attempts`] times
//! in all, with exponential backoff and jitter; a 4xx is never retried (the answer says what
//! is wrong, and sending it again would not change it), except one 401 that is retried with a
//! fresh admin token. A request that was retried and then answered as if done already counts
//! as done: a 409 to a create, a 404 to a revoke (the first attempt did it, and its answer was
//! lost).
//!
//! Redirects are not followed: following one would send a write again as another request (a
//! 301, 302 or 303 turns a `POST` into a `GET`) to an address nobody configured, and a 200
//! from there would count as done. A 3xx is an error that names where it pointed.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use portvakt::client::{AccessToken, TokenClient, TokenRequest, request_dev_token};
use reqwest::Method;
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::{ApiError, ProvisionError};
use crate::types::{
    AccessEntry, DelegationSourceEntry, SCOPES_READ, SCOPES_WRITE, ScopeRegistration,
};

/// Timeout of each request to the admin API.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A token from `/dev/token` is replaced this long before it expires.
const DEV_REFRESH_MARGIN: Duration = Duration::from_secs(10);
/// Largest answer read.
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// How often and how patiently a request is retried after a 5xx or a network error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, at least 1 (default 4).
    pub attempts: u32,
    /// Wait before the first retry; doubled for each next one, plus up to 50 % jitter
    /// (default 200 ms).
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(200),
        }
    }
}

impl RetryPolicy {
    fn delay(&self, retry: u32) -> Duration {
        let base = self.base_delay.saturating_mul(1 << retry.min(10));
        // Jitter spreads out the retries of concurrent appliers; it needs no strong randomness.
        let random = RandomState::new().build_hasher().finish();
        let jitter_ms = u64::try_from(base.as_millis() / 2).unwrap_or(u64::MAX);
        base.saturating_add(Duration::from_millis(if jitter_ms == 0 {
            0
        } else {
            random % jitter_ms
        }))
    }
}

/// Where the admin token comes from.
pub enum AdminAuth {
    /// The JWT-bearer grant of an admin client (a `kid`-named JWK or an `x5c` chain), as
    /// against Maskinporten. The [`TokenClient`] caches the token until shortly before it
    /// expires, so one token serves a whole plan and apply.
    Client(TokenClient),
    /// portvakt's local issuer in development mode: `POST /dev/token` for organization
    /// `orgno`, no client key. Cached the same way.
    DevToken {
        /// The issuer's `portvakt_dev_token_endpoint`.
        endpoint: Url,
        /// The organization the token is for (the local Digdir's owner).
        orgno: String,
    },
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminAuth::Client(client) => f.debug_tuple("Client").field(client).finish(),
            AdminAuth::DevToken { endpoint, orgno } => f
                .debug_struct("DevToken")
                .field("endpoint", &endpoint.as_str())
                .field("orgno", orgno)
                .finish(),
        }
    }
}

/// A client for one Digdir admin API (`.../api/v1`).
#[derive(Debug)]
pub struct AdminClient {
    base: Url,
    http: reqwest::Client,
    auth: AdminAuth,
    retry: RetryPolicy,
    dev_token: Mutex<Option<AccessToken>>,
}

/// What a request is about, for error messages.
#[derive(Debug, Clone, Copy, Default)]
struct About<'a> {
    scope: Option<&'a str>,
    orgno: Option<&'a str>,
}

impl AdminClient {
    /// A client for the admin API at `base` (e.g. `https://api.test.samarbeid.digdir.no/api/v1`).
    ///
    /// # Errors
    /// [`ProvisionError::Config`] for a base URL that is not https (or http to loopback).
    pub fn new(base: &str, auth: AdminAuth) -> Result<AdminClient, ProvisionError> {
        let base = parse_base(base)?;
        let http = reqwest::Client::builder()
            // See the module documentation: a redirected write must not be counted as done.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ProvisionError::Config(format!("cannot set up HTTP: {e}")))?;
        Ok(AdminClient {
            base,
            http,
            auth,
            retry: RetryPolicy::default(),
            dev_token: Mutex::new(None),
        })
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        retry_at_least_once(&mut self, retry);
        self
    }

    /// The base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// `GET /scopes?inactive=true`: the organization's scopes, inactive ones included.
    pub async fn scopes(&self) -> Result<Vec<ScopeRegistration>, ApiError> {
        self.json(
            Method::GET,
            "scopes",
            &[("inactive", "true")],
            About::default(),
        )
        .await
    }

    /// `GET /scopes/access?scope=`: who has (or asked for) the scope.
    pub async fn access(&self, scope: &str) -> Result<Vec<AccessEntry>, ApiError> {
        let about = About {
            scope: Some(scope),
            orgno: None,
        };
        self.json(Method::GET, "scopes/access", &[("scope", scope)], about)
            .await
    }

    /// `GET /delegationsources`.
    pub async fn delegation_sources(&self) -> Result<Vec<DelegationSourceEntry>, ApiError> {
        self.json(Method::GET, "delegationsources", &[], About::default())
            .await
    }

    /// `POST /scopes`: creates the scope (409 when it exists, inactive or not).
    pub async fn create(&self, registration: &ScopeRegistration) -> Result<(), ApiError> {
        let name = registration.full_name();
        let about = About {
            scope: Some(&name),
            orgno: None,
        };
        let body = registration.write_body();
        match self
            .send(Method::POST, "scopes", &[], Some(&body), about)
            .await
        {
            // A create that was retried after a 5xx or a lost answer may have been done the
            // first time: a 409 then means it was.
            Err(e) if e.status == Some(409) && e.attempts > 1 => Ok(()),
            other => other.map(drop),
        }
    }

    /// `PUT /scopes?scope=`: updates the scope, or reactivates it with `active: true`.
    pub async fn update(&self, registration: &ScopeRegistration) -> Result<(), ApiError> {
        let name = registration.full_name();
        let about = About {
            scope: Some(&name),
            orgno: None,
        };
        let body = registration.write_body();
        self.send(
            Method::PUT,
            "scopes",
            &[("scope", &name)],
            Some(&body),
            about,
        )
        .await
        .map(drop)
    }

    /// `DELETE /scopes?scope=`: deactivates the scope (consumers keep their grants).
    pub async fn deactivate(&self, scope: &str) -> Result<(), ApiError> {
        let about = About {
            scope: Some(scope),
            orgno: None,
        };
        self.send(Method::DELETE, "scopes", &[("scope", scope)], None, about)
            .await
            .map(drop)
    }

    /// `PUT /scopes/access/{orgno}?scope=`: grants the scope to the organization.
    pub async fn grant(&self, scope: &str, orgno: &str) -> Result<(), ApiError> {
        self.access_write(Method::PUT, scope, orgno).await
    }

    /// `DELETE /scopes/access/{orgno}?scope=`: revokes the organization's access.
    pub async fn revoke(&self, scope: &str, orgno: &str) -> Result<(), ApiError> {
        match self.access_write(Method::DELETE, scope, orgno).await {
            // A revoke that was retried after a 5xx or a lost answer may have been done the
            // first time: a 404 (no such access) then means it was.
            Err(e) if e.status == Some(404) && e.attempts > 1 => Ok(()),
            other => other,
        }
    }

    async fn access_write(&self, method: Method, scope: &str, orgno: &str) -> Result<(), ApiError> {
        let about = About {
            scope: Some(scope),
            orgno: Some(orgno),
        };
        let path = format!("scopes/access/{orgno}");
        if !portvakt_manifest::is_nine_digits(orgno) {
            return Err(api_error(
                &method,
                &shown_path(&path, &[("scope", scope)]),
                None,
                "not a nine-digit organization number",
                about,
                0,
            ));
        }
        self.send(method, &path, &[("scope", scope)], None, about)
            .await
            .map(drop)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        about: About<'_>,
    ) -> Result<T, ApiError> {
        let shown = shown_path(path, query);
        let bytes = self.send(method.clone(), path, query, None, about).await?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError {
            method: method_name(&method),
            path: shown,
            status: Some(200),
            message: format!("the answer is not the JSON the admin API documents: {e}"),
            scope: about.scope.map(str::to_owned),
            orgno: about.orgno.map(str::to_owned),
            attempts: 1,
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&ScopeRegistration>,
        about: About<'_>,
    ) -> Result<Vec<u8>, ApiError> {
        let shown = shown_path(path, query);
        let mut url = self
            .base
            .join(path)
            .map_err(|e| api_error(&method, &shown, None, &e.to_string(), about, 0))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut attempts = 0;
        let mut fresh_token = false;
        loop {
            attempts += 1;
            let token = self.token().await.map_err(|e| {
                api_error(
                    &method,
                    &shown,
                    None,
                    &format!("no admin token: {e}"),
                    about,
                    attempts,
                )
            })?;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.as_str())
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            let outcome = match request.send().await {
                Ok(response) if response.status().is_redirection() => {
                    let status = response.status().as_u16();
                    let to = response
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .map_or_else(
                            || "nowhere".to_owned(),
                            |l| format!("{:?}", l.to_str().unwrap_or("(not text)")),
                        );
                    let message = format!(
                        "redirected to {to}, which is not followed (a write would go again as another request); the admin API does not redirect: check the admin API URL"
                    );
                    let e = api_error(&method, &shown, Some(status), &message, about, attempts);
                    tracing::warn!("{e}");
                    return Err(e);
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    match read_body(response).await {
                        Ok(bytes) => Ok((status, bytes)),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(describe(&e)),
            };
            let error = match outcome {
                Ok((status, bytes)) if (200..300).contains(&status) => return Ok(bytes),
                Ok((401, _)) if !fresh_token => {
                    // The token may have expired in between or been revoked: one new try.
                    fresh_token = true;
                    self.forget_token();
                    attempts -= 1;
                    continue;
                }
                Ok((status, bytes)) => {
                    let message = answer_message(&bytes);
                    let e = api_error(&method, &shown, Some(status), &message, about, attempts);
                    if status < 500 {
                        tracing::warn!("{e}");
                        return Err(e);
                    }
                    e
                }
                Err(reason) => api_error(&method, &shown, None, &reason, about, attempts),
            };
            if attempts >= self.retry.attempts {
                return Err(error);
            }
            let delay = self.retry.delay(attempts - 1);
            tracing::warn!("{error}; retrying in {} ms", delay.as_millis());
            tokio::time::sleep(delay).await;
        }
    }

    async fn token(&self) -> Result<AccessToken, portvakt::client::TokenError> {
        let request = TokenRequest::new([SCOPES_READ, SCOPES_WRITE]);
        match &self.auth {
            AdminAuth::Client(client) => client.token(&request).await,
            AdminAuth::DevToken { endpoint, orgno } => {
                if let Some(token) = self.cached_dev_token() {
                    return Ok(token);
                }
                let token = request_dev_token(endpoint, Some(orgno), &request).await?;
                *self.dev_token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
                Ok(token)
            }
        }
    }

    fn cached_dev_token(&self) -> Option<AccessToken> {
        let cached = self.dev_token.lock().unwrap_or_else(|e| e.into_inner());
        let token = cached.as_ref()?;
        let margin = DEV_REFRESH_MARGIN.min(token.expires_in / 2);
        (SystemTime::now() + margin < token.expires_at).then(|| token.clone())
    }

    fn forget_token(&self) {
        match &self.auth {
            AdminAuth::Client(client) => {
                client.invalidate(&TokenRequest::new([SCOPES_READ, SCOPES_WRITE]));
            }
            AdminAuth::DevToken { .. } => {
                *self.dev_token.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
        }
    }
}

fn retry_at_least_once(client: &mut AdminClient, retry: RetryPolicy) {
    client.retry = RetryPolicy {
        attempts: retry.attempts.max(1),
        ..retry
    };
}

/// Checks the base URL: https, or http to a loopback address; a trailing `/` is added so that
/// relative paths join below it.
pub(crate) fn parse_base(base: &str) -> Result<Url, ProvisionError> {
    let bad = |why: &str| {
        ProvisionError::Config(format!(
            "admin API URL {base:?} {why}; e.g. https://api.test.samarbeid.digdir.no/api/v1"
        ))
    };
    let mut url = Url::parse(base.trim()).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    match url.scheme() {
        "https" => {}
        "http" if portvakt::is_loopback_url(&url) => {}
        "http" => return Err(bad("uses http to a host that is not loopback; use https")),
        _ => return Err(bad("must be an https URL")),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must have no query or fragment"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        _ => "REQUEST",
    }
}

fn shown_path(path: &str, query: &[(&str, &str)]) -> String {
    let mut shown = format!("/{path}");
    for (i, (k, v)) in query.iter().enumerate() {
        shown.push(if i == 0 { '?' } else { '&' });
        shown.push_str(&format!("{k}={v}"));
    }
    shown
}

fn api_error(
    method: &Method,
    path: &str,
    status: Option<u16>,
    message: &str,
    about: About<'_>,
    attempts: u32,
) -> ApiError {
    ApiError {
        method: method_name(method),
        path: path.to_owned(),
        status,
        message: message.to_owned(),
        scope: about.scope.map(str::to_owned),
        orgno: about.orgno.map(str::to_owned),
        attempts,
    }
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!(
                "the answer is larger than {MAX_ANSWER_BYTES} bytes"
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The useful part of an error answer: Digdir's `error_description`/`message`/`error`, else
/// the text, shortened (300 characters) and with control characters escaped: it is printed to
/// a terminal, and an escape sequence or `\r` from the server must not act there.
fn answer_message(bytes: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(bytes) {
        for key in ["error_description", "message", "error"] {
            if let Some(text) = object.get(key).and_then(serde_json::Value::as_str) {
                return portvakt::printable_at_most(text, 300);
            }
        }
    }
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return "(no body)".to_owned();
    }
    portvakt::printable_at_most(text, 300)
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
