//! One line of an order's history: when, from which state to which, what happened (a typed
//! kind with only the facts that vary) and who asked. The English line for the log and the
//! Russian line for the cashier are derived from the kind, so the store keeps neither.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::reason::Reason;
use super::receipt::ReceiptKind;
use super::state::StateKind;
use crate::domain::{IdempotencyKey, Phone};
use crate::money::Kopecks;

/// Who asked for an action: the API token's name from the config (never the token), and the
/// cashier named in the `X-Cashier` header when the till sends one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier: Option<String>,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.cashier {
            Some(cashier) => write!(f, "{} ({cashier})", self.token),
            None => f.write_str(&self.token),
        }
    }
}

/// One line of an order's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub from: StateKind,
    pub to: StateKind,
    pub kind: EventKind,
    /// Who asked for it; none when the bank or chasti itself moved the order.
    pub actor: Option<Actor>,
}

impl Event {
    /// What happened, in English, for logs and the integrator.
    pub fn what(&self) -> String {
        self.kind.what()
    }

    /// What happened, in Russian, for the cashier and the manager.
    pub fn text(&self) -> String {
        self.kind.text()
    }
}

impl EventKind {
    /// The action on the order's money a person asked for, in Russian; None for what the bank
    /// or chasti did, and for reprints and SMS notes.
    pub fn money_action(&self) -> Option<&'static str> {
        match self {
            EventKind::CancelRequested => Some("отмена продажи"),
            EventKind::DepositRequested | EventKind::PartDepositRequested { .. } => {
                Some("списание")
            }
            EventKind::ReversalRequested => Some("отмена оплаты"),
            EventKind::RefundRequested { .. } => Some("возврат"),
            _ => None,
        }
    }
}

/// What happened to an order. Stored as is (record schema 3; schema 2's lines are read through
/// `store::record::v2_kind`): add variants at the end only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Started {
        amount: Kopecks,
        /// The lines of its cart (0: the sale carried none).
        items: u16,
    },
    /// The bank registered the order (its id is on the order).
    Registered,
    RegistrationFailed {
        why: Reason,
    },
    HoldConfirmed {
        amount: Kopecks,
    },
    DepositRequested,
    DepositFailed {
        why: Reason,
    },
    Paid {
        amount: Kopecks,
    },
    Declined {
        why: Reason,
    },
    Expired,
    AttemptFailed {
        code: i64,
        why: String,
    },
    CancelRequested,
    Cancelled,
    ReversalRequested,
    Reversed,
    ReversalFailed {
        why: Reason,
    },
    RefundRequested {
        key: IdempotencyKey,
        amount: Kopecks,
    },
    RefundDone {
        key: IdempotencyKey,
        amount: Kopecks,
    },
    RefundFailed {
        key: IdempotencyKey,
        amount: Kopecks,
        why: Reason,
    },
    /// A slip printed again: the slip in English and in Russian.
    Reprinted {
        slip: String,
        russian: String,
    },
    Attention {
        why: Reason,
    },
    /// A line of a record written before history lines were typed (schema 1): its words.
    Written {
        what: String,
        text: String,
    },
    /// What became of the payment link sent by SMS (no change of state).
    Sms(SmsNote),
    /// After a restore from a backup: a refund the bank made that the backup did not have.
    RefundLearned {
        amount: Kopecks,
    },
    /// After a restore from a backup: a reversal the bank made that the backup did not have.
    ReversalLearned,
    /// A fiscal receipt was issued: its kind, amount and what the ККТ gave it.
    ReceiptIssued {
        kind: ReceiptKind,
        amount: Kopecks,
        document_number: u64,
        sign: String,
        fn_number: String,
    },
    /// A fiscal receipt cannot be issued without a person: the issuer's words.
    ReceiptFailed {
        kind: ReceiptKind,
        amount: Kopecks,
        why: String,
    },
    /// A fiscal receipt passed its deadline unissued.
    ReceiptLate {
        kind: ReceiptKind,
        amount: Kopecks,
    },
    /// A manager asked to take part of a hold; the rest is released.
    PartDepositRequested {
        amount: Kopecks,
        held: Kopecks,
    },
}

