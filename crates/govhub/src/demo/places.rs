//! Changzhou's administrative divisions (GB/T 2260) and the street and town names the
//! generator builds addresses from. Division codes and names are public reference data;
//! house numbers, buildings and rooms are drawn at random, so no address is anybody's.

/// A current county-level division of Changzhou.
#[derive(Debug, PartialEq, Eq)]
pub struct District {
    /// GB/T 2260 code, e.g. `320402`.
    pub code: &'static str,
    /// Short name, e.g. `天宁区`.
    pub name: &'static str,
    /// Name as written at the start of an address, e.g. `常州市天宁区`.
    pub address_prefix: &'static str,
    /// Organisation code of the district government in [`super::orgs`].
    pub org: &'static str,
    /// Full name of the district government.
    pub government: &'static str,
    /// Relative population weight (≈ 10,000 residents with household registration).
    pub weight: u32,
    /// Urban streets and roads.
    pub streets: &'static [&'static str],
    /// Towns (镇) with villages, for rural addresses; empty for fully urban districts.
    pub towns: &'static [&'static str],
    /// Historical county code issued in ID numbers before a 2015 merger, and the share
    /// (per cent) of residents born before 2000 whose number carries it.
    pub historical: Option<(&'static str, u32)>,
}

pub const DISTRICTS: &[District] = &[
    District {
        code: "320402",
        name: "天宁区",
        address_prefix: "常州市天宁区",
        org: "cz-tianning",
        government: "常州市天宁区人民政府",
        weight: 48,
        streets: &[
            "青洋北路",
            "延陵中路",
            "和平北路",
            "关河东路",
            "劳动东路",
            "竹林西路",
            "红梅南路",
            "东横街",
            "丽华北路",
            "天宁寺路",
            "罗汉路",
            "紫云路",
        ],
        towns: &["郑陆镇"],
        historical: None,
    },
    District {
        code: "320404",
        name: "钟楼区",
        address_prefix: "常州市钟楼区",
        org: "cz-zhonglou",
        government: "常州市钟楼区人民政府",
        weight: 51,
        streets: &[
            "勤业路",
            "广化街",
            "西林路",
            "星港路",
            "怀德中路",
            "新闸路",
            "荷花池街",
            "清潭路",
            "西新桥路",
            "南大街",
            "吊桥路",
            "玉龙南路",
        ],
        towns: &["邹区镇"],
        historical: None,
    },
    District {
        code: "320411",
        name: "新北区",
        address_prefix: "常州市新北区",
        org: "cz-xinbei",
        government: "常州市新北区人民政府",
        weight: 68,
        streets: &[
            "太湖中路",
            "河海中路",
            "通江中路",
            "汉江路",
            "长江北路",
            "黄河西路",
            "衡山路",
            "华山路",
            "泰山路",
            "龙锦路",
            "锦绣路",
            "嫩江路",
        ],
        towns: &["罗溪镇", "孟河镇", "奔牛镇", "西夏墅镇", "薛家镇"],
        historical: None,
    },
    District {
        code: "320412",
        name: "武进区",
        address_prefix: "常州市武进区",
        org: "cz-wujin",
        government: "常州市武进区人民政府",
        weight: 112,
        streets: &[
            "延政中路",
            "花园街",
            "常武中路",
            "武宜中路",
            "长沟路",
            "阳湖路",
            "聚湖路",
            "滆湖路",
            "人民中路",
            "府南路",
            "东方东路",
            "丁堰大街",
        ],
        towns: &["湖塘镇", "牛塘镇", "洛阳镇", "雪堰镇", "前黄镇", "嘉泽镇", "礼嘉镇"],
        historical: Some(("320405", 12)),
    },
    District {
        code: "320413",
        name: "金坛区",
        address_prefix: "常州市金坛区",
        org: "cz-jintan",
        government: "常州市金坛区人民政府",
        weight: 45,
        streets: &[
            "东门大街",
            "南环一路",
            "金坛大道",
            "华城路",
            "西城大道",
            "愚池路",
            "北环东路",
            "丹阳门北路",
            "南洲路",
            "钱资湖大道",
        ],
        towns: &["薛埠镇", "直溪镇", "朱林镇", "指前镇", "儒林镇"],
        historical: Some(("320482", 70)),
    },
    District {
        code: "320481",
        name: "溧阳市",
        address_prefix: "溧阳市",
        org: "cz-liyang",
        government: "溧阳市人民政府",
        weight: 68,
        streets: &[
            "燕山中路",
            "平陵东路",
            "昆仑北路",
            "天目湖大道",
            "育才北路",
            "罗湾路",
            "南环东路",
            "东大街",
            "西大街",
            "新昌路",
        ],
        towns: &["天目湖镇", "社渚镇", "别桥镇", "上兴镇", "竹箦镇", "南渡镇"],
        historical: None,
    },
];

