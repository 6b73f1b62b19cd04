//! Validation of one CSV row with the domain types, and of a household with its members.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use inkingi_domain::areas::AreaCode;
use inkingi_domain::registry::form::{FormSchema, Question, Section};
use inkingi_domain::registry::model::{person_consistency, MAX_ADDRESS_CHARS};
use inkingi_domain::registry::{
    BirthDate, Gps, HouseholdInput, MemberRole, Name, NationalId, PersonInput, PhoneNumber,
    RegistryNumber, Sex,
};
use serde_json::Map;

use super::csv_in::{Header, Row};
use super::RowError;

/// Longest cell accepted in any column, in bytes: far above every legitimate value (names are
/// at most 100 characters, free text 2,000), so a runaway cell is refused before it is parsed.
pub const MAX_CELL_BYTES: usize = 4096;
/// Longest household or member key.
pub const MAX_KEY_CHARS: usize = 64;
/// Youngest plausible household head (child-headed households exist from about this age).
const MIN_HEAD_AGE: i32 = 10;
/// Youngest plausible parent.
const MIN_PARENT_GAP_YEARS: i32 = 10;

pub const HOUSEHOLD_COLUMNS: &[&str] = &[
    "household_key",
    "registry_number",
    "village_code",
    "address",
    "gps_lat",
    "gps_lon",
];
pub const HOUSEHOLD_REQUIRED: &[&str] = &["household_key", "village_code"];
pub const MEMBER_COLUMNS: &[&str] = &[
    "household_key",
    "member_key",
    "role",
    "given_name",
    "family_name",
    "sex",
    "birth_date",
    "national_id",
    "birth_registration",
    "refugee_id",
    "passport",
    "phones",
    "mother_key",
    "father_key",
    "guardian_key",
];
pub const MEMBER_REQUIRED: &[&str] = &[
    "household_key",
    "member_key",
    "role",
    "given_name",
    "family_name",
    "sex",
];

/// The `q_<key>` columns of a section.
pub fn question_columns(form: &FormSchema, section: Section) -> Vec<String> {
    form.questions(section)
        .iter()
        .map(|q| format!("q_{}", q.key))
        .collect()
}

/// Columns that must be present: the fixed required ones and the questions that are always
/// asked and required.
pub fn required_columns(form: &FormSchema, section: Section) -> Vec<String> {
    let fixed = match section {
        Section::Household => HOUSEHOLD_REQUIRED,
        Section::Member => MEMBER_REQUIRED,
    };
    fixed
        .iter()
        .map(|s| s.to_string())
        .chain(
            form.questions(section)
                .iter()
                .filter(|q| q.required && q.when.is_none())
                .map(|q| format!("q_{}", q.key)),
        )
        .collect()
}

pub fn known_columns(form: &FormSchema, section: Section) -> Vec<String> {
    let fixed = match section {
        Section::Household => HOUSEHOLD_COLUMNS,
        Section::Member => MEMBER_COLUMNS,
    };
    fixed
        .iter()
        .map(|s| s.to_string())
        .chain(question_columns(form, section))
        .collect()
}

/// Column positions of one file, resolved once from its header.
pub struct Columns {
    fixed: HashMap<&'static str, usize>,
    questions: Vec<(usize, Question)>,
}

impl Columns {
    pub fn new(header: &Header, form: &FormSchema, section: Section) -> Columns {
        let names = match section {
            Section::Household => HOUSEHOLD_COLUMNS,
            Section::Member => MEMBER_COLUMNS,
        };
        let fixed = names
            .iter()
            .filter_map(|n| header.col(n).map(|i| (*n, i)))
            .collect();
        let questions = form
            .questions(section)
            .iter()
            .filter_map(|q| header.col(&format!("q_{}", q.key)).map(|i| (i, q.clone())))
            .collect();
        Columns { fixed, questions }
    }

    fn at<'r>(&self, row: &'r Row, name: &str) -> &'r str {
        row.get(self.fixed.get(name).copied())
    }
}

