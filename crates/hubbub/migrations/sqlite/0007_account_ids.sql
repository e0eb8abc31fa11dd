-- Accounts as people (hubbub::accounts): `id` is an account's stable
-- identity, never reused; rights (room ownership, operator status, voice,
-- invitations, account bans) refer to it, so a deleted account's rights
-- die with it and a name registered again is someone new. Accounts that
-- existed before keep their nickname key as their id, which is what their
-- rights already named; new accounts get a random id starting with `~`
-- (no nickname key can). `server_operator` is set by the administrator
-- (`hubbub operator add NAME`), never by registering a name.
ALTER TABLE accounts ADD COLUMN id TEXT;
UPDATE accounts SET id = key;
CREATE UNIQUE INDEX accounts_id ON accounts (id);
ALTER TABLE accounts ADD COLUMN server_operator BOOLEAN NOT NULL DEFAULT FALSE;
