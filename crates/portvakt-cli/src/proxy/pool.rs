//! The upstream connections of one worker thread, on hyper's connection API.
//!
//! Why not `hyper_util`'s pooled legacy client, which the proxy used before: it is built for
//! many hosts shared by many threads, and the proxy has one upstream per worker thread that no
//! other thread touches. Per request it cloned the client, boxed the request's future, hashed
//! the pool key (scheme and authority) with SipHash into a map behind a lock, and on the way
//! back locked and hashed again: about 9,300 of the proxy's 58,000 instructions per proxied
//! request, counted by `valgrind --tool=callgrind` (docs/BENCHMARKS.md, "What changed, counted
//! in instructions"). Here a worker's idle HTTP/1.1 connections are two lists behind one lock,
//! and a request's [`Lease`] puts its connection back when the upstream's answer has been read
//! to its end:
//!
//! - **In turn while busy.** A connection given back within [`IN_TURN`] (1 s) of its last use
//!   waits its turn: a request takes the one that has waited longest (first in, first out),
//!   so the requests of a busy moment go round every connection in use. A stack instead (the
//!   most recently used first, as nginx's `keepalive` cache and Go's and `hyper_util`'s pools
//!   do) made the upstream's work unsteady at 1000 client connections on this 2-core VM: by
//!   round, nginx as the upstream took from 2 to 20 requests per wake-up (0.49 to 0.05
//!   `epoll_wait` calls per request) and spent up to 1.8x the CPU per request. In turn it took
//!   4 to 5 in every round, and the proxy's floor moved 1.09x to 1.17x the requests in three
//!   runs of alternating rounds, and more evenly (77,150 to 79,769 req/s by round against
//!   65,752 to 80,981 in one). At 256 connections the two orders are even; at 32 the stack
//!   was about 3 % ahead (0.94x to 0.97x in three runs, each within its rounds' spread)
//!   (docs/BENCHMARKS.md, "The pool in turn").
//! - **Most recent first when quiet.** A connection unused for [`IN_TURN`] is set aside, and
//!   taken only when none is waiting its turn, the most recently used first. So a quiet spell
//!   keeps reusing the same few (the others age out after `idle_timeout`), and no request is
//!   sent on a connection idle longer than [`IN_TURN`] while a fresher one waits: an upstream
//!   that closes idle keep-alive connections after a second or more (nginx 75 s, Node.js 5 s,
//!   gunicorn 2 s) has not closed it under the request.
//!
//! What the legacy client did that stays:
//! - TCP_NODELAY and TCP keep-alive (60 s) on every upstream connection, the connect timeout;
//! - at most `max_idle` idle connections kept, each closed after `idle_timeout` unused;
//! - a request that a kept-alive connection could not even start (the upstream closed it while
//!   it was idle) goes again on another connection; one already written is never sent twice
//!   (the upstream may have acted on it), and if its connection breaks it is the client's 502;
//! - HTTP/1.1 requests in origin form (`GET /path?query`), with `Host` set to the upstream's
//!   address when the header rules removed the client's;
//! - HTTP/2 requests with the request's `Host` as their `:authority`, and no `Host` header
//!   (the upstream's address when the header rules removed the client's);
//! - with HTTP/2, one connection per worker multiplexes every request: the requests of a
//!   burst that finds none wait for the one being opened, and a closed one is replaced on the
//!   next request.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri, header};
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

/// How a worker's upstream connections are made and kept.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// `host:port` of the upstream.
    pub authority: Authority,
    /// To open a TCP connection.
    pub connect_timeout: Duration,
    /// Idle HTTP/1.1 connections kept at most.
    pub max_idle: usize,
    /// An idle connection is closed after this long unused.
    pub idle_timeout: Duration,
    /// HTTP/2 with prior knowledge instead of HTTP/1.1.
    pub http2: bool,
}

