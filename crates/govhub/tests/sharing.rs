//! Sharing with control, over HTTP on both stores: apps and tokens, access requests by
//! sharing class, the approver's decision, the consumer API (records, filters, signed
//! cursors, export, change feed) with exactly the granted fields and masking, revocation
//! and expiry with immediate effect, rate limits and the audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{Duration, Utc};
use govhub_core::clock::ManualClock;
use govhub_server::state::ServerConfig;
use govhub_testkit::{backend_tests, spawn_app_with, Backend, TestApp};
use serde_json::{json, Value};
use std::sync::Arc;

const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

fn idn(body: &str) -> String {
    let s: u32 = body.bytes().zip(W).map(|(b, w)| u32::from(b - b'0') * w).sum();
    format!("{body}{}", char::from(b"10X98765432"[(s % 11) as usize]))
}

fn person(i: u32) -> String {
    idn(&format!("32040219800101{:03}", i))
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
    for (code, class, extra) in [
        ("gaj-hjrk", "有条件共享", json!({})),
        ("gaj-xzqh", "无条件共享", json!({})),
        ("gaj-mg", "不予共享", json!({"sharing_condition": "《中华人民共和国反恐怖主义法》第四十八条"})),
    ] {
        let mut ds = json!({"code": code, "name": format!("数据集{code}"), "provider": "cz-gaj", "sharing_class": class,
            "open_class": "不予开放", "grade": "一般", "update_cycle": "daily", "schema": schema});
        for (k, v) in extra.as_object().unwrap() {
            ds[k] = v.clone();
        }
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

async fn deliver(app: &TestApp, token: &str, dataset: &str, query: &str, body: String) -> Value {
    let r = app
        .client
        .post(app.url(&format!("/api/v1/datasets/{dataset}/deliveries{query}")))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "succeeded", "{v}");
    v
}

fn rows(n: u32) -> String {
    let mut s = String::from("sfzh,xm,xb,sjhm,nl\n");
    for i in 0..n {
        let name = if i == 0 { "欧阳娜娜".to_string() } else { format!("张{i}") };
        s.push_str(&format!(
            "{},{name},{},1381234{:04},{}\n",
            person(i),
            if i % 2 == 0 { "男" } else { "女" },
            i,
            20 + i
        ));
    }
    s
}

async fn app_with_token(app: &TestApp, dev: &str, name: &str) -> (i64, String) {
    let (s, a) = app.post("/api/v1/apps", dev, &json!({"name": name, "org": "cz-rsj"})).await;
    assert_eq!(s, 201, "{a}");
    let id = a["id"].as_i64().unwrap();
    let (s, t) = app.post(&format!("/api/v1/apps/{id}/tokens"), dev, &json!({})).await;
    assert_eq!(s, 201, "{t}");
    let token = t["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("gha_"));
    (id, token)
}

fn today_plus(days: i64) -> String {
    ((Utc::now() + Duration::hours(8)).date_naive() + Duration::days(days)).to_string()
}

async fn request(app: &TestApp, dev: &str, app_id: i64, dataset: &str, fields: Value) -> (u16, Value) {
    app.post(
        "/api/v1/access-requests",
        dev,
        &json!({"app": app_id, "dataset": dataset, "fields": fields, "purpose": "社保待遇资格认证",
            "legal_basis": "《社会保险法》第七十四条", "valid_until": today_plus(180)}),
    )
    .await
}

async fn raw_get(app: &TestApp, path: &str, token: &str) -> (u16, String) {
    let r = app.client.get(app.url(path)).bearer_auth(token).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.text().await.unwrap())
}

async fn requests_decisions_and_the_consumer_api(app: TestApp) {
    let c = city(&app).await;
    deliver(&app, &c.officer, "gaj-hjrk", "", rows(5)).await;
    let (app_id, tok) = app_with_token(&app, &c.dev, "社保资格认证系统").await;

    // No token, a person's token, an unknown token.
    let r = app.client.get(app.url("/api/v1/share/gaj-hjrk/records")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(app.get("/api/v1/share/gaj-hjrk/records", &c.dev).await.0, 403);
    assert_eq!(app.get("/api/v1/share/gaj-hjrk/records", "gha_not-a-token").await.0, 401);
    // An app token manages nothing.
    assert_eq!(app.post("/api/v1/apps", &tok, &json!({"name": "x", "org": "cz-rsj"})).await.0, 403);

    // Another organisation's developer cannot request for this app.
    let (s, e) = request(&app, &c.other_dev, app_id, "gaj-hjrk", json!(["sfzh", "xm"])).await;
    assert_eq!(s, 403, "{e}");
    // Unknown field, not shareable, then a real request (有条件共享 → pending).
    let (s, e) = request(&app, &c.dev, app_id, "gaj-hjrk", json!(["sfzh", "nope"])).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("fields")), "{e}");
    let (s, e) = request(&app, &c.dev, app_id, "gaj-mg", json!(["sfzh"])).await;
    assert_eq!((s, e["code"].as_str()), (403, Some("not_shareable")), "{e}");
    let (s, req) = request(&app, &c.dev, app_id, "gaj-hjrk", json!(["sfzh", "xm", "xb", "nl"])).await;
    assert_eq!(s, 201, "{req}");
    assert_eq!(req["status"], "pending");
    assert_eq!(req["overdue"], false);
    assert!(
        req["due_on"].as_str().unwrap() >= today_plus(12).as_str(),
        "10 working days are at least 12 calendar days"
    );
    let rid = req["id"].as_i64().unwrap();

    // Not granted yet.
    let (s, e) = app.get(&format!("/api/v1/share/gaj-hjrk/records/{}", person(1)), &tok).await;
    assert_eq!((s, e["code"].as_str()), (403, Some("no_grant")), "{e}");

    // The approver's inbox; the requester's organisation sees it too; others do not.
    let (s, inbox) = app.get("/api/v1/access-requests?status=pending", &c.approver).await;
    assert_eq!(s, 200);
    assert!(inbox.as_array().unwrap().iter().any(|r| r["id"] == rid));
    let (_, mine) = app.get("/api/v1/access-requests", &c.dev).await;
    assert!(mine.as_array().unwrap().iter().any(|r| r["id"] == rid));
    let (_, theirs) = app.get("/api/v1/access-requests", &c.other_dev).await;
    assert!(theirs.as_array().unwrap().is_empty());
    assert_eq!(app.get(&format!("/api/v1/access-requests/{rid}"), &c.other_dev).await.0, 403);

    // The developer cannot approve; the approver narrows the fields (no age).
    let decision = json!({"approve": true, "fields": ["sfzh", "xm", "xb"], "reason": "同意，按最小必要原则"});
    assert_eq!(app.post(&format!("/api/v1/access-requests/{rid}/decision"), &c.dev, &decision).await.0, 403);
    let wider = json!({"approve": true, "fields": ["sfzh", "sjhm"], "reason": "x"});
    let (s, e) = app.post(&format!("/api/v1/access-requests/{rid}/decision"), &c.approver, &wider).await;
    assert_eq!(s, 400, "an approval cannot add fields: {e}");
    let (s, decided) = app.post(&format!("/api/v1/access-requests/{rid}/decision"), &c.approver, &decision).await;
    assert_eq!(s, 200, "{decided}");
    assert_eq!(decided["status"], "granted");
    let gid = decided["grant_id"].as_i64().unwrap();
    let (s, e) = app.post(&format!("/api/v1/access-requests/{rid}/decision"), &c.approver, &decision).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("already_decided")));

    // A record: granted fields only, sensitive ones masked.
    let (s, r) = app.get(&format!("/api/v1/share/gaj-hjrk/records/{}", person(0)), &tok).await;
    assert_eq!(s, 200, "{r}");
    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["sfzh", "xm", "xb"]);
    let id0 = person(0);
    assert_eq!(r["sfzh"], format!("{}********{}", &id0[..6], &id0[14..]));
    assert_eq!(r["xm"], "欧阳*");
    assert_eq!(r["xb"], "男");
    // The token and grant are now in the access cache: a token that differs from it in
    // one character, or is a prefix of it, is not served from there.
    let path0 = format!("/api/v1/share/gaj-hjrk/records/{}", person(0));
    let last = tok.chars().last().unwrap();
    let near = format!("{}{}", &tok[..tok.len() - 1], if last == 'a' { 'b' } else { 'a' });
    assert_eq!(app.get(&path0, &near).await.0, 401);
    assert_eq!(app.get(&path0, &tok[..tok.len() - 1]).await.0, 401);
    assert_eq!(app.get(&path0, &tok).await.0, 200);
    // Asking for a field outside the grant: refused, and nothing of its values shows.
    let (s, e) = app.get(&format!("/api/v1/share/gaj-hjrk/records/{}?fields=sfzh,nl", person(0)), &tok).await;
    assert_eq!(s, 400);
    let said = format!("{}{}", e["message"], e["message_zh"]);
    assert!(!said.contains("20") && !said.contains("1381234"), "{e}");
    let (s, e) = app.get("/api/v1/share/gaj-hjrk/records?nl=eq:21", &tok).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("nl")), "a filter on a field outside the grant: {e}");
    assert!(!format!("{}{}", e["message"], e["message_zh"]).contains("1381234"));

    // Filters, bound as parameters: injections return nothing.
    let (s, p) = app.get("/api/v1/share/gaj-hjrk/records?xb=eq:女", &tok).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["items"].as_array().unwrap().len(), 2);
    for inj in ["eq:' OR '1'='1", "in:男|' OR 1=1 --", "prefix:%", "range:' OR 1=1..'", "null:true"] {
        let (s, p) = app.get(&format!("/api/v1/share/gaj-hjrk/records?xm={}", urlencode(inj)), &tok).await;
        assert!(s == 400 || (s == 200 && p["items"].as_array().unwrap().is_empty()), "{inj}: {s} {p}");
    }

    // Signed cursors: pages, tampering, another dataset.
    let (_, p1) = app.get("/api/v1/share/gaj-hjrk/records?limit=2", &tok).await;
    let cursor = p1["next_cursor"].as_str().unwrap().to_string();
    let (_, p2) = app.get(&format!("/api/v1/share/gaj-hjrk/records?limit=2&cursor={cursor}"), &tok).await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 2);
    assert_ne!(p1["items"][0], p2["items"][0]);
    let mut forged = cursor.clone().into_bytes();
    forged[3] = if forged[3] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let (s, e) = app.get(&format!("/api/v1/share/gaj-hjrk/records?limit=2&cursor={forged}"), &tok).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("cursor")));
    let (_, desc) = app.get("/api/v1/share/gaj-hjrk/records?order=desc&limit=5", &tok).await;
    let (_, asc) = app.get("/api/v1/share/gaj-hjrk/records?limit=5", &tok).await;
    let mut reversed = asc["items"].as_array().unwrap().clone();
    reversed.reverse();
    assert_eq!(&reversed, desc["items"].as_array().unwrap());

    // Export, JSON Lines and CSV: the same fields, masked.
    let (s, body) = raw_get(&app, "/api/v1/share/gaj-hjrk/export", &tok).await;
    assert_eq!(s, 200);
    let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5);
    assert!(lines.iter().all(|l| l.as_object().unwrap().keys().collect::<Vec<_>>() == ["sfzh", "xm", "xb"]));
    assert!(!body.contains("1381234"), "mobile numbers are not granted");
    let (s, body) = raw_get(&app, "/api/v1/share/gaj-hjrk/export?format=csv&xb=eq:男", &tok).await;
    assert_eq!(s, 200);
    let text = body.trim_start_matches('\u{feff}');
    assert_eq!(text.lines().next(), Some("sfzh,xm,xb"));
    assert_eq!(text.lines().count(), 1 + 3);

    // Change feed: the first delivery's inserts, then an update and a snapshot delete.
    let (s, ch) = app.get("/api/v1/share/gaj-hjrk/changes", &tok).await;
    assert_eq!(s, 200, "{ch}");
    let items = ch["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert!(items.iter().all(|i| i["op"] == "insert" && i["version"] == 1));
    assert!(items.iter().all(|i| i["record"].as_object().unwrap().len() == 3));
    let since = ch["next_cursor"].as_str().unwrap().to_string();
    let (_, none) = app.get(&format!("/api/v1/share/gaj-hjrk/changes?since={since}"), &tok).await;
    assert!(none["items"].as_array().unwrap().is_empty());
    assert_eq!(none["next_cursor"].as_str(), Some(since.as_str()), "an empty page keeps the position");
    let mut changed = rows(5).replace("张1,", "张一,");
    deliver(&app, &c.officer, "gaj-hjrk", "", changed.clone()).await;
    changed = changed.lines().filter(|l| !l.contains(&person(4))).collect::<Vec<_>>().join("\n") + "\n";
    deliver(&app, &c.officer, "gaj-hjrk", "?mode=snapshot", changed).await;
    let (_, ch2) = app.get(&format!("/api/v1/share/gaj-hjrk/changes?since={since}"), &tok).await;
    let items = ch2["items"].as_array().unwrap();
    let ops: Vec<(&str, i64)> =
        items.iter().map(|i| (i["op"].as_str().unwrap(), i["version"].as_i64().unwrap())).collect();
    assert_eq!(ops, [("update", 2), ("delete", 2)], "{ch2}");
    assert_eq!(items[0]["record"]["xm"], "张*");
    // Replaying from the same cursor gives the same changes with the same ids.
    let (_, again) = app.get(&format!("/api/v1/share/gaj-hjrk/changes?since={since}"), &tok).await;
    assert_eq!(again["items"], ch2["items"]);
    assert_ne!(items[0]["id"], items[1]["id"]);
    assert!(!items[0]["id"].as_str().unwrap().contains(&person(1)), "change ids do not reveal keys");

    // Who read what: the provider sees its consumers; the audit log has the reads.
    let (s, consumers) = app.get("/api/v1/grants?dataset=gaj-hjrk", &c.approver).await;
    assert_eq!(s, 200);
    assert_eq!(consumers[0]["id"], gid);
    assert_eq!(consumers[0]["state"], "active");
    let (s, audit) = app.get("/api/v1/audit?action=share.read&limit=200", &c.admin).await;
    assert_eq!(s, 200, "{audit}");
    let reads = audit.as_array().unwrap();
    assert!(reads.iter().any(|e| e["outcome"] == "allowed" && e["rows"] == 2), "{audit}");
    assert!(reads.iter().any(|e| e["outcome"] == "denied"));
    assert!(!audit.to_string().contains(&person(0)), "ID numbers in the audit log are masked");

    // The citizen whose record was read sees who read it and why; another does not.
    for (name, id) in [("citizen-0", person(0)), ("citizen-x", person(900))] {
        let input = govhub_core::input::UserInput {
            username: name.into(),
            password: "citizen-pass-1".into(),
            role: "citizen".into(),
            org: None,
            display_name: None,
            subject_id: Some(id),
        };
        let user = govhub_core::input::NewUser::try_from(input).unwrap();
        let system = govhub_core::authz::Principal::system();
        app.hub.create_user(&system, user, &Default::default()).await.unwrap();
    }
    let (s, mine) = app.get("/api/v1/audit/about-me", &app.token("citizen-0", "citizen-pass-1").await).await;
    assert_eq!(s, 200, "{mine}");
    let mine = mine.as_array().unwrap();
    assert!(
        mine.iter()
            .any(|a| a["org"] == "cz-rsj" && a["purpose"] == "社保待遇资格认证" && a["app"] == "社保资格认证系统"),
        "{mine:?}"
    );
    let (_, theirs) = app.get("/api/v1/audit/about-me", &app.token("citizen-x", "citizen-pass-1").await).await;
    assert_eq!(theirs, json!([]), "nobody read citizen-x's record");
    // A read that shows only the name still names the citizen in the audit log (the
    // lookup reads the ID number for the entry, though it does not show it).
    let (s, r) = app.get(&format!("/api/v1/share/gaj-hjrk/records/{}?fields=xm", person(0)), &tok).await;
    assert_eq!((s, r.as_object().map(|o| o.len())), (200, Some(1)), "{r}");
    let (_, after) = app.get("/api/v1/audit/about-me", &app.token("citizen-0", "citizen-pass-1").await).await;
    assert_eq!(after.as_array().map(Vec::len), Some(mine.len() + 1), "{after}");

    // Usage: Prometheus text for admins (not for others), JSON for the console.
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = app.client.get(app.url("/metrics")).bearer_auth(&c.dev).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = app.client.get(app.url("/metrics")).bearer_auth(&c.admin).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains(&format!("govhub_share_requests_total{{dataset=\"gaj-hjrk\",app=\"{app_id}\"}}")), "{text}");
    assert!(text.contains(
        "govhub_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/share/{dataset}/records/{key}\""
    ));
    assert!(!text.contains(&person(0)), "keys never appear in metrics");
    // The audit writer's group commits: every read above was audited, in batches.
    let counter = |name: &str| -> u64 {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0)
    };
    let (commits, entries) = (counter("govhub_audit_commits_total"), counter("govhub_audit_entries_total"));
    assert!(commits >= 1 && entries >= commits && entries >= 10, "{commits} commits of {entries} entries\n{text}");
    assert_eq!(counter("govhub_audit_commit_duration_seconds_bucket{le=\"+Inf\"}"), commits);
    assert_eq!(counter("govhub_audit_commit_duration_seconds_count"), commits);
    let (s, usage) = app.get("/api/v1/usage", &c.admin).await;
    assert_eq!(s, 200);
    let mine = usage.as_array().unwrap().iter().find(|u| u["app"] == app_id && u["dataset"] == "gaj-hjrk").unwrap();
    assert!(mine["rows"].as_u64().unwrap() >= 5 + 5, "{usage}");
    assert_eq!(mine["app_name"], "社保资格认证系统", "{usage}");
    assert!(mine["errors"].as_u64().unwrap() >= 1);
    assert_eq!(app.get("/api/v1/usage", &c.dev).await.0, 403);

    // Revocation takes effect at once — for records, exports and changes.
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/grants/{gid}?reason=%E5%81%9C%E6%AD%A2%E4%BD%BF%E7%94%A8")))
        .bearer_auth(&c.approver)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let revoked: Value = r.json().await.unwrap();
    assert_eq!(revoked["state"], "revoked");
    assert_eq!(revoked["revoke_reason"], "停止使用");
    for path in ["/api/v1/share/gaj-hjrk/records", "/api/v1/share/gaj-hjrk/export", "/api/v1/share/gaj-hjrk/changes"] {
        let (s, e) = app.get(path, &tok).await;
        assert_eq!((s, e["code"].as_str()), (403, Some("no_grant")), "{path}");
    }

    // 无条件共享: granted at once (masked); asking for clear text needs the approver.
    let (s, r) = request(&app, &c.dev, app_id, "gaj-xzqh", json!(["sfzh", "xb"])).await;
    assert_eq!((s, r["status"].as_str()), (201, Some("granted")), "{r}");
    let (s, r) = app
        .post(
            "/api/v1/access-requests",
            &c.dev,
            &json!({"app": app_id, "dataset": "gaj-xzqh", "fields": ["sfzh"], "clear_fields": ["sfzh"],
                "purpose": "核验", "legal_basis": "依申请", "valid_until": today_plus(30)}),
        )
        .await;
    assert_eq!((s, r["status"].as_str()), (201, Some("pending")), "{r}");

    // Token rotation and revocation.
    let (s, t2) = app.post(&format!("/api/v1/apps/{app_id}/tokens"), &c.dev, &json!({})).await;
    assert_eq!(s, 201);
    let (_, list) = app.get(&format!("/api/v1/apps/{app_id}/tokens"), &c.dev).await;
    let first_id = list[0]["id"].as_i64().unwrap();
    assert!(!list.to_string().contains(&tok), "secrets are never listed");
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/apps/{app_id}/tokens/{first_id}")))
        .bearer_auth(&c.dev)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(app.get("/api/v1/share/gaj-xzqh/records", &tok).await.0, 401);
    assert_eq!(app.get("/api/v1/share/gaj-xzqh/records", t2["token"].as_str().unwrap()).await.0, 200);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn rate_limits(app: TestApp) {
    let c = city(&app).await;
    deliver(&app, &c.officer, "gaj-xzqh", "", rows(3)).await;
    let (app_id, tok) = app_with_token(&app, &c.dev, "压力测试").await;
    let (s, _) = request(&app, &c.dev, app_id, "gaj-xzqh", json!(["xb"])).await;
    assert_eq!(s, 201);
    let url = app.url("/api/v1/share/gaj-xzqh/records?limit=1");
    let mut limited = 0;
    let futures: Vec<_> = (0..600).map(|_| app.client.get(&url).bearer_auth(&tok).send()).collect();
    for r in futures_util::future::join_all(futures).await {
        if r.unwrap().status().as_u16() == 429 {
            limited += 1;
        }
    }
    assert!(limited > 0, "600 requests at once exceed the burst of 400");
}

