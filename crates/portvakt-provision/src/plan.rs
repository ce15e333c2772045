//! The plan: the difference between the manifest and Digdir, as a pure value, and how it reads.
//!
//! Actions of one scope are listed together, in the order apply performs them: `create`,
//! `reactivate` or `update` first, then `grant`, then `revoke`, then `deactivate`; `orphan`s
//! (scopes of this application the manifest no longer has) come last.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use serde::Serialize;
use serde_json::{Value, json};

use crate::desired::{Desired, Owner};
use crate::types::{AccessEntry, AccessState, ScopeRegistration};

/// What apply would do to one scope or one grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// `POST /scopes`.
    Create,
    /// `PUT /scopes?scope=`, field by field.
    Update,
    /// `PUT /scopes?scope=` with `active: true` (an inactive scope is never re-created).
    Reactivate,
    /// `DELETE /scopes?scope=`: the manifest says `enabled: false`.
    Deactivate,
    /// `PUT /scopes/access/{orgno}?scope=`.
    Grant,
    /// `DELETE /scopes/access/{orgno}?scope=`; only with `--prune`.
    Revoke,
    /// A scope this application made that the manifest no longer has; deactivated only with
    /// `--prune`.
    Orphan,
}

impl ActionKind {
    /// The name in plans and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Create => "create",
            ActionKind::Update => "update",
            ActionKind::Reactivate => "reactivate",
            ActionKind::Deactivate => "deactivate",
            ActionKind::Grant => "grant",
            ActionKind::Revoke => "revoke",
            ActionKind::Orphan => "orphan",
        }
    }

    fn sign(self) -> char {
        match self {
            ActionKind::Create | ActionKind::Grant => '+',
            ActionKind::Update | ActionKind::Reactivate => '~',
            ActionKind::Deactivate | ActionKind::Revoke | ActionKind::Orphan => '-',
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field's old and new value (`null` when absent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Digdir's value now.
    pub old: Value,
    /// The manifest's value.
    pub new: Value,
}

/// Why apply will not perform an action it shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Held {
    /// Revocations and orphans are performed only with `--prune`.
    Prune,
    /// The scope's description names another application (or is not NAIS-style); it is
    /// changed only with `--adopt`.
    Adopt,
}

impl Held {
    /// The flag that lets apply perform the step.
    pub(crate) fn flag(&self) -> &'static str {
        match self {
            Held::Prune => "--prune",
            Held::Adopt => "--adopt",
        }
    }
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    /// What kind of step.
    pub action: ActionKind,
    /// The fully qualified scope, e.g. `nav:arbeid:some.scope.read`.
    pub scope: String,
    /// The organization, for `grant` and `revoke` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orgno: Option<String>,
    /// Field by field, what changes.
    pub changes: BTreeMap<String, Change>,
    /// Set when apply shows the step but will not perform it without a flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
    /// For held `--adopt` steps: the scope's description now, which names its owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The registration to send with `create`, `update` and `reactivate`.
    #[serde(skip)]
    pub body: Option<ScopeRegistration>,
}

impl Action {
    /// Whether apply performs the step.
    pub fn is_performed(&self) -> bool {
        self.held.is_none()
    }

    /// One line: `+ grant nav:arbeid:x to 889640782`.
    pub fn headline(&self) -> String {
        let mut line = format!("{} {} {}", self.action.sign(), self.action, self.scope);
        match (self.action, &self.orgno) {
            (ActionKind::Grant, Some(orgno)) => {
                let _ = write!(line, " to {orgno}");
            }
            (ActionKind::Revoke, Some(orgno)) => {
                let _ = write!(line, " from {orgno}");
            }
            _ => {}
        }
        line
    }
}

/// What was read from Digdir to make a plan; apply compares against it before writing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteState {
    /// `GET /scopes?inactive=true`.
    pub scopes: Vec<ScopeRegistration>,
    /// `GET /scopes/access?scope=` of the manifest's scopes that exist.
    pub access: BTreeMap<String, Vec<AccessEntry>>,
}

impl RemoteState {
    /// The scope with this fully qualified name.
    pub fn scope(&self, name: &str) -> Option<&ScopeRegistration> {
        self.scopes.iter().find(|s| s.full_name() == name)
    }
}

/// Flags that change what apply may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Perform revocations and deactivate orphans.
    pub prune: bool,
    /// Change scopes whose description names another application.
    pub adopt: bool,
}

/// The plan: a pure value, computed by [`Plan::new`] from the desired and the remote state.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The steps, grouped per scope, in the order apply performs them.
    pub actions: Vec<Action>,
    /// The remote state the plan was made from.
    pub remote: RemoteState,
    /// The flags it was made with.
    pub options: PlanOptions,
}

