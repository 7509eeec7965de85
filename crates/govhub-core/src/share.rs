//! The consumer API (共享接口): what a granted app reads. Every answer holds only the
//! granted fields — never another, not in records, exports, change feeds or error
//! messages — with sensitive fields masked unless the grant allows clear text. The
//! grant is checked on every request (a revoked or lapsed grant is refused at once),
//! every read is in the audit log before any data leaves, and pagination cursors are
//! signed (HMAC-SM3 under a per-installation secret) and bound to the app and dataset.

use crate::authz::{Action, Principal};
use crate::cells::Cell;
use crate::error::{Code, Error, Result};
use crate::masking::{mask_cell, rule_for, MaskRule};
use crate::model::*;
use crate::records::{b64url, cast_value, key_indexes, parse_filters, unb64url};
use crate::service::{store_err, Audit, Ctx, Hub};
use crate::sharing::{china_date, Change, ChangePosition, Grant};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Instant;

/// Meta key of the cursor-signing secret.
const CURSOR_SECRET_KEY: &str = "share.cursor_secret";
/// Largest page of the records and changes endpoints.
pub const MAX_PAGE: u32 = 1000;

/// Per-process state of the consumer API: the rate limiter, the cursor secret and the
/// access cache of the record lookup.
#[derive(Debug)]
pub struct ShareState {
    buckets: Mutex<HashMap<i64, (f64, Instant)>>,
    secret: tokio::sync::OnceCell<Vec<u8>>,
    rate: f64,
    burst: f64,
    access: Mutex<AccessCache>,
    /// Two independent random SipHash keys: a token's [`TokenKey`].
    token_keys: (std::hash::RandomState, std::hash::RandomState),
}

/// What the access cache knows a token by: two 64-bit SipHash values of it under this
/// process's random keys. Hashing the token with SM3 (as the store does) was ≈ 1.5 % of a
/// busy server's CPU; without the keys, nobody can make a token land on another's entry
/// (one chance in 2^128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct TokenKey(u64, u64);

/// Where the record lookup's token and grant come from.
enum Access<'a> {
    /// The store, not remembered (a person's token, or a caller with a principal).
    Store,
    /// The store, then remembered in the access cache under the token's key and the
    /// generation read before the token.
    Remember(TokenKey, i64),
    /// The access cache: the grant and the generation both were read at.
    Cached(&'a Arc<Grant>, i64),
}

/// Entries of the access cache before it starts afresh.
const ACCESS_CACHE_ENTRIES: usize = 10_000;

/// What the record lookup read from the store about a token and a grant, each with the
/// sharing generation it was read at. An entry is used only when the lookup's own read
/// of the generation (in the statement that returns the record) still shows that
/// generation; the triggers of migration 0008 raise it with every change to apps, app
/// tokens and grants, so a revocation on any node is seen by the next request.
#[derive(Debug, Default)]
struct AccessCache {
    /// Token → the app's principal.
    tokens: HashMap<TokenKey, (Arc<Principal>, i64)>,
    /// App → dataset → the grant in force (nested, so that a lookup allocates nothing).
    grants: HashMap<i64, HashMap<String, (Arc<Grant>, i64)>>,
}

impl AccessCache {
    fn room(&mut self) {
        if self.tokens.len() + self.grants.values().map(HashMap::len).sum::<usize>() >= ACCESS_CACHE_ENTRIES {
            self.tokens.clear();
            self.grants.clear();
        }
    }
}

impl ShareState {
    pub fn new(rate_per_sec: u32, burst: u32) -> ShareState {
        ShareState {
            buckets: Mutex::new(HashMap::new()),
            secret: tokio::sync::OnceCell::new(),
            rate: f64::from(rate_per_sec.max(1)),
            burst: f64::from(burst.max(1)),
            access: Mutex::new(AccessCache::default()),
            token_keys: (std::hash::RandomState::new(), std::hash::RandomState::new()),
        }
    }

    fn token_key(&self, token: &str) -> TokenKey {
        use std::hash::BuildHasher;
        TokenKey(self.token_keys.0.hash_one(token), self.token_keys.1.hash_one(token))
    }

    /// The cached principal of a token and its grant on a dataset, when both were read
    /// at the same generation (returned).
    fn cached_access(&self, token: TokenKey, dataset: &str) -> Option<(Arc<Principal>, Arc<Grant>, i64)> {
        let cache = self.access.lock().ok()?;
        let (p, generation) = cache.tokens.get(&token)?;
        let (g, grant_generation) = cache.grants.get(&p.app?)?.get(dataset)?;
        (generation == grant_generation).then(|| (p.clone(), g.clone(), *generation))
    }

