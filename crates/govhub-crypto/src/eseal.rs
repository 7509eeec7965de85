//! GB/T 38540-2020 electronic seals (电子印章, `SES_Seal`) and electronic seal
//! signatures (电子签章, `SES_Signature`), version 4, DER-encoded.
//!
//! ```text
//! SES_Seal ::= SEQUENCE {
//!   eSealInfo    SES_SealInfo,
//!   cert         OCTET STRING,          -- seal maker's certificate (制章人证书): the platform root
//!   signAlgID    OBJECT IDENTIFIER,     -- 1.2.156.10197.1.501 (SM3withSM2)
//!   signedValue  BIT STRING }           -- DER SM2 signature over SEQUENCE { eSealInfo, cert, signAlgID }
//! SES_SealInfo ::= SEQUENCE {
//!   header   SES_Header,                -- { ID IA5String "ES", version INTEGER 4, Vid IA5String }
//!   esID     IA5String,                 -- seal code (印章编码)
//!   property SES_ESPropertyInfo,
//!   picture  SES_ESPictrueInfo,         -- { type IA5String "SVG"|"PNG"…, data OCTET STRING, width, height INTEGER (mm) }
//!   extDatas ExtensionDatas OPTIONAL }
//! SES_ESPropertyInfo ::= SEQUENCE {
//!   type INTEGER,                       -- 1 organisation seal (单位印章), 2 personal seal
//!   name UTF8String,
//!   certListType INTEGER,               -- 1: certList is SEQUENCE OF OCTET STRING (certificates)
//!   certList SES_CertList,              -- the certificates allowed to seal with it (签章人证书)
//!   createDate GeneralizedTime, validStart GeneralizedTime, validEnd GeneralizedTime }
//! SES_Signature ::= SEQUENCE {
//!   toSign         TBS_Sign,
//!   cert           OCTET STRING,        -- signer's certificate (签章人证书)
//!   signatureAlgID OBJECT IDENTIFIER,   -- 1.2.156.10197.1.501
//!   signature      BIT STRING,          -- DER SM2 signature over the DER of toSign
//!   timeStamp  [0] BIT STRING OPTIONAL }
//! TBS_Sign ::= SEQUENCE {
//!   version INTEGER 4, eseal SES_Seal, timeInfo GeneralizedTime,
//!   dataHash BIT STRING,                -- SM3 of the document bytes
//!   propertyInfo IA5String,             -- what was signed (govhub: the licence identifier)
//!   extDatas ExtensionDatas OPTIONAL }
//! ExtData ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
//! ```
//!
//! **Signed bytes.** The seal's `signedValue` is the platform root key's SM2 signature
//! (distinguishing ID `1234567812345678`) over the DER encoding of
//! `SEQUENCE { eSealInfo, cert, signAlgID }` — the seal's first three fields re-wrapped
//! in a SEQUENCE, as GB/T 38540-2020 specifies for version 4. The document signature is the
//! organisation key's SM2 signature over the DER encoding of `toSign` (the `TBS_Sign`
//! SEQUENCE exactly as it appears inside the `SES_Signature`). Both signature values
//! are DER `SEQUENCE { r, s }` inside the BIT STRING.
//!
//! govhub writes neither `extDatas` nor `timeStamp`; on reading, an unknown critical
//! `ExtData` fails verification and a time stamp is reported but not evaluated. Inputs
//! must be canonical DER (decoding and re-encoding gives the same bytes), so the bytes
//! verified are exactly the bytes received.
//!
//! **Time.** [`verify_document`] checks validity at a time the caller injects. The
//! `timeInfo` inside a signature is the signer's own claim; to accept a signature made
//! while a seal was valid after that seal has expired, pass a signing time established
//! independently (e.g. from the audit log), not `timeInfo`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::asn1::{Any, BitString, GeneralizedTime, Ia5String, ObjectIdentifier, OctetString};
use der::{Decode, Encode, EncodeValue, FixedTag, Length, Sequence, Tag, Writer};

use crate::pki::{self, Certificate, PkiError};
use crate::sm2keys::{KeyError, Sm2PrivateKey, Sm2Signature, SM3_WITH_SM2_OID};

/// Structure version written and accepted (GB/T 38540-2020 is version 4).
pub const VERSION: u32 = 4;
/// `SES_Header.ID`.
pub const HEADER_ID: &str = "ES";
/// `SES_Header.Vid`: the vendor.
pub const VENDOR_ID: &str = "govhub";
/// `SES_ESPropertyInfo.type`: an organisation's seal (单位印章).
pub const SEAL_TYPE_ORGANISATION: u32 = 1;
/// `SES_ESPropertyInfo.type`: a person's seal (个人印章).
pub const SEAL_TYPE_PERSONAL: u32 = 2;
/// `certListType` 1: `certList` holds DER certificates.
pub const CERT_LIST_CERTIFICATES: u32 = 1;
/// `certListType` 2: `certList` holds certificate digests (read-only support: refused).
pub const CERT_LIST_DIGESTS: u32 = 2;

/// Tolerated clock skew between a signature's `timeInfo` and the verification time.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

const MAX_ES_ID: usize = 64;
const MAX_PROPERTY_INFO: usize = 4096;

// ---------------------------------------------------------------------------
// ASN.1 structures
// ---------------------------------------------------------------------------

/// `SES_Header`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SesHeader {
    pub id: Ia5String,
    pub version: u32,
    pub vid: Ia5String,
}

