//! The store conformance suite: every test runs on SQLite and on PostgreSQL.

use kopek_app::ports::Store;
use kopek_app::records::*;
use kopek_core::invoice::InvoiceStatus;
use kopek_core::price::{BillingScheme, PriceKind, PriceModel, UnitAmount};
use kopek_core::Currency;
use kopek_testkit::{fresh_store, store_test, StoreKind};
use std::sync::Arc;

async fn with_accounts(kind: StoreKind) -> (Arc<dyn Store>, Scope, Scope) {
    let store = fresh_store(kind).await;
    let mut tx = store.write().await.unwrap();
    for id in ["acct_a", "acct_b"] {
        tx.insert_account(&Account {
            id: id.into(),
            created: 1,
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let a = Scope {
        account_id: "acct_a".into(),
        livemode: false,
    };
    let b = Scope {
        account_id: "acct_b".into(),
        livemode: false,
    };
    (store, a, b)
}

fn customer(id: &str, created: i64, email: Option<&str>) -> Customer {
    Customer {
        id: id.into(),
        livemode: false,
        created,
        email: email.map(Into::into),
        name: Some(format!("Name of {id}")),
        description: None,
        phone: None,
        address: Some(Address {
            city: Some("Riga".into()),
            ..Address::default()
        }),
        shipping: None,
        balance: -250,
        currency: Currency::parse("eur").ok(),
        invoice_prefix: "ABCD1234".into(),
        next_invoice_sequence: 1,
        invoice_settings: InvoiceSettings {
            custom_fields: vec![("VAT".into(), "LV123".into())],
            default_payment_method: None,
            footer: Some("Thanks".into()),
        },
        preferred_locales: vec!["lv".into()],
        email_opt_outs: vec![kopek_app::records::EmailKind::UpcomingRenewal],
        tax_exempt: TaxExempt::Reverse,
        metadata: [("plan".to_owned(), "pro".to_owned())].into(),
        test_clock: None,
        discount: None,
        deleted: false,
    }
}

fn page(limit: u32, after: Option<&str>, before: Option<&str>) -> PageRequest {
    PageRequest {
        limit,
        starting_after: after.map(Into::into),
        ending_before: before.map(Into::into),
    }
}

fn ids(page: &Page<Customer>) -> Vec<&str> {
    page.data.iter().map(|c| c.id.as_str()).collect()
}

store_test!(customers_round_trip_every_field, |kind| async move {
    let (store, a, _) = with_accounts(kind).await;
    let original = customer("cus_1", 100, Some("a@example.com"));
    let mut tx = store.write().await.unwrap();
    tx.insert_customer(&a, &original).await.unwrap();
    tx.commit().await.unwrap();
    let loaded = store
        .read()
        .await
        .unwrap()
        .customer(&a, "cus_1")
        .await
        .unwrap();
    assert_eq!(loaded, Some(original));
});

store_test!(other_accounts_and_modes_see_nothing, |kind| async move {
    let (store, a, b) = with_accounts(kind).await;
    let mut tx = store.write().await.unwrap();
    tx.insert_customer(&a, &customer("cus_a", 1, None))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let live_a = Scope {
        livemode: true,
        ..a.clone()
    };
    let mut tx = store.read().await.unwrap();
    assert!(tx.customer(&b, "cus_a").await.unwrap().is_none());
    assert!(tx.customer(&live_a, "cus_a").await.unwrap().is_none());
    let everything = page(100, None, None);
    let listed = tx
        .customers(&b, &CustomerFilter::default(), &everything)
        .await
        .unwrap()
        .unwrap();
    assert!(listed.data.is_empty());
    // A cursor from another account is unknown, not a window into it.
    let probe = page(10, Some("cus_a"), None);
    assert!(tx
        .customers(&b, &CustomerFilter::default(), &probe)
        .await
        .unwrap()
        .is_none());
});

store_test!(lists_page_newest_first_both_ways, |kind| async move {
    let (store, a, _) = with_accounts(kind).await;
    let mut tx = store.write().await.unwrap();
    for i in 1..=5 {
        // Equal `created` on purpose: order must not depend on it.
        tx.insert_customer(&a, &customer(&format!("cus_{i}"), 7, None))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let all = CustomerFilter::default();
    let mut tx = store.read().await.unwrap();
    let first = tx
        .customers(&a, &all, &page(2, None, None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ids(&first), first.has_more),
        (vec!["cus_5", "cus_4"], true)
    );
    let second = tx
        .customers(&a, &all, &page(2, Some("cus_4"), None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ids(&second), second.has_more),
        (vec!["cus_3", "cus_2"], true)
    );
    let last = tx
        .customers(&a, &all, &page(2, Some("cus_2"), None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ids(&last), last.has_more), (vec!["cus_1"], false));
    let back = tx
        .customers(&a, &all, &page(2, None, Some("cus_2")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ids(&back), back.has_more), (vec!["cus_4", "cus_3"], true));
});

store_test!(filters_and_deleted_customers, |kind| async move {
    let (store, a, _) = with_accounts(kind).await;
    let mut tx = store.write().await.unwrap();
    tx.insert_customer(&a, &customer("cus_1", 10, Some("x@example.com")))
        .await
        .unwrap();
    tx.insert_customer(&a, &customer("cus_2", 20, Some("y@example.com")))
        .await
        .unwrap();
    let mut gone = customer("cus_3", 30, Some("x@example.com"));
    tx.insert_customer(&a, &gone).await.unwrap();
    gone.deleted = true;
    tx.update_customer(&a, &gone).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.read().await.unwrap();
    let by_email = CustomerFilter {
        email: Some("x@example.com".into()),
        ..CustomerFilter::default()
    };
    let listed = tx
        .customers(&a, &by_email, &page(10, None, None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&listed), vec!["cus_1"]);
    let recent = CustomerFilter {
        created: TimeRange {
            from: Some(15),
            to: None,
        },
        ..CustomerFilter::default()
    };
    let listed = tx
        .customers(&a, &recent, &page(10, None, None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&listed), vec!["cus_2"]);
    assert!(tx.customer(&a, "cus_3").await.unwrap().unwrap().deleted);
});

fn price(id: &str, product: &str, lookup_key: Option<&str>) -> Price {
    Price {
        id: id.into(),
        livemode: false,
        created: 5,
        product: product.into(),
        active: true,
        nickname: None,
        lookup_key: lookup_key.map(Into::into),
        tax_behavior: TaxBehavior::Unspecified,
        trial_period_days: None,
        meter: None,
        model: PriceModel {
            currency: Currency::parse("usd").unwrap(),
            kind: PriceKind::OneTime,
            scheme: BillingScheme::PerUnit {
                unit_amount: UnitAmount::from_minor(500).unwrap(),
                transform_quantity: None,
            },
        },
        metadata: Metadata::new(),
    }
}

fn product(id: &str) -> Product {
    Product {
        id: id.into(),
        livemode: false,
        created: 1,
        updated: 1,
        name: "Pro".into(),
        active: true,
        description: None,
        default_price: None,
        images: vec![],
        marketing_features: vec!["Fast".into()],
        shippable: None,
        statement_descriptor: None,
        tax_code: None,
        unit_label: Some("seat".into()),
        url: None,
        product_type: ProductType::Service,
        metadata: Metadata::new(),
    }
}

store_test!(
    prices_keep_lookup_keys_unique_per_scope,
    |kind| async move {
        let (store, a, b) = with_accounts(kind).await;
        let mut tx = store.write().await.unwrap();
        tx.insert_product(&a, &product("prod_a")).await.unwrap();
        tx.insert_product(&b, &product("prod_b")).await.unwrap();
        tx.insert_price(&a, &price("price_1", "prod_a", Some("pro")))
            .await
            .unwrap();
        // The same key in another account is fine.
        tx.insert_price(&b, &price("price_2", "prod_b", Some("pro")))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.write().await.unwrap();
        let duplicate = tx
            .insert_price(&a, &price("price_3", "prod_a", Some("pro")))
            .await;
        assert!(
            matches!(duplicate, Err(kopek_app::StoreError::Conflict(_))),
            "{duplicate:?}"
        );
        drop(tx);
        let mut tx = store.read().await.unwrap();
        assert_eq!(
            tx.price(&a, "price_1").await.unwrap(),
            Some(price("price_1", "prod_a", Some("pro")))
        );
        assert!(
            tx.price(&a, "price_3").await.unwrap().is_none(),
            "a failed transaction leaves nothing"
        );
        assert_eq!(tx.price_count_for_product(&a, "prod_a").await.unwrap(), 1);
        let filter = PriceFilter {
            lookup_keys: vec!["pro".into(), "other".into()],
            ..PriceFilter::default()
        };
        let found = tx
            .prices(&a, &filter, &page(10, None, None))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.data.len(), 1);
    }
);

store_test!(
    idempotency_keys_claim_replay_and_expire,
    |kind| async move {
        let (store, a, b) = with_accounts(kind).await;
        let (fp, other_fp) = ([1u8; 32], [2u8; 32]);
        let claim = |scope: Scope, fingerprint: [u8; 32], now: i64| {
            let store = store.clone();
            async move {
                let mut tx = store.write().await.unwrap();
                let record = tx
                    .claim_idempotency_key(&scope, "k1", &fingerprint, now, now - 60, now - 86_400)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                record
            }
        };
        assert_eq!(claim(a.clone(), fp, 1_000).await, None, "first claim wins");
        let running = claim(a.clone(), fp, 1_010).await.unwrap();
        assert_eq!(running.response, None, "still in flight");
        assert_eq!(
            claim(b.clone(), other_fp, 1_010).await,
            None,
            "keys are per account"
        );
        // A claim whose request died (never completed) is taken over after a minute.
        assert_eq!(claim(a.clone(), other_fp, 1_061).await, None);
        let mut tx = store.write().await.unwrap();
        tx.complete_idempotency_key(&a, "k1", 200, b"{\"id\":1}")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let done = claim(a.clone(), fp, 2_000).await.unwrap();
        assert_eq!(done.fingerprint, other_fp);
        assert_eq!(done.response, Some((200, b"{\"id\":1}".to_vec())));
        // Completed records are kept a day, then forgotten.
        assert_eq!(claim(a.clone(), fp, 1_061 + 86_401).await, None);
    }
);

store_test!(events_list_by_type, |kind| async move {
    let (store, a, _) = with_accounts(kind).await;
    let mut tx = store.write().await.unwrap();
    for (i, (event_type, object_id)) in [
        ("customer.created", "cus_1"),
        ("customer.updated", "cus_1"),
        ("customer.created", "cus_2"),
    ]
    .iter()
    .enumerate()
    {
        let event = Event {
            id: format!("evt_{i}"),
            livemode: false,
            created: 50 + i as i64,
            event_type: (*event_type).into(),
            object_id: (*object_id).into(),
            object: Snapshot::Rendered(serde_json::json!({"id": object_id, "email": "a@b.c"})),
            previous: (i == 1)
                .then(|| Snapshot::Rendered(serde_json::json!({"id": object_id, "email": null}))),
            idempotency_key: Some("k".into()),
        };
        tx.insert_events(&a, std::slice::from_ref(&event))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let mut tx = store.read().await.unwrap();
    let created = EventFilter {
        event_type: Some("customer.created".into()),
        ..EventFilter::default()
    };
    let listed = tx
        .events(&a, &created, &page(10, None, None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        listed
            .data
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        vec!["evt_2", "evt_0"]
    );
    let updated = tx.event(&a, "evt_1").await.unwrap().unwrap();
    assert_eq!(
        updated.previous,
        Some(Snapshot::Rendered(
            serde_json::json!({"id": "cus_1", "email": null})
        ))
    );
});

store_test!(api_keys_are_found_by_hash_only, |kind| async move {
    let (store, _, _) = with_accounts(kind).await;
    let key = ApiKey {
        id: "key_1".into(),
        account_id: "acct_a".into(),
        livemode: true,
        secret_sha256: [9u8; 32],
        prefix: "sk_live_".into(),
        last4: "abcd".into(),
        created: 3,
    };
    let mut tx = store.write().await.unwrap();
    tx.insert_api_key(&key).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.read().await.unwrap();
    assert_eq!(
        tx.api_key_by_hash(&[9u8; 32]).await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(tx.api_key_by_hash(&[8u8; 32]).await.unwrap(), None);
    assert_eq!(tx.api_keys("acct_a").await.unwrap(), vec![key]);
    assert_eq!(tx.first_account().await.unwrap().unwrap().id, "acct_a");
});

fn rendered_event(id: &str) -> Event {
    Event {
        id: id.into(),
        livemode: false,
        created: 50,
        event_type: "customer.created".into(),
        object_id: "cus_1".into(),
        object: Snapshot::Rendered(serde_json::json!({"id": "cus_1"})),
        previous: None,
        idempotency_key: None,
    }
}

// Bulk writes run behind the caller (`write_behind` in store-sql/tx.rs): one that fails
// must still fail its transaction, at the next step or at commit, and leave nothing.
store_test!(
    a_failed_write_behind_fails_the_transaction,
    |kind| async move {
        let (store, a, _) = with_accounts(kind).await;
        // Failing at the next step: that step and every later one are refused.
        let mut tx = store.write().await.unwrap();
        tx.insert_customer(&a, &customer("cus_1", 1, None))
            .await
            .unwrap();
        let twice = [rendered_event("evt_1"), rendered_event("evt_1")];
        tx.insert_events(&a, &twice).await.unwrap();
        // Not a conflict: the step it shows at could take that for its own.
        assert!(matches!(
            tx.customer(&a, "cus_1").await,
            Err(kopek_app::StoreError::Internal(_))
        ));
        assert!(tx.customer(&a, "cus_1").await.is_err());
        assert!(tx.commit().await.is_err());
        // Failing at commit.
        let mut tx = store.write().await.unwrap();
        tx.insert_customer(&a, &customer("cus_2", 1, None))
            .await
            .unwrap();
        tx.insert_events(&a, &twice).await.unwrap();
        assert!(tx.commit().await.is_err());

        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.customer(&a, "cus_1").await.unwrap(), None);
        assert_eq!(tx.customer(&a, "cus_2").await.unwrap(), None);
        assert_eq!(tx.event(&a, "evt_1").await.unwrap(), None);
        drop(tx);
        // The store takes the next writer as usual.
        let mut tx = store.write().await.unwrap();
        tx.insert_events(&a, &twice[..1]).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        assert!(tx.event(&a, "evt_1").await.unwrap().is_some());
    }
);

fn subscription(id: &str, customer: &str, next_action_at: i64) -> Subscription {
    serde_json::from_value(serde_json::json!({
        "id": id, "livemode": false, "created": 1, "customer": customer,
        "status": "active", "currency": "usd", "interval": "month", "interval_count": 1,
        "items": [{"id": format!("si_{id}"), "created": 1, "price": "price_1", "quantity": 1}],
        "billing_cycle_anchor": 1, "start_date": 1, "current_period_start": 1,
        "current_period_end": 100, "collection_method": "send_invoice", "days_until_due": 30,
        "next_action_at": next_action_at,
    }))
    .unwrap()
}

// The billing clock plans renewals from a snapshot on SQLite and writes them only over
// rows still as read (`update_subscriptions_unchanged`), skipping what another batch
// has in hand.
store_test!(
    due_scans_skip_and_updates_go_only_over_unchanged_rows,
    |kind| async move {
        let (store, a, b) = with_accounts(kind).await;
        let mut tx = store.write().await.unwrap();
        tx.insert_customer(&a, &customer("cus_1", 1, None))
            .await
            .unwrap();
        let subs: Vec<Subscription> = (1..=3)
            .map(|n| subscription(&format!("sub_{n}"), "cus_1", 50 + n))
            .collect();
        for sub in &subs {
            tx.insert_subscription(&a, sub).await.unwrap();
        }
        tx.commit().await.unwrap();

        let due_ids =
            |due: Vec<(Scope, Subscription, kopek_app::ports::StoredDoc)>| -> Vec<String> {
                due.into_iter().map(|(_, s, _)| s.id).collect()
            };
        let mut tx = store.write().await.unwrap();
        let all = tx
            .due_subscriptions_for_update(&Lane::RealTime, 60, 10, &[])
            .await
            .unwrap();
        // Each comes with its doc as stored: what the store makes of it.
        for (_, s, doc) in &all {
            assert_eq!(*doc, store.stored_doc(kopek_app::codec::to_doc(s)));
        }
        assert_eq!(due_ids(all), ["sub_1", "sub_2", "sub_3"]);
        let rest = tx
            .due_subscriptions_for_update(&Lane::RealTime, 60, 10, &["sub_2".into()])
            .await
            .unwrap();
        assert_eq!(due_ids(rest), ["sub_1", "sub_3"]);
        drop(tx);

        // Read, then changed by someone else: the update over the changed row is refused.
        let read = subs.clone();
        let mut changed = subs[1].clone();
        changed.cancel_at_period_end = true;
        let mut tx = store.write().await.unwrap();
        tx.update_subscriptions(&a, std::slice::from_ref(&changed))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let renewed: Vec<Subscription> = read
            .iter()
            .map(|s| Subscription {
                current_period_start: 100,
                current_period_end: 200,
                next_action_at: Some(200),
                ..s.clone()
            })
            .collect();
        let docs = |subs: &[Subscription]| -> Vec<kopek_app::ports::StoredDoc> {
            subs.iter()
                .map(|s| store.stored_doc(kopek_app::codec::to_doc(s)))
                .collect()
        };
        let mut tx = store.write().await.unwrap();
        tx.update_subscriptions_unchanged(&a, &docs(&read), &renewed, &docs(&renewed))
            .await
            .unwrap();
        assert!(tx.changed_since_read().await);
        // Rolled back: it refuses every later step, its commit too.
        assert!(matches!(
            tx.subscription(&a, "sub_1").await,
            Err(kopek_app::StoreError::Changed(_))
        ));
        assert!(matches!(
            tx.commit().await,
            Err(kopek_app::StoreError::Changed(_))
        ));
        let mut tx = store.read().await.unwrap();
        assert_eq!(
            tx.subscription(&a, "sub_1").await.unwrap().as_ref(),
            Some(&subs[0])
        );
        assert_eq!(
            tx.subscription(&a, "sub_2").await.unwrap(),
            Some(changed.clone())
        );
        drop(tx);

        // Unchanged rows (read as they are now) are written.
        let read = vec![subs[0].clone(), changed.clone(), subs[2].clone()];
        let mut tx = store.write().await.unwrap();
        tx.update_subscriptions_unchanged(&a, &docs(&read), &renewed, &docs(&renewed))
            .await
            .unwrap();
        assert!(!tx.changed_since_read().await);
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        for sub in &renewed {
            assert_eq!(
                tx.subscription(&a, &sub.id).await.unwrap().as_ref(),
                Some(sub)
            );
        }
        drop(tx);
        // Another account's rows are never written, even with the same ids.
        let mut tx = store.write().await.unwrap();
        tx.update_subscriptions_unchanged(&b, &docs(&renewed), &read, &docs(&read))
            .await
            .unwrap();
        assert!(tx.changed_since_read().await);
        drop(tx);

        // Invoice items the same way: a pending item swept by someone else is not swept
        // again.
        let pending: InvoiceItem = serde_json::from_value(serde_json::json!({
            "id": "ii_1", "livemode": false, "created": 1, "customer": "cus_1",
            "amount": 700, "currency": "usd", "period_start": 1, "period_end": 1,
            "quantity": 1,
        }))
        .unwrap();
        let swept_by = |invoice: &str| InvoiceItem {
            invoice: Some(invoice.into()),
            ..pending.clone()
        };
        let mut tx = store.write().await.unwrap();
        tx.insert_invoice_item(&a, &pending).await.unwrap();
        tx.update_invoice_items(&a, &[swept_by("in_other")])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let doc = |item: &InvoiceItem| vec![store.stored_doc(kopek_app::codec::to_doc(item))];
        let mine = swept_by("in_mine");
        let mut tx = store.write().await.unwrap();
        tx.update_invoice_items_unchanged(
            &a,
            &doc(&pending),
            std::slice::from_ref(&mine),
            &doc(&mine),
        )
        .await
        .unwrap();
        assert!(tx.changed_since_read().await);
        drop(tx);
        let mut tx = store.write().await.unwrap();
        tx.update_invoice_items_unchanged(
            &a,
            &doc(&swept_by("in_other")),
            std::slice::from_ref(&mine),
            &doc(&mine),
        )
        .await
        .unwrap();
        assert!(!tx.changed_since_read().await);
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        assert_eq!(
            tx.invoice_item(&a, "ii_1").await.unwrap(),
            Some(swept_by("in_mine"))
        );
    }
);

// PostgreSQL's text columns compare in byte order (migration 0021): a column left in the
// database's locale would be slower, and would meet the others in comparisons with two
// collations, which PostgreSQL refuses.
#[tokio::test]
async fn postgres_text_columns_compare_in_byte_order() {
    use kopek_app::ports::IdSource;
    let url = kopek_testkit::postgres_url();
    let schema = kopek_app::ports::RandomIds.id("collation").to_lowercase();
    kopek_store_postgres::PostgresStore::open_in_schema(&url, Some(&schema))
        .await
        .unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let columns: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT table_name::TEXT, column_name::TEXT, collation_name::TEXT \
         FROM information_schema.columns \
         WHERE table_schema = $1 AND data_type = 'text' AND table_name <> 'kopek_migrations'",
    )
    .bind(&schema)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        columns.len() > 100,
        "the schema's text columns: {columns:?}"
    );
    let in_locale: Vec<_> = columns
        .iter()
        .filter(|(_, _, collation)| collation.as_deref() != Some("C"))
        .collect();
    assert_eq!(in_locale, Vec::<&(String, String, Option<String>)>::new());
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}

fn draft(id: &str, next_action_at: i64) -> Invoice {
    serde_json::from_value(serde_json::json!({
        "id": id, "livemode": false, "created": 1, "customer": "cus_1",
        "status": "draft", "currency": "usd", "collection_method": "send_invoice",
        "billing_reason": "manual", "period_start": 1, "period_end": 1, "lines": [],
        "subtotal": 0, "total": 0, "amount_due": 0, "amount_paid": 0, "amount_remaining": 0,
        "auto_advance": true, "next_action_at": next_action_at,
    }))
    .unwrap()
}

// On SQLite the billing clock finalizes drafts planned from a snapshot too: their due
// scan skips what is in flight and returns each doc as stored, the finalized invoices
// are written only over rows still as read (`update_invoices_unchanged`), and the
// number the plan predicted is read without being taken (`next_invoice_number`).
store_test!(
    drafts_planned_ahead_are_written_only_over_unchanged_rows,
    |kind| async move {
        let (store, a, b) = with_accounts(kind).await;
        let mut tx = store.write().await.unwrap();
        tx.insert_customer(&a, &customer("cus_1", 1, None))
            .await
            .unwrap();
        let drafts: Vec<Invoice> = (1..=3).map(|n| draft(&format!("in_{n}"), 50 + n)).collect();
        tx.insert_invoices(&a, &drafts).await.unwrap();
        tx.commit().await.unwrap();

        let due_ids = |due: Vec<(Scope, Invoice, kopek_app::ports::StoredDoc)>| -> Vec<String> {
            due.into_iter().map(|(_, i, _)| i.id).collect()
        };
        let mut tx = store.read().await.unwrap();
        let all = tx
            .due_drafts_for_update(&Lane::RealTime, 60, 10, &[])
            .await
            .unwrap();
        for (scope, i, doc) in &all {
            assert_eq!(*scope, a);
            assert_eq!(*doc, store.stored_doc(kopek_app::codec::to_doc(i)));
        }
        assert_eq!(due_ids(all), ["in_1", "in_2", "in_3"]);
        let rest = tx
            .due_drafts_for_update(&Lane::RealTime, 60, 10, &["in_2".into()])
            .await
            .unwrap();
        assert_eq!(due_ids(rest), ["in_1", "in_3"]);
        assert_eq!(tx.next_invoice_number(&a).await.unwrap(), 1);
        drop(tx);

        // Changed by someone else after it was read: the batch's update is refused.
        let mut changed = drafts[2].clone();
        changed.description = Some("edited".into());
        let mut tx = store.write().await.unwrap();
        tx.update_invoices(&a, std::slice::from_ref(&changed))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let finalized: Vec<Invoice> = drafts
            .iter()
            .enumerate()
            .map(|(n, i)| Invoice {
                status: InvoiceStatus::Open,
                number: Some(format!("X-{:04}", n + 1)),
                next_action_at: None,
                ..i.clone()
            })
            .collect();
        let docs = |invoices: &[Invoice]| -> Vec<kopek_app::ports::StoredDoc> {
            invoices
                .iter()
                .map(|i| store.stored_doc(kopek_app::codec::to_doc(i)))
                .collect()
        };
        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.take_invoice_numbers(&a, 3).await.unwrap(), 1);
        tx.update_invoices_unchanged(&a, &docs(&drafts), &finalized, &docs(&finalized))
            .await
            .unwrap();
        assert!(tx.changed_since_read().await);
        drop(tx); // rolled back, as the caller must: the numbers too
        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.next_invoice_number(&a).await.unwrap(), 1);
        assert_eq!(
            tx.invoice(&a, "in_1").await.unwrap().as_ref(),
            Some(&drafts[0])
        );
        assert_eq!(tx.invoice(&a, "in_3").await.unwrap(), Some(changed.clone()));
        drop(tx);

        // Read as they are now: written, and no longer due.
        let read = vec![drafts[0].clone(), drafts[1].clone(), changed.clone()];
        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.take_invoice_numbers(&a, 3).await.unwrap(), 1);
        tx.update_invoices_unchanged(&a, &docs(&read), &finalized, &docs(&finalized))
            .await
            .unwrap();
        assert!(!tx.changed_since_read().await);
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        for invoice in &finalized {
            assert_eq!(
                tx.invoice(&a, &invoice.id).await.unwrap().as_ref(),
                Some(invoice)
            );
        }
        assert_eq!(tx.next_invoice_number(&a).await.unwrap(), 4);
        assert_eq!(tx.next_invoice_number(&b).await.unwrap(), 1);
        assert!(tx
            .due_drafts_for_update(&Lane::RealTime, 60, 10, &[])
            .await
            .unwrap()
            .is_empty());
        drop(tx);
        // Another account's rows are never written, even with the same ids.
        let mut tx = store.write().await.unwrap();
        tx.update_invoices_unchanged(&b, &docs(&finalized), &drafts, &docs(&drafts))
            .await
            .unwrap();
        assert!(tx.changed_since_read().await);
    }
);
