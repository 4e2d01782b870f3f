//! Subscription schedules (`/v1/subscription_schedules`): phases of a subscription's
//! future. The billing clock acts on a schedule at its start (creating the
//! subscription) and at each phase's end (moving the subscription to the next phase's
//! items and coupon, before the renewal at that instant bills them), and when the last
//! phase ends releases or cancels the subscription.

use super::discounts::{DiscountRequest, DiscountSource};
use super::metadata::MetadataUpdate;
use super::subscriptions::{
    check_quantity, ItemUpdate, NewItem, NewSubscription, PaymentBehavior, SubscriptionUpdate,
    TrialEnd,
};
use crate::app::{App, Caller, Change};
use crate::error::AppError;
use crate::ports::Tx;
use crate::records::*;
use kopek_core::period::Interval;
use kopek_core::price::PriceKind;
use kopek_core::subscription::ITEMS_MAX;

/// Stripe's limit of phases per schedule.
pub const PHASES_MAX: usize = 10;
/// Iterations of one phase, at most (a phase of monthly prices lasts up to 100 years).
pub const ITERATIONS_MAX: u32 = 1_200;

#[derive(Debug, Clone)]
pub struct NewPhaseItem {
    pub price: String,
    pub quantity: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct NewPhase {
    pub items: Vec<NewPhaseItem>,
    /// Checked, not chosen: each phase starts where the one before ends.
    pub start_date: Option<i64>,
    pub end_date: Option<i64>,
    pub iterations: Option<u32>,
    pub coupon: Option<String>,
    pub trial_end: Option<i64>,
    pub proration_behavior: Option<ProrationBehavior>,
    pub metadata: MetadataUpdate,
}

#[derive(Debug, Clone, Default)]
pub struct NewSchedule {
    pub customer: Option<String>,
    pub from_subscription: Option<String>,
    /// `None`: now.
    pub start_date: Option<i64>,
    pub end_behavior: Option<EndBehavior>,
    pub phases: Vec<NewPhase>,
    pub metadata: MetadataUpdate,
}

#[derive(Debug, Clone, Default)]
pub struct ScheduleUpdate {
    /// Replaces the phases from the current one on (all of them before it starts).
    pub phases: Option<Vec<NewPhase>>,
    pub end_behavior: Option<EndBehavior>,
    pub metadata: MetadataUpdate,
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound {
        object: "subscription_schedule",
        id: id.to_owned(),
        param: Some("id"),
    }
}

fn coupon_request(param: &str, coupon: &Option<String>) -> Vec<DiscountRequest> {
    coupon
        .iter()
        .map(|c| DiscountRequest {
            param: param.to_owned(),
            source: DiscountSource::Coupon(c.clone()),
        })
        .collect()
}

/// The update that moves `sub` onto `phase`: items it keeps change quantity, the others
/// go, the phase's new ones come; its coupon when it differs from the phase before.
fn phase_update(
    sub: &Subscription,
    phase: &SchedulePhase,
    previous_coupon: &Option<String>,
    cancel_at: Option<i64>,
) -> SubscriptionUpdate {
    let mut items: Vec<ItemUpdate> = sub
        .items
        .iter()
        .map(
            |it| match phase.items.iter().find(|p| p.price == it.price) {
                Some(p) => ItemUpdate {
                    id: Some(it.id.clone()),
                    quantity: Some(p.quantity),
                    ..ItemUpdate::default()
                },
                None => ItemUpdate {
                    id: Some(it.id.clone()),
                    deleted: true,
                    ..ItemUpdate::default()
                },
            },
        )
        .collect();
    items.extend(
        phase
            .items
            .iter()
            .filter(|p| !sub.items.iter().any(|it| it.price == p.price))
            .map(|p| ItemUpdate {
                price: Some(p.price.clone()),
                quantity: Some(p.quantity),
                ..ItemUpdate::default()
            }),
    );
    SubscriptionUpdate {
        items,
        proration_behavior: Some(phase.proration_behavior),
        discounts: (&phase.coupon != previous_coupon)
            .then(|| coupon_request("coupon", &phase.coupon)),
        cancel_at: cancel_at.map(Some),
        ..SubscriptionUpdate::default()
    }
}

/// Pages of a deleted customer's schedules canceled with it, at most.
const CUSTOMER_SCHEDULE_PAGES_MAX: usize = 100;
impl App {
    /// Checks `phases` and lays them end to end from `start`.
    async fn build_phases(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        phases: &[NewPhase],
        start: i64,
    ) -> Result<Vec<SchedulePhase>, AppError> {
        if phases.is_empty() {
            return Err(AppError::invalid(
                "phases",
                "A schedule needs at least one phase.",
            ));
        }
        if phases.len() > PHASES_MAX {
            return Err(AppError::invalid(
                "phases",
                format!("A schedule has at most {PHASES_MAX} phases."),
            ));
        }
        let mut built: Vec<SchedulePhase> = Vec::with_capacity(phases.len());
        let mut shape: Option<(kopek_core::Currency, Interval)> = None;
        let mut at = start;
        for (i, phase) in phases.iter().enumerate() {
            let param = |field: &str| format!("phases[{i}][{field}]");
            if let Some(given) = phase.start_date {
                if given != at {
                    let why = match (i, given < at) {
                        (0, _) => format!("The first phase starts at the schedule's start, {at}."),
                        (_, true) => {
                            format!("This phase overlaps the one before, which ends at {at}.")
                        }
                        (_, false) => format!(
                            "This phase leaves a gap after the one before, which ends at {at}."
                        ),
                    };
                    return Err(AppError::invalid(param("start_date"), why));
                }
            }
            if phase.items.is_empty() || phase.items.len() > ITEMS_MAX {
                return Err(AppError::invalid(
                    param("items"),
                    format!("A phase has 1 to {ITEMS_MAX} items."),
                ));
            }
            let mut items: Vec<PhaseItem> = Vec::with_capacity(phase.items.len());
            for (j, item) in phase.items.iter().enumerate() {
                let price_param = format!("phases[{i}][items][{j}][price]");
                let price = tx.price(scope, &item.price).await?.ok_or_else(|| {
                    AppError::invalid(&price_param, format!("No such price: '{}'", item.price))
                })?;
                let PriceKind::Recurring(interval) = price.model.kind else {
                    return Err(AppError::invalid(
                        &price_param,
                        format!("The price {} is not recurring.", price.id),
                    ));
                };
                if !price.active {
                    return Err(AppError::invalid(
                        &price_param,
                        format!("The price {} is archived.", price.id),
                    ));
                }
                match shape {
                    None => shape = Some((price.currency(), interval)),
                    Some((currency, first))
                        if currency != price.currency() || first != interval =>
                    {
                        return Err(AppError::invalid(
                            &price_param,
                            "Every phase's prices have the same currency and billing interval.",
                        ))
                    }
                    Some(_) => {}
                }
                if items.iter().any(|it| it.price == price.id) {
                    return Err(AppError::invalid(
                        &price_param,
                        "Each price may appear once in a phase's items; set its quantity instead.",
                    ));
                }
                let quantity = check_quantity(
                    format!("phases[{i}][items][{j}][quantity]"),
                    item.quantity.unwrap_or(1),
                )?;
                items.push(PhaseItem {
                    price: price.id,
                    quantity,
                });
            }
            let (_, interval) = shape.expect("a phase has an item");
            let last = i + 1 == phases.len();
            let end = match (phase.end_date, phase.iterations) {
                (Some(_), Some(_)) => {
                    return Err(AppError::invalid(
                        param("iterations"),
                        "Pass only one of end_date and iterations.",
                    ))
                }
                (Some(end), None) => end,
                (None, Some(n)) if n == 0 || n > ITERATIONS_MAX => {
                    return Err(AppError::invalid(
                        param("iterations"),
                        format!("iterations must be between 1 and {ITERATIONS_MAX}."),
                    ))
                }
                (None, Some(n)) => interval.boundary(at, i64::from(n)),
                (None, None) => match phases.get(i + 1).and_then(|next| next.start_date) {
                    Some(next) => next,
                    None if last => interval.boundary(at, 1),
                    None => {
                        return Err(AppError::invalid(
                            param("end_date"),
                            "Every phase but the last needs end_date or iterations.",
                        ))
                    }
                },
            };
            if end <= at {
                return Err(AppError::invalid(
                    param("end_date"),
                    format!("A phase ends after it starts ({at})."),
                ));
            }
            if let Some(trial_end) = phase.trial_end {
                if i > 0 || trial_end <= at || trial_end > end {
                    return Err(AppError::invalid(
                        param("trial_end"),
                        "A trial belongs to the first phase and ends within it.",
                    ));
                }
            }
            if let Some(coupon) = &phase.coupon {
                if tx.coupon(scope, coupon, false).await?.is_none() {
                    return Err(AppError::invalid(
                        param("coupon"),
                        format!("No such coupon: '{coupon}'"),
                    ));
                }
            }
            let mut metadata = Metadata::new();
            phase.metadata.apply(&mut metadata)?;
            built.push(SchedulePhase {
                start_date: at,
                end_date: end,
                items,
                coupon: phase.coupon.clone(),
                trial_end: phase.trial_end,
                proration_behavior: phase
                    .proration_behavior
                    .unwrap_or(ProrationBehavior::CreateProrations),
                metadata,
            });
            at = end;
        }
        Ok(built)
    }

