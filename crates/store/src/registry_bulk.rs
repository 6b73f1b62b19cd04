//! Port for bulk loading and exporting the registry (`inkingi import` / `inkingi export`).
//!
//! A batch of households is written in one transaction with its members and one
//! `household.registered` event per household. Households whose source key is already stored
//! are skipped, so running the same import again (or again after a crash: every batch is
//! atomic) ends in the state of one uninterrupted import. Keys that would break a unique
//! index (national ID, registry number, member source key) are checked for the whole batch
//! in one query per key kind before anything is written, and the households that carry them
//! are reported back instead of aborting the batch.

use std::collections::HashSet;

use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::registry::{EventMeta, NewHousehold, NewMember};
use crate::StoreResult;

/// Why one household of a batch was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchConflict {
    /// Index of the household in the batch.
    pub household: usize,
    /// Index of the member in the household, when a member's key is the problem.
    pub member: Option<usize>,
    /// The field: `national_id`, `registry_number` or `member_key`.
    pub field: &'static str,
    pub value: String,
    pub reason: String,
}

/// What happened to a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub households_written: u64,
    pub people_written: u64,
    /// Households skipped because their source key was already stored (an earlier import).
    pub already_present: u64,
    pub conflicts: Vec<BatchConflict>,
}

/// A household as exported.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportHousehold {
    pub id: Uuid,
    pub registry_number: String,
    pub village_code: String,
    pub address: Option<String>,
    pub gps_lat: Option<f64>,
    pub gps_lon: Option<f64>,
    /// JSON object text.
    pub answers: String,
    pub source_key: Option<String>,
}

/// A current member as exported.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportMember {
    pub id: Uuid,
    pub household_id: Uuid,
    pub role: Option<String>,
    pub given_name: String,
    pub family_name: String,
    pub sex: String,
    pub birth_date: Option<String>,
    pub national_id: Option<String>,
    pub birth_registration: Option<String>,
    pub refugee_id: Option<String>,
    pub passport: Option<String>,
    pub phone: Option<String>,
    pub other_phones: Option<String>,
    pub mother_id: Option<Uuid>,
    pub father_id: Option<Uuid>,
    pub guardian_id: Option<Uuid>,
    /// JSON object text.
    pub answers: String,
    pub source_key: Option<String>,
}

/// Bulk access to the registry. Not scoped: only operators run imports and exports, from the
/// command line or an admin job.
#[async_trait::async_trait]
pub trait RegistryBulk: Send + Sync {
    /// Writes `batch` in one transaction (see the module documentation). `load` is what
    /// [`RegistryBulk::begin_bulk_load`] returned.
    async fn import_batch(
        &self,
        batch: &[NewHousehold],
        meta: &EventMeta,
        load: &mut BulkLoad,
    ) -> StoreResult<BatchOutcome>;

    /// Called before a load. On an empty registry the indexes that rows would reach in random
    /// order ([`REGISTRY_INDEXES`] marked deferred, two of them unique) are dropped: they are
    /// rebuilt in one sorted pass by [`RegistryBulk::finish_bulk_load`], much faster than
    /// maintaining them row by row, and the load checks the unique keys itself meanwhile.
    /// Otherwise, or when `defer_indexes` is false (a live server that other writers use:
    /// they need the unique indexes), missing indexes (an interrupted first load) are
    /// recreated first.
    async fn begin_bulk_load(&self, defer_indexes: bool) -> StoreResult<BulkLoad>;

    /// Called after the last batch: creates the indexes the load dropped and restores the
    /// connection settings the load changed.
    async fn finish_bulk_load(&self, load: BulkLoad) -> StoreResult<()>;

    /// Creates every registry index that is missing. Called at the start of every load on a
    /// non-empty registry and by `migrate`, so an interrupted first load never leaves the
    /// registry without its indexes for long.
    async fn ensure_indexes(&self) -> StoreResult<()>;

    /// Active households of villages whose code starts with `area` (the whole country for an
    /// empty prefix), after `after` (village code, id) in that order; at most `limit`.
    async fn export_households(
        &self,
        area: &str,
        after: Option<(String, Uuid)>,
        limit: u32,
    ) -> StoreResult<Vec<ExportHousehold>>;

    /// The current members of these households, by household then id.
    async fn export_members(&self, households: &[Uuid]) -> StoreResult<Vec<ExportMember>>;

