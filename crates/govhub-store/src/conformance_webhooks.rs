//! Conformance scenarios for webhook subscriptions (part of
//! [`crate::conformance::run_all`]): round trip with the feed position, claiming with a
//! lease (exclusive, also under concurrency; an expired lease can be taken over), a
//! round's outcome applied only by the lease holder, the bounded attempt log, and
//! deletion with its attempts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::conformance::{at, dataset};
use chrono::Duration;
use govhub_core::model::Org;
use govhub_core::model::OrgKind;
use govhub_core::names::{DatasetCode, OrgCode};
use govhub_core::schema::TableSchema;
use govhub_core::store::Store;
use govhub_core::webhook::*;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

/// Run every webhook scenario on one store.
pub async fn run_all(store: Arc<dyn Store>) {
    let (app, code) = setup(store.as_ref()).await;
    round_trip_and_outcomes(store.as_ref(), app, &code).await;
    claims_are_exclusive(store.clone(), app, &code).await;
}

async fn setup(s: &dyn Store) -> (i64, DatasetCode) {
    let org = OrgCode::parse("conf-hook").unwrap();
    s.insert_org(&Org {
        code: org.clone(),
        name: "conf-hook 机构".into(),
        kind: OrgKind::City,
        parent: None,
        admin_code: None,
        uscc: None,
        created_at: at("2026-01-01T00:00:00Z"),
    })
    .await
    .unwrap();
    let schema =
        TableSchema::parse(&json!({"fields": [{"name": "id", "type": "integer"}], "primaryKey": "id"})).unwrap();
    let d = dataset("conf-hook-ds", "conf-hook", schema);
    s.create_dataset(&d).await.unwrap();
    let app = s.insert_app("推送测试应用", &org, "dev", at("2026-01-01T00:00:00Z")).await.unwrap();
    (app.id, d.code)
}

fn new_hook(app: i64, code: &DatasetCode, created: &str) -> NewWebhook {
    NewWebhook {
        app_id: app,
        dataset: code.clone(),
        url: "https://hooks.example.cn/in?token=abc".into(),
        fields: None,
        created_by: "dev".into(),
        created_at: at(created),
        position: None,
    }
}

fn attempt(n: i64, status: Option<i32>) -> WebhookAttempt {
    WebhookAttempt {
        id: 0,
        webhook_id: 0,
        at: at("2026-03-02T01:00:00.000001Z") + Duration::seconds(n),
        delivery: format!("wh-{n}"),
        changes: n,
        status,
        error: if status == Some(200) { None } else { Some("HTTP 500".into()) },
        next_attempt_at: Some(at("2026-03-02T02:00:00.123456Z")),
        duration_ms: 12,
    }
}

