//! The spend ledger and the budget gate.
//!
//! Every billed attempt is one `ledger` row (at, provider, model, route,
//! conversation, answer, tags, cost in nano-dollars, estimated flag,
//! tokens), so totals are exact integer sums. A model whose price is
//! unknown still gets its row (cost 0, `priced = 0`): the request and its
//! tokens count, and spend reports how many requests had no price.
//!
//! Before an attempt the router reserves the most it can cost through
//! [`SqliteBudgetGate`]; the check and the hold happen in one `BEGIN
//! IMMEDIATE` transaction, and holds are rows, so two threads or two
//! processes can never both pass a budget that only has room for one. A
//! hard budget refuses an attempt whose price is unknown (it could not
//! bound it). The hold row is also the attempt's crash record: it names
//! the process that owns it and the answer it streams, and checkpoints
//! write what it would bill if it ended now (and keep it from expiring).
//! Settling deletes the hold and writes the ledger row in one transaction;
//! if the process dies first, the next store to open bills the last
//! checkpoint instead ([`Store::recover`]).
//!
//! Every gate call blocks on the database: the router runs them on
//! blocking threads. Holds asked for at the same moment (the panes of a
//! round) are queued on the store and decided by one blocking thread, in
//! order, in one transaction per batch; each attempt waits for its own
//! decision, committed, before it is sent.
//!
//! Periods are UTC: a daily budget counts from 00:00 UTC, a monthly one
//! from the 1st at 00:00 UTC (see [`super::time`]).

use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior, params};
use serde::Serialize;

use super::time::{day_start, month_start, now_ms};
use super::{Store, StoreError, to_sql_u64};
use crate::chat::AttemptResult;
use crate::config::{Budget, BudgetPeriod, BudgetScope};
use crate::hooks::{BudgetDenied, BudgetGate, Reservation, SettledCost, SpendContext};
use crate::money::Cost;

/// How long a hold counts past its last checkpoint when its attempt never
/// settles and no process recovers it (its owner died and no Switchboard
/// has started since): a crash does not block a budget for the rest of the
/// day. A live attempt's checkpoints keep extending it.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(15 * 60);

/// How ledger totals are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendGrouping {
    /// By UTC day (`2026-05-01`).
    Day,
    /// By week, Monday to Sunday UTC, named by its Monday (`2026-04-27`).
    Week,
    /// By UTC month (`2026-05`).
    Month,
    /// By provider id.
    Provider,
    /// By `provider:model`.
    Model,
    /// By route (no route: `None`).
    Route,
    /// By conversation tag; an entry with several tags counts in each, so
    /// the groups may add up to more than the total (no tag: `None`).
    Tag,
}

/// Spend of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpendGroup {
    /// The group (`None`: no route / no tag).
    pub key: Option<String>,
    /// Exact sum.
    pub cost: Cost,
    /// Billed attempts.
    pub requests: u64,
    /// Of which priced from estimated tokens.
    pub estimated_requests: u64,
    /// Of which the model's price was unknown (not in `cost`).
    pub unpriced_requests: u64,
    /// Prompt tokens reported.
    pub input_tokens: u64,
    /// Output tokens reported.
    pub output_tokens: u64,
}

/// Spend over a time range.
pub type SpendTotal = SpendGroup;

/// Where a budget stands in its current period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetState {
    /// Below the warning threshold.
    Ok,
    /// At or above the warning threshold.
    Warning,
    /// At or above the limit.
    Exceeded,
}

/// One budget's current period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetStatus {
    /// The budget.
    pub budget: Budget,
    /// When the current period began (Unix ms, UTC boundary).
    pub period_start_ms: i64,
    /// Spent in the current period.
    pub spent: Cost,
    /// Held by attempts in flight (those a hard budget counts).
    pub held: Cost,
    /// Ok, warning or exceeded.
    pub state: BudgetState,
}

/// The first instant of `period` containing `now`.
pub fn period_start(period: BudgetPeriod, now: i64) -> i64 {
    match period {
        BudgetPeriod::Daily => day_start(now),
        BudgetPeriod::Monthly => month_start(now),
    }
}

