//! The sandbox gateway: Stripe's test mode for its test payment methods, with its own
//! books. Each charge it makes is written in its own transaction, apart from kopek's, as
//! a real gateway's records would be; so a kopek process killed after the gateway
//! charged but before kopek recorded it leaves exactly what a real outage would. Callers
//! must not hold a write transaction while calling it (on SQLite it would wait on them),
//! which no caller of a remote gateway should do anyway.

use crate::test_cards::{self, Behavior, Fault, TestCard};
use async_trait::async_trait;
use kopek_app::ports::*;
use kopek_app::records::{SandboxCharge, SandboxRefund};
use kopek_app::StoreError;
use kopek_core::calendar;
use std::sync::Arc;
use std::time::Duration;

/// How long the `pm_card_kopek_slow` token takes to answer, unless configured.
pub const SLOW_MS_DEFAULT: u64 = 3_000;
/// How long a sandbox dispute takes evidence.
const EVIDENCE_WINDOW_S: i64 = 7 * 86_400;

pub struct Sandbox {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    slow_ms: u64,
}

fn unknown_token(token: &str) -> GatewayError {
    GatewayError::Rejected(format!("no such test payment method: {token}"))
}

/// A card whose charges are made but never answered, then or later.
fn unreachable(card: &TestCard) -> bool {
    card.behavior == Behavior::Fault(Fault::Unreachable)
}

fn store_failure(e: StoreError) -> GatewayError {
    GatewayError::Unknown(format!("the sandbox could not reach its books: {e}"))
}

fn decline(code: &str, decline_code: Option<&str>) -> Decline {
    Decline {
        code: code.to_owned(),
        decline_code: decline_code.map(str::to_owned),
        message: test_cards::message(decline_code.unwrap_or(code)).to_owned(),
    }
}

/// A refund's answer from the books: made, or refused because it was canceled first.
fn refund_outcome(refund: &SandboxRefund) -> RefundOutcome {
    if refund.canceled {
        RefundOutcome::Failed {
            gateway_id: refund.id.clone(),
            reason: "the refund was canceled".into(),
        }
    } else {
        RefundOutcome::Succeeded {
            gateway_id: refund.id.clone(),
        }
    }
}

fn outcome(charge: &SandboxCharge) -> ChargeOutcome {
    let gateway_id = charge.id.clone();
    match (charge.status.as_str(), &charge.decline) {
        ("succeeded", _) => ChargeOutcome::Succeeded { gateway_id },
        ("requires_action", _) => ChargeOutcome::RequiresAction { gateway_id },
        (_, decline) => ChargeOutcome::Declined {
            gateway_id,
            decline: decline
                .clone()
                .unwrap_or_else(|| self::decline("card_declined", None)),
        },
    }
}

