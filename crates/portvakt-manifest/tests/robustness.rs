//! No input makes the reader panic; every bad input ends in a diagnostic.

use portvakt_manifest::{CheckOptions, Code, Manifest};

const VALID: &str = include_str!("corpus/multi-app.yaml");

fn codes(src: &str) -> Vec<Code> {
    Manifest::parse(src, "x.yaml")
        .diagnostics()
        .iter()
        .map(|d| d.code)
        .collect()
}

#[test]
fn empty_and_blank_files() {
    for src in [
        "",
        "\n",
        "   \n\n",
        "# only a comment\n",
        "---\n",
        "---\n...\n",
        "~\n",
    ] {
        assert_eq!(codes(src), [Code::NoApplication], "{src:?}");
    }
}

#[test]
fn non_mapping_roots() {
    for src in [
        "42\n",
        "- spec: x\n",
        "\"spec\"\n",
        "[1, 2]\n",
        "!!binary aGVsbG8=\n",
    ] {
        assert_eq!(codes(src), [Code::NoApplication], "{src:?}");
    }
}

#[test]
fn tabs_and_garbage() {
    for src in [
        "spec:\n\tmaskinporten:\n",
        "\t",
        "spec: {\n",
        "spec: [}\n",
        ": : :\n",
        "%YAML 9.9\n---\n",
        "\u{feff}spec:\n  maskinporten: {enabled: true\n",
        "*unknown\n",
        "&a [*a]\n",
        "spec: !!int abc\n",
        "key: \"unterminated\n",
        "@\n",
        "`\n",
    ] {
        let m = Manifest::parse(src, "x.yaml");
        assert!(m.has_errors(), "{src:?}");
        let d = &m.diagnostics()[0];
        assert!(d.line >= 1 && d.column >= 1, "{src:?}: {d}");
    }
}

#[test]
fn deep_nesting_is_a_diagnostic_not_a_stack_overflow() {
    let mut src = "spec:\n  maskinporten:\n    enabled: ".to_owned();
    src.push_str(&"[".repeat(100_000));
    let m = Manifest::parse(&src, "x.yaml");
    assert_eq!(codes(&src), [Code::InvalidYaml]);
    assert!(m.has_errors());

    let mut src = "spec:\n".to_owned();
    for depth in 1..2_000 {
        src.push_str(&" ".repeat(depth));
        src.push_str("a:\n");
    }
    let m = Manifest::parse(&src, "x.yaml");
    let d = &m.diagnostics()[0];
    assert_eq!(d.code, Code::InvalidYaml);
    assert_eq!(d.message, "invalid YAML: nesting deeper than 100 levels");
}

#[test]
fn alias_bombs_are_refused() {
    let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        src.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    src.push_str("spec:\n  maskinporten:\n    enabled: true\n");
    assert_eq!(codes(&src), [Code::InvalidYaml]);
}

/// Where a field goes in the template: replacing a line, or inserted before `consumers`.
enum At {
    Replace(usize),
    Insert,
}

