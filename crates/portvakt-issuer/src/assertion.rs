//! Verifies a client assertion (the JWT of the JWT-bearer grant) the way Maskinporten does.
//!
//! Order: shape; `iss` names a registered client (`invalid_client`); the signature verifies
//! with the key the header's `kid` names among that client's keys (`invalid_client`); then the
//! claims (`invalid_grant`): only those Maskinporten accepts, `aud` exactly the issuer, `iat`
//! within 10 s of now, `exp` in the future and at most 120 s after `iat`, a `jti`, a `scope`,
//! well-formed optional claims (`authorization_details` only of the types in
//! [`AUTHORIZATION_DETAILS_TYPES`]); and last the `jti` is remembered, so the assertion cannot be
//! used again.

use std::sync::Arc;

use portvakt::jws::{decode_unverified_header, decode_unverified_payload, verify_compact};
use portvakt::{ValidationError, printable};
use serde_json::{Map, Value};

use crate::clients::{ASSERTION_ALGORITHMS, ClientRegistry, RegisteredClient};
use crate::error::{ErrorCode, OAuthError};
use crate::replay::{ReplayCache, ReplayError};

/// Claims Maskinporten accepts in an assertion; any other is refused.
pub const ACCEPTED_CLAIMS: [&str; 11] = [
    "aud",
    "iss",
    "iat",
    "exp",
    "jti",
    "scope",
    "resource",
    "authorization_details",
    "consumer_org",
    "iss_onbehalfof",
    "pid",
];

/// The `authorization_details` types Maskinporten knows (RFC 9396 rich authorization requests):
/// Altinn system users and Altinn consents. Advertised in the discovery document as
/// `authorization_details_types_supported`; an assertion with any other type is refused.
pub const AUTHORIZATION_DETAILS_TYPES: [&str; 2] = ["urn:altinn:systemuser", "urn:altinn:consent"];

/// How far `iat` may be from the issuer's clock, either way.
pub const MAX_CLOCK_SKEW_SECS: i64 = 10;
/// The longest assertion lifetime, `exp - iat`.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 120;
/// The largest assertion read.
pub const MAX_ASSERTION_BYTES: usize = 16 * 1024;
const MAX_JTI_LEN: usize = 256;

/// What a verified assertion asks for.
#[derive(Debug)]
pub(crate) struct VerifiedAssertion {
    pub(crate) client: Arc<RegisteredClient>,
    pub(crate) scopes: Vec<String>,
    pub(crate) resource: Option<Vec<String>>,
    pub(crate) consumer_org: Option<String>,
    pub(crate) pid: Option<String>,
    pub(crate) authorization_details: Option<Value>,
}

pub(crate) fn verify(
    assertion: &str,
    issuer: &str,
    clients: &ClientRegistry,
    replay: &ReplayCache,
    now: i64,
) -> Result<VerifiedAssertion, OAuthError> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(OAuthError::request(format!(
            "assertion is {} bytes; at most {MAX_ASSERTION_BYTES} are accepted",
            assertion.len()
        )));
    }
    let claims = decode_unverified_payload(assertion)
        .map_err(|e| OAuthError::grant(format!("assertion is not a JWT: {e}")))?;
    let client_id = match claims.get("iss") {
        Some(Value::String(iss)) if !iss.is_empty() => iss.as_str(),
        Some(_) => {
            return Err(OAuthError::client(
                "assertion `iss` must be a string: your client_id",
            ));
        }
        None => {
            return Err(OAuthError::client(
                "assertion has no `iss`; it must be your client_id",
            ));
        }
    };
    let client = clients.get(client_id).ok_or_else(|| {
        OAuthError::client(format!(
            "unknown client_id \"{}\": no client with this id is registered with this issuer",
            printable(client_id)
        ))
    })?;
    verify_signature(assertion, client)?;
    check_claims(&claims, client, issuer, replay, now)
}