impl Sandbox {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, ids: Arc<dyn IdSource>) -> Sandbox {
        Sandbox {
            store,
            clock,
            ids,
            slow_ms: SLOW_MS_DEFAULT,
        }
    }

    pub fn with_slow_ms(mut self, slow_ms: u64) -> Sandbox {
        self.slow_ms = slow_ms;
        self
    }

    /// The sandbox serving test mode, and no gateway for live mode (real gateways'
    /// adapters come later).
    pub fn into_gateways(self) -> Gateways {
        Gateways {
            test: Arc::new(self),
            live: None,
        }
    }

    /// Every charge the sandbox made for an account, oldest first: its side of the books.
    pub async fn charges(&self, account_id: &str) -> Result<Vec<SandboxCharge>, StoreError> {
        let mut tx = self.store.read().await?;
        tx.sandbox_charges(account_id).await
    }

    /// Every refund the sandbox made for an account, oldest first.
    pub async fn refunds(&self, account_id: &str) -> Result<Vec<SandboxRefund>, StoreError> {
        let mut tx = self.store.read().await?;
        tx.sandbox_refunds(account_id).await
    }

    /// How many charges of this card the account had declined.
    async fn declined_before(&self, request: &ChargeRequest) -> Result<usize, GatewayError> {
        Ok(self
            .charges(&request.account_id)
            .await
            .map_err(store_failure)?
            .iter()
            .filter(|c| c.reference == request.reference && c.status == "declined")
            .count())
    }

    async fn append_dispute(
        &self,
        account_id: &str,
        dispute: &GatewayDispute,
    ) -> Result<(), GatewayError> {
        let mut tx = self.store.write().await.map_err(store_failure)?;
        tx.append_sandbox_dispute(account_id, dispute)
            .await
            .map_err(store_failure)?;
        tx.commit().await.map_err(store_failure)
    }

    /// A dispute's latest version.
    async fn dispute(
        &self,
        account_id: &str,
        gateway_id: &str,
    ) -> Result<GatewayDispute, GatewayError> {
        let mut tx = self.store.read().await.map_err(store_failure)?;
        let mut after = 0;
        let mut latest = None;
        loop {
            let page = tx
                .sandbox_disputes_after(account_id, after, 500)
                .await
                .map_err(store_failure)?;
            let Some((last, _)) = page.last() else {
                break;
            };
            after = *last;
            latest = page
                .into_iter()
                .rev()
                .find(|(_, d)| d.gateway_id == gateway_id)
                .map(|(_, d)| d)
                .or(latest);
        }
        latest.ok_or_else(|| GatewayError::Rejected(format!("no such dispute: {gateway_id}")))
    }

    /// Moves a dispute to `status`, unless it is already decided.
    async fn move_dispute(
        &self,
        account_id: &str,
        gateway_id: &str,
        status: &str,
    ) -> Result<GatewayDispute, GatewayError> {
        let mut dispute = self.dispute(account_id, gateway_id).await?;
        if matches!(dispute.status.as_str(), "won" | "lost" | "warning_closed") {
            return Err(GatewayError::Rejected(format!(
                "dispute {gateway_id} is already {}",
                dispute.status
            )));
        }
        dispute.status = status.to_owned();
        self.append_dispute(account_id, &dispute).await?;
        Ok(dispute)
    }

    async fn lookup(
        &self,
        account_id: &str,
        idempotency_key: &str,
    ) -> Result<Option<SandboxCharge>, GatewayError> {
        let mut tx = self.store.read().await.map_err(store_failure)?;
        tx.sandbox_charge(account_id, idempotency_key)
            .await
            .map_err(store_failure)
    }

    /// Makes the charge in the sandbox's books. A concurrent request with the same key
    /// that got there first wins, and its outcome is the answer (an idempotent replay).
    async fn commit(
        &self,
        request: &ChargeRequest,
        status: &str,
        decline: Option<Decline>,
    ) -> Result<ChargeOutcome, GatewayError> {
        let charge = SandboxCharge {
            id: self.ids.id("ch"),
            account_id: request.account_id.clone(),
            idempotency_key: request.idempotency_key.clone(),
            created: self.clock.now(),
            reference: request.reference.clone(),
            amount: request.amount,
            currency: request.currency,
            status: status.to_owned(),
            decline,
        };
        let mut tx = self.store.write().await.map_err(store_failure)?;
        match tx.insert_sandbox_charge(&charge).await {
            Ok(()) => {
                tx.commit().await.map_err(store_failure)?;
                Ok(outcome(&charge))
            }
            Err(StoreError::Conflict(_)) => {
                drop(tx);
                let first = self
                    .lookup(&request.account_id, &request.idempotency_key)
                    .await?
                    .ok_or_else(|| GatewayError::Unknown("a conflicting charge vanished".into()))?;
                Ok(outcome(&first))
            }
            Err(e) => Err(store_failure(e)),
        }
    }

    async fn charge_card(
        &self,
        card: &TestCard,
        request: &ChargeRequest,
    ) -> Result<ChargeOutcome, GatewayError> {
        match card.behavior {
            Behavior::Succeeds | Behavior::RefundsPending => {
                self.commit(request, "succeeded", None).await
            }
            Behavior::Disputed | Behavior::DisputedInquiry => {
                let outcome = self.commit(request, "succeeded", None).await?;
                if let ChargeOutcome::Succeeded { gateway_id } = &outcome {
                    // The cardholder disputes it at once, as fraud (or their issuer asks
                    // about it); evidence is taken for a week.
                    let status = if card.behavior == Behavior::DisputedInquiry {
                        "warning_needs_response"
                    } else {
                        "needs_response"
                    };
                    let dispute = GatewayDispute {
                        gateway_id: format!("dp_sbx_{gateway_id}"),
                        charge: request.idempotency_key.clone(),
                        amount: request.amount,
                        currency: request.currency.lowercase(),
                        reason: "fraudulent".into(),
                        status: status.into(),
                        due_by: self.clock.now() + EVIDENCE_WINDOW_S,
                    };
                    self.append_dispute(&request.account_id, &dispute).await?;
                }
                Ok(outcome)
            }
            Behavior::Declines { code, decline_code }
            | Behavior::ChargesDecline { code, decline_code } => {
                self.commit(request, "declined", Some(decline(code, decline_code)))
                    .await
            }
            // Off session nobody can authenticate: Stripe declines such a charge.
            Behavior::RequiresAuthentication if request.off_session => {
                let refused = decline("card_declined", Some("authentication_required"));
                self.commit(request, "declined", Some(refused)).await
            }
            Behavior::RequiresAuthentication => self.commit(request, "requires_action", None).await,
            Behavior::DeclinesThenSucceeds(times) => {
                if self.declined_before(request).await? < times as usize {
                    let refused = decline("card_declined", Some("insufficient_funds"));
                    self.commit(request, "declined", Some(refused)).await
                } else {
                    self.commit(request, "succeeded", None).await
                }
            }
            Behavior::FaultOnRetry(fault) => {
                if self.declined_before(request).await? == 0 {
                    let refused = decline("card_declined", Some("insufficient_funds"));
                    self.commit(request, "declined", Some(refused)).await
                } else {
                    self.misbehave(fault, request).await
                }
            }
            Behavior::Fault(fault) => self.misbehave(fault, request).await,
        }
    }

    async fn misbehave(
        &self,
        fault: Fault,
        request: &ChargeRequest,
    ) -> Result<ChargeOutcome, GatewayError> {
        match fault {
            Fault::TimeoutBeforeCommit => Err(GatewayError::Unknown(
                "timed out before the gateway received the charge".into(),
            )),
            Fault::ServerError => Err(GatewayError::Unknown("the gateway answered 500".into())),
            Fault::TimeoutAfterCommit | Fault::Unreachable => {
                self.commit(request, "succeeded", None).await?;
                Err(GatewayError::Unknown(
                    "timed out waiting for the answer".into(),
                ))
            }
            Fault::Garbage => {
                self.commit(request, "succeeded", None).await?;
                Err(GatewayError::Unknown("the answer did not parse".into()))
            }
            Fault::Slow => {
                let answer = self.commit(request, "succeeded", None).await;
                tokio::time::sleep(Duration::from_millis(self.slow_ms)).await;
                answer
            }
        }
    }
}

