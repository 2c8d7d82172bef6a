//! `[fiscal] mode = "bank"`: the bank's cloud fiscalisation issues each receipt from the cart
//! that went with the order (register.do) or with the movement (refund.do, reverse.do on the
//! ecom host); chasti reads what it made with `getReceiptStatus` and records it. A receipt the
//! bank reports failed (its processing error, its attempts exhausted, data it calls invalid)
//! needs a person in the bank's merchant cabinet: «чек не пробит», with the bank's words.

use super::Step;
use crate::engine::Engine;
use crate::gateway::{number_text, BankReceipt};
use crate::orders::order::Order;
use crate::orders::receipt::{Fiscal, Receipt, ReceiptKind, ReceiptStatus};

pub(super) struct Cloud {
    engine: Engine,
}

impl Cloud {
    pub(super) fn new(engine: Engine) -> Cloud {
        Cloud { engine }
    }

    pub(super) async fn step(&self, order: &Order, receipt: &Receipt) -> Step {
        let report = match self.engine.bank_receipts(order).await {
            Ok(report) => report,
            Err(e) => {
                return Step::Problem {
                    why: format!("Банк не ответил о чеке: {}", e.cashier_text()),
                    permanent: false,
                    new_round: false,
                }
            }
        };
        // Ours and the bank's, matched in order among those of the same kind and amount (two
        // refunds of one sum are two receipts of it, in the order they happened).
        let same = |r: &&Receipt| r.kind == receipt.kind && r.amount == receipt.amount;
        let nth = order
            .receipts
            .iter()
            .filter(same)
            .position(|r| r.id == receipt.id)
            .unwrap_or(0);
        let return_wanted = receipt.kind == ReceiptKind::SellReturn;
        let theirs: Vec<&BankReceipt> = report
            .receipts
            .iter()
            .filter(|b| {
                b.is_return() == return_wanted
                    && b.payload
                        .as_ref()
                        .and_then(|p| p.total)
                        .is_none_or(|t| t == receipt.amount.get())
            })
            .collect();
        let Some(bank) = theirs.get(nth) else {
            return Step::Waiting;
        };
        match bank.receipt_status {
            3 => {
                let payload = bank.payload.as_ref();
                let number = payload
                    .and_then(|p| p.fiscal_document_number.as_ref())
                    .and_then(number_text)
                    .and_then(|n| n.parse::<u64>().ok());
                let sign = payload
                    .and_then(|p| p.fiscal_document_attribute.as_ref())
                    .and_then(number_text);
                let fn_number = payload.and_then(|p| p.fn_number.clone());
                match (number, sign, fn_number) {
                    (Some(document_number), Some(sign), Some(fn_number)) => Step::Issued(Fiscal {
                        document_number,
                        sign,
                        fn_number,
                        at: self.engine.now(),
                    }),
                    _ => Step::Problem {
                        why: "Банк сообщил, что чек пробит, но без номера ФД, ФП или ФН".into(),
                        permanent: true,
                        new_round: false,
                    },
                }
            }
            4..=6 => {
                let error = bank.error.as_ref();
                let text = error.and_then(|e| e.text.clone()).unwrap_or_default();
                let what_to_do = match error.and_then(|e| e.recommendation) {
                    Some(1) => "повторите отправку чека в личном кабинете банка",
                    Some(2) => {
                        "исправьте состав чека и пробейте его заново в личном кабинете банка"
                    }
                    _ => "устраните ошибку облачной кассы и пробейте чек в личном кабинете банка",
                };
                Step::Problem {
                    why: format!(
                        "Облачная касса банка не пробила чек (receiptStatus {}: {text}): {what_to_do}",
                        bank.receipt_status
                    ),
                    permanent: true,
                    new_round: false,
                }
            }
            _ if matches!(receipt.status, ReceiptStatus::Owed) => Step::Sent,
            _ => Step::Waiting,
        }
    }
}
