//! An account's billing settings (per mode): its dunning policy and the customer emails
//! it does not send. kopek's extension; on Stripe these live in the Dashboard's Billing
//! settings.

use crate::app::{App, Caller};
use crate::error::AppError;
use crate::records::*;
use kopek_core::dunning::{
    FinalInvoiceStatus, FinalSubscriptionStatus, Policy, RETRIES_MAX, RETRY_DELAY_DAYS_MAX,
};

/// Fields the settings are updated with; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct BillingSettingsUpdate {
    pub retry_delays_days: Option<Vec<i64>>,
    pub final_subscription_status: Option<FinalSubscriptionStatus>,
    pub final_invoice_status: Option<FinalInvoiceStatus>,
    pub email_opt_outs: Option<Vec<EmailKind>>,
}

impl App {
    async fn email_opt_outs(
        &self,
        tx: &mut Box<dyn crate::ports::Tx>,
        scope: &Scope,
    ) -> Result<Vec<EmailKind>, AppError> {
        Ok(tx
            .billing_settings(scope)
            .await?
            .map(|s| s.email_opt_outs)
            .unwrap_or_default())
    }

    pub async fn billing_settings(&self, scope: &Scope) -> Result<BillingSettings, AppError> {
        let mut tx = self.store.read().await?;
        let mut settings =
            BillingSettings::from_policy(&self.dunning_policy(&mut tx, scope).await?);
        settings.email_opt_outs = self.email_opt_outs(&mut tx, scope).await?;
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
        let mut settings = BillingSettings::from_policy(&policy);
        settings.email_opt_outs = match update.email_opt_outs {
            Some(kinds) => kinds,
            None => self.email_opt_outs(&mut tx, &caller.scope).await?,
        };
        tx.put_billing_settings(&caller.scope, &settings).await?;
        let rendered = self.render.billing_settings(&settings);
        self.commit(tx, caller, Vec::new(), &rendered).await?;
        Ok(settings)
    }
}
