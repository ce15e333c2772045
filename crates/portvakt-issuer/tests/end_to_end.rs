//! End to end over real HTTP on loopback: manifest -> issuer -> `TokenClient` -> the core
//! library's validator.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use portvakt::client::{TokenClient, TokenError, TokenRequest, request_dev_token};
use portvakt::jws::{decode_unverified_header, decode_unverified_payload};
use portvakt::{Algorithm, Config, Policy, SigningKey, Validator};
use portvakt_issuer::{ClientRegistry, Issuer, IssuerConfig, RunningIssuer};
use portvakt_manifest::Manifest;
use portvakt_test_support::now;
use serde_json::{Value, json};

const MANIFEST: &str = r#"
apiVersion: nais.io/v1alpha1
kind: Application
metadata:
  name: my-api
  namespace: my-team
spec:
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - name: "some.scope.read"
          enabled: true
          product: "arbeid"
          atMaxAge: 300
          consumers:
            - orgno: "889640782"
              name: NAV
        - name: "some.scope.write"
          enabled: true
          product: "arbeid"
          consumers:
            - orgno: "974761076"
        - name: "open.read"
          enabled: true
          product: "arbeid"
          accessibleForAll: true
        - name: "old.read"
          enabled: false
          product: "arbeid"
          consumers:
            - orgno: "889640782"
        - name: "short.read"
          enabled: true
          product: "arbeid"
          atMaxAge: 60
          consumers:
            - orgno: "889640782"
        - name: "reports.read"
          enabled: true
          product: "arbeid"
          separator: "/"
          delegationSource: altinn
          atMaxAge: 120
          consumers:
            - orgno: "974761076"
"#;

const READ: &str = "nav:arbeid:some.scope.read";
const WRITE: &str = "nav:arbeid:some.scope.write";
const OPEN: &str = "nav:arbeid:open.read";
const OLD: &str = "nav:arbeid:old.read";
const SHORT: &str = "nav:arbeid:short.read";
const REPORTS: &str = "nav:arbeid/reports.read";

const NAV: &str = "889640782";
const OTHER_ORG: &str = "974761076";
const CLIENT_ID: &str = "arbeid-client";
const OTHER_CLIENT_ID: &str = "other-client";

// RSA key generation is slow: every key is made once and copied through its private JWK.
static ISSUER_JWK: LazyLock<String> = LazyLock::new(|| private_jwk("issuer-key-1"));
static CLIENT_JWK: LazyLock<String> = LazyLock::new(|| private_jwk("arbeid-client-key"));
static OTHER_JWK: LazyLock<String> = LazyLock::new(|| private_jwk("other-client-key"));

fn private_jwk(kid: &str) -> String {
    SigningKey::generate(kid)
        .unwrap()
        .private_jwk()
        .unwrap()
        .to_string()
}

fn key(jwk: &str) -> SigningKey {
    SigningKey::from_jwk(jwk).unwrap()
}

fn config() -> IssuerConfig {
    let manifest = Manifest::parse(MANIFEST, "nais.yaml");
    assert!(!manifest.has_errors(), "{:?}", manifest.diagnostics());
    let mut config = IssuerConfig::from_manifest(&manifest).unwrap();
    let mut clients = ClientRegistry::new();
    clients
        .register_key(CLIENT_ID, NAV, &key(&CLIENT_JWK))
        .unwrap();
    clients
        .register_key(OTHER_CLIENT_ID, OTHER_ORG, &key(&OTHER_JWK))
        .unwrap();
    config.clients = clients;
    config.signing_key = Some(key(&ISSUER_JWK));
    config
}

async fn start(config: IssuerConfig) -> RunningIssuer {
    Issuer::bind("127.0.0.1:0", config).await.unwrap()
}

async fn client(issuer: &RunningIssuer, client_id: &str, jwk: &str) -> TokenClient {
    TokenClient::discover(client_id, key(jwk), issuer.well_known_url().as_str())
        .await
        .unwrap()
}

fn validator_config(issuer: &RunningIssuer) -> portvakt::ConfigBuilder {
    Config::builder()
        .well_known_url(format!(
            "{}.well-known/oauth-authorization-server",
            issuer.issuer_url()
        ))
        .unknown_kid_interval(Duration::from_millis(1))
}

fn validator(issuer: &RunningIssuer) -> Validator {
    Validator::new(validator_config(issuer).build().unwrap()).unwrap()
}

fn refused(result: Result<impl std::fmt::Debug, TokenError>) -> (String, String) {
    match result {
        Err(TokenError::Refused {
            status,
            error,
            description,
        }) => {
            assert_eq!(status, 400, "{error}");
            (error, description.unwrap_or_default())
        }
        other => panic!("expected an OAuth refusal, got {other:?}"),
    }
}

/// POSTs a raw token request; returns status and JSON body.
async fn post_token(issuer: &RunningIssuer, form: &[(&str, &str)]) -> (u16, Value) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let response = reqwest::Client::new()
        .post(format!("{}token", issuer.issuer_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn post_assertion(issuer: &RunningIssuer, assertion: &str) -> (u16, Value) {
    post_token(
        issuer,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion),
        ],
    )
    .await
}

fn assertion_claims(issuer: &RunningIssuer) -> Value {
    let iat = now();
    json!({
        "aud": issuer.issuer_url(),
        "iss": CLIENT_ID,
        "iat": iat,
        "exp": iat + 60,
        "jti": format!("jti-{}", unique()),
        "scope": READ,
    })
}

fn unique() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos}-{n}")
}

fn sign(jwk: &str, claims: &Value) -> String {
    key(jwk).sign_jwt(Algorithm::RS256, claims).unwrap()
}

fn assert_error(response: (u16, Value), code: &str, description: &str) {
    let (status, body) = response;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], code, "{body}");
    let text = body["error_description"].as_str().unwrap();
    assert!(
        text.contains(description),
        "description {text:?} lacks {description:?}"
    );
}

