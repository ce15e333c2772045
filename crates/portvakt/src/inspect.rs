//! A per-check report of one token, for people (`portvakt inspect`).
//!
//! [`Validator::validate`](crate::Validator::validate) stops at the first failure, which is
//! right for a decision and unhelpful for a person debugging a token. An [`Inspection`] runs
//! every check it can and says for each whether it passed, failed (and why) or was skipped.
//! The verdict is still the validator's own: the report never decides.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{ValidationError, printable};
use crate::jws::{
    decode_header, decode_unverified_header, decode_unverified_payload, split_compact,
};
use crate::policy::Policy;
use crate::token::{Claims, VerifiedToken, check_audience};
use crate::validator::Validator;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "lowercase")]
pub enum Outcome {
    /// The check passed; the detail says what was seen.
    Passed(String),
    /// The check failed; the detail says why.
    Failed(String),
    /// The check did not apply or could not run.
    Skipped(String),
}

/// One named check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `format`, `signature`, `issuer`, `expiry`, `not-before`, `issued-at`, `audience`, `scope`.
    pub name: &'static str,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A report on one token. Serializes to the JSON `portvakt inspect --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// Whether the validator accepted the token under the policy.
    pub valid: bool,
    /// The validator's error code when it refused.
    pub error: Option<&'static str>,
    /// The validator's message when it refused.
    pub error_description: Option<String>,
    /// Every check.
    pub checks: Vec<Check>,
    /// The decoded header, when it decodes. Never the signature.
    pub header: Option<Map<String, Value>>,
    /// The decoded claims, when they decode (verified only if `valid`).
    pub claims: Option<Map<String, Value>>,
}

impl Validator {
    /// Validates `token` under `policy` and reports every check. Like
    /// [`validate_with`](Self::validate_with), it may wait for one key refresh on an unknown
    /// `kid`.
    pub async fn inspect(&self, token: &str, policy: &Policy) -> Inspection {
        let verdict = self.validate_with(token, policy).await;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let header = decode_unverified_header(token).ok();
        let payload = decode_unverified_payload(token).ok();
        let mut checks = Vec::new();
        let format_ok = self.format_check(token, &mut checks);
        let signature_verified = signature_check(format_ok, &verdict, &mut checks);
        let verified_note = if signature_verified {
            ""
        } else {
            " (signature NOT verified)"
        };
        let claims = payload.clone().and_then(|map| Claims::from_map(map).ok());
        match &claims {
            None => {
                let why = if payload.is_some() {
                    "a claim has the wrong type"
                } else {
                    "the payload is not a JSON object"
                };
                for name in CLAIM_CHECKS {
                    checks.push(skipped(name, why));
                }
            }
            Some(claims) => self.claim_checks(claims, policy, now, verified_note, &mut checks),
        }

        let (valid, error, error_description) = match &verdict {
            Ok(_) => (true, None, None),
            Err(e) => (false, Some(e.code()), Some(e.to_string())),
        };
        Inspection {
            valid,
            error,
            error_description,
            checks,
            header,
            claims: payload,
        }
    }
}

/// The checks of the claims, in the order [`Inspection::checks`] lists them.
const CLAIM_CHECKS: [&str; 6] = [
    "issuer",
    "expiry",
    "not-before",
    "issued-at",
    "audience",
    "scope",
];

impl Validator {
    /// The `format` check: size, compact JWS, header. Whether it passed.
    fn format_check(&self, token: &str, checks: &mut Vec<Check>) -> bool {
        let format = if token.len() > self.max_token_size() {
            Err(ValidationError::TokenTooLarge {
                size: token.len(),
                limit: self.max_token_size(),
            })
        } else {
            split_compact(token).and_then(|parts| decode_header(parts.header, self.algorithms()))
        };
        match format {
            Ok(h) => {
                checks.push(passed(
                    "format",
                    format!("compact JWS, alg {}, kid `{}`", h.alg, printable(&h.kid)),
                ));
                true
            }
            Err(e) => {
                checks.push(failed("format", e.to_string()));
                false
            }
        }
    }

    /// The checks of [`CLAIM_CHECKS`], on claims read without trusting them.
    fn claim_checks(
        &self,
        claims: &Claims,
        policy: &Policy,
        now: i64,
        verified_note: &str,
        checks: &mut Vec<Check>,
    ) {
        let leeway = self.leeway_seconds();
        checks.push(self.issuer_check(claims, verified_note));
        checks.push(expiry_check(claims, now, leeway, verified_note));
        checks.push(not_before_check(claims, now, leeway));
        checks.push(issued_at_check(claims, now, leeway));
        let required_audience = policy.required_audience().or(self.required_audience());
        checks.push(match required_audience {
            None => skipped_owned(
                "audience",
                format!("no audience required (token aud: {:?})", claims.audience()),
            ),
            Some(required) => match check_audience(claims, required) {
                Ok(()) => passed("audience", format!("restricted to `{required}`")),
                Err(e) => failed("audience", e.to_string()),
            },
        });
        checks.push(scope_check(claims, policy));
    }

