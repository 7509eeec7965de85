//! Extractors: JSON bodies that fail in our error format, the request context, and
//! bearer-token authentication for the API.

use crate::error::{ApiError, RequestId};
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use govhub_core::authz::Principal;
use govhub_core::model::SessionKind;
use govhub_core::service::Ctx;
use govhub_core::{Code, Error};
use serde::de::DeserializeOwned;

/// Like `axum::Json`, but rejections become coded errors: `malformed_json`,
/// `unknown_field`, `invalid_request`, `unsupported_media_type`, `payload_too_large`.
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(AppJson(v)),
            Err(rejection) => Err(ApiError(json_rejection(rejection))),
        }
    }
}

fn json_rejection(r: JsonRejection) -> Error {
    match r {
        JsonRejection::JsonDataError(e) => {
            // serde's message names the field and the problem; strip axum's prefix.
            let text = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_else(|| e.body_text());
            if text.contains("unknown field") {
                Error::new(Code::UnknownField, text.clone(), format!("请求包含未知字段：{text}"))
            } else {
                Error::new(Code::InvalidRequest, text.clone(), format!("请求内容不符合要求：{text}"))
            }
        }
        JsonRejection::JsonSyntaxError(e) => {
            let text = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_else(|| e.body_text());
            Error::new(
                Code::MalformedJson,
                format!("body is not valid JSON: {text}"),
                format!("请求体不是合法的JSON：{text}"),
            )
        }
        JsonRejection::MissingJsonContentType(_) => Error::new(
            Code::UnsupportedMediaType,
            "send the body as JSON with Content-Type: application/json",
            "请以JSON格式发送请求体，并设置Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(e) => {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::bare(Code::PayloadTooLarge)
            } else {
                Error::new(Code::InvalidRequest, e.body_text(), "请求体读取失败")
            }
        }
        other => Error::new(Code::InvalidRequest, other.body_text(), "请求不合法"),
    }
}

/// The per-request context for the services (request id for the audit log).
pub struct RequestCtx(pub Ctx);

impl<S: Send + Sync> FromRequestParts<S> for RequestCtx {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        Ok(RequestCtx(Ctx { request_id }))
    }
}

/// An authenticated API caller (bearer token). Missing or unknown token → 401.
pub struct Auth {
    pub principal: Principal,
    pub ctx: Ctx,
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Bearer { token, ctx } = Bearer::from_request_parts(parts, state).await?;
        let (principal, _) = state.hub.authenticate(&token, SessionKind::Api).await?;
        Ok(Auth { principal, ctx })
    }
}

/// The bearer token of an API call, not yet checked (the consumer API's record lookup
/// checks it itself, against its access cache). Missing or malformed → 401.
pub struct Bearer {
    pub token: String,
    pub ctx: Ctx,
}

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let RequestCtx(ctx) = RequestCtx::from_request_parts(parts, state).await?;
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(|| {
            ApiError(Error::new(
                Code::Unauthenticated,
                "send a bearer token: Authorization: Bearer <token> (get one from POST /api/v1/auth/token)",
                "请携带访问令牌：Authorization: Bearer <令牌>（通过 POST /api/v1/auth/token 获取）",
            ))
        })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError(Error::new(
                    Code::Unauthenticated,
                    "Authorization must be 'Bearer <token>'",
                    "Authorization格式应为“Bearer <令牌>”",
                ))
            })?;
        Ok(Bearer { token: token.to_string(), ctx })
    }
}

/// Like `axum::extract::Query`, but a bad query string is an `invalid_request` error.
pub struct AppQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(AppQuery(v)),
            Err(e) => {
                let text = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_else(|| e.body_text());
                Err(ApiError(Error::new(
                    Code::InvalidRequest,
                    format!("bad query string: {text}"),
                    format!("查询参数不合法：{text}"),
                )))
            }
        }
    }
}
