//! Keys through a real Secret Service (gnome-keyring on a private D-Bus
//! session), via the engine's `KeyStore` and so the `keyring` crate.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use switchboard_engine::{KeySource, KeyStore, Secret};
use switchboard_tests::{ask_request, keychain};

#[test]
fn a_key_is_stored_read_back_and_deleted() -> anyhow::Result<()> {
    keychain::for_this_process()?;
    let store = KeyStore::with_service("switchboard-test-roundtrip");
    let key = Secret::new("sk-test-0123456789-abcd");

    assert!(
        store.get_stored("openai")?.is_none(),
        "a fresh keyring has no key"
    );
    store.set("openai", &key)?;
    let read = store.get_stored("openai")?.expect("the key just stored");
    assert_eq!(read.expose(), key.expose());
    assert_eq!(
        store.get("openai")?.map(|(_, src)| src),
        Some(KeySource::Keychain)
    );

    // Replacing keeps one entry with the new value.
    store.set("openai", &Secret::new("sk-test-replaced-wxyz"))?;
    assert_eq!(
        store.get_stored("openai")?.map(|s| s.last4()),
        Some("wxyz".into())
    );

    assert!(store.delete("openai")?);
    assert!(store.get_stored("openai")?.is_none());
    assert!(
        !store.delete("openai")?,
        "deleting twice reports there was nothing"
    );
    Ok(())
}

#[test]
fn keys_of_different_providers_do_not_mix() -> anyhow::Result<()> {
    keychain::for_this_process()?;
    let store = KeyStore::with_service("switchboard-test-separate");
    store.set("anthropic", &Secret::new("sk-ant-1111"))?;
    store.set("gemini", &Secret::new("AIza-2222"))?;
    assert_eq!(
        store.get_stored("anthropic")?.map(|s| s.last4()),
        Some("1111".into())
    );
    assert_eq!(
        store.get_stored("gemini")?.map(|s| s.last4()),
        Some("2222".into())
    );
    store.delete("anthropic")?;
    assert!(store.get_stored("anthropic")?.is_none());
    assert_eq!(
        store.get_stored("gemini")?.map(|s| s.last4()),
        Some("2222".into())
    );
    store.delete("gemini")?;
    Ok(())
}

fn keyprobe(id: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_keyprobe"));
    cmd.arg(id);
    cmd
}

#[test]
fn without_a_keychain_the_error_names_the_environment_variable() -> anyhow::Result<()> {
    // No D-Bus session at all, as on a headless server: a clear error that
    // names the alternative, never a silent plaintext fallback.
    let out = keyprobe("openai")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        // With an X display, libdbus would autolaunch a session bus (and
        // through it a keyring) that outlives the test.
        .env_remove("DISPLAY")
        .env_remove("SWITCHBOARD_KEY_OPENAI")
        .env("XDG_RUNTIME_DIR", "/nonexistent")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.starts_with("error: the OS keychain is not reachable"),
        "{stdout}"
    );
    assert!(stdout.contains("SWITCHBOARD_KEY_OPENAI"), "{stdout}");
    Ok(())
}

#[test]
fn the_environment_variable_provides_a_key_without_a_keychain() -> anyhow::Result<()> {
    let out = keyprobe("my-lab.gpu")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        // With an X display, libdbus would autolaunch a session bus (and
        // through it a keyring) that outlives the test.
        .env_remove("DISPLAY")
        .env("SWITCHBOARD_KEY_MY_LAB_GPU", "sk-from-env-9876")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(stdout.trim(), "found Environment key ending 9876");
    Ok(())
}

