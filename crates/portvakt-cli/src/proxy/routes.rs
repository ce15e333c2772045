//! The proxy's route policy: the policy file, its routes and path patterns, and the strict
//! request-path check; which requests need which token.
//!
//! A policy is a small TOML file. Every request arriving at the proxy is matched against its
//! routes in order; the **first** route whose methods and path pattern match decides. A request
//! that matches no route gets the file's `default`.
//!
//! ```toml
//! realm = "arbeid-api"        # optional: the realm in WWW-Authenticate (default "maskinporten")
//! default = "deny"            # no route matched: "deny" (default), "authenticated" or "public"
//!
//! [[route]]
//! methods = ["GET", "HEAD"]   # optional: omitted means any method
//! path = "/api/v1/**"         # required: see "Path patterns"
//! scopes = ["nav:arbeid:some.scope.read"]         # the token must have all of these
//!
//! [[route]]
//! methods = ["POST"]
//! path = "/api/v1/*/orders"
//! any_scopes = ["nav:arbeid:some.scope.write", "nav:arbeid:admin"]   # ...or one of these
//! consumers = ["889640782"]   # optional: only these consumer organization numbers
//!
//! [[route]]
//! path = "/internal/health"
//! public = true               # no token needed, nothing validated
//!
//! [[route]]
//! path = "/api/v1/admin/**"
//! deny = true                 # refused whatever the token (list it before broader routes)
//! ```
//!
//! ## Keys
//!
//! Top level:
//! - `realm` (string, optional, default `"maskinporten"`): the `realm` of every `WWW-Authenticate`
//!   challenge. Printable ASCII without `"` and `\`.
//! - `default` (string, optional, default `"deny"`): what happens to a request that matches no
//!   route. `"deny"` answers 403 without looking at the token; `"authenticated"` forwards any
//!   request with a valid token from the trusted issuer, whatever its scopes (weak: any
//!   organization can get a Maskinporten token for some scope, so prefer routes with scopes);
//!   `"public"` forwards without a token.
//! - `[[route]]` (array of tables, optional): the routes, tried in file order.
//!
//! Each route:
//! - `path` (string, required): the path pattern.
//! - `methods` (array of strings, optional): upper-case HTTP methods (`GET`, `HEAD`, `POST`,
//!   `PUT`, `PATCH`, `DELETE`, `OPTIONS`, `TRACE`). Omitted means any method. `GET` does **not**
//!   imply `HEAD`: list both if both are allowed.
//! - `scopes` (array of strings): the token must carry **all** of them.
//! - `any_scopes` (array of strings): the token must carry **at least one** of them.
//! - `consumers` (array of strings, optional): the token's consumer organization number must be
//!   one of these nine-digit numbers. An organization number whose modulus-11 check digit is
//!   wrong is a warning (almost always a typo).
//! - `public` (bool, optional, default false): no token is needed and none is validated; the
//!   request is forwarded without identity headers.
//! - `deny` (bool, optional, default false): the request is refused with 403 whatever the token;
//!   carves an exception out of a later, broader route (`/api/v1/admin/**` before `/api/v1/**`).
//!
//! A route is `public = true`, `deny = true`, or names `scopes` or `any_scopes` (not both);
//! lists may not be empty. Unknown keys are errors, so a misspelt `scope =` cannot silently drop a check.
//!
//! ## Path patterns
//!
//! A pattern starts with `/` and is split into segments at `/`:
//! - a literal segment matches exactly that segment, case-sensitively, compared with the
//!   request's segment after percent-decoding (so `/%61pi` matches the literal `api`);
//! - `*` matches exactly one non-empty segment;
//! - `**`, only as the last segment, matches zero or more remaining segments:
//!   `/api/**` matches `/api`, `/api/`, and `/api/a/b`;
//! - a trailing slash is significant: `/api/` and `/api` are different paths, and `/api/*` does
//!   not match `/api/` or `/api/x/`.
//!
//! Patterns may not contain empty segments other than a trailing slash, `.` or `..` segments,
//! `*` inside a segment (`v*`), or the characters `%`, `;`, `\`, `?` and `#`. Write
//! non-ASCII characters as themselves; they match their UTF-8 percent-encoding in requests.
//! The query string is never matched.
//!
//! ## Strict request paths
//!
//! The upstream must see the same path the policy matched, so paths an upstream might read
//! differently are refused with 400 before any route is matched (see [`RequestPath::parse`]):
//! `.` and `..` segments (also percent-encoded), empty segments (`//`), `;` (path parameters,
//! which servlet containers strip: `/public/..;/admin`), `\`, the percent-encoded `/`, `\`,
//! `;` and `%` (`%2F`, `%5C`, `%3B`, `%25`: double decoding), control characters, malformed
//! percent-escapes, and anything other than an absolute path (`*`, authority form).
//!
//! Path matching is case-sensitive. An upstream that matches paths case-insensitively (some
//! .NET and Windows servers) must be given patterns that cover every casing, or be protected
//! with `default = "deny"` and no wildcard routes that could shadow a protected path.

