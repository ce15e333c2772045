//! `portvakt serve`: the sidecar. The introspection API, health and readiness probes, metrics,
//! and (with `--upstream`) the enforcing reverse proxy.
//!
//! With no `MASKINPORTEN_*` variable set it runs in development mode: a local Maskinporten is
//! started in-process from `./nais.yaml` (else `examples/nais.yaml`) and tokens are validated
//! against it, so `cargo run --release -- serve` works on a fresh machine.
//!
//! Development mode never starts by accident in production ([`choose_mode`]):
//! - when any `MASKINPORTEN_*` variable is set (e.g. only the consumer's
//!   `MASKINPORTEN_CLIENT_ID`) but none of `MASKINPORTEN_WELL_KNOWN_URL`, `MASKINPORTEN_ISSUER`,
//!   `MASKINPORTEN_JWKS_URI` has a value, `serve` refuses to start (exit 2) and says what is set
//!   and what is missing;
//! - in Kubernetes (`KUBERNETES_SERVICE_HOST` set) with no `MASKINPORTEN_*` variable, it
//!   refuses too, unless `--dev` (or `PORTVAKT_DEV=true`) asks for development mode
//!   explicitly: the local issuer mints tokens for anyone who can reach its loopback port.

#[cfg(unix)]
#[allow(unsafe_code)]
pub mod child;
mod error;
pub mod introspect;
pub mod listener;
pub mod metrics;
pub mod upstream_ready;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Args;
use portvakt::{ConfigBuilder, Readiness, Validator};
use tokio::net::TcpListener;

pub use self::error::ServeError;
use self::introspect::AppState;
use self::listener::ListenerConfig;
use self::metrics::Metrics;
use crate::duration::{parse_duration, parse_positive_duration};

/// The NAIS sidecar's address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7164";
/// Where the development issuer listens.
pub const DEFAULT_DEV_ISSUER: &str = "127.0.0.1:7166";

/// `portvakt serve` options. Validation settings come from the `MASKINPORTEN_*` environment.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address of the introspection API, probes and metrics.
    #[arg(long, env = "BIND_ADDRESS", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// Also serve /healthz, /readyz and /metrics here (NAIS injects 0.0.0.0:7165), keeping the
    /// API itself on loopback.
    #[arg(long, env = "PROBE_BIND_ADDRESS")]
    pub probe_listen: Option<String>,
    /// Development mode: run the local issuer even in Kubernetes (KUBERNETES_SERVICE_HOST set),
    /// where it is otherwise refused. Never needed on a laptop.
    #[arg(long, env = "PORTVAKT_DEV", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub dev: bool,
    /// Development mode only: the manifest whose grants the local issuer enforces
    /// (default ./nais.yaml, else examples/nais.yaml).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Development mode only: where the local issuer listens (default 127.0.0.1:7166).
    #[arg(long, value_name = "ADDR")]
    pub dev_issuer_listen: Option<String>,
    /// Enforcing reverse proxy: the upstream API (http://127.0.0.1:PORT).
    #[arg(long, env = "PORTVAKT_UPSTREAM", requires = "policy")]
    pub upstream: Option<String>,
    /// Enforcing reverse proxy: the route policy file (TOML, see examples/policy.toml). Needs
    /// --upstream, except with --check-policy.
    #[arg(long, env = "PORTVAKT_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Enforcing reverse proxy: where the proxy listens.
    #[arg(long, env = "PORTVAKT_PROXY_LISTEN", default_value = "127.0.0.1:7167")]
    pub proxy_listen: String,
    /// Enforcing reverse proxy: speak HTTP/2 with prior knowledge (h2c) to the upstream, e.g.
    /// for gRPC, instead of HTTP/1.1.
    #[arg(long, env = "PORTVAKT_UPSTREAM_HTTP2", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new(), requires = "upstream")]
    pub upstream_http2: bool,
    /// Enforcing reverse proxy: how long the upstream may take, from authorization to its
    /// response headers, before the client gets 504 (e.g. 30s, 500ms, 2m).
    #[arg(long, env = "PORTVAKT_UPSTREAM_TIMEOUT", default_value = "30s", value_parser = parse_positive_duration, requires = "upstream")]
    pub upstream_timeout: Duration,
    /// Enforcing reverse proxy: requests in flight to the upstream at once; more wait for a
    /// slot (within --upstream-timeout).
    #[arg(long, env = "PORTVAKT_MAX_IN_FLIGHT", default_value_t = 1024, value_parser = parse_limit, requires = "upstream")]
    pub max_in_flight: usize,
    /// Enforcing reverse proxy: the largest request body forwarded, in bytes; a request
    /// declaring more is answered 413 before its body is read (default: no limit).
    #[arg(long, env = "PORTVAKT_MAX_BODY_BYTES", value_parser = parse_limit, requires = "upstream")]
    pub max_body_bytes: Option<usize>,
    /// Enforcing reverse proxy: threads it runs on, each serving its own connections start to
    /// end (default: one per core).
    #[arg(long, env = "PORTVAKT_PROXY_WORKERS", value_parser = parse_limit, requires = "upstream")]
    pub proxy_workers: Option<usize>,
    /// Enforcing reverse proxy: the Linux scheduling policy of its threads: `batch`
    /// (SCHED_BATCH: a woken thread waits for the running one's turn instead of preempting
    /// it, so it finds several requests ready; 1.2x the throughput under load) or `normal`
    /// (the kernel's default; a woken thread preempts CPU-bound neighbours sooner).
    #[arg(long, env = "PORTVAKT_PROXY_SCHEDULING", default_value = "batch", value_parser = crate::proxy::Scheduling::parse, requires = "upstream")]
    pub proxy_scheduling: crate::proxy::Scheduling,
    /// Check the policy file and exit (0 valid, 1 invalid, 2 usage error or unreadable file).
    #[arg(long, requires = "policy")]
    pub check_policy: bool,
    /// Memory budget of the verified-token cache, in bytes (about 2 KiB per token; 0 disables
    /// it).
    #[arg(long, env = "PORTVAKT_TOKEN_CACHE_BYTES", default_value_t = portvakt::DEFAULT_CACHE_BYTES)]
    pub token_cache_bytes: usize,
    /// Every listener: how long a client may take to send its request headers (and how long an
    /// idle HTTP/1.1 keep-alive connection stays open); then the connection is closed.
    #[arg(long, env = "PORTVAKT_HEADER_READ_TIMEOUT", default_value = "30s", value_parser = parse_positive_duration)]
    pub header_read_timeout: Duration,
    /// Every listener: connections served at once, per listener; more wait in the accept
    /// backlog until one closes.
    #[arg(long, env = "PORTVAKT_MAX_CONNECTIONS", default_value_t = listener::DEFAULT_MAX_CONNECTIONS, value_parser = parse_limit)]
    pub max_connections: usize,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT (e.g. 10s); with
    /// a command after `--`, also how long the app may then take to exit before SIGKILL.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// The app to run behind the proxy, as portvakt's child process: `-- java -jar app.jar`.
    /// portvakt forwards SIGTERM/SIGINT (after draining) and SIGHUP to it, reaps orphaned
    /// processes, and exits with its status; when it exits, portvakt drains and exits.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

