//! The audit log's content and its hash chain.
//!
//! Each entry is sealed with `hash = SHA-256(prev_hash ‖ canonical(entry))`, where `prev_hash`
//! is the previous entry's hash (32 zero bytes for the first) and `canonical` is a stable,
//! versioned byte serialisation of everything the entry says, its sequence number included.
//! Altering any stored field changes the recomputed hash; deleting an entry leaves a gap in the
//! sequence and a broken link; swapping entries breaks both. Truncating the tail is caught by
//! comparing with a head hash anchored outside the database (`inkingi audit head`).

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::areas::AreaCode;

/// Version tag at the start of every canonical serialisation; a new layout gets a new tag, and
/// old entries keep verifying under the old one.
pub const CANONICAL_TAG: &[u8] = b"inkingi-audit/1\n";

/// A SHA-256 digest linking entries.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash([u8; 32]);

impl ChainHash {
    /// The `prev_hash` of the first entry.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    pub fn from_slice(bytes: &[u8]) -> Option<ChainHash> {
        bytes.try_into().ok().map(ChainHash)
    }

    pub fn from_hex(s: &str) -> Option<ChainHash> {
        let bytes = hex::decode(s.trim()).ok()?;
        ChainHash::from_slice(&bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", self.to_hex())
    }
}

impl Serialize for ChainHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// What happened: one read or change, by whom, to what, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Microsecond precision: both databases store exactly that, so a stored entry re-hashes
    /// to the same digest. Set through [`AuditRecord::new`] or [`AuditRecord::at`].
    occurred_at: DateTime<Utc>,
    /// The accountable user's name (also for their API tokens), `cli:OS-USER`, `anonymous`
    /// or `system`.
    pub actor: String,
    /// How the actor was authenticated: `session`, `token:ink_XXXXXXXX`, `cli`, or none.
    pub via: Option<String>,
    /// The actor's role at the time, when it had one.
    pub role: Option<String>,
    /// A dotted verb, e.g. `auth.login`, `audit.read`, `person.read`, `user.create`.
    pub action: String,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    pub subject_type: String,
    pub subject_id: Option<String>,
    /// The area the subject lies in; auditors scoped to areas see only entries inside them.
    pub area: Option<AreaCode>,
    /// Fields read or changed.
    pub fields: Vec<String>,
    /// Declared purpose of use, for reads of personal data.
    pub purpose: Option<String>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    /// `X-Road-Client` of a request relayed by an X-Road security server.
    pub xroad_client: Option<String>,
    /// `X-Road-Id` of that request.
    pub xroad_id: Option<String>,
}

impl AuditRecord {
    /// A successful action happening now; adjust the public fields as needed.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        subject_type: impl Into<String>,
    ) -> AuditRecord {
        AuditRecord {
            occurred_at: Utc::now().trunc_subsecs(6),
            actor: actor.into(),
            via: None,
            role: None,
            action: action.into(),
            outcome: "ok".into(),
            subject_type: subject_type.into(),
            subject_id: None,
            area: None,
            fields: Vec::new(),
            purpose: None,
            request_id: None,
            client_addr: None,
            xroad_client: None,
            xroad_id: None,
        }
    }

    /// The same record at another time (truncated to microseconds).
    pub fn at(mut self, when: DateTime<Utc>) -> AuditRecord {
        self.occurred_at = when.trunc_subsecs(6);
        self
    }

    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.occurred_at
    }

    /// The stable byte serialisation hashed into the chain. Every value is length-prefixed, so
    /// no choice of content can make two different entries serialise alike.
    pub fn canonical(&self, seq: i64) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(CANONICAL_TAG);
        put(&mut out, "seq", Some(&seq.to_string()));
        let micros = self.occurred_at.timestamp_micros().to_string();
        put(&mut out, "at", Some(&micros));
        put(&mut out, "actor", Some(&self.actor));
        put(&mut out, "via", self.via.as_deref());
        put(&mut out, "role", self.role.as_deref());
        put(&mut out, "action", Some(&self.action));
        put(&mut out, "outcome", Some(&self.outcome));
        put(&mut out, "subject_type", Some(&self.subject_type));
        put(&mut out, "subject_id", self.subject_id.as_deref());
        put(&mut out, "area", self.area.as_ref().map(AreaCode::as_str));
        put(&mut out, "fields", Some(&self.fields.len().to_string()));
        for f in &self.fields {
            put(&mut out, "field", Some(f));
        }
        put(&mut out, "purpose", self.purpose.as_deref());
        put(&mut out, "request_id", self.request_id.as_deref());
        put(&mut out, "client_addr", self.client_addr.as_deref());
        // Added later: written only when present, so entries made before keep their hashes.
        if self.xroad_client.is_some() || self.xroad_id.is_some() {
            put(&mut out, "xroad_client", self.xroad_client.as_deref());
            put(&mut out, "xroad_id", self.xroad_id.as_deref());
        }
        out
    }
}

/// `name=-\n` for absent, `name=LEN:value\n` for present values.
fn put(out: &mut Vec<u8>, name: &str, value: Option<&str>) {
    out.extend_from_slice(name.as_bytes());
    match value {
        None => out.extend_from_slice(b"=-\n"),
        Some(v) => {
            out.push(b'=');
            out.extend_from_slice(v.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(v.as_bytes());
            out.push(b'\n');
        }
    }
}

/// `SHA-256(prev ‖ canonical)`.
pub fn chain_hash(prev: &ChainHash, canonical: &[u8]) -> ChainHash {
    let mut h = Sha256::new();
    h.update(prev.0);
    h.update(canonical);
    ChainHash(h.finalize().into())
}

/// A record with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// 1, 2, 3… without gaps.
    pub seq: i64,
    #[serde(flatten)]
    pub record: AuditRecord,
    pub prev_hash: ChainHash,
    pub hash: ChainHash,
}

