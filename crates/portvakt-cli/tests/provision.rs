//! `portvakt provision plan|apply` end to end over loopback: the real binary against a real
//! `portvakt issuer --empty` (its local Digdir), through a small proxy on 127.0.0.1 that logs
//! every request, injects faults, and can change the remote state behind the applier's back.
//! The issuer's identifier is the proxy's URL, so token requests go through it too.

mod common;
use common::free_port;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

const READ: &str = "nav:arbeid:some.scope.read";
const REPORTS: &str = "nav:arbeid/reports.read";
const NAV: &str = "889640782";
const OTHER: &str = "974760673";
const THIRD: &str = "910825526";

/// The manifest: two scopes; `reports.read` delegable through Altinn.
fn manifest(read_enabled: bool, read_consumers: &[&str], with_reports: bool) -> String {
    let consumers: String = read_consumers
        .iter()
        .map(|o| format!("            - orgno: \"{o}\"\n"))
        .collect();
    let mut text = format!(
        r#"apiVersion: nais.io/v1alpha1
kind: Application
metadata: {{name: arbeid-api, namespace: arbeid}}
spec:
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - name: some.scope.read
          enabled: {read_enabled}
          product: arbeid
          consumers:
{consumers}"#
    );
    if with_reports {
        text.push_str(
            r#"        - name: reports.read
          enabled: true
          product: arbeid
          separator: "/"
          delegationSource: altinn
          consumers:
            - orgno: "974760673"
"#,
        );
    }
    text
}

struct Fault {
    method: &'static str,
    path: &'static str,
    status: u16,
    body: &'static str,
    times: usize,
    /// Forward the request first, so that it takes effect, then answer with the fault: the
    /// answer to work that was done is lost.
    after_forwarding: bool,
    /// A `Location` header to answer with (redirects).
    location: Option<&'static str>,
}

/// Before the `nth` request matching `method path` (1-based), create `scope` at Digdir
/// directly, as another applier would.
struct Hook {
    method: &'static str,
    path: &'static str,
    nth: usize,
    scope: Value,
}

#[derive(Default)]
struct Proxy {
    upstream: Mutex<String>,
    log: Mutex<Vec<String>>,
    faults: Mutex<Vec<Fault>>,
    hook: Mutex<Option<Hook>>,
}

