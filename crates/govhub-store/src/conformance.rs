//! The conformance suite every [`Store`] implementation must pass. It is test-support
//! code: scenarios assert (and panic) rather than return errors.
//!
//! Each scenario uses its own organisation and dataset codes, so [`run_all`] can run on
//! one fresh store; each can also run alone on a fresh store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, NaiveDate, Utc};
use govhub_core::cells::Cell;
use govhub_core::delivery::{
    content_hash, DeliveryFailure, DeliveryMode, DeliveryReport, DeliveryStatus, Problem, QuarantinedRow, ValidRow,
};
use govhub_core::model::*;
use govhub_core::names::{DatasetCode, OrgCode, Username};
use govhub_core::schema::{FieldType, TableSchema};
use govhub_core::standards::{AdminCode, Uscc};
use govhub_core::store::{
    ApplyOutcome, Backend, DeliveryBatch, DeliveryQuery, DeliveryStore, NewDelivery, SchemaEvolution, Store, StoreError,
};
use serde_json::{json, Value};
use std::sync::Arc;

/// Run every scenario, in order, on one store.
pub async fn run_all(store: Arc<dyn Store>) {
    let s = store.as_ref();
    basics(s).await;
    meta(s).await;
    orgs(s).await;
    users(s).await;
    sessions(s).await;
    dataset_round_trip_and_typed_table(s).await;
    dataset_conflicts(s).await;
    failed_create_leaves_nothing(s).await;
    search(s).await;
    update_metadata(s).await;
    evolve_schema(s).await;
    audit(s).await;
    concurrent_use(store.clone()).await;
    run_deliveries(s).await;
    crate::conformance_audit::run_all(store.clone()).await;
    crate::conformance_webhooks::run_all(store.clone()).await;
    crate::conformance_licence::run_all(s).await;
}

// ------------------------------------------------------------------ helpers

/// A timestamp with microsecond precision (what both backends keep).
pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn oc(s: &str) -> OrgCode {
    OrgCode::parse(s).unwrap()
}

fn dc(s: &str) -> DatasetCode {
    DatasetCode::parse(s).unwrap()
}

/// An organisation for tests: a city, or a department under `parent`.
pub fn org(code: &str, parent: Option<&str>) -> Org {
    Org {
        code: oc(code),
        name: format!("{code} 机构"),
        kind: if parent.is_some() { OrgKind::Department } else { OrgKind::City },
        parent: parent.map(oc),
        admin_code: None,
        uscc: None,
        created_at: at("2024-01-02T03:04:05.123456Z"),
    }
}

async fn ensure_org<S: Store + ?Sized>(store: &S, code: &str) {
    if store.get_org(&oc(code)).await.unwrap().is_none() {
        store.insert_org(&org(code, None)).await.unwrap();
    }
}

fn schema(v: Value) -> TableSchema {
    TableSchema::parse(&v).unwrap()
}

fn simple_schema() -> TableSchema {
    schema(json!({"fields": [{"name": "id", "type": "integer"}, {"name": "mc", "title": "名称"}], "primaryKey": "id"}))
}

/// A dataset with every metadata field filled in.
pub fn dataset(code: &str, provider: &str, schema: TableSchema) -> Dataset {
    let code = dc(code);
    Dataset {
        table_name: Dataset::table_name_for(&code, 1),
        name: format!("{} 数据集", code.as_str()),
        provider: oc(provider),
        summary: format!("Summary of {}", code.as_str()),
        category: Some("综合政务".into()),
        sharing_class: SharingClass::Conditional,
        sharing_condition: Some("仅限政务用途".into()),
        open_class: OpenClass::NotOpen,
        grade: Grade::Important,
        update_cycle: UpdateCycle::Daily,
        publish_date: Some(NaiveDate::from_ymd_opt(2024, 3, 1).unwrap()),
        tags: vec!["测试".into()],
        schema,
        schema_version: 1,
        created_at: at("2024-03-01T08:00:00.000001Z"),
        updated_at: at("2024-03-01T08:00:00.000001Z"),
        code,
    }
}

fn codes(page: &Page<Dataset>) -> Vec<&str> {
    page.items.iter().map(|d| d.code.as_str()).collect()
}

// ------------------------------------------------------------------ scenarios

/// `backend`, `ping`, `migrations`.
pub async fn basics(store: &dyn Store) {
    assert!(matches!(store.backend(), Backend::Sqlite | Backend::Postgres));
    store.ping().await.unwrap();
    let m = store.migrations().await.unwrap();
    assert!(!m.is_empty(), "no migrations recorded");
    assert_eq!(m[0], 1);
    assert!(m.windows(2).all(|w| w[0] < w[1]), "migrations not oldest first: {m:?}");
}

/// `get_meta`, `set_meta` (insert and overwrite).
pub async fn meta(store: &dyn Store) {
    assert_eq!(store.get_meta("conf.meta.key").await.unwrap(), None);
    store.set_meta("conf.meta.key", "一").await.unwrap();
    assert_eq!(store.get_meta("conf.meta.key").await.unwrap().as_deref(), Some("一"));
    store.set_meta("conf.meta.key", "two").await.unwrap();
    assert_eq!(store.get_meta("conf.meta.key").await.unwrap().as_deref(), Some("two"));
    store.set_meta("conf.meta.other", "").await.unwrap();
    assert_eq!(store.get_meta("conf.meta.other").await.unwrap().as_deref(), Some(""));
    assert_eq!(store.get_meta("conf.meta.key").await.unwrap().as_deref(), Some("two"));
}

/// `insert_org`, `get_org`, `list_orgs`, conflicts.
pub async fn orgs(store: &dyn Store) {
    let mut city = org("conf-orgs-city", None);
    city.name = "常州市人民政府".into();
    city.admin_code = Some(AdminCode::parse("320400").unwrap());
    city.uscc = Some(Uscc::compose('1', '1', "320400", "01417860").expect("valid USCC"));
    // A pilot-era code whose check character fails is legal and must round-trip.
    let mut dept = org("conf-orgs-dept", Some("conf-orgs-city"));
    dept.uscc = Some(Uscc::parse_lenient("11320400014178600X").unwrap().value);
    dept.kind = OrgKind::Department;
    let mut dist = org("conf-orgs-Dist_2", Some("conf-orgs-city"));
    dist.kind = OrgKind::District;

    store.insert_org(&city).await.unwrap();
    store.insert_org(&dept).await.unwrap();
    store.insert_org(&dist).await.unwrap();

    assert_eq!(store.get_org(&city.code).await.unwrap().as_ref(), Some(&city));
    assert_eq!(store.get_org(&dept.code).await.unwrap().as_ref(), Some(&dept));
    assert_eq!(store.get_org(&oc("conf-orgs-missing")).await.unwrap(), None);

    let listed: Vec<Org> =
        store.list_orgs().await.unwrap().into_iter().filter(|o| o.code.as_str().starts_with("conf-orgs-")).collect();
    // Ordered by code, bytewise: upper case before lower case.
    assert_eq!(listed, vec![dist.clone(), city.clone(), dept.clone()]);
    let all = store.list_orgs().await.unwrap();
    assert!(all.windows(2).all(|w| w[0].code.as_str() < w[1].code.as_str()), "list_orgs not ordered by code");

    let mut again = org("conf-orgs-city", None);
    again.name = "另一个".into();
    match store.insert_org(&again).await {
        Err(StoreError::Conflict { what: "org" }) => {}
        other => panic!("duplicate org: expected Conflict{{org}}, got {other:?}"),
    }
    assert_eq!(store.get_org(&city.code).await.unwrap().unwrap().name, "常州市人民政府");
}

/// `insert_user`, `get_user`, `get_user_by_username`, `list_users`, `set_user_password`.
pub async fn users(store: &dyn Store) {
    ensure_org(store, "conf-users").await;
    ensure_org(store, "conf-users-other").await;
    let rec = |name: &str, role: Role, org: Option<&str>| NewUserRecord {
        username: Username::parse(name).unwrap(),
        display_name: format!("用户 {name}"),
        role,
        org: org.map(oc),
        subject_id: None,
        password_hash: format!("$argon2id$hash-of-{name}"),
        // Nanoseconds: the store keeps microseconds, and says so in what it returns.
        created_at: at("2024-02-03T04:05:06.123456789Z"),
    };
    let bob = store.insert_user(&rec("conf.bob", Role::Approver, Some("conf-users"))).await.unwrap();
    let alice = store.insert_user(&rec("conf.alice", Role::DataOfficer, Some("conf-users"))).await.unwrap();
    let mut citizen_rec = rec("conf.citizen", Role::Citizen, None);
    citizen_rec.subject_id = Some("320402199001011234".into());
    let citizen = store.insert_user(&citizen_rec).await.unwrap();
    let other = store.insert_user(&rec("conf.other", Role::AppDeveloper, Some("conf-users-other"))).await.unwrap();

    assert!(alice.id > 0 && bob.id > 0 && alice.id != bob.id);
    assert_eq!(alice.username.as_str(), "conf.alice");
    assert_eq!(alice.role, Role::DataOfficer);
    assert_eq!(alice.org, Some(oc("conf-users")));
    assert!(!alice.disabled);
    assert_eq!(alice.created_at, at("2024-02-03T04:05:06.123456Z"));
    assert_eq!(citizen.subject_id.as_deref(), Some("320402199001011234"));

    for u in [&alice, &bob, &citizen, &other] {
        assert_eq!(store.get_user(u.id).await.unwrap().as_ref(), Some(u));
        assert_eq!(store.get_user_by_username(&u.username).await.unwrap().as_ref(), Some(u));
    }
    assert_eq!(store.get_user(i64::MAX).await.unwrap(), None);
    assert_eq!(store.get_user_by_username(&Username::parse("conf.nobody").unwrap()).await.unwrap(), None);

    let in_org = store.list_users(Some(&oc("conf-users"))).await.unwrap();
    assert_eq!(in_org, vec![alice.clone(), bob.clone()]);
    let all: Vec<User> = store
        .list_users(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|u| u.username.as_str().starts_with("conf."))
        .collect();
    assert_eq!(all, vec![alice.clone(), bob.clone(), citizen.clone(), other.clone()]);
    assert!(store.list_users(Some(&oc("conf-users-none"))).await.unwrap().is_empty());

    match store.insert_user(&rec("CONF.Alice", Role::Citizen, None)).await {
        Err(StoreError::Conflict { what: "user" }) => {}
        other => panic!("duplicate username: expected Conflict{{user}}, got {other:?}"),
    }

    store.set_user_password(alice.id, "$argon2id$new").await.unwrap();
    let reread = store.get_user(alice.id).await.unwrap().unwrap();
    assert_eq!(reread.password_hash, "$argon2id$new");
    assert_eq!(store.get_user(bob.id).await.unwrap().unwrap().password_hash, bob.password_hash);
    match store.set_user_password(i64::MAX, "x").await {
        Err(StoreError::NotFound { what: "user" }) => {}
        other => panic!("password of unknown user: expected NotFound{{user}}, got {other:?}"),
    }
}

/// `insert_session`, `get_session`, `delete_session`, `delete_expired_sessions`.
pub async fn sessions(store: &dyn Store) {
    ensure_org(store, "conf-sessions").await;
    let user = store
        .insert_user(&NewUserRecord {
            username: Username::parse("conf.session-user").unwrap(),
            display_name: "会话用户".into(),
            role: Role::DataOfficer,
            org: Some(oc("conf-sessions")),
            subject_id: None,
            password_hash: "h".into(),
            created_at: at("2024-01-01T00:00:00Z"),
        })
        .await
        .unwrap();
    let now = at("2024-06-01T12:00:00.500000Z");
    let session = |hash: &str, kind: SessionKind, expires: DateTime<Utc>| Session {
        token_hash: hash.into(),
        user_id: user.id,
        kind,
        csrf_token: format!("csrf-{hash}"),
        created_at: at("2024-06-01T11:00:00.250000Z"),
        expires_at: expires,
    };
    let web = session("conf-web", SessionKind::Web, now + Duration::hours(8));
    let api = session("conf-api", SessionKind::Api, now + Duration::days(90));
    let old1 = session("conf-old-1", SessionKind::Web, now - Duration::seconds(1));
    let old2 = session("conf-old-2", SessionKind::Api, now - Duration::days(30));
    let edge = session("conf-edge", SessionKind::Web, now);
    for s in [&web, &api, &old1, &old2, &edge] {
        store.insert_session(s).await.unwrap();
    }
    assert_eq!(store.get_session("conf-web").await.unwrap().as_ref(), Some(&web));
    assert_eq!(store.get_session("conf-api").await.unwrap().as_ref(), Some(&api));
    assert_eq!(store.get_session("conf-none").await.unwrap(), None);

    match store.insert_session(&web).await {
        Err(StoreError::Conflict { what: "session" }) => {}
        other => panic!("duplicate token hash: expected Conflict{{session}}, got {other:?}"),
    }

    store.delete_session("conf-web").await.unwrap();
    assert_eq!(store.get_session("conf-web").await.unwrap(), None);
    store.delete_session("conf-web").await.unwrap(); // idempotent

    // Expired strictly before `now`: the session expiring exactly at `now` stays.
    assert_eq!(store.delete_expired_sessions(now).await.unwrap(), 2);
    assert_eq!(store.get_session("conf-old-1").await.unwrap(), None);
    assert_eq!(store.get_session("conf-old-2").await.unwrap(), None);
    assert_eq!(store.get_session("conf-edge").await.unwrap().as_ref(), Some(&edge));
    assert_eq!(store.get_session("conf-api").await.unwrap().as_ref(), Some(&api));
    assert_eq!(store.delete_expired_sessions(now).await.unwrap(), 0);
}

