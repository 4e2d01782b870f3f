//! The pure billing domain of kopek.
//!
//! Everything here is a deterministic function of its inputs: no IO, no async, no clock,
//! no randomness and no serde. Keeping the rules that decide *how much* and *when* free of
//! effects lets them be tested exhaustively with property tests and known answers, and
//! lets every other crate trust them. The price of that is some conversion code at the
//! boundaries (rows and wire types are separate types), which we accept.

pub mod allocation;
pub mod billing;
pub mod calendar;
pub mod card;
pub mod currency;
pub mod discount;
pub mod dispute;
pub mod dunning;
pub mod invoice;
pub mod ledger;
pub mod metadata;
pub mod money;
pub mod payment;
pub mod period;
pub mod price;
pub mod subscription;
pub mod tax;
pub mod usage;
pub mod webhook;

pub use currency::Currency;
pub use money::{Money, MoneyError};
