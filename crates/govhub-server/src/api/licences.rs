//! E-licences and the PKI: the root and organisation certificates, licence types,
//! issuing, reading, the signed file, status changes, the VC export and the Bitstring
//! Status Lists. Each handler calls one `Hub` method (`govhub-core::licence_service`).

use crate::error::{ApiError, ErrorBody};
use crate::extract::{AppJson, AppQuery, Auth};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use govhub_core::licence::{Licence, LicenceType};
use govhub_core::licence_service::{LicenceInput, LicenceTypeInput, StatusInput};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(root_pem))
        .routes(routes!(org_certificate))
        .routes(routes!(rotate_seal_key))
        .routes(routes!(revoke_seal_key))
        .routes(routes!(create_type, list_types))
        .routes(routes!(issue, list))
        .routes(routes!(get_licence))
        .routes(routes!(file))
        .routes(routes!(verification))
        .routes(routes!(set_status))
        .routes(routes!(credential))
        .routes(routes!(status_list))
        .routes(routes!(share_licences))
        .routes(routes!(share_licence))
        .routes(routes!(share_licence_file))
}

/// The server's public base URL for links in credentials: the configured one, or
/// `http://<Host>`.
pub(crate) fn base_url(st: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &st.config.public_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

fn with_type(body: impl IntoResponse, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LicenceTypeView {
    /// 证照类型代码 (authority USCC + 3 digits).
    pub code: String,
    pub name: String,
    pub authority: String,
    /// `person` or `organisation`.
    pub holder_kind: String,
    /// The type-specific fields (Table Schema).
    #[schema(value_type = Object)]
    pub schema: Value,
    pub created_at: DateTime<Utc>,
}

impl From<&LicenceType> for LicenceTypeView {
    fn from(t: &LicenceType) -> Self {
        LicenceTypeView {
            code: t.code.clone(),
            name: t.name.clone(),
            authority: t.authority.to_string(),
            holder_kind: t.holder_kind.as_str().into(),
            schema: t.schema.to_json(),
            created_at: t.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LicenceView {
    /// GB/T 36903 identifier with its check character.
    pub id: String,
    #[serde(rename = "type")]
    pub type_code: String,
    pub type_name: String,
    pub number: String,
    pub holder_code: String,
    pub holder_name: String,
    pub issuer: String,
    pub issuer_name: String,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, Value>,
    pub issued_at: DateTime<Utc>,
    pub issued_by: String,
    /// `active`, `suspended` or `revoked`.
    pub status: String,
    pub status_reason: Option<String>,
    pub status_at: Option<DateTime<Utc>>,
    /// The public verify page.
    pub verify_url: String,
}

impl From<&Licence> for LicenceView {
    fn from(l: &Licence) -> Self {
        LicenceView {
            id: l.id.as_str().into(),
            type_code: l.type_code.clone(),
            type_name: l.type_name.clone(),
            number: l.id.number().into(),
            holder_code: l.holder_code.clone(),
            holder_name: l.holder_name.clone(),
            issuer: l.issuer.to_string(),
            issuer_name: l.issuer_name.clone(),
            valid_from: l.valid_from,
            valid_until: l.valid_until,
            fields: l.fields.clone(),
            issued_at: l.issued_at,
            issued_by: l.issued_by.clone(),
            status: l.status.as_str().into(),
            status_reason: l.status_reason.clone(),
            status_at: l.status_at,
            verify_url: format!("/verify/{}", l.id.as_str()),
        }
    }
}

/// The platform root certificate (PEM). Public: it is all an offline verifier needs.
#[utoipa::path(get, path = "/api/v1/pki/root.pem", tag = "licences",
    responses((status = 200, description = "X.509 PEM", body = String, content_type = "application/x-pem-file"),
        (status = 503, description = "seal_authority_missing", body = ErrorBody)))]
pub async fn root_pem(State(st): State<AppState>) -> Result<Response, ApiError> {
    Ok(with_type(st.hub.root_certificate_pem()?, "application/x-pem-file"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CertQuery {
    /// A past certificate by its serial (hex); default the current one.
    pub serial: Option<String>,
}

/// An organisation's seal certificate (PEM), issued by the root on first need. Public.
#[utoipa::path(get, path = "/api/v1/orgs/{code}/certificate.pem", tag = "licences",
    params(("code" = String, Path, description = "organisation code"), CertQuery),
    responses((status = 200, description = "X.509 PEM", body = String, content_type = "application/x-pem-file"),
        (status = 404, body = ErrorBody), (status = 409, description = "seal_key_revoked", body = ErrorBody),
        (status = 422, description = "issuer_without_uscc", body = ErrorBody)))]
pub async fn org_certificate(
    State(st): State<AppState>,
    Path(code): Path<String>,
    AppQuery(q): AppQuery<CertQuery>,
) -> Result<Response, ApiError> {
    Ok(with_type(st.hub.org_certificate_pem(&code, q.serial.as_deref()).await?, "application/x-pem-file"))
}

/// What a seal key change did.
#[derive(Debug, Serialize, ToSchema)]
pub struct SealKeyView {
    /// The organisation.
    pub org: String,
    /// Rotation: the new certificate's serial (hex). Revocation: the revoked one's, or
    /// null when the organisation had no current key.
    pub serial: Option<String>,
    /// Where the certificate is served.
    pub certificate_url: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeSealKeyInput {
    /// Why (1–500 characters); recorded in the audit log and shown to verifiers.
    pub reason: String,
}

fn cert_url(code: &str, serial: &str) -> String {
    format!("/api/v1/orgs/{code}/certificate.pem?serial={serial}")
}

/// Rotate an organisation's seal key (platform admin; audited): the current key is
/// retired — licences it sealed stay valid, online and offline — and a new key and
/// certificate are made at once; new licences are sealed with it. Also the way back to
/// issuing after a revocation.
#[utoipa::path(post, path = "/api/v1/orgs/{code}/seal-key/rotate", tag = "licences", security(("bearer" = [])),
    params(("code" = String, Path, description = "organisation code")),
    responses((status = 200, body = SealKeyView), (status = 403, body = ErrorBody),
        (status = 422, description = "unknown_org / issuer_without_uscc", body = ErrorBody)))]
pub async fn rotate_seal_key(
    State(st): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
) -> Result<Json<SealKeyView>, ApiError> {
    let serial = st.hub.rotate_seal_key(&auth.principal, &code, &auth.ctx).await?;
    Ok(Json(SealKeyView { certificate_url: Some(cert_url(&code, &serial)), org: code, serial: Some(serial) }))
}

/// Revoke an organisation's current seal key (platform admin; audited): it signs
/// nothing more, the organisation issues nothing until its key is rotated
/// (`seal_key_revoked`), and the verify page reports every licence it sealed as
/// `certificate-revoked`.
#[utoipa::path(post, path = "/api/v1/orgs/{code}/seal-key/revoke", tag = "licences", security(("bearer" = [])),
    params(("code" = String, Path, description = "organisation code")), request_body = RevokeSealKeyInput,
    responses((status = 200, body = SealKeyView), (status = 403, body = ErrorBody),
        (status = 400, description = "invalid_request (reason)", body = ErrorBody), (status = 422, description = "unknown_org", body = ErrorBody)))]
pub async fn revoke_seal_key(
    State(st): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
    AppJson(input): AppJson<RevokeSealKeyInput>,
) -> Result<Json<SealKeyView>, ApiError> {
    let serial = st.hub.revoke_seal_key(&auth.principal, &code, &input.reason, &auth.ctx).await?;
    Ok(Json(SealKeyView { certificate_url: serial.as_deref().map(|s| cert_url(&code, s)), org: code, serial }))
}

/// Define a licence type (the authority's data officer, or a platform admin).
#[utoipa::path(post, path = "/api/v1/licence-types", tag = "licences", security(("bearer" = [])),
    request_body = LicenceTypeInput,
    responses((status = 201, body = LicenceTypeView), (status = 409, description = "licence_type_exists", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_type(
    State(st): State<AppState>,
    auth: Auth,
    AppJson(input): AppJson<LicenceTypeInput>,
) -> Result<(StatusCode, Json<LicenceTypeView>), ApiError> {
    let t = st.hub.create_licence_type(&auth.principal, input, &auth.ctx).await?;
    Ok((StatusCode::CREATED, Json(LicenceTypeView::from(&t))))
}

/// Licence types.
#[utoipa::path(get, path = "/api/v1/licence-types", tag = "licences", security(("bearer" = [])),
    responses((status = 200, body = [LicenceTypeView]), (status = 401, body = ErrorBody)))]
pub async fn list_types(State(st): State<AppState>, auth: Auth) -> Result<Json<Vec<LicenceTypeView>>, ApiError> {
    let ts = st.hub.list_licence_types(&auth.principal, &auth.ctx).await?;
    Ok(Json(ts.iter().map(LicenceTypeView::from).collect()))
}

/// Issue a licence, sealed by the issuing organisation (its officer, or an admin
/// naming `issuer`).
#[utoipa::path(post, path = "/api/v1/licences", tag = "licences", security(("bearer" = [])),
    request_body = LicenceInput,
    responses((status = 201, body = LicenceView), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn issue(
    State(st): State<AppState>,
    auth: Auth,
    AppJson(input): AppJson<LicenceInput>,
) -> Result<(StatusCode, Json<LicenceView>), ApiError> {
    let l = st.hub.issue_licence(&auth.principal, input, &auth.ctx).await?;
    Ok((StatusCode::CREATED, Json(LicenceView::from(&l))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HolderQuery {
    /// The holder's ID number or USCC.
    pub holder: String,
}

/// A holder's licences (the holder, admins: all; an issuer's officers: their own).
#[utoipa::path(get, path = "/api/v1/licences", tag = "licences", security(("bearer" = [])), params(HolderQuery),
    responses((status = 200, body = [LicenceView]), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    auth: Auth,
    AppQuery(q): AppQuery<HolderQuery>,
) -> Result<Json<Vec<LicenceView>>, ApiError> {
    let ls = st.hub.list_licences(&auth.principal, &q.holder, &auth.ctx).await?;
    Ok(Json(ls.iter().map(LicenceView::from).collect()))
}

/// One licence.
#[utoipa::path(get, path = "/api/v1/licences/{id}", tag = "licences", security(("bearer" = [])),
    params(("id" = String, Path, description = "licence identifier")),
    responses((status = 200, body = LicenceView), (status = 404, body = ErrorBody),
        (status = 422, description = "invalid_licence_id / licence_id_check", body = ErrorBody)))]
pub async fn get_licence(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<LicenceView>, ApiError> {
    let l = st.hub.get_licence(&auth.principal, &id, &auth.ctx).await?;
    Ok(Json(LicenceView::from(&l)))
}

/// The signed licence file (docs/licences.md), checked offline by `govhub licence verify`.
#[utoipa::path(get, path = "/api/v1/licences/{id}/file", tag = "licences", security(("bearer" = [])),
    params(("id" = String, Path, description = "licence identifier")),
    responses((status = 200, description = "govhub-licence-file/1 JSON", content_type = "application/json"),
        (status = 404, body = ErrorBody)))]
pub async fn file(State(st): State<AppState>, auth: Auth, Path(id): Path<String>) -> Result<Response, ApiError> {
    let l = st.hub.get_licence(&auth.principal, &id, &auth.ctx).await?;
    Ok(file_response(&l))
}

/// The signed licence file as a download.
fn file_response(l: &Licence) -> Response {
    let mut r = with_type(l.file().to_bytes(), "application/json");
    let name = format!("attachment; filename=\"licence-{}.json\"", l.id.number());
    if let Ok(v) = HeaderValue::from_str(&name) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// Suspend, reinstate or revoke (the issuer's officers, admins). Audited; revocation is final.
#[utoipa::path(post, path = "/api/v1/licences/{id}/status", tag = "licences", security(("bearer" = [])),
    params(("id" = String, Path, description = "licence identifier")), request_body = StatusInput,
    responses((status = 200, body = LicenceView), (status = 409, description = "licence_revoked", body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn set_status(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    AppJson(input): AppJson<StatusInput>,
) -> Result<Json<LicenceView>, ApiError> {
    let l = st.hub.set_licence_status(&auth.principal, &id, input, &auth.ctx).await?;
    Ok(Json(LicenceView::from(&l)))
}

/// The licence as a W3C Verifiable Credential 2.0 (proof: govhub's SM2 cryptosuite,
/// not a W3C-registered one; see docs/licences.md).
#[utoipa::path(get, path = "/api/v1/licences/{id}/credential", tag = "licences", security(("bearer" = [])),
    params(("id" = String, Path, description = "licence identifier")),
    responses((status = 200, description = "VC 2.0 JSON", content_type = "application/vc+ld+json"),
        (status = 404, body = ErrorBody)))]
pub async fn credential(
    State(st): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let vc = st.hub.licence_credential(&auth.principal, &id, &base_url(&st, &headers), &auth.ctx).await?;
    Ok(with_type(Json(vc), "application/vc+ld+json"))
}

/// A Bitstring Status List credential (`revocation` or `suspension`). Public.
#[utoipa::path(get, path = "/api/v1/licences/status-list/{purpose}/{n}", tag = "licences",
    params(("purpose" = String, Path, description = "revocation or suspension"), ("n" = i64, Path, description = "list number")),
    responses((status = 200, description = "BitstringStatusListCredential", content_type = "application/vc+ld+json"),
        (status = 404, body = ErrorBody)))]
pub async fn status_list(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((purpose, n)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    let vc = st.hub.status_list(&purpose, n, &base_url(&st, &headers)).await?;
    let mut r = with_type(Json(vc), "application/vc+ld+json");
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}

// ------------------------------------------------------------ reuse by other departments

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SharedLicencesQuery {
    /// The holder's ID number or USCC.
    pub holder: String,
    /// The licence type code (21 characters): the grant is on this type's catalog
    /// entry `lic-<type code>`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub type_code: String,
    /// Comma-separated subset of the granted fields.
    pub fields: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SharedLicenceQuery {
    /// Comma-separated subset of the granted fields.
    pub fields: Option<String>,
}

/// A holder's licences of one type, for an app holding a grant on that type's catalog
/// entry (`lic-<type code>`, requested with `POST /api/v1/access-requests`): the granted
/// fields only, sensitive ones masked unless the grant allows clear text. Every read is
/// audited with the holder as subject (the holder sees it under 谁查看了我的数据).
#[utoipa::path(get, path = "/api/v1/share/licences", tag = "share", security(("bearer" = [])),
    params(SharedLicencesQuery),
    responses((status = 200, body = [Object]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "no_grant (none, expired, revoked, another type)", body = ErrorBody),
        (status = 404, description = "unknown_dataset (no such licence type)", body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn share_licences(
    State(st): State<AppState>,
    auth: Auth,
    AppQuery(q): AppQuery<SharedLicencesQuery>,
) -> Result<Json<Vec<serde_json::Map<String, Value>>>, ApiError> {
    let start = std::time::Instant::now();
    let dataset = govhub_core::licence_share::licence_dataset_code(&q.type_code);
    let r = st.hub.share_licences(&auth.principal, &q.holder, &q.type_code, q.fields.as_deref(), &auth.ctx).await;
    crate::api::sharing::usage(&st, auth.principal.app, &dataset, r.as_ref().map(|v| v.len() as u64), start);
    Ok(Json(r?))
}

/// The usage-metrics label of a licence read: its type's catalog entry.
fn shared_dataset(id: &str) -> String {
    match id.parse::<govhub_core::licence_id::LicenceId>() {
        Ok(l) => govhub_core::licence_share::licence_dataset_code(l.type_code()),
        Err(_) => "licences".into(),
    }
}

/// One licence, for an app holding a grant on its type: granted fields, masked.
#[utoipa::path(get, path = "/api/v1/share/licences/{id}", tag = "share", security(("bearer" = [])),
    params(("id" = String, Path, description = "licence identifier"), SharedLicenceQuery),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, description = "no_grant", body = ErrorBody),
        (status = 404, description = "unknown_licence", body = ErrorBody), (status = 422, description = "invalid_licence_id / licence_id_check", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn share_licence(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    AppQuery(q): AppQuery<SharedLicenceQuery>,
) -> Result<Json<serde_json::Map<String, Value>>, ApiError> {
    let start = std::time::Instant::now();
    let r = st.hub.share_licence(&auth.principal, &id, q.fields.as_deref(), &auth.ctx).await;
    crate::api::sharing::usage(&st, auth.principal.app, &shared_dataset(&id), r.as_ref().map(|_| 1), start);
    Ok(Json(r?))
}

/// The signed licence file (the one `govhub licence verify` checks), for an app whose
/// grant covers every field of the type in clear text — the seal covers every byte, so
/// nothing can be left out or masked (otherwise `grant_too_narrow`).
#[utoipa::path(get, path = "/api/v1/share/licences/{id}/file", tag = "share", security(("bearer" = [])),
    params(("id" = String, Path, description = "licence identifier")),
    responses((status = 200, description = "govhub-licence-file/1 JSON", content_type = "application/json"),
        (status = 403, description = "no_grant / grant_too_narrow", body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn share_licence_file(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let start = std::time::Instant::now();
    let r = st.hub.share_licence_file(&auth.principal, &id, &auth.ctx).await;
    crate::api::sharing::usage(&st, auth.principal.app, &shared_dataset(&id), r.as_ref().map(|_| 1), start);
    Ok(file_response(&r?))
}

/// What `GET /api/v1/licences/{id}/verification` says: the verify page's facts as JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationView {
    pub id: String,
    /// `valid`, `suspended`, `revoked`, `certificate-revoked`, `expired`, `tampered`, …
    pub result: String,
    pub valid: bool,
    pub reason: String,
    pub reason_zh: String,
    pub type_name: Option<String>,
    pub issuer_name: Option<String>,
    /// Masked.
    pub holder: Option<String>,
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
    pub status_reason: Option<String>,
    pub status_at: Option<DateTime<Utc>>,
    /// The serial (hex) of the seal certificate that sealed the licence.
    pub seal_serial: Option<String>,
    /// When that certificate's key was revoked, and why (like a CRL entry).
    pub seal_revoked_at: Option<DateTime<Utc>>,
    pub seal_revoke_reason: Option<String>,
}

/// The online check of a licence (public, like the verify page): the signature against
/// the root, the licence's status and its seal key's revocation, all as of now. This is
/// what `govhub licence verify FILE --online URL` asks, since a file alone cannot tell
/// whether it was revoked after it was downloaded.
#[utoipa::path(get, path = "/api/v1/licences/{id}/verification", tag = "licences",
    params(("id" = String, Path, description = "licence identifier")),
    responses((status = 200, body = VerificationView), (status = 404, description = "unknown_licence", body = ErrorBody),
        (status = 422, description = "invalid_licence_id / licence_id_check", body = ErrorBody)))]
pub async fn verification(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<VerificationView>, ApiError> {
    let v = st.hub.verify_licence_public(&id).await?;
    Ok(Json(VerificationView {
        result: v.verdict.code().into(),
        valid: v.verdict.is_valid(),
        reason: v.verdict.reason(),
        reason_zh: v.verdict.reason_zh(),
        id: v.id,
        type_name: v.type_name,
        issuer_name: v.issuer_name,
        holder: v.holder_masked,
        valid_from: v.valid_from,
        valid_until: v.valid_until,
        status_reason: v.status_reason,
        status_at: v.status_at,
        seal_serial: v.seal_serial,
        seal_revoked_at: v.seal_revoked_at,
        seal_revoke_reason: v.seal_revoke_reason,
    }))
}
