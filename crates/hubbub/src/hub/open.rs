//! Opening sessions and naming them: admission (nickname free here and
//! in the cluster, server-wide bans, the default room's policy), the
//! session's first events, and renames with their announcements.

use super::state::Device;
use super::state::Member;
use super::*;

impl Hub {
    /// Opens a session named `nick` in the default room; `wants_typing` says
    /// whether the transport shows [`EventKind::Typing`] events.
    ///
    /// Its first event is [`EventKind::Welcome`]; the room's other members get
    /// [`EventKind::Joined`]. `nick` is taken as given (a transport's default
    /// name such as `IP:PORT`); it must still be unique, cluster-wide.
    pub async fn open(
        self: &Arc<Self>,
        nick: &str,
        wants_typing: bool,
    ) -> Result<Session, HubError> {
        let client = ClientInfo {
            wants_typing,
            ..ClientInfo::default()
        };
        self.open_into(&self.new_outbox(), None, nick, client, None)
            .await
    }

    /// [`Hub::open`] under the first of `names` not in use (a transport's
    /// default names); if all are taken, the last `nick_in_use` error.
    pub async fn open_first_free(
        self: &Arc<Self>,
        names: impl IntoIterator<Item = String>,
        client: ClientInfo,
    ) -> Result<Session, HubError> {
        self.open_first_free_into(self.new_outbox(), None, names, client)
            .await
    }

    /// An outbox with this hub's bounds, for a transport that must queue
    /// its own packets before the session opens (see
    /// [`Hub::open_first_free_into`]).
    pub fn new_outbox(&self) -> Arc<Outbox> {
        Arc::new(Outbox::shared(
            self.config.outbox_limit,
            Some(self.relief.clone()),
            Some(self.queued.clone()),
        ))
    }

    /// [`Hub::open_first_free`] writing to `outbox` (from
    /// [`Hub::new_outbox`]); `first`, if any, is queued once the session is
    /// admitted, ahead of its [`EventKind::Welcome`] (a protocol's
    /// "connected" answer).
    pub async fn open_first_free_into(
        self: &Arc<Self>,
        outbox: Arc<Outbox>,
        first: Option<Arc<Event>>,
        names: impl IntoIterator<Item = String>,
        client: ClientInfo,
    ) -> Result<Session, HubError> {
        let mut taken = None;
        for name in names {
            match self
                .open_into(&outbox, first.clone(), &name, client, None)
                .await
            {
                Err(e @ HubError::NickInUse(_)) => taken = Some(e),
                other => return other,
            }
        }
        Err(taken.unwrap_or(HubError::SessionEnded))
    }

    /// [`Hub::open_first_free_into`] for a client that logged in to the
    /// account owning `nick` as it connected: the session is logged in
    /// from the start, and may share `nick` with the account's other
    /// sessions (its other devices), here and on other nodes.
    pub async fn open_logged_in_into(
        self: &Arc<Self>,
        outbox: Arc<Outbox>,
        first: Option<Arc<Event>>,
        nick: &str,
        client: ClientInfo,
        account: LoggedIn,
    ) -> Result<Session, HubError> {
        self.open_into(&outbox, first, nick, client, Some(account))
            .await
    }

    async fn open_into(
        self: &Arc<Self>,
        outbox: &Arc<Outbox>,
        first: Option<Arc<Event>>,
        nick: &str,
        client: ClientInfo,
        account: Option<LoggedIn>,
    ) -> Result<Session, HubError> {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let folded = names::nick_key(nick);
        let logged_in = account.is_some();
        self.lock().check_nick_free(&folded, nick, id, logged_in)?;
        // An account's nickname is its own on every node through the
        // shared account store; only a guest's needs a cluster claim.
        if let (Some(link), false) = (&self.broker, logged_in) {
            if link.claim(folded.clone(), id).await == Claim::Taken {
                return Err(HubError::NickInUse(nick.to_string()));
            }
        }
        let opened = self.open_claimed(id, nick, client, account, outbox.clone(), first);
        if opened.is_err() {
            self.release_nick(folded, id);
        }
        opened
    }

