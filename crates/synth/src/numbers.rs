//! Identifiers unique across the whole output without a shared set: each chunk owns a range
//! of slots (`chunk × slots + local counter`), and an affine bijection modulo the identifier's
//! number space turns a slot into a number that looks random. Distinct slots give distinct
//! numbers.

use inkingi_domain::registry::{NationalId, RegistryNumber, Sex};
use rand::Rng;

use crate::CHUNK_HOUSEHOLDS;

/// People slots per chunk: far above what a chunk generates (households have at most
/// 20 members).
pub(crate) const PERSON_SLOTS: u64 = 1 << 16;
/// Household slots per chunk: originals plus re-registered copies.
pub(crate) const HOUSEHOLD_SLOTS: u64 = 2 * CHUNK_HOUSEHOLDS;

/// The ten digits of a national ID after status, year and sex: serial (7), issue (1),
/// check (2). Serial and check come from the slot; 10⁹ values hold every slot of
/// `MAX_HOUSEHOLDS / CHUNK_HOUSEHOLDS` chunks.
const ID_SPACE: u64 = 1_000_000_000;
/// 32⁷: the body of a registry number.
const REGISTRY_SPACE: u64 = 1 << 35;

/// Multipliers coprime with the spaces (odd, not multiples of 5), so `x ↦ a·x + b` is a
/// bijection.
const ID_MULTIPLIER: u64 = 738_391_137;
const BIRTH_REG_MULTIPLIER: u64 = 264_443_173;
const PASSPORT_MULTIPLIER: u64 = 512_927_357;
const REGISTRY_MULTIPLIER: u64 = 19_840_563_411;

fn affine(slot: u64, multiplier: u64, offset: u64, space: u64) -> u64 {
    ((u128::from(slot) * u128::from(multiplier) + u128::from(offset)) % u128::from(space)) as u64
}

/// SplitMix64's finaliser: spreads a seed over all 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Per-run offsets, so that different seeds give different numbers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Numbering {
    offsets: [u64; 4],
}

impl Numbering {
    pub fn new(seed: u64) -> Numbering {
        let base = mix(seed ^ 0x9e37_79b9_7f4a_7c15);
        Numbering {
            offsets: [0u64, 1, 2, 3].map(|i| mix(base.wrapping_add(i))),
        }
    }

    pub fn person_slot(chunk: u64, local: u64) -> u64 {
        chunk * PERSON_SLOTS + local
    }

    pub fn household_slot(chunk: u64, local: u64) -> u64 {
        chunk * HOUSEHOLD_SLOTS + local
    }

    pub fn national_id<R: Rng>(
        &self,
        rng: &mut R,
        slot: u64,
        birth_year: i32,
        sex: Sex,
    ) -> NationalId {
        let n = affine(slot, ID_MULTIPLIER, self.offsets[0] % ID_SPACE, ID_SPACE);
        // Most cards are first issues; some were replaced once or twice.
        let issue = match rng.random_range(0..100) {
            0..=84 => 0,
            85..=97 => 1,
            _ => 2,
        };
        NationalId::compose(1, birth_year, sex, (n / 100) as u32, issue, (n % 100) as u8)
    }

    /// A birth registration number, `BR/<year>/<district>/<9 digits>` (a synthetic format).
    pub fn birth_registration(&self, slot: u64, birth_year: i32, district: &str) -> String {
        let n = affine(
            slot,
            BIRTH_REG_MULTIPLIER,
            self.offsets[1] % ID_SPACE,
            ID_SPACE,
        );
        format!("BR/{birth_year}/{district}/{n:09}")
    }

    /// A passport number, `PC` and nine digits (a synthetic format).
    pub fn passport(&self, slot: u64) -> String {
        let n = affine(
            slot,
            PASSPORT_MULTIPLIER,
            self.offsets[2] % ID_SPACE,
            ID_SPACE,
        );
        format!("PC{n:09}")
    }

    pub fn registry_number(&self, slot: u64) -> RegistryNumber {
        let body = affine(
            slot,
            REGISTRY_MULTIPLIER,
            self.offsets[3] % REGISTRY_SPACE,
            REGISTRY_SPACE,
        );
        RegistryNumber::from_body(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::HashSet;

    #[test]
    fn slots_give_distinct_valid_numbers() {
        let numbering = Numbering::new(42);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let slots: Vec<u64> = (0..3)
            .flat_map(|c| (0..2000).map(move |l| Numbering::person_slot(c * 4000, l)))
            .collect();
        let ids: HashSet<String> = slots
            .iter()
            .map(|&s| {
                let id = numbering.national_id(&mut rng, s, 1990, Sex::Female);
                let parsed = NationalId::parse(id.as_str()).expect("valid");
                assert_eq!((parsed.birth_year(), parsed.sex()), (1990, Sex::Female));
                // Issue digit aside, the number is fixed by the slot.
                let s = id.as_str();
                format!("{}{}", &s[..13], &s[14..])
            })
            .collect();
        assert_eq!(ids.len(), slots.len());
        let regs: HashSet<String> = slots
            .iter()
            .map(|&s| numbering.registry_number(s).as_str().to_string())
            .collect();
        assert_eq!(regs.len(), slots.len());
        let births: HashSet<String> = slots
            .iter()
            .map(|&s| numbering.birth_registration(s, 2020, "11"))
            .collect();
        assert_eq!(births.len(), slots.len());
    }

    #[test]
    fn the_largest_run_fits_the_id_space() {
        let chunks = crate::MAX_HOUSEHOLDS.div_ceil(CHUNK_HOUSEHOLDS);
        assert!(chunks * PERSON_SLOTS <= ID_SPACE);
        assert!(chunks * HOUSEHOLD_SLOTS <= REGISTRY_SPACE);
    }
}