/// `SES_ESPropertyInfo`. `cert_list` is kept as the raw `SES_CertList` value, because
/// the CHOICE's two alternatives are both SEQUENCE OF and only `cert_list_type` tells
/// them apart; see [`SesSealInfo::certificates`].
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SesEsPropertyInfo {
    pub seal_type: u32,
    pub name: String,
    pub cert_list_type: u32,
    pub cert_list: Any,
    pub create_date: GeneralizedTime,
    pub valid_start: GeneralizedTime,
    pub valid_end: GeneralizedTime,
}

/// `SES_ESPictrueInfo` (sic, the standard's spelling). Width and height in millimetres.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SesEsPictureInfo {
    pub picture_type: Ia5String,
    pub data: OctetString,
    pub width: u32,
    pub height: u32,
}

/// `ExtData`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ExtData {
    pub extn_id: ObjectIdentifier,
    #[asn1(default = "Default::default")]
    pub critical: bool,
    pub extn_value: OctetString,
}

/// `SES_SealInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SesSealInfo {
    pub header: SesHeader,
    pub es_id: Ia5String,
    pub property: SesEsPropertyInfo,
    pub picture: SesEsPictureInfo,
    #[asn1(optional = "true")]
    pub ext_datas: Option<Vec<ExtData>>,
}

/// `SES_Seal`: the electronic seal.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SesSeal {
    pub e_seal_info: SesSealInfo,
    pub cert: OctetString,
    pub sign_alg_id: ObjectIdentifier,
    pub signed_value: BitString,
}

/// `TBS_Sign`: what the signer signs.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct TbsSign {
    pub version: u32,
    pub eseal: SesSeal,
    pub time_info: GeneralizedTime,
    pub data_hash: BitString,
    pub property_info: Ia5String,
    #[asn1(optional = "true")]
    pub ext_datas: Option<Vec<ExtData>>,
}

/// `SES_Signature`: a document's electronic seal signature.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SesSignature {
    pub to_sign: TbsSign,
    pub cert: OctetString,
    pub signature_alg_id: ObjectIdentifier,
    pub signature: BitString,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub time_stamp: Option<BitString>,
}

/// The seal's signed content: `SEQUENCE { eSealInfo, cert, signAlgID }` (encode only).
struct SealToSign<'a> {
    e_seal_info: &'a SesSealInfo,
    cert: &'a OctetString,
    sign_alg_id: &'a ObjectIdentifier,
}

impl FixedTag for SealToSign<'_> {
    const TAG: Tag = Tag::Sequence;
}

impl EncodeValue for SealToSign<'_> {
    fn value_len(&self) -> der::Result<Length> {
        self.e_seal_info.encoded_len()? + self.cert.encoded_len()? + self.sign_alg_id.encoded_len()?
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        self.e_seal_info.encode(writer)?;
        self.cert.encode(writer)?;
        self.sign_alg_id.encode(writer)
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a seal could not be made or a sealed document does not verify. Every variant
/// is a distinct verification result; [`SealError::code`] is stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("malformed e-seal structure: {0}")]
    Malformed(String),
    #[error("unsupported e-seal version {0} (govhub reads version 4, GB/T 38540-2020)")]
    UnsupportedVersion(u32),
    #[error("unsupported algorithm {0} (e-seals use SM3withSM2, 1.2.156.10197.1.501)")]
    UnsupportedAlgorithm(String),
    #[error("the document does not match the signed hash: it was changed after sealing")]
    DocumentMismatch,
    #[error("the signature over the sealed data does not verify: the signature was altered")]
    SignatureInvalid,
    #[error("the signer's certificate is not one the seal was issued for")]
    SignerNotInSeal,
    #[error("certList type {0} is not supported (govhub reads type 1, certificates)")]
    UnsupportedCertList(u32),
    #[error("the seal was not made by the trusted platform root")]
    SealMakerUntrusted,
    #[error("the seal's own signature does not verify: the seal was altered")]
    SealSignatureInvalid,
    #[error("the seal carries a critical extension govhub does not understand: {0}")]
    UnsupportedCriticalExtension(String),
    #[error("the signer's certificate is not valid: {0}")]
    SignerCertificate(PkiError),
    #[error("the signer's certificate does not allow signing documents")]
    SignerCannotSign,
    #[error("the signing key does not match the signer's certificate")]
    SignerKeyMismatch,
    #[error("the seal is not valid before {0}")]
    SealNotYetValid(String),
    #[error("the seal expired at {0}")]
    SealExpired(String),
    #[error("the signature claims a signing time outside the seal's validity")]
    SignedOutsideSealValidity,
    #[error("the signature claims a signing time in the future")]
    SignedInFuture,
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Pki(#[from] PkiError),
}

impl SealError {
    /// A stable code a caller can map to its own error space.
    pub fn code(&self) -> &'static str {
        match self {
            SealError::InvalidInput(_) => "seal-invalid-input",
            SealError::Malformed(_) => "seal-malformed",
            SealError::UnsupportedVersion(_) => "seal-unsupported-version",
            SealError::UnsupportedAlgorithm(_) => "seal-unsupported-algorithm",
            SealError::DocumentMismatch => "seal-document-mismatch",
            SealError::SignatureInvalid => "seal-signature-invalid",
            SealError::SignerNotInSeal => "seal-signer-not-in-seal",
            SealError::UnsupportedCertList(_) => "seal-unsupported-cert-list",
            SealError::SealMakerUntrusted => "seal-maker-untrusted",
            SealError::SealSignatureInvalid => "seal-seal-signature-invalid",
            SealError::UnsupportedCriticalExtension(_) => "seal-unsupported-critical-extension",
            SealError::SignerCertificate(_) => "seal-signer-certificate",
            SealError::SignerCannotSign => "seal-signer-cannot-sign",
            SealError::SignerKeyMismatch => "seal-signer-key-mismatch",
            SealError::SealNotYetValid(_) => "seal-not-yet-valid",
            SealError::SealExpired(_) => "seal-expired",
            SealError::SignedOutsideSealValidity => "seal-signed-outside-validity",
            SealError::SignedInFuture => "seal-signed-in-future",
            SealError::Key(e) => e.code(),
            SealError::Pki(e) => e.code(),
        }
    }
}

