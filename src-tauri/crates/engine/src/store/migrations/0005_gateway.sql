-- 0005: client tokens of the Local API (`switchboard-cli serve`, Settings →
-- Local API). A token is shown once when it is made and kept only as its
-- SHA-256 hash (and its last four characters, for listings); revoking it
-- keeps the row, so the ledger's history of who spent what still reads.
-- Requests made with a token are tagged in the ledger with its name and,
-- when it has one, its tag.
CREATE TABLE gateway_tokens (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL,
    hash           BLOB    NOT NULL UNIQUE CHECK (length(hash) = 32),
    last4          TEXT    NOT NULL,
    tag            TEXT,
    budget         TEXT,
    record_history INTEGER NOT NULL DEFAULT 0 CHECK (record_history IN (0, 1)),
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    last_used_at   INTEGER
);
-- One live token per name; revoked ones keep theirs.
CREATE UNIQUE INDEX gateway_tokens_live_name ON gateway_tokens (name) WHERE revoked_at IS NULL;
