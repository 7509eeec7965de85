//! Raw inputs as they arrive (JSON bodies, CLI flags, the demo generator) and their
//! conversion into validated commands. Unknown JSON fields are refused.

use crate::error::{Code, Error};
use crate::model::*;
use crate::names::{DatasetCode, OrgCode, Username};
use crate::schema::TableSchema;
use crate::standards::{AdminCode, IdNumber, Uscc};
use chrono::NaiveDate;
use serde::Deserialize;

/// `POST /api/v1/orgs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrgInput {
    /// Organisation code, e.g. `cz-gaj`.
    pub code: String,
    /// Chinese name, e.g. `常州市公安局`.
    pub name: String,
    /// Parent organisation code.
    #[serde(default)]
    pub parent: Option<String>,
    /// GB/T 2260 administrative division code.
    #[serde(default)]
    pub admin_code: Option<String>,
    /// GB 32100 unified social credit code.
    #[serde(default)]
    pub uscc: Option<String>,
    /// `city`, `department`, `district` or `other` (default: `city` without a parent, else `department`).
    #[serde(default)]
    pub kind: Option<String>,
}

/// A validated organisation to create.
#[derive(Debug, Clone)]
pub struct NewOrg {
    pub code: OrgCode,
    pub name: String,
    pub kind: OrgKind,
    pub parent: Option<OrgCode>,
    pub admin_code: Option<AdminCode>,
    pub uscc: Option<Uscc>,
}

fn check_name(field: &str, v: &str, max: usize, code: Code) -> Result<String, Error> {
    let t = v.trim();
    if t.is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(Error::invalid(
            code,
            field,
            format!("{field} must be 1-{max} characters without control characters"),
            format!("{field}应为1-{max}个字符，且不含控制字符"),
        ));
    }
    Ok(t.to_string())
}

impl TryFrom<OrgInput> for NewOrg {
    type Error = Error;
    fn try_from(i: OrgInput) -> Result<Self, Error> {
        let code = OrgCode::parse(&i.code).map_err(|e| e.with_field("code"))?;
        let name = check_name("name", &i.name, 100, Code::InvalidOrg)?;
        let parent = i.parent.as_deref().map(OrgCode::parse).transpose().map_err(|e| e.with_field("parent"))?;
        let admin_code = i
            .admin_code
            .as_deref()
            .map(|c| {
                AdminCode::parse(c).map_err(|e| {
                    Error::invalid(
                        Code::InvalidOrg,
                        "admin_code",
                        format!("admin_code: {e}"),
                        format!("行政区划代码：{}", e.message_zh()),
                    )
                })
            })
            .transpose()?;
        let uscc = i
            .uscc
            .as_deref()
            .map(|c| {
                Uscc::parse(c).map_err(|e| {
                    Error::invalid(
                        Code::InvalidOrg,
                        "uscc",
                        format!("uscc: {e}"),
                        format!("统一社会信用代码：{}", e.message_zh()),
                    )
                })
            })
            .transpose()?;
        let kind = match i.kind.as_deref() {
            Some(k) => OrgKind::parse(k).map_err(|e| Error { code: Code::InvalidOrg, ..e })?,
            None if parent.is_none() => OrgKind::City,
            None => OrgKind::Department,
        };
        Ok(NewOrg { code, name, kind, parent, admin_code, uscc })
    }
}

/// `POST /api/v1/users` and `govhub admin create-user`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInput {
    pub username: String,
    pub password: String,
    /// One of `platform-admin`, `data-officer`, `approver`, `app-developer`, `service-officer`, `citizen`, `enterprise`.
    pub role: String,
    /// Organisation code; required for government staff roles.
    #[serde(default)]
    pub org: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    /// A citizen's ID number or an enterprise's USCC.
    #[serde(default)]
    pub subject_id: Option<String>,
}

/// Minimum password length (NIST SP 800-63B).
pub const MIN_PASSWORD_LEN: usize = 8;

/// A validated user to create (password still in clear; hashed by the service).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub password: String,
    pub role: Role,
    pub org: Option<OrgCode>,
    pub display_name: String,
    pub subject_id: Option<String>,
}

