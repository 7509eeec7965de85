//! Sharing with control (政务数据共享): applications, their credentials, access
//! requests, the provider's decision and the grants that result.
//!
//! * An app belongs to an organisation and authenticates with bearer tokens (hashed,
//!   several at once so they can be rotated, each revocable).
//! * An app requests access to a dataset: fields, purpose, legal basis, end date. By
//!   the dataset's sharing class: 无条件共享 → granted at once (masked; clear text of
//!   sensitive fields always needs an approver); 有条件共享 → waits for the provider's
//!   approver, who approves (possibly fewer fields, a shorter period) or refuses with a
//!   reason, within 10 working days (deadline from the holiday calendar; overdue
//!   requests are flagged); 不予共享 → cannot be requested.
//! * A grant lapses after its end date and can be revoked with immediate effect.

use crate::authz::{Action, Principal};
use crate::calendar::{Calendar, CalendarDay};
use crate::error::{Code, Error, Result};
use crate::model::*;
use crate::names::{DatasetCode, OrgCode};
use crate::service::{store_err, Ctx, Hub};
use crate::store::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Working days a provider has to decide on a request.
pub const DECISION_WORKING_DAYS: u32 = 10;
/// The longest a grant may run.
pub const MAX_GRANT_DAYS: i64 = 3 * 366;
/// App tokens start with this.
pub const APP_TOKEN_PREFIX: &str = "gha_";

/// Today in China (UTC+8): dates of grants and deadlines are Beijing dates.
pub fn china_date(t: DateTime<Utc>) -> NaiveDate {
    (t + Duration::hours(8)).date_naive()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct App {
    pub id: i64,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub org: OrgCode,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl App {
    /// Who the app is when it calls the consumer API with one of its tokens.
    pub fn principal(&self) -> Principal {
        Principal {
            user_id: None,
            username: format!("app:{}", self.id),
            display_name: self.name.clone(),
            role: Role::AppDeveloper,
            org: Some(self.org.clone()),
            subject_id: None,
            app: Some(self.id),
        }
    }
}

/// An app's credential as listed (the secret itself is shown once, at creation).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppToken {
    pub id: i64,
    pub app_id: i64,
    /// The last four characters, to tell tokens apart.
    pub hint: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new token: `token` is the secret, shown once.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssuedAppToken {
    pub token: String,
    #[serde(flatten)]
    pub info: AppToken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RequestStatus {
    Pending,
    Granted,
    Refused,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Granted => "granted",
            RequestStatus::Refused => "refused",
        }
    }
    pub fn parse(s: &str) -> Option<RequestStatus> {
        match s {
            "pending" => Some(RequestStatus::Pending),
            "granted" => Some(RequestStatus::Granted),
            "refused" => Some(RequestStatus::Refused),
            _ => None,
        }
    }
}

/// An access request (共享申请).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessRequest {
    pub id: i64,
    pub app_id: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub app_org: OrgCode,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub dataset: DatasetCode,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub provider: OrgCode,
    pub fields: Vec<String>,
    /// Sensitive fields asked for in clear text (otherwise masked).
    pub clear_fields: Vec<String>,
    pub purpose: String,
    pub legal_basis: String,
    pub valid_until: NaiveDate,
    pub status: RequestStatus,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    /// The provider decides by the end of this day (10 working days).
    pub due_on: NaiveDate,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub grant_id: Option<i64>,
}

impl AccessRequest {
    /// Still pending after its deadline.
    pub fn overdue_on(&self, today: NaiveDate) -> bool {
        self.status == RequestStatus::Pending && today > self.due_on
    }
}

/// A grant (共享授权): what one app may read of one dataset, until when.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Grant {
    pub id: i64,
    pub request_id: i64,
    pub app_id: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub app_org: OrgCode,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub dataset: DatasetCode,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub provider: OrgCode,
    pub fields: Vec<String>,
    pub clear_fields: Vec<String>,
    pub purpose: String,
    pub valid_until: NaiveDate,
    pub granted_by: String,
    pub granted_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
}

