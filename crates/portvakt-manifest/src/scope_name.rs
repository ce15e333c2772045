//! Scope names: the NAIS naming rules for `product` and `name`, and the fully qualified scope
//! name (`<prefix>:<product><separator><name>`) consumers ask for.

use std::fmt;

use serde::Serialize;

/// The NAIS pattern for `scopes.exposes[].product`.
pub const PRODUCT_PATTERN: &str = "^[a-z0-9]+$";

/// The NAIS pattern for `scopes.exposes[].name`.
pub const NAME_PATTERN: &str =
    r"^([a-zæøå0-9]+\/?)+(\:[a-zæøå0-9]+)*[a-zæøå0-9]+(\.[a-zæøå0-9]+)*$";

/// What goes between the product and the name in a fully qualified scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Separator {
    /// `/`, the default when the name contains `/`; required with `delegationSource`.
    #[serde(rename = "/")]
    Slash,
    /// `:`, the default.
    #[serde(rename = ":")]
    Colon,
    /// `.`
    #[serde(rename = ".")]
    Dot,
}

impl Separator {
    /// Parses the manifest's `separator` value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "/" => Some(Separator::Slash),
            ":" => Some(Separator::Colon),
            "." => Some(Separator::Dot),
            _ => None,
        }
    }

    /// The separator as a character string.
    pub fn as_str(self) -> &'static str {
        match self {
            Separator::Slash => "/",
            Separator::Colon => ":",
            Separator::Dot => ".",
        }
    }

    /// The separator NAIS uses for `name`: an explicit one always wins; otherwise `/` when the
    /// name contains `/`, and `:` if not.
    pub fn effective(explicit: Option<Separator>, name: &str) -> Separator {
        match explicit {
            Some(s) => s,
            None if name.contains('/') => Separator::Slash,
            None => Separator::Colon,
        }
    }
}

impl fmt::Display for Separator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fully qualified scope consumers ask for: `<prefix>:<product><separator><name>`.
///
/// ```
/// use portvakt_manifest::scope_name::{fully_qualified, Separator};
/// assert_eq!(fully_qualified("nav", "arbeid", None, "some.scope.read"), "nav:arbeid:some.scope.read");
/// assert_eq!(
///     fully_qualified("nav", "helse", None, "sykepenger/afp.read"),
///     "nav:helse/sykepenger/afp.read"
/// );
/// assert_eq!(fully_qualified("nav", "helse", Some(Separator::Dot), "a/b"), "nav:helse.a/b");
/// ```
pub fn fully_qualified(
    prefix: &str,
    product: &str,
    separator: Option<Separator>,
    name: &str,
) -> String {
    let sep = Separator::effective(separator, name);
    format!("{prefix}:{product}{sep}{name}")
}

/// Whether `prefix`, the organization's part of every scope it owns (`nav` in
/// `nav:arbeid:some.scope.read`), matches `^[a-z0-9]+$`, as Digdir's prefixes do (`nav`,
/// `skatteetaten`): a `:` or `/` in it would move where the scope's parts are read apart.
pub fn is_valid_prefix(prefix: &str) -> bool {
    is_valid_product(prefix)
}

/// Whether `product` matches `^[a-z0-9]+$` (ASCII lowercase letters and digits, at least one).
pub fn is_valid_product(product: &str) -> bool {
    !product.is_empty()
        && product
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A product name that would pass, made from an invalid one by lowercasing it and dropping
/// separators (`Arbeid` -> `arbeid`, `arbeid-og-velferd` -> `arbeidogvelferd`); `None` when no
/// such simple fix exists.
pub fn suggest_product(product: &str) -> Option<String> {
    let fixed: String = product
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | ' ' | '.'))
        .flat_map(char::to_lowercase)
        .collect();
    (fixed != product && is_valid_product(&fixed)).then_some(fixed)
}

/// A "word" character of the name pattern: `[a-zæøå0-9]`.
fn is_word(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, 'æ' | 'ø' | 'å')
}

