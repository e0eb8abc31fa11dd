//! Moderation: room owners and operators, topics, modes, kicks, bans and
//! mutes, invitations, the audit log and server operators — over TCP and
//! Socket.IO, and across a restart. (Across cluster nodes: tests/cluster.rs.)

mod common;

use std::time::Duration;

use common::{named_clients, Client, TestServer};
use serde_json::json;
use tokio::net::TcpSocket;

/// Reads `client`'s lines until one starts with `prefix`; returns it.
async fn line_starting(client: &mut Client, prefix: &str) -> String {
    loop {
        let line = client.line().await;
        if line.starts_with(prefix) {
            return line;
        }
        eprintln!("{}: skipped {line:?} waiting for {prefix:?}", client.name);
    }
}

/// A listing that starts with a line beginning `prefix` and ending
/// `(N):`, and its N lines after it (a notice of several lines).
async fn listing(client: &mut Client, prefix: &str) -> Vec<String> {
    let header = line_starting(client, prefix).await;
    let count: usize = header
        .rsplit_once('(')
        .and_then(|(_, n)| n.strip_suffix("):"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a count in {header:?}"));
    let mut lines = vec![header];
    for _ in 0..count {
        lines.push(client.line().await);
    }
    lines
}

/// Registers and logs in `client` under its current name.
async fn register(client: &mut Client) {
    client.send("/register long enough").await;
    client
        .expect(&format!(
            "* you registered {}; you are logged in",
            client.name
        ))
        .await;
}

/// `client` joins `room`; returns the confirmation line.
async fn join(client: &mut Client, room: &str) -> String {
    client.send(&format!("/join {room}")).await;
    line_starting(client, "* you are now in ").await
}

#[tokio::test]
async fn an_owner_runs_a_room_with_topic_modes_kicks_and_bans() {
    let server = TestServer::default().await;
    let [mut alice, mut bob, mut carol]: [Client; 3] =
        named_clients(&server, ["alice", "bob", "carol"])
            .await
            .try_into()
            .ok()
            .unwrap();
    register(&mut alice).await;
    // alice creates games: she owns it.
    join(&mut alice, "games").await;
    join(&mut bob, "games").await;
    alice.expect("bob has joined us").await;

    // The topic: not bob's to set; alice's, seen by the room and newcomers.
    bob.send("/topic my room now").await;
    bob.expect("! you are not an operator of games").await;
    alice.send("/topic Board games tonight").await;
    alice
        .expect("alice set the topic of games: Board games tonight")
        .await;
    alice.expect("* topic of games set").await;
    bob.expect("alice set the topic of games: Board games tonight")
        .await;
    // A newcomer gets the topic with the room's history, before the
    // confirmation.
    carol.send("/join games").await;
    line_starting(
        &mut carol,
        "games topic: Board games tonight (set by alice)",
    )
    .await;
    line_starting(&mut carol, "* you are now in games").await;
    alice.expect("carol has joined us").await;
    bob.expect("carol has joined us").await;
    bob.send("/topic").await;
    bob.expect("* topic of games: Board games tonight (set by alice)")
        .await;
    // The room list shows it too.
    bob.send("/rooms").await;
    bob.expect("* 2 rooms: games (3, topic: Board games tonight), lobby (0)")
        .await;

    // Moderated: only operators and voiced members speak.
    alice.send("/mode +m").await;
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect("alice sets mode +m on games").await;
    }
    alice.expect("* modes of games: +mt").await;
    bob.send("can I talk?").await;
    bob.expect("! games is moderated: only its operators and voiced members may speak")
        .await;
    alice.send("/voice bob").await;
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect("alice sets mode +v bob on games").await;
    }
    alice.expect("* +v bob in games").await;
    bob.send("thanks").await;
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect("bob: thanks").await;
    }

    // A kick: carol is out of games, back in the lobby.
    carol.send("/kick bob").await;
    carol.expect("! you are not an operator of games").await;
    alice.send("/kick carol being rude").await;
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect("carol was kicked from games by alice (being rude)")
            .await;
    }
    alice.expect("* you kicked carol from games").await;
    line_starting(&mut carol, "* you are now in lobby").await;

    // A ban by nickname: bob goes, and cannot come back until unbanned.
    alice.send("/ban bob spamming").await;
    alice
        .expect("bob was banned from games by alice (spamming)")
        .await;
    bob.expect("bob was banned from games by alice (spamming)")
        .await;
    alice.expect("alice sets mode +b nick:bob on games").await;
    alice.expect("* nick:bob is banned in games").await;
    line_starting(&mut bob, "* you are now in lobby").await;
    bob.send("/join games").await;
    bob.expect("! you are banned from games: spamming").await;
    alice.send("/bans").await;
    let bans = listing(&mut alice, "* bans of games").await;
    assert_eq!(bans[1..], ["*   nick:bob (by alice): spamming"]);
    assert_eq!(listing(&mut alice, "* mutes of games").await.len(), 1);
    alice.send("/unban bob").await;
    alice.expect("alice sets mode -b nick:bob on games").await;
    alice.expect("* nick:bob is unbanned in games").await;
    join(&mut bob, "games").await;

    // The audit log names every action.
    alice.send("/modlog").await;
    let log = listing(&mut alice, "* moderation log of games")
        .await
        .join("\n");
    for action in [
        "alice topic (Board games tonight)",
        "alice mode +m",
        "alice voice bob",
        "alice kick carol (being rude)",
        "alice ban nick:bob (spamming)",
        "alice unban nick:bob",
    ] {
        assert!(log.contains(action), "{action} missing from {log}");
    }
    bob.send("/modlog games").await;
    bob.expect("! you are not an operator of games").await;
}

