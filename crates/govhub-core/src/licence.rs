//! E-licences (电子证照, GB/T 36901–36905): licence types, licences, the signed licence
//! file, its offline verification, W3C Verifiable Credential 2.0 export and the
//! Bitstring Status List. The services are in `licence_service.rs`; the storage port is
//! [`LicenceStore`]; the cryptography (SM2 certificates, GB/T 38540 seals) is in
//! `govhub-crypto`. docs/licences.md is the specification of every format here.

use crate::licence_id::LicenceId;
use crate::names::OrgCode;
use crate::schema::TableSchema;
use crate::store::StoreError;
use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use govhub_crypto::eseal::{self, SealError};
use govhub_crypto::pki::{Certificate, PkiError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `format` of a licence document (the signed bytes).
pub const DOCUMENT_FORMAT: &str = "govhub-licence-document/1";
/// `format` of a licence file (document + seal signature).
pub const FILE_FORMAT: &str = "govhub-licence-file/1";
/// Entries per Bitstring Status List (131,072 bits = 16 KiB, the spec's minimum for
/// herd privacy).
pub const STATUS_LIST_SIZE: i64 = 131_072;
/// Largest licence file `verify_file` reads.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

/// Who may hold a licence of a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HolderKind {
    /// Natural persons (ID number, 持证主体代码类型 111).
    Person,
    /// Legal persons and other organisations (USCC, 001).
    Organisation,
}

impl HolderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HolderKind::Person => "person",
            HolderKind::Organisation => "organisation",
        }
    }
    pub fn parse(s: &str) -> Option<HolderKind> {
        match s {
            "person" => Some(HolderKind::Person),
            "organisation" => Some(HolderKind::Organisation),
            _ => None,
        }
    }
    /// GB/T 36903 持证主体代码类型.
    pub fn code_type(self) -> &'static str {
        match self {
            HolderKind::Person => "111",
            HolderKind::Organisation => "001",
        }
    }
}

/// A licence type (证照类型), defined by an authority.
#[derive(Debug, Clone, PartialEq)]
pub struct LicenceType {
    /// 证照类型代码: the authority's USCC + a 3-digit sequence (21 characters).
    pub code: String,
    /// 证照类型名称, e.g. 营业执照.
    pub name: String,
    /// The defining authority.
    pub authority: OrgCode,
    pub holder_kind: HolderKind,
    /// The type-specific fields (Frictionless Table Schema, govhub formats).
    pub schema: TableSchema,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// Licence status (证照状态). Expiry is not stored: it follows from `valid_until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LicenceStatus {
    Active,
    Suspended,
    Revoked,
}

impl LicenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LicenceStatus::Active => "active",
            LicenceStatus::Suspended => "suspended",
            LicenceStatus::Revoked => "revoked",
        }
    }
    pub fn parse(s: &str) -> Option<LicenceStatus> {
        match s {
            "active" => Some(LicenceStatus::Active),
            "suspended" => Some(LicenceStatus::Suspended),
            "revoked" => Some(LicenceStatus::Revoked),
            _ => None,
        }
    }
}

/// An organisation's seal key: its certificate (issued by the platform root), its
/// GB/T 38540 seal (made by the root) and the private key, encrypted (PKCS#8 PBES2).
#[derive(Debug, Clone, PartialEq)]
pub struct OrgKey {
    pub id: i64,
    pub org: OrgCode,
    /// Certificate serial, hex.
    pub serial: String,
    /// Certificate, DER.
    pub certificate: Vec<u8>,
    /// `SES_Seal`, DER.
    pub seal: Vec<u8>,
    /// `ENCRYPTED PRIVATE KEY` PEM. Never shown, never logged.
    pub encrypted_key: String,
    pub created_at: DateTime<Utc>,
    /// Replaced by a newer key (rotation): no longer signs, still verifies.
    pub retired_at: Option<DateTime<Utc>>,
    /// Revoked: no longer signs, and verification reports it.
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoke_reason: Option<String>,
}

