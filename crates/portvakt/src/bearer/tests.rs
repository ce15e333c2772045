use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};

use super::header::{is_b64token, is_b64token_byte};
use super::rejection::grpc_percent_encode;
use super::*;
use crate::ValidationError;

fn parse(value: &'static str) -> Result<&'static str, BearerError> {
    let value: &'static HeaderValue = Box::leak(Box::new(HeaderValue::from_static(value)));
    parse_authorization(value)
}

#[test]
fn accepts_bearer_in_any_case_with_spaces() {
    assert_eq!(parse("Bearer a.b.c"), Ok("a.b.c"));
    assert_eq!(parse("bearer a.b.c"), Ok("a.b.c"));
    assert_eq!(parse("BEARER a.b.c"), Ok("a.b.c"));
    assert_eq!(parse("Bearer    a.b.c"), Ok("a.b.c"));
    assert_eq!(parse("  Bearer a.b.c\t"), Ok("a.b.c"));
    assert_eq!(parse("Bearer a-_~+/b=="), Ok("a-_~+/b=="));
}

#[test]
fn refuses_everything_else_precisely() {
    assert_eq!(parse(""), Err(BearerError::Empty));
    assert_eq!(parse("   "), Err(BearerError::Empty));
    assert_eq!(parse("Basic dXNlcjpwYXNz"), Err(BearerError::NotBearer));
    assert_eq!(parse("Bearerx a.b.c"), Err(BearerError::NotBearer));
    assert_eq!(parse("Bearer\ta.b.c"), Err(BearerError::NotBearer));
    assert_eq!(parse("Bearer"), Err(BearerError::NoToken));
    assert_eq!(parse("Bearer    "), Err(BearerError::NoToken));
    assert_eq!(
        parse("Bearer Bearer a.b.c"),
        Err(BearerError::RepeatedScheme)
    );
    assert_eq!(parse("Bearer bearer"), Err(BearerError::RepeatedScheme));
    assert_eq!(parse("Bearer a.b.c d"), Err(BearerError::ExtraParts));
    assert_eq!(
        parse("Bearer a.b.c, Bearer d"),
        Err(BearerError::ExtraParts)
    );
    assert_eq!(parse("Bearer a.b.c,"), Err(BearerError::ExtraParts));
    assert_eq!(
        parse("Bearer \"a.b.c\""),
        Err(BearerError::InvalidCharacter)
    );
    assert_eq!(parse("Bearer a=b"), Err(BearerError::InvalidCharacter));
    assert_eq!(parse("Bearer ==="), Err(BearerError::InvalidCharacter));
    let obs_text = HeaderValue::from_bytes(b"Bearer a\xe5b").unwrap();
    assert_eq!(
        parse_authorization(&obs_text),
        Err(BearerError::InvalidCharacter)
    );
}

#[test]
fn b64token_check_matches_the_grammar_for_every_byte() {
    let reference = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
    for b in 0..=255u8 {
        assert_eq!(is_b64token_byte(b), reference(b), "byte {b:#x}");
        // In every position of a long token, block or remainder.
        for at in [0, 31, 32, 70, 99] {
            let mut token = vec![b'a'; 100];
            token[at] = b;
            // `=` is padding, allowed at the end only.
            let expected = reference(b) || (b == b'=' && at == 99);
            assert_eq!(is_b64token(&token), expected, "byte {b:#x} at {at}");
        }
    }
    assert!(is_b64token(b"ab=="));
    assert!(!is_b64token(b"a=b"));
    assert!(!is_b64token(b"=="));
}

#[test]
fn two_headers_are_refused() {
    let mut headers = HeaderMap::new();
    headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
    headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
    assert_eq!(bearer_token(&headers), Err(BearerError::Multiple));
}

#[test]
fn challenge_escapes_realm_and_sanitizes_description_and_scope() {
    let scope = vec!["a\"b".to_owned(), String::new(), "c d".to_owned()];
    let challenge = Challenge::error(
        "my \"api\" \\ æ",
        ErrorCode::InsufficientScope,
        "x\"y\\z\nå…",
    )
    .with_scope(&scope);
    assert_eq!(
        challenge.to_string(),
        r#"Bearer realm="my \"api\" \\ ?", error="insufficient_scope", error_description="x'y/z??...", scope="a?b c?d""#
    );
    let long = "d".repeat(500);
    let rendered = Challenge::error("r", ErrorCode::InvalidToken, &long).to_string();
    assert!(rendered.ends_with(&format!("{}...\"", "d".repeat(200))));
    assert!(HeaderValue::from_str(&rendered).is_ok());
}

#[test]
fn every_rejection_renders_a_valid_header() {
    let reasons: Vec<Reason> = vec![
        BearerError::Missing.into(),
        BearerError::InvalidCharacter.into(),
        ValidationError::WrongIssuer {
            found: Some("https://evil\"\\\u{7}…".to_owned()),
        }
        .into(),
        ValidationError::KeysUnavailable.into(),
        ValidationError::ConsumerNotAllowed { orgno: None }.into(),
    ];
    for reason in reasons {
        let rejection = Rejection::new(reason);
        let _ = rejection.www_authenticate();
        let grpc = rejection.to_grpc_response();
        assert!(grpc.headers().contains_key("grpc-message"));
    }
}

#[test]
fn grpc_message_is_percent_encoded() {
    assert_eq!(grpc_percent_encode("a b%c…"), "a b%25c%E2%80%A6");
}
