-- Roles, bans, locked rooms, the audit log and one-time password-reset links (SQLite).
-- role: 'admin' or 'member'. banned_at: set while banned. tokens_valid_from: tokens
-- issued (iat) before it (Unix ms) are refused (a password reset ends every login).
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
ALTER TABLE users ADD COLUMN banned_at BIGINT;
ALTER TABLE users ADD COLUMN tokens_valid_from BIGINT;
-- The first account ever registered is the first admin.
UPDATE users SET role = 'admin'
 WHERE id = (SELECT id FROM users ORDER BY created_at, id LIMIT 1);
CREATE INDEX users_role ON users (role);

-- 1 while an admin keeps newcomers out.
ALTER TABLE rooms ADD COLUMN locked BIGINT NOT NULL DEFAULT 0;

-- Every admin action. No foreign keys: an entry outlives its actor and target.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         BIGINT  NOT NULL,
    actor_id   TEXT    NOT NULL,
    actor_name TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    detail     TEXT
);

-- At most one live link per account (a newer one replaces it); only the
-- token's SHA-256 is stored.
CREATE TABLE password_resets (
    user_id    TEXT   PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT   NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL
);
