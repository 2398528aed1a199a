-- Guest links (SQLite): a room's invite links. Only the SHA-256 of a link's
-- token is kept; a link goes with its room and with the account that made it.
-- max_uses NULL: unlimited. Times are milliseconds since the epoch.
CREATE TABLE room_invites (
    id         TEXT   PRIMARY KEY,
    room       TEXT   NOT NULL REFERENCES rooms (name) ON DELETE CASCADE,
    token_hash TEXT   NOT NULL UNIQUE,
    created_by TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    max_uses   BIGINT,
    uses       BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX room_invites_by_room ON room_invites (room, created_at);
