//! The services: the one place where authorization, validation, storage and audit
//! meet. HTTP handlers and CLI commands each call one method here.

use crate::authz::{decide, Action, Authorized, Decision, Principal};
use crate::clock::Clock;
use crate::error::{Code, Error, Result};
use crate::input::{DatasetPatch, NewDataset, NewOrg, NewUser};
use crate::model::*;
use crate::names::{DatasetCode, OrgCode, Username};
use crate::schema::{SchemaChange, TableSchema};
use crate::store::{SchemaEvolution, Store, StoreError};
use chrono::Duration;
use serde_json::{json, Value};
use std::sync::Arc;

/// Tunables of the identity service.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Lifetime of a browser session.
    pub session_ttl: Duration,
    /// Lifetime of a bearer token from `POST /api/v1/auth/token`.
    pub token_ttl: Duration,
    /// Requests per second an app may make to the consumer API (sustained)…
    pub app_rate_per_sec: u32,
    /// …and in a burst.
    pub app_burst: u32,
    /// Webhook push of the change feed (`crate::webhook`).
    pub webhooks: crate::webhook::WebhookPolicy,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            session_ttl: Duration::hours(8),
            token_ttl: Duration::hours(12),
            app_rate_per_sec: 200,
            app_burst: 400,
            webhooks: crate::webhook::WebhookPolicy::default(),
        }
    }
}

/// Per-request context carried into the audit log.
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    pub request_id: Option<String>,
}

/// A freshly issued session or token. `token` is the secret: shown once, never stored.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub session: Session,
    pub user: User,
}

/// What a schema update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaUpdate {
    Unchanged,
    FieldsAdded,
    NewVersion,
}

impl SchemaUpdate {
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaUpdate::Unchanged => "unchanged",
            SchemaUpdate::FieldsAdded => "fields_added",
            SchemaUpdate::NewVersion => "new_version",
        }
    }
}

/// Map a storage failure to a domain error.
pub fn store_err(e: StoreError) -> Error {
    match e {
        StoreError::Conflict { what: "org" } => Error::bare(Code::OrgExists),
        StoreError::Conflict { what: "user" } => Error::bare(Code::UserExists),
        StoreError::Conflict { what: "dataset" } => Error::bare(Code::DatasetExists),
        StoreError::NotFound { what: "dataset" } => Error::bare(Code::UnknownDataset),
        StoreError::Conflict { what: "schema_version" } => Error::bare(Code::ConcurrentChange),
        StoreError::Conflict { what: "licence_type" } => Error::bare(Code::LicenceTypeExists),
        StoreError::Conflict { what: "licence" } => Error::bare(Code::ConcurrentChange),
        other => Error::internal(other),
    }
}

/// What an audit entry is about.
pub(crate) struct Audit<'a> {
    pub(crate) action: &'a str,
    pub(crate) target: &'a str,
    pub(crate) outcome: Outcome,
    pub(crate) on_behalf_of: Option<&'a OrgCode>,
    /// For data accesses: the app, its declared purpose, the rows returned and the
    /// subjects (ID numbers, USCCs) whose records they were.
    pub(crate) app: Option<&'a str>,
    pub(crate) purpose: Option<&'a str>,
    pub(crate) rows: Option<i64>,
    pub(crate) subjects: Vec<String>,
}

impl<'a> Audit<'a> {
    pub(crate) fn of(action: &'a str, target: &'a str, outcome: Outcome) -> Self {
        Audit {
            action,
            target,
            outcome,
            on_behalf_of: None,
            app: None,
            purpose: None,
            rows: None,
            subjects: Vec::new(),
        }
    }
}

/// The hub's services over one store and one clock.
#[derive(Clone)]
pub struct Hub {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: HubSettings,
    share: Arc<crate::share::ShareState>,
    datasets: Arc<DatasetCache>,
    signer: Option<Arc<dyn crate::signer::PlatformSigner>>,
    authority: Option<Arc<crate::licence_service::SealAuthority>>,
}

/// Datasets as recently read, for the hot read paths (consumer API lookups). Entries
/// live [`DatasetCache::TTL`]; changes made through this hub evict them at once, so a
/// schema or class change made on another node is seen here within the TTL.
#[derive(Debug, Default)]
pub(crate) struct DatasetCache {
    map: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Arc<Dataset>)>>,
}

impl DatasetCache {
    pub(crate) const TTL: std::time::Duration = std::time::Duration::from_secs(2);

