//! The JSON API under `/api/v1`. Every route is registered through
//! `utoipa_axum::OpenApiRouter`, so a route without OpenAPI documentation cannot
//! exist: the document at `/api/v1/openapi.json` is generated from the same table
//! that routes the requests.

mod audit;
mod auth;
pub mod catalog;
pub mod deliveries;
mod directory;
pub mod licences;
pub mod sharing;
pub mod views;

use crate::error::ErrorBody;
use crate::state::AppState;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "govhub API",
        description = "政务数据共享交换平台 API — the data sharing and exchange hub of a city's digital government. Errors are `{code, message, message_zh, request_id, field?}`; codes are listed in docs/errors.md.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody)),
    tags(
        (name = "auth", description = "Sign-in and tokens"),
        (name = "directory", description = "Organisations and users"),
        (name = "catalog", description = "政务信息资源目录: datasets and their table schemas"),
        (name = "audit", description = "Audit log"),
        (name = "delivery", description = "数据交付: deliveries, reports, quarantine"),
        (name = "records", description = "A provider's own records and their history"),
        (name = "compliance", description = "共享责任清单 and 应归尽归"),
        (name = "sharing", description = "共享: apps, access requests, decisions, grants, the working-day calendar"),
        (name = "licences", description = "电子证照: the PKI root and seal certificates, licence types, licences, status, VC 2.0 and status lists"),
        (name = "share", description = "The consumer API: what a granted app reads (records, export, change feed)"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The routes and their document: the routes whose bodies are bounded by
/// `max_body_bytes`, the delivery routes (streamed, bounded by `max_delivery_bytes`),
/// and the OpenAPI document covering both.
pub fn routes() -> (Router<AppState>, Router<AppState>, utoipa::openapi::OpenApi) {
    let (bounded, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::create_token, auth::revoke_token))
        .routes(routes!(auth::me))
        .routes(routes!(directory::create_org, directory::list_orgs))
        .routes(routes!(directory::get_org))
        .routes(routes!(directory::create_user, directory::list_users))
        .routes(routes!(directory::list_audit))
        .routes(routes!(catalog::create_dataset, catalog::list_datasets))
        .routes(routes!(catalog::get_dataset, catalog::patch_dataset))
        .routes(routes!(catalog::put_schema))
        .routes(routes!(catalog::schema_versions))
        .routes(routes!(catalog::columns))
        .routes(routes!(deliveries::get_delivery))
        .routes(routes!(deliveries::quarantine))
        .routes(routes!(deliveries::list_records))
        .routes(routes!(deliveries::get_record))
        .routes(routes!(deliveries::record_history))
        .routes(routes!(deliveries::put_responsibility, deliveries::delete_responsibility))
        .routes(routes!(deliveries::list_responsibilities))
        .routes(routes!(deliveries::compliance))
        .routes(routes!(sharing::create_app, sharing::list_apps))
        .routes(routes!(sharing::get_app))
        .routes(routes!(sharing::create_app_token, sharing::list_app_tokens))
        .routes(routes!(sharing::revoke_app_token))
        .routes(routes!(sharing::create_webhook, sharing::list_webhooks))
        .routes(routes!(sharing::delete_webhook))
        .routes(routes!(sharing::webhook_attempts))
        .routes(routes!(sharing::create_access_request, sharing::list_access_requests))
        .routes(routes!(sharing::get_access_request))
        .routes(routes!(sharing::decide_access_request))
        .routes(routes!(sharing::list_grants))
        .routes(routes!(sharing::get_grant, sharing::revoke_grant))
        .routes(routes!(sharing::get_calendar))
        .routes(routes!(sharing::put_calendar_day, sharing::delete_calendar_day))
        .routes(routes!(sharing::share_record))
        .routes(routes!(sharing::share_records))
        .routes(routes!(sharing::share_changes))
        .routes(routes!(sharing::usage_report))
        .merge(audit::routes())
        .merge(licences::routes())
        .split_for_parts();
    let (streamed, streamed_doc) = OpenApiRouter::new()
        .routes(routes!(deliveries::create_delivery, deliveries::list_deliveries))
        .routes(routes!(sharing::share_export))
        .split_for_parts();
    doc.merge(streamed_doc);
    (bounded, streamed, doc)
}

/// `/api/v1/...` plus `/api/v1/openapi.json`: (bounded routes, streamed routes).
pub fn router() -> (Router<AppState>, Router<AppState>) {
    let (bounded, streamed, doc) = routes();
    let doc = std::sync::Arc::new(doc);
    (bounded.route("/api/v1/openapi.json", get(move || async move { Json(doc.as_ref().clone()) })), streamed)
}

/// The OpenAPI document (also used by tests and `govhub openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().2
}
