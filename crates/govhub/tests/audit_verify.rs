//! `govhub audit verify`, run as an operator runs it (the real binary), against the
//! database of a server that has served real HTTP requests — then the same database
//! tampered with SQL in every way the chain must catch: a field updated, a row deleted,
//! a forged row inserted (naively, and with its hash properly recomputed), two rows
//! swapped, the tail deleted past a checkpoint, a checkpoint's signature forged, the
//! log rewritten with every hash recomputed. Each time: exit code 1 and the first bad
//! seq named. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use govhub_core::audit::{checkpoint_message, ChainEntry};
use govhub_core::signer::{PlatformSigner, Sm2Signer};
use govhub_testkit::{backend_tests, Backend, TestApp};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_govhub");

struct Fixture {
    app: TestApp,
    key_file: PathBuf,
    /// The seq of the checkpoint made through the API in the middle of the activity.
    checkpoint: i64,
    head: i64,
    _dir: tempfile::TempDir,
}

/// Real HTTP activity: organisations, a user, a dataset, a refused request, audit
/// reads, a checkpoint through the API, more requests after it.
async fn fixture(app: TestApp) -> Fixture {
    let admin = app.admin_token().await;
    for body in [
        json!({"code": "cz", "name": "常州市人民政府", "admin_code": "320400"}),
        json!({"code": "cz-gaj", "name": "常州市公安局", "parent": "cz"}),
    ] {
        let (s, b) = app.post("/api/v1/orgs", &admin, &body).await;
        assert_eq!(s, 201, "{b}");
    }
    app.create_user("gaj-officer", "officer-pass-1", "data-officer", Some("cz-gaj")).await;
    let officer = app.token("gaj-officer", "officer-pass-1").await;
    let schema = json!({"fields": [{"name": "sfzh", "type": "string", "format": "id-number"}, {"name": "xm"}],
        "primaryKey": "sfzh"});
    let ds = json!({"code": "gaj-hjrk", "name": "户籍人口", "provider": "cz-gaj", "sharing_class": "有条件共享",
        "open_class": "不予开放", "grade": "重要", "update_cycle": "daily", "schema": schema});
    let (s, b) = app.post("/api/v1/datasets", &officer, &ds).await;
    assert_eq!(s, 201, "{b}");
    let (s, _) = app.post("/api/v1/orgs", &officer, &json!({"code": "cz-x", "name": "越权"})).await;
    assert_eq!(s, 403);
    let (s, _) = app.get("/api/v1/audit", &admin).await;
    assert_eq!(s, 200);
    let (s, cp) = app.post("/api/v1/audit/checkpoints", &admin, &json!({})).await;
    assert_eq!(s, 201, "{cp}");
    let checkpoint = cp["seq"].as_i64().unwrap();
    for _ in 0..3 {
        let (s, _) = app.get("/api/v1/orgs", &officer).await;
        assert_eq!(s, 200);
    }
    let (s, _) = app.get("/api/v1/datasets/gaj-hjrk", &officer).await;
    assert_eq!(s, 200);
    let (s, status) = app.get("/api/v1/audit/status", &admin).await;
    assert_eq!(s, 200);
    assert_eq!(status["latest_checkpoint"]["seq"], checkpoint);
    let head = app.hub.store().audit_head().await.unwrap().unwrap().seq;
    assert!(head >= checkpoint + 5, "entries after the checkpoint: head {head}, checkpoint {checkpoint}");

    // The operator's copy of the public key, as served.
    let r = app.client.get(app.url("/api/v1/audit/public-key.pem")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let pem = r.text().await.unwrap();
    assert_eq!(Some(pem.clone()), app.hub.platform_public_key_pem());
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("platform-pub.pem");
    std::fs::write(&key_file, pem).unwrap();
    Fixture { app, key_file, checkpoint, head, _dir: dir }
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    /// Exit 1 naming `seq` as the first bad entry.
    fn assert_broken_at(&self, seq: i64, kind_words: &str) {
        assert_eq!(self.code, 1, "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        assert!(
            self.stdout.contains(&format!("first bad entry: seq {seq}\n")),
            "expected seq {seq} to be named:\n{}",
            self.stdout
        );
        assert!(self.stdout.contains(kind_words), "expected \"{kind_words}\" in:\n{}", self.stdout);
    }
}

fn verify(f: &Fixture, extra: &[&str]) -> Outcome {
    let out = Command::new(BIN)
        .args(["audit", "verify", "--quiet", "--database", &f.app.database_url, "--public-key"])
        .arg(&f.key_file)
        .args(extra)
        .env("GOVHUB_LOG", "warn")
        .output()
        .unwrap();
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run SQL against the audit log's database: the audit file on SQLite.
async fn exec(app: &TestApp, sql: &str) {
    match app.backend {
        Backend::Sqlite => {
            let main = app.database_url.trim_start_matches("sqlite://");
            let c = rusqlite::Connection::open(govhub_store::sqlite::audit_path(Path::new(main))).unwrap();
            c.execute_batch(sql).unwrap();
        }
        Backend::Postgres => {
            let (c, conn) = tokio_postgres::connect(&app.database_url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            c.batch_execute(sql).await.unwrap();
        }
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn opt(s: &Option<String>) -> String {
    s.as_deref().map(quote).unwrap_or_else(|| "NULL".into())
}

fn bytes(backend: Backend, b: &[u8]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    match backend {
        Backend::Sqlite => format!("X'{hex}'"),
        Backend::Postgres => format!("'\\x{hex}'::bytea"),
    }
}

/// SQL that stores `e` in place of whatever row has its seq.
fn upsert_sql(e: &ChainEntry) -> String {
    let b = &e.body;
    format!(
        "DELETE FROM audit_log WHERE seq = {seq};
         INSERT INTO audit_log (seq, prev_hash, hash, at, actor, actor_role, actor_org, on_behalf_of, action, target,
             outcome, detail, request_id, app, purpose, row_count)
         VALUES ({seq}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {});",
        quote(&e.prev_hash),
        quote(&e.hash),
        quote(&b.at),
        quote(&b.actor),
        opt(&b.actor_role),
        opt(&b.actor_org),
        opt(&b.on_behalf_of),
        quote(&b.action),
        quote(&b.target),
        quote(&b.outcome),
        quote(&b.detail),
        opt(&b.request_id),
        opt(&b.app),
        opt(&b.purpose),
        b.rows.map(|r| r.to_string()).unwrap_or_else(|| "NULL".into()),
        seq = e.seq,
    )
}

async fn entry(app: &TestApp, seq: i64) -> ChainEntry {
    app.hub.store().audit_chain(seq - 1, 1).await.unwrap().remove(0)
}

// ------------------------------------------------------------------ scenarios

async fn intact_log_verifies(app: TestApp) {
    let f = fixture(app).await;
    let r = verify(&f, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let head = f.app.hub.store().audit_head().await.unwrap().unwrap();
    assert!(
        r.stdout.contains(&format!("audit log intact: {} entries, 1 signed checkpoints verified", head.seq)),
        "{}",
        r.stdout
    );
    let head_line = format!("head: {}:{}", head.seq, head.hash);
    assert!(r.stdout.contains(&head_line), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("latest checkpoint: seq {}", f.checkpoint)), "{}", r.stdout);
    assert!(r.stdout.contains("protected by the hash chain alone"), "{}", r.stdout);
    // The recorded head checks.
    let recorded = format!("{}:{}", head.seq, head.hash);
    assert_eq!(verify(&f, &["--expect-head", &recorded]).code, 0);

    // Another public key: the checkpoint is named as not signed by it.
    let other = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other.path(), Sm2Signer::ephemeral().unwrap().public_key_pem()).unwrap();
    let out = Command::new(BIN)
        .args(["audit", "verify", "--quiet", "--database", &f.app.database_url, "--public-key"])
        .arg(other.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("first bad entry: seq {}", f.checkpoint)));

    // No public key at all: the check cannot be made (exit 2), and says how to give one.
    let out = Command::new(BIN)
        .args([
            "--data-dir",
            "/nonexistent-govhub-dir",
            "audit",
            "verify",
            "--quiet",
            "--database",
            &f.app.database_url,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--public-key"));

    // Everything the audit API adds is documented.
    let (_, doc) = f.app.get("/api/v1/openapi.json", "").await;
    for p in [
        "/api/v1/audit/checkpoints",
        "/api/v1/audit/status",
        "/api/v1/audit/public-key.pem",
        "/api/v1/audit/about-me",
        "/api/v1/datasets/{code}/audit",
    ] {
        assert!(doc["paths"].get(p).is_some(), "OpenAPI lacks {p}");
    }
}

async fn updated_field_is_named(app: TestApp) {
    let f = fixture(app).await;
    exec(&f.app, "UPDATE audit_log SET target = 'someone-else' WHERE seq = 3").await;
    verify(&f, &[]).assert_broken_at(3, "the entry was modified");
}

async fn deleted_row_is_named(app: TestApp) {
    let f = fixture(app).await;
    exec(&f.app, "DELETE FROM audit_log WHERE seq = 4").await;
    verify(&f, &[]).assert_broken_at(4, "entry missing");
}

async fn forged_row_is_named(app: TestApp) {
    let f = fixture(app).await;
    // A forged entry appended at the end, its hash made up.
    let last = entry(&f.app, f.head).await;
    let mut forged = last.clone();
    forged.seq = f.head + 1;
    forged.prev_hash = last.hash.clone();
    forged.body.actor = "intruder".into();
    forged.hash = "ab".repeat(32);
    exec(&f.app, &upsert_sql(&forged)).await;
    verify(&f, &[]).assert_broken_at(f.head + 1, "the entry was modified");
}

async fn inserted_row_with_recomputed_hash_is_caught(app: TestApp) {
    let f = fixture(app).await;
    // Make room at seq 5 (renumbering the rest) and insert an entry whose hash is
    // correct for its content and position: the entry after it no longer links.
    exec(
        &f.app,
        "UPDATE audit_log SET seq = -seq WHERE seq >= 5;
         UPDATE audit_log SET seq = -seq + 1 WHERE seq < 0;",
    )
    .await;
    let before = entry(&f.app, 4).await;
    let mut body = before.body.clone();
    body.actor = "intruder".into();
    let forged = body.chain(5, before.hash.clone());
    exec(&f.app, &upsert_sql(&forged)).await;
    verify(&f, &[]).assert_broken_at(6, "was inserted, deleted, replaced or moved");
}

async fn swapped_rows_are_named(app: TestApp) {
    let f = fixture(app).await;
    exec(
        &f.app,
        "UPDATE audit_log SET seq = -1 WHERE seq = 2;
         UPDATE audit_log SET seq = 2 WHERE seq = 6;
         UPDATE audit_log SET seq = 6 WHERE seq = -1;",
    )
    .await;
    verify(&f, &[]).assert_broken_at(2, "does not match the hash");
}

async fn truncated_tail_is_named(app: TestApp) {
    let f = fixture(app).await;
    let cut = f.checkpoint - 2;
    exec(&f.app, &format!("DELETE FROM audit_log WHERE seq >= {cut}")).await;
    verify(&f, &[]).assert_broken_at(cut, "the log was truncated");
}

async fn truncation_after_the_last_checkpoint_needs_the_recorded_head(app: TestApp) {
    let f = fixture(app).await;
    let head = entry(&f.app, f.head).await;
    exec(&f.app, &format!("DELETE FROM audit_log WHERE seq > {}", f.head - 2)).await;
    // Without an external copy of the head, removing entries after the newest
    // checkpoint cannot be told from a log that ended there (documented) …
    let r = verify(&f, &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    // … with it, it can.
    let recorded = format!("{}:{}", head.seq, head.hash);
    verify(&f, &["--expect-head", &recorded]).assert_broken_at(f.head - 1, "the log was truncated");
}

async fn forged_checkpoint_signature_is_named(app: TestApp) {
    let f = fixture(app).await;
    let cp = f.app.hub.store().latest_checkpoint().await.unwrap().unwrap();
    // Properly made — right message, well-formed DER — but with another key.
    let intruder = Sm2Signer::ephemeral().unwrap();
    let sig = intruder.sign(&checkpoint_message(cp.seq, &cp.head_hash, cp.at)).unwrap();
    exec(
        &f.app,
        &format!("UPDATE audit_checkpoints SET signature = {} WHERE seq = {}", bytes(f.app.backend, &sig), cp.seq),
    )
    .await;
    verify(&f, &[]).assert_broken_at(cp.seq, "not validly signed by the platform key");
}

async fn rewrite_with_recomputed_hashes_is_caught_by_the_checkpoint(app: TestApp) {
    let f = fixture(app).await;
    // An intruder who knows the format changes entry 3 and recomputes every later
    // hash: the chain is consistent again, but the signed checkpoint is not.
    let mut prev = entry(&f.app, 2).await.hash;
    let mut sql = String::new();
    for seq in 3..=f.head {
        let mut e = entry(&f.app, seq).await;
        if seq == 3 {
            e.body.target = "someone-else".into();
        }
        let e = e.body.clone().chain(seq, prev.clone());
        prev = e.hash.clone();
        sql.push_str(&upsert_sql(&e));
    }
    exec(&f.app, &sql).await;
    verify(&f, &[]).assert_broken_at(f.checkpoint, "rewritten (hashes recomputed) after the checkpoint");
}

async fn background_checkpoints_follow_the_policy(app: TestApp) {
    use govhub_core::audit::CheckpointPolicy;
    let f = fixture(app).await;
    let hub = &f.app.hub;
    let policy = CheckpointPolicy { every_entries: 3, every: chrono::Duration::hours(1) };
    // Entries since the API's checkpoint exceed 3: due, and it covers the head.
    let cp = hub.checkpoint_if_due(&policy).await.unwrap().expect("a checkpoint is due");
    assert_eq!(cp.seq, f.head);
    assert_eq!(hub.checkpoint_if_due(&policy).await.unwrap(), None, "nothing new: not due");
    let admin = f.app.token("root", "root-password-1").await;
    assert_eq!(hub.checkpoint_if_due(&policy).await.unwrap(), None, "one new entry: not due yet");
    for _ in 0..3 {
        f.app.get("/api/v1/orgs", &admin).await;
    }
    let next = hub.checkpoint_if_due(&policy).await.unwrap().expect("due again");
    assert!(next.seq >= cp.seq + 3);
    let r = verify(&f, &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("3 signed checkpoints verified"), "{}", r.stdout);
}

backend_tests!(
    background_checkpoints_follow_the_policy,
    intact_log_verifies,
    updated_field_is_named,
    deleted_row_is_named,
    forged_row_is_named,
    inserted_row_with_recomputed_hash_is_caught,
    swapped_rows_are_named,
    truncated_tail_is_named,
    truncation_after_the_last_checkpoint_needs_the_recorded_head,
    forged_checkpoint_signature_is_named,
    rewrite_with_recomputed_hashes_is_caught_by_the_checkpoint,
);

// ------------------------------------------------------------------ docs/audit.md

/// The fenced block following `<!-- NAME: … -->` in docs/audit.md.
fn doc_block(name: &str) -> String {
    let doc = include_str!("../../../docs/audit.md");
    let start = doc.find(&format!("<!-- {name}:")).unwrap_or_else(|| panic!("docs/audit.md lacks {name}"));
    let rest = &doc[start..];
    let open = rest.find("```").unwrap();
    let body = &rest[open..];
    let first_newline = body.find('\n').unwrap();
    let end = body[first_newline..].find("\n```").unwrap();
    body[first_newline + 1..first_newline + end + 1].to_string()
}

fn tools_available() -> bool {
    let ok =
        |cmd: &str, args: &[&str]| Command::new(cmd).args(args).output().map(|o| o.status.success()).unwrap_or(false);
    ok("python3", &["-c", "import hashlib; hashlib.new('sm3')"])
        && ok("sqlite3", &["--version"])
        && ok("openssl", &["version"])
}

/// The Python chain check and the OpenSSL checkpoint check in docs/audit.md work on a
/// real audit file, and fail when it is tampered with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_independent_checks_work() {
    if !tools_available() {
        eprintln!(
            "\n*** docs/audit.md scripts SKIPPED: they need python3 (hashlib with SM3), sqlite3 and openssl ***\n"
        );
        return;
    }
    let f = fixture(govhub_testkit::spawn_app(Backend::Sqlite).await).await;
    // Entries with subjects, so the script's subject handling is exercised too.
    let store = f.app.hub.store();
    store
        .append_audit(&govhub_store::conformance_audit::access(
            "rsj-app",
            "gaj-hjrk",
            &["32040219900101123X", "320402199001011235"],
        ))
        .await
        .unwrap();
    let head = store.audit_head().await.unwrap().unwrap();
    let main = f.app.database_url.trim_start_matches("sqlite://").to_string();
    let audit = govhub_store::sqlite::audit_path(Path::new(&main));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("verify-chain.py"), doc_block("verify-chain.py")).unwrap();
    std::fs::write(dir.path().join("verify-checkpoint.sh"), doc_block("verify-checkpoint.sh")).unwrap();
    let chain = || Command::new("python3").arg(dir.path().join("verify-chain.py")).arg(&audit).output().unwrap();
    let checkpoint = || {
        Command::new("bash")
            .arg(dir.path().join("verify-checkpoint.sh"))
            .arg(&audit)
            .arg(&f.key_file)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = chain();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("chain intact: {} entries, head {}:{}", head.seq, head.seq, head.hash)
    );
    let out = checkpoint();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("Verified OK") && text.contains(&format!("checkpoint {} matches the chain", f.checkpoint)),
        "{text}"
    );

    exec(&f.app, "UPDATE audit_log SET subjects = upper(subjects) WHERE seq = (SELECT max(seq) FROM audit_log)").await;
    let out = chain();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("seq {}: content does not match its hash", head.seq))
    );
    let cp = store.latest_checkpoint().await.unwrap().unwrap();
    let sig = Sm2Signer::ephemeral().unwrap().sign(&checkpoint_message(cp.seq, &cp.head_hash, cp.at)).unwrap();
    exec(
        &f.app,
        &format!("UPDATE audit_checkpoints SET signature = {} WHERE seq = {}", bytes(Backend::Sqlite, &sig), cp.seq),
    )
    .await;
    let out = checkpoint();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Verification failure"));
}
