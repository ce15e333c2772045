//! `POST /api/v1/introspect`: the NAIS token sidecar's introspection API, for Maskinporten.
//!
//! Compatible with nais/texas: a JSON or form body with `identity_provider` (`maskinporten`)
//! and `token`; HTTP 200 with `{"active": true, ...every claim verbatim}` or `{"active": false,
//! "error": "..."}`; HTTP 400 `invalid_request` for malformed requests. portvakt adds, for
//! callers who want the policy applied here: optional `scope` (a space-separated string or an
//! array; all are required) and `audience`. An inactive answer also carries `error_code`, the
//! stable code of the reason (`expired`, `bad_signature`, ...).
//!
//! A request that could mean less than its sender meant is refused (400), never read
//! leniently: a field other than these four (a misspelt `scopes` would drop the scope check),
//! a field given twice (in a form only `scope` may repeat; in JSON no member may), a JSON body
//! that is not an object (serde's derived structs read an array positionally), and an empty
//! `scope` (`""`, `[]`, an empty element) or `audience`. `null` is an absent field, as before.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use memchr::memmem;
use portvakt::{Policy, ScopeRequirement, Validator};
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Map, Value};

use super::listener::FastRoute;
use super::metrics::Metrics;

/// The largest request body read; a token is at most 16 KiB by default. A request that
/// declares a larger `Content-Length` is answered 413 before any of its body is read, and on
/// HTTP/1.1 the connection is closed (`Connection: close`): the client's remaining bytes are
/// never read. A body without a declared length (chunked, or HTTP/2 without
/// `content-length`) is read up to this size, then refused the same way.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The one identity provider this sidecar validates.
pub const IDENTITY_PROVIDER: &str = "maskinporten";

/// Shared by the sidecar's handlers.
#[derive(Clone)]
pub struct AppState {
    /// The validator (shared keys, cache and refresh).
    pub validator: Validator,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// With `--upstream`: `/readyz` also needs the upstream to accept connections.
    pub upstream: Option<super::upstream_ready::UpstreamReadiness>,
}

/// What a caller asked to introspect. Borrows from the request body where it can: the token
/// is the largest part of every request, and copying it bought nothing. `scopes` is empty
/// only when the request had no `scope`, and `audience` is never empty (both are refused).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IntrospectRequest<'a> {
    /// The token.
    pub token: Cow<'a, str>,
    /// Extension: scopes that must all be granted.
    pub scopes: Vec<Cow<'a, str>>,
    /// Extension: a required audience.
    pub audience: Option<Cow<'a, str>>,
}

/// Why a request is malformed (answered 400 `invalid_request`, or 413).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("request body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// Neither JSON nor a form.
    #[error("{0}")]
    MediaType(String),
    /// The body does not parse.
    #[error("{0}")]
    Body(String),
    /// A field is missing or wrong.
    #[error("{0}")]
    Field(String),
}

/// A field of the request, as sent: JSON gives any type, a form only strings (a repeated form
/// field is a list). The type is judged later, per field, so the error can name the field.
#[derive(Debug, Default)]
enum Field<'a> {
    #[default]
    Absent,
    Str(Cow<'a, str>),
    Strings(Vec<Cow<'a, str>>),
    /// Anything else: a number, an object, an array holding more than strings.
    Other,
}

impl<'a> Field<'a> {
    fn push(&mut self, value: Cow<'a, str>) {
        *self = match std::mem::take(self) {
            Field::Absent => Field::Str(value),
            Field::Str(first) => Field::Strings(vec![first, value]),
            Field::Strings(mut all) => {
                all.push(value);
                Field::Strings(all)
            }
            Field::Other => Field::Other,
        };
    }

    /// A string or nothing; `null` is nothing.
    fn string(self, name: &str) -> Result<Option<Cow<'a, str>>, RequestError> {
        match self {
            Field::Absent => Ok(None),
            Field::Str(s) => Ok(Some(s)),
            Field::Strings(_) | Field::Other => {
                Err(RequestError::Field(format!("`{name}` must be a string")))
            }
        }
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Field<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<Field<'a>>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = Field<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Field<'a>, E> {
                Ok(Field::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Field<'a>, E> {
                Ok(Field::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Field<'a>, E> {
                Ok(Field::Str(Cow::Owned(v)))
            }
            fn visit_unit<E>(self) -> Result<Field<'a>, E> {
                Ok(Field::Absent)
            }
            fn visit_none<E>(self) -> Result<Field<'a>, E> {
                Ok(Field::Absent)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Field<'a>, E> {
                Ok(Field::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Field<'a>, E> {
                Ok(Field::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Field<'a>, E> {
                Ok(Field::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Field<'a>, E> {
                Ok(Field::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Field<'a>, A::Error> {
                let mut all = Vec::new();
                let mut only_strings = true;
                while let Some(item) = seq.next_element::<Field<'a>>()? {
                    match item {
                        Field::Str(s) => all.push(s),
                        _ => only_strings = false,
                    }
                }
                Ok(if only_strings {
                    Field::Strings(all)
                } else {
                    Field::Other
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Field<'a>, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Field::Other)
            }
        }
        deserializer.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

/// The fields a request may carry, in the order the refusal of another one lists them.
const FIELDS: [&str; 4] = ["identity_provider", "token", "scope", "audience"];

/// A request's fields, as sent (from a JSON object or a form).
#[derive(Default)]
struct Members<'a> {
    identity_provider: Field<'a>,
    token: Field<'a>,
    scope: Field<'a>,
    audience: Field<'a>,
    /// The first field that is none of [`FIELDS`], refused by [`checked`] (a misspelt
    /// `scopes` would otherwise drop the check it asked for).
    unknown: Option<Cow<'a, str>>,
}

/// A member's name in a JSON object: one of [`FIELDS`], or another (kept to name it).
enum Key<'a> {
    Known(usize),
    Unknown(Cow<'a, str>),
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Key<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<Key<'a>>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'a>, E> {
                Ok(match FIELDS.iter().position(|field| *field == v) {
                    Some(i) => Key::Known(i),
                    None => Key::Unknown(Cow::Borrowed(v)),
                })
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'a>, E> {
                // An escaped name: copied only when it is none of the fields.
                Ok(match FIELDS.iter().position(|field| *field == v) {
                    Some(i) => Key::Known(i),
                    None => Key::Unknown(Cow::Owned(v.to_owned())),
                })
            }
        }
        deserializer.deserialize_identifier(Visitor(std::marker::PhantomData))
    }
}

/// What [`read_json`] asks serde_json for: an object (`deserialize_map`, so an array is not
/// read positionally as a derived struct would), each field at most once (a repeated one is
/// serde's `duplicate field`), the first other member kept to be named.
impl<'de: 'a, 'a> serde::Deserialize<'de> for Members<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<Members<'a>>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a JSON object, {EXAMPLE_JSON}")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members<'a>, A::Error> {
                let mut members = Members::default();
                let mut seen = [false; FIELDS.len()];
                while let Some(key) = map.next_key::<Key<'a>>()? {
                    let i = match key {
                        Key::Known(i) => i,
                        Key::Unknown(name) => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                            members.unknown.get_or_insert(name);
                            continue;
                        }
                    };
                    if std::mem::replace(&mut seen[i], true) {
                        return Err(serde::de::Error::duplicate_field(FIELDS[i]));
                    }
                    *members.field(i) = map.next_value()?;
                }
                Ok(members)
            }
        }
        deserializer.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

