//! The line protocol's account commands (`/register`, `/login`, `/logout`,
//! `/password`, `/unregister`, `/whois`) and the rule they protect: a
//! registered nickname is taken only by whoever is logged in to it.

use std::sync::Arc;

use crate::accounts::{AccountError, Accounts, Peer};
use crate::hub::{names, HubError, Session};

/// A connection's login state.
#[derive(Debug)]
pub(super) struct Login {
    pub accounts: Arc<Accounts>,
    /// Where passwords come from: the client's address, and whether its
    /// connection is encrypted.
    pub from: Peer,
    /// The client's address: its guest name (`IP:PORT`), as at connection.
    pub peer: std::net::SocketAddr,
    /// The account's nickname key while logged in.
    pub account: Option<String>,
    /// When the token logged in with expires (seconds since the epoch).
    pub token_exp: Option<u64>,
}

/// A refused account command, as the client is told.
#[derive(Debug)]
pub(super) enum Refused {
    Account(AccountError),
    Hub(HubError),
}

impl From<AccountError> for Refused {
    fn from(e: AccountError) -> Self {
        Refused::Account(e)
    }
}

impl From<HubError> for Refused {
    fn from(e: HubError) -> Self {
        Refused::Hub(e)
    }
}

impl Refused {
    pub(super) fn tell(&self, session: &Session) {
        match self {
            Refused::Account(e) => session.error(e.code(), e.to_string()),
            Refused::Hub(e) => session.error(e.code(), e.to_string()),
        }
    }
}

impl Login {
    /// `/nick NAME`, unless NAME is registered to another account. Renaming
    /// away from one's account logs out of it.
    pub(super) async fn rename(&mut self, session: &Session, nick: &str) -> Result<(), Refused> {
        self.accounts
            .may_take(nick, self.account.as_deref())
            .await?;
        let key = names::nick_key(nick);
        // The hub logs a session out when it leaves its account's name.
        session.rename(nick).await?;
        if self.account.as_ref().is_some_and(|a| *a != key) {
            self.account = None;
            self.token_exp = None;
            session.notice("you left your account's nickname: logged out");
        }
        Ok(())
    }

    pub(super) async fn register(
        &mut self,
        session: &Session,
        password: &str,
    ) -> Result<(), Refused> {
        let nick = session.nick()?;
        if names::validate_nick(&nick).is_err() {
            return Err(HubError::InvalidNick(
                "choose a nickname first (/nick NAME), then register it".into(),
            )
            .into());
        }
        self.accounts.register(self.from, &nick, password).await?;
        self.account = Some(names::nick_key(&nick));
        session.set_logged_in();
        session.notice(format!("you registered {nick}; you are logged in"));
        Ok(())
    }

    pub(super) async fn login(
        &mut self,
        session: &Session,
        nick: Option<&str>,
        password: &str,
    ) -> Result<(), Refused> {
        let current = session.nick()?;
        let account = self
            .accounts
            .login(self.from, nick.unwrap_or(&current), password)
            .await?;
        session.log_in_as(&account.name).await?;
        self.account = Some(account.key);
        session.notice(format!("you are logged in as {}", account.name));
        Ok(())
    }

    /// `/token JWT`: logs in as the token's user (or refreshes the token
    /// of the one logged in); a line client joins the first of its rooms.
    pub(super) async fn token(&mut self, session: &Session, token: &str) -> Result<(), Refused> {
        let (account, identity) = self.accounts.login_with_token(token).await?;
        session.log_in_as(&account.name).await?;
        self.account = Some(account.key);
        self.token_exp = Some(identity.exp);
        session.notice(format!("you are logged in as {}", account.name));
        if let Some(room) = identity.rooms.first() {
            session.switch_to(room).await.ok();
        }
        Ok(())
    }

    /// How long until the token logged in with expires, if any.
    pub(super) fn token_left(&self) -> Option<std::time::Duration> {
        let exp = self.token_exp?;
        let now = crate::hub::event::now_millis() / 1000;
        Some(std::time::Duration::from_secs(exp.saturating_sub(now)))
    }

    pub(super) async fn logout(&mut self, session: &Session) -> Result<(), Refused> {
        if self.account.is_none() {
            return Err(AccountError::NotLoggedIn.into());
        }
        let renamed = session.log_out(self.guest_names()).await?;
        self.account = None;
        self.token_exp = None;
        match renamed {
            None => session.notice("logged out (you keep your nickname until you change it)"),
            Some(nick) => session.notice(format!(
                "logged out; your other sessions keep the account's nickname, you are now {nick}"
            )),
        }
        Ok(())
    }

    /// The names a line client gets as a guest: its address, as the Go
    /// chat names it, then with a suffix.
    fn guest_names(&self) -> impl Iterator<Item = String> {
        let name = self.peer.to_string();
        std::iter::once(name.clone()).chain((2..=9).map(move |n| format!("{name}-{n}")))
    }

    pub(super) async fn change_password(
        &mut self,
        session: &Session,
        old: &str,
        new: &str,
    ) -> Result<(), Refused> {
        let nick = self.own_nick(session)?;
        self.accounts
            .change_password(self.from, &nick, old, new)
            .await?;
        session.notice("password changed");
        Ok(())
    }

    pub(super) async fn unregister(
        &mut self,
        session: &Session,
        password: &str,
    ) -> Result<(), Refused> {
        let nick = self.own_nick(session)?;
        session.only_device()?;
        self.accounts.unregister(self.from, &nick, password).await?;
        self.account = None;
        self.token_exp = None;
        session.log_out(self.guest_names()).await?;
        session.notice(format!("account {nick} deleted; the nickname is free"));
        Ok(())
    }

    pub(super) async fn whois(&self, session: &Session, nick: &str) -> Result<(), Refused> {
        let whois = self.accounts.whois(session.hub(), nick).await?;
        let status = match (whois.registered, whois.here, whois.logged_in) {
            (true, true, true) => "registered; here, logged in",
            (true, true, false) => "registered; here, not logged in",
            (true, false, _) => "registered; not here",
            (false, true, _) => "not registered; here",
            (false, false, _) => "not registered; not here",
        };
        let devices = if whois.sessions > 1 {
            format!(" (on {} devices)", whois.sessions)
        } else {
            String::new()
        };
        session.notice(format!("{}: {status}{devices}", whois.nick));
        Ok(())
    }

    /// The nickname of the account this connection is logged in to.
    fn own_nick(&self, session: &Session) -> Result<String, Refused> {
        if self.account.is_none() {
            return Err(AccountError::NotLoggedIn.into());
        }
        Ok(session.nick()?.to_string())
    }
}
