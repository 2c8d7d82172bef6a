//! Reading a schema 2 or 3 record back into an order (schema 2 upgraded on the way).

use super::*;

fn kopecks(value: u64, what: &str) -> Result<Kopecks, Unreadable> {
    Kopecks::new(value).ok_or_else(|| Unreadable(format!("{what}: {value} is above the limit")))
}

/// A schema 2 record (after its tag byte), upgraded.
pub(in crate::store::record) fn decode_v2(bytes: &[u8]) -> Result<Order, Unreadable> {
    let r: Record<String, EventKindV2> =
        postcard::from_bytes(bytes).map_err(|e| Unreadable(e.to_string()))?;
    order_of(r.upgrade(), Added::default())
}

/// A schema 3 record (after its tag byte).
pub(in crate::store::record) fn decode(bytes: &[u8]) -> Result<Order, Unreadable> {
    let r: RecordV3 = postcard::from_bytes(bytes).map_err(|e| Unreadable(e.to_string()))?;
    order_of(r.order, r.added)
}

fn order_of(r: Record<Reason, EventKind>, added: Added) -> Result<Order, Unreadable> {
    let created = r.created;
    let kind = state_of_code(r.state)?;
    let why = || {
        r.why.clone().ok_or_else(|| {
            Unreadable(format!(
                "state {kind} needs its reason, and the record lacks it"
            ))
        })
    };
    let bank = r.bank.map(at_bank_or_id).transpose()?;
    let needs_bank = || match &bank {
        Some((Some(b), _)) => Ok(b.clone()),
        _ => Err(Unreadable(format!(
            "state {kind} needs the bank's order id and payment link, and the record lacks them"
        ))),
    };
    let state = match kind {
        StateKind::Registering => State::Registering,
        StateKind::AwaitingPayment => State::AwaitingPayment(needs_bank()?),
        StateKind::Held => State::Held(needs_bank()?),
        StateKind::Depositing => State::Depositing(needs_bank()?),
        StateKind::Paid => State::Paid(needs_bank()?),
        StateKind::Declined => State::Declined {
            bank: needs_bank()?,
            why: why()?,
        },
        StateKind::Expired => State::Expired(needs_bank()?),
        StateKind::Cancelled => State::Cancelled(needs_bank()?),
        StateKind::Failed => State::Failed { why: why()? },
        StateKind::Reversing => State::Reversing(needs_bank()?),
        StateKind::Reversed => State::Reversed(needs_bank()?),
        StateKind::Refunding => State::Refunding(needs_bank()?),
        StateKind::Refunded => State::Refunded(needs_bank()?),
        StateKind::PartiallyRefunded => State::PartiallyRefunded(needs_bank()?),
        StateKind::NeedsAttention => State::NeedsAttention {
            why: why()?,
            bank: bank.as_ref().map(|(_, id)| id.clone()),
        },
    };
    let parse = |what: &str, e: crate::domain::Invalid| Unreadable(format!("{what}: {e}"));
    Ok(Order {
        id: uuid::Uuid::from_bytes(r.id),
        order_number: OrderNumber::parse(&r.number).map_err(|e| parse("order number", e))?,
        amount: kopecks(r.amount, "amount")?,
        mode: if r.two_stage {
            Mode::TwoStage
        } else {
            Mode::OneStage
        },
        description: r
            .description
            .as_deref()
            .map(Description::parse)
            .transpose()
            .map_err(|e| parse("description", e))?,
        till: TillId::parse(&r.till).map_err(|e| parse("till", e))?,
        cashier: r.cashier,
        idempotency_key: r
            .key
            .as_deref()
            .map(IdempotencyKey::parse)
            .transpose()
            .map_err(|e| parse("idempotency key", e))?,
        created_at: time(created, 0)?,
        updated_at: time(created, r.updated)?,
        link_expires_at: time(created, r.expires)?,
        held_at: r.held.map(|t| time(created, t)).transpose()?,
        paid_at: r.paid.map(|t| time(created, t)).transpose()?,
        state,
        deposited: kopecks(r.deposited, "deposited")?,
        refunded: kopecks(r.refunded, "refunded")?,
        refunds: r
            .refunds
            .into_iter()
            .map(|f| {
                Ok(Refund {
                    key: IdempotencyKey::parse(&f.key).map_err(|e| parse("refund key", e))?,
                    amount: kopecks(f.amount, "refund")?,
                    status: match f.status {
                        RefundStatusRecord::Pending => RefundStatus::Pending,
                        RefundStatusRecord::Done => RefundStatus::Done,
                        RefundStatusRecord::Failed(why) => RefundStatus::Failed { why },
                    },
                    requested_at: time(created, f.requested)?,
                })
            })
            .collect::<Result<_, Unreadable>>()?,
        reversal_attempted: r.reversal_attempted,
        cancel_requested: r.cancel_requested,
        failed_attempts: r
            .attempts
            .into_iter()
            .map(|a| {
                Ok(FailedAttempt {
                    at: time(created, a.at)?,
                    code: a.code,
                    why: a.why,
                })
            })
            .collect::<Result<_, Unreadable>>()?,
        version: r.version,
        history: r
            .history
            .into_iter()
            .map(|e| {
                Ok(Event {
                    at: time(created, e.at)?,
                    from: state_of_code(e.from)?,
                    to: state_of_code(e.to)?,
                    kind: e.kind,
                    actor: e.actor.map(|(token, cashier)| Actor { token, cashier }),
                })
            })
            .collect::<Result<_, Unreadable>>()?,
        cart: added
            .cart
            .map(|items| items_of(items).map(Cart::kept))
            .transpose()?,
        receipts: added
            .receipts
            .into_iter()
            .map(|r| {
                Ok(Receipt {
                    id: uuid::Uuid::from_bytes(r.id),
                    kind: r.kind,
                    amount: kopecks(r.amount, "receipt")?,
                    movement: match r.movement {
                        MovementRecord::Payment => Movement::Payment,
                        MovementRecord::Reversal => Movement::Reversal,
                        MovementRecord::Refund(key) => Movement::Refund(
                            key.as_deref()
                                .map(IdempotencyKey::parse)
                                .transpose()
                                .map_err(|e| parse("receipt's refund key", e))?,
                        ),
                    },
                    lines: items_of(r.lines)?,
                    owed_at: time(created, r.owed)?,
                    due_by: time(created, r.due)?,
                    late: r.late,
                    status: match r.status {
                        ReceiptStatusRecord::Owed => ReceiptStatus::Owed,
                        ReceiptStatusRecord::Sent(at) => ReceiptStatus::Sent {
                            at: time(created, at)?,
                        },
                        ReceiptStatusRecord::Issued {
                            number,
                            sign,
                            fn_number,
                            at,
                        } => ReceiptStatus::Issued(Fiscal {
                            document_number: number,
                            sign,
                            fn_number,
                            at: time(created, at)?,
                        }),
                        ReceiptStatusRecord::Failed(why) => ReceiptStatus::Failed { why },
                    },
                    tries: r.tries,
                    last_problem: r.last_problem,
                    round: r.round,
                })
            })
            .collect::<Result<_, Unreadable>>()?,
        deposit_asked: added
            .deposit_asked
            .map(|k| kopecks(k, "deposit asked"))
            .transpose()?,
        customer: Customer {
            phone: added
                .phone
                .as_deref()
                .map(Phone::parse)
                .transpose()
                .map_err(|e| parse("phone", e))?,
            email: added
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|e| parse("email", e))?,
        },
    })
}

