//! Why something did not happen, kept as facts (a method and an error code, amounts, a state),
//! not as sentences: the English line for the log and the API, and the Russian line for the
//! cashier and the manager, are made from the facts when they are shown. Stored as is (record
//! schema 3): add variants at the end only.

use serde::{Deserialize, Serialize};

use super::state::StateKind;
use crate::gateway::{error as gateway_text, ErrorCode, GatewayError};
use crate::money::Kopecks;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// The gateway refused a call (errorCode ≠ 0): the method, the code and the bank's words.
    Refused {
        method: String,
        code: i64,
        message: String,
    },
    /// A call that got no usable answer: what kind of failure, and the client's English detail.
    Call {
        method: String,
        failure: CallFailure,
        detail: String,
    },
    /// The bank declined the payment: its actionCode and description, when it gave them.
    BankDeclined {
        action_code: Option<i64>,
        description: Option<String>,
    },
    /// The customer used the three attempts the bank allows.
    AttemptsExhausted,
    /// chasti stopped before the gateway registered the sale.
    SaleInterrupted,
    /// The register reply was lost, and the order it made at the bank is declined: by chasti
    /// (its link was never handed out) or by the bank.
    RegisterReplyLost { bank_id: String, by: Decliner },
    /// The order number is used at the bank by another order (not this sale's).
    NumberTaken {
        number: String,
        bank_id: String,
        bank_amount: Kopecks,
        amount: Kopecks,
    },
    /// The gateway has the order but did not say its orderId.
    NoOrderId,
    /// The gateway shows a status for an order whose payment link was never handed out.
    LinkNeverHandedOut {
        bank_id: String,
        order_status: Option<i64>,
    },
    /// The bank refused a deposit in a way a retry cannot fix.
    DepositRefused(Box<Reason>),
    /// Automatic deposits of a hold failed this many times; the last one's reason.
    DepositGaveUp { tries: u32, last: Box<Reason> },
    /// A hold kept past `orders.hold_max` without a deposit.
    HoldNotDeposited,
    /// The gateway took another amount than the order's.
    TakenDiffers { taken: Kopecks, amount: Kopecks },
    /// A reversal the gateway did not make: it still holds the money.
    StillHeld,
    /// A refund the gateway did not make.
    NoNewRefund,
    /// An order refunding with no refund under way.
    NoPendingRefund,
    /// The gateway's refunded sum is not what chasti expected after its refund.
    RefundedDiffers {
        at_bank: Kopecks,
        expected: Option<Kopecks>,
    },
    /// The gateway shows refunds chasti did not make.
    RefundedOutside { at_bank: Kopecks, made: Kopecks },
    /// The payment was reversed outside chasti.
    ReversedOutside,
    /// The gateway shows a payment on an order chasti had closed.
    PaidAfterClose,
    /// chasti and the gateway disagree on where the order is.
    StatusDisagrees { state: StateKind, order_status: i64 },
    /// An order a crash left half-done that recovery could not reconcile.
    NotReconciled {
        state: StateKind,
        tries: u32,
        last: Option<String>,
    },
    /// The gateway's status answer has no orderStatus.
    NoStatus,
    /// The gateway holds money on a one-stage order.
    HeldOneStage,
    /// Words an earlier version of chasti wrote (record schemas 1 and 2): the English line and,
    /// when it kept one, what the cashier was told.
    Said { what: String, text: Option<String> },
}

/// How a gateway call failed without a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallFailure {
    /// The request was never sent.
    Unreachable,
    /// The request may have been sent; no usable answer came.
    NoAnswer,
    /// chasti's own set-up (TLS trust, settings) stopped the call.
    Setup,
}

/// Who declined an order whose register reply was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decliner {
    Chasti,
    Bank,
}

const LINK_LOST: &str = "Банк не вернул ссылку на оплату; заказ закрыт, повторите продажу.";
const NUMBER_TAKEN: &str =
    "Номер заказа уже занят в банке другим заказом; продажа не создана, повторите её.";
const INTERRUPTED: &str = "Продажа прервалась до регистрации в банке; повторите продажу.";
const ATTENTION: &str =
    "Требует проверки менеджером: банк и касса расходятся (подробности в журнале)";

