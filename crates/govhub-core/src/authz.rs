//! Authorization: default deny. [`decide`] is a pure function of who is asking and
//! what they ask; [`crate::service::Hub::authorize`] records every decision in the
//! audit log and hands back an [`Authorized`] value, which is the only way to reach
//! the service methods that change or read protected data.

use crate::model::{Role, User};
use crate::names::OrgCode;
use serde::Serialize;

/// Who is acting: a signed-in user, or the operator at the CLI (`system`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Principal {
    pub user_id: Option<i64>,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub org: Option<OrgCode>,
    pub subject_id: Option<String>,
    /// Set when the caller is an application (an app token), not a person: the app's
    /// id. Only apps use the consumer (sharing) API.
    pub app: Option<i64>,
}

impl Principal {
    pub fn from_user(u: &User) -> Principal {
        Principal {
            user_id: Some(u.id),
            username: u.username.as_str().to_string(),
            display_name: u.display_name.clone(),
            role: u.role,
            org: u.org.clone(),
            subject_id: u.subject_id.clone(),
            app: None,
        }
    }

    /// The operator running an administrative CLI command on the server itself.
    pub fn system() -> Principal {
        Principal {
            user_id: None,
            username: "system".into(),
            display_name: "system".into(),
            role: Role::PlatformAdmin,
            org: None,
            subject_id: None,
            app: None,
        }
    }
}

/// Things one may ask to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action<'a> {
    CreateOrg,
    ReadOrgs,
    CreateUser {
        org: Option<&'a OrgCode>,
    },
    ReadUsers {
        org: Option<&'a OrgCode>,
    },
    /// Register a dataset or change its schema / metadata.
    ManageDataset {
        provider: &'a OrgCode,
    },
    ReadCatalog,
    ReadAudit,
    /// Deliver data into a dataset.
    Deliver {
        provider: &'a OrgCode,
    },
    /// Read a dataset's own records, deliveries and quarantine (the provider's view).
    ReadProviderData {
        provider: &'a OrgCode,
    },
    /// Maintain the sharing responsibility list.
    ManageResponsibilities,
    /// See delivery compliance (应归尽归).
    ReadCompliance,
    /// Register an organisation's apps and manage their tokens.
    ManageApps {
        org: &'a OrgCode,
    },
    /// Ask for access to a dataset for one of the organisation's apps.
    RequestAccess {
        org: &'a OrgCode,
    },
    /// Approve or refuse requests for a provider's datasets.
    DecideAccess {
        provider: &'a OrgCode,
    },
    /// See access requests and grants involving an organisation (as provider or as
    /// the requesting app's organisation).
    ReadSharing {
        org: &'a OrgCode,
    },
    /// Revoke a grant (the provider's approver, or the app's organisation giving it up).
    RevokeGrant {
        provider: &'a OrgCode,
        app_org: &'a OrgCode,
    },
    /// Maintain the working-day calendar.
    ManageCalendar,
    /// Read a dataset through the consumer API (apps only; the grant is checked on top).
    ReadShared,
    /// Make a signed audit checkpoint on demand.
    CheckpointAudit,
    /// See how the consumer API is used, by dataset and app (platform administrators).
    ReadUsage,
    /// See who read records about oneself (citizens, enterprises: their own
    /// `subject_id` only).
    ReadOwnAccesses,
    /// Define licence types (证照类型) for an authority.
    ManageLicenceTypes {
        authority: &'a OrgCode,
    },
    /// List the licence types.
    ReadLicenceTypes,
    /// Issue licences (and make the organisation's seal key on first need) as `issuer`.
    IssueLicence {
        issuer: &'a OrgCode,
    },
    /// Read a holder's licences: all of them (`issuer` None) or those one issuer issued.
    ReadLicences {
        holder: &'a str,
        issuer: Option<&'a OrgCode>,
    },
    /// Suspend, reinstate or revoke a licence `issuer` issued.
    ChangeLicenceStatus {
        issuer: &'a OrgCode,
    },
    /// Rotate or revoke an organisation's seal key.
    ManageSealKeys {
        org: &'a OrgCode,
    },
}

