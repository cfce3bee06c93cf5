//! Editing the `[budgets.<name>]` tables of config.toml, for the CLI's
//! `budget set|rm` and the app's budget editor alike: one place checks the
//! fields (with messages that name them), and every change goes through
//! [`Config::update`], which keeps the rest of the file as written
//! (comments included), refuses a result that would not load, and keeps
//! the previous file as `config.toml.bak`.
//!
//! Also here: what a budget's period looks like at the current pace
//! ([`projection`]), for the spend page.

use std::path::Path;

use crate::config::{BudgetPeriod, BudgetScope, Config, ConfigError};
use crate::money::Cost;
use crate::store::time::{day_start, month_start};

/// A budget as the user typed it.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetEdit {
    /// Its name (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// A budget it replaces (a rename), removed in the same write.
    pub replaces: Option<String>,
    /// `global`, `provider:<id>`, `route:<name>` or `tag:<tag>`.
    pub scope: String,
    /// `daily` or `monthly`.
    pub period: String,
    /// The limit in USD, an exact decimal.
    pub limit_usd: String,
    /// Warn from this fraction of the limit (0 to 1).
    pub warn_at: f64,
    /// Refuse requests that would exceed it (false: warn only).
    pub hard: bool,
}

/// Why a budget edit was refused; `field` names what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BudgetEditError {
    /// A field is not valid; nothing was written.
    #[error("{field}: {message}")]
    Invalid {
        /// `name`, `scope`, `period`, `limit_usd` or `warn_at`.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// config.toml could not be updated (it does not load, or the disk).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> BudgetEditError {
    BudgetEditError::Invalid {
        field,
        message: message.into(),
    }
}

/// Check `edit`'s fields without writing anything.
pub fn validate(edit: &BudgetEdit) -> Result<(), BudgetEditError> {
    let name = edit.name.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(invalid(
            "name",
            "a budget name uses letters, digits, '-', '_' or '.'",
        ));
    }
    edit.scope
        .parse::<BudgetScope>()
        .map_err(|e| invalid("scope", e))?;
    edit.period
        .parse::<BudgetPeriod>()
        .map_err(|e| invalid("period", e))?;
    let limit = Cost::from_usd(&edit.limit_usd).map_err(|e| invalid("limit_usd", e.to_string()))?;
    if limit <= Cost::ZERO {
        return Err(invalid("limit_usd", "the limit must be more than zero"));
    }
    if !(0.0..=1.0).contains(&edit.warn_at) {
        return Err(invalid("warn_at", "a fraction of the limit from 0 to 1"));
    }
    Ok(())
}

/// Add or replace the budget `edit.name` in the config file at `path`
/// (removing `edit.replaces` when it names another budget).
pub fn save_budget(path: &Path, edit: &BudgetEdit) -> Result<Config, BudgetEditError> {
    validate(edit)?;
    let name = edit.name.trim().to_owned();
    let config = Config::update(path, |doc| {
        let budgets = doc
            .entry("budgets")
            .or_insert(toml_edit::table())
            .as_table_mut()
            .ok_or("`budgets` in config.toml is not a table")?;
        budgets.set_implicit(true);
        if let Some(old) = edit.replaces.as_deref().map(str::trim)
            && old != name
        {
            budgets.remove(old);
        }
        let mut t = toml_edit::Table::new();
        t["scope"] = toml_edit::value(edit.scope.trim());
        t["period"] = toml_edit::value(edit.period.trim());
        t["limit_usd"] = toml_edit::value(edit.limit_usd.trim());
        // Written rounded to basis points, as the parser keeps it.
        t["warn_at"] = toml_edit::value((edit.warn_at * 10_000.0).round() / 10_000.0);
        t["hard"] = toml_edit::value(edit.hard);
        budgets.insert(&name, toml_edit::Item::Table(t));
        Ok(())
    })?;
    Ok(config)
}

/// Remove the budget `name` from the config file at `path`.
pub fn remove_budget(path: &Path, name: &str) -> Result<Config, BudgetEditError> {
    let config = Config::update(path, |doc| {
        let removed = doc
            .get_mut("budgets")
            .and_then(toml_edit::Item::as_table_like_mut)
            .and_then(|t| t.remove(name));
        match removed {
            Some(_) => Ok(()),
            None => Err(format!("there is no budget named {name:?}")),
        }
    })?;
    Ok(config)
}

/// The current period of `period` at `now` (Unix ms): its start and its
/// end (exclusive), on UTC boundaries.
pub fn period_bounds(period: BudgetPeriod, now: i64) -> (i64, i64) {
    const DAY: i64 = 86_400_000;
    match period {
        BudgetPeriod::Daily => {
            let start = day_start(now);
            (start, start + DAY)
        }
        BudgetPeriod::Monthly => {
            let start = month_start(now);
            (start, month_start(start + 32 * DAY))
        }
    }
}