#[test]
fn every_field_with_every_wrong_type() {
    let template = [
        "anchor: &x [1]",
        "spec:",
        "  maskinporten:",
        "    enabled: true",
        "    scopes:",
        "      exposes:",
        "        - name: ab",
        "          enabled: true",
        "          product: arbeid",
        "          consumers:",
        "            - orgno: \"889640782\"",
    ];
    let values = [
        "[]",
        "{}",
        "[a, b]",
        "{a: b}",
        "42",
        "-1",
        "1.5",
        "true",
        "\"\"",
        "~",
        "!!str 5",
        "*x",
        "9999999999999999999999",
        "\"yes\"",
        "abc",
    ];
    let fields = [
        ("    enabled", At::Replace(3)),
        ("        - name", At::Replace(6)),
        ("          enabled", At::Replace(7)),
        ("          product", At::Replace(8)),
        ("          consumers", At::Replace(9)),
        ("            - orgno", At::Replace(10)),
        ("          separator", At::Insert),
        ("          accessibleForAll", At::Insert),
        ("          atMaxAge", At::Insert),
        ("          allowedIntegrations", At::Insert),
        ("          visibility", At::Insert),
        ("          delegationSource", At::Insert),
    ];
    // Values that are right (or absent, for optional fields) for a field.
    let acceptable = |field: &str, value: &str| {
        let optional = !matches!(field, "enabled" | "- name" | "product" | "- orgno");
        (optional && value == "~")
            || (field == "consumers" && value == "[]")
            // (`accessibleForAll: true` is right, but warned about next to a consumer list.)
            || (field == "enabled" && value == "true")
            || (matches!(field, "- name" | "product") && matches!(value, "abc" | "\"yes\""))
            || (field == "product" && value == "!!str 5")
            || (field == "atMaxAge" && value == "42")
    };
    let mut checked = 0;
    for value in values {
        for (field, at) in &fields {
            let mut lines: Vec<String> = template.iter().map(|s| s.to_string()).collect();
            let line = format!("{field}: {value}");
            let index = match at {
                At::Replace(i) => {
                    lines[*i] = line;
                    if field.trim() == "consumers" {
                        lines.truncate(i + 1);
                    }
                    *i
                }
                At::Insert => {
                    lines.insert(9, line);
                    9
                }
            };
            let src = lines.join("\n") + "\n";
            let m = Manifest::parse(&src, "x.yaml");
            let _ = m.grants();
            let on_line = m.diagnostics().iter().any(|d| d.line == index + 1);
            let name = field.trim();
            assert_eq!(
                on_line,
                !acceptable(name, value),
                "{name}: {value}\n{src}\n{:#?}",
                m.diagnostics()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 15 * 12);
}

#[test]
fn every_prefix_of_a_valid_manifest() {
    // Truncation at every character boundary: never a panic, whatever state the reader is in
    // when the text stops.
    let chars: Vec<(usize, char)> = VALID.char_indices().collect();
    for &(i, _) in &chars {
        let m = Manifest::parse(&VALID[..i], "x.yaml");
        let _ = m.grants();
        let _ = m.consumes();
    }
}

#[test]
fn random_mutations_never_panic() {
    // A small deterministic generator (xorshift), so that failures reproduce.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet: Vec<char> = " \t\n:-[]{},&*!|>'\"#%@`?aZ09æ\u{0}\u{feff}"
        .chars()
        .collect();
    let base: Vec<char> = VALID.chars().collect();
    for _ in 0..3_000 {
        let mut text = base.clone();
        let edits = 1 + next() % 4;
        for _ in 0..edits {
            let pos = (next() % text.len() as u64) as usize;
            let c = alphabet[(next() % alphabet.len() as u64) as usize];
            match next() % 3 {
                0 => text[pos] = c,
                1 => text.insert(pos, c),
                _ => {
                    text.remove(pos);
                }
            }
        }
        let src: String = text.into_iter().collect();
        let m = Manifest::parse(&src, "x.yaml");
        let _ = m.grants();
    }
    // Pure noise too.
    for _ in 0..2_000 {
        let len = (next() % 200) as usize;
        let src: String = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let _ = Manifest::parse(&src, "x.yaml");
    }
}

#[test]
fn strict_makes_every_warning_an_error() {
    let src = "spec:\n  maskinporten:\n    enabled: yes\n    scope: {}\n";
    let lax = Manifest::parse(src, "x.yaml");
    assert_eq!(lax.diagnostics().len(), 2);
    assert!(!lax.has_errors());
    let strict = Manifest::parse_with(
        src,
        "x.yaml",
        &CheckOptions {
            strict: true,
            ..CheckOptions::default()
        },
    );
    assert_eq!(strict.diagnostics().len(), 2);
    assert!(strict.diagnostics().iter().all(|d| d.is_error()));
}

#[test]
fn unreadable_files_are_read_errors() {
    let missing = Manifest::from_path("/nonexistent/nais.yaml");
    let Err(e) = missing else {
        panic!("expected an error");
    };
    assert_eq!(
        e.to_string(),
        "cannot read /nonexistent/nais.yaml: No such file or directory (os error 2)"
    );
    assert_eq!(
        portvakt_manifest::render::read_error(&e),
        "error: cannot read /nonexistent/nais.yaml: No such file or directory (os error 2)\n  = help: pass the path of the application's NAIS manifest, e.g. `portvakt manifest check .nais/app.yaml` (the default is ./nais.yaml)"
    );
    // A directory is not a manifest.
    let dir = Manifest::from_path(env!("CARGO_MANIFEST_DIR"));
    assert!(dir.is_err());
}

#[test]
fn a_stream_is_read_only_up_to_the_size_limit() {
    // /dev/zero reports size 0 and never ends: the read must stop at the limit.
    let zero = std::path::Path::new("/dev/zero");
    if !zero.exists() {
        return;
    }
    let Err(e) = Manifest::from_path(zero) else {
        panic!("expected an error");
    };
    assert_eq!(
        e.to_string(),
        format!(
            "/dev/zero is {} bytes or more; a NAIS manifest is at most {} bytes",
            portvakt_manifest::MAX_FILE_SIZE + 1,
            portvakt_manifest::MAX_FILE_SIZE
        )
    );
}

#[test]
fn a_huge_key_is_cheap_and_not_echoed_whole() {
    // Every unknown key is compared with every known field for a suggestion; a 2 MB key once
    // cost hundreds of megabytes and seconds.
    let key = "k".repeat(2 * 1024 * 1024);
    let src = format!(
        "spec:\n  maskinporten:\n    enabled: true\n    scopes:\n      exposes:\n        - name: ab\n          enabled: true\n          product: arbeid\n          ? {key}\n          : 1\n"
    );
    let m = Manifest::parse(&src, "nais.yaml");
    let codes: Vec<Code> = m.diagnostics().iter().map(|d| d.code).collect();
    assert_eq!(codes, [Code::UnknownField]);
    assert!(m.diagnostics()[0].message.len() < 300);
}
