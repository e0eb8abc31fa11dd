//! Tokens from an application: a site that already has users signs a JWT
//! for each, and its clients present it (Socket.IO `auth: {token}`, TCP
//! `/token JWT`) instead of a password, as with Centrifugo.
//!
//! The key and so the algorithm are fixed by the configuration, never read
//! from the token: `--jwt-secret` (HS256) or `--jwt-public-key` (a PEM file:
//! RS256 for an RSA key, ES256 for a P-256 key). Claims: `sub` (the user;
//! required), `exp` (required), optional `name` (the nickname; `sub`
//! otherwise), optional `rooms` (joined on connect); `aud` and `iss` are
//! required and checked when `--jwt-audience` / `--jwt-issuer` are set;
//! `nbf` and `iat`, when present, must be numbers and not in the future.
//! Every time claim has [`LEEWAY_SECS`] of leeway for clocks apart (RFC 7519
//! §4.1.4–4.1.6).

use std::path::Path;

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// How long before an application token expires its holder is warned
/// (`token_expiring`), on both transports.
pub const EXPIRY_WARNING: std::time::Duration = std::time::Duration::from_secs(30);

use crate::hub::names;

/// Seconds of leeway for `exp`, `nbf` and `iat` (clocks that disagree).
pub const LEEWAY_SECS: u64 = 5;

/// Most rooms a token may ask to join on connect.
pub const MAX_TOKEN_ROOMS: usize = 32;

/// What a valid token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The application's id for the user.
    pub sub: String,
    /// The nickname to use (`name`, or `sub`).
    pub nick: String,
    /// When the token expires, in seconds since the Unix epoch.
    pub exp: u64,
    /// Rooms to join on connect.
    pub rooms: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    rooms: Vec<String>,
    /// Typed, so a string or a float here is a refusal, not "absent".
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    nbf: Option<u64>,
}

/// Why a token was refused; the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid token: {0}")]
pub struct TokenError(pub String);

/// The token verifier, from the configuration.
pub struct Tokens {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("algorithms", &self.validation.algorithms)
            .finish()
    }
}

impl Tokens {
    /// A verifier for HS256 tokens signed with `secret`.
    pub fn with_secret(secret: &[u8]) -> Tokens {
        Tokens::new(DecodingKey::from_secret(secret), Algorithm::HS256)
    }

    /// A verifier for tokens signed by the private half of the PEM public
    /// key in `path`: RS256 for RSA, ES256 for P-256.
    pub fn with_public_key(path: &Path) -> anyhow::Result<Tokens> {
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("--jwt-public-key {}: {e}", path.display()))?;
        if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
            return Ok(Tokens::new(key, Algorithm::RS256));
        }
        if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
            return Ok(Tokens::new(key, Algorithm::ES256));
        }
        anyhow::bail!(
            "--jwt-public-key {}: not an RSA or EC public key in PEM",
            path.display()
        )
    }

    fn new(key: DecodingKey, algorithm: Algorithm) -> Tokens {
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Tokens { key, validation }
    }

    /// Also requires `aud` to be `audience`.
    pub fn audience(mut self, audience: &str) -> Tokens {
        self.validation.set_audience(&[audience]);
        self.validation.validate_aud = true;
        self.validation.required_spec_claims.insert("aud".into());
        self
    }

    /// Also requires `iss` to be `issuer`.
    pub fn issuer(mut self, issuer: &str) -> Tokens {
        self.validation.set_issuer(&[issuer]);
        self.validation.required_spec_claims.insert("iss".into());
        self
    }

    /// Checks `token`'s signature, algorithm, expiry and claims.
    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let claims = decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| TokenError(e.to_string()))?
            .claims;
        let now = crate::hub::event::now_millis() / 1000;
        // jsonwebtoken checks `nbf`; `iat` in the future means a clock or
        // a token that cannot be trusted.
        if claims.iat.is_some_and(|iat| iat > now + LEEWAY_SECS) {
            return Err(TokenError("it was issued in the future (iat)".into()));
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
            return Err(TokenError("it is not valid yet (nbf)".into()));
        }
        let nick = claims.name.unwrap_or_else(|| claims.sub.clone());
        let nick = names::normalize(&nick).into_owned();
        names::validate_nick(&nick).map_err(|e| TokenError(format!("its name {nick:?}: {e}")))?;
        if claims.rooms.len() > MAX_TOKEN_ROOMS {
            return Err(TokenError(format!("more than {MAX_TOKEN_ROOMS} rooms")));
        }
        Ok(Identity {
            sub: claims.sub,
            nick,
            exp: claims.exp,
            rooms: claims.rooms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn token(claims: serde_json::Value, algorithm: Algorithm, secret: &[u8]) -> String {
        encode(
            &Header::new(algorithm),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn in_an_hour() -> u64 {
        crate::hub::event::now_millis() / 1000 + 3600
    }

    #[test]
    fn a_valid_token_names_its_user() {
        let tokens = Tokens::with_secret(b"app secret");
        let t = token(
            json!({"sub": "u42", "name": "dana", "exp": in_an_hour(), "rooms": ["ops"]}),
            Algorithm::HS256,
            b"app secret",
        );
        let id = tokens.verify(&t).unwrap();
        assert_eq!((id.sub.as_str(), id.nick.as_str()), ("u42", "dana"));
        assert_eq!(id.rooms, ["ops"]);
    }

    #[test]
    fn expired_forged_and_other_algorithm_tokens_are_refused() {
        let tokens = Tokens::with_secret(b"app secret");
        let expired = token(
            json!({"sub": "u1", "exp": 1000}),
            Algorithm::HS256,
            b"app secret",
        );
        assert!(tokens.verify(&expired).is_err());
        let forged = token(
            json!({"sub": "u1", "exp": in_an_hour()}),
            Algorithm::HS256,
            b"guess",
        );
        assert!(tokens.verify(&forged).is_err());
        // The algorithm is the configuration's, not the token's.
        let other = token(
            json!({"sub": "u1", "exp": in_an_hour()}),
            Algorithm::HS512,
            b"app secret",
        );
        assert!(tokens.verify(&other).is_err());
        let no_exp = token(json!({"sub": "u1"}), Algorithm::HS256, b"app secret");
        assert!(tokens.verify(&no_exp).is_err());
        let bad_name = token(
            json!({"sub": "u1", "name": "guest-7", "exp": in_an_hour()}),
            Algorithm::HS256,
            b"app secret",
        );
        assert!(tokens.verify(&bad_name).is_err());
    }

    #[test]
    fn audience_and_issuer_are_checked_when_configured() {
        let tokens = Tokens::with_secret(b"s").audience("chat").issuer("app");
        let good = token(
            json!({"sub": "u1", "exp": in_an_hour(), "aud": "chat", "iss": "app"}),
            Algorithm::HS256,
            b"s",
        );
        assert!(tokens.verify(&good).is_ok());
        let wrong_aud = token(
            json!({"sub": "u1", "exp": in_an_hour(), "aud": "other", "iss": "app"}),
            Algorithm::HS256,
            b"s",
        );
        assert!(tokens.verify(&wrong_aud).is_err());
        let no_iss = token(
            json!({"sub": "u1", "exp": in_an_hour(), "aud": "chat"}),
            Algorithm::HS256,
            b"s",
        );
        assert!(tokens.verify(&no_iss).is_err());
    }
}
