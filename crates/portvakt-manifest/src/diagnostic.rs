//! Diagnostics: what is wrong, where, and what to do about it.

use std::fmt;

use serde::Serialize;

/// How bad a finding is. Errors make `portvakt manifest check` exit 1; warnings do not, unless
/// [`crate::CheckOptions::strict`] turns them into errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Provisioning would fail, or the manifest cannot mean what its author intended.
    Error,
    /// Probably a mistake, but NAIS would accept it.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// The rule a diagnostic reports. Its [`Code::as_str`] form is a stable short id, printed after
/// each message, so that people can search for it and tools can match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Code {
    /// The file is not valid UTF-8.
    InvalidEncoding,
    /// A carriage return without a line feed after it (old Mac line endings).
    InvalidLineEnding,
    /// The file is not YAML (syntax error, too deep, too large).
    InvalidYaml,
    /// No `nais.io/v1alpha1` `Application` and no bare `spec:` fragment in the file.
    NoApplication,
    /// The same key twice in one mapping.
    DuplicateKey,
    /// A value of the wrong YAML type (string for a boolean, list for a mapping, ...).
    InvalidType,
    /// A required field is absent or empty.
    MissingField,
    /// A field NAIS does not know; most often a typo that would silently drop the setting.
    UnknownField,
    /// `yes`/`no`/`on`/`off` and friends, read differently by YAML 1.1 and 1.2 tools.
    AmbiguousBoolean,
    /// `scopes.exposes[].name` breaks the NAIS name pattern.
    InvalidScopeName,
    /// `scopes.exposes[].product` breaks `^[a-z0-9]+$`.
    InvalidProduct,
    /// `separator` is not one of `/`, `:`, `.`.
    InvalidSeparator,
    /// `consumers[].orgno` is not nine digits.
    InvalidOrgno,
    /// `consumers[].orgno` fails the modulus-11 check digit.
    OrgnoCheckDigit,
    /// `atMaxAge` outside 30..=680 seconds.
    InvalidAtMaxAge,
    /// `allowedIntegrations` names an integration Maskinporten does not know.
    UnknownIntegration,
    /// `allowedIntegrations` is an empty list, or has no valid entry left.
    EmptyIntegrations,
    /// `visibility` is neither `public` nor `private`.
    InvalidVisibility,
    /// `delegationSource` is not `altinn`.
    InvalidDelegationSource,
    /// `delegationSource` is set but the scope has no explicit `separator: "/"`.
    DelegationRequiresSlash,
    /// The same fully qualified scope is exposed twice.
    DuplicateScope,
    /// The same organization is listed twice for one scope.
    DuplicateConsumer,
    /// Consumers are listed on a scope that is disabled: none of them gets access.
    ConsumersOnDisabledScope,
    /// `accessibleForAll: true` makes the consumer list meaningless.
    AccessibleForAllWithConsumers,
    /// Scopes are declared but `maskinporten.enabled` is false: nothing is provisioned.
    MaskinportenDisabled,
    /// The same scope is consumed twice.
    DuplicateConsumedScope,
    /// A consumed scope without the `prefix:` part every Maskinporten scope has.
    UnqualifiedConsumedScope,
    /// A number written so that YAML 1.1 readers (Kubernetes) and YAML 1.2 readers see
    /// different values: `0100` (octal 64 to one, 100 to the other), `6_00`.
    AmbiguousNumber,
    /// A document that is not read although it looks like a NAIS `Application`: its
    /// `apiVersion` or `kind` is a near miss (`nais.io/v1alpha`, `application`), or it has
    /// `spec.maskinporten` under another header, so its scopes would silently be left out.
    SkippedDocument,
}

