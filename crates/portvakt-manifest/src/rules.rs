//! Reads the YAML tree into the model and applies the NAIS rules and portvakt's own.
//!
//! Every check reports at the position of the value it is about: the value itself for wrong
//! values, the key for unknown and duplicate keys, the enclosing mapping (or the empty key) for
//! missing fields.

use std::collections::HashMap;

use crate::diagnostic::{Code, Diagnostic, Severity, printable, shown};
use crate::model::{
    Application, Consumer, DelegationSource, ExposedScope, Integration, Maskinporten, Visibility,
};
use crate::orgno::{is_nine_digits, orgno_check_digit_ok};
use crate::scope_name::{
    self, NAME_PATTERN, PRODUCT_PATTERN, Separator, check_scope_name, suggest_product,
    suggest_scope_name,
};
use crate::yaml::{self, Kind, Node, Pos, Value};

/// The `apiVersion` of a NAIS `Application`.
const NAIS_API: &str = "nais.io/v1alpha1";

/// `atMaxAge` bounds and default, in seconds.
pub(crate) const AT_MAX_AGE_MIN: u32 = 30;
pub(crate) const AT_MAX_AGE_MAX: u32 = 680;
pub(crate) const AT_MAX_AGE_DEFAULT: u32 = 30;

const MASKINPORTEN_FIELDS: &[&str] = &["enabled", "scopes"];
const SCOPES_FIELDS: &[&str] = &["consumes", "exposes"];
const CONSUMES_FIELDS: &[&str] = &["name"];
const EXPOSES_FIELDS: &[&str] = &[
    "name",
    "enabled",
    "product",
    "separator",
    "consumers",
    "accessibleForAll",
    "atMaxAge",
    "allowedIntegrations",
    "visibility",
    "delegationSource",
];
const CONSUMER_FIELDS: &[&str] = &["orgno", "name"];
/// The top-level fields of a Kubernetes object whose near misses are reported (`status` is
/// also known, but never misspelt on purpose).
const TOP_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec"];

/// The result of reading one file.
pub(crate) struct Checked {
    pub apps: Vec<Application>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads and checks `source`. `strict` turns every warning into an error.
pub(crate) fn check(source: &str, file: &str, strict: bool) -> Checked {
    let mut cx = Cx {
        file,
        diagnostics: Vec::new(),
    };
    let apps = read_file(&mut cx, source);
    let mut diagnostics = cx.diagnostics;
    // Every rule reports at a node's position, and a node at the very end of input can sit
    // on the line after the last one.
    for d in &mut diagnostics {
        let pos = yaml::within(source, d.line, d.column);
        (d.line, d.column) = (pos.line, pos.column);
    }
    if strict {
        for d in &mut diagnostics {
            d.severity = Severity::Error;
        }
    }
    diagnostics.sort_by_key(|d| (d.line, d.column));
    Checked { apps, diagnostics }
}

struct Cx<'f> {
    file: &'f str,
    diagnostics: Vec<Diagnostic>,
}

impl Cx<'_> {
    fn report(
        &mut self,
        severity: Severity,
        pos: Pos,
        code: Code,
        message: String,
    ) -> &mut Diagnostic {
        self.diagnostics.push(Diagnostic {
            severity,
            file: self.file.to_owned(),
            line: pos.line,
            column: pos.column,
            code,
            // Values in messages are `shown` (escaped and cut) where they are written in;
            // this catches anything missed, so no message can hold a line break.
            message: printable(&message),
            value: None,
            suggestion: None,
            help: None,
        });
        let last = self.diagnostics.len() - 1;
        &mut self.diagnostics[last]
    }

    fn error(&mut self, pos: Pos, code: Code, message: String) -> &mut Diagnostic {
        self.report(Severity::Error, pos, code, message)
    }

    fn warning(&mut self, pos: Pos, code: Code, message: String) -> &mut Diagnostic {
        self.report(Severity::Warning, pos, code, message)
    }
}

trait DiagnosticExt {
    fn value(&mut self, v: impl Into<String>) -> &mut Self;
    fn suggest(&mut self, s: impl Into<String>) -> &mut Self;
    fn help(&mut self, h: impl Into<String>) -> &mut Self;
}

impl DiagnosticExt for Diagnostic {
    fn value(&mut self, v: impl Into<String>) -> &mut Self {
        self.value = Some(v.into());
        self
    }
    fn suggest(&mut self, s: impl Into<String>) -> &mut Self {
        self.suggestion = Some(s.into());
        self
    }
    fn help(&mut self, h: impl Into<String>) -> &mut Self {
        self.help = Some(printable(&h.into()));
        self
    }
}

/// The source text of a node for the `value` field of a diagnostic.
fn raw(node: &Node) -> String {
    match &node.kind {
        Kind::Scalar(s) => s.text.clone(),
        Kind::Seq(_) => "[...]".to_owned(),
        Kind::Map(_) => "{...}".to_owned(),
    }
}

