//! `portvakt issuer`: a local Maskinporten that enforces the grants of the team's `nais.yaml`.
//! All behaviour lives in `portvakt-issuer` (tested there); this module reads arguments, prints
//! the banner, and picks the exit code.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use portvakt_issuer::{
    ClientError, ClientRegistry, DEFAULT_LISTEN, Issuer, IssuerConfig, IssuerError,
    generate_client_key, issuer_url_for,
};
use portvakt_manifest::{CheckOptions, GrantsTable, Manifest, render};

use crate::issuer_source::ManifestSource;

/// `portvakt issuer [--manifest FILE] [--listen ADDR] ...` or `portvakt issuer generate-client`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct IssuerArgs {
    /// Generate a development client instead of serving.
    #[command(subcommand)]
    pub command: Option<IssuerCommand>,
    /// How to serve.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// `portvakt issuer` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum IssuerCommand {
    /// Generate a client key pair for development and print its private JWK on stdout, the way
    /// NAIS injects MASKINPORTEN_CLIENT_JWK; how to register and use it goes to stderr.
    GenerateClient {
        /// The client id (the `iss` of its assertions).
        #[arg(long, value_name = "CLIENT_ID")]
        client_id: String,
        /// The organization number the client belongs to.
        #[arg(long, value_name = "ORGNO")]
        orgno: String,
    },
}

/// Options for serving the issuer.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The NAIS manifest whose grants are enforced [default: ./nais.yaml, else
    /// examples/nais.yaml].
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Address to listen on. The issuer identifier is http://ADDR/.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// Behave strictly like Maskinporten: no /dev/token, no /admin/rotate.
    #[arg(long)]
    pub strict: bool,
    /// Rotate the signing key this often (e.g. 90s, 10m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse_positive_duration)]
    pub rotate_every: Option<Duration>,
    /// How long a rotated-out key stays published in the JWKS.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse_positive_duration, default_value = "15m")]
    pub grace: Duration,
    /// Publish the next signing key a rotation ahead, so validators hold it before it signs
    /// (`false`: each rotation signs at once with a key published that moment;
    /// `POST /admin/rotate?unannounced=true` does that once either way).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub announce_next: bool,
    /// Register a client: CLIENT_ID:ORGNO:JWK_FILE (a public or private JWK, or a JWKS).
    /// Repeatable.
    #[arg(long = "client", value_name = "CLIENT_ID:ORGNO:JWK_FILE")]
    pub clients: Vec<String>,
    /// Register the clients in a JSON file:
    /// [{"client_id": ..., "orgno": ..., "jwks": {"keys": [...]}}]. Repeatable.
    #[arg(long = "clients-file", value_name = "FILE")]
    pub clients_files: Vec<PathBuf>,
    /// Prefix of fully qualified scopes.
    #[arg(long, default_value = "nav", value_parser = crate::values::parse_prefix)]
    pub prefix: String,
    /// Issuer identifier to use instead of http://ADDR/ (must end with `/`); the endpoints are
    /// served under its path (`http://HOST/mp/` serves `/mp/token`).
    #[arg(long, value_name = "URL")]
    pub issuer_url: Option<String>,
    /// Start the local Digdir with no scopes (provision them with `portvakt provision apply`);
    /// no manifest is read (so --manifest is refused with it).
    #[arg(long, conflicts_with = "manifest")]
    pub empty: bool,
    /// Persist the local Digdir's scopes and grants in FILE (JSON, written atomically after
    /// every change); an existing file is loaded at start.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Register an admin client for the admin API under /api/v1: ID:FILE, FILE its JWK with
    /// `kid` (public or private). It gets idporten:scopes.read/write with the JWT-bearer grant.
    /// Repeatable.
    #[arg(long = "admin-client", value_name = "ID:FILE")]
    pub admin_clients: Vec<String>,
    /// NAIS cluster named in the descriptions of the scopes provisioned from the manifest at
    /// start [default: NAIS_CLUSTER_NAME, else `local`].
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
}

/// Runs `portvakt issuer`. Exit codes: 0 after a clean shutdown (Ctrl-C), 1 when the server
/// fails, 2 for configuration errors (manifest with errors, bad client registration, address in
/// use).
pub async fn run(args: IssuerArgs) -> Result<(), IssuerCmdError> {
    match args.command {
        Some(IssuerCommand::GenerateClient { client_id, orgno }) => {
            generate_client(&client_id, &orgno)
        }
        None => serve(args.serve).await,
    }
}

