use super::views::{AuditView, OrgView, UserView};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{AppJson, AppQuery, Auth};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use govhub_core::input::{NewOrg, NewUser, OrgInput, UserInput};
use govhub_core::model::AuditQuery;
use govhub_core::names::OrgCode;
use serde::Deserialize;
use utoipa::IntoParams;

/// Create an organisation (platform admin).
#[utoipa::path(post, path = "/api/v1/orgs", tag = "directory", security(("bearer" = [])), request_body = OrgInput,
    responses((status = 201, body = OrgView), (status = 409, description = "org_exists", body = ErrorBody),
        (status = 422, description = "invalid_org / unknown_org (parent)", body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_org(
    State(st): State<AppState>,
    auth: Auth,
    AppJson(input): AppJson<OrgInput>,
) -> Result<(StatusCode, Json<OrgView>), ApiError> {
    let org = st.hub.create_org(&auth.principal, NewOrg::try_from(input)?, &auth.ctx).await?;
    Ok((StatusCode::CREATED, Json(OrgView::from(&org))))
}

/// List all organisations.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "directory", security(("bearer" = [])),
    responses((status = 200, body = [OrgView]), (status = 401, body = ErrorBody)))]
pub async fn list_orgs(State(st): State<AppState>, auth: Auth) -> Result<Json<Vec<OrgView>>, ApiError> {
    let orgs = st.hub.list_orgs(&auth.principal, &auth.ctx).await?;
    Ok(Json(orgs.iter().map(OrgView::from).collect()))
}

/// One organisation.
#[utoipa::path(get, path = "/api/v1/orgs/{code}", tag = "directory", security(("bearer" = [])),
    params(("code" = String, Path, description = "organisation code")),
    responses((status = 200, body = OrgView), (status = 404, body = ErrorBody)))]
pub async fn get_org(
    State(st): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
) -> Result<Json<OrgView>, ApiError> {
    let org = st.hub.get_org(&auth.principal, &code, &auth.ctx).await?;
    Ok(Json(OrgView::from(&org)))
}

/// Create a user (platform admin).
#[utoipa::path(post, path = "/api/v1/users", tag = "directory", security(("bearer" = [])), request_body = UserInput,
    responses((status = 201, body = UserView), (status = 409, description = "user_exists", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_user(
    State(st): State<AppState>,
    auth: Auth,
    AppJson(input): AppJson<UserInput>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let user = st.hub.create_user(&auth.principal, NewUser::try_from(input)?, &auth.ctx).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserFilter {
    /// Only users of this organisation.
    pub org: Option<String>,
}

/// List users (platform admin).
#[utoipa::path(get, path = "/api/v1/users", tag = "directory", security(("bearer" = [])), params(UserFilter),
    responses((status = 200, body = [UserView]), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(st): State<AppState>,
    auth: Auth,
    AppQuery(f): AppQuery<UserFilter>,
) -> Result<Json<Vec<UserView>>, ApiError> {
    let org = f.org.as_deref().map(OrgCode::parse).transpose()?;
    let users = st.hub.list_users(&auth.principal, org.as_ref(), &auth.ctx).await?;
    Ok(Json(users.iter().map(UserView::from).collect()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    pub actor: Option<String>,
    /// e.g. `dataset.` or `auth.sign_in`
    pub action: Option<String>,
    pub target: Option<String>,
    pub after_seq: Option<i64>,
    pub limit: Option<u32>,
}

/// The audit log, newest first (platform admin).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("bearer" = [])), params(AuditFilter),
    responses((status = 200, body = [AuditView]), (status = 403, body = ErrorBody)))]
pub async fn list_audit(
    State(st): State<AppState>,
    auth: Auth,
    AppQuery(f): AppQuery<AuditFilter>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let q = AuditQuery {
        actor: f.actor,
        action_prefix: f.action,
        target: f.target,
        after_seq: f.after_seq,
        limit: f.limit.unwrap_or(100).clamp(1, 1000),
    };
    let events = st.hub.list_audit(&auth.principal, &q, &auth.ctx).await?;
    Ok(Json(events.iter().map(AuditView::from).collect()))
}
