//! What the upstream receives, and what the client gets back: every header rule of the proxy,
//! applied to each request in the order of this table (by `HeaderRules::to_upstream`; the
//! upstream's answer gets `HeaderRules::to_client`).
//!
//! The request otherwise goes on as sent: the same method, path and query (never rewritten),
//! body (streamed, never buffered) and `Authorization` header (unchanged).
//!
//! | # | rule | headers | why |
//! |---|------|---------|-----|
//! | 1 | note whether the client's `TE` asks for `trailers` | `TE` | rule 3 needs it after rule 2 removed `TE` |
//! | 2 | remove hop-by-hop headers, and their names from `Trailer`'s list | `Connection` and every header it names (never `Authorization` or `Host`), `Keep-Alive`, `Proxy-Connection`, `Proxy-Authenticate`, `Proxy-Authorization`, `TE`, `Transfer-Encoding`, `Upgrade`, every `Proxy-*` and httpoxy's `Proxy` | they describe the client's connection, not the request (RFC 9110 section 7.6.1); WebSocket and other upgrades are not proxied. `Trailer` is not one (it describes the message, and over HTTP/1.1 only the trailers it lists are sent) |
//! | 3 | pass `TE: trailers` on (as exactly that) when the client sent it; to an HTTP/1.1 upstream with `Connection: te` | `TE`, `Connection` | the proxy passes trailers on, and servers send them only to a request that accepts them (hyper's HTTP/1.1 server, gRPC servers, which require it); it is the one `TE` HTTP/2 allows (RFC 9113 section 8.2.2), and HTTP/1.1 has its sender name it in `Connection` (RFC 9110 section 10.1.4) |
//! | 4 | remove `Expect` | `Expect` | the proxy answers `100-continue` itself once the request is authorized |
//! | 5 | remove what only the proxy may say, and their names from `Trailer`'s list | every `x-portvakt-*`, also spelt with `_` for `-` (`X_Portvakt_Consumer_Orgno`); `X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override`, `X-Original-URL`, `X-Rewrite-URL`, also with `_` | on every route, public or not, so a client can never forge an identity; CGI, WSGI, Rack and PHP map both spellings to one `HTTP_X_PORTVAKT_...` variable; the policy authorized the real method and path, and method-override middleware (Express `method-override`, ASP.NET `UseHttpMethodOverride`, Rack `MethodOverride`, Laravel, Spring's filter) would run an authorized `POST` as, say, a `DELETE`, as path overrides (Zend, Laminas, old Symfony) would serve another path |
//! | 6 | set the identity, on routes that validated a token | the identity headers below | what the upstream authorizes on |
//! | 7 | `Host`: the request target's authority when it has one (an HTTP/2 client's `:authority`, an HTTP/1.1 absolute-form target), replacing a `Host` sent beside it, else the client's `Host`; or, without [`ProxyConfig::preserve_host`](super::ProxyConfig::preserve_host), none, so the upstream's address is sent. To an HTTP/2 upstream the pool sends it as `:authority`, with no `Host` header | `Host` | virtual hosts and redirects in the upstream see the name the client used; the target's host wins (RFC 9112 section 3.2.2, RFC 9113 section 8.3.1), and an HTTP/2 server reads `:authority` (and may refuse a `Host` that differs from it) |
//! | 8 | from an HTTP/2 client to an HTTP/1.1 upstream, join the `Cookie` fields into one | `Cookie` | HTTP/2 may split them; HTTP/1.1 needs one (RFC 9113 section 8.2.3) |
//! | 9 | append the client's address | `X-Forwarded-For` | |
//! | 10 | `X-Forwarded-Proto: http`, unless the client (normally the ingress) set it | `X-Forwarded-Proto` | |
//!
//! The order matters where rules touch the same headers: 1 before 2, which removes `TE`; 2
//! before 6 and 9, so a client's `Connection: x-portvakt-scopes` or `Connection:
//! x-forwarded-for` removes only what the client sent, never what the proxy adds; 5 before 6,
//! so a forged identity header is gone before the real one is set.
//!
//! To the client, from the upstream's answer, rule 2 only, to its headers and its trailers.
//!
//! ## Trailers
//!
//! Trailers (fields after the body: a chunked HTTP/1.1 body's, or HTTP/2's last `HEADERS`)
//! pass in both directions, through the same rules as the headers (`TrailerRules`): a
//! request's lose what rules 2 and 5 remove (so a client cannot send as a trailer the
//! identity or an override it cannot send as a header), an answer's what rule 2 removes.
//! Over HTTP/1.1 they pass only as `Trailer` announces them (hyper writes only the trailers
//! it lists, and only to a peer that sent `TE: trailers` when it is the server): an HTTP/2
//! client's trailers without a `Trailer` header (gRPC's) reach an HTTP/2 upstream, not an
//! HTTP/1.1 one. A request body that announces trailers goes to an HTTP/1.1 upstream
//! chunked, whatever its length.
//!
//! An override in the body (`_method` form field) or the query string cannot be removed: do
//! not enable those in the upstream.
//!
//! ## Identity headers
//!
//! | header                      | value                                                        |
//! |-----------------------------|--------------------------------------------------------------|
//! | `x-portvakt-consumer-orgno` | the consumer's 9-digit organization number (`889640782`)     |
//! | `x-portvakt-consumer-id`    | the consumer's full ISO 6523 id (`0192:889640782`)           |
//! | `x-portvakt-supplier-orgno` | the supplier's organization number, on delegated tokens only |
//! | `x-portvakt-client-id`      | the token's `client_id`                                      |
//! | `x-portvakt-scopes`         | the granted scopes, sorted, separated by one space           |
//!
//! A header is left out when the token has no such value. Authorize on the consumer, never on
//! the supplier.
//!
//! ## Cost
//!
//! The rules run on every request, so they allocate nothing unless the request needs it
//! (trailers are filtered only on a body that can have them: an HTTP/2 client's, or a chunked
//! one; see `Framing`):
//! only a `Connection` header naming headers, a client-sent `proxy-*` or forged header, a
//! `Trailer` listing names the rules remove, split
//! cookies, the identity values (one buffer) and an `X-Forwarded-For` value take memory; the
//! proxy's own `X-Forwarded-For` value is made again only when the client's address differs
//! from the last request's on the same worker thread. One look at the request's names tells
//! which rules have anything to do.

