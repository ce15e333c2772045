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
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {} [{}]",
            self.file, self.line, self.column, self.severity, self.message, self.code
        )
    }
}
