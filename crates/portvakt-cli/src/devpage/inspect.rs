//! `POST /dev/page/inspect`: every check of a pasted token, as `portvakt inspect` reports it
//! ([`portvakt::Validator::inspect`]), optionally against a route: required scopes (and
//! audience), or a method and path of the loaded proxy policy, answered as the proxy would
//! answer (its policy, its validation, its refusals, its identity headers).
//!
//! Request: `{"token": "...", "route"?: {"kind": "scopes", "scopes": [...], "any": false,
//! "audience"?: "..."} | {"kind": "proxy", "method": "GET", "path": "/api/v1/x"}}`.
//! Answer: `{"inspection": {valid, error, error_description, checks, header, claims},
//! "requirement": "...", "proxy"?: {forwarded, status, route, answer, www_authenticate,
//! headers}}`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use portvakt::bearer::Rejection;
use portvakt::{Policy, Validator};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ProxyTarget, State, bad_body, json, refuse};
use crate::inspect_cmd::{bare_token, route_policy};
use crate::proxy::answer;
use crate::proxy::headers::identity_headers;
use crate::proxy::routes::{Access, RequestPath};

/// What the Inspect panel sends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InspectRequest {
    /// The token, possibly as a copied `Bearer ...` header value.
    pub token: String,
    /// What to test it against; none: any valid token.
    #[serde(default)]
    pub route: Option<RouteTest>,
}

/// A route to test a token against.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RouteTest {
    /// Like `portvakt inspect --scope ... [--any-scope] [--audience ...]`.
    Scopes {
        /// The scopes required (each entry possibly several, space-separated).
        #[serde(default)]
        scopes: Vec<String>,
        /// One of them is enough.
        #[serde(default)]
        any: bool,
        /// The audience required; empty for none.
        #[serde(default)]
        audience: Option<String>,
    },
    /// A request to the enforcing proxy.
    Proxy {
        /// The HTTP method.
        method: String,
        /// The path (a query is ignored, as the proxy ignores it).
        path: String,
    },
}

pub(super) async fn inspect(
    axum::extract::State(page): State,
    body: Result<Json<InspectRequest>, JsonRejection>,
) -> Response {
    let request = match body {
        Ok(Json(request)) => request,
        Err(e) => return bad_body(&e),
    };
    let token = bare_token(&request.token);
    if token.is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "no token: paste one (a copied `Authorization: Bearer ...` value works too)",
        );
    }
    let (policy, proxy) = match request.route {
        None => (Policy::new(), None),
        Some(RouteTest::Scopes {
            scopes,
            any,
            audience,
        }) => {
            let scopes = scopes
                .iter()
                .flat_map(|s| s.split_whitespace())
                .map(str::to_owned)
                .collect();
            let audience = audience
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty());
            (route_policy(scopes, any, audience), None)
        }
        Some(RouteTest::Proxy { method, path }) => match &page.proxy {
            None => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "no proxy policy is loaded: start `portvakt serve` with --upstream URL --policy FILE to test paths, or test required scopes instead",
                );
            }
            Some(target) => {
                let (policy, verdict) =
                    proxy_verdict(target, &page.validator, &method, &path, token).await;
                (policy, Some(verdict))
            }
        },
    };
    let inspection = page.validator.inspect(token, &policy).await;
    let requirement = policy.scope_requirement();
    json(json!({
        "inspection": inspection,
        "requirement": if requirement.requires_nothing() {
            "no scope required".to_owned()
        } else {
            format!("needs {requirement}")
        },
        "proxy": proxy,
    }))
}

/// What the proxy would do with `method path` and this token: the policy the route applies
/// (for the checks) and the verdict.
async fn proxy_verdict(
    target: &ProxyTarget,
    validator: &Validator,
    method: &str,
    path: &str,
    token: &str,
) -> (Policy, Value) {
    let Ok(method) = Method::from_bytes(method.trim().as_bytes()) else {
        let error = format!("`{}` is not an HTTP method", method.escape_debug());
        return (Policy::new(), json!({"error": error}));
    };
    let path = path.trim();
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    let parsed = match RequestPath::parse(path) {
        Ok(parsed) => parsed,
        Err(e) => {
            return (
                Policy::new(),
                refused(answer::bad_path(&e), Value::Null).await,
            );
        }
    };
    let policy = &target.policy;
    let route = policy
        .match_route(&method, &parsed)
        .map_or(Value::Null, |r| {
            json!({
                "line": r.line(),
                "path": r.pattern().as_str(),
                "access": r.describe_access(),
            })
        });
    match policy.access(&method, &parsed) {
        Access::Deny => (Policy::new(), refused(answer::denied(), route).await),
        Access::Public => (
            Policy::new(),
            json!({"forwarded": true, "status": null, "route": route, "headers": [], "public": true}),
        ),
        Access::Token(route_policy) => {
            let verdict = match validator.validate_with(token, route_policy).await {
                Ok(verified) => {
                    let mut headers = Vec::new();
                    identity_headers(&verified, |name, value| {
                        headers.push(json!([
                            name.as_str(),
                            value.to_str().unwrap_or("(not ASCII)")
                        ]));
                    });
                    json!({"forwarded": true, "status": null, "route": route, "headers": headers})
                }
                Err(e) => {
                    let rejection = Rejection::new(e).with_realm(policy.realm());
                    refused(answer::rejection(&rejection), route).await
                }
            };
            (route_policy.clone(), verdict)
        }
    }
}

/// A refusal the proxy would send: its status, challenge and JSON body.
async fn refused(response: Response, route: Value) -> Value {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    json!({
        "forwarded": false,
        "status": status,
        "route": route,
        "answer": body,
        "www_authenticate": challenge,
    })
}
