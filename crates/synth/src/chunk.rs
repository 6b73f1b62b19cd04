//! One chunk of households, from its own random stream: the original registrations, then the
//! duplicates injected among them, then the rows in a shuffled order (so that a duplicate does
//! not sit next to its original).

use std::collections::HashMap;

use chrono::Datelike;
use inkingi_domain::registry::MemberRole;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::answers::{self, HouseholdFacts};
use crate::household::{self, Household, Person, Sketch, MAX_MEMBERS};
use crate::numbers::Numbering;
use crate::reference::Reference;
use crate::stats::normal;
use crate::{duplicates, output, Error, GenerateConfig, CHUNK_HOUSEHOLDS};

/// A chunk's rows, ready to append to the three files.
pub(crate) struct ChunkOutput {
    pub households_csv: Vec<u8>,
    pub members_csv: Vec<u8>,
    pub truth_csv: Vec<u8>,
    pub households: u64,
    pub people: u64,
    pub duplicates: u64,
}

/// Everything a chunk's generators share.
struct Ctx<'a> {
    config: &'a GenerateConfig,
    reference: &'a Reference,
    numbering: Numbering,
    chunk: u64,
    /// People generated so far in the chunk: the local part of their identifier slot.
    people: u64,
}

pub(crate) fn generate_chunk(
    config: &GenerateConfig,
    reference: &Reference,
    chunk: u64,
) -> Result<ChunkOutput, Error> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    rng.set_stream(chunk);
    let mut ctx = Ctx {
        config,
        reference,
        numbering: Numbering::new(config.seed),
        chunk,
        people: 0,
    };
    let first = chunk * CHUNK_HOUSEHOLDS;
    let count = CHUNK_HOUSEHOLDS.min(config.households - first) as usize;
    let mut households: Vec<Household> = (0..count)
        .map(|id| build_household(&mut rng, &mut ctx, id))
        .collect();
    inject_duplicates(&mut rng, &ctx, &mut households);
    households.shuffle(&mut rng);
    output::write_chunk(chunk, &households, reference, &ctx.numbering)
}

fn build_household<R: Rng>(rng: &mut R, ctx: &mut Ctx<'_>, id: usize) -> Household {
    let reference = ctx.reference;
    let village_index = reference.pick_village(rng);
    let village = &reference.villages[village_index];
    // Kigali households are better off on average.
    let wealth = normal(rng) + if village.urban { 0.9 } else { 0.0 };
    let as_of = ctx.config.as_of;
    let sketches = household::sketch(rng, wealth, as_of.year());
    let mut members: Vec<Person> = sketches
        .iter()
        .map(|s| build_person(rng, ctx, s, wealth, village_index))
        .collect();
    share_father_names(rng, &mut members);
    let facts = HouseholdFacts {
        urban: village.urban,
        size: members.len(),
        head_age: sketches[0].age,
        has_phone: members.iter().any(|m| !m.phones.is_empty()),
    };
    Household {
        id,
        village: village_index,
        address: household::address(rng, village),
        gps: household::gps(rng, village),
        answers: answers::household(rng, wealth, &facts),
        members,
        wealth,
    }
}

fn build_person<R: Rng>(
    rng: &mut R,
    ctx: &mut Ctx<'_>,
    s: &Sketch,
    wealth: f64,
    village_index: usize,
) -> Person {
    let reference = ctx.reference;
    let village = &reference.villages[village_index];
    let as_of = ctx.config.as_of;
    let birth = household::birth_date(rng, s.age, as_of);
    let slot = Numbering::person_slot(ctx.chunk, ctx.people);
    ctx.people += 1;
    let age = birth.age_on(as_of);
    let id_p = if age >= 18 { 0.96 } else { 0.6 };
    let national_id = (age >= 16 && rng.random_bool(id_p))
        .then(|| ctx.numbering.national_id(rng, slot, birth.year(), s.sex));
    let birth_registration = (age < 16 && rng.random_bool(ctx.config.child_id_share)).then(|| {
        ctx.numbering
            .birth_registration(slot, birth.year(), &village.code[..2])
    });
    let passport =
        (age >= 18 && wealth > 1.2 && rng.random_bool(0.08)).then(|| ctx.numbering.passport(slot));
    let mut phones = Vec::new();
    if household::has_phone(rng, s.role, age, wealth) {
        phones.push(household::phone(rng));
        if rng.random_bool(0.06) {
            phones.push(household::phone(rng));
        }
    }
    let (mother, father, guardian) = links(rng, s);
    Person {
        given: household::given_name(rng, reference, s.sex, s.age),
        family: reference.names.family(s.sex).pick(rng).to_string(),
        sex: s.sex,
        birth,
        role: s.role,
        national_id,
        birth_registration,
        passport,
        phones,
        mother,
        father,
        guardian,
        answers: answers::member(rng, s, birth.year(), wealth, village.urban),
        entity: slot,
        original: None,
        errors: Vec::new(),
    }
}

/// Which of a child's parents the registration records: the mother of every young child,
/// the father of most; for older children the links are patchier; adults have none.
fn links<R: Rng>(rng: &mut R, s: &Sketch) -> (Option<usize>, Option<usize>, Option<usize>) {
    let (mother_p, father_p) = match s.age {
        ..=5 => (1.0, 0.6),
        6..=17 => (0.5, 0.3),
        _ => (0.0, 0.0),
    };
    let keep = |rng: &mut R, link: Option<usize>, p: f64| link.filter(|_| rng.random_bool(p));
    let mother = keep(rng, s.mother, mother_p);
    let father = keep(rng, s.father, father_p);
    let guardian = s.guardian.filter(|_| s.age < 18);
    (mother, father, guardian)
}

