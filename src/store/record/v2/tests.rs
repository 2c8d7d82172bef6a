use super::super::{decode, encode};
use crate::orders::order::{Actor, Mode};
use crate::orders::transition::tests::{bank, order};
use crate::orders::transition::{apply, apply_by, Input};
use chrono::Utc;

#[test]
fn an_order_survives_the_round_trip_in_every_shape() {
    // Times are kept to the microsecond (the engine's clock gives no finer).
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
    let by = Actor {
        token: "boss".into(),
        cashier: Some("Сидорова".into()),
    };
    let fresh = order(Mode::TwoStage);
    let waiting = apply(&fresh, Input::Registered(bank()), now).unwrap();
    let failed_try = apply(
        &waiting,
        Input::AttemptFailed {
            code: 116,
            why: "Недостаточно средств".into(),
        },
        now,
    )
    .unwrap();
    let held = apply(&failed_try, Input::HoldConfirmed { at: None }, now).unwrap();
    let depositing = apply_by(
        &held,
        Input::DepositStarted { amount: None },
        now,
        Some(&by),
    )
    .unwrap();
    let attention = apply(
        &held,
        Input::Attention {
            why: crate::orders::Reason::said("x", None),
        },
        now,
    )
    .unwrap();
    let failed = apply(
        &fresh,
        Input::RegistrationFailed {
            why: crate::orders::Reason::said("errorCode 5", Some("Банк отказал".into())),
        },
        now,
    )
    .unwrap();
    for o in [
        fresh, waiting, failed_try, held, depositing, attention, failed,
    ] {
        let bytes = encode(&o).unwrap();
        assert_eq!(bytes[0], super::TAG);
        assert_eq!(decode(&bytes).unwrap(), o);
    }
}

#[test]
fn a_schema_2_record_reads_with_its_sentences_as_said_reasons() {
    use super::{EventKindV2, EventRecord, Record, TAG_V2};
    use crate::orders::state::{State, StateKind};
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
    let fresh = order(Mode::OneStage);
    let us = now.timestamp_micros();
    let record: Record<String, EventKindV2> = Record {
        id: *fresh.id.as_bytes(),
        number: fresh.order_number.to_string(),
        amount: fresh.amount.get(),
        two_stage: false,
        description: None,
        till: fresh.till.to_string(),
        cashier: None,
        key: None,
        created: us,
        updated: 0,
        expires: 60_000_000,
        held: None,
        paid: None,
        state: super::state_code(StateKind::Failed),
        why: Some("register.do: errorCode 5".into()),
        state_cashier: Some("Касса не настроена".into()),
        bank: None,
        deposited: 0,
        refunded: 0,
        refunds: Vec::new(),
        reversal_attempted: false,
        cancel_requested: false,
        attempts: Vec::new(),
        version: 2,
        history: vec![EventRecord {
            at: 0,
            from: super::state_code(StateKind::Registering),
            to: super::state_code(StateKind::Failed),
            kind: EventKindV2::RegistrationFailed {
                why: "register.do: errorCode 5".into(),
                cashier: "Касса не настроена".into(),
            },
            actor: None,
        }],
    };
    let mut bytes = vec![TAG_V2];
    bytes.extend(postcard::to_allocvec(&record).unwrap());
    let o = decode(&bytes).unwrap();
    let State::Failed { why } = &o.state else {
        panic!("{:?}", o.state)
    };
    assert_eq!(why.what(), "register.do: errorCode 5");
    assert_eq!(why.text(), "Касса не настроена");
    assert_eq!(o.history[0].text(), "Касса не настроена");
    // Written back, it is schema 3 and reads the same.
    let again = encode(&o).unwrap();
    assert_eq!(again[0], super::TAG);
    assert_eq!(decode(&again).unwrap(), o);
}

#[test]
fn a_paid_order_is_a_few_hundred_bytes() {
    let now = Utc::now();
    let o = apply(&order(Mode::OneStage), Input::Registered(bank()), now).unwrap();
    let o = apply(
        &o,
        Input::PaymentConfirmed {
            deposited: o.amount,
            at: Some(now),
        },
        now,
    )
    .unwrap();
    let bytes = encode(&o).unwrap();
    assert!(bytes.len() < 200, "{} bytes", bytes.len());
}

#[test]
fn a_link_on_the_banks_page_keeps_only_the_pages_number() {
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
    let id = "3a9531a9-dc18-459a-b354-4ba090e339d6";
    let on_page = |page: &str| crate::orders::AtBank {
        id: crate::domain::GatewayOrderId::parse(id).unwrap(),
        link: crate::domain::PaymentUrl::parse(&format!("{page}{id}")).unwrap(),
    };
    let bank_page = on_page(super::KNOWN_PAGES[0]);
    let other_page = on_page("https://pay.example/p?order=");
    let known = apply(&order(Mode::OneStage), Input::Registered(bank_page), now).unwrap();
    let other = apply(&order(Mode::OneStage), Input::Registered(other_page), now).unwrap();
    let (known_bytes, other_bytes) = (encode(&known).unwrap(), encode(&other).unwrap());
    assert_eq!(decode(&known_bytes).unwrap(), known);
    assert_eq!(decode(&other_bytes).unwrap(), other);
    assert!(
        known_bytes.len() + 20 < other_bytes.len(),
        "{} vs {}",
        known_bytes.len(),
        other_bytes.len()
    );
}

#[test]
fn bad_records_are_unreadable_not_guessed() {
    let waiting = apply(
        &order(Mode::OneStage),
        Input::Registered(bank()),
        Utc::now(),
    )
    .unwrap();
    let good = encode(&waiting).unwrap();
    for bad in [&b""[..], b"\x07binary", b"\x02", &good[..good.len() / 2]] {
        assert!(decode(bad).is_err(), "{bad:?}");
    }
    // Every truncation and every single flipped byte: an error or an order, never a panic.
    for cut in 0..good.len() {
        let _ = decode(&good[..cut]);
    }
    for i in 1..good.len() {
        let mut flipped = good.clone();
        flipped[i] ^= 0xFF;
        let _ = decode(&flipped);
    }
}