use std::fmt;
use std::path::Path;

use http::Method;
use portvakt::{Policy, ScopeRequirement};
// One notion of how bad a finding is, shared with `portvakt manifest check`: an error makes the
// file unusable, a warning does not.
use portvakt_manifest::Severity;
use serde::Deserialize;
use toml::Spanned;

/// The largest policy file read, in bytes.
pub const MAX_POLICY_SIZE: u64 = 1024 * 1024;

/// The realm used when the policy does not name one (the token issuer, as in the tower layer).
pub const DEFAULT_REALM: &str = portvakt::bearer::DEFAULT_REALM;

/// Methods a route may name.
const KNOWN_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
];

/// What happens to a request that matches no route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    /// Refused with 403 without looking at the token.
    Deny,
    /// Forwarded when it carries any valid token from the trusted issuer.
    Authenticated,
    /// Forwarded without a token.
    Public,
}

impl DefaultAction {
    /// The word used in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultAction::Deny => "deny",
            DefaultAction::Authenticated => "authenticated",
            DefaultAction::Public => "public",
        }
    }
}

impl fmt::Display for DefaultAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a route (or the default) requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No token needed; nothing is validated and no identity is forwarded.
    Public,
    /// A valid token satisfying this policy (scopes, consumers).
    Token(Policy),
    /// Refused whatever the token.
    Deny,
}

/// One route of the policy.
#[derive(Debug, Clone)]
pub struct Route {
    methods: Option<Vec<Method>>,
    pattern: PathPattern,
    access: Access,
    consumers: Option<Vec<String>>,
    line: usize,
}

impl Route {
    /// What the route requires, as `--check-policy` says it: `public`, `deny`, `any valid
    /// token` or `token with ...`, and the consumers allowed.
    pub fn describe_access(&self) -> String {
        match &self.access {
            Access::Public => "public".to_owned(),
            Access::Deny => "deny".to_owned(),
            Access::Token(policy) => describe(policy, self.consumers()),
        }
    }

    /// The methods this route matches; `None` matches any method.
    pub fn methods(&self) -> Option<&[Method]> {
        self.methods.as_deref()
    }

    /// The path pattern.
    pub fn pattern(&self) -> &PathPattern {
        &self.pattern
    }

    /// What the route requires.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// The consumer organization numbers the route admits, when it limits them.
    pub fn consumers(&self) -> Option<&[String]> {
        self.consumers.as_deref()
    }

    /// The 1-based line of the route's `path` in the policy file (for logs).
    pub fn line(&self) -> usize {
        self.line
    }

    /// Whether this route matches the request.
    pub fn matches(&self, method: &Method, path: &RequestPath<'_>) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|methods| methods.contains(method))
            && self.pattern.matches(path)
    }
}

/// A parsed path pattern (see the [module documentation](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    source: String,
    segments: Vec<PatternSegment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PatternSegment {
    Literal(String),
    One,
    Rest,
}

