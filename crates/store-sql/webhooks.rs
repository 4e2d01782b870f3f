// The webhooks part of the shared SQL (see `tx.rs` beside this file for how it is
// included): endpoints.

use kopek_app::ports::WebhooksTx;

fn webhook_endpoint(row: &DbRow) -> StoreResult<WebhookEndpoint> {
    decode_doc(row, "webhook endpoint")
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
}
