//! Writes the hand-made seed corpus of every fuzz target into `fuzz/corpus/<target>/seed-*`.
//!
//! `cargo run -p portvakt-fuzz --example seeds`. The seeds are committed; this program says
//! how they were made (the signed ones use the fixed fuzzing keys and clock, so rerunning it
//! gives the same verdicts, though RSA-PSS-free RS256 signatures are deterministic anyway).

use std::path::Path;

use portvakt_fuzz::{assertion, token};
use serde_json::json;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let now = token::NOW as i64;
    let claims = json!({
        "iss": token::ISSUER, "scope": "nav:arbeid:some.scope.read",
        "client_id": "2b3c", "client_amr": "private_key_jwt", "token_type": "Bearer",
        "consumer": {"authority": "iso6523-actorid-upis", "ID": "0192:889640782"},
        "iat": now - 30, "exp": now + 90, "jti": "seed-1"
    });
    let delegated = json!({
        "iss": token::ISSUER, "scope": "nav:arbeid:some.scope.read nav:arbeid:some.scope.write",
        "consumer": {"authority": "iso6523-actorid-upis", "ID": "0192:889640782"},
        "supplier": {"authority": "iso6523-actorid-upis", "ID": "0192:123456785"},
        "delegation_source": "https://delegation.example/", "aud": ["https://api.example/"],
        "authorization_details": [{"type": "urn:altinn:systemuser", "systemuser_org": {"ID": "0192:1"}}],
        "iat": now as f64 - 1.5, "exp": now as f64 + 0.5, "nbf": now, "jti": "seed-2", "pid": "01010112345"
    });
    let payloads = [
        claims.to_string(),
        delegated.to_string(),
        json!({"iss": "https://maskinporten.no/", "exp": now + 10}).to_string(),
        json!({"iss": token::ISSUER, "exp": now - 61, "iat": now - 100}).to_string(),
        json!({"iss": token::ISSUER, "exp": now + 10, "iat": now + 61}).to_string(),
        json!({"iss": token::ISSUER, "exp": "soon", "scope": ["a"]}).to_string(),
        r#"{"iss":"x","iss":"y","exp":1}"#.to_owned(),
        r#"{"a":{"b":1,"b":2},"exp":1e400}"#.to_owned(),
        "[1,2,3]".to_owned(),
        "{\"iss\":\"\\ud800\"}".to_owned(),
    ];
    let signed = token::sign(claims.to_string().as_bytes());

    let mut token_seeds: Vec<Vec<u8>> = vec![
        prefixed(0, &signed),
        prefixed(0, &format!("{signed}x")),
        prefixed(0, &signed.replacen('.', "..", 1)),
        prefixed(0, "eyJhbGciOiJub25lIn0.e30."),
        prefixed(0, "not.a.token"),
    ];
    token_seeds.extend(payloads.iter().map(|p| prefixed(1, p)));
    write(&root.join("token"), &token_seeds)?;
    write(
        &root.join("payload"),
        &payloads
            .iter()
            .map(|p| p.clone().into_bytes())
            .collect::<Vec<_>>(),
    )?;

    let issuer_key = portvakt::SigningKey::from_jwk(portvakt_fuzz::ISSUER_JWK).expect("key");
    let public = issuer_key.public_jwk();
    let jwks = [
        json!({"keys": [public]}),
        json!({"keys": [public, {"kty": "RSA", "kid": "broken", "n": "AQAB", "e": "AQAB"}]}),
        json!({"keys": [public, public]}),
        json!({"keys": [public, {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"}]}),
        json!({"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}),
        json!({"keys": {}}),
        json!({"keys": [public], "keys2": 1}),
    ];
    let mut jwks_seeds: Vec<Vec<u8>> = jwks.iter().map(|j| j.to_string().into_bytes()).collect();
    jwks_seeds.push(br#"{"keys":[],"keys":[1]}"#.to_vec());
    write(&root.join("jwks"), &jwks_seeds)?;

    let body = json!({"identity_provider": "maskinporten", "token": signed}).to_string();
    let introspect: Vec<Vec<u8>> = [
        format!("application/json\n{body}"),
        "application/json; charset=utf-8\n{\"identity_provider\":\"maskinporten\",\"token\":\"a.b.c\",\"scope\":[\"x\",\"y\"],\"audience\":\"https://api/\"}".to_owned(),
        "application/json\n{\"identity_provider\":\"maskinporten\",\"token\":\"a\",\"token\":\"b\"}".to_owned(),
        "application/x-www-form-urlencoded\nidentity_provider=maskinporten&token=a.b.c&scope=x+y&token=d.e.f".to_owned(),
        "application/x-www-form-urlencoded\n{\"identity_provider\":\"maskinporten\"}".to_owned(),
        "text/plain\ntoken=x".to_owned(),
        "\n{}".to_owned(),
        "application/json\n{\"token\":\"eyJraWQiOiJrMSIsImFsZyI6IlJTMjU2In0.eyJzY29wZSI6ImEifQ.c2ln\",\"identity_provider\":\"maskinporten\"}".to_owned(),
        // Refused: an unknown member, an array, an empty scope and audience, a repeated field.
        "application/json\n{\"identity_provider\":\"maskinporten\",\"token\":\"a.b.c\",\"scopes\":\"x\"}".to_owned(),
        "application/json\n[\"maskinporten\",\"a.b.c\",\"x\",\"https://api/\"]".to_owned(),
        "application/json\n{\"identity_provider\":\"maskinporten\",\"token\":\"a.b.c\",\"scope\":[],\"audience\":\"\"}".to_owned(),
        "application/x-www-form-urlencoded\nidentity_provider=maskinporten&token=a.b.c&scope=&audience=x&audience=y&scopes=z".to_owned(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    write(&root.join("introspect"), &introspect)?;

    let paths: Vec<Vec<u8>> = [
        "/api/v1/**\n/api/v1/orders",
        "/api/v1/*/orders\n/api/v1/%61/orders",
        "/api/v1/admin/**\n/api/v1/%61dmin/x?y=1",
        "/api/v1/**\n/api/v1/../admin",
        "/api/v1/**\n/api/v1/%2e%2E/admin",
        "/api/v1/**\n/api/v1//admin",
        "/api/v1/**\n/api/v1/a;b",
        "/api/v1/**\n/api/v1/a%2Fb",
        "/api/v1/**\n/api/v1\\admin",
        "/a/\nhttp://example.com/a/",
        "/*\n/%00",
        "/**\n*",
        "/x/*/z\n/x/.../z",
    ]
    .into_iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    write(&root.join("path"), &paths)?;

    let manifests_dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../portvakt-manifest/tests/corpus");
    let mut manifests = vec![std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/nais.yaml"),
    )?];
    let mut names: Vec<_> = std::fs::read_dir(manifests_dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        manifests.push(std::fs::read(name)?);
    }
    manifests.push(b"spec:\n  maskinporten:\n    scopes:\n      exposes:\n        - name: a\n          name: b\n".to_vec());
    manifests.push(b"a: &x [*x]\n".to_vec());
    write(&root.join("manifest"), &manifests)?;

    let mut policies = vec![std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policy.toml"),
    )?];
    for text in [
        "default = \"public\"\n",
        "[[route]]\npath = \"/a/**\"\nscopes = [\"nav:a\"]\nany_scopes = [\"nav:b\"]\n",
        "[[route]]\npath = \"/a/*/b\"\nmethods = [\"GET\", \"get\"]\nconsumers = [\"123456789\", \"12\"]\nscopes = [\"x\"]\n",
        "[[route]]\npath = \"a\"\npublic = true\ndeny = true\n",
        "realm = \"a\\\"b\"\n[[route]]\nscope = \"x\"\n",
    ] {
        policies.push(text.as_bytes().to_vec());
    }
    write(&root.join("policy"), &policies)?;

    let good = json!({"aud": "issuer", "iss": assertion::CLIENT_ID, "iat": "now", "exp": "now+60",
        "jti": "fresh", "scope": "nav:arbeid:some.scope.read"});
    let write_scope = json!({"aud": "issuer", "iss": assertion::CLIENT_ID, "iat": "now", "exp": "now+60",
        "jti": "fresh", "scope": "nav:arbeid:some.scope.read nav:arbeid:some.scope.write"});
    let delegating = json!({"aud": "issuer", "iss": assertion::CLIENT_ID, "iat": "now-5", "exp": "now+100",
        "jti": "fresh", "scope": "nav:arbeid:some.scope.read", "consumer_org": "889640782",
        "resource": ["https://api.example/"]});
    let mut assertions: Vec<Vec<u8>> = [good, write_scope, delegating]
        .iter()
        .map(|c| prefixed(1, &c.to_string()))
        .collect();
    assertions.push(prefixed(0, &assertion::sign(b"{\"iss\":\"fuzz-client\"}")));
    assertions.push(prefixed(0, "a.b.c"));
    assertions.push(prefixed(1, "not json"));
    write(&root.join("assertion"), &assertions)?;
    Ok(())
}

fn prefixed(mode: u8, text: &str) -> Vec<u8> {
    let mut bytes = vec![mode];
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

fn write(dir: &Path, seeds: &[Vec<u8>]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:02}")), seed)?;
    }
    println!("{}: {} seeds", dir.display(), seeds.len());
    Ok(())
}
