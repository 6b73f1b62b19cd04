//! What a linkage run is told: which input column feeds which field, how fields are compared,
//! the blocking rules, and the model's and clustering's settings. Deserialised from TOML by
//! the command line; every field has a safe default except the field list.

use serde::{Deserialize, Serialize};

use crate::LinkageError;

/// The whole configuration of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkageConfig {
    /// The fields and the input column each is read from.
    #[serde(rename = "field")]
    pub fields: Vec<FieldConfig>,
    /// Blocking rules: a pair is compared when any rule's keys agree.
    #[serde(rename = "blocking")]
    pub blocking: Vec<BlockingRule>,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub clustering: ClusteringConfig,
    #[serde(default)]
    pub constraints: ConstraintConfig,
}

/// What a field holds; decides how it is standardised and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// A person's name: name key; Jaro-Winkler levels, variant level, term-frequency adjusted.
    Name,
    /// Free text such as a street or suburb: like a name without the variant table.
    Text,
    /// The national ID: digits; exact, one typo, different. Two IDs that differ forbid a link.
    NationalId,
    /// Any other identifier compared on its digits and letters: exact, one typo, different.
    Identifier,
    /// A date of birth, `YYYY-MM-DD`, `YYYYMMDD`, `DD/MM/YYYY`, `YYYY-MM` or `YYYY`.
    Date,
    /// Sex: `m`/`male`/`1` or `f`/`female`/`2`.
    Sex,
    /// An area code of the NISR hierarchy (2, 4, 6 or 8 digits): same village > cell > sector
    /// > district.
    Area,
    /// A phone number: its last nine digits.
    Phone,
    /// A code compared exactly (e.g. a postcode): exact or different.
    Exact,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldConfig {
    /// The field's name in rules, comparisons and outputs.
    pub name: String,
    /// The input column (default: the field's name).
    #[serde(default)]
    pub column: Option<String>,
    pub kind: FieldKind,
    /// Compare this field (default true); a field may exist only for blocking or constraints.
    #[serde(default = "yes")]
    pub compare: bool,
    /// Sort name tokens before comparing (default true for names).
    #[serde(default)]
    pub sort_tokens: Option<bool>,
    /// Jaro-Winkler thresholds for names and text, highest first (default 0.95, 0.88, 0.80).
    #[serde(default)]
    pub thresholds: Option<Vec<f64>>,
    /// Adjust the exact-agreement weight by the value's frequency (default true for names).
    #[serde(default)]
    pub term_frequency: Option<bool>,
    /// Only compare this field when both people are minors (e.g. mother or guardian): the
    /// name of the date field and the reference year that decides age.
    #[serde(default)]
    pub minors_only: Option<MinorsOnly>,
    /// Names only: the other name field this one is often written in place of (given and
    /// family names swapped). Adds a "swapped" comparison level, and the `unordered` blocking
    /// transform that keys a record by both names whatever their order.
    #[serde(default)]
    pub swap_with: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinorsOnly {
    pub date_field: String,
    pub reference_year: u16,
    #[serde(default = "adult_age")]
    pub adult_age: u16,
}

fn adult_age() -> u16 {
    18
}

fn yes() -> bool {
    true
}

/// A blocking rule: all of its parts must agree. A part is `field` or `field:transform` with
/// transform `prefixN` (first N characters), `variant` (Kinyarwanda variant key), `year`
/// (the year of a date), or `tokenN` (the N-th token of a name, from 1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockingRule {
    #[serde(default)]
    pub name: Option<String>,
    pub on: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Seed of the random sample that estimates u.
    pub seed: u64,
    /// How many random pairs estimate u.
    pub u_sample_pairs: u64,
    /// Rules that almost surely mean a match; λ is estimated from the pairs they find.
    pub deterministic: Vec<BlockingRule>,
    /// The share of true matches the deterministic rules are believed to find.
    pub deterministic_recall: f64,
    /// EM stops after this many iterations or when no parameter moves more than `em_tolerance`.
    pub em_max_iterations: u32,
    pub em_tolerance: f64,
    /// A block with more candidate pairs than this is skipped and reported.
    pub max_block_pairs: u64,
    /// EM reads the comparison patterns of at most about this many candidate pairs, a seeded
    /// random sample when blocking makes more: the shares of patterns are what EM needs, and
    /// past tens of millions of pairs more of them change nothing but the time.
    pub em_sample_pairs: u64,
    /// Train m in one EM session per blocking rule, as Splink does, instead of one EM over all
    /// candidate pairs: each session reads the pairs of one rule's blocks, leaves out the
    /// fields that rule makes agree, holds u at the random-sample values and starts λ from
    /// the deterministic rules; a field's m is the plain mean over the sessions that
    /// estimated it. Pooled EM mistakes what blocking guarantees (the same given name in the
    /// same cell) for what matches share once the blocks hold many more non-matches than
    /// matches; sessions do not.
    pub em_sessions: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            seed: 42,
            u_sample_pairs: 2_000_000,
            deterministic: Vec::new(),
            deterministic_recall: 0.8,
            em_max_iterations: 100,
            em_tolerance: 1e-6,
            max_block_pairs: 5_000_000,
            em_sample_pairs: 20_000_000,
            em_sessions: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusteringConfig {
    /// Pairs with at least this match probability are linked automatically.
    pub auto_link: f64,
    /// Pairs from here up to `auto_link` go to review; lower pairs are dropped.
    pub review: f64,
    /// Link mode only: each record links to at most one of the other side (best first).
    pub one_to_one: bool,
}

impl Default for ClusteringConfig {
    fn default() -> Self {
        ClusteringConfig {
            auto_link: 0.95,
            review: 0.5,
            one_to_one: false,
        }
    }
}

/// Cannot-link constraints beyond the national ID (which is always one).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstraintConfig {
    /// Twins: same mother and same full birth date but different given names are two people.
    #[serde(default)]
    pub twins: Option<TwinsRule>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwinsRule {
    pub mother: String,
    pub date_of_birth: String,
    pub given_name: String,
}

impl LinkageConfig {
    /// Checks what serde cannot: names refer to fields, thresholds are ordered, and so on.
    pub fn validate(&self) -> Result<(), LinkageError> {
        let bad = |what: String| Err(LinkageError::Config(what));
        if self.fields.is_empty() {
            return bad("no [[field]] is configured".into());
        }
        let mut seen = std::collections::HashSet::new();
        for f in &self.fields {
            if !seen.insert(f.name.as_str()) {
                return bad(format!("field {:?} is configured twice", f.name));
            }
            if let Some(t) = &f.thresholds {
                if t.is_empty()
                    || t.windows(2).any(|w| w[0] <= w[1])
                    || t.iter().any(|x| !(0.0..=1.0).contains(x))
                {
                    return bad(format!(
                        "field {:?}: thresholds must be between 0 and 1, highest first",
                        f.name
                    ));
                }
            }
            if let Some(other) = &f.swap_with {
                let partner = self.field(other).map(|o| o.kind);
                if f.kind != FieldKind::Name || partner != Some(FieldKind::Name) || other == &f.name
                {
                    return bad(format!(
                        "field {:?}: swap_with {other:?} must name another name field, on a name field",
                        f.name
                    ));
                }
            }
            if let Some(m) = &f.minors_only {
                if self.field(&m.date_field).map(|d| d.kind) != Some(FieldKind::Date) {
                    return bad(format!(
                        "field {:?}: minors_only.date_field {:?} is not a date field",
                        f.name, m.date_field
                    ));
                }
            }
        }
        if !self.fields.iter().any(|f| f.compare) {
            return bad("no field is compared".into());
        }
        if self.blocking.is_empty() {
            return bad("no [[blocking]] rule is configured".into());
        }
        let c = &self.clustering;
        if !(0.0 < c.review && c.review <= c.auto_link && c.auto_link < 1.0) {
            return bad("clustering: need 0 < review <= auto_link < 1".into());
        }
        let m = &self.model;
        if !(m.deterministic_recall > 0.0 && m.deterministic_recall <= 1.0) {
            return bad("model.deterministic_recall must be in (0, 1]".into());
        }
        if m.u_sample_pairs == 0 || m.max_block_pairs == 0 || m.em_sample_pairs == 0 {
            return bad(
                "model.u_sample_pairs, model.max_block_pairs and model.em_sample_pairs must be more than 0"
                    .into(),
            );
        }
        if m.em_sessions && m.deterministic.is_empty() {
            return bad(
                "model.em_sessions needs model.deterministic rules: λ comes from them".into(),
            );
        }
        if let Some(t) = &self.constraints.twins {
            for name in [&t.mother, &t.date_of_birth, &t.given_name] {
                if self.field(name).is_none() {
                    return bad(format!("constraints.twins names an unknown field {name:?}"));
                }
            }
        }
        Ok(())
    }

    pub fn field(&self, name: &str) -> Option<&FieldConfig> {
        self.fields.iter().find(|f| f.name == name)
    }
}

impl FieldConfig {
    pub fn column(&self) -> &str {
        self.column.as_deref().unwrap_or(&self.name)
    }
}
