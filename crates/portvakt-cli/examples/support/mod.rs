//! What the load scripts' example servers share: the address from the command line, the
//! runtime, the listener, and errors that say what failed (exit 2 for usage, 1 otherwise).

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::net::TcpListener;

#[path = "allocator.rs"]
mod allocator;
#[path = "sigterm.rs"]
mod sigterm;

/// Listens on the first argument (else `default_addr`) on a multi-threaded runtime with
/// `worker_threads` workers (`None`: one per core, as `portvakt serve` runs) and runs `serve`
/// on the listener until it fails, or until SIGTERM, which exits 0.
pub fn run<F, Fut>(name: &str, default_addr: &str, worker_threads: Option<usize>, serve: F)
where
    F: FnOnce(TcpListener) -> Fut,
    Fut: Future<Output = io::Result<()>>,
{
    let addr: SocketAddr = match std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or(default_addr)
        .parse()
    {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("usage: {name} [ADDR]  ({e})");
            std::process::exit(2);
        }
    };
    sigterm::exit_on_sigterm();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = worker_threads {
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
        // The sidecar's own way of listening (its backlog included), so that a floor measured
        // beside it differs only in what it does per request.
        let listener = match portvakt_cli::serve::listener::bind(&addr.to_string()).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("error: cannot listen on {addr}: {e}");
                std::process::exit(1);
            }
        };
        eprintln!("{name} listening on http://{addr}");
        if let Err(e) = serve(listener).await {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    });
}
