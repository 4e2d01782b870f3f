//! kopek's notifications: how webhook deliveries are signed and verified.

pub mod signature;
