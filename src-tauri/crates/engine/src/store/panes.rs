//! The panes of a conversation as rows: their stable keys, targets,
//! settings, order, forks and chosen answers, and which pane every answer
//! belongs to. Reopening a conversation reads these rows, so it comes back
//! as it was left whatever "Continue with this" or removing a pane did to
//! the order.
//!
//! Conversations written before panes had rows (schema 2 and earlier, and
//! imports of their exports) get rows derived from their answers by
//! [`derive_panes`]: one pane per target, since the old position of an
//! answer was not an identity.

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use switchboard_protocol::{PaneFork, PaneLayout, PaneParams, SavedPane, valid_pane_key};

use super::{ConversationId, MessageId, Store, StoreError};

/// Which pane an answer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaneRef<'a> {
    /// The pane with this key (the app's panes).
    Key(&'a str),
    /// The pane at this position of a layout that never changes (one
    /// `ask` of the command line); its key is the position.
    Position(u32),
}

impl From<u32> for PaneRef<'_> {
    fn from(position: u32) -> Self {
        PaneRef::Position(position)
    }
}

impl<'a> From<&'a str> for PaneRef<'a> {
    fn from(key: &'a str) -> Self {
        PaneRef::Key(key)
    }
}

/// A pane row: its id and what the view needs of it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPane {
    /// Its row id (answers refer to it).
    pub id: i64,
    /// Its order among the open panes; `None` when closed.
    pub position: Option<u32>,
    /// The pane itself.
    pub pane: SavedPane,
}

fn to_u32(v: Option<i64>) -> Option<u32> {
    v.and_then(|n| u32::try_from(n).ok())
}

fn check_layout(layout: &PaneLayout) -> Result<(), StoreError> {
    let mut seen = std::collections::HashSet::new();
    for p in &layout.panes {
        if !valid_pane_key(&p.key) {
            return Err(StoreError::invalid(format!(
                "{:?} is not a pane key (letters, digits, - _ : # .; at most 64)",
                p.key
            )));
        }
        if !seen.insert(p.key.as_str()) {
            return Err(StoreError::invalid(format!(
                "pane {:?} appears twice in the layout",
                p.key
            )));
        }
        if p.fork.as_ref().is_some_and(|f| f.pane == p.key) {
            return Err(StoreError::invalid(format!(
                "pane {:?} cannot continue its own thread",
                p.key
            )));
        }
    }
    Ok(())
}

fn conversation_exists(tx: &Transaction<'_>, id: ConversationId) -> Result<i64, StoreError> {
    tx.query_row(
        "SELECT layout_rev FROM conversations WHERE id = ?1",
        [id.0],
        |r| r.get(0),
    )
    .optional()?
    .ok_or(StoreError::NotFound {
        what: "conversation",
        id: id.0,
    })
}

/// Save `layout` as the open panes of `conversation` when its revision is
/// newer than the saved one; false when it is not (nothing changes).
pub(crate) fn apply_layout(
    tx: &Transaction<'_>,
    conversation: ConversationId,
    layout: &PaneLayout,
) -> Result<bool, StoreError> {
    check_layout(layout)?;
    let saved_rev = conversation_exists(tx, conversation)?;
    let rev = i64::try_from(layout.rev).unwrap_or(i64::MAX);
    if rev <= saved_rev {
        return Ok(false);
    }
    tx.execute(
        "UPDATE panes SET position = NULL WHERE conversation_id = ?1",
        [conversation.0],
    )?;
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO panes (conversation_id, key, position, target, system_prompt,
                temperature, max_tokens, fork_rounds, chosen_round)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (conversation_id, key) DO UPDATE SET
                position = excluded.position, target = excluded.target,
                system_prompt = excluded.system_prompt, temperature = excluded.temperature,
                max_tokens = excluded.max_tokens, fork_rounds = excluded.fork_rounds,
                chosen_round = excluded.chosen_round",
        )?;
        for (i, p) in layout.panes.iter().enumerate() {
            upsert.execute(params![
                conversation.0,
                p.key,
                i as i64,
                p.target,
                p.params.system.as_deref().filter(|s| !s.trim().is_empty()),
                p.params.temperature.map(f64::from),
                p.params.max_tokens.filter(|n| *n > 0),
                p.fork.as_ref().map_or(0, |f| i64::from(f.rounds)),
                p.chosen_round,
            ])?;
        }
    }
    // Forks name their pane by key; it may be one of this layout's or a
    // closed pane that still holds its answers.
    for p in &layout.panes {
        let fork = match &p.fork {
            Some(f) => Some(pane_id(tx, conversation, &f.pane)?.ok_or_else(|| {
                StoreError::invalid(format!(
                    "pane {:?} continues pane {:?}, which this conversation does not have",
                    p.key, f.pane
                ))
            })?),
            None => None,
        };
        tx.execute(
            "UPDATE panes SET fork_pane_id = ?3 WHERE conversation_id = ?1 AND key = ?2",
            params![conversation.0, p.key, fork],
        )?;
    }
    tx.execute(
        "UPDATE conversations SET layout_rev = ?2 WHERE id = ?1",
        params![conversation.0, rev],
    )?;
    Ok(true)
}

