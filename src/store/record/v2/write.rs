//! Writing an order as a schema 3 record.

use super::*;

pub(in crate::store::record) fn encode(
    o: &Order,
    with_history: bool,
) -> Result<Vec<u8>, Unreadable> {
    let created = micros(o.created_at);
    let record: Record<Reason, EventKind> = Record {
        id: *o.id.as_bytes(),
        number: o.order_number.to_string(),
        amount: o.amount.get(),
        two_stage: o.mode == Mode::TwoStage,
        description: o.description.as_ref().map(|d| d.to_string()),
        till: o.till.to_string(),
        cashier: o.cashier.clone(),
        key: o.idempotency_key.as_ref().map(|k| k.to_string()),
        created,
        updated: after(created, o.updated_at),
        expires: after(created, o.link_expires_at),
        held: o.held_at.map(|t| after(created, t)),
        paid: o.paid_at.map(|t| after(created, t)),
        state: state_code(o.state.kind()),
        why: o.state.why().cloned(),
        state_cashier: None,
        bank: match (o.state.bank(), o.state.bank_id()) {
            (Some(bank), _) => Some(bank_of(bank)),
            // NeedsAttention may know the bank's id without a link.
            (None, Some(id)) => Some(Bank {
                id: BankId::Text(id.to_string()),
                link: Link::Whole(String::new()),
            }),
            (None, None) => None,
        },
        deposited: o.deposited.get(),
        refunded: o.refunded.get(),
        refunds: o
            .refunds
            .iter()
            .map(|r| RefundRecord {
                key: r.key.to_string(),
                amount: r.amount.get(),
                status: match &r.status {
                    RefundStatus::Pending => RefundStatusRecord::Pending,
                    RefundStatus::Done => RefundStatusRecord::Done,
                    RefundStatus::Failed { why } => RefundStatusRecord::Failed(why.clone()),
                },
                requested: after(created, r.requested_at),
            })
            .collect(),
        reversal_attempted: o.reversal_attempted,
        cancel_requested: o.cancel_requested,
        attempts: o
            .failed_attempts
            .iter()
            .map(|a| AttemptV2 {
                at: after(created, a.at),
                code: a.code,
                why: a.why.clone(),
            })
            .collect(),
        version: o.version,
        history: o
            .history
            .iter()
            .take(if with_history { usize::MAX } else { 0 })
            .map(|e| EventRecord {
                at: after(created, e.at),
                from: state_code(e.from),
                to: state_code(e.to),
                kind: e.kind.clone(),
                actor: e
                    .actor
                    .as_ref()
                    .map(|a| (a.token.clone(), a.cashier.clone())),
            })
            .collect(),
    };
    let added = Added {
        cart: o
            .cart
            .as_ref()
            .map(|cart| cart.items().iter().map(item_record).collect()),
        phone: o.customer.phone.as_ref().map(|p| p.to_string()),
        email: o.customer.email.as_ref().map(|e| e.to_string()),
        receipts: o
            .receipts
            .iter()
            .map(|r| ReceiptRecord {
                id: *r.id.as_bytes(),
                kind: r.kind,
                amount: r.amount.get(),
                movement: match &r.movement {
                    Movement::Payment => MovementRecord::Payment,
                    Movement::Reversal => MovementRecord::Reversal,
                    Movement::Refund(key) => {
                        MovementRecord::Refund(key.as_ref().map(|k| k.to_string()))
                    }
                },
                lines: r.lines.iter().map(item_record).collect(),
                owed: after(created, r.owed_at),
                due: after(created, r.due_by),
                late: r.late,
                status: match &r.status {
                    ReceiptStatus::Owed => ReceiptStatusRecord::Owed,
                    ReceiptStatus::Sent { at } => ReceiptStatusRecord::Sent(after(created, *at)),
                    ReceiptStatus::Issued(f) => ReceiptStatusRecord::Issued {
                        number: f.document_number,
                        sign: f.sign.clone(),
                        fn_number: f.fn_number.clone(),
                        at: after(created, f.at),
                    },
                    ReceiptStatus::Failed { why } => ReceiptStatusRecord::Failed(why.clone()),
                },
                tries: r.tries,
                last_problem: r.last_problem.clone(),
                round: r.round,
            })
            .collect(),
        deposit_asked: o.deposit_asked.map(Kopecks::get),
    };
    let record = RecordV3 {
        order: record,
        added,
    };
    let mut bytes = vec![TAG];
    let body = postcard::to_allocvec(&record)
        .map_err(|e| Unreadable(format!("the record cannot be written: {e}")))?;
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

fn item_record(i: &Item) -> ItemRecord {
    ItemRecord {
        name: i.name.to_string(),
        quantity: i.quantity.thousandths(),
        price: i.price.get(),
        vat: i.vat,
        object: i.object,
        method: i.method,
    }
}
