//! `portvakt provision plan|apply`: the manifest's scopes and grants, provisioned through
//! Digdir's admin API with a readable plan first. All logic lives in `portvakt-provision`
//! (tested there and end to end in tests/provision.rs); this module reads arguments, prints,
//! and picks the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use portvakt_manifest::{CheckOptions, Manifest, render};
use portvakt_provision::{
    AdminClient, AdminSettings, ENV_ADMIN_CERTIFICATE, ENV_ADMIN_CLIENT_ID, ENV_ADMIN_CLIENT_JWK,
    ENV_ADMIN_MASKINPORTEN_URL, ENV_ADMIN_PRIVATE_KEY, ENV_ADMIN_URL, Naming, Plan, PlanOptions,
    ProvisionError,
};

/// `portvakt provision ...`
#[derive(Debug, Clone, Subcommand)]
pub enum ProvisionCommand {
    /// Show what apply would change at Digdir, grouped per scope.
    ///
    /// Exits 0 (with --detailed-exitcode: 0 no changes, 2 changes), 1 on errors.
    Plan {
        /// What to plan.
        #[command(flatten)]
        target: Target,
        /// Print the plan as one JSON object: {"actions": [{"action", "scope", "orgno"?, "changes"}], ...}.
        #[arg(long)]
        json: bool,
        /// Exit 0 when there is nothing to do, 2 when apply would change something, 1 on errors.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Make the plan again, print it, and perform it in a safe order.
    ///
    /// Exits 0 when everything planned was done, 1 otherwise (the report says what was not).
    Apply {
        /// What to apply.
        #[command(flatten)]
        target: Target,
        /// Perform the changes (without it, apply only shows the plan and exits 1; 0 when
        /// the plan has nothing to perform, held steps aside).
        #[arg(long)]
        yes: bool,
    },
}

/// The manifest, the naming, the flags and the admin API, shared by plan and apply.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The NAIS manifest.
    #[arg(default_value = "nais.yaml")]
    pub file: PathBuf,
    /// Also revoke grants the manifest no longer lists and deactivate orphaned scopes.
    #[arg(long)]
    pub prune: bool,
    /// Also change scopes whose description names another application (or none).
    #[arg(long)]
    pub adopt: bool,
    /// Prefix of fully qualified scopes.
    #[arg(long, default_value = "nav", value_parser = crate::values::parse_prefix)]
    pub prefix: String,
    /// NAIS cluster named in scope descriptions [default: NAIS_CLUSTER_NAME, else `local`].
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The admin API, including /api/v1 (no default, so production is never reached by
    /// accident).
    #[arg(long, env = ENV_ADMIN_URL, value_name = "URL")]
    pub admin_url: Option<String>,
    /// The Maskinporten that issues the admin token [default for a loopback admin API: its
    /// origin].
    #[arg(long, env = ENV_ADMIN_MASKINPORTEN_URL, value_name = "URL")]
    pub admin_maskinporten_url: Option<String>,
    /// The admin client's id; without it the token comes from the local issuer's /dev/token.
    #[arg(long, env = ENV_ADMIN_CLIENT_ID, value_name = "ID")]
    pub admin_client_id: Option<String>,
    /// The admin client's private JWK with `kid` (the JSON, or a file).
    #[arg(long, env = ENV_ADMIN_CLIENT_JWK, value_name = "JWK", hide_env_values = true)]
    pub admin_client_jwk: Option<String>,
    /// The business certificate chain, PEM (the text, or a file), for an x5c assertion.
    #[arg(long, env = ENV_ADMIN_CERTIFICATE, value_name = "PEM", hide_env_values = true)]
    pub admin_certificate: Option<String>,
    /// The certificate's private key, PEM (the text, or a file).
    #[arg(long, env = ENV_ADMIN_PRIVATE_KEY, value_name = "PEM", hide_env_values = true)]
    pub admin_private_key: Option<String>,
    /// The organization a /dev/token admin token is for [default: 889640782].
    #[arg(long, value_name = "ORGNO")]
    pub admin_orgno: Option<String>,
}

impl Target {
    fn options(&self) -> PlanOptions {
        PlanOptions {
            prune: self.prune,
            adopt: self.adopt,
        }
    }

    fn settings(&self) -> AdminSettings {
        AdminSettings {
            admin_url: self.admin_url.clone(),
            maskinporten_url: self.admin_maskinporten_url.clone(),
            client_id: self.admin_client_id.clone(),
            client_jwk: self.admin_client_jwk.clone(),
            certificate: self.admin_certificate.clone(),
            private_key: self.admin_private_key.clone(),
            dev_orgno: self.admin_orgno.clone(),
        }
    }

    /// Reads and checks the manifest, connects, and makes the plan.
    async fn plan(&self) -> Result<(AdminClient, Plan), String> {
        let options = CheckOptions {
            strict: false,
            prefix: self.prefix.clone(),
        };
        let manifest =
            Manifest::from_path_with(&self.file, &options).map_err(|e| render::read_error(&e))?;
        for d in manifest.diagnostics() {
            eprintln!("{}", render::diagnostic(d));
        }
        let naming = Naming {
            prefix: self.prefix.clone(),
            cluster: self
                .cluster
                .clone()
                .unwrap_or_else(portvakt_provision::cluster_from_env),
        };
        let desired = portvakt_provision::desired(&manifest, &naming).map_err(message)?;
        let client = self.settings().connect().await.map_err(message)?;
        let plan = portvakt_provision::plan(&client, desired, self.options())
            .await
            .map_err(message)?;
        Ok((client, plan))
    }
}

fn message(e: ProvisionError) -> String {
    format!("error: {e}")
}

/// Runs a `portvakt provision` subcommand.
pub async fn run(cmd: ProvisionCommand) -> ExitCode {
    match cmd {
        ProvisionCommand::Plan {
            target,
            json,
            detailed_exitcode,
        } => {
            let plan = match target.plan().await {
                Ok((_, plan)) => plan,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            if json {
                println!("{}", plan.to_json());
            } else {
                print!("{}", plan.render());
            }
            if detailed_exitcode && plan.has_changes() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        ProvisionCommand::Apply { target, yes } => {
            let (client, plan) = match target.plan().await {
                Ok(planned) => planned,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            print!("{}", plan.render());
            if !plan.has_changes() {
                return ExitCode::SUCCESS;
            }
            if !yes {
                eprintln!(
                    "error: nothing was changed: run `portvakt provision apply --yes` to perform this plan"
                );
                return ExitCode::FAILURE;
            }
            println!();
            let report = portvakt_provision::apply(&client, &plan).await;
            println!("{report}");
            if report.is_complete() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
