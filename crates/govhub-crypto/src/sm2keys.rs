//! SM2 key pairs and signatures (GB/T 32918, GM/T 0003) in the formats other tools read.
//!
//! * Signatures are SM2 with SM3 over `Z_A ‖ M`, where `Z_A` binds the signer's public
//!   key and a distinguishing identifier; govhub uses the standard identifier
//!   [`DEFAULT_DIST_ID`] (`1234567812345678`, GM/T 0009) unless a caller names another.
//!   OpenSSL 3 does **not** use it by default: pass `-sigopt distid:1234567812345678`
//!   (or `-pkeyopt`/`-vfyopt`) to OpenSSL.
//! * Signatures travel as DER, `SEQUENCE { r INTEGER, s INTEGER }` — what OpenSSL, GmSSL
//!   and X.509 expect. [`Sm2Signature::from_der`] accepts canonical DER only; the raw
//!   64-byte `r ‖ s` form is available for protocols that need it.
//! * Public keys travel as `SubjectPublicKeyInfo` PEM (`id-ecPublicKey`, curve
//!   `1.2.156.10197.1.301`).
//! * Private keys are stored only encrypted: PKCS#8 `ENCRYPTED PRIVATE KEY` PEM with
//!   PBES2 (PBKDF2-HMAC-SHA256, [`DEFAULT_KDF_ITERATIONS`] iterations, random 16-byte
//!   salt, AES-256-CBC). `openssl pkey -in key.pem -passin pass:…` reads it. Plain
//!   `PRIVATE KEY` PEM is refused on import ([`KeyError::NotEncrypted`]).
//!
//! * Signing derives the per-signature nonce `k` deterministically from the key and the
//!   message hash (HMAC-DRBG with SM3, RFC 6979 style, as the `sm2` crate does), so a
//!   weak or failing random generator cannot leak the key through signatures.
//!
//! Secret hygiene: [`Sm2PrivateKey`] has no `Debug` output of key material, the
//! `SecretKey` it keeps and every intermediate PKCS#8 buffer are zeroized on drop. The
//! `sm2` crate's `SigningKey`, which the key keeps so that signing does not recompute the
//! public key and `Z_A` every time, does not zeroize its scalar on drop — a limitation of
//! that crate, noted here rather than papered over.

use std::fmt;

use der::Decode;
use pkcs8::pkcs5::pbes2;
use pkcs8::{DecodePrivateKey, EncodePrivateKey, EncryptedPrivateKeyInfoRef, LineEnding, PrivateKeyInfoRef};
use rand::RngCore;
use signature::{Signer, Verifier};
use sm2::dsa::{DerSignature, Signature as RawSignature, SigningKey, VerifyingKey};
use sm2::elliptic_curve::Generate;
use sm2::{PublicKey, SecretKey};
use spki::{DecodePublicKey, EncodePublicKey, ObjectIdentifier};
use zeroize::Zeroizing;

/// The default SM2 distinguishing identifier (GM/T 0009-2012 § 10).
pub const DEFAULT_DIST_ID: &str = "1234567812345678";

/// SM2 elliptic curve (`sm2p256v1`), the named-curve parameter of SM2 public keys.
pub const SM2_CURVE_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301");
/// SM3 hash algorithm.
pub const SM3_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.401");
/// SM2 signature with SM3 (`SM3withSM2`), used with absent parameters.
pub const SM3_WITH_SM2_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");
/// `id-ecPublicKey`, the algorithm of SM2 `SubjectPublicKeyInfo` and PKCS#8.
pub const EC_PUBLIC_KEY_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// PBKDF2-HMAC-SHA256 iterations for new key files (OWASP 2023 recommendation).
pub const DEFAULT_KDF_ITERATIONS: u32 = 600_000;
/// The fewest iterations [`Sm2PrivateKey::to_encrypted_pem_with_iterations`] accepts.
pub const MIN_KDF_ITERATIONS: u32 = 10_000;

const PEM_ENCRYPTED: &str = "ENCRYPTED PRIVATE KEY";

