//! Identifiers of the registry: the public household registry number, Rwandan national ID
//! numbers and phone numbers. Each is a newtype with one parsing constructor.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::person::{BirthDate, Sex};

/// Crockford's base-32 alphabet: no I, L, O or U, so a number read aloud or copied by hand is
/// not misread.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const BODY_LEN: usize = 7;

/// The public number of a household, `HH-XXXX-XXXX`: seven random base-32 symbols and a Luhn
/// mod 32 check symbol. 32⁷ ≈ 34 billion values for 3.2 million households makes a number
/// hard to guess; the check symbol catches every single-symbol error and every adjacent swap.
/// The internal id stays a UUID; this number is what people write on forms and say on phones.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RegistryNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRegistryNumber {
    #[error("registry number '{0}': expected HH-XXXX-XXXX (8 letters or digits after HH)")]
    Shape(String),
    #[error("registry number '{0}': the check symbol does not match; the number was mistyped")]
    Check(String),
}

fn symbol_value(c: u8) -> Option<u32> {
    // Crockford's decoding folds look-alikes: O→0, I and L→1.
    let c = match c.to_ascii_uppercase() {
        b'O' => b'0',
        b'I' | b'L' => b'1',
        other => other,
    };
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// Luhn mod N over the base-32 symbols: the symbol that makes the weighted sum divisible by 32.
fn check_symbol(body: &[u32]) -> u32 {
    let mut sum = 0;
    // Weights alternate 2, 1 from the right-most body symbol, as in the decimal Luhn algorithm.
    for (i, &v) in body.iter().rev().enumerate() {
        let mut a = if i % 2 == 0 { v * 2 } else { v };
        a = a / 32 + a % 32;
        sum += a;
    }
    (32 - sum % 32) % 32
}

impl RegistryNumber {
    pub fn parse(input: &str) -> Result<RegistryNumber, InvalidRegistryNumber> {
        let shape = || InvalidRegistryNumber::Shape(input.chars().take(40).collect());
        let compact: Vec<u8> = input
            .trim()
            .bytes()
            .filter(|b| *b != b'-' && *b != b' ')
            .collect();
        let rest = match compact.get(..2) {
            Some(p) if p.eq_ignore_ascii_case(b"HH") => &compact[2..],
            _ => &compact[..],
        };
        if rest.len() != BODY_LEN + 1 {
            return Err(shape());
        }
        let values: Vec<u32> = rest
            .iter()
            .map(|&c| symbol_value(c))
            .collect::<Option<_>>()
            .ok_or_else(shape)?;
        if check_symbol(&values[..BODY_LEN]) != values[BODY_LEN] {
            return Err(InvalidRegistryNumber::Check(
                input.chars().take(40).collect(),
            ));
        }
        Ok(Self::from_values(&values))
    }

    /// A fresh random number. Collisions are possible (rarely) and are caught by the store's
    /// unique index, which retries with another number.
    pub fn generate<R: rand::Rng + ?Sized>(rng: &mut R) -> RegistryNumber {
        let mut values: Vec<u32> = (0..BODY_LEN).map(|_| rng.random_range(0..32)).collect();
        values.push(check_symbol(&values));
        Self::from_values(&values)
    }

    /// The number whose seven body symbols are the base-32 digits of `body` (taken modulo
    /// 32⁷), with its check symbol. For generators that must hand out distinct numbers without
    /// a shared set: distinct bodies give distinct numbers.
    pub fn from_body(body: u64) -> RegistryNumber {
        let body = body % (1u64 << (5 * BODY_LEN));
        let mut values: Vec<u32> = (0..BODY_LEN)
            .rev()
            .map(|i| ((body >> (5 * i)) & 31) as u32)
            .collect();
        values.push(check_symbol(&values));
        Self::from_values(&values)
    }

    fn from_values(values: &[u32]) -> RegistryNumber {
        let sym = |v: &u32| ALPHABET[*v as usize] as char;
        let (a, b) = values.split_at(4);
        RegistryNumber(format!(
            "HH-{}-{}",
            a.iter().map(sym).collect::<String>(),
            b.iter().map(sym).collect::<String>()
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegistryNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl FromStr for RegistryNumber {
    type Err = InvalidRegistryNumber;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RegistryNumber::parse(s)
    }
}

impl<'de> Deserialize<'de> for RegistryNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RegistryNumber::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A Rwandan national identification number: 16 digits laid out as
/// `S YYYY X NNNNNNN I CC` — status (1 Rwandan, 2 refugee, 3 foreign resident), year of birth,
/// sex (8 male, 7 female), a serial number, the issue count and two check digits.
///
/// The check-digit algorithm is not published, so only the structure is validated here; the
/// national ID system confirms the rest (see the interop connectors).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct NationalId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidNationalId {
    #[error("national ID '{0}': expected 16 digits")]
    Shape(String),
    #[error("national ID '{0}': the first digit (status) must be 1, 2 or 3")]
    Status(String),
    #[error("national ID '{0}': the sex digit (6th) must be 7 (female) or 8 (male)")]
    SexDigit(String),
    #[error(
        "national ID '{id}': year of birth {id_year} does not match the date of birth ({birth})"
    )]
    BirthYear {
        id: String,
        id_year: i32,
        birth: String,
    },
    #[error("national ID '{id}': the sex digit says {id_sex}, the record says {sex}")]
    Sex { id: String, id_sex: Sex, sex: Sex },
    #[error("national ID '{0}': year of birth is implausible")]
    Year(String),
}

impl NationalId {
    /// Structure only: 16 digits (spaces allowed), a known status and sex digit, a plausible
    /// year. Use [`NationalId::check_against`] to compare with a person's sex and birth date.
    pub fn parse(input: &str) -> Result<NationalId, InvalidNationalId> {
        let shown: String = input.chars().take(40).collect();
        let digits: String = input.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidNationalId::Shape(shown));
        }
        if !matches!(digits.as_bytes()[0], b'1' | b'2' | b'3') {
            return Err(InvalidNationalId::Status(shown));
        }
        if !matches!(digits.as_bytes()[5], b'7' | b'8') {
            return Err(InvalidNationalId::SexDigit(shown));
        }
        let id = NationalId(digits);
        if !(1880..=2100).contains(&id.birth_year()) {
            return Err(InvalidNationalId::Year(shown));
        }
        Ok(id)
    }

    /// The year of birth written in the number.
    pub fn birth_year(&self) -> i32 {
        self.0[1..5].parse().unwrap_or(0)
    }

    pub fn sex(&self) -> Sex {
        if self.0.as_bytes()[5] == b'7' {
            Sex::Female
        } else {
            Sex::Male
        }
    }

    /// Whether the number agrees with the person's recorded sex and date of birth.
    pub fn check_against(
        &self,
        sex: Sex,
        birth: Option<&BirthDate>,
    ) -> Result<(), InvalidNationalId> {
        if self.sex() != sex {
            return Err(InvalidNationalId::Sex {
                id: self.0.clone(),
                id_sex: self.sex(),
                sex,
            });
        }
        if let Some(b) = birth {
            if b.year() != self.birth_year() {
                return Err(InvalidNationalId::BirthYear {
                    id: self.0.clone(),
                    id_year: self.birth_year(),
                    birth: b.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Builds a structurally valid number; used by the data generator and tests.
    pub fn compose(
        status: u8,
        birth_year: i32,
        sex: Sex,
        serial: u32,
        issue: u8,
        check: u8,
    ) -> NationalId {
        let sex_digit = if sex == Sex::Female { 7 } else { 8 };
        NationalId(format!(
            "{}{:04}{}{:07}{}{:02}",
            status.clamp(1, 3),
            birth_year.clamp(1880, 2100),
            sex_digit,
            serial % 10_000_000,
            issue % 10,
            check % 100
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl<'de> Deserialize<'de> for NationalId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        NationalId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A Rwandan mobile number in E.164 form, `+2507XXXXXXXX`. Accepts `07…`, `2507…`, `+2507…`
/// with spaces, dots or dashes. Mobile prefixes 072/073 (Airtel) and 078/079 (MTN).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("phone number '{0}': expected a Rwandan mobile number such as 0788123456 or +250788123456")]
pub struct InvalidPhoneNumber(pub String);

impl PhoneNumber {
    pub fn parse(input: &str) -> Result<PhoneNumber, InvalidPhoneNumber> {
        let bad = || InvalidPhoneNumber(input.chars().take(40).collect());
        let s = input.trim();
        let body = s.strip_prefix('+').unwrap_or(s);
        if body
            .chars()
            .any(|c| !(c.is_ascii_digit() || " .-()".contains(c)))
        {
            return Err(bad());
        }
        let digits: String = body.chars().filter(char::is_ascii_digit).collect();
        let national = if let Some(rest) = digits.strip_prefix("250") {
            rest.to_string()
        } else if let Some(rest) = digits.strip_prefix('0') {
            rest.to_string()
        } else {
            return Err(bad());
        };
        let ok = national.len() == 9
            && national.starts_with('7')
            && matches!(national.as_bytes()[1], b'2' | b'3' | b'8' | b'9');
        if ok {
            Ok(PhoneNumber(format!("+250{national}")))
        } else {
            Err(bad())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PhoneNumber::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn registry_numbers_round_trip_and_catch_typos() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..500 {
            let n = RegistryNumber::generate(&mut rng);
            assert_eq!(RegistryNumber::parse(n.as_str()), Ok(n.clone()));
            assert_eq!(
                RegistryNumber::parse(&n.as_str().to_lowercase().replace('-', "")),
                Ok(n.clone())
            );
            // Every single-symbol substitution is caught.
            let s: Vec<char> = n.as_str().chars().collect();
            for pos in [3usize, 4, 5, 6, 8, 9, 10, 11] {
                for &c in ALPHABET.iter() {
                    let c = c as char;
                    if c == s[pos] {
                        continue;
                    }
                    let mut t = s.clone();
                    t[pos] = c;
                    let t: String = t.into_iter().collect();
                    assert!(RegistryNumber::parse(&t).is_err(), "{t} accepted");
                }
            }
        }
    }

    #[test]
    fn registry_number_adjacent_swaps_are_caught() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for _ in 0..500 {
            let n = RegistryNumber::generate(&mut rng);
            let body: Vec<char> = n.as_str().chars().filter(|c| *c != '-').skip(2).collect();
            for i in 0..body.len() - 1 {
                // Like decimal Luhn's 09/90, Luhn mod 32 misses the one swap of the symbols
                // worth 0 and 31.
                let pair = [body[i], body[i + 1]];
                if body[i] == body[i + 1] || pair == ['0', 'Z'] || pair == ['Z', '0'] {
                    continue;
                }
                let mut t = body.clone();
                t.swap(i, i + 1);
                let t: String = t.into_iter().collect();
                assert!(RegistryNumber::parse(&t).is_err(), "{t} accepted for {n}");
            }
        }
    }

    #[test]
    fn registry_numbers_from_distinct_bodies_are_distinct_and_valid() {
        let bodies = [0u64, 1, 31, 32, 12_345_678, (1 << 35) - 1];
        let numbers: Vec<RegistryNumber> = bodies
            .iter()
            .map(|&b| RegistryNumber::from_body(b))
            .collect();
        for n in &numbers {
            assert_eq!(RegistryNumber::parse(n.as_str()), Ok(n.clone()));
        }
        let unique: std::collections::HashSet<&RegistryNumber> = numbers.iter().collect();
        assert_eq!(unique.len(), bodies.len());
        assert_eq!(
            RegistryNumber::from_body(1 << 35),
            RegistryNumber::from_body(0)
        );
        assert!(RegistryNumber::from_body(1)
            .as_str()
            .starts_with("HH-0000-001"));
    }

    #[test]
    fn registry_number_shapes() {
        assert!(matches!(
            RegistryNumber::parse("HH-123"),
            Err(InvalidRegistryNumber::Shape(_))
        ));
        assert!(matches!(
            RegistryNumber::parse("HH-1234-567U"),
            Err(InvalidRegistryNumber::Shape(_))
        ));
    }

    #[test]
    fn national_id_structure() {
        let id = NationalId::parse("1 1985 8 0012345 0 12").expect("valid");
        assert_eq!(id.as_str(), "1198580012345012");
        assert_eq!(id.birth_year(), 1985);
        assert_eq!(id.sex(), Sex::Male);
        assert!(matches!(
            NationalId::parse("119858001234501"),
            Err(InvalidNationalId::Shape(_))
        ));
        assert!(matches!(
            NationalId::parse("4198580012345012"),
            Err(InvalidNationalId::Status(_))
        ));
        assert!(matches!(
            NationalId::parse("1198550012345012"),
            Err(InvalidNationalId::SexDigit(_))
        ));
        assert!(matches!(
            NationalId::parse("1098580012345012"),
            Err(InvalidNationalId::Year(_))
        ));
    }

    #[test]
    fn national_id_against_person() {
        let id = NationalId::parse("1199070012345012").expect("valid");
        let born = BirthDate::parse("1990-05-02").expect("date");
        assert!(id.check_against(Sex::Female, Some(&born)).is_ok());
        assert!(matches!(
            id.check_against(Sex::Male, Some(&born)),
            Err(InvalidNationalId::Sex { .. })
        ));
        let other = BirthDate::parse("1991").expect("date");
        assert!(matches!(
            id.check_against(Sex::Female, Some(&other)),
            Err(InvalidNationalId::BirthYear { .. })
        ));
        let composed = NationalId::compose(1, 1990, Sex::Female, 12345, 0, 12);
        assert_eq!(composed, id);
    }

    #[test]
    fn phone_numbers() {
        for ok in [
            "0788123456",
            "+250 788 123 456",
            "250-722-123-456",
            "0731234567",
        ] {
            assert!(PhoneNumber::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            PhoneNumber::parse("0788123456").expect("ok").as_str(),
            "+250788123456"
        );
        for bad in [
            "",
            "0758123456",
            "078812345",
            "+1 202 555 0100",
            "07881234567",
            "07881a3456",
        ] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad}");
        }
    }
}
