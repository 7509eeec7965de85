//! The domain error: a stable [`Code`] from one table, an English and a Chinese
//! message a clerk can act on, and (for internal errors) a source that is logged but
//! never shown to clients. The HTTP status for each code is chosen in the server
//! crate (`govhub-server/src/error.rs`), the only place that knows about HTTP.

use std::fmt;

macro_rules! codes {
    ($( $variant:ident => $s:literal, $title_en:literal, $title_zh:literal; )*) => {
        /// Every error code govhub returns. The string form is the wire format and never
        /// changes once released; `docs/errors.md` lists them all (a test checks).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code { $( $variant, )* }

        impl Code {
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $s, )* }
            }
            /// A short English title for documentation.
            pub fn title_en(self) -> &'static str {
                match self { $( Code::$variant => $title_en, )* }
            }
            /// A short Chinese title for documentation.
            pub fn title_zh(self) -> &'static str {
                match self { $( Code::$variant => $title_zh, )* }
            }
        }
    };
}

codes! {
    // Authentication and authorization
    Unauthenticated => "unauthenticated", "Sign-in required", "需要登录";
    InvalidCredentials => "invalid_credentials", "Wrong username or password", "用户名或密码错误";
    SessionExpired => "session_expired", "Session or token expired", "会话或令牌已过期";
    AccountDisabled => "account_disabled", "Account disabled", "账号已停用";
    Forbidden => "forbidden", "Not permitted", "无权操作";
    CsrfFailed => "csrf_failed", "Form expired or forged", "表单已失效或来源不可信";
    // Request shape
    MalformedJson => "malformed_json", "Body is not valid JSON", "请求体不是合法的JSON";
    UnknownField => "unknown_field", "Unknown field in request", "请求包含未知字段";
    InvalidRequest => "invalid_request", "Invalid request", "请求参数不合法";
    UnsupportedMediaType => "unsupported_media_type", "Unsupported content type", "不支持的内容类型";
    PayloadTooLarge => "payload_too_large", "Request body too large", "请求体过大";
    NotFound => "not_found", "Not found", "资源不存在";
    // Organisations and users
    OrgExists => "org_exists", "Organisation code already exists", "机构代码已存在";
    UnknownOrg => "unknown_org", "Unknown organisation", "机构不存在";
    UserExists => "user_exists", "Username already taken", "用户名已存在";
    InvalidOrg => "invalid_org", "Invalid organisation data", "机构信息不合法";
    InvalidUser => "invalid_user", "Invalid user data", "用户信息不合法";
    // Catalog
    DatasetExists => "dataset_exists", "Dataset code already exists", "数据集编码已存在";
    UnknownDataset => "unknown_dataset", "Unknown dataset", "数据集不存在";
    InvalidDataset => "invalid_dataset", "Invalid dataset metadata", "数据集元数据不合法";
    InvalidSchema => "invalid_schema", "Invalid table schema", "表结构（Table Schema）不合法";
    ConcurrentChange => "concurrent_change", "Changed by someone else meanwhile; retry", "数据已被他人同时修改，请重试";
    // Sharing
    NotShareable => "not_shareable", "Dataset is not shared (不予共享)", "该数据集不予共享";
    AlreadyDecided => "already_decided", "Already decided or revoked", "已处理，不能重复操作";
    NoGrant => "no_grant", "No grant in force for this app and dataset", "该应用没有有效的共享授权";
    InvalidWebhookUrl => "invalid_webhook_url", "Invalid webhook URL", "推送地址不合法";
    WebhookTargetRefused => "webhook_target_refused", "Webhook target on an internal address", "推送地址属于内网或保留地址";
    // E-licences
    UnknownLicenceType => "unknown_licence_type", "Unknown licence type", "证照类型不存在";
    LicenceTypeExists => "licence_type_exists", "Licence type code already exists", "证照类型代码已存在";
    InvalidLicenceType => "invalid_licence_type", "Invalid licence type", "证照类型定义不合法";
    InvalidLicence => "invalid_licence", "Invalid licence data", "证照信息不合法";
    UnknownLicence => "unknown_licence", "Unknown licence", "证照不存在";
    InvalidLicenceId => "invalid_licence_id", "Malformed licence identifier", "证照标识格式不正确";
    LicenceIdCheck => "licence_id_check", "Licence identifier check character is wrong", "证照标识校验位错误";
    LicenceRevoked => "licence_revoked", "The licence is revoked; its status cannot change", "证照已注销，状态不能再变更";
    IssuerWithoutUscc => "issuer_without_uscc", "The organisation has no unified social credit code", "该单位未登记统一社会信用代码";
    SealKeyRevoked => "seal_key_revoked", "The organisation's seal key is revoked; rotate it first", "该单位电子印章密钥已吊销，须先轮换";
    SealAuthorityMissing => "seal_authority_missing", "E-licence root key not loaded", "电子证照根密钥未加载";
    GrantTooNarrow => "grant_too_narrow", "The grant does not cover the whole signed licence", "共享授权未覆盖完整的签章证照";
    LicenceDataset => "licence_dataset", "A licence catalog entry is read through /api/v1/share/licences", "电子证照目录须通过证照共享接口读取";
    // Platform
    RateLimited => "rate_limited", "Too many requests", "请求过于频繁";
    PlatformKeyMissing => "platform_key_missing", "Platform signing key not loaded", "平台签名密钥未加载";
    Unavailable => "unavailable", "Service unavailable", "服务暂不可用";
    Internal => "internal", "Internal error", "系统内部错误";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A domain error. Construct with [`Error::new`] (messages in both languages) or
/// [`Error::internal`] (details logged, a generic message returned).
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    pub code: Code,
    pub message: String,
    pub message_zh: String,
    /// For a field-level problem: which field (e.g. `schema.fields[2].type`).
    pub field: Option<String>,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>, message_zh: impl Into<String>) -> Self {
        Error { code, message: message.into(), message_zh: message_zh.into(), field: None, source: None }
    }

    /// An error with only the code's default titles as messages.
    pub fn bare(code: Code) -> Self {
        Error::new(code, code.title_en(), code.title_zh())
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// An unexpected failure: the source is kept for the log, the client sees only
    /// "internal error".
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error {
            code: Code::Internal,
            message: "internal error; the request id identifies it in the server log".into(),
            message_zh: "系统内部错误，请凭请求编号联系平台运维".into(),
            field: None,
            source: Some(source.into()),
        }
    }

    /// The same error under another code (e.g. a generic not-found made specific).
    pub fn with_code(mut self, code: Code) -> Self {
        self.code = code;
        self
    }

    pub fn forbidden(reason_en: impl Into<String>, reason_zh: impl Into<String>) -> Self {
        Error::new(Code::Forbidden, reason_en, reason_zh)
    }

    pub fn not_found(what_en: &str, what_zh: &str, key: &str) -> Self {
        Error::new(Code::NotFound, format!("{what_en} '{key}' not found"), format!("{what_zh}“{key}”不存在"))
    }

    pub fn invalid(code: Code, field: &str, en: impl Into<String>, zh: impl Into<String>) -> Self {
        Error::new(code, en, zh).with_field(field)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_snake_case() {
        let mut seen = HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {}", c.as_str());
            assert!(c.as_str().chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'));
        }
    }

    #[test]
    fn internal_errors_hide_details() {
        let e = Error::internal(std::io::Error::other("disk on fire at /var/secret"));
        assert_eq!(e.code, Code::Internal);
        assert!(!e.message.contains("secret"));
        assert!(e.source.is_some());
    }
}
