//! `[fiscal] mode = "atol"`: chasti prints the receipt itself through the ATOL ККТ driver's web
//! server on the till host (ДТО 10 «Web Requests», `http://127.0.0.1:16732/api/v2`).
//!
//! A receipt is one job: `POST /api/v2/requests {uuid, request: [sell | sellReturn]}`, then
//! `GET /api/v2/requests/{uuid}` until its result is `ready` (the fiscal document's number,
//! sign, ФН) or `error`. The uuid is the receipt's [`Receipt::job_id`], in the store from the
//! moment the movement owed it, so every try first asks the driver about that uuid: a job whose
//! reply was lost (a crash, a cut connection) is read back, never sent again, and the ККТ never
//! prints a receipt twice. Only a job the driver ended with an error (nothing printed) makes the
//! next try a new job. The ККТ's errors become the cashier's words with the fix.
//!
//! Money in the driver's JSON is roubles with kopecks (`1499.50`), not kopecks: written from the
//! integer kopecks as text, never through a float.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::{FiscalSetupError, Step};
use crate::config::{AtolFiscal, Taxation};
use crate::money::Kopecks;
use crate::orders::cart::{Item, PaymentMethod, PaymentObject, Vat};
use crate::orders::order::Order;
use crate::orders::receipt::{Fiscal, Receipt, ReceiptKind, ReceiptStatus};

pub struct Driver {
    http: reqwest::Client,
    config: AtolFiscal,
    taxation: Taxation,
}

/// Roubles and kopecks as the driver reads them: `1499.50`, a JSON number written as text.
struct Roubles(Kopecks);

