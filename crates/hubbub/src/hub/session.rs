//! A client's handle on the hub: what a transport calls for each request
//! (messages, renames, joins and leaves, private messages, typing), and
//! the end of the session when it is dropped.

use super::*;

/// A message handed to the sequencer: await [`Submitted::committed`] for
/// the outcome.
#[derive(Debug)]
pub struct Submitted {
    pub(super) answer: oneshot::Receiver<Result<Posted, HubError>>,
}

impl Submitted {
    /// Waits until the message is committed and fanned out (or failed).
    pub async fn committed(self) -> Result<Posted, HubError> {
        self.answer.await.map_err(|_| HubError::SessionEnded)?
    }
}

/// One client's presence in the hub. Dropping it leaves: the room is told
/// and the nickname is freed, however the connection ended.
#[derive(Debug)]
pub struct Session {
    pub(super) hub: Arc<Hub>,
    pub(super) id: SessionId,
    pub(super) outbox: Arc<Outbox>,
    /// Shown to the room in the leave announcement (`/quit REASON`).
    pub(super) leave_reason: Mutex<Option<Arc<str>>>,
    /// The session left without closing its outbox, which the connection
    /// keeps for its next session ([`Session::leave_keeping_outbox`]).
    pub(super) keep_outbox: std::sync::atomic::AtomicBool,
}

