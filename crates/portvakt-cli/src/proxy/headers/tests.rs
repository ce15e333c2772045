//! Each header rule on its own, and the orders the module documentation says matter.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{SystemTime, UNIX_EPOCH};

use http::uri::Authority;
use http::{HeaderMap, HeaderValue, Version};
use portvakt::{Algorithm, Config, KeySet, SigningKey, Validator, VerifiedToken};
use serde_json::json;

use super::{ClientSide, Framing, HeaderRules, ip_value};

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));

fn rules(upstream_version: Version) -> HeaderRules {
    HeaderRules {
        upstream_version,
        preserve_host: true,
    }
}

fn http1_client() -> ClientSide<'static> {
    ClientSide {
        version: Version::HTTP_11,
        authority: None,
        ip: Some(PEER),
    }
}

fn headers(list: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in list {
        let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        map.append(name, value.parse().unwrap());
    }
    map
}

/// Every value of `name`, in order.
fn values(map: &HeaderMap, name: &str) -> Vec<String> {
    map.get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn assert_removed(map: &HeaderMap, sent: &[(&str, &str)]) {
    for (name, _) in sent {
        assert!(!map.contains_key(*name), "{name} reached the upstream");
    }
}

/// Each header sent once reaches the upstream as sent.
fn assert_kept(map: &HeaderMap, sent: &[(&str, &str)]) {
    for (name, value) in sent {
        assert_eq!(values(map, name), [*value], "{name}");
    }
}

fn to_upstream(list: &[(&str, &str)], identity: Option<&VerifiedToken>) -> HeaderMap {
    let mut map = headers(list);
    rules(Version::HTTP_11).to_upstream(&mut map, http1_client(), identity);
    map
}

/// A token verified by a real validator: consumer 889640782, supplier 974761076, client
/// `the-client`, scopes `b:scope a:scope`.
fn verified() -> VerifiedToken {
    verified_with(|_| {})
}

/// [`verified`]'s token with its claims changed by `edit` before signing.
fn verified_with(edit: impl FnOnce(&mut serde_json::Value)) -> VerifiedToken {
    const ISSUER: &str = "https://headers.test/";
    let key = SigningKey::generate("headers-key").unwrap();
    let jwks = json!({"keys": [key.public_jwk()]}).to_string();
    let (keys, _) = KeySet::from_jwks(jwks.as_bytes(), &[Algorithm::RS256]).unwrap();
    let config = Config::builder()
        .issuer(ISSUER)
        .jwks_uri("https://headers.test/jwk")
        .build()
        .unwrap();
    let validator = Validator::with_keys(&config, ISSUER, keys);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": ISSUER,
        "scope": "b:scope a:scope",
        "client_id": "the-client",
        "token_type": "Bearer",
        "consumer": {"authority": "iso6523-actorid-upis", "ID": "0192:889640782"},
        "supplier": {"authority": "iso6523-actorid-upis", "ID": "0192:974761076"},
        "iat": now,
        "exp": now + 120,
        "jti": "headers-test",
    });
    let mut claims = claims;
    edit(&mut claims);
    let token = key.sign_jwt(Algorithm::RS256, &claims).unwrap();
    validator.validate_now(&token).unwrap()
}