/// SQL condition selecting the rows of `table` (`ledger` or
/// `reservations`) that `scope` counts, and its parameter.
fn scope_filter(scope: &BudgetScope, table: &str) -> (String, Option<String>) {
    let (tags, key) = match table {
        "ledger" => ("ledger_tags", "entry_id"),
        _ => ("reservation_tags", "reservation_id"),
    };
    match scope {
        BudgetScope::Global => ("1".into(), None),
        BudgetScope::Provider(p) => (format!("{table}.provider = ?2"), Some(p.clone())),
        BudgetScope::Route(r) => (format!("{table}.route = ?2"), Some(r.clone())),
        BudgetScope::Tag(t) => (
            format!(
                "EXISTS (SELECT 1 FROM {tags} WHERE {tags}.{key} = {table}.id AND {tags}.tag = ?2)"
            ),
            Some(t.clone()),
        ),
    }
}

fn spent_since(conn: &Connection, scope: &BudgetScope, since: i64) -> Result<Cost, StoreError> {
    let (cond, param) = scope_filter(scope, "ledger");
    let sql = format!("SELECT coalesce(sum(cost_nanos), 0) FROM ledger WHERE at >= ?1 AND {cond}");
    let mut stmt = conn.prepare_cached(&sql)?;
    let nanos: i64 = match param {
        Some(p) => stmt.query_row(params![since, p], |r| r.get(0))?,
        None => stmt.query_row(params![since], |r| r.get(0))?,
    };
    Ok(Cost::from_nanos(nanos))
}

fn held_now(conn: &Connection, scope: &BudgetScope, now: i64) -> Result<Cost, StoreError> {
    let (cond, param) = scope_filter(scope, "reservations");
    let sql = format!(
        "SELECT coalesce(sum(amount_nanos), 0) FROM reservations WHERE expires_at > ?1 AND {cond}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let nanos: i64 = match param {
        Some(p) => stmt.query_row(params![now, p], |r| r.get(0))?,
        None => stmt.query_row(params![now], |r| r.get(0))?,
    };
    Ok(Cost::from_nanos(nanos))
}

pub(crate) fn insert_ledger(
    conn: &Connection,
    ctx: &SpendContext,
    cost: &SettledCost,
    at: i64,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO ledger (at, provider, model, route, conversation, cost_nanos, estimated,
            input_tokens, output_tokens, priced, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        at,
        ctx.provider,
        ctx.model,
        ctx.route,
        ctx.conversation,
        cost.cost.map_or(0, Cost::nanos),
        cost.estimated,
        to_sql_u64(cost.input_tokens),
        to_sql_u64(cost.output_tokens),
        cost.cost.is_some(),
        ctx.message,
    ])?;
    let id = conn.last_insert_rowid();
    let mut tag_stmt =
        conn.prepare_cached("INSERT OR IGNORE INTO ledger_tags (entry_id, tag) VALUES (?1, ?2)")?;
    for tag in &ctx.tags {
        tag_stmt.execute(params![id, tag])?;
    }
    Ok(id)
}

