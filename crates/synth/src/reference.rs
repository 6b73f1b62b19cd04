//! What the generator draws from: the villages (with how many households each should get),
//! the name lists and the questionnaire.

use inkingi_domain::areas::{parse_area_data, AreaLevel};
use inkingi_domain::registry::form::FormSchema;
use inkingi_domain::registry::Sex;
use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::Rng;

const AREAS_CSV: &str = include_str!("../../../data/areas/rwanda-areas.csv");

/// Population by province, Fifth Population and Housing Census 2022 (NISR), in thousands:
/// Kigali City, Southern, Western, Northern, Eastern. Spread over each province's villages,
/// these make a Kigali village about twice as populous as a rural one.
const PROVINCE_POPULATION: [(char, f64); 5] = [
    ('1', 1745.6),
    ('2', 3002.7),
    ('3', 2896.5),
    ('4', 2038.5),
    ('5', 3563.1),
];

/// Approximate centre (latitude, longitude) of each district, for synthetic GPS positions.
const DISTRICT_CENTRES: [(&str, f64, f64); 30] = [
    ("11", -1.96, 30.04),
    ("12", -1.88, 30.13),
    ("13", -2.00, 30.13),
    ("21", -2.35, 29.75),
    ("22", -2.60, 29.85),
    ("23", -2.70, 29.55),
    ("24", -2.60, 29.74),
    ("25", -2.45, 29.45),
    ("26", -2.22, 29.78),
    ("27", -2.08, 29.75),
    ("28", -2.00, 29.90),
    ("31", -2.10, 29.35),
    ("32", -1.93, 29.33),
    ("33", -1.70, 29.33),
    ("34", -1.65, 29.50),
    ("35", -1.87, 29.60),
    ("36", -2.48, 29.00),
    ("37", -2.33, 29.10),
    ("41", -1.73, 29.99),
    ("42", -1.70, 29.78),
    ("43", -1.50, 29.60),
    ("44", -1.47, 29.83),
    ("45", -1.60, 30.10),
    ("51", -1.95, 30.43),
    ("52", -1.30, 30.33),
    ("53", -1.60, 30.42),
    ("54", -1.90, 30.60),
    ("55", -2.25, 30.70),
    ("56", -2.15, 30.50),
    ("57", -2.22, 30.15),
];

pub(crate) struct Village {
    pub code: String,
    pub name: String,
    /// Kigali City: denser, wealthier on average, more renters, less farm land.
    pub urban: bool,
    /// Index range of the villages of the same sector in `Reference::villages`.
    pub sector: std::ops::Range<usize>,
    /// Approximate position.
    pub centre: (f64, f64),
}

/// Offset of the Zipf–Mandelbrot law the name lists follow: the name of rank r is drawn with
/// weight 1/(r + 4). A pure Zipf law (offset 0) on lists this short would give the first name
/// a fifth of all people; the offset flattens the head to a few per cent, as in real registers.
const ZIPF_OFFSET: f64 = 4.0;

/// A name list with Zipf-like frequencies (see [`ZIPF_OFFSET`]).
pub(crate) struct NameList {
    names: Vec<String>,
    index: WeightedIndex<f64>,
}

impl NameList {
    fn parse(text: &str) -> NameList {
        let names: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        let weights = (1..=names.len()).map(|r| 1.0 / (r as f64 + ZIPF_OFFSET));
        // The lists are shipped with the binary and checked by a test.
        let index = WeightedIndex::new(weights).unwrap_or_else(|e| panic!("name list: {e}"));
        NameList { names, index }
    }

    pub fn pick<R: Rng>(&self, rng: &mut R) -> &str {
        &self.names[self.index.sample(rng)]
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.names.len()
    }
}

pub(crate) struct Names {
    pub family_female: NameList,
    pub family_male: NameList,
    pub christian_female: NameList,
    pub christian_male: NameList,
    pub kinyarwanda_female: NameList,
    pub kinyarwanda_male: NameList,
}

impl Names {
    fn load() -> Names {
        Names {
            family_female: NameList::parse(include_str!("../../../data/names/family-female.txt")),
            family_male: NameList::parse(include_str!("../../../data/names/family-male.txt")),
            christian_female: NameList::parse(include_str!(
                "../../../data/names/given-christian-female.txt"
            )),
            christian_male: NameList::parse(include_str!(
                "../../../data/names/given-christian-male.txt"
            )),
            kinyarwanda_female: NameList::parse(include_str!(
                "../../../data/names/given-kinyarwanda-female.txt"
            )),
            kinyarwanda_male: NameList::parse(include_str!(
                "../../../data/names/given-kinyarwanda-male.txt"
            )),
        }
    }

