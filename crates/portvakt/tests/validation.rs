//! Every validation rule, with real RSA keys and real signatures.

use portvakt_test_support as common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{KEY_A, KEY_A_IMPOSTOR, KEY_B, claims, jwks, now, sign};
use portvakt::{Algorithm, Config, KeySet, Policy, ScopeRequirement, ValidationError, Validator};
use serde_json::{Value, json};

const ISSUER: &str = "https://test.maskinporten.no/";
const READ: &str = "nav:arbeid:some.scope.read";
const WRITE: &str = "nav:arbeid:some.scope.write";

fn config() -> portvakt::ConfigBuilder {
    Config::builder()
        .issuer(ISSUER)
        .jwks_uri("https://test.maskinporten.no/jwk")
}

fn validator_with(builder: portvakt::ConfigBuilder, algorithms: &[Algorithm]) -> Validator {
    let config = builder
        .algorithms(algorithms.iter().copied())
        .build()
        .unwrap();
    let doc = jwks(&[&KEY_A, &KEY_B]);
    let (keys, warnings) = KeySet::from_jwks(doc.to_string().as_bytes(), algorithms).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    Validator::with_keys(&config, ISSUER, keys)
}

fn validator() -> Validator {
    validator_with(config(), &[Algorithm::RS256])
}

