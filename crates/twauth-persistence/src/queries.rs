// Query code shared by both backends. `pg.rs` and `sqlite.rs` include this
// file after they bring in `schema` (their own table definitions), `Conn`
// (their connection type) and `write_tx` (their write transaction), so each
// function below compiles once per backend.

use diesel::prelude::*;
use time::OffsetDateTime;
use twauth_domain::mail::{Mail, OutboxEntry};
use twauth_domain::model::{
    CodeEffect, CodeId, CodePurpose, Email, EmailId, KeyPair, KeyPairId, KeyPairWithUser, NewCode,
    NewUser, ReservedCode, Session, SessionId, SessionWithUser, User, UserId,
};
use twauth_domain::ports::{
    AccountLimit, DbStamp, EmailChange, RateDecision, RateRule, Reservation, Revocation,
    RevocationBatch, Revoked, StoreError, Taken, decide_hit,
};
use twauth_domain::secret::{CodeHash, TokenDigest};
use twauth_domain::values::{Alias, EmailAddress, FullName, KeyName};
use uuid::Uuid;

use crate::error::DbError;
use crate::types::{DbId, DbTime};
use schema::{codes, emails, key_pairs, outbox, rate_counters, revocations, sessions, users};

type QueryResult<T> = Result<T, DbError>;

// Rows read from the tables.

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
struct UserRow {
    id: DbId,
    alias: String,
    full_name: String,
    roles: String,
    groups: String,
    verified_at: Option<DbTime>,
    created_at: DbTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = emails)]
struct EmailRow {
    id: DbId,
    user_id: DbId,
    address: String,
    verified: bool,
    preferred: bool,
    created_at: DbTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = sessions)]
struct SessionRow {
    id: DbId,
    user_id: DbId,
    token_digest: Vec<u8>,
    ip: String,
    user_agent: String,
    created_at: DbTime,
    verified_at: Option<DbTime>,
    expires_at: DbTime,
    last_seen_at: DbTime,
    closed_at: Option<DbTime>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = codes)]
struct CodeRow {
    id: DbId,
    user_id: DbId,
    purpose: String,
    subject: DbId,
    hash: String,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = key_pairs)]
struct KeyPairRow {
    id: DbId,
    user_id: DbId,
    name: String,
    api_key: String,
    secret_digest: Vec<u8>,
    created_at: DbTime,
    expires_at: DbTime,
    verified_at: Option<DbTime>,
    deleted_at: Option<DbTime>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = outbox)]
struct OutboxRow {
    id: DbId,
    payload: String,
    attempts: i32,
    created_at: DbTime,
}

// Rows written to the tables.

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUserRow<'a> {
    id: DbId,
    alias: &'a str,
    alias_key: String,
    full_name: &'a str,
    roles: String,
    groups: String,
    verified_at: Option<DbTime>,
    created_at: DbTime,
}

#[derive(Insertable)]
#[diesel(table_name = emails)]
struct NewEmailRow<'a> {
    id: DbId,
    user_id: DbId,
    address: &'a str,
    verified: bool,
    preferred: bool,
    created_at: DbTime,
}

#[derive(Insertable)]
#[diesel(table_name = sessions)]
struct NewSessionRow<'a> {
    id: DbId,
    user_id: DbId,
    token_digest: &'a [u8],
    ip: &'a str,
    user_agent: &'a str,
    created_at: DbTime,
    verified_at: Option<DbTime>,
    expires_at: DbTime,
    last_seen_at: DbTime,
    closed_at: Option<DbTime>,
}

#[derive(Insertable)]
#[diesel(table_name = codes)]
struct NewCodeRow<'a> {
    id: DbId,
    user_id: DbId,
    purpose: &'a str,
    subject: DbId,
    hash: &'a str,
    created_at: DbTime,
    expires_at: DbTime,
    attempts: i32,
}

#[derive(Insertable)]
#[diesel(table_name = key_pairs)]
struct NewKeyPairRow<'a> {
    id: DbId,
    user_id: DbId,
    name: &'a str,
    api_key: &'a str,
    secret_digest: &'a [u8],
    created_at: DbTime,
    expires_at: DbTime,
    verified_at: Option<DbTime>,
    deleted_at: Option<DbTime>,
}

