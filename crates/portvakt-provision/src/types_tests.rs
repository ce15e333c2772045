use serde_json::json;

use super::*;

#[test]
fn answers_with_unknown_fields_and_missing_ones_are_read() {
    let r: ScopeRegistration = serde_json::from_value(json!({
        "prefix": "nav", "subscope": "arbeid:x.read", "name": "nav:arbeid:x.read",
        "owner_orgno": "889640782", "protected": false, "supports_european_businesses": true,
        "nb_description": "hei", "created": "2024-01-01T00:00:00Z"
    }))
    .unwrap();
    assert!(r.active, "active when not said otherwise");
    assert_eq!(r.other.len(), 3);
    let body = serde_json::to_value(r.write_body()).unwrap();
    assert_eq!(
        body,
        json!({"prefix": "nav", "subscope": "arbeid:x.read", "description": "", "active": true,
               "allowed_integration_types": [], "accessible_for_all": false}),
        "read-only and unknown fields are not written"
    );
    let entry: AccessEntry = serde_json::from_value(json!({
        "consumer_orgno": "974760673", "scope": "nav:arbeid:x.read", "state": "WITHDRAWN", "extra": 1
    }))
    .unwrap();
    assert_eq!(entry.state, AccessState::Other("WITHDRAWN".into()));
    assert_eq!(
        serde_json::to_value(AccessState::Approved).unwrap(),
        json!("APPROVED")
    );
}
