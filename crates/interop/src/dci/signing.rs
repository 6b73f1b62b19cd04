//! Ed25519 keys as JSON Web Keys (RFC 8037), and the `signature` of DCI messages.
//!
//! The DCI specs give the signature only by example (`MsgSignature`):
//! `Signature: namespace="spdci", kidId="{sender_id}|{unique_key_id}|{algorithm}",
//! algorithm="ed25519", created="…", expires="…", headers="(created) (expires) digest",
//! signature="Base64(signing content)"`. Its shape is the HTTP-signature profile the Beckn
//! protocol uses, so this module follows that profile where the DCI text is silent:
//!
//! - the signed content is three lines, `(created): C`, `(expires): E` and
//!   `digest: BLAKE-512=D`, joined by `\n`;
//! - `D` is the base64 BLAKE2b-512 digest of `{"header":…,"message":…}` — the spec signs
//!   "{header}+{message}" — written as canonical JSON (keys sorted, no white space; RFC 8785's
//!   rules for the strings and integers DCI messages carry), so that re-serialising a message
//!   on its way does not break its signature.
//!
//! `keyId` (Beckn's name) is read as a synonym of `kidId`.

use std::collections::HashMap;
use std::fmt::Write as _;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use blake2::{Blake2b512, Digest};
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand::RngCore;
use serde_json::{json, Value};

/// A key that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

fn key_error(msg: impl Into<String>) -> KeyError {
    KeyError(msg.into())
}

/// An Ed25519 signing key with its key id.
#[derive(Clone)]
pub struct KeyPair {
    kid: String,
    key: SigningKey,
}

/// Keeps the private half out of logs.
impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({})", self.kid)
    }
}

impl KeyPair {
    /// A fresh key from the operating system's randomness.
    pub fn generate(kid: impl Into<String>) -> KeyPair {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        KeyPair {
            kid: kid.into(),
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Reads a private OKP/Ed25519 JWK (`kty`, `crv`, `kid`, `x`, `d`); `x` must match `d`.
    pub fn from_jwk(jwk: &Value) -> Result<KeyPair, KeyError> {
        let public = PublicKey::from_jwk(jwk)?;
        let d = jwk
            .get("d")
            .and_then(Value::as_str)
            .ok_or_else(|| key_error("the JWK has no private part \"d\""))?;
        let seed: [u8; 32] = decode_32(d, "d")?;
        let key = SigningKey::from_bytes(&seed);
        if key.verifying_key() != public.key {
            return Err(key_error(
                "the JWK's \"x\" is not the public key of its \"d\"",
            ));
        }
        Ok(KeyPair {
            kid: public.kid,
            key,
        })
    }

    /// The private JWK, for a key file.
    pub fn to_private_jwk(&self) -> Value {
        let mut jwk = self.public().to_jwk();
        jwk["d"] = json!(URL_SAFE_NO_PAD.encode(self.key.to_bytes()));
        jwk
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            kid: self.kid.clone(),
            key: self.key.verifying_key(),
        }
    }

    pub fn sign(&self, content: &[u8]) -> [u8; 64] {
        self.key.sign(content).to_bytes()
    }
}

/// An Ed25519 public key with its key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    kid: String,
    key: VerifyingKey,
}

impl PublicKey {
    /// Reads a public OKP/Ed25519 JWK; a private one is read for its public half.
    pub fn from_jwk(jwk: &Value) -> Result<PublicKey, KeyError> {
        let field = |name: &str| jwk.get(name).and_then(Value::as_str);
        if field("kty") != Some("OKP") || field("crv") != Some("Ed25519") {
            return Err(key_error(
                "not an Ed25519 key: expected \"kty\": \"OKP\" and \"crv\": \"Ed25519\"",
            ));
        }
        if let Some(alg) = field("alg").filter(|a| *a != "EdDSA") {
            return Err(key_error(format!("\"alg\": \"{alg}\" (expected EdDSA)")));
        }
        let kid = field("kid")
            .filter(|k| !k.is_empty() && k.len() <= 128)
            .ok_or_else(|| key_error("the JWK needs a \"kid\" of 1 to 128 characters"))?;
        let x = field("x").ok_or_else(|| key_error("the JWK has no \"x\""))?;
        let key = VerifyingKey::from_bytes(&decode_32(x, "x")?)
            .map_err(|_| key_error("\"x\" is not a valid Ed25519 point"))?;
        Ok(PublicKey {
            kid: kid.to_string(),
            key,
        })
    }

