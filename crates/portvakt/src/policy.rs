//! What a route requires of a verified token: scopes, consumer organizations, audience.

use std::collections::BTreeSet;

use crate::error::ValidationError;
use crate::scope::ScopeRequirement;
use crate::token::{Claims, check_audience};

/// What a route requires of an already verified token: scopes, consumer organizations, and
/// optionally an audience. Checked after the signature, so a forged token never reaches it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    scopes: ScopeRequirement,
    consumers: Option<BTreeSet<String>>,
    audience: Option<String>,
}

impl Policy {
    /// A policy that admits any valid token.
    pub fn new() -> Self {
        Policy::default()
    }

    /// Requires one more scope, on top of whatever is already required: the policy becomes
    /// the conjunction ([`ScopeRequirement::and`]), so an any-of set before is kept, never
    /// silently replaced.
    pub fn require_scope(self, scope: impl Into<String>) -> Self {
        self.scopes(ScopeRequirement::one(scope))
    }

    /// Adds a scope requirement: on a new policy this is the requirement; after other scope
    /// requirements, all of them must hold ([`ScopeRequirement::and`]). Combining never
    /// loosens a policy.
    pub fn scopes(mut self, requirement: ScopeRequirement) -> Self {
        self.scopes = std::mem::take(&mut self.scopes).and(requirement);
        self
    }

    /// Admits only tokens whose `consumer` has one of these organization numbers.
    pub fn allow_consumers<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        orgnos: I,
    ) -> Self {
        self.consumers
            .get_or_insert_with(BTreeSet::new)
            .extend(orgnos.into_iter().map(Into::into));
        self
    }

    /// Requires an audience-restricted token for this audience (an absolute URI).
    pub fn require_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The scope requirement.
    pub fn scope_requirement(&self) -> &ScopeRequirement {
        &self.scopes
    }

    /// The audience this policy requires, if any.
    pub fn required_audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// Checks verified claims against this policy: audience, then consumer, then scopes.
    pub fn check(&self, claims: &Claims) -> Result<(), ValidationError> {
        if let Some(required) = &self.audience {
            check_audience(claims, required)?;
        }
        if let Some(allowed) = &self.consumers {
            let orgno = claims.consumer().and_then(|c| c.orgno());
            if !orgno.is_some_and(|o| allowed.contains(o)) {
                return Err(ValidationError::ConsumerNotAllowed {
                    orgno: orgno.map(str::to_owned),
                });
            }
        }
        if let Some(required) = self.scopes.unmet_by(claims.scopes()) {
            return Err(ValidationError::InsufficientScope { required });
        }
        Ok(())
    }
}
