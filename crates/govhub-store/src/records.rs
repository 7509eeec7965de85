//! Conversions between domain records and the plain values both backends store:
//! enums as their wire strings, schemas and tags as JSON text, the search text.
//! Each backend reads a row into one of the `*Row` structs (converting its own
//! timestamp representation) and this module builds the domain value, reporting
//! anything that does not parse as [`StoreError::Corrupt`].

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use govhub_core::model::*;
use govhub_core::names::{DatasetCode, OrgCode, Username};
use govhub_core::schema::TableSchema;
use govhub_core::standards::{AdminCode, Uscc};
use govhub_core::store::StoreError;

/// Result alias used throughout the crate.
pub type StoreResult<T> = Result<T, StoreError>;

pub fn corrupt(what: &str, value: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what} \"{value}\" does not parse: {detail}"))
}

/// A failure that is the caller's or the environment's, not the driver's.
pub fn refused(msg: impl Into<String>) -> StoreError {
    StoreError::Backend(msg.into().into())
}

/// Both backends keep timestamps to the microsecond (PostgreSQL's precision), so what
/// the store returns equals what a later read returns.
pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// Default page size when a query's limit is 0.
pub const DEFAULT_LIMIT: u32 = 100;

pub fn effective_limit(limit: u32) -> i64 {
    i64::from(if limit == 0 { DEFAULT_LIMIT } else { limit })
}

/// PostgreSQL truncates identifiers to 63 bytes; both backends refuse longer table
/// names so they behave the same.
pub const MAX_IDENTIFIER_LEN: usize = 63;

/// Longest typed table name: its history table (`<name>_hist`) must fit too.
pub const MAX_TABLE_NAME_LEN: usize = MAX_IDENTIFIER_LEN - crate::ddl::HISTORY_SUFFIX.len();

/// Typed table names are `ds_` followed by lower-case letters, digits and `_`, at most
/// 58 bytes (so that the history table's name fits 63), so they can never name a
/// catalog table.
pub fn check_table_name(name: &str) -> StoreResult<()> {
    let ok = name.starts_with("ds_")
        && name.len() <= MAX_TABLE_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(refused(format!(
            "table name \"{name}\" is not usable: a typed table name is \"ds_\" followed by lower-case letters, \
             digits and '_', at most {MAX_TABLE_NAME_LEN} bytes (shorten the dataset code)"
        )))
    }
}

/// Tags in their given order, without duplicates.
pub fn unique_tags(tags: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::with_capacity(tags.len());
    for t in tags {
        if !out.contains(&t.as_str()) {
            out.push(t);
        }
    }
    out
}

pub fn tags_json(tags: &[String]) -> StoreResult<String> {
    serde_json::to_string(tags).map_err(StoreError::backend)
}

pub fn schema_json(schema: &TableSchema) -> StoreResult<String> {
    serde_json::to_string(schema).map_err(StoreError::backend)
}

fn parse_schema(code: &str, json: &str) -> StoreResult<TableSchema> {
    serde_json::from_str(json).map_err(|e| corrupt("schema of dataset", code, e))
}

/// Separates the fields in the search text; removed from fields and queries so a
/// match never spans two fields.
const SEARCH_SEPARATOR: char = '\u{1f}';

fn fold(s: &str) -> String {
    s.replace(SEARCH_SEPARATOR, " ").to_lowercase()
}

/// Lower-cased code, name, summary and tags: free-text search is a substring match
/// (`instr` / `strpos`, so `%` and `_` are literal) against this column, with the same
/// Unicode case folding on both backends.
pub fn search_text(d: &Dataset) -> String {
    let mut parts = vec![fold(d.code.as_str()), fold(&d.name), fold(&d.summary)];
    parts.extend(d.tags.iter().map(|t| fold(t)));
    parts.join(&SEARCH_SEPARATOR.to_string())
}

/// The needle for a free-text query; `None` when the text is blank.
pub fn search_needle(text: Option<&str>) -> Option<String> {
    let t = text?.trim();
    if t.is_empty() {
        None
    } else {
        Some(fold(t))
    }
}

pub(crate) fn org_code(what: &str, s: &str) -> StoreResult<OrgCode> {
    OrgCode::parse(s).map_err(|e| corrupt(what, s, e))
}

