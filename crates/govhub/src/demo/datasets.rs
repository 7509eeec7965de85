//! The demo catalog: the datasets Changzhou's departments register, each with a
//! Frictionless Table Schema v2 using govhub's formats (`id-number`, `uscc`,
//! `admin-code`, `mobile`) and the `sensitive` marker on personal information.
//!
//! Datasets are listed so that every foreign key points at a dataset earlier in the
//! list: 行政区划 first, then the person and legal-person registers, then the rest.

use govhub_core::input::DatasetInput;
use serde_json::{json, Value};

/// 行政区划 (cz-dsj), referenced by every dataset that carries a division code.
pub const XZQH: &str = "dsj-xzqh";
/// 户籍人口 (cz-gaj).
pub const HJRK: &str = "gaj-hjrk";
/// 企业登记 (cz-scjgj).
pub const QYDJ: &str = "scjgj-qydj";
/// 个体工商户 (cz-scjgj).
pub const GTGSH: &str = "scjgj-gtgsh";
/// 社保参保 (cz-rsj).
pub const SBCB: &str = "rsj-sbcb";
/// 婚姻登记 (cz-mzj).
pub const HYDJ: &str = "mzj-hydj";
/// 最低生活保障 (cz-mzj).
pub const DBJZ: &str = "mzj-dbjz";
/// 出生医学证明 (cz-wjw).
pub const CSYXZM: &str = "wjw-csyxzm";
/// 医疗机构 (cz-wjw).
pub const YLJG: &str = "wjw-yljg";
/// 不动产登记 (cz-zrzyj).
pub const BDCDJ: &str = "zrzyj-bdcdj";
/// 企业用电 (cz-gdgs).
pub const QYYD: &str = "gdgs-qyyd";
/// 排污许可 (cz-sthjj).
pub const PWXK: &str = "sthjj-pwxk";
/// 纳税信用等级 (cz-swj).
pub const NSXYDJ: &str = "swj-nsxydj";
/// 纳税申报 (cz-swj), not shared.
pub const NSSB: &str = "swj-nssb";
/// 建筑工程施工许可 (cz-zjj).
pub const JZSGXK: &str = "zjj-jzsgxk";
/// 固定资产投资项目备案 (cz-fgw).
pub const TZXM: &str = "fgw-tzxm";

/// Catalog metadata of one entry; the schema is added by [`Entry::with`].
struct Entry {
    code: &'static str,
    name: &'static str,
    provider: &'static str,
    sharing: &'static str,
    open: &'static str,
    grade: &'static str,
    cycle: &'static str,
    category: &'static str,
    summary: &'static str,
    condition: Option<&'static str>,
    published: &'static str,
    tags: &'static [&'static str],
}

impl Entry {
    fn with(self, schema: Value) -> DatasetInput {
        DatasetInput {
            code: self.code.to_string(),
            name: self.name.to_string(),
            provider: self.provider.to_string(),
            sharing_class: self.sharing.to_string(),
            open_class: self.open.to_string(),
            grade: self.grade.to_string(),
            update_cycle: self.cycle.to_string(),
            schema,
            summary: Some(self.summary.to_string()),
            category: Some(self.category.to_string()),
            sharing_condition: self.condition.map(str::to_string),
            publish_date: Some(self.published.to_string()),
            tags: self.tags.iter().map(|t| (*t).to_string()).collect(),
        }
    }
}

/// A citizen identity number field (sensitive).
fn id_number(name: &str, title: &str, required: bool) -> Value {
    json!({"name": name, "title": title, "type": "string", "format": "id-number", "sensitive": true,
           "constraints": {"required": required}})
}

/// A unified social credit code field.
fn uscc(name: &str, title: &str, required: bool) -> Value {
    json!({"name": name, "title": title, "type": "string", "format": "uscc", "constraints": {"required": required}})
}

/// A GB/T 2260 division code field.
fn admin_code(name: &str, title: &str) -> Value {
    json!({"name": name, "title": title, "type": "string", "format": "admin-code",
           "constraints": {"required": true}})
}

/// A person's name (sensitive).
fn person_name(name: &str, title: &str, required: bool) -> Value {
    json!({"name": name, "title": title, "type": "string", "sensitive": true,
           "constraints": {"required": required, "maxLength": 50}})
}

fn text(name: &str, title: &str, max: u32, required: bool) -> Value {
    json!({"name": name, "title": title, "type": "string", "constraints": {"required": required, "maxLength": max}})
}

