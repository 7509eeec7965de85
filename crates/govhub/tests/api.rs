//! HTTP behaviour of the JSON API, against the real server on a free port, on SQLite
//! and (when GOVHUB_TEST_POSTGRES_URL is set) PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use govhub_testkit::{backend_tests, TestApp};
use serde_json::{json, Value};

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "status for {body}");
    assert_eq!(body["code"], want_code, "code in {body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "message in {body}");
    assert!(body["message_zh"].as_str().is_some_and(|m| !m.is_empty()), "message_zh in {body}");
    assert!(body["request_id"].as_str().is_some_and(|m| m.len() >= 16), "request_id in {body}");
}

fn person_schema() -> Value {
    json!({
        "fields": [
            {"name": "sfzh", "title": "公民身份号码", "type": "string", "format": "id-number", "sensitive": true},
            {"name": "xm", "title": "姓名", "type": "string", "constraints": {"required": true}, "sensitive": true},
            {"name": "csrq", "title": "出生日期", "type": "date"},
            {"name": "nl", "title": "年龄", "type": "integer", "constraints": {"minimum": 0, "maximum": 150}}
        ],
        "primaryKey": ["sfzh"]
    })
}

fn dataset(code: &str, provider: &str) -> Value {
    json!({
        "code": code, "name": "户籍人口", "provider": provider,
        "sharing_class": "有条件共享", "open_class": "不予开放", "grade": "重要", "update_cycle": "daily",
        "summary": "全市户籍人口基本信息", "tags": ["人口", "基础库"], "schema": person_schema()
    })
}

/// An admin, the city, two departments and one officer in each.
async fn city(app: &TestApp) -> String {
    let admin = app.admin_token().await;
    for (code, name, parent) in [
        ("cz", "常州市人民政府", None),
        ("cz-gaj", "常州市公安局", Some("cz")),
        ("cz-rsj", "常州市人力资源和社会保障局", Some("cz")),
    ] {
        let mut body = json!({"code": code, "name": name});
        if let Some(p) = parent {
            body["parent"] = json!(p);
        } else {
            body["admin_code"] = json!("320400");
        }
        let (s, b) = app.post("/api/v1/orgs", &admin, &body).await;
        assert_eq!(s, 201, "{b}");
    }
    app.create_user("gaj-officer", "officer-pass-1", "data-officer", Some("cz-gaj")).await;
    app.create_user("rsj-officer", "officer-pass-1", "data-officer", Some("cz-rsj")).await;
    app.create_user("zhang-san", "citizen-pass-1", "citizen", None).await;
    admin
}

