//! Invoice previews (`POST /v1/invoices/create_preview`): the next invoice of a
//! subscription, with or without a proposed update, made by the very code that will
//! bill it, in a transaction that is then rolled back. A preview cannot drift from what
//! is invoiced, and it writes nothing.

use super::subscriptions::SubscriptionUpdate;
use crate::app::App;
use crate::error::AppError;
use crate::ports::Tx;
use crate::records::*;
use kopek_core::invoice::InvoiceStatus;

#[derive(Debug, Clone, Default)]
pub struct PreviewRequest {
    pub customer: Option<String>,
    pub subscription: Option<String>,
    /// A proposed update of the subscription (`subscription_details`).
    pub subscription_details: Option<SubscriptionUpdate>,
}

/// An error about a field of the proposed update, named as the preview's parameter:
/// `items[0][price]` becomes `subscription_details[items][0][price]`.
fn in_details(error: AppError) -> AppError {
    let nest = |param: String| match param.split_once('[') {
        Some((head, rest)) => format!("subscription_details[{head}][{rest}"),
        None => format!("subscription_details[{param}]"),
    };
    match error {
        AppError::Invalid { param, message } => AppError::Invalid {
            param: param.map(nest),
            message,
        },
        AppError::Conflict { param, message } => AppError::Conflict {
            param: param.map(nest),
            message,
        },
        other => other,
    }
}

fn no_upcoming(id: &str) -> AppError {
    AppError::invalid(
        "subscription",
        format!("The subscription {id} has no upcoming invoice: it ends before it renews."),
    )
}

impl App {
    pub async fn preview_invoice(
        &self,
        scope: &Scope,
        request: PreviewRequest,
    ) -> Result<Invoice, AppError> {
        // Dropped at the end, never committed: everything written below is undone.
        let mut tx = self.store.write().await?;
        let id =
            match (&request.subscription, &request.customer) {
                (Some(id), _) => id.clone(),
                (None, Some(customer)) => self.next_to_renew(&mut tx, scope, customer).await?,
                (None, None) => return Err(AppError::invalid(
                    "subscription",
                    "Pass the subscription (or the customer) whose upcoming invoice to preview.",
                )),
            };
        let mut sub = tx
            .subscriptions_for_update(scope, std::slice::from_ref(&id))
            .await?
            .pop()
            .ok_or_else(|| AppError::NotFound {
                object: "subscription",
                id: id.clone(),
                param: Some("subscription"),
            })?;
        if let Some(customer) = &request.customer {
            if &sub.customer != customer {
                return Err(AppError::invalid(
                    "subscription",
                    format!("The subscription {id} belongs to another customer."),
                ));
            }
        }
        if sub.status.is_terminal() {
            return Err(no_upcoming(&id));
        }
        if let Some(update) = request.subscription_details {
            let updated = self
                .apply_update(&mut tx, scope, &id, update, None)
                .await
                .map_err(in_details)?;
            if let Some(invoice) = updated.invoice {
                // The update bills at once: that invoice is the one to come.
                return Ok(as_preview(invoice));
            }
            sub = updated.sub;
        }
        if let Some(schedule_id) = sub.schedule.clone() {
            // A phase starting by the renewal changes what it bills: step into it first.
            let due = tx
                .schedules_for_update(scope, &[schedule_id])
                .await?
                .into_iter()
                .filter(|s| {
                    s.next_action_at
                        .is_some_and(|t| t <= sub.current_period_end)
                })
                .collect::<Vec<_>>();
            if let Some(at) = due.first().and_then(|s| s.next_action_at) {
                self.step_schedules(&mut tx, scope, due, at).await?;
                sub = tx
                    .subscription(scope, &id)
                    .await?
                    .ok_or_else(|| AppError::Internal(format!("{id} vanished")))?;
            }
        }
        let latest = sub.latest_invoice.clone();
        let renews_at = sub.current_period_end;
        self.renew(&mut tx, scope, vec![sub], renews_at).await?;
        let renewed = tx
            .subscription(scope, &id)
            .await?
            .ok_or_else(|| AppError::Internal(format!("{id} vanished")))?;
        let invoice = match renewed.latest_invoice {
            Some(next) if Some(&next) != latest.as_ref() => tx.invoice(scope, &next).await?,
            _ => None,
        };
        invoice.map(as_preview).ok_or_else(|| no_upcoming(&id))
    }

    /// The customer's live subscription that renews first.
    async fn next_to_renew(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        customer: &str,
    ) -> Result<String, AppError> {
        let filter = SubscriptionFilter {
            customer: Some(customer.to_owned()),
            ..SubscriptionFilter::default()
        };
        let page = PageRequest {
            limit: PAGE_LIMIT_MAX,
            ..PageRequest::default()
        };
        tx.subscriptions(scope, &filter, &page)
            .await?
            .and_then(|page| {
                page.data
                    .into_iter()
                    .filter(|s| !s.status.is_terminal())
                    .min_by_key(|s| (s.current_period_end, s.id.clone()))
            })
            .map(|s| s.id)
            .ok_or_else(|| {
                AppError::invalid(
                    "customer",
                    format!(
                        "The customer {customer} has no subscription to preview an invoice of."
                    ),
                )
            })
    }
}

/// An invoice that does not exist: not numbered, a draft, with an id that says so (as
/// Stripe's `upcoming_in_…`).
fn as_preview(mut invoice: Invoice) -> Invoice {
    invoice.id = format!("upcoming_{}", invoice.id);
    invoice.number = None;
    invoice.status = InvoiceStatus::Draft;
    invoice.finalized_at = None;
    invoice.paid_at = None;
    invoice
}
