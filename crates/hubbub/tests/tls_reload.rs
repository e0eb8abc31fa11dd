//! Certificate reloads against the real server: the function SIGHUP
//! calls, in process, and SIGHUP sent to the binary; new connections get the
//! new certificate, open ones go on, and files that do not load keep the old
//! one.

mod common;

use common::tls::{self, client_trusting, presented, server_config, TestPki};
use common::{Client, Process, TestServer};

#[tokio::test]
async fn a_reload_serves_the_new_certificate_to_new_connections_only() {
    let mut pki = TestPki::new();
    let server = TestServer::start(server_config(&pki)).await;
    let tls_tcp = server.tls_tcp.unwrap();
    let reload = || server.tls.as_ref().unwrap().reload();
    // Each check gets a client of its own: a client that kept a session
    // would resume it, and see no certificate at all.
    let first_ca = pki.ca.clone();
    let mut alice = tls::line_client(tls_tcp, pki.client()).await;
    alice.nick("alice").await;

    pki.reissue("renewed test CA");
    reload().expect("the new files load");
    // The open connection goes on with its session.
    alice.send("still here").await;
    alice.expect("alice: still here").await;
    // New handshakes present the new certificate, on both listeners.
    let first_client = || client_trusting(&first_ca, &[]);
    assert!(tls::connect(tls_tcp, first_client()).await.is_err());
    assert!(tls::connect(server.https.unwrap(), first_client())
        .await
        .is_err());
    let fresh = tls::connect(tls_tcp, pki.client()).await.unwrap();
    assert_eq!(presented(&fresh), pki.leaf);
    let https = tls::connect(server.https.unwrap(), pki.client())
        .await
        .unwrap();
    assert_eq!(presented(&https), pki.leaf);

    // A broken file keeps the certificate in use, and says which file.
    let in_use = pki.leaf.clone();
    let good_cert = std::fs::read(&pki.cert).unwrap();
    std::fs::write(&pki.cert, "not a certificate").unwrap();
    let error = format!("{:#}", reload().unwrap_err());
    assert!(error.contains("--tls-cert"), "{error}");
    let still = tls::connect(tls_tcp, pki.client()).await.unwrap();
    assert_eq!(presented(&still), in_use);
    // So does a key that does not belong to the certificate.
    std::fs::write(&pki.cert, &good_cert).unwrap();
    std::fs::write(
        &pki.key,
        rcgen::KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    let error = format!("{:#}", reload().unwrap_err());
    assert!(error.contains("does not fit"), "{error}");
    let still = tls::connect(tls_tcp, pki.client()).await.unwrap();
    assert_eq!(presented(&still), in_use);

    alice.send("and still").await;
    // After the joins and leaves of the connections that checked.
    skip_to(&mut alice, "alice: and still").await;
    server.shutdown().await;
}

/// Reads `client`'s lines until `expected`.
async fn skip_to(client: &mut Client, expected: &str) {
    while client.line().await != expected {}
}

/// Sends SIGHUP to the process.
async fn hang_up(process: &Process) {
    let pid = process.child.id().expect("running").to_string();
    let sent = tokio::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .await
        .unwrap();
    assert!(sent.success());
}

#[tokio::test]
async fn sighup_reloads_the_certificate_of_the_running_binary() {
    let mut pki = TestPki::new();
    let data = common::data_dir();
    let args: Vec<String> = [
        "--tls-cert",
        pki.cert.to_str().unwrap(),
        "--tls-key",
        pki.key.to_str().unwrap(),
        "--tls-tcp-addr",
        "127.0.0.1:0",
        "--https-addr",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut process = Process::start(&args).await;
    let tls_tcp = process.tls_tcp.expect("the log shows tls_tcp=");
    assert!(process.https.is_some(), "the log shows https=");
    let first_ca = pki.ca.clone();
    let mut alice = tls::line_client(tls_tcp, pki.client()).await;
    alice.nick("alice").await;

    pki.reissue("renewed test CA");
    hang_up(&process).await;
    process.wait_for_log("TLS certificate reloaded").await;
    alice.send("still here").await;
    alice.expect("alice: still here").await;
    assert!(tls::connect(tls_tcp, client_trusting(&first_ca, &[]))
        .await
        .is_err());
    let fresh = tls::connect(tls_tcp, pki.client()).await.unwrap();
    assert_eq!(presented(&fresh), pki.leaf);

    std::fs::write(&pki.key, "-----BEGIN PRIVATE KEY-----\nbroken\n").unwrap();
    hang_up(&process).await;
    process.wait_for_log("TLS certificate not reloaded").await;
    let still = tls::connect(tls_tcp, pki.client()).await.unwrap();
    assert_eq!(presented(&still), pki.leaf);
    alice.send("and still").await;
    // After the joins and leaves of the connections that checked.
    skip_to(&mut alice, "alice: and still").await;
    assert!(process.terminate().await.success());
}

#[tokio::test]
async fn sighup_without_tls_is_logged_and_harmless() {
    let mut process = Process::start(&[]).await;
    hang_up(&process).await;
    process.wait_for_log("no TLS certificate to reload").await;
    let mut client = Client::connect(process.tcp).await;
    client.send("/who").await;
    assert!(client.line().await.contains("1 member"));
    assert!(process.terminate().await.success());
}
