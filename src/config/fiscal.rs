//! `[fiscal]`: who issues the 54-ФЗ receipt for each money movement, and what chasti needs to
//! have it issued: `none` (the shop sees to it elsewhere), `pos` (the POS prints it; chasti
//! tells it by a signed webhook and hears back the receipt), `atol` (chasti prints it through the
//! ATOL driver's web server on the till host) or `bank` (the bank's cloud fiscalisation, from
//! the cart sent with the order).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::{absolute_url, ConfigError, Fail};
use crate::orders::cart::Vat;
use crate::orders::receipt::ReceiptPolicy;
use crate::secret::Secret;

/// The key the POS webhook's bodies are signed with (HMAC-SHA256).
pub const ENV_FISCAL_KEY: &str = "CHASTI_FISCAL_KEY";

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum FiscalMode {
    #[default]
    None,
    Pos,
    Atol,
    Bank,
}

impl FiscalMode {
    pub fn name(self) -> &'static str {
        match self {
            FiscalMode::None => "none",
            FiscalMode::Pos => "pos",
            FiscalMode::Atol => "atol",
            FiscalMode::Bank => "bank",
        }
    }
}

/// The taxation system (tag 1055), in the bank's spelling.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Taxation {
    #[default]
    Osn,
    UsnIncome,
    UsnIncomeOutcome,
    Esn,
    Patent,
}

