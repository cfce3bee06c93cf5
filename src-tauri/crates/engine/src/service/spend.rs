//! The spend page, the budget editor and the budget checks of the compare
//! view: ledger totals and charts, where each budget stands and where it is
//! heading, and, before a prompt is sent, which panes a budget would stop.
//! The numbers come from the store ([`Store::spend`], [`Store::spend_by_day`],
//! [`Store::performance`], [`Store::budget_status`]); budget edits go
//! through [`crate::budgets`], the same writer as `switchboard-cli budget`.

use std::collections::HashMap;

use switchboard_protocol::{
    AskRequest, BudgetCheck, BudgetInput, BudgetView, SpendCell, SpendOverview, SpendQuery,
    SpendRow, SpendStatus, SpendTotalView,
};

use super::{ChatService, resolve};
use crate::budgets::{BudgetEdit, BudgetEditError, period_bounds, projection};
use crate::config::Budget;
use crate::hooks::{MemoryHealth, SpendContext};
use crate::money::Cost;
use crate::routing::{RequestShape, RoutingConfig, plan};
use crate::store::time::{day_start, format_date, month_start, now_ms, parse_date};
use crate::store::{
    BudgetState, BudgetStatus, ConversationId, SpendGroup, SpendGrouping, StoreError,
};

const DAY_MS: i64 = 86_400_000;

/// Monday 00:00 UTC of the week containing `ms`.
pub(crate) fn week_start(ms: i64) -> i64 {
    let day = day_start(ms);
    // 1970-01-01 was a Thursday: three days after a Monday.
    day - (day.div_euclid(DAY_MS) + 3).rem_euclid(7) * DAY_MS
}

fn total_view(g: &SpendGroup) -> SpendTotalView {
    SpendTotalView {
        cost_usd: g.cost.usd(),
        requests: g.requests,
        estimated_requests: g.estimated_requests,
        unknown_price_requests: g.unpriced_requests,
        input_tokens: g.input_tokens,
        output_tokens: g.output_tokens,
    }
}

fn grouping(by: &str) -> Result<SpendGrouping, StoreError> {
    match by {
        "provider" => Ok(SpendGrouping::Provider),
        "model" => Ok(SpendGrouping::Model),
        "route" => Ok(SpendGrouping::Route),
        "tag" => Ok(SpendGrouping::Tag),
        other => Err(StoreError::invalid(format!(
            "cannot group spend by {other:?} (provider, model, route or tag)"
        ))),
    }
}

/// What reaching `b`'s limit does, in words.
fn effect(b: &Budget) -> String {
    let scope = match b.scope.to_string().as_str() {
        "global" => "any request".to_owned(),
        s => format!("requests counted by {s}"),
    };
    let warn = format!(
        "warns from {:.0}% ({})",
        b.warn_at() * 100.0,
        b.warn_threshold()
    );
    if b.hard {
        format!(
            "Hard stop: {scope} that could take it past {} is refused before it is sent \
             (the pane shows \"budget\"; a route moves on to a target outside it). It {warn}.",
            b.limit
        )
    } else {
        format!(
            "Warn only: {scope} still runs past {}; it {warn} and shows as exceeded.",
            b.limit
        )
    }
}

/// A budget's status as the UI shows it, at `now`.
pub(crate) fn budget_view(s: &BudgetStatus, now: i64) -> BudgetView {
    let b = &s.budget;
    let (start, end) = period_bounds(b.period, now);
    let used = s.spent + s.held;
    let remaining = Cost::from_nanos((b.limit.nanos() - used.nanos()).max(0));
    BudgetView {
        name: b.name.clone(),
        scope: b.scope.to_string(),
        period: b.period.as_str().to_owned(),
        limit_usd: b.limit.usd(),
        warn_at: b.warn_at(),
        hard: b.hard,
        spent_usd: s.spent.usd(),
        held_usd: s.held.usd(),
        remaining_usd: remaining.usd(),
        state: match s.state {
            BudgetState::Ok => "ok",
            BudgetState::Warning => "warning",
            BudgetState::Exceeded => "exceeded",
        }
        .to_owned(),
        period_start: format_date(start),
        period_end: format_date(end - 1),
        projected_usd: projection(b.period, s.spent, now).usd(),
        effect: effect(b),
    }
}

