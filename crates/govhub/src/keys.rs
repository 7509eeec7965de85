//! The platform's keys, in the data directory, encrypted (PKCS#8, govhub-crypto):
//! `platform-key.pem` (public half beside it as `platform-key.pub.pem`) signs audit
//! checkpoints and status lists; `pki-root-key.pem` is the e-licence root CA key, a
//! second key so that the root signs only certificates and seals (docs/pki.md). Both
//! use the same passphrase, which also encrypts organisation seal keys in the store.
//!
//! The passphrase comes from, in this order: `--key-passphrase-file FILE` (env
//! `GOVHUB_KEY_PASSPHRASE_FILE`), `GOVHUB_KEY_PASSPHRASE`, `key_passphrase_file` in the
//! configuration file. `govhub demo` without any of them keeps a random passphrase in
//! `platform-key.pass` (mode 0600). The key is generated at the first start. Neither the
//! passphrase nor the key is ever logged.

use anyhow::{bail, Context, Result};
use govhub_core::service::Hub;
use govhub_core::signer::{PlatformSigner, Sm2Signer};
use govhub_crypto::sm2keys::{KeyError, Sm2PrivateKey, Sm2PublicKey};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub const KEY_FILE: &str = "platform-key.pem";
/// The e-licence root key.
pub const ROOT_KEY_FILE: &str = "pki-root-key.pem";
pub const PUBLIC_KEY_FILE: &str = "platform-key.pub.pem";
pub const DEMO_PASSPHRASE_FILE: &str = "platform-key.pass";
pub const PASSPHRASE_ENV: &str = "GOVHUB_KEY_PASSPHRASE";
/// The store `meta` key recording which platform key checkpoints the log.
pub const FINGERPRINT_META: &str = "platform.key_fingerprint";

/// Where the key's passphrase comes from (resolved by the configuration layering).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassphraseSource {
    /// None given.
    Missing,
    /// The first line of this file.
    File(PathBuf),
    /// The `GOVHUB_KEY_PASSPHRASE` environment variable.
    Env,
}

/// A passphrase in memory: wiped when dropped, never printed.
pub struct Passphrase(Zeroizing<String>);

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase([redacted])")
    }
}

impl Passphrase {
    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

pub fn public_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(PUBLIC_KEY_FILE)
}

fn first_line(path: &Path) -> Result<Passphrase> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading the key passphrase file {}", path.display()))?,
    );
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        bail!("the key passphrase file {} is empty", path.display());
    }
    Ok(Passphrase(Zeroizing::new(line.to_string())))
}

fn how_to_give(key: &Path) -> String {
    format!(
        "give its passphrase with the environment variable {PASSPHRASE_ENV}=… or with --key-passphrase-file FILE \
         (also key_passphrase_file in the configuration file){}",
        if key.with_file_name(DEMO_PASSPHRASE_FILE).exists() {
            format!(" — `govhub demo` keeps its passphrase in {}", key.with_file_name(DEMO_PASSPHRASE_FILE).display())
        } else {
            String::new()
        }
    )
}

/// Write a new file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// `govhub demo`'s passphrase: read from `platform-key.pass`, or made at random (with
/// the key) on the first start.
fn demo_passphrase(data_dir: &Path) -> Result<Passphrase> {
    let file = data_dir.join(DEMO_PASSPHRASE_FILE);
    if file.exists() {
        return first_line(&file);
    }
    let key = key_path(data_dir);
    if key.exists() {
        bail!("the platform key {} exists but {} does not: {}", key.display(), file.display(), how_to_give(&key));
    }
    let pass = Zeroizing::new(govhub_crypto::new_token("demo-"));
    write_private(&file, format!("{}\n", pass.as_str()).as_bytes())?;
    tracing::info!(file = %file.display(), "generated a random passphrase for the demo's platform key");
    Ok(Passphrase(pass))
}

