//! `keys`: provider keys in the OS keychain. `set` reads the key from
//! stdin (hidden when typed at a terminal), never from the command line,
//! where it would land in shell history and in every `ps` listing. Only
//! the last four characters are ever printed.

use std::io::{IsTerminal, Read};

use clap::{Args, Subcommand};
use serde_json::json;
use switchboard_engine::catalog::list_models;
use switchboard_engine::{
    Client, Config, DataDir, KeyListing, KeySource, KeyStore, Secret, Store, key_hint,
};
use zeroize::Zeroizing;

use crate::UsageError;
use crate::output::{error_line, out, warning};

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Store a provider's key, read from stdin (e.g. `pbpaste | switchboard-cli keys set openai`).
    Set {
        /// Provider id (a preset such as `openai`, or one from config.toml).
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the providers that have a key (last four characters only).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a provider's key from the keychain.
    Rm {
        /// Provider id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a key with the provider's cheapest authenticated call (its model list).
    Test {
        /// Provider id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn load() -> Result<(DataDir, Config), UsageError> {
    let dir = DataDir::resolve().map_err(|e| UsageError(e.to_string()))?;
    let config = Config::load(&dir.config_file()).map_err(|e| UsageError(e.to_string()))?;
    for w in &config.warnings {
        warning(&format!("{}: {w}", config.path.display()));
    }
    Ok((dir, config))
}

fn indexed_store(dir: &DataDir) -> Result<KeyStore, UsageError> {
    let store = Store::open(dir).map_err(|e| UsageError(e.to_string()))?;
    Ok(KeyStore::new().with_index(store.key_index()))
}

/// Provider ids worth looking up: configured ones and the presets.
fn candidates(config: &Config) -> Vec<String> {
    let mut ids: Vec<String> = config.providers.keys().cloned().collect();
    ids.extend(
        switchboard_engine::provider::presets()
            .keys()
            .filter(|k| *k != "custom")
            .cloned(),
    );
    ids.sort();
    ids.dedup();
    ids
}

/// The key from stdin: hidden input at a terminal, else everything piped.
fn read_secret(id: &str) -> Result<Secret, UsageError> {
    let stdin = std::io::stdin();
    let raw = if stdin.is_terminal() {
        Zeroizing::new(
            rpassword::prompt_password(format!("Key for {id} (input hidden): "))
                .map_err(|e| UsageError(format!("cannot read the key: {e}")))?,
        )
    } else {
        let mut text = Zeroizing::new(String::new());
        stdin
            .lock()
            .take(64 * 1024)
            .read_to_string(&mut text)
            .map_err(|e| UsageError(format!("cannot read the key from stdin: {e}")))?;
        text
    };
    let secret = Secret::new(raw.as_str());
    if secret.is_empty() {
        return Err(UsageError(format!(
            "no key on stdin; pipe it in, e.g. `printf %s \"$KEY\" | switchboard-cli keys set {id}`"
        )));
    }
    if secret.expose().chars().any(char::is_whitespace) {
        return Err(UsageError(
            "the key contains spaces or several lines; give exactly one key".into(),
        ));
    }
    Ok(secret)
}

fn source_name(s: KeySource) -> &'static str {
    match s {
        KeySource::Keychain => "keychain",
        KeySource::Environment => "environment",
    }
}

fn listing_json(k: &KeyListing) -> serde_json::Value {
    json!({ "provider": k.provider_id, "last4": k.last4, "source": source_name(k.source) })
}

fn print_json(v: &serde_json::Value) {
    out(&format!(
        "{}\n",
        serde_json::to_string_pretty(v).unwrap_or_default()
    ));
}

pub async fn run(args: KeysArgs) -> Result<bool, UsageError> {
    match args.command {
        KeysCommand::Set { id, json } => set(&id, json),
        KeysCommand::List { json } => list(json),
        KeysCommand::Rm { id, json } => rm(&id, json),
        KeysCommand::Test { id, json } => test(&id, json).await,
    }
}

fn set(id: &str, json: bool) -> Result<bool, UsageError> {
    let (dir, config) = load()?;
    if config.provider(id).is_none() {
        warning(&format!(
            "{id:?} is neither a preset nor configured in {}; the key is stored anyway",
            config.path.display()
        ));
    }
    let keys = indexed_store(&dir)?;
    let secret = read_secret(id)?;
    keys.set(id, &secret)
        .map_err(|e| UsageError(e.to_string()))?;
    if json {
        print_json(&json!({ "provider": id, "last4": secret.last4(), "source": "keychain" }));
    } else {
        out(&format!(
            "Stored the key for {id} (••••{}) in the OS keychain.\n",
            secret.last4()
        ));
    }
    Ok(true)
}

fn list(json: bool) -> Result<bool, UsageError> {
    let (dir, config) = load()?;
    let keys = indexed_store(&dir)?;
    let ids = candidates(&config);
    let env = keys.list_env(&ids);
    let stored = keys.list(&ids);
    let (stored, ok) = match stored {
        Ok(s) => (s, true),
        Err(e) => {
            error_line(&e.to_string());
            (Vec::new(), false)
        }
    };
    let all: Vec<&KeyListing> = stored.iter().chain(env.iter()).collect();
    if json {
        print_json(&serde_json::Value::Array(
            all.iter().map(|k| listing_json(k)).collect(),
        ));
    } else if all.is_empty() {
        out("No keys. Add one with: printf %s \"$KEY\" | switchboard-cli keys set <provider>\n");
    } else {
        for k in &all {
            let note = match k.source {
                KeySource::Keychain => "OS keychain".to_owned(),
                KeySource::Environment => {
                    format!(
                        "{} (this shell)",
                        switchboard_engine::env_var_for(&k.provider_id)
                    )
                }
            };
            out(&format!(
                "{:<20} ••••{:<6} {note}\n",
                k.provider_id, k.last4
            ));
        }
    }
    Ok(ok)
}

fn rm(id: &str, json: bool) -> Result<bool, UsageError> {
    let (dir, _config) = load()?;
    let keys = indexed_store(&dir)?;
    let existed = keys.delete(id).map_err(|e| UsageError(e.to_string()))?;
    if json {
        print_json(&json!({ "provider": id, "removed": existed }));
    } else if existed {
        out(&format!("Removed the key for {id} from the OS keychain.\n"));
    } else {
        out(&format!("There was no key for {id} in the OS keychain.\n"));
    }
    Ok(existed)
}

async fn test(id: &str, json: bool) -> Result<bool, UsageError> {
    let (_dir, config) = load()?;
    let provider = config.provider(id).ok_or_else(|| {
        UsageError(format!(
            "unknown provider {id:?}: configure it in {} or use a preset",
            config.path.display()
        ))
    })?;
    if !provider.enabled {
        // Neither called nor its key read.
        let e = provider.disabled_error();
        if json {
            print_json(&json!({ "provider": id, "ok": false,
                "error": { "kind": e.kind.as_str(), "message": e.message } }));
        } else {
            error_line(&e.message);
        }
        return Ok(false);
    }
    let found = KeyStore::new().get(id);
    let (key, source) = match found {
        Ok(Some((k, s))) => (Some(k), Some(s)),
        Ok(None) if provider.local => (None, None),
        Ok(None) => {
            let message = format!("no key for {id}: {}", key_hint(id));
            if json {
                print_json(&json!({ "provider": id, "ok": false,
                    "error": { "kind": "auth", "message": message } }));
            } else {
                error_line(&message);
            }
            return Ok(false);
        }
        Err(e) => return Err(UsageError(e.to_string())),
    };
    let result = list_models(&Client::new(), &provider, key.as_ref()).await;
    let last4 = key.as_ref().map(Secret::last4);
    let from = match (source, &last4) {
        (Some(s), Some(l)) => format!(
            "••••{l} from the {}",
            match s {
                KeySource::Keychain => "OS keychain".to_owned(),
                KeySource::Environment => switchboard_engine::env_var_for(id),
            }
        ),
        // A local server tried without a key: say how to give it one.
        _ => format!("no key was sent; {}", key_hint(id)),
    };
    match result {
        Ok(models) => {
            if json {
                print_json(&json!({ "provider": id, "ok": true, "last4": last4,
                    "source": source.map(source_name), "models": models.len() }));
            } else {
                out(&format!(
                    "{id}: the key works ({from}); {} models listed.\n",
                    models.len()
                ));
            }
            Ok(true)
        }
        Err(e) => {
            if json {
                print_json(&json!({ "provider": id, "ok": false, "last4": last4,
                    "source": source.map(source_name),
                    "error": { "kind": e.kind.as_str(), "message": e.message, "status": e.status } }));
            } else {
                let status = e.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
                error_line(&format!("{id}: {}{status}: {} ({from})", e.kind, e.message));
            }
            Ok(false)
        }
    }
}
