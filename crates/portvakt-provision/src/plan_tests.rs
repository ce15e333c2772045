use serde_json::json;

use super::*;
use crate::desired::{Naming, desired};
use crate::error::ProvisionError;
use crate::types::AccessEntry;
use portvakt_manifest::Manifest;

const MANIFEST: &str = r#"
apiVersion: nais.io/v1alpha1
kind: Application
metadata: {name: arbeid-api, namespace: arbeid}
spec:
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - name: some.scope.read
          enabled: true
          product: arbeid
          consumers:
            - orgno: "889640782"
            - orgno: "974760673"
        - name: some.scope.write
          enabled: false
          product: arbeid
        - name: reports.read
          enabled: true
          product: arbeid
          separator: "/"
          atMaxAge: 120
          visibility: private
"#;

const READ: &str = "nav:arbeid:some.scope.read";
const WRITE: &str = "nav:arbeid:some.scope.write";
const REPORTS: &str = "nav:arbeid/reports.read";

fn wanted() -> Desired {
    let manifest = Manifest::parse(MANIFEST, "nais.yaml");
    assert!(!manifest.has_errors(), "{:?}", manifest.diagnostics());
    let naming = Naming {
        prefix: "nav".into(),
        cluster: "dev-gcp".into(),
    };
    desired(&manifest, &naming).unwrap()
}

/// The remote state after a complete apply of `wanted()`.
fn provisioned() -> RemoteState {
    let d = wanted();
    let mut remote = RemoteState::default();
    for s in &d.scopes {
        if s.registration.active {
            let mut r = s.registration.clone();
            r.name = Some(s.name());
            r.owner_orgno = Some("889640782".into());
            r.other.insert("protected".into(), json!(false));
            remote.scopes.push(r);
            remote.access.insert(
                s.name(),
                s.consumers.iter().map(|c| approved(&s.name(), c)).collect(),
            );
        }
    }
    remote
}

fn approved(scope: &str, orgno: &str) -> AccessEntry {
    AccessEntry {
        consumer_orgno: orgno.into(),
        owner_orgno: Some("889640782".into()),
        scope: scope.into(),
        state: AccessState::Approved,
        created: None,
        last_updated: None,
        other: Default::default(),
    }
}

fn kinds(plan: &Plan) -> Vec<(ActionKind, &str, Option<&str>, bool)> {
    plan.actions
        .iter()
        .map(|a| {
            (
                a.action,
                a.scope.as_str(),
                a.orgno.as_deref(),
                a.is_performed(),
            )
        })
        .collect()
}

fn remote_mut<'a>(remote: &'a mut RemoteState, name: &str) -> &'a mut ScopeRegistration {
    remote
        .scopes
        .iter_mut()
        .find(|s| s.full_name() == name)
        .unwrap()
}

#[test]
fn maps_the_manifest_like_digdirator() {
    let d = wanted();
    let read = &d.scopes[0].registration;
    assert_eq!(
        (read.prefix.as_str(), read.subscope.as_str()),
        ("nav", "arbeid:some.scope.read")
    );
    assert_eq!(read.description, "arbeid - dev-gcp:arbeid:arbeid-api");
    assert_eq!(read.allowed_integration_types, ["maskinporten"]);
    assert_eq!(read.at_max_age, Some(30));
    assert_eq!(read.token_type.as_deref(), Some("SELF_CONTAINED"));
    assert_eq!(read.visibility.as_deref(), Some("PUBLIC"));
    assert!(read.active && !read.accessible_for_all);
    assert!(!d.scopes[1].registration.active);
    let reports = &d.scopes[2].registration;
    assert_eq!(reports.subscope, "arbeid/reports.read");
    assert_eq!(
        (reports.at_max_age, reports.visibility.as_deref()),
        (Some(120), Some("PRIVATE"))
    );
    assert_eq!(d.scopes[0].consumers, ["889640782", "974760673"]);
}

#[test]
fn an_empty_digdir_gets_creates_then_grants_and_no_disabled_scope() {
    let plan = Plan::new(&wanted(), RemoteState::default(), PlanOptions::default());
    assert_eq!(
        kinds(&plan),
        [
            (ActionKind::Create, READ, None, true),
            (ActionKind::Grant, READ, Some("889640782"), true),
            (ActionKind::Grant, READ, Some("974760673"), true),
            (ActionKind::Create, REPORTS, None, true),
        ]
    );
    assert!(plan.has_changes());
    let create = &plan.actions[0];
    assert_eq!(
        create.body.as_ref().unwrap().subscope,
        "arbeid:some.scope.read"
    );
    assert_eq!(
        create.changes["at_max_age"],
        Change {
            old: json!(null),
            new: json!(30)
        }
    );
}

#[test]
fn a_provisioned_digdir_plans_nothing_and_unknown_fields_are_ignored() {
    let plan = Plan::new(&wanted(), provisioned(), PlanOptions::default());
    assert_eq!(plan.actions, []);
    assert!(!plan.has_changes());
    assert_eq!(plan.render(), "No changes: Digdir matches the manifest.\n");
    assert_eq!(plan.to_json()["actions"], json!([]));
}

