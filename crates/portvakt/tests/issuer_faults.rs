//! A failing issuer, beyond outages and hangs (`tests/keys.rs`): redirects (to another host,
//! and a loop), a 100 MB body, a body trickled a byte a second, DNS and TLS failures, a JWKS
//! with malformed keys among good ones. The issuer here is raw TCP on 127.0.0.1, so every
//! byte it sends is the test's choice. Through each fault, tokens whose key is held keep
//! validating, at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portvakt::{Algorithm, Config, Readiness, SigningKey, Validator};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

static KEY_A: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::generate("a").unwrap());
static KEY_B: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::generate("b").unwrap());
const READ: &str = "nav:arbeid:some.scope.read";

/// What the issuer does with the next request.
#[derive(Clone)]
enum Fault {
    /// 200 with this JSON.
    Serve(Value),
    /// 302 to this location.
    Redirect(String),
    /// 200 and 100 MB of body; with the length declared or not (then `connection: close`).
    Huge { declared: bool },
    /// 200, a declared 1000-byte body, one byte a second.
    Trickle,
}

struct State {
    fault: Mutex<Fault>,
    requests: AtomicUsize,
    /// Body bytes the kernel took from us (the client read them, or buffers held them).
    body_bytes: AtomicUsize,
}

/// An issuer on raw TCP whose every answer is a [`Fault`].
struct RawIssuer {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawIssuer {
    async fn start(fault: Fault) -> RawIssuer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            fault: Mutex::new(fault),
            requests: AtomicUsize::new(0),
            body_bytes: AtomicUsize::new(0),
        });
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(answer(stream, Arc::clone(&shared)));
            }
        });
        RawIssuer { addr, state, task }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn issuer(&self) -> String {
        format!("{}/", self.base())
    }

    fn jwks_uri(&self) -> String {
        format!("{}/jwk", self.base())
    }

    fn well_known(&self) -> String {
        format!("{}/.well-known/oauth-authorization-server", self.base())
    }

    fn set(&self, fault: Fault) {
        *self.state.fault.lock().unwrap() = fault;
    }

    fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    fn body_bytes(&self) -> usize {
        self.state.body_bytes.load(Ordering::SeqCst)
    }
}

