//! `govhub bench api`: keyed lookups through the consumer API's full path — app token,
//! grant check, masking, a durable audit entry — against a population dataset, with
//! the server pinned to one core and `wrk` to the other, keys spread over ≥ 100,000
//! distinct records. In the same run it measures a bare axum + rusqlite server
//! (`bench_reference`) and Datasette serving the same rows by primary key from the same
//! SQLite file, and a consumer catching up on the change feed. Prints requests/s, p99
//! latency, CPU time per request and the ratios; for govhub also its audit commits (from
//! `/metrics`) and how core 0 spent the run (from `/proc/stat`), and the data
//! directory's `fdatasync` time before any load: a durable answer waits for the disk,
//! which the bare servers never do.

use crate::bench::{csv_options, fresh_database, fresh_sqlite, hub_for, peak_rss_mib};
use crate::demo;
use anyhow::{bail, Context, Result};
use govhub_core::audit::{CommitStats, COMMIT_BUCKETS};
use govhub_core::authz::Principal;
use govhub_core::deliver::DeliveryProgress;
use govhub_core::service::Ctx;
use govhub_core::sharing::{AccessRequestInput, AppInput, DecisionInput};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct ApiBench {
    pub rows: usize,
    pub keys: usize,
    pub seconds: u32,
    pub connections: u32,
    pub dir: Option<PathBuf>,
    pub skip_peers: bool,
    /// A PostgreSQL server's URL: also measure the same path on a fresh database there.
    pub postgres: Option<String>,
}

/// What wrk reported.
#[derive(Debug, Clone, Copy)]
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    /// Requests completed in the run.
    requests: u64,
    /// The server's CPU time (user + system) per request, in µs: steadier from run to
    /// run than the rate on this machine kind.
    cpu_us: Option<f64>,
    /// Of it, the audit writer thread's (govhub only): steadier still, and the part a
    /// change to the durable append moves.
    writer_us: Option<f64>,
    /// How core 0 spent the run, from `/proc/stat`.
    core: Option<CoreShares>,
}

/// Shares of a core's time over a run, in per cent.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CoreShares {
    /// Idle with a task of it waiting for the disk.
    iowait: f64,
    /// Idle with nothing to wait for.
    idle: f64,
    /// Taken by the hypervisor for other guests.
    steal: f64,
}

/// The time counters (in ticks) of core `n` from the text of `/proc/stat`: user, nice,
/// system, idle, iowait, irq, softirq, steal.
fn core_ticks(stat: &str, n: usize) -> Option<[u64; 8]> {
    let label = format!("cpu{n}");
    let line = stat.lines().find(|l| l.split_whitespace().next() == Some(label.as_str()))?;
    let mut t = [0u64; 8];
    let mut fields = line.split_whitespace().skip(1);
    for slot in &mut t {
        *slot = fields.next()?.parse().ok()?;
    }
    Some(t)
}

fn core_0_ticks() -> Option<[u64; 8]> {
    core_ticks(&std::fs::read_to_string("/proc/stat").ok()?, 0)
}

/// The shares of the time between two readings of [`core_ticks`].
fn core_shares(before: [u64; 8], after: [u64; 8]) -> Option<CoreShares> {
    let d: Vec<u64> = before.iter().zip(after).map(|(a, z)| z.saturating_sub(*a)).collect();
    let total = d.iter().sum::<u64>();
    if total == 0 {
        return None;
    }
    let pct = |i: usize| d[i] as f64 * 100.0 / total as f64;
    Some(CoreShares { iowait: pct(4), idle: pct(3), steal: pct(7) })
}

