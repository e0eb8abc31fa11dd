-- Session tokens: what keeps a client logged in across reconnects and page
-- reloads without keeping its password (hubbub::session_tokens). Only a
-- SHA-256 of each token is stored; `account` is the account's key.
CREATE TABLE session_tokens (
    hash TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX session_tokens_account ON session_tokens (account);
CREATE INDEX session_tokens_expiry ON session_tokens (expires_ms);
