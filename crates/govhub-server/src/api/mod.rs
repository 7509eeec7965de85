//! The JSON API under `/api/v1`. Every route is registered through
//! `utoipa_axum::OpenApiRouter`, so a route without OpenAPI documentation cannot
//! exist: the document at `/api/v1/openapi.json` is generated from the same table
//! that routes the requests.

mod auth;
pub mod catalog;
mod directory;
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

/// The routes and their document.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
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
        .split_for_parts()
}

/// `/api/v1/...` plus `/api/v1/openapi.json`.
pub fn router() -> Router<AppState> {
    let (router, doc) = routes();
    let doc = std::sync::Arc::new(doc);
    router.route("/api/v1/openapi.json", get(move || async move { Json(doc.as_ref().clone()) }))
}

/// The OpenAPI document (also used by tests and `govhub openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}
