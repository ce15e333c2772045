//! YAML with positions: a small node tree built from `saphyr-parser` events.
//!
//! Why not a ready-made document type? Every diagnostic must point at the offending value's own
//! line and column, duplicate keys must be seen (a generic map keeps only one of them), a quoted
//! `"true"` must stay distinguishable from a plain `true`, and hostile input (deep nesting, alias
//! bombs) must end in a diagnostic, never in a stack overflow or an out-of-memory abort. Building
//! the tree here from the parser's event stream gives all of that in one place, and the
//! parser's iterator API is itself non-recursive.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::diagnostic::shown;

/// Deepest nesting accepted. Kubernetes manifests stay far below this; the limit keeps every
/// recursive walk over the tree (including `Drop`) well inside a thread's stack.
pub(crate) const MAX_DEPTH: usize = 100;

/// Most nodes one file may expand to, aliases included, so that an alias bomb
/// ("billion laughs") is refused instead of exhausting memory.
pub(crate) const MAX_NODES: usize = 200_000;

/// A position in the source: 1-based line, 1-based column counted in characters (what editors
/// show for `file:line:col`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn from_span(span: Span) -> Self {
        Pos {
            line: span.start.line(),
            // saphyr-parser columns are 0-based.
            column: span.start.col() + 1,
        }
    }
}

/// A scalar as written: its text, whether it was plain (unquoted, not a block scalar), and its
/// tag if it had one.
#[derive(Debug, Clone)]
pub(crate) struct Scalar {
    pub text: String,
    pub plain: bool,
    pub tag: Option<String>,
}

/// The value of a scalar under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// A float, or an integer too large for `i64`; its text is kept for messages.
    Float(&'a str),
    Str(&'a str),
}

impl Scalar {
    /// Resolves the scalar the way a YAML 1.2 core-schema reader does: quoted and block scalars
    /// are strings; plain ones may be null, booleans, integers or floats.
    pub fn value(&self) -> Value<'_> {
        let t = self.text.as_str();
        // An explicit core tag decides, quoted or not, as it does for go-yaml: `!!int "60"` is
        // the integer 60 and `!!bool "true"` the boolean true. A text the tag cannot read
        // stays a string (go-yaml refuses it; the rules then report a type error).
        match self.tag.as_deref() {
            Some("!!str") => return Value::Str(t),
            Some("!!null") => return Value::Null,
            Some("!!bool") => {
                return match t {
                    "true" | "True" | "TRUE" => Value::Bool(true),
                    "false" | "False" | "FALSE" => Value::Bool(false),
                    // YAML 1.1 spellings: go-yaml v2 reads them under `!!bool` too.
                    _ => yaml11_bool_text(t).map_or(Value::Str(t), Value::Bool),
                };
            }
            Some("!!int") => return parse_int(t).map_or(Value::Str(t), Value::Int),
            Some("!!float") => {
                return if parse_int(t).is_some() || is_float_or_big_int(t) {
                    Value::Float(t)
                } else {
                    Value::Str(t)
                };
            }
            _ => {}
        }
        if !self.plain {
            return Value::Str(t);
        }
        match t {
            "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
            "true" | "True" | "TRUE" => return Value::Bool(true),
            "false" | "False" | "FALSE" => return Value::Bool(false),
            _ => {}
        }
        if let Some(i) = parse_int(t) {
            return Value::Int(i);
        }
        if is_float_or_big_int(t) {
            return Value::Float(t);
        }
        Value::Str(t)
    }

    /// The boolean a YAML 1.1 reader (go-yaml v2, which parts of the Kubernetes tool chain still
    /// use) sees in a plain scalar that YAML 1.2 reads as a string: `yes`, `no`, `on`, `off`,
    /// `y`, `n` in their usual capitalisations.
    pub fn yaml11_bool(&self) -> Option<bool> {
        if !self.plain || self.tag.is_some() {
            return None;
        }
        yaml11_bool_text(&self.text)
    }

    /// Whether YAML 1.1 readers (go-yaml v2, behind Kubernetes's YAML to JSON conversion) see
    /// another value in this scalar than the YAML 1.2 core schema does: `0100` is octal 64
    /// there and 100 here; `6_00` and `0b101` are numbers there and strings here. `0o17`,
    /// `0x1f`, `089` and `07` read the same in both and are not ambiguous.
    pub fn ambiguous_number(&self) -> bool {
        let numeric_tag = matches!(self.tag.as_deref(), Some("!!int" | "!!float"));
        let untagged_plain = self.plain && self.tag.is_none();
        if !(numeric_tag || untagged_plain) {
            return false;
        }
        let t = self.text.as_str();
        let body = t.strip_prefix(['-', '+']).unwrap_or(t);
        let binary = |b: &str| {
            b.strip_prefix("0b")
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c == b'0' || c == b'1'))
        };
        // A leading zero: go-yaml v2 parses with Go's base prefix rules, so all-octal digits
        // are octal. It matters only when the two readings differ.
        if body.len() > 1
            && body.starts_with('0')
            && body.bytes().all(|b| (b'0'..=b'7').contains(&b))
            && i64::from_str_radix(body, 8).ok() != body.parse::<i64>().ok()
        {
            return true;
        }
        if binary(body) {
            return true;
        }
        if t.contains('_') {
            let joined = t.replace('_', "");
            let joined_body = joined.strip_prefix(['-', '+']).unwrap_or(&joined);
            return parse_int(&joined).is_some()
                || is_float_or_big_int(&joined)
                || binary(joined_body)
                || joined_body
                    .strip_prefix("0o")
                    .or_else(|| joined_body.strip_prefix("0x"))
                    .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        false
    }
}

