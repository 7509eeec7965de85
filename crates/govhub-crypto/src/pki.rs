//! The platform's X.509 v3 key hierarchy: one self-signed **root** certificate, and under
//! it one **organisation** certificate per seal key. Two levels only, by design: OpenSSL
//! 3.0 applies `-vfyopt distid:…` to the certificate being checked but not to its CA, so
//! every link of a longer chain would need checking by hand.
//!
//! * Keys: SM2 (`id-ecPublicKey`, curve `1.2.156.10197.1.301`).
//! * Signatures: `SM3withSM2` (`1.2.156.10197.1.501`, parameters absent), computed with
//!   the distinguishing identifier `1234567812345678` and carried as DER
//!   `SEQUENCE { r, s }` in the `signatureValue` BIT STRING. The certificate builder is
//!   given a signer that yields DER; handing it the raw `r ‖ s` form builds certificates
//!   OpenSSL parses but rejects ("certificate signature failure").
//! * Root: `C=CN, O=…, CN=…`; basicConstraints `CA:TRUE, pathlen:0` (critical);
//!   keyUsage `keyCertSign, cRLSign` (critical); subjectKeyIdentifier.
//! * Organisation: `C=CN, O=<name>, CN=<name>, serialNumber=<USCC>`; basicConstraints
//!   `CA:FALSE` (critical); keyUsage `digitalSignature, nonRepudiation` (critical);
//!   subject and authority key identifiers.
//! * Serial numbers: 16 random bytes, positive. Names: UTF8String, except
//!   `countryName` and `serialNumber`, which RFC 5280 makes PrintableString.
//!
//! Verification ([`verify_issued_by`], [`verify_root`]) takes the time to check validity
//! at as a parameter, so callers can check "now" or a past signing time.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::asn1::{Any, BitString, OctetString, PrintableStringRef, Utf8StringRef};
use der::{DateTime, Decode, Encode, Tag, Tagged};
use rand::RngCore;
use signature::{Keypair, Signer};
use sm2::dsa::{DerSignature, Signature as RawSignature, SigningKey, VerifyingKey};
use spki::SubjectPublicKeyInfoOwned as SubjectPublicKeyInfo;
use spki::{AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, ObjectIdentifier, SubjectPublicKeyInfoRef};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::sm2keys::{KeyError, Sm2PrivateKey, Sm2PublicKey, Sm2Signature, SM3_WITH_SM2_OID};

const OID_COUNTRY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
const OID_ORGANISATION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
const OID_COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");
const OID_SKI: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_AKI: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.35");

/// RFC 5280's upper bound for organizationName and commonName.
pub const MAX_NAME_CHARS: usize = 64;

const USCC_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// What went wrong building or checking a certificate. [`PkiError::code`] is stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkiError {
    #[error("invalid name: {0}")]
    InvalidName(String),
    #[error("invalid validity period: {0}")]
    InvalidValidity(String),
    #[error("the issuing key does not belong to the issuer certificate")]
    IssuerKeyMismatch,
    #[error("the issuer certificate is not a CA allowed to sign certificates")]
    IssuerNotCa,
    #[error("building the certificate failed: {0}")]
    Build(String),
    #[error("malformed certificate: {0}")]
    Malformed(String),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("unsupported signature algorithm {0} (govhub certificates use SM3withSM2, 1.2.156.10197.1.501)")]
    UnsupportedAlgorithm(String),
    #[error("the certificate was issued by \"{found}\", not by \"{expected}\"")]
    IssuerMismatch { expected: String, found: String },
    #[error("the certificate's signature does not verify under the issuer's key")]
    BadSignature,
    #[error("the certificate is not valid before {0}")]
    NotYetValid(String),
    #[error("the certificate expired at {0}")]
    Expired(String),
    #[error("the issuer certificate is not valid before {0}")]
    IssuerNotYetValid(String),
    #[error("the issuer certificate expired at {0}")]
    IssuerExpired(String),
    #[error("the certificate has a critical extension govhub does not understand: {0}")]
    UnsupportedCriticalExtension(String),
    #[error("the root certificate is not self-issued")]
    NotSelfIssued,
}