impl ServeArgs {
    /// The limits every listener is served with.
    pub fn listener_config(&self) -> ListenerConfig {
        ListenerConfig {
            header_read_timeout: self.header_read_timeout,
            max_connections: self.max_connections,
        }
    }
}

/// A count of at least 1.
fn parse_limit(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a whole number like 1024")),
    }
}

/// Where tokens are validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Against the issuer the `MASKINPORTEN_*` variables name.
    Configured,
    /// Against the local issuer started in-process.
    Development,
}

/// The validation variables; one of the first two is needed.
const VALIDATION_VARS: [&str; 3] = [
    portvakt::ENV_WELL_KNOWN_URL,
    portvakt::ENV_ISSUER,
    portvakt::ENV_JWKS_URI,
];

/// Decides between the configured issuer and development mode, from the `MASKINPORTEN_*`
/// variables that are present (`name`, `value is non-empty`), whether `KUBERNETES_SERVICE_HOST`
/// is set, and `--dev`. The error says what is set, what is missing, and what to do; it never
/// contains a value (`MASKINPORTEN_CLIENT_JWK` is a private key).
pub fn choose_mode(
    maskinporten_vars: &[(String, bool)],
    in_kubernetes: bool,
    dev_flag: bool,
) -> Result<Mode, String> {
    if maskinporten_vars.is_empty() {
        if in_kubernetes && !dev_flag {
            return Err(
                "refusing to start in development mode in Kubernetes: no MASKINPORTEN_* variable is set, and development mode validates against a local issuer that mints tokens for anyone who can reach it; enable Maskinporten for the app (spec.maskinporten.enabled: true in nais.yaml, which makes NAIS inject MASKINPORTEN_WELL_KNOWN_URL), or pass --dev (PORTVAKT_DEV=true) if a local issuer in the cluster is really what you want".to_owned(),
            );
        }
        return Ok(Mode::Development);
    }
    let names: Vec<&str> = maskinporten_vars.iter().map(|(n, _)| n.as_str()).collect();
    if dev_flag {
        return Err(format!(
            "--dev (PORTVAKT_DEV) asks for development mode, but {} {} set; development mode runs only without MASKINPORTEN_* variables: unset them, or drop --dev to validate against the configured issuer",
            names.join(", "),
            if names.len() == 1 { "is" } else { "are" },
        ));
    }
    let usable = maskinporten_vars
        .iter()
        .any(|(name, has_value)| *has_value && VALIDATION_VARS.contains(&name.as_str()));
    if usable {
        return Ok(Mode::Configured);
    }
    let empty: Vec<&str> = maskinporten_vars
        .iter()
        .filter(|(name, has_value)| !has_value && VALIDATION_VARS.contains(&name.as_str()))
        .map(|(name, _)| name.as_str())
        .collect();
    let mut message = format!(
        "{} {} set but none of {}",
        names.join(", "),
        if names.len() == 1 { "is" } else { "are" },
        VALIDATION_VARS.join(", "),
    );
    if !empty.is_empty() {
        message.push_str(&format!(
            " has a value ({} {} empty)",
            empty.join(", "),
            if empty.len() == 1 { "is" } else { "are" },
        ));
    }
    message.push_str(&format!(
        ": set {} (NAIS injects it when spec.maskinporten.enabled is true), or {} for an explicit issuer; development mode (the local issuer) runs only when no MASKINPORTEN_* variable is set",
        portvakt::ENV_WELL_KNOWN_URL,
        portvakt::ENV_ISSUER,
    ));
    Err(message)
}

