//! Staff accounts of a clinic: a JSON file of names, roles and argon2 password hashes,
//! written by `clinicflow user add` and read by `serve` at start. Passwords are never stored
//! or logged, only their argon2id hashes (PHC strings, salt included).

use std::path::Path;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};

/// What a member of staff may do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Inbox (answer patients, take, release, resolve).
    Receptionist,
    /// Everything a receptionist does, plus the flows.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Receptionist => "receptionist",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The login name, also shown to colleagues next to the replies this person sends.
    pub name: String,
    pub role: Role,
    /// argon2id PHC string.
    pub hash: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accounts {
    #[serde(default)]
    pub users: Vec<Account>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("a name is 1 to 64 letters, digits, '.', '-' or '_'; got {0:?}")]
    BadName(String),
    #[error("a password needs at least {MIN_PASSWORD} characters")]
    ShortPassword,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;

impl Accounts {
    /// Reads the file; a missing file is no accounts (the console then refuses every login).
    pub fn load(path: &Path) -> Result<Accounts, AccountError> {
        let read = |reason: String| AccountError::Read {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| read(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Accounts::default()),
            Err(e) => Err(read(e.to_string())),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), AccountError> {
        let write = |reason: String| AccountError::Write {
            path: path.display().to_string(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| write(e.to_string()))?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| write(e.to_string()))?;
        std::fs::write(path, text + "\n").map_err(|e| write(e.to_string()))
    }

    /// Adds the account, or changes the password and role of an existing one.
    pub fn set(&mut self, name: &str, role: Role, password: &str) -> Result<(), AccountError> {
        let tame = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if name.is_empty() || name.len() > 64 || !name.chars().all(tame) {
            return Err(AccountError::BadName(name.to_string()));
        }
        if password.chars().count() < MIN_PASSWORD {
            return Err(AccountError::ShortPassword);
        }
        let hash = hash_password(password)?;
        self.users.retain(|u| u.name != name);
        self.users.push(Account {
            name: name.to_string(),
            role,
            hash,
        });
        Ok(())
    }

    /// The account, when the password is right. Runs argon2 even for an unknown name, so the
    /// answer takes as long either way (no finding out which names exist).
    pub fn verify(&self, name: &str, password: &str) -> Option<&Account> {
        let account = self.users.iter().find(|u| u.name == name);
        let hash = account.map(|a| a.hash.as_str()).unwrap_or(DUMMY_HASH);
        let ok = PasswordHash::new(hash)
            .ok()
            .is_some_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok());
        account.filter(|_| ok)
    }
}

/// A hash of no password anybody knows, checked when the name is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$5mI5S+0tBwUU3N2ZNRgfzpeHlmxHfXcEBx/Bjk6PeN0";

pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| AccountError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&bytes).map_err(|e| AccountError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_round_trip_and_verify_only_the_right_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staff.json");
        assert_eq!(Accounts::load(&path).unwrap(), Accounts::default());
        let mut a = Accounts::default();
        a.set("ana", Role::Receptionist, "correct horse battery").unwrap();
        assert!(matches!(
            a.set("ana", Role::Admin, "short"),
            Err(AccountError::ShortPassword)
        ));
        assert!(matches!(
            a.set("a b", Role::Admin, "long enough pw"),
            Err(AccountError::BadName(_))
        ));
        a.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("correct horse"), "only the hash is stored");
        let b = Accounts::load(&path).unwrap();
        assert_eq!(
            b.verify("ana", "correct horse battery").map(|u| u.role),
            Some(Role::Receptionist)
        );
        assert!(b.verify("ana", "wrong password!").is_none());
        assert!(b.verify("nobody", "correct horse battery").is_none());
        assert!(PasswordHash::new(DUMMY_HASH).is_ok(), "the dummy hash parses");
    }
}