/// The passphrase, or an error saying how to give one.
fn passphrase(data_dir: &Path, source: &PassphraseSource, demo: bool) -> Result<Passphrase> {
    let key = key_path(data_dir);
    match source {
        PassphraseSource::File(p) => first_line(p),
        PassphraseSource::Env => match std::env::var(PASSPHRASE_ENV) {
            Ok(v) if !v.is_empty() => Ok(Passphrase(Zeroizing::new(v))),
            _ => bail!("{PASSPHRASE_ENV} is empty"),
        },
        PassphraseSource::Missing if demo => demo_passphrase(data_dir),
        PassphraseSource::Missing if key.exists() => {
            bail!("the platform key {} is encrypted: {}", key.display(), how_to_give(&key))
        }
        PassphraseSource::Missing => bail!(
            "govhub creates the platform signing key {} at its first start and needs a passphrase to encrypt it: {}",
            key.display(),
            how_to_give(&key)
        ),
    }
}

/// Load the platform key from the data directory, generating it (and its public half)
/// at the first start.
#[cfg(test)]
pub fn load_or_create(data_dir: &Path, source: &PassphraseSource, demo: bool) -> Result<Sm2Signer> {
    Ok(load_all(data_dir, source, demo)?.platform)
}

/// The platform key, the e-licence root key and the passphrase that wraps
/// organisation seal keys.
pub struct Keys {
    pub platform: Sm2Signer,
    root: Sm2PrivateKey,
    pass: Passphrase,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys {{ platform: {:?}, root: {:?}, passphrase: [redacted] }}", self.platform, self.root)
    }
}

/// Load (or at the first start generate) both keys.
pub fn load_all(data_dir: &Path, source: &PassphraseSource, demo: bool) -> Result<Keys> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let pass = passphrase(data_dir, source, demo)?;
    let key = load_or_create_key(&key_path(data_dir), &pass, "platform key")?;
    let root = load_or_create_key(&data_dir.join(ROOT_KEY_FILE), &pass, "e-licence root key")?;
    let signer = Sm2Signer::new(key).context("the platform key's public half")?;
    let public = public_key_path(data_dir);
    let pem = signer.public_key_pem();
    if std::fs::read_to_string(&public).ok().as_deref() != Some(pem.as_str()) {
        std::fs::write(&public, &pem).with_context(|| format!("writing {}", public.display()))?;
    }
    Ok(Keys { platform: signer, root, pass })
}

fn load_or_create_key(path: &Path, pass: &Passphrase, what: &str) -> Result<Sm2PrivateKey> {
    let key = if path.exists() {
        let pem = Zeroizing::new(
            std::fs::read_to_string(path).with_context(|| format!("reading the {what} {}", path.display()))?,
        );
        Sm2PrivateKey::from_encrypted_pem(&pem, pass.bytes()).map_err(|e| match e {
            KeyError::Decrypt => anyhow::anyhow!(
                "cannot decrypt the {what} {}: wrong passphrase or damaged file ({})",
                path.display(),
                e.code()
            ),
            other => anyhow::anyhow!("the {what} {} is not usable: {other}", path.display()),
        })?
    } else {
        let key = Sm2PrivateKey::generate().with_context(|| format!("generating the {what}"))?;
        let pem = key.to_encrypted_pem(pass.bytes()).with_context(|| format!("encrypting the {what}"))?;
        write_private(path, pem.as_bytes())?;
        tracing::info!(file = %path.display(), fingerprint = %key.public_key().fingerprint(), "generated the {what} (SM2)");
        key
    };
    Ok(key)
}

/// [`load_or_create`] for the configured data directory and passphrase, off the async
/// workers (decrypting runs 600,000 PBKDF2 rounds on purpose).
pub async fn load(s: &crate::config::Settings, demo: bool) -> Result<Keys> {
    let (dir, source) = (s.data_dir.clone(), s.key_passphrase.clone());
    tokio::task::spawn_blocking(move || load_all(&dir, &source, demo)).await?
}

