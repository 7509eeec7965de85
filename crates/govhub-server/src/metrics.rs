//! Usage and latency, in this process: every HTTP request by route and status class,
//! and the consumer API by dataset and app (requests, rows returned, errors, latency).
//! Served at `/metrics` in the Prometheus text format (platform admins, or a scraper
//! holding `GOVHUB_METRICS_TOKEN`) and as JSON at `/api/v1/usage` for the console.

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Debug, Clone, Default, Serialize)]
pub struct Histogram {
    pub count: u64,
    pub sum_seconds: f64,
    /// Cumulative counts per bucket of [`BUCKETS`].
    pub buckets: [u64; BUCKETS.len()],
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        self.count += 1;
        self.sum_seconds += s;
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.buckets[i] += 1;
            }
        }
    }

    /// The latency under which `q` of the requests finished (bucket upper bound).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        govhub_core::audit::bucket_quantile(&BUCKETS, &self.buckets, self.count, q)
    }
}

/// Consumer-API usage of one app on one dataset.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShareUsage {
    pub requests: u64,
    pub rows: u64,
    pub errors: u64,
    pub latency: Histogram,
}

impl ShareUsage {
    /// Mean latency in ms (0 before the first request).
    pub fn mean_ms(&self) -> f64 {
        if self.latency.count == 0 {
            0.0
        } else {
            self.latency.sum_seconds * 1000.0 / self.latency.count as f64
        }
    }

    /// Upper bound, in ms, of the latency bucket holding the 99th percentile.
    pub fn p99_ms(&self) -> Option<f64> {
        self.latency.quantile(0.99).map(|s| s * 1000.0)
    }
}

/// One route's requests of one method answered with one status.
type HttpSeries = (Method, u16, Histogram);

/// `m[key]`, created empty if absent; the key is copied only then (always `Some`).
fn slot<'m, V: Default>(m: &'m mut HashMap<String, V>, key: &str) -> Option<&'m mut V> {
    if !m.contains_key(key) {
        m.insert(key.to_string(), V::default());
    }
    m.get_mut(key)
}

