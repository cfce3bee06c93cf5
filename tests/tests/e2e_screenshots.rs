//! The main views as a person first sees them, in the order the README
//! walks through them: a key entered in Settings (kept in a real Secret
//! Service, shown masked), three answers side by side, a history search,
//! and the spend page with a budget. Each view is checked, then
//! photographed with `App::screenshot`. With `SWITCHBOARD_README_SCREENSHOTS=1` (`make
//! screenshots`) the pictures also replace the README's, in
//! `tests/screenshots/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::time::Duration;

use switchboard_mock::{MockServer, MockUsage, Scenario};
use switchboard_tests::e2e::{App, Launch};
use switchboard_tests::keychain::SecretService;
use switchboard_tests::mock_providers_config;

const KEY: &str = "sk-readme-0000000000004242";

const ANSWERS: [(&str, &[&str]); 3] = [
    (
        "oa-model",
        &[
            "A **quokka** is a small wallaby ",
            "from south-western Australia.\n\n",
            "- Weight: 2.5–5 kg\n",
            "- Diet: grasses and leaves\n",
            "- Famous for: looking like it smiles",
        ],
    ),
    (
        "an-model",
        &[
            "Quokkas (*Setonix brachyurus*) live mostly on ",
            "Rottnest Island, where they have few predators.\n\n",
            "| Fact | Value |\n|---|---|\n| Family | Macropodidae |\n| Lifespan | ~10 years |\n",
        ],
    ),
    (
        "gm-model",
        &[
            "The quokka is a marsupial: it carries its young ",
            "in a pouch for about six months.\n\n",
            "```rust\nlet smile = \"quokka\";\n```",
        ],
    ),
];

/// Save `label` and, when asked, copy it over the README's picture.
async fn shoot(app: &App, label: &str) -> anyhow::Result<()> {
    app.readme_screenshot(label).await.map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_views_with_content() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    for (i, (model, text)) in ANSWERS.iter().enumerate() {
        let n = i as u64;
        let scenario = if *model == "oa-model" {
            Scenario::default().with_key(KEY)
        } else {
            Scenario::default()
        };
        server.script(
            model,
            scenario
                .with_text(text)
                .with_usage(MockUsage {
                    input: 1200 + 100 * n,
                    cached_input: 0,
                    output: 380 + 40 * n,
                    reasoning: 0,
                })
                .with_gap(Duration::from_millis(10)),
        );
    }
    let keyring = SecretService::start()?;
    let home = tempfile::Builder::new().prefix("switchboard-").tempdir()?;
    // `oa` is treated as a hosted provider, so it needs a key.
    let providers = mock_providers_config(&server).replacen(
        "[[providers.oa.models]]",
        "local = false\n[[providers.oa.models]]",
        1,
    );
    let config = format!(
        "{providers}[budgets.monthly]\nscope = \"global\"\nperiod = \"monthly\"\nlimit_usd = \"5.00\"\nwarn_at = 0.8\nhard = true\n"
    );
    std::fs::write(home.path().join("config.toml"), config)?;

    let mut launch = Launch::new("readme").data_dir(home.path());
    for (k, v) in keyring.env() {
        launch = launch.env(k, v);
    }
    let app = App::launch(launch).await?;
    app.check(async {
        // Settings: the first step, a key for a hosted provider.
        app.wait_for_text("#status-keychain", |t| t == "Keychain ready")
            .await?;
        app.open_settings().await?;
        let row = "[data-provider=\"oa\"]";
        app.wait_for_text(&format!("{row} .key-state"), |t| t == "no key")
            .await?;
        app.type_into(&format!("{row} .key-input"), KEY).await?;
        app.click(&format!("{row} .key-save")).await?;
        app.wait_for_text(&format!("{row} .key-state"), |t| t == "••••4242 (keychain)")
            .await?;
        shoot(&app, "settings").await?;

        // Compare: three models, one prompt, answers side by side (the
        // key entered above is what `oa` is sent).
        app.click("#nav-compare").await?;
        app.wait_for("#compare").await?;
        app.click("#add-pane").await?;
        app.pick_model(1, "oa-model").await?;
        app.pick_model(2, "an-model").await?;
        app.pick_model(3, "gm-model").await?;
        app.type_into("#composer", "What is a quokka?\u{E007}")
            .await?;
        for pane in 1..=3 {
            app.wait_for(&format!(
                ".pane:nth-of-type({pane}) .answer-card[data-status=\"done\"]"
            ))
            .await?;
        }
        app.wait_for_content(".pane:nth-of-type(2) table", |t| t.contains("Macropodidae"))
            .await?;
        shoot(&app, "compare").await?;

        // History: the conversation is listed and found by a search.
        app.type_into("#history-search", "marsupial").await?;
        app.wait_for_content("#search-results .search-hit mark", |t| !t.is_empty())
            .await?;
        shoot(&app, "history").await?;

        // Spend: what the three answers cost, and the budget.
        app.click("#nav-spend").await?;
        app.wait_for("#spend-chart").await?;
        app.wait_for_content("#budgets", |t| t.contains("monthly"))
            .await?;
        shoot(&app, "spend").await?;

        Ok(())
    })
    .await?;
    app.close().await
}
