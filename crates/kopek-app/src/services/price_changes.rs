//! Price changes with notice (`/v1/price_changes`, kopek's extension): the subscribers of
//! one price moved to another of the same currency and interval. Each subscription is
//! told at once (in its own time, so a test clock's), and moves at its first renewal at
//! least `notice_days` after that: the billing run steps due entries before renewals, so
//! the renewal that the move falls on bills the new price, and none before it does.
//! Subscribers can opt out (their subscription then ends with its period) or be
//! excluded (kept on the old price); the change can be canceled while it is open.

use super::metadata::MetadataUpdate;
use crate::app::{cursor_not_found, App, Caller, Change};
use crate::error::AppError;
use crate::ports::Tx;
use crate::records::*;
use kopek_core::billing;
use kopek_core::price::PriceKind;

/// Subscribers one price change may move.
pub const PRICE_CHANGE_SUBSCRIPTIONS_MAX: usize = 10_000;
/// The notice an account requires unless it sets another minimum.
pub const NOTICE_DAYS_MIN_DEFAULT: u32 = 30;
/// The longest notice: two years.
pub const NOTICE_DAYS_MAX: u32 = 730;
const DAY: i64 = 86_400;

#[derive(Debug, Clone, Default)]
pub struct NewPriceChange {
    pub price: String,
    pub new_price: String,
    /// The account's minimum unless given.
    pub notice_days: Option<u32>,
    /// Subscriptions kept on the old price (grandfathered).
    pub exclude: Vec<String>,
    /// Compute and answer, writing nothing.
    pub dry_run: bool,
    /// Let the new price renew on another interval: each subscription moves to it at
    /// its renewal, its cycle starting there.
    pub allow_interval_change: bool,
    pub metadata: MetadataUpdate,
}

/// Puts `sub` on the entry's new interval, if it has one, from the end of its period:
/// the renewal due now starts a cycle of the new length.
pub(crate) fn move_interval(sub: &mut Subscription, entry: &PriceChangeSubscription) {
    let Some((unit, count)) = &entry.new_interval else {
        return;
    };
    if let Some(unit) = kopek_core::period::IntervalUnit::parse(unit) {
        sub.interval = unit;
        sub.interval_count = *count;
        sub.billing_cycle_anchor = sub.current_period_end;
    }
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound {
        object: "price_change",
        id: id.to_owned(),
        param: Some("id"),
    }
}

/// The first renewal of `sub` at or after `earliest` (bounded: intervals are at least a
/// day, notices at most two years).
fn first_renewal_from(sub: &Subscription, earliest: i64) -> i64 {
    let mut at = sub.current_period_end;
    for _ in 0..(NOTICE_DAYS_MAX as usize + 2) {
        if at >= earliest {
            break;
        }
        at = billing::period_from(sub.interval(), sub.billing_cycle_anchor, at).end;
    }
    at
}

