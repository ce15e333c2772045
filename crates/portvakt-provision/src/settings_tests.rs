use super::*;

const SECRET: &str = "MIIEvSECRETSECRETSECRET";

#[test]
fn a_value_that_is_neither_key_nor_file_is_never_echoed() {
    for value in [
        // `openssl pkcs12` output whose PEM is found further in is the value itself (below);
        // these are secrets mangled so that they are neither JSON nor PEM.
        format!("'{{\"kty\":\"RSA\",\"d\":\"{SECRET}\"}}'"),
        format!("\"{{\"kty\":\"RSA\",\"d\":\"{SECRET}\"}}\""),
        format!("{SECRET}\nmore{SECRET}"),
        format!("{SECRET}{}", "A".repeat(300)),
    ] {
        let Err(ProvisionError::Config(why)) = value_or_file(ENV_ADMIN_PRIVATE_KEY, &value) else {
            panic!("{value:?} was read");
        };
        assert!(!why.contains(SECRET), "{why}");
        assert!(
            why.starts_with("PORTVAKT_ADMIN_PRIVATE_KEY is neither"),
            "{why}"
        );
        assert!(
            why.contains("not shown: it may be the secret itself"),
            "{why}"
        );
    }
    // A path is shown, so the user sees which file is missing.
    let Err(ProvisionError::Config(why)) =
        value_or_file(ENV_ADMIN_CLIENT_JWK, "/no/such/admin.jwk")
    else {
        panic!("a missing file was read");
    };
    assert!(why.contains("\"/no/such/admin.jwk\": "), "{why}");
}

#[test]
fn pem_anywhere_in_the_value_and_a_byte_order_mark_are_the_value_itself() {
    let bagged = format!(
        "Bag Attributes\n    localKeyID: 01\n-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n"
    );
    assert_eq!(
        value_or_file(ENV_ADMIN_PRIVATE_KEY, &bagged).unwrap(),
        bagged.trim()
    );
    assert_eq!(
        value_or_file(ENV_ADMIN_CLIENT_JWK, "\u{feff}{\"kty\":\"RSA\"}").unwrap(),
        "{\"kty\":\"RSA\"}"
    );
}

#[test]
fn a_wrong_admin_url_is_named_before_any_discovery() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (url, why) in [
        (
            "http://admin.example.org/api/v1",
            "uses http to a host that is not loopback; use https",
        ),
        ("not a url", "is not a URL"),
    ] {
        let settings = AdminSettings {
            admin_url: Some(url.into()),
            maskinporten_url: Some("https://test.maskinporten.invalid/".into()),
            ..AdminSettings::default()
        };
        let Err(ProvisionError::Config(text)) = runtime.block_on(settings.connect()) else {
            panic!("{url} was accepted");
        };
        assert!(
            text.starts_with("PORTVAKT_ADMIN_URL: admin API URL"),
            "{text}"
        );
        assert!(text.contains(why), "{text}");
    }
}
