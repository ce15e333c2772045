//! Text and JSON output for `portvakt manifest check` and `portvakt manifest scopes`, kept here
//! so that it is tested with the library and the command stays a thin shell.

use crate::diagnostic::printable;
use crate::{Diagnostic, GrantsTable, Manifest, ReadError, ScopeGrant};

/// What to tell the user when the manifest file cannot be read at all: the error, naming the
/// file, and a help line saying what to do.
pub fn read_error(error: &ReadError) -> String {
    let help = match error {
        ReadError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            "pass the path of the application's NAIS manifest, e.g. `portvakt manifest check \
             .nais/app.yaml` (the default is ./nais.yaml)"
        }
        ReadError::Io { .. } => "check that the path is a readable file",
        ReadError::TooLarge { .. } => "pass the NAIS manifest itself, not a bundle or an archive",
    };
    format!("error: {}\n  = help: {help}", printable(&error.to_string()))
}

/// One diagnostic: `file:line:col: severity: message [code]`, followed by
/// `  = help: ...` when there is advice. Control characters are escaped (see `Display` for
/// [`Diagnostic`]), so one diagnostic is one line, or two with help.
pub fn diagnostic(d: &Diagnostic) -> String {
    match &d.help {
        Some(help) => format!("{d}\n  = help: {}", printable(help)),
        None => d.to_string(),
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `file: N errors, M warnings`.
pub fn summary(file: &str, diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    format!(
        "{file}: {}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

/// Every diagnostic, then the summary line; each line ends with a newline.
pub fn check_report(manifest: &Manifest) -> String {
    let mut out = String::new();
    for d in manifest.diagnostics() {
        out.push_str(&diagnostic(d));
        out.push('\n');
    }
    out.push_str(&summary(manifest.file(), manifest.diagnostics()));
    out.push('\n');
    out
}

fn consumers_cell(g: &ScopeGrant) -> String {
    if g.accessible_for_all {
        return "everyone".to_owned();
    }
    if g.consumers.is_empty() {
        return "nobody".to_owned();
    }
    g.consumers
        .iter()
        .map(|c| match &c.name {
            // The name is free text from the manifest: no control characters to the terminal.
            Some(name) => format!("{} ({})", c.orgno, printable(name)),
            None => c.orgno.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The human table of `portvakt manifest scopes`: one row per scope with whether it is enabled,
/// who may get it, its maximum token age and its integrations, columns aligned.
pub fn scopes_table(table: &GrantsTable) -> String {
    if table.is_empty() {
        return "no exposed scopes\n".to_owned();
    }
    let header = [
        "SCOPE",
        "ENABLED",
        "CONSUMERS",
        "AT MAX AGE",
        "INTEGRATIONS",
    ]
    .map(String::from);
    let mut rows = vec![header];
    for g in table.scopes() {
        rows.push([
            g.scope.clone(),
            if g.enabled { "yes" } else { "no" }.to_owned(),
            consumers_cell(g),
            format!("{}s", g.at_max_age_seconds),
            g.allowed_integrations
                .iter()
                .map(|i| i.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    let mut widths = [0usize; 5];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = w - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The JSON array of `portvakt manifest scopes --json`, one object per scope with the
/// manifest's field names (`scope`, `enabled`, `accessibleForAll`, `consumers`, `atMaxAge` in
/// seconds, `allowedIntegrations`, `visibility`, `delegationSource`, `application`).
///
/// # Errors
/// Only if serialization itself fails, which these plain types do not.
pub fn scopes_json(table: &GrantsTable) -> serde_json::Result<String> {
    serde_json::to_string_pretty(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_plurals() {
        assert_eq!(summary("a.yaml", &[]), "a.yaml: 0 errors, 0 warnings");
    }
}
