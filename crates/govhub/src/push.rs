//! `govhub push`: deliver a file to a running hub from the command line, streaming it
//! with a progress bar (bytes, rows, rows/s, ETA), then print the delivery report.

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use govhub_ingest::Format;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub struct PushArgs {
    pub server: String,
    pub token_file: PathBuf,
    pub dataset: String,
    pub file: PathBuf,
    pub mode: Option<String>,
    pub encoding: Option<String>,
    pub sheet: Option<String>,
    pub quiet: bool,
}

/// Percent-encode a query or path component.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn read_token(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading token file {}", path.display()))?;
    let token = text.trim().to_string();
    if token.is_empty() {
        bail!("the token file {} is empty", path.display());
    }
    Ok(token)
}

/// Exit code: 0 delivered (possibly with quarantined rows), 1 the delivery failed.
pub async fn run(a: PushArgs) -> Result<i32> {
    let token = read_token(&a.token_file)?;
    let ext = a.file.extension().and_then(|e| e.to_str()).unwrap_or_default();
    let format = Format::from_extension(ext)
        .with_context(|| format!("{}: unknown file type; use .csv, .jsonl/.ndjson or .xlsx", a.file.display()))?;
    let size = std::fs::metadata(&a.file).with_context(|| format!("reading {}", a.file.display()))?.len();
    let file_name = a.file.file_name().and_then(|n| n.to_str()).unwrap_or("delivery").to_string();

    let mut url = format!(
        "{}/api/v1/datasets/{}/deliveries?file_name={}",
        a.server.trim_end_matches('/'),
        enc(&a.dataset),
        enc(&file_name)
    );
    for (k, v) in [("mode", &a.mode), ("encoding", &a.encoding), ("sheet", &a.sheet)] {
        if let Some(v) = v {
            url.push_str(&format!("&{k}={}", enc(v)));
        }
    }

    let bar = if a.quiet { ProgressBar::hidden() } else { ProgressBar::new(size) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {wide_bar} {bytes}/{total_bytes} · {msg} · ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("█▉▊▋▌▍▎▏ "),
    );
    let rows = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let file = tokio::fs::File::open(&a.file).await.with_context(|| format!("opening {}", a.file.display()))?;
    let counting = {
        let bar = bar.clone();
        let rows = rows.clone();
        let line_based = format != Format::Xlsx;
        tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map(move |chunk| {
            if let Ok(bytes) = &chunk {
                if line_based {
                    let n = bytes.iter().filter(|b| **b == b'\n').count() as u64;
                    let total = rows.fetch_add(n, Ordering::Relaxed) + n;
                    let secs = started.elapsed().as_secs_f64().max(0.001);
                    bar.set_message(format!("{total} 行 rows · {:.0} 行/秒 rows/s", total as f64 / secs));
                }
                bar.inc(bytes.len() as u64);
            }
            chunk
        })
    };
    let client = reqwest::Client::builder().build()?;
    let response = client
        .post(&url)
        .bearer_auth(&token)
        .header(reqwest::header::CONTENT_TYPE, format.content_type())
        .header(reqwest::header::CONTENT_LENGTH, size)
        .body(reqwest::Body::wrap_stream(counting))
        .send();
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let response = response.await.with_context(|| format!("sending to {}", a.server))?;
    bar.finish_and_clear();
    let status = response.status();
    let body: Value = response.json().await.context("the hub's answer is not JSON")?;
    if !status.is_success() {
        bail!(
            "{} [{}]\n{}",
            body["message"].as_str().unwrap_or("request refused"),
            body["code"].as_str().unwrap_or("?"),
            body["message_zh"].as_str().unwrap_or("")
        );
    }
    print_report(&body, &a.server);
    Ok(if body["status"] == "succeeded" { 0 } else { 1 })
}

fn print_report(r: &Value, server: &str) {
    let n = |k: &str| r[k].as_u64().unwrap_or(0);
    let ok = r["status"] == "succeeded";
    println!(
        "交付 Delivery #{} → {} : {}",
        r["id"],
        r["dataset"].as_str().unwrap_or("?"),
        if ok { "成功 succeeded" } else { "失败 failed" }
    );
    println!("  读取 read        {:>12}", n("rows_read"));
    println!(
        "  接收 accepted    {:>12}  (新增 inserted {}, 更新 updated {}, 未变 unchanged {})",
        n("rows_accepted"),
        n("rows_inserted"),
        n("rows_updated"),
        n("rows_unchanged")
    );
    println!("  隔离 quarantined {:>12}", n("rows_quarantined"));
    println!("  警告 warnings    {:>12}", n("warnings"));
    println!("  删除 deleted     {:>12}", n("rows_deleted"));
    println!(
        "  用时 duration    {:>10} ms  ({} · {})",
        n("duration_ms"),
        r["format"].as_str().unwrap_or(""),
        r["encoding"].as_str().unwrap_or("")
    );
    if let Some(e) = r["error"].as_object() {
        println!("  原因 reason: {} [{}]", e["message_zh"].as_str().unwrap_or(""), e["code"].as_str().unwrap_or(""));
        println!("               {}", e["message"].as_str().unwrap_or(""));
    }
    if n("rows_quarantined") > 0 {
        println!(
            "  隔离数据 Quarantined rows: curl -H 'Accept: text/csv' -H 'Authorization: Bearer …' {}/api/v1/deliveries/{}/quarantine",
            server.trim_end_matches('/'),
            r["id"]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::enc;

    #[test]
    fn encodes_components() {
        assert_eq!(enc("户籍 a&b.csv"), "%E6%88%B7%E7%B1%8D%20a%26b.csv");
        assert_eq!(enc("gaj-hjrk"), "gaj-hjrk");
    }
}