impl<'a> Members<'a> {
    /// The field named `FIELDS[i]`.
    fn field(&mut self, i: usize) -> &mut Field<'a> {
        match i {
            0 => &mut self.identity_provider,
            1 => &mut self.token,
            2 => &mut self.scope,
            _ => &mut self.audience,
        }
    }
}

/// The request body the error messages show.
const EXAMPLE_JSON: &str = r#"{"identity_provider":"maskinporten","token":"..."}"#;

/// The JSON bodies nearly every client sends, byte for byte, around the token: the NAIS
/// how-to's and Go's `json.Marshal` of texas' request struct (`identity_provider` first), and
/// the same two members the other way round.
const PLAIN_JSON: [(&[u8], &[u8]); 2] = [
    (
        br#"{"identity_provider":"maskinporten","token":""#,
        br#""}"#,
    ),
    (
        br#"{"token":""#,
        br#"","identity_provider":"maskinporten"}"#,
    ),
];

/// The token of a [`PLAIN_JSON`] body whose token is ASCII from `!` to DEL other than `"` and
/// `\`, or `None` (then serde_json reads the body).
///
/// Why by hand: reading such a body with serde_json took about 3,300 instructions per request
/// (callgrind, a 750-byte token: its escape scan of the token, and the UTF-8 check of the whole
/// body), more than a third of what the sidecar spends beyond its HTTP floor. Why it is
/// exact: with no `"` in it, the token ends where the fixed text resumes, so the body is one
/// object with exactly these two members, the text is ASCII and so UTF-8, and without `\` or
/// a control character the string's JSON text is its value. serde_json reads every such body
/// to the same request (the unit tests compare the two on each shape and its near misses, and
/// the `introspect` fuzz target checks `parse_request` against plain serde_json); every other
/// body, an escape or a space anywhere, goes to serde_json.
fn plain_json_token(body: &[u8]) -> Option<&str> {
    let token = plain_json_middle(body)?;
    if is_plain(token) {
        std::str::from_utf8(token).ok()
    } else {
        None
    }
}

/// The bytes between a [`PLAIN_JSON`] body's fixed text, if there are any: its token, when
/// they are [`is_plain`].
fn plain_json_middle(body: &[u8]) -> Option<&[u8]> {
    PLAIN_JSON
        .iter()
        .find_map(|(head, tail)| body.strip_prefix(*head)?.strip_suffix(*tail))
        .filter(|token| !token.is_empty())
}

/// Whether these bytes, between a JSON string's quotes, mean themselves: ASCII from `!` to
/// DEL other than `"` and `\`.
fn is_plain(token: &[u8]) -> bool {
    // A fold, not `all`: without an early exit the compiler checks 16 bytes at a time. As
    // `i8`, the bytes above `' '` are 0x21 to 0x7f: no control character, no space, no byte
    // of a multi-byte character.
    token.iter().fold(true, |plain, &b| {
        plain & (b as i8 > b' ' as i8) & (b != b'"') & (b != b'\\')
    })
}

/// The media type of a `Content-Type`, without parameters (`""` when there is none).
fn media_type(content_type: Option<&str>) -> &str {
    content_type
        .map(|ct| ct.split(';').next().unwrap_or("").trim())
        .unwrap_or_default()
}

