//! Usage-based billing: meters (`/v1/billing/meters`), the events reported against them
//! (single and in batches), their summaries, and the metered lines of invoices.

use crate::app::{cursor_not_found, App, Caller};
use crate::error::AppError;
use crate::ports::Tx;
use crate::records::*;
use kopek_core::period::Period;
use kopek_core::usage::{check_timestamp, Formula, TimestampError, BATCH_EVENTS_MAX, VALUE_MAX};
use std::collections::{BTreeMap, HashMap};

/// Stripe's limit on event names and identifiers.
pub const METER_NAME_CHARS_MAX: usize = 100;
/// How many summaries one request returns at most (its `limit`).
pub const SUMMARIES_MAX: u32 = 100;

#[derive(Debug, Clone)]
pub struct NewMeter {
    pub display_name: String,
    pub event_name: String,
    pub formula: Formula,
    pub customer_key: Option<String>,
    pub value_key: Option<String>,
}

/// A usage event as reported (`POST /v1/billing/meter_events`).
#[derive(Debug, Clone, Default)]
pub struct NewMeterEvent {
    pub event_name: String,
    pub identifier: Option<String>,
    pub timestamp: Option<i64>,
    pub payload: BTreeMap<String, String>,
}

/// An event as accepted: the report with its identifier and time filled in.
#[derive(Debug, Clone)]
pub struct ReportedEvent {
    pub event_name: String,
    pub identifier: String,
    pub timestamp: i64,
    pub created: i64,
    pub livemode: bool,
    pub payload: BTreeMap<String, String>,
}

/// What became of a batch: how many events were new, how many repeated an identifier
/// already counted, and why each rejected one was refused (by its index).
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: Vec<(usize, AppError)>,
}

/// One window of a meter's usage for one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageSummary {
    pub meter: String,
    pub livemode: bool,
    pub start: i64,
    pub end: i64,
    pub value: i64,
}

fn meter_not_found(id: &str, param: &'static str) -> AppError {
    AppError::NotFound {
        object: "billing.meter",
        id: id.to_owned(),
        param: Some(param),
    }
}

fn check_name(param: &str, text: &str) -> Result<(), AppError> {
    if text.is_empty() || text.chars().count() > METER_NAME_CHARS_MAX {
        return Err(AppError::invalid(
            param,
            format!("{param} must be 1 to {METER_NAME_CHARS_MAX} characters."),
        ));
    }
    Ok(())
}

impl App {
    pub async fn create_meter(&self, caller: &Caller, new: NewMeter) -> Result<Meter, AppError> {
        check_name("event_name", &new.event_name)?;
        check_name("display_name", &new.display_name)?;
        let now = self.clock.now();
        let meter = Meter {
            id: self.ids.id("mtr"),
            livemode: caller.scope.livemode,
            created: now,
            updated: now,
            display_name: new.display_name,
            event_name: new.event_name,
            formula: new.formula.as_str().to_owned(),
            customer_key: new
                .customer_key
                .unwrap_or_else(|| "stripe_customer_id".into()),
            value_key: new.value_key.unwrap_or_else(|| "value".into()),
            inactive: false,
            deactivated_at: None,
        };
        check_name("customer_mapping[event_payload_key]", &meter.customer_key)?;
        check_name("value_settings[event_payload_key]", &meter.value_key)?;
        let mut tx = self.store.write().await?;
        self.refuse_taken_event_name(&mut tx, &caller.scope, &meter.event_name)
            .await?;
        tx.insert_meter(&caller.scope, &meter).await?;
        let rendered = self.render.meter(&meter);
        self.commit(tx, caller, Vec::new(), &rendered).await?;
        Ok(meter)
    }

    async fn refuse_taken_event_name(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        event_name: &str,
    ) -> Result<(), AppError> {
        if let Some(other) = tx
            .meters_by_event_names(scope, &[event_name.to_owned()])
            .await?
            .pop()
        {
            return Err(AppError::invalid(
                "event_name",
                format!(
                    "The active meter {} already counts events named '{event_name}'; deactivate it first.",
                    other.id
                ),
            ));
        }
        Ok(())
    }

