//! The pages: home, my account, catalog, dataset, organisations, audit log. The data
//! delivery pages live in `data.rs`.

use super::session::{OptionalWebUser, PageCtx, Viewer, WebUser};
use super::view::{
    choices, grade_label, open_label, org_tree, query_string, sharing_label, AuditRow, ColumnRow, DatasetDetail,
    DatasetRow, OrgRow, VersionRow,
};
use super::{render_page, respond};
use crate::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use govhub_core::model::{AuditQuery, DatasetQuery, Grade, OpenClass, Org, Role, SharingClass};
use govhub_core::{Code, Error, Result};
use minijinja::context;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Catalog page size.
pub const PAGE_SIZE: u32 = 50;

fn org_names(orgs: &[Org]) -> HashMap<String, String> {
    orgs.iter().map(|o| (o.code.to_string(), o.name.clone())).collect()
}

// ------------------------------------------------------------------------- home

#[derive(Debug, Serialize)]
struct OwnDatasets {
    org_code: String,
    org_name: String,
    total: u64,
    items: Vec<DatasetRow>,
}

/// `GET /`: welcome for visitors; the dashboard for government staff; "my account"
/// for citizens and enterprises.
pub async fn home(State(st): State<AppState>, user: OptionalWebUser) -> Response {
    let OptionalWebUser { viewer, page } = user;
    let result = match &viewer {
        None => render_page(&st, &page, None, "home.html", "home", StatusCode::OK, context! {}),
        Some(v) if !v.principal.role.is_government() => me_page(&st, &page, v).await,
        Some(v) => dashboard(&st, &page, v).await,
    };
    respond(&st, &page, viewer.as_ref(), result)
}

async fn dashboard(st: &AppState, page: &PageCtx, v: &Viewer) -> Result<Response> {
    let p = &v.principal;
    let all = st.hub.search_datasets(p, &DatasetQuery { limit: 1, ..Default::default() }, &page.ctx).await?;
    let orgs = st.hub.list_orgs(p, &page.ctx).await?;
    let names = org_names(&orgs);
    let own = match (&p.org, p.role) {
        (Some(org), Role::DataOfficer) => {
            let q = DatasetQuery { provider: Some(org.clone()), limit: PAGE_SIZE, ..Default::default() };
            let found = st.hub.search_datasets(p, &q, &page.ctx).await?;
            Some(OwnDatasets {
                org_code: org.to_string(),
                org_name: names.get(org.as_str()).cloned().unwrap_or_else(|| org.to_string()),
                total: found.total,
                items: found.items.iter().map(|d| DatasetRow::new(d, &names, page.lang)).collect(),
            })
        }
        _ => None,
    };
    let extra = context! { dataset_total => all.total, org_total => orgs.len(), own => own };
    render_page(st, page, Some(v), "home.html", "home", StatusCode::OK, extra)
}

async fn me_page(st: &AppState, page: &PageCtx, v: &Viewer) -> Result<Response> {
    // Citizens and enterprises with a registered ID number / USCC see who read
    // records about them.
    let accesses = if v.principal.subject_id.is_some() && !v.principal.role.is_government() {
        let found = st.hub.my_accesses(&v.principal, 100, &page.ctx).await?;
        let names = if found.is_empty() {
            HashMap::new()
        } else {
            org_names(&st.hub.list_orgs(&v.principal, &page.ctx).await?)
        };
        Some(found.iter().map(|a| super::view::AccessRow::new(a, &names)).collect::<Vec<_>>())
    } else {
        None
    };
    // Their e-licences, with QR code and download.
    let licences = match v.principal.subject_id.as_deref() {
        Some(holder) if !v.principal.role.is_government() => {
            let found = st.hub.list_licences(&v.principal, holder, &page.ctx).await?;
            Some(
                found
                    .iter()
                    .map(|l| {
                        let id = super::session::urlencode(l.id.as_str());
                        context! {
                            id => l.id.as_str(), type_name => l.type_name.clone(), issuer_name => l.issuer_name.clone(),
                            valid_until => l.valid_until.to_string(), status => l.status.as_str(),
                            verify_href => format!("/verify/{id}"), qr_src => format!("/verify/{id}/qr.svg"),
                            download_href => format!("/me/licences/{id}/file"),
                        }
                    })
                    .collect::<Vec<_>>(),
            )
        }
        _ => None,
    };
    render_page(
        st,
        page,
        Some(v),
        "me.html",
        "me",
        StatusCode::OK,
        context! { accesses => accesses, licences => licences },
    )
}

