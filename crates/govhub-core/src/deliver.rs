//! The delivery pipeline: a reader thread decodes the file (govhub-ingest) and
//! validates each record (RowValidator) while the store writes batches in one
//! transaction on the other side of a bounded channel. Memory stays flat: at most a
//! few batches are in flight, whatever the file size.

use crate::authz::{Action, Principal};
use crate::cells::CastOptions;
use crate::delivery::*;
use crate::error::{Code, Error, Result};
use crate::model::*;
use crate::names::DatasetCode;
use crate::service::{store_err, Audit, Ctx, Hub};
use crate::store::{ApplyOutcome, DeliveryBatch, DeliveryQuery, NewDelivery};
use chrono::{DateTime, NaiveDate, Utc};
use govhub_ingest::{Encoding, Format, ReadOptions, RowValues};
use serde_json::json;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Rows per batch handed to the store.
pub const BATCH_ROWS: usize = 10_000;
/// Batches in flight between reader and writer.
const CHANNEL_DEPTH: usize = 4;

/// How to read a delivery.
#[derive(Debug, Clone)]
pub struct DeliverOptions {
    pub format: Format,
    /// `None`: detect.
    pub encoding: Option<Encoding>,
    pub sheet: Option<String>,
    pub mode: DeliveryMode,
    pub file_name: Option<String>,
    pub max_bytes: u64,
    /// Stage the whole source in an anonymous file in this directory before reading
    /// it (uploads from a network client: see `govhub_ingest::stage`). `None` reads the
    /// source as it comes (local files).
    pub stage_in: Option<std::path::PathBuf>,
}

/// Live counters a caller may watch (progress).
#[derive(Debug, Default)]
pub struct DeliveryProgress {
    pub rows_read: AtomicU64,
    pub bytes_read: AtomicU64,
}

/// What the reader side found.
#[derive(Debug, Default)]
struct ReadSummary {
    rows_read: u64,
    valid: u64,
    quarantined: u64,
    warnings: u64,
    encoding: String,
}

fn failure(code: &str, en: impl Into<String>, zh: impl Into<String>) -> DeliveryFailure {
    DeliveryFailure { code: code.to_string(), message: en.into(), message_zh: zh.into() }
}