#[test]
fn rule_2_removes_hop_by_hop_headers_and_what_connection_names() {
    let hop = [
        ("connection", "close, x-secret, authorization, host"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("proxy-authorization", "Basic eA=="),
        ("proxy-authenticate", "Basic"),
        ("proxy", "http://attacker.example/"),
        ("proxy-anything", "1"),
        ("te", "gzip"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("x-secret", "1"),
    ];
    let kept = [
        ("authorization", "Bearer t"),
        ("host", "api.example"),
        ("x-kept", "1"),
    ];
    let map = to_upstream(&[&hop[..], &kept].concat(), None);
    assert_removed(&map, &hop);
    // `Connection` cannot remove what the proxy relies on.
    assert_kept(&map, &kept);

    let mut answer = headers(&hop);
    answer.append("content-type", "text/plain".parse().unwrap());
    HeaderRules::to_client(&mut answer);
    assert_eq!(answer.len(), 1, "{answer:?}");
    assert_eq!(values(&answer, "content-type"), ["text/plain"]);
}

#[test]
fn rule_2_finds_what_connection_names_in_any_case_and_length_and_across_fields() {
    let long = format!("x-{}", "l".repeat(70)); // longer than `http`'s 64-byte stack buffer
    let connection_1 = format!("X-Secret ,  {},keep-alive", long.to_uppercase());
    let hop = [
        ("connection", connection_1.as_str()),
        ("connection", "X-OTHER, not a name, ,"),
        ("x-secret", "1"),
        (long.as_str(), "1"),
        ("x-other", "1"),
    ];
    let kept = [("authorization", "Bearer t"), ("x-kept", "1")];
    let map = to_upstream(&[&hop[..], &kept].concat(), None);
    assert_removed(&map, &hop);
    assert_kept(&map, &kept);

    // An upstream's usual `Connection: keep-alive`, with no header of that name: only
    // `Connection` goes.
    let mut answer = headers(&[("connection", "keep-alive"), ("content-length", "2")]);
    HeaderRules::to_client(&mut answer);
    assert_eq!(answer.len(), 1, "{answer:?}");
    assert_eq!(values(&answer, "content-length"), ["2"]);
}

#[test]
fn rules_1_and_3_pass_te_trailers_on_as_exactly_that() {
    let sent = [("te", "deflate;q=0.5, Trailers;q=1"), ("connection", "te")];
    let mut map = headers(&sent);
    rules(Version::HTTP_2).to_upstream(&mut map, http1_client(), None);
    // Noted before rule 2 removed `TE`, even though `Connection` named it.
    assert_eq!(values(&map, "te"), ["trailers"]);
    assert!(
        !map.contains_key("connection"),
        "no connection header in HTTP/2"
    );

    // To HTTP/1.1, named in `Connection` as RFC 9110 section 10.1.4 asks.
    let mut map = headers(&sent);
    rules(Version::HTTP_11).to_upstream(&mut map, http1_client(), None);
    assert_eq!(values(&map, "te"), ["trailers"]);
    assert_eq!(values(&map, "connection"), ["te"]);

    for version in [Version::HTTP_11, Version::HTTP_2] {
        let mut map = headers(&[("te", "gzip"), ("connection", "te")]);
        rules(version).to_upstream(&mut map, http1_client(), None);
        assert!(!map.contains_key("te"));
        assert!(!map.contains_key("connection"));
    }
}

#[test]
fn rule_4_removes_expect() {
    let map = to_upstream(&[("expect", "100-continue")], None);
    assert!(!map.contains_key("expect"));
}

#[test]
fn rule_5_removes_forged_identity_method_and_path_overrides_in_either_spelling() {
    let forged = [
        ("x-portvakt-consumer-orgno", "974761076"),
        ("x_portvakt_consumer_orgno", "974761076"),
        ("x-portvakt_scopes", "admin"),
        ("x-portvakt-anything-else", "1"),
        ("x-http-method-override", "DELETE"),
        ("x_http_method", "DELETE"),
        ("x-method_override", "DELETE"),
        ("x-original-url", "/api/v1/admin/secret"),
        ("x_rewrite_url", "/api/v1/admin/secret"),
    ];
    let kept = [
        ("x-portvakt", "not the prefix"),
        ("x-http-method-overrides", "not an override"),
        ("x-original-url-note", "not an override"),
    ];
    // A public route: nothing is set in their place.
    let map = to_upstream(&[&forged[..], &kept].concat(), None);
    assert_removed(&map, &forged);
    assert_kept(&map, &kept);
}

#[test]
fn rule_6_sets_the_identity_after_removing_forgeries_and_hop_by_hop_names() {
    let token = verified();
    let map = to_upstream(
        &[
            ("x-portvakt-consumer-orgno", "974761076"),
            ("x_portvakt_client_id", "forged"),
            ("connection", "x-portvakt-scopes, x-portvakt-client-id"),
        ],
        Some(&token),
    );
    assert_eq!(values(&map, "x-portvakt-consumer-orgno"), ["889640782"]);
    assert_eq!(values(&map, "x-portvakt-consumer-id"), ["0192:889640782"]);
    assert_eq!(values(&map, "x-portvakt-supplier-orgno"), ["974761076"]);
    assert_eq!(values(&map, "x-portvakt-client-id"), ["the-client"]);
    assert_eq!(values(&map, "x-portvakt-scopes"), ["a:scope b:scope"]);
    assert!(!map.contains_key("x_portvakt_client_id"));
}

#[test]
fn rule_6_leaves_out_a_value_the_token_lacks_or_no_header_can_carry_and_keeps_the_others() {
    // The supplier missing, the client id (between them) with a control character.
    let token = verified_with(|claims| {
        let claims = claims.as_object_mut().unwrap();
        claims.remove("supplier");
        claims.insert("client_id".into(), json!("the\u{1}client"));
    });
    let map = to_upstream(&[], Some(&token));
    assert_eq!(values(&map, "x-portvakt-consumer-orgno"), ["889640782"]);
    assert_eq!(values(&map, "x-portvakt-consumer-id"), ["0192:889640782"]);
    assert!(!map.contains_key("x-portvakt-supplier-orgno"));
    assert!(!map.contains_key("x-portvakt-client-id"));
    assert_eq!(values(&map, "x-portvakt-scopes"), ["a:scope b:scope"]);

    // An empty client id is a value (an empty one), as `HeaderValue` allows.
    let token = verified_with(|claims| claims["client_id"] = json!(""));
    let map = to_upstream(&[], Some(&token));
    assert_eq!(values(&map, "x-portvakt-client-id"), [""]);
    assert_eq!(values(&map, "x-portvakt-supplier-orgno"), ["974761076"]);
    assert_eq!(values(&map, "x-portvakt-scopes"), ["a:scope b:scope"]);
}

#[test]
fn rule_7_keeps_or_drops_host() {
    let authority = Authority::from_static("api.example:8443");
    let http2_client = ClientSide {
        version: Version::HTTP_2,
        authority: Some(&authority),
        ip: None,
    };
    let mut map = HeaderMap::new();
    rules(Version::HTTP_11).to_upstream(&mut map, http2_client, None);
    assert_eq!(
        values(&map, "host"),
        ["api.example:8443"],
        "from :authority"
    );

    // The target's authority wins over a `Host` beside it (RFC 9112 section 3.2.2, RFC 9113
    // section 8.3.1), for either upstream version (the pool sends it as `:authority`).
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let mut map = headers(&[("host", "sent.example")]);
        rules(version).to_upstream(&mut map, http2_client, None);
        assert_eq!(values(&map, "host"), ["api.example:8443"], "{version:?}");
    }
    // Without user information, which a `Host` cannot carry.
    let with_user = Authority::from_static("user:pw@tenant-a.example");
    let absolute_form = ClientSide {
        authority: Some(&with_user),
        ..http1_client()
    };
    let mut map = headers(&[("host", "tenant-b.example")]);
    rules(Version::HTTP_11).to_upstream(&mut map, absolute_form, None);
    assert_eq!(values(&map, "host"), ["tenant-a.example"]);
    // An origin-form request keeps its own.
    let mut map = headers(&[("host", "sent.example")]);
    rules(Version::HTTP_2).to_upstream(&mut map, http1_client(), None);
    assert_eq!(values(&map, "host"), ["sent.example"]);

    let rules = HeaderRules {
        upstream_version: Version::HTTP_11,
        preserve_host: false,
    };
    let mut map = headers(&[("host", "sent.example")]);
    rules.to_upstream(&mut map, http2_client, None);
    assert!(
        !map.contains_key("host"),
        "the upstream's address is sent instead"
    );
}

#[test]
fn rule_8_joins_cookies_from_http2_clients_for_http1_upstreams() {
    let cookies = [("cookie", "a=1"), ("cookie", "b=2")];
    let http2_client = ClientSide {
        version: Version::HTTP_2,
        ..http1_client()
    };
    let mut map = headers(&cookies);
    rules(Version::HTTP_11).to_upstream(&mut map, http2_client, None);
    assert_eq!(values(&map, "cookie"), ["a=1; b=2"]);

    let mut map = headers(&cookies);
    rules(Version::HTTP_2).to_upstream(&mut map, http2_client, None);
    assert_eq!(values(&map, "cookie"), ["a=1", "b=2"]);

    let map = to_upstream(&cookies, None);
    assert_eq!(values(&map, "cookie"), ["a=1", "b=2"]);
}

#[test]
fn rule_9_appends_the_client_address_after_hop_by_hop_removal() {
    let map = to_upstream(&[], None);
    assert_eq!(values(&map, "x-forwarded-for"), ["10.1.2.3"]);

    let map = to_upstream(
        &[
            ("x-forwarded-for", "192.0.2.1"),
            ("x-forwarded-for", "192.0.2.2"),
        ],
        None,
    );
    assert_eq!(
        values(&map, "x-forwarded-for"),
        ["192.0.2.1, 192.0.2.2, 10.1.2.3"]
    );

    // `Connection` removes the client's value, never the address the proxy adds.
    let map = to_upstream(
        &[
            ("x-forwarded-for", "192.0.2.1"),
            ("connection", "x-forwarded-for"),
        ],
        None,
    );
    assert_eq!(values(&map, "x-forwarded-for"), ["10.1.2.3"]);

    // A value that is not text is not kept, and leaves no empty entry before the address.
    let mut map = HeaderMap::new();
    map.insert(
        "x-forwarded-for",
        HeaderValue::from_bytes(b"\xe9t\xe9").unwrap(),
    );
    rules(Version::HTTP_11).to_upstream(&mut map, http1_client(), None);
    assert_eq!(values(&map, "x-forwarded-for"), ["10.1.2.3"]);

    let mut map = HeaderMap::new();
    let no_address = ClientSide {
        ip: None,
        ..http1_client()
    };
    rules(Version::HTTP_11).to_upstream(&mut map, no_address, None);
    assert!(!map.contains_key("x-forwarded-for"));
}

#[test]
fn rule_9_writes_every_address_as_display_does() {
    for a in [0u8, 1, 9, 10, 42, 99, 100, 199, 200, 255] {
        for b in [0u8, 7, 10, 100, 255] {
            let ip = IpAddr::V4(Ipv4Addr::new(a, b, b.wrapping_add(a), 255 - a));
            assert_eq!(ip_value(ip).to_str().unwrap(), ip.to_string());
        }
    }
    for ip in [
        Ipv6Addr::LOCALHOST,
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    ] {
        assert_eq!(ip_value(IpAddr::V6(ip)).to_str().unwrap(), ip.to_string());
    }
}

#[test]
fn rule_2_removes_a_lone_proxy_header_and_leaves_a_request_without_any_as_it_was() {
    let map = to_upstream(&[("proxy-x", "1"), ("x-kept", "1")], None);
    assert!(!map.contains_key("proxy-x"));
    assert_eq!(values(&map, "x-kept"), ["1"]);

    let mut answer = headers(&[("content-type", "text/plain"), ("x-a", "1"), ("x-a", "2")]);
    let before = answer.clone();
    HeaderRules::to_client(&mut answer);
    assert_eq!(answer, before);
}

#[test]
fn rule_10_sets_x_forwarded_proto_unless_sent() {
    assert_eq!(
        values(&to_upstream(&[], None), "x-forwarded-proto"),
        ["http"]
    );
    let map = to_upstream(&[("x-forwarded-proto", "https")], None);
    assert_eq!(values(&map, "x-forwarded-proto"), ["https"]);
}

#[test]
fn rule_9_writes_each_request_s_own_address_when_addresses_alternate_on_a_thread() {
    // The value is kept from the last request on this thread; another address must never
    // get it.
    let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 77));
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9));
    for ip in [PEER, other, other, v6, PEER, v6, PEER] {
        let mut map = HeaderMap::new();
        let client = ClientSide {
            ip: Some(ip),
            ..http1_client()
        };
        rules(Version::HTTP_11).to_upstream(&mut map, client, None);
        assert_eq!(values(&map, "x-forwarded-for"), [ip.to_string()]);
    }
}

