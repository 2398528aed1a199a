-- Who may enter a room (PostgreSQL): its access level ('public', 'unlisted' or
-- 'private'), its password's argon2 hash (none: no password), "ask to join"
-- (0 or 1), and its members (who may enter a private room).
ALTER TABLE rooms ADD COLUMN access TEXT NOT NULL DEFAULT 'public';
ALTER TABLE rooms ADD COLUMN password_hash TEXT;
ALTER TABLE rooms ADD COLUMN ask_to_join BIGINT NOT NULL DEFAULT 0;
CREATE INDEX rooms_access ON rooms (access);

CREATE TABLE room_members (
    room     TEXT   NOT NULL REFERENCES rooms (name) ON DELETE CASCADE,
    user_id  TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (room, user_id)
);
CREATE INDEX room_members_user ON room_members (user_id);
