//! Random secrets: API tokens, session ids and CSRF tokens, and their digests.

use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every API token starts with this, so secret scanners and people recognise it.
pub const TOKEN_PREFIX: &str = "ink_";
/// Characters after [`TOKEN_PREFIX`] that identify the token (stored and shown in clear).
const TOKEN_ID_LEN: usize = 8;
/// Secret characters after the id: 40 of 62 symbols, about 238 bits.
const TOKEN_SECRET_LEN: usize = 40;
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_alnum(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(ALNUM[rng.random_range(0..ALNUM.len())]))
        .collect()
}

/// A freshly drawn API token: shown once, then only its digest is kept.
pub struct GeneratedToken {
    pub token: SecretString,
    /// `ink_` and the id characters; how the token is found and shown in lists.
    pub prefix: String,
    pub hash: Vec<u8>,
}

pub fn generate_token() -> GeneratedToken {
    let prefix = format!("{TOKEN_PREFIX}{}", random_alnum(TOKEN_ID_LEN));
    let token = format!("{prefix}{}", random_alnum(TOKEN_SECRET_LEN));
    GeneratedToken {
        hash: digest(&token),
        prefix,
        token: SecretString::from(token),
    }
}

/// The prefix of a well-formed token, or `None` for anything that cannot be one of ours.
pub fn token_prefix(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let well_formed = rest.len() == TOKEN_ID_LEN + TOKEN_SECRET_LEN
        && rest.bytes().all(|b| b.is_ascii_alphanumeric());
    well_formed.then(|| &token[..TOKEN_PREFIX.len() + TOKEN_ID_LEN])
}

/// SHA-256 of a secret. The secrets are long and random, so a fast digest suffices.
pub fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Compares a presented secret with a stored digest in constant time.
pub fn matches_digest(presented: &SecretString, stored: &[u8]) -> bool {
    digest(presented.expose_secret()).ct_eq(stored).into()
}

/// Compares two short secrets (CSRF tokens) in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// 256 random bits as 64 hex characters: session ids and CSRF tokens.
pub fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill(&mut b);
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_parse_and_match_their_digest() {
        let t = generate_token();
        let text = t.token.expose_secret();
        assert!(text.starts_with("ink_"));
        assert_eq!(text.len(), 4 + 8 + 40);
        assert_eq!(token_prefix(text), Some(t.prefix.as_str()));
        assert!(matches_digest(&t.token, &t.hash));
        // Change the last character to a different one (a fixed 'x' would equal it 1 time in 60).
        let last = if text.ends_with('x') { 'y' } else { 'x' };
        let other = SecretString::from(format!("{}{last}", &text[..text.len() - 1]));
        assert!(!matches_digest(&other, &t.hash));
        for bad in [
            "",
            "ink_",
            "ink_short",
            "abc_",
            &format!("{text}x"),
            &text.replace("ink_", "inq_"),
        ] {
            assert_eq!(token_prefix(bad), None, "{bad}");
        }
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