fn choice(name: &str, title: &str, values: &[&str]) -> Value {
    json!({"name": name, "title": title, "type": "string", "constraints": {"required": true, "enum": values}})
}

fn day(name: &str, title: &str, required: bool) -> Value {
    json!({"name": name, "title": title, "type": "date",
           "constraints": {"required": required, "minimum": "1900-01-01", "maximum": "2099-12-31"}})
}

fn fk(field: &str, resource: &str, target: &str) -> Value {
    json!({"fields": field, "reference": {"resource": resource, "fields": target}})
}

/// The demo catalog, referenced datasets first.
pub fn datasets() -> Vec<DatasetInput> {
    vec![
        xzqh(),
        hjrk(),
        qydj(),
        gtgsh(),
        sbcb(),
        hydj(),
        dbjz(),
        csyxzm(),
        yljg(),
        bdcdj(),
        qyyd(),
        pwxk(),
        nsxydj(),
        nssb(),
        jzsgxk(),
        tzxm(),
    ]
}

fn xzqh() -> DatasetInput {
    Entry {
        code: XZQH,
        name: "行政区划",
        provider: "cz-dsj",
        sharing: "无条件共享",
        open: "无条件开放",
        grade: "一般",
        cycle: "yearly",
        category: "基础信息/空间地理",
        summary:
            "常州市及所辖区（县级市）的GB/T 2260行政区划代码，含2015年撤销的戚墅堰区、金坛市历史代码，供各数据集引用。",
        condition: None,
        published: "2025-01-06",
        tags: &["行政区划", "空间地理", "基础库"],
    }
    .with(json!({
        "fields": [
            {"name": "code", "title": "行政区划代码", "type": "string", "format": "admin-code",
             "constraints": {"required": true}},
            text("name", "行政区划名称", 50, true),
            {"name": "level", "title": "级别", "type": "integer", "description": "1省级，2地级，3县级",
             "constraints": {"required": true, "enum": [1, 2, 3]}},
            {"name": "parent_code", "title": "上级行政区划代码", "type": "string", "format": "admin-code"},
            choice("status", "状态", &["现行", "已撤销"]),
            {"name": "abolished_year", "title": "撤销年份", "type": "year",
             "constraints": {"minimum": 1980, "maximum": 2100}},
            {"name": "successor_code", "title": "承继行政区划代码", "type": "string", "format": "admin-code"}
        ],
        "primaryKey": "code",
        "foreignKeys": [
            fk("parent_code", "", "code"),
            fk("successor_code", "", "code")
        ]
    }))
}

fn hjrk() -> DatasetInput {
    Entry {
        code: HJRK,
        name: "户籍人口",
        provider: "cz-gaj",
        sharing: "有条件共享",
        open: "不予开放",
        grade: "重要",
        cycle: "daily",
        category: "基础信息/人口",
        summary: "常州市户籍人口基本信息，包括身份号码、姓名、性别、民族、出生日期和户籍地址，是人口基础库的权威来源。",
        condition: Some(
            "仅限依法履行政务服务、社会保障、民政救助等职责时使用；按最小必要原则申请字段，经市公安局审核同意。",
        ),
        published: "2025-03-18",
        tags: &["人口", "户籍", "基础库"],
    }
    .with(json!({
        "fields": [
            id_number("sfzh", "公民身份号码", true),
            person_name("xm", "姓名", true),
            choice("xb", "性别", &["男", "女"]),
            {"name": "mz", "title": "民族", "type": "string",
             "constraints": {"required": true, "maxLength": 10, "pattern": "\\p{Han}{1,4}族"}},
            {"name": "csrq", "title": "出生日期", "type": "date",
             "constraints": {"required": true, "minimum": "1900-01-01"}},
            admin_code("hjdz_qh", "户籍地行政区划"),
            {"name": "hjdz", "title": "户籍地址", "type": "string", "sensitive": true,
             "constraints": {"required": true, "maxLength": 200}},
            {"name": "sjhm", "title": "手机号码", "type": "string", "format": "mobile", "sensitive": true},
            {"name": "hyzk", "title": "婚姻状况", "type": "string",
             "constraints": {"enum": ["未婚", "已婚", "离婚", "丧偶"]}},
            {"name": "rkzt", "title": "人口状态", "type": "string",
             "constraints": {"required": true, "enum": ["正常", "死亡", "迁出", "注销"]}},
            {"name": "gxsj", "title": "更新时间", "type": "datetime"}
        ],
        "primaryKey": "sfzh",
        "foreignKeys": [fk("hjdz_qh", XZQH, "code")]
    }))
}

