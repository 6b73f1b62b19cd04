//! Password hashing: argon2id with explicit parameters, and a dummy hash so that signing in as a
//! user who does not exist costs the same as a wrong password.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::{Rng, RngCore};
use secrecy::{ExposeSecret, SecretString};

/// argon2id cost. The defaults are OWASP's first recommended set (19 MiB, 2 passes, 1 lane):
/// tens of milliseconds per sign-in on one core, memory-hard against GPU guessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Settings {
    fn default() -> Self {
        Argon2Settings {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Hashes and verifies; cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    argon: Argon2<'static>,
    /// A hash of a random password nobody knows, verified against when the user is unknown.
    dummy: String,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passwords")
    }
}

impl Passwords {
    pub fn new(s: Argon2Settings) -> Result<Passwords, PasswordError> {
        let params = Params::new(s.memory_kib, s.iterations, s.parallelism, None)
            .map_err(|e| PasswordError::Params(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut p = Passwords {
            argon,
            dummy: String::new(),
        };
        p.dummy = p.hash(&generate_password())?;
        Ok(p)
    }

    /// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) with a fresh random salt.
    pub fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
        self.argon
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }

    /// True when `password` matches `phc`. A malformed stored hash never matches. The stored
    /// hash's own parameters are used, so raising the cost later keeps old hashes valid.
    pub fn verify(&self, password: &SecretString, phc: &str) -> bool {
        match PasswordHash::new(phc) {
            Ok(parsed) => self
                .argon
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Does the work of a verification that fails, for unknown users.
    pub fn verify_dummy(&self, password: &SecretString) {
        let _ = self.verify(password, &self.dummy);
    }
}

/// A one-time password: 20 characters from an alphabet without look-alikes (about 115 bits).
pub fn generate_password() -> SecretString {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    let s: String = (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    SecretString::from(s)
}

/// Minimum length for passwords given by people (`--password-stdin`).
pub const MIN_PASSWORD_LEN: usize = 12;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cheap() -> Passwords {
        Passwords::new(Argon2Settings {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    #[test]
    fn hash_and_verify() {
        let p = cheap();
        let pw = SecretString::from("correct horse battery");
        let h = p.hash(&pw).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{h}");
        assert!(p.verify(&pw, &h));
        assert!(!p.verify(&SecretString::from("wrong"), &h));
        assert!(!p.verify(&pw, "not a hash"));
        assert_ne!(h, p.hash(&pw).unwrap(), "salts differ");
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.expose_secret().len(), 20);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