fn read_file(cx: &mut Cx<'_>, source: &str) -> Vec<Application> {
    // A carriage return without a line feed ends a line for YAML but not for grep, git or
    // most editors' line numbers, so no position in such a file means the same to both (found
    // by the `manifest` fuzz target: a diagnostic on YAML's line 67 of a 7-line file). Refused,
    // at the line, counted by line feeds, of the first one.
    if let Some(at) = bare_carriage_return(source) {
        cx.error(
            yaml::position_after(&source[..at]),
            Code::InvalidLineEnding,
            "a carriage return without a line feed after it (old Mac line endings)".to_owned(),
        )
        .help = Some("save the manifest with LF (or CRLF) line endings".to_owned());
        return Vec::new();
    }
    let docs = match yaml::load(source) {
        Ok(docs) => docs,
        Err(e) => {
            cx.error(
                e.pos,
                Code::InvalidYaml,
                format!("invalid YAML: {}", e.message),
            );
            return Vec::new();
        }
    };
    let mut apps = Vec::new();
    // Fully qualified scope (without prefix, which is the same for all) -> where first seen.
    let mut seen_scopes: HashMap<String, (usize, Option<String>)> = HashMap::new();
    for doc in &docs {
        if !is_application(&doc.root) {
            report_skipped(cx, &doc.root);
            continue;
        }
        report_duplicate_keys(cx, &doc.root, 0);
        report_top_level_near_misses(cx, &doc.root);
        let app = read_application(cx, &doc.root);
        // An application with `maskinporten.enabled: false` provisions nothing (the grants
        // table leaves it out), so its scopes neither clash with nor claim any other's.
        if let Some(mp) = app.maskinporten.as_ref().filter(|mp| mp.enabled) {
            for s in &mp.exposes {
                let key = format!(
                    "{}{}{}",
                    s.product,
                    Separator::effective(s.separator, &s.name),
                    s.name
                );
                let pos = Pos {
                    line: s.line,
                    column: s.column,
                };
                match seen_scopes.get(&key) {
                    Some((line, other_app)) => {
                        let where_ = match other_app {
                            Some(a) if *other_app != app.name => {
                                format!("line {line}, application {a}")
                            }
                            _ => format!("line {line}"),
                        };
                        cx.error(
                            pos,
                            Code::DuplicateScope,
                            format!(
                                "scope \"{}\" is exposed more than once (first at {where_})",
                                s.name
                            ),
                        )
                        .value(s.name.clone())
                        .help("expose each scope once, with all its consumers");
                    }
                    None => {
                        seen_scopes.insert(key, (s.line, app.name.clone()));
                    }
                }
            }
        }
        apps.push(app);
    }
    if apps.is_empty() {
        cx.error(
            Pos { line: 1, column: 1 },
            Code::NoApplication,
            "no NAIS Application in this file".to_owned(),
        )
        .help(
            "expected a document with `apiVersion: nais.io/v1alpha1` and `kind: Application`, \
             or a bare `spec:` fragment",
        );
    }
    apps
}

/// A `nais.io/v1alpha1` `Application`, or a bare `spec:` fragment (a mapping with `spec` and
/// neither `apiVersion` nor `kind`). Everything else (ConfigMaps, Argo CD `Application`s, ...) is
/// not ours.
fn is_application(root: &Node) -> bool {
    if root.entries().is_none() {
        return false;
    }
    let text = |k: &str| root.get(k).and_then(|(_, v)| v.as_str());
    match (text("apiVersion"), text("kind")) {
        (Some(NAIS_API), Some("Application")) => true,
        (None, None) => root.get("spec").is_some() && root.get("apiVersion").is_none(),
        _ => false,
    }
}

/// The value of `spec`, or of a top-level near miss of it (`spce:`), when it is a mapping with
/// `maskinporten` in it.
fn maskinporten_under_spec(root: &Node) -> Option<&Node> {
    let entries = root.entries()?;
    entries
        .iter()
        .filter(|(k, _)| k.as_str().is_some_and(|name| is_near("spec", name)))
        .find_map(|(_, v)| v.get("maskinporten").map(|(k, _)| k))
}

/// A document that is not read is reported when it looks like a NAIS `Application` that
/// NAIS would refuse or that was meant to be one: an `apiVersion` of `nais.io/...` other than
/// `v1alpha1` with an Application-like `kind`, a `kind` that is `Application` in another
/// case, or `spec.maskinporten` with no other `kind` or `apiVersion` claiming the document
/// (a misspelt header key, `kind: Applicaton`, ...). Other NAIS kinds (`Naisjob` under
/// `nais.io/v1`, which has `spec.maskinporten` too) and other APIs are not ours and stay
/// silent.
fn report_skipped(cx: &mut Cx<'_>, root: &Node) {
    if root.entries().is_none() {
        return;
    }
    let header = |k: &str| {
        root.get(k)
            .and_then(|(_, v)| v.as_str().map(|text| (v.pos, text)))
    };
    let (api, kind) = (header("apiVersion"), header("kind"));
    let app_kind = kind.is_none_or(|(_, k)| is_near("Application", k));
    let nais_api = api.is_none_or(|(_, a)| a.starts_with("nais.io/") || is_near(NAIS_API, a));
    let help = "a NAIS application starts with `apiVersion: nais.io/v1alpha1` and `kind: \
                Application` (or is a bare `spec:` fragment)";
    let mut reported = false;
    if let Some((pos, a)) = api
        && a.starts_with("nais.io/")
        && a != NAIS_API
        && app_kind
    {
        cx.error(
            pos,
            Code::SkippedDocument,
            format!(
                "`apiVersion: {}` is not the NAIS Application API, so this document is not \
                 read (NAIS refuses it, and its scopes would be left out)",
                shown(a)
            ),
        )
        .value(a)
        .suggest(NAIS_API)
        .help(format!("use `apiVersion: {NAIS_API}`"));
        reported = true;
    }
    if let Some((pos, k)) = kind
        && k != "Application"
        && k.eq_ignore_ascii_case("application")
    {
        cx.error(
            pos,
            Code::SkippedDocument,
            format!(
                "`kind: {}` is not `Application` (kinds are case-sensitive), so this document is \
                 not read (NAIS refuses it, and its scopes would be left out)",
                shown(k)
            ),
        )
        .value(k)
        .suggest("Application")
        .help("use `kind: Application`");
        reported = true;
    }
    if !app_kind || !nais_api {
        return;
    }
    if !reported && let Some(key) = maskinporten_under_spec(root) {
        cx.error(
            key.pos,
            Code::SkippedDocument,
            "this document has `maskinporten` settings but is not read: it is not a NAIS \
             Application, so its scopes would be left out"
                .to_owned(),
        )
        .help(help);
        reported = true;
    }
    if reported {
        report_top_level_near_misses(cx, root);
    }
}

