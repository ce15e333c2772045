//! The enforcing proxy over loopback: a real upstream that echoes what it received, the proxy in
//! front of it, and real RS256 tokens.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use portvakt::{Config, Validator};
use portvakt_cli::proxy::routes::PolicyFile;
use portvakt_cli::proxy::{self, ProxyConfig, ProxyError, ProxyState};
use portvakt_cli::serve::metrics::Metrics;
use portvakt_test_support::{self as support, KEY_A, KEY_A_IMPOSTOR};
use serde_json::{Value, json};
use tokio::sync::Notify;

const ISSUER: &str = support::TEST_ISSUER;
const READ: &str = "nav:arbeid:some.scope.read";
const WRITE: &str = "nav:arbeid:some.scope.write";

const POLICY: &str = r#"
realm = "test-api"

[[route]]
methods = ["GET", "HEAD"]
path = "/api/read/**"
scopes = ["nav:arbeid:some.scope.read"]

[[route]]
path = "/api/write/admin/**"
deny = true

[[route]]
path = "/api/write/**"
scopes = ["nav:arbeid:some.scope.write"]

[[route]]
path = "/api/either/*"
any_scopes = ["nav:other:scope", "nav:arbeid:some.scope.read"]

[[route]]
path = "/api/partner/**"
scopes = ["nav:arbeid:some.scope.read"]
consumers = ["974760673"]

[[route]]
path = "/public/**"
public = true
"#;

fn claims(scope: &str) -> Value {
    support::claims(ISSUER, scope)
}

fn token(scope: &str) -> String {
    support::sign(&KEY_A, &claims(scope))
}

// ---------------------------------------------------------------------------------------------
// The upstream: echoes method, URI, headers and body size as JSON, with a few special paths.

#[derive(Default)]
struct Upstream {
    hits: AtomicUsize,
    first_chunk_seen: Notify,
    release: Notify,
    /// Requests in `/public/concurrent` now, and the most there at once.
    current: AtomicUsize,
    peak: AtomicUsize,
}

async fn upstream_handler(State(state): State<Arc<Upstream>>, request: Request) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let path = request.uri().path().to_owned();
    if path == "/public/slow" {
        tokio::time::sleep(Duration::from_secs(5)).await;
        return "late".into_response();
    }
    if path == "/public/concurrent" {
        let now = state.current.fetch_add(1, Ordering::SeqCst) + 1;
        state.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        state.current.fetch_sub(1, Ordering::SeqCst);
        return "done".into_response();
    }
    if let Some(n) = path.strip_prefix("/api/read/download/") {
        let n: usize = n.parse().unwrap();
        let (mut tx, body) = http_body_util::channel::Channel::<axum::body::Bytes>::new(4);
        tokio::spawn(async move {
            let chunk = axum::body::Bytes::from(vec![b'x'; 64 * 1024]);
            let mut left = n;
            while left > 0 {
                let take = left.min(chunk.len());
                if tx.send_data(chunk.slice(..take)).await.is_err() {
                    return;
                }
                left -= take;
            }
        });
        return Response::new(Body::new(body));
    }
    if path == "/api/read/gated" {
        // Sends a first chunk, then waits for the test before sending the rest.
        let (mut tx, body) = http_body_util::channel::Channel::<axum::body::Bytes>::new(1);
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let _ = tx.send_data("first;".into()).await;
            state.release.notified().await;
            let _ = tx.send_data("second".into()).await;
        });
        return Response::new(Body::new(body));
    }
    if let Some(code) = path.strip_prefix("/api/read/status/") {
        let status = StatusCode::from_u16(code.parse().unwrap()).unwrap();
        return (status, [("x-upstream", "yes")], "teapot body").into_response();
    }
    if path == "/public/trailers" {
        // A chunked answer announcing and sending trailers, one of them hop-by-hop.
        let (mut tx, body) = http_body_util::channel::Channel::<axum::body::Bytes>::new(2);
        tokio::spawn(async move {
            let _ = tx.send_data("answer".into()).await;
            let mut trailers = HeaderMap::new();
            trailers.insert("x-checksum", "42".parse().unwrap());
            trailers.insert("keep-alive", "timeout=1".parse().unwrap());
            let _ = tx.send_trailers(trailers).await;
        });
        return ([("trailer", "x-checksum, keep-alive")], Body::new(body)).into_response();
    }
    let (parts, mut body) = request.into_parts();
    let mut len = 0usize;
    let mut sum = 0u64;
    let mut first = true;
    let mut text = Vec::new();
    let mut trailers = serde_json::Map::new();
    while let Some(frame) = body.frame().await {
        let data = match frame.unwrap().into_data() {
            Ok(data) => data,
            Err(frame) => {
                for (name, value) in frame.into_trailers().iter().flatten() {
                    trailers.insert(
                        name.as_str().to_owned(),
                        Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
                    );
                }
                continue;
            }
        };
        if first && path == "/api/write/gated-upload" {
            state.first_chunk_seen.notify_one();
        }
        first = false;
        len += data.len();
        sum = data
            .iter()
            .fold(sum, |s, b| s.wrapping_mul(31).wrapping_add(u64::from(*b)));
        if text.len() < 1024 {
            text.extend_from_slice(&data);
        }
    }
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<Value> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        headers.insert(name.as_str().to_owned(), Value::Array(values));
    }
    axum::Json(json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body_len": len,
        "body_sum": sum,
        "body": if len <= 1024 { String::from_utf8_lossy(&text).into_owned() } else { String::new() },
        "trailers": trailers,
    }))
    .into_response()
}

struct Harness {
    proxy: SocketAddr,
    upstream: Arc<Upstream>,
    metrics: Arc<Metrics>,
    validator: Validator,
    http: reqwest::Client,
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proxy)
    }

    fn upstream_hits(&self) -> usize {
        self.upstream.hits.load(Ordering::SeqCst)
    }
}

async fn start_upstream() -> (SocketAddr, Arc<Upstream>) {
    let state = Arc::new(Upstream::default());
    let app = Router::new()
        .fallback(upstream_handler)
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, state)
}

/// Serves the proxy the way `portvakt serve` does ([`proxy::serve`]).
async fn start_proxy(state: ProxyState) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        proxy::serve(listener, state, std::future::pending())
            .await
            .unwrap()
    });
    addr
}