/// A stored licence.
#[derive(Debug, Clone, PartialEq)]
pub struct Licence {
    pub id: LicenceId,
    /// Position in the status lists (list = seq / [`STATUS_LIST_SIZE`]).
    pub seq: i64,
    pub type_code: String,
    pub type_name: String,
    pub holder_code: String,
    pub holder_name: String,
    pub holder_kind: HolderKind,
    pub issuer: OrgCode,
    pub issuer_name: String,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    pub fields: Map<String, Value>,
    pub issued_at: DateTime<Utc>,
    pub issued_by: String,
    /// The org key that sealed it.
    pub key_id: i64,
    pub status: LicenceStatus,
    pub status_reason: Option<String>,
    pub status_at: Option<DateTime<Utc>>,
    pub status_by: Option<String>,
    /// The signed document bytes.
    pub document: Vec<u8>,
    /// `SES_Signature`, DER.
    pub signature: Vec<u8>,
}

impl Licence {
    /// The licence file (`GET /api/v1/licences/{id}/file`).
    pub fn file(&self) -> LicenceFile {
        LicenceFile::new(self.id.as_str(), &self.document, &self.signature)
    }
    /// Status list number and index.
    pub fn status_position(&self) -> (i64, i64) {
        (self.seq / STATUS_LIST_SIZE, self.seq % STATUS_LIST_SIZE)
    }
}

/// A status change.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub status: LicenceStatus,
    pub reason: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// Storage of licence types, org keys and licences. Every [`crate::store::Store`]
/// implements it.
#[async_trait]
pub trait LicenceStore: Send + Sync + 'static {
    /// `Conflict{what:"licence_type"}` when the code exists.
    async fn insert_licence_type(&self, t: &LicenceType) -> Result<(), StoreError>;
    async fn get_licence_type(&self, code: &str) -> Result<Option<LicenceType>, StoreError>;
    /// Ordered by code.
    async fn list_licence_types(&self) -> Result<Vec<LicenceType>, StoreError>;

    /// Store a new org key; returns it with its id.
    async fn insert_org_key(&self, key: &OrgKey) -> Result<OrgKey, StoreError>;
    /// The org's signing key: newest neither retired nor revoked.
    async fn current_org_key(&self, org: &OrgCode) -> Result<Option<OrgKey>, StoreError>;
    async fn get_org_key(&self, id: i64) -> Result<Option<OrgKey>, StoreError>;
    /// All of an org's keys, newest first.
    async fn list_org_keys(&self, org: &OrgCode) -> Result<Vec<OrgKey>, StoreError>;
    /// Mark retired (rotation). False when not current.
    async fn retire_org_key(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Mark revoked. False when already revoked.
    async fn revoke_org_key(&self, id: i64, at: DateTime<Utc>, reason: &str) -> Result<bool, StoreError>;

    /// The next licence sequence number (never reused; gaps are possible).
    async fn next_licence_seq(&self) -> Result<i64, StoreError>;
    /// `Conflict{what:"licence"}` when the id or seq exists.
    async fn insert_licence(&self, l: &Licence) -> Result<(), StoreError>;
    /// Many at once, in one transaction (batch issue).
    async fn insert_licences(&self, ls: &[Licence]) -> Result<(), StoreError>;
    /// Many at once with their source digests (`sources[i]` is `ls[i]`'s), in one
    /// transaction: batch issue records what each licence was issued from.
    /// `Conflict{what:"licence"}` when a digest is already recorded.
    async fn insert_sourced_licences(&self, ls: &[Licence], sources: &[String]) -> Result<(), StoreError>;
    /// `(digest, licence id)` of the given source digests that are recorded.
    async fn licences_by_source(&self, digests: &[String]) -> Result<Vec<(String, String)>, StoreError>;
    async fn get_licence(&self, id: &str) -> Result<Option<Licence>, StoreError>;
    /// A holder's licences (optionally only one issuer's), newest first.
    async fn list_licences_by_holder(
        &self,
        holder_code: &str,
        issuer: Option<&OrgCode>,
    ) -> Result<Vec<Licence>, StoreError>;
    /// Change the status. False when the licence does not exist.
    async fn set_licence_status(&self, id: &str, change: &StatusChange) -> Result<bool, StoreError>;
    /// `(seq, status)` of every licence that is not active with `from <= seq < to`.
    async fn licence_statuses(&self, from: i64, to: i64) -> Result<Vec<(i64, LicenceStatus)>, StoreError>;
}