/// How long the disk under `dir` takes to make a 4 KiB overwrite durable
/// (`fdatasync`), as SQLite's WAL is synced at each audit commit: (p50, p99) in ms
/// over `n` syncs. Every answer of the consumer API waits for at least one.
fn disk_sync_ms(dir: &Path, n: usize) -> Result<(f64, f64)> {
    use std::os::unix::fs::FileExt;
    let path = dir.join("fsync-probe");
    let file = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path)?;
    let mut page = [0u8; 4096];
    file.write_all_at(&page, 0)?;
    file.sync_all()?;
    let mut took = Vec::with_capacity(n);
    for i in 0..n {
        page[..8].copy_from_slice(&(i as u64).to_le_bytes());
        file.write_all_at(&page, 0)?;
        let start = Instant::now();
        file.sync_data()?;
        took.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    drop(file);
    std::fs::remove_file(&path)?;
    took.sort_by(f64::total_cmp);
    let at = |q: f64| took.get(((took.len() as f64 * q) as usize).min(took.len().saturating_sub(1))).copied();
    match (at(0.5), at(0.99)) {
        (Some(p50), Some(p99)) => Ok((p50, p99)),
        _ => bail!("no syncs were timed"),
    }
}

/// Kills the child when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_ready(server: &mut Server, url: &str) -> Result<()> {
    let client = reqwest::Client::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if client.get(url).send().await.is_ok_and(|r| r.status().as_u16() < 500) {
            return Ok(());
        }
        if let Some(status) = server.0.try_wait()? {
            bail!("the server exited before answering ({status})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{url} did not answer within 60 s")
}

/// Parse wrk's `--latency` output.
fn parse_wrk(out: &str) -> Result<Load> {
    let mut load =
        Load { rps: 0.0, p50_ms: 0.0, p99_ms: 0.0, non_2xx: 0, requests: 0, cpu_us: None, writer_us: None, core: None };
    let ms = |v: &str| -> f64 {
        let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
        let n: f64 = num.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            "m" => n * 60_000.0,
            _ => f64::NAN,
        }
    };
    for line in out.lines().map(str::trim) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["Requests/sec:", v] => load.rps = v.parse().unwrap_or(0.0),
            ["50%", v] => load.p50_ms = ms(v),
            ["99%", v] => load.p99_ms = ms(v),
            ["Non-2xx", "or", "3xx", "responses:", v] => load.non_2xx = v.parse().unwrap_or(0),
            [n, "requests", "in", ..] => load.requests = n.parse().unwrap_or(0),
            _ => {}
        }
    }
    if load.rps == 0.0 {
        bail!("could not read wrk's output:\n{out}");
    }
    Ok(load)
}

/// CPU time (user + system) of process `pid` so far, in µs, from `/proc/<pid>/stat`
/// (its 14th and 15th fields, in the kernel's fixed `USER_HZ` of 100 ticks a second).
fn cpu_micros(pid: u32) -> Option<f64> {
    stat_cpu_micros(&format!("/proc/{pid}/stat"))
}

/// The audit writer's thread name as the kernel keeps it (15 bytes of
/// `govhub-audit-writer`).
const WRITER_THREAD: &str = "govhub-audit-wr";

/// CPU time so far of the first thread of process `pid` named `name`, in µs.
fn thread_cpu_micros(pid: u32, name: &str) -> Option<f64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            return stat_cpu_micros(&task.path().join("stat").to_string_lossy());
        }
    }
    None
}

/// User + system CPU time from a `stat` file of `/proc`, in µs.
fn stat_cpu_micros(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // `rest` starts at field 3, so fields 14 and 15 are at 11 and 12.
    Some((ticks(11)? + ticks(12)?) as f64 * 10_000.0)
}

/// `wrk` on core 1 against one server, with a Lua script picking a random key per
/// request.
struct Wrk<'a> {
    script: PathBuf,
    base: &'a str,
    connections: u32,
}

