// The notifications part of the shared SQL (see `tx.rs` beside this file for how it is
// included): customer emails.

use kopek_app::ports::NotificationsTx;

fn notification(row: &DbRow) -> StoreResult<Notification> {
    decode_doc(row, "notification")
}

#[async_trait]
impl NotificationsTx for StoreTx {
    async fn insert_notifications(&mut self, scope: &Scope, notifications: &[Notification]) -> StoreResult<()> {
        for chunk in notifications.chunks(ROWS_PER_STATEMENT) {
            let mut q = Builder::new(
                "INSERT INTO notifications (account_id, livemode, id, created, customer, event, \
                 kind, status, next_action_at, doc) ",
            );
            q.push_values(chunk, |mut b, n| {
                b.push_bind(scope.account_id.clone())
                    .push_bind(scope.livemode)
                    .push_bind(n.id.clone())
                    .push_bind(n.created)
                    .push_bind(n.customer.clone())
                    .push_bind(n.event.clone())
                    .push_bind(n.kind.as_str())
                    .push_bind(n.status.as_str())
                    .push_bind(n.next_attempt_at)
                    .push_bind(encode_doc(n));
            });
            self.execute(q).await?;
        }
        Ok(())
    }

    async fn update_notification(&mut self, scope: &Scope, n: &Notification) -> StoreResult<()> {
        let mut q = Builder::new("UPDATE notifications SET status = ");
        q.push_bind(n.status.as_str())
            .push(", next_action_at = ")
            .push_bind(n.next_attempt_at)
            .push(", doc = ")
            .push_bind(encode_doc(n))
            .push(", lease_owner = NULL, lease_expires = NULL WHERE account_id = ");
        push_scope(&mut q, scope);
        q.push(" AND id = ").push_bind(n.id.clone());
        expect_one(self.execute(q).await?, "update notification")
    }

    async fn claim_due_notifications(&mut self, claim: &Claim) -> StoreResult<Vec<Due>> {
        let mut q = Builder::new(
            "SELECT id FROM notifications WHERE status = 'pending' AND next_action_at <= ",
        );
        q.push_bind(claim.due_by);
        self.lease_candidates("notifications", q, claim).await
    }

    async fn notification(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Notification>> {
        let mut q = scoped("SELECT doc FROM notifications WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        self.fetch_optional(q)
            .await?
            .map(|row| notification(&row))
            .transpose()
    }

    async fn notifications(
        &mut self,
        scope: &Scope,
        customer: &str,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Notification>>> {
        let customer = customer.to_owned();
        let list = ListQuery {
            table: "notifications",
            columns: "doc",
            scope,
            page,
            created: TimeRange::default(),
            filter: Box::new(move |q| {
                q.push(" AND customer = ").push_bind(customer);
            }),
        };
        self.list(list, notification).await
    }
}
