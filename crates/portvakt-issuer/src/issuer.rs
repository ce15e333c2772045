//! The issuer: configuration, state, issuance, rotation, and serving it over HTTP.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portvakt::{KeySet, SigningKey};
use portvakt_manifest::{GrantsTable, Manifest};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::oneshot;
use tokio::task::{AbortHandle, JoinHandle};
use url::Url;

use crate::admin::{ADMIN_SCOPES, DigdirState};
use crate::assertion;
use crate::clients::ClientRegistry;
use crate::error::{ErrorCode, IssuerError, OAuthError};
use crate::grant::{Authorized, Mint, authorize};
use crate::keys::{KeyRing, Rotation, new_kid};
use crate::replay::{DEFAULT_CAPACITY, ReplayCache};

/// The default listen address: next to the NAIS sidecar's 7164 and its probe port 7165.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7166";
/// The longest token lifetime by default, a common Maskinporten client lifetime. Tokens live
/// the lower of this and the lowest `atMaxAge` of their scopes.
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(120);
/// How long a rotated-out key stays in the JWKS by default: longer than any token it signed
/// (680 s, the highest `atMaxAge`, plus a validator's 60 s leeway), rounded up.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(15 * 60);
/// The longest grace a rotated-out key may have: a year, far beyond any token's lifetime, and
/// small enough that the clock arithmetic of a rotation cannot overflow.
pub const MAX_GRACE: Duration = Duration::from_secs(366 * 24 * 60 * 60);
/// The `delegation_source` claim for scopes with `delegationSource: altinn`, as Digdir's scope
/// registry spells Altinn's delegation source.
pub const ALTINN_DELEGATION_SOURCE: &str = "https://www.altinn.no/";
/// `client_amr` of every token this issuer mints (the only client authentication it knows).
pub const CLIENT_AMR: &str = "private_key_jwt";
/// Prefix of the `client_id` of tokens from `/dev/token` when the organization has no
/// registered client: `portvakt-dev-<orgno>`.
pub const DEV_CLIENT_PREFIX: &str = "portvakt-dev-";

/// How an issuer behaves. Start from [`IssuerConfig::new`] or [`IssuerConfig::from_manifest`]
/// and set fields.
#[non_exhaustive]
pub struct IssuerConfig {
    /// Who may get which scope, and token lifetimes.
    pub grants: GrantsTable,
    /// The clients accepted at `/token`.
    pub clients: ClientRegistry,
    /// Development mode (default true): serves `/dev/token` (a token without an assertion, still
    /// enforcing the grants) and `/admin/rotate`. Off, both answer 404: the instance behaves
    /// strictly like Maskinporten.
    pub development: bool,
    /// Rotate the signing key this often (at least 1 s). `None`: only on request.
    pub rotate_every: Option<Duration>,
    /// How long a rotated-out key stays in the JWKS (at most [`MAX_GRACE`]).
    pub grace: Duration,
    /// Publish the next signing key a rotation ahead (default false): the JWKS then holds the
    /// current key, the next one and the retired ones, and a rotation makes the announced key
    /// current, so validators hold it before the first token it signs. Off, a rotation signs
    /// with a key published that moment, which a validator learns through its rate-limited
    /// unknown-`kid` refresh. Costs one more RSA key generation at start. `portvakt issuer`
    /// turns it on.
    pub announce_next: bool,
    /// The longest token lifetime (the "client lifetime"); at least 1 s.
    pub max_token_lifetime: Duration,
    /// The first signing key; generated when `None`.
    pub signing_key: Option<SigningKey>,
    /// The issuer identifier when serving; by default `http://ADDR/` of the bound address
    /// (an unspecified address such as `0.0.0.0` is replaced by loopback).
    pub issuer_url: Option<String>,
    /// The `delegation_source` claim for scopes delegated through Altinn.
    pub altinn_delegation_source: String,
    /// The local Digdir's scopes and grants, which tokens are issued from. `None`: the
    /// manifest provisioned at start (see [`IssuerConfig::from_manifest`]), else `grants`;
    /// [`DigdirState::empty`] for `--empty`.
    pub digdir: Option<DigdirState>,
    /// Persists the local Digdir here (written atomically after every change); when the file
    /// exists at start, its state is loaded instead of `digdir` or the manifest.
    pub state_file: Option<PathBuf>,
    /// Registered clients (by `client_id`) that may get the admin scopes
    /// (`idporten:scopes.read`, `idporten:scopes.write`) with the JWT-bearer grant.
    pub admin_clients: BTreeSet<String>,
    /// The organization owning the local Digdir's scopes, and the only one `/dev/token` gives
    /// admin scopes to (default NAV, 889640782).
    pub owner_orgno: String,
    /// The manifest's scopes as provisioning would create them (set by `from_manifest`).
    seed: Option<portvakt_provision::Desired>,
}

