//! # govhub-server
//!
//! The HTTP face of govhub: the JSON API under `/api/v1` (documented by the OpenAPI
//! document it serves), `/healthz`, and the server-rendered web UI at `/`. Handlers
//! are thin: extract, call one [`govhub_core::service::Hub`] method, map the error.

pub mod api;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod state;
pub mod ui;
pub mod webhooks;

use crate::api::views::Health;
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use std::future::Future;
use tokio::net::TcpListener;

/// `GET /healthz`: 200 when the store answers, 503 otherwise.
async fn healthz(State(st): State<AppState>) -> (StatusCode, Json<Health>) {
    let backend = st.hub.store().backend().as_str().to_string();
    match st.hub.store().ping().await {
        Ok(()) => (StatusCode::OK, Json(Health { status: "ok".into(), backend })),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "unavailable".into(), backend }))
        }
    }
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    let (api_bounded, api_streamed) = api::router();
    let bounded = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .merge(api_bounded)
        .merge(ui::router())
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(max_body));
    // Deliveries stream their bodies; the reader enforces `max_delivery_bytes`.
    Router::new()
        .merge(bounded)
        .merge(api_streamed)
        .merge(ui::streamed_router())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(axum::middleware::from_fn(error::render_errors))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Serve until `shutdown` resolves, then finish in-flight requests. The webhook
/// dispatcher ([`webhooks::spawn_dispatcher`]) runs alongside for as long.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let dispatcher = webhooks::spawn_dispatcher(state.hub.clone());
    let served = axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await;
    if let Some(d) = dispatcher {
        d.abort();
    }
    served
}
