//! Where the admin API is and who the admin client is: the `PORTVAKT_ADMIN_*` settings.

use std::path::Path;

use portvakt::SigningKey;
use portvakt::client::{TokenClient, discover_raw};
use url::Url;

use crate::client::{AdminAuth, AdminClient};
use crate::error::ProvisionError;

/// The admin API base, including `/api/v1`. No default: production is never reached by
/// accident.
pub const ENV_ADMIN_URL: &str = "PORTVAKT_ADMIN_URL";
/// The Maskinporten issuer that issues the admin token (its discovery document gives the token
/// endpoint), e.g. `https://test.maskinporten.no/`.
pub const ENV_ADMIN_MASKINPORTEN_URL: &str = "PORTVAKT_ADMIN_MASKINPORTEN_URL";
/// The admin client's id.
pub const ENV_ADMIN_CLIENT_ID: &str = "PORTVAKT_ADMIN_CLIENT_ID";
/// The admin client's private JWK with `kid` (the JSON, or a path to a file holding it).
pub const ENV_ADMIN_CLIENT_JWK: &str = "PORTVAKT_ADMIN_CLIENT_JWK";
/// The business certificate chain, PEM (the text, or a path), for `x5c`.
pub const ENV_ADMIN_CERTIFICATE: &str = "PORTVAKT_ADMIN_CERTIFICATE";
/// The certificate's RSA private key, PEM (the text, or a path), for `x5c`.
pub const ENV_ADMIN_PRIVATE_KEY: &str = "PORTVAKT_ADMIN_PRIVATE_KEY";
/// The NAIS cluster that goes into scope descriptions.
pub const ENV_CLUSTER: &str = "NAIS_CLUSTER_NAME";
/// The cluster when `NAIS_CLUSTER_NAME` is not set (a laptop).
pub const DEFAULT_CLUSTER: &str = "local";
/// The organization a development admin token is for when none is given: NAV, as at NAIS.
pub const DEFAULT_DEV_ORGNO: &str = "889640782";

/// `NAIS_CLUSTER_NAME`, or [`DEFAULT_CLUSTER`] when it is unset or empty.
pub fn cluster_from_env() -> String {
    std::env::var(ENV_CLUSTER)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_CLUSTER.to_owned())
}

/// The settings, from flags or the environment (the CLI fills them).
#[derive(Clone, Default)]
pub struct AdminSettings {
    /// [`ENV_ADMIN_URL`].
    pub admin_url: Option<String>,
    /// [`ENV_ADMIN_MASKINPORTEN_URL`]; for an admin API on loopback it defaults to the same
    /// origin (portvakt's local issuer serves both).
    pub maskinporten_url: Option<String>,
    /// [`ENV_ADMIN_CLIENT_ID`]. Without it, the admin token comes from the local issuer's
    /// `/dev/token` (development mode only).
    pub client_id: Option<String>,
    /// [`ENV_ADMIN_CLIENT_JWK`]. A secret.
    pub client_jwk: Option<String>,
    /// [`ENV_ADMIN_CERTIFICATE`].
    pub certificate: Option<String>,
    /// [`ENV_ADMIN_PRIVATE_KEY`]. A secret.
    pub private_key: Option<String>,
    /// The organization of a development admin token ([`DEFAULT_DEV_ORGNO`] when `None`).
    pub dev_orgno: Option<String>,
}

impl std::fmt::Debug for AdminSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSettings")
            .field("admin_url", &self.admin_url)
            .field("maskinporten_url", &self.maskinporten_url)
            .field("client_id", &self.client_id)
            .field("client_jwk", &self.client_jwk.as_ref().map(|_| "<secret>"))
            .field("certificate", &self.certificate.is_some())
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<secret>"),
            )
            .finish()
    }
}

/// The value itself when it looks like JSON or PEM, else the content of the file it names.
///
/// A value that is neither and names no readable file is never echoed: it may be the secret
/// itself, mangled (quoted in an `.env` file, or PEM behind `openssl pkcs12`'s "Bag
/// Attributes"). Only something shaped like a path is shown.
fn value_or_file(name: &str, value: &str) -> Result<String, ProvisionError> {
    let trimmed = value.trim().trim_start_matches('\u{feff}').trim();
    if trimmed.starts_with('{') || trimmed.contains("-----BEGIN") {
        return Ok(trimmed.to_owned());
    }
    std::fs::read_to_string(Path::new(trimmed)).map_err(|e| {
        ProvisionError::Config(format!(
            "{name} is neither the value itself (JSON starting with `{{`, or PEM) nor a readable file: {}: {e}",
            shown_as_path(trimmed)
        ))
    })
}

/// `value` quoted when it is shaped like a path (one short line, no JSON or PEM in it), else
/// only its length: what [`value_or_file`] may show of a value that could be a secret.
fn shown_as_path(value: &str) -> String {
    let path_like = value.len() <= 255
        && !value.contains(['\n', '\r', '{', '"', '\''])
        && !value.contains("-----");
    if path_like {
        format!("{value:?}")
    } else {
        format!(
            "a value of {} characters (not shown: it may be the secret itself)",
            value.chars().count()
        )
    }
}