#[tokio::test]
async fn granted_token_has_maskinporten_shape_and_validates() {
    let issuer = start(config()).await;
    let client = client(&issuer, CLIENT_ID, &CLIENT_JWK).await;
    let token = client.token(&TokenRequest::new([READ])).await.unwrap();
    assert_eq!(token.scope, READ);
    // atMaxAge 300 is capped at the 120 s client lifetime.
    assert_eq!(token.expires_in, Duration::from_secs(120));

    let header = decode_unverified_header(token.as_str()).unwrap();
    assert_eq!(
        Value::Object(header),
        json!({"kid": "issuer-key-1", "alg": "RS256"})
    );
    let claims = decode_unverified_payload(token.as_str()).unwrap();
    let mut names: Vec<&str> = claims.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "client_amr",
            "client_id",
            "consumer",
            "exp",
            "iat",
            "iss",
            "jti",
            "scope",
            "token_type"
        ]
    );
    assert!(claims["iss"].as_str().unwrap().ends_with('/'));
    assert_eq!(claims["iss"], issuer.issuer_url());
    assert_eq!(claims["client_id"], CLIENT_ID);
    assert_eq!(claims["client_amr"], "private_key_jwt");
    assert_eq!(claims["token_type"], "Bearer");
    assert_eq!(
        claims["consumer"],
        json!({"authority": "iso6523-actorid-upis", "ID": "0192:889640782"})
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );

    let validator = validator(&issuer);
    let verified = validator
        .validate_with(token.as_str(), &Policy::new().require_scope(READ))
        .await
        .unwrap();
    assert_eq!(verified.consumer_orgno(), Some(NAV));
    assert_eq!(verified.kid(), "issuer-key-1");
}

#[tokio::test]
async fn discovery_and_jwks_look_like_maskinporten() {
    let issuer = start(config()).await;
    let url = issuer.issuer_url().to_owned();
    assert_eq!(url, format!("http://{}/", issuer.addr()));
    let http = reqwest::Client::new();
    let doc: Value = http
        .get(issuer.well_known_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], url);
    assert_eq!(doc["token_endpoint"], format!("{url}token"));
    assert_eq!(doc["jwks_uri"], format!("{url}jwk"));
    assert_eq!(
        doc["grant_types_supported"],
        json!(["urn:ietf:params:oauth:grant-type:jwt-bearer"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["private_key_jwt"])
    );
    assert_eq!(
        doc["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS256", "RS384", "RS512"])
    );
    assert_eq!(
        doc["authorization_details_types_supported"],
        json!(["urn:altinn:systemuser", "urn:altinn:consent"])
    );
    assert_eq!(
        doc["portvakt_dev_token_endpoint"],
        format!("{url}dev/token")
    );
    let jwks: Value = http
        .get(format!("{url}jwk"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], "issuer-key-1");
    assert!(keys[0].get("d").is_none());
}

#[tokio::test]
async fn scope_not_granted_is_invalid_scope_with_the_reason() {
    let issuer = start(config()).await;
    let client = client(&issuer, CLIENT_ID, &CLIENT_JWK).await;
    let (error, description) = refused(client.token(&TokenRequest::new([WRITE])).await);
    assert_eq!(error, "invalid_scope");
    assert_eq!(
        description,
        "organization 889640782 is not a consumer of scope \"nav:arbeid:some.scope.write\""
    );
    // One scope refused refuses the request: no partial grants.
    let (error, _) = refused(client.token(&TokenRequest::new([READ, WRITE])).await);
    assert_eq!(error, "invalid_scope");

    // The development shortcut enforces the same grants.
    let dev = issuer.issuer().dev_token_endpoint();
    let (error, description) =
        refused(request_dev_token(&dev, Some("999999999"), &TokenRequest::new([WRITE])).await);
    assert_eq!(error, "invalid_scope");
    assert_eq!(
        description,
        "organization 999999999 is not a consumer of scope \"nav:arbeid:some.scope.write\""
    );
    // ... and the organization that is a consumer gets it.
    let token = request_dev_token(&dev, Some(OTHER_ORG), &TokenRequest::new([WRITE]))
        .await
        .unwrap();
    let verified = validator(&issuer).validate(token.as_str()).await.unwrap();
    assert_eq!(verified.consumer_orgno(), Some(OTHER_ORG));
    assert_eq!(verified.client_id(), Some(OTHER_CLIENT_ID));
}

#[tokio::test]
async fn accessible_for_all_disabled_and_unknown_scopes() {
    let issuer = start(config()).await;
    let other = client(&issuer, OTHER_CLIENT_ID, &OTHER_JWK).await;
    let token = other.token(&TokenRequest::new([OPEN])).await.unwrap();
    let verified = validator(&issuer).validate(token.as_str()).await.unwrap();
    assert_eq!(verified.consumer_orgno(), Some(OTHER_ORG));
    assert!(verified.scopes().contains(OPEN));
    // Default atMaxAge is 30 s.
    assert_eq!(token.expires_in, Duration::from_secs(30));

    let client = client(&issuer, CLIENT_ID, &CLIENT_JWK).await;
    let (error, description) = refused(client.token(&TokenRequest::new([OLD])).await);
    assert_eq!(error, "invalid_scope");
    assert_eq!(description, "scope \"nav:arbeid:old.read\" is disabled");
    let (error, description) = refused(client.token(&TokenRequest::new(["nav:arbeid:nope"])).await);
    assert_eq!(error, "invalid_scope");
    assert_eq!(
        description,
        "scope \"nav:arbeid:nope\" is not exposed by this API"
    );
}

#[tokio::test]
async fn lifetime_is_the_lowest_at_max_age() {
    let issuer = start(config()).await;
    let client = client(&issuer, CLIENT_ID, &CLIENT_JWK).await;
    for scopes in [vec![SHORT], vec![READ, SHORT]] {
        let token = client.token(&TokenRequest::new(scopes)).await.unwrap();
        assert_eq!(token.expires_in, Duration::from_secs(60));
        let claims = decode_unverified_payload(token.as_str()).unwrap();
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            60
        );
    }
}

#[tokio::test]
async fn audience_restricted_tokens() {
    let issuer = start(config()).await;
    let client = client(&issuer, CLIENT_ID, &CLIENT_JWK).await;
    let audience = "https://my-api.ekstern.dev.nav.no/";
    let restricted = client
        .token(&TokenRequest::new([READ]).audience(audience))
        .await
        .unwrap();
    let claims = decode_unverified_payload(restricted.as_str()).unwrap();
    assert_eq!(claims["aud"], audience);
    let plain = client.token(&TokenRequest::new([READ])).await.unwrap();
    assert!(
        decode_unverified_payload(plain.as_str())
            .unwrap()
            .get("aud")
            .is_none()
    );

    let strict = Validator::new(
        validator_config(&issuer)
            .audience(audience)
            .build()
            .unwrap(),
    )
    .unwrap();
    strict.validate(restricted.as_str()).await.unwrap();
    let err = strict.validate(plain.as_str()).await.unwrap_err();
    assert_eq!(err.code(), "invalid_audience");

    let dev = issuer.issuer().dev_token_endpoint();
    let token = request_dev_token(
        &dev,
        Some(NAV),
        &TokenRequest::new([READ]).audience(audience),
    )
    .await
    .unwrap();
    strict.validate(token.as_str()).await.unwrap();
}