#[test]
fn listing_keys_shows_ids_and_last_four_and_heals_the_index() -> anyhow::Result<()> {
    use switchboard_engine::{KeyListing, Store};
    keychain::for_this_process()?;
    let tmp = tempfile::tempdir()?;
    let store = Store::open_at(&tmp.path().join("db.sqlite3"))?;
    let keys = KeyStore::with_service("switchboard-test-list").with_index(store.key_index());
    keys.set("lab-gpu", &Secret::new("sk-lab-aaaa-1111"))?;
    // An entry made by another tool (no index) for a configured provider.
    KeyStore::with_service("switchboard-test-list").set("openai", &Secret::new("sk-oa-2222"))?;
    let listed = keys.list(&["openai".to_owned(), "anthropic".to_owned()])?;
    let entry = |id: &str, last4: &str| KeyListing {
        provider_id: id.to_owned(),
        last4: last4.to_owned(),
        source: KeySource::Keychain,
    };
    assert_eq!(
        listed,
        vec![entry("lab-gpu", "1111"), entry("openai", "2222")]
    );
    // The entry found by looking is now indexed, so it is listed without asking.
    assert_eq!(keys.list(&[])?, listed);
    // An entry deleted behind the index's back drops out of it.
    KeyStore::with_service("switchboard-test-list").delete("lab-gpu")?;
    assert_eq!(keys.list(&[])?, vec![entry("openai", "2222")]);
    assert!(keys.delete("openai")?);
    assert!(keys.list(&["openai".to_owned()])?.is_empty());
    Ok(())
}

/// A chat service over a fresh data directory whose provider `id` is the
/// mock's OpenAI endpoint (model `m`), reading keys through `keys`.
fn keyed_service(
    server: &switchboard_mock::MockServer,
    id: &str,
    keys: &KeyStore,
) -> anyhow::Result<(
    tempfile::TempDir,
    std::sync::Arc<switchboard_engine::service::ChatService>,
)> {
    let home = tempfile::tempdir()?;
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[providers.{id}]\nkind = \"openai\"\nbase_url = \"{}\"\n\n[[providers.{id}.models]]\nid = \"m\"\n",
            server.base_url(switchboard_mock::Protocol::OpenAi)
        ),
    )?;
    let svc = std::sync::Arc::new(switchboard_engine::service::ChatService::new(
        switchboard_engine::DataDir::at(home.path())?,
        keys.clone(),
    ));
    Ok((home, svc))
}

/// The key the provider was last sent (`Authorization: Bearer …`).
fn last_key(server: &switchboard_mock::MockServer) -> Option<String> {
    server
        .requests()
        .last()
        .and_then(|r| r.header("authorization").map(str::to_owned))
}

