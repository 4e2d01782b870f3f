//! kopek's payment gateways. Today the sandbox, which serves test mode the way Stripe's
//! test mode behaves for its test payment methods; real gateways' adapters come later
//! and implement the same [`kopek_app::ports::Gateway`] port.

mod sandbox;
mod test_cards;

pub use sandbox::{Sandbox, SLOW_MS_DEFAULT};
pub use test_cards::{Behavior, Fault, TestCard, TEST_CARDS};
