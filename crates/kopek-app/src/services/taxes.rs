//! Tax rates (`/v1/tax_rates`) and kopek's own tax calculator, which applies them.

use super::metadata::MetadataUpdate;
use crate::app::{cursor_not_found, App, Caller, Change};
use crate::error::AppError;
use crate::ports::{TaxCalculator, TaxableLine, Tx};
use crate::records::*;
use kopek_core::tax::{line_taxes, Rate};
use rust_decimal::Decimal;

/// Stripe's limit on rates per line, item or invoice.
pub const TAX_RATES_MAX: usize = 5;

/// Applies each line's tax rates (`kopek_core::tax::line_taxes`).
pub struct RateTaxes;

impl TaxCalculator for RateTaxes {
    fn line_taxes(
        &self,
        _currency: kopek_core::Currency,
        lines: &[TaxableLine<'_>],
    ) -> Result<Vec<Vec<TaxAmount>>, AppError> {
        lines
            .iter()
            .map(|line| {
                let rates: Vec<Rate> = line.rates.iter().map(TaxRate::rate).collect();
                let taxes =
                    line_taxes(line.amount, &rates).map_err(super::invoicing::money_error)?;
                Ok(line
                    .rates
                    .iter()
                    .zip(taxes)
                    .map(|(rate, tax)| TaxAmount {
                        tax_rate: rate.id.clone(),
                        amount: tax.amount,
                        inclusive: rate.inclusive,
                        taxable_amount: tax.taxable_amount,
                    })
                    .collect())
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct NewTaxRate {
    pub display_name: String,
    pub percentage: Decimal,
    pub inclusive: bool,
    pub active: bool,
    pub description: Option<String>,
    pub jurisdiction: Option<String>,
    pub country: Option<String>,
    pub state: Option<String>,
    pub tax_type: Option<String>,
    pub metadata: MetadataUpdate,
}

/// What may change on a tax rate: never what it charges.
#[derive(Debug, Clone, Default)]
pub struct TaxRateUpdate {
    pub display_name: Option<String>,
    pub active: Option<bool>,
    pub description: Option<Option<String>>,
    pub jurisdiction: Option<Option<String>>,
    pub country: Option<Option<String>>,
    pub state: Option<Option<String>>,
    pub tax_type: Option<Option<String>>,
    pub metadata: MetadataUpdate,
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound {
        object: "tax_rate",
        id: id.to_owned(),
        param: Some("id"),
    }
}

impl App {
    pub async fn create_tax_rate(
        &self,
        caller: &Caller,
        new: NewTaxRate,
    ) -> Result<TaxRate, AppError> {
        Rate::new(new.percentage, new.inclusive).map_err(|_| {
            AppError::invalid(
                "percentage",
                "percentage must be between 0 and 100, with at most four decimals.",
            )
        })?;
        let mut rate = TaxRate {
            id: self.ids.id("txr"),
            livemode: caller.scope.livemode,
            created: self.clock.now(),
            display_name: new.display_name,
            percentage: new.percentage.normalize(),
            inclusive: new.inclusive,
            active: new.active,
            description: new.description,
            jurisdiction: new.jurisdiction,
            country: new.country,
            state: new.state,
            tax_type: new.tax_type,
            metadata: Metadata::new(),
        };
        new.metadata.apply(&mut rate.metadata)?;
        let mut tx = self.store.write().await?;
        tx.insert_tax_rate(&caller.scope, &rate).await?;
        let rendered = self.render.tax_rate(&rate);
        let change = Change {
            event_type: "tax_rate.created",
            object_id: rate.id.clone(),
            object: Snapshot::Rendered(rendered.clone()),
            previous: None,
        };
        self.commit(tx, caller, vec![change], &rendered).await?;
        Ok(rate)
    }

    pub async fn tax_rate(&self, scope: &Scope, id: &str) -> Result<TaxRate, AppError> {
        let mut tx = self.store.read().await?;
        tx.tax_rates_by_ids(scope, &[id.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| not_found(id))
    }

    pub async fn update_tax_rate(
        &self,
        caller: &Caller,
        id: &str,
        update: TaxRateUpdate,
    ) -> Result<TaxRate, AppError> {
        fn set<T>(field: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *field = value;
            }
        }
        let mut tx = self.store.write().await?;
        let mut rate = tx
            .tax_rates_by_ids(&caller.scope, &[id.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| not_found(id))?;
        let before = self.render.tax_rate(&rate);
        set(&mut rate.display_name, update.display_name);
        set(&mut rate.active, update.active);
        set(&mut rate.description, update.description);
        set(&mut rate.jurisdiction, update.jurisdiction);
        set(&mut rate.country, update.country);
        set(&mut rate.state, update.state);
        set(&mut rate.tax_type, update.tax_type);
        update.metadata.apply(&mut rate.metadata)?;
        tx.update_tax_rate(&caller.scope, &rate).await?;
        let rendered = self.render.tax_rate(&rate);
        let changes = Change::rendered_update("tax_rate.updated", &rate.id, before, &rendered);
        self.commit(tx, caller, changes.into_iter().collect(), &rendered)
            .await?;
        Ok(rate)
    }

    pub async fn tax_rates(
        &self,
        scope: &Scope,
        filter: &TaxRateFilter,
        page: &PageRequest,
    ) -> Result<Page<TaxRate>, AppError> {
        let mut tx = self.store.read().await?;
        tx.tax_rates(scope, filter, page)
            .await?
            .ok_or_else(|| cursor_not_found("tax_rate", page))
    }

    /// The active rates named by `ids` (in their order), for new lines, items and
    /// subscriptions; an unknown, archived or repeated one is refused naming `param`.
    pub(crate) async fn active_tax_rates(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        ids: &[String],
        param: &str,
    ) -> Result<Vec<TaxRate>, AppError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if ids.len() > TAX_RATES_MAX {
            return Err(AppError::invalid(
                param,
                format!("At most {TAX_RATES_MAX} tax rates apply to one line."),
            ));
        }
        let found = tx.tax_rates_by_ids(scope, ids).await?;
        let mut rates = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            let rate = found.iter().find(|r| &r.id == id).ok_or_else(|| {
                AppError::invalid(format!("{param}[{i}]"), format!("No such tax rate: '{id}'"))
            })?;
            if !rate.active {
                return Err(AppError::invalid(
                    format!("{param}[{i}]"),
                    format!("Tax rate {id} is archived; archived rates apply only where they already were."),
                ));
            }
            if rates.iter().any(|r: &TaxRate| r.id == *id) {
                return Err(AppError::invalid(
                    format!("{param}[{i}]"),
                    format!("Tax rate {id} is given twice."),
                ));
            }
            rates.push(rate.clone());
        }
        Ok(rates)
    }
}
