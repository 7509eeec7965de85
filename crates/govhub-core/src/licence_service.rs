//! E-licence services: the platform root ([`SealAuthority`]), organisation seal keys
//! and certificates, licence types, issuing (one and in batches), reading, status
//! changes, verification and the VC export. Every method authorizes through
//! [`Hub::authorize`] (audited) except the public verification, which reveals only what
//! the verify page shows.

use crate::authz::{Action, Principal};
use crate::delivery::{RowOutcome, RowValidator};
use crate::error::{Code, Error, Result};
use crate::licence::*;
use crate::licence_id::LicenceId;
use crate::model::Org;
use crate::names::OrgCode;
use crate::schema::TableSchema;
use crate::service::{store_err, Ctx, Hub};
use crate::standards::{IdNumber, Uscc};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use govhub_crypto::eseal::{self, PictureType, SealSpec};
use govhub_crypto::pki::{self, Certificate, OrgSpec, RootSpec};
use govhub_crypto::sm2keys::Sm2PrivateKey;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// The store `meta` key holding the root certificate (PEM).
pub const ROOT_CERT_META: &str = "pki.root_certificate";
/// Lifetime of the root certificate made at the first start.
pub const ROOT_YEARS: i64 = 30;
/// Lifetime of an organisation's seal certificate and seal.
pub const ORG_KEY_YEARS: i64 = 10;

/// The e-licence root: the root key (which signs only certificates and seals), its
/// certificate, and the secret that encrypts organisation keys at rest (PKCS#8 PBES2,
/// like every govhub private key). Decrypted organisation keys are kept in memory.
pub struct SealAuthority {
    root_key: Sm2PrivateKey,
    root: Certificate,
    wrap: Zeroizing<Vec<u8>>,
    iterations: u32,
    keys: Mutex<HashMap<i64, Arc<Sm2PrivateKey>>>,
}

impl std::fmt::Debug for SealAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealAuthority {{ root: {}, secrets: [redacted] }}", self.root.subject())
    }
}

impl SealAuthority {
    /// `wrap` encrypts organisation keys with `iterations` PBKDF2 rounds (≥ 10,000).
    pub fn new(root_key: Sm2PrivateKey, root: Certificate, wrap: &[u8], iterations: u32) -> Result<SealAuthority> {
        let matches = root.public_key().map(|k| k == root_key.public_key()).unwrap_or(false);
        if !matches {
            return Err(Error::internal("the e-licence root certificate is not the root key's"));
        }
        Ok(SealAuthority {
            root_key,
            root,
            wrap: Zeroizing::new(wrap.to_vec()),
            iterations,
            keys: Mutex::new(HashMap::new()),
        })
    }

    pub fn root(&self) -> &Certificate {
        &self.root
    }

    /// Make a new root certificate for `key`.
    pub fn create_root(key: &Sm2PrivateKey, now: DateTime<Utc>) -> Result<Certificate> {
        pki::create_root(
            key,
            &RootSpec {
                common_name: "govhub 电子证照根证书",
                organisation: "govhub",
                not_before: system_time(now - Duration::minutes(5)),
                not_after: system_time(now + Duration::days(365 * ROOT_YEARS)),
            },
        )
        .map_err(Error::internal)
    }

    fn decrypt(&self, key: &OrgKey) -> Result<Arc<Sm2PrivateKey>> {
        if let Some(k) = self.keys.lock().ok().and_then(|m| m.get(&key.id).cloned()) {
            return Ok(k);
        }
        let k = Arc::new(
            Sm2PrivateKey::from_encrypted_pem(&key.encrypted_key, &self.wrap)
                .map_err(|e| Error::internal(format!("cannot decrypt the seal key of {}: {}", key.org, e.code())))?,
        );
        if let Ok(mut m) = self.keys.lock() {
            m.insert(key.id, k.clone());
        }
        Ok(k)
    }

    /// A new key, certificate and seal for `org` (not stored).
    fn new_org_key(&self, org: &Org, uscc: &str, n: usize, now: DateTime<Utc>) -> Result<(OrgKey, Sm2PrivateKey)> {
        let key = Sm2PrivateKey::generate().map_err(Error::internal)?;
        let not_after = std::cmp::min(system_time(now + Duration::days(365 * ORG_KEY_YEARS)), self.root.not_after());
        let not_before = system_time(now - Duration::minutes(5)).max(self.root.not_before());
        let cert = pki::issue_organisation(
            &self.root_key,
            &self.root,
            &key.public_key(),
            &OrgSpec { name: &org.name, uscc, not_before, not_after },
        )
        .map_err(|e| Error::new(Code::InvalidOrg, e.to_string(), format!("无法为该单位签发印章证书：{e}")))?;
        let seal_name = format!("{}电子印章", org.name);
        let picture = crate::seal_svg::render(&org.name, "电子证照专用章");
        let es_id = format!("{uscc}{n:04}");
        let seal = eseal::make_seal(
            &self.root_key,
            &self.root,
            &[&cert],
            &SealSpec {
                es_id: &es_id,
                seal_type: eseal::SEAL_TYPE_ORGANISATION,
                name: &seal_name,
                picture_type: PictureType::Svg,
                picture: picture.as_bytes(),
                width_mm: crate::seal_svg::DEFAULT_DIAMETER_MM,
                height_mm: crate::seal_svg::DEFAULT_DIAMETER_MM,
                created: not_before,
                valid_start: not_before,
                valid_end: not_after,
            },
        )
        .map_err(Error::internal)?;
        let encrypted_key =
            key.to_encrypted_pem_with_iterations(&self.wrap, self.iterations).map_err(Error::internal)?;
        let record = OrgKey {
            id: 0,
            org: org.code.clone(),
            serial: cert.serial_hex(),
            certificate: cert.to_der().to_vec(),
            seal: seal.to_der().map_err(Error::internal)?,
            encrypted_key,
            created_at: now,
            retired_at: None,
            revoked_at: None,
            revoke_reason: None,
        };
        Ok((record, key))
    }
}

