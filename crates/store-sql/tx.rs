// The SQL both stores share, included by `kopek-store-sqlite/src/tx.rs` and
// `kopek-store-postgres/src/tx.rs`. Each defines `Db` (the sqlx database), `DbRow` and
// `StoreTx` (its transaction type, holding `tx: Transaction<'static, Db>`) before
// including this file. The schemas differ only in column types, so one text of queries
// serves both; where the dialects truly differ, the including module supplies the piece.

use crate::internal;
use async_trait::async_trait;
use kopek_app::codec;
use kopek_app::ports::{StoreResult, StoredDoc, Tx};
use kopek_app::records::*;
use kopek_app::StoreError;
use sqlx::{QueryBuilder, Row, Transaction};

type Builder = QueryBuilder<'static, Db>;

/// Rows per multi-row statement: far below both databases' bind-parameter limits.
const ROWS_PER_STATEMENT: usize = 500;

/// A list query: the table, its columns, and the filters beyond the scope.
struct ListQuery<'a> {
    table: &'static str,
    columns: &'static str,
    scope: &'a Scope,
    page: &'a PageRequest,
    created: TimeRange,
    filter: Box<dyn FnOnce(&mut Builder) + Send + 'a>,
}

/// A transaction, or the task that holds it while writes the caller did not wait for
/// run (see [`StoreTx::write_behind`]).
pub(crate) enum Conn {
    Ready(Transaction<'static, Db>),
    Writing(tokio::task::JoinHandle<StoreResult<Transaction<'static, Db>>>),
    /// A write behind failed, so the transaction is rolled back: it refuses everything,
    /// with this error.
    Failed(StoreError),
}

/// How many rows a write behind must change.
#[derive(Clone, Copy)]
enum Rows {
    Any,
    /// Each must exist: fewer is a bug or an outage (`StoreError::Internal`).
    Exactly(u64),
    /// Each must be as it was read: fewer means a row changed (`StoreError::Changed`).
    Unchanged(u64),
}

impl StoreTx {
    /// The transaction's connection once every write behind is done; the error of the
    /// first that failed, if one did.
    async fn conn(&mut self) -> StoreResult<&mut <Db as sqlx::Database>::Connection> {
        // Should the caller give up while waiting, the transaction is gone with the task.
        let state = std::mem::replace(
            &mut self.conn,
            Conn::Failed(StoreError::Internal("abandoned while writing".into())),
        );
        self.conn = match state {
            Conn::Writing(task) => match written(task).await {
                Ok(tx) => Conn::Ready(tx),
                Err(e) => {
                    self.conn = Conn::Failed(e.clone());
                    return Err(e);
                }
            },
            state => state,
        };
        match &mut self.conn {
            Conn::Ready(tx) => Ok(&mut **tx),
            Conn::Failed(StoreError::Changed(what)) => Err(StoreError::Changed(what.clone())),
            Conn::Failed(why) => Err(StoreError::Internal(format!(
                "the transaction was rolled back after a write failed: {why}"
            ))),
            // Not after the wait above; an error rather than a panic all the same.
            Conn::Writing(_) => Err(StoreError::Internal("still writing".into())),
        }
    }

    /// Runs `query` after the writes before it without waiting for it: the caller goes on
    /// building the next statement while the database runs this one, which keeps both a
    /// billing run's cores busy. A failure shows at the transaction's next use, and
    /// fails the transaction.
    async fn write_behind(&mut self, mut query: Builder, rows: Rows, what: &str) {
        let what = what.to_owned();
        let before = std::mem::replace(
            &mut self.conn,
            Conn::Failed(StoreError::Internal(String::new())),
        );
        self.conn = match before {
            Conn::Failed(why) => Conn::Failed(why),
            before => Conn::Writing(tokio::spawn(async move {
                let mut tx = match before {
                    Conn::Ready(tx) => tx,
                    Conn::Writing(task) => written(task).await?,
                    Conn::Failed(why) => return Err(why),
                };
                // An internal error, never a conflict: the step it shows at may take a
                // conflict of its own for an answer to the user.
                let changed = query
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::Internal(format!("{what}: {e}")))?
                    .rows_affected();
                match rows {
                    Rows::Exactly(rows) if rows != changed => Err(StoreError::Internal(
                        format!("{what}: {changed} rows changed, expected {rows}"),
                    )),
                    Rows::Unchanged(rows) if rows != changed => Err(StoreError::Changed(
                        format!("{what}: {changed} of {rows} rows as read"),
                    )),
                    _ => Ok(tx),
                }
            })),
        };
        // A task spawned from a worker thread waits in that thread's own slot, where no
        // other thread takes it: yield once so that it starts now.
        tokio::task::yield_now().await;
    }

    async fn fetch_optional(&mut self, mut query: Builder) -> StoreResult<Option<DbRow>> {
        query
            .build()
            .fetch_optional(self.conn().await?)
            .await
            .map_err(internal)
    }

    async fn execute(&mut self, mut query: Builder) -> StoreResult<u64> {
        Ok(query
            .build()
            .execute(self.conn().await?)
            .await
            .map_err(internal)?
            .rows_affected())
    }

    /// Runs a list query newest first with cursor pagination; `None` if the cursor names
    /// no row in the scope.
    async fn list<T>(
        &mut self,
        list: ListQuery<'_>,
        decode: fn(&DbRow) -> StoreResult<T>,
    ) -> StoreResult<Option<Page<T>>> {
        let (cursor, after) = match (&list.page.starting_after, &list.page.ending_before) {
            (Some(id), _) => (Some(id), true),
            (None, Some(id)) => (Some(id), false),
            (None, None) => (None, true),
        };
        let cursor_seq = match cursor {
            None => None,
            Some(id) => {
                let mut q = Builder::new(format!(
                    "SELECT seq FROM {} WHERE account_id = ",
                    list.table
                ));
                push_scope(&mut q, list.scope);
                q.push(" AND id = ").push_bind(id.clone());
                match self.fetch_optional(q).await? {
                    Some(row) => Some(row.try_get::<i64, _>(0).map_err(internal)?),
                    None => return Ok(None),
                }
            }
        };
        let mut q = Builder::new(format!(
            "SELECT {} FROM {} WHERE account_id = ",
            list.columns, list.table
        ));
        push_scope(&mut q, list.scope);
        (list.filter)(&mut q);
        if let Some(from) = list.created.from {
            q.push(" AND created >= ").push_bind(from);
        }
        if let Some(to) = list.created.to {
            q.push(" AND created <= ").push_bind(to);
        }
        if let Some(seq) = cursor_seq {
            q.push(if after { " AND seq < " } else { " AND seq > " })
                .push_bind(seq);
        }
        q.push(if after {
            " ORDER BY seq DESC"
        } else {
            " ORDER BY seq ASC"
        });
        q.push(" LIMIT ").push_bind(i64::from(list.page.limit) + 1);
        let rows = q
            .build()
            .fetch_all(self.conn().await?)
            .await
            .map_err(internal)?;
        let has_more = rows.len() > list.page.limit as usize;
        let mut data = rows
            .iter()
            .take(list.page.limit as usize)
            .map(decode)
            .collect::<StoreResult<Vec<T>>>()?;
        if !after {
            data.reverse();
        }
        Ok(Some(Page { data, has_more }))
    }
}

fn push_scope(q: &mut Builder, scope: &Scope) {
    q.push_bind(scope.account_id.clone())
        .push(" AND livemode = ")
        .push_bind(scope.livemode);
}

fn scoped(sql: &str, scope: &Scope) -> Builder {
    let mut q = Builder::new(sql);
    push_scope(&mut q, scope);
    q
}

fn get<'r, T: sqlx::Decode<'r, Db> + sqlx::Type<Db>>(
    row: &'r DbRow,
    index: usize,
) -> StoreResult<T> {
    row.try_get(index).map_err(internal)
}

const CUSTOMER_COLUMNS: &str = "id, livemode, created, email, deleted, balance, currency, doc";

fn customer(row: &DbRow) -> StoreResult<Customer> {
    let columns = codec::CustomerColumns {
        id: get(row, 0)?,
        livemode: get(row, 1)?,
        created: get(row, 2)?,
        email: get(row, 3)?,
        deleted: get(row, 4)?,
        balance: get(row, 5)?,
        currency: get(row, 6)?,
    };
    let doc: String = get(row, 7)?;
    codec::customer_from_doc(columns, &doc)
}

const PRODUCT_COLUMNS: &str = "id, livemode, created, active, doc";

fn product(row: &DbRow) -> StoreResult<Product> {
    codec::product_from_doc(
        get(row, 0)?,
        get(row, 1)?,
        get(row, 2)?,
        get(row, 3)?,
        get(row, 4)?,
    )
}

const PRICE_COLUMNS: &str = "id, livemode, created, product, active, currency, lookup_key, doc";

fn price(row: &DbRow) -> StoreResult<Price> {
    let currency: String = get(row, 5)?;
    codec::price_from_doc(
        get(row, 0)?,
        get(row, 1)?,
        get(row, 2)?,
        get(row, 3)?,
        get(row, 4)?,
        &currency,
        get(row, 6)?,
        get(row, 7)?,
    )
}

const EVENT_COLUMNS: &str = "id, livemode, created, type, object_id, doc";

fn event(row: &DbRow) -> StoreResult<Event> {
    codec::event_from_doc(
        get(row, 0)?,
        get(row, 1)?,
        get(row, 2)?,
        get(row, 3)?,
        get(row, 4)?,
        &doc_at(row, 5)?,
    )
}

const API_KEY_COLUMNS: &str = "id, account_id, livemode, secret_sha256, prefix, last4, created";

fn api_key(row: &DbRow) -> StoreResult<ApiKey> {
    let hash: Vec<u8> = get(row, 3)?;
    Ok(ApiKey {
        id: get(row, 0)?,
        account_id: get(row, 1)?,
        livemode: get(row, 2)?,
        secret_sha256: hash
            .try_into()
            .map_err(|_| StoreError::Internal("bad key hash".into()))?,
        prefix: get(row, 4)?,
        last4: get(row, 5)?,
        created: get(row, 6)?,
    })
}

fn expect_one(affected: u64, what: &str) -> StoreResult<()> {
    if affected == 1 {
        Ok(())
    } else {
        Err(StoreError::Internal(format!(
            "{what}: {affected} rows changed, expected 1"
        )))
    }
}

#[async_trait]
impl Tx for StoreTx {
    async fn commit(mut self: Box<Self>) -> StoreResult<()> {
        self.conn().await?;
        let committed = Conn::Failed(StoreError::Internal("committed".into()));
        match std::mem::replace(&mut self.conn, committed) {
            Conn::Ready(tx) => tx.commit().await.map_err(internal),
            _ => Err(StoreError::Internal("the transaction is gone".into())),
        }
    }

