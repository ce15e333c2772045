//! The grant decisions the issuer relies on, and their OAuth-ready messages.

use portvakt_manifest::{GrantError, GrantsTable, Manifest, render};

const SRC: &str = "apiVersion: nais.io/v1alpha1
kind: Application
metadata:
  name: api
  namespace: team
spec:
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - name: listed.read
          enabled: true
          product: arbeid
          atMaxAge: 120
          consumers:
            - orgno: \"889640782\"
              name: NAV
            - orgno: \"974761076\"
        - name: open.read
          enabled: true
          product: arbeid
          accessibleForAll: true
        - name: off.read
          enabled: false
          product: arbeid
        - name: portal.read
          enabled: true
          product: arbeid
          allowedIntegrations: [idporten]
          consumers:
            - orgno: \"889640782\"
        - name: nobody.read
          enabled: true
          product: arbeid
";

fn table() -> GrantsTable {
    let m = Manifest::parse(SRC, "nais.yaml");
    assert_eq!(m.diagnostics(), &[]);
    m.grants()
}

#[test]
fn listed_consumers_are_granted() {
    let t = table();
    let g = t
        .check("889640782", "nav:arbeid:listed.read")
        .expect("granted");
    assert_eq!(g.scope, "nav:arbeid:listed.read");
    assert_eq!(g.at_max_age_seconds, 120);
    assert!(t.check("974761076", "nav:arbeid:listed.read").is_ok());
}

#[test]
fn other_organizations_are_not() {
    let err = table()
        .check("991825827", "nav:arbeid:listed.read")
        .expect_err("not a consumer");
    assert_eq!(
        err,
        GrantError::NotAConsumer {
            orgno: "991825827".to_owned(),
            scope: "nav:arbeid:listed.read".to_owned()
        }
    );
    assert_eq!(
        err.to_string(),
        "organization 991825827 is not a consumer of scope \"nav:arbeid:listed.read\""
    );
}

#[test]
fn accessible_for_all_grants_everyone() {
    assert!(table().check("991825827", "nav:arbeid:open.read").is_ok());
}

#[test]
fn disabled_scopes_are_known_but_never_granted() {
    let t = table();
    let g = t.get("nav:arbeid:off.read").expect("listed");
    assert!(!g.enabled);
    let err = t
        .check("889640782", "nav:arbeid:off.read")
        .expect_err("disabled");
    assert_eq!(err.to_string(), "scope \"nav:arbeid:off.read\" is disabled");
}

#[test]
fn unknown_scopes() {
    let t = table();
    assert!(t.get("nav:arbeid:nope").is_none());
    // A scope is matched by its fully qualified name only.
    assert!(t.get("listed.read").is_none());
    let err = t
        .check("889640782", "nav:arbeid:nope")
        .expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "scope \"nav:arbeid:nope\" is not exposed by this API"
    );
}

#[test]
fn scopes_closed_to_maskinporten_clients() {
    let err = table()
        .check("889640782", "nav:arbeid:portal.read")
        .expect_err("idporten only");
    assert_eq!(
        err.to_string(),
        "scope \"nav:arbeid:portal.read\" is not available to Maskinporten clients"
    );
}

#[test]
fn a_scope_without_consumers_grants_nobody() {
    assert!(matches!(
        table().check("889640782", "nav:arbeid:nobody.read"),
        Err(GrantError::NotAConsumer { .. })
    ));
}

#[test]
fn the_table_renders() {
    assert_eq!(
        render::scopes_table(&table()),
        "\
SCOPE                   ENABLED  CONSUMERS                   AT MAX AGE  INTEGRATIONS
nav:arbeid:listed.read  yes      889640782 (NAV), 974761076  120s        maskinporten
nav:arbeid:open.read    yes      everyone                    30s         maskinporten
nav:arbeid:off.read     no       nobody                      30s         maskinporten
nav:arbeid:portal.read  yes      889640782                   30s         idporten
nav:arbeid:nobody.read  yes      nobody                      30s         maskinporten
"
    );
    assert_eq!(
        render::scopes_table(&GrantsTable::default()),
        "no exposed scopes\n"
    );
}

#[test]
fn the_json_is_an_array_with_manifest_field_names() {
    let json = render::scopes_json(&table()).expect("serializes");
    let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let first = &value[0];
    assert_eq!(
        *first,
        serde_json::json!({
            "scope": "nav:arbeid:listed.read",
            "enabled": true,
            "accessibleForAll": false,
            "consumers": [
                {"orgno": "889640782", "name": "NAV"},
                {"orgno": "974761076"}
            ],
            "atMaxAge": 120,
            "allowedIntegrations": ["maskinporten"],
            "visibility": "public",
            "delegationSource": null,
            "application": "api"
        })
    );
    assert_eq!(value.as_array().map(Vec::len), Some(5));
    assert_eq!(
        value[3]["allowedIntegrations"],
        serde_json::json!(["idporten"])
    );
}