impl<'a> Wrk<'a> {
    /// Requests go to `base` + `path_prefix` + key + `suffix`, with `token` as bearer.
    fn new(
        dir: &Path,
        base: &'a str,
        path_prefix: &str,
        suffix: &str,
        token: Option<&str>,
        connections: u32,
    ) -> Result<Wrk<'a>> {
        let script = dir.join("lookup.lua");
        let header = token.map(|t| format!("[\"Authorization\"] = \"Bearer {t}\"")).unwrap_or_default();
        std::fs::write(
            &script,
            format!(
                "local keys = {{}}\nfor line in io.lines(\"{}\") do keys[#keys + 1] = line end\n\
                 math.randomseed(os.time())\n\
                 request = function()\n  local k = keys[math.random(#keys)]\n  \
                 return wrk.format(\"GET\", \"{path_prefix}\" .. k .. \"{suffix}\", {{ {header} }})\nend\n",
                dir.join("keys.txt").display()
            ),
        )?;
        Ok(Wrk { script, base, connections })
    }

    fn run(&self, seconds: u32) -> Result<String> {
        let out = Command::new("taskset")
            .args(["-c", "1", "wrk", "-t1"])
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{seconds}s"))
            .arg("--latency")
            .arg("-s")
            .arg(&self.script)
            .arg(self.base)
            .output()
            .context("running wrk (apt-get install wrk)")?;
        if !out.status.success() {
            bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Steady state, for every server alike: a warm-up (connections, caches, the first
    /// checkpoints of fresh files), then the page cache flushed. Without the flush the
    /// measured run competed with the kernel writing back the million rows loaded just
    /// before (hundreds of MB), and its p99 was that writeback's.
    fn settle(&self) -> Result<()> {
        self.run(WARM_UP_SECONDS)?;
        let synced = Command::new("sync").status().context("running sync")?;
        if !synced.success() {
            bail!("sync failed: {synced}");
        }
        Ok(())
    }

    /// The measured run of `seconds`, with the CPU time of the server's processes
    /// (`pids`: the server first, whose audit writer thread is timed too; then any
    /// database processes serving it).
    fn measure(&self, pids: &[u32], seconds: u32) -> Result<Load> {
        let server = pids.first().copied().context("no server process to measure")?;
        let cpu = || pids.iter().map(|p| cpu_micros(*p)).sum::<Option<f64>>();
        let before = (cpu(), thread_cpu_micros(server, WRITER_THREAD), core_0_ticks());
        let mut load = parse_wrk(&self.run(seconds)?)?;
        let after = (cpu(), thread_cpu_micros(server, WRITER_THREAD), core_0_ticks());
        load.core = before.2.zip(after.2).and_then(|(a, z)| core_shares(a, z));
        let per_request = |a: Option<f64>, z: Option<f64>| Some((z? - a?) / load.requests.max(1) as f64);
        load.cpu_us = per_request(before.0, after.0);
        load.writer_us = per_request(before.1, after.1);
        Ok(load)
    }
}

/// [`Wrk`]'s warm-up and measured run against one server.
fn wrk(dir: &Path, base: &str, path_prefix: &str, suffix: &str, server: u32, b: &ApiBench) -> Result<Load> {
    let w = Wrk::new(dir, base, path_prefix, suffix, None, b.connections)?;
    w.settle()?;
    w.measure(&[server], b.seconds)
}

/// The audit writer's group commits so far, read from the server's `/metrics`.
async fn audit_commits(base: &str, token: &str) -> Result<CommitStats> {
    let text = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    parse_commits(&text).context("/metrics has no audit commit figures")
}

/// [`CommitStats`] from the Prometheus text of `/metrics`.
fn parse_commits(text: &str) -> Option<CommitStats> {
    let value = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' '));
    let mut c = CommitStats {
        commits: value("govhub_audit_commits_total")?.parse().ok()?,
        entries: value("govhub_audit_entries_total")?.parse().ok()?,
        seconds: value("govhub_audit_commit_duration_seconds_sum")?.parse().ok()?,
        ..Default::default()
    };
    for (slot, bound) in c.buckets.iter_mut().zip(COMMIT_BUCKETS) {
        *slot = value(&format!("govhub_audit_commit_duration_seconds_bucket{{le=\"{bound}\"}}"))?.parse().ok()?;
    }
    Some(c)
}

/// The fields the benchmark's app is granted (three of them masked); the reference
/// server answers the same columns.
const GRANTED: [&str; 5] = ["sfzh", "xm", "xb", "csrq", "hjdz"];

/// The issue's throughput target, and the bare reference's rate on the machine that
/// `shared/design/PERFORMANCE.md` was measured on (≈ 52–55 k): the target as a share of
/// the bare path, for machines of the same kind that run slower or faster.
const TARGET_RPS: f64 = 25_000.0;
const REFERENCE_RPS_THERE: f64 = 52_000.0;

