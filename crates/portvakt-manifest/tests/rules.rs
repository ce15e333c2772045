//! Every rule, with the exact diagnostic text and position.

use portvakt_manifest::{CheckOptions, Code, Manifest, Severity, render};

/// Diagnostics of `src` as printed by `portvakt manifest check` (help lines included).
fn check(src: &str) -> Vec<String> {
    check_with(src, &CheckOptions::default())
}

fn check_with(src: &str, options: &CheckOptions) -> Vec<String> {
    Manifest::parse_with(src, "nais.yaml", options)
        .diagnostics()
        .iter()
        .map(render::diagnostic)
        .collect()
}

/// A bare `spec:` fragment with one exposed scope. Lines 1-8 are fixed:
/// line 6 `name` value at column 17, line 7 `enabled` value at column 20, line 8 `product`
/// value at column 20. `extra` lines (indented 10 spaces) follow from line 9.
fn scope(name: &str, product: &str, extra: &str) -> String {
    format!(
        "spec:
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - name: {name}
          enabled: true
          product: {product}
{extra}"
    )
}

#[test]
fn a_valid_scope_has_no_diagnostics() {
    assert_eq!(
        check(&scope("\"some.scope.read\"", "\"arbeid\"", "")),
        Vec::<String>::new()
    );
}

#[test]
fn product_must_be_lowercase_letters_and_digits() {
    assert_eq!(
        check(&scope("some.scope.read", "Arbeid", "")),
        [
            "nais.yaml:8:20: error: `product` \"Arbeid\" does not match ^[a-z0-9]+$ (lowercase letters a-z and digits only) [invalid-product]\n  = help: use \"arbeid\""
        ]
    );
    assert_eq!(
        check(&scope("some.scope.read", "arbeid-og-velferd", "")),
        [
            "nais.yaml:8:20: error: `product` \"arbeid-og-velferd\" does not match ^[a-z0-9]+$ (lowercase letters a-z and digits only) [invalid-product]\n  = help: use \"arbeidogvelferd\""
        ]
    );
    // No simple fix: no help.
    assert_eq!(
        check(&scope("some.scope.read", "\"æøå\"", "")),
        [
            "nais.yaml:8:20: error: `product` \"æøå\" does not match ^[a-z0-9]+$ (lowercase letters a-z and digits only) [invalid-product]"
        ]
    );
}

#[test]
fn the_diagnostic_carries_value_rule_and_suggestion() {
    let m = Manifest::parse(&scope("some.scope.read", "Arbeid", ""), "nais.yaml");
    let d = &m.diagnostics()[0];
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(d.code, Code::InvalidProduct);
    assert_eq!(d.code.as_str(), "invalid-product");
    assert_eq!((d.file.as_str(), d.line, d.column), ("nais.yaml", 8, 20));
    assert_eq!(d.value.as_deref(), Some("Arbeid"));
    assert_eq!(d.suggestion.as_deref(), Some("arbeid"));
    assert!(m.has_errors());
    // Invalid scopes are left out of the grants.
    assert!(m.grants().is_empty());
}

#[test]
fn scope_names_follow_the_nais_pattern() {
    let pattern = r"^([a-zæøå0-9]+\/?)+(\:[a-zæøå0-9]+)*[a-zæøå0-9]+(\.[a-zæøå0-9]+)*$";
    let cases = [
        (
            "x.read",
            "at least two characters are needed before the first \".\"",
            None,
        ),
        (
            "Some.Scope.Read",
            "uppercase 'S' is not allowed, only lowercase letters",
            Some("some.scope.read"),
        ),
        (
            "some-scope",
            "'-' is not allowed, only a-z, æ, ø, å, 0-9 and the separators / : .",
            None,
        ),
        ("a//b", "\"//\" is not allowed", None),
        (
            "ab:c",
            "at least two characters are needed after the last \":\"",
            None,
        ),
        (
            "ab.c:d",
            "\"/\" and \":\" cannot follow the first \".\"",
            None,
        ),
        ("ab..c", "\".\" must be followed by a letter or digit", None),
        ("/ab", "the name must start with a letter or digit", None),
    ];
    for (name, reason, fix) in cases {
        let mut expected = format!(
            "nais.yaml:6:17: error: scope name \"{name}\" does not match {pattern}: {reason} [invalid-scope-name]"
        );
        if let Some(fix) = fix {
            expected.push_str(&format!("\n  = help: use \"{fix}\""));
        }
        assert_eq!(
            check(&scope(&format!("\"{name}\""), "arbeid", "")),
            [expected],
            "{name}"
        );
    }
    // Norwegian letters are fine.
    assert_eq!(
        check(&scope("blåbær.les", "arbeid", "")),
        Vec::<String>::new()
    );
}

#[test]
fn separator_must_be_slash_colon_or_dot() {
    assert_eq!(
        check(&scope("ab", "arbeid", "          separator: \"-\"\n")),
        [
            "nais.yaml:9:22: error: `separator` \"-\" must be one of \"/\", \":\", \".\" [invalid-separator]"
        ]
    );
    assert_eq!(
        check(&scope("ab", "arbeid", "          separator: \" /\"\n")),
        [
            "nais.yaml:9:22: error: `separator` \" /\" must be one of \"/\", \":\", \".\" [invalid-separator]\n  = help: use \"/\""
        ]
    );
    for ok in ["/", ":", "."] {
        let src = scope("ab", "arbeid", &format!("          separator: \"{ok}\"\n"));
        assert_eq!(check(&src), Vec::<String>::new(), "{ok}");
    }
}

