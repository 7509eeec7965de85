//! The tamper-evident audit log beyond the listing (`GET /api/v1/audit`, in
//! `directory.rs`): signed checkpoints, the chain's status, the platform public key,
//! a citizen's record of who read their data, and a provider's view of a dataset.

use super::views::AuditView;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{AppQuery, Auth};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use govhub_core::audit::{Checkpoint, SubjectAccess};
use govhub_core::model::AuditQuery;
use govhub_core::{Code, Error};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// This module's routes (merged into the API in `mod.rs`).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_checkpoint))
        .routes(routes!(status))
        .routes(routes!(public_key))
        .routes(routes!(about_me))
        .routes(routes!(dataset_audit))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointView {
    /// The last entry the checkpoint covers.
    pub seq: i64,
    /// That entry's hash: the chain's head when the checkpoint was made.
    pub head_hash: String,
    pub at: DateTime<Utc>,
    /// DER SM2 signature (SM3, ID 1234567812345678), hex, over
    /// `govhub-audit-checkpoint-v1\nseq=<seq>\nhead=<head_hash>\nat=<at, 6 fractional digits>Z\n`.
    pub signature: String,
    /// SM3 of the signing key's DER SubjectPublicKeyInfo.
    pub key_fingerprint: String,
}

impl From<&Checkpoint> for CheckpointView {
    fn from(c: &Checkpoint) -> Self {
        CheckpointView {
            seq: c.seq,
            head_hash: c.head_hash.clone(),
            at: c.at,
            signature: hex_of(&c.signature),
            key_fingerprint: c.key_fingerprint.clone(),
        }
    }
}

fn hex_of(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Sign a checkpoint of the audit chain's current head now (platform admin). Also made
/// automatically at intervals; `govhub audit checkpoint` does the same from the CLI.
#[utoipa::path(post, path = "/api/v1/audit/checkpoints", tag = "audit", security(("bearer" = [])),
    responses((status = 201, body = CheckpointView), (status = 403, body = ErrorBody),
        (status = 503, description = "platform_key_missing", body = ErrorBody)))]
pub async fn create_checkpoint(
    State(st): State<AppState>,
    auth: Auth,
) -> Result<(StatusCode, Json<CheckpointView>), ApiError> {
    let cp = st.hub.create_checkpoint(&auth.principal, &auth.ctx).await?;
    Ok((StatusCode::CREATED, Json(CheckpointView::from(&cp))))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditStatusView {
    /// The last entry's seq (0 when the log is empty).
    pub head_seq: i64,
    pub head_hash: Option<String>,
    pub latest_checkpoint: Option<CheckpointView>,
    /// Entries after the newest checkpoint (covered by the chain alone until the next).
    pub unchecked_entries: i64,
    /// The platform key this server signs with.
    pub key_fingerprint: Option<String>,
}

/// The chain's head and newest signed checkpoint (platform admin).
#[utoipa::path(get, path = "/api/v1/audit/status", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = AuditStatusView), (status = 403, body = ErrorBody)))]
pub async fn status(State(st): State<AppState>, auth: Auth) -> Result<Json<AuditStatusView>, ApiError> {
    let s = st.hub.audit_status(&auth.principal, &auth.ctx).await?;
    let head_seq = s.head.as_ref().map(|h| h.seq).unwrap_or(0);
    let covered = s.latest_checkpoint.as_ref().map(|c| c.seq).unwrap_or(0);
    Ok(Json(AuditStatusView {
        head_seq,
        head_hash: s.head.map(|h| h.hash),
        unchecked_entries: head_seq - covered,
        latest_checkpoint: s.latest_checkpoint.as_ref().map(CheckpointView::from),
        key_fingerprint: s.key_fingerprint,
    }))
}

/// The platform's SM2 public key (PEM), which verifies audit checkpoints and the
/// platform's other signatures. Public.
#[utoipa::path(get, path = "/api/v1/audit/public-key.pem", tag = "audit",
    responses((status = 200, description = "SubjectPublicKeyInfo PEM", body = String, content_type = "application/x-pem-file"),
        (status = 503, description = "platform_key_missing", body = ErrorBody)))]
pub async fn public_key(State(st): State<AppState>) -> Result<Response, ApiError> {
    let pem = st.hub.platform_public_key_pem().ok_or_else(|| {
        ApiError(Error::new(Code::PlatformKeyMissing, "this server holds no platform key", "本服务未加载平台签名密钥"))
    })?;
    let mut resp = pem.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-pem-file"));
    Ok(resp)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectAccessView {
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// The organisation that read.
    pub org: Option<String>,
    pub on_behalf_of: Option<String>,
    pub app: Option<String>,
    pub purpose: Option<String>,
    pub action: String,
    /// What was read (dataset code).
    pub target: String,
    pub rows: Option<i64>,
}

impl From<&SubjectAccess> for SubjectAccessView {
    fn from(a: &SubjectAccess) -> Self {
        SubjectAccessView {
            seq: a.seq,
            at: a.at,
            org: a.org.as_ref().map(ToString::to_string),
            on_behalf_of: a.on_behalf_of.as_ref().map(ToString::to_string),
            app: a.app.clone(),
            purpose: a.purpose.clone(),
            action: a.action.clone(),
            target: a.target.clone(),
            rows: a.rows,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LimitParam {
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// Which departments read records about me, when, through which app and for what
/// purpose (a citizen or enterprise with a registered ID number / USCC), newest first.
#[utoipa::path(get, path = "/api/v1/audit/about-me", tag = "audit", security(("bearer" = [])), params(LimitParam),
    responses((status = 200, body = [SubjectAccessView]), (status = 403, body = ErrorBody)))]
pub async fn about_me(
    State(st): State<AppState>,
    auth: Auth,
    AppQuery(q): AppQuery<LimitParam>,
) -> Result<Json<Vec<SubjectAccessView>>, ApiError> {
    let accesses = st.hub.my_accesses(&auth.principal, q.limit.unwrap_or(100), &auth.ctx).await?;
    Ok(Json(accesses.iter().map(SubjectAccessView::from).collect()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DatasetAuditFilter {
    /// e.g. `share.` for reads through the sharing API
    pub action: Option<String>,
    pub after_seq: Option<i64>,
    pub limit: Option<u32>,
}

/// What happened to a dataset and who read it (the provider's data officers and
/// approvers, platform admins), newest first.
#[utoipa::path(get, path = "/api/v1/datasets/{code}/audit", tag = "audit", security(("bearer" = [])),
    params(("code" = String, Path, description = "dataset code"), DatasetAuditFilter),
    responses((status = 200, body = [AuditView]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn dataset_audit(
    State(st): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
    AppQuery(f): AppQuery<DatasetAuditFilter>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let q = AuditQuery {
        action_prefix: f.action,
        after_seq: f.after_seq,
        limit: f.limit.unwrap_or(100),
        ..Default::default()
    };
    let events = st.hub.dataset_audit(&auth.principal, &code, &q, &auth.ctx).await?;
    Ok(Json(events.iter().map(AuditView::from).collect()))
}
