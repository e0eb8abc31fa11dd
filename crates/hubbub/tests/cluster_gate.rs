//! The gate across two nodes: a room run from node 1, its subjects on
//! node 2 — who may join, speak, type and read there; bans that follow a
//! person through renames on the other node; failed logins counted by
//! the whole cluster.

mod common;

use common::cluster::{socket, tcp, tcp_skip_to, tcp_skip_until, Cluster, REDIS};
use common::sio::SioClient;
use serde_json::json;

#[tokio::test]
async fn a_room_run_on_one_node_is_gated_on_the_other() {
    let cluster = Cluster::new().await;
    let n1 = cluster.node(REDIS, "n1").await;
    let n2 = cluster.node(REDIS, "n2").await;
    let mut owner = tcp(&n1, "owner").await;
    owner.send("/register long enough").await;
    tcp_skip_to(&mut owner, "* you registered owner; you are logged in").await;
    owner.send("/join r").await;
    tcp_skip_until(&mut owner, |l| l.starts_with("* you are now in r")).await;

    let mut member = socket(&n2, "mem").await;
    let mut muted = socket(&n2, "mut").await;
    let mut banned = socket(&n2, "ban").await;
    let mut kicked = socket(&n2, "kck").await;
    for c in [&mut member, &mut muted, &mut banned, &mut kicked] {
        c.ok("join", Some(json!({"room": "r"}))).await;
    }
    let mut outsider = socket(&n2, "out").await;
    for (command, done) in [
        ("/mute mut", "* nick:mut is muted in r"),
        ("/mode +m", "* modes of r"),
        ("/mode +i", "* modes of r"),
        ("/kick kck", "* you kicked kck from r"),
        ("/ban ban", "* nick:ban is banned in r"),
    ] {
        owner.send(command).await;
        tcp_skip_until(&mut owner, |l| l.starts_with(done)).await;
    }
    // The policy reaches n2 through the store; give it a moment.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let rows: [(&str, &mut SioClient, [&str; 5]); 5] = [
        (
            "member",
            &mut member,
            ["ok", "moderated", "moderated", "ok", "ok"],
        ),
        ("muted", &mut muted, ["ok", "muted", "muted", "ok", "ok"]),
        (
            "banned",
            &mut banned,
            ["banned", "not_in_room", "not_in_room", "banned", "banned"],
        ),
        (
            "kicked",
            &mut kicked,
            [
                "invite_only",
                "not_in_room",
                "not_in_room",
                "invite_only",
                "invite_only",
            ],
        ),
        (
            "outsider",
            &mut outsider,
            [
                "invite_only",
                "not_in_room",
                "not_in_room",
                "invite_only",
                "invite_only",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (name, client, want) in rows {
        let got = [
            client.verdict("join", json!({"room": "r"})).await,
            client
                .verdict("message", json!({"room": "r", "text": "hi"}))
                .await,
            client
                .verdict("typing", json!({"room": "r", "typing": true}))
                .await,
            client.verdict("history", json!({"room": "r"})).await,
            client.verdict("members", json!({"room": "r"})).await,
        ];
        for (action, (got, want)) in ["join", "message", "typing", "history", "members"]
            .iter()
            .zip(got.iter().zip(want))
        {
            if got != want {
                failures.push(format!("{name} {action}: got {got}, want {want}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // A ban set on n1 holds for the person on n2 through a rename.
    banned.ok("set nickname", Some(json!("innocent"))).await;
    assert_eq!(banned.verdict("join", json!({"room": "r"})).await, "banned");
    // A pattern ban set on n1: a member on n2 renaming into it is removed.
    // (In a moderated room a rename is speech: unvoiced, mem could not.)
    owner.send("/mode -m").await;
    tcp_skip_until(&mut owner, |l| l.starts_with("* modes of r")).await;
    owner.send("/ban Troll*").await;
    tcp_skip_until(&mut owner, |l| {
        l.starts_with("* nick:Troll* is banned in r")
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    member.ok("set nickname", Some(json!("TROLLISH"))).await;
    tcp_skip_to(&mut owner, "TROLLISH was banned from r by owner").await;
}

#[tokio::test]
async fn failed_logins_are_counted_by_the_whole_cluster() {
    let cluster = Cluster::new().await;
    let n1 = cluster.node(REDIS, "n1").await;
    let n2 = cluster.node(REDIS, "n2").await;
    let mut carol = tcp(&n1, "carol").await;
    carol.send("/register long enough").await;
    tcp_skip_to(&mut carol, "* you registered carol; you are logged in").await;
    // The right password spends nothing.
    for node in [&n1, &n2, &n1, &n2, &n1, &n2] {
        let answer = SioClient::connect_answer(
            node.http,
            json!({"nick": "carol", "password": "long enough"}),
        )
        .await;
        assert!(answer.is_ok(), "{answer:?}");
    }
    // Five wrong guesses spread over both nodes use up the account's minute.
    let mut codes = Vec::new();
    for node in [&n1, &n2, &n1, &n2, &n1, &n2] {
        let answer = SioClient::connect_answer(
            node.http,
            json!({"nick": "carol", "password": "guess guess"}),
        )
        .await;
        codes.push(
            answer.unwrap_err()["data"]["code"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(
        codes,
        [
            "invalid_credentials",
            "invalid_credentials",
            "invalid_credentials",
            "invalid_credentials",
            "invalid_credentials",
            "rate_limited"
        ]
    );
    // On either node, the right password too, until the minute is over.
    for node in [&n1, &n2] {
        let answer = SioClient::connect_answer(
            node.http,
            json!({"nick": "carol", "password": "long enough"}),
        )
        .await;
        assert_eq!(answer.unwrap_err()["data"]["code"], "rate_limited");
    }
}

#[tokio::test]
async fn a_ban_set_while_a_node_was_cut_off_holds_there_once_it_is_back() {
    let cluster = Cluster::new().await;
    let proxy = common::proxy::Proxy::start("127.0.0.1:6379".parse().unwrap()).await;
    let n1 = cluster.node(REDIS, "n1").await;
    let n2 = cluster.node(&format!("redis://{}", proxy.addr), "n2").await;
    let mut owner = tcp(&n1, "owner").await;
    owner.send("/register long enough").await;
    tcp_skip_to(&mut owner, "* you registered owner; you are logged in").await;
    owner.send("/join r").await;
    tcp_skip_until(&mut owner, |l| l.starts_with("* you are now in r")).await;
    let mut mallory = socket(&n2, "mallory").await;
    mallory.ok("join", Some(json!({"room": "r"}))).await;
    tcp_skip_until(&mut owner, |l| l.contains("mallory")).await;

    // n2 misses the announcement of the ban...
    proxy.cut();
    n2.wait_for_log("cluster link to Redis failed").await;
    owner.send("/ban mallory").await;
    tcp_skip_until(&mut owner, |l| {
        l.starts_with("* nick:mallory is banned in r")
    })
    .await;
    proxy.restore();
    // ...and reads every policy again once it is back: mallory is removed
    // there too, and kept out.
    let kicked = mallory.event_skipping("kicked").await;
    assert_eq!(kicked["nick"], "mallory");
    assert_eq!(
        mallory.verdict("join", json!({"room": "r"})).await,
        "banned"
    );
}

/// A room whose rules one node stored (no message yet): on a node that
/// started later, a look-alike of its name means that room, with its
/// rules (the store records which room a look-alike means), not a new
/// room beside it.
#[tokio::test]
async fn a_look_alike_means_the_room_another_node_stored() {
    let cluster = Cluster::new().await;
    let n1 = cluster.node(REDIS, "n1").await;
    let mut owner = tcp(&n1, "owner").await;
    owner.send("/register long enough").await;
    tcp_skip_to(&mut owner, "* you registered owner; you are logged in").await;
    owner.send("/join games").await;
    tcp_skip_until(&mut owner, |l| l.starts_with("* you are now in games")).await;
    owner.send("/mode +i").await;
    tcp_skip_until(&mut owner, |l| l.starts_with("* modes of games")).await;
    owner.send("/join lobby").await;
    tcp_skip_until(&mut owner, |l| l.starts_with("* you are now in lobby")).await;
    // Recording the name is not on the command's path: give it a moment.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let n2 = cluster.node(REDIS, "n2").await;
    let mut mallory = tcp(&n2, "mallory").await;
    mallory.send("/join g\u{0430}mes").await; // Cyrillic а
    tcp_skip_to(
        &mut mallory,
        "! games is invite-only: ask one of its operators for an invitation",
    )
    .await;
    let mut page = socket(&n2, "page").await;
    let refused = page
        .error_code("join", Some(json!({"room": "G\u{0410}MES"})))
        .await;
    assert_eq!(refused, "invite_only");
}
