//! The audit log's services: signed checkpoints (on demand and when due), the chain's
//! status, a citizen's view of who read records about them, and a provider's view of
//! what happened to a dataset. Appending is in `service.rs` (`Hub::audit`).

use crate::audit::{checkpoint_message, to_micros, ChainHead, Checkpoint, CheckpointPolicy, SubjectAccess};
use crate::authz::{Action, Principal};
use crate::error::{Code, Error, Result};
use crate::model::{AuditEvent, AuditQuery};
use crate::service::{store_err, tokio_blocking, Ctx, Hub};
use serde_json::json;

/// The chain's head and newest checkpoint (the audit page's header).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditStatus {
    pub head: Option<ChainHead>,
    pub latest_checkpoint: Option<Checkpoint>,
    /// The platform key's fingerprint, when this hub holds the key.
    pub key_fingerprint: Option<String>,
}

fn no_key() -> Error {
    Error::new(
        Code::PlatformKeyMissing,
        "this server holds no platform signing key, so it cannot sign audit checkpoints; start it with the key's \
         passphrase (GOVHUB_KEY_PASSPHRASE or --key-passphrase-file)",
        "本服务未加载平台签名密钥，无法签署审计检查点；请提供密钥口令（GOVHUB_KEY_PASSPHRASE 或 --key-passphrase-file）后重新启动",
    )
}

impl Hub {
    /// Sign and store a checkpoint of the current head, unless the newest checkpoint
    /// already covers it (then that one is returned). `None` when the log is empty.
    /// Not itself audited: the checkpoint table is its own record (and an entry per
    /// checkpoint would always leave a newer entry uncovered).
    pub async fn checkpoint_audit(&self) -> Result<Option<Checkpoint>> {
        let head = self.store().audit_head().await.map_err(store_err)?;
        let latest = self.store().latest_checkpoint().await.map_err(store_err)?;
        self.checkpoint_head(head, latest).await
    }

    /// Sign `head` unless `latest` covers it already.
    async fn checkpoint_head(&self, head: Option<ChainHead>, latest: Option<Checkpoint>) -> Result<Option<Checkpoint>> {
        let signer = self.signer().cloned().ok_or_else(no_key)?;
        let Some(head) = head else { return Ok(None) };
        if let Some(latest) = latest.filter(|l| l.seq >= head.seq) {
            return Ok(Some(latest));
        }
        let at = to_micros(self.clock().now());
        let msg = checkpoint_message(head.seq, &head.hash, at);
        let key_fingerprint = signer.fingerprint();
        let signature = tokio_blocking(move || signer.sign(&msg)).await?.map_err(Error::internal)?;
        let cp = Checkpoint { seq: head.seq, head_hash: head.hash, at, signature, key_fingerprint };
        let stored = self.store().insert_checkpoint(&cp).await.map_err(store_err)?;
        tracing::debug!(seq = stored.seq, "audit checkpoint");
        Ok(Some(stored))
    }

    /// What the background task calls: a checkpoint when `policy` says one is due.
    pub async fn checkpoint_if_due(&self, policy: &CheckpointPolicy) -> Result<Option<Checkpoint>> {
        let head = self.store().audit_head().await.map_err(store_err)?;
        let latest = self.store().latest_checkpoint().await.map_err(store_err)?;
        if policy.due(head.as_ref(), latest.as_ref(), self.clock().now()) {
            self.checkpoint_head(head, latest).await
        } else {
            Ok(None)
        }
    }

    /// A checkpoint on demand (a platform administrator, or the operator at the CLI).
    pub async fn create_checkpoint(&self, p: &Principal, ctx: &Ctx) -> Result<Checkpoint> {
        let auth = self.authorize(p, Action::CheckpointAudit, "audit", ctx).await?;
        let result = match self.checkpoint_audit().await {
            Ok(Some(cp)) => Ok(cp),
            Ok(None) => Err(Error::new(
                Code::InvalidRequest,
                "the audit log is empty: there is nothing to checkpoint",
                "审计日志为空，无需生成检查点",
            )),
            Err(e) => Err(e),
        };
        let detail = match &result {
            Ok(cp) => json!({"seq": cp.seq, "head": cp.head_hash, "key": cp.key_fingerprint}),
            Err(_) => serde_json::Value::Null,
        };
        self.finish(&auth, "audit", result, detail, ctx).await
    }

    /// The head and the newest checkpoint (platform administrators).
    pub async fn audit_status(&self, p: &Principal, ctx: &Ctx) -> Result<AuditStatus> {
        self.authorize(p, Action::ReadAudit, "audit.status", ctx).await?;
        Ok(AuditStatus {
            head: self.store().audit_head().await.map_err(store_err)?,
            latest_checkpoint: self.store().latest_checkpoint().await.map_err(store_err)?,
            key_fingerprint: self.signer().map(|s| s.fingerprint()),
        })
    }

    /// The audit page: entries (newest first) and the chain's status, under one
    /// authorization (one audit entry per view).
    pub async fn audit_page(&self, p: &Principal, q: &AuditQuery, ctx: &Ctx) -> Result<(Vec<AuditEvent>, AuditStatus)> {
        self.authorize(p, Action::ReadAudit, "audit", ctx).await?;
        let events = self.store().list_audit(q).await.map_err(store_err)?;
        let status = AuditStatus {
            head: self.store().audit_head().await.map_err(store_err)?,
            latest_checkpoint: self.store().latest_checkpoint().await.map_err(store_err)?,
            key_fingerprint: self.signer().map(|s| s.fingerprint()),
        };
        Ok((events, status))
    }

    /// The platform's public key (PEM), for anyone checking checkpoints or signatures.
    pub fn platform_public_key_pem(&self) -> Option<String> {
        self.signer().map(|s| s.public_key_pem())
    }

    /// Who read records about the signed-in citizen or enterprise (its own
    /// `subject_id` only), newest first.
    pub async fn my_accesses(&self, p: &Principal, limit: u32, ctx: &Ctx) -> Result<Vec<SubjectAccess>> {
        self.authorize(p, Action::ReadOwnAccesses, "audit.subject", ctx).await?;
        let subject = p.subject_id.as_deref().unwrap_or_default();
        let events = self.store().list_audit_for_subject(subject, limit.clamp(1, 1000)).await.map_err(store_err)?;
        Ok(events.iter().filter(|e| SubjectAccess::shown(e)).map(SubjectAccess::from_event).collect())
    }

    /// What happened to a dataset — deliveries, schema changes, and who read it — for
    /// the provider's staff (and platform administrators), newest first.
    pub async fn dataset_audit(&self, p: &Principal, code: &str, q: &AuditQuery, ctx: &Ctx) -> Result<Vec<AuditEvent>> {
        let d = self.load_dataset(code).await?;
        self.authorize(p, Action::ReadProviderData { provider: &d.provider }, code, ctx).await?;
        let q = AuditQuery { target: Some(d.code.as_str().to_string()), limit: q.limit.clamp(1, 1000), ..q.clone() };
        self.store().list_audit(&q).await.map_err(store_err)
    }
}