fn malformed(e: impl fmt::Display) -> SealError {
    SealError::Malformed(e.to_string())
}

fn input(e: impl fmt::Display) -> SealError {
    SealError::InvalidInput(e.to_string())
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn generalized_time(t: SystemTime) -> Result<GeneralizedTime, SealError> {
    let secs = t.duration_since(UNIX_EPOCH).map_err(|_| input("times before 1970 are not supported"))?.as_secs();
    GeneralizedTime::from_unix_duration(Duration::from_secs(secs)).map_err(input)
}

fn system_time(t: &GeneralizedTime) -> SystemTime {
    UNIX_EPOCH + t.to_unix_duration()
}

fn time_text(t: &GeneralizedTime) -> String {
    t.to_date_time().to_string()
}

/// Decode `T` from DER and require that re-encoding yields the same bytes.
fn decode_canonical<'a, T>(der: &'a [u8]) -> Result<T, SealError>
where
    T: Decode<'a> + Encode,
    <T as Decode<'a>>::Error: fmt::Display,
{
    let value = T::from_der(der).map_err(malformed)?;
    let again = value.to_der().map_err(malformed)?;
    if again != der {
        return Err(SealError::Malformed("not canonical DER".into()));
    }
    Ok(value)
}

fn sm3(data: &[u8]) -> [u8; 32] {
    use sm3::{Digest, Sm3};
    Sm3::digest(data).into()
}

fn der_signature(bits: &BitString) -> Result<Sm2Signature, SealError> {
    let bytes = bits.as_bytes().ok_or_else(|| SealError::Malformed("signature BIT STRING has unused bits".into()))?;
    Sm2Signature::from_der(bytes).map_err(|e| SealError::Malformed(e.to_string()))
}

fn seal_to_sign(info: &SesSealInfo, cert: &OctetString, alg: &ObjectIdentifier) -> Result<Vec<u8>, SealError> {
    SealToSign { e_seal_info: info, cert, sign_alg_id: alg }.to_der().map_err(malformed)
}

fn check_critical(ext: &Option<Vec<ExtData>>) -> Result<(), SealError> {
    match ext.iter().flatten().find(|e| e.critical) {
        Some(e) => Err(SealError::UnsupportedCriticalExtension(e.extn_id.to_string())),
        None => Ok(()),
    }
}

impl SesSealInfo {
    /// The DER certificates in `certList` (certListType 1).
    pub fn certificates(&self) -> Result<Vec<Vec<u8>>, SealError> {
        if self.property.cert_list_type != CERT_LIST_CERTIFICATES {
            return Err(SealError::UnsupportedCertList(self.property.cert_list_type));
        }
        let list: Vec<OctetString> = self.property.cert_list.decode_as().map_err(malformed)?;
        Ok(list.into_iter().map(|o| o.as_bytes().to_vec()).collect())
    }
}

impl SesSeal {
    /// Parse a DER `SES_Seal` (canonical DER only).
    pub fn from_der(der: &[u8]) -> Result<SesSeal, SealError> {
        decode_canonical(der)
    }

    /// The DER encoding.
    pub fn to_der(&self) -> Result<Vec<u8>, SealError> {
        Encode::to_der(self).map_err(malformed)
    }

    /// The seal code (`esID`).
    pub fn es_id(&self) -> &str {
        self.e_seal_info.es_id.as_str()
    }

    /// The seal's name.
    pub fn name(&self) -> &str {
        &self.e_seal_info.property.name
    }

    /// Start of validity.
    pub fn valid_start(&self) -> SystemTime {
        system_time(&self.e_seal_info.property.valid_start)
    }

    /// End of validity.
    pub fn valid_end(&self) -> SystemTime {
        system_time(&self.e_seal_info.property.valid_end)
    }
}

impl SesSignature {
    /// Parse a DER `SES_Signature` (canonical DER only).
    pub fn from_der(der: &[u8]) -> Result<SesSignature, SealError> {
        decode_canonical(der)
    }

    /// The DER encoding.
    pub fn to_der(&self) -> Result<Vec<u8>, SealError> {
        Encode::to_der(self).map_err(malformed)
    }
}

// ---------------------------------------------------------------------------
// Making seals
// ---------------------------------------------------------------------------

/// The picture format named in `SES_ESPictrueInfo.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureType {
    Svg,
    Png,
}

impl PictureType {
    fn as_str(self) -> &'static str {
        match self {
            PictureType::Svg => "SVG",
            PictureType::Png => "PNG",
        }
    }
}

/// What a new seal says.
#[derive(Debug, Clone)]
pub struct SealSpec<'a> {
    /// Seal code (`esID`), 1–64 printable ASCII characters.
    pub es_id: &'a str,
    /// [`SEAL_TYPE_ORGANISATION`] or [`SEAL_TYPE_PERSONAL`].
    pub seal_type: u32,
    /// Seal name, e.g. `常州市市场监督管理局电子印章`.
    pub name: &'a str,
    pub picture_type: PictureType,
    /// Picture bytes (UTF-8 SVG or PNG).
    pub picture: &'a [u8],
    /// Physical size in millimetres.
    pub width_mm: u32,
    pub height_mm: u32,
    pub created: SystemTime,
    pub valid_start: SystemTime,
    pub valid_end: SystemTime,
}