impl Taxation {
    /// The ATOL driver's `taxationType`.
    pub fn atol(self) -> &'static str {
        match self {
            Taxation::Osn => "osn",
            Taxation::UsnIncome => "usnIncome",
            Taxation::UsnIncomeOutcome => "usnIncomeOutcome",
            Taxation::Esn => "esn",
            Taxation::Patent => "patent",
        }
    }

    /// The ecom gateway's `company.sno`.
    pub fn sno(self) -> &'static str {
        match self {
            Taxation::Osn => "osn",
            Taxation::UsnIncome => "usn_income",
            Taxation::UsnIncomeOutcome => "usn_income_outcome",
            Taxation::Esn => "esn",
            Taxation::Patent => "patent",
        }
    }

    /// The legacy gateway's `taxSystem`.
    pub fn legacy_code(self) -> u8 {
        match self {
            Taxation::Osn => 0,
            Taxation::UsnIncome => 1,
            Taxation::UsnIncomeOutcome => 2,
            Taxation::Esn => 4,
            Taxation::Patent => 5,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptMoment {
    /// When the bank takes the money (a hold's deposit).
    #[default]
    Deposit,
    /// When the bank holds it (two-stage: goods leave the shop at the hold).
    Hold,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawFiscal {
    mode: FiscalMode,
    deadline_minutes: u64,
    receipt_at: ReceiptMoment,
    taxation: Taxation,
    default_vat: String,
    pos: Option<RawPos>,
    atol: Option<RawAtol>,
    bank: Option<RawBank>,
}

impl Default for RawFiscal {
    fn default() -> Self {
        RawFiscal {
            mode: FiscalMode::None,
            deadline_minutes: 15,
            receipt_at: ReceiptMoment::Deposit,
            taxation: Taxation::Osn,
            default_vat: "22".into(),
            pos: None,
            atol: None,
            bank: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPos {
    webhook_url: String,
    key: Option<Secret>,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAtol {
    #[serde(default = "default_atol_url")]
    url: String,
    device_id: Option<String>,
    #[serde(default = "default_operator")]
    operator: String,
    operator_inn: Option<String>,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    /// How long a receipt's job may take in the driver before chasti asks again later.
    #[serde(default = "default_job_wait")]
    job_wait_secs: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBank {
    #[serde(default = "default_ffd")]
    ffd: String,
    company_email: Option<String>,
    company_inn: Option<String>,
    payment_address: Option<String>,
    #[serde(default)]
    tax_types: BTreeMap<String, u8>,
}

fn default_timeout() -> u64 {
    10
}
fn default_job_wait() -> u64 {
    60
}
fn default_atol_url() -> String {
    "http://127.0.0.1:16732".into()
}
fn default_operator() -> String {
    "Кассир".into()
}
fn default_ffd() -> String {
    "1.2".into()
}

#[derive(Debug, Clone)]
pub struct PosFiscal {
    pub webhook_url: Url,
    pub key: Secret,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct AtolFiscal {
    /// The driver's web server, e.g. `http://127.0.0.1:16732` (its API is under `/api/v2`).
    pub url: Url,
    pub device_id: Option<String>,
    /// The operator (tag 1021) when the sale named no cashier.
    pub operator: String,
    pub operator_inn: Option<String>,
    pub timeout: Duration,
    pub job_wait: Duration,
}

#[derive(Debug, Clone)]
pub struct BankFiscal {
    /// `1.05` or `1.2`: the format of the cart the ecom gateway takes.
    pub ffd: String,
    pub company_email: Option<String>,
    pub company_inn: Option<String>,
    pub payment_address: Option<String>,
    /// The bank's `tax.taxType` code of each VAT rate (the bank's table; the welcome letter
    /// gives the codes of the 2026 rates).
    pub tax_types: BTreeMap<Vat, u8>,
}

#[derive(Debug, Clone)]
pub struct FiscalConfig {
    pub mode: FiscalMode,
    /// A movement with no receipt this long after it is «чек не пробит».
    pub deadline: Duration,
    pub receipt_at: ReceiptMoment,
    pub taxation: Taxation,
    /// The VAT of the one line of a sale that carried no cart.
    pub default_vat: Vat,
    pub pos: Option<PosFiscal>,
    pub atol: Option<AtolFiscal>,
    pub bank: Option<BankFiscal>,
    /// Not in the file: the wait after a failed try (doubling up to 10 minutes), and how often
    /// the worker looks at open receipts when nothing wakes it (5 s each).
    pub retry_first: Duration,
    pub scan_every: Duration,
}

impl Default for FiscalConfig {
    fn default() -> Self {
        FiscalConfig {
            mode: FiscalMode::None,
            deadline: Duration::from_secs(15 * 60),
            receipt_at: ReceiptMoment::Deposit,
            taxation: Taxation::Osn,
            default_vat: Vat::Vat22,
            pos: None,
            atol: None,
            bank: None,
            retry_first: Duration::from_secs(5),
            scan_every: Duration::from_secs(5),
        }
    }
}

impl FiscalConfig {
    /// What the engine needs to owe receipts; None when chasti does not see to them.
    pub fn receipt_policy(&self) -> Option<ReceiptPolicy> {
        (self.mode != FiscalMode::None).then(|| ReceiptPolicy {
            at_hold: self.receipt_at == ReceiptMoment::Hold,
            default_vat: self.default_vat,
            deadline: self.deadline,
        })
    }
}

/// The bank's tax codes that its own table gives (FFD 1.05 and 1.2): the 2026 rates are not in
/// it and come from the welcome letter (`fiscal.bank.tax_types`).
fn known_tax_types() -> BTreeMap<Vat, u8> {
    BTreeMap::from([
        (Vat::None, 0),
        (Vat::Vat0, 1),
        (Vat::Vat10, 2),
        (Vat::Vat110, 4),
        (Vat::Vat20, 6),
        (Vat::Vat120, 7),
    ])
}

pub(super) fn check_fiscal(
    raw: RawFiscal,
    env: &dyn Fn(&str) -> Option<String>,
    fail: &Fail,
) -> Result<FiscalConfig, ConfigError> {
    if !(1..=1440).contains(&raw.deadline_minutes) {
        return Err(fail(
            "fiscal.deadline_minutes",
            format!("found {}; allowed: 1 to 1440", raw.deadline_minutes),
        ));
    }
    let default_vat = Vat::parse(&raw.default_vat).map_err(|e| {
        fail(
            "fiscal.default_vat",
            format!("found {:?}; {}", raw.default_vat, e.0),
        )
    })?;
    let timeout = |key: &str, secs: u64| super::seconds_in(key, secs, 1..=120, fail);
    let pos = match raw.pos {
        Some(p) => Some(PosFiscal {
            webhook_url: absolute_url("fiscal.pos.webhook_url", &p.webhook_url, fail)?,
            key: env(ENV_FISCAL_KEY)
                .map(Secret::new)
                .or(p.key)
                .filter(|k| k.expose().len() >= 16)
                .ok_or_else(|| {
                    fail(
                        "fiscal.pos.key",
                        format!("found nothing of at least 16 characters; allowed: the key the POS checks the webhook's signature with, in the file or in {ENV_FISCAL_KEY}"),
                    )
                })?,
            timeout: timeout("fiscal.pos.timeout_secs", p.timeout_secs)?,
        }),
        None => None,
    };
    let atol = match raw.atol {
        Some(a) => Some(AtolFiscal {
            url: absolute_url("fiscal.atol.url", &a.url, fail)?,
            device_id: a.device_id.filter(|d| !d.trim().is_empty()),
            operator: a.operator,
            operator_inn: a.operator_inn.filter(|i| !i.trim().is_empty()),
            timeout: timeout("fiscal.atol.timeout_secs", a.timeout_secs)?,
            job_wait: super::seconds_in(
                "fiscal.atol.job_wait_secs",
                a.job_wait_secs,
                5..=600,
                fail,
            )?,
        }),
        None => None,
    };
    let bank = match raw.bank {
        Some(b) => {
            if b.ffd != "1.05" && b.ffd != "1.2" {
                return Err(fail(
                    "fiscal.bank.ffd",
                    format!("found {:?}; allowed: \"1.05\" or \"1.2\"", b.ffd),
                ));
            }
            let mut tax_types = known_tax_types();
            for (rate, code) in b.tax_types {
                let vat = Vat::parse(&rate)
                    .map_err(|e| fail(&format!("fiscal.bank.tax_types.{rate}"), e.0))?;
                tax_types.insert(vat, code);
            }
            Some(BankFiscal {
                ffd: b.ffd,
                company_email: b.company_email.filter(|e| !e.trim().is_empty()),
                company_inn: b.company_inn.filter(|i| !i.trim().is_empty()),
                payment_address: b.payment_address.filter(|a| !a.trim().is_empty()),
                tax_types,
            })
        }
        None => None,
    };
    let missing = |section: &str| {
        fail(
            &format!("fiscal.{section}"),
            format!(
                "found nothing; allowed: a [fiscal.{section}] section, as fiscal.mode = \"{section}\" needs (see the shipped config)"
            ),
        )
    };
    if raw.mode == FiscalMode::Bank && raw.receipt_at == ReceiptMoment::Hold {
        return Err(fail(
            "fiscal.receipt_at",
            "found \"hold\"; allowed: \"deposit\" with mode = \"bank\" (the bank's cloud issues the receipt when it takes the money)".into(),
        ));
    }
    match raw.mode {
        FiscalMode::Pos if pos.is_none() => return Err(missing("pos")),
        FiscalMode::Atol if atol.is_none() => return Err(missing("atol")),
        FiscalMode::Bank if bank.is_none() => return Err(missing("bank")),
        _ => {}
    }
    Ok(FiscalConfig {
        mode: raw.mode,
        deadline: Duration::from_secs(raw.deadline_minutes * 60),
        receipt_at: raw.receipt_at,
        taxation: raw.taxation,
        default_vat,
        pos,
        atol,
        bank,
        ..FiscalConfig::default()
    })
}