/// [`choose_mode`] for this process's environment.
pub(crate) fn mode_from_env(dev_flag: bool) -> Result<Mode, String> {
    let mut vars: Vec<(String, bool)> = std::env::vars_os()
        .filter_map(|(name, value)| {
            let name = name.to_string_lossy();
            name.starts_with("MASKINPORTEN_")
                .then(|| (name.into_owned(), !value.is_empty()))
        })
        .collect();
    vars.sort();
    let in_kubernetes = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|v| !v.is_empty());
    choose_mode(&vars, in_kubernetes, dev_flag)
}

/// Runs the sidecar until SIGTERM/SIGINT (or, with `-- CMD`, until the app exits), or with
/// `--check-policy` checks the policy and returns. `Ok` holds the exit status: 0, or the app's
/// ([`child::ChildExit::status`]). The error says why it could not start; `main` prints it and
/// decides the exit code.
pub async fn run(args: ServeArgs) -> Result<u8, ServeError> {
    if args.check_policy {
        return check_policy_only(&args).map(|()| 0);
    }
    // Registered before anything starts: a SIGTERM or SIGINT that arrives while starting (the
    // local issuer's key, the first key fetch, up to 3 s) is answered with a clean stop once
    // listening. Without a handler yet, SIGTERM's default action killed serve without draining
    // and without stopping the app; as PID 1 in a container, it was ignored.
    let shutdown = shutdown_signal();
    Sidecar::start(args).await?.serve(shutdown).await
}

/// The sidecar once everything that can fail at start-up has succeeded: validator, listeners,
/// proxy, and in development mode the local issuer.
struct Sidecar {
    args: ServeArgs,
    state: AppState,
    listener: TcpListener,
    probe_listener: Option<TcpListener>,
    proxy: Option<(TcpListener, crate::proxy::ProxyState)>,
    dev_issuer: Option<DevIssuer>,
    /// The command after `--`, running.
    app: Option<App>,
}

impl Sidecar {
    /// Checks the arguments and environment, starts the validator (and the local issuer in
    /// development mode) and binds every listener.
    async fn start(args: ServeArgs) -> Result<Sidecar, ServeError> {
        if args.policy.is_some() && args.upstream.is_none() {
            return Err(ServeError::PolicyNeedsUpstream);
        }
        let dev = mode_from_env(args.dev).map_err(ServeError::Mode)? == Mode::Development;
        if !dev {
            // Flags of the local issuer would be ignored against a real one: say so instead.
            for (flag, given) in [
                ("--manifest", args.manifest.is_some()),
                ("--dev-issuer-listen", args.dev_issuer_listen.is_some()),
            ] {
                if given {
                    return Err(ServeError::Mode(format!(
                        "{flag} is for development mode, where serve runs its own local issuer; MASKINPORTEN_* is set, so tokens are validated against that issuer: remove {flag}, or unset the MASKINPORTEN_* variables to develop locally"
                    )));
                }
            }
        }
        let (builder, dev_issuer) = if dev {
            let (builder, issuer) = start_dev_issuer(&args).await?;
            (builder, Some(issuer))
        } else {
            (ConfigBuilder::from_env()?, None)
        };
        let validator = start_validator(builder, &args).await?;
        let mut state = AppState {
            validator,
            metrics: Metrics::new(),
            upstream: None,
        };
        let listener = bind(&args.listen, "--listen / BIND_ADDRESS").await?;
        let probe_listener = match &args.probe_listen {
            Some(addr) => Some(bind(addr, "--probe-listen / PROBE_BIND_ADDRESS").await?),
            None => None,
        };
        let proxy = proxy_setup(&args, &state).await?;
        if proxy.is_some() {
            state.upstream = args
                .upstream
                .as_deref()
                .and_then(|url| url::Url::parse(url).ok())
                .and_then(|url| upstream_ready::UpstreamReadiness::new(&url));
        }
        // The app starts once everything portvakt serves is bound, so a configuration error
        // stops start-up before the app runs.
        let app = start_app(&args.command)?;
        Ok(Sidecar {
            args,
            state,
            listener,
            probe_listener,
            proxy,
            dev_issuer,
            app,
        })
    }