fn pane_id(
    tx: &Transaction<'_>,
    conversation: ConversationId,
    key: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT id FROM panes WHERE conversation_id = ?1 AND key = ?2",
            params![conversation.0, key],
            |r| r.get(0),
        )
        .optional()?)
}

/// The row of the pane an answer belongs to, and its position now; a pane
/// not saved yet is added (open, after the others) with the answer's
/// target, so no answer is ever without a pane.
pub(crate) fn pane_for_answer(
    tx: &Transaction<'_>,
    conversation: ConversationId,
    pane: PaneRef<'_>,
    target: &str,
) -> Result<(i64, Option<u32>), StoreError> {
    let key = match pane {
        PaneRef::Key(k) => {
            if !valid_pane_key(k) {
                return Err(StoreError::invalid(format!("{k:?} is not a pane key")));
            }
            k.to_owned()
        }
        PaneRef::Position(n) => n.to_string(),
    };
    let found: Option<(i64, Option<i64>)> = tx
        .query_row(
            "SELECT id, position FROM panes WHERE conversation_id = ?1 AND key = ?2",
            params![conversation.0, key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((id, position)) = found {
        return Ok((id, to_u32(position)));
    }
    let taken = |n: i64| -> Result<bool, StoreError> {
        Ok(tx
            .query_row(
                "SELECT 1 FROM panes WHERE conversation_id = ?1 AND position = ?2",
                params![conversation.0, n],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    };
    let position = match pane {
        PaneRef::Position(n) if !taken(i64::from(n))? => i64::from(n),
        _ => tx.query_row(
            "SELECT coalesce(max(position) + 1, 0) FROM panes WHERE conversation_id = ?1",
            [conversation.0],
            |r| r.get(0),
        )?,
    };
    tx.execute(
        "INSERT INTO panes (conversation_id, key, position, target) VALUES (?1, ?2, ?3, ?4)",
        params![conversation.0, key, position, target],
    )?;
    Ok((tx.last_insert_rowid(), to_u32(Some(position))))
}

/// The answer a new round continues from: in the previous round, the
/// answer of the open pane chosen with "Continue with this" (the last such
/// pane), when it answered that round.
pub(crate) fn follows(
    tx: &Transaction<'_>,
    conversation: ConversationId,
) -> Result<Option<MessageId>, StoreError> {
    let previous: Option<i64> = tx.query_row(
        "SELECT max(id) FROM messages WHERE conversation_id = ?1 AND role = 'user'",
        [conversation.0],
        |r| r.get(0),
    )?;
    let Some(previous) = previous else {
        return Ok(None);
    };
    let answer: Option<i64> = tx
        .query_row(
            "SELECT m.id FROM panes p JOIN messages m ON m.pane_id = p.id AND m.parent_id = ?2
             WHERE p.conversation_id = ?1 AND p.position IS NOT NULL
               AND p.chosen_round IS NOT NULL
             ORDER BY p.position DESC, m.id DESC LIMIT 1",
            params![conversation.0, previous],
            |r| r.get(0),
        )
        .optional()?;
    Ok(answer.map(MessageId))
}

impl Store {
    /// Save the open panes of `conversation` (in order; the others are
    /// closed). Ignored, with `false`, when `layout.rev` is not newer than
    /// the saved layout's.
    pub fn save_layout(
        &self,
        conversation: ConversationId,
        layout: &PaneLayout,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let applied = apply_layout(&tx, conversation, layout)?;
        tx.commit()?;
        Ok(applied)
    }

    /// Every pane of `conversation`: the open ones left to right, then the
    /// closed ones in the order they were made.
    pub fn panes(&self, conversation: ConversationId) -> Result<Vec<StoredPane>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT p.id, p.key, p.position, p.target, p.system_prompt, p.temperature,
                p.max_tokens, f.key, p.fork_rounds, p.chosen_round
             FROM panes p LEFT JOIN panes f ON f.id = p.fork_pane_id
             WHERE p.conversation_id = ?1
             ORDER BY p.position IS NULL, p.position, p.id",
        )?;
        let rows = stmt
            .query_map([conversation.0], |r| {
                let position = to_u32(r.get(2)?);
                let fork_key: Option<String> = r.get(7)?;
                let fork_rounds: i64 = r.get(8)?;
                Ok(StoredPane {
                    id: r.get(0)?,
                    position,
                    pane: SavedPane {
                        key: r.get(1)?,
                        target: r.get(3)?,
                        params: PaneParams {
                            system: r.get(4)?,
                            temperature: r.get::<_, Option<f64>>(5)?.map(|t| t as f32),
                            max_tokens: to_u32(r.get(6)?),
                        },
                        fork: fork_key.map(|pane| PaneFork {
                            pane,
                            rounds: u32::try_from(fork_rounds).unwrap_or(0),
                        }),
                        chosen_round: to_u32(r.get(9)?),
                        open: position.is_some(),
                    },
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The saved layout's revision.
    pub fn layout_rev(&self, conversation: ConversationId) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let rev = conversation_exists(&tx, conversation)?;
        Ok(u64::try_from(rev).unwrap_or(0))
    }
}

/// Give pane rows to answers that have none (`conversation`, or every
/// conversation when `None`): one pane per target, since an old position
/// was not an identity ("Continue with this" moved the chosen pane to the
/// first position). A target answering at two positions of one round was
/// two panes, told apart by position. A pane is open when its latest answer
/// is the latest at its position and that position was in use in the last
/// round answered; the others are closed. Settings were never saved, so
/// derived panes have none.
pub(crate) fn derive_panes(
    tx: &Transaction<'_>,
    conversation: Option<ConversationId>,
) -> Result<(), StoreError> {
    let only = conversation.map(|c| c.0);
    tx.execute_batch(
        "DROP TABLE IF EXISTS temp.legacy_answers;
         CREATE TEMP TABLE legacy_answers (
            id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL, round INTEGER,
            target TEXT NOT NULL, pos INTEGER NOT NULL, grp TEXT, first INTEGER);
         CREATE INDEX temp.legacy_by_target ON legacy_answers (conversation_id, target, round);",
    )?;
    tx.execute(
        "INSERT INTO legacy_answers (id, conversation_id, round, target, pos)
         SELECT id, conversation_id, parent_id, coalesce(target, ''), coalesce(pane, 0)
         FROM messages
         WHERE role = 'assistant' AND pane_id IS NULL AND (?1 IS NULL OR conversation_id = ?1)",
        [only],
    )?;
    tx.execute_batch(
        "UPDATE legacy_answers SET grp = target || CASE WHEN EXISTS (
            SELECT 1 FROM legacy_answers a JOIN legacy_answers b
              ON b.conversation_id = a.conversation_id AND b.target = a.target
             AND b.round = a.round AND b.pos <> a.pos
            WHERE a.conversation_id = legacy_answers.conversation_id
              AND a.target = legacy_answers.target)
         THEN '#' || pos ELSE '' END;
         CREATE INDEX temp.legacy_by_group ON legacy_answers (conversation_id, grp);
         UPDATE legacy_answers SET first = (
            SELECT min(b.id) FROM legacy_answers b
            WHERE b.conversation_id = legacy_answers.conversation_id AND b.grp = legacy_answers.grp);
         INSERT INTO panes (conversation_id, key, target)
            SELECT conversation_id, 'legacy-' || first, min(target)
            FROM legacy_answers GROUP BY conversation_id, first;
         UPDATE messages SET pane_id = (
            SELECT p.id FROM legacy_answers a
            JOIN panes p ON p.conversation_id = a.conversation_id AND p.key = 'legacy-' || a.first
            WHERE a.id = messages.id)
         WHERE id IN (SELECT id FROM legacy_answers);
         UPDATE panes SET position = (
            SELECT a.pos FROM legacy_answers a
            WHERE a.conversation_id = panes.conversation_id AND 'legacy-' || a.first = panes.key
              AND a.id = (SELECT max(x.id) FROM legacy_answers x
                          WHERE x.conversation_id = a.conversation_id AND x.pos = a.pos)
              AND a.pos <= (SELECT max(y.pos) FROM legacy_answers y
                            WHERE y.conversation_id = a.conversation_id
                              AND y.round = (SELECT max(z.round) FROM legacy_answers z
                                             WHERE z.conversation_id = a.conversation_id))
            LIMIT 1)
         WHERE id IN (SELECT p.id FROM panes p JOIN legacy_answers a
                      ON p.conversation_id = a.conversation_id AND p.key = 'legacy-' || a.first);
         DROP TABLE temp.legacy_answers;",
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;
    use switchboard_protocol::PaneSpec;

    use super::*;
    use crate::store::db::MIGRATIONS;

    fn spec(key: &str, target: &str) -> PaneSpec {
        PaneSpec::new(key, target)
    }

    fn layout(rev: u64, panes: Vec<PaneSpec>) -> PaneLayout {
        PaneLayout { rev, panes }
    }

    fn open_keys(store: &Store, c: ConversationId) -> Vec<String> {
        store
            .panes(c)
            .unwrap()
            .into_iter()
            .filter(|p| p.pane.open)
            .map(|p| p.pane.key)
            .collect()
    }

    #[test]
    fn a_layout_saves_order_settings_and_forks_and_an_older_one_is_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open_at(&tmp.path().join("db.sqlite3")).unwrap();
        let c = store.recorder(false).start_conversation("t", &[]).unwrap();
        let mut b = spec("b", "an:model");
        b.params = PaneParams {
            system: Some("Be terse.".into()),
            temperature: Some(0.5),
            max_tokens: Some(300),
        };
        b.chosen_round = Some(0);
        assert!(
            store
                .save_layout(c, &layout(2, vec![spec("a", "oa:m"), b, spec("c", "gm:m")]))
                .unwrap()
        );
        // A save that was overtaken by the one above arrives late.
        assert!(
            !store
                .save_layout(c, &layout(1, vec![spec("a", "oa:m")]))
                .unwrap()
        );
        assert_eq!(open_keys(&store, c), ["a", "b", "c"]);
        let mut d = spec("d", "oa:m");
        d.fork = Some(PaneFork {
            pane: "b".into(),
            rounds: 1,
        });
        assert!(
            store
                .save_layout(c, &layout(3, vec![spec("c", "gm:m2"), d]))
                .unwrap()
        );
        assert_eq!(open_keys(&store, c), ["c", "d"]);
        let panes = store.panes(c).unwrap();
        let keys: Vec<&str> = panes.iter().map(|p| p.pane.key.as_str()).collect();
        assert_eq!(keys, ["c", "d", "a", "b"], "closed panes follow, kept");
        assert_eq!(panes[0].pane.target, "gm:m2");
        assert_eq!(
            panes[1].pane.fork,
            Some(PaneFork {
                pane: "b".into(),
                rounds: 1
            })
        );
        let b = &panes[3].pane;
        assert!(!b.open);
        assert_eq!(b.params.system.as_deref(), Some("Be terse."));
        assert_eq!(b.params.temperature, Some(0.5));
        assert_eq!(b.params.max_tokens, Some(300));
        assert_eq!(b.chosen_round, Some(0));
        assert_eq!(store.layout_rev(c).unwrap(), 3);

        // Bad layouts are refused and change nothing.
        let mut e = spec("e", "oa:m");
        e.fork = Some(PaneFork {
            pane: "nobody".into(),
            rounds: 1,
        });
        let err = store.save_layout(c, &layout(4, vec![e])).unwrap_err();
        assert!(err.to_string().contains("does not have"), "{err}");
        let err = store
            .save_layout(c, &layout(4, vec![spec("x", "a:b"), spec("x", "a:b")]))
            .unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
        let err = store
            .save_layout(c, &layout(4, vec![spec("a b", "a:b")]))
            .unwrap_err();
        assert!(err.to_string().contains("not a pane key"), "{err}");
        assert_eq!(open_keys(&store, c), ["c", "d"]);
        let missing = store.save_layout(ConversationId(999), &layout(9, Vec::new()));
        assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    }

    /// The bug this schema fixes, as an older Switchboard wrote it: three
    /// panes answered round 1, "Continue with this" kept the third, which
    /// then answered round 2 at position 0.
    fn write_schema_1_history(path: &std::path::Path) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(MIGRATIONS[0].1).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO conversations (id, title, created_at, updated_at) VALUES
                (1, 'continued', 1, 1), (2, 'same model twice', 1, 1), (3, 'one pane asked', 1, 1);
             INSERT INTO messages (id, conversation_id, parent_id, role, content, created_at, pane, target) VALUES
                (10, 1, NULL, 'user', 'q1', 1, NULL, NULL),
                (11, 1, 10, 'assistant', 'OpenAI r1', 1, 0, 'oa:m'),
                (12, 1, 10, 'assistant', 'Anthropic r1', 1, 1, 'an:m'),
                (13, 1, 10, 'assistant', 'Gemini r1', 1, 2, 'gm:m'),
                (14, 1, NULL, 'user', 'q2', 1, NULL, NULL),
                (15, 1, 14, 'assistant', 'Gemini r2', 1, 0, 'gm:m'),
                (20, 2, NULL, 'user', 'q1', 1, NULL, NULL),
                (21, 2, 20, 'assistant', 'left', 1, 0, 'oa:m'),
                (22, 2, 20, 'assistant', 'right', 1, 1, 'oa:m'),
                (30, 3, NULL, 'user', 'q1', 1, NULL, NULL),
                (31, 3, 30, 'assistant', 'A1', 1, 0, 'oa:m'),
                (32, 3, 30, 'assistant', 'B1', 1, 1, 'an:m'),
                (33, 3, 30, 'assistant', 'C1', 1, 2, 'gm:m'),
                (34, 3, NULL, 'user', 'q2', 1, NULL, NULL),
                (35, 3, 34, 'assistant', 'B2', 1, 1, 'an:m');",
        )
        .unwrap();
    }

    #[test]
    fn conversations_from_before_pane_rows_get_panes_derived_from_their_answers() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.sqlite3");
        write_schema_1_history(&path);
        let store = Store::open_at(&path).unwrap();
        let pane_of = |message: i64| -> (String, String) {
            let m = store.message(MessageId(message)).unwrap();
            let panes = store.panes(m.conversation).unwrap();
            let p = panes.iter().find(|p| Some(p.id) == m.pane_id).unwrap();
            (p.pane.key.clone(), p.pane.target.clone())
        };
        // One pane per model: Gemini's two answers share one, OpenAI's
        // round-one answer keeps its own even though it sat at position 0.
        assert_eq!(pane_of(13).0, pane_of(15).0);
        assert_eq!(pane_of(15).1, "gm:m");
        assert_eq!(pane_of(11).1, "oa:m");
        assert_ne!(pane_of(11).0, pane_of(15).0);
        let c1 = store.panes(ConversationId(1)).unwrap();
        let open: Vec<&str> = c1
            .iter()
            .filter(|p| p.pane.open)
            .map(|p| p.pane.target.as_str())
            .collect();
        assert_eq!(open, ["gm:m"], "as it was left: only the continued pane");
        assert_eq!(c1.len(), 3);
        // The same model in two panes of one round stays two panes.
        assert_ne!(pane_of(21).0, pane_of(22).0);
        assert_eq!(open_keys(&store, ConversationId(2)).len(), 2);
        // A round sent to one pane of three: the panes before it stay open.
        let c3: Vec<String> = store
            .panes(ConversationId(3))
            .unwrap()
            .into_iter()
            .filter(|p| p.pane.open)
            .map(|p| p.pane.target)
            .collect();
        assert_eq!(c3, ["oa:m", "an:m"]);
        // Reopening migrates nothing again.
        drop(store);
        let store = Store::open_at(&path).unwrap();
        assert_eq!(store.panes(ConversationId(1)).unwrap().len(), 3);
    }

    #[test]
    fn an_answer_for_a_pane_never_saved_gets_one_and_positions_stay_apart() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open_at(&tmp.path().join("db.sqlite3")).unwrap();
        let c = store.recorder(false).start_conversation("t", &[]).unwrap();
        store
            .save_layout(c, &layout(1, vec![spec("a", "oa:m")]))
            .unwrap();
        let mut conn = store.conn();
        let tx = conn.transaction().unwrap();
        let (a, pos_a) = pane_for_answer(&tx, c, PaneRef::Key("a"), "oa:m").unwrap();
        let (z, pos_z) = pane_for_answer(&tx, c, PaneRef::Key("z"), "an:m").unwrap();
        let (p0, pos_p0) = pane_for_answer(&tx, c, PaneRef::Position(0), "gm:m").unwrap();
        let (p5, pos_p5) = pane_for_answer(&tx, c, PaneRef::Position(5), "gm:m").unwrap();
        tx.commit().unwrap();
        drop(conn);
        assert_eq!(
            (pos_a, pos_z, pos_p0, pos_p5),
            (Some(0), Some(1), Some(2), Some(5))
        );
        let ids = [a, z, p0, p5];
        assert!(
            ids.iter()
                .all(|i| ids.iter().filter(|j| *j == i).count() == 1)
        );
        assert_eq!(open_keys(&store, c), ["a", "z", "0", "5"]);
    }
}
