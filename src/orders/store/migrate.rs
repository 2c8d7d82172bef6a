//! Upgrades a store written by an earlier chasti (layout 1: JSON records keyed by the id's text,
//! an index by day and one by the bank's id) to layout 2, in place, at open. Every order is
//! read through the schema 1 reader and written again as schema 2 with its indexes and its
//! day's sums; the journal, callbacks and cancel requests are carried over. The new trees are
//! cleared first, so an upgrade interrupted by a crash simply runs again; the old trees are
//! dropped only after the new ones and the layout mark are flushed.

use super::{decode, keys, Store, StoreError, StoredCallback};
use crate::orders::order::Actor;
use crate::orders::store::JournalEntry;

const LAYOUT_KEY: &[u8] = b"layout";
const LAYOUT: u8 = 2;
const OLD_TREES: [&str; 9] = [
    "orders",
    "by_gateway",
    "by_number",
    "by_day",
    "open",
    "idempotency",
    "journal",
    "callbacks",
    "cancel_requests",
];

pub(super) fn upgrade(store: &Store) -> Result<(), StoreError> {
    if store.meta.get(LAYOUT_KEY)?.as_deref() == Some(&[LAYOUT][..]) {
        return Ok(());
    }
    let names = store.db.tree_names();
    let has = |name: &str| names.iter().any(|t| t.as_ref() == name.as_bytes());
    if has("orders") {
        let started = std::time::Instant::now();
        for tree in [
            &store.orders,
            &store.numbers,
            &store.keys,
            &store.open,
            &store.days,
            &store.journal,
            &store.callbacks,
            &store.cancels,
        ] {
            tree.clear()?;
        }
        let mut moved = 0u64;
        for entry in store.db.open_tree("orders")?.iter() {
            let (key, bytes) = entry?;
            let order = decode(&key, &bytes)?;
            match store.write_new(&order) {
                Err(StoreError::Duplicate(other)) => {
                    // Layout 1 prevented this; a damaged index is no reason to lose an order.
                    tracing::warn!(order = %order.order_number, %other, "two orders share an idempotency key; the later one is kept without it");
                    let mut without = order.clone();
                    without.idempotency_key = None;
                    store.write_new(&without)?;
                }
                other => other?,
            }
            moved += 1;
            if moved % 10_000 == 0 {
                tracing::info!(moved, "upgrading the order store");
            }
        }
        carry_diagnostics(store, &has)?;
        store.db.flush()?;
        store.meta.insert(LAYOUT_KEY, &[LAYOUT])?;
        store.db.flush()?;
        for name in OLD_TREES.iter().filter(|n| has(n)) {
            store.db.drop_tree(name)?;
        }
        store.db.flush()?;
        tracing::info!(
            orders = moved,
            took_ms = started.elapsed().as_millis() as u64,
            "the order store was upgraded to layout 2"
        );
    } else {
        store.meta.insert(LAYOUT_KEY, &[LAYOUT])?;
        store.db.flush()?;
    }
    Ok(())
}