#[test]
fn drift_is_an_update_field_by_field() {
    let mut remote = provisioned();
    let r = remote_mut(&mut remote, READ);
    r.at_max_age = Some(300);
    r.allowed_integration_types = vec!["idporten".into(), "maskinporten".into()];
    r.long_description = Some("kept".into());
    let plan = Plan::new(&wanted(), remote, PlanOptions::default());
    assert_eq!(kinds(&plan), [(ActionKind::Update, READ, None, true)]);
    let update = &plan.actions[0];
    assert_eq!(update.changes.len(), 2);
    assert_eq!(
        update.changes["at_max_age"],
        Change {
            old: json!(300),
            new: json!(30)
        }
    );
    let body = update.body.as_ref().unwrap();
    assert_eq!(
        body.long_description.as_deref(),
        Some("kept"),
        "fields NAIS does not set stay"
    );
    assert_eq!(
        (body.at_max_age, body.name.as_ref()),
        (Some(30), None),
        "read-only fields are not sent"
    );
    assert!(body.other.is_empty());
    // Order of integration types does not matter.
    let mut remote = provisioned();
    remote_mut(&mut remote, READ).allowed_integration_types =
        vec!["maskinporten".into(), "maskinporten".into()];
    assert!(
        Plan::new(&wanted(), remote, PlanOptions::default())
            .actions
            .is_empty()
    );
}

#[test]
fn disabled_is_deactivated_inactive_is_reactivated() {
    let mut remote = provisioned();
    let mut write = wanted().scopes[1].registration.clone();
    write.active = true;
    remote.scopes.push(write);
    remote_mut(&mut remote, REPORTS).active = false;
    let plan = Plan::new(&wanted(), remote, PlanOptions::default());
    assert_eq!(
        kinds(&plan),
        [
            (ActionKind::Deactivate, WRITE, None, true),
            (ActionKind::Reactivate, REPORTS, None, true),
        ]
    );
    assert_eq!(
        plan.actions[1].changes["active"],
        Change {
            old: json!(false),
            new: json!(true)
        }
    );
    assert!(plan.actions[1].body.as_ref().unwrap().active);
}

#[test]
fn grants_and_revocations_with_prune_only() {
    let mut remote = provisioned();
    let access = remote.access.get_mut(READ).unwrap();
    access[1].state = AccessState::Denied;
    access.push(approved(READ, "123456785"));
    let mut requested = approved(READ, "910825526");
    requested.state = AccessState::Requested;
    access.push(requested);
    let plan = Plan::new(&wanted(), remote.clone(), PlanOptions::default());
    assert_eq!(
        kinds(&plan),
        [
            (ActionKind::Grant, READ, Some("974760673"), true),
            (ActionKind::Revoke, READ, Some("123456785"), false),
        ],
        "a denied listed consumer is granted again; a requested unlisted one is left alone"
    );
    assert_eq!(plan.actions[0].changes["state"].old, json!("DENIED"));
    assert_eq!(plan.actions[1].held, Some(Held::Prune));
    let pruned = Plan::new(
        &wanted(),
        remote,
        PlanOptions {
            prune: true,
            adopt: false,
        },
    );
    assert!(pruned.actions.iter().all(Action::is_performed));
}

#[test]
fn orphans_and_scopes_of_others() {
    let mut remote = provisioned();
    let mut gone = wanted().scopes[0].registration.clone();
    gone.subscope = "arbeid:old.scope".into();
    remote.scopes.push(gone);
    let mut foreign = wanted().scopes[0].registration.clone();
    foreign.subscope = "arbeid:not.ours".into();
    foreign.description = "arbeid - dev-gcp:other:other-api".into();
    remote.scopes.push(foreign);
    let r = remote_mut(&mut remote, REPORTS);
    r.description = "made by hand".into();
    r.at_max_age = Some(60);
    let plan = Plan::new(&wanted(), remote.clone(), PlanOptions::default());
    assert_eq!(
        kinds(&plan),
        [
            (ActionKind::Update, REPORTS, None, false),
            (ActionKind::Orphan, "nav:arbeid:old.scope", None, false),
        ],
        "another app's scope is neither an orphan nor touched"
    );
    assert_eq!(plan.actions[0].held, Some(Held::Adopt));
    assert!(!plan.has_changes(), "held steps are no changes");
    let text = plan.render();
    assert!(
        text.contains("owner: \"made by hand\" (not a NAIS description"),
        "{text}"
    );
    let adopted = Plan::new(
        &wanted(),
        remote,
        PlanOptions {
            prune: true,
            adopt: true,
        },
    );
    assert!(adopted.actions.iter().all(Action::is_performed));
    assert_eq!(
        adopted.actions[0].changes["description"].new,
        json!("arbeid - dev-gcp:arbeid:arbeid-api")
    );
}

