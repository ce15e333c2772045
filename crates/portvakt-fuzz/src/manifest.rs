//! The manifest parser and NAIS rules on arbitrary bytes (as `portvakt manifest check` reads a
//! file).
//!
//! Invariants: never a panic; every diagnostic points at a line of the file (1-based); a manifest without errors yields a grants table whose every scope
//! is fully qualified with the default prefix; the reports render.

use portvakt_manifest::{CheckOptions, GrantsTable, Manifest, render};

/// The fuzz target.
pub fn run(data: &[u8]) {
    let options = CheckOptions::default();
    let manifest = Manifest::from_bytes(data, "fuzz.yaml", &options);
    let lines = data.split(|&b| b == b'\n').count().max(1);
    for diagnostic in manifest.diagnostics() {
        assert!(
            (1..=lines).contains(&diagnostic.line),
            "diagnostic at line {} of a {lines}-line file: {}",
            diagnostic.line,
            render::diagnostic(diagnostic)
        );
    }
    let _ = render::check_report(&manifest);
    if !manifest.has_errors() {
        let table = GrantsTable::from_manifest(&manifest, &options);
        for grant in table.scopes() {
            assert!(
                grant.scope.starts_with(&format!("{}:", options.prefix)),
                "scope {} without the prefix",
                grant.scope
            );
        }
        let _ = render::scopes_table(&table);
        render::scopes_json(&table).expect("the grants table serializes");
    }
}
