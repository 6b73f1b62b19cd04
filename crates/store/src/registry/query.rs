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
            qb.push("FALSE");
            for code in &c.values {
                let (lo, hi) = area_range(code);
                qb.push(" OR (village_code >= ")
                    .push_bind(lo)
                    .push(" AND village_code < ")
                    .push_bind(hi)
                    .push(")");
            }
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
            "SELECT 1 WHERE TRUE AND ((sex = $1) AND ((birth_date >= $2) OR (NOT COALESCE((FALSE \
             OR (village_code >= $3 AND village_code < $4) OR (village_code >= $5 AND \
             village_code < $6)), FALSE))) AND (household_id IN (SELECT id FROM \
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
