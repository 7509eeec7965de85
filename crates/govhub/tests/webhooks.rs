//! Webhook push of the change feed, over HTTP on both stores: a receiver on loopback
//! that fails twice and then accepts gets exactly the pull feed's changes (granted
//! fields only, masked), signed with the platform key (checked by govhub and by
//! OpenSSL); attempts are logged with growing delays, the position advances only after
//! a 2xx, a revoked grant stops pushes at once, every push is audited; the SSRF guard
//! and the input checks refuse what they should.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Duration, Utc};
use govhub_core::clock::SystemClock;
use govhub_core::service::HubSettings;
use govhub_core::webhook::{SendOutcome, WebhookPolicy, WebhookSender};
use govhub_crypto::sm2keys::Sm2PublicKey;
use govhub_server::state::ServerConfig;
use govhub_testkit::{postgres_url, spawn_app_configured, Backend, TestApp, PG_ENV};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Instant;

const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

fn person(i: u32) -> String {
    let body = format!("32040219800101{i:03}");
    let s: u32 = body.bytes().zip(W).map(|(b, w)| u32::from(b - b'0') * w).sum();
    format!("{body}{}", char::from(b"10X98765432"[(s % 11) as usize]))
}

fn rows(n: u32) -> String {
    let mut s = String::from("sfzh,xm,xb,sjhm,nl\n");
    for i in 0..n {
        s.push_str(&format!("{},张{i},{},1381234{i:04},{}\n", person(i), if i % 2 == 0 { "男" } else { "女" }, 20 + i));
    }
    s
}

async fn spawn(backend: Backend, allow_private: bool) -> TestApp {
    let settings = HubSettings {
        webhooks: WebhookPolicy {
            allow_private_targets: allow_private,
            backoff_base: Duration::milliseconds(150),
            backoff_cap: Duration::seconds(2),
            poll_interval: Duration::milliseconds(50),
            timeout: std::time::Duration::from_secs(3),
            ..Default::default()
        },
        ..Default::default()
    };
    spawn_app_configured(backend, Arc::new(SystemClock), ServerConfig::default(), settings).await
}

struct City {
    admin: String,
    officer: String,
    approver: String,
    dev: String,
    other_dev: String,
}

async fn city(app: &TestApp) -> City {
    let admin = app.admin_token().await;
    for (code, name, parent) in [
        ("cz", "常州市人民政府", None),
        ("cz-gaj", "常州市公安局", Some("cz")),
        ("cz-rsj", "常州市人社局", Some("cz")),
        ("cz-mzj", "常州市民政局", Some("cz")),
    ] {
        let mut body = json!({"code": code, "name": name});
        if let Some(p) = parent {
            body["parent"] = json!(p);
        }
        assert_eq!(app.post("/api/v1/orgs", &admin, &body).await.0, 201);
    }
    app.create_user("gaj-officer", "officer-pass-1", "data-officer", Some("cz-gaj")).await;
    app.create_user("gaj-approver", "approver-pass-1", "approver", Some("cz-gaj")).await;
    app.create_user("rsj-dev", "developer-pass-1", "app-developer", Some("cz-rsj")).await;
    app.create_user("mzj-dev", "developer-pass-1", "app-developer", Some("cz-mzj")).await;
    let officer = app.token("gaj-officer", "officer-pass-1").await;
    let schema = json!({
        "fields": [
            {"name": "sfzh", "title": "公民身份号码", "format": "id-number", "sensitive": true},
            {"name": "xm", "title": "姓名", "sensitive": true},
            {"name": "xb", "title": "性别"},
            {"name": "sjhm", "title": "手机号码", "format": "mobile", "sensitive": true},
            {"name": "nl", "title": "年龄", "type": "integer"}
        ],
        "primaryKey": "sfzh"
    });
    for (code, class) in [("gaj-xzqh", "无条件共享"), ("gaj-hjrk", "有条件共享")] {
        let ds = json!({"code": code, "name": format!("数据集{code}"), "provider": "cz-gaj", "sharing_class": class,
            "open_class": "不予开放", "grade": "一般", "update_cycle": "daily", "schema": schema});
        let (s, b) = app.post("/api/v1/datasets", &officer, &ds).await;
        assert_eq!(s, 201, "{b}");
    }
    City {
        admin,
        officer,
        approver: app.token("gaj-approver", "approver-pass-1").await,
        dev: app.token("rsj-dev", "developer-pass-1").await,
        other_dev: app.token("mzj-dev", "developer-pass-1").await,
    }
}