impl Code {
    /// The stable short id, e.g. `invalid-product`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidEncoding => "invalid-encoding",
            Code::InvalidLineEnding => "invalid-line-ending",
            Code::InvalidYaml => "invalid-yaml",
            Code::NoApplication => "no-application",
            Code::DuplicateKey => "duplicate-key",
            Code::InvalidType => "invalid-type",
            Code::MissingField => "missing-field",
            Code::UnknownField => "unknown-field",
            Code::AmbiguousBoolean => "ambiguous-boolean",
            Code::InvalidScopeName => "invalid-scope-name",
            Code::InvalidProduct => "invalid-product",
            Code::InvalidSeparator => "invalid-separator",
            Code::InvalidOrgno => "invalid-orgno",
            Code::OrgnoCheckDigit => "orgno-check-digit",
            Code::InvalidAtMaxAge => "invalid-at-max-age",
            Code::UnknownIntegration => "unknown-integration",
            Code::EmptyIntegrations => "empty-integrations",
            Code::InvalidVisibility => "invalid-visibility",
            Code::InvalidDelegationSource => "invalid-delegation-source",
            Code::DelegationRequiresSlash => "delegation-requires-slash",
            Code::DuplicateScope => "duplicate-scope",
            Code::DuplicateConsumer => "duplicate-consumer",
            Code::ConsumersOnDisabledScope => "consumers-on-disabled-scope",
            Code::AccessibleForAllWithConsumers => "accessible-for-all-with-consumers",
            Code::MaskinportenDisabled => "maskinporten-disabled",
            Code::DuplicateConsumedScope => "duplicate-consumed-scope",
            Code::UnqualifiedConsumedScope => "unqualified-consumed-scope",
            Code::AmbiguousNumber => "ambiguous-number",
            Code::SkippedDocument => "skipped-document",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding in a manifest.
///
/// `Display` gives the one-line `file:line:col: severity: message [code]` form that editors and
/// CI annotators turn into clickable locations; [`crate::render::diagnostic`] adds the help line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Diagnostic {
    /// Error or warning (after `--strict` is applied).
    pub severity: Severity,
    /// The file name as given to the parser.
    pub file: String,
    /// 1-based line of the offending value (or key, for unknown and duplicate keys; or the
    /// enclosing mapping, for missing fields).
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// Which rule was broken.
    pub code: Code,
    /// What is wrong, including the rule, in one sentence.
    pub message: String,
    /// The offending value as written, when there is one.
    pub value: Option<String>,
    /// A replacement value that fixes the problem, when one is known (e.g. `arbeid` for
    /// `Arbeid`). Machine-applicable: it replaces the value at `line:column`.
    pub suggestion: Option<String>,
    /// Advice for a human, printed as `= help: ...`.
    pub help: Option<String>,
}

impl Diagnostic {
    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// Control characters in the file name or message are escaped: a value from the manifest
    /// (`product: "x\nnais.yaml:1:1: warning: fake"`) must not forge a line, nor an escape
    /// sequence reach the terminal. Messages are built with `shown` already; escaping again
    /// here changes nothing in them and covers the file name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {} [{}]",
            printable(&self.file),
            self.line,
            self.column,
            self.severity,
            printable(&self.message),
            self.code
        )
    }
}

/// The longest piece of the manifest a message repeats, in characters.
pub(crate) const MAX_ECHO: usize = 64;

/// Whether `ch` must not reach a terminal or a log line as it is: control characters (line
/// breaks, ESC, BEL, ...), the Unicode line and paragraph separators, and the bidirectional
/// formatting characters that can make text display in another order than it is read.
fn is_unsafe(ch: char) -> bool {
    ch.is_control()
        || matches!(
            ch,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every unsafe character (see [`is_unsafe`]) escaped as Rust does (`\n`,
/// `\u{1b}`). Escaping is idempotent: the result has no unsafe character left.
///
/// The validator crate has `portvakt::printable` for the same purpose, but this crate does not
/// depend on it (it is a leaf the validator, the issuer and the command all use), and a
/// dependency for ten lines would reverse that; hence this small copy.
pub(crate) fn printable(s: &str) -> String {
    if !s.chars().any(is_unsafe) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        if is_unsafe(ch) {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
}

/// A value from the manifest as a message repeats it: escaped like [`printable`], and cut
/// after [`MAX_ECHO`] characters (then `…`), so that a megabyte key does not become a
/// megabyte line.
pub(crate) fn shown(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHO) {
        Some((at, _)) => format!("{}…", printable(&s[..at])),
        None => printable(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_cut() {
        assert_eq!(
            printable("a\nb\u{1b}[2J\u{202e}"),
            "a\\nb\\u{1b}[2J\\u{202e}"
        );
        assert_eq!(printable(&printable("a\nb")), "a\\nb");
        assert_eq!(shown(&"x".repeat(100)), format!("{}…", "x".repeat(64)));
        assert_eq!(shown(&"x".repeat(64)), "x".repeat(64));
        assert_eq!(shown("æ\r"), "æ\\r");
    }
}
