//! The accept loop behind every listener of `portvakt serve` (API, probes, enforcing proxy).
//!
//! - Listening sockets come from [`bind`], with a backlog of [`LISTEN_BACKLOG`] (4096, not the
//!   128 of `TcpListener::bind`), so a burst of new clients is held by the kernel until the
//!   accept loop takes them instead of losing their SYNs to a second's retransmission.
//! - HTTP/1.1, and HTTP/2 with prior knowledge (h2c), told apart by the client's first bytes.
//! - A client must send its request headers within [`ListenerConfig::header_read_timeout`]
//!   (default 30 s) or the connection is closed without an answer; this also covers the first
//!   bytes of a connection and, on HTTP/1.1, an idle keep-alive connection waiting for its next
//!   request (the time counts from the previous answer), and it holds during a graceful
//!   shutdown too. A slow or silent client (slowloris) cannot hold a connection longer than
//!   that. On HTTP/1.1 one sweep per accept loop checks every connection each tenth of the
//!   timeout (at most each second), instead of a timer per request (see `time_out_idle`), so
//!   such a connection is closed between the timeout and a tenth of it (at most 1 s) later.
//! - At most [`ListenerConfig::max_connections`] connections (default 4096) are served at
//!   once, so memory and file descriptors stay bounded however many clients connect. Idle
//!   connections give way to new clients: when every slot is taken and another client
//!   connects, the connection that has been idle longest is closed to make room. Idle means no
//!   request in flight: a connection that has not finished its first request's headers, an
//!   HTTP/1.1 keep-alive connection between requests, an HTTP/2 connection with no open stream;
//!   and for at least [`MIN_IDLE`] (50 ms), so that a flood of new connections cannot evict
//!   a client in the moment between its connecting and its request.
//!   A request whose answer is still being sent (a streamed proxy response included) is never
//!   cut short this way. The evicted connection is closed at once; one whose request arrived
//!   in the meantime is shut down gracefully instead (HTTP/1.1: after that answer; HTTP/2:
//!   `GOAWAY`), and dropped once idle for [`EVICTION_GRACE`]. Only when no connection is idle does the new client
//!   wait, accepted, until one closes or becomes idle (later ones wait in the kernel's accept
//!   backlog). So
//!   thousands of idle or trickling (slowloris) connections cannot lock well-behaved clients
//!   out; they only push each other out.
//! - An HTTP/1.1 request's headers may take at most [`MAX_HEADER_BYTES`] (64 KiB; more is
//!   answered 431) and 100 header fields (hyper's limit; more is answered 431).
//! - HTTP/2 limits, set explicitly (hyper's defaults shown where they differ): at most
//!   [`H2_MAX_CONCURRENT_STREAMS`] (128; hyper 200) streams open per connection, more are
//!   refused with `REFUSED_STREAM`; a header block of at most [`MAX_HEADER_BYTES`] (64 KiB;
//!   hyper 16 KiB, which a 16 KiB token would not fit) once decoded, counted while
//!   `CONTINUATION` frames arrive, so a `CONTINUATION` flood is cut at that size; at most
//!   [`H2_MAX_PENDING_ACCEPT_RESET_STREAMS`] (20) streams reset by the client before the
//!   server has accepted them, and [`H2_MAX_LOCAL_ERROR_RESET_STREAMS`] (1024) streams the
//!   server had to reset for a protocol error, before the connection is closed with `GOAWAY`
//!   (`ENHANCE_YOUR_CALM`): the rapid-reset attack (CVE-2023-44487) costs the client its
//!   connection. Flow-control windows stay hyper's (1 MiB per stream and per connection, which
//!   bounds what a client can make the server buffer), frames at most 16 KiB, at most 400 KiB
//!   queued for sending per stream.
//! - A client must also read its answers: when a write to it makes no progress for
//!   [`ListenerConfig::header_read_timeout`] (its socket buffer full because it does not read),
//!   the connection is closed. A client that never reads cannot pin a connection, nor the
//!   answer it would not take, for longer than that.
//! - `TCP_NODELAY` on every accepted connection (small answers and streamed pieces would
//!   otherwise wait for Nagle's algorithm).
//! - Accept loops on threads of their own may share one listening socket and its admission
//!   ([`serve_handler_admitted`], [`Admission::with_workers`]: the enforcing proxy's workers);
//!   each new connection is then served by the thread serving the fewest connections,
//!   whichever thread accepted it, so a burst of new clients is not kept by the thread that
//!   happened to win the race for it.
//! - With [`serve_with_fast_route`], one route is answered by a plain function before the
//!   router is consulted (see [`FastRoute`]).
//! - With [`serve_handler`], every request goes to one handler ([`FastRoute::any`]), which is
//!   given the peer's address beside the request (the proxy's `X-Forwarded-For`). Not in the
//!   request's extensions: the first extension allocates a map, its table and the boxed value,
//!   three allocations of every proxied request (callgrind; docs/BENCHMARKS.md).
//! - Graceful shutdown: when the shutdown future completes, no new connection is accepted,
//!   idle connections are closed, requests in flight are finished (HTTP/2 clients get a
//!   `GOAWAY`), and [`serve`] returns once every connection has closed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use futures_util::future::{BoxFuture, Either};
use futures_util::task::AtomicWaker;
use http::Method;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tower::ServiceExt as _;

