//! `chasti doctor`'s `[fiscal]` checks: `none` warns that 54-ФЗ needs a receipt; `pos` that its
//! webhook answers; `atol` that the driver's server answers and its ККТ reports a shift (the
//! fake driver of tests/it/common/atol.rs); `bank` every rate's code and, with `--go-live`, a
//! cart the sandbox takes (and one it refuses).

use chasti::config::Config;
use chasti::doctor::{self, Verdict};

use crate::common::atol::FakeAtol;

fn config(sandbox: &chasti::sandbox::Sandbox, store: &std::path::Path, fiscal: &str) -> Config {
    let text = format!(
        "[gateway]\nenvironment = \"test\"\nbase_url = \"{}\"\nuser_name = \"sandbox-api\"\npassword = \"sandbox\"\nreturn_url = \"https://shop.example/\"\n[store]\npath = \"{}\"\n{fiscal}",
        sandbox.gateway_url(),
        store.display()
    );
    Config::parse(std::path::Path::new("doctor.toml"), &text, |_| None).unwrap()
}

fn named<'a>(checks: &'a [doctor::Check], name: &str) -> &'a doctor::Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} in {checks:?}"))
}

#[tokio::test]
async fn each_fiscal_mode_is_checked_for_what_it_needs() {
    let sandbox = crate::common::sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("orders");
    let now = chrono::Utc::now();

    let none = doctor::fiscal(&config(&sandbox, &store, ""), true, now).await;
    let f = named(&none, "fiscal");
    assert_eq!(f.verdict, Verdict::Warn);
    assert!(
        f.detail.contains("54-ФЗ") && f.detail.contains("\"atol\""),
        "{}",
        f.detail
    );

    let port = crate::common::free_port();
    let pos = format!(
        "[fiscal]\nmode = \"pos\"\n[fiscal.pos]\nwebhook_url = \"http://127.0.0.1:{port}/r\"\nkey = \"0123456789abcdef0123\"\n"
    );
    let checks = doctor::fiscal(&config(&sandbox, &store, &pos), false, now).await;
    let f = named(&checks, "fiscal");
    assert_eq!(f.verdict, Verdict::Fail, "{f:?}");
    assert!(f.detail.contains("does not answer"), "{}", f.detail);

    let atol = FakeAtol::start().await;
    let with_atol = format!(
        "[fiscal]\nmode = \"atol\"\n[fiscal.atol]\nurl = \"{}\"\n",
        atol.url
    );
    let checks = doctor::fiscal(&config(&sandbox, &store, &with_atol), false, now).await;
    let f = named(&checks, "fiscal");
    assert_eq!(f.verdict, Verdict::Ok, "{f:?}");
    assert!(f.detail.contains("its shift is opened"), "{}", f.detail);
    atol.expire_shift(true);
    let checks = doctor::fiscal(&config(&sandbox, &store, &with_atol), false, now).await;
    let f = named(&checks, "fiscal");
    assert_eq!(f.verdict, Verdict::Fail, "{f:?}");
    assert!(f.detail.contains("Z-report"), "{}", f.detail);

    let bank = "[fiscal]\nmode = \"bank\"\n[fiscal.bank]\nffd = \"1.05\"\ncompany_email = \"shop@example.ru\"\ntax_types = { \"22\" = 11, \"22/122\" = 12, \"5\" = 13, \"7\" = 14, \"5/105\" = 15, \"7/107\" = 16 }\n";
    let checks = doctor::fiscal(&config(&sandbox, &store, bank), true, now).await;
    assert_eq!(named(&checks, "fiscal").verdict, Verdict::Ok, "{checks:?}");
    let cart = named(&checks, "bank-cart");
    assert_eq!(cart.verdict, Verdict::Ok, "{cart:?}");
    let registered = sandbox
        .ledger()
        .orders
        .into_iter()
        .find(|o| o.order_number.starts_with("doctor-"))
        .expect("the test order reached the bank");
    assert!(registered.cart.is_some());
    assert_eq!(registered.order_status, 6, "declined again");

    // A rate without the bank's code: named.
    let missing = "[fiscal]\nmode = \"bank\"\n[fiscal.bank]\ntax_types = { \"22\" = 11 }\n";
    let checks = doctor::fiscal(&config(&sandbox, &store, missing), false, now).await;
    let f = named(&checks, "fiscal");
    assert_eq!(f.verdict, Verdict::Warn);
    assert!(
        f.detail.contains("22/122") && f.detail.contains("fiscal.bank.tax_types"),
        "{}",
        f.detail
    );
}

/// The merchant's own parameters from the bank's letter go with register.do (form fields, and
/// `jsonParams` beside chasti's `till`); the ecom host would refuse a name it does not know,
/// which `doctor` says before a sale does.
#[tokio::test]
async fn the_merchants_own_parameters_reach_the_bank_and_doctor_checks_them_for_ecom() {
    use chasti::orders::Mode;
    let h = crate::common::Harness::new(crate::common::HarnessOptions {
        extra_config: "[gateway.extra_params]\nmerchantLogin = \"shop-sub-1\"\n[gateway.json_params]\nsbp_terminal = \"T-77\"\n".into(),
        ..Default::default()
    })
    .await;
    let order = h.sell(1500, Mode::OneStage).await;
    let report = crate::common::client_for(&h.sandbox)
        .order_status(&chasti::gateway::OrderRef::OrderId(
            order.state.bank_id().unwrap().clone(),
        ))
        .await
        .unwrap();
    let params: std::collections::BTreeMap<String, String> = report
        .merchant_order_params
        .into_iter()
        .map(|p| (p.name, p.value))
        .collect();
    assert_eq!(params.get("sbp_terminal").map(String::as_str), Some("T-77"));
    assert_eq!(params.get("till").map(String::as_str), Some("1"));

    let sandbox = crate::common::sandbox().await;
    let ecom = |extra: &str| {
        let text = format!(
            "[gateway]\nenvironment = \"test\"\ndialect = \"ecom\"\nbase_url = \"{}\"\nuser_name = \"sandbox-api\"\npassword = \"sandbox\"\nreturn_url = \"https://shop.example/\"\n[gateway.extra_params]\n{extra}\n",
            sandbox.ecom_gateway_url()
        );
        Config::parse(std::path::Path::new("doctor.toml"), &text, |_| None).unwrap()
    };
    let known = doctor::extra_params(&ecom("merchantLogin = \"sub\"")).unwrap();
    assert_eq!(known.verdict, Verdict::Ok, "{known:?}");
    let unknown = doctor::extra_params(&ecom("terminalId = \"7\"")).unwrap();
    assert_eq!(unknown.verdict, Verdict::Fail);
    assert!(unknown.detail.contains("terminalId"), "{}", unknown.detail);
}