/// The YAML 1.1 booleans that YAML 1.2 reads as strings.
fn yaml11_bool_text(t: &str) -> Option<bool> {
    match t {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// YAML 1.2 core-schema integers: `[-+]?[0-9]+`, `0o[0-7]+`, `0x[0-9a-fA-F]+`.
fn parse_int(t: &str) -> Option<i64> {
    if let Some(oct) = t.strip_prefix("0o") {
        return (!oct.is_empty() && oct.bytes().all(|b| (b'0'..=b'7').contains(&b)))
            .then(|| i64::from_str_radix(oct, 8).ok())
            .flatten();
    }
    if let Some(hex) = t.strip_prefix("0x") {
        return (!hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| i64::from_str_radix(hex, 16).ok())
            .flatten();
    }
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<i64>().ok()
}

/// YAML 1.2 core-schema floats (`[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, `.inf`,
/// `.nan`), plus decimal integers that overflow `i64`.
fn is_float_or_big_int(t: &str) -> bool {
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    if matches!(body, ".inf" | ".Inf" | ".INF") || matches!(t, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], Some(&mantissa[i + 1..])),
        None => (mantissa, None),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac_part {
        None => !int_part.is_empty() && all_digits(int_part),
        Some(frac) if int_part.is_empty() => !frac.is_empty() && all_digits(frac),
        Some(frac) => all_digits(int_part) && all_digits(frac),
    };
    let exponent_ok = match exponent {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && all_digits(e)
        }
    };
    mantissa_ok && exponent_ok
}

/// One node of a document, with where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Entries in source order, duplicates kept.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar, if this node is one.
    pub fn scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            Kind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The node's text if it is a scalar that reads as a string (used for mapping keys).
    pub fn as_str(&self) -> Option<&str> {
        match self.scalar()?.value() {
            Value::Str(s) => Some(s),
            // Keys like `on:` or `1:` are still matched by their text.
            _ => self.scalar().map(|s| s.text.as_str()),
        }
    }

    /// Whether this is a null scalar (absent value, `~`, `null`).
    pub fn is_null(&self) -> bool {
        matches!(self.scalar().map(Scalar::value), Some(Value::Null))
    }

    /// The mapping's entries, if this is a mapping.
    pub fn entries(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(e) => Some(e),
            _ => None,
        }
    }

    /// First entry whose key is `key`.
    pub fn get(&self, key: &str) -> Option<(&Node, &Node)> {
        self.entries()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }

    /// Number of nodes in this subtree (bounded by `MAX_DEPTH` in recursion depth).
    fn count(&self) -> usize {
        match &self.kind {
            Kind::Scalar(_) => 1,
            Kind::Seq(items) => 1 + items.iter().map(Node::count).sum::<usize>(),
            Kind::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.count() + v.count())
                    .sum::<usize>()
            }
        }
    }

    /// Moves this subtree, every node of it, to `pos` (bounded by `MAX_DEPTH` in recursion).
    fn relocate(&mut self, pos: Pos) {
        self.pos = pos;
        match &mut self.kind {
            Kind::Scalar(_) => {}
            Kind::Seq(items) => items.iter_mut().for_each(|n| n.relocate(pos)),
            Kind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.relocate(pos);
                v.relocate(pos);
            }),
        }
    }

    /// A short description for "found ..." in messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Seq(_) => "a list".to_owned(),
            Kind::Map(_) => "a mapping".to_owned(),
            Kind::Scalar(s) => match s.value() {
                Value::Null => "nothing (null)".to_owned(),
                Value::Bool(b) => format!("the boolean {b}"),
                Value::Int(i) => format!("the integer {i}"),
                Value::Float(f) => format!("the number {}", shown(f)),
                Value::Str(t) => format!("the string \"{}\"", shown(t)),
            },
        }
    }
}