impl Store {
    /// Record what an attempt cost, outside any reservation (the gate's
    /// `settle` does this for reserved attempts).
    pub fn record_spend(&self, ctx: &SpendContext, cost: &SettledCost) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        insert_ledger(&tx, ctx, cost, now_ms())?;
        tx.commit()?;
        Ok(())
    }

    /// Ledger totals grouped `by`, for entries at or after `since_ms`
    /// (Unix ms; `None`: all). Time groups come oldest first, the others
    /// most expensive first.
    pub fn spend(
        &self,
        by: SpendGrouping,
        since_ms: Option<i64>,
    ) -> Result<Vec<SpendGroup>, StoreError> {
        let (key, join, order) = ledger_group_sql(by);
        let sql = format!(
            "SELECT {key} AS k, coalesce(sum(l.cost_nanos), 0) AS cost, count(*),
                    coalesce(sum(l.estimated), 0), coalesce(sum(l.input_tokens), 0),
                    coalesce(sum(l.output_tokens), 0), coalesce(sum(1 - l.priced), 0)
             FROM ledger l {join}
             WHERE l.at >= ?1
             GROUP BY k ORDER BY {order}"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map([since_ms.unwrap_or(i64::MIN)], group_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The total of every ledger entry at or after `since_ms`.
    pub fn spend_total(&self, since_ms: Option<i64>) -> Result<SpendTotal, StoreError> {
        let conn = self.conn();
        let total = conn.query_row(
            "SELECT NULL, coalesce(sum(cost_nanos), 0), count(*), coalesce(sum(estimated), 0),
                    coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
                    coalesce(sum(1 - priced), 0)
             FROM ledger WHERE at >= ?1",
            [since_ms.unwrap_or(i64::MIN)],
            group_row,
        )?;
        Ok(total)
    }

    /// Where each budget stands now.
    pub fn budget_status(&self, budgets: &[Budget]) -> Result<Vec<BudgetStatus>, StoreError> {
        self.budget_status_at(budgets, now_ms())
    }

    pub(crate) fn budget_status_at(
        &self,
        budgets: &[Budget],
        now: i64,
    ) -> Result<Vec<BudgetStatus>, StoreError> {
        let conn = self.conn();
        budgets
            .iter()
            .map(|b| {
                let start = period_start(b.period, now);
                let spent = spent_since(&conn, &b.scope, start)?;
                let held = held_now(&conn, &b.scope, now)?;
                let state = if spent >= b.limit {
                    BudgetState::Exceeded
                } else if spent >= b.warn_threshold() {
                    BudgetState::Warning
                } else {
                    BudgetState::Ok
                };
                Ok(BudgetStatus {
                    budget: b.clone(),
                    period_start_ms: start,
                    spent,
                    held,
                    state,
                })
            })
            .collect()
    }
}

/// The SQL key expression, join and order of ledger groups (`l` is the
/// ledger, `t` its tags).
fn ledger_group_sql(by: SpendGrouping) -> (&'static str, &'static str, &'static str) {
    match by {
        SpendGrouping::Day => ("strftime('%Y-%m-%d', l.at / 1000, 'unixepoch')", "", "k"),
        SpendGrouping::Week => (
            "date(l.at / 1000, 'unixepoch', 'weekday 0', '-6 days')",
            "",
            "k",
        ),
        SpendGrouping::Month => ("strftime('%Y-%m', l.at / 1000, 'unixepoch')", "", "k"),
        SpendGrouping::Provider => ("l.provider", "", "cost DESC, k"),
        SpendGrouping::Model => ("l.provider || ':' || l.model", "", "cost DESC, k"),
        SpendGrouping::Route => ("l.route", "", "cost DESC, k"),
        SpendGrouping::Tag => (
            "t.tag",
            "LEFT JOIN ledger_tags t ON t.entry_id = l.id",
            "cost DESC, k",
        ),
    }
}

/// Spend of one group on one UTC day (a cell of the stacked chart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaySpend {
    /// The day, `YYYY-MM-DD` (UTC).
    pub day: String,
    /// The group (`None`: no route / no tag).
    pub key: Option<String>,
    /// Exact sum.
    pub cost: Cost,
    /// Billed attempts.
    pub requests: u64,
}

/// How the attempts of one group went (from the history's traces, so
/// incognito requests, which leave no trace, are not counted here).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupPerformance {
    /// The group (`None`: no route / no tag).
    pub key: Option<String>,
    /// Attempts that ran (answered or failed; skips are not attempts).
    pub attempts: u64,
    /// Of which failed.
    pub errors: u64,
    /// Mean time to first token of the answered attempts (ms).
    pub avg_ttft_ms: Option<f64>,
    /// Mean output tokens per second over the generation phase of the
    /// answered attempts that reported output tokens.
    pub avg_tokens_per_s: Option<f64>,
}

impl GroupPerformance {
    /// Failed attempts over attempts that ran (0 to 1), when any ran.
    pub fn error_rate(&self) -> Option<f64> {
        (self.attempts > 0).then(|| self.errors as f64 / self.attempts as f64)
    }
}

/// Quote a CSV field when it needs it (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The header of [`Store::ledger_csv`].
pub const LEDGER_CSV_HEADER: &str = "time_utc,provider,model,route,conversation,tags,\
input_tokens,output_tokens,cost_usd,cost_nanos,estimated";