#[test]
fn orgno_must_be_nine_digits() {
    let consumers = |orgno: &str| format!("          consumers:\n            - orgno: {orgno}\n");
    assert_eq!(
        check(&scope("ab", "arbeid", &consumers("\"88964078\""))),
        [
            "nais.yaml:10:22: error: organization number \"88964078\" must be exactly nine digits (^\\d{9}$) [invalid-orgno]"
        ]
    );
    assert_eq!(
        check(&scope("ab", "arbeid", &consumers("\"889 640 782\""))),
        [
            "nais.yaml:10:22: error: organization number \"889 640 782\" must be exactly nine digits (^\\d{9}$) [invalid-orgno]\n  = help: remove the spaces: \"889640782\""
        ]
    );
    // Unquoted, it is a number to YAML and Kubernetes refuses it for a string field.
    assert_eq!(
        check(&scope("ab", "arbeid", &consumers("889640782"))),
        [
            "nais.yaml:10:22: error: `orgno` must be a string, found the integer 889640782 [invalid-type]\n  = help: quote it: `orgno: \"889640782\"`"
        ]
    );
}

#[test]
fn orgno_check_digit_is_a_warning_and_an_error_under_strict() {
    let src = scope(
        "ab",
        "arbeid",
        "          consumers:\n            - orgno: \"123456789\"\n              name: Testbedrift\n",
    );
    let expected_tail = "organization number \"123456789\" fails the modulus-11 check digit [orgno-check-digit]\n  = help: a mistyped organization number grants a stranger access, or nobody: look it up in Enhetsregisteret (brreg.no)";
    assert_eq!(
        check(&src),
        [format!("nais.yaml:10:22: warning: {expected_tail}")]
    );
    let m = Manifest::parse(&src, "nais.yaml");
    assert!(!m.has_errors());
    // Still granted: NAIS would grant it.
    assert!(m.grants().check("123456789", "nav:arbeid:ab").is_ok());

    let strict = CheckOptions {
        strict: true,
        ..CheckOptions::default()
    };
    assert_eq!(
        check_with(&src, &strict),
        [format!("nais.yaml:10:22: error: {expected_tail}")]
    );
    assert!(Manifest::parse_with(&src, "nais.yaml", &strict).has_errors());
}

#[test]
fn at_max_age_is_30_to_680_seconds() {
    let age = |v: &str| scope("ab", "arbeid", &format!("          atMaxAge: {v}\n"));
    assert_eq!(
        check(&age("700")),
        [
            "nais.yaml:9:21: error: `atMaxAge` 700 is out of range: it must be between 30 and 680 seconds [invalid-at-max-age]\n  = help: use 680"
        ]
    );
    assert_eq!(
        check(&age("29")),
        [
            "nais.yaml:9:21: error: `atMaxAge` 29 is out of range: it must be between 30 and 680 seconds [invalid-at-max-age]\n  = help: use 30"
        ]
    );
    assert_eq!(
        check(&age("abc")),
        [
            "nais.yaml:9:21: error: `atMaxAge` must be an integer number of seconds, found the string \"abc\" [invalid-type]"
        ]
    );
    assert_eq!(
        check(&age("\"120\"")),
        [
            "nais.yaml:9:21: error: `atMaxAge` must be an integer number of seconds, found the string \"120\" [invalid-type]\n  = help: remove the quotes: `atMaxAge: 120`"
        ]
    );
    assert_eq!(
        check(&age("1.5")),
        [
            "nais.yaml:9:21: error: `atMaxAge` must be an integer number of seconds, found the number 1.5 [invalid-type]"
        ]
    );
    for ok in ["30", "120", "680"] {
        let m = Manifest::parse(&age(ok), "nais.yaml");
        assert_eq!(m.diagnostics(), &[], "{ok}");
        let secs: u32 = ok.parse().expect("number");
        assert_eq!(m.grants().scopes()[0].at_max_age_seconds, secs);
    }
    // Default.
    let m = Manifest::parse(&scope("ab", "arbeid", ""), "nais.yaml");
    assert_eq!(m.grants().scopes()[0].at_max_age_seconds, 30);
}

#[test]
fn allowed_integrations_are_known_values() {
    let src = scope(
        "ab",
        "arbeid",
        "          allowedIntegrations:\n            - maskinporten\n            - idporten\n            - krr\n            - api_klient\n            - maskinport\n",
    );
    assert_eq!(
        check(&src),
        [
            "nais.yaml:14:15: error: unknown integration \"maskinport\" in `allowedIntegrations`: known values are maskinporten, idporten, krr, api_klient [unknown-integration]\n  = help: use \"maskinporten\""
        ]
    );
}

