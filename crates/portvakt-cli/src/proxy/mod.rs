//! The enforcing reverse proxy: every request is checked against a route policy
//! ([`routes::PolicyFile`]) and its token validated before it reaches the upstream API.
//!
//! ```text
//! client ──► portvakt proxy (--proxy-listen) ──► upstream (--upstream http://127.0.0.1:8080)
//!              │ 1. strict path check (400)
//!              │ 2. first matching route, else the policy's default (403 on deny)
//!              │ 3. Bearer token validated against the route's scopes/consumers (401/403/503)
//!              │ 4. identity headers set, hop-by-hop headers removed, forwarded (502/504)
//! ```
//!
//! ## What the upstream receives
//!
//! The request as sent, with the proxy's header rules applied in a stated order: hop-by-hop
//! headers and `Expect` removed, every client-sent `x-portvakt-*` and method-override header
//! removed (from trailers too), the identity headers set on routes that validated a token,
//! `Host` (the request target's host; over HTTP/2 as `:authority`), `X-Forwarded-For` and
//! `X-Forwarded-Proto`. The rules, their order and the identity headers are in [`headers`].
//! A body of unknown length goes to an HTTP/1.1 upstream chunked, also with a GET or HEAD.
//!
//! ## Upstream connections
//!
//! The upstream is the application in the same pod, so it is reached over plain HTTP (an
//! `https://` upstream is refused at start-up). HTTP/1.1 by default, or HTTP/2 with prior
//! knowledge ([`ProxyConfig::upstream_http2`]). Each worker thread keeps its own connections
//! alive (`pool`): at most [`ProxyConfig::pool_max_idle_per_host`] idle ones, closed after
//! [`ProxyConfig::pool_idle_timeout`]; a connection is reused as soon as the upstream's answer
//! has been read to its end (while busy, the connections take turns; after a quiet second, the
//! most recently used goes first: `pool`'s documentation says why), and a request that a
//! kept-alive connection could not start (the upstream closed it while idle) goes again on
//! another; at most [`ProxyConfig::max_in_flight`] requests are in flight to the upstream at
//! once (more wait, within the request timeout). The
//! [`ProxyConfig::request_timeout`] runs from the moment the request is authorized until the
//! upstream's response headers arrive (including the time to send the request body); the
//! response body then streams without a deadline. Timeout: 504; connection refused or broken:
//! 502; both with a JSON body.
//!
//! ## Worker threads
//!
//! With [`ProxyConfig::workers`] `N` above 1 (`portvakt serve` takes one per core,
//! `--proxy-workers`), the proxy runs on `N` threads of its own, each a single-threaded Tokio
//! runtime with its own accept loop on a clone of the one listening socket and its own upstream
//! connection pool. A connection is served, start to end, by the thread that accepted it: its
//! requests, their upstream exchanges and the answers never cross threads, so no thread wakes
//! another. A work-stealing runtime moved each exchange between threads, which cost a futex
//! wake and a context switch per hop: on 2 cores a quarter of the proxy's CPU, at the same
//! throughput per core (docs/BENCHMARKS.md). Shared by all threads: the validator and its
//! cache, the metrics, the policy, [`ProxyConfig::max_in_flight`] and
//! [`ProxyConfig::max_connections`] (with the choice of which idle connection gives way).
//! Each new connection is served by the thread serving the fewest, whichever thread accepted
//! it (the accept loops race for the shared socket, and the winner of a burst would otherwise
//! keep it all; see `Admission::with_workers` in [`crate::serve::listener`]). The cost: the
//! threads share out connections, not work, so a thread with many slow upstream exchanges does
//! not hand its other connections to an idle one.
//!
//! The worker threads run under Linux's `SCHED_BATCH` policy ([`ProxyConfig::scheduling`],
//! `--proxy-scheduling`): a worker woken by a packet does not take the CPU from the thread
//! running there, but waits for that thread's turn to end (on an idle CPU it runs at once), by
//! when more events are ready for it. Under the normal policy, on a busy machine, each worker
//! woke for every event, so a sleep and a wake-up were paid per request: with `SCHED_BATCH`
//! the same binary served 1.2x the requests at 32 connections, with less than half the p99,
//! and 1.5x at 1000 (see [`scheduling`]).
//!
//! ## Client connections
//!
//! [`serve`] uses the sidecar's accept loop ([`crate::serve::listener`]): HTTP/1.1 and HTTP/2
//! with prior knowledge; a client must send its request headers within
//! [`ProxyConfig::header_read_timeout`] (default 30 s, also the idle time after which an
//! HTTP/1.1 keep-alive connection is closed) and at most [`ProxyConfig::max_connections`]
//! (default 4096) connections are served at once, so slow or silent clients cannot exhaust
//! memory or file descriptors.
//!
//! ## Answers
//!
//! | status | when                                                     | `WWW-Authenticate`                                         |
//! |--------|----------------------------------------------------------|------------------------------------------------------------|
//! | 400    | path refused (`..`, `//`, `%2F`, `;` ...)                | none                                                       |
//! | 400    | `Host` repeated, or missing from an HTTP/1.1 request     | none                                                       |
//! | 400    | a method with a lower-case letter (`delete`)             | none                                                       |
//! | 400    | malformed `Authorization` (two headers, empty token ...) | `Bearer realm="...", error="invalid_request", ...`         |
//! | 401    | no token (or another scheme such as `Basic`)             | `Bearer realm="..."`                                       |
//! | 401    | token invalid (signature, expiry, issuer ...)            | `Bearer realm="...", error="invalid_token", error_description="..."` |
//! | 403    | scope missing / consumer not allowed                     | `Bearer realm="...", error="insufficient_scope", error_description="...", scope="..."` |
//! | 403    | a `deny = true` route, or no route and `default = "deny"` | none                                                      |
//! | 413    | body over [`ProxyConfig::max_body_bytes`], declared (before it is read) or streamed (when it gets there); connection closed | none |
//! | 503    | signing keys not fetched yet (`Retry-After: 5`)          | none                                                       |
//!
//! Tokens are never logged.
//!
//! ## Metrics
//!
//! `portvakt_requests_total{endpoint="proxy", outcome=...}` with outcome `forwarded` (token
//! validated), `public` (forwarded without a token), `missing_token`, `bad_request` (path or
//! `Authorization` malformed), `too_large` (body over the limit), `invalid_token`,
//! `forbidden` (scope or consumer), `denied` (deny route or default), `unavailable`, `bad_gateway`, `gateway_timeout`; every validation in
//! `portvakt_validations_total` and its duration histogram; the upstream's time to response
//! headers in `portvakt_upstream_duration_seconds`.
//!
//! ## Use
//!
//! ```no_run
//! # async fn run(validator: portvakt::Validator) -> Result<(), String> {
//! use portvakt_cli::proxy::{self, ProxyConfig, ProxyState};
//! use portvakt_cli::serve::metrics::Metrics;
//!
//! let config = ProxyConfig::load("http://127.0.0.1:8080", "policy.toml".as_ref())?;
//! let state = ProxyState::new(validator, Metrics::new(), config).map_err(|e| e.to_string())?;
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:7167").await.map_err(|e| e.to_string())?;
//! proxy::serve(listener, state, std::future::pending()).await.map_err(|e| e.to_string())
//! # }
//! ```

