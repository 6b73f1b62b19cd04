//! Access tokens of the DCI token endpoint: compact JWS (RFC 7515) signed with EdDSA (RFC 8037).
//!
//! Only `EdDSA` is accepted, whatever the token's header says otherwise: a verifier that lets
//! the token choose its algorithm can be tricked into `none` or into an HMAC keyed with the
//! public key. The access token stands for an API token (its `sub` is the API token's
//! prefix), so revoking that API token ends every access token issued for it at once.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use inkingi_interop::dci::signing::{KeyPair, PublicKey};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// This registry's `sender_id`.
    pub iss: String,
    /// The API token it was exchanged for (`ink_XXXXXXXX`).
    pub sub: String,
    /// Who may accept it: this registry again (the token is for its own API).
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// A unique id, for the audit log.
    pub jti: String,
    /// The DCI scopes asked for, space-separated (informative: the API token's own scopes
    /// decide what the caller may do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// `header.claims.signature`. Serialising the claims cannot fail in practice (strings and
/// integers), but a failure is passed on rather than signing an empty token.
pub fn issue(key: &KeyPair, claims: &Claims) -> Result<String, serde_json::Error> {
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": key.kid()});
    let claims = serde_json::to_value(claims)?;
    let signing_input = format!("{}.{}", part(&header), part(&claims));
    let sig = URL_SAFE_NO_PAD.encode(key.sign(signing_input.as_bytes()));
    Ok(format!("{signing_input}.{sig}"))
}

fn part(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Does this bearer token look like a JWS (three dot-separated parts)?
pub fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// Checks the signature against `keys` (chosen by `kid`), the algorithm, issuer, audience and
/// lifetime (`leeway_secs` either way). The error is safe to show the caller.
pub fn verify(
    token: &str,
    keys: &[PublicKey],
    issuer: &str,
    now: i64,
    leeway_secs: i64,
) -> Result<Claims, &'static str> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed access token");
    };
    let header: Value = decode(h).ok_or("malformed access token header")?;
    if header.get("alg").and_then(Value::as_str) != Some("EdDSA") {
        return Err("access token algorithm is not EdDSA");
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let key = keys
        .iter()
        .find(|k| k.kid() == kid)
        .ok_or("access token signed with an unknown key")?;
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| "malformed access token signature")?;
    let signing_input = &token[..h.len() + 1 + c.len()];
    if !key.verify(signing_input.as_bytes(), &sig) {
        return Err("access token signature does not verify");
    }
    let claims: Claims = decode(c).ok_or("malformed access token claims")?;
    if claims.iss != issuer || claims.aud != issuer {
        return Err("access token was issued for another registry");
    }
    if claims.exp <= now - leeway_secs {
        return Err("access token has expired");
    }
    if claims.iat > now + leeway_secs {
        return Err("access token is issued in the future");
    }
    Ok(claims)
}

fn decode<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn claims(now: i64) -> Claims {
        Claims {
            iss: "inkingi".into(),
            sub: "ink_ABCDEFGH".into(),
            aud: "inkingi".into(),
            iat: now,
            exp: now + 900,
            jti: "j-1".into(),
            scope: Some("registry.search".into()),
        }
    }

    #[test]
    fn issued_tokens_verify_and_expire() {
        let key = KeyPair::generate("k1");
        let keys = [key.public()];
        let t = issue(&key, &claims(1_000)).expect("issue");
        assert!(is_jwt(&t));
        assert_eq!(verify(&t, &keys, "inkingi", 1_100, 5), Ok(claims(1_000)));
        assert_eq!(
            verify(&t, &keys, "inkingi", 2_000, 5),
            Err("access token has expired")
        );
        assert_eq!(
            verify(&t, &keys, "other", 1_100, 5),
            Err("access token was issued for another registry")
        );
    }

    #[test]
    fn forged_or_altered_tokens_are_refused() {
        let key = KeyPair::generate("k1");
        let keys = [key.public()];
        let t = issue(&key, &claims(1_000)).expect("issue");
        // Another key under the same kid.
        let forged = issue(&KeyPair::generate("k1"), &claims(1_000)).expect("issue");
        assert!(verify(&forged, &keys, "inkingi", 1_100, 5).is_err());
        // Claims swapped for a longer life, signature kept.
        let mut longer = claims(1_000);
        longer.exp = 99_999;
        let parts: Vec<&str> = t.split('.').collect();
        let swapped = format!(
            "{}.{}.{}",
            parts[0],
            part(&serde_json::to_value(&longer).unwrap()),
            parts[2]
        );
        assert_eq!(
            verify(&swapped, &keys, "inkingi", 1_100, 5),
            Err("access token signature does not verify")
        );
        // alg "none" with no signature.
        let none = format!(
            "{}.{}.",
            part(&json!({"alg": "none", "kid": "k1"})),
            parts[1]
        );
        assert_eq!(
            verify(&none, &keys, "inkingi", 1_100, 5),
            Err("access token algorithm is not EdDSA")
        );
        assert!(verify("a.b", &keys, "inkingi", 1_100, 5).is_err());
    }
}