/// The payment link by SMS: handed to the provider, failed, or reported delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SmsNote {
    Sent {
        to: Phone,
        provider: String,
        /// The provider's id of the message, where it gives one.
        message_id: Option<String>,
        parts: u8,
    },
    Failed {
        to: Phone,
        provider: String,
        /// The provider's reason, in its words.
        why: String,
    },
    Delivered {
        to: Phone,
        provider: String,
    },
    /// Asked for and on its way: written before the first try, so a stop or a crash before the
    /// outcome leaves a request that the next start sends.
    Requested {
        to: Phone,
        provider: String,
    },
}

impl SmsNote {
    fn what(&self) -> String {
        match self {
            SmsNote::Sent {
                to,
                provider,
                message_id,
                parts,
            } => format!(
                "payment link sent by SMS to {} via {provider} ({parts} part(s){})",
                to.masked(),
                message_id
                    .as_ref()
                    .map(|id| format!(", id {id}"))
                    .unwrap_or_default()
            ),
            SmsNote::Failed { to, provider, why } => {
                format!("SMS to {} via {provider} failed: {why}", to.masked())
            }
            SmsNote::Delivered { to, provider } => {
                format!("SMS to {} delivered ({provider} reports)", to.masked())
            }
            SmsNote::Requested { to, provider } => {
                format!(
                    "payment link by SMS to {} requested ({provider})",
                    to.masked()
                )
            }
        }
    }

    fn text(&self) -> String {
        match self {
            SmsNote::Sent { to, .. } => {
                format!("Ссылка на оплату отправлена по SMS на {}", to.masked())
            }
            SmsNote::Failed { to, why, .. } => {
                format!("SMS на {} не отправлено: {why}", to.masked())
            }
            SmsNote::Delivered { to, .. } => format!("SMS на {} доставлено", to.masked()),
            SmsNote::Requested { to, .. } => {
                format!("Запрошена отправка ссылки по SMS на {}", to.masked())
            }
        }
    }
}

impl EventKind {
    pub fn what(&self) -> String {
        match self {
            EventKind::Started { amount, items } => match items {
                0 => format!("sale of {amount} started"),
                n => format!("sale of {amount} started ({n} cart lines)"),
            },
            EventKind::Registered => "registered at the gateway".into(),
            EventKind::RegistrationFailed { why, .. } => format!("registration failed: {why}"),
            EventKind::HoldConfirmed { .. } => "the gateway holds the amount".into(),
            EventKind::DepositRequested => "deposit requested".into(),
            EventKind::DepositFailed { why } => format!("deposit did not happen: {why}"),
            EventKind::Paid { amount } => format!("paid: {amount} deposited"),
            EventKind::Declined { why } => format!("declined: {why}"),
            EventKind::Expired => "the payment link expired unpaid".into(),
            EventKind::AttemptFailed { code, why } => {
                format!("a payment attempt failed: actionCode {code}: {why}")
            }
            EventKind::CancelRequested => "cancel requested".into(),
            EventKind::Cancelled => "cancelled: declined at the gateway".into(),
            EventKind::ReversalRequested => "reversal requested".into(),
            EventKind::Reversed => "reversed".into(),
            EventKind::ReversalFailed { why } => format!("reversal failed: {why}"),
            EventKind::RefundRequested { key, amount } => {
                format!("refund {key} of {amount} requested")
            }
            EventKind::RefundDone { key, amount } => format!("refund {key} of {amount} done"),
            EventKind::RefundFailed { key, why, .. } => format!("refund {key} failed: {why}"),
            EventKind::Reprinted { slip, .. } => format!("{slip} printed again"),
            EventKind::Attention { why } => format!("needs attention: {why}"),
            EventKind::Written { what, .. } => what.clone(),
            EventKind::Sms(note) => note.what(),
            EventKind::RefundLearned { amount } => {
                format!("refund of {amount} learned from the gateway after a restore")
            }
            EventKind::ReversalLearned => {
                "reversal learned from the gateway after a restore".into()
            }
            EventKind::ReceiptIssued {
                kind,
                amount,
                document_number,
                sign,
                fn_number,
            } => format!(
                "{} receipt of {amount} issued: FD {document_number}, FP {sign}, FN {fn_number}",
                kind.code()
            ),
            EventKind::ReceiptFailed { kind, amount, why } => format!(
                "{} receipt of {amount} cannot be issued: {why}",
                kind.code()
            ),
            EventKind::ReceiptLate { kind, amount } => format!(
                "{} receipt of {amount} not issued by its deadline",
                kind.code()
            ),
            EventKind::PartDepositRequested { amount, held } => {
                format!("deposit of {amount} of the {held} held requested")
            }
        }
    }

