use super::*;
use crate::gateway::ErrorCode;
use crate::secret::Secret;

#[test]
fn plain_http_only_to_loopback() {
    let creds = Credentials::Token(Secret::new("t"));
    for ok in [
        "http://127.0.0.1:1/payment/rest/",
        "http://localhost:1/",
        "http://[::1]:1/",
    ] {
        let s = ClientSettings::new(Url::parse(ok).unwrap(), creds.clone(), "https://x/");
        assert!(GatewayClient::new(s).is_ok(), "{ok}");
    }
    let s = ClientSettings::new(
        Url::parse("http://securepayments.sberbank.ru/payment/rest/").unwrap(),
        creds,
        "https://x/",
    );
    let err = GatewayClient::new(s).unwrap_err().to_string();
    assert!(err.contains("must be reached over https"), "{err}");
}

#[test]
fn replies_with_error_code_string_number_and_missing() {
    let refused: Result<Registered, _> = parse_reply(
        Method::Register,
        r#"{"errorCode":"5","errorMessage":"Access denied"}"#,
    );
    assert_eq!(
        refused.unwrap_err().code(),
        Some(ErrorCode::WrongValueOrAccessDenied)
    );
    let refused: Result<Registered, _> = parse_reply(
        Method::Register,
        r#"{"errorCode":5,"errorMessage":"Access denied"}"#,
    );
    assert_eq!(
        refused.unwrap_err().code(),
        Some(ErrorCode::WrongValueOrAccessDenied)
    );
    let ok: Registered = parse_reply(
        Method::Register,
        r#"{"orderId":"a","formUrl":"https://p/"}"#,
    )
    .unwrap();
    assert_eq!(ok.order_id.as_str(), "a");
    let ok: Registered = parse_reply(
        Method::Register,
        r#"{"errorCode":"0","orderId":"a","formUrl":"https://p/"}"#,
    )
    .unwrap();
    assert_eq!(ok.form_url.as_str(), "https://p/");
}

#[test]
fn garbage_is_unreadable_with_an_excerpt() {
    let err = parse_reply::<Registered>(Method::Register, "<html>Bad Gateway</html>").unwrap_err();
    match err {
        GatewayError::UnreadableReply { excerpt, .. } => {
            assert!(excerpt.contains("Bad Gateway"))
        }
        other => panic!("{other:?}"),
    }
}
