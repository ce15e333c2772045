//! `POST /dev/page/mint`: a token from the local issuer's development shortcut, exactly as
//! `portvakt token --orgno` gets one ([`crate::token_cmd::dev_token`]), or the issuer's
//! refusal worded as `portvakt token` prints it ([`crate::token_cmd::error_text`]); with the
//! `curl` lines that use it.
//!
//! Request: `{"orgno": "123456789", "scopes": ["nav:arbeid:some.scope.read"], "audience"?:
//! "https://...", "on_behalf_of"?: "987654321"}` (scopes may also be space-separated).
//! Answer: `{"ok": true, "token", "scope", "expires_in", "curl": [{"label", "command"}]}` or
//! `{"ok": false, "error": "error: invalid_scope: ..."}`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::Method;
use axum::response::Response;
use portvakt::ScopeSet;
use portvakt::client::TokenRequest;
use serde::Deserialize;
use serde_json::json;

use super::{DevPage, ProxyTarget, State, bad_body, json};
use crate::proxy::routes::{Access, Route};
use crate::token_cmd;

/// What the Mint panel sends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    /// The organization asking (empty: the issuer says which are granted).
    #[serde(default)]
    pub orgno: String,
    /// The scopes, each entry possibly several separated by spaces.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// An audience for an audience-restricted token; empty for none.
    #[serde(default)]
    pub audience: Option<String>,
    /// The organization to act on behalf of (delegation); empty for none.
    #[serde(default)]
    pub on_behalf_of: Option<String>,
}

fn given(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

pub(super) async fn mint(
    axum::extract::State(page): State,
    body: Result<Json<MintRequest>, JsonRejection>,
) -> Response {
    let request = match body {
        Ok(Json(request)) => request,
        Err(e) => return bad_body(&e),
    };
    let orgno = request.orgno.trim().to_owned();
    let mut token_request = TokenRequest::new(
        request
            .scopes
            .iter()
            .flat_map(|s| s.split_whitespace())
            .map(str::to_owned),
    );
    token_request.audience = given(request.audience);
    token_request.on_behalf_of = given(request.on_behalf_of);
    let orgno_flag = (!orgno.is_empty()).then_some(orgno.as_str());
    match token_cmd::dev_token(&page.issuer_url, orgno_flag, &token_request).await {
        Ok(token) => {
            let consumer = token_request.on_behalf_of.as_deref().unwrap_or(&orgno);
            let curl = curl_lines(&page, &ScopeSet::parse(&token.scope), consumer);
            json(json!({
                "ok": true,
                "token": token.as_str(),
                "scope": token.scope,
                "expires_in": token.expires_in.as_secs(),
                "curl": curl,
            }))
        }
        Err(e) => json(json!({"ok": false, "error": token_cmd::error_text(&e)})),
    }
}

/// The `curl` lines for a token in `$TOKEN`: the sidecar's introspection, and the proxy on the
/// first route the token's scopes and consumer satisfy (else the first that needs a token).
pub fn curl_lines(page: &DevPage, granted: &ScopeSet, consumer: &str) -> Vec<serde_json::Value> {
    let mut lines = Vec::new();
    if let Some(api) = &page.introspection {
        lines.push(json!({
            "label": "Introspection (the NAIS sidecar API)",
            "command": crate::serve::introspect_curl(api),
        }));
    }
    if let Some(proxy) = &page.proxy
        && let Some(command) = proxy_curl(proxy, granted, consumer)
    {
        lines.push(json!({"label": "Through the enforcing proxy", "command": command}));
    }
    lines
}

fn proxy_curl(proxy: &ProxyTarget, granted: &ScopeSet, consumer: &str) -> Option<String> {
    let routes = proxy.policy.routes();
    let fits = |route: &&Route| match route.access() {
        Access::Token(policy) => {
            policy.scope_requirement().is_satisfied_by(granted)
                && route
                    .consumers()
                    .is_none_or(|allowed| allowed.iter().any(|o| o == consumer))
        }
        _ => false,
    };
    let route = routes.iter().find(fits).or_else(|| {
        routes
            .iter()
            .find(|r| matches!(r.access(), Access::Token(_)))
    })?;
    let method = route
        .methods()
        .and_then(|m| m.first())
        .map_or("GET", Method::as_str);
    let flag = if method == "GET" {
        String::new()
    } else {
        format!(" -X {method}")
    };
    Some(format!(
        "curl -si{flag} {}{} -H \"Authorization: Bearer $TOKEN\"",
        proxy.url,
        example_path(route.pattern().as_str())
    ))
}

/// A path a pattern matches: `*` becomes `1`, a final `**` becomes `example`.
pub fn example_path(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|segment| match segment {
            "**" => "example",
            "*" => "1",
            literal => literal,
        })
        .collect::<Vec<_>>()
        .join("/")
}