pub(crate) mod answer;
pub mod headers;
pub mod pool;
pub mod routes;
pub mod scheduling;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::uri::Authority;
use http::{HeaderMap, Version};
use hyper::body::Incoming;
use portvakt::bearer::{self, Reason, Rejection};
use portvakt::{Validator, VerifiedToken};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use crate::serve::listener::{self, ListenerConfig};
use crate::serve::metrics::Metrics;
use pool::{HeldBody, Lease, Pool, PoolConfig};
use routes::{Access, PolicyError, PolicyFile, RequestPath};
pub use scheduling::Scheduling;

/// Settings for the proxy. [`ProxyConfig::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The upstream: `http://host:port`, without path, query or credentials.
    pub upstream: Url,
    /// The routes and what they require.
    pub policy: PolicyFile,
    /// From authorization to the upstream's response headers (default 30 s).
    pub request_timeout: Duration,
    /// To open a TCP connection to the upstream (default 2 s).
    pub connect_timeout: Duration,
    /// Idle keep-alive connections kept to the upstream, per worker thread (default 1024, as
    /// many as [`max_in_flight`](Self::max_in_flight) allows in use): every connection the
    /// busiest moment needed goes back to the pool, instead of being closed and opened again
    /// while the load lasts; idle ones close after [`pool_idle_timeout`](Self::pool_idle_timeout).
    /// With 64, 256 client connections on two workers closed and reopened 12,959 upstream
    /// connections in 6 s and served 0.78x the requests (docs/BENCHMARKS.md).
    pub pool_max_idle_per_host: usize,
    /// Idle connections are closed after this long (default 60 s).
    pub pool_idle_timeout: Duration,
    /// Requests in flight to the upstream at once (default 1024); more wait for a slot.
    pub max_in_flight: usize,
    /// Speak HTTP/2 with prior knowledge to the upstream instead of HTTP/1.1 (default false).
    pub upstream_http2: bool,
    /// Pass the client's `Host` on (default true); false sends the upstream's address.
    pub preserve_host: bool,
    /// How long a client may take to send its request headers (default 30 s); also how long an
    /// idle HTTP/1.1 keep-alive connection is kept. Used by [`serve`].
    pub header_read_timeout: Duration,
    /// Client connections served at once (default 4096); when all are taken, the longest idle
    /// one gives way to a new client. Used by [`serve`].
    pub max_connections: usize,
    /// The largest request body forwarded (default: no limit; the upstream's own applies).
    /// A request declaring a larger `Content-Length` is answered 413 before any of its body
    /// is read or anything is sent upstream; a body of undeclared length is cut at the limit
    /// (the upstream sees the request aborted, the client gets 413).
    pub max_body_bytes: Option<u64>,
    /// Threads the proxy runs on (default 1: the caller's runtime). With more, [`serve`] runs
    /// one single-threaded runtime per thread, each accepting from the same listening socket
    /// and keeping its own upstream connections, so a request, its upstream exchange and its
    /// answer stay on one thread (see "Worker threads" above). `portvakt serve` uses one per
    /// core (`--proxy-workers`).
    pub workers: usize,
    /// The kernel's scheduling policy for those threads (default [`Scheduling::Batch`]; see
    /// "Worker threads" above). With one worker the proxy runs on the caller's runtime, whose
    /// threads keep theirs.
    pub scheduling: Scheduling,
}

