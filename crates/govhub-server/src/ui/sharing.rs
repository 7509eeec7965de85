//! Sharing pages (共享): the approver's inbox and the decision form, an app
//! developer's apps with their tokens, requests and grants, the consumers section of a
//! dataset page, and the consumer API's usage (platform administrators). Every read and
//! every action goes through one `Hub` call, which authorizes and audits; the `decide`
//! calls here only choose which buttons to show.

use super::i18n::Lang;
use super::session::{csrf_failed, csrf_ok, see_other, urlencode, PageCtx, Viewer, WebUser};
use super::view::{local_time, Badge, Choice};
use super::{render_page, respond};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Form;
use chrono::{Duration, NaiveDate};
use govhub_core::authz::{decide, Action, Decision, Principal};
use govhub_core::model::{Dataset, DatasetQuery, Role, SharingClass};
use govhub_core::sharing::{
    china_date, AccessRequest, AccessRequestInput, AccessRequestQuery, AppInput, AppToken, DecisionInput, Grant,
    GrantQuery, RequestStatus,
};
use govhub_core::{Code, Error, Result};
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Decided requests listed under the inbox.
const DECIDED_SHOWN: usize = 30;
/// The default period of a new request.
const DEFAULT_REQUEST_DAYS: i64 = 365;

fn allowed(p: &Principal, action: &Action<'_>) -> bool {
    matches!(decide(p, action), Decision::Allow { .. })
}

fn pick(lang: Lang, zh: &'static str, en: &'static str) -> &'static str {
    if lang == Lang::Zh {
        zh
    } else {
        en
    }
}

fn bad(field: &str, en: impl Into<String>, zh: impl Into<String>) -> Error {
    Error::new(Code::InvalidRequest, en, zh).with_field(field)
}

fn form_error(e: FormRejection) -> ApiError {
    ApiError(Error::new(Code::InvalidRequest, e.body_text(), "表单内容不合法"))
}

fn is_admin(p: &Principal) -> bool {
    p.role == Role::PlatformAdmin && p.app.is_none()
}

// ------------------------------------------------------------------ labels

pub fn request_badge(s: RequestStatus, lang: Lang) -> Badge {
    match s {
        RequestStatus::Pending => Badge { label: pick(lang, "待审批", "pending"), tone: "amber" },
        RequestStatus::Granted => Badge { label: pick(lang, "已授权", "granted"), tone: "green" },
        RequestStatus::Refused => Badge { label: pick(lang, "已拒绝", "refused"), tone: "red" },
    }
}

pub fn grant_badge(state: &str, lang: Lang) -> Badge {
    match state {
        "active" => Badge { label: pick(lang, "有效", "active"), tone: "green" },
        "expired" => Badge { label: pick(lang, "已到期", "expired"), tone: "grey" },
        _ => Badge { label: pick(lang, "已撤销", "revoked"), tone: "red" },
    }
}

// ------------------------------------------------------------------- names

/// Display names of the organisations, datasets and apps a page mentions.
struct Names {
    orgs: HashMap<String, String>,
    datasets: HashMap<String, Dataset>,
    apps: HashMap<i64, String>,
}

impl Names {
    /// Organisations and the catalog (both readable by all government staff).
    async fn load(st: &AppState, page: &PageCtx, p: &Principal) -> Result<Names> {
        let orgs = st.hub.list_orgs(p, &page.ctx).await?;
        let catalog = st.hub.search_datasets(p, &DatasetQuery { limit: 500, ..Default::default() }, &page.ctx).await?;
        Ok(Names {
            orgs: orgs.into_iter().map(|o| (o.code.to_string(), o.name)).collect(),
            datasets: catalog.items.into_iter().map(|d| (d.code.to_string(), d)).collect(),
            apps: HashMap::new(),
        })
    }

    /// The names of the apps of requests and grants the Hub has just returned to this
    /// viewer (so the viewer is already entitled to see them). An app's name is not
    /// protected data — like the organisation names in the header, it is looked up
    /// without a second audited decision.
    async fn with_apps(mut self, st: &AppState, ids: Vec<i64>) -> Result<Names> {
        for id in ids {
            if let std::collections::hash_map::Entry::Vacant(e) = self.apps.entry(id) {
                let app = st.hub.store().get_app(id).await.map_err(govhub_core::service::store_err)?;
                e.insert(app.map(|a| a.name).unwrap_or_else(|| format!("#{id}")));
            }
        }
        Ok(self)
    }