/// Read, validate and send. Returns the summary, or the reason the whole delivery
/// fails (the store then rolls back because no commit was sent).
fn read_and_validate(
    source: Box<dyn Read + Send>,
    opts: &DeliverOptions,
    dataset: &Dataset,
    today: NaiveDate,
    tx: tokio::sync::mpsc::Sender<DeliveryBatch>,
    progress: &DeliveryProgress,
) -> std::result::Result<ReadSummary, DeliveryFailure> {
    let source: Box<dyn Read + Send> = match &opts.stage_in {
        None => source,
        Some(dir) => Box::new(
            govhub_ingest::stage(source, dir, opts.max_bytes, |n| progress.bytes_read.store(n, Ordering::Relaxed))
                .map_err(|e| {
                    tracing::error!(error = %e, dir = %dir.display(), "cannot stage an upload");
                    failure(
                        "store-error",
                        "the server could not keep the upload for reading (its disk); nothing was changed",
                        "服务器无法暂存上传的文件（磁盘问题），数据未作任何改动",
                    )
                })?,
        ),
    };
    let read_opts = ReadOptions {
        format: opts.format,
        encoding: opts.encoding,
        sheet: opts.sheet.clone(),
        max_bytes: opts.max_bytes,
    };
    let mut records =
        govhub_ingest::open(source, read_opts).map_err(|e| failure(e.code(), e.message_en(), e.message_zh()))?;
    let cast = CastOptions::default();
    let mut validator = match opts.format {
        Format::JsonLines => RowValidator::for_objects(&dataset.schema, today, cast),
        Format::Csv | Format::Xlsx => RowValidator::for_header(&dataset.schema, records.header(), today, cast)
            .map_err(|h| failure(h.code, h.message, h.message_zh))?,
    };
    let mut summary = ReadSummary { encoding: records.encoding().as_str().to_string(), ..Default::default() };
    let mut rows: Vec<ValidRow> = Vec::with_capacity(BATCH_ROWS);
    let mut bad: Vec<QuarantinedRow> = Vec::new();
    let send = |batch: DeliveryBatch| {
        tx.blocking_send(batch)
            .map_err(|_| failure("store-error", "the store stopped accepting rows", "数据库停止接收数据，交付已中止"))
    };
    send(DeliveryBatch::Labels(validator.field_labels()))?;
    let mut last_row = 0u64;
    while let Some(item) = records.next_row() {
        let outcome = match item {
            Ok(rec) => {
                last_row = rec.number;
                match rec.values {
                    RowValues::Text(cells) => validator.text_row(rec.number, &cells),
                    RowValues::Json(obj) => validator.json_row(rec.number, obj),
                    RowValues::Blank => validator.text_row(rec.number, &[] as &[String]),
                }
            }
            Err(e) if !e.is_fatal() => {
                // A bad JSON line still takes its record number (= its line).
                last_row = e.line().unwrap_or(last_row + 1);
                RowOutcome::Quarantined(validator.unreadable(last_row, e.code(), e.message_en(), e.message_zh()))
            }
            Err(e) => return Err(failure(e.code(), e.message_en(), e.message_zh())),
        };
        summary.rows_read += 1;
        match outcome {
            RowOutcome::Valid(r) => {
                summary.valid += 1;
                summary.warnings += r.warnings.len() as u64;
                rows.push(r);
            }
            RowOutcome::Quarantined(q) | RowOutcome::Blank(q) => {
                summary.quarantined += 1;
                bad.push(q);
            }
        }
        if rows.len() >= BATCH_ROWS {
            send(DeliveryBatch::Rows(std::mem::replace(&mut rows, Vec::with_capacity(BATCH_ROWS))))?;
        }
        if bad.len() >= 1_000 {
            send(DeliveryBatch::Quarantine(std::mem::take(&mut bad)))?;
        }
        if summary.rows_read.is_multiple_of(1024) {
            progress.rows_read.store(summary.rows_read, Ordering::Relaxed);
            progress.bytes_read.store(records.bytes_read(), Ordering::Relaxed);
        }
    }
    progress.rows_read.store(summary.rows_read, Ordering::Relaxed);
    progress.bytes_read.store(records.bytes_read(), Ordering::Relaxed);
    if !rows.is_empty() {
        send(DeliveryBatch::Rows(rows))?;
    }
    if !bad.is_empty() {
        send(DeliveryBatch::Quarantine(bad))?;
    }
    if opts.mode == DeliveryMode::Snapshot && summary.valid == 0 {
        return Err(failure(
            "empty-snapshot",
            "a snapshot delivery without a single valid row would delete the whole dataset; nothing was changed",
            "全量交付中没有任何有效数据行，若执行将清空整个数据集，已拒绝，数据未作任何改动",
        ));
    }
    let commit = if summary.quarantined > 0 { DeliveryBatch::CommitKeepAbsent } else { DeliveryBatch::Commit };
    send(commit)?;
    Ok(summary)
}

/// What validating a file alone found (no store involved).
#[derive(Debug, Clone, Default)]
pub struct CheckSummary {
    pub rows_read: u64,
    pub valid: u64,
    pub quarantined: u64,
    pub warnings: u64,
    pub encoding: String,
}

/// Decode and validate a file against a dataset's schema without storing anything:
/// the reader side of a delivery on its own (the benchmark's "parse + validate" figure).
/// Blocking: call it from a blocking thread.
pub fn check_file(
    source: Box<dyn Read + Send>,
    opts: &DeliverOptions,
    dataset: &Dataset,
    today: NaiveDate,
) -> std::result::Result<CheckSummary, DeliveryFailure> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(CHANNEL_DEPTH);
    let drain = std::thread::spawn(move || while rx.blocking_recv().is_some() {});
    let result = read_and_validate(source, opts, dataset, today, tx, &DeliveryProgress::default());
    let _ = drain.join();
    result.map(|s| CheckSummary {
        rows_read: s.rows_read,
        valid: s.valid,
        quarantined: s.quarantined,
        warnings: s.warnings,
        encoding: s.encoding,
    })
}

