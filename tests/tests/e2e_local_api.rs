//! Settings → Local API end to end: the real app under Xvfb turns the
//! Local API on with its switch, makes a client token (shown once), and a
//! tool on this machine (here: an HTTP client in the test) gets an answer
//! from a mock provider through it, which the live counters show; the
//! port can be changed while it runs (and a port in use is a clear
//! problem); the switch turns it off again; and with "start with the app"
//! it is listening right after a restart, the same token still working,
//! and the spend page shows what the token's tool spent under its name.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use switchboard_mock::{MockServer, MockUsage, Scenario};
use switchboard_protocol::format_usd;
use switchboard_tests::e2e::{App, Launch};
use switchboard_tests::mock_providers_config;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A Chat Completions request through the Local API: (status, body).
async fn ask(port: u16, token: Option<&str>) -> anyhow::Result<(u16, serde_json::Value)> {
    let mut rb = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .json(&serde_json::json!({
            "model": "oa:oa-model",
            "messages": [{"role": "user", "content": "Hello?"}],
        }));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await?))
}

/// Type `port` into Settings' port field and leave it (`change` fires).
async fn set_port(app: &App, port: u16) -> anyhow::Result<()> {
    let input = app.wait_for("#local-api-port").await?;
    input.clear().await?;
    input.send_keys(&port.to_string()).await?;
    app.click("#local-api-title").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_api_switch_starts_and_stops_it_and_tokens_made_there_work() -> anyhow::Result<()>
{
    let server = MockServer::start().await?;
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&["Hello from ", "the Local API"])
            .with_usage(MockUsage {
                input: 1000,
                cached_input: 0,
                output: 100,
                reasoning: 0,
            }),
    );
    let port = free_port();
    let home = tempfile::tempdir()?;
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "{}[local_api]\nport = {port}\n",
            mock_providers_config(&server)
        ),
    )?;
    let app = App::launch(Launch::new("local-api").data_dir(home.path())).await?;
    let mut token = String::new();
    app.check(async {
        app.open_settings().await?;
        app.wait_for("#local-api").await?;
        assert!(
            ask(port, None).await.is_err(),
            "nothing listens before the switch"
        );
        app.click("#local-api-enabled").await?;
        let url = app
            .wait_for_text("#local-api-url", |t| !t.is_empty())
            .await?;
        assert_eq!(url, format!("http://127.0.0.1:{port}/v1"));

        // Without a token: refused.
        let (status, body) = ask(port, None).await?;
        assert_eq!(status, 401, "{body}");
        app.wait_for("#local-api-no-tokens").await?;

        // A token made here is shown once and works at once.
        app.type_into("#token-name", "e2e-tool").await?;
        app.click("#token-create").await?;
        token = app
            .wait_for_text("#token-value", |t| t.starts_with("sb-"))
            .await?;
        app.screenshot("local-api-token").await?;
        let (status, body) = ask(port, Some(&token)).await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "Hello from the Local API"
        );
        // 1000 × $2.50/M + 100 × $10/M = $0.0035
        assert_eq!(body["usage"]["cost"].as_f64(), Some(0.0035));

        // The live counters: two requests, one refused, today's spend.
        app.wait_for_text("#local-api-requests", |t| t == "2 requests")
            .await?;
        assert_eq!(app.text("#local-api-errors").await?, "1 error");
        app.wait_for_text("#local-api-spend", |t| t == "$0.0035 today")
            .await?;
        app.click("#token-done").await?;
        let listed = app
            .wait_for_text("[data-token=\"e2e-tool\"] .token-details", |t| {
                t.contains("last used")
            })
            .await?;
        assert!(
            listed.contains(&format!("••••{}", &token[token.len() - 4..])),
            "{listed}"
        );
        assert!(
            !app.text("#local-api").await?.contains(&token),
            "the token is not shown again"
        );
        app.screenshot("local-api-on").await?;

        // Another port while it runs: it moves there.
        let moved = free_port();
        set_port(&app, moved).await?;
        app.wait_for_text("#local-api-url", |t| {
            t == format!("http://127.0.0.1:{moved}/v1")
        })
        .await?;
        let (status, body) = ask(moved, Some(&token)).await?;
        assert_eq!(status, 200, "{body}");
        assert!(
            ask(port, Some(&token)).await.is_err(),
            "the old port still listens"
        );
        // A port another program holds: a clear problem, and it is off.
        let holder = std::net::TcpListener::bind("127.0.0.1:0")?;
        let held = holder.local_addr()?.port();
        set_port(&app, held).await?;
        let problem = app
            .wait_for_text("#local-api-problem", |t| t.contains("cannot listen"))
            .await?;
        assert!(problem.contains(&format!("127.0.0.1:{held}")), "{problem}");
        app.wait_for_text("#local-api", |t| !t.contains("Base URL"))
            .await?;
        assert!(ask(moved, Some(&token)).await.is_err(), "stopped");
        drop(holder);
        // Back on the first port with the switch.
        set_port(&app, port).await?;
        app.click("#local-api-enabled").await?;
        app.wait_for_text("#local-api-url", |t| {
            t == format!("http://127.0.0.1:{port}/v1")
        })
        .await?;
        assert!(app.text_content("#local-api-problem").await?.is_none());

        // Off: nothing listens any more.
        app.click("#local-api-enabled").await?;
        app.wait_for_text("#local-api", |t| !t.contains("Base URL"))
            .await?;
        assert!(
            ask(port, Some(&token)).await.is_err(),
            "still listening after the switch"
        );

        // Start with the app (it is off now; the setting is saved).
        app.click("#local-api-autostart").await?;
        app.wait_for_text("#local-api-title", |t| t == "Local API")
            .await?;
        Ok(())
    })
    .await?;
    app.close().await?;
    let config = std::fs::read_to_string(home.path().join("config.toml"))?;
    assert!(config.contains("start_with_app = true"), "{config}");

    // After a restart it listens before anyone opens Settings, and the
    // token made before still works.
    let app = App::launch(Launch::new("local-api-restart").data_dir(home.path())).await?;
    app.check(async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let (status, body) = loop {
            if let Ok(answer) = ask(port, Some(&token)).await {
                break answer;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not listening after the restart"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert_eq!(status, 200, "{body}");
        // The spend page breaks the Local API's spend down by tool: the
        // token's name is the tag of its three answers.
        app.click("#nav-spend").await?;
        app.click("#by-tag").await?;
        let row =
            |col: &str| format!("#spend-table tr[data-key=\"e2e-tool\"] td[data-col=\"{col}\"]");
        app.wait_for_content(&row("cost"), |t| t == format_usd(3 * 3_500_000))
            .await?;
        assert_eq!(app.text(&row("requests")).await?, "3");
        app.screenshot("local-api-spend-by-tag").await?;
        app.open_settings().await?;
        let url = app
            .wait_for_text("#local-api-url", |t| !t.is_empty())
            .await?;
        assert_eq!(url, format!("http://127.0.0.1:{port}/v1"));

        // Revoked in Settings: refused at once.
        app.click("[data-token=\"e2e-tool\"] .token-revoke").await?;
        app.wait_for("#local-api-no-tokens").await?;
        let (status, body) = ask(port, Some(&token)).await?;
        assert_eq!(status, 401, "{body}");
        Ok(())
    })
    .await?;
    app.close().await?;
    Ok(())
}