impl ProxyConfig {
    /// A configuration with the default timeouts and limits.
    pub fn new(upstream: Url, policy: PolicyFile) -> ProxyConfig {
        ProxyConfig {
            upstream,
            policy,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(2),
            pool_max_idle_per_host: 1024,
            pool_idle_timeout: Duration::from_secs(60),
            max_in_flight: 1024,
            upstream_http2: false,
            preserve_host: true,
            header_read_timeout: listener::DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: listener::DEFAULT_MAX_CONNECTIONS,
            max_body_bytes: None,
            workers: 1,
            scheduling: Scheduling::Batch,
        }
    }
}

/// The proxy cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The upstream URL is not `http://`.
    #[error(
        "upstream `{0}` is not http://: the upstream is the application in the same pod, reached over loopback; use http://127.0.0.1:PORT"
    )]
    UpstreamScheme(String),
    /// The upstream URL has a path, query, fragment or credentials.
    #[error(
        "upstream `{0}` must be only scheme, host and port (requests keep their own paths); use e.g. http://127.0.0.1:8080"
    )]
    UpstreamNotOrigin(String),
    /// The upstream URL has no host.
    #[error("upstream `{0}` has no host; use e.g. http://127.0.0.1:8080")]
    UpstreamNoHost(String),
    /// A limit is zero.
    #[error("{0} must be at least 1")]
    ZeroLimit(&'static str),
    /// A timeout is zero.
    #[error("{0} must be longer than zero")]
    ZeroTimeout(&'static str),
}

impl ProxyConfig {
    /// Reads `--upstream` and `--policy` into a configuration with the default limits, logging
    /// the policy's warnings. The error is the text to print: every policy error with its
    /// `file:line:col`, or what is wrong with the upstream.
    pub fn load(upstream: &str, policy: &Path) -> Result<ProxyConfig, String> {
        let upstream = parse_upstream(upstream)?;
        if !portvakt::is_loopback_url(&upstream) {
            tracing::warn!(
                upstream = %upstream,
                "the upstream is not on loopback: requests go to it in clear text, with their bearer tokens and the identity headers it authorizes on; the upstream is meant to be the application in the same pod (http://127.0.0.1:PORT), or one on a network only the proxy reaches"
            );
        }
        let policy = PolicyFile::from_path(policy).map_err(|e| e.to_string())?;
        for warning in policy.warnings() {
            tracing::warn!(file = %warning.file, line = warning.line, column = warning.column, "{}", warning.message);
        }
        Ok(ProxyConfig::new(upstream, policy))
    }
}

/// Why `portvakt serve --check-policy` found no usable policy. Each displays as the whole
/// report to print on stderr, lines ending in a newline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyCheckError {
    /// The file has errors: every error and warning as `file:line:col: ...` (exit 1).
    #[error("{0}")]
    Invalid(String),
    /// The file cannot be read, or is too large, with a help line (exit 2, as `manifest check`
    /// exits for a file it cannot read).
    #[error("{0}")]
    Unreadable(String),
}

