//! The PostgreSQL adapter: the shared queries compiled against the
//! PostgreSQL schema, plus the parts only PostgreSQL has (row locks that skip
//! locked rows, and an advisory lock around migrations).

use diesel::pg::PgConnection;
use diesel::sql_types::BigInt;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use time::Duration;

use crate::error::PersistenceError;
use crate::schema_pg as schema;

type Conn = PgConnection;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Key of the advisory lock held while migrating: the bytes of "twauth".
const MIGRATION_LOCK_KEY: i64 = 0x7477_6175_7468;

/// Runs `f` in a read-committed transaction. Statements that must not race
/// carry their own conditions in their WHERE clauses.
fn write_tx<T>(conn: &mut Conn, f: impl FnOnce(&mut Conn) -> QueryResult<T>) -> QueryResult<T> {
    conn.transaction(f)
}

/// Does nothing on PostgreSQL. The old version of a redacted row stays in
/// the table file until VACUUM reclaims it, readable only with access to
/// the server's files; `pg_dump` and queries see the live row alone.
fn drop_old_page_copies(_conn: &mut Conn) {}

include!("queries.rs");

/// Leases up to `limit` due messages. `FOR UPDATE SKIP LOCKED` lets several
/// workers claim at once without waiting for or sharing a row.
pub(crate) fn claim_due(
    conn: &mut Conn,
    now: OffsetDateTime,
    limit: u32,
    lease: Duration,
) -> QueryResult<Vec<OutboxEntry>> {
    conn.transaction(|conn| {
        let ids = outbox::table
            .select(outbox::id)
            .filter(outbox::sent_at.is_null())
            .filter(outbox::failed_at.is_null())
            .filter(outbox::due_at.le(DbTime(now)))
            .order((outbox::due_at, outbox::created_at))
            .limit(i64::from(limit))
            .for_update()
            .skip_locked()
            .load::<DbId>(conn)?;
        lease_rows(conn, &ids, now + lease)
    })
}

/// Locks the user's row until the transaction ends, so concurrent changes
/// of the preferred email run one after the other instead of colliding on
/// the one-preferred-email index. One row, so no lock-order deadlock.
fn lock_user_emails(conn: &mut Conn, user: UserId) -> QueryResult<()> {
    lock_user(conn, DbId(user.0))
}

/// Locks the user's row until the transaction ends, so concurrent code
/// checks of one account count their failures one after the other.
fn lock_user(conn: &mut Conn, user: DbId) -> QueryResult<()> {
    users::table
        .filter(users::id.eq(user))
        .select(users::id)
        .for_update()
        .load::<DbId>(conn)?;
    Ok(())
}

/// Creates the counter row if it is missing, with a count of zero, and locks
/// it until the transaction ends.
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
    rate_counters::table
        .filter(rate_counters::key.eq(key))
        .select(rate_counters::key)
        .for_update()
        .load::<String>(conn)?;
    Ok(())
}

/// Runs the pending migrations while holding an advisory lock, so processes
/// that start together migrate one after another.
pub(crate) fn migrate(conn: &mut Conn) -> Result<(), PersistenceError> {
    let unavailable = |e: diesel::result::Error| PersistenceError::Unavailable(e.to_string());
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(conn)
        .map_err(unavailable)?;
    let result = run_migrations(conn);
    let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(conn)
        .map_err(unavailable);
    result.and(unlocked.map(|_| ()))
}

fn run_migrations(conn: &mut Conn) -> Result<(), PersistenceError> {
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| PersistenceError::Migration(e.to_string()))?;
    for version in applied {
        tracing::info!(migration.version = %version, "applied PostgreSQL migration");
    }
    Ok(())
}

pub(crate) fn pending_migrations(conn: &mut Conn) -> Result<bool, PersistenceError> {
    conn.has_pending_migration(MIGRATIONS)
        .map_err(|e| PersistenceError::Migration(e.to_string()))
}

#[derive(diesel::QueryableByName)]
struct RevocationRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    subject: DbId,
    #[diesel(sql_type = BigInt)]
    at: i64,
}

#[derive(diesel::QueryableByName)]
struct Stamp {
    #[diesel(sql_type = BigInt)]
    now: i64,
}

/// Reads revocations inserted after `since`, with the server's clock read
/// first. `clock_timestamp()` rather than `now()`, because `now()` is the
/// start of the transaction.
pub(crate) fn revocations_since(
    conn: &mut Conn,
    since: Option<DbStamp>,
) -> QueryResult<RevocationBatch> {
    let now = diesel::sql_query(
        "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now",
    )
    .get_result::<Stamp>(conn)?
    .now;
    let Some(since) = since else {
        return Ok(RevocationBatch {
            now,
            revocations: Vec::new(),
        });
    };
    let rows = diesel::sql_query(
        "SELECT id, kind, subject, (extract(epoch FROM created_at) * 1000000)::bigint AS at \
         FROM revocations \
         WHERE created_at > 'epoch'::timestamptz + $1 * interval '1 microsecond' \
         ORDER BY id",
    )
    .bind::<BigInt, _>(since)
    .load::<RevocationRow>(conn)?;
    let revocations = rows
        .into_iter()
        .map(|row| into_revocation(row.id, &row.kind, row.subject.0, row.at))
        .collect::<QueryResult<_>>()?;
    Ok(RevocationBatch { now, revocations })
}

pub(crate) fn purge_revocations(conn: &mut Conn, before: DbStamp) -> QueryResult<u64> {
    let deleted = diesel::sql_query(
        "DELETE FROM revocations \
         WHERE created_at < 'epoch'::timestamptz + $1 * interval '1 microsecond'",
    )
    .bind::<BigInt, _>(before)
    .execute(conn)?;
    Ok(deleted as u64)
}
