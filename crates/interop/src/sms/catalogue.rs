//! The SMS message catalogue: one data file per language (`data/sms/{rw,en,fr}.toml`), each a
//! table of templates with `{name}` placeholders filled from the message's values. A template
//! missing in the recipient's language falls back to English; an unknown template is an error
//! (the message fails, naming the template, rather than sending something wrong).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

const FILES: [(&str, &str); 3] = [
    (
        "data/sms/rw.toml",
        include_str!("../../../../data/sms/rw.toml"),
    ),
    (
        "data/sms/en.toml",
        include_str!("../../../../data/sms/en.toml"),
    ),
    (
        "data/sms/fr.toml",
        include_str!("../../../../data/sms/fr.toml"),
    ),
];

/// The languages messages are written in.
pub const LANGUAGES: [&str; 3] = ["rw", "en", "fr"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    language: String,
    /// The wording awaits a native speaker's review.
    #[allow(dead_code)]
    needs_review: bool,
    templates: BTreeMap<String, String>,
}

/// Templates by language.
#[derive(Debug)]
pub struct Catalogue {
    by_language: BTreeMap<String, BTreeMap<String, String>>,
}

impl Catalogue {
    /// The shipped catalogue, read once.
    pub fn embedded() -> Result<&'static Catalogue, String> {
        static CAT: OnceLock<Result<Catalogue, String>> = OnceLock::new();
        CAT.get_or_init(|| Catalogue::parse(&FILES))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Reads `(name, text)` files; errors name the file.
    pub fn parse(files: &[(&str, &str)]) -> Result<Catalogue, String> {
        let mut by_language = BTreeMap::new();
        for (name, text) in files {
            let f: File = toml::from_str(text).map_err(|e| format!("{name}: {e}"))?;
            if !LANGUAGES.contains(&f.language.as_str()) {
                return Err(format!(
                    "{name}: language '{}' is not rw, en or fr",
                    f.language
                ));
            }
            by_language.insert(f.language, f.templates);
        }
        Ok(Catalogue { by_language })
    }

    /// The text of `template` in `language` (English when that language lacks it), its
    /// placeholders filled from `params` (strings, numbers; a list is joined with commas).
    pub fn render(&self, language: &str, template: &str, params: &Value) -> Result<String, String> {
        let pick = |l: &str| self.by_language.get(l).and_then(|t| t.get(template));
        let text = pick(language)
            .or_else(|| pick("en"))
            .ok_or_else(|| format!("SMS template '{template}' is not in the catalogue"))?;
        fill(text, params).map_err(|e| format!("SMS template '{template}' ({language}): {e}"))
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Replaces each `{name}` with the value of `name`; a placeholder without a value is an error.
fn fill(text: &str, params: &Value) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| "a '{' is not closed".to_string())?;
        let name = &after[..close];
        let v = params
            .get(name)
            .ok_or_else(|| format!("no value for {{{name}}}"))?;
        out.push_str(&value_text(v));
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn every_language_has_every_english_template() {
        let c = Catalogue::embedded().unwrap();
        let en = &c.by_language["en"];
        for l in LANGUAGES {
            let t = &c.by_language[l];
            for k in en.keys() {
                assert!(t.contains_key(k), "{l} lacks {k}");
            }
        }
    }

    #[test]
    fn templates_are_filled_in_the_recipients_language() {
        let c = Catalogue::embedded().unwrap();
        let p = json!({"child": "Keza", "services": ["Penta 3", "PCV 3"]});
        let en = c.render("en", "reminder.overdue", &p).unwrap();
        assert!(
            en.starts_with("Inkingi: Keza is due for Penta 3, PCV 3."),
            "{en}"
        );
        let fr = c.render("fr", "reminder.overdue", &p).unwrap();
        assert!(fr.contains("Keza doit recevoir Penta 3, PCV 3"), "{fr}");
        let e = c.render("rw", "reminder.overdue", &json!({})).unwrap_err();
        assert!(e.contains("{child}"), "{e}");
        assert!(c.render("en", "nope", &p).unwrap_err().contains("'nope'"));
    }
}
