//! The ports: what kopek-app needs from the world, implemented by adapter crates.

use crate::error::StoreError;
use crate::records::*;
use async_trait::async_trait;
use kopek_core::usage::Aggregates;

mod gateway;
pub use gateway::*;

pub type StoreResult<T> = Result<T, StoreError>;

/// A database kopek keeps its state in (SQLite or PostgreSQL).
#[async_trait]
pub trait Store: Send + Sync {
    /// Starts a transaction that may write. On SQLite this takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a read-then-write cannot fail half-way on a busy database.
    async fn write(&self) -> StoreResult<Box<dyn Tx>>;
    /// Starts a transaction that only reads.
    async fn read(&self) -> StoreResult<Box<dyn Tx>>;
    /// Closes every connection once its transaction ends.
    async fn close(&self);
    /// Whether writing transactions take turns, one at a time for the whole database
    /// (SQLite). The billing clock then reads and plans the next batch of renewals while
    /// another batch writes; where writers run side by side (PostgreSQL), each worker
    /// task takes and locks a batch of its own instead.
    fn writers_take_turns(&self) -> bool {
        false
    }
    /// A record's `json` document as this store keeps it: as it is, or packed (SQLite).
    fn stored_doc(&self, json: String) -> StoredDoc;
}

/// A record's document as its store keeps it ([`Store::stored_doc`]), made where it costs
/// least: a batch planned outside the writer's turn makes its documents there, and the
/// writer's turn only binds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDoc(Vec<u8>);