fn qydj() -> DatasetInput {
    Entry {
        code: QYDJ,
        name: "企业登记",
        provider: "cz-scjgj",
        sharing: "无条件共享",
        open: "无条件开放",
        grade: "一般",
        cycle: "daily",
        category: "基础信息/法人",
        summary: "在常州市登记注册的企业的统一社会信用代码、名称、类型、法定代表人、注册资本、成立日期和登记状态，依法向社会公示。",
        condition: None,
        published: "2025-02-11",
        tags: &["法人", "市场主体", "基础库", "营商环境"],
    }
    .with(json!({
        "fields": [
            uscc("tyshxydm", "统一社会信用代码", true),
            text("qymc", "企业名称", 200, true),
            choice("qylx", "企业类型", &[
                "有限责任公司（自然人投资或控股）",
                "有限责任公司（自然人独资）",
                "有限责任公司（国有独资）",
                "有限责任公司（外商投资、非独资）",
                "股份有限公司（非上市）",
                "股份有限公司（上市）",
                "个人独资企业",
                "普通合伙企业",
                "有限合伙企业"
            ]),
            {"name": "fddbr", "title": "法定代表人", "type": "string",
             "description": "依《企业信息公示暂行条例》公示",
             "constraints": {"required": true, "maxLength": 50}},
            {"name": "zczb", "title": "注册资本（万元）", "type": "number",
             "constraints": {"minimum": 0, "maximum": 100000000}},
            day("clrq", "成立日期", true),
            admin_code("djjg_qh", "登记机关行政区划"),
            text("zs", "住所", 200, true),
            text("jyfw", "经营范围", 2000, false),
            {"name": "hyml", "title": "行业门类", "type": "string", "description": "GB/T 4754-2017门类代码",
             "constraints": {"required": true, "pattern": "[A-T]"}},
            text("hymc", "行业门类名称", 50, false),
            choice("djzt", "登记状态", &["存续", "在业", "迁出", "吊销", "注销"]),
            day("hzrq", "核准日期", false)
        ],
        "primaryKey": "tyshxydm",
        "foreignKeys": [fk("djjg_qh", XZQH, "code")]
    }))
}

fn gtgsh() -> DatasetInput {
    Entry {
        code: GTGSH,
        name: "个体工商户",
        provider: "cz-scjgj",
        sharing: "有条件共享",
        open: "有条件开放",
        grade: "一般",
        cycle: "daily",
        category: "基础信息/法人",
        summary: "常州市个体工商户的登记信息，含字号名称、经营者、经营场所、经营范围和登记状态；经营者身份信息按个人信息保护。",
        condition: Some("经营者身份号码、姓名仅向承担市场监管、税收征管、社会保障职责的部门共享；开放时仅开放字号名称、经营场所等公示信息。"),
        published: "2025-02-11",
        tags: &["法人", "市场主体", "个体工商户"],
    }
    .with(json!({
        "fields": [
            uscc("tyshxydm", "统一社会信用代码", true),
            text("zhmc", "字号名称", 200, true),
            person_name("jyzxm", "经营者姓名", true),
            id_number("jyzsfzh", "经营者身份号码", true),
            choice("zcxs", "组成形式", &["个人经营", "家庭经营"]),
            {"name": "zjse", "title": "资金数额（万元）", "type": "number",
             "constraints": {"minimum": 0, "maximum": 10000}},
            day("zcrq", "注册日期", true),
            admin_code("djjg_qh", "登记机关行政区划"),
            text("jycs", "经营场所", 200, true),
            text("jyfw", "经营范围", 1000, false),
            {"name": "hyml", "title": "行业门类", "type": "string", "constraints": {"pattern": "[A-T]"}},
            choice("djzt", "登记状态", &["存续", "注销"])
        ],
        "primaryKey": "tyshxydm",
        "foreignKeys": [fk("jyzsfzh", HJRK, "sfzh"), fk("djjg_qh", XZQH, "code")]
    }))
}