#[derive(Insertable)]
#[diesel(table_name = outbox)]
struct NewOutboxRow<'a> {
    id: DbId,
    payload: String,
    recipient: &'a str,
    kind: &'a str,
    attempts: i32,
    created_at: DbTime,
    due_at: DbTime,
}

// Conversions between rows and domain entities.

fn time(value: Option<DbTime>) -> Option<OffsetDateTime> {
    value.map(|t| t.0)
}

fn string_list(json: &str, column: &str) -> QueryResult<Vec<String>> {
    serde_json::from_str(json)
        .map_err(|e| DbError::internal(format!("users.{column} contains invalid JSON: {e}")))
}

fn to_json_list(values: &[String]) -> QueryResult<String> {
    serde_json::to_string(values).map_err(|e| DbError::internal(e.to_string()))
}

fn digest(bytes: &[u8], column: &str) -> QueryResult<TokenDigest> {
    TokenDigest::from_slice(bytes).ok_or_else(|| {
        DbError::internal(format!(
            "{column} contains a digest of {} bytes, expected 32",
            bytes.len()
        ))
    })
}

impl UserRow {
    fn into_user(self) -> QueryResult<User> {
        Ok(User {
            id: UserId(self.id.0),
            alias: Alias::from_trusted(self.alias),
            full_name: FullName::from_trusted(self.full_name),
            roles: string_list(&self.roles, "roles")?,
            groups: string_list(&self.groups, "groups")?,
            verified_at: time(self.verified_at),
            created_at: self.created_at.0,
        })
    }
}

impl EmailRow {
    fn into_email(self) -> Email {
        Email {
            id: EmailId(self.id.0),
            user_id: UserId(self.user_id.0),
            address: EmailAddress::from_trusted(self.address),
            verified: self.verified,
            preferred: self.preferred,
            created_at: self.created_at.0,
        }
    }
}

impl SessionRow {
    fn into_session(self) -> QueryResult<Session> {
        Ok(Session {
            id: SessionId(self.id.0),
            user_id: UserId(self.user_id.0),
            token_digest: digest(&self.token_digest, "sessions.token_digest")?,
            ip: self.ip,
            user_agent: self.user_agent,
            created_at: self.created_at.0,
            verified_at: time(self.verified_at),
            expires_at: self.expires_at.0,
            last_seen_at: self.last_seen_at.0,
            closed_at: time(self.closed_at),
        })
    }
}

impl CodeRow {
    fn into_reserved(self) -> QueryResult<ReservedCode> {
        let purpose = CodePurpose::parse(&self.purpose).ok_or_else(|| {
            DbError::internal(format!(
                "codes.purpose contains an unknown purpose {:?}",
                self.purpose
            ))
        })?;
        Ok(ReservedCode {
            id: CodeId(self.id.0),
            user_id: UserId(self.user_id.0),
            purpose,
            subject: self.subject.0,
            hash: CodeHash(self.hash),
        })
    }
}

impl KeyPairRow {
    fn into_key_pair(self) -> QueryResult<KeyPair> {
        Ok(KeyPair {
            id: KeyPairId(self.id.0),
            user_id: UserId(self.user_id.0),
            name: KeyName::from_trusted(self.name),
            api_key: self.api_key,
            secret_digest: digest(&self.secret_digest, "key_pairs.secret_digest")?,
            created_at: self.created_at.0,
            expires_at: self.expires_at.0,
            verified_at: time(self.verified_at),
            deleted_at: time(self.deleted_at),
        })
    }
}

impl OutboxRow {
    fn into_entry(self) -> QueryResult<OutboxEntry> {
        let mail = serde_json::from_str(&self.payload).map_err(|e| {
            DbError::internal(format!(
                "outbox row {} contains an invalid message: {e}",
                self.id.0
            ))
        })?;
        Ok(OutboxEntry {
            id: self.id.0,
            mail,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            created_at: self.created_at.0.unix_timestamp(),
        })
    }
}

// Inserts shared by several writes.

fn insert_session(conn: &mut Conn, session: &Session) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(NewSessionRow {
            id: DbId(session.id.0),
            user_id: DbId(session.user_id.0),
            token_digest: session.token_digest.as_bytes(),
            ip: &session.ip,
            user_agent: &session.user_agent,
            created_at: DbTime(session.created_at),
            verified_at: session.verified_at.map(DbTime),
            expires_at: DbTime(session.expires_at),
            last_seen_at: DbTime(session.last_seen_at),
            closed_at: session.closed_at.map(DbTime),
        })
        .execute(conn)?;
    Ok(())
}