use std::cell::RefCell;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{self, HeaderName};
use http::uri::Authority;
use http::{HeaderMap, HeaderValue, Version};
use hyper::body::{Bytes, Frame, SizeHint};
use portvakt::VerifiedToken;

/// The consumer's organization number.
pub const HEADER_CONSUMER_ORGNO: &str = "x-portvakt-consumer-orgno";
/// The consumer's full ISO 6523 identifier (`0192:<orgno>`).
pub const HEADER_CONSUMER_ID: &str = "x-portvakt-consumer-id";
/// The supplier's organization number (delegated tokens only).
pub const HEADER_SUPPLIER_ORGNO: &str = "x-portvakt-supplier-orgno";
/// The token's `client_id`.
pub const HEADER_CLIENT_ID: &str = "x-portvakt-client-id";
/// The granted scopes, space-separated.
pub const HEADER_SCOPES: &str = "x-portvakt-scopes";
/// Every incoming header with this prefix is removed before forwarding.
pub const HEADER_PREFIX: &str = "x-portvakt-";

// The names the rules set, made once: `HeaderName::from_static` outside a constant checks its
// text again on every call.
const CONSUMER_ORGNO: HeaderName = HeaderName::from_static(HEADER_CONSUMER_ORGNO);
const CONSUMER_ID: HeaderName = HeaderName::from_static(HEADER_CONSUMER_ID);
const SUPPLIER_ORGNO: HeaderName = HeaderName::from_static(HEADER_SUPPLIER_ORGNO);
const CLIENT_ID: HeaderName = HeaderName::from_static(HEADER_CLIENT_ID);
const SCOPES: HeaderName = HeaderName::from_static(HEADER_SCOPES);
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The most headers rules 6 to 10 add to a request: five identity headers, `Host`,
/// `X-Forwarded-For` and `X-Forwarded-Proto`.
const ADDED_AT_MOST: usize = 8;

