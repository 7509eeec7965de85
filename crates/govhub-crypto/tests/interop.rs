//! Cross-implementation tests: govhub's keys, signatures and certificates checked by the
//! real `openssl` binary (3.x) and by the Python `gmssl` package, and theirs by govhub.
//!
//! A missing tool skips its tests with a loud `SKIPPED` line on stderr instead of failing,
//! so the suite stays runnable on a bare machine; CI installs both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use govhub_crypto::pki::{self, Certificate, OrgSpec, RootSpec};
use govhub_crypto::signing;
use govhub_crypto::sm2keys::{Sm2PrivateKey, Sm2PublicKey, Sm2Signature, DEFAULT_DIST_ID, MIN_KDF_ITERATIONS};

const DISTID: &str = "distid:1234567812345678";

fn openssl_available() -> bool {
    match Command::new("openssl").arg("version").output() {
        Ok(out) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout);
            if version.starts_with("OpenSSL 3") {
                true
            } else {
                eprintln!("SKIPPED: these tests need OpenSSL 3 for SM2 (found {})", version.trim());
                false
            }
        }
        _ => {
            eprintln!("SKIPPED: the openssl binary is not installed; OpenSSL interoperability NOT checked");
            false
        }
    }
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl").current_dir(dir).args(args).output().expect("openssl runs")
}

fn run_ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "openssl {} failed:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

const MESSAGE: &[u8] = "营业执照 91320402123456788Q — licence payload\n".as_bytes();

#[test]
fn openssl_verifies_our_signatures() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = Sm2PrivateKey::generate().unwrap();
    write(d, "pub.pem", key.public_key().to_pem().unwrap());
    write(d, "msg", MESSAGE);
    write(d, "sig.der", signing::sign(&key, MESSAGE).unwrap().as_der());

    let out = run_ok(d, &["dgst", "-sm3", "-sigopt", DISTID, "-verify", "pub.pem", "-signature", "sig.der", "msg"]);
    assert!(out.contains("Verified OK"), "{out}");
    let out = run_ok(
        d,
        &[
            "pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pkeyopt", DISTID, "-pubin", "-inkey", "pub.pem", "-in",
            "msg", "-sigfile", "sig.der",
        ],
    );
    assert!(out.contains("Signature Verified Successfully"), "{out}");

    // One flipped byte in the message, or OpenSSL's default (empty) ID: rejected.
    let mut tampered = MESSAGE.to_vec();
    tampered[3] ^= 0x01;
    write(d, "tampered", &tampered);
    let out = run(d, &["dgst", "-sm3", "-sigopt", DISTID, "-verify", "pub.pem", "-signature", "sig.der", "tampered"]);
    assert!(!out.status.success());
    let out = run(d, &["dgst", "-sm3", "-verify", "pub.pem", "-signature", "sig.der", "msg"]);
    assert!(!out.status.success(), "OpenSSL's default distinguishing ID must not verify a govhub signature");
    // One flipped byte in the signature.
    let mut sig = signing::sign(&key, MESSAGE).unwrap().to_der();
    let last = sig.len() - 1;
    sig[last] ^= 0x01;
    write(d, "bad.der", &sig);
    let out = run(d, &["dgst", "-sm3", "-sigopt", DISTID, "-verify", "pub.pem", "-signature", "bad.der", "msg"]);
    assert!(!out.status.success());
}

#[test]
fn we_verify_openssl_signatures() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_ok(d, &["genpkey", "-algorithm", "SM2", "-out", "key.pem"]);
    run_ok(d, &["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"]);
    write(d, "msg", MESSAGE);
    run_ok(
        d,
        &[
            "pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-pkeyopt", DISTID, "-inkey", "key.pem", "-in", "msg",
            "-out", "sig1.der",
        ],
    );
    run_ok(d, &["dgst", "-sm3", "-sigopt", DISTID, "-sign", "key.pem", "-out", "sig2.der", "msg"]);

    let public = Sm2PublicKey::from_pem(&std::fs::read_to_string(d.join("pub.pem")).unwrap()).unwrap();
    for file in ["sig1.der", "sig2.der"] {
        let der = std::fs::read(d.join(file)).unwrap();
        signing::verify(&public, MESSAGE, &der).unwrap();
        assert!(signing::verify(&public, b"another message", &der).is_err());
        // Under another ID (OpenSSL's empty default) it does not verify.
        let sig = Sm2Signature::from_der(&der).unwrap();
        assert!(public.verify_with_id("", MESSAGE, &sig).is_err());
    }
    // An OpenSSL signature made without distid uses the empty ID: we verify it only when told.
    run_ok(d, &["dgst", "-sm3", "-sign", "key.pem", "-out", "sig3.der", "msg"]);
    let sig = Sm2Signature::from_der(&std::fs::read(d.join("sig3.der")).unwrap()).unwrap();
    public.verify_with_id("", MESSAGE, &sig).unwrap();
    assert!(public.verify(MESSAGE, &sig).is_err());
}