impl ChatService {
    fn budget_statuses(&self) -> Result<Vec<BudgetStatus>, StoreError> {
        let budgets = self
            .config()
            .budget_list()
            .map_err(|e| StoreError::invalid(e.to_string()))?;
        self.store()?.budget_status(&budgets)
    }

    /// Totals for today, this week and this month; spend per day of the
    /// last `query.days` days per group; the table; every budget.
    pub fn spend_overview(&self, query: &SpendQuery) -> Result<SpendOverview, StoreError> {
        let store = self.store()?;
        let by = grouping(&query.by)?;
        let now = now_ms();
        let today = day_start(now);
        let days = query.days.clamp(1, 366);
        let since = today - i64::from(days - 1) * DAY_MS;
        let mut problems = Vec::new();
        let budgets = match self.budget_statuses() {
            Ok(list) => list.iter().map(|s| budget_view(s, now)).collect(),
            Err(e) => {
                problems.push(format!("budgets: {e}"));
                Vec::new()
            }
        };
        let cells = store
            .spend_by_day(by, since)?
            .into_iter()
            .map(|c| SpendCell {
                day: c.day,
                key: c.key,
                cost_usd: c.cost.usd(),
            })
            .collect();
        let mut perf: HashMap<Option<String>, crate::store::GroupPerformance> = store
            .performance(by, since)?
            .into_iter()
            .map(|p| (p.key.clone(), p))
            .collect();
        let row = |g: &SpendGroup, p: Option<crate::store::GroupPerformance>| SpendRow {
            key: g.key.clone(),
            total: total_view(g),
            avg_cost_usd: (g.requests > 0).then(|| {
                Cost::from_nanos(g.cost.nanos() / i64::try_from(g.requests).unwrap_or(1)).usd()
            }),
            attempts: p.as_ref().map_or(0, |p| p.attempts),
            errors: p.as_ref().map_or(0, |p| p.errors),
            error_rate: p.as_ref().and_then(|p| p.error_rate()),
            avg_ttft_ms: p.as_ref().and_then(|p| p.avg_ttft_ms),
            avg_tokens_per_s: p.as_ref().and_then(|p| p.avg_tokens_per_s),
        };
        let mut rows: Vec<SpendRow> = store
            .spend(by, Some(since))?
            .iter()
            .map(|g| row(g, perf.remove(&g.key)))
            .collect();
        // Groups that ran but cost nothing (failures, free local models).
        let mut rest: Vec<_> = perf.into_values().collect();
        rest.sort_by(|a, b| a.key.cmp(&b.key));
        for p in rest {
            let g = SpendGroup {
                key: p.key.clone(),
                cost: Cost::ZERO,
                requests: 0,
                estimated_requests: 0,
                unpriced_requests: 0,
                input_tokens: 0,
                output_tokens: 0,
            };
            rows.push(row(&g, Some(p)));
        }
        Ok(SpendOverview {
            today: total_view(&store.spend_total(Some(today))?),
            week: total_view(&store.spend_total(Some(week_start(now)))?),
            month: total_view(&store.spend_total(Some(month_start(now)))?),
            by: query.by.clone(),
            days: (0..i64::from(days))
                .map(|i| format_date(since + i * DAY_MS))
                .collect(),
            cells,
            rows,
            budgets,
            problems,
        })
    }

    /// Today's spend and the budget with the least room left.
    pub fn spend_status(&self) -> Result<SpendStatus, StoreError> {
        let now = now_ms();
        let today = self.store()?.spend_total(Some(day_start(now)))?;
        let tightest = self
            .budget_statuses()?
            .iter()
            .min_by_key(|s| s.budget.limit.nanos() - (s.spent + s.held).nanos())
            .map(|s| budget_view(s, now));
        Ok(SpendStatus {
            today_usd: today.cost.usd(),
            tightest,
        })
    }