pub struct OrgRow {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub parent: Option<String>,
    pub admin_code: Option<String>,
    pub uscc: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl OrgRow {
    pub fn into_org(self) -> StoreResult<Org> {
        Ok(Org {
            code: org_code("organisation code", &self.code)?,
            kind: OrgKind::parse(&self.kind).map_err(|e| corrupt("organisation kind", &self.kind, e))?,
            parent: self.parent.as_deref().map(|p| org_code("parent organisation", p)).transpose()?,
            admin_code: self
                .admin_code
                .as_deref()
                .map(|a| AdminCode::parse(a).map_err(|e| corrupt("administrative division code", a, e)))
                .transpose()?,
            // Early pilot codes fail the check character yet are legal: read leniently.
            uscc: self
                .uscc
                .as_deref()
                .map(|u| Uscc::parse_lenient(u).map(|p| p.value).map_err(|e| corrupt("USCC", u, e)))
                .transpose()?,
            name: self.name,
            created_at: self.created_at,
        })
    }
}

pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub org: Option<String>,
    pub subject_id: Option<String>,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl UserRow {
    pub fn into_user(self) -> StoreResult<User> {
        Ok(User {
            id: self.id,
            username: Username::parse(&self.username).map_err(|e| corrupt("username", &self.username, e))?,
            role: Role::parse(&self.role).map_err(|e| corrupt("role", &self.role, e))?,
            org: self.org.as_deref().map(|o| org_code("user organisation", o)).transpose()?,
            display_name: self.display_name,
            subject_id: self.subject_id,
            password_hash: self.password_hash,
            disabled: self.disabled,
            created_at: self.created_at,
        })
    }
}

/// The user as stored (and as a later read returns it).
pub fn stored_user(id: i64, u: &NewUserRecord) -> User {
    User {
        id,
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        role: u.role,
        org: u.org.clone(),
        subject_id: u.subject_id.clone(),
        password_hash: u.password_hash.clone(),
        disabled: false,
        created_at: micros(u.created_at),
    }
}

pub struct SessionRow {
    pub token_hash: String,
    pub user_id: i64,
    pub kind: String,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl SessionRow {
    pub fn into_session(self) -> StoreResult<Session> {
        Ok(Session {
            kind: SessionKind::parse(&self.kind)
                .ok_or_else(|| corrupt("session kind", &self.kind, "expected web or api"))?,
            token_hash: self.token_hash,
            user_id: self.user_id,
            csrf_token: self.csrf_token,
            created_at: self.created_at,
            expires_at: self.expires_at,
        })
    }
}

/// Columns of `datasets` read back, in this order, by both backends.
pub const DATASET_COLUMNS: &str = "code, name, provider, summary, category, sharing_class, sharing_condition, \
     open_class, grade, update_cycle, publish_date, tags, schema, schema_version, table_name, created_at, updated_at";

pub struct DatasetRow {
    pub code: String,
    pub name: String,
    pub provider: String,
    pub summary: String,
    pub category: Option<String>,
    pub sharing_class: String,
    pub sharing_condition: Option<String>,
    pub open_class: String,
    pub grade: String,
    pub update_cycle: String,
    pub publish_date: Option<NaiveDate>,
    pub tags: String,
    pub schema: String,
    pub schema_version: i32,
    pub table_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl DatasetRow {
    pub fn into_dataset(self) -> StoreResult<Dataset> {
        let c = self.code.as_str();
        Ok(Dataset {
            code: DatasetCode::parse(c).map_err(|e| corrupt("dataset code", c, e))?,
            provider: org_code("dataset provider", &self.provider)?,
            sharing_class: SharingClass::parse(&self.sharing_class)
                .map_err(|e| corrupt("sharing class", &self.sharing_class, e))?,
            open_class: OpenClass::parse(&self.open_class).map_err(|e| corrupt("open class", &self.open_class, e))?,
            grade: Grade::parse(&self.grade).map_err(|e| corrupt("grade", &self.grade, e))?,
            update_cycle: UpdateCycle::parse(&self.update_cycle)
                .map_err(|e| corrupt("update cycle", &self.update_cycle, e))?,
            tags: serde_json::from_str(&self.tags).map_err(|e| corrupt("tags of dataset", c, e))?,
            schema: parse_schema(c, &self.schema)?,
            name: self.name,
            summary: self.summary,
            category: self.category,
            sharing_condition: self.sharing_condition,
            publish_date: self.publish_date,
            schema_version: self.schema_version,
            table_name: self.table_name,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub struct SchemaVersionRow {
    pub dataset: String,
    pub version: i32,
    pub schema: String,
    pub table_name: String,
    pub created_at: DateTime<Utc>,
}

impl SchemaVersionRow {
    pub fn into_version(self) -> StoreResult<SchemaVersion> {
        Ok(SchemaVersion {
            version: self.version,
            schema: parse_schema(&self.dataset, &self.schema)?,
            table_name: self.table_name,
            created_at: self.created_at,
        })
    }
}

/// Columns of `audit_events` read back, in this order, by both backends.
pub const AUDIT_COLUMNS: &str =
    "seq, at, actor, actor_role, actor_org, on_behalf_of, action, target, outcome, detail, \
     request_id, app, purpose, row_count, prev_hash, hash";

pub struct AuditRow {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub actor_role: Option<String>,
    pub actor_org: Option<String>,
    pub on_behalf_of: Option<String>,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
    pub request_id: Option<String>,
    pub app: Option<String>,
    pub purpose: Option<String>,
    pub row_count: Option<i64>,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRow {
    pub fn into_event(self) -> StoreResult<AuditEvent> {
        Ok(AuditEvent {
            seq: self.seq,
            event: NewAuditEvent {
                at: self.at,
                actor: self.actor,
                actor_role: self
                    .actor_role
                    .as_deref()
                    .map(|r| Role::parse(r).map_err(|e| corrupt("audit actor role", r, e)))
                    .transpose()?,
                actor_org: self.actor_org.as_deref().map(|o| org_code("audit actor organisation", o)).transpose()?,
                on_behalf_of: self.on_behalf_of.as_deref().map(|o| org_code("audit on-behalf-of", o)).transpose()?,
                action: self.action,
                target: self.target,
                outcome: Outcome::parse(&self.outcome)
                    .ok_or_else(|| corrupt("audit outcome", &self.outcome, "unknown outcome"))?,
                detail: serde_json::from_str(&self.detail).map_err(|e| corrupt("audit detail", &self.detail, e))?,
                request_id: self.request_id,
                app: self.app,
                purpose: self.purpose,
                rows: self.row_count,
                subjects: Vec::new(),
            },
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

/// Normalised name of a PostgreSQL column type (`udt_name`), matching the type names
/// the DDL uses.
pub fn normalise_pg_type(udt: &str) -> String {
    match udt {
        "int8" => "BIGINT".into(),
        "int4" => "INTEGER".into(),
        "int2" => "SMALLINT".into(),
        "numeric" => "NUMERIC".into(),
        "float8" => "DOUBLE PRECISION".into(),
        "float4" => "REAL".into(),
        "bool" => "BOOLEAN".into(),
        "timestamptz" => "TIMESTAMPTZ".into(),
        "timestamp" => "TIMESTAMP".into(),
        "timetz" => "TIMETZ".into(),
        other => other.to_ascii_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert!(check_table_name("ds_ga_hjrk_v1").is_ok());
        assert!(check_table_name("users").is_err());
        assert!(check_table_name("ds_x\"; drop").is_err());
        assert!(check_table_name(&format!("ds_{}_v1", "a".repeat(53))).is_err());
        assert!(check_table_name(&format!("ds_{}_v1", "a".repeat(52))).is_ok());
        // The longest dataset code (50 characters) fits up to version 999.
        assert!(check_table_name(&format!("ds_{}_v999", "a".repeat(50))).is_ok());
    }

    #[test]
    fn needles() {
        assert_eq!(search_needle(Some("  ")), None);
        assert_eq!(search_needle(None), None);
        assert_eq!(search_needle(Some(" HuJi 人口 ")).as_deref(), Some("huji 人口"));
    }

    #[test]
    fn tags_dedup_in_order() {
        let t = vec!["b".to_string(), "a".into(), "b".into()];
        assert_eq!(unique_tags(&t), vec!["b", "a"]);
    }
}
