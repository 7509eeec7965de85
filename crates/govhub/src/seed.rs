//! Loading the demo city into a store through the same services the API uses.
//! Idempotent: what exists already is left alone, so an interrupted first start
//! simply completes on the next one.

use crate::demo;
use anyhow::Result;
use govhub_core::authz::Principal;
use govhub_core::clock::ManualClock;
use govhub_core::deliver::{DeliverOptions, DeliveryProgress};
use govhub_core::delivery::DeliveryMode;
use govhub_core::input::{NewDataset, NewOrg, NewUser, UserInput};
use govhub_core::model::UpdateCycle;
use govhub_core::names::Username;
use govhub_core::service::{Ctx, Hub};
use std::sync::Arc;

const SEEDED_KEY: &str = "demo.seeded";
const SEED_VERSION: &str = "1";
const FILLED_KEY: &str = "demo.filled";
const SHARED_KEY: &str = "demo.shared";
const LICENSED_KEY: &str = "demo.licences";
/// The seed of the demo city's rows: the same city every time.
const ROWS_SEED: u64 = 320400;
/// The department whose data is overdue in the demo (delivered ten days ago, daily).
const LATE_DATASET: &str = demo::PWXK;
/// A dataset on the responsibility list that was never delivered.
const NEVER_DATASET: &str = "swj-nssb";

fn domain(what: &str, e: govhub_core::Error) -> anyhow::Error {
    anyhow::anyhow!("demo city: {what}: {} [{}]", e.message, e.code)
}

/// Create the demo city unless it is there. Returns true when it was created now.
pub async fn ensure_demo_city(hub: &Hub) -> Result<bool> {
    if hub.get_meta(SEEDED_KEY).await.map_err(|e| domain("meta", e))?.is_some() {
        return Ok(false);
    }
    let system = Principal::system();
    let ctx = Ctx { request_id: Some("demo-seed".into()) };
    let store = hub.store();
    for input in demo::orgs() {
        let org = NewOrg::try_from(input).map_err(|e| domain("org", e))?;
        if store.get_org(&org.code).await?.is_none() {
            let code = org.code.to_string();
            hub.create_org(&system, org, &ctx).await.map_err(|e| domain(&code, e))?;
        }
    }
    for a in demo::accounts() {
        let username = Username::parse(a.username).map_err(|e| domain(a.username, e))?;
        if store.get_user_by_username(&username).await?.is_some() {
            continue;
        }
        let input = UserInput {
            username: a.username.to_string(),
            password: a.password.to_string(),
            role: a.role.to_string(),
            org: a.org.map(str::to_string),
            display_name: Some(a.display_name.to_string()),
            subject_id: a.subject_id.clone(),
        };
        let user = NewUser::try_from(input).map_err(|e| domain(a.username, e))?;
        hub.create_user(&system, user, &ctx).await.map_err(|e| domain(a.username, e))?;
    }
    for input in demo::datasets() {
        let code = input.code.clone();
        let d = NewDataset::try_from(input).map_err(|e| domain(&code, e))?;
        if store.get_dataset(&d.code).await?.is_some() {
            continue;
        }
        hub.create_dataset(&system, d, &ctx).await.map_err(|e| domain(&code, e))?;
    }
    hub.set_meta(SEEDED_KEY, SEED_VERSION).await.map_err(|e| domain("meta", e))?;
    Ok(true)
}