/// `GET /me/licences/{id}/file`: the signed licence file, for its holder (the same
/// rules as the API: holder, issuer, admins).
pub async fn my_licence_file(
    State(st): State<AppState>,
    user: WebUser,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let result = async {
        let l = st.hub.get_licence(&user.viewer.principal, &id, &user.page.ctx).await?;
        let mut r = axum::response::IntoResponse::into_response(l.file().to_bytes());
        r.headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
        if let Ok(v) =
            axum::http::HeaderValue::from_str(&format!("attachment; filename=\"licence-{}.json\"", l.id.number()))
        {
            r.headers_mut().insert(axum::http::header::CONTENT_DISPOSITION, v);
        }
        Ok(r)
    }
    .await;
    respond(&st, &user.page, Some(&user.viewer), result)
}

/// `GET /me`: who I am.
pub async fn me(State(st): State<AppState>, user: WebUser) -> Response {
    let result = me_page(&st, &user.page, &user.viewer).await;
    respond(&st, &user.page, Some(&user.viewer), result)
}

// ---------------------------------------------------------------------- catalog

/// The catalog's GET form. Unknown parameters are ignored (the language switch and
/// browsers add their own).
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct CatalogForm {
    #[serde(default)]
    pub q: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub sharing_class: Option<String>,
    #[serde(default)]
    pub open_class: Option<String>,
    #[serde(default)]
    pub grade: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub page: Option<String>,
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

impl CatalogForm {
    /// The 1-based page number (bad or missing → 1).
    pub fn page(&self) -> u32 {
        self.page.as_deref().and_then(|p| p.trim().parse::<u32>().ok()).filter(|p| *p >= 1).unwrap_or(1).min(100_000)
    }

    /// The catalog query, with the same rules as the API's `GET /api/v1/datasets`.
    pub fn to_query(&self) -> Result<DatasetQuery> {
        crate::api::catalog::CatalogSearch {
            q: self.q.clone(),
            provider: self.provider.clone(),
            sharing_class: self.sharing_class.clone(),
            open_class: self.open_class.clone(),
            grade: self.grade.clone(),
            tag: self.tag.clone(),
            limit: Some(PAGE_SIZE),
            offset: Some((self.page() - 1).saturating_mul(PAGE_SIZE)),
        }
        .to_query()
    }

    /// The link to another page of the same search.
    pub fn href_for_page(&self, page: u32) -> String {
        let page = page.to_string();
        let v = |s: &Option<String>| nonempty(s).unwrap_or_default();
        let (q, provider, sc, oc, grade, tag) =
            (v(&self.q), v(&self.provider), v(&self.sharing_class), v(&self.open_class), v(&self.grade), v(&self.tag));
        format!(
            "/catalog{}",
            query_string(&[
                ("q", &q),
                ("provider", &provider),
                ("sharing_class", &sc),
                ("open_class", &oc),
                ("grade", &grade),
                ("tag", &tag),
                ("page", if page == "1" { "" } else { &page }),
            ])
        )
    }
}

fn bad_query(e: QueryRejection) -> Error {
    Error::new(Code::InvalidRequest, format!("bad query string: {}", e.body_text()), "查询参数不合法")
}

/// `GET /catalog`: search and filter the catalog.
pub async fn catalog(
    State(st): State<AppState>,
    user: WebUser,
    form: std::result::Result<Query<CatalogForm>, QueryRejection>,
) -> Response {
    let result = match form {
        Ok(Query(form)) => catalog_page(&st, &user.page, &user.viewer, form).await,
        Err(e) => Err(bad_query(e)),
    };
    respond(&st, &user.page, Some(&user.viewer), result)
}

async fn catalog_page(st: &AppState, page: &PageCtx, v: &Viewer, form: CatalogForm) -> Result<Response> {
    let p = &v.principal;
    let lang = page.lang;
    let q = form.to_query()?;
    let found = st.hub.search_datasets(p, &q, &page.ctx).await?;
    let orgs = st.hub.list_orgs(p, &page.ctx).await?;
    let names = org_names(&orgs);
    let current = form.page();
    let pages = found.total.div_ceil(u64::from(PAGE_SIZE)).max(1) as u32;
    let provider = nonempty(&form.provider);
    let providers: Vec<_> = org_tree(&orgs, lang)
        .into_iter()
        .map(|o| super::view::Choice {
            selected: provider.as_deref() == Some(o.code.as_str()),
            label: format!("{}{}", "　".repeat(o.depth.min(4)), o.name),
            value: o.code,
        })
        .collect();
    let sc = nonempty(&form.sharing_class);
    let oc = nonempty(&form.open_class);
    let gr = nonempty(&form.grade);
    let extra = context! {
        form => context! { q => nonempty(&form.q).unwrap_or_default(), tag => nonempty(&form.tag).unwrap_or_default() },
        providers => providers,
        sharing_classes => choices(SharingClass::ALL, SharingClass::as_str, |c| sharing_label(c, lang), sc.as_deref()),
        open_classes => choices(OpenClass::ALL, OpenClass::as_str, |c| open_label(c, lang), oc.as_deref()),
        grades => choices(Grade::ALL, Grade::as_str, |g| grade_label(g, lang), gr.as_deref()),
        rows => found.items.iter().map(|d| DatasetRow::new(d, &names, lang)).collect::<Vec<_>>(),
        total => found.total,
        page => current,
        pages => pages,
        prev_href => (current > 1).then(|| form.href_for_page(current - 1)),
        next_href => (current < pages).then(|| form.href_for_page(current + 1)),
    };
    render_page(st, page, Some(v), "catalog.html", "catalog", StatusCode::OK, extra)
}

#[derive(Debug, Default, Deserialize)]
pub struct DatasetParams {
    /// A grant just revoked from the consumers section.
    #[serde(default)]
    pub revoked: Option<String>,
}

/// `GET /catalog/{code}`: a dataset's metadata, schema, versions and table columns.
pub async fn dataset(
    State(st): State<AppState>,
    user: WebUser,
    Path(code): Path<String>,
    q: std::result::Result<Query<DatasetParams>, QueryRejection>,
) -> Response {
    let revoked = q.ok().and_then(|Query(q)| q.revoked).and_then(|r| r.parse::<i64>().ok());
    let result = dataset_page(&st, &user.page, &user.viewer, &code, revoked).await;
    respond(&st, &user.page, Some(&user.viewer), result)
}

async fn dataset_page(st: &AppState, page: &PageCtx, v: &Viewer, code: &str, revoked: Option<i64>) -> Result<Response> {
    let p = &v.principal;
    let d = st.hub.get_dataset(p, code, &page.ctx).await?;
    let versions = st.hub.schema_versions(p, code, &page.ctx).await?;
    let columns = st.hub.dataset_columns(p, code, &page.ctx).await?;
    let provider = st.hub.get_org(p, d.provider.as_str(), &page.ctx).await.ok();
    let names: HashMap<String, String> = provider.iter().map(|o| (o.code.to_string(), o.name.clone())).collect();
    let mut versions: Vec<VersionRow> = versions.iter().map(|s| VersionRow::new(s, d.schema_version)).collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.version));
    let delivery = super::data::dataset_section(st, page, v, &d).await?;
    let consumers = super::sharing::consumers_section(st, page, v, &d, revoked).await?;
    let extra = context! {
        d => DatasetDetail::new(&d, &names, page.lang),
        versions => versions,
        columns => columns.iter().map(ColumnRow::from).collect::<Vec<_>>(),
        delivery => delivery,
        consumers => consumers,
    };
    render_page(st, page, Some(v), "dataset.html", "catalog", StatusCode::OK, extra)
}

