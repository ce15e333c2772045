//! Validator settings, from the environment NAIS injects or built in code.
//!
//! Everything is checked when the configuration is built, so a mistake is reported at
//! start-up with the variable that holds it and what to do, never at the first request.

use std::time::Duration;

use url::{Host, Url};

use crate::algorithm::Algorithm;

/// The discovery document, set by NAIS when `spec.maskinporten.enabled` is true.
pub const ENV_WELL_KNOWN_URL: &str = "MASKINPORTEN_WELL_KNOWN_URL";
/// The trusted issuer, exactly as it appears in `iss` (Maskinporten's ends with `/`).
pub const ENV_ISSUER: &str = "MASKINPORTEN_ISSUER";
/// The issuer's JWKS endpoint.
pub const ENV_JWKS_URI: &str = "MASKINPORTEN_JWKS_URI";
/// portvakt's own: an audience every token must be restricted to (an absolute URI).
pub const ENV_AUDIENCE: &str = "PORTVAKT_AUDIENCE";
/// portvakt's own: a comma-separated algorithm allow-list (default `RS256`).
pub const ENV_ALGORITHMS: &str = "PORTVAKT_ALGORITHMS";

/// Default clock leeway, as the NAIS sidecar and Envoy use.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Default maximum token size. Maskinporten tokens are about 1 KiB; 16 KiB leaves room for
/// large `authorization_details` while keeping a flood of huge tokens cheap to refuse.
pub const DEFAULT_MAX_TOKEN_SIZE: usize = 16 * 1024;
/// How often keys are refreshed in the background.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// The least time between two refreshes caused by tokens with an unknown `kid`.
pub const DEFAULT_UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(10);
/// How long keys are kept when the issuer cannot be reached (Digdir advises caching ~24 h).
pub const DEFAULT_MAX_KEY_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// Timeout for each discovery or JWKS request.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest [`ConfigBuilder::http_timeout`]: five minutes.
pub const MAX_HTTP_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Memory budget for the verified-token cache: about 8,000 Maskinporten tokens (an entry takes
/// about 2 KiB: the token, its payload and the typed claims). Memory is used only by tokens
/// actually seen, so the budget is a ceiling, not an allocation.
pub const DEFAULT_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// A configuration mistake, reported at start-up with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Nothing says where the issuer is.
    #[error(
        "no Maskinporten issuer configured: set {ENV_WELL_KNOWN_URL} (NAIS injects it when spec.maskinporten.enabled is true), or {ENV_ISSUER} and {ENV_JWKS_URI}"
    )]
    NotConfigured,
    /// A JWKS URI was given but no issuer, so `iss` could not be checked.
    #[error(
        "{ENV_JWKS_URI} is set but the issuer is unknown: also set {ENV_ISSUER} (e.g. https://test.maskinporten.no/) or {ENV_WELL_KNOWN_URL}"
    )]
    MissingIssuer,
    /// A URL does not parse.
    #[error("{name} is not a valid URL ({value:?}): {reason}")]
    InvalidUrl {
        /// The variable or setting.
        name: &'static str,
        /// What was given.
        value: String,
        /// The parser's reason.
        reason: String,
    },
    /// A URL uses plain HTTP to a host that is not loopback.
    #[error(
        "{name} must use https ({value:?}); plain http is allowed only for loopback hosts (localhost, 127.0.0.1, [::1]) during development"
    )]
    InsecureUrl {
        /// The variable or setting.
        name: &'static str,
        /// What was given.
        value: String,
    },
    /// The required audience is not an absolute URI.
    #[error(
        "required audience {value:?} must be an absolute URI (e.g. https://api.example.no/), as consumers send it in `resource`"
    )]
    InvalidAudience {
        /// What was given.
        value: String,
    },
    /// The algorithm list is empty or names an unsupported algorithm.
    #[error("{0}")]
    InvalidAlgorithms(String),
    /// A number is out of its sensible range.
    #[error("{name} {reason}")]
    OutOfRange {
        /// The setting.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

/// The validator could not start: not a mistake in its configuration but in its surroundings
/// ([`Validator::new`](crate::Validator::new)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The validator needs a Tokio runtime for its background key refresh.
    #[error(
        "the portvakt validator must be created inside a Tokio runtime (it refreshes keys in the background)"
    )]
    NoRuntime,
    /// The HTTP client for discovery and JWKS requests could not be set up (TLS or platform
    /// trouble). Reported here rather than falling back to a client without timeouts, which
    /// a hanging issuer could stall forever.
    #[error(
        "could not set up the HTTPS client for the issuer's discovery and JWKS requests: {reason}; check the TLS set-up of this host (root certificates, crypto provider)"
    )]
    HttpClient {
        /// The HTTP library's reason.
        reason: String,
    },
}