/// One YAML document of the stream.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    pub root: Node,
}

/// Why the text is not YAML we can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct YamlError {
    pub pos: Pos,
    pub message: String,
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

struct Builder {
    docs: Vec<Document>,
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
}

impl Builder {
    fn add(&mut self, node: Node, anchor: usize, pos: Pos) -> Result<(), YamlError> {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
            None => {
                if self.root.is_some() {
                    return Err(YamlError {
                        pos,
                        message: "more than one root node in a document".to_owned(),
                    });
                }
                self.root = Some(node);
            }
        }
        Ok(())
    }

    fn count(&mut self, n: usize, pos: Pos) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(YamlError {
                pos,
                message: format!(
                    "the file expands to more than {MAX_NODES} YAML nodes (aliases included); \
                     refusing to read it"
                ),
            });
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame, pos: Pos) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError {
                pos,
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
            });
        }
        self.count(1, pos)?;
        self.stack.push(frame);
        Ok(())
    }

    fn on_event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
        let pos = Pos::from_span(span);
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) => {}
            Event::DocumentEnd => {
                let root = self.root.take().unwrap_or(Node {
                    pos,
                    kind: Kind::Scalar(Scalar {
                        text: String::new(),
                        plain: true,
                        tag: None,
                    }),
                });
                self.docs.push(Document { root });
                self.anchors.clear();
            }
            Event::SequenceStart(anchor, _) => self.open(
                Frame::Seq {
                    pos,
                    anchor,
                    items: Vec::new(),
                },
                pos,
            )?,
            Event::MappingStart(anchor, _) => self.open(
                Frame::Map {
                    pos,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                },
                pos,
            )?,
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { pos, anchor, items }) => (
                        Node {
                            pos,
                            kind: Kind::Seq(items),
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        pos,
                        anchor,
                        entries,
                        ..
                    }) => (
                        Node {
                            pos,
                            kind: Kind::Map(apply_merge_keys(entries)?),
                        },
                        anchor,
                    ),
                    None => {
                        return Err(YamlError {
                            pos,
                            message: "unbalanced end of collection".to_owned(),
                        });
                    }
                };
                self.add(node, anchor, pos)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, pos)?;
                let tag = tag.map(|t| {
                    if t.is_yaml_core_schema() {
                        format!("!!{}", t.suffix)
                    } else {
                        t.to_string()
                    }
                });
                let node = Node {
                    pos,
                    kind: Kind::Scalar(Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                        tag,
                    }),
                };
                self.add(node, anchor, pos)?;
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id) else {
                    return Err(YamlError {
                        pos,
                        message: "alias to an unknown anchor".to_owned(),
                    });
                };
                let size = target.count();
                let mut node = target.clone();
                self.count(size, pos)?;
                // Everything an alias expands to is reported where the alias is used: that is
                // where the value means what the diagnostic says.
                node.relocate(pos);
                self.add(node, 0, pos)?;
            }
        }
        Ok(())
    }
}

/// Whether `key` is YAML's merge key: a plain `<<`, untagged or tagged `!!merge` (a quoted
/// `"<<"` is an ordinary string key, as in go-yaml).
fn is_merge_key(key: &Node) -> bool {
    key.scalar().is_some_and(|s| {
        s.plain && s.text == "<<" && matches!(s.tag.as_deref(), None | Some("!!merge"))
    })
}