/// Checks `name` against [`NAME_PATTERN`] and says why it fails.
///
/// The pattern is matched by hand so that the reason can be precise. Write `w` for
/// `[a-zæøå0-9]`. The pattern is `P C W D` with `P = (w+/?)+`, `C = (:w+)*`, `W = w+`,
/// `D = (\.w+)*`. Only `D` may contain `.`, and `D` starts with one, so the name splits at its
/// first `.` into a head `H = P C W` (no dots) and a tail `D`, which must be `.`-separated
/// non-empty runs of `w`. In `H`, `/` may only occur in `P` and `:` only in `C`, so splitting `H`
/// at `:` gives `P` followed by the segments of `C`, with `W` glued to the last one:
///
/// * no `:` in `H`: `H = P W`. `P` is non-empty, starts with `w`, and has no `//`; it may end in
///   `/`. `W` is at least one `w`. So `H` starts and ends with `w`, has no `//`, and is at least
///   two characters long (hence `x.read` fails but `xy.read` passes);
/// * `k >= 1` colons: `H = P :s1 ... :sk` where `P` is as above (starts with `w`, no `//`, may end
///   in `/`), every `si` is a non-empty run of `w`, and the last one, which holds a `C` segment
///   and all of `W`, is at least two characters long (`a:b` fails, `a:bc` passes).
///
/// The unit tests compare this matcher with the `regex` crate exhaustively on short strings.
pub fn check_scope_name(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    for c in name.chars() {
        if is_word(c) || matches!(c, '/' | ':' | '.') {
            continue;
        }
        if c.is_uppercase() {
            return Err(NameProblem::Uppercase(c));
        }
        return Err(NameProblem::BadChar(c));
    }
    let (head, tail) = match name.find('.') {
        Some(i) => (&name[..i], Some(&name[i + 1..])),
        None => (name, None),
    };
    let mut parts = head.split(':');
    let path = parts.next().unwrap_or_default();
    let colon_segments: Vec<&str> = parts.collect();

    if !path.starts_with(is_word) {
        return Err(NameProblem::BadStart);
    }
    if path.contains("//") {
        return Err(NameProblem::EmptyPathSegment);
    }
    match colon_segments.split_last() {
        None => {
            if !head.ends_with(is_word) {
                return Err(NameProblem::BadHeadEnd);
            }
            if head.chars().count() < 2 {
                return Err(if tail.is_some() {
                    NameProblem::ShortBeforeDot
                } else {
                    NameProblem::TooShort
                });
            }
        }
        Some((last, middle)) => {
            for seg in middle.iter().chain(std::iter::once(last)) {
                if seg.is_empty() {
                    return Err(NameProblem::EmptyColonSegment);
                }
                if seg.contains('/') {
                    return Err(NameProblem::SlashAfterColon);
                }
            }
            if last.chars().count() < 2 {
                return Err(NameProblem::ShortAfterLastColon);
            }
        }
    }
    if let Some(tail) = tail {
        for seg in tail.split('.') {
            if seg.is_empty() {
                return Err(NameProblem::EmptyDotSegment);
            }
            if seg.contains(['/', ':']) {
                return Err(NameProblem::SeparatorAfterDot);
            }
        }
    }
    Ok(())
}