fn sbcb() -> DatasetInput {
    Entry {
        code: SBCB,
        name: "社保参保",
        provider: "cz-rsj",
        sharing: "有条件共享",
        open: "不予开放",
        grade: "重要",
        cycle: "monthly",
        category: "民生服务/社会保障",
        summary: "常州市参加基本养老、基本医疗、失业、工伤保险人员的参保险种、参保单位、参保状态和缴费情况。",
        condition: Some("用于就业创业补贴、人才政策兑现、社会救助核对等；缴费基数仅在审批的用途范围内明文提供。"),
        published: "2025-04-07",
        tags: &["社保", "民生", "就业"],
    }
    .with(json!({
        "fields": [
            id_number("sfzh", "公民身份号码", true),
            person_name("xm", "姓名", true),
            choice("xzlx", "险种类型", &[
                "企业职工基本养老保险",
                "城乡居民基本养老保险",
                "职工基本医疗保险",
                "城乡居民基本医疗保险",
                "失业保险",
                "工伤保险"
            ]),
            uscc("cbdw_tyshxydm", "参保单位统一社会信用代码", false),
            text("cbdwmc", "参保单位名称", 200, false),
            choice("cbzt", "参保状态", &["正常参保", "暂停缴费", "终止参保"]),
            day("cbrq", "参保日期", true),
            {"name": "jfjs", "title": "缴费基数（元/月）", "type": "number", "sensitive": true,
             "constraints": {"minimum": 0, "maximum": 100000}},
            {"name": "ljjfys", "title": "累计缴费月数", "type": "integer",
             "constraints": {"minimum": 0, "maximum": 720}},
            admin_code("cbd_qh", "参保地行政区划")
        ],
        "primaryKey": ["sfzh", "xzlx"],
        "foreignKeys": [fk("sfzh", HJRK, "sfzh"), fk("cbd_qh", XZQH, "code")]
    }))
}

fn hydj() -> DatasetInput {
    Entry {
        code: HYDJ,
        name: "婚姻登记",
        provider: "cz-mzj",
        sharing: "有条件共享",
        open: "不予开放",
        grade: "重要",
        cycle: "daily",
        category: "民生服务/婚姻家庭",
        summary: "常州市各婚姻登记机关办理的结婚、离婚及补领登记记录，用于购房资格、生育登记、户籍迁移等事项免提交婚姻证明。",
        condition: Some("限婚姻状况核验类用途，按申请事项返回所需字段；当事人身份号码脱敏提供。"),
        published: "2025-05-20",
        tags: &["婚姻", "民生", "人口"],
    }
    .with(json!({
        "fields": [
            {"name": "djzh", "title": "登记证字号", "type": "string",
             "description": "如J320402-2024-001234",
             "constraints": {"required": true, "pattern": "[JLBC]32[0-9]{4}-[0-9]{4}-[0-9]{6}"}},
            choice("ywlx", "业务类型", &["结婚登记", "离婚登记", "补领结婚证", "补领离婚证", "撤销婚姻"]),
            person_name("nfxm", "男方姓名", true),
            id_number("nfsfzh", "男方身份号码", true),
            person_name("nvxm", "女方姓名", true),
            id_number("nvsfzh", "女方身份号码", true),
            day("djrq", "登记日期", true),
            text("djjg", "登记机关", 100, true),
            admin_code("djjg_qh", "登记机关行政区划")
        ],
        "primaryKey": "djzh",
        "foreignKeys": [fk("djjg_qh", XZQH, "code")]
    }))
}

fn dbjz() -> DatasetInput {
    Entry {
        code: DBJZ,
        name: "最低生活保障对象",
        provider: "cz-mzj",
        sharing: "有条件共享",
        open: "不予开放",
        grade: "重要",
        cycle: "monthly",
        category: "民生服务/社会救助",
        summary: "常州市城乡最低生活保障对象的保障类别、家庭人口、保障金额和起止时间，用于水电费减免、教育资助等惠民政策主动推送。",
        condition: Some("仅用于社会救助与惠民政策精准推送；不得用于其他目的，保障金额不对外提供。"),
        published: "2025-06-03",
        tags: &["社会救助", "民生", "低保"],
    }
    .with(json!({
        "fields": [
            id_number("sfzh", "申请人身份号码", true),
            person_name("xm", "申请人姓名", true),
            choice("bzlb", "保障类别", &["城市低保", "农村低保"]),
            {"name": "jtrks", "title": "家庭保障人口数", "type": "integer",
             "constraints": {"required": true, "minimum": 1, "maximum": 20}},
            {"name": "bzje", "title": "月保障金额（元）", "type": "number", "sensitive": true,
             "constraints": {"required": true, "minimum": 0, "maximum": 50000}},
            {"name": "ksny", "title": "开始年月", "type": "yearmonth", "constraints": {"required": true}},
            {"name": "jsny", "title": "终止年月", "type": "yearmonth"},
            choice("zt", "保障状态", &["在保", "停保"]),
            admin_code("qh", "所属行政区划")
        ],
        "primaryKey": "sfzh",
        "foreignKeys": [fk("sfzh", HJRK, "sfzh"), fk("qh", XZQH, "code")]
    }))
}