/// Fill the demo datasets with rows through the real delivery path (once), set up the
/// responsibility list, and leave one department overdue and one dataset never
/// delivered, so the compliance view has something to show.
pub async fn ensure_demo_data(hub: &Hub, people: usize) -> Result<bool> {
    if hub.get_meta(FILLED_KEY).await.map_err(|e| domain("meta", e))?.is_some() {
        return Ok(false);
    }
    let system = Principal::system();
    let ctx = Ctx { request_id: Some("demo-fill".into()) };
    let deliveries = demo::deliveries(ROWS_SEED, people);
    let total: u64 = deliveries.iter().map(|d| d.rows).sum();
    println!(
        "  正在生成演示数据 Filling the demo city: {people} residents, {total} rows in {} datasets…",
        deliveries.len()
    );
    for d in deliveries {
        // The overdue department delivered ten days ago.
        let late = d.dataset == LATE_DATASET;
        let by = if late {
            Hub::new(
                hub.store().clone(),
                Arc::new(ManualClock::new(hub.clock().now() - chrono::Duration::days(10))),
                hub.settings().clone(),
            )
        } else {
            hub.clone()
        };
        let opts = DeliverOptions {
            format: govhub_ingest::Format::Csv,
            encoding: None,
            sheet: None,
            mode: DeliveryMode::Incremental,
            file_name: Some(format!("{}.csv", d.dataset)),
            max_bytes: u64::MAX,
            stage_in: None,
        };
        let started = std::time::Instant::now();
        let report = by
            .deliver(&system, d.dataset, d.csv, opts, Arc::new(DeliveryProgress::default()), &ctx)
            .await
            .map_err(|e| domain(d.dataset, e))?;
        if let Some(err) = &report.error {
            anyhow::bail!("demo city: delivering {} failed: {} [{}]", d.dataset, err.message, err.code);
        }
        println!(
            "    {:<14} {:>9} rows, {:>5} quarantined, {:>6.1} s",
            d.dataset,
            report.rows_read,
            report.rows_quarantined,
            started.elapsed().as_secs_f64()
        );
    }
    for input in demo::datasets() {
        let cycle = UpdateCycle::parse(&input.update_cycle).map_err(|e| domain(&input.code, e))?;
        let note = (input.code == NEVER_DATASET).then(|| "演示：尚未交付 / demo: never delivered".to_string());
        hub.put_responsibility(&system, &input.code, cycle, note, &ctx).await.map_err(|e| domain(&input.code, e))?;
    }
    hub.set_meta(FILLED_KEY, &people.to_string()).await.map_err(|e| domain("meta", e))?;
    Ok(true)
}

/// The demo's apps and access requests (see `demo::sharing`): granted at once,
/// approved with fewer fields, pending, pending and overdue (filed 20 days ago with an
/// injected clock), refused, and revoked. Filed and decided as the demo's developers
/// and approvers through the real services; no app token is issued (tokens are secrets).
/// An app that exists already is left alone with its requests.
pub async fn ensure_demo_sharing(hub: &Hub) -> Result<bool> {
    use demo::sharing::{Outcome, APPS, REQUESTS};
    use govhub_core::sharing::{AccessRequestInput, AppInput, DecisionInput};
    if hub.get_meta(SHARED_KEY).await.map_err(|e| domain("meta", e))?.is_some() {
        return Ok(false);
    }
    let ctx = Ctx { request_id: Some("demo-sharing".into()) };
    let store = hub.store();
    let person = |username: &'static str| async move {
        let name = Username::parse(username).map_err(|e| domain(username, e))?;
        let user = store.get_user_by_username(&name).await?;
        user.map(|u| Principal::from_user(&u)).ok_or_else(|| anyhow::anyhow!("demo city: no account {username}"))
    };
    let now = hub.clock().now();
    for (i, a) in APPS.iter().enumerate() {
        let dev = person(a.developer).await?;
        let existing = hub.list_apps(&dev, Some(a.org), &ctx).await.map_err(|e| domain(a.name, e))?;
        if existing.iter().any(|x| x.name == a.name) {
            continue;
        }
        let input = AppInput { name: a.name.to_string(), org: a.org.to_string() };
        let app = hub.create_app(&dev, input, &ctx).await.map_err(|e| domain(a.name, e))?;
        for r in REQUESTS.iter().filter(|r| r.app == i) {
            // Filed `days_ago` days before now: a hub whose clock stands then.
            let then = now - chrono::Duration::days(r.days_ago);
            let filer = Hub::new(store.clone(), Arc::new(ManualClock::new(then)), hub.settings().clone());
            let input = AccessRequestInput {
                app: app.id,
                dataset: r.dataset.to_string(),
                fields: r.fields.iter().map(|f| f.to_string()).collect(),
                clear_fields: r.clear_fields.iter().map(|f| f.to_string()).collect(),
                purpose: r.purpose.to_string(),
                legal_basis: r.legal_basis.to_string(),
                valid_until: govhub_core::sharing::china_date(then) + chrono::Duration::days(r.days_valid),
            };
            let filed = filer.request_access(&dev, input, &ctx).await.map_err(|e| domain(r.dataset, e))?;
            let decision = |approve: bool, fields: Option<&[&str]>, reason: &str| DecisionInput {
                approve,
                fields: fields.map(|f| f.iter().map(|x| x.to_string()).collect()),
                clear_fields: None,
                valid_until: None,
                reason: reason.to_string(),
            };
            match r.outcome {
                Outcome::Automatic | Outcome::Pending => {}
                Outcome::Approved { approver, fields, reason } => {
                    let by = person(approver).await?;
                    hub.decide_access(&by, filed.id, decision(true, fields, reason), &ctx)
                        .await
                        .map_err(|e| domain(r.dataset, e))?;
                }
                Outcome::Refused { approver, reason } => {
                    let by = person(approver).await?;
                    hub.decide_access(&by, filed.id, decision(false, None, reason), &ctx)
                        .await
                        .map_err(|e| domain(r.dataset, e))?;
                }
                Outcome::Revoked { approver, reason } => {
                    let grant =
                        filed.grant_id.ok_or_else(|| anyhow::anyhow!("demo city: {} not granted", r.dataset))?;
                    let by = person(approver).await?;
                    hub.revoke_grant(&by, grant, Some(reason.to_string()), &ctx)
                        .await
                        .map_err(|e| domain(r.dataset, e))?;
                }
            }
        }
        if a.reads_demo_citizen {
            // The app reads the demo citizen's record through the consumer API's own
            // path (grant, masking, audit), so the citizen's "who read my data" shows it.
            let citizen = demo::demo_citizen().id_number.to_string();
            hub.share_record(&app.principal(), demo::HJRK, &citizen, None, &ctx)
                .await
                .map_err(|e| domain(a.name, e))?;
        }
    }
    hub.set_meta(SHARED_KEY, "1").await.map_err(|e| domain("meta", e))?;
    Ok(true)
}

