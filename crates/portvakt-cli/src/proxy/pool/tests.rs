//! The pool against a real HTTP/1.1 upstream on 127.0.0.1 that records what it was sent and
//! how its connections came and went.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{Lease, Pool, PoolConfig};

#[derive(Default)]
struct Seen {
    opened: AtomicUsize,
    closed: AtomicUsize,
    heads: std::sync::Mutex<Vec<String>>,
}

/// An upstream on 127.0.0.1 that serves each connection with `serve`, counting the
/// connections it opened and those that ended.
async fn serve_each<F, Fut>(serve: F) -> (SocketAddr, Arc<Seen>)
where
    F: Fn(tokio::net::TcpStream, Arc<Seen>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let state = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            state.opened.fetch_add(1, Ordering::SeqCst);
            let served = serve(stream, Arc::clone(&state));
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                served.await;
                state.closed.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (addr, seen)
}

/// Answers every request `200 ok`, with the pool's port of the connection in `x-port`; with
/// `close_after_answer`, closes the connection after each answer without saying so (as an
/// upstream whose keep-alive timeout ran out does).
async fn upstream(close_after_answer: bool) -> (SocketAddr, Arc<Seen>) {
    serve_each(move |mut stream, state| async move {
        let answer = format!(
            "HTTP/1.1 200 OK\r\nx-port: {}\r\ncontent-length: 2\r\n\r\nok",
            stream.peer_addr().unwrap().port()
        );
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buffer.extend_from_slice(&chunk[..n]);
            while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                buffer.drain(..end + 4);
                state.heads.lock().unwrap().push(head);
                let _ = stream.write_all(answer.as_bytes()).await;
            }
            if close_after_answer {
                break;
            }
        }
    })
    .await
}

fn config(addr: SocketAddr) -> PoolConfig {
    PoolConfig {
        authority: addr.to_string().parse().unwrap(),
        connect_timeout: Duration::from_secs(2),
        max_idle: 16,
        idle_timeout: Duration::from_secs(60),
        http2: false,
    }
}

fn get(target: &str) -> Request<Body> {
    Request::get(target).body(Body::empty()).unwrap()
}

/// Sends `target` and reads the answer to its end (which gives the connection back).
async fn fetch(pool: &Pool, target: &str) -> String {
    let (response, lease) = pool.send(get(target)).await.expect("the upstream answers");
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    drop(lease);
    String::from_utf8(body.to_vec()).unwrap()
}

