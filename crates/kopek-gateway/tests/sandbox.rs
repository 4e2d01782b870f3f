//! The sandbox gateway on both stores: outcomes per test card, idempotent charges, and
//! each fault token leaving its books exactly as a real gateway's would be.

use kopek_app::ports::*;
use kopek_core::Currency;
use kopek_gateway::Sandbox;
use kopek_testkit::{fresh_store, store_test, FixedClock, StoreKind, JAN_1_2026};
use std::sync::Arc;

async fn sandbox(kind: StoreKind) -> Sandbox {
    let store = fresh_store(kind).await;
    Sandbox::new(store, FixedClock::new(JAN_1_2026), Arc::new(RandomIds)).with_slow_ms(50)
}

fn request(key: &str, reference: &str, off_session: bool) -> ChargeRequest {
    ChargeRequest {
        idempotency_key: key.to_owned(),
        account_id: "acct_test".into(),
        livemode: false,
        reference: reference.to_owned(),
        amount: 1_999,
        currency: Currency::parse("usd").unwrap(),
        off_session,
    }
}

fn declined_with(outcome: &ChargeOutcome) -> (&str, Option<&str>) {
    match outcome {
        ChargeOutcome::Declined { decline, .. } => {
            (decline.code.as_str(), decline.decline_code.as_deref())
        }
        other => panic!("expected a decline, got {other:?}"),
    }
}

store_test!(charges_follow_the_test_cards, |kind| async move {
    let gw = sandbox(kind).await;
    let ok = gw
        .charge(&request("k1", "pm_card_visa", true))
        .await
        .unwrap();
    assert!(matches!(ok, ChargeOutcome::Succeeded { .. }));
    let failed = gw
        .charge(&request("k2", "pm_card_chargeCustomerFail", true))
        .await
        .unwrap();
    assert_eq!(
        declined_with(&failed),
        ("card_declined", Some("generic_decline"))
    );
    let funds = gw
        .charge(&request(
            "k3",
            "pm_card_chargeDeclinedInsufficientFunds",
            true,
        ))
        .await
        .unwrap();
    assert_eq!(
        declined_with(&funds),
        ("card_declined", Some("insufficient_funds"))
    );
    let off = gw
        .charge(&request("k4", "pm_card_authenticationRequired", true))
        .await
        .unwrap();
    assert_eq!(
        declined_with(&off),
        ("card_declined", Some("authentication_required")),
        "off session nobody can authenticate"
    );
    let on = gw
        .charge(&request("k5", "pm_card_authenticationRequired", false))
        .await
        .unwrap();
    assert!(matches!(on, ChargeOutcome::RequiresAction { .. }));
    let risky = gw
        .charge(&request("k6", "pm_card_riskLevelHighest", true))
        .await
        .unwrap();
    assert_eq!(declined_with(&risky), ("card_declined", Some("fraudulent")));
    assert_eq!(
        gw.charge(&request("k7", "pm_card_nonsense", true)).await,
        Err(GatewayError::Rejected(
            "no such test payment method: pm_card_nonsense".into()
        ))
    );
    assert_eq!(gw.charges("acct_test").await.unwrap().len(), 6);
});

store_test!(the_same_key_never_charges_twice, |kind| async move {
    let gw = Arc::new(sandbox(kind).await);
    let first = gw
        .charge(&request("same", "pm_card_visa", true))
        .await
        .unwrap();
    let again = gw
        .charge(&request("same", "pm_card_visa", true))
        .await
        .unwrap();
    assert_eq!(first, again, "a replay answers with the first outcome");
    // Concurrent requests with one key: one charge, one answer for all.
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let gw = gw.clone();
            tokio::spawn(async move { gw.charge(&request("raced", "pm_card_visa", true)).await })
        })
        .collect();
    let mut answers = Vec::new();
    for racer in racers {
        answers.push(racer.await.unwrap().unwrap());
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    let books = gw.charges("acct_test").await.unwrap();
    assert_eq!(books.len(), 2, "{books:?}");
});