/// What `govhub demo` prints on start: where to go and who to be.
pub fn print_banner(url: &str, seeded_now: bool, licences: &DemoLicences) {
    let orgs = demo::orgs();
    let org_name = |code: &str| orgs.iter().find(|o| o.code == code).map(|o| o.name.clone()).unwrap_or_default();
    println!();
    println!("  govhub 演示城市 · 常州市 (320400){}", if seeded_now { " — 已生成 / generated" } else { "" });
    println!("  打开 Open: {url}");
    println!();
    println!("  演示账号 Demo accounts (用户名 / 密码 / 角色 / 机构):");
    for a in demo::accounts() {
        let org = a.org.map(org_name).unwrap_or_default();
        println!("    {:<16} {:<12} {:<16} {}", a.username, a.password, a.role, org);
    }
    println!();
    if !licences.valid.is_empty() {
        println!(
            "  电子证照 E-licences ({} issued; `enterprise` sees its 营业执照 with its QR code on {url}/me):",
            licences.issued
        );
        for (state, id) in [
            ("有效 valid", &licences.valid),
            ("暂停 suspended", &licences.suspended),
            ("注销 revoked", &licences.revoked),
            ("过期 expired", &licences.expired),
        ] {
            if !id.is_empty() {
                println!("    {state:<16} {url}/verify/{id}");
            }
        }
        println!();
    }
    println!("  API: {url}/api/v1/openapi.json · 健康检查 health: {url}/healthz");
    println!();
}

/// The demo licences worth opening on the verify page, one per state.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct DemoLicences {
    /// Licences issued in total.
    pub issued: usize,
    /// The demo enterprise's 营业执照 (valid; shown on its /me page).
    pub valid: String,
    pub suspended: String,
    pub revoked: String,
    pub expired: String,
}

async fn demo_principal(hub: &Hub, username: &'static str) -> Result<Principal> {
    let name = Username::parse(username).map_err(|e| domain(username, e))?;
    let user = hub.store().get_user_by_username(&name).await?;
    user.map(|u| Principal::from_user(&u)).ok_or_else(|| anyhow::anyhow!("demo city: no account {username}"))
}