fn verify_signature(assertion: &str, client: &RegisteredClient) -> Result<(), OAuthError> {
    if let Ok(header) = decode_unverified_header(assertion)
        && !header.contains_key("kid")
        && header.contains_key("x5c")
    {
        return Err(OAuthError::client(
            "assertion header has `x5c` but no `kid`: the local issuer authenticates clients by registered keys only, not by enterprise certificates; send the `kid` of your registered key",
        ));
    }
    let id = client.client_id();
    verify_compact(assertion, client.keys(), &ASSERTION_ALGORITHMS)
        .map(|_| ())
        .map_err(|e| match e {
            ValidationError::UnknownKid { kid } => OAuthError::client(format!(
                "assertion is signed with kid \"{kid}\", which is not a registered key of client {id} (registered: {})",
                client.keys().kids().join(", ")
            )),
            ValidationError::BadSignature { kid } => OAuthError::client(format!(
                "assertion signature does not verify with key \"{kid}\" of client {id}"
            )),
            ValidationError::MissingKid => OAuthError::client(
                "assertion header has no `kid`; it must name the client's registered key",
            ),
            ValidationError::AlgorithmNotAllowed { alg, .. } => {
                let accepted = ASSERTION_ALGORITHMS
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(", ");
                OAuthError::client(match alg {
                    Some(alg) => format!(
                        "assertion `alg` \"{alg}\" is not accepted: Maskinporten accepts client assertions signed {accepted} with the client's registered RSA key"
                    ),
                    None => format!(
                        "assertion header has no `alg`: sign the assertion {accepted} with the client's registered RSA key"
                    ),
                })
            }
            ValidationError::KeyAlgorithmMismatch { .. }
            | ValidationError::UnsupportedHeader { .. } => {
                OAuthError::client(format!("assertion: {e}"))
            }
            other => OAuthError::grant(format!("assertion is not a valid JWS: {other}")),
        })
}

/// The claims, in the order the module documentation gives; the `jti` is remembered last, so
/// an assertion refused for any other reason can be corrected and sent again.
fn check_claims(
    claims: &Map<String, Value>,
    client: &Arc<RegisteredClient>,
    issuer: &str,
    replay: &ReplayCache,
    now: i64,
) -> Result<VerifiedAssertion, OAuthError> {
    check_accepted_claims(claims)?;
    check_audience(claims.get("aud"), issuer)?;
    let exp = check_lifetime(claims, now)?;
    let jti = read_jti(claims)?;
    let scopes = read_scopes(claims)?;
    let resource = match claims.get("resource") {
        None => None,
        Some(value) => Some(resource_list(value)?),
    };
    let consumer_org = read_consumer_org(claims, client)?;
    if claims.contains_key("iss_onbehalfof") {
        return Err(OAuthError::grant(
            "assertion uses `iss_onbehalfof` (an onbehalfof registration), which the local issuer does not support; use `consumer_org` for delegation through Altinn",
        ));
    }
    let pid = read_pid(claims)?;
    let authorization_details = read_authorization_details(claims)?;
    remember_jti(replay, client, jti, exp, now)?;
    Ok(VerifiedAssertion {
        client: Arc::clone(client),
        scopes,
        resource,
        consumer_org,
        pid,
        authorization_details,
    })
}

/// Only [`ACCEPTED_CLAIMS`]; the refusal names every other claim, sorted.
fn check_accepted_claims(claims: &Map<String, Value>) -> Result<(), OAuthError> {
    let mut unknown: Vec<String> = claims
        .keys()
        .filter(|name| !ACCEPTED_CLAIMS.contains(&name.as_str()))
        .map(|name| format!("`{}`", printable(name)))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort();
    Err(OAuthError::grant(format!(
        "assertion has claims Maskinporten does not accept: {}",
        unknown.join(", ")
    )))
}