/// Top-level keys that are near misses of `apiVersion`, `kind`, `metadata` or `spec`. A
/// misspelt `spec` where the document has none is an error: the Application CRD requires
/// `spec`, and every scope in it would be lost; the others are warnings, as unknown fields are.
fn report_top_level_near_misses(cx: &mut Cx<'_>, root: &Node) {
    let Some(entries) = root.entries() else {
        return;
    };
    for (k, _) in entries {
        let Some(name) = k.as_str() else {
            continue;
        };
        if TOP_FIELDS.contains(&name) || name == "status" {
            continue;
        }
        let Some(best) = closest(name, TOP_FIELDS) else {
            continue;
        };
        let lost_spec = best == "spec" && root.get("spec").is_none();
        let (severity, message) = if lost_spec {
            (
                Severity::Error,
                format!(
                    "unknown field `{}` and no `spec`: NAIS refuses an Application without \
                     `spec`, and none of the settings under `{}` would be read",
                    shown(name),
                    shown(name)
                ),
            )
        } else {
            (
                Severity::Warning,
                format!(
                    "unknown top-level field `{}`; NAIS would ignore it",
                    shown(name)
                ),
            )
        };
        cx.report(severity, k.pos, Code::UnknownField, message)
            .value(name)
            .suggest(best)
            .help(format!("did you mean `{best}`?"));
    }
}

fn report_duplicate_keys(cx: &mut Cx<'_>, node: &Node, depth: usize) {
    if depth > yaml::MAX_DEPTH {
        return;
    }
    match &node.kind {
        Kind::Scalar(_) => {}
        Kind::Seq(items) => {
            for item in items {
                report_duplicate_keys(cx, item, depth + 1);
            }
        }
        Kind::Map(entries) => {
            let mut seen: HashMap<&str, usize> = HashMap::new();
            for (k, v) in entries {
                if let Some(name) = k.scalar().map(|s| s.text.as_str()) {
                    if let Some(first) = seen.get(name) {
                        cx.error(
                            k.pos,
                            Code::DuplicateKey,
                            format!("duplicate key `{}` (first at line {first})", shown(name)),
                        )
                        .value(name)
                        .help("Kubernetes refuses a mapping with a key twice: keep one");
                    } else {
                        seen.insert(name, k.pos.line);
                    }
                }
                report_duplicate_keys(cx, v, depth + 1);
            }
        }
    }
}

fn read_application(cx: &mut Cx<'_>, root: &Node) -> Application {
    let meta = root.get("metadata").map(|(_, v)| v);
    let meta_text = |k: &str| {
        meta.and_then(|m| m.get(k))
            .and_then(|(_, v)| match v.scalar()?.value() {
                Value::Str(s) => Some(s.to_owned()),
                _ => None,
            })
    };
    let mut app = Application {
        name: meta_text("name"),
        namespace: meta_text("namespace"),
        line: root.pos.line,
        maskinporten: None,
    };
    let Some((_, spec)) = root.get("spec") else {
        return app;
    };
    if spec.is_null() {
        return app;
    }
    if spec.entries().is_none() {
        type_error(cx, "spec", "a mapping", spec);
        return app;
    }
    match spec.get("maskinporten") {
        Some((key, mp)) => app.maskinporten = read_maskinporten(cx, key.pos, mp),
        None => {
            // A misspelt `maskinporten:` silently provisions nothing.
            if let Some((k, _)) = spec.entries().and_then(|e| {
                e.iter().find(|(k, _)| {
                    k.as_str()
                        .is_some_and(|s| s != "maskinporten" && is_near("maskinporten", s))
                })
            }) {
                let name = k.as_str().unwrap_or_default().to_owned();
                cx.warning(
                    k.pos,
                    Code::UnknownField,
                    format!(
                        "unknown field `{}` in spec; NAIS would ignore it",
                        shown(&name)
                    ),
                )
                .value(name)
                .suggest("maskinporten")
                .help("did you mean `maskinporten`?");
            }
        }
    }
    app
}

/// Reports keys of `map` that are not in `known`.
fn report_unknown_fields(cx: &mut Cx<'_>, map: &Node, known: &[&str], path: &str) {
    let Some(entries) = map.entries() else {
        return;
    };
    for (k, _) in entries {
        let name = k.scalar().map(|s| s.text.clone()).unwrap_or_else(|| raw(k));
        if known.contains(&name.as_str()) {
            continue;
        }
        let d = cx
            .warning(
                k.pos,
                Code::UnknownField,
                format!(
                    "unknown field `{}` in {path}; NAIS would ignore it",
                    shown(&name)
                ),
            )
            .value(name.clone());
        match closest(&name, known) {
            Some(best) => {
                d.suggest(best).help(format!("did you mean `{best}`?"));
            }
            None => {
                d.help(format!("known fields: {}", known.join(", ")));
            }
        }
    }
}

/// Longest key or value (in characters) that gets a "did you mean" suggestion. Every real
/// field and value is far shorter; past this, comparing costs time and says nothing.
const MAX_SUGGEST_LEN: usize = 64;