/// Every field type, constraints and extensions, for the typed-table checks.
pub fn typed_schema() -> TableSchema {
    schema(json!({
        "fields": [
            {"name": "sfzh", "title": "公民身份号码", "type": "string", "format": "id-number", "sensitive": true},
            {"name": "xm", "title": "姓名", "type": "string", "constraints": {"required": true, "maxLength": 50}},
            {"name": "nl", "type": "integer", "constraints": {"minimum": 0, "maximum": 150}},
            {"name": "sg", "type": "number", "bareNumber": false},
            {"name": "hy", "type": "boolean", "trueValues": ["是"], "falseValues": ["否"]},
            {"name": "csrq", "type": "date", "constraints": {"minimum": "1900-01-01"}},
            {"name": "djsj", "type": "datetime"},
            {"name": "kssj", "type": "time"},
            {"name": "nf", "type": "year"},
            {"name": "kz", "type": "object"},
            {"name": "lb", "type": "array"},
            {"name": "dw", "type": "geojson"},
            {"name": "qd", "type": "list", "delimiter": ";"},
            {"name": "ny", "type": "yearmonth"},
            {"name": "sc", "type": "duration"},
            {"name": "zb", "type": "geopoint"},
            {"name": "qt", "type": "any"},
            {"name": "sjhm", "type": "string", "format": "mobile", "constraints": {"unique": true}},
            {"name": "xb", "type": "string", "constraints": {"enum": ["男", "女"]}},
            {"name": "hjdz_qh", "type": "string", "format": "admin-code"}
        ],
        "primaryKey": ["sfzh"],
        "uniqueKeys": [["xm", "csrq"]],
        "foreignKeys": [{"fields": "hjdz_qh", "reference": {"resource": "admin-divisions", "fields": "code"}}],
        "missingValues": ["", "NA"]
    }))
}

/// The column type a backend must report for each field type.
pub fn expected_type(backend: Backend, t: FieldType) -> &'static str {
    use FieldType::*;
    match (backend, t) {
        (Backend::Sqlite, Integer | Year | Boolean) => "INTEGER",
        (Backend::Sqlite, Number) => "REAL",
        (Backend::Sqlite, _) => "TEXT",
        (Backend::Postgres, String) => "TEXT",
        (Backend::Postgres, Integer) => "BIGINT",
        (Backend::Postgres, Number) => "NUMERIC",
        (Backend::Postgres, Boolean) => "BOOLEAN",
        (Backend::Postgres, Date) => "DATE",
        (Backend::Postgres, Datetime) => "TIMESTAMPTZ",
        (Backend::Postgres, Time) => "TIME",
        (Backend::Postgres, Year) => "INTEGER",
        (Backend::Postgres, Object | Array | Geojson | List) => "JSONB",
        (Backend::Postgres, Yearmonth | Duration | Geopoint | Any) => "TEXT",
    }
}

/// The system columns a backend must add: `(name, type, not null)`.
pub fn expected_system_columns(backend: Backend) -> Vec<ColumnInfo> {
    let c = |name: &str, t: &str, nn: bool| ColumnInfo { name: name.into(), sql_type: t.into(), not_null: nn };
    match backend {
        Backend::Sqlite => vec![
            c("_version", "INTEGER", true),
            c("_hash", "TEXT", false),
            c("_delivery_id", "INTEGER", false),
            c("_updated_at", "TEXT", false),
            c("_deleted", "INTEGER", true),
        ],
        Backend::Postgres => vec![
            c("_version", "BIGINT", true),
            c("_hash", "TEXT", false),
            c("_delivery_id", "BIGINT", false),
            c("_updated_at", "TIMESTAMPTZ", false),
            c("_deleted", "BOOLEAN", true),
        ],
    }
}

/// `create_dataset`, `get_dataset`, `schema_versions`, `table_columns`.
pub async fn dataset_round_trip_and_typed_table(store: &dyn Store) {
    ensure_org(store, "conf-ds").await;
    let backend = store.backend();
    let mut d = dataset("CONF-TYPED", "conf-ds", typed_schema());
    // (No "人口" here: the search scenario counts the datasets that mention it.)
    d.name = "户籍基本信息（类型齐全）".into();
    d.summary = "Every field type, with \"quotes\", 'apostrophes' and 100%_literal text".into();
    d.tags = vec!["户籍档案".into(), "Typed".into(), "测试".into()];
    d.update_cycle = UpdateCycle::Realtime;
    store.create_dataset(&d).await.unwrap();

    assert_eq!(store.get_dataset(&d.code).await.unwrap().as_ref(), Some(&d), "dataset does not round-trip");
    assert_eq!(store.get_dataset(&dc("CONF-NONE")).await.unwrap(), None);
    // Codes are exact: another spelling of the same stem is not the same dataset.
    assert_eq!(store.get_dataset(&dc("conf_typed")).await.unwrap(), None);

    let versions = store.schema_versions(&d.code).await.unwrap();
    assert_eq!(
        versions,
        vec![SchemaVersion {
            version: 1,
            schema: d.schema.clone(),
            table_name: "ds_conf_typed_v1".into(),
            created_at: d.created_at
        }]
    );
    assert!(store.schema_versions(&dc("CONF-NONE")).await.unwrap().is_empty());

    let cols = store.table_columns("ds_conf_typed_v1").await.unwrap();
    let mut expected: Vec<ColumnInfo> = d
        .schema
        .fields
        .iter()
        .map(|f| ColumnInfo {
            name: f.name.clone(),
            sql_type: expected_type(backend, f.field_type).into(),
            not_null: f.name == "sfzh" || f.name == "xm",
        })
        .collect();
    expected.extend(expected_system_columns(backend));
    assert_eq!(cols, expected, "typed table columns on {}", backend.as_str());

    // Without a primary key the table gets a surrogate key.
    let mut no_pk = dataset("CONF-NOPK", "conf-ds", schema(json!({"fields": [{"name": "a", "type": "date"}]})));
    no_pk.publish_date = None;
    no_pk.category = None;
    no_pk.sharing_condition = None;
    no_pk.tags = vec![];
    store.create_dataset(&no_pk).await.unwrap();
    assert_eq!(store.get_dataset(&no_pk.code).await.unwrap().as_ref(), Some(&no_pk));
    let cols = store.table_columns("ds_conf_nopk_v1").await.unwrap();
    let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "_row_id", "_version", "_hash", "_delivery_id", "_updated_at", "_deleted"]);
    assert_eq!(cols[0].sql_type, expected_type(backend, FieldType::Date));
    assert!(!cols[0].not_null);
    assert!(cols[1].not_null, "_row_id must be NOT NULL");

    // A missing table has no columns (the UI says so rather than failing).
    assert!(store.table_columns("ds_conf_no_such_table_v1").await.unwrap().is_empty());
}

/// Same code, or same table stem, is `Conflict{dataset}` and changes nothing.
pub async fn dataset_conflicts(store: &dyn Store) {
    ensure_org(store, "conf-conflict").await;
    let first = dataset("CONF-DUP-X", "conf-conflict", simple_schema());
    store.create_dataset(&first).await.unwrap();

    let mut same_code = dataset("CONF-DUP-X", "conf-conflict", simple_schema());
    same_code.name = "second".into();
    same_code.table_name = "ds_conf_dup_x_v9".into();
    for (what, d) in [("same code", same_code), ("same stem", dataset("conf_dup_x", "conf-conflict", simple_schema()))]
    {
        match store.create_dataset(&d).await {
            Err(StoreError::Conflict { what: "dataset" }) => {}
            other => panic!("{what}: expected Conflict{{dataset}}, got {other:?}"),
        }
    }
    assert_eq!(store.get_dataset(&first.code).await.unwrap().as_ref(), Some(&first));
    assert_eq!(store.get_dataset(&dc("conf_dup_x")).await.unwrap(), None);
    assert_eq!(store.schema_versions(&first.code).await.unwrap().len(), 1);
    assert!(store.table_columns("ds_conf_dup_x_v9").await.unwrap().is_empty());
}

/// A create whose DDL fails leaves no catalog row, tags, version or table.
pub async fn failed_create_leaves_nothing(store: &dyn Store) {
    ensure_org(store, "conf-fail").await;
    let existing = dataset("CONF-FAIL-A", "conf-fail", simple_schema());
    store.create_dataset(&existing).await.unwrap();

    // Catalog inserts succeed, then CREATE TABLE fails: the table exists.
    let mut doomed = dataset("CONF-FAIL-B", "conf-fail", typed_schema());
    doomed.tags = vec!["doomed-tag".into()];
    doomed.table_name = existing.table_name.clone();
    let err = store.create_dataset(&doomed).await.expect_err("creating over an existing table must fail");
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert_eq!(store.get_dataset(&doomed.code).await.unwrap(), None);
    assert!(store.schema_versions(&doomed.code).await.unwrap().is_empty());
    let q = DatasetQuery { tag: Some("doomed-tag".into()), limit: 10, ..Default::default() };
    assert_eq!(store.search_datasets(&q).await.unwrap().total, 0);
    // The existing table is untouched.
    let names: Vec<String> =
        store.table_columns(&existing.table_name).await.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names[..2], ["id".to_string(), "mc".to_string()]);

    // Nothing was left behind: the same dataset, with its own table, now goes in.
    let fixed = dataset("CONF-FAIL-B", "conf-fail", typed_schema());
    store.create_dataset(&fixed).await.unwrap();
    assert_eq!(store.get_dataset(&fixed.code).await.unwrap().as_ref(), Some(&fixed));

    // A provider that does not exist fails the same way.
    let orphan = dataset("CONF-FAIL-C", "conf-fail-no-such-org", simple_schema());
    assert!(store.create_dataset(&orphan).await.is_err());
    assert_eq!(store.get_dataset(&orphan.code).await.unwrap(), None);
    assert!(store.table_columns("ds_conf_fail_c_v1").await.unwrap().is_empty());

    // Table names whose history table PostgreSQL would truncate (over 63 bytes) are
    // refused on both backends.
    let mut long = dataset(&format!("CONF-{}", "L".repeat(45)), "conf-fail", simple_schema());
    long.table_name = format!("ds_{}_v1", "l".repeat(53));
    assert!(long.table_name.len() + "_hist".len() > 63);
    assert!(store.create_dataset(&long).await.is_err());
    assert_eq!(store.get_dataset(&long.code).await.unwrap(), None);
}