async fn deliver(app: &TestApp, token: &str, dataset: &str, body: String) {
    let r = app
        .client
        .post(app.url(&format!("/api/v1/datasets/{dataset}/deliveries")))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "succeeded", "{v}");
}

/// An app of cz-rsj with a token and a grant (at once: 无条件共享) on gaj-xzqh for
/// sfzh, xm, nl — not xb, not sjhm.
async fn granted_app(app: &TestApp, c: &City) -> (i64, String, i64) {
    let (s, a) = app.post("/api/v1/apps", &c.dev, &json!({"name": "社保待遇资格认证系统", "org": "cz-rsj"})).await;
    assert_eq!(s, 201, "{a}");
    let id = a["id"].as_i64().unwrap();
    let (s, t) = app.post(&format!("/api/v1/apps/{id}/tokens"), &c.dev, &json!({})).await;
    assert_eq!(s, 201, "{t}");
    let until = ((Utc::now() + Duration::hours(8)).date_naive() + Duration::days(90)).to_string();
    let (s, r) = app
        .post(
            "/api/v1/access-requests",
            &c.dev,
            &json!({"app": id, "dataset": "gaj-xzqh", "fields": ["sfzh", "xm", "nl"], "purpose": "社保待遇资格认证",
                "legal_basis": "《社会保险法》第七十四条", "valid_until": until}),
        )
        .await;
    assert_eq!((s, r["status"].as_str()), (201, Some("granted")), "{r}");
    (id, t["token"].as_str().unwrap().to_string(), r["grant_id"].as_i64().unwrap())
}

// ------------------------------------------------------------------ the receiver

#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    headers: HeaderMap,
    body: Vec<u8>,
    answered: u16,
}

#[derive(Clone, Default)]
struct Receiver {
    log: Arc<Mutex<Vec<Received>>>,
    fail_first: usize,
}

async fn receive(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut log = rx.log.lock().unwrap();
    let status = if log.len() < rx.fail_first { 500 } else { 200 };
    log.push(Received { at: Instant::now(), headers, body: body.to_vec(), answered: status });
    StatusCode::from_u16(status).unwrap()
}

/// A receiver on 127.0.0.1 that answers 500 to the first `fail_first` requests.
async fn receiver(fail_first: usize) -> (String, Receiver) {
    let rx = Receiver { log: Arc::default(), fail_first };
    let router = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/hook?token=receiver-secret"), rx)
}

impl Receiver {
    fn got(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            assert!(start.elapsed() < std::time::Duration::from_secs(20), "only {} of {n} pushes arrived", got.len());
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

fn header(r: &Received, name: &str) -> String {
    r.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

fn unbase64(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let vals: Vec<u32> =
        s.bytes().filter(|&c| c != b'=').map(|c| A.iter().position(|&a| a == c).unwrap() as u32).collect();
    let mut out = Vec::new();
    for chunk in vals.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, v)| acc | (v << (18 - 6 * i)));
        for i in 0..chunk.len() - 1 {
            out.push(((n >> (16 - 8 * i)) & 0xff) as u8);
        }
    }
    out
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap().with_timezone(&Utc)
}

/// Every record holds only granted fields, masked.
fn only_granted(body: &Value) {
    for ch in body["changes"].as_array().unwrap() {
        let rec = ch["record"].as_object().unwrap();
        let mut keys: Vec<&str> = rec.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["nl", "sfzh", "xm"], "{ch}");
        assert!(rec["sfzh"].as_str().unwrap().contains("********"), "{ch}");
        assert!(rec["xm"].as_str().unwrap().ends_with('*'), "{ch}");
    }
    let text = body.to_string();
    assert!(!text.contains("1381234") && !text.contains("\"xb\""), "a non-granted field leaked: {text}");
}

// ------------------------------------------------------------------ scenarios

