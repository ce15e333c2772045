//! # portvakt-provision
//!
//! Makes the scopes and grants of a NAIS manifest (`spec.maskinporten.scopes.exposes[]`) real
//! in Maskinporten, through Digdir's admin API, the way `terraform plan` and `apply` work: a
//! readable plan first, then only the writes the plan showed.
//!
//! - [`desired`] maps a checked [`Manifest`](portvakt_manifest::Manifest) the way NAIS's
//!   digdirator does: subscope `product + separator + name`, `active` = `enabled`,
//!   `at_max_age` (default 30), `allowed_integration_types` (default `["maskinporten"]`),
//!   `token_type` `SELF_CONTAINED`, `visibility` `PUBLIC` unless private, description
//!   `"<product> - <cluster>:<namespace>:<app>"`, delegation sources resolved by name through
//!   `GET /delegationsources`.
//! - [`Plan::new`] compares it with what [`read_remote`] read (a pure function, unit-tested):
//!   `create`, `update` (field by field), `reactivate` (an inactive scope is updated with
//!   `PUT`, never re-created), `deactivate`, `grant`, `revoke` and `orphan`. Revocations and
//!   orphans are held back without `--prune` ([`PlanOptions::prune`]); a scope whose
//!   description names another application, or is not NAIS-style, is held back without
//!   `--adopt`.
//! - [`apply`] performs it in a safe order, re-reading each scope before writing it and
//!   stopping when it changed since the plan; 4xx answers are reported with the scope and
//!   organization and never retried, 5xx and network errors are retried with backoff and
//!   jitter ([`RetryPolicy`]). The [`ApplyReport`] says what was done and what was not;
//!   applying again finishes the job.
//! - [`AdminClient`] speaks HTTP to any Digdir (the real one, or `portvakt issuer`'s local
//!   one); its admin token comes from the library's `TokenClient` (JWT-bearer grant, `kid` or
//!   `x5c`), cached until shortly before it expires.
//!
//! ```no_run
//! use portvakt_manifest::Manifest;
//! use portvakt_provision::{AdminSettings, Naming, PlanOptions, apply, desired, plan};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let manifest = Manifest::from_path("nais.yaml")?;
//! let naming = Naming { prefix: "nav".into(), cluster: "dev-gcp".into() };
//! let settings = AdminSettings {
//!     admin_url: Some("http://127.0.0.1:7166/api/v1".into()),
//!     ..AdminSettings::default()
//! };
//! let client = settings.connect().await?;
//! let plan = plan(&client, desired(&manifest, &naming)?, PlanOptions::default()).await?;
//! print!("{}", plan.render());
//! let report = apply(&client, &plan).await;
//! println!("{report}");
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod apply;
mod client;
mod desired;
mod error;
mod plan;
mod settings;
pub mod types;

pub use apply::{ApplyReport, Undone, apply, plan, read_remote, resolve_delegation_sources};
pub use client::{AdminAuth, AdminClient, REQUEST_TIMEOUT, RetryPolicy};
pub use desired::{DEFAULT_AT_MAX_AGE, Desired, DesiredScope, Naming, Owner, desired};
pub use error::{ApiError, ProvisionError};
pub use plan::{Action, ActionKind, Change, Held, Plan, PlanOptions, RemoteState};
pub use settings::{
    AdminSettings, DEFAULT_CLUSTER, DEFAULT_DEV_ORGNO, ENV_ADMIN_CERTIFICATE, ENV_ADMIN_CLIENT_ID,
    ENV_ADMIN_CLIENT_JWK, ENV_ADMIN_MASKINPORTEN_URL, ENV_ADMIN_PRIVATE_KEY, ENV_ADMIN_URL,
    ENV_CLUSTER, cluster_from_env,
};
pub use types::{AccessEntry, AccessState, DelegationSourceEntry, ScopeRegistration};