/// Edit distance over characters, counting a swap of neighbours as one edit (optimal string
/// alignment), since `nmae` for `name` is as likely a typo as `nam`. Three rows of the
/// dynamic programme are kept (the swap looks two rows back), not the whole matrix.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // prev2, prev, cur: rows i-2, i-1 and i; row[j] is the distance between a[..i] and b[..j].
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(prev2[j - 2] + 1);
            }
            cur[j] = best;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Whether `candidate` is probably a misspelling of `target`. Cheap for any input: a length
/// difference beyond the allowed distance, or a candidate longer than [`MAX_SUGGEST_LEN`], is
/// "not near" without computing a distance.
fn is_near(target: &str, candidate: &str) -> bool {
    if candidate.eq_ignore_ascii_case(target) {
        return true;
    }
    let (t_len, c_len) = (target.chars().count(), candidate.chars().count());
    let allowed = (t_len / 4).clamp(1, 3);
    if c_len > MAX_SUGGEST_LEN || t_len.abs_diff(c_len) > allowed {
        return false;
    }
    edit_distance(&target.to_lowercase(), &candidate.to_lowercase()) <= allowed
}

/// The known value `s` is most likely a misspelling of.
fn closest<'k>(s: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .filter(|k| is_near(k, s))
        .min_by_key(|k| edit_distance(&k.to_lowercase(), &s.to_lowercase()))
        .copied()
}

fn type_error<'c>(
    cx: &'c mut Cx<'_>,
    field: &str,
    expected: &str,
    found: &Node,
) -> &'c mut Diagnostic {
    cx.error(
        found.pos,
        Code::InvalidType,
        format!("`{field}` must be {expected}, found {}", found.describe()),
    )
    .value(raw(found))
}

/// Looks `field` up in `map`. A null value counts as absent, as it does in Kubernetes. When
/// `required` and absent, reports it at the key (if written without a value) or at `map`.
fn field<'n>(
    cx: &mut Cx<'_>,
    map: &'n Node,
    field: &str,
    path: &str,
    required: bool,
) -> Option<&'n Node> {
    field_at(cx, map, map.pos, field, path, required)
}

/// [`field`], reporting a missing field at `missing_at` (e.g. the key of the mapping) rather
/// than at the mapping's first entry.
fn field_at<'n>(
    cx: &mut Cx<'_>,
    map: &'n Node,
    missing_at: Pos,
    field: &str,
    path: &str,
    required: bool,
) -> Option<&'n Node> {
    let entry = map.get(field);
    match entry {
        Some((_, v)) if !v.is_null() => Some(v),
        _ => {
            if required {
                let pos = entry.map_or(missing_at, |(k, _)| k.pos);
                cx.error(
                    pos,
                    Code::MissingField,
                    format!("missing required field `{field}` in {path}"),
                );
            }
            None
        }
    }
}

fn read_bool(cx: &mut Cx<'_>, field_name: &str, node: &Node) -> Option<bool> {
    let scalar = node.scalar();
    match scalar.map(|s| s.value()) {
        Some(Value::Bool(b)) => Some(b),
        Some(Value::Str(s)) => {
            if let Some(b) = scalar.and_then(|s| s.yaml11_bool()) {
                cx.warning(
                    node.pos,
                    Code::AmbiguousBoolean,
                    format!(
                        "`{field_name}: {s}` is the boolean {b} to YAML 1.1 readers but the \
                         string \"{s}\" to YAML 1.2 readers",
                        s = shown(s)
                    ),
                )
                .value(s)
                .suggest(b.to_string())
                .help(format!("write `{field_name}: {b}`"));
                return Some(b);
            }
            let d = type_error(cx, field_name, "a boolean (true or false)", node);
            let meant = match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "on" => Some(true),
                "false" | "no" | "n" | "off" => Some(false),
                _ => None,
            };
            if let Some(b) = meant {
                d.suggest(b.to_string())
                    .help(format!("write `{field_name}: {b}`, without quotes"));
            }
            None
        }
        _ => {
            type_error(cx, field_name, "a boolean (true or false)", node);
            None
        }
    }
}

/// A string field. A plain scalar that YAML 1.1 reads as something else (`no`, `on`, `6_00`)
/// is an error: Kubernetes converts YAML 1.1 to JSON, so NAIS sees a boolean or a number where
/// the CRD requires a string and refuses the manifest.
fn read_string<'n>(cx: &mut Cx<'_>, field_name: &str, node: &'n Node) -> Option<&'n str> {
    let scalar = node.scalar();
    match scalar.map(|s| s.value()) {
        Some(Value::Str(s)) => {
            if let Some(b) = scalar.and_then(|sc| sc.yaml11_bool()) {
                cx.error(
                    node.pos,
                    Code::AmbiguousBoolean,
                    format!(
                        "`{field_name}: {s}` is the boolean {b} to YAML 1.1 readers such as \
                         Kubernetes, which refuse it where a string is required (YAML 1.2 \
                         readers see the string \"{s}\")",
                        s = shown(s)
                    ),
                )
                .value(s)
                .suggest(format!("\"{s}\""))
                .help(format!("quote it: `{field_name}: \"{}\"`", shown(s)));
                return None;
            }
            if scalar.is_some_and(yaml::Scalar::ambiguous_number) {
                cx.error(
                    node.pos,
                    Code::AmbiguousNumber,
                    format!(
                        "`{field_name}: {s}` is a number to YAML 1.1 readers such as Kubernetes, \
                         which refuse it where a string is required (YAML 1.2 readers see the \
                         string \"{s}\")",
                        s = shown(s)
                    ),
                )
                .value(s)
                .suggest(format!("\"{s}\""))
                .help(format!("quote it: `{field_name}: \"{}\"`", shown(s)));
                return None;
            }
            Some(s)
        }
        Some(Value::Int(_) | Value::Float(_) | Value::Bool(_)) => {
            let text = scalar.map(|s| s.text.clone()).unwrap_or_default();
            type_error(cx, field_name, "a string", node)
                .suggest(format!("\"{text}\""))
                .help(format!("quote it: `{field_name}: \"{}\"`", shown(&text)));
            None
        }
        _ => {
            type_error(cx, field_name, "a string", node);
            None
        }
    }
}

