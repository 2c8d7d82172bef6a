//! `[fiscal]`: that every money movement will get its 54-ФЗ receipt. `none` warns; `pos`
//! checks the webhook answers; `atol` that the driver's web server answers and its ККТ reports
//! its shift; `bank` that every VAT rate has the bank's code and, with `--go-live` on the
//! bank's test host, that the bank takes a cart (a 1 ₽ order registered, then declined); and
//! in every mode, receipts past their deadline in the store («чек не пробит»).

use chrono::{DateTime, Utc};

use super::{check, risk, Check, Verdict};
use crate::config::{Config, Environment, FiscalMode};

pub async fn fiscal(config: &Config, go_live: bool, now: DateTime<Utc>) -> Vec<Check> {
    let f = &config.fiscal;
    let mut out = Vec::new();
    match f.mode {
        FiscalMode::None => out.push(check(
            "fiscal",
            Verdict::Warn,
            "mode = \"none\": chasti issues no receipts, and 54-ФЗ needs a кассовый чек for every payment and every refund; if the shop does not print them elsewhere, set [fiscal] mode = \"pos\" (the POS prints it, told by a webhook), \"atol\" (chasti prints it through the ATOL driver) or \"bank\" (the bank's cloud fiscalisation)",
        )),
        FiscalMode::Pos => out.push(pos(config).await),
        FiscalMode::Atol => out.push(match &f.atol {
            Some(atol) => match crate::fiscal::AtolDriver::check(atol).await {
                Ok(said) => check("fiscal", Verdict::Ok, format!("atol at {}: {said}", atol.url)),
                Err(why) => check("fiscal", Verdict::Fail, format!("atol: {why}")),
            },
            None => check("fiscal", Verdict::Fail, "atol without [fiscal.atol]"),
        }),
        FiscalMode::Bank => out.extend(bank(config, go_live).await),
    }
    if f.mode != FiscalMode::None {
        let database = crate::store::database_file(&config.store.path);
        let before = now - chrono::Duration::from_std(f.deadline).unwrap_or_default();
        out.push(match crate::store::receipts::late_in_file(&database, before) {
            Ok((0, 0)) => check("receipts", Verdict::Ok, "every receipt owed is issued or within its deadline"),
            Ok((late, failed)) => risk(
                "receipts",
                format!("«чек не пробит»: {late} receipt(s) past fiscal.deadline_minutes and {failed} that failed for good; see the manager page's «Чек» column or chasti orders"),
            ),
            Err(e) => check("receipts", Verdict::Warn, format!("could not read the store: {e}")),
        });
    }
    out
}

/// The POS webhook answers at all (any HTTP status: a webhook may take POST only).
async fn pos(config: &Config) -> Check {
    let Some(pos) = &config.fiscal.pos else {
        return check("fiscal", Verdict::Fail, "pos without [fiscal.pos]");
    };
    let client =
        crate::gateway::tls::http_client(&crate::gateway::tls::public_trust(), pos.timeout)
            .map_err(|e| e.to_string())
            .and_then(|b| b.build().map_err(|e| e.to_string()));
    let client = match client {
        Ok(c) => c,
        Err(e) => return check("fiscal", Verdict::Fail, format!("pos: {e}")),
    };
    match client.head(pos.webhook_url.clone()).send().await {
        Ok(reply) => check(
            "fiscal",
            Verdict::Ok,
            format!(
                "pos: the webhook {} answers (HTTP {})",
                pos.webhook_url,
                reply.status().as_u16()
            ),
        ),
        Err(e) => check(
            "fiscal",
            Verdict::Fail,
            format!(
                "pos: the webhook {} does not answer: {}; the POS must listen there for the receipts it prints",
                pos.webhook_url,
                crate::gateway::error_chain(&e)
            ),
        ),
    }
}

async fn bank(config: &Config, go_live: bool) -> Vec<Check> {
    let Some(bank) = &config.fiscal.bank else {
        return vec![check("fiscal", Verdict::Fail, "bank without [fiscal.bank]")];
    };
    let mut out = Vec::new();
    let unknown: Vec<&str> = crate::orders::cart::Vat::ALL
        .iter()
        .filter(|v| !v.before_2026() && !bank.tax_types.contains_key(v))
        .map(|v| v.code())
        .collect();
    out.push(if unknown.is_empty() {
        check("fiscal", Verdict::Ok, "bank: every VAT rate has the bank's code")
    } else {
        risk(
            "fiscal",
            format!(
                "bank: no tax code for the VAT rate(s) {}: a sale with them is refused; put the codes from the bank's welcome letter in fiscal.bank.tax_types",
                unknown.join(", ")
            ),
        )
    });
    if go_live {
        out.push(bank_takes_a_cart(config).await);
    }
    out
}

/// `--go-live` on the test host (or the sandbox): register a 1 ₽ order with a cart, then
/// decline it. Never on the production host: no real order is made to check.
async fn bank_takes_a_cart(config: &Config) -> Check {
    if config.gateway.environment == Environment::Production {
        return check(
            "bank-cart",
            Verdict::Warn,
            "bank: not tried against the production host (no real order is made to check); run doctor --go-live with the test credentials first",
        );
    }
    let Some(bank) = &config.fiscal.bank else {
        return check("bank-cart", Verdict::Fail, "bank without [fiscal.bank]");
    };
    let client = match crate::gateway::GatewayClient::new(config.gateway.client_settings()) {
        Ok(c) => c,
        Err(e) => return check("bank-cart", Verdict::Fail, e.to_string()),
    };
    let amount = crate::money::Kopecks::new(100).unwrap_or_default();
    let Some(tax_type) = bank.tax_types.get(&config.fiscal.default_vat).copied() else {
        return check(
            "bank-cart",
            Verdict::Fail,
            format!(
                "bank: fiscal.default_vat {} has no tax code",
                config.fiscal.default_vat.code()
            ),
        );
    };
    let email = bank
        .company_email
        .clone()
        .unwrap_or_else(|| "doctor@example.ru".into());
    let bundle = crate::gateway::OrderBundle {
        receipt: crate::gateway::BundleReceipt::Sell,
        items: vec![crate::gateway::BundleItem {
            name: "Проверка chasti doctor".into(),
            quantity: 1000,
            price: amount,
            amount,
            tax_type,
            payment_method: (4, "full_payment"),
            payment_object: (4, "service"),
        }],
        total: amount,
        ffd: bank.ffd.clone(),
        company: crate::gateway::BundleCompany {
            email: bank.company_email.clone(),
            sno: config.fiscal.taxation.sno().into(),
            inn: bank.company_inn.clone(),
            payment_address: bank.payment_address.clone(),
        },
        tax_system: config.fiscal.taxation.legacy_code(),
        email: Some(email.clone()),
        phone: None,
        created: chrono::Utc::now().timestamp(),
    };
    let number = format!(
        "doctor-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let mut request = crate::gateway::RegisterRequest::new(number.clone(), amount);
    request.email = Some(email);
    request.order_bundle = Some(bundle);
    match client.register(&request).await {
        Ok(registered) => {
            let _ = client
                .decline(&crate::gateway::OrderRef::OrderId(registered.order_id))
                .await;
            check(
                "bank-cart",
                Verdict::Ok,
                format!("bank: the gateway took a cart (test order {number}, declined again)"),
            )
        }
        Err(e) => check(
            "bank-cart",
            Verdict::Fail,
            format!("bank: the gateway refused a cart: {e}; check [fiscal.bank] against the bank's welcome letter"),
        ),
    }
}