fn generate_client(client_id: &str, orgno: &str) -> Result<(), IssuerCmdError> {
    // Validate the way the issuer will when the client is registered.
    let key = generate_client_key(client_id)?;
    ClientRegistry::new().register_key(client_id, orgno, &key)?;
    let private = key.private_jwk()?;
    println!("{private}");
    let well_known = format!("http://{DEFAULT_LISTEN}/.well-known/oauth-authorization-server");
    eprintln!(
        "generated client {client_id} (organization {orgno}), key id {kid}
The private JWK above is a secret. Save it, e.g. `... > client.jwk`, then
  register it:  portvakt issuer --client {client_id}:{orgno}:client.jwk
  use it:       export MASKINPORTEN_CLIENT_ID={client_id} MASKINPORTEN_CLIENT_JWK=\"$(cat client.jwk)\" MASKINPORTEN_WELL_KNOWN_URL={well_known}
                portvakt token --scope <scope>",
        kid = key.kid()
    );
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<(), IssuerCmdError> {
    let source = ManifestSource::choose(args.manifest.as_deref());
    let described = if args.empty {
        "(none: --empty)".to_owned()
    } else {
        source.describe()
    };
    let options = CheckOptions {
        strict: false,
        prefix: args.prefix.clone(),
    };
    let manifest = if args.empty {
        None
    } else {
        let manifest = source
            .load(&options)
            .map_err(|e| IssuerCmdError::ManifestUnreadable(render::read_error(&e)))?;
        Some(manifest)
    };
    let mut config = match &manifest {
        None => IssuerConfig::new(GrantsTable::default()),
        Some(manifest) => {
            for d in manifest.diagnostics() {
                eprintln!("{}", render::diagnostic(d));
            }
            IssuerConfig::from_manifest(manifest).map_err(|source| {
                IssuerCmdError::ManifestInvalid {
                    summary: render::summary(manifest.file(), manifest.diagnostics()),
                    source,
                }
            })?
        }
    };
    let mut clients = ClientRegistry::new();
    for file in &args.clients_files {
        clients.load_file(file)?;
    }
    for spec in &args.clients {
        clients.add_spec(spec)?;
    }
    let naming = portvakt_provision::Naming {
        prefix: args.prefix.clone(),
        cluster: args
            .cluster
            .clone()
            .unwrap_or_else(portvakt_provision::cluster_from_env),
    };
    match &manifest {
        None => config.digdir = Some(portvakt_issuer::DigdirState::empty()),
        Some(manifest) => {
            if let Err(e) = config.provision_at_start(manifest, &naming) {
                tracing::warn!("{e}; the local Digdir's scopes come from the grants table");
            }
        }
    }
    for spec in &args.admin_clients {
        let Some((id, file)) = spec.split_once(':') else {
            return Err(IssuerCmdError::AdminClientSpec { spec: spec.clone() });
        };
        let registration = format!("{id}:{}:{file}", config.owner_orgno);
        clients
            .add_spec(&registration)
            .map_err(|source| IssuerCmdError::AdminClient {
                spec: spec.clone(),
                source,
            })?;
        config.admin_clients.insert(id.to_owned());
    }
    config.clients = clients;
    config.state_file = args.state.clone();
    config.development = !args.strict;
    config.rotate_every = args.rotate_every;
    config.grace = args.grace;
    config.announce_next = args.announce_next;
    if let Some(url) = &args.issuer_url {
        // Checked before anything is built from it (the development page's discovery URL).
        portvakt_issuer::check_issuer_url(url)?;
    }
    config.issuer_url = args.issuer_url.clone();

    // Registered before binding, as `serve` does: a SIGTERM from then on stops the issuer
    // cleanly, never by the signal's default action.
    let stop = crate::serve::shutdown_signal();
    let listener = tokio::net::TcpListener::bind(args.listen.as_str())
        .await
        .map_err(|source| IssuerError::Bind {
            addr: args.listen.clone(),
            source,
        })?;
    let page = dev_page(&listener, &config, manifest).map_err(IssuerCmdError::DevPage)?;
    let page_url = page.as_ref().map(|(_, url)| url.clone());
    let extra = page.map(|(router, _)| router).unwrap_or_default();
    let mut running = portvakt_issuer::serve_with(listener, config, extra).await?;
    eprint!(
        "{}",
        banner(running.issuer(), &described, &args, page_url.as_deref())
    );

    let failed = tokio::select! {
        _ = stop => None,
        result = running.wait() => Some(result),
    };
    match failed {
        None => {
            eprintln!("shutting down");
            running.shutdown().await.map_err(IssuerCmdError::Shutdown)
        }
        Some(result) => Err(IssuerCmdError::Stopped(result.err())),
    }
}

/// Why `portvakt issuer` stops with an error. `main` prints it, once, and takes the exit code
/// from [`exit_code`](Self::exit_code): 2 for what is found before serving (a usage or
/// configuration error), 1 when the running issuer fails.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerCmdError {
    /// The manifest cannot be read; the text is the whole report (file, what to do).
    #[error("{0}")]
    ManifestUnreadable(String),
    /// The manifest has errors (its diagnostics were printed already).
    #[error("{summary}\nerror: {source}")]
    ManifestInvalid {
        /// The count of errors and warnings in the file.
        summary: String,
        /// What the issuer refused.
        source: IssuerError,
    },
    /// A client key could not be made or written.
    #[error("error: {0}")]
    Key(#[from] portvakt::SigningError),
    /// A client (`--client`, `--clients-file`, `generate-client`) cannot be registered.
    #[error("error: {0}")]
    Client(#[from] ClientError),
    /// `--admin-client` is not `ID:FILE`.
    #[error("error: --admin-client {spec:?}: expected ID:FILE, e.g. admin:admin.jwk")]
    AdminClientSpec {
        /// What was given.
        spec: String,
    },
    /// `--admin-client`'s key cannot be registered.
    #[error("error: --admin-client {spec}: {source}")]
    AdminClient {
        /// What was given.
        spec: String,
        /// Why not.
        source: ClientError,
    },
    /// The listener or the issuer could not start.
    #[error("error: {0}")]
    Start(#[from] IssuerError),
    /// The development page could not be set up.
    #[error("error: {0}")]
    DevPage(String),
    /// Told to stop, the issuer did not shut down cleanly.
    #[error("error: {0}")]
    Shutdown(std::io::Error),
    /// The issuer stopped by itself.
    #[error(
        "error: the issuer stopped: {}",
        .0.as_ref().map_or_else(|| "no reason given".to_owned(), ToString::to_string)
    )]
    Stopped(Option<std::io::Error>),
}

impl IssuerCmdError {
    /// 1 when the running issuer failed, 2 for everything found before it served.
    pub fn exit_code(&self) -> u8 {
        match self {
            IssuerCmdError::Shutdown(_) | IssuerCmdError::Stopped(_) => 1,
            _ => 2,
        }
    }
}

/// The development page at the issuer's root ([`crate::devpage`]) and its URL: only in
/// development mode, on a loopback listener.
fn dev_page(
    listener: &tokio::net::TcpListener,
    config: &IssuerConfig,
    manifest: Option<Manifest>,
) -> Result<Option<(axum::Router, String)>, String> {
    // `--empty` has no manifest to show; the page needs one for its grants matrix.
    let Some(manifest) = manifest else {
        return Ok(None);
    };
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listen address: {e}"))?;
    if !config.development {
        return Ok(None);
    }
    if !crate::devpage::serves_on(addr.ip()) {
        tracing::warn!(
            %addr,
            "no development page: it mints tokens, so it is served only on a loopback address (--listen 127.0.0.1:PORT)"
        );
        return Ok(None);
    }
    let issuer_url = config
        .issuer_url
        .clone()
        .unwrap_or_else(|| issuer_url_for(addr));
    // The page validates against the issuer URL; one it cannot use (plain http to a host that
    // is not loopback, which the issuer itself may name) costs the page, not the issuer.
    let validation = match portvakt::Config::builder()
        .well_known_url(format!(
            "{issuer_url}.well-known/oauth-authorization-server"
        ))
        .build()
    {
        Ok(validation) => validation,
        Err(e) => {
            tracing::warn!(error = %e, "no development page: it cannot validate against the issuer URL");
            return Ok(None);
        }
    };
    let validator = portvakt::Validator::new(validation).map_err(|e| e.to_string())?;
    // The issuer decides from its local Digdir, which a state file or the admin API may have
    // changed since the manifest was read; the page's table is the manifest's.
    let note = (config.state_file.is_some() || !config.admin_clients.is_empty()).then_some(
        "The table shows this manifest's grants. The issuer decides from its local Digdir, which --state or the admin API (portvakt provision) may have changed: a minted token is the issuer's answer.",
    );
    let page = crate::devpage::DevPage {
        manifest: std::sync::Arc::new(manifest),
        issuer_url,
        validator,
        introspection: None,
        proxy: None,
        served_by: "portvakt issuer",
        note: note.map(str::to_owned),
    };
    Ok(Some((page.router(), format!("http://{addr}/"))))
}

/// An organization number that is granted `scope` (a consumer, or NAV's when accessible for
/// all), for the example command.
fn example(grants: &GrantsTable) -> Option<(String, String)> {
    grants
        .scopes()
        .iter()
        .filter(|g| g.enabled && g.allows_maskinporten())
        .find_map(|g| {
            if let Some(consumer) = g.consumers.first() {
                Some((g.scope.clone(), consumer.orgno.clone()))
            } else if g.accessible_for_all {
                Some((g.scope.clone(), "889640782".to_owned()))
            } else {
                None
            }
        })
}

fn banner(issuer: &Issuer, manifest: &str, args: &ServeArgs, page: Option<&str>) -> String {
    let mut out = String::new();
    let mode = if issuer.is_development() {
        "development mode: /dev/token and /admin/rotate are on"
    } else {
        "strict mode: only what Maskinporten has"
    };
    out.push_str(&format!(
        "portvakt issuer: a local Maskinporten ({mode})\n  issuer     {}\n  discovery  {}\n  manifest   {}\n",
        issuer.issuer_url(),
        issuer.well_known_url(),
        manifest
    ));
    if let Some(page) = page {
        out.push_str(&format!("  page       {page}\n"));
    }
    let next = issuer
        .next_kid()
        .map(|kid| format!("next {kid}, published a rotation ahead"));
    let keys = match (args.rotate_every, next) {
        (Some(every), next) => format!(
            " (rotated every {} s, old keys kept {} s{})",
            every.as_secs(),
            args.grace.as_secs(),
            next.map(|next| format!("; {next}")).unwrap_or_default()
        ),
        (None, Some(next)) => format!(" ({next})"),
        (None, None) => String::new(),
    };
    out.push_str(&format!("  keys       {}{keys}\n", issuer.current_kid()));
    out.push_str(&format!(
        "  admin API  {}api/v1 (a local Digdir, for `portvakt provision`){}\n",
        issuer.issuer_url(),
        args.state
            .as_ref()
            .map(|p| format!("; state in {}", p.display()))
            .unwrap_or_default()
    ));
    if issuer.clients().is_empty() {
        out.push_str("  clients    none registered (use --client or --clients-file for /token)\n");
    } else {
        for client in issuer.clients().iter() {
            out.push_str(&format!(
                "  client     {} (organization {})\n",
                client.client_id(),
                client.orgno()
            ));
        }
    }
    out.push('\n');
    out.push_str(&render::scopes_table(issuer.grants()));
    if let Some((scope, orgno)) = example(issuer.grants()) {
        out.push('\n');
        if issuer.is_development() {
            let base = issuer.issuer_url().trim_end_matches('/');
            let flag = if base == format!("http://{DEFAULT_LISTEN}") {
                String::new()
            } else {
                format!(" --issuer {base}")
            };
            out.push_str(&format!(
                "try:  portvakt token{flag} --scope {scope} --orgno {orgno}\n"
            ));
        } else {
            out.push_str(&format!(
                "try:  MASKINPORTEN_CLIENT_ID=... MASKINPORTEN_CLIENT_JWK=\"$(cat client.jwk)\" MASKINPORTEN_WELL_KNOWN_URL={} portvakt token --scope {scope}\n",
                issuer.well_known_url()
            ));
        }
    }
    out
}