fn insert_email(conn: &mut Conn, email: &Email) -> QueryResult<()> {
    diesel::insert_into(emails::table)
        .values(NewEmailRow {
            id: DbId(email.id.0),
            user_id: DbId(email.user_id.0),
            address: email.address.as_str(),
            verified: email.verified,
            preferred: email.preferred,
            created_at: DbTime(email.created_at),
        })
        .execute(conn)?;
    Ok(())
}

fn insert_mail(conn: &mut Conn, mail: &Mail, now: OffsetDateTime) -> QueryResult<()> {
    let payload = serde_json::to_string(mail)
        .map_err(|e| DbError::internal(format!("failed to encode a message: {e}")))?;
    diesel::insert_into(outbox::table)
        .values(NewOutboxRow {
            id: DbId(Uuid::new_v4()),
            payload,
            recipient: mail.to.as_str(),
            kind: mail.kind(),
            attempts: 0,
            created_at: DbTime(now),
            due_at: DbTime(now),
        })
        .execute(conn)?;
    Ok(())
}

/// Inserts a code and queues its mail, stamped with the code's creation time.
fn insert_code(conn: &mut Conn, code: &NewCode, mail: &Mail) -> QueryResult<()> {
    diesel::insert_into(codes::table)
        .values(NewCodeRow {
            id: DbId(code.id.0),
            user_id: DbId(code.user_id.0),
            purpose: code.purpose.as_str(),
            subject: DbId(code.subject),
            hash: &code.hash.0,
            created_at: DbTime(code.created_at),
            expires_at: DbTime(code.expires_at),
            attempts: 0,
        })
        .execute(conn)?;
    insert_mail(conn, mail, code.created_at)
}

fn address_taken(conn: &mut Conn, address: &EmailAddress) -> QueryResult<bool> {
    let found = emails::table
        .select(emails::id)
        .filter(emails::address.eq(address.as_str()))
        .first::<DbId>(conn)
        .optional()?;
    Ok(found.is_some())
}

// Users.

pub(crate) fn register(
    conn: &mut Conn,
    user: &NewUser,
    email: &Email,
    session: &Session,
    code: &NewCode,
    mail: &Mail,
) -> QueryResult<()> {
    write_tx(conn, |conn| {
        // Check the address first, so that a request taking both a used
        // address and a used alias reports the address, as the memory store
        // does. The email row needs the user row, whose alias index fires
        // before the address index could.
        if address_taken(conn, &email.address)? {
            return Err(DbError(StoreError::Conflict(Taken::EmailAddress)));
        }
        diesel::insert_into(users::table)
            .values(NewUserRow {
                id: DbId(user.id.0),
                alias: user.alias.as_str(),
                alias_key: user.alias.key(),
                full_name: user.full_name.as_str(),
                roles: to_json_list(&user.roles)?,
                groups: to_json_list(&user.groups)?,
                verified_at: None,
                created_at: DbTime(user.created_at),
            })
            .execute(conn)?;
        insert_email(conn, email)?;
        insert_session(conn, session)?;
        insert_code(conn, code, mail)
    })
}

pub(crate) fn find_user(conn: &mut Conn, id: UserId) -> QueryResult<Option<User>> {
    users::table
        .filter(users::id.eq(DbId(id.0)))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?
        .map(UserRow::into_user)
        .transpose()
}

pub(crate) fn find_login_email(
    conn: &mut Conn,
    address: &EmailAddress,
) -> QueryResult<Option<Email>> {
    let found = emails::table
        .inner_join(users::table)
        .filter(emails::address.eq(address.as_str()))
        .select((EmailRow::as_select(), users::verified_at))
        .first::<(EmailRow, Option<DbTime>)>(conn)
        .optional()?;
    let Some((row, user_verified_at)) = found else {
        return Ok(None);
    };
    let usable = row.verified || (user_verified_at.is_none() && row.preferred);
    Ok(usable.then(|| row.into_email()))
}

