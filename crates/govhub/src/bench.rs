//! `govhub bench ingest`: deliver a generated population file through govhub's real
//! delivery path (decode → validate → upsert with history, one transaction) and, in
//! the same run on the same file, time what a user would otherwise reach for:
//! `sqlite3`'s `.import` and PostgreSQL's `COPY`. Prints rows/s and the ratios.

use crate::demo;
use anyhow::{bail, Context, Result};
use govhub_core::authz::Principal;
use govhub_core::clock::SystemClock;
use govhub_core::deliver::{DeliverOptions, DeliveryProgress};
use govhub_core::delivery::{DeliveryMode, DeliveryReport, DeliveryStatus};
use govhub_core::input::{NewDataset, NewOrg};
use govhub_core::service::{Ctx, Hub, HubSettings};
use govhub_ingest::Format;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

pub struct IngestBench {
    pub rows: usize,
    pub postgres: Option<String>,
    pub dir: Option<PathBuf>,
    pub skip_peers: bool,
    pub reader_only: bool,
    pub skip_sqlite: bool,
    /// An existing population CSV to use instead of generating one.
    pub file: Option<PathBuf>,
}

struct Timing {
    label: String,
    secs: f64,
    rows: u64,
}

impl Timing {
    fn rate(&self) -> f64 {
        self.rows as f64 / self.secs.max(1e-9)
    }
}

/// Start measuring the peak resident memory afresh (Linux: the peak becomes the
/// current resident size); `false` where the kernel does not allow it.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Print the peak resident memory of a part of the run (each part measured alone
/// where the kernel allows resetting the peak), and start the next part's.
fn report_peak(part: &str) {
    if let Some(mib) = peak_rss_mib() {
        println!("  peak memory (VmHWM) of the {part}: {mib:.0} MiB");
    }
    if !reset_peak_rss() {
        println!("  (the peak could not be reset: later parts include earlier ones)");
    }
}

/// Peak resident memory of this process so far (Linux), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub(crate) async fn hub_for(url: &str) -> Result<Hub> {
    let store = govhub_store::open(url).await.with_context(|| format!("opening {url}"))?;
    let hub = Hub::new(store, Arc::new(SystemClock), HubSettings::default());
    let system = Principal::system();
    let ctx = Ctx::default();
    for input in demo::orgs().into_iter().filter(|o| ["cz", "cz-dsj", "cz-gaj"].contains(&o.code.as_str())) {
        hub.create_org(&system, NewOrg::try_from(input)?, &ctx).await?;
    }
    for input in demo::datasets().into_iter().filter(|d| d.code == demo::XZQH || d.code == demo::HJRK) {
        hub.create_dataset(&system, NewDataset::try_from(input)?, &ctx).await?;
    }
    Ok(hub)
}

pub(crate) fn csv_options() -> DeliverOptions {
    DeliverOptions {
        format: Format::Csv,
        encoding: None,
        sheet: None,
        mode: DeliveryMode::Incremental,
        file_name: Some("population.csv".into()),
        max_bytes: u64::MAX,
        stage_in: None,
    }
}

async fn deliver(hub: &Hub, file: &Path) -> Result<DeliveryReport> {
    let source: Box<dyn std::io::Read + Send> = Box::new(std::io::BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    ));
    let r = hub
        .deliver(
            &Principal::system(),
            demo::HJRK,
            source,
            csv_options(),
            Arc::new(DeliveryProgress::default()),
            &Ctx::default(),
        )
        .await?;
    if r.status != DeliveryStatus::Succeeded {
        bail!("delivery failed: {:?}", r.error);
    }
    Ok(r)
}

fn header_of(file: &Path) -> Result<Vec<String>> {
    let mut rdr = csv::Reader::from_path(file)?;
    Ok(rdr.headers()?.iter().map(str::to_string).collect())
}