/// The pool's port of the connection that answered.
fn port<B>(response: &http::Response<B>) -> u16 {
    response.headers()["x-port"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Sends `/` and reads the answer to its end; the port of the connection it went on.
async fn fetch_port(pool: &Pool) -> u16 {
    let (response, lease) = pool.send(get("/")).await.expect("the upstream answers");
    let port = port(&response);
    response.into_body().collect().await.unwrap();
    drop(lease);
    port
}

/// `n` exchanges of `/` at once, their answers not yet read (so each holds its connection).
async fn at_once(pool: &Pool, n: usize) -> Vec<(http::Response<hyper::body::Incoming>, Lease)> {
    futures_util::future::join_all((0..n).map(|_| pool.send(get("/"))))
        .await
        .into_iter()
        .map(|sent| sent.expect("the upstream answers"))
        .collect()
}

/// Waits until the pool holds `n` idle connections.
async fn idle_count(pool: &Pool, n: usize) {
    eventually(&format!("{n} idle connections"), || {
        pool.0.idle.lock().unwrap().len() == n
    })
    .await;
}

/// Waits (up to 2 s) until `check` holds.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 2 s");
}

#[tokio::test]
async fn one_connection_serves_requests_one_after_another() {
    let (addr, seen) = upstream(false).await;
    let pool = Pool::new(config(addr));
    for _ in 0..20 {
        assert_eq!(fetch(&pool, "/items").await, "ok");
    }
    assert_eq!(seen.opened.load(Ordering::SeqCst), 1);
    assert_eq!(seen.heads.lock().unwrap().len(), 20);
}

#[tokio::test]
async fn requests_go_in_origin_form_with_the_upstreams_host_when_none_is_set() {
    let (addr, seen) = upstream(false).await;
    let pool = Pool::new(config(addr));
    fetch(&pool, "http://client.example/a/b?c=d").await;
    let mut with_host = get("/kept");
    with_host
        .headers_mut()
        .insert(http::header::HOST, "api.example".parse().unwrap());
    let (response, _lease) = pool.send(with_host).await.unwrap();
    response.into_body().collect().await.unwrap();
    let heads = seen.heads.lock().unwrap().clone();
    let first = heads[0].to_ascii_lowercase();
    assert!(first.starts_with("get /a/b?c=d http/1.1\r\n"), "{first}");
    assert!(first.contains(&format!("\r\nhost: {addr}")), "{first}");
    let second = heads[1].to_ascii_lowercase();
    assert!(second.contains("\r\nhost: api.example"), "{second}");
    assert!(!second.contains(&addr.to_string()), "{second}");
}

#[tokio::test]
async fn connections_the_upstream_closed_while_idle_are_not_used() {
    let (addr, seen) = upstream(true).await;
    let pool = Pool::new(config(addr));
    each_on_a_new_connection(&pool, &seen, 5).await;
}

/// `times` requests in turn to an upstream that closes each connection after one answer: each
/// succeeds, on a connection of its own.
async fn each_on_a_new_connection(pool: &Pool, seen: &Seen, times: usize) {
    for n in 1..=times {
        assert_eq!(fetch(pool, "/items").await, "ok");
        // The pool's side of the connection sees the close before the next request.
        eventually("the upstream closed the connection", || {
            seen.closed.load(Ordering::SeqCst) == n
        })
        .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen.opened.load(Ordering::SeqCst), times);
}

#[tokio::test]
async fn idle_connections_close_after_the_idle_timeout() {
    let (addr, seen) = upstream(false).await;
    let mut config = config(addr);
    config.idle_timeout = Duration::from_millis(100);
    let pool = Pool::new(config);
    fetch(&pool, "/items").await;
    assert_eq!(seen.closed.load(Ordering::SeqCst), 0);
    eventually("the idle connection closed", || {
        seen.closed.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(pool.0.idle.lock().unwrap().len(), 0);
    // And the next request opens a new one.
    fetch(&pool, "/items").await;
    assert_eq!(seen.opened.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn at_most_max_idle_connections_are_kept() {
    let (addr, seen) = upstream(false).await;
    let mut config = config(addr);
    config.max_idle = 2;
    let pool = Pool::new(config);
    // Four exchanges at once take four connections.
    let leased = at_once(&pool, 4).await;
    assert_eq!(seen.opened.load(Ordering::SeqCst), 4);
    for (response, lease) in leased {
        response.into_body().collect().await.unwrap();
        drop(lease);
    }
    eventually("two connections given back", || {
        pool.0.idle.lock().unwrap().len() == 2
    })
    .await;
    eventually("the other two closed", || {
        seen.closed.load(Ordering::SeqCst) == 2
    })
    .await;
}

#[tokio::test]
async fn busy_connections_take_turns_and_after_a_quiet_second_the_most_recent_goes_first() {
    let (addr, seen) = upstream(false).await;
    let pool = Pool::new(config(addr));
    // Three exchanges at once take three connections, given back one after another.
    let leased = at_once(&pool, 3).await;
    assert_eq!(seen.opened.load(Ordering::SeqCst), 3);
    let mut given_back = Vec::new();
    for (n, (response, lease)) in leased.into_iter().enumerate() {
        given_back.push(port(&response));
        response.into_body().collect().await.unwrap();
        drop(lease);
        idle_count(&pool, n + 1).await;
    }
    // Requests one after another go round all three, in the order they came back (a stack
    // would send every one on the last).
    let mut used = Vec::new();
    for _ in 0..6 {
        used.push(fetch_port(&pool).await);
        idle_count(&pool, 3).await;
    }
    let twice: Vec<u16> = given_back.iter().chain(&given_back).copied().collect();
    assert_eq!(used, twice);
    // After a second unused, all three are set aside: the most recently used goes first, and
    // keeps going while it is the only one in turn.
    tokio::time::sleep(super::IN_TURN + Duration::from_millis(100)).await;
    let mut after_quiet = Vec::new();
    for _ in 0..4 {
        after_quiet.push(fetch_port(&pool).await);
        idle_count(&pool, 3).await;
    }
    assert_eq!(after_quiet, [given_back[2]; 4]);
    assert_eq!(seen.opened.load(Ordering::SeqCst), 3);
    assert_eq!(seen.heads.lock().unwrap().len(), 3 + 6 + 4);
}

#[tokio::test]
async fn an_answer_left_unread_does_not_give_its_connection_to_the_next_request() {
    let (addr, seen) = upstream(false).await;
    let pool = Pool::new(config(addr));
    let (response, lease) = pool.send(get("/first")).await.unwrap();
    // The exchange is still going (its answer not read): the next request needs another
    // connection.
    assert_eq!(fetch(&pool, "/second").await, "ok");
    assert_eq!(seen.opened.load(Ordering::SeqCst), 2);
    drop((response, lease));
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let pool = Pool::new(config(addr));
    let failure = pool.send(get("/")).await.err().expect("nothing listens");
    assert!(failure.is_connect(), "{failure}");
    assert!(failure.to_string().starts_with("connect: "), "{failure}");
}

/// An HTTP/2 (prior knowledge) upstream answering `ok`; with `one_request_per_connection`,
/// each connection is shut down (GOAWAY) after its first answer.
async fn h2_upstream(one_request_per_connection: bool) -> (SocketAddr, Arc<Seen>) {
    use hyper::server::conn::http2;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    serve_each(move |stream, state| async move {
        let answered = Arc::new(tokio::sync::Notify::new());
        let notify = Arc::clone(&answered);
        let seen = Arc::clone(&state);
        let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
            seen.heads.lock().unwrap().push(request.uri().to_string());
            notify.notify_one();
            async {
                Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                    hyper::body::Bytes::from_static(b"ok"),
                )))
            }
        });
        let connection = http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), service);
        let mut connection = std::pin::pin!(connection);
        if one_request_per_connection {
            tokio::select! {
                _ = connection.as_mut() => {}
                () = answered.notified() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        } else {
            let _ = connection.await;
        }
    })
    .await
}

