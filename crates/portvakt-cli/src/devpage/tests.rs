use super::*;

#[test]
fn only_loopback_hosts_reach_the_page() {
    for host in [
        "127.0.0.1:7164",
        "127.0.0.1",
        "localhost:7164",
        "LOCALHOST",
        "[::1]:7164",
        "127.1.2.3:80",
    ] {
        assert!(is_loopback_host(host), "{host}");
    }
    for host in [
        "",
        "attacker.example:7164",
        "192.168.1.10:7164",
        "localhost.attacker.example",
        "[::2]:7164",
        "0.0.0.0:7164",
    ] {
        assert!(!is_loopback_host(host), "{host}");
    }
}

#[test]
fn example_paths_match_their_patterns() {
    assert_eq!(mint::example_path("/api/v1/**"), "/api/v1/example");
    assert_eq!(mint::example_path("/api/*/orders"), "/api/1/orders");
    assert_eq!(mint::example_path("/internal/health"), "/internal/health");
}

#[test]
fn cells_are_the_issuers_decisions() {
    let manifest = portvakt_manifest::Manifest::parse(
        r#"
spec:
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - name: "some.scope.read"
          enabled: true
          product: "arbeid"
          consumers:
            - orgno: "889640782"
        - name: "some.scope.open"
          enabled: true
          product: "arbeid"
          accessibleForAll: true
        - name: "some.scope.off"
          enabled: false
          product: "arbeid"
"#,
        "nais.yaml",
    );
    assert!(!manifest.has_errors(), "{:?}", manifest.diagnostics());
    let table = manifest.grants();
    let state = |orgno, scope| grants::cell(&table, orgno, scope).0;
    assert_eq!(
        state("889640782", "nav:arbeid:some.scope.read"),
        grants::Cell::Granted
    );
    assert_eq!(
        state("974761076", "nav:arbeid:some.scope.read"),
        grants::Cell::NotGranted
    );
    assert_eq!(
        state("974761076", "nav:arbeid:some.scope.open"),
        grants::Cell::AccessibleForAll
    );
    assert_eq!(
        state("889640782", "nav:arbeid:some.scope.off"),
        grants::Cell::Disabled
    );
    assert_eq!(
        grants::cell(&table, "974761076", "nav:arbeid:some.scope.read").1,
        "organization 974761076 is not a consumer of scope \"nav:arbeid:some.scope.read\""
    );
}

#[test]
fn any_other_organization_is_decided_by_the_issuers_rules_too() {
    // Accessible for all, but not to Maskinporten clients: nobody gets it, and the column for
    // organizations the manifest does not name says so (it read "all" when the page worked it
    // out from `accessibleForAll` alone).
    let manifest = portvakt_manifest::Manifest::parse(
        r#"
spec:
  maskinporten:
    enabled: true
    scopes:
      exposes:
        - name: "open.read"
          enabled: true
          product: "arbeid"
          accessibleForAll: true
          allowedIntegrations: [krr]
          consumers:
            - orgno: "999999999"
"#,
        "nais.yaml",
    );
    let table = manifest.grants();
    let consumers: Vec<&portvakt_manifest::Consumer> =
        table.scopes().iter().flat_map(|g| &g.consumers).collect();
    let outsider = grants::outsider(&consumers);
    assert_eq!(outsider, "999999998", "not a consumer");
    let (state, why) = grants::cell(&table, &outsider, "nav:arbeid:open.read");
    assert_eq!(state, grants::Cell::NotGranted);
    assert!(
        why.contains("not available to Maskinporten clients"),
        "{why}"
    );
}
