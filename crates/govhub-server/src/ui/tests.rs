//! UI tests: every page rendered over a real SQLite store (templates in strict mode, so
//! a missing variable or string fails), the sign-in flow with its cookies and CSRF
//! checks, role-based navigation and refusals, the language switch and headers.

use super::i18n::{self, Lang};
use super::*;
use crate::state::{AppState, ServerConfig};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration, TimeZone, Utc};
use govhub_core::authz::Principal;
use govhub_core::clock::ManualClock;
use govhub_core::input::{NewDataset, NewOrg, NewUser};
use govhub_core::model::*;
use govhub_core::names::{DatasetCode, OrgCode, Username};
use govhub_core::schema::TableSchema;
use govhub_core::service::{Ctx, Hub, HubSettings};
use govhub_core::standards::AdminCode;
use serde_json::json;
use std::sync::Arc;
use tower::ServiceExt;

// ------------------------------------------------------------------ fixtures

const PASSWORD: &str = "Demo@2026";

struct World {
    state: AppState,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).single().unwrap_or_else(Utc::now)
}

async fn world() -> World {
    let clock = Arc::new(ManualClock::new(start()));
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("govhub.db").display());
    let store = govhub_store::open(&url).await.unwrap();
    let hub = Hub::new(store, clock.clone(), HubSettings::default());
    let sys = Principal::system();
    let ctx = Ctx::default();
    let org = |code: &str, name: &str, kind: OrgKind, parent: Option<&str>, admin: Option<&str>| NewOrg {
        code: OrgCode::parse(code).unwrap(),
        name: name.into(),
        kind,
        parent: parent.map(|p| OrgCode::parse(p).unwrap()),
        admin_code: admin.map(|a| AdminCode::parse(a).unwrap()),
        uscc: None,
    };
    hub.create_org(&sys, org("cz", "常州市人民政府", OrgKind::City, None, Some("320400")), &ctx).await.unwrap();
    hub.create_org(&sys, org("cz-gaj", "常州市公安局", OrgKind::Department, Some("cz"), None), &ctx).await.unwrap();
    hub.create_org(&sys, org("cz-dsj", "常州市大数据管理局", OrgKind::Department, Some("cz"), None), &ctx)
        .await
        .unwrap();
    hub.create_org(&sys, org("cz-tn", "天宁区人民政府", OrgKind::District, Some("cz"), Some("320402")), &ctx)
        .await
        .unwrap();
    for (username, name, role, org) in [
        ("admin", "平台管理员", Role::PlatformAdmin, Some("cz-dsj")),
        ("gaj-officer", "王数据", Role::DataOfficer, Some("cz-gaj")),
        ("citizen", "张三", Role::Citizen, None),
    ] {
        let input = NewUser {
            username: Username::parse(username).unwrap(),
            password: PASSWORD.into(),
            role,
            org: org.map(|o| OrgCode::parse(o).unwrap()),
            display_name: name.into(),
            subject_id: None,
        };
        hub.create_user(&sys, input, &ctx).await.unwrap();
    }
    let schema = TableSchema::parse(&json!({
        "fields": [
            {"name": "sfzh", "title": "公民身份号码", "type": "string", "format": "id-number", "sensitive": true,
             "constraints": {"required": true}},
            {"name": "xm", "title": "姓名", "type": "string", "sensitive": true, "constraints": {"maxLength": 50}},
            {"name": "xb", "title": "性别", "type": "string", "constraints": {"enum": ["男", "女"]}},
            {"name": "csrq", "title": "出生日期", "type": "date"},
            {"name": "hjdz_qh", "title": "户籍地行政区划", "type": "string", "format": "admin-code",
             "constraints": {"pattern": "^3204[0-9]{2}$"}},
            {"name": "age", "title": "年龄", "type": "integer", "constraints": {"minimum": 0, "maximum": 150}}
        ],
        "primaryKey": ["sfzh"]
    }))
    .unwrap();
    let ds = |code: &str, name: &str, provider: &str, sc, schema: TableSchema, tags: &[&str]| NewDataset {
        code: DatasetCode::parse(code).unwrap(),
        name: name.into(),
        provider: OrgCode::parse(provider).unwrap(),
        summary: format!("{name}的基本信息"),
        category: Some("人口".into()),
        sharing_class: sc,
        sharing_condition: (sc == SharingClass::Conditional).then(|| "经提供方审批".to_string()),
        open_class: OpenClass::NotOpen,
        grade: Grade::Important,
        update_cycle: UpdateCycle::Daily,
        publish_date: None,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        schema,
    };
    hub.create_dataset(
        &sys,
        ds("ga-hjrk", "户籍人口", "cz-gaj", SharingClass::Conditional, schema, &["人口", "户籍"]),
        &ctx,
    )
    .await
    .unwrap();
    let schema2 = TableSchema::parse(&json!({
        "fields": [
            {"name": "id", "title": "编号", "type": "string"},
            {"name": "sfzh", "title": "公民身份号码", "type": "string", "format": "id-number", "sensitive": true}
        ],
        "primaryKey": ["id"],
        "foreignKeys": [{"fields": ["sfzh"], "reference": {"resource": "ga-hjrk", "fields": ["sfzh"]}}]
    }))
    .unwrap();
    hub.create_dataset(
        &sys,
        ds("ga-zzrk", "暂住人口", "cz-gaj", SharingClass::Unconditional, schema2, &["人口"]),
        &ctx,
    )
    .await
    .unwrap();
    let strict = Templates::with_undefined(minijinja::UndefinedBehavior::Strict).unwrap();
    let state = AppState::from_parts(hub, ServerConfig::default(), strict);
    World { state, clock, _dir: dir }
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }
    fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect()
    }
    fn cookie_value(&self, name: &str) -> Option<String> {
        self.set_cookies().iter().find_map(|c| {
            let first = c.split(';').next()?;
            let (k, v) = first.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }
}

impl World {
    async fn call(&self, req: Request<Body>) -> Resp {
        let resp = crate::app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 10 << 20).await.unwrap();
        // minijinja escapes `/` in HTML as `&#x2f;`; browsers read both the same.
        Resp { status, headers, body: String::from_utf8_lossy(&bytes).replace("&#x2f;", "/") }
    }

    async fn get(&self, path: &str, cookies: &str) -> Resp {
        let mut b = Request::get(path).header("accept", "text/html");
        if !cookies.is_empty() {
            b = b.header("cookie", cookies);
        }
        self.call(b.body(Body::empty()).unwrap()).await
    }

    async fn post(&self, path: &str, cookies: &str, form: &[(&str, &str)]) -> Resp {
        let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={}", session::urlencode(v))).collect();
        let mut b = Request::post(path)
            .header("accept", "text/html")
            .header("content-type", "application/x-www-form-urlencoded");
        if !cookies.is_empty() {
            b = b.header("cookie", cookies);
        }
        self.call(b.body(Body::from(body.join("&"))).unwrap()).await
    }

    /// Sign in through the form; returns the cookie header to use afterwards.
    async fn sign_in(&self, username: &str) -> String {
        let form = self.get("/login", "").await;
        let csrf = form.cookie_value(session::LOGIN_CSRF_COOKIE).unwrap();
        let r = self
            .post(
                "/login",
                &format!("{}={csrf}", session::LOGIN_CSRF_COOKIE),
                &[("username", username), ("password", PASSWORD), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let token = r.cookie_value(session::SESSION_COOKIE).unwrap();
        format!("{}={token}", session::SESSION_COOKIE)
    }
}

fn hidden_csrf(body: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).unwrap() + marker.len();
    body[start..start + 64].to_string()
}

// --------------------------------------------------------------------- tests

#[test]
fn every_template_string_exists_in_both_languages() {
    let keys: std::collections::HashSet<&str> = i18n::STRINGS.iter().map(|(k, _, _)| *k).collect();
    assert_eq!(keys.len(), i18n::STRINGS.len(), "duplicate key in STRINGS");
    for (k, zh, en) in i18n::STRINGS {
        assert!(!zh.is_empty(), "{k} has no Chinese text");
        assert!(!en.is_empty() || *k == "results_before", "{k} has no English text");
    }
    for (name, src) in TEMPLATES {
        let bytes = src.as_bytes();
        for (i, _) in src.match_indices("t.") {
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b'.') {
                continue;
            }
            let key: String = src[i + 2..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !key.is_empty() {
                assert!(keys.contains(key.as_str()), "{name} uses t.{key}, which is not in i18n::STRINGS");
            }
        }
    }
}

#[test]
fn error_page_renders_in_both_languages_with_headers() {
    let body = crate::error::ErrorBody {
        code: "forbidden".into(),
        message: "only a platform administrator may do this".into(),
        message_zh: "仅平台管理员可执行此操作".into(),
        request_id: "abc123".into(),
        field: None,
    };
    let r = error_page(StatusCode::FORBIDDEN, &body, Lang::Zh);
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.headers()["content-security-policy"], CSP);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let t = Templates::with_undefined(minijinja::UndefinedBehavior::Strict).unwrap();
    for lang in [Lang::Zh, Lang::En] {
        let html = t
            .render(
                "error.html",
                minijinja::context! {
                    t => i18n::table(lang), lang => lang.code(), status => 403, error => &body, user => (),
                    nav => "", css_href => css_href(), lang_switch_href => "/?lang=en", lang_switch_code => "en",
                },
            )
            .unwrap();
        assert!(html.contains(if lang == Lang::Zh {
            "仅平台管理员可执行此操作"
        } else {
            "only a platform"
        }));
        assert!(html.contains("abc123"));
    }
}