#[tokio::test]
async fn timed_bans_mutes_ip_bans_and_invitations() {
    let server = TestServer::default().await;
    let [mut alice, mut dave]: [Client; 2] = named_clients(&server, ["alice", "dave"])
        .await
        .try_into()
        .ok()
        .unwrap();
    register(&mut alice).await;
    join(&mut alice, "den").await;

    // A ban for 2 s.
    alice.send("/ban dave 2s").await;
    line_starting(&mut alice, "* nick:dave is banned in den for 2s").await;
    dave.send("/join den").await;
    line_starting(&mut dave, "! you are banned from den").await;
    tokio::time::sleep(Duration::from_millis(2300)).await;
    join(&mut dave, "den").await;
    alice.expect("dave has joined us").await;

    // A mute: dave stays, but cannot speak.
    alice.send("/mute dave").await;
    line_starting(&mut alice, "* nick:dave is muted in den").await;
    dave.send("hello?").await;
    line_starting(&mut dave, "! you are muted in den").await;
    alice.send("/unmute dave").await;
    line_starting(&mut alice, "* nick:dave is unmuted in den").await;
    dave.send("hello!").await;
    line_starting(&mut alice, "dave: hello!").await;

    // A nickname pattern.
    alice.send("/ban dav*").await;
    line_starting(&mut alice, "dave was banned from den by alice").await;
    line_starting(&mut alice, "* nick:dav* is banned in den").await;
    line_starting(&mut dave, "* you are now in lobby").await;
    dave.send("/join den").await;
    line_starting(&mut dave, "! you are banned from den").await;
    alice.send("/unban nick:dav*").await;
    line_starting(&mut alice, "* nick:dav* is unbanned in den").await;

    // An IP ban: a client from 127.0.0.3 is kept out, 127.0.0.1 is not.
    alice.send("/ban ip:127.0.0.3").await;
    line_starting(&mut alice, "* ip:127.0.0.3 is banned in den").await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.3:0".parse().unwrap()).unwrap();
    let mut far = Client::greeted(socket.connect(server.addr).await.unwrap()).await;
    far.send("/join den").await;
    far.expect("! you are banned from den").await;

    // Invite-only: a guest on the page needs an invitation.
    alice.send("/mode +i").await;
    line_starting(&mut alice, "* modes of den: +it").await;
    let mut web = server.socket().await;
    assert_eq!(
        web.error_code("join", Some(json!({"room": "den"}))).await,
        "invite_only"
    );
    alice.send(&format!("/invite {}", web.nick)).await;
    line_starting(&mut alice, "* you invited").await;
    web.ok("join", Some(json!({"room": "den"}))).await;

    // Bad input gets clear errors.
    alice.send("/ban *").await;
    line_starting(&mut alice, "! invalid mask *").await;
    alice.send("/mode +x").await;
    line_starting(&mut alice, "! invalid mode change +x").await;
    alice.send("/unban nobody").await;
    alice.expect("! no ban of nick:nobody in den").await;
}

