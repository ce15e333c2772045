//! The local Digdir's admin API under `/api/v1/`, at the real one's paths and with its answers.
//!
//! Every route but `GET /delegationsources` needs `Authorization: Bearer` with a token of this
//! issuer carrying `idporten:scopes.read` (reads) or `idporten:scopes.write` (writes): 401
//! without a valid token, 403 without the scope. Refusals are `{"error", "error_description"}`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use portvakt_provision::types::{SCOPES_READ, SCOPES_WRITE, ScopeRegistration};
use portvakt_provision::{AccessEntry, DelegationSourceEntry};
use serde::Deserialize;
use serde_json::json;

use super::state::{ALTINN, timestamp};
use crate::issuer::Issuer;

/// Why the admin API refused.
struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl Refusal {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Refusal {
            status,
            error,
            description: description.into(),
        }
    }

    fn bad_request(description: impl Into<String>) -> Self {
        Refusal::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn not_found(description: impl Into<String>) -> Self {
        Refusal::new(StatusCode::NOT_FOUND, "not_found", description)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

type Answer = Result<Response, Refusal>;

/// Changes the state under its lock and, with a state file, persists it before answering.
///
/// The change is made on a copy, which replaces the state only once it is saved: a write
/// answered 500 because the file could not be written has changed nothing, in memory (where
/// tokens are issued from) or on disk, so a client's retry finds the state as it was.
fn write<T>(
    issuer: &Issuer,
    change: impl FnOnce(&mut super::DigdirState) -> Result<T, Refusal>,
) -> Result<T, Refusal> {
    let mut state = issuer.digdir_lock();
    let mut next = state.clone();
    let value = change(&mut next)?;
    issuer.persist(&next).map_err(|e| {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            e.to_string(),
        )
    })?;
    *state = next;
    Ok(value)
}

/// The admin routes, to be nested at `/api/v1`.
pub(crate) fn router() -> Router<Issuer> {
    Router::new()
        .route(
            "/scopes",
            get(list_scopes)
                .post(create_scope)
                .put(update_scope)
                .delete(deactivate_scope),
        )
        .route("/scopes/access", get(list_access))
        .route(
            "/scopes/access/{orgno}",
            axum::routing::put(grant).delete(revoke),
        )
        .route("/delegationsources", get(delegation_sources))
}

/// Checks the bearer token: signed by this issuer, unexpired, carrying `needed`.
fn authorize(issuer: &Issuer, headers: &HeaderMap, needed: &str) -> Result<(), Refusal> {
    let unauthorized = |d: String| Refusal::new(StatusCode::UNAUTHORIZED, "invalid_token", d);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .ok_or_else(|| {
            unauthorized(format!(
                "send Authorization: Bearer <token>, a token of this issuer with scope {needed} (JWT-bearer grant of an admin client, or /dev/token in development mode)"
            ))
        })?;
    let config = portvakt::Config::builder()
        .issuer(issuer.issuer_url())
        .build()
        .map_err(|e| {
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                e.to_string(),
            )
        })?;
    let validator = portvakt::Validator::with_keys(&config, issuer.issuer_url(), issuer.key_set());
    let verified = validator
        .validate_now(token)
        .map_err(|e| unauthorized(format!("the admin token is not valid: {e}")))?;
    if !verified.claims().scopes().contains(needed) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("the admin token lacks scope {needed}"),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct ScopeQuery {
    scope: Option<String>,
    #[serde(default)]
    inactive: Option<bool>,
}

impl ScopeQuery {
    fn scope(&self) -> Result<&str, Refusal> {
        self.scope
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Refusal::bad_request(
                    "query parameter `scope` is required: ?scope=<prefix:subscope>",
                )
            })
    }
}

fn ok<T: serde::Serialize>(status: StatusCode, value: T) -> Answer {
    Ok((status, Json(value)).into_response())
}

fn no_scope(scope: &str) -> Refusal {
    Refusal::not_found(format!(
        "scope {scope} is not registered by this organization"
    ))
}

/// Parses a registration body; checks what Digdir requires.
fn registration(body: &[u8]) -> Result<ScopeRegistration, Refusal> {
    let r: ScopeRegistration = serde_json::from_slice(body)
        .map_err(|e| Refusal::bad_request(format!("the body is not a ScopeRegistration: {e}")))?;
    if r.prefix.is_empty() || r.subscope.is_empty() {
        return Err(Refusal::bad_request("prefix and subscope are required"));
    }
    if r.description.trim().is_empty() {
        return Err(Refusal::bad_request("description is required"));
    }
    if let Some(v) = r.visibility.as_deref()
        && !matches!(v, "PUBLIC" | "PRIVATE" | "INTERNAL")
    {
        return Err(Refusal::bad_request(format!(
            "visibility {v:?} is not PUBLIC, PRIVATE or INTERNAL"
        )));
    }
    if let Some(t) = r.token_type.as_deref()
        && !matches!(t, "SELF_CONTAINED" | "OPAQUE")
    {
        return Err(Refusal::bad_request(format!(
            "token_type {t:?} is not SELF_CONTAINED or OPAQUE"
        )));
    }
    Ok(r)
}