    async fn changed_since_read(&mut self) -> bool {
        matches!(self.conn().await, Err(StoreError::Changed(_)))
    }

    async fn insert_account(&mut self, account: &Account) -> StoreResult<()> {
        let mut q = Builder::new("INSERT INTO accounts (id, created) VALUES (");
        q.push_bind(account.id.clone())
            .push(", ")
            .push_bind(account.created)
            .push(")");
        self.execute(q).await.map(drop)
    }

    async fn first_account(&mut self) -> StoreResult<Option<Account>> {
        let q = Builder::new("SELECT id, created FROM accounts ORDER BY created, id LIMIT 1");
        let row = self.fetch_optional(q).await?;
        row.map(|r| {
            Ok(Account {
                id: get(&r, 0)?,
                created: get(&r, 1)?,
            })
        })
        .transpose()
    }

    async fn insert_api_key(&mut self, key: &ApiKey) -> StoreResult<()> {
        let mut q = Builder::new(format!("INSERT INTO api_keys ({API_KEY_COLUMNS}) "));
        q.push_values([key], |mut b, k| {
            b.push_bind(k.id.clone())
                .push_bind(k.account_id.clone())
                .push_bind(k.livemode)
                .push_bind(k.secret_sha256.to_vec())
                .push_bind(k.prefix.clone())
                .push_bind(k.last4.clone())
                .push_bind(k.created);
        });
        self.execute(q).await.map(drop)
    }

