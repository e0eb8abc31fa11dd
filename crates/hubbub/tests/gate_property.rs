//! A property of the gate, on the hub itself: no sequence of renames,
//! logins, logouts and account switches gets a banned person into a room
//! or lets a muted one be heard there. The room bans an account and a
//! nickname pattern, and mutes another account and another pattern; after
//! every step, whoever the session now is, the room holds it only if no
//! ban covers it, and it is heard only if nothing silences it.

use std::sync::Arc;

use hubbub::hub::policy::{Ban, Mask, Policy, Who};
use hubbub::hub::{Hub, HubConfig, HubError, LoggedIn, Session};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Rename(&'static str),
    /// Log in to the account with this id, whose nickname is given.
    Login(&'static str, &'static str),
    Logout,
    Join,
    Say,
}

const NAMES: &[&str] = &[
    "pat", "Troll1", "TROLLISH", "quiet7", "Quietly", "x", "tr0ll",
];
const ACCOUNTS: &[(&str, &str)] = &[
    ("~banned", "banacct"),
    ("~muted", "muteacct"),
    ("~fine", "fineacct"),
];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        prop::sample::select(NAMES).prop_map(Step::Rename),
        prop::sample::select(ACCOUNTS).prop_map(|(id, nick)| Step::Login(id, nick)),
        Just(Step::Logout),
        Just(Step::Join),
        Just(Step::Say),
    ]
}

fn ban(mask: Mask) -> Ban {
    Ban {
        mask,
        sessions: Default::default(),
        rank: None,
        reason: None,
        by: "op".into(),
        ms: 0,
        until: None,
    }
}

fn account(id: &str, name: &str) -> Mask {
    Mask::Account {
        id: id.into(),
        name: name.into(),
    }
}

/// The policy under test.
fn policy() -> Policy {
    let mut policy = Policy::default();
    policy.bans.push(ban(account("~banned", "banacct")));
    policy.bans.push(ban(Mask::parse("Troll*").unwrap()));
    policy.mutes.push(ban(account("~muted", "muteacct")));
    policy.mutes.push(ban(Mask::parse("quiet*").unwrap()));
    policy
}

/// What the policy says of the session as it is now: (banned, muted).
fn verdict(policy: &Policy, nick: &str, account: Option<&str>) -> (bool, bool) {
    let who = Who {
        nick,
        account,
        ip: None,
        session: ("", 0),
        server_operator: false,
    };
    (
        policy.ban_of(&who, 0).is_some(),
        policy.mute_of(&who, 0).is_some(),
    )
}

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let hub = Hub::start(HubConfig::default(), None, Vec::new(), None);
    // Someone keeps the room in memory, and it gets its policy.
    let keeper = hub.open("keeper", false).await.unwrap();
    keeper.enter("r", None).await.unwrap();
    let wanted = policy();
    hub.change_policy("r", "op", |p| {
        *p = wanted.clone();
        Ok(())
    })
    .await
    .unwrap();
    let session: Session = hub.open("start", false).await.unwrap();
    let mut account: Option<&'static str> = None;
    for step in steps {
        match step {
            Step::Rename(nick) => {
                let _ = session.rename(nick).await;
                if account.is_some() && session.account().is_none() {
                    account = None;
                }
            }
            Step::Login(id, nick) => {
                let logged = LoggedIn {
                    id: Arc::from(id),
                    server_operator: false,
                };
                if session.log_in_as(nick, logged).await.is_ok() {
                    account = Some(id);
                }
            }
            Step::Logout => {
                let names = ["guest-a".to_string(), "guest-b".to_string()];
                if session.log_out(names).await.is_ok() {
                    account = None;
                }
            }
            Step::Join => {
                let _ = session.enter("r", None).await;
            }
            Step::Say => {
                let said = session.post(Some("r"), "hello", false).await;
                let nick = session.nick().unwrap();
                let (banned, muted) = verdict(&wanted, &nick, account);
                if banned || muted {
                    prop_assert!(
                        matches!(said, Err(HubError::Muted(_)) | Err(HubError::NotInRoom(_))),
                        "{nick} ({account:?}) was heard: {said:?}"
                    );
                }
            }
        }
        prop_assert_eq!(
            session.account().map(|a| a.id.to_string()),
            account.map(str::to_string)
        );
        let nick = session.nick().unwrap();
        let (banned, _) = verdict(&wanted, &nick, account);
        let inside = session.rooms().unwrap().iter().any(|r| &**r == "r");
        prop_assert!(
            !(banned && inside),
            "{nick} ({account:?}) is banned and still in r"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_sequence_of_identity_changes_gets_past_a_ban_or_a_mute(
        steps in prop::collection::vec(step(), 1..16)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(steps))?;
    }
}
