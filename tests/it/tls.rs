//! HTTPS: a CA made at test time signs the sandbox's certificate. The client trusts it only
//! through a certs folder named in its settings; without it the call fails as a TLS error.

use std::path::Path;

use chasti::gateway::{GatewayClient, GatewayError, OrderRef, RegisterRequest};
use chasti::money::Kopecks;
use chasti::sandbox::SandboxSettings;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// Writes ca/ca.pem, server.pem and server.key into `dir`.
fn make_pki(dir: &Path) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "chasti test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "sandbox.test");
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

    std::fs::create_dir_all(dir.join("ca")).unwrap();
    std::fs::write(dir.join("ca/ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), leaf_cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), leaf_key.serialize_pem()).unwrap();
}

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