/// The header rules of one proxy: what they depend on in its configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderRules {
    /// The HTTP version spoken to the upstream (rules 3 and 8).
    pub(crate) upstream_version: Version,
    /// Whether the client's `Host` is passed on (rule 7).
    pub(crate) preserve_host: bool,
}

/// What the rules need to know about the client's request besides its headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientSide<'a> {
    /// The version the client spoke (rule 8).
    pub(crate) version: Version,
    /// The request target's authority: HTTP/2's `:authority` (rule 7).
    pub(crate) authority: Option<&'a Authority>,
    /// The client's address (rule 9).
    pub(crate) ip: Option<IpAddr>,
}

/// What the rules saw that forwarding the request's body depends on (see "Trailers" in the
/// module documentation). Both false on the common path: a request with a known body length
/// (or none) from an HTTP/1.1 client.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Framing {
    /// The client sent `Transfer-Encoding` (removed by rule 2): an HTTP/1.1 body of unknown
    /// length, which may end in trailers.
    pub(crate) chunked: bool,
    /// A `Trailer` header is forwarded (the client announced trailers, and rules 2 and 5 left
    /// at least one name in it).
    pub(crate) trailer: bool,
}

impl HeaderRules {
    /// Applies rules 1 to 10 to a request's headers, in order; `identity` is the token the
    /// route validated (`None` on public routes). Returns what the body's forwarding depends
    /// on.
    pub(crate) fn to_upstream(
        self,
        headers: &mut HeaderMap,
        client: ClientSide<'_>,
        identity: Option<&VerifiedToken>,
    ) -> Framing {
        let to_http2 = self.upstream_version == Version::HTTP_2;
        // What is there, from one look at each name: a rule whose headers are absent costs
        // nothing more (no lookup, no scan).
        let seen = Seen::scan(headers);
        // Room for what rules 6, 9 and 10 add, made once: hyper sizes the map for the headers
        // it parsed, and it would otherwise grow (and rehash) two or three times.
        headers.reserve(ADDED_AT_MOST);
        let keep_te = seen.te && wants_trailers(headers); // 1
        if seen.hop_by_hop {
            strip_hop_by_hop(headers); // 2
        }
        if keep_te {
            headers.insert(header::TE, HeaderValue::from_static("trailers")); // 3
            if !to_http2 {
                // HTTP/1.1 has the sender of `TE` name it in `Connection` (RFC 9110 section
                // 10.1.4); rule 2 removed the client's `Connection`.
                headers.insert(header::CONNECTION, HeaderValue::from_static("te")); // 3
            }
        }
        if seen.expect {
            headers.remove(header::EXPECT); // 4
        }
        if seen.forgery {
            strip_client_forgeries(headers); // 5
        }
        // Rules 2 and 5 for the names `Trailer` lists (`Connection: trailer` may have removed
        // it already).
        let trailer = seen.trailer && filter_trailer(headers); // 2, 5
        if let Some(token) = identity {
            set_identity(headers, token); // 6
        }
        // Rule 2 never removes `Host` (whatever `Connection` names), so `seen.host` holds.
        self.set_host(headers, seen.host, client.authority); // 7
        if client.version == Version::HTTP_2 && !to_http2 {
            join_cookies(headers); // 8
        }
        if let Some(ip) = client.ip {
            // Rule 2 may have removed the client's value (`Connection: x-forwarded-for`):
            // `append_forwarded_for` looks again. Nothing adds one before this rule.
            if seen.forwarded_for {
                append_forwarded_for(headers, ip); // 9
            } else {
                headers.insert(X_FORWARDED_FOR, forwarded_value(ip)); // 9
            }
        }
        // Likewise for `Connection: x-forwarded-proto`.
        if !seen.forwarded_proto || !headers.contains_key(X_FORWARDED_PROTO) {
            headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http")); // 10
        }
        Framing {
            chunked: seen.chunked,
            trailer,
        }
    }