/// One worker's upstream connections. Made on the runtime that will drive them (its idle
/// connections are swept by a task on that runtime).
#[derive(Clone)]
pub struct Pool(Arc<Shared>);

struct Shared {
    config: PoolConfig,
    /// `Host` for HTTP/1.1 requests that carry none: the upstream's address.
    host: HeaderValue,
    /// Where to connect: the authority's host without IPv6 brackets, and its port.
    connect_to: (String, u16),
    /// Idle HTTP/1.1 connections.
    idle: Mutex<IdleConnections>,
    /// The HTTP/2 connection, when the upstream speaks HTTP/2.
    h2: Mutex<Option<http2::SendRequest<Body>>>,
    /// Held while an HTTP/2 connection is being opened, so that the requests of a burst wait
    /// for that one instead of each opening its own.
    h2_connecting: tokio::sync::Mutex<()>,
}

struct Idle {
    sender: http1::SendRequest<Body>,
    since: Instant,
}

/// How long after its last use an idle connection still takes its turn (see the module
/// documentation); after that it is set aside.
pub const IN_TURN: Duration = Duration::from_secs(1);

/// A worker's idle HTTP/1.1 connections (see the module documentation).
#[derive(Default)]
struct IdleConnections {
    /// Given back within [`IN_TURN`], the longest idle first (in the order they came back).
    in_turn: VecDeque<Idle>,
    /// Unused for [`IN_TURN`], the most recently used last.
    set_aside: Vec<Idle>,
}

impl IdleConnections {
    fn len(&self) -> usize {
        self.in_turn.len() + self.set_aside.len()
    }

    /// The next connection to use, open or not: the first in turn, or the most recently used
    /// of those set aside. Sets aside those whose turn has passed.
    fn next(&mut self, now: Instant) -> Option<Idle> {
        while let Some(first) = self.in_turn.pop_front() {
            if now.saturating_duration_since(first.since) < IN_TURN {
                return Some(first);
            }
            // Every later one came back later than this one, and `set_aside` stays in the
            // order of use.
            self.set_aside.push(first);
        }
        self.set_aside.pop()
    }

    fn retain(&mut self, mut keep: impl FnMut(&Idle) -> bool) {
        self.in_turn.retain(&mut keep);
        self.set_aside.retain(keep);
    }
}

/// Why the upstream did not answer.
#[derive(Debug)]
pub enum Failure {
    /// No connection could be opened (refused, unreachable, or not within the connect timeout).
    Connect(io::Error),
    /// The connection failed before the answer's headers arrived.
    Exchange(hyper::Error),
    /// [`Pool::send_from`] was given an empty slot (its request already sent): nothing was
    /// sent. A mistake of the caller's.
    NoRequest,
}

impl Failure {
    /// Whether no connection could be opened.
    pub fn is_connect(&self) -> bool {
        matches!(self, Failure::Connect(_))
    }

    /// Whether the exchange failed because the client's body went over the proxy's limit
    /// (`--max-body-bytes`, for a body of undeclared length): the client's doing, not the
    /// upstream's.
    pub fn is_body_too_large(&self) -> bool {
        let Failure::Exchange(error) = self else {
            return false;
        };
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            if cause.is::<http_body_util::LengthLimitError>() {
                return true;
            }
            source = cause.source();
        }
        false
    }
}

impl std::fmt::Display for Failure {
    /// The error and its causes, `: `-separated, for the log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let error: &dyn std::error::Error = match self {
            Failure::Connect(e) => {
                f.write_str("connect: ")?;
                e
            }
            Failure::Exchange(e) => e,
            Failure::NoRequest => return f.write_str("no request to send (already sent)"),
        };
        write!(f, "{error}")?;
        let mut source = error.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

/// An HTTP/1.1 connection in use; back to its pool when dropped, once it is ready for the next
/// request (the upstream's answer read to its end). An HTTP/2 lease holds nothing.
pub struct Lease(Option<(http1::SendRequest<Body>, Weak<Shared>)>);