/// What went wrong with a key or a signature. [`KeyError::code`] is stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the operating system's random number generator failed")]
    Rng,
    #[error("not a valid SM2 private key")]
    InvalidPrivateKey,
    #[error("not a valid SM2 public key: {0}")]
    InvalidPublicKey(String),
    #[error("the distinguishing identifier is too long (at most 8191 bytes)")]
    DistId,
    #[error(
        "the key file holds an unencrypted private key; govhub only accepts encrypted PKCS#8 (ENCRYPTED PRIVATE KEY)"
    )]
    NotEncrypted,
    #[error("the private key could not be decrypted: wrong passphrase or damaged file")]
    Decrypt,
    #[error("the key file's encryption scheme is not supported: {0}")]
    UnsupportedEncryption(String),
    #[error("a private key passphrase must not be empty")]
    EmptyPassphrase,
    #[error("{0} PBKDF2 iterations are too few (at least 10000)")]
    WeakKdf(u32),
    #[error("not an SM2 key: {0}")]
    NotSm2(String),
    #[error("malformed PEM or DER: {0}")]
    Encoding(String),
    #[error("malformed SM2 signature: {0}")]
    MalformedSignature(String),
    #[error("the SM2 signature does not verify")]
    BadSignature,
    #[error("SM2 signing failed")]
    Sign,
}

impl KeyError {
    /// A stable code a caller can map to its own error space.
    pub fn code(&self) -> &'static str {
        match self {
            KeyError::Rng => "crypto-rng",
            KeyError::InvalidPrivateKey => "key-invalid-private",
            KeyError::InvalidPublicKey(_) => "key-invalid-public",
            KeyError::DistId => "key-dist-id",
            KeyError::NotEncrypted => "key-not-encrypted",
            KeyError::Decrypt => "key-decrypt",
            KeyError::UnsupportedEncryption(_) => "key-unsupported-encryption",
            KeyError::EmptyPassphrase => "key-empty-passphrase",
            KeyError::WeakKdf(_) => "key-weak-kdf",
            KeyError::NotSm2(_) => "key-not-sm2",
            KeyError::Encoding(_) => "key-encoding",
            KeyError::MalformedSignature(_) => "signature-malformed",
            KeyError::BadSignature => "signature-invalid",
            KeyError::Sign => "signature-failed",
        }
    }
}

// ---------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------

/// An SM2 signature, kept in canonical DER (`SEQUENCE { r, s }`).
#[derive(Clone, PartialEq, Eq)]
pub struct Sm2Signature {
    raw: RawSignature,
    der: Vec<u8>,
}

impl Sm2Signature {
    fn from_raw_signature(raw: RawSignature) -> Sm2Signature {
        let der = raw.to_der().to_vec();
        Sm2Signature { raw, der }
    }

    /// Parse a DER signature. Only canonical DER is accepted (minimal integers, no
    /// trailing bytes), and `r`, `s` must lie in `[1, n-1]`.
    pub fn from_der(bytes: &[u8]) -> Result<Sm2Signature, KeyError> {
        let parsed = DerSignature::from_bytes(bytes)
            .map_err(|_| KeyError::MalformedSignature("not a DER SEQUENCE of two INTEGERs".into()))?;
        let raw = RawSignature::try_from(parsed)
            .map_err(|_| KeyError::MalformedSignature("r or s outside [1, n-1]".into()))?;
        let sig = Sm2Signature::from_raw_signature(raw);
        if sig.der != bytes {
            return Err(KeyError::MalformedSignature("not canonical DER".into()));
        }
        Ok(sig)
    }

    /// Parse the raw 64-byte `r ‖ s` form (big-endian, 32 bytes each).
    pub fn from_raw(bytes: &[u8]) -> Result<Sm2Signature, KeyError> {
        if bytes.len() != RawSignature::BYTE_SIZE {
            return Err(KeyError::MalformedSignature(format!("raw form is 64 bytes, found {}", bytes.len())));
        }
        let raw = RawSignature::from_slice(bytes)
            .map_err(|_| KeyError::MalformedSignature("r or s outside [1, n-1]".into()))?;
        Ok(Sm2Signature::from_raw_signature(raw))
    }

    /// The DER encoding.
    pub fn as_der(&self) -> &[u8] {
        &self.der
    }

