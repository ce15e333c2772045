use super::*;

#[test]
fn a_huge_base_delay_saturates_instead_of_overflowing() {
    let policy = RetryPolicy {
        attempts: 2,
        base_delay: Duration::MAX,
    };
    for retry in [0, 1, 10, 40] {
        assert_eq!(policy.delay(retry), Duration::MAX);
    }
    let policy = RetryPolicy::default();
    let first = policy.delay(0);
    assert!(
        (Duration::from_millis(200)..Duration::from_millis(300)).contains(&first),
        "{first:?}"
    );
}

#[test]
fn a_malformed_orgno_is_refused_before_any_request_with_the_path_it_would_have() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Port 9 on loopback: nothing would answer, so a request sent would fail differently.
    let client = AdminClient::new(
        "http://127.0.0.1:9/api/v1",
        AdminAuth::DevToken {
            endpoint: Url::parse("http://127.0.0.1:9/dev/token").unwrap(),
            orgno: "889640782".into(),
        },
    )
    .unwrap();
    let e = runtime
        .block_on(client.revoke("nav:arbeid:x", "0192:974760673"))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "DELETE /scopes/access/0192:974760673?scope=nav:arbeid:x (scope nav:arbeid:x, organization 0192:974760673) failed: not a nine-digit organization number"
    );
    assert_eq!(e.attempts, 0);
}

#[test]
fn an_answers_message_reaches_the_terminal_escaped_and_short() {
    let hostile = br#"{"error_description":"no\r\u001b[2J\u001b[31mdone\u0007"}"#;
    assert_eq!(
        answer_message(hostile),
        "no\\r\\u{1b}[2J\\u{1b}[31mdone\\u{7}"
    );
    let long = "x".repeat(1000);
    assert_eq!(
        answer_message(long.as_bytes()).chars().count(),
        301,
        "300 and the ellipsis"
    );
    assert_eq!(answer_message(b"  "), "(no body)");
}