/// Parses a request body by its `Content-Type`: a JSON object, or a form (`scope` may repeat
/// there, no other field). See the module's documentation for what is refused.
pub fn parse_request<'a>(
    content_type: Option<&str>,
    body: &'a [u8],
) -> Result<IntrospectRequest<'a>, RequestError> {
    let media = media_type(content_type);
    let parsed = if media.eq_ignore_ascii_case("application/json") {
        if let Some(token) = plain_json_token(body) {
            return Ok(IntrospectRequest {
                token: Cow::Borrowed(token),
                scopes: Vec::new(),
                audience: None,
            });
        }
        read_json(body)?
    } else if media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        let mut form = Members::default();
        for (key, value) in url::form_urlencoded::parse(body) {
            let field = match &*key {
                "scope" => {
                    form.scope.push(value);
                    continue;
                }
                "identity_provider" => &mut form.identity_provider,
                "token" => &mut form.token,
                "audience" => &mut form.audience,
                _ => {
                    form.unknown.get_or_insert(key);
                    continue;
                }
            };
            if !matches!(field, Field::Absent) {
                return Err(RequestError::Field(format!(
                    "`{key}` is given more than once in the form; give it once (only `scope` may repeat)"
                )));
            }
            *field = Field::Str(value);
        }
        if matches!(
            (&form.token, &form.identity_provider),
            (Field::Absent, Field::Absent)
        ) && body.first() == Some(&b'{')
        {
            return Err(RequestError::MediaType(
                "the body looks like JSON but was sent as application/x-www-form-urlencoded (curl -d does that): add the header Content-Type: application/json".to_owned(),
            ));
        }
        form
    } else if media.is_empty() {
        return Err(RequestError::MediaType(
            "missing Content-Type: send application/json or application/x-www-form-urlencoded"
                .to_owned(),
        ));
    } else {
        return Err(RequestError::MediaType(format!(
            "unsupported Content-Type `{}`: send application/json or application/x-www-form-urlencoded",
            media.to_ascii_lowercase()
        )));
    };
    checked(parsed)
}

/// A JSON body's members, by serde_json.
fn read_json(body: &[u8]) -> Result<Members<'_>, RequestError> {
    // JSON is UTF-8 (RFC 8259 section 8.1). serde_json checks it only in the strings it
    // keeps, so a byte that is not UTF-8 in an ignored member would be accepted (found by
    // the `introspect` fuzz target); checking the whole body first refuses it.
    let text = std::str::from_utf8(body).map_err(|e| {
        RequestError::Body(format!(
            "request body is not UTF-8 (byte {}), so not JSON",
            e.valid_up_to()
        ))
    })?;
    serde_json::from_str::<Members>(text).map_err(|e| {
        if text.trim_start().starts_with('[') {
            // serde would call it a sequence.
            return RequestError::Body(format!(
                "request body is a JSON array; send a JSON object, {EXAMPLE_JSON}"
            ));
        }
        RequestError::Body(format!(
            "request body is not a JSON object with string fields: {e}"
        ))
    })
}

/// The request the members make, or what is wrong with them.
fn checked(parsed: Members<'_>) -> Result<IntrospectRequest<'_>, RequestError> {
    if let Some(name) = parsed.unknown {
        return Err(unknown_field(&name));
    }
    match parsed.identity_provider.string("identity_provider")? {
        None => {
            return Err(RequestError::Field(format!(
                "missing `identity_provider`; this sidecar serves `{IDENTITY_PROVIDER}`"
            )));
        }
        Some(p) if p == IDENTITY_PROVIDER => {}
        Some(p) => {
            return Err(RequestError::Field(format!(
                "identity provider `{}` is not supported here; this sidecar validates `{IDENTITY_PROVIDER}` tokens",
                p.chars().take(40).collect::<String>()
            )));
        }
    }
    let token = parsed
        .token
        .string("token")?
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RequestError::Field("missing `token`".to_owned()))?;
    // A `scope` that is there but names no scope is refused, not read as "no scope
    // required": whoever sent it meant to require one.
    let empty_scope = |what: &str| {
        RequestError::Field(format!(
            "`scope` {what}; name the scopes the token must have, or leave `scope` out to require none"
        ))
    };
    let scopes: Vec<Cow<'_, str>> = match parsed.scope {
        Field::Absent => Vec::new(),
        Field::Str(s) => {
            let scopes: Vec<_> = match s {
                Cow::Borrowed(s) => s.split_whitespace().map(Cow::Borrowed).collect(),
                Cow::Owned(s) => s
                    .split_whitespace()
                    .map(|s| Cow::Owned(s.to_owned()))
                    .collect(),
            };
            if scopes.is_empty() {
                return Err(empty_scope("is empty"));
            }
            scopes
        }
        Field::Strings(all) => {
            if all.is_empty() {
                return Err(empty_scope("is an empty array"));
            }
            if all.iter().any(|s| s.trim().is_empty()) {
                return Err(empty_scope("names an empty scope"));
            }
            all
        }
        Field::Other => {
            return Err(RequestError::Field(
                "`scope` must be a string or an array of strings".to_owned(),
            ));
        }
    };
    let audience = parsed.audience.string("audience")?;
    if audience.as_ref().is_some_and(|a| a.trim().is_empty()) {
        return Err(RequestError::Field(
            "`audience` is empty; give the audience the token must have, or leave `audience` out to require none".to_owned(),
        ));
    }
    Ok(IntrospectRequest {
        token,
        scopes,
        audience,
    })
}