/// How long a client may take to send a request's headers, by default.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once per listener, by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// How many connections the kernel completes and holds for [`bind`]'s listener before the
/// accept loop takes them (the `listen(2)` backlog; Linux caps it at
/// `net.core.somaxconn`, 4096 by default since Linux 5.4).
///
/// `TcpListener::bind` asks for 128. When more clients than that connect at once (1000 wrk
/// connections; in a pod, every client reconnecting after a deploy), the kernel drops the
/// SYNs beyond it and each dropped client waits for its retransmission: 1 s, then 3 s in all.
/// Measured: 591 dropped SYNs per 1000-connection burst and requests over 2 s
/// (docs/BENCHMARKS.md). nginx asks for 511, Go for `somaxconn`; this asks for as many as
/// [`DEFAULT_MAX_CONNECTIONS`], the connections it serves at once.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `addr` (the first of its addresses that can be bound) with
/// [`LISTEN_BACKLOG`], and `SO_REUSEADDR` as `TcpListener::bind` sets it.
pub async fn bind(addr: &str) -> io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        };
        let listening = socket.and_then(|socket| {
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(LISTEN_BACKLOG)
        });
        match listening {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{addr}` names no address"),
        )
    }))
}

/// The most an HTTP/1.1 connection buffers while reading a request's headers: a 16 KiB token
/// and ordinary headers fit; more is answered 431. Bounds a slow client's memory (hyper's own
/// default is about 400 KiB).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// HTTP/2 streams open at once per connection; more are refused (`REFUSED_STREAM`).
pub const H2_MAX_CONCURRENT_STREAMS: u32 = 128;
/// HTTP/2 streams a client may reset before the server accepted them, before `GOAWAY`.
pub const H2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
/// HTTP/2 streams the server may reset for a client's protocol error, before `GOAWAY`.
pub const H2_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;
/// How long an evicted connection, busy when it was told, may stay idle before it is dropped
/// (an HTTP/2 client that never acknowledges the `GOAWAY`'s ping).
pub const EVICTION_GRACE: Duration = Duration::from_secs(1);

/// How long a connection must have been idle before it can be evicted: a new client gets a
/// moment to send its first request, a keep-alive client its next one, however fast others
/// connect.
pub const MIN_IDLE: Duration = Duration::from_millis(50);
/// While the listener is full and no connection is idle, how often it looks again.
const EVICTION_RETRY: Duration = Duration::from_millis(50);

/// The HTTP/2 connection preface a prior-knowledge client starts with.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerConfig {
    /// How long a client may take from connecting (or, on a keep-alive connection, from the
    /// previous answer) until its request headers are complete; then the connection is closed
    /// (on HTTP/1.1 within a tenth of the timeout, at most 1 s, after it runs out).
    pub header_read_timeout: Duration,
    /// Connections served at once. When all are taken, a new client makes the longest idle
    /// one close; with none idle it waits. At least 1.
    pub max_connections: usize,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// One route answered by a plain function, ahead of the router.
///
/// An axum router clones the matched route's boxed service and boxes its future on every
/// request; on a cached introspection that is about a fifth of the sidecar's CPU in user
/// space (`docs/BENCHMARKS.md`). The one endpoint whose throughput is the product, the
/// introspection API, is therefore answered directly; the router still holds the same route
/// (so other methods get its 405 and tests can drive it), and everything else goes to it.
///
/// The enforcing proxy, which answers every request with one handler, is served the same way
/// ([`FastRoute::any`]).
#[derive(Clone)]
pub struct FastRoute {
    /// `None`: every request.
    route: Option<(Method, &'static str)>,
    /// Called with the request and the peer's address.
    handler: Arc<Handler>,
}

/// A [`FastRoute`]'s handler: the request and the peer's address in, the answer out.
type Handler =
    dyn Fn(http::Request<Incoming>, SocketAddr) -> BoxFuture<'static, Response> + Send + Sync;

impl FastRoute {
    /// Answers `method path` (exact path, no parameters) with `handler`.
    pub fn new<H>(method: Method, path: &'static str, handler: H) -> FastRoute
    where
        H: Fn(http::Request<Incoming>) -> BoxFuture<'static, Response> + Send + Sync + 'static,
    {
        FastRoute {
            route: Some((method, path)),
            handler: Arc::new(move |request, _peer| handler(request)),
        }
    }

    /// Answers every request with `handler`, which is also given the peer's address.
    pub fn any<H>(handler: H) -> FastRoute
    where
        H: Fn(http::Request<Incoming>, SocketAddr) -> BoxFuture<'static, Response>
            + Send
            + Sync
            + 'static,
    {
        FastRoute {
            route: None,
            handler: Arc::new(handler),
        }
    }

    fn matches(&self, request: &http::Request<Incoming>) -> bool {
        match &self.route {
            Some((method, path)) => request.method() == method && request.uri().path() == *path,
            None => true,
        }
    }
}

/// The protocol builders, made once and shared by every connection.
struct Protocols {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    header_read_timeout: Duration,
    fast_route: Option<FastRoute>,
}

/// Serves `router` on `listener` until `shutdown` completes, then drains (see the module
/// documentation). Returns when every connection has closed.
pub async fn serve<F>(
    listener: TcpListener,
    router: Router,
    config: ListenerConfig,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let admission = Admission::new(config.max_connections);
    accept_loop(listener, router, None, config, admission, shutdown).await
}

/// [`serve`], with `fast_route` answered ahead of `router`.
pub async fn serve_with_fast_route<F>(
    listener: TcpListener,
    router: Router,
    fast_route: FastRoute,
    config: ListenerConfig,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let admission = Admission::new(config.max_connections);
    accept_loop(
        listener,
        router,
        Some(fast_route),
        config,
        admission,
        shutdown,
    )
    .await
}

/// Serves every request with `handler` (a [`FastRoute::any`], which is given the peer's
/// address with each request).
pub async fn serve_handler<F>(
    listener: TcpListener,
    handler: FastRoute,
    config: ListenerConfig,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let admission = Admission::new(config.max_connections);
    serve_handler_admitted(listener, handler, config, &admission, shutdown).await
}

/// [`serve_handler`], counting connections against `admission`, which
/// several accept loops may share: the enforcing proxy runs one accept loop per worker thread
/// on clones of one listening socket, and [`ListenerConfig::max_connections`] (and which idle
/// connection gives way) is for all of them together. `admission` decides the limit;
/// `config.max_connections` is not read.
pub async fn serve_handler_admitted<F>(
    listener: TcpListener,
    handler: FastRoute,
    config: ListenerConfig,
    admission: &Arc<Admission>,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    accept_loop(
        listener,
        Router::new(),
        Some(handler),
        config,
        Arc::clone(admission),
        shutdown,
    )
    .await
}

/// The connection slots of a listener, and the registry that picks which idle connection gives
/// way when they are all taken. One per listener; shared by the accept loops of one listener
/// ([`serve_handler_admitted`]), which with [`Admission::with_workers`] also share out the
/// connections evenly.
pub struct Admission {
    max: usize,
    slots: Arc<Semaphore>,
    registry: Arc<Registry>,
    workers: Option<Workers>,
}

impl Admission {
    /// Slots for `max_connections` connections (at least 1).
    pub fn new(max_connections: usize) -> Arc<Admission> {
        Admission::with_workers(max_connections, 1)
    }

    /// Slots for `max_connections` connections, shared by the accept loops of `workers`
    /// threads on one listening socket, which also share out the connections: each new one is
    /// served by the thread serving the fewest, whichever thread accepted it (see
    /// `Workers` in this module). The first `workers` accept loops started with this admission
    /// take part, each from when it starts; others serve what they accept.
    pub fn with_workers(max_connections: usize, workers: usize) -> Arc<Admission> {
        // `acquire_many` takes a u32; no one needs more connections than that.
        let max = max_connections.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        Arc::new(Admission {
            max,
            slots: Arc::new(Semaphore::new(max)),
            registry: Arc::new(Registry::new()),
            workers: (workers > 1).then(|| Workers::new(workers)),
        })
    }

    /// How many connections each worker thread serves, in the order the accept loops joined
    /// (empty without [`Admission::with_workers`]).
    pub fn worker_connections(&self) -> Vec<usize> {
        self.workers.as_ref().map_or_else(Vec::new, |workers| {
            workers
                .load
                .iter()
                .map(|load| load.load(Ordering::Relaxed))
                .collect()
        })
    }
}

/// The accept loops of one listening socket on threads of their own (the enforcing proxy's
/// workers, each a single-threaded runtime), and how many connections each one serves.
///
/// A connection is served, start to end, by one thread. Which thread accepts it is the
/// kernel's race between the loops, and the thread that wins goes on accepting while more are
/// waiting: a burst of new clients (wrk opening 32 connections, or every client reconnecting
/// after a deploy) was often taken whole by one thread, which then served them all for as
/// long as they stayed open while the other thread idled. In one run in four, all 32 of wrk's
/// connections landed on one thread, at about 0.85 of the throughput of an even split
/// (docs/BENCHMARKS.md). So every new connection goes to the thread serving the fewest
/// (the accepting one on a tie), whichever accepted it: the socket is taken out of the
/// accepting thread's reactor and handed to the other's accept loop, which registers it with
/// its own. That costs two `epoll_ctl` calls and a wake-up of the other thread once per
/// connection, not per request.
struct Workers {
    /// Connections each worker serves.
    load: Box<[AtomicUsize]>,
    /// Whether each worker's accept loop has started: no connection is assigned to one that
    /// has not (it would wait, holding its slot, for a loop that may never come).
    joined: Box<[AtomicBool]>,
    /// Where each worker is handed connections.
    inboxes: Box<[mpsc::UnboundedSender<Handed>]>,
    /// The receiving ends, each taken by the accept loop that joins as that worker.
    unjoined: Mutex<Vec<Option<mpsc::UnboundedReceiver<Handed>>>>,
}

/// A connection accepted by one worker's loop for another: its socket, out of any reactor,
/// already counted as the other's.
struct Handed {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
    load: Load,
}

impl Workers {
    fn new(count: usize) -> Workers {
        let (inboxes, receivers): (Vec<_>, Vec<_>) = (0..count)
            .map(|_| {
                let (inbox, receiver) = mpsc::unbounded_channel();
                (inbox, Some(receiver))
            })
            .unzip();
        Workers {
            load: (0..count).map(|_| AtomicUsize::new(0)).collect(),
            joined: (0..count).map(|_| AtomicBool::new(false)).collect(),
            inboxes: inboxes.into(),
            unjoined: Mutex::new(receivers),
        }
    }

    /// The next free worker's number and inbox; `None` once every worker has joined.
    fn join(&self) -> Option<(usize, mpsc::UnboundedReceiver<Handed>)> {
        let mut unjoined = self.unjoined.lock().unwrap_or_else(PoisonError::into_inner);
        let (worker, inbox) = unjoined
            .iter_mut()
            .enumerate()
            .find_map(|(worker, receiver)| Some((worker, receiver.take()?)))?;
        self.joined[worker].store(true, Ordering::Release);
        Some((worker, inbox))
    }

    /// The worker a new connection goes to: of those whose loops have started, the one serving
    /// the fewest, `me` on a tie. Counts the connection as that worker's.
    fn assign(&self, me: usize) -> usize {
        let mut to = me;
        let mut fewest = self.load[me].load(Ordering::Relaxed);
        for (worker, load) in self.load.iter().enumerate() {
            let load = load.load(Ordering::Relaxed);
            if load < fewest && self.joined[worker].load(Ordering::Acquire) {
                to = worker;
                fewest = load;
            }
        }
        self.load[to].fetch_add(1, Ordering::Relaxed);
        to
    }
}

/// One connection's place in its worker's count, given back when the connection closes (or
/// is lost on its way to the worker).
struct Load {
    admission: Arc<Admission>,
    worker: usize,
}

impl Load {
    /// Counts the connection as `worker`'s instead.
    fn move_to(&mut self, worker: usize) {
        if let Some(workers) = &self.admission.workers {
            workers.load[self.worker].fetch_sub(1, Ordering::Relaxed);
            workers.load[worker].fetch_add(1, Ordering::Relaxed);
        }
        self.worker = worker;
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        if let Some(workers) = &self.admission.workers {
            workers.load[self.worker].fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The next connection handed to this worker; never, for an accept loop that is not one.
async fn handed(inbox: &mut Option<mpsc::UnboundedReceiver<Handed>>) -> Option<Handed> {
    match inbox {
        Some(inbox) => inbox.recv().await,
        None => std::future::pending().await,
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("max", &self.max)
            .field("free", &self.slots.available_permits())
            .finish_non_exhaustive()
    }
}

async fn accept_loop<F>(
    listener: TcpListener,
    router: Router,
    fast_route: Option<FastRoute>,
    config: ListenerConfig,
    admission: Arc<Admission>,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let max = admission.max;
    let header_read_timeout = config.header_read_timeout.max(Duration::from_millis(1));
    let mut http1 = http1::Builder::new();
    // The header read timeout is the sweep's (`time_out_idle`), not hyper's: hyper arms a
    // boxed timer of its own for every request's headers, and drops it when they are read.
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(MAX_HEADER_BYTES);
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_pending_accept_reset_streams(H2_MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(H2_MAX_LOCAL_ERROR_RESET_STREAMS);
    let protocols = Arc::new(Protocols {
        http1,
        http2,
        header_read_timeout,
        fast_route,
    });

    let slots = Arc::clone(&admission.slots);
    let registry = Arc::clone(&admission.registry);
    // Asks every connection to close once this loop ends, however it ends (its future
    // dropped included).
    let stop_all = StopAllOnDrop(Arc::clone(&registry));
    // Until every connection has closed (the drain included): HTTP/1.1 connections that have
    // sent no request for the header read timeout are told to close.
    let _sweep = AbortOnDrop(tokio::spawn(time_out_idle(
        Arc::clone(&registry),
        header_read_timeout,
    )));
    // With worker threads (`Admission::with_workers`): this loop's number and its inbox.
    let (me, mut inbox) = match admission.workers.as_ref().and_then(Workers::join) {
        Some((me, inbox)) => (Some(me), Some(inbox)),
        None => (None, None),
    };
    let serve = |stream: TcpStream, peer: SocketAddr, slot, load: Option<Load>| {
        let router = router.clone();
        let protocols = Arc::clone(&protocols);
        let tracked = Registered::new(&registry, slot);
        tokio::spawn(async move {
            connection(stream, peer, router, &protocols, &tracked).await;
            drop(tracked);
            drop(load);
        });
    };
    let mut shutdown = pin!(shutdown);
    'accept: loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break 'accept,
            Some(handed) = handed(&mut inbox) => {
                // Accepted by another worker's loop for this one (counted as this one's).
                match TcpStream::from_std(handed.stream) {
                    Ok(stream) => serve(stream, handed.peer, handed.slot, Some(handed.load)),
                    Err(e) => tracing::debug!(error = %e, "cannot take over a connection"),
                }
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                if !matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                ) {
                    // Probably out of file descriptors: wait for some to be closed.
                    tracing::error!(error = %e, "cannot accept a connection; retrying in 1 s");
                    tokio::select! {
                        () = &mut shutdown => break 'accept,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
                continue;
            }
        };
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Full: the longest idle connection gives way. With none idle, wait, and look
                // again now and then: a busy one becomes idle once its answer is sent.
                let mut asked = registry.evict_longest_idle();
                if !asked {
                    tracing::debug!(%peer, max, "every connection is busy; the new one waits");
                }
                loop {
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break 'accept,
                        slot = Arc::clone(&slots).acquire_owned() => match slot {
                            Ok(slot) => break slot,
                            Err(_) => break 'accept,
                        },
                        () = tokio::time::sleep(EVICTION_RETRY), if !asked => {
                            asked = registry.evict_longest_idle();
                        }
                    }
                }
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let (Some(me), Some(workers)) = (me, admission.workers.as_ref()) else {
            serve(stream, peer, slot, None);
            continue;
        };
        let load = Load {
            admission: Arc::clone(&admission),
            worker: workers.assign(me),
        };
        let (stream, slot, load) = if load.worker == me {
            (stream, slot, load)
        } else {
            let Some(taken_back) = hand_over(workers, me, stream, peer, slot, load) else {
                continue;
            };
            taken_back
        };
        serve(stream, peer, slot, Some(load));
    }
    drop(listener);
    drop(stop_all);
    // Every connection holds a slot until it closes.
    let _ = slots.acquire_many(max as u32).await;
    Ok(())
}

/// Hands a connection this loop (`me`) accepted to the worker `load` counts it as. `None`
/// when it is on its way (or lost: a socket tokio cannot give up or take back is closed, and
/// its count goes with it). When that worker's loop has ended, the connection is counted as
/// `me`'s and given back to be served here.
fn hand_over(
    workers: &Workers,
    me: usize,
    stream: TcpStream,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
    load: Load,
) -> Option<(TcpStream, OwnedSemaphorePermit, Load)> {
    let to = load.worker;
    let stream = match stream.into_std() {
        Ok(stream) => stream,
        Err(e) => {
            tracing::debug!(error = %e, "cannot hand a connection to another worker");
            return None;
        }
    };
    let handed = Handed {
        stream,
        peer,
        slot,
        load,
    };
    let Err(mpsc::error::SendError(mut handed)) = workers.inboxes[to].send(handed) else {
        return None;
    };
    handed.load.move_to(me);
    match TcpStream::from_std(handed.stream) {
        Ok(stream) => Some((stream, handed.slot, handed.load)),
        Err(e) => {
            tracing::debug!(error = %e, "cannot take back a connection");
            None
        }
    }
}

/// The connections of one listener, for choosing which idle one gives way.
struct Registry {
    started: Instant,
    next_id: AtomicU64,
    connections: Mutex<HashMap<u64, Arc<Tracked>>>,
    /// Set by [`Registry::stop_all`], under the `connections` lock.
    stopping: AtomicBool,
}

/// What the accept loop knows of one connection.
struct Tracked {
    /// Requests whose answer has not been sent completely.
    busy: AtomicUsize,
    /// When a request last ended (or the connection was accepted), in ms since
    /// [`Registry::started`]: with `busy` at 0, since when the connection has been idle.
    idle_since: AtomicU64,
    /// What the accept loop asks of the connection: [`STOP`] and [`EVICT`], each set once, and
    /// [`TIMED_OUT`] (by the sweep; cleared if a request came after all).
    ///
    /// A flag and a waker, not a `watch` and a `Notify`: the connection's task polls them on
    /// every wake-up (about five per proxied request), and polling a `Notified` that waits
    /// takes its list's lock, the stop `watch`'s shared by every connection of the loop. A
    /// load and an unchanged waker cost two uncontended atomic operations on a line the
    /// request touches anyway (docs/BENCHMARKS.md, "What the floor pays beyond hyper").
    signal: AtomicU8,
    /// The connection's task, woken when `signal` is raised.
    waker: AtomicWaker,
    /// An HTTP/1.1 connection: the header read timeout applies while it is idle (see
    /// [`time_out_idle`]).
    reads_heads: AtomicBool,
}

/// [`Tracked::signal`]: shutdown has begun; finish what is in flight and close.
const STOP: u8 = 1;
/// [`Tracked::signal`]: give way to a new client (see the module documentation).
const EVICT: u8 = 2;
/// [`Tracked::signal`]: an HTTP/1.1 connection has been idle for the header read timeout (the
/// client sent no request, or not all of its headers, in time); raised by [`time_out_idle`],
/// and cleared by the connection if a request came after all.
const TIMED_OUT: u8 = 4;

impl Tracked {
    fn raise(&self, signal: u8) {
        self.signal.fetch_or(signal, Ordering::AcqRel);
        self.waker.wake();
    }

    /// Whether no request is in flight (no answer owed).
    fn is_idle(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0
    }

    /// Whether the connection has had no request in flight for `timeout` (in ms) at `now_ms`.
    fn idle_for(&self, timeout_ms: u64, now_ms: u64) -> bool {
        // `busy` first: `Busy::drop` stores `idle_since` before it lets `busy` fall to 0, so an
        // idle connection's `idle_since` is never the one from before its last request.
        self.is_idle()
            && now_ms.saturating_sub(self.idle_since.load(Ordering::Relaxed)) >= timeout_ms
    }
}

impl Registry {
    fn new() -> Registry {
        Registry {
            started: Instant::now(),
            next_id: AtomicU64::new(0),
            connections: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
        }
    }

    /// Asks every connection to finish what is in flight and close; one registered later
    /// (handed over by a worker that had not yet stopped) is asked as it registers.
    fn stop_all(&self) {
        let connections = self.connections();
        self.stopping.store(true, Ordering::Release);
        for connection in connections.values() {
            connection.raise(STOP);
        }
    }

    fn now_ms(&self) -> u64 {
        millis(self.started.elapsed())
    }

    fn connections(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Tracked>>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells every HTTP/1.1 connection idle for `timeout` to close ([`TIMED_OUT`]).
    fn time_out_idle(&self, timeout: Duration) {
        let timeout_ms = millis(timeout);
        let now = self.now_ms();
        for connection in self.connections().values() {
            if connection.reads_heads.load(Ordering::Relaxed)
                && connection.signal.load(Ordering::Relaxed) & TIMED_OUT == 0
                && connection.idle_for(timeout_ms, now)
            {
                connection.raise(TIMED_OUT);
            }
        }
    }

    /// Asks the connection idle the longest to close; `false` when none has been idle for
    /// [`MIN_IDLE`]. A scan of
    /// every connection, done only when the listener is full and a client is waiting.
    fn evict_longest_idle(&self) -> bool {
        let settled = self.now_ms().saturating_sub(millis(MIN_IDLE));
        let connections = self.connections();
        let longest = connections
            .values()
            .filter(|c| c.is_idle() && c.signal.load(Ordering::Relaxed) & EVICT == 0)
            .map(|c| (c, c.idle_since.load(Ordering::Relaxed)))
            .filter(|(_, since)| *since <= settled)
            .min_by_key(|(_, since)| *since)
            .map(|(c, _)| c);
        match longest {
            Some(connection) => {
                connection.raise(EVICT);
                true
            }
            None => false,
        }
    }
}

/// Calls [`Registry::stop_all`] when dropped.
struct StopAllOnDrop(Arc<Registry>);

impl Drop for StopAllOnDrop {
    fn drop(&mut self) {
        self.0.stop_all();
    }
}

/// A connection's entry in the registry and its slot, both given back when it closes.
struct Registered {
    id: u64,
    handle: Handle,
    _slot: OwnedSemaphorePermit,
}

/// What a connection's requests hold to mark themselves in flight.
#[derive(Clone)]
struct Handle {
    registry: Arc<Registry>,
    tracked: Arc<Tracked>,
}

impl Registered {
    fn new(registry: &Arc<Registry>, slot: OwnedSemaphorePermit) -> Registered {
        let id = registry.next_id.fetch_add(1, Ordering::Relaxed);
        let tracked = Arc::new(Tracked {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(registry.now_ms()),
            signal: AtomicU8::new(0),
            waker: AtomicWaker::new(),
            reads_heads: AtomicBool::new(false),
        });
        let mut connections = registry.connections();
        connections.insert(id, Arc::clone(&tracked));
        if registry.stopping.load(Ordering::Acquire) {
            tracked.raise(STOP);
        }
        drop(connections);
        Registered {
            id,
            handle: Handle {
                registry: Arc::clone(registry),
                tracked,
            },
            _slot: slot,
        }
    }

    /// Completes with what is asked of this connection ([`STOP`], [`EVICT`], [`TIMED_OUT`])
    /// once something not in `handled` is.
    fn signalled(&self, handled: u8) -> impl Future<Output = u8> + '_ {
        let tracked = &self.handle.tracked;
        std::future::poll_fn(move |cx| {
            let signal = tracked.signal.load(Ordering::Acquire);
            if signal & !handled != 0 {
                return Poll::Ready(signal);
            }
            // The same task's waker is kept as it is (`will_wake`). Loaded again after, so a
            // signal raised in between is not missed.
            tracked.waker.register(cx.waker());
            match tracked.signal.load(Ordering::Acquire) {
                signal if signal & !handled != 0 => Poll::Ready(signal),
                _ => Poll::Pending,
            }
        })
    }

    /// Takes `signal` back: what it asked no longer holds.
    fn clear(&self, signal: u8) {
        self.handle
            .tracked
            .signal
            .fetch_and(!signal, Ordering::AcqRel);
    }

    /// Whether the connection has had no request in flight for `timeout`.
    fn timed_out(&self, timeout: Duration) -> bool {
        let Handle { registry, tracked } = &self.handle;
        tracked.idle_for(millis(timeout), registry.now_ms())
    }

    fn is_idle(&self) -> bool {
        self.handle.tracked.is_idle()
    }
}

impl Handle {
    /// Marks a request in flight until the returned guard (attached to its answer's body) is
    /// dropped.
    fn busy(&self) -> Busy {
        self.tracked.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.handle.registry.connections().remove(&self.id);
    }
}

/// One request in flight on a connection; dropped when its answer is sent or abandoned.
struct Busy(Handle);

impl Drop for Busy {
    fn drop(&mut self) {
        let Handle { registry, tracked } = &self.0;
        // Before `busy` falls: a sweep that sees it at 0 sees this time too (`idle_for`).
        tracked
            .idle_since
            .store(registry.now_ms(), Ordering::Relaxed);
        tracked.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body, holding its request's [`Busy`] until it has been sent.
struct BusyBody {
    inner: Body,
    _busy: Busy,
}

impl hyper::body::Body for BusyBody {
    type Data = hyper::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

fn attach(response: Response, busy: Busy) -> Response {
    response.map(|inner| Body::new(BusyBody { inner, _busy: busy }))
}

/// The header read timeout of HTTP/1.1, for every connection of a listener at once: every
/// tenth of `timeout` (at least 10 ms, at most 1 s), each connection idle for `timeout` (no
/// request in flight: no request yet, or not all of its headers, or none since the last
/// answer was sent) is told to close ([`TIMED_OUT`]), so it closes between `timeout` and a
/// tenth of it (at most a second) later.
///
/// Why not hyper's `header_read_timeout`: it arms a timer of its own for every request's
/// headers (a boxed `Sleep`, registered in the runtime's timer wheel, removed and freed once
/// the headers are read), about 1,000 instructions of every request (docs/BENCHMARKS.md,
/// "What the floor pays beyond hyper"). The sweep reads what the connections keep anyway
/// (`busy`, `idle_since`).
async fn time_out_idle(registry: Arc<Registry>, timeout: Duration) {
    let every = (timeout / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        registry.time_out_idle(timeout);
    }
}

/// A duration in whole milliseconds, as the registry keeps time.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Drives one connection until it closes, or until shutdown has begun and its requests in
/// flight are done, or until it is evicted while idle (see the module documentation).
macro_rules! drive {
    ($conn:expr, $tracked:expr, $timeout:expr) => {{
        let mut conn = pin!($conn);
        // The signals acted on already, which no longer wake the loop.
        let mut handled = 0;
        let result = loop {
            let signal = tokio::select! {
                result = conn.as_mut() => break result,
                signal = $tracked.signalled(handled) => signal,
            };
            if signal & STOP != 0 {
                if handled & STOP == 0 {
                    // Finish what is in flight, then close; an idle HTTP/1.1 connection (one
                    // trickling its headers included) still times out below.
                    conn.as_mut().graceful_shutdown();
                    handled |= STOP;
                }
            } else if signal & EVICT != 0 {
                tracing::debug!("listener full: closing an idle connection for a new client");
                if $tracked.is_idle() {
                    // No answer is owed (a request's headers half sent are lost, as at the
                    // header read timeout): close now, so the new client need not wait.
                    return;
                }
                // A request raced the eviction: let it finish, then close.
                conn.as_mut().graceful_shutdown();
                break loop {
                    match tokio::time::timeout(EVICTION_GRACE, conn.as_mut()).await {
                        Ok(result) => break result,
                        // Still idle after the grace: drop it. Busy again (a request that
                        // raced the eviction): let it finish.
                        Err(_) if $tracked.is_idle() => break Ok(()),
                        Err(_) => {}
                    }
                };
            }
            if signal & TIMED_OUT != 0 {
                if $tracked.timed_out($timeout) {
                    tracing::debug!(timeout = ?$timeout, "client sent no request in time; connection closed");
                    return;
                }
                // A request came after all, just after the sweep looked.
                $tracked.clear(TIMED_OUT);
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "connection closed");
        }
    }};
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    protocols: &Protocols,
    tracked: &Registered,
) {
    let mut first = [0u8; 24];
    let detected = tokio::select! {
        detected = tokio::time::timeout(protocols.header_read_timeout, read_preface(&mut stream, &mut first)) => detected,
        _ = tracked.signalled(0) => return,
    };
    let (len, is_h2) = match detected {
        Ok(Ok((0, _))) => return,
        Ok(Ok(detected)) => detected,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "connection failed before a request");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, timeout = ?protocols.header_read_timeout, "client sent no request in time; connection closed");
            return;
        }
    };
    let io = TokioIo::new(Prefixed {
        first,
        start: 0,
        end: len,
        inner: stream,
        write_timeout: protocols.header_read_timeout,
        stalled: None,
    });
    let fast_route = protocols.fast_route.clone();
    let handle = tracked.handle.clone();
    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
        let busy = handle.busy();
        match &fast_route {
            Some(fast) if fast.matches(&request) => {
                let answer = (fast.handler)(request, peer);
                Either::Left(async move { Ok::<_, Infallible>(attach(answer.await, busy)) })
            }
            _ => {
                let answer = router.clone().oneshot(request.map(Body::new));
                Either::Right(async move { answer.await.map(|answer| attach(answer, busy)) })
            }
        }
    });
    if is_h2 {
        drive!(
            protocols.http2.serve_connection(io, service),
            tracked,
            protocols.header_read_timeout
        );
    } else {
        // From here on the header read timeout is the sweep's (`time_out_idle`).
        tracked
            .handle
            .tracked
            .reads_heads
            .store(true, Ordering::Relaxed);
        drive!(
            protocols.http1.serve_connection(io, service),
            tracked,
            protocols.header_read_timeout
        );
    }
}

/// Reads until the bytes are the whole HTTP/2 preface (`true`) or cannot be (`false`): at most
/// 24 bytes, usually one read. `0` bytes: the client closed without sending anything.
async fn read_preface(stream: &mut TcpStream, buf: &mut [u8; 24]) -> io::Result<(usize, bool)> {
    let mut len = 0;
    while len < H2_PREFACE.len() {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok((len, false));
        }
        let before = len;
        len += n;
        if buf[before..len] != H2_PREFACE[before..len] {
            return Ok((len, false));
        }
    }
    Ok((len, true))
}

/// The connection, with the bytes read to tell the protocol replayed first, and a deadline on
/// writes that make no progress.
struct Prefixed {
    first: [u8; 24],
    start: usize,
    end: usize,
    inner: TcpStream,
    write_timeout: Duration,
    /// Armed when a write could not proceed; disarmed by the next write that does.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Prefixed {
    /// Passes a write's outcome on, failing it once writes have made no progress for
    /// `write_timeout`. Nothing is allocated while writes proceed.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let timeout = self.write_timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client has not read its answer in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start < this.end {
            let n = (this.end - this.start).min(buf.remaining());
            buf.put_slice(&this.first[this.start..this.start + n]);
            this.start += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
