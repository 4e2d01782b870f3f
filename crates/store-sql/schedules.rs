// The subscription-schedule part of the shared SQL (see `tx.rs` beside this file for
// how it is included).

use kopek_app::ports::SchedulesTx;

fn schedule(row: &DbRow) -> StoreResult<SubscriptionSchedule> {
    decode_doc(row, "subscription schedule")
}

#[async_trait]
impl SchedulesTx for StoreTx {
    async fn insert_schedule(&mut self, scope: &Scope, s: &SubscriptionSchedule) -> StoreResult<()> {
        let mut q = Builder::new(
            "INSERT INTO subscription_schedules (account_id, livemode, id, created, customer, \
             status, test_clock, next_action_at, doc) ",
        );
        q.push_values([s], |mut b, s| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(s.id.clone())
                .push_bind(s.created)
                .push_bind(s.customer.clone())
                .push_bind(s.status.as_str())
                .push_bind(s.test_clock.clone())
                .push_bind(s.next_action_at)
                .push_bind(encode_doc(s));
        });
        self.execute(q).await.map(drop)
    }

    async fn update_schedules(
        &mut self,
        scope: &Scope,
        schedules: &[SubscriptionSchedule],
    ) -> StoreResult<()> {
        self.update_rows(
            "subscription_schedules",
            "status = v.column2, next_action_at = v.column3, doc = v.column4",
            scope,
            schedules,
            |mut b, row| {
                b.push_bind(row.id.clone())
                    .push_bind(row.status.as_str())
                    .push_bind(row.next_action_at)
                    .push_bind(encode_doc(row));
            },
        )
        .await
    }

    async fn schedule(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> StoreResult<Option<SubscriptionSchedule>> {
        let mut q = scoped(
            "SELECT doc FROM subscription_schedules WHERE account_id = ",
            scope,
        );
        q.push(" AND id = ").push_bind(id.to_owned());
        self.fetch_optional(q).await?.map(|r| schedule(&r)).transpose()
    }

    async fn schedules_for_update(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<SubscriptionSchedule>> {
        self.by_ids("subscription_schedules", "doc", scope, ids, LOCK_ROWS, schedule)
            .await
    }

    async fn schedules(
        &mut self,
        scope: &Scope,
        filter: &ScheduleFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<SubscriptionSchedule>>> {
        let filter = filter.clone();
        let list = ListQuery {
            table: "subscription_schedules",
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
        self.list(list, schedule).await
    }

    async fn due_schedules_for_update(
        &mut self,
        lane: &Lane,
        due_by: i64,
        limit: u32,
    ) -> StoreResult<Vec<(Scope, SubscriptionSchedule)>> {
        self.due_for_update("subscription_schedules", "TRUE", lane, due_by, limit, schedule)
            .await
    }
}