    /// The DER encoding, owned.
    pub fn to_der(&self) -> Vec<u8> {
        self.der.clone()
    }

    /// The raw 64-byte `r ‖ s` form.
    pub fn to_raw(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(&self.raw.to_bytes());
        out
    }
}

impl fmt::Debug for Sm2Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sm2Signature({})", hex::encode(&self.der))
    }
}

// ---------------------------------------------------------------------------
// Public keys
// ---------------------------------------------------------------------------

/// An SM2 public key, ready to verify signatures made with [`DEFAULT_DIST_ID`].
#[derive(Clone)]
pub struct Sm2PublicKey {
    verifier: VerifyingKey,
}

impl Sm2PublicKey {
    fn from_public(public: PublicKey) -> Result<Sm2PublicKey, KeyError> {
        let verifier = VerifyingKey::new(DEFAULT_DIST_ID, public)
            .map_err(|_| KeyError::InvalidPublicKey("cannot compute Z_A".into()))?;
        Ok(Sm2PublicKey { verifier })
    }

    /// Parse a `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo) PEM.
    pub fn from_pem(pem: &str) -> Result<Sm2PublicKey, KeyError> {
        let (label, der) =
            der::pem::decode_vec(pem.trim().as_bytes()).map_err(|e| KeyError::Encoding(e.to_string()))?;
        if label != "PUBLIC KEY" {
            return Err(KeyError::Encoding(format!("expected a PUBLIC KEY PEM, found {label}")));
        }
        Sm2PublicKey::from_spki_der(&der)
    }

    /// Parse a DER SubjectPublicKeyInfo; the algorithm must be `id-ecPublicKey` with the
    /// SM2 curve.
    pub fn from_spki_der(der: &[u8]) -> Result<Sm2PublicKey, KeyError> {
        let spki = spki::SubjectPublicKeyInfoRef::from_der(der).map_err(|e| KeyError::Encoding(e.to_string()))?;
        check_sm2_algorithm(spki.algorithm.oid, spki.algorithm.parameters.as_ref().map(|p| p.decode_as()))?;
        let public = PublicKey::from_public_key_der(der).map_err(|e| KeyError::InvalidPublicKey(e.to_string()))?;
        Sm2PublicKey::from_public(public)
    }

    /// Parse a SEC1 point (`04 ‖ x ‖ y`, or compressed).
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Sm2PublicKey, KeyError> {
        let public =
            PublicKey::from_sec1_bytes(bytes).map_err(|_| KeyError::InvalidPublicKey("not a curve point".into()))?;
        Sm2PublicKey::from_public(public)
    }

    /// `-----BEGIN PUBLIC KEY-----` PEM, LF line endings.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.public().to_public_key_pem(LineEnding::LF).map_err(|e| KeyError::Encoding(e.to_string()))
    }

    /// DER SubjectPublicKeyInfo.
    pub fn to_spki_der(&self) -> Result<Vec<u8>, KeyError> {
        self.public().to_public_key_der().map(|d| d.as_bytes().to_vec()).map_err(|e| KeyError::Encoding(e.to_string()))
    }

    /// The uncompressed SEC1 point `04 ‖ x ‖ y` (65 bytes).
    pub fn to_sec1_uncompressed(&self) -> Vec<u8> {
        self.public().to_sec1_bytes().to_vec()
    }

    /// SM3 of the DER SubjectPublicKeyInfo, lower-case hex: a stable key identifier.
    pub fn fingerprint(&self) -> String {
        match self.to_spki_der() {
            Ok(der) => crate::sm3_hex(&der),
            // A valid point always encodes; fall back to the SEC1 point.
            Err(_) => crate::sm3_hex(&self.to_sec1_uncompressed()),
        }
    }

    /// Verify a signature made with the default distinguishing identifier.
    pub fn verify(&self, message: &[u8], signature: &Sm2Signature) -> Result<(), KeyError> {
        self.verifier.verify(message, &signature.raw).map_err(|_| KeyError::BadSignature)
    }

    /// Verify a signature made with another distinguishing identifier.
    pub fn verify_with_id(&self, dist_id: &str, message: &[u8], signature: &Sm2Signature) -> Result<(), KeyError> {
        if dist_id == DEFAULT_DIST_ID {
            return self.verify(message, signature);
        }
        let verifier = VerifyingKey::new(dist_id, self.public()).map_err(|_| KeyError::DistId)?;
        verifier.verify(message, &signature.raw).map_err(|_| KeyError::BadSignature)
    }

    fn public(&self) -> PublicKey {
        PublicKey::from(&self.verifier)
    }
}

