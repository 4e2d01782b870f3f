//! Coupons, promotion codes, and redeeming them as discounts.

use super::metadata::MetadataUpdate;
use crate::app::{cursor_not_found, App, Caller, Change};
use crate::error::{AppError, StoreError};
use crate::ports::Tx;
use crate::records::*;
use kopek_core::discount::{Duration, PERCENT_HUNDREDTHS_MAX};
use kopek_core::invoice::InvoiceStatus;
use kopek_core::Currency;
use serde_json::Value;

/// Stripe's limits: a coupon id or promotion code is at most 500 characters, a coupon
/// lasts at most 10 years of months, and applies to at most 100 products.
const ID_LEN_MAX: usize = 500;
const DURATION_MONTHS_MAX: u32 = 120;
const APPLIES_TO_MAX: usize = 100;
/// The most discounts one subscription, invoice or item may carry (Stripe: 20).
pub const DISCOUNTS_MAX: usize = 20;

#[derive(Debug, Clone)]
pub enum CouponOff {
    /// Hundredths of a percent.
    Percent(u32),
    Amount {
        amount: i64,
        currency: Currency,
    },
}

#[derive(Debug, Clone)]
pub struct NewCoupon {
    pub id: Option<String>,
    pub name: Option<String>,
    pub off: CouponOff,
    pub duration: Duration,
    pub max_redemptions: Option<u64>,
    pub redeem_by: Option<i64>,
    pub applies_to: Vec<String>,
    pub metadata: MetadataUpdate,
}

/// What may change on a coupon: never what it takes off.
#[derive(Debug, Clone, Default)]
pub struct CouponUpdate {
    pub name: Option<Option<String>>,
    pub metadata: MetadataUpdate,
}

#[derive(Debug, Clone)]
pub struct NewPromotionCode {
    pub coupon: String,
    pub code: Option<String>,
    pub active: bool,
    pub customer: Option<String>,
    pub expires_at: Option<i64>,
    pub max_redemptions: Option<u64>,
    pub restrictions: PromotionRestrictions,
    pub metadata: MetadataUpdate,
}

#[derive(Debug, Clone, Default)]
pub struct PromotionCodeUpdate {
    pub active: Option<bool>,
    pub metadata: MetadataUpdate,
}

/// A discount a request asks for, with the parameter that asked (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscountRequest {
    pub param: String,
    pub source: DiscountSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscountSource {
    Coupon(String),
    PromotionCode(String),
    /// A discount the object already has, kept as it is.
    Existing(String),
}

/// What a redeemed discount is on, and what its first invoice costs before discounts
/// (for a promotion code's minimum amount).
pub(crate) struct Redemption<'a> {
    pub customer: &'a Customer,
    pub subscription: Option<&'a str>,
    pub invoice: Option<&'a str>,
    pub invoice_item: Option<&'a str>,
    pub currency: Option<Currency>,
    pub first_amount: Option<i64>,
    /// Discounts already on the object, which `Existing` may name.
    pub existing: &'a [Discount],
}

fn coupon_not_found(id: &str) -> AppError {
    AppError::NotFound {
        object: "coupon",
        id: id.to_owned(),
        param: Some("id"),
    }
}

fn promotion_code_not_found(id: &str) -> AppError {
    AppError::NotFound {
        object: "promotion_code",
        id: id.to_owned(),
        param: Some("id"),
    }
}

fn check_name(param: &str, text: &str) -> Result<(), AppError> {
    if text.is_empty() || text.len() > ID_LEN_MAX {
        return Err(AppError::invalid(
            param,
            format!("{param} must be between 1 and {ID_LEN_MAX} characters."),
        ));
    }
    Ok(())
}

