-- Messages stored in commit order. The table was clustered by (room, id),
-- so a batch of messages to many rooms rewrote one B-tree page per room
-- (~13 KB written per 64-byte message with 1000 rooms talking). Now rows
-- are appended at the table's end (the rowid `seq` grows with every
-- commit) and only the small (room, id) index entries land per room.
CREATE TABLE messages_in_commit_order (
    seq     INTEGER PRIMARY KEY,     -- commit order
    room    TEXT NOT NULL,           -- rooms.key
    id      INTEGER NOT NULL,        -- monotonic within the room
    ts      INTEGER NOT NULL,
    sender  TEXT NOT NULL,
    text    TEXT NOT NULL,
    action  INTEGER NOT NULL
);

INSERT INTO messages_in_commit_order (room, id, ts, sender, text, action)
    SELECT room, id, ts, sender, text, action FROM messages ORDER BY ts, room, id;

DROP TABLE messages;
ALTER TABLE messages_in_commit_order RENAME TO messages;
CREATE UNIQUE INDEX messages_room_id ON messages (room, id);
CREATE INDEX messages_ts ON messages (ts);
