//! Why `portvakt serve` stops before it serves: one typed error per cause, each saying what was
//! wrong and what to do. `main` prints it and decides the exit code: 1 when `--check-policy`
//! found the policy invalid, 2 for every configuration error (an unreadable policy file
//! among them).

/// `portvakt serve` could not start, or `--check-policy` found problems.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// `--check-policy` found errors (or could not read the file); the text is the whole
    /// report, each line ending in a newline.
    #[error("{0}")]
    PolicyInvalid(String),
    /// `--check-policy` could not read the file; the text is the whole report with a help
    /// line.
    #[error("{0}")]
    PolicyUnreadable(String),
    /// `--check-policy` without a policy file.
    #[error("--check-policy needs --policy FILE")]
    CheckPolicyNeedsPolicy,
    /// A policy without an upstream to enforce it in front of.
    #[error(
        "--policy (PORTVAKT_POLICY) needs --upstream URL (PORTVAKT_UPSTREAM): the policy is enforced by the proxy in front of the upstream; add --upstream http://127.0.0.1:PORT, or --check-policy to only check the file"
    )]
    PolicyNeedsUpstream,
    /// The `MASKINPORTEN_*` variables, `KUBERNETES_SERVICE_HOST` and `--dev` do not make a
    /// mode (see [`super::choose_mode`]).
    #[error("{0}")]
    Mode(String),
    /// Development mode's local issuer: no manifest, a manifest it cannot use, or no address.
    #[error("{0}")]
    DevIssuer(String),
    /// The validation settings (`MASKINPORTEN_*`, `--token-cache-bytes`) are not usable.
    #[error(transparent)]
    Config(#[from] portvakt::ConfigError),
    /// The validator could not start (no HTTPS client on this host).
    #[error(transparent)]
    Start(#[from] portvakt::StartError),
    /// The issuer answered, but with something that cannot work (e.g. a discovery document
    /// naming another issuer); retrying would not help.
    #[error(transparent)]
    IssuerMisconfigured(Box<portvakt::Misconfiguration>),
    /// A listener's address cannot be bound.
    #[error("cannot listen on {addr} ({flag}): {source}")]
    Listen {
        /// The address as given.
        addr: String,
        /// The flag and variable that set it.
        flag: &'static str,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// `--upstream` or the policy file cannot be used (the text names the file, line and
    /// column, or what is wrong with the upstream).
    #[error("{0}")]
    Proxy(String),
    /// A proxy limit or timeout is zero.
    #[error(transparent)]
    ProxyLimits(#[from] crate::proxy::ProxyError),
    /// The command after `--` cannot be started.
    #[cfg(unix)]
    #[error(transparent)]
    App(super::child::SpawnError),
    /// The command after `--` cannot be started (no Unix processes here).
    #[cfg(not(unix))]
    #[error("{0}")]
    App(String),
}