impl Hub {
    /// Deliver a file into a dataset. The delivery is recorded whatever happens; the
    /// report says `succeeded` (possibly with quarantined rows) or `failed` (with the
    /// reason — then nothing of it was kept).
    pub async fn deliver(
        &self,
        p: &Principal,
        code: &str,
        source: Box<dyn Read + Send>,
        opts: DeliverOptions,
        progress: Arc<DeliveryProgress>,
        ctx: &Ctx,
    ) -> Result<DeliveryReport> {
        let dataset = self.load_dataset(code).await?;
        let auth = self.authorize(p, Action::Deliver { provider: &dataset.provider }, code, ctx).await?;
        if crate::licence_share::is_licence_dataset(dataset.code.as_str()) {
            return Err(crate::licence_share::licence_dataset_error(dataset.code.as_str()));
        }
        let started_at = self.clock().now();
        let started = std::time::Instant::now();
        let new = NewDelivery {
            dataset: dataset.code.clone(),
            schema_version: dataset.schema_version,
            mode: opts.mode,
            format: format_name(opts.format).to_string(),
            encoding: opts.encoding.map(|e| e.as_str().to_string()).unwrap_or_else(|| "auto".into()),
            submitted_by: p.username.clone(),
            org: dataset.provider.clone(),
            file_name: opts.file_name.clone(),
            started_at,
        };
        let id = self.store().begin_delivery(&new).await.map_err(store_err)?;

        let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_DEPTH);
        let today = (started_at + chrono::Duration::hours(8)).date_naive();
        let reader = {
            let dataset = dataset.clone();
            let opts = opts.clone();
            let progress = progress.clone();
            tokio::task::spawn_blocking(move || read_and_validate(source, &opts, &dataset, today, tx, &progress))
        };
        let applied = self.store().apply_delivery(&dataset, id, opts.mode, started_at, rx).await;
        let read = reader.await.map_err(Error::internal)?;

        let mut report = DeliveryReport {
            id,
            dataset: dataset.code.clone(),
            status: DeliveryStatus::Failed,
            mode: opts.mode,
            format: new.format.clone(),
            encoding: new.encoding.clone(),
            schema_version: dataset.schema_version,
            submitted_by: p.username.clone(),
            rows_read: 0,
            rows_accepted: 0,
            rows_inserted: 0,
            rows_updated: 0,
            rows_unchanged: 0,
            rows_quarantined: 0,
            warnings: 0,
            rows_deleted: 0,
            duration_ms: 0,
            started_at,
            finished_at: None,
            error: None,
        };
        match (&read, applied) {
            (Ok(summary), Ok(outcome)) => {
                fill_counts(&mut report, summary, &outcome);
                report.status = DeliveryStatus::Succeeded;
            }
            (Ok(summary), Err(e)) => {
                tracing::error!(delivery = id, error = %e, "storing a delivery failed");
                report.rows_read = summary.rows_read;
                report.encoding = summary.encoding.clone();
                report.error = Some(failure(
                    "store-error",
                    "the rows could not be stored; nothing of this delivery was kept",
                    "数据写入失败，本次交付未保留任何数据",
                ));
            }
            (Err(f), _) => {
                report.rows_read = progress.rows_read.load(Ordering::Relaxed);
                report.error = Some(f.clone());
            }
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        report.finished_at = Some(self.clock().now());
        self.store().finish_delivery(&report).await.map_err(store_err)?;
        let detail = json!({
            "delivery": id,
            "status": report.status.as_str(),
            "rows_read": report.rows_read,
            "rows_accepted": report.rows_accepted,
            "rows_quarantined": report.rows_quarantined,
            "error": report.error.as_ref().map(|e| e.code.clone()),
        });
        let outcome = if report.status == DeliveryStatus::Succeeded { Outcome::Succeeded } else { Outcome::Failed };
        let what = Audit { on_behalf_of: auth.on_behalf_of(), ..Audit::of(auth.action(), code, outcome) };
        self.audit(p, what, detail, ctx).await?;
        Ok(report)
    }

