//! `portvakt serve ... -- CMD`: the app as a real child process (a small Python HTTP server
//! that writes what happens to it to a log), started by the real `portvakt` binary in front of
//! it as the enforcing proxy. Signals, exit codes, a crashing app, orphan reaping, the order of
//! shutdown, and `/readyz` waiting for the upstream.
#![cfg(unix)]

mod common;
use common::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The app: serves GET on 127.0.0.1:PORT, logs to LOG. `/api/v1/slow` answers after 1 s,
/// `/api/v1/crash` exits 3 at once. SIGTERM and SIGINT are logged and exit 7 (`ignore-term`:
/// logged and ignored); SIGHUP is logged. `orphan`: leaves a grandchild behind that records its
/// pid and parent's pid in LOG.orphan after 0.5 s and exits.
const APP: &str = r#"
import http.server, os, signal, sys, time
port, log_path = int(sys.argv[1]), sys.argv[2]
mode = sys.argv[3] if len(sys.argv) > 3 else ""
log = open(log_path, "a", buffering=1)
def note(text): log.write(text + "\n")
def on_stop(signum, frame):
    note(f"signal {signum}")
    if mode != "ignore-term":
        os._exit(7)
signal.signal(signal.SIGTERM, on_stop)
signal.signal(signal.SIGINT, on_stop)
signal.signal(signal.SIGHUP, lambda signum, frame: note(f"signal {signum}"))
if mode == "orphan":
    middle = os.fork()
    if middle == 0:
        if os.fork() == 0:
            time.sleep(0.5)
            with open(log_path + ".orphan", "w") as f:
                f.write(f"{os.getpid()} {os.getppid()}\n")
            os._exit(0)
        os._exit(0)
    os.waitpid(middle, 0)