async fn pushes_retries_and_revocation(app: TestApp) {
    let c = city(&app).await;
    deliver(&app, &c.officer, "gaj-xzqh", rows(3)).await;
    let (app_id, app_token, grant) = granted_app(&app, &c).await;
    let (url, rx) = receiver(2).await;

    let (s, w) =
        app.post(&format!("/api/v1/apps/{app_id}/webhooks"), &c.dev, &json!({"dataset": "gaj-xzqh", "url": url})).await;
    assert_eq!(s, 201, "{w}");
    assert_eq!(w["state"], "ok");
    assert_eq!(w["fields"], Value::Null);
    assert!(w.get("position").is_none(), "the position (a key) is not shown");
    let id = w["id"].as_i64().unwrap();

    // Two failures, then the same page accepted.
    let got = rx.wait_for(3).await;
    assert_eq!(got.iter().map(|r| r.answered).collect::<Vec<_>>(), [500, 500, 200]);
    let bodies: Vec<Value> = got.iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
    assert!(bodies.iter().all(|b| b == &bodies[0]), "retries resend the same page");
    assert!(got.iter().all(|r| header(r, "x-govhub-delivery") == header(&got[0], "x-govhub-delivery")));
    assert!(header(&got[0], "x-govhub-delivery").starts_with(&format!("wh{id}-")));
    let (gap1, gap2) = (got[1].at - got[0].at, got[2].at - got[1].at);
    assert!(gap1 >= std::time::Duration::from_millis(140) && gap2 > gap1, "backoff: {gap1:?} then {gap2:?}");

    // Exactly what the pull feed gives the same app.
    let (s, feed) = app.get("/api/v1/share/gaj-xzqh/changes?limit=1000", &app_token).await;
    assert_eq!(s, 200, "{feed}");
    assert_eq!(bodies[0]["subscription"], json!(id));
    assert_eq!(bodies[0]["dataset"], "gaj-xzqh");
    assert_eq!(bodies[0]["changes"], feed["items"]);
    assert_eq!(bodies[0]["changes"].as_array().unwrap().len(), 3);
    assert_eq!(bodies[0]["next_cursor"], feed["next_cursor"]);
    only_granted(&bodies[0]);

    // Signed with the platform key over timestamp + "\n" + body.
    let pem = app.client.get(app.url("/api/v1/audit/public-key.pem")).send().await.unwrap().text().await.unwrap();
    let public = Sm2PublicKey::from_pem(&pem).unwrap();
    for r in &got {
        let ts = header(r, "x-govhub-timestamp");
        assert!(DateTime::parse_from_rfc3339(&ts).is_ok(), "{ts}");
        let mut msg = ts.clone().into_bytes();
        msg.push(b'\n');
        msg.extend_from_slice(&r.body);
        let sig = unbase64(&header(r, "x-govhub-signature"));
        govhub_crypto::signing::verify(&public, &msg, &sig).unwrap();
        assert!(govhub_crypto::signing::verify(&public, &r.body, &sig).is_err());
        assert_eq!(header(r, "x-govhub-key"), public.fingerprint());
        assert_eq!(header(r, "content-type"), "application/json");
    }
    openssl_verifies(&pem, &got[2]);

    // The attempt log: newest first, delays growing.
    let attempts = wait_attempts(&app, &c.dev, id, 3).await;
    let statuses: Vec<Value> = attempts.iter().map(|a| a["status"].clone()).collect();
    assert_eq!(statuses, [json!(200), json!(500), json!(500)]);
    assert_eq!(attempts[0]["error"], Value::Null);
    assert_eq!(attempts[0]["next_attempt_at"], Value::Null);
    assert_eq!(attempts[1]["error"], "HTTP 500");
    let delay = |a: &Value| time(&a["next_attempt_at"]) - time(&a["at"]);
    assert!(delay(&attempts[2]) >= Duration::milliseconds(150), "{}", attempts[2]);
    assert!(delay(&attempts[1]) > delay(&attempts[2]), "{attempts:?}");
    assert!(attempts.iter().all(|a| a["changes"] == 3));

    // The position advanced after the 2xx: the next push holds only the new change.
    deliver(&app, &c.officer, "gaj-xzqh", rows(4)).await;
    let got = rx.wait_for(4).await;
    let next: Value = serde_json::from_slice(&got[3].body).unwrap();
    let since = urlencode(bodies[0]["next_cursor"].as_str().unwrap());
    let (_, feed) = app.get(&format!("/api/v1/share/gaj-xzqh/changes?since={since}"), &app_token).await;
    assert_eq!(next["changes"], feed["items"]);
    assert_eq!(next["changes"].as_array().unwrap().len(), 1);
    assert_eq!(next["changes"][0]["op"], "insert");
    only_granted(&next);
    assert_ne!(header(&got[3], "x-govhub-delivery"), header(&got[0], "x-govhub-delivery"));
    let (_, list) = app.get(&format!("/api/v1/apps/{app_id}/webhooks"), &c.dev).await;
    assert_eq!(list[0]["state"], "ok", "{list}");
    assert_eq!(list[0]["failures"], 0);

    // Every push was audited as a read of the app, before it left.
    let (_, audit) = app.get("/api/v1/audit?action=share.read&target=gaj-xzqh&limit=1000", &c.admin).await;
    let pushes: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["detail"]["webhook"] == json!(id) && e["outcome"] == "allowed")
        .collect();
    assert_eq!(pushes.len(), 4, "{audit}");
    assert!(pushes.iter().all(|e| e["actor"] == format!("app:{app_id}") && e["purpose"] == "社保待遇资格认证"));
    assert_eq!(pushes.iter().map(|e| e["rows"].as_i64().unwrap()).sum::<i64>(), 3 * 3 + 1);

    // Revoked: not one more push, at once; the refusal is logged and audited.
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/grants/{grant}?reason=停止使用")))
        .bearer_auth(&c.approver)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    deliver(&app, &c.officer, "gaj-xzqh", rows(6)).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(rx.got().len(), 4, "a push after the revocation");
    let attempts = wait_attempts(&app, &c.dev, id, 5).await;
    assert!(attempts[0]["error"].as_str().unwrap().starts_with("no_grant"), "{}", attempts[0]);
    assert_eq!(attempts[0]["status"], Value::Null);
    let (_, list) = app.get(&format!("/api/v1/apps/{app_id}/webhooks"), &c.dev).await;
    assert!(list[0]["state"] == "retrying" || list[0]["state"] == "failing", "{list}");
    let (_, audit) = app.get("/api/v1/audit?action=share.read&target=gaj-xzqh&limit=1000", &c.admin).await;
    assert!(audit.as_array().unwrap().iter().any(|e| e["detail"]["webhook"] == json!(id) && e["outcome"] == "denied"));

    // Deleted: gone with its attempts.
    let r = app.client.delete(app.url(&format!("/api/v1/webhooks/{id}"))).bearer_auth(&c.dev).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(app.get(&format!("/api/v1/webhooks/{id}/attempts"), &c.dev).await.0, 404);
    let (_, list) = app.get(&format!("/api/v1/apps/{app_id}/webhooks"), &c.dev).await;
    assert_eq!(list, json!([]));
    let _ = c.other_dev;
}

