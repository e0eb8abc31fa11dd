//! Which sites may show the chat page inside a frame (`--frame-ancestors`).
//!
//! By default none may: the page is served with CSP `frame-ancestors 'none'`
//! and `X-Frame-Options: DENY`, so no other site can overlay it to trick a
//! user into clicking (clickjacking). A host application that embeds the
//! page for its users (an `<iframe>` of `/#token=JWT`, docs/PROTOCOL.md
//! "Embedding the page") is listed here: the CSP then names it, and
//! `X-Frame-Options` is left out, since it can only say DENY or SAMEORIGIN
//! and browsers that know CSP 2 ignore it when `frame-ancestors` is present.

/// The sources allowed to frame the page; empty means none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameAncestors {
    /// Each a CSP source: `'self'` or `scheme://host[:port]` (the host may
    /// start with `*.`), lowercase, without a trailing `/`.
    sources: Vec<String>,
}

impl FrameAncestors {
    /// Parses a list of sources separated by spaces or commas:
    /// `https://app.example https://*.example.org:8443 'self'`.
    ///
    /// # Errors
    /// An entry that is neither `'self'` nor `http(s)://host[:port]`
    /// (anything that could end the CSP directive or add another is refused).
    pub fn parse(list: &str) -> Result<FrameAncestors, String> {
        let mut sources = Vec::new();
        for entry in list.split([' ', ',', '\t']).filter(|e| !e.is_empty()) {
            if entry.eq_ignore_ascii_case("'self'") {
                sources.push("'self'".to_string());
                continue;
            }
            let source = entry.trim_end_matches('/').to_ascii_lowercase();
            let authority = source
                .strip_prefix("https://")
                .or_else(|| source.strip_prefix("http://"));
            match authority {
                Some(a) if valid_authority(a) => sources.push(source),
                _ => {
                    return Err(format!(
                        "{entry:?} is not an origin (https://host[:port], http://host[:port], \
                         https://*.domain, or 'self')"
                    ))
                }
            }
        }
        Ok(FrameAncestors { sources })
    }

    /// Whether no site may frame the page.
    pub fn is_none(&self) -> bool {
        self.sources.is_empty()
    }

    /// The CSP directive's value: `'none'` or the sources.
    pub fn directive(&self) -> String {
        if self.sources.is_empty() {
            "'none'".into()
        } else {
            self.sources.join(" ")
        }
    }
}

/// `host[:port]`, the host optionally `*.`-prefixed: letters, digits, `-`
/// and `.` (IPv6 literals in brackets too), the port all digits.
fn valid_authority(authority: &str) -> bool {
    let (host, port) = match authority.rfind(']') {
        // An IPv6 literal: the port, if any, follows its bracket.
        Some(end) => match &authority[end + 1..] {
            "" => (authority, None),
            rest => match rest.strip_prefix(':') {
                Some(port) => (&authority[..=end], Some(port)),
                None => return false,
            },
        },
        None => match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    let host = host.strip_prefix("*.").unwrap_or(host);
    !host.is_empty()
        && !host.starts_with(['.', '-'])
        && !host.ends_with('.')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_accepted_and_normalized() {
        let f =
            FrameAncestors::parse("https://App.example/, http://localhost:3000 'self'").unwrap();
        assert_eq!(
            f.directive(),
            "https://app.example http://localhost:3000 'self'"
        );
        let f = FrameAncestors::parse("https://*.example.org:8443 http://[::1]:8080").unwrap();
        assert_eq!(
            f.directive(),
            "https://*.example.org:8443 http://[::1]:8080"
        );
        assert!(FrameAncestors::parse("  ").unwrap().is_none());
        assert_eq!(FrameAncestors::default().directive(), "'none'");
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "app.example",
            "ftp://app.example",
            "https://app.example/path",
            "https://app.example;script-src",
            "https://app.example:port",
            "'none'",
            "*",
            "https://",
            "https://a@b.example",
            "'unsafe-inline'",
        ] {
            assert!(FrameAncestors::parse(bad).is_err(), "{bad} must be refused");
        }
    }
}