impl Serialize for Roubles {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let k = self.0.get();
        let text = format!("{}.{:02}", k / 100, k % 100);
        RawValue::from_string(text)
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

/// A quantity as the driver reads it: `1`, `0.5`, `1.25` (written as text).
struct Amount3(u64);

impl Serialize for Amount3 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (whole, part) = (self.0 / 1000, self.0 % 1000);
        let text = if part == 0 {
            whole.to_string()
        } else {
            let part = format!("{part:03}");
            format!("{whole}.{}", part.trim_end_matches('0'))
        };
        RawValue::from_string(text)
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Job {
    uuid: String,
    request: Vec<Task>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Task {
    #[serde(rename = "type")]
    kind: &'static str,
    taxation_type: &'static str,
    electronically: bool,
    operator: Operator,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_info: Option<ClientInfo>,
    items: Vec<Position>,
    payments: Vec<Payment>,
    total: Roubles,
}

#[derive(Serialize)]
struct Operator {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    vatin: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClientInfo {
    email_or_phone: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Position {
    #[serde(rename = "type")]
    kind: &'static str,
    name: String,
    price: Roubles,
    quantity: Amount3,
    amount: Roubles,
    payment_method: &'static str,
    payment_object: &'static str,
    tax: Tax,
}

#[derive(Serialize)]
struct Tax {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Payment {
    #[serde(rename = "type")]
    kind: &'static str,
    sum: Roubles,
}

/// The driver's `tax.type` of a rate.
pub fn tax_type(vat: Vat) -> &'static str {
    match vat {
        Vat::None => "none",
        Vat::Vat0 => "vat0",
        Vat::Vat5 => "vat5",
        Vat::Vat7 => "vat7",
        Vat::Vat10 => "vat10",
        Vat::Vat22 => "vat22",
        Vat::Vat105 => "vat105",
        Vat::Vat107 => "vat107",
        Vat::Vat110 => "vat110",
        Vat::Vat122 => "vat122",
        Vat::Vat20 => "vat20",
        Vat::Vat120 => "vat120",
    }
}

fn payment_method(m: PaymentMethod) -> &'static str {
    match m {
        PaymentMethod::FullPrepayment => "fullPrepayment",
        PaymentMethod::Prepayment => "prepayment",
        PaymentMethod::Advance => "advance",
        PaymentMethod::FullPayment => "fullPayment",
        PaymentMethod::PartialPayment => "partialPayment",
        PaymentMethod::Credit => "credit",
        PaymentMethod::CreditPayment => "creditPayment",
    }
}

fn payment_object(o: PaymentObject) -> &'static str {
    match o {
        PaymentObject::Commodity => "commodity",
        PaymentObject::Excise => "excise",
        PaymentObject::Job => "job",
        PaymentObject::Service => "service",
        PaymentObject::Payment => "payment",
        PaymentObject::AgentCommission => "agentCommission",
        PaymentObject::Another => "another",
    }
}

fn position(i: &Item) -> Position {
    Position {
        kind: "position",
        name: i.name.to_string(),
        price: Roubles(i.price),
        quantity: Amount3(i.quantity.thousandths()),
        amount: Roubles(i.amount().unwrap_or(Kopecks::ZERO)),
        payment_method: payment_method(i.method),
        payment_object: payment_object(i.object),
        tax: Tax {
            kind: tax_type(i.vat),
        },
    }
}

/// What the driver said of a finished job's error, in the cashier's words with the fix, and
/// whether it needs a person before any retry.
pub fn explain(code: i64, description: &str) -> (String, bool) {
    let said = description.trim();
    let (text, permanent) = match code {
        1..=4 | 241 => ("ККТ не подключена к компьютеру кассы: проверьте кабель и питание ККТ и что драйвер ДТО видит её", false),
        44 => ("В ККТ нет бумаги: вставьте новый рулон", false),
        45 => ("Открыта крышка ККТ: закройте её", false),
        46 | 114 => ("Ошибка печатающего устройства ККТ (перегрев или неисправность): подождите и проверьте ККТ", false),
        68 | 141 => ("Смена на ККТ открыта больше 24 часов: закройте смену (Z-отчёт) и откройте новую", false),
        73 => ("Смена на ККТ закрыта: откройте смену", false),
        120 => ("Срок службы ФН истёк: замените фискальный накопитель", true),
        121 | 136 | 137 => ("ФН заполнен: замените фискальный накопитель", true),
        139 | 140 => ("ФН не может передать документы в ОФД: проверьте связь ККТ с ОФД", false),
        143 => ("Система налогообложения не зарегистрирована в этой ККТ: проверьте fiscal.taxation", true),
        144 => ("Ставка НДС не подходит для этой ККТ или системы налогообложения: проверьте НДС позиций и fiscal.taxation", true),
        _ => ("ККТ не пробила чек", false),
    };
    let text = if said.is_empty() {
        format!("{text} (ошибка ККТ {code})")
    } else {
        format!("{text} (ошибка ККТ {code}: {said})")
    };
    (text, permanent)
}

impl Driver {
    pub(super) fn new(config: &AtolFiscal, taxation: Taxation) -> Result<Driver, FiscalSetupError> {
        // The driver's server is on the till host (http); the TLS set-up is chasti's usual one
        // for the rare driver behind HTTPS.
        let trust = crate::gateway::tls::public_trust();
        let http = crate::gateway::tls::http_client(&trust, config.timeout)
            .map_err(FiscalSetupError::Tls)?
            .connect_timeout(config.timeout.min(std::time::Duration::from_secs(5)))
            .build()
            .map_err(FiscalSetupError::Client)?;
        Ok(Driver {
            http,
            config: config.clone(),
            taxation,
        })
    }

    fn url(&self, path: &str) -> String {
        let base = self.config.url.as_str().trim_end_matches('/');
        let device = self
            .config
            .device_id
            .as_ref()
            .map(|d| format!("?deviceID={d}"))
            .unwrap_or_default();
        format!("{base}/api/v2/{path}{device}")
    }

    fn job(&self, order: &Order, receipt: &Receipt) -> Job {
        let contact = order
            .customer
            .email
            .as_ref()
            .map(|e| e.to_string())
            .or_else(|| order.customer.phone.as_ref().map(|p| p.to_string()));
        Job {
            uuid: receipt.job_id().to_string(),
            request: vec![Task {
                kind: match receipt.kind {
                    ReceiptKind::Sell => "sell",
                    ReceiptKind::SellReturn => "sellReturn",
                },
                taxation_type: self.taxation.atol(),
                electronically: false,
                operator: Operator {
                    name: order
                        .cashier
                        .clone()
                        .unwrap_or_else(|| self.config.operator.clone()),
                    vatin: self.config.operator_inn.clone(),
                },
                client_info: contact.map(|c| ClientInfo { email_or_phone: c }),
                items: receipt.lines.iter().map(position).collect(),
                payments: vec![Payment {
                    kind: "electronically",
                    sum: Roubles(receipt.amount),
                }],
                total: Roubles(receipt.amount),
            }],
        }
    }

    /// Reads the receipt's job back first; queues it only when the driver has never seen it.
    pub(super) async fn step(&self, order: &Order, receipt: &Receipt) -> Step {
        let uuid = receipt.job_id();
        let unreachable = |e: reqwest::Error| {
            Step::Problem {
            why: format!(
                "Веб-сервер драйвера ККТ не отвечает на {}: проверьте, что служба драйвера АТОЛ запущена ({})",
                self.config.url,
                crate::gateway::error_chain(&e)
            ),
            permanent: false,
            new_round: false,
        }
        };
        let reply = match self
            .http
            .get(self.url(&format!("requests/{uuid}")))
            .send()
            .await
        {
            Ok(reply) => reply,
            Err(e) => return unreachable(e),
        };
        match reply.status().as_u16() {
            404 => {}
            200 => {
                let body: Value = match reply.json().await {
                    Ok(body) => body,
                    Err(e) => return unreachable(e),
                };
                return self.read_result(receipt, &body);
            }
            other => {
                return Step::Problem {
                    why: format!(
                        "Веб-сервер драйвера ККТ ответил HTTP {other} на запрос результата"
                    ),
                    permanent: false,
                    new_round: false,
                }
            }
        }
        // The driver has never seen this job: queue it.
        let queued = self
            .http
            .post(self.url("requests"))
            .json(&self.job(order, receipt))
            .send()
            .await;
        match queued {
            // 409: a job with this uuid exists (queued by a try whose reply was lost).
            Ok(reply) if reply.status().is_success() || reply.status().as_u16() == 409 => {
                Step::Sent
            }
            Ok(reply) => {
                let status = reply.status().as_u16();
                let body: Value = reply.json().await.unwrap_or(Value::Null);
                let said = body["error"]["description"].as_str().unwrap_or("");
                Step::Problem {
                    why: format!("Драйвер ККТ не принял чек (HTTP {status}: {said})"),
                    permanent: false,
                    new_round: false,
                }
            }
            Err(e) => unreachable(e),
        }
    }

    /// A job's result: `ready` is the receipt, `error` ends this round, anything else waits.
    fn read_result(&self, receipt: &Receipt, body: &Value) -> Step {
        let result = &body["results"][0];
        match result["status"].as_str() {
            Some("ready") => {
                let params = &result["result"]["fiscalParams"];
                let number = params["fiscalDocumentNumber"].as_u64();
                let sign = match &params["fiscalDocumentSign"] {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                };
                let fn_number = params["fnNumber"].as_str().map(str::to_string);
                match (number, sign, fn_number) {
                    (Some(document_number), Some(sign), Some(fn_number)) => Step::Issued(Fiscal {
                        document_number,
                        sign,
                        fn_number,
                        at: params["fiscalDocumentDateTime"]
                            .as_str()
                            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                            .map(|t| t.with_timezone(&chrono::Utc))
                            .unwrap_or_else(chrono::Utc::now),
                    }),
                    _ => Step::Problem {
                        why: "Драйвер ККТ сообщил, что чек пробит, но без номера ФД, ФП или ФН"
                            .into(),
                        permanent: true,
                        new_round: false,
                    },
                }
            }
            Some("error") => {
                let code = result["error"]["code"].as_i64().unwrap_or(0);
                let said = result["error"]["description"].as_str().unwrap_or("");
                let (why, permanent) = explain(code, said);
                Step::Problem {
                    why,
                    permanent,
                    new_round: true,
                }
            }
            // wait, inProgress, blocked: the driver is at it.
            _ if matches!(receipt.status, ReceiptStatus::Owed) => Step::Sent,
            _ => Step::Waiting,
        }
    }

    /// `doctor`: the server answers, and the ККТ reports its shift (a job of `getShiftStatus`).
    /// Ok: how the ККТ's shift stands.
    pub async fn check(config: &AtolFiscal) -> Result<String, AtolCheckError> {
        let driver = Driver::new(config, Taxation::Osn)?;
        let url = || config.url.to_string();
        let uuid = uuid::Uuid::new_v4().to_string();
        let job = serde_json::json!({"uuid": uuid, "request": [{"type": "getShiftStatus"}]});
        let queued = driver
            .http
            .post(driver.url("requests"))
            .json(&job)
            .send()
            .await
            .map_err(|e| AtolCheckError::Unreachable {
                url: url(),
                detail: crate::gateway::error_chain(&e),
            })?;
        if !queued.status().is_success() {
            return Err(AtolCheckError::Refused {
                url: url(),
                status: queued.status().as_u16(),
            });
        }
        let reading = |source| AtolCheckError::Reading { url: url(), source };
        for _ in 0..20 {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            let body: Value = driver
                .http
                .get(driver.url(&format!("requests/{uuid}")))
                .send()
                .await
                .map_err(reading)?
                .json()
                .await
                .map_err(reading)?;
            let result = &body["results"][0];
            match result["status"].as_str() {
                Some("ready") => {
                    let shift = &result["result"]["shiftStatus"];
                    let state = shift["state"].as_str().unwrap_or("unknown");
                    return match state {
                        "expired" => Err(AtolCheckError::ShiftExpired {
                            number: shift["number"].to_string(),
                        }),
                        _ => Ok(format!("the ККТ answers; its shift is {state}")),
                    };
                }
                Some("error") => {
                    let (why, _) = explain(
                        result["error"]["code"].as_i64().unwrap_or(0),
                        result["error"]["description"].as_str().unwrap_or(""),
                    );
                    return Err(AtolCheckError::Kkt {
                        why: why.to_string(),
                    });
                }
                _ => continue,
            }
        }
        Err(AtolCheckError::Timeout)
    }
}

/// Why `doctor`'s check of the ATOL driver failed, with what to do.
#[derive(Debug, thiserror::Error)]
pub enum AtolCheckError {
    #[error(transparent)]
    Setup(#[from] FiscalSetupError),
    #[error("the ATOL driver's web server at {url} does not answer: {detail}; start the driver's service")]
    Unreachable { url: String, detail: String },
    #[error("the ATOL driver's web server at {url} refused a status job: HTTP {status}")]
    Refused { url: String, status: u16 },
    #[error("the ATOL driver's web server at {url}: reading the status job: {source}")]
    Reading {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "the ККТ's shift {number} is open more than 24 h: close it (Z-report) and open a new one"
    )]
    ShiftExpired { number: String },
    #[error("the ККТ does not answer: {why}")]
    Kkt { why: String },
    #[error("the ККТ did not answer a status job within 5 s")]
    Timeout,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_quantities_are_written_as_decimal_text_never_floats() {
        let json = serde_json::to_string(&(Roubles(Kopecks::new(149_950).unwrap()), Amount3(250)))
            .unwrap();
        assert_eq!(json, "[1499.50,0.25]");
        let json =
            serde_json::to_string(&(Roubles(Kopecks::new(7).unwrap()), Amount3(3000))).unwrap();
        assert_eq!(json, "[0.07,3]");
    }

    #[test]
    fn each_kkt_error_reads_with_its_fix() {
        let (paper, p) = explain(44, "Нет бумаги");
        assert!(paper.contains("вставьте новый рулон") && !p, "{paper}");
        let (shift, _) = explain(68, "");
        assert!(shift.contains("Z-отчёт"), "{shift}");
        let (full, p) = explain(121, "");
        assert!(full.contains("замените фискальный накопитель") && p);
        let (vat, p) = explain(144, "Неверная ставка НДС");
        assert!(vat.contains("fiscal.taxation") && p);
        let (other, _) = explain(999, "что-то");
        assert!(other.contains("999") && other.contains("что-то"));
    }
}
