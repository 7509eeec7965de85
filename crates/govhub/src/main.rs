//! `govhub`: the city's digital base in one binary.

mod audit_cmd;
mod bench;
mod bench_api;
mod bench_audit;
mod bench_licences;
mod bench_reference;
mod config;
mod demo;
mod keys;
mod licence_cmd;
mod push;
mod seed;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use config::{FileConfig, Overrides, Settings};
use govhub_core::authz::Principal;
use govhub_core::clock::SystemClock;
use govhub_core::input::{NewOrg, NewUser, OrgInput, UserInput};
use govhub_core::service::{Ctx, Hub, HubSettings};
use govhub_server::state::{AppState, ServerConfig};
use std::path::PathBuf;
use std::sync::Arc;

/// mimalloc: deliveries allocate cells on the reader thread and free them on the
/// writer thread; glibc's arenas serialise that on a lock (measured: a fifth of the
/// ingest profile in futex wake-ups and malloc bookkeeping).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "govhub", version, about = "govhub — 政务数据共享交换平台: a city's government data hub")]
struct Cli {
    /// Data directory (the SQLite file lives here by default).
    #[arg(long, global = true, env = "GOVHUB_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Store URL: sqlite://PATH (default: <data-dir>/govhub.db) or postgres://…
    #[arg(long, global = true, env = "GOVHUB_DATABASE")]
    database: Option<String>,
    /// TOML configuration file.
    #[arg(long, global = true, env = "GOVHUB_CONFIG")]
    config: Option<PathBuf>,
    /// File whose first line is the platform key's passphrase (or set GOVHUB_KEY_PASSPHRASE).
    #[arg(long, global = true, env = "GOVHUB_KEY_PASSPHRASE_FILE")]
    key_passphrase_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Generate the synthetic demo city of Changzhou on first start, then serve it.
    Demo(DemoArgs),
    /// Administrative tasks on the store.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Deliver a file (CSV, JSON Lines, XLSX) into a dataset on a running hub.
    Push {
        /// The hub, e.g. http://127.0.0.1:8080
        #[arg(long, env = "GOVHUB_SERVER")]
        server: String,
        /// File holding a bearer token (from POST /api/v1/auth/token).
        #[arg(long)]
        token_file: PathBuf,
        /// Dataset code.
        #[arg(long)]
        dataset: String,
        /// incremental (default) or snapshot.
        #[arg(long)]
        mode: Option<String>,
        /// utf-8, gbk or gb18030 (default: detected).
        #[arg(long)]
        encoding: Option<String>,
        /// XLSX sheet (default: the first).
        #[arg(long)]
        sheet: Option<String>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// The file to deliver.
        file: PathBuf,
    },
    /// Print the OpenAPI document of the JSON API.
    Openapi,
    /// Benchmarks that compare govhub with the tools a user would otherwise use.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The tamper-evident audit log: verify the chain, sign a checkpoint.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// E-licences: verify a licence file offline, issue from a file.
    #[command(subcommand)]
    Licence(LicenceCommand),
}