/// The refusal of a field that is none of [`FIELDS`]: it names the field (its first 40
/// characters), what it may have meant, and the fields there are.
fn unknown_field(name: &str) -> RequestError {
    // The same name but for case, `-` for `_`, a plural or a missing `_`: `scopes`, `Token`,
    // `identityProvider`, `identity-provider`, `audiences`.
    let loose = |name: &str| -> String {
        let name: String = name
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect();
        name.strip_suffix('s').map(str::to_owned).unwrap_or(name)
    };
    let meant = FIELDS
        .iter()
        .find(|field| loose(field) == loose(name))
        .map(|field| format!(" (did you mean `{field}`?)"))
        .unwrap_or_default();
    RequestError::Field(format!(
        "unknown field `{}`{meant}: a request has `identity_provider` and `token`, and may have `scope` and `audience`; nothing else is accepted",
        name.chars().take(40).collect::<String>()
    ))
}

/// `{"active": true, ...claims}` without copying the claims, and with exactly one `active`
/// key even when the token carries a claim of that name.
struct Active<'a>(&'a Map<String, Value>);

impl Serialize for Active<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("active", &true)?;
        for (key, value) in self.0 {
            if key != "active" {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

/// The answer for an active token: `{"active":true, ...claims}`.
///
/// The payload is a JSON object that passed the validator's strict parse, so when it cannot
/// hold an `active` member of its own (the text `"active"` nowhere, and no escape that could
/// spell it) its members are copied as they are: one copy of contiguous bytes, instead of a
/// walk over a map spread across the heap (which, with thousands of cached tokens, is mostly
/// cache misses). Otherwise the map is written without the token's `active`.
fn active_body(claims: &portvakt::Claims) -> serde_json::Result<Vec<u8>> {
    // memchr's SIMD searches: `str::contains` took about 600 instructions per answer for a
    // 400-byte payload (callgrind), a tenth of what the sidecar spends beyond its floor.
    static ACTIVE: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"\"active\""));
    let payload = claims.payload();
    let members = payload.trim_start().strip_prefix('{');
    if let Some(members) = members
        && memchr::memchr(b'\\', payload.as_bytes()).is_none()
        && ACTIVE.find(payload.as_bytes()).is_none()
    {
        let mut body = Vec::with_capacity(payload.len() + 16);
        body.extend_from_slice(b"{\"active\":true");
        if !members.trim_start().starts_with('}') {
            body.push(b',');
        }
        body.extend_from_slice(members.as_bytes());
        return Ok(body);
    }
    serde_json::to_vec(&Active(claims.raw()))
}

#[derive(Serialize)]
struct Inactive<'a> {
    active: bool,
    error: &'a str,
    error_code: &'a str,
}

#[derive(Serialize)]
struct InvalidRequest<'a> {
    error: &'a str,
    error_description: &'a str,
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The handler, for the router.
pub async fn introspect(State(state): State<AppState>, request: Request) -> Response {
    answer(&state, request).await
}

/// The same endpoint as a [`FastRoute`], answered ahead of the router (see there why).
pub fn fast_route(state: AppState) -> FastRoute {
    let state = Arc::new(state);
    FastRoute::new(
        Method::POST,
        PATH,
        move |request: http::Request<hyper::body::Incoming>| {
            let state = Arc::clone(&state);
            Box::pin(async move { answer(&state, request).await })
        },
    )
}

/// The path of the endpoint.
pub const PATH: &str = "/api/v1/introspect";

/// Why a request body could not be read whole.
enum BodyError<E> {
    /// More than the limit arrived.
    TooLarge,
    /// The body's own error: the client went away or broke the framing.
    Read(E),
}

/// Reads a whole body of at most `limit` bytes (trailers are ignored). A body that comes as one
/// piece, as a small request's does, is that piece's bytes, not copied; more pieces are joined.
///
/// Written here instead of `Limited::new(body, limit).collect()`: that queues every piece in a
/// `VecDeque` (allocated and grown for the one piece), counts through a second body layer and
/// copies the pieces out again, 470 of the 15,250 instructions of an introspection with a
/// cached token (callgrind; docs/BENCHMARKS.md, "The introspection body, read in one piece").
/// The limit is the same: an error as soon as the pieces add up to more than `limit`.
async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, BodyError<B::Error>>
where
    B: hyper::body::Body<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
    let mut first = Bytes::new();
    let mut joined: Vec<u8> = Vec::new();
    let mut read = 0usize;
    while !body.is_end_stream() {
        let Some(frame) = body.frame().await else {
            break;
        };
        let Ok(data) = frame.map_err(BodyError::Read)?.into_data() else {
            continue;
        };
        read = read.saturating_add(data.len());
        if read > limit {
            return Err(BodyError::TooLarge);
        }
        if first.is_empty() && joined.is_empty() {
            first = data;
        } else {
            if joined.is_empty() {
                joined.extend_from_slice(&first);
            }
            joined.extend_from_slice(&data);
        }
    }
    Ok(if joined.is_empty() {
        first
    } else {
        Bytes::from(joined)
    })
}