    /// Serves every listener until SIGTERM/SIGINT or the app's exit, then drains them within
    /// `--shutdown-timeout`, stops the local issuer, and stops the app (the same signal, then
    /// within `--shutdown-timeout` SIGKILL). Listening comes first, so /healthz answers at once
    /// however slow the issuer is; a misconfiguration the issuer reveals in the first seconds
    /// ([`await_issuer`]) still stops the sidecar with that error. `Ok` holds the exit status:
    /// the app's, or 0.
    async fn serve(self, shutdown: impl Future<Output = i32>) -> Result<u8, ServeError> {
        let (args, state, listener) = (self.args, self.state, self.listener);
        let dev_issuer = self.dev_issuer;
        let api_addr = local_addr(&listener);
        if let Some(issuer) = &dev_issuer {
            print_dev_banner(api_addr, issuer);
        }
        tracing::info!(listen = %api_addr, "portvakt sidecar listening");

        let mut shutdown = std::pin::pin!(shutdown);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut servers = tokio::task::JoinSet::new();
        let limits = args.listener_config();
        let mut router = api_router(state.clone());
        if let Some(issuer) = &dev_issuer {
            let proxy = self.proxy.as_ref().map(|(proxy_listener, proxy_state)| {
                crate::devpage::ProxyTarget {
                    url: format!("http://{}", local_addr(proxy_listener)),
                    policy: proxy_state.policy().clone(),
                }
            });
            router = router.merge(dev_page(issuer, &state, api_addr, proxy));
        }
        let api = serve_router(
            listener,
            router,
            state.clone(),
            limits,
            stopped(stop_rx.clone()),
        );
        servers.spawn(log_failure(api));
        if let Some(probe) = self.probe_listener {
            let router = probe_router(state.clone());
            let probes = listener::serve(probe, router, limits, stopped(stop_rx.clone()));
            servers.spawn(log_failure(probes));
        }
        if let Some((proxy_listener, proxy_state)) = self.proxy {
            let (workers, scheduling) = proxy_state.threads();
            tracing::info!(
                listen = %local_addr(&proxy_listener),
                upstream = ?args.upstream,
                workers,
                scheduling = scheduling.map_or("the main runtime's", crate::proxy::Scheduling::name),
                "enforcing proxy listening"
            );
            let proxy = crate::proxy::serve(proxy_listener, proxy_state, stopped(stop_rx.clone()));
            servers.spawn(log_failure(proxy));
        }
        // Told to stop while the first keys are awaited: stop now, not after the wait.
        let early = tokio::select! {
            awaited = await_issuer(&state.validator) => match awaited {
                Ok(()) => None,
                Err(e) => {
                    let _ = stop_tx.send(true);
                    return Err(e);
                }
            },
            signal = &mut shutdown => Some(signal),
        };

        let app = self.app;
        let signal = match early {
            Some(signal) => signal,
            None => tokio::select! {
                signal = &mut shutdown => signal,
                exit = app_exited(app.as_ref()) => {
                    tracing::info!(%exit, "the app exited; stopping");
                    STOP_SIGNAL
                }
            },
        };
        tracing::info!("shutting down: finishing requests in flight");
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(args.shutdown_timeout, async {
            while servers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(timeout = ?args.shutdown_timeout, "requests still in flight at the shutdown deadline; stopping");
        }
        if let Some(DevIssuer {
            running: Some(issuer),
            ..
        }) = dev_issuer
        {
            let _ = issuer.shutdown().await;
        }
        Ok(match app {
            Some(app) => stop_app(app, signal, args.shutdown_timeout).await,
            None => 0,
        })
    }
}

/// SIGTERM and SIGINT, passed on to the app (their numbers where there are no Unix signals).
#[cfg(unix)]
const STOP_SIGNAL: i32 = libc::SIGTERM;
#[cfg(unix)]
const INTERRUPT_SIGNAL: i32 = libc::SIGINT;
#[cfg(not(unix))]
const STOP_SIGNAL: i32 = 15;
#[cfg(not(unix))]
const INTERRUPT_SIGNAL: i32 = 2;

#[cfg(unix)]
type App = child::Child;
#[cfg(not(unix))]
type App = std::convert::Infallible;

/// Starts the command after `--`, if there is one.
fn start_app(command: &[OsString]) -> Result<Option<App>, ServeError> {
    if command.is_empty() {
        return Ok(None);
    }
    #[cfg(unix)]
    return child::Child::spawn(command)
        .map(Some)
        .map_err(ServeError::App);
    #[cfg(not(unix))]
    Err(ServeError::App(
        "running an app after `--` needs a Unix system".to_owned(),
    ))
}

/// Completes when the app exits; never without one.
async fn app_exited(app: Option<&App>) -> String {
    match app {
        #[cfg(unix)]
        Some(app) => app.exited().await.to_string(),
        #[cfg(not(unix))]
        Some(never) => match *never {},
        None => std::future::pending().await,
    }
}

/// Signals the app (unless it has exited), waits within `timeout`, and returns its status.
async fn stop_app(app: App, signal: i32, timeout: Duration) -> u8 {
    #[cfg(unix)]
    return app.stop(signal, timeout).await.status();
    #[cfg(not(unix))]
    match app {}
}

/// Builds the validator; its keys are fetched in the background.
async fn start_validator(
    builder: ConfigBuilder,
    args: &ServeArgs,
) -> Result<Validator, ServeError> {
    let config = builder.cache_bytes(args.token_cache_bytes).build()?;
    Ok(Validator::new(config)?)
}

/// Gives the issuer a moment, so a configuration mismatch stops start-up with a clear
/// message; an unreachable issuer does not: we serve, answer /readyz 503, and keep trying.
async fn await_issuer(validator: &Validator) -> Result<(), ServeError> {
    match validator.wait_until_ready(Duration::from_secs(3)).await {
        Readiness::Misconfigured { reason } => {
            return Err(ServeError::IssuerMisconfigured(Box::new(reason)));
        }
        Readiness::NotReady { reason } => {
            tracing::warn!(%reason, "issuer keys not available yet; serving and retrying");
        }
        Readiness::Ready { keys, .. } => tracing::info!(keys, "issuer keys loaded"),
    }
    Ok(())
}

async fn bind(addr: &str, flag: &'static str) -> Result<TcpListener, ServeError> {
    listener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen {
            addr: addr.to_owned(),
            flag,
            source,
        })
}