#[test]
fn allowed_integrations_must_not_be_empty() {
    let src = scope("ab", "arbeid", "          allowedIntegrations: []\n");
    assert_eq!(
        check(&src),
        [
            "nais.yaml:9:32: error: `allowedIntegrations` must list at least one integration, found an empty list [empty-integrations]\n  = help: use `allowedIntegrations: [maskinporten]` (the default), or remove the field"
        ]
    );
    let m = Manifest::parse(&src, "nais.yaml");
    let d = &m.diagnostics()[0];
    assert_eq!(d.code, Code::EmptyIntegrations);
    assert_eq!(d.value.as_deref(), Some("[...]"));
    assert_eq!(d.suggestion.as_deref(), Some("[maskinporten]"));
    assert!(m.has_errors());

    // Empty once the unknown values are dropped: both problems are reported.
    let src = scope(
        "ab",
        "arbeid",
        "          allowedIntegrations:\n            - maskinport\n            - krrr\n",
    );
    assert_eq!(
        check(&src),
        [
            "nais.yaml:10:13: error: `allowedIntegrations` must list at least one integration, but none of its 2 entries is valid [empty-integrations]\n  = help: use `allowedIntegrations: [maskinporten]` (the default), or remove the field",
            "nais.yaml:10:15: error: unknown integration \"maskinport\" in `allowedIntegrations`: known values are maskinporten, idporten, krr, api_klient [unknown-integration]\n  = help: use \"maskinporten\"",
            "nais.yaml:11:15: error: unknown integration \"krrr\" in `allowedIntegrations`: known values are maskinporten, idporten, krr, api_klient [unknown-integration]\n  = help: use \"krr\"",
        ]
    );
    let src = scope(
        "ab",
        "arbeid",
        "          allowedIntegrations: [maskinport]\n",
    );
    assert_eq!(
        check(&src),
        [
            "nais.yaml:9:32: error: `allowedIntegrations` must list at least one integration, but none of its 1 entry is valid [empty-integrations]\n  = help: use `allowedIntegrations: [maskinporten]` (the default), or remove the field",
            "nais.yaml:9:33: error: unknown integration \"maskinport\" in `allowedIntegrations`: known values are maskinporten, idporten, krr, api_klient [unknown-integration]\n  = help: use \"maskinporten\"",
        ]
    );
    // A wrong type is reported once, as such.
    assert_eq!(
        check(&scope(
            "ab",
            "arbeid",
            "          allowedIntegrations: maskinporten\n"
        )),
        [
            "nais.yaml:9:32: error: `allowedIntegrations` must be a list, found the string \"maskinporten\" [invalid-type]"
        ]
    );
    // One valid entry is enough.
    assert_eq!(
        check(&scope(
            "ab",
            "arbeid",
            "          allowedIntegrations: [maskinporten]\n"
        )),
        Vec::<String>::new()
    );
}

#[test]
fn visibility_is_public_or_private() {
    assert_eq!(
        check(&scope("ab", "arbeid", "          visibility: Public\n")),
        [
            "nais.yaml:9:23: error: `visibility` \"Public\" must be \"public\" or \"private\" [invalid-visibility]\n  = help: use \"public\""
        ]
    );
}

#[test]
fn delegation_source_is_altinn_and_needs_a_slash() {
    assert_eq!(
        check(&scope(
            "ab",
            "arbeid",
            "          separator: \"/\"\n          delegationSource: Altinn\n"
        )),
        [
            "nais.yaml:10:29: error: `delegationSource` \"Altinn\" must be \"altinn\", the only delegation source [invalid-delegation-source]\n  = help: use \"altinn\""
        ]
    );
    assert_eq!(
        check(&scope(
            "ab",
            "arbeid",
            "          delegationSource: altinn\n"
        )),
        [
            "nais.yaml:9:29: error: `delegationSource: altinn` requires an explicit `separator: \"/\"`, but scope \"ab\" has none (NAIS does not infer it from the name) [delegation-requires-slash]\n  = help: add `separator: \"/\"` to this scope"
        ]
    );
    // Only an explicitly written `separator: "/"` will do.
    let extra = "          separator: \"/\"\n          delegationSource: altinn\n";
    assert_eq!(check(&scope("ab", "arbeid", extra)), Vec::<String>::new());
    assert_eq!(check(&scope("a/b", "arbeid", extra)), Vec::<String>::new());
    // A '/' in the name makes '/' the effective separator, but the NAIS CRD rule is
    // `has(self.separator) && self.separator == "/"`: it must be written out.
    let src = scope(
        "sykepenger/afp.read",
        "helse",
        "          delegationSource: altinn\n",
    );
    assert_eq!(
        check(&src),
        [
            "nais.yaml:9:29: error: `delegationSource: altinn` requires an explicit `separator: \"/\"`, but scope \"sykepenger/afp.read\" has none (NAIS does not infer it from the name) [delegation-requires-slash]\n  = help: add `separator: \"/\"` to this scope"
        ]
    );
    let m = Manifest::parse(&src, "nais.yaml");
    let d = &m.diagnostics()[0];
    assert_eq!(d.code, Code::DelegationRequiresSlash);
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(d.value.as_deref(), Some("altinn"));
    assert!(m.has_errors());
    // A null separator is no separator, as in Kubernetes.
    assert_eq!(
        check(&scope(
            "a/b",
            "arbeid",
            "          separator: ~\n          delegationSource: altinn\n"
        )),
        [
            "nais.yaml:10:29: error: `delegationSource: altinn` requires an explicit `separator: \"/\"`, but scope \"a/b\" has none (NAIS does not infer it from the name) [delegation-requires-slash]\n  = help: add `separator: \"/\"` to this scope"
        ]
    );
    // An invalid separator is reported once, as such.
    assert_eq!(
        check(&scope(
            "ab",
            "arbeid",
            "          separator: \"-\"\n          delegationSource: altinn\n"
        )),
        [
            "nais.yaml:9:22: error: `separator` \"-\" must be one of \"/\", \":\", \".\" [invalid-separator]"
        ]
    );
    // An explicit ':' wins over the '/' in the name.
    assert_eq!(
        check(&scope(
            "a/b",
            "arbeid",
            "          separator: \":\"\n          delegationSource: altinn\n"
        )),
        [
            "nais.yaml:10:29: error: `delegationSource: altinn` requires separator \"/\", but scope \"a/b\" uses \":\" [delegation-requires-slash]\n  = help: add `separator: \"/\"` to this scope"
        ]
    );
}