/// Where the issuer's identity and keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// A discovery document fills in what was not given explicitly (the issuer, the JWKS URI,
    /// or both). Keys cannot be fetched until the document has been read once.
    Discovery {
        well_known: Url,
        issuer: Option<String>,
        jwks_uri: Option<Url>,
    },
    /// Issuer and JWKS URI given explicitly: keys come straight from the JWKS URI, so
    /// validation never depends on discovery. NAIS injects the well-known URL as well; when
    /// it is set, the document is read only to cross-check the issuer (a mismatch is reported
    /// through readiness, an outage is ignored).
    Explicit {
        issuer: String,
        jwks_uri: Url,
        cross_check: Option<Url>,
    },
}

/// Validated settings for a [`Validator`](crate::Validator).
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) source: Source,
    pub(crate) audience: Option<String>,
    pub(crate) leeway: Duration,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) max_token_size: usize,
    pub(crate) refresh_interval: Duration,
    pub(crate) unknown_kid_interval: Duration,
    pub(crate) max_key_age: Duration,
    pub(crate) http_timeout: Duration,
    pub(crate) cache_bytes: usize,
}

impl Config {
    /// Reads `MASKINPORTEN_WELL_KNOWN_URL`, `MASKINPORTEN_ISSUER`, `MASKINPORTEN_JWKS_URI` and
    /// portvakt's optional `PORTVAKT_AUDIENCE` and `PORTVAKT_ALGORITHMS`.
    pub fn from_env() -> Result<Config, ConfigError> {
        ConfigBuilder::from_env()?.build()
    }

    /// Starts a configuration in code.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The trusted issuer, when known before discovery.
    pub fn issuer(&self) -> Option<&str> {
        match &self.source {
            Source::Explicit { issuer, .. } => Some(issuer),
            Source::Discovery { issuer, .. } => issuer.as_deref(),
        }
    }

    /// The audience every token must be restricted to, if any.
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// The clock leeway.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// The allowed algorithms.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// Whether any `MASKINPORTEN_*` validation variable is set in the environment. The CLI uses
    /// this to decide between the configured issuer and its embedded development issuer.
    pub fn env_is_set() -> bool {
        [ENV_WELL_KNOWN_URL, ENV_ISSUER, ENV_JWKS_URI]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
    }
}

