//! Sensitive facts of the child record sealed per field: each value is encrypted with
//! ChaCha20-Poly1305 (an AEAD; `ring`'s implementation) under a key named by its id, which is
//! stored with the ciphertext so that keys can rotate (new values take the active key, old ones
//! open with theirs). The associated data binds a ciphertext to its fact, so a sealed value
//! moved to another row does not open. Without a key nothing sensitive is stored at all.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use inkingi_store::children::Sealed;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// The field keys: every key that may open a value, and the one that seals new values (the
/// last of the key file).
pub struct FieldKeys {
    active: String,
    keys: HashMap<String, LessSafeKey>,
}

impl fmt::Debug for FieldKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key material.
        f.debug_struct("FieldKeys")
            .field("active", &self.active)
            .field("ids", &self.keys.len())
            .finish()
    }
}

/// A key file line: `KEY_ID HEX` with 64 hex digits (32 bytes).
const KEY_BYTES: usize = 32;

impl FieldKeys {
    /// Reads a key file: one key per line, `KEY_ID HEX` (64 hex digits), `#` comments; the
    /// last key seals new values. Errors name the line.
    pub fn load(path: &Path) -> Result<FieldKeys, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("children.field_key_file: reading {}: {e}", path.display()))?;
        FieldKeys::parse(&text).map_err(|e| format!("children.field_key_file: {e}"))
    }

    pub fn parse(text: &str) -> Result<FieldKeys, String> {
        let mut keys = HashMap::new();
        let mut active = None;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = i + 1;
            let (id, hex_key) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("line {at}: expected 'KEY_ID HEX'"))?;
            let valid_id = !id.is_empty()
                && id.len() <= 32
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid_id {
                return Err(format!(
                    "line {at}: key id '{id}': expected 1-32 letters, digits, '-' or '_'"
                ));
            }
            let bytes = hex::decode(hex_key.trim())
                .ok()
                .filter(|b| b.len() == KEY_BYTES)
                .ok_or_else(|| format!("line {at}: expected {} hex digits", KEY_BYTES * 2))?;
            let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
                .map_err(|_| format!("line {at}: not a ChaCha20-Poly1305 key"))?;
            if keys.insert(id.to_string(), LessSafeKey::new(key)).is_some() {
                return Err(format!("line {at}: key id '{id}' appears twice"));
            }
            active = Some(id.to_string());
        }
        let active = active.ok_or("no key in the file")?;
        Ok(FieldKeys { active, keys })
    }

    /// Seals `value` for the fact `context` names (e.g. `hiv_exposure:<fact id>`).
    pub fn seal(&self, context: &str, value: &[u8]) -> Result<Sealed, String> {
        let key = &self.keys[&self.active];
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| "no random numbers for a nonce")?;
        let mut data = value.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context.as_bytes()),
            &mut data,
        )
        .map_err(|_| "sealing failed")?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&data);
        Ok(Sealed {
            key_id: self.active.clone(),
            bytes,
        })
    }

    /// Opens a value sealed for `context`; fails for an unknown key id or a ciphertext that was
    /// altered or belongs to another fact.
    pub fn open(&self, context: &str, sealed: &Sealed) -> Result<Vec<u8>, String> {
        let key = self
            .keys
            .get(&sealed.key_id)
            .ok_or_else(|| format!("no field key '{}' in the key file", sealed.key_id))?;
        if sealed.bytes.len() < NONCE_LEN {
            return Err("sealed value too short".into());
        }
        let (nonce, data) = sealed.bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce")?;
        let mut data = data.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut data)
            .map_err(|_| format!("sealed value does not open with key '{}'", sealed.key_id))?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const A: &str = "k2025 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const B: &str = "k2026 1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

    #[test]
    fn seals_with_the_last_key_and_opens_with_any() {
        let old = FieldKeys::parse(A).unwrap();
        let sealed = old.seal("hiv_exposure:1", b"exposed").unwrap();
        assert_eq!(sealed.key_id, "k2025");
        assert!(!sealed.bytes.windows(7).any(|w| w == b"exposed"));
        let rotated = FieldKeys::parse(&format!("# rotated\n{A}\n{B}\n")).unwrap();
        assert_eq!(rotated.open("hiv_exposure:1", &sealed).unwrap(), b"exposed");
        assert_eq!(rotated.seal("x", b"v").unwrap().key_id, "k2026");
        // Bound to its fact: another context does not open it.
        assert!(rotated.open("hiv_exposure:2", &sealed).is_err());
        // A key file without the old key cannot open it.
        assert!(FieldKeys::parse(B)
            .unwrap()
            .open("hiv_exposure:1", &sealed)
            .is_err());
    }

    #[test]
    fn bad_key_files_name_the_line() {
        assert!(FieldKeys::parse("").unwrap_err().contains("no key"));
        let e = FieldKeys::parse("# c\nk1 00ff").unwrap_err();
        assert!(e.contains("line 2") && e.contains("64 hex"), "{e}");
        let e = FieldKeys::parse(&format!("{A}\n{A}")).unwrap_err();
        assert!(e.contains("twice"), "{e}");
    }
}