    async fn api_keys(&mut self, account_id: &str) -> StoreResult<Vec<ApiKey>> {
        let mut q = Builder::new(format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE account_id = "
        ));
        q.push_bind(account_id.to_owned())
            .push(" ORDER BY created, id");
        let rows = q
            .build()
            .fetch_all(self.conn().await?)
            .await
            .map_err(internal)?;
        rows.iter().map(api_key).collect()
    }

    async fn api_key_by_hash(&mut self, secret_sha256: &[u8; 32]) -> StoreResult<Option<ApiKey>> {
        let mut q = Builder::new(format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE secret_sha256 = "
        ));
        q.push_bind(secret_sha256.to_vec());
        self.fetch_optional(q)
            .await?
            .map(|r| api_key(&r))
            .transpose()
    }

    async fn insert_customer(&mut self, scope: &Scope, c: &Customer) -> StoreResult<()> {
        let mut q = Builder::new(
            "INSERT INTO customers (account_id, livemode, id, created, email, deleted, test_clock, \
             balance, currency, doc) ",
        );
        q.push_values([c], |mut b, c| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(c.id.clone())
                .push_bind(c.created)
                .push_bind(c.email.clone())
                .push_bind(c.deleted)
                .push_bind(c.test_clock.clone())
                .push_bind(c.balance)
                .push_bind(c.currency.map(|currency| currency.lowercase()))
                .push_bind(codec::customer_doc(c));
        });
        self.execute(q).await.map(drop)
    }

    async fn update_customer(&mut self, scope: &Scope, c: &Customer) -> StoreResult<()> {
        // The balance moves only through `move_customer_balances`; a currency, once set,
        // stays.
        let mut q = Builder::new("UPDATE customers SET email = ");
        q.push_bind(c.email.clone())
            .push(", currency = COALESCE(currency, ")
            .push_bind(c.currency.map(|currency| currency.lowercase()))
            .push("), deleted = ")
            .push_bind(c.deleted)
            .push(", doc = ")
            .push_bind(codec::customer_doc(c))
            .push(" WHERE account_id = ");
        push_scope(&mut q, scope);
        q.push(" AND id = ").push_bind(c.id.clone());
        expect_one(self.execute(q).await?, "update customer")
    }

    async fn customer(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Customer>> {
        let mut q = scoped(
            &format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE account_id = "),
            scope,
        );
        q.push(" AND id = ").push_bind(id.to_owned());
        self.fetch_optional(q)
            .await?
            .map(|r| customer(&r))
            .transpose()
    }

    async fn customers(
        &mut self,
        scope: &Scope,
        filter: &CustomerFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Customer>>> {
        let email = filter.email.clone();
        let list = ListQuery {
            table: "customers",
            columns: CUSTOMER_COLUMNS,
            scope,
            page,
            created: filter.created,
            filter: Box::new(move |q| {
                q.push(" AND deleted = ").push_bind(false);
                if let Some(email) = email {
                    q.push(" AND email = ").push_bind(email);
                }
            }),
        };
        self.list(list, customer).await
    }

    async fn insert_product(&mut self, scope: &Scope, p: &Product) -> StoreResult<()> {
        let mut q =
            Builder::new("INSERT INTO products (account_id, livemode, id, created, active, doc) ");
        q.push_values([p], |mut b, p| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(p.id.clone())
                .push_bind(p.created)
                .push_bind(p.active)
                .push_bind(codec::product_doc(p));
        });
        self.execute(q).await.map(drop)
    }

    async fn update_product(&mut self, scope: &Scope, p: &Product) -> StoreResult<()> {
        let mut q = Builder::new("UPDATE products SET active = ");
        q.push_bind(p.active)
            .push(", doc = ")
            .push_bind(codec::product_doc(p))
            .push(" WHERE account_id = ");
        push_scope(&mut q, scope);
        q.push(" AND id = ").push_bind(p.id.clone());
        expect_one(self.execute(q).await?, "update product")
    }

    async fn delete_product(&mut self, scope: &Scope, id: &str) -> StoreResult<()> {
        let mut q = scoped("DELETE FROM products WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        expect_one(self.execute(q).await?, "delete product")
    }

    async fn product(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Product>> {
        let mut q = scoped(
            &format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE account_id = "),
            scope,
        );
        q.push(" AND id = ").push_bind(id.to_owned());
        self.fetch_optional(q)
            .await?
            .map(|r| product(&r))
            .transpose()
    }

    async fn products(
        &mut self,
        scope: &Scope,
        filter: &ProductFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Product>>> {
        let (active, ids) = (filter.active, filter.ids.clone());
        let list = ListQuery {
            table: "products",
            columns: PRODUCT_COLUMNS,
            scope,
            page,
            created: filter.created,
            filter: Box::new(move |q| {
                if let Some(active) = active {
                    q.push(" AND active = ").push_bind(active);
                }
                push_in(q, "id", ids);
            }),
        };
        self.list(list, product).await
    }

    async fn insert_price(&mut self, scope: &Scope, p: &Price) -> StoreResult<()> {
        let mut q = Builder::new(
            "INSERT INTO prices (account_id, livemode, id, created, product, active, recurring, currency, lookup_key, doc) ",
        );
        q.push_values([p], |mut b, p| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(p.id.clone())
                .push_bind(p.created)
                .push_bind(p.product.clone())
                .push_bind(p.active)
                .push_bind(p.is_recurring())
                .push_bind(p.currency().lowercase())
                .push_bind(p.lookup_key.clone())
                .push_bind(codec::price_doc(p));
        });
        self.execute(q).await.map(drop)
    }

    async fn update_price(&mut self, scope: &Scope, p: &Price) -> StoreResult<()> {
        let mut q = Builder::new("UPDATE prices SET active = ");
        q.push_bind(p.active)
            .push(", lookup_key = ")
            .push_bind(p.lookup_key.clone())
            .push(", doc = ")
            .push_bind(codec::price_doc(p))
            .push(" WHERE account_id = ");
        push_scope(&mut q, scope);
        q.push(" AND id = ").push_bind(p.id.clone());
        expect_one(self.execute(q).await?, "update price")
    }

    async fn price(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Price>> {
        let mut q = scoped(
            &format!("SELECT {PRICE_COLUMNS} FROM prices WHERE account_id = "),
            scope,
        );
        q.push(" AND id = ").push_bind(id.to_owned());
        self.fetch_optional(q).await?.map(|r| price(&r)).transpose()
    }

    async fn prices(
        &mut self,
        scope: &Scope,
        filter: &PriceFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Price>>> {
        let filter = filter.clone();
        let list = ListQuery {
            table: "prices",
            columns: PRICE_COLUMNS,
            scope,
            page,
            created: filter.created,
            filter: Box::new(move |q| {
                if let Some(product) = filter.product {
                    q.push(" AND product = ").push_bind(product);
                }
                if let Some(active) = filter.active {
                    q.push(" AND active = ").push_bind(active);
                }
                if let Some(recurring) = filter.recurring {
                    q.push(" AND recurring = ").push_bind(recurring);
                }
                if let Some(currency) = filter.currency {
                    q.push(" AND currency = ").push_bind(currency.lowercase());
                }
                push_in(q, "lookup_key", filter.lookup_keys);
            }),
        };
        self.list(list, price).await
    }

    async fn price_count_for_product(&mut self, scope: &Scope, product: &str) -> StoreResult<u64> {
        let mut q = scoped("SELECT COUNT(*) FROM prices WHERE account_id = ", scope);
        q.push(" AND product = ").push_bind(product.to_owned());
        let row = self.fetch_optional(q).await?;
        Ok(row.map(|r| get::<i64>(&r, 0)).transpose()?.unwrap_or(0) as u64)
    }

    async fn insert_events(&mut self, scope: &Scope, events: &[Event]) -> StoreResult<()> {
        let docs: Vec<StoredDoc> = events
            .iter()
            .map(|e| stored_doc(codec::event_doc(e)))
            .collect();
        self.insert_encoded_events(scope, events, &docs).await
    }

    async fn insert_encoded_events(
        &mut self,
        scope: &Scope,
        events: &[Event],
        docs: &[StoredDoc],
    ) -> StoreResult<()> {
        if docs.len() != events.len() {
            return Err(StoreError::Internal("each event needs its doc".into()));
        }
        let rows: Vec<(&Event, &StoredDoc)> = events.iter().zip(docs).collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut q = Builder::new(format!(
                "{BULK_INSERT} events (account_id, livemode, id, created, type, object_id, doc) ",
            ));
            q.push_values(chunk, |mut b, (e, doc)| {
                b.push_bind(scope.account_id.clone())
                    .push_bind(scope.livemode)
                    .push_bind(e.id.clone())
                    .push_bind(e.created)
                    .push_bind(e.event_type.clone())
                    .push_bind(e.object_id.clone())
                    .push_bind(bound((*doc).clone()));
            });
            self.write_behind(q, Rows::Any, "insert events").await;
        }
        Ok(())
    }

    async fn event(&mut self, scope: &Scope, id: &str) -> StoreResult<Option<Event>> {
        let mut q = scoped(
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE account_id = "),
            scope,
        );
        q.push(" AND id = ").push_bind(id.to_owned());
        self.fetch_optional(q).await?.map(|r| event(&r)).transpose()
    }

    async fn events(
        &mut self,
        scope: &Scope,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Event>>> {
        let event_type = filter.event_type.clone();
        let list = ListQuery {
            table: "events",
            columns: EVENT_COLUMNS,
            scope,
            page,
            created: filter.created,
            filter: Box::new(move |q| {
                if let Some(event_type) = event_type {
                    q.push(" AND type = ").push_bind(event_type);
                }
            }),
        };
        self.list(list, event).await
    }

    async fn claim_idempotency_key(
        &mut self,
        scope: &Scope,
        key: &str,
        fingerprint: &[u8; 32],
        now: i64,
        abandoned_before: i64,
        expired_before: i64,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        // Take over a record that expired, or whose request died before committing.
        let mut q = Builder::new("UPDATE idempotency_keys SET fingerprint = ");
        q.push_bind(fingerprint.to_vec())
            .push(", created = ")
            .push_bind(now)
            .push(", status = NULL, body = NULL WHERE account_id = ");
        push_scope(&mut q, scope);
        q.push(" AND key = ").push_bind(key.to_owned());
        q.push(" AND (created < ").push_bind(expired_before);
        q.push(" OR (status IS NULL AND created < ")
            .push_bind(abandoned_before)
            .push("))");
        if self.execute(q).await? == 1 {
            return Ok(None);
        }
        let mut q = Builder::new(
            "INSERT INTO idempotency_keys (account_id, livemode, key, fingerprint, created) ",
        );
        q.push_values([()], |mut b, ()| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(key.to_owned())
                .push_bind(fingerprint.to_vec())
                .push_bind(now);
        });
        q.push(" ON CONFLICT DO NOTHING");
        if self.execute(q).await? == 1 {
            return Ok(None);
        }
        let mut q = scoped(
            "SELECT fingerprint, created, status, body FROM idempotency_keys WHERE account_id = ",
            scope,
        );
        q.push(" AND key = ").push_bind(key.to_owned());
        let row = self
            .fetch_optional(q)
            .await?
            .ok_or_else(|| StoreError::Internal("idempotency key vanished".into()))?;
        let fingerprint: Vec<u8> = get(&row, 0)?;
        let status: Option<i64> = get(&row, 2)?;
        let body: Option<Vec<u8>> = get(&row, 3)?;
        Ok(Some(IdempotencyRecord {
            fingerprint: fingerprint
                .try_into()
                .map_err(|_| StoreError::Internal("bad fingerprint".into()))?,
            created: get(&row, 1)?,
            response: status.zip(body).map(|(s, b)| (s as u16, b)),
        }))
    }

    async fn complete_idempotency_key(
        &mut self,
        scope: &Scope,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> StoreResult<()> {
        let mut q = Builder::new("UPDATE idempotency_keys SET status = ");
        q.push_bind(i64::from(status))
            .push(", body = ")
            .push_bind(body.to_vec())
            .push(" WHERE account_id = ");
        push_scope(&mut q, scope);
        q.push(" AND key = ").push_bind(key.to_owned());
        expect_one(self.execute(q).await?, "complete idempotency key")
    }

    async fn release_idempotency_key(&mut self, scope: &Scope, key: &str) -> StoreResult<()> {
        let mut q = scoped("DELETE FROM idempotency_keys WHERE account_id = ", scope);
        q.push(" AND key = ")
            .push_bind(key.to_owned())
            .push(" AND status IS NULL");
        self.execute(q).await.map(drop)
    }
}

/// Appends `AND column IN (…)` when `values` is not empty.
fn push_in(q: &mut Builder, column: &str, values: Vec<String>) {
    if values.is_empty() {
        return;
    }
    q.push(format!(" AND {column} IN ("));
    let mut separated = q.separated(", ");
    for value in values {
        separated.push_bind(value);
    }
    q.push(")");
}

/// The transaction back from the task that ran writes behind, or their error.
async fn written(
    task: tokio::task::JoinHandle<StoreResult<Transaction<'static, Db>>>,
) -> StoreResult<Transaction<'static, Db>> {
    task.await
        .map_err(|e| StoreError::Internal(format!("a write behind stopped: {e}")))?
}
