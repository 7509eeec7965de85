//! Records the domain works with: organisations, users, sessions, datasets, audit events.

use crate::error::{Code, Error};
use crate::names::{DatasetCode, OrgCode, Username};
use crate::schema::TableSchema;
use crate::standards::{AdminCode, Uscc};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

macro_rules! term_enum {
    ($(#[$m:meta])* $name:ident { $( $variant:ident = $wire:literal / $en:literal ),* $(,)? }, $field:literal, $field_zh:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $( #[serde(rename = $wire)] $variant, )* }

        impl $name {
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];
            /// The wire (and storage) form.
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $wire, )* }
            }
            /// English label for the UI.
            pub fn label_en(self) -> &'static str {
                match self { $( $name::$variant => $en, )* }
            }
            pub fn parse(s: &str) -> Result<$name, Error> {
                match s {
                    $( $wire => Ok($name::$variant), )*
                    other => {
                        let all: Vec<&str> = vec![$( $wire ),*];
                        Err(Error::invalid(
                            Code::InvalidDataset,
                            $field,
                            format!("{}: \"{}\" is not one of {}", $field, other, all.join(", ")),
                            format!("{}：“{}”不是{}之一", $field_zh, other, all.join("、")),
                        ))
                    }
                }
            }
        }
    };
}

term_enum!(
    /// 共享属性 (国发〔2016〕51号).
    SharingClass { Unconditional = "无条件共享" / "shared unconditionally", Conditional = "有条件共享" / "shared on approval", NotShared = "不予共享" / "not shared" },
    "sharing_class", "共享类型"
);
term_enum!(
    /// 开放属性.
    OpenClass { Unconditional = "无条件开放" / "open", Conditional = "有条件开放" / "open on conditions", NotOpen = "不予开放" / "not open" },
    "open_class", "开放类型"
);
term_enum!(
    /// 数据分级 (Data Security Law art. 21; GB/T 43697-2024).
    Grade { Core = "核心" / "core", Important = "重要" / "important", General = "一般" / "general" },
    "grade", "数据分级"
);
term_enum!(
    /// 更新周期.
    UpdateCycle {
        Realtime = "realtime" / "real time", Daily = "daily" / "daily", Weekly = "weekly" / "weekly",
        Monthly = "monthly" / "monthly", Quarterly = "quarterly" / "quarterly", Yearly = "yearly" / "yearly",
        Irregular = "irregular" / "irregular"
    },
    "update_cycle", "更新周期"
);
term_enum!(
    /// Kind of organisation in the tree.
    OrgKind { City = "city" / "city", Department = "department" / "department", District = "district" / "district", Other = "other" / "other" },
    "kind", "机构类型"
);

impl UpdateCycle {
    pub fn label_zh(self) -> &'static str {
        match self {
            UpdateCycle::Realtime => "实时",
            UpdateCycle::Daily => "每日",
            UpdateCycle::Weekly => "每周",
            UpdateCycle::Monthly => "每月",
            UpdateCycle::Quarterly => "每季度",
            UpdateCycle::Yearly => "每年",
            UpdateCycle::Irregular => "不定期",
        }
    }
}

impl OrgKind {
    pub fn label_zh(self) -> &'static str {
        match self {
            OrgKind::City => "市级",
            OrgKind::Department => "部门",
            OrgKind::District => "区县",
            OrgKind::Other => "其他",
        }
    }
}

/// An organisation: the city, a department, a district.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Org {
    pub code: OrgCode,
    pub name: String,
    pub kind: OrgKind,
    pub parent: Option<OrgCode>,
    pub admin_code: Option<AdminCode>,
    pub uscc: Option<Uscc>,
    pub created_at: DateTime<Utc>,
}

/// User roles. Wire names are the CLI's `--role` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    PlatformAdmin,
    DataOfficer,
    Approver,
    AppDeveloper,
    ServiceOfficer,
    Citizen,
    Enterprise,
}