impl Grant {
    /// In force on `today` (not revoked, end date not passed).
    pub fn active_on(&self, today: NaiveDate) -> bool {
        self.revoked_at.is_none() && today <= self.valid_until
    }
    pub fn state_on(&self, today: NaiveDate) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if today > self.valid_until {
            "expired"
        } else {
            "active"
        }
    }
}

/// Filters for listing requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessRequestQuery {
    pub provider: Option<OrgCode>,
    pub app_org: Option<OrgCode>,
    pub app_id: Option<i64>,
    pub dataset: Option<DatasetCode>,
    pub status: Option<RequestStatus>,
    pub limit: u32,
}

/// Filters for listing grants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GrantQuery {
    pub provider: Option<OrgCode>,
    pub app_org: Option<OrgCode>,
    pub app_id: Option<i64>,
    pub dataset: Option<DatasetCode>,
    pub limit: u32,
}

/// A provider's decision as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDecision {
    pub status: RequestStatus,
    pub decided_by: String,
    pub decided_at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// One change of a dataset as the change feed reports it: a version of a record
/// created by a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Position of the delivery among the dataset's committed deliveries.
    pub commit_seq: i64,
    pub delivery_id: i64,
    /// `insert`, `update` or `delete`.
    pub op: String,
    pub version: i64,
    pub at: DateTime<Utc>,
    pub cells: Vec<crate::cells::Cell>,
}

/// Where the change feed resumes: after this change of this delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePosition {
    pub commit_seq: i64,
    pub key: Vec<crate::cells::Cell>,
    pub version: i64,
}

/// The storage half of sharing.
#[async_trait]
pub trait SharingStore: Send + Sync + 'static {
    async fn insert_app(
        &self,
        name: &str,
        org: &OrgCode,
        created_by: &str,
        at: DateTime<Utc>,
    ) -> std::result::Result<App, StoreError>;
    async fn get_app(&self, id: i64) -> std::result::Result<Option<App>, StoreError>;
    async fn list_apps(&self, org: Option<&OrgCode>) -> std::result::Result<Vec<App>, StoreError>;
    async fn insert_app_token(
        &self,
        app_id: i64,
        token_hash: &str,
        hint: &str,
        at: DateTime<Utc>,
    ) -> std::result::Result<AppToken, StoreError>;
    /// The app of a live (not revoked) token.
    async fn app_for_token(&self, token_hash: &str) -> std::result::Result<Option<(App, AppToken)>, StoreError>;
    async fn list_app_tokens(&self, app_id: i64) -> std::result::Result<Vec<AppToken>, StoreError>;
    /// False when there is no such live token of this app.
    async fn revoke_app_token(
        &self,
        app_id: i64,
        token_id: i64,
        at: DateTime<Utc>,
    ) -> std::result::Result<bool, StoreError>;

    /// Store a request — and, when it is granted at once, its grant, in one
    /// transaction. Returns the request with its id (and `grant_id`).
    async fn insert_access_request(
        &self,
        request: &AccessRequest,
        grant: Option<&Grant>,
    ) -> std::result::Result<AccessRequest, StoreError>;
    async fn get_access_request(&self, id: i64) -> std::result::Result<Option<AccessRequest>, StoreError>;
    /// Newest first.
    async fn list_access_requests(&self, q: &AccessRequestQuery)
        -> std::result::Result<Vec<AccessRequest>, StoreError>;
    /// Decide a pending request (and store its grant) in one transaction. `None` when
    /// the request was no longer pending (decided by someone else meanwhile).
    async fn decide_access_request(
        &self,
        id: i64,
        decision: &StoredDecision,
        grant: Option<&Grant>,
    ) -> std::result::Result<Option<AccessRequest>, StoreError>;
    async fn get_grant(&self, id: i64) -> std::result::Result<Option<Grant>, StoreError>;
    /// Newest first.
    async fn list_grants(&self, q: &GrantQuery) -> std::result::Result<Vec<Grant>, StoreError>;
    /// The newest unrevoked grant of an app on a dataset (its end date is the caller's
    /// to check).
    async fn current_grant(&self, app_id: i64, dataset: &DatasetCode)
        -> std::result::Result<Option<Grant>, StoreError>;
    /// False when already revoked.
    async fn revoke_grant(
        &self,
        id: i64,
        by: &str,
        at: DateTime<Utc>,
        reason: &str,
    ) -> std::result::Result<bool, StoreError>;
    /// The sharing generation: raised (by the database's triggers) in the transaction
    /// of every change to apps, app tokens or grants.
    async fn sharing_generation(&self) -> std::result::Result<i64, StoreError>;

    async fn list_calendar_days(&self) -> std::result::Result<Vec<CalendarDay>, StoreError>;
    async fn put_calendar_day(&self, day: &CalendarDay) -> std::result::Result<(), StoreError>;
    async fn delete_calendar_day(&self, date: NaiveDate) -> std::result::Result<bool, StoreError>;

    /// Changes of a dataset in feed order (commit order of its deliveries, then key,
    /// then version), after `after`, at most `limit`.
    async fn list_changes(
        &self,
        dataset: &Dataset,
        after: Option<&ChangePosition>,
        limit: u32,
    ) -> std::result::Result<Vec<Change>, StoreError>;
}

