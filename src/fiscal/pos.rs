//! `[fiscal] mode = "pos"`: the POS prints the receipt; chasti tells it which one is owed.
//!
//! One `POST` to `fiscal.pos.webhook_url` a receipt, at least once (a receipt stays owed until
//! the POS answers 2xx, across restarts), JSON signed with HMAC-SHA256 of the body under
//! `fiscal.pos.key` (`X-Chasti-Signature: sha256=<hex>`), with the receipt's id as `event_id`
//! (and `X-Chasti-Event`) for the POS to deduplicate on. The POS reports the receipt it printed
//! with `POST /api/v1/orders/{id}/receipts`. The body carries the customer's whole phone and
//! e-mail: the POS needs them for an electronic receipt (tag 1008), and it is the shop's own.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::{FiscalSetupError, Step};
use crate::config::PosFiscal;
use crate::money::Kopecks;
use crate::orders::order::Order;
use crate::orders::receipt::{Movement, Receipt, ReceiptStatus};

/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "x-chasti-signature";

pub(super) struct Webhook {
    http: reqwest::Client,
    config: PosFiscal,
}

/// What the POS is told.
#[derive(Debug, Serialize)]
pub struct ReceiptOwed<'a> {
    /// The receipt's id: the same on every delivery of it.
    pub event_id: uuid::Uuid,
    /// `receipt.owed`.
    #[serde(rename = "type")]
    pub kind_of_event: &'static str,
    /// `sell` («приход») or `sell_return` («возврат прихода»).
    pub kind: &'static str,
    /// Kopecks, paid «безналичными» (electronically).
    pub amount: Kopecks,
    pub amount_text: String,
    /// `payment`, `reversal` or `refund`.
    pub movement: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_key: Option<String>,
    pub order_id: uuid::Uuid,
    pub order_number: &'a str,
    pub till: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cashier: Option<&'a str>,
    pub items: Vec<Line>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    pub owed_at: chrono::DateTime<chrono::Utc>,
    /// Where to report the printed receipt (relative to the till API).
    pub report_to: String,
}

impl<'a> ReceiptOwed<'a> {
    pub fn of(order: &'a Order, receipt: &Receipt) -> ReceiptOwed<'a> {
        let (movement, refund_key) = match &receipt.movement {
            Movement::Payment => ("payment", None),
            Movement::Reversal => ("reversal", None),
            Movement::Refund(key) => ("refund", key.as_ref().map(|k| k.to_string())),
        };
        ReceiptOwed {
            event_id: receipt.id,
            kind_of_event: "receipt.owed",
            kind: receipt.kind.code(),
            amount: receipt.amount,
            amount_text: receipt.amount.to_string(),
            movement,
            refund_key,
            order_id: order.id,
            order_number: order.order_number.as_str(),
            till: order.till.as_str(),
            cashier: order.cashier.as_deref(),
            items: receipt.lines.iter().map(Line::of).collect(),
            customer_phone: order.customer.phone.as_ref().map(|p| p.to_string()),
            customer_email: order.customer.email.as_ref().map(|e| e.to_string()),
            owed_at: receipt.owed_at,
            report_to: format!("/api/v1/orders/{}/receipts", order.id),
        }
    }
}

/// One line of the receipt, in the till API's spelling.
#[derive(Debug, Serialize)]
pub struct Line {
    pub name: String,
    /// `"1"`, `"0,5"`.
    pub quantity: String,
    pub price: Kopecks,
    pub amount: Kopecks,
    pub vat: &'static str,
    pub payment_object: &'static str,
    pub payment_method: &'static str,
}

impl Line {
    fn of(i: &crate::orders::cart::Item) -> Line {
        Line {
            name: i.name.to_string(),
            quantity: i.quantity.to_string(),
            price: i.price,
            amount: i.amount().unwrap_or(Kopecks::ZERO),
            vat: i.vat.code(),
            payment_object: i.object.code(),
            payment_method: i.method.code(),
        }
    }
}

/// `sha256=<hex>` of the body under the key.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length: new_from_slice cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Webhook {
    pub(super) fn new(config: &PosFiscal) -> Result<Webhook, FiscalSetupError> {
        // The POS may be on the till host (http) or the shop's own network with a public or
        // bundled CA: the OS store as well as the bundled CAs.
        let trust = crate::gateway::tls::public_trust();
        let http = crate::gateway::tls::http_client(&trust, config.timeout)
            .map_err(FiscalSetupError::Tls)?
            .connect_timeout(config.timeout.min(std::time::Duration::from_secs(5)))
            .build()
            .map_err(FiscalSetupError::Client)?;
        Ok(Webhook {
            http,
            config: config.clone(),
        })
    }

    /// Delivers an owed receipt; one the POS has is waited on (its report comes to the API).
    pub(super) async fn step(&self, order: &Order, receipt: &Receipt) -> Step {
        if !matches!(receipt.status, ReceiptStatus::Owed) {
            return Step::Waiting;
        }
        let body = match serde_json::to_vec(&ReceiptOwed::of(order, receipt)) {
            Ok(body) => body,
            Err(e) => {
                return Step::Problem {
                    why: format!("the webhook body could not be made: {e}"),
                    permanent: true,
                    new_round: false,
                }
            }
        };
        let signature = sign(self.config.key.expose().as_bytes(), &body);
        let sent = self
            .http
            .post(self.config.webhook_url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header("x-chasti-event", receipt.id.to_string())
            .body(body)
            .send()
            .await;
        match sent {
            Ok(reply) if reply.status().is_success() => Step::Sent,
            Ok(reply) => Step::Problem {
                why: format!("the POS webhook answered HTTP {}", reply.status().as_u16()),
                permanent: false,
                new_round: false,
            },
            Err(e) => Step::Problem {
                why: format!(
                    "the POS webhook at {} did not answer: {}",
                    self.config.webhook_url,
                    crate::gateway::error_chain(&e)
                ),
                permanent: false,
                new_round: false,
            },
        }
    }
}
