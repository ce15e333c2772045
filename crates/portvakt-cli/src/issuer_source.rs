//! Where commands that validate find the issuer: the `MASKINPORTEN_*` environment NAIS
//! injects, or else `--issuer` (default: the local development issuer).

use std::path::{Path, PathBuf};

use clap::Args;
use portvakt::{Config, ConfigBuilder};
use portvakt_manifest::{CheckOptions, Manifest, ReadError};

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

/// The NAIS guide's example manifest (a copy of `examples/nais.yaml`; a test keeps the two
/// equal), built into the binary so the local issuer runs anywhere, also outside this
/// repository.
pub const GUIDE_EXAMPLE: &str = include_str!("guide-example.yaml");

/// The manifest the local issuer enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestSource {
    /// A file: `--manifest FILE`, else `./nais.yaml` (the app's own).
    File(PathBuf),
    /// No `--manifest` and no `./nais.yaml`: [`GUIDE_EXAMPLE`].
    GuideExample,
}

impl ManifestSource {
    /// `explicit` (`--manifest`), else `./nais.yaml` when it exists, else the built-in example.
    pub fn choose(explicit: Option<&Path>) -> ManifestSource {
        match explicit {
            Some(path) => ManifestSource::File(path.to_owned()),
            None if Path::new("nais.yaml").is_file() => {
                ManifestSource::File(PathBuf::from("nais.yaml"))
            }
            None => ManifestSource::GuideExample,
        }
    }

    /// Reads and checks the manifest.
    pub fn load(&self, options: &CheckOptions) -> Result<Manifest, ReadError> {
        match self {
            ManifestSource::File(path) => Manifest::from_path_with(path, options),
            ManifestSource::GuideExample => Ok(Manifest::parse_with(
                GUIDE_EXAMPLE,
                "nais.yaml (built-in example)",
                options,
            )),
        }
    }

    /// For banners and messages: the file, or what the built-in example is and why it is used.
    pub fn describe(&self) -> String {
        match self {
            ManifestSource::File(path) => path.display().to_string(),
            ManifestSource::GuideExample => "the NAIS guide's example (built in: no ./nais.yaml here; pass --manifest FILE for your own)".to_owned(),
        }
    }
}
