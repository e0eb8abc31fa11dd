-- Rooms that had at least one message, and every room and private message.
CREATE TABLE IF NOT EXISTS rooms (
    key        TEXT PRIMARY KEY,     -- case-folded name
    name       TEXT NOT NULL,        -- as first spelled
    created_at BIGINT NOT NULL       -- ms since the Unix epoch
);

CREATE TABLE IF NOT EXISTS messages (
    room    TEXT NOT NULL,           -- rooms.key
    id      BIGINT NOT NULL,         -- monotonic within the room
    ts      BIGINT NOT NULL,
    sender  TEXT NOT NULL,
    text    TEXT NOT NULL,
    action  BOOLEAN NOT NULL,
    PRIMARY KEY (room, id)
);

CREATE INDEX IF NOT EXISTS messages_ts ON messages (ts);

CREATE TABLE IF NOT EXISTS private_messages (
    id        BIGSERIAL PRIMARY KEY,
    ts        BIGINT NOT NULL,
    sender    TEXT NOT NULL,
    recipient TEXT NOT NULL,
    text      TEXT NOT NULL
);
