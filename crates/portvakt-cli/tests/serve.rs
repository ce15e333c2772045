//! The sidecar over real HTTP on 127.0.0.1: introspection (JSON and form, every error path)
//! against tokens from the local issuer, probes, metrics; and the `portvakt serve` binary:
//! readiness before and after the issuer appears, development mode, graceful shutdown.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{Process as Sidecar, free_port, get_status, wait_for_status};
use portvakt::{Algorithm, Config, KeySet, SigningKey, Validator};
use portvakt_cli::serve::introspect::AppState;
use portvakt_cli::serve::listener::{self, ListenerConfig};
use portvakt_cli::serve::metrics::Metrics;
use portvakt_cli::serve::{api_router, serve_api};
use portvakt_issuer::{DevTokenRequest, Issuer, IssuerConfig, RunningIssuer};
use portvakt_manifest::Manifest;
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

/// Serves the sidecar's API on 127.0.0.1 the way `portvakt serve` does and returns its base
/// URL.
async fn sidecar(validator: Validator) -> String {
    sidecar_with(validator, ListenerConfig::default()).await
}

async fn sidecar_with(validator: Validator, limits: ListenerConfig) -> String {
    let state = AppState {
        validator,
        metrics: Metrics::new(),
        upstream: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        serve_api(listener, state, limits, std::future::pending())
            .await
            .unwrap()
    });
    format!("http://{addr}")
}

