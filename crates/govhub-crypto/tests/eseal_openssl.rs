//! A sealed document (GB/T 38540 `SES_Signature`) checked with OpenSSL alone, the way
//! `docs/pki.md` tells a third party to do it: `openssl asn1parse` finds the parts,
//! `openssl dgst -sm3` checks the document hash and both SM2 signatures, `openssl
//! verify` checks the signer's certificate against the platform root. The Rust side
//! only slices bytes at the offsets OpenSSL reports.
//!
//! Skipped with a loud `SKIPPED` line when `openssl` is absent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use govhub_crypto::eseal::{self, PictureType, SealError, SealSpec, SEAL_TYPE_ORGANISATION};
use govhub_crypto::pki::{self, OrgSpec, RootSpec};
use govhub_crypto::sm2keys::Sm2PrivateKey;

const DISTID: &str = "distid:1234567812345678";

fn openssl_available() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| o.status.success() && o.stdout.starts_with(b"OpenSSL 3"))
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED: OpenSSL 3 is not installed; the e-seal was NOT checked independently");
    }
    ok
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl").current_dir(dir).args(args).output().expect("openssl runs")
}

fn run_ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "openssl {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One line of `openssl asn1parse` output.
#[derive(Debug, Clone)]
struct Item {
    offset: usize,
    depth: usize,
    header: usize,
    length: usize,
    kind: String,
}

impl Item {
    fn end(&self) -> usize {
        self.offset + self.header + self.length
    }
}

fn asn1parse(dir: &Path, file: &str) -> Vec<Item> {
    let text = run_ok(dir, &["asn1parse", "-inform", "DER", "-in", file]);
    text.lines()
        .map(|line| {
            // "  1291:d=1  hl=4 l= 516 prim:  OCTET STRING      [HEX DUMP]:…"
            let (offset, rest) = line.split_once(":d=").unwrap();
            let (depth, rest) = rest.split_once("hl=").unwrap();
            let (header, rest) = rest.split_once("l=").unwrap();
            let (length, rest) = rest.trim_start().split_once(' ').unwrap();
            // "prim:  OCTET STRING      [HEX DUMP]:…" → "OCTET STRING"
            let kind = rest.split_once(':').unwrap().1.trim().split("  ").next().unwrap().trim().to_string();
            Item {
                offset: offset.trim().parse().unwrap(),
                depth: depth.trim().parse().unwrap(),
                header: header.trim().parse().unwrap(),
                length: length.trim().parse().unwrap(),
                kind,
            }
        })
        .collect()
}

/// DER SEQUENCE header for `len` content bytes.
fn sequence_header(len: usize) -> Vec<u8> {
    match len {
        0..=0x7F => vec![0x30, len as u8],
        0x80..=0xFF => vec![0x30, 0x81, len as u8],
        _ => vec![0x30, 0x82, (len >> 8) as u8, len as u8],
    }
}