/// Applies YAML merge keys (`<<: *base`, `<<: [*a, *b]`) to one mapping's entries, as go-yaml
/// does before Kubernetes sees the document: a merged mapping supplies the keys the mapping
/// does not have itself. Explicit keys win (and are not duplicates of merged ones); of several
/// merged mappings the earlier wins. Merged entries keep their positions, which for an alias
/// is where the alias is used.
///
/// Every mapping is resolved when it ends, so a merged mapping (an anchor's copy) has no merge
/// key left in it. No node is added: merged entries are moved out of the merge value.
fn apply_merge_keys(entries: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, YamlError> {
    if !entries.iter().any(|(k, _)| is_merge_key(k)) {
        return Ok(entries);
    }
    let mut out = Vec::with_capacity(entries.len());
    let mut merged = Vec::new();
    let mut first_merge: Option<Pos> = None;
    for (k, v) in entries {
        if !is_merge_key(&k) {
            out.push((k, v));
            continue;
        }
        if let Some(first) = first_merge {
            return Err(YamlError {
                pos: k.pos,
                message: format!(
                    "the merge key `<<` twice in one mapping (first at line {}); merge several \
                     mappings with one list: `<<: [*a, *b]`",
                    first.line
                ),
            });
        }
        first_merge = Some(k.pos);
        let not_a_map = |n: &Node| YamlError {
            pos: n.pos,
            message: format!(
                "a merge key `<<` needs a mapping or a list of mappings, found {}",
                n.describe()
            ),
        };
        if let Kind::Scalar(_) = v.kind {
            return Err(not_a_map(&v));
        }
        match v.kind {
            Kind::Map(m) => merged.push(m),
            Kind::Seq(items) => {
                for item in items {
                    match item.kind {
                        Kind::Map(m) => merged.push(m),
                        _ => return Err(not_a_map(&item)),
                    }
                }
            }
            Kind::Scalar(_) => {}
        }
    }
    let mut keys: std::collections::HashSet<String> = out
        .iter()
        .filter_map(|(k, _)| k.scalar().map(|s| s.text.clone()))
        .collect();
    for m in merged {
        for (k, v) in m {
            match k.scalar() {
                Some(s) if !keys.insert(s.text.clone()) => {}
                _ => out.push((k, v)),
            }
        }
    }
    Ok(out)
}

/// Reads every document of a YAML stream.
///
/// Never panics on any input: syntax errors, excessive nesting and alias bombs come back as a
/// [`YamlError`] with the position where reading stopped.
pub(crate) fn load(source: &str) -> Result<Vec<Document>, YamlError> {
    // The parser is third-party code; a bug in it must not take the caller down with it.
    let result = std::panic::catch_unwind(|| {
        let mut builder = Builder {
            docs: Vec::new(),
            stack: Vec::new(),
            root: None,
            anchors: HashMap::new(),
            nodes: 0,
        };
        for event in Parser::new_from_str(source) {
            match event {
                Ok((event, span)) => builder.on_event(event, span)?,
                Err(e) => {
                    return Err(YamlError {
                        pos: within(source, e.marker().line(), e.marker().col() + 1),
                        message: e.info().to_owned(),
                    });
                }
            }
        }
        Ok(builder.docs)
    });
    result.unwrap_or_else(|_| {
        Err(YamlError {
            pos: Pos { line: 1, column: 1 },
            message: "the YAML parser failed on this input".to_owned(),
        })
    })
}

/// A parser position, kept inside the file: at the end of input it can name the line after
/// the last one (found by the `manifest` fuzz target, for a syntax error and for an empty key
/// on the last line), which an editor cannot jump to. Such a position becomes the end of the
/// last line.
pub(crate) fn within(source: &str, line: usize, column: usize) -> Pos {
    let end = position_after(source);
    if (1..=end.line).contains(&line) {
        return Pos { line, column };
    }
    end
}

/// The position just after `before`, the file's text up to some byte: its line counted by line
/// feeds and its column in characters, both 1-based.
pub(crate) fn position_after(before: &str) -> Pos {
    Pos {
        line: before.matches('\n').count() + 1,
        column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str) -> Node {
        let mut docs = load(src).expect("valid yaml");
        assert_eq!(docs.len(), 1);
        docs.remove(0).root
    }

    #[test]
    fn an_error_at_the_end_of_input_points_at_the_last_line() {
        let crash = include_bytes!(
            "../../../fuzz/regressions/manifest/crash-52b8735eb809202c314c3e373131beb03e6a8e2a"
        );
        let source = String::from_utf8_lossy(crash);
        let lines = source.split('\n').count();
        let error = load(&source).unwrap_err();
        assert!(
            (1..=lines).contains(&error.pos.line),
            "{:?} of {lines}",
            error.pos
        );
        assert_eq!(within("a\nbc", 3, 1), Pos { line: 2, column: 3 });
        assert_eq!(within("a\nbc", 2, 2), Pos { line: 2, column: 2 });
    }

    #[test]
    fn positions_are_one_based_and_point_at_values() {
        let root = one("a: 1\nb:\n  c: \"x\"\n  d: [1, 2]\n");
        let (k, v) = root.get("a").expect("a");
        assert_eq!((k.pos.line, k.pos.column), (1, 1));
        assert_eq!((v.pos.line, v.pos.column), (1, 4));
        let (_, b) = root.get("b").expect("b");
        let (_, c) = b.get("c").expect("c");
        assert_eq!((c.pos.line, c.pos.column), (3, 6));
        let (_, d) = b.get("d").expect("d");
        assert_eq!((d.pos.line, d.pos.column), (4, 6));
    }

    #[test]
    fn sequence_item_mapping_starts_at_first_key() {
        let root = one("l:\n  - name: x\n    y: z\n");
        let (_, l) = root.get("l").expect("l");
        let Kind::Seq(items) = &l.kind else {
            panic!("not a seq")
        };
        assert_eq!((items[0].pos.line, items[0].pos.column), (2, 5));
    }

    #[test]
    fn duplicate_keys_are_kept() {
        let root = one("a: 1\na: 2\n");
        assert_eq!(root.entries().map(<[_]>::len), Some(2));
    }

    #[test]
    fn scalar_resolution() {
        let root = one(
            "a: true\nb: \"true\"\nc: 12\nd: '12'\ne:\nf: ~\ng: 1.5\nh: abc\ni: !!str 5\nj: 0x1f\nk: 99999999999999999999\nl: yes\n",
        );
        let v = |k: &str| root.get(k).and_then(|(_, v)| v.scalar()).map(|s| s.value());
        assert_eq!(v("a"), Some(Value::Bool(true)));
        assert_eq!(v("b"), Some(Value::Str("true")));
        assert_eq!(v("c"), Some(Value::Int(12)));
        assert_eq!(v("d"), Some(Value::Str("12")));
        assert_eq!(v("e"), Some(Value::Null));
        assert_eq!(v("f"), Some(Value::Null));
        assert_eq!(v("g"), Some(Value::Float("1.5")));
        assert_eq!(v("h"), Some(Value::Str("abc")));
        assert_eq!(v("i"), Some(Value::Str("5")));
        assert_eq!(v("j"), Some(Value::Int(31)));
        assert_eq!(v("k"), Some(Value::Float("99999999999999999999")));
        assert_eq!(v("l"), Some(Value::Str("yes")));
        let l = root.get("l").and_then(|(_, v)| v.scalar()).expect("l");
        assert_eq!(l.yaml11_bool(), Some(true));
    }

    #[test]
    fn float_grammar() {
        for yes in [
            "1.5", "-1.5", ".5", "1.", "1e3", "1.5E-3", ".inf", "-.Inf", ".nan",
        ] {
            assert!(is_float_or_big_int(yes), "{yes}");
        }
        for no in ["1.5.5", "e3", ".", "1e", "abc", "1_000", "-", ".e1"] {
            assert!(!is_float_or_big_int(no), "{no}");
        }
    }

    #[test]
    fn multi_document_streams() {
        let docs = load("a: 1\n---\nb: 2\n---\n").expect("valid");
        assert_eq!(docs.len(), 3);
        assert!(docs[2].root.is_null());
    }

    #[test]
    fn aliases_are_expanded_at_the_use_site() {
        let root = one("a: &x\n  k: v\nb: *x\n");
        let (_, b) = root.get("b").expect("b");
        assert_eq!((b.pos.line, b.pos.column), (3, 4));
        let (k, v) = b.get("k").expect("k");
        assert_eq!((k.pos.line, k.pos.column), (3, 4));
        assert_eq!((v.pos.line, v.pos.column), (3, 4));
        // The anchored original keeps its own positions.
        let (_, a) = root.get("a").expect("a");
        let (_, v) = a.get("k").expect("k");
        assert_eq!((v.pos.line, v.pos.column), (2, 6));
    }

    #[test]
    fn deep_nesting_is_refused() {
        // Flow collections: the scanner has its own limit.
        assert!(load(&"[".repeat(10_000)).is_err());
        // Block collections: ours.
        let src = "a:\n".to_owned() + &"- ".repeat(500) + "x\n";
        let err = load(&src).expect_err("too deep");
        assert_eq!(err.message, "nesting deeper than 100 levels");
        assert_eq!(err.pos.line, 2);
        // Just below the limit is fine.
        let src = "- ".repeat(MAX_DEPTH - 1) + "x\n";
        assert!(load(&src).is_ok());
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = load(&src).expect_err("bomb");
        assert!(
            err.message.contains("more than 200000 YAML nodes"),
            "{err:?}"
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = load("a: 1\n\tb: 2\n").expect_err("tab");
        assert_eq!(err.message, "while scanning a plain scalar, found a tab");
        assert_eq!((err.pos.line, err.pos.column), (1, 4));
        let err = load("a: b\nc\n").expect_err("no colon");
        assert_eq!(err.pos.line, 3);
    }
}
