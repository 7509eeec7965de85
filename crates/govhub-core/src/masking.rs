//! Masking of sensitive fields (`sensitive: true` in the table schema) for consumers
//! whose grant does not allow clear text. One rule per kind of value, so the same value
//! looks the same in records, exports and change feeds:
//!
//! | kind | rule | example |
//! |---|---|---|
//! | ID number (`format: id-number`) | first 6 and last 4 kept | `320402********1235` |
//! | mobile (`format: mobile`) | first 3 and last 4 kept | `138****5678` |
//! | person name (姓名 / `xm` / `name`) | surname kept (compound surnames too) | `张*`, `欧阳*` |
//! | address (地址 / 住址 / `*dz`) | cut after the district or county | `常州市天宁区****` |
//! | anything else | a little kept at both ends | `ab****yz` |

use crate::cells::Cell;
use crate::schema::Field;

/// How a field's values are masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskRule {
    IdNumber,
    Mobile,
    PersonName,
    Address,
    Generic,
}

impl MaskRule {
    pub fn as_str(self) -> &'static str {
        match self {
            MaskRule::IdNumber => "id-number",
            MaskRule::Mobile => "mobile",
            MaskRule::PersonName => "name",
            MaskRule::Address => "address",
            MaskRule::Generic => "generic",
        }
    }
}

/// The rule for a field, from its format, then its title, then its name.
pub fn rule_for(f: &Field) -> MaskRule {
    match f.format.as_deref() {
        Some("id-number") => return MaskRule::IdNumber,
        Some("mobile") => return MaskRule::Mobile,
        _ => {}
    }
    let title = f.title.as_deref().unwrap_or_default();
    let name = f.name.to_ascii_lowercase();
    if title.contains("姓名") || matches!(name.as_str(), "xm" | "name" | "xingming") || name.ends_with("_xm") {
        MaskRule::PersonName
    } else if title.contains("地址")
        || title.contains("住址")
        || name.contains("address")
        || name == "dz"
        || name.ends_with("dz")
    {
        MaskRule::Address
    } else {
        MaskRule::Generic
    }
}

/// Chinese compound surnames (复姓) kept whole when a name is masked.
const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "夏侯", "轩辕",
    "令狐", "钟离", "端木", "独孤", "南宫", "西门", "百里", "呼延", "赫连", "澹台", "太史", "申屠", "公冶", "闻人",
    "万俟", "濮阳", "淳于", "单于", "拓跋", "司空", "第五", "左丘", "东郭", "羊舌", "微生", "梁丘", "谷梁", "宰父",
    "乐正", "漆雕", "壤驷",
];

fn keep_ends(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    if n <= head + tail {
        return crate::delivery::mask(s);
    }
    let mut out: String = chars[..head].iter().collect();
    out.extend(std::iter::repeat_n('*', n - head - tail));
    out.extend(&chars[n - tail..]);
    out
}

fn mask_name(s: &str) -> String {
    let s = s.trim();
    if s.is_empty() {
        return String::new();
    }
    let surname = COMPOUND_SURNAMES
        .iter()
        .find(|c| s.starts_with(**c) && s.chars().count() > 2)
        .map(|c| (*c).to_string())
        .unwrap_or_else(|| s.chars().take(1).collect());
    format!("{surname}*")
}

fn mask_address(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let cut = chars
        .iter()
        .position(|c| matches!(c, '区' | '县' | '旗'))
        .or_else(|| {
            let cities: Vec<usize> = chars.iter().enumerate().filter(|(_, c)| **c == '市').map(|(i, _)| i).collect();
            cities.get(1).or(cities.first()).copied()
        })
        .map(|i| i + 1)
        .unwrap_or(chars.len().min(3));
    if cut >= chars.len() {
        return s.to_string();
    }
    let mut out: String = chars[..cut].iter().collect();
    out.push_str("****");
    out
}

/// Mask one text value by a rule.
pub fn mask_text(rule: MaskRule, s: &str) -> String {
    match rule {
        MaskRule::IdNumber if s.chars().count() == 18 || s.chars().count() == 15 => keep_ends(s, 6, 4),
        MaskRule::Mobile if s.chars().count() == 11 => keep_ends(s, 3, 4),
        MaskRule::PersonName => mask_name(s),
        MaskRule::Address => mask_address(s),
        _ => crate::delivery::mask(s),
    }
}

/// Mask a cell by a rule: nulls stay null; other values become masked text.
pub fn mask_cell(rule: MaskRule, c: &Cell) -> Cell {
    match c {
        Cell::Null => Cell::Null,
        Cell::Text(s) => Cell::Text(mask_text(rule, s)),
        other => Cell::Text(mask_text(rule, &other.to_text())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::TableSchema;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn the_published_examples() {
        assert_eq!(mask_text(MaskRule::IdNumber, "320402199003071235"), "320402********1235");
        assert_eq!(mask_text(MaskRule::Mobile, "13812345678"), "138****5678");
        assert_eq!(mask_text(MaskRule::PersonName, "张三"), "张*");
        assert_eq!(mask_text(MaskRule::PersonName, "张三丰"), "张*");
        assert_eq!(mask_text(MaskRule::PersonName, "欧阳娜娜"), "欧阳*");
        // Two characters: a one-character surname and a given name.
        assert_eq!(mask_text(MaskRule::PersonName, "欧阳"), "欧*");
        assert_eq!(mask_text(MaskRule::Address, "常州市天宁区郑陆镇张巷村84号"), "常州市天宁区****");
        assert_eq!(mask_text(MaskRule::Address, "江苏省常州市溧阳市昆仑街道12号"), "江苏省常州市溧阳市****");
        assert_eq!(mask_text(MaskRule::Address, "金坛区"), "金坛区");
    }

    #[test]
    fn rules_follow_format_title_and_name() {
        let s = TableSchema::parse(&json!({"fields": [
            {"name": "sfzh", "format": "id-number"},
            {"name": "sjhm", "format": "mobile"},
            {"name": "xm"},
            {"name": "hjdz", "title": "户籍地址"},
            {"name": "bz"}
        ]}))
        .unwrap();
        let rules: Vec<MaskRule> = s.fields.iter().map(rule_for).collect();
        assert_eq!(
            rules,
            vec![MaskRule::IdNumber, MaskRule::Mobile, MaskRule::PersonName, MaskRule::Address, MaskRule::Generic]
        );
    }

    proptest! {
        #[test]
        fn masked_values_never_contain_the_hidden_middle(id in "[1-6][0-9]{16}[0-9X]", phone in "1[3-9][0-9]{9}") {
            let m = mask_text(MaskRule::IdNumber, &id);
            prop_assert_eq!(m.chars().count(), 18);
            prop_assert_eq!(&m[6..14], "********");
            let p = mask_text(MaskRule::Mobile, &phone);
            prop_assert_eq!(&p[3..7], "****");
        }

        #[test]
        fn masking_never_panics_and_never_returns_the_whole_value(s in "[\\PC&&[^*]]{2,40}") {
            for rule in [MaskRule::IdNumber, MaskRule::Mobile, MaskRule::PersonName, MaskRule::Generic] {
                let m = mask_text(rule, &s);
                prop_assert!(m != s || !m.chars().any(|c| c != '*'), "{:?} {} -> {}", rule, s, m);
            }
            let _ = mask_text(MaskRule::Address, &s);
        }
    }
}
