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
pub fn print_banner(url: &str, seeded_now: bool) {
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
    println!("  API: {url}/api/v1/openapi.json · 健康检查 health: {url}/healthz");
    println!();
}
