//! kopek's notification adapters: webhooks over HTTP(S) ([`HttpSender`]) and customer
//! emails over SMTP or into `.eml` files ([`EmailSender`]), from templates that ship
//! with kopek and can be overridden ([`Templates`]).

mod email;
mod templates;
mod webhooks;

pub use email::{EmailSender, Transport};
pub use templates::{Rendered, Templates};
pub use webhooks::HttpSender;