impl fmt::Debug for IssuerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerConfig")
            .field("scopes", &self.grants.len())
            .field("clients", &self.clients.len())
            .field("development", &self.development)
            .field("rotate_every", &self.rotate_every)
            .field("announce_next", &self.announce_next)
            .field("grace", &self.grace)
            .field("max_token_lifetime", &self.max_token_lifetime)
            .field("issuer_url", &self.issuer_url)
            .field("state_file", &self.state_file)
            .field("admin_clients", &self.admin_clients)
            .finish_non_exhaustive()
    }
}

impl IssuerConfig {
    /// Development defaults for these grants: no clients, development mode, no automatic
    /// rotation, [`DEFAULT_GRACE`], [`DEFAULT_MAX_TOKEN_LIFETIME`].
    pub fn new(grants: GrantsTable) -> Self {
        IssuerConfig {
            grants,
            clients: ClientRegistry::new(),
            development: true,
            rotate_every: None,
            grace: DEFAULT_GRACE,
            announce_next: false,
            max_token_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
            signing_key: None,
            issuer_url: None,
            altinn_delegation_source: ALTINN_DELEGATION_SOURCE.to_owned(),
            digdir: None,
            state_file: None,
            admin_clients: BTreeSet::new(),
            owner_orgno: portvakt_provision::DEFAULT_DEV_ORGNO.to_owned(),
            seed: None,
        }
    }

    /// Starts the local Digdir as provisioning `manifest` with `naming` would leave it (what
    /// `from_manifest` does with the manifest's prefix and `NAIS_CLUSTER_NAME`, else `local`).
    pub fn provision_at_start(
        &mut self,
        manifest: &Manifest,
        naming: &portvakt_provision::Naming,
    ) -> Result<(), IssuerError> {
        let desired = portvakt_provision::desired(manifest, naming)
            .map_err(|e| IssuerError::Setting(e.to_string()))?;
        self.seed = Some(desired);
        Ok(())
    }

    /// Development defaults for a manifest's grants; refuses a manifest with errors (the table
    /// of a broken manifest is best effort, and NAIS would refuse it).
    pub fn from_manifest(manifest: &Manifest) -> Result<Self, IssuerError> {
        if manifest.has_errors() {
            return Err(IssuerError::ManifestErrors {
                file: manifest.file().to_owned(),
                count: manifest
                    .diagnostics()
                    .iter()
                    .filter(|d| d.is_error())
                    .count(),
            });
        }
        let mut config = IssuerConfig::new(manifest.grants());
        let naming = portvakt_provision::Naming {
            prefix: manifest.options().prefix.clone(),
            cluster: portvakt_provision::cluster_from_env(),
        };
        // A bare `spec:` fragment names no owner; its scopes then come from the grants table.
        let _ = config.provision_at_start(manifest, &naming);
        Ok(config)
    }
}

/// A token response, as Maskinporten sends it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The signed access token. A secret.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// The granted scopes, space-separated.
    pub scope: String,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

