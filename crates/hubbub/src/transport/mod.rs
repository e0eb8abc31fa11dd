//! Transports: each turns one kind of client connection into hub sessions.
//!
//! A transport owns its sockets, parses its wire format into hub calls, and
//! drains the session's [`crate::hub::Outbox`] back onto the wire, encoding
//! each shared event once per wire format ([`crate::hub::WireFormat`]).

pub mod engineio;
pub mod line;
pub mod socketio;
