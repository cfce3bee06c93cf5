-- 0001: the first schema. Shipped migrations are never edited; a change is
-- a new numbered file. Times are Unix milliseconds (UTC); money is whole
-- nano-dollars (INTEGER), never REAL.

CREATE TABLE conversations (
    id          INTEGER PRIMARY KEY,
    title       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    pinned      INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1)),
    archived    INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1))
);
-- The listing order: pinned first, then most recently updated.
CREATE INDEX conversations_listing ON conversations (archived, pinned, updated_at, id);

CREATE TABLE conversation_tags (
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    tag             TEXT    NOT NULL,
    PRIMARY KEY (conversation_id, tag)
) WITHOUT ROWID;
CREATE INDEX conversation_tags_by_tag ON conversation_tags (tag, conversation_id);

-- One row per message. `parent_id` makes a tree: several answers (panes)
-- share the user message they answer, and a branch continues from any of
-- them. Answers carry the outcome of their request; the attempts behind it
-- are in `attempts`.
CREATE TABLE messages (
    id                  INTEGER PRIMARY KEY,
    conversation_id     INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    parent_id           INTEGER REFERENCES messages (id) ON DELETE CASCADE,
    role                TEXT    NOT NULL CHECK (role IN ('user', 'assistant')),
    content             TEXT    NOT NULL,
    reasoning           TEXT,
    created_at          INTEGER NOT NULL,
    pane                INTEGER,
    target              TEXT,
    route               TEXT,
    provider            TEXT,
    model               TEXT,
    finish_reason       TEXT,
    error_kind          TEXT,
    error_message       TEXT,
    input_tokens        INTEGER,
    output_tokens       INTEGER,
    cached_input_tokens INTEGER,
    reasoning_tokens    INTEGER,
    cost_nanos          INTEGER,
    cost_source         TEXT CHECK (cost_source IN ('reported', 'computed', 'estimated')),
    ttft_ms             REAL,
    total_ms            REAL,
    tokens_per_s        REAL
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
CREATE INDEX messages_by_parent ON messages (parent_id);

-- Every attempt of the request behind an answer, in order: what the router
-- tried, skipped and why.
CREATE TABLE attempts (
    id                  INTEGER PRIMARY KEY,
    message_id          INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq                 INTEGER NOT NULL,
    provider            TEXT    NOT NULL,
    model               TEXT    NOT NULL,
    started_at          INTEGER NOT NULL,
    ttft_ms             REAL,
    total_ms            REAL    NOT NULL,
    outcome             TEXT    NOT NULL CHECK (outcome IN ('ok', 'error', 'skipped')),
    error_kind          TEXT,
    skip_kind           TEXT,
    message             TEXT,
    input_tokens        INTEGER,
    output_tokens       INTEGER,
    cached_input_tokens INTEGER,
    reasoning_tokens    INTEGER,
    cost_nanos          INTEGER,
    cost_source         TEXT CHECK (cost_source IN ('reported', 'computed', 'estimated')),
    UNIQUE (message_id, seq)
);

-- Full-text index over message text, kept in sync by triggers (external
-- content: the text is stored once, in `messages`).
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    content,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
END;

-- The spend ledger: one row per billed attempt. Not tied to `conversations`
-- by a foreign key: deleting a conversation does not unspend its money.
CREATE TABLE ledger (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    provider        TEXT    NOT NULL,
    model           TEXT    NOT NULL,
    route           TEXT,
    conversation    TEXT,
    cost_nanos      INTEGER NOT NULL,
    estimated       INTEGER NOT NULL CHECK (estimated IN (0, 1)),
    input_tokens    INTEGER,
    output_tokens   INTEGER
);
CREATE INDEX ledger_by_time ON ledger (at);
CREATE INDEX ledger_by_provider ON ledger (provider, at);
CREATE INDEX ledger_by_route ON ledger (route, at);

CREATE TABLE ledger_tags (
    entry_id INTEGER NOT NULL REFERENCES ledger (id) ON DELETE CASCADE,
    tag      TEXT    NOT NULL,
    PRIMARY KEY (entry_id, tag)
) WITHOUT ROWID;
CREATE INDEX ledger_tags_by_tag ON ledger_tags (tag, entry_id);

-- Money held for attempts in flight, visible to every thread and process.
-- A hold whose process died stops counting at `expires_at`.
CREATE TABLE reservations (
    id          INTEGER PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    provider    TEXT    NOT NULL,
    model       TEXT    NOT NULL,
    route       TEXT,
    amount_nanos INTEGER NOT NULL
);
CREATE INDEX reservations_by_expiry ON reservations (expires_at);

CREATE TABLE reservation_tags (
    reservation_id INTEGER NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
    tag            TEXT    NOT NULL,
    PRIMARY KEY (reservation_id, tag)
) WITHOUT ROWID;

-- Provider health: recent attempts per target and the cooldown state.
CREATE TABLE health_samples (
    id            INTEGER PRIMARY KEY,
    provider      TEXT    NOT NULL,
    model         TEXT    NOT NULL,
    at            INTEGER NOT NULL,
    ok            INTEGER NOT NULL CHECK (ok IN (0, 1)),
    error_kind    TEXT,
    ttft_ms       REAL,
    tokens_per_s  REAL
);
CREATE INDEX health_samples_by_target ON health_samples (provider, model, id);

CREATE TABLE health_cooldowns (
    provider              TEXT    NOT NULL,
    model                 TEXT    NOT NULL,
    consecutive_failures  INTEGER NOT NULL,
    until_at              INTEGER,
    level                 INTEGER NOT NULL,
    PRIMARY KEY (provider, model)
) WITHOUT ROWID;

-- Which provider ids have a key in the OS keychain (the keychain has no
-- listing). Never the key itself: only its last four characters.
CREATE TABLE key_index (
    provider_id TEXT    NOT NULL PRIMARY KEY,
    last4       TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
