//! Verifications of registry people against the national ID registry: each check's outcome and
//! discrepancies, and the sweep that finds people not yet checked in their current state.
//!
//! A person needs a check when no check holds their current *subject* — national ID, names,
//! sex and birth date as one string, computed by the same SQL expression when the sweep reads
//! it and stored with the check — so a registration, an identity correction or a new national
//! ID all lead to a new check, and nothing else does.

use chrono::{DateTime, Utc};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::AreaScope;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::QueryBuilder;
use uuid::Uuid;

use crate::registry::push_scope;
use crate::shared_sql::{on_read, on_uow, Pools};
use crate::{Store, StoreError, StoreResult};

/// The verified fields of `registry_people` (aliased `p`) as one string.
const SUBJECT_SQL: &str = "p.national_id || '|' || p.given_name || '|' || p.family_name || '|' \
                           || p.sex || '|' || coalesce(p.birth_date, '')";

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// The ID registry holds the number with the same names, sex and birth date.
    Verified,
    /// It holds the number with different data: see the discrepancies.
    Mismatch,
    /// It does not know the number.
    NotFound,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Verified => "verified",
            CheckStatus::Mismatch => "mismatch",
            CheckStatus::NotFound => "not_found",
        }
    }

    pub fn parse(s: &str) -> Option<CheckStatus> {
        match s {
            "verified" => Some(CheckStatus::Verified),
            "mismatch" => Some(CheckStatus::Mismatch),
            "not_found" => Some(CheckStatus::NotFound),
            _ => None,
        }
    }
}

/// A field the two registries disagree on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discrepancy {
    pub field: String,
    pub registry: String,
    pub id_registry: String,
}

/// One stored check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdCheck {
    pub id: Uuid,
    pub person_id: Uuid,
    pub national_id: String,
    /// The verified fields at the time of the check (see the module documentation).
    #[serde(skip)]
    pub subject: String,
    /// Which ID registry answered (its DCI sender id).
    pub system: String,
    pub status: CheckStatus,
    pub discrepancies: Vec<Discrepancy>,
    /// The DCI message id of the request, to trace it in the ID registry's logs.
    pub message_id: String,
    pub checked_at: DateTime<Utc>,
    /// The person's current village (read with the check; not stored with it).
    pub village: Option<AreaCode>,
}

/// A person the sweep found unchecked in their current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unchecked {
    pub person_id: Uuid,
    pub subject: String,
}

/// The `id_checks` table, reached through [`Store::id_checks`].
pub struct IdChecks<'a> {
    pub(crate) store: &'a Store,
}

type CheckRow = (
    Uuid,
    Uuid,
    String,
    String,
    String,
    String,
    Json<Vec<Discrepancy>>,
    String,
    DateTime<Utc>,
    Option<String>,
);

const CHECK_COLS: &str = "c.id, c.person_id, c.national_id, c.subject, c.system, c.status, \
                          c.discrepancies, c.message_id, c.checked_at, p.village_code";

fn from_row(r: CheckRow) -> StoreResult<IdCheck> {
    let (id, person_id, national_id, subject, system, status, d, message_id, checked_at, village) =
        r;
    Ok(IdCheck {
        id,
        person_id,
        national_id,
        subject,
        system,
        status: CheckStatus::parse(&status)
            .ok_or_else(|| StoreError::Invalid(format!("id_checks.status '{status}'")))?,
        discrepancies: d.0,
        message_id,
        checked_at,
        village: village
            .map(|v| AreaCode::parse(&v))
            .transpose()
            .map_err(|e| StoreError::Invalid(format!("registry_people.village_code: {e}")))?,
    })
}

