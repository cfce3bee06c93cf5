//! The data directory is resolved in one place so the app, the CLI and the
//! tests agree on it: the CLI and the app share history, health and spend.

use std::path::{Path, PathBuf};

/// Environment variable that overrides the data directory.
pub const HOME_ENV: &str = "SWITCHBOARD_HOME";

/// The directory holding Switchboard's database and `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

/// Why the data directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// Neither `SWITCHBOARD_HOME` nor an OS data directory is known.
    #[error("no data directory: set {HOME_ENV} to a writable directory")]
    Unknown,
    /// The directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    Create {
        /// The directory that could not be created.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl DataDir {
    /// `SWITCHBOARD_HOME` when set and non-empty, else `<OS data dir>/switchboard`
    /// (`~/.local/share/switchboard` on Linux), created if missing.
    pub fn resolve() -> Result<Self, DataDirError> {
        let root = match std::env::var_os(HOME_ENV) {
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => dirs::data_dir()
                .ok_or(DataDirError::Unknown)?
                .join("switchboard"),
        };
        Self::at(root)
    }

    /// Use `root` as the data directory, creating it if missing.
    pub fn at(root: impl Into<PathBuf>) -> Result<Self, DataDirError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|source| DataDirError::Create {
            path: root.clone(),
            source,
        })?;
        Ok(Self { root })
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The user's configuration file.
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// The SQLite database.
    pub fn database_file(&self) -> PathBuf {
        self.root.join("switchboard.sqlite3")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_creates_missing_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::at(tmp.path().join("a/b")).unwrap();
        assert!(dir.path().is_dir());
        assert_eq!(dir.config_file(), tmp.path().join("a/b/config.toml"));
    }

    #[test]
    fn at_reports_the_path_it_could_not_create() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err = DataDir::at(file.join("sub")).unwrap_err();
        assert!(err.to_string().contains("sub"), "{err}");
    }
}