/// Collects the errors of one row.
pub struct RowCheck<'a> {
    pub file: &'static str,
    pub row: &'a Row,
    pub errors: Vec<RowError>,
}

impl<'a> RowCheck<'a> {
    pub fn new(file: &'static str, row: &'a Row) -> Self {
        let mut c = RowCheck {
            file,
            row,
            errors: Vec::new(),
        };
        c.oversized_cells();
        c
    }

    pub fn fail(&mut self, column: &str, value: &str, reason: impl Into<String>) {
        self.errors.push(RowError {
            file: self.file,
            line: self.row.line,
            column: column.to_string(),
            value: value.chars().take(100).collect(),
            reason: reason.into(),
        });
    }

    fn oversized_cells(&mut self) {
        let long: Vec<usize> = (0..self.row.cells.len())
            .filter(|&i| self.row.cells[i].len() > MAX_CELL_BYTES)
            .collect();
        for i in long {
            let value = self.row.cells[i].clone();
            self.fail(
                &format!("#{}", i + 1),
                &value,
                format!("cell is longer than {MAX_CELL_BYTES} bytes"),
            );
        }
    }

    /// Parses a non-empty cell; records the error and returns None on failure.
    fn parse<T, E: std::fmt::Display>(
        &mut self,
        column: &str,
        value: &str,
        f: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        if value.is_empty() {
            return None;
        }
        match f(value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(column, value, e.to_string());
                None
            }
        }
    }

    fn key(&mut self, column: &str, value: &str) -> Option<String> {
        if value.is_empty() {
            self.fail(column, value, "is required");
            return None;
        }
        let ok = value.chars().count() <= MAX_KEY_CHARS
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c));
        if !ok {
            self.fail(
                column,
                value,
                format!(
                    "must be 1 to {MAX_KEY_CHARS} characters of A-Z, a-z, 0-9, '.', '_', ':', '-'"
                ),
            );
            return None;
        }
        Some(value.to_string())
    }

    fn answers(
        &mut self,
        cols: &Columns,
        form: &FormSchema,
        section: Section,
    ) -> Map<String, serde_json::Value> {
        let mut answers = Map::new();
        let mut bad = HashSet::new();
        for (i, q) in &cols.questions {
            let text = self.row.get(Some(*i));
            match FormSchema::parse_text(q, text) {
                Ok(Some(v)) => {
                    answers.insert(q.key.clone(), v);
                }
                Ok(None) => {}
                Err(reason) => {
                    bad.insert(q.key.clone());
                    self.fail(&format!("q_{}", q.key), text, reason);
                }
            }
        }
        for e in form.validate(section, &answers) {
            if !bad.contains(&e.field) {
                let value = self.row.get(
                    cols.questions
                        .iter()
                        .find(|(_, q)| q.key == e.field)
                        .map(|(i, _)| *i),
                );
                let value = value.to_string();
                self.fail(&format!("q_{}", e.field), &value, e.reason);
            }
        }
        answers
    }
}

/// A household row, validated on its own.
pub struct HouseholdRow {
    pub line: u64,
    pub key: String,
    pub registry_number: Option<RegistryNumber>,
    pub input: HouseholdInput,
}

