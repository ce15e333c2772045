//! The tower layer in front of a real tonic gRPC server (the standard health service from
//! `tonic-health`, no codegen of our own), served on 127.0.0.1 and called with tonic's
//! generated `HealthClient` over HTTP/2. The token travels in the `authorization` metadata;
//! refusals must reach the client as gRPC statuses.
#![cfg(feature = "tower")]

use portvakt_test_support as common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{KEY_A, KEY_A_IMPOSTOR, claims, sign};
use portvakt::layer::MaskinportenLayer;
use portvakt::{Config, Validator, VerifiedToken};
use tonic::metadata::MetadataValue;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Endpoint, Server};
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const ISSUER: &str = common::TEST_ISSUER;
const READ: &str = "nav:arbeid:some.scope.read";
const WRITE: &str = "nav:arbeid:some.scope.write";
const REALM: &str = "grpc-api";

fn validator() -> Validator {
    common::key_a_validator()
}

/// The consumer of every request that got past the layer, as the services behind it see it
/// (`None`: a request without a verified token in its extensions).
type Seen = Arc<Mutex<Vec<Option<String>>>>;

/// Serves the health service behind `layer` (and, inside it, a probe that records what the
/// layer put in the request extensions) on 127.0.0.1; returns a connected client.
async fn serve(layer: MaskinportenLayer) -> (HealthClient<tonic::transport::Channel>, Seen) {
    let (_reporter, health) = tonic_health::server::health_reporter();
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    let probe = tower::util::MapRequestLayer::new(move |req: http::Request<tonic::body::Body>| {
        let consumer = req
            .extensions()
            .get::<VerifiedToken>()
            .and_then(|token| token.consumer_orgno().map(str::to_owned));
        record.lock().unwrap().push(consumer);
        req
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        Server::builder()
            .layer(layer)
            .layer(probe)
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (HealthClient::new(channel), seen)
}

/// `grpc.health.v1.Health/Check` for the whole server, with `authorization` metadata if given.
async fn check(
    client: &mut HealthClient<tonic::transport::Channel>,
    authorization: Option<&str>,
) -> Result<i32, Status> {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", MetadataValue::try_from(value).unwrap());
    }
    client
        .check(request)
        .await
        .map(|response| response.into_inner().status)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A refusal as the tonic client reports it: code, message and the RFC 6750 challenge.
fn assert_status(status: &Status, code: Code, message: &str, challenge: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(status.message(), message, "{status:?}");
    assert_eq!(
        status
            .metadata()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some(challenge),
        "{status:?}"
    );
}

#[tokio::test]
async fn grpc_health_check_behind_the_layer() {
    let layer = MaskinportenLayer::new(validator())
        .realm(REALM)
        .require_scope(READ);
    let (mut client, seen) = serve(layer).await;

    // No token: UNAUTHENTICATED with a bare challenge; the service is never called.
    let status = check(&mut client, None).await.unwrap_err();
    assert_status(
        &status,
        Code::Unauthenticated,
        "no Authorization header; send `Authorization: Bearer <token>` with a Maskinporten access token",
        &format!(r#"Bearer realm="{REALM}""#),
    );

    // A forged token: UNAUTHENTICATED, invalid_token.
    let forged = sign(&KEY_A_IMPOSTOR, &claims(ISSUER, READ));
    let status = check(&mut client, Some(&bearer(&forged)))
        .await
        .unwrap_err();
    let description = "signature does not verify with the issuer's key `key-a`";
    assert_status(
        &status,
        Code::Unauthenticated,
        description,
        &format!(
            r#"Bearer realm="{REALM}", error="invalid_token", error_description="{description}""#
        ),
    );

    // A valid token without the scope: PERMISSION_DENIED, insufficient_scope.
    let write_only = sign(&KEY_A, &claims(ISSUER, WRITE));
    let status = check(&mut client, Some(&bearer(&write_only)))
        .await
        .unwrap_err();
    let description = format!("token lacks the required scope: needs `{READ}`");
    assert_status(
        &status,
        Code::PermissionDenied,
        &description,
        &format!(
            r#"Bearer realm="{REALM}", error="insufficient_scope", error_description="{description}", scope="{READ}""#
        ),
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "a refused call got through"
    );

    // The right token in the `authorization` metadata: the service answers, and sees the token.
    let good = sign(&KEY_A, &claims(ISSUER, READ));
    let serving = check(&mut client, Some(&bearer(&good))).await.unwrap();
    assert_eq!(serving, ServingStatus::Serving as i32);
    // gRPC clients may send the scheme in lower case too (RFC 7235).
    let serving = check(&mut client, Some(&format!("bearer {good}")))
        .await
        .unwrap();
    assert_eq!(serving, ServingStatus::Serving as i32);
    assert_eq!(
        *seen.lock().unwrap(),
        [Some("889640782".to_owned()), Some("889640782".to_owned())]
    );
}

#[tokio::test]
async fn grpc_without_keys_is_unavailable() {
    // The issuer fails, so the validator holds no keys: the layer's asynchronous path (wait for
    // keys) runs inside tonic and ends in UNAVAILABLE, which clients retry.
    let issuer = common::IssuerServer::start(common::Behaviour::Status(500)).await;
    let config = Config::builder()
        .issuer(issuer.issuer())
        .jwks_uri(issuer.jwks_uri())
        .http_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let layer = MaskinportenLayer::new(Validator::new(config).unwrap()).require_scope(READ);
    let (mut client, seen) = serve(layer).await;
    let token = sign(&KEY_A, &claims(&issuer.issuer(), READ));
    let status = check(&mut client, Some(&bearer(&token))).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        status.message(),
        "signing keys are not available yet: the issuer's key set has not been fetched"
    );
    assert_eq!(
        status
            .metadata()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("5")
    );
    assert!(seen.lock().unwrap().is_empty());
}
