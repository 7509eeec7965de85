use super::views::{TokenRequest, TokenResponse, UserView};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{AppJson, Auth, RequestCtx};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header::AUTHORIZATION, HeaderMap, StatusCode};
use axum::Json;
use govhub_core::model::SessionKind;

/// Exchange a username and password for a bearer token.
#[utoipa::path(post, path = "/api/v1/auth/token", tag = "auth", request_body = TokenRequest,
    responses((status = 201, body = TokenResponse), (status = 401, description = "invalid_credentials", body = ErrorBody)))]
pub async fn create_token(
    State(st): State<AppState>,
    RequestCtx(ctx): RequestCtx,
    AppJson(req): AppJson<TokenRequest>,
) -> Result<(StatusCode, Json<TokenResponse>), ApiError> {
    let issued = st.hub.sign_in(&req.username, &req.password, SessionKind::Api, &ctx).await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenResponse {
            token: issued.token,
            token_type: "Bearer".into(),
            expires_at: issued.session.expires_at,
            user: UserView::from(&issued.user),
        }),
    ))
}

/// Revoke the token used to call this endpoint.
#[utoipa::path(delete, path = "/api/v1/auth/token", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn revoke_token(State(st): State<AppState>, _auth: Auth, headers: HeaderMap) -> Result<StatusCode, ApiError> {
    if let Some(t) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|h| h.strip_prefix("Bearer ")) {
        st.hub.sign_out(t.trim()).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Who am I?
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody)))]
pub async fn me(auth: Auth) -> Json<serde_json::Value> {
    let p = auth.principal;
    Json(serde_json::json!({
        "username": p.username,
        "display_name": p.display_name,
        "role": p.role.as_str(),
        "org": p.org.as_ref().map(ToString::to_string),
    }))
}
