//! The sidecar over real HTTP on 127.0.0.1: introspection (JSON and form, every error path)
//! against tokens from the local issuer, probes, metrics; and the `portvakt serve` binary:
//! readiness before and after the issuer appears, development mode, graceful shutdown.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use portvakt::{Algorithm, Config, KeySet, SigningKey, Validator};
use portvakt_cli::serve::api_router;
use portvakt_cli::serve::introspect::AppState;
use portvakt_cli::serve::metrics::Metrics;
use portvakt_issuer::{DevTokenRequest, Issuer, IssuerConfig, Manifest, RunningIssuer};
use serde_json::{Value, json};

const READ: &str = "nav:arbeid:some.scope.read";
const WRITE: &str = "nav:arbeid:some.scope.write";

const MANIFEST: &str = r#"
apiVersion: nais.io/v1alpha1
kind: Application
metadata: {name: arbeid-api, namespace: arbeid}
spec:
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - name: some.scope.read
          enabled: true
          product: arbeid
          consumers:
            - orgno: "889640782"
        - name: some.scope.write
          enabled: true
          product: arbeid
          consumers:
            - orgno: "974760673"
"#;

async fn issuer() -> RunningIssuer {
    let manifest = Manifest::parse(MANIFEST, "nais.yaml");
    assert!(!manifest.has_errors(), "{:?}", manifest.diagnostics());
    Issuer::bind(
        "127.0.0.1:0",
        IssuerConfig::from_manifest(&manifest).unwrap(),
    )
    .await
    .unwrap()
}

fn dev_token(issuer: &RunningIssuer, orgno: &str, scope: &str) -> String {
    issuer
        .issuer()
        .issue_dev(&DevTokenRequest {
            orgno: orgno.to_owned(),
            scopes: vec![scope.to_owned()],
            ..Default::default()
        })
        .unwrap()
        .access_token
}

/// Serves the sidecar's API router on 127.0.0.1 and returns its base URL.
async fn sidecar(validator: Validator) -> String {
    let state = AppState {
        validator,
        metrics: Metrics::new(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, api_router(state)).await.unwrap() });
    format!("http://{addr}")
}

async fn against(issuer: &RunningIssuer) -> String {
    let config = Config::builder()
        .well_known_url(issuer.well_known_url().to_string())
        .build()
        .unwrap();
    let validator = Validator::new(config).unwrap();
    assert!(
        validator
            .wait_until_ready(Duration::from_secs(10))
            .await
            .is_ready()
    );
    sidecar(validator).await
}

async fn introspect_json(base: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/introspect"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn introspect_raw(base: &str, content_type: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/api/v1/introspect"))
        .body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn active_tokens_return_every_claim_verbatim() {
    let issuer = issuer().await;
    let base = against(&issuer).await;
    let token = dev_token(&issuer, "889640782", READ);
    let (status, body) = introspect_json(
        &base,
        json!({"identity_provider": "maskinporten", "token": token}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["active"], json!(true));
    assert_eq!(body["scope"], json!(READ));
    assert_eq!(body["iss"], json!(issuer.issuer_url()));
    assert_eq!(
        body["consumer"],
        json!({"authority": "iso6523-actorid-upis", "ID": "0192:889640782"})
    );
    assert_eq!(body["token_type"], json!("Bearer"));
    for claim in ["exp", "iat", "jti", "client_id", "client_amr"] {
        assert!(body.get(claim).is_some(), "{claim} missing from {body}");
    }

    // The same as a form.
    let form = format!("identity_provider=maskinporten&token={token}");
    let (status, body) = introspect_raw(
        &base,
        Some("application/x-www-form-urlencoded"),
        form.into_bytes(),
    )
    .await;
    assert_eq!((status, body["active"].clone()), (200, json!(true)));
}

#[tokio::test]
async fn inactive_tokens_say_why() {
    let issuer = issuer().await;
    let base = against(&issuer).await;
    let ask = |token: String| {
        let base = base.clone();
        async move {
            introspect_json(
                &base,
                json!({"identity_provider": "maskinporten", "token": token}),
            )
            .await
        }
    };
    let (status, body) = ask("not-a-token".into()).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"active": false, "error": "token is not a compact JWS: expected 3 dot-separated segments, found 1", "error_code": "malformed_token"})
    );
    // Signed with the issuer's kid by another key.
    let impostor = SigningKey::generate(issuer.issuer().current_kid()).unwrap();
    let forged = impostor
        .sign_jwt(
            Algorithm::RS256,
            &json!({"iss": issuer.issuer_url(), "exp": 4_000_000_000u64, "scope": READ}),
        )
        .unwrap();
    let (_, body) = ask(forged).await;
    assert_eq!(body["active"], json!(false));
    assert_eq!(body["error_code"], json!("bad_signature"));
    assert!(
        body.get("scope").is_none(),
        "claims of an inactive token are never returned"
    );

    // Extensions: a required scope the token lacks, and an audience it lacks.
    let token = dev_token(&issuer, "889640782", READ);
    let (_, body) = introspect_json(
        &base,
        json!({"identity_provider": "maskinporten", "token": token, "scope": WRITE}),
    )
    .await;
    assert_eq!(body["error_code"], json!("insufficient_scope"));
    assert_eq!(
        body["error"],
        json!(format!("token lacks the required scope: needs `{WRITE}`"))
    );
    let (_, body) = introspect_json(
        &base,
        json!({"identity_provider": "maskinporten", "token": token, "scope": [READ]}),
    )
    .await;
    assert_eq!(body["active"], json!(true));
    let (_, body) = introspect_json(&base, json!({"identity_provider": "maskinporten", "token": token, "audience": "https://arbeid.nav.no/"})).await;
    assert_eq!(body["error_code"], json!("invalid_audience"));
}