/// Reads the request and answers it, whichever way it came.
async fn answer<B>(state: &AppState, request: http::Request<B>) -> Response
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (parts, body) = request.into_parts();
    if body.size_hint().lower() > MAX_BODY_BYTES as u64 {
        // Declared too large: refused before a byte of it is read.
        return too_large(state, parts.version);
    }
    let body: Bytes = match read_body(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return too_large(state, parts.version),
        Err(BodyError::Read(e)) => {
            // The client went away or broke the framing: nobody to answer, but say so.
            tracing::debug!(error = %e, "could not read an introspection request body");
            return request_error(
                state,
                RequestError::Body(format!("could not read the request body: {e}")),
            );
        }
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if media_type(content_type).eq_ignore_ascii_case("application/json")
        && let Some(token) = plain_json_middle(&body)
    {
        // The plain body's token, given to the validator as bytes: a cached token is found by
        // them, without the UTF-8 check and `is_plain` (about 1,100 instructions for a
        // 750-byte token). When it validates, the bytes are a token's (strict base64url and
        // dots), so `is_plain` holds and `parse_request` would have read exactly this token
        // with no scope or audience. When it is refused and `is_plain` holds, the same
        // holds: the answer is the one the full read would give. Otherwise the bytes hold
        // something outside base64url, so the validator refused them while decoding,
        // before any key lookup, refresh or signature check, and the body is read in full
        // below as any other: a 400, or a token that serde_json unescaped.
        let started = Instant::now();
        let result = state
            .validator
            .validate_bytes_with(token, &Policy::new())
            .await;
        if result.is_ok() || is_plain(token) {
            debug_assert!(is_plain(token), "a valid token is base64url and dots");
            return respond(state, result, started.elapsed());
        }
    }
    let request = match parse_request(content_type, &body) {
        Ok(request) => request,
        Err(e) => return request_error(state, e),
    };
    let mut policy = Policy::new();
    if !request.scopes.is_empty() {
        policy = policy.scopes(ScopeRequirement::all_of(request.scopes));
    }
    if let Some(audience) = request.audience {
        policy = policy.require_audience(audience);
    }
    let started = Instant::now();
    let result = state.validator.validate_with(&request.token, &policy).await;
    respond(state, result, started.elapsed())
}

