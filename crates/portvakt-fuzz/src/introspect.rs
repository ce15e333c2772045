//! The introspection request parser (`POST /api/v1/introspect`): JSON and form bodies, any
//! content type.
//!
//! Input: the first line is the `Content-Type` (empty: none), the rest the body. Invariants:
//! never a panic; a request it accepts names `identity_provider` `maskinporten` and a non-empty
//! token, and that token (and the audience) is what plain serde_json (JSON) or the `url`
//! crate's form reader reads from the same body. It also has nothing the parser could have
//! dropped: a JSON body is an object, every field is one of the four, in a form only `scope`
//! repeats, and a `scope` or `audience` that is there (not `null`) is not empty.

use std::collections::BTreeMap;

use portvakt_cli::serve::introspect::parse_request;
use serde::de::IgnoredAny;
use serde_json::Value;

/// The fields a request may have.
const FIELDS: [&str; 4] = ["identity_provider", "token", "scope", "audience"];

/// The fuzz target.
pub fn run(data: &[u8]) {
    let (content_type, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let Ok(content_type) = std::str::from_utf8(content_type) else {
        return;
    };
    let content_type = (!content_type.is_empty()).then_some(content_type);
    let Ok(request) = parse_request(content_type, body) else {
        return;
    };
    assert!(!request.token.is_empty(), "accepted an empty token");
    let media = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let (provider, token, audience, has_scope) = match media.as_str() {
        "application/json" => {
            // Members the request does not use are skipped unread, as serde skips them; a
            // `Value` of the whole body would also convert their numbers and refuse one beyond
            // f64's range (1e400), which is still JSON by RFC 8259's grammar (the target's
            // first finding of 2026-12-02 was this oracle, not the parser).
            #[derive(serde::Deserialize)]
            struct Plain {
                identity_provider: Option<Value>,
                token: Option<Value>,
                audience: Option<Value>,
            }
            #[derive(serde::Deserialize)]
            struct Scope {
                scope: Option<Value>,
            }
            serde_json::from_slice::<IgnoredAny>(body).expect("accepted a body that is not JSON");
            // A map, not the derived struct: that reads an array too.
            let members = serde_json::from_slice::<BTreeMap<String, IgnoredAny>>(body)
                .expect("accepted JSON that is not an object");
            if let Some(name) = members.keys().find(|name| !FIELDS.contains(&name.as_str())) {
                panic!("accepted an unknown member {name:?}");
            }
            let plain: Plain =
                serde_json::from_slice(body).expect("accepted JSON that serde_json refuses");
            let scope: Scope = serde_json::from_slice(body).expect("read above");
            let text =
                |value: &Option<Value>| value.as_ref().and_then(Value::as_str).map(str::to_owned);
            (
                text(&plain.identity_provider),
                text(&plain.token),
                text(&plain.audience),
                scope.scope.is_some(),
            )
        }
        "application/x-www-form-urlencoded" => {
            let mut count = BTreeMap::<String, usize>::new();
            for (key, _) in url::form_urlencoded::parse(body) {
                assert!(FIELDS.contains(&&*key), "accepted an unknown field {key:?}");
                *count.entry(key.into_owned()).or_default() += 1;
            }
            for (key, n) in &count {
                assert!(key == "scope" || *n == 1, "accepted {key:?} {n} times");
            }
            let last = |name: &str| {
                url::form_urlencoded::parse(body)
                    .filter(|(k, _)| k == name)
                    .last()
                    .map(|(_, v)| v.into_owned())
            };
            (
                last("identity_provider"),
                last("token"),
                last("audience"),
                count.contains_key("scope"),
            )
        }
        other => panic!("accepted a request with content type {other:?}"),
    };
    assert_eq!(provider.as_deref(), Some("maskinporten"));
    assert_eq!(token.as_deref(), Some(&*request.token), "a different token");
    assert_eq!(
        audience.as_deref(),
        request.audience.as_deref(),
        "a different audience"
    );
    assert!(
        audience.is_none_or(|a| !a.trim().is_empty()),
        "accepted an empty audience"
    );
    assert_eq!(
        has_scope,
        !request.scopes.is_empty(),
        "a `scope` that requires nothing, or scopes from nowhere"
    );
    assert!(
        request.scopes.iter().all(|s| !s.trim().is_empty()),
        "accepted an empty scope"
    );
}