impl Store {
    /// Ledger spend per UTC day and group, for entries at or after
    /// `since_ms`; days oldest first, groups most expensive first. Days
    /// without spend are absent. `by` should not be a time grouping (a
    /// time grouping gives one group per day, its own date).
    pub fn spend_by_day(
        &self,
        by: SpendGrouping,
        since_ms: i64,
    ) -> Result<Vec<DaySpend>, StoreError> {
        let (key, join, _) = ledger_group_sql(by);
        let sql = format!(
            "SELECT strftime('%Y-%m-%d', l.at / 1000, 'unixepoch') AS d, {key} AS k,
                    coalesce(sum(l.cost_nanos), 0) AS cost, count(*)
             FROM ledger l {join}
             WHERE l.at >= ?1
             GROUP BY d, k ORDER BY d, cost DESC, k"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map([since_ms], |r| {
                Ok(DaySpend {
                    day: r.get(0)?,
                    key: r.get(1)?,
                    cost: Cost::from_nanos(r.get(2)?),
                    requests: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Attempts, errors, mean TTFT and tokens/s per group, from the traces
    /// of recorded answers that started at or after `since_ms`. Routes and
    /// tags are those of the answer's request and conversation.
    pub fn performance(
        &self,
        by: SpendGrouping,
        since_ms: i64,
    ) -> Result<Vec<GroupPerformance>, StoreError> {
        let (key, join) = match by {
            SpendGrouping::Day => ("strftime('%Y-%m-%d', a.started_at / 1000, 'unixepoch')", ""),
            SpendGrouping::Week => (
                "date(a.started_at / 1000, 'unixepoch', 'weekday 0', '-6 days')",
                "",
            ),
            SpendGrouping::Month => ("strftime('%Y-%m', a.started_at / 1000, 'unixepoch')", ""),
            SpendGrouping::Provider => ("a.provider", ""),
            SpendGrouping::Model => ("a.provider || ':' || a.model", ""),
            SpendGrouping::Route => ("m.route", ""),
            SpendGrouping::Tag => (
                "t.tag",
                "LEFT JOIN conversation_tags t ON t.conversation_id = m.conversation_id",
            ),
        };
        // Tokens/s as the engine measures it: visible output tokens
        // (reasoning excluded) over the time from the first visible token
        // to the end. (For Anthropic, which does not count its thinking,
        // the engine's per-answer figure is the finer one.)
        let sql = format!(
            "SELECT {key} AS k, count(*), sum(a.outcome = 'error'),
                    avg(CASE WHEN a.outcome = 'ok' THEN a.ttft_ms END),
                    avg(CASE WHEN a.outcome = 'ok' AND a.output_tokens > 0
                              AND a.ttft_ms IS NOT NULL AND a.total_ms > a.ttft_ms
                         THEN (a.output_tokens - coalesce(a.reasoning_tokens, 0)) * 1000.0
                              / (a.total_ms - a.ttft_ms) END)
             FROM attempts a JOIN messages m ON m.id = a.message_id {join}
             WHERE a.started_at >= ?1 AND a.outcome IN ('ok', 'error')
             GROUP BY k ORDER BY k"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map([since_ms], |r| {
                Ok(GroupPerformance {
                    key: r.get(0)?,
                    attempts: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    errors: u64::try_from(r.get::<_, Option<i64>>(2)?.unwrap_or(0)).unwrap_or(0),
                    avg_ttft_ms: r.get(3)?,
                    avg_tokens_per_s: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The ledger entries at or after `from_ms` and before `to_ms` as CSV
    /// ([`LEDGER_CSV_HEADER`], then one line per entry, oldest first; the
    /// cost both as an exact decimal and in nano-dollars). Returns the text
    /// and the number of entries.
    pub fn ledger_csv(&self, from_ms: i64, to_ms: i64) -> Result<(String, u64), StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT l.at, l.provider, l.model, l.route, l.conversation,
                    (SELECT group_concat(tag, ';') FROM
                        (SELECT tag FROM ledger_tags WHERE entry_id = l.id ORDER BY tag)),
                    l.input_tokens, l.output_tokens, l.cost_nanos, l.estimated, l.priced
             FROM ledger l WHERE l.at >= ?1 AND l.at < ?2 ORDER BY l.at, l.id",
        )?;
        let mut out = String::from(LEDGER_CSV_HEADER);
        out.push('\n');
        let mut n = 0u64;
        let mut rows = stmt.query(params![from_ms, to_ms])?;
        while let Some(r) = rows.next()? {
            let at: i64 = r.get(0)?;
            let opt = |v: Option<String>| v.map(|s| csv_field(&s)).unwrap_or_default();
            let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
            let nanos: i64 = r.get(8)?;
            let estimated: bool = r.get(9)?;
            let priced: bool = r.get(10)?;
            // A request whose price was unknown has no amount, not a zero.
            let (usd, nanos) = if priced {
                (Cost::from_nanos(nanos).usd(), nanos.to_string())
            } else {
                (String::new(), String::new())
            };
            let fields = [
                super::time::format_iso(at),
                csv_field(&r.get::<_, String>(1)?),
                csv_field(&r.get::<_, String>(2)?),
                opt(r.get(3)?),
                opt(r.get(4)?),
                opt(r.get(5)?),
                num(r.get(6)?),
                num(r.get(7)?),
                usd,
                nanos,
                estimated.to_string(),
            ];
            out.push_str(&fields.join(","));
            out.push('\n');
            n += 1;
        }
        Ok((out, n))
    }
}

fn group_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SpendGroup> {
    let n =
        |i: usize| -> rusqlite::Result<u64> { Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0)) };
    Ok(SpendGroup {
        key: r.get(0)?,
        cost: Cost::from_nanos(r.get(1)?),
        requests: n(2)?,
        estimated_requests: n(3)?,
        unpriced_requests: n(6)?,
        input_tokens: n(4)?,
        output_tokens: n(5)?,
    })
}

/// The hard budgets of `budgets` that count an attempt with `ctx`.
pub(crate) fn hard_budgets<'a>(
    budgets: &'a [Budget],
    ctx: &'a SpendContext,
) -> impl Iterator<Item = &'a Budget> {
    budgets
        .iter()
        .filter(move |b| b.hard && b.scope.matches(ctx))
}

/// The refusal of an attempt whose price is unknown (`estimate` `None`)
/// by the first hard budget covering it: no such budget could bound it.
pub(crate) fn unbounded_denial(
    budgets: &[Budget],
    ctx: &SpendContext,
    estimate: Option<Cost>,
) -> Option<BudgetDenied> {
    if estimate.is_some() {
        return None;
    }
    hard_budgets(budgets, ctx).next().map(|b| BudgetDenied {
        budget: b.name.clone(),
        message: format!(
            "the price of {}:{} is unknown, so this hard budget cannot bound what it would cost",
            ctx.provider, ctx.model
        ),
    })
}

/// Drop the holds that lapsed by `now` (those with no owner: holds of
/// owners that died are billed by recovery instead).
pub(crate) fn sweep_in(conn: &Connection, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM reservations WHERE expires_at <= ?1 AND owner IS NULL")?
        .execute([now])?;
    Ok(())
}

/// Check the hard budgets covering `ctx` and hold `estimate` for the
/// attempt, inside the caller's write transaction (`conn`), after the
/// caller swept lapsed holds ([`sweep_in`]): the check and the hold are
/// one step for every other thread and process. A refusal writes nothing.
pub(crate) fn reserve_in(
    conn: &Connection,
    budgets: &[Budget],
    ctx: &SpendContext,
    estimate: Option<Cost>,
    now: i64,
    hold: Duration,
    owner: Option<&str>,
) -> Result<Result<Reservation, BudgetDenied>, StoreError> {
    if let Some(denied) = unbounded_denial(budgets, ctx, estimate) {
        return Ok(Err(denied));
    }
    let amount = estimate.unwrap_or(Cost::ZERO);
    for b in hard_budgets(budgets, ctx) {
        let spent = spent_since(conn, &b.scope, period_start(b.period, now))?;
        let held = held_now(conn, &b.scope, now)?;
        let would_be = spent + held + amount;
        if would_be > b.limit {
            let period = match b.period {
                BudgetPeriod::Daily => "today (UTC)",
                BudgetPeriod::Monthly => "this month (UTC)",
            };
            return Ok(Err(BudgetDenied {
                budget: b.name.clone(),
                message: format!(
                    "{} limit {} for {}: spent {} {period}, {} held by requests in flight, \
                     and this request may cost up to {}",
                    b.period.as_str(),
                    b.limit,
                    b.scope,
                    spent,
                    held,
                    amount
                ),
            }));
        }
    }
    let id = insert_hold(conn, ctx, amount, now, hold, owner)?;
    Ok(Ok(Reservation {
        id: u64::try_from(id).unwrap_or(0),
        amount,
        context: ctx.clone(),
    }))
}

/// Write the hold of `amount` for an attempt with `ctx`, made at `now`
/// and lapsing after `hold` (unless checkpoints extend it): the row crash
/// recovery finds. Its row id.
pub(crate) fn insert_hold(
    conn: &Connection,
    ctx: &SpendContext,
    amount: Cost,
    now: i64,
    hold: Duration,
    owner: Option<&str>,
) -> Result<i64, StoreError> {
    let expires = now.saturating_add(i64::try_from(hold.as_millis()).unwrap_or(i64::MAX));
    conn.prepare_cached(
        "INSERT INTO reservations (created_at, expires_at, provider, model, route, amount_nanos,
            owner, conversation, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        now,
        expires,
        ctx.provider,
        ctx.model,
        ctx.route,
        amount.nanos(),
        owner,
        ctx.conversation,
        ctx.message
    ])?;
    let id = conn.last_insert_rowid();
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO reservation_tags (reservation_id, tag) VALUES (?1, ?2)",
    )?;
    for tag in &ctx.tags {
        stmt.execute(params![id, tag])?;
    }
    Ok(id)
}

