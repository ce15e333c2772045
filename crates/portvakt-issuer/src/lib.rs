//! # portvakt-issuer
//!
//! A local Maskinporten that enforces your own `nais.yaml`: "consumer 889640782 may read but
//! not write" becomes testable on a laptop, before deploying.
//!
//! It behaves like Maskinporten where a consumer or a validator can tell:
//!
//! - endpoints at Maskinporten's paths: `GET /.well-known/oauth-authorization-server` (RFC 8414),
//!   `GET /jwk`, `POST /token`; the issuer identifier is `http://ADDR/`, with the trailing slash;
//! - the JWT-bearer grant, the assertion verified as Maskinporten does (registered client and key,
//!   `aud` = the issuer, `iat` within 10 s, `exp - iat` at most 120 s, `jti` not reused while the assertion is valid,
//!   unknown claims refused; optional `resource`, `consumer_org`, `pid`,
//!   `authorization_details` of the types in [`AUTHORIZATION_DETAILS_TYPES`]), refusals as `{"error", "error_description"}` with Maskinporten's
//!   codes and a description that says exactly what failed;
//! - grants from the manifest ([`GrantsTable`](portvakt_manifest::GrantsTable)): a scope is issued only when exposed, enabled and
//!   granted to the organization (or accessible for all); lifetime is the lowest `atMaxAge` of
//!   the scopes, capped at the client lifetime ([`DEFAULT_MAX_TOKEN_LIFETIME`], 120 s);
//! - tokens shaped like Maskinporten's: header `{"kid", "alg": "RS256"}` only; claims `iss`,
//!   `scope`, `client_id`, `client_amr`, `token_type`, `consumer`, `iat`, `exp`, `jti`, plus
//!   `aud` only when audience-restricted and `supplier`/`delegation_source` when delegated. No
//!   `nbf`, `sub` or `typ`.
//!
//! For development it also has `POST /dev/token` (a token for an organization without an
//! assertion, grants still enforced) and `POST /admin/rotate` (key rotation with a grace
//! period; with [`IssuerConfig::announce_next`] to a key published a rotation ahead, and with
//! `?unannounced=true` to a fresh key that signs at once); with `development: false` both
//! answer 404.
//!
//! ```no_run
//! use portvakt_issuer::{Issuer, IssuerConfig};
//! use portvakt_manifest::Manifest;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let manifest = Manifest::from_path("nais.yaml")?;
//! let config = IssuerConfig::from_manifest(&manifest)?;
//! let running = Issuer::bind("127.0.0.1:0", config).await?;
//! println!("issuer {}", running.issuer_url()); // http://127.0.0.1:PORT/
//! # running.shutdown().await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod assertion;
mod clients;
mod error;
mod grant;
mod http;
mod issuer;
mod keys;
mod replay;

pub use admin::{ADMIN_SCOPES, ALTINN, DigdirState};
pub use assertion::{
    ACCEPTED_CLAIMS, AUTHORIZATION_DETAILS_TYPES, MAX_ASSERTION_BYTES, MAX_ASSERTION_LIFETIME_SECS,
    MAX_CLOCK_SKEW_SECS,
};
pub use clients::{ASSERTION_ALGORITHMS, ClientRegistry, RegisteredClient, generate_client_key};
pub use error::{ClientError, ErrorCode, IssuerError, OAuthError};
pub use grant::CONSUMER_AUTHORITY;
pub use http::{JWT_BEARER, is_loopback_host};
pub use issuer::{
    ALTINN_DELEGATION_SOURCE, CLIENT_AMR, DEFAULT_GRACE, DEFAULT_LISTEN,
    DEFAULT_MAX_TOKEN_LIFETIME, DEV_CLIENT_PREFIX, DevTokenRequest, Issuer, IssuerConfig,
    MAX_GRACE, RunningIssuer, TokenResponse, check_issuer_url, issuer_url_for, serve, serve_with,
};
pub use keys::Rotation;