    fn remember_access(&self, token: TokenKey, p: &Principal, g: &Arc<Grant>, generation: i64) {
        let (Ok(mut cache), Some(app)) = (self.access.lock(), p.app) else { return };
        cache.room();
        cache.tokens.insert(token, (Arc::new(p.clone()), generation));
        cache.grants.entry(app).or_default().insert(g.dataset.as_str().to_string(), (g.clone(), generation));
    }

    /// Drop every entry read before `generation`.
    fn forget_before(&self, generation: i64) {
        if let Ok(mut cache) = self.access.lock() {
            cache.tokens.retain(|_, (_, g)| *g >= generation);
            for by_dataset in cache.grants.values_mut() {
                by_dataset.retain(|_, (_, g)| *g >= generation);
            }
            cache.grants.retain(|_, by_dataset| !by_dataset.is_empty());
        }
    }

    /// Token bucket per app: `true` when the request may go ahead.
    fn admit(&self, app: i64) -> bool {
        let now = Instant::now();
        let Ok(mut b) = self.buckets.lock() else { return true };
        let (tokens, last) = b.entry(app).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The granted fields a request reads, in schema order, with their masks.
#[derive(Debug, Clone)]
pub struct Projection {
    pub fields: Vec<usize>,
    pub masks: Vec<Option<MaskRule>>,
}

impl Projection {
    /// `wanted`: a comma-separated subset of the granted fields (`None`: all granted).
    pub(crate) fn new(d: &Dataset, g: &Grant, wanted: Option<&str>) -> Result<Projection> {
        let names: Vec<String> = match wanted.map(str::trim).filter(|w| !w.is_empty()) {
            None => g.fields.clone(),
            Some(w) => {
                let mut v = Vec::new();
                for n in w.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    if !g.fields.iter().any(|f| f == n) {
                        return Err(not_granted(n, "fields"));
                    }
                    v.push(n.to_string());
                }
                v
            }
        };
        let mut fields = Vec::new();
        let mut masks = Vec::new();
        for (i, f) in d.schema.fields.iter().enumerate() {
            if names.iter().any(|n| n == &f.name) {
                fields.push(i);
                let clear = g.clear_fields.iter().any(|c| c == &f.name);
                masks.push(if f.sensitive && !clear { Some(rule_for(f)) } else { None });
            }
        }
        Ok(Projection { fields, masks })
    }

    fn cell(&self, j: usize, c: &Cell) -> Cell {
        self.shown(j, c).into_owned()
    }

    /// Projected field `j`'s cell as it may be shown: masked, or `c` itself.
    fn shown<'c>(&self, j: usize, c: &'c Cell) -> std::borrow::Cow<'c, Cell> {
        match self.masks[j] {
            Some(rule) => std::borrow::Cow::Owned(mask_cell(rule, c)),
            None => std::borrow::Cow::Borrowed(c),
        }
    }

    /// The granted, masked fields of a row as a JSON object.
    pub fn json(&self, d: &Dataset, cells: &[Cell]) -> Map<String, Value> {
        let mut m = Map::new();
        for (j, &i) in self.fields.iter().enumerate() {
            if let Some(c) = cells.get(i) {
                m.insert(d.schema.fields[i].name.clone(), self.cell(j, c).to_json());
            }
        }
        m
    }

    /// Column names, for CSV.
    pub fn header(&self, d: &Dataset) -> Vec<String> {
        self.fields.iter().map(|&i| d.schema.fields[i].name.clone()).collect()
    }

    /// The granted, masked fields of a row as text, for CSV.
    pub fn texts(&self, cells: &[Cell]) -> Vec<String> {
        self.fields
            .iter()
            .enumerate()
            .map(|(j, &i)| cells.get(i).map(|c| self.cell(j, c).to_text()).unwrap_or_default())
            .collect()
    }
}

/// One record as the consumer API returns it: the granted fields, masked, in schema
/// order. It serialises straight from its cells (no JSON map built first: on the keyed
/// lookup's hot path the map and its copied names were a few per cent of the server).
#[derive(Debug, Clone)]
pub struct SharedRecord {
    dataset: Arc<Dataset>,
    projection: Projection,
    cells: Vec<Cell>,
}

impl SharedRecord {
    /// The same object as a JSON map.
    pub fn to_map(&self) -> Map<String, Value> {
        self.projection.json(&self.dataset, &self.cells)
    }
}