impl TryFrom<UserInput> for NewUser {
    type Error = Error;
    fn try_from(i: UserInput) -> Result<Self, Error> {
        let username = Username::parse(&i.username)?;
        let role = Role::parse(&i.role)?;
        let n = i.password.chars().count();
        if !(MIN_PASSWORD_LEN..=256).contains(&n) {
            return Err(Error::invalid(
                Code::InvalidUser,
                "password",
                format!("password must be {MIN_PASSWORD_LEN}-256 characters"),
                format!("密码长度应为{MIN_PASSWORD_LEN}-256位"),
            ));
        }
        let org =
            i.org.as_deref().map(OrgCode::parse).transpose().map_err(|e| Error { code: Code::InvalidUser, ..e })?;
        if role.requires_org() && org.is_none() {
            return Err(Error::invalid(
                Code::InvalidUser,
                "org",
                format!("role {} needs an organisation (--org)", role.as_str()),
                format!("角色“{}”必须指定所属机构", role.label_zh()),
            ));
        }
        if matches!(role, Role::Citizen | Role::Enterprise) && org.is_some() {
            return Err(Error::invalid(
                Code::InvalidUser,
                "org",
                "citizens and enterprises do not belong to a government organisation",
                "办事群众和企业用户不隶属于政务机构",
            ));
        }
        let subject_id = match (role, i.subject_id.as_deref()) {
            (_, None) => None,
            (Role::Citizen, Some(s)) => Some(
                IdNumber::parse(s)
                    .map_err(|e| {
                        Error::invalid(
                            Code::InvalidUser,
                            "subject_id",
                            format!("subject_id: {e}"),
                            format!("身份证号：{}", e.message_zh()),
                        )
                    })?
                    .value
                    .to_string(),
            ),
            (Role::Enterprise, Some(s)) => Some(
                Uscc::parse(s)
                    .map_err(|e| {
                        Error::invalid(
                            Code::InvalidUser,
                            "subject_id",
                            format!("subject_id: {e}"),
                            format!("统一社会信用代码：{}", e.message_zh()),
                        )
                    })?
                    .to_string(),
            ),
            (_, Some(_)) => {
                return Err(Error::invalid(
                    Code::InvalidUser,
                    "subject_id",
                    "subject_id is only for citizens (ID number) and enterprises (USCC)",
                    "subject_id仅适用于办事群众（身份证号）和企业（统一社会信用代码）",
                ))
            }
        };
        let display_name = match i.display_name.as_deref() {
            Some(d) => check_name("display_name", d, 100, Code::InvalidUser)?,
            None => username.as_str().to_string(),
        };
        Ok(NewUser { username, password: i.password, role, org, display_name, subject_id })
    }
}

/// `POST /api/v1/datasets`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatasetInput {
    /// Dataset code (资源代码), e.g. `gaj-hjrk`.
    pub code: String,
    /// Name (资源名称), e.g. `户籍人口`.
    pub name: String,
    /// Provider organisation code (提供方).
    pub provider: String,
    /// 无条件共享 / 有条件共享 / 不予共享
    pub sharing_class: String,
    /// 无条件开放 / 有条件开放 / 不予开放
    pub open_class: String,
    /// 核心 / 重要 / 一般
    pub grade: String,
    /// realtime, daily, weekly, monthly, quarterly, yearly, irregular
    pub update_cycle: String,
    /// Frictionless Table Schema v2 with govhub's formats and `sensitive` marker.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub schema: serde_json::Value,
    /// Summary (摘要).
    #[serde(default)]
    pub summary: Option<String>,
    /// Category (分类), e.g. `基础信息/人口`.
    #[serde(default)]
    pub category: Option<String>,
    /// Conditions of conditional sharing, or the legal basis for not sharing.
    #[serde(default)]
    pub sharing_condition: Option<String>,
    /// Publish date (发布日期), `YYYY-MM-DD`; default today.
    #[serde(default)]
    pub publish_date: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A validated dataset to register. Foreign keys into other datasets are checked by
/// the service, which can see the catalog.
#[derive(Debug, Clone)]
pub struct NewDataset {
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
}

pub const MAX_TAGS: usize = 20;