impl PathPattern {
    /// Parses a pattern; the error says what is wrong and how to write it instead.
    pub fn parse(pattern: &str) -> Result<PathPattern, PatternError> {
        let bad = |message: String, help: &str| PatternError {
            message,
            help: help.to_owned(),
        };
        let Some(rest) = pattern.strip_prefix('/') else {
            return Err(bad(
                format!("path pattern `{pattern}` does not start with `/`"),
                "write an absolute path such as `/api/v1/**`",
            ));
        };
        if let Some(c) = pattern.chars().find(|c| {
            matches!(c, '%' | ';' | '\\' | '?' | '#') || c.is_control() || c.is_whitespace()
        }) {
            return Err(bad(
                format!("path pattern `{pattern}` contains {c:?}"),
                "patterns are matched against decoded paths: write characters as themselves, \
                 without percent-encoding, query string or fragment (requests with `;`, `\\`, \
                 `%2F`, `%25` are refused anyway)",
            ));
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let last = parts.len() - 1;
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let segment = match *part {
                "" if i == last => PatternSegment::Literal(String::new()),
                "" => {
                    return Err(bad(
                        format!("path pattern `{pattern}` has an empty segment (`//`)"),
                        "requests with `//` are refused; remove the extra `/`",
                    ));
                }
                "." | ".." => {
                    return Err(bad(
                        format!("path pattern `{pattern}` has a `{part}` segment"),
                        "requests with `.` or `..` segments are refused; write the path without them",
                    ));
                }
                "*" => PatternSegment::One,
                "**" if i == last => PatternSegment::Rest,
                "**" => {
                    return Err(bad(
                        format!("`**` is not the last segment of path pattern `{pattern}`"),
                        "`**` matches all remaining segments, so it can only end a pattern; use `*` for one segment",
                    ));
                }
                part if part.contains('*') => {
                    return Err(bad(
                        format!("`*` inside the segment `{part}` of path pattern `{pattern}`"),
                        "a wildcard must be a whole segment: `*` (one segment) or `**` (the rest)",
                    ));
                }
                part => PatternSegment::Literal(part.to_owned()),
            };
            segments.push(segment);
        }
        Ok(PathPattern {
            source: pattern.to_owned(),
            segments,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the (already checked) request path matches.
    pub fn matches(&self, path: &RequestPath<'_>) -> bool {
        let mut actual = path.raw_segments();
        for segment in &self.segments {
            match segment {
                PatternSegment::Rest => return true,
                PatternSegment::One => match actual.next() {
                    Some(s) if !s.is_empty() => {}
                    _ => return false,
                },
                PatternSegment::Literal(literal) => match actual.next() {
                    Some(s) if decoded_eq(s, literal) => {}
                    _ => return false,
                },
            }
        }
        actual.next().is_none()
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A path pattern that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PatternError {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

/// A request path that passed the strict checks, ready to match against patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPath<'a> {
    raw: &'a str,
}

/// Why a request path is refused (the proxy answers 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// Not an absolute path (`*`, or empty).
    #[error("the request target is not an absolute path")]
    NotAbsolute,
    /// A `.` or `..` segment, possibly percent-encoded.
    #[error("the path has a `.` or `..` segment")]
    DotSegment,
    /// An empty segment: `//`.
    #[error("the path has an empty segment (`//`)")]
    EmptySegment,
    /// A character or escape an upstream might read as a separator or decode twice.
    #[error("the path contains {0}, which this proxy refuses")]
    Forbidden(&'static str),
    /// `%` not followed by two hex digits.
    #[error("the path has a malformed percent-escape")]
    BadEscape,
}

impl<'a> RequestPath<'a> {
    /// Checks a request's path (without the query) strictly, so the policy and the upstream
    /// cannot disagree on what it names. See the [module documentation](self#strict-request-paths).
    pub fn parse(raw: &'a str) -> Result<RequestPath<'a>, PathError> {
        let Some(rest) = raw.strip_prefix('/') else {
            return Err(PathError::NotAbsolute);
        };
        let mut segments = segments(rest).peekable();
        while let Some(bytes) = segments.next() {
            if bytes.is_empty() {
                if segments.peek().is_some() {
                    return Err(PathError::EmptySegment);
                }
                continue;
            }
            let mut i = 0;
            let mut dots = 0usize;
            let mut len = 0usize;
            while i < bytes.len() {
                let byte = match bytes[i] {
                    b'%' => {
                        let (Some(&h), Some(&l)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
                            return Err(PathError::BadEscape);
                        };
                        let (Some(h), Some(l)) = (hex(h), hex(l)) else {
                            return Err(PathError::BadEscape);
                        };
                        i += 3;
                        let decoded = h << 4 | l;
                        match decoded {
                            b'/' => return Err(PathError::Forbidden("an encoded `/` (%2F)")),
                            b'\\' => return Err(PathError::Forbidden("an encoded `\\` (%5C)")),
                            b';' => return Err(PathError::Forbidden("an encoded `;` (%3B)")),
                            b'%' => return Err(PathError::Forbidden("an encoded `%` (%25)")),
                            _ => decoded,
                        }
                    }
                    b';' => return Err(PathError::Forbidden("`;`")),
                    b'\\' => return Err(PathError::Forbidden("`\\`")),
                    other => {
                        i += 1;
                        other
                    }
                };
                if byte < 0x20 || byte == 0x7f {
                    return Err(PathError::Forbidden("a control character"));
                }
                if byte == b'.' {
                    dots += 1;
                }
                len += 1;
            }
            if dots == len && len <= 2 {
                return Err(PathError::DotSegment);
            }
        }
        Ok(RequestPath { raw })
    }

    /// The path as received.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    fn raw_segments(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        // `parse` guarantees the leading `/`.
        segments(&self.raw[1..])
    }
}

/// The `/`-separated segments of `path`, as bytes: a byte comparison per byte, where
/// `str::split('/')` costs a searcher's set-up per segment (about 750 instructions of a proxied
/// request's routing; callgrind, docs/BENCHMARKS.md). A path is ASCII-checked piecewise
/// anyway, and `/` never occurs inside a UTF-8 sequence.
fn segments(path: &str) -> impl Iterator<Item = &[u8]> {
    path.as_bytes().split(|byte| *byte == b'/')
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Whether a raw (percent-encoded, already checked) segment decodes to `literal`.
fn decoded_eq(raw: &[u8], literal: &str) -> bool {
    if !raw.contains(&b'%') {
        return raw == literal.as_bytes();
    }
    let mut expected = literal.bytes();
    let mut i = 0;
    while i < raw.len() {
        let byte = if raw[i] == b'%' && i + 2 < raw.len() {
            let (Some(h), Some(l)) = (hex(raw[i + 1]), hex(raw[i + 2])) else {
                return false;
            };
            i += 3;
            h << 4 | l
        } else {
            i += 1;
            raw[i - 1]
        };
        if expected.next() != Some(byte) {
            return false;
        }
    }
    expected.next().is_none()
}

/// One finding in a policy file, at a position. `Display` gives
/// `file:line:col: severity: message` and, when there is advice, a second line
/// `  = help: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDiagnostic {
    /// The file name as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

impl fmt::Display for PolicyDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.severity, self.message
        )?;
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

/// A policy file could not be read or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {file}: {source}")]
    Io {
        /// The file name as given.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_POLICY_SIZE`].
    #[error("policy file {file} is {size} bytes, over the {MAX_POLICY_SIZE}-byte limit")]
    TooLarge {
        /// The file name as given.
        file: String,
        /// Its size.
        size: u64,
    },
    /// The file has errors; `diagnostics` lists all of them, and the warnings too.
    #[error("{}", render_invalid(.diagnostics))]
    Invalid {
        /// Every finding, in file order.
        diagnostics: Vec<PolicyDiagnostic>,
    },
}

fn render_invalid(diagnostics: &[PolicyDiagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let file = diagnostics.first().map_or("policy", |d| d.file.as_str());
    out.push_str(&format!(
        "{file}: {}, {}",
        plural(errors, "error"),
        plural(diagnostics.len() - errors, "warning")
    ));
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// A checked policy: realm, default, routes in order, and any warnings found while reading.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    file: String,
    realm: String,
    default: DefaultAction,
    default_access: Access,
    routes: Vec<Route>,
    warnings: Vec<PolicyDiagnostic>,
}

/// The file's shape, as deserialized before checking.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    realm: Option<Spanned<String>>,
    default: Option<Spanned<String>>,
    #[serde(default)]
    route: Vec<RawRoute>,
}

type SpannedList = Spanned<Vec<Spanned<String>>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    methods: Option<SpannedList>,
    path: Spanned<String>,
    scopes: Option<SpannedList>,
    any_scopes: Option<SpannedList>,
    consumers: Option<SpannedList>,
    public: Option<Spanned<bool>>,
    deny: Option<Spanned<bool>>,
}

/// Turns byte offsets into 1-based line and column and collects diagnostics.
struct Reporter<'a> {
    file: &'a str,
    text: &'a str,
    diagnostics: Vec<PolicyDiagnostic>,
}

impl Reporter<'_> {
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    fn push(&mut self, severity: Severity, offset: usize, message: String, help: Option<String>) {
        let (line, column) = self.position(offset);
        self.diagnostics.push(PolicyDiagnostic {
            file: self.file.to_owned(),
            line,
            column,
            severity,
            message,
            help,
        });
    }

    fn error(&mut self, offset: usize, message: impl Into<String>, help: impl Into<String>) {
        self.push(Severity::Error, offset, message.into(), Some(help.into()));
    }

    fn warning(&mut self, offset: usize, message: impl Into<String>, help: impl Into<String>) {
        self.push(Severity::Warning, offset, message.into(), Some(help.into()));
    }

    fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

impl PolicyFile {
    /// Reads and checks a policy file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<PolicyFile, PolicyError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let io = |source| PolicyError::Io {
            file: file.clone(),
            source,
        };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > MAX_POLICY_SIZE {
            return Err(PolicyError::TooLarge { file, size });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        match String::from_utf8(bytes) {
            Ok(text) => PolicyFile::parse(&text, &file),
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let mut reporter = Reporter {
                    file: &file,
                    text: &text,
                    diagnostics: Vec::new(),
                };
                reporter.error(
                    offset,
                    "the policy file is not valid UTF-8",
                    "save the file as UTF-8",
                );
                Err(PolicyError::Invalid {
                    diagnostics: reporter.diagnostics,
                })
            }
        }
    }

    /// Parses and checks policy text; `file_name` is used in diagnostics.
    pub fn parse(text: &str, file_name: &str) -> Result<PolicyFile, PolicyError> {
        let mut reporter = Reporter {
            file: file_name,
            text,
            diagnostics: Vec::new(),
        };
        let raw: RawPolicy = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let offset = e.span().map_or(0, |span| span.start);
                let message = e.message().trim_end().to_owned();
                let help = toml_help(&message);
                reporter.error(offset, message, help);
                return Err(PolicyError::Invalid {
                    diagnostics: reporter.diagnostics,
                });
            }
        };