impl serde::Serialize for SharedRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.projection.fields.len()))?;
        for (j, &i) in self.projection.fields.iter().enumerate() {
            let (Some(c), Some(f)) = (self.cells.get(i), self.dataset.schema.fields.get(i)) else { continue };
            m.serialize_entry(&f.name, &*self.projection.shown(j, c))?;
        }
        m.end()
    }
}

/// Licence libraries have no rows of their own: they are read through
/// `/api/v1/share/licences` (`licence_share.rs`).
fn refuse_licence_dataset(code: &str) -> Result<()> {
    if crate::licence_share::is_licence_dataset(code) {
        return Err(crate::licence_share::licence_dataset_error(code));
    }
    Ok(())
}

/// `param`: the query parameter that named the field (`fields`, or the filter itself).
fn not_granted(name: &str, param: &str) -> Error {
    Error::new(
        Code::InvalidRequest,
        format!("field \"{name}\" is not in this app's grant"),
        format!("字段“{name}”不在本应用的授权范围内"),
    )
    .with_field(param)
}

fn bad_cursor() -> Error {
    Error::new(
        Code::InvalidRequest,
        "the cursor is invalid or was altered; start again without it",
        "游标无效或被篡改，请不带游标重新查询",
    )
    .with_field("cursor")
}

/// A query of the consumer API as it arrives.
#[derive(Debug, Clone, Copy)]
pub struct ShareRequest<'a> {
    /// Comma-separated subset of the granted fields.
    pub fields: Option<&'a str>,
    /// `field=op:value` filters (granted fields only).
    pub filters: &'a [(String, String)],
    pub cursor: Option<&'a str>,
    pub limit: u32,
    /// Primary key descending.
    pub descending: bool,
}

/// A page of shared records.
#[derive(Debug, Clone)]
pub struct SharePage {
    pub records: Vec<Map<String, Value>>,
    pub next_cursor: Option<String>,
}

/// A page of changes.
#[derive(Debug, Clone)]
pub struct ChangePage {
    pub changes: Vec<Value>,
    /// Where to resume; also given when the page is empty (pass it next time).
    pub next_cursor: Option<String>,
}

/// A bulk export, checked and audited; its pages are read with [`Hub::export_page`].
#[derive(Debug, Clone)]
pub struct ExportPlan {
    pub dataset: Dataset,
    pub projection: Projection,
    pub filters: Vec<Filter>,
    pub app: i64,
    /// Who exports, and the request, for each page's audit entry.
    principal: Principal,
    ctx: Ctx,
}

impl Hub {
    async fn cursor_secret(&self) -> Result<&[u8]> {
        let store = self.store().clone();
        let s = self
            .share_state()
            .secret
            .get_or_try_init(|| async move {
                if let Some(s) = store.get_meta(CURSOR_SECRET_KEY).await.map_err(store_err)? {
                    return Ok::<Vec<u8>, Error>(s.into_bytes());
                }
                store.set_meta(CURSOR_SECRET_KEY, &govhub_crypto::new_token("cs_")).await.map_err(store_err)?;
                let s = store.get_meta(CURSOR_SECRET_KEY).await.map_err(store_err)?.unwrap_or_default();
                Ok(s.into_bytes())
            })
            .await?;
        Ok(s.as_slice())
    }

    async fn sign_cursor(&self, payload: &Value) -> Result<String> {
        let body = serde_json::to_vec(payload).map_err(Error::internal)?;
        let mac = govhub_crypto::hmac_sm3(self.cursor_secret().await?, &body);
        Ok(format!("{}.{}", b64url(&body), b64url(&mac[..16])))
    }

    /// The payload of a cursor this hub signed for this app and dataset.
    async fn open_cursor(&self, cursor: &str, app: i64, d: &Dataset, kind: &str) -> Result<Value> {
        let (body, mac) = cursor.split_once('.').ok_or_else(bad_cursor)?;
        let body = unb64url(body).ok_or_else(bad_cursor)?;
        let mac = unb64url(mac).ok_or_else(bad_cursor)?;
        let expected = govhub_crypto::hmac_sm3(self.cursor_secret().await?, &body);
        if !govhub_crypto::constant_time_eq(&expected[..16], &mac) {
            return Err(bad_cursor());
        }
        let v: Value = serde_json::from_slice(&body).map_err(|_| bad_cursor())?;
        if v["a"] != json!(app) || v["d"] != json!(d.code.as_str()) || v["t"] != json!(kind) {
            return Err(bad_cursor());
        }
        Ok(v)
    }