#[test]
fn lang_switch_keeps_the_rest_of_the_query() {
    assert_eq!(lang_switch_href("/catalog?q=%E4%BA%BA&page=2", Lang::Zh), "/catalog?q=%E4%BA%BA&page=2&lang=en");
    assert_eq!(lang_switch_href("/", Lang::En), "/?lang=zh");
    assert_eq!(lang_switch_href("/orgs?lang=zh", Lang::Zh), "/orgs?lang=en");
}

#[test]
fn catalog_form_pages_and_filters() {
    let f = pages::CatalogForm {
        q: Some(" 人口 ".into()),
        grade: Some("重要".into()),
        page: Some("3".into()),
        ..Default::default()
    };
    let q = f.to_query().unwrap();
    assert_eq!(q.text.as_deref(), Some("人口"));
    assert_eq!(q.grade, Some(Grade::Important));
    assert_eq!((q.limit, q.offset), (50, 100));
    assert_eq!(f.href_for_page(1), "/catalog?q=%E4%BA%BA%E5%8F%A3&grade=%E9%87%8D%E8%A6%81");
    assert_eq!(f.href_for_page(4), "/catalog?q=%E4%BA%BA%E5%8F%A3&grade=%E9%87%8D%E8%A6%81&page=4");
    let bad = pages::CatalogForm { grade: Some("top".into()), ..Default::default() };
    assert_eq!(bad.to_query().unwrap_err().code, govhub_core::Code::InvalidRequest);
    let junk = pages::CatalogForm { page: Some("-1".into()), ..Default::default() };
    assert_eq!(junk.page(), 1);
}

