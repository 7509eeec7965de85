//! Data delivery pages: the upload form's handler, delivery reports with their
//! quarantine, the provider's records browser with record history, and the
//! compliance dashboard (应归尽归) with the responsibility list.

use super::i18n::Lang;
use super::pages::PAGE_SIZE;
use super::session::{csrf_failed, csrf_ok, see_other, urlencode, PageCtx, Viewer, WebUser};
use super::view::{cycle_label, local_time, query_string, Badge, Choice};
use super::{render_page, respond};
use crate::api::deliveries::quarantine_csv;
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Form;
use govhub_core::authz::{decide, Action, Decision, Principal};
use govhub_core::cells::Cell;
use govhub_core::deliver::{unsupported_format, ComplianceState, DeliverOptions, DeliveryProgress};
use govhub_core::delivery::{DeliveryMode, DeliveryReport, DeliveryStatus, QuarantinedRow};
use govhub_core::model::{Dataset, DatasetQuery, RecordOp, RecordVersion, UpdateCycle};
use govhub_core::records::RecordRequest;
use govhub_core::schema::TableSchema;
use govhub_core::store::DeliveryQuery;
use govhub_core::{Code, Error, Result};
use govhub_ingest::{Encoding, Format};
use minijinja::context;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Quarantined rows per page of a delivery report.
pub const QUARANTINE_PAGE: u32 = 100;
/// Deliveries listed on a dataset page.
const RECENT_DELIVERIES: u32 = 20;
/// The largest form field other than the file (CSRF token, mode, sheet name…).
const SMALL_FIELD_BYTES: usize = 4096;

fn bad(en: impl Into<String>, zh: impl Into<String>) -> Error {
    Error::new(Code::InvalidRequest, en, zh)
}

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

// ------------------------------------------------------------------- labels

pub fn status_badge(s: DeliveryStatus, lang: Lang) -> Badge {
    match s {
        DeliveryStatus::Running => Badge { label: pick(lang, "进行中", "running"), tone: "blue" },
        DeliveryStatus::Succeeded => Badge { label: pick(lang, "成功", "succeeded"), tone: "green" },
        DeliveryStatus::Failed => Badge { label: pick(lang, "失败", "failed"), tone: "red" },
    }
}

pub fn mode_label(m: DeliveryMode, lang: Lang) -> &'static str {
    match m {
        DeliveryMode::Incremental => pick(lang, "增量", "incremental"),
        DeliveryMode::Snapshot => pick(lang, "全量", "snapshot"),
    }
}

fn op_badge(op: RecordOp, lang: Lang) -> Badge {
    match op {
        RecordOp::Insert => Badge { label: pick(lang, "新增", "insert"), tone: "green" },
        RecordOp::Update => Badge { label: pick(lang, "更新", "update"), tone: "blue" },
        RecordOp::Delete => Badge { label: pick(lang, "删除", "delete"), tone: "red" },
    }
}

fn state_badge(s: ComplianceState, lang: Lang) -> Badge {
    match s {
        ComplianceState::Current => Badge { label: pick(lang, "按时", "on time"), tone: "green" },
        ComplianceState::Late => Badge { label: pick(lang, "逾期", "late"), tone: "red" },
        ComplianceState::Never => Badge { label: pick(lang, "从未交付", "never delivered"), tone: "grey" },
    }
}

/// A duration for people: `812 ms`, `3.4 s`, `2分05秒` / `2 min 05 s`.
pub fn duration_text(ms: u64, lang: Lang) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        let s = ms / 1000;
        match lang {
            Lang::Zh => format!("{}分{:02}秒", s / 60, s % 60),
            Lang::En => format!("{} min {:02} s", s / 60, s % 60),
        }
    }
}

// ----------------------------------------------------------- dataset section

/// One delivery in a dataset's list.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub started_at: String,
    pub status: Badge,
    pub mode: &'static str,
    pub format: String,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_quarantined: u64,
    pub duration: String,
    pub submitted_by: String,
}

impl DeliveryRow {
    pub fn new(r: &DeliveryReport, lang: Lang) -> DeliveryRow {
        DeliveryRow {
            id: r.id,
            started_at: local_time(r.started_at),
            status: status_badge(r.status, lang),
            mode: mode_label(r.mode, lang),
            format: r.format.clone(),
            rows_read: r.rows_read,
            rows_accepted: r.rows_accepted,
            rows_quarantined: r.rows_quarantined,
            duration: duration_text(r.duration_ms, lang),
            submitted_by: r.submitted_by.clone(),
        }
    }
}

/// The 数据交付 section of a dataset page, for the provider's staff and platform
/// admins; `None` for everyone else.
#[derive(Debug, Clone, Serialize)]
pub struct DeliverySection {
    pub can_deliver: bool,
    pub deliveries: Vec<DeliveryRow>,
    pub modes: Vec<Choice>,
    pub encodings: Vec<Choice>,
}