impl Drop for Lease {
    fn drop(&mut self) {
        let Some((mut sender, pool)) = self.0.take() else {
            return;
        };
        let Some(pool) = pool.upgrade() else { return };
        if sender.is_ready() {
            pool.put(sender);
        } else if !sender.is_closed()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            // The answer's end is not yet through the connection's own task (or its body was
            // left unread, and hyper closes the connection): wait for it, off the request's
            // path, as the legacy client did.
            runtime.spawn(async move {
                if sender.ready().await.is_ok() {
                    pool.put(sender);
                }
            });
        }
    }
}

/// The upstream's answer body, holding `held` (a [`Lease`], and whatever else the exchange
/// keeps, such as an in-flight slot) until the body ends or is dropped: at its end the
/// connection goes back to the pool before the client has read the last bytes.
pub struct HeldBody<H> {
    body: Incoming,
    held: Option<H>,
}

impl<H> HeldBody<H> {
    /// `body`, holding `held` until it ends.
    pub fn new(body: Incoming, held: H) -> HeldBody<H> {
        HeldBody {
            body,
            held: Some(held),
        }
    }
}

impl<H: Unpin> hyper::body::Body for HeldBody<H> {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) {
            this.held = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Pool {
    /// A pool for `config`, sweeping idle connections on the current runtime.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn new(config: PoolConfig) -> Pool {
        let host = HeaderValue::from_str(&host_header(&config.authority))
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        let connect_to = (
            config
                .authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            config.authority.port_u16().unwrap_or(80),
        );
        let shared = Arc::new(Shared {
            config,
            host,
            connect_to,
            idle: Mutex::new(IdleConnections::default()),
            h2: Mutex::new(None),
            h2_connecting: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(sweep(Arc::downgrade(&shared)));
        Pool(shared)
    }

    /// How this pool makes and keeps its connections.
    pub fn config(&self) -> &PoolConfig {
        &self.0.config
    }

    /// Sends `request` (its URI's path and query, its headers as they are, but for `Host`,
    /// which HTTP/2 sends as `:authority`: see `Shared::to_h2`) to the upstream, on an idle
    /// connection or a new one.
    pub async fn send(
        &self,
        request: Request<Body>,
    ) -> Result<(Response<Incoming>, Lease), Failure> {
        self.send_from(&mut Some(request)).await
    }

    /// As [`send`](Self::send), the request taken out of `slot` as it is written to a
    /// connection (and put back while a kept-alive connection that could not start it is
    /// replaced). [`Failure::NoRequest`] when `slot` is empty.
    ///
    /// Why a slot: a request (240 bytes) passed by value is kept again by every `async fn` it
    /// passes through, for as long as that function's future lives (its arguments are part of
    /// every state of it), and the future of a proxied request is moved whole into an
    /// allocation of its own per request. Kept once, in the caller's future, the proxy's
    /// request future fell from 3,032 to 1,144 bytes, and callgrind counted 900 fewer
    /// instructions and 30 fewer L2 misses per proxied request at 32 connections, 1,400 and
    /// 50 fewer at 1000 (docs/BENCHMARKS.md, "The request's future, smaller again").
    pub async fn send_from(
        &self,
        slot: &mut Option<Request<Body>>,
    ) -> Result<(Response<Incoming>, Lease), Failure> {
        let Some(request) = slot.as_mut() else {
            return Err(Failure::NoRequest);
        };
        if self.0.config.http2 {
            self.0.to_h2(request);
            self.send_h2(slot).await
        } else {
            self.0.to_h1(request);
            self.send_h1(slot).await
        }
    }

    async fn send_h1(
        &self,
        slot: &mut Option<Request<Body>>,
    ) -> Result<(Response<Incoming>, Lease), Failure> {
        let shared = &self.0;
        loop {
            let (mut sender, reused) = match shared.take() {
                Some(sender) => (sender, true),
                // Boxed, as `connect_h2` below: see `Shared::connect_tcp`.
                None => (Box::pin(shared.connect_h1()).await?, false),
            };
            let Some(request) = slot.take() else {
                return Err(Failure::NoRequest);
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    return Ok((response, Lease(Some((sender, Arc::downgrade(shared))))));
                }
                Err(mut failed) => match failed.take_message() {
                    // Not sent at all: the kept-alive connection was closed under it. Another
                    // one (in the end a new one, which ends the loop) takes it.
                    Some(unsent) if reused => *slot = Some(unsent),
                    _ => return Err(Failure::Exchange(failed.into_error())),
                },
            }
        }
    }

    async fn send_h2(
        &self,
        slot: &mut Option<Request<Body>>,
    ) -> Result<(Response<Incoming>, Lease), Failure> {
        let shared = &self.0;
        let mut reused = true;
        loop {
            let mut sender = match shared.kept_h2() {
                Some(sender) => sender,
                None => {
                    let _connecting = shared.h2_connecting.lock().await;
                    match shared.kept_h2() {
                        // Opened by another request while this one waited.
                        Some(sender) => sender,
                        None => {
                            reused = false;
                            Box::pin(shared.connect_h2()).await?
                        }
                    }
                }
            };
            if let Err(e) = sender.ready().await {
                if reused {
                    shared.forget_h2(&sender);
                    reused = false;
                    continue;
                }
                return Err(Failure::Exchange(e));
            }
            let Some(request) = slot.take() else {
                return Err(Failure::NoRequest);
            };
            match sender.try_send_request(request).await {
                Ok(response) => return Ok((response, Lease(None))),
                Err(mut failed) => match failed.take_message() {
                    Some(unsent) if reused => {
                        shared.forget_h2(&sender);
                        reused = false;
                        *slot = Some(unsent);
                    }
                    _ => return Err(Failure::Exchange(failed.into_error())),
                },
            }
        }
    }
}

impl Shared {
    /// The request as HTTP/1.1 sends it: in origin form (`GET /path?query`), with `Host` the
    /// upstream's address when the header rules removed the client's.
    fn to_h1(&self, request: &mut Request<Body>) {
        *request.uri_mut() = Uri::from(path_and_query(request));
        if !request.headers().contains_key(header::HOST) {
            request
                .headers_mut()
                .insert(header::HOST, self.host.clone());
        }
    }

