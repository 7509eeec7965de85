//! `govhub licence …`: offline verification of a licence file, and batch issue from a
//! CSV or JSON Lines file (migrating paper licences).

use anyhow::{bail, Context, Result};
use govhub_core::authz::Principal;
use govhub_core::licence::{verify_file, Verdict};
use govhub_core::licence_service::LicenceInput;
use govhub_core::service::{Ctx, Hub};
use govhub_crypto::pki::Certificate;
use std::path::Path;

/// Exit codes of `govhub licence verify`: 0 valid, 1 not valid (any verdict), 2 the
/// check could not be made (no root certificate, unreadable file).
pub fn verify(file: &Path, root: &Path, json: bool) -> i32 {
    let root_pem = match std::fs::read_to_string(root) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot read the root certificate {}: {e}", root.display());
            return 2;
        }
    };
    let root = match Certificate::from_pem(&root_pem) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{} is not a PEM certificate: {e}", root.display());
            return 2;
        }
    };
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {}: {e}", file.display());
            return 2;
        }
    };
    let v = verify_file(&bytes, &root, chrono::Utc::now());
    if json {
        let out = serde_json::json!({
            "result": v.verdict.code(),
            "valid": v.verdict.is_valid(),
            "reason": v.verdict.reason(),
            "reason_zh": v.verdict.reason_zh(),
            "id": v.document.as_ref().map(|d| d.id.clone()),
            "type": v.document.as_ref().map(|d| d.type_name.clone()),
            "issuer": v.document.as_ref().map(|d| d.issuer_name.clone()),
            "valid_from": v.document.as_ref().map(|d| d.valid_from.to_string()),
            "valid_until": v.document.as_ref().map(|d| d.valid_until.to_string()),
        });
        println!("{out}");
    } else {
        println!("result: {}", v.verdict.code());
        println!("reason: {}", v.verdict.reason());
        println!("原因: {}", v.verdict.reason_zh());
        if let Some(d) = &v.document {
            println!("licence: {} ({})", d.id, d.type_name);
            println!("holder: {} [{}]", d.holder_name, d.holder_code);
            println!("issuer: {} [{}]", d.issuer_name, d.issuer_code);
            println!("valid: {} to {}", d.valid_from, d.valid_until);
        }
        if let (Some(seal), Some(at)) = (&v.seal_name, v.signed_at) {
            println!("sealed: {seal} at {at}");
        }
        if !matches!(v.verdict, Verdict::Valid) {
            println!("note: suspension and revocation are checked online (the verify page or the status list)");
        }
    }
    if v.verdict.is_valid() {
        0
    } else {
        1
    }
}

/// Read a batch file: JSON Lines (one `POST /api/v1/licences` body per line) or CSV
/// with the columns `type, holder_code, holder_name, valid_from, valid_until` and any
/// other column taken as a field of the type.
pub fn read_batch(path: &Path) -> Result<Vec<LicenceInput>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let is_csv = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut out = Vec::new();
    if is_csv {
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let headers = r.headers()?.clone();
        for (i, rec) in r.records().enumerate() {
            let rec = rec.with_context(|| format!("CSV record {}", i + 1))?;
            let get = |name: &str| headers.iter().position(|h| h == name).and_then(|j| rec.get(j)).unwrap_or("");
            let mut fields = serde_json::Map::new();
            for (h, v) in headers.iter().zip(rec.iter()) {
                if !["type", "holder_code", "holder_name", "valid_from", "valid_until"].contains(&h) && !v.is_empty() {
                    fields.insert(h.to_string(), serde_json::Value::String(v.to_string()));
                }
            }
            out.push(LicenceInput {
                type_code: get("type").into(),
                holder_code: get("holder_code").into(),
                holder_name: get("holder_name").into(),
                fields,
                valid_from: get("valid_from").into(),
                valid_until: get("valid_until").into(),
                issuer: None,
            });
        }
    } else {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            out.push(serde_json::from_str(line).with_context(|| format!("line {} is not a licence object", i + 1))?);
        }
    }
    Ok(out)
}

/// `govhub licence issue-batch`: issue every record for `issuer`, with a progress bar.
pub async fn issue_batch(hub: &Hub, issuer: &str, file: &Path, quiet: bool) -> Result<()> {
    let inputs = read_batch(file)?;
    let total = inputs.len() as u64;
    let bar = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(total) };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} licences {per_sec} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let b2 = bar.clone();
    let started = std::time::Instant::now();
    let out = hub
        .issue_licence_batch(&Principal::system(), issuer, inputs, &move |n| b2.set_position(n), &Ctx::default())
        .await
        .map_err(|e| anyhow::anyhow!("{} [{}]", e.message, e.code))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "issued {} licences in {secs:.1} s ({:.0}/s); refused {}",
        out.issued.len(),
        out.issued.len() as f64 / secs.max(1e-9),
        out.refused.len()
    );
    for p in out.refused.iter().take(50) {
        println!(
            "record {}: {} [{}]{}",
            p.row,
            p.error.message,
            p.error.code,
            p.error.field.as_deref().map(|f| format!(" ({f})")).unwrap_or_default()
        );
    }
    if out.issued.is_empty() && total > 0 {
        bail!("no licence was issued");
    }
    Ok(())
}