fn system_time(t: DateTime<Utc>) -> std::time::SystemTime {
    crate::licence::system_time(t)
}

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

/// `POST /api/v1/licence-types`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LicenceTypeInput {
    /// 证照类型名称, e.g. 营业执照.
    pub name: String,
    /// The defining authority's organisation code (default: the caller's).
    pub authority: Option<String>,
    /// `person` (ID number) or `organisation` (USCC).
    pub holder_kind: String,
    /// The type-specific fields: a Table Schema (docs/schemas.md).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub schema: Value,
    /// The 3-digit sequence in the type code (default: the authority's next free).
    pub seq: Option<String>,
}

/// `POST /api/v1/licences` (one licence, or one line of a batch file).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LicenceInput {
    /// The licence type code (21 characters).
    #[serde(rename = "type")]
    pub type_code: String,
    /// ID number (person) or USCC (organisation).
    pub holder_code: String,
    pub holder_name: String,
    /// The type's fields, by name.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    #[serde(default)]
    pub fields: Map<String, Value>,
    /// `YYYY-MM-DD`.
    pub valid_from: String,
    /// `YYYY-MM-DD` (inclusive).
    pub valid_until: String,
    /// The issuing organisation (default: the caller's; a platform admin names it).
    pub issuer: Option<String>,
}

/// `POST /api/v1/licences/{id}/status`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StatusInput {
    /// `suspended`, `active` or `revoked`.
    pub status: String,
    pub reason: String,
}

fn invalid(field: &str, en: impl Into<String>, zh: impl Into<String>) -> Error {
    Error::invalid(Code::InvalidLicence, field, en, zh)
}

fn parse_day(field: &str, s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        invalid(field, format!("\"{s}\" is not a date (YYYY-MM-DD)"), format!("“{s}”不是日期（YYYY-MM-DD）"))
    })
}

/// Parse a licence identifier from user input, with its own error codes.
pub fn parse_licence_id(s: &str) -> Result<LicenceId> {
    s.parse::<LicenceId>().map_err(|e| {
        let code = if e.code() == "licence-id-check" { Code::LicenceIdCheck } else { Code::InvalidLicenceId };
        Error::new(code, e.to_string(), e.message_zh()).with_field("id")
    })
}

/// A licence ready to sign.
struct Prepared {
    ltype: LicenceType,
    holder_code: String,
    holder_name: String,
    valid_from: NaiveDate,
    valid_until: NaiveDate,
    fields: Map<String, Value>,
}

/// One line of a batch that was refused.
#[derive(Debug)]
pub struct BatchProblem {
    /// 1 = first record.
    pub row: u64,
    pub error: Error,
}

/// A record of a batch that was issued before (by an earlier run of the same file, or
/// earlier in this one): skipped, not issued twice.
#[derive(Debug, Clone)]
pub struct BatchSkip {
    /// 1 = first record.
    pub row: u64,
    /// The licence already issued from the same content.
    pub existing: String,
}

/// What a batch issue did.
#[derive(Debug)]
pub struct BatchOutcome {
    pub issued: Vec<LicenceId>,
    pub refused: Vec<BatchProblem>,
    pub skipped: Vec<BatchSkip>,
}

/// The SM3 digest (hex) of what a batch record asks to issue, after validation: issuer,
/// type, holder code and name, dates and fields (in schema order). Two records with the
/// same digest would issue the same licence.
fn source_digest(issuer: &OrgCode, pr: &Prepared) -> String {
    let content = json!([
        "govhub-licence-source/1",
        issuer.as_str(),
        pr.ltype.code,
        pr.holder_code,
        pr.holder_name,
        pr.valid_from.to_string(),
        pr.valid_until.to_string(),
        pr.fields,
    ]);
    govhub_crypto::sm3_hex(content.to_string().as_bytes())
}

