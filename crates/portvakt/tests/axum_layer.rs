//! The tower layer and the axum extractors through real HTTP requests: an axum app (or a plain
//! hyper service) served on 127.0.0.1, called with reqwest. Statuses, headers and JSON bodies
//! are asserted exactly.
#![cfg(feature = "axum")]

use portvakt_test_support as common;

use std::convert::Infallible;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use common::{KEY_A, KEY_A_IMPOSTOR, KEY_B, claims, now, sign};
use portvakt::bearer::ErrorCode;
use portvakt::extract::Maskinporten;
use portvakt::layer::MaskinportenLayer;
use portvakt::{
    Algorithm, Config, KeySet, ScopeRequirement, ValidationError, Validator, VerifiedToken,
};
use serde_json::{Value, json};

const ISSUER: &str = common::TEST_ISSUER;
const READ: &str = "nav:arbeid:some.scope.read";
const WRITE: &str = "nav:arbeid:some.scope.write";
const REALM: &str = "test-api";

fn validator() -> Validator {
    common::key_a_validator()
}

fn layer(validator: &Validator) -> MaskinportenLayer {
    MaskinportenLayer::new(validator.clone()).realm(REALM)
}

fn token(scope: &str) -> String {
    sign(&KEY_A, &claims(ISSUER, scope))
}

/// What the handlers answer: who called.
async fn who(token: Maskinporten) -> Json<Value> {
    Json(json!({
        "consumer": token.consumer_orgno(),
        "client_id": token.client_id(),
        "scopes": token.scopes().iter().collect::<Vec<_>>(),
    }))
}

fn who_json(scopes: &[&str]) -> Value {
    json!({"consumer": "889640782", "client_id": "2b3c-client", "scopes": scopes})
}