#[test]
fn openssl_alone_verifies_a_sealed_document() {
    if !openssl_available() {
        return;
    }
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    let year = 365 * 24 * hour;
    let root_key = Sm2PrivateKey::generate().unwrap();
    let root = pki::create_root(
        &root_key,
        &RootSpec {
            common_name: "govhub 平台根证书",
            organisation: "govhub",
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
            name: "常州市数据局", uscc: "11320400014135878L", not_before: now - hour, not_after: now + year
        },
    )
    .unwrap();
    let picture = "<svg xmlns=\"http://www.w3.org/2000/svg\"><title>常州市数据局</title></svg>";
    let seal = eseal::make_seal(
        &root_key,
        &root,
        &[&org],
        &SealSpec {
            es_id: "32040000000001",
            seal_type: SEAL_TYPE_ORGANISATION,
            name: "常州市数据局电子印章",
            picture_type: PictureType::Svg,
            picture: picture.as_bytes(),
            width_mm: 42,
            height_mm: 42,
            created: now - hour,
            valid_start: now - hour,
            valid_end: now + year,
        },
    )
    .unwrap();
    let document = "居住证 — 电子证照文件内容".as_bytes();
    let sealed =
        eseal::seal_document(&org_key, &org, &seal, document, "1.2.156.3005.2.X", now).unwrap().to_der().unwrap();
    eseal::verify_document(&sealed, document, &root, now).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("sealed.der"), &sealed).unwrap();
    std::fs::write(d.join("document"), document).unwrap();
    std::fs::write(d.join("root.pem"), root.to_pem().unwrap()).unwrap();

    let items = asn1parse(d, "sealed.der");
    let d1: Vec<&Item> = items.iter().filter(|i| i.depth == 1).collect();
    assert_eq!(
        d1.iter().map(|i| i.kind.as_str()).collect::<Vec<_>>(),
        ["SEQUENCE", "OCTET STRING", "OBJECT", "BIT STRING"],
        "SES_Signature ::= SEQUENCE {{ toSign, cert, signatureAlgID, signature }}"
    );
    let (tbs, cert, _alg, signature) = (d1[0], d1[1], d1[2], d1[3]);
    let alg_line = run_ok(d, &["asn1parse", "-inform", "DER", "-in", "sealed.der"]);
    assert!(alg_line.contains(":SM2-with-SM3"));
    assert!(alg_line.contains("IA5STRING         :ES"));

    // 1. The document's SM3 equals dataHash (the BIT STRING at depth 2 inside toSign).
    let hash_item = items.iter().find(|i| i.depth == 2 && i.kind == "BIT STRING" && i.offset > tbs.offset).unwrap();
    run_ok(
        d,
        &[
            "asn1parse",
            "-inform",
            "DER",
            "-in",
            "sealed.der",
            "-strparse",
            &hash_item.offset.to_string(),
            "-noout",
            "-out",
            "hash.bin",
        ],
    );
    let expected = run_ok(d, &["dgst", "-sm3", "-r", "document"]);
    assert_eq!(hex::encode(std::fs::read(d.join("hash.bin")).unwrap()), expected.split_whitespace().next().unwrap());

    // 2. The signer's signature over toSign.
    run_ok(
        d,
        &[
            "asn1parse",
            "-inform",
            "DER",
            "-in",
            "sealed.der",
            "-offset",
            &tbs.offset.to_string(),
            "-length",
            &(tbs.header + tbs.length).to_string(),
            "-noout",
            "-out",
            "tbs.der",
        ],
    );
    run_ok(
        d,
        &[
            "asn1parse",
            "-inform",
            "DER",
            "-in",
            "sealed.der",
            "-strparse",
            &cert.offset.to_string(),
            "-noout",
            "-out",
            "signer.der",
        ],
    );
    run_ok(
        d,
        &[
            "asn1parse",
            "-inform",
            "DER",
            "-in",
            "sealed.der",
            "-strparse",
            &signature.offset.to_string(),
            "-noout",
            "-out",
            "signature.der",
        ],
    );
    run_ok(d, &["x509", "-inform", "DER", "-in", "signer.der", "-out", "signer.pem"]);
    run_ok(d, &["x509", "-in", "signer.pem", "-pubkey", "-noout", "-out", "signer-pub.pem"]);
    let out = run_ok(
        d,
        &["dgst", "-sm3", "-sigopt", DISTID, "-verify", "signer-pub.pem", "-signature", "signature.der", "tbs.der"],
    );
    assert!(out.contains("Verified OK"), "{out}");

    // 3. The signer's certificate chains to the platform root.
    let out = run_ok(d, &["verify", "-vfyopt", DISTID, "-CAfile", "root.pem", "signer.pem"]);
    assert!(out.contains("signer.pem: OK"), "{out}");

    // 4. The seal (the SEQUENCE at depth 2 inside toSign): made by the root, signature
    // over SEQUENCE { eSealInfo, cert, signAlgID }.
    let seal_item = items.iter().find(|i| i.depth == 2 && i.kind == "SEQUENCE" && i.offset > tbs.offset).unwrap();
    let children: Vec<&Item> =
        items.iter().filter(|i| i.depth == 3 && i.offset > seal_item.offset && i.end() <= seal_item.end()).collect();
    assert_eq!(
        children.iter().map(|i| i.kind.as_str()).collect::<Vec<_>>(),
        ["SEQUENCE", "OCTET STRING", "OBJECT", "BIT STRING"],
        "SES_Seal ::= SEQUENCE {{ eSealInfo, cert, signAlgID, signedValue }}"
    );
    let (info, maker, signed_value) = (children[0], children[1], children[3]);
    run_ok(
        d,
        &[
            "asn1parse",
            "-inform",
            "DER",
            "-in",
            "sealed.der",
            "-strparse",
            &maker.offset.to_string(),
            "-noout",
            "-out",
            "maker.der",
        ],
    );
    let root_der = run(d, &["x509", "-in", "root.pem", "-outform", "DER"]).stdout;
    assert_eq!(std::fs::read(d.join("maker.der")).unwrap(), root_der, "the seal maker is the platform root");
    let mut seal_tbs = sequence_header(signed_value.offset - info.offset);
    seal_tbs.extend_from_slice(&sealed[info.offset..signed_value.offset]);
    std::fs::write(d.join("seal-tbs.der"), &seal_tbs).unwrap();
    run_ok(
        d,
        &[
            "asn1parse",
            "-inform",
            "DER",
            "-in",
            "sealed.der",
            "-strparse",
            &signed_value.offset.to_string(),
            "-noout",
            "-out",
            "seal-signature.der",
        ],
    );
    run_ok(d, &["x509", "-in", "root.pem", "-pubkey", "-noout", "-out", "root-pub.pem"]);
    let out = run_ok(
        d,
        &[
            "dgst",
            "-sm3",
            "-sigopt",
            DISTID,
            "-verify",
            "root-pub.pem",
            "-signature",
            "seal-signature.der",
            "seal-tbs.der",
        ],
    );
    assert!(out.contains("Verified OK"), "{out}");

    // One flipped byte in the signed part: OpenSSL and govhub both refuse.
    let mut tampered = std::fs::read(d.join("tbs.der")).unwrap();
    let last = tampered.len() - 3;
    tampered[last] ^= 0x01;
    std::fs::write(d.join("tbs-tampered.der"), &tampered).unwrap();
    let out = run(
        d,
        &[
            "dgst",
            "-sm3",
            "-sigopt",
            DISTID,
            "-verify",
            "signer-pub.pem",
            "-signature",
            "signature.der",
            "tbs-tampered.der",
        ],
    );
    assert!(!out.status.success());
    let mut sealed_tampered = sealed.clone();
    sealed_tampered[tbs.offset + tbs.header + tbs.length - 3] ^= 0x01;
    assert_eq!(eseal::verify_document(&sealed_tampered, document, &root, now).err(), Some(SealError::SignatureInvalid));
}