/// The arguments of `govhub` that serve `table` of `file` on `port` with the bare
/// reference server: the granted columns by ID number.
pub(crate) fn reference_args(file: &Path, table: &str, port: u16) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = ["bench", "reference", "--file"].map(Into::into).into();
    args.push(file.into());
    for (flag, value) in [
        ("--table", table.to_string()),
        ("--key", "sfzh".to_string()),
        ("--columns", GRANTED.join(",")),
        ("--listen", format!("127.0.0.1:{port}")),
    ] {
        args.push(flag.into());
        args.push(value.into());
    }
    args
}

/// `program` to run pinned to core 0, its standard output discarded.
fn on_core_0(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0"]).arg(program).stdout(Stdio::null());
    cmd
}

/// Start a server, killed when dropped.
fn spawn_server(cmd: &mut Command, what: &str) -> Result<Server> {
    Ok(Server(cmd.spawn().with_context(|| format!("starting {what}"))?))
}

/// Datasette on the PATH, installed with pip when it is not.
fn ensure_datasette() -> Result<()> {
    let present = || {
        Command::new("datasette")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if present() {
        return Ok(());
    }
    println!("  installing Datasette: python3 -m pip install datasette");
    let pip = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "datasette"])
        .status()
        .context("running python3 -m pip")?;
    if !pip.success() || !present() {
        bail!("could not install Datasette with pip (or pass --skip-peers)");
    }
    Ok(())
}

/// Load before each measured run, not counted.
const WARM_UP_SECONDS: u32 = 3;

/// The throwaway server's scraper token, for the audit commit figures.
const METRICS_TOKEN: &str = "bench-only-metrics-token";

/// Syncs timed by [`disk_sync_ms`].
const DISK_SYNCS: usize = 300;

