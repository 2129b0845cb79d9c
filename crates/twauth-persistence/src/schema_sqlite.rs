//! Tables as the SQLite migrations create them: 16-byte blob ids, Unix-second `bigint` times, blob digests.

diesel::table! {
    users (id) {
        id -> Binary,
        alias -> Text,
        alias_key -> Text,
        full_name -> Text,
        roles -> Text,
        groups -> Text,
        verified_at -> Nullable<BigInt>,
        created_at -> BigInt,
        failed_codes -> Integer,
        failed_window_start -> Nullable<BigInt>,
    }
}

diesel::table! {
    rate_counters (key) {
        key -> Text,
        window_start -> BigInt,
        count -> Integer,
        last_at -> BigInt,
    }
}

diesel::table! {
    emails (id) {
        id -> Binary,
        user_id -> Binary,
        address -> Text,
        verified -> Bool,
        preferred -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Binary,
        user_id -> Binary,
        token_digest -> Binary,
        ip -> Text,
        user_agent -> Text,
        created_at -> BigInt,
        verified_at -> Nullable<BigInt>,
        expires_at -> BigInt,
        last_seen_at -> BigInt,
        closed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    codes (id) {
        id -> Binary,
        user_id -> Binary,
        purpose -> Text,
        subject -> Binary,
        hash -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        attempts -> Integer,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    key_pairs (id) {
        id -> Binary,
        user_id -> Binary,
        name -> Text,
        api_key -> Text,
        secret_digest -> Binary,
        created_at -> BigInt,
        expires_at -> BigInt,
        verified_at -> Nullable<BigInt>,
        deleted_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Binary,
        payload -> Text,
        recipient -> Text,
        kind -> Text,
        attempts -> Integer,
        created_at -> BigInt,
        due_at -> BigInt,
        sent_at -> Nullable<BigInt>,
        failed_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    revocations (id) {
        id -> BigInt,
        kind -> Text,
        subject -> Binary,
        created_at -> BigInt,
    }
}

diesel::joinable!(emails -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(codes -> users (user_id));
diesel::joinable!(key_pairs -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(users, emails, sessions, codes, key_pairs, outbox);
