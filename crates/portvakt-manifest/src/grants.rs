//! The scope and grant table: who may get which scope, as the local issuer enforces it.

use std::time::Duration;

use serde::Serialize;

use crate::model::{Consumer, DelegationSource, Integration, Visibility};
use crate::scope_name::fully_qualified;
use crate::{CheckOptions, Manifest};

/// Everything the manifest says about one exposed scope, keyed by its fully qualified name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ScopeGrant {
    /// Fully qualified scope, e.g. `nav:arbeid:some.scope.read`.
    pub scope: String,
    /// Whether the scope is enabled. Disabled scopes are listed so that a request for one can
    /// be answered "disabled" rather than "unknown", but they are never granted.
    pub enabled: bool,
    /// Any organization may get the scope.
    pub accessible_for_all: bool,
    /// The organizations that may get the scope (when not accessible for all).
    pub consumers: Vec<Consumer>,
    /// Upper bound on the lifetime of tokens carrying this scope, in seconds (30..=680).
    #[serde(rename = "atMaxAge")]
    pub at_max_age_seconds: u32,
    /// Integration types that may use the scope.
    pub allowed_integrations: Vec<Integration>,
    /// Whether Maskinporten lists the scope publicly.
    pub visibility: Visibility,
    /// Who may delegate access, if anyone.
    pub delegation_source: Option<DelegationSource>,
    /// `metadata.name` of the application exposing the scope, when known.
    pub application: Option<String>,
}

impl ScopeGrant {
    /// [`Self::at_max_age_seconds`] as a `Duration`.
    pub fn at_max_age(&self) -> Duration {
        Duration::from_secs(u64::from(self.at_max_age_seconds))
    }

    /// Whether `orgno` is on the consumer list (ignores `enabled` and `accessible_for_all`).
    pub fn lists_consumer(&self, orgno: &str) -> bool {
        self.consumers.iter().any(|c| c.orgno == orgno)
    }

    /// Whether Maskinporten clients (as opposed to ID-porten, KRR, ...) may use the scope.
    pub fn allows_maskinporten(&self) -> bool {
        self.allowed_integrations
            .contains(&Integration::Maskinporten)
    }
}

/// Why an organization may not have a scope. The `Display` texts are written to be returned as
/// OAuth `error_description`s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// No application in the manifest exposes the scope.
    #[error("scope \"{scope}\" is not exposed by this API")]
    UnknownScope {
        /// The scope asked for.
        scope: String,
    },
    /// The scope is declared with `enabled: false`.
    #[error("scope \"{scope}\" is disabled")]
    ScopeDisabled {
        /// The scope asked for.
        scope: String,
    },
    /// The scope's `allowedIntegrations` leaves out `maskinporten`.
    #[error("scope \"{scope}\" is not available to Maskinporten clients")]
    IntegrationNotAllowed {
        /// The scope asked for.
        scope: String,
    },
    /// The organization is not on the scope's consumer list.
    #[error("organization {orgno} is not a consumer of scope \"{scope}\"")]
    NotAConsumer {
        /// The organization asking.
        orgno: String,
        /// The scope asked for.
        scope: String,
    },
}

/// The exposed scopes of every application in a manifest, in file order.
///
/// A file with several `Application`s gives one table: the issuer serves one API surface, and a
/// scope exposed twice is an error (`duplicate-scope`) in the manifest's diagnostics; the table
/// keeps the first definition.
///
/// When the manifest has errors the table is best effort: scopes whose name, product or
/// `enabled` could not be read are missing, consumers with invalid organization numbers are
/// missing, other invalid values fall back to their defaults. An issuer must therefore refuse to
/// start when [`Manifest::has_errors`] is true. Applications with `maskinporten.enabled: false`
/// contribute nothing: NAIS provisions none of their scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct GrantsTable {
    scopes: Vec<ScopeGrant>,
}

impl GrantsTable {
    /// Builds the table from a checked manifest, fully qualifying names with `options.prefix`.
    pub fn from_manifest(manifest: &Manifest, options: &CheckOptions) -> Self {
        let mut scopes: Vec<ScopeGrant> = Vec::new();
        for app in manifest.applications() {
            let Some(mp) = app.maskinporten.as_ref().filter(|mp| mp.enabled) else {
                continue;
            };
            for s in &mp.exposes {
                let scope = fully_qualified(&options.prefix, &s.product, s.separator, &s.name);
                if scopes.iter().any(|g| g.scope == scope) {
                    continue;
                }
                scopes.push(ScopeGrant {
                    scope,
                    enabled: s.enabled,
                    accessible_for_all: s.accessible_for_all,
                    consumers: s.consumers.clone(),
                    at_max_age_seconds: s.at_max_age_seconds,
                    allowed_integrations: s.allowed_integrations.clone(),
                    visibility: s.visibility,
                    delegation_source: s.delegation_source,
                    application: app.name.clone(),
                });
            }
        }
        GrantsTable { scopes }
    }

    /// All scopes, enabled or not, in file order.
    pub fn scopes(&self) -> &[ScopeGrant] {
        &self.scopes
    }

    /// Whether no scope is exposed.
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }

    /// Number of scopes, enabled or not.
    pub fn len(&self) -> usize {
        self.scopes.len()
    }

    /// The scope with this fully qualified name, enabled or not.
    pub fn get(&self, scope: &str) -> Option<&ScopeGrant> {
        self.scopes.iter().find(|g| g.scope == scope)
    }

    /// Whether a Maskinporten client of organization `orgno` (nine digits, without the
    /// `0192:` prefix tokens carry) may get `scope`.
    ///
    /// Checked in this order, so that the first error is the most useful one: the scope exists,
    /// is enabled, is open to Maskinporten clients, and the organization is a consumer (or the
    /// scope is accessible for all).
    pub fn check(&self, orgno: &str, scope: &str) -> Result<&ScopeGrant, GrantError> {
        let grant = self.get(scope).ok_or_else(|| GrantError::UnknownScope {
            scope: scope.to_owned(),
        })?;
        if !grant.enabled {
            return Err(GrantError::ScopeDisabled {
                scope: scope.to_owned(),
            });
        }
        if !grant.allows_maskinporten() {
            return Err(GrantError::IntegrationNotAllowed {
                scope: scope.to_owned(),
            });
        }
        if grant.accessible_for_all || grant.lists_consumer(orgno) {
            Ok(grant)
        } else {
            Err(GrantError::NotAConsumer {
                orgno: orgno.to_owned(),
                scope: scope.to_owned(),
            })
        }
    }
}