/// `portvakt serve --check-policy`: `Ok` with the warnings and one line per route (print to
/// stdout, exit 0), or the report of what is wrong ([`PolicyCheckError`]).
pub fn check_policy(path: &Path) -> Result<String, PolicyCheckError> {
    match PolicyFile::from_path(path) {
        Ok(policy) => Ok(policy.summary()),
        Err(e @ PolicyError::Invalid { .. }) => Err(PolicyCheckError::Invalid(format!("{e}\n"))),
        Err(e) => Err(PolicyCheckError::Unreadable(format!(
            "error: {e}\n  = help: pass the route policy (TOML), e.g. --policy examples/policy.toml\n"
        ))),
    }
}

/// Parses and checks an `--upstream` value.
pub fn parse_upstream(text: &str) -> Result<Url, String> {
    if !text.contains("://") {
        return Err(format!(
            "upstream `{text}` has no scheme; write http://{text}"
        ));
    }
    let url = Url::parse(text).map_err(|e| format!("upstream `{text}` is not a URL: {e}"))?;
    upstream_authority(&url).map_err(|e| e.to_string())?;
    Ok(url)
}

fn upstream_authority(url: &Url) -> Result<Authority, ProxyError> {
    let shown = url.as_str().to_owned();
    if url.scheme() != "http" {
        return Err(ProxyError::UpstreamScheme(shown));
    }
    if !matches!(url.path(), "" | "/")
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(ProxyError::UpstreamNotOrigin(shown));
    }
    let Some(host) = url.host_str() else {
        return Err(ProxyError::UpstreamNoHost(shown));
    };
    let port = url.port_or_known_default().unwrap_or(80);
    Authority::try_from(format!("{host}:{port}")).map_err(|_| ProxyError::UpstreamNoHost(shown))
}

/// The proxy's shared state: validator, metrics, policy and the upstream connection pool.
/// Cheap to clone.
#[derive(Clone)]
pub struct ProxyState(Arc<Inner>);

impl std::fmt::Debug for ProxyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyState")
            .field("upstream", self.0.upstream())
            .field("routes", &self.0.policy.routes().len())
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Inner {
    validator: Validator,
    metrics: Arc<Metrics>,
    policy: PolicyFile,
    realm: Arc<str>,
    /// This worker's upstream connections (and the upstream's address: `pool.config()`).
    pool: Pool,
    in_flight: Arc<Semaphore>,
    request_timeout: Duration,
    header_rules: headers::HeaderRules,
    max_body_bytes: Option<u64>,
    listener: ListenerConfig,
    workers: usize,
    scheduling: Scheduling,
}

impl Inner {
    /// The upstream's `host:port`.
    fn upstream(&self) -> &Authority {
        &self.pool.config().authority
    }
}