// ------------------------------------------------------------------ inputs

/// `POST /api/v1/apps`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppInput {
    pub name: String,
    pub org: String,
}

/// `POST /api/v1/access-requests`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessRequestInput {
    pub app: i64,
    pub dataset: String,
    pub fields: Vec<String>,
    /// Sensitive fields wanted in clear text (always needs the approver).
    #[serde(default)]
    pub clear_fields: Vec<String>,
    pub purpose: String,
    pub legal_basis: String,
    pub valid_until: NaiveDate,
}

/// `POST /api/v1/access-requests/{id}/decision`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionInput {
    pub approve: bool,
    /// Approve fewer fields than asked for.
    pub fields: Option<Vec<String>>,
    /// Approve clear text for fewer sensitive fields than asked for.
    pub clear_fields: Option<Vec<String>>,
    /// Approve a shorter period.
    pub valid_until: Option<NaiveDate>,
    pub reason: String,
}

fn invalid(field: &str, en: impl Into<String>, zh: impl Into<String>) -> Error {
    Error::new(Code::InvalidRequest, en, zh).with_field(field)
}

fn text(field: &str, label_zh: &str, v: &str, max: usize) -> Result<String> {
    let v = v.trim();
    if v.is_empty() {
        return Err(invalid(field, format!("{field} is required"), format!("请填写{label_zh}")));
    }
    if v.chars().count() > max {
        return Err(invalid(
            field,
            format!("{field} is longer than {max} characters"),
            format!("{label_zh}不能超过{max}个字"),
        ));
    }
    Ok(v.to_string())
}

/// Check a list of field names against a schema: known, no repeats, at least one.
fn field_list(d: &Dataset, which: &str, names: &[String], allow_empty: bool) -> Result<Vec<String>> {
    if names.is_empty() && !allow_empty {
        return Err(invalid(which, "name at least one field", "请至少选择一个字段"));
    }
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let n = n.trim();
        if d.schema.field(n).is_none() {
            return Err(invalid(
                which,
                format!("dataset {} has no field \"{n}\"", d.code.as_str()),
                format!("数据集“{}”没有字段“{n}”", d.name),
            ));
        }
        if out.iter().any(|x| x == n) {
            return Err(invalid(which, format!("field \"{n}\" is named twice"), format!("字段“{n}”重复")));
        }
        out.push(n.to_string());
    }
    Ok(out)
}

