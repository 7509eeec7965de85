//! UI language: zh-CN by default, English on request (`?lang=en` sets the
//! `govhub_lang` cookie). Strings live in one table per language.

use axum::http::{header, HeaderMap};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

pub const LANG_COOKIE: &str = "govhub_lang";

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh" | "zh-CN" | "zh-cn" => Some(Lang::Zh),
            "en" | "en-US" | "en-GB" => Some(Lang::En),
            _ => None,
        }
    }
    /// From the `govhub_lang` cookie; Chinese otherwise.
    pub fn from_headers(h: &HeaderMap) -> Lang {
        h.get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == LANG_COOKIE)
            .and_then(|(_, v)| Lang::parse(v))
            .unwrap_or_default()
    }
}

/// `(key, 中文, English)`.
pub const STRINGS: &[(&str, &str, &str)] = &[
    ("app_name", "常州市政务数据共享交换平台", "Changzhou Government Data Hub"),
    ("app_short", "政务数据中台", "govhub"),
    ("error_title", "出错了", "Something went wrong"),
    ("error_request_id", "请求编号", "Request id"),
    ("back_home", "返回首页", "Back to home"),
    ("switch_lang", "English", "中文"),
];

/// All strings of one language, for templates (`{{ t.key }}`).
pub fn table(lang: Lang) -> BTreeMap<&'static str, &'static str> {
    STRINGS.iter().map(|(k, zh, en)| (*k, if lang == Lang::Zh { *zh } else { *en })).collect()
}
