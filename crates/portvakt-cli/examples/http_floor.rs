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

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use portvakt_cli::serve::introspect::{MAX_BODY_BYTES, PATH};
use portvakt_cli::serve::listener::{self, FastRoute, ListenerConfig};

#[path = "support/mod.rs"]
mod support;

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
    support::run("http_floor", "127.0.0.1:18081", None, |listener| {
        let fast = FastRoute::new(Method::POST, PATH, |request| {
            Box::pin(fixed_answer(request))
        });
        listener::serve_with_fast_route(
            listener,
            Router::new(),
            fast,
            ListenerConfig::default(),
            std::future::pending(),
        )
    });
}