/// The answer to a validation that took `elapsed`, counted.
fn respond(
    state: &AppState,
    result: Result<portvakt::VerifiedToken, portvakt::ValidationError>,
    elapsed: std::time::Duration,
) -> Response {
    let body = match &result {
        Ok(verified) => {
            state.metrics.validation("valid", elapsed);
            state.metrics.request("introspect", "active");
            active_body(verified.claims())
        }
        Err(e) => {
            state.metrics.validation(e.code(), elapsed);
            state.metrics.request("introspect", "inactive");
            tracing::debug!(code = e.code(), "token inactive");
            serde_json::to_vec(&Inactive {
                active: false,
                error: &e.to_string(),
                error_code: e.code(),
            })
        }
    };
    match body {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => {
            tracing::error!(%e, "could not serialize an introspection answer");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// 413, closing an HTTP/1.1 connection: the rest of the body is never read, so the connection
/// cannot carry another request. (HTTP/2 resets the stream instead; `Connection` is not allowed
/// there.)
fn too_large(state: &AppState, version: http::Version) -> Response {
    let mut response = request_error(state, RequestError::TooLarge);
    if version < http::Version::HTTP_2 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn request_error(state: &AppState, error: RequestError) -> Response {
    let (status, outcome) = match error {
        RequestError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        _ => (StatusCode::BAD_REQUEST, "bad_request"),
    };
    state.metrics.request("introspect", outcome);
    let description = error.to_string();
    let body = serde_json::to_vec(&InvalidRequest {
        error: "invalid_request",
        error_description: &description,
    })
    .unwrap_or_default();
    json_response(status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body of these pieces (each a data frame, or the error `Err` stands for), then
    /// trailers.
    fn pieces(
        pieces: &[Result<&'static [u8], &'static str>],
    ) -> impl hyper::body::Body<Data = Bytes, Error = std::io::Error> {
        let mut frames: Vec<Result<hyper::body::Frame<Bytes>, std::io::Error>> = pieces
            .iter()
            .map(|piece| match piece {
                Ok(data) => Ok(hyper::body::Frame::data(Bytes::from_static(data))),
                Err(e) => Err(std::io::Error::other(*e)),
            })
            .collect();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-trailer", HeaderValue::from_static("ignored"));
        frames.push(Ok(hyper::body::Frame::trailers(trailers)));
        http_body_util::StreamBody::new(futures_util::stream::iter(frames))
    }

    fn read(
        body: impl hyper::body::Body<Data = Bytes, Error = std::io::Error>,
        limit: usize,
    ) -> Result<Bytes, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(read_body(body, limit))
            .map_err(|e| match e {
                BodyError::TooLarge => "too large".to_owned(),
                BodyError::Read(e) => format!("read: {e}"),
            })
    }

    #[test]
    fn a_body_in_one_piece_is_that_piece_not_a_copy() {
        static PIECE: &[u8] = br#"{"token":"t"}"#;
        let body = read(pieces(&[Ok(PIECE)]), 64).unwrap();
        assert_eq!(body.as_ref(), PIECE);
        assert_eq!(body.as_ptr(), PIECE.as_ptr(), "the piece itself");
        // An empty piece before it changes nothing.
        let body = read(pieces(&[Ok(b""), Ok(PIECE)]), 64).unwrap();
        assert_eq!(body.as_ptr(), PIECE.as_ptr());
        assert_eq!(read(pieces(&[]), 64).unwrap(), Bytes::new());
    }

    #[test]
    fn pieces_are_joined_in_order_and_trailers_ignored() {
        let body = read(
            pieces(&[Ok(b"{\"tok"), Ok(b""), Ok(b"en\":"), Ok(b"\"t\"}")]),
            64,
        );
        assert_eq!(body.unwrap().as_ref(), br#"{"token":"t"}"#);
    }

    #[test]
    fn the_limit_counts_every_piece() {
        assert_eq!(
            read(pieces(&[Ok(b"12345"), Ok(b"678")]), 8)
                .unwrap()
                .as_ref(),
            b"12345678"
        );
        assert_eq!(
            read(pieces(&[Ok(b"12345"), Ok(b"6789")]), 8).unwrap_err(),
            "too large"
        );
        assert_eq!(
            read(pieces(&[Ok(b"123456789")]), 8).unwrap_err(),
            "too large"
        );
    }

    #[test]
    fn a_broken_body_is_a_read_error() {
        assert_eq!(
            read(pieces(&[Ok(b"{\"to"), Err("connection reset")]), 64).unwrap_err(),
            "read: connection reset"
        );
    }

    const JSON: Option<&str> = Some("application/json");
    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    #[test]
    fn json_that_is_not_utf8_is_refused_even_in_an_ignored_member() {
        let body = b"{\"identity_provider\":\"maskinporten\",\"x\":\"\xeb\",\"token\":\"t\"}";
        let error = parse_request(JSON, body).unwrap_err();
        assert!(error.to_string().contains("not UTF-8"), "{error}");
    }

    #[test]
    fn json_and_form_requests() {
        let r =
            parse_request(JSON, br#"{"identity_provider":"maskinporten","token":"t"}"#).unwrap();
        assert_eq!(r.token, "t");
        let r = parse_request(Some("application/json; charset=utf-8"), br#"{"identity_provider":"maskinporten","token":"t","scope":"a b","audience":"https://x/"}"#).unwrap();
        assert_eq!(r.scopes, ["a", "b"]);
        assert_eq!(r.audience.as_deref(), Some("https://x/"));
        let r = parse_request(
            JSON,
            br#"{"identity_provider":"maskinporten","token":"t","scope":["a"]}"#,
        )
        .unwrap();
        assert_eq!(r.scopes, ["a"]);
        let r = parse_request(
            FORM,
            b"identity_provider=maskinporten&token=t%2Bx&scope=a&scope=b",
        )
        .unwrap();
        assert_eq!((&*r.token, r.scopes.len()), ("t+x", 2));
        // null is no value; an escaped string is unescaped; the token is borrowed otherwise.
        let body =
            br#"{"identity_provider":"maskinporten","token":"t.u","scope":null,"audience":null}"#;
        let r = parse_request(JSON, body).unwrap();
        assert_eq!((&*r.token, r.scopes.len(), r.audience), ("t.u", 0, None));
        let body = br#"{"identity_provider":"maskinporten","token":"abc"}"#;
        let r = parse_request(Some("Application/JSON"), body).unwrap();
        assert!(matches!(r.token, Cow::Borrowed("abc")));
        let r = parse_request(FORM, b"identity_provider=maskinporten&token=t&scope=a+b").unwrap();
        assert_eq!(r.scopes, ["a", "b"]);
    }

    #[test]
    fn requests_that_would_mean_less_than_meant_are_refused() {
        let err = |ct, body: &[u8]| parse_request(ct, body).unwrap_err().to_string();
        let accepted = "a request has `identity_provider` and `token`, and may have `scope` and `audience`; nothing else is accepted";
        // A field that is none of the four: named, with what it may have meant.
        assert_eq!(
            err(
                JSON,
                br#"{"identity_provider":"maskinporten","token":"t","scopes":"a"}"#
            ),
            format!("unknown field `scopes` (did you mean `scope`?): {accepted}")
        );
        assert_eq!(
            err(JSON, br#"{"identityProvider":"maskinporten","token":"t"}"#),
            format!(
                "unknown field `identityProvider` (did you mean `identity_provider`?): {accepted}"
            )
        );
        assert_eq!(
            err(
                JSON,
                br#"{"identity_provider":"maskinporten","token":"t","x":null}"#
            ),
            format!("unknown field `x`: {accepted}")
        );
        // Before a missing token: the misspelt name is what to fix.
        assert_eq!(
            err(
                JSON,
                br#"{"identity_provider":"maskinporten","tok\u0065ns":"t"}"#
            ),
            format!("unknown field `tokens` (did you mean `token`?): {accepted}")
        );
        // An escaped name of a field is that field.
        let r = parse_request(
            JSON,
            br#"{"identity_provider":"maskinporten","tok\u0065n":"t"}"#,
        );
        assert_eq!(r.unwrap().token, "t");
        assert_eq!(
            err(FORM, b"identity_provider=maskinporten&token=t&scopes=a"),
            format!("unknown field `scopes` (did you mean `scope`?): {accepted}")
        );
        assert_eq!(
            err(FORM, b"identity_provider=maskinporten&token=t&=a"),
            format!("unknown field ``: {accepted}")
        );
        let long = format!(
            r#"{{"identity_provider":"maskinporten","token":"t","{}":1}}"#,
            "x".repeat(100)
        );
        assert!(
            err(JSON, long.as_bytes()).starts_with(&format!("unknown field `{}`:", "x".repeat(40)))
        );
        // A repeated field in a form; `scope` may repeat.
        for (body, field) in [
            (
                &b"identity_provider=maskinporten&token=abc&token=t"[..],
                "token",
            ),
            (
                b"identity_provider=x&identity_provider=maskinporten&token=t",
                "identity_provider",
            ),
            (
                b"identity_provider=maskinporten&token=t&audience=a&audience=b",
                "audience",
            ),
        ] {
            assert_eq!(
                err(FORM, body),
                format!(
                    "`{field}` is given more than once in the form; give it once (only `scope` may repeat)"
                )
            );
        }
        // A body that is not an object.
        let array = "request body is a JSON array; send a JSON object, {\"identity_provider\":\"maskinporten\",\"token\":\"...\"}";
        assert_eq!(err(JSON, br#"["maskinporten","t"]"#), array);
        assert_eq!(err(JSON, br#" [ "maskinporten", "t", "a", "b" ]"#), array);
        for body in [&br#""maskinporten""#[..], b"1", b"null", b"true"] {
            let text = err(JSON, body);
            assert!(
                text.starts_with(
                    "request body is not a JSON object with string fields: invalid type: "
                ) && text.contains(
                    r#"expected a JSON object, {"identity_provider":"maskinporten","token":"..."}"#
                ),
                "{text}"
            );
        }
        // An empty scope or audience.
        let empty_scope = |what: &str| {
            format!(
                "`scope` {what}; name the scopes the token must have, or leave `scope` out to require none"
            )
        };
        for (ct, body, what) in [
            (
                JSON,
                &br#"{"identity_provider":"maskinporten","token":"t","scope":""}"#[..],
                "is empty",
            ),
            (
                JSON,
                br#"{"identity_provider":"maskinporten","token":"t","scope":" "}"#,
                "is empty",
            ),
            (
                JSON,
                br#"{"identity_provider":"maskinporten","token":"t","scope":[]}"#,
                "is an empty array",
            ),
            (
                JSON,
                br#"{"identity_provider":"maskinporten","token":"t","scope":["a",""]}"#,
                "names an empty scope",
            ),
            (
                FORM,
                b"identity_provider=maskinporten&token=t&scope=",
                "is empty",
            ),
            (
                FORM,
                b"identity_provider=maskinporten&token=t&scope=a&scope=+",
                "names an empty scope",
            ),
        ] {
            assert_eq!(
                err(ct, body),
                empty_scope(what),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let empty_audience = "`audience` is empty; give the audience the token must have, or leave `audience` out to require none";
        for (ct, body) in [
            (
                JSON,
                &br#"{"identity_provider":"maskinporten","token":"t","audience":""}"#[..],
            ),
            (
                JSON,
                br#"{"identity_provider":"maskinporten","token":"t","audience":" "}"#,
            ),
            (FORM, b"identity_provider=maskinporten&token=t&audience="),
        ] {
            assert_eq!(err(ct, body), empty_audience);
        }
    }

    /// The request serde_json reads from a JSON body, with the hand-read path left out.
    fn by_serde(body: &[u8]) -> Result<IntrospectRequest<'_>, RequestError> {
        read_json(body).and_then(checked)
    }

    const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzY29wZSI6ImEifQ.c2lnLV8";

    #[test]
    fn plain_bodies_are_read_by_hand_as_serde_json_reads_them() {
        for body in [
            format!(r#"{{"identity_provider":"maskinporten","token":"{TOKEN}"}}"#),
            format!(r#"{{"token":"{TOKEN}","identity_provider":"maskinporten"}}"#),
            "{\"token\":\"!#$%&'()*+,/:;<=>?@[]^`{|}~\u{7f}\",\"identity_provider\":\"maskinporten\"}"
                .to_owned(),
        ] {
            let token = plain_json_token(body.as_bytes()).expect(&body);
            let serde = by_serde(body.as_bytes()).map(|r| r.token);
            assert_eq!(Ok(token), serde.as_deref(), "{body}");
            let request = parse_request(JSON, body.as_bytes()).unwrap();
            assert!(matches!(request.token, Cow::Borrowed(t) if t == token));
            assert_eq!((request.scopes.len(), request.audience), (0, None));
        }
    }

    #[test]
    fn near_misses_of_a_plain_body_go_to_serde_json() {
        type Read<'a> = Result<IntrospectRequest<'a>, RequestError>;
        fn miss(body: &str) -> (Read<'_>, Read<'_>) {
            assert_eq!(plain_json_token(body.as_bytes()), None, "{body}");
            (
                parse_request(JSON, body.as_bytes()),
                by_serde(body.as_bytes()),
            )
        }
        for token in [
            r"a\u0041",                     // an escape: the value is `aA`
            r#"a\"b"#,                      // an escaped quote
            "a\tb",                         // a control character: not JSON
            "a b",                          // a space
            "a\u{e9}b",                     // not ASCII
            "",                             // no token
            r#"a","identity_provider":"x"#, // a quote: more members than two
        ] {
            let body = format!(r#"{{"identity_provider":"maskinporten","token":"{token}"}}"#);
            let (read, serde) = miss(&body);
            assert_eq!(read, serde, "{body}");
        }
        let (read, _) = miss(r#"{"identity_provider":"maskinporten","token":"a\u0041"}"#);
        assert_eq!(read.unwrap().token, "aA");
        let (read, _) =
            miss(r#"{"token":"a","identity_provider":"x","identity_provider":"maskinporten"}"#);
        assert!(read.unwrap_err().to_string().contains("duplicate field"));
        let (read, _) = miss("{\"identity_provider\":\"maskinporten\",\"token\":\"a\tb\"}");
        assert!(read.is_err());
        for body in [
            r#" {"identity_provider":"maskinporten","token":"t"}"#,
            r#"{"identity_provider":"maskinporten","token":"t"} "#,
            r#"{"identity_provider": "maskinporten","token":"t"}"#,
            r#"{"identity_provider":"Maskinporten","token":"t"}"#,
            r#"{"identity_provider":"maskinporten","token":"t","scope":"a"}"#,
            r#"{"identity_provider":"maskinporten","token":"t"}}"#,
        ] {
            let (read, serde) = miss(body);
            assert_eq!(read, serde, "{body}");
        }
    }

    #[test]
    fn any_body_the_hand_read_path_takes_serde_json_reads_the_same() {
        // Each plain body with one or two bytes replaced, at random (a fixed seed): wherever
        // the hand-read path answers, serde_json answers the same.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut taken = 0;
        for (head, tail) in PLAIN_JSON {
            let body = [head, b"t.u-_v", tail].concat();
            for _ in 0..20_000 {
                let mut body = body.clone();
                for _ in 0..=(next() % 2) {
                    let at = next() as usize % body.len();
                    // Mostly the bytes JSON gives meaning to, sometimes any byte.
                    let special = b"\"\\:,{} \t\x00ua";
                    body[at] = match next() % 3 {
                        0 => next() as u8,
                        _ => special[next() as usize % special.len()],
                    };
                }
                if let Some(token) = plain_json_token(&body) {
                    taken += 1;
                    let serde = by_serde(&body).map(|r| r.token);
                    assert_eq!(
                        Ok(token),
                        serde.as_deref(),
                        "{}",
                        String::from_utf8_lossy(&body)
                    );
                }
            }
        }
        // The replaced byte fell in the token, or replaced a byte with itself.
        assert!(taken > 1_000, "the hand-read path took only {taken} bodies");
    }

    #[test]
    fn malformed_requests_say_what_to_fix() {
        let err = |ct, body: &[u8]| parse_request(ct, body).unwrap_err().to_string();
        assert!(err(JSON, b"{").contains("not a JSON object"));
        assert_eq!(
            err(JSON, br#"{"identity_provider":"maskinporten"}"#),
            "missing `token`"
        );
        assert_eq!(
            err(JSON, br#"{"identity_provider":"maskinporten","token":""}"#),
            "missing `token`"
        );
        assert_eq!(
            err(JSON, br#"{"identity_provider":"maskinporten","token":1}"#),
            "`token` must be a string"
        );
        assert!(
            err(JSON, br#"{"identity_provider":"azuread","token":"t"}"#)
                .contains("`azuread` is not supported")
        );
        assert!(err(JSON, br#"{"token":"t"}"#).contains("missing `identity_provider`"));
        assert_eq!(
            err(
                JSON,
                br#"{"identity_provider":"maskinporten","token":{"a":1}}"#
            ),
            "`token` must be a string"
        );
        assert_eq!(
            err(
                JSON,
                br#"{"identity_provider":"maskinporten","token":["t"]}"#
            ),
            "`token` must be a string"
        );
        assert_eq!(
            err(
                JSON,
                br#"{"identity_provider":"maskinporten","token":"t","scope":["a",null]}"#
            ),
            "`scope` must be a string or an array of strings"
        );
        assert_eq!(
            err(
                JSON,
                br#"{"identity_provider":"maskinporten","token":"t","scope":7}"#
            ),
            "`scope` must be a string or an array of strings"
        );
        assert_eq!(
            err(
                JSON,
                br#"{"identity_provider":"maskinporten","token":"t","audience":true}"#
            ),
            "`audience` must be a string"
        );
        assert!(
            err(
                JSON,
                br#"{"identity_provider":"maskinporten","token":"t","token":"u"}"#
            )
            .contains("duplicate field `token`")
        );
        assert!(err(None, b"{}").contains("missing Content-Type"));
        assert!(err(Some("text/plain"), b"x").contains("unsupported Content-Type `text/plain`"));
        assert!(
            err(FORM, br#"{"identity_provider":"maskinporten","token":"t"}"#)
                .contains("Content-Type: application/json")
        );
    }

    #[test]
    fn active_answers_copy_the_payload_or_drop_the_tokens_own_active() {
        let read = |payload: &str| {
            let claims = portvakt::Claims::from_payload(payload).unwrap();
            let body = active_body(&claims).unwrap();
            serde_json::from_slice::<Value>(&body).unwrap()
        };
        assert_eq!(
            read(r#"{"scope":"a","exp":1}"#),
            serde_json::json!({"active": true, "scope": "a", "exp": 1})
        );
        assert_eq!(read(" { } "), serde_json::json!({"active": true}));
        assert_eq!(
            read("{ \"scope\" : \"a\" }"),
            serde_json::json!({"active": true, "scope": "a"})
        );
        assert_eq!(
            read(r#"{"active":false,"scope":"a"}"#),
            serde_json::json!({"active": true, "scope": "a"})
        );
        assert_eq!(
            read(r#"{"\u0061ctive":false,"scope":"a"}"#),
            serde_json::json!({"active": true, "scope": "a"})
        );
        assert_eq!(
            read(r#"{"status":"active"}"#),
            serde_json::json!({"active": true, "status": "active"})
        );
    }

    #[test]
    fn active_answer_has_one_active_key() {
        let mut claims = Map::new();
        claims.insert("active".into(), Value::Bool(false));
        claims.insert("scope".into(), Value::String("a".into()));
        let text = serde_json::to_string(&Active(&claims)).unwrap();
        assert_eq!(text, r#"{"active":true,"scope":"a"}"#);
    }
}
