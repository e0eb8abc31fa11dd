//! Browsers cannot be turned against hubbub: a page on another origin cannot
//! open a Socket.IO session (cross-site WebSocket hijacking), over polling
//! or WebSocket; the page itself is served with a Content-Security-Policy,
//! no framing by other sites, and no content sniffing.

mod common;

use std::net::SocketAddr;

use common::TestServer;
use hubbub::web::{AllowedOrigins, FrameAncestors};
use hubbub::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A raw HTTP/1.1 GET; returns the status line and headers (lowercased
/// names) and the body.
async fn get(addr: SocketAddr, path: &str, origin: Option<&str>) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{origin}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(common::WAIT, stream.read_to_end(&mut response))
        .await
        .expect("response in time")
        .unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

const HANDSHAKE: &str = "/socket.io/?EIO=4&transport=polling";

#[tokio::test]
async fn a_page_on_another_origin_cannot_open_a_session() {
    let server = TestServer::default().await;
    let http = server.http;

    // Polling handshake: no Origin (a non-browser client) and the page's own
    // origin pass; another site's page is refused with a reason.
    let (status, _, body) = get(http, HANDSHAKE, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"sid\""), "{body}");
    let (status, _, _) = get(http, HANDSHAKE, Some(&format!("http://{http}"))).await;
    assert_eq!(status, 200);
    let (status, _, body) = get(http, HANDSHAKE, Some("https://evil.example")).await;
    assert_eq!(status, 403);
    assert!(body.contains("may not open a chat session"), "{body}");
    let (status, _, _) = get(http, HANDSHAKE, Some("null")).await;
    assert_eq!(status, 403);

    // WebSocket upgrade from another origin: refused before the upgrade.
    let url = format!("ws://{http}/socket.io/?EIO=4&transport=websocket");
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("a cross-origin upgrade must be refused, got {other:?}"),
    }
    // The same upgrade from the page's own origin works.
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Origin", format!("http://{http}").parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());

    // Chat still works for everyone else.
    let mut a = server.client().await;
    let mut web = server.socket().await;
    a.line().await; // the socket joined
    web.emit("message", serde_json::json!({"text": "still here"}))
        .await;
    a.expect(&format!("{}: still here", web.nick)).await;
}

/// A raw polling handshake whose `Host` and `Origin` both name `name`.
async fn handshake_as(addr: SocketAddr, name: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {HANDSHAKE} HTTP/1.1\r\nHost: {name}\r\nOrigin: http://{name}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(common::WAIT, stream.read_to_end(&mut response))
        .await
        .expect("response in time")
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    response.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_rebound_name_is_not_the_pages_own() {
    // DNS rebinding: evil.example resolves to this server; its page's
    // requests carry Host and Origin that agree.
    let server = TestServer::default().await;
    let port = server.http.port();
    assert_eq!(
        handshake_as(server.http, &format!("evil.example:{port}")).await,
        403
    );
    assert_eq!(
        handshake_as(server.http, &format!("127.0.0.1:{port}")).await,
        200
    );
    assert_eq!(
        handshake_as(server.http, &format!("localhost:{port}")).await,
        200
    );
    // Served under a name, the administrator says which.
    let server = TestServer::start(Config {
        allowed_origins: AllowedOrigins::default()
            .with_public(&[format!("http://chat.example:{}", 80)])
            .unwrap(),
        ..common::config()
    })
    .await;
    assert_eq!(handshake_as(server.http, "chat.example:80").await, 200);
    assert_eq!(handshake_as(server.http, "evil.example:80").await, 403);
}

#[tokio::test]
async fn allowed_origins_are_configurable() {
    let server = TestServer::start(Config {
        allowed_origins: AllowedOrigins::parse(&["https://app.example"]).unwrap(),
        ..common::config()
    })
    .await;
    let (status, _, _) = get(server.http, HANDSHAKE, Some("https://app.example")).await;
    assert_eq!(status, 200);
    let (status, _, _) = get(server.http, HANDSHAKE, Some("https://other.example")).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_page_is_served_with_security_headers() {
    let server = TestServer::default().await;
    let (status, head, body) = get(server.http, "/", None).await;
    assert_eq!(status, 200);
    assert!(body.contains("<html"), "{body}");
    assert!(
        head.contains("content-security-policy: default-src 'self'"),
        "{head}"
    );
    assert!(head.contains("frame-ancestors 'none'"), "{head}");
    assert!(head.contains("x-frame-options: deny"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    let (_, head, _) = get(server.http, "/js/main.js", None).await;
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
}

/// The CSP header of `/`, lowercased, for `config`.
async fn page_head(config: Config) -> String {
    let server = TestServer::start(config).await;
    let (status, head, _) = get(server.http, "/", None).await;
    assert_eq!(status, 200);
    head
}

#[tokio::test]
async fn the_page_refuses_frames_by_default() {
    let head = page_head(common::config()).await;
    assert!(head.contains("frame-ancestors 'none'"), "{head}");
    assert!(head.contains("x-frame-options: deny"), "{head}");
}

#[tokio::test]
async fn frame_ancestors_let_a_host_application_embed_the_page() {
    let head = page_head(Config {
        frame_ancestors: FrameAncestors::parse(
            "https://app.example https://*.intranet.example:8443",
        )
        .unwrap(),
        ..common::config()
    })
    .await;
    let csp = head
        .lines()
        .find_map(|l| l.strip_prefix("content-security-policy: "))
        .unwrap_or_else(|| panic!("no CSP: {head}"));
    assert!(
        csp.ends_with("; frame-ancestors https://app.example https://*.intranet.example:8443"),
        "{csp}"
    );
    // The rest of the policy is unchanged: no inline script, this server only.
    assert!(
        csp.starts_with("default-src 'self'; script-src 'self';"),
        "{csp}"
    );
    assert!(!csp.contains("frame-ancestors 'none'"), "{csp}");
    // X-Frame-Options could only say DENY or SAMEORIGIN: it is left out.
    assert!(!head.contains("x-frame-options"), "{head}");
}

#[test]
fn frame_ancestors_that_are_not_origins_stop_the_start() {
    use clap::Parser;
    let options = hubbub::config::Cli::try_parse_from([
        "hubbub",
        "--frame-ancestors",
        "https://app.example; script-src *",
    ]);
    let err = options
        .map_err(|e| e.to_string())
        .and_then(|cli| Config::load(cli.options).map_err(|e| format!("{e:#}")))
        .expect_err("must be refused");
    assert!(err.contains("--frame-ancestors"), "{err}");
}
