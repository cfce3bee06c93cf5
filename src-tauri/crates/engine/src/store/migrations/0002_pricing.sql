-- Pricing and honest speed (reserved as 0004; numbered to stay contiguous
-- with what has shipped). Anthropic prompt-cache writes are billed apart
-- from input, so an answer keeps how many prompt tokens were written to a
-- cache (and of those, how many for an hour); the thinking time of a
-- reasoning model is kept apart from its time to first visible token.
-- `ttft_ms` from now on is to the first answer-text token.

ALTER TABLE messages ADD COLUMN cache_write_tokens INTEGER;
ALTER TABLE messages ADD COLUMN cache_write_1h_tokens INTEGER;
ALTER TABLE messages ADD COLUMN thinking_ms REAL;

ALTER TABLE attempts ADD COLUMN cache_write_tokens INTEGER;
ALTER TABLE attempts ADD COLUMN cache_write_1h_tokens INTEGER;
ALTER TABLE attempts ADD COLUMN thinking_ms REAL;
