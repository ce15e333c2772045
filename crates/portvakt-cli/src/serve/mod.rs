//! `portvakt serve`: the sidecar. The introspection API, health and readiness probes, metrics,
//! and (with `--upstream`) the enforcing reverse proxy.
//!
//! With no `MASKINPORTEN_*` variable set it runs in development mode: a local Maskinporten is
//! started in-process from `./nais.yaml` (else `examples/nais.yaml`) and tokens are validated
//! against it, so `cargo run --release -- serve` works on a fresh machine.

pub mod introspect;
pub mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Args;
use portvakt::{Config, ConfigBuilder, Readiness, Validator};
use tokio::net::TcpListener;

use self::introspect::AppState;
use self::metrics::Metrics;

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
    /// Development mode only: the manifest whose grants the local issuer enforces
    /// (default ./nais.yaml, else examples/nais.yaml).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Development mode only: where the local issuer listens.
    #[arg(long, default_value = DEFAULT_DEV_ISSUER)]
    pub dev_issuer_listen: String,
    /// Enforcing reverse proxy: the upstream API (http://127.0.0.1:PORT).
    #[arg(long, env = "PORTVAKT_UPSTREAM", requires = "policy")]
    pub upstream: Option<String>,
    /// Enforcing reverse proxy: the route policy file (TOML, see examples/policy.toml).
    #[arg(long, env = "PORTVAKT_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Enforcing reverse proxy: where the proxy listens.
    #[arg(long, env = "PORTVAKT_PROXY_LISTEN", default_value = "127.0.0.1:7167")]
    pub proxy_listen: String,
    /// Check the policy file and exit (0 valid, 1 invalid).
    #[arg(long, requires = "policy")]
    pub check_policy: bool,
    /// Memory budget of the verified-token cache, in bytes (0 disables it).
    #[arg(long, env = "PORTVAKT_TOKEN_CACHE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub token_cache_bytes: usize,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    #[arg(long, default_value = "10s", value_parser = parse_seconds)]
    pub shutdown_timeout: Duration,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let digits = text.strip_suffix('s').unwrap_or(text);
    digits
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("`{text}` is not a number of seconds like 10s"))
}

/// Runs the sidecar until SIGTERM/SIGINT. Exit 2 on configuration errors.
pub async fn run(args: ServeArgs) -> ExitCode {
    if args.check_policy {
        return proxy_check(&args);
    }
    let dev = !Config::env_is_set();
    let mut dev_issuer = None;
    let builder = if dev {
        match start_dev_issuer(&args).await {
            Ok((builder, issuer)) => {
                dev_issuer = issuer;
                builder
            }
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        }
    } else {
        match ConfigBuilder::from_env() {
            Ok(builder) => builder,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let config = match builder.cache_bytes(args.token_cache_bytes).build() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let validator = match Validator::new(config) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Give the issuer a moment, so a configuration mismatch stops start-up with a clear
    // message; an unreachable issuer does not: we serve, answer /readyz 503, and keep trying.
    match validator.wait_until_ready(Duration::from_secs(3)).await {
        Readiness::Misconfigured { reason } => {
            eprintln!("error: {reason}");
            return ExitCode::from(2);
        }
        Readiness::NotReady { reason } => {
            tracing::warn!(%reason, "issuer keys not available yet; serving and retrying");
        }
        Readiness::Ready { keys, .. } => tracing::info!(keys, "issuer keys loaded"),
    }

    let state = AppState {
        validator: validator.clone(),
        metrics: Metrics::new(),
    };
    let listener = match bind(&args.listen, "--listen / BIND_ADDRESS").await {
        Ok(l) => l,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let probe_listener = match &args.probe_listen {
        Some(addr) => match bind(addr, "--probe-listen / PROBE_BIND_ADDRESS").await {
            Ok(l) => Some(l),
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let proxy = match proxy_setup(&args, &state).await {
        Ok(proxy) => proxy,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };

    let api_addr = local_addr(&listener);
    if dev {
        print_dev_banner(
            api_addr,
            dev_issuer
                .as_ref()
                .map(|(issuer, grants)| (issuer.issuer_url(), grants.as_slice())),
        );
    }
    tracing::info!(listen = %api_addr, "portvakt sidecar listening");

    let shutdown = shutdown_signal();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    servers.spawn(serve_until(
        listener,
        api_router(state.clone()),
        stop_rx.clone(),
    ));
    if let Some(probe) = probe_listener {
        servers.spawn(serve_until(
            probe,
            probe_router(state.clone()),
            stop_rx.clone(),
        ));
    }
    if let Some((proxy_listener, proxy_state)) = proxy {
        tracing::info!(listen = %local_addr(&proxy_listener), upstream = ?args.upstream, "enforcing proxy listening");
        let mut stop = stop_rx.clone();
        servers.spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            };
            if let Err(e) = crate::proxy::serve(proxy_listener, proxy_state, stopped).await {
                tracing::error!(%e, "proxy stopped");
            }
        });
    }

    shutdown.await;
    tracing::info!("shutting down: finishing requests in flight");
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(args.shutdown_timeout, async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(timeout = ?args.shutdown_timeout, "requests still in flight at the shutdown deadline; stopping");
    }
    if let Some((issuer, _)) = dev_issuer {
        let _ = issuer.shutdown().await;
    }
    ExitCode::SUCCESS
}

async fn bind(addr: &str, what: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} ({what}): {e}"))
}

fn local_addr(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

async fn serve_until(
    listener: TcpListener,
    router: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use axum::serve::ListenerExt as _;
    // Small JSON answers: send them at once rather than waiting for Nagle.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!(%e, "server stopped");
    }
}

/// The API listener: introspection, OpenAPI, probes and metrics.
pub fn api_router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/introspect", post(introspect::introspect))
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

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match state.validator.readiness() {
        Readiness::Ready { keys, age } => (
            StatusCode::OK,
            axum::Json(
                serde_json::json!({"ready": true, "keys": keys, "key_age_seconds": age.as_secs()}),
            ),
        )
            .into_response(),
        Readiness::NotReady { reason } | Readiness::Misconfigured { reason } => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"ready": false, "reason": reason})),
        )
            .into_response(),
    }
}

