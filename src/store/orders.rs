//! Orders in the database: the `orders` row (readable columns and the record), its history as
//! `events` rows, its idempotency key and its day's sums, all written by one change. These
//! functions run on a connection the caller provides: the writer's (inside a change's
//! savepoint) or a reader's.

use chrono::NaiveDate;
use rusqlite::{params, Connection, OptionalExtension};

use super::days::{self, Share};
use super::{keys, record, StoreError};
use crate::domain::{IdempotencyKey, OrderNumber};
use crate::moscow;
use crate::orders::order::{Actor, Event, Order};
use crate::orders::state::StateKind;

fn corrupt(id: &[u8], problem: impl std::fmt::Display) -> StoreError {
    let id = keys::id_of(id)
        .map(|u| u.to_string())
        .unwrap_or_else(|| hex::encode(id));
    StoreError::corrupt(id, problem)
}

fn share(order: &Order) -> Share {
    Share::of(order.state.kind(), order.deposited, order.refunded)
}

/// A new order with its history, its idempotency key (when `with_key`) and its day's sums.
/// Refuses a second order for one key on one day.
pub(super) fn insert(conn: &Connection, order: &Order, with_key: bool) -> Result<(), StoreError> {
    let id = keys::id(&order.id);
    let day = moscow::date(order.created_at);
    let key = order.idempotency_key.as_ref().filter(|_| with_key);
    if let Some(key) = key {
        if let Some(existing) = key_holder(conn, key, day)? {
            return Err(StoreError::Duplicate(existing.to_string()));
        }
    }
    let record = record::encode_without_history(order).map_err(|e| corrupt(&id, e))?;
    conn.prepare_cached(
        "INSERT INTO orders (id, number, till, amount_kopecks, mode, state, open, created_at,
            paid_at, paid_kopecks, refunded_kopecks, bank_order_id, version, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .and_then(|mut s| {
        s.execute(params![
            &id[..],
            order.order_number.as_str(),
            order.till.as_str(),
            order.amount.get(),
            mode_name(order),
            order.state.name(),
            order.state.is_open(),
            keys::time(order.created_at),
            order.paid_at.map(keys::time),
            order.deposited.get(),
            order.refunded.get(),
            order.state.bank_id().map(|b| b.as_str()),
            order.version,
            record,
        ])
    })
    .map_err(StoreError::sqlite("storing an order"))?;
    if let Some(key) = key {
        conn.prepare_cached(
            "INSERT INTO idempotency_keys (day, key, order_id) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut s| s.execute(params![keys::day(day), key.as_str(), &id[..]]))
        .map_err(StoreError::sqlite("storing an idempotency key"))?;
    }
    append_events(conn, &id, order, 0)?;
    super::receipts::sync(conn, &id, order)?;
    super::outbox::note(conn, &id)?;
    days::change(conn, day, None, share(order))
}

fn mode_name(order: &Order) -> &'static str {
    match order.mode {
        crate::orders::order::Mode::OneStage => "one-stage",
        crate::orders::order::Mode::TwoStage => "two-stage",
    }
}

/// Replaces an order if it is still at `next.version - 1` (compare-and-swap): its row, the
/// history lines it added, its day's sums.
pub(super) fn replace(conn: &Connection, next: &Order) -> Result<(), StoreError> {
    let id = keys::id(&next.id);
    let expected = next.version.saturating_sub(1);
    let current: Option<(u64, String, u64, u64)> = conn
        .prepare_cached(
            "SELECT version, state, paid_kopecks, refunded_kopecks FROM orders WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.query_row([&id[..]], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
        })
        .map_err(StoreError::sqlite("reading an order's version"))?;
    let Some((found, state, paid, refunded)) = current else {
        return Err(StoreError::Missing(next.id.to_string()));
    };
    if found != expected {
        return Err(StoreError::Conflict {
            id: next.id.to_string(),
            expected,
            found,
        });
    }
    let state = StateKind::parse(&state).ok_or_else(|| corrupt(&id, format!("state «{state}»")))?;
    let money = |v: u64| {
        crate::money::Kopecks::new(v).ok_or_else(|| corrupt(&id, "an amount above the limit"))
    };
    let before = Share::of(state, money(paid)?, money(refunded)?);
    let record = record::encode_without_history(next).map_err(|e| corrupt(&id, e))?;
    conn.prepare_cached(
        "UPDATE orders SET state = ?2, open = ?3, paid_at = ?4, paid_kopecks = ?5,
            refunded_kopecks = ?6, bank_order_id = ?7, version = ?8, record = ?9
         WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            &id[..],
            next.state.name(),
            next.state.is_open(),
            next.paid_at.map(keys::time),
            next.deposited.get(),
            next.refunded.get(),
            next.state.bank_id().map(|b| b.as_str()),
            next.version,
            record,
        ])
    })
    .map_err(StoreError::sqlite("replacing an order"))?;
    let stored: u64 = conn
        .prepare_cached("SELECT count(*) FROM events WHERE order_id = ?1")
        .and_then(|mut s| s.query_row([&id[..]], |r| r.get(0)))
        .map_err(StoreError::sqlite("counting an order's history"))?;
    append_events(conn, &id, next, stored as usize)?;
    super::receipts::sync(conn, &id, next)?;
    super::outbox::note(conn, &id)?;
    days::change(
        conn,
        moscow::date(next.created_at),
        Some(before),
        share(next),
    )
}