impl App {
    pub async fn create_coupon(&self, caller: &Caller, new: NewCoupon) -> Result<Coupon, AppError> {
        let now = self.clock.now();
        let (percent_off, amount_off, currency) = match new.off {
            CouponOff::Percent(hundredths) => {
                if hundredths == 0 || hundredths > PERCENT_HUNDREDTHS_MAX {
                    return Err(AppError::invalid(
                        "percent_off",
                        "percent_off must be more than 0 and at most 100.",
                    ));
                }
                (Some(hundredths), None, None)
            }
            CouponOff::Amount { amount, currency } => {
                if amount <= 0 {
                    return Err(AppError::invalid(
                        "amount_off",
                        "amount_off must be positive.",
                    ));
                }
                (None, Some(amount), Some(currency))
            }
        };
        if let Duration::Repeating { months } = new.duration {
            if months == 0 || months > DURATION_MONTHS_MAX {
                return Err(AppError::invalid(
                    "duration_in_months",
                    format!("duration_in_months must be between 1 and {DURATION_MONTHS_MAX}."),
                ));
            }
        }
        if new.max_redemptions == Some(0) {
            return Err(AppError::invalid(
                "max_redemptions",
                "max_redemptions must be positive.",
            ));
        }
        if new.redeem_by.is_some_and(|by| by <= now) {
            return Err(AppError::invalid(
                "redeem_by",
                "redeem_by must be in the future.",
            ));
        }
        if new.applies_to.len() > APPLIES_TO_MAX {
            return Err(AppError::invalid(
                "applies_to[products]",
                format!("A coupon applies to at most {APPLIES_TO_MAX} products."),
            ));
        }
        if let Some(id) = &new.id {
            check_name("id", id)?;
        }
        let mut tx = self.store.write().await?;
        for product in &new.applies_to {
            if tx.product(&caller.scope, product).await?.is_none() {
                return Err(AppError::invalid(
                    "applies_to[products]",
                    format!("No such product: '{product}'"),
                ));
            }
        }
        let mut coupon = Coupon {
            id: new.id.unwrap_or_else(|| self.random_code()),
            livemode: caller.scope.livemode,
            created: now,
            name: new.name,
            percent_off,
            amount_off,
            currency,
            duration: new.duration.as_str().to_owned(),
            duration_in_months: match new.duration {
                Duration::Repeating { months } => Some(months),
                _ => None,
            },
            max_redemptions: new.max_redemptions,
            redeem_by: new.redeem_by,
            times_redeemed: 0,
            applies_to: new.applies_to,
            metadata: Metadata::new(),
            deleted: false,
        };
        new.metadata.apply(&mut coupon.metadata)?;
        match tx.insert_coupon(&caller.scope, &coupon).await {
            Err(StoreError::Conflict(_)) => {
                return Err(AppError::invalid(
                    "id",
                    format!("Coupon already exists: '{}'", coupon.id),
                ))
            }
            other => other?,
        }
        let rendered = self.render.coupon(&coupon, now);
        let change = Change {
            event_type: "coupon.created",
            object_id: coupon.id.clone(),
            object: Snapshot::Rendered(rendered.clone()),
            previous: None,
        };
        self.commit(tx, caller, vec![change], &rendered).await?;
        Ok(coupon)
    }

    pub async fn coupon(&self, scope: &Scope, id: &str) -> Result<Coupon, AppError> {
        let mut tx = self.store.read().await?;
        tx.coupon(scope, id, false)
            .await?
            .filter(|c| !c.deleted)
            .ok_or_else(|| coupon_not_found(id))
    }

    pub async fn update_coupon(
        &self,
        caller: &Caller,
        id: &str,
        update: CouponUpdate,
    ) -> Result<Coupon, AppError> {
        let now = self.clock.now();
        let mut tx = self.store.write().await?;
        let mut coupon = tx
            .coupon(&caller.scope, id, true)
            .await?
            .filter(|c| !c.deleted)
            .ok_or_else(|| coupon_not_found(id))?;
        let before = self.render.coupon(&coupon, now);
        if let Some(name) = update.name {
            coupon.name = name;
        }
        update.metadata.apply(&mut coupon.metadata)?;
        tx.update_coupon(&caller.scope, &coupon).await?;
        let rendered = self.render.coupon(&coupon, now);
        let changes = Change::rendered_update("coupon.updated", &coupon.id, before, &rendered);
        self.commit(tx, caller, changes.into_iter().collect(), &rendered)
            .await?;
        Ok(coupon)
    }

