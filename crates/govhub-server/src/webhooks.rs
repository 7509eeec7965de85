//! The HTTP half of webhook push: [`HttpSender`] (the core's `WebhookSender` port over
//! reqwest) and the background dispatcher that [`crate::serve`] runs. The domain logic —
//! what is sent, audited, signed, retried — is in `govhub_core::webhook`.
//!
//! The SSRF rule is enforced where the connection is made: unless the policy allows
//! internal targets, a literal internal address is refused before connecting and a
//! host name is resolved by [`GuardedResolver`], which refuses the name if any of its
//! addresses is internal (so a public name pointing at 127.0.0.1 or 169.254.169.254 is
//! refused too). Redirects are not followed and proxies from the environment are not
//! used, so neither can lead the request elsewhere.

use async_trait::async_trait;
use govhub_core::service::Hub;
use govhub_core::webhook::{is_internal, SendOutcome, WebhookSender, WebhookUrl};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Resolves host names with the system resolver, refusing internal addresses.
#[derive(Debug)]
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            if addrs.iter().any(|a| is_internal(a.ip())) {
                return Err(format!("{host} resolves to an internal address (refused)").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// POSTs webhook requests.
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    allow_private: bool,
}

impl HttpSender {
    pub fn new(timeout: Duration, allow_private: bool) -> Result<HttpSender, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("govhub-webhook/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        Ok(HttpSender { client: builder.build()?, allow_private })
    }
}

/// A network error as text, without the URL (its query may hold the receiver's token).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_request() {
        "request failed"
    } else {
        "error"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    let text = if detail.is_empty() { kind.to_string() } else { format!("{kind}: {detail}") };
    text.chars().take(300).collect()
}

#[async_trait]
impl WebhookSender for HttpSender {
    async fn post(&self, url: &str, headers: Vec<(&'static str, String)>, body: Vec<u8>) -> SendOutcome {
        let parsed = match WebhookUrl::parse(url) {
            Ok(u) => u,
            Err(e) => return SendOutcome::Failed(e.message),
        };
        if !self.allow_private {
            // Literal addresses are not resolved, so the resolver cannot see them.
            if let Ok(ip) = parsed.host().parse::<IpAddr>() {
                if is_internal(ip) {
                    return SendOutcome::Failed(format!(
                        "webhook_target_refused: {} is an internal address",
                        parsed.host()
                    ));
                }
            }
        }
        let mut req = self.client.post(url).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        match req.send().await {
            Ok(resp) => SendOutcome::Status(resp.status().as_u16()),
            Err(e) => SendOutcome::Failed(describe(&e.without_url())),
        }
    }
}

/// Start the dispatcher: every `tick` it claims the due subscriptions (leased to this
/// process) and pushes them. Runs until the handle is aborted.
pub fn spawn_dispatcher(hub: Hub) -> Option<tokio::task::JoinHandle<()>> {
    let policy = hub.settings().webhooks.clone();
    let sender: Arc<dyn WebhookSender> = match HttpSender::new(policy.timeout, policy.allow_private_targets) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(error = %e, "webhook push disabled: the HTTP client could not be built");
            return None;
        }
    };
    let owner = format!("node-{}", uuid::Uuid::new_v4().simple());
    // Short sleeps: due times come from the hub's clock; this only bounds the delay.
    let tick =
        policy.backoff_base.to_std().unwrap_or_default().clamp(Duration::from_millis(20), Duration::from_millis(500));
    Some(tokio::spawn(async move {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            loop {
                match hub.dispatch_webhooks(sender.clone(), &owner).await {
                    // A full claim: more may be due; go on at once.
                    Ok(n) if n >= policy.claim.max(1) as usize => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook dispatch round failed");
                        break;
                    }
                }
            }
        }
    }))
}