    /// The request as HTTP/2 sends it: `:scheme` and `:authority` are taken from the URI.
    /// `:authority` is the request's `Host` (what the header rules leave there: the client's,
    /// by default), which is taken out of the headers, so that the upstream sees one host
    /// (RFC 9113 section 8.3.1: servers may refuse a `Host` that differs from `:authority`, and
    /// most read `:authority` alone); the upstream's address when there is none, or when it is
    /// no authority (such as a value with a space).
    fn to_h2(&self, request: &mut Request<Body>) {
        let host = request.headers_mut().remove(header::HOST);
        let authority = host
            .and_then(|host| match request.uri().authority() {
                // Already in the URI (an HTTP/2 client's `:authority`): shared, not parsed.
                Some(authority) if authority.as_str().as_bytes() == host.as_bytes() => {
                    Some(authority.clone())
                }
                _ => Authority::try_from(host.as_bytes()).ok(),
            })
            .unwrap_or_else(|| self.config.authority.clone());
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(Scheme::HTTP);
        uri.authority = Some(authority);
        uri.path_and_query = Some(path_and_query(request));
        if let Ok(uri) = Uri::from_parts(uri) {
            *request.uri_mut() = uri;
        }
    }

    /// The next idle connection that is still open (see [`IdleConnections::next`]).
    fn take(&self) -> Option<http1::SendRequest<Body>> {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(Idle { sender, .. }) = idle.next(now) {
            if sender.is_ready() {
                return Some(sender);
            }
            // Closed by the upstream while idle: dropped.
        }
        None
    }