impl StoredDoc {
    pub fn new(bytes: Vec<u8>) -> StoredDoc {
        StoredDoc(bytes)
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// One transaction. Dropping it without [`Tx::commit`] rolls it back.
///
/// Lists answer `None` when their cursor (`starting_after` / `ending_before`) names no
/// object of the same kind in the scope.
///
/// Every method on account-owned objects takes a [`Scope`]: there is no way to read or
/// write across accounts or modes.
#[async_trait]
pub trait Tx:
    BillingTx
    + PaymentsTx
    + CreditsTx
    + DiscountsTx
    + TaxRatesTx
    + UsageTx
    + SchedulesTx
    + WebhooksTx
    + NotificationsTx
    + PriceChangesTx
{
    async fn commit(self: Box<Self>) -> StoreResult<()>;
    /// Waits for the writes behind; whether a checked one (`update_*_unchanged`) found a
    /// row changed since it was read. The transaction is then rolled back and refuses
    /// every later step.
    async fn changed_since_read(&mut self) -> bool;

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

    /// Use cases record events through `App::record_events`, which writes their webhook
    /// deliveries with them.
    async fn insert_events(&mut self, scope: &Scope, events: &[Event]) -> StoreResult<()>;
    /// As [`Tx::insert_events`], with each event's document already made (`codec::event_doc`,
    /// then [`Store::stored_doc`]; same position in `docs`): a batch planned outside the
    /// writer's turn makes them there.
    async fn insert_encoded_events(
        &mut self,
        scope: &Scope,
        events: &[Event],
        docs: &[StoredDoc],
    ) -> StoreResult<()>;
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

/// Payment methods, and the sandbox gateway's record of its charges (written in the
/// sandbox's own transactions, as a real gateway's books would be apart from kopek's).
#[async_trait]
pub trait PaymentsTx: Send {
    async fn insert_payment_method(&mut self, scope: &Scope, pm: &PaymentMethod)
        -> StoreResult<()>;
    async fn update_payment_method(&mut self, scope: &Scope, pm: &PaymentMethod)
        -> StoreResult<()>;
    /// With `lock`, the row stays locked until the transaction ends.
    async fn payment_method(
        &mut self,
        scope: &Scope,
        id: &str,
        lock: bool,
    ) -> StoreResult<Option<PaymentMethod>>;
    /// The payment methods attached to `customer`.
    async fn payment_methods(
        &mut self,
        scope: &Scope,
        customer: &str,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<PaymentMethod>>>;

    /// Attached cards whose expiry notice is due by `due_by` in `lane`, locked.
    async fn due_payment_methods_for_update(
        &mut self,
        lane: &Lane,
        due_by: i64,
        limit: u32,
    ) -> StoreResult<Vec<(Scope, PaymentMethod)>>;
    async fn payment_methods_by_ids(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<PaymentMethod>>;

    async fn insert_payment_intents(
        &mut self,
        scope: &Scope,
        intents: &[PaymentIntent],
    ) -> StoreResult<()>;
    async fn update_payment_intents(
        &mut self,
        scope: &Scope,
        intents: &[PaymentIntent],
    ) -> StoreResult<()>;
    /// Locked until the transaction ends.
    async fn payment_intents_for_update(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<PaymentIntent>>;
    async fn payment_intent(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> StoreResult<Option<PaymentIntent>>;
    async fn payment_intents(
        &mut self,
        scope: &Scope,
        filter: &PaymentIntentFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<PaymentIntent>>>;

    /// Fails with `Conflict` for a second pending (or succeeded) charge of one invoice.
    async fn insert_charges(&mut self, scope: &Scope, charges: &[Charge]) -> StoreResult<()>;
    async fn update_charges(&mut self, scope: &Scope, charges: &[Charge]) -> StoreResult<()>;
    /// With `lock`, the rows stay locked until the transaction ends.
    async fn charges_by_ids(
        &mut self,
        scope: &Scope,
        ids: &[String],
        lock: bool,
    ) -> StoreResult<Vec<Charge>>;
    async fn charge(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Charge>>;
    async fn charges(
        &mut self,
        scope: &Scope,
        filter: &ChargeFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Charge>>>;
    /// Claims pending charges (of any account) due for reconciliation, as
    /// [`BillingTx::claim_due_open_invoices`].
    async fn claim_due_charges(&mut self, lane: &Lane, claim: &Claim) -> StoreResult<Vec<Due>>;
    /// For `kopek doctor`: up to `limit` charges after row `after`, with the last row's
    /// position.
    async fn charges_after(
        &mut self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> StoreResult<(Vec<Charge>, i64)>;

    async fn insert_refund(&mut self, scope: &Scope, refund: &Refund) -> StoreResult<()>;
    async fn update_refunds(&mut self, scope: &Scope, refunds: &[Refund]) -> StoreResult<()>;
    /// With `lock`, the rows stay locked until the transaction ends.
    async fn refunds_by_ids(
        &mut self,
        scope: &Scope,
        ids: &[String],
        lock: bool,
    ) -> StoreResult<Vec<Refund>>;
    async fn refund(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Refund>>;
    async fn refunds(
        &mut self,
        scope: &Scope,
        filter: &RefundFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Refund>>>;
    /// Claims pending refunds due to be sent again, as the other claims.
    async fn claim_due_refunds(&mut self, lane: &Lane, claim: &Claim) -> StoreResult<Vec<Due>>;
    /// For `kopek doctor`.
    async fn refunds_after(
        &mut self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> StoreResult<(Vec<Refund>, i64)>;

    async fn insert_disputes(&mut self, scope: &Scope, disputes: &[Dispute]) -> StoreResult<()>;
    async fn update_disputes(&mut self, scope: &Scope, disputes: &[Dispute]) -> StoreResult<()>;
    /// Locked until the transaction ends.
    async fn disputes_for_update(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<Dispute>>;
    /// Locked until the transaction ends.
    async fn dispute_by_gateway_id(
        &mut self,
        scope: &Scope,
        gateway_id: &str,
    ) -> StoreResult<Option<Dispute>>;
    async fn disputes(
        &mut self,
        scope: &Scope,
        filter: &DisputeFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Dispute>>>;
    async fn dispute(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Dispute>>;
    /// How far into the gateway's dispute feed the scope has read.
    async fn gateway_cursor(&mut self, scope: &Scope) -> StoreResult<i64>;
    async fn put_gateway_cursor(&mut self, scope: &Scope, cursor: i64) -> StoreResult<()>;
    /// Makes sure the scope's gateway feed is read (from the start) once it charges.
    async fn track_gateway_feed(&mut self, scope: &Scope) -> StoreResult<()>;
    /// The scopes whose gateway feed is read (unscoped, for the worker).
    async fn gateway_feed_scopes(&mut self) -> StoreResult<Vec<Scope>>;

    async fn billing_settings(&mut self, scope: &Scope) -> StoreResult<Option<BillingSettings>>;
    async fn put_billing_settings(
        &mut self,
        scope: &Scope,
        settings: &BillingSettings,
    ) -> StoreResult<()>;

    /// Records a charge request; a second one with the same key is a `Conflict`.
    async fn insert_sandbox_charge(&mut self, charge: &SandboxCharge) -> StoreResult<()>;
    async fn sandbox_charge(
        &mut self,
        account_id: &str,
        idempotency_key: &str,
    ) -> StoreResult<Option<SandboxCharge>>;
    /// Every charge the sandbox made for an account, oldest first (for tests and checks).
    async fn sandbox_charges(&mut self, account_id: &str) -> StoreResult<Vec<SandboxCharge>>;
    /// Records a refund; a second one with the same key is a `Conflict`.
    async fn insert_sandbox_refund(&mut self, refund: &SandboxRefund) -> StoreResult<()>;
    async fn sandbox_refunds(&mut self, account_id: &str) -> StoreResult<Vec<SandboxRefund>>;
    /// Appends a version of a sandbox dispute to its feed.
    async fn append_sandbox_dispute(
        &mut self,
        account_id: &str,
        dispute: &crate::ports::GatewayDispute,
    ) -> StoreResult<()>;
    /// The sandbox's dispute feed after position `after`.
    async fn sandbox_disputes_after(
        &mut self,
        account_id: &str,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<(i64, crate::ports::GatewayDispute)>>;
}

/// The billing half of a transaction: subscriptions, invoices, invoice items, test clocks,
/// the ledger, and the claims the billing clock makes on due work.
///
/// The claim methods and the `kopek doctor` scans are the only unscoped reads besides the
/// API key lookup: the worker and the doctor serve every account, and each row they
/// return carries its scope.
#[async_trait]
pub trait BillingTx: Send {
    async fn prices_by_ids(&mut self, scope: &Scope, ids: &[String]) -> StoreResult<Vec<Price>>;
    async fn customers_by_ids(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<Customer>>;
    /// The customers among `ids` that can be emailed: not deleted, with an address.
    async fn mailable_customers(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<Customer>>;
    /// The customers found among `ids`, locked for update.
    async fn customers_for_update(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<Customer>>;

    async fn insert_test_clock(&mut self, scope: &Scope, clock: &TestClock) -> StoreResult<()>;
    async fn update_test_clock(&mut self, scope: &Scope, clock: &TestClock) -> StoreResult<()>;
    async fn test_clock(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<TestClock>>;
    async fn test_clocks(
        &mut self,
        scope: &Scope,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<TestClock>>>;
    /// Deletes the clock and every object on it: its customers and their subscriptions,
    /// invoices, invoice items and ledger entries.
    async fn delete_test_clock(&mut self, scope: &Scope, id: &str) -> StoreResult<()>;
    /// Claims up to `limit` clocks (of any account) with work to run, not leased by
    /// another worker: those advancing, and those woken (see `wake_test_clock`).
    async fn claim_busy_clocks(
        &mut self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> StoreResult<Vec<(Scope, TestClock)>>;
    /// How many clocks (of any account) have work to run.
    async fn busy_clock_count(&mut self) -> StoreResult<u64>;
    /// Tells the worker that work on the clock is due at its current time (`at` is real
    /// time): it runs it without the clock moving.
    async fn wake_test_clock(&mut self, scope: &Scope, id: &str, at: i64) -> StoreResult<()>;
    /// Forgets a clock's wake-ups from before `upto` (real time), once its due work ran.
    async fn settle_test_clock_wake(
        &mut self,
        scope: &Scope,
        id: &str,
        upto: i64,
    ) -> StoreResult<()>;

    async fn insert_subscription(&mut self, scope: &Scope, sub: &Subscription) -> StoreResult<()>;
    /// Records which prices `sub`'s items now use (for the `price` filter), after its
    /// items changed prices. Renewals do not change them and need not call it.
    async fn update_subscription_prices(
        &mut self,
        scope: &Scope,
        sub: &Subscription,
    ) -> StoreResult<()>;
    async fn update_subscriptions(
        &mut self,
        scope: &Scope,
        subs: &[Subscription],
    ) -> StoreResult<()>;
    /// Writes each of `after` (its document made in `after_docs`) over its row if the
    /// row's document is still `before_docs`' (all three in the same order), behind the
    /// caller. If any row was changed or deleted since it was read, the transaction
    /// fails (`StoreError::Changed`) and [`Tx::changed_since_read`] says so.
    async fn update_subscriptions_unchanged(
        &mut self,
        scope: &Scope,
        before_docs: &[StoredDoc],
        after: &[Subscription],
        after_docs: &[StoredDoc],
    ) -> StoreResult<()>;
    async fn subscription(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Subscription>>;
    /// The subscriptions with these ids, locked for the rest of the transaction where the
    /// store has row locks.
    async fn subscriptions_for_update(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<Subscription>>;
    async fn subscriptions(
        &mut self,
        scope: &Scope,
        filter: &SubscriptionFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Subscription>>>;

    async fn insert_invoices(&mut self, scope: &Scope, invoices: &[Invoice]) -> StoreResult<()>;
    /// As [`BillingTx::insert_invoices`], with each document already made (`codec::to_doc`,
    /// then [`Store::stored_doc`]; same position in `docs`).
    async fn insert_encoded_invoices(
        &mut self,
        scope: &Scope,
        invoices: &[Invoice],
        docs: &[StoredDoc],
    ) -> StoreResult<()>;
    /// Writes the invoices back and releases any lease on them.
    async fn update_invoices(&mut self, scope: &Scope, invoices: &[Invoice]) -> StoreResult<()>;
    /// As [`BillingTx::update_subscriptions_unchanged`], for invoices (leases released).
    async fn update_invoices_unchanged(
        &mut self,
        scope: &Scope,
        before_docs: &[StoredDoc],
        after: &[Invoice],
        after_docs: &[StoredDoc],
    ) -> StoreResult<()>;
    async fn invoice(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Invoice>>;
    /// Deletes a draft that was never finalized (it posted nothing).
    async fn delete_draft_invoice(&mut self, scope: &Scope, id: &str) -> StoreResult<()>;
    async fn invoices_for_update(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<Invoice>>;
    async fn invoices(
        &mut self,
        scope: &Scope,
        filter: &InvoiceFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Invoice>>>;
    /// Takes `count` consecutive invoice numbers for the scope and returns the first. Taken
    /// in the transaction that finalizes, so a rollback gives them back: numbers stay
    /// gapless.
    async fn take_invoice_numbers(&mut self, scope: &Scope, count: u32) -> StoreResult<i64>;
    /// The number the scope's next invoice would take (without taking it).
    async fn next_invoice_number(&mut self, scope: &Scope) -> StoreResult<i64>;

    async fn insert_invoice_item(&mut self, scope: &Scope, item: &InvoiceItem) -> StoreResult<()>;
    async fn update_invoice_items(
        &mut self,
        scope: &Scope,
        items: &[InvoiceItem],
    ) -> StoreResult<()>;
    /// As [`BillingTx::update_subscriptions_unchanged`], for invoice items.
    async fn update_invoice_items_unchanged(
        &mut self,
        scope: &Scope,
        before_docs: &[StoredDoc],
        after: &[InvoiceItem],
        after_docs: &[StoredDoc],
    ) -> StoreResult<()>;
    async fn invoice_item(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<InvoiceItem>>;
    async fn invoice_items(
        &mut self,
        scope: &Scope,
        filter: &InvoiceItemFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<InvoiceItem>>>;
    /// The pending (not yet invoiced, not deleted) items of these customers, oldest first,
    /// at most `limit`.
    async fn pending_invoice_items(
        &mut self,
        scope: &Scope,
        customers: &[String],
        limit: u32,
    ) -> StoreResult<Vec<InvoiceItem>>;

    async fn insert_ledger_entries(
        &mut self,
        scope: &Scope,
        entries: &[LedgerEntry],
    ) -> StoreResult<()>;
    /// As [`BillingTx::insert_ledger_entries`], with each entry's document already made.
    async fn insert_encoded_ledger_entries(
        &mut self,
        scope: &Scope,
        entries: &[LedgerEntry],
        docs: &[StoredDoc],
    ) -> StoreResult<()>;
    /// Balances of the scope's ledger accounts: of one customer if given; per customer
    /// if `per_customer`, else each kind summed over customers (at most kinds × currencies
    /// rows).
    async fn ledger_balances(
        &mut self,
        scope: &Scope,
        customer: Option<&str>,
        per_customer: bool,
    ) -> StoreResult<Vec<LedgerBalance>>;
    async fn ledger_entries(
        &mut self,
        scope: &Scope,
        filter: &LedgerEntryFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<LedgerEntry>>>;

    /// Up to `limit` subscriptions due by `due_by` in `lane` (oldest due first), locked
    /// for the rest of the transaction; on PostgreSQL, rows another worker's transaction
    /// holds are skipped. Due times are the lane's time (a test clock's, for a clock
    /// lane). Unscoped, for the worker: each comes with its scope, and with its document
    /// as stored (for [`BillingTx::update_subscriptions_unchanged`]). The subscriptions
    /// `skipping` names are left out (another batch of this process has them in hand).
    async fn due_subscriptions_for_update(
        &mut self,
        lane: &Lane,
        due_by: i64,
        limit: u32,
        skipping: &[String],
    ) -> StoreResult<Vec<(Scope, Subscription, StoredDoc)>>;
    /// As [`BillingTx::due_subscriptions_for_update`], for drafts to finalize (their
    /// docs as stored are for [`BillingTx::update_invoices_unchanged`]).
    async fn due_drafts_for_update(
        &mut self,
        lane: &Lane,
        due_by: i64,
        limit: u32,
        skipping: &[String],
    ) -> StoreResult<Vec<(Scope, Invoice, StoredDoc)>>;
    /// Claims up to `limit` open invoices due by `due_by` in `lane` (oldest due first:
    /// payment attempts, sent invoices falling overdue) that no other worker holds a
    /// lease on at `lease_now`, leasing them to `owner` until `lease_until`. A lease,
    /// not a row lock, because an attempt calls the gateway between two transactions.
    /// Leases are always real time.
    async fn claim_due_open_invoices(
        &mut self,
        lane: &Lane,
        claim: &Claim,
    ) -> StoreResult<Vec<Due>>;
    /// The earliest `next_action_at` of a clock's subscriptions and invoices.
    async fn clock_next_due(&mut self, scope: &Scope, clock: &str) -> StoreResult<Option<i64>>;

    /// Every account and mode that has billing objects, for `kopek doctor`.
    async fn billing_scopes(&mut self) -> StoreResult<Vec<Scope>>;
    /// Entries whose lines do not sum to zero in some currency: (entry id, currency, sum).
    async fn unbalanced_ledger_entries(
        &mut self,
        scope: &Scope,
    ) -> StoreResult<Vec<(String, String, i64)>>;
    /// Invoices of the scope in creation order, after the `after` sequence number, for
    /// scans that must not hold everything in memory. Returns the last sequence number.
    async fn invoices_after(
        &mut self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> StoreResult<(Vec<Invoice>, i64)>;
    async fn subscriptions_after(
        &mut self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> StoreResult<(Vec<Subscription>, i64)>;
}

/// Credit notes and customer balances.
#[async_trait]
pub trait CreditsTx: Send {
    /// The balances of those of these customers that have one, locked for the rest of
    /// the transaction where the store has row locks.
    async fn customer_balances_for_update(
        &mut self,
        scope: &Scope,
        customers: &[String],
    ) -> StoreResult<Vec<CustomerBalance>>;
    /// Adds each amount to its customer's balance, giving the balance the currency if it
    /// had none; returns the balances after. A move in a currency other than the
    /// balance's is a `Conflict`, and nothing moves.
    async fn move_customer_balances(
        &mut self,
        scope: &Scope,
        moves: &[(String, kopek_core::Currency, i64)],
    ) -> StoreResult<Vec<(String, i64)>>;
    /// For `kopek doctor`: customers with a balance after row `after`, at most `limit`,
    /// with the last row's position.
    async fn customer_balances_after(
        &mut self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> StoreResult<(Vec<CustomerBalance>, i64)>;
    async fn insert_balance_transactions(
        &mut self,
        scope: &Scope,
        transactions: &[BalanceTransaction],
    ) -> StoreResult<()>;
    async fn update_balance_transaction(
        &mut self,
        scope: &Scope,
        transaction: &BalanceTransaction,
    ) -> StoreResult<()>;
    async fn balance_transaction(
        &mut self,
        scope: &Scope,
        customer: &str,
        id: &str,
    ) -> StoreResult<Option<BalanceTransaction>>;
    async fn balance_transactions(
        &mut self,
        scope: &Scope,
        customer: &str,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<BalanceTransaction>>>;

    async fn insert_credit_note(&mut self, scope: &Scope, note: &CreditNote) -> StoreResult<()>;
    async fn update_credit_note(&mut self, scope: &Scope, note: &CreditNote) -> StoreResult<()>;
    /// With `lock`, the row stays locked until the transaction ends.
    async fn credit_note(
        &mut self,
        scope: &Scope,
        id: &str,
        lock: bool,
    ) -> StoreResult<Option<CreditNote>>;
    /// An invoice's credit notes, oldest first, at most `limit`.
    async fn credit_notes_of_invoice(
        &mut self,
        scope: &Scope,
        invoice: &str,
        limit: u32,
    ) -> StoreResult<Vec<CreditNote>>;
    async fn credit_notes(
        &mut self,
        scope: &Scope,
        filter: &CreditNoteFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<CreditNote>>>;
}

/// Coupons and promotion codes.
#[async_trait]
pub trait DiscountsTx: Send {
    /// A coupon whose id is taken is a `Conflict`.
    async fn insert_coupon(&mut self, scope: &Scope, coupon: &Coupon) -> StoreResult<()>;
    async fn update_coupon(&mut self, scope: &Scope, coupon: &Coupon) -> StoreResult<()>;
    /// A coupon, deleted or not. `lock`: held until commit, so redemptions counted
    /// against a limit never pass it.
    async fn coupon(&mut self, scope: &Scope, id: &str, lock: bool) -> StoreResult<Option<Coupon>>;
    /// Coupons not deleted.
    async fn coupons(
        &mut self,
        scope: &Scope,
        created: &TimeRange,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Coupon>>>;
    /// A code already used in the scope (whatever its case) is a `Conflict`.
    async fn insert_promotion_code(
        &mut self,
        scope: &Scope,
        code: &PromotionCode,
    ) -> StoreResult<()>;
    async fn update_promotion_code(
        &mut self,
        scope: &Scope,
        code: &PromotionCode,
    ) -> StoreResult<()>;
    async fn promotion_code(
        &mut self,
        scope: &Scope,
        id: &str,
        lock: bool,
    ) -> StoreResult<Option<PromotionCode>>;
    /// The promotion code customers type, whatever its case.
    async fn promotion_code_by_code(
        &mut self,
        scope: &Scope,
        code: &str,
        lock: bool,
    ) -> StoreResult<Option<PromotionCode>>;
    async fn promotion_codes(
        &mut self,
        scope: &Scope,
        filter: &PromotionCodeFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<PromotionCode>>>;
}

/// Tax rates.
#[async_trait]
pub trait TaxRatesTx: Send {
    async fn insert_tax_rate(&mut self, scope: &Scope, rate: &TaxRate) -> StoreResult<()>;
    async fn update_tax_rate(&mut self, scope: &Scope, rate: &TaxRate) -> StoreResult<()>;
    /// The rates found among `ids`, in no particular order.
    async fn tax_rates_by_ids(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<TaxRate>>;
    async fn tax_rates(
        &mut self,
        scope: &Scope,
        filter: &TaxRateFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<TaxRate>>>;
}

/// Webhook endpoints.
#[async_trait]
pub trait WebhooksTx: Send {
    async fn insert_webhook_endpoint(
        &mut self,
        scope: &Scope,
        endpoint: &WebhookEndpoint,
    ) -> StoreResult<()>;
    async fn update_webhook_endpoint(
        &mut self,
        scope: &Scope,
        endpoint: &WebhookEndpoint,
    ) -> StoreResult<()>;
    async fn delete_webhook_endpoint(&mut self, scope: &Scope, id: &str) -> StoreResult<()>;
    async fn webhook_endpoint(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> StoreResult<Option<WebhookEndpoint>>;
    async fn webhook_endpoints(
        &mut self,
        scope: &Scope,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<WebhookEndpoint>>>;
    /// Every endpoint of the scope (there are at most 16), oldest first.
    async fn all_webhook_endpoints(&mut self, scope: &Scope) -> StoreResult<Vec<WebhookEndpoint>>;
    /// The endpoint, locked for the transaction (its failure streak is updated).
    async fn webhook_endpoint_for_update(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> StoreResult<Option<WebhookEndpoint>>;

    async fn insert_webhook_deliveries(
        &mut self,
        scope: &Scope,
        deliveries: &[WebhookDelivery],
    ) -> StoreResult<()>;
    /// Writes the delivery back and releases its lease.
    async fn update_webhook_delivery(
        &mut self,
        scope: &Scope,
        delivery: &WebhookDelivery,
    ) -> StoreResult<()>;
    /// Leases pending deliveries due by `claim.due_by` (real time) or, for those on a
    /// test clock, by the clock's frozen time: of every scope, oldest due first.
    async fn claim_due_webhook_deliveries(&mut self, claim: &Claim) -> StoreResult<Vec<Due>>;
    async fn webhook_delivery(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> StoreResult<Option<WebhookDelivery>>;
    async fn webhook_deliveries(
        &mut self,
        scope: &Scope,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<WebhookDelivery>>>;
    async fn insert_webhook_attempt(
        &mut self,
        scope: &Scope,
        attempt: &WebhookAttempt,
    ) -> StoreResult<()>;
    async fn webhook_attempts(
        &mut self,
        scope: &Scope,
        delivery: &str,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<WebhookAttempt>>>;
}

/// Customer emails.
#[async_trait]
pub trait NotificationsTx: Send {
    async fn insert_notifications(
        &mut self,
        scope: &Scope,
        notifications: &[Notification],
    ) -> StoreResult<()>;
    /// Writes it back and releases its lease.
    async fn update_notification(
        &mut self,
        scope: &Scope,
        notification: &Notification,
    ) -> StoreResult<()>;
    /// Leases pending emails due by `claim.due_by`, of every scope, oldest due first.
    async fn claim_due_notifications(&mut self, claim: &Claim) -> StoreResult<Vec<Due>>;
    async fn notification(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Notification>>;
    /// A customer's emails, newest first.
    async fn notifications(
        &mut self,
        scope: &Scope,
        customer: &str,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Notification>>>;
}

/// Price changes with notice.
#[async_trait]
pub trait PriceChangesTx: Send {
    async fn insert_price_change(&mut self, scope: &Scope, change: &PriceChange)
        -> StoreResult<()>;
    async fn update_price_change(&mut self, scope: &Scope, change: &PriceChange)
        -> StoreResult<()>;
    async fn price_change(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<PriceChange>>;
    /// The price change, locked for the transaction.
    async fn price_change_for_update(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> StoreResult<Option<PriceChange>>;
    async fn price_changes(
        &mut self,
        scope: &Scope,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<PriceChange>>>;
    async fn insert_price_change_subscriptions(
        &mut self,
        scope: &Scope,
        entries: &[PriceChangeSubscription],
    ) -> StoreResult<()>;
    async fn update_price_change_subscriptions(
        &mut self,
        scope: &Scope,
        entries: &[PriceChangeSubscription],
    ) -> StoreResult<()>;
    /// A change's subscriptions, oldest first, locked when `lock`.
    async fn price_change_subscriptions(
        &mut self,
        scope: &Scope,
        price_change: &str,
        lock: bool,
    ) -> StoreResult<Vec<PriceChangeSubscription>>;
    /// The moves still to be made of these subscriptions (notified or scheduled).
    async fn open_price_change_moves(
        &mut self,
        scope: &Scope,
        subscriptions: &[String],
    ) -> StoreResult<Vec<PriceChangeSubscription>>;
    /// Open entries whose notice or move is due by `due_by` in `lane`, locked.
    async fn due_price_change_subscriptions_for_update(
        &mut self,
        lane: &Lane,
        due_by: i64,
        limit: u32,
    ) -> StoreResult<Vec<(Scope, PriceChangeSubscription)>>;
}

/// Subscription schedules.
#[async_trait]
pub trait SchedulesTx: Send {
    async fn insert_schedule(
        &mut self,
        scope: &Scope,
        schedule: &SubscriptionSchedule,
    ) -> StoreResult<()>;
    async fn update_schedules(
        &mut self,
        scope: &Scope,
        schedules: &[SubscriptionSchedule],
    ) -> StoreResult<()>;
    async fn schedule(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> StoreResult<Option<SubscriptionSchedule>>;
    async fn schedules_for_update(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<SubscriptionSchedule>>;
    async fn schedules(
        &mut self,
        scope: &Scope,
        filter: &ScheduleFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<SubscriptionSchedule>>>;
    /// Schedules due by `due_by` in `lane`, oldest due first, locked.
    async fn due_schedules_for_update(
        &mut self,
        lane: &Lane,
        due_by: i64,
        limit: u32,
    ) -> StoreResult<Vec<(Scope, SubscriptionSchedule)>>;
}

/// Meters and their events.
#[async_trait]
pub trait UsageTx: Send {
    /// Refused with [`StoreError::Conflict`] when an active meter has its event name.
    async fn insert_meter(&mut self, scope: &Scope, meter: &Meter) -> StoreResult<()>;
    async fn update_meter(&mut self, scope: &Scope, meter: &Meter) -> StoreResult<()>;
    /// The meters found among `ids`, in no particular order.
    async fn meters_by_ids(&mut self, scope: &Scope, ids: &[String]) -> StoreResult<Vec<Meter>>;
    /// The active meters counting events named among `names`.
    async fn meters_by_event_names(
        &mut self,
        scope: &Scope,
        names: &[String],
    ) -> StoreResult<Vec<Meter>>;
    async fn meters(
        &mut self,
        scope: &Scope,
        active: Option<bool>,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Meter>>>;
    /// Inserts the events of meters in `scope`, skipping any whose identifier its meter
    /// has seen before (also earlier in `events`); returns how many were new.
    async fn insert_meter_events(
        &mut self,
        scope: &Scope,
        events: &[MeterEvent],
    ) -> StoreResult<u64>;
    /// The aggregates of the events `query` covers, billed or not.
    async fn usage(&mut self, scope: &Scope, query: &UsageQuery) -> StoreResult<Aggregates>;
    /// The aggregates of the covered events that no invoice billed yet; `Some(invoice)`
    /// marks them billed by it, so no later invoice counts them again.
    async fn unbilled_usage(
        &mut self,
        scope: &Scope,
        query: &UsageQuery,
        bill_to: Option<&str>,
    ) -> StoreResult<Aggregates>;
}

/// One line to tax: its amount after discounts, and the rates that apply to it.
#[derive(Debug, Clone, Copy)]
pub struct TaxableLine<'a> {
    pub amount: i64,
    pub rates: &'a [TaxRate],
    /// The product of its price, for engines that tax by product.
    pub product: Option<&'a str>,
}

/// What taxes an invoice's lines. kopek's own implementation applies the lines' tax
/// rates; an external tax engine plugs in here. It is called inside the transaction
/// that writes the invoice, so an engine that asks a remote service must answer from
/// what it was told beforehand (as gateways are asked before the transaction).
pub trait TaxCalculator: Send + Sync {
    /// The tax on each line, one amount per rate that charged it.
    fn line_taxes(
        &self,
        currency: kopek_core::Currency,
        lines: &[TaxableLine<'_>],
    ) -> Result<Vec<Vec<TaxAmount>>, crate::AppError>;
}

/// The time, injected: no use case reads the wall clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> i64;
}

/// Resolves a webhook URL's host name to the addresses the URL guard judges (and a
/// sender connects to).
#[async_trait]
pub trait Resolver: Send + Sync {
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<std::net::IpAddr>, String>;
}

/// The operating system's resolver.
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<std::net::IpAddr>, String> {
        let found = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| e.to_string())?;
        Ok(found.map(|addr| addr.ip()).collect())
    }
}

/// One webhook request, to be sent to exactly the addresses the URL guard vetted.
pub struct WebhookRequest<'a> {
    pub target: &'a kopek_core::webhook::ssrf::Vetted,
    pub headers: &'a [(&'static str, String)],
    pub body: &'a [u8],
    /// For the whole attempt: connecting, sending and reading the answer's head.
    pub timeout: std::time::Duration,
}

/// What a receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAnswer {
    pub status: u16,
    pub retry_after: Option<String>,
    /// The first bytes of the body (at most [`WEBHOOK_ANSWER_HEAD_MAX`]).
    pub body_head: Vec<u8>,
}

/// How much of a receiver's answer is kept with the attempt.
pub const WEBHOOK_ANSWER_HEAD_MAX: usize = 1_024;

/// Sends webhook requests over HTTP(S), following no redirect.
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// The answer, or why there was none (connection refused, timeout, TLS failure, …).
    async fn send(&self, request: WebhookRequest<'_>) -> Result<WebhookAnswer, String>;
}

/// One email to send: its kind, the customer's languages in order of preference, and
/// what its template shows (`fields`: strings, and `lines`, a list of objects of strings).
pub struct Email<'a> {
    /// The notification's id, which the message's id is made from.
    pub id: &'a str,
    pub to: &'a str,
    pub kind: EmailKind,
    pub locales: &'a [String],
    pub fields: &'a serde_json::Value,
}

/// What was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    pub subject: String,
    /// The template language used.
    pub locale: String,
}

/// Renders an email from its templates and sends it (over SMTP, or into files).
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, email: Email<'_>) -> Result<SentEmail, String>;
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
    /// A subscription, given its items' prices already rendered (by id): a batch renders
    /// each price once, not once per subscription.
    fn subscription(
        &self,
        sub: &Subscription,
        prices: &std::collections::HashMap<String, serde_json::Value>,
    ) -> serde_json::Value;
    fn invoice(&self, invoice: &Invoice) -> serde_json::Value;
    fn invoice_item(&self, item: &InvoiceItem) -> serde_json::Value;
    fn test_clock(&self, clock: &TestClock) -> serde_json::Value;
    fn payment_method(&self, pm: &PaymentMethod) -> serde_json::Value;
    fn payment_intent(&self, pi: &PaymentIntent) -> serde_json::Value;
    fn charge(&self, charge: &Charge) -> serde_json::Value;
    fn billing_settings(&self, settings: &BillingSettings) -> serde_json::Value;
    fn refund(&self, refund: &Refund) -> serde_json::Value;
    fn dispute(&self, dispute: &Dispute) -> serde_json::Value;
    fn credit_note(&self, note: &CreditNote) -> serde_json::Value;
    fn balance_transaction(&self, transaction: &BalanceTransaction) -> serde_json::Value;
    fn discount(&self, discount: &Discount) -> serde_json::Value;
    fn tax_rate(&self, rate: &TaxRate) -> serde_json::Value;
    /// An endpoint, with its signing secret only when `secret` (made or rotated just now).
    fn webhook_endpoint(&self, endpoint: &WebhookEndpoint, secret: bool) -> serde_json::Value;
    fn meter(&self, meter: &Meter) -> serde_json::Value;
    fn subscription_schedule(&self, schedule: &SubscriptionSchedule) -> serde_json::Value;
    fn meter_event(&self, event: &crate::ReportedEvent) -> serde_json::Value;
    fn meter_event_batch(&self, outcome: &crate::BatchOutcome) -> serde_json::Value;
    /// A coupon as of `now` (its `valid` depends on the time).
    fn coupon(&self, coupon: &Coupon, now: i64) -> serde_json::Value;
    fn promotion_code(&self, code: &PromotionCode, coupon: &Coupon, now: i64) -> serde_json::Value;
    /// A declined card as the API answers it: HTTP status and Stripe's error envelope.
    fn card_error(&self, decline: &Decline, param: Option<&str>) -> (u16, serde_json::Value);
    fn deleted(&self, object: &str, id: &str) -> serde_json::Value;
    fn webhook_delivery(&self, delivery: &WebhookDelivery) -> serde_json::Value;
    fn price_change(&self, view: &PriceChangeView) -> serde_json::Value;
    fn price_change_subscription(&self, entry: &PriceChangeSubscription) -> serde_json::Value;
    fn webhook_attempt(&self, attempt: &WebhookAttempt) -> serde_json::Value;
    /// An event, given its object and previous attributes already rendered.
    fn event(
        &self,
        event: &Event,
        object: serde_json::Value,
        previous_attributes: Option<serde_json::Value>,
    ) -> serde_json::Value;
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

/// Bytes of OS randomness drawn at a time for ids: a billing batch makes thousands of
/// ids, and a `getrandom` system call for each showed in the billing run's profile.
const RANDOM_POOL: usize = 4096;

thread_local! {
    /// OS randomness not yet used, and how much of it is used; every byte goes into one
    /// id only.
    static POOL: std::cell::RefCell<([u8; RANDOM_POOL], usize)> =
        const { std::cell::RefCell::new(([0; RANDOM_POOL], RANDOM_POOL)) };
}

/// `N` bytes of OS randomness, from this thread's pool.
fn random_bytes<const N: usize>() -> [u8; N] {
    POOL.with_borrow_mut(|(pool, used)| {
        if *used + N > RANDOM_POOL {
            // Without OS randomness kopek cannot make safe ids or keys; there is no
            // fallback.
            getrandom::fill(pool).expect("the operating system provides randomness");
            *used = 0;
        }
        let mut bytes = [0; N];
        bytes.copy_from_slice(&pool[*used..*used + N]);
        *used += N;
        bytes
    })
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Base62 digits of the time part of an id: 62^10 microseconds last until the year 28,000.
const TIME_DIGITS: usize = 10;
const RANDOM_DIGITS: usize = 14;

impl IdSource for RandomIds {
    /// `prefix_` + 10 base62 digits of the current microsecond + 14 random base62 digits
    /// (83 bits). Ids made later sort after earlier ones, so every index on an id column
    /// grows at its end instead of at a random page: at 100,000 renewals, random ids made
    /// the database's indexes outgrow its page cache. The time part is not a domain time
    /// (no rule reads it); the random part keeps ids unguessable and unique.
    fn id(&self, prefix: &str) -> String {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let bytes = random_bytes::<RANDOM_DIGITS>();
        let mut id = String::with_capacity(prefix.len() + 1 + TIME_DIGITS + RANDOM_DIGITS);
        id.push_str(prefix);
        id.push('_');
        let mut time = [b'0'; TIME_DIGITS];
        let mut rest = micros;
        for digit in time.iter_mut().rev() {
            *digit = BASE62[(rest % 62) as usize];
            rest /= 62;
        }
        id.extend(time.iter().map(|&b| b as char));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_and_do_not_repeat() {
        let ids: Vec<String> = (0..2_000).map(|_| RandomIds.id("in")).collect();
        assert!(ids.iter().all(|id| id.len() == "in_".len() + 24));
        assert!(
            ids.windows(2).all(|w| w[0][..13] <= w[1][..13]),
            "time parts ascend"
        );
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
    }
}