    /// Deletes a coupon: it can no longer be redeemed or retrieved, and discounts already
    /// given go on (each keeps its own copy of the coupon), as on Stripe. Its row stays,
    /// marked deleted, for its promotion codes to show.
    pub async fn delete_coupon(&self, caller: &Caller, id: &str) -> Result<Value, AppError> {
        let now = self.clock.now();
        let mut tx = self.store.write().await?;
        let mut coupon = tx
            .coupon(&caller.scope, id, true)
            .await?
            .filter(|c| !c.deleted)
            .ok_or_else(|| coupon_not_found(id))?;
        coupon.deleted = true;
        tx.update_coupon(&caller.scope, &coupon).await?;
        let last = self.render.coupon(&coupon, now);
        let response = self.render.deleted("coupon", id);
        let change = Change {
            event_type: "coupon.deleted",
            object_id: id.to_owned(),
            object: Snapshot::Rendered(last),
            previous: None,
        };
        self.commit(tx, caller, vec![change], &response).await?;
        Ok(response)
    }

    pub async fn coupons(
        &self,
        scope: &Scope,
        created: &TimeRange,
        page: &PageRequest,
    ) -> Result<Page<Coupon>, AppError> {
        let mut tx = self.store.read().await?;
        tx.coupons(scope, created, page)
            .await?
            .ok_or_else(|| cursor_not_found("coupon", page))
    }

