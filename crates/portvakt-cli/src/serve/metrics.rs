//! Prometheus metrics for the sidecar (`GET /metrics`, OpenMetrics text format).
//!
//! Counters are updated on the request path without allocation (label values are `&'static
//! str`); gauges that mirror the validator's state (keys held, cache size, refresh age) are
//! read from [`Validator::stats`] when scraped, so they cost nothing between scrapes.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use portvakt::{Readiness, Validator};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels2 = [(&'static str, &'static str); 2];
type Labels1 = [(&'static str, &'static str); 1];

/// The (endpoint, outcome) pairs counted on nearly every request, whose counters are looked up
/// once at start: a family lookup takes a read lock shared by every worker thread and hashes
/// the labels, which under load costs more than the rest of the counting together.
const HOT_REQUESTS: [(&str, &str); 3] = [
    ("introspect", "active"),
    ("introspect", "inactive"),
    ("proxy", "forwarded"),
];

/// The sidecar's metrics. Cheap to share (`Arc`); all methods take `&self`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels2, Counter>,
    /// The counters of [`HOT_REQUESTS`], in its order (members of `requests`).
    hot_requests: [Counter; HOT_REQUESTS.len()],
    validations: Family<Labels1, Counter>,
    /// `validations{result="valid"}`, looked up once.
    valid: Counter,
    validation_seconds: Histogram,
    upstream_seconds: Histogram,
    jwks_fetches: Counter<u64, AtomicU64>,
    jwks_failures: Counter<u64, AtomicU64>,
    keys_held: Gauge,
    ready: Gauge,
    seconds_since_refresh: Gauge<f64, std::sync::atomic::AtomicU64>,
    cache_hits: Counter<u64, AtomicU64>,
    cache_misses: Counter<u64, AtomicU64>,
    cache_entries: Gauge,
    cache_bytes: Gauge,
    last_fetches: AtomicU64,
    last_failures: AtomicU64,
    last_hits: AtomicU64,
    last_misses: AtomicU64,
}

impl Metrics {
    /// Registers every metric under the `portvakt_` prefix.
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("portvakt");
        let requests = Family::<Labels2, Counter>::default();
        registry.register(
            "requests",
            "HTTP requests by endpoint and outcome",
            requests.clone(),
        );
        let validations = Family::<Labels1, Counter>::default();
        registry.register(
            "validations",
            "Token validations by result (`valid` or the error code)",
            validations.clone(),
        );
        let validation_seconds = Histogram::new(exponential_buckets(0.000_001, 2.0, 22));
        registry.register(
            "validation_duration_seconds",
            "Time to validate one token (including cache hits and waits for key refreshes)",
            validation_seconds.clone(),
        );
        let upstream_seconds = Histogram::new(exponential_buckets(0.000_1, 2.0, 18));
        registry.register(
            "upstream_duration_seconds",
            "Time the proxied upstream took to answer (headers)",
            upstream_seconds.clone(),
        );
        let jwks_fetches = Counter::default();
        registry.register(
            "jwks_fetches",
            "Discovery and JWKS fetches attempted",
            jwks_fetches.clone(),
        );
        let jwks_failures = Counter::default();
        registry.register(
            "jwks_fetch_failures",
            "Discovery and JWKS fetches that failed",
            jwks_failures.clone(),
        );
        let keys_held = Gauge::default();
        registry.register("keys_held", "Usable signing keys held", keys_held.clone());
        let ready = Gauge::default();
        registry.register(
            "ready",
            "1 when keys are held and tokens can be validated",
            ready.clone(),
        );
        let seconds_since_refresh = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "seconds_since_last_key_refresh",
            "Seconds since keys were last fetched successfully (-1 before the first)",
            seconds_since_refresh.clone(),
        );
        let cache_hits = Counter::default();
        registry.register(
            "token_cache_hits",
            "Verified-token cache hits",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        registry.register(
            "token_cache_misses",
            "Verified-token cache misses (full validations)",
            cache_misses.clone(),
        );
        let cache_entries = Gauge::default();
        registry.register(
            "token_cache_entries",
            "Tokens in the verified-token cache",
            cache_entries.clone(),
        );
        let cache_bytes = Gauge::default();
        registry.register(
            "token_cache_bytes",
            "Approximate bytes held by the verified-token cache",
            cache_bytes.clone(),
        );
        let hot_requests = HOT_REQUESTS.map(|(endpoint, outcome)| {
            requests
                .get_or_create(&[("endpoint", endpoint), ("outcome", outcome)])
                .clone()
        });
        let valid = validations.get_or_create(&[("result", "valid")]).clone();
        Arc::new(Metrics {
            registry,
            requests,
            hot_requests,
            validations,
            valid,
            validation_seconds,
            upstream_seconds,
            jwks_fetches,
            jwks_failures,
            keys_held,
            ready,
            seconds_since_refresh,
            cache_hits,
            cache_misses,
            cache_entries,
            cache_bytes,
            last_fetches: AtomicU64::new(0),
            last_failures: AtomicU64::new(0),
            last_hits: AtomicU64::new(0),
            last_misses: AtomicU64::new(0),
        })
    }

    /// Counts one request to `endpoint` (e.g. `introspect`, `proxy`) with its `outcome`
    /// (e.g. `active`, `inactive`, `bad_request`, `forwarded`, `denied`).
    pub fn request(&self, endpoint: &'static str, outcome: &'static str) {
        match HOT_REQUESTS
            .iter()
            .position(|&hot| hot == (endpoint, outcome))
        {
            Some(i) => self.hot_requests[i].inc(),
            None => self
                .requests
                .get_or_create(&[("endpoint", endpoint), ("outcome", outcome)])
                .inc(),
        };
    }

    /// Records one validation: `valid`, or the error code.
    pub fn validation(&self, result: &'static str, elapsed: Duration) {
        match result {
            "valid" => self.valid.inc(),
            code => self.validations.get_or_create(&[("result", code)]).inc(),
        };
        self.validation_seconds.observe(elapsed.as_secs_f64());
    }

    /// Records how long the upstream took.
    pub fn upstream(&self, elapsed: Duration) {
        self.upstream_seconds.observe(elapsed.as_secs_f64());
    }

    /// Renders every metric, first copying the validator's state into the gauges.
    pub fn render(&self, validator: &Validator) -> String {
        let stats = validator.stats();
        advance(&self.jwks_fetches, &self.last_fetches, stats.keys.fetches);
        advance(
            &self.jwks_failures,
            &self.last_failures,
            stats.keys.failures,
        );
        advance(&self.cache_hits, &self.last_hits, stats.cache_hits);
        advance(&self.cache_misses, &self.last_misses, stats.cache_misses);
        self.keys_held.set(stats.keys.keys as i64);
        self.ready.set(i64::from(matches!(
            validator.readiness(),
            Readiness::Ready { .. }
        )));
        self.seconds_since_refresh.set(
            stats
                .keys
                .last_success
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .map_or(-1.0, |d| d.as_secs_f64()),
        );
        self.cache_entries.set(stats.cache_entries as i64);
        self.cache_bytes.set(stats.cache_bytes as i64);
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// Advances a Prometheus counter to mirror a monotonic counter kept elsewhere.
fn advance(counter: &Counter<u64, AtomicU64>, last: &AtomicU64, now: u64) {
    use std::sync::atomic::Ordering;
    let previous = last.swap(now, Ordering::Relaxed);
    if now > previous {
        counter.inc_by(now - previous);
    }
}