pub async fn api(b: ApiBench) -> Result<()> {
    if std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) < 2 {
        bail!("the API benchmark pins the server and the load generator to separate cores: it needs two");
    }
    let dir =
        b.dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("govhub-bench-api-{}", std::process::id())));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("population.csv");
    println!("generating {} population rows → {}", b.rows, file.display());
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
        std::io::copy(&mut demo::population_csv(20261128, b.rows), &mut out)?;
        out.flush()?;
    }
    // Keys spread over the whole file.
    let step = (b.rows / b.keys.max(1)).max(1);
    let mut keys = Vec::with_capacity(b.keys);
    for (i, line) in std::io::BufReader::new(std::fs::File::open(&file)?).lines().skip(1).enumerate() {
        if i % step == 0 {
            keys.push(line?.split(',').next().unwrap_or_default().to_string());
        }
    }
    std::fs::write(dir.join("keys.txt"), keys.join("\n") + "\n")?;
    println!("  {} distinct keys", keys.len());
    let probe_key = keys.first().context("the population file has no rows")?;

    let data_dir = fresh_dir(&dir.join("data"))?;
    let url = fresh_sqlite(&data_dir, "govhub.db");
    let token = prepare(&url, &file).await?;
    // The throwaway database's app token, for profiling the server by hand.
    std::fs::write(dir.join("token.txt"), &token)?;

    // The disk's sync time, measured where the audit file lives, before any load.
    let disk = disk_sync_ms(&data_dir, DISK_SYNCS)?;
    let ours = run_govhub(&b, &dir, &data_dir, &url, &token, probe_key, false).await?;

    // The bare reference and Datasette on the same file, the same core.
    let exe = std::env::current_exe()?;
    let dbfile = data_dir.join("govhub.db");
    let table = format!("ds_{}_v1", demo::HJRK.replace('-', "_"));
    let reference = {
        let port = free_port()?;
        let ref_base = format!("http://127.0.0.1:{port}");
        let mut server = spawn_server(
            on_core_0(&exe).args(reference_args(&dbfile, &table, port)).stderr(Stdio::null()),
            "the reference server",
        )?;
        wait_ready(&mut server, &format!("{ref_base}/{probe_key}")).await?;
        wrk(&dir, &ref_base, "/", "", server.0.id(), &b)?
    };
    let peer = if b.skip_peers {
        None
    } else {
        ensure_datasette()?;
        let port = free_port()?;
        let mut server = spawn_server(
            on_core_0("datasette")
                .args(["serve", "-i"])
                .arg(&dbfile)
                .args(["--port", &port.to_string(), "--setting", "default_cache_ttl", "0"])
                .stderr(Stdio::null()),
            "datasette (pip install datasette)",
        )?;
        let ds_base = format!("http://127.0.0.1:{port}");
        wait_ready(&mut server, &format!("{ds_base}/govhub.json")).await?;
        Some(wrk(&dir, &ds_base, &format!("/govhub/{table}/"), ".json", server.0.id(), &b)?)
    };

    // The same rows and path on PostgreSQL.
    let on_postgres = match &b.postgres {
        Some(base) => {
            let pg_url = fresh_database(base).await?;
            println!("  PostgreSQL: {}", crate::redact(&pg_url));
            let pg_token = prepare(&pg_url, &file).await?;
            let pg_dir = fresh_dir(&dir.join("data-pg"))?;
            Some(run_govhub(&b, &dir, &pg_dir, &pg_url, &pg_token, probe_key, true).await?)
        }
        None => None,
    };

    println!(
        "\nKeyed lookups, {} rows, {} keys, server on core 0, wrk -t1 -c{} on core 1, {} s",
        b.rows,
        keys.len(),
        b.connections,
        b.seconds
    );
    println!("  {:<52} {:>10} {:>9} {:>9} {:>12}", "", "req/s", "p50 ms", "p99 ms", "CPU µs/req");
    print_govhub(&ours, "govhub consumer API (token, grant, masking, audit)");
    print_load("axum + rusqlite reference (same columns, bare)", &reference);
    println!(
        "  govhub / reference = {:.2} (the target, 25,000 req/s against ≈ 52,000 for the reference on the \
         machine PERFORMANCE.md measured, is {:.2})",
        ours.load.rps / reference.rps.max(1e-9),
        TARGET_RPS / REFERENCE_RPS_THERE
    );
    if let (Some(g), Some(r)) = (ours.load.cpu_us, reference.cpu_us) {
        println!(
            "  by CPU time per request (what the core would do if it never waited), govhub / reference = {:.2}",
            r / g
        );
    }
    println!(
        "  disk: fdatasync of a 4 KiB overwrite in the data directory, p50 {:.2} ms, p99 {:.2} ms ({DISK_SYNCS} syncs); \
         every answer waits for one, so with {} connections a busy disk's waits can leave the core idle",
        disk.0, disk.1, b.connections
    );
    if let Some(p) = peer {
        print_load("Datasette (row JSON by primary key)", &p);
        println!("  govhub / Datasette = {:.1}×", ours.load.rps / p.rps.max(1e-9));
    }
    if let Some(pg) = &on_postgres {
        print_govhub(pg, "govhub consumer API on PostgreSQL (same path)");
        if let Some((pinned, backends)) = pg.backends_pinned {
            println!(
                "  {:<52} CPU counts govhub and the database's {backends} PostgreSQL backends ({pinned} pinned to core 0); \
                 the cluster's own processes (WAL writer, checkpointer) are neither counted nor pinned",
                ""
            );
        }
    }
    print_feed("Change feed", &ours);
    if let Some(pg) = &on_postgres {
        print_feed("Change feed on PostgreSQL", pg);
    }
    if let Some(mib) = peak_rss_mib() {
        println!("peak memory (VmHWM) of the benchmark process: {mib:.0} MiB");
    }
    if b.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// `dir`, emptied (created when missing).
fn fresh_dir(dir: &Path) -> Result<PathBuf> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    Ok(dir.to_path_buf())
}

