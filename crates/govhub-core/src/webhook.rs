//! Webhook push of the change feed (变更推送): instead of polling
//! `GET /api/v1/share/{dataset}/changes`, a granted app names a URL and the hub POSTs
//! each new page of changes to it — exactly the items of the pull feed (granted fields
//! only, masked the same way, see [`crate::share::change_json`]), audited as a read
//! before it leaves, and signed with the platform SM2 key so the receiver can check
//! that it came from the hub.
//!
//! * Delivery is at least once: the subscription's position in the feed advances only
//!   after a 2xx answer; anything else (another status, a timeout, a refused
//!   connection) is retried with exponential backoff and jitter.
//! * The grant is checked before every push: a revoked or lapsed grant stops pushes at
//!   once (each refusal is audited like a refused read), a new grant resumes them.
//! * Work is claimed with a lease in the store, so several nodes on one PostgreSQL
//!   never push the same subscription at the same time.
//! * The HTTP part is a port ([`WebhookSender`]); the server crate implements it.

use crate::authz::{Action, Principal};
use crate::error::{Code, Error, Result};
use crate::model::*;
use crate::names::DatasetCode;
use crate::service::{store_err, Ctx, Hub};
use crate::share::{change_json, Projection, MAX_PAGE};
use crate::sharing::{china_date, App, ChangePosition, Grant};
use crate::store::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;

/// Attempts kept per subscription (older ones are dropped).
pub const ATTEMPTS_KEPT: u32 = 100;
/// Subscriptions an app may hold.
pub const MAX_WEBHOOKS_PER_APP: usize = 20;

/// Tunables of webhook delivery.
#[derive(Debug, Clone)]
pub struct WebhookPolicy {
    /// Allow targets on loopback, private, link-local and similar addresses (and
    /// `localhost`). Off by default: a hub must not be made to probe its own network
    /// (SSRF). Tests and closed networks turn it on.
    pub allow_private_targets: bool,
    /// First retry delay; doubled after each further failure…
    pub backoff_base: Duration,
    /// …up to this.
    pub backoff_cap: Duration,
    /// How often a subscription with nothing new is looked at again.
    pub poll_interval: Duration,
    /// Changes per request.
    pub batch: u32,
    /// How long a node holds a claimed subscription (longer than a request may take).
    pub lease: Duration,
    /// Timeout of one request.
    pub timeout: std::time::Duration,
    /// Subscriptions claimed per round.
    pub claim: u32,
}

impl Default for WebhookPolicy {
    fn default() -> Self {
        WebhookPolicy {
            allow_private_targets: false,
            backoff_base: Duration::seconds(1),
            backoff_cap: Duration::hours(1),
            poll_interval: Duration::seconds(2),
            batch: 100,
            lease: Duration::minutes(2),
            timeout: std::time::Duration::from_secs(10),
            claim: 16,
        }
    }
}

impl WebhookPolicy {
    /// The delay before the next attempt after `failures` consecutive failures:
    /// `base · 2^(failures−1)`, times a jitter factor in [1, 1.25), at most `cap`.
    /// `seed` spreads subscriptions that failed together.
    pub fn backoff(&self, failures: i64, seed: &[u8]) -> Duration {
        let exp = failures.clamp(1, 40) - 1;
        let base_ms = self.backoff_base.num_milliseconds().max(1);
        let cap_ms = self.backoff_cap.num_milliseconds().max(base_ms);
        let raw = base_ms.saturating_mul(1i64 << exp.min(40)).min(cap_ms);
        let digest = govhub_crypto::sm3_hex(seed);
        let frac = u16::from_str_radix(&digest[..4], 16).unwrap_or(0);
        let jitter = raw / 4 * i64::from(frac) / 65_536;
        Duration::milliseconds(raw.saturating_add(jitter).min(cap_ms))
    }
}

// ------------------------------------------------------------------ the target URL

/// A validated webhook target: `http://` or `https://`, a host, no credentials, no
/// fragment, at most 2,000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    url: String,
    host: String,
}

fn bad_url(en: impl Into<String>, zh: impl Into<String>) -> Error {
    Error::new(Code::InvalidWebhookUrl, en, zh).with_field("url")
}

