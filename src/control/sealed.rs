//! Encryption at rest for what the metadata must hold but nobody may read from it: tenants'
//! secrets and the credentials of their databases.
//!
//! XChaCha20-Poly1305 with a random 24-byte nonce per value (random nonces of that size never
//! collide in practice, so no counter has to be kept across nodes). The row's identity is the
//! associated data, so a sealed value copied into another row, or another tenant's, fails to
//! open instead of being accepted.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Format version of a sealed value; the first byte of every one.
const FORMAT: u8 = 1;
/// Bytes of the key id that follow the format byte: which key sealed the value.
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 24;

/// Why a sealed value cannot be opened. Never the caller's fault: the metadata was damaged,
/// or the node has another key than the one that sealed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not a sealed value of this format.
    #[error("sealed value for {context} is malformed")]
    Malformed {
        /// The row it belongs to.
        context: String,
    },
    /// Sealed with another key.
    #[error(
        "value for {context} was sealed with another key (key id {found}, this node has \
         {ours}): every node needs the same --sealing-key-file"
    )]
    OtherKey {
        /// The row it belongs to.
        context: String,
        /// The id of the key that sealed it.
        found: String,
        /// This node's key id.
        ours: String,
    },
    /// Tampered with, or moved from another row.
    #[error("sealed value for {context} failed to open")]
    Forged {
        /// The row it belongs to.
        context: String,
    },
    /// Opened, but not the UTF-8 text that was sealed.
    #[error("sealed value for {context} is not UTF-8")]
    NotText {
        /// The row it belongs to.
        context: String,
    },
}

/// The key that seals values at rest. Every node of one deployment must use the same one.
#[derive(Clone)]
pub struct SealingKey {
    cipher: XChaCha20Poly1305,
    id: [u8; KEY_ID_LEN],
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealingKey({})", hex::encode(self.id))
    }
}

impl SealingKey {
    /// A key from 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let digest = Sha256::digest([b"pubfn-key-id:".as_slice(), bytes].concat());
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        SealingKey {
            cipher: XChaCha20Poly1305::new(bytes.into()),
            id,
        }
    }

    /// A fresh random key (tests and throwaway deployments).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(&bytes)
    }

    /// Reads the key file (64 hex digits), creating it with a new random key, readable by its
    /// owner only, if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| format!("{shown}: expected 64 hex digits (a 32-byte key)"))?;
                Ok(Self::from_bytes(&bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                }
                match write_private(path, &hex::encode(bytes)) {
                    Ok(()) => {
                        tracing::info!(path = %shown, "created a new sealing key");
                        Ok(Self::from_bytes(&bytes))
                    }
                    // Another process made it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(path)
                    }
                    Err(e) => Err(format!("{shown}: {e}")),
                }
            }
            Err(e) => Err(format!("{shown}: {e}")),
        }
    }

    /// Encrypts `plaintext`, bound to `context` (the row it belongs in).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory sizes");
        let mut out = Vec::with_capacity(1 + KEY_ID_LEN + NONCE_LEN + sealed.len());
        out.push(FORMAT);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts a value sealed for `context`.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, SealError> {
        let header = 1 + KEY_ID_LEN + NONCE_LEN;
        if sealed.len() < header || sealed[0] != FORMAT {
            return Err(SealError::Malformed {
                context: context.into(),
            });
        }
        if sealed[1..1 + KEY_ID_LEN] != self.id {
            return Err(SealError::OtherKey {
                context: context.into(),
                found: hex::encode(&sealed[1..1 + KEY_ID_LEN]),
                ours: hex::encode(self.id),
            });
        }
        self.cipher
            .decrypt(
                XNonce::from_slice(&sealed[1 + KEY_ID_LEN..header]),
                Payload {
                    msg: &sealed[header..],
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Forged {
                context: context.into(),
            })
    }

    /// Decrypts a text sealed for `context`.
    pub fn open_text(&self, sealed: &[u8], context: &str) -> Result<String, SealError> {
        String::from_utf8(self.open(sealed, context)?).map_err(|_| SealError::NotText {
            context: context.into(),
        })
    }
}

/// Writes a new file readable by its owner only, whole or not at all: written beside the
/// target, then hard-linked into place, which fails if the target exists.
#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension(format!(
        "tmp.{}.{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::hard_link(&temporary, path)
    })();
    let _ = std::fs::remove_file(&temporary);
    result
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_context_and_with_their_key() {
        let key = SealingKey::generate();
        let sealed = key.seal(b"hunter2", "secret acme/API_KEY");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            key.open(&sealed, "secret acme/API_KEY").unwrap(),
            b"hunter2"
        );
        assert!(key.open(&sealed, "secret other/API_KEY").is_err());
        let other = SealingKey::generate();
        let error = other.open(&sealed, "secret acme/API_KEY").unwrap_err();
        assert!(error.to_string().contains("another key"), "{error}");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.open(&tampered, "secret acme/API_KEY").is_err());
        assert_ne!(
            key.seal(b"x", "c"),
            key.seal(b"x", "c"),
            "nonces are random"
        );
    }

    #[test]
    fn key_files_are_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/sealing.key");
        let first = SealingKey::load_or_create(&path).unwrap();
        let second = SealingKey::load_or_create(&path).unwrap();
        let sealed = first.seal(b"v", "c");
        assert_eq!(second.open(&sealed, "c").unwrap(), b"v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "key file readable by others: {mode:o}");
        }
        std::fs::write(&path, "nothex").unwrap();
        assert!(SealingKey::load_or_create(&path).is_err());
    }
}