fn local_addr(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Completes once `stop` says so (or its sender is gone).
async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

async fn log_failure(served: impl Future<Output = std::io::Result<()>>) {
    if let Err(e) = served.await {
        tracing::error!(%e, "server stopped");
    }
}

/// Serves the API listener as `portvakt serve` does until `shutdown` completes, then drains:
/// [`api_router`], with introspection answered ahead of the router
/// ([`listener::FastRoute`]).
pub async fn serve_api<F>(
    listener: TcpListener,
    state: AppState,
    limits: ListenerConfig,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_router(listener, api_router(state.clone()), state, limits, shutdown).await
}

/// [`serve_api`] with `router` (an [`api_router`] with more routes, such as the development
/// page) in place of the plain [`api_router`].
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    state: AppState,
    limits: ListenerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let fast = introspect::fast_route(state);
    listener::serve_with_fast_route(listener, router, fast, limits, shutdown).await
}

/// The API listener: introspection, OpenAPI, probes and metrics.
pub fn api_router(state: AppState) -> Router {
    Router::new()
        .route(introspect::PATH, post(introspect::introspect))
        .route("/api/v1/openapi.json", get(openapi))
        .with_state(state.clone())
        .merge(probe_router(state))
}

/// The probe listener: health, readiness, metrics.
pub fn probe_router(state: AppState) -> Router<()> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> &'static str {
    state.metrics.request("healthz", "ok");
    "ok\n"
}

async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let readiness = state.validator.readiness();
    // The keys first: an upstream that is up does not help while no token can be checked.
    let not_ready = match (readiness.reason(), &state.upstream) {
        (Some(reason), _) => Some(reason.to_string()),
        (None, Some(upstream)) => upstream.check().await.err(),
        (None, None) => None,
    };
    state.metrics.request(
        "readyz",
        if not_ready.is_none() {
            "ready"
        } else {
            "not_ready"
        },
    );
    match (not_ready, readiness) {
        (None, Readiness::Ready { keys, age }) => (
            StatusCode::OK,
            axum::Json(
                serde_json::json!({"ready": true, "keys": keys, "key_age_seconds": age.as_secs()}),
            ),
        )
            .into_response(),
        (reason, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"ready": false, "reason": reason})),
        )
            .into_response(),
    }
}