/// Two nodes on one store: a grant and a token revoked through one node are refused by
/// the other's very next record lookup, although that node had both in its access
/// cache (the lookup reads the sharing generation in the same statement as the record).
async fn revocation_reaches_every_node(app: TestApp) {
    let c = city(&app).await;
    deliver(&app, &c.officer, "gaj-xzqh", "", rows(3)).await;
    let (app_id, tok) = app_with_token(&app, &c.dev, "双节点应用").await;
    let (s, r) = request(&app, &c.dev, app_id, "gaj-xzqh", json!(["sfzh", "xb"])).await;
    assert_eq!((s, r["status"].as_str()), (201, Some("granted")), "{r}");
    let gid = r["grant_id"].as_i64().unwrap();
    let other = app.another_node().await;
    let path = format!("/api/v1/share/gaj-xzqh/records/{}", person(1));
    for node in [&app, &other, &app, &other] {
        let (s, rec) = node.get(&path, &tok).await;
        assert_eq!((s, rec["xb"].as_str()), (200, Some("女")), "{rec}");
    }
    // The grant, revoked on the first node: refused on the second at once.
    let r = app.client.delete(app.url(&format!("/api/v1/grants/{gid}"))).bearer_auth(&c.approver).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    for node in [&other, &app] {
        let (s, e) = node.get(&path, &tok).await;
        assert_eq!((s, e["code"].as_str()), (403, Some("no_grant")), "{e}");
    }
    // A new grant serves again on both; then the token, revoked on the second node.
    let (s, r) = request(&app, &c.dev, app_id, "gaj-xzqh", json!(["sfzh", "xb"])).await;
    assert_eq!((s, r["status"].as_str()), (201, Some("granted")), "{r}");
    for node in [&app, &other, &app, &other] {
        assert_eq!(node.get(&path, &tok).await.0, 200);
    }
    let (_, list) = app.get(&format!("/api/v1/apps/{app_id}/tokens"), &c.dev).await;
    let token_id = list[0]["id"].as_i64().unwrap();
    let r = other
        .client
        .delete(other.url(&format!("/api/v1/apps/{app_id}/tokens/{token_id}")))
        .bearer_auth(&c.dev)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    for node in [&app, &other] {
        let (s, e) = node.get(&path, &tok).await;
        assert_eq!((s, e["code"].as_str()), (401, Some("unauthenticated")), "{e}");
    }
    // Every lookup, served from the cache or not, is in the audit log.
    let (_, log) = app.get("/api/v1/audit?action=share.read&limit=100", &c.admin).await;
    let items = log["items"].as_array().or(log.as_array()).unwrap();
    let allowed = items.iter().filter(|e| e["outcome"] == "allowed" && e["target"] == "gaj-xzqh").count();
    assert_eq!(allowed, 8, "{log}");
}