/// `/read` and `/write` with their scopes, `/partner` for one consumer only, `/either` for
/// either scope, `/both` for both scopes, `/audience` for audience-restricted tokens.
fn api(validator: &Validator) -> Router {
    let route = |path: &str, layer: MaskinportenLayer| {
        Router::new()
            .route(path, get(who).post(who))
            .route_layer(layer)
    };
    Router::new()
        .merge(route("/read", layer(validator).require_scope(READ)))
        .merge(route("/write", layer(validator).require_scope(WRITE)))
        .merge(route(
            "/partner",
            layer(validator).allow_consumers(["974761076"]),
        ))
        .merge(route(
            "/either",
            layer(validator).scopes(ScopeRequirement::any_of([READ, WRITE])),
        ))
        .merge(route(
            "/both",
            layer(validator).scopes(ScopeRequirement::all_of([READ, WRITE])),
        ))
        .merge(route(
            "/audience",
            layer(validator).require_audience("https://api.nav.no/"),
        ))
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// A refusal: status, exact `WWW-Authenticate` (or none), JSON content type and body.
    fn assert_refused(&self, status: u16, challenge: Option<&str>, body: Value) {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.header("www-authenticate"), challenge, "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(self.json(), body);
    }

    fn assert_invalid_token(&self, description: &str) {
        self.assert_refused(
            401,
            Some(&format!(
                r#"Bearer realm="{REALM}", error="invalid_token", error_description="{description}""#
            )),
            json!({"error": "invalid_token", "error_description": description}),
        );
    }

    fn assert_invalid_request(&self, description: &str) {
        self.assert_refused(
            400,
            Some(&format!(
                r#"Bearer realm="{REALM}", error="invalid_request", error_description="{description}""#
            )),
            json!({"error": "invalid_request", "error_description": description}),
        );
    }

    fn assert_no_credentials(&self, description: &str) {
        self.assert_refused(
            401,
            Some(&format!(r#"Bearer realm="{REALM}""#)),
            json!({"error": "missing_token", "error_description": description}),
        );
    }
}

async fn call(method: &str, url: &str, authorization: &[&str], extra: &[(&str, &str)]) -> Answer {
    let client = reqwest::Client::new();
    let mut request = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    };
    for value in authorization {
        request = request.header("authorization", *value);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

async fn get_with(url: &str, authorization: &[&str]) -> Answer {
    call("GET", url, authorization, &[]).await
}

async fn get_bearer(url: &str, token: &str) -> Answer {
    get_with(url, &[&format!("Bearer {token}")]).await
}

const MISSING: &str = "no Authorization header; send `Authorization: Bearer <token>` with a Maskinporten access token";
const NOT_BEARER: &str = "the Authorization header uses another scheme than Bearer; send `Authorization: Bearer <token>` with a Maskinporten access token";

#[tokio::test]
async fn valid_token_reaches_the_handler_with_its_claims() {
    let base = serve(api(&validator())).await;
    let token = token(&format!("{READ} {WRITE}"));
    let answer = get_bearer(&format!("{base}/read"), &token).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json(), who_json(&[READ, WRITE]));
    let answer = call(
        "POST",
        &format!("{base}/write"),
        &[&format!("Bearer {token}")],
        &[],
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let answer = get_bearer(&format!("{base}/either"), &token).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test]
async fn lowercase_scheme_and_extra_spaces_are_accepted() {
    let base = serve(api(&validator())).await;
    let token = token(READ);
    for value in [
        format!("bearer {token}"),
        format!("BEARER {token}"),
        format!("Bearer   {token}"),
    ] {
        let answer = get_with(&format!("{base}/read"), &[&value]).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json(), who_json(&[READ]));
    }
}

#[tokio::test]
async fn expired_token_is_invalid() {
    let base = serve(api(&validator())).await;
    let mut claims = claims(ISSUER, READ);
    let exp = now() - 3600;
    claims["exp"] = json!(exp);
    claims["iat"] = json!(exp - 120);
    let answer = get_bearer(&format!("{base}/read"), &sign(&KEY_A, &claims)).await;
    // `ago` depends on the second the request is handled in.
    let description = (3600..3603)
        .map(|ago| format!("token expired at {exp} ({ago} s ago, leeway 60 s); fetch a new token"))
        .find(|d| answer.body.contains(d.as_str()))
        .unwrap_or_else(|| panic!("{answer:?}"));
    answer.assert_invalid_token(&description);
}

#[tokio::test]
async fn bad_signature_is_invalid() {
    let base = serve(api(&validator())).await;
    let forged = sign(&KEY_A_IMPOSTOR, &claims(ISSUER, READ));
    get_bearer(&format!("{base}/read"), &forged)
        .await
        .assert_invalid_token("signature does not verify with the issuer's key `key-a`");
    // A token whose signature was swapped for another token's.
    let genuine = token(READ);
    let other = token(WRITE);
    let (signing_input, _) = genuine.rsplit_once('.').unwrap();
    let (_, signature) = other.rsplit_once('.').unwrap();
    get_bearer(
        &format!("{base}/read"),
        &format!("{signing_input}.{signature}"),
    )
    .await
    .assert_invalid_token("signature does not verify with the issuer's key `key-a`");
}

#[tokio::test]
async fn wrong_issuer_is_invalid_and_escaped_in_the_header() {
    let base = serve(api(&validator())).await;
    let evil = sign(&KEY_A, &claims("https://evil.example/\"x", READ));
    let answer = get_bearer(&format!("{base}/read"), &evil).await;
    let description = "token issuer `https://evil.example/\"x` is not the trusted issuer";
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.header("www-authenticate"),
        Some(
            r#"Bearer realm="test-api", error="invalid_token", error_description="token issuer `https://evil.example/'x` is not the trusted issuer""#
        )
    );
    assert_eq!(
        answer.json(),
        json!({"error": "invalid_token", "error_description": description})
    );
}

#[tokio::test]
async fn unknown_kid_is_invalid() {
    let base = serve(api(&validator())).await;
    let unknown = sign(&KEY_B, &claims(ISSUER, READ));
    get_bearer(&format!("{base}/read"), &unknown)
        .await
        .assert_invalid_token("no signing key with kid `key-b` is published by the trusted issuer");
}

#[tokio::test]
async fn malformed_tokens_are_invalid() {
    let base = serve(api(&validator())).await;
    let url = format!("{base}/read");
    get_bearer(&url, "abc.def").await.assert_invalid_token(
        "token is not a compact JWS: expected 3 dot-separated segments, found 2",
    );
    get_bearer(&url, "a+b.c.d")
        .await
        .assert_invalid_token("token header is not base64url without padding");
    // "not json" as the header.
    let answer = get_bearer(&url, "bm90IGpzb24.e30.c2ln").await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["error"], "invalid_token");
    let huge = "a".repeat(20_000);
    let answer = get_bearer(&url, &huge).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["error"], "invalid_token");
}

