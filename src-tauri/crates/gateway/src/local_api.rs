//! The desktop app's side of the Local API: [`LocalApi`] owns the running
//! [`Gateway`] (if any), turns it on and off, saves `[local_api]`, makes
//! and revokes client tokens, and reports what Settings shows. The Tauri
//! shell only forwards its commands here, so all of it is tested without a
//! window.

use std::sync::Mutex;
use std::time::Duration;

use switchboard_engine::store::ClientToken;
use switchboard_engine::{Config, DataDir, KeyStore, Store};
use switchboard_protocol::{
    ClientTokenInfo, CreatedClientToken, LocalApiInput, LocalApiStatus, NewClientToken,
};

use crate::server::{Gateway, GatewayOptions};
use crate::settings::LocalApiSettings;
use crate::tokens::{self, TokenError};

/// Why a Settings action on the Local API failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalApiError {
    /// A value the user gave is not acceptable (a port of 0, a bad token
    /// name, an unknown token).
    #[error("{0}")]
    Invalid(String),
    /// config.toml could not be read or written (file, line and field).
    #[error("{0}")]
    Config(String),
    /// The server could not start (port in use, ...).
    #[error("{0}")]
    Start(String),
    /// The database failed.
    #[error("{0}")]
    Store(String),
}

impl From<TokenError> for LocalApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid(m) | TokenError::Budget(m) => LocalApiError::Invalid(m),
            TokenError::Store(m) => LocalApiError::Store(m),
        }
    }
}

/// The app's Local API: off, or one running [`Gateway`].
#[derive(Debug)]
pub struct LocalApi {
    dir: DataDir,
    keys: KeyStore,
    store: Result<Store, String>,
    running: tokio::sync::Mutex<Option<Gateway>>,
    /// Why the last start failed.
    problem: Mutex<Option<String>>,
}

fn info(t: &ClientToken) -> ClientTokenInfo {
    ClientTokenInfo {
        name: t.name.clone(),
        tag: t.tag.clone(),
        budget: t.budget.clone(),
        record_history: t.record_history,
        last4: t.last4.clone(),
        created_at_ms: t.created_at_ms,
        last_used_at_ms: t.last_used_at_ms,
    }
}

impl LocalApi {
    /// Off, over `dir` (the app's data directory) and `keys`.
    pub fn new(dir: DataDir, keys: KeyStore) -> Self {
        let store = Store::open(&dir).map_err(|e| e.to_string());
        Self {
            dir,
            keys,
            store,
            running: tokio::sync::Mutex::new(None),
            problem: Mutex::new(None),
        }
    }

    fn store(&self) -> Result<Store, LocalApiError> {
        self.store.clone().map_err(LocalApiError::Store)
    }

    /// config.toml, read and parsed on a blocking thread (file IO).
    async fn config(&self) -> Result<Config, LocalApiError> {
        let path = self.dir.config_file();
        tokio::task::spawn_blocking(move || Config::load(&path))
            .await
            .map_err(|e| LocalApiError::Config(e.to_string()))?
            .map_err(|e| LocalApiError::Config(e.to_string()))
    }

    async fn settings(&self) -> Result<LocalApiSettings, LocalApiError> {
        let config = self.config().await?;
        LocalApiSettings::from_config(&config).map_err(|e| LocalApiError::Config(e.to_string()))
    }

    fn set_problem(&self, problem: Option<String>) {
        if let Ok(mut p) = self.problem.lock() {
            *p = problem;
        }
    }

    async fn start(&self, slot: &mut Option<Gateway>, port: u16) -> Result<(), LocalApiError> {
        let options = GatewayOptions {
            port,
            ..GatewayOptions::default()
        };
        match Gateway::start(self.dir.clone(), self.keys.clone(), options).await {
            Ok(g) => {
                *slot = Some(g);
                self.set_problem(None);
                Ok(())
            }
            Err(e) => {
                self.set_problem(Some(e.to_string()));
                Err(LocalApiError::Start(e.to_string()))
            }
        }
    }

    /// Start it when `[local_api] start_with_app` says so (at app start).
    pub async fn start_with_app(&self) {
        let settings = match self.settings().await {
            Ok(s) => s,
            Err(e) => {
                self.set_problem(Some(e.to_string()));
                return;
            }
        };
        if settings.start_with_app {
            let mut slot = self.running.lock().await;
            if slot.is_none() {
                let _ = self.start(&mut slot, settings.port).await;
            }
        }
    }

