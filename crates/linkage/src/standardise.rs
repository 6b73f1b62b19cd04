//! Standardisation: the match keys that comparisons and blocking read.
//!
//! Input is never overwritten: these functions derive keys from it. A name key is NFKC,
//! case-folded, transliterated to ASCII where a Latin letter has a plain form, with
//! apostrophes removed (`Ng'ang'a` and `Nganga` are one name), other punctuation read as a
//! space, runs of space folded, and optionally its tokens sorted (so `Uwase Marie` and
//! `Marie Uwase` agree). A *variant key* further maps Kinyarwanda spelling variants to one form
//! with the data-driven table in `data/linkage/kinyarwanda-variants.csv`.

use std::collections::HashMap;
use std::sync::OnceLock;

use unicode_normalization::UnicodeNormalization;

use crate::LinkageError;

/// The shipped table of Kinyarwanda spelling variants.
const VARIANTS_CSV: &str = include_str!("../../../data/linkage/kinyarwanda-variants.csv");

/// A name key: see the module documentation. Empty when nothing letter-like remains.
pub fn name_key(input: &str, sort_tokens: bool) -> String {
    let folded = fold(input);
    if !sort_tokens {
        return folded;
    }
    let mut tokens: Vec<&str> = folded.split(' ').filter(|t| !t.is_empty()).collect();
    tokens.sort_unstable();
    tokens.join(" ")
}

/// NFKC, case folding, transliteration, apostrophes dropped, punctuation as space, spaces folded.
fn fold(input: &str) -> String {
    // NFKC first so compatibility forms (full-width letters, ligatures) become plain letters;
    // the domain's search key then strips diacritics and folds case and space.
    let nfkc: String = input.nfkc().collect();
    let key = inkingi_domain::text::search_key(&nfkc);
    let mut out = String::with_capacity(key.len());
    let mut last_space = true;
    for c in key.chars() {
        if is_apostrophe(c) {
            continue;
        }
        if c.is_alphanumeric() {
            if c.is_ascii() {
                out.push(c);
            } else if let Some(ascii) = transliterate(c) {
                out.push_str(ascii);
            } else {
                out.push(c);
            }
            last_space = false;
        } else if !last_space {
            out.push(' ');
            last_space = true;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

fn is_apostrophe(c: char) -> bool {
    matches!(
        c,
        '\'' | '\u{2019}' | '\u{2018}' | '`' | '\u{00B4}' | '\u{02BC}' | '\u{02BB}'
    )
}

/// Latin letters without a decomposition to a base letter (so diacritic stripping misses them).
fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        'ø' => "o",
        'đ' | 'ð' => "d",
        'ł' => "l",
        'þ' => "th",
        'ı' => "i",
        'ŋ' => "ng",
        'ħ' => "h",
        _ => return None,
    })
}

/// Only the digits of a value: national IDs and phone numbers are written with spaces,
/// dashes and dots in every possible way.
pub fn digits(input: &str) -> String {
    input.chars().filter(|c| c.is_ascii_digit()).collect()
}

/// A phone key: the last nine digits, so `+250 788 123 456`, `0788123456` and `788123456`
/// agree. Fewer than seven digits is not a phone number.
pub fn phone_key(input: &str) -> Option<String> {
    let d = digits(input);
    if d.len() < 7 {
        return None;
    }
    Some(d[d.len().saturating_sub(9)..].to_string())
}

/// The table of spelling variants: whole-token replacements, then in-token rewrites.
#[derive(Debug, Clone, Default)]
pub struct Variants {
    tokens: HashMap<String, String>,
    rewrites: Vec<(String, String)>,
}

