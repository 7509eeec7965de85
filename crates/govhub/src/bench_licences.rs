//! `govhub bench licences`: SM2 signatures and verifications per second on one core,
//! against `openssl speed sm2` run in the same command on the same machine, then one
//! batch issue of `count` licences (default 100,000) on a fresh SQLite store through
//! `Hub::issue_licence_batch` — the path of `govhub licence issue-batch`: validation
//! against the type's schema, GB/T 36903 identifiers, GB/T 38540 seals, storage in
//! transactions of 2,000, one audit entry.

use anyhow::{Context, Result};
use govhub_core::authz::Principal;
use govhub_core::clock::SystemClock;
use govhub_core::input::{NewOrg, OrgInput};
use govhub_core::licence_service::{LicenceInput, LicenceTypeInput};
use govhub_core::service::{Ctx, Hub, HubSettings};
use govhub_core::standards::{IdNumber, Uscc};
use govhub_crypto::sm2keys::Sm2PrivateKey;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct LicenceBench {
    /// Licences in the batch.
    pub count: usize,
    /// Seconds per signature measurement (and for `openssl speed -seconds`).
    pub seconds: u64,
    /// Where the SQLite files go (default: a temporary directory).
    pub dir: Option<PathBuf>,
}

/// The message both govhub and `openssl speed` sign: OpenSSL's speed test signs a short
/// buffer with SM3 and the default ID, so the two measure the same work.
const MESSAGE: &[u8] = b"govhub licence benchmark 0123456";