/// Deliver the population file into the store at `url` through the real path, and give
/// a throwaway app a grant on [`GRANTED`] and a token; returns the token.
async fn prepare(url: &str, file: &Path) -> Result<String> {
    let hub = hub_for(url).await?;
    let system = Principal::system();
    let ctx = Ctx::default();
    let source: Box<dyn std::io::Read + Send> =
        Box::new(std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(file)?));
    let start = Instant::now();
    let report =
        hub.deliver(&system, demo::HJRK, source, csv_options(), Arc::new(DeliveryProgress::default()), &ctx).await?;
    println!("  delivered {} rows in {:.1} s", report.rows_inserted, start.elapsed().as_secs_f64());
    let app = hub.create_app(&system, AppInput { name: "压测应用".into(), org: "cz-dsj".into() }, &ctx).await?;
    let today = govhub_core::sharing::china_date(chrono::Utc::now());
    let req = hub
        .request_access(
            &system,
            AccessRequestInput {
                app: app.id,
                dataset: demo::HJRK.into(),
                fields: GRANTED.iter().map(|f| f.to_string()).collect(),
                clear_fields: vec![],
                purpose: "性能测试".into(),
                legal_basis: "测试".into(),
                valid_until: today + chrono::Duration::days(30),
            },
            &ctx,
        )
        .await?;
    hub.decide_access(
        &system,
        req.id,
        DecisionInput { approve: true, fields: None, clear_fields: None, valid_until: None, reason: "测试".into() },
        &ctx,
    )
    .await?;
    Ok(hub.issue_app_token(&system, app.id, &ctx).await?.token)
}

/// What one govhub server gave.
struct GovhubRun {
    load: Load,
    /// The audit writer's group commits during the measured run.
    commits: CommitStats,
    /// A consumer catching up on the change feed from the start.
    changes: usize,
    feed_secs: f64,
    /// On PostgreSQL: the database's backends pinned to core 0, of how many.
    backends_pinned: Option<(usize, usize)>,
}

/// govhub serving `url` on core 0: one probe lookup (the path works and masks), the
/// warm-up, the measured run with its audit commits, then a consumer catching up on
/// the change feed. On PostgreSQL the database's backends are pinned to core 0 after
/// the warm-up, as far as this user may, and their CPU time is counted with govhub's.
async fn run_govhub(
    b: &ApiBench,
    dir: &Path,
    data_dir: &Path,
    url: &str,
    token: &str,
    probe_key: &str,
    postgres: bool,
) -> Result<GovhubRun> {
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let exe = std::env::current_exe()?;
    let mut gov = spawn_server(
        on_core_0(&exe)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--database")
            .arg(url)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("GOVHUB_LOG", "warn")
            .env("GOVHUB_APP_RATE_PER_SEC", "10000000")
            .env("GOVHUB_METRICS_TOKEN", METRICS_TOKEN)
            // A throwaway platform key for the throwaway database.
            .env("GOVHUB_KEY_PASSPHRASE", "bench-only-passphrase"),
        "govhub serve",
    )?;
    wait_ready(&mut gov, &format!("{base}/api/v1/openapi.json")).await?;
    let probe = reqwest::Client::new()
        .get(format!("{base}/api/v1/share/{}/records/{probe_key}", demo::HJRK))
        .bearer_auth(token)
        .send()
        .await?;
    if !probe.status().is_success() {
        bail!("the probe lookup failed: {} {}", probe.status(), probe.text().await.unwrap_or_default());
    }
    println!("  probe: {}", probe.text().await.unwrap_or_default());
    let w = Wrk::new(dir, &base, &format!("/api/v1/share/{}/records/", demo::HJRK), "", Some(token), b.connections)?;
    w.settle()?;
    let mut pids = vec![gov.0.id()];
    let mut backends_pinned = None;
    if postgres {
        let backends = postgres_backends(url).await?;
        let pinned = backends.iter().filter(|pid| pin_to_core_0(**pid)).count();
        backends_pinned = Some((pinned, backends.len()));
        pids.extend(backends);
    }
    let before = audit_commits(&base, METRICS_TOKEN).await?;
    let load = w.measure(&pids, b.seconds)?;
    let commits = audit_commits(&base, METRICS_TOKEN).await?.since(&before);
    let (changes, feed_secs) = catch_up(&base, token).await?;
    drop(gov);
    Ok(GovhubRun { load, commits, changes, feed_secs, backends_pinned })
}

