//! Limits that protect the server from one client: flood control per
//! connection and connection caps (total and per IP), shared by transports.

pub mod connections;
pub mod flood;
pub mod refusals;

pub use connections::{ConnectionGuard, ConnectionLimiter, Refused};
pub use flood::{FloodControl, FloodVerdict};
pub use refusals::warn_refusal;
