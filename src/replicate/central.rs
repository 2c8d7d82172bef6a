//! The head office's PostgreSQL: connecting (TLS by rustls when the URL asks for it), the
//! schema chasti creates and migrates (`chasti replicate --init`), and shipping a batch: one
//! transaction, an `unnest` upsert a table, an order row replaced only by a newer version, so
//! a batch shipped twice (a crash before its acknowledgement) changes nothing the second time.

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};

use super::rows::Batch;
use super::ReplicateError;
use crate::config::{PgTls, ReplicateConfig};

/// Every step of the central schema, in order: step `n` takes it from version `n` to `n + 1`.
const STEPS: &[&str] = &[V1];

const V1: &str = "
CREATE TABLE stores (
    store_id text PRIMARY KEY,
    last_shipped_at timestamptz NOT NULL,
    chasti_version text NOT NULL
);
CREATE TABLE orders (
    store_id text NOT NULL,
    order_id uuid NOT NULL,
    epoch bigint NOT NULL,
    version bigint NOT NULL,
    order_number text NOT NULL,
    till text NOT NULL,
    mode text NOT NULL,
    state text NOT NULL,
    state_text text NOT NULL,
    why text,
    amount_kopecks bigint NOT NULL,
    paid_kopecks bigint NOT NULL,
    reversed_kopecks bigint NOT NULL,
    refunded_kopecks bigint NOT NULL,
    left_kopecks bigint NOT NULL,
    description text,
    cashier text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    paid_at timestamptz,
    shipped_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, order_id)
);
CREATE INDEX orders_state ON orders (state);
CREATE INDEX orders_created ON orders (store_id, created_at);
CREATE TABLE order_events (
    store_id text NOT NULL,
    order_id uuid NOT NULL,
    line integer NOT NULL,
    at timestamptz NOT NULL,
    from_state text NOT NULL,
    to_state text NOT NULL,
    what text NOT NULL,
    text text NOT NULL,
    actor text,
    PRIMARY KEY (store_id, order_id, line)
);
CREATE TABLE movements (
    store_id text NOT NULL,
    order_id uuid NOT NULL,
    line integer NOT NULL,
    at timestamptz NOT NULL,
    day date NOT NULL,
    till text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('sale', 'reversal', 'refund')),
    amount_kopecks bigint NOT NULL,
    PRIMARY KEY (store_id, order_id, line)
);
CREATE INDEX movements_day ON movements (day, store_id);
CREATE TABLE receipts (
    store_id text NOT NULL,
    receipt_id uuid NOT NULL,
    order_id uuid NOT NULL,
    order_version bigint NOT NULL,
    kind text NOT NULL,
    amount_kopecks bigint NOT NULL,
    status text NOT NULL,
    owed_at timestamptz NOT NULL,
    due_by timestamptz NOT NULL,
    fiscal_document_number bigint,
    fiscal_sign text,
    fn_number text,
    issued_at timestamptz,
    problem text,
    late boolean NOT NULL,
    PRIMARY KEY (store_id, receipt_id)
);
CREATE INDEX receipts_open ON receipts (status) WHERE status <> 'issued';

-- A store's Moscow day: payments, reversals, refunds and what the store keeps, counted on
-- the day each happened (the rule of chasti's own day's close).
CREATE VIEW store_day_totals AS
SELECT store_id, day,
    count(*) FILTER (WHERE kind = 'sale') AS sales,
    coalesce(sum(amount_kopecks) FILTER (WHERE kind = 'sale'), 0)::bigint AS sales_kopecks,
    count(*) FILTER (WHERE kind = 'reversal') AS reversals,
    coalesce(sum(amount_kopecks) FILTER (WHERE kind = 'reversal'), 0)::bigint AS reversals_kopecks,
    count(*) FILTER (WHERE kind = 'refund') AS refunds,
    coalesce(sum(amount_kopecks) FILTER (WHERE kind = 'refund'), 0)::bigint AS refunds_kopecks,
    greatest(0,
        coalesce(sum(amount_kopecks) FILTER (WHERE kind = 'sale'), 0)
        - coalesce(sum(amount_kopecks) FILTER (WHERE kind = 'reversal'), 0)
        - coalesce(sum(amount_kopecks) FILTER (WHERE kind = 'refund'), 0))::bigint AS net_kopecks