    /// Applies the rules for the upstream's answer (rule 2).
    pub(crate) fn to_client(headers: &mut HeaderMap) {
        strip_hop_by_hop(headers);
    }

    /// Rules 2 and 5 for a request's trailers: removes every hop-by-hop name and every name
    /// rule 5 removes from headers (forged identity, method and path overrides), so that a
    /// client cannot send in trailers what it cannot send in headers.
    pub(crate) fn trailers_to_upstream(trailers: &mut HeaderMap) {
        remove_names(trailers, |name| {
            is_hop_by_hop(name) || is_client_forgery(name)
        });
    }

    /// Rule 2 for the trailers of the upstream's answer.
    pub(crate) fn trailers_to_client(trailers: &mut HeaderMap) {
        remove_names(trailers, is_hop_by_hop);
    }

    /// Rule 7: the host the upstream gets, as a `Host` header (the pool sends it as HTTP/2's
    /// `:authority`). With [`preserve_host`](Self::preserve_host), the request target's
    /// authority when it has one (an HTTP/2 client's `:authority`, which hyper keeps in the
    /// URI, or an HTTP/1.1 absolute-form target), replacing any `Host` the client sent (RFC
    /// 9112 section 3.2.2; RFC 9113 section 8.3.1), and otherwise the client's `Host`; without,
    /// none, so the pool sends the upstream's address.
    fn set_host(self, headers: &mut HeaderMap, present: bool, authority: Option<&Authority>) {
        if !self.preserve_host {
            if present {
                headers.remove(header::HOST);
            }
            return;
        }
        if let Some(authority) = authority {
            // `Host` has no user information (`user@`), which an authority may carry.
            let host = authority
                .as_str()
                .rsplit_once('@')
                .map_or(authority.as_str(), |(_, host)| host);
            if let Ok(host) = HeaderValue::from_str(host) {
                headers.insert(header::HOST, host);
            }
        }
    }
}

/// A body whose trailers get `rule` ([`HeaderRules::trailers_to_upstream`] or
/// [`HeaderRules::trailers_to_client`]); its data passes as it is, one branch per frame.
pub(crate) struct TrailerRules<B> {
    body: B,
    rule: fn(&mut HeaderMap),
}

