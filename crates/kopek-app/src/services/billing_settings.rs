//! An account's billing settings (per mode): its dunning policy, the customer emails it
//! does not send, and how early renewals are announced. kopek's extension; on Stripe
//! these live in the Dashboard's Billing settings.

use crate::app::{App, Caller};
use crate::error::AppError;
use crate::records::*;
use kopek_core::dunning::{
    FinalInvoiceStatus, FinalSubscriptionStatus, Policy, RETRIES_MAX, RETRY_DELAY_DAYS_MAX,
};
use kopek_core::period::IntervalUnit;

/// Fields the settings are updated with; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct BillingSettingsUpdate {
    pub retry_delays_days: Option<Vec<i64>>,
    pub final_subscription_status: Option<FinalSubscriptionStatus>,
    pub final_invoice_status: Option<FinalInvoiceStatus>,
    pub email_opt_outs: Option<Vec<EmailKind>>,
    /// Days of notice before renewals, by interval unit, replacing those given.
    pub upcoming_renewal_days: Vec<(IntervalUnit, u32)>,
    pub price_change_notice_days_min: Option<u32>,
    /// Where kopek writes to the account (`Some(None)` clears it).
    pub notification_email: Option<Option<String>>,
}

/// The longest notice of a renewal: less than the shortest period of the interval.
fn notice_days_max(unit: IntervalUnit) -> u32 {
    match unit {
        IntervalUnit::Day => 0,
        IntervalUnit::Week => 6,
        IntervalUnit::Month => 27,
        IntervalUnit::Year => 364,
    }
}

impl App {
    /// The settings as stored, or the defaults.
    pub(crate) async fn stored_settings(
        &self,
        tx: &mut Box<dyn crate::ports::Tx>,
        scope: &Scope,
    ) -> Result<BillingSettings, AppError> {
        Ok(match tx.billing_settings(scope).await? {
            Some(settings) => settings,
            None => BillingSettings::from_policy(&Policy::default()),
        })
    }

    pub async fn billing_settings(&self, scope: &Scope) -> Result<BillingSettings, AppError> {
        let mut tx = self.store.read().await?;
        let stored = self.stored_settings(&mut tx, scope).await?;
        let mut settings =
            BillingSettings::from_policy(&self.dunning_policy(&mut tx, scope).await?);
        settings.email_opt_outs = stored.email_opt_outs;
        settings.upcoming_renewal_days = stored.upcoming_renewal_days;
        settings.price_change_notice_days_min = stored.price_change_notice_days_min;
        settings.notification_email = stored.notification_email;
        Ok(settings)
    }

    pub async fn update_billing_settings(
        &self,
        caller: &Caller,
        update: BillingSettingsUpdate,
    ) -> Result<BillingSettings, AppError> {
        if let Some(delays) = &update.retry_delays_days {
            if delays.len() > RETRIES_MAX {
                return Err(AppError::invalid(
                    "retry_delays_days",
                    format!("At most {RETRIES_MAX} retries."),
                ));
            }
            if let Some(bad) = delays
                .iter()
                .find(|d| !(1..=RETRY_DELAY_DAYS_MAX).contains(*d))
            {
                return Err(AppError::invalid(
                    "retry_delays_days",
                    format!("Each delay is 1 to {RETRY_DELAY_DAYS_MAX} days; got {bad}."),
                ));
            }
        }
        for &(unit, days) in &update.upcoming_renewal_days {
            let max = notice_days_max(unit);
            if days > max {
                return Err(AppError::invalid(
                    format!("upcoming_renewal_days[{}]", unit.as_str()),
                    format!(
                        "A renewal every {} can be announced 0 to {max} days ahead.",
                        unit.as_str()
                    ),
                ));
            }
        }
        if let Some(Some(email)) = &update.notification_email {
            let plausible = email.len() <= 254
                && email
                    .split_once('@')
                    .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'));
            if !plausible {
                return Err(AppError::invalid(
                    "notification_email",
                    format!("Invalid email address: {email}"),
                ));
            }
        }
        let mut tx = self.store.write().await?;
        let current = self.dunning_policy(&mut tx, &caller.scope).await?;
        let policy = Policy {
            retry_delays_days: update
                .retry_delays_days
                .unwrap_or(current.retry_delays_days),
            final_subscription_status: update
                .final_subscription_status
                .unwrap_or(current.final_subscription_status),
            final_invoice_status: update
                .final_invoice_status
                .unwrap_or(current.final_invoice_status),
        };
        let stored = self.stored_settings(&mut tx, &caller.scope).await?;
        let mut settings = BillingSettings::from_policy(&policy);
        settings.email_opt_outs = update.email_opt_outs.unwrap_or(stored.email_opt_outs);
        settings.upcoming_renewal_days = stored.upcoming_renewal_days;
        settings.price_change_notice_days_min = update
            .price_change_notice_days_min
            .or(stored.price_change_notice_days_min);
        settings.notification_email = update
            .notification_email
            .unwrap_or(stored.notification_email);
        for (unit, days) in update.upcoming_renewal_days {
            settings
                .upcoming_renewal_days
                .insert(unit.as_str().to_owned(), days);
        }
        tx.put_billing_settings(&caller.scope, &settings).await?;
        let rendered = self.render.billing_settings(&settings);
        self.commit(tx, caller, Vec::new(), &rendered).await?;
        Ok(settings)
    }
}
