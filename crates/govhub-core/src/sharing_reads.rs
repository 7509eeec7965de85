//! "Who read our data": the provider's view of the sharing API's reads of one of its
//! datasets (the `share.read` audit entries, allowed and refused).

use crate::authz::{Action, Principal};
use crate::error::Result;
use crate::model::{AuditEvent, AuditQuery};
use crate::service::{store_err, Ctx, Hub};

/// The audit action of a read through the sharing API.
pub const SHARE_READ_ACTION: &str = "share.read";

impl Hub {
    /// The newest `share.read` audit entries of a dataset, for the provider's data
    /// officers and approvers (and platform administrators, recorded as on behalf of
    /// the provider). The read itself is audited like every provider-data read.
    pub async fn dataset_reads(&self, p: &Principal, code: &str, limit: u32, ctx: &Ctx) -> Result<Vec<AuditEvent>> {
        let d = self.load_dataset(code).await?;
        let target = format!("{}/reads", d.code.as_str());
        self.authorize(p, Action::ReadProviderData { provider: &d.provider }, &target, ctx).await?;
        let q = AuditQuery {
            action_prefix: Some(SHARE_READ_ACTION.to_string()),
            target: Some(d.code.to_string()),
            limit: limit.clamp(1, 500),
            ..Default::default()
        };
        let mut events = self.store().list_audit(&q).await.map_err(store_err)?;
        // A prefix match: keep exactly this action.
        events.retain(|e| e.event.action == SHARE_READ_ACTION);
        Ok(events)
    }
}
