//! Keys through a real Secret Service (gnome-keyring on a private D-Bus
//! session), via the engine's `KeyStore` and so the `keyring` crate.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use switchboard_engine::{KeySource, KeyStore, Secret};
use switchboard_tests::keychain;

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
