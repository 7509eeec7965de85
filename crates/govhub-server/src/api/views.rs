//! What the API returns: wire views of domain records, documented for OpenAPI.

use chrono::{DateTime, NaiveDate, Utc};
use govhub_core::model::{AuditEvent, ColumnInfo, Dataset, Org, SchemaVersion, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct OrgView {
    pub code: String,
    pub name: String,
    /// city, department, district or other
    pub kind: String,
    pub parent: Option<String>,
    pub admin_code: Option<String>,
    pub uscc: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&Org> for OrgView {
    fn from(o: &Org) -> Self {
        OrgView {
            code: o.code.to_string(),
            name: o.name.clone(),
            kind: o.kind.as_str().to_string(),
            parent: o.parent.as_ref().map(ToString::to_string),
            admin_code: o.admin_code.as_ref().map(ToString::to_string),
            uscc: o.uscc.as_ref().map(ToString::to_string),
            created_at: o.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    /// platform-admin, data-officer, approver, app-developer, service-officer, citizen, enterprise
    pub role: String,
    pub org: Option<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id,
            username: u.username.to_string(),
            display_name: u.display_name.clone(),
            role: u.role.as_str().to_string(),
            org: u.org.as_ref().map(ToString::to_string),
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetView {
    pub code: String,
    pub name: String,
    /// Provider organisation code.
    pub provider: String,
    pub summary: String,
    pub category: Option<String>,
    /// 无条件共享 / 有条件共享 / 不予共享
    pub sharing_class: String,
    pub sharing_condition: Option<String>,
    /// 无条件开放 / 有条件开放 / 不予开放
    pub open_class: String,
    /// 核心 / 重要 / 一般
    pub grade: String,
    pub update_cycle: String,
    pub publish_date: Option<NaiveDate>,
    pub tags: Vec<String>,
    /// The Table Schema (canonical form).
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
    pub schema_version: i32,
    /// The typed SQL table holding the records of the current schema version.
    pub table_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Dataset> for DatasetView {
    fn from(d: &Dataset) -> Self {
        DatasetView {
            code: d.code.to_string(),
            name: d.name.clone(),
            provider: d.provider.to_string(),
            summary: d.summary.clone(),
            category: d.category.clone(),
            sharing_class: d.sharing_class.as_str().to_string(),
            sharing_condition: d.sharing_condition.clone(),
            open_class: d.open_class.as_str().to_string(),
            grade: d.grade.as_str().to_string(),
            update_cycle: d.update_cycle.as_str().to_string(),
            publish_date: d.publish_date,
            tags: d.tags.clone(),
            schema: d.schema.to_json(),
            schema_version: d.schema_version,
            table_name: d.table_name.clone(),
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetList {
    pub items: Vec<DatasetView>,
    /// Matches before paging.
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SchemaVersionView {
    pub version: i32,
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
    pub table_name: String,
    pub created_at: DateTime<Utc>,
}

impl From<&SchemaVersion> for SchemaVersionView {
    fn from(v: &SchemaVersion) -> Self {
        SchemaVersionView {
            version: v.version,
            schema: v.schema.to_json(),
            table_name: v.table_name.clone(),
            created_at: v.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ColumnView {
    pub name: String,
    pub sql_type: String,
    pub not_null: bool,
}

impl From<&ColumnInfo> for ColumnView {
    fn from(c: &ColumnInfo) -> Self {
        ColumnView { name: c.name.clone(), sql_type: c.sql_type.clone(), not_null: c.not_null }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SchemaUpdateView {
    /// unchanged, fields_added or new_version
    pub change: String,
    pub dataset: DatasetView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub actor_role: Option<String>,
    pub actor_org: Option<String>,
    pub on_behalf_of: Option<String>,
    pub action: String,
    pub target: String,
    /// allowed, denied, succeeded, failed
    pub outcome: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub request_id: Option<String>,
    /// For data accesses: the app, its declared purpose and the rows returned.
    pub app: Option<String>,
    pub purpose: Option<String>,
    pub rows: Option<i64>,
    /// The previous entry's hash (64 zeros for seq 1).
    pub prev_hash: String,
    /// SM3 over the entry's canonical encoding (docs/audit.md).
    pub hash: String,
}

impl From<&AuditEvent> for AuditView {
    fn from(a: &AuditEvent) -> Self {
        let e = &a.event;
        AuditView {
            seq: a.seq,
            at: e.at,
            actor: e.actor.clone(),
            actor_role: e.actor_role.map(|r| r.as_str().to_string()),
            actor_org: e.actor_org.as_ref().map(ToString::to_string),
            on_behalf_of: e.on_behalf_of.as_ref().map(ToString::to_string),
            action: e.action.clone(),
            target: e.target.clone(),
            outcome: e.outcome.as_str().to_string(),
            detail: e.detail.clone(),
            request_id: e.request_id.clone(),
            app: e.app.clone(),
            purpose: e.purpose.clone(),
            rows: e.rows,
            prev_hash: a.prev_hash.clone(),
            hash: a.hash.clone(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <token>`. Shown once; govhub keeps only its SM3 digest.
    pub token: String,
    pub token_type: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub backend: String,
}
