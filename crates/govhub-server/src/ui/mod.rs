//! The server-rendered web UI (minijinja templates embedded in the binary).

pub mod i18n;

use crate::error::ErrorBody;
use crate::state::AppState;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use i18n::Lang;
use minijinja::{context, Environment};

pub type TemplateError = minijinja::Error;

/// Every template, embedded at compile time.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("error.html", include_str!("../../templates/error.html")),
];

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn load() -> Result<Templates, TemplateError> {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            env.add_template(name, src)?;
        }
        Ok(Templates { env })
    }

    pub fn render(&self, name: &str, ctx: minijinja::Value) -> Result<String, TemplateError> {
        self.env.get_template(name)?.render(ctx)
    }
}

/// An error as a page (for browsers). Rendered without state, so it cannot fail in
/// an interesting way; if it does, plain text.
pub fn error_page(status: StatusCode, body: &ErrorBody, lang: Lang) -> Response {
    let html = Templates::load().and_then(|t| {
        t.render(
            "error.html",
            context! { t => i18n::table(lang), lang => lang.code(), status => status.as_u16(), error => body, user => () },
        )
    });
    match html {
        Ok(h) => (status, Html(h)).into_response(),
        Err(_) => {
            let mut r = (status, format!("{} ({})", body.message, body.request_id)).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            r
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
}