    /// Add or replace a budget in config.toml (and use it from now on).
    pub fn save_budget(&self, input: &BudgetInput) -> Result<(), BudgetEditError> {
        let edit = BudgetEdit {
            name: input.name.clone(),
            replaces: input.replaces.clone(),
            scope: input.scope.clone(),
            period: input.period.clone(),
            limit_usd: input.limit_usd.clone(),
            warn_at: input.warn_at,
            hard: input.hard,
        };
        let saved = crate::budgets::save_budget(&self.data_dir.config_file(), &edit);
        self.reload_config();
        saved.map(|_| ())
    }

    /// Remove a budget from config.toml.
    pub fn remove_budget(&self, name: &str) -> Result<(), BudgetEditError> {
        let removed = crate::budgets::remove_budget(&self.data_dir.config_file(), name);
        self.reload_config();
        removed.map(|_| ())
    }

    /// Before sending: would a hard budget refuse each pane's request (or
    /// move its route past the first target), and which warn-only budgets
    /// would it take over? The panes are counted together, in order, as
    /// they would run at once: each one's estimate counts for the next.
    pub fn check_budgets(&self, requests: &[AskRequest]) -> Vec<BudgetCheck> {
        let config = self.config();
        let (Ok(routing), Ok(statuses)) =
            (RoutingConfig::from_config(&config), self.budget_statuses())
        else {
            return Vec::new();
        };
        if statuses.is_empty() {
            return Vec::new();
        }
        let catalog = self.catalog(&config);
        let health: std::sync::Arc<dyn crate::hooks::HealthStore> = match self.store() {
            Ok(store) => store.health(),
            Err(_) => std::sync::Arc::new(MemoryHealth::default()),
        };
        // What each budget has used, growing with each pane's estimate.
        let mut used: Vec<Cost> = statuses.iter().map(|s| s.spent + s.held).collect();
        let now = now_ms();
        requests
            .iter()
            .map(|request| {
                let mut check = BudgetCheck {
                    stream_id: request.stream_id,
                    target: request.target.clone(),
                    blocked_by: Vec::new(),
                    fallback_to: None,
                    warnings: Vec::new(),
                    message: String::new(),
                };
                let loaded = self.load_attachments(request).unwrap_or_default();
                let Ok((route, chat)) = resolve(&config, &routing, request, &loaded) else {
                    return check;
                };
                let tags = self.spend_context(request).tags;
                let p = plan(
                    &route,
                    RequestShape::of(&chat),
                    &catalog,
                    &routing.policy,
                    health.as_ref(),
                    now,
                );
                let mut refused_first: Vec<String> = Vec::new();
                for (i, entry) in p.entries.iter().filter(|e| e.policy.is_none()).enumerate() {
                    let ctx = SpendContext {
                        provider: entry.target.provider.id.clone(),
                        model: entry.target.model.clone(),
                        route: route.name.clone(),
                        tags: tags.clone(),
                        conversation: None,
                        message: None,
                    };
                    // What the router will hold: the most it can cost. A
                    // hard budget refuses a target whose price is unknown.
                    let est = entry.reserve.unwrap_or(Cost::ZERO);
                    let refusing: Vec<String> = statuses
                        .iter()
                        .zip(&used)
                        .filter(|(s, u)| {
                            s.budget.hard
                                && s.budget.scope.matches(&ctx)
                                && (entry.reserve.is_none() || **u + est > s.budget.limit)
                        })
                        .map(|(s, _)| s.budget.name.clone())
                        .collect();
                    if refusing.is_empty() {
                        if i > 0 {
                            check.fallback_to = Some(entry.target.label());
                        }
                        for (s, u) in statuses.iter().zip(used.iter_mut()) {
                            if !s.budget.scope.matches(&ctx) {
                                continue;
                            }
                            let after = *u + est;
                            if !s.budget.hard && after > s.budget.limit {
                                check.warnings.push(format!(
                                    "{} (warn only) would go past its {} limit",
                                    s.budget.name, s.budget.limit
                                ));
                            } else if *u < s.budget.warn_threshold()
                                && after >= s.budget.warn_threshold()
                            {
                                check.warnings.push(format!(
                                    "{} would reach its warning threshold ({})",
                                    s.budget.name,
                                    s.budget.warn_threshold()
                                ));
                            }
                            *u = after;
                        }
                        if !refused_first.is_empty() {
                            check.message = format!(
                                "budget {} refuses {}; it would move to {}",
                                quoted(&refused_first),
                                p.entries
                                    .first()
                                    .map(|e| e.target.label())
                                    .unwrap_or_default(),
                                entry.target.label()
                            );
                        }
                        return check;
                    }
                    for name in refusing {
                        if !refused_first.contains(&name) {
                            refused_first.push(name);
                        }
                    }
                }
                if !refused_first.is_empty() {
                    check.message =
                        format!("would be blocked by budget {}", quoted(&refused_first));
                    check.blocked_by = refused_first;
                }
                check
            })
            .collect()
    }

