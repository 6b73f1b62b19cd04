//! The errors a second registration of the same person carries: typing slips, the spelling
//! variants Kinyarwanda and French names take when written by ear, swapped name order, a
//! missing national ID, a birth date remembered only by its year.

use chrono::NaiveDate;
use inkingi_domain::registry::{BirthDate, DatePrecision};
use rand::Rng;

use crate::household::Person;

/// Spelling variants heard the same: each pair is tried in both directions. Kinyarwanda does
/// not distinguish r and l, doubles or simplifies nasals freely, and writes French names as
/// they sound.
const PHONETIC: [(&str, &str); 22] = [
    ("mana", "manna"),
    ("ana", "anna"),
    ("r", "l"),
    ("R", "L"),
    ("Jean", "Jan"),
    ("Claud", "Klod"),
    ("Cl", "Kl"),
    ("Chr", "Kr"),
    ("ch", "sh"),
    ("ph", "f"),
    ("th", "t"),
    ("Th", "T"),
    ("qu", "k"),
    ("cy", "ci"),
    ("shy", "shi"),
    ("ji", "gi"),
    ("ine", "ina"),
    ("ie", "i"),
    ("é", "e"),
    ("è", "e"),
    ("Uw", "U"),
    ("nz", "ns"),
];

/// Nearby letters on a keyboard, for substitution slips.
const NEIGHBOURS: [(char, &str); 12] = [
    ('a', "sqz"),
    ('e', "rdz"),
    ('i', "uok"),
    ('o', "ipl"),
    ('u', "yij"),
    ('n', "bmh"),
    ('m', "nj"),
    ('r', "etf"),
    ('s', "adz"),
    ('t', "ryg"),
    ('y', "tuh"),
    ('k', "jl"),
];

/// One typing slip in a name: a letter dropped, doubled, swapped with the next one, or
/// replaced by a neighbouring key. Returns `None` when the name is too short to damage.
pub(crate) fn typo<R: Rng>(rng: &mut R, name: &str) -> Option<String> {
    let mut chars: Vec<char> = name.chars().collect();
    if chars.len() < 4 {
        return None;
    }
    // Keep the first letter: people rarely mistype it, and blocking schemes rely on that.
    let i = rng.random_range(1..chars.len() - 1);
    match rng.random_range(0..4) {
        0 => {
            chars.remove(i);
        }
        1 => chars.insert(i, chars[i]),
        2 => chars.swap(i, i + 1),
        _ => {
            let c = chars[i].to_ascii_lowercase();
            let near = NEIGHBOURS.iter().find(|(k, _)| *k == c)?.1.as_bytes();
            chars[i] = near[rng.random_range(0..near.len())] as char;
        }
    }
    let out: String = chars.into_iter().collect();
    (out != name && out.chars().any(char::is_alphabetic)).then_some(out)
}

/// A phonetic spelling variant, or `None` when no rule applies.
pub(crate) fn phonetic<R: Rng>(rng: &mut R, name: &str) -> Option<String> {
    let applicable: Vec<(&str, &str)> = PHONETIC
        .iter()
        .flat_map(|&(a, b)| [(a, b), (b, a)])
        .filter(|(from, _)| name.contains(from))
        .collect();
    if applicable.is_empty() {
        return None;
    }
    let (from, to) = applicable[rng.random_range(0..applicable.len())];
    let out = name.replacen(from, to, 1);
    (out != name).then_some(out)
}

/// Applies a random set of errors to a copy of a person registered again and records their
/// kinds in `p.errors` (none at all makes an exact duplicate). A national ID the copy keeps
/// stays consistent: the birth date is cut to its year only while the person still counts as
/// 16 or older on `as_of`.
pub(crate) fn damage<R: Rng>(rng: &mut R, p: &mut Person, as_of: NaiveDate) {
    if rng.random_bool(0.3) {
        let family = rng.random_bool(0.5);
        let target = if family { &mut p.family } else { &mut p.given };
        if let Some(t) = typo(rng, target) {
            *target = t;
            p.errors.push("typo");
        }
    }
    if rng.random_bool(0.35) {
        let family = rng.random_bool(0.6);
        let target = if family { &mut p.family } else { &mut p.given };
        if let Some(v) = phonetic(rng, target) {
            *target = v;
            p.errors.push("phonetic");
        }
    }
    if rng.random_bool(0.15) {
        std::mem::swap(&mut p.given, &mut p.family);
        p.errors.push("swapped_names");
    }
    if p.national_id.is_some() && rng.random_bool(0.35) {
        p.national_id = None;
        p.errors.push("missing_id");
    }
    if p.birth.precision() != DatePrecision::Year && rng.random_bool(0.2) {
        if let Ok(year) = BirthDate::parse(&format!("{:04}", p.birth.year())) {
            if p.national_id.is_none() || year.age_on(as_of) >= 16 {
                p.birth = year;
                p.errors.push("year_only");
            }
        }
    }
    if rng.random_bool(0.3) {
        // The second registration often lacks the phone, or the person has a new one.
        p.phones.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn phonetic_variants_are_the_expected_ones() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            if let Some(v) = phonetic(&mut rng, "Nyiramana") {
                seen.insert(v);
            }
        }
        assert!(seen.contains("Nyiramanna"), "{seen:?}");
        assert!(seen.contains("Nyilamana"), "{seen:?}");
        assert_eq!(phonetic(&mut rng, "Jean").as_deref(), Some("Jan"));
        assert_eq!(phonetic(&mut rng, "Gwo"), None);
    }

    #[test]
    fn typos_change_the_name_but_not_its_first_letter() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        for _ in 0..500 {
            let t = typo(&mut rng, "Habimana");
            if let Some(t) = t {
                assert_ne!(t, "Habimana");
                assert!(t.starts_with('H'));
                assert!((7..=9).contains(&t.chars().count()), "{t}");
            }
        }
        assert_eq!(typo(&mut rng, "Ana"), None);
    }
}