impl PartialEq for Sm2PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.public() == other.public()
    }
}

impl Eq for Sm2PublicKey {}

impl fmt::Debug for Sm2PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sm2PublicKey(sm3:{})", self.fingerprint())
    }
}

/// The algorithm of an SM2 key in SPKI or PKCS#8: `id-ecPublicKey` with the SM2 curve.
fn check_sm2_algorithm(
    oid: ObjectIdentifier,
    curve: Option<Result<ObjectIdentifier, der::Error>>,
) -> Result<(), KeyError> {
    if oid != EC_PUBLIC_KEY_OID {
        return Err(KeyError::NotSm2(format!("algorithm {oid}")));
    }
    match curve {
        Some(Ok(c)) if c == SM2_CURVE_OID => Ok(()),
        Some(Ok(c)) => Err(KeyError::NotSm2(format!("curve {c}"))),
        Some(Err(_)) | None => Err(KeyError::NotSm2("missing or non-OID curve parameter".into())),
    }
}

// ---------------------------------------------------------------------------
// Private keys
// ---------------------------------------------------------------------------

/// An SM2 private key. Its `Debug` shows only the public key's fingerprint.
pub struct Sm2PrivateKey {
    secret: SecretKey,
    signer: SigningKey,
}

impl Sm2PrivateKey {
    fn from_secret(secret: SecretKey) -> Result<Sm2PrivateKey, KeyError> {
        let signer = SigningKey::new(DEFAULT_DIST_ID, &secret).map_err(|_| KeyError::InvalidPrivateKey)?;
        Ok(Sm2PrivateKey { secret, signer })
    }

    /// A fresh key from the operating system's random generator.
    pub fn generate() -> Result<Sm2PrivateKey, KeyError> {
        let secret = SecretKey::try_generate().map_err(|_| KeyError::Rng)?;
        Sm2PrivateKey::from_secret(secret)
    }

    /// A key from its 32-byte big-endian scalar `d` (`1 ≤ d ≤ n-2`). For known-answer
    /// tests and migrations; keys at rest belong in [`Self::to_encrypted_pem`] files.
    pub fn from_scalar_bytes(bytes: &[u8]) -> Result<Sm2PrivateKey, KeyError> {
        if bytes.len() != 32 {
            return Err(KeyError::InvalidPrivateKey);
        }
        let secret = SecretKey::from_slice(bytes).map_err(|_| KeyError::InvalidPrivateKey)?;
        Sm2PrivateKey::from_secret(secret)
    }

    /// The matching public key.
    pub fn public_key(&self) -> Sm2PublicKey {
        Sm2PublicKey { verifier: self.signer.verifying_key().clone() }
    }

    /// Sign with the default distinguishing identifier.
    pub fn sign(&self, message: &[u8]) -> Result<Sm2Signature, KeyError> {
        let raw: RawSignature = self.signer.try_sign(message).map_err(|_| KeyError::Sign)?;
        Ok(Sm2Signature::from_raw_signature(raw))
    }

    /// Sign with another distinguishing identifier.
    pub fn sign_with_id(&self, dist_id: &str, message: &[u8]) -> Result<Sm2Signature, KeyError> {
        if dist_id == DEFAULT_DIST_ID {
            return self.sign(message);
        }
        let signer = SigningKey::new(dist_id, &self.secret).map_err(|_| KeyError::DistId)?;
        let raw: RawSignature = signer.try_sign(message).map_err(|_| KeyError::Sign)?;
        Ok(Sm2Signature::from_raw_signature(raw))
    }

    /// Encrypted PKCS#8 PEM with [`DEFAULT_KDF_ITERATIONS`].
    pub fn to_encrypted_pem(&self, passphrase: &[u8]) -> Result<String, KeyError> {
        self.to_encrypted_pem_with_iterations(passphrase, DEFAULT_KDF_ITERATIONS)
    }