/// A request to the development shortcut: a token for `orgno` without an assertion. The
/// grants are enforced exactly as for `/token`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DevTokenRequest {
    /// The organization acting (the client's organization). Nine digits.
    pub orgno: String,
    /// The scopes requested.
    pub scopes: Vec<String>,
    /// An audience (`resource`) for an audience-restricted token.
    pub audience: Option<String>,
    /// For a delegated token: the organization on whose behalf `orgno` acts.
    pub on_behalf_of: Option<String>,
}

pub(crate) struct State {
    pub(crate) issuer: String,
    pub(crate) base: Url,
    pub(crate) grants: GrantsTable,
    pub(crate) clients: ClientRegistry,
    pub(crate) development: bool,
    rotate_every: Option<Duration>,
    grace: Duration,
    announce_next: bool,
    max_token_lifetime: Duration,
    pub(crate) altinn_delegation_source: String,
    pub(crate) digdir: Mutex<DigdirState>,
    pub(crate) state_file: Option<PathBuf>,
    admin_clients: BTreeSet<String>,
    pub(crate) owner_orgno: String,
    keys: Mutex<KeyRing>,
    replay: ReplayCache,
}

/// A local Maskinporten. Cheap to clone; clones share keys and state.
///
/// Serve it with [`Issuer::bind`] / [`serve`], or mount [`Issuer::router`] in your own axum
/// server (then give the issuer URL it is reachable at to [`Issuer::new`]).
#[derive(Clone)]
pub struct Issuer {
    pub(crate) state: Arc<State>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.state.issuer)
            .field("development", &self.state.development)
            .field("kid", &self.current_kid())
            .finish_non_exhaustive()
    }
}

/// A new signing key with a fresh `kid`.
fn fresh_key() -> Result<SigningKey, portvakt::SigningError> {
    SigningKey::generate(new_kid("portvakt"))
}

/// [`fresh_key`] off the async threads (RSA key generation takes a fraction of a second).
async fn generate_key() -> Result<SigningKey, IssuerError> {
    tokio::task::spawn_blocking(fresh_key)
        .await
        .map_err(|e| IssuerError::Setting(format!("key generation task failed: {e}")))?
        .map_err(IssuerError::from)
}

fn log_rotation(rotation: &Rotation, grace: Duration) {
    tracing::info!(
        new_kid = %rotation.new_kid,
        previous_kid = %rotation.previous_kid,
        announced = rotation.announced_since.is_some(),
        next_kid = rotation.next_kid.as_deref().unwrap_or("-"),
        grace_secs = grace.as_secs(),
        "rotated the issuer's signing key"
    );
}

