//! The demo city's sharing (共享): a few apps of other departments and their access
//! requests in every state, so the approver's inbox, the app pages and the consumers
//! of a dataset have something to show. Plain data; `seed::ensure_demo_sharing` files
//! the requests through the real services (no token is issued: tokens are secrets).

use super::datasets::{BDCDJ, HJRK, QYDJ, QYYD, SBCB, YLJG};

/// An app of the demo: (organisation, name, the developer who registers it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoApp {
    pub org: &'static str,
    pub name: &'static str,
    pub developer: &'static str,
    /// Reads the demo citizen's record once its grants are in place (so the citizen
    /// sees who read their data).
    pub reads_demo_citizen: bool,
}

pub const APPS: &[DemoApp] = &[
    DemoApp { org: "cz-rsj", name: "社保待遇资格认证系统", developer: "rsj-dev", reads_demo_citizen: true },
    DemoApp { org: "cz-mzj", name: "最低生活保障核对系统", developer: "mzj-dev", reads_demo_citizen: false },
    DemoApp {
        org: "cz-scjgj", name: "企业信用监管协同系统", developer: "scjgj-dev", reads_demo_citizen: false
    },
];

/// What happens to a demo request after it is filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 无条件共享: granted at once by the platform.
    Automatic,
    /// Still waiting for the provider's approver.
    Pending,
    /// Approved by `approver`, with only `fields` (all asked for when `None`).
    Approved { approver: &'static str, fields: Option<&'static [&'static str]>, reason: &'static str },
    /// Refused by `approver`.
    Refused { approver: &'static str, reason: &'static str },
    /// Granted at once, then revoked by the provider's `approver`.
    Revoked { approver: &'static str, reason: &'static str },
}

/// A request of the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoRequest {
    /// Index into [`APPS`].
    pub app: usize,
    pub dataset: &'static str,
    pub fields: &'static [&'static str],
    pub clear_fields: &'static [&'static str],
    pub purpose: &'static str,
    pub legal_basis: &'static str,
    /// Filed this many days before the demo starts (injected clock).
    pub days_ago: i64,
    /// Length of the period asked for, in days from filing.
    pub days_valid: i64,
    pub outcome: Outcome,
}

pub const REQUESTS: &[DemoRequest] = &[
    DemoRequest {
        app: 0,
        dataset: HJRK,
        fields: &["sfzh", "xm", "xb", "csrq", "hjdz", "sjhm", "rkzt"],
        clear_fields: &[],
        purpose: "养老保险待遇领取资格认证：核验领取人身份与生存状态",
        legal_basis: "《中华人民共和国社会保险法》第七十三条；人社部《关于全面推行社会保险待遇资格认证工作的通知》",
        days_ago: 6,
        days_valid: 365,
        outcome: Outcome::Approved {
            approver: "gaj-approver",
            fields: Some(&["sfzh", "xm", "xb", "csrq", "rkzt"]),
            reason: "同意提供资格认证所需的身份和人口状态字段；户籍地址、手机号码不属最小必要范围，不予提供",
        },
    },
    DemoRequest {
        app: 0,
        dataset: QYDJ,
        fields: &["tyshxydm", "qymc", "qylx", "djzt", "clrq"],
        clear_fields: &[],
        purpose: "核对参保单位登记状态",
        legal_basis: "《社会保险费征缴暂行条例》第七条",
        days_ago: 30,
        days_valid: 730,
        outcome: Outcome::Automatic,
    },
    DemoRequest {
        app: 1,
        dataset: HJRK,
        fields: &["sfzh", "xm", "hjdz_qh", "hyzk", "rkzt", "sjhm"],
        clear_fields: &[],
        purpose: "最低生活保障申请家庭经济状况核对：核实申请人户籍、婚姻与人口状态",
        legal_basis: "《社会救助暂行办法》第十二条；《江苏省最低生活保障工作规程》",
        days_ago: 2,
        days_valid: 365,
        outcome: Outcome::Pending,
    },
    DemoRequest {
        app: 1,
        dataset: SBCB,
        fields: &["sfzh", "xm", "cbzt", "jfjs"],
        clear_fields: &[],
        purpose: "低保对象收入核对：比对参保与缴费基数",
        legal_basis: "《社会救助暂行办法》第十一条",
        days_ago: 20,
        days_valid: 365,
        outcome: Outcome::Pending,
    },
    DemoRequest {
        app: 1,
        dataset: BDCDJ,
        fields: &["qlrmc", "qlrzjhm", "zl", "jzmj", "qszt"],
        clear_fields: &["qlrzjhm", "zl"],
        purpose: "低保申请家庭房产核对",
        legal_basis: "《社会救助暂行办法》第十一条",
        days_ago: 12,
        days_valid: 1095,
        outcome: Outcome::Refused {
            approver: "zrzyj-approver",
            reason: "以明文获取权利人证件号码和房屋坐落超出核对所需；请改为脱敏方式、按户核对重新申请",
        },
    },
    DemoRequest {
        app: 2,
        dataset: YLJG,
        fields: &["tyshxydm", "jgmc", "jglb", "dz"],
        clear_fields: &[],
        purpose: "医疗机构信用监管协同",
        legal_basis: "《优化营商环境条例》第五十五条",
        days_ago: 40,
        days_valid: 365,
        outcome: Outcome::Revoked {
            approver: "wjw-approver",
            reason: "申请单位来函：该监管协同事项已移交市卫生健康委办理，依申请撤销授权",
        },
    },
    DemoRequest {
        app: 2,
        dataset: QYYD,
        fields: &["hh", "tjyf", "tyshxydm", "hm", "ydl"],
        clear_fields: &[],
        purpose: "企业经营异常监测：比对用电量与登记状态",
        legal_basis: "《企业信息公示暂行条例》第十四条",
        days_ago: 9,
        days_valid: 365,
        outcome: Outcome::Approved {
            approver: "gdgs-approver",
            fields: None,
            reason: "同意，用于经营异常监测，不得用于其他用途",
        },
    },
];
