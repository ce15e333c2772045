use std::time::{Duration, UNIX_EPOCH};

use portvakt_manifest::{GrantError, Manifest};
use portvakt_provision::{Naming, desired};

use super::*;

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
          atMaxAge: 60
          consumers:
            - orgno: "889640782"
        - name: old.read
          enabled: false
          product: arbeid
          consumers:
            - orgno: "889640782"
        - name: reports.read
          enabled: true
          product: arbeid
          separator: "/"
          delegationSource: altinn
          accessibleForAll: true
"#;

fn state() -> DigdirState {
    let manifest = Manifest::parse(MANIFEST, "nais.yaml");
    let naming = Naming {
        prefix: "nav".into(),
        cluster: "local".into(),
    };
    DigdirState::provisioned(
        &desired(&manifest, &naming).unwrap(),
        "889640782",
        "https://www.altinn.no/",
    )
    .unwrap()
}

#[test]
fn issues_from_the_provisioned_state() {
    let s = state();
    let granted = s.check("889640782", "nav:arbeid:some.scope.read").unwrap();
    assert_eq!(granted.at_max_age, Duration::from_secs(60));
    assert!(matches!(
        s.check("974760673", "nav:arbeid:some.scope.read"),
        Err(GrantError::NotAConsumer { .. })
    ));
    assert!(matches!(
        s.check("889640782", "nav:arbeid:old.read"),
        Err(GrantError::ScopeDisabled { .. })
    ));
    assert!(matches!(
        s.check("889640782", "nav:arbeid:nope"),
        Err(GrantError::UnknownScope { .. })
    ));
    let reports = s.check("974760673", "nav:arbeid/reports.read").unwrap();
    assert_eq!(
        reports.delegation_source.as_deref(),
        Some("https://www.altinn.no/")
    );
    let mut denied = s.clone();
    denied
        .access
        .get_mut("nav:arbeid:some.scope.read")
        .unwrap()
        .get_mut("889640782")
        .unwrap()
        .state = AccessState::Denied;
    assert!(
        denied
            .check("889640782", "nav:arbeid:some.scope.read")
            .is_err()
    );
}

#[test]
fn saves_atomically_and_loads_back() {
    let dir = std::env::temp_dir().join(format!("portvakt-digdir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.json");
    let s = state();
    s.save(&path).unwrap();
    assert_eq!(DigdirState::load(&path).unwrap(), s);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no temporary file left"
    );
    std::fs::write(&path, "[]").unwrap();
    let err = DigdirState::load(&path).unwrap_err().to_string();
    assert!(err.contains("expected {\"scopes\""), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn timestamps_are_rfc3339_utc() {
    assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    assert_eq!(
        timestamp(UNIX_EPOCH + Duration::from_secs(1_770_113_767)),
        "2026-02-03T10:16:07Z"
    );
    assert_eq!(
        timestamp(UNIX_EPOCH + Duration::from_secs(951_782_400)),
        "2000-02-29T00:00:00Z"
    );
}