impl Action<'_> {
    /// Audit name of the action.
    pub fn name(&self) -> &'static str {
        match self {
            Action::CreateOrg => "org.create",
            Action::ReadOrgs => "org.read",
            Action::CreateUser { .. } => "user.create",
            Action::ReadUsers { .. } => "user.read",
            Action::ManageDataset { .. } => "dataset.manage",
            Action::ReadCatalog => "catalog.read",
            Action::ReadAudit => "audit.read",
            Action::Deliver { .. } => "delivery.create",
            Action::ReadProviderData { .. } => "records.read",
            Action::ManageResponsibilities => "responsibility.manage",
            Action::ReadCompliance => "compliance.read",
            Action::ManageApps { .. } => "app.manage",
            Action::RequestAccess { .. } => "access.request",
            Action::DecideAccess { .. } => "access.decide",
            Action::ReadSharing { .. } => "sharing.read",
            Action::RevokeGrant { .. } => "grant.revoke",
            Action::ManageCalendar => "calendar.manage",
            Action::ReadShared => "share.read",
            Action::CheckpointAudit => "audit.checkpoint",
            Action::ReadUsage => "usage.read",
            Action::ReadOwnAccesses => "audit.read_own",
            Action::ManageLicenceTypes { .. } => "licence_type.manage",
            Action::ReadLicenceTypes => "licence_type.read",
            Action::IssueLicence { .. } => "licence.issue",
            Action::ReadLicences { .. } => "licence.read",
            Action::ChangeLicenceStatus { .. } => "licence.status",
            Action::ManageSealKeys { .. } => "seal_key.manage",
        }
    }
}

/// The result of a decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Allowed. `on_behalf_of` is set when a platform admin acts for another
    /// organisation; that is recorded in the audit log.
    Allow {
        on_behalf_of: Option<OrgCode>,
    },
    Deny {
        reason_en: &'static str,
        reason_zh: &'static str,
    },
}

const NOT_ADMIN: Decision = Decision::Deny {
    reason_en: "only a platform administrator may do this",
    reason_zh: "仅平台管理员可执行此操作",
};

fn admin_for(p: &Principal, org: Option<&OrgCode>) -> Decision {
    let on_behalf_of = match org {
        Some(o) if p.org.as_ref() != Some(o) => Some(o.clone()),
        _ => None,
    };
    Decision::Allow { on_behalf_of }
}