/// `search_datasets`: text (incl. Chinese, case-insensitive, `%`/`_` literal), every
/// filter, exact tags, ordering, pagination and totals.
pub async fn search(store: &dyn Store) {
    ensure_org(store, "conf-search-a").await;
    ensure_org(store, "conf-search-b").await;
    let mk = |code: &str, provider: &str, name: &str, summary: &str, tags: &[&str]| {
        let mut d = dataset(code, provider, simple_schema());
        d.name = name.into();
        d.summary = summary.into();
        d.tags = tags.iter().map(|t| t.to_string()).collect();
        d
    };
    let mut hjrk = mk("CONF-S-HJRK", "conf-search-a", "户籍人口信息", "全市户籍人口基本信息", &["人口", "户籍"]);
    hjrk.sharing_class = SharingClass::Conditional;
    hjrk.open_class = OpenClass::NotOpen;
    hjrk.grade = Grade::Important;
    let mut qydj =
        mk("CONF-S-QYDJ", "conf-search-b", "企业登记信息", "Enterprise registration, 100% coverage", &["企业", "法人"]);
    qydj.sharing_class = SharingClass::Unconditional;
    qydj.open_class = OpenClass::Unconditional;
    qydj.grade = Grade::General;
    let mut ldrk =
        mk("CONF-S-LDRK", "conf-search-b", "流动人口 Floating Population", "居住证信息", &["人口", "Migrants"]);
    ldrk.sharing_class = SharingClass::Conditional;
    ldrk.open_class = OpenClass::Conditional;
    ldrk.grade = Grade::General;
    let mut under = mk("CONF-S-XX_Y", "conf-search-a", "下划线", "plain", &["其他"]);
    under.sharing_class = SharingClass::NotShared;
    under.grade = Grade::Core;
    // Inserted out of order: results are ordered by code.
    for d in [&ldrk, &under, &qydj, &hjrk] {
        store.create_dataset(d).await.unwrap();
    }

    let q = |f: &dyn Fn(&mut DatasetQuery)| {
        let mut q = DatasetQuery { limit: 50, ..Default::default() };
        f(&mut q);
        q
    };
    let run = |query: DatasetQuery| async move { store.search_datasets(&query).await.unwrap() };

    let p = run(q(&|q| q.text = Some("人口".into()))).await;
    assert_eq!(codes(&p), ["CONF-S-HJRK", "CONF-S-LDRK"]);
    assert_eq!(p.total, 2);
    assert_eq!(p.items[0], hjrk, "search results carry full datasets");

    let p = run(q(&|q| q.text = Some("FLOATING population".into()))).await;
    assert_eq!(codes(&p), ["CONF-S-LDRK"]);
    let p = run(q(&|q| q.text = Some("migrants".into()))).await; // in a tag only
    assert_eq!(codes(&p), ["CONF-S-LDRK"]);
    let p = run(q(&|q| q.text = Some("conf-s-qydj".into()))).await; // the code, other case
    assert_eq!(codes(&p), ["CONF-S-QYDJ"]);
    let p = run(q(&|q| q.text = Some("enterprise REGISTRATION".into()))).await; // summary
    assert_eq!(codes(&p), ["CONF-S-QYDJ"]);

    // `%` and `_` are literal characters, not wildcards; input is never SQL.
    let p = run(q(&|q| {
        q.text = Some("%".into());
        q.provider = Some(oc("conf-search-b"));
    }))
    .await;
    assert_eq!(codes(&p), ["CONF-S-QYDJ"]);
    let p = run(q(&|q| {
        q.text = Some("_".into());
        q.provider = Some(oc("conf-search-a"));
    }))
    .await;
    assert_eq!(codes(&p), ["CONF-S-XX_Y"]);
    assert_eq!(run(q(&|q| q.text = Some("x%y".into()))).await.total, 0);
    assert_eq!(run(q(&|q| q.text = Some("' OR 1=1 --".into()))).await.total, 0);
    assert_eq!(run(q(&|q| q.text = Some("人口\u{1f}户籍".into()))).await.total, 0);

    let scoped = |f: &dyn Fn(&mut DatasetQuery)| {
        q(&|q| {
            q.text = Some("conf-s-".into());
            f(q)
        })
    };
    assert_eq!(codes(&run(scoped(&|_| {})).await), ["CONF-S-HJRK", "CONF-S-LDRK", "CONF-S-QYDJ", "CONF-S-XX_Y"]);
    // Blank text is no filter.
    let p = run(q(&|q| {
        q.text = Some("  ".into());
        q.provider = Some(oc("conf-search-a"));
    }))
    .await;
    assert_eq!(codes(&p), ["CONF-S-HJRK", "CONF-S-XX_Y"]);
    let p = run(q(&|q| q.provider = Some(oc("conf-search-b")))).await;
    assert_eq!(codes(&p), ["CONF-S-LDRK", "CONF-S-QYDJ"]);
    assert_eq!(p.total, 2);
    let p = run(scoped(&|q| q.sharing_class = Some(SharingClass::Conditional))).await;
    assert_eq!(codes(&p), ["CONF-S-HJRK", "CONF-S-LDRK"]);
    let p = run(scoped(&|q| q.sharing_class = Some(SharingClass::NotShared))).await;
    assert_eq!(codes(&p), ["CONF-S-XX_Y"]);
    let p = run(scoped(&|q| q.open_class = Some(OpenClass::Unconditional))).await;
    assert_eq!(codes(&p), ["CONF-S-QYDJ"]);
    let p = run(scoped(&|q| q.grade = Some(Grade::General))).await;
    assert_eq!(codes(&p), ["CONF-S-LDRK", "CONF-S-QYDJ"]);
    let p = run(scoped(&|q| q.grade = Some(Grade::Core))).await;
    assert_eq!(codes(&p), ["CONF-S-XX_Y"]);

    // Tags match exactly.
    let p = run(q(&|q| q.tag = Some("人口".into()))).await;
    assert_eq!(codes(&p), ["CONF-S-HJRK", "CONF-S-LDRK"]);
    assert_eq!(run(q(&|q| q.tag = Some("人".into()))).await.total, 0);
    assert_eq!(run(q(&|q| q.tag = Some("migrants".into()))).await.total, 0);
    let p = run(q(&|q| {
        q.tag = Some("人口".into());
        q.provider = Some(oc("conf-search-b"));
    }))
    .await;
    assert_eq!(codes(&p), ["CONF-S-LDRK"]);
    let p = run(q(&|q| {
        q.tag = Some("人口".into());
        q.text = Some("户籍".into());
        q.grade = Some(Grade::Important);
        q.sharing_class = Some(SharingClass::Conditional);
        q.open_class = Some(OpenClass::NotOpen);
        q.provider = Some(oc("conf-search-a"));
    }))
    .await;
    assert_eq!(codes(&p), ["CONF-S-HJRK"]);

    // Pagination: total counts before paging.
    let page = |limit: u32, offset: u32| {
        scoped(&move |q| {
            q.limit = limit;
            q.offset = offset;
        })
    };
    let p = run(page(2, 0)).await;
    assert_eq!((codes(&p), p.total), (vec!["CONF-S-HJRK", "CONF-S-LDRK"], 4));
    let p = run(page(2, 2)).await;
    assert_eq!((codes(&p), p.total), (vec!["CONF-S-QYDJ", "CONF-S-XX_Y"], 4));
    let p = run(page(3, 3)).await;
    assert_eq!((codes(&p), p.total), (vec!["CONF-S-XX_Y"], 4));
    let p = run(page(2, 10)).await;
    assert_eq!((p.items.len(), p.total), (0, 4));
    let p = run(page(1, 1)).await;
    assert_eq!((codes(&p), p.total), (vec!["CONF-S-LDRK"], 4));
    // Limit 0 means the default page size, not "nothing".
    assert_eq!(run(page(0, 0)).await.items.len(), 4);

    // Every result overall is ordered by code.
    let all = store.search_datasets(&DatasetQuery { limit: 500, ..Default::default() }).await.unwrap();
    assert!(all.items.windows(2).all(|w| w[0].code.as_str() < w[1].code.as_str()));
    assert!(all.total >= 4);
}

/// `update_dataset_metadata` replaces the metadata, not the schema.
pub async fn update_metadata(store: &dyn Store) {
    ensure_org(store, "conf-upd").await;
    ensure_org(store, "conf-upd-new").await;
    let original = dataset("CONF-UPD", "conf-upd", simple_schema());
    store.create_dataset(&original).await.unwrap();

    let mut changed = original.clone();
    changed.name = "更新后的名称".into();
    changed.provider = oc("conf-upd-new");
    changed.summary = "新的摘要".into();
    changed.category = None;
    changed.sharing_class = SharingClass::Unconditional;
    changed.sharing_condition = None;
    changed.open_class = OpenClass::Conditional;
    changed.grade = Grade::Core;
    changed.update_cycle = UpdateCycle::Yearly;
    changed.publish_date = None;
    changed.tags = vec!["新标签".into(), "第二".into()];
    changed.updated_at = at("2024-09-09T09:09:09.090909Z");
    // Schema fields in the argument are ignored.
    let mut attempted = changed.clone();
    attempted.schema = typed_schema();
    attempted.schema_version = 7;
    attempted.table_name = "ds_conf_upd_v7".into();
    attempted.created_at = at("2030-01-01T00:00:00Z");
    store.update_dataset_metadata(&attempted).await.unwrap();

    assert_eq!(store.get_dataset(&original.code).await.unwrap().as_ref(), Some(&changed));
    assert_eq!(store.schema_versions(&original.code).await.unwrap().len(), 1);

    let tagged = |t: &str| DatasetQuery { tag: Some(t.into()), limit: 10, ..Default::default() };
    assert_eq!(
        store.search_datasets(&tagged("测试")).await.unwrap().items.iter().filter(|d| d.code == original.code).count(),
        0
    );
    assert_eq!(codes(&store.search_datasets(&tagged("新标签")).await.unwrap()), ["CONF-UPD"]);
    let text = DatasetQuery { text: Some("更新后".into()), limit: 10, ..Default::default() };
    assert_eq!(codes(&store.search_datasets(&text).await.unwrap()), ["CONF-UPD"]);
    let by_provider = DatasetQuery { provider: Some(oc("conf-upd")), limit: 10, ..Default::default() };
    assert_eq!(store.search_datasets(&by_provider).await.unwrap().total, 0);

    match store.update_dataset_metadata(&dataset("CONF-UPD-NONE", "conf-upd", simple_schema())).await {
        Err(StoreError::NotFound { what: "dataset" }) => {}
        other => panic!("update of unknown dataset: expected NotFound{{dataset}}, got {other:?}"),
    }
}

/// `evolve_schema`: documentation, added columns, new version; all atomic.
pub async fn evolve_schema(store: &dyn Store) {
    ensure_org(store, "conf-evo").await;
    let backend = store.backend();
    let v1 = dataset("CONF-EVO", "conf-evo", simple_schema());
    store.create_dataset(&v1).await.unwrap();
    let names = |cols: &[ColumnInfo]| cols.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    let cols_v1 = store.table_columns("ds_conf_evo_v1").await.unwrap();

    // Document: same table, new schema JSON.
    let mut doc = v1.clone();
    doc.schema = schema(json!({
        "fields": [{"name": "id", "type": "integer", "description": "编号"}, {"name": "mc", "title": "名称（全称）"}],
        "primaryKey": "id"
    }));
    doc.updated_at = at("2024-04-01T00:00:00Z");
    store.evolve_schema(&doc, &SchemaEvolution::Document).await.unwrap();
    assert_eq!(store.get_dataset(&v1.code).await.unwrap().as_ref(), Some(&doc));
    let versions = store.schema_versions(&v1.code).await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].schema, doc.schema);
    assert_eq!(store.table_columns("ds_conf_evo_v1").await.unwrap(), cols_v1);

    // AddColumns: nullable columns appended to the current table, same version.
    let mut added = doc.clone();
    added.schema = schema(json!({
        "fields": [
            {"name": "id", "type": "integer", "description": "编号"},
            {"name": "mc", "title": "名称（全称）"},
            {"name": "bz", "type": "number"},
            {"name": "kz", "type": "object"}
        ],
        "primaryKey": "id"
    }));
    added.updated_at = at("2024-05-01T00:00:00Z");
    let new_fields = added.schema.fields[2..].to_vec();
    store.evolve_schema(&added, &SchemaEvolution::AddColumns(new_fields)).await.unwrap();
    assert_eq!(store.get_dataset(&v1.code).await.unwrap().as_ref(), Some(&added));
    let cols = store.table_columns("ds_conf_evo_v1").await.unwrap();
    assert_eq!(cols.len(), cols_v1.len() + 2);
    assert_eq!(cols[..cols_v1.len()], cols_v1[..]);
    let bz = cols.iter().find(|c| c.name == "bz").expect("column bz added");
    assert_eq!((bz.sql_type.as_str(), bz.not_null), (expected_type(backend, FieldType::Number), false));
    let kz = cols.iter().find(|c| c.name == "kz").expect("column kz added");
    assert_eq!((kz.sql_type.as_str(), kz.not_null), (expected_type(backend, FieldType::Object), false));
    let versions = store.schema_versions(&v1.code).await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].schema, added.schema);

    // NewVersion: a new table; the old one stays.
    let mut v2 = added.clone();
    v2.schema = schema(json!({
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "mc", "constraints": {"required": true}},
            {"name": "rq", "type": "date"}
        ],
        "primaryKey": "id"
    }));
    v2.schema_version = 2;
    v2.table_name = Dataset::table_name_for(&v2.code, 2);
    v2.updated_at = at("2024-06-01T00:00:00Z");
    store.evolve_schema(&v2, &SchemaEvolution::NewVersion).await.unwrap();
    assert_eq!(store.get_dataset(&v1.code).await.unwrap().as_ref(), Some(&v2));
    let versions = store.schema_versions(&v1.code).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| (v.version, v.table_name.as_str())).collect::<Vec<_>>(),
        [(1, "ds_conf_evo_v1"), (2, "ds_conf_evo_v2")]
    );
    assert_eq!(versions[0].schema, added.schema);
    assert_eq!(versions[0].created_at, v1.created_at);
    assert_eq!(versions[1].schema, v2.schema);
    assert_eq!(versions[1].created_at, v2.updated_at);
    assert_eq!(store.table_columns("ds_conf_evo_v1").await.unwrap(), cols, "old table kept as it was");
    let cols_v2 = store.table_columns("ds_conf_evo_v2").await.unwrap();
    assert_eq!(names(&cols_v2)[..3], ["id".to_string(), "mc".into(), "rq".into()]);
    assert_eq!(cols_v2[0].sql_type, expected_type(backend, FieldType::String));
    assert!(cols_v2[0].not_null && cols_v2[1].not_null && !cols_v2[2].not_null);
    assert_eq!(cols_v2[2].sql_type, expected_type(backend, FieldType::Date));

    // A version that does not follow the current one is a conflict; nothing changes.
    let mut skip = v2.clone();
    skip.schema_version = 4;
    skip.table_name = Dataset::table_name_for(&skip.code, 4);
    match store.evolve_schema(&skip, &SchemaEvolution::NewVersion).await {
        Err(StoreError::Conflict { what: "schema_version" }) => {}
        other => panic!("skipped version: expected Conflict{{schema_version}}, got {other:?}"),
    }
    let mut stale = v2.clone();
    stale.schema_version = 1;
    match store.evolve_schema(&stale, &SchemaEvolution::Document).await {
        Err(StoreError::Conflict { what: "schema_version" }) => {}
        other => panic!("stale version: expected Conflict{{schema_version}}, got {other:?}"),
    }

    // A failing step rolls the whole evolution back.
    let mut broken = v2.clone();
    broken.schema_version = 3;
    broken.table_name = "ds_conf_evo_v1".into(); // exists
    assert!(store.evolve_schema(&broken, &SchemaEvolution::NewVersion).await.is_err());
    let mut dup_column = v2.clone();
    dup_column.schema = added.schema.clone();
    let rq_again = v2.schema.fields[2..].to_vec();
    assert!(store.evolve_schema(&dup_column, &SchemaEvolution::AddColumns(rq_again)).await.is_err());
    assert_eq!(store.get_dataset(&v1.code).await.unwrap().as_ref(), Some(&v2));
    assert_eq!(store.schema_versions(&v1.code).await.unwrap().len(), 2);
    assert_eq!(store.table_columns("ds_conf_evo_v2").await.unwrap(), cols_v2);
    assert!(store.table_columns("ds_conf_evo_v3").await.unwrap().is_empty());

    let mut unknown = dataset("CONF-EVO-NONE", "conf-evo", simple_schema());
    for e in [SchemaEvolution::Document, SchemaEvolution::AddColumns(vec![]), SchemaEvolution::NewVersion] {
        if e == SchemaEvolution::NewVersion {
            unknown.schema_version = 2;
            unknown.table_name = Dataset::table_name_for(&unknown.code, 2);
        }
        match store.evolve_schema(&unknown, &e).await {
            Err(StoreError::NotFound { what: "dataset" }) => {}
            other => panic!("evolving an unknown dataset ({e:?}): expected NotFound{{dataset}}, got {other:?}"),
        }
    }
}