/// The key made the other way OpenSSL 3 offers — an EC key on the SM2 curve — signs with
/// `pkeyutl` and `dgst`; govhub verifies both, and refuses them with one flipped byte.
#[test]
fn we_verify_openssl_signatures_by_an_ec_key_on_the_sm2_curve() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_ok(d, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", "key.pem"]);
    run_ok(d, &["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"]);
    write(d, "msg", MESSAGE);
    run_ok(
        d,
        &[
            "pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-pkeyopt", DISTID, "-inkey", "key.pem", "-in", "msg",
            "-out", "sig1.der",
        ],
    );
    run_ok(d, &["dgst", "-sm3", "-sigopt", DISTID, "-sign", "key.pem", "-out", "sig2.der", "msg"]);
    let public = Sm2PublicKey::from_pem(&std::fs::read_to_string(d.join("pub.pem")).unwrap()).unwrap();
    for file in ["sig1.der", "sig2.der"] {
        let der = std::fs::read(d.join(file)).unwrap();
        signing::verify(&public, MESSAGE, &der).unwrap();
        let mut flipped = MESSAGE.to_vec();
        flipped[3] ^= 0x01;
        assert!(signing::verify(&public, &flipped, &der).is_err());
        let mut bad = der.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x01;
        assert!(signing::verify(&public, MESSAGE, &bad).is_err());
    }
}

#[test]
fn openssl_verifies_the_annex_a_vector_through_our_key_encoding() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = Sm2PrivateKey::from_scalar_bytes(
        &hex::decode("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8").unwrap(),
    )
    .unwrap();
    let mut raw = hex::decode("F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3").unwrap();
    raw.extend(hex::decode("B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA").unwrap());
    let sig = Sm2Signature::from_raw(&raw).unwrap();
    key.public_key().verify(b"message digest", &sig).unwrap();
    write(d, "pub.pem", key.public_key().to_pem().unwrap());
    write(d, "msg", b"message digest");
    write(d, "sig.der", sig.as_der());
    let out = run_ok(d, &["dgst", "-sm3", "-sigopt", DISTID, "-verify", "pub.pem", "-signature", "sig.der", "msg"]);
    assert!(out.contains("Verified OK"), "{out}");
}

#[test]
fn openssl_reads_our_encrypted_private_key_and_we_read_its() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = Sm2PrivateKey::generate().unwrap();
    // The production default (600,000 PBKDF2 iterations) once, so the real format is checked.
    write(d, "key.pem", key.to_encrypted_pem("s3cret 口令".as_bytes()).unwrap());
    let pubout = run_ok(d, &["pkey", "-in", "key.pem", "-passin", "pass:s3cret 口令", "-pubout"]);
    assert_eq!(Sm2PublicKey::from_pem(&pubout).unwrap(), key.public_key());
    let text = run_ok(d, &["asn1parse", "-in", "key.pem"]);
    assert!(text.contains("PBES2") && text.contains("PBKDF2") && text.contains("aes-256-cbc"), "{text}");
    assert!(text.contains("hmacWithSHA256"), "{text}");
    let wrong = run(d, &["pkey", "-in", "key.pem", "-passin", "pass:wrong", "-pubout"]);
    assert!(!wrong.status.success());

    // A key OpenSSL generated and encrypted (PBES2, AES-256-CBC) loads here and signs
    // for the public key OpenSSL derives.
    run_ok(d, &["genpkey", "-algorithm", "SM2", "-out", "plain.pem"]);
    run_ok(
        d,
        &["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", "plain.pem", "-passout", "pass:other", "-out", "enc.pem"],
    );
    run_ok(d, &["pkey", "-in", "plain.pem", "-pubout", "-out", "theirs.pub"]);
    let theirs =
        Sm2PrivateKey::from_encrypted_pem(&std::fs::read_to_string(d.join("enc.pem")).unwrap(), b"other").unwrap();
    let their_public = Sm2PublicKey::from_pem(&std::fs::read_to_string(d.join("theirs.pub")).unwrap()).unwrap();
    assert_eq!(theirs.public_key(), their_public);
    // The unencrypted file is refused.
    let plain = std::fs::read_to_string(d.join("plain.pem")).unwrap();
    assert!(Sm2PrivateKey::from_encrypted_pem(&plain, b"").is_err());
    // A fast-KDF file round-trips through OpenSSL re-encryption too.
    write(d, "fast.pem", key.to_encrypted_pem_with_iterations(b"pw", MIN_KDF_ITERATIONS).unwrap());
    run_ok(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-128-cbc",
            "-in",
            "fast.pem",
            "-passin",
            "pass:pw",
            "-passout",
            "pass:pw2",
            "-out",
            "re.pem",
        ],
    );
    let re = Sm2PrivateKey::from_encrypted_pem(&std::fs::read_to_string(d.join("re.pem")).unwrap(), b"pw2").unwrap();
    assert_eq!(re.public_key(), key.public_key());
}