async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    state.metrics.request("metrics", "ok");
    let text = state.metrics.render(&state.validator);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn openapi(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    state.metrics.request("openapi", "ok");
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

/// Registers for SIGTERM and SIGINT (Ctrl-C) at once, when called, and completes on the first
/// of them with its number (passed on to the app). Registering when called, not when first
/// polled, is the point: the signal is caught from that moment, however long start-up takes.
pub(crate) fn shutdown_signal() -> impl Future<Output = i32> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        // A registration that fails (no signal driver: it does not on Unix with a Tokio
        // runtime) leaves that signal to its default action, as before.
        let mut terminate = signal(SignalKind::terminate()).ok();
        let mut interrupt = signal(SignalKind::interrupt()).ok();
        async fn received(signal: Option<&mut Signal>) {
            match signal {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        async move {
            tokio::select! {
                () = received(interrupt.as_mut()) => INTERRUPT_SIGNAL,
                () = received(terminate.as_mut()) => STOP_SIGNAL,
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        INTERRUPT_SIGNAL
    }
}

/// A scope of the development issuer and an organization it is granted to, for the banner.
struct GrantExample {
    scope: String,
    orgno: Option<String>,
}

/// The development issuer: the one started in-process (`None` when one was already listening
/// on the address), its URL, and a summary of its grants for the banner.
struct DevIssuer {
    running: Option<portvakt_issuer::RunningIssuer>,
    /// Where its grants come from ([`crate::issuer_source::ManifestSource::describe`]).
    manifest_source: String,
    url: String,
    grants: Vec<GrantExample>,
    manifest: std::sync::Arc<portvakt_manifest::Manifest>,
}

/// The development page on the API listener ([`crate::devpage`]); nothing when the listener is
/// not on loopback.
fn dev_page(
    issuer: &DevIssuer,
    state: &AppState,
    api: SocketAddr,
    proxy: Option<crate::devpage::ProxyTarget>,
) -> Router {
    if !crate::devpage::serves_on(api.ip()) {
        tracing::warn!(listen = %api, "the development page is served only on a loopback address; not serving it");
        return Router::new();
    }
    let note = issuer.running.is_none().then(|| {
        format!("the issuer at {} was already running; it enforces the manifest it was started with, which may differ from this one", issuer.url)
    });
    crate::devpage::DevPage {
        manifest: std::sync::Arc::clone(&issuer.manifest),
        issuer_url: issuer.url.clone(),
        validator: state.validator.clone(),
        introspection: Some(format!("http://{api}")),
        proxy,
        served_by: "portvakt serve",
        note,
    }
    .router()
}

/// Starts the local issuer in-process (or finds one already on the address) and returns the
/// validator configuration that trusts it.
async fn start_dev_issuer(args: &ServeArgs) -> Result<(ConfigBuilder, DevIssuer), ServeError> {
    let source = crate::issuer_source::ManifestSource::choose(args.manifest.as_deref());
    let manifest = source
        .load(&portvakt_manifest::CheckOptions::default())
        .map_err(|e| {
            ServeError::DevIssuer(format!(
                "development mode needs a NAIS manifest for the local issuer: {e}; pass --manifest FILE, or set MASKINPORTEN_* to validate against a real issuer"
            ))
        })?;
    let manifest = std::sync::Arc::new(manifest);
    let config = portvakt_issuer::IssuerConfig::from_manifest(&manifest).map_err(|e| {
        ServeError::DevIssuer(format!(
            "{e}; see `portvakt manifest check {}`",
            manifest.file()
        ))
    })?;
    let grants: Vec<GrantExample> = manifest
        .grants()
        .scopes()
        .iter()
        .filter(|g| g.enabled)
        .map(|g| {
            let consumer = if g.accessible_for_all {
                Some("889640782".to_owned())
            } else {
                g.consumers.first().map(|c| c.orgno.clone())
            };
            GrantExample {
                scope: g.scope.clone(),
                orgno: consumer,
            }
        })
        .collect();
    // From the environment, as in configured mode: development mode runs only when no
    // MASKINPORTEN_* variable is set, so this takes PORTVAKT_AUDIENCE and PORTVAKT_ALGORITHMS
    // (checked alike), which would otherwise be ignored here.
    let from_env = ConfigBuilder::from_env()?;
    let listen = args
        .dev_issuer_listen
        .as_deref()
        .unwrap_or(DEFAULT_DEV_ISSUER);
    match portvakt_issuer::Issuer::bind(listen, config).await {
        Ok(running) => {
            let builder = from_env.well_known_url(running.well_known_url().to_string());
            let url = running.issuer_url().to_owned();
            Ok((
                builder,
                DevIssuer {
                    running: Some(running),
                    manifest_source: source.describe(),
                    url,
                    grants,
                    manifest,
                },
            ))
        }
        Err(portvakt_issuer::IssuerError::Bind { source, .. })
            if source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            // The issuer there (e.g. `portvakt issuer`) names itself like this.
            let url = match listen.parse::<SocketAddr>() {
                Ok(addr) => portvakt_issuer::issuer_url_for(addr),
                Err(_) => format!("http://{listen}/"),
            };
            tracing::warn!(issuer = %url, "the development issuer's address is in use; validating against the issuer already listening there (e.g. `portvakt issuer`)");
            Ok((
                from_env.issuer(url.clone()),
                DevIssuer {
                    running: None,
                    manifest_source: String::new(),
                    url,
                    grants: Vec::new(),
                    manifest,
                },
            ))
        }
        Err(e) => Err(ServeError::DevIssuer(format!(
            "cannot start the local issuer on {listen}: {e}"
        ))),
    }
}

/// The development banner: what runs where, and the commands to try it.
fn dev_banner(api: SocketAddr, issuer: &DevIssuer) -> String {
    let url = issuer.url.as_str();
    let mut text = String::new();
    text.push_str("\nportvakt serve: development mode (no MASKINPORTEN_* variables set)\n");
    if issuer.running.is_some() {
        text.push_str(&format!("  local Maskinporten  {url}\n"));
        text.push_str(&format!("    grants from {}\n", issuer.manifest_source));
        for GrantExample { scope, orgno } in &issuer.grants {
            match orgno {
                Some(orgno) => {
                    text.push_str(&format!("    scope {scope}  (granted to e.g. {orgno})\n"))
                }
                None => text.push_str(&format!("    scope {scope}  (no consumers)\n")),
            }
        }
    } else {
        text.push_str(&format!(
            "  using the local Maskinporten already running at {url}\n"
        ));
    }
    text.push_str(&format!(
        "  introspection       http://{api}/api/v1/introspect\n"
    ));
    text.push_str(&format!(
        "  health / readiness  http://{api}/healthz  http://{api}/readyz\n"
    ));
    text.push_str(&format!("  metrics             http://{api}/metrics\n"));
    if crate::devpage::serves_on(api.ip()) {
        text.push_str(&format!("  development page    http://{api}/\n"));
    }
    text.push('\n');
    let example = issuer.grants.iter().find(|g| g.orgno.is_some());
    if let Some(GrantExample {
        scope,
        orgno: Some(orgno),
    }) = example
    {
        // `portvakt token` asks the default address unless told otherwise.
        let issuer_flag = if url == format!("http://{DEFAULT_DEV_ISSUER}/") {
            String::new()
        } else {
            format!(" --issuer {}", url.trim_end_matches('/'))
        };
        text.push_str("Try it (in another terminal):\n");
        text.push_str(&format!(
            "  TOKEN=$(cargo run --release -q -- token --scope {scope} --orgno {orgno}{issuer_flag})\n"
        ));
        text.push_str(&format!(
            "  {}\n\n",
            introspect_curl(&format!("http://{api}"))
        ));
    }
    text
}

/// The `curl` line that introspects `$TOKEN` at the sidecar `api` (`http://ADDR`).
pub fn introspect_curl(api: &str) -> String {
    format!(
        "curl -s {api}/api/v1/introspect -H 'Content-Type: application/json' -d \"{{\\\"identity_provider\\\":\\\"maskinporten\\\",\\\"token\\\":\\\"$TOKEN\\\"}}\""
    )
}

fn print_dev_banner(api: SocketAddr, issuer: &DevIssuer) {
    eprint!("{}", dev_banner(api, issuer));
}

/// `--check-policy`: the report on stdout when the policy is usable, else the error.
fn check_policy_only(args: &ServeArgs) -> Result<(), ServeError> {
    let Some(path) = &args.policy else {
        return Err(ServeError::CheckPolicyNeedsPolicy);
    };
    let report = crate::proxy::check_policy(path).map_err(|e| match e {
        crate::proxy::PolicyCheckError::Invalid(report) => ServeError::PolicyInvalid(report),
        crate::proxy::PolicyCheckError::Unreadable(report) => ServeError::PolicyUnreadable(report),
    })?;
    print!("{report}");
    Ok(())
}

/// With `--upstream`: the proxy's listener and state, checked before anything is served.
async fn proxy_setup(
    args: &ServeArgs,
    state: &AppState,
) -> Result<Option<(TcpListener, crate::proxy::ProxyState)>, ServeError> {
    let (Some(upstream), Some(policy)) = (&args.upstream, &args.policy) else {
        return Ok(None);
    };
    let mut config =
        crate::proxy::ProxyConfig::load(upstream, policy).map_err(ServeError::Proxy)?;
    config.upstream_http2 = args.upstream_http2;
    config.request_timeout = args.upstream_timeout;
    config.max_in_flight = args.max_in_flight;
    config.header_read_timeout = args.header_read_timeout;
    config.max_connections = args.max_connections;
    config.max_body_bytes = args.max_body_bytes.map(|n| n as u64);
    config.scheduling = args.proxy_scheduling;
    config.workers = args.proxy_workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let proxy_state = crate::proxy::ProxyState::new(
        state.validator.clone(),
        std::sync::Arc::clone(&state.metrics),
        config,
    )?;
    let listener = bind(&args.proxy_listen, "--proxy-listen / PORTVAKT_PROXY_LISTEN").await?;
    Ok(Some((listener, proxy_state)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, bool)]) -> Vec<(String, bool)> {
        list.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect()
    }

    #[test]
    fn development_mode_only_without_any_maskinporten_variable() {
        assert_eq!(choose_mode(&[], false, false), Ok(Mode::Development));
        assert_eq!(choose_mode(&[], true, true), Ok(Mode::Development));
        assert!(
            choose_mode(&[], true, false)
                .unwrap_err()
                .starts_with("refusing to start in development mode in Kubernetes")
        );
        for usable in [
            "MASKINPORTEN_WELL_KNOWN_URL",
            "MASKINPORTEN_ISSUER",
            "MASKINPORTEN_JWKS_URI",
        ] {
            let set = vars(&[("MASKINPORTEN_CLIENT_ID", true), (usable, true)]);
            assert_eq!(choose_mode(&set, true, false), Ok(Mode::Configured));
        }
        assert_eq!(
            choose_mode(&vars(&[("MASKINPORTEN_SCOPES", true)]), false, false).unwrap_err(),
            "MASKINPORTEN_SCOPES is set but none of MASKINPORTEN_WELL_KNOWN_URL, MASKINPORTEN_ISSUER, MASKINPORTEN_JWKS_URI: set MASKINPORTEN_WELL_KNOWN_URL (NAIS injects it when spec.maskinporten.enabled is true), or MASKINPORTEN_ISSUER for an explicit issuer; development mode (the local issuer) runs only when no MASKINPORTEN_* variable is set"
        );
        let empty = vars(&[
            ("MASKINPORTEN_ISSUER", false),
            ("MASKINPORTEN_JWKS_URI", false),
        ]);
        assert!(
            choose_mode(&empty, false, false).unwrap_err().starts_with(
                "MASKINPORTEN_ISSUER, MASKINPORTEN_JWKS_URI are set but none of MASKINPORTEN_WELL_KNOWN_URL, MASKINPORTEN_ISSUER, MASKINPORTEN_JWKS_URI has a value (MASKINPORTEN_ISSUER, MASKINPORTEN_JWKS_URI are empty): "
            )
        );
        assert!(
            choose_mode(&vars(&[("MASKINPORTEN_ISSUER", true)]), false, true)
                .unwrap_err()
                .starts_with(
                    "--dev (PORTVAKT_DEV) asks for development mode, but MASKINPORTEN_ISSUER is set"
                )
        );
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit("0"), Err("must be at least 1".to_owned()));
        assert_eq!(parse_limit("8"), Ok(8));
    }

    #[test]
    fn the_banner_names_a_non_default_issuer() {
        let api: SocketAddr = "127.0.0.1:7164".parse().unwrap();
        let issuer = |url: &str| DevIssuer {
            running: None,
            manifest_source: String::new(),
            url: url.to_owned(),
            grants: vec![GrantExample {
                scope: "nav:arbeid:some.scope.read".to_owned(),
                orgno: Some("123456789".to_owned()),
            }],
            manifest: std::sync::Arc::new(portvakt_manifest::Manifest::parse("", "nais.yaml")),
        };
        let banner = dev_banner(api, &issuer("http://127.0.0.1:7166/"));
        assert!(
            banner.contains(
                "  TOKEN=$(cargo run --release -q -- token --scope nav:arbeid:some.scope.read --orgno 123456789)\n"
            ),
            "{banner}"
        );
        let banner = dev_banner(api, &issuer("http://127.0.0.1:9000/"));
        assert!(
            banner.contains(
                "  TOKEN=$(cargo run --release -q -- token --scope nav:arbeid:some.scope.read --orgno 123456789 --issuer http://127.0.0.1:9000)\n"
            ),
            "{banner}"
        );
        assert!(
            banner
                .contains("using the local Maskinporten already running at http://127.0.0.1:9000/"),
            "{banner}"
        );
    }
}