/// Give the hub its platform key, after checking it is the store's, and its e-licence
/// root (its certificate is made at the first start and kept in the store).
pub async fn attach(hub: Hub, keys: Keys) -> Result<Hub> {
    let Keys { platform, root, pass } = keys;
    bind_to_store(&hub, &platform).await?;
    tracing::info!(fingerprint = %platform.fingerprint(), "platform key loaded");
    let hub = hub.with_signer(std::sync::Arc::new(platform));
    let hub = hub
        .attach_seal_authority(root, pass.bytes(), govhub_crypto::sm2keys::DEFAULT_KDF_ITERATIONS)
        .await
        .map_err(|e| {
            let detail = e.source.as_ref().map(|s| s.to_string()).unwrap_or_else(|| e.message.clone());
            anyhow::anyhow!("the e-licence root: {detail}")
        })?;
    Ok(hub)
}

/// Refuse a key other than the one the store's log has been checkpointed with
/// (several nodes must share one key), and record it on first use.
pub async fn bind_to_store(hub: &Hub, signer: &Sm2Signer) -> Result<()> {
    let fp = signer.fingerprint();
    match hub.get_meta(FINGERPRINT_META).await.map_err(|e| anyhow::anyhow!("{}", e.message))? {
        Some(known) if known != fp => bail!(
            "this data directory's platform key (fingerprint {}…) is not the key this store's audit log is \
             checkpointed with ({}…). Every govhub node serving one database must use the same platform key: copy \
             {KEY_FILE} from the first node's data directory",
            &fp[..16.min(fp.len())],
            &known[..16.min(known.len())]
        ),
        Some(_) => Ok(()),
        None => hub.set_meta(FINGERPRINT_META, &fp).await.map_err(|e| anyhow::anyhow!("{}", e.message)),
    }
}

/// Read public keys (PEM files) for verification.
pub fn read_public_keys(paths: &[PathBuf]) -> Result<Vec<Sm2PublicKey>> {
    paths
        .iter()
        .map(|p| {
            let pem = std::fs::read_to_string(p).with_context(|| format!("reading the public key {}", p.display()))?;
            Sm2PublicKey::from_pem(&pem).with_context(|| format!("{} is not an SM2 public key PEM", p.display()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use govhub_core::signer::PlatformSigner;

    #[test]
    fn generates_once_then_loads_and_refuses_a_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let pass_file = dir.path().join("pass");
        std::fs::write(&pass_file, "correct horse battery\nignored second line\n").unwrap();
        let src = PassphraseSource::File(pass_file.clone());
        let a = load_or_create(dir.path(), &src, false).unwrap();
        let b = load_or_create(dir.path(), &src, false).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint(), "the second start loads the same key");
        let key = std::fs::read_to_string(key_path(dir.path())).unwrap();
        assert!(key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        assert!(!key.contains("correct horse"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(dir.path())).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let public = std::fs::read_to_string(public_key_path(dir.path())).unwrap();
        assert_eq!(public, a.public_key_pem());

        std::fs::write(&pass_file, "wrong\n").unwrap();
        let e = load_or_create(dir.path(), &src, false).unwrap_err().to_string();
        assert!(e.contains("wrong passphrase") && !e.contains("wrong\n"), "{e}");
        let e = load_or_create(dir.path(), &PassphraseSource::Missing, false).unwrap_err().to_string();
        assert!(e.contains(PASSPHRASE_ENV) && e.contains("--key-passphrase-file"), "{e}");
        std::fs::write(&pass_file, "\n").unwrap();
        assert!(load_or_create(dir.path(), &src, false).unwrap_err().to_string().contains("is empty"));
    }

    #[test]
    fn demo_keeps_a_random_passphrase_beside_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path(), &PassphraseSource::Missing, true).unwrap();
        let pass = dir.path().join(DEMO_PASSPHRASE_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&pass).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let b = load_or_create(dir.path(), &PassphraseSource::Missing, true).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        // serve, without a passphrase, names both ways to give it and the demo's file.
        let e = load_or_create(dir.path(), &PassphraseSource::Missing, false).unwrap_err().to_string();
        assert!(e.contains("is encrypted") && e.contains(DEMO_PASSPHRASE_FILE), "{e}");
        assert!(format!("{:?}", first_line(&pass).unwrap()).contains("redacted"));
    }
}