#[tokio::test]
async fn malformed_requests_are_400_with_what_to_fix() {
    let issuer = issuer().await;
    let base = against(&issuer).await;
    let cases: Vec<(Option<&str>, &[u8], &str)> = vec![
        (
            Some("application/json"),
            b"{",
            "request body is not a JSON object with string fields",
        ),
        (
            Some("application/json"),
            br#"{"identity_provider":"maskinporten"}"#,
            "missing `token`",
        ),
        (
            Some("application/json"),
            br#"{"token":"x"}"#,
            "missing `identity_provider`; this sidecar serves `maskinporten`",
        ),
        (
            Some("application/json"),
            br#"{"identity_provider":"azuread","token":"x"}"#,
            "identity provider `azuread` is not supported here; this sidecar validates `maskinporten` tokens",
        ),
        (
            Some("text/plain"),
            b"x",
            "unsupported Content-Type `text/plain`: send application/json or application/x-www-form-urlencoded",
        ),
        (
            None,
            b"x",
            "missing Content-Type: send application/json or application/x-www-form-urlencoded",
        ),
        (
            Some("application/x-www-form-urlencoded"),
            br#"{"identity_provider":"maskinporten","token":"x"}"#,
            "the body looks like JSON but was sent as application/x-www-form-urlencoded (curl -d does that): add the header Content-Type: application/json",
        ),
    ];
    for (content_type, body, description) in cases {
        let (status, answer) = introspect_raw(&base, content_type, body.to_vec()).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"], json!("invalid_request"));
        let text = answer["error_description"].as_str().unwrap();
        assert!(text.starts_with(description), "{text}");
    }
    let (status, answer) =
        introspect_raw(&base, Some("application/json"), vec![b' '; 100 * 1024]).await;
    assert_eq!(status, 413);
    assert_eq!(
        answer["error_description"],
        json!("request body is larger than 65536 bytes")
    );
}

