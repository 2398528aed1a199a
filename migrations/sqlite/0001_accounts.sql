-- Accounts and logout revocation (SQLite).
-- Ids are UUID strings; times are Unix milliseconds (the same types on both backends).
CREATE TABLE users (
    id            TEXT    PRIMARY KEY NOT NULL,
    email         TEXT    NOT NULL,
    email_norm    TEXT    NOT NULL UNIQUE,
    username      TEXT    NOT NULL,
    username_norm TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE revoked_tokens (
    jti        TEXT   PRIMARY KEY NOT NULL,
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);