fn check_ascii_field(what: &str, value: &str, max: usize) -> Result<Ia5String, SealError> {
    if value.is_empty() || value.len() > max || !value.bytes().all(|b| (0x20..0x7F).contains(&b)) {
        return Err(SealError::InvalidInput(format!("{what} must be 1–{max} printable ASCII characters")));
    }
    Ia5String::new(value).map_err(input)
}

/// Make a seal: the platform root (`maker_key`, `maker_cert`) certifies that the holders
/// of `signer_certs` may seal documents with it. Each signer certificate must have been
/// issued by the maker and be valid at `spec.created`.
pub fn make_seal(
    maker_key: &Sm2PrivateKey,
    maker_cert: &Certificate,
    signer_certs: &[&Certificate],
    spec: &SealSpec<'_>,
) -> Result<SesSeal, SealError> {
    if maker_cert.public_key()? != maker_key.public_key() {
        return Err(SealError::Pki(PkiError::IssuerKeyMismatch));
    }
    if signer_certs.is_empty() {
        return Err(SealError::InvalidInput("a seal needs at least one signer certificate".into()));
    }
    for cert in signer_certs {
        pki::verify_issued_by(cert, maker_cert, spec.created).map_err(SealError::SignerCertificate)?;
        if !cert.allows_document_signing() {
            return Err(SealError::SignerCannotSign);
        }
    }
    let es_id = check_ascii_field("the seal code", spec.es_id, MAX_ES_ID)?;
    let name = spec.name.trim();
    if name.is_empty() || name != spec.name || name.chars().any(char::is_control) {
        return Err(SealError::InvalidInput("the seal name must be non-empty text without surrounding spaces".into()));
    }
    if spec.valid_end <= spec.valid_start {
        return Err(SealError::InvalidInput("the seal's validity must end after it starts".into()));
    }
    if spec.picture.is_empty() || spec.width_mm == 0 || spec.height_mm == 0 {
        return Err(SealError::InvalidInput("the seal needs a picture with a size".into()));
    }
    let certs: Vec<OctetString> =
        signer_certs.iter().map(|c| OctetString::new(c.to_der().to_vec())).collect::<Result<_, _>>().map_err(input)?;
    let info = SesSealInfo {
        header: SesHeader {
            id: Ia5String::new(HEADER_ID).map_err(input)?,
            version: VERSION,
            vid: Ia5String::new(VENDOR_ID).map_err(input)?,
        },
        es_id,
        property: SesEsPropertyInfo {
            seal_type: spec.seal_type,
            name: spec.name.to_string(),
            cert_list_type: CERT_LIST_CERTIFICATES,
            cert_list: Any::encode_from(&certs).map_err(input)?,
            create_date: generalized_time(spec.created)?,
            valid_start: generalized_time(spec.valid_start)?,
            valid_end: generalized_time(spec.valid_end)?,
        },
        picture: SesEsPictureInfo {
            picture_type: Ia5String::new(spec.picture_type.as_str()).map_err(input)?,
            data: OctetString::new(spec.picture.to_vec()).map_err(input)?,
            width: spec.width_mm,
            height: spec.height_mm,
        },
        ext_datas: None,
    };
    let cert = OctetString::new(maker_cert.to_der().to_vec()).map_err(input)?;
    let signed = seal_to_sign(&info, &cert, &SM3_WITH_SM2_OID)?;
    let sig = maker_key.sign(&signed)?;
    Ok(SesSeal {
        e_seal_info: info,
        cert,
        sign_alg_id: SM3_WITH_SM2_OID,
        signed_value: BitString::from_bytes(sig.as_der()).map_err(malformed)?,
    })
}

/// Seal `document`: the organisation key signs a `TBS_Sign` holding the seal, the time
/// `at`, the SM3 of the document and `property_info` (ASCII, e.g. the licence
/// identifier). The seal must list `signer_cert` and be valid at `at`.
pub fn seal_document(
    signer_key: &Sm2PrivateKey,
    signer_cert: &Certificate,
    seal: &SesSeal,
    document: &[u8],
    property_info: &str,
    at: SystemTime,
) -> Result<SesSignature, SealError> {
    if signer_cert.public_key()? != signer_key.public_key() {
        return Err(SealError::SignerKeyMismatch);
    }
    if !seal.e_seal_info.certificates()?.iter().any(|c| c.as_slice() == signer_cert.to_der()) {
        return Err(SealError::SignerNotInSeal);
    }
    check_seal_validity(seal, at)?;
    if at < signer_cert.not_before() {
        return Err(SealError::SignerCertificate(PkiError::NotYetValid(pki::time_text(signer_cert.not_before()))));
    }
    if at > signer_cert.not_after() {
        return Err(SealError::SignerCertificate(PkiError::Expired(pki::time_text(signer_cert.not_after()))));
    }
    let to_sign = TbsSign {
        version: VERSION,
        eseal: seal.clone(),
        time_info: generalized_time(at)?,
        data_hash: BitString::from_bytes(&sm3(document)).map_err(malformed)?,
        property_info: check_ascii_field("property info", property_info, MAX_PROPERTY_INFO)?,
        ext_datas: None,
    };
    let tbs = to_sign.to_der().map_err(malformed)?;
    let sig = signer_key.sign(&tbs)?;
    Ok(SesSignature {
        to_sign,
        cert: OctetString::new(signer_cert.to_der().to_vec()).map_err(input)?,
        signature_alg_id: SM3_WITH_SM2_OID,
        signature: BitString::from_bytes(sig.as_der()).map_err(malformed)?,
        time_stamp: None,
    })
}