/// What a reservation comes to when the ledger cannot be checked (`why`):
/// a hard budget covering the attempt refuses, because a hard stop that
/// cannot be checked does not let money through; with none, the attempt
/// goes ahead without a recorded hold (so without a crash record; its
/// cost still settles).
pub(crate) fn unchecked_reservation(
    budgets: &[Budget],
    ctx: &SpendContext,
    estimate: Option<Cost>,
    why: &str,
) -> Result<Reservation, BudgetDenied> {
    match hard_budgets(budgets, ctx).next() {
        Some(b) => Err(BudgetDenied {
            budget: b.name.clone(),
            message: format!("the spend ledger could not be checked: {why}"),
        }),
        None => Ok(Reservation {
            id: 0,
            amount: estimate.unwrap_or(Cost::ZERO),
            context: ctx.clone(),
        }),
    }
}

/// Write what the attempt of `r` would bill if it ended now (extending
/// its hold by `hold`), and the answer's text so far, inside the caller's
/// write transaction.
pub(crate) fn checkpoint_in(
    conn: &Connection,
    r: &Reservation,
    progress: &AttemptResult,
    now: i64,
    hold: Duration,
    owner: Option<&str>,
) -> Result<(), StoreError> {
    checkpoint_row_in(conn, r.id, r, progress, now, hold, owner)
}

