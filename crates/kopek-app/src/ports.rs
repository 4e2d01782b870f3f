//! The ports: what kopek-app needs from the world, implemented by adapter crates.

use crate::error::StoreError;
use crate::records::*;
use async_trait::async_trait;

pub type StoreResult<T> = Result<T, StoreError>;

/// A database kopek keeps its state in (SQLite or PostgreSQL).
#[async_trait]
pub trait Store: Send + Sync {
    /// Starts a transaction that may write. On SQLite this takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a read-then-write cannot fail half-way on a busy database.
    async fn write(&self) -> StoreResult<Box<dyn Tx>>;
    /// Starts a transaction that only reads.
    async fn read(&self) -> StoreResult<Box<dyn Tx>>;
}

/// One transaction. Dropping it without [`Tx::commit`] rolls it back.
///
/// Lists answer `None` when their cursor (`starting_after` / `ending_before`) names no
/// object of the same kind in the scope.
///
/// Every method on account-owned objects takes a [`Scope`]: there is no way to read or
/// write across accounts or modes.
#[async_trait]
pub trait Tx: Send {
    async fn commit(self: Box<Self>) -> StoreResult<()>;

    async fn insert_account(&mut self, account: &Account) -> StoreResult<()>;
    /// The oldest account, for the single-tenant CLI (`kopek keys`, first start).
    async fn first_account(&mut self) -> StoreResult<Option<Account>>;
    async fn insert_api_key(&mut self, key: &ApiKey) -> StoreResult<()>;
    async fn api_keys(&mut self, account_id: &str) -> StoreResult<Vec<ApiKey>>;
    /// The one lookup that is not scoped: it is how a request finds its scope.
    async fn api_key_by_hash(&mut self, secret_sha256: &[u8; 32]) -> StoreResult<Option<ApiKey>>;

    async fn insert_customer(&mut self, scope: &Scope, customer: &Customer) -> StoreResult<()>;
    async fn update_customer(&mut self, scope: &Scope, customer: &Customer) -> StoreResult<()>;
    async fn customer(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Customer>>;
    async fn customers(
        &mut self,
        scope: &Scope,
        filter: &CustomerFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Customer>>>;

    async fn insert_product(&mut self, scope: &Scope, product: &Product) -> StoreResult<()>;
    async fn update_product(&mut self, scope: &Scope, product: &Product) -> StoreResult<()>;
    async fn delete_product(&mut self, scope: &Scope, id: &str) -> StoreResult<()>;
    async fn product(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Product>>;
    async fn products(
        &mut self,
        scope: &Scope,
        filter: &ProductFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Product>>>;

    async fn insert_price(&mut self, scope: &Scope, price: &Price) -> StoreResult<()>;
    async fn update_price(&mut self, scope: &Scope, price: &Price) -> StoreResult<()>;
    async fn price(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Price>>;
    async fn prices(
        &mut self,
        scope: &Scope,
        filter: &PriceFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Price>>>;
    async fn price_count_for_product(&mut self, scope: &Scope, product: &str) -> StoreResult<u64>;

    async fn insert_event(&mut self, scope: &Scope, event: &Event) -> StoreResult<()>;
    async fn event(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Event>>;
    async fn events(
        &mut self,
        scope: &Scope,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Event>>>;

    /// Claims `key` for a new request, or returns the record already there.
    ///
    /// A record created before `expired_before` is forgotten and claimed afresh, and so
    /// is one still in progress since before `abandoned_before`: its request died before
    /// committing, because a request commits its response with its effects.
    async fn claim_idempotency_key(
        &mut self,
        scope: &Scope,
        key: &str,
        fingerprint: &[u8; 32],
        now: i64,
        abandoned_before: i64,
        expired_before: i64,
    ) -> StoreResult<Option<IdempotencyRecord>>;
    async fn complete_idempotency_key(
        &mut self,
        scope: &Scope,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> StoreResult<()>;
    async fn release_idempotency_key(&mut self, scope: &Scope, key: &str) -> StoreResult<()>;
}

/// The time, injected: no use case reads the wall clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> i64;
}

/// Fresh object ids (`cus_…`) and secrets.
pub trait IdSource: Send + Sync {
    fn id(&self, prefix: &str) -> String;
    fn secret(&self) -> [u8; 32];
}

/// Renders objects as the API shows them, for events and stored idempotent responses.
///
/// Implemented by kopek-api, injected here, so that an event carries exactly what a
/// `GET` would have returned at that moment.
pub trait Renderer: Send + Sync {
    fn customer(&self, customer: &Customer) -> serde_json::Value;
    fn product(&self, product: &Product) -> serde_json::Value;
    fn price(&self, price: &Price) -> serde_json::Value;
    fn deleted(&self, object: &str, id: &str) -> serde_json::Value;
}

/// The system clock and OS randomness, for production.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}

pub struct RandomIds;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl IdSource for RandomIds {
    fn id(&self, prefix: &str) -> String {
        let mut bytes = [0u8; 24];
        // Without OS randomness kopek cannot make safe ids or keys; there is no fallback.
        getrandom::fill(&mut bytes).expect("the operating system provides randomness");
        let mut id = String::with_capacity(prefix.len() + 1 + bytes.len());
        id.push_str(prefix);
        id.push('_');
        // 248 = 4 × 62, so `b % 62` is unbiased for b < 248; the rest are re-mapped
        // with a negligible bias that does not matter for ids.
        id.extend(bytes.iter().map(|b| BASE62[usize::from(*b) % 62] as char));
        id
    }

    fn secret(&self) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system provides randomness");
        bytes
    }
}

/// Encodes a 32-byte secret as the base62 tail of an API key.
pub fn base62(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| BASE62[usize::from(*b) % 62] as char)
        .collect()
}