#[derive(Debug, Default)]
pub struct Metrics {
    started: Option<Instant>,
    /// By route, then `(method, status)`: a request that finds its entry allocates nothing.
    http: Mutex<HashMap<String, Vec<HttpSeries>>>,
    /// By dataset, then app.
    share: Mutex<HashMap<String, BTreeMap<i64, ShareUsage>>>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics { started: Some(Instant::now()), ..Default::default() }
    }

    fn http(&self, method: &Method, route: &str, status: u16, d: Duration) {
        if let Ok(mut m) = self.http.lock() {
            let Some(by) = slot(&mut m, route) else { return };
            match by.iter_mut().find(|(m, s, _)| m == method && *s == status) {
                Some((_, _, h)) => h.observe(d),
                None => {
                    let mut h = Histogram::default();
                    h.observe(d);
                    by.push((method.clone(), status, h));
                }
            }
        }
    }

    /// The usage entry of `(dataset, app)`.
    fn with_share(&self, dataset: &str, app: i64, f: impl FnOnce(&mut ShareUsage)) {
        if let Ok(mut m) = self.share.lock() {
            if let Some(by_app) = slot(&mut m, dataset) {
                f(by_app.entry(app).or_default());
            }
        }
    }

    /// One consumer-API request: `rows` returned, or an error.
    pub fn share(&self, dataset: &str, app: i64, rows: u64, error: bool, d: Duration) {
        self.with_share(dataset, app, |u| {
            u.requests += 1;
            u.rows += rows;
            u.errors += u64::from(error);
            u.latency.observe(d);
        });
    }

    /// Rows streamed by an export, counted when it ends.
    pub fn share_rows(&self, dataset: &str, app: i64, rows: u64) {
        self.with_share(dataset, app, |u| u.rows += rows);
    }

    /// Time since the process started counting.
    pub fn uptime(&self) -> Option<Duration> {
        self.started.map(|t| t.elapsed())
    }

    /// Usage by dataset and app, in that order.
    pub fn share_usage(&self) -> Vec<(String, i64, ShareUsage)> {
        let Ok(m) = self.share.lock() else { return Vec::new() };
        let mut out: Vec<(String, i64, ShareUsage)> =
            m.iter().flat_map(|(d, by)| by.iter().map(|(a, u)| (d.clone(), *a, u.clone()))).collect();
        out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        out
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let hist = |out: &mut String, name: &str, labels: &str, h: &Histogram| {
            write_histogram(out, name, labels, &BUCKETS, &h.buckets, h.count, h.sum_seconds);
        };
        if let Some(t) = self.started {
            let _ = writeln!(out, "# HELP govhub_uptime_seconds Seconds since this process started.");
            let _ = writeln!(out, "# TYPE govhub_uptime_seconds gauge");
            let _ = writeln!(out, "govhub_uptime_seconds {}", t.elapsed().as_secs_f64());
        }
        let _ = writeln!(out, "# HELP govhub_http_request_duration_seconds HTTP requests by route and status.");
        let _ = writeln!(out, "# TYPE govhub_http_request_duration_seconds histogram");
        if let Ok(m) = self.http.lock() {
            let mut series: Vec<(&str, &str, u16, &Histogram)> = m
                .iter()
                .flat_map(|(route, by)| {
                    by.iter().map(move |(method, status, h)| (method.as_str(), route.as_str(), *status, h))
                })
                .collect();
            series.sort_by_key(|&(method, route, status, _)| (method, route, status));
            for (method, route, status, h) in series {
                let labels = format!("method=\"{}\",route=\"{}\",status=\"{status}\"", esc(method), esc(route));
                hist(&mut out, "govhub_http_request_duration_seconds", &labels, h);
            }
        }
        let usage = self.share_usage();
        for (name, help, kind) in [
            ("govhub_share_requests_total", "Consumer-API requests by dataset and app.", "counter"),
            ("govhub_share_rows_total", "Rows returned by the consumer API by dataset and app.", "counter"),
            ("govhub_share_errors_total", "Consumer-API requests answered with an error.", "counter"),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (d, a, u) in &usage {
                let v = match name {
                    "govhub_share_requests_total" => u.requests,
                    "govhub_share_rows_total" => u.rows,
                    _ => u.errors,
                };
                let _ = writeln!(out, "{name}{{dataset=\"{}\",app=\"{a}\"}} {v}", esc(d));
            }
        }
        let _ = writeln!(out, "# HELP govhub_share_request_duration_seconds Consumer-API latency by dataset and app.");
        let _ = writeln!(out, "# TYPE govhub_share_request_duration_seconds histogram");
        for (d, a, u) in &usage {
            hist(
                &mut out,
                "govhub_share_request_duration_seconds",
                &format!("dataset=\"{}\",app=\"{a}\"", esc(d)),
                &u.latency,
            );
        }
        out
    }
}

/// Middleware: time every request by its route template (never the raw path, so keys
/// in URLs do not end up in metrics).
pub async fn track(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let resp = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", |p| p.as_str());
    st.metrics.http(&method, route, resp.status().as_u16(), start.elapsed());
    resp
}

/// The audit writer's group commits in this process: how many, the entries they carried
/// (their ratio is the batch size) and how long each took to become durable.
pub fn render_commits(out: &mut String, c: &govhub_core::audit::CommitStats) {
    for (name, help, v) in [
        ("govhub_audit_commits_total", "Group commits of the audit log by this process.", c.commits),
        ("govhub_audit_entries_total", "Audit entries committed by this process.", c.entries),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    }
    let name = "govhub_audit_commit_duration_seconds";
    let _ = writeln!(out, "# HELP {name} From a batch's transaction start until it is durable.");
    let _ = writeln!(out, "# TYPE {name} histogram");
    write_histogram(out, name, "", &govhub_core::audit::COMMIT_BUCKETS, &c.buckets, c.commits, c.seconds);
}