/// [`checkpoint_in`] for the hold in row `row` (0: none written), which
/// need not be `r.id` (the batch writer's holds decided in memory).
pub(crate) fn checkpoint_row_in(
    conn: &Connection,
    row: u64,
    r: &Reservation,
    progress: &AttemptResult,
    now: i64,
    hold: Duration,
    owner: Option<&str>,
) -> Result<(), StoreError> {
    // What it bills so far (the answer's row shows the same counts).
    let billed = progress.billed;
    let usage = billed.unwrap_or(progress.usage);
    if row != 0 {
        let expires = now.saturating_add(i64::try_from(hold.as_millis()).unwrap_or(i64::MAX));
        conn.prepare_cached(
            "UPDATE reservations SET billed = ?2, cost_nanos = ?3, input_tokens = ?4,
                output_tokens = ?5, progress_at = ?6, expires_at = max(expires_at, ?7)
             WHERE id = ?1",
        )?
        .execute(params![
            i64::try_from(row).unwrap_or(i64::MAX),
            billed.is_some(),
            progress.cost.map(|c| c.total.nanos()),
            to_sql_u64(usage.input_tokens),
            to_sql_u64(usage.output_tokens),
            now,
            expires
        ])?;
    }
    if let (Some(message), Some(owner)) = (r.context.message, owner) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        conn.prepare_cached(
            "UPDATE messages SET content = ?2, reasoning = ?3, provider = ?4, model = ?5,
                input_tokens = ?6, output_tokens = ?7, cached_input_tokens = ?8,
                reasoning_tokens = ?9, ttft_ms = ?10, total_ms = ?11
             WHERE id = ?1 AND live_owner = ?12",
        )?
        .execute(params![
            message,
            progress.text,
            (!progress.reasoning.is_empty()).then_some(progress.reasoning.as_str()),
            progress.provider,
            progress.model,
            to_sql_u64(usage.input_tokens),
            to_sql_u64(usage.output_tokens),
            to_sql_u64(usage.cached_input_tokens),
            to_sql_u64(usage.reasoning_tokens),
            progress.timing.ttft.map(ms),
            ms(progress.timing.total),
            owner
        ])?;
    }
    Ok(())
}