    pub(crate) fn key_cells(d: &Dataset, v: &Value) -> Result<Vec<Cell>> {
        let parts = v.as_array().ok_or_else(bad_cursor)?;
        let idx = key_indexes(&d.schema);
        if parts.len() != idx.len() {
            return Err(bad_cursor());
        }
        idx.iter()
            .zip(parts)
            .map(|(&i, p)| {
                cast_value(&d.schema.fields[i], p.as_str().ok_or_else(bad_cursor)?).map_err(|_| bad_cursor())
            })
            .collect()
    }

    fn key_texts(d: &Dataset, cells: &[Cell]) -> Value {
        Value::Array(key_indexes(&d.schema).iter().map(|&i| Value::String(cells[i].to_text())).collect())
    }

    /// Who may read, what grant applies: the app, its rate, the grant in force.
    pub(crate) async fn share_begin(
        &self,
        p: &Principal,
        code: &str,
        target: &str,
        ctx: &Ctx,
    ) -> Result<(Arc<Dataset>, Arc<Grant>, i64)> {
        self.share_begin_with(p, code, target, None, ctx).await
    }

    /// [`Hub::share_begin`] with the grant already known (from the access cache).
    async fn share_begin_with(
        &self,
        p: &Principal,
        code: &str,
        target: &str,
        known: Option<Arc<Grant>>,
        ctx: &Ctx,
    ) -> Result<(Arc<Dataset>, Arc<Grant>, i64)> {
        self.authorize(p, Action::ReadShared, target, ctx).await?;
        let app = p.app.ok_or_else(|| Error::forbidden("apps only", "仅限应用调用"))?;
        if !self.share_state().admit(app) {
            return Err(Error::new(
                Code::RateLimited,
                "this app sends too many requests; slow down and retry in a moment",
                "本应用请求过于频繁，请稍后重试",
            ));
        }
        let d = self.shared_dataset(code).await?;
        let refuse = |en: String, zh: String| Error::new(Code::NoGrant, en, zh);
        let found = match known {
            Some(g) => Some(g),
            None => self.store().current_grant(app, &d.code).await.map_err(store_err)?.map(Arc::new),
        };
        let Some(g) = found else {
            self.share_denied(p, code, "no grant", ctx).await?;
            return Err(refuse(
                format!(
                    "app {app} has no grant for dataset {code}; request access first (POST /api/v1/access-requests)"
                ),
                format!("本应用没有数据集“{}”的共享授权，请先提交共享申请", d.name),
            ));
        };
        let today = china_date(self.clock().now());
        if !g.active_on(today) {
            self.share_denied(p, code, g.state_on(today), ctx).await?;
            return Err(refuse(
                format!("the grant for dataset {code} ended on {}", g.valid_until),
                format!("数据集“{}”的共享授权已于{}到期", d.name, g.valid_until),
            ));
        }
        if d.sharing_class == SharingClass::NotShared {
            self.share_denied(p, code, "not shared", ctx).await?;
            return Err(Error::new(Code::NotShareable, "the dataset is no longer shared", "该数据集已改为不予共享"));
        }
        Ok((d, g, app))
    }

    pub(crate) async fn share_denied(&self, p: &Principal, target: &str, why: &str, ctx: &Ctx) -> Result<()> {
        self.audit(p, Audit::of("share.read", target, Outcome::Denied), json!({ "reason": why }), ctx).await
    }

    /// The audit entry of a read, written (durably) before the data is returned: the
    /// app, the grant's purpose, the row count and the subjects (ID numbers, USCCs) of
    /// the records read, so a citizen can later see who read what about them.
    pub(crate) async fn share_audited(
        &self,
        p: &Principal,
        d: &Dataset,
        g: &Grant,
        detail: Value,
        read: &[&[Cell]],
        ctx: &Ctx,
    ) -> Result<()> {
        let mut detail = detail;
        if let Value::Object(m) = &mut detail {
            m.insert("grant".into(), json!(g.id));
            m.insert("purpose".into(), json!(g.purpose));
            m.insert("provider".into(), json!(g.provider.as_str()));
        }
        let mut what = Audit::of("share.read", d.code.as_str(), Outcome::Allowed);
        // The app's name (its id is in `actor`, `app:<id>`).
        what.app = Some(&p.display_name);
        what.purpose = Some(&g.purpose);
        what.rows = Some(read.len() as i64);
        what.subjects = subjects_of(d, read);
        self.audit(p, what, detail, ctx).await
    }