impl Role {
    pub const ALL: &'static [Role] = &[
        Role::PlatformAdmin,
        Role::DataOfficer,
        Role::Approver,
        Role::AppDeveloper,
        Role::ServiceOfficer,
        Role::Citizen,
        Role::Enterprise,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform-admin",
            Role::DataOfficer => "data-officer",
            Role::Approver => "approver",
            Role::AppDeveloper => "app-developer",
            Role::ServiceOfficer => "service-officer",
            Role::Citizen => "citizen",
            Role::Enterprise => "enterprise",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "平台管理员",
            Role::DataOfficer => "部门数据专员",
            Role::Approver => "部门审批人",
            Role::AppDeveloper => "应用开发者",
            Role::ServiceOfficer => "窗口审批人员",
            Role::Citizen => "办事群众",
            Role::Enterprise => "企业用户",
        }
    }
    pub fn label_en(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "Platform administrator",
            Role::DataOfficer => "Department data officer",
            Role::Approver => "Department approver",
            Role::AppDeveloper => "App developer",
            Role::ServiceOfficer => "Service officer",
            Role::Citizen => "Citizen",
            Role::Enterprise => "Enterprise",
        }
    }
    pub fn parse(s: &str) -> Result<Role, Error> {
        Role::ALL.iter().copied().find(|r| r.as_str() == s).ok_or_else(|| {
            let all: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            Error::invalid(
                Code::InvalidUser,
                "role",
                format!("unknown role \"{s}\" (known: {})", all.join(", ")),
                format!("未知角色“{s}”（可用：{}）", all.join("、")),
            )
        })
    }
    /// Government staff belong to an organisation; the public does not.
    pub fn requires_org(self) -> bool {
        matches!(self, Role::DataOfficer | Role::Approver | Role::AppDeveloper | Role::ServiceOfficer)
    }
    /// Roles that work inside government (see the internal catalog, org pages…).
    pub fn is_government(self) -> bool {
        !matches!(self, Role::Citizen | Role::Enterprise)
    }
}

/// A stored user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub username: Username,
    pub display_name: String,
    pub role: Role,
    pub org: Option<OrgCode>,
    /// For citizens their ID number, for enterprises their USCC: the subject whose
    /// records they may see accesses to.
    pub subject_id: Option<String>,
    #[serde(skip_serializing)]
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

/// A user to be inserted; the password is already hashed.
#[derive(Debug, Clone)]
pub struct NewUserRecord {
    pub username: Username,
    pub display_name: String,
    pub role: Role,
    pub org: Option<OrgCode>,
    pub subject_id: Option<String>,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

/// What kind of credential a session row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    /// Browser session (cookie), carries a CSRF token.
    Web,
    /// Bearer token for machines and scripts.
    Api,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Web => "web",
            SessionKind::Api => "api",
        }
    }
    pub fn parse(s: &str) -> Option<SessionKind> {
        match s {
            "web" => Some(SessionKind::Web),
            "api" => Some(SessionKind::Api),
            _ => None,
        }
    }
}

/// A session or bearer token. Only the SM3 digest of the secret is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub token_hash: String,
    pub user_id: i64,
    pub kind: SessionKind,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A catalog entry (政务信息资源目录).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub code: DatasetCode,
    pub name: String,
    pub provider: OrgCode,
    pub summary: String,
    pub category: Option<String>,
    pub sharing_class: SharingClass,
    pub sharing_condition: Option<String>,
    pub open_class: OpenClass,
    pub grade: Grade,
    pub update_cycle: UpdateCycle,
    pub publish_date: Option<NaiveDate>,
    pub tags: Vec<String>,
    pub schema: TableSchema,
    pub schema_version: i32,
    /// The typed table holding the current version's records.
    pub table_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Dataset {
    /// The typed table name for a schema version: `ds_<stem>_v<version>`.
    pub fn table_name_for(code: &DatasetCode, version: i32) -> String {
        format!("ds_{}_v{}", code.table_stem(), version)
    }
}

/// One historical version of a dataset's schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaVersion {
    pub version: i32,
    pub schema: TableSchema,
    pub table_name: String,
    pub created_at: DateTime<Utc>,
}

/// Catalog search parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatasetQuery {
    /// Free text over code, name, summary and tags.
    pub text: Option<String>,
    pub provider: Option<OrgCode>,
    pub sharing_class: Option<SharingClass>,
    pub open_class: Option<OpenClass>,
    pub grade: Option<Grade>,
    pub tag: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// A page of results with the total count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// A column of a typed table, as the database reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnInfo {
    pub name: String,
    pub sql_type: String,
    pub not_null: bool,
}

/// Outcome of an audited decision or action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allowed,
    Denied,
    Succeeded,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Outcome> {
        [Outcome::Allowed, Outcome::Denied, Outcome::Succeeded, Outcome::Failed].into_iter().find(|o| o.as_str() == s)
    }
}

