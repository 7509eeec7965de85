//! Cryptography for govhub. Every other crate goes through this one, so the choice of
//! algorithms and parameters lives in one place and can be reviewed in one place.
//!
//! * Passwords: Argon2id (RustCrypto `argon2`), PHC strings with a random salt.
//! * Bearer tokens and session ids: 256 random bits from the OS generator, shown once;
//!   the store keeps only their SM3 digest (a fast keyed lookup is fine because the
//!   secret has full entropy — a slow hash buys nothing there and would cap throughput).
//! * SM3 (GM/T 0004) digests.
//! * SM2 (GB/T 32918) keys and signatures: [`sm2keys`]; the platform's own signatures
//!   over arbitrary bytes (audit checkpoints, webhooks): [`signing`].
//! * The X.509 key hierarchy, platform root → organisations: [`pki`].
//! * GB/T 38540-2020 electronic seals and sealed documents: [`eseal`].
//!
//! `docs/pki.md` documents the hierarchy, the file formats and the OpenSSL commands
//! that check govhub's artefacts independently.

pub mod eseal;
pub mod pki;
pub mod signing;
pub mod sm2keys;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use sm3::{Digest, Sm3};

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("stored password hash is malformed: {0}")]
    MalformedHash(String),
}

/// Argon2id with the OWASP-recommended minimum (19 MiB, 2 passes, 1 lane).
fn argon2() -> Result<Argon2<'static>, CryptoError> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| CryptoError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hash a password into a PHC string (`$argon2id$v=19$...`).
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CryptoError::Hash(e.to_string()))
}

/// Check a password against a PHC string. A wrong password is `Ok(false)`; a malformed
/// stored hash is an error (it means the store is damaged, not that the user mistyped).
pub fn verify_password(password: &str, phc: &str) -> Result<bool, CryptoError> {
    let parsed = PasswordHash::new(phc).map_err(|e| CryptoError::MalformedHash(e.to_string()))?;
    match argon2()?.verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(CryptoError::Hash(e.to_string())),
    }
}

/// Burn the same time as a real verification, for sign-ins naming an unknown user, so
/// response times do not reveal which usernames exist.
pub fn dummy_verify(password: &str) {
    static DUMMY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if let Some(phc) = DUMMY.get_or_init(|| hash_password("govhub-dummy-password").ok()) {
        let _ = verify_password(password, phc);
    }
}

/// A fresh secret token: 32 random bytes, hex encoded with a readable prefix
/// (`ghp_` for personal API tokens, `ghs_` for web sessions, …).
pub fn new_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// A request id: 128 random bits as 32 lower-case hex digits. From the thread's
/// ChaCha generator (seeded, and reseeded, from the OS), not a system call per request
/// as `OsRng` would be: ids must not collide, they need not be secret.
pub fn request_id() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    lower_hex(&bytes)
}

/// Lower-case hex of `bytes`, written into one buffer: `hex::encode` collects a char
/// at a time through an iterator, ≈ 1.2 % of a busy consumer API's CPU (which hexes a
/// request id, a subject digest and a chain hash a request).
pub fn lower_hex(bytes: &[u8]) -> String {
    let mut buf = vec![0u8; bytes.len() * 2];
    match hex::encode_to_slice(bytes, &mut buf).map(|()| String::from_utf8(buf)) {
        Ok(Ok(s)) => s,
        _ => hex::encode(bytes),
    }
}

/// SM3 digest, lower-case hex.
pub fn sm3_hex(data: &[u8]) -> String {
    lower_hex(&Sm3::digest(data))
}

/// HMAC-SM3 (GB/T 15852.2 with SM3): authenticates data the hub hands out and gets
/// back, such as pagination cursors.
pub fn hmac_sm3(key: &[u8], data: &[u8]) -> [u8; 32] {
    use hmac::{KeyInit, Mac};
    let mut out = [0u8; 32];
    if let Ok(mut mac) = hmac::Hmac::<Sm3>::new_from_slice(key) {
        mac.update(data);
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

/// The digest under which a token is stored and looked up.
pub fn token_digest(token: &str) -> String {
    sm3_hex(token.as_bytes())
}

/// Constant-time comparison of two byte strings (for CSRF tokens and the like).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sm3_known_answer_abc() {
        // GM/T 0004-2012 Appendix A, example 1.
        assert_eq!(sm3_hex(b"abc"), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
        assert_eq!(lower_hex(&[0x00, 0x09, 0xaf, 0xff]), "0009afff");
        assert_eq!(lower_hex(&[]), "");
    }

    proptest::proptest! {
        #[test]
        fn lower_hex_is_the_hex_crates_encoding(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            proptest::prop_assert_eq!(lower_hex(&bytes), hex::encode(&bytes));
        }
    }

    #[test]
    fn sm3_known_answer_64_bytes() {
        // GM/T 0004-2012 Appendix A, example 2: "abcd" repeated 16 times.
        let msg = "abcd".repeat(16);
        assert_eq!(sm3_hex(msg.as_bytes()), "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");
    }

    #[test]
    fn password_round_trip() {
        let phc = hash_password("正确的密码 horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("正确的密码 horse", &phc).unwrap());
        assert!(!verify_password("wrong", &phc).unwrap());
        assert!(verify_password("x", "not a hash").is_err());
    }

    #[test]
    fn tokens_are_unique_and_prefixed() {
        let a = new_token("ghp_");
        let b = new_token("ghp_");
        assert_ne!(a, b);
        assert!(a.starts_with("ghp_"));
        assert_eq!(a.len(), 4 + 64);
        assert_eq!(token_digest(&a).len(), 64);
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}

#[cfg(test)]
mod hmac_tests {
    use super::*;

    #[test]
    fn hmac_sm3_known_answer_and_key_sensitivity() {
        // HMAC-SM3 of "abc" under a 16-byte key, as computed by OpenSSL 3:
        // `printf abc | openssl dgst -sm3 -hmac 0123456789abcdef`.
        let mac = hmac_sm3(b"0123456789abcdef", b"abc");
        let out = std::process::Command::new("openssl")
            .args(["dgst", "-sm3", "-hmac", "0123456789abcdef", "-r"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().map(|mut i| i.write_all(b"abc"));
                c.wait_with_output()
            });
        match out {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout);
                assert_eq!(text.split_whitespace().next(), Some(hex::encode(mac).as_str()));
            }
            _ => eprintln!("SKIPPED the OpenSSL cross-check: openssl not available"),
        }
        assert_ne!(hmac_sm3(b"0123456789abcdeF", b"abc"), mac);
        assert_ne!(hmac_sm3(b"0123456789abcdef", b"abd"), mac);
    }
}
