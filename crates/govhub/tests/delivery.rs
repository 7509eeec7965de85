//! Data delivery over HTTP on both stores: validation and quarantine, encodings and
//! formats, atomicity, idempotency, history, snapshots, the provider's record API,
//! responsibilities and compliance.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use govhub_testkit::{backend_tests, spawn_app_with, Backend, TestApp};
use serde_json::{json, Value};
use std::io::{Read, Write};

const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// A valid ID number from its first 17 digits.
fn idn(body: &str) -> String {
    let s: u32 = body.bytes().zip(W).map(|(b, w)| u32::from(b - b'0') * w).sum();
    format!("{body}{}", char::from(b"10X98765432"[(s % 11) as usize]))
}

/// A valid ID number for person `i` (born 1980-01-01 + i days, Tianning district).
fn person_id(i: u32) -> String {
    let d = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).unwrap() + chrono::Duration::days(i64::from(i % 20000));
    idn(&format!("320402{}{:03}", d.format("%Y%m%d"), i % 1000))
}

fn schema() -> Value {
    json!({
        "fields": [
            {"name": "sfzh", "title": "公民身份号码", "format": "id-number", "sensitive": true},
            {"name": "xm", "title": "姓名", "constraints": {"required": true}, "sensitive": true},
            {"name": "xb", "title": "性别", "constraints": {"enum": ["男", "女"]}},
            {"name": "csrq", "title": "出生日期", "type": "date"},
            {"name": "nl", "title": "年龄", "type": "integer", "constraints": {"minimum": 0}}
        ],
        "primaryKey": "sfzh"
    })
}

async fn setup(app: &TestApp) -> (String, String) {
    let admin = app.admin_token().await;
    for (code, name, parent) in
        [("cz", "常州市人民政府", None), ("cz-gaj", "常州市公安局", Some("cz")), ("cz-rsj", "常州市人社局", Some("cz"))]
    {
        let mut body = json!({"code": code, "name": name});
        if let Some(p) = parent {
            body["parent"] = json!(p);
        }
        assert_eq!(app.post("/api/v1/orgs", &admin, &body).await.0, 201);
    }
    app.create_user("gaj-officer", "officer-pass-1", "data-officer", Some("cz-gaj")).await;
    app.create_user("rsj-officer", "officer-pass-1", "data-officer", Some("cz-rsj")).await;
    let officer = app.token("gaj-officer", "officer-pass-1").await;
    let ds = json!({"code": "gaj-hjrk", "name": "户籍人口", "provider": "cz-gaj", "sharing_class": "有条件共享",
        "open_class": "不予开放", "grade": "重要", "update_cycle": "daily", "schema": schema()});
    let (s, b) = app.post("/api/v1/datasets", &officer, &ds).await;
    assert_eq!(s, 201, "{b}");
    (admin, officer)
}

async fn deliver(app: &TestApp, token: &str, query: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let r = app
        .client
        .post(app.url(&format!("/api/v1/datasets/gaj-hjrk/deliveries{query}")))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap())
}

async fn csv(app: &TestApp, token: &str, text: &str) -> Value {
    let (s, r) = deliver(app, token, "", "text/csv", text.as_bytes().to_vec()).await;
    assert_eq!(s, 201, "{r}");
    r
}

async fn count(app: &TestApp, token: &str) -> usize {
    let (s, r) = app.get("/api/v1/datasets/gaj-hjrk/records?limit=1000", token).await;
    assert_eq!(s, 200, "{r}");
    r["items"].as_array().unwrap().len()
}