async fn wait_attempts(app: &TestApp, dev: &str, id: i64, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let (s, v) = app.get(&format!("/api/v1/webhooks/{id}/attempts"), dev).await;
        assert_eq!(s, 200, "{v}");
        let list = v.as_array().unwrap().clone();
        if list.len() >= n {
            return list;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "only {} attempts: {v}", list.len());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The receiver's check with OpenSSL alone, as docs/sharing.md shows it.
fn openssl_verifies(pem: &str, r: &Received) {
    if std::process::Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIPPED: no openssl binary; the OpenSSL check of a webhook signature was NOT made");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("pub.pem"), pem).unwrap();
    std::fs::write(d.join("sig.der"), unbase64(&header(r, "x-govhub-signature"))).unwrap();
    let mut msg = header(r, "x-govhub-timestamp").into_bytes();
    msg.push(b'\n');
    msg.extend_from_slice(&r.body);
    std::fs::write(d.join("msg"), &msg).unwrap();
    let run = |file: &str| {
        std::process::Command::new("openssl")
            .current_dir(d)
            .args([
                "dgst",
                "-sm3",
                "-verify",
                "pub.pem",
                "-sigopt",
                "distid:1234567812345678",
                "-signature",
                "sig.der",
                file,
            ])
            .output()
            .unwrap()
    };
    let out = run("msg");
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK"), "{out:?}");
    msg[0] ^= 1;
    std::fs::write(d.join("tampered"), &msg).unwrap();
    assert!(!run("tampered").status.success());
}

async fn refusals(app: TestApp) {
    let c = city(&app).await;
    let (app_id, app_token, _) = granted_app(&app, &c).await;
    let path = format!("/api/v1/apps/{app_id}/webhooks");
    let post = |body: Value, token: String| {
        let (app, path) = (&app, path.clone());
        async move { app.post(&path, &token, &body).await }
    };
    // SSRF: loopback, private and metadata addresses and localhost are refused by default.
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:8080/",
        "http://10.0.0.8/x",
        "http://169.254.169.254/latest",
        "http://[::1]/",
    ] {
        let (s, e) = post(json!({"dataset": "gaj-xzqh", "url": url}), c.dev.clone()).await;
        assert_eq!((s, e["code"].as_str()), (422, Some("webhook_target_refused")), "{url}: {e}");
        assert_eq!(e["field"], "url");
    }
    for url in ["ftp://hooks.example.cn/", "hooks.example.cn/x", "https://user:pw@hooks.example.cn/"] {
        let (s, e) = post(json!({"dataset": "gaj-xzqh", "url": url}), c.dev.clone()).await;
        assert_eq!((s, e["code"].as_str()), (400, Some("invalid_webhook_url")), "{url}: {e}");
    }
    let good = "https://hooks.example.cn/govhub";
    // No grant on gaj-hjrk; a field outside the grant; another department; the app itself.
    let (s, e) = post(json!({"dataset": "gaj-hjrk", "url": good}), c.dev.clone()).await;
    assert_eq!((s, e["code"].as_str()), (403, Some("no_grant")), "{e}");
    let (s, e) = post(json!({"dataset": "gaj-xzqh", "url": good, "fields": ["sfzh", "sjhm"]}), c.dev.clone()).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("invalid_request")), "{e}");
    assert!(!e["message"].as_str().unwrap().contains("手机"));
    let (s, e) = post(json!({"dataset": "gaj-xzqh", "url": good}), c.other_dev.clone()).await;
    assert_eq!((s, e["code"].as_str()), (403, Some("forbidden")), "{e}");
    let (s, _) = post(json!({"dataset": "gaj-xzqh", "url": good}), app_token.clone()).await;
    assert_eq!(s, 403);
    let (s, e) = post(json!({"dataset": "gaj-xzqh", "url": good, "since": "not-a-cursor"}), c.dev.clone()).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("cursor")), "{e}");
    let (s, e) = post(json!({"dataset": "gaj-xzqh", "url": good, "secret": "x"}), c.dev.clone()).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("unknown_field")), "{e}");
    // A public target with a subset of the fields is accepted.
    let (s, w) = post(json!({"dataset": "gaj-xzqh", "url": good, "fields": ["sfzh", "nl"]}), c.dev.clone()).await;
    assert_eq!(s, 201, "{w}");
    assert_eq!(w["fields"], json!(["sfzh", "nl"]));
    let (s, list) = app.get(&path, &c.other_dev).await;
    assert_eq!(s, 403, "{list}");
}