/// Define the demo's six licence types, each by its authority's officer, and issue,
/// suspend and revoke licences through the real services (`demo::licences`):
/// 营业执照 to registered enterprises (the demo enterprise first), 食品经营许可证 (one
/// suspended, one expired), 排污许可证, 居住证 and 社会保障卡 to the demo citizen (and
/// social security cards to a few more residents), and 出生医学证明 to her child; the
/// 营业执照 of a deregistered enterprise is revoked. Runs once (`demo.licences` in meta);
/// returns the licences to show.
pub async fn ensure_demo_licences(hub: &Hub, people: usize) -> Result<DemoLicences> {
    use demo::licences::{licence_types, CSYXZM, JZZ, PWXK, SBK, SPJY, YYZZ};
    use govhub_core::licence_service::{LicenceInput, LicenceTypeInput, StatusInput};
    use serde_json::json;
    if let Some(saved) = hub.get_meta(LICENSED_KEY).await.map_err(|e| domain("meta", e))? {
        return Ok(serde_json::from_str(&saved).unwrap_or_default());
    }
    let ctx = Ctx { request_id: Some("demo-licences".into()) };
    let system = Principal::system();
    // The types, each defined by its authority's officer (kept if they exist).
    let existing = hub.list_licence_types(&system, &ctx).await.map_err(|e| domain("licence types", e))?;
    let mut codes = std::collections::HashMap::new();
    let mut officers = std::collections::HashMap::new();
    for t in licence_types() {
        let officer = demo_principal(hub, t.officer).await?;
        let code = match existing.iter().find(|x| x.authority.as_str() == t.authority && x.name == t.name) {
            Some(x) => x.code.clone(),
            None => {
                let input = LicenceTypeInput {
                    name: t.name.to_string(),
                    authority: None,
                    holder_kind: t.holder_kind.to_string(),
                    schema: t.schema.clone(),
                    seq: None,
                };
                hub.create_licence_type(&officer, input, &ctx).await.map_err(|e| domain(t.name, e))?.code
            }
        };
        codes.insert(t.key, code);
        officers.insert(t.key, officer);
    }
    let today = govhub_core::sharing::china_date(hub.clock().now());
    let mut out = DemoLicences::default();
    // Issue one licence unless the holder has one of that type already; its id.
    let issue = |key: &'static str, holder: String, name: String, fields: serde_json::Value, from, until| {
        let (codes, officers, ctx) = (&codes, &officers, &ctx);
        async move {
            let (Some(code), Some(by)) = (codes.get(key), officers.get(key)) else {
                anyhow::bail!("demo city: no licence type {key}");
            };
            let held = hub.list_licences(by, &holder, ctx).await.map_err(|e| domain(key, e))?;
            if let Some(l) = held.iter().find(|l| &l.type_code == code) {
                return Ok::<_, anyhow::Error>(l.id.as_str().to_string());
            }
            let fields = match fields {
                serde_json::Value::Object(m) => m,
                _ => serde_json::Map::new(),
            };
            let input = LicenceInput {
                type_code: code.clone(),
                holder_code: holder,
                holder_name: name,
                fields,
                valid_from: chrono::NaiveDate::to_string(&from),
                valid_until: chrono::NaiveDate::to_string(&until),
                issuer: None,
            };
            let l = hub.issue_licence(by, input, ctx).await.map_err(|e| domain(key, e))?;
            Ok(l.id.as_str().to_string())
        }
    };
    let set_status = |key: &'static str, id: String, status: &'static str, reason: &'static str| {
        let (officers, ctx) = (&officers, &ctx);
        async move {
            let by = officers.get(key).ok_or_else(|| anyhow::anyhow!("demo city: no officer for {key}"))?;
            let input = StatusInput { status: status.to_string(), reason: reason.to_string() };
            hub.set_licence_status(by, &id, input, ctx).await.map_err(|e| domain(key, e))?;
            Ok::<_, anyhow::Error>(id)
        }
    };
    let years = |d: chrono::NaiveDate, n: u32| d.checked_add_months(chrono::Months::new(12 * n)).unwrap_or(d);
    let day_before = |d: chrono::NaiveDate| d.pred_opt().unwrap_or(d);

    // 营业执照: the demo enterprise and the register's first active enterprises; the first
    // deregistered or struck-off one gets its licence revoked.
    let register = demo::registered_enterprises(ROWS_SEED, people, 400);
    let active = |e: &&demo::Enterprise| matches!(e.status, "存续" | "在业");
    let mut licensed: Vec<&demo::Enterprise> = register.iter().filter(active).take(16).collect();
    let closed = register.iter().find(|e| matches!(e.status, "注销" | "吊销"));
    licensed.extend(closed);
    let mut last_yyzz = String::new();
    for e in &licensed {
        let fields = json!({
            "lx": e.kind, "fddbr": e.legal_representative, "zczb": e.registered_capital,
            "clrq": e.established.to_string(), "zs": e.address, "jyfw": e.industry.scope,
        });
        let id = issue(
            YYZZ,
            e.uscc.to_string(),
            e.name.clone(),
            fields,
            e.established,
            day_before(years(e.established, 30)),
        )
        .await?;
        out.issued += 1;
        if out.valid.is_empty() {
            out.valid = id.clone();
        }
        last_yyzz = id.clone();
        if closed.is_some_and(|c| c.uscc == e.uscc) {
            let reason = if e.status == "吊销" {
                "营业执照被依法吊销（演示） / business licence withdrawn (demo)"
            } else {
                "企业已办理注销登记，营业执照缴销（演示） / enterprise deregistered (demo)"
            };
            out.revoked = set_status(YYZZ, id, "revoked", reason).await?;
        }
    }
    // A city too small to have a closed enterprise: its last licence is cancelled.
    if out.revoked.is_empty() && last_yyzz != out.valid {
        let reason = "企业申请注销登记，营业执照缴销（演示） / enterprise deregistered (demo)";
        out.revoked = set_status(YYZZ, last_yyzz, "revoked", reason).await?;
    }

    // 食品经营许可证 (5 years): food and catering businesses; one suspended, one expired.
    let food: Vec<&demo::Enterprise> = register
        .iter()
        .filter(active)
        .filter(|e| matches!(e.industry.label, "餐饮管理" | "商贸" | "医药"))
        .take(4)
        .collect();
    for (i, e) in food.iter().enumerate() {
        let catering = e.industry.label == "餐饮管理";
        let fields = json!({
            "xkzbh": format!("JY{}{}{:07}", if catering { 2 } else { 1 }, e.district.code, 1_000 + i),
            "fddbr": e.legal_representative, "jycs": e.address,
            "ztyt": if catering { "餐饮服务经营者" } else { "食品销售经营者" },
            "jyxm": if catering { "热食类食品制售；冷食类食品制售" } else { "预包装食品（含冷藏冷冻食品）销售；保健食品销售" },
        });
        // The last one is an old certificate that has run out.
        let (from, until) = if i + 1 == food.len() && food.len() > 1 {
            let from = today.checked_sub_months(chrono::Months::new(12 * 6)).unwrap_or(today);
            (from, day_before(years(from, 5)))
        } else {
            let from = today.checked_sub_months(chrono::Months::new(7 + i as u32)).unwrap_or(today);
            (from, day_before(years(from, 5)))
        };
        let id = issue(SPJY, e.uscc.to_string(), e.name.clone(), fields, from, until).await?;
        out.issued += 1;
        if until < today {
            out.expired = id;
        } else if i == 1 || (food.len() == 1 && out.suspended.is_empty()) {
            out.suspended = set_status(
                SPJY,
                id,
                "suspended",
                "食品安全监督抽检不合格，责令停业整改（演示） / failed a food safety inspection (demo)",
            )
            .await?;
        }
    }

    // 排污许可证 (5 years): the demo enterprise and manufacturers.
    let plants = register.iter().filter(active).filter(|e| e.industry.section == "C").take(4);
    for (i, e) in plants.enumerate() {
        let fields = json!({
            "xkzbh": format!("{}001{}", e.uscc, if i % 2 == 0 { 'U' } else { 'V' }),
            "hylb": format!("{}（{}）", e.industry.section_name, e.industry.label),
            "scjycsdz": e.address,
            "zywrwlb": if i % 2 == 0 { "废气，废水" } else { "废气" },
            "glfl": if i % 2 == 0 { "简化管理" } else { "重点管理" },
        });
        let from = today.checked_sub_months(chrono::Months::new(3 + 5 * i as u32)).unwrap_or(today);
        issue(PWXK, e.uscc.to_string(), e.name.clone(), fields, from, day_before(years(from, 5))).await?;
        out.issued += 1;
    }

    // The demo citizen: 居住证 (1 year, 新北区) and 社会保障卡 (10 years); more cards.
    let residents = demo::registered_people(ROWS_SEED, people, 6);
    if let Some(p) = residents.first() {
        let from = today.checked_sub_months(chrono::Months::new(2)).unwrap_or(today);
        let fields = json!({
            "xb": p.gender.label_zh(), "csrq": p.birth_date.to_string(), "hjdz": p.address,
            "jzdz": "常州市新北区太湖东路9号4幢1102室", "qzjg": "常州市公安局新北分局",
        });
        issue(JZZ, p.id_number.to_string(), p.name.clone(), fields, from, day_before(years(from, 1))).await?;
        out.issued += 1;
    }
    for (i, p) in residents.iter().enumerate() {
        let from = today.checked_sub_months(chrono::Months::new(5 + 11 * i as u32)).unwrap_or(today);
        let fields = json!({
            "shbzhm": p.id_number.to_string(), "kh": format!("E{:08}", 40_126_310 + 7 * i),
            "xb": p.gender.label_zh(), "fkrq": from.to_string(),
        });
        issue(SBK, p.id_number.to_string(), p.name.clone(), fields, from, day_before(years(from, 10))).await?;
        out.issued += 1;
    }

    // 出生医学证明 of the demo citizen's son, born at the city's maternity hospital.
    let mother = demo::demo_citizen();
    let born = chrono::NaiveDate::from_ymd_opt(2024, 5, 20).unwrap_or(today);
    if let Some(child) = govhub_core::standards::IdNumber::compose("320402", born, 287) {
        let fields = json!({
            "bh": "Q320018437", "xb": "男", "cssj": "2024-05-20 08:42", "csdd": "江苏省常州市天宁区",
            "mqxm": mother.name, "mqsfzh": mother.id_number.to_string(), "fqxm": "李志强",
            "jsjg": "常州市妇幼保健院",
        });
        issue(CSYXZM, child.to_string(), "李沐阳".into(), fields, born, years(born, 100)).await?;
        out.issued += 1;
    }

    // Reuse instead of paper copies: 人社局's app reads the demo citizen's 居住证.
    if let Some(code) = codes.get(JZZ) {
        share_demo_licence(hub, code, &ctx).await?;
    }

    let saved = serde_json::to_string(&out)?;
    hub.set_meta(LICENSED_KEY, &saved).await.map_err(|e| domain("meta", e))?;
    Ok(out)
}