        let realm = match &raw.realm {
            None => DEFAULT_REALM.to_owned(),
            Some(realm) => {
                let value = realm.get_ref();
                if value.is_empty()
                    || value
                        .chars()
                        .any(|c| !(' '..='~').contains(&c) || c == '"' || c == '\\')
                {
                    reporter.error(
                        realm.span().start,
                        format!("realm {value:?} cannot be sent in WWW-Authenticate"),
                        "use printable ASCII without `\"` and `\\`, e.g. the API's name",
                    );
                }
                value.clone()
            }
        };

        let default = match &raw.default {
            None => DefaultAction::Deny,
            Some(value) => match value.get_ref().as_str() {
                "deny" => DefaultAction::Deny,
                "authenticated" => DefaultAction::Authenticated,
                "public" => DefaultAction::Public,
                other => {
                    reporter.error(
                        value.span().start,
                        format!("unknown default `{other}`"),
                        "write `deny` (refuse requests no route matches), `authenticated` (any \
                         valid token) or `public` (no token needed)",
                    );
                    DefaultAction::Deny
                }
            },
        };
        let default_access = match default {
            DefaultAction::Deny => Access::Deny,
            DefaultAction::Authenticated => Access::Token(Policy::new()),
            DefaultAction::Public => Access::Public,
        };

