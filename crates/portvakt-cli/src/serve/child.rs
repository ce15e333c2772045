//! `portvakt serve ... -- CMD [ARGS]`: the app as portvakt's child process, for a platform
//! (NAIS) where an Application cannot add a sidecar container of its own, so the enforcing
//! proxy runs in the app's container, in front of it, as its entrypoint.
//!
//! portvakt is then what `tini` or `dumb-init` would be, plus the proxy:
//! - CMD starts with portvakt's standard input, output and error and its whole environment
//!   (the `MASKINPORTEN_*` variables included: the app may be a Maskinporten consumer too), in
//!   portvakt's process group, so a terminal's Ctrl-C reaches both.
//! - portvakt reaps every child that exits: the app, and (as PID 1, or as the subreaper it makes
//!   itself on Linux) any orphaned descendant of the app, which would otherwise stay a zombie.
//! - SIGHUP is passed to the app at once (it is a reload request, not a stop).
//! - SIGTERM and SIGINT stop portvakt in an order that loses no request: it stops accepting,
//!   drains the requests in flight (within `--shutdown-timeout`), then sends the app the same
//!   signal and waits for it to exit (within `--shutdown-timeout` again), then SIGKILL.
//! - When the app exits by itself (a crash, or its own decision), portvakt drains and exits too.
//! - portvakt's exit status is the app's: its exit code, or 128 + the signal that ended it (137
//!   after SIGKILL), as a shell reports it.
//!
//! The signal goes to the app's process only, not its group (like `tini` without `-g`): an app
//! started through a shell script should `exec` the real program, as in any container.
//!
//! The reaping is `waitpid(-1)` on every SIGCHLD, which is why the child is started with
//! `std::process` and waited for here rather than with `tokio::process` (whose waiter would
//! find its child already reaped). `libc` provides `waitpid`, `kill` and `prctl`; std has no
//! wait-for-any-child.

use std::ffi::OsString;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

/// How the app ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

impl ChildExit {
    /// The exit status portvakt passes on: the code, or 128 + the signal.
    pub fn status(self) -> u8 {
        match self {
            ChildExit::Code(code) => (code & 0xff) as u8,
            ChildExit::Signal(signal) => (128 + signal).clamp(0, 255) as u8,
        }
    }

    fn from_wait_status(status: libc::c_int) -> ChildExit {
        if libc::WIFSIGNALED(status) {
            ChildExit::Signal(libc::WTERMSIG(status))
        } else {
            ChildExit::Code(libc::WEXITSTATUS(status))
        }
    }
}

impl std::fmt::Display for ChildExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildExit::Code(code) => write!(f, "exit code {code}"),
            ChildExit::Signal(signal) => write!(f, "signal {signal}"),
        }
    }
}

/// Why the app could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// Nothing after `--`.
    #[error(
        "nothing to run after `--`: write the app's command after it, e.g. `-- java -jar /app/app.jar`"
    )]
    Empty,
    /// The signal handlers could not be installed.
    #[error("cannot handle signals for the app: {0}")]
    Signals(#[source] std::io::Error),
    /// The program could not be executed.
    #[error(
        "cannot start the app `{program}` (the command after `--`): {source}; check that it exists, is executable, and is on PATH or written as a full path"
    )]
    Spawn {
        /// The program, as given.
        program: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

/// The app, running. Its reaper task reaps it and any orphan, and passes SIGHUP on.
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
    exit: watch::Receiver<Option<ChildExit>>,
    reaper: tokio::task::JoinHandle<()>,
}

