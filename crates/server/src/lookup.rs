//! The registration-time lookup service: one candidate person against every current person of
//! the registry, in milliseconds, from an in-memory [`LinkIndex`].
//!
//! Life of the index, per server process (nodes are stateless and share nothing but the
//! database, so each node builds and follows its own index; two nodes may briefly differ by
//! the events one has not read yet):
//! 1. **Build**, in the background: the follower's start position is taken first, then every
//!    current person is streamed page by page (keyset pages over the primary key; memory holds
//!    one page besides the index) into the encoded dataset, and the index is built.
//! 2. **Follow**: every `poll_interval`, and before each lookup, the registry events after the
//!    last position are read; each names who changed (a member, or a household whose members
//!    may have moved), those people are re-read and their index records replaced or removed.
//!    Re-reading instead of decoding the change makes applying an event twice harmless, which
//!    the build relies on (events between the start position and the pages are applied again).
//!
//! Readiness is reported by [`LookupService::status`]; lookups before the index is ready get
//! 503 with `Retry-After`. A person is findable while they belong to a household and have no
//! date of death (see `inkingi_store::lookup`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use inkingi_linkage::compare::Comparison;
use inkingi_linkage::config::FieldKind;
use inkingi_linkage::index::{Candidate, LinkIndex};
use inkingi_linkage::model::TrainingSummary;
use inkingi_linkage::{Dataset, LinkageConfig, TrainedModel};
use inkingi_store::dci_notify::EventPos;
use inkingi_store::lookup::IndexPerson;
use inkingi_store::{Store, StoreError};
use serde::Serialize;
use uuid::Uuid;

/// The linkage configuration of registry people, shared with `inkingi match run`.
const REGISTRY_CONFIG: &str = include_str!("../../../config/linkage/registry.toml");
/// Records a blocking key may hold before lookups skip it (see `LinkIndex::lookup`).
pub const MAX_CANDIDATES_PER_KEY: usize = MAX_CANDIDATES;
/// People read per page while building.
const PAGE: u32 = 10_000;
/// Events read per query while following.
const EVENT_BATCH: u32 = 2_000;
/// A blocking key shared by more people than this says too little to compare them all.
const MAX_CANDIDATES: usize = 5_000;

/// How the lookup service runs.
#[derive(Debug, Clone)]
pub struct LookupSettings {
    /// How often the follower reads new registry events (lookups also catch up first).
    pub poll_interval: Duration,
    /// A model trained on this registry (`inkingi match run` writes `model.json`); without
    /// one, provisional priors are used (see [`provisional_model`]).
    pub model: Option<TrainedModel>,
    /// Without a trained model: the share of registrations believed to be people already in
    /// the registry, which sets the prior match probability of a pair.
    pub duplicate_share: f64,
}

impl Default for LookupSettings {
    fn default() -> Self {
        LookupSettings {
            poll_interval: Duration::from_secs(1),
            model: None,
            duplicate_share: 0.05,
        }
    }
}

/// Where the index stands, as `GET /api/v1/individuals/match/status` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LookupStatus {
    /// `idle` (not started), `building`, `ready` or `failed`.
    pub state: &'static str,
    /// People read so far (building) or findable (ready).
    pub people: u64,
    /// Registry events applied since the build.
    pub events_applied: u64,
    /// The last event position applied (two numbers, compared in order).
    pub position: Vec<i64>,
    /// Seconds the build took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_seconds: Option<f64>,
    /// Heap bytes of the index and of the person-id map, and their mean per findable person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heap_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_person: Option<f64>,
    /// `trained` (a model of this registry) or `provisional` (priors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A candidate found by a lookup, with the registry person it is.
#[derive(Debug, Clone)]
pub struct Found {
    pub person_id: Uuid,
    /// The village the index holds for them.
    pub village: Option<String>,
    pub candidate: Candidate,
}

/// Why a lookup could not run.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("the lookup index is {0}; retry shortly")]
    NotReady(&'static str),
    #[error("the lookup index failed to build: {0}")]
    Failed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Engine(String),
}

/// Cheap to clone; every clone shares one index.
#[derive(Clone)]
pub struct LookupService {
    inner: Arc<Inner>,
}