    pub fn text(&self) -> String {
        match self {
            EventKind::Started { amount, items } => match items {
                0 => format!("Продажа на {amount} начата"),
                n => format!("Продажа на {amount} начата, позиций в чеке: {n}"),
            },
            EventKind::Registered => "Банк зарегистрировал заказ, ссылка на оплату готова".into(),
            EventKind::RegistrationFailed { why } => why.text(),
            EventKind::HoldConfirmed { amount } => format!("Банк заблокировал сумму {amount}"),
            EventKind::DepositRequested => "Запрошено списание заблокированной суммы".into(),
            EventKind::DepositFailed { .. } => {
                "Списание не прошло; сумма по-прежнему заблокирована".into()
            }
            EventKind::Paid { amount } => format!("Оплачено: {amount}"),
            EventKind::Declined { why } => format!("Оплата отклонена: {}", why.text()),
            EventKind::Expired => "Время на оплату истекло, заказ закрыт в банке".into(),
            EventKind::AttemptFailed { why, .. } => {
                format!("Попытка оплаты не прошла: {why}. Покупатель может попробовать ещё раз")
            }
            EventKind::CancelRequested => "Запрошена отмена продажи".into(),
            EventKind::Cancelled => "Продажа отменена: ссылка на оплату больше не действует".into(),
            EventKind::ReversalRequested => "Запрошена отмена оплаты".into(),
            EventKind::Reversed => "Оплата отменена".into(),
            EventKind::ReversalFailed { .. } => {
                "Отмена оплаты не прошла; банк не допускает повторной отмены — оформите возврат"
                    .into()
            }
            EventKind::RefundRequested { amount, .. } => format!("Запрошен возврат {amount}"),
            EventKind::RefundDone { amount, .. } => format!("Возврат {amount} оформлен"),
            EventKind::RefundFailed { amount, .. } => format!("Возврат {amount} не прошёл"),
            EventKind::Reprinted { russian, .. } => format!("Напечатан повторно {russian}"),
            EventKind::Attention { .. } => {
                "Требует проверки менеджером: банк и касса расходятся (подробности в журнале)"
                    .into()
            }
            EventKind::Written { text, .. } => text.clone(),
            EventKind::Sms(note) => note.text(),
            EventKind::RefundLearned { amount } => {
                format!("Возврат {amount} узнан у банка после восстановления из резервной копии")
            }
            EventKind::ReversalLearned => {
                "Отмена оплаты узнана у банка после восстановления из резервной копии".into()
            }
            EventKind::ReceiptIssued {
                kind,
                amount,
                document_number,
                sign,
                ..
            } => {
                let title = kind.russian();
                format!("Пробит {title} на {amount}: ФД {document_number}, ФП {sign}")
            }
            EventKind::ReceiptFailed { kind, amount, why } => {
                format!("Не пробит {} на {amount}: {why}", kind.russian())
            }
            EventKind::PartDepositRequested { amount, held } => format!(
                "Запрошено списание {amount} из заблокированных {held}; остаток будет разблокирован"
            ),
            EventKind::ReceiptLate { kind, amount } => {
                format!(
                    "Чек не пробит: {} на {amount} не пробит в срок",
                    kind.russian()
                )
            }
        }
    }
}