    /// Encrypted PKCS#8 PEM (PBES2: PBKDF2-HMAC-SHA256 with `iterations`, 16-byte random
    /// salt, AES-256-CBC with a random IV).
    pub fn to_encrypted_pem_with_iterations(&self, passphrase: &[u8], iterations: u32) -> Result<String, KeyError> {
        if passphrase.is_empty() {
            return Err(KeyError::EmptyPassphrase);
        }
        if iterations < MIN_KDF_ITERATIONS {
            return Err(KeyError::WeakKdf(iterations));
        }
        let mut salt = Zeroizing::new([0u8; 16]);
        let mut iv = [0u8; 16];
        let mut rng = rand::rngs::OsRng;
        rng.try_fill_bytes(salt.as_mut()).map_err(|_| KeyError::Rng)?;
        rng.try_fill_bytes(&mut iv).map_err(|_| KeyError::Rng)?;
        let params = pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(iterations, salt.as_ref(), iv)
            .map_err(|e| KeyError::Encoding(e.to_string()))?;
        let plain = self.secret.to_pkcs8_der().map_err(|e| KeyError::Encoding(e.to_string()))?;
        let info = PrivateKeyInfoRef::try_from(plain.as_bytes()).map_err(|e| KeyError::Encoding(e.to_string()))?;
        let encrypted = info.encrypt_with_params(params, passphrase).map_err(|e| KeyError::Encoding(e.to_string()))?;
        let pem = encrypted.to_pem(PEM_ENCRYPTED, LineEnding::LF).map_err(|e| KeyError::Encoding(e.to_string()))?;
        Ok(pem.to_string())
    }

    /// Read an `ENCRYPTED PRIVATE KEY` PEM (PBES2 with PBKDF2 or scrypt, AES-CBC/GCM —
    /// what govhub writes and what `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes).
    pub fn from_encrypted_pem(pem: &str, passphrase: &[u8]) -> Result<Sm2PrivateKey, KeyError> {
        let (label, der) =
            der::pem::decode_vec(pem.trim().as_bytes()).map_err(|e| KeyError::Encoding(e.to_string()))?;
        let der = Zeroizing::new(der);
        match label {
            PEM_ENCRYPTED => {}
            "PRIVATE KEY" | "EC PRIVATE KEY" => return Err(KeyError::NotEncrypted),
            other => return Err(KeyError::Encoding(format!("expected an ENCRYPTED PRIVATE KEY PEM, found {other}"))),
        }
        Sm2PrivateKey::from_encrypted_der(&der, passphrase)
    }

    /// Read a DER `EncryptedPrivateKeyInfo`.
    pub fn from_encrypted_der(der: &[u8], passphrase: &[u8]) -> Result<Sm2PrivateKey, KeyError> {
        let info =
            EncryptedPrivateKeyInfoRef::from_der(der).map_err(|e| KeyError::UnsupportedEncryption(e.to_string()))?;
        let plain = info.decrypt(passphrase).map_err(|_| KeyError::Decrypt)?;
        let pki = PrivateKeyInfoRef::try_from(plain.as_bytes()).map_err(|_| KeyError::Decrypt)?;
        check_sm2_algorithm(pki.algorithm.oid, pki.algorithm.parameters.as_ref().map(|p| p.decode_as()))?;
        let secret = SecretKey::from_pkcs8_der(plain.as_bytes()).map_err(|_| KeyError::InvalidPrivateKey)?;
        Sm2PrivateKey::from_secret(secret)
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signer
    }
}

