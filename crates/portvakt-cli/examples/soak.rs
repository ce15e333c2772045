//! The soak driver of `scripts/soak.sh`: steady load on a running `portvakt serve` (the
//! introspection API and the enforcing proxy) with a mix of tokens whose verdict it knows, a
//! key rotation at half time and an unannounced one at three quarters, and the server's memory
//! and descriptors sampled throughout.
//!
//! ```text
//! soak --api URL --proxy URL --issuer URL --pid PID [--duration 600] [--rate 4000]
//!      [--distinct 10000] [--short-scope S] [--long-scope S] [--workers 64]
//! ```
//!
//! Tokens (each request picks one, then the API or the proxy, half and half):
//! - 70 % **valid**: `--distinct` tokens for the long-lived scope, round robin, more than the
//!   token cache holds (so validations miss the cache and evict all the time);
//! - 10 % **short-lived**: tokens of a scope with a 30 s lifetime, minted at the start, that
//!   expire during the run (their verdict follows their `exp` and the 60 s leeway);
//! - 10 % **forged**: a valid token with its signature changed;
//! - 10 % **unknown `kid`**: signed by a key the issuer never published.
//!
//! The valid tokens are re-minted one by one during the run, each within 60 s (the issuer's
//! tokens live at most 120 s). Two rotations:
//! - at half time the issuer rotates to the key it has published since it started
//!   (`POST /admin/rotate`, what `portvakt issuer` does by default): the sidecar holds that key
//!   before the first token it signs, so every verdict must be right, and it must keep
//!   accepting the old key while the issuer still publishes it;
//! - at three quarters it rotates to a key it publishes the moment it signs with it
//!   (`POST /admin/rotate?unannounced=true`). The sidecar learns that key through its
//!   unknown-`kid` refresh, at most one per `unknown_kid_interval` (10 s), and the unknown-`kid`
//!   tokens of the mix keep spending that allowance: a valid token with the new key refused
//!   within [`UNANNOUNCED_WINDOW`] of this rotation is counted apart (the documented cost of
//!   the rate limit), one refused later is a wrong verdict.
//!
//! Every answer is judged: introspection `active` and proxy status 200 for a token that is
//! valid at that second, `active: false` and 401 otherwise. A token within 2 s of its expiry
//! is not judged (the clocks of driver and server are one, but a request takes time). Prints a
//! Markdown report: throughput, p50/p99/max latency per target, wrong verdicts, transport
//! errors, and the server's RSS and open descriptors at start, middle and end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portvakt::{Algorithm, SigningKey};
use serde_json::{Value, json};
use tokio::sync::{Mutex, RwLock};

const LEEWAY: i64 = 60;
const UNJUDGED_WINDOW: i64 = 2;
/// The server's `unknown_kid_interval` (10 s) plus its bound on one refresh (two HTTP timeouts
/// of 5 s and 0.5 s of slack would be 10.5 s; a loopback issuer answers in milliseconds, so
/// 2 s covers the fetch and the request in flight).
const UNANNOUNCED_WINDOW: Duration = Duration::from_secs(12);

#[derive(Clone)]
struct Token {
    text: String,
    /// `None`: never valid (forged, unknown kid).
    exp: Option<i64>,
    /// The `kid` of the header.
    kid: String,
}

struct Pools {
    valid: Vec<Token>,
    short: Vec<Token>,
    forged: Vec<Token>,
    unknown: Vec<Token>,
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    wrong: AtomicU64,
    unjudged: AtomicU64,
    errors: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    /// Valid tokens with the unannounced key refused within `UNANNOUNCED_WINDOW` of it.
    window_refused: AtomicU64,
    /// The latest such refusal, in ms after the unannounced rotation.
    window_last_ms: AtomicU64,
}