fn csyxzm() -> DatasetInput {
    Entry {
        code: CSYXZM,
        name: "出生医学证明",
        provider: "cz-wjw",
        sharing: "有条件共享",
        open: "不予开放",
        grade: "重要",
        cycle: "daily",
        category: "民生服务/卫生健康",
        summary: "常州市助产机构签发的出生医学证明信息，支撑“出生一件事”联办：户口登记、医保参保、社保卡申领无需再交纸质证明。",
        condition: Some("仅用于“出生一件事”联办及妇幼保健管理；新生儿健康信息仅向卫生健康部门共享。"),
        published: "2025-07-15",
        tags: &["出生", "卫生健康", "一件事", "人口"],
    }
    .with(json!({
        "fields": [
            {"name": "zmbh", "title": "出生医学证明编号", "type": "string",
             "constraints": {"required": true, "pattern": "[A-Z][0-9]{9}"}},
            person_name("xsexm", "新生儿姓名", true),
            choice("xsexb", "新生儿性别", &["男", "女"]),
            {"name": "cssj", "title": "出生时间", "type": "datetime", "constraints": {"required": true}},
            {"name": "csyz", "title": "出生孕周", "type": "integer", "sensitive": true,
             "constraints": {"minimum": 20, "maximum": 45}},
            {"name": "cstz", "title": "出生体重（克）", "type": "integer", "sensitive": true,
             "constraints": {"minimum": 300, "maximum": 7000}},
            {"name": "cssc", "title": "出生身长（厘米）", "type": "number", "sensitive": true,
             "constraints": {"minimum": 20, "maximum": 70}},
            text("jsjg", "接生机构", 100, true),
            person_name("mqxm", "母亲姓名", true),
            id_number("mqsfzh", "母亲身份号码", true),
            person_name("fqxm", "父亲姓名", false),
            id_number("fqsfzh", "父亲身份号码", false),
            day("qfrq", "签发日期", true),
            admin_code("csd_qh", "出生地行政区划")
        ],
        "primaryKey": "zmbh",
        "foreignKeys": [fk("csd_qh", XZQH, "code")]
    }))
}

fn yljg() -> DatasetInput {
    Entry {
        code: YLJG,
        name: "医疗机构",
        provider: "cz-wjw",
        sharing: "无条件共享",
        open: "无条件开放",
        grade: "一般",
        cycle: "quarterly",
        category: "民生服务/卫生健康",
        summary: "常州市取得执业许可或备案的医疗机构名称、类别、等级、床位数、地址和坐标，可用于就医导航类应用。",
        condition: None,
        published: "2025-09-01",
        tags: &["医疗", "卫生健康", "民生", "地图"],
    }
    .with(json!({
        "fields": [
            uscc("tyshxydm", "统一社会信用代码", true),
            text("jgmc", "机构名称", 200, true),
            choice("jglb", "机构类别", &[
                "综合医院", "中医医院", "专科医院", "妇幼保健院", "社区卫生服务中心", "乡镇卫生院", "门诊部", "诊所"
            ]),
            choice("jgdj", "医院等级", &["三级甲等", "三级乙等", "二级甲等", "二级乙等", "一级", "未定级"]),
            {"name": "cws", "title": "核定床位数", "type": "integer",
             "constraints": {"minimum": 0, "maximum": 10000}},
            text("dz", "地址", 200, true),
            {"name": "lxdh", "title": "联系电话", "type": "string",
             "constraints": {"pattern": "0519-[0-9]{8}|1[3-9][0-9]{9}"}},
            {"name": "zb", "title": "坐标（经度,纬度）", "type": "geopoint"},
            admin_code("qh", "所在行政区划")
        ],
        "primaryKey": "tyshxydm",
        "foreignKeys": [fk("qh", XZQH, "code")]
    }))
}

