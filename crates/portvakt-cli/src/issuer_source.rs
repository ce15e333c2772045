//! Where commands that validate find the issuer: `--issuer` when given, else the
//! `MASKINPORTEN_*` environment NAIS injects, else the local development issuer.

use std::path::{Path, PathBuf};

use clap::Args;
use portvakt::{Config, ConfigBuilder, ENV_ISSUER, ENV_JWKS_URI, ENV_WELL_KNOWN_URL, env_var};
use portvakt_manifest::{CheckOptions, Manifest, ReadError};

use crate::serve::{Mode, mode_from_env};

/// The local development issuer's address (`portvakt issuer`, and `portvakt serve` in
/// development mode).
pub const LOCAL_ISSUER: &str = "http://127.0.0.1:7166/";

/// `--issuer URL`: the issuer to validate against, before the `MASKINPORTEN_*` variables.
#[derive(Debug, Clone, Args)]
pub struct IssuerSource {
    /// Issuer to validate against; its discovery document is read from
    /// URL/.well-known/oauth-authorization-server. Given, it replaces the MASKINPORTEN_*
    /// variables (a note says which are ignored). [default: MASKINPORTEN_WELL_KNOWN_URL /
    /// MASKINPORTEN_ISSUER / MASKINPORTEN_JWKS_URI when set, else http://127.0.0.1:7166/]
    #[arg(long = "issuer", value_name = "URL")]
    pub url: Option<String>,
}

impl IssuerSource {
    /// The configuration builder: `--issuer` when given; else from the environment when a
    /// `MASKINPORTEN_*` variable is set, with `portvakt serve`'s check that they name an issuer
    /// (a misspelt or empty variable is an error, not a silent fall-back to the local issuer);
    /// else the local issuer.
    pub fn builder(&self) -> Result<ConfigBuilder, String> {
        if let Some(url) = &self.url {
            return Ok(Config::builder().issuer(with_slash(url)));
        }
        if !maskinporten_vars_present() {
            return Ok(Config::builder().issuer(LOCAL_ISSUER));
        }
        match mode_from_env(false) {
            Ok(Mode::Configured) => ConfigBuilder::from_env().map_err(|e| e.to_string()),
            // Not with MASKINPORTEN_* variables present; should it ever be, the local issuer.
            Ok(Mode::Development) => Ok(Config::builder().issuer(LOCAL_ISSUER)),
            Err(message) => Err(format!(
                "{message}\n  = help: or pass --issuer URL to inspect against that issuer (--issuer {LOCAL_ISSUER} for the local one)"
            )),
        }
    }

    /// The validated configuration.
    pub fn config(&self) -> Result<Config, String> {
        self.builder()?.build().map_err(|e| e.to_string())
    }

    /// The `MASKINPORTEN_*` variables naming an issuer that `--issuer` overrides (none without
    /// `--issuer`), for a note: the flag wins, but not silently.
    pub fn ignored_vars(&self) -> Vec<&'static str> {
        if self.url.is_none() {
            return Vec::new();
        }
        [ENV_WELL_KNOWN_URL, ENV_ISSUER, ENV_JWKS_URI]
            .into_iter()
            .filter(|name| env_var(name).is_some())
            .collect()
    }

    /// What to try when the issuer cannot be reached.
    pub fn hint(&self) -> String {
        match &self.url {
            Some(url) => format!(
                "{url} (--issuer) was used; check the URL, or start the local issuer with `portvakt issuer`"
            ),
            None if maskinporten_vars_present() => {
                "check the MASKINPORTEN_* variables and that the issuer is reachable, or pass --issuer".to_owned()
            }
            None => format!(
                "no MASKINPORTEN_* variables are set, so {LOCAL_ISSUER} was used; start the local issuer with `portvakt issuer` or pass --issuer"
            ),
        }
    }
}

/// Whether any `MASKINPORTEN_*` variable is set (with a value or not). Which of them name an
/// issuer, and what a set that names none means, is [`mode_from_env`]'s to decide.
fn maskinporten_vars_present() -> bool {
    std::env::vars_os().any(|(name, _)| name.to_string_lossy().starts_with("MASKINPORTEN_"))
}

/// An issuer URL with its trailing slash (Maskinporten's `iss` has one).
fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
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