/// Writes the order's history lines from `from` on (history only grows).
fn append_events(
    conn: &Connection,
    id: &[u8; 16],
    order: &Order,
    from: usize,
) -> Result<(), StoreError> {
    if from >= order.history.len() {
        return Ok(());
    }
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO events (order_id, seq, at, from_state, to_state, by_token, by_cashier, kind)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(StoreError::sqlite("preparing a history line"))?;
    for (seq, event) in order.history.iter().enumerate().skip(from) {
        let kind = record::encode_kind(&event.kind).map_err(|e| corrupt(id, e))?;
        insert
            .execute(params![
                &id[..],
                seq as i64,
                event.at.timestamp_micros(),
                event.from.name(),
                event.to.name(),
                event.actor.as_ref().map(|a| a.token.as_str()),
                event.actor.as_ref().and_then(|a| a.cashier.as_deref()),
                kind,
            ])
            .map_err(StoreError::sqlite("storing a history line"))?;
    }
    Ok(())
}

/// The order holding `key` on `day`, if any.
pub(super) fn key_holder(
    conn: &Connection,
    key: &IdempotencyKey,
    day: NaiveDate,
) -> Result<Option<uuid::Uuid>, StoreError> {
    let id: Option<Vec<u8>> = conn
        .prepare_cached("SELECT order_id FROM idempotency_keys WHERE day = ?1 AND key = ?2")
        .and_then(|mut s| {
            s.query_row(params![keys::day(day), key.as_str()], |r| r.get(0))
                .optional()
        })
        .map_err(StoreError::sqlite("looking up an idempotency key"))?;
    Ok(id.as_deref().and_then(keys::id_of))
}

/// One order by its id.
pub(super) fn get(conn: &Connection, id: &uuid::Uuid) -> Result<Option<Order>, StoreError> {
    let key = keys::id(id);
    let record: Option<Vec<u8>> = conn
        .prepare_cached("SELECT record FROM orders WHERE id = ?1")
        .and_then(|mut s| s.query_row([&key[..]], |r| r.get(0)).optional())
        .map_err(StoreError::sqlite("reading an order"))?;
    let Some(record) = record else {
        return Ok(None);
    };
    let mut order = record::decode(&record).map_err(|e| corrupt(&key, e))?;
    let mut lines = conn
        .prepare_cached(
            "SELECT order_id, at, from_state, to_state, by_token, by_cashier, kind
             FROM events WHERE order_id = ?1 ORDER BY seq",
        )
        .map_err(StoreError::sqlite("reading a history"))?;
    let rows = lines
        .query_map([&key[..]], event_row)
        .map_err(StoreError::sqlite("reading a history"))?;
    for row in rows {
        let (_, event) = row.map_err(StoreError::sqlite("reading a history line"))?;
        order.history.push(event.map_err(|e| corrupt(&key, e))?);
    }
    Ok(Some(order))
}

