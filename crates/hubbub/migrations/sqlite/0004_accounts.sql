-- Accounts: a registered nickname belongs to whoever knows its password.
-- `key` is the nickname's comparison key (hub::names::nick_key), `name` its
-- spelling at registration; `password_hash` a PHC string (Argon2id).
CREATE TABLE accounts (
    key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