#[test]
fn connection_naming_expect_or_a_forwarded_header_removes_the_client_s_and_the_rules_still_hold() {
    let map = to_upstream(
        &[
            ("connection", "X-Forwarded-Proto, expect"),
            ("x-forwarded-proto", "https"),
            ("expect", "100-continue"),
            ("host", "api.example"),
        ],
        None,
    );
    // Rule 2 took the client's `X-Forwarded-Proto`, so rule 10 sets the proxy's.
    assert_eq!(values(&map, "x-forwarded-proto"), ["http"]);
    assert!(!map.contains_key("expect"));
    assert!(!map.contains_key("connection"));
    assert_eq!(values(&map, "host"), ["api.example"]);
    assert_eq!(values(&map, "x-forwarded-for"), ["10.1.2.3"]);
}

#[test]
fn to_client_removes_connection_whatever_options_it_lists_and_what_they_name() {
    // The usual answers: one `Connection` listing only options or hop-by-hop names.
    for connection in [
        "keep-alive",
        "close",
        "Keep-Alive",
        " keep-alive , close ",
        "TE, Upgrade",
    ] {
        let mut answer = headers(&[
            ("content-type", "text/plain"),
            ("connection", connection),
            ("content-length", "2"),
        ]);
        HeaderRules::to_client(&mut answer);
        assert!(!answer.contains_key("connection"), "{connection}");
        assert_eq!(values(&answer, "content-type"), ["text/plain"]);
        assert_eq!(values(&answer, "content-length"), ["2"]);
    }
    // An option that names a header present: both go.
    let mut answer = headers(&[
        ("connection", "close, X-Internal"),
        ("x-internal", "1"),
        ("close", "1"),
        ("x-kept", "1"),
    ]);
    HeaderRules::to_client(&mut answer);
    assert_eq!(answer.len(), 1, "{answer:?}");
    assert_eq!(values(&answer, "x-kept"), ["1"]);
    // `Keep-Alive` beside `Connection`: both are hop-by-hop.
    let mut answer = headers(&[
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
        ("x-kept", "1"),
    ]);
    HeaderRules::to_client(&mut answer);
    assert_eq!(answer.len(), 1, "{answer:?}");
}

