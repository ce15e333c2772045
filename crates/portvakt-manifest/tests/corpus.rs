//! Real-world-shaped manifests read without false diagnostics, and the grants they produce.

use std::path::{Path, PathBuf};

use portvakt_manifest::{
    Consumer, DelegationSource, GrantError, Integration, Manifest, Visibility, render,
};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name)
}

fn load(name: &str) -> Manifest {
    match Manifest::from_path(corpus(name)) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    }
}

fn rendered(m: &Manifest) -> Vec<String> {
    m.diagnostics().iter().map(render::diagnostic).collect()
}

#[test]
fn every_corpus_file_reads_without_diagnostics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "consumes-only.yaml",
            "delegation.yaml",
            "guide-fragment.yaml",
            "multi-app.yaml",
            "no-maskinporten.yaml",
        ]
    );
    for name in names {
        let m = load(&name);
        assert_eq!(rendered(&m), Vec::<String>::new(), "{name}");
        assert!(!m.has_errors(), "{name}");
        assert!(!m.applications().is_empty(), "{name}");
    }
}

#[test]
fn multi_app_picks_the_nais_applications_only() {
    let m = load("multi-app.yaml");
    let apps: Vec<(Option<&str>, Option<&str>, usize)> = m
        .applications()
        .iter()
        .map(|a| (a.name.as_deref(), a.namespace.as_deref(), a.line))
        .collect();
    assert_eq!(
        apps,
        [
            (Some("arbeidsgiver-api"), Some("arbeidsgiver"), 13),
            (Some("arbeidsgiver-sync"), Some("arbeidsgiver"), 99),
        ]
    );
    assert_eq!(
        m.applications()[0].display_name(),
        "arbeidsgiver/arbeidsgiver-api"
    );
    assert_eq!(
        m.consumes(),
        ["skatteetaten:inntekt", "nav:arbeid:arbeidsforhold.read"]
    );
}

#[test]
fn multi_app_grants() {
    let m = load("multi-app.yaml");
    let grants = m.grants();
    let scopes: Vec<(&str, bool, Option<&str>)> = grants
        .scopes()
        .iter()
        .map(|g| (g.scope.as_str(), g.enabled, g.application.as_deref()))
        .collect();
    assert_eq!(
        scopes,
        [
            (
                "nav:arbeid:arbeidsforhold.read",
                true,
                Some("arbeidsgiver-api")
            ),
            (
                "nav:arbeid:arbeidsforhold.write",
                true,
                Some("arbeidsgiver-api")
            ),
            (
                "nav:arbeid:arbeidsforhold.legacy",
                false,
                Some("arbeidsgiver-api")
            ),
            (
                "nav:arbeid/sync/status.read",
                true,
                Some("arbeidsgiver-sync")
            ),
        ]
    );

    let read = grants.get("nav:arbeid:arbeidsforhold.read").expect("read");
    assert_eq!(
        read.consumers,
        [
            Consumer::new("974761076", Some("Skatteetaten".to_owned())),
            Consumer::new("889640782", Some("NAV".to_owned())),
        ]
    );
    assert_eq!(read.at_max_age_seconds, 120);
    assert_eq!(read.at_max_age(), std::time::Duration::from_secs(120));
    assert_eq!(read.allowed_integrations, [Integration::Maskinporten]);
    assert_eq!(read.visibility, Visibility::Public);
    assert!(!read.accessible_for_all);

    let write = grants
        .get("nav:arbeid:arbeidsforhold.write")
        .expect("write");
    assert_eq!(write.visibility, Visibility::Private);
    assert_eq!(write.at_max_age_seconds, 30);

    let sync = grants.get("nav:arbeid/sync/status.read").expect("sync");
    assert!(sync.accessible_for_all);
    assert_eq!(
        sync.allowed_integrations,
        [Integration::Maskinporten, Integration::ApiKlient]
    );

    // The decisions the issuer will make.
    assert!(
        grants
            .check("974761076", "nav:arbeid:arbeidsforhold.read")
            .is_ok()
    );
    assert!(
        grants
            .check("889640782", "nav:arbeid:arbeidsforhold.write")
            .is_ok()
    );
    assert_eq!(
        grants.check("974761076", "nav:arbeid:arbeidsforhold.write"),
        Err(GrantError::NotAConsumer {
            orgno: "974761076".to_owned(),
            scope: "nav:arbeid:arbeidsforhold.write".to_owned()
        })
    );
    assert_eq!(
        grants.check("889640782", "nav:arbeid:arbeidsforhold.legacy"),
        Err(GrantError::ScopeDisabled {
            scope: "nav:arbeid:arbeidsforhold.legacy".to_owned()
        })
    );
    assert!(
        grants
            .check("991825827", "nav:arbeid/sync/status.read")
            .is_ok()
    );
}