impl PkiError {
    /// A stable code a caller can map to its own error space.
    pub fn code(&self) -> &'static str {
        match self {
            PkiError::InvalidName(_) => "cert-invalid-name",
            PkiError::InvalidValidity(_) => "cert-invalid-validity",
            PkiError::IssuerKeyMismatch => "cert-issuer-key-mismatch",
            PkiError::IssuerNotCa => "cert-issuer-not-ca",
            PkiError::Build(_) => "cert-build",
            PkiError::Malformed(_) => "cert-malformed",
            PkiError::Key(e) => e.code(),
            PkiError::UnsupportedAlgorithm(_) => "cert-unsupported-algorithm",
            PkiError::IssuerMismatch { .. } => "cert-issuer-mismatch",
            PkiError::BadSignature => "cert-bad-signature",
            PkiError::NotYetValid(_) => "cert-not-yet-valid",
            PkiError::Expired(_) => "cert-expired",
            PkiError::IssuerNotYetValid(_) => "cert-issuer-not-yet-valid",
            PkiError::IssuerExpired(_) => "cert-issuer-expired",
            PkiError::UnsupportedCriticalExtension(_) => "cert-unsupported-critical-extension",
            PkiError::NotSelfIssued => "cert-not-self-issued",
        }
    }
}

fn malformed(e: impl fmt::Display) -> PkiError {
    PkiError::Malformed(e.to_string())
}

fn build_err(e: impl fmt::Display) -> PkiError {
    PkiError::Build(e.to_string())
}

// ---------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------

/// An X.509 certificate held with its exact DER encoding (always canonical DER).
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    x509: x509_cert::Certificate,
    der: Vec<u8>,
}

impl Certificate {
    /// Parse DER. Only canonical DER with nothing trailing is accepted, so the bytes a
    /// signature covers are exactly the bytes received.
    pub fn from_der(der: &[u8]) -> Result<Certificate, PkiError> {
        let x509 = x509_cert::Certificate::from_der(der).map_err(malformed)?;
        let again = x509.to_der().map_err(malformed)?;
        if again != der {
            return Err(PkiError::Malformed("not canonical DER".into()));
        }
        Ok(Certificate { x509, der: again })
    }

    /// Parse a `-----BEGIN CERTIFICATE-----` PEM.
    pub fn from_pem(pem: &str) -> Result<Certificate, PkiError> {
        let (label, der) = der::pem::decode_vec(pem.trim().as_bytes()).map_err(malformed)?;
        if label != "CERTIFICATE" {
            return Err(PkiError::Malformed(format!("expected a CERTIFICATE PEM, found {label}")));
        }
        Certificate::from_der(&der)
    }

    fn from_x509(x509: x509_cert::Certificate) -> Result<Certificate, PkiError> {
        let der = x509.to_der().map_err(build_err)?;
        Ok(Certificate { x509, der })
    }

    /// The DER encoding.
    pub fn to_der(&self) -> &[u8] {
        &self.der
    }

