-- 0008: which answer each of a judge's anonymous labels stood for, so a
-- reopened verdict says "Answer A = pane 1 / model" as it did live. A JSON
-- array of [label, answer message id] pairs (message ids, not pane keys,
-- so an imported copy maps them like its votes); NULL for verdicts
-- recorded before.

ALTER TABLE judgments ADD COLUMN labels TEXT;