pub async fn dataset_section(
    st: &AppState,
    page: &PageCtx,
    v: &Viewer,
    d: &Dataset,
) -> Result<Option<DeliverySection>> {
    let p = &v.principal;
    if !allowed(p, &Action::ReadProviderData { provider: &d.provider }) {
        return Ok(None);
    }
    let lang = page.lang;
    let q = DeliveryQuery { limit: RECENT_DELIVERIES, ..Default::default() };
    let list = st.hub.list_deliveries(p, d.code.as_str(), q, &page.ctx).await?;
    let modes = [DeliveryMode::Incremental, DeliveryMode::Snapshot]
        .iter()
        .map(|m| Choice {
            value: m.as_str().to_string(),
            label: mode_label(*m, lang).to_string(),
            selected: *m == DeliveryMode::Incremental,
        })
        .collect();
    let encodings =
        [("auto", pick(lang, "自动识别", "detect")), ("utf-8", "UTF-8"), ("gbk", "GBK"), ("gb18030", "GB18030")]
            .iter()
            .map(|(v, l)| Choice { value: v.to_string(), label: l.to_string(), selected: *v == "auto" })
            .collect();
    Ok(Some(DeliverySection {
        can_deliver: allowed(p, &Action::Deliver { provider: &d.provider }),
        deliveries: list.iter().map(|r| DeliveryRow::new(r, lang)).collect(),
        modes,
        encodings,
    }))
}

// ------------------------------------------------------------------ upload

fn multipart_error(e: impl std::fmt::Display) -> Error {
    bad(format!("the upload could not be read: {e}"), "上传内容无法读取，请重新选择文件提交")
}

/// A form field other than the file, bounded in size.
async fn small_field(mut field: Field<'_>) -> Result<String> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        buf.extend_from_slice(&chunk);
        if buf.len() > SMALL_FIELD_BYTES {
            return Err(bad("a form field is too long", "表单字段内容过长"));
        }
    }
    String::from_utf8(buf).map_err(|_| bad("a form field is not UTF-8", "表单字段不是UTF-8编码"))
}

/// `POST /catalog/{code}/deliveries`: the upload form (multipart). The small fields
/// (CSRF token, mode, encoding, sheet) come first; the file part is streamed into the
/// delivery pipeline as it arrives, then the browser goes to the report (303).
pub async fn upload(
    State(st): State<AppState>,
    user: WebUser,
    Path(code): Path<String>,
    multipart: std::result::Result<Multipart, MultipartRejection>,
) -> Response {
    let result = upload_inner(&st, &user, &code, multipart).await;
    respond(&st, &user.page, Some(&user.viewer), result)
}

async fn upload_inner(
    st: &AppState,
    user: &WebUser,
    code: &str,
    multipart: std::result::Result<Multipart, MultipartRejection>,
) -> Result<Response> {
    let mut multipart = multipart.map_err(|e| {
        Error::new(
            Code::UnsupportedMediaType,
            format!("send the upload form as multipart/form-data ({})", e.body_text()),
            "请通过上传表单（multipart/form-data）提交文件",
        )
    })?;
    let (mut csrf, mut mode, mut encoding, mut sheet) = (None, DeliveryMode::Incremental, None, None);
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "csrf" => csrf = Some(small_field(field).await?),
            "mode" => {
                let m = small_field(field).await?;
                mode = DeliveryMode::parse(m.trim()).ok_or_else(|| {
                    bad(format!("mode \"{m}\" is not incremental or snapshot"), "交付方式应为增量或全量")
                })?;
            }
            "encoding" => {
                let e = small_field(field).await?;
                encoding = match e.trim() {
                    "" | "auto" => None,
                    other => Some(Encoding::parse(other).ok_or_else(|| {
                        bad(format!("encoding \"{other}\" is not utf-8, gbk or gb18030"), "编码应为UTF-8、GBK或GB18030")
                    })?),
                };
            }
            "sheet" => sheet = Some(small_field(field).await?).filter(|s| !s.trim().is_empty()),
            "file" => {
                // The token must come before the file: nothing is read for a forged form.
                if !csrf_ok(&user.viewer.csrf, csrf.as_deref().unwrap_or_default()) {
                    return Err(Error::bare(Code::CsrfFailed));
                }
                let opts = DeliverOptions {
                    format: Format::Csv,
                    encoding,
                    sheet: sheet.take().map(|s| s.trim().to_string()),
                    mode,
                    file_name: None,
                    max_bytes: st.config.max_delivery_bytes,
                    stage_in: Some(st.config.upload_dir.clone()),
                };
                return deliver_field(st, user, code, field, opts).await;
            }
            _ => {
                small_field(field).await?;
            }
        }
    }
    if !csrf_ok(&user.viewer.csrf, csrf.as_deref().unwrap_or_default()) {
        return Err(Error::bare(Code::CsrfFailed));
    }
    Err(bad("choose a file to deliver", "请选择要交付的文件"))
}

