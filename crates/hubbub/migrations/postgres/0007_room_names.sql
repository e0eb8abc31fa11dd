-- Which stored room a look-alike spelling of a name means. `look_alike` is
-- the hub's look-alike key of the room's name (the UTS #39 skeleton, as for
-- nicknames: `hub::names::nick_key`); `room` is that room's `rooms.key` /
-- `room_policies.room`. The first room stored under a key keeps it, so on
-- every node and after every restart `gаmes` (Cyrillic а) means `games`.
CREATE TABLE IF NOT EXISTS room_names (
    look_alike TEXT PRIMARY KEY,
    room       TEXT NOT NULL
);
