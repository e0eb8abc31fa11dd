//! Which web pages may open a Socket.IO session: the defence against
//! cross-site WebSocket hijacking.
//!
//! A browser lets any page open a WebSocket or send a polling request to any
//! server, sending along the page's `Origin`; only the server can refuse. So
//! every request under `/socket.io/` (the polling handshake, its later
//! requests, and the WebSocket upgrade) is checked: a request without
//! `Origin` (not from a browser: `nc`-like tools, the official Node and
//! Python clients) passes; one from the page's own origin passes; one from
//! an origin in `--allowed-origins` passes (`*` allows every origin); any
//! other gets `403 Forbidden` with a one-line reason.
//!
//! The page's own origin is one of `--public-origins` (the names the chat
//! is served under), or, for a page served at an IP address or
//! `localhost`, the request's `Host`. A name in `Host` is never trusted on
//! its own word: with DNS rebinding, a hostile page's name resolves to
//! this server and its requests carry `Host` and `Origin` that agree.

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
    /// `--public-origins`: the page's own origins, when served by name.
    public: Vec<String>,
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

    /// Adds `--public-origins`: the page's own origins (no `*`).
    ///
    /// # Errors
    /// An entry that is not `http(s)://host[:port]`.
    pub fn with_public<S: AsRef<str>>(mut self, entries: &[S]) -> Result<AllowedOrigins, String> {
        let parsed = AllowedOrigins::parse(entries)?;
        if parsed.any {
            return Err("* is not an origin the page is served under".into());
        }
        self.public = parsed.origins;
        Ok(self)
    }

    /// Whether `--public-origins` names any origin.
    pub fn has_public(&self) -> bool {
        !self.public.is_empty()
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
        if self.origins.contains(&origin) || self.public.contains(&origin) {
            return true;
        }
        // Same origin: the page was served by this host, at an address
        // (a name is trusted only from `--public-origins`). The scheme is
        // not compared, so a TLS-terminating proxy in front changes nothing.
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(uri_authority)
            .map(str::to_ascii_lowercase);
        matches!((authority, host), (Some(a), Some(h)) if a == h && is_address(&h))
    }
}

/// Whether a `Host` value (`host[:port]`) names this server by address
/// (IPv4, `[IPv6]`) or as `localhost`: names that no other site's page can
/// be served under.
fn is_address(host: &str) -> bool {
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    bare == "localhost" || bare.parse::<std::net::IpAddr>().is_ok()
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
            &headers(Some("http://10.1.2.3:8080"), "10.1.2.3:8080"),
            None
        ));
        assert!(none.allows(&headers(Some("http://[::1]:8080"), "[::1]:8080"), None));
        assert!(none.allows(
            &headers(Some("http://localhost:8080"), "localhost:8080"),
            None
        ));
        assert!(!none.allows(&headers(Some("http://evil.example"), "10.1.2.3:8080"), None));
        assert!(!none.allows(
            &headers(Some("http://10.1.2.3:8081"), "10.1.2.3:8080"),
            None
        ));
        assert!(!none.allows(&headers(Some("null"), "10.1.2.3"), None));
        // HTTP/2: no Host header, the host is the URI's authority.
        let mut h2 = HeaderMap::new();
        h2.insert(header::ORIGIN, "https://10.1.2.3".parse().unwrap());
        assert!(none.allows(&h2, Some("10.1.2.3")));
        assert!(!none.allows(&h2, Some("10.9.9.9")));
    }

    #[test]
    fn a_name_in_host_is_the_pages_own_only_when_configured() {
        // DNS rebinding: a hostile name resolving to this server, its page's
        // requests carrying a Host and an Origin that agree.
        let none = AllowedOrigins::default();
        assert!(!none.allows(
            &headers(Some("http://evil.example:8080"), "evil.example:8080"),
            None
        ));
        let public = AllowedOrigins::default()
            .with_public(&["https://Chat.Example"])
            .unwrap();
        assert!(public.allows(&headers(Some("https://chat.example"), "chat.example"), None));
        assert!(!public.allows(
            &headers(Some("http://evil.example:8080"), "evil.example:8080"),
            None
        ));
        assert!(AllowedOrigins::default().with_public(&["*"]).is_err());
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
