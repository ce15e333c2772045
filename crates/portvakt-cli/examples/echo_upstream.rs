//! A trivial upstream for measuring the enforcing proxy: answers every request with 200 `ok`.
//!
//! ```sh
//! cargo run --release -p portvakt-cli --example echo_upstream -- 127.0.0.1:18080
//! ```
//!
//! `ECHO_THREADS` sets the number of Tokio worker threads (default: one per core).

use std::net::SocketAddr;

use axum::Router;

fn main() {
    let addr: SocketAddr = match std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:18080")
        .parse()
    {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("usage: echo_upstream [ADDR]  ({e})");
            std::process::exit(2);
        }
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = std::env::var("ECHO_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        runtime.worker_threads(threads);
    }
    let runtime = match runtime.build() {
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
        eprintln!("echo_upstream listening on http://{addr}");
        let app = Router::new().fallback(|| async { "ok" });
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    });
}
