//! `POST /api/v1/introspect`: the NAIS token sidecar's introspection API, for Maskinporten.
//!
//! Compatible with nais/texas: a JSON or form body with `identity_provider` (`maskinporten`)
//! and `token`; HTTP 200 with `{"active": true, ...every claim verbatim}` or `{"active": false,
//! "error": "..."}`; HTTP 400 `invalid_request` for malformed requests. portvakt adds, for
//! callers who want the policy applied here: optional `scope` (a space-separated string or an
//! array; all are required) and `audience`. An inactive answer also carries `error_code`, the
//! stable code of the reason (`expired`, `bad_signature`, ...).

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portvakt::{Policy, ScopeRequirement, Validator};
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Map, Value};

use super::metrics::Metrics;

/// The largest request body read; a token is at most 16 KiB by default.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The one identity provider this sidecar validates.
pub const IDENTITY_PROVIDER: &str = "maskinporten";

/// Shared by the sidecar's handlers.
#[derive(Clone)]
pub struct AppState {
    /// The validator (shared keys, cache and refresh).
    pub validator: Validator,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// What a caller asked to introspect.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IntrospectRequest {
    /// The token.
    pub token: String,
    /// Extension: scopes that must all be granted.
    pub scopes: Vec<String>,
    /// Extension: a required audience.
    pub audience: Option<String>,
}

/// Why a request is malformed (answered 400 `invalid_request`, or 413).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("request body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// Neither JSON nor a form.
    #[error("{0}")]
    MediaType(String),
    /// The body does not parse.
    #[error("{0}")]
    Body(String),
    /// A field is missing or wrong.
    #[error("{0}")]
    Field(String),
}

#[derive(serde::Deserialize)]
struct JsonBody {
    identity_provider: Option<Value>,
    token: Option<Value>,
    scope: Option<Value>,
    audience: Option<Value>,
}

/// Parses a request body by its `Content-Type`.
pub fn parse_request(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<IntrospectRequest, RequestError> {
    let media = content_type
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let (provider, token, scope, audience) = match media.as_str() {
        "application/json" => {
            let parsed: JsonBody = serde_json::from_slice(body).map_err(|e| {
                RequestError::Body(format!(
                    "request body is not a JSON object with string fields: {e}"
                ))
            })?;
            (
                parsed.identity_provider,
                parsed.token,
                parsed.scope,
                parsed.audience,
            )
        }
        "application/x-www-form-urlencoded" => {
            let mut provider = None;
            let mut token = None;
            let mut scopes: Vec<Value> = Vec::new();
            let mut audience = None;
            for (key, value) in url::form_urlencoded::parse(body) {
                let value = Value::String(value.into_owned());
                match &*key {
                    "identity_provider" => provider = Some(value),
                    "token" => token = Some(value),
                    "scope" => scopes.push(value),
                    "audience" => audience = Some(value),
                    _ => {}
                }
            }
            if token.is_none() && provider.is_none() && body.first() == Some(&b'{') {
                return Err(RequestError::MediaType(
                    "the body looks like JSON but was sent as application/x-www-form-urlencoded (curl -d does that): add the header Content-Type: application/json".to_owned(),
                ));
            }
            let scope = match scopes.len() {
                0 => None,
                1 => scopes.pop(),
                _ => Some(Value::Array(scopes)),
            };
            (provider, token, scope, audience)
        }
        "" => {
            return Err(RequestError::MediaType(
                "missing Content-Type: send application/json or application/x-www-form-urlencoded"
                    .to_owned(),
            ));
        }
        other => {
            return Err(RequestError::MediaType(format!(
                "unsupported Content-Type `{other}`: send application/json or application/x-www-form-urlencoded"
            )));
        }
    };
    let string_field = |name: &str, value: Option<Value>| -> Result<Option<String>, RequestError> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(RequestError::Field(format!("`{name}` must be a string"))),
        }
    };
    match string_field("identity_provider", provider)? {
        None => {
            return Err(RequestError::Field(format!(
                "missing `identity_provider`; this sidecar serves `{IDENTITY_PROVIDER}`"
            )));
        }
        Some(p) if p == IDENTITY_PROVIDER => {}
        Some(p) => {
            return Err(RequestError::Field(format!(
                "identity provider `{}` is not supported here; this sidecar validates `{IDENTITY_PROVIDER}` tokens",
                p.chars().take(40).collect::<String>()
            )));
        }
    }
    let token = string_field("token", token)?
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RequestError::Field("missing `token`".to_owned()))?;
    let scopes = match scope {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(RequestError::Field(
                    "`scope` must be a string or an array of strings".to_owned(),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(RequestError::Field(
                "`scope` must be a string or an array of strings".to_owned(),
            ));
        }
    };
    let audience = string_field("audience", audience)?;
    Ok(IntrospectRequest {
        token,
        scopes,
        audience,
    })
}