/// Clear-text fields must be sensitive fields among the granted ones.
fn clear_list(d: &Dataset, names: &[String], fields: &[String]) -> Result<Vec<String>> {
    let clear = field_list(d, "clear_fields", names, true)?;
    for n in &clear {
        if !fields.contains(n) {
            return Err(invalid(
                "clear_fields",
                format!("clear text asked for \"{n}\", which is not among the fields"),
                format!("申请明文的字段“{n}”不在申请字段之内"),
            ));
        }
        if !d.schema.field(n).is_some_and(|f| f.sensitive) {
            return Err(invalid(
                "clear_fields",
                format!("\"{n}\" is not sensitive: it is never masked"),
                format!("字段“{n}”不是敏感字段，本就不做脱敏"),
            ));
        }
    }
    Ok(clear)
}

// ------------------------------------------------------------------ services

impl Hub {
    pub(crate) fn today(&self) -> NaiveDate {
        china_date(self.clock().now())
    }

    pub async fn calendar(&self) -> Result<Calendar> {
        Ok(Calendar::with(self.store().list_calendar_days().await.map_err(store_err)?))
    }

    pub async fn put_calendar_day(&self, p: &Principal, day: CalendarDay, ctx: &Ctx) -> Result<CalendarDay> {
        let target = day.date.to_string();
        let auth = self.authorize(p, Action::ManageCalendar, &target, ctx).await?;
        let result = async {
            let day = CalendarDay { name: text("name", "名称", &day.name, 50)?, ..day };
            self.store().put_calendar_day(&day).await.map_err(store_err)?;
            Ok(day)
        }
        .await;
        self.finish(&auth, &target, result, json!({}), ctx).await
    }

    pub async fn delete_calendar_day(&self, p: &Principal, date: NaiveDate, ctx: &Ctx) -> Result<()> {
        let target = date.to_string();
        let auth = self.authorize(p, Action::ManageCalendar, &target, ctx).await?;
        let result = async {
            if self.store().delete_calendar_day(date).await.map_err(store_err)? {
                Ok(())
            } else {
                Err(Error::not_found("calendar day", "日历日期", &target))
            }
        }
        .await;
        self.finish(&auth, &target, result, json!({}), ctx).await
    }

    async fn load_app(&self, id: i64) -> Result<App> {
        self.store()
            .get_app(id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::not_found("app", "应用", &id.to_string()))
    }

    pub async fn create_app(&self, p: &Principal, input: AppInput, ctx: &Ctx) -> Result<App> {
        let org = OrgCode::parse(input.org.trim())
            .map_err(|_| Error::new(Code::UnknownOrg, "unknown organisation", "机构不存在").with_field("org"))?;
        let auth = self.authorize(p, Action::ManageApps { org: &org }, org.as_str(), ctx).await?;
        let result = async {
            if self.store().get_org(&org).await.map_err(store_err)?.is_none() {
                return Err(Error::new(
                    Code::UnknownOrg,
                    format!("organisation {} does not exist", org.as_str()),
                    format!("机构“{}”不存在", org.as_str()),
                )
                .with_field("org"));
            }
            let name = text("name", "应用名称", &input.name, 100)?;
            self.store().insert_app(&name, &org, &p.username, self.clock().now()).await.map_err(store_err)
        }
        .await;
        self.finish(&auth, org.as_str(), result, json!({"name": input.name}), ctx).await
    }

    pub async fn get_app(&self, p: &Principal, id: i64, ctx: &Ctx) -> Result<App> {
        let app = self.load_app(id).await?;
        self.authorize(p, Action::ReadSharing { org: &app.org }, &format!("app/{id}"), ctx).await?;
        Ok(app)
    }

    /// Every organisation's apps, for the usage page, which counts requests by app
    /// (platform administrators).
    pub async fn usage_apps(&self, p: &Principal, ctx: &Ctx) -> Result<Vec<App>> {
        self.authorize(p, Action::ReadUsage, "apps", ctx).await?;
        self.store().list_apps(None).await.map_err(store_err)
    }

