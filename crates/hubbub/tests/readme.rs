//! The README's terminal sample is a fixture: this test plays its scenario
//! against the real server and checks alice's terminal shows, line for line,
//! what README.md shows (addresses replaced by the README's), and that the
//! README's list of commands names every command `/help` lists.

mod common;

use std::time::Duration;

use common::{Client, TestServer};

/// What the other user, bob, does between alice's lines.
enum Step {
    /// A line alice types (shown in her terminal, as in the README).
    Alice(&'static str),
    /// A line bob types (alice sees only its effects).
    Bob(&'static str),
}

/// The scenario of README.md's "Chat from a terminal".
const SCENARIO: &[Step] = &[
    Step::Alice("/nick alice"),
    Step::Alice("hi all"),
    Step::Bob("/nick bob"),
    Step::Bob("hello alice"),
    Step::Alice("/join games"),
    Step::Alice("/msg bob come to #games"),
    Step::Bob("/join games"),
    Step::Alice("/who"),
    Step::Alice("/quit"),
];

/// How long alice's terminal must stay quiet before the next step.
const QUIET: Duration = Duration::from_millis(300);

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md at the workspace root")
}

/// The README's terminal sample: the code block that starts with `$ nc`.
fn readme_sample(readme: &str) -> Vec<String> {
    let start = readme
        .find("```\n$ nc 127.0.0.1 8888\n")
        .expect("README has a terminal sample starting with `$ nc 127.0.0.1 8888`");
    let block = &readme[start + 4..];
    let end = block.find("```").expect("sample block closes");
    block[..end].lines().map(str::to_string).collect()
}

/// Everything alice receives until her terminal is quiet.
async fn drain(client: &mut Client, into: &mut Vec<String>) {
    // The server writes whole lines, so a quiet spell never ends mid-line.
    while let Ok(Some(line)) = tokio::time::timeout(QUIET, client.try_line(common::WAIT)).await {
        into.push(line);
    }
}

#[tokio::test]
async fn the_readme_terminal_sample_is_what_the_server_prints() {
    let server = TestServer::default().await;
    let mut alice = server.client().await;
    let mut terminal = vec![
        "$ nc 127.0.0.1 8888".to_string(),
        format!("You are {}", alice.name),
    ];
    let mut bob = server.client().await;
    drain(&mut alice, &mut terminal).await;
    for step in SCENARIO {
        match step {
            Step::Alice(line) => {
                alice.send(line).await;
                terminal.push(line.to_string());
            }
            Step::Bob(line) => bob.send(line).await,
        }
        drain(&mut alice, &mut terminal).await;
    }
    // The README's addresses for alice and bob.
    let shown: Vec<String> = terminal
        .iter()
        .map(|l| {
            l.replace(&alice.name, "127.0.0.1:50312")
                .replace(&bob.name, "127.0.0.1:50320")
        })
        .collect();
    let sample = readme_sample(&readme());
    assert_eq!(
        shown.join("\n"),
        sample.join("\n"),
        "README.md's terminal sample differs from what the server prints"
    );
}

#[tokio::test]
async fn the_readme_names_every_command_help_lists() {
    let server = TestServer::default().await;
    let mut client = server.client().await;
    client.send("/help").await;
    let mut help = Vec::new();
    drain(&mut client, &mut help).await;
    let commands: Vec<&str> = help
        .iter()
        .filter_map(|l| l.strip_prefix("* /")?.split_whitespace().next())
        .filter(|c| !c.starts_with('/'))
        .collect();
    assert!(commands.len() >= 8, "help lists commands: {help:?}");
    let readme = readme();
    let at = readme
        .find("`/help` lists the commands:")
        .expect("README has a sentence starting \"`/help` lists the commands:\"");
    let rest = &readme[at..];
    let sentence = &rest[..rest
        .find(". ")
        .into_iter()
        .chain(rest.find(".\n"))
        .min()
        .unwrap_or(rest.len())];
    for command in commands {
        assert!(
            sentence.contains(&format!("`/{command}`")),
            "README's command list misses /{command}: {sentence}"
        );
    }
}
