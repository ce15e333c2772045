//! Reading Digdir's state, and performing a plan in a safe order.
//!
//! Apply performs the steps of one scope together, in the plan's order (create or reactivate
//! before granting; revoke before deactivating). Before the first write to a scope it reads the
//! scope and its access list again, and stops everything if either differs from what the plan
//! was made from: somebody else changed Digdir in between, and the plan may be wrong. A step
//! that fails leaves the rest of its scope undone and apply goes on with the other scopes;
//! the report says what was done and what was not, and running apply again finishes the job,
//! since a new plan holds exactly the steps still missing.

use std::fmt::{self, Write as _};

use crate::client::AdminClient;
use crate::desired::Desired;
use crate::error::{ApiError, ProvisionError};
use crate::plan::{Action, ActionKind, Held, Plan, PlanOptions, RemoteState};
use crate::types::{AccessEntry, DelegationSourceEntry};

/// Swaps the manifest's delegation source names (`altinn`) for the issuer URLs Digdir lists at
/// `GET /delegationsources` (names compared without regard to case).
///
/// # Errors
/// [`ProvisionError::UnknownDelegationSource`] when Digdir does not list the name.
pub fn resolve_delegation_sources(
    desired: &mut Desired,
    sources: &[DelegationSourceEntry],
) -> Result<(), ProvisionError> {
    for d in &mut desired.scopes {
        let Some(name) = d.registration.delegation_source.clone() else {
            continue;
        };
        let source = sources
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(&name))
            .ok_or_else(|| ProvisionError::UnknownDelegationSource {
                scope: d.name(),
                name: name.clone(),
                offered: if sources.is_empty() {
                    "none".to_owned()
                } else {
                    sources
                        .iter()
                        .map(|s| format!("{} ({})", s.name, s.issuer))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })?;
        d.registration.delegation_source = Some(source.issuer.clone());
    }
    Ok(())
}

/// Reads what the plan compares: every scope of the organization, and the access lists of the
/// manifest's scopes that exist.
pub async fn read_remote(
    client: &AdminClient,
    desired: &Desired,
) -> Result<RemoteState, ProvisionError> {
    let scopes = client.scopes().await?;
    let mut remote = RemoteState {
        scopes,
        access: Default::default(),
    };
    for d in &desired.scopes {
        let name = d.name();
        if remote.scope(&name).is_some() {
            let access = client.access(&name).await?;
            remote.access.insert(name, access);
        }
    }
    Ok(remote)
}

/// Makes the plan: resolves delegation sources (only when a scope has one), reads the remote
/// state, and compares.
pub async fn plan(
    client: &AdminClient,
    mut desired: Desired,
    options: PlanOptions,
) -> Result<Plan, ProvisionError> {
    if desired
        .scopes
        .iter()
        .any(|d| d.registration.delegation_source.is_some())
    {
        let sources = client.delegation_sources().await?;
        resolve_delegation_sources(&mut desired, &sources)?;
    }
    let remote = read_remote(client, &desired).await?;
    Ok(Plan::new(&desired, remote, options))
}

/// A step that was not performed, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Undone {
    /// The step.
    pub action: Action,
    /// Why not.
    pub reason: String,
}

/// What apply did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApplyReport {
    /// Performed, in order.
    pub done: Vec<Action>,
    /// Tried and failed, with Digdir's answer.
    pub failed: Vec<(Action, ApiError)>,
    /// Not tried, because an earlier step of the scope failed or apply stopped.
    pub not_done: Vec<Undone>,
    /// Shown by the plan but held back (`--prune`, `--adopt`).
    pub held: Vec<Action>,
    /// Why apply stopped before the end, if it did.
    pub stopped: Option<String>,
}

impl ApplyReport {
    /// Whether every step that was to be performed was.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.not_done.is_empty() && self.stopped.is_none()
    }
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for a in &self.done {
            let _ = writeln!(out, "done      {}", a.headline());
        }
        for (a, e) in &self.failed {
            let _ = writeln!(out, "FAILED    {}: {e}", a.headline());
        }
        for u in &self.not_done {
            let _ = writeln!(out, "not done  {}: {}", u.action.headline(), u.reason);
        }
        for a in &self.held {
            // The flag that held it: a revocation held for `--adopt` (a scope of another
            // application) needs that, even with `--prune` given.
            let flag = a.held.as_ref().map_or("--adopt", Held::flag);
            let _ = writeln!(out, "held      {} (needs {flag})", a.headline());
        }
        if let Some(why) = &self.stopped {
            let _ = writeln!(out, "stopped: {why}");
        }
        let _ = write!(
            out,
            "Apply: {} done, {} failed, {} not done, {} held back.",
            self.done.len(),
            self.failed.len(),
            self.not_done.len(),
            self.held.len()
        );
        if !self.is_complete() {
            out.push_str(
                " Fix what failed and run apply again: it does only what is still missing.",
            );
        }
        f.write_str(&out)
    }
}