impl WebhookUrl {
    pub fn parse(s: &str) -> Result<WebhookUrl> {
        let url = s.trim();
        if url.len() > 2000 {
            return Err(bad_url("the URL is longer than 2,000 characters", "地址不能超过2000个字符"));
        }
        if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad_url("the URL contains spaces or control characters", "地址中含有空格或控制字符"));
        }
        let lower = url.to_ascii_lowercase();
        let rest = if lower.starts_with("https://") {
            &url[8..]
        } else if lower.starts_with("http://") {
            &url[7..]
        } else {
            return Err(bad_url(
                "the URL must start with http:// or https://",
                "推送地址必须以 http:// 或 https:// 开头",
            ));
        };
        if url.contains('#') {
            return Err(bad_url("the URL must not contain a fragment (#…)", "推送地址不能包含“#”片段"));
        }
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(bad_url("the URL must not contain a user name or password", "推送地址不能包含用户名或密码"));
        }
        let host = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| bad_url("the IPv6 address is not closed with ]", "IPv6地址缺少“]”"))?;
            if !(after.is_empty() || after.starts_with(':')) {
                return Err(bad_url("the URL's host does not parse", "推送地址的主机名不合法"));
            }
            h.parse::<std::net::Ipv6Addr>()
                .map_err(|_| bad_url("the IPv6 address does not parse", "IPv6地址不合法"))?;
            h.to_string()
        } else {
            let (h, port) = match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if let Some(p) = port {
                if p.parse::<u16>().map_or(true, |p| p == 0) {
                    return Err(bad_url(format!("port \"{p}\" is not a port number"), format!("端口“{p}”不合法")));
                }
            }
            h.to_ascii_lowercase()
        };
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && (host.contains(':')
                || host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                    && !host.starts_with('.')
                    && !host.contains(".."));
        if !host_ok {
            return Err(bad_url("the URL has no valid host name", "推送地址缺少合法的主机名"));
        }
        Ok(WebhookUrl { url: url.to_string(), host: host.trim_end_matches('.').to_string() })
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The host as written (lower case, without brackets for IPv6).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Refuse hosts that are plainly internal unless the policy allows them. Names are
    /// checked again after resolution, when the request is made (the server's
    /// resolver), so a name that resolves to a private address is refused too.
    pub fn check_target(&self, allow_private: bool) -> Result<()> {
        if allow_private {
            return Ok(());
        }
        let internal = match self.host.parse::<IpAddr>() {
            Ok(ip) => is_internal(ip),
            Err(_) => {
                self.host == "localhost"
                    || self.host.ends_with(".localhost")
                    || self.host.ends_with(".local")
                    || self.host.ends_with(".internal")
                    || !self.host.contains('.')
            }
        };
        if internal {
            return Err(target_refused(&self.host));
        }
        Ok(())
    }
}

/// The error for a target on an internal address.
pub fn target_refused(host: &str) -> Error {
    Error::new(
        Code::WebhookTargetRefused,
        format!(
            "webhook target {host} is on a loopback, private or otherwise internal address; \
             use a public address (the platform administrator can allow internal targets)"
        ),
        format!("推送地址{host}属于本机、内网或保留地址，请使用公网地址（如确需推送到内网，请联系平台管理员开启）"),
    )
    .with_field("url")
}

/// Loopback, private (RFC 1918, unique local), link-local, shared (CGNAT),
/// unspecified, multicast, broadcast, documentation and benchmarking addresses, and
/// IPv4 addresses written as IPv6.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0)
        }
    }
}

// ------------------------------------------------------------------ stored model

/// Where a subscription is in its dataset's change feed: after this change (the same
/// position a pull cursor encodes), the key as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPosition {
    pub commit_seq: i64,
    pub key: Vec<String>,
    pub version: i64,
}

/// A webhook subscription of an app to a dataset's changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    pub id: i64,
    pub app_id: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub dataset: DatasetCode,
    pub url: String,
    /// A subset of the granted fields (`null`: all granted fields).
    pub fields: Option<Vec<String>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// Not shown: the key of the last change delivered may be personal data.
    #[serde(skip)]
    pub position: Option<FeedPosition>,
    /// Consecutive failed attempts (0 after a success).
    pub failures: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// The last failure: an HTTP status, a network error or a code such as `no_grant`.
    pub last_error: Option<String>,
}

