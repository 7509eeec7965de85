//! UI tests of the sharing pages: the approver's inbox and decision form (with CSRF),
//! apps and their tokens, the request form, the consumers section of a dataset page
//! with its revoke form, and the overdue badge under an injected clock.

use super::*;
use govhub_core::sharing::{AccessRequest, AccessRequestInput, App, AppInput, RequestStatus};

impl World {
    async fn sharing_world(&self) {
        let sys = Principal::system();
        let org = NewOrg {
            code: OrgCode::parse("cz-rsj").unwrap(),
            name: "常州市人力资源和社会保障局".into(),
            kind: OrgKind::Department,
            parent: Some(OrgCode::parse("cz").unwrap()),
            admin_code: None,
            uscc: None,
        };
        self.state.hub.create_org(&sys, org, &Ctx::default()).await.unwrap();
        self.add_user("gaj-approver", Role::Approver, "cz-gaj").await;
        self.add_user("dsj-approver", Role::Approver, "cz-dsj").await;
        self.add_user("rsj-dev", Role::AppDeveloper, "cz-rsj").await;
    }

    async fn principal(&self, username: &str) -> Principal {
        let u =
            self.state.hub.store().get_user_by_username(&Username::parse(username).unwrap()).await.unwrap().unwrap();
        Principal::from_user(&u)
    }

    async fn rsj_app(&self) -> App {
        let dev = self.principal("rsj-dev").await;
        let input = AppInput { name: "社保待遇资格认证系统".into(), org: "cz-rsj".into() };
        self.state.hub.create_app(&dev, input, &Ctx::default()).await.unwrap()
    }

    async fn hjrk_request(&self, app: &App) -> AccessRequest {
        let dev = self.principal("rsj-dev").await;
        let input = AccessRequestInput {
            app: app.id,
            dataset: "ga-hjrk".into(),
            fields: vec!["sfzh".into(), "xm".into(), "xb".into(), "csrq".into()],
            clear_fields: vec![],
            purpose: "养老保险待遇领取资格认证".into(),
            legal_basis: "《社会保险法》第七十三条".into(),
            valid_until: chrono::NaiveDate::from_ymd_opt(2027, 3, 1).unwrap(),
        };
        self.state.hub.request_access(&dev, input, &Ctx::default()).await.unwrap()
    }
}

