//! The floor of the enforcing proxy's throughput: `portvakt serve --upstream`'s own HTTP stack
//! moving requests and nothing else. Its listener, one accept loop per core on a
//! single-threaded runtime of its own (as the proxy's worker threads run), and its upstream
//! pool ([`portvakt_cli::proxy::pool`]), forwarding every request as it came: no path check, no
//! route, no token, no header rule. No proxy on this stack can be faster, so
//! `scripts/load-proxy.sh` measures it beside nginx and the proxy. What lies between nginx and
//! the floor is the HTTP stack (hyper, tokio); what lies between the floor and the proxy is
//! the security work.
//!
//! ```sh
//! cargo run --release -p portvakt-cli --example proxy_floor -- 127.0.0.1:18083 127.0.0.1:18080
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::{StatusCode, Version};
use hyper::body::Incoming;
use portvakt_cli::proxy::pool::{HeldBody, Pool, PoolConfig};
use portvakt_cli::serve::listener::{self, Admission, FastRoute, ListenerConfig};

#[path = "support/workers.rs"]
mod workers;

async fn forward(pool: Pool, request: http::Request<Incoming>) -> Response {
    let mut request = request.map(Body::new);
    *request.version_mut() = Version::HTTP_11;
    // Kept here, once, while it is sent, as the proxy keeps it (see `Pool::send_from`).
    let mut request = Some(request);
    match pool.send_from(&mut request).await {
        Ok((response, lease)) => {
            let (mut parts, body) = response.into_parts();
            parts.version = Version::HTTP_11;
            Response::from_parts(parts, Body::new(HeldBody::new(body, lease)))
        }
        Err(e) => {
            eprintln!("proxy_floor: upstream failed: {e}");
            let mut answer = Response::new(Body::empty());
            *answer.status_mut() = StatusCode::BAD_GATEWAY;
            answer
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:18083".to_owned());
    let upstream = args.next().unwrap_or_else(|| "127.0.0.1:18080".to_owned());
    let Ok(authority) = upstream.parse::<http::uri::Authority>() else {
        eprintln!("usage: proxy_floor [LISTEN] [UPSTREAM host:port]  (upstream `{upstream}`)");
        std::process::exit(2);
    };
    let config = PoolConfig {
        authority,
        connect_timeout: Duration::from_secs(2),
        max_idle: 1024,
        idle_timeout: Duration::from_secs(60),
        http2: false,
    };
    // One accept loop per core, sharing out the connections as the proxy's workers do.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let admission = Admission::with_workers(listener::DEFAULT_MAX_CONNECTIONS, workers);
    let what = format!("forwarding to http://{upstream}");
    workers::per_core("proxy_floor", &listen, &what, move |listener| {
        let config = config.clone();
        let admission = Arc::clone(&admission);
        async move {
            let pool = Pool::new(config);
            let handler =
                FastRoute::any(move |request, _peer| Box::pin(forward(pool.clone(), request)));
            listener::serve_handler_admitted(
                listener,
                handler,
                ListenerConfig::default(),
                &admission,
                std::future::pending(),
            )
            .await
        }
    });
}
