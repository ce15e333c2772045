//! The `portvakt` binary end to end: `issuer` -> `token` -> `inspect`, the real JWT-bearer grant
//! with a generated client key, and `manifest check`.

use std::io::Write as _;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const READ: &str = "nav:arbeid:some.scope.read";
const WRITE: &str = "nav:arbeid:some.scope.write";

const MANIFEST: &str = r#"
apiVersion: nais.io/v1alpha1
kind: Application
metadata: {name: arbeid-api, namespace: arbeid}
spec:
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - name: some.scope.read
          enabled: true
          product: arbeid
          consumers:
            - orgno: "889640782"
        - name: some.scope.write
          enabled: true
          product: arbeid
          consumers:
            - orgno: "974760673"
"#;

fn portvakt() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portvakt"));
    for var in [
        "MASKINPORTEN_WELL_KNOWN_URL",
        "MASKINPORTEN_ISSUER",
        "MASKINPORTEN_JWKS_URI",
        "MASKINPORTEN_CLIENT_ID",
        "MASKINPORTEN_CLIENT_JWK",
        "MASKINPORTEN_TOKEN_ENDPOINT",
    ] {
        command.env_remove(var);
    }
    command.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    command
}

fn run(command: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_file(name: &str, contents: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "portvakt-cli-test-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// Starts `portvakt issuer` and waits until its discovery document answers.
fn start_issuer(extra: &[&str]) -> (Background, String) {
    let manifest = temp_file("nais.yaml", MANIFEST);
    let port = free_port();
    let child = portvakt()
        .args([
            "issuer",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--manifest",
        ])
        .arg(&manifest)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "portvakt issuer did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Background(child), base)
}

#[test]
fn issuer_token_inspect_round_trip() {
    let (_issuer, base) = start_issuer(&[]);
    let (code, token, stderr) = run(portvakt().args([
        "token",
        "--issuer",
        &base,
        "--scope",
        READ,
        "--orgno",
        "889640782",
    ]));
    assert_eq!(code, 0, "{stderr}");
    let token = token.trim_end_matches('\n');
    assert_eq!(
        token.split('.').count(),
        3,
        "stdout is only the token: {token:?}"
    );
    assert!(!token.contains(char::is_whitespace));

    let (code, out, stderr) =
        run(portvakt().args(["inspect", token, "--issuer", &base, "--scope", READ]));
    assert_eq!(code, 0, "{out}{stderr}");
    for line in [
        "pass  format",
        "pass  signature",
        "pass  issuer",
        "pass  expiry",
        "skip  not-before",
        "pass  issued-at",
        "skip  audience",
        "pass  scope",
        "\nVALID",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !out.contains(signature),
        "inspect must never print the signature"
    );

    // The token through standard input, and as JSON.
    let mut child = portvakt()
        .args(["inspect", "-", "--json", "--issuer", &base])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("Bearer {token}\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["valid"], Value::Bool(true));
    assert_eq!(report["claims"]["consumer"]["ID"], "0192:889640782");
    assert_eq!(report["checks"][1]["name"], "signature");
    assert_eq!(report["checks"][1]["outcome"], "passed");

    // A scope the token lacks: invalid, exit 1, the reason shown.
    let (code, out, _) =
        run(portvakt().args(["inspect", token, "--issuer", &base, "--scope", WRITE]));
    assert_eq!(code, 1);
    assert!(out.contains("FAIL  scope"), "{out}");
    assert!(
        out.contains(&format!(
            "INVALID (insufficient_scope): token lacks the required scope: needs `{WRITE}`"
        )),
        "{out}"
    );

    // A tampered token: the signature fails and the claims are marked untrusted.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[2] = format!("{}AAAA", &parts[2][4..]);
    let tampered = parts.join(".");
    let (code, out, _) = run(portvakt().args(["inspect", &tampered, "--issuer", &base]));
    assert_eq!(code, 1);
    assert!(out.contains("FAIL  signature"), "{out}");
    assert!(out.contains("claims (NOT trusted)"), "{out}");
}

#[test]
fn refused_grants_exit_nonzero_with_the_issuers_reason() {
    let (_issuer, base) = start_issuer(&[]);
    let (code, out, stderr) = run(portvakt().args([
        "token",
        "--issuer",
        &base,
        "--scope",
        WRITE,
        "--orgno",
        "889640782",
    ]));
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(stderr.contains("invalid_scope"), "{stderr}");
    assert!(
        stderr.contains(
            "organization 889640782 is not a consumer of scope \"nav:arbeid:some.scope.write\""
        ),
        "{stderr}"
    );
}

#[test]
fn the_real_jwt_bearer_grant_with_a_generated_client_key() {
    let (code, jwk, stderr) = run(portvakt().args([
        "issuer",
        "generate-client",
        "--client-id",
        "arbeid-klient",
        "--orgno",
        "974760673",
    ]));
    assert_eq!(code, 0, "{stderr}");
    let parsed: Value = serde_json::from_str(&jwk).unwrap();
    assert_eq!(parsed["kty"], "RSA");
    assert!(parsed.get("d").is_some(), "a private JWK, as NAIS injects");
    let jwk_file = temp_file("client.json", &jwk);
    let client = format!("arbeid-klient:974760673:{}", jwk_file.display());
    let (_issuer, base) = start_issuer(&["--strict", "--client", &client]);

    let (code, token, stderr) = run(portvakt()
        .args(["token", "--scope", WRITE])
        .env("MASKINPORTEN_CLIENT_ID", "arbeid-klient")
        .env("MASKINPORTEN_CLIENT_JWK", jwk.trim())
        .env(
            "MASKINPORTEN_WELL_KNOWN_URL",
            format!("{base}/.well-known/oauth-authorization-server"),
        ));
    assert_eq!(code, 0, "{stderr}");
    let (code, out, _) = run(portvakt()
        .args(["inspect", token.trim(), "--scope", WRITE])
        .env(
            "MASKINPORTEN_WELL_KNOWN_URL",
            format!("{base}/.well-known/oauth-authorization-server"),
        ));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"client_id\": \"arbeid-klient\""), "{out}");

    // Strict mode: the development shortcut is gone.
    let (code, _, stderr) = run(portvakt().args([
        "token",
        "--issuer",
        &base,
        "--scope",
        WRITE,
        "--orgno",
        "974760673",
    ]));
    assert_ne!(code, 0, "{stderr}");
}

#[test]
fn inspect_without_a_reachable_issuer_is_a_configuration_error() {
    let port = free_port();
    let (code, _, stderr) = run(portvakt().args([
        "inspect",
        "a.b.c",
        "--issuer",
        &format!("http://127.0.0.1:{port}"),
    ]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("the issuer's keys are not available"),
        "{stderr}"
    );
    assert!(stderr.contains("portvakt issuer"), "{stderr}");
    let (code, _, stderr) = run(portvakt()
        .args(["inspect", "a.b.c"])
        .env("MASKINPORTEN_JWKS_URI", "http://example.com/jwk")
        .env("MASKINPORTEN_ISSUER", "https://a/"));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("MASKINPORTEN_JWKS_URI must use https"),
        "{stderr}"
    );
}

#[test]
fn manifest_check_on_the_guides_example_and_a_broken_file() {
    let (code, out, _) = run(portvakt().args(["manifest", "check", "examples/nais.yaml"]));
    assert_eq!(code, 0);
    assert!(out.contains("examples/nais.yaml:25:22: warning: organization number \"123456789\" fails the modulus-11 check digit"), "{out}");
    let broken = temp_file(
        "nais.yaml",
        &MANIFEST.replace("product: arbeid", "product: Arbeid"),
    );
    let (code, out, _) = run(portvakt().args(["manifest", "check"]).arg(&broken));
    assert_eq!(code, 1);
    assert!(out.contains("error:"), "{out}");
    assert!(out.contains("arbeid"), "the suggestion: {out}");
    let (code, _, _) = run(portvakt().args(["manifest", "check", "/nonexistent/nais.yaml"]));
    assert_eq!(code, 2);
}