/// Validates a households.csv row. `villages` holds every village code of the area table.
pub fn household_row(
    row: &Row,
    cols: &Columns,
    form: &FormSchema,
    villages: &HashSet<String>,
) -> (Option<String>, Result<HouseholdRow, Vec<RowError>>) {
    let mut c = RowCheck::new("households.csv", row);
    let key = c.key("household_key", cols.at(row, "household_key"));
    let number_text = cols.at(row, "registry_number");
    let registry_number = c.parse("registry_number", number_text, RegistryNumber::parse);
    let village_text = cols.at(row, "village_code");
    let village = if village_text.is_empty() {
        c.fail("village_code", "", "is required");
        None
    } else {
        match AreaCode::parse(village_text) {
            Ok(code) if villages.contains(code.as_str()) => Some(code),
            Ok(_) => {
                c.fail(
                    "village_code",
                    village_text,
                    "no such village in the area table (NISR 8-digit village codes)",
                );
                None
            }
            Err(e) => {
                c.fail("village_code", village_text, e.to_string());
                None
            }
        }
    };
    let address = cols.at(row, "address");
    if address.chars().count() > MAX_ADDRESS_CHARS || address.chars().any(char::is_control) {
        c.fail(
            "address",
            address,
            format!("must be at most {MAX_ADDRESS_CHARS} characters without control characters"),
        );
    }
    let gps = gps(&mut c, cols.at(row, "gps_lat"), cols.at(row, "gps_lon"));
    let answers = c.answers(cols, form, Section::Household);
    match (c.errors.is_empty(), key.clone(), village) {
        (true, Some(key), Some(village)) => (
            Some(key.clone()),
            Ok(HouseholdRow {
                line: row.line,
                key,
                registry_number,
                input: HouseholdInput {
                    village,
                    address: (!address.is_empty()).then(|| address.to_string()),
                    gps,
                    answers,
                },
            }),
        ),
        _ => (key, Err(c.errors)),
    }
}

fn gps(c: &mut RowCheck, lat: &str, lon: &str) -> Option<Gps> {
    if lat.is_empty() && lon.is_empty() {
        return None;
    }
    let num = |s: &str| s.parse::<f64>().ok().filter(|f| f.is_finite());
    match (num(lat), num(lon)) {
        (Some(a), Some(b)) => match Gps::new(a, b) {
            Ok(g) => Some(g),
            Err(e) => {
                c.fail("gps_lat", &format!("{lat},{lon}"), e.to_string());
                None
            }
        },
        _ => {
            c.fail(
                "gps_lat",
                &format!("{lat},{lon}"),
                "gps_lat and gps_lon must both be decimal degrees, or both empty",
            );
            None
        }
    }
}

/// A member row, validated on its own.
pub struct MemberRow {
    pub line: u64,
    pub key: String,
    pub role: MemberRole,
    pub person: PersonInput,
    pub mother_key: Option<String>,
    pub father_key: Option<String>,
    pub guardian_key: Option<String>,
}

/// The household key of a members.csv row, as written (grouping happens before validation).
pub fn member_household_key<'r>(row: &'r Row, cols: &Columns) -> &'r str {
    cols.at(row, "household_key")
}

pub fn member_row(
    row: &Row,
    cols: &Columns,
    form: &FormSchema,
    today: NaiveDate,
) -> Result<MemberRow, Vec<RowError>> {
    let mut c = RowCheck::new("members.csv", row);
    let key = c.key("member_key", cols.at(row, "member_key"));
    let role_text = cols.at(row, "role");
    let role = required(&mut c, "role", role_text, |s| s.parse::<MemberRole>());
    let given = required(
        &mut c,
        "given_name",
        cols.at(row, "given_name"),
        Name::parse,
    );
    let family = required(
        &mut c,
        "family_name",
        cols.at(row, "family_name"),
        Name::parse,
    );
    let sex = required(&mut c, "sex", cols.at(row, "sex"), |s| s.parse::<Sex>());
    let birth_date = c.parse("birth_date", cols.at(row, "birth_date"), |s| {
        BirthDate::parse_on(s, today)
    });
    let national_id = c.parse(
        "national_id",
        cols.at(row, "national_id"),
        NationalId::parse,
    );
    let phones = phones(&mut c, cols.at(row, "phones"));
    let relation = |c: &mut RowCheck, col: &str| {
        let v = cols.at(row, col);
        (!v.is_empty()).then(|| c.key(col, v)).flatten()
    };
    let mother_key = relation(&mut c, "mother_key");
    let father_key = relation(&mut c, "father_key");
    let guardian_key = relation(&mut c, "guardian_key");
    let text = |col: &str| {
        Some(cols.at(row, col))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let answers = c.answers(cols, form, Section::Member);
    let (Some(key), Some(role), Some(given), Some(family), Some(sex)) =
        (key, role, given, family, sex)
    else {
        return Err(c.errors);
    };
    let person = PersonInput {
        given_name: given,
        family_name: family,
        sex,
        birth_date,
        national_id,
        birth_registration: text("birth_registration"),
        refugee_id: text("refugee_id"),
        passport: text("passport"),
        phones,
        answers,
    };
    for (field, reason) in person_consistency(&person, today) {
        let value = cols.at(row, field).to_string();
        c.fail(field, &value, reason);
    }
    if role == MemberRole::Head {
        if let Some(b) = &person.birth_date {
            if b.age_on(today) < MIN_HEAD_AGE {
                let value = b.to_string();
                c.fail(
                    "birth_date",
                    &value,
                    format!("a household head must be at least {MIN_HEAD_AGE} years old"),
                );
            }
        }
    }
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    Ok(MemberRow {
        line: row.line,
        key,
        role,
        person,
        mother_key,
        father_key,
        guardian_key,
    })
}

fn required<T, E: std::fmt::Display>(
    c: &mut RowCheck,
    column: &str,
    value: &str,
    f: impl FnOnce(&str) -> Result<T, E>,
) -> Option<T> {
    if value.is_empty() {
        c.fail(column, value, "is required");
        return None;
    }
    c.parse(column, value, f)
}

fn phones(c: &mut RowCheck, text: &str) -> Vec<PhoneNumber> {
    let mut out: Vec<PhoneNumber> = Vec::new();
    for part in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        match PhoneNumber::parse(part) {
            Ok(p) if !out.contains(&p) => out.push(p),
            Ok(_) => {}
            Err(e) => c.fail("phones", part, e.to_string()),
        }
    }
    out
}

