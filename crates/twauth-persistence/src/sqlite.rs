//! The SQLite adapter: the shared queries compiled against the SQLite
//! schema. Every write runs in an `IMMEDIATE` transaction, which takes the
//! database's single write lock up front, so two writers queue on the busy
//! timeout instead of failing when one upgrades a read to a write.

use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use time::Duration;

use crate::error::PersistenceError;
use crate::schema_sqlite as schema;

type Conn = SqliteConnection;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

fn write_tx<T>(conn: &mut Conn, f: impl FnOnce(&mut Conn) -> QueryResult<T>) -> QueryResult<T> {
    conn.immediate_transaction(f)
}

/// Copies the write-ahead log into the database file and truncates it, so
/// that the log's older copies of a page, such as an outbox row that still
/// held its code, do not outlive the redaction.
fn drop_old_page_copies(conn: &mut Conn) {
    // NOTE: a reader holding an old snapshot makes the checkpoint stop
    // early; the next redaction's checkpoint catches up. The mail is sent
    // by then, so a failure here must not fail the caller.
    use diesel::connection::SimpleConnection;
    let _ = conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);");
}

include!("queries.rs");

/// Leases up to `limit` due messages. The write lock of the immediate
/// transaction keeps other workers out until the lease is stored.
pub(crate) fn claim_due(
    conn: &mut Conn,
    now: OffsetDateTime,
    limit: u32,
    lease: Duration,
) -> QueryResult<Vec<OutboxEntry>> {
    write_tx(conn, |conn| {
        let ids = outbox::table
            .select(outbox::id)
            .filter(outbox::sent_at.is_null())
            .filter(outbox::failed_at.is_null())
            .filter(outbox::due_at.le(DbTime(now)))
            .order((outbox::due_at, outbox::created_at))
            .limit(i64::from(limit))
            .load::<DbId>(conn)?;
        lease_rows(conn, &ids, now + lease)
    })
}

/// Does nothing: the immediate transaction already holds the write lock of
/// the whole database.
fn lock_user_emails(_conn: &mut Conn, _user: UserId) -> QueryResult<()> {
    Ok(())
}

/// Does nothing: the immediate transaction already holds the write lock.
fn lock_user(_conn: &mut Conn, _user: DbId) -> QueryResult<()> {
    Ok(())
}

/// Creates the counter row if it is missing, with a count of zero. The
/// immediate transaction already holds the write lock.
fn lock_counter(conn: &mut Conn, key: &str, now: OffsetDateTime) -> QueryResult<()> {
    diesel::insert_into(rate_counters::table)
        .values((
            rate_counters::key.eq(key),
            rate_counters::window_start.eq(DbTime(now)),
            rate_counters::count.eq(0),
            rate_counters::last_at.eq(DbTime(now)),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(())
}

/// Runs the pending migrations. SQLite's write lock keeps two processes from
/// applying the same migration at once.
pub(crate) fn migrate(conn: &mut Conn) -> Result<(), PersistenceError> {
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| PersistenceError::Migration(e.to_string()))?;
    for version in applied {
        tracing::info!(migration.version = %version, "applied SQLite migration");
    }
    Ok(())
}

pub(crate) fn pending_migrations(conn: &mut Conn) -> Result<bool, PersistenceError> {
    conn.has_pending_migration(MIGRATIONS)
        .map_err(|e| PersistenceError::Migration(e.to_string()))
}

#[derive(diesel::QueryableByName)]
struct RevocationRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::Binary)]
    subject: DbId,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    at: i64,
}

#[derive(diesel::QueryableByName)]
struct Stamp {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    now: i64,
}

/// Reads revocations inserted after `since`. SQLite stamps whole seconds, so
/// rows of the second that holds `since` come back again; callers skip ids
/// they have seen.
pub(crate) fn revocations_since(
    conn: &mut Conn,
    since: Option<DbStamp>,
) -> QueryResult<RevocationBatch> {
    let now = diesel::sql_query("SELECT unixepoch() * 1000000 AS now")
        .get_result::<Stamp>(conn)?
        .now;
    let Some(since) = since else {
        return Ok(RevocationBatch {
            now,
            revocations: Vec::new(),
        });
    };
    let rows = diesel::sql_query(
        "SELECT id, kind, subject, created_at * 1000000 AS at FROM revocations \
         WHERE created_at >= ? / 1000000 ORDER BY id",
    )
    .bind::<diesel::sql_types::BigInt, _>(since)
    .load::<RevocationRow>(conn)?;
    let revocations = rows
        .into_iter()
        .map(|row| into_revocation(row.id, &row.kind, row.subject.0, row.at))
        .collect::<QueryResult<_>>()?;
    Ok(RevocationBatch { now, revocations })
}

pub(crate) fn purge_revocations(conn: &mut Conn, before: DbStamp) -> QueryResult<u64> {
    let deleted = diesel::sql_query("DELETE FROM revocations WHERE created_at < ? / 1000000")
        .bind::<diesel::sql_types::BigInt, _>(before)
        .execute(conn)?;
    Ok(deleted as u64)
}