#[async_trait]
impl Gateway for Sandbox {
    async fn payment_method(&self, token: &str) -> Result<GatewayMethod, GatewayError> {
        let card = test_cards::find(token).ok_or_else(|| unknown_token(token))?;
        // Test cards take any future expiry; the sandbox's expire a year from now.
        let (today, _) = calendar::split(self.clock.now());
        Ok(GatewayMethod {
            reference: card.token.to_owned(),
            card: CardDetails {
                brand: card.brand.to_owned(),
                last4: card.last4.to_owned(),
                exp_month: today.month,
                exp_year: (today.year + 1) as i32,
                funding: card.funding.to_owned(),
                country: Some(card.country.to_owned()),
            },
        })
    }

    async fn verify(&self, reference: &str) -> Result<Result<(), Decline>, GatewayError> {
        let card = test_cards::find(reference).ok_or_else(|| unknown_token(reference))?;
        Ok(match card.behavior {
            Behavior::Declines { code, decline_code } => Err(decline(code, decline_code)),
            _ => Ok(()),
        })
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        let card = test_cards::find(&request.reference)
            .ok_or_else(|| unknown_token(&request.reference))?;
        // The same key again is answered from the books, never charged twice.
        if let Some(first) = self
            .lookup(&request.account_id, &request.idempotency_key)
            .await?
        {
            if unreachable(card) {
                return Err(GatewayError::Unknown("the gateway does not answer".into()));
            }
            return Ok(outcome(&first));
        }
        self.charge_card(card, request).await
    }