fn answered_with(key: &str) -> switchboard_mock::Scenario {
    switchboard_mock::Scenario::default()
        .with_text(&["answered"])
        .with_key(key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_read_no_key_yet_use_one_changed_in_settings_at_once() -> anyhow::Result<()> {
    keychain::for_this_process()?;
    let server = switchboard_mock::MockServer::start().await?;
    let keys = KeyStore::with_service("switchboard-test-keycache");
    let (_home, svc) = keyed_service(&server, "kc", &keys)?;
    server.script("m", answered_with("sk-test-first-aaaa"));
    svc.set_key("kc", "sk-test-first-aaaa")?;
    let s = svc.ask(ask_request(1, "kc:m"), |_| true).await;
    assert!(s.error.is_none(), "{:?}", s.error);
    let reads = keys.reads();
    for n in 2..5 {
        let s = svc.ask(ask_request(n, "kc:m"), |_| true).await;
        assert!(s.error.is_none(), "{:?}", s.error);
    }
    assert_eq!(
        keys.reads(),
        reads,
        "later requests read no key from the keychain"
    );

    // Settings change the key; the provider now takes only the new one.
    server.script("m", answered_with("sk-test-second-bbbb"));
    svc.set_key("kc", "sk-test-second-bbbb")?;
    let s = svc.ask(ask_request(5, "kc:m"), |_| true).await;
    assert!(s.error.is_none(), "{:?}", s.error);
    assert_eq!(
        s.trail.len(),
        1,
        "sent once, with the new key: {:?}",
        s.trail
    );
    assert_eq!(
        last_key(&server).as_deref(),
        Some("Bearer sk-test-second-bbbb")
    );

    // Settings remove it: the next request carries none (a local server
    // may need none), and this one refuses it.
    svc.remove_key("kc")?;
    let s = svc.ask(ask_request(6, "kc:m"), |_| true).await;
    assert_eq!(s.error.map(|e| e.kind).as_deref(), Some("auth"));
    assert_eq!(last_key(&server), None, "the removed key was not sent");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_changed_by_the_cli_replaces_the_refused_one_in_the_same_request()
-> anyhow::Result<()> {
    keychain::for_this_process()?;
    let server = switchboard_mock::MockServer::start().await?;
    // The service the CLI uses, for an id no other test touches.
    let keys = KeyStore::new();
    let (home, svc) = keyed_service(&server, "kc-cli", &keys)?;
    server.script("m", answered_with("sk-test-old-1111"));
    svc.set_key("kc-cli", "sk-test-old-1111")?;
    let s = svc.ask(ask_request(1, "kc-cli:m"), |_| true).await;
    assert!(s.error.is_none(), "{:?}", s.error);

    // Another process replaces the key, and the provider revokes the old one.
    let mut cli = std::process::Command::new(switchboard_tests::cli_binary()?)
        .args(["keys", "set", "kc-cli"])
        .env("SWITCHBOARD_HOME", home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()?;
    {
        use std::io::Write;
        let mut stdin = cli.stdin.take().expect("piped");
        stdin.write_all(b"sk-test-new-2222")?;
    }
    assert!(cli.wait()?.success(), "switchboard-cli keys set failed");
    server.script("m", answered_with("sk-test-new-2222"));

    let s = svc.ask(ask_request(2, "kc-cli:m"), |_| true).await;
    assert!(s.error.is_none(), "{:?}", s.error);
    let steps: Vec<(&str, Option<&str>)> = s
        .trail
        .iter()
        .map(|t| (t.outcome.as_str(), t.detail.as_deref()))
        .collect();
    assert_eq!(
        steps,
        vec![("error", Some("auth")), ("ok", None)],
        "refused with the old key, answered with the new one"
    );
    assert_eq!(
        last_key(&server).as_deref(),
        Some("Bearer sk-test-new-2222")
    );
    // The new key is the one kept: the next request goes once.
    let s = svc.ask(ask_request(3, "kc-cli:m"), |_| true).await;
    assert!(s.error.is_none(), "{:?}", s.error);
    assert_eq!(s.trail.len(), 1, "{:?}", s.trail);

    // A key that is simply wrong is read again once, then fails as before.
    server.script("m", answered_with("sk-test-other-3333"));
    let s = svc.ask(ask_request(4, "kc-cli:m"), |_| true).await;
    assert_eq!(s.error.map(|e| e.kind).as_deref(), Some("auth"));
    assert_eq!(
        s.trail.len(),
        1,
        "not sent again with the same key: {:?}",
        s.trail
    );
    keys.delete("kc-cli")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_api_the_app_runs_uses_a_key_changed_in_its_settings_at_once()
-> anyhow::Result<()> {
    keychain::for_this_process()?;
    let server = switchboard_mock::MockServer::start().await?;
    // One store for the app's panes and its Local API, as the app has.
    let keys = KeyStore::with_service("switchboard-test-keycache-api");
    let (home, svc) = keyed_service(&server, "kc-api", &keys)?;
    let (gateway, token) = local_api(home.path(), &keys).await?;
    server.script("m", answered_with("sk-test-api-one-1111"));
    svc.set_key("kc-api", "sk-test-api-one-1111")?;
    assert_eq!(local_api_status(&gateway, &token, "kc-api:m").await?, 200);
    assert_eq!(
        last_key(&server).as_deref(),
        Some("Bearer sk-test-api-one-1111")
    );

    server.script("m", answered_with("sk-test-api-two-2222"));
    svc.set_key("kc-api", "sk-test-api-two-2222")?;
    let before = server.hits("m");
    assert_eq!(local_api_status(&gateway, &token, "kc-api:m").await?, 200);
    assert_eq!(
        server.hits("m"),
        before + 1,
        "sent once, with the new key (the old one was not tried first)"
    );
    assert_eq!(
        last_key(&server).as_deref(),
        Some("Bearer sk-test-api-two-2222")
    );
    keys.delete("kc-api")?;
    Ok(())
}

/// A Local API over `home` (its provider `id` the mock's, model `m`)
/// reading keys through `keys`, and a client token for it.
async fn local_api(
    home: &std::path::Path,
    keys: &KeyStore,
) -> anyhow::Result<(switchboard_gateway::Gateway, String)> {
    use switchboard_gateway::{Gateway, GatewayOptions};
    let dir = switchboard_engine::DataDir::at(home)?;
    let token = {
        let store = switchboard_engine::Store::open(&dir)?;
        let (_, t) = store.create_token(&switchboard_engine::store::NewToken {
            name: "keys".into(),
            ..switchboard_engine::store::NewToken::default()
        })?;
        t.expose().to_owned()
    };
    let gateway = Gateway::start(
        dir,
        keys.clone(),
        GatewayOptions {
            port: 0,
            ..GatewayOptions::default()
        },
    )
    .await?;
    Ok((gateway, token))
}

/// One whole answer from `model` through the Local API: its status.
async fn local_api_status(
    gateway: &switchboard_gateway::Gateway,
    token: &str,
    model: &str,
) -> anyhow::Result<u16> {
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/chat/completions", gateway.addr()))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "model": model,
            "messages": [{ "role": "user", "content": "go" }],
        }))
        .send()
        .await?;
    Ok(r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_api_keeps_the_newer_key_it_was_answered_with_after_a_refusal()
-> anyhow::Result<()> {
    keychain::for_this_process()?;
    let server = switchboard_mock::MockServer::start().await?;
    let keys = KeyStore::with_service("switchboard-test-keycache-rekey");
    let (home, _svc) = keyed_service(&server, "kc-rekey", &keys)?;
    let (gateway, token) = local_api(home.path(), &keys).await?;
    server.script("m", answered_with("sk-test-rekey-old-1111"));
    keys.set("kc-rekey", &Secret::new("sk-test-rekey-old-1111"))?;
    assert_eq!(local_api_status(&gateway, &token, "kc-rekey:m").await?, 200);

    // Another tool replaces the key in the keychain (no index, so only
    // the provider's refusal tells), and the provider revokes the old one.
    KeyStore::with_service("switchboard-test-keycache-rekey")
        .set("kc-rekey", &Secret::new("sk-test-rekey-new-2222"))?;
    server.script("m", answered_with("sk-test-rekey-new-2222"));
    let before = server.hits("m");
    assert_eq!(local_api_status(&gateway, &token, "kc-rekey:m").await?, 200);
    assert_eq!(server.hits("m"), before + 2, "refused, then answered");
    assert_eq!(
        last_key(&server).as_deref(),
        Some("Bearer sk-test-rekey-new-2222")
    );

    // The key that answered is kept: the next request reads no key and
    // goes once.
    let (reads, before) = (keys.reads(), server.hits("m"));
    assert_eq!(local_api_status(&gateway, &token, "kc-rekey:m").await?, 200);
    assert_eq!(server.hits("m"), before + 1);
    assert_eq!(keys.reads(), reads, "the newer key was looked up again");
    keys.delete("kc-rekey")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_removed_by_the_cli_is_no_longer_sent_by_a_running_local_api() -> anyhow::Result<()> {
    keychain::for_this_process()?;
    let server = switchboard_mock::MockServer::start().await?;
    // The service the CLI uses, for an id no other test touches.
    let keys = KeyStore::new();
    let (home, _svc) = keyed_service(&server, "kc-rm", &keys)?;
    let cli = |args: &[&str], stdin: &[u8]| -> anyhow::Result<()> {
        let mut child = std::process::Command::new(switchboard_tests::cli_binary()?)
            .args(args)
            .env("SWITCHBOARD_HOME", home.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()?;
        {
            use std::io::Write;
            let mut pipe = child.stdin.take().expect("piped");
            pipe.write_all(stdin)?;
        }
        anyhow::ensure!(child.wait()?.success(), "switchboard-cli {args:?} failed");
        Ok(())
    };
    cli(&["keys", "set", "kc-rm"], b"sk-test-rm-1111")?;
    let (gateway, token) = local_api(home.path(), &keys).await?;
    // The provider would go on accepting the key.
    server.script("m", answered_with("sk-test-rm-1111"));
    assert_eq!(local_api_status(&gateway, &token, "kc-rm:m").await?, 200);
    assert_eq!(last_key(&server).as_deref(), Some("Bearer sk-test-rm-1111"));

    cli(&["keys", "rm", "kc-rm"], b"")?;
    // The next request after a pause of a second (the index check's
    // period; not the minute a key is otherwise kept) no longer carries
    // it, not even once (a server on this machine may need none: sent
    // without one, and refused).
    tokio::time::sleep(switchboard_engine::INDEX_CHECK + std::time::Duration::from_millis(100))
        .await;
    let status = local_api_status(&gateway, &token, "kc-rm:m").await?;
    assert_eq!(last_key(&server), None, "the removed key was sent");
    assert_ne!(status, 200, "answered with the removed key");
    Ok(())
}
