//! The demo city: a deterministic, synthetic Changzhou (常州市, GB/T 2260 320400).
//!
//! * [`orgs`] — the city government, its data-owning departments, the power utility and
//!   the six districts, each with a GB 32100 code composed for the demo;
//! * [`accounts`] — one or more sign-in accounts per role, all with [`DEMO_PASSWORD`];
//! * [`datasets`] — the catalog with Frictionless Table Schemas, referenced datasets first;
//! * [`person`], [`enterprise`], [`sole_trader`] (and the batch forms [`people`],
//!   [`enterprises`], [`sole_traders`]) — synthetic records drawn from a seeded
//!   [`DemoRng`]: same seed, same records, byte for byte;
//! * [`deliveries`] — the rows of the demo datasets as lazily generated CSV streams for
//!   the delivery path, with a few deliberate bad rows for the quarantine, and
//!   [`population_csv`] for benchmarks.
//!
//! Nothing here is a real person's data: names, birth dates, sequence numbers, phone
//! numbers and house numbers are combined at random; only public reference data
//! (division codes, road names, government body names) is real.

// The record generators are used by the demo's data delivery, which is built on top
// of this module; until every caller exists some items are only used by the tests.
#![allow(dead_code)]

mod datasets;
mod fill;
pub mod licences;
mod names;
mod people;
mod places;
pub mod sharing;

// The module's public API; callers pick what they need.
#[allow(unused_imports)]
pub use datasets::*;
#[allow(unused_imports)]
pub use fill::{deliveries, population_csv, registered_enterprises, registered_people, DemoDelivery};
#[allow(unused_imports)]
pub use names::Industry;
#[allow(unused_imports)]
pub use people::{
    demo_citizen, demo_enterprise, enterprise, enterprises, people, person, person_in, sole_trader, sole_traders,
    DemoRng, Enterprise, Gender, Person, SoleTrader, DEMO_CITIZEN_NAME, DEMO_ENTERPRISE_NAME,
};
#[allow(unused_imports)]
pub use places::{admin_divisions, AdminDivision, District, DISTRICTS};

use govhub_core::input::{OrgInput, UserInput};
use govhub_core::standards::Uscc;

/// The password of every demo account: 9 characters with upper and lower case, a
/// digit and a symbol. Demo only — a real deployment creates its own users.
pub const DEMO_PASSWORD: &str = "Demo@2026";

/// The city's organisation code.
pub const CITY: &str = "cz";

/// Municipal bodies under the city: (code, full name, kind, USCC registration
/// department and type, organisation-code serial).
const DEPARTMENTS: &[(&str, &str, &str, char, char, u32)] = &[
    // 事业单位 (public institution) under the 机构编制 register: type 2.
    ("cz-dsj", "常州市大数据管理中心", "department", '1', '2', 1201),
    ("cz-zwfw", "常州市政务服务管理办公室", "department", '1', '1', 1102),
    ("cz-fgw", "常州市发展和改革委员会", "department", '1', '1', 1103),
    ("cz-gaj", "常州市公安局", "department", '1', '1', 1104),
    ("cz-mzj", "常州市民政局", "department", '1', '1', 1105),
    ("cz-rsj", "常州市人力资源和社会保障局", "department", '1', '1', 1106),
    ("cz-zrzyj", "常州市自然资源和规划局", "department", '1', '1', 1107),
    ("cz-sthjj", "常州市生态环境局", "department", '1', '1', 1108),
    ("cz-zjj", "常州市住房和城乡建设局", "department", '1', '1', 1109),
    ("cz-wjw", "常州市卫生健康委员会", "department", '1', '1', 1110),
    ("cz-scjgj", "常州市市场监督管理局", "department", '1', '1', 1111),
    ("cz-swj", "国家税务总局常州市税务局", "department", '1', '1', 1112),
    // The power utility is an enterprise branch (registration department 9, type 1).
    ("cz-gdgs", "国网江苏省电力有限公司常州供电分公司", "other", '9', '1', 1913),
];

/// A USCC for a demo organisation: the organisation-code body is `014` + a five-digit
/// serial, so every body is distinct and no real code is reused on purpose.
fn org_uscc(dept: char, kind: char, county: &str, serial: u32) -> Option<String> {
    Uscc::compose(dept, kind, county, &format!("014{serial:05}")).map(|u| u.to_string())
}

