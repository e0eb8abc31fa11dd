//! The gate (`hub::gate`): who may do what, for a person, on every path.
//! A table of subjects (owner, operator, voiced, member, muted, banned,
//! kicked, outsider, a name deleted and registered again) by actions
//! (join, speak, typing, reads, topic, kicks), over Socket.IO and TCP; and
//! each way a rule used to fail: bound to a nickname instead of a person,
//! checked once instead of kept, reads not gated, input trusted raw,
//! credentials half-checked, roles without order. (Across two nodes:
//! tests/cluster_gate.rs.)

mod common;

use std::time::Duration;

use common::sio::SioClient;
use common::{named_clients, Client, TestServer};
use serde_json::json;

const PASSWORD: &str = "long enough";

/// A Socket.IO guest named `nick`.
async fn guest(server: &TestServer, nick: &str) -> SioClient {
    let mut client = SioClient::connect(server.http).await;
    client.ok("set nickname", Some(json!(nick))).await;
    client.nick = nick.to_string();
    client
}

/// A Socket.IO user registered (and logged in) as `nick`.
async fn user(server: &TestServer, nick: &str) -> SioClient {
    let mut client = guest(server, nick).await;
    client
        .ok("register", Some(json!({ "password": PASSWORD })))
        .await;
    client
}