/// One histogram series in the Prometheus text format: its cumulative buckets, `+Inf`,
/// sum and count; `labels` (already escaped, comma-separated) may be empty.
fn write_histogram(
    out: &mut String,
    name: &str,
    labels: &str,
    bounds: &[f64],
    cumulative: &[u64],
    count: u64,
    sum: f64,
) {
    let (open, sep) = if labels.is_empty() { ("", "") } else { ("{", ",") };
    let close = if labels.is_empty() { "" } else { "}" };
    for (b, n) in bounds.iter().zip(cumulative) {
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum{open}{labels}{close} {sum}");
    let _ = writeln!(out, "{name}_count{open}{labels}{close} {count}");
}

/// `GET /metrics`.
pub async fn metrics(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    let allowed = match bearer {
        None => false,
        Some(t) => {
            let scraper = st
                .config
                .metrics_token
                .as_deref()
                .is_some_and(|m| govhub_crypto::constant_time_eq(m.as_bytes(), t.as_bytes()));
            scraper
                || st
                    .hub
                    .authenticate(t, govhub_core::model::SessionKind::Api)
                    .await
                    .is_ok_and(|(p, _)| p.role == govhub_core::model::Role::PlatformAdmin && p.app.is_none())
        }
    };
    if !allowed {
        return (StatusCode::UNAUTHORIZED, "metrics need a platform administrator's token or GOVHUB_METRICS_TOKEN\n")
            .into_response();
    }
    let mut text = st.metrics.render();
    render_commits(&mut text, &st.hub.store().audit_commits());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_commits_are_rendered() {
        let mut c = govhub_core::audit::CommitStats { commits: 3, entries: 70, seconds: 0.0025, ..Default::default() };
        c.buckets = [0, 1, 2, 2, 3, 3, 3, 3, 3, 3];
        let mut text = String::new();
        render_commits(&mut text, &c);
        assert!(text.contains("# TYPE govhub_audit_commits_total counter\ngovhub_audit_commits_total 3\n"), "{text}");
        assert!(text.contains("govhub_audit_entries_total 70\n"));
        assert!(text.contains("govhub_audit_commit_duration_seconds_bucket{le=\"0.0005\"} 1\n"), "{text}");
        assert!(text.contains("govhub_audit_commit_duration_seconds_bucket{le=\"0.005\"} 3\n"));
        assert!(text.contains("govhub_audit_commit_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains(
            "govhub_audit_commit_duration_seconds_sum 0.0025\ngovhub_audit_commit_duration_seconds_count 3\n"
        ));
    }

    #[test]
    fn histograms_are_cumulative_and_rendered() {
        let m = Metrics::new();
        m.share("gaj-hjrk", 3, 1, false, Duration::from_micros(800));
        m.share("gaj-hjrk", 3, 0, true, Duration::from_millis(30));
        m.http(&Method::GET, "/api/v1/share/{dataset}/records/{key}", 200, Duration::from_millis(2));
        let text = m.render();
        assert!(text.contains("govhub_share_requests_total{dataset=\"gaj-hjrk\",app=\"3\"} 2"), "{text}");
        assert!(text.contains("govhub_share_errors_total{dataset=\"gaj-hjrk\",app=\"3\"} 1"));
        assert!(text
            .contains("govhub_share_request_duration_seconds_bucket{dataset=\"gaj-hjrk\",app=\"3\",le=\"0.001\"} 1"));
        assert!(text.contains("le=\"0.05\"} 2"));
        assert!(text.contains("route=\"/api/v1/share/{dataset}/records/{key}\",status=\"200\""));
        let u = &m.share_usage()[0].2;
        assert_eq!(u.latency.quantile(0.5), Some(0.001));
        assert_eq!(u.latency.quantile(0.99), Some(0.05));

        // Series stay apart by method and status, by dataset and app; usage comes sorted.
        let route = "/api/v1/share/{dataset}/records/{key}";
        m.http(&Method::GET, route, 200, Duration::from_millis(2));
        m.http(&Method::GET, route, 403, Duration::from_millis(2));
        m.http(&Method::POST, route, 200, Duration::from_millis(2));
        m.share_rows("gaj-hjrk", 1, 5);
        m.share_rows("a-first", 9, 7);
        let text = m.render();
        let count = |labels: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("govhub_http_request_duration_seconds_count{{{labels}}}")))
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_string)
        };
        assert_eq!(count(&format!("method=\"GET\",route=\"{route}\",status=\"200\"")).as_deref(), Some("2"));
        assert_eq!(count(&format!("method=\"GET\",route=\"{route}\",status=\"403\"")).as_deref(), Some("1"));
        assert_eq!(count(&format!("method=\"POST\",route=\"{route}\",status=\"200\"")).as_deref(), Some("1"));
        let usage: Vec<(String, i64, u64)> = m.share_usage().into_iter().map(|(d, a, u)| (d, a, u.rows)).collect();
        assert_eq!(usage, [("a-first".into(), 9, 7), ("gaj-hjrk".into(), 1, 5), ("gaj-hjrk".into(), 3, 1)]);
    }
}
