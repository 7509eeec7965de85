//! `govhub licence …`: offline verification of a licence file, and batch issue from a
//! CSV or JSON Lines file (migrating paper licences).

use anyhow::{bail, Context, Result};
use govhub_core::authz::Principal;
use govhub_core::licence::verify_file;
use govhub_core::licence_service::LicenceInput;
use govhub_core::service::{Ctx, Hub};
use govhub_crypto::pki::Certificate;
use std::path::Path;

/// What the server said of a licence (`GET /api/v1/licences/{id}/verification`).
#[derive(Debug, serde::Deserialize)]
struct Online {
    result: String,
    valid: bool,
    reason: String,
    reason_zh: String,
    seal_revoked_at: Option<String>,
}

/// Ask the server that issued the licence about its status and its seal key now.
async fn ask_online(base: &str, id: &str) -> std::result::Result<Online, String> {
    let url = format!("{}/api/v1/licences/{id}/verification", base.trim_end_matches('/'));
    let r = reqwest::Client::new().get(&url).send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = r.status();
    let body: serde_json::Value = r.json().await.map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url}: HTTP {status}: {}", body["message"].as_str().unwrap_or("no message")));
    }
    serde_json::from_value(body).map_err(|e| format!("{url}: {e}"))
}

/// Exit codes of `govhub licence verify`: 0 valid, 1 not valid (any verdict), 2 the
/// check could not be made (no root certificate, unreadable file, `--online` server
/// unreachable).
///
/// Offline, a file proves who sealed it and that it is unchanged, but not that it was
/// not revoked (or its seal key revoked) afterwards: that is said on every run, and
/// `online` (the issuing server's URL) asks the server for the status as of now.
pub async fn verify(file: &Path, root: &Path, json: bool, online: Option<&str>) -> i32 {
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
    // Status and seal-key revocation: only the server knows them.
    let checked = match (online, &v.document) {
        (Some(base), Some(d)) if v.verdict.is_valid() => match ask_online(base, &d.id).await {
            Ok(o) => Some(o),
            Err(e) => {
                eprintln!("the online status check failed: {e}");
                return 2;
            }
        },
        _ => None,
    };
    let (code, reason, reason_zh, valid) = match &checked {
        Some(o) if !o.valid => (o.result.clone(), o.reason.clone(), o.reason_zh.clone(), false),
        _ => (v.verdict.code().to_string(), v.verdict.reason(), v.verdict.reason_zh(), v.verdict.is_valid()),
    };
    let revocation = match &checked {
        Some(_) => "checked online",
        None if v.verdict.is_valid() => "not checked",
        None => "not needed",
    };
    if json {
        let out = serde_json::json!({
            "result": code,
            "valid": valid,
            "reason": reason,
            "reason_zh": reason_zh,
            "revocation": revocation,
            "seal_revoked_at": checked.as_ref().and_then(|o| o.seal_revoked_at.clone()),
            "id": v.document.as_ref().map(|d| d.id.clone()),
            "type": v.document.as_ref().map(|d| d.type_name.clone()),
            "issuer": v.document.as_ref().map(|d| d.issuer_name.clone()),
            "valid_from": v.document.as_ref().map(|d| d.valid_from.to_string()),
            "valid_until": v.document.as_ref().map(|d| d.valid_until.to_string()),
        });
        println!("{out}");
    } else {
        println!("result: {code}");
        println!("reason: {reason}");
        println!("原因: {reason_zh}");
        if let Some(d) = &v.document {
            println!("licence: {} ({})", d.id, d.type_name);
            println!("holder: {} [{}]", d.holder_name, d.holder_code);
            println!("issuer: {} [{}]", d.issuer_name, d.issuer_code);
            println!("valid: {} to {}", d.valid_from, d.valid_until);
        }
        if let (Some(seal), Some(at)) = (&v.seal_name, v.signed_at) {
            println!("sealed: {seal} at {at}");
        }
        match revocation {
            "checked online" => println!("revocation: checked online (licence status and seal key, as of now)"),
            "not checked" => println!(
                "revocation: NOT CHECKED — offline, a file cannot show a suspension or revocation, or a seal key \
                 revoked after sealing; add --online <server URL> or open the verify page \
                 (吊销状态未核验：离线无法得知证照或印章密钥是否已被吊销，请加 --online 或访问核验页面)"
            ),
            _ => {}
        }
    }
    if valid {
        0
    } else {
        1
    }
}

/// One record of a batch file and the line of the file it starts on.
#[derive(Debug)]
pub struct BatchRecord {
    pub line: u64,
    pub input: LicenceInput,
}

/// A refused record: where it is in the file, which field, why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Refusal {
    /// Line of the file the record starts on (1 = the first line; a CSV header is line 1).
    pub line: u64,
    pub field: Option<String>,
    pub code: String,
    pub message: String,
    pub message_zh: String,
}

