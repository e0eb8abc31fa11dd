//! hubbub: a self-hosted group-chat server.
//!
//! The crate is a library with a thin binary (`src/main.rs`). Data flows one
//! way: a transport accepts a connection and turns it into a session of the
//! [`hub::Hub`]; the hub owns rooms, nicknames and presence and fans each event
//! out to the bounded [`hub::Outbox`] of every recipient; the transport drains
//! its outbox onto the wire in its own format.
//!
//! - [`config`]: the one typed configuration (flags, `HUBBUB_*` env, TOML file).
//! - [`server`]: binds the listeners, owns shutdown and connection limits.
//! - [`hub`]: rooms, sessions, nicknames, fan-out, and the gate that decides
//!   every action (`hub::gate`). No sockets in there.
//! - [`client`]: the client core the transports share: one command set,
//!   one `apply`, who a connection is (login, tokens, guest names).
//! - [`transport`]: one module per wire protocol: the TCP line protocol, Socket.IO.
//! - [`web`]: the HTTP router: the embedded chat page, `/healthz`, Socket.IO.
//! - [`limits`]: flood control and connection limits shared by the transports.
//! - [`tls`]: TLS on the line and HTTP listeners, the certificate and its reloads.
//! - [`store`]: durable history (SQLite, PostgreSQL) behind one trait.

pub mod accounts;
pub mod client;
pub mod cluster;
pub mod config;
pub mod hub;
pub mod limits;
pub mod moderation;
pub mod server;
pub mod session_tokens;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod tokens;
pub mod transport;
pub mod web;

pub use config::Config;
pub use server::Server;
