//! Webhooks' rules: how a delivery is signed (and verified, for receivers in Rust),
//! which URLs a delivery may go to, and when a failed one is tried again. Sending is the app's and its adapters'.

pub mod retry;
pub mod signature;
pub mod ssrf;