// ---------------------------------------------------------------------------
// The document (signed bytes) and the file
// ---------------------------------------------------------------------------

/// The licence as signed: GB/T 36903 core metadata plus the type's fields. Its bytes
/// are compact JSON written once, with the keys in this order; they are stored and
/// served exactly as signed, never re-serialised before verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenceDocument {
    pub format: String,
    /// 证照标识.
    pub id: String,
    /// 证照类型代码 / 名称.
    pub type_code: String,
    pub type_name: String,
    /// 证照编号 and version.
    pub number: String,
    pub version: u16,
    /// 持证主体, 持证主体代码, 持证主体代码类型 (111 ID number, 001 USCC).
    pub holder_name: String,
    pub holder_code: String,
    pub holder_code_type: String,
    /// 颁发机构 and its USCC (颁发机构代码).
    pub issuer_name: String,
    pub issuer_code: String,
    /// 颁证日期 (UTC, whole seconds).
    pub issued_at: String,
    /// 有效期起始 / 截止 (inclusive).
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    /// The type's fields, in schema order.
    pub fields: Map<String, Value>,
}

impl LicenceDocument {
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// The downloadable licence file: JSON with the document bytes and the GB/T 38540
/// `SES_Signature`, both base64 (standard alphabet, padded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenceFile {
    pub format: String,
    pub id: String,
    pub document: String,
    pub signature: String,
}