#[derive(Subcommand)]
enum LicenceCommand {
    /// Verify a licence file offline with only the platform root certificate. Prints
    /// the result; exit 0 only when valid, 1 when not, 2 when the check cannot be made.
    Verify {
        /// The licence file (GET /api/v1/licences/{id}/file).
        file: PathBuf,
        /// The platform root certificate (GET /api/v1/pki/root.pem).
        #[arg(long, default_value = "root.pem")]
        root: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Also ask this govhub server (its public URL) whether the licence or its seal
        /// key was suspended or revoked after sealing, which a file alone cannot show.
        #[arg(long, value_name = "URL")]
        online: Option<String>,
    },
    /// Issue licences from a CSV or JSON Lines file for one issuing organisation
    /// (migrating paper licences): good records are issued, each refused one is listed
    /// with its line, field and reason. Exit 0 when all were issued, 1 when some were
    /// refused (the others stay issued), 2 when nothing could be done.
    IssueBatch {
        /// The issuing organisation's code.
        #[arg(long)]
        issuer: String,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Write every refused line as JSON Lines (line, field, code, message, message_zh).
        #[arg(long)]
        report: Option<PathBuf>,
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the whole hash chain and every signed checkpoint. Exit 0 when intact,
    /// 1 naming the first bad entry, 2 when the check could not be made.
    Verify {
        /// Platform public key PEM (default: <data-dir>/platform-key.pub.pem). Repeat for
        /// checkpoints signed by earlier keys.
        #[arg(long)]
        public_key: Vec<PathBuf>,
        /// SEQ:HASH of a head recorded earlier outside govhub (printed by verify): the
        /// log must still hold it (detects truncation after the last checkpoint).
        #[arg(long)]
        expect_head: Option<String>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Sign a checkpoint of the chain's head now (needs the platform key's passphrase).
    Checkpoint,
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GOVHUB_LISTEN")]
    listen: Option<String>,
    /// Mark cookies Secure (when served over HTTPS).
    #[arg(long, env = "GOVHUB_SECURE_COOKIES")]
    secure_cookies: Option<bool>,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "GOVHUB_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Requests per second each app may make to the consumer API (sustained; bursts of twice that).
    #[arg(long, env = "GOVHUB_APP_RATE_PER_SEC")]
    app_rate_per_sec: Option<u32>,
}

#[derive(Args, Clone)]
struct DemoArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Residents of the synthetic city (enterprises and sole traders in proportion).
    #[arg(long, default_value_t = 100_000)]
    people: usize,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Keyed lookups through the consumer API (server and wrk on separate cores) against Datasette, and the change feed.
    Api {
        /// Rows in the population dataset.
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Distinct keys the lookups spread over.
        #[arg(long, default_value_t = 100_000)]
        keys: usize,
        /// Seconds of load per server.
        #[arg(long, default_value_t = 15)]
        seconds: u32,
        /// Concurrent connections.
        #[arg(long, default_value_t = 32)]
        connections: u32,
        /// Working directory (default: a temporary one, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Only govhub, without Datasette.
        #[arg(long)]
        skip_peers: bool,
        /// Also serve the same rows from PostgreSQL (a server URL; a fresh database is
        /// created on it) and measure the same path there.
        #[arg(long, env = "GOVHUB_BENCH_POSTGRES_URL")]
        postgres: Option<String>,
    },
    /// Deliver a generated population file and time sqlite3 .import and PostgreSQL COPY on the same file.
    Ingest {
        /// Rows in the population file.
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Also measure on PostgreSQL (a server URL; fresh databases are created on it).
        #[arg(long, env = "GOVHUB_BENCH_POSTGRES_URL")]
        postgres: Option<String>,
        /// Working directory (default: a temporary one, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Only govhub, without the sqlite3 / COPY comparison.
        #[arg(long)]
        skip_peers: bool,
        /// Only the reader side (decode + validate + hash), for profiling it.
        #[arg(long)]
        reader_only: bool,
        /// Skip the SQLite part (with `--postgres`: measure PostgreSQL alone, memory too).
        #[arg(long, requires = "postgres")]
        skip_sqlite: bool,
        /// Use this existing population CSV instead of generating one (`--rows` is then
        /// only what the counts are checked against), so profiles show the reader alone.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// SM2 signatures/verifications per second on one core against `openssl speed sm2`, and one batch issue of many licences on SQLite.
    Licences {
        /// Licences in the batch.
        #[arg(long, default_value_t = 100_000)]
        count: usize,
        /// Seconds per signature measurement (also passed to `openssl speed -seconds`).
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        /// Directory for the SQLite files (default: a temporary one).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The bare axum + rusqlite lookup server that `bench api` measures beside govhub
    /// (started by it; `GET /{key}` answers the row's listed columns as JSON).
    #[command(hide = true)]
    Reference {
        /// The SQLite file (opened read-only).
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        table: String,
        /// The key column.
        #[arg(long)]
        key: String,
        /// Columns to answer, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        columns: Vec<String>,
        #[arg(long)]
        listen: String,
    },
    /// Durable audit appends per second with 1 and with many concurrent callers (group commit).
    Audit {
        /// Appends per run.
        #[arg(long, default_value_t = 20_000)]
        entries: usize,
        /// Concurrent callers per run, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1, 64])]
        callers: Vec<usize>,
        /// Also measure on PostgreSQL (a server URL; a fresh database is created on it).
        #[arg(long, env = "GOVHUB_BENCH_POSTGRES_URL")]
        postgres: Option<String>,
        /// Directory for the SQLite files (default: a temporary one). Use a real disk.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user (creates and migrates the store if needed).
    CreateUser {
        #[arg(long)]
        username: String,
        /// File holding the password (first line); `-` for standard input.
        #[arg(long)]
        password_file: PathBuf,
        /// platform-admin, data-officer, approver, app-developer, service-officer, citizen, enterprise
        #[arg(long)]
        role: String,
        /// Organisation code (required for government staff roles).
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// A citizen's ID number or an enterprise's USCC.
        #[arg(long)]
        subject_id: Option<String>,
    },
    /// Create an organisation.
    CreateOrg {
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        parent: Option<String>,
        #[arg(long)]
        admin_code: Option<String>,
        #[arg(long)]
        uscc: Option<String>,
        /// city, department, district or other
        #[arg(long)]
        kind: Option<String>,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GOVHUB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).init();
}

fn settings(cli: &Cli, serve: Option<&ServeArgs>) -> Result<Settings> {
    let file = FileConfig::load(cli.config.as_deref())?;
    let over = Overrides {
        listen: serve.and_then(|s| s.listen.clone()),
        app_rate_per_sec: serve.and_then(|s| s.app_rate_per_sec),
        data_dir: cli.data_dir.clone(),
        database: cli.database.clone(),
        secure_cookies: serve.and_then(|s| s.secure_cookies),
        max_body_bytes: serve.and_then(|s| s.max_body_bytes),
        key_passphrase_file: cli.key_passphrase_file.clone(),
        key_passphrase_env: std::env::var_os(keys::PASSPHRASE_ENV).is_some(),
    };
    Settings::resolve(file, over)
}

async fn open_hub(s: &Settings) -> Result<Hub> {
    if s.database.starts_with("sqlite:") || !s.database.contains("://") {
        std::fs::create_dir_all(&s.data_dir)
            .with_context(|| format!("creating data directory {}", s.data_dir.display()))?;
    }
    let store =
        govhub_store::open(&s.database).await.with_context(|| format!("opening store {}", redact(&s.database)))?;
    let hub_settings = HubSettings {
        session_ttl: chrono::Duration::minutes(s.session_ttl_minutes),
        token_ttl: chrono::Duration::minutes(s.token_ttl_minutes),
        app_rate_per_sec: s.app_rate_per_sec,
        app_burst: s.app_rate_per_sec.saturating_mul(2),
        webhooks: s.webhook_policy(),
    };
    Ok(Hub::new(store, Arc::new(SystemClock), hub_settings))
}

/// Before serving: deliveries a crash left `running` are marked failed (their rows were
/// never committed).
async fn recover(hub: &Hub) -> Result<()> {
    let n = hub.recover_interrupted_deliveries().await.map_err(domain)?;
    if n > 0 {
        tracing::warn!(deliveries = n, "marked deliveries interrupted by a previous stop as failed");
    }
    // Licence types defined before licences were shared get their catalog entries.
    hub.ensure_licence_catalog().await.map_err(domain)?;
    Ok(())
}

/// Hide a password in a database URL before printing it.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

async fn run_server(hub: Hub, s: &Settings, banner: impl FnOnce(&str)) -> Result<()> {
    let config = ServerConfig {
        secure_cookies: s.secure_cookies,
        max_body_bytes: s.max_body_bytes,
        max_delivery_bytes: s.max_delivery_bytes,
        upload_dir: s.data_dir.join("uploads"),
        metrics_token: std::env::var("GOVHUB_METRICS_TOKEN").ok().filter(|t| t.len() >= 16),
        public_url: std::env::var("GOVHUB_PUBLIC_URL").ok().filter(|u| !u.trim().is_empty()),
    };
    std::fs::create_dir_all(&config.upload_dir)
        .with_context(|| format!("creating the upload directory {}", config.upload_dir.display()))?;
    let state = AppState::new(hub, config).context("loading templates")?;
    let listener = tokio::net::TcpListener::bind(&s.listen).await.with_context(|| format!("binding {}", s.listen))?;
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
    banner(&format!("http://{host}:{}", addr.port()));
    tracing::info!(listen = %addr, database = %redact(&s.database), "govhub serving");
    let hub = state.hub.clone();
    let checkpointer = audit_cmd::spawn_checkpointer(hub.clone(), s.checkpoint_policy());
    let served = govhub_server::serve(listener, state, shutdown_signal()).await.context("server failed");
    checkpointer.abort();
    audit_cmd::final_checkpoint(&hub).await;
    served
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

fn read_password(path: &PathBuf) -> Result<String> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_line(&mut s)?;
        s
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading password file {}", path.display()))?
    };
    let pw = text.lines().next().unwrap_or_default().to_string();
    if pw.is_empty() {
        bail!("the password file is empty");
    }
    Ok(pw)
}

fn domain(e: govhub_core::Error) -> anyhow::Error {
    anyhow::anyhow!("{} [{}]\n{}", e.message, e.code, e.message_zh)
}

/// On a single core (a one-CPU container, or `taskset`), tokio's single-threaded
/// scheduler: no work-stealing machinery for a pool of one, and fewer wake-ups — ≈ 2 %
/// more consumer-API requests a second on one core (docs/benchmarks.md, session 10).
/// Otherwise a worker per core.
fn main() -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut builder = if cores == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().build().context("starting the async runtime")?.block_on(run())
}

async fn run() -> Result<()> {
    let cli = Cli::parse();
    init_logging();
    match &cli.command {
        Command::Serve(args) => {
            let s = settings(&cli, Some(args))?;
            let key = keys::load(&s, false).await?;
            let hub = keys::attach(open_hub(&s).await?, key).await?;
            recover(&hub).await?;
            run_server(hub, &s, |url| println!("govhub listening on {url}")).await
        }
        Command::Demo(args) => {
            let s = settings(&cli, Some(&args.serve))?;
            let key = keys::load(&s, true).await?;
            let hub = keys::attach(open_hub(&s).await?, key).await?;
            recover(&hub).await?;
            let mut seeded = seed::ensure_demo_city(&hub).await?;
            seeded |= seed::ensure_demo_data(&hub, args.people).await?;
            seeded |= seed::ensure_demo_sharing(&hub).await?;
            let licences = seed::ensure_demo_licences(&hub, args.people).await?;
            run_server(hub, &s, |url| seed::print_banner(url, seeded, &licences)).await
        }
        Command::Admin(AdminCommand::CreateUser { username, password_file, role, org, display_name, subject_id }) => {
            let s = settings(&cli, None)?;
            let password = read_password(password_file)?;
            let hub = open_hub(&s).await?;
            let input = UserInput {
                username: username.clone(),
                password,
                role: role.clone(),
                org: org.clone(),
                display_name: display_name.clone(),
                subject_id: subject_id.clone(),
            };
            let user = hub
                .create_user(&Principal::system(), NewUser::try_from(input).map_err(domain)?, &Ctx::default())
                .await
                .map_err(domain)?;
            println!("created user {} ({}) in {}", user.username, user.role.as_str(), redact(&s.database));
            Ok(())
        }
        Command::Admin(AdminCommand::CreateOrg { code, name, parent, admin_code, uscc, kind }) => {
            let s = settings(&cli, None)?;
            let hub = open_hub(&s).await?;
            let input = OrgInput {
                code: code.clone(),
                name: name.clone(),
                parent: parent.clone(),
                admin_code: admin_code.clone(),
                uscc: uscc.clone(),
                kind: kind.clone(),
            };
            let org = hub
                .create_org(&Principal::system(), NewOrg::try_from(input).map_err(domain)?, &Ctx::default())
                .await
                .map_err(domain)?;
            println!("created organisation {} {}", org.code, org.name);
            Ok(())
        }
        Command::Push { server, token_file, dataset, mode, encoding, sheet, quiet, file } => {
            let code = push::run(push::PushArgs {
                server: server.clone(),
                token_file: token_file.clone(),
                dataset: dataset.clone(),
                file: file.clone(),
                mode: mode.clone(),
                encoding: encoding.clone(),
                sheet: sheet.clone(),
                quiet: *quiet,
            })
            .await?;
            std::process::exit(code)
        }
        Command::Bench(BenchCommand::Api { rows, keys, seconds, connections, dir, skip_peers, postgres }) => {
            bench_api::api(bench_api::ApiBench {
                rows: *rows,
                keys: *keys,
                seconds: *seconds,
                connections: *connections,
                dir: dir.clone(),
                skip_peers: *skip_peers,
                postgres: postgres.clone(),
            })
            .await
        }
        Command::Bench(BenchCommand::Ingest { rows, postgres, dir, skip_peers, reader_only, skip_sqlite, file }) => {
            bench::ingest(bench::IngestBench {
                rows: *rows,
                postgres: postgres.clone(),
                dir: dir.clone(),
                skip_peers: *skip_peers,
                reader_only: *reader_only,
                skip_sqlite: *skip_sqlite,
                file: file.clone(),
            })
            .await
        }
        Command::Bench(BenchCommand::Licences { count, seconds, dir }) => {
            bench_licences::licences(bench_licences::LicenceBench {
                count: *count,
                seconds: *seconds,
                dir: dir.clone(),
            })
            .await
        }
        Command::Bench(BenchCommand::Reference { file, table, key, columns, listen }) => {
            bench_reference::serve(bench_reference::ReferenceArgs {
                database: file.clone(),
                table: table.clone(),
                key: key.clone(),
                columns: columns.clone(),
                listen: listen.clone(),
            })
            .await
        }
        Command::Bench(BenchCommand::Audit { entries, callers, postgres, dir }) => {
            bench_audit::audit(bench_audit::AuditBench {
                entries: *entries,
                callers: callers.clone(),
                postgres: postgres.clone(),
                dir: dir.clone(),
            })
            .await
        }
        Command::Audit(AuditCommand::Verify { public_key, expect_head, quiet }) => {
            let s = settings(&cli, None)?;
            let code = audit_cmd::verify(audit_cmd::VerifyArgs {
                database: s.database.clone(),
                data_dir: s.data_dir.clone(),
                public_keys: public_key.clone(),
                expect_head: expect_head.clone(),
                quiet: *quiet,
            })
            .await;
            std::process::exit(code)
        }
        Command::Audit(AuditCommand::Checkpoint) => {
            let s = settings(&cli, None)?;
            let key = keys::load(&s, false).await?;
            let hub = keys::attach(open_hub(&s).await?, key).await?;
            audit_cmd::checkpoint(&hub).await
        }
        Command::Licence(LicenceCommand::Verify { file, root, json, online }) => {
            std::process::exit(licence_cmd::verify(file, root, *json, online.as_deref()).await)
        }
        Command::Licence(LicenceCommand::IssueBatch { issuer, quiet, report, file }) => {
            let run = async {
                let s = settings(&cli, None)?;
                let key = keys::load(&s, false).await?;
                let hub = keys::attach(open_hub(&s).await?, key).await?;
                licence_cmd::issue_batch(&hub, issuer, file, *quiet, report.as_deref()).await
            };
            match run.await {
                Ok(code) => std::process::exit(code),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    std::process::exit(2)
                }
            }
        }
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(&govhub_server::api::openapi())?);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{redact, Cli};

    /// clap checks the whole command tree, and the command line `bench api` starts its
    /// reference server with parses (an argument named like a global one, as
    /// `--database` once was, panics only when it is read).
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::{CommandFactory, Parser};
        Cli::command().debug_assert();
        let args = crate::bench_api::reference_args("/tmp/x.db".as_ref(), "t", 4000);
        let cli = Cli::try_parse_from(std::iter::once("govhub".into()).chain(args)).expect("parses");
        match cli.command {
            super::Command::Bench(super::BenchCommand::Reference { file, table, key, columns, listen }) => {
                assert_eq!(file, std::path::PathBuf::from("/tmp/x.db"));
                assert_eq!((table.as_str(), key.as_str(), listen.as_str()), ("t", "sfzh", "127.0.0.1:4000"));
                assert_eq!(columns, ["sfzh", "xm", "xb", "csrq", "hjdz"]);
            }
            _ => panic!("not the reference server's command"),
        }
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://./x.db"), "sqlite://./x.db");
    }
}