#[tokio::test]
async fn missing_scope_is_403_with_the_scope() {
    let base = serve(api(&validator())).await;
    let answer = get_bearer(&format!("{base}/write"), &token(READ)).await;
    let description = format!("token lacks the required scope: needs `{WRITE}`");
    answer.assert_refused(
        403,
        Some(&format!(
            r#"Bearer realm="{REALM}", error="insufficient_scope", error_description="{description}", scope="{WRITE}""#
        )),
        json!({"error": "insufficient_scope", "error_description": description}),
    );
    // any-of: the scope attribute lists every acceptable scope.
    let answer = get_bearer(&format!("{base}/either"), &token("nav:arbeid:other")).await;
    let description = format!("token lacks the required scope: needs one of `{READ}`, `{WRITE}`");
    answer.assert_refused(
        403,
        Some(&format!(
            r#"Bearer realm="{REALM}", error="insufficient_scope", error_description="{description}", scope="{READ} {WRITE}""#
        )),
        json!({"error": "insufficient_scope", "error_description": description}),
    );
}

#[tokio::test]
async fn wrong_consumer_is_403_without_scope() {
    let base = serve(api(&validator())).await;
    let answer = get_bearer(&format!("{base}/partner"), &token(READ)).await;
    let description = "consumer organization 889640782 is not allowed to call this API";
    answer.assert_refused(
        403,
        Some(&format!(
            r#"Bearer realm="{REALM}", error="insufficient_scope", error_description="{description}""#
        )),
        json!({"error": "insufficient_scope", "error_description": description}),
    );
}

#[tokio::test]
async fn allowed_consumer_reaches_the_handler() {
    let base = serve(api(&validator())).await;
    let mut partner = claims(ISSUER, READ);
    partner["consumer"] = json!({"authority": "iso6523-actorid-upis", "ID": "0192:974761076"});
    let answer = get_bearer(&format!("{base}/partner"), &sign(&KEY_A, &partner)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.json(),
        json!({"consumer": "974761076", "client_id": "2b3c-client", "scopes": [READ]})
    );
    // The same organization under another identifier scheme is not the allowed consumer.
    partner["consumer"] = json!({"authority": "other-scheme", "ID": "0192:974761076"});
    let answer = get_bearer(&format!("{base}/partner"), &sign(&KEY_A, &partner)).await;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert_eq!(answer.json()["error"], "insufficient_scope");
}

#[tokio::test]
async fn all_of_scopes_need_every_scope() {
    let base = serve(api(&validator())).await;
    let url = format!("{base}/both");
    let description = format!("token lacks the required scope: needs all of `{READ}`, `{WRITE}`");
    for partial in [READ, WRITE] {
        get_bearer(&url, &token(partial)).await.assert_refused(
            403,
            Some(&format!(
                r#"Bearer realm="{REALM}", error="insufficient_scope", error_description="{description}", scope="{READ} {WRITE}""#
            )),
            json!({"error": "insufficient_scope", "error_description": description}),
        );
    }
    let answer = get_bearer(&url, &token(&format!("{WRITE} {READ}"))).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json(), who_json(&[READ, WRITE]));
}

/// What a route answers through [`coded`]: the refusal's machine code.
fn coded(layer: MaskinportenLayer) -> MaskinportenLayer {
    layer.on_rejection(|rejection| {
        axum::http::Response::new(Bytes::from(
            json!({
                "error": rejection.error_code().map(ErrorCode::as_str),
                "code": rejection.code(),
            })
            .to_string(),
        ))
    })
}

