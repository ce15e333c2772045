//! Hygiene that holds for the whole workspace: no unjustified `unsafe` code in any crate of
//! ours, and no secret in any log line at any level. `tests/serve.rs` checks `serve`'s sidecar and proxy at
//! `RUST_LOG=trace` (`trace_logs_never_contain_a_token`); this file checks the local issuer's
//! JWT-bearer grant and the token client, which handle the private keys and the assertions.

mod common;
use common::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portvakt::{Algorithm, SigningKey};
use portvakt_test_support::now;
use serde_json::{Value, json};

const READ: &str = "nav:arbeid:some.scope.read";
const WRITE: &str = "nav:arbeid:some.scope.write";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every crate root forbids `unsafe` code, or denies it and allows it by name in modules whose
/// every `unsafe` says, in a `// SAFETY:` comment just above it, why it is sound (today one:
/// `portvakt-cli`'s `serve/child.rs`, for waitpid, kill and prctl, which std does not offer).
#[test]
fn every_crate_of_ours_forbids_unsafe_code_or_justifies_each_use() {
    let mut roots = Vec::new();
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(workspace().join("crates")).unwrap() {
        let src = entry.unwrap().path().join("src");
        for root in ["lib.rs", "main.rs"] {
            let path = src.join(root);
            if path.exists() {
                roots.push(path);
            }
        }
        collect_rust_files(&src, &mut sources);
    }
    assert!(roots.len() >= 6, "found only {roots:?}");
    for root in roots {
        let text = std::fs::read_to_string(&root).unwrap();
        assert!(
            text.contains("#![forbid(unsafe_code)]") || text.contains("#![deny(unsafe_code)]"),
            "{} neither forbids nor denies unsafe code",
            root.display()
        );
    }
    for file in sources {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if !(code.contains("unsafe {")
                || code.contains("unsafe fn")
                || code.contains("unsafe impl"))
            {
                continue;
            }
            let justified = lines[i.saturating_sub(3)..i]
                .iter()
                .any(|l| l.trim_start().starts_with("// SAFETY:"));
            assert!(
                justified,
                "{}:{}: `unsafe` without a `// SAFETY:` comment just above it",
                file.display(),
                i + 1
            );
        }
    }
}

fn collect_rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A child process killed when the test ends, with stdout and stderr in one file.
struct Logged {
    child: Child,
    log: PathBuf,
}

impl Logged {
    fn spawn(name: &str, args: &[&str], envs: &[(&str, &str)]) -> Logged {
        let log = std::env::temp_dir().join(format!(
            "portvakt-hygiene-{}-{name}.log",
            std::process::id()
        ));
        let file = std::fs::File::create(&log).unwrap();
        let child = command(args, envs)
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        Logged { child, log }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// `portvakt ARGS` from the repository root, with none of our variables inherited.
fn command(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portvakt"));
    command.args(args).current_dir(workspace());
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("MASKINPORTEN_") || text.starts_with("PORTVAKT_") || text == "RUST_LOG"
        {
            command.env_remove(&name);
        }
    }
    command.envs(envs.iter().copied());
    command
}

async fn wait_for_issuer(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let url = format!("{base}.well-known/oauth-authorization-server");
    while reqwest::get(&url).await.map(|r| r.status().as_u16()).ok() != Some(200) {
        assert!(Instant::now() < deadline, "the issuer did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_issuer_and_the_token_client_log_no_secret_at_trace() {
    let dir = std::env::temp_dir().join(format!("portvakt-hygiene-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let client_key = SigningKey::generate("hygiene-client").unwrap();
    let private_jwk = client_key.private_jwk().unwrap();
    let jwk_file = dir.join("client.jwk.json");
    std::fs::write(&jwk_file, private_jwk.to_string()).unwrap();

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}/");
    let listen = format!("127.0.0.1:{port}");
    let client_spec = format!("hygiene:123456789:{}", jwk_file.display());
    let issuer = Logged::spawn(
        "issuer",
        &["issuer", "--listen", &listen, "--client", &client_spec],
        &[("RUST_LOG", "trace")],
    );
    wait_for_issuer(&base).await;

    // The token client: a granted scope and a refused one, at trace.
    let jwk_text = private_jwk.to_string();
    let well_known = format!("{base}.well-known/oauth-authorization-server");
    let token_env = [
        ("RUST_LOG", "trace"),
        ("MASKINPORTEN_CLIENT_ID", "hygiene"),
        ("MASKINPORTEN_CLIENT_JWK", jwk_text.as_str()),
        ("MASKINPORTEN_WELL_KNOWN_URL", well_known.as_str()),
    ];
    let granted = command(&["token", "--scope", READ], &token_env)
        .output()
        .unwrap();
    assert!(granted.status.success(), "{granted:?}");
    let token = String::from_utf8(granted.stdout).unwrap().trim().to_owned();
    let refused = command(&["token", "--scope", WRITE], &token_env)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let client_stderr = format!(
        "{}{}",
        String::from_utf8_lossy(&granted.stderr),
        String::from_utf8_lossy(&refused.stderr)
    );

    // Assertions made here: one good, one with a forged signature, one for an unknown key.
    let claims = |jti: &str| {
        json!({"aud": base, "iss": "hygiene", "iat": now(), "exp": now() + 60, "jti": jti,
               "scope": READ})
    };
    let good = client_key
        .sign_jwt(Algorithm::RS256, &claims("hygiene-1"))
        .unwrap();
    let (unsigned, signature) = good.rsplit_once('.').unwrap();
    let forged = format!("{unsigned}.{}", signature.chars().rev().collect::<String>());
    let stranger = SigningKey::generate("hygiene-client")
        .unwrap()
        .sign_jwt(Algorithm::RS256, &claims("hygiene-2"))
        .unwrap();
    let http = reqwest::Client::new();
    let mut minted = vec![token.clone()];
    for assertion in [&good, &forged, &stranger] {
        let answer: Value = http
            .post(format!("{base}token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
                    .append_pair("assertion", assertion)
                    .finish(),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(t) = answer["access_token"].as_str() {
            minted.push(t.to_owned());
        }
    }
    assert_eq!(
        minted.len(),
        2,
        "one token from the client, one from the good assertion"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let issuer_log = issuer.text();
    assert!(
        issuer_log.contains("TRACE") || issuer_log.contains("trace"),
        "trace logging was not on:\n{issuer_log}"
    );

    let mut secrets: Vec<(String, String)> = Vec::new();
    for member in ["d", "p", "q", "dp", "dq", "qi"] {
        let value = private_jwk[member].as_str().unwrap().to_owned();
        secrets.push((format!("the client key's `{member}`"), value));
    }
    for (i, t) in minted.iter().enumerate() {
        secrets.push((format!("minted token {i}"), t.clone()));
        let sig = t.rsplit_once('.').unwrap().1.to_owned();
        secrets.push((format!("minted token {i}'s signature"), sig));
    }
    for (what, assertion) in [
        ("good", &good),
        ("forged", &forged),
        ("stranger", &stranger),
    ] {
        secrets.push((format!("the {what} assertion"), assertion.clone()));
        let sig = assertion.rsplit_once('.').unwrap().1.to_owned();
        secrets.push((format!("the {what} assertion's signature"), sig));
    }
    for (who, log) in [("issuer", &issuer_log), ("token client", &client_stderr)] {
        for (what, secret) in &secrets {
            assert!(!log.contains(secret.as_str()), "the {who} logged {what}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
