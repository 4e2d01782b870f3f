//! Webhooks' rules: how a delivery is signed (and verified, for receivers in Rust), and
//! which URLs a delivery may go to. Sending is the app's and its adapters'.

pub mod signature;
pub mod ssrf;
