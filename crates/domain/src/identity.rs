//! Identity and access: who a principal is (role), what the role may do (permissions), where it
//! may look (area scope) and why it reads personal data (purpose of use).
//!
//! The permission table is data in code ([`PERMISSIONS`]) so it can be read, reviewed and tested
//! as a whole rather than hunted for in handlers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::areas::{AreaCode, AreaLevel, InvalidAreaCode};

/// What a principal is allowed to do, by job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    SystemAdmin,
    NationalOfficer,
    DistrictOfficer,
    SectorOfficer,
    /// Registers households at cell or village level.
    Enumerator,
    ProgrammeManager,
    /// Approves payment cycles and records payments; sets up no programme and enrols no one.
    FinanceOfficer,
    GrievanceOfficer,
    HealthWorker,
    CommunityHealthWorker,
    /// NGOs and UN agencies: aggregates and the support they record.
    Partner,
    /// Reads the audit log within its scope; nothing else.
    Auditor,
    /// Another system calling the API with a token.
    MachineClient,
}

impl Role {
    pub const ALL: [Role; 13] = [
        Role::SystemAdmin,
        Role::NationalOfficer,
        Role::DistrictOfficer,
        Role::SectorOfficer,
        Role::Enumerator,
        Role::ProgrammeManager,
        Role::FinanceOfficer,
        Role::GrievanceOfficer,
        Role::HealthWorker,
        Role::CommunityHealthWorker,
        Role::Partner,
        Role::Auditor,
        Role::MachineClient,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::SystemAdmin => "system_admin",
            Role::NationalOfficer => "national_officer",
            Role::DistrictOfficer => "district_officer",
            Role::SectorOfficer => "sector_officer",
            Role::Enumerator => "enumerator",
            Role::ProgrammeManager => "programme_manager",
            Role::FinanceOfficer => "finance_officer",
            Role::GrievanceOfficer => "grievance_officer",
            Role::HealthWorker => "health_worker",
            Role::CommunityHealthWorker => "community_health_worker",
            Role::Partner => "partner",
            Role::Auditor => "auditor",
            Role::MachineClient => "machine_client",
        }
    }

    /// The widest area level this role may be scoped to; `None` means it may be national.
    /// An officer of a district is scoped to that district, not to its province.
    pub const fn widest_level(self) -> Option<AreaLevel> {
        match self {
            Role::DistrictOfficer | Role::HealthWorker => Some(AreaLevel::District),
            Role::SectorOfficer => Some(AreaLevel::Sector),
            Role::Enumerator | Role::CommunityHealthWorker => Some(AreaLevel::Cell),
            Role::SystemAdmin
            | Role::NationalOfficer
            | Role::ProgrammeManager
            | Role::FinanceOfficer
            | Role::GrievanceOfficer
            | Role::Partner
            | Role::Auditor
            | Role::MachineClient => None,
        }
    }

    /// Whether the role signs in through the web login (machine clients use tokens only).
    pub const fn may_sign_in(self) -> bool {
        !matches!(self, Role::MachineClient)
    }

    /// Checks that `scope` is one this role may hold.
    pub fn check_scope(self, scope: &AreaScope) -> Result<(), ScopeNotAllowed> {
        let Some(widest) = self.widest_level() else {
            return Ok(());
        };
        let too_wide = match &scope.0 {
            ScopeInner::National => Some("national".to_string()),
            ScopeInner::Areas(codes) => codes
                .iter()
                .find(|c| c.level() < widest)
                .map(|c| format!("{c} ({})", c.level())),
        };
        match too_wide {
            None => Ok(()),
            Some(area) => Err(ScopeNotAllowed {
                role: self,
                area,
                widest,
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role {role} may not be scoped to {area}: its widest area is a {widest}")]
pub struct ScopeNotAllowed {
    pub role: Role,
    pub area: String,
    pub widest: AreaLevel,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role '{0}': expected one of {names}", names = role_names())]
pub struct UnknownRole(pub String);

fn role_names() -> String {
    Role::ALL.map(Role::as_str).join(", ")
}

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().replace('-', "_");
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(&wanted))
            .ok_or_else(|| UnknownRole(s.chars().take(40).collect()))
    }
}

/// Something a handler may require of a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    ManageUsers,
    ManageTokens,
    ReadAudit,
    ReadPersonalData,
    WritePersonalData,
    ApproveChanges,
    ReadAggregates,
    ManageProgrammes,
    HandleGrievances,
    ReadHealthData,
    RecordHealthData,
    RecordPartnerSupport,
    /// Propose a change to the registry (a change request) for an approver to decide.
    SubmitChangeRequests,
    /// Publish new versions of the questionnaire.
    ManageForms,
    /// See payment cycles, their entitlements and payment lists, and record payment statuses.
    ManagePayments,
    /// Take the last step of a payment cycle (approve it for payment). Kept apart from
    /// `ManageProgrammes` so that the people who choose beneficiaries are not the ones who
    /// release the money (separation of duties, as in public finance practice).
    ApprovePayments,
}

/// The token scope a permission needs when the principal is an API token (see [`TokenScope`]).
impl Permission {
    pub const fn token_scope(self) -> TokenScope {
        match self {
            Permission::ManageUsers | Permission::ManageTokens | Permission::ManageForms => {
                TokenScope::Admin
            }
            Permission::ReadAudit => TokenScope::Audit,
            Permission::ReadPersonalData
            | Permission::ReadAggregates
            | Permission::ReadHealthData => TokenScope::Read,
            Permission::WritePersonalData
            | Permission::ApproveChanges
            | Permission::ManageProgrammes
            | Permission::ManagePayments
            | Permission::ApprovePayments
            | Permission::HandleGrievances
            | Permission::RecordHealthData
            | Permission::RecordPartnerSupport
            | Permission::SubmitChangeRequests => TokenScope::Write,
        }
    }
}

use Permission as P;

/// Who may do what. Scope is checked separately: a permission here is always "within the
/// principal's areas".
pub const PERMISSIONS: &[(Role, &[Permission])] = &[
    (
        Role::SystemAdmin,
        &[
            P::ManageUsers,
            P::ManageTokens,
            P::ReadAudit,
            P::ReadAggregates,
            P::ManageForms,
        ],
    ),
    (
        Role::NationalOfficer,
        &[
            P::SubmitChangeRequests,
            P::ReadPersonalData,
            P::WritePersonalData,
            P::ApproveChanges,
            P::ReadAggregates,
            P::ManageForms,
        ],
    ),
    (
        Role::DistrictOfficer,
        &[
            P::SubmitChangeRequests,
            P::ReadPersonalData,
            P::WritePersonalData,
            P::ApproveChanges,
            P::ReadAggregates,
        ],
    ),
    (
        Role::SectorOfficer,
        &[
            P::SubmitChangeRequests,
            P::ReadPersonalData,
            P::WritePersonalData,
            P::ApproveChanges,
            P::ReadAggregates,
        ],
    ),
    (
        Role::Enumerator,
        &[
            P::SubmitChangeRequests,
            P::ReadPersonalData,
            P::WritePersonalData,
        ],
    ),
    (
        Role::ProgrammeManager,
        &[
            P::ReadPersonalData,
            P::ManageProgrammes,
            P::ManagePayments,
            P::ReadAggregates,
        ],
    ),
    (
        Role::FinanceOfficer,
        &[
            P::ReadPersonalData,
            P::ManagePayments,
            P::ApprovePayments,
            P::ReadAggregates,
        ],
    ),
    (
        Role::GrievanceOfficer,
        &[
            P::SubmitChangeRequests,
            P::ReadPersonalData,
            P::HandleGrievances,
            P::ReadAggregates,
        ],
    ),
    (
        Role::HealthWorker,
        &[
            P::SubmitChangeRequests,
            P::ReadPersonalData,
            P::ReadHealthData,
            P::RecordHealthData,
            P::ReadAggregates,
        ],
    ),
    (
        Role::CommunityHealthWorker,
        &[
            P::SubmitChangeRequests,
            P::ReadPersonalData,
            P::ReadHealthData,
            P::RecordHealthData,
        ],
    ),
    (
        Role::Partner,
        &[
            P::ReadAggregates,
            P::RecordPartnerSupport,
            P::SubmitChangeRequests,
        ],
    ),
    (Role::Auditor, &[P::ReadAudit]),
    (
        Role::MachineClient,
        &[P::ReadPersonalData, P::ReadAggregates],
    ),
];

/// Whether `role` has `permission` (anywhere in its scope).
pub fn may(role: Role, permission: Permission) -> bool {
    PERMISSIONS
        .iter()
        .find(|(r, _)| *r == role)
        .is_some_and(|(_, perms)| perms.contains(&permission))
}

/// The areas a principal may see: the whole country, or a set of areas each including everything
/// below it. Built only through [`AreaScope::national`] and [`AreaScope::areas`], which drop codes
/// already covered by another (so `11` and `1101` is just `11`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AreaScope(ScopeInner);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ScopeInner {
    National,
    Areas(BTreeSet<AreaCode>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidScope {
    #[error("an area scope needs at least one area code, or 'national'")]
    Empty,
    #[error(transparent)]
    Code(#[from] InvalidAreaCode),
}

impl AreaScope {
    pub fn national() -> AreaScope {
        AreaScope(ScopeInner::National)
    }

    pub fn areas(codes: impl IntoIterator<Item = AreaCode>) -> Result<AreaScope, InvalidScope> {
        let all: BTreeSet<AreaCode> = codes.into_iter().collect();
        // Sorted order puts an ancestor before its descendants, so one pass drops covered codes.
        let mut kept: BTreeSet<AreaCode> = BTreeSet::new();
        for code in all {
            if !kept.iter().any(|k| k.contains(&code)) {
                kept.insert(code);
            }
        }
        if kept.is_empty() {
            return Err(InvalidScope::Empty);
        }
        Ok(AreaScope(ScopeInner::Areas(kept)))
    }

    /// Parses the stored form: `national`, or area codes separated by spaces or commas.
    pub fn parse(input: &str) -> Result<AreaScope, InvalidScope> {
        let s = input.trim();
        if s.eq_ignore_ascii_case("national") || s == "*" {
            return Ok(AreaScope::national());
        }
        let codes = s
            .split([' ', ','])
            .filter(|p| !p.is_empty())
            .map(AreaCode::parse)
            .collect::<Result<Vec<_>, _>>()?;
        AreaScope::areas(codes)
    }

    pub fn is_national(&self) -> bool {
        matches!(self.0, ScopeInner::National)
    }

    /// The top areas of the scope; empty for a national scope.
    pub fn codes(&self) -> Vec<&AreaCode> {
        match &self.0 {
            ScopeInner::National => Vec::new(),
            ScopeInner::Areas(c) => c.iter().collect(),
        }
    }

    /// Whether the area `code` lies within the scope.
    pub fn contains(&self, code: &AreaCode) -> bool {
        match &self.0 {
            ScopeInner::National => true,
            ScopeInner::Areas(c) => c.iter().any(|top| top.contains(code)),
        }
    }

    /// Whether everything in `other` lies within this scope (a token may only narrow its user's).
    pub fn covers(&self, other: &AreaScope) -> bool {
        match &other.0 {
            ScopeInner::National => self.is_national(),
            ScopeInner::Areas(c) => c.iter().all(|code| self.contains(code)),
        }
    }

    /// The stored and displayed form, read back by [`AreaScope::parse`].
    pub fn to_stored(&self) -> String {
        match &self.0 {
            ScopeInner::National => "national".into(),
            ScopeInner::Areas(c) => c.iter().map(AreaCode::as_str).collect::<Vec<_>>().join(" "),
        }
    }
}

impl fmt::Display for AreaScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.to_stored())
    }
}