FROM movements
GROUP BY store_id, day;

-- Orders a person must decide about.
CREATE VIEW orders_needing_attention AS
SELECT store_id, order_number, till, amount_kopecks, paid_kopecks, why, updated_at
FROM orders WHERE state = 'needs_attention';

-- Money movements whose 54-FZ receipt is not issued: failed, marked late by the store, or
-- past its deadline by the head office's clock (a store that went quiet cannot say).
CREATE VIEW receipts_missing AS
SELECT r.store_id, o.order_number, o.till, r.kind, r.amount_kopecks, r.status, r.owed_at,
    r.due_by, r.problem
FROM receipts r JOIN orders o USING (store_id, order_id)
WHERE r.status <> 'issued' AND (r.status = 'failed' OR r.late OR r.due_by < now());
";

/// Column `i` of a row the head office sent, or an error saying what was being read: a
/// database someone altered by hand must not stop chasti with a panic.
pub(super) fn cell<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    i: usize,
    during: &'static str,
) -> Result<T, ReplicateError> {
    row.try_get(i).map_err(ReplicateError::query(during))
}

/// The schema version this chasti writes.
pub fn latest() -> i64 {
    STEPS.len() as i64
}

/// Connects (TLS as `sslmode` says). The connection's task runs until the client is dropped.
pub async fn connect(config: &ReplicateConfig) -> Result<Client, ReplicateError> {
    let connect_error = |source| ReplicateError::Connect {
        url: config.url_shown.clone(),
        source,
    };
    match config.tls {
        PgTls::Off => {
            let (client, connection) = config
                .postgres
                .connect(NoTls)
                .await
                .map_err(connect_error)?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "the head office's connection ended");
                }
            });
            Ok(client)
        }
        PgTls::Prefer | PgTls::Require => {
            let trust = crate::gateway::tls::TrustSettings {
                extra_ca_files: config.ca_file.iter().cloned().collect(),
                extra_ca_dirs: Vec::new(),
                use_os_roots: true,
            };
            let tls = crate::gateway::tls::client_config(&trust).map_err(ReplicateError::Tls)?;
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
            let (client, connection) = config.postgres.connect(tls).await.map_err(connect_error)?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "the head office's connection ended");
                }
            });
            Ok(client)
        }
    }
}

/// The central schema's version; 0 when chasti's tables are not there.
pub async fn version(client: &Client) -> Result<i64, ReplicateError> {
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_tables WHERE tablename = 'chasti_schema'",
            &[],
        )
        .await
        .map_err(ReplicateError::query("reading the schema version"))?
        .is_some();
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_opt("SELECT version::bigint FROM chasti_schema", &[])
        .await
        .map_err(ReplicateError::query("reading the schema version"))?;
    match row {
        Some(r) => cell(&r, 0, "reading the schema version"),
        None => Ok(0),
    }
}

/// Creates or migrates chasti's tables and views (each step in its own transaction, under an
/// advisory lock so two stores starting together do not both run it). Returns the version
/// before and after.
pub async fn migrate(client: &mut Client) -> Result<(i64, i64), ReplicateError> {
    let tx = client
        .transaction()
        .await
        .map_err(ReplicateError::query("starting the migration"))?;
    // A fixed key: "chasti" in ASCII.
    tx.execute("SELECT pg_advisory_xact_lock(109998446683753)", &[])
        .await
        .map_err(ReplicateError::query("locking the schema"))?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS chasti_schema (version integer NOT NULL)")
        .await
        .map_err(ReplicateError::query("creating chasti_schema"))?;
    let found: i64 = match tx
        .query_opt("SELECT version::bigint FROM chasti_schema", &[])
        .await
        .map_err(ReplicateError::query("reading the schema version"))?
    {
        Some(r) => cell(&r, 0, "reading the schema version")?,
        None => 0,
    };
    if found > latest() {
        return Err(ReplicateError::NewerSchema {
            found,
            known: latest(),
        });
    }
    let Ok(done) = usize::try_from(found) else {
        return Err(ReplicateError::BadSchemaVersion { found });
    };
    for step in &STEPS[done..] {
        tx.batch_execute(step)
            .await
            .map_err(ReplicateError::query("migrating the schema"))?;
    }
    tx.execute("DELETE FROM chasti_schema", &[])
        .await
        .map_err(ReplicateError::query("recording the schema version"))?;
    tx.execute(
        "INSERT INTO chasti_schema (version) VALUES ($1)",
        &[&(latest() as i32)],
    )
    .await
    .map_err(ReplicateError::query("recording the schema version"))?;
    tx.commit()
        .await
        .map_err(ReplicateError::query("committing the migration"))?;
    Ok((found, latest()))
}

