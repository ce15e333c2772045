//! The proxy's policy file parser on arbitrary TOML.
//!
//! Invariants: never a panic; an error names at least one problem; an accepted policy has
//! routes whose patterns reparse to themselves, and its summary renders; a route that is not
//! public names a scope requirement or is a deny route (`check_policy` semantics).

use portvakt_cli::proxy::routes::PolicyFile;

/// The fuzz target.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match PolicyFile::parse(text, "fuzz.toml") {
        Err(e) => assert!(
            !e.to_string().trim().is_empty(),
            "an error that says nothing"
        ),
        Ok(policy) => {
            let _ = policy.summary();
            for route in policy.routes() {
                let pattern = route.pattern().as_str();
                assert!(
                    pattern.starts_with('/'),
                    "pattern {pattern:?} is not absolute"
                );
                let again = format!(
                    "[[route]]\npath = {}\npublic = true\n",
                    toml_string(pattern)
                );
                assert!(
                    PolicyFile::parse(&again, "again.toml").is_ok(),
                    "pattern {pattern:?} does not reparse"
                );
                assert!(route.line() >= 1 && route.line() <= text.lines().count().max(1));
            }
        }
    }
}

fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}