    async fn provider_dataset(&self, p: &Principal, code: &str, ctx: &Ctx) -> Result<Dataset> {
        let d = self.load_dataset(code).await?;
        self.authorize(p, Action::ReadProviderData { provider: &d.provider }, code, ctx).await?;
        Ok(d)
    }

    /// One delivery's report (the provider's staff or a platform admin).
    pub async fn get_delivery(&self, p: &Principal, id: i64, ctx: &Ctx) -> Result<DeliveryReport> {
        let report = self
            .store()
            .get_delivery(id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::not_found("delivery", "交付记录", &id.to_string()))?;
        self.provider_dataset(p, report.dataset.as_str(), ctx).await?;
        Ok(report)
    }

    /// A dataset's deliveries, newest first.
    pub async fn list_deliveries(
        &self,
        p: &Principal,
        code: &str,
        q: DeliveryQuery,
        ctx: &Ctx,
    ) -> Result<Vec<DeliveryReport>> {
        let d = self.provider_dataset(p, code, ctx).await?;
        let q = DeliveryQuery { dataset: Some(d.code), limit: q.limit.clamp(1, 500), ..q };
        self.store().list_deliveries(&q).await.map_err(store_err)
    }

    /// Quarantined rows of a delivery.
    pub async fn quarantine(
        &self,
        p: &Principal,
        id: i64,
        offset: u64,
        limit: u32,
        ctx: &Ctx,
    ) -> Result<Page<QuarantinedRow>> {
        self.get_delivery(p, id, ctx).await?;
        self.store().list_quarantine(id, offset, limit.clamp(1, 10_000)).await.map_err(store_err)
    }

    /// Mark deliveries interrupted by a crash as failed (at start-up).
    pub async fn recover_interrupted_deliveries(&self) -> Result<u64> {
        self.store().fail_interrupted_deliveries(self.clock().now()).await.map_err(store_err)
    }

    // ------------------------------------------------------------ responsibilities

    pub async fn put_responsibility(
        &self,
        p: &Principal,
        dataset: &str,
        cycle: UpdateCycle,
        note: Option<String>,
        ctx: &Ctx,
    ) -> Result<Responsibility> {
        let auth = self.authorize(p, Action::ManageResponsibilities, dataset, ctx).await?;
        let result = async {
            let d = self.load_dataset(dataset).await?;
            let r = Responsibility {
                dataset: d.code,
                org: d.provider,
                cycle,
                note: note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
                created_by: p.username.clone(),
                created_at: self.clock().now(),
            };
            self.store().put_responsibility(&r).await.map_err(store_err)?;
            Ok(r)
        }
        .await;
        self.finish(&auth, dataset, result, json!({"cycle": cycle.as_str()}), ctx).await
    }

    pub async fn delete_responsibility(&self, p: &Principal, dataset: &str, ctx: &Ctx) -> Result<()> {
        let auth = self.authorize(p, Action::ManageResponsibilities, dataset, ctx).await?;
        let result = async {
            let code =
                DatasetCode::parse(dataset).map_err(|_| Error::not_found("responsibility", "责任清单条目", dataset))?;
            if self.store().delete_responsibility(&code).await.map_err(store_err)? {
                Ok(())
            } else {
                Err(Error::not_found("responsibility", "责任清单条目", dataset))
            }
        }
        .await;
        self.finish(&auth, dataset, result, json!({"deleted": true}), ctx).await
    }