struct Args {
    api: String,
    proxy: String,
    issuer: String,
    pid: u32,
    duration: Duration,
    rate: u64,
    distinct: usize,
    short_scope: String,
    long_scope: String,
    workers: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut get = std::collections::HashMap::new();
    while let Some(name) = args.next() {
        let value = args.next().ok_or_else(|| format!("{name} needs a value"))?;
        get.insert(name, value);
    }
    let take = |name: &str| get.get(name).cloned();
    let need = |name: &str| take(name).ok_or_else(|| format!("{name} is required"));
    let number = |name: &str, default: u64| -> Result<u64, String> {
        take(name).map_or(Ok(default), |v| {
            v.parse().map_err(|e| format!("{name} {v}: {e}"))
        })
    };
    Ok(Args {
        api: need("--api")?,
        proxy: need("--proxy")?,
        issuer: need("--issuer")?,
        pid: number("--pid", 0)? as u32,
        duration: Duration::from_secs(number("--duration", 600)?),
        rate: number("--rate", 4000)?.max(1),
        distinct: number("--distinct", 10000)? as usize,
        short_scope: take("--short-scope").unwrap_or_else(|| "nav:soak:short".to_owned()),
        long_scope: take("--long-scope").unwrap_or_else(|| "nav:soak:long".to_owned()),
        workers: number("--workers", 64)?.max(1) as usize,
    })
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Part `index` of a compact JWS, decoded as JSON.
fn part(token: &str, index: usize) -> Option<Value> {
    use base64::Engine as _;
    let part = token.split('.').nth(index)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()
}

fn exp_of(token: &str) -> Option<i64> {
    part(token, 1)?["exp"].as_i64()
}

fn kid_of(token: &str) -> String {
    part(token, 0)
        .and_then(|h| h["kid"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn mint_one(http: &reqwest::Client, issuer: &str, scope: &str) -> Result<Token, String> {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("orgno", "123456789")
        .append_pair("scope", scope)
        .finish();
    let answer: Value = http
        .post(format!("{issuer}dev/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .map_err(|e| format!("minting: {e}"))?
        .json()
        .await
        .map_err(|e| format!("minting: {e}"))?;
    let text = answer["access_token"]
        .as_str()
        .ok_or_else(|| format!("the issuer refused to mint: {answer}"))?
        .to_owned();
    let exp = exp_of(&text);
    let kid = kid_of(&text);
    Ok(Token { text, exp, kid })
}

/// `count` tokens, minted 8 at a time.
async fn mint(
    http: &reqwest::Client,
    issuer: &str,
    scope: &str,
    count: usize,
) -> Result<Vec<Token>, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let out = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (http, next, out) = (http.clone(), Arc::clone(&next), Arc::clone(&out));
        let (issuer, scope) = (issuer.to_owned(), scope.to_owned());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let token = mint_one(&http, &issuer, &scope).await?;
                out.lock().await.push(token);
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let out = Arc::try_unwrap(out).map_err(|_| "minting tasks linger")?;
    Ok(out.into_inner())
}

/// Replaces the valid tokens one by one, each within `every` of its minting: the issuer's
/// tokens live at most 120 s (+60 s leeway), and the pool must stay valid for the whole run.
async fn keep_fresh(
    http: reqwest::Client,
    issuer: String,
    scope: String,
    pools: Arc<RwLock<Pools>>,
    every: Duration,
    deadline: Instant,
) -> Result<(), String> {
    let len = pools.read().await.valid.len();
    let pause = every.div_f64(len.max(1) as f64);
    let mut tick = tokio::time::interval(pause);
    let mut i = 0;
    while Instant::now() < deadline {
        tick.tick().await;
        let token = mint_one(&http, &issuer, &scope).await?;
        pools.write().await.valid[i % len] = token;
        i += 1;
    }
    Ok(())
}

fn forge(token: &Token) -> Token {
    let (unsigned, signature) = token.text.rsplit_once('.').expect("a compact JWS");
    let mut sig: Vec<u8> = signature.bytes().collect();
    let mid = sig.len() / 2;
    sig[mid] = if sig[mid] == b'A' { b'B' } else { b'A' };
    Token {
        text: format!("{unsigned}.{}", String::from_utf8(sig).expect("base64url")),
        exp: None,
        kid: token.kid.clone(),
    }
}

fn unknown_kid_tokens(issuer: &str, scope: &str, count: usize) -> Vec<Token> {
    let key = SigningKey::generate("soak-never-published").expect("RSA key generation");
    (0..count)
        .map(|i| {
            let claims = json!({
                "iss": issuer, "scope": scope, "client_id": "soak", "token_type": "Bearer",
                "client_amr": "private_key_jwt",
                "consumer": {"authority": "iso6523-actorid-upis", "ID": "0192:123456789"},
                "iat": now(), "exp": now() + 3600, "jti": format!("soak-unknown-{i}"),
            });
            Token {
                text: key.sign_jwt(Algorithm::RS256, &claims).expect("signing"),
                exp: None,
                kid: key.kid().to_owned(),
            }
        })
        .collect()
}

/// RSS in KiB and open descriptors of `pid`.
fn sample(pid: u32) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss, fds))
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("usage: soak --api URL --proxy URL --issuer URL --pid PID [...]: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.workers)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let issuer = if args.issuer.ends_with('/') {
        args.issuer.clone()
    } else {
        format!("{}/", args.issuer)
    };
    eprintln!(
        "minting {} long-lived and 200 short-lived tokens",
        args.distinct
    );
    let valid = mint(&http, &issuer, &args.long_scope, args.distinct).await?;
    let short = mint(&http, &issuer, &args.short_scope, 200).await?;
    let forged = valid.iter().take(500).map(forge).collect();
    let unknown = unknown_kid_tokens(&issuer, &args.long_scope, 200);
    let pools = Arc::new(RwLock::new(Pools {
        valid,
        short,
        forged,
        unknown,
    }));

    let tally = Arc::new(Tally::default());
    // The unannounced key and when it started signing, once it has.
    let unannounced: Arc<std::sync::OnceLock<(String, Instant)>> = Arc::default();
    let started = Instant::now();
    let deadline = started + args.duration;
    let refresher = tokio::spawn(keep_fresh(
        http.clone(),
        issuer.clone(),
        args.long_scope.clone(),
        Arc::clone(&pools),
        Duration::from_secs(60),
        deadline,
    ));
    let latencies = Arc::new(Mutex::new((Vec::<u32>::new(), Vec::<u32>::new())));
    let mut samples = vec![(0u64, sample(args.pid).ok_or("cannot read /proc of --pid")?)];
    let per_worker = Duration::from_secs_f64(args.workers as f64 / args.rate as f64);
    let mut tasks = Vec::new();
    for worker in 0..args.workers {
        let (http, pools, tally, latencies, unannounced) = (
            http.clone(),
            Arc::clone(&pools),
            Arc::clone(&tally),
            Arc::clone(&latencies),
            Arc::clone(&unannounced),
        );
        let (api, proxy, workers) = (args.api.clone(), args.proxy.clone(), args.workers);
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(per_worker);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let (mut api_lat, mut proxy_lat) = (Vec::new(), Vec::new());
            let mut n = worker;
            while Instant::now() < deadline {
                tick.tick().await;
                n += workers;
                let token = {
                    let pools = pools.read().await;
                    let pool = match n % 10 {
                        0 => &pools.short,
                        1 => &pools.forged,
                        2 => &pools.unknown,
                        _ => &pools.valid,
                    };
                    pool[(n / 10) % pool.len()].clone()
                };
                let to_api = (n / 10) % 2 == 0;
                let sent = Instant::now();
                let answer = ask(&http, &api, &proxy, to_api, &token.text).await;
                let micros = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
                tally.sent.fetch_add(1, Ordering::Relaxed);
                let accepted = match answer {
                    Ok(accepted) => accepted,
                    Err(_) => {
                        tally.errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                if to_api {
                    api_lat.push(micros)
                } else {
                    proxy_lat.push(micros)
                }
                let counter = if accepted {
                    &tally.accepted
                } else {
                    &tally.refused
                };
                counter.fetch_add(1, Ordering::Relaxed);
                let t = now();
                match token.exp {
                    Some(exp) if (t - (exp + LEEWAY)).abs() <= UNJUDGED_WINDOW => {
                        tally.unjudged.fetch_add(1, Ordering::Relaxed);
                    }
                    exp => {
                        let expected = exp.is_some_and(|exp| t < exp + LEEWAY);
                        let in_window = unannounced.get().and_then(|(kid, at)| {
                            let after = sent.saturating_duration_since(*at);
                            (*kid == token.kid && after <= UNANNOUNCED_WINDOW).then_some(after)
                        });
                        match in_window {
                            Some(after) if expected && !accepted => {
                                tally.window_refused.fetch_add(1, Ordering::Relaxed);
                                tally
                                    .window_last_ms
                                    .fetch_max(after.as_millis() as u64, Ordering::Relaxed);
                            }
                            _ if accepted != expected => {
                                tally.wrong.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {}
                        }
                    }
                }
            }
            let mut all = latencies.lock().await;
            all.0.extend(api_lat);
            all.1.extend(proxy_lat);
        }));
    }

    // Samples every 5 s; the rotations at half time and at three quarters.
    let (mut rotated, mut rotated_unannounced) = (false, false);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(5).min(deadline - Instant::now())).await;
        let elapsed = started.elapsed();
        if let Some(s) = sample(args.pid) {
            samples.push((elapsed.as_secs(), s));
        } else {
            return Err("the server is gone (its /proc entry vanished)".to_owned());
        }
        if !rotated && elapsed >= args.duration / 2 {
            rotated = true;
            let rotation = rotate(&http, &issuer, "").await?;
            if rotation["announced_since"].is_null() {
                return Err(format!(
                    "the issuer rotated to a key it had not announced ({rotation}); run `portvakt issuer` with --announce-next true"
                ));
            }
            eprintln!(
                "rotated the issuer's key at {} s to {}, announced since the issuer started",
                elapsed.as_secs(),
                rotation["kid"]
            );
        }
        if !rotated_unannounced && elapsed >= args.duration * 3 / 4 {
            rotated_unannounced = true;
            let rotation = rotate(&http, &issuer, "?unannounced=true").await?;
            let kid = rotation["kid"]
                .as_str()
                .ok_or_else(|| format!("the issuer's rotation named no kid: {rotation}"))?;
            // Before the first token it signs is minted: every such token is judged by it.
            let _ = unannounced.set((kid.to_owned(), Instant::now()));
            eprintln!(
                "rotated the issuer's key at {} s to {kid}, unannounced",
                elapsed.as_secs()
            );
        }
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())?;
    }
    refresher.await.map_err(|e| e.to_string())??;
    let seconds = started.elapsed().as_secs_f64();
    let (mut api_lat, mut proxy_lat) = std::mem::take(&mut *latencies.lock().await);
    api_lat.sort_unstable();
    proxy_lat.sort_unstable();
    report(&args, &tally, seconds, &api_lat, &proxy_lat, &samples);
    let wrong = tally.wrong.load(Ordering::Relaxed);
    if wrong > 0 {
        return Err(format!("{wrong} wrong verdicts"));
    }
    Ok(())
}