impl AdminSettings {
    /// Builds the client: checks the settings, finds the token endpoint through discovery.
    ///
    /// # Errors
    /// [`ProvisionError::Config`] naming the variable to set or fix.
    pub async fn connect(&self) -> Result<AdminClient, ProvisionError> {
        let admin_url = self.admin_url.as_deref().ok_or_else(|| {
            ProvisionError::Config(format!(
                "{ENV_ADMIN_URL} is not set (or --admin-url): the admin API, e.g. https://api.test.samarbeid.digdir.no/api/v1 for test, or http://127.0.0.1:7166/api/v1 for `portvakt issuer`"
            ))
        })?;
        // Checked before discovery, so that a wrong admin URL is named as such, not as a
        // failed discovery.
        let parsed = crate::client::parse_base(admin_url).map_err(|e| match e {
            ProvisionError::Config(why) => {
                ProvisionError::Config(format!("{ENV_ADMIN_URL}: {why}"))
            }
            other => other,
        })?;
        let maskinporten = match (&self.maskinporten_url, portvakt::is_loopback_url(&parsed)) {
            (Some(url), _) => url.clone(),
            (None, true) => format!("{}/", parsed.origin().ascii_serialization()),
            (None, false) => {
                return Err(ProvisionError::Config(format!(
                    "{ENV_ADMIN_MASKINPORTEN_URL} is not set (or --admin-maskinporten-url): the Maskinporten that issues the admin token, e.g. https://test.maskinporten.no/"
                )));
            }
        };
        let well_known = format!(
            "{}/.well-known/oauth-authorization-server",
            maskinporten.trim_end_matches('/')
        );
        let auth = match &self.client_id {
            Some(client_id) => {
                let key = self.signing_key()?;
                AdminAuth::Client(TokenClient::discover(client_id.clone(), key, &well_known).await?)
            }
            None => {
                let document =
                    discover_raw(&well_known, std::time::Duration::from_secs(10)).await?;
                let endpoint = document
                    .get("portvakt_dev_token_endpoint")
                    .and_then(serde_json::Value::as_str)
                    .and_then(|u| Url::parse(u).ok())
                    .ok_or_else(|| {
                        ProvisionError::Config(format!(
                            "{ENV_ADMIN_CLIENT_ID} is not set, and {maskinporten} is not a portvakt issuer in development mode: set {ENV_ADMIN_CLIENT_ID} and {ENV_ADMIN_CLIENT_JWK} (or {ENV_ADMIN_CERTIFICATE} and {ENV_ADMIN_PRIVATE_KEY}) for an admin client"
                        ))
                    })?;
                AdminAuth::DevToken {
                    endpoint,
                    orgno: self
                        .dev_orgno
                        .clone()
                        .unwrap_or_else(|| DEFAULT_DEV_ORGNO.to_owned()),
                }
            }
        };
        AdminClient::new(admin_url, auth)
    }

    fn signing_key(&self) -> Result<SigningKey, ProvisionError> {
        match (&self.client_jwk, &self.certificate, &self.private_key) {
            (Some(jwk), None, None) => {
                let text = value_or_file(ENV_ADMIN_CLIENT_JWK, jwk)?;
                SigningKey::from_jwk(&text)
                    .map_err(|e| ProvisionError::Config(format!("{ENV_ADMIN_CLIENT_JWK}: {e}")))
            }
            (None, Some(certificate), Some(key)) => {
                let chain = value_or_file(ENV_ADMIN_CERTIFICATE, certificate)?;
                let key = value_or_file(ENV_ADMIN_PRIVATE_KEY, key)?;
                SigningKey::from_pem_with_chain(&key, &chain).map_err(|e| {
                    ProvisionError::Config(format!(
                        "{ENV_ADMIN_CERTIFICATE} / {ENV_ADMIN_PRIVATE_KEY}: {e}"
                    ))
                })
            }
            (None, None, None) => Err(ProvisionError::Config(format!(
                "{ENV_ADMIN_CLIENT_ID} is set but no key: set {ENV_ADMIN_CLIENT_JWK} (a private JWK with kid) or {ENV_ADMIN_CERTIFICATE} and {ENV_ADMIN_PRIVATE_KEY} (x5c)"
            ))),
            (Some(_), _, _) => Err(ProvisionError::Config(format!(
                "set either {ENV_ADMIN_CLIENT_JWK} or {ENV_ADMIN_CERTIFICATE} + {ENV_ADMIN_PRIVATE_KEY}, not both"
            ))),
            _ => Err(ProvisionError::Config(format!(
                "{ENV_ADMIN_CERTIFICATE} and {ENV_ADMIN_PRIVATE_KEY} go together: set both"
            ))),
        }
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
