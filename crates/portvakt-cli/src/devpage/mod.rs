//! The development page: the grants at a glance, tokens minted and inspected in the browser.
//!
//! Served only in development mode, on loopback: by `portvakt serve` with the embedded local
//! issuer (at `http://127.0.0.1:7164/`) and by `portvakt issuer` without `--strict` (at its
//! own root). Anywhere else the paths below do not exist (404), whatever the flags: the page
//! mints tokens for any organization the manifest grants, exactly like the issuer's
//! `/dev/token` it calls.
//!
//! | path                    | what                                                            |
//! |-------------------------|-----------------------------------------------------------------|
//! | `GET /`                 | the page (HTML)                                                 |
//! | `GET /dev/page/app.js`  | its script; `GET /dev/page/app.css` its style sheet             |
//! | `GET /dev/page/grants`  | [`grants`]: scopes x consumers, diagnostics, settings (JSON)   |
//! | `POST /dev/page/mint`   | [`mint`]: a token from the issuer's development shortcut        |
//! | `POST /dev/page/inspect`| [`inspect`]: every check of a token, optionally a route test    |
//!
//! The endpoints only translate: the grant decisions are the manifest's
//! ([`portvakt_manifest::GrantsTable::check`]), tokens come from what `portvakt token` does
//! ([`crate::token_cmd::dev_token`]), checks from [`portvakt::Validator::inspect`] (what
//! `portvakt inspect` prints), and the route test from the proxy's own policy and answers
//! ([`crate::proxy`]). The library knows nothing of the page.
//!
//! ## Security
//!
//! - Every response carries `Content-Security-Policy: default-src 'none'; script-src 'self';
//!   style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none';
//!   frame-ancestors 'none'`: no inline script or style, nothing from another host. The page
//!   uses no framework, fonts or images from elsewhere and makes no request but to its own
//!   origin.
//! - `Cache-Control: no-store`, `Referrer-Policy: no-referrer`, `X-Content-Type-Options:
//!   nosniff`, `X-Frame-Options: DENY`.
//! - A request whose `Host` is not a loopback address or `localhost` gets 421: a web page on
//!   the internet cannot reach the page through a DNS name rebound to 127.0.0.1. A `POST` must
//!   be `application/json` (so a cross-site form cannot send one without a CORS preflight,
//!   which is never answered) and, when the browser sends `Origin`, come from the page's own
//!   origin.
//! - Tokens are never logged or kept: they are in request and response bodies only; the page
//!   keeps them in the document (no storage, no URL) and turns off spell checking and
//!   autocomplete on the token field.

pub mod grants;
pub mod inspect;
pub mod mint;

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use portvakt::Validator;
use portvakt_manifest::Manifest;

use crate::proxy::routes::PolicyFile;

/// The page's `Content-Security-Policy`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Where the page's script, style sheet and JSON endpoints live.
pub const PREFIX: &str = "/dev/page";

/// Request bodies are small: a token is at most a few KiB.
const MAX_BODY_BYTES: usize = 64 * 1024;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The proxy the page can test routes against: its address and policy.
#[derive(Debug, Clone)]
pub struct ProxyTarget {
    /// `http://ADDR` of the proxy's listener, for the `curl` line.
    pub url: String,
    /// The policy it enforces.
    pub policy: PolicyFile,
}

/// What the page shows and where it gets tokens and verdicts from.
#[derive(Debug, Clone)]
pub struct DevPage {
    /// The manifest whose grants the issuer enforces, and its diagnostics.
    pub manifest: Arc<Manifest>,
    /// The local issuer's URL (its development shortcut mints the tokens).
    pub issuer_url: String,
    /// Validates pasted tokens against that issuer.
    pub validator: Validator,
    /// `http://ADDR` of the sidecar's introspection API, for the `curl` line (`portvakt serve`).
    pub introspection: Option<String>,
    /// The enforcing proxy, when `portvakt serve` runs one.
    pub proxy: Option<ProxyTarget>,
    /// Which command serves the page (`portvakt serve`, `portvakt issuer`).
    pub served_by: &'static str,
    /// A caveat to show, e.g. that the issuer was already running with its own manifest.
    pub note: Option<String>,
}

impl DevPage {
    /// The page's routes (`/` and [`PREFIX`]`/*`), with the headers and checks of the module
    /// documentation. Merge it into a router with no route at `/`.
    pub fn router(self) -> Router {
        let state = Arc::new(self);
        Router::new()
            .route("/", get(index))
            .route(&format!("{PREFIX}/app.js"), get(script))
            .route(&format!("{PREFIX}/app.css"), get(style))
            .route(&format!("{PREFIX}/grants"), get(grants::grants))
            .route(&format!("{PREFIX}/mint"), post(mint::mint))
            .route(&format!("{PREFIX}/inspect"), post(inspect::inspect))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(middleware::from_fn(guard))
            .with_state(state)
    }
}

/// Whether the page may be served on a listener bound to `ip`: loopback only, so that nobody
/// else on the network can mint tokens through it.
pub fn serves_on(ip: IpAddr) -> bool {
    ip.is_loopback()
}

type State = axum::extract::State<Arc<DevPage>>;

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// A JSON answer of the page's endpoints.
fn json(value: serde_json::Value) -> Response {
    axum::Json(value).into_response()
}

/// A request the page refuses, with what to do.
fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        format!("{message}\n"),
    )
        .into_response()
}

pub use portvakt_issuer::is_loopback_host;

/// Why a request may not reach the page, if it may not.
fn refusal(method: &Method, headers: &HeaderMap) -> Option<Response> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !is_loopback_host(host) {
        return Some(refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "the development page answers only under a loopback address (http://127.0.0.1:PORT/ or http://localhost:PORT/)",
        ));
    }
    if method == Method::POST {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Some(refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the request as JSON (Content-Type: application/json)",
            ));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let own = origin.to_str().ok().and_then(|o| o.strip_prefix("http://")) == Some(host);
            if !own {
                return Some(refuse(
                    StatusCode::FORBIDDEN,
                    "the development page accepts requests only from its own origin",
                ));
            }
        }
    }
    None
}

/// The checks and headers of the module documentation, around every route of the page.
async fn guard(request: Request, next: Next) -> Response {
    let mut response = match refusal(request.method(), request.headers()) {
        Some(refused) => refused,
        None => next.run(request).await,
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A JSON body the endpoints could not read: 400 with what was wrong.
fn bad_body(error: &axum::extract::rejection::JsonRejection) -> Response {
    refuse(StatusCode::BAD_REQUEST, &error.body_text())
}

#[cfg(test)]
mod tests;