    /// PEM with LF line endings.
    pub fn to_pem(&self) -> Result<String, PkiError> {
        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &self.der).map_err(malformed)
    }

    /// The parsed certificate, for callers that need fields not exposed here.
    pub fn x509(&self) -> &x509_cert::Certificate {
        &self.x509
    }

    fn tbs(&self) -> &TbsCertificate {
        self.x509.tbs_certificate()
    }

    /// Subject in RFC 4514 form.
    pub fn subject(&self) -> String {
        self.tbs().subject().to_string()
    }

    /// Issuer in RFC 4514 form.
    pub fn issuer(&self) -> String {
        self.tbs().issuer().to_string()
    }

    /// The subject's commonName.
    pub fn common_name(&self) -> Option<String> {
        attribute(self.tbs().subject(), OID_COMMON_NAME)
    }

    /// The subject's organizationName.
    pub fn organisation(&self) -> Option<String> {
        attribute(self.tbs().subject(), OID_ORGANISATION)
    }

    /// The subject's serialNumber attribute: the organisation's USCC in govhub
    /// organisation certificates.
    pub fn uscc(&self) -> Option<String> {
        attribute(self.tbs().subject(), OID_SERIAL_NUMBER)
    }

    /// Serial number, lower-case hex.
    pub fn serial_hex(&self) -> String {
        hex::encode(self.tbs().serial_number().as_bytes())
    }

    /// Start of the validity period.
    pub fn not_before(&self) -> SystemTime {
        self.tbs().validity().not_before.to_system_time()
    }

    /// End of the validity period.
    pub fn not_after(&self) -> SystemTime {
        self.tbs().validity().not_after.to_system_time()
    }

    /// Whether basicConstraints says `CA:TRUE`.
    pub fn is_ca(&self) -> bool {
        matches!(self.tbs().get_extension::<BasicConstraints>(), Ok(Some((_, bc))) if bc.ca)
    }

    /// The key usage bits, if the extension is present and well-formed.
    fn key_usage(&self) -> Option<KeyUsage> {
        match self.tbs().get_extension::<KeyUsage>() {
            Ok(Some((_, ku))) => Some(ku),
            _ => None,
        }
    }

    /// Whether keyUsage allows signing documents (digitalSignature or nonRepudiation).
    pub fn allows_document_signing(&self) -> bool {
        self.key_usage().is_some_and(|ku| ku.digital_signature() || ku.non_repudiation())
    }

    /// The subject's SM2 public key.
    pub fn public_key(&self) -> Result<Sm2PublicKey, PkiError> {
        let spki = self.tbs().subject_public_key_info().to_der().map_err(malformed)?;
        Ok(Sm2PublicKey::from_spki_der(&spki)?)
    }

    /// SM3 of the DER certificate, lower-case hex.
    pub fn fingerprint_sm3(&self) -> String {
        crate::sm3_hex(&self.der)
    }

    /// Whether the certificate is within its validity period at `at`.
    pub fn is_valid_at(&self, at: SystemTime) -> bool {
        self.not_before() <= at && at <= self.not_after()
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject())
            .field("issuer", &self.issuer())
            .field("serial", &self.serial_hex())
            .finish()
    }
}

/// The first value of attribute `oid` in `name`, as text.
fn attribute(name: &Name, oid: ObjectIdentifier) -> Option<String> {
    name.iter().filter(|atv| atv.oid == oid).find_map(|atv| match atv.value.tag() {
        Tag::Utf8String => Utf8StringRef::try_from(&atv.value).ok().map(|s| s.as_str().to_string()),
        Tag::PrintableString => PrintableStringRef::try_from(&atv.value).ok().map(|s| s.as_str().to_string()),
        _ => None,
    })
}

// ---------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------

/// The platform root certificate's contents.
#[derive(Debug, Clone)]
pub struct RootSpec<'a> {
    /// commonName, e.g. `govhub 平台根证书`.
    pub common_name: &'a str,
    /// organizationName, e.g. the operating authority.
    pub organisation: &'a str,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

/// An organisation certificate's contents.
#[derive(Debug, Clone)]
pub struct OrgSpec<'a> {
    /// The organisation's registered name (organizationName and commonName).
    pub name: &'a str,
    /// Its 18-character unified social credit code (subject serialNumber).
    pub uscc: &'a str,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

/// A signer handing the X.509 builder DER-encoded SM2 signatures under `SM3withSM2`.
struct DerSigner<'a>(&'a SigningKey);

impl Keypair for DerSigner<'_> {
    type VerifyingKey = VerifyingKey;

    fn verifying_key(&self) -> VerifyingKey {
        self.0.verifying_key().clone()
    }
}

impl DynSignatureAlgorithmIdentifier for DerSigner<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(AlgorithmIdentifierOwned { oid: SM3_WITH_SM2_OID, parameters: None })
    }
}

impl Signer<DerSignature> for DerSigner<'_> {
    fn try_sign(&self, msg: &[u8]) -> Result<DerSignature, signature::Error> {
        let raw: RawSignature = self.0.try_sign(msg)?;
        Ok(raw.to_der())
    }
}

fn text_attribute(oid: ObjectIdentifier, value: &str) -> Result<RelativeDistinguishedName, PkiError> {
    let any = Any::new(Tag::Utf8String, value.as_bytes()).map_err(|e| PkiError::InvalidName(e.to_string()))?;
    rdn(oid, any)
}