/// The issuer identifier for a bound address: `http://ADDR/`, loopback for an unspecified IP.
pub fn issuer_url_for(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, addr.port()))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Checks an issuer identifier: an absolute http(s) URL in normal form, ending in `/` (as
/// Maskinporten's `https://test.maskinporten.no/` does), with no query or fragment. A path is
/// allowed: [`serve`] serves the issuer's routes under it.
///
/// # Errors
/// [`IssuerError::IssuerUrl`] saying what is wrong and what to write instead.
pub fn check_issuer_url(issuer_url: &str) -> Result<Url, IssuerError> {
    let bad = |reason: &str| IssuerError::IssuerUrl {
        url: issuer_url.to_owned(),
        reason: reason.to_owned(),
    };
    let base = Url::parse(issuer_url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(bad("must use http or https"));
    }
    if base.query().is_some() || base.fragment().is_some() {
        return Err(bad("must have no query or fragment"));
    }
    if !issuer_url.ends_with('/') {
        return Err(bad(&format!(
            "must end with `/`, as Maskinporten's does (https://test.maskinporten.no/): use {issuer_url}/"
        )));
    }
    if base.as_str() != issuer_url {
        return Err(bad(&format!("is not in normal form; use {base}")));
    }
    Ok(base)
}

impl Issuer {
    /// An issuer with identifier `issuer_url` (an absolute http(s) URL ending in `/`, where
    /// [`router`](Self::router) is reachable). Generates the signing key when the
    /// configuration has none (RSA key generation takes a fraction of a second).
    pub fn new(config: IssuerConfig, issuer_url: &str) -> Result<Issuer, IssuerError> {
        let base = check_issuer_url(issuer_url)?;
        if config.max_token_lifetime < Duration::from_secs(1) {
            return Err(IssuerError::Setting(
                "the maximum token lifetime must be at least 1 s".to_owned(),
            ));
        }
        if config.grace > MAX_GRACE {
            return Err(IssuerError::Setting(format!(
                "the grace period of a rotated-out key (--grace) is {} s; at most {} s (a year) is allowed: it need only outlive the tokens the key signed",
                config.grace.as_secs(),
                MAX_GRACE.as_secs()
            )));
        }
        if config
            .rotate_every
            .is_some_and(|every| every < Duration::from_secs(1))
        {
            return Err(IssuerError::Setting(
                "keys can be rotated at most once a second".to_owned(),
            ));
        }
        for id in &config.admin_clients {
            if config.clients.get(id).is_none() {
                return Err(IssuerError::Setting(format!(
                    "admin client {id} is not registered; register it with its key (--admin-client ID:FILE)"
                )));
            }
        }
        let digdir = match &config.state_file {
            Some(path) if path.exists() => DigdirState::load(path)?,
            _ => match (config.digdir, &config.seed) {
                (Some(state), _) => state,
                (None, Some(desired)) => DigdirState::provisioned(
                    desired,
                    &config.owner_orgno,
                    &config.altinn_delegation_source,
                )?,
                (None, None) => DigdirState::from_grants(
                    &config.grants,
                    &config.owner_orgno,
                    &config.altinn_delegation_source,
                ),
            },
        };
        if let Some(path) = &config.state_file {
            digdir.save(path)?;
        }
        let key = match config.signing_key {
            Some(key) => key,
            None => fresh_key()?,
        };
        let mut ring = KeyRing::new(key);
        if config.announce_next {
            ring.announce(fresh_key()?);
        }
        Ok(Issuer {
            state: Arc::new(State {
                issuer: issuer_url.to_owned(),
                base,
                grants: config.grants,
                clients: config.clients,
                development: config.development,
                rotate_every: config.rotate_every,
                grace: config.grace,
                announce_next: config.announce_next,
                max_token_lifetime: config.max_token_lifetime,
                altinn_delegation_source: config.altinn_delegation_source,
                digdir: Mutex::new(digdir),
                state_file: config.state_file,
                admin_clients: config.admin_clients,
                owner_orgno: config.owner_orgno,
                keys: Mutex::new(ring),
                replay: ReplayCache::new(DEFAULT_CAPACITY),
            }),
        })
    }

    /// Binds `addr` (port 0 picks a free port) and serves; the issuer URL uses the real bound
    /// address unless the configuration sets one.
    pub async fn bind(
        addr: impl ToSocketAddrs + fmt::Display,
        config: IssuerConfig,
    ) -> Result<RunningIssuer, IssuerError> {
        let shown = addr.to_string();
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| IssuerError::Bind {
                addr: shown,
                source,
            })?;
        serve(listener, config).await
    }

    /// The issuer identifier, `iss` of every token, with the trailing slash.
    pub fn issuer_url(&self) -> &str {
        &self.state.issuer
    }

    /// `<issuer>.well-known/oauth-authorization-server`.
    pub fn well_known_url(&self) -> Url {
        self.endpoint(".well-known/oauth-authorization-server")
    }

    /// `<issuer>token`.
    pub fn token_endpoint(&self) -> Url {
        self.endpoint("token")
    }

    /// `<issuer>jwk`.
    pub fn jwks_uri(&self) -> Url {
        self.endpoint("jwk")
    }

    /// `<issuer>dev/token` (served only in development mode).
    pub fn dev_token_endpoint(&self) -> Url {
        self.endpoint("dev/token")
    }

    pub(crate) fn endpoint(&self, path: &str) -> Url {
        // Joining a relative path onto a base ending in `/` cannot fail.
        self.state
            .base
            .join(path)
            .unwrap_or_else(|_| self.state.base.clone())
    }

    /// Whether `/dev/token` and `/admin/rotate` are served.
    pub fn is_development(&self) -> bool {
        self.state.development
    }

    /// The grants enforced.
    pub fn grants(&self) -> &GrantsTable {
        &self.state.grants
    }

    /// The registered clients.
    pub fn clients(&self) -> &ClientRegistry {
        &self.state.clients
    }

    /// The RFC 8414 metadata document.
    pub fn metadata(&self) -> Value {
        let mut doc = json!({
            "issuer": self.state.issuer,
            "token_endpoint": self.token_endpoint().as_str(),
            "jwks_uri": self.jwks_uri().as_str(),
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "grant_types_supported": ["urn:ietf:params:oauth:grant-type:jwt-bearer"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384", "RS512"],
            "authorization_details_types_supported": assertion::AUTHORIZATION_DETAILS_TYPES,
        });
        if self.state.development {
            doc["portvakt_dev_token_endpoint"] = json!(self.dev_token_endpoint().as_str());
        }
        doc
    }

    /// The published JWKS document `{"keys": [...]}`: the current key first, then the
    /// announced next key (if any), then keys still in their grace period.
    pub fn jwks(&self) -> Value {
        json!({"keys": self.keys().public_jwks(Instant::now())})
    }

    /// The published keys as a [`KeySet`], for a validator in the same process
    /// (`Validator::with_keys`).
    pub fn key_set(&self) -> KeySet {
        let jwks = self.keys().public_jwks(Instant::now());
        KeySet::from_jwks_values(&jwks, &[portvakt::Algorithm::RS256]).0
    }

    /// The `kid` of the key that signs now.
    pub fn current_kid(&self) -> String {
        self.keys().current().kid().to_owned()
    }

    /// The `kid` of the key announced to sign at the next rotation, if the issuer announces
    /// its keys ([`IssuerConfig::announce_next`]).
    pub fn next_kid(&self) -> Option<String> {
        self.keys().next_kid()
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, KeyRing> {
        self.state
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Rotates now, keeping the previous key published for the grace period. With
    /// [`announce_next`](IssuerConfig::announce_next) the announced key becomes current and a
    /// new one is generated and announced; otherwise a new key is generated and signs at once
    /// (as [`rotate_unannounced`](Self::rotate_unannounced)). Keys are generated off the async
    /// threads.
    pub async fn rotate(&self) -> Result<Rotation, IssuerError> {
        if !self.state.announce_next {
            return self.rotate_unannounced().await;
        }
        let next = generate_key().await?;
        let rotation = {
            let mut keys = self.keys();
            match keys.promote(self.state.grace, Instant::now()) {
                Some(mut rotation) => {
                    rotation.next_kid = Some(next.kid().to_owned());
                    keys.announce(next);
                    rotation
                }
                // Nothing announced (an announcement is only missing if its generation
                // failed at start, which fails the start): the fresh key signs now.
                None => keys.install(next, self.state.grace, Instant::now()),
            }
        };
        log_rotation(&rotation, self.state.grace);
        Ok(rotation)
    }

    /// Rotates now to a fresh key that signs from the moment it is published: what an issuer
    /// that does not announce its keys does, for testing how validators cope. An announced
    /// key stays announced.
    pub async fn rotate_unannounced(&self) -> Result<Rotation, IssuerError> {
        let key = generate_key().await?;
        Ok(self.install_key(key))
    }

    /// Makes `key` current at once, keeping the previous one published for the grace period.
    pub fn install_key(&self, key: SigningKey) -> Rotation {
        let rotation = self.keys().install(key, self.state.grace, Instant::now());
        log_rotation(&rotation, self.state.grace);
        rotation
    }

    /// Starts rotating every `rotate_every`, if configured. The task ends when the last clone
    /// of the issuer is dropped, or when aborted.
    pub fn spawn_rotation(&self) -> Option<AbortHandle> {
        let every = self.state.rotate_every?;
        let weak: Weak<State> = Arc::downgrade(&self.state);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(state) = weak.upgrade() else { return };
                let issuer = Issuer { state };
                if let Err(e) = issuer.rotate().await {
                    tracing::error!("scheduled key rotation failed: {e}");
                }
            }
        });
        Some(task.abort_handle())
    }

    /// The JWT-bearer grant: verifies the assertion like Maskinporten, checks the grants, and
    /// mints the token. What `POST /token` does.
    pub fn exchange_assertion(&self, assertion: &str) -> Result<TokenResponse, OAuthError> {
        let now = unix_now();
        let result = assertion::verify(
            assertion,
            &self.state.issuer,
            &self.state.clients,
            &self.state.replay,
            now,
        )
        .and_then(|request| {
            let client_orgno = request.client.orgno();
            let (consumer, supplier) = match request.consumer_org.as_deref() {
                Some(on_behalf_of) => (on_behalf_of, Some(client_orgno)),
                None => (client_orgno, None),
            };
            self.issue_checked(IssueParams {
                dev: false,
                client_id: request.client.client_id(),
                consumer,
                supplier,
                scopes: &request.scopes,
                audience: request.resource.as_deref(),
                pid: request.pid.as_deref(),
                authorization_details: request.authorization_details.as_ref(),
                now,
            })
        });
        if let Err(e) = &result {
            tracing::info!(error = %e.code, description = %e.description, "refused a JWT-bearer grant");
        }
        result
    }

    /// The development shortcut: a token for `request.orgno` without an assertion, enforcing
    /// the grants exactly like [`exchange_assertion`](Self::exchange_assertion). What
    /// `POST /dev/token` does; callable in-process whatever the development flag says.
    pub fn issue_dev(&self, request: &DevTokenRequest) -> Result<TokenResponse, OAuthError> {
        let result = self.issue_dev_inner(request);
        if let Err(e) = &result {
            tracing::info!(error = %e.code, description = %e.description, "refused a development token");
        }
        result
    }

    fn issue_dev_inner(&self, request: &DevTokenRequest) -> Result<TokenResponse, OAuthError> {
        if request.orgno.is_empty() {
            return Err(OAuthError::request(format!(
                "orgno is required: the organization number to get a token for{}",
                self.consumer_hint(&request.scopes)
            )));
        }
        if !portvakt_manifest::is_nine_digits(&request.orgno) {
            return Err(OAuthError::request(format!(
                "orgno \"{}\" is not a nine-digit organization number",
                portvakt::printable(&request.orgno)
            )));
        }
        let scopes = assertion::dedup(request.scopes.iter().flat_map(|s| s.split_whitespace()));
        if scopes.is_empty() {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "scope is required: the scopes to request, separated by spaces",
            ));
        }
        let audience = match &request.audience {
            Some(aud) if Url::parse(aud).is_err() => {
                return Err(OAuthError::request(format!(
                    "audience \"{}\" is not an absolute URI (e.g. https://api.example.no/)",
                    portvakt::printable(aud)
                )));
            }
            Some(aud) => Some(vec![aud.clone()]),
            None => None,
        };
        let on_behalf_of = match request.on_behalf_of.as_deref() {
            Some(org) if !portvakt_manifest::is_nine_digits(org) => {
                return Err(OAuthError::request(format!(
                    "on_behalf_of \"{}\" is not a nine-digit organization number",
                    portvakt::printable(org)
                )));
            }
            Some(org) if org != request.orgno => Some(org),
            _ => None,
        };
        let client_id = match self.state.clients.find_by_orgno(&request.orgno) {
            Some(client) => client.client_id().to_owned(),
            None => format!("{DEV_CLIENT_PREFIX}{}", request.orgno),
        };
        let (consumer, supplier) = match on_behalf_of {
            Some(org) => (org, Some(request.orgno.as_str())),
            None => (request.orgno.as_str(), None),
        };
        self.issue_checked(IssueParams {
            dev: true,
            client_id: &client_id,
            consumer,
            supplier,
            scopes: &scopes,
            audience: audience.as_deref(),
            pid: None,
            authorization_details: None,
            now: unix_now(),
        })
    }

    /// ` (consumers of S: A, B)` for an error message, when the first scope is known.
    fn consumer_hint(&self, scopes: &[String]) -> String {
        self.digdir(|digdir| {
            let Some(scope) = scopes
                .iter()
                .flat_map(|s| s.split_whitespace())
                .find_map(|s| digdir.scopes().find(|r| r.full_name() == s))
            else {
                return String::new();
            };
            let name = scope.full_name();
            if scope.accessible_for_all {
                return format!("; {name} is accessible for all organizations");
            }
            let orgs: Vec<&str> = digdir
                .access(&name)
                .filter(|e| e.state == portvakt_provision::AccessState::Approved)
                .map(|e| e.consumer_orgno.as_str())
                .collect();
            if orgs.is_empty() {
                format!("; {name} has no consumers")
            } else {
                format!("; consumers of {name}: {}", orgs.join(", "))
            }
        })
    }

    fn issue_checked(&self, params: IssueParams<'_>) -> Result<TokenResponse, OAuthError> {
        let authorized = if params
            .scopes
            .iter()
            .any(|s| ADMIN_SCOPES.contains(&s.as_str()))
        {
            self.authorize_admin(&params)?
        } else {
            authorize(
                &self.digdir_lock(),
                params.supplier.unwrap_or(params.consumer),
                params.supplier.map(|_| params.consumer),
                params.scopes,
                self.state.max_token_lifetime,
            )?
        };
        let delegation_source = authorized.delegation_source.as_deref();
        let mint = Mint {
            issuer: &self.state.issuer,
            client_id: params.client_id,
            client_amr: CLIENT_AMR,
            consumer: params.consumer,
            supplier: params.supplier,
            delegation_source,
            scopes: params.scopes,
            audience: params.audience,
            pid: params.pid,
            authorization_details: params.authorization_details,
            iat: params.now,
            lifetime: authorized.lifetime,
        };
        let key = self.keys().current();
        let access_token = mint.sign(&key)?;
        tracing::info!(
            client_id = params.client_id,
            consumer = params.consumer,
            supplier = params.supplier,
            scope = %params.scopes.join(" "),
            kid = key.kid(),
            expires_in = authorized.lifetime.as_secs(),
            "issued an access token"
        );
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_in: authorized.lifetime.as_secs(),
            scope: params.scopes.join(" "),
        })
    }
}