#[test]
fn trailer_is_kept_without_the_names_rules_2_and_5_remove() {
    let mut map = headers(&[
        (
            "trailer",
            "X-Checksum, X-Portvakt-Consumer-Orgno, x_http_method",
        ),
        (
            "trailer",
            "keep-alive, x-original-url,, Proxy-Foo , x-digest",
        ),
        ("transfer-encoding", "chunked"),
    ]);
    let framing = rules(Version::HTTP_11).to_upstream(&mut map, http1_client(), None);
    assert_eq!(values(&map, "trailer"), ["X-Checksum, x-digest"]);
    assert_eq!(
        framing,
        Framing {
            chunked: true,
            trailer: true
        }
    );

    // Nothing to remove: left as sent.
    let sent = [
        ("trailer", "x-checksum,x-digest"),
        ("trailer", "grpc-status"),
    ];
    let mut map = headers(&sent);
    let framing = rules(Version::HTTP_2).to_upstream(&mut map, http1_client(), None);
    assert_eq!(
        values(&map, "trailer"),
        ["x-checksum,x-digest", "grpc-status"]
    );
    assert_eq!(
        framing,
        Framing {
            chunked: false,
            trailer: true
        }
    );

    // Only what may not pass, or a value that is not text: gone. `Connection` can name it.
    for sent in [
        headers(&[("trailer", "x-portvakt-scopes, connection")]),
        {
            let mut map = HeaderMap::new();
            map.insert(
                "trailer",
                HeaderValue::from_bytes(b"x-portvakt-scopes \xe9").unwrap(),
            );
            map
        },
        headers(&[("trailer", "x-checksum"), ("connection", "trailer")]),
    ] {
        let mut map = sent.clone();
        let framing = rules(Version::HTTP_11).to_upstream(&mut map, http1_client(), None);
        assert!(!map.contains_key("trailer"), "{sent:?}");
        assert_eq!(framing, Framing::default(), "{sent:?}");
    }
    // The common request: nothing seen.
    let mut map = headers(&[("host", "api"), ("content-length", "3")]);
    let framing = rules(Version::HTTP_11).to_upstream(&mut map, http1_client(), None);
    assert_eq!(framing, Framing::default());
}

#[test]
fn trailers_get_rules_2_and_5_upstream_and_rule_2_to_the_client() {
    let sent = [
        ("x-portvakt-consumer-orgno", "889640782"),
        ("x_portvakt_scopes", "admin"),
        ("x-http-method-override", "DELETE"),
        ("x-rewrite-url", "/admin"),
        ("connection", "close"),
        ("keep-alive", "1"),
        ("proxy-x", "1"),
        ("x-checksum", "42"),
        ("grpc-status", "0"),
    ];
    let mut trailers = headers(&sent);
    HeaderRules::trailers_to_upstream(&mut trailers);
    assert_removed(&trailers, &sent[..7]);
    assert_kept(&trailers, &sent[7..]);

    let mut trailers = headers(&sent);
    HeaderRules::trailers_to_client(&mut trailers);
    assert_removed(&trailers, &sent[4..7]);
    assert_kept(&trailers, &sent[..4]);
    assert_kept(&trailers, &sent[7..]);
}
