-- Accounts and logout revocation (PostgreSQL).
-- Ids are UUID strings; times are Unix milliseconds (the same types on both backends).
CREATE TABLE users (
    id            TEXT    PRIMARY KEY,
    email         TEXT    NOT NULL,
    email_norm    TEXT    NOT NULL,
    username      TEXT    NOT NULL,
    username_norm TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    CONSTRAINT users_email_norm_key UNIQUE (email_norm),
    CONSTRAINT users_username_norm_key UNIQUE (username_norm)
);

CREATE TABLE revoked_tokens (
    jti        TEXT   PRIMARY KEY,
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);
