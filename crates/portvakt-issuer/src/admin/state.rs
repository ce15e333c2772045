//! The local Digdir's state: the organization's scope registrations and their access lists.
//! The issuer issues consumer tokens from it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portvakt_manifest::{GrantError, GrantsTable};
use portvakt_provision::types::{
    AccessEntry, AccessState, MASKINPORTEN_INTEGRATION, SELF_CONTAINED, ScopeRegistration,
    visibility,
};
use portvakt_provision::{Desired, resolve_delegation_sources};
use serde::{Deserialize, Serialize};

use crate::error::IssuerError;

/// The manifest's name for Altinn's delegation source, listed at `GET /api/v1/delegationsources`.
pub const ALTINN: &str = "altinn";

/// Scopes and grants as Digdir's admin API holds them, in memory (and, with a state file, on
/// disk). Keys are fully qualified scope names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DigdirState {
    pub(crate) scopes: BTreeMap<String, ScopeRegistration>,
    pub(crate) access: BTreeMap<String, BTreeMap<String, AccessEntry>>,
}

/// The state file: `{"scopes": [ScopeRegistration...], "access": [AccessEntry...]}`.
#[derive(Serialize, Deserialize)]
struct StateFile {
    scopes: Vec<ScopeRegistration>,
    access: Vec<AccessEntry>,
}

/// What a consumer may get for one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Granted {
    pub(crate) at_max_age: Duration,
    pub(crate) delegation_source: Option<String>,
}

/// RFC 3339 UTC, seconds, as Digdir writes `created` and `last_updated`.
pub(crate) fn timestamp(at: SystemTime) -> String {
    portvakt::inspect::utc(at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64)
}

impl DigdirState {
    /// No scopes (`portvakt issuer --empty`).
    pub fn empty() -> Self {
        DigdirState::default()
    }

    /// The state provisioning `desired` would leave behind, owned by `owner_orgno`: every
    /// scope (disabled ones inactive) and an approved grant for every listed consumer.
    pub fn provisioned(
        desired: &Desired,
        owner_orgno: &str,
        altinn_delegation_source: &str,
    ) -> Result<Self, IssuerError> {
        let mut desired = desired.clone();
        let sources = [portvakt_provision::DelegationSourceEntry {
            name: ALTINN.to_owned(),
            issuer: altinn_delegation_source.to_owned(),
        }];
        resolve_delegation_sources(&mut desired, &sources)
            .map_err(|e| IssuerError::Setting(e.to_string()))?;
        let mut state = DigdirState::default();
        for d in &desired.scopes {
            state.insert_scope(d.registration.clone(), owner_orgno);
            for orgno in &d.consumers {
                state.approve(&d.name(), orgno, owner_orgno);
            }
        }
        Ok(state)
    }

    /// The same from a grants table, for issuers configured without a manifest
    /// ([`crate::IssuerConfig::new`]). The table does not know the namespace, so descriptions
    /// say `local:default:<app>`.
    pub fn from_grants(
        grants: &GrantsTable,
        owner_orgno: &str,
        altinn_delegation_source: &str,
    ) -> Self {
        let mut state = DigdirState::default();
        for g in grants.scopes() {
            let (prefix, subscope) = g.scope.split_once(':').unwrap_or(("", &g.scope));
            let product: String = subscope
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                .collect();
            let registration = ScopeRegistration {
                prefix: prefix.to_owned(),
                subscope: subscope.to_owned(),
                description: format!(
                    "{product} - local:default:{}",
                    g.application.as_deref().unwrap_or("unknown")
                ),
                active: g.enabled,
                allowed_integration_types: g
                    .allowed_integrations
                    .iter()
                    .map(|i| i.as_str().to_owned())
                    .collect(),
                at_max_age: Some(g.at_max_age_seconds),
                token_type: Some(SELF_CONTAINED.to_owned()),
                visibility: Some(visibility(g.visibility).to_owned()),
                accessible_for_all: g.accessible_for_all,
                delegation_source: g
                    .delegation_source
                    .map(|_| altinn_delegation_source.to_owned()),
                ..ScopeRegistration::default()
            };
            state.insert_scope(registration, owner_orgno);
            for c in &g.consumers {
                state.approve(&g.scope, &c.orgno, owner_orgno);
            }
        }
        state
    }

