// The payments half of the shared SQL (see `tx.rs` beside this file for how it is
// included): payment methods, and the sandbox gateway's record of its charges.

use kopek_app::ports::PaymentsTx;

fn payment_method(row: &DbRow) -> StoreResult<PaymentMethod> {
    decode_doc(row, "payment method")
}

fn sandbox_charge(row: &DbRow) -> StoreResult<SandboxCharge> {
    decode_doc(row, "sandbox charge")
}

fn payment_intent(row: &DbRow) -> StoreResult<PaymentIntent> {
    decode_doc(row, "payment intent")
}

fn charge(row: &DbRow) -> StoreResult<Charge> {
    decode_doc(row, "charge")
}

fn refund(row: &DbRow) -> StoreResult<Refund> {
    decode_doc(row, "refund")
}

fn dispute(row: &DbRow) -> StoreResult<Dispute> {
    decode_doc(row, "dispute")
}

#[async_trait]
impl PaymentsTx for StoreTx {
    async fn insert_payment_method(&mut self, scope: &Scope, pm: &PaymentMethod) -> StoreResult<()> {
        let mut q = Builder::new(
            "INSERT INTO payment_methods (account_id, livemode, id, created, customer, \
             test_clock, next_action_at, doc) ",
        );
        q.push_values([pm], |mut b, pm| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(pm.id.clone())
                .push_bind(pm.created)
                .push_bind(pm.customer.clone())
                .push_bind(pm.test_clock.clone())
                .push_bind(pm.expiry_notice_at())
                .push_bind(encode_doc(pm));
        });
        self.execute(q).await.map(drop)
    }

    async fn update_payment_method(&mut self, scope: &Scope, pm: &PaymentMethod) -> StoreResult<()> {
        let mut q = Builder::new("UPDATE payment_methods SET customer = ");
        q.push_bind(pm.customer.clone())
            .push(", test_clock = ")
            .push_bind(pm.test_clock.clone())
            .push(", next_action_at = ")
            .push_bind(pm.expiry_notice_at())
            .push(", doc = ")
            .push_bind(encode_doc(pm))
            .push(" WHERE account_id = ");
        push_scope(&mut q, scope);
        q.push(" AND id = ").push_bind(pm.id.clone());
        expect_one(self.execute(q).await?, "update payment method")
    }

    async fn payment_method(
        &mut self,
        scope: &Scope,
        id: &str,
        lock: bool,
    ) -> StoreResult<Option<PaymentMethod>> {
        let mut q = scoped("SELECT doc FROM payment_methods WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        if lock {
            q.push(LOCK_ROWS);
        }
        self.fetch_optional(q)
            .await?
            .map(|r| payment_method(&r))
            .transpose()
    }

    async fn payment_methods(
        &mut self,
        scope: &Scope,
        customer: &str,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<PaymentMethod>>> {
        let customer = customer.to_owned();
        let list = ListQuery {
            table: "payment_methods",
            columns: "doc",
            scope,
            page,
            created: TimeRange::default(),
            filter: Box::new(move |q| {
                q.push(" AND customer = ").push_bind(customer);
            }),
        };
        self.list(list, payment_method).await
    }

    async fn due_payment_methods_for_update(
        &mut self,
        lane: &Lane,
        due_by: i64,
        limit: u32,
    ) -> StoreResult<Vec<(Scope, PaymentMethod)>> {
        self.due_for_update("payment_methods", "TRUE", lane, due_by, limit, payment_method)
            .await
    }

    async fn payment_methods_by_ids(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<PaymentMethod>> {
        self.by_ids("payment_methods", "doc", scope, ids, "", payment_method)
            .await
    }

    async fn insert_payment_intents(
        &mut self,
        scope: &Scope,
        intents: &[PaymentIntent],
    ) -> StoreResult<()> {
        for chunk in intents.chunks(ROWS_PER_STATEMENT) {
            let mut q = Builder::new(
                "INSERT INTO payment_intents (account_id, livemode, id, created, customer, \
                 invoice, status, test_clock, doc) ",
            );
            q.push_values(chunk, |mut b, pi| {
                b.push_bind(scope.account_id.clone())
                    .push_bind(scope.livemode)
                    .push_bind(pi.id.clone())
                    .push_bind(pi.created)
                    .push_bind(pi.customer.clone())
                    .push_bind(pi.invoice.clone())
                    .push_bind(pi.status.as_str())
                    .push_bind(pi.test_clock.clone())
                    .push_bind(encode_doc(pi));
            });
            self.execute(q).await?;
        }
        Ok(())
    }

    async fn update_payment_intents(
        &mut self,
        scope: &Scope,
        intents: &[PaymentIntent],
    ) -> StoreResult<()> {
        self.update_rows(
            "payment_intents",
            "status = v.column2, doc = v.column3",
            scope,
            intents,
            |mut b, pi| {
                b.push_bind(pi.id.clone())
                    .push_bind(pi.status.as_str())
                    .push_bind(encode_doc(pi));
            },
        )
        .await
    }

    async fn payment_intents_for_update(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<PaymentIntent>> {
        self.by_ids("payment_intents", "doc", scope, ids, LOCK_ROWS, payment_intent)
            .await
    }

    async fn payment_intent(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<PaymentIntent>> {
        let mut q = scoped("SELECT doc FROM payment_intents WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        self.fetch_optional(q)
            .await?
            .map(|r| payment_intent(&r))
            .transpose()
    }

    async fn payment_intents(
        &mut self,
        scope: &Scope,
        filter: &PaymentIntentFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<PaymentIntent>>> {
        let filter = filter.clone();
        let list = ListQuery {
            table: "payment_intents",
            columns: "doc",
            scope,
            page,
            created: TimeRange::default(),
            filter: Box::new(move |q| {
                if let Some(customer) = filter.customer {
                    q.push(" AND customer = ").push_bind(customer);
                }
            }),
        };
        self.list(list, payment_intent).await
    }

    async fn insert_charges(&mut self, scope: &Scope, charges: &[Charge]) -> StoreResult<()> {
        for chunk in charges.chunks(ROWS_PER_STATEMENT) {
            let mut q = Builder::new(
                "INSERT INTO charges (account_id, livemode, id, created, customer, \
                 payment_intent, invoice, status, test_clock, next_action_at, doc) ",
            );
            q.push_values(chunk, |mut b, c| {
                b.push_bind(scope.account_id.clone())
                    .push_bind(scope.livemode)
                    .push_bind(c.id.clone())
                    .push_bind(c.created)
                    .push_bind(c.customer.clone())
                    .push_bind(c.payment_intent.clone())
                    .push_bind(c.invoice.clone())
                    .push_bind(c.status.as_str())
                    .push_bind(c.test_clock.clone())
                    .push_bind(c.next_action_at)
                    .push_bind(encode_doc(c));
            });
            self.execute(q).await?;
        }
        Ok(())
    }

    async fn update_charges(&mut self, scope: &Scope, charges: &[Charge]) -> StoreResult<()> {
        self.update_rows(
            "charges",
            "status = v.column2, next_action_at = v.column3, doc = v.column4, \
             lease_owner = NULL, lease_expires = NULL",
            scope,
            charges,
            |mut b, c| {
                b.push_bind(c.id.clone())
                    .push_bind(c.status.as_str())
                    .push_bind(c.next_action_at)
                    .push_bind(encode_doc(c));
            },
        )
        .await
    }

    async fn charges_by_ids(
        &mut self,
        scope: &Scope,
        ids: &[String],
        lock: bool,
    ) -> StoreResult<Vec<Charge>> {
        self.by_ids("charges", "doc", scope, ids, if lock { LOCK_ROWS } else { "" }, charge).await
    }

    async fn charge(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Charge>> {
        let mut q = scoped("SELECT doc FROM charges WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        self.fetch_optional(q).await?.map(|r| charge(&r)).transpose()
    }

    async fn charges(
        &mut self,
        scope: &Scope,
        filter: &ChargeFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Charge>>> {
        let filter = filter.clone();
        let list = ListQuery {
            table: "charges",
            columns: "doc",
            scope,
            page,
            created: TimeRange::default(),
            filter: Box::new(move |q| {
                if let Some(customer) = filter.customer {
                    q.push(" AND customer = ").push_bind(customer);
                }
                if let Some(pi) = filter.payment_intent {
                    q.push(" AND payment_intent = ").push_bind(pi);
                }
            }),
        };
        self.list(list, charge).await
    }

    async fn claim_due_charges(&mut self, lane: &Lane, claim: &Claim) -> StoreResult<Vec<Due>> {
        self.claim_due("charges", "TRUE", lane, claim).await
    }

    async fn charges_after(
        &mut self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> StoreResult<(Vec<Charge>, i64)> {
        self.scan_after("charges", scope, after, limit, charge).await
    }

    async fn insert_refund(&mut self, scope: &Scope, r: &Refund) -> StoreResult<()> {
        let mut q = Builder::new(
            "INSERT INTO refunds (account_id, livemode, id, created, charge, payment_intent, \
             status, test_clock, next_action_at, doc) ",
        );
        q.push_values([r], |mut b, r| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(r.id.clone())
                .push_bind(r.created)
                .push_bind(r.charge.clone())
                .push_bind(r.payment_intent.clone())
                .push_bind(r.status.as_str())
                .push_bind(r.test_clock.clone())
                .push_bind(r.next_action_at)
                .push_bind(encode_doc(r));
        });
        self.execute(q).await.map(drop)
    }

    async fn update_refunds(&mut self, scope: &Scope, refunds: &[Refund]) -> StoreResult<()> {
        self.update_rows(
            "refunds",
            "status = v.column2, next_action_at = v.column3, doc = v.column4, \
             lease_owner = NULL, lease_expires = NULL",
            scope,
            refunds,
            |mut b, r| {
                b.push_bind(r.id.clone())
                    .push_bind(r.status.as_str())
                    .push_bind(r.next_action_at)
                    .push_bind(encode_doc(r));
            },
        )
        .await
    }

    async fn refunds_by_ids(
        &mut self,
        scope: &Scope,
        ids: &[String],
        lock: bool,
    ) -> StoreResult<Vec<Refund>> {
        self.by_ids("refunds", "doc", scope, ids, if lock { LOCK_ROWS } else { "" }, refund).await
    }

    async fn refund(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Refund>> {
        let mut q = scoped("SELECT doc FROM refunds WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        self.fetch_optional(q).await?.map(|r| refund(&r)).transpose()
    }

    async fn refunds(
        &mut self,
        scope: &Scope,
        filter: &RefundFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Refund>>> {
        let filter = filter.clone();
        let list = ListQuery {
            table: "refunds",
            columns: "doc",
            scope,
            page,
            created: TimeRange::default(),
            filter: Box::new(move |q| {
                if let Some(charge) = filter.charge {
                    q.push(" AND charge = ").push_bind(charge);
                }
                if let Some(pi) = filter.payment_intent {
                    q.push(" AND payment_intent = ").push_bind(pi);
                }
            }),
        };
        self.list(list, refund).await
    }

    async fn claim_due_refunds(&mut self, lane: &Lane, claim: &Claim) -> StoreResult<Vec<Due>> {
        self.claim_due("refunds", "TRUE", lane, claim).await
    }

    async fn refunds_after(
        &mut self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> StoreResult<(Vec<Refund>, i64)> {
        self.scan_after("refunds", scope, after, limit, refund).await
    }

    async fn insert_disputes(&mut self, scope: &Scope, disputes: &[Dispute]) -> StoreResult<()> {
        for chunk in disputes.chunks(ROWS_PER_STATEMENT) {
            let mut q = Builder::new(
                "INSERT INTO disputes (account_id, livemode, id, created, charge, \
                 payment_intent, gateway_id, status, test_clock, doc) ",
            );
            q.push_values(chunk, |mut b, d| {
                b.push_bind(scope.account_id.clone())
                    .push_bind(scope.livemode)
                    .push_bind(d.id.clone())
                    .push_bind(d.created)
                    .push_bind(d.charge.clone())
                    .push_bind(d.payment_intent.clone())
                    .push_bind(d.gateway_id.clone())
                    .push_bind(d.status.as_str())
                    .push_bind(d.test_clock.clone())
                    .push_bind(encode_doc(d));
            });
            self.execute(q).await?;
        }
        Ok(())
    }

    async fn update_disputes(&mut self, scope: &Scope, disputes: &[Dispute]) -> StoreResult<()> {
        self.update_rows(
            "disputes",
            "status = v.column2, doc = v.column3",
            scope,
            disputes,
            |mut b, d| {
                b.push_bind(d.id.clone())
                    .push_bind(d.status.as_str())
                    .push_bind(encode_doc(d));
            },
        )
        .await
    }

    async fn disputes_for_update(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<Dispute>> {
        self.by_ids("disputes", "doc", scope, ids, LOCK_ROWS, dispute).await
    }

    async fn dispute_by_gateway_id(
        &mut self,
        scope: &Scope,
        gateway_id: &str,
    ) -> StoreResult<Option<Dispute>> {
        let mut q = scoped("SELECT doc FROM disputes WHERE account_id = ", scope);
        q.push(" AND gateway_id = ")
            .push_bind(gateway_id.to_owned())
            .push(LOCK_ROWS);
        self.fetch_optional(q).await?.map(|r| dispute(&r)).transpose()
    }

    async fn disputes(
        &mut self,
        scope: &Scope,
        filter: &DisputeFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Dispute>>> {
        let filter = filter.clone();
        let list = ListQuery {
            table: "disputes",
            columns: "doc",
            scope,
            page,
            created: TimeRange::default(),
            filter: Box::new(move |q| {
                if let Some(charge) = filter.charge {
                    q.push(" AND charge = ").push_bind(charge);
                }
                if let Some(pi) = filter.payment_intent {
                    q.push(" AND payment_intent = ").push_bind(pi);
                }
            }),
        };
        self.list(list, dispute).await
    }

    async fn dispute(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Dispute>> {
        let mut q = scoped("SELECT doc FROM disputes WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        self.fetch_optional(q).await?.map(|r| dispute(&r)).transpose()
    }

    async fn track_gateway_feed(&mut self, scope: &Scope) -> StoreResult<()> {
        let mut q = Builder::new("INSERT INTO gateway_cursors (account_id, livemode, cursor) ");
        q.push_values([scope], |mut b, s| {
            b.push_bind(s.account_id.clone())
                .push_bind(s.livemode)
                .push_bind(0_i64);
        });
        q.push(" ON CONFLICT (account_id, livemode) DO NOTHING");
        self.execute(q).await.map(drop)
    }

    async fn gateway_feed_scopes(&mut self) -> StoreResult<Vec<Scope>> {
        let q = Builder::new("SELECT account_id, livemode FROM gateway_cursors ORDER BY account_id");
        self.fetch_all(q)
            .await?
            .iter()
            .map(|r| {
                Ok(Scope {
                    account_id: get(r, 0)?,
                    livemode: get(r, 1)?,
                })
            })
            .collect()
    }

    async fn gateway_cursor(&mut self, scope: &Scope) -> StoreResult<i64> {
        let q = scoped("SELECT cursor FROM gateway_cursors WHERE account_id = ", scope);
        match self.fetch_optional(q).await? {
            Some(row) => get(&row, 0),
            None => Ok(0),
        }
    }

    async fn put_gateway_cursor(&mut self, scope: &Scope, cursor: i64) -> StoreResult<()> {
        let mut q = Builder::new("INSERT INTO gateway_cursors (account_id, livemode, cursor) ");
        q.push_values([cursor], |mut b, c| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(c);
        });
        q.push(" ON CONFLICT (account_id, livemode) DO UPDATE SET cursor = excluded.cursor");
        self.execute(q).await.map(drop)
    }

    async fn billing_settings(&mut self, scope: &Scope) -> StoreResult<Option<BillingSettings>> {
        let q = scoped("SELECT doc FROM billing_settings WHERE account_id = ", scope);
        self.fetch_optional(q)
            .await?
            .map(|r| decode_doc(&r, "billing settings"))
            .transpose()
    }

    async fn put_billing_settings(
        &mut self,
        scope: &Scope,
        settings: &BillingSettings,
    ) -> StoreResult<()> {
        let mut q = Builder::new("INSERT INTO billing_settings (account_id, livemode, doc) ");
        q.push_values([settings], |mut b, s| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(encode_doc(s));
        });
        q.push(" ON CONFLICT (account_id, livemode) DO UPDATE SET doc = excluded.doc");
        self.execute(q).await.map(drop)
    }

    async fn insert_sandbox_charge(&mut self, charge: &SandboxCharge) -> StoreResult<()> {
        let mut q = Builder::new(
            "INSERT INTO sandbox_charges (account_id, idempotency_key, id, created, doc) ",
        );
        q.push_values([charge], |mut b, c| {
            b.push_bind(c.account_id.clone())
                .push_bind(c.idempotency_key.clone())
                .push_bind(c.id.clone())
                .push_bind(c.created)
                .push_bind(encode_doc(c));
        });
        self.execute(q).await.map(drop)
    }

    async fn sandbox_charge(
        &mut self,
        account_id: &str,
        idempotency_key: &str,
    ) -> StoreResult<Option<SandboxCharge>> {
        let mut q = Builder::new("SELECT doc FROM sandbox_charges WHERE account_id = ");
        q.push_bind(account_id.to_owned())
            .push(" AND idempotency_key = ")
            .push_bind(idempotency_key.to_owned());
        self.fetch_optional(q)
            .await?
            .map(|r| sandbox_charge(&r))
            .transpose()
    }

    async fn sandbox_charges(&mut self, account_id: &str) -> StoreResult<Vec<SandboxCharge>> {
        let mut q = Builder::new("SELECT doc FROM sandbox_charges WHERE account_id = ");
        q.push_bind(account_id.to_owned()).push(" ORDER BY seq");
        self.fetch_all(q)
            .await?
            .iter()
            .map(sandbox_charge)
            .collect()
    }

    async fn insert_sandbox_refund(&mut self, refund: &SandboxRefund) -> StoreResult<()> {
        let mut q = Builder::new(
            "INSERT INTO sandbox_refunds (account_id, idempotency_key, id, created, doc) ",
        );
        q.push_values([refund], |mut b, r| {
            b.push_bind(r.account_id.clone())
                .push_bind(r.idempotency_key.clone())
                .push_bind(r.id.clone())
                .push_bind(r.created)
                .push_bind(encode_doc(r));
        });
        self.execute(q).await.map(drop)
    }

    async fn sandbox_refunds(&mut self, account_id: &str) -> StoreResult<Vec<SandboxRefund>> {
        let mut q = Builder::new("SELECT doc FROM sandbox_refunds WHERE account_id = ");
        q.push_bind(account_id.to_owned()).push(" ORDER BY seq");
        self.fetch_all(q)
            .await?
            .iter()
            .map(|r| decode_doc(r, "sandbox refund"))
            .collect()
    }

    async fn append_sandbox_dispute(
        &mut self,
        account_id: &str,
        dispute: &kopek_app::ports::GatewayDispute,
    ) -> StoreResult<()> {
        let mut q = Builder::new("INSERT INTO sandbox_disputes (account_id, gateway_id, doc) ");
        q.push_values([dispute], |mut b, d| {
            b.push_bind(account_id.to_owned())
                .push_bind(d.gateway_id.clone())
                .push_bind(encode_doc(d));
        });
        self.execute(q).await.map(drop)
    }

    async fn sandbox_disputes_after(
        &mut self,
        account_id: &str,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<(i64, kopek_app::ports::GatewayDispute)>> {
        let mut q = Builder::new("SELECT doc, seq FROM sandbox_disputes WHERE account_id = ");
        q.push_bind(account_id.to_owned())
            .push(" AND seq > ")
            .push_bind(after)
            .push(" ORDER BY seq LIMIT ")
            .push_bind(i64::from(limit));
        self.fetch_all(q)
            .await?
            .iter()
            .map(|r| Ok((get(r, 1)?, decode_doc(r, "sandbox dispute")?)))
            .collect()
    }
}