class App(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/api/v1/crash":
            note("crash")
            os._exit(3)
        if self.path == "/api/v1/slow":
            time.sleep(1)
        note(f"served {self.path}")
        body = b"hello from the app\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), App)
note(f"pid {os.getpid()} marker {os.environ.get('PORTVAKT_TEST_MARKER')}")
print("app listening", flush=True)
server.serve_forever()
"#;

const READ: &str = "nav:arbeid:some.scope.read";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh directory for one test's files.
fn work_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "portvakt-supervise-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `portvakt serve` in development mode with the proxy in front of `upstream_port` and the
/// policy in examples/policy.toml.
struct Portvakt {
    process: Child,
    api: String,
    proxy: String,
    issuer: String,
    dir: PathBuf,
    app_port: u16,
}

impl Portvakt {
    fn command(dir: &Path, app_port: u16, extra: &[&str]) -> (Command, String, String, String) {
        let (api, proxy, issuer) = (free_port(), free_port(), free_port());
        let mut command = Command::new(env!("CARGO_BIN_EXE_portvakt"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MASKINPORTEN_") {
                command.env_remove(name);
            }
        }
        command
            .current_dir(repo_root())
            .env("RUST_LOG", "info")
            .env("PORTVAKT_TEST_MARKER", "inherited")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .args(["serve", "--listen", &format!("127.0.0.1:{api}")])
            .args(["--dev-issuer-listen", &format!("127.0.0.1:{issuer}")])
            .args(["--upstream", &format!("http://127.0.0.1:{app_port}")])
            .args(["--policy", "examples/policy.toml"])
            .args(["--proxy-listen", &format!("127.0.0.1:{proxy}")])
            .args(extra)
            .stdout(Stdio::from(
                std::fs::File::create(dir.join("stdout")).unwrap(),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("stderr")).unwrap(),
            ));
        (
            command,
            format!("http://127.0.0.1:{api}"),
            format!("http://127.0.0.1:{proxy}"),
            format!("http://127.0.0.1:{issuer}"),
        )
    }

    /// With the app as its child (`-- python3 app.py PORT LOG [MODE]`), started and ready.
    async fn with_app(mode: &str, extra: &[&str]) -> Portvakt {
        let dir = work_dir();
        std::fs::write(dir.join("app.py"), APP).unwrap();
        let app_port = free_port();
        let (mut command, api, proxy, issuer) = Portvakt::command(&dir, app_port, extra);
        command
            .arg("--")
            .arg("python3")
            .arg(dir.join("app.py"))
            .arg(app_port.to_string())
            .arg(dir.join("app.log"))
            .args((!mode.is_empty()).then_some(mode));
        let process = command.spawn().unwrap();
        let portvakt = Portvakt {
            process,
            api,
            proxy,
            issuer,
            dir,
            app_port,
        };
        portvakt.wait_ready().await;
        portvakt
    }

    fn pid(&self) -> i32 {
        self.process.id() as i32
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    fn app_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("app.log")).unwrap_or_default()
    }

    /// The app's process id, from its log.
    fn app_pid(&self) -> i32 {
        let log = self.app_log();
        let line = log.lines().find(|l| l.starts_with("pid ")).unwrap();
        line.split(' ').nth(1).unwrap().parse().unwrap()
    }

    /// Until /readyz answers 200 (keys held and the app accepting connections).
    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/readyz", self.api)).await
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not ready in 30 s; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn token(&self) -> String {
        let answer: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/dev/token", self.issuer))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("orgno=123456789&scope={READ}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["access_token"].as_str().unwrap().to_owned()
    }

    async fn get(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        let token = self.token().await;
        reqwest::Client::new()
            .get(format!("{}{path}", self.proxy))
            .bearer_auth(token)
            .send()
            .await
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child process.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// portvakt's exit code, waiting at most 30 s.
    async fn exit_code(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.process.try_wait().unwrap() {
                return status
                    .code()
                    .unwrap_or_else(|| panic!("portvakt itself was killed: {status:?}"));
            }
            assert!(
                Instant::now() < deadline,
                "portvakt did not exit in 30 s; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Portvakt {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Until `condition` holds, at most 10 s.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn process_exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_stops_the_app_and_passes_its_status_on() {
    let mut portvakt = Portvakt::with_app("", &["--shutdown-timeout", "10s"]).await;
    let answer = portvakt.get("/api/v1/hello").await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "hello from the app\n");
    // The app inherited the environment and stdout.
    assert!(
        portvakt.app_log().contains("marker inherited"),
        "{}",
        portvakt.app_log()
    );
    let stdout = std::fs::read_to_string(portvakt.dir.join("stdout")).unwrap();
    assert!(stdout.contains("app listening"), "{stdout}");

    let token = portvakt.token().await;
    let slow = tokio::spawn(
        reqwest::Client::new()
            .get(format!("{}/api/v1/slow", portvakt.proxy))
            .bearer_auth(token)
            .send(),
    );
    // The slow request is in the app before SIGTERM arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    portvakt.signal(libc::SIGTERM);
    let slow = slow.await.unwrap().unwrap();
    assert_eq!(slow.status(), 200, "the request in flight was drained");
    assert_eq!(portvakt.exit_code().await, 7, "the app's exit code");
    let log = portvakt.app_log();
    let served = log.find("served /api/v1/slow").expect(&log);
    let signalled = log.find("signal 15").expect(&log);
    assert!(
        served < signalled,
        "the app is signalled only after the drain:\n{log}"
    );
    // Stopped accepting: the proxy's port is closed.
    assert!(
        reqwest::get(format!("{}/api/v1/hello", portvakt.proxy))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn sigint_is_passed_on_as_sigint_and_sighup_at_once_without_stopping() {
    let mut portvakt = Portvakt::with_app("", &[]).await;
    portvakt.signal(libc::SIGHUP);
    eventually("the app got SIGHUP", || {
        portvakt.app_log().contains("signal 1\n")
    })
    .await;
    assert_eq!(
        portvakt.process.try_wait().unwrap(),
        None,
        "SIGHUP does not stop portvakt"
    );
    assert_eq!(
        portvakt.get("/api/v1/after-hup").await.unwrap().status(),
        200
    );

    portvakt.signal(libc::SIGINT);
    assert_eq!(portvakt.exit_code().await, 7);
    assert!(
        portvakt.app_log().contains("signal 2\n"),
        "{}",
        portvakt.app_log()
    );
}

#[tokio::test]
async fn a_crashing_app_stops_portvakt_with_the_apps_exit_code() {
    let mut portvakt = Portvakt::with_app("", &[]).await;
    // The app exits 3 in the middle of the request: the client gets a 502.
    let answer = portvakt.get("/api/v1/crash").await.unwrap();
    assert_eq!(answer.status(), 502);
    assert_eq!(portvakt.exit_code().await, 3);
    assert!(
        portvakt.stderr().contains("the app exited"),
        "{}",
        portvakt.stderr()
    );
}

#[tokio::test]
async fn an_app_killed_by_a_signal_gives_128_plus_the_signal() {
    let mut portvakt = Portvakt::with_app("", &[]).await;
    // SAFETY: kill(2) on the app, a process this test started (through portvakt).
    assert_eq!(unsafe { libc::kill(portvakt.app_pid(), libc::SIGKILL) }, 0);
    assert_eq!(portvakt.exit_code().await, 128 + libc::SIGKILL);
}

#[tokio::test]
async fn an_app_that_ignores_sigterm_is_killed_after_the_shutdown_timeout() {
    let mut portvakt = Portvakt::with_app("ignore-term", &["--shutdown-timeout", "1s"]).await;
    let app = portvakt.app_pid();
    portvakt.signal(libc::SIGTERM);
    assert_eq!(portvakt.exit_code().await, 128 + libc::SIGKILL);
    assert!(portvakt.app_log().contains("signal 15\n"), "SIGTERM first");
    assert!(!process_exists(app), "the app is gone (killed and reaped)");
}

#[tokio::test]
async fn orphans_of_the_app_are_reparented_to_portvakt_and_reaped() {
    let mut portvakt = Portvakt::with_app("orphan", &[]).await;
    let record = portvakt.dir.join("app.log.orphan");
    eventually("the orphan wrote its record", || {
        std::fs::read_to_string(&record).is_ok_and(|r| r.ends_with('\n'))
    })
    .await;
    let record = std::fs::read_to_string(&record).unwrap();
    let mut fields = record.split_whitespace().map(|f| f.parse::<i32>().unwrap());
    let (orphan, parent) = (fields.next().unwrap(), fields.next().unwrap());
    assert_eq!(
        parent,
        portvakt.pid(),
        "the orphan's parent is portvakt (its subreaper)"
    );
    // Unreaped, it would stay a zombie (/proc/PID with state Z) as long as portvakt runs.
    eventually("the orphan was reaped", || !process_exists(orphan)).await;
    assert_eq!(
        portvakt.process.try_wait().unwrap(),
        None,
        "an orphan's exit is not the app's"
    );
    portvakt.signal(libc::SIGTERM);
    assert_eq!(portvakt.exit_code().await, 7);
}

#[tokio::test]
async fn an_app_that_cannot_start_is_a_configuration_error() {
    let dir = work_dir();
    let (mut command, ..) = Portvakt::command(&dir, free_port(), &["--", "/nonexistent/app"]);
    let status = command.status().unwrap();
    let stderr = std::fs::read_to_string(dir.join("stderr")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot start the app `/nonexistent/app` (the command after `--`)"),
        "{stderr}"
    );
}

#[tokio::test]
async fn readyz_waits_for_the_upstream_to_accept_connections() {
    let dir = work_dir();
    let app_port = free_port();
    let (mut command, api, ..) = Portvakt::command(&dir, app_port, &[]);
    let process = command.spawn().unwrap();
    let portvakt = Portvakt {
        process,
        api: api.clone(),
        proxy: String::new(),
        issuer: String::new(),
        dir,
        app_port,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let reason = loop {
        if let Ok(r) = reqwest::get(format!("{api}/readyz")).await {
            assert_eq!(r.status(), 503, "ready without an upstream");
            let body: serde_json::Value = r.json().await.unwrap();
            let reason = body["reason"].as_str().unwrap().to_owned();
            if reason.contains("upstream") {
                break reason;
            }
        }
        assert!(Instant::now() < deadline, "{}", portvakt.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        reason.starts_with(&format!(
            "the upstream 127.0.0.1:{} does not accept connections yet",
            portvakt.app_port
        )),
        "{reason}"
    );
    let _app = std::net::TcpListener::bind(("127.0.0.1", portvakt.app_port)).unwrap();
    portvakt.wait_ready().await;
}
