//! An API secured with Maskinporten: a read route and a write route, each requiring its scope
//! from the NAIS guide's example (`examples/nais.yaml`).
//!
//! Against the local issuer, in three terminals:
//!
//! ```text
//! portvakt issuer                                                   # 127.0.0.1:7166
//! cargo run -p portvakt --features axum --example axum_api          # 127.0.0.1:8080
//! curl -H "Authorization: Bearer $(portvakt token --scope nav:arbeid:some.scope.read --orgno 123456789)" \
//!     http://127.0.0.1:8080/api/read
//! ```
//!
//! Configuration: `MASKINPORTEN_WELL_KNOWN_URL`, or `MASKINPORTEN_ISSUER` and
//! `MASKINPORTEN_JWKS_URI`, as NAIS injects them; when none is set, the local issuer at
//! `http://127.0.0.1:7166/`. The address: `--listen ADDR`, else `BIND_ADDRESS`, else
//! `127.0.0.1:8080`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Json;
use axum::routing::{get, post};
use portvakt::extract::Maskinporten;
use portvakt::layer::MaskinportenLayer;
use portvakt::{Config, Validator};
use serde_json::{Value, json};

const READ_SCOPE: &str = "nav:arbeid:some.scope.read";
const WRITE_SCOPE: &str = "nav:arbeid:some.scope.write";
const LOCAL_ISSUER: &str = "http://127.0.0.1:7166/";
const LOCAL_JWKS: &str = "http://127.0.0.1:7166/jwk";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = if Config::env_is_set() {
        Config::from_env()?
    } else {
        eprintln!("MASKINPORTEN_* not set: trusting the local issuer at {LOCAL_ISSUER}");
        Config::builder()
            .issuer(LOCAL_ISSUER)
            .jwks_uri(LOCAL_JWKS)
            .build()?
    };
    // One validator per process; every layer and clone shares its keys and cache.
    let validator = Validator::new(config)?;
    let readiness = validator.wait_until_ready(Duration::from_secs(5)).await;
    if !readiness.is_ready() {
        // Keep going: keys are fetched in the background, and requests get 503 until then.
        eprintln!("signing keys not available yet: {readiness:?}");
    }

    let app = Router::new()
        .route("/api/read", get(read))
        .route_layer(MaskinportenLayer::new(validator.clone()).require_scope(READ_SCOPE))
        .merge(
            Router::new()
                .route("/api/write", post(write))
                .route_layer(MaskinportenLayer::new(validator.clone()).require_scope(WRITE_SCOPE)),
        )
        .route("/healthz", get(healthz))
        .with_state(validator);

    let addr = listen_address()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("listening on http://{addr} (GET /api/read, POST /api/write, GET /healthz)");
    axum::serve(listener, app).await?;
    Ok(())
}

/// Who called: the consumer organization (authorize on this), the client and its scopes.
fn caller(token: &Maskinporten) -> Value {
    json!({
        "consumer_orgno": token.consumer_orgno(),
        "supplier_orgno": token.supplier().and_then(|s| s.orgno()),
        "client_id": token.client_id(),
        "scopes": token.scopes().iter().collect::<Vec<_>>(),
    })
}

async fn read(token: Maskinporten) -> Json<Value> {
    Json(json!({ "message": "read ok", "caller": caller(&token) }))
}

async fn write(token: Maskinporten) -> (StatusCode, Json<Value>) {
    (
        StatusCode::CREATED,
        Json(json!({ "message": "write ok", "caller": caller(&token) })),
    )
}

async fn healthz(State(validator): State<Validator>) -> (StatusCode, String) {
    let readiness = validator.readiness();
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, format!("{readiness:?}\n"))
}

fn listen_address() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let mut listen = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next(),
            other => match other.strip_prefix("--listen=") {
                Some(value) => listen = Some(value.to_owned()),
                None => {
                    return Err(format!(
                        "unknown argument `{other}`; usage: axum_api [--listen ADDR]"
                    ));
                }
            },
        }
    }
    let value = listen
        .or_else(|| std::env::var("BIND_ADDRESS").ok())
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    value
        .parse()
        .map_err(|e| format!("cannot listen on `{value}`: {e}"))
}