impl TryFrom<DatasetInput> for NewDataset {
    type Error = Error;
    fn try_from(i: DatasetInput) -> Result<Self, Error> {
        let code = DatasetCode::parse(&i.code).map_err(|e| e.with_field("code"))?;
        let name = check_name("name", &i.name, 200, Code::InvalidDataset)?;
        let provider =
            OrgCode::parse(&i.provider).map_err(|e| Error { code: Code::UnknownOrg, ..e }.with_field("provider"))?;
        let sharing_class = SharingClass::parse(&i.sharing_class)?;
        let open_class = OpenClass::parse(&i.open_class)?;
        let grade = Grade::parse(&i.grade)?;
        let update_cycle = UpdateCycle::parse(&i.update_cycle)?;
        if open_class == OpenClass::Unconditional && grade != Grade::General {
            return Err(Error::invalid(
                Code::InvalidDataset,
                "open_class",
                "core and important data cannot be opened unconditionally (Data Security Law art. 21)",
                "核心数据和重要数据不得无条件开放（《数据安全法》第二十一条）",
            ));
        }
        if open_class == OpenClass::Unconditional && sharing_class != SharingClass::Unconditional {
            return Err(Error::invalid(
                Code::InvalidDataset,
                "open_class",
                "data open to the public unconditionally must also be shared unconditionally among departments",
                "无条件开放的数据应当同时无条件共享",
            ));
        }
        if sharing_class == SharingClass::NotShared
            && i.sharing_condition.as_deref().is_none_or(|s| s.trim().is_empty())
        {
            return Err(Error::invalid(
                Code::InvalidDataset,
                "sharing_condition",
                "a dataset that is not shared must state its legal basis in sharing_condition",
                "不予共享的数据集须在sharing_condition中说明法律依据",
            ));
        }
        let publish_date = i
            .publish_date
            .as_deref()
            .map(|d| {
                NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                    Error::invalid(
                        Code::InvalidDataset,
                        "publish_date",
                        format!("publish_date \"{d}\" is not a date (YYYY-MM-DD)"),
                        format!("发布日期“{d}”格式应为YYYY-MM-DD"),
                    )
                })
            })
            .transpose()?;
        if i.tags.len() > MAX_TAGS {
            return Err(Error::invalid(
                Code::InvalidDataset,
                "tags",
                format!("at most {MAX_TAGS} tags"),
                format!("标签不能超过{MAX_TAGS}个"),
            ));
        }
        let mut tags = Vec::with_capacity(i.tags.len());
        for t in &i.tags {
            let t = check_name("tags", t, 32, Code::InvalidDataset)?;
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        let summary = match i.summary.as_deref() {
            Some(s) if s.chars().count() > 2000 => {
                return Err(Error::invalid(
                    Code::InvalidDataset,
                    "summary",
                    "summary is limited to 2000 characters",
                    "摘要不能超过2000字",
                ))
            }
            Some(s) => s.trim().to_string(),
            None => String::new(),
        };
        let category =
            i.category.as_deref().map(|c| check_name("category", c, 100, Code::InvalidDataset)).transpose()?;
        let schema = TableSchema::parse(&i.schema)?;
        Ok(NewDataset {
            code,
            name,
            provider,
            summary,
            category,
            sharing_class,
            sharing_condition: i.sharing_condition.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()),
            open_class,
            grade,
            update_cycle,
            publish_date,
            tags,
            schema,
        })
    }
}

/// `PATCH /api/v1/datasets/{code}`: change catalog metadata (not the schema, which has
/// its own endpoint). Absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatasetPatch {
    pub name: Option<String>,
    pub summary: Option<String>,
    pub category: Option<String>,
    pub sharing_class: Option<String>,
    pub sharing_condition: Option<String>,
    pub open_class: Option<String>,
    pub grade: Option<String>,
    pub update_cycle: Option<String>,
    pub publish_date: Option<String>,
    pub tags: Option<Vec<String>>,
}

impl DatasetPatch {
    /// Apply to a dataset's metadata and re-validate the whole entry with the same
    /// rules as registration.
    pub fn apply(self, d: &Dataset) -> Result<Dataset, Error> {
        let input = DatasetInput {
            code: d.code.to_string(),
            name: self.name.unwrap_or_else(|| d.name.clone()),
            provider: d.provider.to_string(),
            sharing_class: self.sharing_class.unwrap_or_else(|| d.sharing_class.as_str().to_string()),
            open_class: self.open_class.unwrap_or_else(|| d.open_class.as_str().to_string()),
            grade: self.grade.unwrap_or_else(|| d.grade.as_str().to_string()),
            update_cycle: self.update_cycle.unwrap_or_else(|| d.update_cycle.as_str().to_string()),
            schema: d.schema.to_json(),
            summary: Some(self.summary.unwrap_or_else(|| d.summary.clone())),
            category: self.category.or_else(|| d.category.clone()).filter(|c| !c.trim().is_empty()),
            sharing_condition: self.sharing_condition.or_else(|| d.sharing_condition.clone()),
            publish_date: self.publish_date.or_else(|| d.publish_date.map(|p| p.format("%Y-%m-%d").to_string())),
            tags: self.tags.unwrap_or_else(|| d.tags.clone()),
        };
        let n = NewDataset::try_from(input)?;
        Ok(Dataset {
            name: n.name,
            summary: n.summary,
            category: n.category,
            sharing_class: n.sharing_class,
            sharing_condition: n.sharing_condition,
            open_class: n.open_class,
            grade: n.grade,
            update_cycle: n.update_cycle,
            publish_date: n.publish_date.or(d.publish_date),
            tags: n.tags,
            ..d.clone()
        })
    }
}
