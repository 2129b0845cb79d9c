//! Column values that differ between the two backends. PostgreSQL stores ids
//! as `uuid` and times as `timestamptz`; SQLite stores ids as 16-byte blobs
//! and times as Unix seconds. The wrappers convert for each backend, so the
//! query code in `queries.rs` compiles against both schemas.

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{BigInt, Binary, Timestamptz};
use diesel::sqlite::{Sqlite, SqliteValue};
use time::OffsetDateTime;
use uuid::Uuid;

/// An id column: `uuid` on PostgreSQL, a 16-byte blob on SQLite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, AsExpression, FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Uuid)]
#[diesel(sql_type = Binary)]
pub(crate) struct DbId(pub Uuid);

/// A time column: `timestamptz` on PostgreSQL, Unix seconds on SQLite.
/// Both backends store whole seconds, so a value reads back the same on
/// either; the fraction of a second is dropped on write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Timestamptz)]
#[diesel(sql_type = BigInt)]
pub(crate) struct DbTime(pub OffsetDateTime);

impl DbTime {
    fn whole_seconds(self) -> OffsetDateTime {
        self.0.replace_nanosecond(0).unwrap_or(self.0)
    }
}

impl ToSql<diesel::sql_types::Uuid, Pg> for DbId {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <Uuid as ToSql<diesel::sql_types::Uuid, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<diesel::sql_types::Uuid, Pg> for DbId {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <Uuid as FromSql<diesel::sql_types::Uuid, Pg>>::from_sql(value).map(DbId)
    }
}

impl ToSql<Binary, Sqlite> for DbId {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.as_bytes().as_slice());
        Ok(IsNull::No)
    }
}

impl FromSql<Binary, Sqlite> for DbId {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let bytes = <Vec<u8> as FromSql<Binary, Sqlite>>::from_sql(value)?;
        Ok(DbId(Uuid::from_slice(&bytes)?))
    }
}

impl ToSql<Timestamptz, Pg> for DbTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        let value = self.whole_seconds();
        <OffsetDateTime as ToSql<Timestamptz, Pg>>::to_sql(&value, &mut out.reborrow())
    }
}

impl FromSql<Timestamptz, Pg> for DbTime {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <OffsetDateTime as FromSql<Timestamptz, Pg>>::from_sql(value).map(DbTime)
    }
}

impl ToSql<BigInt, Sqlite> for DbTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.unix_timestamp());
        Ok(IsNull::No)
    }
}

impl FromSql<BigInt, Sqlite> for DbTime {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let seconds = <i64 as FromSql<BigInt, Sqlite>>::from_sql(value)?;
        Ok(DbTime(OffsetDateTime::from_unix_timestamp(seconds)?))
    }
}