pub(crate) fn purge_unverified_users(
    conn: &mut Conn,
    created_before: OffsetDateTime,
) -> QueryResult<u64> {
    let deleted = write_tx(conn, |conn| {
        diesel::delete(
            users::table
                .filter(users::verified_at.is_null())
                .filter(users::created_at.lt(DbTime(created_before))),
        )
        .execute(conn)
        .map_err(DbError::from)
    })?;
    Ok(deleted as u64)
}

// Sessions.

pub(crate) fn start_session(
    conn: &mut Conn,
    session: &Session,
    code: &NewCode,
    mail: &Mail,
) -> QueryResult<()> {
    write_tx(conn, |conn| {
        insert_session(conn, session)?;
        insert_code(conn, code, mail)
    })
}

pub(crate) fn find_session(
    conn: &mut Conn,
    token: &TokenDigest,
) -> QueryResult<Option<SessionWithUser>> {
    let found = sessions::table
        .inner_join(users::table)
        .filter(sessions::token_digest.eq(token.as_bytes()))
        .select((SessionRow::as_select(), UserRow::as_select()))
        .first::<(SessionRow, UserRow)>(conn)
        .optional()?;
    found
        .map(|(session, user)| {
            Ok(SessionWithUser {
                session: session.into_session()?,
                user: user.into_user()?,
            })
        })
        .transpose()
}

pub(crate) fn touch_session(conn: &mut Conn, id: SessionId, at: OffsetDateTime) -> QueryResult<()> {
    write_tx(conn, |conn| {
        diesel::update(sessions::table.filter(sessions::id.eq(DbId(id.0))))
            .set(sessions::last_seen_at.eq(DbTime(at)))
            .execute(conn)?;
        Ok(())
    })
}

pub(crate) fn list_sessions(
    conn: &mut Conn,
    user: UserId,
    now: OffsetDateTime,
) -> QueryResult<Vec<Session>> {
    sessions::table
        .filter(sessions::user_id.eq(DbId(user.0)))
        .filter(sessions::verified_at.is_not_null())
        .filter(sessions::closed_at.is_null())
        .filter(sessions::expires_at.gt(DbTime(now)))
        .order((sessions::created_at, sessions::id))
        .select(SessionRow::as_select())
        .load::<SessionRow>(conn)?
        .into_iter()
        .map(SessionRow::into_session)
        .collect()
}

pub(crate) fn close_session(
    conn: &mut Conn,
    user: UserId,
    id: SessionId,
    at: OffsetDateTime,
) -> QueryResult<bool> {
    let changed = write_tx(conn, |conn| {
        let changed = diesel::update(
            sessions::table
                .filter(sessions::id.eq(DbId(id.0)))
                .filter(sessions::user_id.eq(DbId(user.0)))
                .filter(sessions::closed_at.is_null()),
        )
        .set(sessions::closed_at.eq(DbTime(at)))
        .execute(conn)?;
        if changed > 0 {
            record_revocation(conn, "session", id.0)?;
        }
        Ok(changed)
    })?;
    Ok(changed > 0)
}