fn read_seq<'n>(cx: &mut Cx<'_>, field_name: &str, node: &'n Node) -> &'n [Node] {
    match &node.kind {
        Kind::Seq(items) => items,
        _ => {
            type_error(cx, field_name, "a list", node);
            &[]
        }
    }
}

fn is_map(cx: &mut Cx<'_>, field_name: &str, node: &Node) -> bool {
    if node.entries().is_some() {
        true
    } else {
        type_error(cx, field_name, "a mapping", node);
        false
    }
}

fn read_maskinporten(cx: &mut Cx<'_>, key_pos: Pos, node: &Node) -> Option<Maskinporten> {
    if node.is_null() || !is_map(cx, "maskinporten", node) {
        return None;
    }
    let path = "spec.maskinporten";
    report_unknown_fields(cx, node, MASKINPORTEN_FIELDS, path);
    let enabled_node = field_at(cx, node, key_pos, "enabled", path, true);
    let enabled = enabled_node
        .and_then(|n| read_bool(cx, "enabled", n))
        .unwrap_or(false);
    let mut mp = Maskinporten {
        enabled,
        consumes: Vec::new(),
        exposes: Vec::new(),
    };
    let Some(scopes) = field(cx, node, "scopes", path, false) else {
        return Some(mp);
    };
    if !is_map(cx, "scopes", scopes) {
        return Some(mp);
    }
    let path = "spec.maskinporten.scopes";
    report_unknown_fields(cx, scopes, SCOPES_FIELDS, path);

    if let Some(consumes) = field(cx, scopes, "consumes", path, false) {
        let mut first_seen: HashMap<String, usize> = HashMap::new();
        for (i, item) in read_seq(cx, "consumes", consumes).iter().enumerate() {
            let item_path = format!("{path}.consumes[{i}]");
            if !is_map(cx, "consumes[]", item) {
                continue;
            }
            report_unknown_fields(cx, item, CONSUMES_FIELDS, &item_path);
            let Some(name_node) = field(cx, item, "name", &item_path, true) else {
                continue;
            };
            let Some(name) = read_string(cx, "name", name_node) else {
                continue;
            };
            if let Some(line) = first_seen.get(name) {
                cx.warning(
                    name_node.pos,
                    Code::DuplicateConsumedScope,
                    format!(
                        "scope \"{}\" is consumed more than once (first at line {line})",
                        shown(name)
                    ),
                )
                .value(name);
                continue;
            }
            if !name.contains(':') {
                cx.warning(
                    name_node.pos,
                    Code::UnqualifiedConsumedScope,
                    format!(
                        "consumed scope \"{}\" has no prefix; Maskinporten scopes look like \
                         prefix:name",
                        shown(name)
                    ),
                )
                .value(name)
                .help("use the fully qualified scope, e.g. nav:arbeid:some.scope.read");
            }
            first_seen.insert(name.to_owned(), name_node.pos.line);
            mp.consumes.push(name.to_owned());
        }
    }

    if let Some(exposes) = field(cx, scopes, "exposes", path, false) {
        for (i, item) in read_seq(cx, "exposes", exposes).iter().enumerate() {
            let item_path = format!("{path}.exposes[{i}]");
            if !is_map(cx, "exposes[]", item) {
                continue;
            }
            if let Some(scope) = read_exposed(cx, item, &item_path) {
                mp.exposes.push(scope);
            }
        }
    }

    if !mp.enabled
        && (!mp.exposes.is_empty() || !mp.consumes.is_empty())
        && let Some(n) = enabled_node.filter(|n| n.scalar().is_some())
    {
        cx.warning(
            n.pos,
            Code::MaskinportenDisabled,
            format!(
                "maskinporten is disabled, so none of the {} exposed and {} consumed scopes \
                     is provisioned",
                mp.exposes.len(),
                mp.consumes.len()
            ),
        )
        .help("set `enabled: true`, or remove the scopes");
    }
    Some(mp)
}

/// One `scopes.exposes[]` item: every field read and checked, then the combinations checked;
/// `None` when a required field is missing or invalid (its diagnostic is reported).
fn read_exposed(cx: &mut Cx<'_>, item: &Node, path: &str) -> Option<ExposedScope> {
    report_unknown_fields(cx, item, EXPOSES_FIELDS, path);

    let name_node = field(cx, item, "name", path, true);
    let name = name_node.and_then(|node| read_scope_name(cx, node));
    let enabled_node = field(cx, item, "enabled", path, true);
    let enabled = enabled_node.and_then(|n| read_bool(cx, "enabled", n));
    let product = field(cx, item, "product", path, true).and_then(|node| read_product(cx, node));
    let separator_node = field(cx, item, "separator", path, false);
    let separator = separator_node.and_then(|node| read_separator(cx, node));
    let consumers = read_consumers(cx, item, path);
    let accessible_node = field(cx, item, "accessibleForAll", path, false);
    let accessible_for_all = accessible_node
        .and_then(|n| read_bool(cx, "accessibleForAll", n))
        .unwrap_or(false);
    let at_max_age_seconds = field(cx, item, "atMaxAge", path, false)
        .and_then(|n| read_at_max_age(cx, n))
        .unwrap_or(AT_MAX_AGE_DEFAULT);
    let allowed_integrations = match field(cx, item, "allowedIntegrations", path, false) {
        None => vec![Integration::Maskinporten],
        Some(node) => read_integrations(cx, node),
    };
    let visibility = field(cx, item, "visibility", path, false)
        .and_then(|node| read_visibility(cx, node))
        .unwrap_or_default();
    let delegation_node = field(cx, item, "delegationSource", path, false);
    let delegation_source = delegation_node.and_then(|node| read_delegation_source(cx, node));

    if let (Some(_), Some(node)) = (delegation_source, delegation_node) {
        check_delegation_separator(cx, node, name, separator_node.is_some(), separator);
    }
    // Combinations that NAIS accepts but that cannot be what the author meant.
    if let (Some(false), Some(node), Some(n)) = (enabled, enabled_node, name) {
        warn_consumers_on_disabled(cx, node, n, consumers.len());
    }
    if let (true, Some(node), Some(n)) = (accessible_for_all, accessible_node, name) {
        warn_consumers_with_accessible_for_all(cx, node, n, consumers.len());
    }

    let (name, product, enabled, name_node) = (name?, product?, enabled?, name_node?);
    Some(ExposedScope {
        name: name.to_owned(),
        product: product.to_owned(),
        separator,
        enabled,
        consumers,
        accessible_for_all,
        at_max_age_seconds,
        allowed_integrations,
        visibility,
        delegation_source,
        line: name_node.pos.line,
        column: name_node.pos.column,
    })
}

