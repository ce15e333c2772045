//! The local issuer's JWT-bearer grant: the client-assertion check and the grants behind it.
//!
//! The first byte chooses how the rest is used:
//! - even: the rest is the assertion itself. Invariant: never a panic, and an accepted
//!   assertion's RS256 signature by the registered client's key verifies independently.
//! - odd: the rest is the assertion's claims, signed here with the registered client's key so
//!   the claim checks behind the signature are reached. Before signing, string placeholders
//!   make the claims current: `"now"` and `"now+N"`/`"now-N"` (for `iat`, `exp`) become the
//!   clock's seconds, `"fresh"` (for `jti`) a new id, `"issuer"` (for `aud`) the issuer URL.
//!
//! Invariant of every accepted grant: the token it mints names the registered client's
//! organization as consumer and carries only scopes the manifest grants that organization
//! (the issuer must never mint a scope that is not granted).

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use portvakt::{Algorithm, SigningKey};
use portvakt_issuer::{ClientRegistry, Issuer, IssuerConfig};
use portvakt_manifest::{GrantsTable, Manifest};
use serde_json::{Map, Value};

use crate::oracle;

/// The issuer URL the assertions are addressed to.
pub const ISSUER: &str = "http://127.0.0.1:7166/";
/// The registered client.
pub const CLIENT_ID: &str = "fuzz-client";
/// Its organization: granted `nav:arbeid:some.scope.read` in the example manifest, not `write`.
pub const CLIENT_ORGNO: &str = "123456789";

struct Fixture {
    issuer: Issuer,
    grants: GrantsTable,
    client_key: SigningKey,
    n: Vec<u8>,
    e: Vec<u8>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let manifest = Manifest::parse(
        include_str!("../../../examples/nais.yaml"),
        "examples/nais.yaml",
    );
    let grants = manifest.grants();
    let client_key = SigningKey::from_jwk(crate::CLIENT_JWK).expect("the fuzzing client key");
    let (n, e) = oracle::rsa_public(&client_key.public_jwk());
    let mut clients = ClientRegistry::new();
    clients
        .register_key(CLIENT_ID, CLIENT_ORGNO, &client_key)
        .expect("the fuzzing client registers");
    let mut config = IssuerConfig::new(grants.clone());
    config.clients = clients;
    config.development = false;
    config.signing_key = Some(SigningKey::from_jwk(crate::ISSUER_JWK).expect("the fuzzing key"));
    Fixture {
        issuer: Issuer::new(config, ISSUER).expect("the fuzzing issuer starts"),
        grants,
        client_key,
        n,
        e,
    }
});

/// An assertion signed by the registered client (for seeds and tests).
pub fn sign(claims: &[u8]) -> String {
    let header = format!(r#"{{"alg":"RS256","kid":"{}"}}"#, FIXTURE.client_key.kid());
    FIXTURE
        .client_key
        .sign_compact(Algorithm::RS256, header.as_bytes(), claims)
        .expect("RS256 signing works")
}

/// The fuzz target.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let fixture = &*FIXTURE;
    let assertion = if mode % 2 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        text.to_owned()
    } else {
        let Some(mut claims) = oracle::json_object(rest) else {
            // Not an object: sign the bytes as they are, so malformed JSON is reached too.
            return check(&sign(rest), fixture);
        };
        make_current(&mut claims);
        sign(Value::Object(claims).to_string().as_bytes())
    };
    check(&assertion, fixture);
}

fn check(assertion: &str, fixture: &Fixture) {
    let Ok(response) = fixture.issuer.exchange_assertion(assertion) else {
        return;
    };
    assert!(
        oracle::rs256_verifies(assertion, &fixture.n, &fixture.e),
        "accepted an assertion whose signature does not verify independently"
    );
    let payload = response
        .access_token
        .split('.')
        .nth(1)
        .and_then(oracle::base64url)
        .and_then(|p| oracle::json_object(&p))
        .expect("the minted token has a JSON payload");
    let consumer = payload["consumer"]["ID"].as_str().unwrap_or_default();
    let orgno = consumer.strip_prefix("0192:").unwrap_or_default();
    let supplier = payload.get("supplier");
    // A delegated token names the organization acted for; without delegation, the client's.
    if supplier.is_none() {
        assert_eq!(orgno, CLIENT_ORGNO, "minted a token for another consumer");
    }
    for scope in payload["scope"].as_str().unwrap_or_default().split(' ') {
        assert!(
            fixture.grants.check(orgno, scope).is_ok(),
            "minted scope {scope:?} for {orgno}, which the manifest does not grant"
        );
    }
}

fn make_current(claims: &mut Map<String, Value>) {
    static NEXT_JTI: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for value in claims.values_mut() {
        let Some(text) = value.as_str() else {
            continue;
        };
        let replacement = match text {
            "now" => Value::from(now),
            "fresh" => Value::from(format!("fuzz-{}", NEXT_JTI.fetch_add(1, Ordering::Relaxed))),
            "issuer" => Value::from(ISSUER),
            _ => match text.strip_prefix("now").and_then(|n| n.parse::<i64>().ok()) {
                Some(offset) => Value::from(now.saturating_add(offset)),
                None => continue,
            },
        };
        *value = replacement;
    }
}
