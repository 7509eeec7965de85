//! The platform's signing key as the services see it: something that signs bytes and
//! names its public key. The key itself is loaded (and decrypted) by the binary
//! (`crates/govhub/src/keys.rs`); tests use an ephemeral key. The same key signs audit
//! checkpoints now and is the root CA key of the e-licence hierarchy (`docs/pki.md`).

use govhub_crypto::sm2keys::{KeyError, Sm2PrivateKey, Sm2PublicKey};
use std::fmt;

/// Signing failed (the key is unusable or the random generator failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the platform key could not sign: {0}")]
pub struct SignError(pub String);

/// The platform signing key. Signatures are SM2 with SM3 and the distinguishing
/// identifier `1234567812345678`, DER-encoded (`SEQUENCE { r, s }`).
pub trait PlatformSigner: Send + Sync {
    /// A DER signature over exactly `msg`.
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError>;
    /// The public key, `-----BEGIN PUBLIC KEY-----` PEM.
    fn public_key_pem(&self) -> String;
    /// SM3 of the public key's DER SubjectPublicKeyInfo, lower-case hex.
    fn fingerprint(&self) -> String;
}

/// [`PlatformSigner`] over an SM2 private key held in memory.
pub struct Sm2Signer {
    key: Sm2PrivateKey,
    public_pem: String,
    fingerprint: String,
}

impl Sm2Signer {
    pub fn new(key: Sm2PrivateKey) -> Result<Sm2Signer, KeyError> {
        let public = key.public_key();
        Ok(Sm2Signer { public_pem: public.to_pem()?, fingerprint: public.fingerprint(), key })
    }

    /// A fresh random key (tests, throwaway demos).
    pub fn ephemeral() -> Result<Sm2Signer, KeyError> {
        Sm2Signer::new(Sm2PrivateKey::generate()?)
    }

    pub fn public_key(&self) -> Sm2PublicKey {
        self.key.public_key()
    }
}

impl fmt::Debug for Sm2Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sm2Signer {{ public: sm3:{}, secret: [redacted] }}", self.fingerprint)
    }
}

impl PlatformSigner for Sm2Signer {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        govhub_crypto::signing::sign(&self.key, msg).map(|s| s.to_der()).map_err(|e| SignError(e.to_string()))
    }
    fn public_key_pem(&self) -> String {
        self.public_pem.clone()
    }
    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signs_verifiably_and_hides_the_secret() {
        let s = Sm2Signer::ephemeral().unwrap();
        let sig = s.sign(b"checkpoint").unwrap();
        let public = Sm2PublicKey::from_pem(&s.public_key_pem()).unwrap();
        govhub_crypto::signing::verify(&public, b"checkpoint", &sig).unwrap();
        assert!(govhub_crypto::signing::verify(&public, b"checkpoinT", &sig).is_err());
        assert_eq!(s.fingerprint(), public.fingerprint());
        assert!(format!("{s:?}").contains("redacted"));
    }
}