/// `name`, when it matches the NAIS name pattern; otherwise reported, with the lower-case
/// spelling suggested when that is the fix.
fn read_scope_name<'n>(cx: &mut Cx<'_>, node: &'n Node) -> Option<&'n str> {
    let name = read_string(cx, "name", node)?;
    let Err(problem) = check_scope_name(name) else {
        return Some(name);
    };
    let d = cx
        .error(
            node.pos,
            Code::InvalidScopeName,
            format!(
                "scope name \"{}\" does not match {NAME_PATTERN}: {problem}",
                shown(name)
            ),
        )
        .value(name);
    if let Some(s) = suggest_scope_name(name) {
        d.suggest(s.clone()).help(format!("use \"{}\"", shown(&s)));
    }
    None
}

/// `product`, when it matches `^[a-z0-9]+$`; otherwise reported, with a fixed spelling
/// suggested when there is one.
fn read_product<'n>(cx: &mut Cx<'_>, node: &'n Node) -> Option<&'n str> {
    let product = read_string(cx, "product", node)?;
    if scope_name::is_valid_product(product) {
        return Some(product);
    }
    let d = cx
        .error(
            node.pos,
            Code::InvalidProduct,
            format!(
                "`product` \"{}\" does not match {PRODUCT_PATTERN} (lowercase letters a-z and \
                 digits only)",
                shown(product)
            ),
        )
        .value(product);
    if let Some(s) = suggest_product(product) {
        d.suggest(s.clone()).help(format!("use \"{}\"", shown(&s)));
    }
    None
}

/// `separator`: one of `/`, `:`, `.`; otherwise reported (the trimmed value suggested when
/// only spaces are wrong).
fn read_separator(cx: &mut Cx<'_>, node: &Node) -> Option<Separator> {
    let s = read_string(cx, "separator", node)?;
    let sep = Separator::parse(s);
    if sep.is_none() {
        let d = cx
            .error(
                node.pos,
                Code::InvalidSeparator,
                format!(
                    "`separator` \"{}\" must be one of \"/\", \":\", \".\"",
                    shown(s)
                ),
            )
            .value(s);
        let trimmed = s.trim();
        if Separator::parse(trimmed).is_some() {
            d.suggest(trimmed)
                .help(format!("use \"{}\"", shown(trimmed)));
        }
    }
    sep
}

/// `visibility`: `public` or `private`; otherwise reported with the closest of the two.
fn read_visibility(cx: &mut Cx<'_>, node: &Node) -> Option<Visibility> {
    let s = read_string(cx, "visibility", node)?;
    match s {
        "public" => Some(Visibility::Public),
        "private" => Some(Visibility::Private),
        _ => {
            let d = cx
                .error(
                    node.pos,
                    Code::InvalidVisibility,
                    format!(
                        "`visibility` \"{}\" must be \"public\" or \"private\"",
                        shown(s)
                    ),
                )
                .value(s);
            if let Some(best) = closest(s, &["public", "private"]) {
                d.suggest(best).help(format!("use \"{best}\""));
            }
            None
        }
    }
}

/// `delegationSource`: `altinn`, the only one; otherwise reported.
fn read_delegation_source(cx: &mut Cx<'_>, node: &Node) -> Option<DelegationSource> {
    let s = read_string(cx, "delegationSource", node)?;
    if s == "altinn" {
        return Some(DelegationSource::Altinn);
    }
    let d = cx
        .error(
            node.pos,
            Code::InvalidDelegationSource,
            format!(
                "`delegationSource` \"{}\" must be \"altinn\", the only delegation source",
                shown(s)
            ),
        )
        .value(s);
    if s.eq_ignore_ascii_case("altinn") {
        d.suggest("altinn").help("use \"altinn\"");
    }
    None
}