impl<B> TrailerRules<B> {
    /// `body`, its trailers passed through `rule`.
    pub(crate) fn new(body: B, rule: fn(&mut HeaderMap)) -> TrailerRules<B> {
        TrailerRules { body, rule }
    }
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for TrailerRules<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        let mut frame = std::task::ready!(Pin::new(&mut this.body).poll_frame(cx));
        if let Some(Ok(frame)) = &mut frame
            && let Some(trailers) = frame.trailers_mut()
        {
            (this.rule)(trailers);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Removes every header whose name `remove` picks. Allocates nothing; a name is cloned only
/// when there is one to remove (a standard one without allocating, another sharing its bytes).
fn remove_names(headers: &mut HeaderMap, remove: impl Fn(&HeaderName) -> bool) {
    while let Some(name) = headers.keys().find(|name| remove(name)).cloned() {
        headers.remove(name);
    }
}

/// Rules 2 and 5 for `Trailer`'s list: removes the names that are hop-by-hop or that rule 5
/// removes, and `Trailer` itself when none is left. Whether a `Trailer` header is left.
/// Allocates only when there is a name to remove.
fn filter_trailer(headers: &mut HeaderMap) -> bool {
    let keep = |name: &str| !is_hop_by_hop_text(name) && !is_client_forgery_text(name);
    let values = headers.get_all(header::TRAILER);
    if values
        .iter()
        .all(|value| value.to_str().is_ok() && listed(value).all(keep))
    {
        // Nothing to remove, the usual case: no allocation.
        return values.iter().any(|value| listed(value).next().is_some());
    }
    let kept = values
        .iter()
        .flat_map(listed)
        .filter(|name| keep(name))
        .collect::<Vec<_>>()
        .join(", ");
    match HeaderValue::from_str(&kept) {
        Ok(value) if !kept.is_empty() => {
            headers.insert(header::TRAILER, value);
            true
        }
        _ => {
            headers.remove(header::TRAILER);
            false
        }
    }
}

/// The names a `Trailer` value lists, trimmed, without empty list elements; none from a value
/// that is not visible ASCII (which names nothing a trailer could have).
fn listed(value: &HeaderValue) -> impl Iterator<Item = &str> {
    value
        .to_str()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
}

/// What the rules look for in a request's headers, found in one pass over its names.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    /// Any header rule 2 removes.
    hop_by_hop: bool,
    /// `TE` (rule 1).
    te: bool,
    /// `Transfer-Encoding`: an HTTP/1.1 client's body of unknown length, which may end in
    /// trailers ([`Framing::chunked`]).
    chunked: bool,
    /// `Trailer` (rules 2 and 5 filter the names it lists).
    trailer: bool,
    /// `Expect` (rule 4).
    expect: bool,
    /// Any header rule 5 removes.
    forgery: bool,
    /// `Host` (rule 7).
    host: bool,
    /// `X-Forwarded-For` (rule 9).
    forwarded_for: bool,
    /// `X-Forwarded-Proto` (rule 10).
    forwarded_proto: bool,
}

impl Seen {
    fn scan(headers: &HeaderMap) -> Seen {
        let mut seen = Seen::default();
        for name in headers.keys() {
            // Standard names compare as one number each; the rest by their text.
            if name == header::HOST {
                seen.host = true;
            } else if name == header::EXPECT {
                seen.expect = true;
            } else if name == X_FORWARDED_FOR {
                seen.forwarded_for = true;
            } else if name == X_FORWARDED_PROTO {
                seen.forwarded_proto = true;
            } else if is_hop_by_hop(name) {
                seen.hop_by_hop = true;
                seen.te |= name == header::TE;
                seen.chunked |= name == header::TRANSFER_ENCODING;
            } else if name == header::TRAILER {
                seen.trailer = true;
            } else if is_client_forgery(name) {
                seen.forgery = true;
            }
        }
        seen
    }
}

/// Whether rule 2 removes `name` whatever `Connection` says: the hop-by-hop headers of RFC 9110
/// section 7.6.1 (`Connection`, `Keep-Alive`, `Proxy-Connection`, `Proxy-Authenticate`,
/// `Proxy-Authorization`, `TE`, `Transfer-Encoding`, `Upgrade`), any other
/// `proxy-*` and httpoxy's `proxy`. A match on the name's text (which `HeaderMap` keeps in
/// lower case): no lookups, no copies of a list of names.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    let text = name.as_str();
    HOP_BY_HOP.contains(&text) || text.starts_with("proxy-")
}

/// The names rule 2 removes by name (besides every `proxy-*`), in lower case. Not `Trailer`:
/// RFC 9110 section 7.6.1 does not list it, and without it hyper's HTTP/1.1 encoder writes no
/// trailers at all (it writes only those `Trailer` lists).
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "te",
    "transfer-encoding",
    "upgrade",
    "proxy",
];

/// Rule 2: removes hop-by-hop headers, those `Connection` names, and any `proxy-*` (and
/// httpoxy's `proxy`). Headers the proxy relies on are never removed because `Connection`
/// names them.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One look at each name: how many hop-by-hop ones there are, and whether `Connection` is
    // one. An upstream's answer usually has exactly one, `Connection: keep-alive`.
    let mut hop_by_hop = 0;
    let mut connection = false;
    for name in headers.keys() {
        if is_hop_by_hop(name) {
            hop_by_hop += 1;
            connection |= name == header::CONNECTION;
        }
    }
    if hop_by_hop == 0 {
        return;
    }
    // The names `Connection` lists that are here, but for those removed below anyway (such as
    // `keep-alive`): looked up by their text, which allocates nothing, so the usual
    // `Connection: keep-alive` or `close` of an upstream's answer makes no `HeaderName` and no
    // list (callgrind; docs/BENCHMARKS.md).
    let mut named: Vec<HeaderName> = Vec::new();
    if connection {
        for value in headers.get_all(header::CONNECTION) {
            // Visible ASCII only (`to_str`), so every piece is text.
            let Ok(value) = value.to_str() else { continue };
            for name in value.as_bytes().split(|b| *b == b',') {
                let Ok(name) = std::str::from_utf8(name.trim_ascii()) else {
                    continue;
                };
                if !is_hop_by_hop_text(name)
                    && headers.contains_key(name)
                    && let Ok(name) = HeaderName::from_bytes(name.as_bytes())
                    && name != header::AUTHORIZATION
                    && name != header::HOST
                {
                    named.push(name);
                }
            }
        }
    }
    if hop_by_hop == 1 && connection && named.is_empty() {
        headers.remove(header::CONNECTION);
        return;
    }
    for name in named {
        headers.remove(name);
    }
    remove_names(headers, is_hop_by_hop);
}