    /// One record by primary key.
    pub async fn share_record(
        &self,
        p: &Principal,
        code: &str,
        key: &str,
        fields: Option<&str>,
        ctx: &Ctx,
    ) -> Result<SharedRecord> {
        self.share_record_at(p, code, key, fields, Access::Store, ctx)
            .await?
            .ok_or_else(|| Error::internal("a record lookup without a cached grant came back stale"))
    }

    /// One record by primary key for the bearer of `token` (the consumer API's hot
    /// path); also the app's id once the token is known, for the usage figures.
    ///
    /// An app token's app and its grant come from the per-process access cache when
    /// both were read at the sharing generation that the record lookup itself returns
    /// (one statement, one snapshot). When the generation has moved — a token or grant
    /// changed on any node — the cache entries are dropped and the request is decided
    /// afresh from the store, so a revocation refuses the next request everywhere.
    pub async fn share_record_by_token(
        &self,
        token: &str,
        code: &str,
        key: &str,
        fields: Option<&str>,
        ctx: &Ctx,
    ) -> (Option<i64>, Result<SharedRecord>) {
        if !token.starts_with(crate::sharing::APP_TOKEN_PREFIX) {
            // People's tokens: the general path (which refuses them: apps only).
            return match self.authenticate(token, crate::model::SessionKind::Api).await {
                Ok((p, _)) => (p.app, self.share_record(&p, code, key, fields, ctx).await),
                Err(e) => (None, Err(e)),
            };
        }
        let token_key = self.share_state().token_key(token);
        if let Some((p, g, generation)) = self.share_state().cached_access(token_key, code) {
            match self.share_record_at(&p, code, key, fields, Access::Cached(&g, generation), ctx).await {
                Ok(Some(out)) => return (p.app, Ok(out)),
                Ok(None) => {}
                Err(e) => return (p.app, Err(e)),
            }
        }
        // Read the generation first: whatever is read after it is at least that new,
        // so an entry remembered under it is dropped by the next change.
        let generation = match self.store().sharing_generation().await {
            Ok(n) => n,
            Err(e) => return (None, Err(store_err(e))),
        };
        let p = match self.authenticate_app(token).await {
            Ok(p) => p,
            Err(e) => return (None, Err(e)),
        };
        let found = self.share_record_at(&p, code, key, fields, Access::Remember(token_key, generation), ctx).await;
        let out = found.and_then(|o| o.ok_or_else(|| Error::internal("an uncached record lookup came back stale")));
        (p.app, out)
    }

    /// The record lookup: check, read, audit, answer (masked) or say it was not found.
    /// `Ok(None)` only for [`Access::Cached`] when the sharing generation moved since
    /// the cached token and grant were read (the caller decides afresh).
    async fn share_record_at(
        &self,
        p: &Principal,
        code: &str,
        key: &str,
        fields: Option<&str>,
        access: Access<'_>,
        ctx: &Ctx,
    ) -> Result<Option<SharedRecord>> {
        refuse_licence_dataset(code)?;
        let (known, cached_at) = match &access {
            Access::Cached(g, generation) => (Some(Arc::clone(g)), Some(*generation)),
            _ => (None, None),
        };
        let (d, g, _) = self.share_begin_with(p, code, code, known, ctx).await?;
        if let Access::Remember(token_key, generation) = access {
            self.share_state().remember_access(token_key, p, &g, generation);
        }
        let proj = Projection::new(&d, &g, fields)?;
        let cells = crate::records::parse_key(&d.schema, key)?;
        let (found, now) = self.store().shared_record(&d, &cells, &fields_read(&d, &proj)).await.map_err(store_err)?;
        if cached_at.is_some_and(|at| at != now) {
            self.share_state().forget_before(now);
            return Ok(None);
        }
        let found = found.filter(|r| !r.deleted);
        let names: Vec<String> = proj.header(&d);
        let key_shown = if key_indexes(&d.schema).iter().any(|&i| d.schema.fields[i].sensitive) {
            crate::delivery::mask(key)
        } else {
            key.to_string()
        };
        let read: Vec<&[Cell]> = found.iter().map(|r| r.cells.as_slice()).collect();
        self.share_audited(p, &d, &g, json!({"key": key_shown, "fields": names}), &read, ctx).await?;
        match found {
            Some(r) => Ok(Some(SharedRecord { dataset: d, projection: proj, cells: r.cells })),
            None => Err(Error::not_found("record", "记录", &key_shown)),
        }
    }

