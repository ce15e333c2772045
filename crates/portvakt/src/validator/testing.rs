//! What the validator's unit tests share: tokens a real validator verified, to put in the
//! cache and the per-thread copies.

use crate::token::VerifiedToken;
use crate::{Algorithm, Config, KeySet, SigningKey, Validator};

/// One verified token for each `jti`, all signed by one fresh key, valid for ten minutes.
pub(super) fn verified(jtis: &[&str]) -> Vec<VerifiedToken> {
    const ISSUER: &str = "https://test.maskinporten.no/";
    let key = SigningKey::generate("validator-test").unwrap();
    let config = Config::builder()
        .issuer(ISSUER)
        .jwks_uri("https://test.maskinporten.no/jwk")
        .cache_bytes(0)
        .build()
        .unwrap();
    let keys = KeySet::from_jwks_values(&[key.public_jwk()], &[Algorithm::RS256]).0;
    let validator = Validator::with_keys(&config, ISSUER, keys);
    let now = now();
    jtis.iter()
        .map(|jti| {
            let claims = serde_json::json!({"iss": ISSUER, "exp": now + 600, "jti": jti});
            validator
                .validate_now(&key.sign_jwt(Algorithm::RS256, &claims).unwrap())
                .unwrap()
        })
        .collect()
}

/// The clock, in seconds since the epoch, as the cache takes it.
pub(super) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