    pub async fn meter(&self, scope: &Scope, id: &str) -> Result<Meter, AppError> {
        let mut tx = self.store.read().await?;
        tx.meters_by_ids(scope, &[id.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| meter_not_found(id, "id"))
    }

    pub async fn meters(
        &self,
        scope: &Scope,
        active: Option<bool>,
        page: &PageRequest,
    ) -> Result<Page<Meter>, AppError> {
        let mut tx = self.store.read().await?;
        tx.meters(scope, active, page)
            .await?
            .ok_or_else(|| cursor_not_found("billing.meter", page))
    }

    /// Renames a meter, or (with `active`) deactivates or reactivates it: an inactive
    /// meter takes no events, and its event name is free for another meter.
    pub async fn update_meter(
        &self,
        caller: &Caller,
        id: &str,
        display_name: Option<String>,
        active: Option<bool>,
    ) -> Result<Meter, AppError> {
        let mut tx = self.store.write().await?;
        let mut meter = tx
            .meters_by_ids(&caller.scope, &[id.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| meter_not_found(id, "id"))?;
        let now = self.clock.now();
        if let Some(name) = display_name {
            check_name("display_name", &name)?;
            meter.display_name = name;
        }
        match active {
            Some(true) if meter.inactive => {
                self.refuse_taken_event_name(&mut tx, &caller.scope, &meter.event_name)
                    .await?;
                meter.inactive = false;
                meter.deactivated_at = None;
            }
            Some(false) if !meter.inactive => {
                meter.inactive = true;
                meter.deactivated_at = Some(now);
            }
            Some(active) => {
                return Err(AppError::invalid(
                    "id",
                    format!(
                        "The meter {id} is already {}.",
                        if active { "active" } else { "inactive" }
                    ),
                ))
            }
            None => {}
        }
        meter.updated = now;
        tx.update_meter(&caller.scope, &meter).await?;
        let rendered = self.render.meter(&meter);
        self.commit(tx, caller, Vec::new(), &rendered).await?;
        Ok(meter)
    }

    /// The active meter `id`, for a metered price; refused naming `param` otherwise.
    pub(crate) async fn active_meter(
        &self,
        tx: &mut dyn Tx,
        scope: &Scope,
        id: &str,
        param: &'static str,
    ) -> Result<Meter, AppError> {
        let meter = tx
            .meters_by_ids(scope, &[id.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| meter_not_found(id, param))?;
        if meter.inactive {
            return Err(AppError::invalid(
                param,
                format!("The meter {id} is inactive; reactivate it first."),
            ));
        }
        Ok(meter)
    }

    /// Records one event; refused with the reason when it is not accepted. A repeated
    /// identifier is accepted and counted once.
    pub async fn record_meter_event(
        &self,
        caller: &Caller,
        event: NewMeterEvent,
    ) -> Result<ReportedEvent, AppError> {
        let (mut outcome, mut reported) = self.record(caller, vec![Ok(event)], true).await?;
        match outcome.rejected.pop() {
            Some((_, error)) => Err(error),
            None => reported
                .pop()
                .ok_or_else(|| AppError::Internal("no event".into())),
        }
    }

    /// Records a batch: the valid events are kept, each invalid one reported with its
    /// reason (as are those the caller could not read, given as errors). Over
    /// [`BATCH_EVENTS_MAX`] events is refused whole.
    pub async fn record_meter_events(
        &self,
        caller: &Caller,
        events: Vec<Result<NewMeterEvent, AppError>>,
    ) -> Result<BatchOutcome, AppError> {
        if events.len() > BATCH_EVENTS_MAX {
            return Err(AppError::invalid(
                "events",
                format!("A batch takes at most {BATCH_EVENTS_MAX} events; split it."),
            ));
        }
        Ok(self.record(caller, events, false).await?.0)
    }

    async fn record(
        &self,
        caller: &Caller,
        events: Vec<Result<NewMeterEvent, AppError>>,
        single: bool,
    ) -> Result<(BatchOutcome, Vec<ReportedEvent>), AppError> {
        let scope = &caller.scope;
        let param = |index: usize, name: &str| {
            if single {
                name.to_owned()
            } else {
                format!("events[{index}][{name}]")
            }
        };
        let payload_param = |index: usize, key: &str| {
            if single {
                format!("payload[{key}]")
            } else {
                format!("events[{index}][payload][{key}]")
            }
        };
        let mut names: Vec<String> = events
            .iter()
            .flatten()
            .map(|e| e.event_name.clone())
            .collect();
        names.sort();
        names.dedup();
        // Events are checked outside the write transaction, so SQLite's one writer only
        // waits for the insert: a meter or customer changing meanwhile is as if the
        // batch had come a moment earlier.
        let mut tx = self.store.read().await?;
        let meters: HashMap<String, Meter> = tx
            .meters_by_event_names(scope, &names)
            .await?
            .into_iter()
            .map(|m| (m.event_name.clone(), m))
            .collect();
        let mut customer_ids: Vec<String> = events
            .iter()
            .flatten()
            .filter_map(|e| {
                let meter = meters.get(&e.event_name)?;
                e.payload.get(&meter.customer_key).cloned()
            })
            .collect();
        customer_ids.sort();
        customer_ids.dedup();
        let customers: HashMap<String, Customer> = tx
            .customers_by_ids(scope, &customer_ids)
            .await?
            .into_iter()
            .filter(|c| !c.deleted)
            .map(|c| (c.id.clone(), c))
            .collect();
        // Each customer's "now": a test clock's time for customers on one.
        let mut clock_times: HashMap<String, i64> = HashMap::new();
        for customer in customers.values() {
            if let Some(clock) = &customer.test_clock {
                if !clock_times.contains_key(clock) {
                    let now = self.time_for(&mut tx, scope, customer).await?;
                    clock_times.insert(clock.clone(), now);
                }
            }
        }
        let created = self.clock.now();
        let mut outcome = BatchOutcome::default();
        let mut rows = Vec::with_capacity(events.len());
        let mut reported = Vec::new();
        for (index, event) in events.into_iter().enumerate() {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    outcome.rejected.push((index, error));
                    continue;
                }
            };
            let checked = (|| {
                check_name(&param(index, "event_name"), &event.event_name)?;
                let meter = meters.get(&event.event_name).ok_or_else(|| {
                    AppError::invalid(
                        param(index, "event_name"),
                        format!(
                            "No active meter counts events named '{}'; create one first.",
                            event.event_name
                        ),
                    )
                })?;
                let customer_param = payload_param(index, &meter.customer_key);
                let customer_id = event.payload.get(&meter.customer_key).ok_or_else(|| {
                    AppError::invalid(
                        &customer_param,
                        format!(
                            "The payload needs the customer id under '{}'.",
                            meter.customer_key
                        ),
                    )
                })?;
                let customer = customers.get(customer_id).ok_or_else(|| {
                    AppError::invalid(
                        &customer_param,
                        format!("No such customer: '{customer_id}'"),
                    )
                })?;
                let value_param = payload_param(index, &meter.value_key);
                let formula = meter.formula();
                let raw = event.payload.get(&meter.value_key);
                let (value, token) = match (formula, raw) {
                    (Formula::Count, _) => (0, None),
                    (Formula::UniqueCount, Some(token)) => (0, Some(token.clone())),
                    (_, Some(text)) => {
                        let value = text
                            .trim()
                            .parse::<i64>()
                            .ok()
                            .filter(|v| (0..=VALUE_MAX).contains(v))
                            .ok_or_else(|| {
                                AppError::invalid(
                                    &value_param,
                                    format!(
                                        "The value must be a whole number from 0 to {VALUE_MAX}."
                                    ),
                                )
                            })?;
                        (value, None)
                    }
                    (_, None) => {
                        return Err(AppError::invalid(
                            &value_param,
                            format!("The payload needs the value under '{}'.", meter.value_key),
                        ))
                    }
                };
                let now = customer
                    .test_clock
                    .as_ref()
                    .and_then(|c| clock_times.get(c).copied())
                    .unwrap_or(created);
                let timestamp = event.timestamp.unwrap_or(now);
                check_timestamp(now, timestamp).map_err(|e| {
                    AppError::invalid(
                        param(index, "timestamp"),
                        match e {
                            TimestampError::TooOld => {
                                "The timestamp is more than 35 days in the past; usage that old is no longer accepted."
                            }
                            TimestampError::TooFarAhead => {
                                "The timestamp is more than 5 minutes in the future."
                            }
                        },
                    )
                })?;
                let identifier = match &event.identifier {
                    Some(id) => {
                        check_name(&param(index, "identifier"), id)?;
                        id.clone()
                    }
                    None => self.ids.id("mev"),
                };
                Ok(MeterEvent {
                    meter: meter.id.clone(),
                    identifier,
                    customer: customer_id.clone(),
                    timestamp,
                    value,
                    token,
                    created,
                })
            })();
            match checked {
                Ok(row) => {
                    if single {
                        reported.push(ReportedEvent {
                            event_name: event.event_name,
                            identifier: row.identifier.clone(),
                            timestamp: row.timestamp,
                            created,
                            livemode: scope.livemode,
                            payload: event.payload,
                        });
                    }
                    rows.push(row);
                }
                Err(error) => outcome.rejected.push((index, error)),
            }
        }
        drop(tx);
        if single && !outcome.rejected.is_empty() {
            // Refused: nothing to write.
            return Ok((outcome, reported));
        }
        let mut tx = self.store.write().await?;
        outcome.accepted = tx.insert_meter_events(scope, &rows).await?;
        outcome.duplicates = rows.len() as u64 - outcome.accepted;
        let rendered = match reported.first() {
            Some(event) => self.render.meter_event(event),
            None => self.render.meter_event_batch(&outcome),
        };
        self.commit(tx, caller, Vec::new(), &rendered).await?;
        Ok((outcome, reported))
    }

    /// A meter's usage for one customer from `start` to `end`, in one summary or in
    /// windows of `window` seconds (at most `limit` of them; `has_more` when cut).
    pub async fn meter_usage_summaries(
        &self,
        scope: &Scope,
        meter_id: &str,
        customer: &str,
        (start, end): (i64, i64),
        window: Option<i64>,
        limit: u32,
    ) -> Result<Page<UsageSummary>, AppError> {
        if end <= start {
            return Err(AppError::invalid(
                "end_time",
                "end_time must be after start_time.",
            ));
        }
        let mut tx = self.store.read().await?;
        let meter = tx
            .meters_by_ids(scope, &[meter_id.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| meter_not_found(meter_id, "id"))?;
        tx.customers_by_ids(scope, &[customer.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| AppError::NotFound {
                object: "customer",
                id: customer.to_owned(),
                param: Some("customer"),
            })?;
        let step = window.unwrap_or(end - start);
        let mut data = Vec::new();
        let mut from = start;
        while from < end && data.len() < limit as usize {
            let to = from.saturating_add(step).min(end);
            let query = UsageQuery {
                meter: meter.id.clone(),
                customer: customer.to_owned(),
                from,
                to,
            };
            let aggregates = tx.usage(scope, &query).await?;
            data.push(UsageSummary {
                meter: meter.id.clone(),
                livemode: scope.livemode,
                start: from,
                end: to,
                value: aggregates.value(meter.formula()),
            });
            from = to;
        }
        Ok(Page {
            data,
            has_more: from < end,
        })
    }
}

/// The earliest event a line for a period starting at `start` bills. An event reported
/// late for the period before is at most 35 days older than when it arrived, and it
/// arrived after that period was billed (at `start` or later): so no unbilled event of
/// the subscription's time is older than this, and events from before it (of another,
/// older subscription, say) stay out.
fn usage_from(start: i64) -> i64 {
    start - kopek_core::usage::BACKDATE_MAX_S
}

/// What `quantity` units of metered `price` cost on a line (nothing when `free`).
fn metered_amount(price: &Price, quantity: u64, free: bool) -> Result<i64, AppError> {
    if free {
        return Ok(0);
    }
    let amount = price
        .model
        .amount_for(quantity)
        .map_err(super::invoicing::money_error)?;
    Ok(amount.minor())
}

/// The lines billing `sub`'s metered items in arrears for `period`, the period just
/// ended; [`App::count_usage`] fills in their quantities and amounts.
pub(crate) fn usage_lines(
    app: &App,
    sub: &Subscription,
    prices: &HashMap<String, Price>,
    period: Period,
    free: bool,
) -> Vec<InvoiceLine> {
    sub.items
        .iter()
        .filter_map(|item| {
            let price = prices.get(&item.price)?;
            let meter = price.meter.clone()?;
            let nickname = price.nickname.clone().unwrap_or_else(|| price.id.clone());
            let mut line = super::invoicing::item_line_base(app, sub, item, price, period);
            line.quantity = Some(0);
            line.description = Some(format!("{nickname} usage"));
            line.usage = Some(LineUsage { meter, free });
            Some(line)
        })
        .collect()
}

impl App {
    /// Counts the usage of `invoice`'s metered lines: for a draft to show (`mark` false),
    /// and again as it is finalized (`mark`), marking the events billed by it, so usage
    /// reported up to then is on it and later usage goes on the next.
    pub(crate) async fn count_usage(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        invoice: &mut Invoice,
        mark: bool,
    ) -> Result<(), AppError> {
        if invoice.lines.iter().all(|l| l.usage.is_none()) {
            return Ok(());
        }
        let mut price_ids: Vec<String> = invoice
            .lines
            .iter()
            .filter(|l| l.usage.is_some())
            .filter_map(|l| l.price.clone())
            .collect();
        price_ids.sort();
        price_ids.dedup();
        let prices: HashMap<String, Price> = tx
            .prices_by_ids(scope, &price_ids)
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        let mut meter_ids: Vec<String> = invoice
            .lines
            .iter()
            .filter_map(|l| l.usage.as_ref().map(|u| u.meter.clone()))
            .collect();
        meter_ids.sort();
        meter_ids.dedup();
        let meters: HashMap<String, Meter> = tx
            .meters_by_ids(scope, &meter_ids)
            .await?
            .into_iter()
            .map(|m| (m.id.clone(), m))
            .collect();
        // Lines of one meter bill the same events: counted once, marked once.
        let mut counted: HashMap<(String, i64), u64> = HashMap::new();
        for line in invoice.lines.iter_mut() {
            let Some(usage) = &line.usage else {
                continue;
            };
            let meter = meters
                .get(&usage.meter)
                .ok_or_else(|| AppError::Internal(format!("meter {} is missing", usage.meter)))?;
            let key = (usage.meter.clone(), line.period_end);
            let quantity = match counted.get(&key) {
                Some(&quantity) => quantity,
                None => {
                    let query = UsageQuery {
                        meter: usage.meter.clone(),
                        customer: invoice.customer.clone(),
                        from: usage_from(line.period_start),
                        to: line.period_end,
                    };
                    let quantity = tx
                        .unbilled_usage(scope, &query, mark.then_some(invoice.id.as_str()))
                        .await?
                        .quantity(meter.formula());
                    counted.insert(key, quantity);
                    quantity
                }
            };
            let price = line
                .price
                .as_ref()
                .and_then(|p| prices.get(p))
                .ok_or_else(|| {
                    AppError::Internal(format!("the price of {} is missing", line.id))
                })?;
            line.quantity = Some(quantity);
            line.amount = metered_amount(price, quantity, usage.free)?;
        }
        Ok(())
    }
}
