//! Scopes and the policies a route applies to them.
//!
//! Maskinporten puts the granted scopes in one `scope` claim, separated by spaces. We split on
//! any whitespace and compare whole scopes exactly and case-sensitively: `nav:arbeid:read` never
//! matches `nav:arbeid:read.all`, and `NAV:arbeid:read` is a different scope.

use std::collections::BTreeSet;
use std::fmt;

use crate::claims::Claims;
use crate::error::ValidationError;

/// The scopes a token was granted, parsed once from its `scope` claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet {
    scopes: BTreeSet<String>,
}

impl ScopeSet {
    /// Parses a whitespace-separated scope list; empty entries are ignored.
    pub fn parse(claim: &str) -> ScopeSet {
        ScopeSet {
            scopes: claim.split_whitespace().map(str::to_owned).collect(),
        }
    }

    /// Whether exactly this scope was granted.
    pub fn contains(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// The granted scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.scopes.iter().map(String::as_str)
    }

    /// How many scopes were granted.
    pub fn len(&self) -> usize {
        self.scopes.len()
    }

    /// Whether no scope was granted.
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in &self.scopes {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
            first = false;
        }
        Ok(())
    }
}

/// Which scopes a request needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ScopeRequirement {
    /// No scope is required (any valid token will do).
    #[default]
    None,
    /// Every one of these scopes must be granted.
    AllOf(Vec<String>),
    /// At least one of these scopes must be granted.
    AnyOf(Vec<String>),
}

impl ScopeRequirement {
    /// Requires one scope.
    pub fn one(scope: impl Into<String>) -> Self {
        ScopeRequirement::AllOf(vec![scope.into()])
    }

    /// Requires all of these scopes.
    pub fn all_of<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        ScopeRequirement::AllOf(scopes.into_iter().map(Into::into).collect())
    }

    /// Requires at least one of these scopes.
    pub fn any_of<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        ScopeRequirement::AnyOf(scopes.into_iter().map(Into::into).collect())
    }

    /// Whether `granted` satisfies this requirement. An empty `AnyOf` is never satisfied:
    /// "one of nothing" is a policy mistake, and failing closed makes it visible.
    pub fn is_satisfied_by(&self, granted: &ScopeSet) -> bool {
        match self {
            ScopeRequirement::None => true,
            ScopeRequirement::AllOf(scopes) => scopes.iter().all(|s| granted.contains(s)),
            ScopeRequirement::AnyOf(scopes) => scopes.iter().any(|s| granted.contains(s)),
        }
    }

    /// The scopes named, for the RFC 6750 `scope` attribute of a 403 answer.
    pub fn scopes(&self) -> &[String] {
        match self {
            ScopeRequirement::None => &[],
            ScopeRequirement::AllOf(scopes) | ScopeRequirement::AnyOf(scopes) => scopes,
        }
    }
}

impl fmt::Display for ScopeRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeRequirement::None => f.write_str("no scope"),
            ScopeRequirement::AllOf(scopes) if scopes.len() == 1 => write!(f, "`{}`", scopes[0]),
            ScopeRequirement::AllOf(scopes) => write!(f, "all of `{}`", scopes.join("`, `")),
            ScopeRequirement::AnyOf(scopes) => write!(f, "one of `{}`", scopes.join("`, `")),
        }
    }
}

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

    /// Requires one scope (added to any scopes already required with `all_of` semantics).
    pub fn require_scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes = match self.scopes {
            ScopeRequirement::AllOf(mut scopes) => {
                scopes.push(scope.into());
                ScopeRequirement::AllOf(scopes)
            }
            _ => ScopeRequirement::one(scope),
        };
        self
    }

    /// Sets the scope requirement.
    pub fn scopes(mut self, requirement: ScopeRequirement) -> Self {
        self.scopes = requirement;
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
            crate::claims::check_audience(claims, required)?;
        }
        if let Some(allowed) = &self.consumers {
            let orgno = claims.consumer().and_then(|c| c.orgno());
            if !orgno.is_some_and(|o| allowed.contains(o)) {
                return Err(ValidationError::ConsumerNotAllowed {
                    orgno: orgno.map(str::to_owned),
                });
            }
        }
        if !self.scopes.is_satisfied_by(claims.scopes()) {
            return Err(ValidationError::InsufficientScope {
                required: self.scopes.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_any_whitespace_and_matches_exactly() {
        let set = ScopeSet::parse(" nav:a:read\tnav:a:write\nnav:b  ");
        assert_eq!(set.len(), 3);
        assert!(set.contains("nav:a:read"));
        assert!(set.contains("nav:b"));
        assert!(!set.contains("nav:a"), "a prefix is not a scope");
        assert!(!set.contains("NAV:a:read"), "case-sensitive");
        assert!(!set.contains("nav:a:read "));
        assert!(ScopeSet::parse("").is_empty());
        assert!(ScopeSet::parse("   ").is_empty());
    }

    #[test]
    fn prefix_scope_never_matches_scope() {
        let set = ScopeSet::parse("prefixscope");
        assert!(!ScopeRequirement::one("scope").is_satisfied_by(&set));
        assert!(!ScopeRequirement::one("prefix").is_satisfied_by(&set));
    }

    #[test]
    fn all_of_and_any_of() {
        let set = ScopeSet::parse("a b");
        assert!(ScopeRequirement::all_of(["a", "b"]).is_satisfied_by(&set));
        assert!(!ScopeRequirement::all_of(["a", "c"]).is_satisfied_by(&set));
        assert!(ScopeRequirement::any_of(["c", "b"]).is_satisfied_by(&set));
        assert!(!ScopeRequirement::any_of(["c", "d"]).is_satisfied_by(&set));
        assert!(!ScopeRequirement::AnyOf(vec![]).is_satisfied_by(&set));
        assert!(ScopeRequirement::None.is_satisfied_by(&ScopeSet::default()));
    }

    #[test]
    fn requirement_display() {
        assert_eq!(ScopeRequirement::one("a").to_string(), "`a`");
        assert_eq!(
            ScopeRequirement::all_of(["a", "b"]).to_string(),
            "all of `a`, `b`"
        );
        assert_eq!(
            ScopeRequirement::any_of(["a", "b"]).to_string(),
            "one of `a`, `b`"
        );
    }
}