/// Inserts a revocation row in the caller's transaction; the database
/// stamps its time.
fn record_revocation(conn: &mut Conn, kind: &str, subject: Uuid) -> QueryResult<()> {
    diesel::insert_into(revocations::table)
        .values((
            revocations::kind.eq(kind),
            revocations::subject.eq(DbId(subject)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Reads a revocation row back into the domain's type.
fn into_revocation(id: i64, kind: &str, subject: Uuid, at: i64) -> QueryResult<Revocation> {
    let revoked = match kind {
        "session" => Revoked::Session(SessionId(subject)),
        "key_pair" => Revoked::KeyPair(KeyPairId(subject)),
        "user" => Revoked::User(UserId(subject)),
        other => {
            return Err(DbError::internal(format!(
                "unknown revocation kind {other:?} in row {id}"
            )));
        }
    };
    Ok(Revocation { id, revoked, at })
}

pub(crate) fn extend_session(
    conn: &mut Conn,
    id: SessionId,
    expires_at: OffsetDateTime,
) -> QueryResult<bool> {
    let changed = write_tx(conn, |conn| {
        diesel::update(
            sessions::table
                .filter(sessions::id.eq(DbId(id.0)))
                .filter(sessions::closed_at.is_null()),
        )
        .set(sessions::expires_at.eq(DbTime(expires_at)))
        .execute(conn)
        .map_err(DbError::from)
    })?;
    Ok(changed > 0)
}

// Codes.

/// Takes one attempt of a live code and counts one failure against its
/// account, in one transaction. The code's attempt counter rises in a single
/// conditional UPDATE; the account's counter is read and written while its
/// row is locked. When the account is over its limit the transaction rolls
/// back, so the code keeps its attempt.
pub(crate) fn reserve_code_attempt(
    conn: &mut Conn,
    id: CodeId,
    purposes: &[CodePurpose],
    user: Option<UserId>,
    now: OffsetDateTime,
    max_attempts: u32,
    account: &AccountLimit,
) -> QueryResult<Reservation> {
    if purposes.is_empty() {
        return Ok(Reservation::NoCode);
    }
    let purposes: Vec<&str> = purposes.iter().map(|p| p.as_str()).collect();
    let max_attempts = i32::try_from(max_attempts).unwrap_or(i32::MAX);
    let user = user.map(|u| DbId(u.0));
    // With no user given, `user_id = NULL` is NULL and the OR takes the
    // second operand, which is true.
    let user_matches = codes::user_id
        .nullable()
        .eq(user)
        .or(user.is_none().into_sql::<diesel::sql_types::Bool>());

    let mut locked_for = None;
    let result = write_tx(conn, |conn| {
        let reserved = diesel::update(
            codes::table
                .filter(codes::id.eq(DbId(id.0)))
                .filter(codes::used_at.is_null())
                .filter(codes::expires_at.gt(DbTime(now)))
                .filter(codes::attempts.lt(max_attempts))
                .filter(codes::purpose.eq_any(&purposes))
                .filter(user_matches),
        )
        .set(codes::attempts.eq(codes::attempts + 1))
        .returning(CodeRow::as_returning())
        .get_result::<CodeRow>(conn)
        .optional()?;
        let Some(reserved) = reserved else {
            return Ok(None);
        };

        lock_user(conn, reserved.user_id)?;
        let (count, start) = users::table
            .filter(users::id.eq(reserved.user_id))
            .select((users::failed_codes, users::failed_window_start))
            .first::<(i32, Option<DbTime>)>(conn)?;
        let state = start.map(|start| (start.0, count.max(0) as u32, start.0));
        match decide_hit(state, now, &account.as_rule()) {
            (RateDecision::Limited { retry_after }, _) => {
                locked_for = Some(retry_after);
                Err(DbError::from(diesel::result::Error::RollbackTransaction))
            }
            (RateDecision::Allowed, next) => {
                if let Some((start, count, _)) = next {
                    diesel::update(users::table.filter(users::id.eq(reserved.user_id)))
                        .set((
                            users::failed_codes.eq(count as i32),
                            users::failed_window_start.eq(Some(DbTime(start))),
                        ))
                        .execute(conn)?;
                }
                Ok(Some(reserved))
            }
        }
    });
    if let Some(retry_after) = locked_for {
        return Ok(Reservation::AccountLocked { retry_after });
    }
    match result? {
        Some(row) => row.into_reserved().map(Reservation::Reserved),
        None => Ok(Reservation::NoCode),
    }
}

/// Counts one event for `key` if `rule` allows it. The counter row is
/// created when missing, then read and written while it is locked.
pub(crate) fn hit(
    conn: &mut Conn,
    key: &str,
    now: OffsetDateTime,
    rule: &RateRule,
) -> QueryResult<RateDecision> {
    write_tx(conn, |conn| {
        lock_counter(conn, key, now)?;
        let (start, count, last) = rate_counters::table
            .filter(rate_counters::key.eq(key))
            .select((
                rate_counters::window_start,
                rate_counters::count,
                rate_counters::last_at,
            ))
            .first::<(DbTime, i32, DbTime)>(conn)?;
        // A count of zero marks a row made just now by `lock_counter`.
        let state = (count > 0).then_some((start.0, count as u32, last.0));
        let (decision, next) = decide_hit(state, now, rule);
        if let Some((start, count, last)) = next {
            diesel::update(rate_counters::table.filter(rate_counters::key.eq(key)))
                .set((
                    rate_counters::window_start.eq(DbTime(start)),
                    rate_counters::count.eq(count as i32),
                    rate_counters::last_at.eq(DbTime(last)),
                ))
                .execute(conn)?;
        }
        Ok(decision)
    })
}

pub(crate) fn purge_rate_counters(conn: &mut Conn, before: OffsetDateTime) -> QueryResult<u64> {
    let deleted =
        diesel::delete(rate_counters::table.filter(rate_counters::window_start.lt(DbTime(before))))
            .execute(conn)?;
    Ok(deleted as u64)
}

/// Marks the code used, then applies `effect`, in one transaction. The first
/// statement checks use and expiry, so only one of several concurrent calls
/// gets a row back.
pub(crate) fn consume_code(
    conn: &mut Conn,
    id: CodeId,
    now: OffsetDateTime,
    effect: &CodeEffect,
) -> QueryResult<bool> {
    // Set when the code's subject was closed or deleted after the code was
    // sent; the transaction then rolls back, so the code stays unused.
    let mut subject_gone = false;
    let result = write_tx(conn, |conn| {
        let owner = diesel::update(
            codes::table
                .filter(codes::id.eq(DbId(id.0)))
                .filter(codes::used_at.is_null())
                .filter(codes::expires_at.gt(DbTime(now))),
        )
        .set(codes::used_at.eq(DbTime(now)))
        .returning(codes::user_id)
        .get_result::<DbId>(conn)
        .optional()?;
        let Some(owner) = owner else {
            return Ok(false);
        };
        diesel::update(users::table.filter(users::id.eq(owner)))
            .set((
                users::failed_codes.eq(0),
                users::failed_window_start.eq(None::<DbTime>),
            ))
            .execute(conn)?;

        let changed = match effect {
            CodeEffect::VerifySession {
                session,
                expires_at,
                registration,
            } => {
                let changed = diesel::update(
                    sessions::table
                        .filter(sessions::id.eq(DbId(session.0)))
                        .filter(sessions::closed_at.is_null()),
                )
                .set((
                    sessions::verified_at.eq(DbTime(now)),
                    sessions::expires_at.eq(DbTime(*expires_at)),
                    sessions::last_seen_at.eq(DbTime(now)),
                ))
                .execute(conn)?;
                if *registration && changed > 0 {
                    diesel::update(users::table.filter(users::id.eq(owner)))
                        .set(users::verified_at.eq(DbTime(now)))
                        .execute(conn)?;
                    diesel::update(
                        emails::table
                            .filter(emails::user_id.eq(owner))
                            .filter(emails::preferred.eq(true)),
                    )
                    .set(emails::verified.eq(true))
                    .execute(conn)?;
                }
                changed
            }
            CodeEffect::VerifyEmail { email } => {
                diesel::update(emails::table.filter(emails::id.eq(DbId(email.0))))
                    .set(emails::verified.eq(true))
                    .execute(conn)?
            }
            CodeEffect::VerifyKeyPair { key_pair } => diesel::update(
                key_pairs::table
                    .filter(key_pairs::id.eq(DbId(key_pair.0)))
                    .filter(key_pairs::deleted_at.is_null()),
            )
            .set(key_pairs::verified_at.eq(DbTime(now)))
            .execute(conn)?,
        };
        if changed == 0 {
            subject_gone = true;
            return Err(DbError::from(diesel::result::Error::RollbackTransaction));
        }
        Ok(true)
    });
    if subject_gone {
        return Ok(false);
    }
    result
}

// Emails.

pub(crate) fn add_email(
    conn: &mut Conn,
    email: &Email,
    code: &NewCode,
    mail: &Mail,
) -> QueryResult<()> {
    write_tx(conn, |conn| {
        insert_email(conn, email)?;
        insert_code(conn, code, mail)
    })
}

pub(crate) fn list_emails(conn: &mut Conn, user: UserId) -> QueryResult<Vec<Email>> {
    let rows = emails::table
        .filter(emails::user_id.eq(DbId(user.0)))
        .order((emails::created_at, emails::id))
        .select(EmailRow::as_select())
        .load::<EmailRow>(conn)?;
    Ok(rows.into_iter().map(EmailRow::into_email).collect())
}

fn find_own_email(conn: &mut Conn, user: UserId, id: EmailId) -> QueryResult<Option<EmailRow>> {
    emails::table
        .filter(emails::id.eq(DbId(id.0)))
        .filter(emails::user_id.eq(DbId(user.0)))
        .select(EmailRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)
}

pub(crate) fn prefer_email(conn: &mut Conn, user: UserId, id: EmailId) -> QueryResult<EmailChange> {
    write_tx(conn, |conn| {
        lock_user_emails(conn, user)?;
        let Some(target) = find_own_email(conn, user, id)? else {
            return Ok(EmailChange::NotFound);
        };
        if !target.verified {
            return Ok(EmailChange::Unverified);
        }

        // Clear the old preference first: a partial unique index allows one
        // preferred email per user at any moment.
        diesel::update(
            emails::table
                .filter(emails::user_id.eq(DbId(user.0)))
                .filter(emails::id.ne(DbId(id.0)))
                .filter(emails::preferred.eq(true)),
        )
        .set(emails::preferred.eq(false))
        .execute(conn)?;
        let row = diesel::update(emails::table.filter(emails::id.eq(DbId(id.0))))
            .set(emails::preferred.eq(true))
            .returning(EmailRow::as_returning())
            .get_result::<EmailRow>(conn)?;
        Ok(EmailChange::Done(row.into_email()))
    })
}

pub(crate) fn delete_email(conn: &mut Conn, user: UserId, id: EmailId) -> QueryResult<EmailChange> {
    write_tx(conn, |conn| {
        let Some(target) = find_own_email(conn, user, id)? else {
            return Ok(EmailChange::NotFound);
        };
        if target.preferred {
            return Ok(EmailChange::Preferred);
        }
        diesel::delete(emails::table.filter(emails::id.eq(DbId(id.0)))).execute(conn)?;
        Ok(EmailChange::Done(target.into_email()))
    })
}

// Key pairs.

pub(crate) fn create_key_pair(
    conn: &mut Conn,
    key_pair: &KeyPair,
    code: &NewCode,
    mail: &Mail,
) -> QueryResult<()> {
    write_tx(conn, |conn| {
        diesel::insert_into(key_pairs::table)
            .values(NewKeyPairRow {
                id: DbId(key_pair.id.0),
                user_id: DbId(key_pair.user_id.0),
                name: key_pair.name.as_str(),
                api_key: &key_pair.api_key,
                secret_digest: key_pair.secret_digest.as_bytes(),
                created_at: DbTime(key_pair.created_at),
                expires_at: DbTime(key_pair.expires_at),
                verified_at: key_pair.verified_at.map(DbTime),
                deleted_at: key_pair.deleted_at.map(DbTime),
            })
            .execute(conn)?;
        insert_code(conn, code, mail)
    })
}

pub(crate) fn find_key_pair(
    conn: &mut Conn,
    api_key: &str,
) -> QueryResult<Option<KeyPairWithUser>> {
    let found = key_pairs::table
        .inner_join(users::table)
        .filter(key_pairs::api_key.eq(api_key))
        .select((KeyPairRow::as_select(), UserRow::as_select()))
        .first::<(KeyPairRow, UserRow)>(conn)
        .optional()?;
    found
        .map(|(key_pair, user)| {
            Ok(KeyPairWithUser {
                key_pair: key_pair.into_key_pair()?,
                user: user.into_user()?,
            })
        })
        .transpose()
}

pub(crate) fn list_key_pairs(conn: &mut Conn, user: UserId) -> QueryResult<Vec<KeyPair>> {
    key_pairs::table
        .filter(key_pairs::user_id.eq(DbId(user.0)))
        .filter(key_pairs::deleted_at.is_null())
        .order((key_pairs::created_at, key_pairs::id))
        .select(KeyPairRow::as_select())
        .load::<KeyPairRow>(conn)?
        .into_iter()
        .map(KeyPairRow::into_key_pair)
        .collect()
}

pub(crate) fn delete_key_pair(
    conn: &mut Conn,
    user: UserId,
    id: KeyPairId,
    at: OffsetDateTime,
) -> QueryResult<Option<KeyPair>> {
    let deleted = write_tx(conn, |conn| {
        let deleted = diesel::update(
            key_pairs::table
                .filter(key_pairs::id.eq(DbId(id.0)))
                .filter(key_pairs::user_id.eq(DbId(user.0)))
                .filter(key_pairs::deleted_at.is_null()),
        )
        .set(key_pairs::deleted_at.eq(DbTime(at)))
        .returning(KeyPairRow::as_returning())
        .get_result::<KeyPairRow>(conn)
        .optional()?;
        if deleted.is_some() {
            record_revocation(conn, "key_pair", id.0)?;
        }
        Ok(deleted)
    })?;
    deleted.map(KeyPairRow::into_key_pair).transpose()
}

// Outbox.

pub(crate) fn enqueue(conn: &mut Conn, mails: &[Mail], now: OffsetDateTime) -> QueryResult<()> {
    write_tx(conn, |conn| {
        for mail in mails {
            insert_mail(conn, mail, now)?;
        }
        Ok(())
    })
}

/// Moves the due time of the given rows to `until` and returns them, oldest
/// first. Callers pick and lock the rows.
fn lease_rows(
    conn: &mut Conn,
    ids: &[DbId],
    until: OffsetDateTime,
) -> QueryResult<Vec<OutboxEntry>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows = diesel::update(outbox::table.filter(outbox::id.eq_any(ids)))
        .set(outbox::due_at.eq(DbTime(until)))
        .returning(OutboxRow::as_returning())
        .get_results::<OutboxRow>(conn)?;
    rows.sort_by_key(|row| row.created_at.0);
    rows.into_iter().map(OutboxRow::into_entry).collect()
}

fn encode_mail(mail: &Mail) -> QueryResult<String> {
    serde_json::to_string(mail)
        .map_err(|e| DbError::internal(format!("failed to encode a message: {e}")))
}

pub(crate) fn mark_sent(
    conn: &mut Conn,
    id: Uuid,
    at: OffsetDateTime,
    redacted: &Mail,
) -> QueryResult<()> {
    let payload = encode_mail(redacted)?;
    write_tx(conn, |conn| {
        diesel::update(outbox::table.filter(outbox::id.eq(DbId(id))))
            .set((outbox::sent_at.eq(DbTime(at)), outbox::payload.eq(payload)))
            .execute(conn)?;
        Ok(())
    })?;
    drop_old_page_copies(conn);
    Ok(())
}

pub(crate) fn mark_retry(
    conn: &mut Conn,
    id: Uuid,
    next_attempt_at: OffsetDateTime,
    error: &str,
) -> QueryResult<()> {
    write_tx(conn, |conn| {
        diesel::update(outbox::table.filter(outbox::id.eq(DbId(id))))
            .set((
                outbox::due_at.eq(DbTime(next_attempt_at)),
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::last_error.eq(error),
            ))
            .execute(conn)?;
        Ok(())
    })
}

pub(crate) fn mark_failed(
    conn: &mut Conn,
    id: Uuid,
    at: OffsetDateTime,
    redacted: &Mail,
    error: &str,
) -> QueryResult<()> {
    let payload = encode_mail(redacted)?;
    write_tx(conn, |conn| {
        diesel::update(outbox::table.filter(outbox::id.eq(DbId(id))))
            .set((
                outbox::failed_at.eq(DbTime(at)),
                outbox::payload.eq(payload),
                outbox::last_error.eq(error),
            ))
            .execute(conn)?;
        Ok(())
    })?;
    drop_old_page_copies(conn);
    Ok(())
}

pub(crate) fn purge_finished(conn: &mut Conn, before: OffsetDateTime) -> QueryResult<u64> {
    let deleted = write_tx(conn, |conn| {
        diesel::delete(
            outbox::table.filter(
                outbox::sent_at.lt(DbTime(before)).or(outbox::sent_at
                    .is_null()
                    .and(outbox::failed_at.lt(DbTime(before)))),
            ),
        )
        .execute(conn)
        .map_err(DbError::from)
    })?;
    Ok(deleted as u64)
}

pub(crate) fn pending_count(conn: &mut Conn) -> QueryResult<u64> {
    let count = outbox::table
        .filter(outbox::sent_at.is_null())
        .filter(outbox::failed_at.is_null())
        .count()
        .get_result::<i64>(conn)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

pub(crate) fn ping(conn: &mut Conn) -> QueryResult<()> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}
