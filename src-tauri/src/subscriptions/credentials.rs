//! API keys and access tokens for the platforms' subscription APIs, one per source. They live
//! in the OS keychain (Secret Service on Linux, Keychain on macOS, Credential Manager on
//! Windows) when one answers, otherwise in `credentials.json` in the data directory, readable
//! by the user only (mode 0600, written to a temporary file and renamed, so it is never seen
//! half-written or with wider permissions).
//!
//! A credential is a [`Secret`]: its `Debug` prints `[redacted]`, it is not `Serialize`, and
//! nothing here logs one. The dashboard API only ever says whether a credential is set.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rand::RngCore;

/// The keychain service name every Rollcall entry is filed under.
const KEYCHAIN_SERVICE: &str = "rollcall";
/// The fallback file in the data directory.
pub const CREDENTIALS_FILE: &str = "credentials.json";

/// An API key or token. Never printed, never serialized.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A trimmed, non-empty secret.
    pub fn parse(raw: &str) -> Result<Secret, CredentialError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(CredentialError::Empty);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(CredentialError::Malformed);
        }
        Ok(Secret(trimmed.to_owned()))
    }

    /// The secret itself, for the one header that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("the API key or token is empty")]
    Empty,
    #[error("the API key or token contains control characters; paste it again")]
    Malformed,
    #[error("the credentials file {path} could not be used: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the credentials file {path} is damaged ({reason}); remove it and enter the keys again"
    )]
    Damaged { path: PathBuf, reason: String },
    #[error("the system keychain failed: {0}")]
    Keychain(String),
}

/// Where credentials are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum CredentialBackend {
    Keychain,
    File,
}

/// The credential store of one data directory.
pub struct Credentials {
    backend: CredentialBackend,
    file: PathBuf,
    /// Keychain entries are named after the data directory too, so two data directories on one
    /// machine keep separate keys.
    scope: String,
    /// Serializes read-modify-write of the file.
    lock: Mutex<()>,
}

impl Credentials {
    /// Uses the keychain when `try_keychain` and one answers; otherwise the 0600 file.
    /// Blocking (the keychain is probed over D-Bus): call off the async runtime.
    pub fn open(data_dir: &Path, try_keychain: bool) -> Credentials {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(data_dir.to_string_lossy().as_bytes());
        let scope = hex::encode(&digest[..8]);
        let backend = if try_keychain && keychain_answers(&scope) {
            CredentialBackend::Keychain
        } else {
            CredentialBackend::File
        };
        tracing::info!(?backend, "credential store chosen");
        Credentials {
            backend,
            file: data_dir.join(CREDENTIALS_FILE),
            scope,
            lock: Mutex::new(()),
        }
    }

    pub fn backend(&self) -> CredentialBackend {
        self.backend
    }

    fn entry(&self, source_id: i64) -> Result<keyring::Entry, CredentialError> {
        keyring::Entry::new(
            KEYCHAIN_SERVICE,
            &format!("{}/source-{source_id}", self.scope),
        )
        .map_err(|e| CredentialError::Keychain(e.to_string()))
    }

    pub fn set(&self, source_id: i64, secret: &Secret) -> Result<(), CredentialError> {
        match self.backend {
            CredentialBackend::Keychain => self
                .entry(source_id)?
                .set_password(secret.expose())
                .map_err(|e| CredentialError::Keychain(e.to_string())),
            CredentialBackend::File => self.edit_file(|all| {
                all.insert(source_id.to_string(), secret.expose().to_owned());
            }),
        }
    }

    pub fn get(&self, source_id: i64) -> Result<Option<Secret>, CredentialError> {
        match self.backend {
            CredentialBackend::Keychain => match self.entry(source_id)?.get_password() {
                Ok(value) => Ok(Some(Secret(value))),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => Err(CredentialError::Keychain(e.to_string())),
            },
            CredentialBackend::File => {
                let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
                Ok(self.read_file()?.remove(&source_id.to_string()).map(Secret))
            }
        }
    }

    pub fn remove(&self, source_id: i64) -> Result<(), CredentialError> {
        match self.backend {
            CredentialBackend::Keychain => match self.entry(source_id)?.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
                Err(e) => Err(CredentialError::Keychain(e.to_string())),
            },
            CredentialBackend::File => self.edit_file(|all| {
                all.remove(&source_id.to_string());
            }),
        }
    }

    fn read_file(&self) -> Result<BTreeMap<String, String>, CredentialError> {
        match std::fs::read(&self.file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| CredentialError::Damaged {
                path: self.file.clone(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(source) => Err(CredentialError::File {
                path: self.file.clone(),
                source,
            }),
        }
    }

    fn edit_file(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> Result<(), CredentialError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = self.read_file()?;
        change(&mut all);
        let bytes = serde_json::to_vec_pretty(&all).map_err(|e| CredentialError::Damaged {
            path: self.file.clone(),
            reason: e.to_string(),
        })?;
        write_private(&self.file, &bytes).map_err(|source| CredentialError::File {
            path: self.file.clone(),
            source,
        })
    }
}

/// Whether a keychain answers: a lookup of an entry that does not exist must say "no entry".
fn keychain_answers(scope: &str) -> bool {
    // Without a session bus there is no Secret Service, and asking would make libdbus try to
    // autolaunch a bus of its own.
    if cfg!(target_os = "linux") && std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        tracing::info!("no session bus: keys go to a file only you can read");
        return false;
    }
    let probe = keyring::Entry::new(KEYCHAIN_SERVICE, &format!("{scope}/probe"));
    match probe.map(|entry| entry.get_password()) {
        Ok(Ok(_)) | Ok(Err(keyring::Error::NoEntry)) => true,
        Ok(Err(error)) | Err(error) => {
            tracing::info!(%error, "no usable system keychain; keys go to a file only you can read");
            false
        }
    }
}

/// Writes `bytes` to `path` so that it is only ever readable by the user: a new temporary file
/// created with mode 0600 next to it, synced, then renamed over it.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut suffix = [0u8; 8];
    rand::rng().fill_bytes(&mut suffix);
    let temp = dir.join(format!(".{CREDENTIALS_FILE}.{}.tmp", hex::encode(suffix)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = (|| {
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let secret = Secret::parse("  tm-live-123456  ").unwrap();
        assert_eq!(secret.expose(), "tm-live-123456");
        assert!(!format!("{secret:?}").contains("123456"));
    }

    #[test]
    fn empty_or_control_characters_are_refused() {
        assert!(matches!(Secret::parse("  "), Err(CredentialError::Empty)));
        assert!(matches!(
            Secret::parse("a\nb"),
            Err(CredentialError::Malformed)
        ));
    }

    #[cfg(unix)]
    #[test]
    fn the_file_store_is_readable_by_the_user_only_and_round_trips() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Credentials::open(dir.path(), false);
        assert_eq!(store.backend(), CredentialBackend::File);
        store.set(7, &Secret::parse("key-seven").unwrap()).unwrap();
        store.set(8, &Secret::parse("key-eight").unwrap()).unwrap();
        let mode = std::fs::metadata(dir.path().join(CREDENTIALS_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(store.get(7).unwrap().unwrap().expose(), "key-seven");
        store.remove(7).unwrap();
        assert!(store.get(7).unwrap().is_none());
        assert_eq!(store.get(8).unwrap().unwrap().expose(), "key-eight");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file is left behind");
    }
}
