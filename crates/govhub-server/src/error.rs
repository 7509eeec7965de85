//! Errors on the wire: one mapping from domain codes to HTTP statuses, one JSON shape
//! `{code, message, message_zh, request_id, field?}`.
//!
//! Handlers return [`ApiError`]; its `IntoResponse` leaves an [`ErrorPayload`] in the
//! response extensions and the [`render_errors`] middleware (which knows the request
//! id) writes the body. The same middleware turns the framework's own bare errors
//! (unknown route, wrong method, body too large) into coded ones, so every error a
//! client sees has the same shape.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use govhub_core::{Code, Error};
use serde::Serialize;
use std::sync::Arc;

/// The HTTP status for each code. The only place statuses are chosen.
pub fn status_for(code: Code) -> StatusCode {
    match code {
        Code::Unauthenticated | Code::InvalidCredentials | Code::SessionExpired => StatusCode::UNAUTHORIZED,
        Code::AccountDisabled
        | Code::Forbidden
        | Code::CsrfFailed
        | Code::NotShareable
        | Code::NoGrant
        | Code::GrantTooNarrow => StatusCode::FORBIDDEN,
        Code::MalformedJson | Code::UnknownField | Code::InvalidRequest | Code::InvalidWebhookUrl => {
            StatusCode::BAD_REQUEST
        }
        Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Code::NotFound | Code::UnknownDataset | Code::UnknownLicence => StatusCode::NOT_FOUND,
        Code::OrgExists | Code::UserExists | Code::DatasetExists | Code::ConcurrentChange | Code::AlreadyDecided => {
            StatusCode::CONFLICT
        }
        Code::UnknownOrg
        | Code::InvalidOrg
        | Code::InvalidUser
        | Code::InvalidDataset
        | Code::InvalidSchema
        | Code::WebhookTargetRefused => StatusCode::UNPROCESSABLE_ENTITY,
        Code::UnknownLicenceType
        | Code::InvalidLicenceType
        | Code::InvalidLicence
        | Code::InvalidLicenceId
        | Code::LicenceIdCheck
        | Code::IssuerWithoutUscc => StatusCode::UNPROCESSABLE_ENTITY,
        Code::LicenceTypeExists | Code::LicenceRevoked | Code::SealKeyRevoked | Code::LicenceDataset => {
            StatusCode::CONFLICT
        }
        Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable | Code::PlatformKeyMissing | Code::SealAuthorityMissing => StatusCode::SERVICE_UNAVAILABLE,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The JSON error body.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable error code (see docs/errors.md).
    pub code: String,
    /// English message.
    pub message: String,
    /// Chinese message.
    pub message_zh: String,
    /// Quote this when asking the operators.
    pub request_id: String,
    /// The field or schema path at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Carried in response extensions until [`render_errors`] writes it.
#[derive(Clone)]
pub struct ErrorPayload(pub Arc<Error>);

/// A domain error on its way out.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl ApiError {
    pub fn code(code: Code) -> Self {
        ApiError(Error::bare(code))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = status_for(self.0.code).into_response();
        resp.extensions_mut().insert(ErrorPayload(Arc::new(self.0)));
        resp
    }
}

/// The request id, generated per request and echoed as `x-request-id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Outermost middleware: assign a request id, render coded errors, log failures.
pub async fn render_errors(mut req: Request, next: Next) -> Response {
    let request_id = govhub_crypto::request_id();
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let lang = crate::ui::i18n::Lang::from_headers(req.headers());
    let wants_html =
        req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
            && !req.uri().path().starts_with("/api/");
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut resp = next.run(req).await;
    let status = resp.status();
    let payload = resp.extensions_mut().remove::<ErrorPayload>();
    // A framework error keeps its own status (405 stays 405); ours get the table's.
    let mut keep_status = false;
    let error = match payload {
        Some(ErrorPayload(e)) => Some(e),
        None if status.is_client_error() || status.is_server_error() => {
            let has_body_type = resp.headers().contains_key(header::CONTENT_TYPE);
            if has_body_type && status != StatusCode::PAYLOAD_TOO_LARGE {
                None
            } else {
                keep_status = true;
                let code = match status {
                    StatusCode::NOT_FOUND => Code::NotFound,
                    StatusCode::PAYLOAD_TOO_LARGE => Code::PayloadTooLarge,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::UnsupportedMediaType,
                    StatusCode::METHOD_NOT_ALLOWED => Code::InvalidRequest,
                    s if s.is_server_error() => Code::Internal,
                    _ => Code::InvalidRequest,
                };
                let e = match status {
                    StatusCode::METHOD_NOT_ALLOWED => Error::new(
                        code,
                        format!("method {method} is not allowed on {path}"),
                        format!("{path}不支持{method}请求"),
                    ),
                    StatusCode::NOT_FOUND => Error::new(
                        code,
                        format!("no such endpoint or page: {path}"),
                        format!("页面或接口不存在：{path}"),
                    ),
                    _ => Error::bare(code),
                };
                Some(Arc::new(e))
            }
        }
        None => None,
    };
    let Some(error) = error else {
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        return resp;
    };
    let status = if keep_status { status } else { status_for(error.code) };
    if error.code == Code::Internal {
        tracing::error!(request_id = %request_id, %method, %path, error = ?error.source, "internal error");
    } else {
        tracing::info!(request_id = %request_id, %method, %path, code = error.code.as_str(), "request refused");
    }
    let body = ErrorBody {
        code: error.code.as_str().to_string(),
        message: error.message.clone(),
        message_zh: error.message_zh.clone(),
        request_id: request_id.clone(),
        field: error.field.clone(),
    };
    let mut out = if wants_html {
        crate::ui::error_page(status, &body, lang)
    } else {
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut r = Response::new(Body::from(json));
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    };
    *out.status_mut() = status;
    if status == StatusCode::UNAUTHORIZED && !wants_html {
        out.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"govhub\""));
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        out.headers_mut().insert("x-request-id", v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_fitting_status() {
        for c in Code::ALL {
            let s = status_for(*c);
            assert!(s.is_client_error() || s.is_server_error(), "{c}");
        }
        assert_eq!(status_for(Code::Internal), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(status_for(Code::DatasetExists), StatusCode::CONFLICT);
    }
}

#[cfg(test)]
mod doc_tests {
    use super::*;

    /// docs/errors.md lists every code with its HTTP status.
    #[test]
    fn errors_doc_lists_every_code() {
        let doc = include_str!("../../../docs/errors.md");
        for c in Code::ALL {
            let row = format!("| `{}` | {} |", c.as_str(), status_for(*c).as_u16());
            assert!(doc.contains(&row), "docs/errors.md lacks the row starting {row}");
        }
    }
}
