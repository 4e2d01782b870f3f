// The billing half of the shared SQL (see `tx.rs` beside this file for how it is
// included). Besides `Db`, `DbRow` and `StoreTx`, the including module supplies the
// places where the dialects differ: `LOCK_ROWS` (row locks for a read-modify-write),
// `SKIP_LOCKED` (claiming due work without waiting on another worker's rows), `NO_INDEX`
// (an operand's prefix that keeps the planner from indexing it), and `stored_doc`,
// `bound`, `doc_at` and `stored_at`: how the tables a billing run writes by the thousand
// (subscriptions, invoices, invoice items, ledger entries, events) store their docs.

use kopek_app::ports::BillingTx;

fn decode_doc<T: codec::Doc>(row: &DbRow, what: &str) -> StoreResult<T> {
    codec::from_doc(&doc_at(row, 0)?, what)
}

fn encode_doc<T: codec::Doc>(value: &T) -> String {
    codec::to_doc(value)
}

/// `value`'s doc as bound into a table that stores docs as `stored_doc` makes them.
fn doc_bind<T: codec::Doc>(value: &T) -> DocBind {
    bound(stored_doc(encode_doc(value)))
}

type Values<'a> = sqlx::query_builder::Separated<'a, 'static, Db, &'static str>;

/// What an update of subscriptions sets, from the values `push_subscription` binds after
/// the id.
const SUBSCRIPTION_SET: &str = "status = v.column2, next_action_at = v.column3, doc = v.column4";

fn push_subscription(b: &mut Values<'_>, row: &Subscription, doc: DocBind) {
    b.push_bind(row.id.clone())
        .push_bind(row.status.as_str())
        .push_bind(row.next_action_at)
        .push_bind(doc);
}

const INVOICE_ITEM_SET: &str = "invoice = v.column2, deleted = v.column3, doc = v.column4";

/// What writing an invoice back sets; it releases any lease on it too.
const INVOICE_SET: &str = "status = v.column2, number = v.column3, next_action_at = v.column4, \
     doc = v.column5, lease_owner = NULL, lease_expires = NULL";

fn push_invoice(b: &mut Values<'_>, row: &Invoice, doc: DocBind) {
    b.push_bind(row.id.clone())
        .push_bind(row.status.as_str())
        .push_bind(row.number.clone())
        .push_bind(row.next_action_at)
        .push_bind(doc);
}

fn push_invoice_item(b: &mut Values<'_>, row: &InvoiceItem, doc: DocBind) {
    b.push_bind(row.id.clone())
        .push_bind(row.invoice.clone())
        .push_bind(row.deleted)
        .push_bind(doc);
}

/// `(doc as read, new record, its doc)` rows for `update_rows_unchanged`, or an error if
/// the lists do not pair up.
fn unchanged_rows<'a, T>(
    before_docs: &'a [StoredDoc],
    after: &'a [T],
    after_docs: &'a [StoredDoc],
) -> StoreResult<Vec<(&'a StoredDoc, &'a T, &'a StoredDoc)>> {
    if before_docs.len() != after.len() || after_docs.len() != after.len() {
        return Err(StoreError::Internal(
            "each updated row needs its doc as read and its new doc".into(),
        ));
    }
    Ok(before_docs
        .iter()
        .zip(after)
        .zip(after_docs)
        .map(|((before, row), doc)| (before, row, doc))
        .collect())
}