/// Like `govhub_testkit::backend_tests!`, with the webhook policy's private-target switch.
macro_rules! backend_tests_with_settings {
    ($($name:ident : $allow:expr),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::spawn(super::Backend::Sqlite, $allow).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if super::postgres_url().is_none() {
                        eprintln!("PostgreSQL half SKIPPED for {}: set {}", stringify!($name), super::PG_ENV);
                        return;
                    }
                    super::$name(super::spawn(super::Backend::Postgres, $allow).await).await;
                }
            )*
        }
    };
}
backend_tests_with_settings!(pushes_retries_and_revocation: true, refusals: false);

/// The sender itself refuses internal targets when they are not allowed — literal
/// addresses before connecting, names after resolution — and names no URL in errors.
#[tokio::test]
async fn the_sender_enforces_the_ssrf_rule() {
    let (url, rx) = receiver(0).await;
    let port = url.trim_start_matches("http://127.0.0.1:").split('/').next().unwrap().to_string();
    let strict = govhub_server::webhooks::HttpSender::new(std::time::Duration::from_secs(3), false).unwrap();
    for target in [url.clone(), format!("http://localhost:{port}/hook?token=receiver-secret")] {
        match strict.post(&target, vec![], b"{}".to_vec()).await {
            SendOutcome::Failed(e) => {
                assert!(e.contains("internal"), "{e}");
                assert!(!e.contains("receiver-secret"), "{e}");
            }
            other => panic!("{target}: {other:?}"),
        }
    }
    assert!(rx.got().is_empty(), "nothing reached the receiver");
    let open = govhub_server::webhooks::HttpSender::new(std::time::Duration::from_secs(3), true).unwrap();
    assert_eq!(
        open.post(&url, vec![("x-govhub-delivery", "d1".into())], b"{}".to_vec()).await,
        SendOutcome::Status(200)
    );
    assert_eq!(rx.got().len(), 1);
}
