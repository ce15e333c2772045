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
///
/// Empty lists are deliberate, not accidents to paper over: `all_of([])` requires nothing (it
/// is [`None`](Self::None): "every one of no scopes" always holds, which lets a caller pass a
/// possibly empty list of extra scopes), while `any_of([])` is never satisfied ("one of no
/// scopes" cannot hold), so a policy built from an empty list of alternatives fails closed.
///
/// Requirements combine by conjunction ([`and`](Self::and)): adding a requirement never
/// loosens what was already required.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ScopeRequirement {
    /// No scope is required (any valid token will do).
    #[default]
    None,
    /// Every one of these scopes must be granted.
    AllOf(Vec<String>),
    /// At least one of these scopes must be granted.
    AnyOf(Vec<String>),
    /// Every clause must hold: what [`and`](Self::and) builds when it cannot fold the two
    /// requirements into one list (an any-of with anything else).
    Conjunction(Conjunction),
}

/// Requirements that must all hold, built by [`ScopeRequirement::and`]. Its clauses are
/// plain [`AllOf`](ScopeRequirement::AllOf) (at most one, first) and
/// [`AnyOf`](ScopeRequirement::AnyOf) requirements, never nested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conjunction {
    clauses: Vec<ScopeRequirement>,
    /// Every scope the clauses name, once each, in order: the RFC 6750 `scope` attribute.
    named: Vec<String>,
}

impl Conjunction {
    /// The clauses, each an all-of or an any-of; all must hold.
    pub fn clauses(&self) -> &[ScopeRequirement] {
        &self.clauses
    }
}

impl ScopeRequirement {
    /// Requires one scope.
    pub fn one(scope: impl Into<String>) -> Self {
        ScopeRequirement::AllOf(vec![scope.into()])
    }

    /// Requires all of these scopes. An empty list requires nothing.
    pub fn all_of<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        ScopeRequirement::AllOf(scopes.into_iter().map(Into::into).collect())
    }

    /// Requires at least one of these scopes. An empty list is never satisfied.
    pub fn any_of<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        ScopeRequirement::AnyOf(scopes.into_iter().map(Into::into).collect())
    }

    /// Both this requirement and `other` must hold. All-of lists are merged into one; an
    /// any-of that the merged all-of already satisfies is dropped as redundant; everything
    /// else becomes a [`Conjunction`]. An empty any-of is kept, so it still fails closed.
    pub fn and(self, other: ScopeRequirement) -> ScopeRequirement {
        let mut all: Vec<String> = Vec::new();
        let mut any: Vec<Vec<String>> = Vec::new();
        for requirement in [self, other] {
            let clauses = match requirement {
                ScopeRequirement::Conjunction(c) => c.clauses,
                plain => vec![plain],
            };
            for clause in clauses {
                match clause {
                    ScopeRequirement::AllOf(scopes) => {
                        for scope in scopes {
                            if !all.contains(&scope) {
                                all.push(scope);
                            }
                        }
                    }
                    ScopeRequirement::AnyOf(scopes) => {
                        if !any.contains(&scopes) {
                            any.push(scopes);
                        }
                    }
                    ScopeRequirement::None | ScopeRequirement::Conjunction(_) => {}
                }
            }
        }
        any.retain(|alternatives| !alternatives.iter().any(|s| all.contains(s)));
        let mut clauses = Vec::with_capacity(any.len() + 1);
        if !all.is_empty() {
            clauses.push(ScopeRequirement::AllOf(all));
        }
        clauses.extend(any.into_iter().map(ScopeRequirement::AnyOf));
        ScopeRequirement::from_clauses(clauses)
    }

    fn from_clauses(mut clauses: Vec<ScopeRequirement>) -> ScopeRequirement {
        match clauses.len() {
            0 => ScopeRequirement::None,
            1 => clauses.remove(0),
            _ => {
                let mut named: Vec<String> = Vec::new();
                for scope in clauses.iter().flat_map(ScopeRequirement::scopes) {
                    if !named.contains(scope) {
                        named.push(scope.clone());
                    }
                }
                ScopeRequirement::Conjunction(Conjunction { clauses, named })
            }
        }
    }

    /// Whether `granted` satisfies this requirement. An empty `AnyOf` is never satisfied:
    /// "one of nothing" is a policy mistake, and failing closed makes it visible.
    pub fn is_satisfied_by(&self, granted: &ScopeSet) -> bool {
        match self {
            ScopeRequirement::None => true,
            ScopeRequirement::AllOf(scopes) => scopes.iter().all(|s| granted.contains(s)),
            ScopeRequirement::AnyOf(scopes) => scopes.iter().any(|s| granted.contains(s)),
            ScopeRequirement::Conjunction(c) => {
                c.clauses.iter().all(|r| r.is_satisfied_by(granted))
            }
        }
    }

    /// What of this requirement `granted` does not meet, or `None` when it is satisfied: the
    /// whole requirement for a plain all-of or any-of, the unmet clauses of a conjunction. So
    /// a refusal names (and the 403 `scope` attribute lists) what the caller still needs.
    pub fn unmet_by(&self, granted: &ScopeSet) -> Option<ScopeRequirement> {
        if self.is_satisfied_by(granted) {
            return None;
        }
        Some(match self {
            ScopeRequirement::Conjunction(c) => ScopeRequirement::from_clauses(
                c.clauses
                    .iter()
                    .filter(|clause| !clause.is_satisfied_by(granted))
                    .cloned()
                    .collect(),
            ),
            plain => plain.clone(),
        })
    }

    /// Whether any valid token satisfies this requirement ([`None`](Self::None), or an
    /// all-of with no scopes).
    pub fn requires_nothing(&self) -> bool {
        match self {
            ScopeRequirement::None => true,
            ScopeRequirement::AllOf(scopes) => scopes.is_empty(),
            ScopeRequirement::AnyOf(_) | ScopeRequirement::Conjunction(_) => false,
        }
    }

    /// The scopes named, for the RFC 6750 `scope` attribute of a 403 answer: each scope once,
    /// across every clause of a conjunction.
    pub fn scopes(&self) -> &[String] {
        match self {
            ScopeRequirement::None => &[],
            ScopeRequirement::AllOf(scopes) | ScopeRequirement::AnyOf(scopes) => scopes,
            ScopeRequirement::Conjunction(c) => &c.named,
        }
    }
}

