//! E-licences end to end over HTTP on both stores: a licence type, issue by the issuing
//! organisation's officer, the holder's list, the signed file, offline verification
//! (`govhub licence verify` with only the root certificate), OpenSSL on the seal
//! certificate and the signature, suspension and revocation on the verify page and in
//! the status list, a tampered file, a wrong check character, the VC export.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use chrono::{Duration, Utc};
use govhub_core::clock::ManualClock;
use govhub_core::input::{NewUser, UserInput};
use govhub_core::service::Ctx;
use govhub_core::standards::Uscc;
use govhub_server::state::ServerConfig;
use govhub_testkit::{backend_tests, spawn_app_with, Backend, TestApp};
use serde_json::{json, Value};
use std::process::Command;
use std::sync::Arc;

const HOLDER: &str = "91350100M000100Y43";

async fn text(app: &TestApp, path: &str, token: Option<&str>) -> (u16, String) {
    let mut r = app.client.get(app.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn verify_cli(file: &std::path::Path, root: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_govhub"))
        .args(["licence", "verify"])
        .arg(file)
        .arg("--root")
        .arg(root)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn verify_cli_online(file: &std::path::Path, root: &std::path::Path, url: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_govhub"))
        .args(["licence", "verify"])
        .arg(file)
        .arg("--root")
        .arg(root)
        .args(["--online", url.trim_end_matches('/')])
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn openssl_available() -> bool {
    Command::new("openssl").arg("version").output().map(|o| o.status.success()).unwrap_or(false)
}

fn openssl(args: &[&str], dir: &std::path::Path) -> bool {
    Command::new("openssl").args(args).current_dir(dir).output().map(|o| o.status.success()).unwrap_or(false)
}

fn gmssl_available() -> bool {
    let ok = Command::new("python3").args(["-c", "import gmssl"]).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED: Python gmssl is not installed (pip install gmssl); the gmssl check of a licence NOT made");
    }
    ok
}

/// `gmssl.sm2.CryptSM2.verify_with_sm3` (default ID 1234567812345678): "OK" or "FAIL".
fn gmssl_verify(public_xy_hex: &str, sig_raw_hex: &str, message: &[u8]) -> String {
    const SCRIPT: &str = "import sys, binascii\nfrom gmssl import sm2\n\
        c = sm2.CryptSM2(private_key=None, public_key=sys.argv[1])\n\
        print('OK' if c.verify_with_sm3(sys.argv[2], binascii.a2b_hex(sys.argv[3])) else 'FAIL')\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .args([public_xy_hex, sig_raw_hex, &hex::encode(message)])
        .output()
        .unwrap();
    assert!(out.status.success(), "gmssl: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An account for the holder `subject`, named after its role (`citizen` or `enterprise`).
async fn holder_account(app: &TestApp, username: &str, password: &str, name: &str, subject: &str) {
    let input = UserInput {
        username: username.into(),
        password: password.into(),
        role: username.into(),
        org: None,
        display_name: Some(name.into()),
        subject_id: Some(subject.into()),
    };
    app.hub
        .create_user(&govhub_core::authz::Principal::system(), NewUser::try_from(input).unwrap(), &Ctx::default())
        .await
        .unwrap();
}

async fn licence_lifecycle(app: TestApp) {
    let admin = app.admin_token().await;
    let scjgj_uscc = Uscc::compose('1', '1', "320400", "01416057").unwrap();
    let body = json!({"code": "cz-scjgj", "name": "常州市市场监督管理局", "uscc": scjgj_uscc.as_str()});
    assert_eq!(app.post("/api/v1/orgs", &admin, &body).await.0, 201);
    assert_eq!(app.post("/api/v1/orgs", &admin, &json!({"code": "cz-gaj", "name": "常州市公安局"})).await.0, 201);
    app.create_user("scjgj-officer", "officer-pass-1", "data-officer", Some("cz-scjgj")).await;
    app.create_user("gaj-officer", "officer-pass-1", "data-officer", Some("cz-gaj")).await;
    holder_account(&app, "enterprise", "enterprise-pass-1", "常州龙城科技有限公司", HOLDER).await;
    let officer = app.token("scjgj-officer", "officer-pass-1").await;
    let gaj = app.token("gaj-officer", "officer-pass-1").await;
    let holder = app.token("enterprise", "enterprise-pass-1").await;

    // A licence type.
    let schema = json!({"fields": [
        {"name": "zczb", "title": "注册资本（万元）", "type": "integer", "constraints": {"required": true}},
        {"name": "jyfw", "title": "经营范围", "constraints": {"required": true}},
        {"name": "fddbr", "title": "法定代表人"}
    ]});
    let (s, t) = app
        .post(
            "/api/v1/licence-types",
            &officer,
            &json!({"name": "营业执照", "holder_kind": "organisation", "schema": schema}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let type_code = t["code"].as_str().unwrap().to_string();
    assert_eq!(type_code, format!("{}001", scjgj_uscc.as_str()));
    assert_eq!(
        app.post(
            "/api/v1/licence-types",
            &gaj,
            &json!({"name": "x", "authority": "cz-scjgj", "holder_kind": "person", "schema": schema})
        )
        .await
        .0,
        403
    );
    let (s, list) = app.get("/api/v1/licence-types", &holder).await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Issue.
    let issue = |fields: Value| {
        json!({"type": type_code, "holder_code": HOLDER, "holder_name": "常州龙城科技有限公司", "fields": fields,
               "valid_from": "2026-01-01", "valid_until": "2046-12-31"})
    };
    let (s, e) = app.post("/api/v1/licences", &officer, &issue(json!({"zczb": "多"}))).await;
    assert_eq!((s, e["code"].as_str()), (422, Some("invalid_licence")), "{e}");
    let mut unknown = issue(json!({"zczb": 100, "jyfw": "软件开发"}));
    unknown["type"] = json!(format!("{}999", scjgj_uscc.as_str()));
    let (s, e) = app.post("/api/v1/licences", &officer, &unknown).await;
    assert_eq!((s, e["code"].as_str()), (422, Some("unknown_licence_type")));
    let mut foreign = issue(json!({"zczb": 100, "jyfw": "软件开发"}));
    foreign["issuer"] = json!("cz-scjgj");
    assert_eq!(app.post("/api/v1/licences", &gaj, &foreign).await.0, 403);
    let (s, e) = app.post("/api/v1/licences", &gaj, &issue(json!({"zczb": 100, "jyfw": "软件开发"}))).await;
    assert_eq!((s, e["code"].as_str()), (422, Some("issuer_without_uscc")));
    let (s, l) =
        app.post("/api/v1/licences", &officer, &issue(json!({"zczb": 100, "jyfw": "软件开发", "fddbr": "张三"}))).await;
    assert_eq!(s, 201, "{l}");
    let id = l["id"].as_str().unwrap().to_string();
    let parsed: govhub_core::licence_id::LicenceId = id.parse().unwrap();
    assert_eq!(parsed.issuer_code(), scjgj_uscc.as_str());
    assert_eq!(l["status"], "active");

    // The holder sees it; another department does not.
    let (s, mine) = app.get(&format!("/api/v1/licences?holder={HOLDER}"), &holder).await;
    assert_eq!(s, 200);
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["id"], id.as_str());
    // Another department's officer sees only what their own organisation issued.
    let (s, none) = app.get(&format!("/api/v1/licences?holder={HOLDER}"), &gaj).await;
    assert_eq!((s, none.as_array().map(Vec::len)), (200, Some(0)));
    assert_eq!(app.get(&format!("/api/v1/licences/{id}"), &gaj).await.0, 403);
    assert_eq!(app.get(&format!("/api/v1/licences?holder={HOLDER}"), &officer).await.1.as_array().unwrap().len(), 1);

    // The file and the root; offline verification.
    let dir = tempfile::tempdir().unwrap();
    let (s, root_pem) = text(&app, "/api/v1/pki/root.pem", None).await;
    assert_eq!(s, 200);
    let root = dir.path().join("root.pem");
    std::fs::write(&root, &root_pem).unwrap();
    let (s, file) = text(&app, &format!("/api/v1/licences/{id}/file"), Some(&holder)).await;
    assert_eq!(s, 200);
    let path = dir.path().join("licence.json");
    std::fs::write(&path, &file).unwrap();
    let (code, out) = verify_cli(&path, &root);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("result: valid"), "{out}");

    // Bad inputs: each its own result, exit 1, never a crash.
    let f: Value = serde_json::from_str(&file).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let doc = b64.decode(f["document"].as_str().unwrap()).unwrap();
    let tampered_doc = String::from_utf8(doc.clone()).unwrap().replace("软件开发", "软件开发、金融");
    let mut tampered = f.clone();
    tampered["document"] = json!(b64.encode(tampered_doc));
    let cases = [
        ("tampered", serde_json::to_string(&tampered).unwrap()),
        ("truncated", file[..file.len() / 2].to_string()),
        ("bad-check-character", {
            let last = id.chars().last().unwrap();
            let wrong = if last == 'A' { 'B' } else { 'A' };
            file.replace(&id, &format!("{}{wrong}", &id[..id.len() - 1]))
        }),
        ("malformed", {
            let mut m = f.clone();
            let mut sig = b64.decode(f["signature"].as_str().unwrap()).unwrap();
            sig.truncate(sig.len() - 3);
            m["signature"] = json!(b64.encode(sig));
            serde_json::to_string(&m).unwrap()
        }),
        ("unknown-type", file.replace("govhub-licence-file/1", "other-licence-file/9")),
    ];
    for (expected, content) in cases {
        let p = dir.path().join(format!("{expected}.json"));
        std::fs::write(&p, content).unwrap();
        let (code, out) = verify_cli(&p, &root);
        assert_eq!(code, 1, "{expected}: {out}");
        assert!(out.contains(&format!("result: {expected}")), "{expected}: {out}");
    }
    // Another platform's root: wrong key.
    let other_key = govhub_crypto::sm2keys::Sm2PrivateKey::generate().unwrap();
    let other = govhub_core::licence_service::SealAuthority::create_root(&other_key, chrono::Utc::now()).unwrap();
    let other_root = dir.path().join("other-root.pem");
    std::fs::write(&other_root, other.to_pem().unwrap()).unwrap();
    let (code, out) = verify_cli(&path, &other_root);
    assert_eq!(code, 1);
    assert!(out.contains("result: wrong-key"), "{out}");

    // OpenSSL: the seal certificate chains to the root; the signature verifies; one
    // flipped byte fails both.
    if openssl_available() {
        let (s, org_pem) = text(&app, "/api/v1/orgs/cz-scjgj/certificate.pem", None).await;
        assert_eq!(s, 200);
        std::fs::write(dir.path().join("org.pem"), &org_pem).unwrap();
        let d = dir.path();
        assert!(openssl(&["verify", "-vfyopt", "distid:1234567812345678", "-CAfile", "root.pem", "org.pem"], d));
        let sig_der = b64.decode(f["signature"].as_str().unwrap()).unwrap();
        let ses = govhub_crypto::eseal::SesSignature::from_der(&sig_der).unwrap();
        use der::Encode;
        std::fs::write(d.join("tbs.der"), ses.to_sign.to_der().unwrap()).unwrap();
        std::fs::write(d.join("sig.der"), ses.signature.as_bytes().unwrap()).unwrap();
        let cert = govhub_crypto::pki::Certificate::from_der(ses.cert.as_bytes()).unwrap();
        std::fs::write(d.join("signer.pub.pem"), cert.public_key().unwrap().to_pem().unwrap()).unwrap();
        let dgst = [
            "dgst",
            "-sm3",
            "-sigopt",
            "distid:1234567812345678",
            "-verify",
            "signer.pub.pem",
            "-signature",
            "sig.der",
            "tbs.der",
        ];
        assert!(openssl(&dgst, d), "openssl verifies the licence signature");
        let mut flipped = ses.to_sign.to_der().unwrap();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x01;
        std::fs::write(d.join("tbs.der"), flipped).unwrap();
        assert!(!openssl(&dgst, d), "one flipped byte fails");
        let mut cert_der = cert.to_der().to_vec();
        let mid = cert_der.len() / 2;
        cert_der[mid] ^= 0x01;
        std::fs::write(d.join("bad.der"), cert_der).unwrap();
        let converted = openssl(&["x509", "-inform", "DER", "-in", "bad.der", "-out", "bad.pem"], d);
        assert!(
            !converted
                || !openssl(&["verify", "-vfyopt", "distid:1234567812345678", "-CAfile", "root.pem", "bad.pem"], d)
        );
    } else {
        eprintln!("openssl not found: the OpenSSL half of this test was SKIPPED");
    }

    // Python gmssl, an independent SM2 implementation: the licence signature over
    // TBS_Sign verifies under the seal certificate's key; one flipped byte fails.
    if gmssl_available() {
        let sig_der = b64.decode(f["signature"].as_str().unwrap()).unwrap();
        let ses = govhub_crypto::eseal::SesSignature::from_der(&sig_der).unwrap();
        use der::Encode;
        let tbs = ses.to_sign.to_der().unwrap();
        let sig = govhub_crypto::sm2keys::Sm2Signature::from_der(ses.signature.as_bytes().unwrap()).unwrap();
        let cert = govhub_crypto::pki::Certificate::from_der(ses.cert.as_bytes()).unwrap();
        let public = hex::encode(&cert.public_key().unwrap().to_sec1_uncompressed()[1..]);
        let raw = hex::encode(sig.to_raw());
        assert_eq!(gmssl_verify(&public, &raw, &tbs), "OK", "gmssl verifies the licence signature");
        let mut flipped = tbs.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x01;
        assert_eq!(gmssl_verify(&public, &raw, &flipped), "FAIL", "one flipped byte fails in gmssl");
    }

    // The public verify page, suspension, revocation.
    let (s, page) = text(&app, &format!("/verify/{id}"), None).await;
    assert_eq!(s, 200);
    assert!(
        page.contains("badge-green") && page.contains("常州****有限公司") && !page.contains("常州龙城科技有限公司"),
        "{page}"
    );
    assert!(page.contains("常州市市场监督管理局"));
    // The English switch sets a cookie and comes back.
    assert_eq!(text(&app, &format!("/verify/{id}?lang=en"), None).await.0, 303);
    let (s, en) = text(&app, &format!("/verify/{id}"), None).await;
    assert_eq!(s, 200);
    assert!(en.contains("E-licence verification") && en.contains("Valid"), "{en}");
    assert_eq!(text(&app, &format!("/verify/{id}?lang=zh"), None).await.0, 303);
    let r = app.client.get(app.url(&format!("/verify/{id}/qr.png"))).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(&r.bytes().await.unwrap()[..4], b"\x89PNG");
    let (s, svg) = text(&app, &format!("/verify/{id}/qr.svg"), None).await;
    assert!(s == 200 && svg.contains("<svg"));

    let status = |st: &str| json!({"status": st, "reason": "未按时年报"});
    assert_eq!(app.post(&format!("/api/v1/licences/{id}/status"), &holder, &status("revoked")).await.0, 403);
    let (s, l) = app.post(&format!("/api/v1/licences/{id}/status"), &officer, &status("suspended")).await;
    assert_eq!((s, l["status"].as_str()), (200, Some("suspended")), "{l}");
    let (_, page) = text(&app, &format!("/verify/{id}"), None).await;
    assert!(page.contains("已暂停") && page.contains("未按时年报"), "{page}");

    // The VC and the status lists.
    let (s, vc) = app.get(&format!("/api/v1/licences/{id}/credential"), &holder).await;
    assert_eq!(s, 200);
    assert_eq!(vc["type"][0], "VerifiableCredential");
    assert_eq!(vc["proof"]["cryptosuite"], "govhub-sm2-sm3-2026");
    let entries = vc["credentialStatus"].as_array().unwrap();
    let suspension = entries.iter().find(|e| e["statusPurpose"] == "suspension").unwrap();
    let index: i64 = suspension["statusListIndex"].as_str().unwrap().parse().unwrap();
    let list_url = suspension["statusListCredential"].as_str().unwrap();
    let list_path = &list_url[list_url.find("/api/").unwrap()..];
    let (s, list) = app.get(list_path, &holder).await;
    assert_eq!(s, 200);
    let encoded = list["credentialSubject"]["encodedList"].as_str().unwrap();
    assert_eq!(govhub_core::licence::status_bit(encoded, index), Some(true));
    // The proof verifies under the seal certificate.
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&vc["proof"]["proofValue"].as_str().unwrap()[1..])
        .unwrap();
    let org_cert =
        govhub_crypto::pki::Certificate::from_pem(&text(&app, "/api/v1/orgs/cz-scjgj/certificate.pem", None).await.1)
            .unwrap();
    govhub_crypto::signing::verify(&org_cert.public_key().unwrap(), &govhub_core::licence::proof_input(&vc), &sig)
        .unwrap();

    let (s, _) = app.post(&format!("/api/v1/licences/{id}/status"), &officer, &status("active")).await;
    assert_eq!(s, 200);
    let (s, _) = app.post(&format!("/api/v1/licences/{id}/status"), &officer, &status("revoked")).await;
    assert_eq!(s, 200);
    let (_, page) = text(&app, &format!("/verify/{id}"), None).await;
    assert!(page.contains("已注销"), "{page}");
    let (s, e) = app.post(&format!("/api/v1/licences/{id}/status"), &officer, &status("active")).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("licence_revoked")));
    let (_, list) = app.get(&list_path.replace("suspension", "revocation"), &holder).await;
    assert_eq!(
        govhub_core::licence::status_bit(list["credentialSubject"]["encodedList"].as_str().unwrap(), index),
        Some(true)
    );

    // A wrong check character is its own error, on the API and the page.
    let last = id.chars().last().unwrap();
    let wrong = format!("{}{}", &id[..id.len() - 1], if last == 'A' { 'B' } else { 'A' });
    let (s, e) = app.get(&format!("/api/v1/licences/{wrong}"), &holder).await;
    assert_eq!((s, e["code"].as_str()), (422, Some("licence_id_check")));
    let (_, page) = text(&app, &format!("/verify/{wrong}"), None).await;
    assert!(page.contains("校验位错误"), "{page}");

    // Every status change was audited.
    let (_, audit) = app.get("/api/v1/audit?limit=200", &admin).await;
    let changes = audit.as_array().unwrap().iter().filter(|e| e["action"] == "licence.status").count();
    assert!(changes >= 4, "{audit}");
}

/// The signer certificate (DER) inside a licence file.
fn signer_cert(file: &str) -> Vec<u8> {
    let f: Value = serde_json::from_str(file).unwrap();
    let sig = base64::engine::general_purpose::STANDARD.decode(f["signature"].as_str().unwrap()).unwrap();
    let ses = govhub_crypto::eseal::SesSignature::from_der(&sig).unwrap();
    ses.cert.as_bytes().to_vec()
}

fn pem_der(pem: &str) -> Vec<u8> {
    govhub_crypto::pki::Certificate::from_pem(pem).unwrap().to_der().to_vec()
}

/// Seal key rotation and revocation over HTTP: after rotation old licences still verify
/// (online and offline) and new ones carry the new certificate; after revocation the
/// organisation issues nothing (`seal_key_revoked`) until rotated, and the verify page
/// reports `certificate-revoked` for what the revoked key sealed.
async fn seal_key_rotation_and_revocation(app: TestApp) {
    let admin = app.admin_token().await;
    let uscc = Uscc::compose('1', '1', "320400", "01416057").unwrap();
    let body = json!({"code": "cz-scjgj", "name": "常州市市场监督管理局", "uscc": uscc.as_str()});
    assert_eq!(app.post("/api/v1/orgs", &admin, &body).await.0, 201);
    app.create_user("scjgj-officer", "officer-pass-1", "data-officer", Some("cz-scjgj")).await;
    let officer = app.token("scjgj-officer", "officer-pass-1").await;
    let schema = json!({"fields": [{"name": "jyfw", "title": "经营范围", "constraints": {"required": true}}]});
    let (s, t) = app
        .post(
            "/api/v1/licence-types",
            &officer,
            &json!({"name": "营业执照", "holder_kind": "organisation", "schema": schema}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let body = json!({"type": t["code"], "holder_code": HOLDER, "holder_name": "常州龙城科技有限公司",
        "fields": {"jyfw": "软件开发"}, "valid_from": "2026-01-01", "valid_until": "2046-12-31"});
    let (a, o) = (&app, &officer);
    let issue = || async { a.post("/api/v1/licences", o, &body).await };
    let file_of = |id: String| async move { text(a, &format!("/api/v1/licences/{id}/file"), Some(o)).await.1 };

    let (s, l1) = issue().await;
    assert_eq!(s, 201, "{l1}");
    let id1 = l1["id"].as_str().unwrap().to_string();
    let file1 = file_of(id1.clone()).await;
    let first_cert = pem_der(&text(&app, "/api/v1/orgs/cz-scjgj/certificate.pem", None).await.1);
    assert_eq!(signer_cert(&file1), first_cert);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, text(&app, "/api/v1/pki/root.pem", None).await.1).unwrap();
    let path1 = dir.path().join("l1.json");
    std::fs::write(&path1, &file1).unwrap();

    // Only a platform admin rotates or revokes.
    assert_eq!(app.post("/api/v1/orgs/cz-scjgj/seal-key/rotate", &officer, &json!({})).await.0, 403);
    let revoke = json!({"reason": "私钥疑似泄露 / key suspected compromised"});
    assert_eq!(app.post("/api/v1/orgs/cz-scjgj/seal-key/revoke", &officer, &revoke).await.0, 403);
    let (s, e) = app.post("/api/v1/orgs/cz-nobody/seal-key/rotate", &admin, &json!({})).await;
    assert_eq!((s, e["code"].as_str()), (422, Some("unknown_org")), "{e}");

    // Rotation: a new certificate; the old licence still verifies online and offline.
    let (s, rotated) = app.post("/api/v1/orgs/cz-scjgj/seal-key/rotate", &admin, &json!({})).await;
    assert_eq!(s, 200, "{rotated}");
    let serial2 = rotated["serial"].as_str().unwrap().to_string();
    let second_cert = pem_der(&text(&app, "/api/v1/orgs/cz-scjgj/certificate.pem", None).await.1);
    assert_ne!(second_cert, first_cert);
    assert_eq!(pem_der(&text(&app, rotated["certificate_url"].as_str().unwrap(), None).await.1), second_cert);
    let (code, out) = verify_cli(&path1, &root);
    assert_eq!(code, 0, "after rotation: {out}");
    let (_, page) = text(&app, &format!("/verify/{id1}"), None).await;
    assert!(page.contains("badge-green"), "after rotation: {page}");
    let (s, l2) = issue().await;
    assert_eq!(s, 201, "{l2}");
    let id2 = l2["id"].as_str().unwrap().to_string();
    let file2 = file_of(id2.clone()).await;
    assert_eq!(signer_cert(&file2), second_cert, "new licences use the new certificate");
    let path2 = dir.path().join("l2.json");
    std::fs::write(&path2, &file2).unwrap();
    assert_eq!(verify_cli(&path2, &root).0, 0);
    if openssl_available() {
        std::fs::write(dir.path().join("org2.pem"), text(&app, "/api/v1/orgs/cz-scjgj/certificate.pem", None).await.1)
            .unwrap();
        assert!(openssl(
            &["verify", "-vfyopt", "distid:1234567812345678", "-CAfile", "root.pem", "org2.pem"],
            dir.path()
        ));
    }

    // Revocation: a reason is required; then nothing more is issued.
    let (s, e) = app.post("/api/v1/orgs/cz-scjgj/seal-key/revoke", &admin, &json!({"reason": " "})).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("invalid_request")), "{e}");
    let (s, revoked) = app.post("/api/v1/orgs/cz-scjgj/seal-key/revoke", &admin, &revoke).await;
    assert_eq!(s, 200, "{revoked}");
    assert_eq!(revoked["serial"].as_str(), Some(serial2.as_str()));
    let (s, e) = issue().await;
    assert_eq!((s, e["code"].as_str()), (409, Some("seal_key_revoked")), "{e}");
    assert!(e["message_zh"].as_str().unwrap().contains("已吊销"), "{e}");
    // The verify page reports the revoked certificate for what it sealed, not for the
    // licence sealed by the retired (not revoked) first key.
    let (_, page) = text(&app, &format!("/verify/{id2}"), None).await;
    assert!(page.contains("印章证书已吊销"), "{page}");
    // It names the revoked certificate, links to it, and says when and why.
    assert!(page.contains(&serial2) && page.contains("私钥疑似泄露") && page.contains("签章证书吊销"), "{page}");
    let (_, page) = text(&app, &format!("/verify/{id1}"), None).await;
    assert!(page.contains("badge-green"), "{page}");
    // Offline, the file still verifies — it cannot know — and the CLI says so; asked
    // online it reports the revoked seal key and exits 1.
    let (code, out) = verify_cli(&path2, &root);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("revocation: NOT CHECKED"), "{out}");
    let (code, out) = verify_cli_online(&path2, &root, &app.url(""));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("result: certificate-revoked") && out.contains("印章密钥已被吊销"), "{out}");
    let (code, out) = verify_cli_online(&path1, &root, &app.url(""));
    assert_eq!(code, 0, "the retired key's licence is fine: {out}");
    assert!(out.contains("revocation: checked online"), "{out}");
    let (s, v) = app.get(&format!("/api/v1/licences/{id2}/verification"), "").await;
    assert_eq!((s, v["result"].as_str(), v["valid"].as_bool()), (200, Some("certificate-revoked"), Some(false)), "{v}");
    assert_eq!(v["seal_serial"].as_str(), Some(serial2.as_str()));
    assert!(v["seal_revoked_at"].is_string(), "{v}");
    // An unreachable server: the check could not be made.
    assert_eq!(verify_cli_online(&path1, &root, "http://127.0.0.1:9").0, 2);
    // The revoked certificate stays available by serial for verifiers.
    let (s, _) = text(&app, &format!("/api/v1/orgs/cz-scjgj/certificate.pem?serial={serial2}"), None).await;
    assert_eq!(s, 200);

    // Rotating again makes a new key and issuing resumes.
    let (s, rotated) = app.post("/api/v1/orgs/cz-scjgj/seal-key/rotate", &admin, &json!({})).await;
    assert_eq!(s, 200, "{rotated}");
    assert_ne!(rotated["serial"].as_str(), Some(serial2.as_str()));
    let (s, l3) = issue().await;
    assert_eq!(s, 201, "{l3}");

    // Audited: two rotations and one revocation succeeded, the officer's attempts denied.
    let (_, audit) = app.get("/api/v1/audit?limit=500", &admin).await;
    let entries: Vec<&Value> = audit.as_array().unwrap().iter().filter(|e| e["action"] == "seal_key.manage").collect();
    assert!(entries.len() >= 5, "{entries:?}");
    assert!(entries.iter().any(|e| e["outcome"] == "denied"), "{entries:?}");

    // Documented in the OpenAPI.
    let (_, api) = app.get("/api/v1/openapi.json", &admin).await;
    assert!(api["paths"]["/api/v1/orgs/{code}/seal-key/rotate"]["post"].is_object());
    assert!(api["paths"]["/api/v1/orgs/{code}/seal-key/revoke"]["post"].is_object());
}

