//! Limits that protect the server from one client: flood control per
//! connection, connection caps (total and per IP) counted from accept to
//! close on every listener, idle deadlines, and accepting when file
//! descriptors run out; shared by transports.

pub mod accept;
pub mod connections;
pub mod counted;
pub mod flood;
pub mod refusals;

pub use accept::Acceptor;
pub use connections::{ConnectionGuard, ConnectionLimiter, Refused};
pub use counted::CountedStream;
pub use flood::{FloodControl, FloodVerdict};
pub use refusals::warn_refusal;
