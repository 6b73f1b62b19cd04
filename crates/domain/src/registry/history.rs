//! The registry's history: every change is an event (who, when, why, through which channel,
//! before → after) written in the same transaction as the current-state update. The current
//! state is a projection; "as of" a date is the current state with every later event undone.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// What an event changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    /// The household's own fields (village, address, answers, status).
    Household,
    /// One member: the person's fields merged with their membership (role, dates).
    Member,
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Household => "household",
            Entity::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Entity> {
        match s {
            "household" => Some(Entity::Household),
            "member" => Some(Entity::Member),
            _ => None,
        }
    }
}

/// Through which door a change came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Web,
    Api,
    Import,
    Ussd,
    Crvs,
    ChangeRequest,
    System,
}

impl Channel {
    pub const ALL: [Channel; 7] = [
        Channel::Web,
        Channel::Api,
        Channel::Import,
        Channel::Ussd,
        Channel::Crvs,
        Channel::ChangeRequest,
        Channel::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Api => "api",
            Channel::Import => "import",
            Channel::Ussd => "ussd",
            Channel::Crvs => "crvs",
            Channel::ChangeRequest => "change_request",
            Channel::System => "system",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown channel '{s}'"))
    }
}

/// One change to one entity of a household.
///
/// `before` and `after` hold only the fields that changed; a creation has no `before`, a
/// removal no `after` (and a full `before`, so that undoing it restores the entity).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryEvent {
    pub id: Uuid,
    pub household_id: Uuid,
    pub entity: Entity,
    pub entity_id: Uuid,
    /// e.g. `household.registered`, `household.updated`, `member.added`, `member.removed`.
    pub kind: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub channel: Channel,
    pub reason: Option<String>,
    pub change_request_id: Option<Uuid>,
    pub before: Option<Map<String, Value>>,
    pub after: Option<Map<String, Value>>,
}

/// A household with its members as one document: what `as_of` returns and what the history
/// rewinds. Members are keyed by person id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HouseholdDoc {
    pub household: Map<String, Value>,
    pub members: BTreeMap<Uuid, Map<String, Value>>,
}

impl HouseholdDoc {
    /// Undoes `events` (any order; they are sorted newest first here) on the current document.
    /// Returns `None` when the household did not exist yet at the point reached.
    pub fn rewind(mut self, events: &mut [RegistryEvent]) -> Option<HouseholdDoc> {
        events.sort_by_key(|e| std::cmp::Reverse((e.at, e.id)));
        for e in events.iter() {
            if e.entity == Entity::Household && e.before.is_none() {
                return None;
            }
            self.undo(e);
        }
        Some(self)
    }

    fn undo(&mut self, e: &RegistryEvent) {
        let target = match e.entity {
            Entity::Household => Some(&mut self.household),
            Entity::Member => None,
        };
        match (target, &e.before, &e.after) {
            (Some(h), Some(before), _) => merge(h, before),
            (None, None, _) => {
                self.members.remove(&e.entity_id);
            }
            (None, Some(before), None) => {
                self.members.insert(e.entity_id, before.clone());
            }
            (None, Some(before), Some(_)) => {
                merge(self.members.entry(e.entity_id).or_default(), before);
            }
            (Some(_), None, _) => {}
        }
    }
}

fn merge(into: &mut Map<String, Value>, fields: &Map<String, Value>) {
    for (k, v) in fields {
        into.insert(k.clone(), v.clone());
    }
}

/// The fields of `after` that differ from `before`, as (before, after) maps; `None` when
/// nothing changed. Used to write update events that hold only what changed.
pub fn diff(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Option<(Map<String, Value>, Map<String, Value>)> {
    let mut b = Map::new();
    let mut a = Map::new();
    for (k, v) in after {
        let old = before.get(k).unwrap_or(&Value::Null);
        if old != v {
            b.insert(k.clone(), old.clone());
            a.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in before {
        if !after.contains_key(k) && !v.is_null() {
            b.insert(k.clone(), v.clone());
            a.insert(k.clone(), Value::Null);
        }
    }
    (!a.is_empty()).then_some((b, a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    fn event(
        n: u32,
        entity: Entity,
        id: Uuid,
        before: Option<Value>,
        after: Option<Value>,
    ) -> RegistryEvent {
        RegistryEvent {
            id: Uuid::from_u128(n as u128),
            household_id: Uuid::from_u128(1),
            entity,
            entity_id: id,
            kind: "test".into(),
            at: Utc
                .with_ymd_and_hms(2026, 1, n, 0, 0, 0)
                .single()
                .expect("time"),
            actor: "t".into(),
            channel: Channel::Api,
            reason: None,
            change_request_id: None,
            before: before.map(obj),
            after: after.map(obj),
        }
    }

    #[test]
    fn rewinds_updates_additions_and_removals() {
        let hh = Uuid::from_u128(1);
        let (a, b) = (Uuid::from_u128(10), Uuid::from_u128(11));
        let mut now = HouseholdDoc {
            household: obj(json!({"village": "57150505", "address": "new"})),
            ..Default::default()
        };
        now.members
            .insert(a, obj(json!({"given_name": "Ange", "role": "head"})));
        let mut events = vec![
            event(1, Entity::Household, hh, None, Some(json!({}))),
            event(
                2,
                Entity::Member,
                a,
                None,
                Some(json!({"given_name": "Anje"})),
            ),
            event(
                3,
                Entity::Member,
                b,
                None,
                Some(json!({"given_name": "Eric"})),
            ),
            event(
                4,
                Entity::Household,
                hh,
                Some(json!({"address": "old"})),
                Some(json!({"address": "new"})),
            ),
            event(
                5,
                Entity::Member,
                a,
                Some(json!({"given_name": "Anje"})),
                Some(json!({"given_name": "Ange"})),
            ),
            event(
                6,
                Entity::Member,
                b,
                Some(json!({"given_name": "Eric", "role": "child"})),
                None,
            ),
        ];
        // As of day 3: address old, Anje misspelt, Eric still a member.
        let then = now.clone().rewind(&mut events[3..]).expect("exists");
        assert_eq!(then.household["address"], json!("old"));
        assert_eq!(then.members[&a]["given_name"], json!("Anje"));
        assert_eq!(then.members[&b]["given_name"], json!("Eric"));
        // Before the household was registered, it did not exist.
        assert!(now.rewind(&mut events).is_none());
    }

    #[test]
    fn diffs_hold_only_changes() {
        let (b, a) = diff(
            &obj(json!({"x": 1, "y": 2, "z": 3})),
            &obj(json!({"x": 1, "y": 5})),
        )
        .expect("changed");
        assert_eq!(Value::Object(b), json!({"y": 2, "z": 3}));
        assert_eq!(Value::Object(a), json!({"y": 5, "z": null}));
        assert!(diff(&obj(json!({"x": 1})), &obj(json!({"x": 1}))).is_none());
    }
}