impl Session {
    pub fn id(&self) -> SessionId {
        self.id
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Where the hub queues this session's events.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// The session's current nickname.
    pub fn nick(&self) -> Result<Arc<str>, HubError> {
        Ok(self.hub.lock().member(self.id)?.nick.clone())
    }

    /// The display names of the rooms the session is in, in joining order.
    pub fn rooms(&self) -> Result<Vec<Arc<str>>, HubError> {
        let state = self.hub.lock();
        Ok(state
            .member(self.id)?
            .rooms
            .iter()
            .filter_map(|k| state.rooms.get(k).map(|r| r.name.clone()))
            .collect())
    }

    /// The account the session is logged in to, if any.
    pub fn account(&self) -> Option<LoggedIn> {
        self.hub.lock().sessions.get(&self.id)?.account.clone()
    }

    /// The display name of the session's current room (the one it joined last).
    pub fn room_name(&self) -> Result<Arc<str>, HubError> {
        let state = self.hub.lock();
        let key = state.current_room(self.id)?;
        Ok(state.rooms[&key].name.clone())
    }

    /// A page of the members of the session's current room.
    pub fn room_members(&self, query: &MembersQuery) -> Result<RoomMembers, HubError> {
        let mut state = self.hub.lock();
        let key = state.current_room(self.id)?;
        Ok(self.hub.members_page(&mut state, &key, query))
    }

    /// Sends `text` to everyone in `room` (default: the current room), the
    /// sender included. `action` marks a `/me` action. The session must be
    /// in the room.
    ///
    /// Returns once the message is committed to history and queued for
    /// every member (see `hub::sequencer`, which also paces senders while
    /// fan-out is behind: see [`Hub::pace`]).
    pub async fn post(
        &self,
        room: Option<&str>,
        text: &str,
        action: bool,
    ) -> Result<Posted, HubError> {
        self.submit(room, text, action).await?.committed().await
    }

    /// The first half of [`Session::post`]: checks the message and hands it
    /// to the sequencer (waiting only if the sequencer's queue is full), so
    /// a transport can keep reading and have several messages in flight —
    /// which is what lets group commit put many in one transaction. The
    /// messages of one session are committed and fanned out in the order
    /// they were submitted.
    pub async fn submit(
        &self,
        room: Option<&str>,
        text: &str,
        action: bool,
    ) -> Result<Submitted, HubError> {
        if action && text.trim().is_empty() {
            return Err(HubError::EmptyMessage);
        }
        // Counted as pending first, then checked: shutdown sets its flag
        // before it waits for none to be pending, so no message passes
        // the check unseen by that wait.
        let ticket = sequencer::Ticket::new(&self.hub.pending);
        if self.hub.is_shutting_down() {
            return Err(HubError::ShuttingDown);
        }
        let (key, from) = {
            let state = self.hub.lock();
            let key = match room {
                None => state.current_room(self.id)?,
                Some(room) => state.joined_room(self.id, room)?,
            };
            self.hub.check_speech(&state, self.id, &key)?;
            (key, state.member(self.id)?.nick.clone())
        };
        let (done, answer) = oneshot::channel();
        let pending = sequencer::Pending::Message(sequencer::PendingMessage {
            room_key: key,
            from,
            text: text.into(),
            action,
            done,
            ticket,
        });
        self.hub
            .sequencer
            .send(pending)
            .await
            .map_err(|_| HubError::SessionEnded)?;
        Ok(Submitted { answer })
    }

    /// Changes nickname; every room of the session sees `Renamed`. Changing
    /// only the case of one's own nickname is allowed. In a cluster the new
    /// nickname is claimed cluster-wide first. A session logged in stays
    /// so only when the new name folds to the same key (its account's).
    pub async fn rename(&self, new: &str) -> Result<(), HubError> {
        self.rename_with(new, None).await
    }

    /// [`Session::rename`]; `first`, if any, is queued for this session once
    /// the name is its own, ahead of the room's [`EventKind::Renamed`] (a
    /// protocol's direct answer, such as the seed's `nickname ready`).
    ///
    /// A rename is seen by every room of the session, so it is speech
    /// there: refused (`muted`, `moderated`, `registered_only`) where the
    /// gate would not let the session speak.
    pub async fn rename_with(&self, new: &str, first: Option<Arc<Event>>) -> Result<(), HubError> {
        let new = &*names::normalize(new);
        if *self.nick()? == *new {
            // The name it has, spelled the same: nothing for anyone to see.
            if let Some(first) = first {
                self.hub.push_wire(&self.outbox, first);
            }
            return Ok(());
        }
        let stays = {
            let state = self.hub.lock();
            let member = state.member(self.id)?;
            for key in &member.rooms {
                self.hub.check_speech(&state, self.id, key)?;
            }
            member
                .account
                .clone()
                .filter(|_| names::nick_key(&member.nick) == names::nick_key(new))
        };
        self.rename_as(new, first, stays, false).await
    }

    /// Takes `new`, the nickname of the account this session has just
    /// logged in to, and marks the session logged in: it may share the
    /// nickname with the account's other sessions (its other devices).
    pub async fn rename_logged_in(&self, new: &str, account: LoggedIn) -> Result<(), HubError> {
        self.rename_as(new, None, Some(account), false).await
    }

    /// Renames to `new` (checked as a nickname unless `guest_name`: a
    /// transport's default name, such as a line client's `IP:PORT`).
    async fn rename_as(
        &self,
        new: &str,
        first: Option<Arc<Event>>,
        account: Option<LoggedIn>,
        guest_name: bool,
    ) -> Result<(), HubError> {
        let logged_in = account.is_some();
        if !guest_name {
            names::validate_nick(new)?;
        }
        let new_key = names::nick_key(new);
        let old_key = {
            let state = self.hub.lock();
            state.check_nick_free(&new_key, new, self.id, logged_in)?;
            names::nick_key(&state.member(self.id)?.nick)
        };
        // An account's nickname needs no cluster claim (see `Hub::open_into`).
        let claimed = !logged_in && new_key != old_key && self.hub.broker.is_some();
        if claimed {
            if let Some(link) = &self.hub.broker {
                if link.claim(new_key.clone(), self.id).await == Claim::Taken {
                    return Err(HubError::NickInUse(new.to_string()));
                }
            }
        }
        match self
            .hub
            .rename_locally(self.id, new, &new_key, first, account)
        {
            Ok(()) => {
                if new_key != old_key {
                    self.hub.release_nick(old_key, self.id);
                }
                self.hub.presence_changed(self.id);
                // Who the session is changed: every rule is asked again.
                self.hub.recheck_session(self.id);
                Ok(())
            }
            Err(e) => {
                if claimed {
                    self.hub.release_nick(new_key, self.id);
                }
                Err(e)
            }
        }
    }

    /// Moves the session to `room` alone (created on demand), leaving every
    /// room it was in: the line protocol's `/join`. The old room sees
    /// `Left`, the new one `Joined`.
    pub async fn switch_to(&self, room: &str) -> Result<RoomMembers, HubError> {
        let name = names::validate_room(room)?;
        let name = &*name;
        let key = self.hub.open_room(name).await?;
        let (members, created) = self.switch_locked(&key, name)?;
        self.hub.repair_if_behind(&key);
        self.hub.presence_changed(self.id);
        if created {
            self.hub.claim_room(&key, name, self.id).await;
        }
        Ok(members)
    }

    /// [`Session::switch_to`] under the hub lock; also says whether the
    /// room was created.
    fn switch_locked(&self, key: &str, name: &str) -> Result<(RoomMembers, bool), HubError> {
        let mut state = self.hub.lock();
        let member = state.member(self.id)?;
        if member.rooms == [key] {
            return Err(HubError::AlreadyInRoom(state.rooms[key].name.to_string()));
        }
        let nick = member.nick.clone();
        // Check and create the room first: if that is refused, nothing
        // has changed.
        self.hub.check_entry(&state, self.id, key)?;
        let created = !state.rooms.contains_key(key);
        if created {
            self.spend_room_budget(&mut state)?;
        }
        state.room_entry(key, name, self.hub.config.max_rooms)?;
        let old_rooms = std::mem::take(&mut state.member_mut(self.id)?.rooms);
        for old in old_rooms.iter().filter(|&old| *old != key) {
            self.hub
                .exit_room(&mut state, self.id, old, &nick, None, true);
        }
        if !old_rooms.iter().any(|r| r == key) {
            self.hub.enter_room(&mut state, self.id, key, name, None)?;
        }
        state.member_mut(self.id)?.rooms = vec![key.to_string()];
        let members = self
            .hub
            .members_page(&mut state, key, &MembersQuery::first());
        Ok((members, created))
    }

    /// Adds `room` (created on demand) to the session's rooms and makes it
    /// current; the room sees `Joined` and the session gets its history
    /// (after id `since`, when resuming). Joining a room one is already in
    /// only makes it current. Returns the members and the room's last id.
    pub async fn enter(
        &self,
        room: &str,
        since: Option<u64>,
    ) -> Result<(RoomMembers, u64), HubError> {
        let name = names::validate_room(room)?;
        let name = &*name;
        let key = self.hub.open_room(name).await?;
        let (entered, created) = self.enter_locked(&key, name, since)?;
        self.hub.repair_if_behind(&key);
        self.hub.presence_changed(self.id);
        if created {
            self.hub.claim_room(&key, name, self.id).await;
        }
        Ok(entered)
    }

    /// [`Session::enter`] under the hub lock; also says whether the room
    /// was created.
    fn enter_locked(
        &self,
        key: &str,
        name: &str,
        since: Option<u64>,
    ) -> Result<((RoomMembers, u64), bool), HubError> {
        let mut state = self.hub.lock();
        let member = state.member_mut(self.id)?;
        let created = if let Some(at) = member.rooms.iter().position(|r| r == key) {
            // Already here: becomes current; with `since` (a client
            // resuming), it still gets what it missed.
            let key = member.rooms.remove(at);
            member.rooms.push(key);
            if since.is_some() {
                let outbox = member.outbox.clone();
                let key = member.rooms.last().expect("just pushed").clone();
                self.hub.send_history(&state.rooms[&key], &outbox, since);
            }
            false
        } else {
            if member.rooms.len() >= MAX_ROOMS_PER_SESSION {
                return Err(HubError::TooManyJoined(MAX_ROOMS_PER_SESSION));
            }
            self.hub.check_entry(&state, self.id, key)?;
            let created = !state.rooms.contains_key(key);
            if created {
                self.spend_room_budget(&mut state)?;
            }
            self.hub.enter_room(&mut state, self.id, key, name, since)?;
            state.member_mut(self.id)?.rooms.push(key.to_string());
            created
        };
        let members = self
            .hub
            .members_page(&mut state, key, &MembersQuery::first());
        Ok(((members, state.rooms[key].last_id), created))
    }

    /// Spends a room of the session's address's budget (it is about to
    /// open a new room).
    ///
    /// Errors: `room_budget`.
    fn spend_room_budget(&self, state: &mut State) -> Result<(), HubError> {
        let ip = state.member(self.id)?.ip;
        if state.room_budget.spend(ip, event::now_millis() / 1000) {
            Ok(())
        } else {
            Err(HubError::RoomBudget(budget::ROOMS_PER_ADDRESS_PER_MINUTE))
        }
    }

    /// Leaves `room`; the others there see `Left`. If it was the current
    /// room, the previously joined one becomes current.
    pub fn exit(&self, room: &str) -> Result<Arc<str>, HubError> {
        let mut state = self.hub.lock();
        let key = state.joined_room(self.id, room)?;
        let name = state.rooms[&key].name.clone();
        let member = state.member_mut(self.id)?;
        member.rooms.retain(|r| *r != key);
        let nick = member.nick.clone();
        self.hub
            .exit_room(&mut state, self.id, &key, &nick, None, true);
        drop(state);
        self.hub.presence_changed(self.id);
        Ok(name)
    }

    /// Sends `text` privately to the session named `to`, wherever it is;
    /// the sender gets its own copy as `PrivateSent`. Returns the
    /// recipient's nickname as spelled by them, and the timestamp.
    pub async fn private(&self, to: &str, text: &str) -> Result<(Arc<str>, u64), HubError> {
        if text.trim().is_empty() {
            return Err(HubError::EmptyMessage);
        }
        let ticket = sequencer::Ticket::new(&self.hub.pending);
        if self.hub.is_shutting_down() {
            return Err(HubError::ShuttingDown);
        }
        let (done, answer) = oneshot::channel();
        let pending = sequencer::Pending::Private(sequencer::PendingPrivate {
            from: self.id,
            to: to.to_string(),
            text: text.into(),
            done,
            ticket,
        });
        self.hub.submit(pending, answer).await
    }

    /// Tells the others in `room` (default: the current room) who want
    /// typing events that this session started or stopped typing.
    pub fn typing(&self, room: Option<&str>, typing: bool) -> Result<Arc<str>, HubError> {
        let state = self.hub.lock();
        let key = match room {
            None => state.current_room(self.id)?,
            Some(room) => state.joined_room(self.id, room)?,
        };
        // Typing is heard by the room: only who may speak there may.
        self.hub.check_speech(&state, self.id, &key)?;
        let nick = state.member(self.id)?.nick.clone();
        let room = &state.rooms[&key];
        if !self.hub.relays_typing(&state, &key) {
            // A big room hears no typing (`presence`); not an error.
            return Ok(room.name.clone());
        }
        let event = Event::new(EventKind::Typing {
            room: room.name.clone(),
            nick,
            typing,
        });
        for (&id, outbox) in &room.members {
            if id != self.id && state.sessions.get(&id).is_some_and(|m| m.wants_typing) {
                self.hub.deliver(outbox, event.clone());
            }
        }
        if let (Some(broker), false) = (&self.hub.broker, room.remote.is_empty()) {
            if let EventKind::Typing { room, nick, typing } = &event.kind {
                broker.publish_now(Outgoing::Typing {
                    key,
                    room: room.clone(),
                    nick: nick.clone(),
                    typing: *typing,
                });
            }
        }
        Ok(room.name.clone())
    }

    /// Leaves the hub now rather than when dropped (idempotent).
    pub fn end(&self) {
        let reason = self
            .leave_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.hub.leave(self.id, reason);
        if !self.keep_outbox.load(Ordering::SeqCst) {
            self.outbox.close_silently(CloseReason::Quit);
        }
    }

    /// Leaves the hub now (the room hears it), keeping the outbox open: a
    /// Socket.IO client that DISCONNECTed its namespace keeps its Engine.IO
    /// session, and may CONNECT again on it (a new session, this outbox).
    pub fn leave_keeping_outbox(&self) {
        self.keep_outbox.store(true, Ordering::SeqCst);
        self.end();
    }

    /// Queues a page of history for this session only.
    pub fn deliver_history(&self, room: Arc<str>, messages: Vec<StoredMessage>, complete: bool) {
        let messages = messages
            .iter()
            .map(|m| Event::new(EventKind::from_stored(m)))
            .collect();
        self.hub.deliver(
            &self.outbox,
            Event::new(EventKind::History {
                room,
                messages,
                complete,
            }),
        );
    }

    /// Queues a reply for this session only.
    pub fn notice(&self, text: impl Into<String>) {
        self.hub.deliver(
            &self.outbox,
            Event::new(EventKind::Notice { text: text.into() }),
        );
    }

    /// Queues an error for this session only.
    pub fn error(&self, code: &'static str, message: impl Into<String>) {
        self.hub.deliver(
            &self.outbox,
            Event::new(EventKind::Error {
                code,
                message: message.into(),
            }),
        );
    }

    /// Marks the session logged in to the account of the nickname it
    /// holds (it registered it, or logged in under it), which member
    /// lists and [`Hub::whois`] show on every node.
    pub fn set_logged_in(&self, account: LoggedIn) {
        if let Ok(member) = self.hub.lock().member_mut(self.id) {
            member.account = Some(account);
        }
        self.hub.presence_changed(self.id);
        self.hub.recheck_session(self.id);
    }

    /// Logs the session in to the account whose nickname is
    /// `account_nick` (the caller checked the credentials): it takes that
    /// name unless it holds it already, and may share it with the
    /// account's other sessions (its other devices), here and on other
    /// nodes.
    ///
    /// Taking the name is a rename the session's rooms see, so it is
    /// refused where the session may not speak (`muted`, `moderated`…).
    pub async fn log_in_as(&self, account_nick: &str, account: LoggedIn) -> Result<(), HubError> {
        // The account's other devices may spell its name otherwise (a
        // case-only `/nick`): this one takes their spelling, so that they
        // share one name.
        let spelled = {
            let state = self.hub.lock();
            let key = names::nick_key(account_nick);
            let locals = state.holders(&key).filter_map(|id| state.who(id));
            let remotes = state
                .remote
                .holders(&key)
                .filter_map(|id| state.remote.who(id));
            // Bound so that the iterators' borrows of `state` end first.
            #[allow(clippy::let_and_return)]
            let found = locals
                .chain(remotes)
                .find(|w| w.account == Some(&*account.id))
                .map(|w| w.nick.to_string());
            found
        };
        let account_nick = spelled.as_deref().unwrap_or(account_nick);
        if *self.nick()? == *account_nick {
            self.set_logged_in(account);
            Ok(())
        } else {
            {
                let state = self.hub.lock();
                for key in &state.member(self.id)?.rooms {
                    self.hub.check_speech(&state, self.id, key)?;
                }
            }
            self.rename_logged_in(account_nick, account).await
        }
    }

    /// Takes server operator status from this session (the administrator
    /// revoked it since the session logged in).
    pub fn demote_server_operator(&self) {
        if let Ok(member) = self.hub.lock().member_mut(self.id) {
            if let Some(account) = &mut member.account {
                account.server_operator = false;
            }
        }
        self.hub.presence_changed(self.id);
    }

    /// Refuses (`other_sessions`) while other sessions share this one's
    /// nickname: before deleting the account, which would leave them
    /// holding a name nobody owns.
    pub fn only_device(&self) -> Result<(), HubError> {
        let nick = self.nick()?;
        match self.hub.whois(&nick) {
            Some(p) if p.sessions > 1 => Err(HubError::OtherSessions(p.sessions - 1)),
            _ => Ok(()),
        }
    }

    /// Logs the session out of its account. It keeps its nickname as a
    /// guest (claimed in the cluster, as a guest's is) unless the
    /// account's other sessions (devices) hold it too: a guest cannot
    /// share it, so the session takes the first free of `guest_names`
    /// (the transport's default names) and that name is returned.
    ///
    /// Errors: `nick_in_use` when every guest name is taken too.
    pub async fn log_out(
        &self,
        guest_names: impl IntoIterator<Item = String>,
    ) -> Result<Option<Arc<str>>, HubError> {
        let kept = {
            let mut state = self.hub.lock();
            let nick = state.member(self.id)?.nick.clone();
            let key = names::nick_key(&nick);
            let alone = state.check_nick_free(&key, &nick, self.id, false).is_ok();
            if alone {
                state.member_mut(self.id)?.account = None;
            }
            alone.then_some(key)
        };
        if let Some(key) = kept {
            self.hub.presence_changed(self.id);
            self.hub.recheck_session(self.id);
            if let Some(link) = &self.hub.broker {
                // Best effort: the account kept the name its own until now;
                // should a guest elsewhere hold it, the cluster's next
                // resync renames one of the two.
                let _ = link.claim(key, self.id).await;
            }
            return Ok(None);
        }
        let mut taken = HubError::SessionEnded;
        for name in guest_names {
            match self.rename_as(&name, None, None, true).await {
                Ok(()) => return Ok(Some(name.into())),
                Err(e @ HubError::NickInUse(_)) => taken = e,
                Err(e) => return Err(e),
            }
        }
        Err(taken)
    }

    /// Sets what the room is told when this session leaves.
    ///
    /// Shown as `quit: REASON`, as IRC does, so that what a user writes
    /// can never read as what the server says (`server went away`).
    pub fn set_leave_reason(&self, reason: Option<&str>) {
        *self.leave_reason.lock().unwrap_or_else(|e| e.into_inner()) =
            reason.map(|r| format!("quit: {r}").into());
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.end();
    }
}
