mod balances;
mod billing;
mod billing_settings;
mod catalog;
mod collection;
mod credit_notes;
mod customers;
mod discounts;
mod disputes;
mod doctor;
mod events;
mod finalizing_ahead;
mod invoices;
mod invoicing;
mod keys;
mod ledger;
mod metadata;
mod notifications;
mod payment_methods;
mod payments;
mod previews;
mod price_changes;
mod refunds;
mod schedules;
mod subscriptions;
mod taxes;
mod test_clocks;
mod usage;
mod webhook_deliveries;
mod webhook_endpoints;

pub use balances::{NewBalanceTransaction, ADJUSTMENT_MAX};
pub(crate) use billing::InHand;
pub use billing::{Progress, WorkerConfig};
pub use billing_settings::BillingSettingsUpdate;
pub use catalog::{NewPrice, NewProduct, PriceUpdate, ProductRef, ProductUpdate};
pub use collection::{GATEWAY_TIMEOUT_MS_DEFAULT, RECONCILE_DELAYS_S};
pub use credit_notes::{NewCreditNote, NewCreditNoteLine, CREDIT_NOTES_PER_INVOICE_MAX};
pub use customers::CustomerParams;
pub use discounts::{
    CouponOff, CouponUpdate, DiscountRequest, DiscountSource, NewCoupon, NewPromotionCode,
    PromotionCodeUpdate, DISCOUNTS_MAX,
};
pub use disputes::{DisputeUpdate, EVIDENCE_FIELDS};
pub use doctor::Violation;
pub use invoices::{
    InvoiceItemUpdate, InvoiceUpdate, ItemAmount, NewInvoiceItem, NewManualInvoice,
};
pub use invoicing::{DAYS_UNTIL_DUE_DEFAULT, DRAFT_WINDOW_S_DEFAULT};
pub use keys::{NewKey, KEY_PREFIX_LIVE, KEY_PREFIX_TEST};
pub use metadata::MetadataUpdate;
pub use payment_methods::PaymentMethodParams;
pub use previews::PreviewRequest;
pub use price_changes::{
    NewPriceChange, NOTICE_DAYS_MAX, NOTICE_DAYS_MIN_DEFAULT, PRICE_CHANGE_SUBSCRIPTIONS_MAX,
};
pub use refunds::{NewRefund, REFUND_REASONS};
pub use schedules::{
    NewPhase, NewPhaseItem, NewSchedule, ScheduleUpdate, ITERATIONS_MAX, PHASES_MAX,
};
pub use subscriptions::{
    Cancellation, ItemUpdate, NewItem, NewSubscription, PaymentBehavior, SubscriptionUpdate,
    TrialEnd, INCOMPLETE_WINDOW_S, TRIAL_DAYS_MAX,
};
pub use taxes::{NewTaxRate, RateTaxes, TaxRateUpdate, TAX_RATES_MAX};
pub use test_clocks::TEST_CLOCK_LIFETIME_S;
pub use usage::{
    BatchOutcome, NewMeter, NewMeterEvent, ReportedEvent, UsageSummary, SUMMARIES_MAX,
};
pub use webhook_deliveries::{Replayed, REPLAY_MAX, WEBHOOK_TIMEOUT_MS_DEFAULT};
pub use webhook_endpoints::{
    NewWebhookEndpoint, WebhookEndpointUpdate, EVENT_TYPES, ROTATION_OVERLAP_S_DEFAULT,
    ROTATION_OVERLAP_S_MAX, WEBHOOK_ENDPOINTS_MAX,
};