fn printable_attribute(oid: ObjectIdentifier, value: &str) -> Result<RelativeDistinguishedName, PkiError> {
    PrintableStringRef::new(value).map_err(|_| PkiError::InvalidName(format!("{value:?} is not a PrintableString")))?;
    let any = Any::new(Tag::PrintableString, value.as_bytes()).map_err(|e| PkiError::InvalidName(e.to_string()))?;
    rdn(oid, any)
}

fn rdn(oid: ObjectIdentifier, value: Any) -> Result<RelativeDistinguishedName, PkiError> {
    RelativeDistinguishedName::try_from(vec![AttributeTypeAndValue { oid, value }])
        .map_err(|e| PkiError::InvalidName(e.to_string()))
}

fn make_name(rdns: Vec<RelativeDistinguishedName>) -> Result<Name, PkiError> {
    let der = RdnSequence::from(rdns).to_der().map_err(|e| PkiError::InvalidName(e.to_string()))?;
    Name::from_der(&der).map_err(|e| PkiError::InvalidName(e.to_string()))
}

fn check_display_name(what: &str, value: &str) -> Result<(), PkiError> {
    let n = value.chars().count();
    if value.trim() != value || n == 0 || n > MAX_NAME_CHARS {
        return Err(PkiError::InvalidName(format!(
            "{what} must be 1–{MAX_NAME_CHARS} characters without surrounding spaces"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(PkiError::InvalidName(format!("{what} contains control characters")));
    }
    Ok(())
}

fn check_uscc_shape(uscc: &str) -> Result<(), PkiError> {
    if uscc.len() != 18 || !uscc.chars().all(|c| USCC_ALPHABET.contains(c)) {
        return Err(PkiError::InvalidName(format!("{uscc:?} is not an 18-character unified social credit code")));
    }
    Ok(())
}

/// Whole seconds since the epoch, as an X.509 `Time` (UTCTime before 2050).
fn x509_time(t: SystemTime) -> Result<Time, PkiError> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| PkiError::InvalidValidity("times before 1970 are not supported".into()))?
        .as_secs();
    let dt = DateTime::from_unix_duration(Duration::from_secs(secs))
        .map_err(|e| PkiError::InvalidValidity(e.to_string()))?;
    Ok(Time::from(dt))
}

fn validity(not_before: SystemTime, not_after: SystemTime) -> Result<Validity, PkiError> {
    if not_after <= not_before {
        return Err(PkiError::InvalidValidity("not_after must be later than not_before".into()));
    }
    Ok(Validity::new(x509_time(not_before)?, x509_time(not_after)?))
}

/// 16 random bytes, top bit clear (positive) and first byte non-zero (full length).
fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.try_fill_bytes(&mut bytes).map_err(|_| PkiError::Key(KeyError::Rng))?;
    bytes[0] = (bytes[0] & 0x7F).max(1);
    SerialNumber::new(&bytes).map_err(build_err)
}

fn spki_of(key: &Sm2PublicKey) -> Result<SubjectPublicKeyInfo, PkiError> {
    let der = key.to_spki_der()?;
    SubjectPublicKeyInfo::from_der(&der).map_err(build_err)
}

fn extension<T: Encode>(oid: ObjectIdentifier, critical: bool, value: &T) -> x509_cert::builder::Result<Extension> {
    Ok(Extension { extn_id: oid, critical, extn_value: OctetString::new(value.to_der()?)? })
}

/// Root profile: self-issued CA that signs organisation certificates only.
struct RootProfile {
    subject: Name,
}

impl BuilderProfile for RootProfile {
    fn get_issuer(&self, subject: &Name) -> Name {
        subject.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(vec![
            extension(OID_BASIC_CONSTRAINTS, true, &BasicConstraints { ca: true, path_len_constraint: Some(0) })?,
            extension(OID_KEY_USAGE, true, &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))?,
            extension(OID_SKI, false, &SubjectKeyIdentifier::try_from(spk)?)?,
        ])
    }
}

/// Organisation profile: end-entity signing certificate.
struct OrgProfile {
    issuer: Name,
    subject: Name,
    authority_key_id: OctetString,
}