fn bdcdj() -> DatasetInput {
    Entry {
        code: BDCDJ,
        name: "不动产登记",
        provider: "cz-zrzyj",
        sharing: "有条件共享",
        open: "不予开放",
        grade: "重要",
        cycle: "daily",
        category: "基础信息/空间地理",
        summary: "常州市不动产权利登记信息，含不动产单元号、权证号、权利人、坐落、用途和面积，支撑“不动产+”水电气网联动过户。",
        condition: Some("依《不动产登记暂行条例》第二十七条，仅限有关国家机关依法查询、复制；需注明法定职责依据。"),
        published: "2025-08-12",
        tags: &["不动产", "自然资源", "住房"],
    }
    .with(json!({
        "fields": [
            {"name": "bdcqzh", "title": "不动产权证号", "type": "string",
             "description": "如苏（2025）常州市不动产权第0012345号",
             "constraints": {"required": true, "maxLength": 60,
                             "pattern": "苏（[0-9]{4}）\\p{Han}{2,4}不动产权第[0-9]{7}号"}},
            {"name": "bdcdyh", "title": "不动产单元号", "type": "string",
             "description": "28位：县级区划6位+地籍区3位+地籍子区3位+宗地特征码2位+宗地顺序号5位+定着物特征码1位+定着物单元号8位",
             "constraints": {"required": true, "pattern": "[0-9]{12}[A-Z]{2}[0-9]{5}[FLQW][0-9]{8}"}},
            {"name": "qlrmc", "title": "权利人名称", "type": "string", "sensitive": true,
             "constraints": {"required": true, "maxLength": 200}},
            choice("qlrzjlx", "权利人证件类型", &["居民身份证", "统一社会信用代码", "护照", "港澳台居民居住证", "其他"]),
            {"name": "qlrzjhm", "title": "权利人证件号码", "type": "string", "sensitive": true,
             "constraints": {"required": true, "maxLength": 30}},
            {"name": "zl", "title": "坐落", "type": "string", "sensitive": true,
             "constraints": {"required": true, "maxLength": 200}},
            choice("yt", "用途", &["住宅", "商业", "办公", "工业", "仓储", "其他"]),
            choice("qlxz", "权利性质", &["市场化商品房", "房改房", "经济适用住房", "自建房", "出让", "划拨"]),
            choice("gyfs", "共有方式", &["单独所有", "共同共有", "按份共有"]),
            {"name": "jzmj", "title": "建筑面积（平方米）", "type": "number",
             "constraints": {"minimum": 0, "maximum": 1000000}},
            choice("djlx", "登记类型", &["首次登记", "转移登记", "变更登记", "更正登记", "注销登记"]),
            day("djsj", "登记日期", true),
            choice("qszt", "权属状态", &["现势", "历史", "注销"]),
            admin_code("qh", "所在行政区划")
        ],
        "primaryKey": "bdcqzh",
        "foreignKeys": [fk("qh", XZQH, "code")]
    }))
}

fn qyyd() -> DatasetInput {
    Entry {
        code: QYYD,
        name: "企业用电",
        provider: "cz-gdgs",
        sharing: "有条件共享",
        open: "不予开放",
        grade: "一般",
        cycle: "monthly",
        category: "经济运行/能源",
        summary: "常州市工商业用电户的月度用电量、用电类别和合同容量，用于经济运行监测及与排污许可等数据碰撞比对。",
        condition: Some("用于经济运行分析、环保执法线索比对和惠企政策测算，不得用于商业目的。"),
        published: "2025-10-09",
        tags: &["用电", "能源", "经济运行", "数据比对"],
    }
    .with(json!({
        "fields": [
            {"name": "hh", "title": "用电户号", "type": "string",
             "constraints": {"required": true, "pattern": "[0-9]{10}"}},
            {"name": "tjyf", "title": "统计月份", "type": "yearmonth",
             "constraints": {"required": true, "minimum": "2015-01"}},
            uscc("tyshxydm", "统一社会信用代码", true),
            text("hm", "户名", 200, true),
            text("yddz", "用电地址", 200, true),
            choice("ydlb", "用电类别", &["大工业用电", "一般工商业用电", "农业生产用电"]),
            {"name": "htrl", "title": "合同容量（千伏安）", "type": "number",
             "constraints": {"minimum": 0, "maximum": 1000000}},
            {"name": "ydl", "title": "用电量（千瓦时）", "type": "number",
             "constraints": {"required": true, "minimum": 0}},
            admin_code("qh", "所在行政区划")
        ],
        "primaryKey": ["hh", "tjyf"],
        "foreignKeys": [fk("tyshxydm", QYDJ, "tyshxydm"), fk("qh", XZQH, "code")]
    }))
}