impl fmt::Display for ScopeRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeRequirement::None => f.write_str("no scope"),
            ScopeRequirement::AllOf(scopes) if scopes.is_empty() => f.write_str("no scope"),
            ScopeRequirement::AllOf(scopes) if scopes.len() == 1 => write!(f, "`{}`", scopes[0]),
            ScopeRequirement::AllOf(scopes) => write!(f, "all of `{}`", scopes.join("`, `")),
            ScopeRequirement::AnyOf(scopes) if scopes.is_empty() => {
                f.write_str("one of no scopes (an empty any-of, which nothing satisfies)")
            }
            ScopeRequirement::AnyOf(scopes) => write!(f, "one of `{}`", scopes.join("`, `")),
            ScopeRequirement::Conjunction(c) => {
                for (i, clause) in c.clauses.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", and ")?;
                    }
                    write!(f, "{clause}")?;
                }
                Ok(())
            }
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
        if let Some(required) = self.scopes.unmet_by(claims.scopes()) {
            return Err(ValidationError::InsufficientScope { required });
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
    fn empty_lists_all_of_requires_nothing_any_of_fails_closed() {
        let none = ScopeSet::default();
        let some = ScopeSet::parse("a b");
        let all = ScopeRequirement::all_of(Vec::<String>::new());
        assert!(all.is_satisfied_by(&none) && all.requires_nothing());
        let any = ScopeRequirement::any_of(Vec::<String>::new());
        assert!(!any.is_satisfied_by(&none) && !any.is_satisfied_by(&some));
        assert!(!any.requires_nothing());
        // Combined with anything, the empty any-of still refuses every token.
        let combined = any.clone().and(ScopeRequirement::one("a"));
        assert!(!combined.is_satisfied_by(&some), "{combined}");
        let claims = Claims::from_map(
            serde_json::json!({"scope": "a b"})
                .as_object()
                .cloned()
                .unwrap(),
        )
        .unwrap();
        assert!(matches!(
            Policy::new().scopes(any).check(&claims),
            Err(ValidationError::InsufficientScope { .. })
        ));
        assert_eq!(
            Policy::new().scopes(all).scope_requirement(),
            &ScopeRequirement::None
        );
    }

    #[test]
    fn combining_requirements_is_their_conjunction() {
        // The review's case: an any-of followed by require_scope keeps the any-of.
        let policy = Policy::new()
            .scopes(ScopeRequirement::any_of(["a", "b"]))
            .require_scope("c");
        let requirement = policy.scope_requirement();
        for (granted, ok) in [("a c", true), ("b c", true), ("c", false), ("a b", false)] {
            assert_eq!(
                requirement.is_satisfied_by(&ScopeSet::parse(granted)),
                ok,
                "{granted}: {requirement}"
            );
        }
        assert_eq!(requirement.to_string(), "`c`, and one of `a`, `b`");
        assert_eq!(requirement.scopes(), ["c", "a", "b"]);
        // The other order means the same.
        let reversed = Policy::new()
            .require_scope("c")
            .scopes(ScopeRequirement::any_of(["a", "b"]));
        assert_eq!(reversed.scope_requirement(), requirement);

        // All-of lists merge into one, without repeats; a redundant any-of is dropped.
        let merged = ScopeRequirement::all_of(["a", "b"])
            .and(ScopeRequirement::one("b"))
            .and(ScopeRequirement::one("c"));
        assert_eq!(merged, ScopeRequirement::all_of(["a", "b", "c"]));
        let redundant = ScopeRequirement::any_of(["a", "x"]).and(ScopeRequirement::one("a"));
        assert_eq!(redundant, ScopeRequirement::one("a"));
        assert_eq!(
            ScopeRequirement::None.and(ScopeRequirement::any_of(["a"])),
            ScopeRequirement::any_of(["a"])
        );

        // Two any-ofs: one of each, never one of all four.
        let two = ScopeRequirement::any_of(["a", "b"]).and(ScopeRequirement::any_of(["c", "d"]));
        assert!(two.is_satisfied_by(&ScopeSet::parse("b d")));
        assert!(!two.is_satisfied_by(&ScopeSet::parse("a b")));
        assert_eq!(two.to_string(), "one of `a`, `b`, and one of `c`, `d`");
        let ScopeRequirement::Conjunction(conjunction) = &two else {
            panic!("{two:?}");
        };
        assert_eq!(conjunction.clauses().len(), 2);
    }

    #[test]
    fn a_refusal_names_only_the_unmet_clauses() {
        let policy = Policy::new()
            .scopes(ScopeRequirement::any_of(["a", "b"]))
            .require_scope("c");
        let refusal = |scope: &str| {
            let claims = Claims::from_map(
                serde_json::json!({ "scope": scope })
                    .as_object()
                    .cloned()
                    .unwrap(),
            )
            .unwrap();
            match policy.check(&claims) {
                Err(ValidationError::InsufficientScope { required }) => Some(required),
                Err(other) => panic!("{other}"),
                Ok(()) => None,
            }
        };
        assert_eq!(refusal("a c"), None);
        let missing_c = refusal("a").unwrap();
        assert_eq!(missing_c, ScopeRequirement::one("c"));
        assert_eq!(missing_c.scopes(), ["c"]);
        let missing_any = refusal("c").unwrap();
        assert_eq!(missing_any, ScopeRequirement::any_of(["a", "b"]));
        let missing_both = refusal("x").unwrap();
        assert_eq!(missing_both.scopes(), ["c", "a", "b"]);
        assert_eq!(missing_both.to_string(), "`c`, and one of `a`, `b`");
        // A plain all-of is reported whole, as before.
        let plain = Policy::new().scopes(ScopeRequirement::all_of(["a", "c"]));
        let claims = Claims::from_map(
            serde_json::json!({"scope": "a"})
                .as_object()
                .cloned()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            plain.check(&claims),
            Err(ValidationError::InsufficientScope {
                required: ScopeRequirement::all_of(["a", "c"])
            })
        );
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