impl BuilderProfile for OrgProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let aki = AuthorityKeyIdentifier { key_identifier: Some(self.authority_key_id.clone()), ..Default::default() };
        Ok(vec![
            extension(OID_BASIC_CONSTRAINTS, true, &BasicConstraints { ca: false, path_len_constraint: None })?,
            extension(OID_KEY_USAGE, true, &KeyUsage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation))?,
            extension(OID_SKI, false, &SubjectKeyIdentifier::try_from(spk)?)?,
            extension(OID_AKI, false, &aki)?,
        ])
    }
}

/// Create the self-signed platform root certificate for `key`.
pub fn create_root(key: &Sm2PrivateKey, spec: &RootSpec<'_>) -> Result<Certificate, PkiError> {
    check_display_name("common name", spec.common_name)?;
    check_display_name("organisation", spec.organisation)?;
    let subject = make_name(vec![
        printable_attribute(OID_COUNTRY, "CN")?,
        text_attribute(OID_ORGANISATION, spec.organisation)?,
        text_attribute(OID_COMMON_NAME, spec.common_name)?,
    ])?;
    let builder = CertificateBuilder::new(
        RootProfile { subject },
        random_serial()?,
        validity(spec.not_before, spec.not_after)?,
        spki_of(&key.public_key())?,
    )
    .map_err(build_err)?;
    let x509 = builder.build::<_, DerSignature>(&DerSigner(key.signing_key())).map_err(build_err)?;
    Certificate::from_x509(x509)
}

/// Issue an organisation certificate for `org_key`, signed by the root key.
/// The validity period is the caller's; it must lie within the root's.
pub fn issue_organisation(
    root_key: &Sm2PrivateKey,
    root: &Certificate,
    org_key: &Sm2PublicKey,
    spec: &OrgSpec<'_>,
) -> Result<Certificate, PkiError> {
    if root.public_key()? != root_key.public_key() {
        return Err(PkiError::IssuerKeyMismatch);
    }
    check_issuer_is_ca(root)?;
    check_display_name("organisation name", spec.name)?;
    check_uscc_shape(spec.uscc)?;
    if spec.not_before < root.not_before() || spec.not_after > root.not_after() {
        return Err(PkiError::InvalidValidity(
            "the organisation certificate must lie within the root's validity".into(),
        ));
    }
    let subject = make_name(vec![
        printable_attribute(OID_COUNTRY, "CN")?,
        text_attribute(OID_ORGANISATION, spec.name)?,
        text_attribute(OID_COMMON_NAME, spec.name)?,
        printable_attribute(OID_SERIAL_NUMBER, spec.uscc)?,
    ])?;
    let authority_key_id = match root.tbs().get_extension::<SubjectKeyIdentifier>() {
        Ok(Some((_, ski))) => ski.0,
        _ => {
            let spki = root.tbs().subject_public_key_info().to_der().map_err(malformed)?;
            let spki = SubjectPublicKeyInfoRef::from_der(&spki).map_err(malformed)?;
            SubjectKeyIdentifier::try_from(spki).map_err(build_err)?.0
        }
    };
    let profile = OrgProfile { issuer: root.tbs().subject().clone(), subject, authority_key_id };
    let builder = CertificateBuilder::new(
        profile,
        random_serial()?,
        validity(spec.not_before, spec.not_after)?,
        spki_of(org_key)?,
    )
    .map_err(build_err)?;
    let x509 = builder.build::<_, DerSignature>(&DerSigner(root_key.signing_key())).map_err(build_err)?;
    Certificate::from_x509(x509)
}

// ---------------------------------------------------------------------------
// Verifying
// ---------------------------------------------------------------------------

fn check_algorithm(cert: &Certificate) -> Result<(), PkiError> {
    for alg in [cert.x509.signature_algorithm(), cert.tbs().signature()] {
        if alg.oid != SM3_WITH_SM2_OID {
            return Err(PkiError::UnsupportedAlgorithm(alg.oid.to_string()));
        }
        if alg.parameters.is_some() {
            return Err(PkiError::UnsupportedAlgorithm(format!("{} with parameters", alg.oid)));
        }
    }
    Ok(())
}