    fn issuer_check(&self, claims: &Claims, verified_note: &str) -> Check {
        match (self.issuer(), claims.issuer()) {
            (_, None) => failed("issuer", "no `iss` claim".to_owned()),
            (None, Some(iss)) => skipped_owned(
                "issuer",
                format!("`{}`; the trusted issuer is not known yet", printable(iss)),
            ),
            (Some(trusted), Some(iss)) if trusted == iss => {
                passed("issuer", format!("{iss}{verified_note}"))
            }
            (Some(trusted), Some(iss)) => failed(
                "issuer",
                format!("`{}` is not the trusted issuer `{trusted}`", printable(iss)),
            ),
        }
    }
}

/// The `signature` check: the validator's verdict, unless it failed on something later.
/// Whether the signature is known to be good.
fn signature_check(
    format_ok: bool,
    verdict: &Result<VerifiedToken, ValidationError>,
    checks: &mut Vec<Check>,
) -> bool {
    let signature_error = match verdict {
        Err(e) if is_signature_stage(e) => Some(e),
        _ => None,
    };
    checks.push(match (format_ok, signature_error, verdict) {
        (false, _, _) => skipped("signature", "the token is not a well-formed JWS"),
        (true, Some(e), _) => failed("signature", e.to_string()),
        (true, None, Ok(v)) => passed(
            "signature",
            format!(
                "{} with the issuer's key `{}`",
                v.algorithm(),
                printable(v.kid())
            ),
        ),
        (true, None, Err(_)) => passed("signature", "verified with the issuer's key".to_owned()),
    });
    format_ok && signature_error.is_none()
}

fn expiry_check(claims: &Claims, now: i64, leeway: i64, verified_note: &str) -> Check {
    match claims.expires_at() {
        None => failed("expiry", "no `exp` claim".to_owned()),
        Some(exp) if now >= exp.saturating_add(leeway) => failed(
            "expiry",
            format!(
                "expired {} ({} s ago, leeway {leeway} s)",
                utc(exp),
                now.saturating_sub(exp)
            ),
        ),
        Some(exp) => passed(
            "expiry",
            format!(
                "expires {} ({}){verified_note}",
                utc(exp),
                relative(exp.saturating_sub(now))
            ),
        ),
    }
}

fn not_before_check(claims: &Claims, now: i64, leeway: i64) -> Check {
    match claims.not_before() {
        None => skipped(
            "not-before",
            "no `nbf` claim (Maskinporten does not set one)",
        ),
        Some(nbf) if now.saturating_add(leeway) < nbf => failed(
            "not-before",
            format!(
                "not valid before {} ({})",
                utc(nbf),
                relative(nbf.saturating_sub(now))
            ),
        ),
        Some(nbf) => passed("not-before", format!("valid since {}", utc(nbf))),
    }
}

fn issued_at_check(claims: &Claims, now: i64, leeway: i64) -> Check {
    match claims.issued_at() {
        None => skipped("issued-at", "no `iat` claim"),
        Some(iat) if iat > now.saturating_add(leeway) => failed(
            "issued-at",
            format!(
                "issued in the future: {} ({})",
                utc(iat),
                relative(iat.saturating_sub(now))
            ),
        ),
        Some(iat) => passed(
            "issued-at",
            format!(
                "issued {} ({})",
                utc(iat),
                relative(iat.saturating_sub(now))
            ),
        ),
    }
}

fn scope_check(claims: &Claims, policy: &Policy) -> Check {
    let requirement = policy.scope_requirement();
    // `requires_nothing`, not "names no scope": an empty any-of names none and still refuses
    // every token, and the report must say so.
    if requirement.requires_nothing() {
        skipped_owned(
            "scope",
            format!("no scope required (token has `{}`)", claims.scopes()),
        )
    } else if requirement.is_satisfied_by(claims.scopes()) {
        passed(
            "scope",
            format!("needs {requirement}; token has `{}`", claims.scopes()),
        )
    } else {
        failed(
            "scope",
            format!("needs {requirement}; token has `{}`", claims.scopes()),
        )
    }
}