async fn answer(mut stream: TcpStream, state: Arc<State>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    state.requests.fetch_add(1, Ordering::SeqCst);
    let fault = state.fault.lock().unwrap().clone();
    let _ = match fault {
        Fault::Serve(document) => {
            let body = document.to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(answer.as_bytes()).await
        }
        Fault::Redirect(location) => {
            let answer = format!(
                "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            stream.write_all(answer.as_bytes()).await
        }
        Fault::Huge { declared } => {
            let head = if declared {
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000000\r\n\r\n"
            } else {
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
            };
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < 100_000_000 {
                if stream.write_all(&chunk).await.is_err() {
                    break;
                }
                sent += chunk.len();
                state.body_bytes.fetch_add(chunk.len(), Ordering::SeqCst);
            }
            Ok(())
        }
        Fault::Trickle => {
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for _ in 0..1000 {
                if stream.write_all(b" ").await.is_err() {
                    break;
                }
                state.body_bytes.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok(())
        }
    };
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token(key: &SigningKey, issuer: &str) -> String {
    let now = now();
    let claims = json!({
        "iss": issuer,
        "scope": READ,
        "consumer": {"authority": "iso6523-actorid-upis", "ID": "0192:889640782"},
        "iat": now,
        "exp": now + 120,
        "jti": format!("{}", now as u128 * 1000 + u128::from(COUNTER.fetch_add(1, Ordering::Relaxed) as u32)),
    });
    key.sign_jwt(Algorithm::RS256, &claims).unwrap()
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn jwks(keys: &[&SigningKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()})
}

/// A validator on `issuer`'s explicit issuer and JWKS URI, with a short HTTP timeout.
fn explicit(issuer: &RawIssuer, timeout: Duration) -> Validator {
    validator(&issuer.issuer(), &issuer.jwks_uri(), timeout)
}

fn validator(issuer: &str, jwks_uri: &str, timeout: Duration) -> Validator {
    Validator::new(
        Config::builder()
            .issuer(issuer)
            .jwks_uri(jwks_uri)
            .http_timeout(timeout)
            .build()
            .unwrap(),
    )
    .unwrap()
}

/// The issuer `https://{host}/`, its JWKS at `/jwk`, a 2 s timeout.
fn https_validator(host: &str) -> Validator {
    let issuer = format!("https://{host}/");
    validator(&issuer, &format!("{issuer}jwk"), Duration::from_secs(2))
}

/// A whole HTTP/1.1 answer carrying the JWKS of `keys`.
fn jwks_answer(keys: &[&SigningKey]) -> &'static [u8] {
    let keys = jwks(keys).to_string();
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{keys}",
        keys.len()
    )
    .leak()
    .as_bytes()
}

async fn ready(v: &Validator) {
    let readiness = v.wait_until_ready(Duration::from_secs(10)).await;
    assert!(readiness.is_ready(), "{readiness:?}");
}

/// While `refresh` runs against the fault, a fresh token signed by a held key validates within
/// 100 ms (no waiting on the issuer); then the refresh's error.
async fn held_keys_validate_during(v: &Validator, issuer: &str) -> String {
    let refreshing = {
        let v = v.clone();
        tokio::spawn(async move { v.refresh().await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    for _ in 0..5 {
        let token = token(&KEY_A, issuer);
        let quick = tokio::time::timeout(Duration::from_millis(100), v.validate(&token)).await;
        assert!(
            quick.expect("a held key waited for the issuer").is_ok(),
            "a held key stopped validating"
        );
    }
    let error = refreshing.await.unwrap().unwrap_err().to_string();
    assert!(v.readiness().is_ready(), "held keys dropped after: {error}");
    error
}

/// A redirect to another host is never followed, for the JWKS nor for discovery: the issuer
/// that moves must be reconfigured, visibly. Nothing reaches the other host.
#[tokio::test]
async fn redirects_to_another_host_are_not_followed() {
    let elsewhere = RawIssuer::start(Fault::Serve(jwks(&[&KEY_B]))).await;
    let issuer = RawIssuer::start(Fault::Redirect(elsewhere.jwks_uri())).await;
    let v = explicit(&issuer, Duration::from_secs(2));
    match v.wait_until_ready(Duration::from_millis(500)).await {
        Readiness::NotReady { reason } => {
            assert!(reason.to_string().contains("HTTP 302"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(issuer.requests() >= 1);

    // Discovery redirected to a document that would name the other host.
    let discovery = RawIssuer::start(Fault::Redirect(elsewhere.well_known())).await;
    let via_discovery = Validator::new(
        Config::builder()
            .well_known_url(discovery.well_known())
            .http_timeout(Duration::from_secs(2))
            .build()
            .unwrap(),
    )
    .unwrap();
    match via_discovery
        .wait_until_ready(Duration::from_millis(500))
        .await
    {
        Readiness::NotReady { reason } => {
            assert!(reason.to_string().contains("HTTP 302"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(elsewhere.requests(), 0, "a redirect was followed");

    // With keys held, a redirect leaves them in use.
    issuer.set(Fault::Serve(jwks(&[&KEY_A])));
    v.refresh().await.unwrap();
    issuer.set(Fault::Redirect(elsewhere.jwks_uri()));
    let error = held_keys_validate_during(&v, &issuer.issuer()).await;
    assert!(error.contains("HTTP 302"), "{error}");
    assert_eq!(elsewhere.requests(), 0);
}

/// A redirect loop (the JWKS URI redirecting to itself) costs one request per refresh.
#[tokio::test]
async fn a_redirect_loop_is_one_request_per_refresh() {
    let issuer = RawIssuer::start(Fault::Serve(jwks(&[&KEY_A]))).await;
    let v = explicit(&issuer, Duration::from_secs(2));
    ready(&v).await;
    issuer.set(Fault::Redirect(issuer.jwks_uri()));
    let before = issuer.requests();
    let error = held_keys_validate_during(&v, &issuer.issuer()).await;
    assert!(error.contains("HTTP 302"), "{error}");
    assert_eq!(issuer.requests() - before, 1);
}

/// A 100 MB JWKS is refused: declared, from its `Content-Length` before the body is read;
/// undeclared, cut at the 1 MiB limit while streaming (never buffered whole).
#[tokio::test]
async fn a_100_mb_jwks_is_cut_at_the_size_limit() {
    let issuer = RawIssuer::start(Fault::Serve(jwks(&[&KEY_A]))).await;
    let v = explicit(&issuer, Duration::from_secs(5));
    ready(&v).await;
    for declared in [true, false] {
        issuer.set(Fault::Huge { declared });
        let before = issuer.body_bytes();
        let started = Instant::now();
        let error = held_keys_validate_during(&v, &issuer.issuer()).await;
        assert!(error.contains("sent more than 1048576 bytes"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(3));
        // Let the server write into the closed connection until it notices.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = issuer.body_bytes() - before;
        // The limit, plus what the loopback socket buffers took: far short of 100 MB.
        assert!(
            sent < 16 << 20,
            "declared {declared}: {sent} bytes were sent"
        );
    }
}

/// A JWKS trickled one byte a second is bounded by the HTTP timeout (here 1 s), not by its
/// 1000 s; held keys keep validating meanwhile.
#[tokio::test]
async fn a_trickled_jwks_is_bounded_by_the_timeout() {
    let issuer = RawIssuer::start(Fault::Serve(jwks(&[&KEY_A]))).await;
    let v = explicit(&issuer, Duration::from_secs(1));
    ready(&v).await;
    issuer.set(Fault::Trickle);
    let started = Instant::now();
    let error = held_keys_validate_during(&v, &issuer.issuer()).await;
    let elapsed = started.elapsed();
    assert!(error.contains("timed out"), "{error}");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
}

/// A name that cannot resolve (a 64-character label, refused by the resolver without a
/// query leaving the machine): not ready, with the reason.
#[tokio::test]
async fn a_dns_failure_is_reported_not_fatal() {
    let host = format!("{}.example", "a".repeat(64));
    let v = https_validator(&host);
    match v.wait_until_ready(Duration::from_millis(500)).await {
        Readiness::NotReady { reason } => {
            let reason = reason.to_string();
            assert!(reason.contains("could not reach"), "{reason}");
            assert!(reason.contains("dns"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

/// A server that, on every connection, does `what` and closes.
async fn raw_server(what: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(what).await;
        }
    });
    (addr, task)
}

/// `https://` to a server that answers in plain HTTP, or hangs up at once: a TLS failure,
/// reported, never a fallback to plain HTTP.
#[tokio::test]
async fn a_tls_failure_is_reported_and_never_downgraded() {
    let (speaks_http, a) = raw_server(jwks_answer(&[&KEY_A])).await;
    let (hangs_up, b) = raw_server(b"").await;
    for addr in [speaks_http, hangs_up] {
        let v = https_validator(&addr.to_string());
        match v.wait_until_ready(Duration::from_secs(1)).await {
            Readiness::NotReady { reason } => {
                let reason = reason.to_string();
                assert!(reason.contains("could not reach"), "{reason}")
            }
            other => panic!("{addr}: {other:?}"),
        }
        assert_eq!(
            v.validate_now(&token(&KEY_A, &format!("https://{addr}/")))
                .unwrap_err()
                .code(),
            "keys_unavailable"
        );
    }
    a.abort();
    b.abort();
}

/// A TLS server on 127.0.0.1 with a self-signed certificate (for `127.0.0.1`, made for this
/// test only, `tests/fixtures/self-signed.*.der`; it protects nothing) that would serve
/// `body`. Counts the connections it accepted and the handshakes that completed.
async fn self_signed_server(
    body: &'static [u8],
) -> (
    SocketAddr,
    Arc<(AtomicUsize, AtomicUsize)>,
    tokio::task::JoinHandle<()>,
) {
    use tokio_rustls::rustls;
    let cert = rustls::pki_types::CertificateDer::from(
        include_bytes!("fixtures/self-signed.crt.der").to_vec(),
    );
    let key = rustls::pki_types::PrivateKeyDer::try_from(
        include_bytes!("fixtures/self-signed.key.der").to_vec(),
    )
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let seen = Arc::clone(&counts);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            seen.0.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut tls) = acceptor.accept(stream).await {
                seen.1.fetch_add(1, Ordering::SeqCst);
                let _ = tls.write_all(body).await;
            }
        }
    });
    (addr, counts, task)
}

/// `https://` to an issuer whose certificate no trusted root vouches for (self-signed): the
/// handshake fails, no request is sent, readiness says why, and nothing is ever trusted.
#[tokio::test]
async fn a_self_signed_certificate_is_refused() {
    let (addr, counts, task) = self_signed_server(jwks_answer(&[&KEY_A])).await;
    let issuer = format!("https://{addr}/");
    let v = https_validator(&addr.to_string());
    match v.wait_until_ready(Duration::from_secs(1)).await {
        Readiness::NotReady { reason } => {
            let reason = reason.to_string();
            assert!(reason.contains("could not reach"), "{reason}");
            assert!(reason.contains("certificate"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        v.validate_now(&token(&KEY_A, &issuer)).unwrap_err().code(),
        "keys_unavailable"
    );
    assert!(
        counts.0.load(Ordering::SeqCst) >= 1,
        "the issuer was never tried"
    );
    assert_eq!(
        counts.1.load(Ordering::SeqCst),
        0,
        "a handshake with the self-signed certificate completed"
    );
    task.abort();
}

/// Malformed keys among good ones: each is skipped, the good ones stay usable.
#[tokio::test]
async fn malformed_keys_among_good_ones_leave_the_good_ones_usable() {
    let mut no_exponent = KEY_B.public_jwk();
    no_exponent.as_object_mut().unwrap().remove("e");
    no_exponent["kid"] = json!("no-e");
    let document = json!({"keys": [
        KEY_A.public_jwk(),
        {"kty": "RSA", "kid": "bad-base64", "n": "!!!not base64!!!", "e": "AQAB"},
        {"kty": "RSA", "kid": "tiny", "n": "AQAB", "e": "AQAB"},
        {"kty": "RSA", "kid": 7, "n": "AQAB", "e": "AQAB"},
        no_exponent,
        42,
        "a string",
        null,
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {},
        KEY_B.public_jwk(),
    ]});
    let issuer = RawIssuer::start(Fault::Serve(document)).await;
    let v = explicit(&issuer, Duration::from_secs(2));
    ready(&v).await;
    assert_eq!(v.stats().keys.keys, 2);
    for key in [&*KEY_A, &*KEY_B] {
        v.validate(&token(key, &issuer.issuer())).await.unwrap();
    }
}

/// Answers every request on a fresh port with `body` as a 200 JSON answer, raw.
async fn answering(body: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_token_answer_with_an_absurd_lifetime_is_refused_not_a_panic() {
    for (body, says) in [
        (
            r#"{"access_token":"t","token_type":"Bearer","expires_in":18446744073709551615}"#,
            "`expires_in` is 18446744073709551615 s, over a day",
        ),
        (
            r#"{"access_token":"t","token_type":"Bearer","expires_in":1e300}"#,
            "over a day",
        ),
        (
            r#"{"access_token":"t","token_type":"Bearer","expires_in":86401}"#,
            "`expires_in` is 86401 s, over a day (86400 s)",
        ),
    ] {
        let addr = answering(body).await;
        let url = url::Url::parse(&format!("http://{addr}/dev/token")).unwrap();
        let error = portvakt::client::request_dev_token(
            &url,
            Some("889640782"),
            &portvakt::client::TokenRequest::new([READ]),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(error, portvakt::client::TokenError::BadResponse { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains(says), "{error}");
    }
    // A day is still a lifetime.
    let addr = answering(r#"{"access_token":"t","token_type":"Bearer","expires_in":86400}"#).await;
    let url = url::Url::parse(&format!("http://{addr}/dev/token")).unwrap();
    let token = portvakt::client::request_dev_token(
        &url,
        Some("889640782"),
        &portvakt::client::TokenRequest::new([READ]),
    )
    .await
    .unwrap();
    assert_eq!(token.expires_in, Duration::from_secs(86400));
}

#[tokio::test]
async fn durations_beyond_the_clock_are_refused_or_saturate_never_a_panic() {
    // An HTTP timeout over five minutes is a configuration error.
    let e = Config::builder()
        .issuer("http://127.0.0.1:1/")
        .jwks_uri("http://127.0.0.1:1/jwk")
        .http_timeout(Duration::MAX)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("at most 300 s"), "{e}");
    // "Never refresh, never age out": the schedule saturates; refreshes and waits work.
    let issuer = RawIssuer::start(Fault::Serve(jwks(&[&KEY_A]))).await;
    let v = Validator::new(
        Config::builder()
            .issuer(issuer.issuer())
            .jwks_uri(issuer.jwks_uri())
            .refresh_interval(Duration::MAX)
            .max_key_age(Duration::MAX)
            .build()
            .unwrap(),
    )
    .unwrap();
    assert!(v.wait_until_ready(Duration::MAX).await.is_ready());
    v.refresh().await.unwrap();
    v.validate(&token(&KEY_A, &issuer.issuer())).await.unwrap();
    // The background refresh scheduled its next run after the first success without dying.
    tokio::time::sleep(Duration::from_millis(50)).await;
    v.refresh().await.unwrap();
}