/// [`is_hop_by_hop`] for a name as `Connection` lists it, in any case.
fn is_hop_by_hop_text(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|hop| name.eq_ignore_ascii_case(hop))
        || name
            .get(..6)
            .is_some_and(|start| start.eq_ignore_ascii_case("proxy-"))
}

/// Method-override headers (matched with `_` taken for `-`).
const METHOD_OVERRIDE: [&[u8]; 3] = [
    b"x-http-method-override",
    b"x-http-method",
    b"x-method-override",
];

/// Whether `name` equals `pattern` (lower-case, with `-`) in any case, when every `_` in
/// `name` is read as `-`: CGI-style servers cannot tell them apart. Any case, because
/// `Trailer` lists names as the client wrote them (`HeaderMap` keeps its own in lower case).
fn same_name(name: &[u8], pattern: &[u8]) -> bool {
    name.len() == pattern.len()
        && name
            .iter()
            .zip(pattern)
            .all(|(n, p)| n.eq_ignore_ascii_case(p) || (*n == b'_' && *p == b'-'))
}

/// Path-override headers: some frameworks route by them instead of the request line (Zend
/// and Laminas, Symfony before CVE-2018-14773), so a request authorized for one path would be
/// served as another.
const PATH_OVERRIDE: [&[u8]; 2] = [b"x-original-url", b"x-rewrite-url"];

/// Whether a client-sent header must not reach the upstream: any `x-portvakt-*` (the identity
/// headers are the proxy's to set), the method overrides and the path overrides, in either
/// spelling.
fn is_client_forgery(name: &HeaderName) -> bool {
    is_client_forgery_text(name.as_str())
}

/// [`is_client_forgery`] for a name as text, in any case (as `Trailer` lists it).
fn is_client_forgery_text(name: &str) -> bool {
    let name = name.as_bytes();
    let prefix = HEADER_PREFIX.as_bytes();
    (name.len() >= prefix.len() && same_name(&name[..prefix.len()], prefix))
        || METHOD_OVERRIDE
            .iter()
            .chain(&PATH_OVERRIDE)
            .any(|pattern| same_name(name, pattern))
}

/// Rule 5: removes every `x-portvakt-*` header (also spelt with `_`), the method overrides
/// and the path overrides.
fn strip_client_forgeries(headers: &mut HeaderMap) {
    remove_names(headers, is_client_forgery);
}

/// Rule 1: whether the client's `TE` asks for trailers (`TE: trailers`, possibly among
/// others).
fn wants_trailers(headers: &HeaderMap) -> bool {
    headers.get_all(header::TE).iter().any(|value| {
        value.as_bytes().split(|b| *b == b',').any(|item| {
            let item = item.split(|b| *b == b';').next().unwrap_or_default();
            item.trim_ascii().eq_ignore_ascii_case(b"trailers")
        })
    })
}

/// Rule 6: the identity headers from the verified token.
fn set_identity(headers: &mut HeaderMap, token: &VerifiedToken) {
    identity_headers(token, |name, value| {
        headers.insert(name, value);
    });
}

