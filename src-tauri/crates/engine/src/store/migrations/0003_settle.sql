-- 0003: every request settles (reserved as 0002; numbered to stay
-- contiguous with what has shipped). A stopped attempt is an outcome of its own;
-- the ledger counts requests whose price is unknown and names the answer
-- it paid for; attempts in flight are rows owned by a live process and
-- checkpointed while they stream, so a crash loses at most a second.

-- SQLite cannot change a CHECK constraint: the trace table is rebuilt with
-- 'stopped' allowed (no other table references it).
CREATE TABLE attempts_v2 (
    id                  INTEGER PRIMARY KEY,
    message_id          INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq                 INTEGER NOT NULL,
    provider            TEXT    NOT NULL,
    model               TEXT    NOT NULL,
    started_at          INTEGER NOT NULL,
    ttft_ms             REAL,
    total_ms            REAL    NOT NULL,
    outcome             TEXT    NOT NULL CHECK (outcome IN ('ok', 'error', 'skipped', 'stopped')),
    error_kind          TEXT,
    skip_kind           TEXT,
    message             TEXT,
    input_tokens        INTEGER,
    output_tokens       INTEGER,
    cached_input_tokens INTEGER,
    reasoning_tokens    INTEGER,
    cost_nanos          INTEGER,
    cost_source         TEXT CHECK (cost_source IN ('reported', 'computed', 'estimated')),
    cache_write_tokens    INTEGER,
    cache_write_1h_tokens INTEGER,
    thinking_ms           REAL,
    UNIQUE (message_id, seq)
);
INSERT INTO attempts_v2 (id, message_id, seq, provider, model, started_at, ttft_ms, total_ms,
        outcome, error_kind, skip_kind, message, input_tokens, output_tokens,
        cached_input_tokens, reasoning_tokens, cost_nanos, cost_source,
        cache_write_tokens, cache_write_1h_tokens, thinking_ms)
    SELECT id, message_id, seq, provider, model, started_at, ttft_ms, total_ms,
        outcome, error_kind, skip_kind, message, input_tokens, output_tokens,
        cached_input_tokens, reasoning_tokens, cost_nanos, cost_source,
        cache_write_tokens, cache_write_1h_tokens, thinking_ms
    FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_v2 RENAME TO attempts;

-- A request whose price is unknown is still a ledger row: cost 0 and
-- priced = 0, so sums stay exact and the requests are counted.
ALTER TABLE ledger ADD COLUMN priced INTEGER NOT NULL DEFAULT 1 CHECK (priced IN (0, 1));
-- The answer (message id) the row paid for, when recorded in history.
ALTER TABLE ledger ADD COLUMN message INTEGER;
CREATE INDEX ledger_by_message ON ledger (message) WHERE message IS NOT NULL;

-- A hold is now every attempt in flight, owned by the process running it
-- (the name of its lock file under `locks/`). Checkpoints write what the
-- attempt would bill if it ended now; when the owner dies, the next
-- Switchboard process to start bills that once and releases the hold.
ALTER TABLE reservations ADD COLUMN owner TEXT;
ALTER TABLE reservations ADD COLUMN conversation TEXT;
ALTER TABLE reservations ADD COLUMN message INTEGER;
ALTER TABLE reservations ADD COLUMN billed INTEGER NOT NULL DEFAULT 0 CHECK (billed IN (0, 1));
ALTER TABLE reservations ADD COLUMN cost_nanos INTEGER;
ALTER TABLE reservations ADD COLUMN input_tokens INTEGER;
ALTER TABLE reservations ADD COLUMN output_tokens INTEGER;
ALTER TABLE reservations ADD COLUMN progress_at INTEGER;
CREATE INDEX reservations_by_owner ON reservations (owner) WHERE owner IS NOT NULL;

-- An answer still streaming names the process writing it; it is cleared
-- when the answer is final, or by recovery (as `interrupted`).
ALTER TABLE messages ADD COLUMN live_owner TEXT;
CREATE INDEX messages_live ON messages (live_owner) WHERE live_owner IS NOT NULL;