#[tokio::test]
async fn the_inbox_shows_a_pending_request_only_to_the_providers_approver() {
    let w = world().await;
    w.sharing_world().await;
    let app = w.rsj_app().await;
    let r = w.hjrk_request(&app).await;
    assert_eq!(r.status, RequestStatus::Pending);

    let jar = w.sign_in("gaj-approver").await;
    let home = w.get("/", &jar).await;
    assert!(home.body.contains("href=\"/sharing/inbox\""), "approvers get the inbox in the navigation");
    assert!(!home.body.contains("href=\"/sharing/apps\""));
    let inbox = w.get("/sharing/inbox", &jar).await;
    assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.body);
    assert!(inbox.body.contains(&format!("/sharing/requests/{}", r.id)));
    assert!(inbox.body.contains("社保待遇资格认证系统") && inbox.body.contains("常州市人力资源和社会保障局"));
    assert!(inbox.body.contains("户籍人口") && inbox.body.contains("养老保险待遇领取资格认证"));
    assert!(inbox.body.contains("《社会保险法》第七十三条") && inbox.body.contains("2027-03-01"));
    assert!(inbox.body.contains(&r.due_on.to_string()), "the deadline is shown");
    assert!(inbox.body.contains("敏感"), "sensitive fields are marked");
    assert!(!inbox.body.contains("overdue-badge"), "not overdue yet");

    // Another organisation's approver has nothing to decide, and cannot open it.
    let other = w.sign_in("dsj-approver").await;
    let theirs = w.get("/sharing/inbox", &other).await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert!(!theirs.body.contains("社保待遇资格认证系统"));
    let refused = w.get(&format!("/sharing/requests/{}", r.id), &other).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // The requesting developer sees the request on the app page, without a decision form.
    let dev = w.sign_in("rsj-dev").await;
    let page = w.get(&format!("/sharing/requests/{}", r.id), &dev).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.body.contains("/decision"));
    // Citizens are refused.
    let citizen = w.sign_in("citizen").await;
    assert_eq!(w.get("/sharing/inbox", &citizen).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn deciding_through_the_form_grants_the_narrowed_fields() {
    let w = world().await;
    w.sharing_world().await;
    let app = w.rsj_app().await;
    let r = w.hjrk_request(&app).await;
    let (jar, csrf) = w.sign_in_with_csrf("gaj-approver").await;
    let page = w.get(&format!("/sharing/requests/{}", r.id), &jar).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(&format!("action=\"/sharing/requests/{}/decision\"", r.id)));
    assert!(page.body.contains("name=\"fields\" value=\"csrq\" checked"));
    assert!(page.body.contains("max=\"2027-03-01\""));

    let post = w
        .post(
            &format!("/sharing/requests/{}/decision", r.id),
            &jar,
            &[
                ("csrf", &csrf),
                ("fields", "sfzh"),
                ("fields", "xb"),
                ("valid_until", "2026-12-31"),
                ("reason", "按最小必要原则提供身份核验所需字段"),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(post.status, StatusCode::SEE_OTHER, "{}", post.body);
    assert_eq!(post.header("location"), format!("/sharing/inbox?decided={}&outcome=granted", r.id));
    let decided = w.state.hub.store().get_access_request(r.id).await.unwrap().unwrap();
    assert_eq!(decided.status, RequestStatus::Granted);
    let g = w.state.hub.store().get_grant(decided.grant_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(g.fields, vec!["sfzh".to_string(), "xb".to_string()]);
    assert_eq!(g.valid_until.to_string(), "2026-12-31");
    assert_eq!(g.granted_by, "gaj-approver");

    let back = w.get(&post.header("location"), &jar).await;
    assert_eq!(back.status, StatusCode::OK);
    assert!(back.body.contains("id=\"outcome\"") && back.body.contains("已授权"));
    assert!(back.body.contains("按最小必要原则提供身份核验所需字段"), "listed among the decided");
    let shown = w.get(&format!("/sharing/requests/{}", r.id), &jar).await;
    assert!(shown.body.contains("data-field=\"sfzh\"") && !shown.body.contains("data-field=\"csrq\""));
    assert!(!shown.body.contains("/decision\""), "no form once decided");

    // Deciding twice is refused with a coded error page.
    let again = w
        .post(
            &format!("/sharing/requests/{}/decision", r.id),
            &jar,
            &[("csrf", &csrf), ("reason", "再次"), ("decision", "refuse")],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(again.body.contains("already_decided"));
}

#[tokio::test]
async fn a_forged_or_missing_csrf_token_is_refused() {
    let w = world().await;
    w.sharing_world().await;
    let app = w.rsj_app().await;
    let r = w.hjrk_request(&app).await;
    let (jar, csrf) = w.sign_in_with_csrf("gaj-approver").await;
    let forged = "0".repeat(64);
    for token in [forged.as_str(), ""] {
        let post = w
            .post(
                &format!("/sharing/requests/{}/decision", r.id),
                &jar,
                &[("csrf", token), ("reason", "同意"), ("decision", "approve")],
            )
            .await;
        assert_eq!(post.status, StatusCode::FORBIDDEN, "{}", post.body);
        assert!(post.body.contains("csrf_failed"));
    }
    let post = w.post(&format!("/sharing/requests/{}/decision", r.id), &jar, &[("reason", "同意")]).await;
    assert_eq!(post.status, StatusCode::FORBIDDEN);
    let still = w.state.hub.store().get_access_request(r.id).await.unwrap().unwrap();
    assert_eq!(still.status, RequestStatus::Pending);
    // The other forms check it too.
    let (dev, _) = w.sign_in_with_csrf("rsj-dev").await;
    let t = w.post(&format!("/sharing/apps/{}/tokens", app.id), &dev, &[("csrf", &csrf)]).await;
    assert_eq!(t.status, StatusCode::FORBIDDEN, "another session's token is not this one's");
    let a = w.post("/sharing/apps", &dev, &[("name", "x"), ("org", "cz-rsj")]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(w.state.hub.store().list_app_tokens(app.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn creating_an_app_and_a_token_shows_the_secret_once() {
    let w = world().await;
    w.sharing_world().await;
    let (jar, csrf) = w.sign_in_with_csrf("rsj-dev").await;
    let home = w.get("/", &jar).await;
    assert!(home.body.contains("href=\"/sharing/apps\"") && !home.body.contains("href=\"/sharing/inbox\""));
    let list = w.get("/sharing/apps", &jar).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(list.body.contains("action=\"/sharing/apps\""));

    let created =
        w.post("/sharing/apps", &jar, &[("csrf", &csrf), ("name", "就业补贴审核系统"), ("org", "cz-rsj")]).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let location = created.header("location");
    assert!(location.starts_with("/sharing/apps/") && location.ends_with("?created=1"), "{location}");
    let id: i64 = location["/sharing/apps/".len()..location.len() - "?created=1".len()].parse().unwrap();
    let list = w.get("/sharing/apps", &jar).await;
    assert!(list.body.contains("就业补贴审核系统"));

    let issued = w.post(&format!("/sharing/apps/{id}/tokens"), &jar, &[("csrf", &csrf)]).await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
    assert_eq!(issued.header("cache-control"), "no-store");
    let marker = "<code id=\"token-secret\">";
    let start = issued.body.find(marker).unwrap() + marker.len();
    let secret: String = issued.body[start..].chars().take_while(|c| *c != '<').collect();
    assert!(secret.starts_with("gha_") && secret.len() > 40, "{secret}");
    assert!(issued.body.contains("只显示这一次"));
    // It works as the app's credential.
    let p = w.state.hub.authenticate_app(&secret).await.unwrap();
    assert_eq!(p.app, Some(id));

    let later = w.get(&format!("/sharing/apps/{id}"), &jar).await;
    assert_eq!(later.status, StatusCode::OK);
    assert!(!later.body.contains(&secret), "the secret is never shown again");
    assert!(!later.body.contains("token-secret"));
    let hint: String = secret.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    assert!(later.body.contains(&format!("gha_…{hint}")));

    // Revoke it: the list says so and the token stops working.
    let tokens = w.state.hub.store().list_app_tokens(id).await.unwrap();
    let revoke = w.post(&format!("/sharing/apps/{id}/tokens/{}/revoke", tokens[0].id), &jar, &[("csrf", &csrf)]).await;
    assert_eq!(revoke.status, StatusCode::SEE_OTHER, "{}", revoke.body);
    assert!(w.state.hub.authenticate_app(&secret).await.is_err());
    let after = w.get(&revoke.header("location"), &jar).await;
    assert!(after.body.contains("已撤销") || after.body.contains("令牌已吊销"));

    // The request form: pick a dataset, tick fields, submit.
    let pick = w.get(&format!("/sharing/apps/{id}?dataset=ga-hjrk"), &jar).await;
    assert_eq!(pick.status, StatusCode::OK, "{}", pick.body);
    assert!(pick.body.contains("name=\"fields\" value=\"xm\""));
    assert!(pick.body.contains("name=\"clear_fields\" value=\"sfzh\""));
    let unconditional = w.get(&format!("/sharing/apps/{id}?dataset=ga-zzrk"), &jar).await;
    assert!(unconditional.body.contains("无条件共享"));
    let filed = w
        .post(
            &format!("/sharing/apps/{id}/requests"),
            &jar,
            &[
                ("csrf", &csrf),
                ("dataset", "ga-hjrk"),
                ("fields", "sfzh"),
                ("fields", "xm"),
                ("purpose", "就业补贴发放前核验身份"),
                ("legal_basis", "《就业促进法》"),
                ("valid_until", "2026-12-31"),
            ],
        )
        .await;
    assert_eq!(filed.status, StatusCode::SEE_OTHER, "{}", filed.body);
    assert!(filed.header("location").contains("status=pending"));
    let shown = w.get(&filed.header("location"), &jar).await;
    assert!(shown.body.contains("id=\"requested\"") && shown.body.contains("待审批"));
}

#[tokio::test]
async fn revoking_from_the_dataset_page() {
    let w = world().await;
    w.sharing_world().await;
    let app = w.rsj_app().await;
    let r = w.hjrk_request(&app).await;
    let approver = w.principal("gaj-approver").await;
    let input = govhub_core::sharing::DecisionInput {
        approve: true,
        fields: None,
        clear_fields: None,
        valid_until: None,
        reason: "同意".into(),
    };
    let decided = w.state.hub.decide_access(&approver, r.id, input, &Ctx::default()).await.unwrap();
    let gid = decided.grant_id.unwrap();

    // The data officer sees the consumers but cannot revoke.
    let officer = w.sign_in("gaj-officer").await;
    let page = w.get("/catalog/ga-hjrk", &officer).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("id=\"consumers\"") && page.body.contains("社保待遇资格认证系统"));
    assert!(page.body.contains("/audit?action=share.read&amp;target=ga-hjrk"));
    assert!(!page.body.contains(&format!("/sharing/grants/{gid}/revoke")));
    let reads = w.get("/audit?action=share.read&target=ga-hjrk", &officer).await;
    assert_eq!(reads.status, StatusCode::OK, "{}", reads.body);
    // The requesting organisation and strangers see no consumers section.
    let dev = w.sign_in("rsj-dev").await;
    let theirs = w.get("/catalog/ga-hjrk", &dev).await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert!(!theirs.body.contains("id=\"consumers\""));
    assert_eq!(w.get("/audit?action=share.read&target=ga-hjrk", &dev).await.status, StatusCode::FORBIDDEN);

    let (jar, csrf) = w.sign_in_with_csrf("gaj-approver").await;
    let page = w.get("/catalog/ga-hjrk", &jar).await;
    assert!(page.body.contains(&format!("action=\"/sharing/grants/{gid}/revoke\"")));
    let no_reason = w
        .post(&format!("/sharing/grants/{gid}/revoke"), &jar, &[("csrf", &csrf), ("from", "dataset"), ("reason", " ")])
        .await;
    assert_eq!(no_reason.status, StatusCode::BAD_REQUEST);
    let post = w
        .post(
            &format!("/sharing/grants/{gid}/revoke"),
            &jar,
            &[("csrf", &csrf), ("from", "dataset"), ("reason", "申请单位已停止该业务")],
        )
        .await;
    assert_eq!(post.status, StatusCode::SEE_OTHER, "{}", post.body);
    assert_eq!(post.header("location"), format!("/catalog/ga-hjrk?revoked={gid}#consumers"));
    let g = w.state.hub.store().get_grant(gid).await.unwrap().unwrap();
    assert!(g.revoked_at.is_some());
    assert_eq!(g.revoke_reason.as_deref(), Some("申请单位已停止该业务"));
    let after = w.get(&format!("/catalog/ga-hjrk?revoked={gid}"), &jar).await;
    assert!(after.body.contains("已撤销授权") && after.body.contains("申请单位已停止该业务"));
    assert!(!after.body.contains(&format!("/sharing/grants/{gid}/revoke")), "no button once revoked");
}

#[tokio::test]
async fn overdue_requests_are_flagged_with_the_injected_clock() {
    let w = world().await;
    w.sharing_world().await;
    let app = w.rsj_app().await;
    let r = w.hjrk_request(&app).await;
    let jar = w.sign_in("gaj-approver").await;
    assert!(!w.get("/sharing/inbox", &jar).await.body.contains("overdue-badge"));
    let admin = w.sign_in("admin").await;
    let city = w.get("/sharing/inbox?overdue=1", &admin).await;
    assert_eq!(city.status, StatusCode::OK, "{}", city.body);
    assert!(!city.body.contains(&format!("/sharing/requests/{}\"", r.id)));

    w.clock.advance(Duration::days(20));
    let jar = w.sign_in("gaj-approver").await;
    let inbox = w.get("/sharing/inbox", &jar).await;
    assert!(inbox.body.contains("overdue-badge") && inbox.body.contains("逾期"), "{}", inbox.body);
    let admin = w.sign_in("admin").await;
    let home = w.get("/", &admin).await;
    assert!(home.body.contains("href=\"/sharing/inbox\"") && home.body.contains("href=\"/sharing/apps\""));
    let city = w.get("/sharing/inbox?overdue=1", &admin).await;
    assert_eq!(city.status, StatusCode::OK);
    assert!(city.body.contains(&format!("/sharing/requests/{}\"", r.id)));
    assert!(city.body.contains("逾期未审批的共享申请"));
    // The approver's own page says so too.
    let page = w.get(&format!("/sharing/requests/{}", r.id), &jar).await;
    assert!(page.body.contains("overdue-badge"));
}

#[tokio::test]
async fn the_app_page_lists_webhooks_with_their_state() {
    use govhub_core::webhook::{NewWebhook, WebhookAttempt, WebhookUpdate};
    let w = world().await;
    w.sharing_world().await;
    let app = w.rsj_app().await;
    let store = w.state.hub.store();
    let now = w.state.hub.clock().now();
    let hook = store
        .insert_webhook(&NewWebhook {
            app_id: app.id,
            dataset: DatasetCode::parse("ga-hjrk").unwrap(),
            url: "https://hooks.example.cn/in?token=receiver-secret".into(),
            fields: None,
            created_by: "rsj-dev".into(),
            created_at: now,
            position: None,
        })
        .await
        .unwrap();
    let jar = w.sign_in("rsj-dev").await;
    let page = w.get(&format!("/sharing/apps/{}", app.id), &jar).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("变更推送") && page.body.contains("https://hooks.example.cn/in"));
    assert!(!page.body.contains("receiver-secret"), "the URL's query is not shown");
    assert!(page.body.contains("badge-green\">正常"), "{}", page.body);

    // Two failures: retrying, with the next attempt and the error.
    store.claim_webhooks(now, now + Duration::minutes(1), "n", 10).await.unwrap();
    let next = now + Duration::seconds(2);
    let update = WebhookUpdate {
        position: None,
        failures: 2,
        next_attempt_at: next,
        last_error: Some("HTTP 503".into()),
        last_success_at: None,
        attempt: Some(WebhookAttempt {
            id: 0,
            webhook_id: hook.id,
            at: now,
            delivery: "d".into(),
            changes: 1,
            status: Some(503),
            error: Some("HTTP 503".into()),
            next_attempt_at: Some(next),
            duration_ms: 3,
        }),
    };
    assert!(store.finish_webhook(hook.id, "n", &update, 10).await.unwrap());
    let page = w.get(&format!("/sharing/apps/{}", app.id), &format!("{jar}; govhub_lang=en")).await;
    assert!(page.body.contains("badge-amber\">retrying") && page.body.contains("HTTP 503"), "{}", page.body);
    assert!(page.body.contains("next attempt"));
}

#[tokio::test]
async fn the_usage_page_shows_each_app_s_use_and_the_audit_commits_to_admins_only() {
    let w = world().await;
    w.sharing_world().await;
    let app = w.rsj_app().await;
    // What the consumer API records for each request (three answered, one refused).
    for _ in 0..3 {
        w.state.metrics.share("ga-hjrk", app.id, 4, false, std::time::Duration::from_micros(1500));
    }
    w.state.metrics.share("ga-hjrk", app.id, 0, true, std::time::Duration::from_micros(500));

    let admin = w.sign_in("admin").await;
    let page = w.get("/sharing/usage", &admin).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let b = &page.body;
    assert!(b.contains("共享接口使用情况") && b.contains("href=\"/sharing/usage\""), "{b}");
    assert!(b.contains(&format!("<a href=\"/sharing/apps/{}\">社保待遇资格认证系统</a>", app.id)), "{b}");
    // 4 requests, 12 rows, 1 error; the bar is the busiest row, a quarter of it red.
    assert!(b.contains("<td class=\"num\">4</td>") && b.contains("<td class=\"num\">12</td>"), "{b}");
    assert!(b.contains("<td class=\"num\">1</td>") && b.contains("<td class=\"num\">1.25</td>"), "{b}");
    assert!(b.contains("class=\"seg-ok\" x=\"0\" y=\"0\" width=\"750.0\""), "{b}");
    assert!(b.contains("class=\"seg-error\" x=\"750.0\" y=\"0\" width=\"250.0\""), "{b}");
    // Setting up this world was audited, so the writer had committed before the page
    // was drawn (and has committed at least as often since).
    let shown: u64 = b
        .split("<dd id=\"commits\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(shown >= 1 && shown <= w.state.hub.store().audit_commits().commits, "{shown}\n{b}");
    let en = w.get("/sharing/usage", &format!("{admin}; govhub_lang=en")).await;
    assert!(en.body.contains("Consumer API usage") && en.body.contains("Time to durable, p99"), "{}", en.body);

    // Nobody else: not the provider's data officer, not the app's developer.
    for who in ["gaj-officer", "rsj-dev"] {
        let jar = w.sign_in(who).await;
        let page = w.get("/sharing/usage", &jar).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{who}: {}", page.body);
        assert!(!page.body.contains("社保待遇资格认证系统"), "{who}");
        let home = w.get("/", &jar).await;
        assert!(!home.body.contains("href=\"/sharing/usage\""), "{who} has no usage link");
    }
    // Each decision is on the audit log.
    let q =
        govhub_core::model::AuditQuery { action_prefix: Some("usage.read".into()), limit: 10, ..Default::default() };
    let seen = w.state.hub.store().list_audit(&q).await.unwrap();
    let outcomes: Vec<&str> = seen.iter().map(|e| e.event.outcome.as_str()).collect();
    assert!(outcomes.contains(&"allowed") && outcomes.contains(&"denied"), "{outcomes:?}");
}