impl LicenceFile {
    pub fn new(id: &str, document: &[u8], signature: &[u8]) -> LicenceFile {
        let b64 = base64::engine::general_purpose::STANDARD;
        LicenceFile {
            format: FILE_FORMAT.into(),
            id: id.into(),
            document: b64.encode(document),
            signature: b64.encode(signature),
        }
    }
    /// Pretty JSON with a trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

pub fn rfc3339_seconds(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn system_time(t: DateTime<Utc>) -> SystemTime {
    match u64::try_from(t.timestamp()) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => UNIX_EPOCH,
    }
}

fn from_system_time(t: SystemTime) -> DateTime<Utc> {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    DateTime::<Utc>::from_timestamp(i64::try_from(secs).unwrap_or(0), 0).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

/// The outcome of verifying a licence. Every bad input has its own variant and stable
/// [`Verdict::code`]; only [`Verdict::Valid`] means the licence may be relied on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// Signed correctly but past its `valid_until` (or before `valid_from`).
    Expired,
    NotYetValid,
    /// Known to govhub as suspended / revoked (online only).
    Suspended,
    Revoked,
    /// The sealing organisation's key was revoked (online only).
    CertificateRevoked,
    /// The document was changed after sealing, or the file's parts disagree.
    Tampered(String),
    /// Not a licence file, or cut short.
    Truncated(String),
    Malformed(String),
    /// A licence identifier whose MOD 37,36 check character is wrong.
    BadCheckCharacter(String),
    /// Some other identifier error.
    BadIdentifier(String),
    /// A document format or licence type govhub does not know.
    UnknownType(String),
    /// Signed by a key or seal the trusted root did not certify.
    WrongKey(String),
    /// The seal certificate expired (or is not yet valid) at verification time.
    CertificateExpired(String),
    /// The seal expired.
    SealExpired(String),
    /// A signature algorithm other than SM3withSM2.
    NotSm2(String),
    /// Anything else the seal check refused (with the seal error's code).
    SealInvalid(&'static str, String),
}

impl Verdict {
    pub fn code(&self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Expired => "expired",
            Verdict::NotYetValid => "not-yet-valid",
            Verdict::Suspended => "suspended",
            Verdict::Revoked => "revoked",
            Verdict::CertificateRevoked => "certificate-revoked",
            Verdict::Tampered(_) => "tampered",
            Verdict::Truncated(_) => "truncated",
            Verdict::Malformed(_) => "malformed",
            Verdict::BadCheckCharacter(_) => "bad-check-character",
            Verdict::BadIdentifier(_) => "bad-identifier",
            Verdict::UnknownType(_) => "unknown-type",
            Verdict::WrongKey(_) => "wrong-key",
            Verdict::CertificateExpired(_) => "certificate-expired",
            Verdict::SealExpired(_) => "seal-expired",
            Verdict::NotSm2(_) => "not-sm2",
            Verdict::SealInvalid(code, _) => code,
        }
    }

    pub fn is_valid(&self) -> bool {
        matches!(self, Verdict::Valid)
    }

    /// An English sentence.
    pub fn reason(&self) -> String {
        match self {
            Verdict::Valid => "the licence is genuine, unchanged and in force".into(),
            Verdict::Expired => "the licence is genuine but its validity period has ended".into(),
            Verdict::NotYetValid => "the licence is genuine but its validity period has not begun".into(),
            Verdict::Suspended => "the issuer has suspended this licence".into(),
            Verdict::Revoked => "the issuer has revoked this licence".into(),
            Verdict::CertificateRevoked => "the issuing organisation's seal key has been revoked".into(),
            Verdict::Tampered(s) => format!("the licence was changed after it was sealed: {s}"),
            Verdict::Truncated(s) => format!("the file is incomplete: {s}"),
            Verdict::Malformed(s) => format!("the file is not a well-formed licence: {s}"),
            Verdict::BadCheckCharacter(s) | Verdict::BadIdentifier(s) => {
                format!("the licence identifier is wrong: {s}")
            }
            Verdict::UnknownType(s) => format!("unknown licence type or format: {s}"),
            Verdict::WrongKey(s) => format!("not sealed under the trusted platform root: {s}"),
            Verdict::CertificateExpired(s) => format!("the seal certificate is not valid now: {s}"),
            Verdict::SealExpired(s) => format!("the e-seal is not valid now: {s}"),
            Verdict::NotSm2(s) => format!("not an SM2/SM3 signature: {s}"),
            Verdict::SealInvalid(_, s) => format!("the seal does not verify: {s}"),
        }
    }

    /// A Chinese sentence.
    pub fn reason_zh(&self) -> String {
        match self {
            Verdict::Valid => "证照真实、未被篡改且有效".into(),
            Verdict::Expired => "证照真实，但已超过有效期".into(),
            Verdict::NotYetValid => "证照真实，但尚未到有效期起始日".into(),
            Verdict::Suspended => "该证照已被发证机关暂停（中止）".into(),
            Verdict::Revoked => "该证照已被发证机关注销（吊销）".into(),
            Verdict::CertificateRevoked => "发证单位的电子印章密钥已被吊销".into(),
            Verdict::Tampered(_) => "证照内容在签章后被篡改".into(),
            Verdict::Truncated(_) => "证照文件不完整（被截断）".into(),
            Verdict::Malformed(_) => "证照文件格式不正确".into(),
            Verdict::BadCheckCharacter(_) => "证照标识校验位错误".into(),
            Verdict::BadIdentifier(_) => "证照标识不合法".into(),
            Verdict::UnknownType(_) => "未知的证照类型或文件格式".into(),
            Verdict::WrongKey(_) => "签章密钥不是由可信平台根证书签发".into(),
            Verdict::CertificateExpired(_) => "签章证书已过期或尚未生效".into(),
            Verdict::SealExpired(_) => "电子印章已过期或尚未生效".into(),
            Verdict::NotSm2(_) => "签名算法不是SM2/SM3".into(),
            Verdict::SealInvalid(_, _) => "电子签章验证失败".into(),
        }
    }
}

/// What a verification established, with the verdict.
#[derive(Debug, Clone)]
pub struct Verification {
    pub verdict: Verdict,
    /// Present once the signature was checked.
    pub document: Option<LicenceDocument>,
    /// The sealing organisation's certificate (when the signature verified).
    pub signer: Option<Certificate>,
    pub seal_name: Option<String>,
    pub signed_at: Option<DateTime<Utc>>,
}

impl Verification {
    fn fail(verdict: Verdict) -> Verification {
        Verification { verdict, document: None, signer: None, seal_name: None, signed_at: None }
    }
}

fn seal_verdict(e: &SealError) -> Verdict {
    match e {
        SealError::Malformed(s) => Verdict::Malformed(format!("SES_Signature: {s}")),
        SealError::UnsupportedAlgorithm(s) => Verdict::NotSm2(s.clone()),
        SealError::DocumentMismatch => Verdict::Tampered(e.to_string()),
        SealError::SignatureInvalid | SealError::SealSignatureInvalid => Verdict::Tampered(e.to_string()),
        SealError::SealMakerUntrusted => Verdict::WrongKey(e.to_string()),
        SealError::SignerCertificate(p) => match p {
            PkiError::Expired(_) | PkiError::NotYetValid(_) => Verdict::CertificateExpired(p.to_string()),
            PkiError::UnsupportedAlgorithm(s) => Verdict::NotSm2(s.clone()),
            PkiError::Malformed(_) => Verdict::Malformed(p.to_string()),
            _ => Verdict::WrongKey(p.to_string()),
        },
        SealError::SealExpired(_) | SealError::SealNotYetValid(_) => Verdict::SealExpired(e.to_string()),
        other => Verdict::SealInvalid(other.code(), other.to_string()),
    }
}

fn id_verdict(e: &crate::licence_id::LicenceIdError) -> Verdict {
    if e.code() == "licence-id-check" {
        Verdict::BadCheckCharacter(e.to_string())
    } else {
        Verdict::BadIdentifier(e.to_string())
    }
}

/// Verify a licence file's bytes offline against the trusted `root` at time `at`:
/// the file's shape, the identifier and its check character, the GB/T 38540 seal
/// (signature, certificate chain, seal validity — see `eseal::verify_document`), that
/// the seal names this licence, that the document is this licence, and the licence's
/// validity period. Status (suspension, revocation) needs govhub's status list.
pub fn verify_file(bytes: &[u8], root: &Certificate, at: DateTime<Utc>) -> Verification {
    if bytes.len() > MAX_FILE_BYTES {
        return Verification::fail(Verdict::Malformed(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    let file: LicenceFile = match serde_json::from_slice(bytes) {
        Ok(f) => f,
        Err(e) if e.is_eof() => return Verification::fail(Verdict::Truncated(e.to_string())),
        Err(e) => return Verification::fail(Verdict::Malformed(e.to_string())),
    };
    if file.format != FILE_FORMAT {
        return Verification::fail(Verdict::UnknownType(format!("file format \"{}\"", file.format)));
    }
    let id: LicenceId = match file.id.parse() {
        Ok(id) => id,
        Err(e) => return Verification::fail(id_verdict(&e)),
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let document = match b64.decode(file.document.as_bytes()) {
        Ok(d) => d,
        Err(e) => return Verification::fail(Verdict::Malformed(format!("document: {e}"))),
    };
    let signature = match b64.decode(file.signature.as_bytes()) {
        Ok(d) => d,
        Err(e) => return Verification::fail(Verdict::Malformed(format!("signature: {e}"))),
    };
    verify_parts(&id, &document, &signature, root, at, at)
}

/// Verify a licence's parts: the seal at `seal_at` (the verification time offline; the
/// recorded sealing time online), the validity period at `now`.
pub fn verify_parts(
    id: &LicenceId,
    document: &[u8],
    signature: &[u8],
    root: &Certificate,
    seal_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Verification {
    let verified = match eseal::verify_document(signature, document, root, system_time(seal_at)) {
        Ok(v) => v,
        Err(e) => return Verification::fail(seal_verdict(&e)),
    };
    let mut out = Verification {
        verdict: Verdict::Valid,
        document: None,
        signer: Some(verified.signer.clone()),
        seal_name: Some(verified.seal_name.clone()),
        signed_at: Some(from_system_time(verified.claimed_signing_time)),
    };
    if verified.property_info != id.as_str() {
        out.verdict =
            Verdict::Tampered(format!("the seal was made for licence {}, not {}", verified.property_info, id.as_str()));
        return out;
    }
    // The seal vouches for these bytes; from here on they are read, not trusted blindly.
    let doc_value: Value = match serde_json::from_slice(document) {
        Ok(v) => v,
        Err(e) => {
            out.verdict = Verdict::Malformed(format!("document: {e}"));
            return out;
        }
    };
    if doc_value.get("format").and_then(Value::as_str) != Some(DOCUMENT_FORMAT) {
        out.verdict =
            Verdict::UnknownType(format!("document format {}", doc_value.get("format").unwrap_or(&Value::Null)));
        return out;
    }
    let doc: LicenceDocument = match serde_json::from_value(doc_value) {
        Ok(d) => d,
        Err(e) => {
            out.verdict = Verdict::Malformed(format!("document: {e}"));
            return out;
        }
    };
    if doc.id != id.as_str() {
        out.verdict = Verdict::Tampered(format!("the document is licence {}, the file says {}", doc.id, id.as_str()));
    } else if doc.type_code != id.type_code() {
        out.verdict = Verdict::UnknownType(format!("type {} does not match the identifier", doc.type_code));
    } else if verified.signer.uscc().as_deref() != Some(doc.issuer_code.as_str()) || doc.issuer_code != id.issuer_code()
    {
        out.verdict = Verdict::WrongKey(format!(
            "sealed by {} but issued in the name of {}",
            verified.signer.uscc().unwrap_or_default(),
            doc.issuer_code
        ));
    } else {
        let today = now.date_naive();
        if today > doc.valid_until {
            out.verdict = Verdict::Expired;
        } else if today < doc.valid_from {
            out.verdict = Verdict::NotYetValid;
        }
    }
    out.document = Some(doc);
    out
}

// ---------------------------------------------------------------------------
// Verifiable Credentials and the Bitstring Status List
// ---------------------------------------------------------------------------

/// Status list purposes govhub serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusPurpose {
    Revocation,
    Suspension,
}

impl StatusPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusPurpose::Revocation => "revocation",
            StatusPurpose::Suspension => "suspension",
        }
    }
    pub fn parse(s: &str) -> Option<StatusPurpose> {
        match s {
            "revocation" => Some(StatusPurpose::Revocation),
            "suspension" => Some(StatusPurpose::Suspension),
            _ => None,
        }
    }
    fn set_by(self, s: LicenceStatus) -> bool {
        match self {
            StatusPurpose::Revocation => s == LicenceStatus::Revoked,
            StatusPurpose::Suspension => s == LicenceStatus::Suspended,
        }
    }
}

/// The Bitstring Status List `encodedList`: the bitstring (index 0 = the most
/// significant bit of the first byte), GZIP-compressed, multibase base64url without
/// padding (prefix `u`).
pub fn encode_status_list(statuses: &[(i64, LicenceStatus)], list: i64, purpose: StatusPurpose) -> String {
    use std::io::Write;
    let mut bits = vec![0u8; (STATUS_LIST_SIZE / 8) as usize];
    for (seq, status) in statuses {
        if seq / STATUS_LIST_SIZE == list && purpose.set_by(*status) {
            let i = (seq % STATUS_LIST_SIZE) as usize;
            if let Some(b) = bits.get_mut(i / 8) {
                *b |= 0x80 >> (i % 8);
            }
        }
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let zipped = match gz.write_all(&bits) {
        Ok(()) => gz.finish().unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    format!("u{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(zipped))
}

/// Read bit `index` of an `encodedList` (for tests and verifiers).
pub fn status_bit(encoded: &str, index: i64) -> Option<bool> {
    use std::io::Read;
    let zipped = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded.strip_prefix('u')?).ok()?;
    let mut bits = Vec::new();
    flate2::read::GzDecoder::new(zipped.as_slice()).read_to_end(&mut bits).ok()?;
    let i = usize::try_from(index).ok()?;
    Some(bits.get(i / 8)? & (0x80 >> (i % 8)) != 0)
}

/// The unsigned VC 2.0 document of a licence. `base` is the server's public URL.
pub fn credential(l: &Licence, issuer_uscc: &str, base: &str) -> Value {
    let (list, index) = l.status_position();
    let entry = |purpose: StatusPurpose| {
        json!({
            "id": format!("{base}/api/v1/licences/status-list/{}/{list}#{index}", purpose.as_str()),
            "type": "BitstringStatusListEntry",
            "statusPurpose": purpose.as_str(),
            "statusListIndex": index.to_string(),
            "statusListCredential": format!("{base}/api/v1/licences/status-list/{}/{list}", purpose.as_str()),
        })
    };
    let mut subject = Map::new();
    subject.insert("id".into(), Value::String(format!("urn:govhub:holder:{}", l.holder_code)));
    subject.insert("name".into(), Value::String(l.holder_name.clone()));
    subject.insert("holderCode".into(), Value::String(l.holder_code.clone()));
    subject.insert("holderCodeType".into(), Value::String(l.holder_kind.code_type().into()));
    subject.insert(
        "licence".into(),
        json!({
            "id": l.id.as_str(),
            "type": l.type_code,
            "typeName": l.type_name,
            "number": l.id.number(),
            "fields": l.fields,
        }),
    );
    json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": format!("{base}/api/v1/licences/{}/credential", l.id.as_str()),
        "type": ["VerifiableCredential", "GovhubElectronicLicence"],
        "name": l.type_name,
        "issuer": {"id": format!("urn:uscc:{issuer_uscc}"), "name": l.issuer_name},
        "validFrom": format!("{}T00:00:00Z", l.valid_from),
        "validUntil": format!("{}T23:59:59Z", l.valid_until),
        "credentialSubject": subject,
        "credentialStatus": [entry(StatusPurpose::Revocation), entry(StatusPurpose::Suspension)],
    })
}

/// The unsigned Bitstring Status List credential.
pub fn status_list_credential(
    encoded: &str,
    list: i64,
    purpose: StatusPurpose,
    base: &str,
    now: DateTime<Utc>,
) -> Value {
    let id = format!("{base}/api/v1/licences/status-list/{}/{list}", purpose.as_str());
    json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": id,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": format!("{base}/api/v1/pki/root.pem"),
        "validFrom": rfc3339_seconds(now),
        "credentialSubject": {
            "id": format!("{id}#list"),
            "type": "BitstringStatusList",
            "statusPurpose": purpose.as_str(),
            "encodedList": encoded,
        },
    })
}