    /// [`Hub::open`] once the nickname is claimed in the cluster (if any).
    fn open_claimed(
        self: &Arc<Self>,
        id: SessionId,
        nick: &str,
        client: ClientInfo,
        account: Option<LoggedIn>,
        outbox: Arc<Outbox>,
        first: Option<Arc<Event>>,
    ) -> Result<Session, HubError> {
        let nick: Arc<str> = nick.into();
        let room_key = names::fold(&self.config.default_room);

        let mut state = self.lock();
        let folded = names::nick_key(&nick);
        state.check_nick_free(&folded, &nick, id, account.is_some())?;
        // Server-wide bans, and the default room's own (a session is
        // always somewhere to start with).
        let who = Who {
            nick: &nick,
            account: account.as_ref().map(|a| &*a.id),
            ip: client.ip,
            session: (&state.node, id),
            server_operator: account.as_ref().is_some_and(|a| a.server_operator),
        };
        self.check_server_ban(&state, &who)?;
        let now = event::now_millis();
        let lobby = &state.rooms[&room_key];
        let members = lobby.members.len() + lobby.remote.len();
        gate::may(
            &lobby.policy,
            &lobby.name,
            &who,
            gate::Action::Enter { members },
            now,
        )?;
        state.claim_nick(folded, &nick, id);
        state.sessions.insert(
            id,
            Member {
                nick: nick.clone(),
                rooms: vec![room_key.clone()],
                outbox: outbox.clone(),
                wants_typing: client.wants_typing,
                one_room: client.one_room,
                ip: client.ip,
                account,
            },
        );
        let room_name = state.rooms[&room_key].name.clone();
        if let Some(first) = first {
            outbox.push(first);
        }
        outbox.push(Event::new(EventKind::Welcome {
            nick,
            room: room_name,
        }));
        // The default room always exists, so entering it cannot fail.
        let _ = self.enter_room(&mut state, id, &room_key, &self.config.default_room, None);
        drop(state);
        self.presence_changed(id);

        self.stats.sessions_opened.fetch_add(1, Ordering::Relaxed);
        Ok(Session {
            hub: self.clone(),
            id,
            outbox,
            leave_reason: Mutex::new(None),
            keep_outbox: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Renames session `id` here, the cluster claim (if any) being made,
    /// and sets whether it is logged in (to the account of `new`): every
    /// room of the session sees `Renamed` (or, where the user is there on
    /// another device too, the join or leave that keeps it listed once).
    pub(super) fn rename_locally(
        &self,
        id: SessionId,
        new: &str,
        new_key: &str,
        first: Option<Arc<Event>>,
        account: Option<LoggedIn>,
    ) -> Result<(), HubError> {
        let mut state = self.lock();
        let old = state.member(id)?.nick.clone();
        state.check_nick_free(new_key, new, id, account.is_some())?;
        let who = Who {
            nick: new,
            account: account.as_ref().map(|a| &*a.id),
            ip: state.member(id)?.ip,
            session: (&state.node, id),
            server_operator: account.as_ref().is_some_and(|a| a.server_operator),
        };
        self.check_server_ban(&state, &who)?;
        let new: Arc<str> = new.into();
        state.release_nick(&old, id);
        state.claim_nick(new_key.to_string(), &new, id);
        let Some(member) = state.sessions.get_mut(&id) else {
            return Err(HubError::SessionEnded);
        };
        member.nick = new.clone();
        member.account = account;
        if let Some(first) = first {
            self.push_wire(&member.outbox, first);
        }
        let rooms = state.sessions[&id].rooms.clone();
        for key in &rooms {
            self.renamed_in(&mut state, key, &old, &new, Device::Local(id));
        }
        Ok(())
    }

    /// Session `id` loses its nickname to a session of another node that
    /// took it while the two could not see each other (Redis was
    /// unreachable): it becomes `new` (already claimed), and is told why.
    pub(crate) fn yield_nick(&self, id: SessionId, new: &str) -> Result<(), HubError> {
        let old = self.lock().member(id)?.nick.clone();
        self.rename_locally(id, new, &names::nick_key(new), None, None)?;
        self.recheck_session(id);
        self.presence_changed(id);
        if let Some(member) = self.lock().sessions.get(&id) {
            self.deliver(
                &member.outbox,
                Event::new(EventKind::Notice {
                    text: format!(
                        "{old} was also taken on another server while the servers \
                         could not reach each other; you are now {new}"
                    ),
                }),
            );
        }
        Ok(())
    }
}
