//! Validation latency of tokens whose key is held, while the issuer fails (docs/RELIABILITY.md,
//! "A failing issuer").
//!
//! ```sh
//! cargo run --release -p portvakt --example fault_latency -- [TOKENS=2000] [ROUNDS=3]
//! ```
//!
//! One issuer on 127.0.0.1 whose answer can be switched: it serves the JWKS until the
//! validator holds the key, then turns into the fault. While it is failing, the key store
//! keeps trying (its refresh every second, and a token with an unknown `kid` every 20 ms, which
//! asks for a refresh at the rate limit), and this program validates `TOKENS` distinct tokens
//! signed by the held key, one after another, timing each (a cache miss each: every one is a
//! full RS256 validation). The baseline is the same with an issuer that answers correctly.
//! Cases alternate within each round and the figures are medians over the rounds, so the
//! machine's drift hits every case alike. Prints a Markdown table with the ratios to the
//! baseline.
//!
//! The TLS and DNS faults are not here: the key must first be fetched from the same URL, and
//! neither can be switched on under a running validator; their tests show that held keys stay.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portvakt::{Algorithm, Config, SigningKey, Validator};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the issuer answers on every request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// The JWKS, correctly.
    None,
    /// Accepts, reads the request, never answers.
    Hang,
    /// The JWKS headers, then one body byte a second.
    Trickle,
    /// A 100 MB body, declared and streamed.
    Huge,
    /// 302 to another host.
    Redirect,
    /// 503.
    Unavailable,
    /// 200 with an HTML maintenance page.
    Garbage,
    /// Accepts and closes at once (the issuer's process gone, its port still open).
    HangUp,
}

/// No fault first and last: the last is the control that shows how much the order alone moves
/// the figures.
const FAULTS: [Fault; 9] = [
    Fault::None,
    Fault::Hang,
    Fault::Trickle,
    Fault::Huge,
    Fault::Redirect,
    Fault::Unavailable,
    Fault::Garbage,
    Fault::HangUp,
    Fault::None,
];

struct Issuer {
    addr: SocketAddr,
    fault: Arc<Mutex<Fault>>,
}

impl Issuer {
    async fn start(jwks: String) -> Issuer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let fault = Arc::new(Mutex::new(Fault::None));
        let jwks: &'static str = jwks.leak();
        let current = Arc::clone(&fault);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let fault = *current.lock().unwrap();
                tokio::spawn(answer(stream, fault, jwks));
            }
        });
        Issuer { addr, fault }
    }

    fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }
}