#[test]
fn renders_grouped_per_scope_and_json_with_the_issue_shape() {
    let mut remote = provisioned();
    remote_mut(&mut remote, READ).at_max_age = Some(60);
    remote.access.get_mut(READ).unwrap().remove(1);
    remote
        .access
        .get_mut(READ)
        .unwrap()
        .push(approved(READ, "123456785"));
    let plan = Plan::new(&wanted(), remote, PlanOptions::default());
    assert_eq!(
        plan.render(),
        "scope nav:arbeid:some.scope.read
  ~ update
      at_max_age  60 -> 30
  + grant 974760673
  - revoke 123456785  (not performed without --prune)

Plan: 1 grant, 1 update; 1 shown but held back (needs --prune).
"
    );
    assert_eq!(
        plan.to_json(),
        json!({
            "actions": [
                {"action": "update", "scope": READ, "changes": {"at_max_age": {"old": 60, "new": 30}}},
                {"action": "grant", "scope": READ, "orgno": "974760673", "changes": {"state": {"old": null, "new": "APPROVED"}}},
                {"action": "revoke", "scope": READ, "orgno": "123456785", "changes": {"state": {"old": "APPROVED", "new": null}}, "held": "prune"},
            ],
            "changes": true,
            "counts": {"grant": 1, "update": 1, "held": 1},
        })
    );
}

#[test]
fn owner_descriptions_round_trip() {
    let owner = Owner {
        cluster: "prod-gcp".into(),
        namespace: "team".into(),
        app: "api".into(),
    };
    assert_eq!(
        Owner::from_description(&owner.description("arbeid")),
        Some(owner)
    );
    for bad in [
        "",
        "arbeid",
        "arbeid - a:b",
        "arbeid - a:b:c:d",
        "x - a b:c:d",
        "made by hand",
    ] {
        assert_eq!(Owner::from_description(bad), None, "{bad:?}");
    }
}

#[test]
fn an_owner_that_cannot_be_read_back_is_refused_before_any_plan() {
    let manifest = Manifest::parse(MANIFEST, "nais.yaml");
    for cluster in ["", "dev gcp", "dev:gcp"] {
        let naming = Naming {
            prefix: "nav".into(),
            cluster: cluster.into(),
        };
        let Err(ProvisionError::Config(why)) = desired(&manifest, &naming) else {
            panic!("cluster {cluster:?} was accepted");
        };
        assert!(why.contains(&format!("cluster {cluster:?}")), "{why}");
        assert!(why.contains("NAIS_CLUSTER_NAME"), "{why}");
    }
    for prefix in ["", "NAV", "nav x", "nav:x"] {
        let naming = Naming {
            prefix: prefix.into(),
            cluster: "dev-gcp".into(),
        };
        let Err(ProvisionError::Config(why)) = desired(&manifest, &naming) else {
            panic!("prefix {prefix:?} was accepted");
        };
        assert!(
            why.starts_with(&format!("scope prefix {prefix:?}")),
            "{why}"
        );
    }
    let naming = Naming {
        prefix: "nav".into(),
        cluster: "dev-gcp".into(),
    };
    for (from, to, field) in [
        ("name: arbeid-api", "name: \"arbeid api\"", "metadata.name"),
        ("name: arbeid-api", "name: \"arbeid:api\"", "metadata.name"),
        ("namespace: arbeid", "namespace: \"\"", "metadata.namespace"),
    ] {
        let text = MANIFEST.replace(from, to);
        let manifest = Manifest::parse(&text, "nais.yaml");
        match desired(&manifest, &naming) {
            Err(ProvisionError::Manifest(why)) => {
                assert!(why.contains(field), "{why}");
                assert!(
                    why.starts_with("nais.yaml: the application at line"),
                    "{why}"
                );
            }
            // The manifest's own rules may refuse it first; either way nothing is provisioned.
            Err(e) => panic!("{to}: {e}"),
            Ok(_) if manifest.has_errors() => unreachable!("desired refuses a broken manifest"),
            Ok(_) => panic!("{to} was accepted"),
        }
    }
}

#[test]
fn the_report_names_the_flag_that_held_each_step() {
    let held = |action, held| Action {
        action,
        scope: READ.into(),
        orgno: Some("974760673".into()),
        changes: Default::default(),
        held: Some(held),
        owner: None,
        body: None,
    };
    let report = crate::apply::ApplyReport {
        done: vec![],
        failed: vec![],
        not_done: vec![],
        // A revocation on another application's scope is held for --adopt, --prune or not.
        held: vec![
            held(ActionKind::Revoke, Held::Adopt),
            held(ActionKind::Revoke, Held::Prune),
            held(ActionKind::Grant, Held::Adopt),
        ],
        stopped: None,
    };
    let text = report.to_string();
    assert_eq!(
        text.lines().take(3).collect::<Vec<_>>(),
        [
            format!("held      - revoke {READ} from 974760673 (needs --adopt)"),
            format!("held      - revoke {READ} from 974760673 (needs --prune)"),
            format!("held      + grant {READ} to 974760673 (needs --adopt)"),
        ],
        "{text}"
    );
}