/// Calls `f` with each identity header the proxy sets for `token`, in the order of the table
/// in the module documentation; a header is left out when the token has no such value (or one
/// no header can carry). What the upstream would receive, also for the development page.
pub fn identity_headers(token: &VerifiedToken, mut f: impl FnMut(HeaderName, HeaderValue)) {
    let scopes = token.scopes();
    let values = [
        (CONSUMER_ORGNO, token.consumer_orgno()),
        (CONSUMER_ID, token.consumer().map(|c| c.id())),
        (SUPPLIER_ORGNO, token.supplier().and_then(|s| s.orgno())),
        (CLIENT_ID, token.client_id()),
    ];
    // Every value is written into one buffer, and each header value is a slice of it (a
    // reference count, not a copy): two allocations (the buffer, and its count when first
    // shared) instead of one per value and the scope list's own (callgrind; docs/BENCHMARKS.md).
    let len = values
        .iter()
        .filter_map(|(_, v)| *v)
        .chain(scopes.iter())
        .map(|v| v.len() + 1)
        .sum::<usize>();
    let mut buffer = Vec::with_capacity(len);
    let mut write = |value: &str| {
        let start = buffer.len();
        buffer.extend_from_slice(value.as_bytes());
        start..buffer.len()
    };
    let ranges = values.map(|(name, value)| (name, value.map(&mut write)));
    let start = buffer.len();
    for (i, scope) in scopes.iter().enumerate() {
        if i > 0 {
            buffer.push(b' ');
        }
        buffer.extend_from_slice(scope.as_bytes());
    }
    let scopes_range = (!scopes.is_empty()).then_some(start..buffer.len());
    let buffer = Bytes::from(buffer);
    for (name, range) in ranges.into_iter().chain([(SCOPES, scopes_range)]) {
        // A value no header can carry (a control character) is left out.
        if let Some(range) = range
            && let Ok(value) = HeaderValue::from_maybe_shared(buffer.slice(range))
        {
            f(name, value);
        }
    }
}

/// Rule 8: HTTP/2 may split `Cookie` into several fields; HTTP/1.1 needs one (RFC 9113
/// section 8.2.3).
fn join_cookies(headers: &mut HeaderMap) {
    let mut cookies = headers.get_all(header::COOKIE).iter();
    if cookies.next().is_none() || cookies.next().is_none() {
        return;
    }
    let joined: Vec<&[u8]> = headers
        .get_all(header::COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if let Ok(value) = HeaderValue::from_bytes(&joined.join(&b"; "[..])) {
        headers.insert(header::COOKIE, value);
    }
}

/// Rule 9: the client's address appended to `X-Forwarded-For`, as one field.
fn append_forwarded_for(headers: &mut HeaderMap, ip: IpAddr) {
    // No allocation when there is nothing to keep (the usual case: no value, or none that is
    // text).
    let existing: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if existing.is_empty() {
        headers.insert(X_FORWARDED_FOR, forwarded_value(ip));
        return;
    }
    let value = format!("{}, {ip}", existing.join(", "));
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

thread_local! {
    /// The value [`forwarded_value`] made last on this thread, with its address.
    static LAST_FORWARDED: RefCell<Option<(IpAddr, HeaderValue)>> = const { RefCell::new(None) };
}

/// [`ip_value`], made again only when the address differs from the last request's on this
/// thread: a proxy's clients are few (an ingress, a keep-alive connection's many requests),
/// and a value shares its bytes, where making it allocates (callgrind; docs/BENCHMARKS.md).
fn forwarded_value(ip: IpAddr) -> HeaderValue {
    LAST_FORWARDED.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((kept, value)) if *kept == ip => value.clone(),
            _ => {
                let value = ip_value(ip);
                *last = Some((ip, value.clone()));
                value
            }
        }
    })
}

/// `ip` as a header value, as `Display` writes it. IPv4 by hand: `Display` through the
/// formatting machinery was 1,300 instructions of every proxied request.
fn ip_value(ip: IpAddr) -> HeaderValue {
    let IpAddr::V4(v4) = ip else {
        return HeaderValue::from_str(&ip.to_string()).expect("an address is a header value");
    };
    let mut text = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            text[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            text[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        text[len] = b'0' + octet % 10;
        len += 1;
    }
    HeaderValue::from_bytes(&text[..len]).expect("digits and dots are a header value")
}

#[cfg(test)]
mod tests;