    pub async fn list_responsibilities(&self, p: &Principal, ctx: &Ctx) -> Result<Vec<Responsibility>> {
        self.authorize(p, Action::ReadCompliance, "responsibilities", ctx).await?;
        self.store().list_responsibilities().await.map_err(store_err)
    }

    /// The compliance view (应归尽归): per responsibility entry, whether its data is
    /// current, late or never delivered, with quarantine rates; and a city summary.
    pub async fn compliance(&self, p: &Principal, ctx: &Ctx) -> Result<Compliance> {
        self.authorize(p, Action::ReadCompliance, "compliance", ctx).await?;
        let now = self.clock().now();
        let resp = self.store().list_responsibilities().await.map_err(store_err)?;
        let stats = self.store().delivery_stats().await.map_err(store_err)?;
        let mut items = Vec::with_capacity(resp.len());
        for r in resp {
            let s = stats.iter().find(|s| s.dataset == r.dataset);
            items.push(ComplianceItem::evaluate(r, s, now));
        }
        let summary = ComplianceSummary {
            datasets: items.len() as u64,
            current: items.iter().filter(|i| i.state == ComplianceState::Current).count() as u64,
            late: items.iter().filter(|i| i.state == ComplianceState::Late).count() as u64,
            never_delivered: items.iter().filter(|i| i.state == ComplianceState::Never).count() as u64,
        };
        Ok(Compliance { summary, items, at: now })
    }
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Csv => "csv",
        Format::JsonLines => "jsonl",
        Format::Xlsx => "xlsx",
    }
}

fn fill_counts(report: &mut DeliveryReport, s: &ReadSummary, o: &ApplyOutcome) {
    report.rows_read = s.rows_read;
    report.rows_accepted = o.inserted + o.updated + o.unchanged;
    report.rows_inserted = o.inserted;
    report.rows_updated = o.updated;
    report.rows_unchanged = o.unchanged;
    report.rows_quarantined = s.quarantined + o.repeated;
    report.warnings = s.warnings.saturating_sub(o.repeated_warnings);
    report.rows_deleted = o.deleted;
    report.encoding = s.encoding.clone();
}

/// State of one dataset against its responsibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplianceState {
    Current,
    Late,
    Never,
}

impl ComplianceState {
    pub fn as_str(self) -> &'static str {
        match self {
            ComplianceState::Current => "current",
            ComplianceState::Late => "late",
            ComplianceState::Never => "never",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            ComplianceState::Current => "按时",
            ComplianceState::Late => "逾期",
            ComplianceState::Never => "从未交付",
        }
    }
}

