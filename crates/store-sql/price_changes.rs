// The price changes part of the shared SQL (see `tx.rs` beside this file for how it is
// included): price changes and each subscription's part in one.

use kopek_app::ports::PriceChangesTx;

fn price_change(row: &DbRow) -> StoreResult<PriceChange> {
    decode_doc(row, "price change")
}

fn price_change_subscription(row: &DbRow) -> StoreResult<PriceChangeSubscription> {
    decode_doc(row, "price change subscription")
}

#[async_trait]
impl PriceChangesTx for StoreTx {
    async fn insert_price_change(&mut self, scope: &Scope, c: &PriceChange) -> StoreResult<()> {
        let mut q = Builder::new("INSERT INTO price_changes (account_id, livemode, id, created, doc) ");
        q.push_values([c], |mut b, c| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(c.id.clone())
                .push_bind(c.created)
                .push_bind(encode_doc(c));
        });
        self.execute(q).await.map(drop)
    }

    async fn update_price_change(&mut self, scope: &Scope, c: &PriceChange) -> StoreResult<()> {
        let mut q = Builder::new("UPDATE price_changes SET doc = ");
        q.push_bind(encode_doc(c)).push(" WHERE account_id = ");
        push_scope(&mut q, scope);
        q.push(" AND id = ").push_bind(c.id.clone());
        expect_one(self.execute(q).await?, "update price change")
    }

    async fn price_change(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<PriceChange>> {
        let mut q = scoped("SELECT doc FROM price_changes WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        self.fetch_optional(q).await?.map(|r| price_change(&r)).transpose()
    }

    async fn price_change_for_update(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> StoreResult<Option<PriceChange>> {
        let mut q = scoped("SELECT doc FROM price_changes WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned()).push(LOCK_ROWS);
        self.fetch_optional(q).await?.map(|r| price_change(&r)).transpose()
    }

    async fn price_changes(
        &mut self,
        scope: &Scope,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<PriceChange>>> {
        let list = ListQuery {
            table: "price_changes",
            columns: "doc",
            scope,
            page,
            created: TimeRange::default(),
            filter: Box::new(|_| {}),
        };
        self.list(list, price_change).await
    }

    async fn insert_price_change_subscriptions(
        &mut self,
        scope: &Scope,
        entries: &[PriceChangeSubscription],
    ) -> StoreResult<()> {
        for chunk in entries.chunks(ROWS_PER_STATEMENT) {
            let mut q = Builder::new(
                "INSERT INTO price_change_subscriptions (account_id, livemode, id, created, \
                 price_change, subscription, test_clock, next_action_at, doc) ",
            );
            q.push_values(chunk, |mut b, e| {
                b.push_bind(scope.account_id.clone())
                    .push_bind(scope.livemode)
                    .push_bind(e.id.clone())
                    .push_bind(e.created)
                    .push_bind(e.price_change.clone())
                    .push_bind(e.subscription.clone())
                    .push_bind(e.test_clock.clone())
                    .push_bind(e.next_action_at)
                    .push_bind(encode_doc(e));
            });
            self.execute(q).await?;
        }
        Ok(())
    }

    async fn update_price_change_subscriptions(
        &mut self,
        scope: &Scope,
        entries: &[PriceChangeSubscription],
    ) -> StoreResult<()> {
        for e in entries {
            let mut q = Builder::new("UPDATE price_change_subscriptions SET next_action_at = ");
            q.push_bind(e.next_action_at)
                .push(", doc = ")
                .push_bind(encode_doc(e))
                .push(" WHERE account_id = ");
            push_scope(&mut q, scope);
            q.push(" AND id = ").push_bind(e.id.clone());
            expect_one(self.execute(q).await?, "update price change subscription")?;
        }
        Ok(())
    }

    async fn price_change_subscriptions(
        &mut self,
        scope: &Scope,
        price_change: &str,
        lock: bool,
    ) -> StoreResult<Vec<PriceChangeSubscription>> {
        let mut q = scoped("SELECT doc FROM price_change_subscriptions WHERE account_id = ", scope);
        q.push(" AND price_change = ")
            .push_bind(price_change.to_owned())
            .push(" ORDER BY seq");
        if lock {
            q.push(LOCK_ROWS);
        }
        self.fetch_all(q).await?.iter().map(price_change_subscription).collect()
    }

    async fn open_price_change_moves(
        &mut self,
        scope: &Scope,
        subscriptions: &[String],
    ) -> StoreResult<Vec<PriceChangeSubscription>> {
        let mut found = Vec::new();
        for chunk in subscriptions.chunks(ROWS_PER_STATEMENT) {
            let mut q = scoped("SELECT doc FROM price_change_subscriptions WHERE account_id = ", scope);
            q.push(" AND next_action_at IS NOT NULL");
            push_in(&mut q, "subscription", chunk.to_vec());
            for row in self.fetch_all(q).await? {
                found.push(price_change_subscription(&row)?);
            }
        }
        Ok(found)
    }

    async fn due_price_change_subscriptions_for_update(
        &mut self,
        lane: &Lane,
        due_by: i64,
        limit: u32,
    ) -> StoreResult<Vec<(Scope, PriceChangeSubscription)>> {
        self.due_for_update(
            "price_change_subscriptions",
            "TRUE",
            lane,
            due_by,
            limit,
            price_change_subscription,
        )
        .await
    }
}
