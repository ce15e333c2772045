//! The admin API's JSON: scope registrations, access entries, delegation sources.
//!
//! Answers are read leniently: every field but `prefix` and `subscope` may be missing, and
//! fields this crate does not know are kept in [`ScopeRegistration::other`] (never diffed, never
//! sent back). What is written is only what Digdir documents as writable.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `allowed_integration_types` NAIS sets.
pub const MASKINPORTEN_INTEGRATION: &str = "maskinporten";
/// `token_type` NAIS sets: a signed JWT.
pub const SELF_CONTAINED: &str = "SELF_CONTAINED";
/// `visibility` of a listed scope.
pub const PUBLIC: &str = "PUBLIC";
/// `visibility` of an unlisted scope.
pub const PRIVATE: &str = "PRIVATE";
/// Digdir's `visibility` for the manifest's.
pub fn visibility(v: portvakt_manifest::Visibility) -> &'static str {
    match v {
        portvakt_manifest::Visibility::Public => PUBLIC,
        portvakt_manifest::Visibility::Private => PRIVATE,
    }
}

/// The scope an admin token needs to read the organization's scopes.
pub const SCOPES_READ: &str = "idporten:scopes.read";
/// The scope an admin token needs to change the organization's scopes.
pub const SCOPES_WRITE: &str = "idporten:scopes.write";

/// A scope as Digdir's admin API registers it (`ScopeRegistration`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScopeRegistration {
    /// The organization's prefix, e.g. `nav`.
    pub prefix: String,
    /// Everything after `prefix:`, e.g. `arbeid:some.scope.read`; may contain `/`.
    pub subscope: String,
    /// Required by Digdir; NAIS writes `<product> - <cluster>:<namespace>:<app>`.
    #[serde(default)]
    pub description: String,
    /// Free text; kept as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_description: Option<String>,
    /// Inactive scopes issue no tokens; nothing is ever hard-deleted.
    #[serde(default = "yes")]
    pub active: bool,
    /// Must contain `maskinporten` for machine-to-machine clients.
    #[serde(default)]
    pub allowed_integration_types: Vec<String>,
    /// Longest lifetime of tokens with this scope, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_max_age: Option<u32>,
    /// Longest lifetime of an authorization, in seconds; kept as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_max_lifetime: Option<u32>,
    /// `SELF_CONTAINED` (a JWT) or `OPAQUE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// `PUBLIC` or `PRIVATE` (`INTERNAL` is Digdir's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    /// Any organization may get the scope without a grant.
    #[serde(default)]
    pub accessible_for_all: bool,
    /// Issuer URL of the delegation source (e.g. Altinn's), when delegable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation_source: Option<String>,
    /// Kept as it is.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requires_user_consent: bool,
    /// Kept as it is.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requires_user_authentication: bool,
    /// Kept as it is.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requires_pseudonymous_tokens: bool,
    /// Read-only: `prefix:subscope`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Read-only: the owning organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_orgno: Option<String>,
    /// Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    /// Fields this crate does not know (`protected`, localized descriptions, ...): read,
    /// never compared, never written.
    #[serde(flatten, skip_serializing)]
    pub other: BTreeMap<String, Value>,
}

fn yes() -> bool {
    true
}

impl ScopeRegistration {
    /// `prefix:subscope`, the name consumers ask for.
    pub fn full_name(&self) -> String {
        format!("{}:{}", self.prefix, self.subscope)
    }

    /// The body to send with `POST /scopes` or `PUT /scopes`: the writable fields only.
    pub fn write_body(&self) -> ScopeRegistration {
        ScopeRegistration {
            name: None,
            owner_orgno: None,
            created: None,
            last_updated: None,
            other: BTreeMap::new(),
            ..self.clone()
        }
    }
}

/// Whether a consumer has access (`state` of an access entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccessState {
    /// Asked for, not decided.
    Requested,
    /// Granted: the consumer's clients may get the scope.
    Approved,
    /// Refused.
    Denied,
    /// A state this crate does not know, kept verbatim.
    #[serde(untagged)]
    Other(String),
}

impl AccessState {
    /// Digdir's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            AccessState::Requested => "REQUESTED",
            AccessState::Approved => "APPROVED",
            AccessState::Denied => "DENIED",
            AccessState::Other(s) => s,
        }
    }
}

impl fmt::Display for AccessState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `GET /scopes/access?scope=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessEntry {
    /// The organization given (or asking for) access.
    pub consumer_orgno: String,
    /// The scope's owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_orgno: Option<String>,
    /// The fully qualified scope.
    #[serde(default)]
    pub scope: String,
    /// Approved, requested or denied.
    pub state: AccessState,
    /// Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    /// Unknown fields, ignored.
    #[serde(flatten, skip_serializing)]
    pub other: BTreeMap<String, Value>,
}

/// One entry of `GET /delegationsources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationSourceEntry {
    /// E.g. `altinn`.
    pub name: String,
    /// The issuer URL a scope's `delegation_source` holds.
    pub issuer: String,
}

#[cfg(test)]
#[path = "types_tests.rs"]
mod tests;
