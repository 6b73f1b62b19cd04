//! Structured people queries: boolean combinations of field conditions, sorted and paged, with
//! the total count. The DCI search API translates its `expression` and `predicate` queries into
//! these; the SQL is built here once for both backends.

use sqlx::QueryBuilder;

use super::area_range;

/// A field of a person that queries may test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonField {
    NationalId,
    /// A phone number: `Eq`/`In` match any of the person's phones; order comparisons and
    /// sorting use the first.
    Phone,
    /// The registry number of the person's current household.
    RegistryNumber,
    /// As written: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`; compared as text, which orders
    /// chronologically (a year-only date sorts before every full date of that year).
    BirthDate,
    /// `F` or `M`.
    Sex,
    /// The current household's village. `Eq`/`In` take area codes of any level and match every
    /// village inside them.
    Village,
    GivenName,
    FamilyName,
    /// Membership role (`head`, `spouse`, …).
    Role,
    /// The birth registration number, as written.
    BirthRegistration,
}

impl PersonField {
    fn column(self) -> &'static str {
        match self {
            PersonField::NationalId => "national_id",
            PersonField::Phone => "phone",
            PersonField::RegistryNumber => "registry_number",
            PersonField::BirthDate => "birth_date",
            PersonField::Sex => "sex",
            PersonField::Village => "village_code",
            PersonField::GivenName => "given_name",
            PersonField::FamilyName => "family_name",
            PersonField::Role => "role",
            PersonField::BirthRegistration => "birth_registration",
        }
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Gt,
    Lt,
    Ge,
    Le,
    /// Any of the values.
    In,
}

impl CmpOp {
    fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq | CmpOp::In => " = ",
            CmpOp::Gt => " > ",
            CmpOp::Lt => " < ",
            CmpOp::Ge => " >= ",
            CmpOp::Le => " <= ",
        }
    }
}

/// `field op value(s)`; values are text as stored (the caller normalises them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub field: PersonField,
    pub op: CmpOp,
    /// One value, except for `In`.
    pub values: Vec<String>,
}

/// A boolean combination of conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonFilter {
    /// True when empty.
    All(Vec<PersonFilter>),
    /// False when empty.
    Any(Vec<PersonFilter>),
    Not(Box<PersonFilter>),
    Cond(Condition),
}

/// A sort key; ties are always broken by person id so pages are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonSort {
    pub field: PersonField,
    pub descending: bool,
}

/// People matching `filter`, sorted, one page of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeopleQuery {
    pub filter: PersonFilter,
    pub sort: Vec<PersonSort>,
    pub limit: u32,
    pub offset: u64,
    /// Most matches counted and sorted; a query matching more is refused
    /// ([`crate::StoreError::TooBroad`]). [`MAX_CANDIDATES`] unless a caller bounds it lower.
    pub max_candidates: u64,
}

/// One page and how many match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct PeoplePage<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// Appends ` AND (<filter>)` over the columns of `registry_people`.
pub(crate) fn push_filter<'a, DB>(qb: &mut QueryBuilder<'a, DB>, f: &PersonFilter)
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    qb.push(" AND (");
    push_node(qb, f);
    qb.push(")");
}

fn push_node<'a, DB>(qb: &mut QueryBuilder<'a, DB>, f: &PersonFilter)
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    match f {
        PersonFilter::All(parts) | PersonFilter::Any(parts) if parts.is_empty() => {
            qb.push(if matches!(f, PersonFilter::All(_)) {
                "TRUE"
            } else {
                "FALSE"
            });
        }
        PersonFilter::All(parts) | PersonFilter::Any(parts) => {
            let joiner = if matches!(f, PersonFilter::All(_)) {
                " AND "
            } else {
                " OR "
            };
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    qb.push(joiner);
                }
                qb.push("(");
                push_node(qb, p);
                qb.push(")");
            }
        }
        PersonFilter::Not(inner) => {
            // A NULL column makes a comparison unknown; NOT of unknown is still unknown, so
            // "not born after 2000" would drop people with no birth date. COALESCE to FALSE
            // makes NOT mean "does not match".
            qb.push("NOT COALESCE((");
            push_node(qb, inner);
            qb.push("), FALSE)");
        }
        PersonFilter::Cond(c) => push_condition(qb, c),
    }
}

fn push_condition<'a, DB>(qb: &mut QueryBuilder<'a, DB>, c: &Condition)
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    if c.values.is_empty() {
        qb.push("FALSE");
        return;
    }
    match c.field {
        PersonField::Village if matches!(c.op, CmpOp::Eq | CmpOp::In) => {
            push_area_ranges(qb, "village_code", c.values.iter().map(String::as_str));
        }
        PersonField::Phone if matches!(c.op, CmpOp::Eq | CmpOp::In) => {
            qb.push("(");
            push_comparison(qb, "phone", c);
            qb.push(" OR id IN (SELECT person_id FROM registry_people_phones WHERE ");
            push_comparison(qb, "phone", c);
            qb.push("))");
        }
        PersonField::RegistryNumber => {
            qb.push("household_id IN (SELECT id FROM registry_households WHERE ");
            push_comparison(qb, "registry_number", c);
            qb.push(")");
        }
        _ => push_comparison(qb, c.field.column(), c),
    }
}