/// `append_audit`, `list_audit` with each filter, ordering and limits.
pub async fn audit(store: &dyn Store) {
    ensure_org(store, "conf-audit").await;
    let ev = |actor: &str, action: &str, target: &str, outcome: Outcome| NewAuditEvent {
        at: at("2024-07-01T10:00:00.654321Z"),
        actor: actor.into(),
        actor_role: Some(Role::DataOfficer),
        actor_org: Some(oc("conf-audit")),
        on_behalf_of: None,
        action: action.into(),
        target: target.into(),
        outcome,
        detail: json!({}),
        request_id: None,
        app: None,
        purpose: None,
        rows: None,
        subjects: Vec::new(),
    };
    let mut first = ev("conf-audit-alice", "conf.dataset.create", "CONF-A1", Outcome::Succeeded);
    first.detail =
        json!({"name": "户籍人口", "fields": [1, 2.5, null, true], "nested": {"k": "v"}, "big": 9007199254740993_i64});
    first.request_id = Some("req-1".into());
    first.on_behalf_of = Some(oc("conf-audit-other"));
    let mut system = ev("system", "conf.startup", "-", Outcome::Succeeded);
    system.actor_role = None;
    system.actor_org = None;
    system.detail = Value::Null;
    let events = [
        first,
        ev("conf-audit-bob", "conf.dataset.update", "CONF-A1", Outcome::Denied),
        ev("conf-audit-alice", "conf.auth.sign_in", "conf-audit-alice", Outcome::Allowed),
        ev("conf-audit-alice", "conf.dataset.create", "CONF-A2", Outcome::Failed),
        system,
    ];
    let mut seqs = Vec::new();
    for e in &events {
        seqs.push(store.append_audit(e).await.unwrap());
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "sequence numbers not increasing: {seqs:?}");

    let list = |f: &dyn Fn(&mut AuditQuery)| {
        let mut q = AuditQuery { after_seq: Some(seqs[0] - 1), ..Default::default() };
        f(&mut q);
        async move { store.list_audit(&q).await.unwrap() }
    };
    let seq_of = |v: &[AuditEvent]| v.iter().map(|e| e.seq).collect::<Vec<_>>();

    // Newest first; round trip of every field.
    let all = list(&|_| {}).await;
    assert_eq!(seq_of(&all), seqs.iter().rev().copied().collect::<Vec<_>>());
    for (e, seq) in events.iter().zip(&seqs) {
        let stored = all.iter().find(|a| a.seq == *seq).unwrap();
        assert_eq!(&stored.event, e);
    }

    let by_actor = list(&|q| q.actor = Some("conf-audit-alice".into())).await;
    assert_eq!(seq_of(&by_actor), [seqs[3], seqs[2], seqs[0]]);
    let by_prefix = list(&|q| q.action_prefix = Some("conf.dataset.".into())).await;
    assert_eq!(seq_of(&by_prefix), [seqs[3], seqs[1], seqs[0]]);
    let exact_action = list(&|q| q.action_prefix = Some("conf.dataset.create".into())).await;
    assert_eq!(seq_of(&exact_action), [seqs[3], seqs[0]]);
    // The prefix is literal and case-sensitive.
    assert!(list(&|q| q.action_prefix = Some("Conf.Dataset.".into())).await.is_empty());
    assert!(list(&|q| q.action_prefix = Some("conf.%".into())).await.is_empty());
    assert!(list(&|q| q.action_prefix = Some("conf_dataset".into())).await.is_empty());
    let by_target = list(&|q| q.target = Some("CONF-A1".into())).await;
    assert_eq!(seq_of(&by_target), [seqs[1], seqs[0]]);
    let combined = list(&|q| {
        q.actor = Some("conf-audit-alice".into());
        q.action_prefix = Some("conf.dataset".into());
        q.target = Some("CONF-A2".into());
    })
    .await;
    assert_eq!(seq_of(&combined), [seqs[3]]);
    let after = list(&|q| q.after_seq = Some(seqs[2])).await;
    assert_eq!(seq_of(&after), [seqs[4], seqs[3]]);
    let limited = list(&|q| q.limit = 2).await;
    assert_eq!(seq_of(&limited), [seqs[4], seqs[3]]);
    assert!(list(&|q| q.after_seq = Some(seqs[4])).await.is_empty());

    // Limit 0 means 100.
    let mut more = Vec::new();
    for i in 0..105 {
        more.push(
            store.append_audit(&ev("conf-audit-bulk", "conf.bulk", &format!("t{i}"), Outcome::Allowed)).await.unwrap(),
        );
    }
    let bulk =
        store.list_audit(&AuditQuery { actor: Some("conf-audit-bulk".into()), ..Default::default() }).await.unwrap();
    assert_eq!(bulk.len(), 100);
    assert_eq!(bulk[0].seq, more[104]);
    assert_eq!(bulk[99].seq, more[5]);
}

/// Many tasks reading and writing at once.
pub async fn concurrent_use(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("conf.concurrent.{i}");
            s.set_meta(&key, &i.to_string()).await.unwrap();
            let seq = s
                .append_audit(&NewAuditEvent {
                    at: Utc::now(),
                    actor: "conf-concurrent".into(),
                    actor_role: None,
                    actor_org: None,
                    on_behalf_of: None,
                    action: "conf.concurrent".into(),
                    target: key.clone(),
                    outcome: Outcome::Succeeded,
                    detail: json!({"i": i}),
                    request_id: None,
                    app: None,
                    purpose: None,
                    rows: None,
                    subjects: Vec::new(),
                })
                .await
                .unwrap();
            s.ping().await.unwrap();
            assert_eq!(s.get_meta(&key).await.unwrap(), Some(i.to_string()));
            s.search_datasets(&DatasetQuery { limit: 5, ..Default::default() }).await.unwrap();
            seq
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 16, "audit sequence numbers must be unique");
    let listed =
        store.list_audit(&AuditQuery { actor: Some("conf-concurrent".into()), ..Default::default() }).await.unwrap();
    assert_eq!(listed.len(), 16);
}

// ------------------------------------------------------------------ deliveries

/// Every delivery, record and responsibility scenario, in order, on one store.
pub async fn run_deliveries<S: Store + DeliveryStore + ?Sized>(s: &S) {
    history_tables_follow_the_typed_table(s).await;
    delivery_upserts_history_and_snapshots(s).await;
    aborted_delivery_keeps_nothing(s).await;
    open_delivery_blocks_no_writes(s).await;
    quarantine_round_trip(s).await;
    repeated_keys_quarantine_the_later_row(s).await;
    first_load_with_many_quarantined_rows(s).await;
    record_queries(s).await;
    typed_round_trip(s).await;
    delivery_without_primary_key(s).await;
    delivery_reports(s).await;
    responsibilities(s).await;
    stats(s).await;
    large_delivery(s).await;
    redelivery_settles_rows_in_memory(s).await;
}

fn t(day: u32) -> DateTime<Utc> {
    at(&format!("2025-01-{day:02}T00:00:00.000001Z"))
}

/// A valid row as the validator makes it: cells and content hash.
pub fn valid_row(row: u64, cells: Vec<Cell>) -> ValidRow {
    ValidRow { row, hash: content_hash(&cells), cells, warnings: vec![] }
}

fn new_delivery(d: &Dataset, mode: DeliveryMode, started_at: DateTime<Utc>) -> NewDelivery {
    NewDelivery {
        dataset: d.code.clone(),
        schema_version: d.schema_version,
        mode,
        format: "csv".into(),
        encoding: "utf-8".into(),
        submitted_by: "conf.officer".into(),
        org: d.provider.clone(),
        file_name: Some("数据.csv".into()),
        started_at,
    }
}

/// Begin a delivery and apply `batches` (sent in order; the channel then closes).
pub async fn deliver<S: Store + DeliveryStore + ?Sized>(
    s: &S,
    d: &Dataset,
    mode: DeliveryMode,
    when: DateTime<Utc>,
    batches: Vec<DeliveryBatch>,
) -> (i64, Result<ApplyOutcome, StoreError>) {
    let id = s.begin_delivery(&new_delivery(d, mode, when)).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let sender = tokio::spawn(async move {
        for b in batches {
            if tx.send(b).await.is_err() {
                break;
            }
        }
    });
    let r = s.apply_delivery(d, id, mode, when, rx).await;
    sender.await.unwrap();
    (id, r)
}

fn rows_of(rows: Vec<Vec<Cell>>) -> DeliveryBatch {
    DeliveryBatch::Rows(rows.into_iter().enumerate().map(|(i, c)| valid_row(i as u64 + 1, c)).collect())
}

fn outcome(inserted: u64, updated: u64, unchanged: u64, deleted: u64, quarantined: u64) -> ApplyOutcome {
    ApplyOutcome { inserted, updated, unchanged, deleted, quarantined, repeated: 0, repeated_warnings: 0 }
}

fn txt(s: &str) -> Cell {
    Cell::Text(s.into())
}

fn people_schema() -> TableSchema {
    schema(json!({
        "fields": [
            {"name": "id", "type": "integer"},
            {"name": "xm", "title": "姓名"},
            {"name": "sl", "type": "number"}
        ],
        "primaryKey": "id"
    }))
}

fn person(id: i64, name: &str, n: f64) -> Vec<Cell> {
    vec![Cell::Int(id), txt(name), Cell::Num(n)]
}

async fn keys_of<S: Store + DeliveryStore + ?Sized>(s: &S, d: &Dataset, q: RecordQuery) -> Vec<i64> {
    s.query_records(d, &q)
        .await
        .unwrap()
        .into_iter()
        .map(|r| match r.cells[0] {
            Cell::Int(i) => i,
            ref other => panic!("key {other:?}"),
        })
        .collect()
}

/// History tables are created with the typed table and follow added columns.
pub async fn history_tables_follow_the_typed_table<S: Store + DeliveryStore + ?Sized>(s: &S) {
    ensure_org(s, "conf-hist").await;
    let d = dataset("CONF-HIST", "conf-hist", people_schema());
    s.create_dataset(&d).await.unwrap();
    let names = |cols: Vec<ColumnInfo>| cols.into_iter().map(|c| c.name).collect::<Vec<_>>();
    assert_eq!(
        names(s.table_columns("ds_conf_hist_v1_hist").await.unwrap()),
        ["id", "xm", "sl", "_version", "_op", "_delivery_id", "_valid_from", "_valid_to"]
    );
    let mut added = d.clone();
    added.schema = schema(json!({
        "fields": [{"name": "id", "type": "integer"}, {"name": "xm", "title": "姓名"}, {"name": "sl", "type": "number"},
                   {"name": "bz"}],
        "primaryKey": "id"
    }));
    s.evolve_schema(&added, &SchemaEvolution::AddColumns(added.schema.fields[3..].to_vec())).await.unwrap();
    let cols = names(s.table_columns("ds_conf_hist_v1_hist").await.unwrap());
    assert_eq!(cols.last().map(String::as_str), Some("bz"));
    let mut v2 = added.clone();
    v2.schema_version = 2;
    v2.table_name = Dataset::table_name_for(&v2.code, 2);
    s.evolve_schema(&v2, &SchemaEvolution::NewVersion).await.unwrap();
    assert!(!s.table_columns("ds_conf_hist_v2_hist").await.unwrap().is_empty());

    // The longest dataset code (50 characters) has room for its history table.
    let long = dataset(&format!("CONF-{}", "L".repeat(45)), "conf-hist", people_schema());
    s.create_dataset(&long).await.unwrap();
    let (_, r) = deliver(
        s,
        &long,
        DeliveryMode::Snapshot,
        t(1),
        vec![rows_of(vec![person(1, "甲", 1.0)]), DeliveryBatch::Commit],
    )
    .await;
    assert_eq!(r.unwrap(), outcome(1, 0, 0, 0, 0));
    assert!(!s.table_columns(&format!("{}_hist", long.table_name)).await.unwrap().is_empty());
}