impl ProxyState {
    /// Checks the configuration and builds the upstream client. Must be called inside a Tokio
    /// runtime.
    pub fn new(
        validator: Validator,
        metrics: Arc<Metrics>,
        config: ProxyConfig,
    ) -> Result<ProxyState, ProxyError> {
        let authority = upstream_authority(&config.upstream)?;
        if config.max_in_flight == 0 {
            return Err(ProxyError::ZeroLimit("max_in_flight"));
        }
        if config.max_connections == 0 {
            return Err(ProxyError::ZeroLimit("max_connections"));
        }
        if config.workers == 0 {
            return Err(ProxyError::ZeroLimit("workers"));
        }
        for (name, timeout) in [
            ("request_timeout", config.request_timeout),
            ("connect_timeout", config.connect_timeout),
            ("header_read_timeout", config.header_read_timeout),
        ] {
            if timeout.is_zero() {
                return Err(ProxyError::ZeroTimeout(name));
            }
        }
        let pool_config = PoolConfig {
            authority,
            connect_timeout: config.connect_timeout,
            max_idle: config.pool_max_idle_per_host,
            idle_timeout: config.pool_idle_timeout,
            http2: config.upstream_http2,
        };
        Ok(ProxyState(Arc::new(Inner {
            validator,
            metrics,
            realm: Arc::from(config.policy.realm()),
            policy: config.policy,
            pool: Pool::new(pool_config),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            request_timeout: config.request_timeout,
            header_rules: headers::HeaderRules {
                upstream_version: if config.upstream_http2 {
                    Version::HTTP_2
                } else {
                    Version::HTTP_11
                },
                preserve_host: config.preserve_host,
            },
            max_body_bytes: config.max_body_bytes,
            listener: ListenerConfig {
                header_read_timeout: config.header_read_timeout,
                max_connections: config.max_connections,
            },
            workers: config.workers,
            scheduling: config.scheduling,
        })))
    }

    /// The same proxy for another worker thread: everything shared (validator and its cache,
    /// metrics, policy, the in-flight limit) but the upstream connections, which are driven
    /// by the runtime that opened them. Call it on the thread that will use it.
    fn for_worker(&self) -> ProxyState {
        let mut inner = Inner::clone(&self.0);
        inner.pool = Pool::new(inner.pool.config().clone());
        ProxyState(Arc::new(inner))
    }

    /// The policy in force.
    pub fn policy(&self) -> &PolicyFile {
        &self.0.policy
    }

    /// The threads [`serve`] runs on, and their scheduling policy: `None` with one worker,
    /// which runs on the caller's runtime and leaves its threads' policy as it is.
    pub fn threads(&self) -> (usize, Option<Scheduling>) {
        let workers = self.0.workers;
        (workers, (workers > 1).then_some(self.0.scheduling))
    }
}

/// Serves the proxy on `listener` until `shutdown` completes, then lets in-flight requests
/// finish: HTTP/1.1 and HTTP/2 (prior knowledge) from clients, the header read timeout and
/// connection cap of the [`ProxyConfig`], `TCP_NODELAY` on every accepted connection (responses
/// are streamed in pieces, which Nagle's algorithm would delay), and the peer address for
/// `X-Forwarded-For`. See [`crate::serve::listener`].
///
/// With [`ProxyConfig::workers`] above 1, the connections are served on that many threads of
/// their own, each a single-threaded runtime (see "Worker threads" above); `serve` returns
/// once every one of them has drained.
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    state: ProxyState,
    shutdown: F,
) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let admission =
        listener::Admission::with_workers(state.0.listener.max_connections, state.0.workers);
    if state.0.workers <= 1 {
        return serve_worker(listener, state, &admission, shutdown).await;
    }
    let socket = listener.into_std()?;
    let stop = Arc::new(tokio::sync::watch::Sender::new(false));
    let mut workers = Vec::with_capacity(state.0.workers);
    for n in 0..state.0.workers {
        let socket = socket.try_clone()?;
        let state = state.clone();
        let admission = Arc::clone(&admission);
        let stop_all = StopAll(Arc::clone(&stop));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("portvakt-proxy-{n}"))
            .spawn(move || {
                if let Err(e) = state.0.scheduling.apply_to_current_thread() {
                    warn_scheduling_refused(state.0.scheduling, &e);
                }
                let mut stopped = stop_all.0.subscribe();
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|runtime| {
                        runtime.block_on(async move {
                            let listener = tokio::net::TcpListener::from_std(socket)?;
                            let stopped = async move {
                                let _ = stopped.wait_for(|stopped| *stopped).await;
                            };
                            serve_worker(listener, state.for_worker(), &admission, stopped).await
                        })
                    });
                let _ = done_tx.send(result);
                // A worker that ends (its runtime could not start, it failed, it panicked)
                // stops them all: `stop_all` is dropped here, or while unwinding.
                drop(stop_all);
            });
        if let Err(e) = spawned {
            stop.send_replace(true);
            return Err(e);
        }
        workers.push(done_rx);
    }
    drop(socket);
    let mut finished = std::pin::pin!(futures_util::future::join_all(workers));
    let results = tokio::select! {
        results = finished.as_mut() => results,
        () = shutdown => {
            // Every worker drains its connections, then ends.
            stop.send_replace(true);
            finished.await
        }
    };
    results
        .into_iter()
        .find_map(|result| result.ok().and_then(Result::err))
        .map_or(Ok(()), Err)
}