/// The fields the manifest decides and a plan compares (`active` is `reactivate`/`deactivate`).
fn managed_fields(r: &ScopeRegistration) -> [(&'static str, Value); 7] {
    let mut integrations: Vec<&str> = r
        .allowed_integration_types
        .iter()
        .map(String::as_str)
        .collect();
    integrations.sort_unstable();
    integrations.dedup();
    [
        ("description", json!(r.description)),
        ("allowed_integration_types", json!(integrations)),
        ("at_max_age", json!(r.at_max_age)),
        ("token_type", json!(r.token_type)),
        ("visibility", json!(r.visibility)),
        ("accessible_for_all", json!(r.accessible_for_all)),
        ("delegation_source", json!(r.delegation_source)),
    ]
}

fn field_changes(old: &ScopeRegistration, new: &ScopeRegistration) -> BTreeMap<String, Change> {
    managed_fields(old)
        .into_iter()
        .zip(managed_fields(new))
        .filter(|((_, o), (_, n))| o != n)
        .map(|((name, old), (_, new))| (name.to_owned(), Change { old, new }))
        .collect()
}

/// Digdir's registration with the manifest's fields written over it: what `PUT` sends, so that
/// fields the manifest does not decide (`long_description`, `requires_*`) stay as they are.
fn merged(remote: &ScopeRegistration, desired: &ScopeRegistration) -> ScopeRegistration {
    ScopeRegistration {
        description: desired.description.clone(),
        active: desired.active,
        allowed_integration_types: desired.allowed_integration_types.clone(),
        at_max_age: desired.at_max_age,
        token_type: desired.token_type.clone(),
        visibility: desired.visibility.clone(),
        accessible_for_all: desired.accessible_for_all,
        delegation_source: desired.delegation_source.clone(),
        ..remote.write_body()
    }
}

fn active_change(old: bool, new: bool) -> (String, Change) {
    (
        "active".to_owned(),
        Change {
            old: json!(old),
            new: json!(new),
        },
    )
}

fn step(kind: ActionKind, scope: &str) -> Action {
    Action {
        action: kind,
        scope: scope.to_owned(),
        orgno: None,
        changes: BTreeMap::new(),
        held: None,
        owner: None,
        body: None,
    }
}

impl Plan {
    /// Compares the desired scopes (delegation sources resolved) with the remote state.
    pub fn new(desired: &Desired, remote: RemoteState, options: PlanOptions) -> Plan {
        let mut actions = Vec::new();
        let owners: BTreeSet<&Owner> = desired.owners.iter().collect();
        let no_access = Vec::new();
        for d in &desired.scopes {
            let name = d.name();
            let want = &d.registration;
            let mut scope_actions = Vec::new();
            let Some(have) = remote.scope(&name) else {
                if want.active {
                    let mut create = step(ActionKind::Create, &name);
                    create.changes = field_changes(&ScopeRegistration::default(), want)
                        .into_iter()
                        .map(|(k, c)| {
                            (
                                k,
                                Change {
                                    old: Value::Null,
                                    new: c.new,
                                },
                            )
                        })
                        .collect();
                    create.body = Some(want.clone());
                    actions.push(create);
                    for orgno in &d.consumers {
                        actions.push(grant(&name, orgno, None));
                    }
                }
                // A disabled scope that does not exist is not created: nothing would use it.
                continue;
            };
            let access = remote.access.get(&name).unwrap_or(&no_access);
            if want.active {
                let mut changes = field_changes(have, want);
                let kind = if !have.active {
                    changes.extend([active_change(false, true)]);
                    Some(ActionKind::Reactivate)
                } else if !changes.is_empty() {
                    Some(ActionKind::Update)
                } else {
                    None
                };
                if let Some(kind) = kind {
                    let mut a = step(kind, &name);
                    a.changes = changes;
                    a.body = Some(merged(have, want));
                    scope_actions.push(a);
                }
                for orgno in &d.consumers {
                    let entry = access.iter().find(|e| &e.consumer_orgno == orgno);
                    match entry.map(|e| &e.state) {
                        Some(AccessState::Approved) => {}
                        state => scope_actions.push(grant(&name, orgno, state)),
                    }
                }
            }
            for entry in access {
                if entry.state == AccessState::Approved
                    && !d.consumers.contains(&entry.consumer_orgno)
                {
                    let mut revoke = step(ActionKind::Revoke, &name);
                    revoke.orgno = Some(entry.consumer_orgno.clone());
                    revoke.changes = BTreeMap::from([(
                        "state".to_owned(),
                        Change {
                            old: json!(entry.state.as_str()),
                            new: Value::Null,
                        },
                    )]);
                    revoke.held = (!options.prune).then_some(Held::Prune);
                    scope_actions.push(revoke);
                }
            }
            if !want.active && have.active {
                let mut a = step(ActionKind::Deactivate, &name);
                a.changes = BTreeMap::from([active_change(true, false)]);
                scope_actions.push(a);
            }
            let ours = Owner::from_description(&have.description).as_ref() == Some(&d.owner);
            if !ours && !options.adopt {
                for a in &mut scope_actions {
                    a.held = Some(Held::Adopt);
                    a.owner = Some(have.description.clone());
                }
            }
            actions.extend(scope_actions);
        }
        for have in &remote.scopes {
            let name = have.full_name();
            let ours = Owner::from_description(&have.description)
                .is_some_and(|owner| owners.contains(&owner));
            if have.active && ours && !desired.scopes.iter().any(|d| d.name() == name) {
                let mut orphan = step(ActionKind::Orphan, &name);
                orphan.changes = BTreeMap::from([active_change(true, false)]);
                orphan.held = (!options.prune).then_some(Held::Prune);
                actions.push(orphan);
            }
        }
        Plan {
            actions,
            remote,
            options,
        }
    }

    /// Whether apply would change anything (steps held back by a missing flag do not count).
    pub fn has_changes(&self) -> bool {
        self.actions.iter().any(Action::is_performed)
    }

    /// How many steps of each kind apply performs, and how many are held.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for a in &self.actions {
            let key = if a.is_performed() {
                a.action.as_str()
            } else {
                "held"
            };
            *counts.entry(key).or_insert(0) += 1;
        }
        counts
    }

    /// The plan as one JSON object:
    /// `{"actions": [{"action", "scope", "orgno"?, "changes", "held"?, "owner"?}], "changes": bool, "counts": {...}}`.
    pub fn to_json(&self) -> Value {
        json!({
            "actions": self.actions,
            "changes": self.has_changes(),
            "counts": self.counts(),
        })
    }

    /// The plan for people, grouped per scope like a Terraform plan.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.actions.is_empty() {
            out.push_str("No changes: Digdir matches the manifest.\n");
            return out;
        }
        let mut current: Option<&str> = None;
        for a in &self.actions {
            if current != Some(a.scope.as_str()) {
                if current.is_some() {
                    out.push('\n');
                }
                let _ = writeln!(out, "scope {}", a.scope);
                current = Some(&a.scope);
            }
            let mut line = format!("  {} {}", a.action.sign(), a.action);
            if let Some(orgno) = &a.orgno {
                let _ = write!(line, " {orgno}");
            }
            if let Some(held) = &a.held {
                let _ = write!(line, "  (not performed without {})", held.flag());
            }
            let _ = writeln!(out, "{line}");
            if let (Some(Held::Adopt), Some(owner)) = (&a.held, &a.owner) {
                let _ = writeln!(out, "      owner: {}", show_owner(owner));
            }
            let width = a.changes.keys().map(String::len).max().unwrap_or(0);
            for (field, change) in &a.changes {
                let value = match (a.action, &change.old) {
                    (ActionKind::Create, _) => show(&change.new),
                    (ActionKind::Grant, Value::Null) | (ActionKind::Revoke, _) => continue,
                    _ => format!("{} -> {}", show(&change.old), show(&change.new)),
                };
                let _ = writeln!(out, "      {field:width$}  {value}");
            }
        }
        out.push('\n');
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    /// `Plan: 1 create, 2 grant; 1 held (needs --prune).`
    pub fn summary(&self) -> String {
        let performed: Vec<String> = self
            .counts()
            .into_iter()
            .filter(|(k, _)| *k != "held")
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        let held: BTreeSet<&'static str> = self
            .actions
            .iter()
            .filter_map(|a| a.held.as_ref().map(Held::flag))
            .collect();
        let held_count = self.actions.iter().filter(|a| !a.is_performed()).count();
        let mut text = if performed.is_empty() {
            "Plan: nothing to do".to_owned()
        } else {
            format!("Plan: {}", performed.join(", "))
        };
        if held_count > 0 {
            let flags: Vec<&str> = held.into_iter().collect();
            let _ = write!(
                text,
                "; {held_count} shown but held back (needs {})",
                flags.join(" or ")
            );
        }
        text.push('.');
        text
    }
}

fn grant(scope: &str, orgno: &str, state: Option<&AccessState>) -> Action {
    let mut a = step(ActionKind::Grant, scope);
    a.orgno = Some(orgno.to_owned());
    a.changes = BTreeMap::from([(
        "state".to_owned(),
        Change {
            old: state.map_or(Value::Null, |s| json!(s.as_str())),
            new: json!(AccessState::Approved.as_str()),
        },
    )]);
    a
}

fn show_owner(description: &str) -> String {
    match Owner::from_description(description) {
        Some(owner) => format!("{description:?} (application {owner})"),
        None => format!("{description:?} (not a NAIS description: made by hand?)"),
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::Null => "(none)".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
