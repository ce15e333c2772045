//! Where commands that validate find the issuer: the `MASKINPORTEN_*` environment NAIS
//! injects, or else `--issuer` (default: the local development issuer).

use std::path::PathBuf;

use clap::Args;
use portvakt::{Config, ConfigBuilder};

/// The local development issuer's address (`portvakt issuer`, and `portvakt serve` in
/// development mode).
pub const LOCAL_ISSUER: &str = "http://127.0.0.1:7166/";

/// `--issuer URL`, used only when no `MASKINPORTEN_*` variable is set.
#[derive(Debug, Clone, Args)]
pub struct IssuerSource {
    /// Issuer to validate against when MASKINPORTEN_WELL_KNOWN_URL / MASKINPORTEN_ISSUER /
    /// MASKINPORTEN_JWKS_URI are not set; its discovery document is read from
    /// ISSUER/.well-known/oauth-authorization-server.
    #[arg(long = "issuer", value_name = "URL", default_value = LOCAL_ISSUER)]
    pub url: String,
}

impl IssuerSource {
    /// The configuration builder: from the environment when it is set, else `--issuer`.
    pub fn builder(&self) -> Result<ConfigBuilder, String> {
        if Config::env_is_set() {
            ConfigBuilder::from_env().map_err(|e| e.to_string())
        } else {
            let issuer = if self.url.ends_with('/') {
                self.url.clone()
            } else {
                format!("{}/", self.url)
            };
            Ok(Config::builder().issuer(issuer))
        }
    }

    /// The validated configuration.
    pub fn config(&self) -> Result<Config, String> {
        self.builder()?.build().map_err(|e| e.to_string())
    }

    /// What to try when the issuer cannot be reached.
    pub fn hint(&self) -> String {
        if Config::env_is_set() {
            "check the MASKINPORTEN_* variables and that the issuer is reachable".to_owned()
        } else {
            format!(
                "no MASKINPORTEN_* variables are set, so {} was used; start the local issuer with `portvakt issuer` or pass --issuer",
                self.url
            )
        }
    }
}

/// The manifest the local issuer enforces when none is named: `./nais.yaml` when it exists
/// (the app's own), else `examples/nais.yaml` (the NAIS guide's example, in this repository);
/// `None` when neither exists.
pub fn default_manifest() -> Option<PathBuf> {
    ["nais.yaml", "examples/nais.yaml"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}