#[tokio::test]
async fn socket_io_requests_do_the_same_with_acks_and_events() {
    let server = TestServer::default().await;
    let mut owner = server.socket().await;
    owner.ok("set nickname", Some(json!("olga"))).await;
    owner
        .ok("register", Some(json!({"password": "long enough"})))
        .await;
    owner.ok("join", Some(json!({"room": "club"}))).await;
    let mut guest = server.socket().await;
    guest.ok("join", Some(json!({"room": "club"}))).await;

    assert_eq!(
        guest
            .error_code("topic", Some(json!({"room": "club", "topic": "mine"})))
            .await,
        "not_operator"
    );
    let set = owner
        .ok("topic", Some(json!({"room": "club", "topic": "Welcome"})))
        .await;
    assert_eq!(set["topic"], "Welcome");
    let topic = guest.event_skipping("topic").await;
    assert_eq!(
        topic,
        json!({"room": "club", "topic": "Welcome", "by": "olga", "changed": true})
    );
    let modes = owner
        .ok(
            "mode",
            Some(json!({"room": "club", "change": "+l", "arg": 5})),
        )
        .await;
    assert_eq!(modes["modes"], "+tl 5");
    let mode = guest.event_skipping("mode").await;
    assert_eq!(mode["change"], "+l 5");

    let nick = guest.nick.clone();
    owner
        .ok(
            "kick",
            Some(json!({"room": "club", "nick": nick, "reason": "test"})),
        )
        .await;
    let kicked = guest.event_skipping("kicked").await;
    assert_eq!(
        kicked,
        json!({"room": "club", "nick": nick, "by": "olga", "reason": "test", "banned": false})
    );
    // The limit holds: with olga alone in club and a limit of 1, nobody
    // else gets in.
    owner
        .ok(
            "mode",
            Some(json!({"room": "club", "change": "+l", "arg": "1"})),
        )
        .await;
    assert_eq!(
        guest
            .error_code("join", Some(json!({"room": "club"})))
            .await,
        "room_full"
    );
    let bans = owner.ok("bans", Some(json!({"room": "club"}))).await;
    assert_eq!(bans["bans"], json!([]));
    let log = owner.ok("modlog", Some(json!({"room": "club"}))).await;
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["topic", "mode", "kick", "mode"]);
    assert_eq!(
        guest
            .error_code("wall", Some(json!({"text": "hi all"})))
            .await,
        "not_server_operator"
    );
    assert_eq!(
        owner
            .error_code("kick", Some(json!({"room": "club"})))
            .await,
        "bad_request"
    );
}