fn sqlite3_import(file: &Path, dir: &Path, columns: &[String]) -> Result<f64> {
    let db = dir.join("sqlite3-import.db");
    let _ = std::fs::remove_file(&db);
    let cols: Vec<String> = columns
        .iter()
        .map(|c| if c == "sfzh" { format!("\"{c}\" TEXT PRIMARY KEY") } else { format!("\"{c}\" TEXT") })
        .collect();
    let script = format!(
        "PRAGMA journal_mode=WAL;\nCREATE TABLE p ({});\n.mode csv\n.import --skip 1 '{}' p\n",
        cols.join(", "),
        file.display()
    );
    let start = Instant::now();
    let mut child = Command::new("sqlite3")
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("running sqlite3 (apt-get install sqlite3)")?;
    child.stdin.take().context("sqlite3 stdin")?.write_all(script.as_bytes())?;
    let status = child.wait()?;
    if !status.success() {
        bail!("sqlite3 .import failed");
    }
    Ok(start.elapsed().as_secs_f64())
}

async fn pg_copy(base_url: &str, file: &Path, columns: &[String]) -> Result<f64> {
    let url = fresh_database(base_url).await?;
    let cols: Vec<String> = columns
        .iter()
        .map(|c| if c == "sfzh" { format!("\"{c}\" TEXT PRIMARY KEY") } else { format!("\"{c}\" TEXT") })
        .collect();
    let status = Command::new("psql")
        .arg(&url)
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("CREATE TABLE p ({})", cols.join(", ")))
        .status()
        .context("running psql")?;
    if !status.success() {
        bail!("psql CREATE TABLE failed");
    }
    let start = Instant::now();
    let status = Command::new("psql")
        .arg(&url)
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("\\copy p FROM '{}' WITH (FORMAT csv, HEADER true)", file.display()))
        .status()?;
    if !status.success() {
        bail!("psql \\copy failed");
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Deliver the file twice into a fresh store (`url`): the first and the unchanged
/// re-delivery's timings, the counts checked.
async fn deliver_twice(store: &str, url: &str, file: &Path, n: u64) -> Result<Vec<Timing>> {
    let hub = hub_for(url).await?;
    let first = deliver(&hub, file).await?;
    // The first delivery's pages are copied from the WAL into the database file after
    // its commit (SQLite's checkpointer; PostgreSQL's writes its own way): ≈ 1 s a
    // million rows that would otherwise fall into the re-delivery's time. A user's
    // re-delivery comes later than at once.
    tokio::time::sleep(std::time::Duration::from_millis(1_000 + n / 500)).await;
    let again = deliver(&hub, file).await?;
    if first.rows_inserted != n || again.rows_unchanged != n {
        bail!("unexpected counts on {store}: first {:?}, again {:?}", first, again);
    }
    let timing = |what: &str, r: &DeliveryReport| Timing {
        label: format!("govhub {what}, {store}"),
        secs: r.duration_ms as f64 / 1000.0,
        rows: n,
    };
    Ok(vec![timing("delivery (new rows)", &first), timing("re-delivery (unchanged)", &again)])
}

/// Print a store's timings, with the peer tool's (`label`, `ratio` line, seconds) when
/// it was measured.
fn print_part(store: &str, mut t: Vec<Timing>, peer: Option<(&str, &str, f64)>, n: u64) {
    if let Some((label, _, secs)) = peer {
        t.push(Timing { label: label.into(), secs, rows: n });
    }
    print_table(store, &t);
    if let (Some((_, ratio, _)), [first, _, peer]) = (peer, t.as_slice()) {
        println!("  {ratio:<32} = {:.2}×", first.rate() / peer.rate());
    }
    if let [first, again, ..] = t.as_slice() {
        println!("  re-delivery / first delivery      = {:.2}× faster", again.rate() / first.rate());
    }
}

/// Create a uniquely named database next to the one in `base_url`; returns its URL.
pub(crate) async fn fresh_database(base_url: &str) -> Result<String> {
    let (client, conn) = tokio_postgres::connect(base_url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let name = format!("govhub_bench_{}_{}", std::process::id(), chrono::Utc::now().timestamp_micros());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
    let (head, query) = base_url.split_once('?').map(|(h, q)| (h, Some(q))).unwrap_or((base_url, None));
    let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match head[scheme_end..].find('/') {
        Some(i) => &head[..scheme_end + i],
        None => head,
    };
    Ok(match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    })
}

fn print_table(title: &str, rows: &[Timing]) {
    println!("\n{title}");
    println!("  {:<44} {:>10} {:>14}", "", "seconds", "rows/s");
    for t in rows {
        println!("  {:<44} {:>10.2} {:>14.0}", t.label, t.secs, t.rate());
    }
}

pub async fn ingest(b: IngestBench) -> Result<()> {
    let tmp = match &b.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            None
        }
        None => Some(tempdir()?),
    };
    let dir = b.dir.clone().or_else(|| tmp.clone()).context("no working directory")?;
    let file = match &b.file {
        Some(f) => {
            println!("using {}", f.display());
            f.clone()
        }
        None => {
            let file = dir.join("population.csv");
            println!("generating {} population rows → {}", b.rows, file.display());
            let start = Instant::now();
            {
                let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
                std::io::copy(&mut demo::population_csv(20261128, b.rows), &mut out)?;
                out.flush()?;
            }
            let size = std::fs::metadata(&file)?.len();
            println!("  {:.1} MB in {:.1} s", size as f64 / 1e6, start.elapsed().as_secs_f64());
            file
        }
    };
    let columns = header_of(&file)?;
    let n = b.rows as u64;

    // The reader side alone: decode + validate + hash, no store.
    {
        let hub = hub_for(&fresh_sqlite(&dir, "govhub-check.db")).await?;
        let dataset = hub.get_dataset(&Principal::system(), demo::HJRK, &Ctx::default()).await?;
        let file = file.clone();
        let start = Instant::now();
        let checked = tokio::task::spawn_blocking(move || -> Result<u64> {
            let source: Box<dyn std::io::Read + Send> =
                Box::new(std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&file)?));
            let today = chrono::Utc::now().date_naive();
            let s = govhub_core::deliver::check_file(source, &csv_options(), &dataset, today)
                .map_err(|f| anyhow::anyhow!("{}: {}", f.code, f.message))?;
            Ok(s.valid)
        })
        .await??;
        let t = Timing {
            label: "decode + validate + hash only (no store)".into(),
            secs: start.elapsed().as_secs_f64(),
            rows: checked,
        };
        print_table("Reader side", &[t]);
        report_peak("reader side");
    }
    if b.reader_only {
        return Ok(());
    }
    if !b.skip_sqlite {
        let t = deliver_twice("SQLite", &fresh_sqlite(&dir, "govhub-bench.db"), &file, n).await?;
        let peer = if b.skip_peers {
            None
        } else {
            let secs = sqlite3_import(&file, &dir, &columns)?;
            Some(("sqlite3 .import (TEXT PRIMARY KEY, WAL)", "govhub / sqlite3 .import", secs))
        };
        print_part("SQLite", t, peer, n);
        report_peak("SQLite part");
    }
    // PostgreSQL
    if let Some(base) = &b.postgres {
        let t = deliver_twice("PostgreSQL", &fresh_database(base).await?, &file, n).await?;
        let peer = if b.skip_peers {
            None
        } else {
            let secs = pg_copy(base, &file, &columns).await?;
            Some(("PostgreSQL \\copy … CSV (TEXT PRIMARY KEY)", "govhub / COPY", secs))
        };
        print_part("PostgreSQL", t, peer, n);
        report_peak("PostgreSQL part");
    }
    if let Some(t) = tmp {
        let _ = std::fs::remove_dir_all(t);
    }
    Ok(())
}

/// The URL of a new SQLite database `name` in `dir` (any old one removed).
pub(crate) fn fresh_sqlite(dir: &Path, name: &str) -> String {
    let db = dir.join(name);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    format!("sqlite://{}", db.display())
}

fn tempdir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("govhub-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