#[test]
fn delegation_grants() {
    let m = load("delegation.yaml");
    let grants = m.grants();
    let names: Vec<&str> = grants.scopes().iter().map(|g| g.scope.as_str()).collect();
    assert_eq!(
        names,
        [
            "nav:helse/sykepenger/afp.read",
            "nav:helse/sykepenger.delegert",
            "nav:helse.statistikk.read",
        ]
    );
    let afp = &grants.scopes()[0];
    assert_eq!(afp.at_max_age_seconds, 680);
    assert_eq!(afp.delegation_source, None);
    let delegated = &grants.scopes()[1];
    assert_eq!(delegated.delegation_source, Some(DelegationSource::Altinn));
    assert_eq!(
        delegated.allowed_integrations,
        [Integration::Maskinporten, Integration::Idporten]
    );
    assert_eq!(delegated.consumers, [Consumer::new("974760673", None)]);
    assert!(grants.scopes()[2].accessible_for_all);
}

#[test]
fn consumes_only_has_no_grants() {
    let m = load("consumes-only.yaml");
    assert!(m.grants().is_empty());
    assert_eq!(
        m.consumes(),
        [
            "skatteetaten:mvameldingvalidering",
            "skatteetaten:mvameldinginnsending"
        ]
    );
}

#[test]
fn no_maskinporten_has_no_grants_and_no_consumes() {
    let m = load("no-maskinporten.yaml");
    assert_eq!(m.applications().len(), 1);
    assert_eq!(m.applications()[0].maskinporten, None);
    assert!(m.grants().is_empty());
    assert!(m.consumes().is_empty());
}

#[test]
fn the_guide_fragment() {
    let m = load("guide-fragment.yaml");
    assert_eq!(m.applications()[0].name, None);
    assert_eq!(m.applications()[0].display_name(), "(unnamed application)");
    let grants = m.grants();
    let names: Vec<&str> = grants.scopes().iter().map(|g| g.scope.as_str()).collect();
    assert_eq!(
        names,
        ["nav:arbeid:some.scope.read", "nav:arbeid:some.scope.write"]
    );
    // Nobody is granted yet: the guide's second step adds consumers.
    assert!(grants.scopes().iter().all(|g| g.consumers.is_empty()));
}

#[test]
fn the_same_scope_in_two_applications_is_an_error_and_the_first_wins() {
    let src = "apiVersion: nais.io/v1alpha1
kind: Application
metadata:
  name: one
spec:
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - name: ab.read
          enabled: true
          product: arbeid
          consumers:
            - orgno: \"889640782\"
---
apiVersion: nais.io/v1alpha1
kind: Application
metadata:
  name: two
spec:
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - name: ab.read
          enabled: true
          product: arbeid
";
    let m = Manifest::parse(src, "apps.yaml");
    assert_eq!(
        rendered(&m),
        [
            "apps.yaml:25:17: error: scope \"ab.read\" is exposed more than once (first at line 10, application one) [duplicate-scope]\n  = help: expose each scope once, with all its consumers"
        ]
    );
    let grants = m.grants();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants.scopes()[0].application.as_deref(), Some("one"));
    assert!(grants.check("889640782", "nav:arbeid:ab.read").is_ok());
}
