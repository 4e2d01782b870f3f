//! kopek's notifications: how webhook deliveries are signed and verified, and which
//! URLs they may go to.

pub mod signature;
pub mod ssrf;