// ----------------------------------------------------------------- organisations

/// `GET /orgs`: the organisation tree.
pub async fn orgs(State(st): State<AppState>, user: WebUser) -> Response {
    let result = async {
        let orgs = st.hub.list_orgs(&user.viewer.principal, &user.page.ctx).await?;
        let extra = context! { orgs => org_tree(&orgs, user.page.lang) };
        render_page(&st, &user.page, Some(&user.viewer), "orgs.html", "orgs", StatusCode::OK, extra)
    }
    .await;
    respond(&st, &user.page, Some(&user.viewer), result)
}

/// `GET /orgs/{code}`: one organisation, its place in the tree and its datasets.
pub async fn org(State(st): State<AppState>, user: WebUser, Path(code): Path<String>) -> Response {
    let result = org_page(&st, &user.page, &user.viewer, &code).await;
    respond(&st, &user.page, Some(&user.viewer), result)
}

async fn org_page(st: &AppState, page: &PageCtx, v: &Viewer, code: &str) -> Result<Response> {
    let p = &v.principal;
    let lang = page.lang;
    let org = st.hub.get_org(p, code, &page.ctx).await?;
    let all = st.hub.list_orgs(p, &page.ctx).await?;
    let by_code: HashMap<&str, &Org> = all.iter().map(|o| (o.code.as_str(), o)).collect();
    let mut ancestors = Vec::new();
    let mut cursor = org.parent.as_ref().and_then(|c| by_code.get(c.as_str()));
    while let Some(a) = cursor {
        if ancestors.len() >= 16 || a.code == org.code {
            break;
        }
        ancestors.push(OrgRow::new(a, 0, lang));
        cursor = a.parent.as_ref().and_then(|c| by_code.get(c.as_str()));
    }
    ancestors.reverse();
    let parent = ancestors.last().cloned();
    let children: Vec<OrgRow> = org_tree(&all, lang)
        .into_iter()
        .filter(|o| o.parent.as_deref() == Some(org.code.as_str()) && o.code != org.code.as_str())
        .collect();
    // Only government staff may read the catalog; others see the organisation alone.
    let (datasets, dataset_total) = if p.role.is_government() {
        let q = DatasetQuery { provider: Some(org.code.clone()), limit: 500, ..Default::default() };
        let found = st.hub.search_datasets(p, &q, &page.ctx).await?;
        let names = org_names(&all);
        (Some(found.items.iter().map(|d| DatasetRow::new(d, &names, lang)).collect::<Vec<_>>()), found.total)
    } else {
        (None, 0)
    };
    let extra = context! {
        org => OrgRow::new(&org, 0, lang),
        ancestors => ancestors,
        parent => parent,
        children => children,
        datasets => datasets,
        dataset_total => dataset_total,
    };
    render_page(st, page, Some(v), "org.html", "orgs", StatusCode::OK, extra)
}

