use aws_lc_rs::encoding::AsDer;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::algorithm::Algorithm;
use crate::jws::decode_unverified_header;
use crate::jws::signing::SigningKey;

fn pem(label: &str, der: &[u8]) -> String {
    let text = STANDARD.encode(der);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[test]
fn a_pem_key_with_its_chain_signs_with_x5c_and_no_kid() {
    let generated = SigningKey::generate("k").unwrap();
    let pkcs8 = generated.key_pair().as_der().unwrap();
    // The chain is passed through, not parsed: any DER stands in for the certificates here.
    let (leaf, ca) = (b"leaf-certificate-der".as_slice(), b"ca-der".as_slice());
    let chain = format!("{}{}", pem("CERTIFICATE", leaf), pem("CERTIFICATE", ca));
    let key = SigningKey::from_pem_with_chain(&pem("PRIVATE KEY", pkcs8.as_ref()), &chain).unwrap();
    assert_eq!(key.x5c(), [STANDARD.encode(leaf), STANDARD.encode(ca)]);
    assert!(key.kid().starts_with("x5t#S256:"), "{}", key.kid());

    let token = key
        .sign_jwt(Algorithm::RS256, &json!({"iss": "c"}))
        .unwrap();
    let header = decode_unverified_header(&token).unwrap();
    assert_eq!(header.get("kid"), None);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(
        header["x5c"],
        json!([STANDARD.encode(leaf), STANDARD.encode(ca)])
    );
    // Signed by the same key as the generated one.
    let original: Vec<&str> = token.split('.').collect();
    let message = format!("{}.{}", original[0], original[1]);
    let signature = crate::encoding::decode_base64url(original[2]).unwrap();
    let public_key = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        aws_lc_rs::signature::KeyPair::public_key(generated.key_pair()).as_ref(),
    );
    assert!(public_key.verify(message.as_bytes(), &signature).is_ok());
}

#[test]
fn bad_pem_input_is_explained() {
    let err = SigningKey::from_pem_with_chain("nothing", "").unwrap_err();
    assert!(err.to_string().contains("BEGIN PRIVATE KEY"), "{err}");
    let generated = SigningKey::generate("k").unwrap();
    let pkcs8 = generated.key_pair().as_der().unwrap();
    let err = SigningKey::from_pem_with_chain(&pem("PRIVATE KEY", pkcs8.as_ref()), "").unwrap_err();
    assert!(err.to_string().contains("BEGIN CERTIFICATE"), "{err}");
    let err = SigningKey::from_pem_with_chain(
        "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----",
        "",
    )
    .unwrap_err();
    assert!(err.to_string().contains("not base64"), "{err}");
    let err = SigningKey::from_pem_with_chain(&pem("PRIVATE KEY", b"junk"), "").unwrap_err();
    assert!(err.to_string().contains("not a usable RSA key"), "{err}");
}