/// 人社局's app (demo sharing) asks 公安局 for the 居住证 library with
/// `POST /api/v1/access-requests`' service, 公安局's approver grants it, and the app
/// reads the demo citizen's 居住证 through the consumer API's own path (grant, masking,
/// audit), so the citizen's "who read my data" shows the department and the purpose.
async fn share_demo_licence(hub: &Hub, type_code: &str, ctx: &Ctx) -> Result<()> {
    use govhub_core::sharing::{AccessRequestInput, DecisionInput};
    let Some(a) = demo::sharing::APPS.iter().find(|a| a.reads_demo_citizen) else {
        return Ok(());
    };
    let dev = demo_principal(hub, a.developer).await?;
    let apps = hub.list_apps(&dev, Some(a.org), ctx).await.map_err(|e| domain(a.name, e))?;
    let Some(app) = apps.into_iter().find(|x| x.name == a.name) else {
        return Ok(());
    };
    let fields = ["licence_id", "type_name", "holder_name", "holder_code", "issuer_name", "valid_from", "valid_until"];
    let input = AccessRequestInput {
        app: app.id,
        dataset: govhub_core::licence_share::licence_dataset_code(type_code),
        fields: fields.iter().chain(&["status", "jzdz"]).map(|f| f.to_string()).collect(),
        clear_fields: Vec::new(),
        purpose: "社保待遇资格认证：核验参保人在本市的居住登记（居住证）状态，免交纸质证明".into(),
        legal_basis: "《居住证暂行条例》第十二条；《中华人民共和国社会保险法》第七十三条".into(),
        valid_until: govhub_core::sharing::china_date(hub.clock().now()) + chrono::Duration::days(365),
    };
    let filed = hub.request_access(&dev, input, ctx).await.map_err(|e| domain("居住证", e))?;
    let approver = demo_principal(hub, "gaj-approver").await?;
    let decision = DecisionInput {
        approve: true,
        fields: None,
        clear_fields: None,
        valid_until: None,
        reason: "同意在资格认证范围内核验居住证状态（演示）".into(),
    };
    hub.decide_access(&approver, filed.id, decision, ctx).await.map_err(|e| domain("居住证", e))?;
    let citizen = demo::demo_citizen().id_number.to_string();
    hub.share_licences(&app.principal(), &citizen, type_code, None, ctx).await.map_err(|e| domain("居住证", e))?;
    Ok(())
}