impl Issuer {
    /// Admin scopes go only to registered admin clients, or in development mode through
    /// `/dev/token` to the owner organization; never together with other scopes.
    fn authorize_admin(&self, params: &IssueParams<'_>) -> Result<Authorized, OAuthError> {
        if let Some(other) = params
            .scopes
            .iter()
            .find(|s| !ADMIN_SCOPES.contains(&s.as_str()))
        {
            return Err(OAuthError::scope(format!(
                "scope \"{other}\" cannot be asked for together with the admin scopes {}",
                ADMIN_SCOPES.join(" ")
            )));
        }
        let allowed = if params.dev {
            params.supplier.is_none() && params.consumer == self.state.owner_orgno
        } else {
            params.supplier.is_none() && self.state.admin_clients.contains(params.client_id)
        };
        if !allowed {
            let who = if params.dev {
                format!(
                    "organization {} (only {}, the owner of this Digdir, gets admin scopes from /dev/token)",
                    params.consumer, self.state.owner_orgno
                )
            } else {
                format!(
                    "client {} (not an admin client; register it with --admin-client)",
                    params.client_id
                )
            };
            return Err(OAuthError::scope(format!(
                "{who} may not have the admin scopes {}",
                ADMIN_SCOPES.join(" ")
            )));
        }
        Ok(Authorized {
            lifetime: self.state.max_token_lifetime,
            delegation_source: None,
        })
    }
}