/// How long after the last successful delivery a dataset becomes late. Generous by
/// one day (or one hour for real-time data) so a delivery on the due date counts.
pub fn allowed_gap(cycle: UpdateCycle) -> Option<chrono::Duration> {
    use chrono::Duration as D;
    match cycle {
        UpdateCycle::Realtime => Some(D::hours(1)),
        UpdateCycle::Daily => Some(D::days(2)),
        UpdateCycle::Weekly => Some(D::days(8)),
        UpdateCycle::Monthly => Some(D::days(32)),
        UpdateCycle::Quarterly => Some(D::days(93)),
        UpdateCycle::Yearly => Some(D::days(367)),
        UpdateCycle::Irregular => None,
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ComplianceItem {
    pub dataset: DatasetCode,
    pub org: crate::names::OrgCode,
    pub cycle: UpdateCycle,
    pub state: ComplianceState,
    pub last_delivery_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// When the next delivery is (or was) due.
    pub due_at: Option<DateTime<Utc>>,
    pub deliveries: u64,
    pub failed_deliveries: u64,
    pub rows_read: u64,
    pub rows_quarantined: u64,
    /// rows_quarantined / rows_read over all deliveries (0 when nothing was read).
    pub quarantine_rate: f64,
    pub record_count: u64,
}

impl ComplianceItem {
    fn evaluate(r: Responsibility, s: Option<&DeliveryStats>, now: DateTime<Utc>) -> ComplianceItem {
        let last_success_at = s.and_then(|s| s.last_success_at);
        let due_at = match (last_success_at, allowed_gap(r.cycle)) {
            (Some(t), Some(gap)) => Some(t + gap),
            (None, Some(gap)) => Some(r.created_at + gap),
            _ => None,
        };
        let state = match (last_success_at, due_at) {
            (None, _) => ComplianceState::Never,
            (Some(_), Some(due)) if now > due => ComplianceState::Late,
            _ => ComplianceState::Current,
        };
        let rows_read = s.map(|s| s.rows_read).unwrap_or(0);
        let rows_quarantined = s.map(|s| s.rows_quarantined).unwrap_or(0);
        ComplianceItem {
            dataset: r.dataset,
            org: r.org,
            cycle: r.cycle,
            state,
            last_delivery_at: s.and_then(|s| s.last_delivery_at),
            last_success_at,
            due_at,
            deliveries: s.map(|s| s.deliveries).unwrap_or(0),
            failed_deliveries: s.map(|s| s.failed).unwrap_or(0),
            rows_read,
            rows_quarantined,
            quarantine_rate: if rows_read == 0 { 0.0 } else { rows_quarantined as f64 / rows_read as f64 },
            record_count: s.map(|s| s.record_count).unwrap_or(0),
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ComplianceSummary {
    pub datasets: u64,
    pub current: u64,
    pub late: u64,
    pub never_delivered: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Compliance {
    pub at: DateTime<Utc>,
    pub summary: ComplianceSummary,
    pub items: Vec<ComplianceItem>,
}

/// Turn a `DeliveryFailure` code into the API error code used when the request itself
/// (not the delivery) is at fault.
pub fn unsupported_format(content_type: &str) -> Error {
    Error::new(
        Code::UnsupportedMediaType,
        format!("deliveries are CSV (text/csv), JSON Lines (application/x-ndjson) or XLSX; got \"{content_type}\""),
        format!("交付文件须为CSV（text/csv）、JSON Lines（application/x-ndjson）或XLSX格式，当前为“{content_type}”"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn resp(cycle: UpdateCycle) -> Responsibility {
        Responsibility {
            dataset: DatasetCode::parse("gaj-hjrk").unwrap(),
            org: crate::names::OrgCode::parse("cz-gaj").unwrap(),
            cycle,
            note: None,
            created_by: "admin".into(),
            created_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    fn stats(last: Option<DateTime<Utc>>) -> DeliveryStats {
        DeliveryStats {
            dataset: DatasetCode::parse("gaj-hjrk").unwrap(),
            deliveries: 3,
            failed: 1,
            last_delivery_at: last,
            last_success_at: last,
            rows_read: 1000,
            rows_quarantined: 25,
            record_count: 975,
        }
    }

    #[test]
    fn compliance_states() {
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        let never = ComplianceItem::evaluate(resp(UpdateCycle::Daily), None, now);
        assert_eq!(never.state, ComplianceState::Never);
        let yesterday = Some(now - chrono::Duration::days(1));
        let current = ComplianceItem::evaluate(resp(UpdateCycle::Daily), Some(&stats(yesterday)), now);
        assert_eq!(current.state, ComplianceState::Current);
        assert!((current.quarantine_rate - 0.025).abs() < 1e-9);
        let week_ago = Some(now - chrono::Duration::days(7));
        assert_eq!(
            ComplianceItem::evaluate(resp(UpdateCycle::Daily), Some(&stats(week_ago)), now).state,
            ComplianceState::Late
        );
        assert_eq!(
            ComplianceItem::evaluate(resp(UpdateCycle::Monthly), Some(&stats(week_ago)), now).state,
            ComplianceState::Current
        );
        assert_eq!(
            ComplianceItem::evaluate(resp(UpdateCycle::Irregular), Some(&stats(week_ago)), now).state,
            ComplianceState::Current
        );
    }
}
