-- Moderation (hubbub::hub::policy): each room's policy — owner, topic,
-- modes, operators, voiced members, bans, mutes, invitations — as one JSON
-- document; room '' is the server's (server-wide bans). `version` makes a
-- change from two nodes at once safe: a write names the version it read.
CREATE TABLE room_policies (
    room TEXT PRIMARY KEY,
    policy TEXT NOT NULL,
    version BIGINT NOT NULL
);

-- The audit log of every moderation action, for operators (/modlog).
CREATE TABLE moderation_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    room TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    reason TEXT,
    ms BIGINT NOT NULL
);
CREATE INDEX moderation_log_room ON moderation_log (room, id);