/// `POST /admin/rotate{query}`: the issuer's answer.
async fn rotate(http: &reqwest::Client, issuer: &str, query: &str) -> Result<Value, String> {
    let answer = http
        .post(format!("{issuer}admin/rotate{query}"))
        .send()
        .await
        .map_err(|e| format!("rotating: {e}"))?;
    if !answer.status().is_success() {
        return Err(format!("the issuer refused to rotate: {}", answer.status()));
    }
    answer.json().await.map_err(|e| format!("rotating: {e}"))
}

/// Introspects (`to_api`) or calls the proxy with `token`; whether it was accepted.
async fn ask(
    http: &reqwest::Client,
    api: &str,
    proxy: &str,
    to_api: bool,
    token: &str,
) -> Result<bool, reqwest::Error> {
    if to_api {
        let answer: Value = http
            .post(format!("{api}/api/v1/introspect"))
            .json(&json!({"identity_provider": "maskinporten", "token": token}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(answer["active"] == true)
    } else {
        let answer = http
            .get(format!("{proxy}/api/v1/items"))
            .bearer_auth(token)
            .send()
            .await?;
        let status = answer.status().as_u16();
        answer.bytes().await?;
        Ok(status == 200)
    }
}

fn report(
    args: &Args,
    tally: &Tally,
    seconds: f64,
    api: &[u32],
    proxy: &[u32],
    samples: &[(u64, (u64, usize))],
) {
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let sent = load(&tally.sent);
    println!("| soak | value |");
    println!("|---|---|");
    println!("| duration | {seconds:.0} s |");
    println!(
        "| target rate | {} req/s ({} workers) |",
        args.rate, args.workers
    );
    println!("| sent | {sent} ({:.0} req/s) |", sent as f64 / seconds);
    println!(
        "| accepted / refused | {} / {} |",
        load(&tally.accepted),
        load(&tally.refused)
    );
    println!("| wrong verdicts | {} |", load(&tally.wrong));
    println!(
        "| valid tokens with the unannounced key refused within {} s of it | {} (the last {:.1} s after it) |",
        UNANNOUNCED_WINDOW.as_secs(),
        load(&tally.window_refused),
        load(&tally.window_last_ms) as f64 / 1000.0
    );
    println!(
        "| not judged (within {UNJUDGED_WINDOW} s of expiry) | {} |",
        load(&tally.unjudged)
    );
    println!("| transport errors | {} |", load(&tally.errors));
    for (name, lat) in [("introspection", api), ("proxy", proxy)] {
        println!(
            "| {name} latency p50 / p99 / max | {} / {} / {} us ({} requests) |",
            percentile(lat, 0.5),
            percentile(lat, 0.99),
            lat.last().copied().unwrap_or(0),
            lat.len()
        );
    }
    let at = |i: usize| samples[i].1;
    let (start, middle, end) = (at(0), at(samples.len() / 2), at(samples.len() - 1));
    let max_rss = samples.iter().map(|s| s.1.0).max().unwrap_or(0);
    println!(
        "| server RSS start / middle / end (max) | {} / {} / {} KiB ({max_rss} KiB) |",
        start.0, middle.0, end.0
    );
    println!(
        "| server open descriptors start / middle / end | {} / {} / {} |",
        start.1, middle.1, end.1
    );
}