/// Release the hold of `reservation` and write the ledger row of what it
/// cost (`actual`; `None`: not billed) at `at`, inside the caller's write
/// transaction.
pub(crate) fn settle_in(
    conn: &Connection,
    reservation: &Reservation,
    actual: Option<&SettledCost>,
    at: i64,
) -> Result<(), StoreError> {
    settle_row_in(conn, reservation.id, &reservation.context, actual, at)
}

/// [`settle_in`] for the hold in row `row` (0: none written) of an
/// attempt with `ctx`.
pub(crate) fn settle_row_in(
    conn: &Connection,
    row: u64,
    ctx: &SpendContext,
    actual: Option<&SettledCost>,
    at: i64,
) -> Result<(), StoreError> {
    if row != 0 {
        conn.prepare_cached("DELETE FROM reservations WHERE id = ?1")?
            .execute([i64::try_from(row).unwrap_or(i64::MAX)])?;
    }
    if let Some(actual) = actual {
        insert_ledger(conn, ctx, actual, at)?;
    }
    Ok(())
}

/// A settle not written yet: one that failed (the database was busy or
/// failing; the gate retries it on its next call), or one deferred to be
/// written with what it paid for (a judge's verdict:
/// [`Store::record_judgment`]).
#[derive(Debug, Clone)]
pub struct PendingSettle {
    /// The hold to release.
    pub reservation: Reservation,
    /// What the attempt cost (`None`: not billed).
    pub actual: Option<SettledCost>,
    /// When it ended (Unix ms), the ledger row's time.
    pub at: i64,
}

/// The [`BudgetGate`] over the ledger: enforces the hard budgets of
/// `config.toml` for every attempt, across threads and processes.
#[derive(Debug)]
pub struct SqliteBudgetGate {
    store: Store,
    budgets: Vec<Budget>,
    hold: Duration,
    pending: Mutex<Vec<PendingSettle>>,
}

impl SqliteBudgetGate {
    /// A gate enforcing `budgets` (see [`crate::Config::budget_list`]).
    pub fn new(store: Store, budgets: Vec<Budget>) -> Self {
        Self {
            store,
            budgets,
            hold: DEFAULT_HOLD,
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Let holds of attempts that never settle count for `hold` instead
    /// of [`DEFAULT_HOLD`].
    pub fn with_hold(mut self, hold: Duration) -> Self {
        self.hold = hold;
        self
    }

    /// The budgets it enforces (hard) or watches (warn-only).
    pub fn budgets(&self) -> &[Budget] {
        &self.budgets
    }

    /// Where each budget stands now.
    pub fn status(&self) -> Result<Vec<BudgetStatus>, StoreError> {
        self.store.budget_status(&self.budgets)
    }

    /// Settles that could not be written yet.
    pub fn pending_settles(&self) -> usize {
        self.pending.lock().map(|p| p.len()).unwrap_or(0)
    }

    pub(crate) fn reserve_at(
        &self,
        ctx: &SpendContext,
        estimate: Option<Cost>,
        now: i64,
    ) -> Result<Result<Reservation, BudgetDenied>, StoreError> {
        reserve_one(&self.store, &self.budgets, self.hold, ctx, estimate, now)
    }

    /// Write what the attempt of `r` would bill if it ended now, and the
    /// answer's text so far (see [`BudgetGate::checkpoint`]).
    pub(crate) fn checkpoint_at(
        &self,
        r: &Reservation,
        progress: &AttemptResult,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.store.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        checkpoint_in(&tx, r, progress, now, self.hold, self.store.owner_id())?;
        tx.commit()?;
        Ok(())
    }

    fn settle_now(&self, p: &PendingSettle) -> Result<(), StoreError> {
        let mut conn = self.store.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        settle_in(&tx, &p.reservation, p.actual.as_ref(), p.at)?;
        tx.commit()?;
        Ok(())
    }

    /// Write the settles that failed before (oldest first).
    fn retry_pending(&self) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        let mut kept = Vec::new();
        for p in pending.drain(..) {
            if self.settle_now(&p).is_err() {
                kept.push(p);
            }
        }
        *pending = kept;
    }
}

impl BudgetGate for SqliteBudgetGate {
    fn reserve(
        &self,
        ctx: &SpendContext,
        estimate: Option<Cost>,
    ) -> Result<Reservation, BudgetDenied> {
        self.retry_pending();
        match self.reserve_at(ctx, estimate, now_ms()) {
            Ok(decision) => decision,
            Err(e) => unchecked_reservation(&self.budgets, ctx, estimate, &e.to_string()),
        }
    }