#[tokio::test]
async fn a_token_with_its_own_active_claim_yields_one_active_key() {
    let key = SigningKey::generate("k").unwrap();
    let config = Config::builder()
        .issuer("https://test.maskinporten.no/")
        .jwks_uri("https://test.maskinporten.no/jwk")
        .build()
        .unwrap();
    let (keys, _) = KeySet::from_jwks_values(&[key.public_jwk()], &[Algorithm::RS256]);
    let base = sidecar(Validator::with_keys(
        &config,
        "https://test.maskinporten.no/",
        keys,
    ))
    .await;
    let token = key
        .sign_jwt(Algorithm::RS256, &json!({"iss": "https://test.maskinporten.no/", "exp": 4_000_000_000u64, "active": false}))
        .unwrap();
    let text = reqwest::Client::new()
        .post(format!("{base}/api/v1/introspect"))
        .json(&json!({"identity_provider": "maskinporten", "token": token}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text.matches("\"active\"").count(), 1, "{text}");
    assert!(text.starts_with(r#"{"active":true,"#), "{text}");
}

#[tokio::test]
async fn probes_metrics_and_openapi() {
    let issuer = issuer().await;
    let base = against(&issuer).await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["ready"], json!(true));
    let token = dev_token(&issuer, "889640782", READ);
    for _ in 0..3 {
        introspect_json(
            &base,
            json!({"identity_provider": "maskinporten", "token": token}),
        )
        .await;
    }
    introspect_json(
        &base,
        json!({"identity_provider": "maskinporten", "token": "x"}),
    )
    .await;
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "portvakt_validations_total{result=\"valid\"} 3",
        "portvakt_validations_total{result=\"malformed_token\"} 1",
        "portvakt_requests_total{endpoint=\"introspect\",outcome=\"active\"} 3",
        "portvakt_token_cache_hits_total 2",
        "portvakt_keys_held 1",
        "portvakt_ready 1",
    ] {
        assert!(metrics.contains(line), "missing `{line}` in:\n{metrics}");
    }
    let openapi: Value = client
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openapi["openapi"], json!("3.1.0"));
    assert!(openapi["paths"]["/api/v1/introspect"]["post"].is_object());
}

// --- The binary -------------------------------------------------------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Sidecar(Child);

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_serve(envs: &[(&str, String)], args: &[String]) -> Sidecar {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portvakt"));
    command
        .arg("serve")
        .args(args)
        .env_remove("MASKINPORTEN_WELL_KNOWN_URL")
        .env_remove("MASKINPORTEN_ISSUER")
        .env_remove("MASKINPORTEN_JWKS_URI")
        .env_remove("BIND_ADDRESS")
        .env_remove("PROBE_BIND_ADDRESS")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in envs {
        command.env(key, value);
    }
    Sidecar(command.spawn().unwrap())
}