pub async fn round_trip_and_outcomes(s: &dyn Store, app: i64, code: &DatasetCode) {
    let t0 = "2026-03-02T01:00:00.000001Z";
    let mut new = new_hook(app, code, t0);
    new.fields = Some(vec!["id".into()]);
    new.position = Some(FeedPosition { commit_seq: 3, key: vec!["42".into()], version: 2 });
    let w = s.insert_webhook(&new).await.unwrap();
    assert!(w.id > 0);
    assert_eq!(w.fields, Some(vec!["id".to_string()]));
    assert_eq!(w.position, new.position);
    assert_eq!((w.failures, w.next_attempt_at, w.created_at), (0, at(t0), at(t0)));
    assert_eq!((w.last_attempt_at, w.last_success_at, w.last_error.clone()), (None, None, None));
    assert_eq!(s.get_webhook(w.id).await.unwrap(), Some(w.clone()));
    let plain = s.insert_webhook(&new_hook(app, code, t0)).await.unwrap();
    assert_eq!((plain.fields.clone(), plain.position.clone()), (None, None));
    assert_eq!(s.list_webhooks(Some(app)).await.unwrap().iter().map(|w| w.id).collect::<Vec<_>>(), [w.id, plain.id]);
    assert!(s.list_webhooks(Some(app + 1000)).await.unwrap().is_empty());
    assert!(s.list_webhooks(None).await.unwrap().len() >= 2);

    // Not due before its time; due at it; then leased.
    let now = at("2026-03-02T01:00:00.000001Z");
    assert!(s.claim_webhooks(now - Duration::seconds(1), now, "node-a", 10).await.unwrap().is_empty());
    let claimed = s.claim_webhooks(now, now + Duration::minutes(2), "node-a", 10).await.unwrap();
    let ids: Vec<i64> = claimed.iter().map(|w| w.id).collect();
    assert!(ids.contains(&w.id) && ids.contains(&plain.id), "{ids:?}");
    assert!(s.claim_webhooks(now + Duration::seconds(1), now, "node-b", 10).await.unwrap().is_empty(), "leased");

    // Only the lease holder applies an outcome.
    let failed = WebhookUpdate {
        position: None,
        failures: 1,
        next_attempt_at: at("2026-03-02T01:00:01.500000Z"),
        last_error: Some("HTTP 500".into()),
        last_success_at: None,
        attempt: Some(attempt(1, Some(500))),
    };
    assert!(!s.finish_webhook(w.id, "node-b", &failed, 100).await.unwrap());
    assert!(s.finish_webhook(w.id, "node-a", &failed, 100).await.unwrap());
    assert!(!s.finish_webhook(w.id, "node-a", &failed, 100).await.unwrap(), "the lease was released");
    let after = s.get_webhook(w.id).await.unwrap().unwrap();
    assert_eq!(after.failures, 1);
    assert_eq!(after.position, new.position, "a failure does not move the position");
    assert_eq!(after.last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(after.next_attempt_at, at("2026-03-02T01:00:01.500000Z"));
    assert_eq!(after.last_attempt_at, Some(attempt(1, None).at));
    let log = s.list_webhook_attempts(w.id, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    let mut expected = attempt(1, Some(500));
    expected.id = log[0].id;
    expected.webhook_id = w.id;
    assert_eq!(log[0], expected);

    // Released: claimable again once due; a success moves the position.
    let later = at("2026-03-02T01:00:02Z");
    let claimed = s.claim_webhooks(later, later + Duration::minutes(2), "node-b", 10).await.unwrap();
    assert_eq!(claimed.iter().map(|w| w.id).collect::<Vec<_>>(), [w.id], "plain is still leased to node-a");
    let moved = FeedPosition { commit_seq: 4, key: vec!["7".into()], version: 1 };
    let ok = WebhookUpdate {
        position: Some(moved.clone()),
        failures: 0,
        next_attempt_at: later,
        last_error: None,
        last_success_at: Some(later),
        attempt: Some(attempt(2, Some(200))),
    };
    assert!(s.finish_webhook(w.id, "node-b", &ok, 100).await.unwrap());
    let after = s.get_webhook(w.id).await.unwrap().unwrap();
    assert_eq!(
        (after.position, after.failures, after.last_error, after.last_success_at),
        (Some(moved), 0, None, Some(later))
    );

    // Nothing to send: no attempt is logged, last success kept.
    let claimed = s.claim_webhooks(later, later + Duration::minutes(2), "node-b", 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let idle = WebhookUpdate {
        position: None,
        failures: 0,
        next_attempt_at: later + Duration::seconds(2),
        last_error: None,
        last_success_at: None,
        attempt: None,
    };
    assert!(s.finish_webhook(w.id, "node-b", &idle, 100).await.unwrap());
    let after = s.get_webhook(w.id).await.unwrap().unwrap();
    assert_eq!(after.last_success_at, Some(later));
    assert_eq!(s.list_webhook_attempts(w.id, 10).await.unwrap().len(), 2);

    // The log is bounded: the newest `keep` attempts stay.
    for n in 3..=9 {
        let t = later + Duration::seconds(n);
        s.claim_webhooks(t, t + Duration::minutes(2), "node-a", 10).await.unwrap();
        let u = WebhookUpdate { attempt: Some(attempt(n, Some(500))), next_attempt_at: t, ..failed.clone() };
        assert!(s.finish_webhook(w.id, "node-a", &u, 4).await.unwrap());
    }
    let log = s.list_webhook_attempts(w.id, 100).await.unwrap();
    assert_eq!(log.iter().map(|a| a.changes).collect::<Vec<_>>(), [9, 8, 7, 6], "newest first, four kept");
    assert_eq!(s.list_webhook_attempts(w.id, 2).await.unwrap().len(), 2);

    // An expired lease is taken over.
    let much_later = at("2026-03-02T01:10:00Z");
    let taken = s.claim_webhooks(much_later, much_later + Duration::minutes(2), "node-c", 10).await.unwrap();
    assert!(taken.iter().any(|x| x.id == plain.id), "node-a's lease on plain expired");
    assert!(!s.finish_webhook(plain.id, "node-a", &idle, 100).await.unwrap(), "node-a lost its lease");

    // Deleting removes the subscription and its attempts.
    assert!(s.delete_webhook(w.id).await.unwrap());
    assert!(!s.delete_webhook(w.id).await.unwrap());
    assert_eq!(s.get_webhook(w.id).await.unwrap(), None);
    assert!(s.list_webhook_attempts(w.id, 10).await.unwrap().is_empty());
    assert!(!s.finish_webhook(w.id, "node-b", &idle, 100).await.unwrap());
    assert!(s.delete_webhook(plain.id).await.unwrap());
}

/// Eight claimers at once over twenty due subscriptions: each is claimed exactly once.
pub async fn claims_are_exclusive(store: Arc<dyn Store>, app: i64, code: &DatasetCode) {
    let mut ids = HashSet::new();
    for _ in 0..20 {
        ids.insert(store.insert_webhook(&new_hook(app, code, "2026-03-03T00:00:00Z")).await.unwrap().id);
    }
    let now = at("2026-03-03T00:00:01Z");
    let mut tasks = Vec::new();
    for n in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.claim_webhooks(now, now + Duration::minutes(1), &format!("node-{n}"), 3).await.unwrap()
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for w in t.await.unwrap() {
            assert!(seen.insert(w.id), "webhook {} claimed twice", w.id);
        }
    }
    assert!(!seen.is_empty() && seen.is_subset(&ids));
    let rest = store.claim_webhooks(now, now + Duration::minutes(1), "late", 100).await.unwrap();
    for w in &rest {
        assert!(seen.insert(w.id), "webhook {} claimed twice", w.id);
    }
    assert_eq!(seen, ids);
    for id in ids {
        assert!(store.delete_webhook(id).await.unwrap());
    }
}