impl App {
    pub async fn create_price_change(
        &self,
        caller: &Caller,
        new: NewPriceChange,
    ) -> Result<PriceChangeView, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let from = tx
            .price(scope, &new.price)
            .await?
            .ok_or_else(|| AppError::NotFound {
                object: "price",
                id: new.price.clone(),
                param: Some("price"),
            })?;
        let to = tx
            .price(scope, &new.new_price)
            .await?
            .ok_or_else(|| AppError::NotFound {
                object: "price",
                id: new.new_price.clone(),
                param: Some("new_price"),
            })?;
        let (PriceKind::Recurring(from_interval), PriceKind::Recurring(to_interval)) =
            (from.model.kind, to.model.kind)
        else {
            let param = if matches!(from.model.kind, PriceKind::OneTime) {
                "price"
            } else {
                "new_price"
            };
            return Err(AppError::invalid(
                param,
                "Only recurring prices have subscribers to move.",
            ));
        };
        if from.id == to.id {
            return Err(AppError::invalid(
                "new_price",
                "The new price is the price itself.",
            ));
        }
        if !to.active {
            return Err(AppError::invalid(
                "new_price",
                format!("Price {} is not active.", to.id),
            ));
        }
        if from.meter.is_some() || to.meter.is_some() {
            return Err(AppError::invalid(
                "new_price",
                "Metered prices bill usage after the fact: there is no amount to give notice of.",
            ));
        }
        if from.model.currency != to.model.currency {
            return Err(AppError::invalid(
                "new_price",
                format!(
                    "Price {} is in {} and {} in {}: a subscription keeps its currency, so its \
                     subscribers cannot be moved across currencies.",
                    from.id,
                    from.model.currency.lowercase(),
                    to.id,
                    to.model.currency.lowercase()
                ),
            ));
        }
        if from_interval != to_interval && !new.allow_interval_change {
            return Err(AppError::invalid(
                "new_price",
                format!(
                    "Price {} renews every {} {} and {} every {} {}: a subscription keeps its \
                     billing interval unless allowed (allow_interval_change=true).",
                    from.id,
                    from_interval.count(),
                    from_interval.unit().as_str(),
                    to.id,
                    to_interval.count(),
                    to_interval.unit().as_str()
                ),
            ));
        }
        let minimum = self
            .stored_settings(&mut tx, scope)
            .await?
            .price_change_notice_days_min
            .unwrap_or(NOTICE_DAYS_MIN_DEFAULT);
        let notice_days = new.notice_days.unwrap_or(minimum);
        if notice_days < minimum || notice_days > NOTICE_DAYS_MAX {
            return Err(AppError::invalid(
                "notice_days",
                format!(
                    "Give {minimum} to {NOTICE_DAYS_MAX} days of notice ({minimum} is the \
                     account's minimum: billing settings' price_change_notice_days_min)."
                ),
            ));
        }
        let page = PageRequest {
            limit: crate::records::PAGE_LIMIT_MAX,
            ..PageRequest::default()
        };
        if let Some(open) = tx
            .price_changes(scope, &page)
            .await?
            .into_iter()
            .flat_map(|p| p.data)
            .find(|c| c.status == PriceChangeStatus::InProgress && c.price == from.id)
        {
            return Err(AppError::invalid(
                "price",
                format!(
                    "Price change {} is already moving the subscribers of {}; cancel it first.",
                    open.id, from.id
                ),
            ));
        }
        let subscribers = self.subscribers_of(&mut tx, scope, &from.id).await?;
        for (i, id) in new.exclude.iter().enumerate() {
            if !subscribers.iter().any(|s| s.id == *id) {
                return Err(AppError::invalid(
                    format!("exclude[{i}]"),
                    format!(
                        "Subscription {id} is not a subscriber of {} that renews.",
                        from.id
                    ),
                ));
            }
        }
        let now = self.clock.now();
        let mut change = PriceChange {
            id: if new.dry_run {
                String::new()
            } else {
                self.ids.id("pchg")
            },
            livemode: scope.livemode,
            created: now,
            price: from.id.clone(),
            new_price: to.id.clone(),
            notice_days,
            allow_interval_change: from_interval != to_interval,
            status: PriceChangeStatus::InProgress,
            metadata: Metadata::new(),
        };
        new.metadata.apply(&mut change.metadata)?;
        let mut entries = Vec::with_capacity(subscribers.len());
        // Each subscription's time: its test clock's (read once per clock), or now.
        let mut times: std::collections::HashMap<Option<String>, i64> = Default::default();
        for sub in &subscribers {
            let item = sub
                .items
                .iter()
                .find(|i| i.price == from.id)
                .expect("a subscriber has an item on the price");
            let notify_at = match times.get(&sub.test_clock) {
                Some(&at) => at,
                None => {
                    let at = self
                        .time_of(&mut tx, scope, sub.test_clock.as_deref())
                        .await?;
                    times.insert(sub.test_clock.clone(), at);
                    at
                }
            };
            let applies_at = first_renewal_from(sub, notify_at + i64::from(notice_days) * DAY);
            // A subscription with an item on the new price already would hold it twice.
            let reason = if new.exclude.contains(&sub.id) {
                Some("excluded when the change was made")
            } else if sub.items.iter().any(|i| i.price == to.id) {
                Some("it has an item on the new price already")
            } else if from_interval != to_interval && sub.items.len() > 1 {
                // Its other items would go on renewing on the old interval.
                Some("its other items renew on the old interval")
            } else {
                None
            };
            let excluded = reason.is_some();
            let amount = |p: &Price| -> Result<i64, AppError> {
                p.model
                    .amount_for(item.quantity)
                    .map(|m| m.minor())
                    .map_err(|e| AppError::invalid("new_price", format!("{e}.")))
            };
            entries.push(PriceChangeSubscription {
                id: if new.dry_run {
                    String::new()
                } else {
                    self.ids.id("pchs")
                },
                livemode: scope.livemode,
                created: now,
                price_change: change.id.clone(),
                subscription: sub.id.clone(),
                customer: sub.customer.clone(),
                item: item.id.clone(),
                new_price: to.id.clone(),
                state: if excluded {
                    PriceChangeState::Excluded
                } else {
                    PriceChangeState::Scheduled
                },
                notify_at,
                applies_at,
                old_amount: amount(&from)?,
                new_amount: amount(&to)?,
                currency: from.model.currency.lowercase(),
                interval: from_interval.unit().as_str().to_owned(),
                interval_count: from_interval.count(),
                new_interval: (from_interval != to_interval)
                    .then(|| (to_interval.unit().as_str().to_owned(), to_interval.count())),
                test_clock: sub.test_clock.clone(),
                reason: reason.map(str::to_owned),
                next_action_at: (!excluded).then_some(notify_at),
            });
        }
        let view = PriceChangeView {
            change,
            subscriptions: entries,
            currency: from.model.currency.lowercase(),
        };
        if new.dry_run {
            // Nothing is kept: the transaction is dropped.
            return Ok(view);
        }
        tx.insert_price_change(scope, &view.change).await?;
        tx.insert_price_change_subscriptions(scope, &view.subscriptions)
            .await?;
        // Notices on a test clock are due at its time: wake it so they go out now.
        let mut clocks: Vec<&String> = view
            .subscriptions
            .iter()
            .filter_map(|s| s.test_clock.as_ref())
            .collect();
        clocks.sort();
        clocks.dedup();
        for clock in clocks {
            tx.wake_test_clock(scope, clock, self.clock.now()).await?;
        }
        let rendered = self.render.price_change(&view);
        let changes = vec![Change {
            event_type: "price_change.created",
            object_id: view.change.id.clone(),
            object: Snapshot::Rendered(rendered.clone()),
            previous: None,
        }];
        self.commit(tx, caller, changes, &rendered).await?;
        Ok(view)
    }

    /// The subscriptions on `price` that will renew (bounded).
    async fn subscribers_of(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        price: &str,
    ) -> Result<Vec<Subscription>, AppError> {
        let filter = SubscriptionFilter {
            price: Some(price.to_owned()),
            statuses: Some(vec![
                kopek_core::subscription::SubscriptionStatus::Active,
                kopek_core::subscription::SubscriptionStatus::Trialing,
                kopek_core::subscription::SubscriptionStatus::PastDue,
            ]),
            ..SubscriptionFilter::default()
        };
        let mut found: Vec<Subscription> = Vec::new();
        let mut page = PageRequest {
            limit: crate::records::PAGE_LIMIT_MAX,
            ..PageRequest::default()
        };
        loop {
            let Some(batch) = tx.subscriptions(scope, &filter, &page).await? else {
                break;
            };
            page.starting_after = batch.data.last().map(|s| s.id.clone());
            found.extend(
                batch
                    .data
                    .into_iter()
                    .filter(|s| !s.cancel_at_period_end && s.cancel_at.is_none()),
            );
            if found.len() > PRICE_CHANGE_SUBSCRIPTIONS_MAX {
                return Err(AppError::invalid(
                    "price",
                    format!(
                        "A price change moves at most {PRICE_CHANGE_SUBSCRIPTIONS_MAX} \
                         subscriptions; {price} has more."
                    ),
                ));
            }
            if !batch.has_more {
                break;
            }
        }
        found.reverse(); // oldest first
        Ok(found)
    }

    pub async fn price_change(&self, scope: &Scope, id: &str) -> Result<PriceChangeView, AppError> {
        let mut tx = self.store.read().await?;
        self.view(&mut tx, scope, id, false).await
    }

    async fn view(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        id: &str,
        lock: bool,
    ) -> Result<PriceChangeView, AppError> {
        let change = match lock {
            true => tx.price_change_for_update(scope, id).await?,
            false => tx.price_change(scope, id).await?,
        }
        .ok_or_else(|| not_found(id))?;
        let subscriptions = tx.price_change_subscriptions(scope, id, lock).await?;
        let currency = subscriptions
            .first()
            .map(|s| s.currency.clone())
            .unwrap_or_default();
        Ok(PriceChangeView {
            change,
            subscriptions,
            currency,
        })
    }

    pub async fn price_changes(
        &self,
        scope: &Scope,
        page: &PageRequest,
    ) -> Result<Page<PriceChange>, AppError> {
        let mut tx = self.store.read().await?;
        tx.price_changes(scope, page)
            .await?
            .ok_or_else(|| cursor_not_found("price_change", page))
    }

    /// Closes what is still open: the change is canceled, and no subscription moves.
    pub async fn cancel_price_change(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<PriceChangeView, AppError> {
        let mut tx = self.store.write().await?;
        let mut view = self.view(&mut tx, &caller.scope, id, true).await?;
        if view.change.status != PriceChangeStatus::InProgress {
            return Err(AppError::invalid(
                "id",
                format!("Price change {id} is {}.", view.change.status.as_str()),
            ));
        }
        view.change.status = PriceChangeStatus::Canceled;
        let mut closed = Vec::new();
        for entry in view.subscriptions.iter_mut().filter(|e| e.state.is_open()) {
            entry.state = PriceChangeState::Canceled;
            entry.reason = Some("the price change was canceled".to_owned());
            entry.next_action_at = None;
            closed.push(entry.clone());
        }
        tx.update_price_change(&caller.scope, &view.change).await?;
        tx.update_price_change_subscriptions(&caller.scope, &closed)
            .await?;
        let rendered = self.render.price_change(&view);
        let changes = vec![Change {
            event_type: "price_change.canceled",
            object_id: view.change.id.clone(),
            object: Snapshot::Rendered(rendered.clone()),
            previous: None,
        }];
        self.commit(tx, caller, changes, &rendered).await?;
        Ok(view)
    }

    /// Takes one subscription out of the change: `opt_out` ends it with its period (the
    /// subscriber's choice), otherwise it stays on the old price (the account's).
    pub async fn leave_price_change(
        &self,
        caller: &Caller,
        id: &str,
        subscription: &str,
        opt_out: bool,
    ) -> Result<PriceChangeView, AppError> {
        {
            let mut tx = self.store.read().await?;
            let view = self.view(&mut tx, &caller.scope, id, false).await?;
            let entry = view
                .subscriptions
                .iter()
                .find(|e| e.subscription == subscription)
                .ok_or_else(|| {
                    AppError::invalid(
                        "subscription",
                        format!("Subscription {subscription} is not part of price change {id}."),
                    )
                })?;
            if !entry.state.is_open() {
                return Err(AppError::invalid(
                    "subscription",
                    format!(
                        "Subscription {subscription} is {} in price change {id}.",
                        entry.state.as_str()
                    ),
                ));
            }
        }
        if opt_out {
            // The subscription first: should the second step fail, the billing run
            // finds it ending and marks it opted out itself.
            let inner = Caller {
                scope: caller.scope.clone(),
                idempotency_key: None,
            };
            let update = super::SubscriptionUpdate {
                cancel_at_period_end: Some(true),
                ..Default::default()
            };
            self.update_subscription(&inner, subscription, update)
                .await?;
        }
        let mut tx = self.store.write().await?;
        let mut view = self.view(&mut tx, &caller.scope, id, true).await?;
        let entry = view
            .subscriptions
            .iter_mut()
            .find(|e| e.subscription == subscription)
            .expect("checked above");
        if entry.state.is_open() {
            entry.state = if opt_out {
                PriceChangeState::OptedOut
            } else {
                PriceChangeState::Excluded
            };
            entry.reason = Some(
                if opt_out {
                    "the subscriber opted out"
                } else {
                    "excluded by the account"
                }
                .to_owned(),
            );
            entry.next_action_at = None;
            let entry = entry.clone();
            tx.update_price_change_subscriptions(&caller.scope, std::slice::from_ref(&entry))
                .await?;
        }
        self.complete_if_done(&mut tx, &caller.scope, &mut view)
            .await?;
        let rendered = self.render.price_change(&view);
        self.commit(tx, caller, Vec::new(), &rendered).await?;
        Ok(view)
    }

    async fn complete_if_done(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        view: &mut PriceChangeView,
    ) -> Result<(), AppError> {
        let open = view.subscriptions.iter().any(|e| e.state.is_open());
        if view.change.status == PriceChangeStatus::InProgress && !open {
            view.change.status = PriceChangeStatus::Completed;
            tx.update_price_change(scope, &view.change).await?;
        }
        Ok(())
    }

    /// The billing run's step for due entries (locked by `tx`): notices go out, and
    /// subscriptions move at their renewal, before it is billed. Returns how many were
    /// stepped.
    pub(crate) async fn step_price_changes(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        entries: Vec<PriceChangeSubscription>,
        now: i64,
    ) -> Result<usize, AppError> {
        let count = entries.len();
        let mut changes = Vec::new();
        let mut touched: Vec<String> = Vec::new();
        let mut stepped = Vec::with_capacity(entries.len());
        let mut ids: Vec<String> = entries.iter().map(|e| e.subscription.clone()).collect();
        ids.sort();
        ids.dedup();
        // Locked in one go; a subscription two changes move is kept up to date here.
        let mut subs: std::collections::HashMap<String, Subscription> = tx
            .subscriptions_for_update(scope, &ids)
            .await?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        for mut entry in entries.into_iter().filter(|e| e.state.is_open()) {
            let sub = subs.get(&entry.subscription).cloned();
            let close = |entry: &mut PriceChangeSubscription, state, reason: &str| {
                entry.state = state;
                entry.reason = Some(reason.to_owned());
                entry.next_action_at = None;
            };
            let new_price = entry.new_price.clone();
            match sub {
                None => close(
                    &mut entry,
                    PriceChangeState::Canceled,
                    "the subscription is gone",
                ),
                Some(sub) if sub.status.is_terminal() => close(
                    &mut entry,
                    PriceChangeState::Canceled,
                    "the subscription ended",
                ),
                Some(sub) if sub.cancel_at_period_end || sub.cancel_at.is_some() => close(
                    &mut entry,
                    PriceChangeState::OptedOut,
                    "the subscription is ending",
                ),
                Some(sub) if !sub.items.iter().any(|i| i.id == entry.item) => close(
                    &mut entry,
                    PriceChangeState::Excluded,
                    "the subscription left the price",
                ),
                Some(_) if entry.state == PriceChangeState::Scheduled => {
                    entry.state = PriceChangeState::Notified;
                    entry.next_action_at = Some(entry.applies_at);
                    changes.push(Change {
                        event_type: "price_change.notice",
                        object_id: entry.id.clone(),
                        object: Snapshot::Rendered(self.render.price_change_subscription(&entry)),
                        previous: None,
                    });
                }
                Some(mut sub) => {
                    let before = sub.clone();
                    for item in sub.items.iter_mut().filter(|i| i.id == entry.item) {
                        item.price = new_price.clone();
                    }
                    move_interval(&mut sub, &entry);
                    tx.update_subscriptions(scope, std::slice::from_ref(&sub))
                        .await?;
                    tx.update_subscription_prices(scope, &sub).await?;
                    subs.insert(sub.id.clone(), sub.clone());
                    changes.push(Change {
                        event_type: "customer.subscription.updated",
                        object_id: sub.id.clone(),
                        object: Snapshot::subscription(&sub),
                        previous: Some(Snapshot::Subscription(Box::new(before))),
                    });
                    entry.state = PriceChangeState::Applied;
                    entry.next_action_at = None;
                }
            }
            if !touched.contains(&entry.price_change) {
                touched.push(entry.price_change.clone());
            }
            stepped.push(entry);
        }
        tx.update_price_change_subscriptions(scope, &stepped)
            .await?;
        for id in touched {
            let mut view = self.view(tx, scope, &id, false).await?;
            self.complete_if_done(tx, scope, &mut view).await?;
        }
        let events = self.stamp_events(scope, now, None, changes);
        self.record_events(&mut **tx, scope, &events).await?;
        Ok(count)
    }
}