impl From<&GatewayError> for Reason {
    fn from(e: &GatewayError) -> Reason {
        match e {
            GatewayError::Refused {
                method,
                code,
                message,
            } => Reason::Refused {
                method: method.path().to_string(),
                code: code.code(),
                message: message.clone(),
            },
            GatewayError::Unreachable { method, .. } => Reason::Call {
                method: method.path().to_string(),
                failure: CallFailure::Unreachable,
                detail: e.to_string(),
            },
            GatewayError::Tls { method, .. } => Reason::Call {
                method: method.path().to_string(),
                failure: CallFailure::Setup,
                detail: e.to_string(),
            },
            GatewayError::Settings(_) => Reason::Call {
                method: String::new(),
                failure: CallFailure::Setup,
                detail: e.to_string(),
            },
            GatewayError::Timeout { method, .. }
            | GatewayError::HttpStatus { method, .. }
            | GatewayError::Connection { method, .. }
            | GatewayError::UnreadableReply { method, .. } => Reason::Call {
                method: method.path().to_string(),
                failure: CallFailure::NoAnswer,
                detail: e.to_string(),
            },
        }
    }
}

impl Reason {
    /// Words an earlier version wrote, with what the cashier was told when it kept that.
    pub fn said(what: impl Into<String>, text: Option<String>) -> Reason {
        Reason::Said {
            what: what.into(),
            text,
        }
    }

