//! Browser sessions: the `govhub_session` cookie, the login form's double-submit
//! `govhub_csrf` cookie, the [`WebUser`] / [`OptionalWebUser`] extractors and the
//! small helpers around them (safe redirect targets, URL encoding).

use super::i18n::Lang;
use crate::error::{ApiError, RequestId};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use govhub_core::authz::Principal;
use govhub_core::model::SessionKind;
use govhub_core::service::Ctx;
use govhub_core::Code;

/// The browser session cookie (the session token itself; only its digest is stored).
pub const SESSION_COOKIE: &str = "govhub_session";
/// Double-submit CSRF cookie of the sign-in form (no session exists yet).
pub const LOGIN_CSRF_COOKIE: &str = "govhub_csrf";

/// The value of the first cookie called `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// How a `Set-Cookie` header is built. Values we set are hex tokens or language codes,
/// so no quoting is needed.
pub struct SetCookie<'a> {
    pub name: &'a str,
    pub value: &'a str,
    pub max_age: i64,
    pub same_site: &'static str,
    pub http_only: bool,
    pub secure: bool,
}

impl SetCookie<'_> {
    pub fn header(&self) -> Option<HeaderValue> {
        let mut s =
            format!("{}={}; Path=/; Max-Age={}; SameSite={}", self.name, self.value, self.max_age, self.same_site);
        if self.http_only {
            s.push_str("; HttpOnly");
        }
        if self.secure {
            s.push_str("; Secure");
        }
        HeaderValue::from_str(&s).ok()
    }
}

/// `Set-Cookie` for a fresh session.
pub fn session_cookie(token: &str, max_age: i64, secure: bool) -> Option<HeaderValue> {
    SetCookie { name: SESSION_COOKIE, value: token, max_age, same_site: "Lax", http_only: true, secure }.header()
}

/// `Set-Cookie` that deletes the session cookie.
pub fn clear_session_cookie(secure: bool) -> Option<HeaderValue> {
    SetCookie { name: SESSION_COOKIE, value: "", max_age: 0, same_site: "Lax", http_only: true, secure }.header()
}

/// `Set-Cookie` for the sign-in form's CSRF value (lives as long as a form may stay open).
pub fn login_csrf_cookie(value: &str, max_age: i64, secure: bool) -> Option<HeaderValue> {
    SetCookie { name: LOGIN_CSRF_COOKIE, value, max_age, same_site: "Strict", http_only: true, secure }.header()
}

/// Compare a submitted CSRF value with the expected one, in constant time. Empty
/// values never match.
pub fn csrf_ok(expected: &str, submitted: &str) -> bool {
    !expected.is_empty() && govhub_crypto::constant_time_eq(expected.as_bytes(), submitted.as_bytes())
}

/// A CSRF token we issued ourselves: 64 lower-case hex digits.
pub fn well_formed_token(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The `csrf_failed` error (rendered as a page for browsers).
pub fn csrf_failed() -> ApiError {
    ApiError(govhub_core::Error::bare(Code::CsrfFailed))
}

/// Where to go after signing in: a local path starting with exactly one `/`,
/// otherwise `/`. Refuses `//host`, `/\host`, schemes, control characters and
/// anything over 2,000 characters.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.len() <= 2000
                && !n.contains('\\')
                && !n.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

/// Percent-encode a query-string component (everything but unreserved characters).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A `303 See Other` to `location`, with extra headers (cookies).
pub fn see_other(location: &str, set_cookies: impl IntoIterator<Item = Option<HeaderValue>>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    for c in set_cookies.into_iter().flatten() {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// What every page knows about its request.
#[derive(Debug, Clone)]
pub struct PageCtx {
    pub lang: Lang,
    /// Path and query of this request (for the language switch and `next`).
    pub uri: String,
    pub path: String,
    pub ctx: Ctx,
}

impl<S: Send + Sync> FromRequestParts<S> for PageCtx {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PageCtx::from_parts(parts))
    }
}

impl PageCtx {
    pub(crate) fn from_parts(parts: &Parts) -> PageCtx {
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        PageCtx {
            lang: Lang::from_headers(&parts.headers),
            uri: parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into()),
            path: parts.uri.path().to_string(),
            ctx: Ctx { request_id },
        }
    }
}

/// A signed-in browser user.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub principal: Principal,
    /// The session secret from the cookie (needed to sign out).
    pub token: String,
    /// The session's CSRF token: every POST form carries it.
    pub csrf: String,
    /// The name of the user's organisation, for the header.
    pub org_name: Option<String>,
}

/// Why a session cookie did not give a user.
enum NoUser {
    Missing,
    Expired,
    Refused(ApiError),
}