/// `UPDATE table SET set FROM (VALUES …) AS v WHERE table.id = v.column1 AND` then
/// `condition`, which ends in the comparison the scope is bound to; `push` binds a row's
/// id first, then the values `set` names as `v.column2`…
fn update_from_values<R>(
    table: &str,
    set: &str,
    condition: &str,
    scope: &Scope,
    rows: &[R],
    push: impl FnMut(Values<'_>, &R),
) -> Builder {
    let mut q = Builder::new(format!("{BULK_UPDATE} {table} SET {set} FROM ("));
    q.push_values(rows, push);
    q.push(format!(") AS v WHERE {table}.id = v.column1 AND {condition}"));
    push_scope(&mut q, scope);
    q
}

fn subscription(row: &DbRow) -> StoreResult<Subscription> {
    decode_doc(row, "subscription")
}

fn invoice(row: &DbRow) -> StoreResult<Invoice> {
    decode_doc(row, "invoice")
}

fn invoice_item(row: &DbRow) -> StoreResult<InvoiceItem> {
    decode_doc(row, "invoice item")
}

fn test_clock(row: &DbRow) -> StoreResult<TestClock> {
    decode_doc(row, "test clock")
}

fn ledger_entry(row: &DbRow) -> StoreResult<LedgerEntry> {
    decode_doc(row, "ledger entry")
}

fn push_lane(q: &mut Builder, lane: &Lane) {
    match lane {
        Lane::RealTime => {
            q.push(" AND test_clock IS NULL");
        }
        Lane::Clock { scope, clock } => {
            q.push(" AND account_id = ");
            push_scope(q, scope);
            q.push(" AND test_clock = ").push_bind(clock.clone());
        }
    }
}

impl StoreTx {
    /// The rows `query` selects, each decoded as it arrives: the database finds the next
    /// rows while this thread decodes the last.
    async fn fetch_decoded<T>(
        &mut self,
        mut query: Builder,
        decode: impl Fn(&DbRow) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        use futures_util::TryStreamExt;
        let mut rows = query.build().fetch(self.conn().await?);
        let mut decoded = Vec::new();
        while let Some(row) = rows.try_next().await.map_err(internal)? {
            decoded.push(decode(&row)?);
        }
        Ok(decoded)
    }

    async fn fetch_all(&mut self, mut query: Builder) -> StoreResult<Vec<DbRow>> {
        query
            .build()
            .fetch_all(self.conn().await?)
            .await
            .map_err(internal)
    }

    /// The rows of `table` with these ids in the scope, `columns` decoded by `decode`.
    /// `rest` ends each statement: a further condition, [`LOCK_ROWS`] to lock the rows
    /// for the transaction, or nothing.
    async fn by_ids<T>(
        &mut self,
        table: &str,
        columns: &str,
        scope: &Scope,
        ids: &[String],
        rest: &str,
        decode: fn(&DbRow) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let mut q = scoped(
                &format!("SELECT {columns} FROM {table} WHERE account_id = "),
                scope,
            );
            push_in(&mut q, "id", chunk.to_vec());
            q.push(rest);
            found.extend(self.fetch_decoded(q, decode).await?);
        }
        Ok(found)
    }

    /// Leases up to `limit` due rows of `table` to `owner`. The candidate rows are
    /// selected first (skipping rows another transaction has locked, where the store can),
    /// then leased only if still unleased, so two workers never hold the same row.
    async fn claim_due(
        &mut self,
        table: &str,
        condition: &str,
        lane: &Lane,
        claim: &Claim,
    ) -> StoreResult<Vec<Due>> {
        let mut q = Builder::new(format!(
            "SELECT id FROM {table} WHERE {condition} AND next_action_at <= "
        ));
        q.push_bind(claim.due_by);
        push_lane(&mut q, lane);
        self.lease_candidates(table, q, claim).await
    }

    /// Leases the rows `candidates` (a `SELECT id FROM table WHERE …` without its end)
    /// selects that no live lease holds, as [`StoreTx::claim_due`] does.
    async fn lease_candidates(
        &mut self,
        table: &str,
        mut q: Builder,
        claim: &Claim,
    ) -> StoreResult<Vec<Due>> {
        q.push(" AND (lease_expires IS NULL OR lease_expires < ")
            .push_bind(claim.lease_now)
            .push(") ORDER BY next_action_at LIMIT ")
            .push_bind(i64::from(claim.limit))
            .push(SKIP_LOCKED);
        let ids: Vec<String> = self
            .fetch_all(q)
            .await?
            .iter()
            .map(|r| get(r, 0))
            .collect::<StoreResult<_>>()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Builder::new(format!("UPDATE {table} SET lease_owner = "));
        q.push_bind(claim.owner.clone())
            .push(", lease_expires = ")
            .push_bind(claim.lease_until)
            .push(" WHERE (lease_expires IS NULL OR lease_expires < ")
            .push_bind(claim.lease_now)
            .push(")");
        push_in(&mut q, "id", ids);
        q.push(" RETURNING account_id, livemode, id, next_action_at");
        let mut due = self
            .fetch_all(q)
            .await?
            .iter()
            .map(|r| {
                Ok(Due {
                    scope: Scope {
                        account_id: get(r, 0)?,
                        livemode: get(r, 1)?,
                    },
                    id: get(r, 2)?,
                    next_action_at: get(r, 3)?,
                })
            })
            .collect::<StoreResult<Vec<Due>>>()?;
        due.sort_by(|a, b| (a.next_action_at, &a.id).cmp(&(b.next_action_at, &b.id)));
        Ok(due)
    }

    /// Up to `limit` rows of `table` due by `due_by` in `lane` that match `condition`,
    /// oldest due first, locked for this transaction (rows another transaction holds
    /// are skipped; SQLite's one writer needs no locks), with the scope of each.
    async fn insert_subscription_prices(&mut self, s: &Subscription) -> StoreResult<()> {
        let mut prices: Vec<&String> = s.items.iter().map(|i| &i.price).collect();
        prices.sort();
        prices.dedup();
        let mut q = Builder::new("INSERT INTO subscription_prices (subscription, price) ");
        q.push_values(prices, |mut b, price| {
            b.push_bind(s.id.clone()).push_bind(price.clone());
        });
        self.execute(q).await.map(drop)
    }

    async fn due_for_update<T>(
        &mut self,
        table: &str,
        condition: &str,
        lane: &Lane,
        due_by: i64,
        limit: u32,
        decode: fn(&DbRow) -> StoreResult<T>,
    ) -> StoreResult<Vec<(Scope, T)>> {
        self.due_for_update_skipping(table, condition, lane, due_by, limit, &[], decode)
            .await
    }

    /// As `due_for_update`, leaving out the rows `skipping` names.
    #[allow(clippy::too_many_arguments)]
    async fn due_for_update_skipping<T>(
        &mut self,
        table: &str,
        condition: &str,
        lane: &Lane,
        due_by: i64,
        limit: u32,
        skipping: &[String],
        decode: fn(&DbRow) -> StoreResult<T>,
    ) -> StoreResult<Vec<(Scope, T)>> {
        let mut q = Builder::new(format!(
            "SELECT doc, account_id, livemode FROM {table} WHERE {condition} AND next_action_at <= "
        ));
        q.push_bind(due_by);
        push_lane(&mut q, lane);
        if !skipping.is_empty() {
            q.push(" AND id NOT IN (");
            let mut ids = q.separated(", ");
            for id in skipping {
                ids.push_bind(id.clone());
            }
            q.push(")");
        }
        q.push(" ORDER BY next_action_at, seq LIMIT ")
            .push_bind(i64::from(limit))
            .push(SKIP_LOCKED);
        self.fetch_decoded(q, |r| {
            let scope = Scope {
                account_id: get(r, 1)?,
                livemode: get(r, 2)?,
            };
            Ok((scope, decode(r)?))
        })
        .await
    }

    /// Updates `rows` in the scope (`update_from_values`, in chunks), written behind:
    /// every row must exist there.
    async fn update_rows<T>(
        &mut self,
        table: &str,
        set: &str,
        scope: &Scope,
        rows: &[T],
        push: impl Fn(Values<'_>, &T),
    ) -> StoreResult<()> {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let condition = format!("{table}.account_id = ");
            let q = update_from_values(table, set, &condition, scope, chunk, &push);
            self.write_behind(q, Rows::Exactly(chunk.len() as u64), &format!("update {table}"))
                .await;
        }
        Ok(())
    }

    /// As `update_rows`, over rows whose stored doc is still the one given: each row is
    /// `(doc as read, new record, its doc)`, the doc as read bound last as `unchanged`
    /// (`v.columnN`). Written behind: a row not as read fails the transaction with
    /// `StoreError::Changed`.
    async fn update_rows_unchanged<T>(
        &mut self,
        table: &str,
        set: &str,
        unchanged: &str,
        scope: &Scope,
        rows: &[(&StoredDoc, &T, &StoredDoc)],
        push: fn(&mut Values<'_>, &T, DocBind),
    ) -> StoreResult<()> {
        // The account and the doc as read are compared as expressions, which no index
        // serves: given an index on the account, or one it could build on the values'
        // docs, SQLite's planner would rather scan the whole scope and probe the values
        // for each row than look each value's id up.
        let condition = format!(
            "{table}.doc = {NO_INDEX}{unchanged} AND {table}.account_id || '' = "
        );
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let q = update_from_values(table, set, &condition, scope, chunk, |mut b, row| {
                let (before, after, doc) = row;
                push(&mut b, after, bound((*doc).clone()));
                b.push_bind(bound((*before).clone()));
            });
            let rows = Rows::Unchanged(chunk.len() as u64);
            self.write_behind(q, rows, &format!("checked update of {table}"))
                .await;
        }
        Ok(())
    }

    async fn scan_after<T>(
        &mut self,
        table: &str,
        scope: &Scope,
        after: i64,
        limit: u32,
        decode: fn(&DbRow) -> StoreResult<T>,
    ) -> StoreResult<(Vec<T>, i64)> {
        let mut q = scoped(
            &format!("SELECT doc, seq FROM {table} WHERE account_id = "),
            scope,
        );
        q.push(" AND seq > ")
            .push_bind(after)
            .push(" ORDER BY seq LIMIT ")
            .push_bind(i64::from(limit));
        let rows = self.fetch_all(q).await?;
        let last = match rows.last() {
            Some(row) => get(row, 1)?,
            None => after,
        };
        let items = rows.iter().map(decode).collect::<StoreResult<Vec<T>>>()?;
        Ok((items, last))
    }
}