/// Read a batch file: JSON Lines (one `POST /api/v1/licences` body per line) or CSV
/// with the columns `type, holder_code, holder_name, valid_from, valid_until` and any
/// other column taken as a field of the type. A record that cannot be read (bad JSON, a
/// CSV row with the wrong number of cells) is a refusal with its line, not the end of
/// the batch; a file that cannot be read at all, or a CSV without the required columns,
/// is an error.
pub fn read_batch(path: &Path) -> Result<(Vec<BatchRecord>, Vec<Refusal>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!("{} is not UTF-8 (byte {}); save it as UTF-8", path.display(), e.utf8_error().valid_up_to())
    })?;
    let is_csv = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut out = Vec::new();
    let mut refused = Vec::new();
    const COLUMNS: [&str; 5] = ["type", "holder_code", "holder_name", "valid_from", "valid_until"];
    if is_csv {
        let mut r = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let headers = r.headers().context("reading the CSV header")?.clone();
        let missing: Vec<&str> = COLUMNS.iter().copied().filter(|c| !headers.iter().any(|h| h == *c)).collect();
        if !missing.is_empty() {
            bail!("the CSV header lacks the column(s) {} (缺少列)", missing.join(", "));
        }
        let mut rec = csv::StringRecord::new();
        loop {
            let line = r.position().line();
            match r.read_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(line);
                    refused.push(Refusal {
                        line,
                        field: None,
                        code: "invalid_request".into(),
                        message: format!("not a CSV record: {e}"),
                        message_zh: "不是有效的CSV记录（列数不符或引号不匹配）".into(),
                    });
                    // A malformed record may leave the reader mid-record; stop only at EOF.
                    if r.is_done() {
                        break;
                    }
                    continue;
                }
            }
            let line = rec.position().map(|p| p.line()).unwrap_or(line);
            let get = |name: &str| headers.iter().position(|h| h == name).and_then(|j| rec.get(j)).unwrap_or("");
            let mut fields = serde_json::Map::new();
            for (h, v) in headers.iter().zip(rec.iter()) {
                if !COLUMNS.contains(&h) && !v.is_empty() {
                    fields.insert(h.to_string(), serde_json::Value::String(v.to_string()));
                }
            }
            let input = LicenceInput {
                type_code: get("type").into(),
                holder_code: get("holder_code").into(),
                holder_name: get("holder_name").into(),
                fields,
                valid_from: get("valid_from").into(),
                valid_until: get("valid_until").into(),
                issuer: None,
            };
            out.push(BatchRecord { line, input });
        }
    } else {
        for (i, text) in (1u64..).zip(text.lines()) {
            let text = text.trim_start_matches('\u{feff}');
            if text.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<LicenceInput>(text) {
                Ok(input) => out.push(BatchRecord { line: i, input }),
                Err(e) => refused.push(Refusal {
                    line: i,
                    field: None,
                    code: "invalid_request".into(),
                    message: format!("not a licence object: {e}"),
                    message_zh: "不是有效的证照记录（JSON 格式或字段名错误）".into(),
                }),
            }
        }
    }
    Ok((out, refused))
}

/// `govhub licence issue-batch`: issue every readable record for `issuer`, with a
/// progress bar. Per record: good records are issued (and stay issued), each refused
/// record is reported with its line, field and reason — on the terminal (the first 50)
/// and, with `report`, all of them as JSON Lines. Returns the exit code: 0 all issued,
/// 1 some refused.
pub async fn issue_batch(hub: &Hub, issuer: &str, file: &Path, quiet: bool, report: Option<&Path>) -> Result<i32> {
    let (records, mut refused) = read_batch(file)?;
    let is_csv = file.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let lines: Vec<u64> = records.iter().map(|r| r.line).collect();
    let inputs: Vec<LicenceInput> = records.into_iter().map(|r| r.input).collect();
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
        .map_err(|e| anyhow::anyhow!("{} [{}]\n{}", e.message, e.code, e.message_zh))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let line_of =
        |row: u64| usize::try_from(row).ok().and_then(|r| r.checked_sub(1)).and_then(|i| lines.get(i)).copied();
    for p in &out.refused {
        refused.push(Refusal {
            line: line_of(p.row).unwrap_or(0),
            // In a CSV a field is its column.
            field: p.error.field.clone().map(|f| match f.strip_prefix("fields.") {
                Some(column) if is_csv => column.to_string(),
                _ => f,
            }),
            code: p.error.code.as_str().to_string(),
            message: p.error.message.clone(),
            message_zh: p.error.message_zh.clone(),
        });
    }
    refused.sort_by_key(|r| r.line);
    let mut skipped: Vec<(u64, String)> =
        out.skipped.iter().map(|s| (line_of(s.row).unwrap_or(0), s.existing.clone())).collect();
    skipped.sort();
    println!(
        "issued {} licences in {secs:.1} s ({:.0}/s); skipped {} already issued; refused {} \
         (签发 {} 张，已签发跳过 {} 条，拒绝 {} 条)",
        out.issued.len(),
        out.issued.len() as f64 / secs.max(1e-9),
        skipped.len(),
        refused.len(),
        out.issued.len(),
        skipped.len(),
        refused.len()
    );
    for (line, id) in skipped.iter().take(50) {
        println!("line {line}: skipped (already issued: {id}) / 已签发，跳过");
    }
    if skipped.len() > 50 {
        println!("… and {} more skipped", skipped.len() - 50);
    }
    for r in refused.iter().take(50) {
        println!(
            "line {}{}: {} [{}] / {}",
            r.line,
            r.field.as_deref().map(|f| format!(" ({f})")).unwrap_or_default(),
            r.message,
            r.code,
            r.message_zh
        );
    }
    if refused.len() > 50 && report.is_none() {
        println!("… and {} more: --report FILE writes every refused line", refused.len() - 50);
    }
    if let Some(path) = report {
        let mut text = String::new();
        for r in &refused {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        std::fs::write(path, text).with_context(|| format!("writing the report {}", path.display()))?;
        println!("report: {} ({} refused lines)", path.display(), refused.len());
    }
    Ok(if refused.is_empty() { 0 } else { 1 })
}