async fn list_scopes(
    State(issuer): State<Issuer>,
    headers: HeaderMap,
    Query(query): Query<ScopeQuery>,
) -> Answer {
    authorize(&issuer, &headers, SCOPES_READ)?;
    let inactive = query.inactive.unwrap_or(false);
    let list: Vec<ScopeRegistration> = issuer.digdir(|d| {
        d.scopes()
            .filter(|s| inactive || s.active)
            .cloned()
            .collect()
    });
    ok(StatusCode::OK, list)
}

async fn create_scope(State(issuer): State<Issuer>, headers: HeaderMap, body: Bytes) -> Answer {
    authorize(&issuer, &headers, SCOPES_WRITE)?;
    let new = registration(&body)?;
    let name = new.full_name();
    let owner = issuer.owner_orgno().to_owned();
    let created = write(&issuer, |d| {
        if d.scopes.contains_key(&name) {
            return Err(Refusal::new(
                StatusCode::CONFLICT,
                "conflict",
                format!(
                    "scope {name} already exists (active or not): update it with PUT /scopes?scope={name}"
                ),
            ));
        }
        d.insert_scope(new, &owner);
        Ok(d.scopes[&name].clone())
    })?;
    ok(StatusCode::CREATED, created)
}

async fn update_scope(
    State(issuer): State<Issuer>,
    headers: HeaderMap,
    Query(query): Query<ScopeQuery>,
    body: Bytes,
) -> Answer {
    authorize(&issuer, &headers, SCOPES_WRITE)?;
    let scope = query.scope()?.to_owned();
    let new = registration(&body)?;
    if new.full_name() != scope {
        return Err(Refusal::bad_request(format!(
            "the name of a scope cannot change: the body names {}, the query {scope}",
            new.full_name()
        )));
    }
    let updated = write(&issuer, |d| {
        let old = d.scopes.get_mut(&scope).ok_or_else(|| no_scope(&scope))?;
        *old = ScopeRegistration {
            name: old.name.clone(),
            owner_orgno: old.owner_orgno.clone(),
            created: old.created.clone(),
            last_updated: Some(timestamp(std::time::SystemTime::now())),
            other: Default::default(),
            ..new
        };
        Ok(old.clone())
    })?;
    ok(StatusCode::OK, updated)
}

async fn deactivate_scope(
    State(issuer): State<Issuer>,
    headers: HeaderMap,
    Query(query): Query<ScopeQuery>,
) -> Answer {
    authorize(&issuer, &headers, SCOPES_WRITE)?;
    let scope = query.scope()?.to_owned();
    let done = write(&issuer, |d| {
        let s = d.scopes.get_mut(&scope).ok_or_else(|| no_scope(&scope))?;
        s.active = false;
        s.last_updated = Some(timestamp(std::time::SystemTime::now()));
        Ok(s.clone())
    })?;
    ok(StatusCode::OK, done)
}

async fn list_access(
    State(issuer): State<Issuer>,
    headers: HeaderMap,
    Query(query): Query<ScopeQuery>,
) -> Answer {
    authorize(&issuer, &headers, SCOPES_READ)?;
    let scope = query.scope()?;
    let list: Option<Vec<AccessEntry>> = issuer.digdir(|d| {
        d.scopes
            .contains_key(scope)
            .then(|| d.access(scope).cloned().collect())
    });
    ok(StatusCode::OK, list.ok_or_else(|| no_scope(scope))?)
}

fn orgno_in_path(orgno: &str) -> Result<(), Refusal> {
    if portvakt_manifest::is_nine_digits(orgno) {
        Ok(())
    } else {
        Err(Refusal::bad_request(format!(
            "{orgno:?} is not a nine-digit organization number"
        )))
    }
}

async fn grant(
    State(issuer): State<Issuer>,
    headers: HeaderMap,
    Path(orgno): Path<String>,
    Query(query): Query<ScopeQuery>,
) -> Answer {
    authorize(&issuer, &headers, SCOPES_WRITE)?;
    orgno_in_path(&orgno)?;
    let scope = query.scope()?.to_owned();
    let owner = issuer.owner_orgno().to_owned();
    let entry = write(&issuer, |d| {
        if !d.scopes.contains_key(&scope) {
            return Err(no_scope(&scope));
        }
        Ok(d.approve(&scope, &orgno, &owner))
    })?;
    ok(StatusCode::OK, entry)
}

async fn revoke(
    State(issuer): State<Issuer>,
    headers: HeaderMap,
    Path(orgno): Path<String>,
    Query(query): Query<ScopeQuery>,
) -> Answer {
    authorize(&issuer, &headers, SCOPES_WRITE)?;
    orgno_in_path(&orgno)?;
    let scope = query.scope()?.to_owned();
    write(&issuer, |d| {
        d.access
            .get_mut(&scope)
            .and_then(|m| m.remove(&orgno))
            .map(drop)
            .ok_or_else(|| {
                Refusal::not_found(format!(
                    "organization {orgno} has no access to scope {scope}"
                ))
            })
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delegation_sources(State(issuer): State<Issuer>) -> Json<Vec<DelegationSourceEntry>> {
    Json(vec![DelegationSourceEntry {
        name: ALTINN.to_owned(),
        issuer: issuer.altinn_delegation_source().to_owned(),
    }])
}
