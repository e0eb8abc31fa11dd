//! Which web pages may open a Socket.IO session: the defence against
//! cross-site WebSocket hijacking.
//!
//! A browser lets any page open a WebSocket or send a polling request to any
//! server, sending along the page's `Origin`; only the server can refuse. So
//! every request under `/socket.io/` (the polling handshake, its later
//! requests, and the WebSocket upgrade) is checked: a request without
//! `Origin` (not from a browser: `nc`-like tools, the official Node and
//! Python clients) passes; one from the page's own origin (the `Origin`'s
//! host and port are the request's `Host`) passes; one from an origin in
//! `--allowed-origins` passes (`*` allows every origin); any other gets
//! `403 Forbidden` with a one-line reason.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The origins, besides the page's own, allowed to open Socket.IO sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    /// `*` was given: every origin is allowed.
    any: bool,
    /// `scheme://host[:port]`, lowercase, without a trailing `/`.
    origins: Vec<String>,
}

impl AllowedOrigins {
    /// Parses `--allowed-origins` entries: `*`, or origins such as
    /// `https://chat.example.com` or `http://localhost:3000`.
    ///
    /// # Errors
    /// An entry that is not `*` and not `http(s)://host[:port]`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AllowedOrigins, String> {
        let mut allowed = AllowedOrigins::default();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                allowed.any = true;
                continue;
            }
            let origin = entry.trim_end_matches('/').to_ascii_lowercase();
            let authority = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            match authority {
                Some(a) if !a.is_empty() && !a.contains(['/', '?', '#', '@', ' ']) => {
                    allowed.origins.push(origin)
                }
                _ => {
                    return Err(format!(
                    "{entry:?} is not an origin (http://host[:port] or https://host[:port], or *)"
                ))
                }
            }
        }
        Ok(allowed)
    }

    /// Whether a request with these headers may use Socket.IO;
    /// `uri_authority` is the request URI's (HTTP/2 requests carry the host
    /// there rather than in `Host`).
    pub fn allows(&self, headers: &HeaderMap, uri_authority: Option<&str>) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        if self.any {
            return true;
        }
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.origins.contains(&origin) {
            return true;
        }
        // Same origin: the page was served by this host. The scheme is not
        // compared, so a TLS-terminating proxy in front changes nothing.
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(uri_authority)
            .map(str::to_ascii_lowercase);
        matches!((authority, host), (Some(a), Some(h)) if a == h)
    }
}

/// Middleware: refuses Socket.IO requests from origins not allowed.
pub async fn check(
    State(allowed): State<std::sync::Arc<AllowedOrigins>>,
    request: Request,
    next: Next,
) -> Response {
    let authority = request.uri().authority().map(|a| a.as_str());
    if request.uri().path().starts_with("/socket.io")
        && !allowed.allows(request.headers(), authority)
    {
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .unwrap_or("?")
            .to_string();
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "?".to_string(), |ConnectInfo(addr)| addr.to_string());
        crate::limits::warn_refusal("origin", &format!("{peer} (Origin: {origin})"));
        return (
            StatusCode::FORBIDDEN,
            format!(
                "origin {origin} may not open a chat session here (the server's --allowed-origins)\n"
            ),
        )
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn same_origin_and_no_origin_pass_others_do_not() {
        let none = AllowedOrigins::default();
        assert!(none.allows(&headers(None, "chat.example:8080"), None));
        assert!(none.allows(
            &headers(Some("http://chat.example:8080"), "chat.example:8080"),
            None
        ));
        assert!(none.allows(&headers(Some("https://Chat.Example"), "chat.example"), None));
        assert!(!none.allows(
            &headers(Some("http://evil.example"), "chat.example:8080"),
            None
        ));
        assert!(!none.allows(
            &headers(Some("http://chat.example:8081"), "chat.example:8080"),
            None
        ));
        assert!(!none.allows(&headers(Some("null"), "chat.example"), None));
        // HTTP/2: no Host header, the host is the URI's authority.
        let mut h2 = HeaderMap::new();
        h2.insert(header::ORIGIN, "https://chat.example".parse().unwrap());
        assert!(none.allows(&h2, Some("chat.example")));
        assert!(!none.allows(&h2, Some("other.example")));
    }

    #[test]
    fn listed_and_any() {
        let listed =
            AllowedOrigins::parse(&["https://app.example/", "http://localhost:3000"]).unwrap();
        assert!(listed.allows(&headers(Some("https://app.example"), "chat.example"), None));
        assert!(listed.allows(
            &headers(Some("http://localhost:3000"), "chat.example"),
            None
        ));
        assert!(!listed.allows(&headers(Some("http://app.example"), "chat.example"), None));
        let any = AllowedOrigins::parse(&["*"]).unwrap();
        assert!(any.allows(&headers(Some("http://evil.example"), "chat.example"), None));
        assert!(AllowedOrigins::parse(&["ftp://x"]).is_err());
        assert!(AllowedOrigins::parse(&["https://x/path"]).is_err());
    }
}
