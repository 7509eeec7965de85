//! One typed configuration, layered: built-in defaults → TOML file (`--config`) →
//! `GOVHUB_*` environment variables → command-line flags. Unknown keys in the file are
//! refused. Secrets never live here (passwords come from files).

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The TOML file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub secure_cookies: Option<bool>,
    pub max_body_bytes: Option<usize>,
    pub max_delivery_bytes: Option<u64>,
    pub session_ttl_minutes: Option<i64>,
    pub token_ttl_minutes: Option<i64>,
    pub app_rate_per_sec: Option<u32>,
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> Result<FileConfig> {
        let Some(path) = path else { return Ok(FileConfig::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {} is invalid", path.display()))
    }
}

/// The settings in force.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database: String,
    pub secure_cookies: bool,
    pub max_body_bytes: usize,
    pub max_delivery_bytes: u64,
    pub session_ttl_minutes: i64,
    pub token_ttl_minutes: i64,
    /// Consumer-API requests per second per app (bursts of twice that).
    pub app_rate_per_sec: u32,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./govhub-data";

/// Flags and environment (clap has already merged those two, flags winning).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub secure_cookies: Option<bool>,
    pub max_body_bytes: Option<usize>,
    pub app_rate_per_sec: Option<u32>,
}

/// Default consumer-API rate per app.
pub const DEFAULT_APP_RATE_PER_SEC: u32 = 200;

impl Settings {
    pub fn resolve(file: FileConfig, over: Overrides) -> Result<Settings> {
        let data_dir = over.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database = over
            .database
            .or(file.database)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("govhub.db").display()));
        let session_ttl_minutes = file.session_ttl_minutes.unwrap_or(8 * 60);
        let token_ttl_minutes = file.token_ttl_minutes.unwrap_or(12 * 60);
        anyhow::ensure!(
            session_ttl_minutes > 0 && token_ttl_minutes > 0,
            "session and token lifetimes must be positive"
        );
        let max_body_bytes = over.max_body_bytes.or(file.max_body_bytes).unwrap_or(10 * 1024 * 1024);
        anyhow::ensure!(max_body_bytes >= 1024, "max_body_bytes must be at least 1024");
        Ok(Settings {
            listen: over.listen.or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            data_dir,
            database,
            secure_cookies: over.secure_cookies.or(file.secure_cookies).unwrap_or(false),
            max_body_bytes,
            max_delivery_bytes: file.max_delivery_bytes.unwrap_or(4 * 1024 * 1024 * 1024),
            session_ttl_minutes,
            token_ttl_minutes,
            app_rate_per_sec: over
                .app_rate_per_sec
                .or(file.app_rate_per_sec)
                .unwrap_or(DEFAULT_APP_RATE_PER_SEC)
                .max(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layering_flags_over_file_over_defaults() {
        let file: FileConfig = toml::from_str("listen = \"0.0.0.0:9000\"\ndata_dir = \"/srv/gh\"\n").unwrap();
        let s =
            Settings::resolve(file, Overrides { listen: Some("127.0.0.1:1".into()), ..Default::default() }).unwrap();
        assert_eq!(s.listen, "127.0.0.1:1");
        assert_eq!(s.data_dir, PathBuf::from("/srv/gh"));
        assert_eq!(s.database, "sqlite:///srv/gh/govhub.db");
        let d = Settings::resolve(FileConfig::default(), Overrides::default()).unwrap();
        assert_eq!(d.listen, DEFAULT_LISTEN);
        assert_eq!(d.database, "sqlite://./govhub-data/govhub.db");
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
    }
}
