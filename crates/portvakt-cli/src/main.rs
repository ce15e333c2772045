//! The `portvakt` command: a Maskinporten sidecar, a local Maskinporten, a token fetcher, a token
//! inspector, and a NAIS manifest linter. Each subcommand lives in its own module; this file
//! parses arguments, sets up logging, and dispatches.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portvakt_cli::{inspect_cmd, issuer_cmd, manifest_cmd, provision_cmd, serve, token_cmd};

/// mimalloc, not glibc's malloc, for the Rust heap of every subcommand.
///
/// A proxied request allocates and frees about 13 blocks (8 of them in hyper alone: its
/// buffers, header maps and the upstream connection's request). Counted by callgrind
/// (`CACHE_SIM=1 scripts/callgrind-proxy.sh`), glibc's malloc does more work per request the
/// more connections are open: in hyper alone its functions take 2,600 instructions per request
/// at 32 connections and 3,900 at 1000 (`_int_malloc`, `_int_free`). The proxy's instructions
/// per request grow from 39,200 to 47,600 with glibc, from 37,700 to 43,300 with mimalloc,
/// which also misses the caches less at 1000 connections (more at 32). Measured with the same
/// code, glibc against mimalloc alternating round by round (docs/BENCHMARKS.md, "The
/// allocator, and what many connections cost"), the release build served 1.02x to 1.14x the
/// proxy's requests at 1000 connections and 1.00x to 1.29x at 32, with 0.84 to 1.00 of the CPU
/// per request, for 1.4 MB more at idle and 8 % more at peak; the image's profile-guided
/// build 0.99x to 1.09x at 1000 connections (0.88 to 0.98 of the CPU) and the same at 32.
/// jemalloc, preloaded, gained as much at 1000 connections; mimalloc is one C file built by
/// `cc`, where jemalloc needs its autoconf build.
///
/// Only the binary chooses: the `portvakt` library leaves the allocator to the application.
/// C code (aws-lc) keeps the system's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Secure an API with Maskinporten: validate tokens, run a local Maskinporten, lint nais.yaml.
#[derive(Debug, Parser)]
#[command(name = "portvakt", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the sidecar: the introspection API (NAIS-compatible), probes, metrics, and with
    /// --upstream an enforcing reverse proxy. Without MASKINPORTEN_* it starts a local issuer.
    Serve(serve::ServeArgs),
    /// Run a local Maskinporten that enforces the manifest's grants.
    Issuer(issuer_cmd::IssuerArgs),
    /// Print an access token (for curl -H "Authorization: Bearer $(portvakt token ...)").
    Token(token_cmd::TokenArgs),
    /// Validate one token against the issuer and show every check (exit 0 valid, 1 invalid,
    /// 2 usage or configuration error).
    Inspect(inspect_cmd::InspectArgs),
    /// Check a NAIS manifest's Maskinporten scopes and list its grants.
    #[command(subcommand)]
    Manifest(manifest_cmd::ManifestCommand),
    /// Provision the manifest's scopes and grants through Digdir's admin API: plan, then apply.
    #[command(subcommand)]
    Provision(provision_cmd::ProvisionCommand),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_exit(&error),
    };
    init_logging(matches!(
        cli.command,
        Command::Serve(_) | Command::Issuer(_)
    ));
    match cli.command {
        Command::Manifest(cmd) => manifest_cmd::run(cmd),
        Command::Inspect(args) => inspect_exit(runtime().block_on(inspect_cmd::run(args))),
        Command::Serve(args) => serve_exit(runtime().block_on(serve::run(args))),
        Command::Issuer(args) => issuer_exit(runtime().block_on(issuer_cmd::run(args))),
        Command::Token(args) => runtime().block_on(token_cmd::run(args)),
        Command::Provision(cmd) => runtime().block_on(provision_cmd::run(cmd)),
    }
}

/// A command line clap refused, printed: exit 0 for `--help` and `--version`, else 2 (a usage
/// error), but 1 for `provision`, whose `plan --detailed-exitcode` answers 2 for "changes to
/// make" (as terraform's does): a mistyped flag must not read as pending changes in CI.
fn usage_exit(error: &clap::Error) -> ExitCode {
    let _ = error.print();
    if !error.use_stderr() {
        return ExitCode::SUCCESS;
    }
    let provision = std::env::args_os()
        .skip(1)
        .find(|arg| !arg.to_string_lossy().starts_with('-'))
        .is_some_and(|command| command == "provision");
    ExitCode::from(if provision { 1 } else { 2 })
}

/// `portvakt serve`'s exit code: 0 when it served until told to stop (or the policy checked
/// out), with `-- CMD` the app's status (its exit code, or 128 + the signal that ended it), 1
/// when `--check-policy` found the policy invalid, 2 for every configuration error.
/// The error is printed here, once.
fn serve_exit(result: Result<u8, serve::ServeError>) -> ExitCode {
    let error = match result {
        Ok(status) => return ExitCode::from(status),
        Err(error) => error,
    };
    match error {
        serve::ServeError::PolicyInvalid(report) => {
            eprint!("{report}");
            ExitCode::from(1)
        }
        serve::ServeError::PolicyUnreadable(report) => {
            eprint!("{report}");
            ExitCode::from(2)
        }
        error => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

/// `portvakt inspect`'s exit code: 0 valid, 1 invalid, 2 when no verdict could be given (a
/// usage or configuration error, or no keys to check the signature with), printed here.
fn inspect_exit(result: Result<bool, inspect_cmd::InspectError>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

/// `portvakt issuer`'s exit code: 0 when it served until told to stop (or `generate-client`
/// made a client), otherwise [`issuer_cmd::IssuerCmdError::exit_code`]. The error is printed here, once.
fn issuer_exit(result: Result<(), issuer_cmd::IssuerCmdError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(error.exit_code())
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    // Tokio reads TOKIO_WORKER_THREADS itself, and panics on a value that is not a positive
    // number: say what is wrong instead.
    if let Some(value) = std::env::var_os("TOKIO_WORKER_THREADS")
        && value
            .to_str()
            .and_then(|v| v.parse::<usize>().ok())
            .is_none_or(|n| n == 0)
    {
        eprintln!(
            "error: TOKIO_WORKER_THREADS={value:?} is not a positive whole number; unset it (one worker thread per core) or set e.g. TOKIO_WORKER_THREADS=2"
        );
        std::process::exit(2);
    }
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    }
}

/// Logs go to stderr: human-readable on a terminal, JSON otherwise (what log collectors
/// parse). `RUST_LOG` filters. The servers (`serve`, `issuer`) log `info` for portvakt and
/// `warn` for the rest by default; the one-shot commands only errors, since what they have to
/// say is in their output and messages (a key store's background retries are not).
fn init_logging(server: bool) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(text) if !text.trim().is_empty() => match EnvFilter::try_new(&text) {
            Ok(filter) => filter,
            Err(e) => {
                // Not silently replaced by the default: the logs asked for would never come.
                eprintln!(
                    "error: RUST_LOG={text:?} is not a log filter ({e}); write e.g. RUST_LOG=info or RUST_LOG=warn,portvakt=debug, or unset it"
                );
                std::process::exit(2);
            }
        },
        _ => EnvFilter::new(if server {
            "warn,portvakt=info,portvakt_cli=info,portvakt_issuer=info,portvakt_provision=info"
        } else {
            "error"
        }),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.init();
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    }
}