/// The organisations of the demo city, parents before children: the city, its
/// departments and utility, then the six districts.
pub fn orgs() -> Vec<OrgInput> {
    let mut out = vec![OrgInput {
        code: CITY.to_string(),
        name: "常州市人民政府".to_string(),
        parent: None,
        admin_code: Some("320400".to_string()),
        uscc: org_uscc('1', '1', "320400", 1001),
        kind: Some("city".to_string()),
    }];
    for &(code, name, kind, dept, org_kind, serial) in DEPARTMENTS {
        out.push(OrgInput {
            code: code.to_string(),
            name: name.to_string(),
            parent: Some(CITY.to_string()),
            admin_code: Some("320400".to_string()),
            uscc: org_uscc(dept, org_kind, "320400", serial),
            kind: Some(kind.to_string()),
        });
    }
    for (i, d) in (0u32..).zip(DISTRICTS) {
        out.push(OrgInput {
            code: d.org.to_string(),
            name: d.government.to_string(),
            parent: Some(CITY.to_string()),
            admin_code: Some(d.code.to_string()),
            uscc: org_uscc('1', '1', d.code, 2001 + i),
            kind: Some("district".to_string()),
        });
    }
    out
}

/// A sign-in account of the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoAccount {
    pub username: &'static str,
    pub password: &'static str,
    /// Wire name of the role, e.g. `data-officer`.
    pub role: &'static str,
    pub org: Option<&'static str>,
    pub display_name: &'static str,
    /// ID number of the citizen, USCC of the enterprise.
    pub subject_id: Option<String>,
}

impl DemoAccount {
    /// The account as a user-creation request.
    pub fn to_input(&self) -> UserInput {
        UserInput {
            username: self.username.to_string(),
            password: self.password.to_string(),
            role: self.role.to_string(),
            org: self.org.map(str::to_string),
            display_name: Some(self.display_name.to_string()),
            subject_id: self.subject_id.clone(),
        }
    }
}

/// Government staff accounts: (username, role, org, display name).
const STAFF: &[(&str, &str, &str, &str)] = &[
    ("admin", "platform-admin", "cz-dsj", "周立新"),
    ("dsj-officer", "data-officer", "cz-dsj", "恽晓峰"),
    ("gaj-officer", "data-officer", "cz-gaj", "陈国栋"),
    ("gaj-approver", "approver", "cz-gaj", "钱志华"),
    ("scjgj-officer", "data-officer", "cz-scjgj", "徐丽娟"),
    ("scjgj-approver", "approver", "cz-scjgj", "庄海燕"),
    ("rsj-officer", "data-officer", "cz-rsj", "蒋文斌"),
    ("rsj-approver", "approver", "cz-rsj", "汤建平"),
    ("rsj-dev", "app-developer", "cz-rsj", "顾晨阳"),
    ("mzj-officer", "data-officer", "cz-mzj", "陆婷婷"),
    ("mzj-approver", "approver", "cz-mzj", "吴秀芳"),
    ("wjw-officer", "data-officer", "cz-wjw", "沈思远"),
    ("wjw-approver", "approver", "cz-wjw", "华明"),
    ("zrzyj-officer", "data-officer", "cz-zrzyj", "薛凯"),
    ("zrzyj-approver", "approver", "cz-zrzyj", "盛丽萍"),
    ("sthjj-officer", "data-officer", "cz-sthjj", "潘浩"),
    ("fgw-officer", "data-officer", "cz-fgw", "冯志强"),
    ("swj-officer", "data-officer", "cz-swj", "许静"),
    ("zjj-officer", "data-officer", "cz-zjj", "朱俊杰"),
    ("gdgs-officer", "data-officer", "cz-gdgs", "孙磊"),
    ("gdgs-approver", "approver", "cz-gdgs", "邵雯"),
    ("sthjj-dev", "app-developer", "cz-sthjj", "史一鸣"),
    ("mzj-dev", "app-developer", "cz-mzj", "钱佳慧"),
    ("scjgj-dev", "app-developer", "cz-scjgj", "丁浩然"),
    ("zwfw-officer", "service-officer", "cz-zwfw", "沈佳怡"),
];

/// The demo's accounts: a platform admin, a data officer for every dataset provider,
/// approvers for the providers of conditionally shared data, app developers, a service
/// officer, the demo citizen and the demo enterprise. All use [`DEMO_PASSWORD`].
pub fn accounts() -> Vec<DemoAccount> {
    let mut out: Vec<DemoAccount> = STAFF
        .iter()
        .map(|&(username, role, org, display_name)| DemoAccount {
            username,
            password: DEMO_PASSWORD,
            role,
            org: Some(org),
            display_name,
            subject_id: None,
        })
        .collect();
    out.push(DemoAccount {
        username: "citizen",
        password: DEMO_PASSWORD,
        role: "citizen",
        org: None,
        display_name: DEMO_CITIZEN_NAME,
        subject_id: Some(demo_citizen().id_number.to_string()),
    });
    out.push(DemoAccount {
        username: "enterprise",
        password: DEMO_PASSWORD,
        role: "enterprise",
        org: None,
        display_name: DEMO_ENTERPRISE_NAME,
        subject_id: Some(demo_enterprise().uscc.to_string()),
    });
    out
}

#[cfg(test)]
mod tests;