fn check_issuer_is_ca(issuer: &Certificate) -> Result<(), PkiError> {
    let can_sign_certs = issuer.key_usage().is_none_or(|ku| ku.key_cert_sign());
    if issuer.is_ca() && can_sign_certs {
        Ok(())
    } else {
        Err(PkiError::IssuerNotCa)
    }
}

fn check_critical_extensions(cert: &Certificate) -> Result<(), PkiError> {
    let known = [OID_BASIC_CONSTRAINTS, OID_KEY_USAGE, OID_SKI, OID_AKI];
    for ext in cert.tbs().extensions().into_iter().flatten() {
        if ext.critical && !known.contains(&ext.extn_id) {
            return Err(PkiError::UnsupportedCriticalExtension(ext.extn_id.to_string()));
        }
    }
    // The critical extensions we know must parse.
    cert.tbs().get_extension::<BasicConstraints>().map_err(malformed)?;
    cert.tbs().get_extension::<KeyUsage>().map_err(malformed)?;
    Ok(())
}

fn check_signature(cert: &Certificate, issuer_key: &Sm2PublicKey) -> Result<(), PkiError> {
    let sig: &BitString = cert.x509.signature();
    let bytes = sig.as_bytes().ok_or_else(|| PkiError::Malformed("signature BIT STRING has unused bits".into()))?;
    let sig = Sm2Signature::from_der(bytes).map_err(|_| PkiError::BadSignature)?;
    let tbs = cert.tbs().to_der().map_err(malformed)?;
    issuer_key.verify(&tbs, &sig).map_err(|_| PkiError::BadSignature)
}

/// A time as RFC 3339 text (UTC, whole seconds), for messages.
pub(crate) fn time_text(t: SystemTime) -> String {
    match t.duration_since(UNIX_EPOCH).ok().and_then(|d| DateTime::from_unix_duration(d).ok()) {
        Some(dt) => dt.to_string(),
        None => "(out of range)".to_string(),
    }
}

/// Check that `cert` was issued by `issuer` and both are valid at `at`: algorithm
/// (SM3withSM2, no parameters), issuer name, issuer is a CA with keyCertSign, the
/// signature under the issuer's key, no unknown critical extension, validity periods.
pub fn verify_issued_by(cert: &Certificate, issuer: &Certificate, at: SystemTime) -> Result<(), PkiError> {
    check_algorithm(cert)?;
    let issuer_der = issuer.tbs().subject().to_der().map_err(malformed)?;
    let named_der = cert.tbs().issuer().to_der().map_err(malformed)?;
    if issuer_der != named_der {
        return Err(PkiError::IssuerMismatch { expected: issuer.subject(), found: cert.issuer() });
    }
    check_issuer_is_ca(issuer)?;
    check_signature(cert, &issuer.public_key()?)?;
    check_critical_extensions(cert)?;
    if at < cert.not_before() {
        return Err(PkiError::NotYetValid(time_text(cert.not_before())));
    }
    if at > cert.not_after() {
        return Err(PkiError::Expired(time_text(cert.not_after())));
    }
    if at < issuer.not_before() {
        return Err(PkiError::IssuerNotYetValid(time_text(issuer.not_before())));
    }
    if at > issuer.not_after() {
        return Err(PkiError::IssuerExpired(time_text(issuer.not_after())));
    }
    Ok(())
}