/// What the public verify page shows.
#[derive(Debug, Clone)]
pub struct PublicVerification {
    pub id: String,
    pub verdict: Verdict,
    pub type_name: Option<String>,
    pub issuer_name: Option<String>,
    pub holder_masked: Option<String>,
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
    pub issued_at: Option<DateTime<Utc>>,
    pub status_reason: Option<String>,
    pub status_at: Option<DateTime<Utc>>,
    /// The issuing organisation's code and the serial (hex) of the seal certificate that
    /// sealed the licence (its PEM: `/api/v1/orgs/{issuer}/certificate.pem?serial=`).
    pub issuer: Option<String>,
    pub seal_serial: Option<String>,
    /// When that certificate's key was revoked, and why (public, like a CRL entry).
    pub seal_revoked_at: Option<DateTime<Utc>>,
    pub seal_revoke_reason: Option<String>,
}

impl Hub {
    fn authority(&self) -> Result<&Arc<SealAuthority>> {
        self.seal_authority().ok_or_else(|| {
            Error::new(
                Code::SealAuthorityMissing,
                "this server holds no e-licence root key",
                "本服务未加载电子证照根密钥",
            )
        })
    }

    /// Load the root certificate for `root_key` from the store, or make and store it
    /// at the first start; then attach the authority. Refuses a key that is not the
    /// stored certificate's (every node must share the root key).
    pub async fn attach_seal_authority(self, root_key: Sm2PrivateKey, wrap: &[u8], iterations: u32) -> Result<Hub> {
        let root = match self.get_meta(ROOT_CERT_META).await? {
            Some(pem) => Certificate::from_pem(&pem).map_err(Error::internal)?,
            None => {
                let cert = SealAuthority::create_root(&root_key, self.clock().now())?;
                self.set_meta(ROOT_CERT_META, &cert.to_pem().map_err(Error::internal)?).await?;
                cert
            }
        };
        let authority = SealAuthority::new(root_key, root, wrap, iterations).map_err(|_| {
            Error::internal(
                "the e-licence root key in the data directory is not the key of this store's root certificate: \
                 every govhub node serving one database must use the same root key file",
            )
        })?;
        Ok(self.with_seal_authority(Arc::new(authority)))
    }

    /// The root certificate, PEM (public).
    pub fn root_certificate_pem(&self) -> Result<String> {
        self.authority()?.root().to_pem().map_err(Error::internal)
    }