/// What is wrong with a stored history line.
#[derive(Debug, thiserror::Error)]
pub(super) enum BadLine {
    #[error("a history line's time {0} µs")]
    Time(i64),
    #[error("a history line's state «{0}»")]
    State(String),
    #[error(transparent)]
    Kind(#[from] record::Unreadable),
}

/// An events row: the order it belongs to and the line, or what is wrong with it.
fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Vec<u8>, Result<Event, BadLine>)> {
    let order_id: Vec<u8> = r.get(0)?;
    let at: i64 = r.get(1)?;
    let from: String = r.get(2)?;
    let to: String = r.get(3)?;
    let token: Option<String> = r.get(4)?;
    let cashier: Option<String> = r.get(5)?;
    let kind: Vec<u8> = r.get(6)?;
    let event = (|| {
        Ok(Event {
            at: chrono::DateTime::from_timestamp_micros(at).ok_or(BadLine::Time(at))?,
            from: StateKind::parse(&from).ok_or_else(|| BadLine::State(from.clone()))?,
            to: StateKind::parse(&to).ok_or_else(|| BadLine::State(to.clone()))?,
            kind: record::decode_kind(&kind)?,
            actor: token.map(|token| Actor { token, cashier }),
        })
    })();
    Ok((order_id, event))
}

pub(super) fn id_by_number(
    conn: &Connection,
    number: &OrderNumber,
) -> Result<Option<uuid::Uuid>, StoreError> {
    let id: Option<Vec<u8>> = conn
        .prepare_cached("SELECT id FROM orders WHERE number = ?1")
        .and_then(|mut s| s.query_row([number.as_str()], |r| r.get(0)).optional())
        .map_err(StoreError::sqlite("looking up an order number"))?;
    Ok(id.as_deref().and_then(keys::id_of))
}

/// The ids of every order still moving.
pub(super) fn open_ids(conn: &Connection) -> Result<Vec<uuid::Uuid>, StoreError> {
    let mut s = conn
        .prepare_cached("SELECT id FROM orders WHERE open = 1 ORDER BY id")
        .map_err(StoreError::sqlite("listing open orders"))?;
    let rows = s
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .map_err(StoreError::sqlite("listing open orders"))?;
    let mut out = Vec::new();
    for row in rows {
        let id = row.map_err(StoreError::sqlite("listing open orders"))?;
        match keys::id_of(&id) {
            Some(id) => out.push(id),
            None => {
                tracing::error!(key = %hex::encode(&id), "unreadable id among the open orders; skipped")
            }
        }
    }
    Ok(out)
}

/// Up to `limit` orders with ids in `[start, end)`, oldest first, each with its history.
pub(super) fn page(
    conn: &Connection,
    start: [u8; 16],
    end: [u8; 16],
    limit: usize,
) -> Result<Vec<Order>, StoreError> {
    let mut s = conn
        .prepare_cached(
            "SELECT id, record FROM orders WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3",
        )
        .map_err(StoreError::sqlite("reading a page of orders"))?;
    let rows = s
        .query_map(params![&start[..], &end[..], limit as i64], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .map_err(StoreError::sqlite("reading a page of orders"))?;
    let mut orders = Vec::new();
    for row in rows {
        let (id, record) = row.map_err(StoreError::sqlite("reading a page of orders"))?;
        orders.push(record::decode(&record).map_err(|e| corrupt(&id, e))?);
    }
    let (Some(first), Some(last)) = (orders.first(), orders.last()) else {
        return Ok(orders);
    };
    // The page's ids are a contiguous range of the table: the events of exactly these orders
    // are the events rows of that range, in order.
    let (first, last) = (keys::id(&first.id), keys::id(&last.id));
    let mut s = conn
        .prepare_cached(
            "SELECT order_id, at, from_state, to_state, by_token, by_cashier, kind
             FROM events WHERE order_id >= ?1 AND order_id <= ?2 ORDER BY order_id, seq",
        )
        .map_err(StoreError::sqlite("reading a page's history"))?;
    let rows = s
        .query_map(params![&first[..], &last[..]], event_row)
        .map_err(StoreError::sqlite("reading a page's history"))?;
    let mut at = 0;
    for row in rows {
        let (id, event) = row.map_err(StoreError::sqlite("reading a page's history"))?;
        while at < orders.len() && keys::id(&orders[at].id)[..] < id[..] {
            at += 1;
        }
        match orders.get_mut(at) {
            Some(order) if keys::id(&order.id)[..] == id[..] => {
                order.history.push(event.map_err(|e| corrupt(&id, e))?)
            }
            _ => {
                return Err(corrupt(
                    &id,
                    "a history line of an order that is not stored",
                ))
            }
        }
    }
    Ok(orders)
}

/// The smallest key after `key` (for a page that starts after a cursor).
pub(super) fn after(key: [u8; 16]) -> [u8; 16] {
    u128::from_be_bytes(key).saturating_add(1).to_be_bytes()
}
