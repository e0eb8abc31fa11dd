//! The audit log of moderation actions (who, what, to whom, why, when):
//! appending and reading it, in the store or, without one, in memory; and
//! the listing of a policy's bans and mutes.

use serde_json::json;

use super::{describe_for, Moderation, Outcome, MAX_LOG_READ, MEMORY_LOG};
use crate::hub::event::now_millis;
use crate::hub::policy::{Ban, Policy};
use crate::hub::HubError;
use crate::store::ModerationEntry;

impl Moderation {
    pub(super) async fn modlog(
        &self,
        key: &str,
        name: &str,
        limit: u32,
    ) -> Result<Outcome, HubError> {
        let limit = limit.clamp(1, MAX_LOG_READ);
        let entries = match self.store() {
            Some(store) => store.moderation_log(key, limit).await.map_err(|e| {
                tracing::warn!(error = %e, "reading the moderation log failed");
                HubError::StoreUnavailable
            })?,
            None => {
                let log = self.memory_log.lock().unwrap_or_else(|e| e.into_inner());
                let entries = log.get(key).map(|l| l.iter().cloned().collect::<Vec<_>>());
                let entries = entries.unwrap_or_default();
                let skip = entries.len().saturating_sub(limit as usize);
                entries.into_iter().skip(skip).collect()
            }
        };
        let mut text = format!("moderation log of {name} ({}):", entries.len());
        for e in &entries {
            let when = chrono::DateTime::from_timestamp_millis(e.ms as i64)
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default();
            text.push_str(&format!("\n[{when}] {} {}", e.actor, e.action));
            if let Some(target) = &e.target {
                text.push_str(&format!(" {target}"));
            }
            if let Some(reason) = &e.reason {
                text.push_str(&format!(" ({reason})"));
            }
        }
        Ok(Outcome::new(
            text,
            json!({ "room": name, "entries": entries }),
        ))
    }

    /// Appends to the audit log; a store failure is logged, not fatal
    /// (the action itself is done).
    pub(super) async fn log(
        &self,
        key: &str,
        actor: &str,
        action: &str,
        target: Option<&str>,
        reason: Option<&str>,
    ) {
        crate::telemetry::moderation_action(action);
        let entry = ModerationEntry {
            room: key.to_string(),
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.map(str::to_string),
            reason: reason.map(str::to_string),
            ms: now_millis(),
        };
        match self.store() {
            Some(store) => {
                if let Err(e) = store.log_moderation(&entry).await {
                    tracing::warn!(error = %e, "writing the moderation log failed");
                }
            }
            None => {
                let mut log = self.memory_log.lock().unwrap_or_else(|e| e.into_inner());
                // Bounded by the rooms that may exist, plus the server's.
                if !log.contains_key(key) && log.len() > self.hub.config().max_rooms {
                    return;
                }
                let entries = log.entry(key.to_string()).or_default();
                if entries.len() >= MEMORY_LOG {
                    entries.pop_front();
                }
                entries.push_back(entry);
            }
        }
    }
}

/// The bans and mutes of a policy, for people and programs.
pub(super) fn list_bans(name: &str, policy: &Policy) -> Outcome {
    let now = now_millis();
    let describe = |b: &Ban| {
        let mut line = format!("{} (by {}", b.mask, b.by);
        if let Some(until) = b.until {
            line.push_str(&format!(
                ", {} left",
                describe_for(until.saturating_sub(now))
            ));
        }
        line.push(')');
        if let Some(reason) = &b.reason {
            line.push_str(&format!(": {reason}"));
        }
        line
    };
    let active = |list: &[Ban]| {
        list.iter()
            .filter(|b| b.active(now))
            .cloned()
            .collect::<Vec<_>>()
    };
    let (bans, mutes) = (active(&policy.bans), active(&policy.mutes));
    let mut text = format!("bans of {name} ({}):", bans.len());
    for b in &bans {
        text.push_str(&format!("\n  {}", describe(b)));
    }
    text.push_str(&format!("\nmutes of {name} ({}):", mutes.len()));
    for b in &mutes {
        text.push_str(&format!("\n  {}", describe(b)));
    }
    Outcome::new(text, json!({ "room": name, "bans": bans, "mutes": mutes }))
}
