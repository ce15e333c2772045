//! `portvakt token`: print a Maskinporten access token for a consumer, so that
//! `curl -H "Authorization: Bearer $(portvakt token --scope ...)"` works.
//!
//! With `MASKINPORTEN_CLIENT_ID` and `MASKINPORTEN_CLIENT_JWK` set it performs the real
//! JWT-bearer grant (against `MASKINPORTEN_WELL_KNOWN_URL`, or `MASKINPORTEN_ISSUER` +
//! `MASKINPORTEN_TOKEN_ENDPOINT`, or the issuer given with `--issuer`): the same command works
//! against test.maskinporten.no and the local issuer. Without them it asks a local issuer's
//! development shortcut for a token for `--orgno`, the grants still enforced: the issuer given
//! with `--issuer`, else the one `MASKINPORTEN_WELL_KNOWN_URL` or `MASKINPORTEN_ISSUER` names,
//! else 127.0.0.1:7166.

use std::process::ExitCode;

use clap::Args;
use portvakt::client::{
    ENV_CLIENT_ID, ENV_CLIENT_JWK, ENV_TOKEN_ENDPOINT, TokenClient, TokenError, TokenRequest,
    discover_raw, request_dev_token,
};
use portvakt::{ENV_ISSUER, ENV_WELL_KNOWN_URL, env_var};
use url::Url;

use crate::values::{parse_audience, parse_orgno, parse_scope};

/// The local issuer `portvakt issuer` serves by default.
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:7166";

/// `portvakt token --scope S [--scope S2] [--orgno N] [--audience URI] [--on-behalf-of N]
/// [--issuer URL]`
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// A scope to request, e.g. nav:arbeid:some.scope.read. Repeat, or separate with spaces.
    #[arg(long = "scope", value_name = "SCOPE", required = true, value_parser = parse_scope)]
    pub scopes: Vec<String>,
    /// The organization (nine digits) to get a token for; required with the local issuer's
    /// development shortcut, refused with MASKINPORTEN_CLIENT_ID and MASKINPORTEN_CLIENT_JWK
    /// set (the organization is then the client's own).
    #[arg(long, value_name = "ORGNO", value_parser = parse_orgno)]
    pub orgno: Option<String>,
    /// Ask for an audience-restricted token (`aud`): an absolute URI, e.g.
    /// `https://my-api.ekstern.dev.nav.no/`.
    #[arg(long, value_name = "URI", value_parser = parse_audience)]
    pub audience: Option<String>,
    /// Ask for a delegated token on behalf of this organization (nine digits; `consumer_org`):
    /// the token's consumer is that organization and its supplier the client's.
    #[arg(long = "on-behalf-of", value_name = "ORGNO", value_parser = parse_orgno)]
    pub on_behalf_of: Option<String>,
    /// The issuer's base URL (or its discovery document's URL); its discovery document is
    /// read from URL/.well-known/oauth-authorization-server. It replaces the MASKINPORTEN_*
    /// variables' issuer. [default: the issuer MASKINPORTEN_WELL_KNOWN_URL or
    /// MASKINPORTEN_ISSUER names (for the JWT-bearer grant, MASKINPORTEN_ISSUER with
    /// MASKINPORTEN_TOKEN_ENDPOINT), else http://127.0.0.1:7166]
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
}

/// The discovery document URL for an issuer base URL (a full well-known URL is kept).
fn well_known_for(base: &str) -> String {
    if base.contains("/.well-known/") {
        base.to_owned()
    } else {
        format!(
            "{}/.well-known/oauth-authorization-server",
            base.trim_end_matches('/')
        )
    }
}

/// Runs `portvakt token`. Prints only the token on stdout. Exit codes: 0 with a token, 1 when
/// the issuer refused (its `error: error_description` on stderr), 2 for usage, configuration
/// and network errors. The issuer's `invalid_request` is a usage error: it says the request
/// was malformed, not that the grant was refused.
pub async fn run(args: TokenArgs) -> ExitCode {
    let mut request = TokenRequest::new(args.scopes.iter().cloned());
    request.audience = args.audience.clone();
    request.on_behalf_of = args.on_behalf_of.clone();

    let result = if TokenClient::env_is_set() {
        if args.orgno.is_some() {
            eprintln!(
                "error: --orgno is only for the local issuer's development shortcut; with {ENV_CLIENT_ID} set the organization is the client's own (use --on-behalf-of for delegation)"
            );
            return ExitCode::from(2);
        }
        jwt_bearer(&args, &request).await
    } else {
        for name in [ENV_CLIENT_ID, ENV_CLIENT_JWK] {
            if env_var(name).is_some() {
                eprintln!(
                    "note: {name} is set but not both {ENV_CLIENT_ID} and {ENV_CLIENT_JWK}; using the local issuer's development shortcut"
                );
            }
        }
        if args.orgno.is_none() {
            eprintln!(
                "error: --orgno is required with the local issuer's development shortcut: the organization to get a token for, e.g. --orgno 889640782 (`portvakt manifest scopes` lists each scope's consumers)\n  = help: or set {ENV_CLIENT_ID} and {ENV_CLIENT_JWK} to get a token for your own client with the JWT-bearer grant"
            );
            return ExitCode::from(2);
        }
        dev_shortcut(&args, &request).await
    };
    match result {
        Ok(token) => {
            println!("{}", token.as_str());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", error_text(&e));
            exit_code(&e)
        }
    }
}