    /// The bank declined the payment, in the words of its status answer.
    pub fn declined(action_code: Option<i64>, description: Option<&str>) -> Reason {
        Reason::BankDeclined {
            action_code,
            description: description
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_string),
        }
    }

    /// In English, for the log, the journal and the API's `why`.
    pub fn what(&self) -> String {
        match self {
            Reason::Refused {
                method,
                code,
                message,
            } => format!(
                "{method}: the gateway refused with errorCode {code} ({}): {message}",
                ErrorCode::from_code(*code).meaning()
            ),
            Reason::Call { detail, .. } => detail.clone(),
            Reason::BankDeclined {
                action_code,
                description,
            } => match (description, action_code) {
                (Some(d), _) => d.clone(),
                (None, code) => format!("actionCode {}", code.unwrap_or(0)),
            },
            Reason::AttemptsExhausted => {
                "the payment attempts ran out (the bank allows three)".into()
            }
            Reason::SaleInterrupted => {
                "the sale was interrupted before the gateway registered it".into()
            }
            Reason::RegisterReplyLost { bank_id, by } => match by {
                Decliner::Chasti => format!(
                    "the register reply was lost; the order {bank_id} was declined at the bank"
                ),
                Decliner::Bank => format!(
                    "the register reply was lost; the bank shows the order {bank_id} declined"
                ),
            },
            Reason::NumberTaken {
                number,
                bank_id,
                bank_amount,
                amount,
            } => format!(
                "the order number {number} is already used at the bank by another order ({bank_id}, {bank_amount}); this sale of {amount} was not registered"
            ),
            Reason::NoOrderId => "the gateway has the order but did not say its orderId".into(),
            Reason::LinkNeverHandedOut {
                bank_id,
                order_status,
            } => format!(
                "the gateway shows orderStatus {} for order {bank_id}, whose payment link was never handed out",
                order_status.map(|s| s.to_string()).unwrap_or_default()
            ),
            Reason::DepositRefused(why) => {
                format!("the bank refused the deposit: {}", why.what())
            }
            Reason::DepositGaveUp { tries, last } => format!(
                "deposit.do failed {tries} times, the last: {}; the hold is released by the bank after about 7 days",
                last.what()
            ),
            Reason::HoldNotDeposited => "the hold was not deposited in time; the bank releases holds after about 7 days".into(),
            Reason::TakenDiffers { taken, amount } => {
                format!("the gateway took {taken}, the order is for {amount}")
            }
            Reason::StillHeld => "the gateway still holds the money".into(),
            Reason::NoNewRefund => "the gateway shows no new refund".into(),
            Reason::NoPendingRefund => "refunding without a pending refund".into(),
            Reason::RefundedDiffers { at_bank, expected } => format!(
                "the gateway shows {at_bank} refunded, chasti expected {}",
                expected
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "more than the limit".into())
            ),
            Reason::RefundedOutside { at_bank, made } => {
                format!("the gateway shows {at_bank} refunded, chasti made {made}")
            }
            Reason::ReversedOutside => "the payment was reversed outside chasti".into(),
            Reason::PaidAfterClose => {
                "the gateway shows a payment on an order chasti had closed".into()
            }
            Reason::StatusDisagrees {
                state,
                order_status,
            } => format!(
                "chasti has the order {state}, the gateway reports orderStatus {order_status}"
            ),
            Reason::NotReconciled { state, tries, last } => format!(
                "interrupted in {} and not reconciled with the gateway after {tries} tries at start; last answer: {}",
                state.name(),
                last.as_deref().unwrap_or("none")
            ),
            Reason::NoStatus => "the gateway does not report this order's status".into(),
            Reason::HeldOneStage => "the gateway holds money on a one-stage order".into(),
            Reason::Said { what, .. } => what.clone(),
        }
    }

    /// In Russian, for the cashier and the manager: what happened and, where they can act,
    /// what to do.
    pub fn text(&self) -> String {
        match self {
            Reason::Refused { code, message, .. } => {
                gateway_text::refused_text(ErrorCode::from_code(*code), message)
            }
            Reason::Call { failure, .. } => match failure {
                CallFailure::Unreachable => gateway_text::UNREACHABLE.into(),
                CallFailure::NoAnswer => gateway_text::NO_ANSWER.into(),
                CallFailure::Setup => gateway_text::SETUP.into(),
            },
            Reason::BankDeclined {
                action_code,
                description,
            } => match (description, action_code) {
                (Some(d), _) => d.clone(),
                (None, code) => format!("код банка {}", code.unwrap_or(0)),
            },
            Reason::AttemptsExhausted => "попытки оплаты исчерпаны (банк допускает три)".into(),
            Reason::SaleInterrupted => INTERRUPTED.into(),
            Reason::RegisterReplyLost { .. } => LINK_LOST.into(),
            Reason::NumberTaken { .. } => NUMBER_TAKEN.into(),
            Reason::DepositRefused(why) => format!("Банк не списал сумму: {}", why.text()),
            Reason::Said { what, text } => text.clone().unwrap_or_else(|| what.clone()),
            Reason::NoOrderId
            | Reason::LinkNeverHandedOut { .. }
            | Reason::DepositGaveUp { .. }
            | Reason::HoldNotDeposited
            | Reason::TakenDiffers { .. }
            | Reason::StillHeld
            | Reason::NoNewRefund
            | Reason::NoPendingRefund
            | Reason::RefundedDiffers { .. }
            | Reason::RefundedOutside { .. }
            | Reason::ReversedOutside
            | Reason::PaidAfterClose
            | Reason::StatusDisagrees { .. }
            | Reason::NotReconciled { .. }
            | Reason::NoStatus
            | Reason::HeldOneStage => ATTENTION.into(),
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::Method;

    #[test]
    fn a_gateway_error_keeps_its_facts_and_reads_as_the_gateway_said_it() {
        let refused = GatewayError::refused(Method::Register, 5, "Access denied");
        let reason = Reason::from(&refused);
        assert_eq!(reason.what(), refused.to_string());
        assert_eq!(reason.text(), refused.cashier_text());
        let unreachable = GatewayError::Unreachable {
            method: Method::Register,
            host: "h".into(),
            detail: "refused".into(),
        };
        assert_eq!(
            Reason::from(&unreachable).text(),
            unreachable.cashier_text()
        );
        let timeout = GatewayError::Timeout {
            method: Method::Deposit,
            after: std::time::Duration::from_secs(1),
        };
        assert_eq!(Reason::from(&timeout).text(), timeout.cashier_text());
        assert_eq!(Reason::from(&timeout).what(), timeout.to_string());
    }

    #[test]
    fn an_earlier_versions_words_read_as_they_were_written() {
        let said = Reason::Said {
            what: "errorCode 5".into(),
            text: Some("Банк отказал".into()),
        };
        assert_eq!(said.what(), "errorCode 5");
        assert_eq!(said.text(), "Банк отказал");
        let declined = Reason::declined(Some(116), Some(" Недостаточно средств "));
        assert_eq!(declined.text(), "Недостаточно средств");
        assert_eq!(
            Reason::declined(Some(116), Some("")).text(),
            "код банка 116"
        );
    }
}
