//! The server-rendered web UI (minijinja templates and the stylesheet embedded in the
//! binary). Pages are plain HTML forms: no script is needed, the Content Security
//! Policy forbids inline scripts and styles, and every POST form carries a CSRF token.

mod auth;
mod data;
pub mod i18n;
mod pages;
pub mod session;
mod sharing;
mod verify;
pub mod view;

#[cfg(test)]
mod tests;

use crate::error::{status_for, ApiError, ErrorBody};
use crate::state::AppState;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use i18n::Lang;
use minijinja::{context, Environment, UndefinedBehavior, Value};
use session::{PageCtx, Viewer};
use std::sync::OnceLock;

pub type TemplateError = minijinja::Error;

/// Every template, embedded at compile time.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("home.html", include_str!("../../templates/home.html")),
    ("me.html", include_str!("../../templates/me.html")),
    ("verify.html", include_str!("../../templates/verify.html")),
    ("catalog.html", include_str!("../../templates/catalog.html")),
    ("dataset.html", include_str!("../../templates/dataset.html")),
    ("orgs.html", include_str!("../../templates/orgs.html")),
    ("org.html", include_str!("../../templates/org.html")),
    ("audit.html", include_str!("../../templates/audit.html")),
    ("delivery.html", include_str!("../../templates/delivery.html")),
    ("records.html", include_str!("../../templates/records.html")),
    ("record.html", include_str!("../../templates/record.html")),
    ("compliance.html", include_str!("../../templates/compliance.html")),
    ("sharing_inbox.html", include_str!("../../templates/sharing_inbox.html")),
    ("sharing_request.html", include_str!("../../templates/sharing_request.html")),
    ("sharing_apps.html", include_str!("../../templates/sharing_apps.html")),
    ("sharing_usage.html", include_str!("../../templates/sharing_usage.html")),
    ("sharing_app.html", include_str!("../../templates/sharing_app.html")),
];

/// The stylesheet, served at `/static/app.css?v=<digest>` with a long cache lifetime.
pub const APP_CSS: &str = include_str!("../../static/app.css");
/// The favicon (an SVG, no binary assets in the repository).
pub const FAVICON_SVG: &str = include_str!("../../static/favicon.svg");

/// The stylesheet URL: its content digest busts caches on every change.
pub fn css_href() -> &'static str {
    static HREF: OnceLock<String> = OnceLock::new();
    HREF.get_or_init(|| format!("/static/app.css?v={}", &govhub_crypto::sm3_hex(APP_CSS.as_bytes())[..12]))
}

/// The `Content-Security-Policy` of every HTML page.
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                       frame-ancestors 'none'; form-action 'self'";

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn load() -> Result<Templates, TemplateError> {
        Templates::with_undefined(UndefinedBehavior::Lenient)
    }

    /// Tests render with [`UndefinedBehavior::Strict`] so that a missing variable or
    /// string key fails loudly instead of rendering empty.
    pub(crate) fn with_undefined(behavior: UndefinedBehavior) -> Result<Templates, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(behavior);
        // Percent-encode a path segment or query value (codes, tags) in links.
        env.add_filter("urlencode", |s: String| session::urlencode(&s));
        for (name, src) in TEMPLATES {
            env.add_template(name, src)?;
        }
        Ok(Templates { env })
    }

    pub fn render(&self, name: &str, ctx: Value) -> Result<String, TemplateError> {
        self.env.get_template(name)?.render(ctx)
    }
}

/// Add the security headers every HTML response carries.
pub fn add_security_headers(headers: &mut HeaderMap) {
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}

/// The href that shows the current page in the other language.
pub fn lang_switch_href(uri: &str, lang: Lang) -> String {
    let other = match lang {
        Lang::Zh => "en",
        Lang::En => "zh",
    };
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty() && !p.starts_with("lang=")).collect();
    let lang_pair = format!("lang={other}");
    pairs.push(&lang_pair);
    format!("{path}?{}", pairs.join("&"))
}

/// The context every page shares: strings, language, user, navigation.
fn base_context(page: &PageCtx, viewer: Option<&Viewer>, nav: &str) -> Value {
    let other = match page.lang {
        Lang::Zh => "en",
        Lang::En => "zh-CN",
    };
    context! {
        t => i18n::table(page.lang),
        lang => page.lang.code(),
        user => viewer.map(|v| view::UserView::new(v, page.lang)),
        nav => nav,
        css_href => css_href(),
        lang_switch_href => lang_switch_href(&page.uri, page.lang),
        lang_switch_code => other,
    }
}

/// Render a page with the shared context merged under `extra`.
pub(crate) fn render_page(
    st: &AppState,
    page: &PageCtx,
    viewer: Option<&Viewer>,
    template: &str,
    nav: &str,
    status: StatusCode,
    extra: Value,
) -> Result<Response, govhub_core::Error> {
    let ctx = context! { ..extra, ..base_context(page, viewer, nav) };
    let html = st.ui.render(template, ctx).map_err(govhub_core::Error::internal)?;
    Ok((status, Html(html)).into_response())
}