/// Says once per process, not once per worker thread, that the kernel refused the policy.
fn warn_scheduling_refused(scheduling: Scheduling, error: &std::io::Error) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            policy = scheduling.name(),
            error = %error,
            "the kernel refused the proxy's worker threads their scheduling policy; they run under the normal policy (a seccomp profile may forbid sched_setscheduler); set PORTVAKT_PROXY_SCHEDULING=normal to ask for nothing"
        );
    }
}

/// Tells every worker thread to stop when dropped.
struct StopAll(Arc<tokio::sync::watch::Sender<bool>>);

impl Drop for StopAll {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

/// One accept loop of the proxy, on the current runtime.
async fn serve_worker<F>(
    listener: tokio::net::TcpListener,
    state: ProxyState,
    admission: &Arc<listener::Admission>,
    shutdown: F,
) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let limits = state.0.listener;
    // Every request goes to `handle`: as a fast route, not through a router's fallback, which
    // would clone a boxed service and box a future per request (see listener::FastRoute).
    // `handle`'s own future, not one awaiting it: each `async` level keeps its arguments (the
    // request among them) for as long as it lives (see `pool::Pool::send_from`).
    let handler = listener::FastRoute::any(move |request, peer| {
        Box::pin(handle(state.clone(), request.map(Body::new), peer))
    });
    listener::serve_handler_admitted(listener, handler, limits, admission, shutdown).await
}

/// Counts a request under `proxy` with this outcome.
fn count(inner: &Inner, outcome: &'static str) {
    inner.metrics.request("proxy", outcome);
}

/// Answers one request: checked, authorized and forwarded, or refused.
///
/// A function returning an `async` block, not an `async fn`: an `async fn` copies its
/// arguments into its body's own variables, and the future then holds the request twice
/// (240 bytes each) for as long as it lives; the block uses what it captured in place.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would keep a second copy of the request (see above)"
)]
fn handle(
    state: ProxyState,
    request: Request,
    peer: SocketAddr,
) -> impl Future<Output = Response> + Send {
    async move {
        let inner = &*state.0;
        // Methods are case-sensitive (RFC 9110 section 9.1), and routes name them upper-case:
        // `delete` would pass a `DELETE` deny route, and frameworks that upper-case the method
        // before routing (Django; ASP.NET Core compares it ignoring case) would run it.
        if request
            .method()
            .as_str()
            .bytes()
            .any(|b| b.is_ascii_lowercase())
        {
            tracing::debug!(method = %request.method(), "proxy: method refused");
            count(inner, "bad_request");
            return answer::bad_method(request.method());
        }
        if let Some(problem) = host_problem(&request) {
            tracing::debug!(method = %request.method(), problem, "proxy: Host refused");
            count(inner, "bad_request");
            return answer::bad_host(problem);
        }
        if let Some(limit) = inner.max_body_bytes
            && hyper::body::Body::size_hint(request.body()).lower() > limit
        {
            tracing::debug!(method = %request.method(), limit, "proxy: declared body too large");
            count(inner, "too_large");
            return answer::too_large(limit, request.version());
        }
        let path = match RequestPath::parse(request.uri().path()) {
            Ok(path) => path,
            Err(e) => {
                tracing::debug!(method = %request.method(), error = %e, "proxy: path refused");
                count(inner, "bad_request");
                return answer::bad_path(&e);
            }
        };
        let access = inner.policy.access(request.method(), &path);
        let identity = match access {
            Access::Deny => {
                tracing::debug!(method = %request.method(), path = path.as_str(), "proxy: no route");
                count(inner, "denied");
                return answer::denied();
            }
            Access::Public => None,
            Access::Token(policy) => match authorize(inner, request.headers(), policy).await {
                Ok(token) => Some(token),
                Err(response) => return response,
            },
        };
        let validated = identity.is_some();
        let version = request.version();
        // Kept here, once, while it is sent: see `pool::Pool::send_from`.
        let mut upstream = Some(upstream_request(inner, request, identity.as_ref(), peer));
        drop(identity);
        let (response, held) = match send(inner, &mut upstream, version).await {
            Ok(sent) => sent,
            Err(failed) => return failed,
        };
        count(inner, if validated { "forwarded" } else { "public" });
        client_response(response, held)
    }
}

