//! The accept loop behind every listener of `portvakt serve` (API, probes, enforcing proxy).
//!
//! - HTTP/1.1, and HTTP/2 with prior knowledge (h2c), told apart by the client's first bytes.
//! - A client must send its request headers within [`ListenerConfig::header_read_timeout`]
//!   (default 30 s) or the connection is closed without an answer; this also covers the first
//!   bytes of a connection and, on HTTP/1.1, an idle keep-alive connection waiting for its next
//!   request. A slow or silent client (slowloris) cannot hold a connection longer than that.
//! - At most [`ListenerConfig::max_connections`] connections (default 4096) are served at
//!   once; further clients wait in the kernel's accept backlog until one closes, so memory stays
//!   bounded however many clients connect. An HTTP/1.1 request's headers may take at most
//!   [`MAX_HEADER_BYTES`] (64 KiB; more is answered 431).
//! - `TCP_NODELAY` on every accepted connection (small answers and streamed pieces would
//!   otherwise wait for Nagle's algorithm).
//! - With [`serve_with_fast_route`], one route is answered by a plain function before the
//!   router is consulted (see [`FastRoute`]).
//! - With [`serve_handler_with_connect_info`], every request goes to one handler with the peer
//!   address in its extensions as [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo)
//!   (the proxy's `X-Forwarded-For`); the others leave it out, saving an allocation per
//!   request.
//! - Graceful shutdown: when the shutdown future completes, no new connection is accepted,
//!   idle connections are closed, requests in flight are finished (HTTP/2 clients get a
//!   `GOAWAY`), and [`serve`] returns once every connection has closed.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use futures_util::future::{BoxFuture, Either};
use http::Method;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

/// How long a client may take to send a request's headers, by default.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once per listener, by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// The most an HTTP/1.1 connection buffers while reading a request's headers: a 16 KiB token
/// and ordinary headers fit; more is answered 431. Bounds a slow client's memory (hyper's own
/// default is about 400 KiB).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The HTTP/2 connection preface a prior-knowledge client starts with.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerConfig {
    /// How long a client may take from connecting (or, on a keep-alive connection, from the
    /// previous answer) until its request headers are complete; then the connection is closed.
    pub header_read_timeout: Duration,
    /// Connections served at once; more wait in the accept backlog. At least 1.
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
    handler: Arc<dyn Fn(http::Request<Incoming>) -> BoxFuture<'static, Response> + Send + Sync>,
}

impl FastRoute {
    /// Answers `method path` (exact path, no parameters) with `handler`.
    pub fn new<H>(method: Method, path: &'static str, handler: H) -> FastRoute
    where
        H: Fn(http::Request<Incoming>) -> BoxFuture<'static, Response> + Send + Sync + 'static,
    {
        FastRoute {
            route: Some((method, path)),
            handler: Arc::new(handler),
        }
    }

    /// Answers every request with `handler`.
    pub fn any<H>(handler: H) -> FastRoute
    where
        H: Fn(http::Request<Incoming>) -> BoxFuture<'static, Response> + Send + Sync + 'static,
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
    connect_info: bool,
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
    accept_loop(listener, router, None, config, false, shutdown).await
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
    accept_loop(listener, router, Some(fast_route), config, false, shutdown).await
}

/// Serves every request with `handler` (a [`FastRoute::any`]), with the peer address in its
/// extensions as [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo).
pub async fn serve_handler_with_connect_info<F>(
    listener: TcpListener,
    handler: FastRoute,
    config: ListenerConfig,
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
        true,
        shutdown,
    )
    .await
}

async fn accept_loop<F>(
    listener: TcpListener,
    router: Router,
    fast_route: Option<FastRoute>,
    config: ListenerConfig,
    connect_info: bool,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    // `acquire_many` takes a u32; no one needs more connections than that.
    let max = config
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let header_read_timeout = config.header_read_timeout.max(Duration::from_millis(1));
    let mut http1 = http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2.timer(TokioTimer::new());
    let protocols = Arc::new(Protocols {
        http1,
        http2,
        header_read_timeout,
        connect_info,
        fast_route,
    });

    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    'accept: loop {
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break 'accept,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break 'accept,
            },
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break 'accept,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                drop(slot);
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
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let router = router.clone();
        let protocols = Arc::clone(&protocols);
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            connection(stream, peer, router, &protocols, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it closes.
    let _ = slots.acquire_many(max as u32).await;
    Ok(())
}

/// Completes once shutdown has begun (or the accept loop is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Drives one connection until it closes, or until `stop` and its requests in flight are done.
macro_rules! drive {
    ($conn:expr, $stop:expr) => {{
        let mut conn = pin!($conn);
        let result = tokio::select! {
            result = conn.as_mut() => result,
            () = stopped(&mut $stop) => {
                conn.as_mut().graceful_shutdown();
                conn.await
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
    mut stop: watch::Receiver<bool>,
) {
    let mut first = [0u8; 24];
    let detected = tokio::select! {
        detected = tokio::time::timeout(protocols.header_read_timeout, read_preface(&mut stream, &mut first)) => detected,
        () = stopped(&mut stop) => return,
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
    });
    let connect_info = protocols.connect_info;
    let fast_route = protocols.fast_route.clone();
    let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        if connect_info {
            request.extensions_mut().insert(ConnectInfo(peer));
        }
        match &fast_route {
            Some(fast) if fast.matches(&request) => {
                let answer = (fast.handler)(request);
                Either::Left(async move { Ok::<_, Infallible>(answer.await) })
            }
            _ => Either::Right(router.clone().oneshot(request.map(Body::new))),
        }
    });
    if is_h2 {
        drive!(protocols.http2.serve_connection(io, service), stop);
    } else {
        drive!(protocols.http1.serve_connection(io, service), stop);
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

/// The connection, with the bytes read to tell the protocol replayed first.
struct Prefixed {
    first: [u8; 24],
    start: usize,
    end: usize,
    inner: TcpStream,
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
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