/// An audit record to append.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewAuditEvent {
    pub at: DateTime<Utc>,
    /// Username, or `system` for the CLI and start-up.
    pub actor: String,
    pub actor_role: Option<Role>,
    pub actor_org: Option<OrgCode>,
    /// Set when a platform admin acts for another organisation.
    pub on_behalf_of: Option<OrgCode>,
    /// Dotted action name, e.g. `dataset.create`, `auth.sign_in`.
    pub action: String,
    /// What was acted on, e.g. a dataset code.
    pub target: String,
    pub outcome: Outcome,
    pub detail: serde_json::Value,
    pub request_id: Option<String>,
    /// The app (consumer) through which data was read, when there is one.
    pub app: Option<String>,
    /// The declared purpose of a data access (from the grant).
    pub purpose: Option<String>,
    /// Rows returned by a data access.
    pub rows: Option<i64>,
    /// Identifiers (ID numbers, USCCs) of the people and enterprises whose records were
    /// returned. Stored only as salted SM3 digests (see `docs/audit.md`), never in clear:
    /// always empty on entries read back.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
}

/// A stored audit record: the event and its place in the hash chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub seq: i64,
    #[serde(flatten)]
    pub event: NewAuditEvent,
    /// `hash` of the entry before (64 zeros for the first).
    pub prev_hash: String,
    /// SM3 over the entry's canonical encoding (`govhub_core::audit`), lower-case hex.
    pub hash: String,
}

/// Audit listing filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action_prefix: Option<String>,
    pub target: Option<String>,
    pub after_seq: Option<i64>,
    pub limit: u32,
}

/// A stored record of a dataset: typed cells in schema order plus system columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub cells: Vec<crate::cells::Cell>,
    pub version: i64,
    pub delivery_id: Option<i64>,
    pub updated_at: DateTime<Utc>,
    pub deleted: bool,
}

/// What happened to a record in one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordOp {
    Insert,
    Update,
    Delete,
}

impl RecordOp {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordOp::Insert => "insert",
            RecordOp::Update => "update",
            RecordOp::Delete => "delete",
        }
    }
    pub fn parse(s: &str) -> Option<RecordOp> {
        match s {
            "insert" => Some(RecordOp::Insert),
            "update" => Some(RecordOp::Update),
            "delete" => Some(RecordOp::Delete),
            _ => None,
        }
    }
}

/// One version of a record: the values it had from `valid_from` until `valid_to`
/// (None = still current), and the delivery that wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordVersion {
    pub version: i64,
    pub op: RecordOp,
    pub cells: Vec<crate::cells::Cell>,
    pub delivery_id: Option<i64>,
    pub valid_from: DateTime<Utc>,
    pub valid_to: Option<DateTime<Utc>>,
}

/// Filter operators for record queries.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterOp {
    Eq(crate::cells::Cell),
    In(Vec<crate::cells::Cell>),
    /// Inclusive bounds; either may be absent.
    Range(Option<crate::cells::Cell>, Option<crate::cells::Cell>),
    /// Text prefix.
    Prefix(String),
    IsNull(bool),
}

/// A filter on one field (by index in the schema).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub field: usize,
    pub op: FilterOp,
}

/// A page request over a dataset's records, ordered by primary key.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordQuery {
    pub filters: Vec<Filter>,
    /// Resume after this primary key (typed cells of the key fields).
    pub after: Option<Vec<crate::cells::Cell>>,
    pub limit: u32,
    /// Read the dataset as it was at this time (history included).
    pub as_of: Option<DateTime<Utc>>,
    pub include_deleted: bool,
    /// Primary key order descending (pages then run backwards through the keys).
    pub descending: bool,
}

/// An entry of the sharing responsibility list (共享责任清单): which organisation owes
/// which dataset, how often.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Responsibility {
    pub dataset: DatasetCode,
    pub org: OrgCode,
    pub cycle: UpdateCycle,
    pub note: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// Delivery statistics of one dataset (for compliance).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryStats {
    pub dataset: DatasetCode,
    pub deliveries: u64,
    pub failed: u64,
    pub last_delivery_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub rows_read: u64,
    pub rows_quarantined: u64,
    /// Current (not deleted) records.
    pub record_count: u64,
}