async fn answer(mut stream: TcpStream, fault: Fault, jwks: &'static str) {
    if fault == Fault::HangUp {
        return;
    }
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let ok = |body: &str, kind: &str| {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let _ = match fault {
        Fault::None => stream.write_all(ok(jwks, "application/json").as_bytes()).await,
        Fault::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
        Fault::Trickle => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                jwks.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            for byte in jwks.as_bytes() {
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok(())
        }
        Fault::Huge => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000000\r\n\r\n";
            let _ = stream.write_all(head.as_bytes()).await;
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < 100_000_000 && stream.write_all(&chunk).await.is_ok() {
                sent += chunk.len();
            }
            Ok(())
        }
        Fault::Redirect => {
            stream
                .write_all(b"HTTP/1.1 302 Found\r\nlocation: http://192.0.2.1/jwk\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await
        }
        Fault::Unavailable => {
            stream
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await
        }
        Fault::Garbage => {
            stream
                .write_all(ok("<html>maintenance</html>", "text/html").as_bytes())
                .await
        }
        Fault::HangUp => Ok(()),
    };
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64
}

fn token(key: &SigningKey, issuer: &str, n: usize) -> String {
    let now = now();
    let claims = json!({
        "iss": issuer,
        "scope": "nav:arbeid:some.scope.read",
        "client_id": "fault-latency",
        "token_type": "Bearer",
        "consumer": {"authority": "iso6523-actorid-upis", "ID": "0192:889640782"},
        "iat": now,
        "exp": now + 600,
        "jti": format!("jti-{n}"),
    });
    key.sign_jwt(Algorithm::RS256, &claims).expect("signing")
}

struct Figures {
    p50: Duration,
    p99: Duration,
    max: Duration,
    refused: usize,
    fetches: u64,
}

async fn run_case(issuer: &Issuer, fault: Fault, tokens: &[String], stranger: &str) -> Figures {
    issuer.set(Fault::None);
    let base = format!("http://{}/", issuer.addr);
    let config = Config::builder()
        .issuer(&base)
        .jwks_uri(format!("{base}jwk"))
        .refresh_interval(Duration::from_secs(1))
        .unknown_kid_interval(Duration::from_millis(100))
        .http_timeout(Duration::from_secs(2))
        .build()
        .expect("a valid configuration");
    let v = Validator::new(config).expect("inside a runtime");
    let ready = v.wait_until_ready(Duration::from_secs(5)).await;
    assert!(
        ready.is_ready(),
        "{fault:?}: not ready before the fault: {ready:?}"
    );
    issuer.set(fault);
    // The attacker and the schedule: refreshes against the fault all through the measurement.
    let poker = {
        let v = v.clone();
        let stranger = stranger.to_owned();
        tokio::spawn(async move {
            loop {
                let _ = v.validate(&stranger).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await; // let the first refresh begin
    let before = v.stats().keys.fetches;
    let mut times = Vec::with_capacity(tokens.len());
    let mut refused = 0;
    for token in tokens {
        let start = Instant::now();
        let verdict = v.validate(token).await;
        times.push(start.elapsed());
        if verdict.is_err() {
            refused += 1;
        }
    }
    let fetches = v.stats().keys.fetches - before;
    poker.abort();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    Figures {
        p50: at(0.50),
        p99: at(0.99),
        max: *times.last().expect("at least one token"),
        refused,
        fetches,
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn micros(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args
        .next()
        .map_or(2000, |a| a.parse().expect("TOKENS is a number"));
    let rounds: usize = args
        .next()
        .map_or(3, |a| a.parse().expect("ROUNDS is a number"));
    let key = SigningKey::generate("held").expect("an RSA key");
    let other = SigningKey::generate("not-published").expect("an RSA key");
    let jwks = json!({"keys": [key.public_jwk()]}).to_string();
    let issuer = Issuer::start(jwks).await;
    let base = format!("http://{}/", issuer.addr);
    eprintln!("signing {count} tokens");
    let tokens: Vec<String> = (0..count).map(|n| token(&key, &base, n)).collect();
    let stranger = token(&other, &base, usize::MAX);

    let mut results: Vec<Vec<Figures>> = FAULTS.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        for (i, fault) in FAULTS.iter().enumerate() {
            eprintln!("round {round}/{rounds}: {fault:?}");
            results[i].push(run_case(&issuer, *fault, &tokens, &stranger).await);
        }
    }
    let summary: Vec<(Duration, Duration, Duration, usize, u64)> = results
        .iter()
        .map(|runs| {
            (
                median(runs.iter().map(|f| f.p50).collect()),
                median(runs.iter().map(|f| f.p99).collect()),
                runs.iter().map(|f| f.max).max().expect("a round"),
                runs.iter().map(|f| f.refused).sum(),
                runs.iter().map(|f| f.fetches).sum(),
            )
        })
        .collect();
    let (base_p50, base_p99) = (summary[0].0, summary[0].1);
    println!(
        "| issuer | p50 us | p99 us | max us | p50 / no fault | p99 / no fault | refused | issuer requests during |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (i, (fault, (p50, p99, max, refused, fetches))) in FAULTS.iter().zip(&summary).enumerate() {
        let again = if i > 0 && *fault == Fault::None {
            " (again, last)"
        } else {
            ""
        };
        println!(
            "| {fault:?}{again} | {} | {} | {} | {:.2} | {:.2} | {refused} | {fetches} |",
            micros(*p50),
            micros(*p99),
            micros(*max),
            p50.as_secs_f64() / base_p50.as_secs_f64(),
            p99.as_secs_f64() / base_p99.as_secs_f64(),
        );
    }
    println!(
        "\n{count} distinct tokens per case and round, {rounds} rounds, medians of the rounds' p50 and p99; max over all rounds; refused summed (must be 0)"
    );
    if summary.iter().any(|s| s.3 > 0) {
        eprintln!("error: a token signed by a held key was refused during a fault");
        std::process::exit(1);
    }
}
