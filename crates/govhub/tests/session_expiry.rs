//! Tokens expire: with an injected clock, a token is refused with `session_expired`
//! once its lifetime has passed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{Duration, Utc};
use govhub_core::clock::ManualClock;
use govhub_server::state::ServerConfig;
use govhub_testkit::{spawn_app_with, Backend};
use serde_json::Value;
use std::sync::Arc;

async fn expiry(backend: Backend) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = spawn_app_with(backend, clock.clone(), ServerConfig::default()).await;
    app.create_user("wang-wu", "officer-pass-1", "platform-admin", None).await;
    let token = app.token("wang-wu", "officer-pass-1").await;
    let (s, _) = app.get("/api/v1/me", &token).await;
    assert_eq!(s, 200);
    clock.advance(Duration::hours(11));
    let (s, _) = app.get("/api/v1/me", &token).await;
    assert_eq!(s, 200, "still valid before 12 h");
    clock.advance(Duration::hours(2));
    let (s, b): (u16, Value) = app.get("/api/v1/me", &token).await;
    assert_eq!(s, 401);
    assert_eq!(b["code"], "session_expired");
    assert!(b["message_zh"].as_str().unwrap().contains("过期"));
    // And it is gone for good.
    let (_, b) = app.get("/api/v1/me", &token).await;
    assert_eq!(b["code"], "unauthenticated");
}

govhub_testkit::per_backend_tests!(expiry);