/// Why a scope name does not match [`NAME_PATTERN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameProblem {
    /// Nothing at all.
    #[error("the name is empty")]
    Empty,
    /// An uppercase letter.
    #[error("uppercase {0:?} is not allowed, only lowercase letters")]
    Uppercase(char),
    /// A character outside `a-z æ ø å 0-9 / : .`.
    #[error("{0:?} is not allowed, only a-z, æ, ø, å, 0-9 and the separators / : .")]
    BadChar(char),
    /// Starts with `/`, `:` or `.`.
    #[error("the name must start with a letter or digit")]
    BadStart,
    /// `//`.
    #[error("\"//\" is not allowed")]
    EmptyPathSegment,
    /// The part before the first `.` ends with `/`.
    #[error("\"/\" must be followed by a letter or digit")]
    BadHeadEnd,
    /// One character before the first `.`.
    #[error("at least two characters are needed before the first \".\"")]
    ShortBeforeDot,
    /// One character in all.
    #[error("at least two characters are needed")]
    TooShort,
    /// `::`, or a `:` at the end of the part before the first `.`.
    #[error("\":\" must be followed by a letter or digit")]
    EmptyColonSegment,
    /// `/` after a `:`.
    #[error("\"/\" cannot follow \":\"")]
    SlashAfterColon,
    /// One character after the last `:`.
    #[error("at least two characters are needed after the last \":\"")]
    ShortAfterLastColon,
    /// `..`, or a `.` at the end.
    #[error("\".\" must be followed by a letter or digit")]
    EmptyDotSegment,
    /// `/` or `:` after the first `.`.
    #[error("\"/\" and \":\" cannot follow the first \".\"")]
    SeparatorAfterDot,
}