/// Operations per second of `op`, run on the calling thread for about `seconds`.
fn per_second(seconds: u64, mut op: impl FnMut() -> Result<()>) -> Result<f64> {
    let until = Duration::from_secs(seconds.max(1));
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < until {
        for _ in 0..16 {
            op()?;
        }
        n += 16;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// `openssl speed -seconds N sm2` → (sign/s, verify/s), from its result line
/// ` 256 bits SM2 (CurveSM2)   0.0003s   0.0003s   3060.4   3435.5`.
pub fn parse_openssl_speed(out: &str) -> Option<(f64, f64)> {
    let line = out.lines().rev().find(|l| l.contains("SM2") && l.contains("bits"))?;
    let numbers: Vec<f64> = line.split_whitespace().filter_map(|w| w.parse::<f64>().ok()).collect();
    match numbers.as_slice() {
        [.., sign, verify] => Some((*sign, *verify)),
        _ => None,
    }
}

fn openssl_speed(seconds: u64) -> Option<(String, f64, f64)> {
    let secs = seconds.max(1).to_string();
    let out = std::process::Command::new("openssl").args(["speed", "-seconds", &secs, "sm2"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let (sign, verify) = parse_openssl_speed(&text)?;
    let version = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    Some((version, sign, verify))
}

fn domain(what: &str, e: govhub_core::Error) -> anyhow::Error {
    anyhow::anyhow!("{what}: {} [{}]", e.message, e.code)
}

/// `count` 社会保障卡-like licences for distinct residents.
fn inputs(type_code: &str, count: usize) -> Result<Vec<LicenceInput>> {
    let base = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).context("date")?;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let birth = base + chrono::Duration::days((i / 999 % 25_000) as i64);
        let seq = u16::try_from(i % 999 + 1).unwrap_or(1);
        let id = IdNumber::compose("320402", birth, seq).context("ID number")?;
        let mut fields = serde_json::Map::new();
        fields.insert("kh".into(), serde_json::json!(format!("E{:08}", i)));
        fields.insert("fkrq".into(), serde_json::json!("2026-01-05"));
        out.push(LicenceInput {
            type_code: type_code.to_string(),
            holder_code: id.to_string(),
            holder_name: format!("居民{i:06}"),
            fields,
            valid_from: "2026-01-05".into(),
            valid_until: "2036-01-04".into(),
            issuer: None,
        });
    }
    Ok(out)
}

pub async fn licences(b: LicenceBench) -> Result<()> {
    println!("SM2 (SM3, ID 1234567812345678) on one core, {} s each:", b.seconds);
    let key = Sm2PrivateKey::generate()?;
    let public = key.public_key();
    let seconds = b.seconds;
    let (sign, verify) = tokio::task::spawn_blocking(move || -> Result<(f64, f64)> {
        let sig = key.sign(MESSAGE)?;
        let sign = per_second(seconds, || key.sign(MESSAGE).map(|_| ()).map_err(Into::into))?;
        let verify = per_second(seconds, || public.verify(MESSAGE, &sig).map_err(Into::into))?;
        Ok((sign, verify))
    })
    .await??;
    println!("  govhub   sign {sign:>9.0}/s   verify {verify:>9.0}/s");
    match tokio::task::spawn_blocking(move || openssl_speed(seconds)).await? {
        Some((version, o_sign, o_verify)) => {
            println!("  openssl  sign {o_sign:>9.0}/s   verify {o_verify:>9.0}/s   (openssl speed -seconds {seconds} sm2; {version})");
            println!(
                "  govhub / openssl: sign {:.2}×, verify {:.2}× (target ≥ 0.5×)",
                sign / o_sign.max(1e-9),
                verify / o_verify.max(1e-9)
            );
        }
        None => println!("  openssl speed sm2: not available (OpenSSL 3 with SM2 needed); no comparison made"),
    }

    // The batch, on a fresh SQLite store.
    let tmp = b.dir.is_none();
    let dir = match &b.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("govhub-bench-licences-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let db = dir.join("bench.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        let _ = std::fs::remove_file(format!("{}{suffix}", govhub_store::sqlite::audit_path(&db).display()));
    }
    let store = govhub_store::open(&format!("sqlite://{}", db.display()))
        .await
        .map_err(|e| anyhow::anyhow!("opening the SQLite store: {e}"))?;
    let hub = Hub::new(store, Arc::new(SystemClock), HubSettings::default());
    // The production wrapping of organisation keys (600,000 PBKDF2 rounds), paid once
    // before the clock starts.
    let hub = hub
        .attach_seal_authority(
            Sm2PrivateKey::generate()?,
            b"bench-wrap-secret",
            govhub_crypto::sm2keys::DEFAULT_KDF_ITERATIONS,
        )
        .await
        .map_err(|e| domain("root", e))?;
    let system = Principal::system();
    let ctx = Ctx { request_id: Some("bench-licences".into()) };
    let uscc = Uscc::compose('1', '1', "320400", "01411106").context("USCC")?;
    let org = OrgInput {
        code: "cz-rsj".into(),
        name: "常州市人力资源和社会保障局".into(),
        parent: None,
        admin_code: Some("320400".into()),
        uscc: Some(uscc.to_string()),
        kind: Some("department".into()),
    };
    hub.create_org(&system, NewOrg::try_from(org).map_err(|e| domain("org", e))?, &ctx)
        .await
        .map_err(|e| domain("org", e))?;
    let schema = serde_json::json!({"fields": [
        {"name": "kh", "title": "卡号", "constraints": {"required": true, "pattern": "[A-Z][0-9]{8}"}},
        {"name": "fkrq", "title": "发卡日期", "type": "date", "constraints": {"required": true}}]});
    let t = hub
        .create_licence_type(
            &system,
            LicenceTypeInput {
                name: "社会保障卡".into(),
                authority: Some("cz-rsj".into()),
                holder_kind: "person".into(),
                schema,
                seq: None,
            },
            &ctx,
        )
        .await
        .map_err(|e| domain("licence type", e))?;
    hub.org_certificate_pem("cz-rsj", None).await.map_err(|e| domain("seal key", e))?;
    let batch = inputs(&t.code, b.count)?;
    println!("batch issue of {} licences on SQLite ({}):", b.count, dir.display());
    let bar = indicatif::ProgressBar::new(b.count as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("  {bar:40} {pos}/{len} {per_sec} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let b2 = bar.clone();
    let start = Instant::now();
    let out = hub
        .issue_licence_batch(&system, "cz-rsj", batch, &move |n| b2.set_position(n), &ctx)
        .await
        .map_err(|e| domain("batch", e))?;
    let secs = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    anyhow::ensure!(
        out.refused.is_empty(),
        "the batch refused {} records: {:?}",
        out.refused.len(),
        out.refused.first()
    );
    println!(
        "  issued {} licences in {secs:.1} s: {:.0} licences/s (validated, sealed, stored, audited)",
        out.issued.len(),
        out.issued.len() as f64 / secs.max(1e-9)
    );
    // Spot-check: the first and the last verify as valid.
    for id in [out.issued.first(), out.issued.last()].into_iter().flatten() {
        let v = hub.verify_licence_public(id.as_str()).await.map_err(|e| domain("verify", e))?;
        anyhow::ensure!(v.verdict.is_valid(), "{id} does not verify: {}", v.verdict.code());
    }
    println!("  first and last licence verify: valid");
    drop(hub);
    if tmp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openssl_speed_output() {
        let out = "                              sign    verify    sign/s verify/s\n \
                   256 bits SM2 (CurveSM2)   0.0003s   0.0003s   3060.4   3435.5\n";
        assert_eq!(parse_openssl_speed(out), Some((3060.4, 3435.5)));
        assert_eq!(parse_openssl_speed("nothing"), None);
    }
}