    /// What Settings shows.
    pub async fn status(&self) -> LocalApiStatus {
        let settings = self.settings().await;
        let tokens = match self.store() {
            Ok(store) => tokio::task::spawn_blocking(move || tokens::list(&store, false))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let slot = self.running.lock().await;
        let stats = slot.as_ref().map(Gateway::stats).unwrap_or_default();
        let problem = self
            .problem
            .lock()
            .ok()
            .and_then(|p| p.clone())
            .or(stats.config_problem.clone())
            .or_else(|| settings.as_ref().err().map(ToString::to_string))
            .or_else(|| self.store.as_ref().err().cloned());
        let settings = settings.unwrap_or_default();
        LocalApiStatus {
            running: slot.is_some(),
            base_url: slot.as_ref().map(Gateway::base_url),
            port: settings.port,
            start_with_app: settings.start_with_app,
            requests: stats.requests,
            errors: stats.errors,
            in_flight: stats.in_flight,
            spend_today_usd: stats.spend_today.usd(),
            tokens: tokens.iter().map(info).collect(),
            problem,
        }
    }

    /// Save the settings and start, restart (on another port) or stop.
    pub async fn apply(&self, input: &LocalApiInput) -> Result<LocalApiStatus, LocalApiError> {
        if input.port == 0 {
            return Err(LocalApiError::Invalid(
                "the port is a number from 1 to 65535".into(),
            ));
        }
        let wanted = LocalApiSettings {
            port: input.port,
            start_with_app: input.start_with_app,
        };
        if self.settings().await.ok() != Some(wanted) {
            let path = self.dir.config_file();
            tokio::task::spawn_blocking(move || wanted.save(&path))
                .await
                .map_err(|e| LocalApiError::Config(e.to_string()))?
                .map_err(|e| LocalApiError::Config(e.to_string()))?;
        }
        {
            let mut slot = self.running.lock().await;
            let on_port = slot.as_ref().map(|g| g.addr().port());
            if !input.enabled || on_port.is_some_and(|p| p != input.port) {
                if let Some(g) = slot.take() {
                    g.stop(Duration::from_secs(5)).await;
                }
                self.set_problem(None);
            }
            if input.enabled && slot.is_none() {
                self.start(&mut slot, input.port).await?;
            }
        }
        Ok(self.status().await)
    }

    /// Make a client token; the reply is the only time it is shown.
    pub async fn create_token(
        &self,
        new: &NewClientToken,
    ) -> Result<CreatedClientToken, LocalApiError> {
        let store = self.store()?;
        let config = self.config().await?;
        let new = switchboard_engine::store::NewToken {
            name: new.name.trim().to_owned(),
            tag: new.tag.clone().filter(|t| !t.trim().is_empty()),
            budget: new.budget.clone().filter(|b| !b.trim().is_empty()),
            record_history: new.record_history,
        };
        let (made, token) =
            tokio::task::spawn_blocking(move || tokens::create(&store, &config, &new))
                .await
                .map_err(|e| LocalApiError::Store(e.to_string()))??;
        if let Some(g) = self.running.lock().await.as_ref() {
            g.reload_tokens().await;
        }
        Ok(CreatedClientToken {
            token: token.expose().to_owned(),
            info: info(&made),
        })
    }

    /// Revoke the client token `name`: refused from now on.
    pub async fn revoke_token(&self, name: &str) -> Result<(), LocalApiError> {
        let store = self.store()?;
        let owned = name.to_owned();
        let revoked = tokio::task::spawn_blocking(move || tokens::revoke(&store, &owned))
            .await
            .map_err(|e| LocalApiError::Store(e.to_string()))??;
        if !revoked {
            return Err(LocalApiError::Invalid(format!(
                "no live token named \"{name}\""
            )));
        }
        if let Some(g) = self.running.lock().await.as_ref() {
            g.reload_tokens().await;
        }
        Ok(())
    }

    /// Stop it (at app exit): running requests stop and settle.
    pub async fn shutdown(&self, wait: Duration) {
        if let Some(g) = self.running.lock().await.take() {
            g.stop(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn settings_start_and_stop_it_and_tokens_are_shown_once() {
        let home = tempfile::tempdir().unwrap();
        let dir = DataDir::at(home.path()).unwrap();
        let api = LocalApi::new(dir.clone(), KeyStore::with_service("switchboard-unit"));
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let status = api.status().await;
        assert!(!status.running && status.base_url.is_none());
        assert_eq!(status.port, crate::DEFAULT_PORT);
        let on = api
            .apply(&LocalApiInput {
                enabled: true,
                port,
                start_with_app: true,
            })
            .await
            .unwrap();
        assert_eq!(on.base_url, Some(format!("http://127.0.0.1:{port}/v1")));
        assert!(on.start_with_app);
        let text = std::fs::read_to_string(dir.config_file()).unwrap();
        assert!(text.contains(&format!("port = {port}")), "{text}");

        let http = reqwest::Client::new();
        let models = format!("http://127.0.0.1:{port}/v1/models");
        let refused = http.get(&models).send().await.unwrap();
        assert_eq!(refused.status(), 401);
        let made = api
            .create_token(&NewClientToken {
                name: "editor".into(),
                ..NewClientToken::default()
            })
            .await
            .unwrap();
        assert_eq!(made.info.last4, &made.token[made.token.len() - 4..]);
        assert!(!format!("{made:?}").contains(&made.token), "Debug hides it");
        let listed = http
            .get(&models)
            .bearer_auth(&made.token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            listed.status(),
            200,
            "a token made in Settings works at once"
        );
        let status = api.status().await;
        assert_eq!(status.tokens.len(), 1);
        assert_eq!(
            (&status.tokens[0].name, &status.tokens[0].last4),
            (&made.info.name, &made.info.last4)
        );
        assert_eq!((status.requests, status.errors), (2, 1));
        // Its use is noted (written a moment later, in the ledger's batch).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while api.status().await.tokens[0].last_used_at_ms.is_none() {
            assert!(std::time::Instant::now() < deadline, "last use never noted");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }

        api.revoke_token("editor").await.unwrap();
        let gone = http
            .get(&models)
            .bearer_auth(&made.token)
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), 401, "revoked at once");
        assert!(matches!(
            api.revoke_token("editor").await,
            Err(LocalApiError::Invalid(_))
        ));

        // Off: nothing listens.
        let off = api
            .apply(&LocalApiInput {
                enabled: false,
                port,
                start_with_app: false,
            })
            .await
            .unwrap();
        assert!(!off.running);
        assert!(http.get(&models).send().await.is_err());
        // A second one on the same data directory starts with the app only
        // when asked to.
        let again = LocalApi::new(dir, KeyStore::with_service("switchboard-unit"));
        again.start_with_app().await;
        assert!(!again.status().await.running);
    }
}