/// Performs the plan's steps (those not held back) against `client`.
pub async fn apply(client: &AdminClient, plan: &Plan) -> ApplyReport {
    let mut report = ApplyReport::default();
    let mut i = 0;
    while i < plan.actions.len() {
        let scope = plan.actions[i].scope.as_str();
        let end = plan.actions[i..]
            .iter()
            .position(|a| a.scope != scope)
            .map_or(plan.actions.len(), |n| i + n);
        let group = &plan.actions[i..end];
        i = end;
        report
            .held
            .extend(group.iter().filter(|a| !a.is_performed()).cloned());
        let todo: Vec<&Action> = group.iter().filter(|a| a.is_performed()).collect();
        if todo.is_empty() {
            continue;
        }
        if report.stopped.is_some() {
            report.not_done.extend(todo.into_iter().map(|a| Undone {
                action: a.clone(),
                reason: "apply stopped before it".to_owned(),
            }));
            continue;
        }
        match unchanged(client, plan, scope).await {
            Ok(()) => {}
            Err(why) => {
                report.stopped = Some(why.clone());
                report.not_done.extend(todo.into_iter().map(|a| Undone {
                    action: a.clone(),
                    reason: "not attempted: the remote state changed".to_owned(),
                }));
                continue;
            }
        }
        let mut failed_step = false;
        for a in todo {
            if failed_step {
                report.not_done.push(Undone {
                    action: a.clone(),
                    reason: "an earlier step of this scope failed".to_owned(),
                });
                continue;
            }
            match perform(client, a).await {
                Ok(()) => {
                    tracing::info!(action = %a.action, scope = %a.scope, orgno = a.orgno.as_deref(), "applied");
                    report.done.push(a.clone());
                }
                Err(e) => {
                    failed_step = true;
                    report.failed.push((a.clone(), e));
                }
            }
        }
    }
    report
}

async fn perform(client: &AdminClient, a: &Action) -> Result<(), ApiError> {
    let orgno = a.orgno.as_deref().unwrap_or_default();
    match a.action {
        ActionKind::Create => client.create(body(a)?).await,
        ActionKind::Update | ActionKind::Reactivate => client.update(body(a)?).await,
        ActionKind::Deactivate | ActionKind::Orphan => client.deactivate(&a.scope).await,
        ActionKind::Grant => client.grant(&a.scope, orgno).await,
        ActionKind::Revoke => client.revoke(&a.scope, orgno).await,
    }
}

fn body(a: &Action) -> Result<&crate::types::ScopeRegistration, ApiError> {
    a.body.as_ref().ok_or_else(|| ApiError {
        method: "PUT",
        path: "/scopes".to_owned(),
        status: None,
        message: "the plan has no registration for this step (a plan read back from JSON cannot be applied)".to_owned(),
        scope: Some(a.scope.clone()),
        orgno: None,
        attempts: 0,
    })
}

/// Reads the scope and its access list again; `Err` says what changed since the plan.
async fn unchanged(client: &AdminClient, plan: &Plan, scope: &str) -> Result<(), String> {
    let failed = |e: ApiError| format!("could not read {scope} again before changing it: {e}");
    let now = client.scopes().await.map_err(failed)?;
    let before = plan.remote.scope(scope);
    let after = now.iter().find(|s| s.full_name() == scope);
    if before != after {
        let what = match (before, after) {
            (None, Some(_)) => "it now exists".to_owned(),
            (Some(_), None) => "it is gone".to_owned(),
            _ => "its registration differs".to_owned(),
        };
        return Err(format!(
            "scope {scope} changed at Digdir since the plan was made ({what}); run plan again and review it"
        ));
    }
    if after.is_some() && plan.remote.access.contains_key(scope) {
        let access = client.access(scope).await.map_err(failed)?;
        let key = |list: &[AccessEntry]| {
            let mut k: Vec<(String, String)> = list
                .iter()
                .map(|e| (e.consumer_orgno.clone(), e.state.as_str().to_owned()))
                .collect();
            k.sort();
            k
        };
        if key(&access) != key(&plan.remote.access[scope]) {
            return Err(format!(
                "the access list of scope {scope} changed at Digdir since the plan was made; run plan again and review it"
            ));
        }
    }
    Ok(())
}