    async fn org_by_code(&self, code: &OrgCode) -> Result<Org> {
        self.store()
            .get_org(code)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::not_found("organisation", "机构", code.as_str()).with_code(Code::UnknownOrg))
    }

    fn uscc_of(org: &Org) -> Result<String> {
        org.uscc.as_ref().map(|u| u.as_str().to_string()).ok_or_else(|| {
            Error::new(
                Code::IssuerWithoutUscc,
                format!("organisation {} has no unified social credit code", org.code),
                format!("单位{}未登记统一社会信用代码", org.code),
            )
        })
    }

    /// The org's current seal key, made (and stored) on first need.
    async fn signing_key(&self, org: &Org) -> Result<(OrgKey, Arc<Sm2PrivateKey>)> {
        let authority = self.authority()?.clone();
        if let Some(k) = self.store().current_org_key(&org.code).await.map_err(store_err)? {
            let a = authority.clone();
            let k2 = k.clone();
            let key = tokio::task::spawn_blocking(move || a.decrypt(&k2)).await.map_err(Error::internal)??;
            return Ok((k, key));
        }
        // After a revocation the organisation signs nothing until a platform admin
        // rotates (makes a new key on purpose): a compromised key is not silently replaced.
        let keys = self.store().list_org_keys(&org.code).await.map_err(store_err)?;
        if let Some(k) = keys.iter().max_by_key(|k| k.id).filter(|k| k.revoked_at.is_some()) {
            return Err(Error::new(
                Code::SealKeyRevoked,
                format!(
                    "the seal key of {} (certificate {}) is revoked; a platform admin must rotate it before {} signs again",
                    org.code, k.serial, org.code
                ),
                format!("{}的电子印章密钥（证书{}）已吊销，须由平台管理员轮换密钥后方可再签发", org.code, k.serial),
            ));
        }
        self.new_signing_key(org, keys.len() + 1).await
    }

    /// Make, certify and store a new seal key for `org` (its `n`-th).
    async fn new_signing_key(&self, org: &Org, n: usize) -> Result<(OrgKey, Arc<Sm2PrivateKey>)> {
        let authority = self.authority()?.clone();
        let uscc = Self::uscc_of(org)?;
        let now = self.clock().now();
        let org2 = org.clone();
        let (record, key) = tokio::task::spawn_blocking(move || authority.new_org_key(&org2, &uscc, n, now))
            .await
            .map_err(Error::internal)??;
        let stored = self.store().insert_org_key(&record).await.map_err(store_err)?;
        tracing::info!(org = %org.code, serial = %stored.serial, "issued an organisation seal certificate");
        let key = Arc::new(key);
        if let Some(a) = self.seal_authority() {
            if let Ok(mut m) = a.keys.lock() {
                m.insert(stored.id, key.clone());
            }
        }
        Ok((stored, key))
    }

    /// An organisation's seal certificate, PEM: the current one (issued on first need),
    /// or the one with `serial` (past ones stay available). Public.
    pub async fn org_certificate_pem(&self, code: &str, serial: Option<&str>) -> Result<String> {
        let code = OrgCode::parse(code)?;
        let org = self.org_by_code(&code).await?;
        let der = match serial {
            Some(s) => {
                self.store()
                    .list_org_keys(&code)
                    .await
                    .map_err(store_err)?
                    .into_iter()
                    .find(|k| k.serial.eq_ignore_ascii_case(s))
                    .ok_or_else(|| Error::not_found("certificate", "证书", s))?
                    .certificate
            }
            None => self.signing_key(&org).await?.0.certificate,
        };
        Certificate::from_der(&der).and_then(|c| c.to_pem()).map_err(Error::internal)
    }

    /// Rotate an org's seal key (platform admin): the current key is retired (its
    /// licences stay verifiable) and the next issue makes a new one.
    pub async fn rotate_seal_key(&self, p: &Principal, code: &str, ctx: &Ctx) -> Result<String> {
        let code = OrgCode::parse(code)?;
        let auth = self.authorize(p, Action::ManageSealKeys { org: &code }, code.as_str(), ctx).await?;
        let result = async {
            let org = self.org_by_code(&code).await?;
            Self::uscc_of(&org)?;
            if let Some(k) = self.store().current_org_key(&code).await.map_err(store_err)? {
                self.store().retire_org_key(k.id, self.clock().now()).await.map_err(store_err)?;
            }
            let n = self.store().list_org_keys(&code).await.map_err(store_err)?.len() + 1;
            Ok(self.new_signing_key(&org, n).await?.0.serial)
        }
        .await;
        let detail = json!({ "serial": result.as_ref().ok() });
        self.finish(&auth, code.as_str(), result, detail, ctx).await
    }

    /// Revoke an org's current seal key (platform admin): it signs nothing more, and
    /// verification of licences it sealed reports `certificate-revoked`.
    pub async fn revoke_seal_key(&self, p: &Principal, code: &str, reason: &str, ctx: &Ctx) -> Result<Option<String>> {
        let code = OrgCode::parse(code)?;
        let auth = self.authorize(p, Action::ManageSealKeys { org: &code }, code.as_str(), ctx).await?;
        let result = async {
            let reason = reason.trim();
            if reason.is_empty() || reason.chars().count() > 500 {
                return Err(Error::invalid(
                    Code::InvalidRequest,
                    "reason",
                    "give a reason (1–500 characters)",
                    "请填写原因（1至500个字符）",
                ));
            }
            match self.store().current_org_key(&code).await.map_err(store_err)? {
                Some(k) => {
                    self.store().revoke_org_key(k.id, self.clock().now(), reason).await.map_err(store_err)?;
                    if let Some(a) = self.seal_authority() {
                        if let Ok(mut m) = a.keys.lock() {
                            m.remove(&k.id);
                        }
                    }
                    Ok(Some(k.serial))
                }
                None => Ok(None),
            }
        }
        .await;
        let detail = json!({ "serial": result.as_ref().ok(), "reason": reason });
        self.finish(&auth, code.as_str(), result, detail, ctx).await
    }

    // ------------------------------------------------------------- licence types

    pub async fn create_licence_type(&self, p: &Principal, input: LicenceTypeInput, ctx: &Ctx) -> Result<LicenceType> {
        let authority = match input.authority.as_deref().or(p.org.as_ref().map(|o| o.as_str())) {
            Some(a) => OrgCode::parse(a)?,
            None => {
                return Err(Error::invalid(
                    Code::InvalidLicenceType,
                    "authority",
                    "name the defining authority",
                    "请指定证照类型的主管单位",
                ))
            }
        };
        let auth =
            self.authorize(p, Action::ManageLicenceTypes { authority: &authority }, authority.as_str(), ctx).await?;
        let result = async {
            let name = input.name.trim();
            if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
                return Err(Error::invalid(
                    Code::InvalidLicenceType,
                    "name",
                    "the name must be 1–64 characters",
                    "名称应为1至64个字符",
                ));
            }
            let holder_kind = HolderKind::parse(&input.holder_kind).ok_or_else(|| {
                Error::invalid(
                    Code::InvalidLicenceType,
                    "holder_kind",
                    "holder_kind is \"person\" or \"organisation\"",
                    "holder_kind 应为 person 或 organisation",
                )
            })?;
            let schema = TableSchema::parse(&input.schema).map_err(|mut e| {
                e.code = Code::InvalidLicenceType;
                e
            })?;
            let org = self.org_by_code(&authority).await?;
            let uscc = Self::uscc_of(&org)?;
            let seq = match input.seq.as_deref() {
                Some(s) if s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()) && s != "000" => s.to_string(),
                Some(_) => {
                    return Err(Error::invalid(
                        Code::InvalidLicenceType,
                        "seq",
                        "seq is 3 digits, 001–999",
                        "seq 应为3位数字（001至999）",
                    ))
                }
                None => {
                    let types = self.store().list_licence_types().await.map_err(store_err)?;
                    let used = types.iter().filter(|t| t.code.starts_with(&uscc)).count();
                    format!("{:03}", used + 1)
                }
            };
            let t = LicenceType {
                code: format!("{uscc}{seq}"),
                name: name.to_string(),
                authority: authority.clone(),
                holder_kind,
                schema,
                created_by: p.username.clone(),
                created_at: self.clock().now(),
            };
            // Its catalog entry (licence_share.rs), checked before anything is stored.
            crate::licence_share::licence_dataset(&t, t.created_at)?;
            self.store().insert_licence_type(&t).await.map_err(store_err)?;
            self.ensure_licence_dataset(&t).await?;
            Ok(t)
        }
        .await;
        let detail = json!({ "code": result.as_ref().ok().map(|t| t.code.clone()), "name": input.name });
        self.finish(&auth, authority.as_str(), result, detail, ctx).await
    }

    pub async fn list_licence_types(&self, p: &Principal, ctx: &Ctx) -> Result<Vec<LicenceType>> {
        self.authorize(p, Action::ReadLicenceTypes, "licence_types", ctx).await?;
        self.store().list_licence_types().await.map_err(store_err)
    }

    // ------------------------------------------------------------------- issuing

    fn issuer_of(p: &Principal, input: Option<&str>) -> Result<OrgCode> {
        match input.or(p.org.as_ref().map(|o| o.as_str())) {
            Some(s) => OrgCode::parse(s),
            None => Err(invalid("issuer", "name the issuing organisation", "请指定发证单位")),
        }
    }

    async fn prepare(&self, input: &LicenceInput, types: &mut HashMap<String, LicenceType>) -> Result<Prepared> {
        let code = input.type_code.trim().to_ascii_uppercase();
        let ltype = match types.get(&code) {
            Some(t) => t.clone(),
            None => {
                let t = self.store().get_licence_type(&code).await.map_err(store_err)?.ok_or_else(|| {
                    Error::new(
                        Code::UnknownLicenceType,
                        format!("no licence type has the code \"{code}\""),
                        format!("证照类型代码“{code}”不存在"),
                    )
                    .with_field("type")
                })?;
                types.insert(code.clone(), t.clone());
                t
            }
        };
        let today = self.clock().now().date_naive();
        let holder_code = match ltype.holder_kind {
            HolderKind::Person => IdNumber::parse_on(&input.holder_code, today)
                .map(|p| p.value.as_str().to_string())
                .map_err(|e| invalid("holder_code", e.to_string(), e.message_zh()))?,
            HolderKind::Organisation => Uscc::parse(&input.holder_code)
                .map(|u| u.as_str().to_string())
                .map_err(|e| invalid("holder_code", e.to_string(), e.message_zh()))?,
        };
        let holder_name = input.holder_name.trim();
        if holder_name.is_empty() || holder_name.chars().count() > 100 || holder_name.chars().any(char::is_control) {
            return Err(invalid(
                "holder_name",
                "the holder name must be 1–100 characters",
                "持证主体名称应为1至100个字符",
            ));
        }
        let valid_from = parse_day("valid_from", &input.valid_from)?;
        let valid_until = parse_day("valid_until", &input.valid_until)?;
        if valid_until < valid_from {
            return Err(invalid("valid_until", "valid_until is before valid_from", "有效期截止日早于起始日"));
        }
        let mut validator = RowValidator::for_objects(&ltype.schema, today, Default::default());
        let fields = match validator.json_row(1, &input.fields) {
            RowOutcome::Valid(row) => {
                let mut m = Map::new();
                for (f, c) in ltype.schema.fields.iter().zip(row.cells.iter()) {
                    if !c.is_null() {
                        m.insert(f.name.clone(), c.to_json());
                    }
                }
                m
            }
            RowOutcome::Quarantined(q) | RowOutcome::Blank(q) => {
                let first = q.problems.first();
                let field = first.and_then(|p| p.field.clone()).map(|f| format!("fields.{f}"));
                let (en, zh) = first
                    .map(|p| (p.message.clone(), p.message_zh.clone()))
                    .unwrap_or_else(|| ("the fields are empty".into(), "缺少证照字段".into()));
                let e = Error::new(Code::InvalidLicence, en, zh);
                return Err(match field {
                    Some(f) => e.with_field(f),
                    None => e.with_field("fields"),
                });
            }
        };
        Ok(Prepared { ltype, holder_code, holder_name: holder_name.to_string(), valid_from, valid_until, fields })
    }

    /// Sign a prepared licence (CPU only).
    #[allow(clippy::too_many_arguments)]
    fn seal_licence(
        pr: Prepared,
        seq: i64,
        org: &Org,
        uscc: &str,
        key: &OrgKey,
        signer: &Sm2PrivateKey,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Licence> {
        let number = format!("{}{:010}", now.year(), seq);
        let id = LicenceId::new(&pr.ltype.code, uscc, &number, 1)
            .map_err(|e| Error::internal(format!("licence identifier: {e}")))?;
        let now_s = now.with_timezone(&Utc);
        let doc = LicenceDocument {
            format: DOCUMENT_FORMAT.into(),
            id: id.as_str().into(),
            type_code: pr.ltype.code.clone(),
            type_name: pr.ltype.name.clone(),
            number: number.clone(),
            version: 1,
            holder_name: pr.holder_name.clone(),
            holder_code: pr.holder_code.clone(),
            holder_code_type: pr.ltype.holder_kind.code_type().into(),
            issuer_name: org.name.clone(),
            issuer_code: uscc.into(),
            issued_at: rfc3339_seconds(now_s),
            valid_from: pr.valid_from,
            valid_until: pr.valid_until,
            fields: pr.fields.clone(),
        };
        let document = doc.to_bytes().map_err(Error::internal)?;
        let cert = Certificate::from_der(&key.certificate).map_err(Error::internal)?;
        let seal = eseal::SesSeal::from_der(&key.seal).map_err(Error::internal)?;
        let signature = eseal::seal_document(signer, &cert, &seal, &document, id.as_str(), system_time(now_s))
            .and_then(|s| s.to_der())
            .map_err(Error::internal)?;
        Ok(Licence {
            id,
            seq,
            type_code: pr.ltype.code,
            type_name: pr.ltype.name,
            holder_code: pr.holder_code,
            holder_name: pr.holder_name,
            holder_kind: pr.ltype.holder_kind,
            issuer: org.code.clone(),
            issuer_name: org.name.clone(),
            valid_from: pr.valid_from,
            valid_until: pr.valid_until,
            fields: pr.fields,
            issued_at: now_s,
            issued_by: by.into(),
            key_id: key.id,
            status: LicenceStatus::Active,
            status_reason: None,
            status_at: None,
            status_by: None,
            document,
            signature,
        })
    }

    /// Issue one licence, sealed by the issuing organisation.
    pub async fn issue_licence(&self, p: &Principal, input: LicenceInput, ctx: &Ctx) -> Result<Licence> {
        let issuer = Self::issuer_of(p, input.issuer.as_deref())?;
        let auth = self.authorize(p, Action::IssueLicence { issuer: &issuer }, issuer.as_str(), ctx).await?;
        let result = async {
            let org = self.org_by_code(&issuer).await?;
            let uscc = Self::uscc_of(&org)?;
            let pr = self.prepare(&input, &mut HashMap::new()).await?;
            let (key, signer) = self.signing_key(&org).await?;
            let seq = self.store().next_licence_seq().await.map_err(store_err)?;
            let now = self.clock().now();
            let by = p.username.clone();
            let l =
                tokio::task::spawn_blocking(move || Self::seal_licence(pr, seq, &org, &uscc, &key, &signer, &by, now))
                    .await
                    .map_err(Error::internal)??;
            self.store().insert_licence(&l).await.map_err(store_err)?;
            Ok(l)
        }
        .await;
        let detail = json!({
            "licence": result.as_ref().ok().map(|l| l.id.as_str().to_string()),
            "type": input.type_code,
        });
        self.finish(&auth, issuer.as_str(), result, detail, ctx).await
    }

    /// Issue many licences for one issuer (migrating paper licences). Bad records are
    /// refused with their reasons; good ones are stored in chunks of `chunk`.
    /// `progress` is told how many records were handled. One audit entry records the
    /// batch.
    pub async fn issue_licence_batch(
        &self,
        p: &Principal,
        issuer: &str,
        inputs: Vec<LicenceInput>,
        progress: &(dyn Fn(u64) + Send + Sync),
        ctx: &Ctx,
    ) -> Result<BatchOutcome> {
        let issuer = OrgCode::parse(issuer)?;
        let auth = self.authorize(p, Action::IssueLicence { issuer: &issuer }, issuer.as_str(), ctx).await?;
        let result = async {
            let org = Arc::new(self.org_by_code(&issuer).await?);
            let uscc: Arc<str> = Self::uscc_of(&org)?.into();
            let (key, signer) = self.signing_key(&org).await?;
            let key = Arc::new(key);
            let mut types = HashMap::new();
            let mut out = BatchOutcome { issued: Vec::new(), refused: Vec::new(), skipped: Vec::new() };
            // Digests issued by this run, and the licence each issued.
            let mut seen: HashMap<String, String> = HashMap::new();
            const CHUNK: usize = 2_000;
            let mut row = 0u64;
            let mut inputs = inputs.into_iter().peekable();
            while inputs.peek().is_some() {
                let mut prepared = Vec::with_capacity(CHUNK);
                for input in inputs.by_ref().take(CHUNK) {
                    row += 1;
                    if input.issuer.as_deref().is_some_and(|i| i != issuer.as_str()) {
                        out.refused.push(BatchProblem {
                            row,
                            error: invalid(
                                "issuer",
                                "every record of a batch has the batch's issuer",
                                "批量签发的发证单位必须一致",
                            ),
                        });
                        continue;
                    }
                    match self.prepare(&input, &mut types).await {
                        Ok(pr) => prepared.push((row, source_digest(&issuer, &pr), pr)),
                        Err(error) => out.refused.push(BatchProblem { row, error }),
                    }
                }
                // Re-run safety: a record whose content was issued before is skipped.
                let digests: Vec<String> = prepared.iter().map(|(_, d, _)| d.clone()).collect();
                let known: HashMap<String, String> =
                    self.store().licences_by_source(&digests).await.map_err(store_err)?.into_iter().collect();
                let mut fresh_digests = Vec::with_capacity(prepared.len());
                let mut repeats = Vec::new();
                let mut in_chunk = std::collections::HashSet::new();
                let prepared: Vec<Prepared> = prepared
                    .into_iter()
                    .filter_map(|(row, digest, pr)| {
                        if let Some(id) = known.get(&digest).or_else(|| seen.get(&digest)) {
                            out.skipped.push(BatchSkip { row, existing: id.clone() });
                            None
                        } else if !in_chunk.insert(digest.clone()) {
                            repeats.push((row, digest));
                            None
                        } else {
                            fresh_digests.push(digest);
                            Some(pr)
                        }
                    })
                    .collect();
                let mut seqs = Vec::with_capacity(prepared.len());
                for _ in 0..prepared.len() {
                    seqs.push(self.store().next_licence_seq().await.map_err(store_err)?);
                }
                let now = self.clock().now();
                let (org2, uscc2, key2, signer2, by) =
                    (org.clone(), uscc.clone(), key.clone(), signer.clone(), p.username.clone());
                let sealed = tokio::task::spawn_blocking(move || {
                    prepared
                        .into_iter()
                        .zip(seqs)
                        .map(|(pr, seq)| Self::seal_licence(pr, seq, &org2, &uscc2, &key2, &signer2, &by, now))
                        .collect::<Result<Vec<_>>>()
                })
                .await
                .map_err(Error::internal)??;
                self.store().insert_sourced_licences(&sealed, &fresh_digests).await.map_err(store_err)?;
                for (l, digest) in sealed.iter().zip(fresh_digests) {
                    seen.insert(digest, l.id.as_str().to_string());
                }
                for (row, digest) in repeats {
                    if let Some(id) = seen.get(&digest) {
                        out.skipped.push(BatchSkip { row, existing: id.clone() });
                    }
                }
                out.issued.extend(sealed.into_iter().map(|l| l.id));
                progress(row);
            }
            Ok(out)
        }
        .await;
        let detail = match &result {
            Ok(o) => json!({
                "batch": true, "issued": o.issued.len(), "refused": o.refused.len(), "skipped": o.skipped.len()
            }),
            Err(_) => json!({ "batch": true }),
        };
        self.finish(&auth, issuer.as_str(), result, detail, ctx).await
    }

    // ------------------------------------------------------------------- reading

    pub(crate) async fn licence_by_id(&self, id: &str) -> Result<Licence> {
        let id = parse_licence_id(id)?;
        self.store()
            .get_licence(id.as_str())
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::not_found("licence", "证照", id.as_str()).with_code(Code::UnknownLicence))
    }

    /// One licence (holder, issuer, admins).
    pub async fn get_licence(&self, p: &Principal, id: &str, ctx: &Ctx) -> Result<Licence> {
        let l = self.licence_by_id(id).await?;
        self.authorize(p, Action::ReadLicences { holder: &l.holder_code, issuer: Some(&l.issuer) }, l.id.as_str(), ctx)
            .await?;
        Ok(l)
    }

    /// A holder's licences: all of them for the holder and admins, those the caller's
    /// organisation issued for its officers.
    pub async fn list_licences(&self, p: &Principal, holder: &str, ctx: &Ctx) -> Result<Vec<Licence>> {
        let holder = holder.trim().to_ascii_uppercase();
        if holder.is_empty() {
            return Err(Error::invalid(Code::InvalidRequest, "holder", "holder is required", "请指定持证主体代码"));
        }
        let is_self = p.subject_id.as_deref().is_some_and(|s| s.trim().eq_ignore_ascii_case(&holder));
        let admin = p.role == crate::model::Role::PlatformAdmin;
        let issuer = if is_self || admin { None } else { p.org.clone() };
        let auth = self
            .authorize(p, Action::ReadLicences { holder: &holder, issuer: issuer.as_ref() }, "licences", ctx)
            .await?;
        let _ = auth;
        self.store().list_licences_by_holder(&holder, issuer.as_ref()).await.map_err(store_err)
    }

    /// Suspend, reinstate or revoke (the issuer's officers, admins). Audited.
    pub async fn set_licence_status(&self, p: &Principal, id: &str, input: StatusInput, ctx: &Ctx) -> Result<Licence> {
        let l = self.licence_by_id(id).await?;
        let auth = self.authorize(p, Action::ChangeLicenceStatus { issuer: &l.issuer }, l.id.as_str(), ctx).await?;
        let from = l.status;
        let result = async {
            let status = LicenceStatus::parse(input.status.trim()).ok_or_else(|| {
                Error::invalid(
                    Code::InvalidRequest,
                    "status",
                    "status is suspended, active or revoked",
                    "status 应为 suspended、active 或 revoked",
                )
            })?;
            let reason = input.reason.trim();
            if reason.is_empty() || reason.chars().count() > 500 {
                return Err(Error::invalid(
                    Code::InvalidRequest,
                    "reason",
                    "give a reason (1–500 characters)",
                    "请填写原因（1至500个字符）",
                ));
            }
            if from == LicenceStatus::Revoked {
                return Err(Error::bare(Code::LicenceRevoked));
            }
            let change = StatusChange { status, reason: reason.into(), by: p.username.clone(), at: self.clock().now() };
            if !self.store().set_licence_status(l.id.as_str(), &change).await.map_err(store_err)? {
                return Err(Error::not_found("licence", "证照", l.id.as_str()).with_code(Code::UnknownLicence));
            }
            Ok(Licence {
                status,
                status_reason: Some(change.reason),
                status_at: Some(change.at),
                status_by: Some(change.by),
                ..l.clone()
            })
        }
        .await;
        let detail = json!({ "from": from.as_str(), "to": input.status, "reason": input.reason });
        self.finish(&auth, l.id.as_str(), result, detail, ctx).await
    }

    /// The W3C VC 2.0 document of a licence, with govhub's SM2 proof made by the
    /// issuing organisation's seal key. `base` is the server's public URL.
    pub async fn licence_credential(&self, p: &Principal, id: &str, base: &str, ctx: &Ctx) -> Result<Value> {
        let l = self.get_licence(p, id, ctx).await?;
        let key = self
            .store()
            .get_org_key(l.key_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::internal("the licence's seal key is missing"))?;
        let authority = self.authority()?.clone();
        let k2 = key.clone();
        let signer = tokio::task::spawn_blocking(move || authority.decrypt(&k2)).await.map_err(Error::internal)??;
        let mut vc = credential(&l, l.id.issuer_code(), base);
        let sig = signer.sign(&proof_input(&vc)).map_err(Error::internal)?;
        let method = format!("{base}/api/v1/orgs/{}/certificate.pem?serial={}", l.issuer, key.serial);
        attach_proof(&mut vc, sig.as_der(), &method, self.clock().now());
        Ok(vc)
    }

    /// A Bitstring Status List credential (public), proof by the platform key.
    pub async fn status_list(&self, purpose: &str, list: i64, base: &str) -> Result<Value> {
        let purpose = StatusPurpose::parse(purpose)
            .ok_or_else(|| Error::not_found("status list purpose", "状态列表用途", purpose))?;
        if list < 0 {
            return Err(Error::not_found("status list", "状态列表", &list.to_string()));
        }
        let from = list * STATUS_LIST_SIZE;
        let statuses = self.store().licence_statuses(from, from + STATUS_LIST_SIZE).await.map_err(store_err)?;
        let now = self.clock().now();
        let encoded = encode_status_list(&statuses, list, purpose);
        let mut vc = status_list_credential(&encoded, list, purpose, base, now);
        if let Some(signer) = self.signer() {
            let sig = signer.sign(&proof_input(&vc)).map_err(|e| Error::internal(e.to_string()))?;
            attach_proof(&mut vc, &sig, &format!("{base}/api/v1/audit/public-key.pem"), now);
        }
        Ok(vc)
    }

    /// The public verify page's facts. No sign-in; reveals the verdict, type, issuer,
    /// dates and a masked holder name.
    pub async fn verify_licence_public(&self, id: &str) -> Result<PublicVerification> {
        let id = parse_licence_id(id)?;
        let l = self
            .store()
            .get_licence(id.as_str())
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::not_found("licence", "证照", id.as_str()).with_code(Code::UnknownLicence))?;
        let root = self.authority()?.root().clone();
        let now = self.clock().now();
        let key = self.store().get_org_key(l.key_id).await.map_err(store_err)?;
        let v = verify_parts(&l.id, &l.document, &l.signature, &root, l.issued_at, now);
        let verdict = match v.verdict {
            Verdict::Valid | Verdict::Expired | Verdict::NotYetValid => {
                if l.status == LicenceStatus::Revoked {
                    Verdict::Revoked
                } else if key.as_ref().is_some_and(|k| k.revoked_at.is_some()) {
                    Verdict::CertificateRevoked
                } else if l.status == LicenceStatus::Suspended {
                    Verdict::Suspended
                } else {
                    v.verdict
                }
            }
            other => other,
        };
        Ok(PublicVerification {
            id: l.id.as_str().to_string(),
            verdict,
            type_name: Some(l.type_name.clone()),
            issuer_name: Some(l.issuer_name.clone()),
            holder_masked: Some(masked_holder(&l.holder_name, l.holder_kind)),
            valid_from: Some(l.valid_from),
            valid_until: Some(l.valid_until),
            issued_at: Some(l.issued_at),
            status_reason: l.status_reason.clone(),
            status_at: l.status_at,
            issuer: Some(l.issuer.to_string()),
            seal_serial: key.as_ref().map(|k| k.serial.clone()),
            seal_revoked_at: key.as_ref().and_then(|k| k.revoked_at),
            seal_revoke_reason: key.as_ref().and_then(|k| k.revoked_at.and(k.revoke_reason.clone())),
        })
    }
}