/// Checks a household's members together: exactly one head, unique member keys, and
/// mother/father/guardian keys that name another member of the same household of a plausible
/// sex and age. Returns the errors against members.csv rows.
pub fn household_members(household_line: u64, members: &[MemberRow]) -> Vec<RowError> {
    let mut errors = Vec::new();
    let err = |line: u64, column: &str, value: &str, reason: String| RowError {
        file: "members.csv",
        line,
        column: column.into(),
        value: value.into(),
        reason,
    };
    if let Err(reason) =
        inkingi_domain::registry::model::check_one_head(members.iter().map(|m| &m.role))
    {
        let line = members.first().map_or(household_line, |m| m.line);
        let heads: Vec<&str> = members
            .iter()
            .filter(|m| m.role == MemberRole::Head)
            .map(|m| m.key.as_str())
            .collect();
        errors.push(err(line, "role", &heads.join(";"), reason));
    }
    let mut index: HashMap<&str, &MemberRow> = HashMap::new();
    for m in members {
        if index.insert(m.key.as_str(), m).is_some() {
            errors.push(err(
                m.line,
                "member_key",
                &m.key,
                "appears twice in this household".into(),
            ));
        }
    }
    for m in members {
        for (col, key, sex) in [
            ("mother_key", &m.mother_key, Some(Sex::Female)),
            ("father_key", &m.father_key, Some(Sex::Male)),
            ("guardian_key", &m.guardian_key, None),
        ] {
            let Some(key) = key else { continue };
            let Some(parent) = index.get(key.as_str()) else {
                errors.push(err(
                    m.line,
                    col,
                    key,
                    "is not a member_key of the same household".into(),
                ));
                continue;
            };
            if parent.key == m.key {
                errors.push(err(
                    m.line,
                    col,
                    key,
                    "a person cannot be their own relative".into(),
                ));
            } else if sex.is_some_and(|s| s != parent.person.sex) {
                errors.push(err(
                    m.line,
                    col,
                    key,
                    format!(
                        "the {} must be of sex {}",
                        &col[..6],
                        sex.map_or("", |s| s.as_str())
                    ),
                ));
            } else if col != "guardian_key" {
                if let (Some(pb), Some(cb)) = (&parent.person.birth_date, &m.person.birth_date) {
                    if cb.year() - pb.year() < MIN_PARENT_GAP_YEARS {
                        errors.push(err(
                            m.line,
                            col,
                            key,
                            format!(
                                "a parent born {pb} cannot have a child born {cb} (impossible age)"
                            ),
                        ));
                    }
                }
            }
        }
    }
    errors
}
