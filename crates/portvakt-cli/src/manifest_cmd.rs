//! `portvakt manifest`: check a NAIS manifest's Maskinporten scopes before deploying, and show
//! the scope and grant table it defines. All logic and formatting live in `portvakt-manifest`
//! (tested there); this module only reads arguments, prints, and picks the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use portvakt_manifest::{CheckOptions, Manifest, render};

/// `portvakt manifest ...`
#[derive(Debug, Clone, Subcommand)]
pub enum ManifestCommand {
    /// Report errors and warnings in the maskinporten block, as file:line:col diagnostics.
    ///
    /// Exits 1 when there are errors, 0 otherwise, 2 when the file cannot be read.
    Check {
        /// The NAIS manifest (may hold several YAML documents).
        #[arg(default_value = "nais.yaml")]
        file: PathBuf,
        /// Treat warnings (e.g. an organization number failing its check digit) as errors.
        #[arg(long)]
        strict: bool,
        /// Prefix of fully qualified scopes.
        #[arg(long, default_value = "nav", value_parser = crate::values::parse_prefix)]
        prefix: String,
    },
    /// List the fully qualified scopes, their consumers and limits.
    ///
    /// Exits 1 (printing the errors instead of the table) when the manifest has errors.
    Scopes {
        /// The NAIS manifest (may hold several YAML documents).
        #[arg(default_value = "nais.yaml")]
        file: PathBuf,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Prefix of fully qualified scopes.
        #[arg(long, default_value = "nav", value_parser = crate::values::parse_prefix)]
        prefix: String,
    },
}

/// Runs a `portvakt manifest` subcommand.
pub fn run(cmd: ManifestCommand) -> ExitCode {
    match cmd {
        ManifestCommand::Check {
            file,
            strict,
            prefix,
        } => {
            let manifest = match Manifest::from_path_with(&file, &CheckOptions { strict, prefix }) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("{}", render::read_error(&e));
                    return ExitCode::from(2);
                }
            };
            print!("{}", render::check_report(&manifest));
            if manifest.has_errors() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        ManifestCommand::Scopes { file, json, prefix } => {
            let options = CheckOptions {
                strict: false,
                prefix,
            };
            let manifest = match Manifest::from_path_with(&file, &options) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("{}", render::read_error(&e));
                    return ExitCode::from(2);
                }
            };
            // Diagnostics go to stderr so that stdout stays a clean table or JSON document.
            for d in manifest.diagnostics() {
                eprintln!("{}", render::diagnostic(d));
            }
            if manifest.has_errors() {
                eprintln!(
                    "{}",
                    render::summary(manifest.file(), manifest.diagnostics())
                );
                return ExitCode::FAILURE;
            }
            let grants = manifest.grants();
            if json {
                match render::scopes_json(&grants) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("error: cannot write JSON: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", render::scopes_table(&grants));
            }
            ExitCode::SUCCESS
        }
    }
}