/// Insert, unchanged, update with history, snapshot deletes, a record coming back,
/// `as_of`, and `CommitKeepAbsent`.
pub async fn delivery_upserts_history_and_snapshots<S: Store + DeliveryStore + ?Sized>(s: &S) {
    ensure_org(s, "conf-dlv").await;
    let d = dataset("CONF-DLV", "conf-dlv", people_schema());
    s.create_dataset(&d).await.unwrap();
    let first: Vec<Vec<Cell>> = (1..=5).map(|i| person(i, &format!("人{i}"), i as f64 * 1.5)).collect();

    let (id1, r) = deliver(
        s,
        &d,
        DeliveryMode::Incremental,
        t(1),
        vec![rows_of(first[..2].to_vec()), rows_of(first[2..].to_vec()), DeliveryBatch::Commit],
    )
    .await;
    assert_eq!(r.unwrap(), outcome(5, 0, 0, 0, 0));
    let rec = s.get_record(&d, &[Cell::Int(3)]).await.unwrap().unwrap();
    assert_eq!(
        rec,
        Record { cells: first[2].clone(), version: 1, delivery_id: Some(id1), updated_at: t(1), deleted: false }
    );
    assert_eq!(s.get_record(&d, &[Cell::Int(99)]).await.unwrap(), None);

    // The same rows again: nothing is written.
    let (_, r) =
        deliver(s, &d, DeliveryMode::Snapshot, t(2), vec![rows_of(first.clone()), DeliveryBatch::Commit]).await;
    assert_eq!(r.unwrap(), outcome(0, 0, 5, 0, 0));
    assert_eq!(s.get_record(&d, &[Cell::Int(3)]).await.unwrap().unwrap(), rec);
    assert_eq!(s.record_history(&d, &[Cell::Int(3)]).await.unwrap().len(), 1);

    // A changed row and a new one.
    let changed = person(3, "人三（改）", 4.75);
    let (id3, r) = deliver(
        s,
        &d,
        DeliveryMode::Incremental,
        t(3),
        vec![rows_of(vec![person(6, "人6", 9.0), changed.clone()]), DeliveryBatch::Commit],
    )
    .await;
    assert_eq!(r.unwrap(), outcome(1, 1, 0, 0, 0));
    let rec3 = s.get_record(&d, &[Cell::Int(3)]).await.unwrap().unwrap();
    assert_eq!((rec3.version, rec3.delivery_id, rec3.updated_at, &rec3.cells), (2, Some(id3), t(3), &changed));
    let h = s.record_history(&d, &[Cell::Int(3)]).await.unwrap();
    assert_eq!(
        h,
        vec![
            RecordVersion {
                version: 1,
                op: RecordOp::Insert,
                cells: first[2].clone(),
                delivery_id: Some(id1),
                valid_from: t(1),
                valid_to: Some(t(3))
            },
            RecordVersion {
                version: 2,
                op: RecordOp::Update,
                cells: changed.clone(),
                delivery_id: Some(id3),
                valid_from: t(3),
                valid_to: None
            },
        ]
    );
    assert!(s.record_history(&d, &[Cell::Int(99)]).await.unwrap().is_empty());

    // A snapshot without 4 and 5 deletes them.
    let snap = vec![first[0].clone(), first[1].clone(), changed.clone(), person(6, "人6", 9.0)];
    let (id4, r) = deliver(s, &d, DeliveryMode::Snapshot, t(4), vec![rows_of(snap), DeliveryBatch::Commit]).await;
    assert_eq!(r.unwrap(), outcome(0, 0, 4, 2, 0));
    let gone = s.get_record(&d, &[Cell::Int(4)]).await.unwrap().unwrap();
    assert_eq!((gone.deleted, gone.version, gone.delivery_id, gone.updated_at), (true, 2, Some(id4), t(4)));
    assert_eq!(gone.cells, first[3]);
    let all = RecordQuery::default();
    assert_eq!(keys_of(s, &d, all.clone()).await, [1, 2, 3, 6]);
    assert_eq!(keys_of(s, &d, RecordQuery { include_deleted: true, ..all.clone() }).await, [1, 2, 3, 4, 5, 6]);

    // 4 comes back.
    let back = person(4, "人4", 6.0);
    let (id5, r) =
        deliver(s, &d, DeliveryMode::Incremental, t(5), vec![rows_of(vec![back.clone()]), DeliveryBatch::Commit]).await;
    assert_eq!(r.unwrap(), outcome(0, 1, 0, 0, 0));
    let h = s.record_history(&d, &[Cell::Int(4)]).await.unwrap();
    let ops: Vec<_> = h.iter().map(|v| (v.version, v.op, v.valid_from, v.valid_to, v.delivery_id)).collect();
    assert_eq!(
        ops,
        [
            (1, RecordOp::Insert, t(1), Some(t(4)), Some(id1)),
            (2, RecordOp::Delete, t(4), Some(t(5)), Some(id4)),
            (3, RecordOp::Update, t(5), None, Some(id5)),
        ]
    );
    assert_eq!(h[2].cells, back);
    assert!(!s.get_record(&d, &[Cell::Int(4)]).await.unwrap().unwrap().deleted);

    // The past.
    let as_of = |when: DateTime<Utc>| RecordQuery { as_of: Some(when), ..Default::default() };
    assert!(keys_of(s, &d, as_of(at("2024-12-31T00:00:00Z"))).await.is_empty());
    assert_eq!(keys_of(s, &d, as_of(t(1))).await, [1, 2, 3, 4, 5]);
    let past = s.query_records(&d, &as_of(t(2))).await.unwrap();
    assert_eq!(past[2].cells, first[2], "record 3 as it was before its update");
    assert_eq!((past[2].version, past[2].updated_at), (1, t(1)));
    assert_eq!(keys_of(s, &d, as_of(at("2025-01-03T12:00:00Z"))).await, [1, 2, 3, 4, 5, 6]);
    assert_eq!(s.query_records(&d, &as_of(t(3))).await.unwrap()[2].cells, changed);
    assert_eq!(keys_of(s, &d, as_of(t(4))).await, [1, 2, 3, 6]);
    let deleted_then = RecordQuery { include_deleted: true, ..as_of(t(4)) };
    let with_deleted = s.query_records(&d, &deleted_then).await.unwrap();
    assert_eq!(with_deleted.len(), 6);
    assert!(with_deleted[3].deleted && with_deleted[4].deleted);
    assert_eq!(keys_of(s, &d, as_of(t(9))).await, [1, 2, 3, 4, 6]);
    // Filters apply to the past too.
    let f = RecordQuery { filters: vec![Filter { field: 1, op: FilterOp::Eq(txt("人3")) }], ..as_of(t(2)) };
    assert_eq!(keys_of(s, &d, f).await, [3]);

    // A snapshot whose commit keeps absent records deletes nothing.
    let (_, r) = deliver(
        s,
        &d,
        DeliveryMode::Snapshot,
        t(6),
        vec![rows_of(vec![first[0].clone()]), DeliveryBatch::CommitKeepAbsent],
    )
    .await;
    assert_eq!(r.unwrap(), outcome(0, 0, 1, 0, 0));
    assert_eq!(keys_of(s, &d, all).await, [1, 2, 3, 4, 6]);
}

/// A delivery whose channel closes without `Commit` leaves nothing behind.
pub async fn aborted_delivery_keeps_nothing<S: Store + DeliveryStore + ?Sized>(s: &S) {
    ensure_org(s, "conf-abort").await;
    let d = dataset("CONF-ABORT", "conf-abort", people_schema());
    s.create_dataset(&d).await.unwrap();
    let (_, r) = deliver(
        s,
        &d,
        DeliveryMode::Incremental,
        t(1),
        vec![rows_of((1..=3).map(|i| person(i, "原", 1.0)).collect()), DeliveryBatch::Commit],
    )
    .await;
    assert_eq!(r.unwrap(), outcome(3, 0, 0, 0, 0));
    let before = s.query_records(&d, &RecordQuery { include_deleted: true, ..Default::default() }).await.unwrap();

    for mode in [DeliveryMode::Incremental, DeliveryMode::Snapshot] {
        let (id, r) = deliver(
            s,
            &d,
            mode,
            t(2),
            vec![
                DeliveryBatch::Quarantine(vec![quarantined(7)]),
                rows_of(vec![person(1, "改", 2.0), person(4, "新", 4.0)]),
                rows_of(vec![person(5, "新", 5.0)]),
            ],
        )
        .await;
        assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
        let after = s.query_records(&d, &RecordQuery { include_deleted: true, ..Default::default() }).await.unwrap();
        assert_eq!(after, before, "an aborted delivery changed the records");
        assert_eq!(s.record_history(&d, &[Cell::Int(1)]).await.unwrap().len(), 1);
        assert_eq!(s.get_record(&d, &[Cell::Int(4)]).await.unwrap(), None);
        let q = s.list_quarantine(id, 0, 10).await.unwrap();
        assert_eq!((q.total, q.items.len()), (0, 0), "quarantine rows of an aborted delivery were kept");
    }
    // The store is still usable: the next delivery goes through.
    let (_, r) = deliver(
        s,
        &d,
        DeliveryMode::Incremental,
        t(3),
        vec![rows_of(vec![person(1, "改", 2.0)]), DeliveryBatch::Commit],
    )
    .await;
    assert_eq!(r.unwrap(), outcome(0, 1, 0, 0, 0));
}

/// `f`, which must not wait for a delivery that is still receiving its batches.
async fn promptly<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(2), f)
        .await
        .unwrap_or_else(|_| panic!("{what} waited for a delivery still receiving its batches"))
}

/// A delivery opened but still waiting for its first batch (its file is being read, or
/// a client is slow to start) blocks no other write: audit entries, sign-ins, the start
/// of another delivery and a whole other delivery go through meanwhile. Once rows flow
/// a backend may hold its writer until the commit (SQLite has one; the server stages
/// uploads in a file first, so rows flow at disk speed); readers never wait and never
/// see the uncommitted rows.
pub async fn open_delivery_blocks_no_writes<S: Store + DeliveryStore + ?Sized>(s: &S) {
    ensure_org(s, "conf-open").await;
    let d = dataset("CONF-OPEN", "conf-open", people_schema());
    s.create_dataset(&d).await.unwrap();
    let d2 = dataset("CONF-OPEN-2", "conf-open", people_schema());
    s.create_dataset(&d2).await.unwrap();
    let user = s
        .insert_user(&NewUserRecord {
            username: Username::parse("conf.open-user").unwrap(),
            display_name: "上传中".into(),
            role: Role::DataOfficer,
            org: Some(oc("conf-open")),
            subject_id: None,
            password_hash: "h".into(),
            created_at: at("2024-01-01T00:00:00Z"),
        })
        .await
        .unwrap();
    let id = s.begin_delivery(&new_delivery(&d, DeliveryMode::Snapshot, t(1))).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let apply = s.apply_delivery(&d, id, DeliveryMode::Snapshot, t(1), rx);
    let meanwhile = async {
        // Let the store wait for its first batch.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        promptly(
            "append_audit",
            s.append_audit(&NewAuditEvent {
                at: Utc::now(),
                actor: "conf.open-user".into(),
                actor_role: None,
                actor_org: None,
                on_behalf_of: None,
                action: "conf.open".into(),
                target: "CONF-OPEN".into(),
                outcome: Outcome::Succeeded,
                detail: json!({}),
                request_id: None,
                app: None,
                purpose: None,
                rows: None,
                subjects: Vec::new(),
            }),
        )
        .await
        .unwrap();
        let session = Session {
            token_hash: "conf-open-session".into(),
            user_id: user.id,
            kind: SessionKind::Web,
            csrf_token: "csrf".into(),
            created_at: at("2024-06-01T11:00:00Z"),
            expires_at: at("2999-01-01T00:00:00Z"),
        };
        promptly("insert_session", s.insert_session(&session)).await.unwrap();
        promptly("begin_delivery", s.begin_delivery(&new_delivery(&d, DeliveryMode::Incremental, t(1)))).await.unwrap();
        let other = vec![rows_of(vec![person(1, "丙", 3.0)]), DeliveryBatch::Commit];
        let (_, r) = promptly("another delivery", deliver(s, &d2, DeliveryMode::Incremental, t(1), other)).await;
        assert_eq!(r.unwrap(), outcome(1, 0, 0, 0, 0));
        tx.send(rows_of((1..=300).rev().map(|i| person(i, "甲", 1.0)).collect())).await.unwrap();
        tx.send(DeliveryBatch::Quarantine(vec![quarantined(301)])).await.unwrap();
        tx.send(rows_of((301..=500).map(|i| person(i, "乙", 2.0)).collect())).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let read = promptly("get_record", s.get_record(&d, &[Cell::Int(1)])).await;
        assert_eq!(read.unwrap(), None, "an uncommitted delivery is visible");
        tx.send(DeliveryBatch::Commit).await.unwrap();
    };
    let (r, ()) = tokio::join!(apply, meanwhile);
    assert_eq!(r.unwrap(), outcome(500, 0, 0, 0, 1));
    let records = s.query_records(&d, &RecordQuery { limit: 1000, ..Default::default() }).await.unwrap();
    assert_eq!(records.len(), 500);
    assert!(records.iter().all(|r| r.delivery_id == Some(id)));
    assert_eq!(records[299].cells, person(300, "甲", 1.0));
    assert_eq!(records[300].cells, person(301, "乙", 2.0));
    assert_eq!(s.list_quarantine(id, 0, 10).await.unwrap().total, 1);
    assert_eq!(s.get_session("conf-open-session").await.unwrap().map(|x| x.user_id), Some(user.id));
}

fn quarantined(row: u64) -> QuarantinedRow {
    let mut raw = serde_json::Map::new();
    raw.insert("公民身份号码".into(), json!("3204**********1230"));
    raw.insert("xm".into(), json!("张\t三\n\"引号\""));
    QuarantinedRow {
        row,
        raw,
        problems: vec![
            Problem {
                row,
                field: Some("sfzh".into()),
                code: "id-number-check".into(),
                severity: "error",
                value: Some("3204**********1230".into()),
                message: "ID number: wrong check digit".into(),
                message_zh: "身份证号校验位错误".into(),
            },
            Problem {
                row,
                field: None,
                code: "uscc-check".into(),
                severity: "warning",
                value: None,
                message: "warn".into(),
                message_zh: "警告".into(),
            },
        ],
    }
}

/// Quarantined rows round-trip in row order, with their total.
pub async fn quarantine_round_trip<S: Store + DeliveryStore + ?Sized>(s: &S) {
    ensure_org(s, "conf-quar").await;
    let d = dataset("CONF-QUAR", "conf-quar", people_schema());
    s.create_dataset(&d).await.unwrap();
    let q: Vec<QuarantinedRow> = [9, 2, 5].into_iter().map(quarantined).collect();
    let (id, r) = deliver(
        s,
        &d,
        DeliveryMode::Incremental,
        t(1),
        vec![
            DeliveryBatch::Quarantine(q[..2].to_vec()),
            rows_of(vec![person(1, "甲", 1.0)]),
            DeliveryBatch::Quarantine(q[2..].to_vec()),
            DeliveryBatch::Commit,
        ],
    )
    .await;
    assert_eq!(r.unwrap(), outcome(1, 0, 0, 0, 3));
    let page = s.list_quarantine(id, 0, 0).await.unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(page.items, vec![q[1].clone(), q[2].clone(), q[0].clone()]);
    let page = s.list_quarantine(id, 1, 1).await.unwrap();
    assert_eq!((page.total, page.items), (3, vec![q[2].clone()]));
    assert_eq!(s.list_quarantine(id + 1000, 0, 10).await.unwrap().total, 0);
}

