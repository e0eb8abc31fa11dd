//! Bans and mutes: setting and lifting them (in a room, or server-wide),
//! and what a typed mask means.

use serde_json::json;

use super::{clean, describe_for, Moderation, Outcome};
use crate::hub::event::now_millis;
use crate::hub::policy::{self, Ban, Mask};
use crate::hub::HubError;

impl Moderation {
    /// Bans (with `mute`: mutes) `mask` in room `key` (`""`: the server,
    /// named `name` in answers), for `duration` (like `10m`) or for good.
    /// The hub removes whoever the ban covers, on every node.
    ///
    /// Errors: `bad_mask`, `bad_duration`, `invalid_text` (a reason with
    /// control characters), `policy_full`, `store_unavailable`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn ban(
        &self,
        key: &str,
        name: &str,
        by: &str,
        mask: &str,
        duration: Option<String>,
        reason: Option<String>,
        mute: bool,
    ) -> Result<Outcome, HubError> {
        let mask = self.resolve_mask(mask)?;
        let now = now_millis();
        let until = match duration {
            Some(d) => Some(now + policy::parse_duration(&d)?),
            None => None,
        };
        let reason = reason
            .map(|r| clean(&r, policy::MAX_REASON_BYTES))
            .transpose()?;
        let ban = Ban {
            mask: mask.clone(),
            reason: reason.clone(),
            by: by.to_string(),
            ms: now,
            until,
        };
        let kind = if mute { "mute" } else { "ban" };
        self.hub
            .change_policy(key, by, |p| {
                let list = if mute { &mut p.mutes } else { &mut p.bans };
                list.retain(|b| b.mask != mask);
                if list.len() >= policy::MAX_ENTRIES {
                    return Err(HubError::PolicyFull(
                        format!("the {kind} list"),
                        policy::MAX_ENTRIES,
                    ));
                }
                list.push(ban.clone());
                Ok(())
            })
            .await?;
        if !key.is_empty() {
            let flag = if mute { "+q" } else { "+b" };
            self.hub.announce_mode(key, &format!("{flag} {mask}"), by);
        }
        self.log(key, by, kind, Some(&mask.to_string()), reason.as_deref())
            .await;
        let past = if mute { "muted" } else { "banned" };
        let until_text = until
            .map(|u| format!(" for {}", describe_for(u - now)))
            .unwrap_or_default();
        Ok(Outcome::new(
            format!("{mask} is {past} in {name}{until_text}"),
            json!({ "room": name, "mask": mask.to_string(), "until": until, "reason": reason }),
        ))
    }

    /// Lifts a ban (with `mute`: a mute) of `mask` in room `key`.
    ///
    /// Errors: `bad_mask`; `not_found` when nothing of that mask is set.
    pub(super) async fn unban(
        &self,
        key: &str,
        name: &str,
        by: &str,
        mask: &str,
        mute: bool,
    ) -> Result<Outcome, HubError> {
        let typed = mask;
        let mask = self.resolve_mask(typed)?;
        // A bare nickname lifts a ban of that name's account or of the
        // name, whichever was set (the user may have logged in or out since).
        let bare = !typed.contains([':', '*', '?']) && !matches!(mask, Mask::Ip(_));
        let covers = |b: &Mask| {
            *b == mask
                || (bare
                    && (*b == Mask::Account(typed.to_string())
                        || *b == Mask::Nick(typed.to_string())))
        };
        let kind = if mute { "mute" } else { "ban" };
        self.hub
            .change_policy(key, by, |p| {
                let list = if mute { &mut p.mutes } else { &mut p.bans };
                let before = list.len();
                list.retain(|b| !covers(&b.mask));
                if list.len() == before {
                    return Err(HubError::NotFound(format!("no {kind} of {mask} in {name}")));
                }
                Ok(())
            })
            .await?;
        if !key.is_empty() {
            let flag = if mute { "-q" } else { "-b" };
            self.hub.announce_mode(key, &format!("{flag} {mask}"), by);
        }
        self.log(key, by, &format!("un{kind}"), Some(&mask.to_string()), None)
            .await;
        let past = if mute { "unmuted" } else { "unbanned" };
        Ok(Outcome::new(
            format!("{mask} is {past} in {name}"),
            json!({ "room": name, "mask": mask.to_string() }),
        ))
    }

    /// A mask as typed; a bare nickname of someone logged in means their
    /// account (every device, whatever name they take next).
    fn resolve_mask(&self, text: &str) -> Result<Mask, HubError> {
        let mask = Mask::parse(text)?;
        if let Mask::Nick(pattern) = &mask {
            if !pattern.contains(['*', '?']) && !text.starts_with("nick:") {
                if let Some(presence) = self.hub.whois(pattern) {
                    if presence.logged_in {
                        return Ok(Mask::Account(presence.nick.to_string()));
                    }
                }
            }
        }
        Ok(mask)
    }
}
