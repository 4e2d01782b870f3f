// The payments half of the shared SQL (see `tx.rs` beside this file for how it is
// included): payment methods, and the sandbox gateway's record of its charges.

use kopek_app::ports::PaymentsTx;

fn payment_method(row: &DbRow) -> StoreResult<PaymentMethod> {
    decode_doc(row, "payment method")
}

fn sandbox_charge(row: &DbRow) -> StoreResult<SandboxCharge> {
    decode_doc(row, "sandbox charge")
}

#[async_trait]
impl PaymentsTx for StoreTx {
    async fn insert_payment_method(&mut self, scope: &Scope, pm: &PaymentMethod) -> StoreResult<()> {
        let mut q = Builder::new(
            "INSERT INTO payment_methods (account_id, livemode, id, created, customer, doc) ",
        );
        q.push_values([pm], |mut b, pm| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(pm.id.clone())
                .push_bind(pm.created)
                .push_bind(pm.customer.clone())
                .push_bind(encode_doc(pm));
        });
        self.execute(q).await.map(drop)
    }

    async fn update_payment_method(&mut self, scope: &Scope, pm: &PaymentMethod) -> StoreResult<()> {
        let mut q = Builder::new("UPDATE payment_methods SET customer = ");
        q.push_bind(pm.customer.clone())
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
}