#[test]
fn org_tree_orders_city_departments_districts() {
    let at = start();
    let o = |code: &str, kind, parent: Option<&str>| Org {
        code: OrgCode::parse(code).unwrap(),
        name: code.to_string(),
        kind,
        parent: parent.map(|p| OrgCode::parse(p).unwrap()),
        admin_code: None,
        uscc: None,
        created_at: at,
    };
    let orgs = vec![
        o("cz-tn", OrgKind::District, Some("cz")),
        o("cz-gaj", OrgKind::Department, Some("cz")),
        o("cz", OrgKind::City, None),
        o("cz-tn-jd", OrgKind::Department, Some("cz-tn")),
        o("orphan", OrgKind::Other, Some("gone")),
    ];
    let rows = view::org_tree(&orgs, Lang::Zh);
    let got: Vec<(&str, usize)> = rows.iter().map(|r| (r.code.as_str(), r.depth)).collect();
    assert_eq!(got, vec![("cz", 0), ("cz-gaj", 1), ("cz-tn", 1), ("cz-tn-jd", 2), ("orphan", 0)]);
    assert_eq!(rows[0].kind_label, "市级");
}

#[tokio::test]
async fn home_signed_out_and_stylesheet() {
    let w = world().await;
    let r = w.get("/", "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("常州市政务数据共享交换平台"));
    assert!(r.body.contains("href=\"/login\""));
    assert!(r.body.contains(css_href()));
    assert_eq!(r.header("content-security-policy"), CSP);
    assert_eq!(r.header("referrer-policy"), "same-origin");
    assert!(!r.body.contains("<script") && !r.body.contains("style="), "no inline script or style");

    let css = w.get(css_href(), "").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("content-type").starts_with("text/css"));
    assert!(css.header("cache-control").contains("max-age=31536000"));
    assert!(css.body.contains("PingFang SC"));
}

#[tokio::test]
async fn sign_in_sets_a_session_cookie_and_goes_to_next() {
    let w = world().await;
    let form = w.get("/login?next=%2Fcatalog%3Fq%3Dx", "").await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = form.cookie_value(session::LOGIN_CSRF_COOKIE).unwrap();
    assert!(session::well_formed_token(&csrf));
    assert_eq!(hidden_csrf(&form.body), csrf);
    assert!(form.set_cookies().iter().any(|c| c.contains("HttpOnly") && c.contains("SameSite=Strict")));
    assert!(form.body.contains("name=\"next\" value=\"/catalog?q=x\""));
    let jar = format!("govhub_csrf={csrf}");

    // Wrong password: the form again, 401, username kept, message in Chinese.
    let bad = w.post("/login", &jar, &[("username", "gaj-officer"), ("password", "nope"), ("csrf", &csrf)]).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.body.contains("用户名或密码错误"));
    assert!(bad.body.contains("value=\"gaj-officer\""));
    assert!(bad.cookie_value(session::SESSION_COOKIE).is_none());

    // Missing or different CSRF value: 403 csrf_failed page.
    for (cookies, submitted) in [(jar.as_str(), "0".repeat(64)), ("", csrf.clone()), (jar.as_str(), String::new())] {
        let r = w
            .post("/login", cookies, &[("username", "gaj-officer"), ("password", PASSWORD), ("csrf", &submitted)])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.body.contains("csrf_failed"), "{}", r.body);
        assert!(r.header("content-type").starts_with("text/html"));
    }

    // Right password: 303 to next, session cookie with the right attributes.
    let ok = w
        .post(
            "/login",
            &jar,
            &[("username", "gaj-officer"), ("password", PASSWORD), ("csrf", &csrf), ("next", "/catalog?q=x")],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.header("location"), "/catalog?q=x");
    let cookie = ok.set_cookies().into_iter().find(|c| c.starts_with("govhub_session=")).unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"));
    assert!(cookie.contains("Max-Age=28800"));
    assert!(!cookie.contains("Secure"));

    // A foreign `next` goes home instead.
    let evil = w
        .post(
            "/login",
            &jar,
            &[("username", "gaj-officer"), ("password", PASSWORD), ("csrf", &csrf), ("next", "//evil.example/")],
        )
        .await;
    assert_eq!(evil.header("location"), "/");

    // Signed in, /login goes straight on.
    let session = format!("govhub_session={}", ok.cookie_value("govhub_session").unwrap());
    let again = w.get("/login?next=/orgs", &session).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(again.header("location"), "/orgs");
}

#[tokio::test]
async fn secure_cookies_when_configured() {
    let mut w = world().await;
    w.state = w.state.with_config(ServerConfig { secure_cookies: true, ..ServerConfig::default() });
    let form = w.get("/login", "").await;
    assert!(form.set_cookies().iter().all(|c| c.contains("; Secure")));
    let session = w.sign_in("admin").await;
    assert!(session.starts_with("govhub_session=ghs_"));
}