/// `{"active": true, ...claims}` without copying the claims, and with exactly one `active`
/// key even when the token carries a claim of that name.
struct Active<'a>(&'a Map<String, Value>);

impl Serialize for Active<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("active", &true)?;
        for (key, value) in self.0 {
            if key != "active" {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

/// The answer for an active token: `{"active":true, ...claims}`.
///
/// The payload is a JSON object that passed the validator's strict parse, so when it cannot
/// hold an `active` member of its own (the text `"active"` nowhere, and no escape that could
/// spell it) its members are copied as they are: one copy of contiguous bytes, instead of a
/// walk over a map spread across the heap (which, with thousands of cached tokens, is mostly
/// cache misses). Otherwise the map is written without the token's `active`.
fn active_body(claims: &portvakt::Claims) -> serde_json::Result<Vec<u8>> {
    let payload = claims.payload();
    let members = payload.trim_start().strip_prefix('{');
    if let Some(members) = members
        && !payload.contains('\\')
        && !payload.contains("\"active\"")
    {
        let mut body = Vec::with_capacity(payload.len() + 16);
        body.extend_from_slice(b"{\"active\":true");
        if !members.trim_start().starts_with('}') {
            body.push(b',');
        }
        body.extend_from_slice(members.as_bytes());
        return Ok(body);
    }
    serde_json::to_vec(&Active(claims.raw()))
}

#[derive(Serialize)]
struct Inactive<'a> {
    active: bool,
    error: &'a str,
    error_code: &'a str,
}

#[derive(Serialize)]
struct InvalidRequest<'a> {
    error: &'a str,
    error_description: &'a str,
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The handler.
pub async fn introspect(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let body: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return request_error(&state, RequestError::TooLarge),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let request = match parse_request(content_type, &body) {
        Ok(request) => request,
        Err(e) => return request_error(&state, e),
    };
    let mut policy = Policy::new();
    if !request.scopes.is_empty() {
        policy = policy.scopes(ScopeRequirement::all_of(request.scopes));
    }
    if let Some(audience) = request.audience {
        policy = policy.require_audience(audience);
    }
    let started = Instant::now();
    let result = state.validator.validate_with(&request.token, &policy).await;
    let elapsed = started.elapsed();
    let body = match &result {
        Ok(verified) => {
            state.metrics.validation("valid", elapsed);
            state.metrics.request("introspect", "active");
            active_body(verified.claims())
        }
        Err(e) => {
            state.metrics.validation(e.code(), elapsed);
            state.metrics.request("introspect", "inactive");
            tracing::debug!(code = e.code(), "token inactive");
            serde_json::to_vec(&Inactive {
                active: false,
                error: &e.to_string(),
                error_code: e.code(),
            })
        }
    };
    match body {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => {
            tracing::error!(%e, "could not serialize an introspection answer");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn request_error(state: &AppState, error: RequestError) -> Response {
    let (status, outcome) = match error {
        RequestError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        _ => (StatusCode::BAD_REQUEST, "bad_request"),
    };
    state.metrics.request("introspect", outcome);
    let description = error.to_string();
    let body = serde_json::to_vec(&InvalidRequest {
        error: "invalid_request",
        error_description: &description,
    })
    .unwrap_or_default();
    json_response(status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json");
    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    #[test]
    fn json_and_form_requests() {
        let r =
            parse_request(JSON, br#"{"identity_provider":"maskinporten","token":"t"}"#).unwrap();
        assert_eq!(r.token, "t");
        let r = parse_request(Some("application/json; charset=utf-8"), br#"{"identity_provider":"maskinporten","token":"t","scope":"a b","audience":"https://x/"}"#).unwrap();
        assert_eq!(r.scopes, ["a", "b"]);
        assert_eq!(r.audience.as_deref(), Some("https://x/"));
        let r = parse_request(
            JSON,
            br#"{"identity_provider":"maskinporten","token":"t","scope":["a"]}"#,
        )
        .unwrap();
        assert_eq!(r.scopes, ["a"]);
        let r = parse_request(
            FORM,
            b"identity_provider=maskinporten&token=t%2Bx&scope=a&scope=b",
        )
        .unwrap();
        assert_eq!((r.token.as_str(), r.scopes.len()), ("t+x", 2));
    }

    #[test]
    fn malformed_requests_say_what_to_fix() {
        let err = |ct, body: &[u8]| parse_request(ct, body).unwrap_err().to_string();
        assert!(err(JSON, b"{").contains("not a JSON object"));
        assert_eq!(
            err(JSON, br#"{"identity_provider":"maskinporten"}"#),
            "missing `token`"
        );
        assert_eq!(
            err(JSON, br#"{"identity_provider":"maskinporten","token":""}"#),
            "missing `token`"
        );
        assert_eq!(
            err(JSON, br#"{"identity_provider":"maskinporten","token":1}"#),
            "`token` must be a string"
        );
        assert!(
            err(JSON, br#"{"identity_provider":"azuread","token":"t"}"#)
                .contains("`azuread` is not supported")
        );
        assert!(err(JSON, br#"{"token":"t"}"#).contains("missing `identity_provider`"));
        assert!(err(None, b"{}").contains("missing Content-Type"));
        assert!(err(Some("text/plain"), b"x").contains("unsupported Content-Type `text/plain`"));
        assert!(
            err(FORM, br#"{"identity_provider":"maskinporten","token":"t"}"#)
                .contains("Content-Type: application/json")
        );
    }

    #[test]
    fn active_answers_copy_the_payload_or_drop_the_tokens_own_active() {
        let read = |payload: &str| {
            let claims = portvakt::Claims::from_payload(payload).unwrap();
            let body = active_body(&claims).unwrap();
            serde_json::from_slice::<Value>(&body).unwrap()
        };
        assert_eq!(
            read(r#"{"scope":"a","exp":1}"#),
            serde_json::json!({"active": true, "scope": "a", "exp": 1})
        );
        assert_eq!(read(" { } "), serde_json::json!({"active": true}));
        assert_eq!(
            read("{ \"scope\" : \"a\" }"),
            serde_json::json!({"active": true, "scope": "a"})
        );
        assert_eq!(
            read(r#"{"active":false,"scope":"a"}"#),
            serde_json::json!({"active": true, "scope": "a"})
        );
        assert_eq!(
            read(r#"{"\u0061ctive":false,"scope":"a"}"#),
            serde_json::json!({"active": true, "scope": "a"})
        );
        assert_eq!(
            read(r#"{"status":"active"}"#),
            serde_json::json!({"active": true, "status": "active"})
        );
    }

    #[test]
    fn active_answer_has_one_active_key() {
        let mut claims = Map::new();
        claims.insert("active".into(), Value::Bool(false));
        claims.insert("scope".into(), Value::String("a".into()));
        let text = serde_json::to_string(&Active(&claims)).unwrap();
        assert_eq!(text, r#"{"active":true,"scope":"a"}"#);
    }
}