    pub async fn create_schedule(
        &self,
        caller: &Caller,
        new: NewSchedule,
    ) -> Result<serde_json::Value, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut changes = Vec::new();
        let mut metadata = Metadata::new();
        new.metadata.apply(&mut metadata)?;
        let schedule = match (&new.from_subscription, &new.customer) {
            (Some(_), _) if !new.phases.is_empty() || new.start_date.is_some() => {
                return Err(AppError::invalid(
                    "from_subscription",
                    "A schedule from a subscription starts with its current period; pass \
                     phases and start_date in an update instead.",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(AppError::invalid(
                    "customer",
                    "Pass either customer or from_subscription.",
                ))
            }
            (Some(sub_id), None) => {
                let mut sub = tx
                    .subscriptions_for_update(scope, std::slice::from_ref(sub_id))
                    .await?
                    .pop()
                    .ok_or_else(|| AppError::NotFound {
                        object: "subscription",
                        id: sub_id.clone(),
                        param: Some("from_subscription"),
                    })?;
                if sub.status.is_terminal() || sub.schedule.is_some() {
                    return Err(AppError::invalid(
                        "from_subscription",
                        format!("The subscription {sub_id} is ended or already on a schedule."),
                    ));
                }
                let before = sub.clone();
                let customer = self.live_customer(&mut tx, scope, &sub.customer).await?;
                let now = self.time_for(&mut tx, scope, &customer).await?;
                let schedule = SubscriptionSchedule {
                    id: self.ids.id("sub_sched"),
                    livemode: scope.livemode,
                    created: now,
                    customer: sub.customer.clone(),
                    subscription: Some(sub.id.clone()),
                    status: ScheduleStatus::Active,
                    end_behavior: new.end_behavior.unwrap_or(EndBehavior::Release),
                    phases: vec![SchedulePhase {
                        start_date: sub.current_period_start,
                        end_date: sub.current_period_end,
                        items: sub
                            .items
                            .iter()
                            .map(|it| PhaseItem {
                                price: it.price.clone(),
                                quantity: it.quantity,
                            })
                            .collect(),
                        coupon: None,
                        trial_end: sub.trial_end.filter(|t| *t > sub.current_period_start),
                        proration_behavior: ProrationBehavior::CreateProrations,
                        metadata: Metadata::new(),
                    }],
                    current_phase: Some(0),
                    canceled_at: None,
                    completed_at: None,
                    released_at: None,
                    released_subscription: None,
                    test_clock: sub.test_clock.clone(),
                    metadata,
                    next_action_at: Some(sub.current_period_end),
                };
                sub.schedule = Some(schedule.id.clone());
                tx.update_subscriptions(scope, std::slice::from_ref(&sub))
                    .await?;
                changes.push(Change {
                    event_type: "customer.subscription.updated",
                    object_id: sub.id.clone(),
                    object: Snapshot::subscription(&sub),
                    previous: Some(Snapshot::subscription(&before)),
                });
                tx.insert_schedule(scope, &schedule).await?;
                schedule
            }
            (None, None) => {
                return Err(AppError::invalid(
                    "customer",
                    "Pass the customer to schedule a subscription for (or from_subscription).",
                ))
            }
            (None, Some(customer_id)) => {
                let customer = self.live_customer(&mut tx, scope, customer_id).await?;
                let now = self.time_for(&mut tx, scope, &customer).await?;
                let start = match new.start_date {
                    None => now,
                    Some(at) if at >= now => at,
                    Some(_) => {
                        return Err(AppError::invalid(
                            "start_date",
                            "start_date must be now or in the future.",
                        ))
                    }
                };
                let phases = self
                    .build_phases(&mut tx, scope, &new.phases, start)
                    .await?;
                let mut schedule = SubscriptionSchedule {
                    id: self.ids.id("sub_sched"),
                    livemode: scope.livemode,
                    created: now,
                    customer: customer.id.clone(),
                    subscription: None,
                    status: ScheduleStatus::NotStarted,
                    end_behavior: new.end_behavior.unwrap_or(EndBehavior::Release),
                    phases,
                    current_phase: None,
                    canceled_at: None,
                    completed_at: None,
                    released_at: None,
                    released_subscription: None,
                    test_clock: customer.test_clock.clone(),
                    metadata,
                    next_action_at: Some(start),
                };
                tx.insert_schedule(scope, &schedule).await?;
                if start <= now {
                    changes.extend(
                        self.start_schedule(&mut tx, scope, &mut schedule, now)
                            .await?,
                    );
                    tx.update_schedules(scope, std::slice::from_ref(&schedule))
                        .await?;
                }
                schedule
            }
        };
        let now = schedule.created;
        let rendered = self.render.subscription_schedule(&schedule);
        changes.insert(
            0,
            Change {
                event_type: "subscription_schedule.created",
                object_id: schedule.id.clone(),
                object: Snapshot::Rendered(rendered.clone()),
                previous: None,
            },
        );
        let first_invoice: Vec<String> = changes
            .iter()
            .filter(|c| c.event_type == "invoice.finalized")
            .map(|c| c.object_id.clone())
            .collect();
        self.commit_at(tx, caller, now, changes, &rendered).await?;
        // A schedule starting now collects its first invoice in the request, as a new
        // subscription does; if the attempt cannot start, the worker makes it.
        if !first_invoice.is_empty() {
            let _attempted = self.collect_due(&caller.scope, &first_invoice, now).await;
        }
        Ok(rendered)
    }

    /// Creates the subscription of a schedule whose first phase starts (`now`).
    async fn start_schedule(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        schedule: &mut SubscriptionSchedule,
        now: i64,
    ) -> Result<Vec<Change>, AppError> {
        let first = &schedule.phases[0];
        let new = NewSubscription {
            customer: schedule.customer.clone(),
            items: first
                .items
                .iter()
                .map(|p| NewItem {
                    price: p.price.clone(),
                    quantity: Some(p.quantity),
                    tax_rates: Vec::new(),
                    metadata: MetadataUpdate::default(),
                })
                .collect(),
            trial_period_days: None,
            trial_end: first.trial_end.filter(|t| *t > now).map(TrialEnd::At),
            billing_cycle_anchor: None,
            collection_method: None,
            days_until_due: None,
            default_payment_method: None,
            cancel_at_period_end: false,
            description: None,
            discounts: coupon_request("phases[0][coupon]", &first.coupon),
            default_tax_rates: Vec::new(),
            trial_end_behavior: MissingPaymentMethod::default(),
            payment_behavior: PaymentBehavior::AllowIncomplete,
            metadata: MetadataUpdate::default(),
        };
        let created = self
            .create_in(tx, scope, new, Some(now), Some(&schedule.id))
            .await?;
        let mut changes = created.changes;
        let sub = created.sub;
        schedule.subscription = Some(sub.id.clone());
        schedule.status = ScheduleStatus::Active;
        schedule.current_phase = Some(0);
        schedule.next_action_at = Some(schedule.phases[0].end_date);
        if schedule.phases.len() == 1 && schedule.end_behavior == EndBehavior::Cancel {
            let end = schedule.phases[0].end_date;
            let update = SubscriptionUpdate {
                cancel_at: Some(Some(end)),
                ..SubscriptionUpdate::default()
            };
            let updated = self
                .apply_update(tx, scope, &sub.id, update, Some(now))
                .await?;
            changes.extend(updated.changes);
        }
        Ok(changes)
    }

    /// Moves due schedules (locked by `tx`) on: starts them, steps their subscriptions
    /// into the next phase, or ends them. Runs before renewals at the same instant, so a
    /// renewal bills the phase that starts with it.
    pub(crate) async fn step_schedules(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        schedules: Vec<SubscriptionSchedule>,
        now: i64,
    ) -> Result<usize, AppError> {
        let mut changes = Vec::new();
        let mut stepped = Vec::with_capacity(schedules.len());
        for mut schedule in schedules {
            if !schedule.status.is_live() {
                schedule.next_action_at = None;
                stepped.push(schedule);
                continue;
            }
            match self.step_schedule(tx, scope, &mut schedule, now).await {
                Ok(done) => changes.extend(done),
                Err(e @ AppError::Internal(_)) => return Err(e),
                // A phase that can no longer apply (its price archived since, its coupon
                // used up) must not hold up the rest of the billing run: the schedule
                // lets go of its subscription, which goes on as it is.
                Err(refused) => changes.extend(
                    self.abandon(tx, scope, &mut schedule, now, &refused)
                        .await?,
                ),
            }
            stepped.push(schedule);
        }
        tx.update_schedules(scope, &stepped).await?;
        let events = self.stamp_events(scope, now, None, changes);
        self.record_events(&mut **tx, scope, &events).await?;
        Ok(stepped.len())
    }

    /// Ends a schedule whose next step was refused: released if it has a subscription
    /// (left as it is), canceled if it had not started.
    async fn abandon(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        schedule: &mut SubscriptionSchedule,
        now: i64,
        refused: &AppError,
    ) -> Result<Vec<Change>, AppError> {
        let before = self.render.subscription_schedule(schedule);
        let mut changes = Vec::new();
        if self
            .let_go(tx, scope, schedule, true, &mut changes)
            .await?
            .is_some()
        {
            schedule.status = ScheduleStatus::Released;
            schedule.released_at = Some(now);
            schedule.released_subscription = schedule.subscription.take();
        } else {
            schedule.status = ScheduleStatus::Canceled;
            schedule.canceled_at = Some(now);
        }
        schedule.current_phase = None;
        schedule.next_action_at = None;
        schedule.metadata.insert(
            "kopek_abandoned".into(),
            refused.to_string().chars().take(500).collect(),
        );
        changes.push(Change {
            event_type: "subscription_schedule.aborted",
            object_id: schedule.id.clone(),
            object: Snapshot::Rendered(self.render.subscription_schedule(schedule)),
            previous: Some(Snapshot::Rendered(before)),
        });
        Ok(changes)
    }

    /// Takes the schedule off its subscription, if it still has one, which goes on as it
    /// is; with `drop_cancellation`, the cancellation the schedule's end planned goes
    /// too. Returns the subscription as written, its event added to `changes`.
    async fn let_go(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        schedule: &SubscriptionSchedule,
        drop_cancellation: bool,
        changes: &mut Vec<Change>,
    ) -> Result<Option<Subscription>, AppError> {
        let Some(id) = &schedule.subscription else {
            return Ok(None);
        };
        let Some(mut sub) = tx
            .subscriptions_for_update(scope, std::slice::from_ref(id))
            .await?
            .pop()
        else {
            return Ok(None);
        };
        let previous = sub.clone();
        sub.schedule = None;
        let planned = schedule.phases.last().map(|p| p.end_date);
        if drop_cancellation
            && schedule.end_behavior == EndBehavior::Cancel
            && sub.cancel_at.is_some()
            && sub.cancel_at == planned
        {
            sub.cancel_at = None;
            sub.canceled_at = None;
            sub.cancellation_details.reason = None;
            sub.next_action_at = Some(sub.current_period_end);
        }
        tx.update_subscriptions(scope, std::slice::from_ref(&sub))
            .await?;
        changes.push(Change {
            event_type: "customer.subscription.updated",
            object_id: sub.id.clone(),
            object: Snapshot::subscription(&sub),
            previous: Some(Snapshot::subscription(&previous)),
        });
        Ok(Some(sub))
    }

    async fn step_schedule(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        schedule: &mut SubscriptionSchedule,
        now: i64,
    ) -> Result<Vec<Change>, AppError> {
        let before = self.render.subscription_schedule(schedule);
        if schedule.status == ScheduleStatus::NotStarted {
            let mut changes = self.start_schedule(tx, scope, schedule, now).await?;
            changes.push(Change {
                event_type: "subscription_schedule.updated",
                object_id: schedule.id.clone(),
                object: Snapshot::Rendered(self.render.subscription_schedule(schedule)),
                previous: Some(Snapshot::Rendered(before)),
            });
            return Ok(changes);
        }
        let sub_id = schedule.subscription.clone().unwrap_or_default();
        let sub = tx
            .subscriptions_for_update(scope, std::slice::from_ref(&sub_id))
            .await?
            .pop()
            .filter(|s| !s.status.is_terminal());
        let current = schedule.current_phase.unwrap_or(0);
        let mut changes = Vec::new();
        let event_type = match sub {
            // Its subscription ended some other way: the schedule goes with it.
            None => {
                schedule.status = ScheduleStatus::Canceled;
                schedule.canceled_at = Some(now);
                "subscription_schedule.aborted"
            }
            Some(sub) if current + 1 < schedule.phases.len() => {
                let next = current + 1;
                let last = next + 1 == schedule.phases.len();
                let cancel_at = (last && schedule.end_behavior == EndBehavior::Cancel)
                    .then(|| schedule.phases[next].end_date);
                let update = phase_update(
                    &sub,
                    &schedule.phases[next],
                    &schedule.phases[current].coupon,
                    cancel_at,
                );
                let updated = self
                    .apply_update(tx, scope, &sub.id, update, Some(now))
                    .await?;
                changes.extend(updated.changes);
                schedule.current_phase = Some(next);
                schedule.next_action_at = Some(schedule.phases[next].end_date);
                "subscription_schedule.updated"
            }
            Some(_) => {
                // The last phase is over: the subscription goes on alone (a cancel
                // behavior's cancellation is due at this same instant).
                self.let_go(tx, scope, schedule, false, &mut changes)
                    .await?;
                schedule.status = ScheduleStatus::Completed;
                schedule.completed_at = Some(now);
                "subscription_schedule.completed"
            }
        };
        if !schedule.status.is_live() {
            schedule.current_phase = None;
            schedule.next_action_at = None;
        }
        changes.push(Change {
            event_type,
            object_id: schedule.id.clone(),
            object: Snapshot::Rendered(self.render.subscription_schedule(schedule)),
            previous: Some(Snapshot::Rendered(before)),
        });
        Ok(changes)
    }

    pub async fn schedule(&self, scope: &Scope, id: &str) -> Result<serde_json::Value, AppError> {
        let mut tx = self.store.read().await?;
        let schedule = tx.schedule(scope, id).await?.ok_or_else(|| not_found(id))?;
        Ok(self.render.subscription_schedule(&schedule))
    }

    pub async fn schedules(
        &self,
        scope: &Scope,
        filter: &ScheduleFilter,
        page: &PageRequest,
    ) -> Result<Page<serde_json::Value>, AppError> {
        let mut tx = self.store.read().await?;
        let page = tx
            .schedules(scope, filter, page)
            .await?
            .ok_or_else(|| crate::app::cursor_not_found("subscription_schedule", page))?;
        Ok(Page {
            data: page
                .data
                .iter()
                .map(|s| self.render.subscription_schedule(s))
                .collect(),
            has_more: page.has_more,
        })
    }

    pub async fn update_schedule(
        &self,
        caller: &Caller,
        id: &str,
        update: ScheduleUpdate,
    ) -> Result<serde_json::Value, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut schedule = tx
            .schedules_for_update(scope, &[id.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| not_found(id))?;
        if !schedule.status.is_live() {
            return Err(AppError::invalid(
                "id",
                format!(
                    "The schedule {id} is {}; only a live schedule can be updated.",
                    schedule.status.as_str()
                ),
            ));
        }
        let customer = self
            .live_customer(&mut tx, scope, &schedule.customer)
            .await?;
        let now = self.time_for(&mut tx, scope, &customer).await?;
        let before = self.render.subscription_schedule(&schedule);
        let mut changes = Vec::new();
        if let Some(end_behavior) = update.end_behavior {
            schedule.end_behavior = end_behavior;
        }
        if let Some(phases) = &update.phases {
            match schedule.current_phase {
                None => {
                    let start = phases
                        .first()
                        .and_then(|p| p.start_date)
                        .unwrap_or(schedule.phases[0].start_date);
                    if start < now {
                        return Err(AppError::invalid(
                            "phases[0][start_date]",
                            "A schedule that has not started starts now or later.",
                        ));
                    }
                    schedule.phases = self.build_phases(&mut tx, scope, phases, start).await?;
                    schedule.next_action_at = Some(start);
                }
                Some(current) => {
                    // The phases before the current one are history; the current one
                    // keeps its start, and what it now says applies from now.
                    let start = schedule.phases[current].start_date;
                    let built = self.build_phases(&mut tx, scope, phases, start).await?;
                    if built[0].end_date <= now {
                        return Err(AppError::invalid(
                            "phases[0][end_date]",
                            "The current phase cannot end in the past.",
                        ));
                    }
                    let previous_coupon = schedule.phases[current].coupon.clone();
                    schedule.phases.truncate(current);
                    schedule.phases.extend(built);
                    if schedule.phases.len() > PHASES_MAX {
                        return Err(AppError::invalid(
                            "phases",
                            format!(
                                "A schedule has at most {PHASES_MAX} phases, past ones included."
                            ),
                        ));
                    }
                    let sub_id = schedule.subscription.clone().unwrap_or_default();
                    let sub = tx
                        .subscriptions_for_update(scope, std::slice::from_ref(&sub_id))
                        .await?
                        .pop()
                        .ok_or_else(|| AppError::Internal(format!("{sub_id} vanished")))?;
                    let last = current + 1 == schedule.phases.len();
                    let ends = schedule.phases[current].end_date;
                    let cancel_at =
                        (last && schedule.end_behavior == EndBehavior::Cancel).then_some(ends);
                    let mut change =
                        phase_update(&sub, &schedule.phases[current], &previous_coupon, cancel_at);
                    if !last || schedule.end_behavior == EndBehavior::Release {
                        change.cancel_at = sub.cancel_at.map(|_| None);
                    }
                    let updated = self
                        .apply_update(&mut tx, scope, &sub_id, change, Some(now))
                        .await?;
                    changes.extend(updated.changes);
                    schedule.next_action_at = Some(ends);
                }
            }
        }
        update.metadata.apply(&mut schedule.metadata)?;
        tx.update_schedules(scope, std::slice::from_ref(&schedule))
            .await?;
        let rendered = self.render.subscription_schedule(&schedule);
        changes.push(Change {
            event_type: "subscription_schedule.updated",
            object_id: schedule.id.clone(),
            object: Snapshot::Rendered(rendered.clone()),
            previous: Some(Snapshot::Rendered(before)),
        });
        self.commit_at(tx, caller, now, changes, &rendered).await?;
        Ok(rendered)
    }

    /// Cancels every live schedule of `customer` (being deleted, its subscriptions
    /// canceled already): none starts or steps a subscription for them again.
    pub(crate) async fn cancel_schedules_of(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        customer: &str,
        now: i64,
    ) -> Result<Vec<Change>, AppError> {
        let filter = ScheduleFilter {
            customer: Some(customer.to_owned()),
        };
        let mut page = PageRequest {
            limit: PAGE_LIMIT_MAX,
            ..PageRequest::default()
        };
        let mut changes = Vec::new();
        for _ in 0..CUSTOMER_SCHEDULE_PAGES_MAX {
            let found = tx
                .schedules(scope, &filter, &page)
                .await?
                .ok_or_else(|| AppError::Internal("schedule cursor vanished".into()))?;
            let ids: Vec<String> = found
                .data
                .iter()
                .filter(|s| s.status.is_live())
                .map(|s| s.id.clone())
                .collect();
            // Re-read under lock: one may have ended since it was listed.
            let mut live = tx.schedules_for_update(scope, &ids).await?;
            live.retain(|s| s.status.is_live());
            for schedule in &mut live {
                let before = self.render.subscription_schedule(schedule);
                schedule.status = ScheduleStatus::Canceled;
                schedule.canceled_at = Some(now);
                schedule.current_phase = None;
                schedule.next_action_at = None;
                changes.push(Change {
                    event_type: "subscription_schedule.canceled",
                    object_id: schedule.id.clone(),
                    object: Snapshot::Rendered(self.render.subscription_schedule(schedule)),
                    previous: Some(Snapshot::Rendered(before)),
                });
            }
            tx.update_schedules(scope, &live).await?;
            match found.data.last() {
                Some(last) if found.has_more => page.starting_after = Some(last.id.clone()),
                _ => return Ok(changes),
            }
        }
        Err(AppError::Conflict {
            param: None,
            message: format!(
                "Customer {customer} has too many subscription schedules to cancel at once; \
                 cancel some first."
            ),
        })
    }

    /// Releases (`cancel == false`: the subscription goes on alone) or cancels (the
    /// subscription is canceled now too) a live schedule.
    pub async fn end_schedule(
        &self,
        caller: &Caller,
        id: &str,
        cancel: bool,
    ) -> Result<serde_json::Value, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut schedule = tx
            .schedules_for_update(scope, &[id.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| not_found(id))?;
        if !schedule.status.is_live() {
            return Err(AppError::invalid(
                "id",
                format!("The schedule {id} is {} already.", schedule.status.as_str()),
            ));
        }
        let customer = self
            .live_customer(&mut tx, scope, &schedule.customer)
            .await?;
        let now = self.time_for(&mut tx, scope, &customer).await?;
        let before = self.render.subscription_schedule(&schedule);
        let mut changes = Vec::new();
        let sub = self
            .let_go(&mut tx, scope, &schedule, !cancel, &mut changes)
            .await?;
        if let Some(mut sub) = sub.filter(|s| cancel && !s.status.is_terminal()) {
            // Canceled now by the billing run's own cancellation, which invoices a
            // metered subscription's last usage.
            sub.cancel_at = Some(now);
            sub.canceled_at = Some(now);
            sub.cancellation_details.reason = Some("cancellation_requested".into());
            self.renew(&mut tx, scope, vec![sub], now).await?;
        }
        if cancel {
            schedule.status = ScheduleStatus::Canceled;
            schedule.canceled_at = Some(now);
        } else {
            schedule.status = ScheduleStatus::Released;
            schedule.released_at = Some(now);
            schedule.released_subscription = schedule.subscription.take();
        }
        schedule.current_phase = None;
        schedule.next_action_at = None;
        tx.update_schedules(scope, std::slice::from_ref(&schedule))
            .await?;
        let rendered = self.render.subscription_schedule(&schedule);
        changes.push(Change {
            event_type: if cancel {
                "subscription_schedule.canceled"
            } else {
                "subscription_schedule.released"
            },
            object_id: schedule.id.clone(),
            object: Snapshot::Rendered(rendered.clone()),
            previous: Some(Snapshot::Rendered(before)),
        });
        self.commit_at(tx, caller, now, changes, &rendered).await?;
        Ok(rendered)
    }
}