    fn org(&self, code: &str) -> String {
        self.orgs.get(code).cloned().unwrap_or_else(|| code.to_string())
    }
    fn dataset_name(&self, code: &str) -> String {
        self.datasets.get(code).map(|d| d.name.clone()).unwrap_or_else(|| code.to_string())
    }
    fn app(&self, id: i64) -> String {
        self.apps.get(&id).cloned().unwrap_or_else(|| format!("#{id}"))
    }

    /// Fields with their titles and the 敏感 marker.
    fn fields(&self, dataset: &str, names: &[String], clear: &[String]) -> Vec<FieldTag> {
        let d = self.datasets.get(dataset);
        names
            .iter()
            .map(|n| {
                let f = d.and_then(|d| d.schema.field(n));
                FieldTag {
                    name: n.clone(),
                    title: f.and_then(|f| f.title.clone()).unwrap_or_default(),
                    sensitive: f.is_some_and(|f| f.sensitive),
                    clear: clear.contains(n),
                    checked: true,
                }
            })
            .collect()
    }
}

// ------------------------------------------------------------------- views

#[derive(Debug, Clone, Serialize)]
pub struct FieldTag {
    pub name: String,
    pub title: String,
    pub sensitive: bool,
    /// Asked for (or granted) in clear text.
    pub clear: bool,
    pub checked: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestRow {
    pub id: i64,
    pub app_id: i64,
    pub app_name: String,
    pub app_org: String,
    pub app_org_name: String,
    pub dataset: String,
    pub dataset_name: String,
    pub provider: String,
    pub provider_name: String,
    pub fields: Vec<FieldTag>,
    pub purpose: String,
    pub legal_basis: String,
    pub valid_until: String,
    pub requested_by: String,
    pub requested_at: String,
    pub due_on: String,
    pub overdue: bool,
    pub pending: bool,
    pub status: Badge,
    pub decided_by: String,
    pub decided_at: String,
    pub reason: String,
    pub grant_id: Option<i64>,
}

impl RequestRow {
    fn new(r: &AccessRequest, n: &Names, today: NaiveDate, lang: Lang) -> RequestRow {
        let (dataset, provider, app_org) = (r.dataset.to_string(), r.provider.to_string(), r.app_org.to_string());
        RequestRow {
            id: r.id,
            app_id: r.app_id,
            app_name: n.app(r.app_id),
            app_org_name: n.org(&app_org),
            app_org,
            dataset_name: n.dataset_name(&dataset),
            fields: n.fields(&dataset, &r.fields, &r.clear_fields),
            dataset,
            provider_name: n.org(&provider),
            provider,
            purpose: r.purpose.clone(),
            legal_basis: r.legal_basis.clone(),
            valid_until: r.valid_until.to_string(),
            requested_by: r.requested_by.clone(),
            requested_at: local_time(r.requested_at),
            due_on: r.due_on.to_string(),
            overdue: r.overdue_on(today),
            pending: r.status == RequestStatus::Pending,
            status: request_badge(r.status, lang),
            decided_by: r.decided_by.clone().unwrap_or_default(),
            decided_at: r.decided_at.map(local_time).unwrap_or_default(),
            reason: r.reason.clone().unwrap_or_default(),
            grant_id: r.grant_id,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GrantRow {
    pub id: i64,
    pub request_id: i64,
    pub app_id: i64,
    pub app_name: String,
    pub app_org: String,
    pub app_org_name: String,
    pub dataset: String,
    pub dataset_name: String,
    pub provider_name: String,
    pub fields: Vec<FieldTag>,
    pub purpose: String,
    pub valid_until: String,
    pub granted_by: String,
    pub granted_at: String,
    pub state: Badge,
    pub active: bool,
    pub revoked_at: String,
    pub revoked_by: String,
    pub revoke_reason: String,
    pub can_revoke: bool,
}

impl GrantRow {
    fn new(g: &Grant, n: &Names, p: &Principal, today: NaiveDate, lang: Lang) -> GrantRow {
        let (dataset, app_org) = (g.dataset.to_string(), g.app_org.to_string());
        let active = g.active_on(today);
        GrantRow {
            id: g.id,
            request_id: g.request_id,
            app_id: g.app_id,
            app_name: n.app(g.app_id),
            app_org_name: n.org(&app_org),
            app_org,
            dataset_name: n.dataset_name(&dataset),
            fields: n.fields(&dataset, &g.fields, &g.clear_fields),
            dataset,
            provider_name: n.org(g.provider.as_str()),
            purpose: g.purpose.clone(),
            valid_until: g.valid_until.to_string(),
            granted_by: g.granted_by.clone(),
            granted_at: local_time(g.granted_at),
            state: grant_badge(g.state_on(today), lang),
            active,
            revoked_at: g.revoked_at.map(local_time).unwrap_or_default(),
            revoked_by: g.revoked_by.clone().unwrap_or_default(),
            revoke_reason: g.revoke_reason.clone().unwrap_or_default(),
            can_revoke: g.revoked_at.is_none()
                && allowed(p, &Action::RevokeGrant { provider: &g.provider, app_org: &g.app_org }),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct TokenRow {
    id: i64,
    hint: String,
    created_at: String,
    revoked_at: String,
    revoked: bool,
}

impl TokenRow {
    fn new(t: &AppToken) -> TokenRow {
        TokenRow {
            id: t.id,
            hint: t.hint.clone(),
            created_at: local_time(t.created_at),
            revoked_at: t.revoked_at.map(local_time).unwrap_or_default(),
            revoked: t.revoked_at.is_some(),
        }
    }
}

fn today(st: &AppState) -> NaiveDate {
    china_date(st.hub.clock().now())
}

/// `a=1&b=2` pairs of a form, repeated keys kept (checkbox lists).
type Pairs = Vec<(String, String)>;

fn one<'a>(pairs: &'a Pairs, key: &str) -> &'a str {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or_default()
}

fn all(pairs: &Pairs, key: &str) -> Vec<String> {
    pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.trim().to_string()).filter(|v| !v.is_empty()).collect()
}

fn date(field: &str, v: &str) -> Result<Option<NaiveDate>> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| bad(field, format!("{field} must be a date like 2026-12-31"), "日期格式应为 2026-12-31"))
}

fn check_csrf(v: &Viewer, pairs: &Pairs) -> std::result::Result<(), ApiError> {
    if csrf_ok(&v.csrf, one(pairs, "csrf")) {
        Ok(())
    } else {
        Err(csrf_failed())
    }
}

// ------------------------------------------------------------------- inbox

#[derive(Debug, Default, Deserialize)]
pub struct InboxParams {
    #[serde(default)]
    pub overdue: Option<String>,
    #[serde(default)]
    pub decided: Option<String>,
    #[serde(default)]
    pub outcome: Option<String>,
}

/// `GET /sharing/inbox`: pending requests for the approver's organisation (all of
/// them, city-wide, for a platform admin; `?overdue=1` keeps the late ones), then the
/// recently decided ones.
pub async fn inbox(
    State(st): State<AppState>,
    user: WebUser,
    q: std::result::Result<Query<InboxParams>, QueryRejection>,
) -> Response {
    let Query(q) = q.unwrap_or_default();
    let result = inbox_page(&st, &user.page, &user.viewer, q).await;
    respond(&st, &user.page, Some(&user.viewer), result)
}

async fn inbox_page(st: &AppState, page: &PageCtx, v: &Viewer, q: InboxParams) -> Result<Response> {
    let p = &v.principal;
    let lang = page.lang;
    let overdue_only = q.overdue.as_deref() == Some("1");
    let admin = is_admin(p);
    let provider = if admin { None } else { p.org.clone() };
    let base = AccessRequestQuery { provider, limit: 500, ..Default::default() };
    let pending = st
        .hub
        .list_access_requests(
            p,
            AccessRequestQuery { status: Some(RequestStatus::Pending), ..base.clone() },
            overdue_only,
            &page.ctx,
        )
        .await?;
    let mut decided =
        st.hub.list_access_requests(p, AccessRequestQuery { limit: 200, ..base }, false, &page.ctx).await?;
    decided.retain(|r| r.status != RequestStatus::Pending);
    decided.sort_by_key(|r| std::cmp::Reverse((r.decided_at, r.id)));
    decided.truncate(DECIDED_SHOWN);
    let names = Names::load(st, page, p)
        .await?
        .with_apps(st, pending.iter().chain(&decided).map(|r| r.app_id).collect())
        .await?;
    let today = today(st);
    let mut pending: Vec<RequestRow> = pending.iter().map(|r| RequestRow::new(r, &names, today, lang)).collect();
    pending.sort_by(|a, b| (&a.due_on, a.id).cmp(&(&b.due_on, b.id)));
    let overdue_count = pending.iter().filter(|r| r.overdue).count();
    let decided_id = q.decided.as_deref().and_then(|d| d.parse::<i64>().ok());
    let outcome = match q.outcome.as_deref() {
        Some("granted") => Some(request_badge(RequestStatus::Granted, lang)),
        Some("refused") => Some(request_badge(RequestStatus::Refused, lang)),
        _ => None,
    };
    let extra = context! {
        admin => admin,
        overdue_only => overdue_only,
        pending => pending,
        overdue_count => overdue_count,
        decided => decided.iter().map(|r| RequestRow::new(r, &names, today, lang)).collect::<Vec<_>>(),
        decided_id => decided_id,
        outcome => outcome,
        today => today.to_string(),
    };
    render_page(st, page, Some(v), "sharing_inbox.html", "sharing_inbox", StatusCode::OK, extra)
}

// ----------------------------------------------------------------- request

/// `GET /sharing/requests/{id}`: one request; the decision form while it is pending
/// and the viewer is the provider's approver.
pub async fn request(State(st): State<AppState>, user: WebUser, Path(id): Path<i64>) -> Response {
    let result = request_page(&st, &user.page, &user.viewer, id).await;
    respond(&st, &user.page, Some(&user.viewer), result)
}

async fn request_page(st: &AppState, page: &PageCtx, v: &Viewer, id: i64) -> Result<Response> {
    let p = &v.principal;
    let lang = page.lang;
    let r = st.hub.get_access_request(p, id, &page.ctx).await?;
    let names = Names::load(st, page, p).await?.with_apps(st, vec![r.app_id]).await?;
    let today = today(st);
    let grant = match r.grant_id {
        Some(g) => Some(st.hub.get_grant(p, g, &page.ctx).await?),
        None => None,
    };
    let can_decide = r.status == RequestStatus::Pending && allowed(p, &Action::DecideAccess { provider: &r.provider });
    let clear_choices: Vec<FieldTag> = names
        .fields(r.dataset.as_str(), &r.clear_fields, &r.clear_fields)
        .into_iter()
        .filter(|f| f.sensitive)
        .collect();
    let extra = context! {
        r => RequestRow::new(&r, &names, today, lang),
        grant => grant.as_ref().map(|g| GrantRow::new(g, &names, p, today, lang)),
        can_decide => can_decide,
        provider_side => allowed(p, &Action::DecideAccess { provider: &r.provider }),
        clear_choices => clear_choices,
        today => today.to_string(),
    };
    let nav =
        if allowed(p, &Action::DecideAccess { provider: &r.provider }) { "sharing_inbox" } else { "sharing_apps" };
    render_page(st, page, Some(v), "sharing_request.html", nav, StatusCode::OK, extra)
}

/// `POST /sharing/requests/{id}/decision`: approve (possibly fewer fields, a shorter
/// period) or refuse, with a reason; back to the inbox with the outcome.
pub async fn decide_request(
    State(st): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
    form: std::result::Result<Form<Pairs>, FormRejection>,
) -> std::result::Result<Response, ApiError> {
    let Form(pairs) = form.map_err(form_error)?;
    check_csrf(&user.viewer, &pairs)?;
    let result = async {
        let approve = match one(&pairs, "decision") {
            "approve" => true,
            "refuse" => false,
            _ => return Err(bad("decision", "choose approve or refuse", "请选择同意或拒绝")),
        };
        let input = DecisionInput {
            approve,
            fields: approve.then(|| all(&pairs, "fields")),
            clear_fields: approve.then(|| all(&pairs, "clear_fields")),
            valid_until: if approve { date("valid_until", one(&pairs, "valid_until"))? } else { None },
            reason: one(&pairs, "reason").to_string(),
        };
        let r = st.hub.decide_access(&user.viewer.principal, id, input, &user.page.ctx).await?;
        Ok(see_other(&format!("/sharing/inbox?decided={}&outcome={}", r.id, r.status.as_str()), []))
    }
    .await;
    Ok(respond(&st, &user.page, Some(&user.viewer), result))
}

// -------------------------------------------------------------------- apps

#[derive(Debug, Default, Deserialize)]
pub struct AppsParams {
    #[serde(default)]
    pub org: Option<String>,
}

/// `GET /sharing/apps`: the apps of the viewer's organisation (a platform admin picks
/// the organisation) and the form to register one.
pub async fn apps(
    State(st): State<AppState>,
    user: WebUser,
    q: std::result::Result<Query<AppsParams>, QueryRejection>,
) -> Response {
    let Query(q) = q.unwrap_or_default();
    let result = apps_page(&st, &user.page, &user.viewer, q).await;
    respond(&st, &user.page, Some(&user.viewer), result)
}

async fn apps_page(st: &AppState, page: &PageCtx, v: &Viewer, q: AppsParams) -> Result<Response> {
    let p = &v.principal;
    let admin = is_admin(p);
    let chosen = q.org.as_deref().map(str::trim).filter(|o| !o.is_empty() && admin).map(str::to_string);
    let list = st.hub.list_apps(p, chosen.as_deref(), &page.ctx).await?;
    let orgs = st.hub.list_orgs(p, &page.ctx).await?;
    let current = chosen.or_else(|| p.org.as_ref().map(ToString::to_string)).unwrap_or_default();
    let names: HashMap<String, String> = orgs.iter().map(|o| (o.code.to_string(), o.name.clone())).collect();
    let org_choices: Vec<Choice> = if admin {
        super::view::org_tree(&orgs, page.lang)
            .into_iter()
            .map(|o| Choice {
                selected: o.code == current,
                label: format!("{}{}", "　".repeat(o.depth.min(4)), o.name),
                value: o.code,
            })
            .collect()
    } else {
        Vec::new()
    };
    let can_create = p.org.is_some() && {
        let org = govhub_core::names::OrgCode::parse(&current).ok();
        org.is_some_and(|o| allowed(p, &Action::ManageApps { org: &o }))
    };
    let rows: Vec<Value> = list
        .iter()
        .map(|a| {
            context! {
                id => a.id, name => a.name.clone(), org => a.org.to_string(),
                org_name => names.get(a.org.as_str()).cloned().unwrap_or_else(|| a.org.to_string()),
                created_by => a.created_by.clone(), created_at => local_time(a.created_at),
            }
        })
        .collect();
    let extra = context! {
        apps => rows,
        admin => admin,
        org => current.clone(),
        org_name => names.get(&current).cloned().unwrap_or_default(),
        org_choices => org_choices,
        can_create => can_create,
    };
    render_page(st, page, Some(v), "sharing_apps.html", "sharing_apps", StatusCode::OK, extra)
}

/// `POST /sharing/apps`: register an app.
pub async fn create_app(
    State(st): State<AppState>,
    user: WebUser,
    form: std::result::Result<Form<Pairs>, FormRejection>,
) -> std::result::Result<Response, ApiError> {
    let Form(pairs) = form.map_err(form_error)?;
    check_csrf(&user.viewer, &pairs)?;
    let result = async {
        let input = AppInput { name: one(&pairs, "name").to_string(), org: one(&pairs, "org").to_string() };
        let app = st.hub.create_app(&user.viewer.principal, input, &user.page.ctx).await?;
        Ok(see_other(&format!("/sharing/apps/{}?created=1", app.id), []))
    }
    .await;
    Ok(respond(&st, &user.page, Some(&user.viewer), result))
}

#[derive(Debug, Default, Deserialize)]
pub struct AppParams {
    #[serde(default)]
    pub dataset: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub requested: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub token_revoked: Option<String>,
    #[serde(default)]
    pub revoked: Option<String>,
}

/// `GET /sharing/apps/{id}`: an app's tokens, requests and grants, and the form to
/// request access (`?dataset=` picks the dataset whose fields are offered).
pub async fn app(
    State(st): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
    q: std::result::Result<Query<AppParams>, QueryRejection>,
) -> Response {
    let Query(q) = q.unwrap_or_default();
    let result = app_page(&st, &user.page, &user.viewer, id, q, None).await;
    respond(&st, &user.page, Some(&user.viewer), result)
}

/// A webhook subscription on the app page: the target without its query (which may
/// hold the receiver's token), the state, the next attempt when retrying.
#[derive(Debug, Clone, Serialize)]
struct WebhookRow {
    id: i64,
    dataset_name: String,
    target: String,
    fields: String,
    state: Badge,
    failures: i64,
    next_attempt_at: Option<String>,
    last_success_at: Option<String>,
    last_error: Option<String>,
}

impl WebhookRow {
    fn new(w: &govhub_core::webhook::Webhook, names: &Names, lang: Lang) -> WebhookRow {
        use govhub_core::webhook::WebhookState;
        let t = super::i18n::table(lang);
        let label = |k: &str| t.get(k).copied().unwrap_or_default();
        let state = match w.state() {
            WebhookState::Ok => Badge { label: label("webhook_ok"), tone: "green" },
            WebhookState::Retrying => Badge { label: label("webhook_retrying"), tone: "amber" },
            WebhookState::Failing => Badge { label: label("webhook_failing"), tone: "red" },
        };
        WebhookRow {
            id: w.id,
            dataset_name: names.dataset_name(w.dataset.as_str()),
            target: w.url.split(['?', '#']).next().unwrap_or_default().to_string(),
            fields: match &w.fields {
                Some(f) => f.join(", "),
                None => label("webhook_all_fields").to_string(),
            },
            state,
            failures: w.failures,
            next_attempt_at: (w.failures > 0).then(|| local_time(w.next_attempt_at)),
            last_success_at: w.last_success_at.map(local_time),
            last_error: w.last_error.clone(),
        }
    }
}

/// A secret just issued, shown once.
#[derive(Debug, Clone, Serialize)]
struct NewToken {
    token: String,
    hint: String,
}

async fn app_page(
    st: &AppState,
    page: &PageCtx,
    v: &Viewer,
    id: i64,
    q: AppParams,
    new_token: Option<NewToken>,
) -> Result<Response> {
    let p = &v.principal;
    let lang = page.lang;
    let app = st.hub.get_app(p, id, &page.ctx).await?;
    let tokens = st.hub.list_app_tokens(p, id, &page.ctx).await?;
    let requests = st
        .hub
        .list_access_requests(
            p,
            AccessRequestQuery { app_id: Some(id), limit: 200, ..Default::default() },
            false,
            &page.ctx,
        )
        .await?;
    let grants =
        st.hub.list_grants(p, GrantQuery { app_id: Some(id), limit: 200, ..Default::default() }, &page.ctx).await?;
    let webhooks = st.hub.list_webhooks(p, id, &page.ctx).await?;
    let names = Names::load(st, page, p).await?.with_apps(st, vec![id]).await?;
    let today = today(st);
    let can_manage = allowed(p, &Action::ManageApps { org: &app.org });

    // The request form: shareable datasets, and the chosen one's fields.
    let mut shareable: Vec<&Dataset> =
        names.datasets.values().filter(|d| d.sharing_class != SharingClass::NotShared).collect();
    shareable.sort_by(|a, b| a.code.as_str().cmp(b.code.as_str()));
    let wanted = q.dataset.as_deref().map(str::trim).filter(|d| !d.is_empty());
    // The datalist offers "名称（代码）"; either part picks the dataset.
    let chosen = wanted.and_then(|w| {
        let code = w.rsplit_once('（').map(|(_, c)| c.trim_end_matches('）')).unwrap_or(w);
        shareable.iter().find(|d| d.code.as_str() == code || d.name == w).copied()
    });
    let dataset_choices: Vec<Choice> = shareable
        .iter()
        .map(|d| Choice {
            value: d.code.to_string(),
            label: format!("{}（{}）", d.name, d.code),
            selected: chosen.is_some_and(|c| c.code == d.code),
        })
        .collect();
    let chosen_view = chosen.map(|d| {
        let sharing = super::view::sharing_label(d.sharing_class, lang);
        context! {
            code => d.code.to_string(),
            name => d.name.clone(),
            provider_name => names.org(d.provider.as_str()),
            sharing => Badge { label: sharing, tone: super::view::sharing_tone(d.sharing_class) },
            unconditional => d.sharing_class == SharingClass::Unconditional,
            condition => d.sharing_condition.clone().unwrap_or_default(),
            has_sensitive => d.schema.fields.iter().any(|f| f.sensitive),
            fields => d.schema.fields.iter().map(|f| FieldTag {
                name: f.name.clone(),
                title: f.title.clone().unwrap_or_default(),
                sensitive: f.sensitive,
                clear: false,
                checked: false,
            }).collect::<Vec<_>>(),
        }
    });
    let requested = q.requested.as_deref().and_then(|r| r.parse::<i64>().ok());
    let requested_status = match q.status.as_deref() {
        Some("granted") => Some(request_badge(RequestStatus::Granted, lang)),
        Some("pending") => Some(request_badge(RequestStatus::Pending, lang)),
        _ => None,
    };
    let org = app.org.to_string();
    let extra = context! {
        app => context! {
            id => app.id, name => app.name.clone(), org_name => names.org(&org), org => org,
            created_by => app.created_by.clone(), created_at => local_time(app.created_at),
        },
        can_manage => can_manage,
        tokens => tokens.iter().map(TokenRow::new).collect::<Vec<_>>(),
        requests => requests.iter().map(|r| RequestRow::new(r, &names, today, lang)).collect::<Vec<_>>(),
        grants => grants.iter().map(|g| GrantRow::new(g, &names, p, today, lang)).collect::<Vec<_>>(),
        webhooks => webhooks.iter().map(|w| WebhookRow::new(w, &names, lang)).collect::<Vec<_>>(),
        dataset_choices => dataset_choices,
        dataset_query => wanted.unwrap_or_default(),
        dataset_unknown => wanted.is_some() && chosen.is_none(),
        chosen => chosen_view,
        default_until => (today + Duration::days(DEFAULT_REQUEST_DAYS)).to_string(),
        today => today.to_string(),
        new_token => new_token,
        created => q.created.is_some(),
        requested => requested,
        requested_status => requested_status,
        token_revoked => q.token_revoked.as_deref().and_then(|t| t.parse::<i64>().ok()),
        revoked => q.revoked.as_deref().and_then(|t| t.parse::<i64>().ok()),
    };
    render_page(st, page, Some(v), "sharing_app.html", "sharing_apps", StatusCode::OK, extra)
}

/// `POST /sharing/apps/{id}/tokens`: a new token, whose secret is shown on the
/// resulting page once (never in a URL, never stored, not cached).
pub async fn create_token(
    State(st): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
    form: std::result::Result<Form<Pairs>, FormRejection>,
) -> std::result::Result<Response, ApiError> {
    let Form(pairs) = form.map_err(form_error)?;
    check_csrf(&user.viewer, &pairs)?;
    let result = async {
        let issued = st.hub.issue_app_token(&user.viewer.principal, id, &user.page.ctx).await?;
        let shown = NewToken { token: issued.token, hint: issued.info.hint };
        let mut r = app_page(&st, &user.page, &user.viewer, id, AppParams::default(), Some(shown)).await?;
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(r)
    }
    .await;
    Ok(respond(&st, &user.page, Some(&user.viewer), result))
}

/// `POST /sharing/apps/{id}/tokens/{token}/revoke`.
pub async fn revoke_token(
    State(st): State<AppState>,
    user: WebUser,
    Path((id, token)): Path<(i64, i64)>,
    form: std::result::Result<Form<Pairs>, FormRejection>,
) -> std::result::Result<Response, ApiError> {
    let Form(pairs) = form.map_err(form_error)?;
    check_csrf(&user.viewer, &pairs)?;
    let result = async {
        st.hub.revoke_app_token(&user.viewer.principal, id, token, &user.page.ctx).await?;
        Ok(see_other(&format!("/sharing/apps/{id}?token_revoked={token}#tokens"), []))
    }
    .await;
    Ok(respond(&st, &user.page, Some(&user.viewer), result))
}

/// `POST /sharing/apps/{id}/requests`: ask for access to a dataset.
pub async fn request_access(
    State(st): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
    form: std::result::Result<Form<Pairs>, FormRejection>,
) -> std::result::Result<Response, ApiError> {
    let Form(pairs) = form.map_err(form_error)?;
    check_csrf(&user.viewer, &pairs)?;
    let result = async {
        let valid_until = date("valid_until", one(&pairs, "valid_until"))?
            .ok_or_else(|| bad("valid_until", "valid_until is required", "请填写有效期截止日"))?;
        let input = AccessRequestInput {
            app: id,
            dataset: one(&pairs, "dataset").trim().to_string(),
            fields: all(&pairs, "fields"),
            clear_fields: all(&pairs, "clear_fields"),
            purpose: one(&pairs, "purpose").to_string(),
            legal_basis: one(&pairs, "legal_basis").to_string(),
            valid_until,
        };
        let r = st.hub.request_access(&user.viewer.principal, input, &user.page.ctx).await?;
        Ok(see_other(&format!("/sharing/apps/{id}?requested={}&status={}#requests", r.id, r.status.as_str()), []))
    }
    .await;
    Ok(respond(&st, &user.page, Some(&user.viewer), result))
}

/// `POST /sharing/grants/{id}/revoke`: revoke at once, with a reason; back to the
/// dataset page (`from=dataset`) or the app page.
pub async fn revoke_grant(
    State(st): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
    form: std::result::Result<Form<Pairs>, FormRejection>,
) -> std::result::Result<Response, ApiError> {
    let Form(pairs) = form.map_err(form_error)?;
    check_csrf(&user.viewer, &pairs)?;
    let result = async {
        let reason = one(&pairs, "reason").trim().to_string();
        if reason.is_empty() {
            return Err(bad("reason", "give the reason for revoking", "请填写撤销理由"));
        }
        let reason: String = reason.chars().take(500).collect();
        let g = st.hub.revoke_grant(&user.viewer.principal, id, Some(reason), &user.page.ctx).await?;
        let to = if one(&pairs, "from") == "app" {
            format!("/sharing/apps/{}?revoked={id}#grants", g.app_id)
        } else {
            format!("/catalog/{}?revoked={id}#consumers", urlencode(g.dataset.as_str()))
        };
        Ok(see_other(&to, []))
    }
    .await;
    Ok(respond(&st, &user.page, Some(&user.viewer), result))
}

// --------------------------------------------------------- dataset section

/// The 数据使用方 section of a dataset page: grants on the dataset, for the
/// provider's staff and platform admins; `None` for everyone else.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumersSection {
    pub grants: Vec<GrantRow>,
    pub reads_href: String,
    pub revoked: Option<i64>,
}

pub async fn consumers_section(
    st: &AppState,
    page: &PageCtx,
    v: &Viewer,
    d: &Dataset,
    revoked: Option<i64>,
) -> Result<Option<ConsumersSection>> {
    let p = &v.principal;
    if !allowed(p, &Action::ReadSharing { org: &d.provider }) {
        return Ok(None);
    }
    let q = GrantQuery { dataset: Some(d.code.clone()), limit: 200, ..Default::default() };
    let grants = st.hub.list_grants(p, q, &page.ctx).await?;
    let names = Names::load(st, page, p).await?.with_apps(st, grants.iter().map(|g| g.app_id).collect()).await?;
    let today = today(st);
    Ok(Some(ConsumersSection {
        grants: grants.iter().map(|g| GrantRow::new(g, &names, p, today, page.lang)).collect(),
        reads_href: format!("/audit?action=share.read&target={}", urlencode(d.code.as_str())),
        revoked,
    }))
}

/// One dataset's use by one app, as the usage page shows it. The bar's parts are widths
/// in a 0–1000 view box, scaled to the busiest row.
#[derive(Debug, Serialize)]
struct UsageRow {
    dataset: String,
    app: i64,
    app_name: String,
    requests: u64,
    rows: u64,
    errors: u64,
    mean_ms: String,
    p99_ms: String,
    ok_width: String,
    err_width: String,
}

/// `GET /sharing/usage`: the consumer API's use in this process by dataset and app, and
/// the audit writer's group commits (platform administrators).
pub async fn usage(State(st): State<AppState>, user: WebUser) -> Response {
    let result = usage_page(&st, &user.page, &user.viewer).await;
    respond(&st, &user.page, Some(&user.viewer), result)
}

async fn usage_page(st: &AppState, page: &PageCtx, v: &Viewer) -> Result<Response> {
    let names: HashMap<i64, String> =
        st.hub.usage_apps(&v.principal, &page.ctx).await?.into_iter().map(|a| (a.id, a.name)).collect();
    let usage = st.metrics.share_usage();
    let busiest = usage.iter().map(|(_, _, u)| u.requests).max().unwrap_or(0).max(1);
    let width = |n: u64| format!("{:.1}", n as f64 * 1000.0 / busiest as f64);
    let rows: Vec<UsageRow> = usage
        .into_iter()
        .map(|(dataset, app, u)| UsageRow {
            app_name: names.get(&app).cloned().unwrap_or_else(|| format!("#{app}")),
            mean_ms: format!("{:.2}", u.mean_ms()),
            p99_ms: u.p99_ms().map_or_else(|| "-".to_string(), |ms| format!("≤ {ms}")),
            ok_width: width(u.requests.saturating_sub(u.errors)),
            err_width: width(u.errors.min(u.requests)),
            requests: u.requests,
            rows: u.rows,
            errors: u.errors,
            dataset,
            app,
        })
        .collect();
    let c = st.hub.store().audit_commits();
    let bound = |q: f64| match (c.commits, c.quantile(q)) {
        (0, _) => "-".to_string(),
        (_, Some(s)) => format!("≤ {} ms", s * 1000.0),
        (_, None) => pick(page.lang, "超过 2.5 秒", "over 2.5 s").to_string(),
    };
    let extra = context! {
        rows => rows,
        minutes => st.metrics.uptime().map_or(0, |d| d.as_secs() / 60),
        commits => c.commits,
        entries => c.entries,
        per_commit => format!("{:.1}", c.entries_per_commit()),
        commit_p50 => bound(0.5),
        commit_p99 => bound(0.99),
    };
    render_page(st, page, Some(v), "sharing_usage.html", "sharing_usage", StatusCode::OK, extra)
}
