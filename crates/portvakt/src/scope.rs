//! Scopes: the set a token grants (its `scope` claim) and what a route requires of it. Pure
//! scope algebra: no claims, no errors; [`Policy`](crate::Policy) applies it to a token.
//!
//! Maskinporten puts the granted scopes in one `scope` claim, separated by spaces. We split on
//! ASCII whitespace (space, tab, line feed, form feed, carriage return) and compare whole
//! scopes exactly and case-sensitively: `nav:arbeid:read` never matches `nav:arbeid:read.all`,
//! and `NAV:arbeid:read` is a different scope.
//!
//! Not on Unicode whitespace: RFC 6749 (section 3.3) separates scope tokens by the space
//! character and allows no whitespace inside one, so a claim such as `nav:a\u{3000}nav:b` is
//! malformed, and reading it as one scope (which no route requires) fails closed, where splitting
//! it would grant `nav:b` from a separator Maskinporten never writes. It is also the cost that
//! grew with the claim: Unicode-aware splitting was the largest item of a 16 KB token's
//! parsing (docs/BENCHMARKS.md, "How cost grows").

use std::fmt;

/// The scopes a token was granted, parsed once from its `scope` claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet {
    /// Sorted, without duplicates: one allocation for the list and a lookup by binary search,
    /// where a `BTreeSet` allocated a node per few scopes and cost more to build than to ask.
    scopes: Vec<Box<str>>,
}

impl ScopeSet {
    /// Parses a scope list separated by ASCII whitespace; empty entries are ignored.
    pub fn parse(claim: &str) -> ScopeSet {
        let mut scopes: Vec<Box<str>> = claim.split_ascii_whitespace().map(Box::from).collect();
        scopes.sort_unstable();
        scopes.dedup();
        ScopeSet { scopes }
    }

    /// Whether exactly this scope was granted.
    pub fn contains(&self, scope: &str) -> bool {
        self.scopes
            .binary_search_by(|granted| (**granted).cmp(scope))
            .is_ok()
    }

    /// The granted scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.scopes.iter().map(|scope| &**scope)
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

#[cfg(test)]
mod tests;