fn items_of(items: Vec<ItemRecord>) -> Result<Vec<Item>, Unreadable> {
    items
        .into_iter()
        .map(|i| {
            Ok(Item {
                name: ItemName::parse(&i.name)
                    .map_err(|e| Unreadable(format!("cart line: {e}")))?,
                quantity: Quantity::from_thousandths(i.quantity)
                    .ok_or_else(|| Unreadable(format!("cart quantity {}", i.quantity)))?,
                price: kopecks(i.price, "cart price")?,
                vat: i.vat,
                object: i.object,
                method: i.method,
            })
        })
        .collect()
}

/// The bank's side of a record: the full `AtBank` when it has a link, and its id either way.
fn at_bank_or_id(bank: Bank) -> Result<(Option<AtBank>, GatewayOrderId), Unreadable> {
    match bank.link {
        Link::Whole(ref link) if link.is_empty() => {
            let id = match bank.id {
                BankId::Uuid(bytes) => uuid::Uuid::from_bytes(bytes).hyphenated().to_string(),
                BankId::Text(text) => text,
            };
            let id = GatewayOrderId::parse(&id).map_err(|e| Unreadable(format!("bank id: {e}")))?;
            Ok((None, id))
        }
        _ => {
            let at = at_bank(bank)?;
            let id = at.id.clone();
            Ok((Some(at), id))
        }
    }
}
