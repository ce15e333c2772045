//! `portvakt inspect`: validate one token against the configured issuer and show every check.

use std::io::Read as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use portvakt::inspect::{Check, Inspection, Outcome};
use portvakt::{Policy, Readiness, ScopeRequirement, Validator};

use crate::issuer_source::IssuerSource;

/// `portvakt inspect [TOKEN|-]`
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// The token, or `-` (or nothing) to read it from standard input. A leading `Bearer ` is
    /// ignored, so a copied Authorization header works too.
    pub token: Option<String>,
    /// Also require this scope (repeat for several; all are required unless --any-scope).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// With several --scope: one of them is enough.
    #[arg(long)]
    pub any_scope: bool,
    /// Require the token to be audience-restricted to this URI.
    #[arg(long, value_name = "URI")]
    pub audience: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub issuer: IssuerSource,
}

/// Exit codes: 0 valid, 1 invalid, 2 usage or configuration error.
pub async fn run(args: InspectArgs) -> ExitCode {
    let token = match read_token(args.token.as_deref()) {
        Ok(token) => token,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let config = match args.issuer.config() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let validator = match Validator::new(config) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let policy = route_policy(args.scopes, args.any_scope, args.audience);
    // At once, before any key is held: a token that fails a check needing no key (format,
    // header, times, scope, audience) is invalid whatever the issuer says, so it is reported
    // without waiting for the issuer.
    let mut report = validator.inspect(&token, &policy).await;
    if !report.valid && !fails_without_keys(&report) {
        match validator.wait_until_ready(Duration::from_secs(10)).await {
            Readiness::Ready { .. } => report = validator.inspect(&token, &policy).await,
            not_ready => {
                let reason = not_ready
                    .reason()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                for check in report.checks.iter().filter(|c| !needs_keys(c)) {
                    print_check(check);
                }
                eprintln!(
                    "error: cannot check the signature, the issuer's keys are not available: {reason}"
                );
                eprintln!("hint: {}", args.issuer.hint());
                return ExitCode::from(2);
            }
        }
    }
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
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
    if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
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
