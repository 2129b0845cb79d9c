//! Tables as the PostgreSQL migrations create them: `uuid` ids, `timestamptz` times, `bytea` digests.

diesel::table! {
    users (id) {
        id -> Uuid,
        alias -> Text,
        alias_key -> Text,
        full_name -> Text,
        roles -> Text,
        groups -> Text,
        verified_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        failed_codes -> Integer,
        failed_window_start -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    rate_counters (key) {
        key -> Text,
        window_start -> Timestamptz,
        count -> Integer,
        last_at -> Timestamptz,
    }
}

diesel::table! {
    emails (id) {
        id -> Uuid,
        user_id -> Uuid,
        address -> Text,
        verified -> Bool,
        preferred -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        token_digest -> Binary,
        ip -> Text,
        user_agent -> Text,
        created_at -> Timestamptz,
        verified_at -> Nullable<Timestamptz>,
        expires_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        closed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    codes (id) {
        id -> Uuid,
        user_id -> Uuid,
        purpose -> Text,
        subject -> Uuid,
        hash -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        attempts -> Integer,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    key_pairs (id) {
        id -> Uuid,
        user_id -> Uuid,
        name -> Text,
        api_key -> Text,
        secret_digest -> Binary,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        verified_at -> Nullable<Timestamptz>,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Uuid,
        payload -> Text,
        recipient -> Text,
        kind -> Text,
        attempts -> Integer,
        created_at -> Timestamptz,
        due_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        failed_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    revocations (id) {
        id -> BigInt,
        kind -> Text,
        subject -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(emails -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(codes -> users (user_id));
diesel::joinable!(key_pairs -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(users, emails, sessions, codes, key_pairs, outbox);