fn push_comparison<'a, DB>(qb: &mut QueryBuilder<'a, DB>, column: &str, c: &Condition)
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    if c.op == CmpOp::In {
        qb.push(format!("{column} IN ("));
        let mut s = qb.separated(", ");
        for v in &c.values {
            s.push_bind(v.clone());
        }
        qb.push(")");
    } else {
        qb.push(column)
            .push(c.op.sql())
            .push_bind(c.values[0].clone());
    }
}

/// `(column >= lo AND column < hi) OR …`, one range per area code (at least one code). No
/// `FALSE OR` in front: SQLite's planner does not see through it, and a range written so scans
/// the whole table instead of the area index (`registry_people_area`, migration 0037).
pub(crate) fn push_area_ranges<'a, 'c, DB>(
    qb: &mut QueryBuilder<'a, DB>,
    column: &str,
    codes: impl Iterator<Item = &'c str>,
) where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    for (i, code) in codes.enumerate() {
        let (lo, hi) = area_range(code);
        if i > 0 {
            qb.push(" OR ");
        }
        qb.push(format!("({column} >= "))
            .push_bind(lo)
            .push(format!(" AND {column} < "))
            .push_bind(hi)
            .push(")");
    }
}

/// Most people a structured search examines. Counting the matches (for `total_count`) and
/// ordering them (for a page) both touch every match, so a query matching more is refused
/// ([`crate::StoreError::TooBroad`]) instead of tying up a read connection for seconds.
pub const MAX_CANDIDATES: u64 = 100_000;

/// Appends ` LIMIT <cap + 1>` to a candidates subquery: one more than the cap tells "too many".
pub(crate) fn push_candidate_limit<'a, DB>(qb: &mut QueryBuilder<'a, DB>, cap: u64)
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    qb.push(" LIMIT ")
        .push_bind(i64::try_from(cap.saturating_add(1)).unwrap_or(i64::MAX));
}

/// The count of a bounded candidates subquery, or the refusal when it reached past the cap.
pub(crate) fn within_cap(counted: i64, cap: u64) -> crate::StoreResult<u64> {
    let n = u64::try_from(counted).unwrap_or(0);
    if n > cap {
        return Err(crate::StoreError::TooBroad(format!(
            "the query matches more than {cap} people, and a search counts and sorts at most \
             {cap}: narrow it (a smaller area, a birth-date range, sex)"
        )));
    }
    Ok(n)
}

/// ` ORDER BY <keys>, id`.
pub(crate) fn push_order<DB: sqlx::Database>(qb: &mut QueryBuilder<'_, DB>, sort: &[PersonSort]) {
    qb.push(" ORDER BY ");
    for s in sort {
        let col = match s.field {
            // Sorting by the household's number would need a join per row; the household id
            // groups members of one household together just as well.
            PersonField::RegistryNumber => "household_id",
            f => f.column(),
        };
        qb.push(col)
            .push(if s.descending { " DESC, " } else { " ASC, " });
    }
    qb.push("id");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(field: PersonField, op: CmpOp, v: &[&str]) -> PersonFilter {
        PersonFilter::Cond(Condition {
            field,
            op,
            values: v.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn builds_nested_sql_with_binds() {
        let f = PersonFilter::All(vec![
            cond(PersonField::Sex, CmpOp::Eq, &["F"]),
            PersonFilter::Any(vec![
                cond(PersonField::BirthDate, CmpOp::Ge, &["2000"]),
                PersonFilter::Not(Box::new(cond(
                    PersonField::Village,
                    CmpOp::In,
                    &["11", "2"],
                ))),
            ]),
            cond(PersonField::RegistryNumber, CmpOp::In, &["HH-1", "HH-2"]),
        ]);
        let mut qb: QueryBuilder<sqlx::Postgres> = QueryBuilder::new("SELECT 1 WHERE TRUE");
        push_filter(&mut qb, &f);
        push_order(
            &mut qb,
            &[PersonSort {
                field: PersonField::BirthDate,
                descending: true,
            }],
        );
        assert_eq!(
            qb.sql(),
            "SELECT 1 WHERE TRUE AND ((sex = $1) AND ((birth_date >= $2) OR (NOT COALESCE(((village_code \
             >= $3 AND village_code < $4) OR (village_code >= $5 AND village_code < $6)), FALSE))) \
             AND (household_id IN (SELECT id FROM \
             registry_households WHERE registry_number IN ($7, $8)))) ORDER BY birth_date DESC, id"
        );
    }

    #[test]
    fn empty_combinations_are_true_and_false() {
        let mut qb: QueryBuilder<sqlx::Postgres> = QueryBuilder::new("");
        push_filter(
            &mut qb,
            &PersonFilter::All(vec![PersonFilter::All(vec![]), PersonFilter::Any(vec![])]),
        );
        assert_eq!(qb.sql(), " AND ((TRUE) AND (FALSE))");
    }
}