    /// Write the ledger from `from` to `to` (`YYYY-MM-DD`, UTC, both
    /// included) as CSV under `<data dir>/exports/`; returns the path.
    pub fn export_spend(&self, from: &str, to: &str) -> Result<String, StoreError> {
        let bad = |what: &str, v: &str| {
            StoreError::invalid(format!("{what} {v:?} is not a date (YYYY-MM-DD)"))
        };
        let from_ms = parse_date(from).ok_or_else(|| bad("from", from))?;
        let to_ms = parse_date(to).ok_or_else(|| bad("to", to))?;
        if to_ms < from_ms {
            return Err(StoreError::invalid(format!(
                "the period ends ({to}) before it starts ({from})"
            )));
        }
        let (csv, _) = self.store()?.ledger_csv(from_ms, to_ms + DAY_MS)?;
        let (from, to) = (format_date(from_ms), format_date(to_ms));
        let dir = self.data_dir.path().join("exports");
        let write = || -> std::io::Result<std::path::PathBuf> {
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("spend-{from}-{to}.csv"));
            let tmp = dir.join(format!(".spend-{from}-{to}.csv.tmp"));
            std::fs::write(&tmp, csv.as_bytes())?;
            std::fs::rename(&tmp, &path)?;
            Ok(path)
        };
        write()
            .map(|p| p.display().to_string())
            .map_err(|e| StoreError::invalid(format!("could not write the export: {e}")))
    }

    /// Replace a conversation's tags; returns them as stored (trimmed,
    /// sorted, without repeats). Requests from then on count them.
    pub fn set_tags(&self, id: i64, tags: &[String]) -> Result<Vec<String>, StoreError> {
        let store = self.store()?;
        store.set_tags(ConversationId(id), tags)?;
        Ok(store.conversation(ConversationId(id))?.tags)
    }

    /// Record the user's vote on a round; returns it as stored (a second
    /// vote on a round replaces the first and is never blind).
    pub fn record_vote(
        &self,
        vote: &switchboard_protocol::CastVote,
    ) -> Result<switchboard_protocol::Vote, StoreError> {
        let store = self.store()?;
        let round = crate::MessageId(vote.round);
        let answer = |key: &str| -> Result<i64, StoreError> {
            store
                .answer_of_pane(round, key)?
                .map(|m| m.0)
                .ok_or_else(|| {
                    StoreError::invalid(format!("pane {key} has no answer to this round"))
                })
        };
        let answers = vote
            .panes
            .iter()
            .map(|k| answer(k))
            .collect::<Result<Vec<_>, _>>()?;
        let winner = vote.winner.as_deref().map(answer).transpose()?;
        store.record_vote(&switchboard_protocol::Vote {
            round: vote.round,
            answers,
            verdict: vote.verdict,
            winner,
            blind: vote.blind,
            at_ms: 0,
        })
    }

    /// The personal leaderboard (the same numbers as `switchboard-cli
    /// leaderboard`).
    pub fn leaderboard(
        &self,
        query: &switchboard_protocol::LeaderboardQuery,
    ) -> Result<switchboard_protocol::Leaderboard, StoreError> {
        self.store()?.leaderboard(query)
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use switchboard_protocol::{PaneParams, Turn, TurnRole};

    use super::*;
    use crate::hooks::SettledCost;
    use crate::keys::KeyStore;
    use crate::paths::DataDir;

    const CONFIG: &str = r#"
[providers.a]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
[[providers.a.models]]
id = "m"
input_usd_per_mtok = "1"
output_usd_per_mtok = "10"

[providers.b]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
[[providers.b.models]]
id = "m"
input_usd_per_mtok = "1"
output_usd_per_mtok = "10"

[routes.r]
strategy = "ordered"
targets = ["a:m", "b:m"]
"#;

    fn service(extra: &str) -> (tempfile::TempDir, ChatService) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("config.toml"), format!("{CONFIG}{extra}")).unwrap();
        let dir = DataDir::at(tmp.path()).unwrap();
        let svc = ChatService::new(dir, KeyStore::with_service("switchboard-spend-test"));
        (tmp, svc)
    }

    fn ask(stream_id: u64, target: &str) -> AskRequest {
        AskRequest {
            stream_id,
            target: target.into(),
            turns: vec![Turn {
                attachments: Vec::new(),
                role: TurnRole::User,
                content: "hi".into(),
            }],
            params: PaneParams {
                max_tokens: Some(1000),
                ..PaneParams::default()
            },
            record: None,
        }
    }

    fn spend(svc: &ChatService, provider: &str, nanos: i64) {
        let ctx = SpendContext {
            provider: provider.into(),
            model: "m".into(),
            ..SpendContext::default()
        };
        let cost = SettledCost {
            cost: Some(Cost::from_nanos(nanos)),
            estimated: false,
            input_tokens: Some(100),
            output_tokens: Some(20),
        };
        svc.store().unwrap().record_spend(&ctx, &cost).unwrap();
    }

    #[test]
    fn a_hard_budget_is_announced_as_blocking_or_moving_a_route_on() {
        // 1000 output tokens at $10/Mtok: every request may cost over $0.01.
        let (_tmp, svc) = service(
            "[budgets.a-cap]\nscope = \"provider:a\"\nperiod = \"daily\"\nlimit_usd = \"0.01\"\n\
             [budgets.soft]\nlimit_usd = \"0.015\"\nhard = false\n",
        );
        let checks = svc.check_budgets(&[ask(1, "a:m"), ask(2, "@r"), ask(3, "b:m")]);
        assert_eq!(checks.len(), 3);
        assert_eq!(checks[0].blocked_by, vec!["a-cap".to_owned()]);
        assert!(checks[0].message.contains("a-cap"), "{}", checks[0].message);
        assert!(checks[1].blocked_by.is_empty());
        assert_eq!(checks[1].fallback_to.as_deref(), Some("b:m"));
        assert!(
            checks[1].message.contains("would move to b:m"),
            "{}",
            checks[1].message
        );
        // Pane 2 used about $0.01 of the soft global budget; pane 3 takes it over.
        assert!(checks[2].blocked_by.is_empty() && checks[2].fallback_to.is_none());
        assert!(
            checks[2]
                .warnings
                .iter()
                .any(|w| w.contains("soft (warn only)")),
            "{:?}",
            checks[2].warnings
        );
        // No budget: nothing to say.
        let (_tmp, svc) = service("");
        assert!(svc.check_budgets(&[ask(1, "a:m")]).is_empty());
    }

    #[test]
    fn the_overview_adds_up_exactly_and_budgets_show_pace_and_room() {
        let (tmp, svc) =
            service("[budgets.daily]\nperiod = \"daily\"\nlimit_usd = \"1\"\nwarn_at = 0.5\n");
        spend(&svc, "a", 123_456_789);
        spend(&svc, "a", 1);
        spend(&svc, "b", 500_000_000);
        let o = svc
            .spend_overview(&SpendQuery {
                days: 7,
                by: "provider".into(),
            })
            .unwrap();
        assert_eq!(o.today.cost_usd, "0.62345679");
        assert_eq!(o.today.requests, 3);
        assert_eq!(o.week, o.today);
        assert_eq!(o.month, o.today);
        assert_eq!(o.days.len(), 7);
        assert_eq!(o.days.last(), Some(&format_date(now_ms())));
        assert_eq!(o.cells.len(), 2);
        assert_eq!(o.rows[0].key.as_deref(), Some("b"), "most expensive first");
        let a = &o.rows[1];
        assert_eq!(a.total.cost_usd, "0.12345679");
        assert_eq!(a.avg_cost_usd.as_deref(), Some("0.061728395"));
        assert_eq!((a.total.input_tokens, a.total.output_tokens), (200, 40));
        let b = &o.budgets[0];
        assert_eq!((b.name.as_str(), b.state.as_str()), ("daily", "warning"));
        assert_eq!(b.remaining_usd, "0.37654321");
        assert!(b.effect.starts_with("Hard stop"), "{}", b.effect);
        let status = svc.spend_status().unwrap();
        assert_eq!(status.today_usd, "0.62345679");
        assert_eq!(status.tightest.unwrap().name, "daily");
        assert!(
            svc.spend_overview(&SpendQuery {
                days: 7,
                by: "colour".into()
            })
            .is_err()
        );

        let today = format_date(now_ms());
        let path = svc.export_spend(&today, &today).unwrap();
        assert_eq!(
            path,
            tmp.path()
                .join("exports")
                .join(format!("spend-{today}-{today}.csv"))
                .display()
                .to_string()
        );
        let csv = std::fs::read_to_string(&path).unwrap();
        assert_eq!(csv.lines().count(), 4);
        assert!(svc.export_spend(&today, "2000-01-01").is_err());
    }

    #[test]
    fn budgets_saved_from_the_app_apply_at_once() {
        let (_tmp, svc) = service("");
        let input = BudgetInput {
            name: "cap".into(),
            replaces: None,
            scope: "provider:a".into(),
            period: "daily".into(),
            limit_usd: "0.01".into(),
            warn_at: 0.8,
            hard: true,
        };
        svc.save_budget(&input).unwrap();
        assert_eq!(
            svc.check_budgets(&[ask(1, "a:m")])[0].blocked_by,
            vec!["cap".to_owned()]
        );
        let bad = BudgetInput {
            limit_usd: "-1".into(),
            ..input
        };
        assert!(matches!(
            svc.save_budget(&bad),
            Err(BudgetEditError::Invalid {
                field: "limit_usd",
                ..
            })
        ));
        svc.remove_budget("cap").unwrap();
        assert!(svc.check_budgets(&[ask(1, "a:m")]).is_empty());
    }

    #[test]
    fn unknown_prices_are_counted_on_the_spend_page_and_block_a_hard_budget() {
        let hosted =
            "[providers.h]\nkind = \"openai\"\nbase_url = \"https://api.example.com/v1\"\n";
        let (_tmp, svc) = service(hosted);
        let store = svc.store().unwrap();
        for (provider, cost) in [("h", None), ("h", None), ("a", Some(Cost::from_nanos(70)))] {
            let ctx = SpendContext {
                provider: provider.into(),
                model: "m".into(),
                ..SpendContext::default()
            };
            let settled = SettledCost {
                cost,
                estimated: false,
                input_tokens: Some(10),
                output_tokens: Some(2),
            };
            store.record_spend(&ctx, &settled).unwrap();
        }
        let o = svc
            .spend_overview(&SpendQuery {
                days: 7,
                by: "provider".into(),
            })
            .unwrap();
        assert_eq!((o.today.requests, o.today.unknown_price_requests), (3, 2));
        assert_eq!(o.today.cost_usd, "0.00000007");
        assert_eq!(o.today.input_tokens, 30);
        let h = o
            .rows
            .iter()
            .find(|r| r.key.as_deref() == Some("h"))
            .unwrap();
        assert_eq!((h.total.requests, h.total.unknown_price_requests), (2, 2));
        // Before sending: a hard budget blocks the hosted model whose price
        // is unknown, not the priced one.
        let (_tmp, svc) = service(&format!(
            "{hosted}[budgets.cap]\nperiod = \"daily\"\nlimit_usd = \"100\"\n"
        ));
        let checks = svc.check_budgets(&[ask(1, "h:unpriced"), ask(2, "a:m")]);
        assert_eq!(checks[0].blocked_by, vec!["cap".to_owned()]);
        assert!(checks[1].blocked_by.is_empty());
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2026-05-07 is a Thursday.
        let thu = parse_date("2026-05-07").unwrap() + 5_000;
        assert_eq!(week_start(thu), parse_date("2026-05-04").unwrap());
        let mon = parse_date("2026-05-04").unwrap();
        assert_eq!(week_start(mon), mon);
    }
}
