-- Moderation in a call (SQLite): "only hosts may speak" (0 or 1) and the
-- accounts banned from a room, both lasting as long as the room.
ALTER TABLE rooms ADD COLUMN hosts_only BIGINT NOT NULL DEFAULT 0;

CREATE TABLE room_bans (
    room      TEXT   NOT NULL REFERENCES rooms (name) ON DELETE CASCADE,
    user_id   TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    banned_at BIGINT NOT NULL,
    PRIMARY KEY (room, user_id)
);
