//! Sharing: apps and their tokens, access requests and decisions, grants, the
//! working-day calendar, and the consumer API that granted apps call.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{AppJson, Auth, Bearer};
use crate::state::AppState;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use govhub_core::calendar::{CalendarDay, DayKind};
use govhub_core::cells::Cell;
use govhub_core::service::Hub;
use govhub_core::share::{ExportPlan, ShareRequest};
use govhub_core::sharing::*;
use govhub_core::{Code, Error};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

fn request_error(en: String, zh: String) -> ApiError {
    ApiError(Error::new(Code::InvalidRequest, en, zh))
}

fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, ApiError> {
    v.parse().map_err(|_| request_error(format!("{name} \"{v}\" is not a number"), format!("{name}“{v}”不是数字")))
}

// ------------------------------------------------------------------ apps

/// Register an app of an organisation (its app developers, or a platform admin).
#[utoipa::path(post, path = "/api/v1/apps", tag = "sharing", security(("bearer" = [])),
    request_body = AppInput,
    responses((status = 201, body = App), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_app(
    State(st): State<AppState>,
    auth: Auth,
    AppJson(input): AppJson<AppInput>,
) -> Result<(StatusCode, Json<App>), ApiError> {
    Ok((StatusCode::CREATED, Json(st.hub.create_app(&auth.principal, input, &auth.ctx).await?)))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AppList {
    /// Organisation code (default: the caller's own).
    pub org: Option<String>,
}

/// An organisation's apps.
#[utoipa::path(get, path = "/api/v1/apps", tag = "sharing", security(("bearer" = [])), params(AppList),
    responses((status = 200, body = [App]), (status = 403, body = ErrorBody)))]
pub async fn list_apps(
    State(st): State<AppState>,
    auth: Auth,
    Query(q): Query<AppList>,
) -> Result<Json<Vec<App>>, ApiError> {
    Ok(Json(st.hub.list_apps(&auth.principal, q.org.as_deref(), &auth.ctx).await?))
}

/// One app.
#[utoipa::path(get, path = "/api/v1/apps/{id}", tag = "sharing", security(("bearer" = [])),
    params(("id" = i64, Path, description = "app id")),
    responses((status = 200, body = App), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_app(State(st): State<AppState>, auth: Auth, Path(id): Path<i64>) -> Result<Json<App>, ApiError> {
    Ok(Json(st.hub.get_app(&auth.principal, id, &auth.ctx).await?))
}

/// A new bearer token for the app: `token` is shown this once. Older tokens stay
/// valid until revoked, so tokens rotate without downtime.
#[utoipa::path(post, path = "/api/v1/apps/{id}/tokens", tag = "sharing", security(("bearer" = [])),
    params(("id" = i64, Path, description = "app id")),
    responses((status = 201, body = IssuedAppToken), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_app_token(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<IssuedAppToken>), ApiError> {
    Ok((StatusCode::CREATED, Json(st.hub.issue_app_token(&auth.principal, id, &auth.ctx).await?)))
}

/// The app's tokens (without their secrets).
#[utoipa::path(get, path = "/api/v1/apps/{id}/tokens", tag = "sharing", security(("bearer" = [])),
    params(("id" = i64, Path, description = "app id")),
    responses((status = 200, body = [AppToken]), (status = 403, body = ErrorBody)))]