#[tokio::test]
async fn delegated_tokens_name_consumer_supplier_and_source() {
    let issuer = start(config()).await;
    let client = client(&issuer, CLIENT_ID, &CLIENT_JWK).await;
    let token = client
        .token(&TokenRequest::new([REPORTS]).on_behalf_of(OTHER_ORG))
        .await
        .unwrap();
    let verified = validator(&issuer).validate(token.as_str()).await.unwrap();
    assert_eq!(verified.consumer_orgno(), Some(OTHER_ORG));
    assert_eq!(
        verified.supplier().and_then(|s| s.orgno()),
        Some(NAV),
        "supplier is the client's organization"
    );
    assert_eq!(verified.delegation_source(), Some("https://www.altinn.no/"));
    assert_eq!(verified.client_id(), Some(CLIENT_ID));

    // The legal party must be a consumer of the scope.
    let (error, description) = refused(
        client
            .token(&TokenRequest::new([REPORTS]).on_behalf_of("999999999"))
            .await,
    );
    assert_eq!(error, "invalid_scope");
    assert_eq!(
        description,
        "organization 999999999 is not a consumer of scope \"nav:arbeid/reports.read\""
    );
    // A scope without a delegation source cannot be delegated, even to one of its consumers.
    let (error, description) = refused(
        client
            .token(&TokenRequest::new([WRITE]).on_behalf_of(OTHER_ORG))
            .await,
    );
    assert_eq!(error, "invalid_scope");
    assert_eq!(
        description,
        "scope \"nav:arbeid:some.scope.write\" has no delegationSource, so organization 889640782 cannot get it on behalf of 974761076"
    );
    // Without delegation, the client's own organization is not a consumer of it.
    let (error, _) = refused(client.token(&TokenRequest::new([REPORTS])).await);
    assert_eq!(error, "invalid_scope");

    // Through the development shortcut too.
    let dev = issuer.issuer().dev_token_endpoint();
    let token = request_dev_token(
        &dev,
        Some(NAV),
        &TokenRequest::new([REPORTS]).on_behalf_of(OTHER_ORG),
    )
    .await
    .unwrap();
    let claims = decode_unverified_payload(token.as_str()).unwrap();
    assert_eq!(claims["consumer"]["ID"], "0192:974761076");
    assert_eq!(claims["supplier"]["ID"], "0192:889640782");
}

#[tokio::test]
async fn replayed_assertion_is_refused() {
    let issuer = start(config()).await;
    let client = client(&issuer, CLIENT_ID, &CLIENT_JWK).await;
    let assertion = client.assertion(&TokenRequest::new([READ])).unwrap();
    let (status, body) = post_assertion(&issuer, &assertion).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], READ);
    let jti = decode_unverified_payload(&assertion).unwrap()["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_error(
        post_assertion(&issuer, &assertion).await,
        "invalid_grant",
        &format!("assertion `jti` \"{jti}\" was already used"),
    );
    // A fresh assertion is fine.
    let next = client.assertion(&TokenRequest::new([READ])).unwrap();
    assert_eq!(post_assertion(&issuer, &next).await.0, 200);
}

