//! Deliveries, the provider's records, the responsibility list and compliance.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{AppJson, AppQuery, Auth};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::TryStreamExt;
use govhub_core::deliver::{unsupported_format, Compliance, DeliverOptions, DeliveryProgress};
use govhub_core::delivery::{DeliveryMode, DeliveryReport, DeliveryStatus, QuarantinedRow};
use govhub_core::model::{Responsibility, UpdateCycle};
use govhub_core::records::{record_json, RecordRequest};
use govhub_core::store::DeliveryQuery;
use govhub_core::{Code, Error};
use govhub_ingest::{Encoding, Format};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    /// `incremental` (default: upsert only) or `snapshot` (keys absent from the file are marked deleted).
    pub mode: Option<String>,
    /// `utf-8`, `gbk` or `gb18030`; detected when absent.
    pub encoding: Option<String>,
    /// XLSX: the sheet to read (default: the first).
    pub sheet: Option<String>,
    /// The original file name, for the record.
    pub file_name: Option<String>,
}

fn request_error(en: String, zh: String) -> ApiError {
    ApiError(Error::new(Code::InvalidRequest, en, zh))
}

/// Deliver a file (CSV `text/csv`, JSON Lines `application/x-ndjson`, XLSX) into a
/// dataset. The body is streamed: any size up to `max_delivery_bytes`. The answer is the
/// delivery report; `status` is `succeeded` (possibly with quarantined rows) or
/// `failed` with `error` — then nothing of the delivery was kept.
#[utoipa::path(post, path = "/api/v1/datasets/{code}/deliveries", tag = "delivery", security(("bearer" = [])),
    params(("code" = String, Path, description = "dataset code"), DeliveryParams),
    request_body(content = String, description = "the file", content_type = "text/csv"),
    responses((status = 201, body = DeliveryReport), (status = 415, description = "unsupported_media_type", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_delivery(
    State(st): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
    AppQuery(params): AppQuery<DeliveryParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<DeliveryReport>), ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let format = Format::from_content_type(content_type)
        .or_else(|| {
            params
                .file_name
                .as_deref()
                .and_then(|f| f.rsplit_once('.'))
                .and_then(|(_, ext)| Format::from_extension(ext))
        })
        .ok_or_else(|| ApiError(unsupported_format(content_type)))?;
    let mode = match params.mode.as_deref() {
        None => DeliveryMode::Incremental,
        Some(m) => DeliveryMode::parse(m).ok_or_else(|| {
            request_error(
                format!("mode \"{m}\" is not incremental or snapshot"),
                format!("mode“{m}”应为incremental或snapshot"),
            )
        })?,
    };
    let encoding = params
        .encoding
        .as_deref()
        .map(|e| {
            Encoding::parse(e).ok_or_else(|| {
                request_error(
                    format!("encoding \"{e}\" is not utf-8, gbk or gb18030"),
                    format!("编码“{e}”应为utf-8、gbk或gb18030"),
                )
            })
        })
        .transpose()?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream);
    let source: Box<dyn std::io::Read + Send> = Box::new(tokio_util::io::SyncIoBridge::new(reader));
    let opts = DeliverOptions {
        format,
        encoding,
        sheet: params.sheet,
        mode,
        file_name: params.file_name,
        max_bytes: st.config.max_delivery_bytes,
        stage_in: Some(st.config.upload_dir.clone()),
    };
    let report =
        st.hub.deliver(&auth.principal, &code, source, opts, Arc::new(DeliveryProgress::default()), &auth.ctx).await?;
    Ok((StatusCode::CREATED, Json(report)))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryList {
    /// running, succeeded or failed
    pub status: Option<String>,
    /// Page: deliveries with an id below this.
    pub before: Option<i64>,
    pub limit: Option<u32>,
}

/// A dataset's deliveries, newest first (the provider's staff).
#[utoipa::path(get, path = "/api/v1/datasets/{code}/deliveries", tag = "delivery", security(("bearer" = [])),
    params(("code" = String, Path, description = "dataset code"), DeliveryList),
    responses((status = 200, body = [DeliveryReport]), (status = 403, body = ErrorBody)))]
pub async fn list_deliveries(
    State(st): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
    AppQuery(q): AppQuery<DeliveryList>,
) -> Result<Json<Vec<DeliveryReport>>, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            DeliveryStatus::parse(s).ok_or_else(|| {
                request_error(format!("status \"{s}\" is not running, succeeded or failed"), format!("状态“{s}”无效"))
            })
        })
        .transpose()?;
    let query = DeliveryQuery { dataset: None, status, before_id: q.before, limit: q.limit.unwrap_or(50) };
    let list = st.hub.list_deliveries(&auth.principal, &code, query, &auth.ctx).await?;
    Ok(Json(list))
}

/// One delivery report.
#[utoipa::path(get, path = "/api/v1/deliveries/{id}", tag = "delivery", security(("bearer" = [])),
    params(("id" = i64, Path, description = "delivery id")),
    responses((status = 200, body = DeliveryReport), (status = 404, body = ErrorBody)))]
