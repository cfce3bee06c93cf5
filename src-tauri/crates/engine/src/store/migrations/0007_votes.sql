-- 0007: deciding between models (as reserved; numbered to stay
-- contiguous with what has shipped). A vote belongs to a round (its user
-- message) and names the answers it compared; only blind votes feed the
-- leaderboard. A judge's verdict or merged answer is a row of its own,
-- with its cost, counted in the conversation's total but never as a vote.

CREATE TABLE votes (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    -- The round: the user message the answers reply to. One vote per round.
    round_id        INTEGER NOT NULL UNIQUE REFERENCES messages (id) ON DELETE CASCADE,
    at              INTEGER NOT NULL,
    blind           INTEGER NOT NULL CHECK (blind IN (0, 1)),
    verdict         TEXT    NOT NULL CHECK (verdict IN ('best', 'tie', 'all_bad')),
    winner_id       INTEGER REFERENCES messages (id) ON DELETE CASCADE,
    CHECK ((verdict = 'best') = (winner_id IS NOT NULL))
);
CREATE INDEX votes_by_time ON votes (at);

CREATE TABLE vote_answers (
    vote_id    INTEGER NOT NULL REFERENCES votes (id) ON DELETE CASCADE,
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    PRIMARY KEY (vote_id, message_id)
) WITHOUT ROWID;

CREATE TABLE judgments (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    round_id        INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    task            TEXT    NOT NULL CHECK (task IN ('verdict', 'merge')),
    prompt          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    target          TEXT    NOT NULL,
    provider        TEXT,
    model           TEXT,
    content         TEXT    NOT NULL,
    error_kind      TEXT,
    error_message   TEXT,
    input_tokens    INTEGER,
    output_tokens   INTEGER,
    cost_nanos      INTEGER,
    cost_source     TEXT CHECK (cost_source IN ('reported', 'computed', 'estimated')),
    ttft_ms         REAL,
    total_ms        REAL,
    tokens_per_s    REAL
);
CREATE INDEX judgments_by_round ON judgments (round_id);