    pub(crate) fn insert_scope(&mut self, mut registration: ScopeRegistration, owner_orgno: &str) {
        let now = timestamp(SystemTime::now());
        let name = registration.full_name();
        registration.name = Some(name.clone());
        registration.owner_orgno = Some(owner_orgno.to_owned());
        registration.created = Some(now.clone());
        registration.last_updated = Some(now);
        registration.other.clear();
        self.scopes.insert(name, registration);
    }

    pub(crate) fn approve(&mut self, scope: &str, orgno: &str, owner_orgno: &str) -> AccessEntry {
        let now = timestamp(SystemTime::now());
        let entry = self
            .access
            .entry(scope.to_owned())
            .or_default()
            .entry(orgno.to_owned())
            .or_insert_with(|| AccessEntry {
                consumer_orgno: orgno.to_owned(),
                owner_orgno: Some(owner_orgno.to_owned()),
                scope: scope.to_owned(),
                state: AccessState::Approved,
                created: Some(now.clone()),
                last_updated: None,
                other: Default::default(),
            });
        entry.state = AccessState::Approved;
        entry.last_updated = Some(now);
        entry.clone()
    }

    /// The registered scopes, inactive ones included.
    pub fn scopes(&self) -> impl Iterator<Item = &ScopeRegistration> {
        self.scopes.values()
    }

    /// The access list of `scope`.
    pub fn access(&self, scope: &str) -> impl Iterator<Item = &AccessEntry> {
        self.access.get(scope).into_iter().flat_map(|m| m.values())
    }

    /// Whether organization `orgno` may get `scope`, checked in the order that gives the most
    /// useful refusal: the scope exists, is active, is open to Maskinporten clients, and the
    /// organization holds an approved grant (or the scope is accessible for all).
    pub(crate) fn check(&self, orgno: &str, scope: &str) -> Result<Granted, GrantError> {
        let registration = self
            .scopes
            .get(scope)
            .ok_or_else(|| GrantError::UnknownScope {
                scope: scope.to_owned(),
            })?;
        if !registration.active {
            return Err(GrantError::ScopeDisabled {
                scope: scope.to_owned(),
            });
        }
        if !registration
            .allowed_integration_types
            .iter()
            .any(|i| i == MASKINPORTEN_INTEGRATION)
        {
            return Err(GrantError::IntegrationNotAllowed {
                scope: scope.to_owned(),
            });
        }
        let approved = self
            .access
            .get(scope)
            .and_then(|m| m.get(orgno))
            .is_some_and(|e| e.state == AccessState::Approved);
        if !(registration.accessible_for_all || approved) {
            return Err(GrantError::NotAConsumer {
                orgno: orgno.to_owned(),
                scope: scope.to_owned(),
            });
        }
        Ok(Granted {
            at_max_age: Duration::from_secs(u64::from(
                registration
                    .at_max_age
                    .unwrap_or(portvakt_provision::DEFAULT_AT_MAX_AGE),
            )),
            delegation_source: registration.delegation_source.clone(),
        })
    }

    /// Reads a state file written by [`save`](Self::save).
    pub fn load(path: &Path) -> Result<Self, IssuerError> {
        let bad = |reason: String| {
            IssuerError::Setting(format!("state file {}: {reason}", path.display()))
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let file: StateFile = serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "expected {{\"scopes\": [...], \"access\": [...]}} as portvakt writes it: {e}"
            ))
        })?;
        let mut state = DigdirState::default();
        for s in file.scopes {
            state.scopes.insert(s.full_name(), s);
        }
        for a in file.access {
            state
                .access
                .entry(a.scope.clone())
                .or_default()
                .insert(a.consumer_orgno.clone(), a);
        }
        Ok(state)
    }

    /// Writes the state atomically: to a temporary file beside `path`, then renamed over it,
    /// so a crash leaves the old or the new state, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), IssuerError> {
        let bad = |e: std::io::Error| {
            IssuerError::Setting(format!("cannot write state file {}: {e}", path.display()))
        };
        let file = StateFile {
            scopes: self.scopes.values().cloned().collect(),
            access: self
                .access
                .values()
                .flat_map(|m| m.values().cloned())
                .collect(),
        };
        let text = serde_json::to_string_pretty(&file)
            .map_err(|e| IssuerError::Setting(format!("cannot encode the state: {e}")))?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp{}", std::process::id()));
        let tmp = std::path::PathBuf::from(tmp);
        std::fs::write(&tmp, text).map_err(bad)?;
        std::fs::rename(&tmp, path).map_err(bad)
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