pub async fn list_app_tokens(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Json<Vec<AppToken>>, ApiError> {
    Ok(Json(st.hub.list_app_tokens(&auth.principal, id, &auth.ctx).await?))
}

/// Revoke one of the app's tokens, with immediate effect.
#[utoipa::path(delete, path = "/api/v1/apps/{id}/tokens/{token_id}", tag = "sharing", security(("bearer" = [])),
    params(("id" = i64, Path, description = "app id"), ("token_id" = i64, Path, description = "token id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_app_token(
    State(st): State<AppState>,
    auth: Auth,
    Path((id, token_id)): Path<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    st.hub.revoke_app_token(&auth.principal, id, token_id, &auth.ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------ webhooks

/// A webhook subscription as answered: the subscription and its state.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    #[serde(flatten)]
    pub webhook: govhub_core::webhook::Webhook,
    /// `ok`, `retrying` (with `next_attempt_at`) or `failing` (5 or more failures in a row).
    pub state: govhub_core::webhook::WebhookState,
}

impl From<govhub_core::webhook::Webhook> for WebhookView {
    fn from(webhook: govhub_core::webhook::Webhook) -> Self {
        WebhookView { state: webhook.state(), webhook }
    }
}

/// Subscribe the app to a dataset's changes: each new page of the change feed is
/// POSTed to `url`, signed with the platform key (docs/sharing.md, "Webhook push").
/// Needs a grant in force; `fields` narrows the granted fields.
#[utoipa::path(post, path = "/api/v1/apps/{id}/webhooks", tag = "sharing", security(("bearer" = [])),
    params(("id" = i64, Path, description = "app id")),
    request_body = govhub_core::webhook::WebhookInput,
    responses((status = 201, body = WebhookView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_webhook(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    AppJson(input): AppJson<govhub_core::webhook::WebhookInput>,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    let w = st.hub.create_webhook(&auth.principal, id, input, &auth.ctx).await?;
    Ok((StatusCode::CREATED, Json(w.into())))
}

/// The app's webhook subscriptions with their state.
#[utoipa::path(get, path = "/api/v1/apps/{id}/webhooks", tag = "sharing", security(("bearer" = [])),
    params(("id" = i64, Path, description = "app id")),
    responses((status = 200, body = [WebhookView]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_webhooks(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Json<Vec<WebhookView>>, ApiError> {
    let list = st.hub.list_webhooks(&auth.principal, id, &auth.ctx).await?;
    Ok(Json(list.into_iter().map(WebhookView::from).collect()))
}

/// Delete a subscription: no further pushes.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "sharing", security(("bearer" = [])),
    params(("id" = i64, Path, description = "webhook id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_webhook(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    st.hub.delete_webhook(&auth.principal, id, &auth.ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AttemptList {
    /// At most this many (default 50, at most 100).
    pub limit: Option<u32>,
}

/// Recent delivery attempts, newest first: time, HTTP status or error, next retry.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/attempts", tag = "sharing", security(("bearer" = [])),
    params(("id" = i64, Path, description = "webhook id"), AttemptList),
    responses((status = 200, body = [govhub_core::webhook::WebhookAttempt]), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn webhook_attempts(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Query(q): Query<AttemptList>,
) -> Result<Json<Vec<govhub_core::webhook::WebhookAttempt>>, ApiError> {
    Ok(Json(st.hub.webhook_attempts(&auth.principal, id, q.limit.unwrap_or(50), &auth.ctx).await?))
}

// ------------------------------------------------------------------ requests and grants

/// An access request as answered: the request plus whether it is overdue.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessRequestView {
    #[serde(flatten)]
    pub request: AccessRequest,
    /// Still pending after `due_on` (10 working days).
    pub overdue: bool,
}

fn view(hub: &Hub, r: AccessRequest) -> AccessRequestView {
    let today = govhub_core::sharing::china_date(hub.clock().now());
    AccessRequestView { overdue: r.overdue_on(today), request: r }
}

/// Ask for access to a dataset for an app: granted at once for 无条件共享 (`status`
/// `granted`), `pending` for 有条件共享 (the provider's approver decides within 10
/// working days), refused with `not_shareable` for 不予共享.
#[utoipa::path(post, path = "/api/v1/access-requests", tag = "sharing", security(("bearer" = [])),
    request_body = AccessRequestInput,
    responses((status = 201, body = AccessRequestView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_access_request(
    State(st): State<AppState>,
    auth: Auth,
    AppJson(input): AppJson<AccessRequestInput>,
) -> Result<(StatusCode, Json<AccessRequestView>), ApiError> {
    let r = st.hub.request_access(&auth.principal, input, &auth.ctx).await?;
    Ok((StatusCode::CREATED, Json(view(&st.hub, r))))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AccessRequestList {
    /// pending, granted or refused
    pub status: Option<String>,
    pub dataset: Option<String>,
    pub app: Option<i64>,
    /// Only requests still pending after their deadline.
    pub overdue: Option<bool>,
    pub limit: Option<u32>,
}

/// Requests involving the caller's organisation (as provider: the approver's inbox;
/// as requester); all of them for a platform admin.
#[utoipa::path(get, path = "/api/v1/access-requests", tag = "sharing", security(("bearer" = [])),
    params(AccessRequestList),
    responses((status = 200, body = [AccessRequestView]), (status = 403, body = ErrorBody)))]
pub async fn list_access_requests(
    State(st): State<AppState>,
    auth: Auth,
    Query(q): Query<AccessRequestList>,
) -> Result<Json<Vec<AccessRequestView>>, ApiError> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(RequestStatus::parse(s).ok_or_else(|| {
            request_error(
                format!("status \"{s}\" is not pending, granted or refused"),
                format!("状态“{s}”应为pending、granted或refused"),
            )
        })?),
    };
    let dataset = match q.dataset.as_deref() {
        None => None,
        Some(d) => Some(govhub_core::names::DatasetCode::parse(d).map_err(ApiError)?),
    };
    let query =
        AccessRequestQuery { status, dataset, app_id: q.app, limit: q.limit.unwrap_or(100), ..Default::default() };
    let list = st.hub.list_access_requests(&auth.principal, query, q.overdue.unwrap_or(false), &auth.ctx).await?;
    Ok(Json(list.into_iter().map(|r| view(&st.hub, r)).collect()))
}

/// One request.
#[utoipa::path(get, path = "/api/v1/access-requests/{id}", tag = "sharing", security(("bearer" = [])),
    params(("id" = i64, Path, description = "request id")),
    responses((status = 200, body = AccessRequestView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_access_request(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Json<AccessRequestView>, ApiError> {
    let r = st.hub.get_access_request(&auth.principal, id, &auth.ctx).await?;
    Ok(Json(view(&st.hub, r)))
}

/// The provider's approver decides: approve (possibly fewer fields, a shorter period)
/// or refuse, with a reason.
#[utoipa::path(post, path = "/api/v1/access-requests/{id}/decision", tag = "sharing", security(("bearer" = [])),
    params(("id" = i64, Path, description = "request id")), request_body = DecisionInput,
    responses((status = 200, body = AccessRequestView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn decide_access_request(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    AppJson(input): AppJson<DecisionInput>,
) -> Result<Json<AccessRequestView>, ApiError> {
    let r = st.hub.decide_access(&auth.principal, id, input, &auth.ctx).await?;
    Ok(Json(view(&st.hub, r)))
}

/// A grant as answered, with its state today.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantView {
    #[serde(flatten)]
    pub grant: Grant,
    /// active, expired or revoked
    pub state: String,
}

fn grant_view(hub: &Hub, g: Grant) -> GrantView {
    let today = govhub_core::sharing::china_date(hub.clock().now());
    GrantView { state: g.state_on(today).to_string(), grant: g }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GrantList {
    /// An app's grants.
    pub app: Option<i64>,
    /// A dataset's consumers.
    pub dataset: Option<String>,
    pub limit: Option<u32>,
}

/// Grants involving the caller's organisation: an app's grants, a dataset's consumers.
#[utoipa::path(get, path = "/api/v1/grants", tag = "sharing", security(("bearer" = [])), params(GrantList),
    responses((status = 200, body = [GrantView]), (status = 403, body = ErrorBody)))]
pub async fn list_grants(
    State(st): State<AppState>,
    auth: Auth,
    Query(q): Query<GrantList>,
) -> Result<Json<Vec<GrantView>>, ApiError> {
    let dataset = match q.dataset.as_deref() {
        None => None,
        Some(d) => Some(govhub_core::names::DatasetCode::parse(d).map_err(ApiError)?),
    };
    let query = GrantQuery { app_id: q.app, dataset, limit: q.limit.unwrap_or(100), ..Default::default() };
    let list = st.hub.list_grants(&auth.principal, query, &auth.ctx).await?;
    Ok(Json(list.into_iter().map(|g| grant_view(&st.hub, g)).collect()))
}

/// One grant.
#[utoipa::path(get, path = "/api/v1/grants/{id}", tag = "sharing", security(("bearer" = [])),
    params(("id" = i64, Path, description = "grant id")),
    responses((status = 200, body = GrantView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_grant(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Json<GrantView>, ApiError> {
    let g = st.hub.get_grant(&auth.principal, id, &auth.ctx).await?;
    Ok(Json(grant_view(&st.hub, g)))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RevokeParams {
    pub reason: Option<String>,
}

/// Revoke a grant with immediate effect (the provider's approver, or the app's
/// organisation giving it up).
#[utoipa::path(delete, path = "/api/v1/grants/{id}", tag = "sharing", security(("bearer" = [])),
    params(("id" = i64, Path, description = "grant id"), RevokeParams),
    responses((status = 200, body = GrantView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn revoke_grant(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Query(p): Query<RevokeParams>,
) -> Result<Json<GrantView>, ApiError> {
    let g = st.hub.revoke_grant(&auth.principal, id, p.reason, &auth.ctx).await?;
    Ok(Json(grant_view(&st.hub, g)))
}

// ------------------------------------------------------------------ calendar

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CalendarRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarDayView {
    pub date: NaiveDate,
    /// holiday or workday
    pub kind: String,
    pub name: String,
}

/// Exceptions to the Monday–Friday rule between two dates (built-in announcements and
/// the platform's own entries).
#[utoipa::path(get, path = "/api/v1/calendar", tag = "sharing", security(("bearer" = [])), params(CalendarRange),
    responses((status = 200, body = [CalendarDayView])))]
pub async fn get_calendar(
    State(st): State<AppState>,
    _auth: Auth,
    Query(r): Query<CalendarRange>,
) -> Result<Json<Vec<CalendarDayView>>, ApiError> {
    let cal = st.hub.calendar().await?;
    Ok(Json(
        cal.days_between(r.from, r.to)
            .into_iter()
            .map(|d| CalendarDayView { date: d.date, kind: d.kind.as_str().into(), name: d.name })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarDayInput {
    /// holiday or workday
    pub kind: String,
    pub name: String,
}

/// Declare a date a holiday or a working day (platform admin).
#[utoipa::path(put, path = "/api/v1/calendar/{date}", tag = "sharing", security(("bearer" = [])),
    params(("date" = String, Path, description = "YYYY-MM-DD")), request_body = CalendarDayInput,
    responses((status = 200, body = CalendarDayView), (status = 403, body = ErrorBody)))]
pub async fn put_calendar_day(
    State(st): State<AppState>,
    auth: Auth,
    Path(date): Path<NaiveDate>,
    AppJson(input): AppJson<CalendarDayInput>,
) -> Result<Json<CalendarDayView>, ApiError> {
    let kind = DayKind::parse(&input.kind).ok_or_else(|| {
        request_error(format!("kind \"{}\" is not holiday or workday", input.kind), "kind应为holiday或workday".into())
    })?;
    let d = st.hub.put_calendar_day(&auth.principal, CalendarDay { date, kind, name: input.name }, &auth.ctx).await?;
    Ok(Json(CalendarDayView { date: d.date, kind: d.kind.as_str().into(), name: d.name }))
}

/// Remove a date's entry (platform admin).
#[utoipa::path(delete, path = "/api/v1/calendar/{date}", tag = "sharing", security(("bearer" = [])),
    params(("date" = String, Path, description = "YYYY-MM-DD")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_calendar_day(
    State(st): State<AppState>,
    auth: Auth,
    Path(date): Path<NaiveDate>,
) -> Result<StatusCode, ApiError> {
    st.hub.delete_calendar_day(&auth.principal, date, &auth.ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------ consumer API

/// The reserved query parameters of the consumer API; every other one is a filter.
struct ShareParams {
    fields: Option<String>,
    cursor: Option<String>,
    limit: u32,
    descending: bool,
    format: Option<String>,
    filters: Vec<(String, String)>,
}

fn share_params(params: Vec<(String, String)>) -> Result<ShareParams, ApiError> {
    let mut p =
        ShareParams { fields: None, cursor: None, limit: 100, descending: false, format: None, filters: Vec::new() };
    for (k, v) in params {
        match k.as_str() {
            "fields" => p.fields = Some(v),
            "cursor" | "since" => p.cursor = Some(v),
            "limit" => p.limit = number("limit", &v)?,
            "order" => {
                p.descending = match v.as_str() {
                    "asc" => false,
                    "desc" => true,
                    _ => {
                        return Err(request_error(
                            format!("order \"{v}\" is not asc or desc"),
                            format!("order“{v}”应为asc或desc"),
                        ))
                    }
                }
            }
            "format" => p.format = Some(v),
            _ => p.filters.push((k, v)),
        }
    }
    Ok(p)
}

/// A page of shared records.
#[derive(Debug, Serialize, ToSchema)]
pub struct SharedPage {
    pub items: Vec<Map<String, Value>>,
    pub next_cursor: Option<String>,
}

/// One record of a granted dataset by primary key: the granted fields only, sensitive
/// ones masked unless the grant allows clear text. `fields=a,b` narrows them.
#[utoipa::path(get, path = "/api/v1/share/{dataset}/records/{key}", tag = "share", security(("bearer" = [])),
    params(("dataset" = String, Path, description = "dataset code"), ("key" = String, Path, description = "primary key (composite: a,b)"),
        ("fields" = Option<String>, Query, description = "comma-separated granted fields")),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn share_record(
    State(st): State<AppState>,
    bearer: Bearer,
    Path((dataset, key)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<govhub_core::share::SharedRecord>, ApiError> {
    let p = share_params(params)?;
    if let Some((k, _)) = p.filters.first() {
        return Err(request_error(format!("unknown parameter \"{k}\""), format!("未知参数“{k}”")));
    }
    let start = std::time::Instant::now();
    let (app, r) = st.hub.share_record_by_token(&bearer.token, &dataset, &key, p.fields.as_deref(), &bearer.ctx).await;
    usage(&st, app, &dataset, r.as_ref().map(|_| 1), start);
    Ok(Json(r?))
}

/// Count a consumer-API request (apps only) in the usage metrics.
pub(crate) fn usage<T>(
    st: &AppState,
    app: Option<i64>,
    dataset: &str,
    rows: Result<u64, &T>,
    start: std::time::Instant,
) {
    if let Some(app) = app {
        let (rows, error) = match rows {
            Ok(n) => (n, false),
            Err(_) => (0, true),
        };
        st.metrics.share(dataset, app, rows, error, start.elapsed());
    }
}

/// Records of a granted dataset: filters `field=op:value` on granted fields (`eq:`,
/// `in:a|b`, `range:lo..hi`, `prefix:`, `null:true|false`), `fields`, `order=asc|desc`
/// (primary key), `limit` (≤ 1000), `cursor` (signed; from `next_cursor`).
#[utoipa::path(get, path = "/api/v1/share/{dataset}/records", tag = "share", security(("bearer" = [])),
    params(("dataset" = String, Path, description = "dataset code"),
        ("fields" = Option<String>, Query, description = "comma-separated granted fields"),
        ("cursor" = Option<String>, Query, description = "from next_cursor"),
        ("limit" = Option<u32>, Query, description = "page size, default 100, at most 1000"),
        ("order" = Option<String>, Query, description = "asc (default) or desc, by primary key")),
    responses((status = 200, body = SharedPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn share_records(
    State(st): State<AppState>,
    auth: Auth,
    Path(dataset): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<SharedPage>, ApiError> {
    let p = share_params(params)?;
    let req = ShareRequest {
        fields: p.fields.as_deref(),
        filters: &p.filters,
        cursor: p.cursor.as_deref(),
        limit: p.limit,
        descending: p.descending,
    };
    let start = std::time::Instant::now();
    let page = st.hub.share_records(&auth.principal, &dataset, &req, &auth.ctx).await;
    usage(&st, auth.principal.app, &dataset, page.as_ref().map(|p| p.records.len() as u64), start);
    let page = page?;
    Ok(Json(SharedPage { items: page.records, next_cursor: page.next_cursor }))
}

/// Rows per page read while streaming an export.
const EXPORT_PAGE: u32 = 2_000;

fn csv_line(fields: &[String]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    w.write_record(fields)?;
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

fn encode_page(plan: &ExportPlan, csv: bool, rows: &[govhub_core::model::Record]) -> Result<Bytes, ApiError> {
    let mut out = Vec::new();
    for r in rows {
        if csv {
            out.extend(csv_line(&plan.projection.texts(&r.cells)).map_err(|e| ApiError(Error::internal(e)))?);
        } else {
            let obj = Value::Object(plan.projection.json(&plan.dataset, &r.cells));
            serde_json::to_writer(&mut out, &obj).map_err(|e| ApiError(Error::internal(e)))?;
            out.push(b'\n');
        }
    }
    Ok(Bytes::from(out))
}

/// Stream every matching record of a granted dataset, in constant memory: JSON Lines
/// (default) or CSV (`format=csv`, UTF-8 with BOM for Excel). Same fields, masking and
/// filters as `records`. A grant revoked during the export ends the stream.
#[utoipa::path(get, path = "/api/v1/share/{dataset}/export", tag = "share", security(("bearer" = [])),
    params(("dataset" = String, Path, description = "dataset code"),
        ("format" = Option<String>, Query, description = "jsonl (default) or csv"),
        ("fields" = Option<String>, Query, description = "comma-separated granted fields")),
    responses((status = 200, description = "the records, streamed", content_type = "application/x-ndjson"),
        (status = 403, body = ErrorBody)))]
pub async fn share_export(
    State(st): State<AppState>,
    auth: Auth,
    Path(dataset): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let p = share_params(params)?;
    let csv = match p.format.as_deref() {
        None | Some("jsonl") | Some("ndjson") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(request_error(
                format!("format \"{other}\" is not jsonl or csv"),
                format!("format“{other}”应为jsonl或csv"),
            ))
        }
    };
    let req = ShareRequest {
        fields: p.fields.as_deref(),
        filters: &p.filters,
        cursor: None,
        limit: EXPORT_PAGE,
        descending: false,
    };
    let start = std::time::Instant::now();
    let plan = st.hub.share_export(&auth.principal, &dataset, &req, &auth.ctx).await;
    usage(&st, auth.principal.app, &dataset, plan.as_ref().map(|_| 0), start);
    let plan = plan?;
    let header_bytes = if csv {
        let mut h = vec![0xEF, 0xBB, 0xBF];
        h.extend(csv_line(&plan.projection.header(&plan.dataset)).map_err(|e| ApiError(Error::internal(e)))?);
        Some(Bytes::from(h))
    } else {
        None
    };
    let key_idx: Vec<usize> = plan
        .dataset
        .schema
        .primary_key
        .iter()
        .filter_map(|k| plan.dataset.schema.fields.iter().position(|f| &f.name == k))
        .collect();
    let hub = st.hub.clone();
    struct S {
        hub: Hub,
        plan: ExportPlan,
        after: Option<Vec<Cell>>,
        done: bool,
        header: Option<Bytes>,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    }
    let state = S { hub, plan, after: None, done: false, header: header_bytes, metrics: st.metrics.clone() };
    let stream = futures_util::stream::unfold(state, move |mut s| {
        let key_idx = key_idx.clone();
        async move {
            if let Some(h) = s.header.take() {
                return Some((Ok::<Bytes, std::io::Error>(h), s));
            }
            if s.done {
                return None;
            }
            let rows = match s.hub.export_page(&s.plan, s.after.take(), EXPORT_PAGE).await {
                Ok(r) => r,
                Err(e) => {
                    s.done = true;
                    return Some((Err(std::io::Error::other(e.message)), s));
                }
            };
            if rows.len() < EXPORT_PAGE as usize || key_idx.is_empty() {
                s.done = true;
            }
            s.metrics.share_rows(s.plan.dataset.code.as_str(), s.plan.app, rows.len() as u64);
            s.after = rows.last().map(|r| key_idx.iter().map(|&i| r.cells[i].clone()).collect());
            match encode_page(&s.plan, csv, &rows) {
                Ok(b) => Some((Ok(b), s)),
                Err(e) => {
                    s.done = true;
                    Some((Err(std::io::Error::other(e.0.message)), s))
                }
            }
        }
    });
    let content_type = if csv { "text/csv; charset=utf-8" } else { "application/x-ndjson" };
    let mut resp = Body::from_stream(stream).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(resp)
}

/// A page of the change feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangesPage {
    /// `{id, op, version, at, delivery, record}`; `id` is stable across retries.
    pub items: Vec<Value>,
    /// Pass as `since` to resume (at least once: keep it only after processing the page).
    pub next_cursor: Option<String>,
}

/// Changes of a granted dataset since a cursor: inserts, updates and deletes with
/// their version and time, in commit order, limited to the granted fields and masked
/// the same way. Start without `since`; resume with the last `next_cursor`.
#[utoipa::path(get, path = "/api/v1/share/{dataset}/changes", tag = "share", security(("bearer" = [])),
    params(("dataset" = String, Path, description = "dataset code"),
        ("since" = Option<String>, Query, description = "cursor from next_cursor"),
        ("limit" = Option<u32>, Query, description = "at most 1000"),
        ("fields" = Option<String>, Query, description = "comma-separated granted fields")),
    responses((status = 200, body = ChangesPage), (status = 403, body = ErrorBody)))]
pub async fn share_changes(
    State(st): State<AppState>,
    auth: Auth,
    Path(dataset): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<ChangesPage>, ApiError> {
    let p = share_params(params)?;
    if let Some((k, _)) = p.filters.first() {
        return Err(request_error(format!("unknown parameter \"{k}\""), format!("未知参数“{k}”")));
    }
    let start = std::time::Instant::now();
    let page = st
        .hub
        .share_changes(&auth.principal, &dataset, p.cursor.as_deref(), p.limit, p.fields.as_deref(), &auth.ctx)
        .await;
    usage(&st, auth.principal.app, &dataset, page.as_ref().map(|p| p.changes.len() as u64), start);
    let page = page?;
    Ok(Json(ChangesPage { items: page.changes, next_cursor: page.next_cursor }))
}

/// Consumer-API usage of one app on one dataset, in this process since it started.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageView {
    pub dataset: String,
    pub app: i64,
    /// The app's name (absent if the app is gone).
    pub app_name: Option<String>,
    pub requests: u64,
    pub rows: u64,
    pub errors: u64,
    pub mean_ms: f64,
    /// Upper bound of the latency bucket holding the 99th percentile.
    pub p99_ms: Option<f64>,
}

/// Usage of the consumer API by dataset and app (platform admins; also in Prometheus
/// form at `/metrics`, and as the console's page `/sharing/usage`).
#[utoipa::path(get, path = "/api/v1/usage", tag = "sharing", security(("bearer" = [])),
    responses((status = 200, body = [UsageView]), (status = 403, body = ErrorBody)))]
pub async fn usage_report(State(st): State<AppState>, auth: Auth) -> Result<Json<Vec<UsageView>>, ApiError> {
    let apps = st.hub.usage_apps(&auth.principal, &auth.ctx).await?;
    let names: std::collections::HashMap<i64, String> = apps.into_iter().map(|a| (a.id, a.name)).collect();
    Ok(Json(
        st.metrics
            .share_usage()
            .into_iter()
            .map(|(dataset, app, u)| UsageView {
                dataset,
                app,
                app_name: names.get(&app).cloned(),
                requests: u.requests,
                rows: u.rows,
                errors: u.errors,
                mean_ms: u.mean_ms(),
                p99_ms: u.p99_ms(),
            })
            .collect(),
    ))
}
