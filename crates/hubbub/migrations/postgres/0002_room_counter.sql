-- Each room's last assigned message id. The store numbers messages from
-- this counter inside the committing transaction, so ids stay gap-free and
-- unique when several nodes share the database, and never go back when
-- retention has deleted a room's newest messages.
ALTER TABLE rooms ADD COLUMN last_id BIGINT NOT NULL DEFAULT 0;

UPDATE rooms SET last_id = COALESCE((SELECT MAX(id) FROM messages m WHERE m.room = rooms.key), 0);