/// What is wrong with the request's `Host`, if anything: RFC 9112 section 3.2 has a server
/// answer 400 to an HTTP/1.1 request without one or with more than one, and an HTTP/2 request
/// (which names its host in `:authority`) has at most one too. Forwarded, two `Host` fields
/// let the proxy and an upstream that routes by host (tenants, virtual hosts) read different
/// ones.
fn host_problem(request: &Request) -> Option<&'static str> {
    let mut hosts = request.headers().get_all(http::header::HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return Some("the request has more than one Host header; send exactly one");
    }
    if first.is_none() && request.version() == Version::HTTP_11 {
        return Some("an HTTP/1.1 request must have a Host header (RFC 9112 section 3.2)");
    }
    None
}

/// Authorizes the request through the library's seam ([`bearer::authorize`]: the token read,
/// validated and checked against the route's policy, as the tower layer and the extractor do),
/// counting the outcome under the library's class of the refusal, or answers the refusal.
async fn authorize(
    inner: &Inner,
    headers: &HeaderMap,
    policy: &portvakt::Policy,
) -> Result<VerifiedToken, Response> {
    let started = Instant::now();
    let reason = match bearer::authorize(&inner.validator, headers, policy).await {
        Ok(verified) => {
            inner.metrics.validation("valid", started.elapsed());
            return Ok(verified);
        }
        Err(reason) => reason,
    };
    if let Reason::Token(e) = &reason {
        inner.metrics.validation(e.code(), started.elapsed());
        tracing::debug!(code = e.code(), error = %e, "proxy: token refused");
    } else {
        tracing::debug!(code = reason.code(), "proxy: no usable bearer token");
    }
    count(inner, reason.class().as_str());
    Err(answer::rejection(
        &Rejection::new(reason).with_realm(Arc::clone(&inner.realm)),
    ))
}

/// The request the upstream gets: the header rules applied ([`headers`]), the upstream's HTTP
/// version. The path and query are unchanged; the pool points the URI at the upstream.
///
/// A body that may end in trailers (an HTTP/2 client's, or an HTTP/1.1 client's chunked one)
/// has its trailers filtered as the headers are ([`headers::TrailerRules`]), and goes to an
/// HTTP/1.1 upstream chunked when its length is not known (see [`chunked_to_http1`]). The
/// common path, a request with a known body length (or none) from an HTTP/1.1 client, pays
/// one branch on two flags the header rules found in their one look at the names.
fn upstream_request(
    inner: &Inner,
    request: Request,
    identity: Option<&VerifiedToken>,
    peer: SocketAddr,
) -> http::Request<Body> {
    let (mut parts, mut body) = request.into_parts();
    let client = headers::ClientSide {
        version: parts.version,
        authority: parts.uri.authority(),
        ip: Some(peer.ip()),
    };
    let framing = inner
        .header_rules
        .to_upstream(&mut parts.headers, client, identity);
    if (framing.chunked || parts.version == Version::HTTP_2)
        && !hyper::body::Body::is_end_stream(&body)
    {
        if inner.header_rules.upstream_version == Version::HTTP_11 {
            chunked_to_http1(&mut parts.headers, &body, framing);
        }
        body = Body::new(headers::TrailerRules::new(
            body,
            headers::HeaderRules::trailers_to_upstream,
        ));
    }
    parts.version = inner.header_rules.upstream_version;
    let body = match inner.max_body_bytes {
        Some(limit) => Body::new(http_body_util::Limited::new(
            body,
            usize::try_from(limit).unwrap_or(usize::MAX),
        )),
        None => body,
    };
    http::Request::from_parts(parts, body)
}

