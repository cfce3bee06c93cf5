//! The `[local_api]` table of `config.toml`: the port the Local API
//! listens on (for the app's switch, and the default of
//! `switchboard-cli serve --port`) and whether the app starts it when it
//! opens.
//!
//! ```toml
//! [local_api]
//! port = 4141
//! start_with_app = false
//! ```

use std::path::Path;

use switchboard_engine::{Config, ConfigError};

use crate::server::DEFAULT_PORT;

/// What `[local_api]` says (defaults for what it leaves out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalApiSettings {
    /// The port on loopback.
    pub port: u16,
    /// The app starts the Local API when it opens.
    pub start_with_app: bool,
}

impl Default for LocalApiSettings {
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            start_with_app: false,
        }
    }
}

impl LocalApiSettings {
    /// Read `[local_api]`; a wrong value is an error located at its line.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let mut s = Self::default();
        for (key, value) in &config.local_api {
            let err = |message: &str| config.error_at("local_api", Some(key), message);
            match key.as_str() {
                "port" => {
                    s.port = value
                        .as_integer()
                        .and_then(|p| u16::try_from(p).ok())
                        .filter(|p| *p > 0)
                        .ok_or_else(|| err("a port is a whole number from 1 to 65535"))?;
                }
                "start_with_app" => {
                    s.start_with_app = value.as_bool().ok_or_else(|| err("true or false"))?;
                }
                // Unknown keys are the config loader's to warn about; here
                // they change nothing.
                _ => {}
            }
        }
        Ok(s)
    }

    /// Write these settings to `[local_api]` of the config file at `path`
    /// (atomically, keeping the rest of the file as it is).
    pub fn save(&self, path: &Path) -> Result<Config, ConfigError> {
        let (port, start) = (i64::from(self.port), self.start_with_app);
        switchboard_engine::settings::apply(path, move |doc| {
            let table = doc
                .entry("local_api")
                .or_insert(toml_edit::Item::Table(toml_edit::Table::new()))
                .as_table_like_mut()
                .ok_or_else(|| ConfigError {
                    path: path.to_owned(),
                    line: None,
                    field: Some("local_api".into()),
                    message: "is not a table".into(),
                })?;
            table.insert("port", toml_edit::value(port));
            table.insert("start_with_app", toml_edit::value(start));
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_and_written_with_defaults_and_located_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "# mine\n[ui]\ntheme = \"dark\"\n").unwrap();
        let cfg = Config::load(&path).unwrap();
        assert_eq!(
            LocalApiSettings::from_config(&cfg).unwrap(),
            LocalApiSettings::default()
        );
        assert_eq!(LocalApiSettings::default().port, 4141);
        assert!(!LocalApiSettings::default().start_with_app);
        let wanted = LocalApiSettings {
            port: 5151,
            start_with_app: true,
        };
        let cfg = wanted.save(&path).unwrap();
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
        assert_eq!(LocalApiSettings::from_config(&cfg).unwrap(), wanted);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# mine\n"), "{text}");
        std::fs::write(&path, "[local_api]\nport = 70000\n").unwrap();
        let e = LocalApiSettings::from_config(&Config::load(&path).unwrap()).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.to_string().contains("local_api.port"), "{e}");
    }
}