async fn harness_with(policy: &str, adjust: impl FnOnce(&mut ProxyConfig)) -> Harness {
    let (upstream_addr, upstream) = start_upstream().await;
    let policy = PolicyFile::parse(policy, "test.toml").unwrap();
    let mut config = ProxyConfig::new(format!("http://{upstream_addr}").parse().unwrap(), policy);
    adjust(&mut config);
    let metrics = Metrics::new();
    let validator = support::key_a_validator();
    let state = ProxyState::new(validator.clone(), Arc::clone(&metrics), config).unwrap();
    let proxy = start_proxy(state).await;
    Harness {
        proxy,
        upstream,
        metrics,
        validator,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

async fn harness() -> Harness {
    harness_with(POLICY, |_| {}).await
}

async fn json_of(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

/// Sends raw bytes (paths reqwest would normalize) and returns status and body.
async fn raw(addr: SocketAddr, request: String) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text[9..12].parse().unwrap();
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    })
    .await
    .unwrap()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn allowed_route_forwards_with_identity_and_strips_spoofed_headers() {
    let h = harness().await;
    let token = token(&format!("{READ} nav:arbeid:extra"));
    let authorization = format!("bearer  {token}");
    let response = h
        .http
        .get(h.url("/api/read/items?x=1&y=%2F"))
        .header("authorization", &authorization)
        .header("x-portvakt-consumer-orgno", "999999999")
        .header("X-Portvakt-Scopes", "nav:arbeid:admin")
        .header("x-portvakt-made-up", "evil")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo = json_of(response).await;
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["uri"], "/api/read/items?x=1&y=%2F");
    assert_eq!(echo["version"], "HTTP/1.1");
    let headers = &echo["headers"];
    assert_eq!(headers["authorization"], json!([authorization]));
    assert_eq!(headers["x-portvakt-consumer-orgno"], json!(["889640782"]));
    assert_eq!(headers["x-portvakt-consumer-id"], json!(["0192:889640782"]));
    assert_eq!(headers["x-portvakt-client-id"], json!(["2b3c-client"]));
    assert_eq!(
        headers["x-portvakt-scopes"],
        json!(["nav:arbeid:extra nav:arbeid:some.scope.read"])
    );
    assert_eq!(headers.get("x-portvakt-made-up"), None);
    assert_eq!(headers.get("x-portvakt-supplier-orgno"), None);
    assert_eq!(
        headers["x-forwarded-for"],
        json!(["203.0.113.7, 127.0.0.1"])
    );
    assert_eq!(headers["x-forwarded-proto"], json!(["https"]));
    assert_eq!(headers["host"], json!([h.proxy.to_string()]));
    let identity: Vec<&String> = headers
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("x-portvakt-"))
        .collect();
    assert_eq!(identity.len(), 4, "{identity:?}");

    let metrics = h.metrics.render(&h.validator);
    assert!(
        metrics.contains(r#"portvakt_requests_total{endpoint="proxy",outcome="forwarded"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"portvakt_validations_total{result="valid"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn supplier_header_on_delegated_tokens() {
    let h = harness().await;
    let mut claims = claims(READ);
    claims["supplier"] = json!({"authority": "iso6523-actorid-upis", "ID": "0192:974760673"});
    let token = support::sign(&KEY_A, &claims);
    let response = h
        .http
        .get(h.url("/api/read/x"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let echo = json_of(response).await;
    assert_eq!(
        echo["headers"]["x-portvakt-supplier-orgno"],
        json!(["974760673"])
    );
    assert_eq!(
        echo["headers"]["x-portvakt-consumer-orgno"],
        json!(["889640782"])
    );
}

#[tokio::test]
async fn upstream_status_headers_and_body_pass_through() {
    let h = harness().await;
    let response = h
        .http
        .get(h.url("/api/read/status/418"))
        .bearer_auth(token(READ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 418);
    assert_eq!(header(response.headers(), "x-upstream"), Some("yes"));
    assert_eq!(response.text().await.unwrap(), "teapot body");
}

#[tokio::test]
async fn head_and_method_matching() {
    let h = harness().await;
    let response = h
        .http
        .head(h.url("/api/read/x"))
        .bearer_auth(token(READ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "");

    // The read route is GET/HEAD only; POST there matches no route and is denied.
    let response = h
        .http
        .post(h.url("/api/read/x"))
        .bearer_auth(token(READ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(header(response.headers(), "www-authenticate"), None);

    // The write route has no `methods`: any method.
    for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let response = h
            .http
            .request(method.parse().unwrap(), h.url("/api/write/x"))
            .bearer_auth(token(WRITE))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{method}");
        assert_eq!(json_of(response).await["method"], method);
    }
}

#[tokio::test]
async fn missing_scope_is_403_insufficient_scope() {
    let h = harness().await;
    let response = h
        .http
        .post(h.url("/api/write/orders"))
        .bearer_auth(token(READ))
        .body("should not arrive")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        header(response.headers(), "www-authenticate"),
        Some(
            "Bearer realm=\"test-api\", error=\"insufficient_scope\", error_description=\"token lacks the required scope: needs `nav:arbeid:some.scope.write`\", scope=\"nav:arbeid:some.scope.write\""
        )
    );
    assert_eq!(
        header(response.headers(), "content-type"),
        Some("application/json")
    );
    assert_eq!(
        json_of(response).await,
        json!({"error": "insufficient_scope", "error_description": "token lacks the required scope: needs `nav:arbeid:some.scope.write`"})
    );
    assert_eq!(h.upstream_hits(), 0);
}

#[tokio::test]
async fn any_scopes_needs_one_of_them() {
    let h = harness().await;
    let response = h
        .http
        .get(h.url("/api/either/x"))
        .bearer_auth(token(READ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = h
        .http
        .get(h.url("/api/either/x"))
        .bearer_auth(token(WRITE))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        header(response.headers(), "www-authenticate"),
        Some(
            "Bearer realm=\"test-api\", error=\"insufficient_scope\", error_description=\"token lacks the required scope: needs one of `nav:other:scope`, `nav:arbeid:some.scope.read`\", scope=\"nav:other:scope nav:arbeid:some.scope.read\""
        )
    );
}

#[tokio::test]
async fn no_token_is_401_with_a_bare_challenge() {
    let h = harness().await;
    let response = h.http.get(h.url("/api/read/x")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        header(response.headers(), "www-authenticate"),
        Some("Bearer realm=\"test-api\"")
    );
    assert_eq!(
        json_of(response).await,
        json!({"error": "missing_token", "error_description": "no Authorization header; send `Authorization: Bearer <token>` with a Maskinporten access token"})
    );

    // Another scheme is answered the same way (RFC 6750 section 3.1).
    let response = h
        .http
        .get(h.url("/api/read/x"))
        .basic_auth("user", Some("secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        header(response.headers(), "www-authenticate"),
        Some("Bearer realm=\"test-api\"")
    );
    assert_eq!(h.upstream_hits(), 0);
}

#[tokio::test]
async fn malformed_authorization_is_400_invalid_request() {
    let h = harness().await;
    let response = h
        .http
        .get(h.url("/api/read/x"))
        .header("authorization", "Bearer Bearer abc.def.ghi")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        header(response.headers(), "www-authenticate"),
        Some(
            "Bearer realm=\"test-api\", error=\"invalid_request\", error_description=\"the Authorization header repeats the scheme; send `Bearer <token>`, not `Bearer Bearer <token>`\""
        )
    );
    assert_eq!(json_of(response).await["error"], "invalid_request");
}

#[tokio::test]
async fn invalid_token_is_401_invalid_token() {
    let h = harness().await;
    let forged = support::sign(&KEY_A_IMPOSTOR, &claims(READ));
    let response = h
        .http
        .get(h.url("/api/read/x"))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        header(response.headers(), "www-authenticate"),
        Some(
            "Bearer realm=\"test-api\", error=\"invalid_token\", error_description=\"signature does not verify with the issuer's key `key-a`\""
        )
    );
    assert_eq!(
        json_of(response).await,
        json!({"error": "invalid_token", "error_description": "signature does not verify with the issuer's key `key-a`"})
    );

    let response = h
        .http
        .get(h.url("/api/read/x"))
        .bearer_auth("abc.def")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        header(response.headers(), "www-authenticate"),
        Some(
            "Bearer realm=\"test-api\", error=\"invalid_token\", error_description=\"token is not a compact JWS: expected 3 dot-separated segments, found 2\""
        )
    );
    assert_eq!(h.upstream_hits(), 0);
    let metrics = h.metrics.render(&h.validator);
    assert!(
        metrics.contains(r#"portvakt_requests_total{endpoint="proxy",outcome="invalid_token"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"portvakt_validations_total{result="bad_signature"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn consumer_not_allowed_is_403() {
    let h = harness().await;
    let response = h
        .http
        .get(h.url("/api/partner/x"))
        .bearer_auth(token(READ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        header(response.headers(), "www-authenticate"),
        Some(
            "Bearer realm=\"test-api\", error=\"insufficient_scope\", error_description=\"consumer organization 889640782 is not allowed to call this API\""
        )
    );
    assert_eq!(
        json_of(response).await,
        json!({"error": "insufficient_scope", "error_description": "consumer organization 889640782 is not allowed to call this API"})
    );
    assert_eq!(h.upstream_hits(), 0);
}

#[tokio::test]
async fn unmatched_route_is_denied_by_default() {
    let h = harness().await;
    for path in ["/", "/admin", "/api", "/api/readx/y", "/api/either/x/y"] {
        let response = h
            .http
            .get(h.url(path))
            .bearer_auth(token(&format!("{READ} {WRITE}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
        assert_eq!(header(response.headers(), "www-authenticate"), None);
        assert_eq!(
            json_of(response).await,
            json!({"error": "access_denied", "error_description": "the proxy's policy does not allow this method and path"})
        );
    }
    assert_eq!(h.upstream_hits(), 0);
}

#[tokio::test]
async fn deny_route_carves_out_of_a_broader_route() {
    let h = harness().await;
    for path in ["/api/write/admin", "/api/write/admin/users/1"] {
        let response = h
            .http
            .delete(h.url(path))
            .bearer_auth(token(WRITE))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
        assert_eq!(header(response.headers(), "www-authenticate"), None);
        assert_eq!(json_of(response).await["error"], "access_denied");
    }
    assert_eq!(h.upstream_hits(), 0);
    let response = h
        .http
        .delete(h.url("/api/write/administrators"))
        .bearer_auth(token(WRITE))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn default_public_forwards_unmatched_without_token() {
    let h = harness_with(&format!("default = \"public\"\n{POLICY}"), |_| {}).await;
    let response = h
        .http
        .get(h.url("/elsewhere"))
        .header("x-portvakt-consumer-orgno", "999999999")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo = json_of(response).await;
    assert_eq!(echo["headers"].get("x-portvakt-consumer-orgno"), None);
    // Routes still apply.
    let response = h.http.get(h.url("/api/read/x")).send().await.unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn default_authenticated_needs_any_valid_token() {
    let h = harness_with(&format!("default = \"authenticated\"\n{POLICY}"), |_| {}).await;
    let response = h.http.get(h.url("/elsewhere")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        header(response.headers(), "www-authenticate"),
        Some("Bearer realm=\"test-api\"")
    );
    let response = h
        .http
        .get(h.url("/elsewhere"))
        .bearer_auth(token("nav:unrelated:scope"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo = json_of(response).await;
    assert_eq!(
        echo["headers"]["x-portvakt-scopes"],
        json!(["nav:unrelated:scope"])
    );
}

#[tokio::test]
async fn public_route_needs_no_token_and_gets_no_identity() {
    let h = harness().await;
    let response = h
        .http
        .post(h.url("/public/hello"))
        .header("x-portvakt-consumer-orgno", "999999999")
        .header("x-portvakt-scopes", READ)
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo = json_of(response).await;
    assert_eq!(echo["body"], "hi");
    let spoofed: Vec<&String> = echo["headers"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("x-portvakt-"))
        .collect();
    assert!(spoofed.is_empty(), "{spoofed:?}");

    // A token on a public route is passed on but neither validated nor turned into identity.
    let response = h
        .http
        .get(h.url("/public/hello"))
        .bearer_auth("not-even-a-jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo = json_of(response).await;
    assert_eq!(
        echo["headers"]["authorization"],
        json!(["Bearer not-even-a-jwt"])
    );
    assert_eq!(echo["headers"].get("x-portvakt-scopes"), None);
}

#[tokio::test]
async fn path_tricks_are_refused_before_routing() {
    let h = harness().await;
    for (path, description) in [
        (
            "/public/../api/write/x",
            "the path has a `.` or `..` segment; send the path in its canonical form",
        ),
        (
            "/public/%2e%2E/api/write/x",
            "the path has a `.` or `..` segment; send the path in its canonical form",
        ),
        (
            "/public/./x",
            "the path has a `.` or `..` segment; send the path in its canonical form",
        ),
        (
            "/public/..%2Fapi%2Fwrite",
            "the path contains an encoded `/` (%2F), which this proxy refuses; send the path in its canonical form",
        ),
        (
            "/public/x%2f..%2f..%2fapi",
            "the path contains an encoded `/` (%2F), which this proxy refuses; send the path in its canonical form",
        ),
        (
            "/public/..;/api/write/x",
            "the path contains `;`, which this proxy refuses; send the path in its canonical form",
        ),
        (
            "/public/%252e%252e/api",
            "the path contains an encoded `%` (%25), which this proxy refuses; send the path in its canonical form",
        ),
        (
            "/public//api/write/x",
            "the path has an empty segment (`//`); send the path in its canonical form",
        ),
        (
            "/public/%5c..%5capi",
            "the path contains an encoded `\\` (%5C), which this proxy refuses; send the path in its canonical form",
        ),
    ] {
        let (status, body) = raw(
            h.proxy,
            format!("GET {path} HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({"error": "invalid_path", "error_description": description}),
            "{path}"
        );
    }
    // Not an absolute path.
    let (status, _) = raw(
        h.proxy,
        "OPTIONS * HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n".to_owned(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(h.upstream_hits(), 0);

    // Percent-encoded unreserved characters are decoded for matching, and forwarded as sent.
    let token = token(READ);
    let (status, body) = raw(
        h.proxy,
        format!(
            "GET /%61pi/read/x HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(status, 200);
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["uri"], "/%61pi/read/x");
    // ... so they cannot dodge a protected route either.
    let (status, _) = raw(
        h.proxy,
        "GET /%61pi/read/x HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n".to_owned(),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_repeated_host_or_none_in_http_1_1_is_refused() {
    let h = harness().await;
    for (request, description) in [
        (
            "GET /public/x HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
            "the request has more than one Host header; send exactly one",
        ),
        (
            "GET /public/x HTTP/1.1\r\nConnection: close\r\n\r\n",
            "an HTTP/1.1 request must have a Host header (RFC 9112 section 3.2)",
        ),
    ] {
        let (status, body) = raw(h.proxy, request.to_owned()).await;
        assert_eq!(status, 400, "{request}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({"error": "invalid_request", "error_description": description}),
        );
    }
    assert_eq!(h.upstream_hits(), 0, "neither was forwarded");
    // HTTP/1.0 may leave Host out.
    let (status, _) = raw(h.proxy, "GET /public/x HTTP/1.0\r\n\r\n".to_owned()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_method_with_lower_case_letters_is_refused_before_routing() {
    // Methods are case-sensitive; `delete` would pass a `DELETE` deny route and reach an
    // upstream that upper-cases methods before routing.
    let h = harness().await;
    let token = token(READ);
    for method in ["delete", "Delete", "get"] {
        let (status, body) = raw(
            h.proxy,
            format!(
                "{method} /api/read/x HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert_eq!(status, 400, "{method}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["error_description"],
            format!(
                "method `{method}` has lower-case letters; methods are case-sensitive: send it upper-case"
            )
        );
    }
    assert_eq!(h.upstream_hits(), 0);
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed() {
    let h = harness().await;
    let token = token(READ);
    let (status, body) = raw(
        h.proxy,
        format!(
            "GET /api/read/x HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer {token}\r\n\
             Connection: close, x-secret-hop, authorization\r\nX-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\n\
             Proxy-Authorization: Basic eDp5\r\nProxy: http://evil\r\nTE: gzip\r\nUpgrade: websocket\r\n\
             X-End-To-End: kept\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(status, 200);
    let echo: Value = serde_json::from_str(&body).unwrap();
    let headers = &echo["headers"];
    for gone in [
        "connection",
        "x-secret-hop",
        "keep-alive",
        "proxy-authorization",
        "proxy",
        "te",
        "upgrade",
    ] {
        assert_eq!(headers.get(gone), None, "{gone}: {headers}");
    }
    assert_eq!(headers["x-end-to-end"], json!(["kept"]));
    // `Connection` cannot remove the credentials.
    assert_eq!(headers["authorization"], json!([format!("Bearer {token}")]));
    assert_eq!(headers["host"], json!(["api"]));
}

#[tokio::test]
async fn host_rewritten_when_not_preserved() {
    let (upstream_addr, _) = start_upstream().await;
    let h = harness_with(POLICY, |c| {
        c.preserve_host = false;
        c.upstream = format!("http://{upstream_addr}").parse().unwrap();
    })
    .await;
    let response = h.http.get(h.url("/public/x")).send().await.unwrap();
    let echo = json_of(response).await;
    assert_eq!(echo["headers"]["host"], json!([upstream_addr.to_string()]));
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let h = harness().await;
    const SIZE: usize = 10 * 1024 * 1024;
    let body: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let expected_sum = body
        .iter()
        .fold(0u64, |s, b| s.wrapping_mul(31).wrapping_add(u64::from(*b)));
    let response = h
        .http
        .put(h.url("/api/write/upload"))
        .bearer_auth(token(WRITE))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo = json_of(response).await;
    assert_eq!(echo["body_len"], SIZE);
    assert_eq!(echo["body_sum"], expected_sum);

    let response = h
        .http
        .get(h.url(&format!("/api/read/download/{SIZE}")))
        .bearer_auth(token(READ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.len(), SIZE);
    assert!(bytes.iter().all(|b| *b == b'x'));
}

#[tokio::test]
async fn response_body_is_streamed_not_buffered() {
    let h = harness().await;
    let mut response = h
        .http
        .get(h.url("/api/read/gated"))
        .bearer_auth(token(READ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The upstream holds back the rest until we have seen the first chunk.
    let first = tokio::time::timeout(Duration::from_secs(5), response.chunk())
        .await
        .expect("the first chunk arrived before the upstream finished")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"first;");
    h.upstream.release.notify_one();
    let rest = response.bytes().await.unwrap();
    assert_eq!(&rest[..], b"second");
}

#[tokio::test]
async fn request_body_is_streamed_not_buffered() {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let h = harness().await;
    let client: Client<_, http_body_util::channel::Channel<axum::body::Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let (mut tx, body) = http_body_util::channel::Channel::<axum::body::Bytes>::new(1);
    let request = http::Request::post(h.url("/api/write/gated-upload"))
        .header("authorization", format!("Bearer {}", token(WRITE)))
        .body(body)
        .unwrap();
    let pending = tokio::spawn(client.request(request));
    tx.send_data("first;".into()).await.unwrap();
    // The upstream sees the first chunk while the client still holds the rest.
    tokio::time::timeout(
        Duration::from_secs(5),
        h.upstream.first_chunk_seen.notified(),
    )
    .await
    .expect("the first chunk reached the upstream before the body ended");
    tx.send_data("second".into()).await.unwrap();
    drop(tx);
    let response = pending.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let echo: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["body"], "first;second");
}

#[tokio::test]
async fn http2_clients_are_served() {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let h = harness().await;
    let client: Client<_, String> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let request = http::Request::get(h.url("/api/read/h2"))
        .header("authorization", format!("Bearer {}", token(READ)))
        .body(String::new())
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let echo: Value = serde_json::from_slice(&body).unwrap();
    // Forwarded over HTTP/1.1, with the client's :authority as Host.
    assert_eq!(echo["version"], "HTTP/1.1");
    assert_eq!(echo["headers"]["host"], json!([h.proxy.to_string()]));
    assert_eq!(
        echo["headers"]["x-portvakt-consumer-orgno"],
        json!(["889640782"])
    );
}

#[tokio::test]
async fn upstream_down_is_502() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = free.local_addr().unwrap();
    drop(free);
    let h = harness_with(POLICY, |c| {
        c.upstream = format!("http://{dead}").parse().unwrap();
    })
    .await;
    let response = h.http.get(h.url("/public/x")).send().await.unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(
        json_of(response).await,
        json!({"error": "bad_gateway", "error_description": "the upstream is unreachable (connection refused or failed)"})
    );
}

#[tokio::test]
async fn slow_upstream_is_504() {
    let h = harness_with(POLICY, |c| c.request_timeout = Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let response = h.http.get(h.url("/public/slow")).send().await.unwrap();
    assert_eq!(response.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        json_of(response).await,
        json!({"error": "gateway_timeout", "error_description": "the upstream did not answer within 200 ms"})
    );
    let metrics = h.metrics.render(&h.validator);
    assert!(
        metrics
            .contains(r#"portvakt_requests_total{endpoint="proxy",outcome="gateway_timeout"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn no_keys_yet_is_503_with_retry_after() {
    let (upstream_addr, _) = start_upstream().await;
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = free.local_addr().unwrap();
    drop(free);
    let config = Config::builder()
        .issuer(ISSUER)
        .jwks_uri(format!("http://{dead}/jwk"))
        .http_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let validator = Validator::new(config).unwrap();
    let policy = PolicyFile::parse(POLICY, "test.toml").unwrap();
    let config = ProxyConfig::new(format!("http://{upstream_addr}").parse().unwrap(), policy);
    let state = ProxyState::new(validator, Metrics::new(), config).unwrap();
    let proxy = start_proxy(state).await;
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{proxy}/api/read/x"))
        .bearer_auth(token(READ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(header(response.headers(), "retry-after"), Some("5"));
    assert_eq!(header(response.headers(), "www-authenticate"), None);
    assert_eq!(json_of(response).await["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn upstream_must_be_plain_http_origin() {
    let policy = || PolicyFile::parse(POLICY, "test.toml").unwrap();
    for (upstream, message) in [
        (
            "https://127.0.0.1:8443",
            "upstream `https://127.0.0.1:8443/` is not http://: the upstream is the application in the same pod, reached over loopback; use http://127.0.0.1:PORT",
        ),
        (
            "http://127.0.0.1:8080/base",
            "upstream `http://127.0.0.1:8080/base` must be only scheme, host and port (requests keep their own paths); use e.g. http://127.0.0.1:8080",
        ),
        (
            "http://user:pw@127.0.0.1:8080",
            "upstream `http://user:pw@127.0.0.1:8080/` must be only scheme, host and port (requests keep their own paths); use e.g. http://127.0.0.1:8080",
        ),
    ] {
        let config = ProxyConfig::new(upstream.parse().unwrap(), policy());
        let error: ProxyError =
            ProxyState::new(support::key_a_validator(), Metrics::new(), config).unwrap_err();
        assert_eq!(error.to_string(), message);
    }
    assert_eq!(
        portvakt_cli::proxy::parse_upstream("127.0.0.1:8080").unwrap_err(),
        "upstream `127.0.0.1:8080` has no scheme; write http://127.0.0.1:8080"
    );
}

#[tokio::test]
async fn identity_headers_spelt_with_underscores_never_reach_the_upstream() {
    let h = harness().await;
    // CGI, WSGI, Rack and PHP read `X_Portvakt_Consumer_Orgno` as HTTP_X_PORTVAKT_CONSUMER_ORGNO.
    let forged = [
        ("X_Portvakt_Consumer_Orgno", "999999999"),
        ("x_portvakt_scopes", "nav:arbeid:admin"),
        ("x-portvakt_client-id", "evil-client"),
        ("X_PORTVAKT-SUPPLIER_ORGNO", "999999999"),
    ];
    let send = |path: &str, token: Option<String>| {
        let mut request = h.http.get(h.url(path));
        for (name, value) in forged {
            request = request.header(name, value);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let echo = json_of(send("/api/read/x", Some(token(READ))).await.unwrap()).await;
    let headers = echo["headers"].as_object().unwrap();
    let identity: Vec<(&String, &Value)> = headers
        .iter()
        .filter(|(name, _)| name.replace('_', "-").starts_with("x-portvakt-"))
        .collect();
    assert_eq!(
        identity,
        [
            (&"x-portvakt-client-id".to_owned(), &json!(["2b3c-client"])),
            (
                &"x-portvakt-consumer-id".to_owned(),
                &json!(["0192:889640782"])
            ),
            (
                &"x-portvakt-consumer-orgno".to_owned(),
                &json!(["889640782"])
            ),
            (&"x-portvakt-scopes".to_owned(), &json!([READ])),
        ],
        "{headers:?}"
    );
    // On a public route nothing of the kind arrives.
    let echo = json_of(send("/public/x", None).await.unwrap()).await;
    let spoofed: Vec<&String> = echo["headers"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|name| name.replace('_', "-").starts_with("x-portvakt-"))
        .collect();
    assert!(spoofed.is_empty(), "{spoofed:?}");
}

#[tokio::test]
async fn method_override_headers_are_removed() {
    let h = harness().await;
    let overrides = [
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
        "X_HTTP_Method_Override",
        "x_method_override",
    ];
    for (path, token) in [("/api/write/x", Some(token(WRITE))), ("/public/x", None)] {
        let mut request = h.http.post(h.url(path));
        for name in overrides {
            request = request.header(name, "DELETE");
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let echo = json_of(request.send().await.unwrap()).await;
        assert_eq!(echo["method"], "POST", "{path}");
        let leaked: Vec<&String> = echo["headers"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|name| name.replace('_', "-").contains("method"))
            .collect();
        assert!(leaked.is_empty(), "{path}: {leaked:?}");
    }
    // Other headers that merely mention a method pass.
    let echo = json_of(
        h.http
            .get(h.url("/public/x"))
            .header("x-http-method-override-note", "kept")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        echo["headers"]["x-http-method-override-note"],
        json!(["kept"])
    );
}

/// Connects, sends `bytes`, and returns what the server sent until it closed, and when.
async fn until_closed(addr: SocketAddr, bytes: &'static [u8]) -> (Vec<u8>, Duration) {
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(bytes).unwrap();
        let mut answer = Vec::new();
        match stream.read_to_end(&mut answer) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
        (answer, started.elapsed())
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn slow_clients_are_disconnected_after_the_header_read_timeout() {
    let h = harness_with(POLICY, |c| {
        c.header_read_timeout = Duration::from_millis(300);
    })
    .await;
    for bytes in [
        // Half a request line (slowloris).
        &b"GET /public/x HT"[..],
        // Headers begun, never finished.
        b"GET /public/x HTTP/1.1\r\nHost: api\r\nX-Slow: 1",
        // Half the HTTP/2 preface.
        b"PRI * HTTP/2.0\r\n",
        // Nothing at all.
        b"",
    ] {
        let (answer, elapsed) = until_closed(h.proxy, bytes).await;
        let shown = String::from_utf8_lossy(bytes);
        assert!(answer.is_empty(), "{shown:?}: {answer:?}");
        assert!(
            elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
            "{shown:?}: closed after {elapsed:?}"
        );
    }
    assert_eq!(h.upstream_hits(), 0);
    // A client that sends its request in time is served.
    let response = h.http.get(h.url("/public/x")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn oversized_request_headers_are_431() {
    let h = harness().await;
    let (status, _) = raw(
        h.proxy,
        format!(
            "GET /public/x HTTP/1.1\r\nHost: api\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(100 * 1024)
        ),
    )
    .await;
    assert_eq!(status, 431);
    assert_eq!(h.upstream_hits(), 0);
    // A token over the validator's 16 KiB limit still gets through the header limit, and is
    // refused by the validator.
    let big = token(&format!("{READ} {}", "nav:arbeid:x ".repeat(1200)));
    assert!(big.len() > 16 * 1024, "{}", big.len());
    let response = h
        .http
        .get(h.url("/api/read/x"))
        .bearer_auth(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(json_of(response).await["error"], "invalid_token");
}

/// Reads one HTTP/1.1 response with a Content-Length from a blocking stream.
fn read_response(stream: &mut std::net::TcpStream) -> std::io::Result<String> {
    let mut data = Vec::new();
    let mut byte = [0u8; 1];
    while !data.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        data.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&data).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    data.extend_from_slice(&body);
    Ok(String::from_utf8_lossy(&data).into_owned())
}

/// At the cap, an idle keep-alive connection gives way to a new client (see
/// `tests/hostile.rs` for a busy one, which never does).
#[tokio::test]
async fn connections_beyond_the_cap_take_the_place_of_an_idle_one() {
    let h = harness_with(POLICY, |c| c.max_connections = 1).await;
    let addr = h.proxy;
    tokio::task::spawn_blocking(move || {
        let request = b"GET /public/x HTTP/1.1\r\nHost: api\r\n\r\n";
        // The first connection is served and kept alive, idle.
        let mut first = std::net::TcpStream::connect(addr).unwrap();
        first.write_all(request).unwrap();
        assert!(
            read_response(&mut first)
                .unwrap()
                .starts_with("HTTP/1.1 200")
        );
        // The second is served at once, and the first is closed for it.
        let started = std::time::Instant::now();
        let mut second = std::net::TcpStream::connect(addr).unwrap();
        second.write_all(request).unwrap();
        second
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert!(
            read_response(&mut second)
                .unwrap()
                .starts_with("HTTP/1.1 200")
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        first
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(
            first.read(&mut [0u8; 16]).unwrap(),
            0,
            "the idle one was closed"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn forwards_to_an_http2_upstream_with_te_trailers() {
    let h = harness_with(POLICY, |c| c.upstream_http2 = true).await;
    for te in [
        "trailers",
        "trailers, deflate;q=0.5",
        "deflate, Trailers;q=1",
    ] {
        let response = h
            .http
            .post(h.url("/api/write/grpc"))
            .bearer_auth(token(WRITE))
            .header("te", te)
            .body("payload")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{te}");
        let echo = json_of(response).await;
        assert_eq!(echo["version"], "HTTP/2.0", "{te}");
        assert_eq!(echo["body"], "payload");
        assert_eq!(echo["headers"]["te"], json!(["trailers"]), "{te}");
        assert_eq!(
            echo["headers"]["x-portvakt-consumer-orgno"],
            json!(["889640782"])
        );
    }
    // Any other TE is removed, as for HTTP/1.1 upstreams.
    let echo = json_of(
        h.http
            .get(h.url("/public/x"))
            .header("te", "deflate")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(echo["version"], "HTTP/2.0");
    assert_eq!(echo["headers"].get("te"), None);
}

#[tokio::test]
async fn te_trailers_is_sent_to_an_http1_upstream_as_a_connection_option() {
    let h = harness().await;
    let echo = json_of(
        h.http
            .get(h.url("/public/x"))
            .header("te", "trailers, deflate")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(echo["version"], "HTTP/1.1");
    assert_eq!(echo["headers"]["te"], json!(["trailers"]));
    assert_eq!(echo["headers"]["connection"], json!(["te"]));

    let echo = json_of(
        h.http
            .get(h.url("/public/x"))
            .header("te", "deflate")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(echo["headers"].get("te"), None);
}

/// Sends `n` concurrent requests to `/public/concurrent` and returns the most the upstream
/// saw at once.
async fn peak_concurrency(h: &Harness, n: usize) -> usize {
    let requests: Vec<_> = (0..n)
        .map(|_| {
            let request = h.http.get(h.url("/public/concurrent")).send();
            tokio::spawn(request)
        })
        .collect();
    for request in requests {
        let response = request.await.unwrap().unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "done");
    }
    h.upstream.peak.load(Ordering::SeqCst)
}

#[tokio::test]
async fn max_in_flight_bounds_upstream_concurrency() {
    let h = harness_with(POLICY, |c| c.max_in_flight = 1).await;
    assert_eq!(peak_concurrency(&h, 4).await, 1);
    // The same requests without the bound do run at once.
    let h = harness().await;
    assert!(peak_concurrency(&h, 4).await > 1);
}

#[tokio::test]
async fn zero_limits_are_refused() {
    let policy = || PolicyFile::parse(POLICY, "test.toml").unwrap();
    let upstream: url::Url = "http://127.0.0.1:8080".parse().unwrap();
    let mut config = ProxyConfig::new(upstream.clone(), policy());
    config.max_connections = 0;
    let error = ProxyState::new(support::key_a_validator(), Metrics::new(), config).unwrap_err();
    assert_eq!(error.to_string(), "max_connections must be at least 1");
    let mut config = ProxyConfig::new(upstream, policy());
    config.header_read_timeout = Duration::ZERO;
    let error = ProxyState::new(support::key_a_validator(), Metrics::new(), config).unwrap_err();
    assert_eq!(
        error.to_string(),
        "header_read_timeout must be longer than zero"
    );
}

// ---------------------------------------------------------------------------------------------
// The policy file.

fn policy_errors(text: &str) -> String {
    PolicyFile::parse(text, "policy.toml")
        .unwrap_err()
        .to_string()
}

#[test]
fn example_policy_is_valid_and_protects_the_guide_scopes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/policy.toml");
    let policy = PolicyFile::from_path(path).unwrap();
    assert!(policy.warnings().is_empty(), "{:?}", policy.warnings());
    assert_eq!(policy.realm(), "arbeid-api");
    let summary = policy.summary();
    assert!(summary.contains(READ), "{summary}");
    assert!(summary.contains(WRITE), "{summary}");
}

#[test]
fn check_policy_reports() {
    use portvakt_cli::proxy::{PolicyCheckError, check_policy};
    let dir = std::env::temp_dir().join(format!("portvakt-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "realm = \"api\"\n[[route]]\nmethods = [\"GET\", \"HEAD\"]\npath = \"/a/**\"\nany_scopes = [\"x\", \"y\"]\n\n[[route]]\npath = \"/b\"\nscopes = [\"z\"]\nconsumers = [\"123456789\"]\n\n[[route]]\npath = \"/c/*\"\npublic = true\n\n[[route]]\npath = \"/d\"\ndeny = true\n",
    )
    .unwrap();
    let file = good.display().to_string();
    assert_eq!(
        check_policy(&good).unwrap(),
        format!(
            "{file}:10:14: warning: organization number 123456789 fails the modulus-11 check digit\n  = help: check the number in Enhetsregisteret (brreg.no); a typo admits a stranger or nobody\n\
             {file}:4: GET,HEAD /a/** -> token with one of `x`, `y`\n\
             {file}:8: * /b -> token with `z` from consumers 123456789\n\
             {file}:13: * /c/* -> public\n\
             {file}:17: * /d -> deny\n\
             {file}: 4 routes, default deny, realm \"api\", 1 warning\n"
        )
    );
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[route]]\npath = \"/d\"\ndeny = true\npublic = true\n",
    )
    .unwrap();
    let file = bad.display().to_string();
    assert_eq!(
        check_policy(&bad).unwrap_err(),
        PolicyCheckError::Invalid(format!(
            "{file}:3:8: error: a denied route cannot have `public`\n  = help: denied routes refuse every request: remove `public` or `deny = true`\n{file}: 1 error, 0 warnings\n"
        ))
    );
    let missing = dir.join("missing.toml");
    let error = check_policy(&missing).unwrap_err();
    assert!(
        matches!(error, PolicyCheckError::Unreadable(_)),
        "{error:?}"
    );
    let error = error.to_string();
    assert!(
        error.starts_with(&format!(
            "error: cannot read policy file {}: ",
            missing.display()
        )),
        "{error}"
    );
    assert!(
        error.ends_with(
            "\n  = help: pass the route policy (TOML), e.g. --policy examples/policy.toml\n"
        ),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_keys_are_errors_with_position() {
    assert_eq!(
        policy_errors("[[route]]\npath = \"/a\"\nscope = [\"x\"]\n"),
        "policy.toml:3:1: error: unknown field `scope`, expected one of `methods`, `path`, `scopes`, `any_scopes`, `consumers`, `public`, `deny`\n  = help: did you mean `scopes`?\npolicy.toml: 1 error, 0 warnings"
    );
    assert_eq!(
        policy_errors("realm = \"x\"\nroutes = []\n"),
        "policy.toml:2:1: error: unknown field `routes`, expected one of `realm`, `default`, `route`\n  = help: routes are `[[route]]` tables\npolicy.toml: 1 error, 0 warnings"
    );
}

#[test]
fn toml_syntax_errors_have_positions() {
    let text = policy_errors("[[route]]\npath = \"/a\nscopes = [\"x\"]\n");
    assert!(text.starts_with("policy.toml:2:"), "{text}");
    assert!(text.ends_with("policy.toml: 1 error, 0 warnings"), "{text}");
}

#[test]
fn route_errors_say_what_to_fix() {
    let text = policy_errors(
        r#"default = "allow"

[[route]]
methods = ["get", "FETCH"]
path = "/api/**/x"
scopes = []

[[route]]
path = "/b"
scopes = ["a b"]
any_scopes = ["c"]

[[route]]
path = "/c"

[[route]]
path = "/d"
public = true
scopes = ["x"]

[[route]]
path = "/e"
scopes = ["x"]
consumers = ["12345678", "123456789"]
"#,
    );
    assert_eq!(
        text,
        r#"policy.toml:1:11: error: unknown default `allow`
  = help: write `deny` (refuse requests no route matches), `authenticated` (any valid token) or `public` (no token needed)
policy.toml:4:12: error: method `get` is not upper-case
  = help: HTTP methods are case-sensitive: write `GET`
policy.toml:4:19: error: unknown method `FETCH`
  = help: use one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE
policy.toml:5:8: error: `**` is not the last segment of path pattern `/api/**/x`
  = help: `**` matches all remaining segments, so it can only end a pattern; use `*` for one segment
policy.toml:6:10: error: `scopes` is empty
  = help: name at least one scope, e.g. "nav:arbeid:some.scope.read"
policy.toml:10:11: error: scope "a b" contains ' ' and can never be granted
  = help: one scope per string: ["a", "b"], not ["a b"]
policy.toml:11:14: error: a route cannot have both `scopes` and `any_scopes`
  = help: use `scopes` when all are needed, `any_scopes` when one is enough; split the route if you need both
policy.toml:14:8: error: route `/c` requires no scope and is neither public nor denied
  = help: add `scopes = [...]` (all needed) or `any_scopes = [...]` (one needed), `public = true` for a route that needs no token, or `deny = true`
policy.toml:18:10: error: a public route cannot have `scopes`
  = help: public routes forward without a token: remove `scopes` or `public = true`
policy.toml:24:14: error: consumer "12345678" is not a nine-digit organization number
  = help: write the consumer's organization number, e.g. "889640782" (no spaces, no `0192:` prefix)
policy.toml:24:26: warning: organization number 123456789 fails the modulus-11 check digit
  = help: check the number in Enhetsregisteret (brreg.no); a typo admits a stranger or nobody
policy.toml: 10 errors, 1 warning"#
    );
}

#[test]
fn warnings_do_not_stop_the_policy() {
    let policy = PolicyFile::parse(
        "[[route]]\npath = \"/**\"\npublic = true\n\n[[route]]\npath = \"/api\"\nscopes = [\"x\", \"x\"]\nconsumers = [\"123456789\"]\n",
        "policy.toml",
    )
    .unwrap();
    let warnings: Vec<String> = policy.warnings().iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        [
            "policy.toml:6:8: warning: this route never matches: the route at line 2 matches every request first\n  = help: routes are tried in order; move `/api` above line 2",
            "policy.toml:7:16: warning: scope `x` is listed twice\n  = help: remove the duplicate",
            "policy.toml:8:14: warning: organization number 123456789 fails the modulus-11 check digit\n  = help: check the number in Enhetsregisteret (brreg.no); a typo admits a stranger or nobody",
        ]
    );
}

#[test]
fn first_matching_route_wins() {
    use http::Method;
    use portvakt_cli::proxy::routes::{Access, RequestPath};
    let policy = PolicyFile::parse(
        "[[route]]\nmethods = [\"GET\"]\npath = \"/a/*\"\npublic = true\n\n[[route]]\npath = \"/a/**\"\nscopes = [\"s\"]\n",
        "p.toml",
    )
    .unwrap();
    let path = RequestPath::parse("/a/b").unwrap();
    assert_eq!(policy.match_route(&Method::GET, &path).unwrap().line(), 3);
    assert_eq!(policy.access(&Method::GET, &path), &Access::Public);
    assert_eq!(policy.match_route(&Method::POST, &path).unwrap().line(), 7);
    let other = RequestPath::parse("/b").unwrap();
    assert!(policy.match_route(&Method::GET, &other).is_none());
    assert_eq!(policy.access(&Method::GET, &other), &Access::Deny);
}

/// Every refusal is counted under its outcome: the library's class for credentials
/// (`bearer::authorize`), the proxy's own for paths and routes.
#[tokio::test]
async fn every_refusal_is_counted_under_its_outcome() {
    let h = harness().await;
    let get = |path: &str, authorization: Option<String>| {
        let mut request = h.http.get(h.url(path));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send()
    };
    let bearer = |scope: &str| Some(format!("Bearer {}", token(scope)));
    for (path, authorization, status) in [
        ("/api/read/x", None, 401),
        ("/api/read/x", Some("Basic dXNlcjpwYXNz".to_owned()), 401),
        ("/api/read/x", Some("Bearer a b".to_owned()), 400),
        ("/api/read/x", Some("Bearer".to_owned()), 400),
        ("/api/read/x", Some("Bearer abc.def".to_owned()), 401),
        ("/api/read/x", bearer(WRITE), 403),
        ("/api/partner/x", bearer(READ), 403),
        ("/admin", bearer(READ), 403),
    ] {
        let response = get(path, authorization.clone()).await.unwrap();
        assert_eq!(response.status(), status, "{path} {authorization:?}");
    }
    let (status, _) = raw(
        h.proxy,
        "GET /api/read/../x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(h.upstream_hits(), 0);

    let metrics = h.metrics.render(&h.validator);
    for (outcome, count) in [
        ("missing_token", 2),
        ("bad_request", 3),
        ("invalid_token", 1),
        ("forbidden", 2),
        ("denied", 1),
    ] {
        let line =
            format!(r#"portvakt_requests_total{{endpoint="proxy",outcome="{outcome}"}} {count}"#);
        assert!(metrics.contains(&line), "{line}\n{metrics}");
    }
    assert!(
        metrics.contains(r#"portvakt_requests_total{endpoint="proxy",outcome="forwarded"} 0"#),
        "{metrics}"
    );
}

// ---------------------------------------------------------------------------------------------
// Worker threads (`ProxyConfig::workers`): each its own runtime and accept loop on one socket.

/// Many clients at once through two worker threads: every one is authorized and forwarded with
/// its identity, and every request is counted once.
#[tokio::test]
async fn worker_threads_serve_every_connection() {
    let h = harness_with(POLICY, |c| c.workers = 2).await;
    let token = token(READ);
    let mut clients = Vec::new();
    for _ in 0..24 {
        // A client of its own per task: a connection each, spread over both workers.
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = h.url("/api/read/items");
        let token = token.clone();
        clients.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..5 {
                let response = http.get(&url).bearer_auth(&token).send().await.unwrap();
                assert_eq!(response.status(), 200);
                let echo = json_of(response).await;
                seen.push(echo["headers"]["x-portvakt-consumer-orgno"].clone());
            }
            seen
        }));
    }
    for client in clients {
        for orgno in client.await.unwrap() {
            assert_eq!(orgno, json!(["889640782"]));
        }
    }
    assert_eq!(h.upstream_hits(), 24 * 5);
    let metrics = h.metrics.render(&h.validator);
    assert!(
        metrics.contains(r#"portvakt_requests_total{endpoint="proxy",outcome="forwarded"} 120"#),
        "{metrics}"
    );
}

/// `max_connections` is for all worker threads together: with a cap of 1 on two workers, a new
/// client still takes the place of the idle one, whichever thread holds it.
#[tokio::test]
async fn worker_threads_share_the_connection_cap() {
    let h = harness_with(POLICY, |c| {
        c.workers = 2;
        c.max_connections = 1;
    })
    .await;
    let addr = h.proxy;
    tokio::task::spawn_blocking(move || {
        let request = b"GET /public/x HTTP/1.1\r\nHost: api\r\n\r\n";
        let mut previous: Option<std::net::TcpStream> = None;
        for _ in 0..6 {
            let mut next = std::net::TcpStream::connect(addr).unwrap();
            next.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            next.write_all(request).unwrap();
            assert!(
                read_response(&mut next)
                    .unwrap()
                    .starts_with("HTTP/1.1 200")
            );
            if let Some(mut idle) = previous.take() {
                idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                assert_eq!(
                    idle.read(&mut [0u8; 16]).unwrap(),
                    0,
                    "the idle connection was closed for the new one"
                );
            }
            // Past MIN_IDLE, so that it may give way to the next.
            std::thread::sleep(Duration::from_millis(80));
            previous = Some(next);
        }
    })
    .await
    .unwrap();
}

/// On shutdown, every worker thread stops accepting, lets the requests in flight finish, and
/// `serve` returns once all have drained.
#[tokio::test]
async fn worker_threads_drain_on_shutdown() {
    let (upstream_addr, _upstream) = start_upstream().await;
    let policy = PolicyFile::parse(POLICY, "test.toml").unwrap();
    let mut config = ProxyConfig::new(format!("http://{upstream_addr}").parse().unwrap(), policy);
    config.workers = 2;
    let state = ProxyState::new(support::key_a_validator(), Metrics::new(), config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(proxy::serve(listener, state, async move {
        let _ = stop_rx.await;
    }));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    // Requests that take 200 ms upstream, in flight when shutdown begins.
    let in_flight: Vec<_> = (0..4)
        .map(|_| {
            let request = http.get(format!("http://{addr}/public/concurrent")).send();
            tokio::spawn(request)
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop_tx.send(()).unwrap();
    for request in in_flight {
        let response = request.await.unwrap().unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "done");
    }
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("serve returned after draining")
        .unwrap()
        .unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "nothing listens after shutdown"
    );
}

#[tokio::test]
async fn zero_workers_is_refused() {
    let policy = PolicyFile::parse(POLICY, "test.toml").unwrap();
    let mut config = ProxyConfig::new("http://127.0.0.1:9".parse().unwrap(), policy);
    config.workers = 0;
    let error = ProxyState::new(support::key_a_validator(), Metrics::new(), config).unwrap_err();
    assert_eq!(error.to_string(), "workers must be at least 1");
}

// ---------------------------------------------------------------------------------------------
// Trailers, request bodies of unknown length, and the host the upstream gets.

/// Sends `request` over HTTP/2 with prior knowledge,
/// with `data` as a body of undeclared length, then `trailers` if any; the echo.
async fn h2_echo(
    request: http::request::Builder,
    data: &'static str,
    trailers: Option<HeaderMap>,
) -> Value {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let client: Client<_, http_body_util::channel::Channel<axum::body::Bytes>> =
        Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
    let (mut tx, body) = http_body_util::channel::Channel::<axum::body::Bytes>::new(2);
    let request = request.body(body).unwrap();
    let pending = tokio::spawn(client.request(request));
    tx.send_data(data.into()).await.unwrap();
    if let Some(trailers) = trailers {
        tx.send_trailers(trailers).await.unwrap();
    }
    drop(tx);
    let response = pending.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

/// A chunked POST to `/public/x` announcing and sending, besides `x-checksum`, trailers rule 5
/// removes from headers and a hop-by-hop one; the echo.
async fn chunked_post_with_trailers(h: &Harness) -> Value {
    let (status, body) = raw(
        h.proxy,
        "POST /public/x HTTP/1.1\r\nHost: api\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\
         Trailer: X-Portvakt-Consumer-Orgno, x-http-method-override,x_original_url, x-checksum, keep-alive\r\n\r\n\
         3\r\nabc\r\n0\r\nx-portvakt-consumer-orgno: 889640782\r\nx-http-method-override: DELETE\r\n\
         x_original_url: /api/write/admin/x\r\nx-checksum: 42\r\nkeep-alive: timeout=1\r\n\r\n"
            .to_owned(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn forged_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-portvakt-consumer-orgno", "889640782".parse().unwrap());
    trailers.insert("x-http-method-override", "DELETE".parse().unwrap());
    trailers.insert("x-checksum", "42".parse().unwrap());
    trailers
}

#[tokio::test]
async fn client_trailers_get_the_header_rules_on_the_way_to_an_http2_upstream() {
    let h = harness_with(POLICY, |c| c.upstream_http2 = true).await;
    let echo = chunked_post_with_trailers(&h).await;
    assert_eq!(echo["version"], "HTTP/2.0");
    assert_eq!(echo["body"], "abc");
    assert_eq!(echo["trailers"], json!({"x-checksum": "42"}));
    assert_eq!(echo["headers"]["trailer"], json!(["x-checksum"]));

    // An HTTP/2 client's trailers, without a `Trailer` header (as gRPC clients send them).
    let request = http::Request::post(h.url("/public/x"));
    let echo = h2_echo(request, "abc", Some(forged_trailers())).await;
    assert_eq!(echo["version"], "HTTP/2.0");
    assert_eq!(echo["body"], "abc");
    assert_eq!(echo["trailers"], json!({"x-checksum": "42"}));
}

#[tokio::test]
async fn trailers_pass_over_http1_both_ways_filtered_by_the_rules() {
    let h = harness().await;
    let echo = chunked_post_with_trailers(&h).await;
    assert_eq!(echo["version"], "HTTP/1.1");
    assert_eq!(echo["body"], "abc");
    assert_eq!(echo["trailers"], json!({"x-checksum": "42"}));
    assert_eq!(echo["headers"]["trailer"], json!(["x-checksum"]));

    // An HTTP/2 client announcing its trailers, with a body of known length: sent chunked, so
    // that the trailers can follow it.
    let request = http::Request::post(h.url("/public/x"))
        .header("content-length", "3")
        .header("trailer", "x-checksum, x-portvakt-consumer-orgno");
    let echo = h2_echo(request, "abc", Some(forged_trailers())).await;
    assert_eq!(echo["version"], "HTTP/1.1");
    assert_eq!(echo["body"], "abc");
    assert_eq!(echo["trailers"], json!({"x-checksum": "42"}));
    assert_eq!(echo["headers"]["trailer"], json!(["x-checksum"]));
    assert_eq!(echo["headers"].get("content-length"), None);

    // The upstream's trailers reach an HTTP/1.1 client that accepts them, but for the
    // hop-by-hop one (hyper, at both ends, sends trailers only to `TE: trailers`).
    let (status, body) = raw(
        h.proxy,
        "GET /public/trailers HTTP/1.1\r\nHost: api\r\nConnection: close, te\r\nTE: trailers\r\n\r\n"
            .to_owned(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body.starts_with("6\r\nanswer\r\n0\r\n") && body.contains("x-checksum: 42\r\n"),
        "{body:?}"
    );
    assert!(!body.contains("keep-alive"), "{body:?}");
}

#[tokio::test]
async fn an_http2_upstream_gets_the_client_s_host_as_authority_and_no_host_header() {
    let h = harness_with(POLICY, |c| c.upstream_http2 = true).await;
    let echo = json_of(h.http.get(h.url("/public/x?q=1")).send().await.unwrap()).await;
    assert_eq!(echo["version"], "HTTP/2.0");
    assert_eq!(echo["uri"], format!("http://{}/public/x?q=1", h.proxy));
    assert_eq!(echo["headers"].get("host"), None, "{echo}");

    // An absolute-form target: its host, not the `Host` header (RFC 9112 section 3.2.2).
    let (status, body) = raw(
        h.proxy,
        "GET http://tenant-a.example/public/x HTTP/1.1\r\nHost: tenant-b.example\r\nConnection: close\r\n\r\n"
            .to_owned(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["uri"], "http://tenant-a.example/public/x");
    assert_eq!(echo["headers"].get("host"), None, "{echo}");

    // An HTTP/2 client's `:authority`, not a `host` it also sent.
    let request = http::Request::post(h.url("/public/x")).header("host", "tenant-b.example");
    let echo = h2_echo(request, "", None).await;
    assert_eq!(echo["uri"], format!("http://{}/public/x", h.proxy));
    assert_eq!(echo["headers"].get("host"), None, "{echo}");

    // Without preserve_host, the upstream's own address.
    let (upstream_addr, _) = start_upstream().await;
    let h = harness_with(POLICY, |c| {
        c.upstream_http2 = true;
        c.preserve_host = false;
        c.upstream = format!("http://{upstream_addr}").parse().unwrap();
    })
    .await;
    let echo = json_of(h.http.get(h.url("/public/x")).send().await.unwrap()).await;
    assert_eq!(echo["uri"], format!("http://{upstream_addr}/public/x"));
    assert_eq!(echo["headers"].get("host"), None, "{echo}");
}

#[tokio::test]
async fn the_request_target_s_host_wins_over_host_for_an_http1_upstream() {
    let h = harness().await;
    let (status, body) = raw(
        h.proxy,
        "GET http://tenant-a.example/public/x HTTP/1.1\r\nHost: tenant-b.example\r\nConnection: close\r\n\r\n"
            .to_owned(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["uri"], "/public/x");
    assert_eq!(echo["headers"]["host"], json!(["tenant-a.example"]));

    let request = http::Request::post(h.url("/public/x")).header("host", "tenant-b.example");
    let echo = h2_echo(request, "", None).await;
    assert_eq!(echo["headers"]["host"], json!([h.proxy.to_string()]));
}

#[tokio::test]
async fn get_bodies_of_unknown_length_reach_an_http1_upstream() {
    let h = harness().await;
    let (status, body) = raw(
        h.proxy,
        "GET /public/x HTTP/1.1\r\nHost: api\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n\
         3\r\nabc\r\n0\r\n\r\n"
            .to_owned(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["body"], "abc");

    // An HTTP/2 client's DATA without `content-length`.
    let echo = h2_echo(http::Request::get(h.url("/public/x")), "abc", None).await;
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["body"], "abc");
}