#[test]
fn required_fields() {
    let src = "spec:
  maskinporten:
    scopes:
      exposes:
        - name: ab
          product:
        - enabled: true
          product: arbeid
";
    assert_eq!(
        check(src),
        [
            "nais.yaml:2:3: error: missing required field `enabled` in spec.maskinporten [missing-field]",
            "nais.yaml:5:11: error: missing required field `enabled` in spec.maskinporten.scopes.exposes[0] [missing-field]",
            "nais.yaml:6:11: error: missing required field `product` in spec.maskinporten.scopes.exposes[0] [missing-field]",
            "nais.yaml:7:11: error: missing required field `name` in spec.maskinporten.scopes.exposes[1] [missing-field]",
        ]
    );
    let src = "spec:
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - name: ab
          enabled: true
          product: arbeid
          consumers:
            - name: NAV
";
    assert_eq!(
        check(src),
        [
            "nais.yaml:10:15: error: missing required field `orgno` in spec.maskinporten.scopes.exposes[0].consumers[0] [missing-field]"
        ]
    );
}

#[test]
fn wrong_types() {
    let src = "spec:
  maskinporten:
    enabled: \"yes\"
    scopes:
      exposes:
        - name: ab
          enabled: \"true\"
          product: 42
          accessibleForAll: [true]
          consumers: 889640782
";
    assert_eq!(
        check(src),
        [
            "nais.yaml:3:14: error: `enabled` must be a boolean (true or false), found the string \"yes\" [invalid-type]\n  = help: write `enabled: true`, without quotes",
            "nais.yaml:7:20: error: `enabled` must be a boolean (true or false), found the string \"true\" [invalid-type]\n  = help: write `enabled: true`, without quotes",
            "nais.yaml:8:20: error: `product` must be a string, found the integer 42 [invalid-type]\n  = help: quote it: `product: \"42\"`",
            "nais.yaml:9:29: error: `accessibleForAll` must be a boolean (true or false), found a list [invalid-type]",
            "nais.yaml:10:22: error: `consumers` must be a list, found the integer 889640782 [invalid-type]",
        ]
    );
    let src = "spec:\n  maskinporten: true\n";
    assert_eq!(
        check(src),
        [
            "nais.yaml:2:17: error: `maskinporten` must be a mapping, found the boolean true [invalid-type]"
        ]
    );
    let src = "spec:\n  maskinporten:\n    enabled: true\n    scopes:\n      exposes:\n        name: ab\n";
    assert_eq!(
        check(src),
        ["nais.yaml:6:9: error: `exposes` must be a list, found a mapping [invalid-type]"]
    );
    let src = "spec: [maskinporten]\n";
    assert_eq!(
        check(src),
        ["nais.yaml:1:7: error: `spec` must be a mapping, found a list [invalid-type]"]
    );
}

#[test]
fn yaml_1_1_booleans_are_flagged() {
    let src = "spec:\n  maskinporten:\n    enabled: yes\n";
    assert_eq!(
        check(src),
        [
            "nais.yaml:3:14: warning: `enabled: yes` is the boolean true to YAML 1.1 readers but the string \"yes\" to YAML 1.2 readers [ambiguous-boolean]\n  = help: write `enabled: true`"
        ]
    );
    // In a string field it is an error: Norwegian for "no" is the boolean false to
    // Kubernetes (YAML 1.1), and the CRD refuses a boolean where it requires a string.
    assert_eq!(
        check(&scope("ab", "no", "")),
        [
            "nais.yaml:8:20: error: `product: no` is the boolean false to YAML 1.1 readers such as Kubernetes, which refuse it where a string is required (YAML 1.2 readers see the string \"no\") [ambiguous-boolean]\n  = help: quote it: `product: \"no\"`"
        ]
    );
    let m = Manifest::parse(&scope("ab", "no", ""), "nais.yaml");
    assert!(m.has_errors());
    assert!(m.grants().is_empty());
    // A consumer's name too.
    let src = scope(
        "ab",
        "arbeid",
        "          consumers:\n            - orgno: \"889640782\"\n              name: on\n",
    );
    assert_eq!(
        check(&src),
        [
            "nais.yaml:11:21: error: `name: on` is the boolean true to YAML 1.1 readers such as Kubernetes, which refuse it where a string is required (YAML 1.2 readers see the string \"on\") [ambiguous-boolean]\n  = help: quote it: `name: \"on\"`"
        ]
    );
    // Quoted, it is the string.
    assert_eq!(check(&scope("ab", "\"no\"", "")), Vec::<String>::new());
}

#[test]
fn explicit_core_tags_are_honoured() {
    let src = scope(
        "ab",
        "arbeid",
        "          atMaxAge: !!int \"60\"\n          accessibleForAll: !!bool \"true\"\n",
    )
    .replace(
        "enabled: true\n          product",
        "enabled: !!bool \"true\"\n          product",
    );
    let m = Manifest::parse(&src, "nais.yaml");
    assert_eq!(m.diagnostics(), &[]);
    let grants = m.grants();
    let g = &grants.scopes()[0];
    assert!(g.enabled && g.accessible_for_all);
    assert_eq!(g.at_max_age_seconds, 60);
    let m = Manifest::parse(
        &scope("ab", "arbeid", "          atMaxAge: !!float \"120\"\n"),
        "nais.yaml",
    );
    assert_eq!(m.diagnostics(), &[]);
    assert_eq!(m.grants().scopes()[0].at_max_age_seconds, 120);
    // A text the tag cannot read is an error, as in go-yaml.
    assert_eq!(
        check(&scope(
            "ab",
            "arbeid",
            "          atMaxAge: !!int \"abc\"\n"
        )),
        [
            "nais.yaml:9:27: error: `atMaxAge` must be an integer number of seconds, found the string \"abc\" [invalid-type]"
        ]
    );
}