async fn health_and_openapi(app: TestApp) {
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["backend"], app.backend.as_str());

    let r = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/auth/token",
        "/api/v1/me",
        "/api/v1/orgs",
        "/api/v1/orgs/{code}",
        "/api/v1/users",
        "/api/v1/datasets",
        "/api/v1/datasets/{code}",
        "/api/v1/datasets/{code}/schema",
        "/api/v1/datasets/{code}/schema-versions",
        "/api/v1/datasets/{code}/columns",
        "/api/v1/audit",
        "/api/v1/datasets/{code}/deliveries",
        "/api/v1/deliveries/{id}",
        "/api/v1/deliveries/{id}/quarantine",
        "/api/v1/datasets/{code}/records",
        "/api/v1/datasets/{code}/records/{key}",
        "/api/v1/datasets/{code}/records/{key}/history",
        "/api/v1/responsibilities",
        "/api/v1/responsibilities/{dataset}",
        "/api/v1/compliance",
    ] {
        assert!(paths.contains_key(p), "OpenAPI lacks {p}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

async fn authentication(app: TestApp) {
    let _admin = city(&app).await;
    // Wrong password and unknown user: same error, 401.
    for (u, p) in [("gaj-officer", "wrong-password"), ("nobody", "whatever-1")] {
        let r = app
            .client
            .post(app.url("/api/v1/auth/token"))
            .json(&json!({"username": u, "password": p}))
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let b: Value = r.json().await.unwrap();
        assert_error(s, &b, 401, "invalid_credentials");
    }
    // No token, a malformed header, an unknown token.
    let r = app.client.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["code"], "unauthenticated");
    let (s, b) = app.get("/api/v1/me", "ghp_not-a-real-token").await;
    assert_error(s, &b, 401, "unauthenticated");
    let r = app.client.get(app.url("/api/v1/me")).header("authorization", "Basic Zm9vOmJhcg==").send().await.unwrap();
    assert_eq!(r.status(), 401);

    let token = app.token("gaj-officer", "officer-pass-1").await;
    let (s, me) = app.get("/api/v1/me", &token).await;
    assert_eq!(s, 200);
    assert_eq!(me["role"], "data-officer");
    assert_eq!(me["org"], "cz-gaj");

    // Revoked tokens stop working at once.
    let r = app.client.delete(app.url("/api/v1/auth/token")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let (s, b) = app.get("/api/v1/me", &token).await;
    assert_error(s, &b, 401, "unauthenticated");

    // Sign-ins are audited, failures included.
    let admin = app.token("root", "root-password-1").await;
    let (s, events) = app.get("/api/v1/audit?action=auth.sign_in", &admin).await;
    assert_eq!(s, 200);
    let events = events.as_array().unwrap();
    assert!(events.iter().any(|e| e["outcome"] == "denied" && e["actor"] == "nobody"));
    assert!(events.iter().any(|e| e["outcome"] == "succeeded" && e["actor"] == "gaj-officer"));
}

async fn organisations(app: TestApp) {
    let admin = city(&app).await;
    let (s, orgs) = app.get("/api/v1/orgs", &admin).await;
    assert_eq!(s, 200);
    let codes: Vec<&str> = orgs.as_array().unwrap().iter().map(|o| o["code"].as_str().unwrap()).collect();
    assert_eq!(codes, vec!["cz", "cz-gaj", "cz-rsj"]);
    let (s, o) = app.get("/api/v1/orgs/cz", &admin).await;
    assert_eq!(s, 200);
    assert_eq!(o["kind"], "city");
    assert_eq!(o["admin_code"], "320400");
    let (s, b) = app.get("/api/v1/orgs/nope", &admin).await;
    assert_error(s, &b, 404, "not_found");

    // A district with a USCC.
    let (s, b) = app
        .post(
            "/api/v1/orgs",
            &admin,
            &json!({"code": "cz-tianning", "name": "常州市天宁区人民政府", "parent": "cz", "admin_code": "320402", "kind": "district", "uscc": "91320402123456788Q"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["kind"], "district");

    let (s, b) = app.post("/api/v1/orgs", &admin, &json!({"code": "cz-gaj", "name": "重复"})).await;
    assert_error(s, &b, 409, "org_exists");
    let (s, b) = app.post("/api/v1/orgs", &admin, &json!({"code": "x1", "name": "某局", "parent": "missing"})).await;
    assert_error(s, &b, 422, "unknown_org");
    assert_eq!(b["field"], "parent");
    let (s, b) = app.post("/api/v1/orgs", &admin, &json!({"code": "x2", "name": "某局", "admin_code": "990000"})).await;
    assert_error(s, &b, 422, "invalid_org");
    assert_eq!(b["field"], "admin_code");
    let (s, b) =
        app.post("/api/v1/orgs", &admin, &json!({"code": "x3", "name": "某局", "uscc": "91320402123456780X"})).await;
    assert_error(s, &b, 422, "invalid_org");
    let (s, b) = app.post("/api/v1/orgs", &admin, &json!({"code": "x4", "name": "某局", "colour": "red"})).await;
    assert_error(s, &b, 400, "unknown_field");
    assert!(b["message"].as_str().unwrap().contains("colour"));
    let (s, b) = app.post("/api/v1/orgs", &admin, &json!({"code": "bad code!", "name": "某局"})).await;
    assert_error(s, &b, 422, "invalid_org");

    // Malformed JSON and a missing content type.
    let r = app
        .client
        .post(app.url("/api/v1/orgs"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{\"code\": ")
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_error(s, &r.json().await.unwrap(), 400, "malformed_json");
    let r = app.client.post(app.url("/api/v1/orgs")).bearer_auth(&admin).body("{}").send().await.unwrap();
    let s = r.status().as_u16();
    assert_error(s, &r.json().await.unwrap(), 415, "unsupported_media_type");

    // Nothing half-created by any of the refusals.
    let (_, orgs) = app.get("/api/v1/orgs", &admin).await;
    assert_eq!(orgs.as_array().unwrap().len(), 4);

    // Only platform admins create organisations; the denial is audited.
    let officer = app.token("gaj-officer", "officer-pass-1").await;
    let (s, b) = app.post("/api/v1/orgs", &officer, &json!({"code": "rogue", "name": "冒名机构"})).await;
    assert_error(s, &b, 403, "forbidden");
    let (_, events) = app.get("/api/v1/audit?action=org.create&actor=gaj-officer", &admin).await;
    assert_eq!(events.as_array().unwrap().len(), 1);
    assert_eq!(events[0]["outcome"], "denied");
}

async fn catalog(app: TestApp) {
    let admin = city(&app).await;
    let gaj = app.token("gaj-officer", "officer-pass-1").await;
    let rsj = app.token("rsj-officer", "officer-pass-1").await;

    // The provider's officer registers a dataset; a real typed table exists.
    let (s, d) = app.post("/api/v1/datasets", &gaj, &dataset("gaj-hjrk", "cz-gaj")).await;
    assert_eq!(s, 201, "{d}");
    assert_eq!(d["sharing_class"], "有条件共享");
    assert_eq!(d["schema_version"], 1);
    assert_eq!(d["table_name"], "ds_gaj_hjrk_v1");
    let (s, cols) = app.get("/api/v1/datasets/gaj-hjrk/columns", &gaj).await;
    assert_eq!(s, 200);
    let names: Vec<&str> = cols.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    for f in ["sfzh", "xm", "csrq", "nl"] {
        assert!(names.contains(&f), "column {f} missing from {names:?}");
    }
    let sfzh = cols.as_array().unwrap().iter().find(|c| c["name"] == "sfzh").unwrap();
    assert_eq!(sfzh["not_null"], true);

    // Another department's officer may not register for 公安局, nor change its schema.
    let (s, b) = app.post("/api/v1/datasets", &rsj, &dataset("gaj-other", "cz-gaj")).await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app.put("/api/v1/datasets/gaj-hjrk/schema", &rsj, &person_schema()).await;
    assert_error(s, &b, 403, "forbidden");

    // A platform admin may act on the provider's behalf, and that is audited.
    let mut rsj_ds = dataset("rsj-sbcb", "cz-rsj");
    rsj_ds["name"] = json!("社保参保");
    rsj_ds["sharing_class"] = json!("无条件共享");
    rsj_ds["tags"] = json!(["社保"]);
    let (s, b) = app.post("/api/v1/datasets", &admin, &rsj_ds).await;
    assert_eq!(s, 201, "{b}");
    let (_, events) = app.get("/api/v1/audit?action=dataset.manage&target=rsj-sbcb", &admin).await;
    assert_eq!(events[0]["outcome"], "succeeded");
    assert_eq!(events[0]["on_behalf_of"], "cz-rsj");

    // Duplicates, also differing only in case or '-'/'_'.
    let (s, b) = app.post("/api/v1/datasets", &gaj, &dataset("gaj-hjrk", "cz-gaj")).await;
    assert_error(s, &b, 409, "dataset_exists");
    let (s, b) = app.post("/api/v1/datasets", &gaj, &dataset("GAJ_HJRK", "cz-gaj")).await;
    assert_error(s, &b, 409, "dataset_exists");

    // Malformed schemas name the place; nothing is left behind.
    let cases = [
        (json!({"fields": [{"name": "a", "type": "strin"}]}), "type"),
        (json!({"fields": [{"name": "a"}], "primaryKey": ["b"]}), "primaryKey"),
        (json!({"fields": [{"name": "a", "constraints": {"pattern": "([0-9"}}]}), "pattern"),
        (
            json!({"fields": [{"name": "a"}], "foreignKeys": [{"fields": "a", "reference": {"resource": "nope", "fields": "x"}}]}),
            "foreignKeys",
        ),
    ];
    for (schema, place) in cases {
        let mut body = dataset("gaj-bad", "cz-gaj");
        body["schema"] = schema;
        let (s, b) = app.post("/api/v1/datasets", &gaj, &body).await;
        assert_error(s, &b, 422, "invalid_schema");
        assert!(b["field"].as_str().unwrap().contains(place), "{b}");
        let (s, _) = app.get("/api/v1/datasets/gaj-bad", &gaj).await;
        assert_eq!(s, 404);
    }
    let mut body = dataset("gaj-bad", "cz-gaj");
    body["sharing_class"] = json!("随便共享");
    let (s, b) = app.post("/api/v1/datasets", &gaj, &body).await;
    assert_error(s, &b, 422, "invalid_dataset");
    let (s, b) = app.post("/api/v1/datasets", &admin, &dataset("xx-ghost", "cz-ghost")).await;
    assert_error(s, &b, 422, "unknown_org");
    let mut body = dataset("gaj-bad", "cz-gaj");
    body["owner"] = json!("me");
    let (s, b) = app.post("/api/v1/datasets", &gaj, &body).await;
    assert_error(s, &b, 400, "unknown_field");
    // After all those refusals the code is still free.
    let (s, _) = app.post("/api/v1/datasets", &gaj, &dataset("gaj-bad", "cz-gaj")).await;
    assert_eq!(s, 201);

    // Search by text, provider, class, tag.
    let (s, all) = app.get("/api/v1/datasets", &rsj).await;
    assert_eq!(s, 200);
    assert_eq!(all["total"], 3);
    let (_, r) = app.get("/api/v1/datasets?q=%E7%A4%BE%E4%BF%9D", &rsj).await; // 社保
    assert_eq!(r["total"], 1);
    assert_eq!(r["items"][0]["code"], "rsj-sbcb");
    let (_, r) = app.get("/api/v1/datasets?provider=cz-gaj", &rsj).await;
    assert_eq!(r["total"], 2);
    let (_, r) = app.get("/api/v1/datasets?sharing_class=%E6%97%A0%E6%9D%A1%E4%BB%B6%E5%85%B1%E4%BA%AB", &rsj).await;
    assert_eq!(r["total"], 1);
    let (_, r) = app.get("/api/v1/datasets?tag=%E5%9F%BA%E7%A1%80%E5%BA%93", &rsj).await; // 基础库
    assert_eq!(r["total"], 2);
    let (_, r) = app.get("/api/v1/datasets?limit=1&offset=1", &rsj).await;
    assert_eq!(r["items"].as_array().unwrap().len(), 1);
    assert_eq!(r["total"], 3);
    let (s, b) = app.get("/api/v1/datasets?grade=%E7%A5%9E", &rsj).await;
    assert_error(s, &b, 400, "invalid_request");
    let (s, b) = app.get("/api/v1/datasets?colour=red", &rsj).await;
    assert_error(s, &b, 400, "invalid_request");

    // Citizens do not see the internal catalog.
    let citizen = app.token("zhang-san", "citizen-pass-1").await;
    let (s, b) = app.get("/api/v1/datasets", &citizen).await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app.get("/api/v1/datasets/nope", &gaj).await;
    assert_error(s, &b, 404, "unknown_dataset");
}

async fn schema_evolution(app: TestApp) {
    let _admin = city(&app).await;
    let gaj = app.token("gaj-officer", "officer-pass-1").await;
    let (s, _) = app.post("/api/v1/datasets", &gaj, &dataset("gaj-hjrk", "cz-gaj")).await;
    assert_eq!(s, 201);

    // Same schema: unchanged.
    let (s, r) = app.put("/api/v1/datasets/gaj-hjrk/schema", &gaj, &person_schema()).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["change"], "unchanged");

    // An optional field: added in place.
    let mut schema = person_schema();
    schema["fields"].as_array_mut().unwrap().push(json!({"name": "mz", "title": "民族", "type": "string"}));
    let (s, r) = app.put("/api/v1/datasets/gaj-hjrk/schema", &gaj, &schema).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["change"], "fields_added");
    assert_eq!(r["dataset"]["schema_version"], 1);
    let (_, cols) = app.get("/api/v1/datasets/gaj-hjrk/columns", &gaj).await;
    assert!(cols.as_array().unwrap().iter().any(|c| c["name"] == "mz"));

    // A type change: a new version with its own table; the old one is kept.
    schema["fields"][3]["type"] = json!("number");
    let (s, r) = app.put("/api/v1/datasets/gaj-hjrk/schema", &gaj, &schema).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["change"], "new_version");
    assert_eq!(r["dataset"]["schema_version"], 2);
    assert_eq!(r["dataset"]["table_name"], "ds_gaj_hjrk_v2");
    let (_, versions) = app.get("/api/v1/datasets/gaj-hjrk/schema-versions", &gaj).await;
    let v = versions.as_array().unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["table_name"], "ds_gaj_hjrk_v1");
    assert_eq!(v[1]["table_name"], "ds_gaj_hjrk_v2");

    // An invalid schema changes nothing.
    let (s, b) =
        app.put("/api/v1/datasets/gaj-hjrk/schema", &gaj, &json!({"fields": [{"name": "x", "type": "nope"}]})).await;
    assert_error(s, &b, 422, "invalid_schema");
    let (_, d) = app.get("/api/v1/datasets/gaj-hjrk", &gaj).await;
    assert_eq!(d["schema_version"], 2);
}

async fn metadata_updates(app: TestApp) {
    let _admin = city(&app).await;
    let gaj = app.token("gaj-officer", "officer-pass-1").await;
    let rsj = app.token("rsj-officer", "officer-pass-1").await;
    let (s, _) = app.post("/api/v1/datasets", &gaj, &dataset("gaj-hjrk", "cz-gaj")).await;
    assert_eq!(s, 201);
    let patch = |body: Value, token: String| {
        let app = &app;
        async move {
            let r = app
                .client
                .patch(app.url("/api/v1/datasets/gaj-hjrk"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap())
        }
    };
    let (s, d) =
        patch(json!({"summary": "更新后的摘要", "tags": ["人口", "户籍"], "update_cycle": "realtime"}), gaj.clone())
            .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["summary"], "更新后的摘要");
    assert_eq!(d["update_cycle"], "realtime");
    assert_eq!(d["name"], "户籍人口");
    let (_, r) = app.get("/api/v1/datasets?tag=%E6%88%B7%E7%B1%8D", &gaj).await; // 户籍
    assert_eq!(r["total"], 1);
    let (_, r) = app.get("/api/v1/datasets?tag=%E5%9F%BA%E7%A1%80%E5%BA%93", &gaj).await; // 基础库 was removed
    assert_eq!(r["total"], 0);
    // The same policy rules as registration: important data is never opened unconditionally.
    let (s, b) = patch(json!({"open_class": "无条件开放"}), gaj.clone()).await;
    assert_error(s, &b, 422, "invalid_dataset");
    let (s, b) = patch(json!({"summary": "x"}), rsj).await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = patch(json!({"schema": {}}), gaj.clone()).await;
    assert_error(s, &b, 400, "unknown_field");
    let (_, d) = app.get("/api/v1/datasets/gaj-hjrk", &gaj).await;
    assert_eq!(d["open_class"], "不予开放");
}

async fn framework_errors_are_coded(app: TestApp) {
    let r = app.client.get(app.url("/api/v1/no-such-thing")).send().await.unwrap();
    let s = r.status().as_u16();
    assert_error(s, &r.json().await.unwrap(), 404, "not_found");
    let r = app.client.patch(app.url("/api/v1/orgs")).send().await.unwrap();
    let s = r.status().as_u16();
    assert_error(s, &r.json().await.unwrap(), 405, "invalid_request");
    // A body over the configured limit (64 KiB here).
    let config = govhub_server::state::ServerConfig { max_body_bytes: 64 * 1024, ..Default::default() };
    let small =
        govhub_testkit::spawn_app_with(app.backend, std::sync::Arc::new(govhub_core::clock::SystemClock), config).await;
    let admin = small.admin_token().await;
    let big = format!("{{\"code\":\"x\",\"name\":\"{}\"}}", "a".repeat(100 * 1024));
    let r = small
        .client
        .post(small.url("/api/v1/orgs"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_error(s, &r.json().await.unwrap(), 413, "payload_too_large");
}

backend_tests!(
    health_and_openapi,
    authentication,
    organisations,
    catalog,
    schema_evolution,
    metadata_updates,
    framework_errors_are_coded
);