/// The stores the head office has heard from: name, last shipment, their chasti's version.
pub async fn stores(
    client: &Client,
) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>, String)>, ReplicateError> {
    let rows = client
        .query(
            "SELECT store_id, last_shipped_at, chasti_version FROM stores ORDER BY store_id",
            &[],
        )
        .await
        .map_err(ReplicateError::query("reading the stores"))?;
    let during = "reading the stores";
    rows.iter()
        .map(|r| {
            Ok((
                cell(r, 0, during)?,
                cell(r, 1, during)?,
                cell(r, 2, during)?,
            ))
        })
        .collect()
}

const UPSERT_ORDERS: &str = "
INSERT INTO orders (store_id, epoch, order_id, version, order_number, till, mode, state,
    state_text, why, amount_kopecks, paid_kopecks, reversed_kopecks, refunded_kopecks,
    left_kopecks, description, cashier, created_at, updated_at, paid_at)
SELECT $1, $20, * FROM unnest($2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::text[], $9::text[], $10::bigint[], $11::bigint[], $12::bigint[],
    $13::bigint[], $14::bigint[], $15::text[], $16::text[], $17::timestamptz[],
    $18::timestamptz[], $19::timestamptz[])
ON CONFLICT (store_id, order_id) DO UPDATE SET
    epoch = excluded.epoch, version = excluded.version, state = excluded.state,
    state_text = excluded.state_text,
    why = excluded.why, paid_kopecks = excluded.paid_kopecks,
    reversed_kopecks = excluded.reversed_kopecks, refunded_kopecks = excluded.refunded_kopecks,
    left_kopecks = excluded.left_kopecks, description = excluded.description,
    cashier = excluded.cashier, updated_at = excluded.updated_at, paid_at = excluded.paid_at,
    shipped_at = now()
WHERE (orders.epoch, orders.version) < (excluded.epoch, excluded.version)";

/// After a restore (a newer epoch) an order's history, movements and receipts in the head
/// office may hold lines the restored store never had: they go, and the order's own come in.
const FORGET_STALE: [(&str, &str); 3] = [
    (
        "forgetting history lines from before a restore",
        "DELETE FROM order_events t USING orders o
         WHERE o.store_id = $1 AND o.order_id = ANY($2) AND o.epoch < $3
             AND t.store_id = o.store_id AND t.order_id = o.order_id",
    ),
    (
        "forgetting money movements from before a restore",
        "DELETE FROM movements t USING orders o
         WHERE o.store_id = $1 AND o.order_id = ANY($2) AND o.epoch < $3
             AND t.store_id = o.store_id AND t.order_id = o.order_id",
    ),
    (
        "forgetting receipts from before a restore",
        "DELETE FROM receipts t USING orders o
         WHERE o.store_id = $1 AND o.order_id = ANY($2) AND o.epoch < $3
             AND t.store_id = o.store_id AND t.order_id = o.order_id",
    ),
];

const INSERT_EVENTS: &str = "
INSERT INTO order_events (store_id, order_id, line, at, from_state, to_state, what, text, actor)
SELECT $1, * FROM unnest($2::uuid[], $3::int[], $4::timestamptz[], $5::text[], $6::text[],
    $7::text[], $8::text[], $9::text[])
ON CONFLICT DO NOTHING";

const INSERT_MOVES: &str = "
INSERT INTO movements (store_id, order_id, line, at, day, till, kind, amount_kopecks)
SELECT $1, * FROM unnest($2::uuid[], $3::int[], $4::timestamptz[], $5::date[], $6::text[],
    $7::text[], $8::bigint[])