    fn get(&self, code: &str) -> Option<Arc<Dataset>> {
        let map = self.map.lock().ok()?;
        map.get(code).filter(|(at, _)| at.elapsed() < Self::TTL).map(|(_, d)| d.clone())
    }

    fn put(&self, d: &Arc<Dataset>) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() > 10_000 {
                map.clear();
            }
            map.insert(d.code.as_str().to_string(), (std::time::Instant::now(), d.clone()));
        }
    }

    pub(crate) fn evict(&self, code: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(code);
        }
    }
}

impl Hub {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: HubSettings) -> Hub {
        let share = Arc::new(crate::share::ShareState::new(settings.app_rate_per_sec, settings.app_burst));
        Hub {
            store,
            clock,
            settings,
            share,
            datasets: Arc::new(DatasetCache::default()),
            signer: None,
            authority: None,
        }
    }
    pub(crate) fn share_state(&self) -> &crate::share::ShareState {
        &self.share
    }

    /// The platform signing key (audit checkpoints; see `crate::audit_service`).
    pub fn with_signer(mut self, signer: Arc<dyn crate::signer::PlatformSigner>) -> Hub {
        self.signer = Some(signer);
        self
    }
    pub fn signer(&self) -> Option<&Arc<dyn crate::signer::PlatformSigner>> {
        self.signer.as_ref()
    }

    /// The e-licence root (see `crate::licence_service`).
    pub fn with_seal_authority(mut self, authority: Arc<crate::licence_service::SealAuthority>) -> Hub {
        self.authority = Some(authority);
        self
    }
    pub fn seal_authority(&self) -> Option<&Arc<crate::licence_service::SealAuthority>> {
        self.authority.as_ref()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
    pub fn settings(&self) -> &HubSettings {
        &self.settings
    }

    // ------------------------------------------------------------------ audit

    pub(crate) async fn audit(&self, p: &Principal, what: Audit<'_>, detail: Value, ctx: &Ctx) -> Result<()> {
        let ev = NewAuditEvent {
            at: self.clock.now(),
            actor: p.username.clone(),
            actor_role: Some(p.role),
            actor_org: p.org.clone(),
            on_behalf_of: what.on_behalf_of.cloned(),
            action: what.action.to_string(),
            target: what.target.to_string(),
            outcome: what.outcome,
            detail,
            request_id: ctx.request_id.clone(),
            app: what.app.map(str::to_string),
            purpose: what.purpose.map(str::to_string),
            rows: what.rows,
            subjects: what.subjects,
        };
        self.store.append_audit(&ev).await.map(|_| ()).map_err(store_err)
    }

    /// Decide, record the decision, and return proof or a `forbidden` error.
    /// Denials are always audited; allowed reads are audited here, allowed changes
    /// when they complete ([`Hub::finish`]).
    pub async fn authorize(&self, p: &Principal, action: Action<'_>, target: &str, ctx: &Ctx) -> Result<Authorized> {
        let name = action.name();
        match decide(p, &action) {
            Decision::Allow { on_behalf_of } => {
                let is_read = matches!(
                    action,
                    Action::ReadOrgs
                        | Action::ReadCatalog
                        | Action::ReadUsers { .. }
                        | Action::ReadAudit
                        | Action::ReadProviderData { .. }
                        | Action::ReadCompliance
                        | Action::ReadSharing { .. }
                        | Action::ReadOwnAccesses
                        | Action::ReadLicences { .. }
                        | Action::ReadLicenceTypes
                        | Action::ReadUsage
                );
                if is_read {
                    let what =
                        Audit { on_behalf_of: on_behalf_of.as_ref(), ..Audit::of(name, target, Outcome::Allowed) };
                    self.audit(p, what, Value::Null, ctx).await?;
                }
                Ok(Authorized { principal: p.clone(), action: name, on_behalf_of })
            }
            Decision::Deny { reason_en, reason_zh } => {
                self.audit(p, Audit::of(name, target, Outcome::Denied), json!({ "reason": reason_en }), ctx).await?;
                Err(Error::forbidden(reason_en, reason_zh))
            }
        }
    }

    /// Record the outcome of an authorized change.
    pub(crate) async fn finish<T>(
        &self,
        auth: &Authorized,
        target: &str,
        result: Result<T>,
        detail: Value,
        ctx: &Ctx,
    ) -> Result<T> {
        let (outcome, detail) = match &result {
            Ok(_) => (Outcome::Succeeded, detail),
            Err(e) => (Outcome::Failed, json!({ "code": e.code.as_str(), "detail": detail })),
        };
        let what = Audit { on_behalf_of: auth.on_behalf_of.as_ref(), ..Audit::of(auth.action, target, outcome) };
        self.audit(&auth.principal, what, detail, ctx).await?;
        result
    }

    /// Audit log, newest first (platform admins).
    pub async fn list_audit(&self, p: &Principal, q: &AuditQuery, ctx: &Ctx) -> Result<Vec<AuditEvent>> {
        self.authorize(p, Action::ReadAudit, "audit", ctx).await?;
        self.store.list_audit(q).await.map_err(store_err)
    }

    // --------------------------------------------------------------- identity

    /// Password sign-in. A wrong password, an unknown user and a disabled account all
    /// take the same time; the first two give the same error.
    pub async fn sign_in(&self, username: &str, password: &str, kind: SessionKind, ctx: &Ctx) -> Result<Issued> {
        let anon = Principal { username: username.chars().take(64).collect(), ..Principal::system() };
        let user = match Username::parse(username) {
            Ok(u) => self.store.get_user_by_username(&u).await.map_err(store_err)?,
            Err(_) => None,
        };
        let Some(user) = user else {
            let pw = password.to_string();
            let _ = tokio_blocking(move || govhub_crypto::dummy_verify(&pw)).await;
            self.audit(
                &anon,
                Audit::of("auth.sign_in", &anon.username, Outcome::Denied),
                json!({"reason": "unknown user"}),
                ctx,
            )
            .await?;
            return Err(Error::bare(Code::InvalidCredentials));
        };
        let (pw, hash) = (password.to_string(), user.password_hash.clone());
        let ok = tokio_blocking(move || govhub_crypto::verify_password(&pw, &hash)).await?.map_err(Error::internal)?;
        let principal = Principal::from_user(&user);
        if !ok {
            self.audit(
                &principal,
                Audit::of("auth.sign_in", user.username.as_str(), Outcome::Denied),
                json!({"reason": "wrong password"}),
                ctx,
            )
            .await?;
            return Err(Error::bare(Code::InvalidCredentials));
        }
        if user.disabled {
            self.audit(
                &principal,
                Audit::of("auth.sign_in", user.username.as_str(), Outcome::Denied),
                json!({"reason": "disabled"}),
                ctx,
            )
            .await?;
            return Err(Error::bare(Code::AccountDisabled));
        }
        let now = self.clock.now();
        let ttl = match kind {
            SessionKind::Web => self.settings.session_ttl,
            SessionKind::Api => self.settings.token_ttl,
        };
        let token = govhub_crypto::new_token(match kind {
            SessionKind::Web => "ghs_",
            SessionKind::Api => "ghp_",
        });
        let session = Session {
            token_hash: govhub_crypto::token_digest(&token),
            user_id: user.id,
            kind,
            csrf_token: govhub_crypto::new_token(""),
            created_at: now,
            expires_at: now + ttl,
        };
        self.store.insert_session(&session).await.map_err(store_err)?;
        self.audit(
            &principal,
            Audit::of("auth.sign_in", user.username.as_str(), Outcome::Succeeded),
            json!({"kind": kind.as_str()}),
            ctx,
        )
        .await?;
        Ok(Issued { token, session, user })
    }

    /// Resolve a session cookie or bearer token. Unknown → `unauthenticated`;
    /// expired → `session_expired` (and the row is removed).
    pub async fn authenticate(&self, token: &str, kind: SessionKind) -> Result<(Principal, Session)> {
        if kind == SessionKind::Api && token.starts_with(crate::sharing::APP_TOKEN_PREFIX) {
            let p = self.authenticate_app(token).await?;
            let now = self.clock.now();
            let session = Session {
                token_hash: String::new(),
                user_id: 0,
                kind,
                csrf_token: String::new(),
                created_at: now,
                expires_at: now,
            };
            return Ok((p, session));
        }
        let hash = govhub_crypto::token_digest(token);
        let session = self
            .store
            .get_session(&hash)
            .await
            .map_err(store_err)?
            .filter(|s| s.kind == kind)
            .ok_or_else(|| Error::bare(Code::Unauthenticated))?;
        if session.expires_at <= self.clock.now() {
            self.store.delete_session(&hash).await.map_err(store_err)?;
            return Err(Error::bare(Code::SessionExpired));
        }
        let user = self
            .store
            .get_user(session.user_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::bare(Code::Unauthenticated))?;
        if user.disabled {
            return Err(Error::bare(Code::AccountDisabled));
        }
        Ok((Principal::from_user(&user), session))
    }

    pub async fn sign_out(&self, token: &str) -> Result<()> {
        self.store.delete_session(&govhub_crypto::token_digest(token)).await.map_err(store_err)
    }

    /// Create a user. `p` is a platform admin, or [`Principal::system`] at the CLI.
    pub async fn create_user(&self, p: &Principal, input: NewUser, ctx: &Ctx) -> Result<User> {
        let auth =
            self.authorize(p, Action::CreateUser { org: input.org.as_ref() }, input.username.as_str(), ctx).await?;
        let target = input.username.as_str().to_string();
        let detail = json!({"role": input.role.as_str(), "org": input.org.as_ref().map(OrgCode::as_str)});
        let result = self.create_user_inner(input).await;
        self.finish(&auth, &target, result, detail, ctx).await
    }

    async fn create_user_inner(&self, input: NewUser) -> Result<User> {
        if let Some(org) = &input.org {
            self.require_org(org, "org").await?;
        }
        let pw = input.password.clone();
        let password_hash =
            tokio_blocking(move || govhub_crypto::hash_password(&pw)).await?.map_err(Error::internal)?;
        let rec = NewUserRecord {
            username: input.username,
            display_name: input.display_name,
            role: input.role,
            org: input.org,
            subject_id: input.subject_id,
            password_hash,
            created_at: self.clock.now(),
        };
        self.store.insert_user(&rec).await.map_err(store_err)
    }

    pub async fn list_users(&self, p: &Principal, org: Option<&OrgCode>, ctx: &Ctx) -> Result<Vec<User>> {
        self.authorize(p, Action::ReadUsers { org }, org.map(OrgCode::as_str).unwrap_or("*"), ctx).await?;
        self.store.list_users(org).await.map_err(store_err)
    }

    // ------------------------------------------------------------ organisations

    pub(crate) async fn require_org(&self, code: &OrgCode, field: &str) -> Result<Org> {
        self.store.get_org(code).await.map_err(store_err)?.ok_or_else(|| {
            Error::invalid(
                Code::UnknownOrg,
                field,
                format!("organisation '{code}' does not exist"),
                format!("机构“{code}”不存在"),
            )
        })
    }

    pub async fn create_org(&self, p: &Principal, input: NewOrg, ctx: &Ctx) -> Result<Org> {
        let auth = self.authorize(p, Action::CreateOrg, input.code.as_str(), ctx).await?;
        let target = input.code.as_str().to_string();
        let detail = json!({"name": input.name, "parent": input.parent.as_ref().map(OrgCode::as_str)});
        let result = async {
            if let Some(parent) = &input.parent {
                self.require_org(parent, "parent").await?;
            }
            let org = Org {
                code: input.code,
                name: input.name,
                kind: input.kind,
                parent: input.parent,
                admin_code: input.admin_code,
                uscc: input.uscc,
                created_at: self.clock.now(),
            };
            self.store.insert_org(&org).await.map_err(|e| match e {
                StoreError::Conflict { .. } => Error::new(
                    Code::OrgExists,
                    format!("organisation code '{}' already exists", org.code),
                    format!("机构代码“{}”已存在", org.code),
                )
                .with_field("code"),
                other => store_err(other),
            })?;
            Ok(org)
        }
        .await;
        self.finish(&auth, &target, result, detail, ctx).await
    }

    pub async fn list_orgs(&self, p: &Principal, ctx: &Ctx) -> Result<Vec<Org>> {
        self.authorize(p, Action::ReadOrgs, "*", ctx).await?;
        self.store.list_orgs().await.map_err(store_err)
    }

    pub async fn get_org(&self, p: &Principal, code: &str, ctx: &Ctx) -> Result<Org> {
        self.authorize(p, Action::ReadOrgs, code, ctx).await?;
        let code = OrgCode::parse(code).map_err(|_| Error::not_found("organisation", "机构", code))?;
        self.store
            .get_org(&code)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::not_found("organisation", "机构", code.as_str()))
    }

    // ------------------------------------------------------------------ catalog

    /// Check foreign keys that point into other datasets: the dataset exists and has
    /// the referenced fields.
    async fn check_foreign_keys(&self, own: &DatasetCode, schema: &TableSchema) -> Result<()> {
        for (i, fk) in schema.foreign_keys.iter().enumerate() {
            if fk.reference.resource.is_empty() || fk.reference.resource == own.as_str() {
                continue;
            }
            let path = format!("schema.foreignKeys[{i}].reference.resource");
            let missing = || {
                Error::invalid(
                    Code::InvalidSchema,
                    &path,
                    format!("{path}: dataset \"{}\" is not in the catalog", fk.reference.resource),
                    format!("{path}：数据集“{}”不在目录中", fk.reference.resource),
                )
            };
            let code = DatasetCode::parse(&fk.reference.resource).map_err(|_| missing())?;
            let target = self.store.get_dataset(&code).await.map_err(store_err)?.ok_or_else(missing)?;
            for f in &fk.reference.fields {
                if target.schema.field(f).is_none() {
                    let fpath = format!("schema.foreignKeys[{i}].reference.fields");
                    return Err(Error::invalid(
                        Code::InvalidSchema,
                        &fpath,
                        format!("{fpath}: dataset \"{code}\" has no field \"{f}\""),
                        format!("{fpath}：数据集“{code}”没有字段“{f}”"),
                    ));
                }
            }
        }
        Ok(())
    }

    pub async fn create_dataset(&self, p: &Principal, input: NewDataset, ctx: &Ctx) -> Result<Dataset> {
        let auth =
            self.authorize(p, Action::ManageDataset { provider: &input.provider }, input.code.as_str(), ctx).await?;
        let target = input.code.as_str().to_string();
        let detail = json!({"provider": input.provider.as_str(), "name": input.name});
        let result = async {
            if crate::licence_share::is_licence_dataset(input.code.as_str()) {
                return Err(crate::licence_share::licence_dataset_error(input.code.as_str()).with_field("code"));
            }
            self.require_org(&input.provider, "provider").await?;
            self.check_foreign_keys(&input.code, &input.schema).await?;
            let now = self.clock.now();
            let dataset = Dataset {
                table_name: Dataset::table_name_for(&input.code, 1),
                code: input.code,
                name: input.name,
                provider: input.provider,
                summary: input.summary,
                category: input.category,
                sharing_class: input.sharing_class,
                sharing_condition: input.sharing_condition,
                open_class: input.open_class,
                grade: input.grade,
                update_cycle: input.update_cycle,
                publish_date: Some(input.publish_date.unwrap_or_else(|| now.date_naive())),
                tags: input.tags,
                schema: input.schema,
                schema_version: 1,
                created_at: now,
                updated_at: now,
            };
            self.store.create_dataset(&dataset).await.map_err(|e| match e {
                StoreError::Conflict { .. } => Error::new(
                    Code::DatasetExists,
                    format!(
                        "dataset code '{}' already exists (codes differing only in case or '-'/'_' count as the same)",
                        dataset.code
                    ),
                    format!("数据集编码“{}”已存在（仅大小写或“-”“_”不同的编码视为相同）", dataset.code),
                )
                .with_field("code"),
                other => store_err(other),
            })?;
            Ok(dataset)
        }
        .await;
        self.finish(&auth, &target, result, detail, ctx).await
    }

    pub(crate) async fn load_dataset(&self, code: &str) -> Result<Dataset> {
        self.shared_dataset(code).await.map(|d| Dataset::clone(&d))
    }

    /// [`Hub::load_dataset`] without a copy: the cached entry itself (hot paths).
    pub(crate) async fn shared_dataset(&self, code: &str) -> Result<Arc<Dataset>> {
        if let Some(d) = self.datasets.get(code) {
            return Ok(d);
        }
        let nf =
            || Error::new(Code::UnknownDataset, format!("dataset '{code}' not found"), format!("数据集“{code}”不存在"));
        let code = DatasetCode::parse(code).map_err(|_| nf())?;
        let d = Arc::new(self.store.get_dataset(&code).await.map_err(store_err)?.ok_or_else(nf)?);
        self.datasets.put(&d);
        Ok(d)
    }

    pub async fn get_dataset(&self, p: &Principal, code: &str, ctx: &Ctx) -> Result<Dataset> {
        self.authorize(p, Action::ReadCatalog, code, ctx).await?;
        self.load_dataset(code).await
    }

    pub async fn search_datasets(&self, p: &Principal, q: &DatasetQuery, ctx: &Ctx) -> Result<Page<Dataset>> {
        self.authorize(p, Action::ReadCatalog, "*", ctx).await?;
        let mut q = q.clone();
        q.limit = q.limit.clamp(1, 500);
        self.store.search_datasets(&q).await.map_err(store_err)
    }

    pub async fn schema_versions(&self, p: &Principal, code: &str, ctx: &Ctx) -> Result<Vec<SchemaVersion>> {
        self.authorize(p, Action::ReadCatalog, code, ctx).await?;
        let d = self.load_dataset(code).await?;
        self.store.schema_versions(&d.code).await.map_err(store_err)
    }

    /// Columns of the dataset's current typed table, as the database has them.
    pub async fn dataset_columns(&self, p: &Principal, code: &str, ctx: &Ctx) -> Result<Vec<ColumnInfo>> {
        self.authorize(p, Action::ReadCatalog, code, ctx).await?;
        let d = self.load_dataset(code).await?;
        self.store.table_columns(&d.table_name).await.map_err(store_err)
    }

    /// Change a dataset's catalog metadata (the provider's officer or a platform admin).
    pub async fn update_dataset(&self, p: &Principal, code: &str, patch: DatasetPatch, ctx: &Ctx) -> Result<Dataset> {
        let current = self.load_dataset(code).await?;
        let auth = self.authorize(p, Action::ManageDataset { provider: &current.provider }, code, ctx).await?;
        let result = async {
            let mut next = patch.apply(&current)?;
            next.updated_at = self.clock.now();
            self.datasets.evict(next.code.as_str());
            self.store.update_dataset_metadata(&next).await.map_err(store_err)?;
            self.datasets.evict(next.code.as_str());
            Ok(next)
        }
        .await;
        self.finish(&auth, code, result, json!({"change": "metadata"}), ctx).await
    }

    /// Replace a dataset's schema. Documentation-only changes and added optional
    /// fields apply in place; anything else creates the next schema version.
    pub async fn update_schema(
        &self,
        p: &Principal,
        code: &str,
        schema: &Value,
        ctx: &Ctx,
    ) -> Result<(Dataset, SchemaUpdate)> {
        let current = self.load_dataset(code).await?;
        let auth = self.authorize(p, Action::ManageDataset { provider: &current.provider }, code, ctx).await?;
        let result = async {
            // A licence library's fields follow its licence type (licence_share.rs).
            if crate::licence_share::is_licence_dataset(current.code.as_str()) {
                return Err(crate::licence_share::licence_dataset_error(current.code.as_str()));
            }
            let new_schema = TableSchema::parse(schema)?;
            self.check_foreign_keys(&current.code, &new_schema).await?;
            let change = current.schema.change_to(&new_schema);
            let mut next = current.clone();
            next.schema = new_schema;
            next.updated_at = self.clock.now();
            let (evolution, kind) = match change {
                SchemaChange::Compatible if next.schema == current.schema => {
                    return Ok((current, SchemaUpdate::Unchanged))
                }
                SchemaChange::Compatible => (SchemaEvolution::Document, SchemaUpdate::Unchanged),
                SchemaChange::AddFields(f) => (SchemaEvolution::AddColumns(f), SchemaUpdate::FieldsAdded),
                SchemaChange::NewVersion => {
                    next.schema_version += 1;
                    next.table_name = Dataset::table_name_for(&next.code, next.schema_version);
                    (SchemaEvolution::NewVersion, SchemaUpdate::NewVersion)
                }
            };
            self.datasets.evict(next.code.as_str());
            self.store.evolve_schema(&next, &evolution).await.map_err(store_err)?;
            self.datasets.evict(next.code.as_str());
            Ok((next, kind))
        }
        .await;
        let detail = match &result {
            Ok((d, k)) => json!({"change": k.as_str(), "version": d.schema_version}),
            Err(_) => Value::Null,
        };
        self.finish(&auth, code, result, detail, ctx).await
    }

    // -------------------------------------------------------------------- meta

    pub async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        self.store.get_meta(key).await.map_err(store_err)
    }
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.store.set_meta(key, value).await.map_err(store_err)
    }
}

/// Run CPU-heavy work (argon2) off the async workers when a Tokio runtime is present.
pub(crate) async fn tokio_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(Error::internal)
}