/// A key delivered twice: the later row goes to the quarantine (with the delivered
/// labels and the `primary-key` code), whether the earlier one was inserted, updated
/// or found unchanged, within a batch or across batches; the snapshot deletes only
/// what the delivery did not contain.
pub async fn repeated_keys_quarantine_the_later_row<S: Store + DeliveryStore + ?Sized>(s: &S) {
    ensure_org(s, "conf-rep").await;
    let d = dataset("CONF-REP", "conf-rep", people_schema());
    s.create_dataset(&d).await.unwrap();
    let labels = DeliveryBatch::Labels(vec!["编号".into(), "姓名".into(), "数量".into()]);
    let rows = |v: Vec<(u64, Vec<Cell>)>| DeliveryBatch::Rows(v.into_iter().map(|(n, c)| valid_row(n, c)).collect());
    let mut warned = valid_row(4, person(2, "丁", 4.0));
    warned.warnings.push(Problem {
        row: 4,
        field: Some("xm".into()),
        code: "id-number-case".into(),
        severity: "warning",
        value: None,
        message: "w".into(),
        message_zh: "w".into(),
    });
    let (id, r) = deliver(
        s,
        &d,
        DeliveryMode::Incremental,
        t(1),
        vec![
            labels,
            rows(vec![(1, person(1, "甲", 1.0)), (2, person(2, "乙", 2.0)), (3, person(1, "丙", 3.0))]),
            DeliveryBatch::Rows(vec![warned]),
            DeliveryBatch::Commit,
        ],
    )
    .await;
    let want = ApplyOutcome { repeated: 2, repeated_warnings: 1, ..outcome(2, 0, 0, 0, 2) };
    assert_eq!(r.unwrap(), want);
    assert_eq!(s.get_record(&d, &[Cell::Int(1)]).await.unwrap().unwrap().cells, person(1, "甲", 1.0));
    assert_eq!(s.get_record(&d, &[Cell::Int(2)]).await.unwrap().unwrap().cells, person(2, "乙", 2.0));
    let q = s.list_quarantine(id, 0, 10).await.unwrap();
    assert_eq!(q.items.iter().map(|q| q.row).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(q.items[0].raw["姓名"], json!("丙"));
    assert_eq!(q.items[0].raw["编号"], json!("1"));
    assert_eq!(q.items[0].problems.last().unwrap().code, "primary-key");
    assert_eq!(
        q.items[1].problems.iter().map(|p| p.code.as_str()).collect::<Vec<_>>(),
        ["id-number-case", "primary-key"]
    );

    // Over existing records: after an unchanged row and after a new one; a snapshot.
    let (_, r) = deliver(
        s,
        &d,
        DeliveryMode::Snapshot,
        t(2),
        vec![
            rows(vec![(1, person(1, "甲", 1.0)), (2, person(3, "戊", 5.0))]),
            rows(vec![(3, person(1, "改", 9.0)), (4, person(3, "己", 6.0))]),
            DeliveryBatch::Commit,
        ],
    )
    .await;
    assert_eq!(r.unwrap(), ApplyOutcome { repeated: 2, ..outcome(1, 0, 1, 1, 2) });
    assert_eq!(s.get_record(&d, &[Cell::Int(1)]).await.unwrap().unwrap().cells, person(1, "甲", 1.0));
    assert_eq!(s.get_record(&d, &[Cell::Int(3)]).await.unwrap().unwrap().cells, person(3, "戊", 5.0));
    assert!(s.get_record(&d, &[Cell::Int(2)]).await.unwrap().unwrap().deleted);
}

/// A re-delivery large enough for the writer to read the table's current records once
/// and settle unchanged rows in memory (SQLite reads them once 1/16 of the table's size
/// has arrived, then settles the rows waiting to be written too; PostgreSQL at the
/// start of an incremental delivery): repeated keys in every order of unchanged and
/// changed rows, within a batch and across batches, among the rows waiting when the
/// records are read, a deleted record delivered again as it was, a new key twice; then
/// a snapshot whose rows are all found unchanged in memory deletes every other record.
pub async fn redelivery_settles_rows_in_memory<S: Store + DeliveryStore + ?Sized>(s: &S) {
    ensure_org(s, "conf-redeliver").await;
    let sc = schema(json!({
        "fields": [{"name": "sfzh"}, {"name": "xm"}, {"name": "sl", "type": "number"}],
        "primaryKey": "sfzh"
    }));
    let d = dataset("CONF-REDELIVER", "conf-redeliver", sc);
    s.create_dataset(&d).await.unwrap();
    const T: u64 = 70_200;
    let key = |k: u64| txt(&format!("3204{k:014}"));
    let rec = |k: u64, name: &str| vec![key(k), txt(name), Cell::Num(k as f64)];
    let batches = |rows: Vec<(u64, Vec<Cell>)>, mut end: Vec<DeliveryBatch>| {
        let mut out: Vec<DeliveryBatch> = rows
            .chunks(1_000)
            .map(|c| DeliveryBatch::Rows(c.iter().map(|(n, cells)| valid_row(*n, cells.clone())).collect()))
            .collect();
        out.append(&mut end);
        out
    };
    // Records 0..=T; then T is deleted by a snapshot without it.
    let all: Vec<(u64, Vec<Cell>)> = (0..=T).map(|k| (k + 1, rec(k, "甲"))).collect();
    let (_, r) = deliver(s, &d, DeliveryMode::Snapshot, t(1), batches(all, vec![DeliveryBatch::Commit])).await;
    assert_eq!(r.unwrap(), outcome(T + 1, 0, 0, 0, 0));
    let most: Vec<(u64, Vec<Cell>)> = (0..T).map(|k| (k + 1, rec(k, "甲"))).collect();
    let (_, r) = deliver(s, &d, DeliveryMode::Snapshot, t(2), batches(most, vec![DeliveryBatch::Commit])).await;
    assert_eq!(r.unwrap(), outcome(0, 0, T, 1, 0));

    // 70,000 rows (two sorted runs' worth), unchanged but for key 1: changed in the
    // first batch, which is still waiting when SQLite reads the current records (at
    // 4,387 rows), and delivered again as it was in the seventh; then the cases.
    let (a, b, c, dd) = (70_000, 70_001, 70_002, 70_003);
    let mut rows: Vec<(u64, Vec<Cell>)> = Vec::new();
    let mut one_again = 0;
    for k in 0..70_000 {
        rows.push((rows.len() as u64 + 1, rec(k, if k == 1 { "改" } else { "甲" })));
        if k == 6_000 {
            one_again = rows.len() as u64 + 1;
            rows.push((one_again, rec(1, "甲")));
        }
    }
    let mut n = 70_001u64;
    let mut push = |rows: &mut Vec<(u64, Vec<Cell>)>, cells: Vec<Cell>| {
        n += 1;
        rows.push((n, cells));
        n
    };
    // Batch 8: the first rows of a and b; c and d twice each, in one batch.
    push(&mut rows, rec(a, "甲"));
    push(&mut rows, rec(b, "甲"));
    push(&mut rows, rec(c, "改"));
    let c_again = push(&mut rows, rec(c, "甲"));
    push(&mut rows, rec(dd, "改一"));
    let d_again = push(&mut rows, rec(dd, "改二"));
    push(&mut rows, rec(T, "甲")); // deleted, delivered as it was
    push(&mut rows, rec(T + 1, "新"));
    let mut tail =
        vec![DeliveryBatch::Rows(rows.split_off(70_001).into_iter().map(|(n, c)| valid_row(n, c)).collect())];
    // Batch 9: a and b again (unchanged, changed), the new key again, the rest unchanged.
    let mut later = Vec::new();
    let a_again = push(&mut later, rec(a, "甲"));
    let b_again = push(&mut later, rec(b, "改"));
    let new_again = push(&mut later, rec(T + 1, "新"));
    for k in dd + 1..T {
        push(&mut later, rec(k, "甲"));
    }
    tail.push(DeliveryBatch::Rows(later.into_iter().map(|(n, c)| valid_row(n, c)).collect()));
    tail.push(DeliveryBatch::Commit);
    let (id, r) = deliver(s, &d, DeliveryMode::Incremental, t(3), batches(rows, tail)).await;
    let unchanged = 69_999 + 2 + (T - dd - 1);
    assert_eq!(r.unwrap(), ApplyOutcome { repeated: 6, ..outcome(1, 4, unchanged, 0, 6) });
    let q = s.list_quarantine(id, 0, 10).await.unwrap();
    let mut repeated: Vec<u64> = q.items.iter().map(|q| q.row).collect();
    repeated.sort_unstable();
    assert_eq!(repeated, [one_again, c_again, d_again, a_again, b_again, new_again]);
    let dr = &d;
    let cells = |k: u64| async move { s.get_record(dr, &[key(k)]).await.unwrap().unwrap() };
    assert_eq!(cells(b).await.cells, rec(b, "甲"), "the later, changed row of b is not applied");
    assert_eq!(cells(1).await.cells, rec(1, "改"), "the earlier, changed row of key 1 is applied");
    assert_eq!(cells(c).await.cells, rec(c, "改"), "the earlier, changed row of c is applied");
    assert_eq!(cells(dd).await.cells, rec(dd, "改一"));
    assert!(!cells(T).await.deleted, "the deleted record delivered again is current again");
    assert_eq!(cells(T).await.version, 3);
    assert_eq!(cells(T + 1).await.cells, rec(T + 1, "新"));
    assert_eq!(s.record_history(&d, &[key(c)]).await.unwrap().len(), 2);

    // A snapshot of 70,000 unchanged rows deletes the other 202 current records.
    let kept: Vec<(u64, Vec<Cell>)> = (0..70_000).map(|k| (k + 1, rec(k, "甲"))).collect();
    let (_, r) = deliver(s, &d, DeliveryMode::Snapshot, t(4), batches(kept, vec![DeliveryBatch::Commit])).await;
    assert_eq!(r.unwrap(), outcome(0, 1, 69_999, T + 2 - 70_000, 0));
    assert!(!cells(69_999).await.deleted);
    assert!(cells(70_000).await.deleted && cells(T + 1).await.deleted);
}

/// A first load with more bad and repeated rows than a writer may hold back while it
/// streams (PostgreSQL keeps one COPY open and stores quarantined rows when it closes):
/// every good row is in, every bad one is in the quarantine with its row number.
pub async fn first_load_with_many_quarantined_rows<S: Store + DeliveryStore + ?Sized>(s: &S) {
    ensure_org(s, "conf-manyq").await;
    let d = dataset("CONF-MANYQ", "conf-manyq", people_schema());
    s.create_dataset(&d).await.unwrap();
    let mut batches = vec![DeliveryBatch::Labels(vec!["编号".into(), "姓名".into(), "数量".into()])];
    let mut row = 0u64;
    for b in 0..6u64 {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for i in 0..5_000u64 {
            row += 1;
            let id = (b * 5_000 + i) as i64;
            // Each later batch repeats 1,000 keys of the first.
            let key = if b > 0 && i < 1_000 { i as i64 } else { id };
            good.push(valid_row(row, person(key, "甲", 1.0)));
            row += 1;
            bad.push(quarantined(row));
        }
        batches.push(DeliveryBatch::Rows(good));
        batches.push(DeliveryBatch::Quarantine(bad));
    }
    batches.push(DeliveryBatch::Commit);
    let (id, r) = deliver(s, &d, DeliveryMode::Incremental, t(1), batches).await;
    let want = ApplyOutcome { repeated: 5_000, ..outcome(25_000, 0, 0, 0, 35_000) };
    assert_eq!(r.unwrap(), want);
    let q = s.list_quarantine(id, 0, 100_000).await.unwrap();
    assert_eq!(q.total, 35_000);
    let mut rows: Vec<u64> = q.items.iter().map(|q| q.row).collect();
    rows.sort_unstable();
    rows.dedup();
    assert_eq!(rows.len(), 35_000);
    assert_eq!(s.get_record(&d, &[Cell::Int(29_999)]).await.unwrap().unwrap().cells, person(29_999, "甲", 1.0));
    assert!(s.get_record(&d, &[Cell::Int(30_000)]).await.unwrap().is_none());
}

/// Keyset pagination over a composite key, every filter operator, injection attempts.
pub async fn record_queries<S: Store + DeliveryStore + ?Sized>(s: &S) {
    ensure_org(s, "conf-query").await;
    let sc = schema(json!({
        "fields": [
            {"name": "qh"}, {"name": "bh", "type": "integer"}, {"name": "mc"},
            {"name": "rq", "type": "date"}, {"name": "je", "type": "number"}, {"name": "yx", "type": "boolean"}
        ],
        "primaryKey": ["qh", "bh"]
    }));
    let d = dataset("CONF-QUERY", "conf-query", sc.clone());
    s.create_dataset(&d).await.unwrap();
    let date = |m: u32, day: u32| Cell::Date(NaiveDate::from_ymd_opt(2024, m, day).unwrap());
    let mut rows = Vec::new();
    for (qi, qh) in ["B", "a", "A", "张"].iter().enumerate() {
        for bh in [10, 9, 100] {
            let n = qi as i64 * 1000 + bh;
            let mc = match n % 3 {
                0 => Cell::Null,
                1 => txt(&format!("张{n}")),
                _ => txt(&format!("李{n}")),
            };
            rows.push(vec![
                txt(qh),
                Cell::Int(bh),
                mc,
                date(1 + (n % 12) as u32, 1),
                Cell::Num(n as f64 / 4.0),
                Cell::Bool(n % 2 == 0),
            ]);
        }
    }
    let (_, r) = deliver(s, &d, DeliveryMode::Snapshot, t(1), vec![rows_of(rows.clone()), DeliveryBatch::Commit]).await;
    assert_eq!(r.unwrap(), outcome(12, 0, 0, 0, 0));

    // The consumer API's lookup: the record as get_record has it, plus the sharing
    // generation of the same snapshot — also when there is no such record.
    let generation = s.sharing_generation().await.unwrap();
    let shared = std::sync::Arc::new(d.clone());
    let all: Vec<usize> = (0..d.schema.fields.len()).collect();
    let (found, g) = s.shared_record(&shared, &[txt("张"), Cell::Int(10)], &all).await.unwrap();
    let whole = s.get_record(&d, &[txt("张"), Cell::Int(10)]).await.unwrap();
    assert_eq!(found, whole);
    let whole = whole.unwrap();
    assert_eq!(whole.cells[2], txt("张3010"));
    assert_eq!(g, generation);
    let (missing, g) = s.shared_record(&shared, &[txt("张"), Cell::Int(8)], &all).await.unwrap();
    assert_eq!((missing, g), (None, generation));
    // Only the fields asked for are read (each type left out and read once); the
    // others come back null, and the system columns as ever.
    for read in [vec![0, 2], vec![1, 3, 4, 5]] {
        let (part, _) = s.shared_record(&shared, &[txt("张"), Cell::Int(10)], &read).await.unwrap();
        let part = part.unwrap();
        for (i, c) in part.cells.iter().enumerate() {
            let want = if read.contains(&i) { whole.cells[i].clone() } else { Cell::Null };
            assert_eq!(c, &want, "field {i} reading {read:?}");
        }
        assert_eq!((part.version, part.deleted), (whole.version, whole.deleted));
    }

    let key = |r: &Record| (r.cells[0].to_text(), r.cells[1].clone());
    let mut expected: Vec<(String, Cell)> = rows.iter().map(|c| (c[0].to_text(), c[1].clone())).collect();
    expected.sort_by(|a, b| {
        a.0.as_bytes().cmp(b.0.as_bytes()).then_with(|| match (&a.1, &b.1) {
            (Cell::Int(x), Cell::Int(y)) => x.cmp(y),
            _ => unreachable!(),
        })
    });
    // Pages of 5 with keyset pagination: bytewise text, numeric integers.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page =
            s.query_records(&d, &RecordQuery { after: after.clone(), limit: 5, ..Default::default() }).await.unwrap();
        assert!(page.len() <= 5);
        if page.is_empty() {
            break;
        }
        after = Some(page.last().unwrap().cells[..2].to_vec());
        seen.extend(page.iter().map(key));
    }
    assert_eq!(seen, expected);
    assert_eq!(s.query_records(&d, &RecordQuery::default()).await.unwrap().len(), 12, "limit 0 means 100");

    let q = |field: usize, op: FilterOp| RecordQuery { filters: vec![Filter { field, op }], ..Default::default() };
    let dr = &d;
    let count = |q: RecordQuery| async move { s.query_records(dr, &q).await.unwrap() };
    let n_of = |v: &[Vec<Cell>], f: &dyn Fn(&Vec<Cell>) -> bool| v.iter().filter(|c| f(c)).count();

    let eq = count(q(2, FilterOp::Eq(txt("张1009")))).await;
    assert_eq!(eq.len(), 1);
    assert_eq!(eq[0].cells, rows[4]);
    for attack in ["' OR 1=1 --", "\" OR \"\"=\"", "张1009' --", "%", "_"] {
        assert!(count(q(2, FilterOp::Eq(txt(attack)))).await.is_empty(), "{attack}");
        assert!(count(q(0, FilterOp::In(vec![txt(attack)]))).await.is_empty(), "{attack}");
        assert!(count(q(2, FilterOp::Prefix(attack.into()))).await.is_empty(), "{attack}");
    }
    let inn = count(q(0, FilterOp::In(vec![txt("a"), txt("张"), txt("zz")]))).await;
    assert_eq!(inn.len(), 6);
    let range = count(q(4, FilterOp::Range(Some(Cell::Num(2.5)), Some(Cell::Num(250.0))))).await;
    assert_eq!(range.len(), n_of(&rows, &|c| matches!(c[4], Cell::Num(x) if (2.5..=250.0).contains(&x))));
    assert!(range.iter().any(|r| r.cells[4] == Cell::Num(2.5)), "range bounds are inclusive");
    let lower = count(q(1, FilterOp::Range(Some(Cell::Int(100)), None))).await;
    assert_eq!(lower.len(), 4);
    let dates = count(q(3, FilterOp::Range(None, Some(date(3, 1))))).await;
    assert_eq!(
        dates.len(),
        n_of(&rows, &|c| matches!(c[3], Cell::Date(x) if x <= NaiveDate::from_ymd_opt(2024, 3, 1).unwrap()))
    );
    let text_range = count(q(0, FilterOp::Range(Some(txt("B")), Some(txt("a"))))).await;
    assert_eq!(text_range.len(), 6, "text ranges are bytewise");
    let prefix = count(q(2, FilterOp::Prefix("张".into()))).await;
    assert_eq!(prefix.len(), n_of(&rows, &|c| matches!(&c[2], Cell::Text(t) if t.starts_with('张'))));
    assert!(!prefix.is_empty());
    let nulls = count(q(2, FilterOp::IsNull(true))).await;
    assert_eq!(nulls.len(), n_of(&rows, &|c| c[2].is_null()));
    let not_nulls = count(q(2, FilterOp::IsNull(false))).await;
    assert_eq!(nulls.len() + not_nulls.len(), 12);
    let yes = count(q(5, FilterOp::Eq(Cell::Bool(true)))).await;
    assert_eq!(yes.len(), n_of(&rows, &|c| c[5] == Cell::Bool(true)));
    // Combined filters, with pagination.
    let both = RecordQuery {
        filters: vec![
            Filter { field: 0, op: FilterOp::In(vec![txt("A"), txt("B")]) },
            Filter { field: 1, op: FilterOp::Range(Some(Cell::Int(10)), None) },
        ],
        after: Some(vec![txt("A"), Cell::Int(10)]),
        limit: 10,
        ..Default::default()
    };
    let got: Vec<_> = count(both).await.iter().map(key).collect();
    assert_eq!(got, [("A".to_string(), Cell::Int(100)), ("B".into(), Cell::Int(10)), ("B".into(), Cell::Int(100))]);
    // A value of the wrong type is refused, not compared loosely.
    assert!(s.query_records(&d, &q(1, FilterOp::Eq(txt("' OR 1=1 --")))).await.is_err());
    assert!(s.query_records(&d, &q(42, FilterOp::IsNull(true))).await.is_err());
    // Composite keys by get_record.
    let r = s.get_record(&d, &[txt("张"), Cell::Int(9)]).await.unwrap().unwrap();
    assert_eq!(r.cells, rows[10]);
    assert!(s.get_record(&d, &[txt("张")]).await.is_err());

    // A field added in place: the consumer API's lookup reads the new column too (a
    // statement kept from before would miss it).
    let mut added = d.clone();
    let mut field = added.schema.fields[2].clone();
    field.name = "bz".into();
    field.title = None;
    field.constraints = Default::default();
    field.sensitive = false;
    added.schema.fields.push(field.clone());
    s.evolve_schema(&added, &SchemaEvolution::AddColumns(vec![field])).await.unwrap();
    let added = std::sync::Arc::new(added);
    let all: Vec<usize> = (0..added.schema.fields.len()).collect();
    let (found, _) = s.shared_record(&added, &[txt("张"), Cell::Int(10)], &all).await.unwrap();
    let found = found.unwrap();
    assert_eq!(found.cells.len(), 7);
    assert_eq!(found.cells[6], Cell::Null);
    assert_eq!(Some(found), s.get_record(&added, &[txt("张"), Cell::Int(10)]).await.unwrap());
}