/// A login name: 3–64 characters, lower-case ASCII letters, digits, `.`, `_` or `-`, starting
/// with a letter. Input is lower-cased, so `Alice` and `alice` are one user.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid username '{0}': use 3 to 64 letters, digits, '.', '_' or '-', starting with a letter"
)]
pub struct InvalidUsername(pub String);

impl Username {
    pub fn parse(input: &str) -> Result<Username, InvalidUsername> {
        let s = input.trim().to_ascii_lowercase();
        let ok = (3..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if ok {
            Ok(Username(s))
        } else {
            Err(InvalidUsername(input.chars().take(64).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl FromStr for Username {
    type Err = InvalidUsername;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Username::parse(s)
    }
}

/// Why personal data is read. Declared with each API read (`X-Purpose-Of-Use` or a token's
/// `purpose:` scope) and recorded in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    Registration,
    CaseManagement,
    ProgrammeAdministration,
    GrievanceRedress,
    Healthcare,
    ChildProtection,
    Statistics,
    Audit,
    SystemSupport,
}

impl Purpose {
    pub const ALL: [Purpose; 9] = [
        Purpose::Registration,
        Purpose::CaseManagement,
        Purpose::ProgrammeAdministration,
        Purpose::GrievanceRedress,
        Purpose::Healthcare,
        Purpose::ChildProtection,
        Purpose::Statistics,
        Purpose::Audit,
        Purpose::SystemSupport,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Purpose::Registration => "registration",
            Purpose::CaseManagement => "case-management",
            Purpose::ProgrammeAdministration => "programme-administration",
            Purpose::GrievanceRedress => "grievance-redress",
            Purpose::Healthcare => "healthcare",
            Purpose::ChildProtection => "child-protection",
            Purpose::Statistics => "statistics",
            Purpose::Audit => "audit",
            Purpose::SystemSupport => "system-support",
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown purpose of use '{0}': expected one of {names}", names = purpose_names())]
pub struct UnknownPurpose(pub String);

fn purpose_names() -> String {
    Purpose::ALL.map(Purpose::as_str).join(", ")
}

impl FromStr for Purpose {
    type Err = UnknownPurpose;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().replace('_', "-");
        Purpose::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(&wanted))
            .ok_or_else(|| UnknownPurpose(s.chars().take(40).collect()))
    }
}

/// Which purposes each role may declare. Starts from [`PurposePolicy::default`]; deployments
/// replace a role's list in configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposePolicy {
    allowed: BTreeMap<Role, BTreeSet<Purpose>>,
}

impl Default for PurposePolicy {
    fn default() -> Self {
        use Purpose as U;
        let table: &[(Role, &[Purpose])] = &[
            (Role::SystemAdmin, &[U::SystemSupport, U::Audit]),
            (
                Role::NationalOfficer,
                &[U::Registration, U::CaseManagement, U::Statistics],
            ),
            (Role::DistrictOfficer, &[U::Registration, U::CaseManagement]),
            (Role::SectorOfficer, &[U::Registration, U::CaseManagement]),
            (Role::Enumerator, &[U::Registration]),
            (
                Role::ProgrammeManager,
                &[U::ProgrammeAdministration, U::Statistics],
            ),
            // Paying beneficiaries is part of administering the programme.
            (Role::FinanceOfficer, &[U::ProgrammeAdministration]),
            (Role::GrievanceOfficer, &[U::GrievanceRedress]),
            (Role::HealthWorker, &[U::Healthcare, U::ChildProtection]),
            (Role::CommunityHealthWorker, &[U::Healthcare]),
            (Role::Partner, &[U::Statistics]),
            (Role::Auditor, &[U::Audit]),
            (
                Role::MachineClient,
                &[U::ProgrammeAdministration, U::Statistics, U::Healthcare],
            ),
        ];
        PurposePolicy {
            allowed: table
                .iter()
                .map(|(r, ps)| (*r, ps.iter().copied().collect()))
                .collect(),
        }
    }
}

impl PurposePolicy {
    /// Replaces the purposes allowed to `role`.
    pub fn set(&mut self, role: Role, purposes: impl IntoIterator<Item = Purpose>) {
        self.allowed.insert(role, purposes.into_iter().collect());
    }

    pub fn allows(&self, role: Role, purpose: Purpose) -> bool {
        self.allowed
            .get(&role)
            .is_some_and(|set| set.contains(&purpose))
    }

    pub fn allowed(&self, role: Role) -> Vec<Purpose> {
        self.allowed
            .get(&role)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Builds a policy from configuration: role name → purpose names. Roles not named keep
    /// their defaults. Errors name the bad role or purpose.
    pub fn from_config(entries: &BTreeMap<String, Vec<String>>) -> Result<Self, String> {
        let mut policy = PurposePolicy::default();
        for (role, purposes) in entries {
            let role: Role = role.parse().map_err(|e: UnknownRole| e.to_string())?;
            let purposes = purposes
                .iter()
                .map(|p| p.parse::<Purpose>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("purposes of {role}: {e}"))?;
            policy.set(role, purposes);
        }
        Ok(policy)
    }
}

/// What an API token may be used for, on top of its user's role: a token never grants more than
/// its user has. `purpose:NAME` declares the purpose of every read made with the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TokenScope {
    Read,
    Write,
    Audit,
    Admin,
    Purpose(Purpose),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown token scope '{0}': expected read, write, audit, admin or purpose:<purpose>")]
pub struct UnknownTokenScope(pub String);

impl FromStr for TokenScope {
    type Err = UnknownTokenScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || UnknownTokenScope(s.chars().take(60).collect());
        if let Some(p) = s.strip_prefix("purpose:") {
            return p.parse().map(TokenScope::Purpose).map_err(|_| bad());
        }
        match s.to_ascii_lowercase().as_str() {
            "read" => Ok(TokenScope::Read),
            "write" => Ok(TokenScope::Write),
            "audit" => Ok(TokenScope::Audit),
            "admin" => Ok(TokenScope::Admin),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenScope::Read => f.write_str("read"),
            TokenScope::Write => f.write_str("write"),
            TokenScope::Audit => f.write_str("audit"),
            TokenScope::Admin => f.write_str("admin"),
            TokenScope::Purpose(p) => write!(f, "purpose:{p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn code(s: &str) -> AreaCode {
        AreaCode::parse(s).unwrap()
    }

    #[test]
    fn every_role_has_a_row_and_round_trips() {
        for r in Role::ALL {
            assert!(PERMISSIONS.iter().any(|(x, _)| *x == r), "{r} has no row");
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
            assert!(!PurposePolicy::default().allowed(r).is_empty(), "{r}");
        }
        assert_eq!(
            "District-Officer".parse::<Role>(),
            Ok(Role::DistrictOfficer)
        );
        let e = "king".parse::<Role>().unwrap_err().to_string();
        assert!(e.contains("king") && e.contains("auditor"), "{e}");
    }

    #[test]
    fn permission_table() {
        assert!(may(Role::Auditor, Permission::ReadAudit));
        assert!(!may(Role::Auditor, Permission::ReadPersonalData));
        assert!(may(Role::SystemAdmin, Permission::ManageUsers));
        assert!(!may(Role::SystemAdmin, Permission::ReadPersonalData));
        assert!(!may(Role::Partner, Permission::ReadPersonalData));
        assert!(!may(Role::Enumerator, Permission::ApproveChanges));
    }

    #[test]
    fn scope_contains_descendants_only() {
        let s = AreaScope::areas([code("11"), code("1101"), code("2301")]).unwrap();
        assert_eq!(s.to_stored(), "11 2301");
        assert!(s.contains(&code("11010102")));
        assert!(s.contains(&code("230101")));
        assert!(!s.contains(&code("2302")));
        assert!(!s.contains(&code("1")));
        assert!(AreaScope::national().contains(&code("5")));
        assert!(AreaScope::national().covers(&s));
        assert!(!s.covers(&AreaScope::national()));
        assert!(s.covers(&AreaScope::parse("1101,230101").unwrap()));
        assert!(!s.covers(&AreaScope::parse("12").unwrap()));
        assert_eq!(AreaScope::parse("national").unwrap(), AreaScope::national());
        assert_eq!(AreaScope::parse(" "), Err(InvalidScope::Empty));
        assert!(matches!(
            AreaScope::parse("11 abc"),
            Err(InvalidScope::Code(_))
        ));
        assert_eq!(AreaScope::parse(&s.to_stored()).unwrap(), s);
    }

    #[test]
    fn roles_limit_scope_width() {
        let district = AreaScope::parse("11").unwrap();
        assert!(Role::DistrictOfficer.check_scope(&district).is_ok());
        assert!(Role::SectorOfficer.check_scope(&district).is_err());
        assert!(Role::DistrictOfficer
            .check_scope(&AreaScope::national())
            .is_err());
        assert!(Role::Enumerator
            .check_scope(&AreaScope::parse("11010102").unwrap())
            .is_ok());
        assert!(Role::Auditor.check_scope(&AreaScope::national()).is_ok());
    }

    #[test]
    fn usernames() {
        assert_eq!(Username::parse(" Alice.M ").unwrap().as_str(), "alice.m");
        for bad in ["ab", "1abc", "a b c", "ali@ce", "", &"a".repeat(65)] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn purposes_and_policy() {
        assert_eq!("case_management".parse(), Ok(Purpose::CaseManagement));
        assert!("gossip".parse::<Purpose>().is_err());
        let p = PurposePolicy::default();
        assert!(p.allows(Role::Auditor, Purpose::Audit));
        assert!(!p.allows(Role::Auditor, Purpose::Registration));
        let mut cfg = BTreeMap::new();
        cfg.insert("auditor".to_string(), vec!["statistics".to_string()]);
        let p = PurposePolicy::from_config(&cfg).unwrap();
        assert!(p.allows(Role::Auditor, Purpose::Statistics));
        assert!(!p.allows(Role::Auditor, Purpose::Audit));
        cfg.insert("auditor".to_string(), vec!["gossip".to_string()]);
        assert!(PurposePolicy::from_config(&cfg)
            .unwrap_err()
            .contains("gossip"));
    }

    #[test]
    fn token_scopes() {
        assert_eq!("read".parse(), Ok(TokenScope::Read));
        assert_eq!(
            "purpose:statistics".parse(),
            Ok(TokenScope::Purpose(Purpose::Statistics))
        );
        assert!("purpose:x".parse::<TokenScope>().is_err());
        assert!("root".parse::<TokenScope>().is_err());
        for s in ["read", "write", "audit", "admin", "purpose:healthcare"] {
            assert_eq!(s.parse::<TokenScope>().unwrap().to_string(), s);
        }
    }
}
