//! The key store against a real JWKS and discovery server on 127.0.0.1: discovery, rotation,
//! outages, unknown-kid floods, readiness.

use portvakt_test_support as common;

use std::time::Duration;

use common::{Behaviour, IssuerServer, KEY_A, KEY_A_IMPOSTOR, KEY_B, claims, jwks, sign};
use portvakt::{Config, Readiness, Validator};

const READ: &str = "nav:arbeid:some.scope.read";

fn explicit(server: &IssuerServer) -> portvakt::ConfigBuilder {
    Config::builder()
        .issuer(server.issuer())
        .jwks_uri(server.jwks_uri())
        .http_timeout(Duration::from_millis(500))
}

async fn ready(validator: &Validator) {
    let readiness = validator.wait_until_ready(Duration::from_secs(10)).await;
    assert!(readiness.is_ready(), "{readiness:?}");
}

#[tokio::test]
async fn discovery_fills_in_issuer_and_jwks_uri() {
    let server = IssuerServer::start(Behaviour::Serve(jwks(&[&KEY_A]))).await;
    let v = Validator::new(
        Config::builder()
            .well_known_url(server.well_known())
            .build()
            .unwrap(),
    )
    .unwrap();
    ready(&v).await;
    assert_eq!(v.issuer().as_deref(), Some(server.issuer().as_str()));
    v.validate(&sign(&KEY_A, &claims(&server.issuer(), READ)))
        .await
        .unwrap();
    assert_eq!(server.discovery_requests(), 1);

    // OpenID Connect discovery documents work the same way.
    let oidc = format!("http://{}/.well-known/openid-configuration", server.addr);
    let v = Validator::new(Config::builder().well_known_url(oidc).build().unwrap()).unwrap();
    ready(&v).await;
    v.validate(&sign(&KEY_A, &claims(&server.issuer(), READ)))
        .await
        .unwrap();
}

#[tokio::test]
async fn issuer_alone_finds_the_rfc8414_document() {
    let server = IssuerServer::start(Behaviour::Serve(jwks(&[&KEY_A]))).await;
    let v = Validator::new(Config::builder().issuer(server.issuer()).build().unwrap()).unwrap();
    ready(&v).await;
    v.validate(&sign(&KEY_A, &claims(&server.issuer(), READ)))
        .await
        .unwrap();
}

