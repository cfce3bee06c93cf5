-- 0006: images and PDFs in prompts, history imported from other apps, and
-- history at scale.

-- An attachment's bytes live once in the data directory, under
-- attachments/<first two hex digits>/<the other 62>.<ext>, named by their
-- SHA-256 (`id`); this row says what they are. A row nothing references is
-- deleted with its file (when the last conversation using it is deleted,
-- or by a sweep), unless a lease keeps it: a file stored for a prompt not
-- yet sent.
CREATE TABLE attachments (
    id          TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 64),
    media_type  TEXT    NOT NULL,
    size        INTEGER NOT NULL CHECK (size > 0),
    width       INTEGER,
    height      INTEGER,
    pages       INTEGER,
    created_at  INTEGER NOT NULL,
    lease_until INTEGER
) WITHOUT ROWID;
CREATE INDEX attachments_leased ON attachments (lease_until) WHERE lease_until IS NOT NULL;

-- Which message carries which attachment, in the order they were added.
CREATE TABLE message_attachments (
    message_id    INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    attachment_id TEXT    NOT NULL REFERENCES attachments (id),
    name          TEXT,
    PRIMARY KEY (message_id, seq)
) WITHOUT ROWID;
CREATE INDEX message_attachments_by_attachment ON message_attachments (attachment_id);

-- An import (a ChatGPT or Claude export) runs in batches; until it ends,
-- its run row names the process doing it (`owner`, as for attempts in
-- flight), so what a failed or killed import wrote is removed again.
CREATE TABLE import_runs (
    id          INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    owner       TEXT,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER
);

-- What each imported conversation and message was called in its source,
-- so importing the same file again adds nothing twice (and a newer export
-- adds only what is new).
CREATE TABLE import_sources (
    source          TEXT    NOT NULL,
    source_id       TEXT    NOT NULL,
    run_id          INTEGER NOT NULL REFERENCES import_runs (id),
    conversation_id INTEGER REFERENCES conversations (id) ON DELETE CASCADE,
    message_id      INTEGER REFERENCES messages (id) ON DELETE CASCADE,
    PRIMARY KEY (source, source_id)
) WITHOUT ROWID;
CREATE INDEX import_sources_by_run ON import_sources (run_id);
CREATE INDEX import_sources_by_message ON import_sources (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX import_sources_by_conversation ON import_sources (conversation_id)
    WHERE conversation_id IS NOT NULL;

-- History at scale. Listing with archived conversations included sorts by
-- (pinned, updated_at, id) straight from an index.
CREATE INDEX conversations_by_recency ON conversations (pinned, updated_at, id);

-- The search index gains prefix indexes for 1-, 2- and 3-character
-- prefixes, so `k*` or `ka*` reads one list instead of merging every word
-- that starts so (a short prefix's cost no longer grows with the history;
-- longer prefixes match few words). FTS5 options are
-- fixed at creation: the index is rebuilt from the messages (the text is
-- stored once, in `messages`; nothing is lost).
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;
DROP TABLE messages_fts;
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    content,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2',
    prefix = '1 2 3'
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
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
