// The credits part of the shared SQL (see `tx.rs` beside this file for how it is
// included): credit notes, and customers' balances and their movements.

use kopek_app::ports::CreditsTx;

fn credit_note(row: &DbRow) -> StoreResult<CreditNote> {
    decode_doc(row, "credit note")
}

fn balance_transaction(row: &DbRow) -> StoreResult<BalanceTransaction> {
    decode_doc(row, "balance transaction")
}

fn customer_balance(row: &DbRow) -> StoreResult<CustomerBalance> {
    let currency: Option<String> = get(row, 1)?;
    Ok(CustomerBalance {
        customer: get(row, 0)?,
        currency: currency
            .map(|c| {
                kopek_core::Currency::parse(&c)
                    .map_err(|_| StoreError::Internal(format!("stored currency {c} is unknown")))
            })
            .transpose()?,
        balance: get(row, 2)?,
    })
}

#[async_trait]
impl CreditsTx for StoreTx {
    async fn customer_balances_for_update(
        &mut self,
        scope: &Scope,
        customers: &[String],
    ) -> StoreResult<Vec<CustomerBalance>> {
        let mut found = Vec::new();
        for chunk in customers.chunks(ROWS_PER_STATEMENT) {
            let mut q = scoped(
                "SELECT id, currency, balance FROM customers WHERE account_id = ",
                scope,
            );
            q.push(" AND balance <> 0");
            push_in(&mut q, "id", chunk.to_vec());
            q.push(LOCK_ROWS);
            for row in self.fetch_all(q).await? {
                found.push(customer_balance(&row)?);
            }
        }
        Ok(found)
    }

    async fn move_customer_balances(
        &mut self,
        scope: &Scope,
        moves: &[(String, kopek_core::Currency, i64)],
    ) -> StoreResult<Vec<(String, i64)>> {
        let mut after = Vec::with_capacity(moves.len());
        for chunk in moves.chunks(ROWS_PER_STATEMENT) {
            let mut q = Builder::new(
                "UPDATE customers SET balance = customers.balance + v.column3, \
                 currency = COALESCE(customers.currency, v.column2) FROM (",
            );
            q.push_values(chunk, |mut b, (id, currency, amount)| {
                b.push_bind(id.clone())
                    .push_bind(currency.lowercase())
                    .push_bind(*amount);
            });
            // A balance keeps one currency: a move in another finds no row.
            q.push(
                ") AS v WHERE customers.id = v.column1 \
                 AND (customers.currency IS NULL OR customers.currency = v.column2) \
                 AND customers.account_id = ",
            );
            push_scope(&mut q, scope);
            q.push(" RETURNING customers.id, customers.balance");
            let rows = self.fetch_all(q).await?;
            if rows.len() != chunk.len() {
                return Err(StoreError::Conflict(format!(
                    "{} of {} customers' balances are in another currency",
                    chunk.len() - rows.len(),
                    chunk.len()
                )));
            }
            for row in rows {
                after.push((get(&row, 0)?, get(&row, 1)?));
            }
        }
        Ok(after)
    }