/// A GB/T 2260 division, current or abolished, as listed in the 行政区划 dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminDivision {
    pub code: &'static str,
    pub name: &'static str,
    /// 1 province, 2 prefecture, 3 county.
    pub level: u8,
    pub parent: Option<&'static str>,
    /// `现行` or `已撤销`.
    pub status: &'static str,
    /// Year the code was abolished.
    pub abolished: Option<u16>,
    /// Current code that took over an abolished one.
    pub successor: Option<&'static str>,
}

/// The rows of the 行政区划 dataset: Jiangsu, Changzhou, its current districts and the
/// two codes abolished in 2015 that still appear in issued ID numbers.
pub fn admin_divisions() -> Vec<AdminDivision> {
    let current = |code, name| AdminDivision {
        code,
        name,
        level: 3,
        parent: Some("320400"),
        status: "现行",
        abolished: None,
        successor: None,
    };
    vec![
        AdminDivision {
            code: "320000",
            name: "江苏省",
            level: 1,
            parent: None,
            status: "现行",
            abolished: None,
            successor: None,
        },
        AdminDivision {
            code: "320400",
            name: "常州市",
            level: 2,
            parent: Some("320000"),
            status: "现行",
            abolished: None,
            successor: None,
        },
        current("320402", "天宁区"),
        current("320404", "钟楼区"),
        AdminDivision {
            code: "320405",
            name: "戚墅堰区",
            level: 3,
            parent: Some("320400"),
            status: "已撤销",
            abolished: Some(2015),
            successor: Some("320412"),
        },
        current("320411", "新北区"),
        current("320412", "武进区"),
        current("320413", "金坛区"),
        current("320481", "溧阳市"),
        AdminDivision {
            code: "320482",
            name: "金坛市",
            level: 3,
            parent: Some("320400"),
            status: "已撤销",
            abolished: Some(2015),
            successor: Some("320413"),
        },
    ]
}

/// Residential compounds (小区) appended to some urban addresses.
pub const COMPOUNDS: &[&str] = &["花园", "新村", "家园", "公寓", "苑", "名邸", "雅园", "嘉园", "华庭", "世家"];

/// First characters of compound names.
pub const COMPOUND_STEMS: &[&str] = &[
    "紫薇", "丽华", "红梅", "青枫", "翠竹", "清潭", "东方", "金色", "锦绣", "兰陵", "星河", "龙城", "天宁", "湖塘",
    "江南", "新城", "阳光", "凤凰", "桃园", "荷园",
];

/// Industrial parks used in enterprise addresses, per district code.
pub const PARKS: &[(&str, &str)] = &[
    ("320402", "青龙科技园"),
    ("320404", "钟楼经济开发区"),
    ("320411", "常州国家高新区"),
    ("320411", "滨江经济开发区"),
    ("320412", "武进国家高新区"),
    ("320412", "常州经济开发区"),
    ("320413", "金坛经济开发区"),
    ("320413", "华罗庚高新区"),
    ("320481", "溧阳经济开发区"),
    ("320481", "中关村科技产业园"),
];