/// A scope with a `delegationSource` (at `node`) needs an explicit `separator: "/"`.
///
/// The NAIS CRD rule is `!has(self.delegationSource) || (has(self.separator) &&
/// self.separator == "/")`: the separator must be written out, even when the name's `/`
/// would make `/` the effective separator.
fn check_delegation_separator(
    cx: &mut Cx<'_>,
    node: &Node,
    name: Option<&str>,
    separator_written: bool,
    separator: Option<Separator>,
) {
    if !separator_written {
        let what = match name {
            Some(n) => format!("scope \"{n}\" has none"),
            None => "this scope has none".to_owned(),
        };
        cx.error(
            node.pos,
            Code::DelegationRequiresSlash,
            format!(
                "`delegationSource: altinn` requires an explicit `separator: \"/\"`, but {what} \
                 (NAIS does not infer it from the name)"
            ),
        )
        .value("altinn")
        .help("add `separator: \"/\"` to this scope");
    }
    if let (Some(n), Some(sep)) = (name, separator)
        && sep != Separator::Slash
    {
        cx.error(
            node.pos,
            Code::DelegationRequiresSlash,
            format!(
                "`delegationSource: altinn` requires separator \"/\", but scope \"{n}\" uses \
                 \"{sep}\""
            ),
        )
        .value("altinn")
        .help("add `separator: \"/\"` to this scope");
    }
}

/// Consumers listed on a disabled scope (`enabled: false` at `node`) get no access.
fn warn_consumers_on_disabled(cx: &mut Cx<'_>, node: &Node, name: &str, consumers: usize) {
    if consumers == 0 {
        return;
    }
    cx.warning(
        node.pos,
        Code::ConsumersOnDisabledScope,
        format!(
            "scope \"{name}\" is disabled, so its {consumers} listed consumer{} get{} no access",
            if consumers == 1 { "" } else { "s" },
            if consumers == 1 { "s" } else { "" },
        ),
    )
    .value("false")
    .help("enable the scope, or remove its consumers");
}

/// `accessibleForAll: true` (at `node`) makes a consumer list meaningless.
fn warn_consumers_with_accessible_for_all(
    cx: &mut Cx<'_>,
    node: &Node,
    name: &str,
    consumers: usize,
) {
    if consumers == 0 {
        return;
    }
    cx.warning(
        node.pos,
        Code::AccessibleForAllWithConsumers,
        format!("scope \"{name}\" is accessible for all, so its consumer list has no effect"),
    )
    .value("true")
    .help("remove `accessibleForAll`, or the consumer list");
}

/// A float with no fraction (`60.0`, `6e1`) as the integer it is: Kubernetes converts YAML
/// to JSON, where `60.0` becomes `60`, which the CRD's integer field accepts. Only magnitudes
/// a float holds exactly are taken; others stay floats (and are type errors).
fn integral_float(text: &str) -> Option<i64> {
    let f: f64 = text.parse().ok()?;
    // 2^53: every integer up to it is exact in an f64, so the conversion below is too.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    #[allow(clippy::cast_possible_truncation)]
    (f.is_finite() && f.fract() == 0.0 && f.abs() <= EXACT).then_some(f as i64)
}

fn read_at_max_age(cx: &mut Cx<'_>, node: &Node) -> Option<u32> {
    let expected = "an integer number of seconds";
    if let Some(sc) = node.scalar().filter(|sc| sc.ambiguous_number()) {
        cx.error(
            node.pos,
            Code::AmbiguousNumber,
            format!(
                "`atMaxAge: {}` is ambiguous: YAML 1.1 readers such as Kubernetes and YAML 1.2 \
                 readers see different values in it (a leading zero is octal to one, an \
                 underscore a string to the other)",
                shown(&sc.text)
            ),
        )
        .value(sc.text.clone())
        .help(
            "write the number of seconds plainly, in decimal without leading zeros or underscores",
        );
        return None;
    }
    let value = node.scalar().map(|s| s.value());
    let int = match value {
        Some(Value::Int(i)) => Some(i),
        Some(Value::Float(f)) => integral_float(f),
        _ => None,
    };
    if let Some(i) = int {
        let ok = i64::from(AT_MAX_AGE_MIN)..=i64::from(AT_MAX_AGE_MAX);
        if ok.contains(&i) {
            return u32::try_from(i).ok();
        }
        let nearest = if i < *ok.start() {
            AT_MAX_AGE_MIN
        } else {
            AT_MAX_AGE_MAX
        };
        cx.error(
            node.pos,
            Code::InvalidAtMaxAge,
            format!(
                "`atMaxAge` {i} is out of range: it must be between {AT_MAX_AGE_MIN} and \
                 {AT_MAX_AGE_MAX} seconds"
            ),
        )
        .value(raw(node))
        .suggest(nearest.to_string())
        .help(format!("use {nearest}"));
        return None;
    }
    match value {
        Some(Value::Str(s)) if s.trim().parse::<i64>().is_ok() => {
            let n = s.trim().to_owned();
            type_error(cx, "atMaxAge", expected, node)
                .suggest(n.clone())
                .help(format!("remove the quotes: `atMaxAge: {n}`"));
            None
        }
        _ => {
            type_error(cx, "atMaxAge", expected, node);
            None
        }
    }
}

fn read_integrations(cx: &mut Cx<'_>, node: &Node) -> Vec<Integration> {
    let mut out: Vec<Integration> = Vec::new();
    let items = read_seq(cx, "allowedIntegrations", node);
    for item in items {
        let Some(s) = read_string(cx, "allowedIntegrations[]", item) else {
            continue;
        };
        let integration = Integration::parse(s);
        if let Integration::Other(other) = &integration {
            let d = cx
                .error(
                    item.pos,
                    Code::UnknownIntegration,
                    format!(
                        "unknown integration \"{}\" in `allowedIntegrations`: known values \
                         are {}",
                        shown(other),
                        Integration::KNOWN.join(", ")
                    ),
                )
                .value(other.clone());
            if let Some(best) = closest(other, &Integration::KNOWN) {
                d.suggest(best).help(format!("use \"{best}\""));
            }
            continue;
        }
        if !out.contains(&integration) {
            out.push(integration);
        }
    }
    // The CRD requires at least one item (MinItems=1). A wrong type was reported above.
    if out.is_empty() && matches!(node.kind, Kind::Seq(_)) {
        let message = if items.is_empty() {
            "`allowedIntegrations` must list at least one integration, found an empty list"
                .to_owned()
        } else {
            format!(
                "`allowedIntegrations` must list at least one integration, but none of its {} \
                 entr{} is valid",
                items.len(),
                if items.len() == 1 { "y" } else { "ies" }
            )
        };
        let d = cx
            .error(node.pos, Code::EmptyIntegrations, message)
            .value(raw(node));
        if items.is_empty() {
            d.suggest("[maskinporten]");
        }
        d.help("use `allowedIntegrations: [maskinporten]` (the default), or remove the field");
    }
    out
}