// ------------------------------------------------------------------------ audit

#[derive(Debug, Default, Deserialize)]
pub struct AuditParams {
    /// An action (prefix), e.g. `share.read`.
    #[serde(default)]
    pub action: Option<String>,
    /// An exact target, e.g. a dataset code.
    #[serde(default)]
    pub target: Option<String>,
}

/// `GET /audit`: the newest 100 audit events (platform administrators), optionally
/// filtered by `?action=` and `?target=`. `?action=share.read&target=<dataset>` is
/// also the provider's "who read our data" (its data officers and approvers).
pub async fn audit(
    State(st): State<AppState>,
    user: WebUser,
    q: std::result::Result<Query<AuditParams>, QueryRejection>,
) -> Response {
    let Query(q) = q.unwrap_or_default();
    let result = async {
        let p = &user.viewer.principal;
        let action = nonempty(&q.action);
        let target = nonempty(&q.target);
        let query = AuditQuery { action_prefix: action.clone(), limit: 100, ..Default::default() };
        let (events, chain) = match &target {
            // A provider's "who read our data" (or any of its dataset's entries).
            Some(t) if p.role != Role::PlatformAdmin => {
                (st.hub.dataset_audit(p, t, &query, &user.page.ctx).await?, None)
            }
            _ => {
                let q = AuditQuery { target: target.clone(), ..query };
                let (events, status) = st.hub.audit_page(p, &q, &user.page.ctx).await?;
                (events, Some(status))
            }
        };
        let sealed_to = chain.as_ref().and_then(|s| s.latest_checkpoint.as_ref()).map(|c| c.seq).unwrap_or(0);
        let rows: Vec<AuditRow> = events
            .iter()
            .map(|e| AuditRow { sealed: e.seq <= sealed_to, ..AuditRow::new(e, user.page.lang) })
            .collect();
        let chain = chain.map(|status| {
            context! {
                head_seq => status.head.as_ref().map(|h| h.seq).unwrap_or(0),
                head_hash => status.head.as_ref().map(|h| h.hash.clone()).unwrap_or_default(),
                checkpoint_seq => sealed_to,
                checkpoint_at => status.latest_checkpoint.as_ref().map(|c| super::view::local_time(c.at)),
                key => status.key_fingerprint.as_deref().map(|k| k.chars().take(16).collect::<String>()),
            }
        });
        let nav = if p.role == Role::PlatformAdmin { "audit" } else { "catalog" };
        let extra = context! {
            events => rows,
            chain => chain,
            filter_action => action.unwrap_or_default(),
            filter_target => target.unwrap_or_default(),
        };
        render_page(&st, &user.page, Some(&user.viewer), "audit.html", nav, StatusCode::OK, extra)
    }
    .await;
    respond(&st, &user.page, Some(&user.viewer), result)
}