    pub fn to_jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "use": "sig",
            "alg": "EdDSA",
            "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(self.key.as_bytes()),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Strict verification: refuses the malleable and small-order forms plain `verify` allows.
    pub fn verify(&self, content: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(signature) else {
            return false;
        };
        self.key.verify_strict(content, &sig).is_ok()
    }
}

fn decode_32(b64: &str, name: &str) -> Result<[u8; 32], KeyError> {
    URL_SAFE_NO_PAD
        .decode(b64.trim_end_matches('='))
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or_else(|| key_error(format!("\"{name}\" is not 32 bytes of base64url")))
}

/// The public keys in a JWK Set (`{"keys": [...]}`) or a single JWK.
pub fn public_keys(v: &Value) -> Result<Vec<PublicKey>, KeyError> {
    match v.get("keys") {
        Some(Value::Array(keys)) => keys.iter().map(PublicKey::from_jwk).collect(),
        Some(_) => Err(key_error("\"keys\" is not an array")),
        None => Ok(vec![PublicKey::from_jwk(v)?]),
    }
}

/// The JSON Web Key Set of these keys (RFC 7517).
pub fn jwks<'a>(keys: impl IntoIterator<Item = &'a PublicKey>) -> Value {
    json!({ "keys": keys.into_iter().map(PublicKey::to_jwk).collect::<Vec<_>>() })
}

/// Canonical JSON: object keys sorted by their UTF-16 code units, no white space, strings
/// escaped minimally (RFC 8785 §3.2.2.2). Numbers keep serde_json's shortest form, which is
/// RFC 8785's for the integers DCI messages carry.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => out.push_str(&v.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `BLAKE-512=` and the base64 BLAKE2b-512 digest of the message's header and body.
fn digest(body: &Value) -> String {
    let signed = json!({
        "header": body.get("header").cloned().unwrap_or(Value::Null),
        "message": body.get("message").cloned().unwrap_or(Value::Null),
    });
    let hash = Blake2b512::digest(canonical_json(&signed).as_bytes());
    format!("BLAKE-512={}", STANDARD.encode(hash))
}

fn signing_content(created: i64, expires: i64, digest: &str) -> String {
    format!("(created): {created}\n(expires): {expires}\ndigest: {digest}")
}

/// Signs the messages this system sends.
#[derive(Debug, Clone)]
pub struct MessageSigner {
    /// This system's `sender_id`, the first part of `kidId`.
    pub sender_id: String,
    pub key: KeyPair,
    /// How long a signature stays valid after it is made.
    pub valid_for: Duration,
}

impl MessageSigner {
    /// Sets `body.signature` over the body's current `header` and `message`; call it last,
    /// after every change to them (e.g. a fresh `message_ts` before a retry).
    pub fn sign(&self, body: &mut Value, now: DateTime<Utc>) {
        let created = now.timestamp();
        let expires = (now + self.valid_for).timestamp();
        let content = signing_content(created, expires, &digest(body));
        let sig = STANDARD.encode(self.key.sign(content.as_bytes()));
        body["signature"] = json!(format!(
            "Signature: namespace=\"spdci\", kidId=\"{}|{}|ed25519\", algorithm=\"ed25519\", \
             created=\"{created}\", expires=\"{expires}\", headers=\"(created) (expires) digest\", \
             signature=\"{sig}\"",
            self.sender_id,
            self.key.kid()
        ));
    }
}