impl Child {
    /// Starts `command` (program and arguments) with portvakt's stdio and environment. Call
    /// inside a tokio runtime.
    pub fn spawn(command: &[OsString]) -> Result<Child, SpawnError> {
        let (program, args) = command.split_first().ok_or(SpawnError::Empty)?;
        // Installed before the child exists, so no SIGCHLD is missed.
        let sigchld = signal(SignalKind::child()).map_err(SpawnError::Signals)?;
        let sighup = signal(SignalKind::hangup()).map_err(SpawnError::Signals)?;
        become_subreaper();
        // The reaper starts only after spawn() has returned: std reaps a child whose exec
        // failed itself, and must not find it already reaped.
        let child = std::process::Command::new(program)
            .args(args)
            .spawn()
            .map_err(|source| SpawnError::Spawn {
                program: program.to_string_lossy().into_owned(),
                source,
            })?;
        let pid = child.id() as libc::pid_t;
        // Dropping a std Child neither waits nor kills; the reaper waits for it.
        drop(child);
        tracing::info!(pid, command = ?command, "app started");
        let (tx, exit) = watch::channel(None);
        let reaper = tokio::spawn(reap(pid, tx, sigchld, sighup));
        Ok(Child { pid, exit, reaper })
    }

    /// The app's process id.
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Completes when the app has exited (at once if it already has).
    pub async fn exited(&self) -> ChildExit {
        let mut exit = self.exit.clone();
        match exit.wait_for(Option::is_some).await {
            Ok(exit) => exit.unwrap_or(ChildExit::Code(0)),
            // The reaper ended without seeing the exit: it never does; say "killed".
            Err(_) => ChildExit::Signal(libc::SIGKILL),
        }
    }

    /// Sends `signal` to the app (if it is still running), waits up to `timeout` for it to
    /// exit, then kills it with SIGKILL and waits for that.
    pub async fn stop(self, signal: libc::c_int, timeout: Duration) -> ChildExit {
        if self.exit.borrow().is_none() {
            tracing::info!(pid = self.pid, signal, "stopping the app");
            self.send(signal);
        }
        let exit = match tokio::time::timeout(timeout, self.exited()).await {
            Ok(exit) => exit,
            Err(_) => {
                tracing::warn!(
                    pid = self.pid,
                    ?timeout,
                    "the app did not exit in time; sending SIGKILL"
                );
                self.send(libc::SIGKILL);
                self.exited().await
            }
        };
        self.reaper.abort();
        exit
    }

    /// Sends `signal` unless the app has been reaped (its pid may then be another process's).
    fn send(&self, signal: libc::c_int) {
        send(self.pid, &self.exit, signal);
    }
}

fn send(pid: libc::pid_t, exit: &watch::Receiver<Option<ChildExit>>, signal: libc::c_int) {
    // The borrow holds the channel's read lock: the reaper cannot record the exit between this
    // check and the kill. (Between its waitpid and recording the exit, microseconds pass; the
    // pid is reused only after the kernel's pid counter has wrapped.)
    let exited = exit.borrow();
    if exited.is_none() {
        // SAFETY: kill(2) with a pid of our own unreaped child and a valid signal number.
        unsafe { libc::kill(pid, signal) };
    }
}

/// Reaps every exited child on each SIGCHLD, recording the app's exit; passes SIGHUP on.
async fn reap(
    pid: libc::pid_t,
    tx: watch::Sender<Option<ChildExit>>,
    mut sigchld: Signal,
    mut sighup: Signal,
) {
    let exit = tx.subscribe();
    loop {
        while let Some((reaped, status)) = reap_one() {
            if reaped == pid {
                let exit = ChildExit::from_wait_status(status);
                tracing::info!(pid, %exit, "the app exited");
                tx.send_replace(Some(exit));
            } else {
                tracing::debug!(pid = reaped, "reaped an orphaned process");
            }
        }
        tokio::select! {
            _ = sigchld.recv() => {}
            _ = sighup.recv() => {
                tracing::info!(pid, "SIGHUP: passing it to the app");
                send(pid, &exit, libc::SIGHUP);
            }
        }
    }
}

/// One exited child, if any: `waitpid(-1, WNOHANG)`.
fn reap_one() -> Option<(libc::pid_t, libc::c_int)> {
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid(2) writes the status into a local integer.
    let reaped = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    (reaped > 0).then_some((reaped, status))
}

/// Makes portvakt the subreaper of the app's descendants (Linux), so an orphan is reparented
/// to portvakt, not to the host's init, and reaped here also when portvakt is not PID 1.
fn become_subreaper() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(2) PR_SET_CHILD_SUBREAPER takes an integer flag.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0);
    }
}
