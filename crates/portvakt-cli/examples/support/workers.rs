//! How `portvakt serve --upstream`'s proxy workers run, for the floors measured beside it
//! (`proxy_floor`, `hyper_floor`): the proxy's own listening socket (its backlog included),
//! shared by one thread per core, each with a single-threaded runtime of its own, under the
//! proxy's scheduling policy (`PORTVAKT_PROXY_SCHEDULING`, `batch` unless set to `normal`), so
//! that the floors move requests on the threads the proxy has.

use std::future::Future;
use std::io;

use portvakt_cli::proxy::Scheduling;
use portvakt_cli::serve::listener;
use tokio::net::TcpListener;

#[path = "allocator.rs"]
mod allocator;
#[path = "sigterm.rs"]
mod sigterm;

/// Listens on `listen` and runs `serve` on every worker thread's listener until each has
/// ended or SIGTERM arrives (exit 0); exits 1 when the socket cannot be made or a worker
/// fails. `what` goes into the banner after the address.
pub fn per_core<F, Fut>(name: &str, listen: &str, what: &str, serve: F)
where
    F: Fn(TcpListener) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = io::Result<()>>,
{
    let bound = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .and_then(|runtime| runtime.block_on(async { listener::bind(listen).await?.into_std() }));
    let socket = match bound {
        Ok(socket) => socket,
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    sigterm::exit_on_sigterm();
    let scheduling = match std::env::var("PORTVAKT_PROXY_SCHEDULING") {
        Ok(text) => Scheduling::parse(&text).unwrap_or_else(|e| {
            eprintln!("error: PORTVAKT_PROXY_SCHEDULING: {e}");
            std::process::exit(2);
        }),
        Err(_) => Scheduling::default(),
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "{name} listening on http://{listen}, {what}, {workers} worker threads ({scheduling} scheduling)"
    );
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let socket = socket
                .try_clone()
                .expect("the listening socket can be shared");
            let serve = serve.clone();
            std::thread::spawn(move || {
                if let Err(e) = scheduling.apply_to_current_thread() {
                    eprintln!("warning: {scheduling} scheduling refused: {e}");
                }
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(async move { serve(TcpListener::from_std(socket)?).await })
            })
        })
        .collect();
    for thread in threads {
        if let Ok(Err(e)) = thread.join() {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
