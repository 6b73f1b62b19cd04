//! Reading the registry CSV files: header matching and text decoding.
//!
//! Encoding: UTF-8 with or without a byte-order mark is read as is. A cell that is not valid
//! UTF-8 is taken to be Windows-1252 (what spreadsheet programs on Windows write) and
//! transcoded; the import counts such rows and says so in its summary, so an operator knows
//! the file was not UTF-8. Windows-1252 maps every byte to a character, so no row is lost to
//! encoding; a wrongly guessed character shows up as a visible oddity in a name, not as a
//! silent truncation.

use std::collections::HashMap;

/// Characters of Windows-1252 bytes 0x80–0x9F (the rest of the code page equals Latin-1).
/// Undefined bytes (0x81, 0x8D, 0x8F, 0x90, 0x9D) map to the C1 control of the same value,
/// as the WHATWG Encoding Standard does; the name and text checks then reject them.
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{8D}', '\u{017D}', '\u{8F}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{9D}', '\u{017E}', '\u{0178}',
];

/// Decodes Windows-1252 bytes.
pub fn decode_cp1252(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9F => CP1252_HIGH[(b - 0x80) as usize],
            _ => b as char,
        })
        .collect()
}

/// One cell as text, and whether it had to be transcoded from Windows-1252.
pub fn cell_text(bytes: &[u8]) -> (String, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), false),
        Err(_) => (decode_cp1252(bytes), true),
    }
}

/// A data row: its line number in the file (the header is line 1) and its cells as text.
pub struct Row {
    pub line: u64,
    pub cells: Vec<String>,
    /// Some cell was Windows-1252, not UTF-8.
    pub transcoded: bool,
}

impl Row {
    pub fn from_record(rec: &csv::ByteRecord) -> Row {
        let line = rec.position().map_or(0, |p| p.line());
        let mut transcoded = false;
        let cells = rec
            .iter()
            .map(|c| {
                let (s, t) = cell_text(c);
                transcoded |= t;
                s
            })
            .collect();
        Row {
            line,
            cells,
            transcoded,
        }
    }

    /// The trimmed cell at `i`, empty when the row is short.
    pub fn get(&self, i: Option<usize>) -> &str {
        i.and_then(|i| self.cells.get(i)).map_or("", |s| s.trim())
    }
}

/// The columns of a file, matched by name (case-insensitive), and problems with them.
pub struct Header {
    pub names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Header {
    /// Reads header cells; strips a UTF-8 byte-order mark from the first.
    pub fn from_record(rec: &csv::ByteRecord) -> Header {
        let names: Vec<String> = rec
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let c = if i == 0 {
                    c.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(c)
                } else {
                    c
                };
                cell_text(c).0.trim().to_ascii_lowercase()
            })
            .collect();
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Header { names, index }
    }

    pub fn col(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Checks the header against the known columns: every `required` one present, no column
    /// outside `known`, none twice. Returns (missing, unknown or repeated).
    pub fn check(&self, required: &[String], known: &[String]) -> (Vec<String>, Vec<String>) {
        let missing = required
            .iter()
            .filter(|r| !self.index.contains_key(r.as_str()))
            .cloned()
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut unknown = Vec::new();
        for n in &self.names {
            if !known.contains(n) {
                unknown.push(if n.is_empty() {
                    "(empty)".into()
                } else {
                    n.clone()
                });
            } else if !seen.insert(n) {
                unknown.push(format!("{n} (repeated)"));
            }
        }
        (missing, unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_1252_is_transcoded() {
        // "Mukamaná €" in Windows-1252.
        let (s, t) = cell_text(b"Mukaman\xe1 \x80");
        assert!(t);
        assert_eq!(s, "Mukamaná €");
        let (s, t) = cell_text("Mukamaná".as_bytes());
        assert!(!t);
        assert_eq!(s, "Mukamaná");
    }

    #[test]
    fn header_strips_bom_and_reports_problems() {
        let rec = csv::ByteRecord::from(vec![&b"\xEF\xBB\xBFHousehold_Key"[..], b"village", b"x"]);
        let h = Header::from_record(&rec);
        assert_eq!(h.col("household_key"), Some(0));
        let known = vec![
            "household_key".to_string(),
            "village_code".to_string(),
            "village".into(),
        ];
        let (missing, unknown) = h.check(&["village_code".to_string()], &known);
        assert_eq!(missing, ["village_code"]);
        assert_eq!(unknown, ["x"]);
    }
}