struct Inner {
    settings: LookupSettings,
    config: LinkageConfig,
    phase: Mutex<Phase>,
    /// Held while events are read and applied, so two catch-ups never apply the same batch.
    following: tokio::sync::Mutex<()>,
}

enum Phase {
    Idle,
    Building { people: u64 },
    Ready(Box<Loaded>),
    Failed(String),
}

struct Loaded {
    index: LinkIndex,
    people: PersonRecords,
    position: EventPos,
    events_applied: u64,
    build_seconds: f64,
    trained: bool,
}

/// Which index record holds a person now, and back.
///
/// Records built at once were streamed in id order, so `ids[..built]` is sorted and found by
/// binary search (16 bytes a person); people re-indexed later are in `later`. A fingerprint of
/// each record's values lets a replayed event that changed nothing leave the index alone.
struct PersonRecords {
    ids: Vec<Uuid>,
    fingerprints: Vec<u64>,
    built: usize,
    later: HashMap<Uuid, u32>,
}

impl PersonRecords {
    fn record_of(&self, id: Uuid) -> Option<u32> {
        if let Some(r) = self.later.get(&id) {
            return Some(*r);
        }
        self.ids[..self.built]
            .binary_search(&id)
            .ok()
            .map(|r| r as u32)
    }

    fn heap_bytes(&self) -> usize {
        self.ids.capacity() * 16 + self.fingerprints.capacity() * 8 + self.later.capacity() * 24
    }
}

/// The linkage configuration of registry people (`config/linkage/registry.toml`).
pub fn registry_config() -> LinkageConfig {
    // The file is compiled in and parsed by a unit test, so it cannot fail here.
    toml::from_str(REGISTRY_CONFIG).expect("the built-in registry linkage config parses")
}