async fn deliver_field(
    st: &AppState,
    user: &WebUser,
    code: &str,
    mut field: Field<'_>,
    mut opts: DeliverOptions,
) -> Result<Response> {
    let file_name = field.file_name().map(|f| f.trim().to_string()).filter(|f| !f.is_empty());
    let Some(file_name) = file_name else {
        return Err(bad("choose a file to deliver", "请选择要交付的文件"));
    };
    let content_type = field.content_type().unwrap_or_default().to_string();
    opts.format = file_name
        .rsplit_once('.')
        .and_then(|(_, ext)| Format::from_extension(ext))
        .or_else(|| Format::from_content_type(&content_type))
        .ok_or_else(|| {
            let mut e = unsupported_format(&content_type);
            e.message_zh = format!("交付文件须为 .csv、.jsonl 或 .xlsx 格式，当前文件为“{file_name}”");
            e
        })?;
    opts.file_name = Some(file_name.chars().take(255).collect());

    // The file part is pumped into a channel; the delivery's reader thread reads the
    // other end through a blocking bridge. Dropping either side ends the other.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let reader = tokio_util::io::StreamReader::new(Box::pin(stream));
    let source: Box<dyn std::io::Read + Send> = Box::new(tokio_util::io::SyncIoBridge::new(reader));
    let pump = async move {
        loop {
            match field.chunk().await {
                Ok(Some(bytes)) => {
                    if tx.send(Ok(bytes)).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    break;
                }
            }
        }
    };
    let progress = Arc::new(DeliveryProgress::default());
    let deliver = st.hub.deliver(&user.viewer.principal, code, source, opts, progress, &user.page.ctx);
    let (report, ()) = tokio::join!(deliver, pump);
    let report = report?;
    Ok(see_other(&format!("/deliveries/{}", report.id), []))
}

// ------------------------------------------------------------------ report

/// One problem of a quarantined row.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemRow {
    pub row: u64,
    pub field: String,
    pub code: String,
    pub severity: &'static str,
    pub value: String,
    pub message: String,
}

/// A segment of the stacked bar (x and width in a 0–1000 viewBox).
#[derive(Debug, Clone, Serialize)]
pub struct BarSegment {
    pub key: &'static str,
    pub label: &'static str,
    pub count: u64,
    pub percent: String,
    pub x: String,
    pub width: String,
}

