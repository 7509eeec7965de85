use super::views::{ColumnView, DatasetList, DatasetView, SchemaUpdateView, SchemaVersionView};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{AppJson, AppQuery, Auth};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use govhub_core::input::{DatasetInput, DatasetPatch, NewDataset};
use govhub_core::model::{DatasetQuery, Grade, OpenClass, SharingClass};
use govhub_core::names::OrgCode;
use govhub_core::{Code, Error};
use serde::Deserialize;
use utoipa::IntoParams;

/// Register a dataset in the catalog and create its typed table (the provider's data
/// officer, or a platform admin on the provider's behalf).
#[utoipa::path(post, path = "/api/v1/datasets", tag = "catalog", security(("bearer" = [])), request_body = DatasetInput,
    responses((status = 201, body = DatasetView), (status = 409, description = "dataset_exists", body = ErrorBody),
        (status = 422, description = "invalid_schema / invalid_dataset / unknown_org", body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn create_dataset(
    State(st): State<AppState>,
    auth: Auth,
    AppJson(input): AppJson<DatasetInput>,
) -> Result<(StatusCode, Json<DatasetView>), ApiError> {
    let d = st.hub.create_dataset(&auth.principal, NewDataset::try_from(input)?, &auth.ctx).await?;
    Ok((StatusCode::CREATED, Json(DatasetView::from(&d))))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CatalogSearch {
    /// Free text over code, name, summary and tags.
    pub q: Option<String>,
    /// Provider organisation code.
    pub provider: Option<String>,
    /// 无条件共享 / 有条件共享 / 不予共享
    pub sharing_class: Option<String>,
    /// 无条件开放 / 有条件开放 / 不予开放
    pub open_class: Option<String>,
    /// 核心 / 重要 / 一般
    pub grade: Option<String>,
    pub tag: Option<String>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

fn as_request_error(e: Error) -> Error {
    Error { code: Code::InvalidRequest, ..e }
}

impl CatalogSearch {
    /// Turn query parameters into a catalog query (shared with the web UI).
    pub fn to_query(&self) -> Result<DatasetQuery, Error> {
        let nonempty = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        Ok(DatasetQuery {
            text: nonempty(&self.q),
            provider: nonempty(&self.provider).map(|p| OrgCode::parse(&p)).transpose().map_err(as_request_error)?,
            sharing_class: nonempty(&self.sharing_class)
                .map(|s| SharingClass::parse(&s))
                .transpose()
                .map_err(as_request_error)?,
            open_class: nonempty(&self.open_class)
                .map(|s| OpenClass::parse(&s))
                .transpose()
                .map_err(as_request_error)?,
            grade: nonempty(&self.grade).map(|s| Grade::parse(&s)).transpose().map_err(as_request_error)?,
            tag: nonempty(&self.tag),
            limit: self.limit.unwrap_or(50).clamp(1, 500),
            offset: self.offset.unwrap_or(0),
        })
    }
}

/// Search the catalog.
#[utoipa::path(get, path = "/api/v1/datasets", tag = "catalog", security(("bearer" = [])), params(CatalogSearch),
    responses((status = 200, body = DatasetList), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_datasets(
    State(st): State<AppState>,
    auth: Auth,
    AppQuery(s): AppQuery<CatalogSearch>,
) -> Result<Json<DatasetList>, ApiError> {
    let q = s.to_query()?;
    let page = st.hub.search_datasets(&auth.principal, &q, &auth.ctx).await?;
    Ok(Json(DatasetList {
        items: page.items.iter().map(DatasetView::from).collect(),
        total: page.total,
        limit: q.limit,
        offset: q.offset,
    }))
}

/// One dataset with its metadata and schema.
#[utoipa::path(get, path = "/api/v1/datasets/{code}", tag = "catalog", security(("bearer" = [])),
    params(("code" = String, Path, description = "dataset code")),
    responses((status = 200, body = DatasetView), (status = 404, description = "unknown_dataset", body = ErrorBody)))]
pub async fn get_dataset(
    State(st): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
) -> Result<Json<DatasetView>, ApiError> {
    let d = st.hub.get_dataset(&auth.principal, &code, &auth.ctx).await?;
    Ok(Json(DatasetView::from(&d)))
}

/// Replace the dataset's Table Schema. Added optional fields apply in place
/// (`fields_added`); any other change creates the next schema version with a new
/// typed table (`new_version`).
#[utoipa::path(put, path = "/api/v1/datasets/{code}/schema", tag = "catalog", security(("bearer" = [])),
    params(("code" = String, Path, description = "dataset code")), request_body(content = Object, description = "Table Schema"),
    responses((status = 200, body = SchemaUpdateView), (status = 422, description = "invalid_schema", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "licence_dataset (a licence type's catalog entry)", body = ErrorBody)))]
pub async fn put_schema(
    State(st): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
    AppJson(schema): AppJson<serde_json::Value>,
) -> Result<Json<SchemaUpdateView>, ApiError> {
    let (d, change) = st.hub.update_schema(&auth.principal, &code, &schema, &auth.ctx).await?;
    Ok(Json(SchemaUpdateView { change: change.as_str().to_string(), dataset: DatasetView::from(&d) }))
}

/// All schema versions of a dataset, oldest first.
#[utoipa::path(get, path = "/api/v1/datasets/{code}/schema-versions", tag = "catalog", security(("bearer" = [])),
    params(("code" = String, Path, description = "dataset code")),
    responses((status = 200, body = [SchemaVersionView]), (status = 404, body = ErrorBody)))]
pub async fn schema_versions(
    State(st): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
) -> Result<Json<Vec<SchemaVersionView>>, ApiError> {
    let v = st.hub.schema_versions(&auth.principal, &code, &auth.ctx).await?;
    Ok(Json(v.iter().map(SchemaVersionView::from).collect()))
}

/// The columns of the dataset's typed table, as the database reports them.
#[utoipa::path(get, path = "/api/v1/datasets/{code}/columns", tag = "catalog", security(("bearer" = [])),
    params(("code" = String, Path, description = "dataset code")),
    responses((status = 200, body = [ColumnView]), (status = 404, body = ErrorBody)))]
pub async fn columns(
    State(st): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
) -> Result<Json<Vec<ColumnView>>, ApiError> {
    let c = st.hub.dataset_columns(&auth.principal, &code, &auth.ctx).await?;
    Ok(Json(c.iter().map(ColumnView::from).collect()))
}

/// Change catalog metadata (name, summary, category, classes, grade, update cycle,
/// publish date, tags). The schema has its own endpoint.
#[utoipa::path(patch, path = "/api/v1/datasets/{code}", tag = "catalog", security(("bearer" = [])),
    params(("code" = String, Path, description = "dataset code")), request_body = DatasetPatch,
    responses((status = 200, body = DatasetView), (status = 422, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn patch_dataset(
    State(st): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
    AppJson(patch): AppJson<DatasetPatch>,
) -> Result<Json<DatasetView>, ApiError> {
    let d = st.hub.update_dataset(&auth.principal, &code, patch, &auth.ctx).await?;
    Ok(Json(DatasetView::from(&d)))
}