#[test]
fn numbers_yaml_1_1_reads_differently_are_errors() {
    let age = |v: &str| scope("ab", "arbeid", &format!("          atMaxAge: {v}\n"));
    assert_eq!(
        check(&age("0100")),
        [
            "nais.yaml:9:21: error: `atMaxAge: 0100` is ambiguous: YAML 1.1 readers such as Kubernetes and YAML 1.2 readers see different values in it (a leading zero is octal to one, an underscore a string to the other) [ambiguous-number]\n  = help: write the number of seconds plainly, in decimal without leading zeros or underscores"
        ]
    );
    for ambiguous in ["6_00", "0b1111000", "!!int 0100", "060"] {
        let m = Manifest::parse(&age(ambiguous), "nais.yaml");
        let codes: Vec<Code> = m.diagnostics().iter().map(|d| d.code).collect();
        assert_eq!(codes, [Code::AmbiguousNumber], "{ambiguous}");
    }
    // The same in both readings: accepted.
    // (`060` would be octal 48 to Kubernetes: ambiguous, like `0100`.)
    for (same, secs) in [("0o100", 64), ("0x78", 120), ("60.0", 60), ("6e1", 60)] {
        let m = Manifest::parse(&age(same), "nais.yaml");
        assert_eq!(m.diagnostics(), &[], "{same}");
        assert_eq!(m.grants().scopes()[0].at_max_age_seconds, secs, "{same}");
    }
    assert_eq!(
        check(&age("700.0")),
        [
            "nais.yaml:9:21: error: `atMaxAge` 700 is out of range: it must be between 30 and 680 seconds [invalid-at-max-age]\n  = help: use 680"
        ]
    );
    // A number with underscores in a string field is a number to Kubernetes.
    let m = Manifest::parse(&scope("ab", "1_000", ""), "nais.yaml");
    let codes: Vec<Code> = m.diagnostics().iter().map(|d| d.code).collect();
    assert_eq!(codes, [Code::AmbiguousNumber]);
}

#[test]
fn unknown_fields_are_reported_with_the_likely_meaning() {
    let src = "spec:
  maskinporten:
    enabled: true
    scope:
      exposes: []
";
    assert_eq!(
        check(src),
        [
            "nais.yaml:4:5: warning: unknown field `scope` in spec.maskinporten; NAIS would ignore it [unknown-field]\n  = help: did you mean `scopes`?"
        ]
    );
    assert_eq!(
        check(&scope(
            "ab",
            "arbeid",
            "          accesibleForAll: true\n          consumer:\n            - orgno: \"889640782\"\n          color: blue\n"
        )),
        [
            "nais.yaml:9:11: warning: unknown field `accesibleForAll` in spec.maskinporten.scopes.exposes[0]; NAIS would ignore it [unknown-field]\n  = help: did you mean `accessibleForAll`?",
            "nais.yaml:10:11: warning: unknown field `consumer` in spec.maskinporten.scopes.exposes[0]; NAIS would ignore it [unknown-field]\n  = help: did you mean `consumers`?",
            "nais.yaml:12:11: warning: unknown field `color` in spec.maskinporten.scopes.exposes[0]; NAIS would ignore it [unknown-field]\n  = help: known fields: name, enabled, product, separator, consumers, accessibleForAll, atMaxAge, allowedIntegrations, visibility, delegationSource",
        ]
    );
    // A misspelt `maskinporten` would provision nothing.
    let src = "spec:\n  image: x\n  maskinporen:\n    enabled: true\n";
    assert_eq!(
        check(src),
        [
            "nais.yaml:3:3: warning: unknown field `maskinporen` in spec; NAIS would ignore it [unknown-field]\n  = help: did you mean `maskinporten`?"
        ]
    );
    // Consumers and consumes entries too.
    let src = "spec:
  maskinporten:
    enabled: true
    scopes:
      consumes:
        - name: nav:x:ab
          nmae: y
";
    assert_eq!(
        check(src),
        [
            "nais.yaml:7:11: warning: unknown field `nmae` in spec.maskinporten.scopes.consumes[0]; NAIS would ignore it [unknown-field]\n  = help: did you mean `name`?"
        ]
    );
}

#[test]
fn duplicate_keys_are_errors() {
    let src = "spec:
  maskinporten:
    enabled: true
    enabled: false
";
    assert_eq!(
        check(src),
        [
            "nais.yaml:4:5: error: duplicate key `enabled` (first at line 3) [duplicate-key]\n  = help: Kubernetes refuses a mapping with a key twice: keep one"
        ]
    );
}

#[test]
fn duplicate_scopes_are_errors() {
    let src = "spec:
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - name: ab.read
          enabled: true
          product: arbeid
        - name: ab.read
          enabled: true
          product: arbeid
          separator: \":\"
";
    assert_eq!(
        check(src),
        [
            "nais.yaml:9:17: error: scope \"ab.read\" is exposed more than once (first at line 6) [duplicate-scope]\n  = help: expose each scope once, with all its consumers"
        ]
    );
    // Same name with another separator or product is another scope.
    let src = "spec:
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - name: ab.read
          enabled: true
          product: arbeid
        - name: ab.read
          enabled: true
          product: arbeid
          separator: \"/\"
        - name: ab.read
          enabled: true
          product: helse
";
    let m = Manifest::parse(src, "nais.yaml");
    assert_eq!(m.diagnostics(), &[]);
    let grants = m.grants();
    let names: Vec<&str> = grants.scopes().iter().map(|g| g.scope.as_str()).collect();
    assert_eq!(
        names,
        [
            "nav:arbeid:ab.read",
            "nav:arbeid/ab.read",
            "nav:helse:ab.read"
        ]
    );
}

