//! `examples/nais.yaml`, the NAIS guide's example: exactly one warning, the check digit of
//! 123456789, and the two scopes of the guide.

use std::path::Path;

use portvakt_manifest::{CheckOptions, Code, Manifest, Severity, render};

fn example_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/nais.yaml")
}

fn example(options: &CheckOptions) -> Manifest {
    match Manifest::from_path_with(example_path(), options) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_example_has_exactly_the_check_digit_warning() {
    let m = example(&CheckOptions::default());
    let diagnostics = m.diagnostics();
    assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
    let d = &diagnostics[0];
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(d.code, Code::OrgnoCheckDigit);
    assert_eq!(d.value.as_deref(), Some("123456789"));
    assert!(!m.has_errors());
    let file = example_path().display().to_string();
    assert_eq!(
        render::check_report(&m),
        format!(
            "{file}:25:22: warning: organization number \"123456789\" fails the modulus-11 check digit [orgno-check-digit]\n  = help: a mistyped organization number grants a stranger access, or nobody: look it up in Enhetsregisteret (brreg.no)\n{file}: 0 errors, 1 warning\n"
        )
    );
}

#[test]
fn the_example_fails_under_strict() {
    let m = example(&CheckOptions {
        strict: true,
        ..CheckOptions::default()
    });
    assert!(m.has_errors());
    assert_eq!(m.diagnostics().len(), 1);
}

#[test]
fn the_example_names_the_application_and_its_scopes() {
    let m = example(&CheckOptions::default());
    assert_eq!(m.applications().len(), 1);
    assert_eq!(m.applications()[0].display_name(), "my-team/my-api");
    assert_eq!(
        render::scopes_table(&m.grants()),
        "\
SCOPE                        ENABLED  CONSUMERS  AT MAX AGE  INTEGRATIONS
nav:arbeid:some.scope.read   yes      123456789  30s         maskinporten
nav:arbeid:some.scope.write  yes      nobody     30s         maskinporten
"
    );
    let grants = m.grants();
    assert!(
        grants
            .check("123456789", "nav:arbeid:some.scope.read")
            .is_ok()
    );
    assert!(
        grants
            .check("123456789", "nav:arbeid:some.scope.write")
            .is_err()
    );
}