fn pwxk() -> DatasetInput {
    Entry {
        code: PWXK,
        name: "排污许可",
        provider: "cz-sthjj",
        sharing: "无条件共享",
        open: "无条件开放",
        grade: "一般",
        cycle: "daily",
        category: "生态环境/污染防治",
        summary: "常州市排污单位的排污许可证编号、管理类别、行业类别、主要污染物和有效期，依《排污许可管理条例》向社会公开。",
        condition: None,
        published: "2025-06-26",
        tags: &["环保", "排污许可", "生态环境"],
    }
    .with(json!({
        "fields": [
            {"name": "xkzbh", "title": "许可证编号", "type": "string",
             "description": "统一社会信用代码+3位顺序码+1位类别码",
             "constraints": {"required": true, "pattern": "[0-9A-HJ-NPQRTUWXY]{18}[0-9]{3}[A-Z]"}},
            uscc("tyshxydm", "统一社会信用代码", true),
            text("dwmc", "单位名称", 200, true),
            text("hylb", "行业类别", 100, true),
            choice("glfl", "管理类别", &["重点管理", "简化管理", "登记管理"]),
            {"name": "zywrwzl", "title": "主要污染物种类", "type": "string",
             "constraints": {"maxLength": 200}, "example": "颗粒物,二氧化硫,氮氧化物,化学需氧量,氨氮"},
            day("yxqq", "有效期起", true),
            day("yxqz", "有效期止", true),
            day("fzrq", "发证日期", true),
            choice("zt", "许可证状态", &["有效", "过期", "注销", "撤销"]),
            admin_code("qh", "所在行政区划")
        ],
        "primaryKey": "xkzbh",
        "foreignKeys": [fk("tyshxydm", QYDJ, "tyshxydm"), fk("qh", XZQH, "code")]
    }))
}

fn nsxydj() -> DatasetInput {
    Entry {
        code: NSXYDJ,
        name: "纳税信用等级",
        provider: "cz-swj",
        sharing: "无条件共享",
        open: "有条件开放",
        grade: "一般",
        cycle: "yearly",
        category: "信用信息/纳税信用",
        summary: "常州市企业纳税人的年度纳税信用评价等级（A、B、M、C、D），用于信用分级分类监管和“银税互动”融资；向社会开放的仅为A级纳税人名单。",
        condition: None,
        published: "2026-04-20",
        tags: &["信用", "税务", "法人", "营商环境"],
    }
    .with(json!({
        "fields": [
            uscc("nsrsbh", "纳税人识别号（统一社会信用代码）", true),
            {"name": "pjnd", "title": "评价年度", "type": "year",
             "constraints": {"required": true, "minimum": 2014, "maximum": 2100}},
            text("nsrmc", "纳税人名称", 200, true),
            choice("xydj", "信用等级", &["A", "B", "M", "C", "D"]),
            text("zgswjg", "主管税务机关", 100, true)
        ],
        "primaryKey": ["nsrsbh", "pjnd"],
        "foreignKeys": [fk("nsrsbh", QYDJ, "tyshxydm")]
    }))
}

fn nssb() -> DatasetInput {
    Entry {
        code: NSSB,
        name: "纳税申报明细",
        provider: "cz-swj",
        sharing: "不予共享",
        open: "不予开放",
        grade: "重要",
        cycle: "monthly",
        category: "经济运行/税收",
        summary: "企业纳税人按征收项目的申报税额明细。属涉税保密信息，仅登记目录，供各部门了解数据存在及申请途径。",
        condition: Some(
            "《中华人民共和国税收征收管理法》第八条、《中华人民共和国税收征收管理法实施细则》第五条及《纳税人涉税保密信息管理暂行办法》（国税发〔2008〕93号）：纳税人的商业秘密及个人隐私属于涉税保密信息，除法律另有规定外不予共享；确需使用的，按法律规定以个案协查方式办理。",
        ),
        published: "2025-11-03",
        tags: &["税务", "涉税保密"],
    }
    .with(json!({
        "fields": [
            {"name": "sbxh", "title": "申报序号", "type": "string",
             "constraints": {"required": true, "pattern": "[0-9]{20}"}},
            uscc("nsrsbh", "纳税人识别号", true),
            choice("zsxm", "征收项目", &[
                "增值税", "企业所得税", "个人所得税", "消费税", "城市维护建设税", "房产税", "城镇土地使用税", "印花税"
            ]),
            day("sssqq", "所属期起", true),
            day("sssqz", "所属期止", true),
            {"name": "ynse", "title": "应纳税额（元）", "type": "number", "constraints": {"required": true}},
            {"name": "sbrq", "title": "申报日期", "type": "date", "constraints": {"required": true}}
        ],
        "primaryKey": "sbxh",
        "foreignKeys": [fk("nsrsbh", QYDJ, "tyshxydm")]
    }))
}