store_test!(
    faults_leave_the_books_as_a_real_outage_would,
    |kind| async move {
        let gw = sandbox(kind).await;
        // (token, charge made at the gateway?, can it be looked up afterwards?)
        for (token, committed, answers_lookups) in [
            ("pm_card_kopek_timeoutAfterCommit", true, true),
            ("pm_card_kopek_timeoutBeforeCommit", false, true),
            ("pm_card_kopek_serverError", false, true),
            ("pm_card_kopek_garbage", true, true),
            ("pm_card_kopek_unreachable", true, false),
        ] {
            let key = format!("fault-{token}");
            let answer = gw.charge(&request(&key, token, true)).await;
            assert!(
                matches!(answer, Err(GatewayError::Unknown(_))),
                "{token}: {answer:?}"
            );
            let found = gw.find_charge("acct_test", &key).await;
            match (committed, answers_lookups) {
                (true, true) => assert!(
                    matches!(found, Ok(Some(ChargeOutcome::Succeeded { .. }))),
                    "{token}: {found:?}"
                ),
                (false, _) => assert_eq!(found, Ok(None), "{token}"),
                (true, false) => assert!(matches!(found, Err(GatewayError::Unknown(_))), "{token}"),
            }
            // Asking again with the same key never makes a second charge.
            let _ = gw.charge(&request(&key, token, true)).await;
            let made = gw
                .charges("acct_test")
                .await
                .unwrap()
                .iter()
                .filter(|c| c.idempotency_key == key)
                .count();
            assert!(made <= 1, "{token} charged {made} times under one key");
        }
        let slow = gw
            .charge(&request("slow", "pm_card_kopek_slow", true))
            .await
            .unwrap();
        assert!(matches!(slow, ChargeOutcome::Succeeded { .. }));
    }
);

store_test!(
    cards_declined_at_attach_are_refused_by_verify,
    |kind| async move {
        let gw = sandbox(kind).await;
        let method = gw
            .payment_method("tok_chargeDeclinedExpiredCard")
            .await
            .unwrap();
        assert_eq!(method.reference, "pm_card_chargeDeclinedExpiredCard");
        assert_eq!(method.card.last4, "0069");
        assert_eq!(method.card.exp_year, 2027, "a year after the clock's 2026");
        let refused = gw.verify(&method.reference).await.unwrap().unwrap_err();
        assert_eq!(refused.code, "expired_card");
        assert_eq!(refused.message, "Your card has expired.");
        assert_eq!(gw.verify("pm_card_chargeCustomerFail").await, Ok(Ok(())));
    }
);

fn refund_of(charge: &str, key: &str) -> RefundRequest {
    RefundRequest {
        idempotency_key: key.to_owned(),
        account_id: "acct_test".into(),
        charge: charge.to_owned(),
        amount: 500,
        currency: Currency::parse("usd").unwrap(),
    }
}

store_test!(
    a_held_refund_is_canceled_once_and_never_made_after,
    |kind| async move {
        let gw = sandbox(kind).await;
        let paid = gw
            .charge(&request("k1", "pm_card_kopek_refundPending", true))
            .await
            .unwrap();
        let ChargeOutcome::Succeeded { gateway_id } = paid else {
            panic!("the charge succeeds: {paid:?}");
        };
        let held = gw.refund(&refund_of(&gateway_id, "re_1")).await;
        assert!(matches!(held, Err(GatewayError::Unknown(_))), "{held:?}");
        assert_eq!(
            gw.cancel_refund("acct_test", "re_1").await.unwrap(),
            RefundCancel::Canceled
        );
        assert_eq!(
            gw.cancel_refund("acct_test", "re_1").await.unwrap(),
            RefundCancel::Canceled,
            "canceling again answers the same"
        );
        let late = gw.refund(&refund_of(&gateway_id, "re_1")).await.unwrap();
        assert!(
            matches!(late, RefundOutcome::Failed { .. }),
            "a late request with a canceled key is refused: {late:?}"
        );
        let refunded: i64 = gw
            .refunds("acct_test")
            .await
            .unwrap()
            .iter()
            .map(|r| r.amount)
            .sum();
        assert_eq!(refunded, 0);

        // A refund already made cannot be canceled: the answer says what it was.
        let visa = gw
            .charge(&request("k2", "pm_card_visa", true))
            .await
            .unwrap();
        let ChargeOutcome::Succeeded { gateway_id } = visa else {
            panic!("the charge succeeds: {visa:?}");
        };
        let made = gw.refund(&refund_of(&gateway_id, "re_2")).await.unwrap();
        assert!(matches!(made, RefundOutcome::Succeeded { .. }));
        assert_eq!(
            gw.cancel_refund("acct_test", "re_2").await.unwrap(),
            RefundCancel::Made(made)
        );
    }
);

store_test!(an_inquiry_card_opens_an_inquiry, |kind| async move {
    let gw = sandbox(kind).await;
    gw.charge(&request("k1", "pm_card_createDisputeInquiry", true))
        .await
        .unwrap();
    let feed = gw.dispute_updates("acct_test", 0, 10).await.unwrap();
    assert_eq!(feed.len(), 1);
    let (_, inquiry) = &feed[0];
    assert_eq!(inquiry.status, "warning_needs_response");
    assert_eq!(inquiry.charge, "k1");
    let escalated = gw
        .decide_test_dispute("acct_test", &inquiry.gateway_id, false)
        .await
        .unwrap();
    assert_eq!(
        escalated.status, "needs_response",
        "an inquiry lost is a chargeback"
    );
    let lost = gw
        .decide_test_dispute("acct_test", &inquiry.gateway_id, false)
        .await
        .unwrap();
    assert_eq!(lost.status, "lost");
});