    /// Records by filters, in key order, a page at a time.
    pub async fn share_records(
        &self,
        p: &Principal,
        code: &str,
        req: &ShareRequest<'_>,
        ctx: &Ctx,
    ) -> Result<SharePage> {
        refuse_licence_dataset(code)?;
        let (d, g, app) = self.share_begin(p, code, code, ctx).await?;
        let (proj, filters, filter_desc) = granted_query(&d, &g, req)?;
        if d.schema.primary_key.is_empty() {
            return Err(Error::new(
                Code::InvalidRequest,
                "this dataset has no primary key: use the export",
                "该数据集无主键，请使用批量导出",
            ));
        }
        let after = match req.cursor {
            Some(c) => {
                let v = self.open_cursor(c, app, &d, "records").await?;
                if v["o"] != json!(if req.descending { "desc" } else { "asc" }) {
                    return Err(bad_cursor());
                }
                Some(Self::key_cells(&d, &v["k"])?)
            }
            None => None,
        };
        let limit = req.limit.clamp(1, MAX_PAGE);
        let q = RecordQuery { filters, after, limit, as_of: None, include_deleted: false, descending: req.descending };
        let records = self.store().query_records(&d, &q).await.map_err(store_err)?;
        let read: Vec<&[Cell]> = records.iter().map(|r| r.cells.as_slice()).collect();
        self.share_audited(p, &d, &g, json!({"filter": filter_desc, "fields": proj.header(&d)}), &read, ctx).await?;
        let next_cursor = match records.last() {
            Some(r) if records.len() as u32 == limit => Some(
                self.sign_cursor(&json!({"t": "records", "a": app, "d": d.code.as_str(), "o": if req.descending { "desc" } else { "asc" }, "k": Self::key_texts(&d, &r.cells)}))
                    .await?,
            ),
            _ => None,
        };
        Ok(SharePage { records: records.iter().map(|r| proj.json(&d, &r.cells)).collect(), next_cursor })
    }

    /// Check and audit a bulk export; the caller then streams [`Hub::export_page`]s.
    pub async fn share_export(
        &self,
        p: &Principal,
        code: &str,
        req: &ShareRequest<'_>,
        ctx: &Ctx,
    ) -> Result<ExportPlan> {
        refuse_licence_dataset(code)?;
        let (d, g, app) = self.share_begin(p, code, code, ctx).await?;
        let (proj, filters, filter_desc) = granted_query(&d, &g, req)?;
        self.share_audited(
            p,
            &d,
            &g,
            json!({"export": true, "filter": filter_desc, "fields": proj.header(&d)}),
            &[],
            ctx,
        )
        .await?;
        Ok(ExportPlan {
            dataset: Dataset::clone(&d),
            projection: proj,
            filters,
            app,
            principal: p.clone(),
            ctx: ctx.clone(),
        })
    }

    /// The next page of an export after `after` (the last key of the previous page).
    /// The grant is checked again: a revocation stops a running export. Each page is
    /// audited (rows and subjects) before it is handed out.
    pub async fn export_page(&self, plan: &ExportPlan, after: Option<Vec<Cell>>, limit: u32) -> Result<Vec<Record>> {
        let g = self.store().current_grant(plan.app, &plan.dataset.code).await.map_err(store_err)?;
        let Some(g) = g.filter(|g| g.active_on(china_date(self.clock().now()))) else {
            return Err(Error::new(Code::NoGrant, "the grant was revoked during the export", "导出过程中授权已被撤销"));
        };
        let q = RecordQuery {
            filters: plan.filters.clone(),
            after,
            limit: limit.clamp(1, 10_000),
            as_of: None,
            include_deleted: false,
            descending: false,
        };
        let records = self.store().query_records(&plan.dataset, &q).await.map_err(store_err)?;
        if !records.is_empty() {
            let read: Vec<&[Cell]> = records.iter().map(|r| r.cells.as_slice()).collect();
            let detail = json!({"export_page": true, "fields": plan.projection.header(&plan.dataset)});
            self.share_audited(&plan.principal, &plan.dataset, &g, detail, &read, &plan.ctx).await?;
        }
        Ok(records)
    }