    pub fn family(&self, sex: Sex) -> &NameList {
        match sex {
            Sex::Female => &self.family_female,
            Sex::Male => &self.family_male,
        }
    }

    pub fn christian(&self, sex: Sex) -> &NameList {
        match sex {
            Sex::Female => &self.christian_female,
            Sex::Male => &self.christian_male,
        }
    }

    pub fn kinyarwanda(&self, sex: Sex) -> &NameList {
        match sex {
            Sex::Female => &self.kinyarwanda_female,
            Sex::Male => &self.kinyarwanda_male,
        }
    }
}

pub(crate) struct Reference {
    pub villages: Vec<Village>,
    village_index: WeightedIndex<f64>,
    pub names: Names,
    pub form: FormSchema,
}

impl Reference {
    pub fn load() -> Reference {
        // The embedded area list is validated by the store's tests; failing here is a build
        // mistake, not bad input.
        let areas = parse_area_data(AREAS_CSV).unwrap_or_else(|e| panic!("embedded areas: {e}"));
        let mut villages: Vec<Village> = areas
            .iter()
            .filter(|a| a.level == AreaLevel::Village)
            .map(|a| {
                let code = a.code.as_str().to_string();
                let centre = district_centre(&code[..2]);
                Village {
                    urban: code.starts_with('1'),
                    name: a.name.clone(),
                    sector: 0..0,
                    centre: jitter_by_code(&code, centre),
                    code,
                }
            })
            .collect();
        villages.sort_by(|a, b| a.code.cmp(&b.code));
        assign_sectors(&mut villages);
        let weights = village_weights(&villages);
        let village_index =
            WeightedIndex::new(weights).unwrap_or_else(|e| panic!("village weights: {e}"));
        Reference {
            villages,
            village_index,
            names: Names::load(),
            form: FormSchema::default_form(),
        }
    }

    pub fn pick_village<R: Rng>(&self, rng: &mut R) -> usize {
        self.village_index.sample(rng)
    }
}

fn district_centre(district: &str) -> (f64, f64) {
    DISTRICT_CENTRES
        .iter()
        .find(|(d, _, _)| *d == district)
        .map(|&(_, lat, lon)| (lat, lon))
        .unwrap_or((-1.95, 29.9))
}

/// Places a village near its district's centre, at an offset that depends only on its code
/// (so it is the same in every run).
fn jitter_by_code(code: &str, (lat, lon): (f64, f64)) -> (f64, f64) {
    let h = code.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let unit = |bits: u64| (bits & 0xffff) as f64 / 65535.0 - 0.5;
    (lat + 0.16 * unit(h), lon + 0.16 * unit(h >> 16))
}

fn assign_sectors(villages: &mut [Village]) {
    let mut start = 0;
    while start < villages.len() {
        let sector = villages[start].code[..4].to_string();
        let end = start
            + villages[start..]
                .iter()
                .take_while(|v| v.code.starts_with(&sector))
                .count();
        for v in &mut villages[start..end] {
            v.sector = start..end;
        }
        start = end;
    }
}

fn village_weights(villages: &[Village]) -> Vec<f64> {
    let per_village: Vec<(char, f64)> = PROVINCE_POPULATION
        .iter()
        .map(|&(p, pop)| {
            let n = villages.iter().filter(|v| v.code.starts_with(p)).count();
            (p, pop / n.max(1) as f64)
        })
        .collect();
    villages
        .iter()
        .map(|v| {
            let first = v.code.chars().next().unwrap_or('1');
            per_village
                .iter()
                .find(|(p, _)| *p == first)
                .map_or(1.0, |(_, w)| *w)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_data_loads() {
        let r = Reference::load();
        assert_eq!(r.villages.len(), 14_816);
        let names = &r.names;
        for list in [
            &names.family_female,
            &names.family_male,
            &names.christian_female,
            &names.christian_male,
            &names.kinyarwanda_female,
            &names.kinyarwanda_male,
        ] {
            assert!(list.len() >= 20);
            for n in &list.names {
                inkingi_domain::registry::Name::parse(n).expect("valid name");
            }
        }
        // Every village's sector range holds it and only villages of its sector.
        for (i, v) in r.villages.iter().enumerate() {
            assert!(v.sector.contains(&i));
            assert!(r.villages[v.sector.clone()]
                .iter()
                .all(|o| o.code[..4] == v.code[..4]));
        }
        let kigali = r.villages.iter().filter(|v| v.urban).count();
        assert_eq!(kigali, 1163);
    }
}