#[tokio::test]
async fn anonymous_and_expired_visitors_are_sent_to_sign_in() {
    let w = world().await;
    let r = w.get("/catalog?q=%E4%BA%BA", "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), "/login?next=%2Fcatalog%3Fq%3D%25E4%25BA%25BA");
    let r = w.get("/orgs", "govhub_session=ghs_unknown").await;
    assert_eq!(r.header("location"), "/login?next=%2Forgs");

    let jar = w.sign_in("gaj-officer").await;
    assert_eq!(w.get("/orgs", &jar).await.status, StatusCode::OK);
    w.clock.advance(Duration::hours(9));
    let r = w.get("/orgs", &jar).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), "/login?next=%2Forgs&expired=1");
    assert!(r.set_cookies().iter().any(|c| c.starts_with("govhub_session=;") && c.contains("Max-Age=0")));
    let form = w.get(&r.header("location"), "").await;
    assert!(form.body.contains("登录已过期"));
}

#[tokio::test]
async fn data_officer_dashboard_catalog_dataset_and_orgs() {
    let w = world().await;
    let jar = w.sign_in("gaj-officer").await;

    let home = w.get("/", &jar).await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    for s in ["王数据", "部门数据专员", "常州市公安局", "数据目录", "组织机构", "本单位提供的数据集", "户籍人口"]
    {
        assert!(home.body.contains(s), "home lacks {s}");
    }
    assert!(!home.body.contains("href=\"/audit\""), "audit link is for platform admins only");
    assert!(home.body.contains("<span class=\"stat-value\">2</span>"), "two datasets");
    assert!(home.body.contains("<span class=\"stat-value\">4</span>"), "four organisations");

    let cat = w.get("/catalog?q=%E4%BA%BA%E5%8F%A3", &jar).await;
    assert_eq!(cat.status, StatusCode::OK, "{}", cat.body);
    assert!(cat.body.contains("href=\"/catalog/ga-hjrk\""));
    assert!(cat.body.contains("有条件共享") && cat.body.contains("badge-amber"));
    let filtered = w.get("/catalog?sharing_class=%E6%97%A0%E6%9D%A1%E4%BB%B6%E5%85%B1%E4%BA%AB", &jar).await;
    assert!(filtered.body.contains("ga-zzrk") && !filtered.body.contains("/catalog/ga-hjrk\""));
    let bad = w.get("/catalog?grade=top", &jar).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("王数据"), "refusals keep the navigation");

    let ds = w.get("/catalog/ga-hjrk", &jar).await;
    assert_eq!(ds.status, StatusCode::OK, "{}", ds.body);
    for s in [
        "公民身份号码",
        "敏感",
        "id-number",
        "取值：男、女",
        "长度 ≤ 50",
        "≥ 0",
        "正则 ^3204[0-9]{2}$",
        "ds_ga_hjrk_v1",
        "<td><code>sfzh</code></td><td><code>TEXT</code></td>",
        "经提供方审批",
        "每日",
        "href=\"/orgs/cz-gaj\"",
        "&quot;primaryKey&quot;",
    ] {
        assert!(ds.body.contains(s), "dataset page lacks {s}");
    }
    let fk = w.get("/catalog/ga-zzrk", &jar).await;
    assert!(fk.body.contains("href=\"/catalog/ga-hjrk\""), "foreign key links to the referenced dataset");
    let missing = w.get("/catalog/no-such", &jar).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("数据集“no-such”不存在"));

    let orgs = w.get("/orgs", &jar).await;
    assert_eq!(orgs.status, StatusCode::OK);
    for s in ["常州市人民政府", "320400", "天宁区人民政府", "depth-1", "区县"] {
        assert!(orgs.body.contains(s), "orgs page lacks {s}");
    }
    let org = w.get("/orgs/cz-gaj", &jar).await;
    assert_eq!(org.status, StatusCode::OK);
    assert!(org.body.contains("href=\"/orgs/cz\"") && org.body.contains("户籍人口") && org.body.contains("暂住人口"));
    let city = w.get("/orgs/cz", &jar).await;
    assert!(city.body.contains("href=\"/orgs/cz-tn\""), "children listed");
    assert_eq!(w.get("/orgs/nope", &jar).await.status, StatusCode::NOT_FOUND);

    let audit = w.get("/audit", &jar).await;
    assert_eq!(audit.status, StatusCode::FORBIDDEN);
    assert!(audit.body.contains("仅平台管理员可执行此操作"));
}

#[tokio::test]
async fn platform_admin_sees_the_audit_log() {
    let w = world().await;
    let jar = w.sign_in("admin").await;
    let home = w.get("/", &jar).await;
    assert!(home.body.contains("href=\"/audit\""));
    let r = w.get("/audit", &jar).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("auth.sign_in") && r.body.contains("dataset.manage"));
    assert!(r.body.matches("<tr>").count() <= 101);
}

#[tokio::test]
async fn citizens_get_their_page_and_are_refused_the_catalog() {
    let w = world().await;
    let jar = w.sign_in("citizen").await;
    let home = w.get("/", &jar).await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(home.body.contains("张三") && home.body.contains("办事群众") && home.body.contains("我的服务"));
    assert!(!home.body.contains("href=\"/catalog\""), "no catalog link for citizens");
    let me = w.get("/me", &jar).await;
    assert_eq!(me.status, StatusCode::OK);
    let r = w.get("/catalog", &jar).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("政务信息资源目录仅面向政务人员"));
    assert!(r.body.contains("退出"), "the refusal page still lets the citizen sign out");
    let org = w.get("/orgs/cz-gaj", &jar).await;
    assert_eq!(org.status, StatusCode::OK);
    assert!(!org.body.contains("户籍人口"), "no catalog data for citizens");
}

