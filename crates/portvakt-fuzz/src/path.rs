//! The proxy's request-path checks and route matching on arbitrary request targets.
//!
//! The proxy forwards the path exactly as received, so the security property is: **a path the
//! matcher allows must be the path the upstream would see**. An upstream (a web framework, a
//! file server) may percent-decode, resolve `.` and `..`, merge `//`, treat `\` as `/` or cut
//! `;` parameters; the proxy refuses every path where such a reading would differ from the
//! plain one. So, for any target that `http` parses and `RequestPath` accepts:
//! 1. the aggressive reading (decode, then split on `/` and `\`, cut `;`, drop empty and `.`
//!    segments, resolve `..`) gives exactly the segments of the plain reading (split on `/`,
//!    decode each segment);
//! 2. every pattern matches the path iff it matches those decoded segments (a reference
//!    matcher written here), so `/api/%61dmin` and `/api/admin` are the same route.
//!
//! Input: the first line is a path pattern (as in a policy file), the rest the request target.

use portvakt_cli::proxy::routes::{PolicyFile, RequestPath};

/// The fuzz target.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, target) = text.split_once('\n').unwrap_or(("/**", text));
    let Ok(uri) = target.parse::<http::Uri>() else {
        return;
    };
    let Ok(path) = RequestPath::parse(uri.path()) else {
        return;
    };
    let plain = plain_segments(path.as_str())
        .unwrap_or_else(|| panic!("accepted {:?}, which does not decode", path.as_str()));
    let aggressive = aggressive_segments(path.as_str());
    assert_eq!(
        trim_last_empty(plain.clone()),
        aggressive,
        "an upstream could read {:?} as another path",
        path.as_str()
    );

    // The pattern, as a one-route policy (the proxy's own parser checks it).
    if pattern.contains(['"', '\\']) {
        return;
    }
    let toml = format!("[[route]]\npath = \"{pattern}\"\npublic = true\n");
    let Ok(policy) = PolicyFile::parse(&toml, "fuzz.toml") else {
        return;
    };
    let matched = policy.match_route(&http::Method::GET, &path).is_some();
    assert_eq!(
        matched,
        reference_match(pattern, &plain),
        "pattern {pattern:?} against {:?}",
        path.as_str()
    );
}

fn percent_decode(segment: &str) -> Option<Vec<u8>> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Split on `/`, then decode each segment: how the policy reads a path.
fn plain_segments(path: &str) -> Option<Vec<Vec<u8>>> {
    path.strip_prefix('/')?
        .split('/')
        .map(percent_decode)
        .collect()
}

/// The most liberal reading an upstream might make of the whole path.
fn aggressive_segments(path: &str) -> Vec<Vec<u8>> {
    let decoded = percent_decode(path).unwrap_or_default();
    let mut out: Vec<Vec<u8>> = Vec::new();
    for raw in decoded.split(|&b| b == b'/' || b == b'\\') {
        let segment = match raw.iter().position(|&b| b == b';') {
            Some(i) => &raw[..i],
            None => raw,
        };
        match segment {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            s => out.push(s.to_vec()),
        }
    }
    out
}

/// `/a/b/` and `/a/b` name the same segments once empty ones are dropped.
fn trim_last_empty(mut segments: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    if segments.last().is_some_and(Vec::is_empty) {
        segments.pop();
    }
    segments
}

/// The pattern language of `proxy/routes` read independently: literal segments compare with
/// the decoded request segment, `*` is one non-empty segment, a final `**` the rest.
fn reference_match(pattern: &str, path: &[Vec<u8>]) -> bool {
    let parts: Vec<&str> = pattern[1..].split('/').collect();
    let mut actual = path.iter();
    for (i, part) in parts.iter().enumerate() {
        match *part {
            "**" if i == parts.len() - 1 => return true,
            "*" => match actual.next() {
                Some(s) if !s.is_empty() => {}
                _ => return false,
            },
            literal => match actual.next() {
                Some(s) if s.as_slice() == literal.as_bytes() => {}
                _ => return false,
            },
        }
    }
    actual.next().is_none()
}