    /// Refunds up to what is left of a successful charge; a replayed key answers with
    /// the first refund.
    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        let refunded = {
            let mut tx = self.store.read().await.map_err(store_failure)?;
            tx.sandbox_refunds(&request.account_id)
                .await
                .map_err(store_failure)?
        };
        if let Some(first) = refunded
            .iter()
            .find(|r| r.idempotency_key == request.idempotency_key)
        {
            return Ok(refund_outcome(first));
        }
        let charge = self
            .charges(&request.account_id)
            .await
            .map_err(store_failure)?
            .into_iter()
            .find(|c| c.id == request.charge && c.status == "succeeded");
        let Some(charge) = charge else {
            return Err(GatewayError::Rejected(format!(
                "no successful charge {}",
                request.charge
            )));
        };
        if test_cards::find(&charge.reference).map(|c| c.behavior) == Some(Behavior::RefundsPending)
        {
            return Err(GatewayError::Unknown(
                "the gateway holds the refund as pending".into(),
            ));
        }
        let before: i64 = refunded
            .iter()
            .filter(|r| r.charge == charge.id)
            .map(|r| r.amount)
            .sum();
        if before + request.amount > charge.amount {
            return Ok(RefundOutcome::Failed {
                gateway_id: String::new(),
                reason: "the refund exceeds what is left of the charge".into(),
            });
        }
        let refund = SandboxRefund {
            id: self.ids.id("re_sbx"),
            account_id: request.account_id.clone(),
            idempotency_key: request.idempotency_key.clone(),
            created: self.clock.now(),
            charge: charge.id,
            amount: request.amount,
            canceled: false,
        };
        let mut tx = self.store.write().await.map_err(store_failure)?;
        match tx.insert_sandbox_refund(&refund).await {
            Ok(()) => tx.commit().await.map_err(store_failure)?,
            // The same key raced in first: its refund is the answer.
            Err(StoreError::Conflict(_)) => {
                drop(tx);
                let first = self
                    .refunds(&request.account_id)
                    .await
                    .map_err(store_failure)?
                    .into_iter()
                    .find(|r| r.idempotency_key == request.idempotency_key)
                    .ok_or_else(|| GatewayError::Unknown("a conflicting refund vanished".into()))?;
                return Ok(refund_outcome(&first));
            }
            Err(e) => return Err(store_failure(e)),
        }
        Ok(RefundOutcome::Succeeded {
            gateway_id: refund.id,
        })
    }

    /// Cancels a refund not made yet by keeping its key as canceled, in the same unique
    /// slot the refund would take: whichever comes first wins, the other sees it.
    async fn cancel_refund(
        &self,
        account_id: &str,
        idempotency_key: &str,
    ) -> Result<RefundCancel, GatewayError> {
        let existing = |refunds: Vec<SandboxRefund>| {
            refunds
                .into_iter()
                .find(|r| r.idempotency_key == idempotency_key)
        };
        let answer = |first: SandboxRefund| {
            if first.canceled {
                RefundCancel::Canceled
            } else {
                RefundCancel::Made(refund_outcome(&first))
            }
        };
        if let Some(first) = existing(self.refunds(account_id).await.map_err(store_failure)?) {
            return Ok(answer(first));
        }
        let marker = SandboxRefund {
            id: self.ids.id("re_sbx"),
            account_id: account_id.to_owned(),
            idempotency_key: idempotency_key.to_owned(),
            created: self.clock.now(),
            charge: String::new(),
            amount: 0,
            canceled: true,
        };
        let mut tx = self.store.write().await.map_err(store_failure)?;
        match tx.insert_sandbox_refund(&marker).await {
            Ok(()) => {
                tx.commit().await.map_err(store_failure)?;
                Ok(RefundCancel::Canceled)
            }
            Err(StoreError::Conflict(_)) => {
                drop(tx);
                let first = existing(self.refunds(account_id).await.map_err(store_failure)?)
                    .ok_or_else(|| GatewayError::Unknown("a conflicting refund vanished".into()))?;
                Ok(answer(first))
            }
            Err(e) => Err(store_failure(e)),
        }
    }

    async fn dispute_updates(
        &self,
        account_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, GatewayDispute)>, GatewayError> {
        let mut tx = self.store.read().await.map_err(store_failure)?;
        tx.sandbox_disputes_after(account_id, after, limit)
            .await
            .map_err(store_failure)
    }

    /// As Stripe's test mode: submitted evidence whose `uncategorized_text` is
    /// `winning_evidence` wins the dispute, `losing_evidence` loses it; other evidence
    /// puts it under review.
    async fn update_dispute(
        &self,
        account_id: &str,
        gateway_id: &str,
        evidence: &std::collections::BTreeMap<String, String>,
        submit: bool,
    ) -> Result<GatewayDispute, GatewayError> {
        if !submit {
            return self.dispute(account_id, gateway_id).await;
        }
        let inquiry = self
            .dispute(account_id, gateway_id)
            .await?
            .status
            .starts_with("warning_");
        // Stripe's test mode decides on these words; an inquiry lost becomes a chargeback.
        let status = match (
            evidence.get("uncategorized_text").map(String::as_str),
            inquiry,
        ) {
            (Some("winning_evidence"), false) => "won",
            (Some("losing_evidence"), false) => "lost",
            (_, false) => "under_review",
            (Some("winning_evidence"), true) => "warning_closed",
            (Some("losing_evidence"), true) => "needs_response",
            (_, true) => "warning_under_review",
        };
        self.move_dispute(account_id, gateway_id, status).await
    }

    /// Accepting a chargeback loses it; accepting an inquiry closes it.
    async fn close_dispute(
        &self,
        account_id: &str,
        gateway_id: &str,
    ) -> Result<GatewayDispute, GatewayError> {
        let inquiry = self
            .dispute(account_id, gateway_id)
            .await?
            .status
            .starts_with("warning_");
        let status = if inquiry { "warning_closed" } else { "lost" };
        self.move_dispute(account_id, gateway_id, status).await
    }

    /// The network decides: a chargeback is won or lost; an inquiry is closed, or
    /// becomes a chargeback.
    async fn decide_test_dispute(
        &self,
        account_id: &str,
        gateway_id: &str,
        won: bool,
    ) -> Result<GatewayDispute, GatewayError> {
        let inquiry = self
            .dispute(account_id, gateway_id)
            .await?
            .status
            .starts_with("warning_");
        let status = match (inquiry, won) {
            (false, true) => "won",
            (false, false) => "lost",
            (true, true) => "warning_closed",
            (true, false) => "needs_response",
        };
        self.move_dispute(account_id, gateway_id, status).await
    }

    async fn find_charge(
        &self,
        account_id: &str,
        idempotency_key: &str,
    ) -> Result<Option<ChargeOutcome>, GatewayError> {
        let found = self.lookup(account_id, idempotency_key).await?;
        if let Some(charge) = &found {
            if test_cards::find(&charge.reference).is_some_and(unreachable) {
                return Err(GatewayError::Unknown("the gateway does not answer".into()));
            }
        }
        Ok(found.as_ref().map(outcome))
    }
}
