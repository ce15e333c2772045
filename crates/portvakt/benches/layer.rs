//! The cost of `MaskinportenLayer` per request, with the token already verified once (the
//! common case: consumers reuse a token for its whole lifetime), side by side in one run:
//! - `layer/unprotected`: an axum route without the layer, driven in-process (`oneshot`).
//! - `layer/protected`: the same route behind `route_layer(MaskinportenLayer)` requiring a
//!   scope, the handler taking the `Maskinporten` extractor, same request plus the token.
//! - `layer/stacked`: an outer layer (any valid token) and an inner route layer (a scope),
//!   the inner one reusing the outer's verified token.
//!
//! - `layer/validate_now_cached`: the validator's cache hit alone, for reference.
//!
//! The difference between `protected` and `unprotected` is the layer's cost.
//! Run: `cargo bench -p portvakt --features axum --bench layer`.

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, header::AUTHORIZATION};
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use portvakt::extract::Maskinporten;
use portvakt::layer::MaskinportenLayer;
use portvakt::{Algorithm, Config, KeySet, SigningKey, Validator};
use serde_json::json;
use tower::ServiceExt;

const ISSUER: &str = "https://test.maskinporten.no/";
const SCOPE: &str = "nav:arbeid:some.scope.read";

async fn unprotected() -> &'static str {
    "ok"
}

async fn protected(token: Maskinporten) -> &'static str {
    black_box(token.consumer_orgno());
    "ok"
}

fn bench(c: &mut Criterion) {
    let key = SigningKey::generate("bench-key").unwrap();
    let config = Config::builder()
        .issuer(ISSUER)
        .jwks_uri("https://test.maskinporten.no/jwk")
        .build()
        .unwrap();
    let keys = KeySet::from_jwks_values(&[key.public_jwk()], &[Algorithm::RS256]).0;
    let validator = Validator::with_keys(&config, ISSUER, keys);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = key
        .sign_jwt(
            Algorithm::RS256,
            &json!({
                "iss": ISSUER,
                "scope": "nav:arbeid:some.scope.read nav:arbeid:some.scope.write",
                "client_id": "107c6f58-52a0-4a1b-8ad3-3e4c8f2b1e9a",
                "client_amr": "private_key_jwt",
                "token_type": "Bearer",
                "consumer": {"authority": "iso6523-actorid-upis", "ID": "0192:889640782"},
                "iat": now,
                "exp": now + 3600,
                "jti": "Cip-bench",
            }),
        )
        .unwrap();
    let authorization = HeaderValue::try_from(format!("Bearer {token}")).unwrap();

    // `with_state(())` turns handlers into routes once, as `axum::serve` does; without it axum
    // rebuilds every route (and re-applies its layers) on each request.
    let plain: Router = Router::new()
        .route("/read", get(unprotected))
        .with_state(());
    let secured: Router = Router::new()
        .route("/read", get(protected))
        .route_layer(MaskinportenLayer::new(validator.clone()).require_scope(SCOPE))
        .with_state(());
    let stacked: Router = Router::new()
        .route("/read", get(protected))
        .route_layer(MaskinportenLayer::new(validator.clone()).require_scope(SCOPE))
        .layer(MaskinportenLayer::new(validator.clone()))
        .with_state(());

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let request = |with_token: bool| {
        let mut builder = Request::get("/read");
        if with_token {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        builder.body(Body::empty()).unwrap()
    };
    // Warm the validator's cache, and check every variant answers 200.
    rt.block_on(async {
        for (router, with_token) in [(&plain, false), (&secured, true), (&stacked, true)] {
            let response = router.clone().oneshot(request(with_token)).await.unwrap();
            assert_eq!(response.status(), 200);
        }
    });

    let mut group = c.benchmark_group("layer");
    group.bench_function("unprotected", |b| {
        b.to_async(&rt)
            .iter(|| async { plain.clone().oneshot(request(true)).await.unwrap() })
    });
    group.bench_function("protected", |b| {
        b.to_async(&rt)
            .iter(|| async { secured.clone().oneshot(request(true)).await.unwrap() })
    });
    group.bench_function("stacked", |b| {
        b.to_async(&rt)
            .iter(|| async { stacked.clone().oneshot(request(true)).await.unwrap() })
    });
    // For reference: the validator's cache hit alone, the bulk of the layer's cost.
    group.bench_function("validate_now_cached", |b| {
        b.iter(|| validator.validate_now(black_box(&token)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