/// Turn a page handler's outcome into a response. Refusals (forbidden, not found…)
/// are rendered here with the user's navigation; internal errors go to the error
/// middleware, which logs them and shows only the request id.
pub(crate) fn respond(
    st: &AppState,
    page: &PageCtx,
    viewer: Option<&Viewer>,
    result: Result<Response, govhub_core::Error>,
) -> Response {
    let e = match result {
        Ok(r) => return r,
        Err(e) => e,
    };
    if e.code == govhub_core::Code::Internal {
        return ApiError(e).into_response();
    }
    let status = status_for(e.code);
    let request_id = page.ctx.request_id.clone().unwrap_or_default();
    tracing::info!(request_id = %request_id, path = %page.path, code = e.code.as_str(), "page refused");
    let body = ErrorBody {
        code: e.code.as_str().to_string(),
        message: e.message.clone(),
        message_zh: e.message_zh.clone(),
        request_id,
        field: e.field.clone(),
    };
    let extra = context! { status => status.as_u16(), error => body };
    match render_page(st, page, viewer, "error.html", "", status, extra) {
        Ok(r) => r,
        Err(_) => ApiError(e).into_response(),
    }
}

/// An error as a page (for browsers). Rendered without state, so it cannot fail in
/// an interesting way; if it does, plain text.
pub fn error_page(status: StatusCode, body: &ErrorBody, lang: Lang) -> Response {
    static TEMPLATES_ONCE: OnceLock<Result<Templates, TemplateError>> = OnceLock::new();
    let html = match TEMPLATES_ONCE.get_or_init(Templates::load) {
        Ok(t) => t.render(
            "error.html",
            context! {
                t => i18n::table(lang), lang => lang.code(), status => status.as_u16(), error => body, user => (),
                nav => "", css_href => css_href(), lang_switch_href => lang_switch_href("/", lang),
                lang_switch_code => if lang == Lang::Zh { "en" } else { "zh-CN" },
            },
        ),
        Err(e) => Err(minijinja::Error::new(e.kind(), "templates failed to load")),
    };
    let mut r = match html {
        Ok(h) => (status, Html(h)).into_response(),
        Err(_) => {
            let mut r = (status, format!("{} ({})", body.message, body.request_id)).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            r
        }
    };
    add_security_headers(r.headers_mut());
    r
}

/// `?lang=en` / `?lang=zh` on any page: remember the choice in the `govhub_lang`
/// cookie and show the same page without the parameter.
async fn lang_switch(req: Request, next: Next) -> Response {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        if let Some(query) = req.uri().query() {
            let chosen = query
                .split('&')
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| *k == "lang")
                .and_then(|(_, v)| Lang::parse(v));
            if let Some(lang) = chosen {
                let rest: Vec<&str> =
                    query.split('&').filter(|p| !p.is_empty() && *p != "lang" && !p.starts_with("lang=")).collect();
                let path = req.uri().path();
                let location = if rest.is_empty() { path.to_string() } else { format!("{path}?{}", rest.join("&")) };
                let cookie = session::SetCookie {
                    name: i18n::LANG_COOKIE,
                    value: lang.code(),
                    max_age: 365 * 24 * 3600,
                    same_site: "Lax",
                    http_only: true,
                    secure: false,
                }
                .header();
                return session::see_other(&location, [cookie]);
            }
        }
    }
    next.run(req).await
}

async fn security_headers(mut resp: Response) -> Response {
    add_security_headers(resp.headers_mut());
    resp
}

async fn stylesheet() -> Response {
    static_asset(APP_CSS, "text/css; charset=utf-8")
}

async fn favicon() -> Response {
    static_asset(FAVICON_SVG, "image/svg+xml")
}

fn static_asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    r
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/me", get(pages::me))
        .route("/me/licences/{id}/file", get(pages::my_licence_file))
        .route("/verify/{id}", get(verify::page))
        .route("/verify/{id}/qr.svg", get(verify::qr_svg))
        .route("/verify/{id}/qr.png", get(verify::qr_png))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/catalog", get(pages::catalog))
        .route("/catalog/{code}", get(pages::dataset))
        .route("/orgs", get(pages::orgs))
        .route("/orgs/{code}", get(pages::org))
        .route("/audit", get(pages::audit))
        .route("/catalog/{code}/records", get(data::records))
        .route("/catalog/{code}/records/{key}", get(data::record))
        .route("/deliveries/{id}", get(data::report))
        .route("/deliveries/{id}/quarantine.csv", get(data::quarantine_download))
        .route("/compliance", get(data::compliance))
        .route("/compliance/responsibilities", post(data::put_responsibility))
        .route("/compliance/responsibilities/{dataset}/delete", post(data::delete_responsibility))
        .route("/sharing/inbox", get(sharing::inbox))
        .route("/sharing/requests/{id}", get(sharing::request))
        .route("/sharing/requests/{id}/decision", post(sharing::decide_request))
        .route("/sharing/apps", get(sharing::apps).post(sharing::create_app))
        .route("/sharing/apps/{id}", get(sharing::app))
        .route("/sharing/apps/{id}/tokens", post(sharing::create_token))
        .route("/sharing/apps/{id}/tokens/{token}/revoke", post(sharing::revoke_token))
        .route("/sharing/apps/{id}/requests", post(sharing::request_access))
        .route("/sharing/grants/{id}/revoke", post(sharing::revoke_grant))
        .route("/sharing/usage", get(sharing::usage))
        .route("/static/app.css", get(stylesheet))
        .route("/static/favicon.svg", get(favicon))
        .layer(axum::middleware::from_fn(lang_switch))
        .layer(axum::middleware::map_response(security_headers))
}

/// The upload form's route. Its body is streamed into the delivery pipeline, whose
/// reader enforces `max_delivery_bytes`, so it is merged outside the `max_body_bytes`
/// limit (and axum's own multipart limit is lifted).
pub fn streamed_router() -> Router<AppState> {
    Router::new()
        .route("/catalog/{code}/deliveries", post(data::upload))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::map_response(security_headers))
}