#[test]
fn duplicate_consumers_are_warnings() {
    let src = scope(
        "ab",
        "arbeid",
        "          consumers:\n            - orgno: \"889640782\"\n            - orgno: \"974761076\"\n            - orgno: \"889640782\"\n",
    );
    assert_eq!(
        check(&src),
        [
            "nais.yaml:12:22: warning: organization number \"889640782\" is listed more than once for this scope (first at line 10) [duplicate-consumer]\n  = help: remove the repeated entry"
        ]
    );
    let m = Manifest::parse(&src, "nais.yaml");
    assert_eq!(m.grants().scopes()[0].consumers.len(), 2);
}

#[test]
fn consumers_on_a_disabled_scope_are_a_warning() {
    let src = "spec:
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - name: ab
          enabled: false
          product: arbeid
          consumers:
            - orgno: \"889640782\"
";
    assert_eq!(
        check(src),
        [
            "nais.yaml:7:20: warning: scope \"ab\" is disabled, so its 1 listed consumer gets no access [consumers-on-disabled-scope]\n  = help: enable the scope, or remove its consumers"
        ]
    );
}

#[test]
fn accessible_for_all_with_consumers_is_a_warning() {
    let src = scope(
        "ab",
        "arbeid",
        "          accessibleForAll: true\n          consumers:\n            - orgno: \"889640782\"\n",
    );
    assert_eq!(
        check(&src),
        [
            "nais.yaml:9:29: warning: scope \"ab\" is accessible for all, so its consumer list has no effect [accessible-for-all-with-consumers]\n  = help: remove `accessibleForAll`, or the consumer list"
        ]
    );
}

#[test]
fn scopes_under_disabled_maskinporten_are_a_warning() {
    let src = "spec:
  maskinporten:
    enabled: false
    scopes:
      exposes:
        - name: ab
          enabled: true
          product: arbeid
";
    assert_eq!(
        check(src),
        [
            "nais.yaml:3:14: warning: maskinporten is disabled, so none of the 1 exposed and 0 consumed scopes is provisioned [maskinporten-disabled]\n  = help: set `enabled: true`, or remove the scopes"
        ]
    );
    assert!(Manifest::parse(src, "nais.yaml").grants().is_empty());
}

#[test]
fn consumed_scopes() {
    let src = "spec:
  maskinporten:
    enabled: true
    scopes:
      consumes:
        - name: \"skatteetaten:mvameldingvalidering\"
        - name: \"arbeid\"
        - name: \"skatteetaten:mvameldingvalidering\"
";
    assert_eq!(
        check(src),
        [
            "nais.yaml:7:17: warning: consumed scope \"arbeid\" has no prefix; Maskinporten scopes look like prefix:name [unqualified-consumed-scope]\n  = help: use the fully qualified scope, e.g. nav:arbeid:some.scope.read",
            "nais.yaml:8:17: warning: scope \"skatteetaten:mvameldingvalidering\" is consumed more than once (first at line 6) [duplicate-consumed-scope]",
        ]
    );
    let m = Manifest::parse(src, "nais.yaml");
    assert_eq!(
        m.consumes(),
        ["skatteetaten:mvameldingvalidering", "arbeid"]
    );
}

#[test]
fn the_prefix_is_configurable() {
    let opts = CheckOptions {
        prefix: "test".to_owned(),
        ..CheckOptions::default()
    };
    let m = Manifest::parse_with(&scope("ab", "arbeid", ""), "nais.yaml", &opts);
    assert_eq!(m.grants().scopes()[0].scope, "test:arbeid:ab");
}

#[test]
fn fully_qualified_names_for_every_separator_case() {
    let cases = [
        ("some.scope.read", "", "nav:arbeid:some.scope.read"),
        ("sykepenger/afp.read", "", "nav:arbeid/sykepenger/afp.read"),
        ("ab", "          separator: \"/\"\n", "nav:arbeid/ab"),
        ("ab", "          separator: \".\"\n", "nav:arbeid.ab"),
        ("ab", "          separator: \":\"\n", "nav:arbeid:ab"),
        ("a/b", "          separator: \":\"\n", "nav:arbeid:a/b"),
        ("a/b", "          separator: \".\"\n", "nav:arbeid.a/b"),
        ("a:bc", "", "nav:arbeid:a:bc"),
    ];
    for (name, extra, fq) in cases {
        let m = Manifest::parse(&scope(name, "arbeid", extra), "nais.yaml");
        assert_eq!(m.diagnostics(), &[], "{name}");
        assert_eq!(m.grants().scopes()[0].scope, fq, "{name}");
    }
}

#[test]
fn no_application_in_the_file() {
    let expected = "nais.yaml:1:1: error: no NAIS Application in this file [no-application]\n  = help: expected a document with `apiVersion: nais.io/v1alpha1` and `kind: Application`, or a bare `spec:` fragment";
    for src in [
        "",
        "apiVersion: v1\nkind: ConfigMap\ndata: {}\n",
        // An Argo CD Application is not a NAIS one.
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec:\n  maskinporten: x\n",
        "just text\n",
        "- a\n- b\n",
    ] {
        assert_eq!(check(src), [expected], "{src:?}");
    }
}

