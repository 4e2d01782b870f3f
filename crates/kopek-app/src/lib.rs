//! kopek's use cases and the ports they need.
//!
//! The API and the worker call into [`App`]; `App` talks to the world only through the
//! ports in [`ports`] (the store, the clock, the id source and the object renderer), so
//! no use case knows SQL, HTTP or the wall clock. Each use case owns its transaction:
//! the state change, its event and the idempotent response are written together or not
//! at all.

mod app;
pub mod codec;
mod error;
pub mod ports;
pub mod records;
mod services;

pub use app::{App, Caller, IdempotencyClaim};
pub use error::{AppError, StoreError};
pub use services::*;
