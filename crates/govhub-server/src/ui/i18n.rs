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

/// `(key, 中文, English)`. Every `t.key` used by a template must be here (a test checks).
pub const STRINGS: &[(&str, &str, &str)] = &[
    ("app_name", "常州市政务数据共享交换平台", "Changzhou Government Data Sharing and Exchange Platform"),
    ("app_short", "政务数据中台", "govhub"),
    ("footer", "常州市大数据管理局 · 政务数据共享交换平台（govhub）", "Changzhou Big Data Administration · govhub data sharing and exchange platform"),
    ("switch_lang", "English", "中文"),
    // navigation
    ("nav_label", "主导航", "Main navigation"),
    ("nav_home", "首页", "Home"),
    ("nav_catalog", "数据目录", "Catalog"),
    ("nav_orgs", "组织机构", "Organisations"),
    ("nav_audit", "审计日志", "Audit log"),
    ("nav_me", "我的", "My account"),
    ("sign_in", "登录", "Sign in"),
    ("sign_out", "退出", "Sign out"),
    // errors
    ("error_title", "出错了", "Something went wrong"),
    ("error_forbidden", "无权访问", "Access denied"),
    ("error_not_found", "页面不存在", "Not found"),
    ("error_unauthenticated", "需要登录", "Sign-in required"),
    ("error_request_id", "请求编号", "Request id"),
    ("error_code", "错误代码", "Error code"),
    ("back_home", "返回首页", "Back to home"),
    // sign-in
    ("login_title", "登录平台", "Sign in"),
    ("login_intro", "请使用平台分配的账号登录。", "Sign in with the account the platform gave you."),
    ("username", "用户名", "Username"),
    ("password", "密码", "Password"),
    ("login_failed", "用户名或密码错误，请重新输入。", "Wrong username or password. Please try again."),
    ("login_disabled", "该账号已停用，请联系本单位管理员。", "This account is disabled. Please contact your administrator."),
    ("session_expired", "登录已过期，请重新登录。", "Your session has expired. Please sign in again."),
    // home
    ("welcome_title", "欢迎使用常州市政务数据共享交换平台", "Welcome to the Changzhou government data hub"),
    ("welcome_text", "汇聚全市各部门政务数据，按目录共享、按需交换、全程留痕，让数据多跑路、群众少跑腿。", "Government data from every department of the city, shared through one catalog, exchanged on request and audited end to end — so data travels instead of people."),
    ("welcome_point_catalog", "政务信息资源目录：数据集、字段标准与共享属性一目了然", "Government data catalog: datasets, field standards and sharing classes at a glance"),
    ("welcome_point_sharing", "按共享类型申请使用，访问全程审计", "Request data by its sharing class; every access is audited"),
    ("welcome_point_services", "办事群众和企业在此办理在线服务", "Citizens and enterprises use online services here"),
    ("dashboard_title", "工作台", "Dashboard"),
    ("dashboard_greeting", "您好，", "Hello, "),
    ("stat_datasets", "目录数据集", "Datasets in the catalog"),
    ("stat_datasets_hint", "查看政务信息资源目录", "Browse the catalog"),
    ("stat_orgs", "组织机构", "Organisations"),
    ("stat_orgs_hint", "市级部门与区县", "City departments and districts"),
    ("stat_own_datasets", "本单位提供的数据集", "Datasets your organisation provides"),
    ("own_datasets_title", "本单位提供的数据集", "Datasets your organisation provides"),
    ("own_datasets_none", "本单位尚未在目录中登记数据集。", "Your organisation has not registered any dataset yet."),
    ("view_all", "查看全部", "View all"),
    // my account
    ("me_title", "我的", "My account"),
    ("display_name", "姓名", "Name"),
    ("role", "角色", "Role"),
    ("org", "所属单位", "Organisation"),
    ("me_services_title", "我的服务", "My services"),
    ("me_services_text", "在线办事、电子证照、诉求反馈和数据使用记录等服务将在此提供。政务信息资源目录仅面向政务人员。", "Online services, e-licences, appeals and the record of who used your data will be available here. The government data catalog is for government staff only."),
    // catalog
    ("catalog_title", "政务信息资源目录", "Government data catalog"),
    ("search", "搜索", "Search"),
    ("search_placeholder", "名称、代码、摘要或标签，如：人口", "Name, code, summary or tag, e.g. 人口"),
    ("all", "全部", "All"),
    ("apply_filters", "筛选", "Filter"),
    ("reset", "重置", "Reset"),
    ("results_before", "共", ""),
    ("results_after", "个数据集", "datasets"),
    ("page", "页码", "Page"),
    ("paging", "分页", "Pages"),
    ("prev_page", "上一页", "Previous"),
    ("next_page", "下一页", "Next"),
    ("no_results", "没有符合条件的数据集。", "No dataset matches."),
    ("code", "代码", "Code"),
    ("name", "名称", "Name"),
    ("provider", "提供方", "Provider"),
    ("summary", "摘要", "Summary"),
    ("category", "分类", "Category"),
    ("sharing_class", "共享类型", "Sharing class"),
    ("sharing_condition", "共享条件", "Sharing condition"),
    ("open_class", "开放类型", "Open class"),
    ("grade", "分级", "Grade"),
    ("grade_badge", "分级：", "Grade: "),
    ("update_cycle", "更新周期", "Update cycle"),
    ("publish_date", "发布日期", "Published"),
    ("tag", "标签", "Tag"),
    ("tags", "标签", "Tags"),
    // dataset
    ("metadata", "核心元数据", "Core metadata"),
    ("schema_version", "表结构版本", "Schema version"),
    ("table_name", "数据表名", "Table name"),
    ("updated_at", "最后更新", "Last updated"),
    ("created_at", "创建时间", "Created"),
    ("schema_fields", "数据项（字段）", "Fields"),
    ("field_name", "字段名", "Field"),
    ("field_title", "中文名", "Title"),
    ("field_type", "类型", "Type"),
    ("field_format", "格式", "Format"),
    ("field_constraints", "约束", "Constraints"),
    ("field_references", "外键引用", "References"),
    ("primary_key", "主键", "Primary key"),
    ("pk_short", "主键", "PK"),
    ("unique_keys", "唯一键", "Unique keys"),
    ("foreign_keys", "外键", "Foreign keys"),
    ("sensitive", "敏感", "Sensitive"),
    ("sensitive_hint", "个人信息（PIPL），共享时默认脱敏", "Personal information (PIPL), masked by default when shared"),
    ("schema_json", "表结构 JSON（Table Schema）", "Table Schema JSON"),
    ("schema_versions", "表结构版本历史", "Schema versions"),
    ("version", "版本", "Version"),
    ("field_count", "字段数", "Fields"),
    ("current", "当前", "current"),
    ("db_columns", "数据库表字段", "Database columns"),
    ("db_columns_hint", "数据库实际报告的当前版本数据表结构。", "The current typed table as the database reports it."),
    ("column", "列名", "Column"),
    ("sql_type", "SQL 类型", "SQL type"),
    ("not_null", "非空", "Not null"),
    ("no_columns", "数据库中没有该数据表。", "The database has no such table."),
    ("yes", "是", "yes"),
    ("no", "否", "no"),
    // organisations
    ("orgs_title", "组织机构", "Organisations"),
    ("orgs_total", "机构总数", "Organisations:"),
    ("no_orgs", "尚无机构。", "No organisations yet."),
    ("org_name", "机构名称", "Name"),
    ("org_kind", "类型", "Kind"),
    ("admin_code", "行政区划代码", "Admin division code"),
    ("uscc", "统一社会信用代码", "Unified social credit code"),
    ("parent_org", "上级机构", "Parent"),
    ("child_orgs", "下级机构", "Sub-organisations"),
    ("provided_datasets", "提供的数据集", "Datasets provided"),
    ("org_no_datasets", "该机构尚未在目录中登记数据集。", "This organisation has not registered any dataset."),
    // audit
    ("audit_title", "审计日志", "Audit log"),
    ("audit_intro", "最近 100 条审计记录，最新的在前。", "The latest 100 audit events, newest first."),
    ("audit_time", "时间", "Time"),
    ("audit_actor", "操作人", "Actor"),
    ("audit_action", "操作", "Action"),
    ("audit_target", "对象", "Target"),
    ("audit_outcome", "结果", "Outcome"),
    ("audit_detail", "详情", "Detail"),
    ("audit_none", "暂无审计记录。", "No audit events."),
    ("on_behalf_of", "代表", "on behalf of"),
];

/// All strings of one language, for templates (`{{ t.key }}`).
pub fn table(lang: Lang) -> BTreeMap<&'static str, &'static str> {
    STRINGS.iter().map(|(k, zh, en)| (*k, if lang == Lang::Zh { *zh } else { *en })).collect()
}