/// A consumer catching up on the whole change feed from the start, in pages of 1000:
/// how many changes and how long.
async fn catch_up(base: &str, token: &str) -> Result<(usize, f64)> {
    let client = reqwest::Client::new();
    let start = Instant::now();
    let mut since: Option<String> = None;
    let mut changes = 0usize;
    loop {
        let mut req = client.get(format!("{base}/api/v1/share/{}/changes?limit=1000", demo::HJRK)).bearer_auth(token);
        if let Some(s) = &since {
            req = req.query(&[("since", s)]);
        }
        let page: serde_json::Value = req.send().await?.error_for_status()?.json().await?;
        let n = page["items"].as_array().map_or(0, Vec::len);
        if n == 0 {
            break;
        }
        changes += n;
        since = page["next_cursor"].as_str().map(str::to_string);
    }
    Ok((changes, start.elapsed().as_secs_f64()))
}

/// The server processes of the database at `url` other than this connection's own (the
/// serving govhub's pool, once it has warmed up).
async fn postgres_backends(url: &str) -> Result<Vec<u32>> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let rows = client
        .query("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()", &[])
        .await?;
    Ok(rows.iter().filter_map(|r| u32::try_from(r.get::<_, i32>(0)).ok()).collect())
}

/// Pin process `pid` to core 0 (`taskset -p`); false when this user may not.
fn pin_to_core_0(pid: u32) -> bool {
    Command::new("taskset")
        .args(["-p", "-c", "0", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One row of the table: a server's rate, latency and CPU time a request.
fn print_load(label: &str, l: &Load) {
    let cpu = l.cpu_us.map_or_else(|| "-".to_string(), |c| format!("{c:.0}"));
    println!("  {label:<52} {:>10.0} {:>9.2} {:>9.2} {cpu:>12}", l.rps, l.p50_ms, l.p99_ms);
    if l.non_2xx > 0 {
        println!("  !! {} responses were not 2xx", l.non_2xx);
    }
}

/// govhub's row, its audit writer's share, its commits and how core 0 spent the run.
fn print_govhub(run: &GovhubRun, label: &str) {
    print_load(label, &run.load);
    if let Some(w) = run.load.writer_us {
        println!("  {:<52} {:>10} {:>9} {:>9} {:>12.0}", "  of which the audit writer thread", "", "", "", w);
    }
    let c = &run.commits;
    if c.commits == 0 {
        println!("  !! no audit commits during the measured run");
    } else {
        let bound = |v: Option<f64>| v.map_or_else(|| "> 2,500".to_string(), |s| format!("≤ {}", s * 1000.0));
        println!(
            "  {:<52} {} audit commits of {:.1} entries on average, durable in {} ms (p50), {} ms (p99)",
            "",
            c.commits,
            c.entries_per_commit(),
            bound(c.quantile(0.5)),
            bound(c.quantile(0.99))
        );
    }
    if let Some(core) = run.load.core {
        println!(
            "  {:<52} core 0 waited for the disk {:.1} % of the run, idle {:.1} %, stolen {:.1} %",
            "", core.iowait, core.idle, core.steal
        );
    }
}

fn print_feed(title: &str, run: &GovhubRun) {
    println!(
        "\n{title}: {} changes caught up in {:.1} s = {:.0} changes/s (pages of 1000)",
        run.changes,
        run.feed_secs,
        run.changes as f64 / run.feed_secs.max(1e-9)
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let out = "Running 15s test @ http://127.0.0.1:4000\n  1 threads and 32 connections\n\
                   Latency Distribution\n     50%    1.88ms\n     75%    2.10ms\n     99%  812.00us\n\
                   \x20 245123 requests in 15.00s, 80.12MB read\n  Non-2xx or 3xx responses: 3\n\
                   Requests/sec:  16341.53\nTransfer/sec:      5.34MB\n";
        let l = parse_wrk(out).unwrap();
        assert_eq!((l.rps, l.p50_ms, l.p99_ms, l.non_2xx, l.requests), (16341.53, 1.88, 0.812, 3, 245_123));
        assert!(parse_wrk("no figures here").is_err());
    }

    #[test]
    fn commit_figures_are_read_from_metrics() {
        let mut a = CommitStats { commits: 10, entries: 300, seconds: 0.01, ..Default::default() };
        a.buckets = [0, 2, 8, 10, 10, 10, 10, 10, 10, 10];
        let mut text = String::from("govhub_audit_commits_totally 7\n");
        govhub_server::metrics::render_commits(&mut text, &a);
        assert_eq!(parse_commits(&text), Some(a.clone()), "{text}");
        assert_eq!(parse_commits("govhub_uptime_seconds 3\n"), None);
    }

    #[test]
    fn core_time_is_read_from_proc_stat() {
        let stat = "cpu  10 0 10 100 5 0 0 0 0 0\ncpu0 100 2 50 800 40 0 8 0 0 0\ncpu1 1 2 3 4 5 6 7 8 0 0\nintr 1\n";
        assert_eq!(core_ticks(stat, 0), Some([100, 2, 50, 800, 40, 0, 8, 0]));
        assert_eq!(core_ticks(stat, 1), Some([1, 2, 3, 4, 5, 6, 7, 8]));
        // `cpu1` is not `cpu10`, and a short line is no reading.
        assert_eq!(core_ticks(stat, 10), None);
        assert_eq!(core_ticks("cpu0 1 2 3\n", 0), None);
        let shares = core_shares([0, 0, 0, 100, 0, 0, 0, 0], [350, 0, 150, 300, 150, 0, 50, 100]).unwrap();
        assert_eq!(shares, CoreShares { iowait: 15.0, idle: 20.0, steal: 10.0 });
        assert_eq!(core_shares([1; 8], [1; 8]), None);
        assert!(core_0_ticks().is_some(), "this machine has a core 0 in /proc/stat");
    }

    #[test]
    fn the_disk_sync_probe_times_syncs_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let (p50, p99) = disk_sync_ms(dir.path(), 20).unwrap();
        assert!(p50 > 0.0 && p50 <= p99, "p50 {p50} p99 {p99}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the probe file is removed");
        assert!(disk_sync_ms(&dir.path().join("missing"), 5).is_err());
    }

    #[test]
    fn this_process_has_used_cpu() {
        let spent = cpu_micros(std::process::id()).unwrap();
        // Burn a little CPU so that a tick passes.
        let mut x = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(cpu_micros(std::process::id()).unwrap() > spent);
        assert_eq!(cpu_micros(u32::MAX), None);
    }

    #[test]
    fn another_process_is_pinned_to_core_0() {
        if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            return; // one core: nothing to tell apart
        }
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let allowed = || {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap().trim().to_string()
        };
        let before = allowed();
        if !before.starts_with("0-") && !before.starts_with("0,") {
            // Core 0 is not ours to use here (a cpuset without it), or is all we have.
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        let pinned = pin_to_core_0(pid);
        let after = allowed();
        let _ = child.kill();
        let _ = child.wait();
        assert!(pinned);
        assert_eq!(after, "0");
        // A process that is gone cannot be pinned, and says so.
        assert!(!pin_to_core_0(pid));
    }

    #[test]
    fn a_named_thread_has_its_own_cpu_time() {
        let pid = std::process::id();
        // An idle thread, alive while the other one burns.
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let idler =
            std::thread::Builder::new().name("bench-idler".into()).spawn(move || stopped.recv().is_err()).unwrap();
        // The thread spins until it reads 30 ms of its own CPU time (at most 10 s of
        // wall time: a reading that never grows fails the test rather than hangs it).
        let burner = std::thread::Builder::new()
            .name("bench-burner".into())
            .spawn(move || {
                let start = Instant::now();
                let mut x = 0u64;
                while start.elapsed() < Duration::from_secs(10) {
                    for _ in 0..100_000 {
                        x = x.wrapping_add(std::hint::black_box(1));
                    }
                    if thread_cpu_micros(pid, "bench-burner").is_some_and(|t| t >= 30_000.0) {
                        return (x, true);
                    }
                }
                (x, false)
            })
            .unwrap();
        let (x, reached) = burner.join().unwrap();
        assert!(x > 0 && reached, "the thread's CPU time never reached 30 ms");
        // Another thread's time is its own, not the process's.
        let idle = thread_cpu_micros(pid, "bench-idler").unwrap();
        assert!(idle < 10_000.0, "an idle thread used {idle} µs");
        drop(stop);
        assert!(idler.join().unwrap());
        assert_eq!(thread_cpu_micros(pid, "no-such-thread"), None);
    }
}
