//! A trivial upstream for measuring the enforcing proxy: answers every request with 200 `ok`.
//!
//! ```sh
//! cargo run --release -p portvakt-cli --example echo_upstream -- 127.0.0.1:18080
//! ```
//!
//! `ECHO_THREADS` sets the number of Tokio worker threads (default: one per core).

use axum::Router;

#[path = "support/mod.rs"]
mod support;

fn main() {
    let threads = std::env::var("ECHO_THREADS")
        .ok()
        .and_then(|t| t.parse().ok());
    support::run("echo_upstream", "127.0.0.1:18080", threads, |listener| {
        let app = Router::new().fallback(|| async { "ok" });
        axum::serve(listener, app).into_future()
    });
}