/// Every storable type round-trips through a delivery, including awkward text.
pub async fn typed_round_trip<S: Store + DeliveryStore + ?Sized>(s: &S) {
    ensure_org(s, "conf-types").await;
    let sc = schema(json!({
        "fields": [
            {"name": "id"}, {"name": "n", "type": "number"}, {"name": "i", "type": "integer"},
            {"name": "b", "type": "boolean"}, {"name": "d", "type": "date"}, {"name": "dt", "type": "datetime"},
            {"name": "tm", "type": "time"}, {"name": "y", "type": "year"}, {"name": "o", "type": "object"},
            {"name": "a", "type": "array"}, {"name": "l", "type": "list"}, {"name": "ym", "type": "yearmonth"},
            {"name": "t"}
        ],
        "primaryKey": "id"
    }));
    let d = dataset("CONF-TYPES", "conf-types", sc.clone());
    s.create_dataset(&d).await.unwrap();
    let row = |id: &str, n: f64, text: Cell| {
        vec![
            txt(id),
            Cell::Num(n),
            Cell::Int(-9_007_199_254_740_993),
            Cell::Bool(n > 0.0),
            Cell::Date(NaiveDate::from_ymd_opt(1949, 10, 1).unwrap()),
            Cell::DateTime(at("2024-05-06T07:08:09.123456Z")),
            Cell::Time(chrono::NaiveTime::from_hms_opt(23, 59, 58).unwrap()),
            Cell::Int(2024),
            Cell::json(json!({"名称": "值", "n": [1, 2.5, null, true], "q": "a\"b\\c\ttab"})),
            Cell::json(json!([1, "二", {"x": null}])),
            Cell::json(json!(["a", "b"])),
            txt("2024-02"),
            text,
        ]
    };
    let rows = vec![
        row("r1", 1.5, txt("tab\there\nnewline\r\\back\\slash \\N 'quote' \"dq\"")),
        row("r2", -0.25, txt("")),
        row("r3", 123456.789, Cell::Null),
        row("r4", 1e15, txt("\\N")),
        row("r\t5", 0.1 + 0.2, txt("中文，全角；\u{1f}分隔")),
    ];
    let mut nulls = vec![txt("r6")];
    nulls.extend(vec![Cell::Null; 12]);
    let mut all = rows.clone();
    all.push(nulls);
    let (_, r) = deliver(s, &d, DeliveryMode::Snapshot, t(1), vec![rows_of(all.clone()), DeliveryBatch::Commit]).await;
    assert_eq!(r.unwrap(), outcome(6, 0, 0, 0, 0));
    for cells in &all {
        let got = s.get_record(&d, &cells[..1]).await.unwrap().unwrap_or_else(|| panic!("{:?} missing", cells[0]));
        assert_eq!(&got.cells, cells, "round trip on {}", s.backend().as_str());
    }
    // Read back and re-delivered, every row is unchanged (the hashes agree).
    let (_, r) = deliver(s, &d, DeliveryMode::Snapshot, t(2), vec![rows_of(all), DeliveryBatch::Commit]).await;
    assert_eq!(r.unwrap(), outcome(0, 0, 6, 0, 0));
    // Typed filters on each kind.
    let q = |field: usize, op: FilterOp| RecordQuery { filters: vec![Filter { field, op }], ..Default::default() };
    assert_eq!(s.query_records(&d, &q(1, FilterOp::Eq(Cell::Num(-0.25)))).await.unwrap().len(), 1);
    assert_eq!(s.query_records(&d, &q(3, FilterOp::Eq(Cell::Bool(false)))).await.unwrap().len(), 1);
    let json_eq = q(10, FilterOp::Eq(Cell::json(json!(["a", "b"]))));
    assert_eq!(s.query_records(&d, &json_eq).await.unwrap().len(), 5);
    let dt = q(5, FilterOp::Range(Some(Cell::DateTime(at("2024-05-06T07:08:09.123456Z"))), None));
    assert_eq!(s.query_records(&d, &dt).await.unwrap().len(), 5);
}

/// Without a primary key every row is an insert; a snapshot replaces them all.
pub async fn delivery_without_primary_key<S: Store + DeliveryStore + ?Sized>(s: &S) {
    ensure_org(s, "conf-nokey").await;
    let sc = schema(json!({"fields": [{"name": "a"}, {"name": "b", "type": "integer"}]}));
    let d = dataset("CONF-NOKEY", "conf-nokey", sc.clone());
    s.create_dataset(&d).await.unwrap();
    let rows: Vec<Vec<Cell>> = (0..3).map(|i| vec![txt(&format!("行{i}")), Cell::Int(i)]).collect();
    for (day, expected) in [(1, 3), (2, 6)] {
        let (_, r) =
            deliver(s, &d, DeliveryMode::Incremental, t(day), vec![rows_of(rows.clone()), DeliveryBatch::Commit]).await;
        assert_eq!(r.unwrap(), outcome(3, 0, 0, 0, 0));
        assert_eq!(s.query_records(&d, &RecordQuery::default()).await.unwrap().len(), expected);
    }
    let (id, r) =
        deliver(s, &d, DeliveryMode::Snapshot, t(3), vec![rows_of(rows[..2].to_vec()), DeliveryBatch::Commit]).await;
    assert_eq!(r.unwrap(), outcome(2, 0, 0, 6, 0));
    let current = s.query_records(&d, &RecordQuery::default()).await.unwrap();
    assert_eq!(current.iter().map(|r| r.cells.clone()).collect::<Vec<_>>(), rows[..2].to_vec());
    assert!(current.iter().all(|r| r.delivery_id == Some(id) && r.version == 1));
    let everything = s.query_records(&d, &RecordQuery { include_deleted: true, ..Default::default() }).await.unwrap();
    assert_eq!(everything.len(), 8);
    assert_eq!(s.query_records(&d, &RecordQuery { as_of: Some(t(2)), ..Default::default() }).await.unwrap().len(), 6);
    // Records are named by their surrogate key (paging after it works too).
    let page =
        s.query_records(&d, &RecordQuery { after: Some(vec![Cell::Int(3)]), ..Default::default() }).await.unwrap();
    assert_eq!(page.len(), 2);
    let h = s.record_history(&d, &[Cell::Int(1)]).await.unwrap();
    assert_eq!(h.iter().map(|v| v.op).collect::<Vec<_>>(), [RecordOp::Insert, RecordOp::Delete]);
}