    async fn customer_balances_after(
        &mut self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> StoreResult<(Vec<CustomerBalance>, i64)> {
        let mut q = scoped(
            "SELECT id, currency, balance, seq FROM customers WHERE account_id = ",
            scope,
        );
        q.push(" AND seq > ")
            .push_bind(after)
            .push(" ORDER BY seq LIMIT ")
            .push_bind(i64::from(limit));
        let rows = self.fetch_all(q).await?;
        let last = match rows.last() {
            Some(row) => get(row, 3)?,
            None => after,
        };
        let balances = rows
            .iter()
            .map(customer_balance)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((balances.into_iter().filter(|b| b.balance != 0).collect(), last))
    }

    async fn insert_balance_transactions(
        &mut self,
        scope: &Scope,
        transactions: &[BalanceTransaction],
    ) -> StoreResult<()> {
        for chunk in transactions.chunks(ROWS_PER_STATEMENT) {
            let mut q = Builder::new(
                "INSERT INTO customer_balance_transactions (account_id, livemode, id, created, \
                 customer, test_clock, doc) ",
            );
            q.push_values(chunk, |mut b, t| {
                b.push_bind(scope.account_id.clone())
                    .push_bind(scope.livemode)
                    .push_bind(t.id.clone())
                    .push_bind(t.created)
                    .push_bind(t.customer.clone())
                    .push_bind(t.test_clock.clone())
                    .push_bind(encode_doc(t));
            });
            self.execute(q).await?;
        }
        Ok(())
    }

    async fn update_balance_transaction(
        &mut self,
        scope: &Scope,
        t: &BalanceTransaction,
    ) -> StoreResult<()> {
        let mut q = Builder::new("UPDATE customer_balance_transactions SET doc = ");
        q.push_bind(encode_doc(t)).push(" WHERE account_id = ");
        push_scope(&mut q, scope);
        q.push(" AND id = ").push_bind(t.id.clone());
        expect_one(self.execute(q).await?, "update balance transaction")
    }

    async fn balance_transaction(
        &mut self,
        scope: &Scope,
        customer: &str,
        id: &str,
    ) -> StoreResult<Option<BalanceTransaction>> {
        let mut q = scoped(
            "SELECT doc FROM customer_balance_transactions WHERE account_id = ",
            scope,
        );
        q.push(" AND customer = ")
            .push_bind(customer.to_owned())
            .push(" AND id = ")
            .push_bind(id.to_owned());
        self.fetch_optional(q)
            .await?
            .map(|r| balance_transaction(&r))
            .transpose()
    }

    async fn balance_transactions(
        &mut self,
        scope: &Scope,
        customer: &str,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<BalanceTransaction>>> {
        let customer = customer.to_owned();
        let list = ListQuery {
            table: "customer_balance_transactions",
            columns: "doc",
            scope,
            page,
            created: TimeRange::default(),
            filter: Box::new(move |q| {
                q.push(" AND customer = ").push_bind(customer);
            }),
        };
        self.list(list, balance_transaction).await
    }

    async fn insert_credit_note(&mut self, scope: &Scope, n: &CreditNote) -> StoreResult<()> {
        let mut q = Builder::new(
            "INSERT INTO credit_notes (account_id, livemode, id, created, customer, invoice, \
             test_clock, doc) ",
        );
        q.push_values([n], |mut b, n| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(n.id.clone())
                .push_bind(n.created)
                .push_bind(n.customer.clone())
                .push_bind(n.invoice.clone())
                .push_bind(n.test_clock.clone())
                .push_bind(encode_doc(n));
        });
        self.execute(q).await.map(drop)
    }

    async fn update_credit_note(&mut self, scope: &Scope, n: &CreditNote) -> StoreResult<()> {
        let mut q = Builder::new("UPDATE credit_notes SET doc = ");
        q.push_bind(encode_doc(n)).push(" WHERE account_id = ");
        push_scope(&mut q, scope);
        q.push(" AND id = ").push_bind(n.id.clone());
        expect_one(self.execute(q).await?, "update credit note")
    }

    async fn credit_note(
        &mut self,
        scope: &Scope,
        id: &str,
        lock: bool,
    ) -> StoreResult<Option<CreditNote>> {
        let mut q = scoped("SELECT doc FROM credit_notes WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        if lock {
            q.push(LOCK_ROWS);
        }
        self.fetch_optional(q).await?.map(|r| credit_note(&r)).transpose()
    }

    async fn credit_notes_of_invoice(
        &mut self,
        scope: &Scope,
        invoice: &str,
        limit: u32,
    ) -> StoreResult<Vec<CreditNote>> {
        let mut q = scoped("SELECT doc FROM credit_notes WHERE account_id = ", scope);
        q.push(" AND invoice = ")
            .push_bind(invoice.to_owned())
            .push(" ORDER BY seq LIMIT ")
            .push_bind(i64::from(limit));
        self.fetch_all(q).await?.iter().map(credit_note).collect()
    }

    async fn credit_notes(
        &mut self,
        scope: &Scope,
        filter: &CreditNoteFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<CreditNote>>> {
        let filter = filter.clone();
        let list = ListQuery {
            table: "credit_notes",
            columns: "doc",
            scope,
            page,
            created: filter.created,
            filter: Box::new(move |q| {
                if let Some(customer) = filter.customer {
                    q.push(" AND customer = ").push_bind(customer);
                }
                if let Some(invoice) = filter.invoice {
                    q.push(" AND invoice = ").push_bind(invoice);
                }
            }),
        };
        self.list(list, credit_note).await
    }
}