async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
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

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// A scope of the development issuer and an organization it is granted to, for the banner.
struct GrantExample {
    scope: String,
    orgno: Option<String>,
}

/// The development issuer and a summary of its grants, for the banner.
type DevIssuer = (portvakt_issuer::RunningIssuer, Vec<GrantExample>);

/// Starts the local issuer in-process (or finds one already on the address) and returns the
/// validator configuration that trusts it.
async fn start_dev_issuer(args: &ServeArgs) -> Result<(ConfigBuilder, Option<DevIssuer>), String> {
    let manifest_path = args
        .manifest
        .clone()
        .or_else(crate::issuer_source::default_manifest)
        .ok_or_else(|| {
            "development mode needs a NAIS manifest for the local issuer, and neither ./nais.yaml nor examples/nais.yaml exists; pass --manifest FILE, or set MASKINPORTEN_* to validate against a real issuer".to_owned()
        })?;
    let manifest = portvakt_manifest::Manifest::from_path(&manifest_path).map_err(|e| {
        format!(
            "development mode needs a NAIS manifest for the local issuer: {e}; pass --manifest FILE, or set MASKINPORTEN_* to validate against a real issuer"
        )
    })?;
    let config = portvakt_issuer::IssuerConfig::from_manifest(&manifest).map_err(|e| {
        format!(
            "{e}; see `portvakt manifest check {}`",
            manifest_path.display()
        )
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
    match portvakt_issuer::Issuer::bind(args.dev_issuer_listen.as_str(), config).await {
        Ok(running) => {
            let builder = Config::builder().well_known_url(running.well_known_url().to_string());
            Ok((builder, Some((running, grants))))
        }
        Err(portvakt_issuer::IssuerError::Bind { source, .. })
            if source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            let url = format!("http://{}/", args.dev_issuer_listen);
            tracing::warn!(issuer = %url, "the development issuer's address is in use; validating against the issuer already listening there (e.g. `portvakt issuer`)");
            Ok((Config::builder().issuer(url), None))
        }
        Err(e) => Err(format!(
            "cannot start the local issuer on {}: {e}",
            args.dev_issuer_listen
        )),
    }
}

fn print_dev_banner(api: SocketAddr, issuer: Option<(&str, &[GrantExample])>) {
    let mut text = String::new();
    text.push_str("\nportvakt serve: development mode (no MASKINPORTEN_* variables set)\n");
    match issuer {
        Some((url, grants)) => {
            text.push_str(&format!("  local Maskinporten  {url}\n"));
            for GrantExample { scope, orgno } in grants {
                match orgno {
                    Some(orgno) => {
                        text.push_str(&format!("    scope {scope}  (granted to e.g. {orgno})\n"))
                    }
                    None => text.push_str(&format!("    scope {scope}  (no consumers)\n")),
                }
            }
        }
        None => text.push_str(&format!(
            "  using the local Maskinporten already running at http://{DEFAULT_DEV_ISSUER}/\n"
        )),
    }
    text.push_str(&format!(
        "  introspection       http://{api}/api/v1/introspect\n"
    ));
    text.push_str(&format!(
        "  health / readiness  http://{api}/healthz  http://{api}/readyz\n"
    ));
    text.push_str(&format!("  metrics             http://{api}/metrics\n\n"));
    let example = issuer.and_then(|(_, grants)| grants.iter().find(|g| g.orgno.is_some()));
    if let Some(GrantExample {
        scope,
        orgno: Some(orgno),
    }) = example
    {
        text.push_str("Try it (in another terminal):\n");
        text.push_str(&format!(
            "  TOKEN=$(cargo run --release -q -- token --scope {scope} --orgno {orgno})\n"
        ));
        text.push_str(&format!(
            "  curl -s http://{api}/api/v1/introspect -H 'Content-Type: application/json' -d \"{{\\\"identity_provider\\\":\\\"maskinporten\\\",\\\"token\\\":\\\"$TOKEN\\\"}}\"\n\n"
        ));
    }
    eprint!("{text}");
}

fn proxy_check(args: &ServeArgs) -> ExitCode {
    let Some(path) = &args.policy else {
        eprintln!("error: --check-policy needs --policy FILE");
        return ExitCode::from(2);
    };
    match crate::proxy::check_policy(path) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(report) => {
            eprint!("{report}");
            ExitCode::from(1)
        }
    }
}

/// With `--upstream`: the proxy's listener and state, checked before anything is served.
async fn proxy_setup(
    args: &ServeArgs,
    state: &AppState,
) -> Result<Option<(TcpListener, crate::proxy::ProxyState)>, String> {
    let (Some(upstream), Some(policy)) = (&args.upstream, &args.policy) else {
        return Ok(None);
    };
    let config = crate::proxy::ProxyConfig::load(upstream, policy)?;
    let proxy_state = crate::proxy::ProxyState::new(
        state.validator.clone(),
        std::sync::Arc::clone(&state.metrics),
        config,
    )
    .map_err(|e| e.to_string())?;
    let listener = bind(&args.proxy_listen, "--proxy-listen / PORTVAKT_PROXY_LISTEN").await?;
    Ok(Some((listener, proxy_state)))
}