struct Hierarchy {
    root_key: Sm2PrivateKey,
    root: Certificate,
    org_key: Sm2PrivateKey,
    org: Certificate,
}

fn hierarchy() -> Hierarchy {
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    let year = Duration::from_secs(365 * 24 * 3600);
    let root_key = Sm2PrivateKey::generate().unwrap();
    let root = pki::create_root(
        &root_key,
        &RootSpec {
            common_name: "govhub 平台根证书",
            organisation: "govhub 数字政府平台",
            not_before: now - hour,
            not_after: now + 10 * year,
        },
    )
    .unwrap();
    let org_key = Sm2PrivateKey::generate().unwrap();
    let org = pki::issue_organisation(
        &root_key,
        &root,
        &org_key.public_key(),
        &OrgSpec {
            name: "常州市市场监督管理局",
            uscc: "11320400014135878L",
            not_before: now - hour,
            not_after: now + year,
        },
    )
    .unwrap();
    Hierarchy { root_key, root, org_key, org }
}

#[test]
fn openssl_parses_and_verifies_our_certificates() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let h = hierarchy();
    write(d, "root.pem", h.root.to_pem().unwrap());
    write(d, "org.pem", h.org.to_pem().unwrap());

    let root_text = run_ok(d, &["x509", "-noout", "-text", "-in", "root.pem"]);
    for expected in ["Version: 3", "SM2-with-SM3", "ASN1 OID: SM2", "CA:TRUE", "Certificate Sign", "CRL Sign"] {
        assert!(root_text.contains(expected), "root lacks {expected:?}:\n{root_text}");
    }
    let org_text = run_ok(d, &["x509", "-noout", "-text", "-nameopt", "utf8", "-in", "org.pem"]);
    for expected in [
        "SM2-with-SM3",
        "CA:FALSE",
        "Digital Signature, Non Repudiation",
        "serialNumber=11320400014135878L",
        "常州市市场监督管理局",
        "Authority Key Identifier",
    ] {
        assert!(org_text.contains(expected), "org lacks {expected:?}:\n{org_text}");
    }

    let out = run_ok(d, &["verify", "-vfyopt", DISTID, "-CAfile", "root.pem", "org.pem"]);
    assert!(out.contains("org.pem: OK"), "{out}");
    pki::verify_issued_by(&h.org, &h.root, SystemTime::now()).unwrap();

    // Without the distinguishing ID OpenSSL computes another Z and rejects the signature:
    // the reason the documentation spells the option out.
    let out = run(d, &["verify", "-CAfile", "root.pem", "org.pem"]);
    assert!(!out.status.success());

    // Tampered: one byte of the organisation name in the signed part.
    let mut der = h.org.to_der().to_vec();
    let needle = "市场".as_bytes();
    let pos = der.windows(needle.len()).position(|w| w == needle).unwrap();
    der[pos + 2] ^= 0x01;
    let tampered = Certificate::from_der(&der).unwrap();
    write(d, "tampered.pem", tampered.to_pem().unwrap());
    let out = run(d, &["verify", "-vfyopt", DISTID, "-CAfile", "root.pem", "tampered.pem"]);
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("signature failure"));
    assert_eq!(pki::verify_issued_by(&tampered, &h.root, SystemTime::now()), Err(pki::PkiError::BadSignature));

    // Against another root with the same name: both refuse.
    let other = hierarchy();
    write(d, "other-root.pem", other.root.to_pem().unwrap());
    let out = run(d, &["verify", "-vfyopt", DISTID, "-CAfile", "other-root.pem", "org.pem"]);
    assert!(!out.status.success());
    assert!(pki::verify_issued_by(&h.org, &other.root, SystemTime::now()).is_err());

    // A signature by the organisation key verifies with the certificate's key in OpenSSL.
    write(d, "msg", MESSAGE);
    write(d, "sig.der", h.org_key.sign(MESSAGE).unwrap().as_der());
    run_ok(d, &["x509", "-in", "org.pem", "-pubkey", "-noout", "-out", "org-pub.pem"]);
    let out = run_ok(d, &["dgst", "-sm3", "-sigopt", DISTID, "-verify", "org-pub.pem", "-signature", "sig.der", "msg"]);
    assert!(out.contains("Verified OK"));
    let _ = &h.root_key;
}