impl Variants {
    /// The table shipped with Inkingi.
    pub fn kinyarwanda() -> &'static Variants {
        static TABLE: OnceLock<Variants> = OnceLock::new();
        TABLE.get_or_init(|| {
            // The shipped table is checked by a unit test; an empty table is the safe fallback.
            Variants::parse(VARIANTS_CSV).unwrap_or_default()
        })
    }

    /// Parses `kind,from,to` lines; `#` starts a comment line.
    pub fn parse(text: &str) -> Result<Variants, LinkageError> {
        let mut table = Variants::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line == "kind,from,to" {
                continue;
            }
            let bad = |reason: &str| LinkageError::Variants {
                line: i + 1,
                reason: reason.to_string(),
            };
            let mut parts = line.split(',');
            let (kind, from, to) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(k), Some(f), Some(t), None) => (k.trim(), fold(f), fold(t)),
                _ => return Err(bad("expected three fields: kind,from,to")),
            };
            if from.is_empty() {
                return Err(bad("`from` is empty"));
            }
            match kind {
                "token" => {
                    table.tokens.insert(from, to);
                }
                "rewrite" => table.rewrites.push((from, to)),
                other => return Err(bad(&format!("unknown kind {other:?}: token or rewrite"))),
            }
        }
        Ok(table)
    }

    /// The variant key of a name key (already folded): each token mapped through the token
    /// table, then rewritten; tokens keep their order.
    pub fn key(&self, name_key: &str) -> String {
        let mut out = String::with_capacity(name_key.len());
        for token in name_key.split(' ').filter(|t| !t.is_empty()) {
            if !out.is_empty() {
                out.push(' ');
            }
            let mut t = self
                .tokens
                .get(token)
                .cloned()
                .unwrap_or_else(|| token.to_string());
            for (from, to) in &self.rewrites {
                if t.contains(from.as_str()) {
                    t = t.replace(from.as_str(), to);
                }
            }
            out.push_str(&t);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_shipped_table_parses_and_is_not_empty() {
        let t = Variants::parse(VARIANTS_CSV).unwrap();
        assert!(t.tokens.len() > 10);
        assert!(t.rewrites.len() > 5);
    }

    #[test]
    fn names_fold_case_marks_apostrophes_and_space() {
        assert_eq!(name_key("  NG'ANG'A   Wanjiru ", false), "nganga wanjiru");
        assert_eq!(name_key("Jean-Baptiste", false), "jean baptiste");
        assert_eq!(name_key("Ｍａｒｉｅ Uwăse", false), "marie uwase");
        assert_eq!(
            name_key("Gaëlle Łukasz Straße", false),
            "gaelle lukasz strasse"
        );
        assert_eq!(name_key("Uwase Marie", true), "marie uwase");
        assert_eq!(name_key("--", true), "");
    }

    #[test]
    fn kinyarwanda_variants_share_a_key() {
        let v = Variants::kinyarwanda();
        assert_eq!(v.key("habyalimana"), v.key("habyarimana"));
        assert_eq!(v.key("nsengiyoumva"), v.key("nsengiyumva"));
        assert_eq!(v.key("uwamahooro"), v.key("uwamahoro"));
        assert_eq!(v.key("yozefu"), v.key("joseph"));
        assert_ne!(v.key("uwase"), v.key("uwera"));
    }

    #[test]
    fn bad_tables_say_which_line() {
        let e = Variants::parse("token,a,b\nbogus,a,b\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(Variants::parse("token,a\n").is_err());
        assert!(Variants::parse("rewrite,,x\n").is_err());
    }

    #[test]
    fn phones_keep_their_last_nine_digits() {
        assert_eq!(phone_key("+250 788-123-456").as_deref(), Some("788123456"));
        assert_eq!(phone_key("0788123456").as_deref(), Some("788123456"));
        assert_eq!(phone_key("12 34"), None);
    }

    proptest! {
        #[test]
        fn name_keys_are_idempotent_and_tidy(s in "\\PC{0,40}") {
            let k = name_key(&s, false);
            prop_assert_eq!(name_key(&k, false), k.clone());
            prop_assert!(!k.starts_with(' ') && !k.ends_with(' ') && !k.contains("  "));
            prop_assert_eq!(k.to_lowercase(), k.clone());
            prop_assert!(!k.chars().any(is_apostrophe));
        }

        #[test]
        fn sorted_keys_ignore_token_order(a in "[a-z]{1,8}", b in "[a-z]{1,8}") {
            prop_assert_eq!(name_key(&format!("{a} {b}"), true), name_key(&format!("{b} {a}"), true));
        }

        #[test]
        fn variant_keys_are_stable(s in "[a-z ]{0,30}") {
            let v = Variants::kinyarwanda();
            let k = name_key(&s, false);
            let once = v.key(&k);
            prop_assert!(!once.contains("  "));
        }
    }
}