#[async_trait]
impl BillingTx for StoreTx {
    async fn prices_by_ids(&mut self, scope: &Scope, ids: &[String]) -> StoreResult<Vec<Price>> {
        self.by_ids("prices", PRICE_COLUMNS, scope, ids, "", price)
            .await
    }

    async fn customers_by_ids(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<Customer>> {
        self.by_ids("customers", CUSTOMER_COLUMNS, scope, ids, "", customer)
            .await
    }

    async fn mailable_customers(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<Customer>> {
        // Billing runs finalize invoices by the thousand: customers without an address
        // are not worth decoding.
        let mailable = " AND email IS NOT NULL AND deleted = FALSE";
        self.by_ids("customers", CUSTOMER_COLUMNS, scope, ids, mailable, customer)
            .await
    }

    async fn customers_for_update(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<Customer>> {
        self.by_ids("customers", CUSTOMER_COLUMNS, scope, ids, LOCK_ROWS, customer)
            .await
    }

    async fn insert_test_clock(&mut self, scope: &Scope, c: &TestClock) -> StoreResult<()> {
        let mut q = Builder::new(
            "INSERT INTO test_clocks (account_id, livemode, id, created, status, frozen_time, doc) ",
        );
        q.push_values([c], |mut b, c| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(c.id.clone())
                .push_bind(c.created)
                .push_bind(c.status.as_str())
                .push_bind(c.frozen_time)
                .push_bind(encode_doc(c));
        });
        self.execute(q).await.map(drop)
    }

    async fn update_test_clock(&mut self, scope: &Scope, c: &TestClock) -> StoreResult<()> {
        let mut q = Builder::new("UPDATE test_clocks SET status = ");
        q.push_bind(c.status.as_str())
            .push(", frozen_time = ")
            .push_bind(c.frozen_time)
            .push(", doc = ")
            .push_bind(encode_doc(c))
            .push(", lease_owner = NULL, lease_expires = NULL WHERE account_id = ");
        push_scope(&mut q, scope);
        q.push(" AND id = ").push_bind(c.id.clone());
        expect_one(self.execute(q).await?, "update test clock")
    }

    async fn test_clock(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<TestClock>> {
        let mut q = scoped("SELECT doc FROM test_clocks WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        self.fetch_optional(q).await?.map(|r| test_clock(&r)).transpose()
    }

    async fn test_clocks(
        &mut self,
        scope: &Scope,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<TestClock>>> {
        let list = ListQuery {
            table: "test_clocks",
            columns: "doc",
            scope,
            page,
            created: TimeRange::default(),
            filter: Box::new(|_| {}),
        };
        self.list(list, test_clock).await
    }

    async fn delete_test_clock(&mut self, scope: &Scope, id: &str) -> StoreResult<()> {
        // Children first; item prices go with their subscriptions (ON DELETE CASCADE).
        let mut q = scoped("DELETE FROM payment_methods WHERE account_id = ", scope);
        q.push(" AND customer IN (SELECT id FROM customers WHERE test_clock = ")
            .push_bind(id.to_owned())
            .push(")");
        self.execute(q).await?;
        // Ledger lines have no foreign key to their entry (PostgreSQL's migration 0008,
        // SQLite's 0023), so they go first, by hand.
        let mut q = scoped("DELETE FROM ledger_lines WHERE account_id = ", scope);
        q.push(" AND entry_id IN (SELECT id FROM ledger_entries WHERE test_clock = ")
            .push_bind(id.to_owned())
            .push(")");
        self.execute(q).await?;
        for table in [
            "customer_balance_transactions",
            "credit_notes",
            "ledger_entries",
            "disputes",
            "refunds",
            "charges",
            "payment_intents",
            "invoice_items",
            "invoices",
            "subscription_schedules",
            "subscriptions",
            "customers",
        ] {
            let mut q = scoped(&format!("DELETE FROM {table} WHERE account_id = "), scope);
            q.push(" AND test_clock = ").push_bind(id.to_owned());
            self.execute(q).await?;
        }
        let mut q = scoped("DELETE FROM test_clocks WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        expect_one(self.execute(q).await?, "delete test clock")
    }

    async fn claim_busy_clocks(
        &mut self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> StoreResult<Vec<(Scope, TestClock)>> {
        let mut q = Builder::new(
            "SELECT id FROM test_clocks WHERE (status = 'advancing' OR wake_at IS NOT NULL)",
        );
        q.push(" AND (lease_expires IS NULL OR lease_expires < ")
            .push_bind(now)
            .push(") ORDER BY seq LIMIT ")
            .push_bind(i64::from(limit))
            .push(SKIP_LOCKED);
        let ids: Vec<String> = self
            .fetch_all(q)
            .await?
            .iter()
            .map(|r| get(r, 0))
            .collect::<StoreResult<_>>()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Builder::new("UPDATE test_clocks SET lease_owner = ");
        q.push_bind(owner.to_owned())
            .push(", lease_expires = ")
            .push_bind(lease_until)
            .push(" WHERE (lease_expires IS NULL OR lease_expires < ")
            .push_bind(now)
            .push(")");
        push_in(&mut q, "id", ids);
        q.push(" RETURNING doc, account_id, livemode");
        self.fetch_all(q)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    Scope {
                        account_id: get(r, 1)?,
                        livemode: get(r, 2)?,
                    },
                    test_clock(r)?,
                ))
            })
            .collect()
    }

    async fn busy_clock_count(&mut self) -> StoreResult<u64> {
        let q = Builder::new(
            "SELECT COUNT(*) FROM test_clocks WHERE status = 'advancing' OR wake_at IS NOT NULL",
        );
        let row = self.fetch_optional(q).await?;
        Ok(row.map(|r| get::<i64>(&r, 0)).transpose()?.unwrap_or(0) as u64)
    }

    async fn wake_test_clock(&mut self, scope: &Scope, id: &str, at: i64) -> StoreResult<()> {
        let mut q = Builder::new("UPDATE test_clocks SET wake_at = COALESCE(wake_at, ");
        q.push_bind(at).push(") WHERE account_id = ");
        push_scope(&mut q, scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        self.execute(q).await.map(drop)
    }

    async fn settle_test_clock_wake(
        &mut self,
        scope: &Scope,
        id: &str,
        upto: i64,
    ) -> StoreResult<()> {
        let mut q = scoped("UPDATE test_clocks SET wake_at = NULL WHERE account_id = ", scope);
        q.push(" AND id = ")
            .push_bind(id.to_owned())
            .push(" AND wake_at <= ")
            .push_bind(upto);
        self.execute(q).await.map(drop)
    }

    async fn insert_subscription(&mut self, scope: &Scope, s: &Subscription) -> StoreResult<()> {
        let mut q = Builder::new(
            "INSERT INTO subscriptions (account_id, livemode, id, created, customer, status, \
             test_clock, next_action_at, doc) ",
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
                .push_bind(doc_bind(s));
        });
        self.execute(q).await?;
        self.insert_subscription_prices(s).await
    }

    async fn update_subscription_prices(
        &mut self,
        scope: &Scope,
        s: &Subscription,
    ) -> StoreResult<()> {
        // The subscription is the caller's (checked in its scope) before its rows go.
        let mut q = scoped("SELECT id FROM subscriptions WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(s.id.clone());
        if self.fetch_optional(q).await?.is_none() {
            return Err(StoreError::Internal(format!("{} is missing", s.id)));
        }
        let mut q = Builder::new("DELETE FROM subscription_prices WHERE subscription = ");
        q.push_bind(s.id.clone());
        self.execute(q).await?;
        self.insert_subscription_prices(s).await
    }

    async fn update_subscriptions(
        &mut self,
        scope: &Scope,
        subs: &[Subscription],
    ) -> StoreResult<()> {
        self.update_rows("subscriptions", SUBSCRIPTION_SET, scope, subs, |mut b, row| {
            push_subscription(&mut b, row, doc_bind(row))
        })
        .await
    }

    async fn update_subscriptions_unchanged(
        &mut self,
        scope: &Scope,
        before_docs: &[StoredDoc],
        after: &[Subscription],
        after_docs: &[StoredDoc],
    ) -> StoreResult<()> {
        let rows = unchanged_rows(before_docs, after, after_docs)?;
        self.update_rows_unchanged(
            "subscriptions",
            SUBSCRIPTION_SET,
            "v.column5",
            scope,
            &rows,
            push_subscription,
        )
        .await
    }

    async fn subscription(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Subscription>> {
        let mut q = scoped("SELECT doc FROM subscriptions WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        self.fetch_optional(q).await?.map(|r| subscription(&r)).transpose()
    }

    async fn subscriptions_for_update(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<Subscription>> {
        self.by_ids("subscriptions", "doc", scope, ids, LOCK_ROWS, subscription).await
    }

    async fn subscriptions(
        &mut self,
        scope: &Scope,
        filter: &SubscriptionFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Subscription>>> {
        let filter = filter.clone();
        let list = ListQuery {
            table: "subscriptions",
            columns: "doc",
            scope,
            page,
            created: filter.created,
            filter: Box::new(move |q| {
                if let Some(customer) = filter.customer {
                    q.push(" AND customer = ").push_bind(customer);
                }
                if let Some(clock) = filter.test_clock {
                    q.push(" AND test_clock = ").push_bind(clock);
                }
                if let Some(price) = filter.price {
                    q.push(" AND id IN (SELECT subscription FROM subscription_prices WHERE price = ")
                        .push_bind(price)
                        .push(")");
                }
                match filter.statuses {
                    None => {
                        q.push(" AND status <> 'canceled'");
                    }
                    Some(statuses) => push_in(
                        q,
                        "status",
                        statuses.iter().map(|s| s.as_str().to_owned()).collect(),
                    ),
                }
            }),
        };
        self.list(list, subscription).await
    }

    async fn insert_invoices(&mut self, scope: &Scope, invoices: &[Invoice]) -> StoreResult<()> {
        let docs: Vec<StoredDoc> = invoices.iter().map(|i| stored_doc(encode_doc(i))).collect();
        self.insert_encoded_invoices(scope, invoices, &docs).await
    }

    async fn insert_encoded_invoices(
        &mut self,
        scope: &Scope,
        invoices: &[Invoice],
        docs: &[StoredDoc],
    ) -> StoreResult<()> {
        if docs.len() != invoices.len() {
            return Err(StoreError::Internal("each invoice needs its doc".into()));
        }
        let rows: Vec<(&Invoice, &StoredDoc)> = invoices.iter().zip(docs).collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut q = Builder::new(format!(
                "{BULK_INSERT} invoices (account_id, livemode, id, created, customer, subscription, \
                 status, number, billing_reason, period_start, collection_method, test_clock, \
                 next_action_at, doc) ",
            ));
            q.push_values(chunk, |mut b, (i, doc)| {
                b.push_bind(scope.account_id.clone())
                    .push_bind(scope.livemode)
                    .push_bind(i.id.clone())
                    .push_bind(i.created)
                    .push_bind(i.customer.clone())
                    .push_bind(i.subscription.clone())
                    .push_bind(i.status.as_str())
                    .push_bind(i.number.clone())
                    .push_bind(i.billing_reason.as_str())
                    .push_bind(i.period_start)
                    .push_bind(i.collection_method.as_str())
                    .push_bind(i.test_clock.clone())
                    .push_bind(i.next_action_at)
                    .push_bind(bound((*doc).clone()));
            });
            self.write_behind(q, Rows::Any, "insert invoices").await;
        }
        Ok(())
    }

    async fn update_invoices(&mut self, scope: &Scope, invoices: &[Invoice]) -> StoreResult<()> {
        self.update_rows("invoices", INVOICE_SET, scope, invoices, |mut b, row| {
            push_invoice(&mut b, row, doc_bind(row))
        })
        .await
    }

    async fn update_invoices_unchanged(
        &mut self,
        scope: &Scope,
        before_docs: &[StoredDoc],
        after: &[Invoice],
        after_docs: &[StoredDoc],
    ) -> StoreResult<()> {
        let rows = unchanged_rows(before_docs, after, after_docs)?;
        self.update_rows_unchanged("invoices", INVOICE_SET, "v.column6", scope, &rows, push_invoice)
            .await
    }

    async fn invoice(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Invoice>> {
        let mut q = scoped("SELECT doc FROM invoices WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        self.fetch_optional(q).await?.map(|r| invoice(&r)).transpose()
    }

    async fn delete_draft_invoice(&mut self, scope: &Scope, id: &str) -> StoreResult<()> {
        let mut q = scoped("DELETE FROM invoices WHERE account_id = ", scope);
        q.push(" AND id = ")
            .push_bind(id.to_owned())
            .push(" AND status = 'draft'");
        expect_one(self.execute(q).await?, "delete draft invoice")
    }

    async fn invoices_for_update(
        &mut self,
        scope: &Scope,
        ids: &[String],
    ) -> StoreResult<Vec<Invoice>> {
        self.by_ids("invoices", "doc", scope, ids, LOCK_ROWS, invoice).await
    }

    async fn invoices(
        &mut self,
        scope: &Scope,
        filter: &InvoiceFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Invoice>>> {
        let filter = filter.clone();
        let list = ListQuery {
            table: "invoices",
            columns: "doc",
            scope,
            page,
            created: filter.created,
            filter: Box::new(move |q| {
                if let Some(customer) = filter.customer {
                    q.push(" AND customer = ").push_bind(customer);
                }
                if let Some(subscription) = filter.subscription {
                    q.push(" AND subscription = ").push_bind(subscription);
                }
                if let Some(status) = filter.status {
                    q.push(" AND status = ").push_bind(status.as_str());
                }
                if let Some(method) = filter.collection_method {
                    q.push(" AND collection_method = ").push_bind(method.as_str());
                }
            }),
        };
        self.list(list, invoice).await
    }

    async fn next_invoice_number(&mut self, scope: &Scope) -> StoreResult<i64> {
        let q = scoped("SELECT next FROM invoice_numbers WHERE account_id = ", scope);
        match self.fetch_optional(q).await? {
            Some(row) => get(&row, 0),
            None => Ok(1),
        }
    }

    async fn take_invoice_numbers(&mut self, scope: &Scope, count: u32) -> StoreResult<i64> {
        let mut q = Builder::new("INSERT INTO invoice_numbers (account_id, livemode, next) ");
        q.push_values([()], |mut b, ()| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(1 + i64::from(count));
        });
        q.push(" ON CONFLICT (account_id, livemode) DO UPDATE SET next = invoice_numbers.next + ")
            .push_bind(i64::from(count))
            .push(" RETURNING next");
        let row = self
            .fetch_optional(q)
            .await?
            .ok_or_else(|| StoreError::Internal("invoice number not returned".into()))?;
        let next: i64 = get(&row, 0)?;
        Ok(next - i64::from(count))
    }

    async fn insert_invoice_item(&mut self, scope: &Scope, i: &InvoiceItem) -> StoreResult<()> {
        let mut q = Builder::new(
            "INSERT INTO invoice_items (account_id, livemode, id, created, customer, invoice, \
             deleted, test_clock, doc) ",
        );
        q.push_values([i], |mut b, i| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(i.id.clone())
                .push_bind(i.created)
                .push_bind(i.customer.clone())
                .push_bind(i.invoice.clone())
                .push_bind(i.deleted)
                .push_bind(i.test_clock.clone())
                .push_bind(doc_bind(i));
        });
        self.execute(q).await.map(drop)
    }

    async fn update_invoice_items(
        &mut self,
        scope: &Scope,
        items: &[InvoiceItem],
    ) -> StoreResult<()> {
        self.update_rows("invoice_items", INVOICE_ITEM_SET, scope, items, |mut b, row| {
            push_invoice_item(&mut b, row, doc_bind(row))
        })
        .await
    }

    async fn update_invoice_items_unchanged(
        &mut self,
        scope: &Scope,
        before_docs: &[StoredDoc],
        after: &[InvoiceItem],
        after_docs: &[StoredDoc],
    ) -> StoreResult<()> {
        let rows = unchanged_rows(before_docs, after, after_docs)?;
        self.update_rows_unchanged(
            "invoice_items",
            INVOICE_ITEM_SET,
            "v.column5",
            scope,
            &rows,
            push_invoice_item,
        )
        .await
    }

    async fn invoice_item(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<InvoiceItem>> {
        let mut q = scoped("SELECT doc FROM invoice_items WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        self.fetch_optional(q).await?.map(|r| invoice_item(&r)).transpose()
    }

    async fn invoice_items(
        &mut self,
        scope: &Scope,
        filter: &InvoiceItemFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<InvoiceItem>>> {
        let filter = filter.clone();
        let list = ListQuery {
            table: "invoice_items",
            columns: "doc",
            scope,
            page,
            created: filter.created,
            filter: Box::new(move |q| {
                q.push(" AND deleted = ").push_bind(false);
                if let Some(customer) = filter.customer {
                    q.push(" AND customer = ").push_bind(customer);
                }
                if let Some(invoice) = filter.invoice {
                    q.push(" AND invoice = ").push_bind(invoice);
                }
                match filter.pending {
                    Some(true) => {
                        q.push(" AND invoice IS NULL");
                    }
                    Some(false) => {
                        q.push(" AND invoice IS NOT NULL");
                    }
                    None => {}
                }
            }),
        };
        self.list(list, invoice_item).await
    }

    async fn pending_invoice_items(
        &mut self,
        scope: &Scope,
        customers: &[String],
        limit: u32,
    ) -> StoreResult<Vec<InvoiceItem>> {
        let mut found = Vec::new();
        for chunk in customers.chunks(ROWS_PER_STATEMENT) {
            let mut q = scoped("SELECT doc FROM invoice_items WHERE account_id = ", scope);
            q.push(" AND invoice IS NULL AND deleted = ").push_bind(false);
            push_in(&mut q, "customer", chunk.to_vec());
            q.push(" ORDER BY seq LIMIT ").push_bind(i64::from(limit));
            for row in self.fetch_all(q).await? {
                found.push(invoice_item(&row)?);
            }
        }
        Ok(found)
    }

    async fn insert_ledger_entries(
        &mut self,
        scope: &Scope,
        entries: &[LedgerEntry],
    ) -> StoreResult<()> {
        let docs: Vec<StoredDoc> = entries.iter().map(|e| stored_doc(encode_doc(e))).collect();
        self.insert_encoded_ledger_entries(scope, entries, &docs).await
    }

    async fn insert_encoded_ledger_entries(
        &mut self,
        scope: &Scope,
        entries: &[LedgerEntry],
        docs: &[StoredDoc],
    ) -> StoreResult<()> {
        if docs.len() != entries.len() {
            return Err(StoreError::Internal("each ledger entry needs its doc".into()));
        }
        let rows: Vec<(&LedgerEntry, &StoredDoc)> = entries.iter().zip(docs).collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut q = Builder::new(format!(
                "{BULK_INSERT} ledger_entries (account_id, livemode, id, created, object_id, \
                 test_clock, doc) ",
            ));
            q.push_values(chunk, |mut b, (e, doc)| {
                b.push_bind(scope.account_id.clone())
                    .push_bind(scope.livemode)
                    .push_bind(e.id.clone())
                    .push_bind(e.created)
                    .push_bind(e.object_id.clone())
                    .push_bind(e.test_clock.clone())
                    .push_bind(bound((*doc).clone()));
            });
            self.write_behind(q, Rows::Any, "insert ledger entries").await;
            let lines: Vec<(&String, &LedgerLine)> = chunk
                .iter()
                .flat_map(|(e, _)| e.lines.iter().map(move |l| (&e.id, l)))
                .collect();
            for lines in lines.chunks(ROWS_PER_STATEMENT) {
                let mut q = Builder::new(format!(
                    "{BULK_INSERT} ledger_lines (entry_id, account_id, livemode, kind, customer, \
                     currency, amount) ",
                ));
                q.push_values(lines, |mut b, (entry, l)| {
                    b.push_bind((*entry).clone())
                        .push_bind(scope.account_id.clone())
                        .push_bind(scope.livemode)
                        .push_bind(l.kind.as_str())
                        .push_bind(l.customer.clone().unwrap_or_default())
                        .push_bind(l.currency.lowercase())
                        .push_bind(l.amount);
                });
                self.write_behind(q, Rows::Any, "insert ledger lines").await;
            }
        }
        Ok(())
    }

    async fn ledger_balances(
        &mut self,
        scope: &Scope,
        customer: Option<&str>,
        per_customer: bool,
    ) -> StoreResult<Vec<LedgerBalance>> {
        // Summed over customers, the holder column is empty and not grouped by.
        let (holder, group) = if per_customer {
            ("customer", "kind, customer, currency")
        } else {
            ("''", "kind, currency")
        };
        let mut q = scoped(
            &format!(
                "SELECT kind, {holder}, currency, CAST(SUM(amount) AS BIGINT) FROM ledger_lines \
                 WHERE account_id = "
            ),
            scope,
        );
        if let Some(customer) = customer {
            q.push(" AND customer = ").push_bind(customer.to_owned());
        }
        q.push(format!(" GROUP BY {group} ORDER BY {group}"));
        self.fetch_all(q)
            .await?
            .iter()
            .map(|r| {
                let kind: String = get(r, 0)?;
                let customer: String = get(r, 1)?;
                let currency: String = get(r, 2)?;
                Ok(LedgerBalance {
                    kind: kopek_core::ledger::AccountKind::parse(&kind)
                        .ok_or_else(|| StoreError::Internal(format!("bad ledger kind {kind}")))?,
                    customer: (!customer.is_empty()).then_some(customer),
                    currency: kopek_core::Currency::parse(&currency)
                        .map_err(|_| StoreError::Internal(format!("bad currency {currency}")))?,
                    balance: get(r, 3)?,
                })
            })
            .collect()
    }

    async fn ledger_entries(
        &mut self,
        scope: &Scope,
        filter: &LedgerEntryFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<LedgerEntry>>> {
        let filter = filter.clone();
        let lines_scope = scope.clone();
        let list = ListQuery {
            table: "ledger_entries",
            columns: "doc",
            scope,
            page,
            created: filter.created,
            filter: Box::new(move |q| {
                if let Some(object_id) = filter.object_id {
                    q.push(" AND object_id = ").push_bind(object_id);
                }
                if let Some((kind, customer)) = filter.account {
                    // Scoped, so that the lines' index by account serves it (unscoped, it
                    // read every account's lines).
                    q.push(" AND id IN (SELECT entry_id FROM ledger_lines WHERE account_id = ");
                    push_scope(q, &lines_scope);
                    q.push(" AND kind = ")
                        .push_bind(kind.as_str())
                        .push(" AND customer = ")
                        .push_bind(customer.unwrap_or_default())
                        .push(")");
                }
            }),
        };
        self.list(list, ledger_entry).await
    }

    async fn due_subscriptions_for_update(
        &mut self,
        lane: &Lane,
        due_by: i64,
        limit: u32,
        skipping: &[String],
    ) -> StoreResult<Vec<(Scope, Subscription, StoredDoc)>> {
        let due = self
            .due_for_update_skipping("subscriptions", "TRUE", lane, due_by, limit, skipping, |r| {
                Ok((subscription(r)?, stored_at(r, 0)?))
            })
            .await?;
        Ok(due.into_iter().map(|(scope, (s, doc))| (scope, s, doc)).collect())
    }

    async fn due_drafts_for_update(
        &mut self,
        lane: &Lane,
        due_by: i64,
        limit: u32,
        skipping: &[String],
    ) -> StoreResult<Vec<(Scope, Invoice, StoredDoc)>> {
        let drafts = "status = 'draft'";
        let due = self
            .due_for_update_skipping("invoices", drafts, lane, due_by, limit, skipping, |r| {
                Ok((invoice(r)?, stored_at(r, 0)?))
            })
            .await?;
        Ok(due.into_iter().map(|(scope, (i, doc))| (scope, i, doc)).collect())
    }

    async fn claim_due_open_invoices(
        &mut self,
        lane: &Lane,
        claim: &Claim,
    ) -> StoreResult<Vec<Due>> {
        self.claim_due("invoices", "status = 'open'", lane, claim).await
    }

    async fn clock_next_due(&mut self, scope: &Scope, clock: &str) -> StoreResult<Option<i64>> {
        let mut next = None;
        for table in [
            "subscription_schedules",
            "price_change_subscriptions",
            "subscriptions",
            "payment_methods",
            "invoices",
            "charges",
            "refunds",
        ] {
            let mut q = scoped(
                &format!("SELECT MIN(next_action_at) FROM {table} WHERE account_id = "),
                scope,
            );
            q.push(" AND test_clock = ").push_bind(clock.to_owned());
            if let Some(row) = self.fetch_optional(q).await? {
                let due: Option<i64> = get(&row, 0)?;
                next = match (next, due) {
                    (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
                    (a, b) => a.or(b),
                };
            }
        }
        Ok(next)
    }

    async fn billing_scopes(&mut self) -> StoreResult<Vec<Scope>> {
        let q = Builder::new(
            "SELECT DISTINCT account_id, livemode FROM invoices \
             UNION SELECT DISTINCT account_id, livemode FROM subscriptions \
             UNION SELECT DISTINCT account_id, livemode FROM ledger_entries",
        );
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

    async fn unbalanced_ledger_entries(
        &mut self,
        scope: &Scope,
    ) -> StoreResult<Vec<(String, String, i64)>> {
        let mut q = scoped(
            "SELECT entry_id, currency, CAST(SUM(amount) AS BIGINT) FROM ledger_lines WHERE account_id = ",
            scope,
        );
        q.push(" GROUP BY entry_id, currency HAVING SUM(amount) <> 0 ORDER BY entry_id LIMIT 1000");
        self.fetch_all(q)
            .await?
            .iter()
            .map(|r| Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?)))
            .collect()
    }

    async fn invoices_after(
        &mut self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> StoreResult<(Vec<Invoice>, i64)> {
        self.scan_after("invoices", scope, after, limit, invoice).await
    }

    async fn subscriptions_after(
        &mut self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> StoreResult<(Vec<Subscription>, i64)> {
        self.scan_after("subscriptions", scope, after, limit, subscription)
            .await
    }
}