fn code(result: Result<portvakt::VerifiedToken, ValidationError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

#[tokio::test]
async fn a_maskinporten_token_validates_with_typed_claims() {
    let v = validator();
    let token = sign(&KEY_A, &claims(ISSUER, &format!("{READ} {WRITE}")));
    let verified = v.validate(&token).await.unwrap();
    assert_eq!(verified.consumer_orgno(), Some("889640782"));
    assert_eq!(verified.client_id(), Some("2b3c-client"));
    assert_eq!(verified.client_amr(), Some("private_key_jwt"));
    assert!(verified.scopes().contains(READ) && verified.scopes().contains(WRITE));
    assert_eq!(verified.kid(), "key-a");
    assert_eq!(verified.algorithm(), Algorithm::RS256);
    assert_eq!(verified.get("token_type"), Some(&json!("Bearer")));
    assert!(verified.audience().is_empty());
}

#[tokio::test]
async fn signature_rules() {
    let v = validator();
    let good = sign(&KEY_A, &claims(ISSUER, READ));
    assert_eq!(code(v.validate(&good).await), "ok");

    // The same kid, signed by another key.
    assert_eq!(
        code(
            v.validate(&sign(&KEY_A_IMPOSTOR, &claims(ISSUER, READ)))
                .await
        ),
        "bad_signature"
    );

    // Payload swapped under a valid signature.
    let other = sign(&KEY_A, &claims(ISSUER, WRITE));
    let parts: Vec<&str> = good.split('.').collect();
    let other_parts: Vec<&str> = other.split('.').collect();
    let spliced = format!("{}.{}.{}", parts[0], other_parts[1], parts[2]);
    assert_eq!(code(v.validate(&spliced).await), "bad_signature");

    // Signature stripped or truncated.
    assert_eq!(
        code(v.validate(&format!("{}.{}.", parts[0], parts[1])).await),
        "bad_signature"
    );
    // Three bytes shorter, still canonical base64url.
    let shortened = format!("{}.{}.{}", parts[0], parts[1], &parts[2][4..]);
    assert_eq!(code(v.validate(&shortened).await), "bad_signature");
    // The last character of a 256-byte signature carries 2 signature bits and 4 unused
    // ones, which must be zero. Setting an unused bit decodes to the same bytes under a
    // lenient decoder: it is an encoding error, not a signature to check.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert_eq!(parts[2].len(), 342, "a 2048-bit RSA signature");
    let last = ALPHABET
        .iter()
        .position(|&c| c == *parts[2].as_bytes().last().unwrap())
        .unwrap();
    assert_eq!(last & 0b1111, 0, "canonical: the unused bits are zero");
    let with_last = |index: usize| {
        let mut signature = parts[2][..parts[2].len() - 1].to_owned();
        signature.push(char::from(ALPHABET[index]));
        format!("{}.{}.{}", parts[0], parts[1], signature)
    };
    let err = v.validate(&with_last(last | 0b0001)).await.unwrap_err();
    assert_eq!(err.code(), "malformed_token");
    assert_eq!(
        err.to_string(),
        "token signature is not base64url without padding"
    );
    // Flipping a used bit instead is canonical base64url: a wrong signature.
    assert_eq!(
        code(v.validate(&with_last(last ^ 0b1_0000)).await),
        "bad_signature"
    );
}

#[tokio::test]
async fn header_rules() {
    let v = validator();
    let payload = claims(ISSUER, READ).to_string();
    let signed = |header: &str| {
        KEY_A
            .sign_compact(Algorithm::RS256, header.as_bytes(), payload.as_bytes())
            .unwrap()
    };
    assert_eq!(
        code(
            v.validate(&signed(r#"{"kid":"key-a","alg":"RS256"}"#))
                .await
        ),
        "ok"
    );
    assert_eq!(
        code(v.validate(&signed(r#"{"kid":"key-a","alg":"none"}"#)).await),
        "alg_not_allowed"
    );
    assert_eq!(
        code(
            v.validate(&signed(r#"{"kid":"key-a","alg":"HS256"}"#))
                .await
        ),
        "alg_not_allowed"
    );
    assert_eq!(
        code(v.validate(&signed(r#"{"alg":"RS256"}"#)).await),
        "missing_kid"
    );
    assert_eq!(
        code(
            v.validate(&signed(
                r#"{"kid":"key-a","alg":"RS256","crit":["x"],"x":1}"#
            ))
            .await
        ),
        "unsupported_header"
    );
    assert_eq!(
        code(
            v.validate(&signed(
                r#"{"kid":"key-a","alg":"RS256","b64":false,"crit":["b64"]}"#
            ))
            .await
        ),
        "unsupported_header"
    );
    assert_eq!(
        code(v.validate(&signed(r#"{"kid":"nope","alg":"RS256"}"#)).await),
        "unknown_kid"
    );
    // An embedded key or key URL is never used: the kid decides, and this one is ours.
    let jwk = KEY_A_IMPOSTOR.public_jwk().to_string();
    let embedded = KEY_A_IMPOSTOR
        .sign_compact(
            Algorithm::RS256,
            format!(
                r#"{{"kid":"key-a","alg":"RS256","jwk":{jwk},"jku":"https://evil.example/jwks"}}"#
            )
            .as_bytes(),
            payload.as_bytes(),
        )
        .unwrap();
    assert_eq!(code(v.validate(&embedded).await), "bad_signature");

    // alg none with an empty signature, the classic.
    let none = format!(
        "{}.{}.",
        b64(r#"{"kid":"key-a","alg":"none"}"#),
        b64(&payload)
    );
    assert_eq!(code(v.validate(&none).await), "alg_not_allowed");
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn optional_algorithms_must_be_allowed_and_match_the_key() {
    let payload = claims(ISSUER, READ).to_string();
    let rs384 = KEY_B
        .sign_compact(
            Algorithm::RS384,
            br#"{"kid":"key-b","alg":"RS384"}"#,
            payload.as_bytes(),
        )
        .unwrap();
    assert_eq!(code(validator().validate(&rs384).await), "alg_not_allowed");

    // Our JWKs declare alg RS256, so an RS384 token is refused even when RS384 is allowed.
    let both = validator_with(config(), &[Algorithm::RS256, Algorithm::RS384]);
    assert_eq!(code(both.validate(&rs384).await), "key_alg_mismatch");

    // A key without `alg` may be used with any allowed algorithm.
    let mut jwk = KEY_B.public_jwk();
    jwk.as_object_mut().unwrap().remove("alg");
    let config = config()
        .algorithms([Algorithm::RS256, Algorithm::RS384])
        .build()
        .unwrap();
    let (keys, _) = KeySet::from_jwks_values(&[jwk], config.algorithms());
    let v = Validator::with_keys(&config, ISSUER, keys);
    assert_eq!(code(v.validate(&rs384).await), "ok");
    let ps256 = KEY_B
        .sign_compact(
            Algorithm::PS256,
            br#"{"kid":"key-b","alg":"PS256"}"#,
            payload.as_bytes(),
        )
        .unwrap();
    assert_eq!(code(v.validate(&ps256).await), "alg_not_allowed");
}

#[tokio::test]
async fn shape_and_encoding_rules() {
    let v = validator();
    let good = sign(&KEY_A, &claims(ISSUER, READ));
    assert_eq!(code(v.validate("").await), "malformed_token");
    assert_eq!(code(v.validate("abc").await), "malformed_token");
    assert_eq!(
        code(v.validate(&format!("{good}.x")).await),
        "malformed_token"
    );
    assert_eq!(
        code(v.validate(&format!("{good}=")).await),
        "malformed_token"
    );
    assert_eq!(
        code(v.validate(&good.replacen('.', "=.", 1)).await),
        "malformed_token"
    );
    assert_eq!(
        code(v.validate(&format!(" {good}")).await),
        "malformed_token"
    );
    let huge = "a".repeat(16 * 1024 + 1);
    let err = v.validate(&huge).await.unwrap_err();
    assert_eq!(err.code(), "token_too_large");
    assert!(err.to_string().contains("16385 bytes"), "{err}");

    // Duplicate claims, signed: refused rather than guessing which one counts.
    let payload = format!(
        r#"{{"iss":"{ISSUER}","exp":{},"exp":1,"scope":"{READ}"}}"#,
        now() + 60
    );
    let dup = KEY_A
        .sign_compact(
            Algorithm::RS256,
            br#"{"kid":"key-a","alg":"RS256"}"#,
            payload.as_bytes(),
        )
        .unwrap();
    let err = v.validate(&dup).await.unwrap_err();
    assert_eq!(err.code(), "malformed_token");
    assert_eq!(
        err.to_string(),
        "token payload has the member \"exp\" more than once"
    );
    // A payload that is not an object.
    let array = KEY_A
        .sign_compact(
            Algorithm::RS256,
            br#"{"kid":"key-a","alg":"RS256"}"#,
            b"[1]",
        )
        .unwrap();
    assert_eq!(code(v.validate(&array).await), "malformed_token");
}

#[tokio::test]
async fn issuer_must_match_exactly() {
    let v = validator();
    let base = claims(ISSUER, READ);
    assert_eq!(
        code(
            v.validate(&sign(
                &KEY_A,
                &with(base.clone(), "iss", json!("https://test.maskinporten.no"))
            ))
            .await
        ),
        "invalid_issuer"
    );
    assert_eq!(
        code(
            v.validate(&sign(
                &KEY_A,
                &with(base.clone(), "iss", json!("https://maskinporten.no/"))
            ))
            .await
        ),
        "invalid_issuer"
    );
    assert_eq!(
        code(
            v.validate(&sign(
                &KEY_A,
                &with(
                    base.clone(),
                    "iss",
                    json!(["https://test.maskinporten.no/"])
                )
            ))
            .await
        ),
        "invalid_claim"
    );
    let err = v
        .validate(&sign(&KEY_A, &without(base, "iss")))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "token has no `iss` (issuer) claim");
}

#[tokio::test]
async fn time_rules_with_leeway() {
    let v = validator();
    let t = now();
    let at = |exp: i64| sign(&KEY_A, &with(claims(ISSUER, READ), "exp", json!(exp)));
    assert_eq!(
        code(v.validate(&at(t - 30)).await),
        "ok",
        "within the 60 s leeway"
    );
    let err = v.validate(&at(t - 61)).await.unwrap_err();
    assert_eq!(err.code(), "expired");
    assert!(err.to_string().contains("leeway 60 s"), "{err}");
    assert_eq!(
        code(
            v.validate(&sign(&KEY_A, &without(claims(ISSUER, READ), "exp")))
                .await
        ),
        "missing_exp"
    );
    assert_eq!(
        code(
            v.validate(&sign(
                &KEY_A,
                &with(claims(ISSUER, READ), "exp", json!((t + 60).to_string()))
            ))
            .await
        ),
        "invalid_claim"
    );

    let nbf = |nbf: i64| sign(&KEY_A, &with(claims(ISSUER, READ), "nbf", json!(nbf)));
    assert_eq!(code(v.validate(&nbf(t + 30)).await), "ok");
    assert_eq!(code(v.validate(&nbf(t + 90)).await), "not_yet_valid");
    assert_eq!(
        code(
            v.validate(&sign(
                &KEY_A,
                &with(claims(ISSUER, READ), "nbf", json!("0"))
            ))
            .await
        ),
        "invalid_claim"
    );

    let iat = |iat: i64| sign(&KEY_A, &with(claims(ISSUER, READ), "iat", json!(iat)));
    assert_eq!(code(v.validate(&iat(t + 30)).await), "ok");
    assert_eq!(code(v.validate(&iat(t + 90)).await), "issued_in_future");

    // A stricter leeway is honoured.
    let strict = validator_with(config().leeway(Duration::from_secs(0)), &[Algorithm::RS256]);
    assert_eq!(code(strict.validate(&at(t - 2)).await), "expired");
}

#[tokio::test]
async fn required_audience() {
    let aud = "https://arbeid.api.nav.no/";
    let v = validator_with(config().audience(aud), &[Algorithm::RS256]);
    let base = claims(ISSUER, READ);
    assert_eq!(
        code(
            v.validate(&sign(&KEY_A, &with(base.clone(), "aud", json!(aud))))
                .await
        ),
        "ok"
    );
    assert_eq!(
        code(
            v.validate(&sign(&KEY_A, &with(base.clone(), "aud", json!(["x", aud]))))
                .await
        ),
        "ok"
    );
    let missing = v.validate(&sign(&KEY_A, &base)).await.unwrap_err();
    assert_eq!(missing.code(), "invalid_audience");
    assert!(
        missing
            .to_string()
            .contains("resource=https://arbeid.api.nav.no/"),
        "{missing}"
    );
    assert_eq!(
        code(
            v.validate(&sign(
                &KEY_A,
                &with(base.clone(), "aud", json!("unspecified"))
            ))
            .await
        ),
        "invalid_audience"
    );
    assert_eq!(
        code(
            v.validate(&sign(
                &KEY_A,
                &with(base.clone(), "aud", json!("https://other/"))
            ))
            .await
        ),
        "invalid_audience"
    );
    // Without a configured audience, `aud` is not checked at all.
    assert_eq!(
        code(
            validator()
                .validate(&sign(&KEY_A, &with(base, "aud", json!("https://other/"))))
                .await
        ),
        "ok"
    );
}

#[tokio::test]
async fn scope_and_consumer_policies() {
    let v = validator();
    let token = sign(
        &KEY_A,
        &claims(ISSUER, &format!("{READ} nav:arbeid:prefixscope")),
    );
    let check = |policy: Policy| {
        let v = v.clone();
        let token = token.clone();
        async move { code(v.validate_with(&token, &policy).await) }
    };
    assert_eq!(check(Policy::new().require_scope(READ)).await, "ok");
    assert_eq!(
        check(Policy::new().require_scope(WRITE)).await,
        "insufficient_scope"
    );
    assert_eq!(
        check(Policy::new().require_scope("nav:arbeid:scope")).await,
        "insufficient_scope"
    );
    assert_eq!(
        check(Policy::new().require_scope("nav:arbeid:some.scope")).await,
        "insufficient_scope"
    );
    assert_eq!(
        check(Policy::new().scopes(ScopeRequirement::any_of([WRITE, READ]))).await,
        "ok"
    );
    assert_eq!(
        check(Policy::new().scopes(ScopeRequirement::all_of([WRITE, READ]))).await,
        "insufficient_scope"
    );
    // Combining requirements never loosens them: an any-of followed by require_scope needs
    // both (the token has READ, but neither WRITE nor the other alternative).
    let combined = Policy::new()
        .scopes(ScopeRequirement::any_of([WRITE, "nav:arbeid:other"]))
        .require_scope(READ);
    let err = v.validate_with(&token, &combined).await.unwrap_err();
    assert_eq!(
        err,
        ValidationError::InsufficientScope {
            required: ScopeRequirement::any_of([WRITE, "nav:arbeid:other"])
        },
        "only the unmet clause is named"
    );
    assert_eq!(
        check(
            Policy::new()
                .scopes(ScopeRequirement::any_of([WRITE, READ]))
                .require_scope("nav:arbeid:prefixscope")
        )
        .await,
        "ok"
    );
    assert_eq!(
        check(Policy::new().scopes(ScopeRequirement::any_of(Vec::<String>::new()))).await,
        "insufficient_scope",
        "an empty any-of fails closed"
    );
    assert_eq!(
        check(Policy::new().allow_consumers(["889640782"])).await,
        "ok"
    );
    assert_eq!(
        check(Policy::new().allow_consumers(["974760673"])).await,
        "consumer_not_allowed"
    );
    assert_eq!(
        check(Policy::new().require_audience("https://a/")).await,
        "invalid_audience"
    );
    let err = v
        .validate_with(&token, &Policy::new().require_scope(WRITE))
        .await
        .unwrap_err();
    assert!(err.is_forbidden());
    assert_eq!(
        err.to_string(),
        "token lacks the required scope: needs `nav:arbeid:some.scope.write`"
    );
}

#[tokio::test]
async fn delegated_tokens_authorize_on_the_consumer() {
    let v = validator();
    let mut c = claims(ISSUER, READ);
    c["supplier"] = json!({"authority": "iso6523-actorid-upis", "ID": "0192:974760673"});
    c["delegation_source"] = json!("https://api.altinn.no/");
    let token = sign(&KEY_A, &c);
    let verified = v
        .validate_with(&token, &Policy::new().allow_consumers(["889640782"]))
        .await
        .unwrap();
    assert_eq!(verified.supplier().unwrap().orgno(), Some("974760673"));
    assert_eq!(verified.delegation_source(), Some("https://api.altinn.no/"));
    assert_eq!(
        code(
            v.validate_with(&token, &Policy::new().allow_consumers(["974760673"]))
                .await
        ),
        "consumer_not_allowed",
        "the supplier is never the party authorized"
    );
}

#[tokio::test]
async fn cache_hits_are_rechecked_against_the_clock() {
    let v = validator();
    let token = sign(&KEY_A, &claims(ISSUER, READ));
    let now = SystemTime::now();
    v.validate_at(&token, now).unwrap();
    v.validate_at(&token, now).unwrap();
    let stats = v.stats();
    assert_eq!((stats.cache_hits, stats.cache_misses), (1, 1));
    assert_eq!(stats.cache_entries, 1);
    let later = now + Duration::from_secs(120 + 61);
    assert_eq!(code(v.validate_at(&token, later)), "expired");
    let stats = v.stats();
    assert_eq!(
        (stats.cache_hits, stats.cache_misses),
        (2, 1),
        "refused on a cache hit, not by a fresh validation"
    );
    // The expired entry was dropped; validating again at the real time is a full validation.
    v.validate_at(&token, now).unwrap();
    assert_eq!(v.stats().cache_misses, 2);

    // A policy is applied on every call, cached or not.
    assert_eq!(
        code(
            v.validate_with(&token, &Policy::new().require_scope(WRITE))
                .await
        ),
        "insufficient_scope"
    );
    let stats = v.stats();
    assert_eq!(
        (stats.cache_hits, stats.cache_misses),
        (3, 2),
        "the policy refused a cache hit"
    );
    assert_eq!(
        stats.cache_entries, 1,
        "a policy refusal keeps the token cached"
    );
}

/// A token validated again and again is served from the validating thread's own copy
/// (`validator/local.rs`); that copy expires on the clock as the shared entry does, and goes
/// with it.
#[tokio::test]
async fn a_threads_own_copy_of_a_token_is_rechecked_against_the_clock_and_dropped_with_it() {
    let v = validator();
    let token = sign(&KEY_A, &claims(ISSUER, READ));
    let now = SystemTime::now();
    for _ in 0..6 {
        v.validate_at(&token, now).unwrap();
    }
    assert_eq!((v.stats().cache_hits, v.stats().cache_misses), (5, 1));
    let later = now + Duration::from_secs(120 + 61);
    assert_eq!(code(v.validate_at(&token, later)), "expired");
    assert_eq!((v.stats().cache_hits, v.stats().cache_misses), (6, 1));
    // Dropped from this thread as from the cache: validating again is a full validation.
    v.validate_at(&token, now).unwrap();
    assert_eq!(v.stats().cache_misses, 2);
    // A validator made later knows nothing of this one's copies.
    let other = validator();
    other.validate_at(&token, now).unwrap();
    assert_eq!(other.stats().cache_misses, 1);
}

/// A cache hit expires at exactly the second a fresh validation would: `exp` + leeway.
#[tokio::test]
async fn a_cached_token_expires_on_the_clock_to_the_second() {
    let v = validator();
    let exp = now() + 120;
    let token = sign(&KEY_A, &with(claims(ISSUER, READ), "exp", json!(exp)));
    let at = |unix: i64| UNIX_EPOCH + Duration::from_secs(unix as u64);
    v.validate_at(&token, at(exp - 100)).unwrap();
    // exp + 59 s is inside the 60 s leeway; exp + 60 s is not.
    v.validate_at(&token, at(exp + 59)).unwrap();
    assert_eq!(v.stats().cache_hits, 1);
    let err = v.validate_at(&token, at(exp + 60)).unwrap_err();
    assert_eq!(
        err,
        ValidationError::Expired {
            exp,
            ago: 60,
            leeway: 60
        }
    );
    assert_eq!(v.stats().cache_hits, 2, "refused on the cache hit");
    assert_eq!(v.stats().cache_misses, 1);
}

/// Expired entries are swept out when a token is cached, at most every 10 s, so a consumer's
/// old tokens (never seen again, but hot from use) do not hold the cache's budget.
#[tokio::test]
async fn expired_tokens_are_swept_from_the_cache_at_most_every_ten_seconds() {
    let v = validator();
    let t0 = now();
    let at = |unix: i64| UNIX_EPOCH + Duration::from_secs(unix as u64);
    let expiring = |exp: i64| sign(&KEY_A, &with(claims(ISSUER, READ), "exp", json!(exp)));
    let old = expiring(t0 + 30); // gone from t0 + 90 (60 s leeway)
    let lasting = expiring(t0 + 600);
    for _ in 0..3 {
        v.validate_at(&old, at(t0)).unwrap();
    }
    v.validate_at(&lasting, at(t0)).unwrap();
    assert_eq!(v.stats().cache_entries, 2);

    let mid = expiring(t0 + 35); // gone from t0 + 95
    v.validate_at(&mid, at(t0 + 89)).unwrap();
    assert_eq!(v.stats().cache_entries, 3, "nothing had expired at t0 + 89");
    v.validate_at(&expiring(t0 + 600), at(t0 + 96)).unwrap();
    assert_eq!(
        v.stats().cache_entries,
        4,
        "t0 + 96 is within 10 s of the last sweep: none yet"
    );
    v.validate_at(&expiring(t0 + 600), at(t0 + 99)).unwrap();
    assert_eq!(
        v.stats().cache_entries,
        3,
        "the sweep at t0 + 99 removed `old` and `mid`, kept the other three"
    );
    let hits = v.stats().cache_hits;
    v.validate_at(&lasting, at(t0 + 99)).unwrap();
    assert_eq!(v.stats().cache_hits, hits + 1, "live entries stay cached");
}

/// `nbf` is re-checked on a hit too: replaying a cached token at a time before it became
/// valid refuses it.
#[tokio::test]
async fn a_cache_hit_rechecks_not_before() {
    let v = validator();
    let t = now();
    // No `iat`: issued in the future would be reported before not-yet-valid.
    let token = sign(
        &KEY_A,
        &with(without(claims(ISSUER, READ), "iat"), "nbf", json!(t)),
    );
    let at = |unix: i64| UNIX_EPOCH + Duration::from_secs(unix as u64);
    v.validate_at(&token, at(t)).unwrap();
    v.validate_at(&token, at(t - 60)).unwrap(); // within the leeway
    let err = v.validate_at(&token, at(t - 61)).unwrap_err();
    assert_eq!(err.code(), "not_yet_valid");
    let stats = v.stats();
    assert_eq!((stats.cache_hits, stats.cache_misses), (2, 1));
}

#[tokio::test]
async fn a_cache_hit_rechecks_issued_at() {
    let v = validator();
    let t = now();
    let token = sign(&KEY_A, &with(claims(ISSUER, READ), "iat", json!(t)));
    let at = |unix: i64| UNIX_EPOCH + Duration::from_secs(unix as u64);
    v.validate_at(&token, at(t)).unwrap();
    v.validate_at(&token, at(t - 60)).unwrap(); // within the leeway
    let err = v.validate_at(&token, at(t - 61)).unwrap_err();
    assert_eq!(err.code(), "issued_in_future");
    let stats = v.stats();
    assert_eq!((stats.cache_hits, stats.cache_misses), (2, 1));
}

#[test]
fn issued_at_far_ahead_of_a_clock_before_1970_does_not_overflow() {
    let v = validator();
    let token = sign(&KEY_A, &with(claims(ISSUER, READ), "iat", json!(i64::MAX)));
    let before_1970 = UNIX_EPOCH - Duration::from_secs(1_000);
    let err = v.validate_at(&token, before_1970).unwrap_err();
    assert!(
        matches!(
            err,
            ValidationError::IssuedInFuture {
                iat: i64::MAX,
                ahead: i64::MAX,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn cache_can_be_disabled() {
    let v = validator_with(config().cache_bytes(0), &[Algorithm::RS256]);
    let token = sign(&KEY_A, &claims(ISSUER, READ));
    v.validate(&token).await.unwrap();
    v.validate(&token).await.unwrap();
    assert_eq!(v.stats().cache_hits, 0);
    assert_eq!(v.stats().cache_misses, 2);
}

#[test]
fn errors_never_echo_the_token_or_signature() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let v = validator();
    let token = sign(&KEY_A_IMPOSTOR, &claims(ISSUER, READ));
    let signature = token.rsplit('.').next().unwrap().to_owned();
    let err = rt.block_on(v.validate(&token)).unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(&signature));
    assert!(!shown.contains(&token));
    // A crafted kid cannot forge log lines.
    let header = format!(
        r#"{{"kid":"a\nERROR forged {}","alg":"RS256"}}"#,
        "x".repeat(500)
    );
    let odd = KEY_A
        .sign_compact(Algorithm::RS256, header.as_bytes(), b"{}")
        .unwrap();
    let err = rt.block_on(v.validate(&odd)).unwrap_err();
    let text = err.to_string();
    assert!(!text.contains('\n') && text.len() < 200, "{text}");
}

#[tokio::test]
async fn a_verified_token_knows_which_validator_verified_it() {
    let (first, second) = (validator(), validator());
    let token = sign(&KEY_A, &claims(ISSUER, READ));
    let verified = first.validate(&token).await.unwrap();
    assert!(verified.verified_by(&first));
    assert!(
        verified.verified_by(&first.clone()),
        "clones share keys, cache and identity"
    );
    assert!(
        !verified.verified_by(&second),
        "same issuer and keys, but another validator"
    );
}

#[tokio::test]
async fn a_token_as_bytes_is_judged_as_its_text_is() {
    let v = validator();
    let read = Policy::new().scopes(ScopeRequirement::all_of([READ]));
    let write = Policy::new().scopes(ScopeRequirement::all_of([WRITE]));
    let token = sign(&KEY_A, &claims(ISSUER, READ));
    // First sight: a full validation of the text; then hits found by the bytes alone.
    let first = v
        .validate_bytes_with(token.as_bytes(), &read)
        .await
        .unwrap();
    assert_eq!(first.scopes().iter().collect::<Vec<_>>(), [READ]);
    assert_eq!((v.stats().cache_misses, v.stats().cache_hits), (1, 0));
    v.validate_bytes_with(token.as_bytes(), &read)
        .await
        .unwrap();
    assert_eq!(v.stats().cache_hits, 1);
    // The policy applies to a hit as to a full validation.
    let refused = v.validate_bytes_with(token.as_bytes(), &write).await;
    assert_eq!(code(refused), code(v.validate_with(&token, &write).await));
    assert_ne!(code(v.validate_with(&token, &write).await), "ok");
    // Whatever the text would be refused for, so are its bytes.
    let expired = sign(
        &KEY_A,
        &with(claims(ISSUER, READ), "exp", json!(now() - 3600)),
    );
    let forged = format!("{}x", &token[..token.len() - 1]);
    for text in [expired.as_str(), forged.as_str(), "a.b", "e30.e30.", ""] {
        assert_eq!(
            code(v.validate_bytes_with(text.as_bytes(), &read).await),
            code(v.validate_with(text, &read).await),
            "{text}"
        );
    }
    // Bytes that are not UTF-8 are never a token.
    let mut bytes = token.clone().into_bytes();
    bytes[3] = 0xff;
    let error = v.validate_bytes_with(&bytes, &read).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "token header is not base64url without padding"
    );
    let too_large = vec![b'a'; v.max_token_size() + 1];
    assert_eq!(
        code(v.validate_bytes_with(&too_large, &read).await),
        "token_too_large"
    );
}

/// `authorize_now` answers a cached token from its bytes, skipping the header's b64token
/// check; every header shape gets the decision a validator without a cache gives.
#[test]
fn a_cached_token_is_authorized_as_an_uncached_one_whatever_the_header() {
    use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
    use portvakt::bearer::{Authorization, Reason, authorize_now};

    let cached = validator();
    let uncached = validator_with(config().cache_bytes(0), &[Algorithm::RS256]);
    let token = sign(&KEY_A, &claims(ISSUER, READ));
    cached.validate_now(&token).unwrap();
    let read = Policy::new().scopes(ScopeRequirement::all_of([READ]));
    let write = Policy::new().scopes(ScopeRequirement::all_of([WRITE]));
    let decide = |validator: &Validator, headers: &HeaderMap, policy: &Policy| match authorize_now(
        validator, headers, policy,
    ) {
        Authorization::Granted(verified) => format!("granted {}", verified.kid()),
        Authorization::Refused(Reason::Header(e)) => format!("header {e:?}"),
        Authorization::Refused(Reason::Token(e)) => format!("token {}", e.code()),
        Authorization::Refused(other) => format!("refused {other:?}"),
        Authorization::Pending(_) => "pending".to_owned(),
    };
    let values = [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("  BEARER    {token} \t"),
        format!("Bearer\t{token}"),
        format!("Basic {token}"),
        format!("Bearer {token} x"),
        format!("Bearer Bearer {token}"),
        format!("Bearer {token},"),
        format!("Bearer {}", &token[1..]),
    ];
    let mut granted = 0;
    for value in &values {
        let mut one = HeaderMap::new();
        one.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        let mut two = one.clone();
        two.append(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        for headers in [&one, &two] {
            for policy in [&read, &write] {
                let hits = cached.stats().cache_hits;
                let decision = decide(&cached, headers, policy);
                assert_eq!(decision, decide(&uncached, headers, policy), "{value:?}");
                if decision.starts_with("granted") {
                    granted += 1;
                    assert_eq!(cached.stats().cache_hits, hits + 1, "{value:?}");
                }
            }
        }
    }
    // The three spellings of one Bearer header, with the scope the token has.
    assert_eq!(granted, 3);
}
