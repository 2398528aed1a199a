-- What an operator changes while the server runs (SQLite): the embedded relay's
-- quotas (one row, absent until first changed; `version` orders changes made at
-- once on two instances) and the signing keys' generations. Never a key:
-- generation n is derived from the environment's secret, 0 is that secret.
CREATE TABLE relay_quotas (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    per_user BIGINT  NOT NULL,
    total    BIGINT  NOT NULL,
    version  BIGINT  NOT NULL
);

CREATE TABLE signing_keys (
    kind       TEXT   PRIMARY KEY NOT NULL,
    generation BIGINT NOT NULL,
    rotated_at BIGINT
);
INSERT INTO signing_keys (kind, generation) VALUES ('turn', 0), ('jwt', 0);