        let mut routes = Vec::with_capacity(raw.route.len());
        for route in &raw.route {
            if let Some(route) = check_route(route, &mut reporter) {
                routes.push(route);
            }
        }

        if raw.route.is_empty() && default != DefaultAction::Public {
            reporter.warning(
                0,
                format!("the policy has no routes: every request gets the default `{default}`"),
                "add `[[route]]` tables; see examples/policy.toml",
            );
        }
        // A route after an any-method `/**` route can never match.
        if let Some(catch_all) = routes
            .iter()
            .position(|r| r.methods.is_none() && r.pattern.segments == [PatternSegment::Rest])
        {
            let catch_line = routes[catch_all].line;
            for (route, raw_route) in routes.iter().zip(&raw.route).skip(catch_all + 1) {
                reporter.warning(
                    raw_route.path.span().start,
                    format!(
                        "this route never matches: the route at line {catch_line} matches every request first"
                    ),
                    format!(
                        "routes are tried in order; move `{}` above line {catch_line}",
                        route.pattern
                    ),
                );
            }
        }

        if reporter.has_errors() {
            reporter.diagnostics.sort_by_key(|d| (d.line, d.column));
            return Err(PolicyError::Invalid {
                diagnostics: reporter.diagnostics,
            });
        }
        reporter.diagnostics.sort_by_key(|d| (d.line, d.column));
        Ok(PolicyFile {
            file: file_name.to_owned(),
            realm,
            default,
            default_access,
            routes,
            warnings: reporter.diagnostics,
        })
    }

    /// The file name given when it was read.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The realm for `WWW-Authenticate`.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// What happens to requests no route matches.
    pub fn default_action(&self) -> DefaultAction {
        self.default
    }

    /// The routes, in the order they are tried.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Warnings found while reading (the policy is usable).
    pub fn warnings(&self) -> &[PolicyDiagnostic] {
        &self.warnings
    }

    /// The first route matching the method and path, if any.
    pub fn match_route(&self, method: &Method, path: &RequestPath<'_>) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(method, path))
    }

    /// What the request needs: its route's access, or the default's.
    pub fn access(&self, method: &Method, path: &RequestPath<'_>) -> &Access {
        self.match_route(method, path)
            .map_or(&self.default_access, Route::access)
    }

    /// A human summary for `--check-policy`: the warnings, one line per route, and the default.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for warning in &self.warnings {
            out.push_str(&warning.to_string());
            out.push('\n');
        }
        for route in &self.routes {
            let methods = route.methods.as_ref().map_or_else(
                || "*".to_owned(),
                |m| m.iter().map(Method::as_str).collect::<Vec<_>>().join(","),
            );
            out.push_str(&format!(
                "{}:{}: {methods} {} -> {}\n",
                self.file,
                route.line,
                route.pattern,
                route.describe_access()
            ));
        }
        out.push_str(&format!(
            "{}: {} {}, default {}, realm \"{}\", {}\n",
            self.file,
            self.routes.len(),
            if self.routes.len() == 1 {
                "route"
            } else {
                "routes"
            },
            self.default,
            self.realm,
            plural(self.warnings.len(), "warning")
        ));
        out
    }
}

