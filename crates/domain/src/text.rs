//! Text helpers shared by contexts: search keys that ignore case and diacritics.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// A key for case- and diacritic-insensitive matching: NFKD, combining marks dropped,
/// lower-cased, runs of white space folded to one space, trimmed.
///
/// The key is derived and stored beside the name; the name as written is never overwritten.
pub fn search_key(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut last_space = true;
    for c in input.nfkd().filter(|c| !is_combining_mark(*c)) {
        if c.is_whitespace() {
            if !last_space {
                out.push(' ');
                last_space = true;
            }
            continue;
        }
        for lower in c.to_lowercase() {
            out.push(lower);
        }
        last_space = false;
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::search_key;

    #[test]
    fn folds_case_diacritics_and_spaces() {
        assert_eq!(search_key("  Umujyi  wa KIGALI "), "umujyi wa kigali");
        assert_eq!(search_key("Rusizi Ŝé"), "rusizi se");
        assert_eq!(search_key("Ｇａｓａｂｏ"), "gasabo");
        assert_eq!(search_key(""), "");
    }
}