fn jzsgxk() -> DatasetInput {
    Entry {
        code: JZSGXK,
        name: "建筑工程施工许可",
        provider: "cz-zjj",
        sharing: "无条件共享",
        open: "无条件开放",
        grade: "一般",
        cycle: "weekly",
        category: "城乡建设/建筑市场",
        summary: "常州市核发的建筑工程施工许可证信息，含项目名称、建设单位、施工单位、合同价格、建设规模和计划工期。",
        condition: None,
        published: "2026-01-15",
        tags: &["住房城乡建设", "施工许可", "工程项目"],
    }
    .with(json!({
        "fields": [
            {"name": "sgxkzbh", "title": "施工许可证编号", "type": "string",
             "constraints": {"required": true, "pattern": "32[0-9]{16}"}},
            text("xmmc", "项目名称", 200, true),
            text("jsdw", "建设单位", 200, true),
            uscc("jsdw_tyshxydm", "建设单位统一社会信用代码", true),
            text("sgdw", "施工单位", 200, true),
            uscc("sgdw_tyshxydm", "施工单位统一社会信用代码", true),
            text("jsdz", "建设地址", 200, true),
            {"name": "htjg", "title": "合同价格（万元）", "type": "number",
             "constraints": {"minimum": 0, "maximum": 10000000}},
            {"name": "jsgm", "title": "建设规模（平方米）", "type": "number",
             "constraints": {"minimum": 0, "maximum": 10000000}},
            day("jhkgrq", "计划开工日期", false),
            day("jhjgrq", "计划竣工日期", false),
            day("fzrq", "发证日期", true),
            admin_code("qh", "项目所在行政区划")
        ],
        "primaryKey": "sgxkzbh",
        "foreignKeys": [fk("sgdw_tyshxydm", QYDJ, "tyshxydm"), fk("qh", XZQH, "code")]
    }))
}

fn tzxm() -> DatasetInput {
    Entry {
        code: TZXM,
        name: "固定资产投资项目备案",
        provider: "cz-fgw",
        sharing: "无条件共享",
        open: "有条件开放",
        grade: "一般",
        cycle: "daily",
        category: "经济运行/投资",
        summary: "通过投资项目在线审批监管平台备案的企业投资项目，含项目代码、项目单位、建设地点、总投资和建设内容。",
        condition: None,
        published: "2026-02-09",
        tags: &["投资项目", "发展改革", "营商环境"],
    }
    .with(json!({
        "fields": [
            {"name": "xmdm", "title": "项目代码", "type": "string",
             "description": "年份-行政区划-行业代码-项目类型-流水号，如2025-320411-34-03-123456",
             "constraints": {"required": true, "pattern": "[0-9]{4}-[0-9]{6}-[0-9]{2}-[0-9]{2}-[0-9]{6}"}},
            text("xmmc", "项目名称", 200, true),
            text("xmdw", "项目单位", 200, true),
            uscc("xmdw_tyshxydm", "项目单位统一社会信用代码", true),
            text("jsdd", "建设地点", 200, true),
            {"name": "ztz", "title": "总投资（万元）", "type": "number",
             "constraints": {"required": true, "minimum": 0}},
            text("jsnr", "建设规模及内容", 2000, false),
            text("hy", "所属行业", 100, false),
            {"name": "basj", "title": "备案时间", "type": "datetime", "constraints": {"required": true}},
            admin_code("qh", "建设地点行政区划")
        ],
        "primaryKey": "xmdm",
        "foreignKeys": [fk("xmdw_tyshxydm", QYDJ, "tyshxydm"), fk("qh", XZQH, "code")]
    }))
}
