-- Files shared in a room's chat (PostgreSQL). The bytes live in the file store under
-- the attachment's id (never under the name a client sent); this is the record.
-- A file's chat message points at it (chat_messages.attachment_id) and goes
-- when it goes; both go with their room. No reference to users: like chat
-- messages, a file stays with its room after its sender's account is deleted
-- (until retention removes it). Times are milliseconds since the epoch.
CREATE TABLE attachments (
    id           TEXT   PRIMARY KEY,
    room         TEXT   NOT NULL REFERENCES rooms (name) ON DELETE CASCADE,
    user_id      TEXT   NOT NULL,
    name         TEXT   NOT NULL,
    size         BIGINT NOT NULL,
    content_type TEXT   NOT NULL,
    sha256       TEXT   NOT NULL,
    thumb_width  BIGINT,
    thumb_height BIGINT,
    created_at   BIGINT NOT NULL
);

CREATE INDEX attachments_by_room ON attachments (room);
CREATE INDEX attachments_by_user ON attachments (user_id);
CREATE INDEX attachments_by_age ON attachments (created_at);

ALTER TABLE chat_messages
    ADD COLUMN attachment_id TEXT REFERENCES attachments (id) ON DELETE CASCADE;
CREATE INDEX chat_messages_by_attachment ON chat_messages (attachment_id);
