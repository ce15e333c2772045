//! The `portvakt` binary end to end: `issuer` -> `token` -> `inspect`, the real JWT-bearer grant
//! with a generated client key, and `manifest check`.

use std::io::Write as _;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::free_port;

const READ: &str = "nav:arbeid:some.scope.read";
const WRITE: &str = "nav:arbeid:some.scope.write";
const REPORTS: &str = "nav:arbeid/reports.read";

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
        - name: reports.read
          enabled: true
          product: arbeid
          separator: "/"
          delegationSource: altinn
          consumers:
            - orgno: "974760673"
"#;

fn portvakt() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portvakt"));
    // Every MASKINPORTEN_* variable, not only those portvakt reads: `inspect` refuses a set of
    // them that names no issuer (a misspelt one).
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MASKINPORTEN_") {
            command.env_remove(name);
        }
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

/// The payload of a token, decoded without verification (the tests check what was printed).
fn payload(token: &str) -> serde_json::Map<String, Value> {
    portvakt::jws::decode_unverified_payload(token.trim_end_matches('\n'))
        .unwrap_or_else(|e| panic!("not a JWT ({e}): {token:?}"))
}

/// Starts `portvakt issuer` and waits until its discovery document answers.
fn start_issuer(extra: &[&str]) -> (Background, String) {
    let (child, port) = spawn_issuer(extra, Stdio::null());
    (Background(child), format!("http://127.0.0.1:{port}"))
}