    /// The source keys of these people (for relations that point outside an exported page).
    async fn people_source_keys(&self, ids: &[Uuid]) -> StoreResult<Vec<(Uuid, Option<String>)>>;
}

/// A set of key strings, exact, packed into a `u64` when `pack` can (national IDs and registry
/// numbers always can): 3 M registry numbers and 7 M national IDs then take about 120 MB
/// instead of about 700 MB as strings.
struct KeySet {
    packed: HashSet<u64>,
    other: HashSet<String>,
    pack: fn(&str) -> Option<u64>,
}

impl KeySet {
    fn new(pack: fn(&str) -> Option<u64>) -> KeySet {
        KeySet {
            packed: HashSet::new(),
            other: HashSet::new(),
            pack,
        }
    }

    fn contains(&self, key: &str) -> bool {
        match (self.pack)(key) {
            Some(k) => self.packed.contains(&k),
            None => self.other.contains(key),
        }
    }

    fn insert(&mut self, key: &str) {
        match (self.pack)(key) {
            Some(k) => self.packed.insert(k),
            None => self.other.insert(key.to_string()),
        };
    }
}

/// A national ID as stored is 16 digits: exactly a number below 2⁶⁴ (all have the same length,
/// so leading zeros cannot collide).
fn pack_national_id(s: &str) -> Option<u64> {
    (s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// A registry number `HH-XXXX-XXXX`: its eight symbols are eight ASCII bytes.
fn pack_registry_number(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 12 || !s.starts_with("HH-") || b[7] != b'-' || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&b[3..7]);
    out[4..].copy_from_slice(&b[8..12]);
    Some(u64::from_be_bytes(out))
}

/// One run of an import, from [`RegistryBulk::begin_bulk_load`] to
/// [`RegistryBulk::finish_bulk_load`].
pub struct BulkLoad {
    /// Set when the registry was empty and the deferred indexes were dropped: the registry
    /// numbers and national IDs this load stored, which the dropped unique indexes would
    /// otherwise find. (Everything stored was stored by this load.)
    fresh: Option<FreshKeys>,
}

struct FreshKeys {
    registry_numbers: KeySet,
    national_ids: KeySet,
}

impl BulkLoad {
    /// A load into a registry that already has data: every check asks the database.
    pub fn incremental() -> BulkLoad {
        BulkLoad { fresh: None }
    }

    /// A first load into an empty registry, its deferred indexes dropped.
    pub(crate) fn fresh() -> BulkLoad {
        BulkLoad {
            fresh: Some(FreshKeys {
                registry_numbers: KeySet::new(pack_registry_number),
                national_ids: KeySet::new(pack_national_id),
            }),
        }
    }

    /// Whether the deferred indexes were dropped for this load.
    pub fn is_fresh(&self) -> bool {
        self.fresh.is_some()
    }

    /// On a fresh load, the registry numbers and national IDs of `keys` already stored,
    /// answered from memory (the database has no index to answer them from).
    pub(crate) fn stored_keys(
        &self,
        keys: &BatchKeys,
    ) -> Option<(HashSet<String>, HashSet<String>)> {
        let f = self.fresh.as_ref()?;
        let hit = |set: &KeySet, values: &[String]| {
            values
                .iter()
                .filter(|v| set.contains(v))
                .cloned()
                .collect::<HashSet<String>>()
        };
        Some((
            hit(&f.registry_numbers, &keys.registry_numbers),
            hit(&f.national_ids, &keys.national_ids),
        ))
    }

    /// Remembers the keys of the households of `batch` at `written`, once their transaction
    /// committed.
    pub(crate) fn committed(&mut self, batch: &[NewHousehold], written: &[usize]) {
        let Some(f) = self.fresh.as_mut() else {
            return;
        };
        for &i in written {
            let h = &batch[i];
            f.registry_numbers.insert(h.registry_number.as_str());
            for m in &h.members {
                if let Some(id) = &m.person.national_id {
                    f.national_ids.insert(id.as_str());
                }
            }
        }
    }
}

/// The keys of a batch that the database might already hold.
pub(crate) struct BatchKeys {
    pub household_sources: Vec<String>,
    pub registry_numbers: Vec<String>,
    pub national_ids: Vec<String>,
    pub member_sources: Vec<String>,
}

impl BatchKeys {
    pub(crate) fn of(batch: &[NewHousehold]) -> BatchKeys {
        let mut k = BatchKeys {
            household_sources: Vec::new(),
            registry_numbers: Vec::new(),
            national_ids: Vec::new(),
            member_sources: Vec::new(),
        };
        for h in batch {
            k.household_sources.extend(h.source_key.clone());
            k.registry_numbers
                .push(h.registry_number.as_str().to_string());
            for m in &h.members {
                if let Some(id) = &m.person.national_id {
                    k.national_ids.push(id.as_str().to_string());
                }
                k.member_sources.extend(m.source_key.clone());
            }
        }
        k
    }
}

/// The keys found in the database, per kind.
#[derive(Default)]
pub(crate) struct ExistingKeys {
    pub household_sources: HashSet<String>,
    pub registry_numbers: HashSet<String>,
    pub national_ids: HashSet<String>,
    pub member_sources: HashSet<String>,
}

/// Decides, for each household of the batch, whether to write it, skip it (already imported)
/// or report a conflict. Keys are also checked against earlier households of the same batch:
/// the first one wins, as it would if they came in separate batches.
pub(crate) fn plan_batch(
    batch: &[NewHousehold],
    existing: &ExistingKeys,
) -> (Vec<usize>, BatchOutcome) {
    let mut out = BatchOutcome::default();
    let mut write = Vec::with_capacity(batch.len());
    let mut seen_numbers: HashSet<&str> = HashSet::new();
    let mut seen_ids: HashSet<&str> = HashSet::new();
    let mut seen_members: HashSet<&str> = HashSet::new();
    let mut seen_sources: HashSet<&str> = HashSet::new();
    for (i, h) in batch.iter().enumerate() {
        if let Some(src) = h.source_key.as_deref() {
            if existing.household_sources.contains(src) || !seen_sources.insert(src) {
                out.already_present += 1;
                continue;
            }
        }
        let conflicts =
            household_conflicts(i, h, existing, &seen_numbers, &seen_ids, &seen_members);
        if !conflicts.is_empty() {
            out.conflicts.extend(conflicts);
            continue;
        }
        seen_numbers.insert(h.registry_number.as_str());
        for m in &h.members {
            if let Some(id) = &m.person.national_id {
                seen_ids.insert(id.as_str());
            }
            if let Some(s) = m.source_key.as_deref() {
                seen_members.insert(s);
            }
        }
        out.households_written += 1;
        out.people_written += h.members.len() as u64;
        write.push(i);
    }
    (write, out)
}

fn household_conflicts(
    i: usize,
    h: &NewHousehold,
    existing: &ExistingKeys,
    seen_numbers: &HashSet<&str>,
    seen_ids: &HashSet<&str>,
    seen_members: &HashSet<&str>,
) -> Vec<BatchConflict> {
    let mut out = Vec::new();
    let number = h.registry_number.as_str();
    if existing.registry_numbers.contains(number) || seen_numbers.contains(number) {
        out.push(BatchConflict {
            household: i,
            member: None,
            field: "registry_number",
            value: number.to_string(),
            reason: "another household already has this registry number".into(),
        });
    }
    let mut ids_here: HashSet<&str> = HashSet::new();
    for (j, m) in h.members.iter().enumerate() {
        if let Some(id) = &m.person.national_id {
            let id = id.as_str();
            if existing.national_ids.contains(id) || seen_ids.contains(id) || !ids_here.insert(id) {
                out.push(BatchConflict {
                    household: i,
                    member: Some(j),
                    field: "national_id",
                    value: id.to_string(),
                    reason: "another person already has this national ID".into(),
                });
            }
        }
        if let Some(s) = m.source_key.as_deref() {
            if existing.member_sources.contains(s) || seen_members.contains(s) {
                out.push(BatchConflict {
                    household: i,
                    member: Some(j),
                    field: "member_key",
                    value: s.split_once(':').map_or(s, |(_, k)| k).to_string(),
                    reason: "this member key was already imported in another household".into(),
                });
            }
        }
    }
    out
}

/// The `after` of a `household.registered` event written by a bulk import: enough to read the
/// history without duplicating the whole record in the event table.
pub(crate) fn registered_after(h: &NewHousehold) -> String {
    let mut m = Map::new();
    m.insert("registry_number".into(), json!(h.registry_number.as_str()));
    m.insert("village_code".into(), json!(h.input.village.as_str()));
    m.insert("members".into(), json!(h.members.len()));
    if let Some(s) = &h.source_key {
        m.insert("source_key".into(), json!(s));
    }
    Value::Object(m).to_string()
}

/// A form-answers object as JSON text, serialised in place (a copy into a `Value` first
/// showed up in profiles of national imports).
pub(crate) fn answers_text(answers: &Map<String, Value>) -> String {
    // Serialising a map with string keys cannot fail.
    serde_json::to_string(answers).unwrap_or_else(|_| String::from("{}"))
}

/// The first phone (indexed for search) and the others, `;`-separated.
pub(crate) fn split_phones(m: &NewMember) -> (Option<String>, Option<String>) {
    let mut phones = m.person.phones.iter().map(|p| p.as_str());
    let first = phones.next().map(str::to_string);
    let rest: Vec<&str> = phones.collect();
    (first, (!rest.is_empty()).then(|| rest.join(";")))
}

/// A registry index that a bulk load may drop and rebuild.
pub(crate) struct RegistryIndex {
    pub name: &'static str,
    pub unique: bool,
    /// Table and columns, as in the migration (the source of truth; both backends share the
    /// column lists).
    pub on: &'static str,
    /// Dropped during a first load: rows reach it in random order, so maintaining it costs a
    /// random page write per row once it outgrows the cache. The others (ids are UUIDv7, made
    /// in file order) only ever grow at their right edge and stay.
    pub deferred: bool,
}

impl RegistryIndex {
    pub(crate) fn create_sql(&self) -> String {
        let unique = if self.unique { "UNIQUE " } else { "" };
        format!(
            "CREATE {unique}INDEX IF NOT EXISTS {} ON {}",
            self.name, self.on
        )
    }
}

const fn index(
    name: &'static str,
    unique: bool,
    on: &'static str,
    deferred: bool,
) -> RegistryIndex {
    RegistryIndex {
        name,
        unique,
        on,
        deferred,
    }
}

/// The registry's indexes that bulk loads manage (not the primary keys, not the unique
/// source-key indexes: those are looked up by every batch and grow in file order).
pub(crate) const REGISTRY_INDEXES: &[RegistryIndex] = &[
    index(
        "registry_households_number",
        true,
        "registry_households (registry_number)",
        true,
    ),
    index(
        "registry_people_national_id",
        true,
        "registry_people (national_id) WHERE national_id IS NOT NULL",
        true,
    ),
    index(
        "registry_households_village",
        false,
        "registry_households (village_code, id)",
        true,
    ),
    index(
        "registry_people_phone",
        false,
        "registry_people (phone) WHERE phone IS NOT NULL",
        true,
    ),
    index(
        "registry_people_name_pair",
        false,
        "registry_people (family_skel, given_skel, village_code)",
        true,
    ),
    index(
        "registry_people_family_area",
        false,
        "registry_people (family_skel, village_code)",
        true,
    ),
    index(
        "registry_people_given_area",
        false,
        "registry_people (given_skel, village_code)",
        true,
    ),
    index(
        "registry_people_area",
        false,
        "registry_people (village_code, birth_date, sex) WHERE merged_into IS NULL",
        true,
    ),
    index(
        "registry_people_household",
        false,
        "registry_people (household_id)",
        false,
    ),
    index(
        "registry_people_mother",
        false,
        "registry_people (mother_id) WHERE mother_id IS NOT NULL",
        false,
    ),
    index(
        "registry_people_birth_registration",
        false,
        "registry_people (birth_registration) WHERE birth_registration IS NOT NULL",
        true,
    ),
    index(
        "registry_events_household",
        false,
        "registry_events (household_id, at)",
        false,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_pack_exactly() {
        assert_eq!(pack_national_id("1199080012345678"), Some(1199080012345678));
        assert_eq!(pack_national_id("119908001234567"), None);
        let a = pack_registry_number("HH-7K2M-9QXD");
        assert!(a.is_some());
        assert_ne!(a, pack_registry_number("HH-7K2M-9QXE"));
        assert_eq!(pack_registry_number("HH-7K2M9QXD"), None);
        let mut set = KeySet::new(pack_registry_number);
        set.insert("HH-7K2M-9QXD");
        set.insert("odd");
        assert!(set.contains("HH-7K2M-9QXD") && set.contains("odd"));
        assert!(!set.contains("HH-7K2M-9QXE") && !set.contains("odd2"));
    }
}