fn carry_diagnostics(store: &Store, has: &dyn Fn(&str) -> bool) -> Result<(), StoreError> {
    if has("journal") {
        for value in store.db.open_tree("journal")?.iter().values() {
            if let Ok(entry) = serde_json::from_slice::<JournalEntry>(&value?) {
                store.journal_append(&entry)?;
            }
        }
    }
    if has("callbacks") {
        for value in store.db.open_tree("callbacks")?.iter().values() {
            if let Ok(record) = serde_json::from_slice::<StoredCallback>(&value?) {
                store.callback_write(&record)?;
            }
        }
    }
    if has("cancel_requests") {
        for entry in store.db.open_tree("cancel_requests")?.iter() {
            let (key, value) = entry?;
            let id = uuid::Uuid::try_parse_ascii(&key).ok();
            let actor = serde_json::from_slice::<Actor>(&value).ok();
            if let (Some(id), Some(actor)) = (id, actor) {
                let bytes = postcard::to_allocvec(&(&actor.token, &actor.cashier))
                    .map_err(|e| StoreError::Io(e.to_string()))?;
                store.cancels.insert(keys::id(&id), bytes)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{IdempotencyKey, OrderNumber};
    use chrono::NaiveDate;

    // A v7 id of the order's creation time, as layout 1 ids were.
    const ID: &str = "01a207be-e1cc-7d7a-9b1e-5a0f3c2d1e0f";

    /// A store as chasti wrote it before layout 2: JSON records keyed by the id's text.
    fn layout_1(path: &std::path::Path) {
        let db = sled::open(path).unwrap();
        let record = format!(
            r#"{{"schema":1,"id":"{ID}","order_number":"T-1-261123-0001",
            "gateway_order_id":"4a9910be-469e-4d40-a65b-60c4adca6733","amount":149900,
            "mode":"one-stage","description":"Тест","till":"1","cashier":"Иванова",
            "idempotency_key":"pos-0001","created_at":"2026-11-23T09:31:19.884274814Z",
            "updated_at":"2026-11-23T09:31:29.978Z",
            "payment_url":"https://pay.example/payment_ru.html?mdOrder=4a9910be-469e-4d40-a65b-60c4adca6733",
            "link_expires_at":"2026-11-23T09:51:19.884Z","held_at":null,
            "paid_at":"2026-11-23T09:31:29.972Z","state":{{"name":"paid"}},"deposited":149900,
            "refunded":0,"refunds":[],"reversal_attempted":false,"cancel_requested":false,
            "failed_attempts":[],"version":2,"history":[{{"at":"2026-11-23T09:31:19.884274814Z",
            "from":"registering","to":"registering","what":"sale of 1 499,00 ₽ started",
            "text":"Продажа на 1 499,00 ₽ начата","actor":{{"token":"till-1"}}}}]}}"#
        );
        db.open_tree("orders")
            .unwrap()
            .insert(ID, record.as_bytes())
            .unwrap();
        db.open_tree("by_number")
            .unwrap()
            .insert("T-1-261123-0001", ID)
            .unwrap();
        db.open_tree("idempotency")
            .unwrap()
            .insert("pos-0001", ID)
            .unwrap();
        db.open_tree("by_day")
            .unwrap()
            .insert(format!("2026-11-23\u{0}{ID}"), &[])
            .unwrap();
        db.open_tree("journal").unwrap().insert([0u8; 16], br#"{"at":"2026-11-23T09:31:19Z","method":"register.do","order_number":"T-1-261123-0001","outcome":"ok","duration_us":1200}"#.as_slice()).unwrap();
        db.open_tree("callbacks").unwrap().insert([0u8; 16], br#"{"at":"2026-11-23T09:31:29Z","params":[["orderNumber","T-1-261123-0001"],["checksum","AB"]],"signature":"hmac"}"#.as_slice()).unwrap();
        db.open_tree("cancel_requests")
            .unwrap()
            .insert(ID, br#"{"token":"till-1"}"#.as_slice())
            .unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("seq/T/1/261123", &1u64.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }

    #[test]
    fn a_layout_1_store_is_upgraded_in_place_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        layout_1(dir.path());
        for pass in 0..2 {
            // Opening twice: the second open finds layout 2 and changes nothing.
            let store = Store::open(dir.path()).unwrap();
            let id = uuid::Uuid::parse_str(ID).unwrap();
            let order = store.get(&id).unwrap().expect("the order is carried over");
            assert_eq!(order.amount.get(), 149_900);
            assert_eq!(order.history[0].text(), "Продажа на 1 499,00 ₽ начата");
            let number = OrderNumber::parse("T-1-261123-0001").unwrap();
            assert_eq!(store.by_number(&number).unwrap().unwrap().id, id);
            let key = IdempotencyKey::parse("pos-0001").unwrap();
            let at = chrono::DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z").unwrap();
            let found = store.by_idempotency_key(&key, at.into()).unwrap();
            assert_eq!(found.unwrap().id, id);
            let day = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
            let totals = store.day_totals(day, day).unwrap();
            assert_eq!((totals[0].count, totals[0].sold.get()), (1, 149_900));
            assert_eq!(store.range(day, day, None).count(), 1);
            assert_eq!(store.journal().unwrap()[0].method, "register.do");
            let callbacks = store.callbacks().unwrap();
            assert_eq!(
                callbacks[0].params,
                [("orderNumber".to_string(), "T-1-261123-0001".to_string())]
            );
            if pass == 0 {
                let asked = store.take_cancel_request(&id).unwrap();
                assert_eq!(asked.unwrap().token, "till-1");
            }
            let next = store
                .allocate_order_number(
                    &crate::domain::StorePrefix::parse("T").unwrap(),
                    &crate::domain::TillId::parse("1").unwrap(),
                    day,
                )
                .unwrap();
            assert!(
                next.as_str() > "T-1-261123-0001",
                "the counter goes on: {next}"
            );
            let names = store.db.tree_names();
            assert!(
                !names.iter().any(|n| n.as_ref() == b"by_day"),
                "old trees dropped"
            );
            drop(store);
        }
    }
}