pub async fn get_delivery(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Json<DeliveryReport>, ApiError> {
    let r = st.hub.get_delivery(&auth.principal, id, &auth.ctx).await?;
    Ok(Json(r))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct QuarantineParams {
    pub offset: Option<u64>,
    /// Page size for JSON (default 100, at most 10,000). CSV returns every row.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantinePage {
    pub total: u64,
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
}

fn quarantined_json(q: &QuarantinedRow) -> Value {
    serde_json::to_value(q).unwrap_or(Value::Null)
}

/// The quarantined rows of a delivery: JSON, or CSV (`Accept: text/csv`) with the
/// delivered columns and an error column, ready to fix and deliver again.
#[utoipa::path(get, path = "/api/v1/deliveries/{id}/quarantine", tag = "delivery", security(("bearer" = [])),
    params(("id" = i64, Path, description = "delivery id"), QuarantineParams),
    responses((status = 200, body = QuarantinePage, content_type = "application/json"),
        (status = 200, description = "CSV with an `_errors` column", content_type = "text/csv"),
        (status = 404, body = ErrorBody)))]
pub async fn quarantine(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    headers: HeaderMap,
    AppQuery(q): AppQuery<QuarantineParams>,
) -> Result<Response, ApiError> {
    let wants_csv = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/csv"));
    if !wants_csv {
        let page =
            st.hub.quarantine(&auth.principal, id, q.offset.unwrap_or(0), q.limit.unwrap_or(100), &auth.ctx).await?;
        return Ok(Json(QuarantinePage {
            total: page.total,
            items: page.items.iter().map(quarantined_json).collect(),
        })
        .into_response());
    }
    // CSV: all rows, page by page.
    let mut rows: Vec<QuarantinedRow> = Vec::new();
    let mut offset = 0u64;
    loop {
        let page = st.hub.quarantine(&auth.principal, id, offset, 10_000, &auth.ctx).await?;
        let n = page.items.len() as u64;
        rows.extend(page.items);
        offset += n;
        if n == 0 || offset >= page.total {
            break;
        }
    }
    let csv = quarantine_csv(&rows).map_err(|e| ApiError(Error::internal(e)))?;
    let mut resp = Response::new(Body::from(csv));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"quarantine-{id}.csv\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// CSV of quarantined rows: `_row`, the delivered columns (union, in first-seen
/// order), `_errors` (one line per problem: field, code, Chinese message). UTF-8 with
/// a BOM so Excel opens it correctly.
pub fn quarantine_csv(rows: &[QuarantinedRow]) -> Result<Vec<u8>, csv::Error> {
    let mut columns: Vec<String> = Vec::new();
    for r in rows {
        for k in r.raw.keys() {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    let mut out = b"\xEF\xBB\xBF".to_vec();
    {
        let mut w = csv::Writer::from_writer(&mut out);
        let mut header = vec!["_row".to_string()];
        header.extend(columns.iter().cloned());
        header.push("_errors".into());
        w.write_record(&header)?;
        for r in rows {
            let mut rec = vec![r.row.to_string()];
            for c in &columns {
                rec.push(
                    r.raw
                        .get(c)
                        .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
                        .unwrap_or_default(),
                );
            }
            let errors: Vec<String> = r
                .problems
                .iter()
                .map(|p| format!("[{}] {}: {}", p.code, p.field.as_deref().unwrap_or("-"), p.message_zh))
                .collect();
            rec.push(errors.join("\n"));
            w.write_record(&rec)?;
        }
        w.flush()?;
    }
    Ok(out)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordsPage {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One of the provider's own records, by primary key (composite keys: `a,b`).
#[utoipa::path(get, path = "/api/v1/datasets/{code}/records/{key}", tag = "records", security(("bearer" = [])),
    params(("code" = String, Path, description = "dataset code"), ("key" = String, Path, description = "primary key")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn get_record(
    State(st): State<AppState>,
    auth: Auth,
    Path((code, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (d, r) = st.hub.provider_record(&auth.principal, &code, &key, &auth.ctx).await?;
    Ok(Json(record_json(&d.schema, &r)))
}

/// Versions of a record, oldest first.
#[utoipa::path(get, path = "/api/v1/datasets/{code}/records/{key}/history", tag = "records", security(("bearer" = [])),
    params(("code" = String, Path, description = "dataset code"), ("key" = String, Path, description = "primary key")),
    responses((status = 200, body = [Object]), (status = 404, body = ErrorBody)))]
pub async fn record_history(
    State(st): State<AppState>,
    auth: Auth,
    Path((code, key)): Path<(String, String)>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let (d, versions) = st.hub.provider_record_history(&auth.principal, &code, &key, &auth.ctx).await?;
    let out = versions
        .iter()
        .map(|v| {
            let mut m = serde_json::Map::new();
            for (f, c) in d.schema.fields.iter().zip(&v.cells) {
                m.insert(f.name.clone(), c.to_json());
            }
            serde_json::json!({
                "version": v.version,
                "op": v.op.as_str(),
                "delivery_id": v.delivery_id,
                "valid_from": v.valid_from,
                "valid_to": v.valid_to,
                "values": m,
            })
        })
        .collect();
    Ok(Json(out))
}

/// The provider's own records: filters `field=op:value` (`eq:`, `in:a|b`,
/// `range:lo..hi`, `prefix:`, `null:true|false`), `cursor`, `limit` (≤ 1000), `as_of`
/// (RFC 3339: the dataset as it was then).
#[utoipa::path(get, path = "/api/v1/datasets/{code}/records", tag = "records", security(("bearer" = [])),
    params(("code" = String, Path, description = "dataset code"),
        ("cursor" = Option<String>, Query, description = "from next_cursor"),
        ("limit" = Option<u32>, Query, description = "page size, default 100"),
        ("as_of" = Option<String>, Query, description = "RFC 3339 time")),
    responses((status = 200, body = RecordsPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_records(
    State(st): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<RecordsPage>, ApiError> {
    let mut filters = Vec::new();
    let (mut cursor, mut limit, mut as_of) = (None, 100u32, None);
    for (k, v) in params {
        match k.as_str() {
            "cursor" => cursor = Some(v),
            "limit" => {
                limit = v.parse().map_err(|_| {
                    request_error(format!("limit \"{v}\" is not a number"), format!("limit“{v}”不是数字"))
                })?
            }
            "as_of" => {
                as_of = Some(
                    chrono::DateTime::parse_from_rfc3339(&v)
                        .map_err(|_| {
                            request_error(
                                format!("as_of \"{v}\" is not an RFC 3339 time"),
                                format!("as_of“{v}”不是RFC 3339时间"),
                            )
                        })?
                        .with_timezone(&chrono::Utc),
                )
            }
            _ => filters.push((k, v)),
        }
    }
    let (d, page) = st
        .hub
        .provider_records(
            &auth.principal,
            &code,
            &RecordRequest { filters: &filters, cursor: cursor.as_deref(), limit, as_of },
            &auth.ctx,
        )
        .await?;
    Ok(Json(RecordsPage {
        items: page.records.iter().map(|r| record_json(&d.schema, r)).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponsibilityInput {
    /// realtime, daily, weekly, monthly, quarterly, yearly, irregular
    pub cycle: String,
    pub note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResponsibilityView {
    pub dataset: String,
    pub org: String,
    pub cycle: String,
    pub note: Option<String>,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<&Responsibility> for ResponsibilityView {
    fn from(r: &Responsibility) -> Self {
        ResponsibilityView {
            dataset: r.dataset.to_string(),
            org: r.org.to_string(),
            cycle: r.cycle.as_str().to_string(),
            note: r.note.clone(),
            created_by: r.created_by.clone(),
            created_at: r.created_at,
        }
    }
}

/// State that the dataset's provider owes it at this cycle (platform admin).
#[utoipa::path(put, path = "/api/v1/responsibilities/{dataset}", tag = "compliance", security(("bearer" = [])),
    params(("dataset" = String, Path, description = "dataset code")), request_body = ResponsibilityInput,
    responses((status = 200, body = ResponsibilityView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_responsibility(
    State(st): State<AppState>,
    auth: Auth,
    Path(dataset): Path<String>,
    AppJson(input): AppJson<ResponsibilityInput>,
) -> Result<Json<ResponsibilityView>, ApiError> {
    let cycle = UpdateCycle::parse(&input.cycle).map_err(|e| ApiError(Error { code: Code::InvalidRequest, ..e }))?;
    let r = st.hub.put_responsibility(&auth.principal, &dataset, cycle, input.note, &auth.ctx).await?;
    Ok(Json(ResponsibilityView::from(&r)))
}

/// Remove a dataset from the responsibility list (platform admin).
#[utoipa::path(delete, path = "/api/v1/responsibilities/{dataset}", tag = "compliance", security(("bearer" = [])),
    params(("dataset" = String, Path, description = "dataset code")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_responsibility(
    State(st): State<AppState>,
    auth: Auth,
    Path(dataset): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.hub.delete_responsibility(&auth.principal, &dataset, &auth.ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The sharing responsibility list (共享责任清单).
#[utoipa::path(get, path = "/api/v1/responsibilities", tag = "compliance", security(("bearer" = [])),
    responses((status = 200, body = [ResponsibilityView])))]
pub async fn list_responsibilities(
    State(st): State<AppState>,
    auth: Auth,
) -> Result<Json<Vec<ResponsibilityView>>, ApiError> {
    let list = st.hub.list_responsibilities(&auth.principal, &auth.ctx).await?;
    Ok(Json(list.iter().map(ResponsibilityView::from).collect()))
}

/// Delivery compliance (应归尽归): per dataset on the list — current, late or never
/// delivered, last delivery, quarantine rate, record count — and a city summary.
#[utoipa::path(get, path = "/api/v1/compliance", tag = "compliance", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
pub async fn compliance(State(st): State<AppState>, auth: Auth) -> Result<Json<Compliance>, ApiError> {
    Ok(Json(st.hub.compliance(&auth.principal, &auth.ctx).await?))
}
