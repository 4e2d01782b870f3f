// The webhooks part of the shared SQL (see `tx.rs` beside this file for how it is
// included): endpoints, deliveries and their attempts.

use kopek_app::ports::WebhooksTx;

fn webhook_endpoint(row: &DbRow) -> StoreResult<WebhookEndpoint> {
    decode_doc(row, "webhook endpoint")
}

fn webhook_delivery(row: &DbRow) -> StoreResult<WebhookDelivery> {
    decode_doc(row, "webhook delivery")
}

fn webhook_attempt(row: &DbRow) -> StoreResult<WebhookAttempt> {
    decode_doc(row, "webhook attempt")
}

#[async_trait]
impl WebhooksTx for StoreTx {
    async fn insert_webhook_endpoint(&mut self, scope: &Scope, e: &WebhookEndpoint) -> StoreResult<()> {
        let mut q = Builder::new("INSERT INTO webhook_endpoints (account_id, livemode, id, created, doc) ");
        q.push_values([e], |mut b, e| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(e.id.clone())
                .push_bind(e.created)
                .push_bind(encode_doc(e));
        });
        self.execute(q).await.map(drop)
    }

    async fn update_webhook_endpoint(&mut self, scope: &Scope, e: &WebhookEndpoint) -> StoreResult<()> {
        let mut q = Builder::new("UPDATE webhook_endpoints SET doc = ");
        q.push_bind(encode_doc(e)).push(" WHERE account_id = ");
        push_scope(&mut q, scope);
        q.push(" AND id = ").push_bind(e.id.clone());
        expect_one(self.execute(q).await?, "update webhook endpoint")
    }

    async fn delete_webhook_endpoint(&mut self, scope: &Scope, id: &str) -> StoreResult<()> {
        let mut q = scoped("DELETE FROM webhook_endpoints WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        expect_one(self.execute(q).await?, "delete webhook endpoint")
    }

    async fn webhook_endpoint(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<WebhookEndpoint>> {
        let mut q = scoped("SELECT doc FROM webhook_endpoints WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        self.fetch_optional(q)
            .await?
            .map(|row| webhook_endpoint(&row))
            .transpose()
    }

    async fn webhook_endpoints(
        &mut self,
        scope: &Scope,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<WebhookEndpoint>>> {
        let list = ListQuery {
            table: "webhook_endpoints",
            columns: "doc",
            scope,
            page,
            created: TimeRange::default(),
            filter: Box::new(|_| {}),
        };
        self.list(list, webhook_endpoint).await
    }

    async fn all_webhook_endpoints(&mut self, scope: &Scope) -> StoreResult<Vec<WebhookEndpoint>> {
        let mut q = scoped("SELECT doc FROM webhook_endpoints WHERE account_id = ", scope);
        q.push(" ORDER BY seq");
        self.fetch_all(q).await?.iter().map(webhook_endpoint).collect()
    }

    async fn webhook_endpoint_for_update(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        let mut q = scoped("SELECT doc FROM webhook_endpoints WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned()).push(LOCK_ROWS);
        self.fetch_optional(q)
            .await?
            .map(|row| webhook_endpoint(&row))
            .transpose()
    }

    async fn insert_webhook_deliveries(
        &mut self,
        scope: &Scope,
        deliveries: &[WebhookDelivery],
    ) -> StoreResult<()> {
        for chunk in deliveries.chunks(ROWS_PER_STATEMENT) {
            let mut q = Builder::new(
                "INSERT INTO webhook_deliveries (account_id, livemode, id, created, endpoint, \
                 event, status, test_clock, next_action_at, doc) ",
            );
            q.push_values(chunk, |mut b, d| {
                b.push_bind(scope.account_id.clone())
                    .push_bind(scope.livemode)
                    .push_bind(d.id.clone())
                    .push_bind(d.created)
                    .push_bind(d.endpoint.clone())
                    .push_bind(d.event.clone())
                    .push_bind(d.status.as_str())
                    .push_bind(d.test_clock.clone())
                    .push_bind(d.next_attempt_at)
                    .push_bind(encode_doc(d));
            });
            self.execute(q).await?;
        }
        Ok(())
    }

    async fn update_webhook_delivery(
        &mut self,
        scope: &Scope,
        d: &WebhookDelivery,
    ) -> StoreResult<()> {
        let mut q = Builder::new("UPDATE webhook_deliveries SET status = ");
        q.push_bind(d.status.as_str())
            .push(", next_action_at = ")
            .push_bind(d.next_attempt_at)
            .push(", doc = ")
            .push_bind(encode_doc(d))
            .push(", lease_owner = NULL, lease_expires = NULL WHERE account_id = ");
        push_scope(&mut q, scope);
        q.push(" AND id = ").push_bind(d.id.clone());
        expect_one(self.execute(q).await?, "update webhook delivery")
    }

    async fn claim_due_webhook_deliveries(&mut self, claim: &Claim) -> StoreResult<Vec<Due>> {
        // A delivery on a test clock is due by the clock's time (or by real time once the
        // clock is deleted).
        let mut q = Builder::new(
            "SELECT id FROM webhook_deliveries d WHERE status = 'pending' AND next_action_at \
             <= COALESCE((SELECT frozen_time FROM test_clocks c WHERE c.id = d.test_clock), ",
        );
        q.push_bind(claim.due_by).push(")");
        self.lease_candidates("webhook_deliveries", q, claim).await
    }

    async fn webhook_delivery(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> StoreResult<Option<WebhookDelivery>> {
        let mut q = scoped("SELECT doc FROM webhook_deliveries WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        self.fetch_optional(q)
            .await?
            .map(|row| webhook_delivery(&row))
            .transpose()
    }

    async fn webhook_deliveries(
        &mut self,
        scope: &Scope,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<WebhookDelivery>>> {
        let filter = filter.clone();
        let list = ListQuery {
            table: "webhook_deliveries",
            columns: "doc",
            scope,
            page,
            created: filter.created,
            filter: Box::new(move |q| {
                if let Some(endpoint) = filter.endpoint {
                    q.push(" AND endpoint = ").push_bind(endpoint);
                }
                if let Some(event) = filter.event {
                    q.push(" AND event = ").push_bind(event);
                }
                if let Some(status) = filter.status {
                    q.push(" AND status = ").push_bind(status.as_str());
                }
            }),
        };
        self.list(list, webhook_delivery).await
    }

    async fn insert_webhook_attempt(
        &mut self,
        scope: &Scope,
        a: &WebhookAttempt,
    ) -> StoreResult<()> {
        let mut q = Builder::new(
            "INSERT INTO webhook_attempts (account_id, livemode, id, created, delivery, doc) ",
        );
        q.push_values([a], |mut b, a| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(a.id.clone())
                .push_bind(a.created)
                .push_bind(a.delivery.clone())
                .push_bind(encode_doc(a));
        });
        self.execute(q).await.map(drop)
    }

    async fn webhook_attempts(
        &mut self,
        scope: &Scope,
        delivery: &str,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<WebhookAttempt>>> {
        let delivery = delivery.to_owned();
        let list = ListQuery {
            table: "webhook_attempts",
            columns: "doc",
            scope,
            page,
            created: TimeRange::default(),
            filter: Box::new(move |q| {
                q.push(" AND delivery = ").push_bind(delivery);
            }),
        };
        self.list(list, webhook_attempt).await
    }
}