struct IssueParams<'a> {
    dev: bool,
    client_id: &'a str,
    consumer: &'a str,
    supplier: Option<&'a str>,
    scopes: &'a [String],
    audience: Option<&'a [String]>,
    pid: Option<&'a str>,
    authorization_details: Option<&'a Value>,
    now: i64,
}

/// Serves an issuer on `listener` until [`RunningIssuer::shutdown`] (or until it is dropped).
/// The issuer URL is `config.issuer_url`, else `http://ADDR/` of the listener; the routes are
/// served under its path.
pub async fn serve(
    listener: TcpListener,
    config: IssuerConfig,
) -> Result<RunningIssuer, IssuerError> {
    serve_with(listener, config, axum::Router::new()).await
}

/// Like [`serve`], with `extra` routes served beside the issuer's on the same listener (e.g.
/// portvakt's development page at `/`). The issuer's own paths must not be among them (axum
/// refuses overlapping routes with a panic at start-up); anything neither serves gets the
/// issuer's JSON 404.
pub async fn serve_with(
    listener: TcpListener,
    mut config: IssuerConfig,
    extra: axum::Router,
) -> Result<RunningIssuer, IssuerError> {
    let addr = listener.local_addr().map_err(|source| IssuerError::Bind {
        addr: "the listener".to_owned(),
        source,
    })?;
    let issuer_url = config
        .issuer_url
        .take()
        .unwrap_or_else(|| issuer_url_for(addr));
    let issuer = if config.signing_key.is_none() {
        // Key generation blocks for a fraction of a second: keep it off the async threads.
        tokio::task::spawn_blocking(move || Issuer::new(config, &issuer_url))
            .await
            .map_err(|e| IssuerError::Setting(format!("issuer start-up task failed: {e}")))??
    } else {
        Issuer::new(config, &issuer_url)?
    };
    // The routes are served where the issuer URL says they are: under its path, if it has one
    // (`http://HOST/mp/` serves `/mp/token`), so that what discovery and the JWKS advertise
    // answers.
    // `Issuer::new` checked the URL and keeps it parsed.
    let path = issuer.state.base.path().trim_end_matches('/');
    let router = if path.is_empty() {
        extra.merge(issuer.router())
    } else {
        extra.merge(axum::Router::new().nest(path, issuer.router()))
    };
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    let rotation = issuer.spawn_rotation();
    tracing::info!(issuer = issuer.issuer_url(), %addr, "local Maskinporten issuer listening");
    Ok(RunningIssuer {
        issuer,
        addr,
        shutdown: Some(tx),
        task: Some(task),
        rotation,
    })
}

