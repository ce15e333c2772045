//! What the integration tests that run the `portvakt` binary share.

#![allow(dead_code)] // each test file uses its own part

use std::collections::BTreeSet;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// A port nothing listens on right now, and one this test process has not handed out before.
///
/// The kernel may give the same port to two binds of port 0 one after the other once the first
/// listener is closed, so a test that asks for three ports (an API, a proxy and an issuer) could
/// get one twice and see "Address already in use" from the child it starts. Every port handed
/// out is remembered for the life of the process, so tests running in parallel threads never
/// share one either.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// `portvakt ARGS` from the repository root, quiet (stdio null), with none of the variables it
/// reads inherited from the test's environment except those in `envs`.
pub fn portvakt(args: &[String], envs: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portvakt"));
    command
        .args(args)
        .env_remove("BIND_ADDRESS")
        .env_remove("PROBE_BIND_ADDRESS")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("RUST_LOG")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("MASKINPORTEN_") || text.starts_with("PORTVAKT_") {
            command.env_remove(&name);
        }
    }
    for (key, value) in envs {
        command.env(key, value);
    }
    command
}

/// Sends SIGTERM to `child` (with kill(1): the tests have no unsafe code for kill(2)).
pub fn terminate(child: &Child) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success(),
        "kill -TERM {pid} failed"
    );
}

/// `child`'s exit status once it has exited, or `None` if it still runs after `within`.
pub fn wait_exit(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process, killed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The status `GET url` answers, if it answers within 2 s.
pub async fn get_status(url: &str) -> Option<u16> {
    reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// Waits until `GET url` answers `want`; fails the test after `within`.
pub async fn wait_for_status(url: &str, want: u16, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if get_status(url).await == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} never answered {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