fn describe(policy: &Policy, consumers: Option<&[String]>) -> String {
    let mut text = match policy.scope_requirement() {
        ScopeRequirement::None => "any valid token".to_owned(),
        requirement => format!("token with {requirement}"),
    };
    if let Some(consumers) = consumers {
        text.push_str(" from consumers ");
        text.push_str(&consumers.join(", "));
    }
    text
}

fn toml_help(message: &str) -> String {
    if message.starts_with("unknown field") {
        if message.contains("`scope`") {
            return "did you mean `scopes`?".to_owned();
        }
        if message.contains("`method`") {
            return "did you mean `methods`?".to_owned();
        }
        if message.contains("`routes`") {
            return "routes are `[[route]]` tables".to_owned();
        }
        return "remove or correct the key; see examples/policy.toml for every key".to_owned();
    }
    if message.starts_with("missing field `path`") {
        return "every route needs a `path`, e.g. `path = \"/api/**\"`".to_owned();
    }
    "see examples/policy.toml for the format".to_owned()
}

/// Checks one route, reporting every problem; `None` when it has errors.
fn check_route(raw: &RawRoute, reporter: &mut Reporter<'_>) -> Option<Route> {
    let errors_before = reporter.diagnostics.len();
    let line = reporter.position(raw.path.span().start).0;

    let pattern = match PathPattern::parse(raw.path.get_ref()) {
        Ok(pattern) => Some(pattern),
        Err(e) => {
            reporter.error(raw.path.span().start, e.message, e.help);
            None
        }
    };
    let methods = raw
        .methods
        .as_ref()
        .map(|list| check_methods(list, reporter));
    let public = raw.public.as_ref().is_some_and(|p| *p.get_ref());
    let scopes = raw
        .scopes
        .as_ref()
        .map(|list| check_scopes(list, "scopes", reporter));
    let any_scopes = raw
        .any_scopes
        .as_ref()
        .map(|list| check_scopes(list, "any_scopes", reporter));
    let consumers = raw
        .consumers
        .as_ref()
        .map(|list| check_consumers(list, reporter));
    let deny = raw.deny.as_ref().is_some_and(|d| *d.get_ref());

    let access = if deny {
        check_flag_only(raw, RouteFlag::Deny, public, reporter);
        Access::Deny
    } else if public {
        check_flag_only(raw, RouteFlag::Public, public, reporter);
        Access::Public
    } else {
        let requirement = scope_requirement(raw, scopes, any_scopes, reporter);
        let mut policy = Policy::new().scopes(requirement);
        if let Some(consumers) = &consumers {
            policy = policy.allow_consumers(consumers.iter().cloned());
        }
        Access::Token(policy)
    };

    if reporter.diagnostics[errors_before..]
        .iter()
        .any(|d| d.severity == Severity::Error)
    {
        return None;
    }
    Some(Route {
        methods,
        pattern: pattern?,
        access,
        consumers: if public || deny { None } else { consumers },
        line,
    })
}

/// A route's `methods`: known, upper-case, each once; every other name is reported with how
/// to write it.
fn check_methods(list: &SpannedList, reporter: &mut Reporter<'_>) -> Vec<Method> {
    if list.get_ref().is_empty() {
        reporter.error(
            list.span().start,
            "`methods` is empty, so the route matches nothing",
            "list methods such as [\"GET\", \"HEAD\"], or remove `methods` to match any method",
        );
    }
    let mut methods: Vec<Method> = Vec::new();
    for name in list.get_ref() {
        let text = name.get_ref().as_str();
        if KNOWN_METHODS.contains(&text) {
            // Known names always parse.
            if let Ok(method) = Method::from_bytes(text.as_bytes())
                && !methods.contains(&method)
            {
                methods.push(method);
            }
        } else if KNOWN_METHODS.contains(&text.to_ascii_uppercase().as_str()) {
            reporter.error(
                name.span().start,
                format!("method `{text}` is not upper-case"),
                format!(
                    "HTTP methods are case-sensitive: write `{}`",
                    text.to_ascii_uppercase()
                ),
            );
        } else if text == "CONNECT" {
            reporter.error(
                name.span().start,
                "the proxy does not tunnel: `CONNECT` cannot be routed",
                "remove `CONNECT`",
            );
        } else if text == "*" {
            reporter.error(
                name.span().start,
                "`*` is not a method",
                "remove `methods` to match any method",
            );
        } else {
            reporter.error(
                name.span().start,
                format!("unknown method `{text}`"),
                format!("use one of {}", KNOWN_METHODS.join(", ")),
            );
        }
    }
    methods
}

/// The flag that makes a route need no token check: `deny = true` or `public = true`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RouteFlag {
    Deny,
    Public,
}