#[test]
fn invalid_yaml_is_reported_at_its_position() {
    assert_eq!(
        check("spec:\n  maskinporten:\n    enabled: [true\n"),
        [
            "nais.yaml:4:1: error: invalid YAML: while parsing a flow sequence, expected ',' or ']' [invalid-yaml]"
        ]
    );
}

#[test]
fn a_carriage_return_without_a_line_feed_is_refused_where_it_is() {
    // YAML would count it as a line break, grep and git would not: no line number could mean
    // the same to both (the `manifest` fuzz target's finding).
    assert_eq!(
        check("spec:\n  maskinporten:\n    enabled: true\r    scopes: {}\n"),
        [
            "nais.yaml:3:18: error: a carriage return without a line feed after it (old Mac line endings) [invalid-line-ending]\n  = help: save the manifest with LF (or CRLF) line endings"
        ]
    );
    // CRLF is a line ending like LF; a final lone CR is not.
    let crlf = scope("some.scope.read", "arbeid", "").replace('\n', "\r\n");
    assert_eq!(check(&crlf), Vec::<String>::new());
    assert_eq!(check(&format!("{crlf}\r")).len(), 1);
}

#[test]
fn a_diagnostic_at_the_end_of_input_points_at_the_last_line() {
    // Empty keys, the last on the last line: the parser placed the duplicate `~` key on the
    // line after the end (the `manifest` fuzz target's second finding of 2026-12-02).
    let crash = include_bytes!(
        "../../../fuzz/regressions/manifest/crash-fe020244f44773029dbb6383583c29764381a455"
    );
    let lines = crash.split(|&b| b == b'\n').count();
    let m = Manifest::from_bytes(crash, "nais.yaml", &CheckOptions::default());
    assert!(
        m.diagnostics()
            .iter()
            .any(|d| d.code == Code::DuplicateKey && d.line == lines),
        "{:?}",
        m.diagnostics()
    );
    for d in m.diagnostics() {
        assert!((1..=lines).contains(&d.line), "{}", render::diagnostic(d));
    }
}

#[test]
fn invalid_utf8_is_reported_at_the_first_bad_byte() {
    let m = Manifest::from_bytes(b"spec:\n  a: \xff\n", "nais.yaml", &CheckOptions::default());
    let out: Vec<String> = m.diagnostics().iter().map(render::diagnostic).collect();
    assert_eq!(
        out,
        [
            "nais.yaml:2:6: error: the file is not valid UTF-8 [invalid-encoding]\n  = help: save the manifest as UTF-8"
        ]
    );
}

#[test]
fn merge_keys_are_applied_as_go_yaml_does() {
    let src = "spec:
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - &base
          name: aa.read
          enabled: true
          product: arbeid
        - <<: *base
          name: bb.read
";
    let m = Manifest::parse(src, "nais.yaml");
    assert_eq!(m.diagnostics(), &[]);
    let grants = m.grants();
    let names: Vec<&str> = grants.scopes().iter().map(|g| g.scope.as_str()).collect();
    assert_eq!(names, ["nav:arbeid:aa.read", "nav:arbeid:bb.read"]);
    // A merged mapping under `spec` gives the scopes, it does not silently drop them.
    let src = "x-mp: &mp
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - {name: aa.read, enabled: true, product: arbeid}
spec: {<<: *mp}
";
    let m = Manifest::parse(src, "nais.yaml");
    assert_eq!(m.diagnostics(), &[]);
    assert_eq!(m.grants().scopes().len(), 1);
    // Several mappings: the earlier wins; explicit keys win over all and are no duplicates.
    let src = "a: &a {name: aa.read, product: arbeid}
b: &b {name: bb.read, product: helse, enabled: true}
spec:
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - <<: [*a, *b]
          product: pensjon
";
    let m = Manifest::parse(src, "nais.yaml");
    assert_eq!(m.diagnostics(), &[]);
    let grants = m.grants();
    let names: Vec<&str> = grants.scopes().iter().map(|g| g.scope.as_str()).collect();
    assert_eq!(names, ["nav:pensjon:aa.read"]);
    // A diagnostic for a merged value points at the alias.
    let src = "base: &base {name: aa.read, enabled: true, product: Arbeid}
spec:
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - <<: *base
";
    assert_eq!(
        check(src),
        [
            "nais.yaml:7:15: error: `product` \"Arbeid\" does not match ^[a-z0-9]+$ (lowercase letters a-z and digits only) [invalid-product]\n  = help: use \"arbeid\""
        ]
    );
    // What go-yaml refuses is refused: a merge of something that is not a mapping.
    assert_eq!(
        check("spec:\n  <<: 5\n"),
        [
            "nais.yaml:2:7: error: invalid YAML: a merge key `<<` needs a mapping or a list of mappings, found the integer 5 [invalid-yaml]"
        ]
    );
    // A quoted "<<" is an ordinary key.
    assert_eq!(
        check("spec:\n  \"<<\": {enabled: true}\n"),
        Vec::<String>::new()
    );
}

#[test]
fn a_byte_order_mark_is_skipped_without_shifting_columns() {
    let src = format!("\u{feff}{}", scope("ab", "Arbeid", ""));
    assert_eq!(
        check(&src),
        [
            "nais.yaml:8:20: error: `product` \"Arbeid\" does not match ^[a-z0-9]+$ (lowercase letters a-z and digits only) [invalid-product]\n  = help: use \"arbeid\""
        ]
    );
    assert_eq!(
        check("\u{feff}spec: [x]\n"),
        ["nais.yaml:1:7: error: `spec` must be a mapping, found a list [invalid-type]"]
    );
    let bytes = format!("\u{feff}{}", scope("ab", "arbeid", ""));
    let m = Manifest::from_bytes(bytes.as_bytes(), "nais.yaml", &CheckOptions::default());
    assert_eq!(m.diagnostics(), &[]);
    assert_eq!(m.grants().scopes().len(), 1);
}

