//! The platform's own signatures over arbitrary bytes: audit-log checkpoints, webhook
//! payloads, exported files.
//!
//! SM2 with SM3 and the distinguishing identifier `1234567812345678`, signatures as DER.
//! A receiver holding the platform's public key (or the root certificate) checks one with
//! OpenSSL alone:
//!
//! ```text
//! openssl dgst -sm3 -sigopt distid:1234567812345678 -verify platform-pub.pem \
//!     -signature payload.sig payload
//! ```
//!
//! The bytes are signed exactly as given. When one key signs several kinds of message,
//! make each kind unambiguous inside the bytes (a type label or a structured envelope),
//! so that a signature for one kind cannot be replayed as another.

use crate::sm2keys::{KeyError, Sm2PrivateKey, Sm2PublicKey, Sm2Signature};

/// Sign `bytes`; the result's [`Sm2Signature::as_der`] is what to transmit.
pub fn sign(key: &Sm2PrivateKey, bytes: &[u8]) -> Result<Sm2Signature, KeyError> {
    key.sign(bytes)
}

/// Verify a DER signature over `bytes`. Malformed DER is
/// [`KeyError::MalformedSignature`]; a well-formed signature that does not match is
/// [`KeyError::BadSignature`].
pub fn verify(key: &Sm2PublicKey, bytes: &[u8], signature_der: &[u8]) -> Result<(), KeyError> {
    let signature = Sm2Signature::from_der(signature_der)?;
    key.verify(bytes, &signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_bytes() {
        let key = Sm2PrivateKey::generate().unwrap();
        let public = key.public_key();
        let payload = br#"{"checkpoint":42,"root":"ab12"}"#;
        let sig = sign(&key, payload).unwrap();
        verify(&public, payload, sig.as_der()).unwrap();
        assert_eq!(verify(&public, b"{\"checkpoint\":43}", sig.as_der()), Err(KeyError::BadSignature));
        assert!(matches!(verify(&public, payload, &sig.as_der()[1..]), Err(KeyError::MalformedSignature(_))));
        let mut flipped = sig.to_der();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x80;
        assert!(verify(&public, payload, &flipped).is_err());
        // Empty input is a message like any other.
        let empty = sign(&key, b"").unwrap();
        verify(&public, b"", empty.as_der()).unwrap();
    }
}
