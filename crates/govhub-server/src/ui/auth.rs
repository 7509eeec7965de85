//! Sign-in and sign-out.

use super::session::{
    clear_session_cookie, cookie, csrf_failed, csrf_ok, login_csrf_cookie, safe_next, see_other, session_cookie,
    well_formed_token, OptionalWebUser, PageCtx, WebUser, LOGIN_CSRF_COOKIE,
};
use super::{i18n, render_page, respond};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use govhub_core::model::SessionKind;
use govhub_core::{Code, Error};
use minijinja::context;
use serde::Deserialize;

/// How long the sign-in form's CSRF cookie lives (a form left open over lunch works).
const LOGIN_CSRF_TTL: i64 = 12 * 3600;

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub expired: Option<String>,
}

/// The sign-in form. Every field defaults to empty so that a missing one is a CSRF
/// failure or a wrong password, not a framework error.
#[derive(Debug, Default, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

fn form_error(e: FormRejection) -> ApiError {
    if e.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        ApiError(Error::new(
            Code::UnsupportedMediaType,
            "send the form as application/x-www-form-urlencoded",
            "请以 application/x-www-form-urlencoded 格式提交表单",
        ))
    } else if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError(Error::bare(Code::PayloadTooLarge))
    } else {
        ApiError(Error::new(Code::InvalidRequest, e.body_text(), "表单内容不合法"))
    }
}

struct LoginView<'a> {
    csrf: &'a str,
    username: &'a str,
    next: &'a str,
    expired: bool,
    error: Option<&'static str>,
}

fn login_page(st: &AppState, page: &PageCtx, v: LoginView<'_>, status: StatusCode) -> Response {
    let t = i18n::table(page.lang);
    let error = v.error.and_then(|k| t.get(k).copied());
    let next = if v.next == "/" { "" } else { v.next };
    let extra = context! { csrf => v.csrf, username => v.username, next => next, expired => v.expired, error => error };
    let mut r = respond(st, page, None, render_page(st, page, None, "login.html", "login", status, extra));
    r.headers_mut().insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    if let Some(c) = login_csrf_cookie(v.csrf, LOGIN_CSRF_TTL, st.config.secure_cookies) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// `GET /login`: the form. Signed-in users go straight on.
pub async fn login_form(
    State(st): State<AppState>,
    user: OptionalWebUser,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if user.viewer.is_some() {
        return see_other(&next, []);
    }
    let csrf = cookie(&headers, LOGIN_CSRF_COOKIE).filter(|c| well_formed_token(c)).unwrap_or_else(new_csrf);
    let expired = q.expired.as_deref() == Some("1");
    login_page(
        &st,
        &user.page,
        LoginView { csrf: &csrf, username: "", next: &next, expired, error: None },
        StatusCode::OK,
    )
}

fn new_csrf() -> String {
    govhub_crypto::new_token("")
}

/// `POST /login`: check the double-submit CSRF value, sign in, set the session cookie
/// and go to `next`. A wrong password shows the form again (401), username kept.
pub async fn login(
    State(st): State<AppState>,
    page: PageCtx,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(form) = form.map_err(form_error)?;
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if !csrf_ok(&expected, &form.csrf) {
        return Err(csrf_failed());
    }
    let next = safe_next(form.next.as_deref());
    let username = form.username.trim();
    match st.hub.sign_in(username, &form.password, SessionKind::Web, &page.ctx).await {
        Ok(issued) => {
            let secure = st.config.secure_cookies;
            let ttl = st.hub.settings().session_ttl.num_seconds().max(0);
            Ok(see_other(&next, [session_cookie(&issued.token, ttl, secure), login_csrf_cookie("", 0, secure)]))
        }
        Err(e) if matches!(e.code, Code::InvalidCredentials | Code::AccountDisabled) => {
            let (error, status) = if e.code == Code::AccountDisabled {
                ("login_disabled", StatusCode::FORBIDDEN)
            } else {
                ("login_failed", StatusCode::UNAUTHORIZED)
            };
            let shown: String = username.chars().take(64).collect();
            let v = LoginView { csrf: &expected, username: &shown, next: &next, expired: false, error: Some(error) };
            Ok(login_page(&st, &page, v, status))
        }
        Err(e) => Err(ApiError(e)),
    }
}

/// `POST /logout`: end the session and delete the cookie.
pub async fn logout(
    State(st): State<AppState>,
    user: WebUser,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(form) = form.map_err(form_error)?;
    if !csrf_ok(&user.viewer.csrf, &form.csrf) {
        return Err(csrf_failed());
    }
    st.hub.sign_out(&user.viewer.token).await?;
    Ok(see_other("/", [clear_session_cookie(st.config.secure_cookies)]).into_response())
}