    fn put(&self, sender: http1::SendRequest<Body>) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.config.max_idle {
            idle.in_turn.push_back(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// Opens a TCP connection to the upstream.
    ///
    /// Callers box the futures that connect (`Box::pin(shared.connect_h1())`): connecting is
    /// rare, and its state (the connect, its timeout, hyper's handshake) would otherwise be
    /// part of every request's future, which is moved whole into an allocation of its own per
    /// request, and with many connections into cold memory. Boxed, the proxy's request future
    /// fell from 3,904 to 3,032 bytes, and callgrind counted 39 fewer L2 misses per proxied
    /// request at 32 connections and 17 fewer at 1000 (docs/BENCHMARKS.md, "The allocator,
    /// and what many connections cost").
    async fn connect_tcp(&self) -> Result<TokioIo<TcpStream>, Failure> {
        let (host, port) = &self.connect_to;
        let stream = tokio::time::timeout(
            self.config.connect_timeout,
            TcpStream::connect((host.as_str(), *port)),
        )
        .await
        .map_err(|_| {
            Failure::Connect(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {:?}", self.config.connect_timeout),
            ))
        })?
        .map_err(Failure::Connect)?;
        // Answers are streamed in pieces, which Nagle's algorithm would hold back.
        stream.set_nodelay(true).map_err(Failure::Connect)?;
        let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(60));
        socket2::SockRef::from(&stream)
            .set_tcp_keepalive(&keepalive)
            .map_err(Failure::Connect)?;
        Ok(TokioIo::new(stream))
    }

    async fn connect_h1(&self) -> Result<http1::SendRequest<Body>, Failure> {
        let io = self.connect_tcp().await?;
        let (sender, connection) = http1::handshake(io).await.map_err(Failure::Exchange)?;
        drive(connection);
        Ok(sender)
    }

    async fn connect_h2(&self) -> Result<http2::SendRequest<Body>, Failure> {
        let io = self.connect_tcp().await?;
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(io)
            .await
            .map_err(Failure::Exchange)?;
        drive(connection);
        *self.h2.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender.clone());
        Ok(sender)
    }

    /// The kept HTTP/2 connection, if it is still open.
    fn kept_h2(&self) -> Option<http2::SendRequest<Body>> {
        self.h2
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|sender| !sender.is_closed())
    }

    /// Drops the kept HTTP/2 connection if it is still `failed`, so the next request opens one.
    fn forget_h2(&self, failed: &http2::SendRequest<Body>) {
        let mut kept = self.h2.lock().unwrap_or_else(|e| e.into_inner());
        if kept
            .as_ref()
            .is_some_and(|k| k.is_closed() || failed.is_closed())
        {
            *kept = None;
        }
    }
}

/// The request's path and query, `/` when it has none (the request target either protocol
/// sends).
fn path_and_query(request: &Request<Body>) -> PathAndQuery {
    request
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"))
}

/// Runs a new connection's own task on the current runtime until the connection closes.
fn drive(connection: impl std::future::Future<Output = hyper::Result<()>> + Send + 'static) {
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "proxy: upstream connection closed");
        }
    });
}

/// `Host` for the upstream: `host:port`, without the port when it is 80.
fn host_header(authority: &Authority) -> String {
    match authority.port_u16() {
        Some(80) | None => authority.host().to_owned(),
        Some(_) => authority.as_str().to_owned(),
    }
}

/// Closes idle connections unused for the idle timeout, checking every half of it, until the
/// pool is gone.
async fn sweep(pool: Weak<Shared>) {
    let Some(every) = pool.upgrade().map(|p| p.config.idle_timeout / 2) else {
        return;
    };
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        let timeout = pool.config.idle_timeout;
        pool.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|c| c.since.elapsed() < timeout && !c.sender.is_closed());
    }
}

#[cfg(test)]
mod tests;