fn read_consumers(cx: &mut Cx<'_>, item: &Node, path: &str) -> Vec<Consumer> {
    let mut consumers: Vec<Consumer> = Vec::new();
    let Some(list) = field(cx, item, "consumers", path, false) else {
        return consumers;
    };
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    for (i, c) in read_seq(cx, "consumers", list).iter().enumerate() {
        let c_path = format!("{path}.consumers[{i}]");
        if !is_map(cx, "consumers[]", c) {
            continue;
        }
        report_unknown_fields(cx, c, CONSUMER_FIELDS, &c_path);
        let name = field(cx, c, "name", &c_path, false)
            .and_then(|n| read_string(cx, "name", n))
            .map(str::to_owned);
        let Some(orgno_node) = field(cx, c, "orgno", &c_path, true) else {
            continue;
        };
        let Some(orgno) = read_string(cx, "orgno", orgno_node) else {
            continue;
        };
        if !is_nine_digits(orgno) {
            let d = cx
                .error(
                    orgno_node.pos,
                    Code::InvalidOrgno,
                    format!(
                        "organization number \"{}\" must be exactly nine digits (^\\d{{9}}$)",
                        shown(orgno)
                    ),
                )
                .value(orgno);
            let compact: String = orgno.chars().filter(|c| !c.is_whitespace()).collect();
            if compact != orgno && is_nine_digits(&compact) {
                d.suggest(compact.clone())
                    .help(format!("remove the spaces: \"{}\"", shown(&compact)));
            }
            continue;
        }
        if let Some(line) = first_seen.get(orgno) {
            cx.warning(
                orgno_node.pos,
                Code::DuplicateConsumer,
                format!(
                    "organization number \"{orgno}\" is listed more than once for this scope \
                     (first at line {line})"
                ),
            )
            .value(orgno)
            .help("remove the repeated entry");
            continue;
        }
        if !orgno_check_digit_ok(orgno) {
            cx.warning(
                orgno_node.pos,
                Code::OrgnoCheckDigit,
                format!("organization number \"{orgno}\" fails the modulus-11 check digit"),
            )
            .value(orgno)
            .help(
                "a mistyped organization number grants a stranger access, or nobody: look it up \
                 in Enhetsregisteret (brreg.no)",
            );
        }
        first_seen.insert(orgno.to_owned(), orgno_node.pos.line);
        consumers.push(Consumer::new(orgno, name));
    }
    consumers
}

/// The byte offset of the first `\r` that is not followed by `\n`.
fn bare_carriage_return(source: &str) -> Option<usize> {
    let bytes = source.as_bytes();
    bytes
        .iter()
        .enumerate()
        .find(|&(i, &b)| b == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses() {
        assert!(is_near("maskinporten", "maskinporen"));
        assert!(is_near("maskinporten", "Maskinporten"));
        assert!(is_near("accessibleForAll", "accesibleForAll"));
        assert!(is_near("accessibleForAll", "accessibleforall"));
        assert!(!is_near("maskinporten", "image"));
        assert!(!is_near("name", "port"));
        assert_eq!(closest("consumer", EXPOSES_FIELDS), Some("consumers"));
        assert_eq!(closest("atmaxage", EXPOSES_FIELDS), Some("atMaxAge"));
        assert_eq!(closest("zzz", EXPOSES_FIELDS), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("nmae", "name"), 1);
        assert_eq!(closest("nmae", CONSUMES_FIELDS), Some("name"));
    }

    /// The full-matrix optimal string alignment distance the rows replace.
    fn matrix_distance(a: &str, b: &str) -> usize {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for (i, row) in d.iter_mut().enumerate() {
            row[0] = i;
        }
        for (j, cell) in d[0].iter_mut().enumerate() {
            *cell = j;
        }
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (d[i - 1][j] + 1)
                    .min(d[i][j - 1] + 1)
                    .min(d[i - 1][j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[i - 2][j - 2] + 1);
                }
                d[i][j] = best;
            }
        }
        d[a.len()][b.len()]
    }

    #[test]
    fn rows_give_the_matrix_distance() {
        let words = [
            "",
            "a",
            "ab",
            "ba",
            "abc",
            "acb",
            "name",
            "nmae",
            "scopes",
            "scpoes",
            "consumers",
            "consumer",
            "kitten",
            "sitting",
            "ca",
            "abc",
            "æøå",
            "øæå",
        ];
        for a in words {
            for b in words {
                assert_eq!(edit_distance(a, b), matrix_distance(a, b), "{a} {b}");
            }
        }
    }

    #[test]
    fn long_or_far_candidates_are_not_near_without_a_distance() {
        assert!(!is_near("name", &"n".repeat(1_000_000)));
        assert!(!is_near("name", "namexyz"));
        let long = "a".repeat(MAX_SUGGEST_LEN + 1);
        assert!(!is_near(&long, &format!("{long}b")));
        assert!(is_near("spec", "spce"));
    }
}
