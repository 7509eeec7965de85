//! `govhub audit verify` and `govhub audit checkpoint`, and the background task that
//! signs checkpoints while the server runs.
//!
//! `verify` exit codes: 0 the log is intact; 1 the log is broken (the first bad entry
//! is named); 2 the check could not be made (no database, no public key, I/O).

use crate::keys;
use anyhow::{bail, Context, Result};
use govhub_core::audit::{verify_log, CheckpointPolicy, VerifyReport};
use govhub_core::authz::Principal;
use govhub_core::service::{Ctx, Hub};
use govhub_store::Location;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

pub struct VerifyArgs {
    pub database: String,
    pub data_dir: PathBuf,
    pub public_keys: Vec<PathBuf>,
    /// `SEQ:HASH` recorded earlier outside govhub: the log must still contain it.
    pub expect_head: Option<String>,
    pub quiet: bool,
}

pub const EXIT_INTACT: i32 = 0;
pub const EXIT_BROKEN: i32 = 1;
pub const EXIT_ERROR: i32 = 2;

/// Run the check; returns the process exit code (errors are printed here).
pub async fn verify(args: VerifyArgs) -> i32 {
    match verify_inner(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("govhub audit verify: could not check the audit log: {e:#}");
            EXIT_ERROR
        }
    }
}

fn parse_expected_head(s: &str) -> Result<(i64, String)> {
    let (seq, hash) = s.split_once(':').context("--expect-head must be SEQ:HASH, as printed by a previous verify")?;
    let seq: i64 = seq.trim().parse().context("--expect-head: SEQ is not a number")?;
    let hash = hash.trim().to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("--expect-head: HASH must be 64 hex digits");
    }
    Ok((seq, hash))
}

async fn verify_inner(args: VerifyArgs) -> Result<i32> {
    let expected_head = args.expect_head.as_deref().map(parse_expected_head).transpose()?;
    let key_files = if args.public_keys.is_empty() {
        let default = keys::public_key_path(&args.data_dir);
        if !default.exists() {
            bail!(
                "no platform public key: {} does not exist. Give --public-key FILE (an independent copy of the \
                 platform's public key, e.g. saved from GET /api/v1/audit/public-key.pem)",
                default.display()
            );
        }
        vec![default]
    } else {
        args.public_keys.clone()
    };
    let public_keys = keys::read_public_keys(&key_files)?;
    if let Location::Sqlite(path) = Location::parse(&args.database).map_err(|e| anyhow::anyhow!("{e}"))? {
        if !path.exists() {
            bail!("there is no database at {}", path.display());
        }
    }
    let store = govhub_store::open(&args.database).await.map_err(|e| anyhow::anyhow!("opening the store: {e}"))?;
    let total = store.audit_head().await.map_err(|e| anyhow::anyhow!("{e}"))?.map(|h| h.seq).unwrap_or(0);
    let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(total.max(0) as u64) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} verifying {pos}/{len} entries [{bar:30}] {per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = verify_log(store.as_ref(), &public_keys, &mut |seq| bar.set_position(seq.max(0) as u64))
        .await
        .map_err(|e| anyhow::anyhow!("reading the audit log: {e}"))?;
    bar.finish_and_clear();
    if let Some(fault) = &report.fault {
        println!("audit log BROKEN — first bad entry: seq {}", fault.seq());
        println!("  {fault}");
        println!("  ({} entries before it verified; {} checkpoints checked)", report.entries, report.checkpoints);
        eprintln!("govhub audit verify: FAILED at seq {} ({})", fault.seq(), fault.kind());
        return Ok(EXIT_BROKEN);
    }
    if let Some((seq, hash)) = &expected_head {
        let found = store.audit_chain(seq - 1, 1).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        match found.first().filter(|e| e.seq == *seq) {
            Some(e) if &e.hash == hash => {}
            Some(e) => {
                println!("audit log BROKEN — first bad entry: seq {seq}");
                println!(
                    "  seq {seq}: its hash {}… is not the recorded head {}… — entries up to seq {seq} were rewritten",
                    &e.hash[..16.min(e.hash.len())],
                    &hash[..16]
                );
                return Ok(EXIT_BROKEN);
            }
            None => {
                let last = report.head.as_ref().map(|h| h.seq).unwrap_or(0);
                println!("audit log BROKEN — first bad entry: seq {}", last + 1);
                println!(
                    "  seq {}: entries {}..={seq} are missing — the log ends at seq {last} but the recorded head is \
                     seq {seq} (the log was truncated)",
                    last + 1,
                    last + 1
                );
                return Ok(EXIT_BROKEN);
            }
        }
    }
    print_intact(&report, &key_files, expected_head.is_some());
    Ok(EXIT_INTACT)
}