/// The public keys of the systems whose messages are verified, by `sender_id`.
#[derive(Debug, Clone, Default)]
pub struct SenderKeys {
    keys: HashMap<String, Vec<PublicKey>>,
}

impl SenderKeys {
    pub fn add(&mut self, sender_id: impl Into<String>, key: PublicKey) {
        self.keys.entry(sender_id.into()).or_default().push(key);
    }

    pub fn knows(&self, sender_id: &str) -> bool {
        self.keys.contains_key(sender_id)
    }

    fn find(&self, sender_id: &str, kid: &str) -> Option<&PublicKey> {
        self.keys.get(sender_id)?.iter().find(|k| k.kid == kid)
    }
}

/// Why a signature was refused; the text is safe to return to the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature: {0}")]
pub struct SignatureError(pub String);

fn refuse<T>(msg: impl Into<String>) -> Result<T, SignatureError> {
    Err(SignatureError(msg.into()))
}

/// The parameters of a `Signature:` string.
fn parse_params(sig: &str) -> Result<HashMap<String, String>, SignatureError> {
    let rest = sig.trim();
    let rest = rest
        .strip_prefix("Signature:")
        .or_else(|| rest.strip_prefix("Signature "))
        .unwrap_or(rest);
    let mut out = HashMap::new();
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((k, v)) = part.split_once('=') else {
            return refuse(format!("'{}' is not key=\"value\"", short(part)));
        };
        let v = v.trim();
        let Some(v) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
            return refuse(format!("the value of '{}' is not quoted", short(k.trim())));
        };
        out.insert(k.trim().to_string(), v.to_string());
    }
    Ok(out)
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Checks `body.signature` against the sender's published key: the key id names the header's
/// `sender_id`, the algorithm is ed25519, the window `created`..`expires` holds `now` (with
/// `skew` either way), and the digest and signature match. Returns the key id used.
pub fn verify(
    body: &Value,
    keys: &SenderKeys,
    now: DateTime<Utc>,
    skew: Duration,
) -> Result<String, SignatureError> {
    let Some(sig) = body.get("signature").and_then(Value::as_str) else {
        return refuse("the message is not signed");
    };
    let p = parse_params(sig)?;
    let get = |k: &str| p.get(k).map(String::as_str);
    let kid_id = get("kidId")
        .or_else(|| get("keyId"))
        .ok_or_else(|| SignatureError("kidId is missing".into()))?;
    let mut parts = kid_id.split('|');
    let (Some(sender), Some(kid), Some(alg), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return refuse("kidId is not sender_id|key_id|algorithm");
    };
    let header_sender = body
        .pointer("/header/sender_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if sender != header_sender {
        return refuse(format!(
            "kidId names sender '{}' but header.sender_id is '{}'",
            short(sender),
            short(header_sender)
        ));
    }
    if alg != "ed25519" || get("algorithm").is_some_and(|a| a != "ed25519") {
        return refuse("only the ed25519 algorithm is accepted");
    }
    if get("headers").is_some_and(|h| h != "(created) (expires) digest") {
        return refuse("headers must be \"(created) (expires) digest\"");
    }
    let number = |k: &str| get(k).and_then(|v| v.parse::<i64>().ok());
    let (Some(created), Some(expires)) = (number("created"), number("expires")) else {
        return refuse("created and expires must be Unix times in seconds");
    };
    let t = now.timestamp();
    if created > t + skew.num_seconds() {
        return refuse("created lies in the future");
    }
    if expires < t - skew.num_seconds() {
        return refuse("the signature has expired");
    }
    let Some(key) = keys.find(sender, kid) else {
        return refuse(format!(
            "no published key '{}' for sender '{}'",
            short(kid),
            short(sender)
        ));
    };
    let sig_bytes = get("signature")
        .and_then(|s| STANDARD.decode(s).ok())
        .ok_or_else(|| SignatureError("signature is not base64".into()))?;
    let content = signing_content(created, expires, &digest(body));
    if !key.verify(content.as_bytes(), &sig_bytes) {
        return refuse("the signature does not match the message");
    }
    Ok(kid.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn message() -> Value {
        json!({
            "signature": "",
            "header": {"message_id": "m-1", "sender_id": "spmis", "action": "search",
                       "total_count": 1, "message_ts": "2026-11-23T10:00:00Z"},
            "message": {"transaction_id": "t-1", "search_request": [{"reference_id": "r"}]},
        })
    }

    fn signer() -> MessageSigner {
        MessageSigner {
            sender_id: "spmis".into(),
            key: KeyPair::generate("k1"),
            valid_for: Duration::minutes(10),
        }
    }

    fn keys_of(s: &MessageSigner) -> SenderKeys {
        let mut keys = SenderKeys::default();
        keys.add("spmis", s.key.public());
        keys
    }

    #[test]
    fn canonical_json_sorts_keys_and_escapes_minimally() {
        let v = json!({"b": [1, "x\"y\n"], "a": {"d": null, "c": true}, "é": "é"});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":true,"d":null},"b":[1,"x\"y\n"],"é":"é"}"#
        );
    }

    #[test]
    fn a_signed_message_verifies_after_reserialisation() {
        let s = signer();
        let now = Utc::now();
        let mut body = message();
        s.sign(&mut body, now);
        // Key order and white space change on the way; the signature must not care.
        let reparsed: Value =
            serde_json::from_str(&serde_json::to_string_pretty(&body).unwrap()).unwrap();
        assert_eq!(
            verify(&reparsed, &keys_of(&s), now, Duration::seconds(30)),
            Ok("k1".into())
        );
    }

    #[test]
    fn tampering_expiry_and_unknown_keys_are_refused() {
        let s = signer();
        let now = Utc::now();
        let keys = keys_of(&s);
        let skew = Duration::seconds(30);
        let mut body = message();
        s.sign(&mut body, now);

        let mut changed = body.clone();
        changed["message"]["transaction_id"] = json!("t-2");
        let e = verify(&changed, &keys, now, skew).unwrap_err();
        assert!(e.0.contains("does not match"), "{e}");

        let e = verify(&body, &keys, now + Duration::hours(1), skew).unwrap_err();
        assert!(e.0.contains("expired"), "{e}");

        let mut other = body.clone();
        other["header"]["sender_id"] = json!("intruder");
        let e = verify(&other, &keys, now, skew).unwrap_err();
        assert!(e.0.contains("header.sender_id"), "{e}");

        let e = verify(&body, &SenderKeys::default(), now, skew).unwrap_err();
        assert!(e.0.contains("no published key"), "{e}");

        // Signed by another key under the same key id.
        let mut forged = message();
        MessageSigner {
            key: KeyPair::generate("k1"),
            ..signer()
        }
        .sign(&mut forged, now);
        assert!(verify(&forged, &keys, now, skew).is_err());

        let mut unsigned = message();
        unsigned["signature"] = json!("Signature: kidId=\"spmis|k1\"");
        let e = verify(&unsigned, &keys, now, skew).unwrap_err();
        assert!(e.0.contains("sender_id|key_id|algorithm"), "{e}");
    }

    #[test]
    fn jwks_round_trip_and_mismatched_private_keys_are_refused() {
        let k = KeyPair::generate("2026-11");
        let back = KeyPair::from_jwk(&k.to_private_jwk()).unwrap();
        assert_eq!(back.public(), k.public());
        assert_eq!(
            PublicKey::from_jwk(&k.public().to_jwk()).unwrap(),
            k.public()
        );
        let mut wrong = k.to_private_jwk();
        wrong["x"] = KeyPair::generate("x").public().to_jwk()["x"].clone();
        assert!(KeyPair::from_jwk(&wrong).is_err());
        let set = jwks([&k.public()]);
        assert_eq!(set["keys"][0]["kid"], "2026-11");
        assert!(PublicKey::from_jwk(&json!({"kty": "RSA", "kid": "a"})).is_err());
    }
}
