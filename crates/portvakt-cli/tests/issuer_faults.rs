//! A failing issuer, seen from `serve`: start-up while the issuer hangs (the real binary), and
//! the issuer gone for longer than the maximum key age (what the proxy, the introspection API
//! and readiness answer then).

mod common;
use common::free_port;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portvakt::{Algorithm, Config, SigningKey, Validator};
use portvakt_cli::proxy::routes::PolicyFile;
use portvakt_cli::proxy::{self, ProxyConfig, ProxyState};
use portvakt_cli::serve::introspect::AppState;
use portvakt_cli::serve::listener::ListenerConfig;
use portvakt_cli::serve::metrics::Metrics;
use portvakt_cli::serve::serve_api;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `portvakt serve` with only the variables given (none of the test's own environment).
fn serve(envs: &[(&str, String)], api: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portvakt"));
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{api}")])
        .env_clear()
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in envs {
        command.env(key, value);
    }
    command
}

/// A listener that accepts connections and never answers: the worst issuer to start against.
async fn hanging_issuer() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (addr, task)
}

/// A server answering every request with `document` as JSON.
async fn document_server(document: impl Fn(SocketAddr) -> Value + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = document(addr).to_string();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
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

async fn status(url: &str) -> Option<u16> {
    reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_millis(500))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// `/healthz` answers within a second of start while the issuer accepts connections and
/// never answers (start-up used to wait up to 3 s for the keys before it bound its ports);
/// `/readyz` says not ready meanwhile.
#[tokio::test]
async fn healthz_answers_within_a_second_while_the_issuer_hangs() {
    let (issuer, hang) = hanging_issuer().await;
    let api = free_port();
    let started = Instant::now();
    let _serve = Running(
        serve(&[("MASKINPORTEN_ISSUER", format!("http://{issuer}/"))], api)
            .spawn()
            .unwrap(),
    );
    let healthz = format!("http://127.0.0.1:{api}/healthz");
    loop {
        if status(&healthz).await == Some(200) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "no /healthz within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        status(&format!("http://127.0.0.1:{api}/readyz")).await,
        Some(503)
    );
    hang.abort();
}

/// A misconfiguration found in the first seconds (the discovery document names another
/// issuer) still stops start-up with exit 2 and the reason, after `/healthz` has answered.
#[tokio::test]
async fn a_misconfiguration_found_after_binding_still_exits_2() {
    let issuer = document_server(
        |_| json!({"issuer": "http://127.0.0.1:1/", "jwks_uri": "http://127.0.0.1:1/jwk"}),
    )
    .await;
    let api = free_port();
    let mut serve = Running(
        serve(
            &[(
                "MASKINPORTEN_WELL_KNOWN_URL",
                format!("http://{issuer}/.well-known/oauth-authorization-server"),
            )],
            api,
        )
        .spawn()
        .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(exit) = serve.0.try_wait().unwrap() {
            break exit.code();
        }
        assert!(Instant::now() < deadline, "serve kept running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut serve.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("RFC 8414"), "{stderr}");
}

/// The issuer gone for longer than the maximum key age (here 1 s): the keys are dropped, and
/// then the proxy answers 503 `keys_unavailable` with `Retry-After`, the introspection API
/// answers inactive with `error_code: keys_unavailable`, `/readyz` answers 503 with the
/// reason. Before that deadline, held keys validated as usual.
#[tokio::test]
async fn past_the_maximum_key_age_tokens_are_refused_503_and_readiness_goes_false() {
    let key = SigningKey::generate("held").unwrap();
    let jwk = key.public_jwk();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer_addr = listener.local_addr().unwrap();
    drop(listener);
    // The issuer serves the keys, then is gone (its port refuses connections).
    let issuer_task = {
        let jwk = jwk.clone();
        tokio::spawn(async move {
            let listener = TcpListener::bind(issuer_addr).await.unwrap();
            let body = json!({"keys": [jwk]}).to_string();
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        })
    };
    let issuer = format!("http://{issuer_addr}/");
    let validator = Validator::new(
        Config::builder()
            .issuer(issuer.clone())
            .jwks_uri(format!("{issuer}jwk"))
            .refresh_interval(Duration::from_secs(1))
            .max_key_age(Duration::from_secs(1))
            .http_timeout(Duration::from_millis(300))
            .build()
            .unwrap(),
    )
    .unwrap();
    assert!(
        validator
            .wait_until_ready(Duration::from_secs(5))
            .await
            .is_ready()
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let token = key
        .sign_jwt(
            Algorithm::RS256,
            &json!({"iss": issuer, "scope": "nav:arbeid:some.scope.read", "iat": now, "exp": now + 120}),
        )
        .unwrap();

    // The API and the proxy, on the same validator.
    let state = AppState {
        validator: validator.clone(),
        metrics: Metrics::new(),
        upstream: None,
    };
    let api_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = api_listener.local_addr().unwrap();
    tokio::spawn(serve_api(
        api_listener,
        state,
        ListenerConfig::default(),
        std::future::pending(),
    ));
    let upstream = document_server(|_| json!({"upstream": true})).await;
    let policy = PolicyFile::parse(
        "[[route]]\npath = \"/**\"\nscopes = [\"nav:arbeid:some.scope.read\"]\n",
        "p.toml",
    )
    .unwrap();
    let config = ProxyConfig::new(format!("http://{upstream}").parse().unwrap(), policy);
    let proxy_state = ProxyState::new(validator.clone(), Metrics::new(), config).unwrap();
    let proxy_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy_listener.local_addr().unwrap();
    tokio::spawn(proxy::serve(
        proxy_listener,
        proxy_state,
        std::future::pending(),
    ));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let through_proxy = || {
        http.get(format!("http://{proxy_addr}/x"))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(through_proxy().await.unwrap().status(), 200);

    issuer_task.abort();
    let _ = issuer_task.await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while validator.readiness().is_ready() {
        assert!(Instant::now() < deadline, "the keys never aged out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let refused = through_proxy().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("5")
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], json!("temporarily_unavailable"), "{body}");

    let inactive: Value = http
        .post(format!("http://{api}/api/v1/introspect"))
        .json(&json!({"identity_provider": "maskinporten", "token": token}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inactive["active"], json!(false));
    assert_eq!(
        inactive["error_code"],
        json!("keys_unavailable"),
        "{inactive}"
    );

    let readyz = http
        .get(format!("http://{api}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status(), 503);
    let readyz: Value = readyz.json().await.unwrap();
    assert_eq!(readyz["ready"], json!(false));
    // The reason is what failed last: the key age while a refresh hangs, here the refused
    // connection.
    let reason = readyz["reason"].as_str().unwrap();
    assert!(
        reason.contains("maximum key age") || reason.contains("could not reach"),
        "{readyz}"
    );
}