/// 1 when the issuer refused the grant, 2 for everything else: usage (also the issuer's
/// `invalid_request`, which says the request itself is malformed), configuration and network.
fn exit_code(error: &TokenError) -> ExitCode {
    match error.oauth_error() {
        Some("invalid_request") | None => ExitCode::from(2),
        Some(_) => ExitCode::FAILURE,
    }
}

/// The most of an issuer's `error_description` that is shown (its descriptions are a line
/// or two; a hostile one cannot flood the terminal).
const MAX_DESCRIPTION: usize = 1024;

/// How `portvakt token` words a failure: `error: CODE: DESCRIPTION` when the issuer refused
/// (e.g. `error: invalid_scope: organization 999999999 is not a consumer of scope "..."`),
/// `error: WHAT` for usage, configuration and network errors. The issuer's code and
/// description are its text, not ours: control characters in them are escaped
/// ([`portvakt::printable`]), so a fake or compromised issuer cannot send escape sequences,
/// `\r` or BEL to the terminal.
pub fn error_text(error: &TokenError) -> String {
    match error {
        TokenError::Refused {
            error, description, ..
        } => format!(
            "error: {}: {}",
            portvakt::printable(error),
            description.as_deref().map_or_else(
                || "(the issuer gave no description)".to_owned(),
                |d| portvakt::printable_at_most(d, MAX_DESCRIPTION)
            )
        ),
        e => format!("error: {e}"),
    }
}

/// The real grant, with the client from the environment.
async fn jwt_bearer(
    args: &TokenArgs,
    request: &TokenRequest,
) -> Result<portvakt::client::AccessToken, TokenError> {
    let well_known = args.issuer.as_deref().map(well_known_for);
    let client = TokenClient::from_vars(|name| match name {
        ENV_WELL_KNOWN_URL if well_known.is_some() => well_known.clone(),
        // --issuer replaces wherever the environment points.
        ENV_ISSUER | ENV_TOKEN_ENDPOINT if well_known.is_some() => None,
        _ => env_var(name),
    })
    .await?;
    client.token(request).await
}

/// The development shortcut of the issuer given with `--issuer`, else of the one
/// `MASKINPORTEN_WELL_KNOWN_URL` names (its discovery document), else `MASKINPORTEN_ISSUER`,
/// else of the local one: the help's "default: MASKINPORTEN_* when set". A configuration error
/// from an issuer a variable names says which variable.
async fn dev_shortcut(
    args: &TokenArgs,
    request: &TokenRequest,
) -> Result<portvakt::client::AccessToken, TokenError> {
    let from_env = || {
        [ENV_WELL_KNOWN_URL, ENV_ISSUER]
            .into_iter()
            .find_map(|name| env_var(name).map(|value| (name, value)))
    };
    let (base, source) = match (&args.issuer, from_env()) {
        (Some(issuer), _) => (issuer.clone(), None),
        (None, Some((name, value))) => (value, Some(name)),
        (None, None) => (DEFAULT_ISSUER.to_owned(), None),
    };
    dev_token(&base, args.orgno.as_deref(), request)
        .await
        .map_err(|e| match (e, source) {
            (TokenError::Config(message), Some(name)) => TokenError::Config(format!(
                "{message}\n  = note: the issuer is the one {name} names ({base}); pass --issuer URL for another"
            )),
            (e, _) => e,
        })
}

/// A token from the local issuer at `base` through its development shortcut (`/dev/token`,
/// found through its discovery document), as `portvakt token --orgno` gets one without
/// `MASKINPORTEN_CLIENT_*`: the grants enforced, the refusal the issuer's.
pub async fn dev_token(
    base: &str,
    orgno: Option<&str>,
    request: &TokenRequest,
) -> Result<portvakt::client::AccessToken, TokenError> {
    let well_known = well_known_for(base);
    let document = discover_raw(&well_known, std::time::Duration::from_secs(5))
        .await
        .map_err(|e| {
            TokenError::Config(format!(
                "{e}\n  = help: is the local issuer running? Start it with `portvakt issuer`, or set {ENV_CLIENT_ID}, {ENV_CLIENT_JWK} and {ENV_WELL_KNOWN_URL} for a real Maskinporten"
            ))
        })?;
    let endpoint = document
        .get("portvakt_dev_token_endpoint")
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            TokenError::Config(format!(
                "{base} does not offer portvakt's development shortcut (it is Maskinporten, or a local issuer started with --strict)\n  = help: set {ENV_CLIENT_ID} and {ENV_CLIENT_JWK} to perform the JWT-bearer grant"
            ))
        })?;
    let endpoint = Url::parse(endpoint).map_err(|e| {
        TokenError::Config(format!(
            "the issuer's portvakt_dev_token_endpoint {endpoint:?} is not a URL: {e}"
        ))
    })?;
    request_dev_token(&endpoint, orgno, request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_base_urls_become_discovery_urls() {
        assert_eq!(
            well_known_for("http://127.0.0.1:7166"),
            "http://127.0.0.1:7166/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            well_known_for("https://test.maskinporten.no/"),
            "https://test.maskinporten.no/.well-known/oauth-authorization-server"
        );
        let full = "https://test.maskinporten.no/.well-known/oauth-authorization-server";
        assert_eq!(well_known_for(full), full);
    }
}