/// The state shown for a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WebhookState {
    /// The last attempt succeeded (or nothing was sent yet).
    Ok,
    /// Failing, retried with backoff (fewer than [`FAILING_AFTER`] failures in a row).
    Retrying,
    /// [`FAILING_AFTER`] or more failures in a row: the receiver needs attention.
    Failing,
}

/// Consecutive failures after which a subscription counts as failing.
pub const FAILING_AFTER: i64 = 5;

impl Webhook {
    pub fn state(&self) -> WebhookState {
        match self.failures {
            0 => WebhookState::Ok,
            n if n < FAILING_AFTER => WebhookState::Retrying,
            _ => WebhookState::Failing,
        }
    }
}

/// A subscription as it is created.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWebhook {
    pub app_id: i64,
    pub dataset: DatasetCode,
    pub url: String,
    pub fields: Option<Vec<String>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub position: Option<FeedPosition>,
}

/// One delivery attempt, as logged.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookAttempt {
    pub id: i64,
    pub webhook_id: i64,
    pub at: DateTime<Utc>,
    /// The `X-Govhub-Delivery` id sent (empty when nothing was sent).
    pub delivery: String,
    /// Changes in the request.
    pub changes: i64,
    /// The receiver's HTTP status (none: no answer, or nothing was sent).
    pub status: Option<i32>,
    /// Why the attempt failed (none: it succeeded).
    pub error: Option<String>,
    /// When the next attempt is due after a failure.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub duration_ms: i64,
}

/// What a finished round does to a subscription (and its attempt log).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookUpdate {
    /// The new position, after a success.
    pub position: Option<FeedPosition>,
    pub failures: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// The attempt to log (`id` is ignored); none when there was nothing to send.
    pub attempt: Option<WebhookAttempt>,
}

/// The storage half of webhooks.
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    async fn insert_webhook(&self, w: &NewWebhook) -> std::result::Result<Webhook, StoreError>;
    async fn get_webhook(&self, id: i64) -> std::result::Result<Option<Webhook>, StoreError>;
    /// An app's subscriptions (all, without an app), oldest first.
    async fn list_webhooks(&self, app_id: Option<i64>) -> std::result::Result<Vec<Webhook>, StoreError>;
    /// Remove a subscription and its attempts; false when there was none.
    async fn delete_webhook(&self, id: i64) -> std::result::Result<bool, StoreError>;
    /// Claim up to `limit` subscriptions due at `now` whose lease is free or expired:
    /// each is leased to `owner` until `until`, atomically (two nodes never claim the
    /// same one). Most overdue first.
    async fn claim_webhooks(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        owner: &str,
        limit: u32,
    ) -> std::result::Result<Vec<Webhook>, StoreError>;
    /// Apply a round's outcome and release the lease, in one transaction, only if
    /// `owner` still holds the lease (false otherwise: the subscription was deleted or
    /// its lease expired and was taken). Keeps the newest `keep` attempts.
    async fn finish_webhook(
        &self,
        id: i64,
        owner: &str,
        update: &WebhookUpdate,
        keep: u32,
    ) -> std::result::Result<bool, StoreError>;
    /// Newest first.
    async fn list_webhook_attempts(&self, id: i64, limit: u32) -> std::result::Result<Vec<WebhookAttempt>, StoreError>;
}

// ------------------------------------------------------------------ the HTTP port

/// What came back from a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The receiver answered with this status.
    Status(u16),
    /// No answer: refused target, connection error, timeout (a short description that
    /// never contains the URL).
    Failed(String),
}

/// Sends one signed request. Implemented by the server crate (HTTP client, resolver
/// that enforces the SSRF rule, timeout).
#[async_trait]
pub trait WebhookSender: Send + Sync + 'static {
    async fn post(&self, url: &str, headers: Vec<(&'static str, String)>, body: Vec<u8>) -> SendOutcome;
}

// ------------------------------------------------------------------ inputs

/// `POST /api/v1/apps/{id}/webhooks`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookInput {
    pub dataset: String,
    /// `http://` or `https://` URL the changes are POSTed to.
    pub url: String,
    /// A subset of the granted fields (default: all granted fields).
    pub fields: Option<Vec<String>>,
    /// Start after this pull-feed cursor (`next_cursor` of
    /// `GET /api/v1/share/{dataset}/changes` read with this app's token); default: the
    /// start of the feed.
    pub since: Option<String>,
}

