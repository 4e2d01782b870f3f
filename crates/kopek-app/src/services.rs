mod catalog;
mod customers;
mod events;
mod keys;
mod metadata;

pub use catalog::{NewPrice, NewProduct, PriceUpdate, ProductRef, ProductUpdate};
pub use customers::CustomerParams;
pub use keys::{NewKey, KEY_PREFIX_LIVE, KEY_PREFIX_TEST};
pub use metadata::MetadataUpdate;