    pub async fn list_apps(&self, p: &Principal, org: Option<&str>, ctx: &Ctx) -> Result<Vec<App>> {
        let org = match org.or(p.org.as_ref().map(OrgCode::as_str)) {
            Some(o) => Some(
                OrgCode::parse(o).map_err(|_| Error::new(Code::UnknownOrg, "unknown organisation", "机构不存在"))?,
            ),
            None => None,
        };
        match &org {
            Some(o) => {
                self.authorize(p, Action::ReadSharing { org: o }, "apps", ctx).await?;
            }
            None => {
                self.authorize(p, Action::ManageCalendar, "apps", ctx).await?;
            }
        }
        self.store().list_apps(org.as_ref()).await.map_err(store_err)
    }

    /// A new bearer token for an app (shown once). Older tokens stay valid until
    /// revoked, so a token can be rotated without downtime.
    pub async fn issue_app_token(&self, p: &Principal, app_id: i64, ctx: &Ctx) -> Result<IssuedAppToken> {
        let app = self.load_app(app_id).await?;
        let target = format!("app/{app_id}");
        let auth = self.authorize(p, Action::ManageApps { org: &app.org }, &target, ctx).await?;
        let result = async {
            let token = govhub_crypto::new_token(APP_TOKEN_PREFIX);
            let hint: String = token.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
            let info = self
                .store()
                .insert_app_token(app.id, &govhub_crypto::token_digest(&token), &hint, self.clock().now())
                .await
                .map_err(store_err)?;
            Ok(IssuedAppToken { token, info })
        }
        .await;
        let detail = json!({"token_id": result.as_ref().ok().map(|t| t.info.id)});
        self.finish(&auth, &target, result, detail, ctx).await
    }

    pub async fn list_app_tokens(&self, p: &Principal, app_id: i64, ctx: &Ctx) -> Result<Vec<AppToken>> {
        let app = self.load_app(app_id).await?;
        self.authorize(p, Action::ReadSharing { org: &app.org }, &format!("app/{app_id}/tokens"), ctx).await?;
        self.store().list_app_tokens(app_id).await.map_err(store_err)
    }

    pub async fn revoke_app_token(&self, p: &Principal, app_id: i64, token_id: i64, ctx: &Ctx) -> Result<()> {
        let app = self.load_app(app_id).await?;
        let target = format!("app/{app_id}/tokens/{token_id}");
        let auth = self.authorize(p, Action::ManageApps { org: &app.org }, &target, ctx).await?;
        let result = async {
            if self.store().revoke_app_token(app_id, token_id, self.clock().now()).await.map_err(store_err)? {
                Ok(())
            } else {
                Err(Error::not_found("token", "令牌", &token_id.to_string()))
            }
        }
        .await;
        self.finish(&auth, &target, result, json!({}), ctx).await
    }

