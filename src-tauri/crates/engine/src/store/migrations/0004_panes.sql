-- 0004: panes as rows. A pane is a column of the compare view: a target,
-- its own settings and its own thread of answers. An answer names its pane
-- by id (`messages.pane_id`); `messages.pane` (a position) stays as written,
-- for exports, but is not an identity: "Continue with this" and removing a
-- pane change positions.

CREATE TABLE panes (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    -- The view's name for the pane, stable across sessions.
    key             TEXT    NOT NULL,
    -- Order among the open panes; NULL once the pane is closed.
    position        INTEGER CHECK (position >= 0),
    target          TEXT    NOT NULL,
    system_prompt   TEXT,
    temperature     REAL,
    max_tokens      INTEGER CHECK (max_tokens > 0),
    -- A pane added after "Continue with this" continues another pane's
    -- thread for its first `fork_rounds` rounds.
    fork_pane_id    INTEGER REFERENCES panes (id) ON DELETE SET NULL,
    fork_rounds     INTEGER NOT NULL DEFAULT 0 CHECK (fork_rounds >= 0),
    -- The round (0-based, in user-message order) whose answer in this pane
    -- was chosen with "Continue with this".
    chosen_round    INTEGER CHECK (chosen_round >= 0),
    UNIQUE (conversation_id, key)
);

ALTER TABLE messages ADD COLUMN pane_id INTEGER REFERENCES panes (id) ON DELETE SET NULL;
CREATE INDEX messages_by_pane ON messages (pane_id, parent_id);

-- Layout saves carry a growing revision; an older one arriving late is
-- ignored.
ALTER TABLE conversations ADD COLUMN layout_rev INTEGER NOT NULL DEFAULT 0;

-- Conversations written before panes had rows get them derived from their
-- answers (see `store::panes::derive_panes`), in the same transaction.