async fn viewer(parts: &Parts, st: &AppState) -> Result<Viewer, NoUser> {
    let token = cookie(&parts.headers, SESSION_COOKIE).ok_or(NoUser::Missing)?;
    let (principal, session) = match st.hub.authenticate(&token, SessionKind::Web).await {
        Ok(v) => v,
        Err(e) if e.code == Code::SessionExpired => return Err(NoUser::Expired),
        Err(e) if e.code == Code::Unauthenticated => return Err(NoUser::Missing),
        Err(e) => return Err(NoUser::Refused(ApiError(e))),
    };
    // The user's own organisation name is shown in the header of every page; it is
    // not protected data, so it is read without an audited authorization decision.
    let org_name = match &principal.org {
        Some(code) => st.hub.store().get_org(code).await.ok().flatten().map(|o| o.name),
        None => None,
    };
    Ok(Viewer { principal, token, csrf: session.csrf_token, org_name })
}

/// A page that needs a signed-in user. Anonymous visitors (and expired sessions, with
/// a notice) are sent to `/login?next=<this page>`.
pub struct WebUser {
    pub viewer: Viewer,
    pub page: PageCtx,
}

/// The redirect to the sign-in page for `uri`.
pub fn login_redirect(uri: &str, expired: bool, secure: bool) -> Response {
    let mut loc = format!("/login?next={}", urlencode(uri));
    if expired {
        loc.push_str("&expired=1");
    }
    see_other(&loc, [if expired { clear_session_cookie(secure) } else { None }])
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let page = PageCtx::from_parts(parts);
        let secure = st.config.secure_cookies;
        // After a POST the page to come back to is the referring form's page, which we
        // do not know; home is the safe choice.
        let back = if parts.method == axum::http::Method::GET { page.uri.clone() } else { "/".to_string() };
        match viewer(parts, st).await {
            Ok(viewer) => Ok(WebUser { viewer, page }),
            Err(NoUser::Missing) => Err(login_redirect(&back, false, secure)),
            Err(NoUser::Expired) => Err(login_redirect(&back, true, secure)),
            Err(NoUser::Refused(e)) => Err(e.into_response()),
        }
    }
}

/// A page that works signed in or out (home, sign-in).
pub struct OptionalWebUser {
    pub viewer: Option<Viewer>,
    pub page: PageCtx,
}

impl FromRequestParts<AppState> for OptionalWebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let page = PageCtx::from_parts(parts);
        match viewer(parts, st).await {
            Ok(v) => Ok(OptionalWebUser { viewer: Some(v), page }),
            Err(NoUser::Missing | NoUser::Expired) => Ok(OptionalWebUser { viewer: None, page }),
            Err(NoUser::Refused(e)) => Err(e.into_response()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_be_a_local_path() {
        assert_eq!(safe_next(Some("/catalog?q=%E4%BA%BA")), "/catalog?q=%E4%BA%BA");
        assert_eq!(safe_next(Some("/orgs/cz-gaj")), "/orgs/cz-gaj");
        assert_eq!(safe_next(Some("/")), "/");
        for bad in [
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "evil",
            "",
            "/a b",
            "/a\r\nSet-Cookie: x=1",
            "/\t/evil.example",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(3000)))), "/");
    }

    #[test]
    fn csrf_comparison() {
        let t = govhub_crypto::new_token("");
        assert!(well_formed_token(&t));
        assert!(csrf_ok(&t, &t.clone()));
        assert!(!csrf_ok(&t, ""));
        assert!(!csrf_ok("", ""));
        assert!(!csrf_ok(&t, &t[..63]));
        let mut other = t.clone().into_bytes();
        other[10] = if other[10] == b'a' { b'b' } else { b'a' };
        assert!(!csrf_ok(&t, std::str::from_utf8(&other).unwrap_or_default()));
        assert!(!well_formed_token("ABC"));
        assert!(!well_formed_token(&"g".repeat(64)));
    }

    #[test]
    fn cookies_are_parsed_and_built() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; govhub_session=ghs_abc; govhub_lang=en"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("ghs_abc"));
        assert_eq!(cookie(&h, "missing"), None);
        let c = session_cookie("ghs_abc", 28800, true).map(|v| v.to_str().unwrap_or_default().to_string());
        assert_eq!(c.as_deref(), Some("govhub_session=ghs_abc; Path=/; Max-Age=28800; SameSite=Lax; HttpOnly; Secure"));
        let c = login_csrf_cookie("ff", 3600, false).map(|v| v.to_str().unwrap_or_default().to_string());
        assert_eq!(c.as_deref(), Some("govhub_csrf=ff; Path=/; Max-Age=3600; SameSite=Strict; HttpOnly"));
    }

    #[test]
    fn urlencoding() {
        assert_eq!(urlencode("/catalog?q=人口&x=1"), "%2Fcatalog%3Fq%3D%E4%BA%BA%E5%8F%A3%26x%3D1");
        assert_eq!(urlencode("a-b_c.d~"), "a-b_c.d~");
    }
}
