//! `inkingi audit …`: verify the hash chain, print its head, and (for benchmarks) fill it.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::audit::{AuditEntry, AuditRecord, ChainHash, ChainVerifier};
use inkingi_store::audit::MalformedEntry;
use inkingi_store::{Store, StoreError};
use tokio::sync::mpsc;

use crate::cli::{AuditCommand, AuditVerifyArgs};
use crate::config::Config;

/// The chain does not verify; exit code 4.
#[derive(Debug)]
pub struct ChainBroken {
    /// The first bad entry, when one entry is to blame.
    pub seq: Option<i64>,
    pub reason: String,
}

impl std::fmt::Display for ChainBroken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "audit chain broken at entry {seq}: {}", self.reason),
            None => write!(f, "audit chain broken: {}", self.reason),
        }
    }
}

impl std::error::Error for ChainBroken {}

/// Entries read per round trip while verifying.
const PAGE: u32 = 10_000;

pub async fn run(config: &Config, cmd: AuditCommand) -> anyhow::Result<()> {
    let store = super::connect_and_migrate(config).await?;
    let r = match cmd {
        AuditCommand::Verify(args) => verify(&store, &args).await,
        AuditCommand::Head => head(&store).await,
        AuditCommand::Fill { count } => fill(&store, count).await,
    };
    store.close().await;
    r
}

async fn head(store: &Store) -> anyhow::Result<()> {
    let h = store.audit().head().await?;
    println!("{} {}", h.seq, h.hash);
    Ok(())
}

fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} entries ({per_sec}, {eta} left)")
    {
        bar.set_style(style);
    }
    bar
}

/// Walks the chain up to the head recorded when it starts (entries appended meanwhile are
/// left for the next run).
async fn verify(store: &Store, args: &AuditVerifyArgs) -> anyhow::Result<()> {
    let anchor = match &args.anchor {
        Some(a) => Some(ChainHash::from_hex(a).ok_or_else(|| {
            inkingi_server::auth::service::AdminError::Invalid(format!(
                "--anchor '{a}' is not a 64-character hex SHA-256 hash"
            ))
        })?),
        None => None,
    };
    let started = Instant::now();
    let recorded = store.audit().head().await?;
    let bar = progress(recorded.seq.max(0) as u64);
    let mut verifier = ChainVerifier::default();
    let mut anchor_seen = anchor.is_none() || anchor == Some(ChainHash::GENESIS);
    let mut pages = read_ahead(store.clone(), recorded.seq);
    'pages: while let Some(page) = pages.recv().await {
        for entry in page? {
            let entry = entry.map_err(|m| ChainBroken {
                seq: Some(m.seq),
                reason: format!("the stored row is malformed (bad {})", m.what),
            })?;
            if entry.seq > recorded.seq {
                break 'pages;
            }
            verifier.check(&entry).map_err(|b| ChainBroken {
                seq: Some(b.seq()),
                reason: b.to_string(),
            })?;
            anchor_seen |= Some(entry.hash) == anchor;
        }
        bar.set_position(verifier.head().seq.max(0) as u64);
    }
    bar.finish_and_clear();
    let end = verifier.head();
    if end != recorded {
        return Err(ChainBroken {
            seq: Some(end.seq + 1),
            reason: format!(
                "the chain ends at entry {} but the recorded head is entry {} ({}): entries were removed from the end or the head was altered",
                end.seq, recorded.seq, recorded.hash
            ),
        }
        .into());
    }
    if !anchor_seen {
        return Err(ChainBroken {
            seq: None,
            reason: "the anchored hash is not in the chain: it was truncated or rewritten".into(),
        }
        .into());
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "audit chain intact: {} entries verified in {:.2} s ({:.0} entries/s); head {} {}",
        end.seq,
        secs,
        end.seq as f64 / secs.max(1e-9),
        end.seq,
        end.hash
    );
    Ok(())
}

type Page = Vec<Result<AuditEntry, MalformedEntry>>;

/// Reads pages in sequence order on another task, one page ahead of the verifier, so reading
/// and hashing overlap.
fn read_ahead(store: Store, up_to: i64) -> mpsc::Receiver<Result<Page, StoreError>> {
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        let mut after = 0;
        while after < up_to {
            let page = store.audit().entries_after(after, PAGE).await;
            let last = match &page {
                Ok(p) => p.last().map(|e| match e {
                    Ok(e) => e.seq,
                    Err(m) => m.seq,
                }),
                Err(_) => None,
            };
            let stop = last.is_none();
            if tx.send(page).await.is_err() || stop {
                return;
            }
            after = last.unwrap_or(up_to);
        }
    });
    rx
}

/// Appends `count` synthetic read entries in large batches, to measure `verify` on a big log.
async fn fill(store: &Store, count: u64) -> anyhow::Result<()> {
    const BATCH: u64 = 5_000;
    let started = Instant::now();
    let bar = progress(count);
    let area = AreaCode::parse("11010102")?;
    let mut done = 0u64;
    while done < count {
        let n = BATCH.min(count - done);
        let records = (0..n)
            .map(|i| {
                let mut r = AuditRecord::new("bench", "person.read", "person");
                r.role = Some("district_officer".into());
                r.via = Some("session".into());
                r.subject_id = Some(format!("P-{}", done + i));
                r.area = Some(area.clone());
                r.fields = vec!["name".into(), "birth_date".into(), "household".into()];
                r.purpose = Some("registration".into());
                r.client_addr = Some("127.0.0.1".into());
                r
            })
            .collect();
        store.audit().append(records).await?;
        done += n;
        bar.set_position(done);
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "appended {count} synthetic audit entries in {secs:.1} s ({:.0} entries/s)",
        count as f64 / secs.max(1e-9)
    );
    Ok(())
}