#[tokio::test]
async fn each_kind_of_invalid_token_is_401_with_its_code() {
    const AUDIENCE: &str = "https://api.nav.no/";
    let validator = validator();
    let route = |path: &str, layer: MaskinportenLayer| {
        Router::new().route(path, get(who)).route_layer(layer)
    };
    let app = Router::new()
        .merge(route("/read", layer(&validator).require_scope(READ)))
        .merge(route(
            "/audience",
            layer(&validator).require_audience(AUDIENCE),
        ))
        .merge(route(
            "/coded/read",
            coded(layer(&validator).require_scope(READ)),
        ))
        .merge(route(
            "/coded/audience",
            coded(layer(&validator).require_audience(AUDIENCE)),
        ));
    let base = serve(app).await;

    let payload = claims(ISSUER, READ).to_string();
    let with_header = |header: &str| {
        KEY_A
            .sign_compact(Algorithm::RS256, header.as_bytes(), payload.as_bytes())
            .unwrap()
    };
    let with_claims = |change: &dyn Fn(&mut Value)| {
        let mut c = claims(ISSUER, READ);
        change(&mut c);
        sign(&KEY_A, &c)
    };
    let b64 = |text: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    };
    // Checks that depend on the second the request is handled in accept a few seconds.
    let ahead = |at: i64| {
        (0..5)
            .map(move |late| at - (now() + late))
            .collect::<Vec<_>>()
    };
    let nbf = now() + 3600;
    let iat = now() + 3600;
    let cases: Vec<(&str, &str, String, &str, Vec<ValidationError>)> = vec![
        (
            "nbf in the future",
            "/read",
            with_claims(&|c| c["nbf"] = json!(nbf)),
            "not_yet_valid",
            ahead(nbf)
                .into_iter()
                .map(|ahead| ValidationError::NotYetValid {
                    nbf,
                    ahead,
                    leeway: 60,
                })
                .collect(),
        ),
        (
            "iat in the future",
            "/read",
            with_claims(&|c| {
                c["iat"] = json!(iat);
                c["exp"] = json!(iat + 120);
            }),
            "issued_in_future",
            ahead(iat)
                .into_iter()
                .map(|ahead| ValidationError::IssuedInFuture {
                    iat,
                    ahead,
                    leeway: 60,
                })
                .collect(),
        ),
        (
            "alg none, empty signature",
            "/read",
            format!(
                "{}.{}.",
                b64(r#"{"kid":"key-a","alg":"none"}"#),
                b64(&payload)
            ),
            "alg_not_allowed",
            vec![ValidationError::AlgorithmNotAllowed {
                alg: Some("none".to_owned()),
                allowed: vec![Algorithm::RS256],
            }],
        ),
        (
            "alg HS256",
            "/read",
            with_header(r#"{"kid":"key-a","alg":"HS256"}"#),
            "alg_not_allowed",
            vec![ValidationError::AlgorithmNotAllowed {
                alg: Some("HS256".to_owned()),
                allowed: vec![Algorithm::RS256],
            }],
        ),
        (
            "missing kid",
            "/read",
            with_header(r#"{"alg":"RS256"}"#),
            "missing_kid",
            vec![ValidationError::MissingKid],
        ),
        (
            "crit header",
            "/read",
            with_header(r#"{"kid":"key-a","alg":"RS256","crit":["exp"]}"#),
            "unsupported_header",
            vec![ValidationError::UnsupportedHeader { parameter: "crit" }],
        ),
        (
            "missing exp",
            "/read",
            with_claims(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            "missing_exp",
            vec![ValidationError::MissingExpiry],
        ),
        (
            "wrong aud value",
            "/audience",
            with_claims(&|c| c["aud"] = json!("https://other.nav.no/")),
            "invalid_audience",
            vec![ValidationError::WrongAudience {
                required: AUDIENCE.to_owned(),
                found: vec!["https://other.nav.no/".to_owned()],
            }],
        ),
    ];
    for (what, path, token, code, expected) in cases {
        assert!(
            expected.iter().all(|e| e.code() == code),
            "{what}: the library's code for {expected:?} is not {code}"
        );
        let answer = get_bearer(&format!("{base}{path}"), &token).await;
        assert_eq!(answer.status, 401, "{what}: {answer:?}");
        let description = expected
            .iter()
            .map(ToString::to_string)
            .find(|d| answer.body.contains(&serde_json::to_string(d).unwrap()))
            .unwrap_or_else(|| panic!("{what}: none of {expected:?} in {answer:?}"));
        assert_eq!(
            answer.json(),
            json!({"error": "invalid_token", "error_description": description}),
            "{what}"
        );
        // The header carries the description with `"` replaced (RFC 6750's character set).
        assert_eq!(
            answer.header("www-authenticate"),
            Some(&*format!(
                r#"Bearer realm="{REALM}", error="invalid_token", error_description="{}""#,
                description.replace('"', "'")
            )),
            "{what}"
        );
        let answer = get_bearer(&format!("{base}/coded{path}"), &token).await;
        assert_eq!(answer.status, 401, "{what}: {answer:?}");
        assert_eq!(
            answer.json(),
            json!({"error": "invalid_token", "code": code}),
            "{what}"
        );
    }
    // And the untouched token passes both routes, so each refusal above is the change's doing.
    let mut good = claims(ISSUER, READ);
    good["aud"] = json!(AUDIENCE);
    let good = sign(&KEY_A, &good);
    for path in ["/read", "/audience", "/coded/read", "/coded/audience"] {
        let answer = get_bearer(&format!("{base}{path}"), &good).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
    }
}

/// What a handler can read of the consumer's identity beyond the organization number.
async fn identity(token: Maskinporten) -> Json<Value> {
    let supplier = token
        .supplier()
        .map(|s| json!({"authority": s.authority(), "id": s.id(), "orgno": s.orgno()}));
    let system_user_orgs: Vec<&str> = token
        .authorization_details()
        .iter()
        .filter(|d| d["type"] == "urn:altinn:systemuser")
        .filter_map(|d| d["systemuser_org"]["ID"].as_str())
        .collect();
    Json(json!({
        "consumer": token.consumer_orgno(),
        "supplier": supplier,
        "authorization_details": token.authorization_details(),
        "system_user_orgs": system_user_orgs,
    }))
}

#[tokio::test]
async fn supplier_and_authorization_details_reach_the_handler() {
    let validator = validator();
    let app = Router::new()
        .route("/identity", get(identity))
        .route_layer(layer(&validator).require_scope(READ));
    let base = serve(app).await;
    let details = json!([{
        "type": "urn:altinn:systemuser",
        "systemuser_id": ["a8a1c2e4-6f0b-4c1e-9d3a-1b2c3d4e5f60"],
        "systemuser_org": {"authority": "iso6523-actorid-upis", "ID": "0192:314168267"},
        "system_id": "974761076_payroll",
    }]);
    let mut delegated = claims(ISSUER, READ);
    delegated["supplier"] = json!({"authority": "iso6523-actorid-upis", "ID": "0192:974761076"});
    delegated["authorization_details"] = details.clone();
    let answer = get_bearer(&format!("{base}/identity"), &sign(&KEY_A, &delegated)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.json(),
        json!({
            "consumer": "889640782",
            "supplier": {
                "authority": "iso6523-actorid-upis",
                "id": "0192:974761076",
                "orgno": "974761076",
            },
            "authorization_details": details,
            "system_user_orgs": ["0192:314168267"],
        })
    );
    // A token without them: no supplier, no details.
    let answer = get_bearer(&format!("{base}/identity"), &token(READ)).await;
    assert_eq!(
        answer.json(),
        json!({
            "consumer": "889640782",
            "supplier": null,
            "authorization_details": [],
            "system_user_orgs": [],
        })
    );
}

#[tokio::test]
async fn audience_is_required_where_configured() {
    let base = serve(api(&validator())).await;
    let answer = get_bearer(&format!("{base}/audience"), &token(READ)).await;
    answer.assert_invalid_token(
        "token is not audience-restricted; this API requires `aud` = `https://api.nav.no/` (request the token with resource=https://api.nav.no/)",
    );
    let mut restricted = claims(ISSUER, READ);
    restricted["aud"] = json!("https://api.nav.no/");
    let answer = get_bearer(&format!("{base}/audience"), &sign(&KEY_A, &restricted)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test]
async fn missing_header_gets_a_bare_challenge() {
    let base = serve(api(&validator())).await;
    let answer = get_with(&format!("{base}/read"), &[]).await;
    answer.assert_no_credentials(MISSING);
    assert!(
        !answer
            .header("www-authenticate")
            .unwrap()
            .contains("error=")
    );
}

#[tokio::test]
async fn other_schemes_get_a_bare_challenge() {
    let base = serve(api(&validator())).await;
    let answer = get_with(&format!("{base}/read"), &["Basic dXNlcjpwYXNzd29yZA=="]).await;
    answer.assert_no_credentials(NOT_BEARER);
    assert!(
        !answer.body.contains("dXNlcjpwYXNzd29yZA"),
        "credentials echoed"
    );
}

#[tokio::test]
async fn malformed_headers_are_invalid_requests() {
    let base = serve(api(&validator())).await;
    let url = format!("{base}/read");
    let token = token(READ);
    get_with(&url, &[&format!("Bearer Bearer {token}")])
        .await
        .assert_invalid_request(
            "the Authorization header repeats the scheme; send `Bearer <token>`, not `Bearer Bearer <token>`",
        );
    get_with(&url, &["Bearer"])
        .await
        .assert_invalid_request("the Authorization header says Bearer but carries no token");
    get_with(&url, &["Bearer "])
        .await
        .assert_invalid_request("the Authorization header says Bearer but carries no token");
    get_with(&url, &[""]).await.assert_invalid_request(
        "the Authorization header is empty; send `Authorization: Bearer <token>`",
    );
    get_with(&url, &[&format!("Bearer {token} {token}")])
        .await
        .assert_invalid_request(
            "the Authorization header carries more than one credential; send exactly one token",
        );
    get_with(&url, &[&format!("Bearer \"{token}\"")])
        .await
        .assert_invalid_request(
            "the bearer token contains a character outside RFC 6750's token alphabet (letters, digits, - . _ ~ + / and trailing =)",
        );
    let answer = get_with(
        &url,
        &[&format!("Bearer {token}"), &format!("Bearer {token}")],
    )
    .await;
    answer.assert_invalid_request("more than one Authorization header; send exactly one");
    assert!(!answer.body.contains(&token), "token echoed");
}

#[tokio::test]
async fn refusals_never_echo_the_token() {
    let base = serve(api(&validator())).await;
    let forged = sign(&KEY_A_IMPOSTOR, &claims(ISSUER, READ));
    let signature = forged.rsplit_once('.').unwrap().1;
    for url in ["/read", "/write", "/partner"] {
        let answer = get_bearer(&format!("{base}{url}"), &forged).await;
        assert!(!answer.body.contains(signature));
        let header = answer.header("www-authenticate").unwrap();
        assert!(!header.contains(signature));
    }
}

#[tokio::test]
async fn stacked_layers_reuse_the_verified_token() {
    let validator = validator();
    let app = Router::new()
        .route("/read", get(who))
        .route_layer(layer(&validator).require_scope(READ))
        .route("/any", get(who))
        .layer(layer(&validator));
    let base = serve(app).await;
    let token = token(READ);
    let before = validator.stats();
    let answer = get_bearer(&format!("{base}/read"), &token).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json(), who_json(&[READ]));
    let after = validator.stats();
    assert_eq!(
        (after.cache_hits + after.cache_misses) - (before.cache_hits + before.cache_misses),
        1,
        "the inner layer validated again"
    );
    // The inner layer still applies its policy, the outer one its own.
    let answer = get_bearer(&format!("{base}/read"), &self::token("nav:arbeid:other")).await;
    assert_eq!(answer.status, 403, "{answer:?}");
    let answer = get_bearer(&format!("{base}/any"), &self::token("nav:arbeid:other")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    get_with(&format!("{base}/read"), &[])
        .await
        .assert_no_credentials(MISSING);
}

#[tokio::test]
async fn stacked_layer_with_another_validator_validates_again() {
    // Two validators configured alike (same issuer, same keys) are still two: the inner layer
    // does not take the outer one's word for a token, it validates the header itself.
    let (outer, inner) = (validator(), validator());
    let app = Router::new()
        .route("/read", get(who))
        .route_layer(layer(&inner).require_scope(READ))
        .layer(layer(&outer));
    let base = serve(app).await;
    let lookups = |v: &Validator| {
        let stats = v.stats();
        stats.cache_hits + stats.cache_misses
    };
    let (outer_before, inner_before) = (lookups(&outer), lookups(&inner));
    let answer = get_bearer(&format!("{base}/read"), &token(READ)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        lookups(&outer) - outer_before,
        1,
        "the outer layer did not validate"
    );
    assert_eq!(
        lookups(&inner) - inner_before,
        1,
        "the inner layer reused a foreign token"
    );
}

#[tokio::test]
async fn stacked_layer_with_another_issuer_validates_again() {
    // The outer layer trusts another issuer (same keys): its token must not satisfy the inner.
    let other_issuer = "https://maskinporten.no/";
    let config = Config::builder()
        .issuer(other_issuer)
        .jwks_uri("https://maskinporten.no/jwk")
        .build()
        .unwrap();
    let keys = KeySet::from_jwks_values(&[KEY_A.public_jwk()], &[Algorithm::RS256]).0;
    let outer = Validator::with_keys(&config, other_issuer, keys);
    let app = Router::new()
        .route("/read", get(who))
        .route_layer(layer(&validator()).require_scope(READ))
        .layer(layer(&outer));
    let base = serve(app).await;
    let token = sign(&KEY_A, &claims(other_issuer, READ));
    get_bearer(&format!("{base}/read"), &token)
        .await
        .assert_invalid_token("token issuer `https://maskinporten.no/` is not the trusted issuer");
}

async fn greet(token: Option<Maskinporten>) -> String {
    match token {
        Some(token) => format!("hello {}", token.consumer_orgno().unwrap_or("?")),
        None => "hello anonymous".to_owned(),
    }
}

#[tokio::test]
async fn optional_extractor_behind_an_anonymous_layer() {
    let validator = validator();
    let app = Router::new()
        .route("/greet", get(greet))
        .route("/strict", get(who))
        .layer(layer(&validator).allow_anonymous());
    let base = serve(app).await;
    let answer = get_with(&format!("{base}/greet"), &[]).await;
    assert_eq!(
        (answer.status.as_u16(), answer.body.as_str()),
        (200, "hello anonymous")
    );
    let answer = get_bearer(&format!("{base}/greet"), &token(READ)).await;
    assert_eq!(
        (answer.status.as_u16(), answer.body.as_str()),
        (200, "hello 889640782")
    );
    // A bad token is refused, never taken for anonymous.
    let forged = sign(&KEY_A_IMPOSTOR, &claims(ISSUER, READ));
    get_bearer(&format!("{base}/greet"), &forged)
        .await
        .assert_invalid_token("signature does not verify with the issuer's key `key-a`");
    get_with(&format!("{base}/greet"), &["Basic eDp5"])
        .await
        .assert_no_credentials(NOT_BEARER);
    // A handler that needs a token on an anonymous layer answers like a layer would.
    get_with(&format!("{base}/strict"), &[])
        .await
        .assert_no_credentials(MISSING);
}

#[tokio::test]
async fn extractors_validate_with_a_validator_extension() {
    let app = Router::new()
        .route("/greet", get(greet))
        .route("/strict", get(who))
        .layer(Extension(validator()));
    let base = serve(app).await;
    let answer = get_with(&format!("{base}/greet"), &[]).await;
    assert_eq!(
        (answer.status.as_u16(), answer.body.as_str()),
        (200, "hello anonymous")
    );
    let answer = get_bearer(&format!("{base}/greet"), &token(READ)).await;
    assert_eq!(
        (answer.status.as_u16(), answer.body.as_str()),
        (200, "hello 889640782")
    );
    let answer = get_bearer(&format!("{base}/strict"), &token(READ)).await;
    assert_eq!(answer.json(), who_json(&[READ]));
    let expired = {
        let mut c = claims(ISSUER, READ);
        c["exp"] = json!(now() - 7200);
        sign(&KEY_A, &c)
    };
    let answer = get_bearer(&format!("{base}/greet"), &expired).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["error"], "invalid_token");
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .starts_with(r#"Bearer realm="maskinporten", error="invalid_token""#)
    );
    let answer = get_with(&format!("{base}/strict"), &[]).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.header("www-authenticate"),
        Some(r#"Bearer realm="maskinporten""#)
    );
}

#[tokio::test]
async fn extractor_without_layer_or_validator_says_misconfigured() {
    let base = serve(
        Router::new()
            .route("/strict", get(who))
            .route("/greet", get(greet)),
    )
    .await;
    for path in ["/strict", "/greet"] {
        let answer = get_bearer(&format!("{base}{path}"), &token(READ)).await;
        answer.assert_refused(
            500,
            None,
            json!({
                "error": "server_error",
                "error_description": "portvakt: this route reads a Maskinporten token, but no MaskinportenLayer ran for it and no Validator is in the request extensions; add `.route_layer(MaskinportenLayer::new(validator))` or `.layer(Extension(validator))` to the router",
            }),
        );
    }
}

#[tokio::test]
async fn handler_policy_check_refuses_like_the_layer() {
    async fn write(
        token: Maskinporten,
    ) -> Result<&'static str, portvakt::extract::MaskinportenRejection> {
        token.require(&portvakt::Policy::new().require_scope(WRITE))?;
        Ok("written")
    }
    let validator = validator();
    let app = Router::new()
        .route("/w", post(write))
        .layer(layer(&validator));
    let base = serve(app).await;
    let answer = call(
        "POST",
        &format!("{base}/w"),
        &[&format!("Bearer {}", token(READ))],
        &[],
    )
    .await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.json()["error"], "insufficient_scope");
    let answer = call(
        "POST",
        &format!("{base}/w"),
        &[&format!("Bearer {}", token(WRITE))],
        &[],
    )
    .await;
    assert_eq!(
        (answer.status.as_u16(), answer.body.as_str()),
        (200, "written")
    );
}

#[tokio::test]
async fn custom_rejection_body_keeps_the_protocol_headers() {
    let validator = validator();
    let custom = layer(&validator)
        .require_scope(WRITE)
        .on_rejection(|rejection| {
            let mut response = axum::http::Response::new(Bytes::from(format!(
                "refused: {} ({})",
                rejection.code(),
                rejection.status().as_u16()
            )));
            response
                .headers_mut()
                .insert("content-type", "text/plain".parse().unwrap());
            response
                .headers_mut()
                .insert("x-team", "arbeid".parse().unwrap());
            response
        });
    let app = Router::new().route("/write", get(who)).route_layer(custom);
    let base = serve(app).await;
    let answer = get_with(&format!("{base}/write"), &[]).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body, "refused: missing_token (401)");
    assert_eq!(answer.header("content-type"), Some("text/plain"));
    assert_eq!(answer.header("x-team"), Some("arbeid"));
    assert_eq!(
        answer.header("www-authenticate"),
        Some(r#"Bearer realm="test-api""#)
    );
    let answer = get_bearer(&format!("{base}/write"), &token(READ)).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.body, "refused: insufficient_scope (403)");
    assert_eq!(
        answer.header("www-authenticate"),
        Some(&*format!(
            r#"Bearer realm="test-api", error="insufficient_scope", error_description="token lacks the required scope: needs `{WRITE}`", scope="{WRITE}""#
        ))
    );
}

#[tokio::test]
async fn custom_rejection_applies_to_the_extractor_after_an_anonymous_layer() {
    let validator = validator();
    let app = Router::new().route("/strict", get(who)).layer(
        layer(&validator)
            .allow_anonymous()
            .on_rejection(|_| axum::http::Response::new(Bytes::from_static(b"who are you?"))),
    );
    let base = serve(app).await;
    let answer = get_with(&format!("{base}/strict"), &[]).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body, "who are you?");
    assert_eq!(
        answer.header("www-authenticate"),
        Some(r#"Bearer realm="test-api""#)
    );
}

#[tokio::test]
async fn grpc_requests_get_a_grpc_status() {
    let base = serve(api(&validator())).await;
    let grpc = [("content-type", "application/grpc")];
    let answer = call("POST", &format!("{base}/read"), &[], &grpc).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/grpc"));
    assert_eq!(answer.header("grpc-status"), Some("16"));
    assert_eq!(
        answer.header("grpc-message"),
        Some(
            "no Authorization header; send `Authorization: Bearer <token>` with a Maskinporten access token"
        )
    );
    assert_eq!(
        answer.header("www-authenticate"),
        Some(r#"Bearer realm="test-api""#)
    );
    assert_eq!(answer.body, "");
    let answer = call(
        "POST",
        &format!("{base}/write"),
        &[&format!("Bearer {}", token(READ))],
        &[("content-type", "application/grpc+proto")],
    )
    .await;
    assert_eq!(answer.header("grpc-status"), Some("7"));
    assert_eq!(
        answer.header("grpc-message"),
        Some(&*format!("token lacks the required scope: needs `{WRITE}`"))
    );
    // And a valid token goes through to the service.
    let answer = call(
        "POST",
        &format!("{base}/read"),
        &[&format!("Bearer {}", token(READ))],
        &grpc,
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("grpc-status"), None);
}

#[tokio::test]
async fn no_keys_yet_is_503_with_retry_after() {
    let issuer = common::IssuerServer::start(common::Behaviour::Status(500)).await;
    let config = Config::builder()
        .issuer(issuer.issuer())
        .jwks_uri(issuer.jwks_uri())
        .http_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let validator = Validator::new(config).unwrap();
    let app = Router::new()
        .route("/read", get(who))
        .route_layer(layer(&validator).require_scope(READ));
    let base = serve(app).await;
    let token = sign(&KEY_A, &claims(&issuer.issuer(), READ));
    let answer = get_bearer(&format!("{base}/read"), &token).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.header("retry-after"), Some("5"));
    assert_eq!(answer.header("www-authenticate"), None);
    assert_eq!(
        answer.json(),
        json!({
            "error": "temporarily_unavailable",
            "error_description": "signing keys are not available yet: the issuer's key set has not been fetched",
        })
    );
}

#[tokio::test]
async fn plain_hyper_service_wrapped_by_the_layer() {
    use http_body_util::Full;
    use hyper::body::Incoming;
    use tower::{Layer, ServiceExt};

    let hello = tower::service_fn(|req: axum::http::Request<Incoming>| async move {
        let orgno = req
            .extensions()
            .get::<VerifiedToken>()
            .and_then(|t| t.consumer_orgno().map(str::to_owned))
            .unwrap_or_default();
        Ok::<_, Infallible>(axum::http::Response::new(Full::new(Bytes::from(format!(
            "hello {orgno}"
        )))))
    });
    let service = layer(&validator()).require_scope(READ).layer(hello);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = service.clone();
            tokio::spawn(async move {
                let hyper_service =
                    hyper::service::service_fn(move |req| service.clone().oneshot(req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), hyper_service)
                    .await;
            });
        }
    });
    let base = format!("http://{addr}");
    let answer = get_bearer(&base, &token(READ)).await;
    assert_eq!(
        (answer.status.as_u16(), answer.body.as_str()),
        (200, "hello 889640782")
    );
    let answer = get_bearer(&base, &token(WRITE)).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.json()["error"], "insufficient_scope");
    get_with(&base, &[]).await.assert_no_credentials(MISSING);
}
