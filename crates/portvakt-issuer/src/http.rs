//! The HTTP surface, at Maskinporten's paths.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::error::{ErrorCode, OAuthError, no_store};
use crate::issuer::{DevTokenRequest, Issuer, TokenResponse};

/// The JWT-bearer grant type, the only one Maskinporten supports.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Request bodies are small: an assertion is at most 16 KiB.
const MAX_BODY_BYTES: usize = 64 * 1024;

impl Issuer {
    /// The issuer's routes, relative to the issuer URL: `GET /.well-known/oauth-authorization-server`,
    /// `GET /jwk`, `POST /token`, and in development mode `POST /dev/token` and
    /// `POST /admin/rotate`. Mount it at the root, or nest it under the path of the issuer URL.
    pub fn router(&self) -> Router {
        let mut router = Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/jwk", get(jwks))
            .route("/token", post(token))
            .nest("/api/v1", crate::admin::router());
        if self.is_development() {
            let development = Router::new()
                .route("/dev/token", post(dev_token))
                .route("/admin/rotate", post(rotate))
                .route_layer(axum::middleware::from_fn_with_state(
                    self.clone(),
                    development_guard,
                ));
            router = router.merge(development);
        }
        router
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self.clone())
    }
}

/// The host part of a `Host` or `Origin` authority (`127.0.0.1:7166`, `[::1]:7166`,
/// `localhost`).
fn host_name(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(name, _)| name)
}

/// Whether `host` (a `Host` header value) names this machine: a loopback IP or `localhost`.
pub fn is_loopback_host(host: &str) -> bool {
    let name = host_name(host);
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `/dev/token` and `/admin/rotate` mint tokens and rotate keys without a client assertion,
/// so a web page the developer visits must not reach them: not through a DNS name rebound to
/// 127.0.0.1 (the `Host` must be a loopback address, `localhost`, or the issuer URL's own
/// host, so that `http://issuer:7166/` in a compose network still works: 421 otherwise), and
/// not with a cross-site form (a browser's `Origin`, when sent, must name one of those hosts:
/// 403 otherwise). Programs (`portvakt token`, curl) send no `Origin`.
async fn development_guard(
    State(issuer): State<Issuer>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let own = issuer.state.base.host_str().unwrap_or_default();
    let allowed = |host: &str| is_loopback_host(host) || host_name(host).eq_ignore_ascii_case(own);
    let headers = request.headers();
    if let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok())
        && !allowed(host)
    {
        return refusal(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "the development endpoints answer only under a loopback address, localhost or the issuer's own host ({own}), not {}",
                portvakt::printable(host)
            ),
        );
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let authority = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, authority)| authority);
        if !authority.is_some_and(allowed) {
            return refusal(
                StatusCode::FORBIDDEN,
                format!(
                    "a request from another site's page ({}) may not use the development endpoints",
                    portvakt::printable(origin.to_str().unwrap_or("(not text)"))
                ),
            );
        }
    }
    next.run(request).await
}

/// A JSON OAuth `invalid_request` with `status`.
fn refusal(status: StatusCode, description: String) -> Response {
    let mut response = OAuthError::request(description).into_response();
    *response.status_mut() = status;
    response
}

async fn metadata(State(issuer): State<Issuer>) -> Json<serde_json::Value> {
    Json(issuer.metadata())
}

async fn jwks(State(issuer): State<Issuer>) -> Json<serde_json::Value> {
    Json(issuer.jwks())
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "not_found", "error_description": "no such endpoint"})),
    )
        .into_response()
}

/// A known path asked with another method (`GET /token`): JSON like every other refusal, not
/// an empty 405. The router adds the `Allow` header.
async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({
            "error": "invalid_request",
            "error_description": "this endpoint does not take this method: see the Allow header (the token endpoint takes POST)"
        })),
    )
        .into_response()
}

/// The request body, or the OAuth error for one that could not be read (over
/// `MAX_BODY_BYTES`, or cut off): a JSON `invalid_request` with `no-store`, as every answer of
/// the token endpoints is, where axum's own rejection is plain text.
fn body_or_error(body: Result<Bytes, BytesRejection>) -> Result<Bytes, OAuthError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            OAuthError::request(format!(
                "the request body is over {} KiB; a token request is a small form (an assertion is at most 16 KiB)",
                MAX_BODY_BYTES / 1024
            ))
        } else {
            OAuthError::request(format!("the request body could not be read: {e}"))
        }
    })
}

fn token_response(result: Result<TokenResponse, OAuthError>) -> Response {
    match result {
        Ok(token) => {
            let mut response = (StatusCode::OK, Json(token)).into_response();
            no_store(&mut response);
            response
        }
        Err(e) => e.into_response(),
    }
}

/// The media type of the body, lower case, without parameters.
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

const FORM: &str = "application/x-www-form-urlencoded";

fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// A parameter that may appear at most once (RFC 6749 section 3.2).
fn single<'a>(pairs: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, OAuthError> {
    let mut values = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
    let first = values.next();
    if values.next().is_some() {
        return Err(OAuthError::request(format!(
            "parameter `{name}` is repeated; send it once"
        )));
    }
    Ok(first.map(String::as_str))
}

async fn token(
    State(issuer): State<Issuer>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = (|| {
        let body = body_or_error(body)?;
        if media_type(&headers) != FORM {
            return Err(OAuthError::request(format!(
                "the token request must be a form ({FORM}) with grant_type and assertion"
            )));
        }
        let pairs = form_pairs(&body);
        match single(&pairs, "grant_type")? {
            None => {
                return Err(OAuthError::request(format!(
                    "grant_type is missing; Maskinporten uses {JWT_BEARER}"
                )));
            }
            Some(JWT_BEARER) => {}
            Some(other) => {
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    format!(
                        "grant_type \"{}\" is not supported; Maskinporten uses {JWT_BEARER}",
                        portvakt::printable(other)
                    ),
                ));
            }
        }
        let assertion = single(&pairs, "assertion")?
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                OAuthError::request(
                    "assertion is missing: send the signed JWT grant as `assertion`",
                )
            })?;
        issuer.exchange_assertion(assertion)
    })();
    token_response(result)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DevTokenJson {
    #[serde(default)]
    orgno: Option<String>,
    #[serde(default)]
    scope: Option<ScopeField>,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    on_behalf_of: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeField {
    One(String),
    Many(Vec<String>),
}

fn dev_request(headers: &HeaderMap, body: &[u8]) -> Result<DevTokenRequest, OAuthError> {
    let media = media_type(headers);
    if media == "application/json" {
        let parsed: DevTokenJson = serde_json::from_slice(body).map_err(|e| {
            OAuthError::request(format!(
                "the JSON body must be {{\"orgno\", \"scope\", \"audience\"?, \"on_behalf_of\"?}}: {e}"
            ))
        })?;
        return Ok(DevTokenRequest {
            orgno: parsed.orgno.unwrap_or_default(),
            scopes: match parsed.scope {
                None => Vec::new(),
                Some(ScopeField::One(s)) => vec![s],
                Some(ScopeField::Many(v)) => v,
            },
            audience: parsed.audience,
            on_behalf_of: parsed.on_behalf_of,
        });
    }
    if media != FORM {
        return Err(OAuthError::request(format!(
            "send the request as a form ({FORM}) or as JSON"
        )));
    }
    let pairs = form_pairs(body);
    if let Some((unknown, _)) = pairs
        .iter()
        .find(|(k, _)| !matches!(k.as_str(), "orgno" | "scope" | "audience" | "on_behalf_of"))
    {
        return Err(OAuthError::request(format!(
            "unknown parameter `{}`; use orgno, scope, audience, on_behalf_of",
            portvakt::printable(unknown)
        )));
    }
    Ok(DevTokenRequest {
        orgno: single(&pairs, "orgno")?.unwrap_or_default().to_owned(),
        scopes: pairs
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.clone())
            .collect(),
        audience: single(&pairs, "audience")?
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        on_behalf_of: single(&pairs, "on_behalf_of")?
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    })
}

async fn dev_token(
    State(issuer): State<Issuer>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    token_response(
        body_or_error(body)
            .and_then(|body| dev_request(&headers, &body))
            .and_then(|request| issuer.issue_dev(&request)),
    )
}

/// `POST /admin/rotate`: rotates to the announced key (when the issuer announces keys), or with
/// `?unannounced=true` to a fresh key that signs at once. Answers the new `kid`, the previous
/// one and until when it stays published, since when the new key was published
/// (`announced_since`, `null` when unannounced) and the key announced next (`next_kid`).
async fn rotate(State(issuer): State<Issuer>, RawQuery(query): RawQuery) -> Response {
    let unannounced = match query.as_deref() {
        None | Some("") | Some("unannounced=false") => false,
        Some("unannounced=true") => true,
        Some(other) => {
            return OAuthError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "unknown query `{other}`: POST /admin/rotate takes no query, or `unannounced=true` to sign at once with a key never published before"
                ),
            )
            .into_response();
        }
    };
    let rotated = if unannounced {
        issuer.rotate_unannounced().await
    } else {
        issuer.rotate().await
    };
    let secs = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    match rotated {
        Ok(rotation) => Json(json!({
            "kid": rotation.new_kid,
            "previous_kid": rotation.previous_kid,
            "previous_published_until": secs(rotation.retired_until),
            "announced_since": rotation.announced_since.map(secs),
            "next_kid": rotation.next_kid,
        }))
        .into_response(),
        Err(e) => OAuthError::new(ErrorCode::ServerError, e.to_string()).into_response(),
    }
}