/// Check a root certificate: self-issued, a CA, self-signature valid, valid at `at`.
pub fn verify_root(root: &Certificate, at: SystemTime) -> Result<(), PkiError> {
    let subject = root.tbs().subject().to_der().map_err(malformed)?;
    let issuer = root.tbs().issuer().to_der().map_err(malformed)?;
    if subject != issuer {
        return Err(PkiError::NotSelfIssued);
    }
    verify_issued_by(root, root, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

    fn t0() -> SystemTime {
        // 2025-01-01T00:00:00Z
        UNIX_EPOCH + Duration::from_secs(1_735_689_600)
    }

    fn make_root() -> (Sm2PrivateKey, Certificate) {
        let key = Sm2PrivateKey::generate().unwrap();
        let cert = create_root(
            &key,
            &RootSpec {
                common_name: "govhub 平台根证书",
                organisation: "govhub 数字政府平台",
                not_before: t0(),
                not_after: t0() + 20 * YEAR,
            },
        )
        .unwrap();
        (key, cert)
    }

    fn make_org(root_key: &Sm2PrivateKey, root: &Certificate) -> (Sm2PrivateKey, Certificate) {
        let key = Sm2PrivateKey::generate().unwrap();
        let cert = issue_organisation(
            root_key,
            root,
            &key.public_key(),
            &OrgSpec {
                name: "常州市市场监督管理局",
                uscc: "11320400014135878L",
                not_before: t0(),
                not_after: t0() + 2 * YEAR,
            },
        )
        .unwrap();
        (key, cert)
    }

    #[test]
    fn root_and_organisation_certificates_verify() {
        let (root_key, root) = make_root();
        verify_root(&root, t0() + YEAR).unwrap();
        assert!(root.is_ca());
        assert_eq!(root.common_name().as_deref(), Some("govhub 平台根证书"));
        assert_eq!(root.subject(), root.issuer());
        assert_eq!(root.public_key().unwrap(), root_key.public_key());

        let (org_key, cert) = make_org(&root_key, &root);
        verify_issued_by(&cert, &root, t0() + YEAR).unwrap();
        assert!(!cert.is_ca());
        assert!(cert.allows_document_signing());
        assert_eq!(cert.organisation().as_deref(), Some("常州市市场监督管理局"));
        assert_eq!(cert.uscc().as_deref(), Some("11320400014135878L"));
        assert_eq!(cert.public_key().unwrap(), org_key.public_key());
        assert_eq!(cert.serial_hex().len(), 32);
        assert_ne!(cert.serial_hex(), root.serial_hex());
        assert_eq!(cert.not_before(), t0());

        // PEM and DER round trips.
        let again = Certificate::from_pem(&cert.to_pem().unwrap()).unwrap();
        assert_eq!(again, cert);
        assert_eq!(Certificate::from_der(cert.to_der()).unwrap(), cert);
    }

    #[test]
    fn algorithm_identifiers_and_signature_encoding() {
        let (root_key, root) = make_root();
        let (_, cert) = make_org(&root_key, &root);
        for c in [&root, &cert] {
            assert_eq!(c.x509().signature_algorithm().oid, SM3_WITH_SM2_OID);
            assert!(c.x509().signature_algorithm().parameters.is_none());
            let spki = c.x509().tbs_certificate().subject_public_key_info();
            assert_eq!(spki.algorithm.oid, crate::sm2keys::EC_PUBLIC_KEY_OID);
            // The signature value is DER SEQUENCE { r, s }, not raw r ‖ s.
            let sig = c.x509().signature().as_bytes().unwrap();
            assert_eq!(sig[0], 0x30);
            Sm2Signature::from_der(sig).unwrap();
        }
    }

    #[test]
    fn validity_is_checked_at_the_given_time() {
        let (root_key, root) = make_root();
        let (_, cert) = make_org(&root_key, &root);
        assert!(matches!(verify_issued_by(&cert, &root, t0() - Duration::from_secs(1)), Err(PkiError::NotYetValid(_))));
        assert!(matches!(verify_issued_by(&cert, &root, t0() + 3 * YEAR), Err(PkiError::Expired(_))));
        assert!(matches!(verify_root(&root, t0() + 21 * YEAR), Err(PkiError::Expired(_))));
        assert!(cert.is_valid_at(t0() + YEAR));
        assert!(!cert.is_valid_at(t0() + 3 * YEAR));
    }

    #[test]
    fn wrong_issuer_and_tampering_fail() {
        let (root_key, root) = make_root();
        let (other_key, other_root) = make_root();
        let (_, cert) = make_org(&root_key, &root);
        // Same subject name, different key: the signature check catches it.
        assert_eq!(verify_issued_by(&cert, &other_root, t0() + YEAR), Err(PkiError::BadSignature));
        // An organisation certificate cannot issue.
        let (_, org2) = make_org(&root_key, &root);
        assert!(matches!(verify_issued_by(&cert, &org2, t0() + YEAR), Err(PkiError::IssuerMismatch { .. })));
        assert_eq!(
            issue_organisation(
                &other_key,
                &root,
                &root_key.public_key(),
                &OrgSpec { name: "x", uscc: "11320400014135878L", not_before: t0(), not_after: t0() + YEAR }
            )
            .err(),
            Some(PkiError::IssuerKeyMismatch)
        );

        // Flip one byte inside the organisation name (in the TBS): parses, fails.
        let der = cert.to_der().to_vec();
        let needle = "市场".as_bytes();
        let pos = der.windows(needle.len()).position(|w| w == needle).unwrap();
        let mut tampered = der.clone();
        tampered[pos + 1] ^= 0x01;
        let tampered = Certificate::from_der(&tampered).unwrap();
        assert_eq!(verify_issued_by(&tampered, &root, t0() + YEAR), Err(PkiError::BadSignature));
        // Flip a byte in the signature value.
        let mut bad_sig = der.clone();
        let last = bad_sig.len() - 5;
        bad_sig[last] ^= 0x01;
        if let Ok(c) = Certificate::from_der(&bad_sig) {
            assert_eq!(verify_issued_by(&c, &root, t0() + YEAR), Err(PkiError::BadSignature));
        }
        // Truncated and trailing bytes are malformed.
        assert!(matches!(Certificate::from_der(&der[..der.len() - 1]), Err(PkiError::Malformed(_))));
        let mut long = der.clone();
        long.push(0);
        assert!(matches!(Certificate::from_der(&long), Err(PkiError::Malformed(_))));
    }

    #[test]
    fn every_flipped_byte_of_a_certificate_is_refused() {
        let (root_key, root) = make_root();
        let (_, cert) = make_org(&root_key, &root);
        let der = cert.to_der().to_vec();
        for i in 0..der.len() {
            let mut bad = der.clone();
            bad[i] ^= 0x01;
            if let Ok(c) = Certificate::from_der(&bad) {
                assert!(verify_issued_by(&c, &root, t0() + YEAR).is_err(), "byte {i} accepted");
            }
        }
    }

    #[test]
    fn bad_inputs_are_refused() {
        let (root_key, root) = make_root();
        let spec = |name, uscc| OrgSpec { name, uscc, not_before: t0(), not_after: t0() + YEAR };
        let k = Sm2PrivateKey::generate().unwrap().public_key();
        for (name, uscc) in [
            ("", "11320400014135878L"),
            (" x", "11320400014135878L"),
            ("x", "1132040001413587"),
            ("x", "11320400014135878l"),
            ("x", "1132040001413587OL"),
        ] {
            assert!(
                matches!(issue_organisation(&root_key, &root, &k, &spec(name, uscc)), Err(PkiError::InvalidName(_))),
                "{name:?} {uscc:?}"
            );
        }
        let long = "局".repeat(MAX_NAME_CHARS + 1);
        assert!(matches!(
            issue_organisation(&root_key, &root, &k, &spec(&long, "11320400014135878L")),
            Err(PkiError::InvalidName(_))
        ));
        // Outside the root's validity, or reversed.
        let beyond = OrgSpec { name: "x", uscc: "11320400014135878L", not_before: t0(), not_after: t0() + 30 * YEAR };
        assert!(matches!(issue_organisation(&root_key, &root, &k, &beyond), Err(PkiError::InvalidValidity(_))));
        let reversed = OrgSpec { name: "x", uscc: "11320400014135878L", not_before: t0() + YEAR, not_after: t0() };
        assert!(matches!(issue_organisation(&root_key, &root, &k, &reversed), Err(PkiError::InvalidValidity(_))));
        // An organisation certificate is not a CA.
        let (org_key, org_cert) = make_org(&root_key, &root);
        assert_eq!(
            issue_organisation(&org_key, &org_cert, &k, &spec("x", "11320400014135878L")).err(),
            Some(PkiError::IssuerNotCa)
        );
        assert!(matches!(verify_root(&org_cert, t0() + YEAR), Err(PkiError::NotSelfIssued)));
    }
}