/// Default deny: every rule that allows is written out here.
pub fn decide(p: &Principal, action: &Action<'_>) -> Decision {
    let admin = p.role == Role::PlatformAdmin && p.app.is_none();
    if p.app.is_some() && !matches!(action, Action::ReadShared | Action::ReadCatalog | Action::ReadOrgs) {
        return Decision::Deny {
            reason_en: "an application token only reads shared data; people manage apps, requests and grants",
            reason_zh: "应用令牌只能读取已授权共享的数据；应用、申请和授权须由人员管理",
        };
    }
    let own = |org: &OrgCode| p.org.as_ref() == Some(org);
    match action {
        Action::ManageCalendar => {
            if admin {
                Decision::Allow { on_behalf_of: None }
            } else {
                NOT_ADMIN
            }
        }
        Action::ManageApps { org } | Action::RequestAccess { org } => {
            if admin {
                admin_for(p, Some(org))
            } else if p.role == Role::AppDeveloper && own(org) {
                Decision::Allow { on_behalf_of: None }
            } else {
                Decision::Deny {
                    reason_en: "only the organisation's app developers (or a platform administrator) manage its apps and their access requests",
                    reason_zh: "仅本单位的应用开发人员（或平台管理员）可管理本单位应用及其数据申请",
                }
            }
        }
        Action::DecideAccess { provider } => {
            if admin {
                admin_for(p, Some(provider))
            } else if p.role == Role::Approver && own(provider) {
                Decision::Allow { on_behalf_of: None }
            } else {
                Decision::Deny {
                    reason_en: "only the providing organisation's approver decides on access to its data",
                    reason_zh: "仅数据提供单位的审批人可审批其数据的共享申请",
                }
            }
        }
        Action::ReadSharing { org } => {
            if admin {
                admin_for(p, Some(org))
            } else if matches!(p.role, Role::AppDeveloper | Role::Approver | Role::DataOfficer) && own(org) {
                Decision::Allow { on_behalf_of: None }
            } else {
                Decision::Deny {
                    reason_en: "sharing requests and grants are visible to the organisations involved",
                    reason_zh: "共享申请和授权仅对相关单位可见",
                }
            }
        }
        Action::RevokeGrant { provider, app_org } => {
            if admin {
                admin_for(p, Some(provider))
            } else if (p.role == Role::Approver && own(provider)) || (p.role == Role::AppDeveloper && own(app_org)) {
                Decision::Allow { on_behalf_of: None }
            } else {
                Decision::Deny {
                    reason_en: "a grant is revoked by the provider's approver or given up by the app's organisation",
                    reason_zh: "授权只能由数据提供单位审批人撤销，或由应用所属单位放弃",
                }
            }
        }
        Action::ReadShared => {
            if p.app.is_some() {
                Decision::Allow { on_behalf_of: None }
            } else {
                Decision::Deny {
                    reason_en: "the sharing API is for applications: use an app token (POST /api/v1/apps/{id}/tokens)",
                    reason_zh: "共享接口仅供应用调用，请使用应用令牌（POST /api/v1/apps/{id}/tokens）",
                }
            }
        }
        Action::CreateOrg
        | Action::ReadAudit
        | Action::ManageResponsibilities
        | Action::CheckpointAudit
        | Action::ReadUsage => {
            if admin {
                Decision::Allow { on_behalf_of: None }
            } else {
                NOT_ADMIN
            }
        }
        Action::CreateUser { org } | Action::ReadUsers { org } => {
            if admin {
                admin_for(p, *org)
            } else {
                NOT_ADMIN
            }
        }
        Action::ReadOrgs => Decision::Allow { on_behalf_of: None },
        Action::ReadLicenceTypes => Decision::Allow { on_behalf_of: None },
        Action::ManageLicenceTypes { authority } => {
            if admin {
                admin_for(p, Some(authority))
            } else if p.role == Role::DataOfficer && own(authority) {
                Decision::Allow { on_behalf_of: None }
            } else {
                Decision::Deny {
                    reason_en:
                        "licence types are defined by the authority's data officers (or a platform administrator)",
                    reason_zh: "证照类型仅可由主管单位的数据专员（或平台管理员）定义",
                }
            }
        }
        Action::IssueLicence { issuer } | Action::ChangeLicenceStatus { issuer } => {
            if admin {
                admin_for(p, Some(issuer))
            } else if matches!(p.role, Role::DataOfficer | Role::ServiceOfficer) && own(issuer) {
                Decision::Allow { on_behalf_of: None }
            } else {
                Decision::Deny {
                    reason_en: "only the issuing organisation's officers (or a platform administrator) issue its licences and change their status",
                    reason_zh: "仅发证单位的工作人员（或平台管理员）可签发证照或变更证照状态",
                }
            }
        }
        Action::ReadLicences { holder, issuer } => {
            let is_holder = p.subject_id.as_deref().is_some_and(|s| s.trim().eq_ignore_ascii_case(holder.trim()));
            let issuer_officer = issuer
                .is_some_and(|i| own(i) && matches!(p.role, Role::DataOfficer | Role::ServiceOfficer | Role::Approver));
            if admin {
                admin_for(p, *issuer)
            } else if is_holder || issuer_officer {
                Decision::Allow { on_behalf_of: None }
            } else {
                Decision::Deny {
                    reason_en: "a licence is visible to its holder, its issuer and platform administrators; other departments need a sharing grant, which licences do not offer yet",
                    reason_zh: "证照仅持证人、发证单位和平台管理员可查看；其他部门须经共享授权（证照共享授权尚未开放）",
                }
            }
        }
        Action::ManageSealKeys { .. } => {
            if admin {
                Decision::Allow { on_behalf_of: None }
            } else {
                NOT_ADMIN
            }
        }
        Action::ReadOwnAccesses => {
            if p.subject_id.as_deref().is_some_and(|s| !s.trim().is_empty()) {
                Decision::Allow { on_behalf_of: None }
            } else {
                Decision::Deny {
                    reason_en: "only a citizen or enterprise account with a registered ID number or USCC has a record of accesses to its data",
                    reason_zh: "仅登记了身份证号码或统一社会信用代码的个人或企业账号可查看本人数据的使用记录",
                }
            }
        }
        Action::Deliver { provider } => {
            if admin {
                admin_for(p, Some(provider))
            } else if p.role == Role::DataOfficer && p.org.as_ref() == Some(*provider) {
                Decision::Allow { on_behalf_of: None }
            } else {
                Decision::Deny {
                    reason_en: "only the provider's data officer (or a platform administrator) may deliver data into this dataset",
                    reason_zh: "仅数据提供单位的数据专员（或平台管理员）可向该数据集交付数据",
                }
            }
        }
        Action::ReadProviderData { provider } => {
            if admin {
                admin_for(p, Some(provider))
            } else if matches!(p.role, Role::DataOfficer | Role::Approver) && p.org.as_ref() == Some(*provider) {
                Decision::Allow { on_behalf_of: None }
            } else {
                Decision::Deny {
                    reason_en: "only the providing organisation's data officers and approvers read its records here; other departments use the sharing API with a grant",
                    reason_zh: "仅数据提供单位的数据专员和审批人可在此查看其数据；其他部门请通过共享接口申请授权后使用",
                }
            }
        }
        Action::ReadCompliance => {
            if p.role.is_government() {
                Decision::Allow { on_behalf_of: None }
            } else {
                Decision::Deny {
                    reason_en: "compliance is visible to government staff",
                    reason_zh: "归集情况仅对政务人员可见",
                }
            }
        }
        Action::ReadCatalog => {
            if p.role.is_government() {
                Decision::Allow { on_behalf_of: None }
            } else {
                Decision::Deny {
                    reason_en:
                        "the government data catalog is for government staff; the public uses the open-data portal",
                    reason_zh: "政务信息资源目录仅面向政务人员，公众请使用公共数据开放平台",
                }
            }
        }
        Action::ManageDataset { provider } => {
            if admin {
                admin_for(p, Some(provider))
            } else if p.role == Role::DataOfficer && p.org.as_ref() == Some(*provider) {
                Decision::Allow { on_behalf_of: None }
            } else if p.role == Role::DataOfficer {
                Decision::Deny {
                    reason_en: "a data officer may only manage datasets provided by their own organisation",
                    reason_zh: "部门数据专员只能管理本单位提供的数据集",
                }
            } else {
                Decision::Deny {
                    reason_en: "only the provider's data officer or a platform administrator may manage this dataset",
                    reason_zh: "仅数据提供单位的数据专员或平台管理员可管理该数据集",
                }
            }
        }
    }
}