fn check_seal_validity(seal: &SesSeal, at: SystemTime) -> Result<(), SealError> {
    let p = &seal.e_seal_info.property;
    if at < system_time(&p.valid_start) {
        return Err(SealError::SealNotYetValid(time_text(&p.valid_start)));
    }
    if at > system_time(&p.valid_end) {
        return Err(SealError::SealExpired(time_text(&p.valid_end)));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Verifying
// ---------------------------------------------------------------------------

/// Check a seal on its own: made (signed) by `root`, well-formed, valid at `at`.
pub fn verify_seal(seal: &SesSeal, root: &Certificate, at: SystemTime) -> Result<(), SealError> {
    check_seal_structure(seal)?;
    check_seal_signature(seal, root)?;
    check_seal_validity(seal, at)
}

fn check_seal_structure(seal: &SesSeal) -> Result<(), SealError> {
    let header = &seal.e_seal_info.header;
    if header.id.as_str() != HEADER_ID {
        return Err(SealError::Malformed(format!("header ID is {:?}, not \"ES\"", header.id.as_str())));
    }
    if header.version != VERSION {
        return Err(SealError::UnsupportedVersion(header.version));
    }
    if seal.sign_alg_id != SM3_WITH_SM2_OID {
        return Err(SealError::UnsupportedAlgorithm(seal.sign_alg_id.to_string()));
    }
    check_critical(&seal.e_seal_info.ext_datas)
}

fn check_seal_signature(seal: &SesSeal, root: &Certificate) -> Result<(), SealError> {
    if seal.cert.as_bytes() != root.to_der() {
        return Err(SealError::SealMakerUntrusted);
    }
    let signed = seal_to_sign(&seal.e_seal_info, &seal.cert, &seal.sign_alg_id)?;
    let sig = der_signature(&seal.signed_value).map_err(|_| SealError::SealSignatureInvalid)?;
    root.public_key()?.verify(&signed, &sig).map_err(|_| SealError::SealSignatureInvalid)
}

/// What a successful verification established.
#[derive(Debug, Clone)]
pub struct VerifiedDocument {
    /// The seal's code (`esID`).
    pub es_id: String,
    /// The seal's name.
    pub seal_name: String,
    /// `SES_ESPropertyInfo.type`.
    pub seal_type: u32,
    /// The signer's certificate (organisation name, USCC, key).
    pub signer: Certificate,
    /// The signing time the signer claimed (`timeInfo`).
    pub claimed_signing_time: SystemTime,
    /// `propertyInfo`.
    pub property_info: String,
    /// SM3 of the document.
    pub document_sm3: [u8; 32],
    /// Whether an (unevaluated) time stamp was attached.
    pub has_time_stamp: bool,
}

/// Verify a DER `SES_Signature` over `document` against the trusted platform `root`, at
/// time `at`. The checks, in order, each with its own error:
/// structure and version ([`SealError::Malformed`], [`SealError::UnsupportedVersion`],
/// [`SealError::UnsupportedAlgorithm`]); the document's SM3 against `dataHash`
/// ([`SealError::DocumentMismatch`]); the signer's signature over `TBS_Sign`
/// ([`SealError::SignatureInvalid`]); the signer's certificate listed in the seal
/// ([`SealError::SignerNotInSeal`]); the seal made by `root`
/// ([`SealError::SealMakerUntrusted`]) with a valid seal signature
/// ([`SealError::SealSignatureInvalid`]); the signer's certificate issued by `root` and
/// valid at `at` ([`SealError::SignerCertificate`]) and allowed to sign
/// ([`SealError::SignerCannotSign`]); the seal valid at `at`
/// ([`SealError::SealNotYetValid`], [`SealError::SealExpired`]); the claimed signing
/// time within the seal's validity and not in the future
/// ([`SealError::SignedOutsideSealValidity`], [`SealError::SignedInFuture`]).
pub fn verify_document(
    signature_der: &[u8],
    document: &[u8],
    root: &Certificate,
    at: SystemTime,
) -> Result<VerifiedDocument, SealError> {
    let sig = SesSignature::from_der(signature_der)?;
    let tbs = &sig.to_sign;
    if tbs.version != VERSION {
        return Err(SealError::UnsupportedVersion(tbs.version));
    }
    if sig.signature_alg_id != SM3_WITH_SM2_OID {
        return Err(SealError::UnsupportedAlgorithm(sig.signature_alg_id.to_string()));
    }
    check_seal_structure(&tbs.eseal)?;
    check_critical(&tbs.ext_datas)?;

    let digest = sm3(document);
    if tbs.data_hash.as_bytes() != Some(digest.as_slice()) {
        return Err(SealError::DocumentMismatch);
    }

    let signer = Certificate::from_der(sig.cert.as_bytes()).map_err(SealError::SignerCertificate)?;
    let tbs_der = tbs.to_der().map_err(malformed)?;
    let signature = der_signature(&sig.signature).map_err(|_| SealError::SignatureInvalid)?;
    signer
        .public_key()
        .map_err(SealError::SignerCertificate)?
        .verify(&tbs_der, &signature)
        .map_err(|_| SealError::SignatureInvalid)?;

    if !tbs.eseal.e_seal_info.certificates()?.iter().any(|c| c.as_slice() == sig.cert.as_bytes()) {
        return Err(SealError::SignerNotInSeal);
    }
    check_seal_signature(&tbs.eseal, root)?;
    pki::verify_issued_by(&signer, root, at).map_err(SealError::SignerCertificate)?;
    if !signer.allows_document_signing() {
        return Err(SealError::SignerCannotSign);
    }
    check_seal_validity(&tbs.eseal, at)?;
    let claimed = system_time(&tbs.time_info);
    let p = &tbs.eseal.e_seal_info.property;
    if claimed < system_time(&p.valid_start) || claimed > system_time(&p.valid_end) {
        return Err(SealError::SignedOutsideSealValidity);
    }
    if claimed > at + MAX_CLOCK_SKEW {
        return Err(SealError::SignedInFuture);
    }

    Ok(VerifiedDocument {
        es_id: tbs.eseal.es_id().to_string(),
        seal_name: tbs.eseal.name().to_string(),
        seal_type: p.seal_type,
        signer,
        claimed_signing_time: claimed,
        property_info: tbs.property_info.as_str().to_string(),
        document_sm3: digest,
        has_time_stamp: sig.time_stamp.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{OrgSpec, RootSpec};

    const DAY: Duration = Duration::from_secs(24 * 3600);
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_735_689_600) // 2025-01-01
    }

    struct World {
        root_key: Sm2PrivateKey,
        root: Certificate,
        org_key: Sm2PrivateKey,
        org: Certificate,
        seal: SesSeal,
    }

    fn root(name: &str) -> (Sm2PrivateKey, Certificate) {
        let key = Sm2PrivateKey::generate().unwrap();
        let spec = RootSpec {
            common_name: name,
            organisation: "govhub 数字政府平台",
            not_before: t0(),
            not_after: t0() + 20 * YEAR,
        };
        let cert = pki::create_root(&key, &spec).unwrap();
        (key, cert)
    }

    fn org(root_key: &Sm2PrivateKey, root: &Certificate) -> (Sm2PrivateKey, Certificate) {
        let key = Sm2PrivateKey::generate().unwrap();
        let spec = OrgSpec {
            name: "常州市市场监督管理局",
            uscc: "11320400014135878L",
            not_before: t0(),
            not_after: t0() + 5 * YEAR,
        };
        let cert = pki::issue_organisation(root_key, root, &key.public_key(), &spec).unwrap();
        (key, cert)
    }

    fn spec<'a>(picture: &'a [u8]) -> SealSpec<'a> {
        SealSpec {
            es_id: "32040000000001",
            seal_type: SEAL_TYPE_ORGANISATION,
            name: "常州市市场监督管理局电子印章",
            picture_type: PictureType::Svg,
            picture,
            width_mm: 42,
            height_mm: 42,
            created: t0() + DAY,
            valid_start: t0() + DAY,
            valid_end: t0() + 2 * YEAR,
        }
    }

    const PICTURE: &[u8] = b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>";

    fn world() -> World {
        let (root_key, root) = root("govhub 平台根证书");
        let (org_key, org) = org(&root_key, &root);
        let seal = make_seal(&root_key, &root, &[&org], &spec(PICTURE)).unwrap();
        World { root_key, root, org_key, org, seal }
    }

    const DOC: &[u8] = "{\"licence\":\"营业执照\",\"holder\":\"91320402123456788Q\"}".as_bytes();
    const LICENCE_ID: &str = "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.002.S";

    fn sealed(w: &World) -> Vec<u8> {
        seal_document(&w.org_key, &w.org, &w.seal, DOC, LICENCE_ID, t0() + 10 * DAY).unwrap().to_der().unwrap()
    }

    #[test]
    fn round_trip() {
        let w = world();
        verify_seal(&w.seal, &w.root, t0() + 10 * DAY).unwrap();
        let seal_der = w.seal.to_der().unwrap();
        assert_eq!(SesSeal::from_der(&seal_der).unwrap(), w.seal);
        assert_eq!(w.seal.e_seal_info.certificates().unwrap(), vec![w.org.to_der().to_vec()]);

        let der = sealed(&w);
        let parsed = SesSignature::from_der(&der).unwrap();
        assert_eq!(parsed.to_der().unwrap(), der);
        let ok = verify_document(&der, DOC, &w.root, t0() + 11 * DAY).unwrap();
        assert_eq!(ok.es_id, "32040000000001");
        assert_eq!(ok.seal_name, "常州市市场监督管理局电子印章");
        assert_eq!(ok.seal_type, SEAL_TYPE_ORGANISATION);
        assert_eq!(ok.property_info, LICENCE_ID);
        assert_eq!(ok.signer.uscc().as_deref(), Some("11320400014135878L"));
        assert_eq!(ok.claimed_signing_time, t0() + 10 * DAY);
        assert_eq!(hex::encode(ok.document_sm3), crate::sm3_hex(DOC));
        assert!(!ok.has_time_stamp);
    }

    #[test]
    fn tampered_document_fails() {
        let w = world();
        let der = sealed(&w);
        let mut doc = DOC.to_vec();
        doc[5] ^= 0x01;
        assert_eq!(verify_document(&der, &doc, &w.root, t0() + 11 * DAY).err(), Some(SealError::DocumentMismatch));
        assert_eq!(verify_document(&der, b"", &w.root, t0() + 11 * DAY).err(), Some(SealError::DocumentMismatch));
    }

    #[test]
    fn tampered_tbs_fails() {
        let w = world();
        let der = sealed(&w);
        // Change one character of propertyInfo inside TBS_Sign: still canonical DER.
        let needle = LICENCE_ID.as_bytes();
        let pos = der.windows(needle.len()).position(|x| x == needle).unwrap();
        let mut bad = der.clone();
        bad[pos + needle.len() - 1] = b'T';
        assert_eq!(verify_document(&bad, DOC, &w.root, t0() + 11 * DAY).err(), Some(SealError::SignatureInvalid));
        // Flip a byte of the seal name inside the embedded seal.
        let needle = "监督".as_bytes();
        let pos = der.windows(needle.len()).position(|x| x == needle).unwrap();
        let mut bad = der.clone();
        bad[pos + 1] ^= 0x01;
        assert_eq!(verify_document(&bad, DOC, &w.root, t0() + 11 * DAY).err(), Some(SealError::SignatureInvalid));
        // Flip a byte of the signature value itself (last byte of the DER).
        let mut bad = der.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x01;
        assert!(matches!(
            verify_document(&bad, DOC, &w.root, t0() + 11 * DAY),
            Err(SealError::SignatureInvalid) | Err(SealError::Malformed(_))
        ));
    }

    #[test]
    fn wrong_root_fails() {
        let w = world();
        let der = sealed(&w);
        let (_, other_root) = root("govhub 平台根证书");
        assert_eq!(verify_document(&der, DOC, &other_root, t0() + 11 * DAY).err(), Some(SealError::SealMakerUntrusted));
        assert_eq!(verify_seal(&w.seal, &other_root, t0() + 11 * DAY).err(), Some(SealError::SealMakerUntrusted));
    }

    #[test]
    fn expired_and_premature_seals_fail() {
        let w = world();
        let der = sealed(&w);
        assert!(matches!(verify_document(&der, DOC, &w.root, t0() + 3 * YEAR), Err(SealError::SealExpired(_))));
        // Signing with an expired seal is refused up front.
        assert!(matches!(
            seal_document(&w.org_key, &w.org, &w.seal, DOC, LICENCE_ID, t0() + 3 * YEAR),
            Err(SealError::SealExpired(_))
        ));
        assert!(matches!(
            seal_document(&w.org_key, &w.org, &w.seal, DOC, LICENCE_ID, t0()),
            Err(SealError::SealNotYetValid(_))
        ));
        // Verified before the seal's start.
        assert!(matches!(verify_document(&der, DOC, &w.root, t0() + DAY / 2), Err(SealError::SealNotYetValid(_))));
        // A signature dated in the future relative to the verification time.
        assert_eq!(verify_document(&der, DOC, &w.root, t0() + 5 * DAY).err(), Some(SealError::SignedInFuture));
    }

    #[test]
    fn expired_signer_certificate_fails() {
        let w = world();
        // The seal is valid for two years, the certificate for five: move past both
        // the certificate's end with a long-lived seal.
        let long = SealSpec { valid_end: t0() + 10 * YEAR, ..spec(PICTURE) };
        let seal = make_seal(&w.root_key, &w.root, &[&w.org], &long).unwrap();
        let der_long =
            seal_document(&w.org_key, &w.org, &seal, DOC, LICENCE_ID, t0() + 10 * DAY).unwrap().to_der().unwrap();
        assert!(matches!(
            verify_document(&der_long, DOC, &w.root, t0() + 6 * YEAR),
            Err(SealError::SignerCertificate(PkiError::Expired(_)))
        ));
    }

    #[test]
    fn a_forged_seal_fails_even_when_the_signer_signs_it() {
        let w = world();
        // The organisation edits its seal (another name) and signs with it.
        let mut forged = w.seal.clone();
        forged.e_seal_info.property.name = "常州市人民政府".to_string();
        let der =
            seal_document(&w.org_key, &w.org, &forged, DOC, LICENCE_ID, t0() + 10 * DAY).unwrap().to_der().unwrap();
        assert_eq!(verify_document(&der, DOC, &w.root, t0() + 11 * DAY).err(), Some(SealError::SealSignatureInvalid));
    }

    #[test]
    fn a_signer_outside_the_seal_fails() {
        let w = world();
        // Another organisation, properly certified, uses the first one's seal.
        let (other_key, other_cert) = org(&w.root_key, &w.root);
        assert_eq!(
            seal_document(&other_key, &other_cert, &w.seal, DOC, LICENCE_ID, t0() + 10 * DAY).err(),
            Some(SealError::SignerNotInSeal)
        );
        // Built by hand, bypassing that check: verification refuses it too.
        let mut forged = seal_document(&w.org_key, &w.org, &w.seal, DOC, LICENCE_ID, t0() + 10 * DAY).unwrap();
        forged.cert = OctetString::new(other_cert.to_der().to_vec()).unwrap();
        let tbs = forged.to_sign.to_der().unwrap();
        forged.signature = BitString::from_bytes(other_key.sign(&tbs).unwrap().as_der()).unwrap();
        let der = forged.to_der().unwrap();
        assert_eq!(verify_document(&der, DOC, &w.root, t0() + 11 * DAY).err(), Some(SealError::SignerNotInSeal));
        // Wrong key for the certificate.
        assert_eq!(
            seal_document(&other_key, &w.org, &w.seal, DOC, LICENCE_ID, t0() + 10 * DAY).err(),
            Some(SealError::SignerKeyMismatch)
        );
    }

    #[test]
    fn malformed_and_truncated_input_fails_cleanly() {
        let w = world();
        let der = sealed(&w);
        for cut in [0, 1, 10, der.len() / 2, der.len() - 1] {
            assert!(matches!(
                verify_document(&der[..cut], DOC, &w.root, t0() + 11 * DAY),
                Err(SealError::Malformed(_))
            ));
        }
        let mut long = der.clone();
        long.push(0);
        assert!(matches!(verify_document(&long, DOC, &w.root, t0() + 11 * DAY), Err(SealError::Malformed(_))));
        assert!(matches!(verify_document(b"not der", DOC, &w.root, t0()), Err(SealError::Malformed(_))));
        // An unknown signature algorithm.
        let mut other = SesSignature::from_der(&der).unwrap();
        other.signature_alg_id = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
        let bad = other.to_der().unwrap();
        assert!(matches!(
            verify_document(&bad, DOC, &w.root, t0() + 11 * DAY),
            Err(SealError::UnsupportedAlgorithm(_))
        ));
        // Another version.
        let mut v1 = SesSignature::from_der(&der).unwrap();
        v1.to_sign.version = 1;
        let bad = v1.to_der().unwrap();
        assert_eq!(verify_document(&bad, DOC, &w.root, t0() + 11 * DAY).err(), Some(SealError::UnsupportedVersion(1)));
        // A critical extension nobody understands.
        let mut ext = SesSignature::from_der(&der).unwrap();
        ext.to_sign.ext_datas = Some(vec![ExtData {
            extn_id: ObjectIdentifier::new_unwrap("1.2.3.4"),
            critical: true,
            extn_value: OctetString::new(vec![1]).unwrap(),
        }]);
        let bad = ext.to_der().unwrap();
        assert!(matches!(
            verify_document(&bad, DOC, &w.root, t0() + 11 * DAY),
            Err(SealError::UnsupportedCriticalExtension(_))
        ));
    }

    #[test]
    fn make_seal_checks_its_inputs() {
        let w = world();
        let (other_root_key, other_root) = root("另一根证书");
        let (_, foreign_org) = org(&other_root_key, &other_root);
        assert!(matches!(
            make_seal(&w.root_key, &w.root, &[&foreign_org], &spec(PICTURE)),
            Err(SealError::SignerCertificate(_))
        ));
        assert!(matches!(make_seal(&w.root_key, &w.root, &[], &spec(PICTURE)), Err(SealError::InvalidInput(_))));
        assert!(matches!(
            make_seal(&other_root_key, &w.root, &[&w.org], &spec(PICTURE)),
            Err(SealError::Pki(PkiError::IssuerKeyMismatch))
        ));
        let bad_id = SealSpec { es_id: "印章", ..spec(PICTURE) };
        assert!(matches!(make_seal(&w.root_key, &w.root, &[&w.org], &bad_id), Err(SealError::InvalidInput(_))));
        let reversed = SealSpec { valid_end: t0(), ..spec(PICTURE) };
        assert!(matches!(make_seal(&w.root_key, &w.root, &[&w.org], &reversed), Err(SealError::InvalidInput(_))));
        assert!(matches!(make_seal(&w.root_key, &w.root, &[&w.org], &spec(b"")), Err(SealError::InvalidInput(_))));
        assert!(matches!(
            seal_document(&w.org_key, &w.org, &w.seal, DOC, "非ASCII", t0() + 10 * DAY),
            Err(SealError::InvalidInput(_))
        ));
    }

    /// "One flipped byte anywhere makes every check fail": every single-bit change of
    /// the sealed file is refused, whatever the reason, and nothing panics.
    #[test]
    fn every_flipped_byte_is_refused() {
        let w = world();
        let der = sealed(&w);
        let at = t0() + 11 * DAY;
        verify_document(&der, DOC, &w.root, at).unwrap();
        for i in 0..der.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = der.clone();
                bad[i] ^= bit;
                assert!(verify_document(&bad, DOC, &w.root, at).is_err(), "byte {i} ^ {bit:#x} accepted");
            }
        }
        for i in 0..DOC.len() {
            let mut doc = DOC.to_vec();
            doc[i] ^= 0x01;
            assert_eq!(verify_document(&der, &doc, &w.root, at).err(), Some(SealError::DocumentMismatch));
        }
    }

    proptest::proptest! {
        /// Arbitrary bytes never panic any parser; they are refused as malformed.
        #[test]
        fn arbitrary_bytes_are_refused_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let root = world_root();
            proptest::prop_assert!(verify_document(&bytes, DOC, &root, t0()).is_err());
            proptest::prop_assert!(SesSeal::from_der(&bytes).is_err());
            proptest::prop_assert!(Certificate::from_der(&bytes).is_err());
            proptest::prop_assert!(Sm2Signature::from_der(&bytes).is_err() || bytes.first() == Some(&0x30));
        }
    }

    fn world_root() -> Certificate {
        static ROOT: std::sync::OnceLock<Certificate> = std::sync::OnceLock::new();
        ROOT.get_or_init(|| root("govhub 平台根证书").1).clone()
    }

    #[test]
    fn error_codes_are_distinct() {
        let all = [
            SealError::InvalidInput(String::new()),
            SealError::Malformed(String::new()),
            SealError::UnsupportedVersion(0),
            SealError::UnsupportedAlgorithm(String::new()),
            SealError::DocumentMismatch,
            SealError::SignatureInvalid,
            SealError::SignerNotInSeal,
            SealError::UnsupportedCertList(0),
            SealError::SealMakerUntrusted,
            SealError::SealSignatureInvalid,
            SealError::UnsupportedCriticalExtension(String::new()),
            SealError::SignerCertificate(PkiError::BadSignature),
            SealError::SignerCannotSign,
            SealError::SignerKeyMismatch,
            SealError::SealNotYetValid(String::new()),
            SealError::SealExpired(String::new()),
            SealError::SignedOutsideSealValidity,
            SealError::SignedInFuture,
        ];
        let codes: std::collections::BTreeSet<_> = all.iter().map(SealError::code).collect();
        assert_eq!(codes.len(), all.len());
    }
}