impl LookupService {
    pub fn new(settings: LookupSettings) -> LookupService {
        let config = registry_config();
        LookupService {
            inner: Arc::new(Inner {
                settings,
                config,
                phase: Mutex::new(Phase::Idle),
                following: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Starts building and following in the background, once; later calls do nothing, except
    /// after a failed build, which they try again. The task ends when every clone of the
    /// service is dropped.
    pub fn start(&self, store: &Store) {
        {
            let mut phase = self.inner.lock_phase();
            if !matches!(*phase, Phase::Idle | Phase::Failed(_)) {
                return;
            }
            *phase = Phase::Building { people: 0 };
        }
        let weak = Arc::downgrade(&self.inner);
        let store = store.clone();
        tokio::spawn(async move {
            let Some(inner) = weak.upgrade() else { return };
            if let Err(e) = inner.build(&store).await {
                tracing::error!(error = %e, "lookup index build failed");
                *inner.lock_phase() = Phase::Failed(e.to_string());
                return;
            }
            let poll = inner.settings.poll_interval;
            drop(inner);
            follow(weak, store, poll).await;
        });
    }

    pub fn status(&self) -> LookupStatus {
        let phase = self.inner.lock_phase();
        let base = |state, people| LookupStatus {
            state,
            people,
            events_applied: 0,
            position: vec![0, 0],
            build_seconds: None,
            heap_bytes: None,
            bytes_per_person: None,
            model: None,
            error: None,
        };
        match &*phase {
            Phase::Idle => base("idle", 0),
            Phase::Building { people } => base("building", *people),
            Phase::Failed(e) => LookupStatus {
                error: Some(e.clone()),
                ..base("failed", 0)
            },
            Phase::Ready(l) => {
                let live = l.index.live() as u64;
                let heap = (l.index.heap_bytes() + l.people.heap_bytes()) as u64;
                let (a, b) = l.position.parts();
                LookupStatus {
                    events_applied: l.events_applied,
                    position: vec![a, b],
                    build_seconds: Some(l.build_seconds),
                    heap_bytes: Some(heap),
                    bytes_per_person: (live > 0).then(|| heap as f64 / live as f64),
                    model: Some(if l.trained { "trained" } else { "provisional" }),
                    ..base("ready", live)
                }
            }
        }
    }

    /// The fields a candidate is given in, in the index's field order.
    pub fn fields(&self) -> Vec<(String, FieldKind)> {
        self.inner
            .config
            .fields
            .iter()
            .map(|f| (f.name.clone(), f.kind))
            .collect()
    }

    /// Applies pending registry events, then returns the people who may be `row` (values in
    /// [`Self::fields`] order), best first.
    pub async fn lookup(&self, store: &Store, row: Vec<String>) -> Result<Vec<Found>, LookupError> {
        self.start(store);
        self.inner.ready()?;
        self.inner.catch_up(store).await?;
        let mut phase = self.inner.lock_phase();
        let Phase::Ready(l) = &mut *phase else {
            return Err(LookupError::NotReady("not ready"));
        };
        let found = l
            .index
            .lookup(row)
            .map_err(|e| LookupError::Engine(e.to_string()))?;
        let village = l.index.data().column("village");
        Ok(found
            .into_iter()
            .map(|c| Found {
                person_id: l.people.ids[c.record as usize],
                village: village.and_then(|v| {
                    let col = &l.index.data().columns[v];
                    let id = col.values[c.record as usize];
                    (id != inkingi_linkage::dataset::MISSING)
                        .then(|| col.vocab.get_str(id).to_string())
                }),
                candidate: c,
            })
            .collect())
    }

    /// The review and auto-link thresholds as match weights.
    pub fn thresholds(&self) -> (f64, f64) {
        let c = &self.inner.config.clustering;
        (
            inkingi_linkage::model::weight_of(c.review),
            inkingi_linkage::model::weight_of(c.auto_link),
        )
    }
}

async fn follow(weak: Weak<Inner>, store: Store, poll: Duration) {
    loop {
        tokio::time::sleep(poll).await;
        let Some(inner) = weak.upgrade() else { return };
        if let Err(e) = inner.catch_up(&store).await {
            // Retried at the next poll; the position only moves once a batch is applied.
            tracing::warn!(error = %e, "lookup index: reading registry events failed");
        }
    }
}

impl Inner {
    fn lock_phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        // A panic while holding the lock leaves a consistent phase (every change is one
        // assignment or one index call), so a poisoned lock is still usable.
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ready(&self) -> Result<(), LookupError> {
        match &*self.lock_phase() {
            Phase::Ready(_) => Ok(()),
            Phase::Failed(e) => Err(LookupError::Failed(e.clone())),
            Phase::Idle => Err(LookupError::NotReady("starting")),
            Phase::Building { .. } => Err(LookupError::NotReady("building")),
        }
    }

    async fn build(&self, store: &Store) -> Result<(), LookupError> {
        let started = Instant::now();
        let feed = store.lookup_feed();
        let position = feed.start_position().await?;
        let mut data = Dataset::new(&self.config);
        let mut ids: Vec<Uuid> = Vec::new();
        let mut fingerprints: Vec<u64> = Vec::new();
        loop {
            let page = feed.current_people(ids.last().copied(), PAGE).await?;
            if page.is_empty() {
                break;
            }
            let rows: Vec<Vec<String>> = page.iter().map(|p| self.row_of(p)).collect();
            fingerprints.extend(rows.iter().map(|r| fingerprint(r)));
            ids.extend(page.iter().map(|p| p.id));
            let config = self.config.clone();
            let first = ids.len() - rows.len();
            // Standardising is CPU work: off the async threads.
            data = tokio::task::spawn_blocking(move || {
                data.push_rows(&config, &rows, first).map(|_| data)
            })
            .await
            .map_err(|e| LookupError::Engine(e.to_string()))?
            .map_err(|e| LookupError::Engine(e.to_string()))?;
            *self.lock_phase() = Phase::Building {
                people: ids.len() as u64,
            };
        }
        let (model, trained) = self.model(ids.len())?;
        let config = self.config.clone();
        let index = tokio::task::spawn_blocking(move || {
            LinkIndex::build(&config, data, &model, MAX_CANDIDATES)
        })
        .await
        .map_err(|e| LookupError::Engine(e.to_string()))?
        .map_err(|e| LookupError::Engine(e.to_string()))?;
        let built = ids.len();
        let loaded = Loaded {
            index,
            people: PersonRecords {
                ids,
                fingerprints,
                built,
                later: HashMap::new(),
            },
            position,
            events_applied: 0,
            build_seconds: started.elapsed().as_secs_f64(),
            trained,
        };
        tracing::info!(
            people = built,
            seconds = loaded.build_seconds,
            "lookup index built"
        );
        *self.lock_phase() = Phase::Ready(Box::new(loaded));
        Ok(())
    }

    fn model(&self, people: usize) -> Result<(TrainedModel, bool), LookupError> {
        let comparisons = Comparison::from_config(&self.config)
            .map_err(|e| LookupError::Engine(e.to_string()))?;
        Ok(match &self.settings.model {
            Some(m) => (m.clone(), true),
            None => (
                provisional_model(&comparisons, self.settings.duplicate_share, people),
                false,
            ),
        })
    }

    /// A person's values in field order, as the index encodes them.
    fn row_of(&self, p: &IndexPerson) -> Vec<String> {
        self.config
            .fields
            .iter()
            .map(|f| {
                let v = match f.column() {
                    "given_name" => Some(p.given_name.as_str()),
                    "family_name" => Some(p.family_name.as_str()),
                    "sex" => Some(p.sex.as_str()),
                    "birth_date" => p.birth_date.as_deref(),
                    "national_id" => p.national_id.as_deref(),
                    "phone" => p.phone.as_deref(),
                    "village" => p.village_code.as_deref(),
                    _ => None,
                };
                v.unwrap_or_default().to_string()
            })
            .collect()
    }

    /// Reads and applies every event after the index's position.
    async fn catch_up(&self, store: &Store) -> Result<(), LookupError> {
        let _turn = self.following.lock().await;
        loop {
            let position = match &*self.lock_phase() {
                Phase::Ready(l) => l.position,
                _ => return Ok(()),
            };
            let feed = store.lookup_feed();
            let events = feed.events_after(position, EVENT_BATCH).await?;
            let Some(last) = events.last().map(|e| e.pos) else {
                return Ok(());
            };
            let mut people: Vec<Uuid> = Vec::new();
            let mut households: Vec<Uuid> = Vec::new();
            for e in &events {
                if e.entity == "member" {
                    people.push(e.entity_id);
                } else {
                    households.push(e.household_id);
                }
            }
            people.sort_unstable();
            people.dedup();
            households.sort_unstable();
            households.dedup();
            let now = feed.people(&people, &households).await?;
            let rows: Vec<(Uuid, Option<Vec<String>>)> = now
                .iter()
                .map(|p| (p.id, p.current.then(|| self.row_of(p))))
                .collect();
            // A person named by an event but no longer in the table is removed too.
            let read: HashSet<Uuid> = now.iter().map(|p| p.id).collect();
            let gone: Vec<Uuid> = people
                .iter()
                .filter(|id| !read.contains(id))
                .copied()
                .collect();
            let mut phase = self.lock_phase();
            let Phase::Ready(l) = &mut *phase else {
                return Ok(());
            };
            for (id, row) in rows {
                l.apply(id, row)?;
            }
            for id in gone {
                l.apply(id, None)?;
            }
            l.position = last;
            l.events_applied += events.len() as u64;
            if events.len() < EVENT_BATCH as usize {
                return Ok(());
            }
        }
    }
}

impl Loaded {
    /// Makes the index hold `row` for the person (None: not findable).
    fn apply(&mut self, id: Uuid, row: Option<Vec<String>>) -> Result<(), LookupError> {
        let old = self
            .people
            .record_of(id)
            .filter(|r| !self.index.is_removed(*r));
        if let (Some(r), Some(row)) = (old, &row) {
            if self.people.fingerprints[r as usize] == fingerprint(row) {
                return Ok(());
            }
        }
        if let Some(r) = old {
            self.index.remove(r);
        }
        if let Some(row) = row {
            let print = fingerprint(&row);
            let r = self
                .index
                .insert(row)
                .map_err(|e| LookupError::Engine(e.to_string()))?;
            self.people.ids.push(id);
            self.people.fingerprints.push(print);
            self.people.later.insert(id, r);
        }
        Ok(())
    }
}

/// FNV-1a over the values with separators: equal rows give equal prints.
fn fingerprint(row: &[String]) -> u64 {
    row.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
        v.bytes()
            .chain(std::iter::once(0x1f))
            .fold(h, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    })
}

/// m and u per comparison level by field kind, for a registry without a trained model, and the
/// prior λ = `duplicate_share` / people: the chance that a new registration is a given person
/// of the registry, when that share of registrations are someone already registered.
///
/// The values are deliberately plain: agreement on an identifier is strong evidence, a full
/// birth date strong, a village moderate, sex weak; names are adjusted by their frequency in
/// the registry (the index's term-frequency weights). `inkingi match run` trains a model of
/// the registry itself; configure it (`[lookup] model`) once one exists.
pub fn provisional_model(
    comparisons: &[Comparison],
    duplicate_share: f64,
    people: usize,
) -> TrainedModel {
    let (m, u): (Vec<Vec<f64>>, Vec<Vec<f64>>) = comparisons.iter().map(priors).unzip();
    let lambda = (duplicate_share / people.max(1) as f64).clamp(1e-12, 0.5);
    TrainedModel::new(comparisons, &m, &u, lambda, TrainingSummary::default())
}

fn priors(c: &Comparison) -> (Vec<f64>, Vec<f64>) {
    let (m, u): (&[f64], &[f64]) = match c.kind {
        // exact, spelling variant, swapped with the other name, jaro-winkler >= .95, .88, .80,
        // different
        FieldKind::Name if c.swaps() => (
            &[0.0, 0.77, 0.07, 0.03, 0.05, 0.03, 0.02, 0.03],
            &[0.0, 0.002, 0.002, 0.0002, 0.004, 0.01, 0.03, 0.9518],
        ),
        // exact, spelling variant, jaro-winkler >= .95, .88, .80, different
        FieldKind::Name | FieldKind::Text => (
            &[0.0, 0.80, 0.07, 0.05, 0.03, 0.02, 0.03],
            &[0.0, 0.002, 0.002, 0.004, 0.01, 0.03, 0.952],
        ),
        // exact, one typo, different
        FieldKind::NationalId | FieldKind::Identifier => {
            (&[0.0, 0.90, 0.05, 0.05], &[0.0, 1e-6, 1e-5, 0.999989])
        }
        // exact, typo or swap, same year and month, same year, year-only, different
        FieldKind::Date => (
            &[0.0, 0.75, 0.06, 0.03, 0.04, 0.08, 0.04],
            &[0.0, 4e-5, 2e-4, 0.001, 0.012, 0.013, 0.97376],
        ),
        // same village, cell, sector, district, different
        FieldKind::Area => (
            &[0.0, 0.80, 0.08, 0.05, 0.04, 0.03],
            &[0.0, 1e-4, 5e-4, 0.002, 0.03, 0.9674],
        ),
        FieldKind::Sex => (&[0.0, 0.97, 0.03], &[0.0, 0.5, 0.5]),
        FieldKind::Phone | FieldKind::Exact => (&[0.0, 0.6, 0.4], &[0.0, 1e-5, 0.99999]),
    };
    let fit = |v: &[f64]| {
        let mut v = v.to_vec();
        v.resize(c.radix(), 0.01);
        v
    };
    (fit(m), fit(u))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn provisional_priors_fit_every_registry_comparison() {
        let service = LookupService::new(LookupSettings::default());
        let comparisons = Comparison::from_config(&service.inner.config).unwrap();
        let model = provisional_model(&comparisons, 0.05, 1000);
        // A model that does not fit the configuration is refused by the index; this one loads.
        TrainedModel::from_json(&model.to_json(), &comparisons).unwrap();
        for c in &model.comparisons {
            let m: f64 = c.levels.iter().map(|l| l.m).sum();
            let u: f64 = c.levels.iter().map(|l| l.u).sum();
            assert!((m - 1.0).abs() < 1e-6, "{}: m sums to {m}", c.name);
            assert!((u - 1.0).abs() < 1e-6, "{}: u sums to {u}", c.name);
        }
    }

    #[test]
    fn fingerprints_separate_values() {
        let a = vec!["ab".to_string(), "c".to_string()];
        let b = vec!["a".to_string(), "bc".to_string()];
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
    }
}