/// The message a request's signature covers: `timestamp + "\n" + body`.
pub fn signed_message(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(timestamp.len() + 1 + body.len());
    m.extend_from_slice(timestamp.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(body);
    m
}

/// Standard base64 with padding (the signature header).
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn app_principal(app: &App) -> Principal {
    Principal {
        user_id: None,
        username: format!("app:{}", app.id),
        display_name: app.name.clone(),
        role: Role::AppDeveloper,
        org: Some(app.org.clone()),
        subject_id: None,
        app: Some(app.id),
    }
}

fn position_of(c: &crate::sharing::Change, d: &Dataset) -> FeedPosition {
    FeedPosition {
        commit_seq: c.commit_seq,
        key: crate::records::key_indexes(&d.schema).iter().map(|&i| c.cells[i].to_text()).collect(),
        version: c.version,
    }
}

fn position_text(p: Option<&FeedPosition>) -> String {
    match p {
        Some(p) => format!("{}\u{1f}{}\u{1f}{}", p.commit_seq, p.key.join("\u{1e}"), p.version),
        None => "start".into(),
    }
}

/// Why nothing could be sent this round (the grant, the key, the data).
struct Refusal {
    error: String,
}

// ------------------------------------------------------------------ services

impl Hub {
    async fn webhook_app(&self, id: i64) -> Result<App> {
        self.store()
            .get_app(id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::not_found("app", "应用", &id.to_string()))
    }

    /// Subscribe an app to a dataset's changes (the app's organisation's developers).
    pub async fn create_webhook(&self, p: &Principal, app_id: i64, input: WebhookInput, ctx: &Ctx) -> Result<Webhook> {
        let app = self.webhook_app(app_id).await?;
        let target = format!("app/{app_id}/webhooks");
        let auth = self.authorize(p, Action::ManageApps { org: &app.org }, &target, ctx).await?;
        let result = async {
            let url = WebhookUrl::parse(&input.url)?;
            url.check_target(self.settings().webhooks.allow_private_targets)?;
            let d = self.load_dataset(input.dataset.trim()).await?;
            let g = self.grant_in_force(app.id, &d).await?.ok_or_else(|| {
                Error::new(
                    Code::NoGrant,
                    format!("app {app_id} has no grant in force for dataset {}; request access first", d.code.as_str()),
                    format!("本应用没有数据集“{}”的有效共享授权，请先提交共享申请", d.name),
                )
            })?;
            let fields = match &input.fields {
                Some(f) if f.is_empty() => None,
                Some(f) => {
                    let f: Vec<String> = f.iter().map(|x| x.trim().to_string()).collect();
                    Projection::new(&d, &g, Some(&f.join(",")))?;
                    Some(f)
                }
                None => None,
            };
            let position = match input.since.as_deref().map(str::trim).filter(|s| !s.is_empty() && *s != "0") {
                Some(c) => {
                    let at = self.changes_cursor_position(c, app.id, &d).await?;
                    Some(FeedPosition {
                        commit_seq: at.commit_seq,
                        key: at.key.iter().map(|c| c.to_text()).collect(),
                        version: at.version,
                    })
                }
                None => None,
            };
            let existing = self.store().list_webhooks(Some(app.id)).await.map_err(store_err)?;
            if existing.len() >= MAX_WEBHOOKS_PER_APP {
                return Err(Error::new(
                    Code::InvalidRequest,
                    format!("an app may hold at most {MAX_WEBHOOKS_PER_APP} webhooks; delete one first"),
                    format!("每个应用最多{MAX_WEBHOOKS_PER_APP}个推送订阅，请先删除不用的订阅"),
                ));
            }
            let now = self.clock().now();
            let new = NewWebhook {
                app_id: app.id,
                dataset: d.code.clone(),
                url: url.as_str().to_string(),
                fields,
                created_by: p.username.clone(),
                created_at: now,
                position,
            };
            self.store().insert_webhook(&new).await.map_err(store_err)
        }
        .await;
        // The URL may carry the receiver's own token in its query: the audit log keeps
        // the host only.
        let host = WebhookUrl::parse(&input.url).map(|u| u.host().to_string()).unwrap_or_default();
        let detail = json!({"dataset": input.dataset, "host": host, "webhook": result.as_ref().ok().map(|w| w.id)});
        self.finish(&auth, &target, result, detail, ctx).await
    }

    /// An app's subscriptions.
    pub async fn list_webhooks(&self, p: &Principal, app_id: i64, ctx: &Ctx) -> Result<Vec<Webhook>> {
        let app = self.webhook_app(app_id).await?;
        self.authorize(p, Action::ReadSharing { org: &app.org }, &format!("app/{app_id}/webhooks"), ctx).await?;
        self.store().list_webhooks(Some(app_id)).await.map_err(store_err)
    }

    async fn load_webhook(&self, id: i64) -> Result<(Webhook, App)> {
        let w = self
            .store()
            .get_webhook(id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::not_found("webhook", "推送订阅", &id.to_string()))?;
        let app = self.webhook_app(w.app_id).await?;
        Ok((w, app))
    }

    pub async fn delete_webhook(&self, p: &Principal, id: i64, ctx: &Ctx) -> Result<()> {
        let (w, app) = self.load_webhook(id).await?;
        let target = format!("webhook/{id}");
        let auth = self.authorize(p, Action::ManageApps { org: &app.org }, &target, ctx).await?;
        let result = async {
            if self.store().delete_webhook(id).await.map_err(store_err)? {
                Ok(())
            } else {
                Err(Error::not_found("webhook", "推送订阅", &id.to_string()))
            }
        }
        .await;
        self.finish(&auth, &target, result, json!({"app": w.app_id, "dataset": w.dataset.as_str()}), ctx).await
    }

    /// Recent delivery attempts of a subscription, newest first.
    pub async fn webhook_attempts(&self, p: &Principal, id: i64, limit: u32, ctx: &Ctx) -> Result<Vec<WebhookAttempt>> {
        let (_, app) = self.load_webhook(id).await?;
        self.authorize(p, Action::ReadSharing { org: &app.org }, &format!("webhook/{id}/attempts"), ctx).await?;
        self.store().list_webhook_attempts(id, limit.clamp(1, ATTEMPTS_KEPT)).await.map_err(store_err)
    }

    /// The grant of an app on a dataset in force today (not revoked, not lapsed, the
    /// dataset still shared).
    async fn grant_in_force(&self, app: i64, d: &Dataset) -> Result<Option<Grant>> {
        let g = self.store().current_grant(app, &d.code).await.map_err(store_err)?;
        let today = china_date(self.clock().now());
        Ok(g.filter(|g| g.active_on(today) && d.sharing_class != SharingClass::NotShared))
    }

    // -------------------------------------------------------------- dispatch

    /// One round of the dispatcher: claim the due subscriptions (leased to `owner`)
    /// and push each, concurrently. Returns how many were claimed.
    pub async fn dispatch_webhooks(&self, sender: Arc<dyn WebhookSender>, owner: &str) -> Result<usize> {
        let policy = self.settings().webhooks.clone();
        let now = self.clock().now();
        let claimed = self
            .store()
            .claim_webhooks(now, now + policy.lease, owner, policy.claim.max(1))
            .await
            .map_err(store_err)?;
        let n = claimed.len();
        let mut tasks = tokio::task::JoinSet::new();
        for w in claimed {
            let (hub, sender, owner) = (self.clone(), sender.clone(), owner.to_string());
            tasks.spawn(async move {
                let update = hub.push_webhook(&w, sender.as_ref()).await;
                match hub.store().finish_webhook(w.id, &owner, &update, ATTEMPTS_KEPT).await {
                    Ok(true) => {}
                    Ok(false) => tracing::info!(webhook = w.id, "webhook deleted or lease lost during a push"),
                    Err(e) => tracing::warn!(webhook = w.id, error = %e, "recording a webhook attempt failed"),
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        Ok(n)
    }

    /// Push the next page of one subscription; never fails (failures are outcomes).
    async fn push_webhook(&self, w: &Webhook, sender: &dyn WebhookSender) -> WebhookUpdate {
        let policy = &self.settings().webhooks;
        let started = self.clock().now();
        let clock = std::time::Instant::now();
        let failed = |error: String, delivery: String, changes: i64, status: Option<i32>| {
            let failures = w.failures + 1;
            let seed = format!("{}-{}-{}", w.id, failures, started.timestamp_micros());
            let next = self.clock().now() + policy.backoff(failures, seed.as_bytes());
            WebhookUpdate {
                position: None,
                failures,
                next_attempt_at: next,
                last_error: Some(error.clone()),
                last_success_at: None,
                attempt: Some(WebhookAttempt {
                    id: 0,
                    webhook_id: w.id,
                    at: started,
                    delivery,
                    changes,
                    status,
                    error: Some(error),
                    next_attempt_at: Some(next),
                    duration_ms: clock.elapsed().as_millis().min(i64::MAX as u128) as i64,
                }),
            }
        };
        let prepared = match self.prepare_push(w).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                // Nothing new: look again after the poll interval.
                return WebhookUpdate {
                    position: None,
                    failures: 0,
                    next_attempt_at: self.clock().now() + policy.poll_interval,
                    last_error: None,
                    last_success_at: None,
                    attempt: None,
                };
            }
            Err(r) => return failed(r.error, String::new(), 0, None),
        };
        let outcome = sender.post(&w.url, prepared.headers, prepared.body).await;
        match outcome {
            SendOutcome::Status(s) if (200..300).contains(&s) => WebhookUpdate {
                position: Some(prepared.to),
                failures: 0,
                next_attempt_at: self.clock().now(),
                last_error: None,
                last_success_at: Some(self.clock().now()),
                attempt: Some(WebhookAttempt {
                    id: 0,
                    webhook_id: w.id,
                    at: started,
                    delivery: prepared.delivery,
                    changes: prepared.changes,
                    status: Some(i32::from(s)),
                    error: None,
                    next_attempt_at: None,
                    duration_ms: clock.elapsed().as_millis().min(i64::MAX as u128) as i64,
                }),
            },
            SendOutcome::Status(s) => {
                failed(format!("HTTP {s}"), prepared.delivery, prepared.changes, Some(i32::from(s)))
            }
            SendOutcome::Failed(e) => failed(e, prepared.delivery, prepared.changes, None),
        }
    }

    /// Check the grant, read the next page, audit it and sign it. `None` when there is
    /// nothing new.
    async fn prepare_push(&self, w: &Webhook) -> std::result::Result<Option<Prepared>, Refusal> {
        let internal = |e: Error| {
            tracing::warn!(webhook = w.id, error = %e, source = ?e.source, "webhook push could not be prepared");
            Refusal { error: format!("{}: {}", e.code.as_str(), e.message) }
        };
        let app = self.webhook_app(w.app_id).await.map_err(internal)?;
        let principal = app_principal(&app);
        let ctx = Ctx { request_id: Some(format!("webhook-{}", w.id)) };
        let d = self.load_dataset(w.dataset.as_str()).await.map_err(internal)?;
        let Some(g) = self.grant_in_force(app.id, &d).await.map_err(internal)? else {
            let why = json!({"reason": "no grant in force", "webhook": w.id});
            let what = crate::service::Audit::of("share.read", d.code.as_str(), Outcome::Denied);
            self.audit(&principal, what, why, &ctx).await.map_err(internal)?;
            return Err(Refusal {
                error: format!(
                    "no_grant: no grant in force for dataset {}; pushes resume with a new grant",
                    d.code.as_str()
                ),
            });
        };
        let proj = Projection::new(&d, &g, w.fields.as_ref().map(|f| f.join(",")).as_deref()).map_err(internal)?;
        let after = match &w.position {
            Some(p) => Some(ChangePosition {
                commit_seq: p.commit_seq,
                key: Self::key_cells(&d, &json!(p.key)).map_err(internal)?,
                version: p.version,
            }),
            None => None,
        };
        let limit = self.settings().webhooks.batch.clamp(1, MAX_PAGE);
        let changes = self.store().list_changes(&d, after.as_ref(), limit).await.map_err(|e| internal(store_err(e)))?;
        let Some(last) = changes.last() else { return Ok(None) };
        let to = position_of(last, &d);
        let delivery = format!(
            "wh{}-{}",
            w.id,
            &govhub_crypto::sm3_hex(
                format!("{}\n{}", position_text(w.position.as_ref()), position_text(Some(&to))).as_bytes()
            )[..24]
        );
        let signer = self.signer().cloned().ok_or_else(|| Refusal {
            error: "platform_key_missing: the platform key is not loaded; requests cannot be signed".into(),
        })?;
        let next_cursor = self.changes_cursor(app.id, &d, last).await.map_err(internal)?;
        let items: Vec<serde_json::Value> = changes.iter().map(|c| change_json(&d, &proj, c)).collect();
        let body = serde_json::to_vec(&json!({
            "subscription": w.id,
            "dataset": d.code.as_str(),
            "changes": items,
            "next_cursor": next_cursor,
        }))
        .map_err(|e| internal(Error::internal(e)))?;
        // Audited like a pull read, durably, before anything leaves.
        let read: Vec<&[crate::cells::Cell]> = changes.iter().map(|c| c.cells.as_slice()).collect();
        let ctx = Ctx { request_id: Some(delivery.clone()) };
        let detail = json!({
            "webhook": w.id,
            "delivery": delivery,
            "changes_since": w.position.as_ref().map(|p| p.commit_seq),
            "fields": proj.header(&d),
        });
        self.share_audited(&principal, &d, &g, detail, &read, &ctx).await.map_err(internal)?;
        let timestamp = self.clock().now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let signature = signer
            .sign(&signed_message(&timestamp, &body))
            .map_err(|e| Refusal { error: format!("platform_key_missing: {e}") })?;
        let headers = vec![
            ("content-type", "application/json".to_string()),
            ("x-govhub-timestamp", timestamp),
            ("x-govhub-signature", base64(&signature)),
            ("x-govhub-key", signer.fingerprint()),
            ("x-govhub-delivery", delivery.clone()),
        ];
        Ok(Some(Prepared { body, headers, delivery, changes: changes.len() as i64, to }))
    }
}

/// A request ready to send.
struct Prepared {
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
    delivery: String,
    changes: i64,
    to: FeedPosition,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_are_checked() {
        let ok = WebhookUrl::parse("https://hooks.example.cn:8443/govhub?token=x").unwrap();
        assert_eq!(ok.host(), "hooks.example.cn");
        assert!(ok.check_target(false).is_ok());
        for bad in [
            "ftp://x.cn/",
            "javascript:alert(1)",
            "http://",
            "http://u:p@x.cn/",
            "http://x.cn/#a",
            "http://x .cn/",
            "http://x.cn:0/",
            "http://x.cn:99999/",
            "http://[::1/",
        ] {
            assert_eq!(WebhookUrl::parse(bad).unwrap_err().code, Code::InvalidWebhookUrl, "{bad}");
        }
        for internal in [
            "http://127.0.0.1:9000/",
            "http://localhost/",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://172.16.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:80/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00::1]/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://intranet/",
        ] {
            let u = WebhookUrl::parse(internal).unwrap();
            assert_eq!(u.check_target(false).unwrap_err().code, Code::WebhookTargetRefused, "{internal}");
            assert!(u.check_target(true).is_ok());
        }
        assert!(WebhookUrl::parse("http://203.0.113.7/").unwrap().check_target(false).is_err());
        assert!(WebhookUrl::parse("http://8.8.8.8/").unwrap().check_target(false).is_ok());
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter_up_to_the_cap() {
        let p =
            WebhookPolicy { backoff_base: Duration::seconds(1), backoff_cap: Duration::hours(1), ..Default::default() };
        let mut last = Duration::zero();
        for n in 1..=11 {
            let d = p.backoff(n, format!("seed{n}").as_bytes());
            let raw = 1000i64 << (n - 1);
            assert!(d.num_milliseconds() >= raw && d.num_milliseconds() < raw + raw / 4 + 1, "{n}: {d}");
            assert!(d > last);
            last = d;
        }
        assert_eq!(p.backoff(30, b"x"), Duration::hours(1));
        assert_eq!(p.backoff(1000, b"x"), Duration::hours(1));
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }
}