fn assert_failed(r: &Value, code: &str) {
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["error"]["code"], code, "{r}");
    assert!(r["error"]["message_zh"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(r["rows_accepted"], 0);
}

async fn validation_quarantine_and_history(app: TestApp) {
    let (_, t) = setup(&app).await;
    let (a, b, c, d) = (person_id(1), person_id(2), person_id(3), person_id(4));
    let bad_check = format!("{}{}", &a[..17], if a.ends_with('0') { '1' } else { '0' });
    let file = format!(
        "sfzh,姓名,xb,csrq,nl\n{a},张三,男,1950-01-02,76\n{b},李四,女,1950-01-03,76\n{c},王五,男,,\n{d},欧阳娜娜,女,1950-01-05,76\n\
         {bad_check},赵六,男,1950-01-02,76\n{},,男,1990-01-01,1\n{},钱七,未知,1990-01-01,1\n{b},李四重复,女,1950-01-03,76\n",
        person_id(5),
        person_id(6)
    );
    let r = csv(&app, &t, &file).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["rows_read"], 8);
    assert_eq!(r["rows_accepted"], 4);
    assert_eq!(r["rows_inserted"], 4);
    assert_eq!(r["rows_quarantined"], 4);
    let id = r["id"].as_i64().unwrap();

    let (s, q) = app.get(&format!("/api/v1/deliveries/{id}/quarantine"), &t).await;
    assert_eq!(s, 200);
    assert_eq!(q["total"], 4);
    let items = q["items"].as_array().unwrap();
    let first: Vec<(u64, &str, &str)> = items
        .iter()
        .map(|i| {
            (
                i["row"].as_u64().unwrap(),
                i["problems"][0]["code"].as_str().unwrap(),
                i["problems"][0]["field"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        first,
        vec![
            (5, "id-number-check", "sfzh"),
            (6, "constraint-error", "xm"),
            (7, "constraint-error", "xb"),
            (8, "primary-key", "sfzh")
        ]
    );
    // Sensitive values are masked, in values and messages.
    let dumped = q.to_string();
    assert!(!dumped.contains(&bad_check), "unmasked ID number in quarantine: {dumped}");
    assert!(items[0]["problems"][0]["message_zh"].as_str().unwrap().contains("校验码"));

    // The CSV download: delivered columns in order, an error column, BOM for Excel.
    let resp = app
        .client
        .get(app.url(&format!("/api/v1/deliveries/{id}/quarantine")))
        .bearer_auth(&t)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let body = resp.text().await.unwrap();
    let mut lines = body.trim_start_matches('\u{feff}').lines();
    assert_eq!(lines.next().unwrap(), "_row,sfzh,姓名,xb,csrq,nl,_errors");
    assert!(body.contains("未知"));

    // Reading back: by key, by filter.
    let (s, rec) = app.get(&format!("/api/v1/datasets/gaj-hjrk/records/{a}"), &t).await;
    assert_eq!(s, 200, "{rec}");
    assert_eq!(rec["xm"], "张三");
    assert_eq!(rec["nl"], 76);
    assert_eq!(rec["_version"], 1);
    let (s, b) = app.get(&format!("/api/v1/datasets/gaj-hjrk/records/{}", person_id(99)), &t).await;
    assert_eq!(s, 404, "{b}");

    // The same file again changes nothing, and says so.
    let again = csv(&app, &t, &file).await;
    assert_eq!(again["rows_unchanged"], 4, "{again}");
    assert_eq!(again["rows_inserted"], 0);
    assert_eq!(again["rows_updated"], 0);
    let (_, rec) = app.get(&format!("/api/v1/datasets/gaj-hjrk/records/{a}"), &t).await;
    assert_eq!(rec["_version"], 1);
    let before_change = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    // A changed value: updated, history kept.
    let changed = csv(&app, &t, &format!("sfzh,xm,xb,csrq,nl\n{a},张叁,男,1950-01-02,77\n")).await;
    assert_eq!(changed["rows_updated"], 1, "{changed}");
    let (s, h) = app.get(&format!("/api/v1/datasets/gaj-hjrk/records/{a}/history"), &t).await;
    assert_eq!(s, 200, "{h}");
    let h = h.as_array().unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0]["values"]["xm"], "张三");
    assert_eq!(h[0]["op"], "insert");
    assert!(h[0]["valid_to"].is_string());
    assert_eq!(h[1]["values"]["xm"], "张叁");
    assert_eq!(h[1]["version"], 2);
    assert!(h[1]["valid_to"].is_null());
    // The dataset as of before the change.
    let at = before_change.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (s, past) =
        app.get(&format!("/api/v1/datasets/gaj-hjrk/records?sfzh=eq:{a}&as_of={}", at.replace('+', "%2B")), &t).await;
    assert_eq!(s, 200, "{past}");
    assert_eq!(past["items"][0]["xm"], "张三");

    // Deliveries are listed newest first.
    let (_, list) = app.get("/api/v1/datasets/gaj-hjrk/deliveries", &t).await;
    let ids: Vec<i64> = list.as_array().unwrap().iter().map(|d| d["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids[0] > ids[1] && ids[1] > ids[2]);
}

async fn encodings_and_formats(app: TestApp) {
    let (_, t) = setup(&app).await;
    let text = format!("sfzh,xm,xb,csrq,nl\n{},周杰,男,1950-01-02,76\n{},吴莉莉,女,,\n", person_id(10), person_id(11));
    let (gbk, _, _) = encoding_rs::GBK.encode(&text);
    let (s, r) = deliver(&app, &t, "", "text/csv", gbk.to_vec()).await;
    assert_eq!(s, 201);
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["rows_inserted"], 2);
    let (_, rec) = app.get(&format!("/api/v1/datasets/gaj-hjrk/records/{}", person_id(11)), &t).await;
    assert_eq!(rec["xm"], "吴莉莉", "GBK decoded");
    // Declared encoding and a UTF-8 BOM.
    let (_, r) = deliver(&app, &t, "?encoding=gbk", "text/csv", gbk.to_vec()).await;
    assert_eq!(r["rows_unchanged"], 2, "{r}");
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(text.as_bytes());
    let (_, r) = deliver(&app, &t, "", "text/csv", bom).await;
    assert_eq!(r["rows_unchanged"], 2, "{r}");

    // Mixed encodings fail and keep nothing: a UTF-8 head, GBK after it.
    let mut mixed = "sfzh,xm,xb,csrq,nl\n".to_string();
    for i in 100..30_100 {
        mixed.push_str(&format!("{},测试,男,,\n", person_id(i)));
    }
    let mut bytes = mixed.into_bytes();
    let tail_text = format!("{},错误编码,男,,\n", person_id(40_000));
    let (tail, _, _) = encoding_rs::GBK.encode(&tail_text);
    bytes.extend_from_slice(&tail);
    let (_, r) = deliver(&app, &t, "", "text/csv", bytes).await;
    assert_failed(&r, "encoding-error");
    assert!(r["error"]["message"].as_str().unwrap().contains("offset"), "{r}");
    assert_eq!(count(&app, &t).await, 2, "a failed delivery leaves no partial state");

    // JSON Lines: a good line, a broken line, an object with an unknown key.
    let jsonl = format!(
        "{{\"sfzh\":\"{}\",\"xm\":\"孙悟\",\"nl\":30}}\n{{not json\n{{\"sfzh\":\"{}\",\"xm\":\"猪八\",\"colour\":\"red\"}}\n",
        person_id(20),
        person_id(21)
    );
    let (s, r) = deliver(&app, &t, "", "application/x-ndjson", jsonl.into_bytes()).await;
    assert_eq!(s, 201);
    assert_eq!(r["rows_inserted"], 1, "{r}");
    assert_eq!(r["rows_quarantined"], 2, "{r}");

    // XLSX, first sheet.
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["sfzh", "xm", "xb", "csrq", "nl"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    ws.write_string(1, 0, person_id(30)).unwrap();
    ws.write_string(1, 1, "沙和尚").unwrap();
    ws.write_string(1, 2, "男").unwrap();
    ws.write_string(1, 3, "1950-01-31").unwrap();
    ws.write_number(1, 4, 76.0).unwrap();
    let xlsx = wb.save_to_buffer().unwrap();
    let ct = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    let (s, r) = deliver(&app, &t, "", ct, xlsx).await;
    assert_eq!(s, 201);
    assert_eq!(r["rows_inserted"], 1, "{r}");
    let (_, rec) = app.get(&format!("/api/v1/datasets/gaj-hjrk/records/{}", person_id(30)), &t).await;
    assert_eq!(rec["nl"], 76);

    // XLSX with a formula: refused, naming the cell.
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["sfzh", "xm", "xb", "csrq", "nl"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    ws.write_string(1, 0, person_id(31)).unwrap();
    ws.write_string(1, 1, "白龙").unwrap();
    ws.write_formula(1, 4, "=1+1").unwrap();
    let (_, r) = deliver(&app, &t, "", ct, wb.save_to_buffer().unwrap()).await;
    assert_failed(&r, "format-error");
    assert!(r["error"]["message"].as_str().unwrap().contains("E2"), "{r}");
}

async fn bad_input(app: TestApp) {
    let (_, t) = setup(&app).await;
    let ok_row = format!("{},张三,男,,\n", person_id(1));
    // Wrong content type: refused before anything is recorded.
    let (s, b) = deliver(&app, &t, "", "application/pdf", b"%PDF".to_vec()).await;
    assert_eq!(s, 415, "{b}");
    assert_eq!(b["code"], "unsupported_media_type");
    let (s, b) = deliver(&app, &t, "?mode=sometimes", "text/csv", ok_row.clone().into_bytes()).await;
    assert_eq!((s, b["code"].as_str()), (400, Some("invalid_request")));
    let (s, b) = deliver(&app, &t, "?encoding=big5", "text/csv", ok_row.clone().into_bytes()).await;
    assert_eq!((s, b["code"].as_str()), (400, Some("invalid_request")));

    let (_, r) = deliver(&app, &t, "", "text/csv", Vec::new()).await;
    assert_failed(&r, "empty-file");
    let (_, r) = deliver(&app, &t, "", "text/csv", format!("sfzh,xm,xb,csrq,nl,colour\n{ok_row}").into_bytes()).await;
    assert_failed(&r, "extra-label");
    assert!(r["error"]["message_zh"].as_str().unwrap().contains("colour"));
    let (_, r) = deliver(&app, &t, "", "text/csv", format!("sfzh,xb,csrq,nl\n{}", "x,男,,\n").into_bytes()).await;
    assert_failed(&r, "missing-label");
    let (_, r) = deliver(
        &app,
        &t,
        "",
        "text/csv",
        format!("sfzh,xm,xb,csrq,nl\n{ok_row}\"{},unclosed,男,,\n", person_id(2)).into_bytes(),
    )
    .await;
    assert_failed(&r, "source-error");
    assert!(r["error"]["message"].as_str().unwrap().contains('3'), "names the line: {r}");
    // Ragged rows are quarantined, not fatal.
    let ragged = format!("sfzh,xm,xb,csrq,nl\n{ok_row}{},短行\n{},长行,男,,,多余\n", person_id(3), person_id(4));
    let (_, r) = deliver(&app, &t, "", "text/csv", ragged.into_bytes()).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["rows_quarantined"], 2);
    let (_, q) = app.get(&format!("/api/v1/deliveries/{}/quarantine", r["id"]), &t).await;
    let codes: Vec<&str> =
        q["items"].as_array().unwrap().iter().map(|i| i["problems"][0]["code"].as_str().unwrap()).collect();
    assert_eq!(codes, vec!["missing-cell", "extra-cell"]);
    assert_eq!(count(&app, &t).await, 1);

    // Failed deliveries are on record with their reason.
    let (_, list) = app.get("/api/v1/datasets/gaj-hjrk/deliveries?status=failed", &t).await;
    assert_eq!(list.as_array().unwrap().len(), 4);
}

async fn snapshots(app: TestApp) {
    let (_, t) = setup(&app).await;
    let rows: Vec<String> = (1..=3).map(|i| format!("{},人{i},男,,", person_id(i))).collect();
    csv(&app, &t, &format!("sfzh,xm,xb,csrq,nl\n{}\n", rows.join("\n"))).await;
    // A snapshot without row 3 deletes it.
    let (_, r) = deliver(
        &app,
        &t,
        "?mode=snapshot",
        "text/csv",
        format!("sfzh,xm,xb,csrq,nl\n{}\n{}\n", rows[0], rows[1]).into_bytes(),
    )
    .await;
    assert_eq!(r["rows_deleted"], 1, "{r}");
    assert_eq!(r["rows_unchanged"], 2);
    assert_eq!(count(&app, &t).await, 2);
    let (s, rec) = app.get(&format!("/api/v1/datasets/gaj-hjrk/records/{}", person_id(3)), &t).await;
    assert_eq!(s, 200);
    assert_eq!(rec["_deleted"], true);
    // A snapshot with a quarantined row deletes nothing.
    let (_, r) = deliver(
        &app,
        &t,
        "?mode=snapshot",
        "text/csv",
        format!("sfzh,xm,xb,csrq,nl\n{}\n{},,男,,\n", rows[0], person_id(2)).into_bytes(),
    )
    .await;
    assert_eq!(r["status"], "succeeded");
    assert_eq!(r["rows_quarantined"], 1);
    assert_eq!(r["rows_deleted"], 0, "{r}");
    assert_eq!(count(&app, &t).await, 2);
    // An empty snapshot is refused.
    let (_, r) = deliver(&app, &t, "?mode=snapshot", "text/csv", b"sfzh,xm,xb,csrq,nl\n".to_vec()).await;
    assert_failed(&r, "empty-snapshot");
    assert_eq!(count(&app, &t).await, 2);
    // The deleted record comes back with a later delivery.
    let r = csv(&app, &t, &format!("sfzh,xm,xb,csrq,nl\n{}\n", rows[2])).await;
    assert_eq!(r["rows_updated"], 1, "{r}");
    assert_eq!(count(&app, &t).await, 3);
}

async fn access_control(app: TestApp) {
    let (admin, t) = setup(&app).await;
    let rsj = app.token("rsj-officer", "officer-pass-1").await;
    let body = format!("sfzh,xm,xb,csrq,nl\n{},张三,男,,\n", person_id(1)).into_bytes();
    let (s, b) = deliver(&app, &rsj, "", "text/csv", body.clone()).await;
    assert_eq!((s, b["code"].as_str()), (403, Some("forbidden")));
    let r = app
        .client
        .post(app.url("/api/v1/datasets/gaj-hjrk/deliveries"))
        .header("content-type", "text/csv")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = csv(&app, &t, std::str::from_utf8(&body).unwrap()).await;
    for path in [
        "/api/v1/datasets/gaj-hjrk/records".to_string(),
        format!("/api/v1/datasets/gaj-hjrk/records/{}", person_id(1)),
        format!("/api/v1/deliveries/{}", r["id"]),
        format!("/api/v1/deliveries/{}/quarantine", r["id"]),
        "/api/v1/datasets/gaj-hjrk/deliveries".to_string(),
    ] {
        let (s, b) = app.get(&path, &rsj).await;
        assert_eq!(s, 403, "{path}: {b}");
        assert!(!b.to_string().contains("张三"), "{path} leaked data");
    }
    // A platform admin may deliver on the provider's behalf (audited).
    let (s, r) = deliver(&app, &admin, "", "text/csv", body).await;
    assert_eq!(s, 201);
    assert_eq!(r["rows_unchanged"], 1);
    let (_, ev) = app.get("/api/v1/audit?action=delivery.create", &admin).await;
    let ev = ev.as_array().unwrap();
    assert!(ev.iter().any(|e| e["actor"] == "root" && e["on_behalf_of"] == "cz-gaj" && e["outcome"] == "succeeded"));
    assert!(ev.iter().any(|e| e["actor"] == "rsj-officer" && e["outcome"] == "denied"));
}

async fn record_queries(app: TestApp) {
    let (_, t) = setup(&app).await;
    let mut file = "sfzh,xm,xb,csrq,nl\n".to_string();
    for i in 1..=7 {
        file.push_str(&format!(
            "{},{}{i},{},,{}\n",
            person_id(i),
            if i % 2 == 0 { "张" } else { "李" },
            if i % 2 == 0 { "男" } else { "女" },
            i * 10
        ));
    }
    csv(&app, &t, &file).await;
    // Cursor pagination visits every record once, in key order.
    let mut seen = Vec::new();
    let mut url = "/api/v1/datasets/gaj-hjrk/records?limit=3".to_string();
    loop {
        let (s, page) = app.get(&url, &t).await;
        assert_eq!(s, 200, "{page}");
        for r in page["items"].as_array().unwrap() {
            seen.push(r["sfzh"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => url = format!("/api/v1/datasets/gaj-hjrk/records?limit=3&cursor={c}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 7);
    let q = |s: &str| format!("/api/v1/datasets/gaj-hjrk/records?{s}");
    let n = |v: &Value| v["items"].as_array().map(|a| a.len()).unwrap_or(usize::MAX);
    assert_eq!(n(&app.get(&q("xm=prefix:%E5%BC%A0"), &t).await.1), 3); // 张
    assert_eq!(n(&app.get(&q("nl=range:20..40"), &t).await.1), 3);
    assert_eq!(n(&app.get(&q("nl=range:..30"), &t).await.1), 3);
    assert_eq!(n(&app.get(&q("xb=in:%E7%94%B7|%E5%A5%B3"), &t).await.1), 7);
    assert_eq!(n(&app.get(&q("csrq=null:true"), &t).await.1), 7);
    assert_eq!(n(&app.get(&q("xm=eq:%27%20OR%201%3D1%20--"), &t).await.1), 0, "injection returns nothing");
    assert_eq!(n(&app.get(&q("xm=prefix:%25"), &t).await.1), 0, "% is not a wildcard");
    for bad in ["nl=eq:abc", "nl=like:1", "nosuch=eq:1", "cursor=AAAA", "limit=x", "as_of=yesterday"] {
        let (s, b) = app.get(&q(bad), &t).await;
        assert_eq!((s, b["code"].as_str()), (400, Some("invalid_request")), "{bad}: {b}");
    }
}

async fn compliance(app: TestApp) {
    let (admin, t) = setup(&app).await;
    let (s, b) = app.put("/api/v1/responsibilities/gaj-hjrk", &t, &json!({"cycle": "daily"})).await;
    assert_eq!((s, b["code"].as_str()), (403, Some("forbidden")));
    let (s, b) =
        app.put("/api/v1/responsibilities/gaj-hjrk", &admin, &json!({"cycle": "daily", "note": "每日交付"})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["org"], "cz-gaj");
    let (s, b) = app.put("/api/v1/responsibilities/nope", &admin, &json!({"cycle": "daily"})).await;
    assert_eq!(s, 404, "{b}");
    let (_, c) = app.get("/api/v1/compliance", &t).await;
    assert_eq!(c["summary"]["datasets"], 1, "{c}");
    assert_eq!(c["summary"]["never_delivered"], 1);
    assert_eq!(c["items"][0]["state"], "never");
    csv(&app, &t, &format!("sfzh,xm,xb,csrq,nl\n{},张三,男,,\n{},,男,,\n", person_id(1), person_id(2))).await;
    let (_, c) = app.get("/api/v1/compliance", &t).await;
    assert_eq!(c["summary"]["current"], 1, "{c}");
    assert_eq!(c["items"][0]["record_count"], 1);
    assert_eq!(c["items"][0]["quarantine_rate"], 0.5);
    let (_, list) = app.get("/api/v1/responsibilities", &t).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let r = app.client.delete(app.url("/api/v1/responsibilities/gaj-hjrk")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), 204);
}

async fn late_deliveries_show_as_late(backend: Backend) {
    let clock = std::sync::Arc::new(govhub_core::clock::ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with(backend, clock.clone(), Default::default()).await;
    let (admin, t) = setup(&app).await;
    app.put("/api/v1/responsibilities/gaj-hjrk", &admin, &json!({"cycle": "daily"})).await;
    csv(&app, &t, &format!("sfzh,xm,xb,csrq,nl\n{},张三,男,,\n", person_id(1))).await;
    clock.advance(chrono::Duration::days(3));
    let t = app.token("gaj-officer", "officer-pass-1").await;
    let (_, c) = app.get("/api/v1/compliance", &t).await;
    assert_eq!(c["items"][0]["state"], "late", "{c}");
    assert_eq!(c["summary"]["late"], 1);
}

/// A client that drops the connection mid-body: the delivery fails, nothing is kept.
async fn truncated_upload(app: TestApp) {
    let (_, t) = setup(&app).await;
    let mut body = "sfzh,xm,xb,csrq,nl\n".to_string();
    for i in 1..=20_000 {
        body.push_str(&format!("{},张{i},男,,\n", person_id(i)));
    }
    let addr = app.base.trim_start_matches("http://").to_string();
    let half = body.len() / 2;
    let t2 = t.clone();
    let sent = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "POST /api/v1/datasets/gaj-hjrk/deliveries HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t2}\r\nContent-Type: text/csv\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(&body.as_bytes()[..half]).unwrap();
        s.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        s.shutdown(std::net::Shutdown::Both).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    sent.await.unwrap();
    // The server notices, fails the delivery, keeps nothing.
    let mut status = Value::Null;
    for _ in 0..50 {
        let (_, list) = app.get("/api/v1/datasets/gaj-hjrk/deliveries", &t).await;
        status = list[0].clone();
        if status["status"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(count(&app, &t).await, 0);
}

async fn too_large(backend: Backend) {
    let config = govhub_server::state::ServerConfig { max_delivery_bytes: 2048, ..Default::default() };
    let app = spawn_app_with(backend, std::sync::Arc::new(govhub_core::clock::SystemClock), config).await;
    let (_, t) = setup(&app).await;
    let mut body = "sfzh,xm,xb,csrq,nl\n".to_string();
    for i in 1..=200 {
        body.push_str(&format!("{},张{i},男,,\n", person_id(i)));
    }
    let (_, r) = deliver(&app, &t, "", "text/csv", body.into_bytes()).await;
    assert_failed(&r, "too-large");
    assert_eq!(count(&app, &t).await, 0);
}

backend_tests!(
    validation_quarantine_and_history,
    encodings_and_formats,
    bad_input,
    snapshots,
    access_control,
    record_queries,
    compliance,
    truncated_upload,
);

govhub_testkit::per_backend_tests!(late_deliveries_show_as_late, too_large);