/// A person's ID number with its check character.
fn idn(body: &str) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let s: u32 = body.bytes().zip(W).map(|(b, w)| u32::from(b - b'0') * w).sum();
    format!("{body}{}", char::from(b"10X98765432"[(s % 11) as usize]))
}

struct LicenceCity {
    admin: String,
    officer: String,
    approver: String,
    dev: String,
    citizen: String,
    holder: String,
    /// 居住证 (person) and a second type of the same authority.
    jzz: String,
    other: String,
}

/// 公安局 defines 居住证 and 户口迁移证明, issues them; 人社局 has a developer; a citizen.
async fn licence_city(app: &TestApp) -> LicenceCity {
    let admin = app.admin_token().await;
    let gaj_uscc = Uscc::compose('1', '1', "320400", "01416049").unwrap();
    let body = json!({"code": "cz-gaj", "name": "常州市公安局", "uscc": gaj_uscc.as_str()});
    assert_eq!(app.post("/api/v1/orgs", &admin, &body).await.0, 201);
    assert_eq!(app.post("/api/v1/orgs", &admin, &json!({"code": "cz-rsj", "name": "常州市人社局"})).await.0, 201);
    app.create_user("gaj-officer", "officer-pass-1", "data-officer", Some("cz-gaj")).await;
    app.create_user("gaj-approver", "approver-pass-1", "approver", Some("cz-gaj")).await;
    app.create_user("rsj-dev", "developer-pass-1", "app-developer", Some("cz-rsj")).await;
    let holder = idn("32040219910418286");
    holder_account(app, "citizen", "citizen-pass-1", "王晓梅", &holder).await;
    let officer = app.token("gaj-officer", "officer-pass-1").await;
    let mut codes = Vec::new();
    for (name, schema) in [
        (
            "居住证",
            json!({"fields": [
                {"name": "xb", "title": "性别", "constraints": {"required": true, "enum": ["男", "女"]}},
                {"name": "jzdz", "title": "居住地址", "constraints": {"required": true}}]}),
        ),
        ("户口迁移证明", json!({"fields": [{"name": "qcd", "title": "迁出地"}]})),
    ] {
        let body = json!({"name": name, "holder_kind": "person", "schema": schema});
        let (s, t) = app.post("/api/v1/licence-types", &officer, &body).await;
        assert_eq!(s, 201, "{t}");
        codes.push(t["code"].as_str().unwrap().to_string());
    }
    let issue = |code: &str, holder: &str, fields: Value| {
        json!({"type": code, "holder_code": holder, "holder_name": "王晓梅", "fields": fields,
               "valid_from": "2026-01-01", "valid_until": "2036-12-31"})
    };
    let f = json!({"xb": "女", "jzdz": "常州市新北区太湖东路9号4幢1102室"});
    for (code, who, fields) in [
        (&codes[0], holder.clone(), f.clone()),
        (&codes[0], idn("32040219800101001"), f.clone()),
        (&codes[1], holder.clone(), json!({"qcd": "南京市"})),
    ] {
        let (s, l) = app.post("/api/v1/licences", &officer, &issue(code, &who, fields)).await;
        assert_eq!(s, 201, "{l}");
    }
    LicenceCity {
        admin,
        officer,
        approver: app.token("gaj-approver", "approver-pass-1").await,
        dev: app.token("rsj-dev", "developer-pass-1").await,
        citizen: app.token("citizen", "citizen-pass-1").await,
        holder,
        jzz: codes[0].clone(),
        other: codes[1].clone(),
    }
}