/// `iat` within [`MAX_CLOCK_SKEW_SECS`] of `now`, `exp` in the future and at most
/// [`MAX_ASSERTION_LIFETIME_SECS`] after `iat`. Returns `exp`.
fn check_lifetime(claims: &Map<String, Value>, now: i64) -> Result<i64, OAuthError> {
    let iat = numeric_date(claims, "iat")?;
    let exp = numeric_date(claims, "exp")?;
    if iat > now + MAX_CLOCK_SKEW_SECS {
        return Err(OAuthError::grant(format!(
            "assertion `iat` is {} s in the future; it must be within {MAX_CLOCK_SKEW_SECS} s of the issuer's clock (check your clock)",
            iat - now
        )));
    }
    if iat < now - MAX_CLOCK_SKEW_SECS {
        return Err(OAuthError::grant(format!(
            "assertion is stale: `iat` is {} s in the past; it must be within {MAX_CLOCK_SKEW_SECS} s of the issuer's clock (make a new assertion for every request)",
            now - iat
        )));
    }
    if exp <= now {
        return Err(OAuthError::grant(format!(
            "assertion expired {} s ago (`exp` {exp})",
            now - exp
        )));
    }
    if exp <= iat {
        return Err(OAuthError::grant(format!(
            "assertion `exp` ({exp}) must be after `iat` ({iat})"
        )));
    }
    if exp - iat > MAX_ASSERTION_LIFETIME_SECS {
        return Err(OAuthError::grant(format!(
            "assertion lifetime `exp - iat` is {} s; at most {MAX_ASSERTION_LIFETIME_SECS} s is allowed",
            exp - iat
        )));
    }
    Ok(exp)
}

/// `jti`: a string of 1 to 256 bytes.
fn read_jti(claims: &Map<String, Value>) -> Result<&str, OAuthError> {
    match claims.get("jti") {
        Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= MAX_JTI_LEN => Ok(jti.as_str()),
        Some(Value::String(_)) => Err(OAuthError::grant(format!(
            "assertion `jti` must be 1 to {MAX_JTI_LEN} bytes (UTF-8)"
        ))),
        Some(_) => Err(OAuthError::grant("assertion `jti` must be a string")),
        None => Err(OAuthError::grant(
            "assertion has no `jti`; a unique id is required so the grant cannot be reused",
        )),
    }
}

/// `scope`: space-separated, at least one, duplicates dropped.
fn read_scopes(claims: &Map<String, Value>) -> Result<Vec<String>, OAuthError> {
    let scopes = match claims.get("scope") {
        Some(Value::String(scope)) => dedup(scope.split_whitespace()),
        Some(_) => {
            return Err(OAuthError::grant(
                "assertion `scope` must be a string of space-separated scopes",
            ));
        }
        None => {
            return Err(OAuthError::grant(
                "assertion has no `scope`; list the scopes you request, separated by spaces",
            ));
        }
    };
    if scopes.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "assertion `scope` is empty; request at least one scope",
        ));
    }
    Ok(scopes)
}

/// `consumer_org`: a nine-digit organization number; `None` when absent or the client's own.
fn read_consumer_org(
    claims: &Map<String, Value>,
    client: &RegisteredClient,
) -> Result<Option<String>, OAuthError> {
    match claims.get("consumer_org") {
        None => Ok(None),
        Some(Value::String(org)) if portvakt_manifest::is_nine_digits(org) => {
            Ok((org != client.orgno()).then(|| org.clone()))
        }
        Some(_) => Err(OAuthError::grant(
            "assertion `consumer_org` must be the nine-digit organization number you act on behalf of",
        )),
    }
}

/// `pid`: an eleven-digit national identity number.
fn read_pid(claims: &Map<String, Value>) -> Result<Option<String>, OAuthError> {
    match claims.get("pid") {
        None => Ok(None),
        Some(Value::String(pid)) if pid.len() == 11 && pid.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Some(pid.clone()))
        }
        Some(_) => Err(OAuthError::grant(
            "assertion `pid` must be an eleven-digit national identity number",
        )),
    }
}