#[test]
fn a_misspelt_top_level_field_is_reported() {
    let app = |body: &str| {
        format!(
            "apiVersion: nais.io/v1alpha1\nkind: Application\nmetadata:\n  name: a\n{body}  maskinporten:\n    enabled: true\n"
        )
    };
    assert_eq!(
        check(&app("spce:\n")),
        [
            "nais.yaml:5:1: error: unknown field `spce` and no `spec`: NAIS refuses an Application without `spec`, and none of the settings under `spce` would be read [unknown-field]\n  = help: did you mean `spec`?"
        ]
    );
    let src = app("spec:\n").replace("metadata:", "metdata:");
    assert_eq!(
        check(&src),
        [
            "nais.yaml:3:1: warning: unknown top-level field `metdata`; NAIS would ignore it [unknown-field]\n  = help: did you mean `metadata`?"
        ]
    );
}

#[test]
fn near_misses_of_the_application_header_are_errors() {
    let doc = |api: &str, kind: &str| {
        format!(
            "apiVersion: {api}\nkind: {kind}\nspec:\n  maskinporten:\n    enabled: true\n---\nspec: {{}}\n"
        )
    };
    assert_eq!(
        check(&doc("nais.io/v1alpha", "Application")),
        [
            "nais.yaml:1:13: error: `apiVersion: nais.io/v1alpha` is not the NAIS Application API, so this document is not read (NAIS refuses it, and its scopes would be left out) [skipped-document]\n  = help: use `apiVersion: nais.io/v1alpha1`"
        ]
    );
    assert_eq!(
        check(&doc("nais.io/v1alpha1", "application")),
        [
            "nais.yaml:2:7: error: `kind: application` is not `Application` (kinds are case-sensitive), so this document is not read (NAIS refuses it, and its scopes would be left out) [skipped-document]\n  = help: use `kind: Application`"
        ]
    );
    let src = doc("nais.io/v1alpha1", "Application").replace("apiVersion:", "apiversion:");
    assert_eq!(
        check(&src),
        [
            "nais.yaml:1:1: warning: unknown top-level field `apiversion`; NAIS would ignore it [unknown-field]\n  = help: did you mean `apiVersion`?",
            "nais.yaml:4:3: error: this document has `maskinporten` settings but is not read: it is not a NAIS Application, so its scopes would be left out [skipped-document]\n  = help: a NAIS application starts with `apiVersion: nais.io/v1alpha1` and `kind: Application` (or is a bare `spec:` fragment)",
        ]
    );
    // Other kinds are not ours: a Naisjob (nais.io/v1) has `spec.maskinporten` too, and an
    // Argo CD Application is another API.
    assert_eq!(check(&doc("nais.io/v1", "Naisjob")), Vec::<String>::new());
    assert_eq!(
        check(&doc("argoproj.io/v1alpha1", "Application")),
        Vec::<String>::new()
    );
}

#[test]
fn a_disabled_application_does_not_claim_its_scopes() {
    let app = |enabled: bool| {
        format!(
            "apiVersion: nais.io/v1alpha1\nkind: Application\nspec:\n  maskinporten:\n    enabled: {enabled}\n    scopes:\n      exposes:\n        - name: ab\n          enabled: true\n          product: arbeid\n"
        )
    };
    let src = format!("{}---\n{}", app(false), app(true));
    let m = Manifest::parse(&src, "nais.yaml");
    let codes: Vec<Code> = m.diagnostics().iter().map(|d| d.code).collect();
    assert_eq!(codes, [Code::MaskinportenDisabled]);
    assert_eq!(m.grants().scopes().len(), 1);
    // Two enabled copies still clash.
    let src = format!("{}---\n{}", app(true), app(true));
    let m = Manifest::parse(&src, "nais.yaml");
    let codes: Vec<Code> = m.diagnostics().iter().map(|d| d.code).collect();
    assert_eq!(codes, [Code::DuplicateScope]);
}

#[test]
fn control_characters_never_reach_the_terminal() {
    let src = scope("ab", "\"x\\nnais.yaml:1:1: warning: fake\\u001b[2J\"", "");
    let out = check(&src);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0],
        "nais.yaml:8:20: error: `product` \"x\\nnais.yaml:1:1: warning: fake\\u{1b}[2J\" does not match ^[a-z0-9]+$ (lowercase letters a-z and digits only) [invalid-product]"
    );
    assert!(!out[0].chars().any(char::is_control));
    // A long value is cut in the message.
    let long = "X".repeat(10_000);
    let out = check(&scope("ab", &long, ""));
    assert!(out[0].len() < 400, "{}", out[0].len());
    assert!(out[0].contains(&format!("\"{}…\"", "X".repeat(64))));
    // The scopes table escapes consumer names.
    let src = scope(
        "ab",
        "arbeid",
        "          consumers:\n            - orgno: \"889640782\"\n              name: \"a\\u001b]0;x\\u0007b\"\n",
    );
    let m = Manifest::parse(&src, "nais.yaml");
    assert_eq!(m.diagnostics(), &[]);
    let table = render::scopes_table(&m.grants());
    assert!(table.contains("889640782 (a\\u{1b}]0;x\\u{7}b)"), "{table}");
    assert!(!table.chars().any(|c| c.is_control() && c != '\n'));
}