/// In Rwanda a child's family name is chosen for the child, not inherited; a minority of
/// (mostly younger) families now pass the father's name on.
fn share_father_names<R: Rng>(rng: &mut R, members: &mut [Person]) {
    for i in 0..members.len() {
        if let Some(f) = members[i].father {
            if rng.random_bool(0.12) {
                members[i].family = members[f].family.clone();
            }
        }
    }
}

/// Re-registers whole households and single people, `duplicate_share` of the people in all:
/// two fifths through whole households registered again, three fifths through people
/// registered again in another household of the same sector.
fn inject_duplicates<R: Rng>(rng: &mut R, ctx: &Ctx<'_>, households: &mut Vec<Household>) {
    let share = ctx.config.duplicate_share;
    if share <= 0.0 {
        return;
    }
    let originals = households.len();
    for h in 0..originals {
        if rng.random_bool(0.4 * share) {
            let copy = reregister(rng, ctx, &households[h], households.len());
            households.push(copy);
        }
    }
    let by_sector = index_by_sector(ctx.reference, &households[..originals]);
    for h in 0..originals {
        for m in 0..households[h].members.len() {
            if households[h].members[m].original.is_none() && rng.random_bool(0.6 * share) {
                register_elsewhere(rng, ctx, households, &by_sector, (h, m));
            }
        }
    }
}

fn index_by_sector(reference: &Reference, households: &[Household]) -> HashMap<usize, Vec<usize>> {
    let mut map: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, h) in households.iter().enumerate() {
        let sector = reference.villages[h.village].sector.start;
        map.entry(sector).or_default().push(i);
    }
    map
}

/// Another village of the same sector, when the sector has more than one.
fn neighbour_village<R: Rng>(rng: &mut R, reference: &Reference, village: usize) -> Option<usize> {
    let sector = reference.villages[village].sector.clone();
    if sector.len() < 2 {
        return None;
    }
    let mut v = rng.random_range(sector.start..sector.end - 1);
    if v >= village {
        v += 1;
    }
    Some(v)
}

/// The whole household registered a second time (by another enumerator, or after a move
/// within the sector), with its own registry number and freshly given answers.
fn reregister<R: Rng>(rng: &mut R, ctx: &Ctx<'_>, original: &Household, id: usize) -> Household {
    let reference = ctx.reference;
    let moved = if rng.random_bool(0.5) {
        neighbour_village(rng, reference, original.village)
    } else {
        None
    };
    let village_index = moved.unwrap_or(original.village);
    let village = &reference.villages[village_index];
    let mut members = original.members.clone();
    for (m, p) in members.iter_mut().enumerate() {
        p.original = Some((original.id, m));
        if moved.is_some() {
            p.errors.push("moved");
        }
        duplicates::damage(rng, p, ctx.config.as_of);
    }
    let facts = HouseholdFacts {
        urban: village.urban,
        size: members.len(),
        head_age: original.members[0].birth.age_on(ctx.config.as_of),
        has_phone: members.iter().any(|m| !m.phones.is_empty()),
    };
    // Answers given again differ somewhat: another respondent, another season.
    let wealth = original.wealth + 0.3 * normal(rng);
    Household {
        id,
        village: village_index,
        address: household::address(rng, village),
        gps: household::gps(rng, village),
        answers: answers::household(rng, wealth, &facts),
        members,
        wealth,
    }
}

/// One person registered again as a member of another household, preferably in another
/// village of the same sector (a move the registry did not record).
fn register_elsewhere<R: Rng>(
    rng: &mut R,
    ctx: &Ctx<'_>,
    households: &mut [Household],
    by_sector: &HashMap<usize, Vec<usize>>,
    (h, m): (usize, usize),
) {
    let home = households[h].village;
    let sector = ctx.reference.villages[home].sector.start;
    let fits = |i: &usize| *i != h && households[*i].members.len() < MAX_MEMBERS;
    let nearby: Vec<usize> = by_sector
        .get(&sector)
        .map(|v| {
            v.iter()
                .copied()
                .filter(|i| fits(i) && households[*i].village != home)
                .collect()
        })
        .unwrap_or_default();
    let target = if nearby.is_empty() {
        // Nobody of this chunk lives nearby: the person turns up further away.
        let i = rng.random_range(0..by_sector.values().map(Vec::len).sum::<usize>());
        Some(i).filter(fits)
    } else {
        Some(nearby[rng.random_range(0..nearby.len())])
    };
    let Some(t) = target else { return };
    let mut copy = households[h].members[m].clone();
    copy.role = if rng.random_bool(0.7) {
        MemberRole::OtherRelative
    } else {
        MemberRole::NonRelative
    };
    copy.mother = None;
    copy.father = None;
    copy.guardian = None;
    copy.original = Some((households[h].id, m));
    let t_village = households[t].village;
    if ctx.reference.villages[t_village].sector.start == sector && t_village != home {
        copy.errors.push("moved");
    }
    duplicates::damage(rng, &mut copy, ctx.config.as_of);
    households[t].members.push(copy);
}