/// For an HTTP/1.1 upstream, sets `Transfer-Encoding: chunked` on a request whose body has
/// not ended when its length is not known, or when it announces trailers (`Trailer`), which
/// only a chunked body can carry. hyper's client decides the framing from the body unless the
/// request sets it: it sends a GET, HEAD or CONNECT body of unknown length as no body at all
/// (`Content-Length: 0` framing, the body dropped), and a body of known length with
/// `Content-Length`, dropping its trailers. With the header set it sends the body chunked,
/// and without `Content-Length` (`Client::set_length` in hyper's `proto/h1/role.rs`).
///
/// Forwarded rather than refused: a GET with a body is unusual but valid (RFC 9110 section
/// 9.3.1 gives it no meaning, but neither forbids it), the client sent it, and an upstream
/// that reads it (Elasticsearch's search, some GraphQL servers) must see what the client
/// sent; an upstream that does not want it refuses it itself, as it would unproxied.
fn chunked_to_http1(headers: &mut HeaderMap, body: &Body, framing: headers::Framing) {
    if framing.trailer || hyper::body::Body::size_hint(body).exact().is_none() {
        headers.insert(
            http::header::TRANSFER_ENCODING,
            http::HeaderValue::from_static("chunked"),
        );
    }
}

/// Sends the request (taken out of `request` as it is sent) once an in-flight slot is free,
/// all within the request timeout, and times the upstream; the failures are answered 502 and
/// 504.
async fn send(
    inner: &Inner,
    request: &mut Option<http::Request<Body>>,
    version: Version,
) -> Result<(http::Response<Incoming>, Upstream), Response> {
    let started = Instant::now();
    let sent = tokio::time::timeout(inner.request_timeout, async {
        let permit = Arc::clone(&inner.in_flight)
            .acquire_owned()
            .await
            .map_err(|_| None)?;
        let (response, lease) = inner.pool.send_from(request).await.map_err(Some)?;
        Ok::<_, Option<pool::Failure>>((
            response,
            Upstream {
                _lease: lease,
                _permit: permit,
            },
        ))
    })
    .await;
    inner.metrics.upstream(started.elapsed());

    match sent {
        Ok(Ok(sent)) => Ok(sent),
        Ok(Err(Some(error))) if error.is_body_too_large() => {
            // A body of undeclared length cut at the limit: the client's doing, answered as a
            // declared one is, not counted or logged as the upstream's failure.
            let limit = inner.max_body_bytes.unwrap_or_default();
            tracing::debug!(limit, "proxy: body over the limit while it streamed");
            count(inner, "too_large");
            Err(answer::too_large(limit, version))
        }
        Ok(Err(error)) => {
            count(inner, "bad_gateway");
            let description = match &error {
                Some(e) if e.is_connect() => {
                    "the upstream is unreachable (connection refused or failed)"
                }
                _ => "the upstream connection failed before it answered",
            };
            match &error {
                Some(e) => {
                    tracing::warn!(upstream = %inner.upstream(), error = %e, "proxy: upstream failed");
                }
                None => tracing::warn!(upstream = %inner.upstream(), "proxy: upstream failed"),
            }
            Err(answer::bad_gateway(description))
        }
        Err(_) => {
            count(inner, "gateway_timeout");
            tracing::warn!(upstream = %inner.upstream(), timeout = ?inner.request_timeout, "proxy: upstream timed out");
            Err(answer::gateway_timeout(inner.request_timeout))
        }
    }
}

/// The upstream's answer as the client gets it: the header rules for answers applied (to its
/// trailers too, one branch per frame of the body), the version set back to HTTP/1.1 (the
/// listener answers in the client's own version), the body streamed, holding the in-flight
/// slot and the upstream connection until it ends.
fn client_response(response: http::Response<Incoming>, upstream: Upstream) -> Response {
    let (mut parts, body) = response.into_parts();
    headers::HeaderRules::to_client(&mut parts.headers);
    parts.version = Version::HTTP_11;
    let body = headers::TrailerRules::new(
        HeldBody::new(body, upstream),
        headers::HeaderRules::trailers_to_client,
    );
    Response::from_parts(parts, Body::new(body))
}

/// What an exchange holds until the upstream's answer has been read to its end ([`HeldBody`]):
/// an in-flight slot and the connection.
struct Upstream {
    _lease: Lease,
    _permit: OwnedSemaphorePermit,
}