backend_tests!(requests_decisions_and_the_consumer_api, revocation_reaches_every_node);

/// A grant lapses after its end date (Beijing time): refused the next day.
async fn expiry(backend: Backend) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = spawn_app_with(backend, clock.clone(), ServerConfig::default()).await;
    let c = city(&app).await;
    deliver(&app, &c.officer, "gaj-xzqh", "", rows(2)).await;
    let (app_id, tok) = app_with_token(&app, &c.dev, "短期应用").await;
    let today = (clock_now(&clock) + Duration::hours(8)).date_naive();
    let (s, r) = app
        .post(
            "/api/v1/access-requests",
            &c.dev,
            &json!({"app": app_id, "dataset": "gaj-xzqh", "fields": ["xb"], "purpose": "一次性核验",
                "legal_basis": "依申请", "valid_until": today.to_string()}),
        )
        .await;
    assert_eq!((s, r["status"].as_str()), (201, Some("granted")), "{r}");
    assert_eq!(app.get("/api/v1/share/gaj-xzqh/records", &tok).await.0, 200);
    clock.advance(Duration::days(1));
    let (s, e) = app.get("/api/v1/share/gaj-xzqh/records", &tok).await;
    assert_eq!((s, e["code"].as_str()), (403, Some("no_grant")), "{e}");
    let dev = app.token("rsj-dev", "developer-pass-1").await;
    let (_, g) = app.get("/api/v1/grants", &dev).await;
    assert_eq!(g[0]["state"], "expired", "{g}");
}

fn clock_now(c: &ManualClock) -> chrono::DateTime<Utc> {
    use govhub_core::clock::Clock;
    c.now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_are_rate_limited() {
    rate_limits(govhub_testkit::spawn_app(Backend::Sqlite).await).await;
}

govhub_testkit::per_backend_tests!(expiry);