#[tokio::test]
async fn english_and_the_language_switch() {
    let w = world().await;
    let r = w.get("/catalog?q=x&lang=en", "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), "/catalog?q=x");
    assert_eq!(r.cookie_value(i18n::LANG_COOKIE).as_deref(), Some("en"));
    let r = w.get("/?lang=zh", "").await;
    assert_eq!(r.header("location"), "/");
    assert_eq!(r.cookie_value(i18n::LANG_COOKIE).as_deref(), Some("zh-CN"));

    let jar = format!("{}; govhub_lang=en", w.sign_in("gaj-officer").await);
    let home = w.get("/", &jar).await;
    assert!(home.body.contains("<html lang=\"en\">"));
    for s in ["Catalog", "Organisations", "Department data officer", "Sign out", "Dashboard"] {
        assert!(home.body.contains(s), "English home lacks {s}");
    }
    let ds = w.get("/catalog/ga-hjrk", &jar).await;
    assert!(
        ds.body.contains("shared on approval") && ds.body.contains("Sensitive") && ds.body.contains("one of: 男, 女")
    );
    let orgs = w.get("/orgs", &jar).await;
    assert!(orgs.body.contains("district"));
    let cat = w.get("/catalog", &jar).await;
    assert!(cat.body.contains("datasets"));
}

#[tokio::test]
async fn sign_out_needs_the_session_csrf_token() {
    let w = world().await;
    let jar = w.sign_in("gaj-officer").await;
    let home = w.get("/", &jar).await;
    let csrf = hidden_csrf(&home.body);
    let forged = w.post("/logout", &jar, &[("csrf", &"f".repeat(64))]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("csrf_failed"));
    assert_eq!(w.get("/orgs", &jar).await.status, StatusCode::OK, "still signed in");

    let out = w.post("/logout", &jar, &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.header("location"), "/");
    assert!(out.set_cookies().iter().any(|c| c.starts_with("govhub_session=;") && c.contains("Max-Age=0")));
    let after = w.get("/orgs", &jar).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "the old cookie no longer works");
    let home = w.get("/", &jar).await;
    assert!(home.body.contains("href=\"/login\""));
}

#[tokio::test]
async fn unknown_pages_are_html_for_browsers() {
    let w = world().await;
    let r = w.get("/no/such/page", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("页面或接口不存在"));
    assert_eq!(r.header("content-security-policy"), CSP);
}

// ---------------------------------------------------------------- deliveries

/// A valid GB 11643 ID number from its first 17 digits.
fn id_number(first17: &str) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let s: u32 = first17.chars().zip(W).map(|(c, w)| c.to_digit(10).unwrap() * w).sum();
    let check = "10X98765432".as_bytes()[(s % 11) as usize] as char;
    format!("{first17}{check}")
}

/// The same number with a wrong check character.
fn wrong_check(id: &str) -> String {
    let last = if id.ends_with('0') { '1' } else { '0' };
    format!("{}{last}", &id[..17])
}

const BOUNDARY: &str = "----govhubFormBoundary7MA4YWxkTrZu0gW";