async fn get_status(url: &str) -> Option<u16> {
    reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

async fn wait_for_status(url: &str, want: u16, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if get_status(url).await == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} never answered {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn serve_starts_before_the_issuer_and_becomes_ready_when_it_appears() {
    let issuer_port = free_port();
    let api = free_port();
    let probe = free_port();
    let issuer_url = format!("http://127.0.0.1:{issuer_port}/");
    let _sidecar = spawn_serve(
        &[
            ("MASKINPORTEN_ISSUER", issuer_url.clone()),
            ("PROBE_BIND_ADDRESS", format!("127.0.0.1:{probe}")),
        ],
        &["--listen".into(), format!("127.0.0.1:{api}")],
    );
    wait_for_status(
        &format!("http://127.0.0.1:{api}/healthz"),
        200,
        Duration::from_secs(20),
    )
    .await;
    let ready = reqwest::get(format!("http://127.0.0.1:{api}/readyz"))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let reason = ready.json::<Value>().await.unwrap()["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reason.contains("could not reach"), "{reason}");
    // The probe port answers the same.
    assert_eq!(
        get_status(&format!("http://127.0.0.1:{probe}/readyz")).await,
        Some(503)
    );

    // The issuer appears; the sidecar's retries find it.
    let manifest = Manifest::parse(MANIFEST, "nais.yaml");
    let running = Issuer::bind(
        format!("127.0.0.1:{issuer_port}").as_str(),
        IssuerConfig::from_manifest(&manifest).unwrap(),
    )
    .await
    .unwrap();
    wait_for_status(
        &format!("http://127.0.0.1:{api}/readyz"),
        200,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        get_status(&format!("http://127.0.0.1:{probe}/readyz")).await,
        Some(200)
    );
    let token = dev_token(&running, "889640782", READ);
    let (_, body) = introspect_json(
        &format!("http://127.0.0.1:{api}"),
        json!({"identity_provider": "maskinporten", "token": token}),
    )
    .await;
    assert_eq!(body["active"], json!(true));
}

#[tokio::test]
async fn serve_in_development_mode_runs_its_own_issuer() {
    let api = free_port();
    let dev_issuer = free_port();
    let _sidecar = spawn_serve(
        &[],
        &[
            "--listen".into(),
            format!("127.0.0.1:{api}"),
            "--dev-issuer-listen".into(),
            format!("127.0.0.1:{dev_issuer}"),
        ],
    );
    wait_for_status(
        &format!("http://127.0.0.1:{api}/readyz"),
        200,
        Duration::from_secs(30),
    )
    .await;
    // examples/nais.yaml grants the read scope to 123456789.
    let token: Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{dev_issuer}/dev/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("orgno=123456789&scope={READ}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap();
    let (_, body) = introspect_json(
        &format!("http://127.0.0.1:{api}"),
        json!({"identity_provider": "maskinporten", "token": token}),
    )
    .await;
    assert_eq!(body["active"], json!(true), "{body}");
    assert_eq!(body["consumer"]["ID"], json!("0192:123456789"));
}

#[cfg(unix)]
#[tokio::test]
async fn serve_exits_cleanly_on_sigterm() {
    let api = free_port();
    let dev_issuer = free_port();
    let mut sidecar = spawn_serve(
        &[],
        &[
            "--listen".into(),
            format!("127.0.0.1:{api}"),
            "--dev-issuer-listen".into(),
            format!("127.0.0.1:{dev_issuer}"),
        ],
    );
    wait_for_status(
        &format!("http://127.0.0.1:{api}/healthz"),
        200,
        Duration::from_secs(30),
    )
    .await;
    let pid = sidecar.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(12);
    let status = loop {
        if let Some(status) = sidecar.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not stop within the drain timeout"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let _: SocketAddr = format!("127.0.0.1:{api}").parse().unwrap();
}

/// A tiny upstream: `/api/v1/slow` answers after a second, everything else at once, echoing
/// the identity header the proxy adds.
async fn upstream() -> SocketAddr {
    use axum::http::HeaderMap;
    use axum::routing::get;
    async fn echo(headers: HeaderMap) -> String {
        let orgno = headers
            .get("x-portvakt-consumer-orgno")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        format!("hello {orgno}")
    }
    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_secs(1)).await;
        "slow but complete"
    }
    let app = axum::Router::new()
        .route("/api/v1/slow", get(slow))
        .fallback(echo);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[cfg(unix)]
#[tokio::test]
async fn serve_with_the_proxy_enforces_the_policy_and_drains_on_sigterm() {
    let upstream = upstream().await;
    let (api, dev_issuer, proxy) = (free_port(), free_port(), free_port());
    let mut sidecar = spawn_serve(
        &[],
        &[
            "--listen".into(),
            format!("127.0.0.1:{api}"),
            "--dev-issuer-listen".into(),
            format!("127.0.0.1:{dev_issuer}"),
            "--upstream".into(),
            format!("http://{upstream}"),
            "--policy".into(),
            "examples/policy.toml".into(),
            "--proxy-listen".into(),
            format!("127.0.0.1:{proxy}"),
        ],
    );
    wait_for_status(
        &format!("http://127.0.0.1:{api}/readyz"),
        200,
        Duration::from_secs(30),
    )
    .await;
    let token: Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{dev_issuer}/dev/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("orgno=123456789&scope={READ}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{proxy}");

    let ok = client
        .get(format!("{base}/api/v1/things"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "hello 123456789");
    let anonymous = client
        .get(format!("{base}/api/v1/things"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Bearer realm=\"arbeid-api\""
    );
    let write = client
        .post(format!("{base}/api/v1/things"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 403);
    assert!(
        write.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    // The sidecar's own endpoints are not on the proxy port.
    assert_eq!(
        client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    // SIGTERM while a request is in flight: it completes, then the process exits cleanly.
    let in_flight = {
        let client = client.clone();
        let bearer = bearer.clone();
        let url = format!("{base}/api/v1/slow");
        tokio::spawn(async move { client.get(url).header("authorization", bearer).send().await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = sidecar.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "slow but complete");
    let deadline = std::time::Instant::now() + Duration::from_secs(12);
    let status = loop {
        if let Some(status) = sidecar.0.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "serve did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn check_policy_reports_errors_with_positions() {
    let dir = std::env::temp_dir().join(format!("portvakt-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("policy.toml");
    std::fs::write(
        &bad,
        "default = \"deny\"\n[[route]]\npath = \"/api/**\"\nscopez = [\"a\"]\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_portvakt"))
        .args(["serve", "--check-policy", "--policy"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("policy.toml:4:1"), "{stderr}");
    assert!(stderr.contains("scopez"), "{stderr}");
}