#[tokio::test]
async fn room_settings_and_bans_survive_a_restart() {
    let config = common::config();
    let server = TestServer::start(config.clone()).await;
    let [mut alice, bob]: [Client; 2] = named_clients(&server, ["alice", "bob"])
        .await
        .try_into()
        .ok()
        .unwrap();
    register(&mut alice).await;
    join(&mut alice, "vault").await;
    alice.send("/topic Keep out").await;
    line_starting(&mut alice, "* topic of vault set").await;
    alice.send("/mode +R").await;
    line_starting(&mut alice, "* modes of vault").await;
    alice.send("/ban bob").await;
    line_starting(&mut alice, "* nick:bob is banned in vault").await;
    drop((alice, bob));
    server.shutdown().await;

    let server = TestServer::start(config).await;
    let mut bob = server.client().await;
    bob.nick("bob").await;
    bob.send("/join vault").await;
    bob.expect("! you are banned from vault").await;
    let mut guest = server.client().await;
    guest.send("/join vault").await;
    guest
        .expect("! vault is for registered users: log in first")
        .await;
    // alice still owns it, and its topic greets her.
    let mut alice = server.client().await;
    alice.send("/login alice long enough").await;
    line_starting(&mut alice, "* you are logged in as alice").await;
    alice.send("/join vault").await;
    line_starting(&mut alice, "vault topic: Keep out (set by alice)").await;
    alice.send("/unban bob").await;
    line_starting(&mut alice, "* nick:bob is unbanned in vault").await;
    // A ban of an account is lifted by the bare name too, once its owner
    // has gone (the name then resolves to no one).
    let mut carol = server.client().await;
    carol.nick("carol").await;
    register(&mut carol).await;
    alice.send("/ban carol").await;
    line_starting(&mut alice, "* account:carol is banned in vault").await;
    drop(carol);
    tokio::time::sleep(Duration::from_millis(200)).await;
    alice.send("/unban carol").await;
    line_starting(&mut alice, "* nick:carol is unbanned in vault").await;
    alice.send("/bans").await;
    assert_eq!(listing(&mut alice, "* bans of vault").await.len(), 1);
}

#[tokio::test]
async fn server_operators_ban_disconnect_and_announce_everywhere() {
    let server = TestServer::default().await;
    let [mut root, mut eve, mut bob]: [Client; 3] = named_clients(&server, ["root", "eve", "bob"])
        .await
        .try_into()
        .ok()
        .unwrap();
    // Registering a name makes nobody a server operator: the
    // administrator confirms the account (`hubbub operator add root`),
    // and it acts as one from its next login.
    register(&mut root).await;
    root.send("/wall hello").await;
    root.expect("! you are not a server operator").await;
    server
        .accounts
        .set_server_operator("root", true)
        .await
        .unwrap();
    root.send("/logout").await;
    line_starting(&mut root, "* logged out").await;
    root.send("/login root long enough").await;
    root.expect("* you are logged in as root").await;

    root.send("/wall maintenance at noon").await;
    for c in [&mut root, &mut eve, &mut bob] {
        line_starting(c, "* notice from root to everyone: maintenance at noon").await;
    }

    // A server ban disconnects eve, and keeps her name out.
    root.send("/kline eve 1h spam").await;
    line_starting(&mut root, "* nick:eve is banned in this server for 1h").await;
    let bye = line_starting(&mut eve, "! disconnected").await;
    assert_eq!(bye, "! disconnected: you are banned from this server: spam");
    let mut again = server.client().await;
    again.send("/nick eve").await;
    again
        .expect("! you are banned from this server: spam")
        .await;
    root.send("/klines").await;
    line_starting(&mut root, "* bans of this server (1):").await;

    // A kill disconnects bob wherever he is.
    root.send("/kill bob enough").await;
    line_starting(&mut root, "* you disconnected bob").await;
    let bye = line_starting(&mut bob, "! disconnected").await;
    assert_eq!(bye, "! disconnected: disconnected by root: enough");

    // A server operator acts as operator in any room.
    let mut alice = server.client().await;
    alice.nick("alice").await;
    register(&mut alice).await;
    join(&mut alice, "attic").await;
    alice.send("/mode +i").await;
    line_starting(&mut alice, "* modes of attic").await;
    root.send("/join attic").await;
    line_starting(&mut root, "* you are now in attic").await;
    root.send("/topic operators were here").await;
    line_starting(&mut root, "* topic of attic set").await;
    root.send("/unkline eve").await;
    line_starting(&mut root, "* nick:eve is unbanned in this server").await;
    // The server's own log.
    root.send("/modlog *").await;
    let log = listing(&mut root, "* moderation log of this server")
        .await
        .join("\n");
    for action in [
        "root wall (maintenance at noon)",
        "root ban nick:eve (spam)",
        "root kill bob (enough)",
        "root unban nick:eve",
    ] {
        assert!(log.contains(action), "{action} missing from {log}");
    }
}