impl Proxy {
    fn count(&self, method: &str, path: &str) -> usize {
        let prefix = format!("{method} {path}");
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(&prefix))
            .count()
    }
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let method = request.method().clone();
    let path_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let path_only = request.uri().path().to_owned();
    let headers = request.headers().clone();
    let body: Bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let line = format!("{method} {path_query}");
    let seen = {
        let mut log = proxy.log.lock().unwrap();
        log.push(line.clone());
        log.iter()
            .filter(|l| l.split('?').next() == line.split('?').next())
            .count()
    };
    let upstream = proxy.upstream.lock().unwrap().clone();
    let hook = {
        let mut hook = proxy.hook.lock().unwrap();
        match &*hook {
            Some(h) if h.method == method.as_str() && h.path == path_only && h.nth == seen => {
                hook.take()
            }
            _ => None,
        }
    };
    if let Some(hook) = hook {
        let token = dev_admin_token(&upstream).await;
        let answer = reqwest::Client::new()
            .post(format!("{upstream}/api/v1/scopes"))
            .bearer_auth(token)
            .json(&hook.scope)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201);
    }
    let fault = {
        let mut faults = proxy.faults.lock().unwrap();
        faults
            .iter_mut()
            .find(|f| f.method == method.as_str() && path_only.starts_with(f.path) && f.times > 0)
            .map(|f| {
                f.times -= 1;
                (f.status, f.body, f.after_forwarding, f.location)
            })
    };
    let faulty = |status: u16, body: &'static str, location: Option<&'static str>| {
        let mut answer = (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json")],
            body,
        )
            .into_response();
        if let Some(location) = location {
            answer
                .headers_mut()
                .insert("location", location.parse().unwrap());
        }
        answer
    };
    if let Some((status, body, false, location)) = fault {
        return faulty(status, body, location);
    }
    let mut outgoing = reqwest::Client::new()
        .request(method, format!("{upstream}{path_query}"))
        .body(body.to_vec());
    for name in ["authorization", "content-type", "accept"] {
        if let Some(v) = headers.get(name) {
            outgoing = outgoing.header(name, v.as_bytes());
        }
    }
    let answered = outgoing.send().await;
    if let Some((status, body, true, location)) = fault {
        assert!(
            answered.is_ok(),
            "the request to lose the answer of was not sent"
        );
        return faulty(status, body, location);
    }
    match answered {
        Ok(answer) => {
            let status = answer.status().as_u16();
            let content_type = answer
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_owned();
            let bytes = answer.bytes().await.unwrap_or_default();
            (
                StatusCode::from_u16(status).unwrap(),
                [("content-type", content_type)],
                bytes,
            )
                .into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

async fn dev_admin_token(issuer: &str) -> String {
    let answer: Value = reqwest::Client::new()
        .post(format!("{issuer}/dev/token"))
        .json(&json!({"orgno": NAV, "scope": "idporten:scopes.read idporten:scopes.write"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_owned()
}

struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An issuer with its local Digdir, behind the proxy, and a directory with the manifest and
/// the admin client's key.
struct Env {
    rt: tokio::runtime::Runtime,
    proxy: Arc<Proxy>,
    /// The proxy: what the CLI talks to.
    url: String,
    /// The issuer itself: what the test changes the remote state through.
    direct: String,
    dir: std::path::PathBuf,
    _issuer: Background,
}

fn portvakt() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portvakt"));
    for (var, _) in std::env::vars() {
        if var.starts_with("MASKINPORTEN_")
            || var.starts_with("PORTVAKT_")
            || var == "NAIS_CLUSTER_NAME"
        {
            command.env_remove(var);
        }
    }
    command
}

impl Env {
    fn start() -> Env {
        let dir = std::env::temp_dir().join(format!(
            "portvakt-provision-test-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let proxy = Arc::new(Proxy::default());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(proxy.clone());
        rt.spawn(async move { axum::serve(listener, app).await });

        let generated = portvakt()
            .args([
                "issuer",
                "generate-client",
                "--client-id",
                "admin",
                "--orgno",
                NAV,
            ])
            .output()
            .unwrap();
        assert!(generated.status.success());
        std::fs::write(dir.join("admin.jwk"), &generated.stdout).unwrap();

        let port = free_port();
        let child = portvakt()
            .args([
                "issuer",
                "--empty",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["--issuer-url", &format!("{url}/")])
            .arg("--admin-client")
            .arg(format!("admin:{}", dir.join("admin.jwk").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let direct = format!("http://127.0.0.1:{port}");
        *proxy.upstream.lock().unwrap() = direct.clone();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "portvakt issuer did not start");
            std::thread::sleep(Duration::from_millis(25));
        }
        let env = Env {
            rt,
            proxy,
            url,
            direct,
            dir,
            _issuer: Background(child),
        };
        env.write_manifest(&manifest(true, &[NAV], true));
        env
    }

    fn write_manifest(&self, text: &str) {
        std::fs::write(self.dir.join("nais.yaml"), text).unwrap();
    }

    fn provision(&self, args: &[&str]) -> Command {
        let mut command = portvakt();
        command
            .arg("provision")
            .args(args)
            .arg(self.dir.join("nais.yaml"))
            .env("PORTVAKT_ADMIN_URL", format!("{}/api/v1", self.url))
            .env("PORTVAKT_ADMIN_MASKINPORTEN_URL", format!("{}/", self.url))
            .env("PORTVAKT_ADMIN_CLIENT_ID", "admin")
            .env("PORTVAKT_ADMIN_CLIENT_JWK", self.dir.join("admin.jwk"))
            .env("RUST_LOG", "off");
        command
    }

    /// Runs `portvakt provision ARGS FILE`: exit code, stdout, stderr.
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.provision(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    fn plan_json(&self, extra: &[&str]) -> Value {
        let mut args = vec!["plan", "--json"];
        args.extend_from_slice(extra);
        let (code, out, err) = self.run(&args);
        assert_eq!(code, 0, "{out}{err}");
        serde_json::from_str(&out).unwrap()
    }

    fn apply(&self, extra: &[&str]) -> String {
        let mut args = vec!["apply", "--yes"];
        args.extend_from_slice(extra);
        let (code, out, err) = self.run(&args);
        assert_eq!(code, 0, "{out}{err}");
        out
    }

    fn assert_no_changes(&self) {
        let (code, out, err) = self.run(&["plan", "--detailed-exitcode"]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("No changes"), "{out}");
    }

    /// A request to the issuer directly, with a development admin token.
    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.rt.block_on(async {
            let token = dev_admin_token(&self.direct).await;
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let mut request = reqwest::Client::new()
                .request(method, format!("{}/api/v1{path}", self.direct))
                .bearer_auth(token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            let text = answer.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    }

    fn scope(&self, name: &str) -> Value {
        let (status, list) = self.admin("GET", "/scopes?inactive=true", None);
        assert_eq!(status, 200);
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }

    fn access(&self, name: &str) -> Vec<String> {
        let (_, list) = self.admin("GET", &format!("/scopes/access?scope={name}"), None);
        let mut orgs: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{}={}",
                    e["consumer_orgno"].as_str().unwrap(),
                    e["state"].as_str().unwrap()
                )
            })
            .collect();
        orgs.sort();
        orgs
    }

    /// A consumer token from the issuer's /dev/token: `Ok(expires_in)` or the refusal.
    fn consumer_token(&self, orgno: &str, scope: &str) -> Result<u64, String> {
        self.rt.block_on(async {
            let answer = reqwest::Client::new()
                .post(format!("{}/dev/token", self.direct))
                .json(&json!({"orgno": orgno, "scope": scope}))
                .send()
                .await
                .unwrap();
            let ok = answer.status().is_success();
            let body: Value = answer.json().await.unwrap();
            if ok {
                Ok(body["expires_in"].as_u64().unwrap())
            } else {
                Err(body["error_description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned())
            }
        })
    }

    fn fault(
        &self,
        method: &'static str,
        path: &'static str,
        status: u16,
        body: &'static str,
        times: usize,
    ) {
        self.proxy.faults.lock().unwrap().push(Fault {
            method,
            path,
            status,
            body,
            times,
            after_forwarding: false,
            location: None,
        });
    }

    /// The next `method path` is done at Digdir, and its answer replaced by a 502.
    fn lose_answer(&self, method: &'static str, path: &'static str) {
        self.proxy.faults.lock().unwrap().push(Fault {
            method,
            path,
            status: 502,
            body: r#"{"error":"bad gateway"}"#,
            times: 1,
            after_forwarding: true,
            location: None,
        });
    }

    /// Every `method path` is answered with a redirect to `location`, never done.
    fn redirect(
        &self,
        method: &'static str,
        path: &'static str,
        status: u16,
        location: &'static str,
    ) {
        self.proxy.faults.lock().unwrap().push(Fault {
            method,
            path,
            status,
            body: "",
            times: usize::MAX,
            after_forwarding: false,
            location: Some(location),
        });
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn plan_and_apply_on_an_empty_digdir_then_nothing_is_left_and_tokens_follow() {
    let env = Env::start();
    let (code, out, err) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("scope nav:arbeid:some.scope.read\n  + create\n"),
        "{out}"
    );
    let plan = env.plan_json(&[]);
    let steps: Vec<(String, String, Option<String>)> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_owned(),
                a["scope"].as_str().unwrap().to_owned(),
                a["orgno"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let s =
        |a: &str, sc: &str, o: Option<&str>| (a.to_owned(), sc.to_owned(), o.map(str::to_owned));
    assert_eq!(
        steps,
        [
            s("create", READ, None),
            s("grant", READ, Some(NAV)),
            s("create", REPORTS, None),
            s("grant", REPORTS, Some(OTHER)),
        ]
    );
    assert_eq!(
        plan["actions"][0]["changes"]["at_max_age"],
        json!({"old": null, "new": 30})
    );
    assert_eq!(
        env.consumer_token(NAV, READ).unwrap_err(),
        format!("scope \"{READ}\" is not exposed by this API")
    );

    let tokens_before = env.proxy.count("POST", "/token");
    let out = env.apply(&[]);
    assert!(
        out.contains("Apply: 4 done, 0 failed, 0 not done, 0 held back."),
        "{out}"
    );
    assert_eq!(
        env.proxy.count("POST", "/token") - tokens_before,
        1,
        "one admin token serves the whole apply (plan reads, re-reads and four writes)"
    );
    assert!(env.proxy.count("PUT", "/api/v1/scopes/access/") >= 2);

    env.assert_no_changes();
    assert_eq!(env.plan_json(&[])["actions"], json!([]));
    let reports = env.scope(REPORTS);
    assert_eq!(
        reports["delegation_source"], "https://www.altinn.no/",
        "resolved through /delegationsources"
    );
    assert_eq!(reports["description"], "arbeid - local:arbeid:arbeid-api");
    assert!(env.proxy.count("GET", "/api/v1/delegationsources") >= 1);
    assert_eq!(
        env.consumer_token(NAV, READ),
        Ok(30),
        "at_max_age sets the lifetime"
    );
    assert_eq!(
        env.consumer_token(OTHER, READ).unwrap_err(),
        format!("organization {OTHER} is not a consumer of scope \"{READ}\"")
    );
}

#[test]
fn drift_disable_reactivate_grants_revocations_and_orphans() {
    let env = Env::start();
    env.apply(&[]);

    // Drift: a field changed at Digdir is planned as an update, field by field.
    let mut changed = env.scope(READ);
    changed["at_max_age"] = json!(300);
    let (status, _) = env.admin("PUT", &format!("/scopes?scope={READ}"), Some(changed));
    assert_eq!(status, 200);
    let plan = env.plan_json(&[]);
    assert_eq!(
        plan["actions"],
        json!([{"action": "update", "scope": READ, "changes": {"at_max_age": {"old": 300, "new": 30}}}])
    );
    env.apply(&[]);
    env.assert_no_changes();

    // Disabled: deactivated; tokens stop.
    env.write_manifest(&manifest(false, &[NAV], true));
    assert_eq!(env.plan_json(&[])["actions"][0]["action"], "deactivate");
    env.apply(&[]);
    assert_eq!(env.scope(READ)["active"], false);
    assert_eq!(
        env.consumer_token(NAV, READ).unwrap_err(),
        format!("scope \"{READ}\" is disabled")
    );
    env.assert_no_changes();

    // Enabled again: reactivated with PUT, never re-POSTed.
    env.write_manifest(&manifest(true, &[NAV], true));
    assert_eq!(env.plan_json(&[])["actions"][0]["action"], "reactivate");
    let posts = env.proxy.count("POST", "/api/v1/scopes");
    let puts = env.proxy.count("PUT", "/api/v1/scopes?scope=");
    env.apply(&[]);
    assert_eq!(env.proxy.count("POST", "/api/v1/scopes"), posts);
    assert_eq!(env.proxy.count("PUT", "/api/v1/scopes?scope="), puts + 1);
    assert_eq!(env.consumer_token(NAV, READ), Ok(30));

    // Grants: a new consumer is granted; one dropped from the manifest is revoked only with --prune.
    env.write_manifest(&manifest(true, &[THIRD], true));
    let plan = env.plan_json(&[]);
    assert_eq!(
        plan["actions"][0],
        json!({"action": "grant", "scope": READ, "orgno": THIRD, "changes": {"state": {"old": null, "new": "APPROVED"}}})
    );
    assert_eq!(plan["actions"][1]["action"], "revoke");
    assert_eq!(plan["actions"][1]["held"], "prune");
    let out = env.apply(&[]);
    assert!(
        out.contains(&format!(
            "held      - revoke {READ} from {NAV} (needs --prune)"
        )),
        "{out}"
    );
    assert_eq!(
        env.access(READ),
        [format!("{NAV}=APPROVED"), format!("{THIRD}=APPROVED")]
    );
    let (code, _, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "held steps are not changes");
    let (code, _, _) = env.run(&["plan", "--detailed-exitcode", "--prune"]);
    assert_eq!(code, 2);
    env.apply(&["--prune"]);
    assert_eq!(env.access(READ), [format!("{THIRD}=APPROVED")]);
    assert!(env.consumer_token(NAV, READ).is_err());

    // Orphans: a scope the manifest no longer has is shown, and deactivated only with --prune.
    env.write_manifest(&manifest(true, &[THIRD], false));
    let plan = env.plan_json(&[]);
    assert_eq!(
        plan["actions"],
        json!([{"action": "orphan", "scope": REPORTS, "changes": {"active": {"old": true, "new": false}}, "held": "prune"}])
    );
    env.apply(&[]);
    assert_eq!(env.scope(REPORTS)["active"], true);
    env.apply(&["--prune"]);
    assert_eq!(env.scope(REPORTS)["active"], false);
    env.assert_no_changes();
}

#[test]
fn a_scope_of_another_app_is_left_alone_without_adopt() {
    let env = Env::start();
    let foreign = json!({
        "prefix": "nav", "subscope": "arbeid:some.scope.read",
        "description": "arbeid - local:other:other-api", "active": true,
        "allowed_integration_types": ["maskinporten"], "at_max_age": 120,
        "token_type": "SELF_CONTAINED", "visibility": "PUBLIC", "accessible_for_all": false
    });
    assert_eq!(env.admin("POST", "/scopes", Some(foreign)).0, 201);
    let (code, out, _) = env.run(&["plan"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("~ update  (not performed without --adopt)"),
        "{out}"
    );
    assert!(
        out.contains(
            "owner: \"arbeid - local:other:other-api\" (application local:other:other-api)"
        ),
        "{out}"
    );
    let out = env.apply(&[]);
    assert!(
        out.contains(&format!("held      ~ update {READ} (needs --adopt)")),
        "{out}"
    );
    assert_eq!(
        env.scope(READ)["description"],
        "arbeid - local:other:other-api"
    );
    assert_eq!(env.scope(READ)["at_max_age"], 120);
    assert!(env.access(READ).is_empty());
    env.apply(&["--adopt"]);
    assert_eq!(
        env.scope(READ)["description"],
        "arbeid - local:arbeid:arbeid-api"
    );
    assert_eq!(env.access(READ), [format!("{NAV}=APPROVED")]);
    env.assert_no_changes();
}

#[test]
fn a_5xx_is_retried_and_a_400_is_not_and_rerunning_finishes() {
    let env = Env::start();
    // A 400 for the first create: reported with the scope, not retried; its grant is not done.
    env.fault(
        "POST",
        "/api/v1/scopes",
        400,
        r#"{"error":"invalid_request","error_description":"description is too long"}"#,
        1,
    );
    // A 503 once for a grant: retried, and done.
    env.fault(
        "PUT",
        "/api/v1/scopes/access/974760673",
        503,
        r#"{"error":"unavailable"}"#,
        1,
    );
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(&format!("FAILED    + create {READ}: POST /scopes (scope {READ}) answered 400: description is too long")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "not done  + grant {READ} to {NAV}: an earlier step of this scope failed"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("done      + grant {REPORTS} to {OTHER}")),
        "{out}"
    );
    assert!(
        out.contains("Apply: 2 done, 1 failed, 1 not done, 0 held back."),
        "{out}"
    );
    assert_eq!(
        env.proxy.count("POST", "/api/v1/scopes"),
        2,
        "the 400 was not retried; the second POST is the other scope's"
    );
    assert_eq!(
        env.proxy.count("PUT", "/api/v1/scopes/access/974760673"),
        2,
        "the 503 was retried once"
    );
    assert_eq!(env.access(REPORTS), [format!("{OTHER}=APPROVED")]);

    // Running apply again does what is still missing, and only that.
    let out = env.apply(&[]);
    assert!(
        out.contains("Apply: 2 done, 0 failed, 0 not done, 0 held back."),
        "{out}"
    );
    env.assert_no_changes();
}

#[test]
fn a_remote_change_between_plan_and_apply_stops_apply() {
    let env = Env::start();
    // Apply reads /scopes for the plan, then again before writing the first scope: just
    // before that second read somebody else creates the scope.
    *env.proxy.hook.lock().unwrap() = Some(Hook {
        method: "GET",
        path: "/api/v1/scopes",
        nth: 2,
        scope: json!({
            "prefix": "nav", "subscope": "arbeid:some.scope.read",
            "description": "arbeid - local:arbeid:arbeid-api", "at_max_age": 60,
            "allowed_integration_types": ["maskinporten"]
        }),
    });
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(&format!("stopped: scope {READ} changed at Digdir since the plan was made (it now exists); run plan again and review it")),
        "{out}"
    );
    assert_eq!(
        env.proxy.count("POST", "/api/v1/scopes"),
        0,
        "nothing was written"
    );
    assert_eq!(env.proxy.count("PUT", "/api/v1/"), 0);
    assert!(out.contains("Apply: 0 done, 0 failed, 4 not done"), "{out}");
    // The next plan starts from the new state.
    assert_eq!(env.plan_json(&[])["actions"][0]["action"], "update");
}

#[test]
fn two_applies_at_once_end_in_the_manifest_state() {
    let env = Env::start();
    let first = env
        .provision(&["apply", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let second = env
        .provision(&["apply", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let results = [
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    ];
    let codes: Vec<i32> = results
        .iter()
        .map(|o| o.status.code().unwrap_or(-1))
        .collect();
    let outs: Vec<String> = results
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .collect();
    assert!(
        codes.iter().all(|c| *c == 0 || *c == 1),
        "{codes:?} {outs:?}"
    );
    for (code, out) in codes.iter().zip(&outs) {
        if *code == 1 {
            // The loser saw the other's writes before its own, or Digdir's 409 for a create.
            assert!(
                out.contains("changed at Digdir since the plan") || out.contains("answered 409"),
                "{out}"
            );
        }
    }
    // Whatever the interleaving, one more apply leaves the manifest state and nothing to do.
    env.apply(&[]);
    env.assert_no_changes();
    assert_eq!(env.access(READ), [format!("{NAV}=APPROVED")]);
    assert_eq!(env.access(REPORTS), [format!("{OTHER}=APPROVED")]);
}

#[test]
fn apply_without_yes_changes_nothing_and_a_broken_manifest_is_refused_before_any_call() {
    let env = Env::start();
    let (code, out, err) = env.run(&["apply"]);
    assert_eq!(code, 1);
    assert!(out.contains("+ create"), "{out}");
    assert!(
        err.contains("run `portvakt provision apply --yes`"),
        "{err}"
    );
    assert_eq!(env.proxy.count("POST", "/api/v1/scopes"), 0);
    env.write_manifest(&manifest(true, &["12345"], true));
    let requests = env.proxy.log.lock().unwrap().len();
    let (code, _, err) = env.run(&["plan"]);
    assert_eq!(code, 1);
    assert!(err.contains("error(s)"), "{err}");
    assert_eq!(
        env.proxy.log.lock().unwrap().len(),
        requests,
        "no request was made"
    );
    let out = portvakt()
        .args(["provision", "plan"])
        .arg(env.dir.join("nais.yaml"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error"),
        "the manifest is checked first"
    );
}

#[test]
fn a_revoke_and_a_create_whose_answers_were_lost_count_as_done() {
    let env = Env::start();
    env.write_manifest(&manifest(true, &[NAV, OTHER], false));
    env.apply(&[]);
    // The revoke is done, its answer lost: the retry finds no access (404), which is the
    // revoke's own work, not a failure.
    env.write_manifest(&manifest(true, &[NAV], false));
    env.lose_answer("DELETE", "/api/v1/scopes/access/974760673");
    let out = env.apply(&["--prune"]);
    assert!(
        out.contains(&format!("done      - revoke {READ} from {OTHER}")),
        "{out}"
    );
    assert!(
        out.contains("Apply: 1 done, 0 failed, 0 not done, 0 held back."),
        "{out}"
    );
    assert_eq!(
        env.proxy.count("DELETE", "/api/v1/scopes/access/974760673"),
        2,
        "the lost answer was retried once"
    );
    assert_eq!(env.access(READ), [format!("{NAV}=APPROVED")]);
    // The same for a create (a 409 to its retry).
    env.write_manifest(&manifest(true, &[NAV], true));
    env.lose_answer("POST", "/api/v1/scopes");
    let out = env.apply(&[]);
    assert!(
        out.contains(&format!("done      + create {REPORTS}")),
        "{out}"
    );
    assert!(out.contains(" 0 failed, 0 not done"), "{out}");
    env.assert_no_changes();
}

#[test]
fn a_redirect_is_a_failure_that_names_where_it_pointed_never_done() {
    let env = Env::start();
    for status in [301, 303, 307] {
        env.proxy.faults.lock().unwrap().clear();
        env.redirect("POST", "/api/v1/scopes", status, "/elsewhere");
        let (code, out, err) = env.run(&["apply", "--yes"]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            out.contains(&format!(
                "FAILED    + create {READ}: POST /scopes (scope {READ}) answered {status}: redirected to \"/elsewhere\", which is not followed"
            )),
            "{out}"
        );
        assert!(
            out.contains("0 done, 2 failed"),
            "nothing counts as done: {out}"
        );
        assert_eq!(
            env.proxy.count("GET", "/elsewhere"),
            0,
            "the redirect was not followed"
        );
        assert_eq!(env.proxy.count("POST", "/elsewhere"), 0);
    }
    assert_eq!(
        env.admin("GET", "/scopes", None).1,
        json!([]),
        "nothing was created"
    );
}

#[test]
fn a_usage_error_is_exit_1_for_provision_since_2_means_changes() {
    // No Digdir is needed: clap refuses the flag before anything runs.
    let out = portvakt()
        .args([
            "provision",
            "plan",
            "--detailed-exitcode",
            "--prunee",
            "nais.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("unexpected argument '--prunee'"),
        "{stderr}"
    );
    // Help is no error; other commands' usage errors stay 2.
    assert_eq!(
        portvakt()
            .args(["provision", "--help"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        portvakt()
            .args(["manifest", "check", "--prunee"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn an_invalid_rust_log_is_an_error_not_the_default_filter() {
    let out = portvakt()
        .args(["manifest", "check", "examples/nais.yaml"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env("RUST_LOG", "portvakt=bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("error: RUST_LOG=\"portvakt=bogus\" is not a log filter"),
        "{stderr}"
    );
}

#[test]
fn a_prefix_that_is_not_one_is_refused_by_every_command_that_takes_it() {
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    for (args, code) in [
        (vec!["manifest", "scopes", "examples/nais.yaml"], 2),
        (vec!["manifest", "check", "examples/nais.yaml"], 2),
        (vec!["issuer", "--manifest", "examples/nais.yaml"], 2),
        (vec!["provision", "plan", "examples/nais.yaml"], 1),
    ] {
        for prefix in ["NAV X", "", "nav:x"] {
            let out = portvakt()
                .args(&args)
                .args(["--prefix", prefix])
                .current_dir(repo)
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(code),
                "{args:?} --prefix {prefix:?}"
            );
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert!(
                stderr.contains(&format!("{prefix:?} is not a scope prefix")),
                "{stderr}"
            );
        }
    }
}

#[test]
fn issuer_empty_refuses_a_manifest_and_check_policy_exits_2_for_a_missing_file() {
    let out = portvakt()
        .args(["issuer", "--empty", "--manifest", "nais.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("'--empty' cannot be used with '--manifest <FILE>'"),
        "{stderr}"
    );
    // A policy file that cannot be read is a usage error (2), as for `manifest check`; 1 is
    // for a policy with errors.
    let out = portvakt()
        .args([
            "serve",
            "--check-policy",
            "--policy",
            "/no/such/policy.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("error: cannot read policy file /no/such/policy.toml: "),
        "{stderr}"
    );
}