ON CONFLICT DO NOTHING";

const UPSERT_RECEIPTS: &str = "
INSERT INTO receipts (store_id, receipt_id, order_id, order_version, kind, amount_kopecks,
    status, owed_at, due_by, fiscal_document_number, fiscal_sign, fn_number, issued_at, problem,
    late)
SELECT $1, * FROM unnest($2::uuid[], $3::uuid[], $4::bigint[], $5::text[], $6::bigint[],
    $7::text[], $8::timestamptz[], $9::timestamptz[], $10::bigint[], $11::text[], $12::text[],
    $13::timestamptz[], $14::text[], $15::boolean[])
ON CONFLICT (store_id, receipt_id) DO UPDATE SET
    order_version = excluded.order_version, status = excluded.status,
    due_by = excluded.due_by, fiscal_document_number = excluded.fiscal_document_number,
    fiscal_sign = excluded.fiscal_sign, fn_number = excluded.fn_number,
    issued_at = excluded.issued_at, problem = excluded.problem, late = excluded.late
WHERE receipts.order_version < excluded.order_version";

/// Ships a batch in one transaction, under the store's `epoch` (see `FORGET_STALE`); returns
/// how many order rows it changed (older or equal versions are left as they are).
pub async fn ship(
    client: &mut Client,
    store_id: &str,
    epoch: i64,
    batch: &Batch,
) -> Result<u64, ReplicateError> {
    let failed = ReplicateError::query;
    let tx = client
        .transaction()
        .await
        .map_err(failed("starting a batch"))?;
    let o = &batch.orders;
    // A store never restored has epoch 0: nothing in the head office is older.
    if epoch > 0 {
        for (during, sql) in FORGET_STALE {
            tx.execute(sql, &[&store_id, &o.id, &epoch])
                .await
                .map_err(failed(during))?;
        }
    }
    let params: [&(dyn ToSql + Sync); 20] = [
        &store_id,
        &o.id,
        &o.version,
        &o.number,
        &o.till,
        &o.mode,
        &o.state,
        &o.state_text,
        &o.why,
        &o.amount,
        &o.paid,
        &o.reversed,
        &o.refunded,
        &o.left,
        &o.description,
        &o.cashier,
        &o.created_at,
        &o.updated_at,
        &o.paid_at,
        &epoch,
    ];
    let changed = tx
        .execute(UPSERT_ORDERS, &params)
        .await
        .map_err(failed("shipping orders"))?;
    let e = &batch.events;
    tx.execute(
        INSERT_EVENTS,
        &[
            &store_id, &e.order, &e.line, &e.at, &e.from, &e.to, &e.what, &e.text, &e.actor,
        ],
    )
    .await
    .map_err(failed("shipping history lines"))?;
    let m = &batch.moves;
    tx.execute(
        INSERT_MOVES,
        &[
            &store_id, &m.order, &m.line, &m.at, &m.day, &m.till, &m.kind, &m.amount,
        ],
    )
    .await
    .map_err(failed("shipping money movements"))?;
    let r = &batch.receipts;
    let params: [&(dyn ToSql + Sync); 15] = [
        &store_id,
        &r.id,
        &r.order,
        &r.order_version,
        &r.kind,
        &r.amount,
        &r.status,
        &r.owed_at,
        &r.due_by,
        &r.document_number,
        &r.fiscal_sign,
        &r.fn_number,
        &r.issued_at,
        &r.problem,
        &r.late,
    ];
    tx.execute(UPSERT_RECEIPTS, &params)
        .await
        .map_err(failed("shipping receipts"))?;
    tx.execute(
        "INSERT INTO stores (store_id, last_shipped_at, chasti_version) VALUES ($1, now(), $2)
         ON CONFLICT (store_id) DO UPDATE SET last_shipped_at = now(),
             chasti_version = excluded.chasti_version",
        &[&store_id, &env!("CARGO_PKG_VERSION")],
    )
    .await
    .map_err(failed("recording the store"))?;
    tx.commit().await.map_err(failed("committing a batch"))?;
    Ok(changed)
}