#[tokio::test]
async fn stale_future_and_long_assertions_are_refused() {
    let issuer = start(config()).await;
    let mut claims = assertion_claims(&issuer);
    claims["iat"] = json!(now() - 60);
    claims["exp"] = json!(now() + 30);
    let (status, body) = post_assertion(&issuer, &sign(&CLIENT_JWK, &claims)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    let text = body["error_description"].as_str().unwrap();
    assert!(
        text.starts_with("assertion is stale: `iat` is 6") && text.contains("within 10 s"),
        "{text}"
    );

    let mut claims = assertion_claims(&issuer);
    claims["iat"] = json!(now() + 30);
    claims["exp"] = json!(now() + 60);
    assert_error(
        post_assertion(&issuer, &sign(&CLIENT_JWK, &claims)).await,
        "invalid_grant",
        "s in the future",
    );

    let mut claims = assertion_claims(&issuer);
    claims["exp"] = json!(claims["iat"].as_i64().unwrap() + 121);
    assert_error(
        post_assertion(&issuer, &sign(&CLIENT_JWK, &claims)).await,
        "invalid_grant",
        "assertion lifetime `exp - iat` is 121 s; at most 120 s is allowed",
    );

    let mut claims = assertion_claims(&issuer);
    claims["aud"] = json!("https://test.maskinporten.no/");
    assert_error(
        post_assertion(&issuer, &sign(&CLIENT_JWK, &claims)).await,
        "invalid_grant",
        &format!(
            "assertion `aud` is \"https://test.maskinporten.no/\"; it must be exactly the issuer \"{}\"",
            issuer.issuer_url()
        ),
    );
    // aud as a one-element array is the same audience.
    let mut claims = assertion_claims(&issuer);
    claims["aud"] = json!([issuer.issuer_url()]);
    assert_eq!(
        post_assertion(&issuer, &sign(&CLIENT_JWK, &claims)).await.0,
        200
    );

    // Times no clock reaches are out of range, not an overflow in the checks' arithmetic.
    for (name, value) in [
        ("iat", json!(i64::MIN)),
        ("exp", json!(i64::MIN)),
        ("iat", json!(i64::MAX)),
        ("exp", json!(i64::MAX)),
    ] {
        let mut claims = assertion_claims(&issuer);
        claims[name] = value;
        assert_error(
            post_assertion(&issuer, &sign(&CLIENT_JWK, &claims)).await,
            "invalid_grant",
            &format!("assertion `{name}` is out of range"),
        );
    }

    let mut claims = assertion_claims(&issuer);
    claims.as_object_mut().unwrap().remove("jti");
    assert_error(
        post_assertion(&issuer, &sign(&CLIENT_JWK, &claims)).await,
        "invalid_grant",
        "assertion has no `jti`",
    );
    let mut claims = assertion_claims(&issuer);
    claims.as_object_mut().unwrap().remove("scope");
    assert_error(
        post_assertion(&issuer, &sign(&CLIENT_JWK, &claims)).await,
        "invalid_grant",
        "assertion has no `scope`",
    );
}

#[tokio::test]
async fn wrong_key_and_unknown_clients_are_invalid_client() {
    let issuer = start(config()).await;
    let claims = assertion_claims(&issuer);
    // Signed with another key but naming the client's registered kid.
    let forged = key(&OTHER_JWK)
        .sign_compact(
            Algorithm::RS256,
            br#"{"kid":"arbeid-client-key","alg":"RS256"}"#,
            claims.to_string().as_bytes(),
        )
        .unwrap();
    assert_error(
        post_assertion(&issuer, &forged).await,
        "invalid_client",
        "assertion signature does not verify with key \"arbeid-client-key\" of client arbeid-client",
    );
    // Signed with a key the client never registered.
    assert_error(
        post_assertion(&issuer, &sign(&OTHER_JWK, &claims)).await,
        "invalid_client",
        "assertion is signed with kid \"other-client-key\", which is not a registered key of client arbeid-client",
    );
    // The TokenClient reports the same refusal with the issuer's words.
    let wrong = TokenClient::discover(CLIENT_ID, key(&OTHER_JWK), issuer.well_known_url().as_str())
        .await
        .unwrap();
    let (error, description) = refused(wrong.token(&TokenRequest::new([READ])).await);
    assert_eq!(error, "invalid_client");
    assert!(
        description.contains("not a registered key"),
        "{description}"
    );

    let mut claims = assertion_claims(&issuer);
    claims["iss"] = json!("nobody");
    assert_error(
        post_assertion(&issuer, &sign(&CLIENT_JWK, &claims)).await,
        "invalid_client",
        "unknown client_id \"nobody\"",
    );
}

#[tokio::test]
async fn unknown_claims_and_malformed_requests_are_refused() {
    let issuer = start(config()).await;
    let mut claims = assertion_claims(&issuer);
    claims["sub"] = json!("someone");
    claims["nbf"] = json!(now());
    assert_error(
        post_assertion(&issuer, &sign(&CLIENT_JWK, &claims)).await,
        "invalid_grant",
        "assertion has claims Maskinporten does not accept: `nbf`, `sub`",
    );

    assert_error(
        post_token(&issuer, &[("grant_type", "client_credentials")]).await,
        "unsupported_grant_type",
        "grant_type \"client_credentials\" is not supported",
    );
    assert_error(
        post_token(
            &issuer,
            &[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")],
        )
        .await,
        "invalid_request",
        "assertion is missing",
    );
    assert_error(
        post_token(
            &issuer,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", "a.b.c"),
                ("assertion", "a.b.c"),
            ],
        )
        .await,
        "invalid_request",
        "parameter `assertion` is repeated",
    );
    assert_error(
        post_assertion(&issuer, "not-a-jwt").await,
        "invalid_grant",
        "assertion is not a JWT",
    );
    let response = reqwest::Client::new()
        .post(format!("{}token", issuer.issuer_url()))
        .json(&json!({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(response.headers()["cache-control"], "no-store");

    // A body over the limit is an OAuth error too, as JSON, not the HTTP stack's plain text.
    let huge = "a".repeat(70 * 1024);
    for endpoint in ["token", "dev/token"] {
        let response = reqwest::Client::new()
            .post(format!("{}{endpoint}", issuer.issuer_url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("grant_type=x&assertion={huge}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{endpoint}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with("the request body is over 64 KiB"),
            "{body}"
        );
    }
    // Another method on a known path: 405 with Allow, and a JSON body saying so.
    let response = reqwest::Client::new()
        .get(format!("{}token", issuer.issuer_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn an_issuer_url_with_a_path_is_served_under_it_and_bad_settings_are_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut under_a_path = config();
    under_a_path.issuer_url = Some(format!("http://{addr}/mp/"));
    let issuer = portvakt_issuer::serve(listener, under_a_path)
        .await
        .unwrap();
    assert_eq!(issuer.issuer_url(), format!("http://{addr}/mp/"));
    // Discovery, keys and the token endpoint answer where discovery says they are.
    let client = client(&issuer, CLIENT_ID, &CLIENT_JWK).await;
    let token = client.token(&TokenRequest::new([READ])).await.unwrap();
    validator(&issuer)
        .validate_with(token.as_str(), &Policy::new().require_scope(READ))
        .await
        .unwrap();
    let root = reqwest::get(format!("http://{addr}/token")).await.unwrap();
    assert_eq!(
        root.status().as_u16(),
        404,
        "nothing is served outside the path"
    );

    for (url, why) in [
        (
            "http://127.0.0.1:1",
            "must end with `/`, as Maskinporten's does",
        ),
        ("ftp://127.0.0.1:1/", "must use http or https"),
        ("http://127.0.0.1:1/?x=1", "must have no query or fragment"),
    ] {
        let e = portvakt_issuer::check_issuer_url(url)
            .unwrap_err()
            .to_string();
        assert!(e.contains(why), "{url}: {e}");
    }
    assert!(
        portvakt_issuer::check_issuer_url("http://127.0.0.1:1")
            .unwrap_err()
            .to_string()
            .ends_with("use http://127.0.0.1:1/")
    );

    let mut long_grace = config();
    long_grace.grace = portvakt_issuer::MAX_GRACE + Duration::from_secs(1);
    let Err(e) = Issuer::new(long_grace, "http://127.0.0.1:1/") else {
        panic!("a grace over a year was accepted");
    };
    assert!(e.to_string().contains("(--grace)"), "{e}");
}

#[tokio::test]
async fn dev_token_accepts_json_and_explains_a_missing_orgno() {
    let issuer = start(config()).await;
    let http = reqwest::Client::new();
    let dev = issuer.issuer().dev_token_endpoint();
    let response = http
        .post(dev.clone())
        .json(&json!({"orgno": NAV, "scope": [READ, SHORT]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], format!("{READ} {SHORT}"));
    assert_eq!(body["expires_in"], 60);
    let claims = decode_unverified_payload(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(
        claims["client_id"], CLIENT_ID,
        "the organization's registered client"
    );

    let (error, description) =
        refused(request_dev_token(&dev, None, &TokenRequest::new([READ])).await);
    assert_eq!(error, "invalid_request");
    assert_eq!(
        description,
        "orgno is required: the organization number to get a token for; consumers of nav:arbeid:some.scope.read: 889640782"
    );
}

#[tokio::test]
async fn strict_mode_has_no_development_endpoints() {
    let mut config = config();
    config.development = false;
    let issuer = start(config).await;
    let http = reqwest::Client::new();
    for path in ["dev/token", "admin/rotate"] {
        let response = http
            .post(format!("{}{path}", issuer.issuer_url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("orgno={NAV}&scope={READ}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404, "{path}");
    }
    let doc: Value = http
        .get(issuer.well_known_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc.get("portvakt_dev_token_endpoint").is_none());
    // The real grant still works.
    let client = client(&issuer, CLIENT_ID, &CLIENT_JWK).await;
    client.token(&TokenRequest::new([READ])).await.unwrap();
}

/// Counts the requests that reach `POST /token`, holds each for `delay` (so that concurrent
/// callers overlap), and can answer the next ones with a 503 before the issuer sees them.
#[derive(Clone)]
struct TokenEndpointProbe {
    requests: Arc<AtomicUsize>,
    fail_next: Arc<AtomicUsize>,
    delay: Duration,
}

async fn probe_token_endpoint(
    State(probe): State<TokenEndpointProbe>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == "/token" {
        probe.requests.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(probe.delay).await;
        if probe
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "error": "temporarily_unavailable",
                    "error_description": "injected by the test"
                })),
            )
                .into_response();
        }
    }
    next.run(request).await
}

/// An issuer served on 127.0.0.1 behind a [`TokenEndpointProbe`].
struct ProbedIssuer {
    issuer: Issuer,
    probe: TokenEndpointProbe,
    server: tokio::task::JoinHandle<()>,
}

impl ProbedIssuer {
    async fn start(config: IssuerConfig, delay: Duration) -> ProbedIssuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = portvakt_issuer::issuer_url_for(listener.local_addr().unwrap());
        let issuer = Issuer::new(config, &url).unwrap();
        let probe = TokenEndpointProbe {
            requests: Arc::new(AtomicUsize::new(0)),
            fail_next: Arc::new(AtomicUsize::new(0)),
            delay,
        };
        let app = issuer.router().layer(axum::middleware::from_fn_with_state(
            probe.clone(),
            probe_token_endpoint,
        ));
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        ProbedIssuer {
            issuer,
            probe,
            server,
        }
    }

    /// How many requests reached `POST /token` so far.
    fn token_requests(&self) -> usize {
        self.probe.requests.load(Ordering::SeqCst)
    }

    async fn client(&self) -> TokenClient {
        TokenClient::discover(
            CLIENT_ID,
            key(&CLIENT_JWK),
            self.issuer.well_known_url().as_str(),
        )
        .await
        .unwrap()
    }
}

impl Drop for ProbedIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn jti(token: &str) -> String {
    decode_unverified_payload(token).unwrap()["jti"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_client_caches_and_shares_one_request() {
    // Every request to /token takes at least 300 ms, so 16 calls released together are all
    // waiting while the first one is in flight.
    let issuer = ProbedIssuer::start(config(), Duration::from_millis(300)).await;
    let client = issuer.client().await;
    let request = TokenRequest::new([READ]);
    let start = Arc::new(tokio::sync::Barrier::new(16));
    // Spawn all 16 before awaiting any, so that they run at the same time.
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            let request = request.clone();
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                client.token(&request).await.unwrap().into_string()
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for call in calls {
        tokens.push(call.await.unwrap());
    }
    assert_eq!(
        issuer.token_requests(),
        1,
        "16 concurrent calls share one request to /token"
    );
    assert!(tokens.windows(2).all(|w| w[0] == w[1]), "one token for all");
    // Every fetch gets a fresh jti: one jti means one fetch.
    let first_jti = jti(&tokens[0]);
    assert!(tokens.iter().all(|t| jti(t) == first_jti));

    // Cached: scope order and repeats do not matter, and the issuer is not asked again.
    let again = client
        .token(&TokenRequest::new([format!("{READ} {READ}")]))
        .await
        .unwrap();
    assert_eq!(again.as_str(), tokens[0]);
    assert_eq!(issuer.token_requests(), 1);
    // A different request gets its own token.
    let other = client.token(&TokenRequest::new([SHORT])).await.unwrap();
    assert_ne!(other.as_str(), tokens[0]);
    assert_eq!(issuer.token_requests(), 2);
    client.invalidate(&request);
    let fresh = client.token(&request).await.unwrap();
    assert_ne!(fresh.as_str(), tokens[0]);
    assert_ne!(jti(fresh.as_str()), first_jti);
    assert_eq!(issuer.token_requests(), 3);
    assert!(!format!("{fresh:?}").contains(fresh.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_client_does_not_cache_failures() {
    let issuer = ProbedIssuer::start(config(), Duration::ZERO).await;
    let client = issuer.client().await;

    // A refused grant is asked for again on the next call, and refused again.
    let write = TokenRequest::new([WRITE]);
    for n in 1..=2 {
        let (error, description) = refused(client.token(&write).await);
        assert_eq!(error, "invalid_scope");
        assert_eq!(
            description,
            "organization 889640782 is not a consumer of scope \"nav:arbeid:some.scope.write\""
        );
        assert_eq!(issuer.token_requests(), n);
    }

    // A transient failure: the next call for the same request reaches the issuer and succeeds.
    issuer.probe.fail_next.store(1, Ordering::SeqCst);
    let read = TokenRequest::new([READ]);
    match client.token(&read).await {
        Err(TokenError::Refused {
            status,
            error,
            description,
        }) => {
            assert_eq!(status, 503);
            assert_eq!(error, "temporarily_unavailable");
            assert_eq!(description.as_deref(), Some("injected by the test"));
        }
        other => panic!("expected the injected 503, got {other:?}"),
    }
    assert_eq!(issuer.token_requests(), 3);
    let token = client.token(&read).await.unwrap();
    assert_eq!(issuer.token_requests(), 4);
    validator_for(&issuer.issuer)
        .validate(token.as_str())
        .await
        .unwrap();
    // The success is cached.
    let cached = client.token(&read).await.unwrap();
    assert_eq!(cached.as_str(), token.as_str());
    assert_eq!(issuer.token_requests(), 4);

    // Concurrent callers of a failing request share its one failure.
    issuer.probe.fail_next.store(1, Ordering::SeqCst);
    let short = TokenRequest::new([SHORT]);
    let (a, b) = tokio::join!(client.token(&short), client.token(&short));
    assert_eq!(
        a.unwrap_err().oauth_error(),
        Some("temporarily_unavailable")
    );
    assert_eq!(
        b.unwrap_err().oauth_error(),
        Some("temporarily_unavailable")
    );
    assert_eq!(issuer.token_requests(), 5);
    client.token(&short).await.unwrap();
    assert_eq!(issuer.token_requests(), 6);
}

fn validator_for(issuer: &Issuer) -> Validator {
    Validator::new(
        Config::builder()
            .well_known_url(issuer.well_known_url().as_str())
            .build()
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn key_rotation_with_grace_period() {
    let mut config = config();
    config.grace = Duration::from_secs(2);
    let issuer = start(config).await;
    let client = client(&issuer, CLIENT_ID, &CLIENT_JWK).await;
    let validator = validator(&issuer);
    let old = client.token(&TokenRequest::new([READ])).await.unwrap();
    validator.validate(old.as_str()).await.unwrap();

    let http = reqwest::Client::new();
    let rotation: Value = http
        .post(format!("{}admin/rotate", issuer.issuer_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rotation["previous_kid"], "issuer-key-1");
    let new_kid = rotation["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, "issuer-key-1");
    let kids = || async {
        let jwks: Value = http
            .get(format!("{}jwk", issuer.issuer_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(kids().await, [new_kid.clone(), "issuer-key-1".to_owned()]);

    // New tokens use the new key; the validator learns it through its unknown-kid refresh.
    let new = client.token(&TokenRequest::new([SHORT])).await.unwrap();
    assert_eq!(
        decode_unverified_header(new.as_str()).unwrap()["kid"],
        new_kid.as_str()
    );
    assert_eq!(
        validator.validate(new.as_str()).await.unwrap().kid(),
        new_kid
    );
    // During the grace period the old token still validates, even for a fresh validator.
    validator.validate(old.as_str()).await.unwrap();
    self::validator(&issuer)
        .validate(old.as_str())
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(kids().await, [new_kid]);
    let err = self::validator(&issuer)
        .validate(old.as_str())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unknown_kid");
}

/// What announcing buys under a flood of made-up `kid`s: with the one unknown-`kid` refresh
/// per interval spent by a stray token, a key announced a rotation ahead validates at once,
/// while a key that signs the moment it is published is refused `unknown_kid` until the next
/// allowed refresh.
#[tokio::test]
async fn an_announced_key_validates_while_the_unknown_kid_refresh_is_spent() {
    let mut config = config();
    config.announce_next = true;
    let issuer = start(config).await;
    let first_next = issuer
        .issuer()
        .next_kid()
        .expect("a key is announced at start");
    let client = client(&issuer, CLIENT_ID, &CLIENT_JWK).await;
    let validator = Validator::new(
        validator_config(&issuer)
            .unknown_kid_interval(Duration::from_secs(3600))
            .build()
            .unwrap(),
    )
    .unwrap();
    validator.refresh().await.unwrap();
    let stray = SigningKey::generate("never-published")
        .unwrap()
        .sign_jwt(
            Algorithm::RS256,
            &json!({"iss": issuer.issuer_url(), "exp": 4_000_000_000u64}),
        )
        .unwrap();
    let spend = validator.validate(&stray).await.unwrap_err();
    assert_eq!(spend.code(), "unknown_kid");

    let http = reqwest::Client::new();
    let rotate = |query: &'static str| {
        let http = http.clone();
        let url = format!("{}admin/rotate{query}", issuer.issuer_url());
        async move {
            let answer = http.post(url).send().await.unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap())
        }
    };
    let (status, rotation) = rotate("").await;
    assert_eq!(status, 200, "{rotation}");
    assert_eq!(rotation["kid"], first_next.as_str());
    assert!(rotation["announced_since"].as_u64().is_some(), "{rotation}");
    let second_next = rotation["next_kid"].as_str().unwrap().to_owned();
    assert_eq!(
        issuer.issuer().next_kid().as_deref(),
        Some(second_next.as_str())
    );
    assert_eq!(
        issuer.issuer().jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [first_next.as_str(), second_next.as_str(), "issuer-key-1"]
    );
    let announced = client.token(&TokenRequest::new([READ])).await.unwrap();
    assert_eq!(
        validator.validate(announced.as_str()).await.unwrap().kid(),
        first_next,
        "held since the validator's last fetch, before it signed"
    );

    let (status, rotation) = rotate("?unannounced=true").await;
    assert_eq!(status, 200, "{rotation}");
    assert_eq!(rotation["announced_since"], Value::Null);
    assert_eq!(
        rotation["next_kid"],
        second_next.as_str(),
        "the announcement stays"
    );
    // Another scope: the client caches the token it has for READ.
    let unannounced = client.token(&TokenRequest::new([SHORT])).await.unwrap();
    assert_eq!(
        validator
            .validate(unannounced.as_str())
            .await
            .unwrap_err()
            .code(),
        "unknown_kid",
        "published as it signed, inside the spent refresh interval"
    );
    validator.refresh().await.unwrap();
    validator.validate(unannounced.as_str()).await.unwrap();

    let (status, answer) = rotate("?now=1").await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "invalid_request");
    assert!(
        answer["error_description"]
            .as_str()
            .unwrap()
            .contains("unannounced=true"),
        "{answer}"
    );
    issuer.shutdown().await.unwrap();
}

#[tokio::test]
async fn scheduled_rotation() {
    let mut config = config();
    config.rotate_every = Some(Duration::from_secs(1));
    let issuer = start(config).await;
    let first = issuer.issuer().current_kid();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while issuer.issuer().current_kid() == first {
        assert!(tokio::time::Instant::now() < deadline, "no rotation");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(issuer.issuer().jwks()["keys"].as_array().unwrap().len() >= 2);
    issuer.shutdown().await.unwrap();
}

#[tokio::test]
async fn in_process_issuance_matches_http() {
    let issuer = Issuer::new(config(), "http://127.0.0.1:1/issuer/").unwrap();
    assert_eq!(
        issuer.token_endpoint().as_str(),
        "http://127.0.0.1:1/issuer/token"
    );
    let response = issuer
        .issue_dev(&portvakt_issuer::DevTokenRequest {
            orgno: NAV.to_owned(),
            scopes: vec![READ.to_owned()],
            ..Default::default()
        })
        .unwrap();
    let config = Config::builder()
        .issuer(issuer.issuer_url())
        .jwks_uri("http://127.0.0.1:1/issuer/jwk")
        .build()
        .unwrap();
    let validator = Validator::with_keys(&config, issuer.issuer_url(), issuer.key_set());
    validator.validate(&response.access_token).await.unwrap();
    assert!(!format!("{response:?}").contains(&response.access_token));
    for bad in ["http://127.0.0.1:1/issuer", "ftp://x/", "not a url"] {
        assert!(Issuer::new(self::config(), bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn optional_assertion_claims() {
    let issuer = start(config()).await;
    let details =
        json!([{"type": "urn:altinn:systemuser", "systemuser_org": {"ID": "0192:974761076"}}]);
    let mut claims = assertion_claims(&issuer);
    claims["authorization_details"] = details.clone();
    claims["pid"] = json!("01010112345");
    claims["resource"] = json!("https://api.example.no/");
    let (status, body) = post_assertion(&issuer, &sign(&CLIENT_JWK, &claims)).await;
    assert_eq!(status, 200, "{body}");
    let token = decode_unverified_payload(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(token["authorization_details"], details);
    assert_eq!(token["pid"], "01010112345");
    assert_eq!(token["aud"], "https://api.example.no/");

    let mut claims = assertion_claims(&issuer);
    claims["iss_onbehalfof"] = json!("some-registration");
    assert_error(
        post_assertion(&issuer, &sign(&CLIENT_JWK, &claims)).await,
        "invalid_grant",
        "`iss_onbehalfof`",
    );
    let mut claims = assertion_claims(&issuer);
    claims["resource"] = json!("not a uri");
    assert_error(
        post_assertion(&issuer, &sign(&CLIENT_JWK, &claims)).await,
        "invalid_grant",
        "assertion `resource` must be an absolute URI",
    );
    let mut claims = assertion_claims(&issuer);
    claims["consumer_org"] = json!("12345");
    assert_error(
        post_assertion(&issuer, &sign(&CLIENT_JWK, &claims)).await,
        "invalid_grant",
        "assertion `consumer_org` must be the nine-digit organization number",
    );
    // An RS512 assertion is accepted when the registered key does not pin RS256.
    let mut public = key(&CLIENT_JWK).public_jwk();
    public.as_object_mut().unwrap().remove("alg");
    let mut clients = ClientRegistry::new();
    clients.register(CLIENT_ID, NAV, [&public]).unwrap();
    let mut config = config();
    config.clients = clients;
    let relaxed = start(config).await;
    let claims = assertion_claims(&relaxed);
    let assertion = key(&CLIENT_JWK)
        .sign_jwt(Algorithm::RS512, &claims)
        .unwrap();
    let (status, body) = post_assertion(&relaxed, &assertion).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn token_client_from_nais_variables() {
    let issuer = start(config()).await;
    let well_known = issuer.well_known_url().to_string();
    let issuer_url = issuer.issuer_url().to_owned();
    let token_endpoint = format!("{issuer_url}token");
    let vars = |pairs: Vec<(&'static str, String)>| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        }
    };
    let base = || {
        vec![
            ("MASKINPORTEN_CLIENT_ID", CLIENT_ID.to_owned()),
            ("MASKINPORTEN_CLIENT_JWK", CLIENT_JWK.clone()),
        ]
    };
    let mut discovered = base();
    discovered.push(("MASKINPORTEN_WELL_KNOWN_URL", well_known.clone()));
    let client = TokenClient::from_vars(vars(discovered)).await.unwrap();
    assert_eq!(client.issuer(), issuer_url);
    client.token(&TokenRequest::new([READ])).await.unwrap();

    let mut explicit = base();
    explicit.push(("MASKINPORTEN_ISSUER", issuer_url.clone()));
    explicit.push(("MASKINPORTEN_TOKEN_ENDPOINT", token_endpoint));
    let client = TokenClient::from_vars(vars(explicit)).await.unwrap();
    client.token(&TokenRequest::new([READ])).await.unwrap();

    let mut mismatch = base();
    mismatch.push(("MASKINPORTEN_WELL_KNOWN_URL", well_known));
    mismatch.push((
        "MASKINPORTEN_ISSUER",
        "https://test.maskinporten.no/".to_owned(),
    ));
    let err = TokenClient::from_vars(vars(mismatch)).await.unwrap_err();
    assert!(err.to_string().contains("describes issuer"), "{err}");

    let err = TokenClient::from_vars(vars(base())).await.unwrap_err();
    assert!(
        err.to_string().contains("MASKINPORTEN_WELL_KNOWN_URL"),
        "{err}"
    );
}

/// A compact JWS with any header and signature bytes, for algorithms `SigningKey` refuses.
fn compact(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[tokio::test]
async fn assertions_not_signed_rs256_rs384_or_rs512_are_invalid_client() {
    let issuer = start(config()).await;
    let expected = |alg: &str| {
        format!(
            "assertion `alg` \"{alg}\" is not accepted: Maskinporten accepts client assertions signed RS256, RS384, RS512 with the client's registered RSA key"
        )
    };
    let check = |response: (u16, Value), alg: &str| {
        let (status, body) = response;
        assert_eq!(status, 400, "{alg}: {body}");
        assert_eq!(body["error"], "invalid_client", "{alg}: {body}");
        assert_eq!(body["error_description"], expected(alg), "{alg}");
        assert!(body.get("access_token").is_none());
    };

    // `none`: no signature at all.
    let header = json!({"alg": "none", "kid": "arbeid-client-key"});
    let unsigned = compact(&header, &assertion_claims(&issuer), |_| Vec::new());
    assert!(unsigned.ends_with('.'));
    check(post_assertion(&issuer, &unsigned).await, "none");
    // ... and its capitalised spellings.
    let header = json!({"alg": "None", "kid": "arbeid-client-key"});
    let unsigned = compact(&header, &assertion_claims(&issuer), |_| Vec::new());
    check(post_assertion(&issuer, &unsigned).await, "None");

    // HS256 keyed with the client's public key: the classic key-confusion forgery.
    let public = key(&CLIENT_JWK).public_jwk().to_string();
    let header = json!({"alg": "HS256", "kid": "arbeid-client-key"});
    let forged = compact(&header, &assertion_claims(&issuer), |input| {
        let hmac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, public.as_bytes());
        aws_lc_rs::hmac::sign(&hmac_key, input).as_ref().to_vec()
    });
    check(post_assertion(&issuer, &forged).await, "HS256");

    // PS256 with the client's real key: a valid signature, but not an algorithm Maskinporten
    // accepts for client assertions.
    let pss = key(&CLIENT_JWK)
        .sign_jwt(Algorithm::PS256, &assertion_claims(&issuer))
        .unwrap();
    check(post_assertion(&issuer, &pss).await, "PS256");

    // The same claims signed RS256 are accepted: the refusals were about `alg` alone.
    let (status, body) =
        post_assertion(&issuer, &sign(&CLIENT_JWK, &assertion_claims(&issuer))).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn iat_must_be_within_ten_seconds_of_the_issuers_clock() {
    let issuer = start(config()).await;
    // `offset` seconds from now; `exp` 60 s after `iat`.
    let at = |offset: i64| {
        let mut claims = assertion_claims(&issuer);
        let iat = now() + offset;
        claims["iat"] = json!(iat);
        claims["exp"] = json!(iat + 60);
        sign(&CLIENT_JWK, &claims)
    };
    // The issuer's clock may have ticked one second past the test's when it checks, so the
    // refused cases are 12 s ahead (11 or 12 s for the issuer) and 11 s behind (11 or 12 s).
    let (status, body) = post_assertion(&issuer, &at(12)).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_grant")),
        "{body}"
    );
    let text = body["error_description"].as_str().unwrap();
    assert!(
        [11, 12].iter().any(|s| text
            == format!("assertion `iat` is {s} s in the future; it must be within 10 s of the issuer's clock (check your clock)")),
        "{text}"
    );
    let (status, body) = post_assertion(&issuer, &at(-11)).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_grant")),
        "{body}"
    );
    let text = body["error_description"].as_str().unwrap();
    assert!(
        [11, 12].iter().any(|s| text
            == format!("assertion is stale: `iat` is {s} s in the past; it must be within 10 s of the issuer's clock (make a new assertion for every request)")),
        "{text}"
    );
    // 9 s either way is inside the window (8 to 10 s for the issuer).
    for offset in [9, -9] {
        let (status, body) = post_assertion(&issuer, &at(offset)).await;
        assert_eq!(status, 200, "iat {offset:+} s: {body}");
    }
}

#[tokio::test]
async fn authorization_details_types_are_the_advertised_ones() {
    let issuer = start(config()).await;
    let doc = issuer.issuer().metadata();
    let advertised: Vec<&str> = doc["authorization_details_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(advertised, portvakt_issuer::AUTHORIZATION_DETAILS_TYPES);

    // Each advertised type is accepted and copied into the token.
    for kind in advertised {
        let details = json!([{"type": kind, "id": "urn:altinn:consent-id:1"}]);
        let mut claims = assertion_claims(&issuer);
        claims["authorization_details"] = details.clone();
        let (status, body) = post_assertion(&issuer, &sign(&CLIENT_JWK, &claims)).await;
        assert_eq!(status, 200, "{kind}: {body}");
        let token = decode_unverified_payload(body["access_token"].as_str().unwrap()).unwrap();
        assert_eq!(token["authorization_details"], details);
    }

    // Any other type is refused, naming the supported ones; also next to a supported one.
    for details in [
        json!([{"type": "urn:example:payment"}]),
        json!([{"type": "urn:altinn:consent"}, {"type": "urn:example:payment"}]),
    ] {
        let mut claims = assertion_claims(&issuer);
        claims["authorization_details"] = details;
        let (status, body) = post_assertion(&issuer, &sign(&CLIENT_JWK, &claims)).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(
            body["error_description"],
            "assertion `authorization_details` has type \"urn:example:payment\", which is not supported; supported types: urn:altinn:systemuser, urn:altinn:consent"
        );
    }
    // Type matching is exact.
    let mut claims = assertion_claims(&issuer);
    claims["authorization_details"] = json!([{"type": "URN:ALTINN:CONSENT"}]);
    assert_error(
        post_assertion(&issuer, &sign(&CLIENT_JWK, &claims)).await,
        "invalid_grant",
        "has type \"URN:ALTINN:CONSENT\", which is not supported",
    );
}

/// A write to the local Digdir that cannot be saved is answered 500 and changes nothing: not
/// the grants tokens are issued from, and not the file, so a client's retry finds the state
/// as it was (and `portvakt provision` reports the step as failed, which it is).
#[tokio::test]
async fn a_write_that_cannot_be_saved_changes_nothing() {
    let dir = std::env::temp_dir().join(format!("portvakt-state-test-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = config();
    config.state_file = Some(dir.join("state.json"));
    let issuer = start(config).await;
    let http = reqwest::Client::new();
    let dev = issuer.issuer().dev_token_endpoint();
    let admin = request_dev_token(
        &dev,
        Some(NAV),
        &TokenRequest::new(["idporten:scopes.read", "idporten:scopes.write"]),
    )
    .await
    .unwrap();
    let admin = admin.as_str();
    let api = format!("{}api/v1", issuer.issuer_url());
    let access = || async {
        let answer: Value = http
            .get(format!("{api}/scopes/access?scope={READ}"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["consumer_orgno"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(access().await, [NAV]);
    let saved = std::fs::read_to_string(dir.join("state.json")).unwrap();

    // The file can no longer be saved: a directory stands where the save writes its temporary
    // file (the state file's name, `.tmp` and the process id), which fails for root too.
    let blocker = dir.join(format!("state.json.tmp{}", std::process::id()));
    std::fs::create_dir(&blocker).unwrap();
    let answer = http
        .delete(format!("{api}/scopes/access/{NAV}?scope={READ}"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 500);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "server_error");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("cannot write state file"),
        "{body}"
    );
    assert_eq!(access().await, [NAV], "the revoke was not kept in memory");
    request_dev_token(&dev, Some(NAV), &TokenRequest::new([READ]))
        .await
        .expect("tokens are still issued from the grant");
    assert_eq!(
        std::fs::read_to_string(dir.join("state.json")).unwrap(),
        saved
    );
    // Once the file can be written again, the same request is done, and saved.
    std::fs::remove_dir(&blocker).unwrap();
    let answer = http
        .delete(format!("{api}/scopes/access/{NAV}?scope={READ}"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    assert_eq!(access().await, Vec::<String>::new());
    assert_ne!(
        std::fs::read_to_string(dir.join("state.json")).unwrap(),
        saved
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A web page the developer visits cannot reach the development endpoints: not through a DNS
/// name rebound to 127.0.0.1, and not with a cross-site form.
#[tokio::test]
async fn development_endpoints_refuse_rebound_hosts_and_cross_site_origins() {
    let issuer = start(config()).await;
    let http = reqwest::Client::new();
    let form = format!("orgno={NAV}&scope={READ}");
    let post = |path: &str, host: Option<&str>, origin: Option<&str>| {
        let mut request = http
            .post(format!("{}{path}", issuer.issuer_url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.clone());
        if let Some(host) = host {
            request = request.header("host", host);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }
    };
    for path in ["dev/token", "admin/rotate"] {
        let (status, body) = post(path, Some("attacker.example:7166"), None).await;
        assert_eq!(status, 421, "{path}: {body}");
        assert_eq!(body["error"], "invalid_request");
        let (status, body) = post(path, None, Some("http://attacker.example")).await;
        assert_eq!(status, 403, "{path}: {body}");
        let (status, body) =
            post(path, Some("localhost:7166"), Some("http://localhost:7166")).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    // The issuer URL's own host is allowed (a compose network's `http://issuer:7166/`).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut named = config();
    named.issuer_url = Some("http://issuer.internal:7166/".to_owned());
    let named = portvakt_issuer::serve(listener, named).await.unwrap();
    let response = http
        .post(format!("http://{}/dev/token", named.addr()))
        .header("host", "issuer.internal:7166")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}