    /// Changes since a cursor: inserts, updates and deletes with version and time, in
    /// commit order; resumable (pass `next_cursor` back), at least once.
    pub async fn share_changes(
        &self,
        p: &Principal,
        code: &str,
        since: Option<&str>,
        limit: u32,
        fields: Option<&str>,
        ctx: &Ctx,
    ) -> Result<ChangePage> {
        refuse_licence_dataset(code)?;
        let (d, g, app) = self.share_begin(p, code, code, ctx).await?;
        let proj = Projection::new(&d, &g, fields)?;
        let after = match since.filter(|s| !s.is_empty() && *s != "0") {
            Some(c) => Some(self.changes_cursor_position(c, app, &d).await?),
            None => None,
        };
        let limit = limit.clamp(1, MAX_PAGE);
        let changes = self.store().list_changes(&d, after.as_ref(), limit).await.map_err(store_err)?;
        let read: Vec<&[Cell]> = changes.iter().map(|c| c.cells.as_slice()).collect();
        self.share_audited(
            p,
            &d,
            &g,
            json!({"changes_since": after.as_ref().map(|a| a.commit_seq), "fields": proj.header(&d)}),
            &read,
            ctx,
        )
        .await?;
        let mut out = Vec::with_capacity(changes.len());
        for c in &changes {
            out.push(change_json(&d, &proj, c));
        }
        let next = match changes.last() {
            Some(c) => Some(self.changes_cursor(app, &d, c).await?),
            None => since.map(str::to_string),
        };
        Ok(ChangePage { changes: out, next_cursor: next })
    }

    /// The signed change-feed cursor after change `c`, for `app` (the pull feed's
    /// `next_cursor`, also sent with every webhook push).
    pub(crate) async fn changes_cursor(&self, app: i64, d: &Dataset, c: &Change) -> Result<String> {
        self.sign_cursor(&json!({"t": "changes", "a": app, "d": d.code.as_str(), "s": c.commit_seq, "v": c.version, "k": Self::key_texts(d, &c.cells)}))
            .await
    }

    /// The feed position a change-feed cursor of `app` encodes (a tampered or foreign
    /// cursor is refused).
    pub(crate) async fn changes_cursor_position(&self, cursor: &str, app: i64, d: &Dataset) -> Result<ChangePosition> {
        let v = self.open_cursor(cursor, app, d, "changes").await?;
        let seq = v["s"].as_i64().ok_or_else(bad_cursor)?;
        let version = v["v"].as_i64().ok_or_else(bad_cursor)?;
        Ok(ChangePosition { commit_seq: seq, key: Self::key_cells(d, &v["k"])?, version })
    }
}

/// The people and enterprises whose records were read: the values of the dataset's
/// `id-number` and `uscc` fields (before masking; the audit log keeps only their
/// salted digests).
fn subjects_of(d: &Dataset, read: &[&[Cell]]) -> Vec<String> {
    let cols: Vec<usize> = subject_columns(d).collect();
    let mut out = Vec::new();
    for cells in read {
        for &i in &cols {
            if let Some(Cell::Text(t)) = cells.get(i) {
                out.push(t.clone());
            }
        }
    }
    out
}

/// The fields whose values are subjects (ID numbers, USCCs) for the audit log.
fn subject_columns(d: &Dataset) -> impl Iterator<Item = usize> + '_ {
    d.schema
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| matches!(f.format_or_default(), "id-number" | "uscc"))
        .map(|(i, _)| i)
}

/// The fields a lookup reads: those shown, and the subjects the audit entry names.
fn fields_read(d: &Dataset, proj: &Projection) -> Vec<usize> {
    let mut read: Vec<usize> = proj.fields.iter().copied().chain(subject_columns(d)).collect();
    read.sort_unstable();
    read.dedup();
    read
}

/// The projection and filters of a query, all on granted fields, and the filters as
/// the audit log writes them.
fn granted_query(d: &Dataset, g: &Grant, req: &ShareRequest<'_>) -> Result<(Projection, Vec<Filter>, Vec<String>)> {
    let proj = Projection::new(d, g, req.fields)?;
    if let Some((name, _)) = req.filters.iter().find(|(name, _)| !g.fields.iter().any(|f| f == name)) {
        return Err(not_granted(name, name));
    }
    let filters = parse_filters(&d.schema, req.filters)?;
    let desc = req.filters.iter().map(|(k, v)| format!("{k}={}", masked_filter(d, k, v))).collect();
    Ok((proj, filters, desc))
}

/// A filter as written in the audit log: values of sensitive fields masked.
fn masked_filter(d: &Dataset, field: &str, spec: &str) -> String {
    match d.schema.field(field) {
        Some(f) if f.sensitive => crate::delivery::mask(spec),
        _ => spec.to_string(),
    }
}