    /// The principal of an app token.
    pub async fn authenticate_app(&self, token: &str) -> Result<Principal> {
        let found = self
            .store()
            .app_for_token(&govhub_crypto::token_digest(token))
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::bare(Code::Unauthenticated))?;
        let (app, _) = found;
        Ok(app.principal())
    }

    /// Ask for access. Granted at once for 无条件共享 (masked), pending otherwise.
    pub async fn request_access(&self, p: &Principal, input: AccessRequestInput, ctx: &Ctx) -> Result<AccessRequest> {
        let app = self.load_app(input.app).await?;
        let d = self.load_dataset(&input.dataset).await?;
        let auth = self.authorize(p, Action::RequestAccess { org: &app.org }, d.code.as_str(), ctx).await?;
        let result = async {
            if d.sharing_class == SharingClass::NotShared {
                return Err(Error::new(
                    Code::NotShareable,
                    format!("dataset {} is classed 不予共享 (not shared); it cannot be requested", d.code.as_str()),
                    format!("数据集“{}”为不予共享类，不能申请", d.name),
                ));
            }
            let fields = field_list(&d, "fields", &input.fields, false)?;
            let clear_fields = clear_list(&d, &input.clear_fields, &fields)?;
            let purpose = text("purpose", "用途", &input.purpose, 500)?;
            let legal_basis = text("legal_basis", "依据", &input.legal_basis, 500)?;
            let now = self.clock().now();
            let today = china_date(now);
            if input.valid_until < today || input.valid_until > today + Duration::days(MAX_GRANT_DAYS) {
                return Err(invalid(
                    "valid_until",
                    format!("valid_until must be between today and {MAX_GRANT_DAYS} days from now"),
                    format!("有效期截止日应在今天至{MAX_GRANT_DAYS}天以内"),
                ));
            }
            let due_on = self.calendar().await?.add_working_days(today, DECISION_WORKING_DAYS);
            let at_once = d.sharing_class == SharingClass::Unconditional && clear_fields.is_empty();
            let mut req = AccessRequest {
                id: 0,
                app_id: app.id,
                app_org: app.org.clone(),
                dataset: d.code.clone(),
                provider: d.provider.clone(),
                fields: fields.clone(),
                clear_fields: clear_fields.clone(),
                purpose: purpose.clone(),
                legal_basis,
                valid_until: input.valid_until,
                status: if at_once { RequestStatus::Granted } else { RequestStatus::Pending },
                requested_by: p.username.clone(),
                requested_at: now,
                due_on,
                decided_by: None,
                decided_at: None,
                reason: None,
                grant_id: None,
            };
            let grant = if at_once {
                req.decided_by = Some("system".into());
                req.decided_at = Some(now);
                req.reason = Some("无条件共享：自动授权 / shared unconditionally: granted at once".into());
                Some(Grant {
                    id: 0,
                    request_id: 0,
                    app_id: app.id,
                    app_org: app.org.clone(),
                    dataset: d.code.clone(),
                    provider: d.provider.clone(),
                    fields,
                    clear_fields,
                    purpose,
                    valid_until: input.valid_until,
                    granted_by: "system".into(),
                    granted_at: now,
                    revoked_at: None,
                    revoked_by: None,
                    revoke_reason: None,
                })
            } else {
                None
            };
            self.store().insert_access_request(&req, grant.as_ref()).await.map_err(store_err)
        }
        .await;
        let detail = match &result {
            Ok(r) => {
                json!({"request": r.id, "app": app.id, "status": r.status.as_str(), "fields": r.fields, "purpose": r.purpose})
            }
            Err(_) => json!({"app": app.id}),
        };
        self.finish(&auth, d.code.as_str(), result, detail, ctx).await
    }

    pub async fn get_access_request(&self, p: &Principal, id: i64, ctx: &Ctx) -> Result<AccessRequest> {
        let r = self
            .store()
            .get_access_request(id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::not_found("access request", "共享申请", &id.to_string()))?;
        self.authorize_either(p, &r.provider, &r.app_org, &format!("access-request/{id}"), ctx).await?;
        Ok(r)
    }

    /// Allowed if the caller may see sharing of either organisation.
    async fn authorize_either(&self, p: &Principal, a: &OrgCode, b: &OrgCode, target: &str, ctx: &Ctx) -> Result<()> {
        let first = if p.org.as_ref() == Some(b) { b } else { a };
        self.authorize(p, Action::ReadSharing { org: first }, target, ctx).await.map(|_| ())
    }

    /// Requests involving the caller's organisation (as provider or requester); a
    /// platform admin sees all (and `overdue_only` flags late decisions city-wide).
    pub async fn list_access_requests(
        &self,
        p: &Principal,
        q: AccessRequestQuery,
        overdue_only: bool,
        ctx: &Ctx,
    ) -> Result<Vec<AccessRequest>> {
        let q = AccessRequestQuery { limit: q.limit.clamp(1, 500), ..q };
        let mut out = if p.role == Role::PlatformAdmin && p.app.is_none() {
            self.authorize(p, Action::ReadAudit, "access-requests", ctx).await?;
            self.store().list_access_requests(&q).await.map_err(store_err)?
        } else {
            let org = p.org.clone().ok_or_else(|| Error::forbidden("no organisation", "未归属任何单位"))?;
            self.authorize(p, Action::ReadSharing { org: &org }, "access-requests", ctx).await?;
            let as_provider = AccessRequestQuery { provider: Some(org.clone()), app_org: None, ..q.clone() };
            let as_requester = AccessRequestQuery { app_org: Some(org.clone()), provider: None, ..q.clone() };
            let mut v = self.store().list_access_requests(&as_provider).await.map_err(store_err)?;
            for r in self.store().list_access_requests(&as_requester).await.map_err(store_err)? {
                if !v.iter().any(|x| x.id == r.id) {
                    v.push(r);
                }
            }
            v.retain(|r| {
                q.provider.as_ref().is_none_or(|o| &r.provider == o)
                    && q.app_org.as_ref().is_none_or(|o| &r.app_org == o)
            });
            v.sort_by_key(|x| std::cmp::Reverse(x.id));
            v.truncate(q.limit as usize);
            v
        };
        if overdue_only {
            let today = self.today();
            out.retain(|r| r.overdue_on(today));
        }
        Ok(out)
    }

    /// The provider's approver decides.
    pub async fn decide_access(
        &self,
        p: &Principal,
        id: i64,
        input: DecisionInput,
        ctx: &Ctx,
    ) -> Result<AccessRequest> {
        let r = self
            .store()
            .get_access_request(id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::not_found("access request", "共享申请", &id.to_string()))?;
        let target = format!("access-request/{id}");
        let auth = self.authorize(p, Action::DecideAccess { provider: &r.provider }, &target, ctx).await?;
        let result = async {
            if r.status != RequestStatus::Pending {
                return Err(already_decided(&r));
            }
            let reason = text("reason", "理由", &input.reason, 500)?;
            let d = self.load_dataset(r.dataset.as_str()).await?;
            let now = self.clock().now();
            let grant = if input.approve {
                let fields = match &input.fields {
                    Some(f) => {
                        let f = field_list(&d, "fields", f, false)?;
                        if let Some(extra) = f.iter().find(|x| !r.fields.contains(x)) {
                            return Err(invalid(
                                "fields",
                                format!("\"{extra}\" was not asked for: an approval may only narrow the fields"),
                                format!("字段“{extra}”不在申请范围内，审批只能缩减字段"),
                            ));
                        }
                        f
                    }
                    None => r.fields.clone(),
                };
                let clear_fields = match &input.clear_fields {
                    Some(c) => {
                        let c = clear_list(&d, c, &fields)?;
                        if let Some(extra) = c.iter().find(|x| !r.clear_fields.contains(x)) {
                            return Err(invalid(
                                "clear_fields",
                                format!("clear text of \"{extra}\" was not asked for"),
                                format!("申请中未要求字段“{extra}”的明文"),
                            ));
                        }
                        c
                    }
                    None => r.clear_fields.iter().filter(|c| fields.contains(c)).cloned().collect(),
                };
                let valid_until = match input.valid_until {
                    Some(v) if v > r.valid_until => {
                        return Err(invalid(
                            "valid_until",
                            "an approval may only shorten the period asked for",
                            "审批只能缩短申请的有效期",
                        ))
                    }
                    Some(v) if v < china_date(now) => {
                        return Err(invalid("valid_until", "the end date is in the past", "有效期截止日早于今天"))
                    }
                    Some(v) => v,
                    None => r.valid_until,
                };
                Some(Grant {
                    id: 0,
                    request_id: r.id,
                    app_id: r.app_id,
                    app_org: r.app_org.clone(),
                    dataset: r.dataset.clone(),
                    provider: r.provider.clone(),
                    fields,
                    clear_fields,
                    purpose: r.purpose.clone(),
                    valid_until,
                    granted_by: p.username.clone(),
                    granted_at: now,
                    revoked_at: None,
                    revoked_by: None,
                    revoke_reason: None,
                })
            } else {
                None
            };
            let decision = StoredDecision {
                status: if input.approve { RequestStatus::Granted } else { RequestStatus::Refused },
                decided_by: p.username.clone(),
                decided_at: now,
                reason: Some(reason),
            };
            match self.store().decide_access_request(r.id, &decision, grant.as_ref()).await.map_err(store_err)? {
                Some(decided) => Ok(decided),
                None => Err(already_decided(&r)),
            }
        }
        .await;
        let detail = json!({"approve": input.approve, "grant": result.as_ref().ok().and_then(|r| r.grant_id)});
        self.finish(&auth, &target, result, detail, ctx).await
    }

    pub async fn get_grant(&self, p: &Principal, id: i64, ctx: &Ctx) -> Result<Grant> {
        let g = self
            .store()
            .get_grant(id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::not_found("grant", "共享授权", &id.to_string()))?;
        self.authorize_either(p, &g.provider, &g.app_org, &format!("grant/{id}"), ctx).await?;
        Ok(g)
    }

    /// Grants: an app's (its organisation's staff), a dataset's consumers (the
    /// provider's staff), or everything involving the caller's organisation.
    pub async fn list_grants(&self, p: &Principal, q: GrantQuery, ctx: &Ctx) -> Result<Vec<Grant>> {
        let q = GrantQuery { limit: q.limit.clamp(1, 500), ..q };
        if p.role == Role::PlatformAdmin && p.app.is_none() {
            self.authorize(p, Action::ReadAudit, "grants", ctx).await?;
            return self.store().list_grants(&q).await.map_err(store_err);
        }
        let org = p.org.clone().ok_or_else(|| Error::forbidden("no organisation", "未归属任何单位"))?;
        self.authorize(p, Action::ReadSharing { org: &org }, "grants", ctx).await?;
        let mut v = self
            .store()
            .list_grants(&GrantQuery { provider: Some(org.clone()), app_org: None, ..q.clone() })
            .await
            .map_err(store_err)?;
        for g in self
            .store()
            .list_grants(&GrantQuery { app_org: Some(org.clone()), provider: None, ..q.clone() })
            .await
            .map_err(store_err)?
        {
            if !v.iter().any(|x| x.id == g.id) {
                v.push(g);
            }
        }
        v.sort_by_key(|x| std::cmp::Reverse(x.id));
        v.truncate(q.limit as usize);
        Ok(v)
    }

    /// Revoke with immediate effect: the next request of the app is refused.
    pub async fn revoke_grant(&self, p: &Principal, id: i64, reason: Option<String>, ctx: &Ctx) -> Result<Grant> {
        let g = self
            .store()
            .get_grant(id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::not_found("grant", "共享授权", &id.to_string()))?;
        let target = format!("grant/{id}");
        let auth =
            self.authorize(p, Action::RevokeGrant { provider: &g.provider, app_org: &g.app_org }, &target, ctx).await?;
        let result = async {
            let reason =
                reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).unwrap_or_else(|| "撤销".into());
            if !self.store().revoke_grant(id, &p.username, self.clock().now(), &reason).await.map_err(store_err)? {
                return Err(Error::new(
                    Code::AlreadyDecided,
                    format!("grant {id} was already revoked"),
                    format!("授权{id}已被撤销"),
                ));
            }
            self.store()
                .get_grant(id)
                .await
                .map_err(store_err)?
                .ok_or_else(|| Error::not_found("grant", "共享授权", &id.to_string()))
        }
        .await;
        self.finish(&auth, &target, result, json!({"dataset": g.dataset.as_str(), "app": g.app_id}), ctx).await
    }
}

fn already_decided(r: &AccessRequest) -> Error {
    Error::new(
        Code::AlreadyDecided,
        format!("request {} was already decided ({})", r.id, r.status.as_str()),
        format!(
            "共享申请{}已处理（{}）",
            r.id,
            match r.status {
                RequestStatus::Pending => "待审批",
                RequestStatus::Granted => "已授权",
                RequestStatus::Refused => "已拒绝",
            }
        ),
    )
}
