//! The floor of any proxy built on hyper and tokio: hyper's HTTP/1.1 server and client with
//! nothing of portvakt's around them. `scripts/load-proxy.sh` runs it beside nginx,
//! [`proxy_floor`](./proxy_floor.rs) and the proxy, so that the gap to nginx splits in three:
//!
//! - nginx / this: what hyper and tokio cost against nginx's C;
//! - this / proxy_floor: what the listener's and the pool's protections cost (the admission
//!   limit and eviction of idle connections, graceful shutdown, the header read and write
//!   timeouts, HTTP/2 detection, the pool's idle limit, idle timeout and retry);
//! - proxy_floor / portvakt: what the security work costs (path, route, token, header rules).
//!
//! It is not a proxy to deploy: it has none of those protections, it opens one upstream
//! connection per client connection and drops a client when the upstream is not there. Its
//! listening socket and worker threads are `serve --upstream`'s (`support/workers.rs`): one
//! thread per core, each with a single-threaded runtime.
//!
//! The last argument says where a client connection's upstream connection is driven:
//! `spawned` (the default), in a task of its own as [`portvakt_cli::proxy::pool`] does; or
//! `same-task`, joined with the client connection in one task, so that a request crosses no
//! task boundary. docs/BENCHMARKS.md has what each costs in instructions (`same-task` costs
//! more: `join!` polls both connections on every wake-up of either).
//!
//! ```sh
//! cargo run --release -p portvakt-cli --example hyper_floor -- 127.0.0.1:18084 127.0.0.1:18080
//! ```

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use http::{StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper::client::conn::http1 as client;
use hyper::server::conn::http1 as server;
use hyper_util::rt::TokioIo;
use portvakt_cli::proxy::pool::HeldBody;

#[path = "support/workers.rs"]
mod workers;

/// A client connection's one upstream connection, between its requests.
type Slot = Arc<Mutex<Option<client::SendRequest<Body>>>>;

/// Puts the upstream connection back in its slot when the answer's body has ended.
struct Back(Option<client::SendRequest<Body>>, Slot);

impl Drop for Back {
    fn drop(&mut self) {
        if let Some(sender) = self.0.take() {
            *self.1.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender);
        }
    }
}

async fn forward(slot: Slot, request: http::Request<Incoming>) -> http::Response<Body> {
    let bad_gateway = || {
        let mut answer = http::Response::new(Body::empty());
        *answer.status_mut() = StatusCode::BAD_GATEWAY;
        answer
    };
    // HTTP/1.1 serves a connection's requests one after another, and the slot is refilled
    // when an answer's body ends, before the next request is read.
    let Some(mut sender) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return bad_gateway();
    };
    if sender.ready().await.is_err() {
        return bad_gateway();
    }
    let mut request = request.map(Body::new);
    *request.version_mut() = Version::HTTP_11;
    if let Some(path) = request.uri().path_and_query().cloned() {
        *request.uri_mut() = Uri::from(path);
    }
    match sender.send_request(request).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let body = HeldBody::new(body, Back(Some(sender), slot));
            http::Response::from_parts(parts, Body::new(body))
        }
        Err(_) => bad_gateway(),
    }
}

async fn connection(client: tokio::net::TcpStream, upstream: &str, same_task: bool) {
    let Ok(up) = tokio::net::TcpStream::connect(upstream).await else {
        eprintln!("hyper_floor: cannot connect to {upstream}");
        return;
    };
    let _ = up.set_nodelay(true);
    let Ok((sender, up)) = client::handshake::<_, Body>(TokioIo::new(up)).await else {
        return;
    };
    let slot: Slot = Arc::new(Mutex::new(Some(sender)));
    let service = hyper::service::service_fn(move |request| {
        let answer = forward(Arc::clone(&slot), request);
        async move { Ok::<_, Infallible>(answer.await) }
    });
    let served = server::Builder::new().serve_connection(TokioIo::new(client), service);
    if same_task {
        let _ = tokio::join!(served, up);
    } else {
        tokio::spawn(up);
        let _ = served.await;
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:18084".to_owned());
    let upstream: Arc<str> = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:18080".to_owned())
        .into();
    let same_task = match args.next().as_deref() {
        None | Some("spawned") => false,
        Some("same-task") => true,
        Some(other) => {
            eprintln!(
                "usage: hyper_floor [LISTEN] [UPSTREAM] [spawned|same-task]  (not `{other}`)"
            );
            std::process::exit(2);
        }
    };
    let what = format!("forwarding to http://{upstream}");
    workers::per_core("hyper_floor", &listen, &what, move |listener| {
        let upstream = Arc::clone(&upstream);
        async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let upstream = Arc::clone(&upstream);
                tokio::spawn(async move { connection(client, &upstream, same_task).await });
            }
        }
    });
}