impl fmt::Debug for Sm2PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sm2PrivateKey {{ public: sm3:{}, secret: [redacted] }}", self.public_key().fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GB/T 32918.5-2017 Annex A (and GM/T 0003.5): the signature example.
    const ANNEX_A_D: &str = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8";
    const ANNEX_A_R: &str = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3";
    const ANNEX_A_S: &str = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";

    #[test]
    fn annex_a_vector_verifies() {
        let key = Sm2PrivateKey::from_scalar_bytes(&hex::decode(ANNEX_A_D).unwrap()).unwrap();
        let public = key.public_key();
        let mut raw = hex::decode(ANNEX_A_R).unwrap();
        raw.extend(hex::decode(ANNEX_A_S).unwrap());
        let sig = Sm2Signature::from_raw(&raw).unwrap();
        public.verify(b"message digest", &sig).unwrap();
        // …and through the DER form.
        let again = Sm2Signature::from_der(sig.as_der()).unwrap();
        public.verify(b"message digest", &again).unwrap();
        // The identifier is part of the signature: another ID or message fails.
        assert_eq!(public.verify_with_id("", b"message digest", &sig), Err(KeyError::BadSignature));
        assert_eq!(public.verify(b"message digesT", &sig), Err(KeyError::BadSignature));
        // Any flipped bit of r or s fails.
        for i in 0..64 {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            if let Ok(bad) = Sm2Signature::from_raw(&bad) {
                assert_eq!(public.verify(b"message digest", &bad), Err(KeyError::BadSignature), "byte {i}");
            }
        }
    }

    #[test]
    fn sign_verify_round_trip_with_default_and_custom_ids() {
        let key = Sm2PrivateKey::generate().unwrap();
        let public = key.public_key();
        let sig = key.sign(b"hello").unwrap();
        public.verify(b"hello", &sig).unwrap();
        // Deterministic nonce: the same message gives the same signature.
        assert_eq!(key.sign(b"hello").unwrap(), sig);
        assert_ne!(key.sign(b"hello!").unwrap(), sig);
        public.verify_with_id(DEFAULT_DIST_ID, b"hello", &sig).unwrap();
        assert_eq!(public.verify_with_id("ALICE123@YAHOO.COM", b"hello", &sig), Err(KeyError::BadSignature));
        let custom = key.sign_with_id("ALICE123@YAHOO.COM", b"hello").unwrap();
        public.verify_with_id("ALICE123@YAHOO.COM", b"hello", &custom).unwrap();
        assert_eq!(public.verify(b"hello", &custom), Err(KeyError::BadSignature));
        // Another key does not verify it.
        let other = Sm2PrivateKey::generate().unwrap().public_key();
        assert_eq!(other.verify(b"hello", &sig), Err(KeyError::BadSignature));
    }

    #[test]
    fn der_signatures_are_strict() {
        let key = Sm2PrivateKey::generate().unwrap();
        let sig = key.sign(b"x").unwrap();
        let der = sig.as_der();
        assert_eq!(der[0], 0x30);
        assert_eq!(Sm2Signature::from_der(der).unwrap(), sig);
        assert_eq!(Sm2Signature::from_raw(&sig.to_raw()).unwrap(), sig);
        // Trailing garbage, truncation, wrong outer tag.
        let mut long = der.to_vec();
        long.push(0);
        assert!(matches!(Sm2Signature::from_der(&long), Err(KeyError::MalformedSignature(_))));
        assert!(matches!(Sm2Signature::from_der(&der[..der.len() - 1]), Err(KeyError::MalformedSignature(_))));
        let mut tag = der.to_vec();
        tag[0] = 0x31;
        assert!(matches!(Sm2Signature::from_der(&tag), Err(KeyError::MalformedSignature(_))));
        // A non-minimal INTEGER (an extra leading zero) is BER, not DER.
        let r = &sig.to_raw()[..32];
        let s = &sig.to_raw()[32..];
        let int = |v: &[u8]| {
            let mut out = vec![0x02, (v.len() + 2) as u8, 0x00, 0x00];
            out.extend_from_slice(v);
            out
        };
        let mut body = int(r);
        body.extend(int(s));
        let mut ber = vec![0x30, body.len() as u8];
        ber.extend(body);
        assert!(matches!(Sm2Signature::from_der(&ber), Err(KeyError::MalformedSignature(_))));
        // r = 0 is not a signature.
        assert!(Sm2Signature::from_raw(&[0u8; 64]).is_err());
        assert!(Sm2Signature::from_raw(&[1u8; 63]).is_err());
    }

    #[test]
    fn public_key_pem_round_trip() {
        let key = Sm2PrivateKey::generate().unwrap();
        let public = key.public_key();
        let pem = public.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let back = Sm2PublicKey::from_pem(&pem).unwrap();
        assert_eq!(back, public);
        assert_eq!(back.fingerprint(), public.fingerprint());
        assert_eq!(back.fingerprint().len(), 64);
        let sec1 = public.to_sec1_uncompressed();
        assert_eq!(sec1.len(), 65);
        assert_eq!(Sm2PublicKey::from_sec1_bytes(&sec1).unwrap(), public);
        // The SPKI names id-ecPublicKey and the SM2 curve.
        let der = public.to_spki_der().unwrap();
        let spki = spki::SubjectPublicKeyInfoRef::from_der(&der).unwrap();
        assert_eq!(spki.algorithm.oid, EC_PUBLIC_KEY_OID);
        assert_eq!(spki.algorithm.parameters_oid().unwrap(), SM2_CURVE_OID);
        assert!(matches!(
            Sm2PublicKey::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            Err(KeyError::Encoding(_))
        ));
        assert!(matches!(Sm2PublicKey::from_sec1_bytes(&[4u8; 65]), Err(KeyError::InvalidPublicKey(_))));
    }

    #[test]
    fn encrypted_pem_round_trip_and_failures() {
        let key = Sm2PrivateKey::generate().unwrap();
        let pem = key.to_encrypted_pem_with_iterations(b"correct horse", MIN_KDF_ITERATIONS).unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        let back = Sm2PrivateKey::from_encrypted_pem(&pem, b"correct horse").unwrap();
        assert_eq!(back.public_key(), key.public_key());
        // The reloaded key signs for the original public key.
        let sig = back.sign(b"m").unwrap();
        key.public_key().verify(b"m", &sig).unwrap();

        assert_eq!(Sm2PrivateKey::from_encrypted_pem(&pem, b"wrong horse").err(), Some(KeyError::Decrypt));
        assert_eq!(key.to_encrypted_pem(b"").err(), Some(KeyError::EmptyPassphrase));
        assert_eq!(key.to_encrypted_pem_with_iterations(b"p", 1000).err(), Some(KeyError::WeakKdf(1000)));
        // Two encryptions of one key differ (random salt and IV).
        let pem2 = key.to_encrypted_pem_with_iterations(b"correct horse", MIN_KDF_ITERATIONS).unwrap();
        assert_ne!(pem, pem2);
        // An unencrypted PKCS#8 file is refused.
        let plain = key.secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert_eq!(Sm2PrivateKey::from_encrypted_pem(&plain, b"x").err(), Some(KeyError::NotEncrypted));
        // Garbage.
        assert!(matches!(Sm2PrivateKey::from_encrypted_pem("not pem", b"x"), Err(KeyError::Encoding(_))));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let d = hex::decode(ANNEX_A_D).unwrap();
        let key = Sm2PrivateKey::from_scalar_bytes(&d).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("[redacted]"));
        assert!(!shown.to_ascii_uppercase().contains(&ANNEX_A_D[..16]));
        assert!(!shown.contains(&ANNEX_A_D[..16].to_ascii_lowercase()));
        assert!(Sm2PrivateKey::from_scalar_bytes(&[0u8; 32]).is_err());
        assert!(Sm2PrivateKey::from_scalar_bytes(&[1u8; 31]).is_err());
    }

    #[test]
    fn error_codes_are_distinct() {
        let all = [
            KeyError::Rng,
            KeyError::InvalidPrivateKey,
            KeyError::InvalidPublicKey(String::new()),
            KeyError::DistId,
            KeyError::NotEncrypted,
            KeyError::Decrypt,
            KeyError::UnsupportedEncryption(String::new()),
            KeyError::EmptyPassphrase,
            KeyError::WeakKdf(0),
            KeyError::NotSm2(String::new()),
            KeyError::Encoding(String::new()),
            KeyError::MalformedSignature(String::new()),
            KeyError::BadSignature,
            KeyError::Sign,
        ];
        let codes: std::collections::BTreeSet<_> = all.iter().map(KeyError::code).collect();
        assert_eq!(codes.len(), all.len());
    }
}