/// `authorization_details`: an array of objects whose string `type` is one of
/// [`AUTHORIZATION_DETAILS_TYPES`].
fn read_authorization_details(claims: &Map<String, Value>) -> Result<Option<Value>, OAuthError> {
    match claims.get("authorization_details") {
        None => Ok(None),
        Some(Value::Array(items))
            if items
                .iter()
                .all(|item| item.get("type").is_some_and(Value::is_string)) =>
        {
            let unsupported = items
                .iter()
                .filter_map(|item| item.get("type").and_then(Value::as_str))
                .find(|t| !AUTHORIZATION_DETAILS_TYPES.contains(t));
            if let Some(t) = unsupported {
                return Err(OAuthError::grant(format!(
                    "assertion `authorization_details` has type \"{}\", which is not supported; supported types: {}",
                    printable(t),
                    AUTHORIZATION_DETAILS_TYPES.join(", ")
                )));
            }
            Ok(Some(Value::Array(items.clone())))
        }
        Some(_) => Err(OAuthError::grant(
            "assertion `authorization_details` must be an array of objects, each with a string `type`",
        )),
    }
}

/// Remembers the `jti` until `exp`, so the assertion cannot be used again.
fn remember_jti(
    replay: &ReplayCache,
    client: &RegisteredClient,
    jti: &str,
    exp: i64,
    now: i64,
) -> Result<(), OAuthError> {
    match replay.remember(client.client_id(), jti, exp, now) {
        Ok(()) => Ok(()),
        Err(ReplayError::Reused) => Err(OAuthError::grant(format!(
            "assertion `jti` \"{}\" was already used: a grant cannot be reused; make a new assertion with a fresh jti",
            printable(jti)
        ))),
        Err(ReplayError::Full) => Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "too many assertions in the last two minutes to remember another; try again shortly",
        )),
    }
}

fn check_audience(aud: Option<&Value>, issuer: &str) -> Result<(), OAuthError> {
    let found = match aud {
        Some(Value::String(aud)) => aud.as_str(),
        Some(Value::Array(items)) if items.len() == 1 && items[0].is_string() => {
            items[0].as_str().unwrap_or_default()
        }
        Some(_) => {
            return Err(OAuthError::grant(format!(
                "assertion `aud` must be the issuer \"{issuer}\" as a string"
            )));
        }
        None => {
            return Err(OAuthError::grant(format!(
                "assertion has no `aud`; it must be the issuer \"{issuer}\""
            )));
        }
    };
    if found != issuer {
        return Err(OAuthError::grant(format!(
            "assertion `aud` is \"{}\"; it must be exactly the issuer \"{issuer}\"",
            printable(found)
        )));
    }
    Ok(())
}

/// The largest `iat` or `exp` read, either way from 0.
const NUMERIC_DATE_LIMIT: i64 = 1_000_000_000_000_000;

fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<i64, OAuthError> {
    match claims.get(name) {
        // Within ±10^15 s (some 30 million years): the checks' arithmetic on it cannot
        // overflow, and no real assertion is refused.
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|i| (-NUMERIC_DATE_LIMIT..=NUMERIC_DATE_LIMIT).contains(i))
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 1e15)
                    .map(|f| f.floor() as i64)
            })
            .ok_or_else(|| OAuthError::grant(format!("assertion `{name}` is out of range"))),
        Some(_) => Err(OAuthError::grant(format!(
            "assertion `{name}` must be a number of seconds since 1970"
        ))),
        None => Err(OAuthError::grant(format!(
            "assertion has no `{name}`; it is required"
        ))),
    }
}

/// `resource`: one absolute URI, as a string or an array.
fn resource_list(value: &Value) -> Result<Vec<String>, OAuthError> {
    let items: Vec<&str> = match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let well_formed = !items.is_empty()
        && value.as_array().is_none_or(|a| a.len() == items.len())
        && items.iter().all(|s| url::Url::parse(s).is_ok());
    if !well_formed {
        return Err(OAuthError::grant(
            "assertion `resource` must be an absolute URI (e.g. https://api.example.no/), or an array of them",
        ));
    }
    Ok(dedup(items.into_iter()))
}

pub(crate) fn dedup<'a>(items: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.iter().any(|s| s == item) {
            out.push(item.to_owned());
        }
    }
    out
}