/// A denied or public route may have no token requirement (`scopes`, `any_scopes`,
/// `consumers`), and a denied one cannot also be public: each such key is reported at the flag.
fn check_flag_only(raw: &RawRoute, flag: RouteFlag, public: bool, reporter: &mut Reporter<'_>) {
    let (word, key_name, offset, help) = match flag {
        RouteFlag::Deny => (
            "a denied",
            "deny",
            raw.deny.as_ref().map_or(0, |d| d.span().start),
            "denied routes refuse every request",
        ),
        RouteFlag::Public => (
            "a public",
            "public",
            raw.public.as_ref().map_or(0, |p| p.span().start),
            "public routes forward without a token",
        ),
    };
    let conflicts = [
        ("scopes", raw.scopes.is_some()),
        ("any_scopes", raw.any_scopes.is_some()),
        ("consumers", raw.consumers.is_some()),
        ("public", flag == RouteFlag::Deny && public),
    ];
    for (key, present) in conflicts {
        if present {
            reporter.error(
                offset,
                format!("{word} route cannot have `{key}`"),
                format!("{help}: remove `{key}` or `{key_name} = true`"),
            );
        }
    }
}

/// What a token route requires: `scopes` (all) or `any_scopes` (one), exactly one of them.
fn scope_requirement(
    raw: &RawRoute,
    scopes: Option<Vec<String>>,
    any_scopes: Option<Vec<String>>,
    reporter: &mut Reporter<'_>,
) -> ScopeRequirement {
    match (scopes, any_scopes) {
        (Some(_), Some(_)) => {
            let offset = raw.any_scopes.as_ref().map_or(0, |s| s.span().start);
            reporter.error(
                offset,
                "a route cannot have both `scopes` and `any_scopes`",
                "use `scopes` when all are needed, `any_scopes` when one is enough; split the route if you need both",
            );
            ScopeRequirement::None
        }
        (Some(scopes), None) => ScopeRequirement::AllOf(scopes),
        (None, Some(scopes)) => ScopeRequirement::AnyOf(scopes),
        (None, None) => {
            reporter.error(
                raw.path.span().start,
                format!(
                    "route `{}` requires no scope and is neither public nor denied",
                    raw.path.get_ref()
                ),
                "add `scopes = [...]` (all needed) or `any_scopes = [...]` (one needed), \
                 `public = true` for a route that needs no token, or `deny = true`",
            );
            ScopeRequirement::None
        }
    }
}

/// RFC 6750 `scope-token` characters: `%x21 / %x23-5B / %x5D-7E`.
fn scope_char_ok(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')
}

fn check_scopes(list: &SpannedList, key: &str, reporter: &mut Reporter<'_>) -> Vec<String> {
    if list.get_ref().is_empty() {
        reporter.error(
            list.span().start,
            format!("`{key}` is empty"),
            "name at least one scope, e.g. \"nav:arbeid:some.scope.read\"",
        );
    }
    let mut scopes: Vec<String> = Vec::new();
    for scope in list.get_ref() {
        let text = scope.get_ref();
        if text.is_empty() {
            reporter.error(scope.span().start, "empty scope", "remove the empty string");
        } else if let Some(c) = text.chars().find(|c| !scope_char_ok(*c)) {
            let help = if c.is_whitespace() {
                "one scope per string: [\"a\", \"b\"], not [\"a b\"]"
            } else {
                "scopes are printable ASCII without spaces, `\"` and `\\`"
            };
            reporter.error(
                scope.span().start,
                format!("scope {text:?} contains {c:?} and can never be granted"),
                help,
            );
        } else if scopes.contains(text) {
            reporter.warning(
                scope.span().start,
                format!("scope `{text}` is listed twice"),
                "remove the duplicate",
            );
        } else {
            scopes.push(text.clone());
        }
    }
    scopes
}