/// A valid name made from an invalid one by lowercasing it, when that is all it takes.
pub fn suggest_scope_name(name: &str) -> Option<String> {
    let lower = name.to_lowercase();
    (lower != name && check_scope_name(&lower).is_ok()).then_some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_ok(s: &str) -> bool {
        check_scope_name(s).is_ok()
    }

    #[test]
    fn fully_qualified_separator_cases() {
        let fq = |p, s, n| fully_qualified("nav", p, s, n);
        // Default ':'.
        assert_eq!(
            fq("arbeid", None, "some.scope.read"),
            "nav:arbeid:some.scope.read"
        );
        // Default '/' when the name contains '/'.
        assert_eq!(
            fq("helse", None, "sykepenger/afp.read"),
            "nav:helse/sykepenger/afp.read"
        );
        // Explicit wins, in every combination.
        assert_eq!(
            fq("arbeid", Some(Separator::Slash), "a.b"),
            "nav:arbeid/a.b"
        );
        assert_eq!(
            fq("arbeid", Some(Separator::Dot), "ab.read"),
            "nav:arbeid.ab.read"
        );
        assert_eq!(
            fq("arbeid", Some(Separator::Colon), "ab.read"),
            "nav:arbeid:ab.read"
        );
        assert_eq!(fq("helse", Some(Separator::Colon), "a/b"), "nav:helse:a/b");
        assert_eq!(fq("helse", Some(Separator::Dot), "a/b"), "nav:helse.a/b");
        assert_eq!(fq("helse", Some(Separator::Slash), "a/b"), "nav:helse/a/b");
        // A name with ':' in it keeps the default ':'.
        assert_eq!(fq("helse", None, "a:bc"), "nav:helse:a:bc");
        // Another prefix.
        assert_eq!(
            fully_qualified("test", "arbeid", None, "ab"),
            "test:arbeid:ab"
        );
    }

    #[test]
    fn separator_parse() {
        assert_eq!(Separator::parse("/"), Some(Separator::Slash));
        assert_eq!(Separator::parse(":"), Some(Separator::Colon));
        assert_eq!(Separator::parse("."), Some(Separator::Dot));
        for bad in ["", "-", "//", " /", "_"] {
            assert_eq!(Separator::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn names_from_the_docs() {
        for ok in [
            "some.scope.read",
            "some.scope.write",
            "sykepenger/afp.read",
            "xy.read",
            "æøå",
            "a/b",
            "a/b/c.d.e",
            "a/:bc",
            "a:bc",
            "ab:cd:ef.gh",
            "0a",
        ] {
            assert!(name_ok(ok), "{ok}");
        }
        let cases = [
            ("x.read", NameProblem::ShortBeforeDot),
            ("x", NameProblem::TooShort),
            ("", NameProblem::Empty),
            ("Some.scope", NameProblem::Uppercase('S')),
            ("ÆØÅ", NameProblem::Uppercase('Æ')),
            ("some-scope", NameProblem::BadChar('-')),
            ("some scope", NameProblem::BadChar(' ')),
            ("/ab", NameProblem::BadStart),
            (".ab", NameProblem::BadStart),
            (":ab", NameProblem::BadStart),
            ("a//b", NameProblem::EmptyPathSegment),
            ("ab/", NameProblem::BadHeadEnd),
            ("ab/.c", NameProblem::BadHeadEnd),
            ("ab::cd", NameProblem::EmptyColonSegment),
            ("ab:", NameProblem::EmptyColonSegment),
            ("ab:c/d", NameProblem::SlashAfterColon),
            ("ab:c", NameProblem::ShortAfterLastColon),
            ("ab.", NameProblem::EmptyDotSegment),
            ("ab..c", NameProblem::EmptyDotSegment),
            ("ab.c/d", NameProblem::SeparatorAfterDot),
            ("ab.c:d", NameProblem::SeparatorAfterDot),
        ];
        for (name, problem) in cases {
            assert_eq!(check_scope_name(name), Err(problem), "{name}");
        }
    }

    /// All strings over `alphabet` up to `max_len` characters.
    fn all_strings(alphabet: &[char], max_len: usize) -> Vec<String> {
        let mut out = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..max_len {
            let mut next = Vec::new();
            for s in &frontier {
                for &c in alphabet {
                    let mut t = s.clone();
                    t.push(c);
                    next.push(t);
                }
            }
            out.extend(next.iter().cloned());
            frontier = next;
        }
        out
    }

    #[test]
    fn name_matcher_equals_the_nais_regex_exhaustively() {
        let re = regex::Regex::new(NAME_PATTERN).expect("pattern compiles");
        // Every structural character, a plain letter, a Norwegian letter, a digit, an
        // uppercase letter and a stranger, over all strings up to six characters.
        let alphabet = ['a', 'å', '0', '/', ':', '.', 'A', '-'];
        let mut checked = 0;
        for s in all_strings(&alphabet, 6) {
            assert_eq!(name_ok(&s), re.is_match(&s), "{s:?}");
            checked += 1;
        }
        assert_eq!(checked, 299_593); // 8^0 + 8^1 + ... + 8^6
        // Longer strings over just the structure-relevant characters.
        for s in all_strings(&['a', '/', ':', '.'], 9) {
            assert_eq!(name_ok(&s), re.is_match(&s), "{s:?}");
        }
    }

    #[test]
    fn name_matcher_equals_the_nais_regex_on_awkward_inputs() {
        let re = regex::Regex::new(NAME_PATTERN).expect("pattern compiles");
        for s in [
            "ab\n",
            "ab\nc",
            "\nab",
            "ab ",
            "ä",
            "é1",
            "ß1",
            "١٢",
            "ab\u{0}",
            "some.scope.read\r",
            "ab:cd/ef",
        ] {
            assert_eq!(name_ok(s), re.is_match(s), "{s:?}");
        }
    }

    #[test]
    fn product_matcher_equals_the_nais_regex() {
        let re = regex::Regex::new(PRODUCT_PATTERN).expect("pattern compiles");
        for s in all_strings(&['a', 'z', '0', '9', 'A', 'æ', '-', '\n'], 5) {
            assert_eq!(is_valid_product(&s), re.is_match(&s), "{s:?}");
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest_product("Arbeid"), Some("arbeid".to_owned()));
        assert_eq!(
            suggest_product("arbeid-og-velferd"),
            Some("arbeidogvelferd".to_owned())
        );
        assert_eq!(suggest_product("arbeid"), None);
        assert_eq!(suggest_product("æøå"), None);
        assert_eq!(suggest_product(""), None);
        assert_eq!(
            suggest_scope_name("Some.Scope.Read"),
            Some("some.scope.read".to_owned())
        );
        assert_eq!(suggest_scope_name("X.read"), None);
        assert_eq!(suggest_scope_name("ÆØÅ"), Some("æøå".to_owned()));
    }
}
