//! Loading the demo city into a store through the same services the API uses.
//! Idempotent: what exists already is left alone, so an interrupted first start
//! simply completes on the next one.

use crate::demo;
use anyhow::Result;
use govhub_core::authz::Principal;
use govhub_core::input::{NewDataset, NewOrg, NewUser, UserInput};
use govhub_core::names::Username;
use govhub_core::service::{Ctx, Hub};

const SEEDED_KEY: &str = "demo.seeded";
const SEED_VERSION: &str = "1";

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
