-- Rooms and their chat history (SQLite).
CREATE TABLE rooms (
    name       TEXT   PRIMARY KEY NOT NULL,
    owner_id   TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);

CREATE TABLE chat_messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    room       TEXT    NOT NULL REFERENCES rooms (name) ON DELETE CASCADE,
    peer_id    TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    username   TEXT    NOT NULL,
    text       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL
);
CREATE INDEX chat_messages_room_id ON chat_messages (room, id);