// ---------------------------------------------------------------------------
// Python gmssl: a second, independent SM2 implementation (a test oracle only: its random
// k is not secure).
// ---------------------------------------------------------------------------

const GMSSL_SCRIPT: &str = r#"
import sys, binascii
from gmssl import sm2, func
mode = sys.argv[1]
if mode == "sign":
    d = func.random_hex(64)
    c = sm2.CryptSM2(private_key=d, public_key="")
    pub = c._kg(int(d, 16), c.ecc_table["g"])
    c = sm2.CryptSM2(private_key=d, public_key=pub)
    msg = binascii.a2b_hex(sys.argv[2])
    sig = c.sign_with_sm3(msg)
    print(pub)
    print(sig)
elif mode == "verify":
    c = sm2.CryptSM2(private_key=None, public_key=sys.argv[2])
    ok = c.verify_with_sm3(sys.argv[3], binascii.a2b_hex(sys.argv[4]))
    print("OK" if ok else "FAIL")
"#;

fn gmssl_available() -> bool {
    let ok = Command::new("python3").args(["-c", "import gmssl"]).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED: Python gmssl is not installed (pip install gmssl); gmssl interoperability NOT checked");
    }
    ok
}

fn gmssl(args: &[&str]) -> String {
    let out = Command::new("python3").arg("-c").arg(GMSSL_SCRIPT).args(args).output().unwrap();
    assert!(out.status.success(), "gmssl: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn gmssl_verifies_ours_and_we_verify_gmssl() {
    if !gmssl_available() {
        return;
    }
    // gmssl always uses the default ID 1234567812345678.
    assert_eq!(DEFAULT_DIST_ID, "1234567812345678");
    let key = Sm2PrivateKey::generate().unwrap();
    let sig = key.sign(MESSAGE).unwrap();
    let public_xy = hex::encode(&key.public_key().to_sec1_uncompressed()[1..]);
    let msg_hex = hex::encode(MESSAGE);
    assert_eq!(gmssl(&["verify", &public_xy, &hex::encode(sig.to_raw()), &msg_hex]).trim(), "OK");
    let mut bad = sig.to_raw();
    bad[10] ^= 0x01;
    assert_eq!(gmssl(&["verify", &public_xy, &hex::encode(bad), &msg_hex]).trim(), "FAIL");

    for _ in 0..3 {
        let out = gmssl(&["sign", &msg_hex]);
        let mut lines = out.lines();
        let (public_hex, sig_hex) = (lines.next().unwrap(), lines.next().unwrap());
        let public = Sm2PublicKey::from_sec1_bytes(&hex::decode(format!("04{public_hex:0>128}")).unwrap()).unwrap();
        let sig = Sm2Signature::from_raw(&hex::decode(format!("{sig_hex:0>128}")).unwrap()).unwrap();
        public.verify(MESSAGE, &sig).unwrap();
        assert!(public.verify(b"different", &sig).is_err());
    }
}

#[test]
fn non_sm2_keys_and_certificates_are_refused_with_clear_errors() {
    if !openssl_available() {
        return;
    }
    use govhub_crypto::sm2keys::KeyError;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_ok(d, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "p256.pem"]);
    run_ok(d, &["pkey", "-in", "p256.pem", "-pubout", "-out", "p256.pub"]);
    run_ok(d, &["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", "p256.pem", "-passout", "pass:x", "-out", "p256.enc"]);
    run_ok(
        d,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "p256.pem",
            "-subj",
            "/CN=not sm2",
            "-days",
            "1",
            "-sha256",
            "-out",
            "p256.crt",
        ],
    );
    let public = Sm2PublicKey::from_pem(&std::fs::read_to_string(d.join("p256.pub")).unwrap());
    assert!(matches!(public, Err(KeyError::NotSm2(_))), "{public:?}");
    let private = Sm2PrivateKey::from_encrypted_pem(&std::fs::read_to_string(d.join("p256.enc")).unwrap(), b"x");
    assert!(matches!(private, Err(KeyError::NotSm2(_))), "{private:?}");
    let cert = Certificate::from_pem(&std::fs::read_to_string(d.join("p256.crt")).unwrap()).unwrap();
    assert!(matches!(pki::verify_root(&cert, SystemTime::now()), Err(pki::PkiError::UnsupportedAlgorithm(_))));
    // An ECDSA-P256 signature is not an SM2 signature under any key.
    write(d, "msg", MESSAGE);
    run_ok(d, &["dgst", "-sha256", "-sign", "p256.pem", "-out", "ecdsa.der", "msg"]);
    let key = Sm2PrivateKey::generate().unwrap();
    let ecdsa = std::fs::read(d.join("ecdsa.der")).unwrap();
    assert!(signing::verify(&key.public_key(), MESSAGE, &ecdsa).is_err());
}