/// `begin_delivery`, `finish_delivery`, `get_delivery`, `list_deliveries`,
/// `fail_interrupted_deliveries`.
pub async fn delivery_reports<S: Store + DeliveryStore + ?Sized>(s: &S) {
    ensure_org(s, "conf-reports").await;
    let d = dataset("CONF-REPORTS", "conf-reports", people_schema());
    s.create_dataset(&d).await.unwrap();
    let other = dataset("CONF-REPORTS-2", "conf-reports", people_schema());
    s.create_dataset(&other).await.unwrap();
    let begin = |ds: &Dataset, mode, when| {
        let nd = new_delivery(ds, mode, when);
        async move { s.begin_delivery(&nd).await.unwrap() }
    };
    let a = begin(&d, DeliveryMode::Snapshot, at("2025-02-01T08:00:00.100001Z")).await;
    let b = begin(&d, DeliveryMode::Incremental, t(2)).await;
    let c = begin(&other, DeliveryMode::Incremental, t(3)).await;
    let running = s.get_delivery(b).await.unwrap().unwrap();
    assert_eq!(running.status, DeliveryStatus::Running);
    assert_eq!(
        (running.mode, running.rows_read, running.finished_at, running.error.clone()),
        (DeliveryMode::Incremental, 0, None, None)
    );
    assert_eq!(
        (running.format.as_str(), running.encoding.as_str(), running.submitted_by.as_str()),
        ("csv", "utf-8", "conf.officer")
    );

    let succeeded = DeliveryReport {
        status: DeliveryStatus::Succeeded,
        rows_read: 10,
        rows_accepted: 8,
        rows_inserted: 5,
        rows_updated: 2,
        rows_unchanged: 1,
        rows_quarantined: 2,
        warnings: 3,
        rows_deleted: 4,
        duration_ms: 1234,
        finished_at: Some(at("2025-02-01T08:00:01.5Z")),
        encoding: "gb18030".into(),
        ..s.get_delivery(a).await.unwrap().unwrap()
    };
    s.finish_delivery(&succeeded).await.unwrap();
    assert_eq!(s.get_delivery(a).await.unwrap().unwrap(), succeeded);
    let failed = DeliveryReport {
        status: DeliveryStatus::Failed,
        rows_read: 7,
        finished_at: Some(t(3)),
        error: Some(DeliveryFailure {
            code: "missing-label".into(),
            message: "no column".into(),
            message_zh: "缺少列".into(),
        }),
        ..running
    };
    s.finish_delivery(&failed).await.unwrap();
    assert_eq!(s.get_delivery(b).await.unwrap().unwrap(), failed);
    assert_eq!(s.get_delivery(i64::MAX).await.unwrap(), None);
    let mut missing = failed.clone();
    missing.id = i64::MAX;
    assert!(matches!(s.finish_delivery(&missing).await, Err(StoreError::NotFound { .. })));

    let ids = |v: Vec<DeliveryReport>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let list = |q: DeliveryQuery| async move { s.list_deliveries(&q).await.unwrap() };
    assert_eq!(ids(list(DeliveryQuery { dataset: Some(d.code.clone()), ..Default::default() }).await), [b, a]);
    let by_status =
        DeliveryQuery { dataset: Some(d.code.clone()), status: Some(DeliveryStatus::Succeeded), ..Default::default() };
    assert_eq!(ids(list(by_status).await), [a]);
    let page = DeliveryQuery { dataset: Some(d.code.clone()), before_id: Some(b), limit: 1, ..Default::default() };
    assert_eq!(ids(list(page).await), [a]);
    let newest = list(DeliveryQuery { limit: 2, ..Default::default() }).await;
    assert_eq!(ids(newest.clone()), [c, b]);
    assert!(list(DeliveryQuery::default()).await.windows(2).all(|w| w[0].id > w[1].id));

    // Start-up after a crash: running deliveries fail as interrupted.
    let when = at("2025-03-01T00:00:00Z");
    assert!(s.fail_interrupted_deliveries(when).await.unwrap() >= 1);
    let r = s.get_delivery(c).await.unwrap().unwrap();
    assert_eq!(r.status, DeliveryStatus::Failed);
    assert_eq!(r.finished_at, Some(when));
    let e = r.error.unwrap();
    assert_eq!(e.code, "interrupted");
    assert!(e.message.contains("nothing") && e.message_zh.contains("重新交付"), "{e:?}");
    assert_eq!(s.get_delivery(a).await.unwrap().unwrap(), succeeded, "finished deliveries are untouched");
    assert_eq!(s.fail_interrupted_deliveries(when).await.unwrap(), 0);
    let running = DeliveryQuery { status: Some(DeliveryStatus::Running), ..Default::default() };
    assert!(list(running).await.is_empty());
}

/// The sharing responsibility list.
pub async fn responsibilities<S: Store + DeliveryStore + ?Sized>(s: &S) {
    ensure_org(s, "conf-resp-b").await;
    ensure_org(s, "conf-resp-a").await;
    let mk = |code: &str, org: &str| Responsibility {
        dataset: dc(code),
        org: oc(org),
        cycle: UpdateCycle::Monthly,
        note: Some("按月报送".into()),
        created_by: "conf.admin".into(),
        created_at: at("2025-01-01T00:00:00.5Z"),
    };
    for code in ["CONF-RESP-1", "CONF-RESP-2", "CONF-RESP-3"] {
        s.create_dataset(&dataset(code, "conf-resp-a", people_schema())).await.unwrap();
    }
    let r1 = mk("CONF-RESP-1", "conf-resp-b");
    let r2 = mk("CONF-RESP-2", "conf-resp-a");
    let mut r3 = mk("CONF-RESP-3", "conf-resp-a");
    r3.note = None;
    r3.cycle = UpdateCycle::Realtime;
    for r in [&r1, &r2, &r3] {
        s.put_responsibility(r).await.unwrap();
    }
    let mine = |v: Vec<Responsibility>| {
        v.into_iter().filter(|r| r.dataset.as_str().starts_with("CONF-RESP-")).collect::<Vec<_>>()
    };
    assert_eq!(mine(s.list_responsibilities().await.unwrap()), vec![r2.clone(), r3.clone(), r1.clone()]);
    // Upsert by dataset.
    let mut moved = r1.clone();
    moved.org = oc("conf-resp-a");
    moved.cycle = UpdateCycle::Weekly;
    s.put_responsibility(&moved).await.unwrap();
    assert_eq!(mine(s.list_responsibilities().await.unwrap()), vec![moved.clone(), r2.clone(), r3.clone()]);
    assert!(s.delete_responsibility(&r2.dataset).await.unwrap());
    assert!(!s.delete_responsibility(&r2.dataset).await.unwrap());
    assert_eq!(mine(s.list_responsibilities().await.unwrap()), vec![moved, r3]);
}

/// Delivery statistics per catalog dataset.
pub async fn stats<S: Store + DeliveryStore + ?Sized>(s: &S) {
    ensure_org(s, "conf-stats").await;
    let d = dataset("CONF-STATS", "conf-stats", people_schema());
    s.create_dataset(&d).await.unwrap();
    let never = dataset("CONF-STATS-NEVER", "conf-stats", people_schema());
    s.create_dataset(&never).await.unwrap();
    let (a, r) = deliver(
        s,
        &d,
        DeliveryMode::Snapshot,
        t(1),
        vec![rows_of((1..=4).map(|i| person(i, "x", 0.0)).collect()), DeliveryBatch::Commit],
    )
    .await;
    r.unwrap();
    let mut report = s.get_delivery(a).await.unwrap().unwrap();
    report.status = DeliveryStatus::Succeeded;
    report.rows_read = 5;
    report.rows_quarantined = 1;
    report.finished_at = Some(t(2));
    s.finish_delivery(&report).await.unwrap();
    let (b, r) = deliver(
        s,
        &d,
        DeliveryMode::Snapshot,
        t(3),
        vec![rows_of((1..=3).map(|i| person(i, "x", 0.0)).collect()), DeliveryBatch::Commit],
    )
    .await;
    assert_eq!(r.unwrap().deleted, 1);
    let mut failed = s.get_delivery(b).await.unwrap().unwrap();
    failed.status = DeliveryStatus::Failed;
    failed.rows_read = 2;
    failed.finished_at = Some(t(4));
    s.finish_delivery(&failed).await.unwrap();

    let all = s.delivery_stats().await.unwrap();
    assert!(all.windows(2).all(|w| w[0].dataset < w[1].dataset), "stats ordered by dataset");
    let get = |code: &str| all.iter().find(|x| x.dataset.as_str() == code).cloned().unwrap();
    assert_eq!(
        get("CONF-STATS"),
        DeliveryStats {
            dataset: dc("CONF-STATS"),
            deliveries: 2,
            failed: 1,
            last_delivery_at: Some(t(3)),
            last_success_at: Some(t(2)),
            rows_read: 7,
            rows_quarantined: 1,
            record_count: 3,
        }
    );
    assert_eq!(
        get("CONF-STATS-NEVER"),
        DeliveryStats {
            dataset: dc("CONF-STATS-NEVER"),
            deliveries: 0,
            failed: 0,
            last_delivery_at: None,
            last_success_at: None,
            rows_read: 0,
            rows_quarantined: 0,
            record_count: 0,
        }
    );
}

/// 20,000 rows in batches of 5,000, applied then re-applied unchanged; prints rows/s.
pub async fn large_delivery<S: Store + DeliveryStore + ?Sized>(s: &S) {
    ensure_org(s, "conf-large").await;
    let sc = schema(json!({
        "fields": [
            {"name": "sfzh"}, {"name": "xm"}, {"name": "nl", "type": "integer"}, {"name": "sg", "type": "number"},
            {"name": "csrq", "type": "date"}, {"name": "hy", "type": "boolean"}, {"name": "dz"},
            {"name": "djsj", "type": "datetime"}
        ],
        "primaryKey": "sfzh"
    }));
    let d = dataset("CONF-LARGE", "conf-large", sc.clone());
    s.create_dataset(&d).await.unwrap();
    const N: u64 = 20_000;
    const BATCH: u64 = 5_000;
    let make = |changed: u64| -> Vec<DeliveryBatch> {
        let mut out: Vec<DeliveryBatch> = (0..N / BATCH)
            .map(|b| {
                DeliveryBatch::Rows(
                    (b * BATCH..(b + 1) * BATCH)
                        .map(|i| {
                            // Keys arrive in scrambled order; the store sorts each batch.
                            let k = (i * 7919) % N;
                            let name = if k < changed { format!("新姓名{k}") } else { format!("姓名{k}") };
                            valid_row(
                                i + 1,
                                vec![
                                    txt(&format!("3204021990{k:08}")),
                                    txt(&name),
                                    Cell::Int((k % 100) as i64),
                                    Cell::Num(150.0 + (k % 50) as f64 / 2.0),
                                    Cell::Date(
                                        NaiveDate::from_ymd_opt(1990, 1, 1).unwrap()
                                            + Duration::days((k % 10000) as i64),
                                    ),
                                    Cell::Bool(k & 1 == 0),
                                    txt(&format!("江苏省常州市天宁区某某路{k}号")),
                                    Cell::DateTime(at("2024-01-01T00:00:00Z") + Duration::seconds(k as i64)),
                                ],
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        out.push(DeliveryBatch::Commit);
        out
    };
    let dr = &d;
    let timed = |when, batches| async move {
        let start = std::time::Instant::now();
        let (_, r) = deliver(s, dr, DeliveryMode::Snapshot, when, batches).await;
        (r.unwrap(), start.elapsed())
    };
    let (first, t_first) = timed(t(1), make(0)).await;
    assert_eq!(first, outcome(N, 0, 0, 0, 0));
    let (again, t_again) = timed(t(2), make(0)).await;
    assert_eq!(again, outcome(0, 0, N, 0, 0));
    let (changed, t_changed) = timed(t(3), make(1000)).await;
    assert_eq!(changed, outcome(0, 1000, N - 1000, 0, 0));
    let rate = |d: std::time::Duration| N as f64 / d.as_secs_f64().max(1e-9);
    eprintln!(
        "[{}] 20k rows: first {:.0} rows/s ({:?}), unchanged {:.0} rows/s ({:?}), 5% changed {:.0} rows/s ({:?})",
        s.backend().as_str(),
        rate(t_first),
        t_first,
        rate(t_again),
        t_again,
        rate(t_changed),
        t_changed
    );
    let page = s.query_records(&d, &RecordQuery { limit: 3, ..Default::default() }).await.unwrap();
    assert_eq!(page[0].cells[0], txt("320402199000000000"));
    assert_eq!(page[0].version, 2);
    assert_eq!(s.record_history(&d, &[txt("320402199000000999")]).await.unwrap().len(), 2);
    assert_eq!(s.record_history(&d, &[txt("320402199000001000")]).await.unwrap().len(), 1);
}
