use super::*;
use crate::{Claims, Policy, ValidationError};

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
fn a_scope_listed_twice_is_one_scope_and_the_set_is_sorted() {
    let set = ScopeSet::parse("nav:b nav:a nav:b nav:c nav:a");
    assert_eq!(set.iter().collect::<Vec<_>>(), ["nav:a", "nav:b", "nav:c"]);
    assert_eq!(set, ScopeSet::parse("nav:c nav:a nav:b"));
    assert_eq!(set.to_string(), "nav:a nav:b nav:c");
    for scope in ["nav:a", "nav:b", "nav:c"] {
        assert!(set.contains(scope), "{scope}");
    }
    assert!(!set.contains("nav:") && !set.contains("nav:d") && !set.contains(""));
}

#[test]
fn unicode_whitespace_does_not_separate_scopes() {
    // An ideographic space and a no-break space: not separators (RFC 6749 3.3), so the claim
    // is one scope that no route requires, and neither half is granted.
    for claim in ["nav:a:read\u{3000}nav:b", "nav:a:read\u{a0}nav:b"] {
        let set = ScopeSet::parse(claim);
        assert_eq!(set.len(), 1, "{claim:?}");
        assert!(
            !set.contains("nav:b") && !set.contains("nav:a:read"),
            "{claim:?}"
        );
        assert!(set.contains(claim));
    }
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
