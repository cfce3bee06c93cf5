//! Client tokens of the Local API: what `switchboard-cli tokens` and the
//! app's Settings make, list and revoke. The token itself is returned once
//! by [`create`] and stored nowhere; the database keeps its hash
//! (see [`switchboard_engine::store::ClientToken`]).
//!
//! A token's requests carry its name (and its tag) as ledger tags, so the
//! spend page breaks the Local API's spend down by tool, and budgets
//! scoped to `tag:<name>` apply to it. A token bound to a budget
//! (`--budget NAME`) spends only while that budget exists and counts its
//! requests (scope `global`, or `tag:` its name or tag): it is checked
//! when the token is made and again on every request, so deleting or
//! rescoping the budget stops the token (402) rather than letting it
//! spend unbounded.

use switchboard_engine::store::{ClientToken, NewToken};
use switchboard_engine::{Budget, BudgetScope, Config, Secret, Store, StoreError};

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// A bad name or tag, or the name is taken.
    #[error("{0}")]
    Invalid(String),
    /// The budget it should be bound to does not cover it.
    #[error("{0}")]
    Budget(String),
    /// The database failed.
    #[error("{0}")]
    Store(String),
}

impl From<StoreError> for TokenError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid { message } => TokenError::Invalid(message),
            other => TokenError::Store(other.to_string()),
        }
    }
}

/// Why a token named `name` (with `tag`) may not spend under budget
/// `budget` of `budgets`, if it may not.
pub fn budget_problem(
    budgets: &[Budget],
    name: &str,
    tag: Option<&str>,
    budget: &str,
) -> Option<String> {
    let Some(b) = budgets.iter().find(|b| b.name == budget) else {
        return Some(format!(
            "budget \"{budget}\" is not defined in config.toml; add it first, e.g. \
             switchboard-cli budget set {budget} --scope tag:{name} --period monthly --limit-usd 10"
        ));
    };
    match &b.scope {
        BudgetScope::Global => None,
        BudgetScope::Tag(t) if t == name || Some(t.as_str()) == tag => None,
        other => Some(format!(
            "budget \"{budget}\" counts {other}, not every request of token \"{name}\": bind a \
             budget scoped to tag:{name} (or global)"
        )),
    }
}

/// Make a token (after checking its budget against `config`). Returns it
/// as listed and the token itself: show it once.
pub fn create(
    store: &Store,
    config: &Config,
    new: &NewToken,
) -> Result<(ClientToken, Secret), TokenError> {
    if let Some(budget) = &new.budget {
        let budgets = config
            .budget_list()
            .map_err(|e| TokenError::Budget(e.to_string()))?;
        if let Some(problem) = budget_problem(&budgets, &new.name, new.tag.as_deref(), budget) {
            return Err(TokenError::Budget(problem));
        }
    }
    Ok(store.create_token(new)?)
}

/// Live tokens (and revoked ones when `include_revoked`), oldest first.
pub fn list(store: &Store, include_revoked: bool) -> Result<Vec<ClientToken>, TokenError> {
    Ok(store.tokens(include_revoked)?)
}

/// Revoke the live token `name`; false when there is none. A running
/// Local API refuses it within a second.
pub fn revoke(store: &Store, name: &str) -> Result<bool, TokenError> {
    Ok(store.revoke_token(name)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_engine::{BudgetPeriod, Cost};

    #[test]
    fn a_bound_budget_must_exist_and_count_the_tokens_requests() {
        let budget = |name: &str, scope: BudgetScope| Budget {
            name: name.into(),
            scope,
            period: BudgetPeriod::Monthly,
            limit: Cost::from_nanos(1),
            warn_at_bp: 8000,
            hard: true,
        };
        let budgets = vec![
            budget("all", BudgetScope::Global),
            budget("mine", BudgetScope::Tag("cursor".into())),
            budget("proj", BudgetScope::Tag("work".into())),
            budget("oa", BudgetScope::Provider("openai".into())),
        ];
        assert_eq!(budget_problem(&budgets, "cursor", None, "all"), None);
        assert_eq!(budget_problem(&budgets, "cursor", None, "mine"), None);
        assert_eq!(
            budget_problem(&budgets, "cursor", Some("work"), "proj"),
            None
        );
        let p = budget_problem(&budgets, "cursor", None, "oa").unwrap();
        assert!(p.contains("provider:openai"), "{p}");
        let p = budget_problem(&budgets, "cursor", None, "nope").unwrap();
        assert!(p.contains("budget set nope --scope tag:cursor"), "{p}");
    }
}
