//! Test support for the workspace's own suites: real RSA keys, real tokens, and a real
//! JWKS/discovery server on 127.0.0.1. One copy, so that "a valid Maskinporten token" means the
//! same thing in the library's, the CLI's and the issuer's tests.
//!
//! A dev-dependency only (`publish = false`); its panics are test failures.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use portvakt::{Algorithm, Config, KeySet, SigningKey, Validator};
use serde_json::{Value, json};

/// Generating RSA keys takes a moment; every test in a binary shares these.
pub static KEY_A: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::generate("key-a").unwrap());
pub static KEY_B: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::generate("key-b").unwrap());
/// Same kid as KEY_A, different key material: an attacker's key or a botched rotation.
pub static KEY_A_IMPOSTOR: LazyLock<SigningKey> =
    LazyLock::new(|| SigningKey::generate("key-a").unwrap());

/// The issuer of the tokens made with [`claims`] in the layer tests.
pub const TEST_ISSUER: &str = "https://test.maskinporten.no/";

/// A validator that trusts [`TEST_ISSUER`] with [`KEY_A`] as its only key, no network.
pub fn key_a_validator() -> Validator {
    let config = Config::builder()
        .issuer(TEST_ISSUER)
        .jwks_uri("https://test.maskinporten.no/jwk")
        .build()
        .unwrap();
    let (keys, warnings) = KeySet::from_jwks_values(&[KEY_A.public_jwk()], &[Algorithm::RS256]);
    assert!(
        warnings.is_empty(),
        "the test key was refused: {warnings:?}"
    );
    Validator::with_keys(&config, TEST_ISSUER, keys)
}

/// Seconds since the Unix epoch, as `iat` and `exp` count them.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Maskinporten-shaped claims, valid for 120 s from now.
pub fn claims(issuer: &str, scope: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer,
        "scope": scope,
        "client_id": "2b3c-client",
        "client_amr": "private_key_jwt",
        "token_type": "Bearer",
        "consumer": {"authority": "iso6523-actorid-upis", "ID": "0192:889640782"},
        "iat": now,
        "exp": now + 120,
        "jti": format!("jti-{}", rand_suffix()),
    })
}

/// A number no other call in this process returns (for `jti`s and other unique values).
pub fn rand_suffix() -> u64 {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed) as u64
}

/// Signs `claims` with `key` (RS256).
pub fn sign(key: &SigningKey, claims: &Value) -> String {
    key.sign_jwt(Algorithm::RS256, claims).unwrap()
}

/// The JWKS document that publishes `keys`.
pub fn jwks(keys: &[&SigningKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()})
}

/// What the fake issuer answers on its JWKS endpoint (or, with
/// [`IssuerServer::set_discovery`], on its discovery endpoints).
#[derive(Clone)]
pub enum Behaviour {
    Serve(Value),
    Status(u16),
    Garbage,
    Hang,
    /// Serves the document after a delay: a slow issuer.
    Delayed(Duration, Value),
}

struct ServerState {
    behaviour: Mutex<Behaviour>,
    discovery_issuer: Mutex<Option<String>>,
    discovery: Mutex<Option<Behaviour>>,
    jwks_requests: AtomicUsize,
    discovery_requests: AtomicUsize,
    base: String,
}

/// A JWKS and discovery server on 127.0.0.1 with a port of its own.
pub struct IssuerServer {
    state: Arc<ServerState>,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for IssuerServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl IssuerServer {
    pub async fn start(behaviour: Behaviour) -> IssuerServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ServerState {
            behaviour: Mutex::new(behaviour),
            discovery_issuer: Mutex::new(None),
            discovery: Mutex::new(None),
            jwks_requests: AtomicUsize::new(0),
            discovery_requests: AtomicUsize::new(0),
            base: format!("http://{addr}"),
        });
        let app = Router::new()
            .route("/jwk", get(serve_jwks))
            .route(
                "/.well-known/oauth-authorization-server",
                get(serve_discovery),
            )
            .route("/.well-known/openid-configuration", get(serve_discovery))
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        IssuerServer { state, addr, task }
    }

    /// `http://127.0.0.1:PORT/`, with the trailing slash, as Maskinporten's issuer.
    pub fn issuer(&self) -> String {
        format!("{}/", self.state.base)
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}/jwk", self.state.base)
    }

    pub fn well_known(&self) -> String {
        format!("{}/.well-known/oauth-authorization-server", self.state.base)
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
    }

    /// Makes the discovery document claim another issuer.
    pub fn set_discovery_issuer(&self, issuer: &str) {
        *self.state.discovery_issuer.lock().unwrap() = Some(issuer.to_owned());
    }

    /// Replaces the discovery document (or answer) with `behaviour`; the default document
    /// names this server as the issuer and its `/jwk` as `jwks_uri`.
    pub fn set_discovery(&self, behaviour: Behaviour) {
        *self.state.discovery.lock().unwrap() = Some(behaviour);
    }

    /// The default discovery document of this server, to modify for [`set_discovery`](Self::set_discovery).
    pub fn discovery_document(&self) -> Value {
        default_discovery(&self.state)
    }

    pub fn jwks_requests(&self) -> usize {
        self.state.jwks_requests.load(Ordering::SeqCst)
    }

    pub fn discovery_requests(&self) -> usize {
        self.state.discovery_requests.load(Ordering::SeqCst)
    }
}

async fn respond(behaviour: Behaviour) -> Response {
    match behaviour {
        Behaviour::Serve(document) => axum::Json(document).into_response(),
        Behaviour::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Behaviour::Garbage => "<html>maintenance</html>".into_response(),
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        Behaviour::Delayed(delay, document) => {
            tokio::time::sleep(delay).await;
            axum::Json(document).into_response()
        }
    }
}

async fn serve_jwks(State(state): State<Arc<ServerState>>) -> Response {
    state.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let behaviour = state.behaviour.lock().unwrap().clone();
    respond(behaviour).await
}

async fn serve_discovery(State(state): State<Arc<ServerState>>) -> Response {
    state.discovery_requests.fetch_add(1, Ordering::SeqCst);
    let overridden = state.discovery.lock().unwrap().clone();
    match overridden {
        Some(behaviour) => respond(behaviour).await,
        None => axum::Json(default_discovery(&state)).into_response(),
    }
}

fn default_discovery(state: &ServerState) -> Value {
    let issuer = state
        .discovery_issuer
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| format!("{}/", state.base));
    json!({
        "issuer": issuer,
        "token_endpoint": format!("{}/token", state.base),
        "jwks_uri": format!("{}/jwk", state.base),
        "grant_types_supported": ["urn:ietf:params:oauth:grant-type:jwt-bearer"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384", "RS512"],
    })
}
