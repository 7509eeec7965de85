//! The demo city's e-licences (电子证照): six licence types, each defined by the
//! authority that issues it in China, and the licences the demo issues with them.
//! Plain data; `seed::ensure_demo_licences` defines the types and issues, suspends and
//! revokes through the real services as each authority's officer.

use serde_json::{json, Value};

/// A licence type of the demo: its authority (organisation), the officer who defines it
/// and issues with it, its name, holder kind and type-specific fields.
#[derive(Debug, Clone)]
pub struct DemoLicenceType {
    /// Key used by [`super::licences`] callers to find the type again.
    pub key: &'static str,
    pub authority: &'static str,
    pub officer: &'static str,
    pub name: &'static str,
    /// `person` or `organisation`.
    pub holder_kind: &'static str,
    pub schema: Value,
}

pub const YYZZ: &str = "yyzz";
pub const SPJY: &str = "spjy";
pub const JZZ: &str = "jzz";
pub const SBK: &str = "sbk";
pub const PWXK: &str = "pwxk";
pub const CSYXZM: &str = "csyxzm";

/// The six licence types of the demo, authorities first by the order they appear.
pub fn licence_types() -> Vec<DemoLicenceType> {
    vec![
        DemoLicenceType {
            key: YYZZ,
            authority: "cz-scjgj",
            officer: "scjgj-officer",
            name: "营业执照",
            holder_kind: "organisation",
            schema: json!({"fields": [
                {"name": "lx", "title": "类型", "constraints": {"required": true}},
                {"name": "fddbr", "title": "法定代表人", "constraints": {"required": true}},
                {"name": "zczb", "title": "注册资本（万元）", "type": "integer", "constraints": {"required": true, "minimum": 0}},
                {"name": "clrq", "title": "成立日期", "type": "date", "constraints": {"required": true}},
                {"name": "zs", "title": "住所", "constraints": {"required": true}},
                {"name": "jyfw", "title": "经营范围", "constraints": {"required": true}}
            ]}),
        },
        DemoLicenceType {
            key: SPJY,
            authority: "cz-scjgj",
            officer: "scjgj-officer",
            name: "食品经营许可证",
            holder_kind: "organisation",
            schema: json!({"fields": [
                {"name": "xkzbh", "title": "许可证编号", "constraints": {"required": true, "pattern": "JY[0-9]{14}"}},
                {"name": "fddbr", "title": "法定代表人（负责人）", "constraints": {"required": true}},
                {"name": "jycs", "title": "经营场所", "constraints": {"required": true}},
                {"name": "ztyt", "title": "主体业态", "constraints": {"required": true, "enum": ["食品销售经营者", "餐饮服务经营者", "单位食堂"]}},
                {"name": "jyxm", "title": "经营项目", "constraints": {"required": true}}
            ]}),
        },
        DemoLicenceType {
            key: JZZ,
            authority: "cz-gaj",
            officer: "gaj-officer",
            name: "居住证",
            holder_kind: "person",
            schema: json!({"fields": [
                {"name": "xb", "title": "性别", "constraints": {"required": true, "enum": ["男", "女"]}},
                {"name": "csrq", "title": "出生日期", "type": "date", "constraints": {"required": true}},
                {"name": "hjdz", "title": "户籍地址", "constraints": {"required": true}},
                {"name": "jzdz", "title": "居住地址", "constraints": {"required": true}},
                {"name": "qzjg", "title": "签注机关"}
            ]}),
        },
        DemoLicenceType {
            key: SBK,
            authority: "cz-rsj",
            officer: "rsj-officer",
            name: "社会保障卡",
            holder_kind: "person",
            schema: json!({"fields": [
                {"name": "shbzhm", "title": "社会保障号码", "format": "id-number", "constraints": {"required": true}},
                {"name": "kh", "title": "卡号", "constraints": {"required": true, "pattern": "[A-Z][0-9]{8}"}},
                {"name": "xb", "title": "性别", "constraints": {"required": true, "enum": ["男", "女"]}},
                {"name": "fkrq", "title": "发卡日期", "type": "date", "constraints": {"required": true}}
            ]}),
        },
        DemoLicenceType {
            key: PWXK,
            authority: "cz-sthjj",
            officer: "sthjj-officer",
            name: "排污许可证",
            holder_kind: "organisation",
            schema: json!({"fields": [
                {"name": "xkzbh", "title": "证书编号", "constraints": {"required": true}},
                {"name": "hylb", "title": "行业类别", "constraints": {"required": true}},
                {"name": "scjycsdz", "title": "生产经营场所地址", "constraints": {"required": true}},
                {"name": "zywrwlb", "title": "主要污染物类别", "constraints": {"required": true}},
                {"name": "glfl", "title": "管理类别", "constraints": {"required": true, "enum": ["重点管理", "简化管理"]}}
            ]}),
        },
        DemoLicenceType {
            key: CSYXZM,
            authority: "cz-wjw",
            officer: "wjw-officer",
            name: "出生医学证明",
            holder_kind: "person",
            schema: json!({"fields": [
                {"name": "bh", "title": "出生医学证明编号", "constraints": {"required": true, "pattern": "[A-Z][0-9]{9}"}},
                {"name": "xb", "title": "性别", "constraints": {"required": true, "enum": ["男", "女"]}},
                {"name": "cssj", "title": "出生时间", "constraints": {"required": true}},
                {"name": "csdd", "title": "出生地点", "constraints": {"required": true}},
                {"name": "mqxm", "title": "母亲姓名", "constraints": {"required": true}},
                {"name": "mqsfzh", "title": "母亲有效身份证件号码", "format": "id-number", "constraints": {"required": true}},
                {"name": "fqxm", "title": "父亲姓名"},
                {"name": "jsjg", "title": "接生机构名称", "constraints": {"required": true}}
            ]}),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use govhub_core::schema::TableSchema;

    #[test]
    fn the_six_types_parse_and_name_real_authorities() {
        let types = licence_types();
        let names: Vec<&str> = types.iter().map(|t| t.name).collect();
        assert_eq!(names, ["营业执照", "食品经营许可证", "居住证", "社会保障卡", "排污许可证", "出生医学证明"]);
        let orgs = super::super::orgs();
        let accounts = super::super::accounts();
        for t in &types {
            assert!(orgs.iter().any(|o| o.code == t.authority), "{} has no org {}", t.name, t.authority);
            let officer = accounts.iter().find(|a| a.username == t.officer);
            assert_eq!(officer.and_then(|a| a.org), Some(t.authority), "{}: officer {}", t.name, t.officer);
            assert!(TableSchema::parse(&t.schema).is_ok(), "{}: {:?}", t.name, TableSchema::parse(&t.schema).err());
        }
    }
}
