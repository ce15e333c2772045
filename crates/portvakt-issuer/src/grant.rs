//! The grant decision (from the local Digdir's scopes and grants) and the token it yields (shaped like Maskinporten's).

use std::time::Duration;

use portvakt::Algorithm;
use portvakt::SigningKey;
use portvakt_manifest::GrantError;
use serde_json::{Map, Value, json};

use crate::admin::DigdirState;
use crate::error::{ErrorCode, OAuthError};
use crate::keys::random_id;

/// The ISO 6523 authority Maskinporten puts in `consumer` and `supplier`.
pub const CONSUMER_AUTHORITY: &str = "iso6523-actorid-upis";

/// What the local Digdir allows for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authorized {
    /// Token lifetime: the lowest `atMaxAge` of the scopes, capped by the client lifetime.
    pub(crate) lifetime: Duration,
    /// Set for delegated requests.
    /// The scope's delegation source (an issuer URL), set for delegated requests.
    pub(crate) delegation_source: Option<String>,
}

/// Checks every scope for the organization that will be the token's `consumer`: `consumer_org`
/// when delegated (the legal party), else the client's own organization. Delegated requests
/// additionally need every scope to have a delegation source.
pub(crate) fn authorize(
    digdir: &DigdirState,
    client_orgno: &str,
    consumer_org: Option<&str>,
    scopes: &[String],
    client_lifetime: Duration,
) -> Result<Authorized, OAuthError> {
    let consumer = consumer_org.unwrap_or(client_orgno);
    let mut lifetime = client_lifetime;
    let mut delegation_source = None;
    for scope in scopes {
        let grant = digdir.check(consumer, scope).map_err(|e| grant_error(&e))?;
        lifetime = lifetime.min(grant.at_max_age);
        if let Some(on_behalf_of) = consumer_org {
            match grant.delegation_source {
                Some(source) => delegation_source = Some(source),
                None => {
                    return Err(OAuthError::scope(format!(
                        "scope \"{scope}\" has no delegationSource, so organization {client_orgno} cannot get it on behalf of {on_behalf_of}"
                    )));
                }
            }
        }
    }
    Ok(Authorized {
        lifetime,
        delegation_source,
    })
}

fn grant_error(error: &GrantError) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidScope, error.to_string())
}

/// Everything that goes into one access token.
pub(crate) struct Mint<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) client_amr: &'a str,
    pub(crate) consumer: &'a str,
    pub(crate) supplier: Option<&'a str>,
    pub(crate) delegation_source: Option<&'a str>,
    pub(crate) scopes: &'a [String],
    pub(crate) audience: Option<&'a [String]>,
    pub(crate) pid: Option<&'a str>,
    pub(crate) authorization_details: Option<&'a Value>,
    pub(crate) iat: i64,
    pub(crate) lifetime: Duration,
}

fn organization(orgno: &str) -> Value {
    json!({"authority": CONSUMER_AUTHORITY, "ID": format!("0192:{orgno}")})
}

impl Mint<'_> {
    /// The claims, exactly Maskinporten's set: no `nbf`, no `sub`, no `typ`; `aud` only when
    /// audience-restricted.
    pub(crate) fn claims(&self) -> Value {
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("scope".into(), json!(self.scopes.join(" ")));
        claims.insert("client_id".into(), json!(self.client_id));
        claims.insert("client_amr".into(), json!(self.client_amr));
        claims.insert("token_type".into(), json!("Bearer"));
        claims.insert("consumer".into(), organization(self.consumer));
        if let Some(supplier) = self.supplier {
            claims.insert("supplier".into(), organization(supplier));
        }
        if let Some(source) = self.delegation_source {
            claims.insert("delegation_source".into(), json!(source));
        }
        match self.audience {
            Some([one]) => {
                claims.insert("aud".into(), json!(one));
            }
            Some(many) if !many.is_empty() => {
                claims.insert("aud".into(), json!(many));
            }
            _ => {}
        }
        if let Some(pid) = self.pid {
            claims.insert("pid".into(), json!(pid));
        }
        if let Some(details) = self.authorization_details {
            claims.insert("authorization_details".into(), details.clone());
        }
        claims.insert("iat".into(), json!(self.iat));
        claims.insert(
            "exp".into(),
            json!(self.iat + self.lifetime.as_secs() as i64),
        );
        claims.insert("jti".into(), json!(random_id(24)));
        Value::Object(claims)
    }

    /// Signs the claims RS256, header `{"kid": ..., "alg": "RS256"}`.
    pub(crate) fn sign(&self, key: &SigningKey) -> Result<String, OAuthError> {
        key.sign_jwt(Algorithm::RS256, &self.claims())
            .map_err(|e| OAuthError::new(ErrorCode::ServerError, format!("signing failed: {e}")))
    }
}