/// One change as JSON: a stable id, the operation, version, time and the record's
/// granted fields (masked). The id does not reveal the key.
pub fn change_json(d: &Dataset, proj: &Projection, c: &Change) -> Value {
    let key: Vec<String> = key_indexes(&d.schema).iter().map(|&i| c.cells[i].to_text()).collect();
    let digest = govhub_crypto::sm3_hex(key.join("\u{1f}").as_bytes());
    json!({
        "id": format!("{}-{}-{}", c.delivery_id, c.version, &digest[..16]),
        "op": c.op,
        "version": c.version,
        "at": c.at.to_rfc3339(),
        "delivery": c.delivery_id,
        "record": proj.json(d, &c.cells),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::names::{DatasetCode, OrgCode};
    use crate::schema::TableSchema;

    /// A shared record serialises exactly as the JSON map the other paths build: the
    /// granted fields in schema order, masked unless granted in clear, every cell type.
    #[test]
    fn a_shared_record_serialises_as_its_map() {
        let schema = TableSchema::parse(&json!({
            "fields": [
                {"name": "sfzh", "format": "id-number", "sensitive": true},
                {"name": "xm", "sensitive": true},
                {"name": "sjhm", "format": "mobile", "sensitive": true},
                {"name": "nl", "type": "integer"},
                {"name": "sg", "type": "number"},
                {"name": "hz", "type": "boolean"},
                {"name": "csrq", "type": "date"},
                {"name": "gxsj", "type": "datetime"},
                {"name": "kz", "type": "object"},
                {"name": "bz"},
                {"name": "mm"}
            ],
            "primaryKey": "sfzh"
        }))
        .unwrap();
        let now = chrono::Utc::now();
        let code = DatasetCode::parse("gaj-test").unwrap();
        let d = Dataset {
            table_name: Dataset::table_name_for(&code, 1),
            code: code.clone(),
            name: "测试".into(),
            provider: OrgCode::parse("cz-gaj").unwrap(),
            summary: String::new(),
            category: None,
            sharing_class: SharingClass::Conditional,
            sharing_condition: None,
            open_class: OpenClass::NotOpen,
            grade: Grade::General,
            update_cycle: UpdateCycle::Daily,
            publish_date: None,
            tags: vec![],
            schema,
            schema_version: 1,
            created_at: now,
            updated_at: now,
        };
        let grant = |clear: &[&str]| Grant {
            id: 1,
            request_id: 1,
            app_id: 1,
            app_org: OrgCode::parse("cz-rsj").unwrap(),
            dataset: code.clone(),
            provider: OrgCode::parse("cz-gaj").unwrap(),
            fields: ["sfzh", "xm", "sjhm", "nl", "sg", "hz", "csrq", "gxsj", "kz", "bz"].map(String::from).to_vec(),
            clear_fields: clear.iter().map(|s| s.to_string()).collect(),
            purpose: "测试".into(),
            valid_until: now.date_naive(),
            granted_by: "x".into(),
            granted_at: now,
            revoked_at: None,
            revoked_by: None,
            revoke_reason: None,
        };
        let cells = vec![
            Cell::Text("32040219900101123X".into()),
            Cell::Text("欧阳修".into()),
            Cell::Text("13812345678".into()),
            Cell::Int(-7),
            Cell::Num(1.75),
            Cell::Bool(true),
            Cell::Date(chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap()),
            Cell::DateTime(now),
            Cell::json(json!({"a": [1, "二"], "b": null})),
            Cell::Null,
            Cell::Text("not granted".into()),
        ];
        let dataset = Arc::new(d);
        for (clear, wanted) in [(vec![], None), (vec!["sfzh", "xm"], None), (vec![], Some("bz,xm,sg"))] {
            let projection = Projection::new(&dataset, &grant(&clear), wanted).unwrap();
            let r = SharedRecord { dataset: dataset.clone(), projection, cells: cells.clone() };
            let text = serde_json::to_string(&r).unwrap();
            assert_eq!(text, serde_json::to_string(&r.to_map()).unwrap(), "clear {clear:?}, fields {wanted:?}");
            assert!(!text.contains("not granted"));
        }
        let masked = serde_json::to_value(SharedRecord {
            dataset: dataset.clone(),
            projection: Projection::new(&dataset, &grant(&[]), None).unwrap(),
            cells: cells.clone(),
        })
        .unwrap();
        assert_eq!(masked["sfzh"], json!("320402********123X"));
        assert_eq!(masked["xm"], json!("欧阳*"));
        assert_eq!(masked["sjhm"], json!("138****5678"));
        // A number JSON cannot hold is null, as in the map.
        let mut odd = cells;
        odd[4] = Cell::Num(f64::NAN);
        let r = SharedRecord {
            dataset: dataset.clone(),
            projection: Projection::new(&dataset, &grant(&[]), Some("sg")).unwrap(),
            cells: odd,
        };
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"sg":null}"#);
    }
}