/// The `verify-seal.sh` block of `docs/pki.md`, exactly as published.
fn documented_script() -> String {
    // The directory as cargo gives it when the test runs: a test binary built from a
    // checkout elsewhere into the same target directory would carry that path.
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let doc = std::fs::read_to_string(Path::new(&dir).join("../../docs/pki.md")).unwrap();
    let after = doc.split_once("<!-- verify-seal.sh").expect("docs/pki.md has the verify-seal.sh block").1;
    let body = after.split_once("```bash\n").unwrap().1;
    body.split_once("\n```").unwrap().0.to_string()
}

fn tools_available() -> bool {
    for tool in ["bash", "awk", "sed", "od", "cmp", "paste", "tail", "head"] {
        let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().map(|o| o.status.success());
        if !matches!(found, Ok(true)) {
            eprintln!("SKIPPED: `{tool}` is missing; the documented verify-seal.sh was NOT run");
            return false;
        }
    }
    true
}

#[test]
fn the_documented_openssl_script_verifies_and_refuses() {
    if !openssl_available() || !tools_available() {
        return;
    }
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    let year = 365 * 24 * hour;
    let make_root = || {
        let key = Sm2PrivateKey::generate().unwrap();
        let spec = RootSpec {
            common_name: "govhub 平台根证书",
            organisation: "govhub",
            not_before: now - hour,
            not_after: now + 10 * year,
        };
        let cert = pki::create_root(&key, &spec).unwrap();
        (key, cert)
    };
    let (root_key, root) = make_root();
    let (_, other_root) = make_root();
    let org_key = Sm2PrivateKey::generate().unwrap();
    let org = pki::issue_organisation(
        &root_key,
        &root,
        &org_key.public_key(),
        &OrgSpec {
            name: "常州市天宁区行政审批局",
            uscc: "11320402MB1234567X",
            not_before: now - hour,
            not_after: now + year,
        },
    )
    .unwrap();
    // A realistic picture, so the seal's signed part needs a multi-byte length header.
    let picture =
        "<svg xmlns=\"http://www.w3.org/2000/svg\">".to_string() + &"<circle r=\"1\"/>".repeat(200) + "</svg>";
    let seal = eseal::make_seal(
        &root_key,
        &root,
        &[&org],
        &SealSpec {
            es_id: "32040200000007",
            seal_type: SEAL_TYPE_ORGANISATION,
            name: "常州市天宁区行政审批局电子印章",
            picture_type: PictureType::Svg,
            picture: picture.as_bytes(),
            width_mm: 42,
            height_mm: 42,
            created: now - hour,
            valid_start: now - hour,
            valid_end: now + year,
        },
    )
    .unwrap();
    let document = b"{\"licence\":\"1.2.156.3005.2.X\",\"holder\":\"320402199003071235\"}";
    let sealed =
        eseal::seal_document(&org_key, &org, &seal, document, "1.2.156.3005.2.X", now).unwrap().to_der().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("verify-seal.sh"), documented_script()).unwrap();
    std::fs::write(d.join("sealed.der"), &sealed).unwrap();
    std::fs::write(d.join("document"), document).unwrap();
    std::fs::write(d.join("root.pem"), root.to_pem().unwrap()).unwrap();
    std::fs::write(d.join("other-root.pem"), other_root.to_pem().unwrap()).unwrap();
    let mut changed = document.to_vec();
    changed[12] ^= 0x01;
    std::fs::write(d.join("changed"), &changed).unwrap();
    let mut tampered = sealed.clone();
    let needle = b"1.2.156.3005.2.X";
    let pos = tampered.windows(needle.len()).position(|w| w == needle).unwrap();
    tampered[pos + needle.len() - 1] = b'Y';
    std::fs::write(d.join("tampered.der"), &tampered).unwrap();

    let script = |args: &[&str]| Command::new("bash").current_dir(d).arg("verify-seal.sh").args(args).output().unwrap();

    let good = script(&["sealed.der", "document", "root.pem"]);
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(good.status.success(), "{stdout}{}", String::from_utf8_lossy(&good.stderr));
    assert_eq!(stdout.matches("Verified OK").count(), 2, "{stdout}");
    for expected in ["document hash: OK", "signer.pem: OK", "seal maker is the root: OK", "seal created "] {
        assert!(stdout.contains(expected), "missing {expected:?} in {stdout}");
    }

    let bad_doc = script(&["sealed.der", "changed", "root.pem"]);
    assert!(!bad_doc.status.success());
    assert!(String::from_utf8_lossy(&bad_doc.stderr).contains("MISMATCH"));
    let bad_tbs = script(&["tampered.der", "document", "root.pem"]);
    assert!(!bad_tbs.status.success());
    assert!(String::from_utf8_lossy(&bad_tbs.stdout).contains("Verification failure"));
    let wrong_root = script(&["sealed.der", "document", "other-root.pem"]);
    assert!(!wrong_root.status.success());

    // govhub agrees on every case.
    assert!(eseal::verify_document(&sealed, document, &root, now).is_ok());
    assert_eq!(eseal::verify_document(&sealed, &changed, &root, now).err(), Some(SealError::DocumentMismatch));
    assert_eq!(eseal::verify_document(&tampered, document, &root, now).err(), Some(SealError::SignatureInvalid));
    assert_eq!(eseal::verify_document(&sealed, document, &other_root, now).err(), Some(SealError::SealMakerUntrusted));
}