fn check_consumers(list: &SpannedList, reporter: &mut Reporter<'_>) -> Vec<String> {
    if list.get_ref().is_empty() {
        reporter.error(
            list.span().start,
            "`consumers` is empty, so no consumer is allowed",
            "list organization numbers, or remove `consumers` to allow any consumer",
        );
    }
    let mut orgnos: Vec<String> = Vec::new();
    for orgno in list.get_ref() {
        let text = orgno.get_ref();
        if !portvakt_manifest::is_nine_digits(text) {
            reporter.error(
                orgno.span().start,
                format!("consumer {text:?} is not a nine-digit organization number"),
                "write the consumer's organization number, e.g. \"889640782\" (no spaces, no `0192:` prefix)",
            );
            continue;
        }
        if !portvakt_manifest::orgno_check_digit_ok(text) {
            reporter.warning(
                orgno.span().start,
                format!("organization number {text} fails the modulus-11 check digit"),
                "check the number in Enhetsregisteret (brreg.no); a typo admits a stranger or nobody",
            );
        }
        if orgnos.contains(text) {
            reporter.warning(
                orgno.span().start,
                format!("consumer {text} is listed twice"),
                "remove the duplicate",
            );
        } else {
            orgnos.push(text.clone());
        }
    }
    orgnos
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(raw: &str) -> RequestPath<'_> {
        RequestPath::parse(raw).unwrap()
    }

    fn matches(pattern: &str, raw: &str) -> bool {
        PathPattern::parse(pattern).unwrap().matches(&path(raw))
    }

    #[test]
    fn literal_one_and_rest() {
        assert!(matches("/", "/"));
        assert!(!matches("/", "/a"));
        assert!(matches("/api", "/api"));
        assert!(!matches("/api", "/api/"));
        assert!(!matches("/api/", "/api"));
        assert!(matches("/api/", "/api/"));
        assert!(!matches("/api", "/API"));
        assert!(matches("/api/*", "/api/x"));
        assert!(!matches("/api/*", "/api/"));
        assert!(!matches("/api/*", "/api"));
        assert!(!matches("/api/*", "/api/x/"));
        assert!(!matches("/api/*", "/api/x/y"));
        assert!(matches("/api/*/orders", "/api/7/orders"));
        assert!(matches("/api/**", "/api"));
        assert!(matches("/api/**", "/api/"));
        assert!(matches("/api/**", "/api/a/b/c"));
        assert!(!matches("/api/**", "/apix"));
        assert!(!matches("/api/**", "/"));
        assert!(matches("/**", "/"));
        assert!(matches("/**", "/anything/at/all"));
    }

    #[test]
    fn literal_compares_decoded() {
        assert!(matches("/api", "/%61pi"));
        assert!(matches("/api", "/%61%70%69"));
        assert!(!matches("/api", "/%61p"));
        assert!(!matches("/api", "/%61pix"));
        assert!(matches("/sø", "/s%C3%B8"));
    }

    #[test]
    fn strict_paths() {
        for (raw, error) in [
            ("", PathError::NotAbsolute),
            ("*", PathError::NotAbsolute),
            ("/a/../b", PathError::DotSegment),
            ("/a/..", PathError::DotSegment),
            ("/a/./b", PathError::DotSegment),
            ("/a/%2e%2E/b", PathError::DotSegment),
            ("/a/.%2e", PathError::DotSegment),
            ("/a//b", PathError::EmptySegment),
            ("//", PathError::EmptySegment),
            ("/a%2Fb", PathError::Forbidden("an encoded `/` (%2F)")),
            ("/a%2fb", PathError::Forbidden("an encoded `/` (%2F)")),
            ("/a%5cb", PathError::Forbidden("an encoded `\\` (%5C)")),
            ("/a%3Bb", PathError::Forbidden("an encoded `;` (%3B)")),
            ("/a%252Fb", PathError::Forbidden("an encoded `%` (%25)")),
            ("/public/..;/admin", PathError::Forbidden("`;`")),
            ("/a\\b", PathError::Forbidden("`\\`")),
            ("/a%00", PathError::Forbidden("a control character")),
            ("/a%0a", PathError::Forbidden("a control character")),
            ("/a%zz", PathError::BadEscape),
            ("/a%4", PathError::BadEscape),
            ("/a%", PathError::BadEscape),
        ] {
            assert_eq!(RequestPath::parse(raw), Err(error), "{raw}");
        }
        for raw in [
            "/",
            "/a",
            "/a/",
            "/a/b",
            "/.well-known/x",
            "/a/...",
            "/a/.b",
            "/%C3%B8",
        ] {
            assert!(RequestPath::parse(raw).is_ok(), "{raw}");
        }
    }

    #[test]
    fn bad_patterns() {
        for (pattern, start) in [
            ("api", "path pattern `api` does not start with `/`"),
            ("/a//b", "path pattern `/a//b` has an empty segment"),
            ("/a/../b", "path pattern `/a/../b` has a `..` segment"),
            ("/a/**/b", "`**` is not the last segment"),
            ("/v*", "`*` inside the segment `v*`"),
            ("/a%2Fb", "path pattern `/a%2Fb` contains '%'"),
            ("/a?x=1", "path pattern `/a?x=1` contains '?'"),
            ("/a;b", "path pattern `/a;b` contains ';'"),
        ] {
            let e = PathPattern::parse(pattern).unwrap_err();
            assert!(e.message.starts_with(start), "{pattern}: {}", e.message);
        }
    }

    #[test]
    fn position_counts_characters() {
        let reporter = Reporter {
            file: "f",
            text: "a\nøø = 1\n",
            diagnostics: Vec::new(),
        };
        assert_eq!(reporter.position(0), (1, 1));
        assert_eq!(reporter.position(2), (2, 1));
        assert_eq!(reporter.position(6), (2, 3));
    }
}
