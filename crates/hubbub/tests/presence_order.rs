//! Presence takes its place in a room's one order: a client that sends
//! messages and then renames, moves or leaves, without waiting in between
//! (a bot, a script, a paste), is seen by the room doing exactly that.

mod common;

use common::{Client, TestServer};
use serde_json::json;

/// Lines of `watcher` until one matches `last`, other than its own echoes.
async fn lines_until(watcher: &mut Client, last: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let line = watcher.line().await;
        let done = line == last;
        seen.push(line);
        if done {
            return seen;
        }
    }
}

#[tokio::test]
async fn a_script_that_joins_speaks_and_moves_on_is_seen_in_that_order() {
    // The default store (SQLite): a commit takes long enough that a leave
    // not held behind the message would overtake it.
    let server = TestServer::default().await;
    let mut watcher = server.client().await;
    watcher.send("/join games").await;
    watcher.line().await;
    for run in 0..10 {
        let bot = format!("bot{run}");
        let mut script = Client::connect(server.addr).await;
        script
            .send_bytes(format!("/nick {bot}\n/join games\nhello {run}\n/join lobby\n").as_bytes())
            .await;
        let seen = lines_until(&mut watcher, &format!("{bot} has left")).await;
        assert_eq!(
            seen,
            [
                format!("{bot} has joined us"),
                format!("{bot}: hello {run}"),
                format!("{bot} has left"),
            ],
            "run {run}"
        );
        // A rename after a message is seen after it too.
        script
            .send_bytes(format!("/join games\nbye {run}\n/nick {bot}x\n/join lobby\n").as_bytes())
            .await;
        let seen = lines_until(&mut watcher, &format!("{bot}x has left")).await;
        assert_eq!(
            seen,
            [
                format!("{bot} has joined us"),
                format!("{bot}: bye {run}"),
                format!("{bot} is now known as {bot}x"),
                format!("{bot}x has left"),
            ],
            "run {run}"
        );
    }
}

#[tokio::test]
async fn a_socket_that_joins_speaks_and_leaves_without_waiting_is_seen_in_that_order() {
    let server = TestServer::default().await;
    let mut watcher = server.client().await;
    watcher.send("/join games").await;
    watcher.line().await;
    for run in 0..10 {
        let mut web = server.socket().await;
        // Sent back to back, acks not awaited (as a script would).
        web.emit("join", json!({"room": "games"})).await;
        web.emit(
            "message",
            json!({"room": "games", "text": format!("hello {run}")}),
        )
        .await;
        web.emit("set nickname", json!(format!("bot{run}"))).await;
        web.emit("message", json!({"room": "games", "text": "renamed"}))
            .await;
        web.emit("leave", json!({"room": "games"})).await;
        let bot = format!("bot{run}");
        let seen = lines_until(&mut watcher, &format!("{bot} has left")).await;
        assert_eq!(
            seen,
            [
                format!("{} has joined us", web.nick),
                format!("{}: hello {run}", web.nick),
                format!("{} is now known as {bot}", web.nick),
                format!("{bot}: renamed"),
                format!("{bot} has left"),
            ],
            "run {run}"
        );
    }
}