fn passed(name: &'static str, detail: String) -> Check {
    Check {
        name,
        outcome: Outcome::Passed(detail),
    }
}

fn failed(name: &'static str, detail: String) -> Check {
    Check {
        name,
        outcome: Outcome::Failed(detail),
    }
}

fn skipped(name: &'static str, detail: &str) -> Check {
    Check {
        name,
        outcome: Outcome::Skipped(detail.to_owned()),
    }
}

fn skipped_owned(name: &'static str, detail: String) -> Check {
    Check {
        name,
        outcome: Outcome::Skipped(detail),
    }
}

/// Errors raised before or by the signature check: the claims were never trusted.
fn is_signature_stage(error: &ValidationError) -> bool {
    matches!(
        error,
        ValidationError::TokenTooLarge { .. }
            | ValidationError::NotCompactJws { .. }
            | ValidationError::BadBase64 { .. }
            | ValidationError::AlgorithmNotAllowed { .. }
            | ValidationError::MissingKid
            | ValidationError::UnsupportedHeader { .. }
            | ValidationError::UnknownKid { .. }
            | ValidationError::KeysUnavailable
            | ValidationError::KeyAlgorithmMismatch { .. }
            | ValidationError::BadSignature { .. }
    ) || matches!(
        error,
        ValidationError::BadJson {
            segment: crate::Segment::Header,
            ..
        }
    )
}

/// `seconds` from now, for people. The claims are unverified input, so every difference is
/// saturating and the magnitude is taken with `unsigned_abs` (`-i64::MIN` overflows).
fn relative(seconds: i64) -> String {
    if seconds >= 0 {
        format!("in {seconds} s")
    } else {
        format!("{} s ago", seconds.unsigned_abs())
    }
}

/// Seconds since 1970 as an RFC 3339 UTC time (proleptic Gregorian, Howard Hinnant's
/// days-to-civil algorithm), so no date crate is needed for one line of output.
pub fn utc(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_770_113_767), "2026-02-03T10:16:07Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(-1), "1969-12-31T23:59:59Z");
        // Unverified claims reach this; the extremes must format, not overflow.
        assert!(utc(i64::MIN).ends_with('Z'));
        assert!(utc(i64::MAX).ends_with('Z'));
    }

    #[test]
    fn relative_handles_the_extremes() {
        assert_eq!(relative(0), "in 0 s");
        assert_eq!(relative(-5), "5 s ago");
        assert_eq!(relative(i64::MIN), "9223372036854775808 s ago");
        assert_eq!(relative(i64::MAX), "in 9223372036854775807 s");
    }

    /// Regression: `now - exp`, `iat - now`, `nbf - now` and `-seconds` overflowed (a panic in
    /// debug builds) for extreme, signed but otherwise unchecked claims.
    #[tokio::test]
    async fn extreme_time_claims_are_reported_not_panicked_on() {
        use crate::{Algorithm, Config, KeySet, SigningKey};
        let issuer = "https://test.maskinporten.no/";
        let key = SigningKey::generate("k").unwrap();
        let config = Config::builder()
            .issuer(issuer)
            .jwks_uri("https://test.maskinporten.no/jwk")
            .build()
            .unwrap();
        let jwks = serde_json::json!({"keys": [key.public_jwk()]}).to_string();
        let (keys, _) = KeySet::from_jwks(jwks.as_bytes(), &[Algorithm::RS256]).unwrap();
        let validator = Validator::with_keys(&config, issuer, keys);
        for extreme in [i64::MIN, i64::MIN + 1, -1, i64::MAX - 1, i64::MAX] {
            for claim in ["exp", "iat", "nbf"] {
                let mut claims = serde_json::json!({
                    "iss": issuer, "scope": "s", "exp": 4_000_000_000i64, "iat": 1_700_000_000i64,
                });
                claims[claim] = serde_json::json!(extreme);
                let token = key.sign_jwt(Algorithm::RS256, &claims).unwrap();
                let report = validator.inspect(&token, &Policy::new()).await;
                let name = match claim {
                    "exp" => "expiry",
                    "iat" => "issued-at",
                    _ => "not-before",
                };
                let check = report.checks.iter().find(|c| c.name == name).unwrap();
                // The verdict and the report agree on which extreme is fatal.
                let fatal = match claim {
                    "exp" => extreme < 1_700_000_000,
                    _ => extreme > 4_000_000_000,
                };
                assert_eq!(report.valid, !fatal, "{claim}={extreme}: {report:?}");
                assert_eq!(
                    matches!(check.outcome, Outcome::Failed(_)),
                    fatal,
                    "{claim}={extreme}: {check:?}"
                );
            }
        }
    }
}