impl IdChecks<'_> {
    fn pools(&self) -> Pools {
        self.store.adapter.pools()
    }

    /// Stores a check.
    pub async fn record(&self, c: &IdCheck) -> StoreResult<()> {
        let mut uow = self.store.begin().await?;
        on_uow!(uow, |conn| {
            sqlx::query(
                "INSERT INTO id_checks (id, person_id, national_id, subject, system, status, \
                 discrepancies, message_id, checked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(c.id)
            .bind(c.person_id)
            .bind(&c.national_id)
            .bind(&c.subject)
            .bind(&c.system)
            .bind(c.status.as_str())
            .bind(Json(&c.discrepancies))
            .bind(&c.message_id)
            .bind(c.checked_at)
            .execute(conn)
            .await?;
        });
        uow.commit().await
    }

    /// A person's checks, newest first, when the person is in `scope`.
    pub async fn for_person(
        &self,
        scope: &AreaScope,
        person_id: Uuid,
    ) -> StoreResult<Vec<IdCheck>> {
        let rows: Vec<CheckRow> = on_read!(self.pools(), |p| {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {CHECK_COLS} FROM id_checks c \
                 JOIN registry_people p ON p.id = c.person_id WHERE c.person_id = "
            ));
            qb.push_bind(person_id);
            push_scope(&mut qb, "p.village_code", scope);
            qb.push(" ORDER BY c.checked_at DESC, c.id DESC");
            qb.build_query_as().fetch_all(p).await?
        });
        rows.into_iter().map(from_row).collect()
    }

    /// What a check asked for now would verify: the person's current subject and the id of
    /// their latest check; `None` when they cannot be checked (dead or without a national ID).
    /// The caller checked the person's scope.
    pub async fn verify_target(
        &self,
        person_id: Uuid,
    ) -> StoreResult<Option<(String, Option<Uuid>)>> {
        let row: Option<(String, Option<Uuid>)> = on_read!(self.pools(), |p| {
            sqlx::query_as(&format!(
                "SELECT {SUBJECT_SQL}, (SELECT c.id FROM id_checks c WHERE c.person_id = p.id \
                 ORDER BY c.checked_at DESC, c.id DESC LIMIT 1) FROM registry_people p \
                 WHERE p.id = $1 AND p.national_id IS NOT NULL AND p.died_on IS NULL"
            ))
            .bind(person_id)
            .fetch_optional(p)
            .await?
        });
        Ok(row)
    }

    /// The latest checks with `status` of people in `scope`, newest first, that are still
    /// people's current checks (a later check supersedes them).
    pub async fn current_with_status(
        &self,
        scope: &AreaScope,
        status: CheckStatus,
        limit: u32,
    ) -> StoreResult<Vec<IdCheck>> {
        let rows: Vec<CheckRow> = on_read!(self.pools(), |p| {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {CHECK_COLS} FROM id_checks c \
                 JOIN registry_people p ON p.id = c.person_id WHERE c.status = "
            ));
            qb.push_bind(status.as_str());
            qb.push(
                " AND NOT EXISTS (SELECT 1 FROM id_checks later WHERE later.person_id = \
                 c.person_id AND (later.checked_at, later.id) > (c.checked_at, c.id))",
            );
            push_scope(&mut qb, "p.village_code", scope);
            qb.push(" ORDER BY c.checked_at DESC, c.id DESC LIMIT ");
            qb.push_bind(i64::from(limit));
            qb.build_query_as().fetch_all(p).await?
        });
        rows.into_iter().map(from_row).collect()
    }

    /// The next window of the sweep: of the `window` people after `after` in id order, those
    /// alive, with a national ID, that no check holds in their current state; and where the
    /// window ended (`None` at the end of the registry). Each call reads one window by the
    /// primary key, so its cost does not grow with the registry.
    pub async fn sweep_window(&self, after: Uuid, window: u32) -> StoreResult<SweepWindow> {
        let pools = self.pools();
        let end: Option<(Uuid,)> = on_read!(&pools, |p| {
            sqlx::query_as(
                "SELECT id FROM (SELECT id FROM registry_people WHERE id > $1 ORDER BY id \
                 LIMIT $2) AS w ORDER BY id DESC LIMIT 1",
            )
            .bind(after)
            .bind(i64::from(window))
            .fetch_optional(p)
            .await?
        });
        let Some((end,)) = end else {
            return Ok(SweepWindow {
                unchecked: Vec::new(),
                next: None,
            });
        };
        let rows: Vec<(Uuid, String)> = on_read!(&pools, |p| {
            sqlx::query_as(&format!(
                "SELECT p.id, {SUBJECT_SQL} FROM registry_people p \
                 WHERE p.id > $1 AND p.id <= $2 AND p.national_id IS NOT NULL \
                 AND p.died_on IS NULL AND NOT EXISTS (SELECT 1 FROM id_checks c \
                 WHERE c.person_id = p.id AND c.subject = {SUBJECT_SQL}) ORDER BY p.id"
            ))
            .bind(after)
            .bind(end)
            .fetch_all(p)
            .await?
        });
        Ok(SweepWindow {
            unchecked: rows
                .into_iter()
                .map(|(person_id, subject)| Unchecked { person_id, subject })
                .collect(),
            next: Some(end),
        })
    }
}

/// What [`IdChecks::sweep_window`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepWindow {
    pub unchecked: Vec<Unchecked>,
    /// Where the next window starts; `None` when the registry has been walked to its end.
    pub next: Option<Uuid>,
}

impl Store {
    /// Checks against the national ID registry.
    pub fn id_checks(&self) -> IdChecks<'_> {
        IdChecks { store: self }
    }
}
