//! Shared state handed to every handler.

use govhub_core::service::Hub;
use std::sync::Arc;

/// Server settings that are not the domain's business.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Mark cookies `Secure` (set when served over HTTPS, directly or behind a proxy).
    pub secure_cookies: bool,
    /// Largest accepted request body, in bytes (deliveries excepted).
    pub max_body_bytes: usize,
    /// Largest accepted delivery file, in bytes (streamed, so this may be large).
    pub max_delivery_bytes: u64,
    /// Where uploads are staged before they are read (anonymous files: nothing is
    /// left behind). Needs room for the largest concurrent uploads.
    pub upload_dir: std::path::PathBuf,
    /// A secret a Prometheus scraper may send as its bearer token for `/metrics`.
    pub metrics_token: Option<String>,
    /// The public base URL (e.g. `https://govhub.example.cn`) used in credentials'
    /// links; default `http://<Host header>`.
    pub public_url: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            secure_cookies: false,
            max_body_bytes: 10 * 1024 * 1024,
            max_delivery_bytes: 4 * 1024 * 1024 * 1024,
            upload_dir: std::env::temp_dir(),
            metrics_token: None,
            public_url: None,
        }
    }
}

/// What every handler shares. Cloned for each request (axum's `State`), so it is one
/// reference count: the parts live in [`AppParts`].
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

pub struct AppParts {
    pub hub: Hub,
    pub config: ServerConfig,
    pub ui: Arc<crate::ui::Templates>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl std::ops::Deref for AppState {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

impl AppState {
    pub fn new(hub: Hub, config: ServerConfig) -> Result<AppState, crate::ui::TemplateError> {
        Ok(AppState::from_parts(hub, config, crate::ui::Templates::load()?))
    }

    pub fn from_parts(hub: Hub, config: ServerConfig, ui: crate::ui::Templates) -> AppState {
        AppState(Arc::new(AppParts {
            hub,
            config,
            ui: Arc::new(ui),
            metrics: Arc::new(crate::metrics::Metrics::new()),
        }))
    }

    /// The same hub, templates and metrics under other settings.
    pub fn with_config(&self, config: ServerConfig) -> AppState {
        AppState(Arc::new(AppParts {
            hub: self.hub.clone(),
            config,
            ui: Arc::clone(&self.ui),
            metrics: Arc::clone(&self.metrics),
        }))
    }
}
