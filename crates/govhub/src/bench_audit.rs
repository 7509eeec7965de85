//! `govhub bench audit`: durable audit appends per second with 1 caller and with many
//! concurrent callers, on a fresh SQLite store (its audit file is committed with
//! `synchronous = FULL`) and, when given a server, a fresh PostgreSQL database. Each
//! append returns only once its entry is committed; with many callers the store's
//! writer commits what queued up meanwhile in one transaction (group commit), which is
//! the gain this measures.

use anyhow::{Context, Result};
use chrono::Utc;
use govhub_core::model::{NewAuditEvent, Outcome, Role};
use govhub_core::names::OrgCode;
use govhub_core::store::Store;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

pub struct AuditBench {
    /// Appends per concurrency level.
    pub entries: usize,
    /// Concurrency levels (callers appending at once).
    pub callers: Vec<usize>,
    pub postgres: Option<String>,
    /// Where the SQLite files go (default: a temporary directory). Use a disk, not a
    /// tmpfs: the point is the cost of making each commit durable.
    pub dir: Option<PathBuf>,
}

fn event(caller: usize, i: usize) -> Result<NewAuditEvent> {
    Ok(NewAuditEvent {
        at: Utc::now(),
        actor: format!("bench-app-{caller}"),
        actor_role: Some(Role::AppDeveloper),
        actor_org: Some(OrgCode::parse("cz-rsj")?),
        on_behalf_of: None,
        action: "share.read".into(),
        target: "ga-hjrk".into(),
        outcome: Outcome::Allowed,
        detail: serde_json::json!({"key": format!("32040219900101{:04}", i % 10_000), "fields": ["xm", "xb", "csrq"]}),
        request_id: Some(format!("{caller:04}-{i:08}")),
        app: Some("rsj-shebao".into()),
        purpose: Some("社会保障待遇资格认证".into()),
        rows: Some(1),
        subjects: vec![format!("3204021990010{:05}", i % 100_000)],
    })
}

/// `entries` appends spread over `callers` tasks; returns (seconds, appends/s).
async fn run(store: Arc<dyn Store>, entries: usize, callers: usize) -> Result<(f64, f64)> {
    let per = entries.div_ceil(callers);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(callers);
    for c in 0..callers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                store.append_audit(&event(c, i)?).await.map_err(|e| anyhow::anyhow!("append: {e}"))?;
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok((secs, (per * callers) as f64 / secs.max(1e-9)))
}

async fn measure(label: &str, url: &str, b: &AuditBench) -> Result<Vec<(usize, f64, f64)>> {
    let store = govhub_store::open(url).await.map_err(|e| anyhow::anyhow!("opening {label}: {e}"))?;
    // Warm up (connections, statements, file growth).
    run(store.clone(), 200, 8).await?;
    let mut out = Vec::new();
    for &callers in &b.callers {
        let (secs, rate) = run(store.clone(), b.entries, callers).await?;
        println!("  {label:<10} {callers:>4} callers  {:>8} appends  {secs:>7.2} s  {rate:>10.0} appends/s", b.entries);
        out.push((callers, secs, rate));
    }
    let r = govhub_core::audit::verify_log(store.as_ref(), &[], &mut |_| {})
        .await
        .map_err(|e| anyhow::anyhow!("verifying: {e}"))?;
    anyhow::ensure!(r.fault.is_none(), "the chain is broken after the benchmark: {:?}", r.fault);
    println!("  {label:<10} chain verified: {} entries", r.entries);
    Ok(out)
}

fn summary(label: &str, rows: &[(usize, f64, f64)]) {
    let Some(&(base_callers, _, base)) = rows.first() else { return };
    for &(callers, _, rate) in rows.iter().skip(1) {
        println!("  {label}: {callers} callers give {:.1}× the appends/s of {base_callers}", rate / base.max(1e-9));
    }
}

pub async fn audit(b: AuditBench) -> Result<()> {
    let tmp = b.dir.is_none();
    let dir = match &b.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("govhub-bench-audit-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let db = dir.join("bench.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        let _ = std::fs::remove_file(format!("{}{suffix}", govhub_store::sqlite::audit_path(&db).display()));
    }
    println!("durable audit appends ({} per run; SQLite files in {})", b.entries, dir.display());
    let sqlite = measure("SQLite", &format!("sqlite://{}", db.display()), &b).await?;
    summary("SQLite", &sqlite);
    if let Some(base) = &b.postgres {
        let url = crate::bench::fresh_database(base).await?;
        let pg = measure("PostgreSQL", &url, &b).await?;
        summary("PostgreSQL", &pg);
    }
    if tmp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