    /// Makes a promotion code; returns it with its coupon.
    pub async fn create_promotion_code(
        &self,
        caller: &Caller,
        new: NewPromotionCode,
    ) -> Result<(PromotionCode, Coupon), AppError> {
        let now = self.clock.now();
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let coupon = tx
            .coupon(scope, &new.coupon, false)
            .await?
            .filter(|c| !c.deleted)
            .ok_or_else(|| {
                AppError::invalid("coupon", format!("No such coupon: '{}'", new.coupon))
            })?;
        let code = match new.code {
            Some(code) => {
                check_name("code", &code)?;
                if !code
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(AppError::invalid(
                        "code",
                        "A promotion code may contain only letters, digits, `-` and `_`.",
                    ));
                }
                code
            }
            None => self.random_code(),
        };
        if let Some(customer) = &new.customer {
            self.live_customer(&mut tx, scope, customer)
                .await
                .map_err(|_| {
                    AppError::invalid("customer", format!("No such customer: '{customer}'"))
                })?;
        }
        if new.expires_at.is_some_and(|at| at <= now) {
            return Err(AppError::invalid(
                "expires_at",
                "expires_at must be in the future.",
            ));
        }
        if coupon
            .redeem_by
            .zip(new.expires_at)
            .is_some_and(|(by, at)| at > by)
        {
            return Err(AppError::invalid(
                "expires_at",
                "A promotion code cannot outlast its coupon's redeem_by.",
            ));
        }
        if new.max_redemptions == Some(0) {
            return Err(AppError::invalid(
                "max_redemptions",
                "max_redemptions must be positive.",
            ));
        }
        let r = &new.restrictions;
        match (r.minimum_amount, r.minimum_amount_currency) {
            (Some(amount), Some(_)) if amount <= 0 => {
                return Err(AppError::invalid(
                    "restrictions[minimum_amount]",
                    "restrictions[minimum_amount] must be positive.",
                ))
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(AppError::invalid(
                    "restrictions[minimum_amount_currency]",
                    "restrictions[minimum_amount] and restrictions[minimum_amount_currency] go together.",
                ))
            }
            _ => {}
        }
        let mut promotion = PromotionCode {
            id: self.ids.id("promo"),
            livemode: scope.livemode,
            created: now,
            code,
            coupon: coupon.id.clone(),
            active: new.active,
            customer: new.customer,
            expires_at: new.expires_at,
            max_redemptions: new.max_redemptions,
            times_redeemed: 0,
            restrictions: new.restrictions,
            metadata: Metadata::new(),
        };
        new.metadata.apply(&mut promotion.metadata)?;
        match tx.insert_promotion_code(scope, &promotion).await {
            Err(StoreError::Conflict(_)) => {
                return Err(AppError::invalid(
                    "code",
                    format!(
                        "An active promotion code already uses the code '{}'.",
                        promotion.code
                    ),
                ))
            }
            other => other?,
        }
        let rendered = self.render.promotion_code(&promotion, &coupon, now);
        let change = Change {
            event_type: "promotion_code.created",
            object_id: promotion.id.clone(),
            object: Snapshot::Rendered(rendered.clone()),
            previous: None,
        };
        self.commit(tx, caller, vec![change], &rendered).await?;
        Ok((promotion, coupon))
    }

    /// A promotion code with its coupon.
    pub async fn promotion_code(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<(PromotionCode, Coupon), AppError> {
        let mut tx = self.store.read().await?;
        let code = tx
            .promotion_code(scope, id, false)
            .await?
            .ok_or_else(|| promotion_code_not_found(id))?;
        let coupon = coupon_of(&mut tx, scope, &code).await?;
        Ok((code, coupon))
    }

    pub async fn update_promotion_code(
        &self,
        caller: &Caller,
        id: &str,
        update: PromotionCodeUpdate,
    ) -> Result<(PromotionCode, Coupon), AppError> {
        let now = self.clock.now();
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut code = tx
            .promotion_code(scope, id, true)
            .await?
            .ok_or_else(|| promotion_code_not_found(id))?;
        let coupon = coupon_of(&mut tx, scope, &code).await?;
        let render = |code: &PromotionCode| self.render.promotion_code(code, &coupon, now);
        let before = render(&code);
        if let Some(active) = update.active {
            code.active = active;
        }
        update.metadata.apply(&mut code.metadata)?;
        tx.update_promotion_code(scope, &code).await?;
        let rendered = render(&code);
        let changes =
            Change::rendered_update("promotion_code.updated", &code.id, before, &rendered);
        self.commit(tx, caller, changes.into_iter().collect(), &rendered)
            .await?;
        Ok((code, coupon))
    }

    pub async fn promotion_codes(
        &self,
        scope: &Scope,
        filter: &PromotionCodeFilter,
        page: &PageRequest,
    ) -> Result<(Page<PromotionCode>, Vec<Coupon>), AppError> {
        let mut tx = self.store.read().await?;
        let codes = tx
            .promotion_codes(scope, filter, page)
            .await?
            .ok_or_else(|| cursor_not_found("promotion_code", page))?;
        let mut coupons: Vec<Coupon> = Vec::new();
        for code in &codes.data {
            if !coupons.iter().any(|c| c.id == code.coupon) {
                coupons.push(coupon_of(&mut tx, scope, code).await?);
            }
        }
        Ok((codes, coupons))
    }

    /// Turns requested discounts into discounts on `on`, counting each redemption on its
    /// coupon and promotion code (locked until commit, so limits hold under concurrent
    /// requests). Refuses, naming the parameter, a coupon or code that is unknown, no
    /// longer valid, in another currency, or restricted to other customers or amounts.
    pub(crate) async fn redeem(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        requests: &[DiscountRequest],
        on: Redemption<'_>,
        now: i64,
    ) -> Result<Vec<Discount>, AppError> {
        if requests.len() > DISCOUNTS_MAX {
            return Err(AppError::invalid(
                "discounts",
                format!("At most {DISCOUNTS_MAX} discounts apply to one object."),
            ));
        }
        let mut discounts: Vec<Discount> = Vec::with_capacity(requests.len());
        for request in requests {
            let param = request.param.as_str();
            let (coupon_id, promotion) = match &request.source {
                DiscountSource::Existing(id) => {
                    let kept = on.existing.iter().find(|d| &d.id == id).ok_or_else(|| {
                        AppError::invalid(param, format!("No such discount here: '{id}'"))
                    })?;
                    discounts.push(kept.clone());
                    continue;
                }
                DiscountSource::Coupon(id) => (id.clone(), None),
                DiscountSource::PromotionCode(id) => {
                    let mut code = tx.promotion_code(scope, id, true).await?.ok_or_else(|| {
                        AppError::invalid(param, format!("No such promotion code: '{id}'"))
                    })?;
                    self.check_promotion_code(tx, scope, &code, &on, param, now)
                        .await?;
                    code.times_redeemed += 1;
                    (code.coupon.clone(), Some(code))
                }
            };
            let mut coupon = tx.coupon(scope, &coupon_id, true).await?.ok_or_else(|| {
                AppError::invalid(param, format!("No such coupon: '{coupon_id}'"))
            })?;
            if !coupon.valid(now) {
                return Err(AppError::invalid(
                    param,
                    format!(
                        "Coupon '{coupon_id}' can no longer be redeemed: it has expired or been \
                         used as often as it may."
                    ),
                ));
            }
            if let (Some(theirs), Some(ours)) = (coupon.currency, on.currency) {
                if theirs != ours {
                    return Err(AppError::invalid(
                        param,
                        format!(
                            "Coupon '{coupon_id}' takes an amount off in {}, and this is billed in {}.",
                            theirs.lowercase(),
                            ours.lowercase()
                        ),
                    ));
                }
            }
            if discounts.iter().any(|d| d.coupon.id == coupon.id) {
                return Err(AppError::invalid(
                    param,
                    format!("Coupon '{coupon_id}' is given twice."),
                ));
            }
            coupon.times_redeemed += 1;
            tx.update_coupon(scope, &coupon).await?;
            if let Some(code) = &promotion {
                tx.update_promotion_code(scope, code).await?;
            }
            discounts.push(Discount {
                id: self.ids.id("di"),
                customer: on.customer.id.clone(),
                subscription: on.subscription.map(str::to_owned),
                invoice: on.invoice.map(str::to_owned),
                invoice_item: on.invoice_item.map(str::to_owned),
                promotion_code: promotion.map(|p| p.id),
                start: now,
                end: coupon.term().end(now),
                coupon,
            });
        }
        Ok(discounts)
    }

    async fn check_promotion_code(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        code: &PromotionCode,
        on: &Redemption<'_>,
        param: &str,
        now: i64,
    ) -> Result<(), AppError> {
        let refuse = |why: &str| {
            Err(AppError::invalid(
                param,
                format!("Promotion code '{}' cannot be used: {why}.", code.code),
            ))
        };
        if !code.active {
            return refuse("it is not active");
        }
        if code.expires_at.is_some_and(|at| now > at) {
            return refuse("it has expired");
        }
        if code
            .max_redemptions
            .is_some_and(|max| code.times_redeemed >= max)
        {
            return refuse("it has been used as often as it may");
        }
        if code.customer.as_ref().is_some_and(|c| c != &on.customer.id) {
            return refuse("it is for another customer");
        }
        if code.restrictions.first_time_transaction
            && self.has_paid(tx, scope, &on.customer.id).await?
        {
            return refuse("it is for customers who have never paid");
        }
        if let (Some(minimum), Some(currency)) = (
            code.restrictions.minimum_amount,
            code.restrictions.minimum_amount_currency,
        ) {
            let enough = on.currency == Some(currency)
                && on.first_amount.is_some_and(|amount| amount >= minimum);
            if !enough {
                return refuse(&format!(
                    "it needs an invoice of at least {minimum} (minor units) in {}",
                    currency.lowercase()
                ));
            }
        }
        Ok(())
    }

    /// Whether the customer has paid an invoice (Stripe's "first-time transaction").
    async fn has_paid(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        customer: &str,
    ) -> Result<bool, AppError> {
        let filter = InvoiceFilter {
            customer: Some(customer.to_owned()),
            status: Some(InvoiceStatus::Paid),
            ..InvoiceFilter::default()
        };
        let page = PageRequest {
            limit: 1,
            ..PageRequest::default()
        };
        Ok(tx
            .invoices(scope, &filter, &page)
            .await?
            .is_some_and(|p| !p.data.is_empty()))
    }
}

async fn coupon_of(
    tx: &mut Box<dyn Tx>,
    scope: &Scope,
    code: &PromotionCode,
) -> Result<Coupon, AppError> {
    tx.coupon(scope, &code.coupon, false)
        .await?
        .ok_or_else(|| AppError::Internal(format!("the coupon of {} is missing", code.id)))
}

impl App {
    /// A code no one guesses: the random end of a fresh id, upper case.
    fn random_code(&self) -> String {
        let fresh = self.ids.id("");
        fresh[fresh.len() - 10..].to_uppercase()
    }
}