#[tokio::test]
async fn http2_requests_share_one_connection_with_the_upstreams_authority() {
    let (addr, seen) = h2_upstream(false).await;
    let mut config = config(addr);
    config.http2 = true;
    let pool = Pool::new(config);
    let answers = futures_util::future::join_all((0..10).map(|_| fetch(&pool, "/a?b=c"))).await;
    assert!(answers.iter().all(|answer| answer == "ok"), "{answers:?}");
    assert_eq!(seen.opened.load(Ordering::SeqCst), 1);
    let targets = seen.heads.lock().unwrap().clone();
    assert_eq!(targets.len(), 10);
    assert!(
        targets.iter().all(|t| *t == format!("http://{addr}/a?b=c")),
        "{targets:?}"
    );
}

#[tokio::test]
async fn a_closed_http2_connection_is_replaced_by_the_next_request() {
    let (addr, seen) = h2_upstream(true).await;
    let mut config = config(addr);
    config.http2 = true;
    let pool = Pool::new(config);
    each_on_a_new_connection(&pool, &seen, 3).await;
}

#[tokio::test]
async fn send_from_takes_the_request_out_of_its_slot_and_an_empty_slot_sends_nothing() {
    for http2 in [false, true] {
        let (addr, seen) = if http2 {
            h2_upstream(false).await
        } else {
            upstream(false).await
        };
        let mut config = config(addr);
        config.http2 = http2;
        let pool = Pool::new(config);
        let mut slot = Some(get("/items"));
        let (response, lease) = pool
            .send_from(&mut slot)
            .await
            .expect("the upstream answers");
        assert!(
            slot.is_none(),
            "http2 {http2}: the request was sent, so taken"
        );
        response.into_body().collect().await.unwrap();
        drop(lease);

        let failure = pool
            .send_from(&mut slot)
            .await
            .err()
            .expect("nothing to send");
        assert!(matches!(failure, super::Failure::NoRequest), "{failure}");
        assert!(!failure.is_connect());
        assert_eq!(failure.to_string(), "no request to send (already sent)");
        assert_eq!(seen.heads.lock().unwrap().len(), 1, "http2 {http2}");
    }
}