#[tokio::test]
async fn who_may_do_what_over_socketio() {
    let server = TestServer::default().await;
    let mut owner = user(&server, "own").await;
    owner.ok("join", Some(json!({"room": "r"}))).await;
    let mut op = user(&server, "opr").await;
    let mut voiced = guest(&server, "vce").await;
    let mut member = guest(&server, "mem").await;
    let mut muted = guest(&server, "mut").await;
    let mut kicked = guest(&server, "kck").await;
    let mut banned = guest(&server, "ban").await;
    let mut outsider = guest(&server, "out").await;
    for c in [
        &mut op,
        &mut voiced,
        &mut member,
        &mut muted,
        &mut kicked,
        &mut banned,
    ] {
        c.ok("join", Some(json!({"room": "r"}))).await;
    }
    // A name whose account had operator status, deleted, then registered
    // by someone else: a new person, with none of it.
    let mut former = user(&server, "dee").await;
    former.ok("join", Some(json!({"room": "r"}))).await;
    owner
        .ok("op", Some(json!({"room": "r", "nick": "dee"})))
        .await;
    former
        .ok("unregister", Some(json!({"password": PASSWORD})))
        .await;
    drop(former);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut stranger = user(&server, "dee").await;

    for (event, data) in [
        ("op", json!({"room": "r", "nick": "opr"})),
        ("voice", json!({"room": "r", "nick": "vce"})),
        ("mute", json!({"room": "r", "mask": "mut"})),
        ("mode", json!({"room": "r", "change": "+m"})),
        ("mode", json!({"room": "r", "change": "+i"})),
        ("kick", json!({"room": "r", "nick": "kck"})),
        ("ban", json!({"room": "r", "mask": "ban"})),
    ] {
        owner.ok(event, Some(data)).await;
    }

    let subjects: [(&str, &mut SioClient); 9] = [
        ("owner", &mut owner),
        ("operator", &mut op),
        ("voiced", &mut voiced),
        ("member", &mut member),
        ("muted", &mut muted),
        ("kicked", &mut kicked),
        ("banned", &mut banned),
        ("outsider", &mut outsider),
        ("re-registered", &mut stranger),
    ];
    // What each subject is answered, by action: join, message, typing,
    // history, members, topic (read), topic (set), kick the voiced member
    // ("-": not asked here, the owner and operator kick below), kick the
    // owner.
    let expected: [(&str, [&str; 9]); 9] = [
        (
            "owner",
            ["ok", "ok", "ok", "ok", "ok", "ok", "ok", "-", "outranked"],
        ),
        (
            "operator",
            ["ok", "ok", "ok", "ok", "ok", "ok", "ok", "-", "outranked"],
        ),
        (
            "voiced",
            [
                "ok",
                "ok",
                "ok",
                "ok",
                "ok",
                "ok",
                "not_operator",
                "not_operator",
                "not_operator",
            ],
        ),
        (
            "member",
            [
                "ok",
                "moderated",
                "moderated",
                "ok",
                "ok",
                "ok",
                "not_operator",
                "not_operator",
                "not_operator",
            ],
        ),
        (
            "muted",
            [
                "ok",
                "muted",
                "muted",
                "ok",
                "ok",
                "ok",
                "not_operator",
                "not_operator",
                "not_operator",
            ],
        ),
        (
            "kicked",
            [
                "invite_only",
                "not_in_room",
                "not_in_room",
                "invite_only",
                "invite_only",
                "invite_only",
                "not_operator",
                "not_operator",
                "not_operator",
            ],
        ),
        (
            "banned",
            [
                "banned",
                "not_in_room",
                "not_in_room",
                "banned",
                "banned",
                "banned",
                "not_operator",
                "not_operator",
                "not_operator",
            ],
        ),
        (
            "outsider",
            [
                "invite_only",
                "not_in_room",
                "not_in_room",
                "invite_only",
                "invite_only",
                "invite_only",
                "not_operator",
                "not_operator",
                "not_operator",
            ],
        ),
        (
            "re-registered",
            [
                "invite_only",
                "not_in_room",
                "not_in_room",
                "invite_only",
                "invite_only",
                "invite_only",
                "not_operator",
                "not_operator",
                "not_operator",
            ],
        ),
    ];
    let actions = [
        "join",
        "message",
        "typing",
        "history",
        "members",
        "topic",
        "set topic",
        "kick",
        "kick the owner",
    ];
    let mut failures = Vec::new();
    for ((name, client), (row, want)) in subjects.into_iter().zip(expected) {
        assert_eq!(name, row);
        let got = [
            client.verdict("join", json!({"room": "r"})).await,
            client
                .verdict("message", json!({"room": "r", "text": "hello"}))
                .await,
            client
                .verdict("typing", json!({"room": "r", "typing": true}))
                .await,
            client.verdict("history", json!({"room": "r"})).await,
            client.verdict("members", json!({"room": "r"})).await,
            client.verdict("topic", json!({"room": "r"})).await,
            client
                .verdict("topic", json!({"room": "r", "topic": "mine"}))
                .await,
            if want[7] == "-" {
                "-".to_string()
            } else {
                client
                    .verdict("kick", json!({"room": "r", "nick": "vce"}))
                    .await
            },
            client
                .verdict("kick", json!({"room": "r", "nick": "own"}))
                .await,
        ];
        for (action, (got, want)) in actions.iter().zip(got.iter().zip(want)) {
            if got != want {
                failures.push(format!("{name} {action}: got {got}, want {want}"));
            }
        }
    }
    // The operator may kick a member, not the owner (checked above), and
    // the owner may kick the operator.
    assert_eq!(
        op.verdict("kick", json!({"room": "r", "nick": "mem"}))
            .await,
        "ok"
    );
    assert_eq!(
        owner
            .verdict("kick", json!({"room": "r", "nick": "opr"}))
            .await,
        "ok"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_ban_or_mute_binds_the_person_not_the_name() {
    let server = TestServer::default().await;
    let [mut owner, mut troll, mut quiet]: [Client; 3] =
        named_clients(&server, ["owner", "troll", "quiet"])
            .await
            .try_into()
            .ok()
            .unwrap();
    owner.send(&format!("/register {PASSWORD}")).await;
    owner.line_starting("* you registered owner").await;
    troll.send(&format!("/register {PASSWORD}")).await;
    troll.line_starting("* you registered troll").await;
    for c in [&mut owner, &mut troll, &mut quiet] {
        c.send("/join r").await;
        c.line_starting("* you are now in r").await;
    }
    // A logged-in user's ban holds through a rename and a logout.
    owner.send("/ban troll").await;
    owner.line_starting("* account:troll is banned in r").await;
    troll.line_starting("* you are now in lobby").await;
    troll.send("/logout").await;
    troll.line_starting("* logged out").await;
    troll.send("/join r").await;
    troll.expect("! you are banned from r").await;
    troll.send("/nick troll2").await;
    troll.line_starting("troll is now known as troll2").await;
    troll.send("/join r").await;
    troll.expect("! you are banned from r").await;

    // A guest's mute holds through a rename.
    owner.send("/mute quiet").await;
    owner.line_starting("* nick:quiet is muted in r").await;
    quiet.send("hello").await;
    quiet.line_starting("! you are muted in r").await;
    quiet.send("/nick loud").await;
    quiet.line_starting("! you are muted in r").await;
    // Nor does leaving and coming back shed it.
    quiet.send("/join lobby").await;
    quiet.line_starting("* you are now in lobby").await;
    quiet.send("/nick loud").await;
    quiet.expect("quiet is now known as loud").await;
    quiet.send("/join r").await;
    quiet.line_starting("* you are now in r").await;
    quiet.send("still me").await;
    quiet.line_starting("! you are muted in r").await;
}

#[tokio::test]
async fn grants_name_people_who_exist() {
    let server = TestServer::default().await;
    let [mut owner, guest]: [Client; 2] = named_clients(&server, ["owner", "gnick"])
        .await
        .try_into()
        .ok()
        .unwrap();
    owner.send(&format!("/register {PASSWORD}")).await;
    owner.line_starting("* you registered owner").await;
    owner.send("/join r").await;
    owner.line_starting("* you are now in r").await;
    owner.send("/mode +m").await;
    owner.line_starting("* modes of r").await;
    owner.send("/mode +i").await;
    owner.line_starting("* modes of r").await;
    for (command, code) in [
        ("/voice nobody", "no_such_subject"),
        ("/invite nobody", "no_such_subject"),
        ("/op nobody", "no_such_subject"),
        ("/op gnick", "bad_request"),
    ] {
        owner.send(command).await;
        let line = owner.line_starting("! ").await;
        assert!(
            line.contains("not a registered nickname") || line.contains("guest"),
            "{command} ({code}): {line}"
        );
    }
    // An invitation to a guest is its session's: another session taking
    // the name later is not invited.
    owner.send("/invite gnick").await;
    owner.line_starting("* you invited gnick to r").await;
    drop(guest);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut later = server.client().await;
    later.nick("gnick").await;
    later.send("/join r").await;
    later
        .expect("! r is invite-only: ask one of its operators for an invitation")
        .await;
    // A voice for a guest likewise.
    let mut fresh = server.client().await;
    owner.send(&format!("/invite {}", fresh.name)).await;
    owner.line_starting("* you invited").await;
    owner.send(&format!("/voice {}", fresh.name)).await;
    owner.line_starting("* +v").await;
    fresh.send("/join r").await;
    fresh.line_starting("* you are now in r").await;
    fresh.send("heard").await;
    let heard = format!("{}: heard", fresh.name);
    fresh.line_starting(&heard).await;
}

#[tokio::test]
async fn a_name_registered_again_is_someone_new() {
    let server = TestServer::default().await;
    let mut alice = server.client().await;
    alice.nick("alice").await;
    alice.send(&format!("/register {PASSWORD}")).await;
    alice.line_starting("* you registered alice").await;
    alice.send("/join club").await;
    alice.line_starting("* you are now in club").await;
    alice.send("/mode +i").await;
    alice.line_starting("* modes of club").await;
    alice.send("/join lobby").await;
    alice.line_starting("* you are now in lobby").await;
    alice.send(&format!("/unregister {PASSWORD}")).await;
    alice.line_starting("* account alice deleted").await;
    drop(alice);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut stranger = server.client().await;
    stranger.nick("alice").await;
    stranger.send(&format!("/register {PASSWORD}")).await;
    stranger.line_starting("* you registered alice").await;
    stranger.send("/join club").await;
    stranger
        .expect("! club is invite-only: ask one of its operators for an invitation")
        .await;
    stranger.send("/modlog club").await;
    stranger.expect("! you are not an operator of club").await;
    // Nor does registering a name make anyone a server operator.
    stranger.send("/wall hi").await;
    stranger.expect("! you are not a server operator").await;
}

#[tokio::test]
async fn rules_are_kept_when_what_they_depend_on_changes() {
    let server = TestServer::default().await;
    let [mut owner, mut member, mut other]: [Client; 3] =
        named_clients(&server, ["owner", "member", "other"])
            .await
            .try_into()
            .ok()
            .unwrap();
    owner.send(&format!("/register {PASSWORD}")).await;
    owner.line_starting("* you registered owner").await;
    for c in [&mut owner, &mut member, &mut other] {
        c.send("/join r").await;
        c.line_starting("* you are now in r").await;
    }
    // A rename into a ban removes the member at once.
    owner.send("/ban Troll*").await;
    owner.line_starting("* nick:Troll* is banned in r").await;
    member.send("/nick TROLLISH").await;
    other.line_starting("TROLLISH was banned from r").await;
    member.line_starting("* you are now in lobby").await;
    // Look-alikes too: what nickname uniqueness takes for `trollbase` is
    // what the ban takes for it.
    other.send("/nick TroIIbase").await;
    owner.line_starting("TroIIbase was banned from r").await;

    // +R silences the guests already inside.
    let mut guest = server.client().await;
    guest.send("/join r").await;
    guest.line_starting("* you are now in r").await;
    owner.send("/mode +R").await;
    owner.line_starting("* modes of r").await;
    guest.send("still talking").await;
    guest
        .line_starting("! r is for registered users: log in first")
        .await;

    // An operator taken off loses the power at once.
    owner.send("/mode -R").await;
    owner.line_starting("* modes of r").await;
    let mut helper = server.client().await;
    helper.nick("helper").await;
    helper.send(&format!("/register {PASSWORD}")).await;
    helper.line_starting("* you registered helper").await;
    helper.send("/join r").await;
    helper.line_starting("* you are now in r").await;
    owner.send("/op helper").await;
    owner.line_starting("* +o helper in r").await;
    helper.send("/topic helping").await;
    helper.line_starting("* topic of r set").await;
    owner.send("/deop helper").await;
    owner.line_starting("* -o helper in r").await;
    helper.send("/topic not any more").await;
    helper.line_starting("! you are not an operator of r").await;
}

#[tokio::test]
async fn an_operator_cannot_act_on_the_owner() {
    let server = TestServer::default().await;
    let [mut owner, mut op]: [Client; 2] = named_clients(&server, ["owner", "helper"])
        .await
        .try_into()
        .ok()
        .unwrap();
    for c in [&mut owner, &mut op] {
        c.send(&format!("/register {PASSWORD}")).await;
        c.line_starting("* you registered").await;
        c.send("/join r").await;
        c.line_starting("* you are now in r").await;
    }
    owner.send("/op helper").await;
    owner.line_starting("* +o helper in r").await;
    for command in ["/kick owner", "/ban owner", "/mute owner", "/deop owner"] {
        op.send(command).await;
        let line = op.line_starting("! ").await;
        assert!(
            line.contains("ranks at or above you") || line.contains("not an operator"),
            "{command}: {line}"
        );
    }
    owner.send("say something").await;
    op.line_starting("owner: say something").await;
}

#[tokio::test]
async fn a_login_rename_waits_for_the_messages_sent_before_it() {
    let server = TestServer::default().await;
    let [mut alice, mut watcher]: [Client; 2] = named_clients(&server, ["alice", "watcher"])
        .await
        .try_into()
        .ok()
        .unwrap();
    alice.send(&format!("/register {PASSWORD}")).await;
    alice.line_starting("* you registered alice").await;
    alice.send("/logout").await;
    alice.line_starting("* logged out").await;
    alice.nick("a2").await;
    watcher.line_starting("alice is now known as a2").await;
    // Messages and then a login in one burst: the room sees every message
    // under the old name before the rename.
    let mut burst = String::new();
    for i in 0..40 {
        burst.push_str(&format!("m{i}\n"));
    }
    burst.push_str(&format!("/login alice {PASSWORD}\n"));
    alice.send_bytes(burst.as_bytes()).await;
    for i in 0..40 {
        watcher.expect(&format!("a2: m{i}")).await;
    }
    watcher.expect("a2 is now known as alice").await;
}

#[tokio::test]
async fn renames_are_bounded_like_speech() {
    let server = TestServer::default().await;
    let mut client = server.client().await;
    let mut watcher = server.client().await;
    client
        .line_starting(&format!("{} has joined us", watcher.name))
        .await;
    let first = client.name.clone();
    let mut accepted = 0;
    let mut refused = None;
    for i in 0..12 {
        client.send(&format!("/nick n{i}")).await;
        let line = client.line().await;
        if line.starts_with("! ") {
            refused = Some(line);
            break;
        }
        accepted += 1;
    }
    assert_eq!(accepted, hubbub::client::MAX_RENAMES, "{first}");
    let refused = refused.expect("a refusal");
    assert!(refused.contains("changing nicknames too fast"), "{refused}");
    // The room saw exactly the renames that were made.
    for i in 0..accepted {
        let line = watcher.line().await;
        assert!(line.ends_with(&format!(" is now known as n{i}")), "{line}");
    }
    watcher.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_login_is_a_rename_the_room_sees() {
    let server = TestServer::default().await;
    let [mut owner, mut other, mut quiet]: [Client; 3] =
        named_clients(&server, ["owner", "spammy-name", "quiet"])
            .await
            .try_into()
            .ok()
            .unwrap();
    for c in [&mut owner, &mut other] {
        c.send(&format!("/register {PASSWORD}")).await;
        c.line_starting("* you registered").await;
    }
    other.send("/quit").await;
    for c in [&mut owner, &mut quiet] {
        c.send("/join r").await;
        c.line_starting("* you are now in r").await;
    }
    owner.send("/mute quiet").await;
    owner.line_starting("* nick:quiet is muted in r").await;
    // Logging in to an account of another name would show the room that
    // name: speech, which a muted member may not make.
    quiet.send(&format!("/login spammy-name {PASSWORD}")).await;
    quiet.line_starting("! you are muted in r").await;
    owner.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_ban_is_lifted_only_by_someone_ranked_as_high_as_its_setter() {
    let server = TestServer::default().await;
    let [mut owner, mut op]: [Client; 2] = named_clients(&server, ["owner", "helper"])
        .await
        .try_into()
        .ok()
        .unwrap();
    for c in [&mut owner, &mut op] {
        c.send(&format!("/register {PASSWORD}")).await;
        c.line_starting("* you registered").await;
        c.send("/join r").await;
        c.line_starting("* you are now in r").await;
    }
    owner.send("/op helper").await;
    owner.line_starting("* +o helper in r").await;
    owner.send("/ban nick:spammer*").await;
    owner.line_starting("* nick:spammer* is banned in r").await;
    op.send("/unban nick:spammer*").await;
    let refused = op.line_starting("! ").await;
    assert!(refused.contains("ranks at or above you"), "{refused}");
    // The operator's own ban is theirs to lift.
    op.send("/ban nick:flooder*").await;
    op.line_starting("* nick:flooder* is banned in r").await;
    op.send("/unban nick:flooder*").await;
    op.line_starting("* nick:flooder* is unbanned in r").await;
    owner.send("/unban nick:spammer*").await;
    owner
        .line_starting("* nick:spammer* is unbanned in r")
        .await;
}

#[tokio::test]
async fn the_room_list_keeps_closed_rooms_topics_to_those_who_may_read_them() {
    let server = TestServer::default().await;
    let mut owner = server.client().await;
    owner.nick("owner").await;
    owner.send(&format!("/register {PASSWORD}")).await;
    owner.line_starting("* you registered owner").await;
    owner.send("/join secret").await;
    owner.line_starting("* you are now in secret").await;
    owner.send("/topic the plan").await;
    owner.line_starting("* topic of secret set").await;
    owner.send("/mode +i").await;
    owner.line_starting("* modes of secret").await;
    let mut page = SioClient::connect(server.http).await;
    let rooms = page.ok("rooms", None).await;
    assert!(!rooms.to_string().contains("the plan"), "{rooms}");
    assert_eq!(
        page.error_code("topic", Some(json!({"room": "secret"})))
            .await,
        "invite_only"
    );
}

#[tokio::test]
async fn a_revoked_server_operator_loses_the_power_at_once() {
    let server = TestServer::default().await;
    let mut root = server.client().await;
    root.nick("root").await;
    root.send(&format!("/register {PASSWORD}")).await;
    root.line_starting("* you registered root").await;
    server
        .accounts
        .set_server_operator("root", true)
        .await
        .unwrap();
    root.send("/logout").await;
    root.line_starting("* logged out").await;
    root.send(&format!("/login root {PASSWORD}")).await;
    root.line_starting("* you are logged in as root").await;
    root.send("/wall first").await;
    root.line_starting("* notice sent").await;
    server
        .accounts
        .set_server_operator("root", false)
        .await
        .unwrap();
    root.send("/wall second").await;
    root.line_starting("! you are not a server operator").await;
}

/// What a line client was answered: `"ok"` once `done` shows, or the code
/// of the refusal (`! …`) that came instead; other lines are skipped.
async fn tcp_verdict(client: &mut Client, done: &str) -> String {
    loop {
        let line = client.line().await;
        if line.starts_with(done) {
            return "ok".to_string();
        }
        if let Some(refusal) = line.strip_prefix("! ") {
            for (text, code) in [
                ("is moderated", "moderated"),
                ("you are muted", "muted"),
                ("is invite-only", "invite_only"),
                ("you are banned", "banned"),
                ("not an operator", "not_operator"),
                ("ranks at or above you", "outranked"),
            ] {
                if refusal.contains(text) {
                    return code.to_string();
                }
            }
            return refusal.to_string();
        }
    }
}

#[tokio::test]
async fn who_may_do_what_over_tcp() {
    let server = TestServer::default().await;
    let names = ["own", "opr", "vce", "mem", "mut", "ban", "out"];
    let mut clients = named_clients(&server, names).await;
    for c in &mut clients[..2] {
        c.send(&format!("/register {PASSWORD}")).await;
        c.line_starting("* you registered").await;
    }
    for c in &mut clients[..6] {
        c.send("/join r").await;
        c.line_starting("* you are now in r").await;
    }
    for (command, done) in [
        ("/op opr", "* +o opr in r"),
        ("/voice vce", "* +v vce in r"),
        ("/mute mut", "* nick:mut is muted in r"),
        ("/mode +m", "* modes of r"),
        ("/mode +i", "* modes of r"),
        ("/ban ban", "* nick:ban is banned in r"),
    ] {
        clients[0].send(command).await;
        clients[0].line_starting(done).await;
    }
    clients[5].line_starting("* you are now in lobby").await;
    // Subject: speak, set the topic, kick the voiced member ("-": not asked),
    // kick the owner, join r (from the room they are in).
    let expected: [(&str, [&str; 5]); 7] = [
        ("own", ["ok", "ok", "-", "outranked", "-"]),
        ("opr", ["ok", "ok", "-", "outranked", "-"]),
        (
            "vce",
            ["ok", "not_operator", "not_operator", "not_operator", "-"],
        ),
        (
            "mem",
            [
                "moderated",
                "not_operator",
                "not_operator",
                "not_operator",
                "-",
            ],
        ),
        (
            "mut",
            ["muted", "not_operator", "not_operator", "not_operator", "-"],
        ),
        ("ban", ["-", "-", "-", "-", "banned"]),
        ("out", ["-", "-", "-", "-", "invite_only"]),
    ];
    let mut failures = Vec::new();
    for (client, (name, want)) in clients.iter_mut().zip(expected) {
        assert_eq!(client.name, name);
        let mut got = Vec::new();
        for (i, (command, done)) in [
            ("hello".to_string(), format!("{name}: hello")),
            ("/topic mine".to_string(), "* topic of r set".to_string()),
            ("/kick vce".to_string(), "* you kicked".to_string()),
            ("/kick own".to_string(), "* you kicked".to_string()),
            ("/join r".to_string(), "* you are now in r".to_string()),
        ]
        .into_iter()
        .enumerate()
        {
            if want[i] == "-" {
                got.push("-".to_string());
                continue;
            }
            client.send(&command).await;
            got.push(tcp_verdict(client, &done).await);
        }
        for (action, (got, want)) in ["speak", "set topic", "kick", "kick the owner", "join"]
            .iter()
            .zip(got.iter().zip(want))
        {
            if got != want {
                failures.push(format!("{name} {action}: got {got}, want {want}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