/// The API router alone, without the introspection fast route `portvakt serve` puts ahead of
/// it: both must answer alike.
async fn router_only(validator: Validator) -> String {
    let state = AppState {
        validator,
        metrics: Metrics::new(),
        upstream: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = api_router(state);
    tokio::spawn(async move {
        listener::serve(
            listener,
            router,
            ListenerConfig::default(),
            std::future::pending(),
        )
        .await
        .unwrap()
    });
    format!("http://{addr}")
}

async fn against(issuer: &RunningIssuer) -> String {
    sidecar(ready_validator(issuer).await).await
}

async fn ready_validator(issuer: &RunningIssuer) -> Validator {
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
    validator
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

/// `portvakt serve` answers introspection ahead of its router (the fast route); the router
/// holds the same endpoint. Every kind of request gets the same status and body from both,
/// and the router still answers the endpoint's other methods.
#[tokio::test]
async fn the_fast_route_and_the_router_answer_introspection_alike() {
    let issuer = issuer().await;
    let validator = ready_validator(&issuer).await;
    let fast = sidecar(validator.clone()).await;
    let routed = router_only(validator).await;
    let token = dev_token(&issuer, "889640782", READ);
    let json = Some("application/json");
    let form = Some("application/x-www-form-urlencoded");
    let cases: Vec<(Option<&str>, Vec<u8>)> = vec![
        (
            json,
            json!({"identity_provider": "maskinporten", "token": token})
                .to_string()
                .into_bytes(),
        ),
        (
            form,
            format!("identity_provider=maskinporten&token={token}").into_bytes(),
        ),
        (
            json,
            json!({"identity_provider": "maskinporten", "token": token, "scope": WRITE})
                .to_string()
                .into_bytes(),
        ),
        (
            json,
            json!({"identity_provider": "maskinporten", "token": "not.a.token"})
                .to_string()
                .into_bytes(),
        ),
        (json, b"{".to_vec()),
        (None, b"x".to_vec()),
        (json, vec![b' '; 100 * 1024]),
    ];
    for (content_type, body) in cases {
        let a = introspect_raw(&fast, content_type, body.clone()).await;
        let b = introspect_raw(&routed, content_type, body).await;
        assert_eq!(a, b);
    }
    for base in [&fast, &routed] {
        let response = reqwest::get(format!("{base}/api/v1/introspect"))
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{base}");
        assert_eq!(response.headers()["allow"], "POST");
    }
}

/// The two plain JSON bodies are answered from their token's bytes; bodies of the same shape
/// whose middle is more than a token (an escape, a quote that ends the token early, a control
/// character) are read in full. Either way the answer is the one serde_json's reading gives:
/// the same body after a leading space, which only the full read accepts.
#[tokio::test]
async fn plain_bodies_and_their_near_misses_get_the_answer_of_the_full_read() {
    let issuer = issuer().await;
    let base = sidecar(ready_validator(&issuer).await).await;
    let token = dev_token(&issuer, "889640782", READ);
    let identity_first =
        |middle: &str| format!(r#"{{"identity_provider":"maskinporten","token":"{middle}"}}"#);
    let cases = [
        (identity_first(&token), 200, Some(true)),
        (identity_first(&token), 200, Some(true)), // now cached
        (
            format!(r#"{{"token":"{token}","identity_provider":"maskinporten"}}"#),
            200,
            Some(true),
        ),
        // An escape: serde_json reads the token itself.
        (
            identity_first(&format!("\\u0065{}", &token[1..])),
            200,
            Some(true),
        ),
        // A quote ends the token; the body asks for a scope the token lacks, or has.
        (
            identity_first(&format!(r#"{token}","scope":"{WRITE}"#)),
            200,
            Some(false),
        ),
        (
            identity_first(&format!(r#"{token}","scope":"{READ}"#)),
            200,
            Some(true),
        ),
        // The provider twice: 400.
        (
            identity_first(&format!(r#"{token}","identity_provider":"maskinporten"#)),
            400,
            None,
        ),
        // A control character is not JSON: 400.
        (identity_first(&format!("{}\t", token)), 400, None),
        // A forged signature: inactive, from the bytes as from the text.
        (
            identity_first(&format!("{}x", &token[..token.len() - 1])),
            200,
            Some(false),
        ),
        (identity_first("a.b"), 200, Some(false)),
    ];
    for (body, status, active) in cases {
        let plain =
            introspect_raw(&base, Some("application/json"), body.clone().into_bytes()).await;
        assert_eq!(plain.0, status, "{body}: {}", plain.1);
        assert_eq!(plain.1["active"].as_bool(), active, "{body}: {}", plain.1);
        let mut full = introspect_raw(
            &base,
            Some("application/json"),
            format!(" {body}").into_bytes(),
        )
        .await;
        if status == 400 {
            // serde_json's position counts the space.
            let at = |answer: &Value| {
                let text = answer["error_description"].as_str().unwrap().to_owned();
                text.split(" at line").next().unwrap().to_owned()
            };
            assert_eq!(at(&plain.1), at(&full.1), "{body}");
            full.1["error_description"] = plain.1["error_description"].clone();
        }
        assert_eq!(plain, full, "{body}");
    }
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

/// A request that would be read as asking less than its sender asked is refused, never read
/// leniently: each of these was once answered 200 `active: true` for a read-only token that
/// the request meant to refuse (a misspelt `scopes`, a form's earlier `token` overwritten by a
/// later one, a JSON array read positionally as if it were the object's members), or with a
/// check dropped or made meaningless (an empty `scope` or `audience`). The fast route and the
/// router answer alike.
#[tokio::test]
async fn requests_that_would_drop_a_check_are_400_naming_it() {
    let issuer = issuer().await;
    let validator = ready_validator(&issuer).await;
    let fast = sidecar(validator.clone()).await;
    let routed = router_only(validator).await;
    let token = dev_token(&issuer, "889640782", READ);
    let json = Some("application/json");
    let form = Some("application/x-www-form-urlencoded");
    let accepted = "a request has `identity_provider` and `token`, and may have `scope` and `audience`; nothing else is accepted";
    let empty_scope = |what: &str| {
        format!(
            "`scope` {what}; name the scopes the token must have, or leave `scope` out to require none"
        )
    };
    let empty_audience = "`audience` is empty; give the audience the token must have, or leave `audience` out to require none";
    let cases: Vec<(Option<&str>, Vec<u8>, String)> = vec![
        (
            json,
            json!({"identity_provider": "maskinporten", "token": token, "scopes": WRITE})
                .to_string()
                .into_bytes(),
            format!("unknown field `scopes` (did you mean `scope`?): {accepted}"),
        ),
        (
            form,
            format!("identity_provider=maskinporten&token={token}&scopes={WRITE}").into_bytes(),
            format!("unknown field `scopes` (did you mean `scope`?): {accepted}"),
        ),
        (
            json,
            json!({"identity_provider": "maskinporten", "token": token, "audeince": "https://arbeid.nav.no/"})
                .to_string()
                .into_bytes(),
            format!("unknown field `audeince`: {accepted}"),
        ),
        (
            form,
            format!("identity_provider=maskinporten&token=abc&token={token}").into_bytes(),
            "`token` is given more than once in the form; give it once (only `scope` may repeat)"
                .to_owned(),
        ),
        (
            form,
            format!("identity_provider=azuread&identity_provider=maskinporten&token={token}")
                .into_bytes(),
            "`identity_provider` is given more than once in the form; give it once (only `scope` may repeat)"
                .to_owned(),
        ),
        (
            form,
            format!("identity_provider=maskinporten&token={token}&audience=https://arbeid.nav.no/&audience=x")
                .into_bytes(),
            "`audience` is given more than once in the form; give it once (only `scope` may repeat)"
                .to_owned(),
        ),
        (
            json,
            json!(["maskinporten", token, WRITE]).to_string().into_bytes(),
            r#"request body is a JSON array; send a JSON object, {"identity_provider":"maskinporten","token":"..."}"#
                .to_owned(),
        ),
        (
            json,
            json!({"identity_provider": "maskinporten", "token": token, "audience": ""})
                .to_string()
                .into_bytes(),
            empty_audience.to_owned(),
        ),
        (
            form,
            format!("identity_provider=maskinporten&token={token}&audience=").into_bytes(),
            empty_audience.to_owned(),
        ),
        (
            json,
            json!({"identity_provider": "maskinporten", "token": token, "scope": ""})
                .to_string()
                .into_bytes(),
            empty_scope("is empty"),
        ),
        (
            json,
            json!({"identity_provider": "maskinporten", "token": token, "scope": []})
                .to_string()
                .into_bytes(),
            empty_scope("is an empty array"),
        ),
        (
            json,
            json!({"identity_provider": "maskinporten", "token": token, "scope": [WRITE, ""]})
                .to_string()
                .into_bytes(),
            empty_scope("names an empty scope"),
        ),
        (
            form,
            format!("identity_provider=maskinporten&token={token}&scope=").into_bytes(),
            empty_scope("is empty"),
        ),
    ];
    for (content_type, body, description) in cases {
        let text = String::from_utf8_lossy(&body).into_owned();
        for base in [&fast, &routed] {
            let (status, answer) = introspect_raw(base, content_type, body.clone()).await;
            assert_eq!(status, 400, "{text}: {answer}");
            assert_eq!(
                answer,
                json!({"error": "invalid_request", "error_description": description}),
                "{text}"
            );
        }
    }

    // What these meant, said as the API takes it: the scope check is made, and `scope` may
    // repeat in a form.
    for (content_type, body, active) in [
        (
            json,
            json!({"identity_provider": "maskinporten", "token": token, "scope": WRITE})
                .to_string(),
            false,
        ),
        (
            form,
            format!("identity_provider=maskinporten&token={token}&scope={WRITE}"),
            false,
        ),
        (
            form,
            format!("identity_provider=maskinporten&token={token}&scope={READ}&scope={READ}"),
            true,
        ),
        (
            form,
            format!("identity_provider=maskinporten&token={token}&scope={READ}&scope={WRITE}"),
            false,
        ),
        (
            json,
            json!({"identity_provider": "maskinporten", "token": token, "scope": null, "audience": null})
                .to_string(),
            true,
        ),
    ] {
        let (status, answer) = introspect_raw(&fast, content_type, body.clone().into_bytes()).await;
        assert_eq!(status, 200, "{body}: {answer}");
        assert_eq!(answer["active"], json!(active), "{body}: {answer}");
    }
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
        // The probes count too (this scrape included).
        "portvakt_requests_total{endpoint=\"healthz\",outcome=\"ok\"} 1",
        "portvakt_requests_total{endpoint=\"readyz\",outcome=\"ready\"} 1",
        "portvakt_requests_total{endpoint=\"metrics\",outcome=\"ok\"} 1",
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
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "portvakt_requests_total{endpoint=\"openapi\",outcome=\"ok\"} 1",
        "portvakt_requests_total{endpoint=\"metrics\",outcome=\"ok\"} 2",
    ] {
        assert!(metrics.contains(line), "missing `{line}` in:\n{metrics}");
    }
}

#[tokio::test]
async fn the_api_disconnects_clients_that_do_not_send_a_request_in_time() {
    let issuer = issuer().await;
    let config = Config::builder()
        .well_known_url(issuer.well_known_url().to_string())
        .build()
        .unwrap();
    let base = sidecar_with(
        Validator::new(config).unwrap(),
        ListenerConfig {
            header_read_timeout: Duration::from_millis(300),
            ..ListenerConfig::default()
        },
    )
    .await;
    let addr: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let (answer, elapsed) = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let started = std::time::Instant::now();
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(b"POST /api/v1/introspect HT").unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        (answer, started.elapsed())
    })
    .await
    .unwrap();
    assert!(answer.is_empty(), "{answer:?}");
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
        "closed after {elapsed:?}"
    );
    assert_eq!(get_status(&format!("{base}/healthz")).await, Some(200));
}

// --- The binary -------------------------------------------------------------------------

/// `portvakt serve ARGS` from the repository root, with none of the variables it reads
/// inherited from the test's environment except those in `envs`.
fn serve_command(envs: &[(&str, String)], args: &[String]) -> Command {
    let mut all = vec!["serve".to_owned()];
    all.extend_from_slice(args);
    common::portvakt(&all, envs)
}

fn spawn_serve(envs: &[(&str, String)], args: &[String]) -> Sidecar {
    Sidecar(serve_command(envs, args).spawn().unwrap())
}

/// A file for a child's stderr, and reading it back.
struct Log(std::path::PathBuf);

impl Log {
    fn new(name: &str) -> Log {
        let path =
            std::env::temp_dir().join(format!("portvakt-serve-{}-{name}.log", std::process::id()));
        Log(path)
    }

    fn stdio(&self) -> Stdio {
        Stdio::from(std::fs::File::create(&self.0).unwrap())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.0).unwrap_or_default()).into_owned()
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Spawns `portvakt serve` with stderr in `log`.
fn spawn_serve_logged(envs: &[(&str, String)], args: &[String], log: &Log) -> Sidecar {
    let mut command = serve_command(envs, args);
    command.stderr(log.stdio());
    Sidecar(command.spawn().unwrap())
}

/// Runs `portvakt serve`, which is expected to exit by itself, and returns its exit code and
/// stderr. Fails the test if it is still running after 20 s.
fn serve_exits(envs: &[(&str, String)], args: &[String]) -> (Option<i32>, String) {
    let log = Log::new(&format!("exit-{}", free_port()));
    let mut sidecar = spawn_serve_logged(envs, args, &log);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = sidecar.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve kept running; stderr:\n{}",
            log.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), log.text())
}

/// Waits (up to 30 s) until the sidecar on `api` answers 200 on /readyz.
async fn wait_until_ready(api: u16) {
    wait_for_status(
        &format!("http://127.0.0.1:{api}/readyz"),
        200,
        Duration::from_secs(30),
    )
    .await;
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
    wait_until_ready(api).await;
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
    wait_until_ready(api).await;
    // examples/nais.yaml grants the read scope to 123456789.
    let token = dev_issuer_token(dev_issuer).await;
    let token = token.as_str();
    let (_, body) = introspect_json(
        &format!("http://127.0.0.1:{api}"),
        json!({"identity_provider": "maskinporten", "token": token}),
    )
    .await;
    assert_eq!(body["active"], json!(true), "{body}");
    assert_eq!(body["consumer"]["ID"], json!("0192:123456789"));
}

#[tokio::test]
async fn development_mode_takes_the_audience_and_algorithms_from_the_environment() {
    let api = free_port();
    let dev_issuer = free_port();
    let _sidecar = spawn_serve(
        &[("PORTVAKT_AUDIENCE", "https://api.example.no".to_owned())],
        &[
            "--listen".into(),
            format!("127.0.0.1:{api}"),
            "--dev-issuer-listen".into(),
            format!("127.0.0.1:{dev_issuer}"),
        ],
    );
    wait_until_ready(api).await;
    // The development issuer's token has no `aud`: refused, as in configured mode.
    let token = dev_issuer_token(dev_issuer).await;
    let (_, body) = introspect_json(
        &format!("http://127.0.0.1:{api}"),
        json!({"identity_provider": "maskinporten", "token": token}),
    )
    .await;
    assert_eq!(body["active"], json!(false), "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("https://api.example.no"),
        "{body}"
    );
    // Bad values stop it at start, as in configured mode.
    for (name, value, says) in [
        (
            "PORTVAKT_AUDIENCE",
            "not a uri",
            "required audience \"not a uri\" must be an absolute URI",
        ),
        ("PORTVAKT_ALGORITHMS", "HS256", "PORTVAKT_ALGORITHMS"),
    ] {
        let (code, stderr) = serve_exits(
            &[(name, value.to_owned())],
            &[
                "--listen".into(),
                format!("127.0.0.1:{}", free_port()),
                "--dev-issuer-listen".into(),
                format!("127.0.0.1:{}", free_port()),
            ],
        );
        assert_eq!(code, Some(2), "{name}={value}: {stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
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
    common::terminate(&sidecar.0);
    let status = common::wait_exit(&mut sidecar.0, Duration::from_secs(12))
        .expect("serve did not stop within the drain timeout");
    assert!(status.success(), "{status:?}");
}

/// SIGTERM while serve still waits for its first keys (the issuer unreachable: up to 3 s) is a
/// clean stop at once, not SIGTERM's default action: serve is already listening, so a pod can
/// be told to stop then, and the handler is registered before anything starts.
#[cfg(unix)]
#[tokio::test]
async fn sigterm_while_the_first_keys_are_awaited_stops_cleanly_at_once() {
    let api = free_port();
    let dead = free_port();
    let log = Log::new(&format!("early-sigterm-{api}"));
    let mut sidecar = spawn_serve_logged(
        &[
            ("MASKINPORTEN_ISSUER", format!("http://127.0.0.1:{dead}/")),
            (
                "MASKINPORTEN_JWKS_URI",
                format!("http://127.0.0.1:{dead}/jwk"),
            ),
        ],
        &["--listen".into(), format!("127.0.0.1:{api}")],
        &log,
    );
    wait_for_status(
        &format!("http://127.0.0.1:{api}/healthz"),
        200,
        Duration::from_secs(30),
    )
    .await;
    common::terminate(&sidecar.0);
    let status = common::wait_exit(&mut sidecar.0, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("serve did not stop: {}", log.text()));
    let text = log.text();
    assert!(
        status.success(),
        "{status:?} (143: killed by the signal): {text}"
    );
    assert!(text.contains("shutting down"), "{text}");
    assert!(
        !text.contains("issuer keys not available yet"),
        "the stop waited for the first keys' deadline: {text}"
    );
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
    async fn version(request: axum::extract::Request) -> String {
        format!("{:?}", request.version())
    }
    let app = axum::Router::new()
        .route("/api/v1/slow", get(slow))
        .route("/api/v1/version", get(version))
        .fallback(echo);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// `serve`'s arguments for the proxy in development mode, with the examples' policy: the API on
/// `api`, the embedded issuer on `dev_issuer`, the proxy on `proxy` in front of `upstream`, then
/// `more`.
fn proxy_args(
    api: u16,
    dev_issuer: u16,
    upstream: SocketAddr,
    proxy: u16,
    more: &[&str],
) -> Vec<String> {
    let mut args = vec![
        "--listen".to_string(),
        format!("127.0.0.1:{api}"),
        "--dev-issuer-listen".into(),
        format!("127.0.0.1:{dev_issuer}"),
        "--upstream".into(),
        format!("http://{upstream}"),
        "--policy".into(),
        "examples/policy.toml".into(),
        "--proxy-listen".into(),
        format!("127.0.0.1:{proxy}"),
    ];
    args.extend(more.iter().map(|arg| arg.to_string()));
    args
}

#[cfg(unix)]
#[tokio::test]
async fn serve_with_the_proxy_enforces_the_policy_and_drains_on_sigterm() {
    let upstream = upstream().await;
    let (api, dev_issuer, proxy) = (free_port(), free_port(), free_port());
    let mut sidecar = spawn_serve(&[], &proxy_args(api, dev_issuer, upstream, proxy, &[]));
    wait_until_ready(api).await;
    let bearer = format!("Bearer {}", dev_issuer_token(dev_issuer).await);
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
    common::terminate(&sidecar.0);
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

// --- Development mode only when meant -----------------------------------------------------

#[test]
fn serve_refuses_an_incomplete_maskinporten_environment() {
    // A consumer's variables, but nothing to validate against: never development mode.
    let (code, stderr) = serve_exits(
        &[
            ("MASKINPORTEN_CLIENT_ID", "my-client".into()),
            (
                "MASKINPORTEN_CLIENT_JWK",
                "{\"d\":\"private-key-material\"}".into(),
            ),
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "error: MASKINPORTEN_CLIENT_ID, MASKINPORTEN_CLIENT_JWK are set but none of MASKINPORTEN_WELL_KNOWN_URL, MASKINPORTEN_ISSUER, MASKINPORTEN_JWKS_URI: set MASKINPORTEN_WELL_KNOWN_URL (NAIS injects it when spec.maskinporten.enabled is true), or MASKINPORTEN_ISSUER for an explicit issuer; development mode (the local issuer) runs only when no MASKINPORTEN_* variable is set\n"
    );
    // An empty validation variable counts as set, and is named.
    let (code, stderr) = serve_exits(&[("MASKINPORTEN_WELL_KNOWN_URL", String::new())], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with(
            "error: MASKINPORTEN_WELL_KNOWN_URL is set but none of MASKINPORTEN_WELL_KNOWN_URL, MASKINPORTEN_ISSUER, MASKINPORTEN_JWKS_URI has a value (MASKINPORTEN_WELL_KNOWN_URL is empty): set MASKINPORTEN_WELL_KNOWN_URL"
        ),
        "{stderr}"
    );
    // The local issuer's flags are not silently ignored against a configured issuer.
    for flag in [
        ["--manifest".to_owned(), "examples/nais.yaml".to_owned()],
        ["--dev-issuer-listen".to_owned(), "127.0.0.1:1".to_owned()],
    ] {
        let (code, stderr) = serve_exits(
            &[(
                "MASKINPORTEN_ISSUER",
                "https://test.maskinporten.no/".into(),
            )],
            &flag,
        );
        assert_eq!(code, Some(2), "{stderr}");
        assert_eq!(
            stderr,
            format!(
                "error: {0} is for development mode, where serve runs its own local issuer; MASKINPORTEN_* is set, so tokens are validated against that issuer: remove {0}, or unset the MASKINPORTEN_* variables to develop locally\n",
                flag[0]
            )
        );
    }
    // --dev cannot override a configured issuer.
    let (code, stderr) = serve_exits(
        &[(
            "MASKINPORTEN_ISSUER",
            "https://test.maskinporten.no/".into(),
        )],
        &["--dev".into()],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "error: --dev (PORTVAKT_DEV) asks for development mode, but MASKINPORTEN_ISSUER is set; development mode runs only without MASKINPORTEN_* variables: unset them, or drop --dev to validate against the configured issuer\n"
    );
}

#[tokio::test]
async fn serve_refuses_development_mode_in_kubernetes_unless_asked() {
    let kubernetes = ("KUBERNETES_SERVICE_HOST", "10.96.0.1".to_owned());
    let (code, stderr) = serve_exits(std::slice::from_ref(&kubernetes), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "error: refusing to start in development mode in Kubernetes: no MASKINPORTEN_* variable is set, and development mode validates against a local issuer that mints tokens for anyone who can reach it; enable Maskinporten for the app (spec.maskinporten.enabled: true in nais.yaml, which makes NAIS inject MASKINPORTEN_WELL_KNOWN_URL), or pass --dev (PORTVAKT_DEV=true) if a local issuer in the cluster is really what you want\n"
    );
    let (code, _) = serve_exits(&[kubernetes.clone(), ("PORTVAKT_DEV", "false".into())], &[]);
    assert_eq!(code, Some(2));

    // Asked for explicitly, it runs.
    let (api, dev_issuer) = (free_port(), free_port());
    let _sidecar = spawn_serve(
        &[kubernetes, ("PORTVAKT_DEV", "true".into())],
        &[
            "--listen".into(),
            format!("127.0.0.1:{api}"),
            "--dev-issuer-listen".into(),
            format!("127.0.0.1:{dev_issuer}"),
        ],
    );
    wait_until_ready(api).await;
}

#[test]
fn serve_refuses_a_policy_without_an_upstream() {
    for (envs, args) in [
        (
            vec![],
            vec!["--policy".to_owned(), "examples/policy.toml".into()],
        ),
        (
            vec![("PORTVAKT_POLICY", "examples/policy.toml".to_owned())],
            vec![],
        ),
    ] {
        let (code, stderr) = serve_exits(&envs, &args);
        assert_eq!(code, Some(2), "{stderr}");
        assert_eq!(
            stderr,
            "error: --policy (PORTVAKT_POLICY) needs --upstream URL (PORTVAKT_UPSTREAM): the policy is enforced by the proxy in front of the upstream; add --upstream http://127.0.0.1:PORT, or --check-policy to only check the file\n"
        );
    }
    // Proxy settings without a proxy are refused by the argument parser.
    let (code, stderr) = serve_exits(&[], &["--upstream-timeout".into(), "5s".into()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--upstream <UPSTREAM>"), "{stderr}");
    // Checking a policy needs no upstream.
    let output = serve_command(
        &[],
        &[
            "--check-policy".into(),
            "--policy".into(),
            "examples/policy.toml".into(),
        ],
    )
    .stdout(Stdio::piped())
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(0));
}

/// A token from the development issuer's /dev/token for 123456789 (granted the read scope by
/// examples/nais.yaml).
async fn dev_issuer_token(port: u16) -> String {
    let token: Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/dev/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("orgno=123456789&scope={READ}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_dev_banner_names_the_issuer_the_token_command_must_ask() {
    let (api, dev_issuer) = (free_port(), free_port());
    let log = Log::new(&format!("banner-{api}"));
    let _sidecar = spawn_serve_logged(
        &[],
        &[
            "--listen".into(),
            format!("127.0.0.1:{api}"),
            "--dev-issuer-listen".into(),
            format!("127.0.0.1:{dev_issuer}"),
        ],
        &log,
    );
    wait_until_ready(api).await;
    let stderr = log.text();
    let expected = format!(
        "  TOKEN=$(cargo run --release -q -- token --scope {READ} --orgno 123456789 --issuer http://127.0.0.1:{dev_issuer})\n"
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "  curl -s http://127.0.0.1:{api}/api/v1/introspect -H 'Content-Type: application/json'"
        )),
        "{stderr}"
    );

    // The command works as printed: the token it gets is active here.
    let printed = expected
        .trim()
        .strip_prefix("TOKEN=$(cargo run --release -q -- ")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap();
    let mut token_cmd = Command::new(env!("CARGO_BIN_EXE_portvakt"));
    token_cmd.args(printed.split(' '));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MASKINPORTEN_") {
            token_cmd.env_remove(&name);
        }
    }
    let output = token_cmd.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap();
    let (_, body) = introspect_json(
        &format!("http://127.0.0.1:{api}"),
        json!({"identity_provider": "maskinporten", "token": token.trim()}),
    )
    .await;
    assert_eq!(body["active"], json!(true), "{body}");
    assert_eq!(body["consumer"]["ID"], json!("0192:123456789"));
}

#[tokio::test]
async fn serve_passes_the_proxy_flags_on() {
    let upstream = upstream().await;
    let (api, dev_issuer, proxy) = (free_port(), free_port(), free_port());
    let _sidecar = spawn_serve(
        &[
            ("PORTVAKT_UPSTREAM_HTTP2", "true".into()),
            ("PORTVAKT_MAX_IN_FLIGHT", "4".into()),
        ],
        &proxy_args(
            api,
            dev_issuer,
            upstream,
            proxy,
            &["--upstream-timeout", "300ms"],
        ),
    );
    wait_until_ready(api).await;
    let bearer = format!("Bearer {}", dev_issuer_token(dev_issuer).await);
    let client = reqwest::Client::new();
    let get = |path: &str| {
        client
            .get(format!("http://127.0.0.1:{proxy}{path}"))
            .header("authorization", &bearer)
            .send()
    };
    let version = get("/api/v1/version").await.unwrap();
    assert_eq!(version.status(), 200);
    assert_eq!(version.text().await.unwrap(), "HTTP/2.0");
    let slow = get("/api/v1/slow").await.unwrap();
    assert_eq!(slow.status(), 504);
    assert_eq!(
        slow.json::<Value>().await.unwrap(),
        json!({"error": "gateway_timeout", "error_description": "the upstream did not answer within 300 ms"})
    );
}

/// The scheduling policy of each of a process's threads whose name starts with `prefix`, from
/// `/proc/<pid>/task/<tid>/stat` (field 41: 0 SCHED_OTHER, 3 SCHED_BATCH).
#[cfg(target_os = "linux")]
fn thread_policies(pid: u32, prefix: &str) -> Vec<u32> {
    let mut policies = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
        // The name, in parentheses, may hold spaces: count the fields after it (field 3 on).
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        policies.push(after_name.split(' ').nth(41 - 3).unwrap().parse().unwrap());
    }
    policies
}

/// The proxy's worker threads run under SCHED_BATCH unless PORTVAKT_PROXY_SCHEDULING says
/// `normal`; the process's other threads keep the normal policy either way, and the start-up
/// log says which.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_proxy_threads_run_under_the_scheduling_policy_asked_for() {
    let upstream = upstream().await;
    for (policy, expected) in [(None, 3), (Some("normal"), 0), (Some("batch"), 3)] {
        let (api, dev_issuer, proxy) = (free_port(), free_port(), free_port());
        let envs: Vec<(&str, String)> = policy
            .map(|p| ("PORTVAKT_PROXY_SCHEDULING", p.to_string()))
            .into_iter()
            .collect();
        let log = Log::new(&format!("scheduling-{api}"));
        let sidecar = spawn_serve_logged(
            &envs,
            &proxy_args(api, dev_issuer, upstream, proxy, &["--proxy-workers", "2"]),
            &log,
        );
        wait_until_ready(api).await;
        // The proxy answers, so its threads have started.
        let answer = reqwest::get(format!("http://127.0.0.1:{proxy}/api/v1/things"))
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
        let pid = sidecar.0.id();
        assert_eq!(
            thread_policies(pid, "portvakt-proxy-"),
            [expected, expected],
            "PORTVAKT_PROXY_SCHEDULING={policy:?}"
        );
        let others = thread_policies(pid, "");
        assert_eq!(
            others.iter().filter(|&&p| p == 3).count(),
            if expected == 3 { 2 } else { 0 },
            "only the proxy's threads change policy: {others:?}"
        );
        let name = if expected == 3 { "batch" } else { "normal" };
        let text = log.text();
        let line = text
            .lines()
            .find(|line| line.contains("enforcing proxy listening"))
            .unwrap_or_else(|| panic!("no start-up line for the proxy in {text}"));
        assert!(
            line.contains(r#""workers":2"#) && line.contains(&format!(r#""scheduling":"{name}""#)),
            "{line}"
        );
    }
}

#[tokio::test]
async fn trace_logs_never_contain_a_token() {
    let upstream = upstream().await;
    let (api, dev_issuer, proxy) = (free_port(), free_port(), free_port());
    let log = Log::new(&format!("trace-{api}"));
    let _sidecar = spawn_serve_logged(
        &[("RUST_LOG", "trace".into())],
        &proxy_args(api, dev_issuer, upstream, proxy, &[]),
        &log,
    );
    wait_until_ready(api).await;
    let token = dev_issuer_token(dev_issuer).await;
    let (unsigned, signature) = token.rsplit_once('.').unwrap();
    // The same token with another signature: refused, and not logged either.
    let forged_signature: String = signature
        .chars()
        .rev()
        .map(|c| if c == 'A' { 'B' } else { c })
        .collect();
    let forged = format!("{unsigned}.{forged_signature}");
    let base = format!("http://127.0.0.1:{api}");
    let client = reqwest::Client::new();
    for candidate in [&token, &forged] {
        let (status, _) = introspect_json(
            &base,
            json!({"identity_provider": "maskinporten", "token": candidate}),
        )
        .await;
        assert_eq!(status, 200);
        let form = client
            .post(format!("{base}/api/v1/introspect"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("identity_provider=maskinporten&token={candidate}"))
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), 200);
        client
            .get(format!("http://127.0.0.1:{proxy}/api/v1/things"))
            .bearer_auth(candidate)
            .send()
            .await
            .unwrap();
    }
    let ok = client
        .get(format!("http://127.0.0.1:{proxy}/api/v1/things"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.text().await.unwrap(), "hello 123456789");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stderr = log.text();
    assert!(
        stderr.contains("\"level\":\"TRACE\""),
        "trace logging was not on:\n{stderr}"
    );
    for (what, secret) in [
        ("the token", token.as_str()),
        ("its signature", signature),
        ("the forged token", forged.as_str()),
        ("the forged signature", forged_signature.as_str()),
    ] {
        assert!(!stderr.contains(secret), "the log contains {what}");
    }
}

/// How many of `n` connections to `addr` the kernel completes within 800 ms while nobody
/// accepts (a dropped SYN is retried only after 1 s).
async fn completed_without_accepting(
    addr: SocketAddr,
    n: usize,
) -> (usize, Vec<tokio::net::TcpStream>) {
    let connects = (0..n).map(|_| {
        tokio::time::timeout(
            Duration::from_millis(800),
            tokio::net::TcpStream::connect(addr),
        )
    });
    let streams: Vec<_> = futures_util::future::join_all(connects)
        .await
        .into_iter()
        .filter_map(|r| r.ok().and_then(Result::ok))
        .collect();
    (streams.len(), streams)
}

#[tokio::test]
async fn the_listener_holds_a_burst_of_connections_beyond_128_until_it_accepts() {
    // Linux caps the backlog at net.core.somaxconn; below 300 this cannot be shown here.
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        somaxconn >= 300,
        "net.core.somaxconn is {somaxconn}; this test needs at least 300 (sysctl -w net.core.somaxconn=4096)"
    );
    let burst = 300;
    let listener = listener::bind("127.0.0.1:0").await.unwrap();
    let (completed, _held) =
        completed_without_accepting(listener.local_addr().unwrap(), burst).await;
    assert_eq!(completed, burst, "connections completed in the backlog");

    // The same burst against tokio's own bind (a backlog of 128) loses SYNs, which is why the
    // sidecar binds its own way.
    let small = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (completed, _held) = completed_without_accepting(small.local_addr().unwrap(), burst).await;
    assert!(
        completed < burst,
        "{completed} of {burst} completed with a backlog of 128"
    );
}

/// Sends one request on `stream` and reads the answer's body (by its `Content-Length`),
/// leaving the connection open.
async fn request_on(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut read = Vec::new();
    loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed before its answer");
        read.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&read).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length: usize = head
            .lines()
            .find_map(|line| {
                line.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            })
            .expect("a Content-Length")
            .trim()
            .parse()
            .unwrap();
        if body.len() >= length {
            return body[..length].to_owned();
        }
    }
}

#[test]
fn worker_threads_share_out_connections_whichever_thread_accepts_them() {
    // Two accept loops, each on a thread of its own with a single-threaded runtime, as the
    // proxy's workers run. Clients reach only the first loop's socket (the second listens where
    // no one connects), so every connection is accepted by one thread: half must still be
    // served by the other, in turn (the fewest-connections rule, the accepting one on a tie).
    let admission = listener::Admission::with_workers(64, 2);
    let (stops, threads): (Vec<_>, Vec<_>) = ["worker-a", "worker-b"]
        .into_iter()
        .map(|name| {
            let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            socket.set_nonblocking(true).unwrap();
            let addr = socket.local_addr().unwrap();
            let admission = std::sync::Arc::clone(&admission);
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    runtime.block_on(async move {
                        let listener = tokio::net::TcpListener::from_std(socket).unwrap();
                        let handler = listener::FastRoute::any(|_request, _peer| {
                            Box::pin(async {
                                let name = std::thread::current().name().unwrap().to_owned();
                                axum::response::IntoResponse::into_response(name)
                            })
                        });
                        let stopped = async move {
                            let _ = stopped.await;
                        };
                        listener::serve_handler_admitted(
                            listener,
                            handler,
                            ListenerConfig::default(),
                            &admission,
                            stopped,
                        )
                        .await
                        .unwrap();
                    });
                })
                .unwrap();
            (stop, (addr, thread))
        })
        .unzip();
    let accepting = threads[0].0;

    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Both loops are running (a connection is only assigned to a loop that has started): one
    // request to each, on connections then closed.
    runtime.block_on(async {
        for (addr, _) in &threads {
            let mut probe = tokio::net::TcpStream::connect(addr).await.unwrap();
            request_on(&mut probe).await;
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while admission.worker_connections() != [0, 0] {
        assert!(
            std::time::Instant::now() < deadline,
            "the probes are still counted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let clients = runtime.block_on(async {
        let mut served = std::collections::BTreeMap::<String, usize>::new();
        let mut clients = Vec::new();
        for _ in 0..32 {
            let mut stream = tokio::net::TcpStream::connect(accepting).await.unwrap();
            *served.entry(request_on(&mut stream).await).or_default() += 1;
            clients.push(stream);
        }
        assert_eq!(
            served,
            [("worker-a".to_owned(), 16), ("worker-b".to_owned(), 16)].into(),
            "connections served by each thread"
        );
        // Every connection still answers on the thread that took it over.
        for stream in &mut clients {
            let name = request_on(stream).await;
            assert!(name.starts_with("worker-"), "{name}");
        }
        clients
    });
    let mut counts = admission.worker_connections();
    counts.sort_unstable();
    assert_eq!(counts, [16, 16]);

    // Each closed connection is taken off its worker's count.
    drop(clients);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while admission.worker_connections() != [0, 0] {
        assert!(
            std::time::Instant::now() < deadline,
            "still counted after the clients closed: {:?}",
            admission.worker_connections()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for stop in stops {
        let _ = stop.send(());
    }
    for (_, thread) in threads {
        thread.join().unwrap();
    }
}
