//! Setting TLS up: the flags checked together, plain listeners turned off
//! (nothing answers on their ports, the TLS ones serve), and clear start-up
//! errors for certificates and keys that do not load.

mod common;

use std::time::Duration;

use common::sio::SioClient;
use common::tls::{self, TestPki};
use hubbub::config::Options;
use hubbub::{Config, Server};
use tokio::net::TcpStream;

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn plain_listeners_can_be_turned_off() {
    // The file asks for plain listeners on two ports; the flags turn them
    // off, and nothing answers there.
    let pki = TestPki::new();
    let (tcp_port, http_port) = (free_port(), free_port());
    let file = pki.dir().join("hubbub.toml");
    std::fs::write(
        &file,
        format!(
            "tcp-addr = \"127.0.0.1:{tcp_port}\"\nhttp-addr = \"127.0.0.1:{http_port}\"\n\
             admin-addr = \"127.0.0.1:0\"\ntls-cert = \"fullchain.pem\"\ntls-key = \"privkey.pem\"\n\
             tls-tcp-addr = \"127.0.0.1:0\"\nhttps-addr = \"127.0.0.1:0\"\nstore = \"memory\"\n"
        ),
    )
    .unwrap();
    let options = Options {
        config: Some(file),
        tcp_addr: Some("off".into()),
        http_addr: Some("off".into()),
        ..Options::default()
    };
    let config = Config::load(options).expect("a valid configuration");
    let server = Server::bind(config).await.expect("bind");
    let addresses = server.addresses();
    assert_eq!((addresses.tcp, addresses.http), (None, None));
    let (tls_tcp, https) = (addresses.tls_tcp.unwrap(), addresses.https.unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    for port in [tcp_port, http_port] {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).await.is_err(),
            "nothing listens on {port}"
        );
    }
    let mut secure = tls::line_client(tls_tcp, pki.client()).await;
    let web = SioClient::connect_tls(https, pki.client()).await;
    secure.expect(&format!("{} has joined us", web.nick)).await;

    let _ = stop.send(());
    running.await.unwrap().unwrap();
}

#[test]
fn listener_and_tls_flags_are_checked_together() {
    let load = |options: Options| Config::load(options).map_err(|e| format!("{e:#}"));
    let error = load(Options {
        tls_cert: Some("cert.pem".into()),
        ..Options::default()
    })
    .unwrap_err();
    assert!(
        error.contains("--tls-cert and --tls-key go together"),
        "{error}"
    );
    let error = load(Options {
        https_addr: Some("127.0.0.1:8443".into()),
        ..Options::default()
    })
    .unwrap_err();
    assert!(error.contains("--https-addr needs --tls-cert"), "{error}");
    let error = load(Options {
        tcp_addr: Some("off".into()),
        http_addr: Some("off".into()),
        ..Options::default()
    })
    .unwrap_err();
    assert!(error.contains("every listener is off"), "{error}");
    let error = load(Options {
        tls_handshake_timeout_ms: Some(0),
        ..Options::default()
    })
    .unwrap_err();
    assert!(
        error.contains("--tls-handshake-timeout-ms must be at least 100"),
        "{error}"
    );
    // With a certificate, the TLS listeners are on at their defaults
    // unless turned off.
    let config = load(Options {
        tls_cert: Some("cert.pem".into()),
        tls_key: Some("key.pem".into()),
        https_addr: Some("off".into()),
        tls_handshake_timeout_ms: Some(2500),
        ..Options::default()
    })
    .unwrap();
    assert_eq!(config.tls_tcp_addr.as_deref(), Some("0.0.0.0:6697"));
    assert_eq!(config.https_addr, None);
    assert_eq!(config.tls_handshake_timeout, Duration::from_millis(2500));
}

#[tokio::test]
async fn bad_certificates_stop_the_start_with_a_clear_error() {
    let pki = TestPki::new();
    let cert = pki.cert.to_str().unwrap();
    let key = pki.key.to_str().unwrap();
    let missing = pki.dir().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let stderr = common::start_fails(&["--tls-cert", missing, "--tls-key", key]).await;
    assert!(
        stderr.contains("--tls-cert: reading") && stderr.contains("missing.pem"),
        "{stderr}"
    );
    let stderr = common::start_fails(&["--tls-cert", cert]).await;
    assert!(stderr.contains("go together"), "{stderr}");

    let garbage = pki.dir().join("garbage.pem");
    std::fs::write(&garbage, "hello").unwrap();
    let garbage = garbage.to_str().unwrap();
    let stderr = common::start_fails(&["--tls-cert", garbage, "--tls-key", key]).await;
    assert!(stderr.contains("no CERTIFICATE"), "{stderr}");
    let stderr = common::start_fails(&["--tls-cert", cert, "--tls-key", garbage]).await;
    assert!(stderr.contains("no usable private key"), "{stderr}");
    // The CA's certificate with the server's key: they do not belong together.
    let ca = pki.ca_file.to_str().unwrap();
    let stderr = common::start_fails(&["--tls-cert", ca, "--tls-key", key]).await;
    assert!(stderr.contains("does not fit"), "{stderr}");
}