/// Builds a [`Config`]; every setter is optional except where the issuer comes from.
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    well_known_url: Option<(&'static str, String)>,
    issuer: Option<String>,
    jwks_uri: Option<(&'static str, String)>,
    audience: Option<String>,
    leeway: Duration,
    algorithms: Vec<Algorithm>,
    max_token_size: usize,
    refresh_interval: Duration,
    unknown_kid_interval: Duration,
    max_key_age: Duration,
    http_timeout: Duration,
    cache_bytes: usize,
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        ConfigBuilder {
            well_known_url: None,
            issuer: None,
            jwks_uri: None,
            audience: None,
            leeway: DEFAULT_LEEWAY,
            algorithms: vec![Algorithm::RS256],
            max_token_size: DEFAULT_MAX_TOKEN_SIZE,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            unknown_kid_interval: DEFAULT_UNKNOWN_KID_INTERVAL,
            max_key_age: DEFAULT_MAX_KEY_AGE,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

/// Reads an environment variable the way portvakt reads every `MASKINPORTEN_*` variable:
/// surrounding whitespace trimmed, and an empty (or unset, or non-UTF-8) value read as unset,
/// since a deployment that leaves a variable blank means "not set".
///
/// ```
/// // SAFETY (edition 2024): a single-threaded doctest.
/// unsafe { std::env::set_var("PORTVAKT_DOC_EXAMPLE", "  value \n") };
/// assert_eq!(portvakt::env_var("PORTVAKT_DOC_EXAMPLE").as_deref(), Some("value"));
/// unsafe { std::env::set_var("PORTVAKT_DOC_EXAMPLE", "   ") };
/// assert_eq!(portvakt::env_var("PORTVAKT_DOC_EXAMPLE"), None);
/// ```
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl ConfigBuilder {
    /// Starts from the environment (see [`Config::from_env`]); code may override after.
    pub fn from_env() -> Result<ConfigBuilder, ConfigError> {
        let mut builder = ConfigBuilder::default();
        if let Some(url) = env_var(ENV_WELL_KNOWN_URL) {
            builder.well_known_url = Some((ENV_WELL_KNOWN_URL, url));
        }
        builder.issuer = env_var(ENV_ISSUER);
        if let Some(url) = env_var(ENV_JWKS_URI) {
            builder.jwks_uri = Some((ENV_JWKS_URI, url));
        }
        builder.audience = env_var(ENV_AUDIENCE);
        if let Some(list) = env_var(ENV_ALGORITHMS) {
            builder.algorithms = list
                .split(',')
                .map(|name| {
                    name.trim().parse::<Algorithm>().map_err(|reason| {
                        ConfigError::InvalidAlgorithms(format!("{ENV_ALGORITHMS}: {reason}"))
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        Ok(builder)
    }

    /// The discovery document URL (RFC 8414 `/.well-known/oauth-authorization-server` or
    /// OpenID `/.well-known/openid-configuration`).
    pub fn well_known_url(mut self, url: impl Into<String>) -> Self {
        self.well_known_url = Some(("well-known URL", url.into()));
        self
    }

    /// The trusted issuer, compared exactly with `iss`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The JWKS endpoint.
    pub fn jwks_uri(mut self, url: impl Into<String>) -> Self {
        self.jwks_uri = Some(("JWKS URI", url.into()));
        self
    }

    /// Requires every token to be audience-restricted to this absolute URI.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Clock leeway for `exp`, `nbf` and `iat` (default 60 s; at most 5 minutes).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The allowed algorithms (default RS256 only).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// The largest token accepted, in bytes (default 16 KiB).
    pub fn max_token_size(mut self, bytes: usize) -> Self {
        self.max_token_size = bytes;
        self
    }

    /// How often keys are refreshed in the background (default 1 h).
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// The least time between refreshes caused by unknown `kid`s (default 10 s).
    pub fn unknown_kid_interval(mut self, interval: Duration) -> Self {
        self.unknown_kid_interval = interval;
        self
    }

    /// How long keys are used after their last successful fetch when the issuer stays
    /// unreachable (default 24 h; at least the refresh interval). Past it, validations answer
    /// `keys_unavailable` and readiness is not ready until the issuer answers again: keys the
    /// issuer may have revoked long ago are not trusted forever.
    pub fn max_key_age(mut self, age: Duration) -> Self {
        self.max_key_age = age;
        self
    }

    /// Timeout for each request to the issuer (default 5 s, at most [`MAX_HTTP_TIMEOUT`]).
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// Memory budget of the verified-token cache in bytes (default 16 MiB, about 8,000 tokens; 0 disables
    /// it).
    pub fn cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Checks everything and returns the configuration.
    pub fn build(self) -> Result<Config, ConfigError> {
        let well_known = self
            .well_known_url
            .map(|(name, value)| checked_url(name, &value))
            .transpose()?;
        let jwks_uri = self
            .jwks_uri
            .map(|(name, value)| checked_url(name, &value))
            .transpose()?;
        let issuer = self.issuer;
        if let Some(issuer) = &issuer {
            checked_url(ENV_ISSUER, issuer)?;
        }
        let source = match (well_known, issuer, jwks_uri) {
            // Both explicit (what NAIS injects, next to the well-known URL): discovery is
            // only a cross-check, never on the path to the keys.
            (cross_check, Some(issuer), Some(jwks_uri)) => Source::Explicit {
                issuer,
                jwks_uri,
                cross_check,
            },
            (Some(well_known), issuer, jwks_uri) => Source::Discovery {
                well_known,
                issuer,
                jwks_uri,
            },
            // Only the issuer: RFC 8414 puts its metadata at a well-known path below it.
            (None, Some(issuer), None) => Source::Discovery {
                well_known: derived_well_known(&issuer)?,
                issuer: Some(issuer),
                jwks_uri: None,
            },
            (None, None, Some(_)) => return Err(ConfigError::MissingIssuer),
            (None, None, None) => return Err(ConfigError::NotConfigured),
        };
        if let Some(audience) = &self.audience {
            // `Url::parse` accepts only absolute URIs: a scheme is required.
            if Url::parse(audience).is_err() {
                return Err(ConfigError::InvalidAudience {
                    value: audience.clone(),
                });
            }
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError::InvalidAlgorithms(
                "the algorithm allow-list is empty; Maskinporten needs RS256".to_owned(),
            ));
        }
        if self.leeway > Duration::from_secs(300) {
            return Err(ConfigError::OutOfRange {
                name: "leeway",
                reason: format!(
                    "is {} s; more than 300 s would accept tokens long after they expired",
                    self.leeway.as_secs()
                ),
            });
        }
        if self.max_token_size < 512 || self.max_token_size > 1024 * 1024 {
            return Err(ConfigError::OutOfRange {
                name: "max token size",
                reason: format!("is {} bytes; use 512 bytes to 1 MiB", self.max_token_size),
            });
        }
        if self.refresh_interval < Duration::from_secs(1) || self.unknown_kid_interval.is_zero() {
            return Err(ConfigError::OutOfRange {
                name: "refresh interval",
                reason: "must be at least 1 s (and the unknown-kid interval above zero)".to_owned(),
            });
        }
        if self.max_key_age < self.refresh_interval {
            return Err(ConfigError::OutOfRange {
                name: "maximum key age",
                reason: format!(
                    "is {} s, shorter than the refresh interval ({} s): keys would be dropped before the next refresh; make it at least the refresh interval",
                    self.max_key_age.as_secs_f64(),
                    self.refresh_interval.as_secs_f64()
                ),
            });
        }
        if self.http_timeout.is_zero() || self.http_timeout > MAX_HTTP_TIMEOUT {
            return Err(ConfigError::OutOfRange {
                name: "HTTP timeout",
                reason: format!(
                    "is {} s; use more than zero and at most {} s (one discovery or JWKS request waited on longer only delays knowing it failed)",
                    self.http_timeout.as_secs_f64(),
                    MAX_HTTP_TIMEOUT.as_secs()
                ),
            });
        }
        Ok(Config {
            source,
            audience: self.audience,
            leeway: self.leeway,
            algorithms: self.algorithms,
            max_token_size: self.max_token_size,
            refresh_interval: self.refresh_interval,
            unknown_kid_interval: self.unknown_kid_interval,
            max_key_age: self.max_key_age,
            http_timeout: self.http_timeout,
            cache_bytes: self.cache_bytes,
        })
    }
}

fn derived_well_known(issuer: &str) -> Result<Url, ConfigError> {
    let base = issuer.trim_end_matches('/');
    checked_url(
        ENV_ISSUER,
        &format!("{base}/.well-known/oauth-authorization-server"),
    )
}

/// Whether a URL's host is a loopback address or `localhost`: where plain `http` is allowed
/// (the validator's issuer documents; the CLI's upstream and admin API URLs ask the same).
///
/// ```
/// let url = |u| url::Url::parse(u).unwrap();
/// assert!(portvakt::is_loopback_url(&url("http://127.0.0.1:7166/")));
/// assert!(portvakt::is_loopback_url(&url("http://LOCALHOST/")));
/// assert!(portvakt::is_loopback_url(&url("http://[::1]:80/")));
/// assert!(!portvakt::is_loopback_url(&url("http://issuer.internal/")));
/// ```
pub fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Parses a URL and requires https, or http to a loopback host.
pub(crate) fn checked_url(name: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| ConfigError::InvalidUrl {
        name,
        value: value.to_owned(),
        reason: e.to_string(),
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback_url(&url) => Ok(url),
        "http" => Err(ConfigError::InsecureUrl {
            name,
            value: value.to_owned(),
        }),
        other => Err(ConfigError::InvalidUrl {
            name,
            value: value.to_owned(),
            reason: format!("scheme `{other}` is not https"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_issuer_and_jwks() {
        let config = Config::builder()
            .issuer("https://test.maskinporten.no/")
            .jwks_uri("https://test.maskinporten.no/jwk")
            .build()
            .unwrap();
        assert_eq!(config.issuer(), Some("https://test.maskinporten.no/"));
        assert!(matches!(config.source, Source::Explicit { .. }));
        assert_eq!(config.algorithms(), &[Algorithm::RS256]);
        assert_eq!(config.leeway(), Duration::from_secs(60));
    }

    #[test]
    fn explicit_issuer_and_jwks_never_depend_on_discovery() {
        // What NAIS injects: all three. The well-known URL is only a cross-check.
        let config = Config::builder()
            .well_known_url("https://test.maskinporten.no/.well-known/oauth-authorization-server")
            .issuer("https://test.maskinporten.no/")
            .jwks_uri("https://test.maskinporten.no/jwk")
            .build()
            .unwrap();
        match config.source {
            Source::Explicit {
                issuer,
                jwks_uri,
                cross_check: Some(well_known),
            } => {
                assert_eq!(issuer, "https://test.maskinporten.no/");
                assert_eq!(jwks_uri.as_str(), "https://test.maskinporten.no/jwk");
                assert_eq!(well_known.path(), "/.well-known/oauth-authorization-server");
            }
            other => panic!("{other:?}"),
        }
        // A JWKS URI without an issuer still needs the document, for the issuer.
        let config = Config::builder()
            .well_known_url("https://test.maskinporten.no/.well-known/oauth-authorization-server")
            .jwks_uri("https://test.maskinporten.no/jwk")
            .build()
            .unwrap();
        assert!(matches!(
            config.source,
            Source::Discovery {
                issuer: None,
                jwks_uri: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn keys_may_not_age_out_between_refreshes() {
        let base = || {
            Config::builder()
                .issuer("https://a/")
                .jwks_uri("https://a/jwk")
        };
        let err = base()
            .refresh_interval(Duration::from_secs(600))
            .max_key_age(Duration::from_secs(599))
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::OutOfRange {
                name: "maximum key age",
                ..
            }
        ));
        assert!(err.to_string().contains("refresh interval"), "{err}");
        assert!(
            base()
                .refresh_interval(Duration::from_secs(600))
                .max_key_age(Duration::from_secs(600))
                .build()
                .is_ok()
        );
    }

    #[test]
    fn issuer_alone_derives_rfc8414_discovery() {
        let config = Config::builder()
            .issuer("https://test.maskinporten.no/")
            .build()
            .unwrap();
        match config.source {
            Source::Discovery { well_known, .. } => assert_eq!(
                well_known.as_str(),
                "https://test.maskinporten.no/.well-known/oauth-authorization-server"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn https_required_except_loopback() {
        for ok in [
            "http://127.0.0.1:7166/jwk",
            "http://localhost:1/jwk",
            "http://[::1]:1/jwk",
            "http://127.8.9.1/jwk",
        ] {
            assert!(checked_url("X", ok).is_ok(), "{ok}");
        }
        let err = Config::builder()
            .issuer("https://a/")
            .jwks_uri("http://maskinporten.no/jwk")
            .build()
            .unwrap_err();
        assert!(matches!(err, ConfigError::InsecureUrl { .. }));
        assert!(err.to_string().contains("must use https"), "{err}");
        let err = checked_url(ENV_JWKS_URI, "not a url").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("MASKINPORTEN_JWKS_URI is not a valid URL"),
            "{err}"
        );
        assert!(checked_url("X", "ftp://127.0.0.1/").is_err());
        assert!(checked_url("X", "http://10.0.0.1/").is_err());
    }

    #[test]
    fn missing_pieces_are_named() {
        let err = Config::builder().build().unwrap_err();
        assert_eq!(err, ConfigError::NotConfigured);
        assert!(err.to_string().contains(ENV_WELL_KNOWN_URL));
        let err = Config::builder()
            .jwks_uri("https://a/jwk")
            .build()
            .unwrap_err();
        assert_eq!(err, ConfigError::MissingIssuer);
        assert!(err.to_string().contains(ENV_ISSUER));
    }

    #[test]
    fn audience_must_be_absolute() {
        let base = || {
            Config::builder()
                .issuer("https://a/")
                .jwks_uri("https://a/jwk")
        };
        assert!(base().audience("https://api.nav.no/x").build().is_ok());
        assert!(base().audience("urn:nav:api").build().is_ok());
        for bad in ["api.nav.no", "/relative", ""] {
            assert!(
                matches!(
                    base().audience(bad).build(),
                    Err(ConfigError::InvalidAudience { .. })
                ),
                "{bad}"
            );
        }
        assert!(base().leeway(Duration::from_secs(301)).build().is_err());
        assert!(base().algorithms([]).build().is_err());
        assert!(base().max_token_size(10).build().is_err());
    }
}