/// Spawns `portvakt issuer` on a free port with its stderr to `stderr`, and waits until it
/// accepts connections.
fn spawn_issuer(extra: &[&str], stderr: Stdio) -> (Child, u16) {
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
        .stderr(stderr)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "portvakt issuer did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

#[test]
fn issuer_token_inspect_round_trip() {
    let (_issuer, base) = start_issuer(&[]);
    let (code, token, stderr) = run(&mut token_for_nav(&base));
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

/// SIGTERM stops `portvakt issuer` cleanly (exit 0, "shutting down"), not by the signal's
/// default action (exit 143).
#[cfg(unix)]
#[test]
fn the_issuer_stops_cleanly_on_sigterm() {
    let (child, _) = spawn_issuer(&[], Stdio::piped());
    common::terminate(&child);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{:?}: {stderr}",
        output.status
    );
    // Not necessarily the last line: the development page's validator may still log its
    // refresh failing against the issuer that is going away.
    assert!(stderr.contains("\nshutting down\n"), "{stderr}");
}

/// `portvakt issuer` publishes its next key a rotation ahead; `--announce-next false` does not.
#[test]
fn the_issuer_announces_its_next_key_unless_told_not_to() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let kids = |base: &str| -> Vec<String> {
        let jwks: Value = runtime.block_on(async {
            reqwest::get(format!("{base}/jwk"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let rotate = |base: &str| -> Value {
        runtime.block_on(async {
            reqwest::Client::new()
                .post(format!("{base}/admin/rotate"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    };

    let (_issuer, base) = start_issuer(&[]);
    let before = kids(&base);
    assert_eq!(before.len(), 2, "current and next: {before:?}");
    let rotation = rotate(&base);
    assert_eq!(rotation["kid"], before[1].as_str(), "{rotation}");
    assert_eq!(rotation["previous_kid"], before[0].as_str(), "{rotation}");
    let after = kids(&base);
    assert_eq!(
        after,
        [
            before[1].clone(),
            rotation["next_kid"].as_str().unwrap().to_owned(),
            before[0].clone()
        ]
    );

    let (_issuer, base) = start_issuer(&["--announce-next", "false"]);
    let before = kids(&base);
    assert_eq!(before.len(), 1, "{before:?}");
    let rotation = rotate(&base);
    assert_eq!(rotation["announced_since"], Value::Null, "{rotation}");
    assert_eq!(rotation["next_kid"], Value::Null, "{rotation}");
    assert_eq!(kids(&base).len(), 2, "the new key and the retired one");
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

    // The real grant with --audience sends `resource`: the token is audience-restricted.
    let audience = "https://my-api.ekstern.dev.nav.no/";
    let (code, token, stderr) = run(portvakt()
        .args(["token", "--scope", WRITE, "--audience", audience])
        .env("MASKINPORTEN_CLIENT_ID", "arbeid-klient")
        .env("MASKINPORTEN_CLIENT_JWK", jwk.trim())
        .env(
            "MASKINPORTEN_WELL_KNOWN_URL",
            format!("{base}/.well-known/oauth-authorization-server"),
        ));
    assert_eq!(code, 0, "{stderr}");
    let claims = payload(&token);
    assert_eq!(claims["aud"], audience);
    assert_eq!(claims["client_id"], "arbeid-klient");

    // Strict mode: the development shortcut is gone, and the command says what to do instead.
    let (code, out, stderr) = run(portvakt().args([
        "token",
        "--issuer",
        &base,
        "--scope",
        WRITE,
        "--orgno",
        "974760673",
    ]));
    assert_eq!(code, 2, "a configuration error: {stderr}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(
        stderr,
        format!(
            "error: {base} does not offer portvakt's development shortcut (it is Maskinporten, or a local issuer started with --strict)\n  = help: set MASKINPORTEN_CLIENT_ID and MASKINPORTEN_CLIENT_JWK to perform the JWT-bearer grant\n"
        )
    );
}

#[test]
fn token_with_an_audience() {
    let (_issuer, base) = start_issuer(&[]);
    let audience = "https://my-api.ekstern.dev.nav.no/";
    let (code, token, stderr) = run(portvakt().args([
        "token",
        "--issuer",
        &base,
        "--scope",
        READ,
        "--orgno",
        "889640782",
        "--audience",
        audience,
    ]));
    assert_eq!(code, 0, "{stderr}");
    let claims = payload(&token);
    assert_eq!(claims["aud"], audience);
    assert_eq!(claims["scope"], READ);
    assert_eq!(claims["consumer"]["ID"], "0192:889640782");
    // Without --audience there is no `aud`, as Maskinporten does it.
    let (code, token, stderr) = run(&mut token_for_nav(&base));
    assert_eq!(code, 0, "{stderr}");
    assert!(payload(&token).get("aud").is_none());

    // An audience that is not an absolute URI is a usage error, before any request.
    let (code, out, stderr) = run(portvakt().args([
        "token",
        "--issuer",
        &base,
        "--scope",
        READ,
        "--orgno",
        "889640782",
        "--audience",
        "my-api",
    ]));
    assert_eq!(code, 2, "{stderr}");
    assert!(out.is_empty());
    assert!(
        stderr.starts_with(
            "error: invalid value 'my-api' for '--audience <URI>': `my-api` is not an absolute URI, like https://api.example.no/\n"
        ),
        "{stderr}"
    );
}

#[test]
fn token_on_behalf_of_another_organization() {
    let (_issuer, base) = start_issuer(&[]);
    let (code, token, stderr) = run(portvakt().args([
        "token",
        "--issuer",
        &base,
        "--scope",
        REPORTS,
        "--orgno",
        "889640782",
        "--on-behalf-of",
        "974760673",
    ]));
    assert_eq!(code, 0, "{stderr}");
    let claims = payload(&token);
    assert_eq!(claims["scope"], REPORTS);
    assert_eq!(
        claims["consumer"],
        serde_json::json!({"authority": "iso6523-actorid-upis", "ID": "0192:974760673"}),
        "the consumer is the organization acted for"
    );
    assert_eq!(
        claims["supplier"],
        serde_json::json!({"authority": "iso6523-actorid-upis", "ID": "0192:889640782"}),
        "the supplier is the organization acting"
    );
    assert_eq!(claims["delegation_source"], "https://www.altinn.no/");

    // A scope without a delegation source cannot be delegated: exit 1 with the reason.
    let (code, out, stderr) = run(portvakt().args([
        "token",
        "--issuer",
        &base,
        "--scope",
        WRITE,
        "--orgno",
        "889640782",
        "--on-behalf-of",
        "974760673",
    ]));
    assert_eq!(code, 1, "{stderr}");
    assert!(out.is_empty());
    assert_eq!(
        stderr,
        "error: invalid_scope: scope \"nav:arbeid:some.scope.write\" has no delegationSource, so organization 889640782 cannot get it on behalf of 974760673\n"
    );
    // Nor for an organization that is not a consumer of the scope.
    let (code, _, stderr) = run(portvakt().args([
        "token",
        "--issuer",
        &base,
        "--scope",
        REPORTS,
        "--orgno",
        "889640782",
        "--on-behalf-of",
        "889640782",
    ]));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stderr,
        "error: invalid_scope: organization 889640782 is not a consumer of scope \"nav:arbeid/reports.read\"\n"
    );
}

/// A token of the right shape with a made-up signature: header `{"kid":"k","alg":"RS256"}`,
/// Maskinporten's claims, `exp` in 2100.
const WELL_FORMED: &str = "eyJraWQiOiJrIiwiYWxnIjoiUlMyNTYifQ.eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xLyIsInNjb3BlIjoibmF2OmFyYmVpZDpzb21lLnNjb3BlLnJlYWQiLCJleHAiOjQxMDI0NDQ4MDAsImlhdCI6MTc2NDYzMzYwMCwianRpIjoiaiIsImNsaWVudF9pZCI6ImMiLCJjb25zdW1lciI6eyJhdXRob3JpdHkiOiJpc282NTIzLWFjdG9yaWQtdXBpcyIsIklEIjoiMDE5Mjo4ODk2NDA3ODIifX0.c2lnbmF0dXJl";

#[test]
fn inspect_reports_a_malformed_token_without_waiting_for_the_issuer() {
    // No issuer listens there: the format check needs none, so the answer is "invalid" (1),
    // not "the issuer's keys are not available" (2), and no retry is logged.
    let port = free_port();
    let (code, stdout, stderr) = run(portvakt().args([
        "inspect",
        "not.a.token",
        "--issuer",
        &format!("http://127.0.0.1:{port}"),
    ]));
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.starts_with("FAIL  format"), "{stdout}");
    assert!(stdout.contains("\nINVALID ("), "{stdout}");
    assert_eq!(stderr, "", "nothing logged");
}

#[test]
fn the_built_in_manifest_is_the_guides_example_and_is_used_outside_the_repository() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/nais.yaml"
    ))
    .unwrap();
    assert_eq!(portvakt_cli::issuer_source::GUIDE_EXAMPLE, example);

    // A directory with no nais.yaml: the local issuer runs on the built-in example and says so.
    let dir = temp_file("README", "not a manifest")
        .parent()
        .unwrap()
        .to_owned();
    let port = free_port();
    let stderr_path = dir.join("stderr");
    let mut child = portvakt()
        .current_dir(&dir)
        .args(["issuer", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    // The banner is printed once the issuer listens.
    let deadline = Instant::now() + Duration::from_secs(30);
    let stderr = loop {
        let stderr = std::fs::read_to_string(&stderr_path).unwrap();
        if stderr.contains("\n  discovery ") || Instant::now() > deadline {
            break stderr;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        stderr.contains("manifest   the NAIS guide's example (built in: no ./nais.yaml here"),
        "{stderr}"
    );
}

#[test]
fn inspect_without_a_reachable_issuer_is_a_configuration_error() {
    let port = free_port();
    let (code, stdout, stderr) = run(portvakt().args([
        "inspect",
        WELL_FORMED,
        "--issuer",
        &format!("http://127.0.0.1:{port}"),
    ]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("the issuer's keys are not available"),
        "{stderr}"
    );
    assert!(stderr.contains("portvakt issuer"), "{stderr}");
    // The checks that need no key are reported; the key store's retries are not logged.
    assert!(stdout.starts_with("pass  format"), "{stdout}");
    assert!(stdout.contains("pass  expiry"), "{stdout}");
    assert_eq!(
        stderr.lines().count(),
        2,
        "only the error and the hint: {stderr}"
    );
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

const EXAMPLE_WARNING: &str = "examples/nais.yaml:25:22: warning: organization number \"123456789\" fails the modulus-11 check digit [orgno-check-digit]\n  = help: a mistyped organization number grants a stranger access, or nobody: look it up in Enhetsregisteret (brreg.no)\n";

#[test]
fn manifest_scopes_prints_the_table() {
    let (code, out, stderr) = run(portvakt().args(["manifest", "scopes", "examples/nais.yaml"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        out,
        "SCOPE                        ENABLED  CONSUMERS  AT MAX AGE  INTEGRATIONS\n\
         nav:arbeid:some.scope.read   yes      123456789  30s         maskinporten\n\
         nav:arbeid:some.scope.write  yes      nobody     30s         maskinporten\n"
    );
    // Warnings go to stderr, so stdout stays a clean table.
    assert_eq!(stderr, EXAMPLE_WARNING);

    // --prefix changes the fully qualified names.
    let (code, out, _) = run(portvakt().args([
        "manifest",
        "scopes",
        "--prefix",
        "test",
        "examples/nais.yaml",
    ]));
    assert_eq!(code, 0);
    assert!(out.contains("\ntest:arbeid:some.scope.read "), "{out}");
    assert!(!out.contains("nav:"), "{out}");
}

#[test]
fn manifest_scopes_json() {
    let (code, out, stderr) =
        run(portvakt().args(["manifest", "scopes", "--json", "examples/nais.yaml"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr, EXAMPLE_WARNING);
    let scopes: Value = serde_json::from_str(&out).expect("stdout is one JSON document");
    assert_eq!(
        scopes,
        serde_json::json!([
            {
                "scope": "nav:arbeid:some.scope.read",
                "enabled": true,
                "accessibleForAll": false,
                "consumers": [{"orgno": "123456789"}],
                "atMaxAge": 30,
                "allowedIntegrations": ["maskinporten"],
                "visibility": "public",
                "delegationSource": null,
                "application": "my-api"
            },
            {
                "scope": "nav:arbeid:some.scope.write",
                "enabled": true,
                "accessibleForAll": false,
                "consumers": [],
                "atMaxAge": 30,
                "allowedIntegrations": ["maskinporten"],
                "visibility": "public",
                "delegationSource": null,
                "application": "my-api"
            }
        ])
    );
}

#[test]
fn manifest_check_strict_makes_the_check_digit_warning_an_error() {
    let (code, out, _) =
        run(portvakt().args(["manifest", "check", "--strict", "examples/nais.yaml"]));
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out,
        "examples/nais.yaml:25:22: error: organization number \"123456789\" fails the modulus-11 check digit [orgno-check-digit]\n  = help: a mistyped organization number grants a stranger access, or nobody: look it up in Enhetsregisteret (brreg.no)\nexamples/nais.yaml: 1 error, 0 warnings\n"
    );
    // Without --strict it is a warning, and the check passes.
    let (code, out, _) = run(portvakt().args(["manifest", "check", "examples/nais.yaml"]));
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        format!("{EXAMPLE_WARNING}examples/nais.yaml: 0 errors, 1 warning\n")
    );
}

#[test]
fn manifest_check_reads_nais_yaml_in_the_current_directory() {
    let broken = MANIFEST.replacen("product: arbeid", "product: Arbeid", 1);
    let dir = temp_file("nais.yaml", &broken)
        .parent()
        .unwrap()
        .to_path_buf();
    let (code, out, stderr) = run(portvakt().args(["manifest", "check"]).current_dir(&dir));
    assert_eq!(code, 1, "{out}{stderr}");
    assert_eq!(
        out,
        "nais.yaml:12:20: error: `product` \"Arbeid\" does not match ^[a-z0-9]+$ (lowercase letters a-z and digits only) [invalid-product]\n  = help: use \"arbeid\"\nnais.yaml: 1 error, 0 warnings\n"
    );
    let (code, out, _) = run(portvakt().args(["manifest", "scopes"]).current_dir(&dir));
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");

    // No nais.yaml here: exit 2, saying what to pass.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, out, stderr) = run(portvakt().args(["manifest", "check"]).current_dir(&empty));
    assert_eq!(code, 2, "{out}{stderr}");
    assert!(out.is_empty());
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("nais.yaml"), "{stderr}");
    assert!(
        stderr.contains("= help: pass the path of the application's NAIS manifest"),
        "{stderr}"
    );
}

#[test]
fn manifest_scopes_on_a_broken_file_prints_diagnostics_and_exits_1() {
    let broken = temp_file(
        "nais.yaml",
        &MANIFEST.replacen("product: arbeid", "product: Arbeid", 1),
    );
    let (code, out, stderr) = run(portvakt().args(["manifest", "scopes"]).arg(&broken));
    assert_eq!(code, 1, "{stderr}");
    assert!(out.is_empty(), "no table for a broken manifest: {out}");
    let file = broken.display().to_string();
    assert_eq!(
        stderr,
        format!(
            "{file}:12:20: error: `product` \"Arbeid\" does not match ^[a-z0-9]+$ (lowercase letters a-z and digits only) [invalid-product]\n  = help: use \"arbeid\"\n{file}: 1 error, 0 warnings\n"
        )
    );
    let (code, out, _) = run(portvakt()
        .args(["manifest", "scopes", "--json"])
        .arg(&broken));
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
}

#[test]
fn manifest_usage_errors_exit_2() {
    let (code, out, stderr) = run(portvakt().args(["manifest", "check", "--bogus"]));
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(stderr.contains("unexpected argument '--bogus'"), "{stderr}");
    let (code, _, stderr) = run(portvakt().args(["manifest", "scopes", "a.yaml", "b.yaml"]));
    assert_eq!(code, 2, "{stderr}");
}

/// An HTTP server on 127.0.0.1 that answers every request with `answer(method, path)` (status
/// and JSON body), one connection at a time, until the test process ends: a fake issuer.
fn fake_server(answer: impl Fn(&str, &str) -> (u16, String) + Send + 'static) -> String {
    use std::io::{BufRead as _, BufReader, Read as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let mut parts = request_line.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let (status, body) = answer(method, path);
            let _ = write!(
                reader.get_mut(),
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    base
}

/// A fake local issuer: discovery offers the development shortcut, which answers `refusal`
/// (HTTP 400).
fn issuer_that_refuses(refusal: Value) -> String {
    let base_cell = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let cell = base_cell.clone();
    let base = fake_server(move |_, path| {
        let base = cell.get().cloned().unwrap_or_default();
        if path.starts_with("/.well-known/") {
            let document = serde_json::json!({
                "issuer": format!("{base}/"),
                "token_endpoint": format!("{base}/token"),
                "jwks_uri": format!("{base}/jwk"),
                "portvakt_dev_token_endpoint": format!("{base}/dev/token"),
            });
            (200, document.to_string())
        } else {
            (400, refusal.to_string())
        }
    });
    base_cell.set(base.clone()).unwrap();
    base
}

/// `portvakt token --issuer ISSUER --scope READ --orgno 889640782` (NAV, granted READ).
fn token_for_nav(issuer: &str) -> Command {
    let mut command = portvakt();
    command.args([
        "token",
        "--issuer",
        issuer,
        "--scope",
        READ,
        "--orgno",
        "889640782",
    ]);
    command
}

#[test]
fn an_issuers_refusal_reaches_the_terminal_with_its_control_characters_escaped() {
    let base = issuer_that_refuses(serde_json::json!({
        "error": "invalid_scope\u{1b}]0;pwned\u{7}",
        "error_description": "no\r\u{1b}[2J\u{1b}[31mGRANTED\u{9b}1m\u{7} and more",
    }));
    let (code, out, stderr) = run(&mut token_for_nav(&base));
    assert_eq!(code, 1, "{stderr}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(
        stderr,
        "error: invalid_scope\\u{1b}]0;pwned\\u{7}: no\\r\\u{1b}[2J\\u{1b}[31mGRANTED\\u{9b}1m\\u{7} and more\n"
    );
    assert!(
        !stderr.trim_end_matches('\n').chars().any(char::is_control),
        "{stderr:?}"
    );
    // A description is shown whole up to 1024 characters, so a hostile one cannot flood the
    // terminal either.
    let base = issuer_that_refuses(serde_json::json!({
        "error": "invalid_scope",
        "error_description": "x".repeat(100_000),
    }));
    let (code, _, stderr) = run(&mut token_for_nav(&base));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stderr,
        format!("error: invalid_scope: {}…\n", "x".repeat(1024))
    );
}

#[test]
fn token_asks_the_issuer_the_maskinporten_variables_name() {
    let (_issuer, base) = start_issuer(&[]);
    let nobody = format!("http://127.0.0.1:{}/", free_port());
    let well_known = format!("{base}/.well-known/oauth-authorization-server");
    // Without MASKINPORTEN_CLIENT_*, the development shortcut of the issuer MASKINPORTEN_ISSUER
    // or MASKINPORTEN_WELL_KNOWN_URL names, not of 127.0.0.1:7166.
    for (name, value) in [
        ("MASKINPORTEN_ISSUER", format!("{base}/")),
        ("MASKINPORTEN_WELL_KNOWN_URL", well_known.clone()),
    ] {
        let (code, token, stderr) = run(portvakt()
            .args(["token", "--scope", READ, "--orgno", "889640782"])
            .env(name, &value));
        assert_eq!(code, 0, "{name}: {stderr}");
        assert_eq!(payload(&token)["iss"], format!("{base}/"), "{name}");
    }
    // MASKINPORTEN_WELL_KNOWN_URL, the discovery document itself, before MASKINPORTEN_ISSUER.
    let (code, token, stderr) = run(portvakt()
        .args(["token", "--scope", READ, "--orgno", "889640782"])
        .env("MASKINPORTEN_WELL_KNOWN_URL", &well_known)
        .env("MASKINPORTEN_ISSUER", &nobody));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(payload(&token)["iss"], format!("{base}/"));
    // --issuer wins over the environment.
    let (code, token, stderr) = run(token_for_nav(&base).env("MASKINPORTEN_ISSUER", &nobody));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(payload(&token)["iss"], format!("{base}/"));
    // When the issuer a variable names cannot be reached, the error says which variable.
    let (code, out, stderr) = run(portvakt()
        .args(["token", "--scope", READ, "--orgno", "889640782"])
        .env("MASKINPORTEN_ISSUER", &nobody));
    assert_eq!(code, 2, "{stderr}");
    assert!(out.is_empty(), "{out}");
    assert!(stderr.starts_with("error: discovery: "), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "= note: the issuer is the one MASKINPORTEN_ISSUER names ({nobody}); pass --issuer URL for another"
        )),
        "{stderr}"
    );
}

#[test]
fn token_usage_errors_exit_2_before_any_request() {
    // Nothing listens here: a usage error is found before the issuer is asked.
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let token = |args: &[&str]| {
        run(portvakt()
            .args(["token", "--issuer", &nobody, "--scope", READ])
            .args(args))
    };
    let (code, out, stderr) = token(&[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(
        stderr,
        "error: --orgno is required with the local issuer's development shortcut: the organization to get a token for, e.g. --orgno 889640782 (`portvakt manifest scopes` lists each scope's consumers)\n  = help: or set MASKINPORTEN_CLIENT_ID and MASKINPORTEN_CLIENT_JWK to get a token for your own client with the JWT-bearer grant\n"
    );
    for (args, message) in [
        (
            &["--orgno", "abc"][..],
            "error: invalid value 'abc' for '--orgno <ORGNO>': `abc` is not a nine-digit organization number, like 889640782\n",
        ),
        (
            &["--orgno", "88964078"][..],
            "error: invalid value '88964078' for '--orgno <ORGNO>': `88964078` is not a nine-digit organization number, like 889640782\n",
        ),
        (
            &["--orgno", "889640782", "--on-behalf-of", "97476067x"][..],
            "error: invalid value '97476067x' for '--on-behalf-of <ORGNO>': `97476067x` is not a nine-digit organization number, like 889640782\n",
        ),
        (
            &["--orgno", "889640782", "--scope", " "][..],
            "error: invalid value ' ' for '--scope <SCOPE>': the scope is empty: give one such as nav:arbeid:some.scope.read\n",
        ),
    ] {
        let (code, out, stderr) = token(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(out.is_empty(), "{out}");
        assert!(stderr.starts_with(message), "{args:?}: {stderr}");
    }
}

#[test]
fn the_issuers_invalid_request_is_a_usage_error() {
    let base = issuer_that_refuses(serde_json::json!({
        "error": "invalid_request",
        "error_description": "unknown parameter `x`",
    }));
    let (code, out, stderr) = run(&mut token_for_nav(&base));
    assert_eq!(code, 2, "{stderr}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(stderr, "error: invalid_request: unknown parameter `x`\n");
}

#[test]
fn inspect_with_issuer_uses_that_issuer_even_when_maskinporten_variables_are_set() {
    let (_issuer, base) = start_issuer(&[]);
    let (code, token, stderr) = run(&mut token_for_nav(&base));
    assert_eq!(code, 0, "{stderr}");
    let nobody = format!("http://127.0.0.1:{}/", free_port());
    let (code, out, stderr) = run(portvakt()
        .args(["inspect", token.trim(), "--issuer", &base, "--scope", READ])
        .env("MASKINPORTEN_ISSUER", &nobody)
        .env(
            "MASKINPORTEN_WELL_KNOWN_URL",
            format!("{nobody}.well-known/oauth-authorization-server"),
        ));
    assert_eq!(code, 0, "{out}{stderr}");
    assert!(out.ends_with("\nVALID\n"), "{out}");
    assert_eq!(
        stderr,
        "note: --issuer is given, so MASKINPORTEN_WELL_KNOWN_URL, MASKINPORTEN_ISSUER are ignored\n"
    );
    // Space-separated scopes are several, as for `portvakt token`: one of them is enough.
    let (code, out, stderr) = run(portvakt().args([
        "inspect",
        token.trim(),
        "--issuer",
        &base,
        "--scope",
        &format!("{WRITE} {READ}"),
        "--any-scope",
    ]));
    assert_eq!(code, 0, "{out}{stderr}");
}

#[test]
fn inspect_refuses_meaningless_arguments() {
    for (args, message) in [
        (
            &["--any-scope"][..],
            "error: the following required arguments were not provided:\n  --scope <SCOPE>\n",
        ),
        (
            &["--scope", ""][..],
            "error: invalid value '' for '--scope <SCOPE>': the scope is empty: give one such as nav:arbeid:some.scope.read\n",
        ),
        (
            &["--audience", "not a uri"][..],
            "error: invalid value 'not a uri' for '--audience <URI>': `not a uri` is not an absolute URI, like https://api.example.no/\n",
        ),
    ] {
        let (code, out, stderr) = run(portvakt().args(["inspect", "not.a.token"]).args(args));
        assert_eq!(code, 2, "{args:?}: {out}{stderr}");
        assert!(out.is_empty(), "{out}");
        assert!(stderr.starts_with(message), "{args:?}: {stderr}");
    }
}

#[test]
fn inspect_catches_a_misspelt_maskinporten_variable_as_serve_does() {
    let (code, out, stderr) = run(portvakt()
        .args(["inspect", WELL_FORMED])
        .env("MASKINPORTEN_ISUER", "http://127.0.0.1:20102/"));
    assert_eq!(code, 2, "{out}{stderr}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(
        stderr,
        "error: MASKINPORTEN_ISUER is set but none of MASKINPORTEN_WELL_KNOWN_URL, MASKINPORTEN_ISSUER, MASKINPORTEN_JWKS_URI: set MASKINPORTEN_WELL_KNOWN_URL (NAIS injects it when spec.maskinporten.enabled is true), or MASKINPORTEN_ISSUER for an explicit issuer; development mode (the local issuer) runs only when no MASKINPORTEN_* variable is set\n  = help: or pass --issuer URL to inspect against that issuer (--issuer http://127.0.0.1:7166/ for the local one)\n"
    );
    // An empty one names no issuer either.
    let (code, _, stderr) = run(portvakt()
        .args(["inspect", WELL_FORMED])
        .env("MASKINPORTEN_ISSUER", ""));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("error: MASKINPORTEN_ISSUER is set but none of MASKINPORTEN_WELL_KNOWN_URL, MASKINPORTEN_ISSUER, MASKINPORTEN_JWKS_URI has a value (MASKINPORTEN_ISSUER is empty)"),
        "{stderr}"
    );
    // --issuer still works: the variables are not read then.
    let (code, out, stderr) = run(portvakt()
        .args([
            "inspect",
            "not.a.token",
            "--issuer",
            &format!("http://127.0.0.1:{}", free_port()),
        ])
        .env("MASKINPORTEN_ISUER", "http://127.0.0.1:20102/"));
    assert_eq!(code, 1, "{out}{stderr}");
    assert_eq!(stderr, "", "no note: MASKINPORTEN_ISUER names no issuer");
}

#[test]
fn an_issuer_named_by_a_plain_http_host_starts_without_its_page() {
    // The page validates against the issuer URL, which must be https off loopback; the issuer
    // itself may be named so (inside a compose network), and starts without the page.
    let port = free_port();
    let mut child = portvakt()
        .args([
            "issuer",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--issuer-url",
            &format!("http://issuer.internal:{port}/"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the issuer stopped instead of starting without its page"
        );
        assert!(Instant::now() < deadline, "portvakt issuer did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _running = Background(child);
    let status = |path: &str| {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
        answer.split(' ').nth(1).unwrap_or_default().to_owned()
    };
    assert_eq!(status("/.well-known/oauth-authorization-server"), "200");
    assert_eq!(status("/"), "404", "no page");
}
