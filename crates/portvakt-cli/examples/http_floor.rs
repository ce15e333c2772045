//! The floor of the sidecar's introspection throughput: `portvakt serve`'s own HTTP stack (its
//! listener, with introspection answered as a fast route ahead of the router, on the same
//! runtime) with the introspection handler replaced by one that reads the request body and
//! answers a fixed `{"active":true,...}` of a Maskinporten token's size, without validating
//! anything. No handler on this stack can be faster, so
//! `scripts/load-introspect.sh` measures it beside the sidecar and reports the sidecar's
//! throughput as a share of it.
//!
//! ```sh
//! cargo run --release -p portvakt-cli --example http_floor -- 127.0.0.1:18081
//! ```

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use portvakt_cli::serve::introspect::{MAX_BODY_BYTES, PATH};
use portvakt_cli::serve::listener::{self, FastRoute, ListenerConfig};

/// What the sidecar answers for a token of the local issuer (319 bytes).
const ANSWER: &str = r#"{"active":true,"client_amr":"private_key_jwt","client_id":"portvakt-dev-123456789","consumer":{"ID":"0192:123456789","authority":"iso6523-actorid-upis"},"exp":1796165415,"iat":1796165385,"iss":"http://127.0.0.1:17166/","jti":"FjzOTR1aLe50Imk5lM14OpX0WiM8jKUU","scope":"nav:arbeid:some.scope.read","token_type":"Bearer"}"#;

async fn fixed_answer(request: http::Request<Incoming>) -> Response {
    let body = Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await;
    std::hint::black_box(&body.map(|collected| collected.to_bytes()));
    let mut response = Response::new(Body::from(ANSWER));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn main() {
    let addr: SocketAddr = match std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:18081")
        .parse()
    {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("usage: http_floor [ADDR]  ({e})");
            std::process::exit(2);
        }
    };
    // The runtime `portvakt serve` runs on (main.rs): multi-threaded, one worker per core.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("error: cannot listen on {addr}: {e}");
                std::process::exit(1);
            }
        };
        eprintln!("http_floor listening on http://{addr}");
        let fast = FastRoute::new(Method::POST, PATH, |request| {
            Box::pin(fixed_answer(request))
        });
        let served = listener::serve_with_fast_route(
            listener,
            Router::new(),
            fast,
            ListenerConfig::default(),
            std::future::pending(),
        );
        if let Err(e) = served.await {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    });
}