impl AuditEntry {
    /// Seals `record` as entry `seq` after `prev`.
    pub fn seal(seq: i64, prev: ChainHash, record: AuditRecord) -> AuditEntry {
        let hash = chain_hash(&prev, &record.canonical(seq));
        AuditEntry {
            seq,
            record,
            prev_hash: prev,
            hash,
        }
    }
}

/// The end of the chain: the last entry's sequence number and hash (0 and genesis when empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: ChainHash,
}

impl ChainHead {
    pub const EMPTY: ChainHead = ChainHead {
        seq: 0,
        hash: ChainHash::GENESIS,
    };

    /// Seals the records that follow this head, returning them and the new head.
    pub fn extend(self, records: Vec<AuditRecord>) -> (Vec<AuditEntry>, ChainHead) {
        let mut head = self;
        let entries = records
            .into_iter()
            .map(|r| {
                let e = AuditEntry::seal(head.seq + 1, head.hash, r);
                head = ChainHead {
                    seq: e.seq,
                    hash: e.hash,
                };
                e
            })
            .collect();
        (entries, head)
    }
}

/// Why the chain does not verify, naming the first bad entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error(
        "entry {expected} is missing: the next stored entry is {found} (deleted or reordered)"
    )]
    Gap { expected: i64, found: i64 },
    #[error("entry {seq} does not link to the entry before it (its prev_hash differs): an earlier entry was removed, altered or reordered")]
    Link { seq: i64 },
    #[error("entry {seq} was altered: its content no longer matches its hash")]
    Content { seq: i64 },
}

impl ChainBreak {
    /// The sequence number of the first bad entry.
    pub fn seq(&self) -> i64 {
        match self {
            ChainBreak::Gap { expected, .. } => *expected,
            ChainBreak::Link { seq } | ChainBreak::Content { seq } => *seq,
        }
    }
}

/// Walks entries in sequence order, one at a time, so any number of entries verify in constant
/// memory.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    head: ChainHead,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            head: ChainHead::EMPTY,
        }
    }
}

impl ChainVerifier {
    pub fn check(&mut self, e: &AuditEntry) -> Result<(), ChainBreak> {
        let expected = self.head.seq + 1;
        if e.seq != expected {
            return Err(ChainBreak::Gap {
                expected,
                found: e.seq,
            });
        }
        if e.prev_hash != self.head.hash {
            return Err(ChainBreak::Link { seq: e.seq });
        }
        if chain_hash(&e.prev_hash, &e.record.canonical(e.seq)) != e.hash {
            return Err(ChainBreak::Content { seq: e.seq });
        }
        self.head = ChainHead {
            seq: e.seq,
            hash: e.hash,
        };
        Ok(())
    }

    /// The last verified entry.
    pub fn head(&self) -> ChainHead {
        self.head
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rec(i: usize) -> AuditRecord {
        let mut r = AuditRecord::new("user:alice", "person.read", "person");
        r.subject_id = Some(format!("P-{i}"));
        r.area = Some(AreaCode::parse("1101").unwrap());
        r.fields = vec!["name".into(), "birth_date".into()];
        r.purpose = Some("registration".into());
        r
    }

    fn chain(n: usize) -> Vec<AuditEntry> {
        ChainHead::EMPTY.extend((0..n).map(rec).collect()).0
    }

    fn verify(entries: &[AuditEntry]) -> Result<ChainHead, ChainBreak> {
        let mut v = ChainVerifier::default();
        for e in entries {
            v.check(e)?;
        }
        Ok(v.head())
    }

    #[test]
    fn intact_chain_verifies_and_head_is_last() {
        let c = chain(5);
        assert_eq!(c[0].prev_hash, ChainHash::GENESIS);
        assert_eq!(c[3].hash, c[4].prev_hash);
        let head = verify(&c).unwrap();
        assert_eq!((head.seq, head.hash), (5, c[4].hash));
    }

    #[test]
    fn alteration_deletion_and_reordering_are_caught_at_the_first_bad_entry() {
        let mut c = chain(5);
        c[2].record.fields.push("phone".into());
        assert_eq!(verify(&c), Err(ChainBreak::Content { seq: 3 }));

        let mut c = chain(5);
        c.remove(1);
        assert_eq!(
            verify(&c),
            Err(ChainBreak::Gap {
                expected: 2,
                found: 3
            })
        );

        // Swapping two rows' content while keeping the sequence numbers in place.
        let mut c = chain(5);
        let (a, b) = (c[1].seq, c[3].seq);
        c.swap(1, 3);
        c[1].seq = a;
        c[3].seq = b;
        assert_eq!(verify(&c).unwrap_err().seq(), 2);
    }

    #[test]
    fn canonical_form_is_stable_and_unambiguous() {
        let when = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let r = AuditRecord::new("user:a", "x.read", "person").at(when);
        let text = String::from_utf8(r.canonical(7)).unwrap();
        assert!(text.starts_with("inkingi-audit/1\nseq=1:7\nat=16:1767323045123456\n"));
        assert!(text.contains("subject_id=-\n"));
        // A value that contains a separator cannot pose as two values.
        let mut a = AuditRecord::new("x", "y", "z").at(when);
        a.fields = vec!["a\nfield=1:b".into()];
        let mut b = a.clone();
        b.fields = vec!["a".into(), "b".into()];
        assert_ne!(a.canonical(1), b.canonical(1));
    }

    #[test]
    fn hex_round_trip() {
        let h = chain(1)[0].hash;
        assert_eq!(ChainHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(ChainHash::from_hex("abc"), None);
    }
}
