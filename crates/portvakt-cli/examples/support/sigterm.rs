//! A clean exit on SIGTERM for the example servers.

use tokio::signal::unix::{SignalKind, signal};

/// Exits the process with status 0 when SIGTERM arrives, from a thread of its own. The load
/// scripts stop the example servers with SIGTERM, and an instrumented build of them
/// (`FLOORS=1 scripts/build-pgo.sh`) writes its profile only when the process ends through
/// `exit`, which the default action of SIGTERM skips. The handler is installed before this
/// returns, so a signal sent once the server answers is never missed.
pub fn exit_on_sigterm() {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("warning: no SIGTERM handler (no runtime for it: {e})");
            return;
        }
    };
    let terminate = {
        let _entered = runtime.enter();
        signal(SignalKind::terminate())
    };
    match terminate {
        Ok(mut terminate) => {
            std::thread::spawn(move || {
                runtime.block_on(terminate.recv());
                std::process::exit(0);
            });
        }
        Err(e) => eprintln!("warning: no SIGTERM handler: {e}"),
    }
}
