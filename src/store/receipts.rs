//! The `receipts` table: each fiscal receipt an order owes, one row a receipt, written from the
//! order's record in the same transaction as the order (the record stays the truth; the rows
//! are for finding the open ones fast and for a person with `sqlite3`: which receipts are not
//! issued, which ФД a payment got).

use rusqlite::{params, Connection};

use super::{keys, StoreError};
use crate::orders::order::Order;
use crate::orders::receipt::ReceiptStatus;

/// The order's receipts as rows: each inserted or brought up to date (a receipt never goes away).
pub(super) fn sync(conn: &Connection, id: &[u8; 16], order: &Order) -> Result<(), StoreError> {
    if order.receipts.is_empty() {
        return Ok(());
    }
    let mut upsert = conn
        .prepare_cached(
            "INSERT INTO receipts (id, order_id, kind, amount_kopecks, status, owed_at,
                document_number, fiscal_sign, fn_number, issued_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status,
                document_number = excluded.document_number, fiscal_sign = excluded.fiscal_sign,
                fn_number = excluded.fn_number, issued_at = excluded.issued_at",
        )
        .map_err(StoreError::sqlite("preparing a receipt row"))?;
    for r in &order.receipts {
        let (status, fiscal) = match &r.status {
            ReceiptStatus::Owed => ("owed", None),
            ReceiptStatus::Sent { .. } => ("sent", None),
            ReceiptStatus::Issued(f) => ("issued", Some(f)),
            ReceiptStatus::Failed { .. } => ("failed", None),
        };
        upsert
            .execute(params![
                &r.id.as_bytes()[..],
                &id[..],
                r.kind.code(),
                r.amount.get(),
                status,
                keys::time(r.owed_at),
                fiscal.map(|f| i64::try_from(f.document_number).unwrap_or(i64::MAX)),
                fiscal.map(|f| f.sign.as_str()),
                fiscal.map(|f| f.fn_number.as_str()),
                fiscal.map(|f| keys::time(f.at)),
            ])
            .map_err(StoreError::sqlite("storing a receipt row"))?;
    }
    Ok(())
}

/// The orders with a receipt neither issued nor failed, the longest owed first.
pub(super) fn open_order_ids(conn: &Connection) -> Result<Vec<uuid::Uuid>, StoreError> {
    let mut s = conn
        .prepare_cached(
            "SELECT order_id, min(owed_at) AS since FROM receipts
             WHERE status IN ('owed', 'sent') GROUP BY order_id ORDER BY since",
        )
        .map_err(StoreError::sqlite("listing open receipts"))?;
    let rows = s
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .map_err(StoreError::sqlite("listing open receipts"))?;
    let mut out = Vec::new();
    for row in rows {
        let id = row.map_err(StoreError::sqlite("listing open receipts"))?;
        out.extend(keys::id_of(&id));
    }
    Ok(out)
}

/// How many receipts are open and owed before `before`, and how many failed for good.
pub(super) fn late(
    conn: &Connection,
    before: chrono::DateTime<chrono::Utc>,
) -> Result<(u64, u64), StoreError> {
    conn.prepare_cached(
        "SELECT
            (SELECT count(*) FROM receipts WHERE status IN ('owed', 'sent') AND owed_at < ?1),
            (SELECT count(*) FROM receipts WHERE status = 'failed')",
    )
    .and_then(|mut s| s.query_row([keys::time(before)], |r| Ok((r.get(0)?, r.get(1)?))))
    .map_err(StoreError::sqlite("counting late receipts"))
}

/// The same, read from the database file while a daemon may be serving it (`doctor`): read
/// only, and nothing when the store has no receipts table yet.
pub fn late_in_file(
    database: &std::path::Path,
    before: chrono::DateTime<chrono::Utc>,
) -> Result<(u64, u64), StoreError> {
    match super::schema::peek(database, "receipts")? {
        Some(conn) => late(&conn, before),
        None => Ok((0, 0)),
    }
}