async fn app_token(app: &TestApp, dev: &str, name: &str) -> (i64, String) {
    let (s, a) = app.post("/api/v1/apps", dev, &json!({"name": name, "org": "cz-rsj"})).await;
    assert_eq!(s, 201, "{a}");
    let id = a["id"].as_i64().unwrap();
    let (s, t) = app.post(&format!("/api/v1/apps/{id}/tokens"), dev, &json!({})).await;
    assert_eq!(s, 201, "{t}");
    (id, t["token"].as_str().unwrap().to_string())
}

fn assert_code(r: &(u16, Value), status: u16, code: &str) {
    assert_eq!((r.0, r.1["code"].as_str()), (status, Some(code)), "{}", r.1);
    assert!(r.1["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.1);
    assert!(r.1["message_zh"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.1);
}

/// Other departments reuse a holder's licences only with a grant on the licence type's
/// catalog entry: requested, approved (narrowed) by the authority's approver, masked,
/// audited with the holder as subject; no grant, another type, a narrow grant for the
/// signed file, and a revoked grant are refused (403, coded, audited).
async fn licences_shared_by_grant(app: TestApp) {
    let c = licence_city(&app).await;
    let lic = format!("lic-{}", c.jzz.to_ascii_lowercase());
    // The type's catalog entry: provided by the authority, shared on approval.
    let (s, d) = app.get(&format!("/api/v1/datasets/{lic}"), &c.officer).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!((d["provider"].as_str(), d["sharing_class"].as_str()), (Some("cz-gaj"), Some("有条件共享")), "{d}");
    let names: Vec<&str> =
        d["schema"]["fields"].as_array().unwrap().iter().filter_map(|f| f["name"].as_str()).collect();
    for n in ["licence_id", "holder_code", "holder_name", "valid_until", "status", "xb", "jzdz"] {
        assert!(names.contains(&n), "{n}: {names:?}");
    }
    // It is no ordinary dataset: no hand-made entries, no deliveries, no record reads.
    let body = json!({"code": "lic-x", "name": "x", "provider": "cz-gaj", "sharing_class": "有条件共享",
        "open_class": "不予开放", "grade": "一般", "update_cycle": "daily",
        "schema": {"fields": [{"name": "a"}]}});
    assert_code(&app.post("/api/v1/datasets", &c.officer, &body).await, 409, "licence_dataset");
    let r = app
        .client
        .post(app.url(&format!("/api/v1/datasets/{lic}/deliveries")))
        .bearer_auth(&c.officer)
        .header("content-type", "text/csv")
        .body("licence_id\nx\n")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_code(&(status, r.json().await.unwrap()), 409, "licence_dataset");

    let (s, e) =
        app.put(&format!("/api/v1/datasets/{lic}/schema"), &c.officer, &json!({"fields": [{"name": "a"}]})).await;
    assert_code(&(s, e), 409, "licence_dataset");
    // Every new endpoint is in the OpenAPI document.
    let (_, api) = app.get("/api/v1/openapi.json", &c.admin).await;
    for path in [
        "/api/v1/share/licences",
        "/api/v1/share/licences/{id}",
        "/api/v1/share/licences/{id}/file",
        "/api/v1/licences/{id}/verification",
    ] {
        assert!(api["paths"][path]["get"].is_object(), "{path} not in the OpenAPI document");
    }

    let (app_id, tok) = app_token(&app, &c.dev, "社保待遇资格认证系统").await;
    let until = (Utc::now() + Duration::days(365)).date_naive().to_string();
    let list = format!("/api/v1/share/licences?holder={}&type={}", c.holder, c.jzz);
    // No grant: refused, coded, audited.
    assert_code(&app.get(&list, &tok).await, 403, "no_grant");
    assert_eq!(app.get(&list, &c.dev).await.0, 403, "a person's token is no app");
    assert_eq!(app.client.get(app.url(&list)).send().await.unwrap().status().as_u16(), 401);
    assert_code(&app.get(&format!("/api/v1/share/{lic}/records"), &tok).await, 409, "licence_dataset");

    // Request; the authority's approver grants fewer fields.
    let (s, r) = app
        .post(
            "/api/v1/access-requests",
            &c.dev,
            &json!({"app": app_id, "dataset": lic,
                "fields": ["licence_id", "holder_name", "holder_code", "valid_until", "status", "jzdz"],
                "purpose": "社保待遇资格认证：核验居住登记", "legal_basis": "《居住证暂行条例》第十二条",
                "valid_until": until}),
        )
        .await;
    assert_eq!((s, r["status"].as_str()), (201, Some("pending")), "{r}");
    let rid = r["id"].as_i64().unwrap();
    assert_eq!(app.get(&list, &tok).await.0, 403, "pending is not granted");
    let (s, r) = app
        .post(
            &format!("/api/v1/access-requests/{rid}/decision"),
            &c.approver,
            &json!({"approve": true, "fields": ["licence_id", "holder_name", "holder_code", "valid_until", "status"],
                "reason": "居住地址不属最小必要范围"}),
        )
        .await;
    assert_eq!((s, r["status"].as_str()), (200, Some("granted")), "{r}");
    let grant = r["grant_id"].as_i64().unwrap();

    // Granted: the holder's licence of this type, granted fields only, masked.
    let (s, v) = app.get(&list, &tok).await;
    assert_eq!(s, 200, "{v}");
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 1, "one 居住证 of this holder: {v}");
    let l = items[0].as_object().unwrap();
    let mut keys: Vec<&str> = l.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["holder_code", "holder_name", "licence_id", "status", "valid_until"], "{v}");
    assert_eq!(l["holder_code"].as_str().unwrap(), format!("{}********{}", &c.holder[..6], &c.holder[14..]), "{v}");
    let name = l["holder_name"].as_str().unwrap();
    assert!(name.starts_with('王') && name.contains('*') && !name.contains("晓梅"), "{v}");
    assert_eq!(l["status"], "active");
    assert!(!v.to_string().contains("太湖东路") && !v.to_string().contains(&c.holder), "{v}");
    let id = l["licence_id"].as_str().unwrap().to_string();
    let (s, one) = app.get(&format!("/api/v1/share/licences/{id}"), &tok).await;
    assert_eq!((s, &one), (200, &items[0]), "{one}");
    let (s, narrow) = app.get(&format!("/api/v1/share/licences/{id}?fields=status"), &tok).await;
    assert_eq!((s, narrow), (200, json!({"status": "active"})));
    assert_code(&app.get(&format!("/api/v1/share/licences/{id}?fields=jzdz"), &tok).await, 400, "invalid_request");
    assert_code(&app.get(&format!("/api/v1/share/licences?holder={}", c.holder), &tok).await, 400, "invalid_request");
    // Another type: no grant.
    assert_code(
        &app.get(&format!("/api/v1/share/licences?holder={}&type={}", c.holder, c.other), &tok).await,
        403,
        "no_grant",
    );
    let (_, mine) = app.get(&format!("/api/v1/licences?holder={}", c.holder), &c.citizen).await;
    let other_id = mine.as_array().unwrap().iter().find(|l| l["type"] == c.other.as_str()).unwrap()["id"].clone();
    let other_id = other_id.as_str().unwrap();
    assert_code(&app.get(&format!("/api/v1/share/licences/{other_id}"), &tok).await, 403, "no_grant");
    // The signed file holds every field in clear text: a narrow grant does not get it.
    assert_code(&app.get(&format!("/api/v1/share/licences/{id}/file"), &tok).await, 403, "grant_too_narrow");
    // The holder's own licence APIs stay closed to apps.
    assert_eq!(app.get(&format!("/api/v1/licences/{id}"), &tok).await.0, 403);

    // The citizen sees who read her licence, and why.
    let (s, reads) = app.get("/api/v1/audit/about-me", &c.citizen).await;
    assert_eq!(s, 200, "{reads}");
    let reads = reads.as_array().unwrap();
    let licence_reads: Vec<&Value> = reads.iter().filter(|a| a["target"] == lic.as_str()).collect();
    assert!(licence_reads.len() >= 3, "{reads:?}");
    assert!(
        licence_reads.iter().all(|a| a["org"] == "cz-rsj"
            && a["app"] == "社保待遇资格认证系统"
            && a["purpose"] == "社保待遇资格认证：核验居住登记"),
        "{licence_reads:?}"
    );
    // The denials are on record too.
    let (_, audit) = app.get("/api/v1/audit?action=share.read&limit=500", &c.admin).await;
    let denied = audit.as_array().unwrap().iter().filter(|a| a["outcome"] == "denied").count();
    assert!(denied >= 5, "no grant ×3 (list, other type ×2), narrow grant: {audit}");

    // A grant on everything in clear text gets the signed file, which verifies offline.
    let (full_id, full_tok) = app_token(&app, &c.dev, "证照核验系统").await;
    let all: Vec<&str> = names.clone();
    let (s, r) = app
        .post(
            "/api/v1/access-requests",
            &c.dev,
            &json!({"app": full_id, "dataset": lic, "fields": all, "clear_fields": ["holder_name", "holder_code"],
                "purpose": "窗口收件免交居住证复印件", "legal_basis": "《居住证暂行条例》", "valid_until": until}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let rid = r["id"].as_i64().unwrap();
    let (s, r) = app
        .post(
            &format!("/api/v1/access-requests/{rid}/decision"),
            &c.approver,
            &json!({"approve": true, "reason": "同意"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let (s, v) = app.get(&list.replace(&c.jzz, &c.jzz.to_ascii_lowercase()), &full_tok).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v[0]["holder_code"].as_str(), v[0]["jzdz"].as_str()),
        (Some(c.holder.as_str()), Some("常州市新北区太湖东路9号4幢1102室"))
    );
    let (s, file) = text(&app, &format!("/api/v1/share/licences/{id}/file"), Some(&full_tok)).await;
    assert_eq!(s, 200, "{file}");
    let dir = tempfile::tempdir().unwrap();
    let (_, root) = text(&app, "/api/v1/pki/root.pem", None).await;
    std::fs::write(dir.path().join("root.pem"), root).unwrap();
    std::fs::write(dir.path().join("l.json"), file).unwrap();
    let (code, out) = verify_cli(&dir.path().join("l.json"), &dir.path().join("root.pem"));
    assert_eq!(code, 0, "{out}");

    // Revoked: refused at once.
    let r =
        app.client.delete(app.url(&format!("/api/v1/grants/{grant}"))).bearer_auth(&c.approver).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_code(&app.get(&list, &tok).await, 403, "no_grant");
    assert_code(&app.get(&format!("/api/v1/share/licences/{id}"), &tok).await, 403, "no_grant");
    assert_eq!(app.get(&list, &full_tok).await.0, 200, "another app's grant is untouched");
}

/// A grant on a licence type lapses after its end date: refused the next day.
async fn licence_grant_lapses(backend: Backend) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = spawn_app_with(backend, clock.clone(), ServerConfig::default()).await;
    let c = licence_city(&app).await;
    let lic = format!("lic-{}", c.jzz.to_ascii_lowercase());
    let (app_id, tok) = app_token(&app, &c.dev, "短期应用").await;
    let today = (govhub_core::clock::Clock::now(clock.as_ref()) + Duration::hours(8)).date_naive();
    let (s, r) = app
        .post(
            "/api/v1/access-requests",
            &c.dev,
            &json!({"app": app_id, "dataset": lic, "fields": ["licence_id", "status"], "purpose": "一次性核验",
                "legal_basis": "依申请", "valid_until": today.to_string()}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let rid = r["id"].as_i64().unwrap();
    let decision = json!({"approve": true, "reason": "同意"});
    assert_eq!(app.post(&format!("/api/v1/access-requests/{rid}/decision"), &c.approver, &decision).await.0, 200);
    let list = format!("/api/v1/share/licences?holder={}&type={}", c.holder, c.jzz);
    assert_eq!(app.get(&list, &tok).await.0, 200);
    clock.advance(Duration::days(1));
    assert_code(&app.get(&list, &tok).await, 403, "no_grant");
}

backend_tests!(licence_lifecycle, seal_key_rotation_and_revocation, licences_shared_by_grant);

govhub_testkit::per_backend_tests!(licence_grant_lapses);