/// The four parts of a delivery's rows as segments of one bar.
pub fn stacked_bar(parts: &[(&'static str, &'static str, u64)]) -> Vec<BarSegment> {
    let total: u64 = parts.iter().map(|p| p.2).sum();
    let mut x = 0.0f64;
    parts
        .iter()
        .map(|(key, label, count)| {
            let w = if total == 0 { 0.0 } else { *count as f64 * 1000.0 / total as f64 };
            let seg = BarSegment {
                key,
                label,
                count: *count,
                percent: if total == 0 { "0".into() } else { format!("{:.1}", *count as f64 * 100.0 / total as f64) },
                x: format!("{x:.2}"),
                width: format!("{w:.2}"),
            };
            x += w;
            seg
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
struct ReportView {
    id: i64,
    dataset: String,
    dataset_name: String,
    status: Badge,
    succeeded: bool,
    mode: &'static str,
    format: String,
    encoding: String,
    schema_version: i32,
    submitted_by: String,
    rows_read: u64,
    rows_accepted: u64,
    rows_inserted: u64,
    rows_updated: u64,
    rows_unchanged: u64,
    rows_quarantined: u64,
    warnings: u64,
    rows_deleted: u64,
    duration: String,
    started_at: String,
    finished_at: String,
    error: Option<ErrorView>,
}

#[derive(Debug, Clone, Serialize)]
struct ErrorView {
    code: String,
    message: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct PageParam {
    #[serde(default)]
    pub page: Option<String>,
}

fn page_number(p: &Option<String>) -> u32 {
    p.as_deref().and_then(|p| p.trim().parse::<u32>().ok()).filter(|p| *p >= 1).unwrap_or(1).min(1_000_000)
}

/// `GET /deliveries/{id}`: a delivery's report and its quarantined rows.
pub async fn report(
    State(st): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    q: std::result::Result<Query<PageParam>, QueryRejection>,
) -> Response {
    let result = async {
        let id = delivery_id(&id)?;
        let Query(q) = q.map_err(|e| bad(e.body_text(), "查询参数不合法"))?;
        report_page(&st, &user.page, &user.viewer, id, page_number(&q.page)).await
    }
    .await;
    respond(&st, &user.page, Some(&user.viewer), result)
}

fn delivery_id(raw: &str) -> Result<i64> {
    raw.parse::<i64>().map_err(|_| Error::not_found("delivery", "交付记录", raw))
}

async fn report_page(st: &AppState, page: &PageCtx, v: &Viewer, id: i64, current: u32) -> Result<Response> {
    let p = &v.principal;
    let lang = page.lang;
    let r = st.hub.get_delivery(p, id, &page.ctx).await?;
    let d = st.hub.get_dataset(p, r.dataset.as_str(), &page.ctx).await?;
    let offset = u64::from(current - 1) * u64::from(QUARANTINE_PAGE);
    let q = st.hub.quarantine(p, id, offset, QUARANTINE_PAGE, &page.ctx).await?;
    let pages = q.total.div_ceil(u64::from(QUARANTINE_PAGE)).max(1) as u32;
    let problems: Vec<ProblemRow> = q
        .items
        .iter()
        .flat_map(|row| {
            row.problems.iter().map(move |pr| ProblemRow {
                row: row.row,
                field: pr.field.clone().unwrap_or_default(),
                code: pr.code.clone(),
                severity: pr.severity,
                value: pr.value.clone().unwrap_or_default(),
                message: if lang == Lang::Zh { pr.message_zh.clone() } else { pr.message.clone() },
            })
        })
        .collect();
    let bar = stacked_bar(&[
        ("inserted", pick(lang, "新增", "inserted"), r.rows_inserted),
        ("updated", pick(lang, "更新", "updated"), r.rows_updated),
        ("unchanged", pick(lang, "未变", "unchanged"), r.rows_unchanged),
        ("quarantined", pick(lang, "隔离", "quarantined"), r.rows_quarantined),
    ]);
    let view = ReportView {
        id: r.id,
        dataset: r.dataset.to_string(),
        dataset_name: d.name.clone(),
        status: status_badge(r.status, lang),
        succeeded: r.status == DeliveryStatus::Succeeded,
        mode: mode_label(r.mode, lang),
        format: r.format.clone(),
        encoding: r.encoding.clone(),
        schema_version: r.schema_version,
        submitted_by: r.submitted_by.clone(),
        rows_read: r.rows_read,
        rows_accepted: r.rows_accepted,
        rows_inserted: r.rows_inserted,
        rows_updated: r.rows_updated,
        rows_unchanged: r.rows_unchanged,
        rows_quarantined: r.rows_quarantined,
        warnings: r.warnings,
        rows_deleted: r.rows_deleted,
        duration: duration_text(r.duration_ms, lang),
        started_at: local_time(r.started_at),
        finished_at: r.finished_at.map(local_time).unwrap_or_default(),
        error: r.error.as_ref().map(|e| ErrorView {
            code: e.code.clone(),
            message: if lang == Lang::Zh { e.message_zh.clone() } else { e.message.clone() },
        }),
    };
    let href = |n: u32| format!("/deliveries/{id}{}", if n == 1 { String::new() } else { format!("?page={n}") });
    let extra = context! {
        r => view,
        bar => bar,
        bar_has_rows => r.rows_accepted + r.rows_quarantined > 0,
        problems => problems,
        quarantine_total => q.total,
        page => current,
        pages => pages,
        prev_href => (current > 1).then(|| href(current - 1)),
        next_href => (current < pages).then(|| href(current + 1)),
    };
    render_page(st, page, Some(v), "delivery.html", "catalog", StatusCode::OK, extra)
}

/// `GET /deliveries/{id}/quarantine.csv`: every quarantined row, ready to fix and
/// deliver again (the same CSV as the API's).
pub async fn quarantine_download(State(st): State<AppState>, user: WebUser, Path(id): Path<String>) -> Response {
    let result = async {
        let id = delivery_id(&id)?;
        let p = &user.viewer.principal;
        let mut rows: Vec<QuarantinedRow> = Vec::new();
        let mut offset = 0u64;
        loop {
            let page = st.hub.quarantine(p, id, offset, 10_000, &user.page.ctx).await?;
            let n = page.items.len() as u64;
            rows.extend(page.items);
            offset += n;
            if n == 0 || offset >= page.total {
                break;
            }
        }
        let csv = quarantine_csv(&rows).map_err(Error::internal)?;
        let mut resp = Response::new(Body::from(csv));
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"quarantine-{id}.csv\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        Ok(resp)
    }
    .await;
    respond(&st, &user.page, Some(&user.viewer), result)
}

// ----------------------------------------------------------------- records

/// The records browser's GET form.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RecordsForm {
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub op: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// Filter operators the form offers.
pub const FILTER_OPS: &[&str] = &["eq", "prefix", "range", "in"];

fn op_label(op: &str, lang: Lang) -> &'static str {
    match op {
        "prefix" => pick(lang, "前缀匹配", "starts with"),
        "range" => pick(lang, "范围（下限..上限）", "range (low..high)"),
        "in" => pick(lang, "属于（a|b|c）", "one of (a|b|c)"),
        _ => pick(lang, "等于", "equals"),
    }
}

impl RecordsForm {
    fn trimmed(s: &Option<String>) -> String {
        s.as_deref().map(str::trim).unwrap_or_default().to_string()
    }

    /// The filter as the service takes it (`field`, `op:value`), if one is set.
    pub fn filters(&self) -> Vec<(String, String)> {
        let (field, value) = (Self::trimmed(&self.field), Self::trimmed(&self.value));
        if field.is_empty() || value.is_empty() {
            return Vec::new();
        }
        let op = Self::trimmed(&self.op);
        let op = if FILTER_OPS.contains(&op.as_str()) { op } else { "eq".to_string() };
        vec![(field, format!("{op}:{value}"))]
    }

    /// The link to the page after `cursor` with the same filter.
    pub fn href(&self, code: &str, cursor: Option<&str>) -> String {
        let filtered = !self.filters().is_empty();
        let (field, op, value) = if filtered {
            (Self::trimmed(&self.field), Self::trimmed(&self.op), Self::trimmed(&self.value))
        } else {
            Default::default()
        };
        format!(
            "/catalog/{}/records{}",
            urlencode(code),
            query_string(&[("field", &field), ("op", &op), ("value", &value), ("cursor", cursor.unwrap_or(""))])
        )
    }
}

/// A field as a table column.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnHead {
    pub name: String,
    pub title: String,
    pub primary_key: bool,
}

fn column_heads(schema: &TableSchema) -> Vec<ColumnHead> {
    schema
        .fields
        .iter()
        .map(|f| ColumnHead {
            name: f.name.clone(),
            title: f.title.clone().unwrap_or_default(),
            primary_key: schema.primary_key.contains(&f.name),
        })
        .collect()
}

/// The primary key of a row as the path segment of its record page (composite keys
/// joined by commas); `None` without a primary key.
pub fn record_key(schema: &TableSchema, cells: &[Cell]) -> Option<String> {
    if schema.primary_key.is_empty() {
        return None;
    }
    let parts: Option<Vec<String>> = schema
        .primary_key
        .iter()
        .map(|k| schema.fields.iter().position(|f| &f.name == k).and_then(|i| cells.get(i)).map(Cell::to_text))
        .collect();
    parts.map(|p| p.join(","))
}

#[derive(Debug, Clone, Serialize)]
struct RecordRow {
    href: Option<String>,
    cells: Vec<String>,
}

/// `GET /catalog/{code}/records`: the provider's records, 50 per page by primary key.
pub async fn records(
    State(st): State<AppState>,
    user: WebUser,
    Path(code): Path<String>,
    form: std::result::Result<Query<RecordsForm>, QueryRejection>,
) -> Response {
    let result = async {
        let Query(form) = form.map_err(|e| bad(e.body_text(), "查询参数不合法"))?;
        records_page(&st, &user.page, &user.viewer, &code, form).await
    }
    .await;
    respond(&st, &user.page, Some(&user.viewer), result)
}

async fn records_page(st: &AppState, page: &PageCtx, v: &Viewer, code: &str, form: RecordsForm) -> Result<Response> {
    let p = &v.principal;
    let lang = page.lang;
    let cursor = form.cursor.as_deref().map(str::trim).filter(|c| !c.is_empty());
    let filters = form.filters();
    let (d, found) = st
        .hub
        .provider_records(
            p,
            code,
            &RecordRequest { filters: &filters, cursor, limit: PAGE_SIZE, as_of: None },
            &page.ctx,
        )
        .await?;
    let schema = &d.schema;
    let rows: Vec<RecordRow> = found
        .records
        .iter()
        .map(|r| RecordRow {
            href: record_key(schema, &r.cells)
                .map(|k| format!("/catalog/{}/records/{}", urlencode(code), urlencode(&k))),
            cells: r.cells.iter().map(Cell::to_text).collect(),
        })
        .collect();
    let current_field = RecordsForm::trimmed(&form.field);
    let current_op = RecordsForm::trimmed(&form.op);
    let fields: Vec<Choice> = schema
        .fields
        .iter()
        .map(|f| Choice {
            value: f.name.clone(),
            label: match &f.title {
                Some(t) => format!("{t}（{}）", f.name),
                None => f.name.clone(),
            },
            selected: f.name == current_field,
        })
        .collect();
    let ops: Vec<Choice> = FILTER_OPS
        .iter()
        .map(|o| Choice { value: o.to_string(), label: op_label(o, lang).to_string(), selected: *o == current_op })
        .collect();
    let extra = context! {
        d => context! { code => d.code.to_string(), name => d.name.clone() },
        columns => column_heads(schema),
        rows => rows,
        fields => fields,
        ops => ops,
        value => RecordsForm::trimmed(&form.value),
        filtered => !filters.is_empty(),
        paged => cursor.is_some(),
        first_href => form.href(code, None),
        next_href => found.next_cursor.as_deref().map(|c| form.href(code, Some(c))),
        has_key => !schema.primary_key.is_empty(),
    };
    render_page(st, page, Some(v), "records.html", "catalog", StatusCode::OK, extra)
}

#[derive(Debug, Clone, Serialize)]
struct VersionHead {
    version: i64,
    op: Badge,
    delivery_id: Option<i64>,
    valid_from: String,
    valid_to: String,
    changed: usize,
}

#[derive(Debug, Clone, Serialize)]
struct HistoryCell {
    value: String,
    null: bool,
    changed: bool,
}

#[derive(Debug, Clone, Serialize)]
struct HistoryRow {
    name: String,
    title: String,
    primary_key: bool,
    current: String,
    cells: Vec<HistoryCell>,
}

/// Which fields of each version differ from the version before it (none for the
/// first version and for deletions).
fn changed_fields(versions: &[RecordVersion]) -> Vec<Vec<bool>> {
    let mut out = Vec::with_capacity(versions.len());
    for (i, v) in versions.iter().enumerate() {
        let prev = if i == 0 || v.op == RecordOp::Delete { None } else { versions.get(i - 1) };
        out.push(v.cells.iter().enumerate().map(|(fi, c)| prev.is_some_and(|p| p.cells.get(fi) != Some(c))).collect());
    }
    out
}

/// `GET /catalog/{code}/records/{key}`: one record and every version of it.
pub async fn record(State(st): State<AppState>, user: WebUser, Path((code, key)): Path<(String, String)>) -> Response {
    let result = record_page(&st, &user.page, &user.viewer, &code, &key).await;
    respond(&st, &user.page, Some(&user.viewer), result)
}

async fn record_page(st: &AppState, page: &PageCtx, v: &Viewer, code: &str, key: &str) -> Result<Response> {
    let p = &v.principal;
    let lang = page.lang;
    let (d, versions) = st.hub.provider_record_history(p, code, key, &page.ctx).await?;
    let schema = &d.schema;
    let changed = changed_fields(&versions);
    let heads: Vec<VersionHead> = versions
        .iter()
        .zip(&changed)
        .map(|(v, ch)| VersionHead {
            version: v.version,
            op: op_badge(v.op, lang),
            delivery_id: v.delivery_id,
            valid_from: local_time(v.valid_from),
            valid_to: v.valid_to.map(local_time).unwrap_or_default(),
            changed: ch.iter().filter(|c| **c).count(),
        })
        .collect();
    let latest = versions.last();
    let rows: Vec<HistoryRow> = schema
        .fields
        .iter()
        .enumerate()
        .map(|(fi, f)| HistoryRow {
            name: f.name.clone(),
            title: f.title.clone().unwrap_or_default(),
            primary_key: schema.primary_key.contains(&f.name),
            current: latest.and_then(|l| l.cells.get(fi)).map(Cell::to_text).unwrap_or_default(),
            cells: versions
                .iter()
                .zip(&changed)
                .map(|(v, ch)| {
                    let c = v.cells.get(fi).unwrap_or(&Cell::Null);
                    HistoryCell {
                        value: c.to_text(),
                        null: matches!(c, Cell::Null),
                        changed: ch.get(fi).copied().unwrap_or(false),
                    }
                })
                .collect(),
        })
        .collect();
    let extra = context! {
        d => context! { code => d.code.to_string(), name => d.name.clone() },
        key => key,
        deleted => latest.is_some_and(|l| l.op == RecordOp::Delete),
        versions => heads,
        rows => rows,
    };
    render_page(st, page, Some(v), "record.html", "catalog", StatusCode::OK, extra)
}

// -------------------------------------------------------------- compliance

#[derive(Debug, Clone, Serialize)]
struct ComplianceRow {
    org: String,
    org_name: String,
    dataset: String,
    dataset_name: String,
    cycle: &'static str,
    state: Badge,
    last_delivery_at: String,
    due_at: String,
    deliveries: u64,
    failed_deliveries: u64,
    quarantine_rate: String,
    record_count: u64,
    note: String,
}

/// A segment of the summary donut: a circle of circumference 100 drawn with a dash
/// of `percent`, rotated to start where the previous one ended.
#[derive(Debug, Clone, Serialize)]
pub struct DonutSegment {
    pub key: &'static str,
    pub count: u64,
    pub dasharray: String,
    pub dashoffset: String,
}

pub fn donut(parts: &[(&'static str, u64)]) -> Vec<DonutSegment> {
    let total: u64 = parts.iter().map(|p| p.1).sum();
    let mut start = 0.0f64;
    parts
        .iter()
        .filter(|p| p.1 > 0)
        .map(|(key, count)| {
            let pct = *count as f64 * 100.0 / total as f64;
            // The stroke starts at 3 o'clock; +25 moves it to 12 o'clock.
            let seg = DonutSegment {
                key,
                count: *count,
                dasharray: format!("{pct:.3} {:.3}", 100.0 - pct),
                dashoffset: format!("{:.3}", 25.0 - start),
            };
            start += pct;
            seg
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
pub struct ComplianceParams {
    #[serde(default)]
    pub saved: Option<String>,
    #[serde(default)]
    pub removed: Option<String>,
}

/// `GET /compliance`: 应归尽归 — which datasets on the responsibility list are
/// delivered on time, late or never.
pub async fn compliance(
    State(st): State<AppState>,
    user: WebUser,
    q: std::result::Result<Query<ComplianceParams>, QueryRejection>,
) -> Response {
    let result = async {
        let Query(q) = q.unwrap_or_default();
        compliance_page(&st, &user.page, &user.viewer, q).await
    }
    .await;
    respond(&st, &user.page, Some(&user.viewer), result)
}

async fn compliance_page(st: &AppState, page: &PageCtx, v: &Viewer, q: ComplianceParams) -> Result<Response> {
    let p = &v.principal;
    let lang = page.lang;
    let c = st.hub.compliance(p, &page.ctx).await?;
    let notes: HashMap<String, String> = st
        .hub
        .list_responsibilities(p, &page.ctx)
        .await?
        .into_iter()
        .filter_map(|r| r.note.map(|n| (r.dataset.to_string(), n)))
        .collect();
    let orgs = st.hub.list_orgs(p, &page.ctx).await?;
    let org_names: HashMap<String, String> = orgs.iter().map(|o| (o.code.to_string(), o.name.clone())).collect();
    let catalog = st.hub.search_datasets(p, &DatasetQuery { limit: 500, ..Default::default() }, &page.ctx).await?;
    let dataset_names: HashMap<String, String> =
        catalog.items.iter().map(|d| (d.code.to_string(), d.name.clone())).collect();
    let mut rows: Vec<ComplianceRow> = c
        .items
        .iter()
        .map(|i| {
            let (org, dataset) = (i.org.to_string(), i.dataset.to_string());
            ComplianceRow {
                org_name: org_names.get(&org).cloned().unwrap_or_else(|| org.clone()),
                dataset_name: dataset_names.get(&dataset).cloned().unwrap_or_else(|| dataset.clone()),
                note: notes.get(&dataset).cloned().unwrap_or_default(),
                org,
                dataset,
                cycle: cycle_label(i.cycle, lang),
                state: state_badge(i.state, lang),
                last_delivery_at: i.last_delivery_at.map(local_time).unwrap_or_default(),
                due_at: i.due_at.map(local_time).unwrap_or_default(),
                deliveries: i.deliveries,
                failed_deliveries: i.failed_deliveries,
                quarantine_rate: format!("{:.1}", i.quarantine_rate * 100.0),
                record_count: i.record_count,
            }
        })
        .collect();
    // Late first, then never delivered, then on time; by department within each.
    let rank = |s: &str| match s {
        "red" => 0,
        "grey" => 1,
        _ => 2,
    };
    rows.sort_by(|a, b| {
        (rank(a.state.tone), &a.org_name, &a.dataset).cmp(&(rank(b.state.tone), &b.org_name, &b.dataset))
    });
    let s = &c.summary;
    let chart = donut(&[("current", s.current), ("late", s.late), ("never", s.never_delivered)]);
    let admin = allowed(p, &Action::ManageResponsibilities);
    let (datasets, cycles) = if admin {
        let mut ds: Vec<Choice> = catalog
            .items
            .iter()
            .map(|d| Choice {
                value: d.code.to_string(), label: format!("{}（{}）", d.name, d.code), selected: false
            })
            .collect();
        ds.sort_by(|a, b| a.value.cmp(&b.value));
        let cycles: Vec<Choice> = UpdateCycle::ALL
            .iter()
            .map(|c| Choice {
                value: c.as_str().to_string(),
                label: cycle_label(*c, lang).to_string(),
                selected: *c == UpdateCycle::Daily,
            })
            .collect();
        (ds, cycles)
    } else {
        (Vec::new(), Vec::new())
    };
    let saved = q.saved.filter(|s| !s.is_empty());
    let removed = q.removed.filter(|s| !s.is_empty());
    let extra = context! {
        summary => context! {
            datasets => s.datasets, current => s.current, late => s.late, never => s.never_delivered,
        },
        chart => chart,
        rows => rows,
        admin => admin,
        dataset_choices => datasets,
        cycles => cycles,
        at => local_time(c.at),
        saved => saved,
        removed => removed,
    };
    render_page(st, page, Some(v), "compliance.html", "compliance", StatusCode::OK, extra)
}

#[derive(Debug, Default, Deserialize)]
pub struct ResponsibilityForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub dataset: String,
    #[serde(default)]
    pub cycle: String,
    #[serde(default)]
    pub note: String,
}

fn form_error(e: FormRejection) -> Error {
    bad(e.body_text(), "表单内容不合法")
}

/// `POST /compliance/responsibilities`: add a dataset to the list or change its entry
/// (platform admins).
pub async fn put_responsibility(
    State(st): State<AppState>,
    user: WebUser,
    form: std::result::Result<Form<ResponsibilityForm>, FormRejection>,
) -> std::result::Result<Response, ApiError> {
    let Form(form) = form.map_err(form_error)?;
    if !csrf_ok(&user.viewer.csrf, &form.csrf) {
        return Err(csrf_failed());
    }
    let result = async {
        let cycle = UpdateCycle::parse(form.cycle.trim()).map_err(|e| Error { code: Code::InvalidRequest, ..e })?;
        let dataset = form.dataset.trim();
        let note = Some(form.note.chars().take(500).collect::<String>());
        let r = st.hub.put_responsibility(&user.viewer.principal, dataset, cycle, note, &user.page.ctx).await?;
        Ok(see_other(&format!("/compliance?saved={}", urlencode(r.dataset.as_str())), []))
    }
    .await;
    Ok(respond(&st, &user.page, Some(&user.viewer), result))
}

#[derive(Debug, Default, Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /compliance/responsibilities/{dataset}/delete`: take a dataset off the list.
pub async fn delete_responsibility(
    State(st): State<AppState>,
    user: WebUser,
    Path(dataset): Path<String>,
    form: std::result::Result<Form<CsrfOnly>, FormRejection>,
) -> std::result::Result<Response, ApiError> {
    let Form(form) = form.map_err(form_error)?;
    if !csrf_ok(&user.viewer.csrf, &form.csrf) {
        return Err(csrf_failed());
    }
    let result = async {
        st.hub.delete_responsibility(&user.viewer.principal, &dataset, &user.page.ctx).await?;
        Ok(see_other(&format!("/compliance?removed={}", urlencode(&dataset)), []))
    }
    .await;
    Ok(respond(&st, &user.page, Some(&user.viewer), result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_and_donuts_add_up() {
        let bar = stacked_bar(&[("a", "A", 1), ("b", "B", 0), ("c", "C", 3)]);
        assert_eq!(bar[0].width, "250.00");
        assert_eq!(bar[2].x, "250.00");
        assert_eq!(bar[2].width, "750.00");
        assert_eq!(bar[2].percent, "75.0");
        let empty = stacked_bar(&[("a", "A", 0)]);
        assert_eq!(empty[0].width, "0.00");
        let d = donut(&[("current", 1), ("late", 1), ("never", 0)]);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].dasharray, "50.000 50.000");
        assert_eq!(d[1].dashoffset, "-25.000");
        assert!(donut(&[("current", 0)]).is_empty());
    }

    #[test]
    fn durations_and_filters() {
        assert_eq!(duration_text(812, Lang::Zh), "812 ms");
        assert_eq!(duration_text(3_400, Lang::En), "3.4 s");
        assert_eq!(duration_text(125_000, Lang::Zh), "2分05秒");
        let f = RecordsForm {
            field: Some("xm".into()),
            op: Some("prefix".into()),
            value: Some(" 张 ".into()),
            cursor: None,
        };
        assert_eq!(f.filters(), vec![("xm".to_string(), "prefix:张".to_string())]);
        assert_eq!(
            f.href("gaj-hjrk", Some("abc")),
            "/catalog/gaj-hjrk/records?field=xm&op=prefix&value=%E5%BC%A0&cursor=abc"
        );
        let odd =
            RecordsForm { field: Some("xm".into()), op: Some("like".into()), value: Some("x".into()), cursor: None };
        assert_eq!(odd.filters(), vec![("xm".to_string(), "eq:x".to_string())]);
        assert!(RecordsForm::default().filters().is_empty());
    }
}