    /// Holds asked for while another batch is being written (the panes of
    /// a round start together) are decided together, in the order they
    /// were asked, in one transaction: one commit instead of one each, and
    /// each sees the holds before it exactly as one by one. The attempt
    /// still waits for its hold's commit (or refusal) before it is sent.
    fn reserve_queued(
        &self,
        ctx: &SpendContext,
        estimate: Option<Cost>,
    ) -> Option<crate::hooks::PendingReservation> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let hold = QueuedHold {
            budgets: self.budgets.clone(),
            hold: self.hold,
            ctx: ctx.clone(),
            estimate,
        };
        Some(self.store.holds().submit(&self.store, &runtime, hold))
    }

    fn checkpoint(&self, reservation: &Reservation, progress: &AttemptResult) {
        // A checkpoint that cannot be written now is superseded by the next.
        let _ = self.checkpoint_at(reservation, progress, now_ms());
    }

    fn settle(&self, reservation: Reservation, actual: Option<SettledCost>) {
        self.retry_pending();
        let p = PendingSettle {
            reservation,
            actual,
            at: now_ms(),
        };
        if self.settle_now(&p).is_err()
            && let Ok(mut pending) = self.pending.lock()
        {
            pending.push(p);
        }
    }
}

/// Check the budgets and hold `estimate` for one attempt, in its own
/// transaction. A refusal writes nothing (its expired-hold sweep is rolled
/// back).
fn reserve_one(
    store: &Store,
    budgets: &[Budget],
    hold: Duration,
    ctx: &SpendContext,
    estimate: Option<Cost>,
    now: i64,
) -> Result<Result<Reservation, BudgetDenied>, StoreError> {
    if let Some(denied) = unbounded_denial(budgets, ctx, estimate) {
        return Ok(Err(denied));
    }
    let mut conn = store.conn();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    sweep_in(&tx, now)?;
    let decided = reserve_in(&tx, budgets, ctx, estimate, now, hold, store.owner_id())?;
    if decided.is_ok() {
        tx.commit()?;
    }
    Ok(decided)
}

/// What a hold comes to: held, or refused by a budget.
pub(crate) type HoldDecision = Result<Reservation, BudgetDenied>;

/// One attempt's hold to decide.
pub(crate) struct QueuedHold {
    budgets: Vec<Budget>,
    hold: Duration,
    ctx: SpendContext,
    estimate: Option<Cost>,
}

/// Decide a batch of holds, in order, in one transaction (see
/// [`super::GroupCommit`]).
pub(crate) fn decide_holds(store: &Store, batch: &[QueuedHold]) -> Vec<HoldDecision> {
    let now = now_ms();
    // When the batch cannot be written, each is decided on its own (and,
    // as with any gate, unchecked when the ledger cannot be).
    decide_together(store, batch, now).unwrap_or_else(|_| {
        batch
            .iter()
            .map(|h| {
                reserve_one(store, &h.budgets, h.hold, &h.ctx, h.estimate, now).unwrap_or_else(
                    |e| unchecked_reservation(&h.budgets, &h.ctx, h.estimate, &e.to_string()),
                )
            })
            .collect()
    })
}

/// The holds of `batch`, in order, in one transaction: refusals write
/// nothing, the others commit together.
fn decide_together(
    store: &Store,
    batch: &[QueuedHold],
    now: i64,
) -> Result<Vec<HoldDecision>, StoreError> {
    let mut conn = store.conn();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    sweep_in(&tx, now)?;
    let decided = batch
        .iter()
        .map(|h| {
            reserve_in(
                &tx,
                &h.budgets,
                &h.ctx,
                h.estimate,
                now,
                h.hold,
                store.owner_id(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    tx.commit()?;
    Ok(decided)
}

impl Drop for SqliteBudgetGate {
    fn drop(&mut self) {
        self.retry_pending();
    }
}