/// An issuer being served. Dropping it stops the server (without waiting).
pub struct RunningIssuer {
    issuer: Issuer,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    rotation: Option<AbortHandle>,
}

impl fmt::Debug for RunningIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningIssuer")
            .field("addr", &self.addr)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl RunningIssuer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The issuer identifier (`http://ADDR/`, with the trailing slash).
    pub fn issuer_url(&self) -> &str {
        self.issuer.issuer_url()
    }

    /// The discovery document's URL.
    pub fn well_known_url(&self) -> Url {
        self.issuer.well_known_url()
    }

    /// The issuer being served (for rotation, in-process issuance, key sets).
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// Stops accepting connections, finishes requests in flight, and waits for the server.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait_inner().await
    }

    /// Waits until the server stops by itself, which happens only when it fails
    /// ([`shutdown`](Self::shutdown) waits on its own). Cancel-safe: dropping the future leaves
    /// the server running, e.g. in a `select!` with a shutdown signal.
    pub async fn wait(&mut self) -> std::io::Result<()> {
        self.wait_inner().await
    }

    async fn wait_inner(&mut self) -> std::io::Result<()> {
        let result = match self.task.as_mut() {
            Some(task) => {
                let joined = task.await;
                self.task = None;
                flatten(joined)
            }
            None => Ok(()),
        };
        // Rotation runs only while the server does.
        if let Some(rotation) = self.rotation.take() {
            rotation.abort();
        }
        result
    }
}

fn flatten(joined: Result<std::io::Result<()>, tokio::task::JoinError>) -> std::io::Result<()> {
    match joined {
        Ok(result) => result,
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}

impl Drop for RunningIssuer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(rotation) = self.rotation.take() {
            rotation.abort();
        }
    }
}