fn print_intact(r: &VerifyReport, key_files: &[PathBuf], head_checked: bool) {
    println!(
        "audit log intact: {} entries, {} signed checkpoints verified (public key {})",
        r.entries,
        r.checkpoints,
        key_files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    match &r.head {
        Some(h) => println!("head: {}:{}", h.seq, h.hash),
        None => println!("head: (empty log)"),
    }
    let head_seq = r.head.as_ref().map(|h| h.seq).unwrap_or(0);
    match r.latest_checkpoint {
        Some((seq, at)) => {
            println!("latest checkpoint: seq {seq} at {}", at.format("%Y-%m-%dT%H:%M:%S%.6fZ"));
            if head_seq > seq && !head_checked {
                println!(
                    "note: the {} entries after seq {seq} are protected by the hash chain alone until the next \
                     checkpoint; keep the head line above outside govhub and pass it back with --expect-head to \
                     detect their removal",
                    head_seq - seq
                );
            }
        }
        None if head_seq > 0 => println!(
            "note: no signed checkpoint yet; keep the head line above outside govhub and pass it back with \
             --expect-head to detect truncation"
        ),
        None => {}
    }
}

/// `govhub audit checkpoint`: sign one now.
pub async fn checkpoint(hub: &Hub) -> Result<()> {
    let cp = hub.create_checkpoint(&Principal::system(), &Ctx::default()).await.map_err(crate::domain)?;
    println!("checkpoint: seq {} head {} at {}", cp.seq, cp.head_hash, cp.at.format("%Y-%m-%dT%H:%M:%S%.6fZ"));
    println!("signed by platform key {}", cp.key_fingerprint);
    Ok(())
}

/// While the server runs: a checkpoint whenever `policy` says one is due (checked
/// every second, or more often for very short intervals).
pub fn spawn_checkpointer(hub: Hub, policy: CheckpointPolicy) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let tick = policy
            .every
            .to_std()
            .unwrap_or_default()
            .clamp(std::time::Duration::from_millis(50), std::time::Duration::from_secs(1));
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match hub.checkpoint_if_due(&policy).await {
                Ok(Some(cp)) => tracing::debug!(seq = cp.seq, "signed an audit checkpoint"),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "audit checkpoint failed"),
            }
        }
    })
}

/// On shutdown: cover whatever was appended since the last checkpoint.
pub async fn final_checkpoint(hub: &Hub) {
    match hub.checkpoint_audit().await {
        Ok(Some(cp)) => tracing::info!(seq = cp.seq, "final audit checkpoint"),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "final audit checkpoint failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_expected_head;

    #[test]
    fn expected_heads() {
        let h = "ab".repeat(32);
        assert_eq!(parse_expected_head(&format!("12:{h}")).unwrap(), (12, h.clone()));
        assert_eq!(parse_expected_head(&format!(" 12 : {} ", h.to_uppercase())).unwrap().1, h);
        assert!(parse_expected_head("12").is_err());
        assert!(parse_expected_head("x:ab").is_err());
        assert!(parse_expected_head("1:abc").is_err());
    }
}
