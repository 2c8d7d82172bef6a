//! HTTPS: a CA made at test time signs the sandbox's certificate. The client trusts it only
//! through a certs folder named in its settings; without it the call fails as a TLS error.

use std::path::Path;

use chasti::gateway::{GatewayClient, GatewayError, OrderRef, RegisterRequest};
use chasti::money::Kopecks;
use chasti::sandbox::SandboxSettings;

use crate::common::pki::make_pki;

#[tokio::test]
async fn the_client_trusts_a_ca_from_its_certs_folder_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    make_pki(dir.path());
    let sb = crate::common::sandbox_with(SandboxSettings {
        tls: Some((dir.path().join("server.pem"), dir.path().join("server.key"))),
        ..SandboxSettings::default()
    })
    .await;
    assert_eq!(sb.gateway_url().scheme(), "https");

    // Trusted through the folder: the call goes through, and the payment link is https too.
    let mut settings = crate::common::settings_for(&sb);
    settings.trust.extra_ca_dirs = vec![dir.path().join("ca")];
    let client = GatewayClient::new(settings).unwrap();
    let r = client
        .register(&RegisterRequest::new(
            "TLS-1",
            Kopecks::from_roubles(10).unwrap(),
        ))
        .await
        .unwrap();
    assert!(
        r.form_url.as_str().starts_with("https://"),
        "{}",
        r.form_url
    );
    let status = client
        .order_status(&OrderRef::OrderNumber("TLS-1".into()))
        .await
        .unwrap();
    assert_eq!(status.order_number, "TLS-1");

    // The same CA as a file works as well.
    let mut by_file = crate::common::settings_for(&sb);
    by_file.trust.extra_ca_files = vec![dir.path().join("ca/ca.pem")];
    GatewayClient::new(by_file)
        .unwrap()
        .order_status(&OrderRef::OrderNumber("TLS-1".into()))
        .await
        .unwrap();

    // Only the bundled Минцифры CAs: the chain is not trusted, and the error says so.
    let untrusting = GatewayClient::new(crate::common::settings_for(&sb)).unwrap();
    let err = untrusting
        .order_status(&OrderRef::OrderNumber("TLS-1".into()))
        .await
        .unwrap_err();
    match &err {
        GatewayError::Tls { host, detail, .. } => {
            assert_eq!(host, "127.0.0.1");
            assert!(
                detail.contains("UnknownIssuer") || detail.contains("unknown issuer"),
                "{detail}"
            );
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("not trusted"), "{text}");
    assert!(text.contains("extra_ca_files"), "{text}");
}

/// The till API over HTTPS (`api.tls_cert`, `api.tls_key`) for a manager page on the shop's
/// LAN: a browser that trusts the shop's CA gets the API; plain HTTP gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_till_api_serves_https_with_the_configured_certificate() {
    let pki = tempfile::tempdir().unwrap();
    make_pki(pki.path());
    let (cert, key) = (pki.path().join("server.pem"), pki.path().join("server.key"));
    let h = crate::common::Harness::new(crate::common::HarnessOptions {
        configure: Some(Box::new(move |c: &mut chasti::config::Config| {
            c.api.tls = Some((cert, key));
        })),
        ..crate::common::HarnessOptions::default()
    })
    .await;
    let base = h.api();
    assert!(base.starts_with("https://"), "{base}");
    let trust = chasti::gateway::tls::TrustSettings {
        extra_ca_files: vec![pki.path().join("ca/ca.pem")],
        ..Default::default()
    };
    let trusting = reqwest::Client::builder()
        .tls_backend_preconfigured(chasti::gateway::tls::client_config(&trust).unwrap())
        .no_proxy()
        .build()
        .unwrap();
    let health = trusting
        .get(format!("{base}/api/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let sale = trusting
        .post(format!("{base}/api/v1/sales"))
        .bearer_auth(crate::common::CASHIER)
        .json(&serde_json::json!({"amount": "100.00", "idempotency_key": "tls-sale-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sale.status().as_u16(), 201);

    // Without the CA: refused by the client; plain HTTP to the TLS port: no answer.
    let stranger = crate::common::http();
    assert!(stranger
        .get(format!("{base}/api/v1/health"))
        .send()
        .await
        .is_err());
    let plain = base.replacen("https://", "http://", 1);
    let answer = stranger.get(format!("{plain}/api/v1/health")).send().await;
    assert!(
        answer.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP must not be served"
    );
}

#[test]
fn api_tls_files_are_checked_with_the_config() {
    let pki = tempfile::tempdir().unwrap();
    make_pki(pki.path());
    let base = "[gateway]\nenvironment = \"sandbox\"\nuser_name = \"u\"\npassword = \"p\"\nreturn_url = \"https://shop.example/paid\"\n";
    let parse = |api: String| {
        chasti::config::Config::parse(
            Path::new("chasti.toml"),
            &format!("{base}[api]\n{api}"),
            |_| None,
        )
    };
    let cert = pki.path().join("server.pem");
    let key = pki.path().join("server.key");
    let ok = parse(format!(
        "tls_cert = {:?}\ntls_key = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    ))
    .unwrap();
    assert!(ok.api.tls.is_some());
    let one = parse(format!("tls_cert = {:?}\n", cert.display().to_string())).unwrap_err();
    assert!(one.to_string().contains("both (HTTPS) or neither"), "{one}");
    let swapped = parse(format!(
        "tls_cert = {:?}\ntls_key = {:?}\n",
        key.display().to_string(),
        cert.display().to_string()
    ))
    .unwrap_err();
    assert_eq!(swapped.key, "api.tls_cert", "{swapped}");
}
