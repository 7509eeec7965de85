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
    /// File whose first line is the platform key's passphrase.
    pub key_passphrase_file: Option<PathBuf>,
    /// Sign an audit checkpoint after this many new entries …
    pub checkpoint_every_entries: Option<i64>,
    /// … or when the last one is this old and entries were added since.
    pub checkpoint_every_minutes: Option<i64>,
    /// Let webhooks target loopback, private and other internal addresses (default
    /// false: refused, against SSRF).
    pub webhook_allow_private_targets: Option<bool>,
    /// First webhook retry delay in milliseconds (doubled after each failure).
    pub webhook_backoff_base_ms: Option<i64>,
    /// Longest webhook retry delay in seconds.
    pub webhook_backoff_cap_secs: Option<i64>,
    /// Timeout of one webhook request in seconds.
    pub webhook_timeout_secs: Option<u64>,
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
    /// Where the platform key's passphrase comes from (the passphrase itself is never
    /// part of the settings).
    pub key_passphrase: crate::keys::PassphraseSource,
    pub checkpoint_every_entries: i64,
    pub checkpoint_every_minutes: i64,
    pub webhook_allow_private_targets: bool,
    pub webhook_backoff_base_ms: i64,
    pub webhook_backoff_cap_secs: i64,
    pub webhook_timeout_secs: u64,
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
    /// `--key-passphrase-file` / `GOVHUB_KEY_PASSPHRASE_FILE`.
    pub key_passphrase_file: Option<PathBuf>,
    /// Whether `GOVHUB_KEY_PASSPHRASE` is set.
    pub key_passphrase_env: bool,
}

/// Default consumer-API rate per app.
pub const DEFAULT_APP_RATE_PER_SEC: u32 = 200;

impl Settings {
    pub fn checkpoint_policy(&self) -> govhub_core::audit::CheckpointPolicy {
        govhub_core::audit::CheckpointPolicy {
            every_entries: self.checkpoint_every_entries,
            every: chrono::Duration::minutes(self.checkpoint_every_minutes),
        }
    }

    pub fn webhook_policy(&self) -> govhub_core::webhook::WebhookPolicy {
        govhub_core::webhook::WebhookPolicy {
            allow_private_targets: self.webhook_allow_private_targets,
            backoff_base: chrono::Duration::milliseconds(self.webhook_backoff_base_ms),
            backoff_cap: chrono::Duration::seconds(self.webhook_backoff_cap_secs),
            timeout: std::time::Duration::from_secs(self.webhook_timeout_secs),
            ..Default::default()
        }
    }

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
        use crate::keys::PassphraseSource;
        let key_passphrase = match (over.key_passphrase_file, over.key_passphrase_env, file.key_passphrase_file) {
            (Some(f), _, _) => PassphraseSource::File(f),
            (None, true, _) => PassphraseSource::Env,
            (None, false, Some(f)) => PassphraseSource::File(f),
            (None, false, None) => PassphraseSource::Missing,
        };
        let checkpoint_every_entries = file.checkpoint_every_entries.unwrap_or(10_000);
        let checkpoint_every_minutes = file.checkpoint_every_minutes.unwrap_or(5);
        anyhow::ensure!(
            checkpoint_every_entries > 0 && checkpoint_every_minutes > 0,
            "checkpoint_every_entries and checkpoint_every_minutes must be positive"
        );
        let webhook_backoff_base_ms = file.webhook_backoff_base_ms.unwrap_or(1000);
        let webhook_backoff_cap_secs = file.webhook_backoff_cap_secs.unwrap_or(3600);
        let webhook_timeout_secs = file.webhook_timeout_secs.unwrap_or(10);
        anyhow::ensure!(
            webhook_backoff_base_ms > 0
                && webhook_backoff_cap_secs > 0
                && webhook_backoff_cap_secs * 1000 >= webhook_backoff_base_ms
                && (1..=300).contains(&webhook_timeout_secs),
            "webhook_backoff_base_ms and webhook_backoff_cap_secs must be positive (the cap at least the base), \
             webhook_timeout_secs between 1 and 300"
        );
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
            key_passphrase,
            checkpoint_every_entries,
            checkpoint_every_minutes,
            webhook_allow_private_targets: file.webhook_allow_private_targets.unwrap_or(false),
            webhook_backoff_base_ms,
            webhook_backoff_cap_secs,
            webhook_timeout_secs,
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
    fn key_passphrase_layering_and_checkpoint_policy() {
        use crate::keys::PassphraseSource;
        let file =
            || toml::from_str::<FileConfig>("key_passphrase_file = \"/etc/gh/pass\"\ncheckpoint_every_minutes = 1\n");
        let s = Settings::resolve(file().unwrap(), Overrides::default()).unwrap();
        assert_eq!(s.key_passphrase, PassphraseSource::File(PathBuf::from("/etc/gh/pass")));
        assert_eq!(s.checkpoint_policy().every, chrono::Duration::minutes(1));
        assert_eq!(s.checkpoint_policy().every_entries, 10_000);
        let env = Overrides { key_passphrase_env: true, ..Default::default() };
        assert_eq!(Settings::resolve(file().unwrap(), env).unwrap().key_passphrase, PassphraseSource::Env);
        let flag = Overrides { key_passphrase_env: true, key_passphrase_file: Some("/p".into()), ..Default::default() };
        assert_eq!(
            Settings::resolve(file().unwrap(), flag).unwrap().key_passphrase,
            PassphraseSource::File("/p".into())
        );
        let none = Settings::resolve(FileConfig::default(), Overrides::default()).unwrap();
        assert_eq!(none.key_passphrase, PassphraseSource::Missing);
        assert!(toml::from_str::<FileConfig>("checkpoint_every_entries = 0")
            .ok()
            .map(|f| Settings::resolve(f, Overrides::default()).is_err())
            .unwrap_or(false));
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
    }
}
