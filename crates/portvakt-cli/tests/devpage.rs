//! The development page end to end: the real `portvakt serve` binary in development mode (no
//! `MASKINPORTEN_*`), driven in headless Chromium over W3C WebDriver (chromedriver; WebDriver
//! is JSON over HTTP, spoken here with reqwest), and over plain HTTP for what a browser cannot
//! show: 404 outside development mode, the security headers, the refused requests.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); without them the
//! browser test fails and says so. One browser session and one sidecar serve every browser
//! step; each wait is bounded.
//!
//! `PORTVAKT_SCREENSHOTS=DIR` also saves a screenshot of each panel into DIR
//! (`scripts/screenshots.sh`).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::{Process, free_port, get_status as status, portvakt, wait_for_status};

const READ: &str = "nav:arbeid:some.scope.read";
const WRITE: &str = "nav:arbeid:some.scope.write";
/// examples/nais.yaml grants the read scope to this organization only.
const GRANTED: &str = "123456789";
const NOT_GRANTED: &str = "889640782";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const WAIT: Duration = Duration::from_secs(15);
/// How long a child process may take to start serving.
const BOOT: Duration = Duration::from_secs(30);

fn spawn(args: &[String], envs: &[(&str, String)]) -> Process {
    Process(portvakt(args, envs).spawn().unwrap())
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// POSTs `body` as JSON and reads the JSON answer.
async fn post_json(client: &reqwest::Client, url: &str, body: Value) -> Value {
    let answer = client.post(url).json(&body).send().await.unwrap();
    answer.json().await.unwrap()
}

/// The sidecar in development mode with the proxy in front of an upstream that only accepts
/// connections (`/readyz` waits for the upstream to accept them; the page never calls it).
struct Sidecar {
    _process: Process,
    _upstream: std::net::TcpListener,
    api: u16,
    issuer: u16,
}

async fn dev_sidecar() -> Sidecar {
    let (api, issuer, proxy) = (free_port(), free_port(), free_port());
    let upstream_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = upstream_listener.local_addr().unwrap().port();
    let process = spawn(
        &[
            "serve".to_owned(),
            "--listen".to_owned(),
            format!("127.0.0.1:{api}"),
            "--dev-issuer-listen".to_owned(),
            format!("127.0.0.1:{issuer}"),
            "--upstream".to_owned(),
            format!("http://127.0.0.1:{upstream}"),
            "--policy".to_owned(),
            "examples/policy.toml".to_owned(),
            "--proxy-listen".to_owned(),
            format!("127.0.0.1:{proxy}"),
        ],
        &[],
    );
    wait_for_status(&format!("http://127.0.0.1:{api}/readyz"), 200, BOOT).await;
    Sidecar {
        _process: process,
        _upstream: upstream_listener,
        api,
        issuer,
    }
}

// --- WebDriver ---------------------------------------------------------------------------

/// A chromedriver and one headless Chromium session.
struct Browser {
    http: reqwest::Client,
    session: String,
    _driver: Process,
}

const INSTALL: &str = "the development page's end-to-end tests need headless Chromium and its WebDriver: install them with `apt-get update && apt-get install -y chromium chromium-driver` (Debian), or set PORTVAKT_CHROMEDRIVER and PORTVAKT_CHROMIUM to their paths";

impl Browser {
    async fn start() -> Browser {
        let driver_path =
            std::env::var("PORTVAKT_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_owned());
        let chromium =
            std::env::var("PORTVAKT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        assert!(
            std::path::Path::new(&chromium).exists(),
            "{chromium} does not exist: {INSTALL}"
        );
        let port = free_port();
        let driver = match Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => Process(child),
            Err(e) => panic!("cannot run {driver_path}: {e}: {INSTALL}"),
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(response) = ready
                && let Ok(body) = response.json::<Value>().await
                && body["value"]["ready"] == json!(true)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver never became ready: {INSTALL}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Every name resolves to nothing except 127.0.0.1, and no background traffic: a
        // request to another host could not succeed, and is seen in the performance log.
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-extensions", "--no-first-run",
                    "--disable-default-apps", "--window-size=1200,1000",
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                ],
            },
            "goog:loggingPrefs": {"performance": "ALL", "browser": "ALL"},
        }}});
        let created = post_json(&http, &format!("{base}/session"), capabilities).await;
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver did not start Chromium: {created}; {INSTALL}"))
            .to_owned();
        Browser {
            http,
            session: format!("{base}/session/{session}"),
            _driver: driver,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if let Some(error) = answer["value"]["error"].as_str() {
            panic!(
                "WebDriver {path}: {error}: {}",
                answer["value"]["message"].as_str().unwrap_or_default()
            );
        }
        answer["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("{css}: {found}"))
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.post(&format!("/element/{id}/click"), json!({})).await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.post(&format!("/element/{id}/clear"), json!({})).await;
        self.post(&format!("/element/{id}/value"), json!({"text": text}))
            .await;
    }

    async fn script(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// The text of the first element matching `css`, or "" when there is none.
    async fn text(&self, css: &str) -> String {
        let text = self
            .script(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
                json!([css]),
            )
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// Waits (bounded) until the element's text satisfies `ready`, and returns it.
    async fn wait_text(&self, css: &str, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.text(css).await;
            if ready(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never showed {what}; it shows {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn screenshot(&self, css: &str, file: &std::path::Path) {
        use base64::Engine as _;
        // chromedriver clips an element screenshot to the viewport without scrolling to it.
        self.script(
            "document.querySelector(arguments[0]).scrollIntoView();",
            json!([css]),
        )
        .await;
        let id = self.find(css).await;
        let png = self.get(&format!("/element/{id}/screenshot")).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::write(file, bytes).unwrap();
    }

    async fn quit(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

/// Sets the Inspect panel's token and route and runs it.
async fn inspect(browser: &Browser, token: &str, route: &str) {
    browser
        .script(
            "document.getElementById('inspect-token').value = arguments[0];",
            json!([token]),
        )
        .await;
    browser
        .click(&format!("input[name=route][value={route}]"))
        .await;
    browser
        .script(
            "document.getElementById('inspect-result').replaceChildren();",
            json!([]),
        )
        .await;
    browser.click("#inspect-submit").await;
}

/// The Inspect panel's proxy verdict for `method path`.
async fn proxy_verdict(browser: &Browser, token: &str, method: &str, path: &str) -> String {
    browser
        .script(
            "document.getElementById('route-method').value = arguments[0]; document.getElementById('route-path').value = arguments[1];",
            json!([method, path]),
        )
        .await;
    inspect(browser, token, "proxy").await;
    browser
        .wait_text("#proxy-verdict", "the proxy's verdict", |t| !t.is_empty())
        .await
}

async fn check_outcome(browser: &Browser, name: &str) -> String {
    browser
        .script(
            "const r = document.querySelector(`#checks tr[data-check='${arguments[0]}']`); return r ? r.className + ': ' + r.cells[2].textContent : '';",
            json!([name]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The refusal `portvakt token` prints for the same request.
fn cli_refusal(issuer: u16, orgno: &str, scope: &str) -> String {
    let output = portvakt(
        &[
            "token".to_owned(),
            "--issuer".to_owned(),
            format!("http://127.0.0.1:{issuer}"),
            "--scope".to_owned(),
            scope.to_owned(),
            "--orgno".to_owned(),
            orgno.to_owned(),
        ],
        &[],
    )
    .stderr(Stdio::piped())
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    String::from_utf8(output.stderr).unwrap().trim().to_owned()
}

/// Changes one character in the middle of the signature: still well-formed, never valid.
fn tamper(token: &str) -> String {
    let signature_start = token.rfind('.').unwrap() + 1;
    let at = signature_start + (token.len() - signature_start) / 2;
    let mut bytes = token.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_page_in_headless_chromium() {
    let sidecar = dev_sidecar().await;
    let browser = Browser::start().await;
    let origin = format!("http://127.0.0.1:{}", sidecar.api);
    browser.goto(&format!("{origin}/")).await;

    // Grants: the example manifest's two scopes against its one consumer, with diagnostics.
    browser
        .wait_text("#matrix tbody", "both scopes", |t| t.contains(WRITE))
        .await;
    let rows = browser
        .script(
            "return Array.from(document.querySelectorAll('#matrix tbody tr')).map(r => Array.from(r.cells).map(c => c.querySelector('.cell, .scope') ? c.querySelector('.cell, .scope').textContent : c.textContent));",
            json!([]),
        )
        .await;
    assert_eq!(
        rows,
        json!([
            [READ, "granted", "not granted"],
            [WRITE, "not granted", "not granted"]
        ]),
        "the matrix"
    );
    let header = browser.text("#matrix thead").await;
    assert!(header.contains(GRANTED), "{header}");
    let settings = browser.text("#matrix tbody th").await;
    assert!(settings.contains("atMaxAge 30 s"), "{settings}");
    assert!(settings.contains("no delegation"), "{settings}");
    let diagnostics = browser.text("#diagnostics").await;
    assert!(
        diagnostics.contains("line 25, column 22") && diagnostics.contains("[orgno-check-digit]"),
        "{diagnostics}"
    );
    let shown = browser
        .script(
            "return ['route-scopes-fields', 'route-proxy-fields', 'grants-note'].map(id => getComputedStyle(document.getElementById(id)).display);",
            json!([]),
        )
        .await;
    assert_eq!(
        shown,
        json!(["none", "none", "none"]),
        "hidden parts of the page"
    );
    let routes = browser.text("#routes tbody").await;
    assert!(routes.contains("/api/v1/**"), "{routes}");

    // Mint for the granted consumer; the Inspect panel shows the token as valid.
    browser.type_into("#mint-orgno", GRANTED).await;
    browser.click("#mint-submit").await;
    browser
        .wait_text("#mint-result", "a token", |t| t.contains("expires in"))
        .await;
    let token = browser
        .script(
            "return document.getElementById('mint-token').value;",
            json!([]),
        )
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(token.split('.').count(), 3, "a compact JWS");
    let curl = browser.text("#mint-curl").await;
    assert!(
        curl.contains(&format!("{origin}/api/v1/introspect"))
            && curl.contains("/api/v1/example -H \"Authorization: Bearer $TOKEN\""),
        "{curl}"
    );
    browser.click("#mint-inspect").await;
    let verdict = browser
        .wait_text("#inspect-verdict", "a verdict", |t| !t.is_empty())
        .await;
    assert_eq!(verdict, "VALID");
    for check in ["format", "signature", "issuer", "expiry"] {
        let outcome = check_outcome(&browser, check).await;
        assert!(outcome.starts_with("passed"), "{check}: {outcome}");
    }
    let left = browser.text("#time-left").await;
    assert!(left.starts_with("Expires in "), "{left}");
    let claims = browser.text("#token-claims").await;
    assert!(claims.contains("0192:123456789"), "{claims}");

    if let Ok(dir) = std::env::var("PORTVAKT_SCREENSHOTS") {
        let dir = PathBuf::from(dir);
        // Tall enough for each panel to fit whole (an element screenshot is clipped to the
        // viewport).
        browser
            .post("/window/rect", json!({"width": 1100, "height": 2600}))
            .await;
        browser
            .screenshot("#grants", &dir.join("devpage-grants.png"))
            .await;
        browser
            .screenshot("#mint", &dir.join("devpage-mint.png"))
            .await;
    }

    // Mint for a consumer without the grant: the issuer's refusal, worded as the CLI words it.
    browser.type_into("#mint-orgno", NOT_GRANTED).await;
    browser.click("#mint-submit").await;
    let refusal = browser
        .wait_text("#mint-result", "a refusal", |t| t.contains("Refused"))
        .await;
    let expected = cli_refusal(sidecar.issuer, NOT_GRANTED, READ);
    assert_eq!(
        expected,
        format!(
            "error: invalid_scope: organization {NOT_GRANTED} is not a consumer of scope \"{READ}\""
        )
    );
    assert_eq!(browser.text("#mint-refusal").await, expected, "{refusal}");

    // A tampered token fails the signature check.
    inspect(&browser, &tamper(&token), "none").await;
    let verdict = browser
        .wait_text("#inspect-verdict", "a verdict", |t| !t.is_empty())
        .await;
    assert!(
        verdict.starts_with("INVALID (invalid_signature)") || verdict.starts_with("INVALID"),
        "{verdict}"
    );
    let signature = check_outcome(&browser, "signature").await;
    assert!(signature.starts_with("failed"), "{signature}");

    // Against a route that needs a scope the token lacks: the scope is named.
    browser
        .script(
            "document.getElementById('route-scopes').value = arguments[0];",
            json!([WRITE]),
        )
        .await;
    inspect(&browser, &token, "scopes").await;
    browser
        .wait_text("#inspect-verdict", "a verdict", |t| !t.is_empty())
        .await;
    let scope = check_outcome(&browser, "scope").await;
    assert!(
        scope.starts_with("failed") && scope.contains(&format!("needs `{WRITE}`")),
        "{scope}"
    );

    // A path of the proxy policy: forwarded with identity headers, or refused with the reason.
    let forwarded = proxy_verdict(&browser, &token, "GET", "/api/v1/orders").await;
    assert!(
        forwarded.contains("Forwarded, with these identity headers"),
        "{forwarded}"
    );
    if let Ok(dir) = std::env::var("PORTVAKT_SCREENSHOTS") {
        let file = PathBuf::from(dir).join("devpage-inspect.png");
        browser.screenshot("#inspect", &file).await;
    }
    let headers = browser.text("#proxy-headers").await;
    assert!(
        headers.contains("x-portvakt-consumer-orgno: 123456789")
            && headers.contains(&format!("x-portvakt-scopes: {READ}")),
        "{headers}"
    );
    let refused = proxy_verdict(&browser, &token, "POST", "/api/v1/orders").await;
    assert!(
        refused.contains("Not forwarded: 403 insufficient_scope"),
        "{refused}"
    );
    assert!(refused.contains("line 57"), "{refused}");

    // Accessible: every form control has a label; readable in a narrow window.
    let unlabelled = browser
        .script(
            "return Array.from(document.querySelectorAll('input, select, textarea')).filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.id || e.name);",
            json!([]),
        )
        .await;
    assert_eq!(unlabelled, json!([]), "controls without a label");
    browser
        .post("/window/rect", json!({"width": 380, "height": 900}))
        .await;
    let overflow = browser
        .script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            json!([]),
        )
        .await;
    let wide = browser
        .script(
            "const w = document.documentElement.clientWidth; return Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > w + 0.5 && !(e.parentElement && e.parentElement.closest('.scroll'))).map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));",
            json!([]),
        )
        .await;
    assert_eq!(
        overflow,
        json!(0),
        "the page scrolls sideways in a narrow window: {wide}"
    );

    // No request to any host but the page's own: every request the browser sent (the
    // performance log has one Network.requestWillBeSent per request, also for those CSP or
    // the resolver refused) and every resource it loaded.
    let log = browser
        .post("/se/log", json!({"type": "performance"}))
        .await;
    let mut urls: Vec<String> = Vec::new();
    for entry in log.as_array().unwrap() {
        let message: Value = serde_json::from_str(entry["message"].as_str().unwrap()).unwrap();
        if message["message"]["method"] == json!("Network.requestWillBeSent") {
            urls.push(
                message["message"]["params"]["request"]["url"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    let loaded = browser
        .script(
            "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href]);",
            json!([]),
        )
        .await;
    urls.extend(
        loaded
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap().to_owned()),
    );
    for wanted in [
        "/dev/page/app.js",
        "/dev/page/app.css",
        "/dev/page/grants",
        "/dev/page/mint",
        "/dev/page/inspect",
    ] {
        assert!(
            urls.iter().any(|u| u == &format!("{origin}{wanted}")),
            "{wanted} is not among the requests seen, so the check below would prove nothing: {urls:?}"
        );
    }
    let elsewhere: Vec<&String> = urls
        .iter()
        .filter(|u| !(u.as_str() == origin || u.starts_with(&format!("{origin}/"))))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "requests to other hosts: {elsewhere:?}"
    );
    let console = browser.post("/se/log", json!({"type": "browser"})).await;
    let violations: Vec<&Value> = console
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("Content Security Policy"))
        })
        .collect();
    assert!(violations.is_empty(), "CSP violations: {violations:?}");

    browser.quit().await;
}

// --- Plain HTTP ----------------------------------------------------------------------------

const PAGE_PATHS: [&str; 4] = [
    "/",
    "/dev/page/app.js",
    "/dev/page/app.css",
    "/dev/page/grants",
];

#[tokio::test]
async fn outside_development_mode_there_is_no_page() {
    // Configured mode (an issuer that is not running: serve starts and retries). The local
    // issuer's flags would be refused here (tests/serve.rs), so none is given.
    let api = free_port();
    let _configured = spawn(
        &args(&["serve", "--listen"])
            .into_iter()
            .chain([format!("127.0.0.1:{api}")])
            .collect::<Vec<_>>(),
        &[(
            "MASKINPORTEN_ISSUER",
            format!("http://127.0.0.1:{}/", free_port()),
        )],
    );
    wait_for_status(&format!("http://127.0.0.1:{api}/healthz"), 200, BOOT).await;
    for path in PAGE_PATHS {
        assert_eq!(
            status(&format!("http://127.0.0.1:{api}{path}")).await,
            Some(404),
            "{path}"
        );
    }
    let mint = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{api}/dev/page/mint"))
        .json(&json!({"orgno": GRANTED, "scopes": [READ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(mint.status(), 404);

    // A strict issuer behaves like Maskinporten: no page.
    let strict = free_port();
    let _strict = spawn(
        &args(&["issuer", "--strict", "--listen"])
            .into_iter()
            .chain([format!("127.0.0.1:{strict}")])
            .collect::<Vec<_>>(),
        &[],
    );
    let well_known = format!("http://127.0.0.1:{strict}/.well-known/oauth-authorization-server");
    wait_for_status(&well_known, 200, BOOT).await;
    for path in PAGE_PATHS {
        assert_eq!(
            status(&format!("http://127.0.0.1:{strict}{path}")).await,
            Some(404),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_issuer_serves_the_page_with_its_security_headers() {
    let port = free_port();
    let _issuer = spawn(
        &args(&["issuer", "--listen"])
            .into_iter()
            .chain([format!("127.0.0.1:{port}")])
            .collect::<Vec<_>>(),
        &[],
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_for_status(&format!("{base}/"), 200, BOOT).await;
    let page = reqwest::get(format!("{base}/")).await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'self'; style-src 'self'"),
        "{csp}"
    );
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    // No inline script or style, nothing from elsewhere.
    assert!(
        !html.contains("<style") && !html.contains(" style="),
        "inline style"
    );
    assert!(!html.contains("<script>"), "inline script");
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(attribute) {
            let value = &html[at + attribute.len()..];
            assert!(
                value.starts_with('/') || value.starts_with('#'),
                "{attribute}{}",
                &value[..40.min(value.len())]
            );
        }
    }
    assert!(html.contains(r#"<script src="/dev/page/app.js" defer></script>"#));

    // The issuer's page mints with its own development shortcut and inspects against its keys.
    let client = reqwest::Client::new();
    let minted = post_json(
        &client,
        &format!("{base}/dev/page/mint"),
        json!({"orgno": GRANTED, "scopes": [READ]}),
    )
    .await;
    assert_eq!(minted["ok"], json!(true), "{minted}");
    assert_eq!(
        minted["curl"],
        json!([]),
        "no sidecar, no proxy: no curl line"
    );
    let bearer = format!("Bearer {}", minted["token"].as_str().unwrap());
    let inspected = post_json(
        &client,
        &format!("{base}/dev/page/inspect"),
        json!({"token": bearer}),
    )
    .await;
    assert_eq!(inspected["inspection"]["valid"], json!(true), "{inspected}");
    let proxy_test = client
        .post(format!("{base}/dev/page/inspect"))
        .json(&json!({"token": "x.y.z", "route": {"kind": "proxy", "method": "GET", "path": "/"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(proxy_test.status(), 400);
    assert!(
        proxy_test
            .text()
            .await
            .unwrap()
            .contains("no proxy policy is loaded")
    );

    // Refused: another Host (DNS rebinding), a form post, another origin.
    let rebound = client
        .get(format!("{base}/dev/page/grants"))
        .header("host", format!("attacker.example:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 421);
    let form = client
        .post(format!("{base}/dev/page/mint"))
        .header("content-type", "text/plain")
        .body(r#"{"orgno": "123456789", "scopes": ["nav:arbeid:some.scope.read"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    let cross = client
        .post(format!("{base}/dev/page/mint"))
        .header("origin", "http://attacker.example")
        .json(&json!({"orgno": GRANTED, "scopes": [READ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    // The issuer's own endpoints are untouched.
    assert_eq!(status(&format!("{base}/jwk")).await, Some(200));
    assert_eq!(status(&format!("{base}/nothing")).await, Some(404));
}