#[tokio::test]
async fn issuer_discovery_mismatch_is_a_misconfiguration() {
    let server = IssuerServer::start(Behaviour::Serve(jwks(&[&KEY_A]))).await;
    server.set_discovery_issuer("https://test.maskinporten.no/");
    let config = Config::builder()
        .well_known_url(server.well_known())
        .issuer("https://maskinporten.no/")
        .build()
        .unwrap();
    let v = Validator::new(config).unwrap();
    match v.wait_until_ready(Duration::from_secs(10)).await {
        Readiness::Misconfigured { reason } => {
            let reason = reason.to_string();
            assert!(reason.contains("MASKINPORTEN_ISSUER"), "{reason}");
            assert!(reason.contains("https://test.maskinporten.no/"), "{reason}");
        }
        other => panic!("expected a misconfiguration, got {other:?}"),
    }
    let err = v
        .validate(&sign(&KEY_A, &claims("https://maskinporten.no/", READ)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "keys_unavailable");
}

#[tokio::test]
async fn a_newly_published_key_is_picked_up_on_first_sight() {
    let server = IssuerServer::start(Behaviour::Serve(jwks(&[&KEY_A]))).await;
    let v = Validator::new(explicit(&server).build().unwrap()).unwrap();
    ready(&v).await;
    assert_eq!(server.jwks_requests(), 1);

    // The issuer rotates: KEY_B is published and signs new tokens.
    server.set(Behaviour::Serve(jwks(&[&KEY_A, &KEY_B])));
    let token_b = sign(&KEY_B, &claims(&server.issuer(), READ));
    let verified = v.validate(&token_b).await.unwrap();
    assert_eq!(verified.kid(), "key-b");
    assert_eq!(
        server.jwks_requests(),
        2,
        "exactly one refresh for the new kid"
    );
    // The old key still works, and nothing more is fetched.
    v.validate(&sign(&KEY_A, &claims(&server.issuer(), READ)))
        .await
        .unwrap();
    assert_eq!(server.jwks_requests(), 2);
}

#[tokio::test]
async fn a_key_removed_from_the_jwks_invalidates_its_cached_tokens() {
    let server = IssuerServer::start(Behaviour::Serve(jwks(&[&KEY_A, &KEY_B]))).await;
    let v = Validator::new(explicit(&server).build().unwrap()).unwrap();
    ready(&v).await;
    let token_a = sign(&KEY_A, &claims(&server.issuer(), READ));
    let token_b = sign(&KEY_B, &claims(&server.issuer(), READ));
    v.validate(&token_a).await.unwrap();
    v.validate(&token_b).await.unwrap();
    v.validate(&token_a).await.unwrap();
    assert_eq!(v.stats().cache_hits, 1);

    server.set(Behaviour::Serve(jwks(&[&KEY_B])));
    v.refresh().await.unwrap();
    // KEY_B is unchanged, so its cached token is still a hit.
    v.validate(&token_b).await.unwrap();
    assert_eq!(v.stats().cache_hits, 2);
    let err = v.validate_now(&token_a).unwrap_err();
    assert_eq!(err.code(), "unknown_kid");

    // Same kid, new material: the cached token signed by the old material is not trusted.
    server.set(Behaviour::Serve(jwks(&[&KEY_A_IMPOSTOR, &KEY_B])));
    v.refresh().await.unwrap();
    assert_eq!(
        v.validate_now(&token_a).unwrap_err().code(),
        "bad_signature"
    );
    // KEY_B, still held, is found in the new set once and then known to be in it: both are
    // hits (the validator remembers which key set it last found the key in).
    let hits = v.stats().cache_hits;
    v.validate_now(&token_b).unwrap();
    v.validate_now(&token_b).unwrap();
    assert_eq!(v.stats().cache_hits, hits + 2);
    // And a hit remembered in the old set does not outlive KEY_B's removal.
    server.set(Behaviour::Serve(jwks(&[&KEY_A_IMPOSTOR])));
    v.refresh().await.unwrap();
    assert_eq!(v.validate_now(&token_b).unwrap_err().code(), "unknown_kid");
}

/// A token validated again and again is served from the validating thread's own copy
/// (`validator/local.rs`); that copy is judged against the key set as the shared entry is.
#[tokio::test]
async fn a_key_removed_from_the_jwks_invalidates_a_threads_own_copy_of_a_token_too() {
    let server = IssuerServer::start(Behaviour::Serve(jwks(&[&KEY_A, &KEY_B]))).await;
    let v = Validator::new(explicit(&server).build().unwrap()).unwrap();
    ready(&v).await;
    let token_a = sign(&KEY_A, &claims(&server.issuer(), READ));
    let token_b = sign(&KEY_B, &claims(&server.issuer(), READ));
    // One full validation, then hits: the third lookup and later are this thread's copy.
    for _ in 0..6 {
        v.validate_now(&token_a).unwrap();
        v.validate_now(&token_b).unwrap();
    }
    assert_eq!((v.stats().cache_hits, v.stats().cache_misses), (10, 2));

    // Same kid, new material: the copy signed by the old material is not trusted.
    server.set(Behaviour::Serve(jwks(&[&KEY_A_IMPOSTOR, &KEY_B])));
    v.refresh().await.unwrap();
    assert_eq!(
        v.validate_now(&token_a).unwrap_err().code(),
        "bad_signature"
    );
    // ...and it is gone from this thread too: the next try is a full validation again.
    let misses = v.stats().cache_misses;
    assert_eq!(
        v.validate_now(&token_a).unwrap_err().code(),
        "bad_signature"
    );
    assert_eq!(v.stats().cache_misses, misses + 1);
    // KEY_B, still held, is still a hit.
    let hits = v.stats().cache_hits;
    v.validate_now(&token_b).unwrap();
    assert_eq!(v.stats().cache_hits, hits + 1);
    // Removed: refused at once.
    server.set(Behaviour::Serve(jwks(&[&KEY_A_IMPOSTOR])));
    v.refresh().await.unwrap();
    assert_eq!(v.validate_now(&token_b).unwrap_err().code(), "unknown_kid");
}

#[tokio::test]
async fn an_issuer_outage_never_stops_validation_with_keys_we_hold() {
    let server = IssuerServer::start(Behaviour::Serve(jwks(&[&KEY_A]))).await;
    let v = Validator::new(explicit(&server).build().unwrap()).unwrap();
    ready(&v).await;
    let issuer = server.issuer();
    for outage in [
        Behaviour::Status(503),
        Behaviour::Status(404),
        Behaviour::Garbage,
        Behaviour::Serve(serde_json::json!({"keys": []})),
        Behaviour::Hang,
    ] {
        server.set(outage);
        let err = v.refresh().await.unwrap_err();
        assert!(!err.to_string().is_empty());
        assert!(
            v.readiness().is_ready(),
            "last good keys are kept after: {err}"
        );
        // Fresh tokens (not cached) still validate with the held key.
        v.validate(&sign(&KEY_A, &claims(&issuer, READ)))
            .await
            .unwrap();
    }
    let stats = v.stats();
    assert!(stats.keys.failures >= 5, "{stats:?}");
    assert_eq!(stats.keys.keys, 1);
}

#[tokio::test]
async fn a_hanging_issuer_does_not_block_tokens_whose_key_we_hold() {
    let server = IssuerServer::start(Behaviour::Serve(jwks(&[&KEY_A]))).await;
    let config = explicit(&server)
        .http_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let v = Validator::new(config).unwrap();
    ready(&v).await;
    server.set(Behaviour::Hang);
    // An unknown kid starts a refresh that hangs until the timeout...
    let unknown = sign(&KEY_B, &claims(&server.issuer(), READ));
    let waiting = {
        let v = v.clone();
        tokio::spawn(async move { v.validate(&unknown).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ...while a token with a known key is answered without waiting for it.
    let known = sign(&KEY_A, &claims(&server.issuer(), READ));
    let quick = tokio::time::timeout(Duration::from_secs(1), v.validate(&known)).await;
    assert!(
        quick
            .expect("validation of a known kid must not wait for the refresh")
            .is_ok()
    );
    assert_eq!(waiting.await.unwrap().unwrap_err().code(), "unknown_kid");
}

#[tokio::test]
async fn a_flood_of_unknown_kids_is_not_a_flood_of_jwks_requests() {
    let server = IssuerServer::start(Behaviour::Serve(jwks(&[&KEY_A]))).await;
    let config = explicit(&server)
        .unknown_kid_interval(Duration::from_secs(10))
        .build()
        .unwrap();
    let v = Validator::new(config).unwrap();
    ready(&v).await;
    let before = server.jwks_requests();
    let issuer = server.issuer();
    let payload = claims(&issuer, READ).to_string();
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let header = format!(r#"{{"kid":"random-{i}","alg":"RS256"}}"#);
        let token = KEY_A
            .sign_compact(
                portvakt::Algorithm::RS256,
                header.as_bytes(),
                payload.as_bytes(),
            )
            .unwrap();
        let v = v.clone();
        tasks.push(tokio::spawn(async move { v.validate(&token).await }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap_err().code(), "unknown_kid");
    }
    assert!(
        server.jwks_requests() - before <= 1,
        "1000 unknown kids caused {} JWKS requests",
        server.jwks_requests() - before
    );
    // Tokens with the known key were never affected.
    v.validate(&sign(&KEY_A, &claims(&issuer, READ)))
        .await
        .unwrap();
}

#[tokio::test]
async fn starts_without_the_issuer_and_becomes_ready_when_it_appears() {
    let server = IssuerServer::start(Behaviour::Status(503)).await;
    let v = Validator::new(explicit(&server).build().unwrap()).unwrap();
    match v.wait_until_ready(Duration::from_millis(300)).await {
        Readiness::NotReady { reason } => {
            assert!(
                matches!(
                    reason,
                    portvakt::Unavailable::Refresh(portvakt::RefreshError::JwksFetch(_))
                ),
                "{reason:?}"
            );
            assert!(reason.to_string().contains("503"), "{reason}")
        }
        other => panic!("expected not ready, got {other:?}"),
    }
    let token = sign(&KEY_A, &claims(&server.issuer(), READ));
    assert_eq!(
        v.validate_now(&token).unwrap_err().code(),
        "keys_unavailable"
    );
    server.set(Behaviour::Serve(jwks(&[&KEY_A])));
    ready(&v).await; // the background retry backs off from 1 s
    v.validate(&token).await.unwrap();
}

#[tokio::test]
async fn keys_older_than_the_maximum_age_are_dropped_during_an_outage() {
    let server = IssuerServer::start(Behaviour::Serve(jwks(&[&KEY_A]))).await;
    let config = explicit(&server)
        .refresh_interval(Duration::from_secs(1))
        .max_key_age(Duration::from_secs(1))
        .build()
        .unwrap();
    let v = Validator::new(config).unwrap();
    ready(&v).await;
    server.set(Behaviour::Status(500));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while v.readiness().is_ready() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "keys were never aged out"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(matches!(v.readiness(), Readiness::NotReady { .. }));
}

#[tokio::test]
async fn keys_with_problems_are_skipped_not_fatal() {
    let mut weak = KEY_B.public_jwk();
    weak["use"] = serde_json::json!("enc");
    let doc = serde_json::json!({"keys": [KEY_A.public_jwk(), weak, {"kty": "EC", "kid": "ec"}]});
    let server = IssuerServer::start(Behaviour::Serve(doc)).await;
    let v = Validator::new(explicit(&server).build().unwrap()).unwrap();
    ready(&v).await;
    assert_eq!(v.stats().keys.keys, 1);
    v.validate(&sign(&KEY_A, &claims(&server.issuer(), READ)))
        .await
        .unwrap();
    let err = v
        .validate(&sign(&KEY_B, &claims(&server.issuer(), READ)))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        "unknown_kid",
        "a key marked use=enc is never used"
    );
}

#[test]
fn creating_a_validator_outside_a_runtime_is_an_error_not_a_panic() {
    let config = Config::builder()
        .issuer("https://a/")
        .jwks_uri("https://a/jwk")
        .build()
        .unwrap();
    assert_eq!(
        Validator::new(config).unwrap_err(),
        portvakt::StartError::NoRuntime
    );
}

#[tokio::test]
async fn a_rate_limited_new_key_is_accepted_once_the_interval_has_passed() {
    let server = IssuerServer::start(Behaviour::Serve(jwks(&[&KEY_A]))).await;
    let interval = Duration::from_millis(800);
    let v = Validator::new(
        explicit(&server)
            .unknown_kid_interval(interval)
            .build()
            .unwrap(),
    )
    .unwrap();
    ready(&v).await;
    let payload = claims(&server.issuer(), READ).to_string();
    let random = KEY_A
        .sign_compact(
            portvakt::Algorithm::RS256,
            br#"{"kid":"junk","alg":"RS256"}"#,
            payload.as_bytes(),
        )
        .unwrap();
    assert_eq!(v.validate(&random).await.unwrap_err().code(), "unknown_kid");
    // The issuer publishes KEY_B right after a junk kid used up the refresh allowance.
    server.set(Behaviour::Serve(jwks(&[&KEY_A, &KEY_B])));
    let token_b = sign(&KEY_B, &claims(&server.issuer(), READ));
    assert_eq!(
        v.validate(&token_b).await.unwrap_err().code(),
        "unknown_kid",
        "rate limited"
    );
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    assert_eq!(v.validate(&token_b).await.unwrap().kid(), "key-b");
}

/// NAIS injects all three variables. With the issuer and JWKS URI explicit, the keys come
/// straight from the JWKS URI: a discovery outage must not keep the validator from serving.
#[tokio::test]
async fn with_explicit_issuer_and_jwks_a_discovery_outage_does_not_block_readiness() {
    for outage in [
        Behaviour::Status(500),
        Behaviour::Status(404),
        Behaviour::Hang,
    ] {
        let server = IssuerServer::start(Behaviour::Serve(jwks(&[&KEY_A]))).await;
        server.set_discovery(outage);
        let v = Validator::new(
            explicit(&server)
                .well_known_url(server.well_known())
                .build()
                .unwrap(),
        )
        .unwrap();
        // A hanging discovery endpoint costs at most the 500 ms HTTP timeout, once.
        let readiness = v.wait_until_ready(Duration::from_secs(3)).await;
        assert!(readiness.is_ready(), "{readiness:?}");
        v.validate(&sign(&KEY_A, &claims(&server.issuer(), READ)))
            .await
            .unwrap();
        assert_eq!(server.jwks_requests(), 1);
        assert_eq!(
            server.discovery_requests(),
            1,
            "the document is read for the cross-check only"
        );
    }
}

/// The cross-check still catches a discovery document that names another issuer (and
/// reports it through readiness), but validation keeps using the explicit settings.
#[tokio::test]
async fn with_explicit_issuer_and_jwks_a_contradicting_document_is_reported() {
    let server = IssuerServer::start(Behaviour::Serve(jwks(&[&KEY_A]))).await;
    server.set_discovery_issuer("https://test.maskinporten.no/");
    let v = Validator::new(
        explicit(&server)
            .well_known_url(server.well_known())
            .build()
            .unwrap(),
    )
    .unwrap();
    match v.wait_until_ready(Duration::from_secs(10)).await {
        Readiness::Misconfigured { reason } => {
            let reason = reason.to_string();
            assert!(reason.contains("MASKINPORTEN_ISSUER"), "{reason}");
            assert!(reason.contains("https://test.maskinporten.no/"), "{reason}");
        }
        other => panic!("expected the mismatch to be reported, got {other:?}"),
    }
    assert_eq!(v.issuer().as_deref(), Some(server.issuer().as_str()));
    v.validate(&sign(&KEY_A, &claims(&server.issuer(), READ)))
        .await
        .unwrap();
    // Once the document agrees, the next refresh clears the report.
    server.set_discovery_issuer(&server.issuer());
    v.refresh().await.unwrap();
    assert!(v.readiness().is_ready(), "{:?}", v.readiness());
}

/// A configured JWKS URI wins over the document's `jwks_uri`, which may then be absent.
#[tokio::test]
async fn an_explicit_jwks_uri_overrides_the_discovery_document() {
    let discovery = IssuerServer::start(Behaviour::Serve(jwks(&[&KEY_A]))).await;
    let keys = IssuerServer::start(Behaviour::Serve(jwks(&[&KEY_B]))).await;
    let issuer = discovery.issuer();
    let check = |v: Validator| {
        let issuer = issuer.clone();
        async move {
            ready(&v).await;
            assert_eq!(v.issuer().as_deref(), Some(issuer.as_str()));
            assert_eq!(
                v.validate(&sign(&KEY_B, &claims(&issuer, READ)))
                    .await
                    .unwrap()
                    .kid(),
                "key-b"
            );
            assert_eq!(
                v.validate_now(&sign(&KEY_A, &claims(&issuer, READ)))
                    .unwrap_err()
                    .code(),
                "unknown_kid",
                "the document's JWKS is never used"
            );
        }
    };
    let overridden = || {
        Config::builder()
            .well_known_url(discovery.well_known())
            .jwks_uri(keys.jwks_uri())
            .http_timeout(Duration::from_millis(500))
            .build()
            .unwrap()
    };
    check(Validator::new(overridden()).unwrap()).await;

    // Without `jwks_uri` in the document, the override is all that is needed...
    let mut document = discovery.discovery_document();
    document.as_object_mut().unwrap().remove("jwks_uri");
    discovery.set_discovery(Behaviour::Serve(document));
    check(Validator::new(overridden()).unwrap()).await;
    assert_eq!(discovery.jwks_requests(), 0);
    assert!(keys.jwks_requests() >= 2);

    // ...and without either, the error says which variable to set.
    let v = Validator::new(
        Config::builder()
            .well_known_url(discovery.well_known())
            .build()
            .unwrap(),
    )
    .unwrap();
    match v.wait_until_ready(Duration::from_secs(10)).await {
        Readiness::Misconfigured { reason } => {
            let reason = reason.to_string();
            assert!(reason.contains("no `jwks_uri`"), "{reason}");
            assert!(reason.contains("MASKINPORTEN_JWKS_URI"), "{reason}");
        }
        other => panic!("expected a misconfiguration, got {other:?}"),
    }
}

/// RFC 8414 section 3.3: a document names the issuer whose well-known URL it was fetched
/// from, and its issuer obeys the https rule like a configured one.
#[tokio::test]
async fn a_discovery_issuer_must_own_the_well_known_url_and_use_https() {
    let server = IssuerServer::start(Behaviour::Serve(jwks(&[&KEY_A]))).await;
    for (issuer, expected) in [
        (
            "https://test.maskinporten.no/",
            "MASKINPORTEN_WELL_KNOWN_URL",
        ),
        ("http://maskinporten.no/", "must use https"),
    ] {
        server.set_discovery_issuer(issuer);
        let v = Validator::new(
            Config::builder()
                .well_known_url(server.well_known())
                .build()
                .unwrap(),
        )
        .unwrap();
        match v.wait_until_ready(Duration::from_secs(10)).await {
            Readiness::Misconfigured { reason } => {
                let reason = reason.to_string();
                assert!(reason.contains(expected), "{issuer}: {reason}");
                assert!(reason.contains(issuer), "{issuer}: {reason}");
            }
            other => panic!("{issuer}: expected a misconfiguration, got {other:?}"),
        }
        assert_eq!(
            v.validate(&sign(&KEY_A, &claims(issuer, READ)))
                .await
                .unwrap_err()
                .code(),
            "keys_unavailable"
        );
    }
    assert_eq!(
        server.jwks_requests(),
        0,
        "keys are never fetched on its word"
    );

    // The OpenID Connect address is derived from the issuer too.
    server.set_discovery_issuer(&server.issuer());
    let oidc = format!("http://{}/.well-known/openid-configuration", server.addr);
    let v = Validator::new(Config::builder().well_known_url(oidc).build().unwrap()).unwrap();
    ready(&v).await;
}

/// The maximum key age holds even while the refresh loop is stuck: here a JWKS request hangs
/// for 3 s (the HTTP timeout), and the keys still go at 1 s.
#[tokio::test]
async fn validation_refuses_keys_past_the_maximum_age_while_the_issuer_hangs() {
    let server = IssuerServer::start(Behaviour::Serve(jwks(&[&KEY_A]))).await;
    let config = explicit(&server)
        .http_timeout(Duration::from_secs(3))
        .refresh_interval(Duration::from_secs(1))
        .max_key_age(Duration::from_secs(1))
        .build()
        .unwrap();
    let v = Validator::new(config).unwrap();
    ready(&v).await;
    let fetched = tokio::time::Instant::now();
    server.set(Behaviour::Hang);
    let token = sign(&KEY_A, &claims(&server.issuer(), READ));
    v.validate_now(&token).unwrap(); // cached from here on
    tokio::time::sleep_until(fetched + Duration::from_millis(1500)).await;
    assert_eq!(
        v.validate_now(&token).unwrap_err().code(),
        "keys_unavailable",
        "a cached token is refused too"
    );
    assert_eq!(
        v.validate_now(&sign(&KEY_A, &claims(&server.issuer(), READ)))
            .unwrap_err()
            .code(),
        "keys_unavailable"
    );
    match v.readiness() {
        Readiness::NotReady { reason } => {
            assert!(
                matches!(
                    reason,
                    portvakt::Unavailable::AgedOut { max_key_age, .. }
                        if max_key_age == Duration::from_secs(1)
                ),
                "{reason:?}"
            );
            let reason = reason.to_string();
            assert!(reason.contains("maximum key age"), "{reason}")
        }
        other => panic!("expected not ready, got {other:?}"),
    }
    assert!(
        fetched.elapsed() < Duration::from_secs(3),
        "checked before the hanging refresh could have timed out"
    );
}

/// Single-flight, isolated from the rate limit: the unknown-kid interval is 1 ms and the
/// tokens arrive at least 2 ms apart, so the rate limit would allow a refresh for each of
/// them; the JWKS answers only after a second, so every one of them finds the first refresh
/// in flight.
#[tokio::test]
async fn concurrent_refreshes_for_a_new_key_make_exactly_one_jwks_request() {
    const DELAY: Duration = Duration::from_secs(1);
    let server = IssuerServer::start(Behaviour::Serve(jwks(&[&KEY_A]))).await;
    let v = Validator::new(
        explicit(&server)
            .http_timeout(Duration::from_secs(5))
            .unknown_kid_interval(Duration::from_millis(1))
            .build()
            .unwrap(),
    )
    .unwrap();
    ready(&v).await;
    let before = server.jwks_requests();
    server.set(Behaviour::Delayed(DELAY, jwks(&[&KEY_A, &KEY_B])));
    let tokens: Vec<String> = (0..50)
        .map(|_| sign(&KEY_B, &claims(&server.issuer(), READ)))
        .collect();
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for token in tokens {
        let v = v.clone();
        tasks.push(tokio::spawn(async move { v.validate(&token).await }));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let spread = started.elapsed();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().kid(), "key-b");
    }
    assert!(
        spread < DELAY,
        "all arrived while the refresh was in flight ({spread:?})"
    );
    assert_eq!(server.jwks_requests() - before, 1, "single-flight");

    // Explicit refreshes join one in flight the same way.
    let before = server.jwks_requests();
    let refreshes: Vec<_> = (0..50)
        .map(|_| {
            let v = v.clone();
            tokio::spawn(async move { v.refresh().await })
        })
        .collect();
    for refresh in refreshes {
        refresh.await.unwrap().unwrap();
    }
    assert_eq!(server.jwks_requests() - before, 1, "single-flight");
}
