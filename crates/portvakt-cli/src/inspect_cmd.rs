//! `portvakt inspect`: validate one token against the configured issuer and show every check.

use std::io::Read as _;
use std::time::Duration;

use clap::Args;
use portvakt::inspect::{Check, Inspection, Outcome};
use portvakt::{Policy, Readiness, ScopeRequirement, Validator};

use crate::issuer_source::IssuerSource;
use crate::values::{parse_audience, parse_scope};

/// `portvakt inspect [TOKEN|-]`
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// The token, or `-` (or nothing) to read it from standard input. A leading `Bearer ` is
    /// ignored, so a copied Authorization header works too.
    pub token: Option<String>,
    /// Also require this scope (repeat, or separate with spaces, for several; all are
    /// required unless --any-scope).
    #[arg(long = "scope", value_name = "SCOPE", value_parser = parse_scope)]
    pub scopes: Vec<String>,
    /// With several scopes: one of them is enough. Needs --scope.
    #[arg(long, requires = "scopes")]
    pub any_scope: bool,
    /// Require the token to be audience-restricted to this URI (an absolute URI, e.g.
    /// `https://my-api.ekstern.dev.nav.no/`).
    #[arg(long, value_name = "URI", value_parser = parse_audience)]
    pub audience: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub issuer: IssuerSource,
}

/// Inspects the token and prints the report: `Ok(true)` when it is valid, `Ok(false)` when
/// not (exit 0 and 1); an error is a usage or configuration problem (exit 2), printed by
/// `main`.
pub async fn run(args: InspectArgs) -> Result<bool, InspectError> {
    let config = args.issuer.config().map_err(InspectError::Issuer)?;
    let ignored = args.issuer.ignored_vars();
    if !ignored.is_empty() {
        eprintln!(
            "note: --issuer is given, so {} {} ignored",
            ignored.join(", "),
            if ignored.len() == 1 { "is" } else { "are" }
        );
    }
    let token = read_token(args.token.as_deref()).map_err(InspectError::Token)?;
    let validator = Validator::new(config)?;
    // `--scope "a b"` is two scopes, as for `portvakt token` and the development page.
    let scopes = args
        .scopes
        .iter()
        .flat_map(|s| s.split_whitespace())
        .map(str::to_owned)
        .collect();
    let policy = route_policy(scopes, args.any_scope, args.audience);
    // At once, before any key is held: a token that fails a check needing no key (format,
    // header, times, scope, audience) is invalid whatever the issuer says, so it is reported
    // without waiting for the issuer.
    let mut report = validator.inspect(&token, &policy).await;
    if !report.valid && !fails_without_keys(&report) {
        match validator.wait_until_ready(Duration::from_secs(10)).await {
            Readiness::Ready { .. } => report = validator.inspect(&token, &policy).await,
            not_ready => {
                for check in report.checks.iter().filter(|c| !needs_keys(c)) {
                    print_check(check);
                }
                return Err(InspectError::KeysUnavailable {
                    reason: not_ready
                        .reason()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    hint: args.issuer.hint(),
                });
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for check in &report.checks {
            print_check(check);
        }
        if let Some(header) = &report.header {
            println!("\nheader: {}", serde_json::Value::Object(header.clone()));
        }
        if let Some(claims) = &report.claims {
            let pretty = serde_json::to_string_pretty(&serde_json::Value::Object(claims.clone()))
                .unwrap_or_default();
            println!(
                "claims{}: {pretty}",
                if report.valid { "" } else { " (NOT trusted)" }
            );
        }
        match (&report.error, &report.error_description) {
            (Some(code), Some(description)) => println!("\nINVALID ({code}): {description}"),
            _ => println!("\nVALID"),
        }
    }
    Ok(report.valid)
}

/// Why `portvakt inspect` could not give a verdict (exit 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// No token, or not one that can be read (the text says which).
    #[error("{0}")]
    Token(String),
    /// The issuer options do not name a usable issuer.
    #[error("{0}")]
    Issuer(String),
    /// The validator could not start.
    #[error(transparent)]
    Start(#[from] portvakt::StartError),
    /// The token passed every check that needs no key, and the issuer's keys are not
    /// available to check the signature.
    #[error(
        "cannot check the signature, the issuer's keys are not available: {reason}\nhint: {hint}"
    )]
    KeysUnavailable {
        /// Why not (readiness).
        reason: String,
        /// Where the issuer was looked for and how to point at another.
        hint: String,
    },
    /// The report could not be written as JSON.
    #[error("cannot write the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The checks that need the issuer's keys (or its identity) to run.
fn needs_keys(check: &Check) -> bool {
    matches!(check.name, "signature" | "issuer")
}

/// Whether a check that needs no key failed: the token is invalid whatever the issuer says.
fn fails_without_keys(report: &Inspection) -> bool {
    report
        .checks
        .iter()
        .any(|c| !needs_keys(c) && matches!(c.outcome, Outcome::Failed(_)))
}

fn print_check(check: &Check) {
    let (mark, detail) = match &check.outcome {
        Outcome::Passed(d) => ("pass", d),
        Outcome::Failed(d) => ("FAIL", d),
        Outcome::Skipped(d) => ("skip", d),
    };
    println!("{mark}  {:<11} {detail}", check.name);
}

fn read_token(arg: Option<&str>) -> Result<String, String> {
    let raw = match arg {
        Some(token) if token != "-" => token.to_owned(),
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .take(1024 * 1024)
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read the token from standard input: {e}"))?;
            text
        }
    };
    match bare_token(&raw) {
        "" => Err("no token given: pass it as an argument or on standard input (`portvakt token ... | portvakt inspect`)".to_owned()),
        token => Ok(token.to_owned()),
    }
}

/// The token in pasted text: surrounding white space and a leading `Bearer ` (a copied
/// `Authorization` header) removed. Empty when there is none.
pub fn bare_token(text: &str) -> &str {
    let trimmed = text.trim();
    trimmed
        .strip_prefix("Bearer ")
        .or_else(|| trimmed.strip_prefix("bearer "))
        .unwrap_or(trimmed)
        .trim()
}

/// The policy `--scope`, `--any-scope` and `--audience` describe: all of `scopes` (one of them
/// with `any_scope`), and the audience when given. No scopes: any valid token.
pub fn route_policy(scopes: Vec<String>, any_scope: bool, audience: Option<String>) -> Policy {
    let mut policy = Policy::new();
    if !scopes.is_empty() {
        policy = policy.scopes(if any_scope {
            ScopeRequirement::any_of(scopes)
        } else {
            ScopeRequirement::all_of(scopes)
        });
    }
    if let Some(audience) = audience {
        policy = policy.require_audience(audience);
    }
    policy
}