/// What `spent` so far in the period containing `now` comes to at the end
/// of the period at the same pace. The pace is measured over at least an
/// hour, so the first minutes of a day do not project absurd amounts.
pub fn projection(period: BudgetPeriod, spent: Cost, now: i64) -> Cost {
    let (start, end) = period_bounds(period, now);
    let elapsed = (now - start).max(3_600_000);
    let length = end - start;
    if elapsed >= length {
        return spent;
    }
    let nanos = i128::from(spent.nanos()) * i128::from(length) / i128::from(elapsed);
    Cost::from_nanos(i64::try_from(nanos).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::time::parse_date;

    fn edit(name: &str, limit: &str) -> BudgetEdit {
        BudgetEdit {
            name: name.into(),
            replaces: None,
            scope: "provider:openai".into(),
            period: "daily".into(),
            limit_usd: limit.into(),
            warn_at: 0.75,
            hard: false,
        }
    }

    #[test]
    fn budgets_are_saved_renamed_and_removed_keeping_the_rest_of_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.toml");
        std::fs::write(&path, "# my notes\n[ui]\ntheme = \"dark\"\n").unwrap();
        let cfg = save_budget(&path, &edit("oa", "5.25")).unwrap();
        let b = cfg.budget_list().unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].limit, Cost::from_nanos(5_250_000_000));
        assert_eq!(b[0].scope, BudgetScope::Provider("openai".into()));
        assert_eq!(b[0].period, BudgetPeriod::Daily);
        assert_eq!(b[0].warn_at_bp, 7_500);
        assert!(!b[0].hard);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# my notes\n"), "{text}");

        let mut renamed = edit("openai-daily", "6");
        renamed.replaces = Some("oa".into());
        renamed.hard = true;
        let cfg = save_budget(&path, &renamed).unwrap();
        let b = cfg.budget_list().unwrap();
        assert_eq!(b.len(), 1, "the old name is gone");
        assert_eq!((b[0].name.as_str(), b[0].hard), ("openai-daily", true));

        let cfg = remove_budget(&path, "openai-daily").unwrap();
        assert!(cfg.budget_list().unwrap().is_empty());
        assert!(remove_budget(&path, "openai-daily").is_err());
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("theme = \"dark\"")
        );
    }

    #[test]
    fn bad_fields_are_named_and_nothing_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.toml");
        let field = |e: BudgetEditError| match e {
            BudgetEditError::Invalid { field, .. } => field,
            BudgetEditError::Config(c) => panic!("{c}"),
        };
        assert_eq!(
            field(save_budget(&path, &edit("a b", "1")).unwrap_err()),
            "name"
        );
        assert_eq!(
            field(save_budget(&path, &edit("a", "0")).unwrap_err()),
            "limit_usd"
        );
        assert_eq!(
            field(save_budget(&path, &edit("a", "lots")).unwrap_err()),
            "limit_usd"
        );
        let mut e = edit("a", "1");
        e.scope = "galaxy".into();
        assert_eq!(field(save_budget(&path, &e).unwrap_err()), "scope");
        let mut e = edit("a", "1");
        e.period = "weekly".into();
        assert_eq!(field(save_budget(&path, &e).unwrap_err()), "period");
        let mut e = edit("a", "1");
        e.warn_at = 1.5;
        assert_eq!(field(save_budget(&path, &e).unwrap_err()), "warn_at");
        assert!(!path.exists());
    }

    #[test]
    fn projection_extends_the_pace_to_the_end_of_the_period() {
        // 2026-04-10 12:00 UTC: a day half gone, April (30 days) 9.5 days in.
        let now = parse_date("2026-04-10").unwrap() + 43_200_000;
        let spent = Cost::from_usd("1").unwrap();
        assert_eq!(
            projection(BudgetPeriod::Daily, spent, now),
            Cost::from_usd("2").unwrap()
        );
        assert_eq!(
            projection(BudgetPeriod::Monthly, spent, now),
            Cost::from_nanos(1_000_000_000 * 30 * 2 / 19)
        );
        let (start, end) = period_bounds(BudgetPeriod::Monthly, now);
        assert_eq!(start, parse_date("2026-04-01").unwrap());
        assert_eq!(end, parse_date("2026-05-01").unwrap());
        // Ten minutes into a day: the pace is taken over an hour.
        let early = parse_date("2026-04-10").unwrap() + 600_000;
        assert_eq!(
            projection(BudgetPeriod::Daily, spent, early),
            Cost::from_usd("24").unwrap()
        );
    }
}