/// Proof that a decision allowed an action. Only [`crate::service::Hub::authorize`]
/// constructs it.
#[derive(Debug, Clone)]
pub struct Authorized {
    pub(crate) principal: Principal,
    pub(crate) action: &'static str,
    pub(crate) on_behalf_of: Option<OrgCode>,
}

impl Authorized {
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
    pub fn on_behalf_of(&self) -> Option<&OrgCode> {
        self.on_behalf_of.as_ref()
    }
    pub fn action(&self) -> &'static str {
        self.action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, org: Option<&str>) -> Principal {
        Principal {
            user_id: Some(1),
            username: "u".into(),
            display_name: "u".into(),
            role,
            org: org.map(|o| OrgCode::parse(o).unwrap()),
            subject_id: None,
            app: None,
        }
    }

    #[test]
    fn default_deny_for_everyone_but_admin() {
        let gaj = OrgCode::parse("cz-gaj").unwrap();
        for role in Role::ALL {
            let p = user(*role, Some("cz-rsj"));
            let manage = decide(&p, &Action::ManageDataset { provider: &gaj });
            let create_org = decide(&p, &Action::CreateOrg);
            if *role == Role::PlatformAdmin {
                assert_eq!(manage, Decision::Allow { on_behalf_of: Some(gaj.clone()) });
                assert!(matches!(create_org, Decision::Allow { .. }));
            } else {
                assert!(matches!(manage, Decision::Deny { .. }), "{role:?}");
                assert!(matches!(create_org, Decision::Deny { .. }), "{role:?}");
            }
        }
    }

    #[test]
    fn officers_manage_only_their_own_org() {
        let gaj = OrgCode::parse("cz-gaj").unwrap();
        let own = user(Role::DataOfficer, Some("cz-gaj"));
        assert_eq!(decide(&own, &Action::ManageDataset { provider: &gaj }), Decision::Allow { on_behalf_of: None });
        let other = user(Role::DataOfficer, Some("cz-rsj"));
        assert!(matches!(decide(&other, &Action::ManageDataset { provider: &gaj }), Decision::Deny { .. }));
    }

    #[test]
    fn public_cannot_read_internal_catalog() {
        assert!(matches!(decide(&user(Role::Citizen, None), &Action::ReadCatalog), Decision::Deny { .. }));
        assert!(matches!(decide(&user(Role::Enterprise, None), &Action::ReadCatalog), Decision::Deny { .. }));
        assert!(matches!(decide(&user(Role::Approver, Some("x")), &Action::ReadCatalog), Decision::Allow { .. }));
    }
}