fn multipart_body(fields: &[(&str, &str)], file: Option<(&str, &str)>) -> Vec<u8> {
    let mut b = String::new();
    for (k, v) in fields {
        b.push_str(&format!("--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
    }
    if let Some((name, content)) = file {
        let content_type = if name.ends_with(".csv") { "text/csv" } else { "application/octet-stream" };
        b.push_str(&format!(
            "--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{name}\"\r\ncontent-type: {content_type}\r\n\r\n{content}\r\n"
        ));
    }
    b.push_str(&format!("--{BOUNDARY}--\r\n"));
    b.into_bytes()
}

impl World {
    async fn upload(&self, code: &str, cookies: &str, fields: &[(&str, &str)], file: Option<(&str, &str)>) -> Resp {
        let mut b = Request::post(format!("/catalog/{code}/deliveries"))
            .header("accept", "text/html")
            .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"));
        if !cookies.is_empty() {
            b = b.header("cookie", cookies);
        }
        self.call(b.body(Body::from(multipart_body(fields, file))).unwrap()).await
    }

    async fn add_user(&self, username: &str, role: Role, org: &str) {
        let input = NewUser {
            username: Username::parse(username).unwrap(),
            password: PASSWORD.into(),
            role,
            org: Some(OrgCode::parse(org).unwrap()),
            display_name: "李专员".into(),
            subject_id: None,
        };
        self.state.hub.create_user(&Principal::system(), input, &Ctx::default()).await.unwrap();
    }

    /// Sign in and read the session's CSRF token from a page's forms.
    async fn sign_in_with_csrf(&self, username: &str) -> (String, String) {
        let jar = self.sign_in(username).await;
        let home = self.get("/", &jar).await;
        (jar.clone(), hidden_csrf(&home.body))
    }
}

fn population_csv(ids: &[String], names: &[&str]) -> String {
    let mut csv = String::from("sfzh,xm,xb,csrq,hjdz_qh,age\n");
    for (id, name) in ids.iter().zip(names) {
        csv.push_str(&format!("{id},{name},男,1990-03-07,320402,36\n"));
    }
    csv
}

#[tokio::test]
async fn upload_through_the_form_report_quarantine_and_csv() {
    let mut w = world().await;
    let (jar, csrf) = w.sign_in_with_csrf("gaj-officer").await;
    // The upload is streamed: a body far above the form limit still goes through.
    w.state = w.state.with_config(ServerConfig { max_body_bytes: 100, ..ServerConfig::default() });

    let ds = w.get("/catalog/ga-hjrk", &jar).await;
    assert_eq!(ds.status, StatusCode::OK, "{}", ds.body);
    for s in [
        "数据交付",
        "action=\"/catalog/ga-hjrk/deliveries\"",
        "enctype=\"multipart/form-data\"",
        "该数据集尚无交付记录",
    ] {
        assert!(ds.body.contains(s), "dataset page lacks {s}");
    }
    assert!(ds.body.contains("href=\"/catalog/ga-hjrk/records\""));

    let a = id_number("32040219900307123");
    let b = id_number("32040219850101002");
    let bad = wrong_check(&id_number("32040219700515331"));
    let csv = population_csv(&[a.clone(), b.clone(), bad.clone()], &["张三", "李四", "王五"]);
    assert!(csv.len() > 100);
    let fields = [("csrf", csrf.as_str()), ("mode", "incremental"), ("encoding", "auto"), ("sheet", "")];
    let r = w.upload("ga-hjrk", &jar, &fields, Some(("人口.csv", &csv))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let report_href = r.header("location");
    assert!(report_href.starts_with("/deliveries/"), "{report_href}");

    let report = w.get(&report_href, &jar).await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    for s in [
        "id=\"stat-read\">3<",
        "id=\"stat-accepted\">2<",
        "id=\"stat-quarantined\">1<",
        "新增 2 · 更新 0 · 未变 0",
        "成功",
        "id-number-check",
        "3204**********",
        "下载隔离数据 CSV",
        "class=\"seg seg-inserted\"",
        "class=\"seg seg-quarantined\"",
        "<td class=\"num\">3</td>",
    ] {
        assert!(report.body.contains(s), "report lacks {s}");
    }
    assert!(!report.body.contains(&bad), "the bad ID number is masked");
    assert!(!report.body.contains("style="), "no inline styles");

    let csv_resp = w.get(&format!("{report_href}/quarantine.csv"), &jar).await;
    assert_eq!(csv_resp.status, StatusCode::OK);
    assert!(csv_resp.header("content-type").starts_with("text/csv"));
    assert!(csv_resp.header("content-disposition").contains("quarantine-"));
    assert!(csv_resp.body.starts_with('\u{feff}'));
    assert!(csv_resp.body.contains("_row") && csv_resp.body.contains("id-number-check"));

    // The dataset page lists the delivery.
    let ds = w.get("/catalog/ga-hjrk", &jar).await;
    assert!(ds.body.contains(&format!("href=\"{report_href}\"")));

    // English report.
    let en = w.get(&report_href, &format!("{jar}; govhub_lang=en")).await;
    assert!(en.body.contains("Quarantined rows") && en.body.contains("Download quarantined rows"));

    // A forged form (no or wrong token) is refused before anything is read.
    let forged = w.upload("ga-hjrk", &jar, &[("mode", "incremental")], Some(("x.csv", &csv))).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("csrf_failed"));
    let forged = w.upload("ga-hjrk", &jar, &[("csrf", &"0".repeat(64))], Some(("x.csv", &csv))).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // No file, a wrong format: refusals, not deliveries.
    let none = w.upload("ga-hjrk", &jar, &fields, None).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST);
    assert!(none.body.contains("请选择要交付的文件"));
    let pdf = w.upload("ga-hjrk", &jar, &fields, Some(("人口.pdf", "%PDF"))).await;
    assert_eq!(pdf.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A header error: the delivery is recorded as failed and its report says why.
    let broken = w.upload("ga-hjrk", &jar, &fields, Some(("x.csv", "sfzh,colour\n1,2\n"))).await;
    assert_eq!(broken.status, StatusCode::SEE_OTHER);
    let failed = w.get(&broken.header("location"), &jar).await;
    assert!(failed.body.contains("失败") && failed.body.contains("delivery-error"), "{}", failed.body);

    // Signed out: sent to sign in, nothing delivered.
    let anon = w.upload("ga-hjrk", "", &fields, Some(("x.csv", &csv))).await;
    assert_eq!(anon.status, StatusCode::SEE_OTHER);
    assert!(anon.header("location").starts_with("/login"));
}

#[tokio::test]
async fn other_departments_are_refused_uploads_records_and_reports() {
    let w = world().await;
    w.add_user("tn-officer", Role::DataOfficer, "cz-tn").await;
    let (jar, csrf) = w.sign_in_with_csrf("gaj-officer").await;
    let csv = population_csv(&[id_number("32040219900307123")], &["张三"]);
    let r = w.upload("ga-hjrk", &jar, &[("csrf", &csrf)], Some(("a.csv", &csv))).await;
    let report_href = r.header("location");

    let (other, other_csrf) = w.sign_in_with_csrf("tn-officer").await;
    let ds = w.get("/catalog/ga-hjrk", &other).await;
    assert_eq!(ds.status, StatusCode::OK);
    assert!(!ds.body.contains("数据交付"), "no delivery section for other departments");
    let up = w.upload("ga-hjrk", &other, &[("csrf", &other_csrf)], Some(("a.csv", &csv))).await;
    assert_eq!(up.status, StatusCode::FORBIDDEN, "{}", up.body);
    assert_eq!(w.get("/catalog/ga-hjrk/records", &other).await.status, StatusCode::FORBIDDEN);
    assert_eq!(w.get(&report_href, &other).await.status, StatusCode::FORBIDDEN);
    assert_eq!(w.get(&format!("{report_href}/quarantine.csv"), &other).await.status, StatusCode::FORBIDDEN);
    let citizen = w.sign_in("citizen").await;
    assert_eq!(w.get("/catalog/ga-hjrk/records", &citizen).await.status, StatusCode::FORBIDDEN);
    assert_eq!(w.get("/compliance", &citizen).await.status, StatusCode::FORBIDDEN);
    assert_eq!(w.get("/deliveries/999", &jar).await.status, StatusCode::NOT_FOUND);
    assert_eq!(w.get("/deliveries/abc", &jar).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn records_browser_and_record_history() {
    let w = world().await;
    let (jar, csrf) = w.sign_in_with_csrf("gaj-officer").await;
    let a = id_number("32040219900307123");
    let b = id_number("32040219850101002");
    let first = population_csv(&[a.clone(), b.clone()], &["张三", "李四"]);
    let r = w.upload("ga-hjrk", &jar, &[("csrf", &csrf)], Some(("a.csv", &first))).await;
    let first_delivery = r.header("location");

    let list = w.get("/catalog/ga-hjrk/records", &jar).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(list.body.contains(&format!("href=\"/catalog/ga-hjrk/records/{a}\"")));
    assert!(list.body.contains(&format!("href=\"/catalog/ga-hjrk/records/{b}\"")));
    assert!(list.body.contains("公民身份号码") && list.body.contains("张三"));
    assert!(!list.body.contains("id=\"next-page\""), "one page only");

    let filtered = w.get("/catalog/ga-hjrk/records?field=xm&op=prefix&value=%E5%BC%A0", &jar).await;
    assert_eq!(filtered.status, StatusCode::OK);
    assert!(filtered.body.contains("张三") && !filtered.body.contains("李四"));
    let bad = w.get("/catalog/ga-hjrk/records?field=age&op=eq&value=old", &jar).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // A second delivery changes 张三's name.
    let second = population_csv(std::slice::from_ref(&a), &["张三丰"]);
    let r = w.upload("ga-hjrk", &jar, &[("csrf", &csrf), ("mode", "incremental")], Some(("b.csv", &second))).await;
    let second_delivery = r.header("location");
    let report = w.get(&second_delivery, &jar).await;
    assert!(report.body.contains("新增 0 · 更新 1 · 未变 0"), "{}", report.body);

    let rec = w.get(&format!("/catalog/ga-hjrk/records/{a}"), &jar).await;
    assert_eq!(rec.status, StatusCode::OK, "{}", rec.body);
    assert!(rec.body.contains("<td>v1</td>") && rec.body.contains("<td>v2</td>"), "two versions");
    assert!(rec.body.contains("新增") && rec.body.contains("更新"));
    assert!(rec.body.contains(&format!("href=\"{first_delivery}\"")));
    assert!(rec.body.contains(&format!("href=\"{second_delivery}\"")));
    assert!(rec.body.contains("<mark class=\"chg\">张三丰</mark>"), "the changed value is highlighted");
    assert_eq!(rec.body.matches("class=\"changed\"").count(), 1, "only xm changed");
    assert_eq!(w.get("/catalog/ga-hjrk/records/123", &jar).await.status, StatusCode::BAD_REQUEST);
    let missing = id_number("32040219990101001");
    assert_eq!(w.get(&format!("/catalog/ga-hjrk/records/{missing}"), &jar).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn compliance_dashboard_and_the_responsibility_form() {
    let w = world().await;
    let officer = w.sign_in("gaj-officer").await;
    let page = w.get("/compliance", &officer).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("href=\"/compliance\"") && page.body.contains("应归尽归"));
    assert!(page.body.contains("共享责任清单为空"));
    assert!(!page.body.contains("responsibility-form"), "the form is for platform admins");

    let (admin, csrf) = w.sign_in_with_csrf("admin").await;
    let page = w.get("/compliance", &admin).await;
    assert!(page.body.contains("id=\"responsibility-form\"") && page.body.contains("value=\"ga-hjrk\""));
    let form = [("dataset", "ga-hjrk"), ("cycle", "daily"), ("note", "责任清单第1项")];
    let no_token = w.post("/compliance/responsibilities", &admin, &form).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    assert!(no_token.body.contains("csrf_failed"));
    let mut with_token = form.to_vec();
    with_token.push(("csrf", &csrf));
    let ok = w.post("/compliance/responsibilities", &admin, &with_token).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.header("location"), "/compliance?saved=ga-hjrk");
    let mut zzrk = vec![("dataset", "ga-zzrk"), ("cycle", "monthly"), ("note", "")];
    zzrk.push(("csrf", &csrf));
    assert_eq!(w.post("/compliance/responsibilities", &admin, &zzrk).await.status, StatusCode::SEE_OTHER);

    // The officer delivers 户籍人口: on time; 暂住人口 was never delivered.
    let (jar, ocsrf) = w.sign_in_with_csrf("gaj-officer").await;
    let csv = population_csv(&[id_number("32040219900307123")], &["张三"]);
    w.upload("ga-hjrk", &jar, &[("csrf", &ocsrf)], Some(("a.csv", &csv))).await;
    let page = w.get("/compliance", &officer).await;
    for s in [
        "id=\"c-listed\">2<",
        "id=\"c-current\">1<",
        "id=\"c-never\">1<",
        "常州市公安局",
        "href=\"/catalog/ga-hjrk\"",
        "责任清单第1项",
        "badge-green\">按时",
        "badge-grey\">从未交付",
        "class=\"donut-seg donut-current\"",
        "每月",
    ] {
        assert!(page.body.contains(s), "compliance page lacks {s}");
    }
    let saved = w.get("/compliance?saved=ga-hjrk", &admin).await;
    assert!(saved.body.contains("已保存责任清单条目"));

    // Officers cannot change the list, even with their own token.
    let mut by_officer = form.to_vec();
    by_officer.push(("csrf", &ocsrf));
    assert_eq!(w.post("/compliance/responsibilities", &jar, &by_officer).await.status, StatusCode::FORBIDDEN);
    // Bad cycle: refused.
    let mut bad_cycle = vec![("dataset", "ga-hjrk"), ("cycle", "hourly")];
    bad_cycle.push(("csrf", &csrf));
    assert_eq!(w.post("/compliance/responsibilities", &admin, &bad_cycle).await.status, StatusCode::BAD_REQUEST);

    // Remove: needs the token too.
    let del = "/compliance/responsibilities/ga-zzrk/delete";
    assert_eq!(w.post(del, &admin, &[]).await.status, StatusCode::FORBIDDEN);
    let gone = w.post(del, &admin, &[("csrf", &csrf)]).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    let page = w.get("/compliance", &admin).await;
    assert!(page.body.contains("id=\"c-listed\">1<"));
    assert_eq!(w.post(del, &admin, &[("csrf", &csrf)]).await.status, StatusCode::NOT_FOUND);
}

// ------------------------------------------------------------------ audit chain

#[tokio::test]
async fn the_audit_page_shows_hashes_and_checkpoint_status() {
    use govhub_core::audit::{checkpoint_message, Checkpoint};
    use govhub_core::signer::{PlatformSigner, Sm2Signer};
    let w = world().await;
    let jar = w.sign_in("admin").await;
    let r = w.get("/audit", &jar).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("尚无签名检查点") && r.body.contains("待签名") && !r.body.contains("✓ 已签名"));
    let head = w.state.hub.store().audit_head().await.unwrap().unwrap();
    assert!(r.body.contains(&head.hash[..12]), "the head's hash is shown");

    let signer = Sm2Signer::ephemeral().unwrap();
    let at = start();
    let signature = signer.sign(&checkpoint_message(head.seq, &head.hash, at)).unwrap();
    let cp = Checkpoint {
        seq: head.seq,
        head_hash: head.hash.clone(),
        at,
        signature,
        key_fingerprint: signer.fingerprint(),
    };
    w.state.hub.store().insert_checkpoint(&cp).await.unwrap();
    let r = w.get("/audit", &jar).await;
    assert!(r.body.contains(&format!("#{}", head.seq)) && r.body.contains("✓ 已签名"), "{}", r.body);
    // The entry of this very page view comes after the checkpoint: still pending.
    assert!(r.body.contains("待签名"));
}

#[tokio::test]
async fn a_citizen_sees_which_departments_read_records_about_them() {
    let w = world().await;
    let input = NewUser {
        username: Username::parse("lisi").unwrap(),
        password: PASSWORD.into(),
        role: Role::Citizen,
        org: None,
        display_name: "李四".into(),
        subject_id: Some("32040219900101123X".into()),
    };
    w.state.hub.create_user(&Principal::system(), input, &Ctx::default()).await.unwrap();
    let read = |subjects: Vec<String>, purpose: &str| NewAuditEvent {
        at: start(),
        actor: "rsj-app".into(),
        actor_role: Some(Role::AppDeveloper),
        actor_org: Some(OrgCode::parse("cz-gaj").unwrap()),
        on_behalf_of: None,
        action: "share.read".into(),
        target: "ga-hjrk".into(),
        outcome: Outcome::Allowed,
        detail: json!({}),
        request_id: None,
        app: Some("社保资格认证".into()),
        purpose: Some(purpose.into()),
        rows: Some(1),
        subjects,
    };
    let store = w.state.hub.store();
    store.append_audit(&read(vec!["32040219900101123x".into()], "养老金资格认证")).await.unwrap();
    store.append_audit(&read(vec!["110101199003070000".into()], "别人的记录")).await.unwrap();

    let jar = w.sign_in("lisi").await;
    let me = w.get("/me", &jar).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert!(me.body.contains("我的数据使用记录") && me.body.contains("常州市公安局"), "{}", me.body);
    assert!(me.body.contains("养老金资格认证") && !me.body.contains("别人的记录"));
    // A citizen account without a registered ID number has no such record.
    let other = w.get("/me", &w.sign_in("citizen").await).await;
    assert!(!other.body.contains("我的数据使用记录"));
}
#[path = "sharing_tests.rs"]
mod sharing;