/// The bytes govhub's non-standard proof signs: the credential without `proof`,
/// serialised compactly by serde_json with its keys in the order govhub wrote them.
pub fn proof_input(credential: &Value) -> Vec<u8> {
    let mut c = credential.clone();
    if let Some(o) = c.as_object_mut() {
        o.remove("proof");
    }
    serde_json::to_vec(&c).unwrap_or_default()
}

/// Attach govhub's SM2 proof (`cryptosuite` `govhub-sm2-sm3-2026`, not a W3C suite).
pub fn attach_proof(credential: &mut Value, signature_der: &[u8], verification_method: &str, at: DateTime<Utc>) {
    let proof = json!({
        "type": "DataIntegrityProof",
        "cryptosuite": "govhub-sm2-sm3-2026",
        "created": rfc3339_seconds(at),
        "verificationMethod": verification_method,
        "proofPurpose": "assertionMethod",
        "proofValue": format!("u{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature_der)),
    });
    if let Some(o) = credential.as_object_mut() {
        o.insert("proof".into(), proof);
    }
}

/// Mask a holder name for the public verify page (张*, 欧阳**, 常州**有限公司…).
pub fn masked_holder(name: &str, kind: HolderKind) -> String {
    match kind {
        HolderKind::Person => crate::masking::mask_text(crate::masking::MaskRule::PersonName, name),
        HolderKind::Organisation => {
            let chars: Vec<char> = name.chars().collect();
            if chars.len() <= 4 {
                return crate::masking::mask_text(crate::masking::MaskRule::Generic, name);
            }
            let keep_head = 2.min(chars.len());
            let keep_tail = 4.min(chars.len() - keep_head);
            let mut s: String = chars[..keep_head].iter().collect();
            s.extend(std::iter::repeat_n('*', chars.len() - keep_head - keep_tail));
            s.extend(&chars[chars.len() - keep_tail..]);
            s
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn status_list_round_trips_and_is_gzip_multibase() {
        let statuses = vec![
            (3, LicenceStatus::Revoked),
            (5, LicenceStatus::Suspended),
            (STATUS_LIST_SIZE + 3, LicenceStatus::Revoked),
        ];
        let rev = encode_status_list(&statuses, 0, StatusPurpose::Revocation);
        assert!(rev.starts_with('u'));
        assert_eq!(status_bit(&rev, 3), Some(true));
        assert_eq!(status_bit(&rev, 5), Some(false));
        assert_eq!(status_bit(&rev, 4), Some(false));
        let sus = encode_status_list(&statuses, 0, StatusPurpose::Suspension);
        assert_eq!(status_bit(&sus, 5), Some(true));
        assert_eq!(status_bit(&sus, 3), Some(false));
        let zipped = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&rev[1..]).unwrap();
        assert_eq!(&zipped[..2], &[0x1f, 0x8b], "GZIP magic");
        assert_eq!(status_bit(&rev, STATUS_LIST_SIZE), None);
    }

    #[test]
    fn masks_holder_names() {
        assert_eq!(masked_holder("常州龙城科技有限公司", HolderKind::Organisation), "常州****有限公司");
        assert!(masked_holder("张三", HolderKind::Person).contains('*'));
    }

    #[test]
    fn garbage_gives_distinct_verdicts_not_panics() {
        let key = govhub_crypto::sm2keys::Sm2PrivateKey::generate().unwrap();
        let now = SystemTime::now();
        let root = govhub_crypto::pki::create_root(
            &key,
            &govhub_crypto::pki::RootSpec {
                common_name: "t",
                organisation: "t",
                not_before: now - Duration::from_secs(60),
                not_after: now + Duration::from_secs(86_400),
            },
        )
        .unwrap();
        let at = Utc::now();
        assert_eq!(verify_file(b"{\"format\":", &root, at).verdict.code(), "truncated");
        assert_eq!(verify_file(b"not json", &root, at).verdict.code(), "malformed");
        let f =
            LicenceFile::new("1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.002.T", b"{}", b"x");
        assert_eq!(verify_file(&f.to_bytes(), &root, at).verdict.code(), "bad-check-character");
        let f =
            LicenceFile::new("1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.002.S", b"{}", b"x");
        assert_eq!(verify_file(&f.to_bytes(), &root, at).verdict.code(), "malformed");
        let mut f = f;
        f.format = "other/1".into();
        assert_eq!(verify_file(&f.to_bytes(), &root, at).verdict.code(), "unknown-type");
    }
}
